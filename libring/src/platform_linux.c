/* platform_linux.c - Linux futex, shm files, OFD liveness locks, inotify and the SIGBUS guard for the ring; the only OS-specific file. */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------ segment files */

bool plat_force_named_tmp;

/* errno of a failed file call, as the ring reports it: -EPERM means "not
 * allowed on this side of the ring" there (ring.h), so the system's own
 * EPERM (a sticky /dev/shm, a protected link) is reported as -EACCES. */
static int file_error(void)
{
	return errno == EPERM ? -EACCES : -errno;
}

static int shm_full_path(char out[PLAT_SHM_PATH_MAX], const char *path)
{
	int n = snprintf(out, PLAT_SHM_PATH_MAX, SHM_DIR "%s", path);
	return n < 0 || n >= PLAT_SHM_PATH_MAX ? -ENAMETOOLONG : 0;
}

int plat_shm_open(const char *path, bool writable, struct stat *st)
{
	char full[PLAT_SHM_PATH_MAX];
	struct stat named;
	int rc = shm_full_path(full, path);
	if (rc < 0)
		return rc;
	/* Look before opening: open() itself blocks on a FIFO without a writer
	 * and runs a driver's open for a device node. */
	if (fstatat(AT_FDCWD, full, &named, AT_SYMLINK_NOFOLLOW) < 0)
		return file_error();
	if (!S_ISREG(named.st_mode))
		return -EBADMSG;
	/* The name may have been swapped since: O_NONBLOCK keeps a FIFO from
	 * blocking, O_NOFOLLOW refuses a link, and fstat has the last word. */
	int fd = open(full, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : file_error();
	if (fstat(fd, st) < 0) {
		rc = file_error();
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	return fd;
}

/* A name no other attempt uses, in any process or pid namespace. */
static void unique_tmp_name(char out[PLAT_SHM_PATH_MAX])
{
	static _Atomic uint64_t counter;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = plat_now_ns() ^ ((uint64_t)syscall(SYS_gettid) << 32);
	rnd ^= atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull;
	snprintf(out, PLAT_SHM_PATH_MAX, "/.framering-creating-%d-%016llx", (int)getpid(), (unsigned long long)rnd);
}

int plat_shm_create(size_t size, mode_t mode, char tmp_path[PLAT_SHM_PATH_MAX])
{
	char full[PLAT_SHM_PATH_MAX];
	int fd = -1, rc;
	tmp_path[0] = '\0';
	/* Nameless first: the segment gets a name only once it is whole, and a
	 * crash before that leaves nothing. The name is given through
	 * /proc/self/fd, so that must be there. */
	if (!plat_force_named_tmp && access("/proc/self/fd", X_OK) == 0)
		fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	for (int attempt = 0; fd < 0 && attempt < 8; attempt++) {
		unique_tmp_name(tmp_path);
		if ((rc = shm_full_path(full, tmp_path)) < 0)
			return rc;
		fd = open(full, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = file_error();
		tmp_path[0] = '\0';
		return rc;
	}
	/* open() applied the umask: set exactly what was asked. */
	if (fchmod(fd, mode) < 0) {
		rc = file_error();
		goto fail;
	}
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc != 0) {
		rc = rc == EFBIG ? -ENOSPC : -rc;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	plat_shm_discard(tmp_path);
	tmp_path[0] = '\0';
	return rc;
}

int plat_shm_publish(int fd, const char *tmp_path, const char *path)
{
	char to[PLAT_SHM_PATH_MAX], from[PLAT_SHM_PATH_MAX];
	int rc = shm_full_path(to, path);
	if (rc < 0)
		return rc;
	if (tmp_path[0]) {
		if ((rc = shm_full_path(from, tmp_path)) < 0)
			return rc;
		return link(from, to) == 0 ? 0 : file_error();
	}
	snprintf(from, sizeof(from), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0 ? 0 : file_error();
}

int plat_shm_unlink(const char *path)
{
	char full[PLAT_SHM_PATH_MAX];
	int rc = shm_full_path(full, path);
	if (rc < 0)
		return rc;
	return unlink(full) == 0 ? 0 : file_error();
}

void plat_shm_discard(const char *tmp_path)
{
	char full[PLAT_SHM_PATH_MAX];
	if (tmp_path[0] && shm_full_path(full, tmp_path) == 0)
		unlink(full);
}

int plat_shm_names(const char *path, int fd)
{
	char full[PLAT_SHM_PATH_MAX];
	struct stat named, open_file;
	int rc = shm_full_path(full, path);
	if (rc < 0)
		return rc;
	if (fstatat(AT_FDCWD, full, &named, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : file_error();
	if (fstat(fd, &open_file) < 0)
		return file_error();
	return named.st_dev == open_file.st_dev && named.st_ino == open_file.st_ino;
}

uint64_t plat_shm_free_bytes(void)
{
	struct statvfs vfs;
	if (statvfs(SHM_DIR, &vfs) < 0)
		return 0;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

/* ------------------------------------------------------------ liveness locks */

static int ofd_lock(int fd, int cmd, short type, uint64_t byte, struct flock *fl)
{
	*fl = (struct flock){.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)byte, .l_len = 1};
	return fcntl(fd, cmd, fl) == 0 ? 0 : -errno;
}

int plat_lock_byte(int fd, uint64_t byte)
{
	struct flock fl;
	int rc = ofd_lock(fd, F_OFD_SETLK, F_WRLCK, byte, &fl);
	return rc == -EAGAIN || rc == -EACCES ? -EBUSY : rc;
}

void plat_unlock_byte(int fd, uint64_t byte)
{
	struct flock fl;
	(void)ofd_lock(fd, F_OFD_SETLK, F_UNLCK, byte, &fl);
}

int plat_byte_locked(int fd, uint64_t byte)
{
	struct flock fl;
	int rc = ofd_lock(fd, F_OFD_GETLK, F_WRLCK, byte, &fl);
	if (rc < 0)
		return rc;
	return fl.l_type != F_UNLCK;
}

/* ------------------------------------------------------------ waiting for a name */

#define WATCH_NONE (-2) /* no inotify here: bounded naps instead */

int plat_watch_shm_dir(int *state, int64_t timeout_ns)
{
	if (*state == -1) {
		int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (fd >= 0 && inotify_add_watch(fd, SHM_DIR, IN_CREATE | IN_MOVED_TO) < 0) {
			close(fd);
			fd = -1;
		}
		*state = fd >= 0 ? fd : WATCH_NONE;
		return 0; /* the caller looks for its name now that the watch is there */
	}
	if (timeout_ns < 0)
		timeout_ns = 0;
	if (*state == WATCH_NONE) {
		struct timespec ts = {0, (long)(timeout_ns < 20000000 ? timeout_ns : 20000000)};
		nanosleep(&ts, NULL);
		return 0;
	}
	/* poll() takes int milliseconds: round up, and clamp instead of wrapping. */
	int ms = timeout_ns >= (int64_t)INT_MAX * 1000000 ? INT_MAX : (int)((timeout_ns + 999999) / 1000000);
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

void plat_watch_close(int *state)
{
	if (*state >= 0)
		close(*state);
	*state = -1;
}

/* ------------------------------------------------------------ SIGBUS guard */

/* The guarded mappings, read by the signal handler without locks: a slot is
 * claimed through `used`, filled, then published by storing `start` last;
 * the handler reads `start` first. Retiring a slot clears `start`, then
 * waits until no handler runs (handlers_running) before the caller may
 * unmap: a handler that saw the old `start` never maps zeros over address
 * space that was handed out again. Both sides use sequentially consistent
 * operations on `start` and the counter, so one of them sees the other. */
#define RING_GUARD_SLOTS 256

/* Under ThreadSanitizer a fault can land inside one of TSan's own atomic
 * operations while it holds its internal lock, and any atomic in the
 * handler that synchronizes (anything but relaxed) would wait for that lock
 * forever. There the handler's code is not instrumented and its atomics are
 * relaxed, with the hardware fence that seq_cst would have given. */
#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif
#ifdef RING_TSAN
#define HANDLER_CODE __attribute__((no_sanitize("thread")))
#define HANDLER_ORDER memory_order_relaxed
#if defined(__x86_64__) || defined(__i386__)
#define HANDLER_FENCE() __asm__ __volatile__("mfence" ::: "memory")
#else
#define HANDLER_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#else
#define HANDLER_CODE
#define HANDLER_ORDER memory_order_seq_cst
#define HANDLER_FENCE() ((void)0)
#endif

struct guard_slot {
	atomic_bool used;
	_Atomic uintptr_t start; /* 0: free */
	_Atomic size_t len;
	atomic_int prot;
	_Atomic bool *_Atomic lost;
};

static struct guard_slot guard_slots[RING_GUARD_SLOTS];
static atomic_int handlers_running;

/* What SIGBUS did before our handler went in. Entries are written once
 * (under sigbus_lock) and never rewritten, and only then published through
 * sigbus_before, so the handler reads a whole, stable struct. */
#define SIGBUS_BEFORE_MAX 16
static struct sigaction sigbus_before_seen[SIGBUS_BEFORE_MAX];
static int sigbus_before_count;
static _Atomic(const struct sigaction *) sigbus_before;
static pthread_mutex_t sigbus_lock = PTHREAD_MUTEX_INITIALIZER;

/* Threads now inside a handler we forwarded to: if one of them comes back
 * to us (a handler that hands the signal on to what it replaced, which was
 * us), the chain is a loop and the signal gets the default action. */
#define FORWARDING_MAX 16
static _Atomic pid_t forwarding[FORWARDING_MAX];

HANDLER_CODE static bool guarded_fault(uintptr_t addr)
{
	for (int i = 0; i < RING_GUARD_SLOTS; i++) {
		uintptr_t start = atomic_load_explicit(&guard_slots[i].start, HANDLER_ORDER);
		size_t len = atomic_load_explicit(&guard_slots[i].len, memory_order_relaxed);
		if (!start || addr - start >= len)
			continue;
		/* The raw system call: async-signal-safe, and not seen by sanitizer
		 * interceptors that may take locks. */
		long map = syscall(SYS_mmap, start, len, atomic_load_explicit(&guard_slots[i].prot, memory_order_relaxed),
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (map == -1)
			return false;
		_Atomic bool *lost = atomic_load_explicit(&guard_slots[i].lost, memory_order_relaxed);
		if (lost)
			atomic_store_explicit(lost, true, memory_order_relaxed);
		return true; /* the access is retried and now reads zeros */
	}
	return false;
}

/* The default action for SIGBUS, as if we had never been there. */
HANDLER_CODE static void sigbus_default(const siginfo_t *si)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	/* A fault happens again when we return and now ends the process; a sent
	 * signal is sent again (it stays blocked until we return). */
	if (si->si_code <= 0)
		raise(SIGBUS);
}

HANDLER_CODE static void forward_sigbus(int sig, siginfo_t *si, void *ctx)
{
	const struct sigaction *old = atomic_load_explicit(&sigbus_before, HANDLER_ORDER);
	bool is_function = old && (old->sa_flags & SA_SIGINFO ? old->sa_sigaction != NULL
							     : old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN);
	if (old && !is_function && old->sa_handler == SIG_IGN && si->si_code <= 0)
		return; /* a sent SIGBUS that was ignored before us stays ignored */
	if (!is_function) {
		sigbus_default(si);
		return;
	}
	pid_t tid = (pid_t)syscall(SYS_gettid);
	int slot = -1;
	for (int i = 0; i < FORWARDING_MAX; i++) {
		if (atomic_load_explicit(&forwarding[i], HANDLER_ORDER) == tid) {
			sigbus_default(si); /* back here from the handler we called: a loop */
			return;
		}
	}
	for (int i = 0; i < FORWARDING_MAX && slot < 0; i++) {
		pid_t none = 0;
		if (atomic_compare_exchange_strong_explicit(&forwarding[i], &none, tid, HANDLER_ORDER, HANDLER_ORDER))
			slot = i;
	}
	if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction(sig, si, ctx);
	else
		old->sa_handler(sig);
	if (slot >= 0)
		atomic_store_explicit(&forwarding[slot], 0, HANDLER_ORDER);
}

HANDLER_CODE static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	int saved_errno = errno;
	atomic_fetch_add_explicit(&handlers_running, 1, HANDLER_ORDER);
	HANDLER_FENCE();
	/* Only a fault (si_code > 0) has an address: a kill(SIGBUS) is not ours. */
	bool ours = si->si_code > 0 && guarded_fault((uintptr_t)si->si_addr);
	atomic_fetch_sub_explicit(&handlers_running, 1, HANDLER_ORDER);
	if (!ours)
		forward_sigbus(sig, si, ctx);
	errno = saved_errno;
}

/* Whether two actions would do the same: the same function (or default or
 * ignore), flags and mask. Not memcmp: sigaction() fills only the words of
 * sa_mask the kernel has, and the rest of the struct is whatever was there. */
static bool same_action(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_flags != b->sa_flags)
		return false;
	if (a->sa_flags & SA_SIGINFO ? a->sa_sigaction != b->sa_sigaction : a->sa_handler != b->sa_handler)
		return false;
	for (int sig = 1; sig <= SIGRTMAX; sig++)
		if (sigismember(&a->sa_mask, sig) != sigismember(&b->sa_mask, sig))
			return false;
	return true;
}

/* Put our handler in unless it is there (a handler installed since may
 * have replaced it; it is what we hand other SIGBUS on to from then on). */
static int install_sigbus_handler(void)
{
	struct sigaction cur, sa;
	int rc = 0;
	memset(&cur, 0, sizeof(cur));
	pthread_mutex_lock(&sigbus_lock);
	if (sigaction(SIGBUS, NULL, &cur) < 0) {
		rc = -errno;
	} else if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_sigbus) {
		const struct sigaction *keep = NULL;
		for (int i = 0; i < sigbus_before_count && !keep; i++)
			if (same_action(&sigbus_before_seen[i], &cur))
				keep = &sigbus_before_seen[i];
		if (!keep && sigbus_before_count < SIGBUS_BEFORE_MAX) {
			sigbus_before_seen[sigbus_before_count] = cur;
			keep = &sigbus_before_seen[sigbus_before_count++];
		}
		if (!keep) {
			rc = -ENOSPC; /* handlers keep replacing each other: leave theirs in place */
		} else {
			atomic_store(&sigbus_before, keep);
			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = on_sigbus;
			sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
			sigemptyset(&sa.sa_mask);
			if (sigaction(SIGBUS, &sa, NULL) < 0)
				rc = -errno;
		}
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
		atomic_store(&guard_slots[i].start, (uintptr_t)addr);
		return 0;
	}
	return -ENOSPC;
}

void plat_unguard_mapping(void *addr)
{
	for (int i = 0; i < RING_GUARD_SLOTS; i++) {
		if (atomic_load(&guard_slots[i].start) != (uintptr_t)addr)
			continue;
		atomic_store(&guard_slots[i].start, 0);
		/* A handler that loaded the old start may be about to map zeros
		 * over the range: wait for it before anyone unmaps. */
		while (atomic_load(&handlers_running) != 0)
			sched_yield();
		atomic_store_explicit(&guard_slots[i].lost, NULL, memory_order_relaxed);
		atomic_store_explicit(&guard_slots[i].used, false, memory_order_release);
		return;
	}
}
