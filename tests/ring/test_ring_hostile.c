/* test_ring_hostile.c - consumers (and a producer) facing corrupt or shrunk segments: errors (-EBADMSG/-EPROTO/-EFAULT), never a crash. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ring_layout.h"
#include "ringtest.h"

#define CAP 4096u
#define SEG (RING_HEADER_SIZE + CAP)

static fr_ring_t *P, *C;
static char name[256];
static _Alignas(4096) unsigned char tmpl[SEG]; /* a valid segment: live producer (us), three records */
static _Alignas(4096) unsigned char seg[SEG];
static const size_t rec_len[3] = { 100, 200, 300 };
/* The producer lock of the segment last written: it plays a live producer. */
static int live_producer = -1;
static uint64_t rec_off[3];       /* offset of each record header in the data area */

static int setup(void **state)
{
	(void)state;
	P = C = NULL;
	rt_name(name, sizeof(name), "hostile");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (live_producer >= 0)
		close(live_producer);
	live_producer = -1;
	fr_ring_close(&C);
	fr_ring_close(&P);
	rt_cleanup();
	return 0;
}

static struct ring_shm_header *hdr_of(unsigned char *s)
{
	return (struct ring_shm_header *)s;
}

static struct ring_record_header *rec_at(unsigned char *s, uint64_t off)
{
	return (struct ring_record_header *)(s + RING_HEADER_SIZE + off);
}

/* Make a real ring with three records and keep a copy of its bytes. */
static void make_template(void)
{
	struct fr_ring_create_opts o = { .capacity = CAP };
	const void *base;
	size_t size;
	unsigned char buf[300];
	void *d;

	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		assert_int_equal(fr_ring_reserve(P, rec_len[i], 8, &d, FR_RING_NO_WAIT), 0);
		memcpy(d, buf, rec_len[i]);
		assert_int_equal(fr_ring_commit(P, rec_len[i]), 0);
	}
	fr_ring_mapping(P, &base, &size);
	assert_int_equal(size, SEG);
	memcpy(tmpl, base, SEG);
	/* the layout as ring_layout.h documents it */
	uint64_t off = 0;
	for (int i = 0; i < 3; i++) {
		rec_off[i] = off;
		assert_int_equal(rec_at(tmpl, off)->type, RING_REC_DATA);
		assert_int_equal(rec_at(tmpl, off)->len, rec_len[i]);
		off += RING_REC_HDR + ((rec_len[i] + 7) & ~(size_t)7);
	}
	assert_int_equal(hdr_of(tmpl)->tail, off);
	assert_int_equal(hdr_of(tmpl)->oldest, 0); /* where a consumer starts */
	assert_int_equal(hdr_of(tmpl)->magic, RING_MAGIC);
	/* P stays open: the copy's producer (this process) is alive. Its own
	 * segment is replaced below by files we write under the same name. */
}

/* Replace /dev/shm/NAME by SIZE bytes of BUF, whose producer is alive (we
 * hold its lock) or, with write_dead_segment(), gone. */
static void write_segment_as(const unsigned char *buf, size_t size, int alive)
{
	char path[512];
	int fd;

	if (live_producer >= 0)
		close(live_producer);
	live_producer = -1;
	rt_shm_path(path, sizeof(path), name);
	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	if (alive) {
		/* Both of a producer's bytes: whatever producer_flags a test writes,
		 * the producer is alive (ring_layout.h). */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RING_LOCK_PRODUCER_LIVE, .l_len = 1 };
		live_producer = rt_hold_lock(name, RING_LOCK_PRODUCER);
		assert_true(live_producer >= 0);
		assert_int_equal(fcntl(live_producer, F_OFD_SETLK, &fl), 0);
	}
}

static void write_segment(const unsigned char *buf, size_t size)
{
	write_segment_as(buf, size, 1);
}

static void write_dead_segment(const unsigned char *buf, size_t size)
{
	write_segment_as(buf, size, 0);
}

/* Open as consumer and read until an error; every record returned must lie
 * in the data area. Returns the open error, or the first peek error. */
static int open_and_drain(int *records)
{
	fr_ring_t *c = NULL;
	const void *base, *d;
	size_t size, len;
	int rc = fr_ring_open(&c, name);

	*records = 0;
	if (rc < 0)
		return rc;
	fr_ring_mapping(c, &base, &size);
	for (int i = 0; i < 100; i++) {
		rc = fr_ring_peek(c, &d, &len, FR_RING_NO_WAIT);
		if (rc < 0)
			break;
		const unsigned char *lo = (const unsigned char *)base + RING_HEADER_SIZE, *hi = (const unsigned char *)base + size;
		if ((const unsigned char *)d < lo || (const unsigned char *)d > hi || len > (size_t)(hi - (const unsigned char *)d))
			fail_msg("peek returned [%p, +%zu) outside the data area [%p, %p)", d, len, (const void *)lo, (const void *)hi);
		volatile unsigned char sink = 0;
		for (size_t k = 0; k < len; k++) /* touch every byte: ASAN/SIGSEGV would catch a lie */
			sink ^= ((const unsigned char *)d)[k];
		(void)sink;
		(*records)++;
		assert_int_equal(fr_ring_release(c), 0);
	}
	fr_ring_close(&c);
	return rc;
}

static void expect_open_error(const char *what, int want)
{
	int n, rc = open_and_drain(&n);
	struct fr_ring_stats st;

	if (rc != want)
		fail_msg("%s: fr_ring_open/peek gave %d (%s), expected %d (%s)", what, rc, fr_ring_strerror(rc), want,
			 fr_ring_strerror(want));
	assert_int_equal(fr_ring_inspect(name, &st), want);
}

static void test_template_is_valid(void **state)
{
	int n;

	(void)state;
	make_template();
	write_segment(tmpl, SEG);
	assert_int_equal(open_and_drain(&n), -EAGAIN); /* live producer, ring drained */
	assert_int_equal(n, 3);
}

/* Which lock byte says the producer is alive (ring_layout.h): the
 * RING_LOCK_PRODUCER_LIVE byte of a producer that says it holds it, the
 * RING_LOCK_PRODUCER byte of one made before (producer_flags 0). A remover
 * holds only RING_LOCK_PRODUCER, so it never passes for a new producer. */
static void expect_producer_alive(bool alive)
{
	struct fr_ring_stats st;
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_int_equal(st.producer_alive, alive);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_peer_alive(C), alive);
	fr_ring_close(&C);
}

static void test_producer_liveness_byte(void **state)
{
	(void)state;
	make_template();
	assert_int_equal(hdr_of(tmpl)->producer_flags, RING_PRODUCER_HOLDS_LIVE); /* what fr_ring_create writes */
	memcpy(seg, tmpl, SEG);
	write_dead_segment(seg, SEG);
	live_producer = rt_hold_lock(name, RING_LOCK_PRODUCER); /* a remover, in the middle of its work */
	assert_true(live_producer >= 0);
	expect_producer_alive(false);

	/* A ring made before the live byte: its producer holds RING_LOCK_PRODUCER only. */
	hdr_of(seg)->producer_flags = 0;
	write_segment_as(seg, SEG, 0);
	live_producer = rt_hold_lock(name, RING_LOCK_PRODUCER);
	assert_true(live_producer >= 0);
	expect_producer_alive(true);
}

/* The producer_flags a consumer validated at attach choose the liveness
 * byte for good: a peer that flips them in the mapping afterwards changes
 * neither what the consumer's liveness checks nor what its stats report. */
static void test_producer_flags_flipped_after_attach(void **state)
{
	struct fr_ring_stats st;
	const void *base;

	(void)state;
	make_template();
	for (int was_live = 1; was_live >= 0; was_live--) {
		memcpy(seg, tmpl, SEG);
		hdr_of(seg)->producer_flags = was_live ? RING_PRODUCER_HOLDS_LIVE : 0;
		/* Only RING_LOCK_PRODUCER is held: a remover for a ring with the
		 * live byte (dead), its live producer for a ring without (alive). */
		write_dead_segment(seg, SEG);
		live_producer = rt_hold_lock(name, RING_LOCK_PRODUCER);
		assert_true(live_producer >= 0);
		assert_int_equal(fr_ring_open(&C, name), 0);
		bool alive = !was_live;
		assert_int_equal(fr_ring_peer_alive(C), alive);
		fr_ring_mapping(C, &base, NULL);
		atomic_store(&((struct ring_shm_header *)base)->producer_flags, was_live ? 0 : RING_PRODUCER_HOLDS_LIVE);
		fr_ring_get_stats(C, &st);
		assert_int_equal(st.producer_alive, alive);
		assert_int_equal(fr_ring_peer_alive(C), alive);
		fr_ring_close(&C);
	}
}

/* Corrupt immutable header fields: -EBADMSG, or -EPROTO for another layout version. */
static void test_header_corruptions(void **state)
{
	(void)state;
	make_template();
#define CASE(what, want, stmt)                          \
	do {                                            \
		memcpy(seg, tmpl, SEG);                 \
		struct ring_shm_header *h = hdr_of(seg); \
		(void)h;                                \
		stmt;                                   \
		write_segment(seg, SEG);                \
		expect_open_error(what, want);          \
	} while (0)
	CASE("magic", -EBADMSG, h->magic ^= 1);
	CASE("magic zero", -EBADMSG, h->magic = 0);
	CASE("layout version + 1", -EPROTO, h->layout_version = RING_LAYOUT_VERSION + 1);
	CASE("layout version huge", -EPROTO, h->layout_version = 0xffffffffu);
	CASE("header_size 0", -EBADMSG, h->header_size = 0);
	CASE("header_size 8192", -EBADMSG, h->header_size = 8192);
	CASE("capacity 0", -EBADMSG, h->capacity = 0);
	CASE("capacity not a power of two", -EBADMSG, h->capacity = CAP + 8);
	CASE("capacity below the minimum", -EBADMSG, { h->capacity = 2048; h->segment_size = RING_HEADER_SIZE + 2048; });
	CASE("capacity past the file", -EBADMSG, { h->capacity = 1u << 20; h->segment_size = RING_HEADER_SIZE + (1u << 20); });
	CASE("capacity huge", -EBADMSG, { h->capacity = 1ull << 62; h->segment_size = RING_HEADER_SIZE + (1ull << 62); });
	CASE("capacity wraps segment_size", -EBADMSG, { h->capacity = 1ull << 63; h->segment_size = RING_HEADER_SIZE; });
	CASE("segment_size short", -EBADMSG, h->segment_size = SEG - 8);
	CASE("segment_size long", -EBADMSG, h->segment_size = SEG + 4096);
	CASE("segment_size huge", -EBADMSG, h->segment_size = UINT64_MAX);
#undef CASE
	/* a ring of another version, or a corrupt one, is not reclaimed by fr_ring_create */
	memcpy(seg, tmpl, SEG);
	hdr_of(seg)->layout_version = RING_LAYOUT_VERSION + 1;
	hdr_of(seg)->producer_pid = 0; /* nobody holds its lock: still not ours to remove */
	write_segment(seg, SEG);
	fr_ring_t *p2 = NULL;
	assert_int_equal(fr_ring_create(&p2, name, NULL), -EEXIST);
	assert_true(rt_shm_exists(name));
}

/* Truncated files and files of random bytes. */
static void test_truncated_and_random(void **state)
{
	const size_t sizes[] = { 0, 1, 8, 64, sizeof(struct ring_shm_header) - 1, sizeof(struct ring_shm_header),
				 RING_HEADER_SIZE, RING_HEADER_SIZE + 8, SEG - 8 };
	uint64_t rng = 1;

	(void)state;
	make_template();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "file truncated to %zu bytes", sizes[i]);
		write_segment(tmpl, sizes[i]);
		expect_open_error(what, -EBADMSG);
	}
	for (int i = 0; i < 200; i++) {
		for (size_t k = 0; k < SEG; k += 8) {
			uint64_t v = rt_rand(&rng);
			memcpy(seg + k, &v, 8);
		}
		write_segment(seg, SEG);
		expect_open_error("random bytes", -EBADMSG);
	}
}

/* Indices that cannot be: refused at open. */
static void test_index_corruptions(void **state)
{
	(void)state;
	make_template();
#define CASE(what, want, stmt)                          \
	do {                                            \
		memcpy(seg, tmpl, SEG);                 \
		struct ring_shm_header *h = hdr_of(seg); \
		stmt;                                   \
		write_segment(seg, SEG);                \
		int n_, rc_ = open_and_drain(&n_);      \
		if (rc_ != want)                        \
			fail_msg("%s: got %d (%s) after %d records, expected %s", what, rc_, fr_ring_strerror(rc_), n_, fr_ring_strerror(want)); \
	} while (0)
	CASE("tail - oldest > capacity", -EBADMSG, h->tail = h->oldest + CAP + 8);
	CASE("oldest past tail", -EBADMSG, h->oldest = h->tail + 8);
	CASE("tail huge", -EBADMSG, h->tail = UINT64_MAX - 7);
	CASE("oldest unaligned", -EBADMSG, { h->oldest = 3; h->tail = 3 + 112; });
	CASE("tail unaligned", -EBADMSG, h->tail += 3);
	/* tail = oldest + capacity exactly is a full ring: allowed, but what it holds must be checked */
	CASE("full ring of garbage", -EBADMSG, h->tail = h->oldest + CAP);
#undef CASE
}

/* Record headers that lie: the consumer delivers the good records before them, then -EBADMSG. */
static void test_record_corruptions(void **state)
{
	(void)state;
	make_template();
#define CASE(what, good, stmt)                                                              \
	do {                                                                                \
		memcpy(seg, tmpl, SEG);                                                     \
		struct ring_shm_header *h = hdr_of(seg);                                     \
		(void)h;                                                                    \
		stmt;                                                                       \
		write_segment(seg, SEG);                                                    \
		int n_, rc_ = open_and_drain(&n_);                                          \
		if (rc_ != -EBADMSG || n_ != good)                                           \
			fail_msg("%s: %d records then %d (%s); expected %d then -EBADMSG", what, n_, rc_, \
				 fr_ring_strerror(rc_), good);                                 \
	} while (0)
	CASE("unknown type", 0, rec_at(seg, rec_off[0])->type = 0x12345678);
	CASE("zero type", 1, rec_at(seg, rec_off[1])->type = 0);
	CASE("len past tail", 2, rec_at(seg, rec_off[2])->len = 400);
	CASE("len 0xffffffff", 0, rec_at(seg, rec_off[0])->len = 0xffffffffu);
	CASE("len past data end", 1, rec_at(seg, rec_off[1])->len = CAP);
	CASE("pad len 0", 0, { rec_at(seg, rec_off[0])->type = RING_REC_PAD; rec_at(seg, rec_off[0])->len = 0; });
	CASE("pad len unaligned", 0, { rec_at(seg, rec_off[0])->type = RING_REC_PAD; rec_at(seg, rec_off[0])->len = 13; });
	CASE("pad len past tail", 1, { rec_at(seg, rec_off[1])->type = RING_REC_PAD; rec_at(seg, rec_off[1])->len = 4000; });
	CASE("pad len huge", 0, { rec_at(seg, rec_off[0])->type = RING_REC_PAD; rec_at(seg, rec_off[0])->len = 0xfffffff8u; });
	/* a record header in the last 8 bytes whose payload would cross the data end */
	CASE("record crosses the data end", 0, {
		h->oldest = CAP - 8;
		h->tail = CAP - 8 + 8 + 104;
		rec_at(seg, CAP - 8)->type = RING_REC_DATA;
		rec_at(seg, CAP - 8)->len = 100;
	});
	/* a record header that itself is cut by the tail */
	CASE("tail inside a record header", 0, h->tail = 4);
	CASE("tail inside a payload", 0, h->tail = 16);
#undef CASE
}

/* The same lies through fr_ring_skip_to_latest / fr_ring_peek_latest. */
static void test_latest_on_corrupt(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	make_template();
	memcpy(seg, tmpl, SEG);
	rec_at(seg, rec_off[1])->len = 0xfff0u;
	write_segment(seg, SEG);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_skip_to_latest(C), -EBADMSG);
	assert_int_equal(fr_ring_peek_latest(C, &d, &len, NULL, FR_RING_NO_WAIT), -EBADMSG);
	fr_ring_close(&C);
}

/* Scribbling over the segment while a consumer is attached: checked on every read. */
static void test_scribble_while_attached(void **state)
{
	char path[512];
	const void *d;
	size_t len;
	int fd;

	(void)state;
	make_template();
	assert_int_equal(fr_ring_open(&C, name), 0); /* P's real segment */
	rt_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, SEG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	struct ring_shm_header *h = hdr_of(m);

	/* immutable fields changed after open: the consumer uses what it checked */
	h->capacity = 1ull << 40;
	h->segment_size = UINT64_MAX;
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[0]);
	assert_int_equal(((const unsigned char *)d)[0], 'a');
	assert_int_equal(fr_ring_release(C), 0);
	h->capacity = CAP;
	h->segment_size = SEG;

	/* the next record's length grows past the tail */
	rec_at(m, rec_off[1])->len = 2000;
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EBADMSG);
	rec_at(m, rec_off[1])->len = (uint32_t)rec_len[1];
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[1]);
	assert_int_equal(fr_ring_release(C), 0);

	/* the consumer caches the tail: take the third record, so the next peek reloads it */
	uint64_t tail = h->tail;
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[2]);
	assert_int_equal(fr_ring_release(C), 0);
	/* the tail jumps more than a capacity ahead, to an unaligned place, or back;
	 * a corrupt ring may stay corrupt for this consumer, so each case gets a fresh one */
	const uint64_t bad_tails[] = { tail + 2 * CAP, tail + 8 * 3 + 1, tail - 64, UINT64_MAX };
	for (size_t i = 0; i < sizeof(bad_tails) / sizeof(bad_tails[0]); i++) {
		h->tail = tail;
		fr_ring_close(&C);
		int orc = fr_ring_open(&C, name);
		if (orc != 0)
			fail_msg("case %zu: reopen gave %s (oldest %llu tail %llu)", i, fr_ring_strerror(orc),
				 (unsigned long long)h->oldest, (unsigned long long)h->tail);
		/* a new every-consumer starts at the oldest record: read up to the tail first */
		while (fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT) == 0)
			assert_int_equal(fr_ring_release(C), 0);
		assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EAGAIN);
		h->tail = bad_tails[i];
		int rc = fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT);
		if (rc != -EBADMSG)
			fail_msg("tail %llu (good %llu): peek gave %d (%s)", (unsigned long long)bad_tails[i],
				 (unsigned long long)tail, rc, fr_ring_strerror(rc));
	}
	h->tail = tail;
	fr_ring_close(&C);
	assert_int_equal(fr_ring_open(&C, name), 0);

	/* meta: a length past the area, a sequence lock stuck odd: errors, no hang */
	unsigned char meta[FR_RING_META_SIZE];
	h->meta_len = 1000;
	assert_int_equal(fr_ring_get_meta(C, meta, sizeof(meta)), -EBADMSG);
	assert_int_equal(fr_ring_inspect_meta(name, meta, sizeof(meta)), -EBADMSG);
	h->meta_len = 0;
	h->meta_seq = 1;
	assert_true(fr_ring_get_meta(C, meta, sizeof(meta)) < 0);
	h->meta_seq = 2;
	assert_int_equal(fr_ring_get_meta(C, meta, sizeof(meta)), 0);

	/* stats of a scribbled header stay sane: used never exceeds the capacity */
	struct fr_ring_stats st;
	h->consumers[0].head = 5;
	h->tail = 1ull << 50;
	assert_int_equal(fr_ring_inspect(name, &st), 0); /* indices are not part of the checked header */
	assert_true(st.used <= st.capacity);
	fr_ring_get_stats(C, &st);
	assert_true(st.used <= st.capacity);
	h->consumers[0].head = tail;
	h->tail = tail;
	munmap(m, SEG);
}

/* A producer facing a consumer that wrote nonsense into its index (fan-out:
 * the others must not suffer from it). */
static void test_hostile_consumer_index(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP };
	char path[512], rec[1000] = { 0 };
	void *d;
	int fd, rc;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	while ((rc = fr_ring_write(P, rec, sizeof(rec), FR_RING_NO_WAIT)) == 0)
		;
	assert_int_equal(rc, -EAGAIN);
	rt_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, SEG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	struct ring_shm_header *h = hdr_of(m);
	/* A head that cannot be ("consumed" more than was ever written) does not
	 * gate the producer: the consumer that wrote it only loses its own
	 * records; the producer, and every other consumer, go on. */
	h->consumers[0].head = h->tail + 4096;
	rc = fr_ring_reserve(P, sizeof(rec), 8, &d, FR_RING_NO_WAIT);
	assert_int_equal(rc, 0);
	assert_int_equal(fr_ring_commit(P, sizeof(rec)), 0);
	/* the other consumers are still served in order */
	munmap(m, SEG);
}

/* Random scribbles over a valid segment's indices and record headers. */
static void test_random_scribbles(void **state)
{
	uint64_t rng = 12345;
	int opened = 0, delivered = 0;

	(void)state;
	make_template();
	for (int i = 0; i < 3000; i++) {
		memcpy(seg, tmpl, SEG);
		struct ring_shm_header *h = hdr_of(seg);
		int n = 1 + (int)(rt_rand(&rng) % 4);
		for (int k = 0; k < n; k++) {
			uint64_t r = rt_rand(&rng), v = rt_rand(&rng);
			switch (r % 6) {
			case 0: h->tail = (r >> 8) % 3 ? h->tail + (v % 64) - 32 : v; break;
			case 1: h->oldest = (r >> 8) % 3 ? (v % 64) & ~7ull : v; break;
			case 2: rec_at(seg, (v % (CAP / 8)) * 8)->len = (uint32_t)(r >> 32); break;
			case 3: rec_at(seg, rec_off[v % 3])->len = (uint32_t)((r >> 8) % 8192); break;
			case 4: rec_at(seg, rec_off[v % 3])->type = (r >> 8) % 2 ? RING_REC_PAD : (uint32_t)v; break;
			default: seg[RING_HEADER_SIZE + v % CAP] = (unsigned char)r; break;
			}
		}
		write_segment(seg, SEG);
		int got, rc = open_and_drain(&got);
		if (rc != -EAGAIN && rc != -EBADMSG && rc != -EPROTO)
			fail_msg("iteration %d: unexpected %d (%s)", i, rc, fr_ring_strerror(rc));
		opened += rc != -EBADMSG || got > 0;
		delivered += got;
	}
	print_message("random scribbles: %d of 3000 segments gave records (%d in all), none crashed\n", opened,
		      delivered);
}

/* Map the segment NAME read-write, as a second (hostile) writer would. */
static unsigned char *map_segment(size_t size)
{
	char path[512];
	rt_shm_path(path, sizeof(path), name);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	return m;
}

struct tail_flipper {
	unsigned char *m;
	atomic_bool stop;
	uint64_t flips;
};

/* A hostile producer: a pad over the whole data area at offset 0, and the
 * tail flipping between "empty" and 2^62 bytes ahead (aligned, so only the
 * range check can refuse it), waking the consumer each time. */
static void *flip_tail(void *arg)
{
	struct tail_flipper *f = arg;
	struct ring_shm_header *h = hdr_of(f->m);
	struct ring_record_header *rh = rec_at(f->m, 0);
	rh->type = RING_REC_PAD;
	rh->len = CAP;
	while (!atomic_load(&f->stop)) {
		atomic_store(&h->tail, (f->flips & 1) ? 1ull << 62 : 0);
		if (atomic_exchange(&h->consumers[0].sleeping, 0))
			syscall(SYS_futex, &h->consumers[0].sleeping, FUTEX_WAKE, 1, NULL, NULL, 0);
		f->flips++;
		for (volatile int i = 0; i < 200; i++)
			;
	}
	atomic_store(&h->tail, 0);
	return NULL;
}

/* Issue 9.4: every read of the shared tail is checked, on every path. The
 * wait's "is there data?" test cached the raw tail, unchecked; seen there
 * (rather than by the checked reload), a tail 2^62 ahead over a pad that
 * spans the whole area made fr_ring_peek walk that pad ~2^50 times: a call
 * with a timeout that never returned. */
static void test_unchecked_tail_after_wait(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP };
	const void *d;
	size_t len;
	pthread_t t;
	int corrupt = 0;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EAGAIN);
	struct tail_flipper f = { .m = map_segment(SEG), .flips = 0 };
	atomic_store(&f.stop, false);
	assert_int_equal(pthread_create(&t, NULL, flip_tail, &f), 0);
	rt_watchdog(30, "fr_ring_peek over a tail flipping to 2^62 ahead");
	for (int i = 0; i < 200; i++) {
		int rc = fr_ring_peek(C, &d, &len, 5 * 1000000ll);
		if (rc != -EBADMSG && rc != -ETIMEDOUT)
			fail_msg("call %d: fr_ring_peek gave %d (%s)", i, rc, fr_ring_strerror(rc));
		corrupt += rc == -EBADMSG;
	}
	rt_watchdog(0, NULL);
	atomic_store(&f.stop, true);
	pthread_join(t, NULL);
	print_message("%d of 200 peeks saw the bad tail (%llu flips)\n", corrupt, (unsigned long long)f.flips);
	assert_true(corrupt > 0);
	struct fr_ring_stats st;
	fr_ring_get_stats(C, &st);
	assert_true(st.used <= st.capacity);
	munmap(f.m, SEG);
}

/* Issue 9.7: a ring whose "producer" is no framering producer: its pid word
 * names a live process (our parent, init) or nobody, no end of stream, and
 * nobody holds the producer lock. A consumer waiting without a timeout
 * learns within the liveness bound that there is no producer. */
static void test_impostor_producer(void **state)
{
	const uint32_t pids[] = { (uint32_t)getppid(), 1, 0, (uint32_t)getpid() };
	const void *d;
	size_t len;
	char what[64];

	(void)state;
	make_template();
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		memcpy(seg, tmpl, SEG);
		hdr_of(seg)->producer_pid = pids[i];
		write_dead_segment(seg, SEG);
		assert_int_equal(fr_ring_open(&C, name), 0);
		for (int k = 0; k < 3; k++) { /* what it left is still read */
			assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), 0);
			assert_int_equal(fr_ring_release(C), 0);
		}
		snprintf(what, sizeof(what), "a consumer of a ring whose pid word is %u", pids[i]);
		rt_watchdog(10, what);
		assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_WAIT_FOREVER), -EOWNERDEAD);
		rt_watchdog(0, NULL);
		assert_false(fr_ring_peer_alive(C));
		struct fr_ring_stats st;
		assert_int_equal(fr_ring_inspect(name, &st), 0);
		assert_false(st.producer_alive);
		fr_ring_close(&C);
	}
}

/* Issue 9.8: liveness must not depend on seeing the peer in /proc. A live
 * producer whose pid cannot be seen from here (another pid namespace, or
 * /proc mounted hidepid) is alive: the consumer waits for it instead of
 * reporting it dead, does not remove its name on close, and a second
 * consumer cannot take the slot of a live one it cannot see either. */
static void test_unseen_peers_are_alive(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP, .max_consumers = 1 };
	const uint32_t unseen = 4194303; /* above any pid_max: no such process here */
	const void *d;
	size_t len;
	fr_ring_t *c2 = NULL;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	const void *base;
	fr_ring_mapping(P, &base, &len);
	struct ring_shm_header *h = (struct ring_shm_header *)base;
	atomic_store(&h->producer_pid, unseen);
	assert_int_equal(fr_ring_open(&C, name), 0);
	assert_true(fr_ring_peer_alive(C));
	assert_int_equal(fr_ring_peek(C, &d, &len, 500 * 1000000ll), -ETIMEDOUT);
	struct fr_ring_stats st;
	assert_int_equal(fr_ring_inspect(name, &st), 0);
	assert_true(st.producer_alive);
	assert_int_equal(st.producer_pid, (pid_t)unseen);
	/* the consumer's pid is unseen too: its slot stays its own */
	atomic_store(&h->consumers[0].pid, unseen);
	assert_int_equal(fr_ring_open(&c2, name), -EBUSY);
	assert_true(fr_ring_peer_alive(P));
	fr_ring_close(&C);
	assert_true(rt_shm_exists(name)); /* a live producer's name is never removed */
	assert_int_equal(fr_ring_unlink_stale(name), -EBUSY);
	assert_true(rt_shm_exists(name));
	/* and with the slot free, the next consumer gets it */
	assert_int_equal(fr_ring_open(&c2, name), 0);
	fr_ring_close(&c2);
}

/* Issue 9.12: a segment claiming a huge capacity must not make the consumer
 * allocate it. A sparse file of the claimed size is refused (a producer
 * allocates its whole segment), and opening it allocates nothing. */
static void test_sparse_huge_segment(void **state)
{
	const uint64_t caps[] = { 256ull << 20, 1ull << 32, 1ull << 40 };
	char path[512];

	(void)state;
	make_template();
	rt_shm_path(path, sizeof(path), name);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		memcpy(seg, tmpl, SEG);
		struct ring_shm_header *h = hdr_of(seg);
		h->capacity = caps[i];
		h->segment_size = RING_HEADER_SIZE + caps[i];
		write_segment(seg, RING_HEADER_SIZE);
		if (truncate(path, (off_t)(RING_HEADER_SIZE + caps[i])) < 0) {
			print_message("capacity %llu: the file system refused a file that large; skipped\n",
				      (unsigned long long)caps[i]);
			continue;
		}
		struct stat before, after;
		assert_int_equal(stat(path, &before), 0);
		expect_open_error("sparse segment", -EBADMSG);
		fr_ring_t *p2 = NULL;
		assert_int_equal(fr_ring_create(&p2, name, NULL), -EEXIST); /* not a ring we would take over */
		assert_int_equal(stat(path, &after), 0);
		if (after.st_blocks > before.st_blocks + 64)
			fail_msg("capacity %llu: opening allocated %lld blocks", (unsigned long long)caps[i],
				 (long long)(after.st_blocks - before.st_blocks));
	}
}

/* Fan-out: a hostile consumer scribbles the consumer table (the roster
 * masks, other slots' heads and holds) while the producer writes and a
 * legitimate every-consumer reads. The producer neither writes out of
 * bounds nor stops for good; the legitimate consumer loses nothing and reads
 * nothing corrupt. Fake consumers that gate are reaped (no lock holds their
 * slots); fake holds cost room, never a wait. */
static void test_hostile_consumer_table(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP, .max_consumers = 6 };
	uint64_t rng = 4242, next_write = 0, next_read = 0, stalls = 0;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0); /* slot 0 */
	unsigned char *m = map_segment(SEG);
	struct ring_shm_header *h = hdr_of(m);
	rt_watchdog(120, "a producer facing a scribbled consumer table");
	for (int round = 0; round < 3000; round++) {
		uint64_t r = rt_rand(&rng), v = rt_rand(&rng), tail = atomic_load(&h->tail);
		unsigned slot = 1 + (unsigned)(r % 5); /* never the legitimate consumer's own */
		switch ((r >> 8) % 7) {
		case 0: atomic_fetch_or(&h->attached, (uint32_t)v); break;
		case 1: atomic_store(&h->live, (uint32_t)v & ~1u); break; /* the legitimate one's own mode stays */
		case 2: atomic_store(&h->consumers[slot].head, (v >> 8) % 2 ? tail - (v % CAP & ~7ull) : v); break;
		case 3: atomic_store(&h->consumers[slot].hold, (v >> 8) % 2 ? tail - (v % CAP & ~7ull) + 1 : v); break;
		case 4: atomic_store(&h->consumers[slot].sleeping, (uint32_t)v); break;
		case 5: atomic_store(&h->attached, 1u); atomic_store(&h->live, 0u); break; /* sane again */
		default: atomic_store(&h->consumer_attaches, v); break;
		}
		/* a few records (a short timeout, so a gated producer looks at liveness) */
		for (int k = 0; k < 3; k++) {
			unsigned char rec[300];
			size_t len = 8 + rt_rand(&rng) % (sizeof(rec) - 8);
			memcpy(rec, &next_write, 8);
			for (size_t i = 8; i < len; i++)
				rec[i] = (unsigned char)(next_write + i);
			int rc = fr_ring_write(P, rec, len, 2 * 1000000ll);
			if (rc == -ETIMEDOUT || rc == -EAGAIN) {
				stalls++;
				break;
			}
			if (rc != 0)
				fail_msg("round %d: fr_ring_write gave %s", round, fr_ring_strerror(rc));
			next_write++;
		}
		/* the legitimate consumer reads all there is, in order, intact */
		const void *d;
		size_t len;
		int rc;
		while ((rc = fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT)) == 0) {
			uint64_t seq;
			memcpy(&seq, d, 8);
			if (seq != next_read)
				fail_msg("round %d: read record %llu, expected %llu", round, (unsigned long long)seq,
					 (unsigned long long)next_read);
			for (size_t i = 8; i < len; i++)
				if (((const unsigned char *)d)[i] != (unsigned char)(seq + i))
					fail_msg("round %d: record %llu corrupt at byte %zu", round, (unsigned long long)seq, i);
			next_read++;
			assert_int_equal(fr_ring_release(C), 0);
		}
		if (rc != -EAGAIN)
			fail_msg("round %d: fr_ring_peek gave %s", round, fr_ring_strerror(rc));
	}
	rt_watchdog(0, NULL);
	atomic_store(&h->attached, 1u);
	atomic_store(&h->live, 0u);
	struct fr_ring_stats st;
	fr_ring_get_stats(P, &st);
	print_message("consumer table scribbles: %llu records through, %llu stalls, %llu fake consumers reaped\n",
		      (unsigned long long)next_read, (unsigned long long)stalls, (unsigned long long)st.consumers_reaped);
	assert_int_equal(next_read, next_write);
	assert_true(next_write > 3000); /* it kept going */
	munmap(m, SEG);
}

/* Shrink the segment NAME to SIZE bytes, as a hostile or buggy peer may. */
static void shrink_segment(size_t size)
{
	char path[512];
	rt_shm_path(path, sizeof(path), name);
	assert_int_equal(truncate(path, (off_t)size), 0);
}

/* A peer shrinks the segment while both sides have it mapped: touching the
 * lost pages raises SIGBUS. Each side gets -EFAULT instead (also a wait that
 * would block forever), and a data pointer handed out before reads zeros. */
static void test_shrunk_under_mapping(void **state)
{
	const size_t new_sizes[] = { 0, RING_HEADER_SIZE /* the header stays, the data goes */ };
	struct fr_ring_create_opts o = { .capacity = CAP };
	unsigned char payload[200];
	const void *d;
	size_t len;
	void *w;

	(void)state;
	memset(payload, 0x5a, sizeof(payload));
	for (size_t i = 0; i < sizeof(new_sizes) / sizeof(new_sizes[0]); i++) {
		assert_int_equal(fr_ring_create(&P, name, &o), 0);
		assert_int_equal(fr_ring_open(&C, name), 0);
		assert_int_equal(fr_ring_write(P, payload, sizeof(payload), FR_RING_NO_WAIT), 0);
		assert_int_equal(fr_ring_write(P, payload, sizeof(payload), FR_RING_NO_WAIT), 0);
		assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), 0);
		assert_int_equal(((const volatile unsigned char *)d)[0], 0x5a);

		shrink_segment(new_sizes[i]);
		assert_int_equal(((const volatile unsigned char *)d)[len - 1], 0);
		assert_int_equal(fr_ring_release(C), -EFAULT);
		assert_int_equal(fr_ring_peek(C, &d, &len, -1), -EFAULT);
		assert_int_equal(fr_ring_peek(C, &d, &len, FR_RING_NO_WAIT), -EFAULT);

		/* The producer may still reserve from what it knew; writing there
		 * faults, and the commit says so. */
		int rc = fr_ring_reserve(P, 64, 8, &w, FR_RING_NO_WAIT);
		if (rc == 0) {
			memset(w, 1, 64);
			rc = fr_ring_commit(P, 64);
		}
		assert_int_equal(rc, -EFAULT);
		assert_int_equal(fr_ring_wait_drained(P, -1), -EFAULT);
		assert_string_equal(fr_ring_strerror(-EFAULT),
				    "the peer shrank the ring segment: its memory now reads as zeros");
		fr_ring_close(&C);
		fr_ring_close(&P);
	}
}

/* A file of our own, mapped and then shrunk: touching it raises SIGBUS. */
static volatile unsigned char *shrunk_file_mapping(void)
{
	char path[] = "/tmp/framering-sigbus-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 4096) < 0)
		_exit(3);
	unlink(path);
	volatile unsigned char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || ftruncate(fd, 0) < 0)
		_exit(3);
	close(fd);
	return m;
}

/* The guard takes only faults inside ring mappings: any other SIGBUS still
 * ends the process as it would without the library. Run in a child. */
static void test_other_sigbus_still_fatal(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP };
	(void)state;
	for (int how = 0; how < 2; how++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* As in a plain program (cmocka catches SIGBUS to report a
			 * crashing test; its handler would resume the child). */
			signal(SIGBUS, SIG_DFL);
			fr_ring_t *p = NULL;
			if (fr_ring_create(&p, name, &o) < 0) /* installs the handler */
				_exit(3);
			if (how == 0) {
				volatile unsigned char *m = shrunk_file_mapping();
				(void)m[0];
			} else {
				raise(SIGBUS);
			}
			_exit(0); /* reached only if the SIGBUS was swallowed */
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* Killed by SIGBUS, or (under a sanitizer, whose handler was there
		 * first) a report and a failing exit; never a normal exit 0 or a
		 * setup failure (3). */
		if (WIFEXITED(status))
			assert_true(WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3);
		else
			assert_int_equal(WTERMSIG(status), SIGBUS);
		rt_cleanup();
	}
}

/* A program's own SIGBUS handler, installed before any ring: it recovers
 * faults in its own mapping (zero pages over it) and treats any other
 * SIGBUS as fatal (abort), as a handler that knows nothing of rings would. */
static volatile void *own_map;
static volatile size_t own_len;
static volatile sig_atomic_t own_faults;

static void own_sigbus_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	uintptr_t a = (uintptr_t)si->si_addr, start = (uintptr_t)own_map;
	if (si->si_code > 0 && a - start < own_len) {
		mmap((void *)start, own_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		own_faults++;
		return;
	}
	abort();
}

static const struct fr_ring_create_opts guard_opts = { .capacity = CAP };

/* In a child: own_sigbus_handler in SIGBUS's place (it aborts on any fault but its own mapping's). */
static void put_own_sigbus_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = own_sigbus_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* In a child: shrink ring NAME under producer P (and consumer C, if any);
 * their next access must be the guard's -EFAULT. Exits 0 if so. */
static void __attribute__((noreturn)) shrink_and_exit_on_efault(fr_ring_t *p, fr_ring_t *c)
{
	char path[512];
	const void *d;
	size_t len;
	rt_shm_path(path, sizeof(path), name);
	if (truncate(path, 0) < 0)
		_exit(3);
	if (fr_ring_write(p, "x", 1, FR_RING_NO_WAIT) != -EFAULT)
		_exit(6);
	if (c && fr_ring_peek(c, &d, &len, FR_RING_NO_WAIT) != -EFAULT)
		_exit(7);
	_exit(0);
}

static void expect_guarded_child(pid_t pid)
{
	int rc = rt_wait_child(pid);
	if (rc != 0)
		fail_msg("child ended with %d (%s)", rc,
			 rc == 128 + SIGABRT ? "the shrunk ring's fault reached the program's handler: guard off" : "see code");
	rt_cleanup();
}

/* Issue 9.13: an unrelated SIGBUS (handled by the program's own handler)
 * switched the ring guard off for good: the guard stepped aside by putting
 * the old handler back, and a shrunk ring afterwards went to that handler,
 * which aborted. Now the guard forwards the foreign fault and stays. */
static void test_guard_survives_foreign_sigbus(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		put_own_sigbus_handler();
		fr_ring_t *p = NULL, *c = NULL;
		if (fr_ring_create(&p, name, &guard_opts) < 0 || fr_ring_open(&c, name) < 0) /* the guard goes in */
			_exit(3);
		for (int i = 0; i < 3; i++) { /* foreign faults, handled by the program's handler */
			volatile unsigned char *m = shrunk_file_mapping();
			own_map = (void *)m;
			own_len = 4096;
			if (m[0] != 0)
				_exit(4);
		}
		if (own_faults != 3)
			_exit(5);
		shrink_and_exit_on_efault(p, c); /* the ring's fault is still the guard's, not the program's */
	}
	expect_guarded_child(pid);
}

/* Leave different bytes on the stack below us (where the library's frames go next). */
static __attribute__((noinline)) void scribble_stack(int value)
{
	volatile unsigned char junk[8192];
	for (size_t k = 0; k < sizeof(junk); k++)
		junk[k] = (unsigned char)(value + (int)k);
}

/* A program (or a test framework, as cmocka does around every test) that
 * puts the same SIGBUS handler back again and again. The guard recorded
 * each as a new handler: it compared whole struct sigactions, whose mask
 * beyond the kernel's words is whatever was on the stack. After 16 it gave
 * up silently, and a shrunk ring's fault went to the program's handler
 * (this test, and test_guard_survives_foreign_sigbus once a test was added
 * before it, under ASan+UBSan in CI). */
static void test_guard_survives_its_handler_put_back_often(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fr_ring_t *p = NULL, *c = NULL;
		if (fr_ring_create(&p, name, &guard_opts) < 0)
			_exit(3);
		for (int i = 0; i < 40; i++) {
			put_own_sigbus_handler();
			scribble_stack(i);
			if (fr_ring_open(&c, name) < 0) /* puts the guard back in */
				_exit(3);
			fr_ring_close(&c);
		}
		shrink_and_exit_on_efault(p, NULL);
	}
	expect_guarded_child(pid);
}

/* A handler installed after ours that hands unknown faults back to what it
 * replaced (ours), with ours put back over it by a later ring: forwarding
 * each to the other would recurse until the stack overflows. The loop is
 * seen, and the fault gets the default action: death by SIGBUS. */
static struct sigaction chained_before;

static void chaining_handler(int sig, siginfo_t *si, void *ctx)
{
	if (chained_before.sa_flags & SA_SIGINFO)
		chained_before.sa_sigaction(sig, si, ctx);
}

static void test_guard_handler_loop_ends(void **state)
{
	struct fr_ring_create_opts o = { .capacity = CAP };
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		fr_ring_t *p1 = NULL, *p2 = NULL;
		char name2[300];
		snprintf(name2, sizeof(name2), "%s-2", name);
		if (fr_ring_create(&p1, name, &o) < 0) /* ours, over the default */
			_exit(3);
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = chaining_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &chained_before); /* theirs, over ours */
		if (fr_ring_create(&p2, name2, &o) < 0) /* ours again, over theirs */
			_exit(3);
		volatile unsigned char *m = shrunk_file_mapping();
		(void)m[0];
		_exit(0); /* the fault was swallowed */
	}
	rt_track_child(pid);
	rt_watchdog(20, "a SIGBUS passed back and forth between two handlers");
	int rc = rt_wait_child(pid);
	rt_watchdog(0, NULL);
	if (rc != 128 + SIGBUS)
		fail_msg("child ended with %d, expected death by SIGBUS (%d)", rc, 128 + SIGBUS);
	rt_cleanup();
}

struct churn {
	atomic_bool stop;
	char name[300];
	int faults;
};

/* Rings made, shrunk, faulted on and closed, over and over. */
static void *fault_churn(void *arg)
{
	struct churn *ch = arg;
	struct fr_ring_create_opts o = { .capacity = CAP };
	char path[512];
	rt_shm_path(path, sizeof(path), ch->name);
	while (!atomic_load(&ch->stop)) {
		fr_ring_t *p = NULL;
		if (fr_ring_create(&p, ch->name, &o) < 0)
			continue;
		const void *base;
		size_t size;
		fr_ring_mapping(p, &base, &size);
		if (truncate(path, 0) == 0 && ((const volatile unsigned char *)base)[RING_HEADER_SIZE] == 0 &&
		    fr_ring_write(p, "x", 1, FR_RING_NO_WAIT) == -EFAULT)
			ch->faults++;
		fr_ring_close(&p);
	}
	return NULL;
}

/* Issue 9.13: a slot retired (unguard + munmap) while the handler runs
 * must never get zero pages mapped over address space handed out again.
 * Stress: one thread faults on shrunk rings while this one maps rings and
 * checks that what it wrote is still there. Not deterministic: a hunt. */
static void test_guard_churn(void **state)
{
	struct churn ch = { .faults = 0 };
	struct fr_ring_create_opts o = { .capacity = CAP };
	unsigned char pattern[512];
	pthread_t t;
	(void)state;
	atomic_store(&ch.stop, false);
	snprintf(ch.name, sizeof(ch.name), "%s-churn", name);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7 + 1);
	assert_int_equal(pthread_create(&t, NULL, fault_churn, &ch), 0);
	uint64_t end = rt_now_ns() + 1500000000ull;
	int rounds = 0;
	while (rt_now_ns() < end) {
		fr_ring_t *p = NULL;
		void *d;
		assert_int_equal(fr_ring_create(&p, name, &o), 0);
		assert_int_equal(fr_ring_reserve(p, sizeof(pattern), 8, &d, FR_RING_NO_WAIT), 0);
		memcpy(d, pattern, sizeof(pattern));
		sched_yield();
		if (memcmp(d, pattern, sizeof(pattern)) != 0)
			fail_msg("round %d: a live ring's memory changed under it", rounds);
		assert_int_equal(fr_ring_commit(p, sizeof(pattern)), 0);
		assert_int_equal(fr_ring_close(&p), 0);
		rounds++;
	}
	atomic_store(&ch.stop, true);
	pthread_join(t, NULL);
	print_message("guard churn: %d rings checked while %d shrunk rings faulted\n", rounds, ch.faults);
	assert_true(ch.faults > 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_template_is_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_liveness_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_flags_flipped_after_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_on_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scribble_while_attached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_consumer_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_scribbles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchecked_tail_after_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impostor_producer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unseen_peers_are_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_huge_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_consumer_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shrunk_under_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sigbus_still_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_survives_foreign_sigbus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_survives_its_handler_put_back_often, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_handler_loop_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_churn, setup, teardown),
	};

	rt_parse_args(argc, argv, "Hostile segments: corrupt headers, indices and records give -EBADMSG/-EPROTO, a shrunk segment -EFAULT; never a crash.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
