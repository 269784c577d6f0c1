/* convert.h - put one decoded AVFrame into a frame record in the ring: letterbox, swscale or plane copy. */
#ifndef FRAMERING_CAPTURE_CONVERT_H
#define FRAMERING_CAPTURE_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>

#include "frame.h"

/* How a source frame maps onto the output record. Rebuilt by conv_prepare()
 * whenever the source size, pixel format, colour description or turn changes. */
struct conv {
	/* what the output records are */
	uint32_t fourcc;
	enum AVPixelFormat dst_fmt;
	unsigned req_w, req_h;  /* requested output size; 0 x 0: follow the source */
	bool stretch;           /* --fit stretch: fill the record, ignore the aspect ratio */
	int sws_threads;

	/* the current source and geometry (valid after conv_prepare) */
	int src_w, src_h;
	enum AVPixelFormat src_fmt;
	enum AVColorSpace src_space;
	enum AVColorRange src_range;
	AVRational src_sar;
	int orient;             /* ORIENT_* turn for display (orient.h); 0: as decoded */
	unsigned out_w, out_h;  /* record size */
	unsigned img_x, img_y;  /* picture rectangle inside the record (the rest is bars) */
	unsigned img_w, img_h;
	bool copy;              /* same format, size and range: plane copy (or turn), no swscale */
	/* the colorimetry of the records (frame.h FR_FRAME_MATRIX_* ...), stamped on each */
	uint8_t color_matrix, color_range, color_primaries, color_transfer, chroma_location;
	struct SwsContext *sws;
	/* With a turn: where the turn happens. Like ffmpeg, the source is turned
	 * first when its format allows (into `turned`, which swscale reads, or
	 * straight into the record when copy); otherwise swscale writes the
	 * unturned picture into `turned` in the output format, which is then
	 * turned into the record (turn_last). */
	bool turn_last;
	AVFrame *turned;
};

/* conv_init - set up for FOURCC records of REQ_W x REQ_H (0 x 0: source size). */
int conv_init(struct conv *c, uint32_t fourcc, unsigned req_w, unsigned req_h, bool stretch,
	      int sws_threads);

/* conv_prepare - make the converter fit source frame F shown turned by ORIENT
 * (ORIENT_* bits, 0: as decoded; the record gets the displayed picture, so a
 * transposed W x H source is H x W). Returns 1 if the geometry changed (first
 * frame, or a new size/format/turn: the caller marks a discontinuity), 0 if
 * it was already right, or a negative AVERROR. */
int conv_prepare(struct conv *c, const AVFrame *f, int orient);

/* conv_frame - write F into the record HDR (reserved by fr_frame_reserve for
 * c->fourcc, c->out_w x c->out_h): fill the bars, then scale/convert or copy
 * (and turn) the picture straight into ring memory, and stamp the colorimetry
 * of what was written. 0 or a negative AVERROR. */
int conv_frame(struct conv *c, const AVFrame *f, struct fr_frame_header *hdr);

void conv_free(struct conv *c);


#endif
