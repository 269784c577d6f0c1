/* test_frame.c - cmocka tests of frame.h: sizes of every format, header init/validate with every corruption, ring round trip. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "ring.h"
#include "ringtest.h"

static fr_ring_t *P, *C;
static char name[256];

static int setup(void **state)
{
	(void)state;
	P = C = NULL;
	rt_name(name, sizeof(name), "frame");
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

/* Expected packed image size, computed independently of the library. */
static size_t expect_size(uint32_t f, uint64_t w, uint64_t h)
{
	uint64_t cw = (w + 1) / 2, ch = (h + 1) / 2;

	if (f == FR_FRAME_FMT_BGR24 || f == FR_FRAME_FMT_RGB24)
		return (size_t)(w * h * 3);
	if (f == FR_FRAME_FMT_GRAY8)
		return (size_t)(w * h);
	if (f == FR_FRAME_FMT_I420)
		return (size_t)(w * h + 2 * cw * ch);
	if (f == FR_FRAME_FMT_NV12)
		return (size_t)(w * h + 2 * cw * ch);
	return 0;
}

static const uint32_t formats[] = { FR_FRAME_FMT_BGR24, FR_FRAME_FMT_RGB24, FR_FRAME_FMT_GRAY8, FR_FRAME_FMT_I420,
				    FR_FRAME_FMT_NV12 };
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))
static const uint32_t nplanes[] = { 1, 1, 1, 3, 2 };

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(fr_frame_format_from_name("bgr24"), FR_FRAME_FMT_BGR24);
	assert_int_equal(fr_frame_format_from_name("BGR24"), FR_FRAME_FMT_BGR24);
	assert_int_equal(fr_frame_format_from_name("rgb24"), FR_FRAME_FMT_RGB24);
	assert_int_equal(fr_frame_format_from_name("gray"), FR_FRAME_FMT_GRAY8);
	assert_int_equal(fr_frame_format_from_name("Gray8"), FR_FRAME_FMT_GRAY8);
	assert_int_equal(fr_frame_format_from_name("i420"), FR_FRAME_FMT_I420);
	assert_int_equal(fr_frame_format_from_name("yuv420p"), FR_FRAME_FMT_I420);
	assert_int_equal(fr_frame_format_from_name("NV12"), FR_FRAME_FMT_NV12);
	assert_int_equal(fr_frame_format_from_name("yuyv422"), 0);
	assert_int_equal(fr_frame_format_from_name(""), 0);
	assert_int_equal(fr_frame_format_from_name(NULL), 0);
	assert_string_equal(fr_frame_format_name(FR_FRAME_FMT_BGR24), "bgr24");
	assert_string_equal(fr_frame_format_name(FR_FRAME_FMT_RGB24), "rgb24");
	assert_string_equal(fr_frame_format_name(FR_FRAME_FMT_GRAY8), "gray8");
	assert_string_equal(fr_frame_format_name(FR_FRAME_FMT_I420), "i420");
	assert_string_equal(fr_frame_format_name(FR_FRAME_FMT_NV12), "nv12");
	assert_null(fr_frame_format_name(FR_FRAME_FOURCC('Y', 'U', 'Y', 'V')));
	assert_null(fr_frame_format_name(0));
	assert_int_equal(sizeof(struct fr_frame_header), FR_FRAME_HEADER_SIZE);
	assert_int_equal(offsetof(struct fr_frame_header, plane), 64);
	assert_int_equal(offsetof(struct fr_frame_header, image_size), 96);
}

static void test_image_size(void **state)
{
	const uint32_t dims[][2] = { { 1, 1 }, { 2, 2 }, { 3, 3 }, { 1, 7 }, { 7, 1 }, { 641, 479 }, { 640, 480 },
				     { 1920, 1080 }, { 1919, 1081 }, { FR_FRAME_MAX_DIM, FR_FRAME_MAX_DIM },
				     { FR_FRAME_MAX_DIM - 1, 3 } };

	(void)state;
	for (size_t f = 0; f < NFORMATS; f++) {
		for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
			size_t want = expect_size(formats[f], dims[i][0], dims[i][1]);
			size_t got = fr_frame_image_size(formats[f], dims[i][0], dims[i][1]);
			if (got != want)
				fail_msg("%s %ux%u: fr_frame_image_size %zu, expected %zu", fr_frame_format_name(formats[f]),
					 dims[i][0], dims[i][1], got, want);
			assert_int_equal(fr_frame_record_size(formats[f], dims[i][0], dims[i][1]), FR_FRAME_HEADER_SIZE + want);
		}
		/* zero or too large sizes */
		assert_int_equal(fr_frame_image_size(formats[f], 0, 10), 0);
		assert_int_equal(fr_frame_image_size(formats[f], 10, 0), 0);
		assert_int_equal(fr_frame_image_size(formats[f], FR_FRAME_MAX_DIM + 1, 10), 0);
		assert_int_equal(fr_frame_image_size(formats[f], 10, FR_FRAME_MAX_DIM + 1), 0);
		assert_int_equal(fr_frame_image_size(formats[f], UINT32_MAX, UINT32_MAX), 0);
		assert_int_equal(fr_frame_record_size(formats[f], 0, 0), 0);
	}
	assert_int_equal(fr_frame_image_size(0, 640, 480), 0);
	assert_int_equal(fr_frame_image_size(FR_FRAME_FOURCC('Y', 'U', 'Y', 'V'), 640, 480), 0);
	assert_int_equal(fr_frame_record_size(0, 640, 480), 0);

	/* plane geometry */
	assert_int_equal(fr_frame_plane_rows(FR_FRAME_FMT_I420, 5, 0), 5);
	assert_int_equal(fr_frame_plane_rows(FR_FRAME_FMT_I420, 5, 1), 3);
	assert_int_equal(fr_frame_plane_rows(FR_FRAME_FMT_I420, 5, 2), 3);
	assert_int_equal(fr_frame_plane_row_bytes(FR_FRAME_FMT_I420, 5, 1), 3);
	assert_int_equal(fr_frame_plane_rows(FR_FRAME_FMT_NV12, 5, 1), 3);
	assert_int_equal(fr_frame_plane_row_bytes(FR_FRAME_FMT_NV12, 5, 1), 6);
	assert_int_equal(fr_frame_plane_row_bytes(FR_FRAME_FMT_BGR24, 5, 0), 15);
	assert_int_equal(fr_frame_plane_row_bytes(FR_FRAME_FMT_GRAY8, 5, 0), 5);
	/* sizes the format cannot have give 0, never a wrapped 32-bit value
	 * (UINT32_MAX * 3 used to come back as UINT32_MAX - 2, and the rounding
	 * of UINT32_MAX wrapped to 0 + 1) */
	for (size_t f = 0; f < NFORMATS; f++) {
		for (uint32_t p = 0; p < 3; p++) {
			assert_int_equal(fr_frame_plane_row_bytes(formats[f], UINT32_MAX, p), 0);
			assert_int_equal(fr_frame_plane_row_bytes(formats[f], FR_FRAME_MAX_DIM + 1, p), 0);
			assert_int_equal(fr_frame_plane_rows(formats[f], UINT32_MAX, p), 0);
			assert_int_equal(fr_frame_plane_rows(formats[f], FR_FRAME_MAX_DIM + 1, p), 0);
		}
		assert_true(fr_frame_plane_row_bytes(formats[f], FR_FRAME_MAX_DIM, 0) >= FR_FRAME_MAX_DIM);
		assert_int_equal(fr_frame_plane_rows(formats[f], FR_FRAME_MAX_DIM, 0), FR_FRAME_MAX_DIM);
	}
}

/* Header init gives packed planes back to back after the header, as documented. */
static void test_header_init(void **state)
{
	struct fr_frame_header h, out;
	const uint32_t dims[][2] = { { 1, 1 }, { 3, 5 }, { 641, 479 }, { 1920, 1080 } };

	(void)state;
	for (size_t f = 0; f < NFORMATS; f++) {
		for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
			uint32_t w = dims[i][0], hh = dims[i][1];
			memset(&h, 0xEE, sizeof(h));
			assert_int_equal(fr_frame_header_init(&h, formats[f], w, hh), 0);
			assert_int_equal(h.magic, FR_FRAME_MAGIC);
			assert_int_equal(h.version, FR_FRAME_VERSION);
			assert_int_equal(h.header_size, FR_FRAME_HEADER_SIZE);
			assert_int_equal(h.fourcc, formats[f]);
			assert_int_equal(h.width, w);
			assert_int_equal(h.height, hh);
			assert_int_equal(h.plane_count, nplanes[f]);
			assert_int_equal(h.seq, 0);
			assert_int_equal(h.flags, 0);
			assert_true(h.pts == INT64_MIN);
			assert_int_equal(h.reserved0, 0);
			for (size_t k = 0; k < sizeof(h.reserved1); k++)
				assert_int_equal(h.reserved1[k], 0);
			assert_int_equal(h.color_matrix, FR_FRAME_MATRIX_UNSPECIFIED);
			assert_int_equal(h.color_range, FR_FRAME_RANGE_UNSPECIFIED);
			assert_int_equal(h.color_primaries, FR_FRAME_PRIMARIES_UNSPECIFIED);
			assert_int_equal(h.color_transfer, FR_FRAME_TRANSFER_UNSPECIFIED);
			assert_int_equal(h.chroma_location, FR_FRAME_CHROMA_UNSPECIFIED);
			assert_int_equal(h.plane[0].offset, FR_FRAME_HEADER_SIZE);
			uint64_t end = h.plane[0].offset;
			for (uint32_t p = 0; p < h.plane_count; p++) {
				assert_int_equal(h.plane[p].offset, end);
				assert_int_equal(h.plane[p].stride, fr_frame_plane_row_bytes(formats[f], w, p));
				end += (uint64_t)h.plane[p].stride * fr_frame_plane_rows(formats[f], hh, p);
			}
			for (uint32_t p = h.plane_count; p < FR_FRAME_MAX_PLANES; p++) {
				assert_int_equal(h.plane[p].offset, 0);
				assert_int_equal(h.plane[p].stride, 0);
			}
			assert_int_equal(h.image_size, end - FR_FRAME_HEADER_SIZE);
			assert_int_equal(h.image_size, fr_frame_image_size(formats[f], w, hh));
			/* and it validates in a record of exactly its size, not one byte less */
			size_t rl = FR_FRAME_HEADER_SIZE + h.image_size;
			unsigned char *rec = calloc(1, rl);
			assert_non_null(rec);
			memcpy(rec, &h, sizeof(h));
			int ok = fr_frame_header_validate(rec, rl, &out);
			int short_rc = fr_frame_header_validate(rec, rl - 1, &out);
			free(rec);
			assert_int_equal(ok, 0);
			assert_int_equal(short_rc, -EBADMSG);
		}
		assert_int_equal(fr_frame_header_init(&h, formats[f], 0, 1), -EINVAL);
		assert_int_equal(fr_frame_header_init(&h, formats[f], 1, FR_FRAME_MAX_DIM + 1), -EINVAL);
	}
	assert_int_equal(fr_frame_header_init(&h, 0, 16, 16), -EINVAL);
	assert_int_equal(fr_frame_header_init(&h, FR_FRAME_FOURCC('Y', 'U', 'Y', 'V'), 16, 16), -EINVAL);
	assert_int_equal(fr_frame_header_init(NULL, FR_FRAME_FMT_GRAY8, 16, 16), -EINVAL);
}

/* A valid I420 16x8 record in a buffer big enough for tricks. */
static unsigned char recbuf[FR_FRAME_HEADER_SIZE + 4096];
static size_t reclen;

static struct fr_frame_header *fresh(void)
{
	struct fr_frame_header *h = (struct fr_frame_header *)recbuf;

	memset(recbuf, 0, sizeof(recbuf));
	assert_int_equal(fr_frame_header_init(h, FR_FRAME_FMT_I420, 16, 8), 0);
	reclen = FR_FRAME_HEADER_SIZE + h->image_size;
	return h;
}

static int validate(void)
{
	struct fr_frame_header out;

	return fr_frame_header_validate(recbuf, reclen, &out);
}

static void test_header_validate(void **state)
{
	struct fr_frame_header *h, out;

	(void)state;
	h = fresh();
	h->seq = 77;
	h->pts = 1234;
	h->flags = FR_FRAME_FLAG_KEY;
	assert_int_equal(fr_frame_header_validate(recbuf, reclen, &out), 0);
	assert_memory_equal(&out, h, sizeof(out));

	/* every corruption */
	h = fresh(); h->magic ^= 1;                         assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->magic = 0;                          assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->version = FR_FRAME_VERSION + 1;        assert_int_equal(validate(), -EPROTO);
	/* a frame of version 1 (no colorimetry: those bytes were zero) reads as unspecified */
	h = fresh(); h->version = 1; h->color_matrix = 0; h->color_primaries = 0; h->color_transfer = 0;
	assert_int_equal(fr_frame_header_validate(recbuf, reclen, &out), 0);
	assert_int_equal(out.color_matrix, FR_FRAME_MATRIX_UNSPECIFIED);
	assert_int_equal(out.color_primaries, FR_FRAME_PRIMARIES_UNSPECIFIED);
	/* colorimetry is carried as written */
	h = fresh(); h->color_matrix = FR_FRAME_MATRIX_BT709; h->color_range = FR_FRAME_RANGE_FULL;
	h->chroma_location = FR_FRAME_CHROMA_LEFT;
	assert_int_equal(fr_frame_header_validate(recbuf, reclen, &out), 0);
	assert_int_equal(out.color_matrix, FR_FRAME_MATRIX_BT709);
	assert_int_equal(out.color_range, FR_FRAME_RANGE_FULL);
	assert_int_equal(out.chroma_location, FR_FRAME_CHROMA_LEFT);
	h = fresh(); h->version = 0;                        assert_true(validate() == -EPROTO || validate() == -EBADMSG);
	h = fresh(); h->header_size = 64;                   assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->header_size = 0;                    assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->header_size = 0xffff;               assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->fourcc = FR_FRAME_FOURCC('Y', 'U', 'Y', 'V'); assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->fourcc = 0;                         assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane_count = 2;                    assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane_count = 0;                    assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane_count = 5;                    assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane_count = UINT32_MAX;           assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->width = 0;                          assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->height = 0;                         assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->width = FR_FRAME_MAX_DIM + 1;          assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->height = UINT32_MAX;                assert_int_equal(validate(), -EBADMSG);
	/* a larger picture than the record holds */
	h = fresh(); h->width = 32;                         assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->height = 9;                         assert_int_equal(validate(), -EBADMSG);
	/* stride too small for a row */
	h = fresh(); h->plane[0].stride = 15;               assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[1].stride = 7;                assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[2].stride = 0;                assert_int_equal(validate(), -EBADMSG);
	/* planes outside the record */
	h = fresh(); h->plane[2].offset += 1;               assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[0].offset = reclen;           assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[1].offset = UINT32_MAX;       assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[0].offset = 0;                assert_int_equal(validate(), -EBADMSG); /* over the header */
	h = fresh(); h->plane[0].offset = 64;               assert_int_equal(validate(), -EBADMSG);
	/* overflow: stride * rows past 32 bits and offset + size past 64 bits */
	h = fresh(); h->plane[0].stride = UINT32_MAX;       assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[0].stride = 0x80000000u; h->height = 2; assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->plane[2].offset = UINT32_MAX; h->plane[2].stride = UINT32_MAX; assert_int_equal(validate(), -EBADMSG);
	/* image_size that lies */
	h = fresh(); h->image_size = UINT64_MAX;            assert_int_equal(validate(), -EBADMSG);
	h = fresh(); h->image_size = reclen;                assert_int_equal(validate(), -EBADMSG);
	/* records too short to hold a header */
	fresh();
	assert_int_equal(fr_frame_header_validate(recbuf, 0, &out), -EBADMSG);
	assert_int_equal(fr_frame_header_validate(recbuf, FR_FRAME_HEADER_SIZE - 1, &out), -EBADMSG);
	assert_int_equal(fr_frame_header_validate(recbuf, FR_FRAME_HEADER_SIZE, &out), -EBADMSG);
	int rc0 = fr_frame_header_validate(NULL, 4096, &out);
	assert_true(rc0 == -EBADMSG || rc0 == -EINVAL);

	/* a larger stride than the row (padding) is still a valid frame if it fits */
	h = fresh();
	h->plane[0].stride = 32;
	h->plane[1].offset = FR_FRAME_HEADER_SIZE + 32 * 8;
	h->plane[2].offset = h->plane[1].offset + 8 * 4;
	h->image_size = h->plane[2].offset + 8 * 4 - FR_FRAME_HEADER_SIZE;
	reclen = FR_FRAME_HEADER_SIZE + h->image_size;
	assert_int_equal(validate(), 0);

	/* random bytes never crash and are never accepted (magic is 32 bits) */
	uint64_t seed = 7;
	for (int i = 0; i < 20000; i++) {
		for (size_t k = 0; k < sizeof(recbuf); k += 8) {
			uint64_t v = rt_rand(&seed);
			memcpy(recbuf + k, &v, 8);
		}
		if (i % 2) /* half of them with a valid magic+version so the deeper checks run */
			memcpy(recbuf, &(struct { uint32_t m; uint16_t v; uint16_t hs; }){ FR_FRAME_MAGIC, FR_FRAME_VERSION, FR_FRAME_HEADER_SIZE }, 8);
		size_t len = (size_t)(rt_rand(&seed) % sizeof(recbuf));
		int rc = fr_frame_header_validate(recbuf, len, &out);
		assert_true(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
		if (rc == 0) {
			/* whatever passed really is inside the record */
			for (uint32_t p = 0; p < out.plane_count; p++) {
				uint64_t rows = fr_frame_plane_rows(out.fourcc, out.height, p);
				assert_true((uint64_t)out.plane[p].offset + (uint64_t)out.plane[p].stride * rows <= len);
			}
		}
	}
}

static void test_ring_round_trip(void **state)
{
	struct fr_ring_create_opts o = { .capacity = 1u << 20 };
	struct fr_frame_header *wh, rh;
	const uint8_t *rec;
	uint64_t skipped = 0, t0;

	(void)state;
	assert_int_equal(fr_ring_create(&P, name, &o), 0);
	assert_int_equal(fr_ring_open(&C, name), 0);
	for (size_t f = 0; f < NFORMATS; f++) {
		uint32_t w = 33 + (uint32_t)f, h = 17;
		t0 = fr_frame_now_ns();
		assert_int_equal(fr_frame_reserve(P, formats[f], w, h, &wh, FR_RING_NO_WAIT), 0);
		assert_int_equal((uintptr_t)wh % FR_FRAME_ALIGN, 0);
		assert_int_equal(wh->seq, f); /* the ring's frame counter */
		assert_true(wh->capture_ns >= t0 && wh->capture_ns <= fr_frame_now_ns());
		wh->pts = 1000 + (int64_t)f;
		wh->time_base_num = 1;
		wh->time_base_den = 90000;
		wh->flags = FR_FRAME_FLAG_KEY;
		for (uint32_t p = 0; p < wh->plane_count; p++)
			for (uint32_t y = 0; y < fr_frame_plane_rows(formats[f], h, p); y++)
				memset((uint8_t *)wh + wh->plane[p].offset + (size_t)y * wh->plane[p].stride,
				       (int)(p * 50 + y), fr_frame_plane_row_bytes(formats[f], w, p));
		assert_int_equal(fr_frame_commit(P, wh), 0);

		assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
		assert_int_equal((uintptr_t)rec % FR_FRAME_ALIGN, 0);
		assert_int_equal(rh.fourcc, formats[f]);
		assert_int_equal(rh.width, w);
		assert_int_equal(rh.height, h);
		assert_int_equal(rh.seq, f);
		assert_true(rh.pts == 1000 + (int64_t)f);
		assert_int_equal(rh.time_base_den, 90000);
		assert_int_equal(rh.flags, FR_FRAME_FLAG_KEY);
		for (uint32_t p = 0; p < rh.plane_count; p++)
			for (uint32_t y = 0; y < fr_frame_plane_rows(formats[f], h, p); y++) {
				const uint8_t *row = rec + rh.plane[p].offset + (size_t)y * rh.plane[p].stride;
				for (uint32_t x = 0; x < fr_frame_plane_row_bytes(formats[f], w, p); x++)
					if (row[x] != (uint8_t)(p * 50 + y))
						fail_msg("format %zu plane %u row %u byte %u", f, p, y, x);
			}
		assert_int_equal(fr_ring_release(C), 0);
	}
	/* latest: skip three, get the newest, the count adds to *skipped */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &wh, FR_RING_NO_WAIT), 0);
		assert_int_equal(fr_frame_commit(P, wh), 0);
	}
	skipped = 10;
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 1, &skipped, FR_RING_NO_WAIT), 0);
	assert_int_equal(skipped, 13);
	assert_int_equal(rh.seq, NFORMATS + 3);
	assert_int_equal(fr_ring_release(C), 0);

	/* a record that is not a frame: -ENOMSG, already skipped; the next peek goes on */
	assert_int_equal(fr_ring_write(P, "not a frame", 11, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &wh, FR_RING_NO_WAIT), 0);
	assert_int_equal(fr_frame_commit(P, wh), 0);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), -ENOMSG);
	assert_int_equal(fr_ring_release(C), -EINVAL); /* nothing is left peeked */
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
	assert_int_equal(rh.seq, NFORMATS + 4);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), -EAGAIN);

	/* one frame of another FR_FRAME_VERSION between two good ones: -EPROTO for it,
	 * skipped, and the frame after it is read (it used to wedge the reader) */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &wh, FR_RING_NO_WAIT), 0);
		if (i == 1)
			wh->version = FR_FRAME_VERSION + 1;
		assert_int_equal(fr_frame_commit(P, wh), 0);
	}
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
	assert_int_equal(rh.seq, NFORMATS + 5);
	assert_int_equal(fr_ring_release(C), 0);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), -EPROTO);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
	assert_int_equal(rh.seq, NFORMATS + 7);
	assert_int_equal(fr_ring_release(C), 0);
	/* the same through the latest path: the bad one is the newest */
	assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_GRAY8, 8, 8, &wh, FR_RING_NO_WAIT), 0);
	wh->version = FR_FRAME_VERSION + 1;
	assert_int_equal(fr_frame_commit(P, wh), 0);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 1, NULL, FR_RING_NO_WAIT), -EPROTO);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 1, NULL, FR_RING_NO_WAIT), -EAGAIN);

	/* errors pass through */
	assert_int_equal(fr_frame_reserve(P, 0, 8, 8, &wh, FR_RING_NO_WAIT), -EINVAL);
	assert_int_equal(fr_frame_reserve(P, FR_FRAME_FMT_BGR24, 1920, 1080, &wh, FR_RING_NO_WAIT), -EMSGSIZE);
	assert_int_equal(fr_frame_reserve(C, FR_FRAME_FMT_GRAY8, 8, 8, &wh, FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_frame_peek(P, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), -EPERM);
	assert_int_equal(fr_ring_mark_eos(P), 0);
	assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), -ENODATA);
}

/* Frames written (and committed) into RING before it is full, with its one consumer reading nothing. */
static unsigned fill_until_full(fr_ring_t *ring, uint32_t fourcc, uint32_t w, uint32_t h)
{
	struct fr_frame_header *wh;
	unsigned n = 0;
	while (fr_frame_reserve(ring, fourcc, w, h, &wh, FR_RING_NO_WAIT) == 0) {
		assert_int_equal(fr_frame_commit(ring, wh), 0);
		n++;
	}
	return n;
}

/* fr_frame_ring_capacity(N) keeps N frames in flight, across any number of wraps, and half of
 * it would not: the promise framering-capture --slots and Python's capacity_for make. */
static void test_ring_capacity_holds_frames(void **state)
{
	static const struct { uint32_t fourcc, w, h; unsigned frames; } cases[] = {
		{ FR_FRAME_FMT_GRAY8, 64, 48, 3 },   { FR_FRAME_FMT_BGR24, 1920, 1080, 2 },
		{ FR_FRAME_FMT_BGR24, 1920, 1080, 4 }, { FR_FRAME_FMT_I420, 321, 181, 5 },
		{ FR_FRAME_FMT_NV12, 1280, 720, 3 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t f = cases[i].fourcc, w = cases[i].w, h = cases[i].h;
		unsigned want = cases[i].frames;
		uint64_t cap = fr_frame_ring_capacity(f, w, h, want);
		assert_true(cap >= FR_RING_MIN_CAPACITY && (cap & (cap - 1)) == 0);

		struct fr_ring_create_opts o = { .capacity = cap };
		assert_int_equal(fr_ring_create(&P, name, &o), 0);
		assert_int_equal(fr_ring_open(&C, name), 0);
		unsigned held = fill_until_full(P, f, w, h);
		if (held < want)
			fail_msg("case %zu: %u frames fit a ring sized for %u", i, held, want);
		/* steady state over 6 laps: with one frame released, one more always fits */
		struct fr_frame_header rh, *wh;
		const uint8_t *rec;
		for (unsigned k = 0; k < 6 * held; k++) {
			assert_int_equal(fr_frame_peek(C, &rh, &rec, 0, NULL, FR_RING_NO_WAIT), 0);
			assert_int_equal(fr_ring_release(C), 0);
			if (fr_frame_reserve(P, f, w, h, &wh, FR_RING_NO_WAIT) != 0)
				fail_msg("case %zu: frame %u did not fit with %u in flight", i, k, held - 1);
			assert_int_equal(fr_frame_commit(P, wh), 0);
		}
		fr_ring_close(&C);
		fr_ring_close(&P);

		/* the smallest: half the capacity holds fewer (when it may hold such a frame at all) */
		o.capacity = cap / 2;
		if (o.capacity >= FR_RING_MIN_CAPACITY && o.capacity / 2 >= fr_frame_record_size(f, w, h)) {
			assert_int_equal(fr_ring_create(&P, name, &o), 0);
			assert_int_equal(fr_ring_open(&C, name), 0);
			held = fill_until_full(P, f, w, h);
			if (held >= want)
				fail_msg("case %zu: half the capacity (%llu) holds %u frames too", i,
					 (unsigned long long)o.capacity, held);
			fr_ring_close(&C);
			fr_ring_close(&P);
		}
	}
	/* fewer than 2 counts as 2; a bad size or one past the largest ring gives 0 */
	assert_int_equal(fr_frame_ring_capacity(FR_FRAME_FMT_BGR24, 1920, 1080, 0),
			 fr_frame_ring_capacity(FR_FRAME_FMT_BGR24, 1920, 1080, 2));
	assert_int_equal(fr_frame_ring_capacity(FR_FRAME_FMT_BGR24, 1920, 1080, 1), 16u << 20);
	assert_int_equal(fr_frame_ring_capacity(0, 64, 48, 2), 0);
	assert_int_equal(fr_frame_ring_capacity(FR_FRAME_FMT_GRAY8, 0, 48, 2), 0);
	assert_int_equal(fr_frame_ring_capacity(FR_FRAME_FMT_BGR24, 16384, 16384, 2), 1ull << 31);
	assert_int_equal(fr_frame_ring_capacity(FR_FRAME_FMT_BGR24, 16384, 16384, 6), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_image_size),
		cmocka_unit_test(test_header_init),
		cmocka_unit_test(test_header_validate),
		cmocka_unit_test_setup_teardown(test_ring_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_capacity_holds_frames, setup, teardown),
	};

	rt_parse_args(argc, argv, "Tests of frame.h: image sizes, header init/validate with every corruption, ring round trip.");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	rt_cleanup();
	return failed ? 1 : 0;
}
