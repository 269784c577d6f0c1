/* frame.c - the frame record format: plane layout per pixel format, header fill and validation. */
#include "frame.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ring_internal.h"

_Static_assert(sizeof(struct fr_frame_header) == FR_FRAME_HEADER_SIZE, "frame header is 128 bytes");
_Static_assert(offsetof(struct fr_frame_header, seq) == 32, "layout as documented");
_Static_assert(offsetof(struct fr_frame_header, capture_ns) == 56, "layout as documented");
_Static_assert(offsetof(struct fr_frame_header, plane) == 64, "layout as documented");
_Static_assert(offsetof(struct fr_frame_header, image_size) == 96, "layout as documented");
_Static_assert(offsetof(struct fr_frame_header, color_matrix) == 104, "layout as documented");
_Static_assert(offsetof(struct fr_frame_header, chroma_location) == 108, "layout as documented");

#define FRAME_VERSION_NO_COLOR 1u /* before colorimetry: those bytes were reserved (0) */

/* The colorimetry of a header that carries none. */
static void color_unspecified(struct fr_frame_header *h)
{
	h->color_matrix = FR_FRAME_MATRIX_UNSPECIFIED;
	h->color_range = FR_FRAME_RANGE_UNSPECIFIED;
	h->color_primaries = FR_FRAME_PRIMARIES_UNSPECIFIED;
	h->color_transfer = FR_FRAME_TRANSFER_UNSPECIFIED;
	h->chroma_location = FR_FRAME_CHROMA_UNSPECIFIED;
}

struct format_desc {
	uint32_t fourcc;
	const char *name;
	uint32_t planes;
	/* Row bytes of plane i = ceil(width / hsub) * bpp; rows = ceil(height / vsub). */
	uint8_t bpp[3], hsub[3], vsub[3];
};

static const struct format_desc formats[] = {
	{FR_FRAME_FMT_BGR24, "bgr24", 1, {3}, {1}, {1}},
	{FR_FRAME_FMT_RGB24, "rgb24", 1, {3}, {1}, {1}},
	{FR_FRAME_FMT_GRAY8, "gray8", 1, {1}, {1}, {1}},
	{FR_FRAME_FMT_I420, "i420", 3, {1, 1, 1}, {1, 2, 2}, {1, 2, 2}},
	{FR_FRAME_FMT_NV12, "nv12", 2, {1, 2}, {1, 2}, {1, 2}},
};

static const struct format_desc *find_format(uint32_t fourcc)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].fourcc == fourcc)
			return &formats[i];
	return NULL;
}

RING_API uint32_t fr_frame_format_from_name(const char *name)
{
	static const struct {
		const char *alias;
		uint32_t fourcc;
	} aliases[] = {{"bgr24", FR_FRAME_FMT_BGR24}, {"rgb24", FR_FRAME_FMT_RGB24}, {"gray", FR_FRAME_FMT_GRAY8},
		       {"gray8", FR_FRAME_FMT_GRAY8}, {"i420", FR_FRAME_FMT_I420},   {"yuv420p", FR_FRAME_FMT_I420},
		       {"nv12", FR_FRAME_FMT_NV12}};
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(name, aliases[i].alias) == 0)
			return aliases[i].fourcc;
	return 0;
}

RING_API const char *fr_frame_format_name(uint32_t fourcc)
{
	const struct format_desc *f = find_format(fourcc);
	return f ? f->name : NULL;
}

RING_API uint32_t fr_frame_plane_rows(uint32_t fourcc, uint32_t height, uint32_t plane)
{
	const struct format_desc *f = find_format(fourcc);
	if (!f || plane >= f->planes || height > FR_FRAME_MAX_DIM)
		return 0;
	return (height + f->vsub[plane] - 1) / f->vsub[plane];
}

RING_API uint32_t fr_frame_plane_row_bytes(uint32_t fourcc, uint32_t width, uint32_t plane)
{
	const struct format_desc *f = find_format(fourcc);
	if (!f || plane >= f->planes || width > FR_FRAME_MAX_DIM)
		return 0;
	return (width + f->hsub[plane] - 1) / f->hsub[plane] * f->bpp[plane];
}

RING_API size_t fr_frame_image_size(uint32_t fourcc, uint32_t width, uint32_t height)
{
	const struct format_desc *f = find_format(fourcc);
	if (!f || width == 0 || height == 0 || width > FR_FRAME_MAX_DIM || height > FR_FRAME_MAX_DIM)
		return 0;
	/* At most 16384 * 16384 * 3 * 1.5 bytes: no overflow in 64 bits. */
	uint64_t total = 0;
	for (uint32_t p = 0; p < f->planes; p++)
		total += (uint64_t)fr_frame_plane_row_bytes(fourcc, width, p) * fr_frame_plane_rows(fourcc, height, p);
	return (size_t)total;
}

RING_API size_t fr_frame_record_size(uint32_t fourcc, uint32_t width, uint32_t height)
{
	size_t image = fr_frame_image_size(fourcc, width, height);
	return image ? FR_FRAME_HEADER_SIZE + image : 0;
}

RING_API uint64_t fr_frame_ring_capacity(uint32_t fourcc, uint32_t width, uint32_t height, unsigned frames)
{
	size_t rec = fr_frame_record_size(fourcc, width, height);
	if (!rec)
		return 0;
	/* the record rounded to its alignment, plus the 8-byte record header and
	 * the alignment lead before its payload (at most FR_FRAME_ALIGN - 8) */
	uint64_t per = (((uint64_t)rec + FR_FRAME_ALIGN - 1) & ~(uint64_t)(FR_FRAME_ALIGN - 1)) + FR_FRAME_ALIGN;
	uint64_t need = per * (frames < 2 ? 2 : frames);
	uint64_t cap = FR_RING_MIN_CAPACITY;
	while (cap < need && cap <= FR_RING_MAX_CAPACITY / 2)
		cap <<= 1;
	return cap < need ? 0 : cap;
}

RING_API int fr_frame_header_init(struct fr_frame_header *h, uint32_t fourcc, uint32_t width, uint32_t height)
{
	const struct format_desc *f = find_format(fourcc);
	size_t image = fr_frame_image_size(fourcc, width, height);
	if (!h || !f || !image)
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->magic = FR_FRAME_MAGIC;
	h->version = FR_FRAME_VERSION;
	h->header_size = FR_FRAME_HEADER_SIZE;
	h->fourcc = fourcc;
	h->width = width;
	h->height = height;
	h->plane_count = f->planes;
	h->pts = INT64_MIN;
	h->time_base_num = 1;
	h->time_base_den = 1000000000;
	color_unspecified(h);
	uint64_t off = FR_FRAME_HEADER_SIZE;
	for (uint32_t p = 0; p < f->planes; p++) {
		uint32_t stride = fr_frame_plane_row_bytes(fourcc, width, p);
		h->plane[p].offset = (uint32_t)off;
		h->plane[p].stride = stride;
		off += (uint64_t)stride * fr_frame_plane_rows(fourcc, height, p);
	}
	h->image_size = image;
	return 0;
}

RING_API int fr_frame_header_validate(const void *record, size_t record_len, struct fr_frame_header *out)
{
	struct fr_frame_header h;
	if (!record || !out)
		return -EINVAL;
	if (record_len < sizeof(h))
		return -EBADMSG;
	/* One copy, then every check on the copy: the record lives in memory a
	 * producer can still write. */
	memcpy(&h, record, sizeof(h));
	if (h.magic != FR_FRAME_MAGIC)
		return -EBADMSG;
	if (h.version != FR_FRAME_VERSION && h.version != FRAME_VERSION_NO_COLOR)
		return -EPROTO;
	if (h.version == FRAME_VERSION_NO_COLOR)
		color_unspecified(&h);
	const struct format_desc *f = find_format(h.fourcc);
	if (h.header_size < FR_FRAME_HEADER_SIZE || h.header_size > record_len || !f ||
	    h.plane_count != f->planes || h.width == 0 || h.height == 0 || h.width > FR_FRAME_MAX_DIM ||
	    h.height > FR_FRAME_MAX_DIM)
		return -EBADMSG;
	uint64_t end_max = 0;
	for (uint32_t p = 0; p < h.plane_count; p++) {
		uint64_t row = fr_frame_plane_row_bytes(h.fourcc, h.width, p);
		uint64_t rows = fr_frame_plane_rows(h.fourcc, h.height, p);
		uint64_t stride = h.plane[p].stride, off = h.plane[p].offset;
		/* Strides and offsets are 32-bit, rows <= 16384: products fit in 64 bits. */
		if (stride < row || off < h.header_size)
			return -EBADMSG;
		uint64_t end = off + stride * (rows - 1) + row;
		if (end > record_len)
			return -EBADMSG;
		if (end > end_max)
			end_max = end;
	}
	for (uint32_t p = h.plane_count; p < FR_FRAME_MAX_PLANES; p++)
		if (h.plane[p].offset || h.plane[p].stride)
			return -EBADMSG;
	if (h.image_size > record_len - h.plane[0].offset || h.image_size < end_max - h.plane[0].offset)
		return -EBADMSG;
	if (h.time_base_den <= 0 || h.time_base_num <= 0)
		return -EBADMSG;
	*out = h;
	return 0;
}

RING_API const char *fr_frame_color_name(enum fr_frame_color_field field, unsigned code)
{
	/* Indexed by code; NULL where H.273 (or FFmpeg, for chroma) has no name. */
	static const char *const matrix[] = {"rgb", "bt709", "unspecified", NULL, "fcc", "bt470bg",
					     "bt601", "smpte240m", "ycgco", "bt2020nc", "bt2020c"};
	static const char *const range[] = {"unspecified", "limited", "full"};
	static const char *const primaries[] = {NULL, "bt709", "unspecified", NULL, "bt470m", "bt470bg",
						"smpte170m", "smpte240m", "film", "bt2020", "smpte428",
						"smpte431", "smpte432"};
	static const char *const transfer[] = {NULL, "bt709", "unspecified", NULL, "gamma22", "gamma28",
					       "smpte170m", "smpte240m", "linear", "log100", "log316",
					       "iec61966-2-4", "bt1361e", "iec61966-2-1", "bt2020-10",
					       "bt2020-12", "smpte2084", "smpte428", "arib-std-b67"};
	static const char *const chroma[] = {"unspecified", "left", "center", "topleft", "top",
					     "bottomleft", "bottom"};
#define NAME_IN(table) (code < sizeof(table) / sizeof(table[0]) ? table[code] : NULL)
	switch (field) {
	case FR_FRAME_COLOR_MATRIX: return NAME_IN(matrix);
	case FR_FRAME_COLOR_RANGE: return NAME_IN(range);
	case FR_FRAME_COLOR_PRIMARIES: return code == 22 ? "ebu3213" : NAME_IN(primaries);
	case FR_FRAME_COLOR_TRANSFER: return NAME_IN(transfer);
	case FR_FRAME_COLOR_CHROMA: return NAME_IN(chroma);
	}
#undef NAME_IN
	return NULL;
}

RING_API uint64_t fr_frame_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

RING_API int fr_frame_reserve(fr_ring_t *r, uint32_t fourcc, uint32_t width, uint32_t height,
			    struct fr_frame_header **hdr, int64_t timeout_ns)
{
	struct fr_frame_header h;
	void *dst;
	if (!r || !hdr)
		return -EINVAL;
	*hdr = NULL;
	int rc = fr_frame_header_init(&h, fourcc, width, height);
	if (rc < 0)
		return rc;
	rc = fr_ring_reserve(r, FR_FRAME_HEADER_SIZE + (size_t)h.image_size, FR_FRAME_ALIGN, &dst, timeout_ns);
	if (rc == -ENOBUFS)
		r->frame_seq++; /* a dropped frame still takes its number: consumers see the gap */
	if (rc < 0)
		return rc;
	h.seq = r->frame_seq;
	h.capture_ns = fr_frame_now_ns();
	memcpy(dst, &h, sizeof(h));
	*hdr = dst;
	return 0;
}

RING_API int fr_frame_commit(fr_ring_t *r, struct fr_frame_header *hdr)
{
	if (!r || !hdr)
		return -EINVAL;
	int rc = fr_ring_commit(r, FR_FRAME_HEADER_SIZE + (size_t)hdr->image_size);
	if (rc == 0)
		r->frame_seq++;
	return rc;
}

RING_API int fr_frame_peek(fr_ring_t *r, struct fr_frame_header *hdr, const uint8_t **record, int latest,
			 uint64_t *skipped, int64_t timeout_ns)
{
	const void *data;
	size_t len;
	uint64_t n = 0;
	if (!hdr || !record)
		return -EINVAL;
	/* A live consumer always takes the newest: it has skips to report either way. */
	bool newest = latest || (r && !r->is_producer && r->mode == RING_MODE_LATEST);
	int rc = newest ? fr_ring_peek_latest(r, &data, &len, &n, timeout_ns) : fr_ring_peek(r, &data, &len, timeout_ns);
	if (rc < 0)
		return rc;
	if (skipped)
		*skipped += n;
	rc = fr_frame_header_validate(data, len, hdr);
	if (rc < 0) {
		/* Not a frame this reader can show: skip it, so the next call goes
		 * on with the records after it. The ring itself is sound. */
		fr_ring_release(r);
		return rc == -EPROTO ? -EPROTO : -ENOMSG;
	}
	*record = data;
	return 0;
}
