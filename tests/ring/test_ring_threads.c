/* test_ring_threads.c - the ring stress with producer and consumer as two pthreads of one process, so TSAN sees the ordering. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"
#include "ringtest.h"
#include "stress_common.h"

static uint64_t n_records;
static fr_ring_t *P, *C;

struct job {
	fr_ring_t *r;
	const struct stress_cfg *cfg;
	struct stress_shared *sh;
};

static void *producer_main(void *arg)
{
	struct job *j = arg;

	stress_produce(j->r, j->cfg, j->sh);
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct job *j = arg;

	stress_consume(j->r, j->cfg, j->sh);
	return NULL;
}

static int teardown(void **state)
{
	(void)state;
	rt_watchdog(0, "");
	fr_ring_close(&C);
	fr_ring_close(&P);
	rt_cleanup();
	return 0;
}

static void run_threads(int drop)
{
	/* Finite timeouts: a side that fails sets sh.abort and the other one sees it. */
	struct stress_cfg cfg = { .records = n_records, .drop = drop, .timeout_ns = 50 * 1000000ll,
				  .seed = 0xBEEF + (uint64_t)drop };
	struct fr_ring_create_opts o = { .capacity = 4u << 20, .on_full = drop ? FR_RING_FULL_DROP : FR_RING_FULL_BLOCK };
	static struct stress_shared sh;
	struct job jp = { NULL, &cfg, &sh }, jc = { NULL, &cfg, &sh };
	pthread_t tp, tc;
	char name[256], msg[512];
	uint64_t t0 = rt_now_ns();

	memset(&sh, 0, sizeof(sh));
	rt_name(name, sizeof(name), drop ? "thr-drop" : "thr-block");
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	jp.r = P;
	jc.r = C;
	rt_watchdog(570, drop ? "thread stress, drop" : "thread stress, block");
	assert_int_equal(pthread_create(&tc, NULL, consumer_main, &jc), 0);
	assert_int_equal(pthread_create(&tp, NULL, producer_main, &jp), 0);
	assert_int_equal(pthread_join(tp, NULL), 0);
	assert_int_equal(pthread_join(tc, NULL), 0);
	rt_watchdog(0, "");
	stress_report(drop ? "thread stress, FR_RING_FULL_DROP" : "thread stress, FR_RING_FULL_BLOCK", &cfg, &sh,
		      (double)(rt_now_ns() - t0) / 1e9);
	if (stress_check(&cfg, &sh, msg, sizeof(msg)) < 0)
		fail_msg("%s", msg);
}

static void test_threads_block(void **state)
{
	(void)state;
	run_threads(0);
}

static void test_threads_drop(void **state)
{
	(void)state;
	run_threads(1);
}

/* fr_ring_set_meta / fr_ring_get_meta under concurrency: the sequence lock never lets a torn value through. */
struct meta_job {
	fr_ring_t *r;
	uint64_t rounds;      /* at least this many writes ... */
	_Atomic int enough;   /* ... and until the reader has read enough to mean something */
	_Atomic int done;
	uint64_t reads, torn, errors;
};

static void *meta_writer(void *arg)
{
	struct meta_job *j = arg;
	unsigned char m[FR_RING_META_SIZE];

	/* On a busy machine the reader may not run at all during a fixed number
	 * of writes: keep writing until it has overlapped with us long enough. */
	uint64_t i;
	for (i = 0; i < j->rounds || !atomic_load(&j->enough); i++) {
		memset(m, (int)(i & 0xff), sizeof(m));
		if (fr_ring_set_meta(j->r, m, sizeof(m)) != 0)
			j->errors++;
	}
	j->rounds = i;
	atomic_store(&j->done, 1);
	return NULL;
}

static void test_meta_seqlock(void **state)
{
	struct meta_job j = { .rounds = n_records / 5 + 1000 };
	unsigned char m[FR_RING_META_SIZE];
	char name[256];
	pthread_t t;
	uint64_t busy = 0;

	(void)state;
	rt_name(name, sizeof(name), "meta");
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	j.r = P;
	rt_watchdog(120, "meta seqlock");
	assert_int_equal(pthread_create(&t, NULL, meta_writer, &j), 0);
	while (!atomic_load(&j.done)) {
		int rc = fr_ring_get_meta(C, m, sizeof(m));
		if (rc == -EAGAIN) { /* the writer kept it busy: allowed, counted */
			busy++;
			continue;
		}
		if (rc != (int)FR_RING_META_SIZE && rc != 0) {
			j.errors++;
			continue;
		}
		if (++j.reads == 10000)
			atomic_store(&j.enough, 1);
		for (size_t k = 1; k < sizeof(m); k++)
			if (m[k] != m[0]) {
				j.torn++;
				break;
			}
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	rt_watchdog(0, "");
	print_message("meta: %llu writes, %llu reads, %llu torn, %llu busy, %llu errors\n",
		      (unsigned long long)j.rounds, (unsigned long long)j.reads, (unsigned long long)j.torn,
		      (unsigned long long)busy, (unsigned long long)j.errors);
	assert_true(j.reads > 0);
	assert_int_equal(j.torn, 0);
	assert_int_equal(j.errors, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_threads_block, teardown),
		cmocka_unit_test_teardown(test_threads_drop, teardown),
		cmocka_unit_test_teardown(test_meta_seqlock, teardown),
	};

	rt_parse_args(argc, argv, "Ring stress with producer and consumer as two threads (for TSAN), and the meta sequence lock.");

	/* Threads share one process: half the fork variant's count keeps the run time alike. */
	n_records = rt_env_u64("RING_STRESS_RECORDS", 1000000) / 2;
	if (n_records < 1000)
		n_records = 1000;
	fprintf(stderr, "records per run: %llu\n", (unsigned long long)n_records);
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	rt_cleanup();
	return failed ? 1 : 0;
}
