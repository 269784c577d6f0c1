/* test_ring_unit.c - cmocka unit tests of the ring API (ring.h): every call, every documented error, in one process. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ringtest.h"

/* The rings a test opened; the teardown closes them even when an assert failed. */
static fr_ring_t *P, *C, *P2, *C2;
static char name[256];

static int setup(void **state)
{
	(void)state;
	P = C = P2 = C2 = NULL;
	rt_name(name, sizeof(name), "unit");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fr_ring_close(&C);
	fr_ring_close(&C2);
	fr_ring_close(&P);
	fr_ring_close(&P2);
	rt_cleanup();
	return 0;
}

static void make_pair(uint64_t capacity, enum fr_ring_full_policy policy)
{
	struct fr_ring_create_opts o = { .capacity = capacity, .mode = 0, .on_full = policy };

	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_non_null(P);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_non_null(C);
}

/* Whether [p, p+len) lies inside r's data area: the last `capacity` bytes of
 * the mapping (ring_layout.h: header first, data area after it). */
static int in_mapping(const fr_ring_t *r, const void *p, size_t len)
{
	const void *base;
	size_t size;
	struct fr_ring_stats st;
	uintptr_t b, q = (uintptr_t)p;

	fr_ring_mapping(r, &base, &size);
	fr_ring_get_stats(r, &st);
	if (!base || size < st.capacity)
		return 0;
	b = (uintptr_t)base + (size - st.capacity);
	return q >= b && q <= b + st.capacity && len <= b + st.capacity - q;
}

static size_t map_offset(const fr_ring_t *r, const void *p)
{
	const void *base;
	size_t size;

	fr_ring_mapping(r, &base, &size);
	return (size_t)((const char *)p - (const char *)base);
}

static void test_create_defaults(void **state)
{
	struct fr_ring_stats st;
	const void *base;
	size_t size;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	assert_string_equal(fr_ring_name(P), name);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.capacity, FR_RING_DEFAULT_CAPACITY);
	assert_int_equal(fr_ring_max_record(P), FR_RING_DEFAULT_CAPACITY / 2);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.producer_pid, getpid());
	assert_true(st.producer_alive);
	assert_int_equal(st.consumer_pid, 0);
	assert_false(st.consumer_alive);
	assert_false(st.eos);
	assert_int_equal(st.on_full, FR_RING_FULL_BLOCK);
	assert_false(fr_ring_peer_alive(P));
	fr_ring_mapping(P, &base, &size);
	assert_non_null(base);
	assert_true(size >= FR_RING_DEFAULT_CAPACITY);

	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_string_equal(fr_ring_name(C), name);
	assert_true(fr_ring_peer_alive(P));
	assert_true(fr_ring_peer_alive(C));
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.consumer_pid, getpid());
	assert_true(st.consumer_alive);

	/* close on NULL is a no-op, and close sets the handle to NULL */
	fr_ring_t *none = NULL;
	fr_ring_close(&none);
	fr_ring_close(NULL);
	fr_ring_close(&C);
	assert_null(C);
	fr_ring_close(&P);
	assert_null(P);
	assert_false(rt_shm_exists(name));
}

static void test_name_rules(void **state)
{
	char longname[FR_RING_NAME_MAX + 16];
	size_t plen = strlen(name);
	const char *bad[] = { "", "a/b", "/abc", "abc/", "a b", "a*b", "a\\b", "tab\tx", "caf\xc3\xa9", "a:b", "?", ".", "..", NULL };

	(void)state;
	for (int i = 0; bad[i]; i++) {
		int rc = fr_ring_create(&P, bad[i], NULL);
		if (rc != -EINVAL)
			print_error("fr_ring_create(\"%s\") gave %d, expected -EINVAL\n", bad[i], rc);
		assert_int_equal(rc, -EINVAL);
		assert_null(P);
		assert_int_equal(fr_ring_open(&C, bad[i]), -EINVAL);
		assert_null(C);
	}
	assert_int_equal(fr_ring_create(&P, NULL, NULL), -EINVAL);
	assert_int_equal(fr_ring_open(&C, NULL), -EINVAL);
	assert_int_equal(fr_ring_create(NULL, name, NULL), -EINVAL);

	/* exactly FR_RING_NAME_MAX bytes is fine, one more is -ENAMETOOLONG */
	memcpy(longname, name, plen);
	memset(longname + plen, 'x', FR_RING_NAME_MAX - plen);
	longname[FR_RING_NAME_MAX] = '\0';
	assert_int_equal(fr_ring_create(&P, longname, NULL), 0);
	assert_true(rt_shm_exists(longname));
	assert_int_equal(fr_ring_open(&C, longname), 0);
	fr_ring_close(&C);
	fr_ring_close(&P);
	longname[FR_RING_NAME_MAX] = 'y';
	longname[FR_RING_NAME_MAX + 1] = '\0';
	assert_int_equal(fr_ring_create(&P, longname, NULL), -ENAMETOOLONG);
	assert_int_equal(fr_ring_open(&C, longname), -ENAMETOOLONG);

	/* every allowed character class */
	char okname[sizeof(name) + 16];
	snprintf(okname, sizeof(okname), "%s.Az09_-x", name);
	assert_int_equal(fr_ring_create(&P, okname, NULL), 0);
	fr_ring_close(&P);
}

/* NULL out-pointers are -EINVAL, also when the ring exists (no crash). */
static void test_null_args(void **state)
{
	struct fr_ring_stats st;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	assert_int_equal(fr_ring_create(NULL, name, NULL), -EINVAL);
	assert_int_equal(fr_ring_open(NULL, name), -EINVAL); /* the ring exists: must not store through NULL */
	fr_ring_close(&P);
	assert_int_equal(fr_ring_open(NULL, name), -EINVAL);
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	assert_int_equal(fr_ring_open_wait(NULL, name, 0), -EINVAL);
	assert_int_equal(fr_ring_inspect(name, NULL), -EINVAL);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.consumer_pid, 0); /* the refused opens attached nothing */
	/* the getters take NULL like every other call (no record fits no ring) */
	assert_int_equal(fr_ring_max_record(NULL), 0);
	assert_null(fr_ring_name(NULL));
	assert_false(fr_ring_peer_alive(NULL));
}

static void test_capacity_rules(void **state)
{
	const uint64_t bad[] = { 1, 1000, 2048, FR_RING_MIN_CAPACITY / 2, 3000, 6000, FR_RING_MIN_CAPACITY + 1,
				 (64u << 20) + 4096, FR_RING_MAX_CAPACITY * 2, UINT64_MAX };
	struct fr_ring_create_opts o = { 0 };
	struct fr_ring_stats st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.capacity = bad[i];
		assert_int_equal(fr_ring_create(&P, name, &o), -EINVAL);
		assert_null(P);
		assert_false(rt_shm_exists(name));
	}
	o.capacity = 4096;
	o.on_full = (enum fr_ring_full_policy)7;
	assert_int_equal(fr_ring_create(&P, name, &o), -EINVAL);
	o.on_full = FR_RING_FULL_DROP;
	o.capacity = FR_RING_MIN_CAPACITY;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.capacity, FR_RING_MIN_CAPACITY);
	assert_int_equal(st.on_full, FR_RING_FULL_DROP);
	assert_int_equal(fr_ring_max_record(P), FR_RING_MIN_CAPACITY / 2);
}

static void test_empty(void **state)
{
	const void *d;
	size_t len;
	char buf[16];
	struct fr_ring_stats st;

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_peek(C, &d, &len, 20 * 1000000), -ETIMEDOUT);
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_peek_latest(C, &d, &len, NULL, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_skip_to_latest(C), 0);
	assert_int_equal(fr_ring_release(C), -EINVAL);
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.records_read, 0);
}

static void test_full(void **state)
{
	static char rec[8192];
	void *d;
	const void *cd;
	size_t len;
	int n = 0, rc;
	struct fr_ring_stats st;

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	while ((rc = fr_ring_write(P, rec, 1000, FR_RING_NO_WAIT)) == 0)
		n++;
	assert_int_equal(rc, -EAGAIN);
	assert_in_range(n, 2, 4);
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, 20 * 1000000), -ETIMEDOUT);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_written, (uint64_t)n);
	assert_int_equal(st.records_dropped, 0); /* blocking policy never counts a drop */
	assert_true(st.used >= (uint64_t)n * 1000 && st.used <= 4096);
	/* one release makes room again */
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, 1000);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_write(P, rec, 1000, FR_RING_NO_WAIT), 0);
	/* the largest record fits an empty ring exactly once it is drained */
	while (fr_ring_read(C, rec, sizeof(rec), FR_RING_NO_WAIT) > 0)
		;
	assert_int_equal(fr_ring_reserve(P, fr_ring_max_record(P), 8, &d, FR_RING_NO_WAIT), 0);
	fr_ring_abort(P);
	assert_int_equal(fr_ring_reserve(P, fr_ring_max_record(P) + 1, 8, &d, FR_RING_NO_WAIT), -EMSGSIZE);
	assert_int_equal(fr_ring_write(P, rec, fr_ring_max_record(P) + 1, FR_RING_NO_WAIT), -EMSGSIZE);
}

/* Many records of changing sizes through a small ring: each payload is one
 * span inside both mappings, at the same offset on both sides, never across the end. */
static void test_wrap_never_splits(void **state)
{
	uint64_t seed = 42, total = 0;
	const void *pbase, *cbase;
	size_t psize, csize;
	int wraps_seen = 0;
	size_t last_off = 0;

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	fr_ring_mapping(P, &pbase, &psize);
	fr_ring_mapping(C, &cbase, &csize);
	assert_int_equal(psize, csize);
	for (int i = 0; i < 5000; i++) {
		size_t len = 1 + rt_rand(&seed) % fr_ring_max_record(P);
		size_t align = (size_t)8 << (rt_rand(&seed) % 5); /* 8..128 */
		void *d;
		const void *cd;
		size_t clen;

		assert_int_equal(fr_ring_reserve(P, len, align, &d, FR_RING_NO_WAIT), 0);
		assert_true(in_mapping(P, d, len));
		assert_int_equal((uintptr_t)d % align, 0);
		for (size_t k = 0; k < len; k++)
			((unsigned char *)d)[k] = (unsigned char)(i + k);
		assert_int_equal(fr_ring_commit(P, len), 0);
		assert_int_equal(fr_ring_peek(C, &cd, &clen, FR_RING_NO_WAIT), 0);
		assert_int_equal(clen, len);
		assert_true(in_mapping(C, cd, clen));
		/* zero copy: the consumer reads the very bytes the producer wrote */
		assert_int_equal(map_offset(C, cd), map_offset(P, d));
		for (size_t k = 0; k < len; k++)
			if (((const unsigned char *)cd)[k] != (unsigned char)(i + k))
				fail_msg("record %d byte %zu differs", i, k);
		if (map_offset(C, cd) < last_off)
			wraps_seen++;
		last_off = map_offset(C, cd);
		assert_int_equal(fr_ring_release(C), 0);
		total += len;
	}
	/* two records at a time in flight too, so padding meets a non-empty ring */
	for (int i = 0; i < 2000; i++) {
		size_t len = 1 + rt_rand(&seed) % (fr_ring_max_record(P) / 2);
		void *d;
		const void *cd;
		size_t clen;

		assert_int_equal(fr_ring_reserve(P, len, 64, &d, FR_RING_NO_WAIT), 0);
		assert_true(in_mapping(P, d, len));
		memset(d, 0xA5, len);
		assert_int_equal(fr_ring_commit(P, len), 0);
		if (i % 2) {
			for (int k = 0; k < 2; k++) {
				assert_int_equal(fr_ring_peek(C, &cd, &clen, FR_RING_NO_WAIT), 0);
				assert_true(in_mapping(C, cd, clen));
				assert_int_equal((uintptr_t)cd % 64, 0);
				assert_int_equal(fr_ring_release(C), 0);
			}
		}
	}
	print_message("wrap: %" PRIu64 " bytes through a 4096-byte ring, %d wraps seen\n", total, wraps_seen);
	assert_true(wraps_seen > 100);
	assert_true(total > 100 * 4096);
}

static void test_alignment(void **state)
{
	void *d;
	const size_t aligns[] = { 0, 8, 16, 64, 256, 4096 };

	(void)state;
	make_pair(1u << 16, FR_RING_FULL_BLOCK);
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
			size_t a = aligns[i] ? aligns[i] : 8;
			size_t len = 1 + (size_t)round * 37;
			assert_int_equal(fr_ring_reserve(P, len, aligns[i], &d, FR_RING_NO_WAIT), 0);
			assert_int_equal((uintptr_t)d % a, 0);
			assert_true(in_mapping(P, d, len));
			assert_int_equal(fr_ring_commit(P, len), 0);
			const void *cd;
			size_t cl;
			assert_int_equal(fr_ring_peek(C, &cd, &cl, FR_RING_NO_WAIT), 0);
			assert_int_equal((uintptr_t)cd % a, 0);
			assert_int_equal(fr_ring_release(C), 0);
		}
	}
	assert_int_equal(fr_ring_reserve(P, 10, 3, &d, FR_RING_NO_WAIT), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 10, 48, &d, FR_RING_NO_WAIT), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 10, FR_RING_MAX_ALIGN * 2, &d, FR_RING_NO_WAIT), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 10, 8, NULL, FR_RING_NO_WAIT), -EINVAL);
	/* ring.h: ALIGN is "a power of two up to FR_RING_MAX_ALIGN", so 1, 2 and 4 are valid too */
	for (size_t a = 1; a < 8; a *= 2) {
		int rc = fr_ring_reserve(P, 10, a, &d, FR_RING_NO_WAIT);
		if (rc != 0)
			print_error("fr_ring_reserve(align=%zu) gave %d (%s); ring.h documents any power of two\n", a, rc,
				    fr_ring_strerror(rc));
		assert_int_equal(rc, 0);
		assert_int_equal((uintptr_t)d % a, 0);
		fr_ring_abort(P);
	}
}

/* An alignment the data area can never satisfy (a 4096-aligned payload after
 * its 8-byte header in a 4096-byte ring) is -EMSGSIZE at once, not a wait, and
 * leaves the ring untouched. */
static void test_align_impossible(void **state)
{
	struct fr_ring_stats st;
	void *d;
	int rc;

	(void)state;
	make_pair(FR_RING_MIN_CAPACITY, FR_RING_FULL_BLOCK);
	rt_watchdog(20, "fr_ring_reserve with an impossible alignment");
	rc = fr_ring_reserve(P, 1, FR_RING_MAX_ALIGN, &d, FR_RING_NO_WAIT);
	if (rc != -EMSGSIZE)
		print_error("reserve(1 byte, align %u) in a %u-byte ring: %d (%s)\n", FR_RING_MAX_ALIGN, FR_RING_MIN_CAPACITY,
			    rc, fr_ring_strerror(rc));
	if (rc == 0)
		fr_ring_abort(P);
	fr_ring_get_stats(P, &st);
	int rc2 = fr_ring_reserve(P, 1, FR_RING_MAX_ALIGN, &d, 100 * 1000000);
	if (rc2 == 0)
		fr_ring_abort(P);
	rt_watchdog(0, "");
	print_message("impossible alignment: NO_WAIT %d (%s), 100 ms timeout %d (%s), %llu bytes used after\n", rc,
		      fr_ring_strerror(rc), rc2, fr_ring_strerror(rc2), (unsigned long long)st.used);
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(rc2, -EMSGSIZE);
	assert_int_equal(st.used, 0);
	/* the ring still works */
	assert_int_equal(fr_ring_write(P, "ok", 2, FR_RING_NO_WAIT), 0);
	char buf[4];
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), 2);
}

static void test_reserve_commit_abort(void **state)
{
	void *d, *d2;
	const void *cd;
	size_t len;
	struct fr_ring_stats st;

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	/* abort: nothing becomes visible, nothing is counted */
	assert_int_equal(fr_ring_reserve(P, 100, 8, &d, FR_RING_NO_WAIT), 0);
	memset(d, 1, 100);
	assert_int_equal(fr_ring_reserve(P, 100, 8, &d2, FR_RING_NO_WAIT), -EALREADY);
	fr_ring_abort(P);
	fr_ring_abort(P); /* no reservation: a no-op */
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), -EAGAIN);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_written, 0);
	assert_int_equal(st.used, 0);
	/* commit without a reservation, or longer than reserved */
	assert_int_equal(fr_ring_commit(P, 10), -EINVAL);
	assert_int_equal(fr_ring_reserve(P, 100, 8, &d, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_commit(P, 101), -EINVAL);
	/* commit shorter: the consumer sees the final length */
	memcpy(d, "short", 5);
	assert_int_equal(fr_ring_commit(P, 5), 0);
	assert_int_equal(fr_ring_commit(P, 5), -EINVAL);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(cd, "short", 5);
	assert_int_equal(fr_ring_release(C), 0);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_written, 1);
	assert_int_equal(st.bytes_written, 5);
	assert_int_equal(st.records_read, 1);
	assert_int_equal(st.bytes_read, 5);
	assert_int_equal(st.used, 0);
	/* abort after a wrap-sized reservation leaves the ring usable */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(fr_ring_reserve(P, 1500, 64, &d, FR_RING_NO_WAIT), 0);
		if (i % 3 == 0) {
			fr_ring_abort(P);
			continue;
		}
		memset(d, i, 1500);
		assert_int_equal(fr_ring_commit(P, 1500), 0);
		assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
		assert_int_equal(len, 1500);
		assert_int_equal(((const unsigned char *)cd)[1499], (unsigned char)i);
		assert_int_equal(fr_ring_release(C), 0);
		assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), -EAGAIN);
	}
}

static void test_peek_release(void **state)
{
	const void *cd, *cd2;
	size_t len;
	char buf[8];

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_write(P, "one", 3, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_write(P, "two", 3, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "one", 3);
	assert_int_equal(fr_ring_peek(C, &cd2, &len, FR_RING_NO_WAIT), -EALREADY);
	assert_int_equal(fr_ring_peek_latest(C, &cd2, &len, NULL, FR_RING_NO_WAIT), -EALREADY);
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), -EALREADY);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_release(C), -EINVAL);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "two", 3);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, NULL, &len, FR_RING_NO_WAIT), -EINVAL);
	assert_int_equal(fr_ring_peek(C, &cd, NULL, FR_RING_NO_WAIT), -EINVAL);
}

static void test_unpeek(void **state)
{
	const void *cd;
	size_t len;
	uint64_t skipped = 99;
	struct fr_ring_stats st;
	struct fr_ring_attach_opts live = { .mode = FR_RING_CONSUMER_LATEST, .wait_ns = 0 };

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_attach(&C2, name, &live), 0);
	assert_int_equal(fr_ring_unpeek(C), -EINVAL);
	assert_int_equal(fr_ring_unpeek(P), -EPERM);
	assert_int_equal(fr_ring_write(P, "one", 3, FR_RING_NO_WAIT), 0);
	/* every: the same record again, not counted as read */
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_unpeek(C), 0);
	assert_int_equal(fr_ring_unpeek(C), -EINVAL);
	assert_int_equal(fr_ring_release(C), -EINVAL);
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.records_read, 0);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "one", 3);
	assert_int_equal(fr_ring_release(C), 0);
	/* latest: the newest again while it is the newest ... */
	assert_int_equal(fr_ring_peek(C2, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "one", 3);
	assert_int_equal(fr_ring_unpeek(C2), 0);
	assert_int_equal(fr_ring_peek(C2, &cd, &len, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "one", 3);
	assert_int_equal(fr_ring_unpeek(C2), 0);
	/* ... and the newer one once it came, counting the given-back one as skipped */
	assert_int_equal(fr_ring_write(P, "two", 3, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek_latest(C2, &cd, &len, &skipped, FR_RING_NO_WAIT), 0);
	assert_memory_equal(cd, "two", 3);
	assert_int_equal(skipped, 1);
	assert_int_equal(fr_ring_release(C2), 0);
	assert_int_equal(fr_ring_peek(C2, &cd, &len, FR_RING_NO_WAIT), -EAGAIN);
}

/* Where payload P lies in R's data area (see in_mapping). */
static uint64_t data_offset(const fr_ring_t *r, const void *p)
{
	const void *base;
	size_t size;
	struct fr_ring_stats st;

	fr_ring_mapping(r, &base, &size);
	fr_ring_get_stats(r, &st);
	return (uint64_t)((const char *)p - (const char *)base) - (size - st.capacity);
}

/* Write record SEQ of LEN bytes (its bytes all SEQ) and return where it went. */
static uint64_t put_seq(uint8_t seq, size_t len, int64_t timeout_ns)
{
	void *d;

	assert_int_equal(fr_ring_reserve(P, len, 64, &d, timeout_ns), 0);
	memset(d, seq, len);
	assert_int_equal(fr_ring_commit(P, len), 0);
	return data_offset(P, d);
}

/* Read the next record: it must be SEQ, whole. */
static void take_seq(fr_ring_t *c, uint8_t seq, size_t len)
{
	const void *cd;
	size_t got;

	assert_int_equal(fr_ring_peek(c, &cd, &got, FR_RING_NO_WAIT), 0);
	assert_int_equal(got, len);
	for (size_t i = 0; i < len; i += 4093)
		assert_int_equal(((const uint8_t *)cd)[i], seq);
	assert_int_equal(((const uint8_t *)cd)[len - 1], seq);
	assert_int_equal(fr_ring_release(c), 0);
}

/* With a consumer that keeps up, the default hot lap keeps frame-sized
 * records in the first two records' worth of a large ring (they are written
 * where the consumer just read), where the whole ring in turn would go
 * through all of it; the consumer sees every record in order either way. */
static void test_hot_lap_keeps_records_at_the_front(void **state)
{
	const size_t frame = 3u << 20; /* 3 MiB: the automatic lap is two of them */
	const uint64_t cap = 32u << 20;
	uint64_t highest = 0;

	(void)state;
	make_pair(cap, FR_RING_FULL_BLOCK);
	for (int i = 0; i < 40; i++) {
		uint64_t at = put_seq((uint8_t)i, frame, FR_RING_NO_WAIT);
		highest = at > highest ? at : highest;
		take_seq(C, (uint8_t)i, frame);
	}
	assert_true(highest + frame <= 2 * (frame + 64));
	/* Off: the records go round the whole ring. */
	assert_int_equal(fr_ring_set_hot_lap(P, FR_RING_HOT_LAP_OFF, -1), 0);
	highest = 0;
	for (int i = 0; i < 40; i++) {
		uint64_t at = put_seq((uint8_t)i, frame, FR_RING_NO_WAIT);
		highest = at > highest ? at : highest;
		take_seq(C, (uint8_t)i, frame);
	}
	assert_true(highest + frame > cap - frame);
	assert_int_equal(fr_ring_set_hot_lap(NULL, 0, -1), -EINVAL);
	assert_int_equal(fr_ring_set_hot_lap(C, 0, -1), -EPERM);
}

/* Records below FR_RING_HOT_LAP_MIN_RECORD get no automatic lap (64 B
 * messages ran slower with one): they go round the whole ring; an explicit
 * lap applies to them too. */
static void test_hot_lap_leaves_small_records_alone(void **state)
{
	const size_t rec = 1000;
	const uint64_t cap = 8u << 20;
	uint64_t highest = 0;

	(void)state;
	make_pair(cap, FR_RING_FULL_BLOCK);
	for (int i = 0; i < 9000; i++) { /* about 9 MB: more than a lap */
		uint64_t at = put_seq((uint8_t)i, rec, FR_RING_NO_WAIT);
		highest = at > highest ? at : highest;
		take_seq(C, (uint8_t)i, rec);
	}
	assert_true(highest > cap - 2 * rec - 128);
	/* an explicit 64 KiB lap: from the next record on, only the front */
	assert_int_equal(fr_ring_set_hot_lap(P, 64u << 10, -1), 0);
	uint64_t front_max = 0;
	for (int i = 0; i < 200; i++) {
		uint64_t at = put_seq((uint8_t)i, rec, FR_RING_NO_WAIT);
		front_max = at > front_max ? at : front_max;
		take_seq(C, (uint8_t)i, rec);
	}
	assert_true(front_max + rec <= (64u << 10));
}

/* A consumer that does not keep up: the producer waits for the front up to
 * the hot wait, then goes on into the rest of the ring, so the ring holds as
 * many records as without a hot lap and none is lost or reordered; a reserve
 * that may not wait never waits for the front. */
static void test_hot_lap_spills_when_the_consumer_lags(void **state)
{
	const size_t rec = 4000;
	int whole = 0, n, rc;
	void *d;

	(void)state;
	/* how many records the ring holds without a hot lap */
	make_pair(64u << 10, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_set_hot_lap(P, FR_RING_HOT_LAP_OFF, -1), 0);
	while (fr_ring_reserve(P, rec, 64, &d, FR_RING_NO_WAIT) == 0) {
		assert_int_equal(fr_ring_commit(P, rec), 0);
		whole++;
	}
	assert_true(whole > 8);
	fr_ring_close(&C);
	fr_ring_close(&P);

	for (int may_wait = 1; may_wait >= 0; may_wait--) {
		/* Waiting: the first reserve past the 16 KiB lap waits 1 ms for the
		 * front, then spills. Not waiting: it spills at once. */
		make_pair(64u << 10, FR_RING_FULL_BLOCK);
		assert_int_equal(fr_ring_set_hot_lap(P, 16u << 10, 1000000), 0);
		int64_t timeout = may_wait ? 20 * 1000000ll : FR_RING_NO_WAIT;
		for (n = 0; (rc = fr_ring_reserve(P, rec, 64, &d, timeout)) == 0; n++) {
			memset(d, n, rec);
			assert_int_equal(fr_ring_commit(P, rec), 0);
		}
		assert_int_equal(rc, may_wait ? -ETIMEDOUT : -EAGAIN);
		assert_int_equal(n, whole);
		for (int i = 0; i < n; i++)
			take_seq(C, (uint8_t)i, rec);
		assert_int_equal(fr_ring_peek(C, &(const void *){0}, &(size_t){0}, FR_RING_NO_WAIT), -EAGAIN);
		fr_ring_close(&C);
		fr_ring_close(&P);
	}
}

/* The consumers have left, records unread: the front is not coming free, but
 * a record that fits at the tail still goes there (as without a hot lap),
 * waiting or not; "nobody left" only once the ring is full. */
static void test_hot_lap_after_the_consumers_left(void **state)
{
	const size_t rec = 1000;
	void *d;
	int n, rc;

	(void)state;
	for (int may_wait = 1; may_wait >= 0; may_wait--) {
		int64_t timeout = may_wait ? 1000 * 1000000ll : FR_RING_NO_WAIT;
		make_pair(64u << 10, FR_RING_FULL_BLOCK);
		assert_int_equal(fr_ring_set_hot_lap(P, 8u << 10, -1), 0);
		for (n = 0; n < 8; n++) { /* the 8 KiB lap, unread */
			assert_int_equal(fr_ring_reserve(P, rec, 8, &d, FR_RING_NO_WAIT), 0);
			assert_int_equal(fr_ring_commit(P, rec), 0);
		}
		fr_ring_close(&C);
		/* past the lap: the front is taken, the rest of the ring free */
		for (; (rc = fr_ring_reserve(P, rec, 8, &d, timeout)) == 0; n++)
			assert_int_equal(fr_ring_commit(P, rec), 0);
		assert_int_equal(rc, -ENOTCONN); /* full, and nobody left to make room: waiting or not */
		assert_true(n > 60); /* the whole ring was used, not the lap only */
		fr_ring_close(&P);
	}
}

/* A live consumer holding the front record: the producer's early wrap steps
 * over it, the held bytes stay as they were, and an every-consumer reads
 * every record in order. */
static void test_hot_lap_steps_over_a_held_front(void **state)
{
	const size_t rec = 4000;
	const void *held;
	size_t len;
	struct fr_ring_attach_opts live = { .mode = FR_RING_CONSUMER_LATEST, .wait_ns = 0 };

	(void)state;
	make_pair(64u << 10, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_attach(&C2, name, &live), 0);
	assert_int_equal(fr_ring_set_hot_lap(P, 12u << 10, 0), 0);
	assert_int_equal(put_seq(0, rec, FR_RING_NO_WAIT), 64); /* aligned to 64 after the 8-byte header */
	assert_int_equal(fr_ring_peek(C2, &held, &len, FR_RING_NO_WAIT), 0);
	for (int i = 1; i < 30; i++) {
		uint64_t at = put_seq((uint8_t)i, rec, FR_RING_NO_WAIT);
		assert_true(at >= 4096); /* never over the held record */
		assert_true(at + rec <= (12u << 10) + 4096 + 64);
		take_seq(C, (uint8_t)(i - 1), rec);
	}
	take_seq(C, 29, rec);
	for (size_t i = 0; i < rec; i++)
		assert_int_equal(((const uint8_t *)held)[i], 0);
	assert_int_equal(fr_ring_release(C2), 0);
}

/* A live consumer holding a frame in the automatic lap (two records) would
 * leave the producer one record there, the one the every-consumer is still
 * reading: the producer then waited for it every frame (bench_fanout's slow
 * live consumer halved the rate). The lap grows by the record it steps over,
 * so two records stay free to alternate between, still at the front. */
static void test_hot_lap_grows_by_a_held_record(void **state)
{
	const size_t frame = 3u << 20; /* the automatic lap is two of them */
	const uint64_t slot = frame + 64;
	const void *held;
	size_t len;
	struct fr_ring_attach_opts live = { .mode = FR_RING_CONSUMER_LATEST, .wait_ns = 0 };

	(void)state;
	make_pair(32u << 20, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_attach(&C2, name, &live), 0);
	assert_int_equal(put_seq(0, frame, FR_RING_NO_WAIT), 64);
	assert_int_equal(fr_ring_peek(C2, &held, &len, FR_RING_NO_WAIT), 0);
	for (int i = 1; i < 20; i++) {
		/* record i - 1 is not read yet: it needs no wait all the same */
		uint64_t at = put_seq((uint8_t)i, frame, FR_RING_NO_WAIT);
		assert_true(at >= slot);                /* never over the held record */
		assert_true(at + frame <= 3 * slot + 64); /* within three records of the front */
		take_seq(C, (uint8_t)(i - 1), frame);
	}
	take_seq(C, 19, frame);
	for (size_t i = 0; i < frame; i += 4093)
		assert_int_equal(((const uint8_t *)held)[i], 0);
	assert_int_equal(fr_ring_release(C2), 0);
}

/* Live consumers holding records spread round the ring, closer together
 * than the record being reserved: no span between two holds can take it.
 * The producer stepped over hold after hold, lap after lap, for ever,
 * whatever the caller's timeout (a paused viewer per hold is enough, once
 * the frames grow). It is "no room" now: -EAGAIN without waiting, and
 * -ETIMEDOUT at the deadline; the room comes back with a release. */
static void test_holds_closer_than_the_record(void **state)
{
	enum { LIVE = 4 };
	const size_t small = 4000, big = 100u << 10; /* 4 KiB spans; holds 64 KiB apart in 256 KiB */
	fr_ring_t *live[LIVE] = { NULL };
	struct fr_ring_attach_opts opts = { .mode = FR_RING_CONSUMER_LATEST, .wait_ns = 0 };
	const void *held;
	size_t len;
	void *d;

	(void)state;
	make_pair(256u << 10, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_set_hot_lap(P, FR_RING_HOT_LAP_OFF, 0), 0);
	for (int i = 0; i < LIVE; i++) {
		assert_int_equal(fr_ring_attach(&live[i], name, &opts), 0);
		for (int k = 0; k < 15; k++) {
			put_seq((uint8_t)k, small, FR_RING_NO_WAIT);
			take_seq(C, (uint8_t)k, small);
		}
		assert_int_equal(fr_ring_peek(live[i], &held, &len, FR_RING_NO_WAIT), 0);
	}
	fr_ring_close(&C); /* only live consumers now: nothing gates the producer */
	assert_int_equal(fr_ring_reserve(P, big, 64, &d, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_reserve(P, big, 64, &d, 20 * 1000000ll), -ETIMEDOUT);
	for (int i = 0; i < LIVE; i++)
		assert_int_equal(fr_ring_release(live[i]), 0);
	assert_int_equal(fr_ring_reserve(P, big, 64, &d, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_commit(P, big), 0);
	for (int i = 0; i < LIVE; i++) {
		assert_int_equal(fr_ring_peek(live[i], &held, &len, FR_RING_NO_WAIT), 0);
		assert_int_equal(len, big);
		fr_ring_close(&live[i]);
	}
}

/* A lap larger than any ring (a caller's "never wrap early" short of
 * FR_RING_HOT_LAP_OFF) stays so once a live consumer's held record is added
 * to it: the sum wrapped round to a few bytes, and from the lap after the
 * first step-over each lap tried to wrap early, waiting for a front the
 * consumer had not released yet (the pads just written before it). */
static void test_hot_lap_huge_with_a_held_record(void **state)
{
	const size_t rec = 4000;
	const void *held;
	size_t len;
	struct fr_ring_stats st;
	struct fr_ring_attach_opts live = { .mode = FR_RING_CONSUMER_LATEST, .wait_ns = 0 };

	(void)state;
	make_pair(64u << 10, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_attach(&C2, name, &live), 0);
	assert_int_equal(fr_ring_set_hot_lap(P, UINT64_MAX - 1, 1000000), 0);
	assert_int_equal(put_seq(0, rec, FR_RING_NO_WAIT), 64);
	assert_int_equal(fr_ring_peek(C2, &held, &len, FR_RING_NO_WAIT), 0);
	take_seq(C, 0, rec);
	for (int i = 1; i < 60; i++) { /* about four laps, each stepping over the held record */
		assert_true(put_seq((uint8_t)i, rec, 10 * 1000000000ll) >= 4096); /* never over the held record */
		take_seq(C, (uint8_t)i, rec);
	}
	/* Every record found room at the tail at once: nothing to wait for. */
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.producer_futex_waits, 0);
	assert_int_equal(fr_ring_release(C2), 0);
}

static void test_read_write(void **state)
{
	char small[3], big[64];

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_write(P, "hello", 5, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_read(C, small, sizeof(small), FR_RING_NO_WAIT), -EMSGSIZE);
	/* the record stayed: a big enough buffer gets it */
	assert_int_equal(fr_ring_read(C, big, sizeof(big), FR_RING_NO_WAIT), 5);
	assert_memory_equal(big, "hello", 5);
	assert_int_equal(fr_ring_read(C, big, sizeof(big), FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_write(P, NULL, 5, FR_RING_NO_WAIT), -EINVAL);
	/* an empty record into no buffer (no memcpy to NULL: undefined even for
	 * 0 bytes, and the UBSAN build aborts on it) */
	assert_int_equal(fr_ring_write(P, NULL, 0, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_read(C, NULL, 0, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_read(C, NULL, 0, FR_RING_NO_WAIT), -EAGAIN);
}

static void test_latest(void **state)
{
	const void *cd;
	size_t len;
	uint64_t skipped = 99;
	struct fr_ring_stats st;
	char buf[16];

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(fr_ring_write(P, &i, sizeof(i), FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek_latest(C, &cd, &len, &skipped, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, sizeof(int));
	assert_int_equal(*(const int *)cd, 4);
	assert_int_equal(skipped, 4);
	assert_int_equal(fr_ring_release(C), 0);
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.records_skipped, 4);
	assert_int_equal(st.bytes_skipped, 4 * sizeof(int));
	assert_int_equal(st.records_read, 1);
	assert_int_equal(st.used, 0);
	/* only one record: nothing skipped */
	assert_int_equal(fr_ring_write(P, "x", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_peek_latest(C, &cd, &len, &skipped, FR_RING_NO_WAIT), 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(fr_ring_release(C), 0);
	/* skip_to_latest keeps the newest for the next peek */
	for (int i = 10; i < 13; i++)
		assert_int_equal(fr_ring_write(P, &i, sizeof(i), FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_skip_to_latest(C), 2);
	assert_int_equal(fr_ring_skip_to_latest(C), 0);
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), (ssize_t)sizeof(int));
	assert_int_equal(*(int *)buf, 12);
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.records_skipped, 6);
	/* peek_latest waits for a record like peek */
	assert_int_equal(fr_ring_peek_latest(C, &cd, &len, NULL, 10 * 1000000), -ETIMEDOUT);
	assert_int_equal(fr_ring_skip_to_latest(P), -EPERM);
}

static void test_eos(void **state)
{
	const void *cd;
	size_t len;
	void *d;
	struct fr_ring_stats st;

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_write(P, "a", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_write(P, "b", 1, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_mark_eos(P), 0);
	assert_int_equal(fr_ring_reserve(P, 1, 8, &d, FR_RING_NO_WAIT), -EPIPE);
	assert_int_equal(fr_ring_write(P, "c", 1, FR_RING_NO_WAIT), -EPIPE);
	fr_ring_get_stats(C, &st);
	assert_true(st.eos);
	/* the consumer drains what came before EOS, then -ENODATA (also when waiting) */
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_WAIT_FOREVER), 0);
	assert_memory_equal(cd, "a", 1);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_WAIT_FOREVER), 0);
	assert_memory_equal(cd, "b", 1);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_WAIT_FOREVER), -ENODATA);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_NO_WAIT), -ENODATA);
	assert_int_equal(fr_ring_peek_latest(C, &cd, &len, NULL, FR_RING_WAIT_FOREVER), -ENODATA);

	/* closing the producer marks EOS and unlinks; the consumer still drains */
	fr_ring_close(&C);
	fr_ring_close(&P);
	rt_name(name, sizeof(name), "eos2");
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_write(P, "z", 1, FR_RING_NO_WAIT), 0);
	fr_ring_close(&P);
	assert_false(rt_shm_exists(name));
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_WAIT_FOREVER), 0);
	assert_memory_equal(cd, "z", 1);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_peek(C, &cd, &len, FR_RING_WAIT_FOREVER), -ENODATA);
	fr_ring_get_stats(C, &st);
	assert_true(st.eos);
}

static void test_wrong_side(void **state)
{
	void *d;
	const void *cd;
	size_t len;
	char buf[8];
	char meta[FR_RING_META_SIZE] = { 0 };

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_reserve(C, 8, 8, &d, FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_ring_write(C, "x", 1, FR_RING_NO_WAIT), -EPERM);
	int rc = fr_ring_commit(C, 1); /* ring.h lists only -EINVAL for commit */
	assert_true(rc == -EPERM || rc == -EINVAL);
	assert_int_equal(fr_ring_mark_eos(C), -EPERM);
	assert_int_equal(fr_ring_set_meta(C, meta, sizeof(meta)), -EPERM);
	assert_int_equal(fr_ring_peek(P, &cd, &len, FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_ring_peek_latest(P, &cd, &len, NULL, FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_ring_read(P, buf, sizeof(buf), FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_ring_skip_to_latest(P), -EPERM);
	/* these are no-ops on the wrong side and must not corrupt anything */
	fr_ring_abort(C);
	fr_ring_note_drop(C, 10);
	fr_ring_set_full_policy(C, FR_RING_FULL_DROP);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_dropped, 0);
	assert_int_equal(st.on_full, FR_RING_FULL_BLOCK);
	/* release on the producer: ring.h's -EPERM is "operation not allowed on this side" */
	assert_int_equal(fr_ring_release(P), -EPERM);
}

static void test_open_errors(void **state)
{
	char path[512];
	char junk[8192];
	int fd;

	(void)state;
	assert_int_equal(fr_ring_open(&C, name), -ENOENT);
	assert_null(C);

	/* -EBUSY: a second producer on a live ring; a consumer past the ring's
	 * maximum (here 1) */
	struct fr_ring_create_opts one = { .capacity = 4096, .max_consumers = 1 };
	assert_int_equal(fr_ring_create(&P, name, &one), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_create(&P2, name, NULL), -EBUSY);
	assert_null(P2);
	assert_int_equal(fr_ring_open(&C2, name), -EBUSY);
	assert_null(C2);
	/* the ring still works after the refused attempts */
	assert_int_equal(fr_ring_write(P, "ok", 2, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_read(C, junk, sizeof(junk), FR_RING_NO_WAIT), 2);
	/* after the consumer detaches, a new one may attach */
	fr_ring_close(&C);
	assert_int_equal(fr_ring_open(&C2, name), 0);
	assert_int_equal(fr_ring_write(P, "ok", 2, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_read(C2, junk, sizeof(junk), FR_RING_NO_WAIT), 2);
	fr_ring_close(&C2);
	fr_ring_close(&P);

	/* a segment that is not a ring: create -EEXIST, open -EBADMSG, inspect -EBADMSG */
	rt_shm_path(path, sizeof(path), name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(fr_ring_create(&P, name, NULL), -EEXIST);
	assert_true(rt_shm_exists(name)); /* not ours: left alone */
	assert_int_equal(fr_ring_open(&C, name), -EBADMSG);
	struct fr_ring_stats st;
	assert_int_equal(fr_ring_inspect(name, &st), -EBADMSG);
	unlink(path);

	/* a tiny file is not a ring either */
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(fr_ring_open(&C, name), -EBADMSG);
	assert_int_equal(fr_ring_create(&P, name, NULL), -EEXIST);
	/* waiting for it does not turn it into a ring: -EBADMSG once the time is up */
	rt_watchdog(20, "fr_ring_open_wait on a non-ring");
	assert_int_equal(fr_ring_open_wait(&C, name, 100 * 1000000), -EBADMSG);
	rt_watchdog(0, "");

	/* Not a ring, so not a stale ring either: fr_ring_unlink_stale must leave a
	 * foreign segment alone, as fr_ring_create does (-EEXIST, "not ours"). */
	int rc = fr_ring_unlink_stale(name);
	int still_there = rt_shm_exists(name);
	unlink(path);
	if (rc >= 0 || !still_there)
		fail_msg("fr_ring_unlink_stale on a non-ring segment returned %d and %s it", rc,
			 still_there ? "kept" : "REMOVED");
}

static void test_permissions(void **state)
{
	char path[512];
	struct stat sb;
	struct fr_ring_create_opts o = { .capacity = 4096 };
	mode_t old = umask(022);

	(void)state;
	rt_shm_path(path, sizeof(path), name);
	assert_int_equal(fr_ring_create(&P, name, NULL), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(sb.st_uid, getuid());
	fr_ring_close(&P);

	o.mode = 0640;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	fr_ring_close(&P);

	/* the mode asked for is the mode set, whatever the umask */
	umask(077);
	o.mode = 0666;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	if ((sb.st_mode & 07777) != 0666)
		print_error("mode 0666 under umask 077 gave %04o\n", (unsigned)(sb.st_mode & 07777));
	assert_int_equal(sb.st_mode & 07777, 0666);
}

static void test_drop_policy(void **state)
{
	char rec[1500] = { 0 };
	void *d;
	struct fr_ring_stats st;
	int rc;

	(void)state;
	make_pair(4096, FR_RING_FULL_DROP);
	while ((rc = fr_ring_write(P, rec, sizeof(rec), FR_RING_WAIT_FOREVER)) == 0)
		;
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(fr_ring_reserve(P, 1100, 8, &d, FR_RING_WAIT_FOREVER), -ENOBUFS);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_dropped, 2);
	assert_int_equal(st.bytes_dropped, 2600);
	assert_int_equal(st.records_written, 2);

	/* under BLOCK a full ring gives -EAGAIN / -ETIMEDOUT and counts nothing */
	fr_ring_set_full_policy(P, FR_RING_FULL_BLOCK);
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.on_full, FR_RING_FULL_BLOCK);
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, 1000000), -ETIMEDOUT);
	fr_ring_note_drop(P, 1000); /* the caller gave up on it */
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_dropped, 3);
	assert_int_equal(st.bytes_dropped, 3600);

	/* a record that can never fit is -EMSGSIZE, not a drop */
	fr_ring_set_full_policy(P, FR_RING_FULL_DROP);
	assert_int_equal(fr_ring_reserve(P, fr_ring_max_record(P) + 1, 8, &d, FR_RING_NO_WAIT), -EMSGSIZE);
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_dropped, 3);
	/* after the consumer drains, writing works again */
	while (fr_ring_read(C, rec, sizeof(rec), FR_RING_NO_WAIT) > 0)
		;
	assert_int_equal(fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT), 0);
}

static void test_meta(void **state)
{
	unsigned char m[FR_RING_META_SIZE], out[FR_RING_META_SIZE], big[FR_RING_META_SIZE + 1];

	(void)state;
	make_pair(4096, FR_RING_FULL_BLOCK);
	for (unsigned i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)(i * 7 + 1);
	/* get_meta returns the length last set (a non-negative count, ring.h's convention) */
	memset(out, 0xff, sizeof(out));
	assert_int_equal(fr_ring_get_meta(C, out, sizeof(out)), 0); /* nothing set yet */
	assert_int_equal(out[0], 0);
	assert_int_equal(fr_ring_set_meta(P, m, sizeof(m)), 0);
	assert_int_equal(fr_ring_get_meta(C, out, sizeof(out)), FR_RING_META_SIZE);
	assert_memory_equal(out, m, sizeof(m));
	memset(out, 0, sizeof(out));
	assert_int_equal(fr_ring_get_meta(P, out, sizeof(out)), FR_RING_META_SIZE);
	assert_memory_equal(out, m, sizeof(m));
	memset(out, 0, sizeof(out));
	assert_int_equal(fr_ring_inspect_meta(name, out, sizeof(out)), FR_RING_META_SIZE);
	assert_memory_equal(out, m, sizeof(m));
	/* a shorter read gets a prefix and touches nothing after it */
	memset(out, 0, sizeof(out));
	assert_true(fr_ring_get_meta(C, out, 10) >= 0);
	assert_memory_equal(out, m, 10);
	assert_int_equal(out[10], 0);
	/* a shorter set */
	assert_int_equal(fr_ring_set_meta(P, "abc", 3), 0);
	assert_int_equal(fr_ring_get_meta(C, out, sizeof(out)), 3);
	assert_memory_equal(out, "abc", 3);
	/* only the length: no buffer (meta.c must not pass NULL to memset/memcpy,
	 * undefined even for 0 bytes; the UBSAN build aborts on it) */
	assert_int_equal(fr_ring_get_meta(C, NULL, 0), 3);
	assert_int_equal(fr_ring_inspect_meta(name, NULL, 0), 3);
	assert_int_equal(fr_ring_set_meta(P, NULL, 0), 0);
	assert_int_equal(fr_ring_get_meta(C, NULL, 0), 0);
	assert_int_equal(fr_ring_set_meta(P, "abc", 3), 0);
	/* too large */
	memset(big, 1, sizeof(big));
	assert_int_equal(fr_ring_set_meta(P, big, sizeof(big)), -EINVAL);
	assert_int_equal(fr_ring_get_meta(C, out, sizeof(out)), 3); /* unchanged by the refused set */
	assert_int_equal(fr_ring_inspect_meta("frt-no-such-ring-xyz", out, sizeof(out)), -ENOENT);
}

static void test_inspect(void **state)
{
	struct fr_ring_stats st;
	char buf[64];

	(void)state;
	assert_int_equal(fr_ring_inspect(name, &st), -ENOENT);
	make_pair(1u << 16, FR_RING_FULL_DROP);
	for (int i = 0; i < 10; i++)
		assert_int_equal(fr_ring_write(P, "0123456789", 10, FR_RING_NO_WAIT), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), 10);
	fr_ring_note_drop(P, 77);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.capacity, 1u << 16);
	assert_int_equal(st.records_written, 10);
	assert_int_equal(st.bytes_written, 100);
	assert_int_equal(st.records_read, 4);
	assert_int_equal(st.bytes_read, 40);
	assert_int_equal(st.records_dropped, 1);
	assert_int_equal(st.bytes_dropped, 77);
	assert_true(st.used >= 60 && st.used < 4096);
	assert_int_equal(st.producer_pid, getpid());
	assert_int_equal(st.consumer_pid, getpid());
	assert_true(st.producer_alive);
	assert_true(st.consumer_alive);
	assert_false(st.eos);
	assert_int_equal(st.on_full, FR_RING_FULL_DROP);
	/* inspect does not attach: a consumer could still... not here, one is attached; but after it leaves */
	fr_ring_close(&C);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.consumer_pid, 0);
	assert_false(st.consumer_alive);
	assert_int_equal(fr_ring_open(&C, name), 0);
	/* the new consumer starts at the oldest record still in the ring */
	assert_int_equal(fr_ring_read(C, buf, sizeof(buf), FR_RING_NO_WAIT), 10);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.records_read, 5); /* the ring's total: 4 by the first consumer, 1 by this one */
	fr_ring_get_stats(C, &st);
	assert_int_equal(st.records_read, 1); /* a consumer's own */
	assert_int_equal(fr_ring_mark_eos(P), 0);
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_true(st.eos);
	assert_int_equal(fr_ring_inspect("bad/name", &st), -EINVAL);
}

static void test_unlink_stale(void **state)
{
	struct fr_ring_create_opts o = { .capacity = 4096 };
	int pfd[2];
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(fr_ring_unlink_stale(name), -ENOENT);
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_unlink_stale(name), -EBUSY);
	assert_true(rt_shm_exists(name));
	fr_ring_close(&P);

	/* a producer killed by SIGKILL leaves a stale segment */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fr_ring_t *r = NULL;
		close(pfd[0]);
		int rc = fr_ring_create(&r, name, &o);
		c = rc == 0 ? 'y' : 'n';
		(void)!write(pfd[1], &c, 1);
		pause();
		_exit(0);
	}
	rt_track_child(pid);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	assert_int_equal(c, 'y');
	assert_int_equal(fr_ring_unlink_stale(name), -EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(rt_wait_child(pid), 128 + SIGKILL);
	assert_true(rt_shm_exists(name));
	struct fr_ring_stats st;
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_false(st.producer_alive);
	assert_int_equal(fr_ring_unlink_stale(name), 0);
	assert_false(rt_shm_exists(name));
	assert_int_equal(fr_ring_unlink_stale(name), -ENOENT);
}

static void test_strerror(void **state)
{
	const int codes[] = { 0, -EINVAL, -ENAMETOOLONG, -ENOENT, -EBUSY, -EEXIST, -EPROTO, -EBADMSG, -EMSGSIZE,
			      -EAGAIN, -ETIMEDOUT, -ENOBUFS, -ENODATA, -EOWNERDEAD, -EALREADY, -EPERM, -EPIPE,
			      -ENOMEM, -EACCES, -12345, 12345, INT_MIN, INT_MAX }; /* any int: -INT_MIN overflows */

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = fr_ring_strerror(codes[i]);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
	}
	assert_string_not_equal(fr_ring_strerror(-ENODATA), fr_ring_strerror(-EOWNERDEAD));
	/* -EFBIG has a ring meaning (ring.h): a segment too large for a size_t. Only a 32-bit
	 * build can get it (map_size_of), so only its text is checked here. */
	assert_non_null(strstr(fr_ring_strerror(-EFBIG), "map"));
}

/* fr_ring_open_wait: a ring created later by another process is found; one never created times out. */
static void test_open_wait(void **state)
{
	int go[2], done[2];
	pid_t pid;
	char c = 0;
	uint64_t t0;
	char buf[16];

	(void)state;
	rt_watchdog(30, "fr_ring_open_wait");
	t0 = rt_now_ns();
	assert_int_equal(fr_ring_open_wait(&C, name, 200 * 1000000), -ETIMEDOUT);
	print_message("fr_ring_open_wait(200 ms) on a missing ring returned after %.1f ms\n",
		      (double)(rt_now_ns() - t0) / 1e6);
	assert_null(C);

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fr_ring_t *r = NULL;
		int rc = 1;
		close(go[0]);
		close(done[1]);
		rt_sleep_ns(300 * 1000000ull);
		if (fr_ring_create(&r, name, NULL) == 0 && fr_ring_write(r, "late", 4, FR_RING_NO_WAIT) == 0)
			rc = 0;
		/* stay until the parent read, so close's unlink cannot race its open */
		(void)!read(done[0], &c, 1);
		fr_ring_close(&r);
		_exit(rc);
	}
	rt_track_child(pid);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	int rc = fr_ring_open_wait(&C, name, 10 * 1000000000ll);
	if (rc == 0)
		rc = (int)fr_ring_read(C, buf, sizeof(buf), 5 * 1000000000ll);
	(void)!write(done[1], "x", 1);
	close(done[1]);
	assert_int_equal(rt_wait_child(pid), 0);
	assert_int_equal(rc, 4);
	assert_memory_equal(buf, "late", 4);
	assert_int_equal(fr_ring_peek(C, &(const void *){ NULL }, &(size_t){ 0 }, 5 * 1000000000ll), -ENODATA);
	rt_watchdog(0, "");
}

/* fr_ring_wait_drained: at once when the consumer has read everything, -EAGAIN
 * without waiting, and woken (not polled) by a consumer in another process
 * that attaches late and reads everything. */
static void test_wait_drained(void **state)
{
	struct fr_ring_create_opts o = { .capacity = 1 << 16 };
	char buf[64];

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_wait_drained(P, FR_RING_NO_WAIT), 0); /* nothing written */
	for (int i = 0; i < 3; i++)
		assert_int_equal(fr_ring_write(P, "abc", 3, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_wait_drained(P, FR_RING_NO_WAIT), -EAGAIN);
	assert_int_equal(fr_ring_wait_drained(P, 50 * 1000000ll), -ETIMEDOUT); /* no consumer yet: waits */

	rt_watchdog(30, "wait_drained with a late consumer");
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		fr_ring_t *c = NULL;
		rt_sleep_ns(100 * 1000000ull);
		int ok = fr_ring_open(&c, name) == 0;
		for (int i = 0; ok && i < 3; i++)
			ok = fr_ring_read(c, buf, sizeof(buf), 5000000000ll) == 3;
		fr_ring_close(&c);
		_exit(ok ? 0 : 1);
	}
	rt_track_child(child);
	assert_int_equal(fr_ring_wait_drained(P, 10000000000ll), 0);
	assert_int_equal(rt_wait_child(child), 0);
	rt_untrack_child(child);
	rt_watchdog(0, "");
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	assert_int_equal(st.records_read, 3);
	assert_true(st.producer_futex_waits >= 1); /* it slept rather than spun */
}

/* A consumer that detaches cleanly: a producer waiting for space, or for the
 * drain, gets -ENOTCONN (a pipe without a reader), not a timeout. A new
 * consumer makes the ring usable again. */
static void test_consumer_detached(void **state)
{
	void *d;

	(void)state;
	make_pair(1 << 14, FR_RING_FULL_BLOCK);
	while (fr_ring_reserve(P, 1000, 8, &d, FR_RING_NO_WAIT) == 0)
		assert_int_equal(fr_ring_commit(P, 1000), 0);
	fr_ring_close(&C);
	/* a producer that does not wait learns it too (as fr_ring_wait_drained
	 * does), not "try again" for ever */
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, FR_RING_NO_WAIT), -ENOTCONN);
	assert_int_equal(fr_ring_wait_drained(P, FR_RING_NO_WAIT), -ENOTCONN);
	uint64_t t0 = rt_now_ns();
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, 5000000000ll), -ENOTCONN);
	assert_int_equal(fr_ring_wait_drained(P, 5000000000ll), -ENOTCONN);
	print_message("detached consumer noticed after %.1f ms\n", (double)(rt_now_ns() - t0) / 1e6);

	assert_int_equal(fr_ring_open(&C, name), 0);
	const void *data;
	size_t len;
	assert_int_equal(fr_ring_peek(C, &data, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, FR_RING_NO_WAIT), 0);
	fr_ring_abort(P);
}

/* A producer blocked on a full ring wakes with -ENOTCONN when its consumer,
 * in another process, detaches while it waits. */
static void test_detach_wakes_waiting_producer(void **state)
{
	void *d;
	char b;
	int to_parent[2], to_child[2];

	(void)state;
	struct fr_ring_create_opts o = { .capacity = 1 << 14 };
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	rt_watchdog(30, "producer waiting for a detaching consumer");
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		fr_ring_t *c = NULL;
		int ok = fr_ring_open(&c, name) == 0;
		ok = ok && write(to_parent[1], "x", 1) == 1;
		ok = ok && read(to_child[0], &b, 1) == 1; /* parent: ring full, about to wait */
		rt_sleep_ns(100 * 1000000ull);
		fr_ring_close(&c);
		_exit(ok ? 0 : 1);
	}
	rt_track_child(child);
	assert_int_equal(read(to_parent[0], &b, 1), 1); /* consumer attached */
	while (fr_ring_reserve(P, 1000, 8, &d, FR_RING_NO_WAIT) == 0)
		assert_int_equal(fr_ring_commit(P, 1000), 0);
	assert_int_equal(write(to_child[1], "y", 1), 1);
	assert_int_equal(fr_ring_reserve(P, 1000, 8, &d, FR_RING_WAIT_FOREVER), -ENOTCONN);
	assert_int_equal(rt_wait_child(child), 0);
	rt_untrack_child(child);
	rt_watchdog(0, "");
	for (int i = 0; i < 2; i++) {
		close(to_parent[i]);
		close(to_child[i]);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_never_splits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_align_impossible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_commit_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_side, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inspect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strerror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consumer_detached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_wakes_waiting_producer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpeek, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_keeps_records_at_the_front, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_spills_when_the_consumer_lags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_after_the_consumers_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_leaves_small_records_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_steps_over_a_held_front, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_grows_by_a_held_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_lap_huge_with_a_held_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_closer_than_the_record, setup, teardown),
		/* last: under UBSAN a NULL store aborts the whole program, let the others run first */
		cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
	};

	rt_parse_args(argc, argv, "Unit tests of the ring API (ring.h): every call and documented error, in one process.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
