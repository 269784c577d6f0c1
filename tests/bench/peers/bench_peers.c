/* bench_peers.c - framering against the transports users compare it with (iceoryx, GStreamer shmsink/shmsrc, a pipe, a Unix socket): the driver.
 *
 * The same work in every case: the producer memsets all 6,220,800 bytes of a
 * 1080p BGR frame (in the transport's own shared buffer where it offers one,
 * otherwise in a private buffer that it then sends), the consumer sums every
 * byte (as 64-bit words) and checks the sum and the sequence number.
 *
 * Each run is two fresh child processes, a producer and a consumer; this
 * process only forks, watches and counts, and never uses a transport itself.
 * A run that does not end in time is killed (both sides), and whatever a
 * killed side leaves (ring, socket, shm area, iceoryx socket) is removed.
 * RouDi, iceoryx's daemon, is started once with a config of our own and
 * stopped at the end, on every path.
 *
 * Rounds are interleaved: round r runs every case once, in an order rotated by
 * r, so that a noisy neighbour on a shared machine hurts every case alike.
 * Figures are medians over rounds; ratios to framering are computed per round
 * and their median and range printed. Nothing is asserted: the exit status
 * says whether every run completed with correct data.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "bench_peers.h"
#include "ring.h"

#define MAX_ROUNDS 20
#define MAX_LAT_FRAMES 100000
#define SETUP_TIMEOUT_NS ((uint64_t)30 * 1000000000u) /* a side's set-up: gst_init, runtime registration */
/* A run may take this much longer than expected before it is called stuck: more
 * than SIDE_TIMEOUT_NS, so that a side's own timeout (a clearer message) comes first. */
#define WATCHDOG_MARGIN_NS ((uint64_t)20 * 1000000000u)
/* Warm-up messages before each timed part: more frames than any transport here
 * holds (64 MiB ring: 10, shmsink's area: 10, iceoryx: 8 chunks), more 64 B
 * messages than the 4 MiB ring holds (58,254). */
#define WARMUP_FRAMES 16
#define WARMUP_SMALL 65536
#define GRACE_NS ((uint64_t)3 * 1000000000u)        /* after one side failed, the other's time to stop */

#ifndef BENCH_ROUDI
#define BENCH_ROUDI "/usr/bin/iox-roudi"
#endif
/* Why a peer was not built (from CMake). */
#ifdef BENCH_HAVE_ICEORYX
#define ICEORYX_MISSING ""
#elif defined(BENCH_ICEORYX_MISSING)
#define ICEORYX_MISSING BENCH_ICEORYX_MISSING
#else
#define ICEORYX_MISSING "iceoryx not found at build time"
#endif
#ifdef BENCH_HAVE_GST
#define GST_MISSING ""
#elif defined(BENCH_GST_MISSING)
#define GST_MISSING BENCH_GST_MISSING
#else
#define GST_MISSING "GStreamer not found at build time"
#endif
#ifndef BENCH_FRAMERING_VERSION
#define BENCH_FRAMERING_VERSION "?"
#endif

static const char *const kind_names[KIND_COUNT] = {"throughput", "latency", "64 B messages"};

/* ------------------------------------------------------------ helpers */

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What a side counts over its timed span: CPU, context switches, the transport's sleeps. */
struct side_mark {
	uint64_t cpu_ns, vcsw, ivcsw, sleeps;
};

static struct side_mark side_mark(struct endpoint *ep)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (struct side_mark){
		.cpu_ns = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
			  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u,
		.vcsw = (uint64_t)ru.ru_nvcsw,
		.ivcsw = (uint64_t)ru.ru_nivcsw,
		.sleeps = ep->cd->ops->sleeps ? ep->cd->ops->sleeps(ep) : 0,
	};
}

static void side_account(struct endpoint *ep, const struct side_mark *m0)
{
	struct side_mark m = side_mark(ep);
	ep->side->cpu_ns = m.cpu_ns - m0->cpu_ns;
	ep->side->vcsw = m.vcsw - m0->vcsw;
	ep->side->ivcsw = m.ivcsw - m0->ivcsw;
	ep->side->sleeps = m.sleeps - m0->sleeps;
}

void side_fail(struct side *s, const char *fmt, ...)
{
	if (s->failed)
		return; /* keep the first cause */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	s->failed = 1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

int wait_flag(_Atomic int *flag, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;
	while (!atomic_load(flag)) {
		if (now_ns() > deadline)
			return -1;
		sleep_ns(200000);
	}
	return 0;
}

/* ------------------------------------------------------------ the work */

/* Every byte (seq & 0xff), then the header words. */
static void fill(void *buf, size_t size, uint64_t seq, uint64_t t_capture, bool last)
{
	uint64_t h[HDR_WORDS] = {[HDR_SEQ] = seq, [HDR_T_CAPTURE] = t_capture, [HDR_LAST] = last};
	memset(buf, (int)(seq & 0xff), size);
	h[HDR_T_SENT] = t_capture ? now_ns() : 0;
	memcpy(buf, h, sizeof(h));
}

/* noinline: the same code reads every transport's buffer. */
static __attribute__((noinline)) uint64_t sum_words(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t s = 0;
	for (size_t i = 0; i < n / 8; i++)
		s += w[i];
	return s;
}

static uint64_t expected_sum(const uint64_t *h, size_t size)
{
	uint64_t pat = (h[HDR_SEQ] & 0xff) * 0x0101010101010101ull, s = 0;
	for (int i = 0; i < HDR_WORDS; i++)
		s += h[i];
	return s + pat * (size / 8 - HDR_WORDS);
}

/* One message: get a buffer, fill every byte, send it. */
static int produce(struct endpoint *ep, uint64_t seq, uint64_t t_capture, bool last)
{
	void *buf;
	if (ep->cd->ops->prod_get(ep, &buf) < 0)
		return -1;
	fill(buf, ep->ctl->msg_size, seq, t_capture, last);
	if (ep->cd->ops->prod_put(ep, buf) < 0)
		return -1;
	if ((seq & 1023) == 0 || last || ep->ctl->msg_size == FRAME_BYTES)
		atomic_store_explicit(&ep->ctl->sent, seq + 1, memory_order_relaxed);
	return 0;
}

static int producer_loop(struct endpoint *ep)
{
	struct ctl *c = ep->ctl;
	/* Warm-up, not measured: every buffer, chunk and page of the transport is
	 * touched once (first-touch page faults are set-up, not steady state). Then
	 * the timed part starts from a drained transport. */
	for (uint64_t i = 0; i < c->warmup; i++)
		if (produce(ep, i, 0, false) < 0)
			return -1;
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	while (atomic_load_explicit(&c->received, memory_order_relaxed) < c->warmup) {
		if (c->cons.failed)
			return -1;
		if (now_ns() > deadline) {
			side_fail(ep->side, "the consumer did not take the %" PRIu64 " warm-up messages within %d s",
				  c->warmup, (int)(SIDE_TIMEOUT_NS / 1000000000u));
			return -1;
		}
		sleep_ns(100000);
	}
	/* Reading the clock costs about as much as a 64 B message: look every 64. */
	uint64_t check_mask = c->msg_size < FRAME_BYTES ? 63 : 0;
	uint64_t n = 0;
	bool last = false;
	struct side_mark m0 = side_mark(ep);
	uint64_t t0 = now_ns();
	c->prod.t_start_ns = t0;
	while (!last) {
		uint64_t t_capture = 0;
		if (c->kind == KIND_LATENCY) {
			uint64_t due = t0 + n * c->period_ns, t = now_ns();
			if (due > t)
				sleep_ns(due - t);
			t_capture = now_ns();
		}
		last = n + 1 >= c->max_msgs ||
		       (c->kind != KIND_LATENCY && (n & check_mask) == 0 && now_ns() - t0 >= c->budget_ns);
		if (produce(ep, c->warmup + n, t_capture, last) < 0)
			return -1;
		n++;
	}
	c->prod.t_end_ns = now_ns();
	side_account(ep, &m0);
	c->prod.count = n;
	return 0;
}

static int consumer_loop(struct endpoint *ep)
{
	struct ctl *c = ep->ctl;
	const struct peer_ops *ops = ep->cd->ops;
	struct side_mark m0 = {0};
	for (uint64_t seq = 0;; seq++) {
		const void *p;
		size_t len;
		uint64_t h[HDR_WORDS];
		if (seq == c->warmup) { /* the timed part starts */
			m0 = side_mark(ep);
			c->cons.t_start_ns = now_ns();
		}
		if (ops->cons_get(ep, &p, &len) < 0)
			return -1;
		uint64_t t = c->kind == KIND_LATENCY ? now_ns() : 0; /* the whole message is in hand */
		if (len != c->msg_size) {
			side_fail(ep->side, "message %" PRIu64 " has %zu bytes, not %zu", seq, len, c->msg_size);
			return -1;
		}
		memcpy(h, p, sizeof(h));
		if (h[HDR_SEQ] != seq) {
			side_fail(ep->side, "message %" PRIu64 " carries sequence number %" PRIu64
				  " (lost, repeated or reordered)", seq, h[HDR_SEQ]);
			return -1;
		}
		if (sum_words(p, len) != expected_sum(h, len)) {
			side_fail(ep->side, "message %" PRIu64 " is corrupt (its sum is wrong)", seq);
			return -1;
		}
		if (c->kind == KIND_LATENCY && seq >= c->warmup && seq - c->warmup < c->max_msgs) {
			c->lat_capture[seq - c->warmup] = (double)(t - h[HDR_T_CAPTURE]) / 1000.0;
			c->lat_handoff[seq - c->warmup] = (double)(t - h[HDR_T_SENT]) / 1000.0;
		}
		if (ops->cons_put(ep) < 0)
			return -1;
		/* Every message of the warm-up (the producer waits for the last one), then now and then. */
		if (seq < c->warmup || (seq & 1023) == 0 || h[HDR_LAST] || len == FRAME_BYTES)
			atomic_store_explicit(&c->received, seq + 1, memory_order_relaxed);
		if (h[HDR_LAST]) {
			c->cons.count = seq + 1 - c->warmup;
			break;
		}
	}
	c->cons.t_end_ns = now_ns();
	side_account(ep, &m0);
	return 0;
}

/* --pin: run this process on the Nth CPU it may use (0 or 1), or say why not. */
static void pin_self(int nth)
{
	cpu_set_t all, one;
	CPU_ZERO(&one);
	if (sched_getaffinity(0, sizeof(all), &all) == 0)
		for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &all) && seen++ == nth) {
				CPU_SET(cpu, &one);
				break;
			}
	if (CPU_COUNT(&one) == 0 || sched_setaffinity(0, sizeof(one), &one) < 0)
		fprintf(stderr, "bench_peers: --pin: no CPU number %d to run on (this run is unpinned)\n", nth);
}

/* --hog: a nice-19 process that stays busy until killed; its pid, or -1. */
static pid_t start_hog(const char *what)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_IGN);
	if (setpriority(PRIO_PROCESS, 0, 19) < 0)
		_exit(1);
	if (strcmp(what, "mem") == 0) {
		size_t n = (size_t)64 << 20;
		volatile unsigned char *buf = malloc(n);
		if (!buf)
			_exit(1);
		for (unsigned v = 0;; v++)
			memset((unsigned char *)buf, (int)v, n);
	}
	for (volatile unsigned long spin = 0;; spin++)
		;
}

/* End the hog; the CPU it used, ns (0 if there was none). */
static uint64_t stop_hog(pid_t *pid)
{
	struct rusage ru;
	int status;
	if (*pid <= 0)
		return 0;
	kill(*pid, SIGKILL);
	while (wait4(*pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	*pid = -1;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* A child process: one side of one run. Never returns. */
static void __attribute__((noreturn)) child_main(struct ctl *c, const struct case_def *cd, bool producer,
						 const char *log_path)
{
	/* If the driver dies, so do we; Ctrl-C is the driver's business. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != c->driver_pid)
		_exit(3);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	/* Whatever the libraries print goes to a log the driver shows if the run fails. */
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	const struct peer_ops *ops = cd->ops;
	struct endpoint ep = {.ctl = c, .cd = cd, .side = producer ? &c->prod : &c->cons};
	int rc = -1;
	if (producer) {
		if (ops->prod_open(&ep) == 0) {
			atomic_store(&c->prod_ready, 1);
			uint64_t deadline = now_ns() + SETUP_TIMEOUT_NS;
			while (!atomic_load(&c->cons_ready) && !c->cons.failed && now_ns() < deadline)
				sleep_ns(200000);
			if (c->cons.failed)
				rc = 1; /* the consumer says why */
			else if (!atomic_load(&c->cons_ready))
				side_fail(&c->prod, "the consumer was not ready within %d s",
					  (int)(SETUP_TIMEOUT_NS / 1000000000u));
			else if ((!ops->prod_connected || ops->prod_connected(&ep) == 0) && producer_loop(&ep) == 0) {
				/* Keep the transport up until the consumer has everything. */
				uint64_t end = now_ns() + SIDE_TIMEOUT_NS;
				while (!atomic_load(&c->cons_done) && !c->cons.failed && now_ns() < end)
					sleep_ns(200000);
				if (atomic_load(&c->cons_done))
					rc = 0;
				else if (!c->cons.failed)
					side_fail(&c->prod, "sent the last message, but the consumer did not confirm it "
						  "within %d s (consumer got %" PRIu64 " of %" PRIu64 ")",
						  (int)(SIDE_TIMEOUT_NS / 1000000000u), atomic_load(&c->received),
						  atomic_load(&c->sent));
			}
		}
		ops->prod_close(&ep);
	} else {
		if (ops->cons_open(&ep) == 0) {
			atomic_store(&c->cons_ready, 1);
			if (consumer_loop(&ep) == 0) {
				atomic_store(&c->cons_done, 1);
				rc = 0;
			}
		}
		ops->cons_close(&ep);
	}
	fflush(NULL);
	/* exit(), not _exit(): iceoryx's runtime unregisters from RouDi in a destructor. */
	exit(rc == 0 ? 0 : 1);
}

/* ------------------------------------------------------------ options and cases */

struct options {
	int rounds;
	uint64_t frames;       /* throughput: at most this many frames per run */
	double time_s;         /* ... or this long */
	uint64_t lat_frames;   /* latency: frames per run */
	double fps;
	double small_s;        /* 64 B messages: seconds per run */
	bool kind_on[KIND_COUNT];
	const char *roudi;
	const char *cases;
	bool quick;
	bool per_run;          /* a line per run: where the time went */
	bool pin;              /* the producer on the first online CPU, the consumer on the second */
	const char *hog;       /* NULL, "mem" or "cpu": a nice-19 process busy the whole time */
};

static struct case_def cases[] = {
	/* the first row is the baseline of every ratio: the library's defaults */
	{"framering-default", "framering, 64 MiB ring (default, hot lap)", GROUP_FRAMES, &framering_ops, 0, 0, 0, ""},
	{"framering-2", "framering, 16 MiB ring (2 frames in flight)", GROUP_FRAMES, &framering_ops, 16u << 20, 0, 0, ""},
	{"framering-whole", "framering, 64 MiB ring, whole ring in turn (0.2)", GROUP_FRAMES, &framering_ops, 0,
	 FR_WHOLE_RING, 0, ""},
#ifdef BENCH_HAVE_ICEORYX
	{"iceoryx", "iceoryx, loan (8 x 6 MiB chunks, queue 4)", GROUP_FRAMES, &iceoryx_ops, 0, 0, 4, ""},
#else
	{"iceoryx", "iceoryx", GROUP_FRAMES, NULL, 0, 0, 0, ""},
#endif
#ifdef BENCH_HAVE_GST
	{"gst-shm", "GStreamer shm, buffers in shmsink's area", GROUP_FRAMES, &gst_ops, 0, GST_ZEROCOPY, 0, ""},
	{"gst-appsrc", "GStreamer shm, appsrc + one copy in", GROUP_FRAMES, &gst_ops, 0, GST_APPSRC_COPY, 0, ""},
#else
	{"gst-shm", "GStreamer shm, buffers in shmsink's area", GROUP_FRAMES, NULL, 0, 0, 0, ""},
	{"gst-appsrc", "GStreamer shm, appsrc + one copy in", GROUP_FRAMES, NULL, 0, 0, 0, ""},
#endif
	{"pipe", "pipe (1 MiB), write + read", GROUP_FRAMES, &pipe_ops, 0, 0, 0, ""},
	{"socket", "Unix stream socket, write + read", GROUP_FRAMES, &socket_ops, 0, 0, 0, ""},
	{"framering-copy-64", "framering copy mode (4 MiB ring)", GROUP_SMALL, &framering_ops, 4u << 20, 0, 0, ""},
#ifdef BENCH_HAVE_ICEORYX
	{"iceoryx-64", "iceoryx, loan (queue 256)", GROUP_SMALL, &iceoryx_ops, 0, 0, 256, ""},
#else
	{"iceoryx-64", "iceoryx", GROUP_SMALL, NULL, 0, 0, 0, ""},
#endif
	{"pipe-64", "pipe, write + read of 64 B", GROUP_SMALL, &pipe_ops, 0, 0, 0, ""},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static bool is_iceoryx(const struct case_def *cd)
{
	return strncmp(cd->key, "iceoryx", 7) == 0;
}

static bool is_gst(const struct case_def *cd)
{
	return strncmp(cd->key, "gst", 3) == 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_peers [OPTIONS]\n"
		"framering against iceoryx, GStreamer shmsink/shmsrc, a pipe and a Unix socket: 1080p BGR frames\n"
		"(producer memsets all 6,220,800 bytes, in the transport's shared buffer where it has one; the\n"
		"consumer sums every byte), between two processes. Measures throughput, one-way latency at a\n"
		"paced frame rate, CPU per frame of each side, and 64 B messages/s. Prints medians over\n"
		"interleaved rounds and per-round ratios to framering; asserts nothing.\n"
		"\n"
		"  --quick            a few seconds: 1 round, short runs\n"
		"  --rounds N         rounds (default 5, at most %d); round r runs every case once, order rotated\n"
		"  --frames N         throughput: at most N frames per run (default 2000)\n"
		"  --time SEC         throughput: at most SEC seconds per run (default 3)\n"
		"  --latency-frames N latency: frames per run (default 120)\n"
		"  --fps F            latency: frame rate (default 60)\n"
		"  --small-time SEC   64 B messages: seconds per run (default 1)\n"
		"  --no-throughput, --no-latency, --no-small   leave a part out\n"
		"  --per-run          also a line per run, as it ends: rate, each side's CPU, sleeps (framering's\n"
		"                     futex waits) and context switches per message, how often the driver saw\n"
		"                     both sides runnable and both on one CPU (sampled every 2 ms), steal time\n"
		"  --pin              the producer on one CPU, the consumer on another (default: unpinned)\n"
		"  --hog mem|cpu      keep a nice-19 process busy meanwhile, as other work on a machine is:\n"
		"                     mem writes a 64 MiB buffer over and over (it takes the cache and memory\n"
		"                     bandwidth whenever a side sleeps), cpu only spins\n"
		"  --cases LIST       comma list of case names (default all):\n",
		MAX_ROUNDS);
	for (int i = 0; i < NCASES; i++)
		fprintf(f, "                       %-18s %s%s\n", cases[i].key, cases[i].label,
			cases[i].ops ? "" : "  [not built]");
	fprintf(f,
		"  --roudi PATH       the iceoryx daemon (default %s); bench_peers starts and stops it\n"
		"  -h, --help         this text\n"
		"Peers built in: iceoryx %s%s%s, GStreamer %s%s%s.\n"
		"Exit status: 0 every run completed with correct data, 1 a run failed or got stuck (its line\n"
		"says why; the other figures are still printed), 2 bad option, 130 interrupted.\n",
		BENCH_ROUDI, ICEORYX_MISSING[0] ? "no (" : "yes", ICEORYX_MISSING, ICEORYX_MISSING[0] ? ")" : "",
		GST_MISSING[0] ? "no (" : "yes", GST_MISSING, GST_MISSING[0] ? ")" : "");
}

static int parse_num(const char *arg, double lo, double hi, double *out, const char *opt)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "bench_peers: %s wants a number in %g..%g, not '%s'\n", opt, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){.rounds = 5, .frames = 2000, .time_s = 3, .lat_frames = 120, .fps = 60,
			      .small_s = 1, .kind_on = {true, true, true}, .roudi = BENCH_ROUDI};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			o->quick = true;
			o->rounds = 1;
			o->frames = 200;
			o->time_s = 0.3;
			o->lat_frames = 15;
			o->small_s = 0.15;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		double v;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			continue;
		} else if (strcmp(a, "--no-throughput") == 0) {
			o->kind_on[KIND_THROUGHPUT] = false;
			continue;
		} else if (strcmp(a, "--no-latency") == 0) {
			o->kind_on[KIND_LATENCY] = false;
			continue;
		} else if (strcmp(a, "--no-small") == 0) {
			o->kind_on[KIND_SMALL] = false;
			continue;
		} else if (strcmp(a, "--per-run") == 0) {
			o->per_run = true;
			continue;
		} else if (strcmp(a, "--pin") == 0) {
			o->pin = true;
			continue;
		} else if (!val || strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "bench_peers: unknown option or missing value: '%s' (see --help)\n", a);
			return -1;
		} else if (strcmp(a, "--rounds") == 0) {
			if (parse_num(val, 1, MAX_ROUNDS, &v, a) < 0)
				return -1;
			o->rounds = (int)v;
		} else if (strcmp(a, "--frames") == 0) {
			if (parse_num(val, 2, 1e7, &v, a) < 0)
				return -1;
			o->frames = (uint64_t)v;
		} else if (strcmp(a, "--time") == 0) {
			if (parse_num(val, 0.01, 600, &o->time_s, a) < 0)
				return -1;
		} else if (strcmp(a, "--latency-frames") == 0) {
			if (parse_num(val, 2, MAX_LAT_FRAMES, &v, a) < 0)
				return -1;
			o->lat_frames = (uint64_t)v;
		} else if (strcmp(a, "--fps") == 0) {
			if (parse_num(val, 1, 1000, &o->fps, a) < 0)
				return -1;
		} else if (strcmp(a, "--small-time") == 0) {
			if (parse_num(val, 0.01, 600, &o->small_s, a) < 0)
				return -1;
		} else if (strcmp(a, "--cases") == 0) {
			o->cases = val;
		} else if (strcmp(a, "--roudi") == 0) {
			o->roudi = val;
		} else if (strcmp(a, "--hog") == 0) {
			if (strcmp(val, "mem") != 0 && strcmp(val, "cpu") != 0) {
				fprintf(stderr, "bench_peers: --hog wants mem or cpu, not '%s'\n", val);
				return -1;
			}
			o->hog = val;
		} else {
			fprintf(stderr, "bench_peers: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		i++;
	}
	if (o->cases) {
		char buf[512];
		bool on[64] = {false};
		if (strlen(o->cases) >= sizeof(buf)) {
			fprintf(stderr, "bench_peers: --cases list too long\n");
			return -1;
		}
		strcpy(buf, o->cases);
		for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			int k;
			for (k = 0; k < NCASES && strcmp(tok, cases[k].key) != 0; k++)
				;
			if (k == NCASES) {
				fprintf(stderr, "bench_peers: unknown case '%s' (see --help)\n", tok);
				return -1;
			}
			on[k] = true;
		}
		for (int k = 0; k < NCASES; k++)
			if (!on[k])
				snprintf(cases[k].skip, sizeof(cases[k].skip), "left out (--cases)");
	}
	return 0;
}

/* ------------------------------------------------------------ running */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static char tmpdir[64];
static unsigned run_counter;

struct outcome {
	bool ok;
	double rate;                        /* frames/s or messages/s */
	double cpu_prod, cpu_cons, cpu_daemon; /* ns per message */
	double p50, p99, h50;               /* latency, us */
	/* --per-run only: per message, and the driver's samples of where the sides were */
	double sleeps_prod, sleeps_cons, vcsw_prod, vcsw_cons, ivcsw_prod, ivcsw_cons;
	double both_runnable, same_cpu;     /* share of samples: both sides runnable / on one CPU */
	double steal;                       /* share of the machine's CPU time taken by the hypervisor */
	uint64_t samples;
};

/* Whether process PID is runnable ('R') and the CPU it is on or last ran on; false if unknown. */
static bool sample_task(pid_t pid, bool *runnable, int *cpu)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || p[1] != ' ')
		return false;
	p += 2;
	*runnable = *p == 'R';
	/* Field 39 (processor) is the 37th after the name. */
	for (int field = 3; field < 39; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	*cpu = atoi(p);
	return true;
}

/* The machine's CPU time so far from /proc/stat's first line, ns per field:
 * user nice system idle iowait irq softirq steal. False if unreadable. */
static bool machine_cpu_ns(double ns[8])
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return false;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		       &v[6], &v[7]);
	fclose(f);
	for (int i = 0; i < 8; i++)
		ns[i] = (double)v[i] * 1e9 / (double)sysconf(_SC_CLK_TCK);
	return n == 8;
}

/* The machine's steal time so far (the hypervisor ran someone else on our CPUs), ns. */
static uint64_t machine_steal_ns(void)
{
	double ns[8];
	return machine_cpu_ns(ns) ? (uint64_t)ns[7] : 0;
}

static void kill_wait(pid_t *pid, int *status)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, status, 0) < 0 && errno == EINTR)
		;
	*pid = -1;
}

/* The last non-empty line of a child's log, if any. */
static void log_tail(const char *path, char *out, size_t n)
{
	char line[512];
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n') {
			size_t l = strlen(line) < n ? strlen(line) : n - 1;
			memcpy(out, line, l);
			out[l] = '\0';
		}
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of n values (sorted in place). */
static double percentile(double *v, size_t n, double pct)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(double), cmp_double);
	size_t k = (size_t)ceil(pct / 100.0 * (double)n);
	return v[(k < 1 ? 1 : k > n ? n : k) - 1];
}

static int run_one(struct ctl *c, struct case_def *cd, int kind, const struct options *o, int round,
		   struct outcome *out, double *lat_pool_cap, double *lat_pool_hand, size_t *nlat)
{
	char why[300] = "", prod_log[128], cons_log[128];
	pid_t prod = -1, cons = -1, prod_pid = -1, cons_pid = -1;
	int prod_status = 0, cons_status = 0;
	bool stuck = false;
	unsigned id = run_counter++;
	uint64_t steal0 = 0, t_timed = 0, n_both = 0, n_same = 0; /* --per-run */
	double *lat_cap = c->lat_capture, *lat_hand = c->lat_handoff;

	memset(c, 0, sizeof(*c));
	c->lat_capture = lat_cap;
	c->lat_handoff = lat_hand;
	c->kind = kind;
	c->msg_size = kind == KIND_SMALL ? SMALL_BYTES : FRAME_BYTES;
	c->max_msgs = kind == KIND_LATENCY ? o->lat_frames : kind == KIND_SMALL ? UINT64_MAX : o->frames;
	c->budget_ns = (uint64_t)((kind == KIND_SMALL ? o->small_s : o->time_s) * 1e9);
	c->period_ns = (uint64_t)(1e9 / o->fps);
	c->warmup = kind == KIND_SMALL ? WARMUP_SMALL : WARMUP_FRAMES;
	c->fds[0] = c->fds[1] = -1;
	c->driver_pid = getpid();
	snprintf(c->instance, sizeof(c->instance), "driver%d", (int)getpid());
	if (is_gst(cd))
		snprintf(c->name, sizeof(c->name), "%s/gst-%u.sock", tmpdir, id);
	else if (is_iceoryx(cd))
		snprintf(c->name, sizeof(c->name), "run%u", id);
	else
		snprintf(c->name, sizeof(c->name), "bench-peers-%d-%u", (int)getpid(), id);
	snprintf(prod_log, sizeof(prod_log), "%s/run%u-producer.log", tmpdir, id);
	snprintf(cons_log, sizeof(cons_log), "%s/run%u-consumer.log", tmpdir, id);
	*out = (struct outcome){0};

	uint64_t daemon0 = 0;
#ifdef BENCH_HAVE_ICEORYX
	if (is_iceoryx(cd))
		daemon0 = roudi_cpu_ns();
#endif
	if (cd->ops->setup && cd->ops->setup(c, cd, why, sizeof(why)) < 0)
		goto report;
	fflush(NULL);
	if ((prod = fork()) < 0) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		goto report;
	}
	if (prod == 0) {
		if (o->pin)
			pin_self(0);
		child_main(c, cd, true, prod_log);
	}
	prod_pid = prod;
	/* The consumer starts once the producer has made the transport. */
	uint64_t deadline = now_ns() + SETUP_TIMEOUT_NS;
	while (!atomic_load(&c->prod_ready) && !stop_requested) {
		if (waitpid(prod, &prod_status, WNOHANG) == prod) {
			prod = -1;
			break;
		}
		if (now_ns() > deadline) {
			stuck = true;
			snprintf(why, sizeof(why), "STUCK: the producer did not set up within %d s: killed",
				 (int)(SETUP_TIMEOUT_NS / 1000000000u));
			break;
		}
		sleep_ns(1000000);
	}
	if (prod > 0 && atomic_load(&c->prod_ready) && !stop_requested) {
		fflush(NULL);
		if ((cons = fork()) < 0)
			snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		else if (cons == 0) {
			if (o->pin)
				pin_self(1);
			child_main(c, cd, false, cons_log);
		}
		cons_pid = cons;
	}
	if (c->fds[0] >= 0)
		close(c->fds[0]);
	if (c->fds[1] >= 0)
		close(c->fds[1]);

	/* Watch both until they end; a run past its time is stuck. */
	uint64_t expect = kind == KIND_LATENCY ? o->lat_frames * c->period_ns : c->budget_ns;
	deadline = now_ns() + SETUP_TIMEOUT_NS + expect + WATCHDOG_MARGIN_NS;
	uint64_t failed_at = 0;
	bool timed = false;
	while (prod > 0 || cons > 0) {
		if (!timed && atomic_load(&c->cons_ready)) {
			/* Both set up: from now on the run has its expected time and a margin. */
			timed = true;
			t_timed = now_ns();
			deadline = t_timed + expect + WATCHDOG_MARGIN_NS;
			steal0 = machine_steal_ns();
		}
		if (o->per_run && timed && prod > 0 && cons > 0) {
			bool run_p, run_c;
			int cpu_p, cpu_c;
			if (sample_task(prod, &run_p, &cpu_p) && sample_task(cons, &run_c, &cpu_c)) {
				out->samples++;
				n_both += run_p && run_c;
				n_same += run_p && run_c && cpu_p == cpu_c;
			}
		}
		if (prod > 0 && waitpid(prod, &prod_status, WNOHANG) == prod)
			prod = -1;
		if (cons > 0 && waitpid(cons, &cons_status, WNOHANG) == cons)
			cons = -1;
		if (prod <= 0 && cons <= 0)
			break;
		bool one_failed = (prod <= 0 && (prod_status != 0 || c->prod.failed)) ||
				  (cons <= 0 && (cons_status != 0 || c->cons.failed)) || c->prod.failed ||
				  c->cons.failed || (cons_pid < 0 && prod > 0);
		if (one_failed && !failed_at)
			failed_at = now_ns();
		if (stop_requested || (failed_at && now_ns() - failed_at > GRACE_NS)) {
			kill_wait(&prod, &prod_status);
			kill_wait(&cons, &cons_status);
			break;
		}
		if (now_ns() > deadline) {
			stuck = true;
			snprintf(why, sizeof(why),
				 "STUCK: %s %.0f s (producer sent %" PRIu64 ", consumer got %" PRIu64
				 "): both sides killed",
				 timed ? "no end within" : "no consumer ready within",
				 (double)((timed ? 0 : SETUP_TIMEOUT_NS) + expect + WATCHDOG_MARGIN_NS) / 1e9,
				 atomic_load(&c->sent), atomic_load(&c->received));
			kill_wait(&prod, &prod_status);
			kill_wait(&cons, &cons_status);
			break;
		}
		sleep_ns(2000000);
	}
	if (cd->ops->cleanup)
		cd->ops->cleanup(c, cd, prod_pid, cons_pid);
	if (stop_requested)
		return -1;
	if (!why[0]) {
		if (c->cons.failed)
			snprintf(why, sizeof(why), "consumer: %s", c->cons.err);
		else if (c->prod.failed)
			snprintf(why, sizeof(why), "producer: %s", c->prod.err);
		else if (!WIFEXITED(prod_status) || WEXITSTATUS(prod_status) != 0 || prod_pid < 0)
			snprintf(why, sizeof(why), "the producer %s (status 0x%x)",
				 WIFSIGNALED(prod_status) ? "was killed by a signal" : "failed", prod_status);
		else if (!WIFEXITED(cons_status) || WEXITSTATUS(cons_status) != 0 || cons_pid < 0)
			snprintf(why, sizeof(why), "the consumer %s (status 0x%x)",
				 WIFSIGNALED(cons_status) ? "was killed by a signal" : "failed", cons_status);
		else if (c->prod.count != c->cons.count || c->cons.count == 0)
			snprintf(why, sizeof(why), "the producer sent %" PRIu64 " messages, the consumer got %" PRIu64,
				 c->prod.count, c->cons.count);
	}
report:
	if (why[0]) {
		char tail[300];
		fprintf(stderr, "\r\033[Kbench_peers: round %d, %s, %s: %s%s\n", round + 1, cd->label, kind_names[kind],
			stuck ? "" : "FAILED: ", why);
		for (int s = 0; s < 2; s++) {
			log_tail(s ? cons_log : prod_log, tail, sizeof(tail));
			if (tail[0])
				fprintf(stderr, "  %s's output ends: %s\n", s ? "consumer" : "producer", tail);
		}
		return 1;
	}
	uint64_t n = c->cons.count;
	double span = (double)(c->cons.t_end_ns - c->prod.t_start_ns) / 1e9;
	if (t_timed) {
		double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
		out->steal = (double)(machine_steal_ns() - steal0) / ((double)(now_ns() - t_timed) * ncpu);
	}
	if (out->samples) {
		out->both_runnable = (double)n_both / (double)out->samples;
		out->same_cpu = (double)n_same / (double)out->samples;
	}
	out->sleeps_prod = (double)c->prod.sleeps / (double)n;
	out->sleeps_cons = (double)c->cons.sleeps / (double)n;
	out->vcsw_prod = (double)c->prod.vcsw / (double)n;
	out->vcsw_cons = (double)c->cons.vcsw / (double)n;
	out->ivcsw_prod = (double)c->prod.ivcsw / (double)n;
	out->ivcsw_cons = (double)c->cons.ivcsw / (double)n;
	out->ok = true;
	out->rate = span > 0 ? (double)n / span : 0;
	out->cpu_prod = (double)c->prod.cpu_ns / (double)n;
	out->cpu_cons = (double)c->cons.cpu_ns / (double)n;
	out->cpu_daemon = NAN;
#ifdef BENCH_HAVE_ICEORYX
	if (is_iceoryx(cd))
		out->cpu_daemon = (double)(roudi_cpu_ns() - daemon0) / (double)n;
#else
	(void)daemon0;
#endif
	if (kind == KIND_LATENCY) {
		size_t m = (size_t)(n < o->lat_frames ? n : o->lat_frames);
		memcpy(lat_pool_cap + *nlat, c->lat_capture, m * sizeof(double));
		memcpy(lat_pool_hand + *nlat, c->lat_handoff, m * sizeof(double));
		*nlat += m;
		out->p50 = percentile(c->lat_capture, m, 50);
		out->p99 = percentile(c->lat_capture, m, 99);
		out->h50 = percentile(c->lat_handoff, m, 50);
	}
	return 0;
}

/* ------------------------------------------------------------ results */

struct results {
	struct outcome r[64][KIND_COUNT][MAX_ROUNDS];
	int failures[64][KIND_COUNT];
	double *lat_cap[64], *lat_hand[64];
	size_t nlat[64];
};

/* Median of the rounds that completed, and their range; NAN if none. */
static double stat_of(const struct results *R, int k, int kind, int rounds, size_t field, double *lo, double *hi)
{
	double v[MAX_ROUNDS];
	int n = 0;
	for (int r = 0; r < rounds; r++) {
		const struct outcome *oc = &R->r[k][kind][r];
		if (!oc->ok)
			continue;
		double x = *(const double *)((const char *)oc + field);
		if (!isnan(x))
			v[n++] = x;
	}
	if (!n) {
		*lo = *hi = NAN;
		return NAN;
	}
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Per-round ratio case / reference: median and range over rounds where both completed. */
static double ratio_of(const struct results *R, int k, int ref, int kind, int rounds, size_t field, double *lo,
		       double *hi)
{
	double v[MAX_ROUNDS];
	int n = 0;
	for (int r = 0; r < rounds; r++) {
		const struct outcome *a = &R->r[k][kind][r], *b = &R->r[ref][kind][r];
		if (!a->ok || !b->ok)
			continue;
		double x = *(const double *)((const char *)a + field), y = *(const double *)((const char *)b + field);
		if (y > 0)
			v[n++] = x / y;
	}
	if (!n) {
		*lo = *hi = NAN;
		return NAN;
	}
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int completed(const struct results *R, int k, int kind, int rounds)
{
	int n = 0;
	for (int r = 0; r < rounds; r++)
		n += R->r[k][kind][r].ok;
	return n;
}

static const char *fmt_ratio(char *buf, size_t n, double m, double lo, double hi)
{
	if (isnan(m))
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.2fx (%.2f-%.2f)", m, lo, hi);
	return buf;
}

static const char *fmt_ms(char *buf, size_t n, double ns)
{
	if (isnan(ns))
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.3f", ns / 1e6);
	return buf;
}

/* A row that has no figures: why. */
static bool print_missing(const struct results *R, int k, int kind, int rounds)
{
	if (cases[k].skip[0]) {
		printf("%-44s not measured: %s\n", cases[k].label, cases[k].skip);
		return true;
	}
	if (!completed(R, k, kind, rounds)) {
		printf("%-44s failed in every round it ran (see the lines on stderr)\n", cases[k].label);
		return true;
	}
	return false;
}

static int reference_case(enum group group)
{
	for (int k = 0; k < NCASES; k++)
		if (cases[k].group == group)
			return k;
	return 0;
}

#define FIELD(f) offsetof(struct outcome, f)

/* Throughput: in how many rounds another case ran faster than the reference
 * (issue 13 asks that no peer does in any round); one line for all of them. */
static void print_rounds_ahead(const struct results *R, int ref, int rounds)
{
	bool any = false;
	for (int k = 0; k < NCASES; k++) {
		if (k == ref || cases[k].group != GROUP_FRAMES || cases[k].skip[0])
			continue;
		int both = 0, ahead = 0;
		for (int r = 0; r < rounds; r++) {
			const struct outcome *a = &R->r[k][KIND_THROUGHPUT][r], *b = &R->r[ref][KIND_THROUGHPUT][r];
			if (!a->ok || !b->ok)
				continue;
			both++;
			ahead += a->rate > b->rate;
		}
		if (!both)
			continue;
		printf("%s %s %d of %d", any ? "," : "Rounds in which a case ran faster than the first row:", cases[k].key,
		       ahead, both);
		any = true;
	}
	if (any)
		printf("\n");
}

static void print_results(const struct options *o, const struct results *R, int rounds)
{
	char a[64], b[64], d[32], e[32], g[32];
	double lo, hi, rlo, rhi;
	int ref = reference_case(GROUP_FRAMES), ref_small = reference_case(GROUP_SMALL);

	if (o->kind_on[KIND_THROUGHPUT]) {
		printf("\nThroughput: at most %" PRIu64 " frames or %.1f s per run; frames/s = frames / (last frame "
		       "summed - first frame started)\n",
		       o->frames, o->time_s);
		printf("CPU ms/frame: getrusage of each process (all its threads) over the run; daemon = RouDi\n");
		printf("%-44s %9s %15s %6s %-22s %8s %8s %8s\n", "case", "frames/s", "(min-max)", "GB/s",
		       "vs framering (min-max)", "producer", "consumer", "daemon");
		for (int k = 0; k < NCASES; k++) {
			if (cases[k].group != GROUP_FRAMES || print_missing(R, k, KIND_THROUGHPUT, rounds))
				continue;
			double x, y; /* ranges not printed */
			double cp = stat_of(R, k, KIND_THROUGHPUT, rounds, FIELD(cpu_prod), &x, &y);
			double cc = stat_of(R, k, KIND_THROUGHPUT, rounds, FIELD(cpu_cons), &x, &y);
			double cdm = stat_of(R, k, KIND_THROUGHPUT, rounds, FIELD(cpu_daemon), &x, &y);
			double m = stat_of(R, k, KIND_THROUGHPUT, rounds, FIELD(rate), &lo, &hi);
			double rm = ratio_of(R, k, ref, KIND_THROUGHPUT, rounds, FIELD(rate), &rlo, &rhi);
			snprintf(b, sizeof(b), "(%.0f-%.0f)", lo, hi);
			printf("%-44s %9.0f %15s %6.2f %-22s %8s %8s %8s%s\n", cases[k].label, m, b,
			       m * (double)FRAME_BYTES / 1e9, fmt_ratio(a, sizeof(a), rm, rlo, rhi),
			       fmt_ms(d, sizeof(d), cp), fmt_ms(e, sizeof(e), cc), fmt_ms(g, sizeof(g), cdm),
			       completed(R, k, KIND_THROUGHPUT, rounds) < rounds ? "  (some rounds failed)" : "");
		}
		print_rounds_ahead(R, ref, rounds);
	}
	if (o->kind_on[KIND_LATENCY]) {
		printf("\nLatency at %.0f fps: %" PRIu64 " frames per run; capture stamp (CLOCK_MONOTONIC) taken before "
		       "the frame is filled,\nthe consumer reads the clock when the whole frame is in hand (before "
		       "summing it); p50/p99 of all rounds' frames;\nsent->consumer: stamp taken after the fill, just "
		       "before the hand-off; ratio = per-round p50 / framering's\n",
		       o->fps, o->lat_frames);
		printf("%-44s %8s %8s %14s %-22s %8s %8s %8s\n", "case", "p50 us", "p99 us", "sent->cons p50",
		       "vs framering (min-max)", "producer", "consumer", "daemon");
		for (int k = 0; k < NCASES; k++) {
			if (cases[k].group != GROUP_FRAMES || print_missing(R, k, KIND_LATENCY, rounds))
				continue;
			size_t n = R->nlat[k];
			double p50 = percentile(R->lat_cap[k], n, 50), p99 = percentile(R->lat_cap[k], n, 99);
			double h50 = percentile(R->lat_hand[k], n, 50);
			double rm = ratio_of(R, k, ref, KIND_LATENCY, rounds, FIELD(p50), &rlo, &rhi);
			double cp = stat_of(R, k, KIND_LATENCY, rounds, FIELD(cpu_prod), &lo, &hi);
			double cc = stat_of(R, k, KIND_LATENCY, rounds, FIELD(cpu_cons), &lo, &hi);
			double cdm = stat_of(R, k, KIND_LATENCY, rounds, FIELD(cpu_daemon), &lo, &hi);
			printf("%-44s %8.0f %8.0f %14.0f %-22s %8s %8s %8s%s\n", cases[k].label, p50, p99, h50,
			       fmt_ratio(a, sizeof(a), rm, rlo, rhi), fmt_ms(d, sizeof(d), cp), fmt_ms(e, sizeof(e), cc),
			       fmt_ms(g, sizeof(g), cdm),
			       completed(R, k, KIND_LATENCY, rounds) < rounds ? "  (some rounds failed)" : "");
		}
		printf("(CPU ms/frame here is at the paced rate: it includes going to sleep and waking up)\n");
	}
	if (o->kind_on[KIND_SMALL]) {
		printf("\n64 B messages: %.2f s per run, lossless, the consumer checks every message\n", o->small_s);
		printf("%-44s %12s %21s %-22s %8s %8s\n", "case", "msgs/s", "(min-max)", "vs framering (min-max)",
		       "prod us", "cons us");
		for (int k = 0; k < NCASES; k++) {
			if (cases[k].group != GROUP_SMALL || print_missing(R, k, KIND_SMALL, rounds))
				continue;
			double x, y; /* ranges not printed */
			double cp = stat_of(R, k, KIND_SMALL, rounds, FIELD(cpu_prod), &x, &y);
			double cc = stat_of(R, k, KIND_SMALL, rounds, FIELD(cpu_cons), &x, &y);
			double m = stat_of(R, k, KIND_SMALL, rounds, FIELD(rate), &lo, &hi);
			double rm = ratio_of(R, k, ref_small, KIND_SMALL, rounds, FIELD(rate), &rlo, &rhi);
			snprintf(b, sizeof(b), "(%.2fM-%.2fM)", lo / 1e6, hi / 1e6);
			printf("%-44s %11.2fM %21s %-22s %8.3f %8.3f\n", cases[k].label, m / 1e6, b,
			       fmt_ratio(a, sizeof(a), rm, rlo, rhi), cp / 1e3, cc / 1e3);
		}
		printf("(prod us / cons us: CPU microseconds per message of each process)\n");
	}
}

/* --per-run: one run's line. Sleeps and switches are per message; "+" separates
 * voluntary (waited) from involuntary (preempted) switches. */
static void print_run(const struct case_def *cd, int kind, int round, const struct outcome *oc, bool tty)
{
	if (tty)
		fprintf(stderr, "\r\033[K");
	printf("run %2d %-7s %-18s %10.0f/s  cpu ms p %.3f c %.3f  sleeps p %.2f c %.2f  csw p %.2f+%.2f "
	       "c %.2f+%.2f  both runnable %3.0f%%  one CPU %3.0f%%  steal %4.1f%%\n",
	       round + 1, kind_names[kind], cd->key, oc->rate, oc->cpu_prod / 1e6, oc->cpu_cons / 1e6, oc->sleeps_prod,
	       oc->sleeps_cons, oc->vcsw_prod, oc->ivcsw_prod, oc->vcsw_cons, oc->ivcsw_cons,
	       oc->both_runnable * 100, oc->same_cpu * 100, oc->steal * 100);
	fflush(stdout);
}

/* ------------------------------------------------------------ machine */

/* Busy CPU time of the whole machine, ns (from /proc/stat). */
static uint64_t machine_busy_ns(void)
{
	double ns[8];
	if (!machine_cpu_ns(ns))
		return 0;
	return (uint64_t)(ns[0] + ns[1] + ns[2] + ns[5] + ns[6] + ns[7]);
}

static uint64_t own_and_children_cpu_ns(void)
{
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return (uint64_t)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) *
		       1000000000u +
	       (uint64_t)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec) * 1000u;
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	if (!d)
		return;
	struct dirent *e;
	char path[400];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

#ifdef BENCH_HAVE_GST
/* In a child (GStreamer must not be initialised in a process that forks the others). */
static void gst_check(char *version, size_t vn, char *why, size_t n)
{
	struct msg {
		int rc;
		char version[64], why[256];
	} *m = mmap(NULL, sizeof(struct msg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		snprintf(why, n, "mmap: %s", strerror(errno));
		return;
	}
	m->rc = -1;
	snprintf(m->why, sizeof(m->why), "the GStreamer check did not finish");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		m->rc = gst_preflight(m->version, sizeof(m->version), m->why, sizeof(m->why));
		_exit(0);
	}
	if (pid > 0) {
		/* The first gst_init of a user builds the plugin registry: allow for it. */
		uint64_t deadline = now_ns() + SETUP_TIMEOUT_NS;
		int status;
		while (waitpid(pid, &status, WNOHANG) != pid) {
			if (now_ns() > deadline || stop_requested) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			sleep_ns(5000000);
		}
	}
	snprintf(version, vn, "%s", m->version);
	if (m->rc < 0)
		snprintf(why, n, "%s", m->why);
	munmap(m, sizeof(*m));
}
#endif

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	struct options o;
	struct results *R = NULL;
	struct ctl *c = MAP_FAILED;
	double *lat = MAP_FAILED;
	int ret = 1, failures = 0, rounds_done = 0;
	bool roudi_up = false; /* stays false without iceoryx */
	pid_t hog = -1;         /* --hog */
	uint64_t hog_ns = 0;
	(void)roudi_up;
	size_t lat_bytes;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	for (int k = 0; k < NCASES; k++) {
		if (!cases[k].ops && !cases[k].skip[0])
			snprintf(cases[k].skip, sizeof(cases[k].skip), "not built: %s",
				 is_iceoryx(&cases[k]) ? ICEORYX_MISSING : GST_MISSING);
		if (!o.kind_on[KIND_SMALL] && cases[k].group == GROUP_SMALL && !cases[k].skip[0])
			snprintf(cases[k].skip, sizeof(cases[k].skip), "left out (--no-small)");
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench_peers.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		fprintf(stderr, "bench_peers: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	R = calloc(1, sizeof(*R));
	c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lat_bytes = 2 * (size_t)o.lat_frames * sizeof(double);
	lat = mmap(NULL, lat_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!R || c == MAP_FAILED || lat == MAP_FAILED) {
		fprintf(stderr, "bench_peers: out of memory\n");
		goto end;
	}
	for (int k = 0; k < NCASES; k++) {
		R->lat_cap[k] = malloc((size_t)o.rounds * o.lat_frames * sizeof(double));
		R->lat_hand[k] = malloc((size_t)o.rounds * o.lat_frames * sizeof(double));
		if (!R->lat_cap[k] || !R->lat_hand[k]) {
			fprintf(stderr, "bench_peers: out of memory\n");
			goto end;
		}
	}
	c->lat_capture = lat;
	c->lat_handoff = lat + o.lat_frames;

	uint64_t t_begin = now_ns(), busy0 = machine_busy_ns(), own0 = own_and_children_cpu_ns();
	printf("bench_peers: %d round(s), 1080p BGR frames (%zu B), %ld online CPUs, %s%s\n", o.rounds,
	       FRAME_BYTES, sysconf(_SC_NPROCESSORS_ONLN), o.pin ? "each side pinned" : "nothing pinned",
	       o.quick ? " (--quick: figures are a smoke test)" : "");
	printf("framering %s (this tree)\n", BENCH_FRAMERING_VERSION);
	if (o.hog) {
		hog = start_hog(o.hog);
		printf("--hog %s: a nice-19 process %s meanwhile%s\n", o.hog,
		       strcmp(o.hog, "mem") == 0 ? "writes a 64 MiB buffer over and over" : "spins",
		       hog < 0 ? " (NOT STARTED: fork failed)" : "");
	}
	fflush(stdout);

	/* Peers that need a check or a daemon. */
#ifdef BENCH_HAVE_GST
	{
		bool want = false;
		for (int k = 0; k < NCASES; k++)
			want |= is_gst(&cases[k]) && !cases[k].skip[0];
		if (want) {
			char version[64] = "", why[256] = "";
			gst_check(version, sizeof(version), why, sizeof(why));
			printf("GStreamer: runtime %s, built with %s (%s)%s%s\n", version[0] ? version : "?",
			       BENCH_GST_VERSION, BENCH_GST_DEB, why[0] ? "; NOT MEASURED: " : "", why);
			for (int k = 0; why[0] && k < NCASES; k++)
				if (is_gst(&cases[k]) && !cases[k].skip[0])
					snprintf(cases[k].skip, sizeof(cases[k].skip), "%s", why);
		}
	}
#endif
#ifdef BENCH_HAVE_ICEORYX
	{
		bool want = false;
		for (int k = 0; k < NCASES; k++)
			want |= is_iceoryx(&cases[k]) && !cases[k].skip[0];
		if (want) {
			char why[256] = "";
			roudi_up = roudi_start(o.roudi, tmpdir, why, sizeof(why)) == 0;
			printf("iceoryx: %s (%s), RouDi %s started by bench_peers with its own config%s%s\n",
			       BENCH_ICEORYX_VERSION, BENCH_ICEORYX_DEB, o.roudi, roudi_up ? "" : "; NOT MEASURED: ",
			       why);
			for (int k = 0; !roudi_up && k < NCASES; k++)
				if (is_iceoryx(&cases[k]) && !cases[k].skip[0])
					snprintf(cases[k].skip, sizeof(cases[k].skip), "%s", why);
		}
	}
#endif
	for (int k = 0; k < NCASES; k++)
		if (cases[k].skip[0] && strncmp(cases[k].skip, "left out", 8) != 0)
			printf("not measured: %s: %s\n", cases[k].label, cases[k].skip);
	fflush(stdout);

	bool tty = isatty(STDERR_FILENO);
	for (int r = 0; r < o.rounds && !stop_requested; r++) {
		for (int kind = 0; kind < KIND_COUNT && !stop_requested; kind++) {
			if (!o.kind_on[kind])
				continue;
			enum group group = kind == KIND_SMALL ? GROUP_SMALL : GROUP_FRAMES;
			int idx[64], n = 0;
			for (int k = 0; k < NCASES; k++)
				if (cases[k].group == group)
					idx[n++] = k;
			for (int j = 0; j < n && !stop_requested; j++) {
				int k = idx[(j + r) % n]; /* rotated order */
				if (cases[k].skip[0] || R->failures[k][kind])
					continue; /* a case that failed is not run again */
#ifdef BENCH_HAVE_ICEORYX
				if (is_iceoryx(&cases[k]) && !roudi_alive()) {
					snprintf(cases[k].skip, sizeof(cases[k].skip), "RouDi exited during the run");
					continue;
				}
#endif
				if (tty) {
					fprintf(stderr, "\r\033[Kround %d/%d  %s  %s", r + 1, o.rounds, kind_names[kind],
						cases[k].label);
					fflush(stderr);
				}
				int rc = run_one(c, &cases[k], kind, &o, r, &R->r[k][kind][r], R->lat_cap[k],
						 R->lat_hand[k], &R->nlat[k]);
				if (rc == 0 && o.per_run)
					print_run(&cases[k], kind, r, &R->r[k][kind][r], tty);
				if (rc > 0) {
					failures++;
					R->failures[k][kind]++;
					fprintf(stderr, "  (%s, %s: not run in later rounds)\n", cases[k].label,
						kind_names[kind]);
				}
			}
		}
		if (!stop_requested)
			rounds_done = r + 1;
	}
	if (tty)
		fprintf(stderr, "\r\033[K");
	double roudi_ms = -1;
#ifdef BENCH_HAVE_ICEORYX
	if (roudi_up) {
		roudi_ms = (double)roudi_cpu_ns() / 1e6;
		roudi_stop();
	}
	roudi_up = false;
#endif
	hog_ns = stop_hog(&hog);
	if (stop_requested) {
		fprintf(stderr, "bench_peers: interrupted\n");
		ret = 130;
		goto end;
	}
	print_results(&o, R, rounds_done);
	double wall = (double)(now_ns() - t_begin);
	double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double other = ((double)(machine_busy_ns() - busy0) - (double)(own_and_children_cpu_ns() - own0 - hog_ns)) /
		       (wall * ncpu) * 100.0;
	if (o.hog)
		printf("\nthe --hog process used %.0f%% of the %.0f CPUs (counted below with the others)\n",
		       (double)hog_ns / (wall * ncpu) * 100.0, ncpu);
	if (roudi_ms >= 0)
		printf("\nRouDi, iceoryx's daemon, used %.0f ms of CPU in all (start-up included)\n", roudi_ms);
	printf("\ntotal time %.1f s; other processes used %.0f%% of the %.0f CPUs meanwhile%s\n", wall / 1e9,
	       other < 0 ? 0 : other, ncpu, other > 10 ? " (NOISY: figures are unreliable)" : "");
	if (failures)
		printf("%d run(s) failed or got stuck: see the lines on stderr\n", failures);
	ret = failures ? 1 : 0;
end:
	stop_hog(&hog);
	fflush(stdout);
#ifdef BENCH_HAVE_ICEORYX
	if (roudi_up)
		roudi_stop();
#endif
	if (failures && !stop_requested)
		fprintf(stderr, "bench_peers: the children's output is kept in %s\n", tmpdir);
	else
		remove_tmpdir();
	if (R)
		for (int k = 0; k < NCASES; k++) {
			free(R->lat_cap[k]);
			free(R->lat_hand[k]);
		}
	free(R);
	if (lat != MAP_FAILED)
		munmap(lat, lat_bytes);
	if (c != MAP_FAILED)
		munmap(c, sizeof(*c));
	return ret;
}
