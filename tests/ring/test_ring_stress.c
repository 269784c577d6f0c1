/* test_ring_stress.c - cross-process ring stress (fork): lossless block mode, counted drops, no-lost-wakeup ping-pong. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ringtest.h"
#include "stress_common.h"

#define STRESS_CAPACITY (4u << 20)

static uint64_t n_records; /* RING_STRESS_RECORDS, 1,000,000 by default */
static pid_t kids[2];

static int teardown(void **state)
{
	(void)state;
	rt_watchdog(0, "");
	for (int i = 0; i < 2; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			rt_wait_child(kids[i]);
		}
		kids[i] = 0;
	}
	rt_cleanup();
	return 0;
}

static pid_t spawn(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		rt_track_child(pid);
	return pid;
}

/* HOT_LAP: 0 for the library's default (which a 4 MiB ring of these
 * records never reaches), or a lap short enough that the producer wraps
 * early and spills all the time (fr_ring_set_hot_lap, 100 us wait). */
static void run_stress(int drop, uint64_t hot_lap)
{
	struct stress_cfg cfg = { .records = n_records, .drop = drop, .timeout_ns = FR_RING_WAIT_FOREVER,
				  .seed = 0xC0FFEE + (uint64_t)drop + hot_lap, .hot_lap = hot_lap,
				  .hot_wait_ns = 100000 };
	struct stress_shared *sh;
	char name[256], msg[512], c = 0;
	int ready[2];
	uint64_t t0;

	rt_name(name, sizeof(name), drop ? "stress-drop" : "stress-block");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	assert_int_equal(pipe(ready), 0);
	rt_watchdog(570, drop ? "drop-mode stress" : "block-mode stress");
	t0 = rt_now_ns();

	kids[0] = spawn();
	if (kids[0] == 0) {
		/* producer: creates the ring, says so, writes everything, closes (EOS + unlink) */
		struct fr_ring_create_opts o = { .capacity = STRESS_CAPACITY,
					      .on_full = drop ? FR_RING_FULL_DROP : FR_RING_FULL_BLOCK };
		fr_ring_t *p = NULL;
		int rc = fr_ring_create(&p, name, &o);
		c = rc == 0 ? 'y' : 'n';
		(void)!write(ready[1], &c, 1);
		if (rc < 0) {
			snprintf(sh->prod.msg, sizeof(sh->prod.msg), "fr_ring_create: %s", fr_ring_strerror(rc));
			sh->prod.failed = 1;
			_exit(2);
		}
		/* The consumer attaches before the first record: with none attached
		 * a drop-mode producer runs at its own pace and overwrites, so a
		 * consumer spawned late (a loaded machine) would miss records that
		 * are then neither read nor counted as dropped. */
		rc = fr_ring_wait_consumers(p, 1, 60 * 1000000000ll);
		if (rc < 0) {
			snprintf(sh->prod.msg, sizeof(sh->prod.msg), "fr_ring_wait_consumers: %s", fr_ring_strerror(rc));
			sh->prod.failed = 1;
			_exit(2);
		}
		struct fr_ring_stats before;
		fr_ring_get_stats(p, &before);
		sh->prod.setup_waits = before.producer_futex_waits;
		rc = stress_produce(p, &cfg, sh);
		fr_ring_close(&p);
		_exit(rc < 0 ? 1 : 0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(c, 'y');

	kids[1] = spawn();
	if (kids[1] == 0) {
		fr_ring_t *r = NULL;
		int rc = fr_ring_open(&r, name);
		if (rc < 0) {
			snprintf(sh->cons.msg, sizeof(sh->cons.msg), "fr_ring_open: %s", fr_ring_strerror(rc));
			sh->cons.failed = 1;
			atomic_store(&sh->abort, 1);
			_exit(2);
		}
		rc = stress_consume(r, &cfg, sh);
		fr_ring_close(&r);
		_exit(rc < 0 ? 1 : 0);
	}
	int prc = rt_wait_child(kids[0]);
	kids[0] = 0;
	int crc = rt_wait_child(kids[1]);
	kids[1] = 0;
	rt_watchdog(0, "");
	stress_report(drop ? (hot_lap ? "fork stress, FR_RING_FULL_DROP, 1.5 MiB hot lap" : "fork stress, FR_RING_FULL_DROP")
			   : (hot_lap ? "fork stress, FR_RING_FULL_BLOCK, 1.5 MiB hot lap" : "fork stress, FR_RING_FULL_BLOCK"), &cfg, sh,
		      (double)(rt_now_ns() - t0) / 1e9);
	int ok = stress_check(&cfg, sh, msg, sizeof(msg));
	munmap(sh, sizeof(*sh));
	assert_int_equal(prc, 0);
	assert_int_equal(crc, 0);
	if (ok < 0)
		fail_msg("%s", msg);
	assert_false(rt_shm_exists(name));
}

static void test_block(void **state)
{
	(void)state;
	run_stress(0, 0);
}

static void test_block_hot_lap(void **state)
{
	(void)state;
	run_stress(0, 3u << 19);
}

static void test_drop(void **state)
{
	(void)state;
	run_stress(1, 0);
}

static void test_drop_hot_lap(void **state)
{
	(void)state;
	run_stress(1, 3u << 19);
}

/* Lost wake-ups: a waiter that is not woken only gets out through the
 * library's liveness time slice, so it shows as a futex wait with no wake. */
static void check_wakeups(const char *what, uint64_t waits, uint64_t wakes, uint64_t iters)
{
	print_message("%s: %llu futex waits, %llu wakes in %llu round trips\n", what, (unsigned long long)waits,
		      (unsigned long long)wakes, (unsigned long long)iters);
	assert_true(waits > 0);
	if (waits > wakes + waits / 20 + 10)
		fail_msg("%s: %llu waits but only %llu wakes: wake-ups lost", what, (unsigned long long)waits,
			 (unsigned long long)wakes);
}

/* Ping-pong over two rings; the writer of each message first sleeps a little,
 * so the reader is (almost) always asleep in the futex when the message comes. */
static void test_pingpong_reader_sleeps(void **state)
{
	uint64_t iters = n_records / 50 < 100 ? 100 : n_records / 50;
	struct fr_ring_create_opts o = { .capacity = 4096 };
	char a[256], b[256], c = 0;
	fr_ring_t *pa = NULL, *cb = NULL;
	int ready[2];
	struct fr_ring_stats sa, sb;

	(void)state;
	rt_name(a, sizeof(a), "ping");
	rt_name(b, sizeof(b), "pong");
	assert_int_equal(fr_ring_create(&pa, a, &o), 0);
	assert_int_equal(pipe(ready), 0);
	rt_watchdog(30, "ping-pong (reader sleeps)");
	kids[0] = spawn();
	if (kids[0] == 0) {
		fr_ring_t *ca = NULL, *pb = NULL;
		uint64_t rng = 99, v;
		int bad = 0;
		/* pa is the parent's producer handle: left alone (closing it here would mark EOS and unlink) */
		if (fr_ring_open(&ca, a) < 0 || fr_ring_create(&pb, b, &o) < 0)
			_exit(2);
		(void)!write(ready[1], "y", 1);
		for (uint64_t i = 0; i < iters && !bad; i++) {
			if (fr_ring_read(ca, &v, sizeof(v), FR_RING_WAIT_FOREVER) != sizeof(v) || v != i)
				bad = 3;
			rt_sleep_ns(rt_rand(&rng) % 50000);
			if (!bad && fr_ring_write(pb, &i, sizeof(i), FR_RING_WAIT_FOREVER) < 0)
				bad = 4;
		}
		fr_ring_close(&pb);
		fr_ring_close(&ca);
		_exit(bad);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(fr_ring_open(&cb, b), 0);
	uint64_t rng = 7, v;
	for (uint64_t i = 0; i < iters; i++) {
		rt_sleep_ns(rt_rand(&rng) % 50000);
		assert_int_equal(fr_ring_write(pa, &i, sizeof(i), FR_RING_WAIT_FOREVER), 0);
		assert_int_equal(fr_ring_read(cb, &v, sizeof(v), FR_RING_WAIT_FOREVER), sizeof(v));
		assert_int_equal(v, i);
	}
	assert_int_equal(fr_ring_read(cb, &v, sizeof(v), FR_RING_WAIT_FOREVER), -ENODATA);
	fr_ring_get_stats(pa, &sa);
	fr_ring_get_stats(cb, &sb);
	fr_ring_close(&cb);
	fr_ring_close(&pa);
	assert_int_equal(rt_wait_child(kids[0]), 0);
	kids[0] = 0;
	rt_watchdog(0, "");
	check_wakeups("ping ring, child consumer", sa.consumer_futex_waits, sa.consumer_futex_wakes, iters);
	check_wakeups("pong ring, parent consumer", sb.consumer_futex_waits, sb.consumer_futex_wakes, iters);
}

/* The producer always finds the ring full (every record is capacity/2) and
 * sleeps; the consumer releases each record after a short pause. */
static void test_pingpong_writer_sleeps(void **state)
{
	uint64_t iters = n_records / 50 < 100 ? 100 : n_records / 50;
	struct fr_ring_create_opts o = { .capacity = 4096 };
	char a[256], c = 0;
	int ready[2];
	fr_ring_t *ca = NULL;
	struct fr_ring_stats st;

	(void)state;
	rt_name(a, sizeof(a), "full");
	assert_int_equal(pipe(ready), 0);
	rt_watchdog(30, "ping-pong (writer sleeps on a full ring)");
	kids[0] = spawn();
	if (kids[0] == 0) {
		fr_ring_t *p = NULL;
		int bad = 0;
		if (fr_ring_create(&p, a, &o) < 0)
			_exit(2);
		(void)!write(ready[1], "y", 1);
		size_t len = fr_ring_max_record(p);
		for (uint64_t i = 0; i < iters && !bad; i++) {
			void *d;
			if (fr_ring_reserve(p, len, 8, &d, FR_RING_WAIT_FOREVER) < 0) {
				bad = 3;
				break;
			}
			memset(d, (int)(i & 0xff), len);
			memcpy(d, &i, sizeof(i));
			if (fr_ring_commit(p, len) < 0)
				bad = 4;
		}
		fr_ring_close(&p);
		_exit(bad);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(fr_ring_open(&ca, a), 0);
	uint64_t rng = 3, v;
	for (uint64_t i = 0; i < iters; i++) {
		const void *d;
		size_t len;
		assert_int_equal(fr_ring_peek(ca, &d, &len, FR_RING_WAIT_FOREVER), 0);
		memcpy(&v, d, sizeof(v));
		assert_int_equal(v, i);
		assert_int_equal(((const unsigned char *)d)[len - 1], (unsigned char)(i & 0xff));
		rt_sleep_ns(rt_rand(&rng) % 50000);
		assert_int_equal(fr_ring_release(ca), 0);
	}
	const void *d;
	size_t len;
	assert_int_equal(fr_ring_peek(ca, &d, &len, FR_RING_WAIT_FOREVER), -ENODATA);
	fr_ring_get_stats(ca, &st);
	fr_ring_close(&ca);
	assert_int_equal(rt_wait_child(kids[0]), 0);
	kids[0] = 0;
	rt_watchdog(0, "");
	check_wakeups("full ring, child producer", st.producer_futex_waits, st.producer_futex_wakes, iters);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_block, teardown),
		cmocka_unit_test_teardown(test_drop, teardown),
		cmocka_unit_test_teardown(test_block_hot_lap, teardown),
		cmocka_unit_test_teardown(test_drop_hot_lap, teardown),
		cmocka_unit_test_teardown(test_pingpong_reader_sleeps, teardown),
		cmocka_unit_test_teardown(test_pingpong_writer_sleeps, teardown),
	};

	rt_parse_args(argc, argv, "Cross-process ring stress (fork): lossless block mode, counted drops, no-lost-wakeup ping-pong.");

	n_records = rt_env_u64("RING_STRESS_RECORDS", 1000000);
	fprintf(stderr, "RING_STRESS_RECORDS=%llu\n", (unsigned long long)n_records);
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	rt_cleanup();
	return failed ? 1 : 0;
}
