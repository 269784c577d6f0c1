/* test_orient.c - orient_image() against the definition, sample by sample, for every turn.
 *
 * The end-to-end tests compare framering-capture's turned frames with ffmpeg's
 * on a few sizes; this one covers what those sizes cannot: every sample step
 * (1, 2, 3, 4, 6, 8 bytes), sizes that are not multiples of the 8 x 8 blocks
 * or the 128 x 128 tiles, odd chroma sizes, and padded rows, whose padding must
 * stay untouched. The definition: with a transpose, output (r, c) is input
 * (c, r); then HFLIP mirrors the output's columns and VFLIP its rows.
 * And orient_from_display_matrix() on the matrices FFmpeg's own helpers make.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/common.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "orient.h"

#define PAD 13   /* bytes after each row, a stride no block size divides */
#define CANARY 0xA5

static unsigned failures;

static int check_plane(const uint8_t *src, int sls, const uint8_t *dst, int dls, int pw, int ph, int step,
		       int o)
{
	int ow = (o & ORIENT_TRANSPOSE) ? ph : pw, oh = (o & ORIENT_TRANSPOSE) ? pw : ph;
	for (int r = 0; r < oh; r++) {
		for (int c = 0; c < ow; c++) {
			int sr = (o & ORIENT_VFLIP) ? oh - 1 - r : r;  /* row, column of the unflipped output */
			int sc = (o & ORIENT_HFLIP) ? ow - 1 - c : c;
			int ir = (o & ORIENT_TRANSPOSE) ? sc : sr, ic = (o & ORIENT_TRANSPOSE) ? sr : sc;
			if (memcmp(dst + (size_t)r * dls + (size_t)c * step, src + (size_t)ir * sls + (size_t)ic * step,
				   (size_t)step))
				return -1;
		}
		for (int b = ow * step; b < dls; b++)
			if (dst[(size_t)r * dls + b] != CANARY)
				return -2;
	}
	return 0;
}

static void check(enum AVPixelFormat fmt, int w, int h, int o)
{
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
	int steps[4];
	av_image_fill_max_pixsteps(steps, NULL, d);
	int planes = av_pix_fmt_count_planes(fmt);
	uint8_t *src[4] = {0}, *dst[4] = {0};
	int sls[4] = {0}, dls[4] = {0}, pw[4], ph[4];
	for (int p = 0; p < planes; p++) {
		int chroma = p == 1 || p == 2;
		pw[p] = chroma ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w;
		ph[p] = chroma ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h;
		int ow = (o & ORIENT_TRANSPOSE) ? ph[p] : pw[p], oh = (o & ORIENT_TRANSPOSE) ? pw[p] : ph[p];
		sls[p] = pw[p] * steps[p] + PAD;
		dls[p] = ow * steps[p] + PAD;
		src[p] = malloc((size_t)sls[p] * ph[p]);
		dst[p] = malloc((size_t)dls[p] * oh);
		if (!src[p] || !dst[p]) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
		for (size_t i = 0; i < (size_t)sls[p] * ph[p]; i++)
			src[p][i] = (uint8_t)rand();
		memset(dst[p], CANARY, (size_t)dls[p] * oh);
	}
	orient_image(dst, dls, (const uint8_t *const *)src, sls, fmt, w, h, o);
	for (int p = 0; p < planes; p++) {
		int ret = check_plane(src[p], sls[p], dst[p], dls[p], pw[p], ph[p], steps[p], o);
		if (ret < 0 && failures++ < 20)
			fprintf(stderr, "FAIL %s %dx%d %s plane %d: %s\n", av_get_pix_fmt_name(fmt), w, h,
				orient_name(o), p, ret == -1 ? "a sample is wrong" : "row padding overwritten");
		free(src[p]);
		free(dst[p]);
	}
}

int main(void)
{
	/* One format per sample step, and subsampled ones (odd sizes round chroma up). */
	static const enum AVPixelFormat fmts[] = {
		AV_PIX_FMT_GRAY8, AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12, AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_P010LE,
		AV_PIX_FMT_BGR24, AV_PIX_FMT_RGBA, AV_PIX_FMT_RGB48LE, AV_PIX_FMT_RGBA64LE, AV_PIX_FMT_YUVA420P,
		AV_PIX_FMT_YUV422P, /* flips only: a transpose is refused below */
	};
	static const int sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 128, 129, 300};
	unsigned cases = 0;
	srand(1);
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (int o = 1; o < 8; o++) {
			if (!orient_can_turn(fmts[f], o)) {
				if (fmts[f] != AV_PIX_FMT_YUV422P || !(o & ORIENT_TRANSPOSE)) {
					fprintf(stderr, "FAIL %s refused for %s\n", av_get_pix_fmt_name(fmts[f]),
						orient_name(o));
					failures++;
				}
				continue;
			}
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
				for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++, cases++)
					check(fmts[f], sizes[i], sizes[j], o);
		}
	/* What must be refused: a transpose of 4:2:2, a flip of YUYV, paletted, Bayer, hardware. */
	static const struct { enum AVPixelFormat fmt; int o; } refused[] = {
		{AV_PIX_FMT_YUV422P, ORIENT_TRANSPOSE}, {AV_PIX_FMT_YUYV422, ORIENT_HFLIP},
		{AV_PIX_FMT_PAL8, ORIENT_VFLIP}, {AV_PIX_FMT_BAYER_RGGB8, ORIENT_HFLIP},
		{AV_PIX_FMT_VAAPI, ORIENT_VFLIP},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (orient_can_turn(refused[i].fmt, refused[i].o)) {
			fprintf(stderr, "FAIL %s accepted for %s\n", av_get_pix_fmt_name(refused[i].fmt),
				orient_name(refused[i].o));
			failures++;
		}
	/* Display matrices (a b c d of the 3 x 3, in 16.16; what MP4's tkhd stores)
	 * and the turn the ffmpeg CLI inserts for each: test_capture.py's
	 * rotation test checks these very matrices against ffmpeg's pixels. */
	enum { ONE = 1 << 16 };
	static const struct { int32_t a, b, c, d; int want, degrees; } mats[] = {
		{ONE, 0, 0, ONE, ORIENT_NONE, 0},
		{0, ONE, -ONE, 0, ORIENT_TRANSPOSE | ORIENT_HFLIP, 90},                /* rotation=-90 (a phone) */
		{0, -ONE, ONE, 0, ORIENT_TRANSPOSE | ORIENT_VFLIP, 270},               /* rotation=90 */
		{-ONE, 0, 0, -ONE, ORIENT_HFLIP | ORIENT_VFLIP, 180},
		{-ONE, 0, 0, ONE, ORIENT_HFLIP, 180},                                  /* mirror images */
		{ONE, 0, 0, -ONE, ORIENT_VFLIP, 0},
		{0, ONE, ONE, 0, ORIENT_TRANSPOSE, 90},
		{0, -ONE, -ONE, 0, ORIENT_TRANSPOSE | ORIENT_HFLIP | ORIENT_VFLIP, 270},
		{46341, 46341, -46341, 46341, -1, 45},                                 /* 45 degrees: left alone */
	};
	for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++) {
		int32_t m[9] = {mats[i].a, mats[i].b, 0, mats[i].c, mats[i].d, 0, 0, 0, 1 << 30};
		int deg = -1, o = orient_from_display_matrix(m, &deg);
		if (o != mats[i].want || deg != mats[i].degrees) {
			fprintf(stderr, "FAIL matrix %d %d %d %d: %s %d degrees, want %s %d\n", mats[i].a, mats[i].b,
				mats[i].c, mats[i].d, o < 0 ? "(odd)" : orient_name(o), deg,
				mats[i].want < 0 ? "(odd)" : orient_name(mats[i].want), mats[i].degrees);
			failures++;
		}
	}
	int deg = -1;
	if (orient_from_display_matrix(NULL, &deg) != ORIENT_NONE || deg != 0) {
		fprintf(stderr, "FAIL no matrix\n");
		failures++;
	}
	printf("orient_image: %u cases, %u failed\n", cases, failures);
	return failures ? 1 : 0;
}
