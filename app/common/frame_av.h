/* frame_av.h - the FFmpeg pixel format of each framering frame format, for the programs built on FFmpeg (capture, send). */
#ifndef FRAMERING_FRAME_AV_H
#define FRAMERING_FRAME_AV_H

#include <stdint.h>

#include <libavutil/pixfmt.h>

#include "frame.h"

/* The AVPixelFormat whose planes are laid out as FOURCC's (FR_FRAME_FMT_*),
 * AV_PIX_FMT_NONE for an unknown format. */
static inline enum AVPixelFormat app_av_pix_fmt(uint32_t fourcc)
{
	switch (fourcc) {
	case FR_FRAME_FMT_BGR24: return AV_PIX_FMT_BGR24;
	case FR_FRAME_FMT_RGB24: return AV_PIX_FMT_RGB24;
	case FR_FRAME_FMT_GRAY8: return AV_PIX_FMT_GRAY8;
	case FR_FRAME_FMT_I420: return AV_PIX_FMT_YUV420P;
	case FR_FRAME_FMT_NV12: return AV_PIX_FMT_NV12;
	default: return AV_PIX_FMT_NONE;
	}
}

#endif
