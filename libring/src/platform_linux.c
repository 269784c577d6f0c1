/* platform_linux.c - Linux futex, /proc liveness, inotify and the SIGBUS guard for the ring; the only OS-specific file. */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring_layout.h"

#define SHM_DIR "/dev/shm"

uint64_t plat_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int plat_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000),
		.tv_nsec = (long)(timeout_ns % 1000000000),
	};
	/* FUTEX_WAIT's timeout is relative and measured on CLOCK_MONOTONIC. */
	if (syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, &ts, NULL, 0) == 0)
		return 0;
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

void plat_futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Field 3 (state) and 22 (starttime) of /proc/PID/stat. The command name in
 * field 2 may hold spaces and parentheses, so parse from the last ')'. */
static int read_proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p;
	/* p is at field 3; skip to field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	unsigned long long v;
	if (sscanf(p, "%llu", &v) != 1)
		return -EIO;
	*start = v;
	return 0;
}

uint64_t plat_self_owner(void)
{
	pid_t pid = getpid();
	char state;
	uint64_t start = 0;
	if (read_proc_stat(pid, &state, &start) < 0)
		start = 0; /* no /proc: liveness falls back to kill(pid, 0) */
	return ((start & ((1ull << (64 - RING_OWNER_PID_BITS)) - 1)) << RING_OWNER_PID_BITS) |
	       ((uint64_t)pid & RING_OWNER_PID_MASK);
}

pid_t plat_owner_pid(uint64_t owner)
{
	return (pid_t)(owner & RING_OWNER_PID_MASK);
}

bool plat_owner_alive(uint64_t owner)
{
	pid_t pid = plat_owner_pid(owner);
	uint64_t want_start = owner >> RING_OWNER_PID_BITS;
	if (pid <= 0)
		return false;
	char state;
	uint64_t start;
	int rc = read_proc_stat(pid, &state, &start);
	if (rc == -ENOENT || rc == -ESRCH)
		return false;
	if (rc < 0) /* /proc unreadable: ask the kernel directly */
		return kill(pid, 0) == 0 || errno == EPERM;
	if (state == 'Z' || state == 'X') /* killed, not yet reaped */
		return false;
	return want_start == 0 || start == want_start;
}

int plat_watch_shm_dir(int *state, int64_t timeout_ns)
{
	if (*state < 0) {
		*state = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (*state >= 0 && inotify_add_watch(*state, SHM_DIR, IN_CREATE | IN_MOVED_TO) < 0) {
			close(*state);
			*state = -1;
		}
	}
	int ms = (int)((timeout_ns + 999999) / 1000000);
	if (*state < 0) {
		/* No inotify (or no /dev/shm): a bounded nap is all that is left. */
		struct timespec ts = {0, (timeout_ns < 20000000 ? timeout_ns : 20000000)};
		nanosleep(&ts, NULL);
		return 0;
	}
	struct pollfd pfd = {.fd = *state, .events = POLLIN};
	int rc = poll(&pfd, 1, ms);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	char buf[4096];
	while (read(*state, buf, sizeof(buf)) > 0) /* drain: one check per wake-up */
		;
	return 0;
}

int plat_shm_link(const char *from, const char *to)
{
	/* POSIX shm names are files in the tmpfs at /dev/shm on Linux. */
	char a[512], b[512];
	snprintf(a, sizeof(a), SHM_DIR "%s", from);
	snprintf(b, sizeof(b), SHM_DIR "%s", to);
	return link(a, b) == 0 ? 0 : -errno;
}

void plat_watch_close(int *state)
{
	if (*state >= 0)
		close(*state);
	*state = -1;
}

/* ------------------------------------------------------------ SIGBUS guard */

/* The guarded mappings, read by the signal handler without locks: a slot is
 * claimed through `used`, filled, then published by storing `start` last
 * (release); the handler reads `start` first (acquire). Freed in reverse. */
#define RING_GUARD_SLOTS 256

struct guard_slot {
	atomic_bool used;
	_Atomic uintptr_t start; /* 0: free */
	_Atomic size_t len;
	atomic_int prot;
	_Atomic bool *_Atomic lost;
};

static struct guard_slot guard_slots[RING_GUARD_SLOTS];
/* What SIGBUS did before our handler went in; guarded by sigbus_lock. */
static struct sigaction sigbus_before;
static pthread_mutex_t sigbus_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	int saved_errno = errno;
	uintptr_t addr = (uintptr_t)si->si_addr;
	/* Only a fault (si_code > 0) has an address: a kill(SIGBUS) is not ours. */
	for (int i = 0; si->si_code > 0 && i < RING_GUARD_SLOTS; i++) {
		uintptr_t start = atomic_load_explicit(&guard_slots[i].start, memory_order_acquire);
		size_t len = atomic_load_explicit(&guard_slots[i].len, memory_order_relaxed);
		if (!start || addr - start >= len)
			continue;
		/* The raw system call: async-signal-safe, and not seen by sanitizer
		 * interceptors that may take locks. */
		long map = syscall(SYS_mmap, start, len, atomic_load_explicit(&guard_slots[i].prot, memory_order_relaxed),
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (map == -1)
			break;
		_Atomic bool *lost = atomic_load_explicit(&guard_slots[i].lost, memory_order_relaxed);
		if (lost)
			atomic_store_explicit(lost, true, memory_order_relaxed);
		errno = saved_errno;
		return; /* the access is retried and now reads zeros */
	}
	/* Not ours: step aside, so that the signal meets what was there before
	 * as if we never were. A fault happens again when we return; a sent
	 * signal is sent again (it stays blocked until we return). Calling the
	 * old handler from here instead could loop with one that hands the
	 * signal back. The next ring mapped puts the guard back. */
	sigaction(SIGBUS, &sigbus_before, NULL);
	if (si->si_code <= 0)
		raise(SIGBUS);
	errno = saved_errno;
}

/* Put our handler in unless it is there (a handler installed since may
 * have replaced it; it is what we step aside for from then on). */
static int install_sigbus_handler(void)
{
	struct sigaction cur, sa;
	int rc = 0;
	pthread_mutex_lock(&sigbus_lock);
	if (sigaction(SIGBUS, NULL, &cur) < 0) {
		rc = -errno;
	} else if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_sigbus) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		sigbus_before = cur;
		if (sigaction(SIGBUS, &sa, NULL) < 0)
			rc = -errno;
	}
	pthread_mutex_unlock(&sigbus_lock);
	return rc;
}

int plat_guard_mapping(void *addr, size_t len, int prot, _Atomic bool *lost)
{
	int rc = install_sigbus_handler();
	if (rc < 0)
		return rc;
	for (int i = 0; i < RING_GUARD_SLOTS; i++) {
		bool expected = false;
		if (!atomic_compare_exchange_strong(&guard_slots[i].used, &expected, true))
			continue;
		atomic_store_explicit(&guard_slots[i].len, len, memory_order_relaxed);
		atomic_store_explicit(&guard_slots[i].prot, prot, memory_order_relaxed);
		atomic_store_explicit(&guard_slots[i].lost, lost, memory_order_relaxed);
		atomic_store_explicit(&guard_slots[i].start, (uintptr_t)addr, memory_order_release);
		return 0;
	}
	return -ENOSPC;
}

void plat_unguard_mapping(void *addr)
{
	for (int i = 0; i < RING_GUARD_SLOTS; i++) {
		if (atomic_load_explicit(&guard_slots[i].start, memory_order_acquire) != (uintptr_t)addr)
			continue;
		atomic_store_explicit(&guard_slots[i].start, 0, memory_order_release);
		atomic_store_explicit(&guard_slots[i].lost, NULL, memory_order_relaxed);
		atomic_store_explicit(&guard_slots[i].used, false, memory_order_release);
		return;
	}
}
