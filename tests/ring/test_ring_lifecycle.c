/* test_ring_lifecycle.c - stopping a side cleanly: fr_ring_interrupt from threads and signal handlers, detach, close's result, the end of stream as a contract. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "ring.h"
#include "ring_layout.h"
#include "ringtest.h"

#define CAP 4096u

static char name[256];
static fr_ring_t *P, *C;

static int setup(void **state)
{
	(void)state;
	struct fr_ring_create_opts o = { .capacity = CAP };
	rt_name(name, sizeof(name), "life");
	P = C = NULL;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fr_ring_close(&C);
	fr_ring_close(&P);
	rt_cleanup();
	return 0;
}

struct blocked_call {
	fr_ring_t *r;
	int consumer;
	int rc;
};

static void *block_forever(void *arg)
{
	struct blocked_call *b = arg;
	const void *d;
	size_t len;
	void *w;
	if (b->consumer) {
		b->rc = fr_ring_peek(b->r, &d, &len, FR_RING_WAIT_FOREVER);
	} else {
		b->rc = fr_ring_reserve(b->r, CAP / 2, 8, &w, FR_RING_WAIT_FOREVER);
		if (b->rc == 0)
			b->rc = fr_ring_reserve(b->r, CAP / 2, 8, &w, FR_RING_WAIT_FOREVER); /* -EALREADY: not it */
	}
	return NULL;
}

/* A thread that waits forever is stopped from another thread: the call
 * returns -ECANCELED at once, on either side, and the next call waits again. */
static void test_interrupt_from_another_thread(void **state)
{
	char big[CAP / 2 - 16] = { 0 };
	const void *d;
	size_t len;

	(void)state;
	for (int side = 0; side < 2; side++) {
		struct blocked_call b = { side ? C : P, side, 1 };
		if (!side) /* fill the ring so the producer waits for space */
			while (fr_ring_write(P, big, sizeof(big), FR_RING_NO_WAIT) == 0)
				;
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, block_forever, &b), 0);
		rt_sleep_ns(100 * 1000000ull); /* let it go to sleep (if it returns early, rc says so) */
		rt_watchdog(10, "a wait cut short by fr_ring_interrupt");
		assert_int_equal(fr_ring_interrupt(b.r), 0);
		pthread_join(t, NULL);
		rt_watchdog(0, NULL);
		assert_int_equal(b.rc, -ECANCELED);
		if (!side) {
			while (fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT) == 0)
				assert_int_equal(fr_ring_release(C), 0);
		}
	}
	/* consumed: the next wait is a normal one */
	assert_int_equal(fr_ring_peek(C, &d, &len, 50 * 1000000ll), -ETIMEDOUT);
	assert_int_equal(fr_ring_interrupt(NULL), -EINVAL);
}

/* An interrupt that comes before the wait is not lost: the next waiting
 * call returns -ECANCELED without sleeping. Non-waiting calls ignore it. */
static void test_interrupt_before_wait(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	assert_int_equal(fr_ring_interrupt(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EAGAIN);
	rt_watchdog(10, "an interrupt sent before the wait");
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -ECANCELED);
	rt_watchdog(0, NULL);
	assert_int_equal(fr_ring_peek(C, &d, &len, 20 * 1000000ll), -ETIMEDOUT);
	/* data that is there wins over an interrupt */
	assert_int_equal(fr_ring_write(P, "x", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_interrupt(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), 0);
	assert_int_equal(fr_ring_release(C), 0);
}

static fr_ring_t *alarm_ring;

static void on_alarm(int sig)
{
	(void)sig;
	fr_ring_interrupt(alarm_ring);
}

/* The Ctrl-C shape: a signal handler interrupts the main loop's wait, even
 * with SA_RESTART (where the futex wait would otherwise just go on). */
static void test_interrupt_from_signal_handler(void **state)
{
	struct sigaction sa, old;
	const void *d;
	size_t len;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarm_ring = C;
	struct itimerval it = { .it_value = { 0, 100000 } };
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	int rc;
	do /* the futex wait may report the signal as -EINTR first */
		rc = fr_ring_peek(C, &d, &len, 5000000000ll);
	while (rc == -EINTR);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, -ECANCELED);
}

/* Detach ends the side at once but keeps the memory: a pointer handed out
 * before stays readable, the slot goes to the next consumer, the producer's
 * name goes, and every later call says -ESHUTDOWN. */
static void test_detach_keeps_mapping(void **state)
{
	const void *d;
	size_t len;
	void *w;
	fr_ring_t *c2 = NULL;

	(void)state;
	/* a ring of one consumer slot: the detached one's slot is the next one's */
	fr_ring_close(&C);
	fr_ring_close(&P);
	struct fr_ring_create_opts one = { .capacity = CAP, .max_consumers = 1 };
	assert_int_equal(fr_ring_create(&P, name, &one), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_write(P, "hello", 5, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_write(P, "world", 5, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_open(&c2, name), -EBUSY);
	assert_int_equal(fr_ring_detach(C), 0);
	assert_int_equal(fr_ring_detach(C), 0); /* idempotent */
	assert_memory_equal(d, "hello", 5);  /* still mapped */
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -ESHUTDOWN);
	assert_int_equal(fr_ring_release(C), -ESHUTDOWN);
	assert_int_equal(fr_ring_skip_to_latest(C), -ESHUTDOWN);
	assert_int_equal(fr_ring_unpeek(C), -ESHUTDOWN);
	assert_false(fr_ring_peer_alive(C));
	assert_false(fr_ring_peer_alive(P));
	/* the slot is free: the next consumer takes it, and (an every-consumer)
	 * starts at the oldest record still in the ring */
	assert_int_equal(fr_ring_open(&c2, name), 0);
	assert_int_equal(fr_ring_peek(c2, &d, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(d, "hello", 5);
	assert_int_equal(fr_ring_release(c2), 0);
	assert_int_equal(fr_ring_peek(c2, &d, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(d, "world", 5);
	assert_int_equal(fr_ring_release(c2), 0);

	assert_int_equal(fr_ring_detach(P), 0);
	assert_false(rt_shm_exists(name));
	assert_int_equal(fr_ring_reserve(P, 8, 8, &w, FR_RING_NO_WAIT), -ESHUTDOWN);
	assert_int_equal(fr_ring_mark_eos(P), -ESHUTDOWN);
	assert_int_equal(fr_ring_wait_drained(P, FR_RING_NO_WAIT), -ESHUTDOWN);
	assert_int_equal(fr_ring_abort(P), -ESHUTDOWN);
	assert_int_equal(fr_ring_set_hot_lap(P, 0, -1), -ESHUTDOWN);
	assert_int_equal(fr_ring_wait_consumers(P, 1, FR_RING_NO_WAIT), -ESHUTDOWN);
	assert_int_equal(fr_ring_set_meta(P, "m", 1), -ESHUTDOWN);
	assert_int_equal(fr_ring_peek(c2, &d, &len, FR_RING_NO_WAIT), -ENODATA);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st); /* getters still work */
	assert_true(st.eos);
	assert_int_equal(st.records_written, 2);
	assert_int_equal(st.records_read, 3); /* "hello" by the first consumer, both by the second */
	assert_int_equal(fr_ring_close(&C), 0);
	assert_int_equal(fr_ring_close(&c2), 0);
	assert_int_equal(fr_ring_close(&P), 0);
	assert_int_equal(fr_ring_close(&P), 0); /* NULL: no-op */
}

/* Issue 9.15: a commit after fr_ring_mark_eos() used to be accepted and reach
 * the consumer after it had been told -ENODATA. Now the commit fails with
 * -EPIPE, and end of stream, once reported, stays reported even if a
 * (hostile) producer publishes more. */
static void test_nothing_after_end_of_stream(void **state)
{
	void *w;
	const void *d;
	size_t len;

	(void)state;
	assert_int_equal(fr_ring_write(P, "a", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_reserve(P, 8, 8, &w, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_mark_eos(P), 0);
	assert_int_equal(fr_ring_commit(P, 8), -EPIPE);
	assert_int_equal(fr_ring_commit(P, 8), -EINVAL); /* the reservation is gone */
	assert_int_equal(fr_ring_abort(P), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 8, 8, &w, FR_RING_NO_WAIT), -EPIPE);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -ENODATA);
	/* a producer that publishes a record after its end of stream anyway
	 * (written into the segment by hand, as a hostile one would) */
	const void *base;
	size_t size;
	fr_ring_mapping(P, &base, &size);
	struct ring_shm_header *h = (struct ring_shm_header *)base;
	uint64_t tail = atomic_load(&h->tail);
	struct ring_record_header *rh = (struct ring_record_header *)((unsigned char *)base + RING_HEADER_SIZE + (tail & (CAP - 1)));
	rh->len = 1;
	rh->type = RING_REC_DATA;
	atomic_store(&h->tail, tail + 16);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -ENODATA);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -ENODATA);
	assert_int_equal(fr_ring_skip_to_latest(C), 0);
	struct fr_ring_stats st;
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.records_read, 1);
}

/* A producer that fails ends the stream with a reason: every consumer reads
 * what came before, then gets -EREMOTEIO (never the clean -ENODATA) and the
 * message; the first mark stands, and a hostile reason stays bounded. */
static void test_error_end_of_stream(void **state)
{
	const void *d;
	size_t len;
	char msg[FR_RING_EOS_MESSAGE_MAX];
	struct fr_ring_stats st;

	(void)state;
	fr_ring_t *latest;
	struct fr_ring_attach_opts live = {.mode = FR_RING_CONSUMER_LATEST};
	assert_int_equal(fr_ring_attach(&latest, name, &live), 0);
	assert_int_equal(fr_ring_write(P, "a", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_end_reason(C, msg, sizeof(msg)), 0);
	assert_int_equal(fr_ring_mark_eos_error(P, -EIO, "decoding failed: Invalid data found"), 0);
	assert_int_equal(fr_ring_mark_eos_error(P, -ENOENT, "again"), -EALREADY);
	assert_int_equal(fr_ring_mark_eos(P), 0); /* a clean mark after it changes nothing */
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EREMOTEIO);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EREMOTEIO);
	assert_int_equal(fr_ring_peek(latest, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_release(latest), 0);
	assert_int_equal(fr_ring_peek(latest, &d, &len, FR_RING_WAIT_FOREVER), -EREMOTEIO);
	assert_int_equal(fr_ring_end_reason(C, msg, sizeof(msg)), -EIO);
	assert_string_equal(msg, "decoding failed: Invalid data found");
	assert_int_equal(fr_ring_end_reason(latest, msg, 9), -EIO);
	assert_string_equal(msg, "decoding");
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_true(st.eos);
	assert_int_equal(st.eos_error, -EIO);
	assert_int_equal(fr_ring_close(&latest), 0);

	/* a producer that lies: a positive "errno" and a message without its NUL */
	const void *base;
	size_t size;
	fr_ring_mapping(P, &base, &size);
	struct ring_shm_header *h = (struct ring_shm_header *)base;
	h->eos_error = 5;
	memset(h->eos_message, 'x', sizeof(h->eos_message));
	char big[2 * FR_RING_EOS_MESSAGE_MAX];
	assert_int_equal(fr_ring_end_reason(C, big, sizeof(big)), -EIO);
	assert_int_equal(strlen(big), FR_RING_EOS_MESSAGE_MAX);
	assert_int_equal(fr_ring_end_reason(C, NULL, 0), -EIO);
	/* a clean end says so */
	atomic_store(&h->eos, RING_EOS_CLEAN);
	assert_int_equal(fr_ring_end_reason(C, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

/* A producer replaces its ring by a larger one under the same name: every
 * consumer reads all of the old ring, then -ESTALE, and finds the new ring
 * by the name; frame numbers go on; a refused replace leaves the old ring
 * working and named. */
static void test_replace_under_the_same_name(void **state)
{
	const void *d;
	size_t len;
	struct fr_frame_header *w, h;
	const uint8_t *rec;
	fr_ring_t *latest, *again;
	struct fr_ring_attach_opts live = {.mode = FR_RING_CONSUMER_LATEST};
	struct fr_ring_create_opts bigger_opts = {.capacity = 4 * CAP}, bad = {.capacity = CAP + 1};
	struct fr_ring_stats st;

	(void)state;
	assert_int_equal(fr_ring_attach(&latest, name, &live), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &w, FR_RING_NO_WAIT), 0);
		assert_int_equal(fr_frame_commit(P, w), 0);
	}
	/* refused: the old ring goes on as it was */
	fr_ring_t *bigger;
	assert_int_equal(fr_ring_replace(P, &bigger, &bad), -EINVAL);
	assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &w, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_replace(P, &bigger, &bigger_opts), -EALREADY);
	assert_null(bigger);
	assert_int_equal(fr_ring_abort(P), 0);
	assert_int_equal(fr_ring_replace(C, &bigger, &bigger_opts), -EPERM);

	assert_int_equal(fr_ring_replace(P, &bigger, &bigger_opts), 0);
	assert_int_equal(fr_ring_reserve(P, 8, 8, (void **)&w, FR_RING_NO_WAIT), -ESHUTDOWN); /* the old one is detached */
	assert_int_equal(fr_ring_close(&P), 0);
	P = bigger;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.capacity, 4 * CAP);
	/* the old ring's readers: everything it had, then -ESTALE, and it stays */
	for (uint64_t seq = 0; seq < 2; seq++) {
		assert_int_equal(fr_frame_peek(C, &h, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
		assert_int_equal(h.seq, seq);
		assert_int_equal(fr_ring_release(C), 0);
	}
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -ESTALE);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -ESTALE);
	assert_int_equal(fr_frame_peek(latest, &h, &rec, 1, NULL, FR_RING_NO_WAIT), 0);
	assert_int_equal(h.seq, 1);
	assert_int_equal(fr_ring_release(latest), 0);
	assert_int_equal(fr_ring_peek(latest, &d, &len, FR_RING_WAIT_FOREVER), -ESTALE);
	assert_int_equal(fr_ring_end_reason(C, NULL, 0), 0); /* not a failure */
	/* the name is the new ring's: a reader attaching now gets it, and frame numbers go on */
	assert_int_equal(fr_ring_attach(&again, name, &live), 0);
	assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 64, 64, &w, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_frame_commit(P, w), 0);
	assert_int_equal(fr_frame_peek(again, &h, &rec, 1, NULL, FR_RING_NO_WAIT), 0);
	assert_int_equal(h.seq, 2);
	assert_int_equal(h.width, 64);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.capacity, 4 * CAP);
	assert_int_equal(fr_ring_close(&again), 0);
	assert_int_equal(fr_ring_close(&latest), 0);
	/* the old ring's last reader leaving does not take the new ring's name */
	assert_int_equal(fr_ring_close(&C), 0);
	assert_true(rt_shm_exists(name));
}

/* fr_ring_abort and fr_ring_close report what happened. */
static void test_abort_and_close_results(void **state)
{
	void *w;

	(void)state;
	/* made here, not in setup: cmocka puts its own SIGBUS handler in before
	 * each test, and the ring's guard goes in when a ring is mapped */
	fr_ring_close(&C);
	fr_ring_close(&P);
	struct fr_ring_create_opts o = { .capacity = CAP };
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_abort(P), -EINVAL);
	assert_int_equal(fr_ring_abort(C), -EPERM);
	assert_int_equal(fr_ring_abort(NULL), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 8, 8, &w, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_abort(P), 0);
	assert_int_equal(fr_ring_detach(NULL), -EINVAL);
	assert_int_equal(fr_ring_close(NULL), 0);
	/* a shrunk segment: the close still detaches and removes the name, and says -EFAULT */
	char path[512];
	rt_shm_path(path, sizeof(path), name);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(fr_ring_close(&C), -EFAULT);
	assert_int_equal(fr_ring_close(&P), -EFAULT);
	assert_null(P);
	assert_false(rt_shm_exists(name));
}

static void *commit_later(void *arg)
{
	(void)arg;
	rt_sleep_ns(200 * 1000000ull);
	fr_ring_write(P, "late", 4, FR_RING_NO_WAIT);
	return NULL;
}

/* Issue 9.15: every negative timeout waits without limit (only -1 was
 * documented). */
static void test_negative_timeouts_wait(void **state)
{
	const int64_t timeouts[] = { -1, -2, -1000000000ll, INT64_MIN };
	const void *d;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, commit_later, NULL), 0);
		rt_watchdog(10, "a wait with a negative timeout");
		assert_int_equal(fr_ring_peek(C, &d, &len, timeouts[i]), 0);
		rt_watchdog(0, NULL);
		assert_memory_equal(d, "late", 4);
		assert_int_equal(fr_ring_release(C), 0);
		pthread_join(t, NULL);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_interrupt_from_another_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_before_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_from_signal_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_keeps_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_after_end_of_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_end_of_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_under_the_same_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_close_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_timeouts_wait, setup, teardown),
	};

	rt_parse_args(argc, argv, "Stopping a side: fr_ring_interrupt from threads and signal handlers, fr_ring_detach, close results, nothing after end of stream.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
