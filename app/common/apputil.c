/* apputil.c - signals, clocks, progress lines and parsing shared by the framering programs. */
#include "apputil.h"
#include "consumer_exit.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

volatile sig_atomic_t app_stop_requested;

/* The ring the stop handler interrupts, and how many handlers are inside
 * it now: lock-free atomics are async-signal-safe, and the count lets
 * app_interrupt_ring() wait out a handler on another thread that still
 * holds the old pointer before its caller frees that ring. */
static _Atomic(fr_ring_t *) stop_ring;
static atomic_int stop_handlers;

static void on_stop_signal(int sig)
{
	(void)sig;
	int saved_errno = errno;
	app_stop_requested = 1;
	atomic_fetch_add(&stop_handlers, 1);
	fr_ring_t *r = atomic_load(&stop_ring);
	if (r)
		fr_ring_interrupt(r);
	atomic_fetch_sub(&stop_handlers, 1);
	errno = saved_errno;
}

void app_interrupt_ring(fr_ring_t *r)
{
	/* Sequentially consistent store, then load of the count: a handler
	 * either sees the new pointer or is counted here (Dekker). */
	atomic_store(&stop_ring, r);
	while (atomic_load(&stop_handlers) > 0)
		sched_yield(); /* a handler never blocks: this ends at once */
}

int app_attach(fr_ring_t **r, const char *name, const struct fr_ring_attach_opts *ao)
{
	const int64_t slice = 100 * 1000000LL;
	struct fr_ring_attach_opts one = *ao;
	uint64_t end = ao->wait_ns > 0 ? app_now_ns() + (uint64_t)ao->wait_ns : 0;
	for (;;) {
		if (app_stop_requested)
			return -EINTR;
		if (ao->wait_ns < 0) {
			one.wait_ns = slice;
		} else if (ao->wait_ns > 0) {
			uint64_t now = app_now_ns();
			int64_t left = now < end ? (int64_t)(end - now) : 1; /* past it: one look that barely waits */
			one.wait_ns = left < slice ? left : slice;
		}
		int ret = fr_ring_attach(r, name, &one);
		if (ret == 0)
			return 0;
		if (app_stop_requested)
			return -EINTR;
		if (ret != -ETIMEDOUT || ao->wait_ns == 0 || (ao->wait_ns > 0 && app_now_ns() >= end))
			return ret;
	}
}

void app_open_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", fd ? O_WRONLY : O_RDONLY); /* the lowest free fd: this one */
		if (n > fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

void app_install_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

uint64_t app_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double app_now_s(void)
{
	return (double)app_now_ns() / 1e9;
}

bool app_stderr_is_tty(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = isatty(STDERR_FILENO) ? 1 : 0;
	return cached == 1;
}

/* Atomic: FFmpeg's threads end the line too (fflog.c) before they print. */
static atomic_bool progress_open;

void app_progress(const char *fmt, ...)
{
	if (!app_stderr_is_tty())
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	atomic_store(&progress_open, true);
}

void app_progress_end(void)
{
	if (atomic_exchange(&progress_open, false))
		fputc('\n', stderr);
}

static char last_complaint[FR_RING_EOS_MESSAGE_MAX];

void app_complain(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_complaint, sizeof(last_complaint), fmt, ap);
	va_end(ap);
	app_progress_end();
	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void app_complain_unknown_option(char *const argv[])
{
	/* getopt_long sets optopt to the character of an unknown short option, to 0 for a long one */
	if (optopt > 0 && optopt < 0x80)
		app_complain("unknown option '-%c' (see --help)", optopt);
	else
		app_complain("unknown option '%s' (see --help)", argv[optind - 1]);
}

const char *app_last_complaint(void)
{
	return last_complaint;
}

const char *app_printable(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < inlen && in[i]; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc[5] = {(char)c, 0};
		if (c < 0x20 || c >= 0x7f || c == '\\')
			snprintf(esc, sizeof(esc), "\\x%02x", c);
		size_t n = strlen(esc);
		if (o + n >= outlen)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

void app_complain_producer_failed(const fr_ring_t *r, const char *name)
{
	char reason[FR_RING_EOS_MESSAGE_MAX], shown[4 * FR_RING_EOS_MESSAGE_MAX];
	int err = fr_ring_end_reason(r, reason, sizeof(reason));
	app_printable(reason, sizeof(reason), shown, sizeof(shown));
	/* The producer's message says what failed; its errno only when there is none. */
	app_complain("the producer of ring '%s' failed: %s", name,
		     shown[0] ? shown : err < 0 ? strerror(-err) : "no reason given");
}

const char *app_color_name(unsigned field, unsigned code, char buf[static 12])
{
	const char *name = fr_frame_color_name((enum fr_frame_color_field)field, code);
	if (name)
		return name;
	snprintf(buf, 12, "%u", code);
	return buf;
}

int app_parse_u64(const char *s, uint64_t *out)
{
	/* digits first: strtoull skips blanks and takes " -5" as 2^64 - 5 */
	if (!s || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int app_parse_seconds(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

int app_parse_size(const char *s, unsigned *w, unsigned *h)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	unsigned long a = strtoul(s, &end, 10);
	if (*end != 'x' && *end != 'X')
		return -1;
	const char *p = end + 1;
	if (*p < '0' || *p > '9')
		return -1;
	unsigned long b = strtoul(p, &end, 10);
	if (*end || a < 1 || b < 1 || a > 16384 || b > 16384)
		return -1;
	*w = (unsigned)a;
	*h = (unsigned)b;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double app_percentile(double *v, size_t n, double pct)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	size_t i = (size_t)(pct / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

bool app_ring_name_ok(const char *name)
{
	struct fr_ring_stats st;
	int err = fr_ring_inspect(name, &st);
	if (err != -EINVAL && err != -ENAMETOOLONG)
		return true;
	app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", name, FR_RING_NAME_MAX);
	return false;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The name under which the existing file OUT (PATH) sits in APP_SHM_DIR, into
 * NAME; false if it is not there. By the file's own directory entry, so a
 * symlink to a segment, a bind mount of /dev/shm and "/dev/shm/./x" are found. */
static bool name_in_shm(const char *path, const struct stat *out, char name[FR_RING_NAME_MAX + 1])
{
	char *real = realpath(path, NULL);
	if (!real)
		return false;
	const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	char seg[sizeof(APP_SHM_DIR) + FR_RING_NAME_MAX + 1];
	struct stat st;
	bool found = strlen(base) <= FR_RING_NAME_MAX &&
		     snprintf(seg, sizeof(seg), APP_SHM_DIR "/%s", base) < (int)sizeof(seg) &&
		     stat(seg, &st) == 0 && same_file(&st, out);
	if (found)
		memcpy(name, base, strlen(base) + 1);
	free(real);
	return found;
}

/* Whether PATH, which is not there, would be made as APP_SHM_DIR/RING: its
 * directory is /dev/shm (however spelled) and its last part is RING. */
static bool would_be_segment(const char *path, const char *ring)
{
	const char *slash = strrchr(path, '/');
	if (strcmp(slash ? slash + 1 : path, ring) != 0)
		return false;
	char dir[PATH_MAX];
	int n = slash ? snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path)
		      : snprintf(dir, sizeof(dir), ".");
	struct stat d, shm;
	return n > 0 && n < (int)sizeof(dir) && stat(dir, &d) == 0 && stat(APP_SHM_DIR, &shm) == 0 &&
	       same_file(&d, &shm);
}

bool app_output_ok(const char *what, const char *path, const char *ring)
{
	char seg[sizeof(APP_SHM_DIR) + FR_RING_NAME_MAX + 1], name[FR_RING_NAME_MAX + 1];
	struct stat out, st;
	const char *hit = NULL;
	snprintf(seg, sizeof(seg), APP_SHM_DIR "/%s", ring);
	if (stat(path, &out) == 0) {
		if (stat(seg, &st) == 0 && same_file(&st, &out)) {
			hit = ring;
		} else if (S_ISREG(out.st_mode) && name_in_shm(path, &out, name)) {
			/* -EPROTO: a ring of another layout version is still somebody's ring */
			int err = fr_ring_inspect(name, &(struct fr_ring_stats){0});
			if (err == 0 || err == -EPROTO)
				hit = name;
		}
	} else if (errno == ENOENT && would_be_segment(path, ring)) {
		hit = ring;
	}
	if (!hit)
		return true; /* any other trouble with PATH is the open's to report */
	app_complain("%s '%s' is the shared-memory segment of ring '%s': writing it would destroy the ring",
		     what, path, hit);
	return false;
}

int app_complain_attach_failed(const char *name, double wait_s, int err)
{
	if (err == -ETIMEDOUT || err == -ENOENT)
		app_complain("ring '%s' not found (waited %.1f s for a producer to create it)", name, wait_s);
	else if (err == -EBUSY)
		app_complain("ring '%s' is busy: all its consumer slots are taken", name);
	else if (err == -EINVAL || err == -ENAMETOOLONG)
		app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", name, FR_RING_NAME_MAX);
	else if (consumer_ring_broken(err))
		app_complain("'%s' is not a valid framering ring (foreign, corrupt or another version): %s", name,
			     fr_ring_strerror(err));
	else
		app_complain("cannot open ring '%s': %s", name, fr_ring_strerror(err));
	return err == -EINVAL || err == -ENAMETOOLONG ? CONSUMER_EXIT_USAGE : consumer_exit_for(err);
}
