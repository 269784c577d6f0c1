/* ringtest.c - helpers shared by the ring tests: unique ring names, segment cleanup, watchdog, children. */
#include "ringtest.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Under ASAN/TSAN a report ends the process without atexit handlers: register
 * the cleanup as the sanitizer's death callback too. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RT_SANITIZED 1
#endif
#endif
#ifdef RT_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#define RT_MAX_CHILDREN 64

static pid_t owner_pid;        /* the process whose names rt_cleanup() removes */
static unsigned name_counter;
static volatile sig_atomic_t children[RT_MAX_CHILDREN];
static const char *watchdog_what = "test";

static void rt_cleanup_at_exit(void)
{
	rt_cleanup();
}

static void rt_init(void)
{
	if (owner_pid)
		return;
	owner_pid = getpid();
	atexit(rt_cleanup_at_exit);
#ifdef RT_SANITIZED
	__sanitizer_set_death_callback(rt_cleanup_at_exit);
#endif
}

void rt_name(char *buf, size_t size, const char *tag)
{
	rt_init();
	snprintf(buf, size, "frt-%d-%u-%s", (int)owner_pid, name_counter++, tag);
}

void rt_shm_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "/dev/shm/%s", name);
}

int rt_shm_exists(const char *name)
{
	char path[512];
	struct stat st;

	rt_shm_path(path, sizeof(path), name);
	return stat(path, &st) == 0;
}

int rt_hold_lock(const char *name, unsigned byte)
{
	char path[512];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
	int fd;

	rt_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

void rt_cleanup(void)
{
	char prefix[64], path[512];
	struct dirent *de;
	DIR *d;

	/* A forked child that exits normally must not remove its parent's rings. */
	if (!owner_pid || getpid() != owner_pid)
		return;
	snprintf(prefix, sizeof(prefix), "frt-%d-", (int)owner_pid);
	d = opendir("/dev/shm");
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
		unlink(path);
	}
	closedir(d);
}

void rt_track_child(pid_t pid)
{
	for (int i = 0; i < RT_MAX_CHILDREN; i++) {
		if (!children[i]) {
			children[i] = pid;
			return;
		}
	}
}

void rt_untrack_child(pid_t pid)
{
	for (int i = 0; i < RT_MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void rt_watchdog_fired(int sig)
{
	char msg[256];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg), "\nWATCHDOG: %s did not finish in time (hang?): failing\n",
		     watchdog_what);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	for (int i = 0; i < RT_MAX_CHILDREN; i++)
		if (children[i])
			kill(children[i], SIGKILL);
	/* opendir/unlink in a handler: acceptable here, the process ends right after. */
	rt_cleanup();
	_exit(1);
}

void rt_watchdog(unsigned seconds, const char *what)
{
	struct sigaction sa;

	rt_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rt_watchdog_fired;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	watchdog_what = what;
	alarm(seconds);
}

uint64_t rt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rt_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t rt_env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return def;
	return v;
}

uint64_t rt_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t rt_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	uint64_t x = *state;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t rt_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
	uint64_t w;
	size_t i = 0;

	/* Word at a time: the stress hashes gigabytes, a byte loop would dominate. */
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return rt_mix64(h);
}

int rt_wait_child(pid_t pid)
{
	int status;
	pid_t r;

	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	rt_untrack_child(pid);
	if (r != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

void rt_parse_args(int argc, char **argv, const char *description)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("%s\n\nusage: %s [TEST-NAME-PATTERN]\n"
		       "  runs every test, or those matching the pattern (* and ? wildcards)\n"
		       "environment: RING_STRESS_RECORDS  records per stress run (default 1000000)\n",
		       description, argv[0]);
		exit(0);
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", argv[0], argv[argc > 2 ? 2 : 1]);
		exit(1);
	}
	if (argc == 2)
		cmocka_set_test_filter(argv[1]);
}
