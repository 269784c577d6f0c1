/* frame.h - the self-describing raw video frame record carried by a framering ring.
 *
 * A frame record is one ring record: a struct fr_frame_header (FR_FRAME_HEADER_SIZE
 * bytes) followed by the pixel planes. Offsets in the header are relative to
 * the start of the record, so a reader needs nothing but the record itself.
 * Planes are laid out like FFmpeg's rawvideo / OpenCV's Mat: packed rows
 * (stride = width * bytes per pixel), planes back to back. The record starts
 * 64-byte aligned in the ring (fr_frame_reserve), so the first plane does too.
 *
 * Functions return 0 or a negative errno value (see ring.h), like the ring.
 */
#ifndef FRAMERING_FRAME_H
#define FRAMERING_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FR_FRAME_FOURCC(a, b, c, d) \
	((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))

/* Pixel formats. Byte order in memory is the order in the name. */
#define FR_FRAME_FMT_BGR24 FR_FRAME_FOURCC('B', 'G', 'R', '3') /* 1 plane, 3 bytes/pixel: B G R */
#define FR_FRAME_FMT_RGB24 FR_FRAME_FOURCC('R', 'G', 'B', '3') /* 1 plane, 3 bytes/pixel: R G B */
#define FR_FRAME_FMT_GRAY8 FR_FRAME_FOURCC('G', 'R', 'E', 'Y') /* 1 plane, 1 byte/pixel */
#define FR_FRAME_FMT_I420 FR_FRAME_FOURCC('I', '4', '2', '0')  /* Y, U, V planes; chroma (w+1)/2 x (h+1)/2 */
#define FR_FRAME_FMT_NV12 FR_FRAME_FOURCC('N', 'V', '1', '2')  /* Y plane, interleaved UV plane */

#define FR_FRAME_MAGIC FR_FRAME_FOURCC('F', 'R', 'M', 'H')
#define FR_FRAME_VERSION 2u /* 2: colorimetry at 104; frames of version 1 are read as "unspecified" */
#define FR_FRAME_HEADER_SIZE 128u
#define FR_FRAME_MAX_PLANES 4u
#define FR_FRAME_MAX_DIM 16384u /* largest width or height accepted */
#define FR_FRAME_ALIGN 64u      /* alignment of a frame record in the ring */

/* Colorimetry: how to turn the samples into colour. Matrix, primaries and
 * transfer are the code points of ITU-T H.273 (as FFmpeg's AVColorSpace,
 * AVColorPrimaries and AVColorTransferCharacteristic, and GStreamer's
 * colorimetry); a value a reader does not know means "unspecified".
 * For YUV formats (i420, nv12) the matrix and range are those of the samples.
 * For bgr24/rgb24/gray8 made from a YUV source, the matrix is the one the
 * producer converted with and the range is FR_FRAME_RANGE_FULL (the usual
 * meaning of 8-bit RGB); FR_FRAME_MATRIX_RGB means the source was RGB. */
#define FR_FRAME_MATRIX_RGB 0u         /* identity: the source was RGB */
#define FR_FRAME_MATRIX_BT709 1u
#define FR_FRAME_MATRIX_UNSPECIFIED 2u
#define FR_FRAME_MATRIX_FCC 4u
#define FR_FRAME_MATRIX_BT470BG 5u      /* BT.601 625 lines (PAL), same coefficients as 6 */
#define FR_FRAME_MATRIX_BT601 6u        /* SMPTE 170M: BT.601 525 lines */
#define FR_FRAME_MATRIX_SMPTE240M 7u
#define FR_FRAME_MATRIX_BT2020_NCL 9u
#define FR_FRAME_MATRIX_BT2020_CL 10u
#define FR_FRAME_PRIMARIES_BT709 1u
#define FR_FRAME_PRIMARIES_UNSPECIFIED 2u
#define FR_FRAME_PRIMARIES_BT2020 9u
#define FR_FRAME_TRANSFER_BT709 1u
#define FR_FRAME_TRANSFER_UNSPECIFIED 2u
#define FR_FRAME_TRANSFER_SRGB 13u
#define FR_FRAME_TRANSFER_PQ 16u        /* SMPTE ST 2084 */
#define FR_FRAME_TRANSFER_HLG 18u       /* ARIB STD-B67 */
#define FR_FRAME_RANGE_UNSPECIFIED 0u
#define FR_FRAME_RANGE_LIMITED 1u      /* Y 16..235, chroma 16..240 ("TV", "MPEG") */
#define FR_FRAME_RANGE_FULL 2u         /* 0..255 ("PC", "JPEG") */
#define FR_FRAME_CHROMA_UNSPECIFIED 0u /* chroma siting, as FFmpeg's AVChromaLocation: */
#define FR_FRAME_CHROMA_LEFT 1u        /* MPEG-2/4, H.264 default for 4:2:0 */
#define FR_FRAME_CHROMA_CENTER 2u      /* MPEG-1, JPEG */
#define FR_FRAME_CHROMA_TOPLEFT 3u     /* BT.2020 */

/* Frame flags. */
#define FR_FRAME_FLAG_KEY (1u << 0)           /* decoded from a key frame */
#define FR_FRAME_FLAG_DISCONTINUITY (1u << 1) /* timeline jump: seek, loop or format change */
#define FR_FRAME_FLAG_EOS (1u << 2)           /* last frame of the stream */

/* The header at offset 0 of every frame record; little-endian, packed to
 * FR_FRAME_HEADER_SIZE bytes (static_assert in frame.c).
 *
 *  off size field
 *    0    4 magic         FR_FRAME_MAGIC ("FRMH")
 *    4    2 version       FR_FRAME_VERSION
 *    6    2 header_size   FR_FRAME_HEADER_SIZE; plane data starts at or after it
 *    8    4 fourcc        FR_FRAME_FMT_*
 *   12    4 width         pixels
 *   16    4 height        pixels
 *   20    4 plane_count   1..FR_FRAME_MAX_PLANES, as the format implies
 *   24    4 flags         FR_FRAME_FLAG_*
 *   28    4 reserved0     0
 *   32    8 seq           frame number from 0, +1 per frame produced; a frame
 *                         dropped on a full ring keeps its number, so a gap
 *                         in seq is exactly the frames the consumer missed
 *   40    8 pts           presentation time in time_base units (INT64_MIN: unknown)
 *   48    4 time_base_num the stream time base pts counts in
 *   52    4 time_base_den
 *   56    8 capture_ns    CLOCK_MONOTONIC when the frame was captured/decoded
 *   64   32 plane[4]      { u32 offset from record start, u32 stride in bytes }
 *   96    8 image_size    bytes from plane[0].offset to the end of the last plane
 *  104    1 color_matrix  FR_FRAME_MATRIX_* (version 2)
 *  105    1 color_range   FR_FRAME_RANGE_*
 *  106    1 color_primaries FR_FRAME_PRIMARIES_* (H.273)
 *  107    1 color_transfer  FR_FRAME_TRANSFER_* (H.273)
 *  108    1 chroma_location FR_FRAME_CHROMA_*
 *  109   19 reserved1     0
 */
struct fr_frame_plane {
	uint32_t offset;
	uint32_t stride;
};

struct fr_frame_header {
	uint32_t magic;
	uint16_t version;
	uint16_t header_size;
	uint32_t fourcc;
	uint32_t width;
	uint32_t height;
	uint32_t plane_count;
	uint32_t flags;
	uint32_t reserved0;
	uint64_t seq;
	int64_t pts;
	int32_t time_base_num;
	int32_t time_base_den;
	uint64_t capture_ns;
	struct fr_frame_plane plane[FR_FRAME_MAX_PLANES];
	uint64_t image_size;
	uint8_t color_matrix;
	uint8_t color_range;
	uint8_t color_primaries;
	uint8_t color_transfer;
	uint8_t chroma_location;
	uint8_t reserved1[19];
};

/* fr_frame_format_from_name - FR_FRAME_FMT_* for "bgr24", "rgb24", "gray", "gray8",
 * "i420", "yuv420p", "nv12" (case-insensitive); 0 if unknown. */
uint32_t fr_frame_format_from_name(const char *name);

/* fr_frame_format_name - "bgr24", "rgb24", "gray8", "i420", "nv12", or NULL. */
const char *fr_frame_format_name(uint32_t fourcc);

/* fr_frame_image_size - bytes of pixel data for FOURCC at WIDTH x HEIGHT with
 * packed planes; 0 for an unknown format, a zero or too large size. */
size_t fr_frame_image_size(uint32_t fourcc, uint32_t width, uint32_t height);

/* fr_frame_record_size - FR_FRAME_HEADER_SIZE + fr_frame_image_size(), or 0. */
size_t fr_frame_record_size(uint32_t fourcc, uint32_t width, uint32_t height);

/* fr_frame_ring_capacity - the smallest capacity (a power of two) of a ring in
 * which FRAMES frames of FOURCC at WIDTH x HEIGHT can be in flight at once: a
 * producer blocks on the (FRAMES+1)th unreleased one. FRAMES below 2 counts as
 * 2 (a record takes at most half the capacity). Each frame takes its record
 * rounded up to FR_FRAME_ALIGN plus 64 bytes of ring framing and alignment;
 * records never wrap, so the end of the data area may go unused.
 * Fewer frames in flight keep a lap of the ring in the CPU's cache (the
 * producer writes where a consumer has just read); more absorb a slow
 * consumer's jitter. Returns 0 for a bad format or size, or when the capacity
 * would exceed FR_RING_MAX_CAPACITY. */
uint64_t fr_frame_ring_capacity(uint32_t fourcc, uint32_t width, uint32_t height, unsigned frames);

/* fr_frame_header_init - fill *h for a frame of FOURCC, WIDTH x HEIGHT: magic,
 * version, plane layout and image_size; seq, pts, flags zeroed, pts unknown,
 * colorimetry unspecified.
 * Errors: -EINVAL (unknown format, zero or too large size). */
int fr_frame_header_init(struct fr_frame_header *h, uint32_t fourcc, uint32_t width, uint32_t height);

/* fr_frame_header_validate - check the header at the start of a record of
 * RECORD_LEN bytes and copy it to *out (the copy is what was checked, so a
 * producer changing the record meanwhile cannot make a checked header lie).
 * Checks: magic, version, header_size, known format, plane count, strides at
 * least the row size and not overflowing, every plane inside the record.
 * A frame of version 1 is accepted and its copy says colorimetry unspecified.
 * Errors: -EBADMSG (corrupt or foreign), -EPROTO (other version). */
int fr_frame_header_validate(const void *record, size_t record_len, struct fr_frame_header *out);

/* fr_frame_plane_rows / fr_frame_plane_row_bytes - geometry of plane I of a
 * format; 0 for an unknown format or plane, or a size above FR_FRAME_MAX_DIM. */
uint32_t fr_frame_plane_rows(uint32_t fourcc, uint32_t height, uint32_t plane);
uint32_t fr_frame_plane_row_bytes(uint32_t fourcc, uint32_t width, uint32_t plane);

/* The colorimetry fields of a header, for fr_frame_color_name(). */
enum fr_frame_color_field {
	FR_FRAME_COLOR_MATRIX,
	FR_FRAME_COLOR_RANGE,
	FR_FRAME_COLOR_PRIMARIES,
	FR_FRAME_COLOR_TRANSFER,
	FR_FRAME_COLOR_CHROMA,
};

/* fr_frame_color_name - the name of code CODE of colorimetry field FIELD:
 * matrix "rgb" "bt709" "unspecified" "fcc" "bt470bg" "bt601" "smpte240m"
 * "bt2020nc" "bt2020c"; range "unspecified" "limited" "full"; primaries and
 * transfer FFmpeg's names (e.g. "bt709", "bt2020", "smpte2084", "arib-std-b67");
 * chroma "unspecified" "left" "center" "topleft" "top" "bottomleft" "bottom".
 * NULL for a code it does not know (print the number). */
const char *fr_frame_color_name(enum fr_frame_color_field field, unsigned code);

/* fr_frame_now_ns - CLOCK_MONOTONIC in nanoseconds (the clock of capture_ns). */
uint64_t fr_frame_now_ns(void);

/* ------------------------------------------------------------ on a ring */

/* fr_frame_reserve - reserve a frame record for FOURCC, WIDTH x HEIGHT in the
 * producer ring R, FR_FRAME_ALIGN-aligned, with its header initialised; *hdr
 * points to it in shared memory, pixels go to (uint8_t *)*hdr + plane[i].offset.
 * seq is set from the ring's frame counter and capture_ns to now; the caller
 * may overwrite pts, time base, flags and capture_ns. Errors as fr_ring_reserve()
 * and fr_frame_header_init(). */
int fr_frame_reserve(fr_ring_t *r, uint32_t fourcc, uint32_t width, uint32_t height,
		  struct fr_frame_header **hdr, int64_t timeout_ns);

/* fr_frame_commit - publish the frame reserved by fr_frame_reserve(). */
int fr_frame_commit(fr_ring_t *r, struct fr_frame_header *hdr);

/* fr_frame_peek - fr_ring_peek() (or fr_ring_peek_latest() when LATEST is non-zero,
 * adding the discarded count to *skipped if not NULL) and validate the frame
 * header; *hdr receives the checked copy, *record the record in place
 * (release it with fr_ring_release()).
 * A record that is not a frame this reader can use is released (skipped)
 * here, and the next call goes on with the records after it:
 *   -ENOMSG  the record is not a valid frame (bad magic, sizes, strides,
 *            planes outside the record): one damaged record, read on
 *   -EPROTO  a frame of another FR_FRAME_VERSION: the producer speaks a format
 *            this reader does not know; reading on skips every such frame
 * Every other error is the ring's (see fr_ring_peek()): -EBADMSG there means the
 * ring itself is corrupt and reading it cannot go on. */
int fr_frame_peek(fr_ring_t *r, struct fr_frame_header *hdr, const uint8_t **record, int latest,
	       uint64_t *skipped, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* FRAMERING_FRAME_H */
