/* test_ring_peer_death.c - SIGKILL one side of a ring while the other waits: -EOWNERDEAD, stale segments reclaimed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ringtest.h"

#define WATCHDOG_S 10 /* a blocked side must notice a dead peer well before this */

static fr_ring_t *P, *C, *C2;
static pid_t kid;
static char name[256];

static int setup(void **state)
{
	(void)state;
	P = C = C2 = NULL;
	kid = 0;
	rt_name(name, sizeof(name), "death");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rt_watchdog(0, "");
	if (kid > 0) {
		kill(kid, SIGKILL);
		rt_wait_child(kid);
	}
	kid = 0;
	fr_ring_close(&C2);
	fr_ring_close(&C);
	fr_ring_close(&P);
	rt_cleanup();
	return 0;
}

/* A child that creates the ring, writes NREC records "rec-<i>", says so and waits to be killed. */
static pid_t spawn_producer(uint64_t capacity, int nrec)
{
	struct fr_ring_create_opts o = { .capacity = capacity };
	int ready[2];
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fr_ring_t *r = NULL;
		char rec[32];
		int ok = fr_ring_create(&r, name, &o) == 0;
		for (int i = 0; ok && i < nrec; i++) {
			int n = snprintf(rec, sizeof(rec), "rec-%d", i);
			ok = fr_ring_write(r, rec, (size_t)n, FR_RING_NO_WAIT) == 0;
		}
		c = ok ? 'y' : 'n';
		(void)!write(ready[1], &c, 1);
		for (;;)
			pause();
	}
	rt_track_child(pid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(c, 'y');
	return pid;
}

/* A child that attaches as the consumer of an existing ring and waits to be killed. */
static pid_t spawn_consumer(void)
{
	int ready[2];
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fr_ring_t *r = NULL;
		c = fr_ring_open(&r, name) == 0 ? 'y' : 'n';
		(void)!write(ready[1], &c, 1);
		for (;;)
			pause();
	}
	rt_track_child(pid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(c, 'y');
	return pid;
}

/* SIGKILL a pid after a delay, from a thread, while the test thread blocks in the ring. */
struct killer {
	pid_t pid;
	uint64_t delay_ns;
	_Atomic uint64_t killed_at;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	rt_sleep_ns(k->delay_ns);
	atomic_store(&k->killed_at, rt_now_ns());
	kill(k->pid, SIGKILL);
	return NULL;
}

static void expect_record(fr_ring_t *c, int i)
{
	char buf[32], want[32];
	int n = snprintf(want, sizeof(want), "rec-%d", i);

	assert_int_equal(fr_ring_read(c, buf, sizeof(buf), FR_RING_NO_WAIT), n);
	assert_memory_equal(buf, want, (size_t)n);
}

/* The producer dies with records still in the ring: the consumer gets them, then -EOWNERDEAD. */
static void drain_then_dead(int reap_first)
{
	const void *d;
	size_t len;

	kid = spawn_producer(4096, 3);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_true(fr_ring_peer_alive(C));
	kill(kid, SIGKILL);
	if (reap_first) {
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
	}
	/* killed: zombie until reaped, or gone; either way not alive */
	for (int i = 0; i < 1000 && fr_ring_peer_alive(C); i++)
		rt_sleep_ns(1000000); /* SIGKILL delivery is asynchronous */
	assert_false(fr_ring_peer_alive(C));
	rt_watchdog(WATCHDOG_S, "consumer drain after producer death");
	for (int i = 0; i < 3; i++)
		expect_record(C, i);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EOWNERDEAD); /* and it stays so */
	rt_watchdog(0, "");
	struct fr_ring_stats st;
	fr_ring_get_stats(C, &st);
	assert_false(st.producer_alive);
	assert_false(st.eos); /* a death is not an end of stream */
	/* the consumer's close removes the stale segment */
	assert_true(rt_shm_exists(name));
	fr_ring_close(&C);
	assert_false(rt_shm_exists(name));
}

static void test_drain_then_dead_zombie(void **state)
{
	(void)state;
	drain_then_dead(0);
}

static void test_drain_then_dead_reaped(void **state)
{
	(void)state;
	drain_then_dead(1);
}

/* The consumer blocks in peek(FR_RING_WAIT_FOREVER); the producer is SIGKILLed meanwhile. */
static void test_consumer_waiting_producer_killed(void **state)
{
	struct killer k = { 0 };
	pthread_t t;
	const void *d;
	size_t len;

	(void)state;
	kid = spawn_producer(4096, 1);
	assert_int_equal(fr_ring_open(&C, name), 0);
	expect_record(C, 0);
	k.pid = kid;
	k.delay_ns = 300 * 1000000ull;
	rt_watchdog(WATCHDOG_S, "blocking fr_ring_peek after producer SIGKILL (zombie)");
	assert_int_equal(pthread_create(&t, NULL, killer_main, &k), 0);
	int rc = fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER);
	uint64_t back = rt_now_ns();
	assert_int_equal(pthread_join(t, NULL), 0);
	rt_watchdog(0, "");
	print_message("producer SIGKILLed (zombie, not reaped): blocked fr_ring_peek returned %s %.1f ms after the kill\n",
		      fr_ring_strerror(rc), (double)(back - atomic_load(&k.killed_at)) / 1e6);
	assert_int_equal(rc, -EOWNERDEAD);
	assert_int_equal(rt_wait_child(kid), 128 + SIGKILL); /* reaped only now */
	kid = 0;
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
}

/* The producer blocks on a full ring; the consumer is SIGKILLed meanwhile. */
static void consumer_killed(int reap_first)
{
	struct fr_ring_create_opts o = { .capacity = 4096 };
	struct killer k = { 0 };
	pthread_t t;
	char rec[1000];
	void *d;
	int rc;
	uint64_t back;

	memset(rec, 'r', sizeof(rec));
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	kid = spawn_consumer();
	assert_true(fr_ring_peer_alive(P));
	while ((rc = fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT)) == 0)
		;
	assert_int_equal(rc, -EAGAIN);
	rt_watchdog(WATCHDOG_S, "blocking fr_ring_reserve after consumer SIGKILL");
	if (reap_first) {
		kill(kid, SIGKILL);
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
		k.killed_at = rt_now_ns();
		rc = fr_ring_reserve(P, sizeof(rec), 8, &d, FR_RING_WAIT_FOREVER);
		back = rt_now_ns();
	} else {
		k.pid = kid;
		k.delay_ns = 300 * 1000000ull;
		assert_int_equal(pthread_create(&t, NULL, killer_main, &k), 0);
		rc = fr_ring_reserve(P, sizeof(rec), 8, &d, FR_RING_WAIT_FOREVER);
		back = rt_now_ns();
		assert_int_equal(pthread_join(t, NULL), 0);
	}
	rt_watchdog(0, "");
	print_message("consumer SIGKILLed (%s): blocked fr_ring_reserve returned %s %.1f ms after the kill\n",
		      reap_first ? "reaped before the call" : "zombie", fr_ring_strerror(rc),
		      (double)(back - atomic_load(&k.killed_at)) / 1e6);
	assert_int_equal(rc, -EOWNERDEAD);
	assert_false(fr_ring_peer_alive(P));
	if (kid > 0) {
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
	}
	/* A new consumer takes the dead one's place and gets the records it left. */
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_true(fr_ring_peer_alive(P));
	char buf[1024];
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), (ssize_t)sizeof(rec));
	assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT), 0);
}

static void test_producer_waiting_consumer_killed_zombie(void **state)
{
	(void)state;
	consumer_killed(0);
}

static void test_producer_waiting_consumer_killed_reaped(void **state)
{
	(void)state;
	consumer_killed(1);
}

/* The only consumer dies, records unread, and the producer goes on past the
 * hot lap: the reserve waits for the front of the ring, where the dead
 * consumer's head is, and finds the death there. The record still fits at
 * the tail, so it goes there, as it does without a lap; once the ring is
 * full the producer hears that its last consumer died, on that reserve and
 * every later one (and from fr_ring_wait_drained), never the -ENOTCONN of a
 * consumer that detached: the same with the lap and without. */
static void test_hot_lap_front_wait_consumer_killed(void **state)
{
	struct fr_ring_create_opts o = { .capacity = 64u << 10 };
	char rec[1000];
	int n, rc;

	(void)state;
	memset(rec, 'r', sizeof(rec));
	for (int lap = 1; lap >= 0; lap--) {
		assert_int_equal(fr_ring_create(&P, name, &o), 0);
		/* A front wait far longer than the watchdog: only the death ends it. */
		assert_int_equal(fr_ring_set_hot_lap(P, lap ? 8u << 10 : FR_RING_HOT_LAP_OFF, 60 * 1000000000ll), 0);
		kid = spawn_consumer();
		for (n = 0; n < 8; n++) /* the 8 KiB lap, unread */
			assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT), 0);
		kill(kid, SIGKILL);
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
		rt_watchdog(WATCHDOG_S, "fr_ring_write past the hot lap after the consumer's SIGKILL");
		while ((rc = fr_ring_write(P, rec, sizeof(rec), FR_RING_WAIT_FOREVER)) == 0)
			n++;
		print_message("hot lap %s: %d records, then %s\n", lap ? "on" : "off", n, fr_ring_strerror(rc));
		assert_int_equal(rc, -EOWNERDEAD);
		assert_true(n >= 60); /* the whole ring was used, the first record past the lap too */
		assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT), -EOWNERDEAD);
		assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_WAIT_FOREVER), -EOWNERDEAD);
		assert_int_equal(fr_ring_wait_drained(P, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
		rt_watchdog(0, "");
		/* A consumer that comes and leaves cleanly: now it is -ENOTCONN. */
		assert_int_equal(fr_ring_open(&C, name), 0);
		fr_ring_close(&C);
		assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT), -ENOTCONN);
		fr_ring_close(&P);
	}
}

/* A producer that polls fr_ring_wait_drained(FR_RING_NO_WAIT) while its only
 * consumer is SIGKILLed with records unread learns of the death, as one
 * that waits does, instead of "not yet" for ever. */
static void test_drained_poll_sees_consumer_killed(void **state)
{
	(void)state;
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	kid = spawn_consumer();
	assert_int_equal(fr_ring_write(P, "x", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_wait_drained(P, FR_RING_NO_WAIT), -EAGAIN);
	kill(kid, SIGKILL);
	assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
	kid = 0;
	rt_watchdog(WATCHDOG_S, "fr_ring_wait_drained(NO_WAIT) with a dead consumer");
	int rc;
	while ((rc = fr_ring_wait_drained(P, FR_RING_NO_WAIT)) == -EAGAIN)
		rt_sleep_ns(1000000);
	rt_watchdog(0, "");
	assert_int_equal(rc, -EOWNERDEAD);
}

/* A new producer reclaims the segment of a SIGKILLed one, zombie or reaped;
 * a consumer still on the old segment sees the death and does not remove the new one. */
static void reclaim(int reap_first)
{
	const void *d;
	size_t len;
	struct fr_ring_stats st;

	kid = spawn_producer(4096, 2);
	assert_int_equal(fr_ring_open(&C, name), 0); /* on the old segment */
	assert_int_equal(fr_ring_create(&P, name, NULL), -EBUSY);
	kill(kid, SIGKILL);
	if (reap_first) {
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
	}
	int rc = -EBUSY;
	for (int i = 0; i < 1000 && rc == -EBUSY; i++) {
		rc = fr_ring_create(&P, name, NULL);
		if (rc == -EBUSY)
			rt_sleep_ns(1000000); /* SIGKILL delivery is asynchronous */
	}
	assert_int_equal(rc, 0);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.producer_pid, getpid());
	assert_int_equal(st.records_written, 0); /* a fresh segment, not the old one */
	assert_int_equal(fr_ring_write(P, "new", 3, FR_RING_NO_WAIT), 0);

	/* the old consumer drains the old segment, then learns its producer died */
	expect_record(C, 0);
	expect_record(C, 1);
	rt_watchdog(WATCHDOG_S, "old consumer after reclaim");
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
	rt_watchdog(0, "");
	fr_ring_close(&C); /* the name now belongs to the new segment: must stay */
	assert_true(rt_shm_exists(name));
	assert_int_equal(fr_ring_open(&C2, name), 0);
	char buf[8];
	assert_int_equal(fr_ring_read(C2, buf, sizeof(buf), FR_RING_NO_WAIT), 3);
	assert_memory_equal(buf, "new", 3);
	if (kid > 0) {
		assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
		kid = 0;
	}
}

static void test_reclaim_zombie(void **state)
{
	(void)state;
	reclaim(0);
}

static void test_reclaim_reaped(void **state)
{
	(void)state;
	reclaim(1);
}

/* A consumer SIGKILLed while attached does not block the next one: its slot
 * is free once it is dead (-EBUSY only while it lives; here the ring has one). */
static void test_dead_consumer_replaced(void **state)
{
	struct fr_ring_create_opts one = { .max_consumers = 1 };
	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &one), 0);
	kid = spawn_consumer();
	assert_int_equal(fr_ring_open(&C, name), -EBUSY);
	kill(kid, SIGKILL);
	int rc = -EBUSY;
	for (int i = 0; i < 1000 && rc == -EBUSY; i++) {
		rc = fr_ring_open(&C, name); /* zombie: not yet reaped */
		if (rc == -EBUSY)
			rt_sleep_ns(1000000);
	}
	assert_int_equal(rc, 0);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.consumer_pid, getpid());
	assert_int_equal(rt_wait_child(kid), 128 + SIGKILL);
	kid = 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drain_then_dead_zombie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_then_dead_reaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consumer_waiting_producer_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_waiting_consumer_killed_zombie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_waiting_consumer_killed_reaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_front_wait_consumer_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drained_poll_sees_consumer_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_zombie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_reaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_consumer_replaced, setup, teardown),
	};

	rt_parse_args(argc, argv, "Peer death: SIGKILL one side while the other waits (-EOWNERDEAD), stale segments reclaimed.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
