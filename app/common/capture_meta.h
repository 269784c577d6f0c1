/* capture_meta.h - the stream description framering-capture keeps in the ring's meta area (ring_set_meta).
 *
 * framering-capture rewrites it whenever the output format changes (start, resolution
 * change); framering-ctl reads it from outside with ring_inspect_meta() to show what a
 * ring carries. It must fit RING_META_SIZE (64) bytes; fields are little-endian.
 * A reader checks magic and version and ignores the area otherwise (the ring may have
 * been made by another producer that stores something else there).
 */
#ifndef FRAMERING_CAPTURE_META_H
#define FRAMERING_CAPTURE_META_H

#include <stdint.h>

#define CAPTURE_META_MAGIC 0x4d504143u /* "CAPM" in memory order */
#define CAPTURE_META_VERSION 1u

#define CAPTURE_META_LIVE (1u << 0) /* the source is live (lavfi, v4l2): frames are dropped when full */
#define CAPTURE_META_LOOP (1u << 1) /* the file is looped */

struct capture_meta {
	uint32_t magic;       /* CAPTURE_META_MAGIC */
	uint16_t version;     /* CAPTURE_META_VERSION */
	uint16_t size;        /* sizeof(struct capture_meta) */
	uint32_t fourcc;      /* FRAME_FMT_* of the records */
	uint32_t width;       /* output size of the records */
	uint32_t height;
	uint32_t src_width;   /* decoded size before scaling */
	uint32_t src_height;
	int32_t time_base_num; /* pts unit of the records */
	int32_t time_base_den;
	int32_t fps_num;      /* nominal frame rate of the source; 0/0 unknown */
	int32_t fps_den;
	uint32_t flags;       /* CAPTURE_META_* */
	char source[16];      /* the input's last path component, truncated, NUL-terminated */
};

_Static_assert(sizeof(struct capture_meta) == 64, "capture_meta must fill RING_META_SIZE");

#endif
