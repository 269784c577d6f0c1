/* orient.h - turn a picture the way its display matrix asks, as the ffmpeg CLI's autorotate does. */
#ifndef FRAMERING_CAPTURE_ORIENT_H
#define FRAMERING_CAPTURE_ORIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <libavutil/pixfmt.h>

/* A picture's turn for display, as bits applied in this order: transpose
 * (rows become columns), then flip the result left-right, then top-bottom.
 * The eight combinations are the eight 90-degree rotations and mirrorings;
 * with ORIENT_TRANSPOSE the displayed size is the decoded one swapped. */
enum {
	ORIENT_NONE = 0,
	ORIENT_TRANSPOSE = 1,
	ORIENT_HFLIP = 2,
	ORIENT_VFLIP = 4,
};

/* orient_from_display_matrix - what the ffmpeg CLI (5.1, fftools/ffmpeg_filter.c)
 * inserts for the display matrix M (9 values, NULL: none) when it autorotates:
 * a transpose for 90 and 270 degrees, hflip and/or vflip for 180 and for
 * mirror images. *DEGREES gets the clockwise angle it turns by (0..359).
 * Returns the ORIENT_* bits, or -1 for an angle that is not a multiple of 90
 * (ffmpeg's rotate filter would turn the picture inside its own frame there;
 * the caller keeps it as decoded). */
int orient_from_display_matrix(const int32_t *m, int *degrees);

/* orient_name - the filter chain ffmpeg inserts for O: "transpose=clock",
 * "hflip,vflip", ..., or "none". */
const char *orient_name(int o);

/* orient_can_turn - whether orient_image() can turn FMT's pixels as O asks,
 * one sample group at a time, which is what ffmpeg's transpose, hflip and vflip
 * filters do to the formats they accept: not paletted, bitstream, Bayer or
 * hardware formats, and for a transpose the same chroma subsampling both ways. */
bool orient_can_turn(enum AVPixelFormat fmt, int o);

/* orient_image - write SRC (FMT, W x H) turned by O to DST, whose size is
 * H x W with ORIENT_TRANSPOSE, W x H otherwise. FMT must pass
 * orient_can_turn(). DST and SRC must not overlap. */
void orient_image(uint8_t *const dst[4], const int dst_linesize[4], const uint8_t *const src[4],
		  const int src_linesize[4], enum AVPixelFormat fmt, int w, int h, int o);

#endif
