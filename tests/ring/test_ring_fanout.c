/* test_ring_fanout.c - one producer, many consumers: every-consumers get every record, latest-consumers the newest, holds are kept, the dead are reaped. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ring_layout.h"
#include "ringtest.h"

#define CAP (64u << 10)

static char name[256];
static fr_ring_t *P;
static pid_t producer_child; /* a test's producer process, killed by teardown if the test fails */

static int setup(void **state)
{
	(void)state;
	rt_name(name, sizeof(name), "fan");
	P = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fr_ring_close(&P);
	if (producer_child > 0) {
		kill(producer_child, SIGKILL);
		rt_wait_child(producer_child);
		producer_child = 0;
	}
	rt_cleanup();
	return 0;
}

/* A record: its sequence number, then bytes that follow from it. */
static void fill_record(uint8_t *p, size_t len, uint64_t seq)
{
	memcpy(p, &seq, sizeof(seq));
	for (size_t i = sizeof(seq); i < len; i++)
		p[i] = (uint8_t)(seq * 131 + i);
}

/* The sequence number of a record whose bytes are all as fill_record made them, or UINT64_MAX. */
static uint64_t check_record(const uint8_t *p, size_t len)
{
	uint64_t seq;
	if (len < sizeof(seq))
		return UINT64_MAX;
	memcpy(&seq, p, sizeof(seq));
	for (size_t i = sizeof(seq); i < len; i++)
		if (p[i] != (uint8_t)(seq * 131 + i))
			return UINT64_MAX;
	return seq;
}

static void create(unsigned max_consumers, enum fr_ring_full_policy policy)
{
	struct fr_ring_create_opts o = { .capacity = CAP, .on_full = policy, .max_consumers = max_consumers };
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
}

static fr_ring_t *attach(enum fr_ring_consumer_mode mode)
{
	struct fr_ring_attach_opts ao = { mode, 0 };
	fr_ring_t *c = NULL;
	int rc = fr_ring_attach(&c, name, &ao);
	if (rc != 0)
		fail_msg("fr_ring_attach(%s): %s", mode == FR_RING_CONSUMER_LATEST ? "latest" : "every", fr_ring_strerror(rc));
	return c;
}

static int write_seq(uint64_t seq, size_t len, int64_t timeout)
{
	void *d;
	int rc = fr_ring_reserve(P, len, 8, &d, timeout);
	if (rc < 0)
		return rc;
	fill_record(d, len, seq);
	return fr_ring_commit(P, len);
}

struct reader {
	fr_ring_t *c;
	enum fr_ring_consumer_mode mode;
	uint64_t count, last, bad, out_of_order, hold_ns;
	int end;
};

/* Read until end of stream; check every record's bytes and order. */
static void *read_all(void *arg)
{
	struct reader *rd = arg;
	uint64_t expect = 0;
	rd->last = UINT64_MAX;
	for (;;) {
		const void *d;
		size_t len;
		int rc = fr_ring_peek(rd->c, &d, &len, 10 * 1000000000ll);
		if (rc < 0) {
			rd->end = rc;
			return NULL;
		}
		uint64_t seq = check_record(d, len);
		if (rd->hold_ns) {
			rt_sleep_ns(rd->hold_ns);
			if (check_record(d, len) != seq)
				rd->bad++; /* overwritten while held */
		}
		if (seq == UINT64_MAX)
			rd->bad++;
		else if (rd->mode == FR_RING_CONSUMER_EVERY ? seq != expect : (rd->last != UINT64_MAX && seq <= rd->last))
			rd->out_of_order++;
		rd->last = seq;
		expect = seq + 1;
		rd->count++;
		assert_int_equal(fr_ring_release(rd->c), 0);
	}
}

/* Three every-consumers and two latest-consumers, one of them slow, read one
 * stream at once: the every-consumers get every record in order, intact;
 * the latest ones a subset in order, intact, the slow one's held records
 * never overwritten while held. */
static void test_many_readers(void **state)
{
	enum { EVERY = 3, LIVE = 2, N = 20000 };
	struct reader rd[EVERY + LIVE];
	pthread_t t[EVERY + LIVE];

	(void)state;
	create(8, FR_RING_FULL_BLOCK);
	for (int i = 0; i < EVERY + LIVE; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].mode = i < EVERY ? FR_RING_CONSUMER_EVERY : FR_RING_CONSUMER_LATEST;
		rd[i].hold_ns = i == EVERY + LIVE - 1 ? 2000000 : 0; /* the slow live one holds 2 ms */
		rd[i].c = attach(rd[i].mode);
	}
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.consumers, EVERY + LIVE);
	for (int i = 0; i < EVERY + LIVE; i++)
		assert_int_equal(pthread_create(&t[i], NULL, read_all, &rd[i]), 0);
	rt_watchdog(120, "five readers of one ring");
	uint64_t rng = 7;
	for (uint64_t seq = 0; seq < N; seq++)
		assert_int_equal(write_seq(seq, 8 + rt_rand(&rng) % 3000, FR_RING_WAIT_FOREVER), 0);
	assert_int_equal(fr_ring_mark_eos(P), 0);
	for (int i = 0; i < EVERY + LIVE; i++)
		pthread_join(t[i], NULL);
	rt_watchdog(0, NULL);
	for (int i = 0; i < EVERY + LIVE; i++) {
		print_message("%s reader %d: %llu records, last %llu, %llu bad, %llu out of order\n",
			      rd[i].mode == FR_RING_CONSUMER_EVERY ? "every" : "latest", i, (unsigned long long)rd[i].count,
			      (unsigned long long)rd[i].last, (unsigned long long)rd[i].bad,
			      (unsigned long long)rd[i].out_of_order);
		assert_int_equal(rd[i].end, -ENODATA);
		assert_int_equal(rd[i].bad, 0);
		assert_int_equal(rd[i].out_of_order, 0);
		if (rd[i].mode == FR_RING_CONSUMER_EVERY)
			assert_int_equal(rd[i].count, N);
		else
			assert_true(rd[i].count >= 1 && rd[i].count <= N);
		assert_int_equal(rd[i].last, N - 1); /* everyone ends with the last record */
	}
	struct fr_ring_consumer_info info[FR_RING_MAX_CONSUMERS];
	assert_int_equal(fr_ring_consumers(P, info, FR_RING_MAX_CONSUMERS), EVERY + LIVE);
	for (int i = 0; i < EVERY + LIVE; i++) {
		assert_true(info[i].alive);
		assert_int_equal(info[i].lag_records, 0);
		assert_int_equal(info[i].records_read + info[i].records_skipped, N);
	}
	for (int i = 0; i < EVERY + LIVE; i++)
		fr_ring_close(&rd[i].c);
}

/* A latest-consumer never slows the producer, and the record it holds is
 * never overwritten while held: hold one while the producer (under
 * FR_RING_FULL_BLOCK, not waiting at all) writes a hundred laps. */
static void test_held_record_survives_laps(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	create(4, FR_RING_FULL_BLOCK);
	fr_ring_t *live = attach(FR_RING_CONSUMER_LATEST);
	assert_int_equal(write_seq(0, 1000, FR_RING_NO_WAIT), 0);
	assert_int_equal(write_seq(1, 1000, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), 1); /* the newest */
	uint8_t copy[1000];
	memcpy(copy, d, len);
	uint64_t n = 100 * (CAP / 1016) + 2;
	for (uint64_t seq = 2; seq < n; seq++) {
		int rc = write_seq(seq, 1000, FR_RING_NO_WAIT);
		if (rc != 0)
			fail_msg("record %llu: the producer had to wait (%s): the live consumer slowed it",
				 (unsigned long long)seq, fr_ring_strerror(rc));
	}
	assert_memory_equal(d, copy, len);
	assert_int_equal(fr_ring_release(live), 0);
	uint64_t skipped = 0;
	assert_int_equal(fr_ring_peek_latest(live, &d, &len, &skipped, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), n - 1);
	assert_int_equal(skipped, n - 3);
	assert_int_equal(fr_ring_release(live), 0);
	assert_int_equal(fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT), -EAGAIN);
	fr_ring_close(&live);
}

/* Attaching late: an every-consumer starts at the oldest record still whole
 * (before the first consumer, FR_RING_FULL_BLOCK kept them all), a latest one at
 * the newest; the maximum+1-th gets -EBUSY; a freed slot is taken again. */
static void test_late_attach_and_maximum(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	create(2, FR_RING_FULL_BLOCK);
	int rc, seq = 0;
	while ((rc = write_seq((uint64_t)seq, 1000, FR_RING_NO_WAIT)) == 0)
		seq++;
	assert_int_equal(rc, -EAGAIN); /* before the first consumer, a block producer waits for it */
	fr_ring_t *every = attach(FR_RING_CONSUMER_EVERY);
	assert_int_equal(fr_ring_peek(every, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), 0); /* the first consumer gets the first record */
	assert_int_equal(fr_ring_release(every), 0);
	fr_ring_t *live = attach(FR_RING_CONSUMER_LATEST);
	assert_int_equal(fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), (uint64_t)seq - 1); /* the newest */
	assert_int_equal(fr_ring_release(live), 0);
	fr_ring_t *third = NULL;
	assert_int_equal(fr_ring_open(&third, name), -EBUSY);
	struct fr_ring_attach_opts lo = { FR_RING_CONSUMER_LATEST, 0 };
	assert_int_equal(fr_ring_attach(&third, name, &lo), -EBUSY);
	assert_null(third);
	fr_ring_close(&live);
	third = attach(FR_RING_CONSUMER_EVERY);
	/* a late every-consumer: the oldest record still whole (the first is, here) */
	assert_int_equal(fr_ring_peek(third, &d, &len, FR_RING_NO_WAIT), 0);
	assert_true(check_record(d, len) <= 1);
	assert_int_equal(fr_ring_release(third), 0);
	struct fr_ring_attach_opts bad = { (enum fr_ring_consumer_mode)7, 0 };
	assert_int_equal(fr_ring_attach(&live, name, &bad), -EINVAL);
	fr_ring_close(&third);
	fr_ring_close(&every);
}

/* The ring's reading goes by the slowest every-consumer; when it leaves
 * (cleanly) the producer goes on for the others at once. */
static void test_slowest_gates_and_leaves(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	create(4, FR_RING_FULL_BLOCK);
	fr_ring_t *fast = attach(FR_RING_CONSUMER_EVERY), *slow = attach(FR_RING_CONSUMER_EVERY);
	uint64_t seq = 0;
	while (write_seq(seq, 1000, FR_RING_NO_WAIT) == 0) {
		assert_int_equal(fr_ring_peek(fast, &d, &len, FR_RING_NO_WAIT), 0);
		assert_int_equal(fr_ring_release(fast), 0);
		seq++;
	}
	assert_true(seq >= CAP / 1016 - 2); /* the slow one holds a lap */
	assert_int_equal(write_seq(seq, 1000, 50 * 1000000ll), -ETIMEDOUT);
	struct fr_ring_consumer_info info[4];
	assert_int_equal(fr_ring_consumers(P, info, 4), 2);
	assert_int_equal(info[0].lag_records, 0);
	assert_int_equal(info[1].lag_records, seq);
	fr_ring_close(&slow);
	assert_int_equal(write_seq(seq, 1000, FR_RING_NO_WAIT), 0);
	fr_ring_close(&fast);
	/* nobody left: a block producer fills what the last reader left, then -ENOTCONN */
	int rc;
	while ((rc = write_seq(++seq, 1000, 50 * 1000000ll)) == 0)
		;
	assert_int_equal(rc, -ENOTCONN);
}

static pid_t spawn_reader(enum fr_ring_consumer_mode mode, bool hold)
{
	int ready[2];
	char c = 0;
	assert_int_equal(pipe(ready), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fr_ring_attach_opts ao = { mode, 0 };
		fr_ring_t *r = NULL;
		const void *d;
		size_t len;
		c = fr_ring_attach(&r, name, &ao) == 0 ? 'y' : 'n';
		if (c == 'y' && hold)
			c = fr_ring_peek(r, &d, &len, FR_RING_WAIT_FOREVER) == 0 ? 'y' : 'n';
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

/* kill -9 of a consumer of either kind: the producer and the others go on;
 * its slot, and the record it held, are freed within the liveness bound. */
static void test_dead_consumers_reaped(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	create(3, FR_RING_FULL_BLOCK);
	fr_ring_t *mine = attach(FR_RING_CONSUMER_EVERY);
	assert_int_equal(write_seq(0, 1000, FR_RING_NO_WAIT), 0);
	pid_t every = spawn_reader(FR_RING_CONSUMER_EVERY, false);
	pid_t live = spawn_reader(FR_RING_CONSUMER_LATEST, true);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.consumers, 3);
	fr_ring_t *none = NULL;
	assert_int_equal(fr_ring_open(&none, name), -EBUSY);
	/* the dead every-consumer gates the producer until it is reaped */
	kill(every, SIGKILL);
	assert_int_equal(rt_wait_child(every), 128 + SIGKILL);
	kill(live, SIGKILL);
	assert_int_equal(rt_wait_child(live), 128 + SIGKILL);
	rt_watchdog(30, "a producer gated by a dead consumer");
	uint64_t t0 = rt_now_ns();
	for (uint64_t seq = 1; seq < 10 * (CAP / 1016); seq++) {
		assert_int_equal(write_seq(seq, 1000, 10 * 1000000000ll), 0);
		assert_int_equal(fr_ring_peek(mine, &d, &len, FR_RING_NO_WAIT), 0);
		assert_int_equal(check_record(d, len), seq - 1);
		assert_int_equal(fr_ring_release(mine), 0);
	}
	rt_watchdog(0, NULL);
	print_message("dead consumers reaped after %.0f ms\n", (double)(rt_now_ns() - t0) / 1e6);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.consumers, 1);
	assert_int_equal(st.consumers_reaped, 2);
	/* their slots are free again */
	fr_ring_t *again = attach(FR_RING_CONSUMER_LATEST);
	fr_ring_close(&again);
	fr_ring_close(&mine);
}

/* kill -9 of an every-consumer under FR_RING_FULL_DROP (or with FR_RING_NO_WAIT
 * reserves): the producer never waits, so it must reap the dead one without
 * waiting, or the dead head gates it forever and every later record is
 * dropped, for the live consumers too. */
static void test_dead_consumer_reaped_without_waiting(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	create(2, FR_RING_FULL_DROP);
	fr_ring_t *mine = attach(FR_RING_CONSUMER_EVERY);
	pid_t every = spawn_reader(FR_RING_CONSUMER_EVERY, false);
	uint64_t seq = 0;
	while (write_seq(seq, 1000, FR_RING_NO_WAIT) == 0)
		seq++;
	kill(every, SIGKILL);
	assert_int_equal(rt_wait_child(every), 128 + SIGKILL);
	while (fr_ring_peek(mine, &d, &len, FR_RING_NO_WAIT) == 0)
		assert_int_equal(fr_ring_release(mine), 0);
	/* The ring is empty for the consumer that is left: a record gets in
	 * once the dead one is reaped (the watchdog says if it never is). */
	rt_watchdog(30, "a non-waiting producer gated by a dead consumer");
	int rc;
	while ((rc = write_seq(seq, 1000, FR_RING_NO_WAIT)) == -ENOBUFS)
		rt_sleep_ns(1000000);
	rt_watchdog(0, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(fr_ring_peek(mine, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), seq);
	assert_int_equal(fr_ring_release(mine), 0);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.consumers, 1);
	assert_int_equal(st.consumers_reaped, 1);
	fr_ring_close(&mine);
}

/* A consumer that died is not attached: fr_ring_wait_consumers() does not
 * count it, or a pipeline would start without the lossless consumer it
 * waited for. */
static void test_wait_consumers_counts_the_living(void **state)
{
	(void)state;
	create(2, FR_RING_FULL_BLOCK);
	pid_t every = spawn_reader(FR_RING_CONSUMER_EVERY, false);
	assert_int_equal(fr_ring_wait_consumers(P, 1, FR_RING_NO_WAIT), 0);
	kill(every, SIGKILL);
	assert_int_equal(rt_wait_child(every), 128 + SIGKILL);
	assert_int_equal(fr_ring_wait_consumers(P, 1, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_wait_consumers(P, 1, 1000000), -ETIMEDOUT);
	fr_ring_t *c = attach(FR_RING_CONSUMER_LATEST);
	assert_int_equal(fr_ring_wait_consumers(P, 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_wait_consumers(P, 2, FR_RING_NO_WAIT), -EAGAIN);
	fr_ring_close(&c);
}

/* While the producer sleeps in fr_ring_wait_consumers(), a consumer comes
 * and dies: the wait goes on for the N it was asked for (a dead consumer is
 * one fewer, not an error; ring.h lists no -EOWNERDEAD for this call). */
struct come_and_die {
	struct ring_shm_header *h;
	pid_t pid;
};

static void *come_and_die_main(void *arg)
{
	struct come_and_die *cd = arg;
	while (!atomic_load(&cd->h->producer_sleeping))
		rt_sleep_ns(1000000);
	cd->pid = spawn_reader(FR_RING_CONSUMER_EVERY, false);
	while (!atomic_load(&cd->h->producer_sleeping))
		rt_sleep_ns(1000000); /* woken by the attach, asleep again: 1 of 2 */
	kill(cd->pid, SIGKILL);
	rt_wait_child(cd->pid);
	return NULL;
}

static void test_wait_consumers_outlives_a_death(void **state)
{
	(void)state;
	create(2, FR_RING_FULL_BLOCK);
	const void *base;
	fr_ring_mapping(P, &base, NULL);
	struct come_and_die cd = { (struct ring_shm_header *)base, 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, come_and_die_main, &cd), 0);
	rt_watchdog(60, "fr_ring_wait_consumers with a consumer that died");
	int rc = fr_ring_wait_consumers(P, 2, 2000 * 1000000ll);
	rt_watchdog(0, NULL);
	pthread_join(t, NULL);
	assert_int_equal(rc, -ETIMEDOUT);
}

/* A live consumer that looks while the producer is stopped inside a commit,
 * between storing the newest record's index and its position (a preempted
 * producer), must not take the index of the record being committed for the
 * record before it: it would then wait for one record too many, and never
 * get the one being committed (a stream's last frame is lost). */
static void test_latest_during_commit(void **state)
{
	const void *d;
	size_t len;
	void *w;

	(void)state;
	create(2, FR_RING_FULL_BLOCK);
	fr_ring_t *live = attach(FR_RING_CONSUMER_LATEST);
	const void *base;
	fr_ring_mapping(P, &base, NULL);
	struct ring_shm_header *h = (struct ring_shm_header *)base;
	assert_int_equal(write_seq(0, 100, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_reserve(P, 100, 8, &w, FR_RING_NO_WAIT), 0);
	fill_record(w, 100, 1);
	/* The first store of fr_ring_commit(): the index of record 1 is out,
	 * its position and records_written not yet. */
	atomic_store(&h->newest_index, 1);
	int rc = fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT);
	if (rc == 0) {
		assert_int_equal(check_record(d, len), 0);
		assert_int_equal(fr_ring_release(live), 0);
	} else {
		assert_int_equal(rc, -EAGAIN); /* record 0 may wait for the commit under way */
	}
	assert_int_equal(fr_ring_commit(P, 100), 0); /* the rest of the commit */
	assert_int_equal(fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(check_record(d, len), 1);
	assert_int_equal(fr_ring_release(live), 0);
	assert_int_equal(fr_ring_mark_eos(P), 0);
	assert_int_equal(fr_ring_peek(live, &d, &len, FR_RING_NO_WAIT), -ENODATA);
	fr_ring_close(&live);
}

/* The producer dies (SIGKILL) inside a commit, between the newest record's
 * index and its position: that commit never ends. A live consumer that has
 * not read the record before it still gets that one (the newest there will
 * be), then -EOWNERDEAD, not the death at once. */
static void test_latest_producer_dies_during_commit(void **state)
{
	const void *d;
	size_t len;
	int ready[2];
	char c = 0;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	fflush(NULL);
	pid_t pid = producer_child = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fr_ring_create_opts o = { .capacity = CAP, .max_consumers = 2 };
		void *w;
		const void *base;
		c = 'n';
		if (fr_ring_create(&P, name, &o) == 0 && write_seq(0, 100, FR_RING_NO_WAIT) == 0 &&
		    fr_ring_reserve(P, 100, 8, &w, FR_RING_NO_WAIT) == 0) {
			fill_record(w, 100, 1);
			fr_ring_mapping(P, &base, NULL);
			atomic_store(&((struct ring_shm_header *)base)->newest_index, 1); /* commit begun */
			c = 'y';
		}
		(void)!write(ready[1], &c, 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(c, 'y');
	fr_ring_t *live = attach(FR_RING_CONSUMER_LATEST);
	kill(pid, SIGKILL);
	assert_int_equal(rt_wait_child(pid), 128 + SIGKILL);
	producer_child = 0;
	rt_watchdog(30, "a live consumer of a producer that died in a commit");
	int rc = fr_ring_peek(live, &d, &len, 10 * 1000000000ll);
	rt_watchdog(0, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(check_record(d, len), 0);
	assert_int_equal(fr_ring_release(live), 0);
	assert_int_equal(fr_ring_peek(live, &d, &len, 10 * 1000000000ll), -EOWNERDEAD);
	fr_ring_close(&live);
}

/* A consumer attaching while the producer is stopped at any point of its
 * loop (mid-lease-renewal, just after stepping over a held record) gets in
 * and reads a whole record or "nothing yet", never "corrupt": an every-
 * consumer's start is one the producer will not write over, a live one
 * waits for a newer record when the newest is gone. Records near half the
 * ring and a live consumer that holds one make the producer renew and step
 * over often. */
static void attach_while_producer_stopped(uint64_t hot_lap)
{
	uint64_t stops = rt_env_u64("RING_STOP_ROUNDS", 3000);

	fflush(NULL);
	pid_t producer = producer_child = fork();
	assert_true(producer >= 0);
	if (producer == 0) {
		struct fr_ring_create_opts o = { .capacity = CAP, .on_full = FR_RING_FULL_BLOCK, .max_consumers = 4 };
		if (fr_ring_create(&P, name, &o) < 0)
			_exit(20);
		if (hot_lap && fr_ring_set_hot_lap(P, hot_lap, 100000) < 0)
			_exit(22);
		uint64_t rng = 7;
		for (uint64_t seq = 0;; seq++)
			if (write_seq(seq, 8 + rt_rand(&rng) % (CAP / 2 - 64), -1) < 0)
				_exit(21);
	}
	rt_track_child(producer);
	rt_watchdog(300, "attaching to a stopped producer");
	struct fr_ring_attach_opts wait_live = { FR_RING_CONSUMER_LATEST, 10 * 1000000000ll };
	fr_ring_t *holder = NULL;
	assert_int_equal(fr_ring_attach(&holder, name, &wait_live), 0);
	uint64_t rng = 11, failures = 0;
	for (uint64_t i = 0; i < stops; i++) {
		const void *d;
		size_t len;
		if (i % 8 == 0) { /* hold a newer record now and then: the producer steps over it each lap */
			fr_ring_release(holder);
			assert_int_equal(fr_ring_peek(holder, &d, &len, 10 * 1000000000ll), 0);
			assert_int_not_equal(check_record(d, len), UINT64_MAX);
		}
		rt_sleep_ns(rt_rand(&rng) % 200000);
		assert_int_equal(kill(producer, SIGSTOP), 0);
		int st;
		assert_int_equal(waitpid(producer, &st, WUNTRACED), producer);
		assert_true(WIFSTOPPED(st));
		fr_ring_t *c = NULL;
		struct fr_ring_attach_opts now = { i % 2 ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, 0 };
		int rc = fr_ring_attach(&c, name, &now);
		if (rc == 0) {
			/* What it starts at is whole (the stopped producer cannot have written past it). */
			rc = fr_ring_peek(c, &d, &len, FR_RING_NO_WAIT);
			if (rc == 0 && check_record(d, len) == UINT64_MAX)
				rc = -EBADMSG;
			if (rc == -EAGAIN)
				rc = 0; /* nothing published past its start yet */
		}
		if (rc < 0 && failures++ < 5)
			print_message("stop %llu (%s): attach/peek gave %s\n", (unsigned long long)i,
				      i % 2 ? "latest" : "every", fr_ring_strerror(rc));
		fr_ring_close(&c);
		assert_int_equal(kill(producer, SIGCONT), 0);
	}
	fr_ring_close(&holder);
	rt_watchdog(0, NULL);
	if (failures)
		fail_msg("%llu of %llu attaches to a stopped producer failed",
			 (unsigned long long)failures, (unsigned long long)stops);
}

static void test_attach_while_producer_stopped(void **state)
{
	(void)state;
	attach_while_producer_stopped(0);
}

/* The same with a short hot lap (a quarter of the ring): the producer wraps
 * early at every lap, stepping over the held record at the front, and late
 * every-consumers start from what that leaves whole. */
static void test_attach_while_hot_producer_stopped(void **state)
{
	(void)state;
	attach_while_producer_stopped(CAP / 4);
}

/* Random attach/detach of every and latest consumers (processes) under a
 * random-size stream: every-consumers lose nothing from where they start,
 * nobody ever reads a corrupt record. */
static void test_attach_detach_stress(void **state)
{
	uint64_t records = rt_env_u64("RING_STRESS_RECORDS", 1000000);
	enum { READERS = 4 };

	(void)state;
	create(6, FR_RING_FULL_BLOCK);
	fr_ring_t *anchor = attach(FR_RING_CONSUMER_LATEST); /* keeps the producer from waiting for a first consumer */
	pid_t kids[READERS];
	for (int k = 0; k < READERS; k++) {
		fflush(NULL);
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			uint64_t rs = 1000 + (uint64_t)k, sessions = 0, total = 0;
			for (;;) {
				enum fr_ring_consumer_mode mode = rt_rand(&rs) % 2 ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY;
				struct fr_ring_attach_opts ao = { mode, 0 };
				fr_ring_t *c = NULL;
				int rc = fr_ring_attach(&c, name, &ao);
				if (rc == -ENOENT)
					_exit(total > 0 ? 0 : 20); /* the producer is done */
				if (rc < 0) {
					fprintf(stderr, "reader %d: attach gave %s\n", k, fr_ring_strerror(rc));
					_exit(21);
				}
				sessions++;
				uint64_t want = 1 + rt_rand(&rs) % 5000, last = UINT64_MAX;
				for (uint64_t i = 0; i < want; i++) {
					const void *d;
					size_t len;
					rc = fr_ring_peek(c, &d, &len, 5 * 1000000000ll);
					if (rc == -ENODATA)
						break;
					if (rc < 0) {
						fprintf(stderr, "reader %d (%s): peek gave %s\n", k,
							mode == FR_RING_CONSUMER_EVERY ? "every" : "latest", fr_ring_strerror(rc));
						_exit(22);
					}
					uint64_t seq = check_record(d, len);
					if (seq == UINT64_MAX)
						_exit(23); /* corrupt */
					if (last != UINT64_MAX &&
					    (mode == FR_RING_CONSUMER_EVERY ? seq != last + 1 : seq <= last))
						_exit(24); /* lost (every) or out of order */
					last = seq;
					total++;
					if (fr_ring_release(c) < 0)
						_exit(25);
				}
				if (rt_rand(&rs) % 4 == 0)
					rt_sleep_ns(rt_rand(&rs) % 2000000);
				bool eos = rc == -ENODATA;
				fr_ring_close(&c);
				if (eos)
					_exit(sessions > 1 ? 0 : 26);
			}
		}
		rt_track_child(kids[k]);
	}
	rt_watchdog(600, "attach/detach stress");
	uint64_t rng = 99;
	for (uint64_t seq = 0; seq < records; seq++) {
		int rc = write_seq(seq, 8 + rt_rand(&rng) % 2000, 30 * 1000000000ll);
		if (rc != 0)
			fail_msg("record %llu: %s", (unsigned long long)seq, fr_ring_strerror(rc));
	}
	assert_int_equal(fr_ring_mark_eos(P), 0);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	for (int k = 0; k < READERS; k++) {
		int rc = rt_wait_child(kids[k]);
		if (rc != 0)
			fail_msg("reader %d ended with %d (20+: see the test)", k, rc);
	}
	rt_watchdog(0, NULL);
	print_message("attach/detach stress: %llu records, %llu read in all by %d readers coming and going\n",
		      (unsigned long long)records, (unsigned long long)st.records_read, READERS);
	fr_ring_close(&anchor);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_record_survives_laps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_attach_and_maximum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slowest_gates_and_leaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_consumers_reaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_consumer_reaped_without_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_consumers_counts_the_living, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_consumers_outlives_a_death, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_during_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_producer_dies_during_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_while_producer_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_while_hot_producer_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_detach_stress, setup, teardown),
	};

	rt_parse_args(argc, argv, "Fan-out: every-consumers get every record, latest ones the newest without slowing anyone, held records kept, dead consumers reaped, random attach/detach.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
