/* test_ring_hostile.c - consumers (and a producer) facing corrupt or shrunk segments: errors (-EBADMSG/-EPROTO/-EFAULT), never a crash. */
#include <errno.h>
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

static ring_t *P, *C;
static char name[256];
static _Alignas(4096) unsigned char tmpl[SEG]; /* a valid segment: live producer (us), three records */
static _Alignas(4096) unsigned char seg[SEG];
static const size_t rec_len[3] = { 100, 200, 300 };
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
	ring_close(&C);
	ring_close(&P);
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
	struct ring_create_opts o = { .capacity = CAP };
	const void *base;
	size_t size;
	unsigned char buf[300];
	void *d;

	assert_int_equal(ring_create(&P, name, &o), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		assert_int_equal(ring_reserve(P, rec_len[i], 8, &d, RING_NO_WAIT), 0);
		memcpy(d, buf, rec_len[i]);
		assert_int_equal(ring_commit(P, rec_len[i]), 0);
	}
	ring_mapping(P, &base, &size);
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
	assert_int_equal(hdr_of(tmpl)->head, 0);
	assert_int_equal(hdr_of(tmpl)->magic, RING_MAGIC);
	/* P stays open: the copy's producer (this process) is alive. Its own
	 * segment is replaced below by files we write under the same name. */
}

/* Replace /dev/shm/NAME by SIZE bytes of BUF. */
static void write_segment(const unsigned char *buf, size_t size)
{
	char path[512];
	int fd;

	rt_shm_path(path, sizeof(path), name);
	unlink(path);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
}

/* Open as consumer and read until an error; every record returned must lie
 * in the data area. Returns the open error, or the first peek error. */
static int open_and_drain(int *records)
{
	ring_t *c = NULL;
	const void *base, *d;
	size_t size, len;
	int rc = ring_open(&c, name);

	*records = 0;
	if (rc < 0)
		return rc;
	ring_mapping(c, &base, &size);
	for (int i = 0; i < 100; i++) {
		rc = ring_peek(c, &d, &len, RING_NO_WAIT);
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
		assert_int_equal(ring_release(c), 0);
	}
	ring_close(&c);
	return rc;
}

static void expect_open_error(const char *what, int want)
{
	int n, rc = open_and_drain(&n);
	struct ring_stats st;

	if (rc != want)
		fail_msg("%s: ring_open/peek gave %d (%s), expected %d (%s)", what, rc, ring_strerror(rc), want,
			 ring_strerror(want));
	assert_int_equal(ring_inspect(name, &st), want);
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
	/* a ring of another version, or a corrupt one, is not reclaimed by ring_create */
	memcpy(seg, tmpl, SEG);
	hdr_of(seg)->layout_version = RING_LAYOUT_VERSION + 1;
	hdr_of(seg)->producer_owner = 0; /* not alive: still not ours to remove */
	write_segment(seg, SEG);
	ring_t *p2 = NULL;
	assert_int_equal(ring_create(&p2, name, NULL), -EEXIST);
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
			fail_msg("%s: got %d (%s) after %d records, expected %s", what, rc_, ring_strerror(rc_), n_, ring_strerror(want)); \
	} while (0)
	CASE("tail - head > capacity", -EBADMSG, h->tail = h->head + CAP + 8);
	CASE("head past tail", -EBADMSG, h->head = h->tail + 8);
	CASE("tail huge", -EBADMSG, h->tail = UINT64_MAX - 7);
	CASE("head unaligned", -EBADMSG, { h->head = 3; h->tail = 3 + 112; });
	CASE("tail unaligned", -EBADMSG, h->tail += 3);
	/* tail = head + capacity exactly is a full ring: allowed, but what it holds must be checked */
	CASE("full ring of garbage", -EBADMSG, h->tail = h->head + CAP);
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
				 ring_strerror(rc_), good);                                 \
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
		h->head = CAP - 8;
		h->tail = CAP - 8 + 8 + 104;
		rec_at(seg, CAP - 8)->type = RING_REC_DATA;
		rec_at(seg, CAP - 8)->len = 100;
	});
	/* a record header that itself is cut by the tail */
	CASE("tail inside a record header", 0, h->tail = 4);
	CASE("tail inside a payload", 0, h->tail = 16);
#undef CASE
}

/* The same lies through ring_skip_to_latest / ring_peek_latest. */
static void test_latest_on_corrupt(void **state)
{
	const void *d;
	size_t len;

	(void)state;
	make_template();
	memcpy(seg, tmpl, SEG);
	rec_at(seg, rec_off[1])->len = 0xfff0u;
	write_segment(seg, SEG);
	assert_int_equal(ring_open(&C, name), 0);
	assert_int_equal(ring_skip_to_latest(C), -EBADMSG);
	assert_int_equal(ring_peek_latest(C, &d, &len, NULL, RING_NO_WAIT), -EBADMSG);
	ring_close(&C);
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
	assert_int_equal(ring_open(&C, name), 0); /* P's real segment */
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
	assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[0]);
	assert_int_equal(((const unsigned char *)d)[0], 'a');
	assert_int_equal(ring_release(C), 0);
	h->capacity = CAP;
	h->segment_size = SEG;

	/* the next record's length grows past the tail */
	rec_at(m, rec_off[1])->len = 2000;
	assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), -EBADMSG);
	rec_at(m, rec_off[1])->len = (uint32_t)rec_len[1];
	assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[1]);
	assert_int_equal(ring_release(C), 0);

	/* the consumer caches the tail: take the third record, so the next peek reloads it */
	uint64_t tail = h->tail;
	assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), 0);
	assert_int_equal(len, rec_len[2]);
	assert_int_equal(ring_release(C), 0);
	/* the tail jumps more than a capacity ahead, to an unaligned place, or back;
	 * a corrupt ring may stay corrupt for this consumer, so each case gets a fresh one */
	const uint64_t bad_tails[] = { tail + 2 * CAP, tail + 8 * 3 + 1, tail - 64, UINT64_MAX };
	for (size_t i = 0; i < sizeof(bad_tails) / sizeof(bad_tails[0]); i++) {
		h->tail = tail;
		ring_close(&C);
		int orc = ring_open(&C, name);
		if (orc != 0)
			fail_msg("case %zu: reopen gave %s (head %llu tail %llu)", i, ring_strerror(orc),
				 (unsigned long long)h->head, (unsigned long long)h->tail);
		assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), -EAGAIN);
		h->tail = bad_tails[i];
		int rc = ring_peek(C, &d, &len, RING_NO_WAIT);
		if (rc != -EBADMSG)
			fail_msg("tail %llu (good %llu): peek gave %d (%s)", (unsigned long long)bad_tails[i],
				 (unsigned long long)tail, rc, ring_strerror(rc));
	}
	h->tail = tail;
	ring_close(&C);
	assert_int_equal(ring_open(&C, name), 0);

	/* meta: a length past the area, a sequence lock stuck odd: errors, no hang */
	unsigned char meta[RING_META_SIZE];
	h->meta_len = 1000;
	assert_int_equal(ring_get_meta(C, meta, sizeof(meta)), -EBADMSG);
	assert_int_equal(ring_inspect_meta(name, meta, sizeof(meta)), -EBADMSG);
	h->meta_len = 0;
	h->meta_seq = 1;
	assert_true(ring_get_meta(C, meta, sizeof(meta)) < 0);
	h->meta_seq = 2;
	assert_int_equal(ring_get_meta(C, meta, sizeof(meta)), 0);

	/* stats of a scribbled header stay sane: used never exceeds the capacity */
	struct ring_stats st;
	h->head = 5;
	h->tail = 1ull << 50;
	assert_int_equal(ring_inspect(name, &st), 0); /* indices are not part of the checked header */
	assert_true(st.used <= st.capacity);
	ring_get_stats(C, &st);
	assert_true(st.used <= st.capacity);
	h->head = tail;
	h->tail = tail;
	munmap(m, SEG);
}

/* A producer facing a consumer that wrote nonsense into its index. */
static void test_hostile_consumer_index(void **state)
{
	struct ring_create_opts o = { .capacity = CAP };
	char path[512], rec[1000] = { 0 };
	void *d;
	int fd, rc;

	(void)state;
	assert_int_equal(ring_create(&P, name, &o), 0);
	assert_int_equal(ring_open(&C, name), 0);
	while ((rc = ring_write(P, rec, sizeof(rec), RING_NO_WAIT)) == 0)
		;
	assert_int_equal(rc, -EAGAIN);
	rt_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, SEG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	struct ring_shm_header *h = hdr_of(m);
	uint64_t head = h->head;
	h->head = h->tail + 4096; /* "consumed" more than was ever written */
	rc = ring_reserve(P, sizeof(rec), 8, &d, RING_NO_WAIT);
	assert_int_equal(rc, -EBADMSG);
	h->head = head;
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
			case 1: h->head = (r >> 8) % 3 ? (v % 64) & ~7ull : v; break;
			case 2: rec_at(seg, (v % (CAP / 8)) * 8)->len = (uint32_t)(r >> 32); break;
			case 3: rec_at(seg, rec_off[v % 3])->len = (uint32_t)((r >> 8) % 8192); break;
			case 4: rec_at(seg, rec_off[v % 3])->type = (r >> 8) % 2 ? RING_REC_PAD : (uint32_t)v; break;
			default: seg[RING_HEADER_SIZE + v % CAP] = (unsigned char)r; break;
			}
		}
		write_segment(seg, SEG);
		int got, rc = open_and_drain(&got);
		if (rc != -EAGAIN && rc != -EBADMSG && rc != -EPROTO)
			fail_msg("iteration %d: unexpected %d (%s)", i, rc, ring_strerror(rc));
		opened += rc != -EBADMSG || got > 0;
		delivered += got;
	}
	print_message("random scribbles: %d of 3000 segments gave records (%d in all), none crashed\n", opened,
		      delivered);
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
	struct ring_create_opts o = { .capacity = CAP };
	unsigned char payload[200];
	const void *d;
	size_t len;
	void *w;

	(void)state;
	memset(payload, 0x5a, sizeof(payload));
	for (size_t i = 0; i < sizeof(new_sizes) / sizeof(new_sizes[0]); i++) {
		assert_int_equal(ring_create(&P, name, &o), 0);
		assert_int_equal(ring_open(&C, name), 0);
		assert_int_equal(ring_write(P, payload, sizeof(payload), RING_NO_WAIT), 0);
		assert_int_equal(ring_write(P, payload, sizeof(payload), RING_NO_WAIT), 0);
		assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), 0);
		assert_int_equal(((const volatile unsigned char *)d)[0], 0x5a);

		shrink_segment(new_sizes[i]);
		assert_int_equal(((const volatile unsigned char *)d)[len - 1], 0);
		assert_int_equal(ring_release(C), -EFAULT);
		assert_int_equal(ring_peek(C, &d, &len, -1), -EFAULT);
		assert_int_equal(ring_peek(C, &d, &len, RING_NO_WAIT), -EFAULT);

		/* The producer may still reserve from what it knew; writing there
		 * faults, and the commit says so. */
		int rc = ring_reserve(P, 64, 8, &w, RING_NO_WAIT);
		if (rc == 0) {
			memset(w, 1, 64);
			rc = ring_commit(P, 64);
		}
		assert_int_equal(rc, -EFAULT);
		assert_int_equal(ring_wait_drained(P, -1), -EFAULT);
		assert_string_equal(ring_strerror(-EFAULT),
				    "the peer shrank the ring segment: its memory now reads as zeros");
		ring_close(&C);
		ring_close(&P);
	}
}

/* The guard takes only faults inside ring mappings: any other SIGBUS still
 * ends the process as it would without the library. Run in a child. */
static void test_other_sigbus_still_fatal(void **state)
{
	struct ring_create_opts o = { .capacity = CAP };
	(void)state;
	for (int how = 0; how < 2; how++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* As in a plain program (cmocka catches SIGBUS to report a
			 * crashing test; its handler would resume the child). */
			signal(SIGBUS, SIG_DFL);
			ring_t *p = NULL;
			if (ring_create(&p, name, &o) < 0) /* installs the handler */
				_exit(3);
			if (how == 0) {
				/* A file of ours, mapped and then shrunk. */
				char path[] = "/tmp/framering-sigbus-XXXXXX";
				int fd = mkstemp(path);
				if (fd < 0 || ftruncate(fd, 4096) < 0)
					_exit(3);
				unlink(path);
				volatile unsigned char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
				if (m == MAP_FAILED || ftruncate(fd, 0) < 0)
					_exit(3);
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_template_is_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_on_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scribble_while_attached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_consumer_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_scribbles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shrunk_under_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sigbus_still_fatal, setup, teardown),
	};

	rt_parse_args(argc, argv, "Hostile segments: corrupt headers, indices and records give -EBADMSG/-EPROTO, a shrunk segment -EFAULT; never a crash.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
