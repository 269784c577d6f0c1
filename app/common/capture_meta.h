/* capture_meta.h - the stream description framering-capture keeps in the ring's meta area (fr_ring_set_meta).
 *
 * framering-capture rewrites it whenever the output format changes (start, resolution
 * change); framering-ctl reads it from outside with fr_ring_inspect_meta() to show what a
 * ring carries. It fills FR_RING_META_SIZE (256) bytes; fields are little-endian, offsets
 * in the comments. Whatever a segment holds is the producer's: a reader bounds every
 * string by its field and escapes it before printing it (app_printable).
 * A reader checks magic and version and ignores the area otherwise (the ring may have
 * been made by another producer that stores something else there).
 */
#ifndef FRAMERING_CAPTURE_META_H
#define FRAMERING_CAPTURE_META_H

#include <stddef.h>
#include <stdint.h>

#define CAPTURE_META_MAGIC 0x4d504143u /* "CAPM" in memory order */
#define CAPTURE_META_VERSION 2u /* 2: 256 bytes, the whole source name */

#define CAPTURE_META_LIVE (1u << 0) /* the source is live (lavfi, v4l2): frames are dropped when full */
#define CAPTURE_META_LOOP (1u << 1) /* the file is looped */

struct capture_meta {
	uint32_t magic;        /*   0 CAPTURE_META_MAGIC */
	uint16_t version;      /*   4 CAPTURE_META_VERSION */
	uint16_t size;         /*   6 sizeof(struct capture_meta) */
	uint32_t fourcc;       /*   8 FR_FRAME_FMT_* of the records */
	uint32_t width;        /*  12 output size of the records */
	uint32_t height;       /*  16 */
	uint32_t src_width;    /*  20 decoded size before scaling */
	uint32_t src_height;   /*  24 */
	int32_t time_base_num; /*  28 pts unit of the records */
	int32_t time_base_den; /*  32 */
	int32_t fps_num;       /*  36 nominal frame rate of the source; 0/0 unknown */
	int32_t fps_den;       /*  40 */
	uint32_t flags;        /*  44 CAPTURE_META_* */
	uint8_t color_matrix;  /*  48 colorimetry of the records: frame.h FR_FRAME_MATRIX_* ... */
	uint8_t color_range;   /*  49 */
	uint8_t color_primaries; /* 50 */
	uint8_t color_transfer; /* 51 */
	uint8_t chroma_location; /* 52 */
	uint8_t reserved[11];  /*  53 zero */
	char source[192];      /*  64 the input's last path component (a lavfi graph whole), NUL-terminated */
};

_Static_assert(sizeof(struct capture_meta) == 256, "capture_meta fills FR_RING_META_SIZE");
_Static_assert(offsetof(struct capture_meta, source) == 64, "capture_meta.source at 64");

#endif
