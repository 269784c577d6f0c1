/* test_ring_names.c - what a ring's name may hold and who may change it: non-files, stale rings, races to create and remove, a full /dev/shm. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform.h"
#include "ring.h"
#include "ring_layout.h"
#include "ringtest.h"

#define CAP 4096u

static char name[256];
static fr_ring_t *P, *C;

static int setup(void **state)
{
	(void)state;
	P = C = NULL;
	rt_name(name, sizeof(name), "names");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fr_ring_close(&C);
	fr_ring_close(&P);
	plat_force_named_tmp = false;
	rt_cleanup();
	return 0;
}

/* ------------------------------------------------------------ not a file */

/* Issue 9.6: a FIFO at a ring's name used to block shm_open forever (no
 * writer); a directory, a symbolic link or a device node is no ring either.
 * Every entry point refuses each at once. */
static void test_not_a_regular_file(void **state)
{
	char path[512], target[512];
	fr_ring_t *r = NULL;
	struct fr_ring_stats st;
	unsigned char meta[FR_RING_META_SIZE];

	(void)state;
	rt_shm_path(path, sizeof(path), name);
	for (int kind = 0; kind < 4; kind++) {
		const char *what = kind == 0 ? "a FIFO" : kind == 1 ? "a directory" : kind == 2 ? "a symlink" : "a device";
		int made;
		if (kind == 0) {
			made = mkfifo(path, 0600);
		} else if (kind == 1) {
			made = mkdir(path, 0700);
		} else if (kind == 2) {
			/* a link to a real ring: still not one to follow */
			char target_name[300];
			snprintf(target_name, sizeof(target_name), "%s-target", name);
			assert_int_equal(fr_ring_create(&P, target_name, NULL), 0);
			rt_shm_path(target, sizeof(target), target_name);
			made = symlink(target, path);
		} else {
			made = mknod(path, S_IFCHR | 0600, makedev(1, 3)); /* /dev/null's numbers */
			if (made < 0 && errno == EPERM) {
				print_message("not root: no device node test\n");
				continue;
			}
		}
		assert_int_equal(made, 0);
		rt_watchdog(10, what);
		assert_int_equal(fr_ring_open(&r, name), -EBADMSG);
		assert_int_equal(fr_ring_open_wait(&r, name, 1000000000ll), -EBADMSG);
		assert_int_equal(fr_ring_inspect(name, &st), -EBADMSG);
		assert_int_equal(fr_ring_inspect_meta(name, meta, sizeof(meta)), -EBADMSG);
		assert_int_equal(fr_ring_unlink_stale(name), -EEXIST);
		assert_int_equal(fr_ring_create(&r, name, NULL), -EEXIST);
		rt_watchdog(0, NULL);
		assert_null(r);
		if (kind == 1)
			assert_int_equal(rmdir(path), 0);
		else
			assert_int_equal(unlink(path), 0);
		fr_ring_close(&P);
	}
}

/* ------------------------------------------------------------ stale rings and waiting */

/* A ring whose producer died: a child creates it, writes a record and ends
 * without closing (its lock goes with it). */
static void make_stale_ring(void)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fr_ring_create_opts o = { .capacity = CAP };
		fr_ring_t *p = NULL;
		if (fr_ring_create(&p, name, &o) < 0 || fr_ring_write(p, "stale", 5, FR_RING_NO_WAIT) < 0)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(rt_wait_child(pid), 0);
	assert_true(rt_shm_exists(name));
}

static void *create_later(void *arg)
{
	(void)arg;
	rt_sleep_ns(150 * 1000000ull);
	struct fr_ring_create_opts o = { .capacity = CAP };
	if (fr_ring_create(&P, name, &o) == 0)
		fr_ring_write(P, "fresh", 5, FR_RING_NO_WAIT);
	return NULL;
}

/* Issue 9.9: a consumer that asked to wait for a ring waits for a live
 * producer, not for a dead one's leftovers. It used to attach to the stale
 * ring at once and report -EOWNERDEAD 200 ms later. */
static void test_open_wait_passes_over_stale_ring(void **state)
{
	pthread_t t;
	const void *d;
	size_t len;

	(void)state;
	make_stale_ring();
	assert_int_equal(fr_ring_open_wait(&C, name, 300 * 1000000ll), -ETIMEDOUT);
	assert_null(C);
	assert_true(rt_shm_exists(name)); /* passed over, not removed */
	/* A plain fr_ring_open still attaches, to read what it left. */
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_false(fr_ring_peer_alive(C));
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
	fr_ring_close(&C);
	assert_false(rt_shm_exists(name)); /* the consumer removed the stale name */

	/* The next producer reclaims the name; the waiting consumer gets that one. */
	make_stale_ring();
	assert_int_equal(pthread_create(&t, NULL, create_later, NULL), 0);
	rt_watchdog(20, "fr_ring_open_wait for the producer that reclaims a stale name");
	assert_int_equal(fr_ring_open_wait(&C, name, 10 * 1000000000ll), 0);
	rt_watchdog(0, NULL);
	pthread_join(t, NULL);
	assert_non_null(P);
	assert_true(fr_ring_peer_alive(C));
	assert_int_equal(fr_ring_peek(C, &d, &len, 2000000000ll), 0);
	assert_memory_equal(d, "fresh", 5);
}

/* A producer reclaiming a dead producer's ring, or a consumer or framering-ctl
 * removing its name, holds that ring's RING_LOCK_PRODUCER for a moment. A
 * consumer that looked in that moment took the remover for a live producer:
 * fr_ring_open_wait() joined the dead ring (seen once in CI, as
 * test_open_wait_passes_over_stale_ring's peer_alive failing after a
 * reclaim). Here the remover holds the byte for the whole wait. */
static void test_open_wait_not_fooled_by_a_remover(void **state)
{
	(void)state;
	make_stale_ring();
	int remover = rt_hold_lock(name, RING_LOCK_PRODUCER);
	assert_true(remover >= 0);
	assert_int_equal(fr_ring_open_wait(&C, name, 300 * 1000000ll), -ETIMEDOUT);
	assert_null(C);
	/* Attached anyway (fr_ring_open), it is the dead ring it is. */
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_false(fr_ring_peer_alive(C));
	struct fr_ring_stats st;
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_false(st.producer_alive);
	close(remover);
}

/* Linking a ring just before fr_ring_open_wait() sets up its inotify watch:
 * the test replaces inotify_add_watch() (this executable's definition wins
 * over libc's) and creates the ring from inside it when asked to. */
static atomic_bool create_in_add_watch;
static fr_ring_t *created_in_add_watch;

int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	static int (*real)(int, const char *, uint32_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "inotify_add_watch");
	if (atomic_exchange(&create_in_add_watch, false)) {
		struct fr_ring_create_opts o = { .capacity = CAP };
		if (fr_ring_create(&created_in_add_watch, name, &o) != 0)
			created_in_add_watch = NULL;
	}
	return real(fd, path, mask);
}

/* Issue 9.9: fr_ring_open_wait() looked for the name, then added its watch:
 * a ring linked in between was never seen, and a finite wait ran out with
 * -ETIMEDOUT although the ring was there all along. The watch comes first. */
static void test_open_wait_sees_ring_linked_before_watch(void **state)
{
	(void)state;
	atomic_store(&create_in_add_watch, true);
	uint64_t t0 = rt_now_ns();
	int rc = fr_ring_open_wait(&C, name, 20 * 1000000000ll);
	uint64_t waited = rt_now_ns() - t0;
	P = created_in_add_watch;
	created_in_add_watch = NULL;
	assert_non_null(P);
	if (rc != 0)
		fail_msg("a ring linked while the watch was being set up was missed: %s", fr_ring_strerror(rc));
	/* Found at once, not after sleeping out the 20 s timeout for an event
	 * that had come and gone before the watch existed. */
	if (waited > 10 * 1000000000ull)
		fail_msg("the ring was there, but found only after %.1f s", (double)waited / 1e9);
	assert_true(fr_ring_peer_alive(C));
}

/* The producer closes (end of stream marked, name removed, its lock dropped) at the
 * first liveness look after this is set: the test's fcntl() wins over libc's, and
 * fr_ring_open_wait() looks with F_OFD_GETLK right after it joined the ring. */
static atomic_bool close_producer_at_getlk;

int fcntl(int fd, int cmd, ...)
{
	static int (*real)(int, int, ...);
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* as glibc's own fcntl() takes it */
	va_end(ap);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fcntl");
	if (cmd == F_OFD_GETLK && atomic_exchange(&close_producer_at_getlk, false))
		fr_ring_close(&P);
	return real(fd, cmd, arg);
}

/* A producer that waited for its consumer, wrote a short stream and closed while
 * fr_ring_open_wait() was between joining its ring and looking whether it lives (seen
 * with a viewer that reconnects to producers of a few frames each, under load):
 * the wait took the cleanly ended ring for a dead producer's leftovers, passed over
 * it and waited on; the frames were never read and the wait never ended. A ring
 * whose producer marked end of stream before it went is read to that end. */
static void test_open_wait_keeps_ring_ended_while_joining(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	struct fr_ring_create_opts o = { .capacity = CAP };
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_write(P, "last", 4, FR_RING_NO_WAIT), 0);
	atomic_store(&close_producer_at_getlk, true);
	int rc = fr_ring_open_wait(&C, name, 300 * 1000000ll);
	atomic_store(&close_producer_at_getlk, false);
	assert_null(P); /* it closed while the consumer joined */
	if (rc != 0)
		fail_msg("a ring whose producer ended cleanly while the consumer joined was passed over: %s",
			 fr_ring_strerror(rc));
	assert_false(fr_ring_peer_alive(C));
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(d, "last", 4);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -ENODATA);
}

/* Count the poll() calls that do not wait (the test's poll wins over libc's). */
static atomic_int zero_polls;

int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	static int (*real)(struct pollfd *, nfds_t, int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "poll");
	if (timeout_ms == 0)
		atomic_fetch_add(&zero_polls, 1);
	return real(fds, n, timeout_ms);
}

static void *open_wait_huge(void *arg)
{
	int64_t timeout = *(int64_t *)arg;
	*(int64_t *)arg = fr_ring_open_wait(&C, name, timeout);
	return NULL;
}

/* Issue 9.15: the watch's timeout was turned into int milliseconds without
 * a clamp: exactly 2^32 ms became poll(0), so the wait spun instead of
 * sleeping (and 2^31 ms and up went negative: an endless poll). A wait with
 * a huge timeout sleeps in poll() and never polls without waiting. */
static void test_open_wait_huge_timeouts_sleep(void **state)
{
	const int64_t timeouts[] = { 4294967296ll * 1000000ll, INT64_MAX, 2147483648ll * 1000000ll };

	(void)state;
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		pthread_t t;
		int64_t arg = timeouts[i];
		atomic_store(&zero_polls, 0);
		assert_int_equal(pthread_create(&t, NULL, open_wait_huge, &arg), 0);
		rt_sleep_ns(300 * 1000000ull);
		struct fr_ring_create_opts o = { .capacity = CAP };
		assert_int_equal(fr_ring_create(&P, name, &o), 0);
		rt_watchdog(20, "fr_ring_open_wait with a huge timeout");
		pthread_join(t, NULL);
		rt_watchdog(0, NULL);
		assert_int_equal(arg, 0);
		if (atomic_load(&zero_polls) > 0)
			fail_msg("timeout %lld ns: %d polls that did not wait", (long long)timeouts[i],
				 atomic_load(&zero_polls));
		fr_ring_close(&C);
		fr_ring_close(&P);
	}
}

/* ------------------------------------------------------------ races for a name */

#define RACERS 4

/* Issue 9.10: producers racing to reclaim one stale name. Each removed the
 * name after checking a segment, whatever the name meant by then, so two
 * could both "win", one of them writing into an orphan. Exactly one wins,
 * and it is the one a consumer reads. */
static void test_reclaim_race_has_one_winner(void **state)
{
	int rounds = (int)rt_env_u64("RING_NAME_RACE_ROUNDS", 60);

	(void)state;
	for (int round = 0; round < rounds; round++) {
		int go[2], res[2], done[2];
		pid_t kids[RACERS];
		make_stale_ring();
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(res), 0);
		assert_int_equal(pipe(done), 0);
		fflush(NULL);
		for (int k = 0; k < RACERS; k++) {
			kids[k] = fork();
			assert_true(kids[k] >= 0);
			if (kids[k] == 0) {
				char c;
				struct fr_ring_create_opts o = { .capacity = CAP };
				fr_ring_t *p = NULL;
				close(go[1]);
				close(done[1]);
				if (read(go[0], &c, 1) != 1)
					_exit(3);
				int rc = fr_ring_create(&p, name, &o);
				char msg[16];
				int n = snprintf(msg, sizeof(msg), "%c%d\n", rc == 0 ? 'W' : rc == -EBUSY ? 'B' : 'E', k);
				if (rc == 0)
					fr_ring_write(p, &k, sizeof(k), FR_RING_NO_WAIT);
				(void)!write(res[1], msg, (size_t)n);
				/* The winner stays alive (holding the name) until told to go. */
				if (read(done[0], &c, 1) < 0)
					_exit(3);
				fr_ring_close(&p);
				_exit(rc == 0 || rc == -EBUSY ? 0 : 4);
			}
			rt_track_child(kids[k]);
		}
		close(go[0]);
		close(res[1]);
		close(done[0]);
		assert_int_equal(write(go[1], "gggg", RACERS), RACERS);
		char buf[256] = { 0 };
		size_t got = 0;
		int lines = 0;
		while (lines < RACERS) {
			ssize_t n = read(res[0], buf + got, sizeof(buf) - 1 - got);
			assert_true(n > 0);
			for (ssize_t i = 0; i < n; i++)
				lines += buf[got + (size_t)i] == '\n';
			got += (size_t)n;
		}
		int winners = 0, winner = -1;
		for (char *p = buf; *p; p++)
			if (*p == 'W') {
				winners++;
				winner = p[1] - '0';
			} else if (*p == 'E') {
				fail_msg("round %d: a racer failed otherwise: %s", round, buf);
			}
		if (winners != 1)
			fail_msg("round %d: %d producers won the name: %s", round, winners, buf);
		/* The name is the winner's segment. */
		const void *d;
		size_t len;
		assert_int_equal(fr_ring_open(&C, name), 0);
		assert_int_equal(fr_ring_peek(C, &d, &len, 2000000000ll), 0);
		assert_int_equal(len, sizeof(int));
		assert_int_equal(*(const int *)d, winner);
		fr_ring_close(&C);
		close(done[1]); /* everyone goes */
		close(go[1]);
		close(res[0]);
		for (int k = 0; k < RACERS; k++)
			assert_int_equal(rt_wait_child(kids[k]), 0);
		assert_false(rt_shm_exists(name));
	}
}

/* A closing consumer of a stale ring, racing a producer that re-creates the
 * name: the name that survives is the new producer's, always. */
static void test_stale_consumer_close_spares_new_ring(void **state)
{
	int rounds = (int)rt_env_u64("RING_NAME_RACE_ROUNDS", 60);

	(void)state;
	for (int round = 0; round < rounds; round++) {
		make_stale_ring();
		assert_int_equal(fr_ring_open(&C, name), 0);
		fflush(NULL);
		pid_t kid = fork();
		assert_true(kid >= 0);
		if (kid == 0) {
			struct fr_ring_create_opts o = { .capacity = CAP };
			fr_ring_t *p = NULL;
			int rc = fr_ring_create(&p, name, &o);
			if (rc == -EBUSY) /* we came while the consumer held the stale lock: again */
				rc = fr_ring_create(&p, name, &o);
			if (rc < 0)
				_exit(10 - rc);
			pause(); /* alive, holding the name, until killed */
			_exit(0);
		}
		rt_track_child(kid);
		fr_ring_close(&C);
		/* Whatever the order, the child's ring ends up under the name. */
		fr_ring_t *c2 = NULL;
		int rc = fr_ring_open_wait(&c2, name, 5000000000ll);
		if (rc != 0)
			fail_msg("round %d: the new producer's ring is not under the name: %s", round, fr_ring_strerror(rc));
		assert_true(fr_ring_peer_alive(c2));
		fr_ring_close(&c2);
		kill(kid, SIGKILL);
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		assert_int_equal(fr_ring_unlink_stale(name), 0);
	}
}

struct thread_create {
	pthread_barrier_t *go;
	uint64_t capacity;
	fr_ring_t *ring;
	int rc;
};

static void *create_in_thread(void *arg)
{
	struct thread_create *tc = arg;
	struct fr_ring_create_opts o = { .capacity = tc->capacity };
	pthread_barrier_wait(tc->go);
	tc->rc = fr_ring_create(&tc->ring, name, &o);
	return NULL;
}

/* Issue 9.11: two threads of one process creating the same ring. The
 * private creation name was keyed by pid: each could unlink and replace the
 * other's half-built segment and link that one. One wins, with its own
 * segment, whole, under the name; the other gets -EBUSY. Both creation
 * ways: nameless (O_TMPFILE) and under a unique private name. */
static void test_threads_create_same_name(void **state)
{
	int rounds = (int)rt_env_u64("RING_NAME_RACE_ROUNDS", 60);
	pthread_barrier_t go;

	(void)state;
	for (int named = 0; named < 2; named++) {
		plat_force_named_tmp = named;
		for (int round = 0; round < rounds; round++) {
			struct thread_create tc[2] = { { &go, CAP, NULL, 0 }, { &go, CAP * 2, NULL, 0 } };
			pthread_t t[2];
			pthread_barrier_init(&go, NULL, 2);
			for (int k = 0; k < 2; k++)
				assert_int_equal(pthread_create(&t[k], NULL, create_in_thread, &tc[k]), 0);
			for (int k = 0; k < 2; k++)
				pthread_join(t[k], NULL);
			pthread_barrier_destroy(&go);
			int w = tc[0].rc == 0 ? 0 : 1;
			if (tc[w].rc != 0 || tc[1 - w].rc != -EBUSY)
				fail_msg("named=%d round %d: results %d and %d", named, round, tc[0].rc, tc[1].rc);
			/* The name holds the winner's segment: its capacity, its record. */
			struct fr_ring_stats st;
			assert_int_equal(fr_ring_inspect(name, &st), 0);
			assert_int_equal(st.capacity, tc[w].capacity);
			assert_int_equal(fr_ring_write(tc[w].ring, "w", 1, FR_RING_NO_WAIT), 0);
			assert_int_equal(fr_ring_open(&C, name), 0);
			const void *d;
			size_t len;
			assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
			fr_ring_close(&C);
			fr_ring_close(&tc[w].ring);
			assert_false(rt_shm_exists(name));
		}
	}
	/* No private creation names left behind either way. */
	int leftovers = 0;
	FILE *ls = popen("ls -a /dev/shm", "r");
	assert_non_null(ls);
	char line[512];
	char mine[64];
	snprintf(mine, sizeof(mine), ".framering-creating-%d-", (int)getpid());
	while (fgets(line, sizeof(line), ls))
		leftovers += strncmp(line, mine, strlen(mine)) == 0;
	pclose(ls);
	assert_int_equal(leftovers, 0);
}

/* ------------------------------------------------------------ a short /dev/shm */

/* Issue 9.16: with too little room in /dev/shm, creation fails at once
 * with -ENOSPC and leaves nothing behind. It used to size the file with
 * ftruncate only, succeed, and die of SIGBUS (reported as a shrinking peer)
 * at the first touch of an unbacked page. Run in a child with a private
 * mount namespace and a 1 MiB tmpfs on /dev/shm. */
static void test_short_dev_shm(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") < 0)
			_exit(77); /* not permitted here */
		fr_ring_t *p = NULL;
		struct fr_ring_create_opts big = { .capacity = 2u << 20 }, small = { .capacity = 64u << 10 };
		if (fr_ring_create(&p, "short", &big) != -ENOSPC)
			_exit(10);
		if (system("test -z \"$(ls -A /dev/shm)\"") != 0)
			_exit(11); /* something was left behind */
		if (plat_shm_free_bytes() < (900u << 10))
			_exit(12); /* the failed attempt still holds memory */
		plat_force_named_tmp = true; /* the other way of creating, the same answer */
		if (fr_ring_create(&p, "short", &big) != -ENOSPC || system("test -z \"$(ls -A /dev/shm)\"") != 0)
			_exit(13);
		if (fr_ring_create(&p, "short", &small) != 0)
			_exit(14); /* what fits, works */
		void *d;
		if (fr_ring_reserve(p, 30u << 10, 8, &d, FR_RING_NO_WAIT) != 0)
			_exit(15);
		memset(d, 1, 30u << 10);
		_exit(fr_ring_commit(p, 30u << 10) == 0 ? 0 : 16);
	}
	int rc = rt_wait_child(pid);
	if (rc == 77) {
		print_message("skipped: unshare(CLONE_NEWNS)/mount not permitted here (needs root)\n");
		skip();
	}
	assert_int_equal(rc, 0);
}

/* The test's fchmod() wins over libc's: it can fail the way a system call
 * fails on a sealed or immutable file. */
static atomic_bool fchmod_eperm;

int fchmod(int fd, mode_t mode)
{
	static int (*real)(int, mode_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fchmod");
	if (atomic_exchange(&fchmod_eperm, false)) {
		errno = EPERM;
		return -1;
	}
	return real(fd, mode);
}

/* Issue 15.7: errno values keep their meaning. -EPERM is the ring's "not
 * allowed on this side of the ring"; a system call's own EPERM (here fchmod
 * in fr_ring_create) comes back as -EACCES, and nothing is left behind. */
static void test_system_eperm_is_not_the_rings(void **state)
{
	(void)state;
	for (int named = 0; named < 2; named++) {
		plat_force_named_tmp = named;
		atomic_store(&fchmod_eperm, true);
		int rc = fr_ring_create(&P, name, NULL);
		if (rc == -EPERM)
			fail_msg("the system's EPERM came back as -EPERM: \"%s\"", fr_ring_strerror(rc));
		assert_int_equal(rc, -EACCES);
		assert_null(P);
		assert_false(rt_shm_exists(name));
	}
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_not_a_regular_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait_passes_over_stale_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait_not_fooled_by_a_remover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait_sees_ring_linked_before_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait_keeps_ring_ended_while_joining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait_huge_timeouts_sleep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_race_has_one_winner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_consumer_close_spares_new_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_create_same_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_dev_shm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_system_eperm_is_not_the_rings, setup, teardown),
	};

	rt_parse_args(argc, argv, "Ring names: non-files refused at once, stale rings passed over or reclaimed by exactly one producer, creation races, a full /dev/shm.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
