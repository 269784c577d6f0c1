/* convert.c - put one decoded AVFrame into a frame record in the ring: letterbox, swscale or plane copy.
 *
 * The destination of every conversion is the ring record itself: sws_scale_frame()
 * writes through an AVFrame whose data pointers are the record's planes (wrapped in
 * a non-owning AVBufferRef, because swscale wants refcounted frames), so a frame
 * goes from the decoder's buffer to shared memory in one pass. When the decoded
 * frame already is in the output format and size, av_image_copy_plane() copies the
 * planes instead (swscale would do the same work slower).
 *
 * The swscale setup copies what the ffmpeg CLI (5.1) does in its auto-inserted
 * scale filter, so our pixels match `ffmpeg -pix_fmt FMT -s WxH -f rawvideo`:
 * SWS_BICUBIC, MPEG-2 vertical chroma siting for yuv420p (src/dst_v_chr_pos 128),
 * the frame's colour matrix and range.
 *
 * Letterbox bars are black in each format's own convention: Y=16, U=V=128 for
 * i420/nv12 (limited range, what swscale outputs), 0 for bgr24, rgb24 and gray
 * (full range, again what swscale outputs for black).
 *
 * A picture with a display matrix is turned as the CLI's autorotate does
 * (orient.c): the CLI puts its transpose/flip filters before the scaler, so
 * the source is turned first, into a buffer swscale reads, or straight into
 * the record when no conversion is needed. A source format that cannot be
 * turned sample by sample (4:2:2 under a transpose, paletted, ...) is
 * converted to the output format first and turned after (turn_last): what
 * the CLI does at the displayed size, so the pixels are its own there. (When
 * it also scales, the CLI converts such a source to 4:4:4 before the turn
 * instead; ours then differ from its by chroma interpolation.) A picture
 * without a turn takes exactly the path it took before: nothing is added per
 * frame but one test.
 */
#include "convert.h"
#include "frame_av.h"
#include "orient.h"

#include <errno.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* Per-plane facts of an output format the letterbox code needs. */
struct plane_desc {
	unsigned count;
	unsigned bpp[FR_FRAME_MAX_PLANES];  /* bytes per sample group in the plane */
	unsigned hsub, vsub;             /* log2 chroma subsampling of planes 1.. */
	uint8_t black[FR_FRAME_MAX_PLANES]; /* bar value */
};

static struct plane_desc describe(uint32_t fourcc)
{
	struct plane_desc d = {0};
	switch (fourcc) {
	case FR_FRAME_FMT_BGR24:
	case FR_FRAME_FMT_RGB24:
		d = (struct plane_desc){.count = 1, .bpp = {3}, .black = {0}};
		break;
	case FR_FRAME_FMT_GRAY8:
		d = (struct plane_desc){.count = 1, .bpp = {1}, .black = {0}};
		break;
	case FR_FRAME_FMT_I420:
		d = (struct plane_desc){.count = 3, .bpp = {1, 1, 1}, .hsub = 1, .vsub = 1,
					.black = {16, 128, 128}};
		break;
	case FR_FRAME_FMT_NV12:
		d = (struct plane_desc){.count = 2, .bpp = {1, 2}, .hsub = 1, .vsub = 1,
					.black = {16, 128}};
		break;
	}
	return d;
}

int conv_init(struct conv *c, uint32_t fourcc, unsigned req_w, unsigned req_h, bool stretch,
	      int sws_threads)
{
	memset(c, 0, sizeof(*c));
	c->fourcc = fourcc;
	c->dst_fmt = app_av_pix_fmt(fourcc);
	if (c->dst_fmt == AV_PIX_FMT_NONE)
		return AVERROR(EINVAL);
	c->req_w = req_w;
	c->req_h = req_h;
	c->stretch = stretch;
	c->sws_threads = sws_threads > 0 ? sws_threads : 1;
	c->src_fmt = AV_PIX_FMT_NONE;
	c->color_matrix = FR_FRAME_MATRIX_UNSPECIFIED; /* until the first frame says */
	c->color_primaries = FR_FRAME_PRIMARIES_UNSPECIFIED;
	c->color_transfer = FR_FRAME_TRANSFER_UNSPECIFIED;
	return 0;
}

void conv_free(struct conv *c)
{
	sws_freeContext(c->sws);
	c->sws = NULL;
	av_frame_free(&c->turned);
}

/* The picture rectangle inside the record: the whole record (stretch, or the
 * aspect ratios agree), else the largest centred rectangle of the displayed
 * picture's aspect ratio. Chroma-subsampled formats keep it on even coordinates
 * so that the bars and the picture split chroma samples cleanly. */
static void fit(struct conv *c)
{
	/* The displayed picture: a transpose swaps the size and inverts the
	 * sample aspect ratio, as the transpose filter does. */
	bool swap = c->orient & ORIENT_TRANSPOSE;
	int64_t disp_w = swap ? c->src_h : c->src_w, disp_h = swap ? c->src_w : c->src_h;
	c->out_w = c->req_w ? c->req_w : (unsigned)disp_w;
	c->out_h = c->req_h ? c->req_h : (unsigned)disp_h;
	c->img_x = c->img_y = 0;
	c->img_w = c->out_w;
	c->img_h = c->out_h;
	if (c->stretch || !c->req_w)
		return;

	AVRational sar = c->src_sar;
	if (sar.num <= 0 || sar.den <= 0)
		sar = (AVRational){1, 1};
	if (swap)
		sar = (AVRational){sar.den, sar.num};
	/* display aspect = dar_num / dar_den */
	int64_t dar_num = disp_w * sar.num, dar_den = disp_h * sar.den;
	int64_t w = c->out_w, h = c->out_h;
	if (w * dar_den > h * dar_num)
		w = (h * dar_num + dar_den / 2) / dar_den; /* pillarbox */
	else if (w * dar_den < h * dar_num)
		h = (w * dar_den + dar_num / 2) / dar_num; /* letterbox */

	bool sub = describe(c->fourcc).hsub > 0;
	if (sub) {
		if (w != c->out_w)
			w = (w + 1) & ~(int64_t)1;
		if (h != c->out_h)
			h = (h + 1) & ~(int64_t)1;
	}
	w = w < 1 ? 1 : w > c->out_w ? c->out_w : w;
	h = h < 1 ? 1 : h > c->out_h ? c->out_h : h;
	c->img_w = (unsigned)w;
	c->img_h = (unsigned)h;
	c->img_x = (c->out_w - c->img_w) / 2;
	c->img_y = (c->out_h - c->img_h) / 2;
	if (sub) {
		c->img_x &= ~1u;
		c->img_y &= ~1u;
	}
}

/* swscale warns about the deprecated full-range "J" formats; hand it the plain
 * format and say full range explicitly instead (what libavfilter does). */
static enum AVPixelFormat unjpeg(enum AVPixelFormat f, int *full)
{
	switch (f) {
	case AV_PIX_FMT_YUVJ420P: *full = 1; return AV_PIX_FMT_YUV420P;
	case AV_PIX_FMT_YUVJ422P: *full = 1; return AV_PIX_FMT_YUV422P;
	case AV_PIX_FMT_YUVJ444P: *full = 1; return AV_PIX_FMT_YUV444P;
	case AV_PIX_FMT_YUVJ440P: *full = 1; return AV_PIX_FMT_YUV440P;
	case AV_PIX_FMT_YUVJ411P: *full = 1; return AV_PIX_FMT_YUV411P;
	default: return f;
	}
}

/* swscale from SRC_W x SRC_H of the source format to DST_W x DST_H of the output format. */
static int make_sws(struct conv *c, int src_w, int src_h, int dst_w, int dst_h)
{
	int src_full = 0;
	enum AVPixelFormat src_fmt = unjpeg(c->src_fmt, &src_full);
	if (c->src_range == AVCOL_RANGE_JPEG)
		src_full = 1;
	else if (c->src_range == AVCOL_RANGE_MPEG)
		src_full = 0;

	struct SwsContext *s = sws_alloc_context();
	if (!s)
		return AVERROR(ENOMEM);
	int ret = 0;
	/* What ffmpeg's scale filter sets; the chroma positions are its "MPEG-2
	 * siting for yuv420p" override, the flags the CLI's default "bicubic". */
	if ((ret = av_opt_set_int(s, "srcw", src_w, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "srch", src_h, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "src_format", src_fmt, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "dstw", dst_w, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "dsth", dst_h, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "dst_format", c->dst_fmt, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "sws_flags", SWS_BICUBIC, 0)) < 0 ||
	    (ret = av_opt_set_int(s, "threads", c->sws_threads, 0)) < 0)
		goto fail;
	/* A full-range source says so before init, as ffmpeg's scale filter does
	 * (the output range stays swscale's default: limited for YUV, full for
	 * gray and RGB). Said only after init, a same-size, same-format source
	 * took swscale's plain-copy path and stayed full range (MJPEG to i420). */
	if (src_full && (ret = av_opt_set_int(s, "src_range", 1, 0)) < 0)
		goto fail;
	if (src_fmt == AV_PIX_FMT_YUV420P && (ret = av_opt_set_int(s, "src_v_chr_pos", 128, 0)) < 0)
		goto fail;
	if (c->dst_fmt == AV_PIX_FMT_YUV420P && (ret = av_opt_set_int(s, "dst_v_chr_pos", 128, 0)) < 0)
		goto fail;
	if ((ret = sws_init_context(s, NULL, NULL)) < 0)
		goto fail;

	int *inv_table, *table, in_full, out_full, brightness, contrast, saturation;
	if (sws_getColorspaceDetails(s, &inv_table, &in_full, &table, &out_full, &brightness,
				     &contrast, &saturation) >= 0) {
		/* The source's matrix on both sides, as the scale filter does when no
		 * output matrix is asked for (YUV->YUV keeps the matrix). Not every
		 * format pair supports this (RGB->RGB): then the defaults stay. */
		const int *coefs = sws_getCoefficients(c->src_space);
		sws_setColorspaceDetails(s, coefs, src_full, coefs, out_full, brightness, contrast,
					 saturation);
	}
	c->sws = s;
	return 0;
fail:
	sws_freeContext(s);
	return ret;
}

/* The matrix swscale converts a source that says SPACE with: the table
 * sws_getCoefficients() picks (unspecified and unknown values get BT.601,
 * "RGB" and BT.709 the BT.709 one, BT.2020 CL the NCL coefficients). */
static uint8_t sws_matrix(enum AVColorSpace space)
{
	switch (space) {
	case AVCOL_SPC_RGB:
	case AVCOL_SPC_BT709: return FR_FRAME_MATRIX_BT709;
	case AVCOL_SPC_FCC:
	case AVCOL_SPC_BT470BG:
	case AVCOL_SPC_SMPTE240M: return (uint8_t)space;
	case AVCOL_SPC_BT2020_NCL:
	case AVCOL_SPC_BT2020_CL: return FR_FRAME_MATRIX_BT2020_NCL;
	default: return FR_FRAME_MATRIX_BT601;
	}
}

/* What the records made from source frame F say about their colour. */
static void describe_color(struct conv *c, const AVFrame *f)
{
	const AVPixFmtDescriptor *src = av_pix_fmt_desc_get(f->format);
	bool src_rgb = src && (src->flags & AV_PIX_FMT_FLAG_RGB);
	bool out_yuv = c->fourcc == FR_FRAME_FMT_I420 || c->fourcc == FR_FRAME_FMT_NV12;
	/* Primaries and transfer pass through every conversion here. */
	c->color_primaries = (uint8_t)f->color_primaries;
	c->color_transfer = (uint8_t)f->color_trc;
	if (out_yuv) {
		/* YUV to YUV keeps the source's matrix (make_sws); the output is
		 * limited range: a full-range source is converted, never copied. */
		c->color_matrix = src_rgb ? sws_matrix(f->colorspace) : (uint8_t)f->colorspace;
		c->color_range = FR_FRAME_RANGE_LIMITED;
		c->chroma_location = c->copy ? (uint8_t)f->chroma_location
				   : c->fourcc == FR_FRAME_FMT_I420 ? FR_FRAME_CHROMA_LEFT /* dst_v_chr_pos 128 */
				   : FR_FRAME_CHROMA_UNSPECIFIED;
	} else {
		/* RGB and gray records are full range; the matrix is the one the
		 * YUV source was converted with. */
		c->color_matrix = src_rgb ? FR_FRAME_MATRIX_RGB : sws_matrix(f->colorspace);
		c->color_range = FR_FRAME_RANGE_FULL;
		c->chroma_location = FR_FRAME_CHROMA_UNSPECIFIED;
	}
}

/* The buffer between the turn and swscale: W x H of FMT. */
static int make_turned(struct conv *c, enum AVPixelFormat fmt, int w, int h)
{
	c->turned = av_frame_alloc();
	if (!c->turned)
		return AVERROR(ENOMEM);
	c->turned->format = fmt;
	c->turned->width = w;
	c->turned->height = h;
	return av_frame_get_buffer(c->turned, 0);
}

int conv_prepare(struct conv *c, const AVFrame *f, int orient)
{
	if (c->src_fmt == (enum AVPixelFormat)f->format && c->src_w == f->width &&
	    c->src_h == f->height && c->src_space == f->colorspace && c->src_range == f->color_range &&
	    c->src_sar.num == f->sample_aspect_ratio.num && c->src_sar.den == f->sample_aspect_ratio.den &&
	    c->orient == orient)
		return 0;
	if (f->width < 1 || f->height < 1 || f->format < 0)
		return AVERROR(EINVAL);

	conv_free(c);
	c->src_fmt = f->format;
	c->src_w = f->width;
	c->src_h = f->height;
	c->src_space = f->colorspace;
	c->src_range = f->color_range;
	c->src_sar = f->sample_aspect_ratio;
	c->orient = orient;
	fit(c);
	if (c->out_w > FR_FRAME_MAX_DIM || c->out_h > FR_FRAME_MAX_DIM)
		return AVERROR(ERANGE);
	bool swap = orient & ORIENT_TRANSPOSE;
	int disp_w = swap ? c->src_h : c->src_w, disp_h = swap ? c->src_w : c->src_h;
	/* A copy only where it gives what ffmpeg -pix_fmt gives: a full-range
	 * source (MJPEG's yuvj420p, full-range HEVC) is converted to limited. */
	c->copy = c->src_fmt == c->dst_fmt && (unsigned)disp_w == c->out_w &&
		  (unsigned)disp_h == c->out_h && c->img_w == c->out_w && c->img_h == c->out_h &&
		  c->src_range != AVCOL_RANGE_JPEG;
	/* every output format can be turned, so a copy never needs turn_last */
	c->turn_last = orient && !orient_can_turn(c->src_fmt, orient);
	describe_color(c, f);
	if (c->copy)
		return 1;
	int ret;
	if (!orient) {
		ret = make_sws(c, c->src_w, c->src_h, (int)c->img_w, (int)c->img_h);
	} else if (!c->turn_last) {
		if ((ret = make_turned(c, c->src_fmt, disp_w, disp_h)) >= 0)
			ret = make_sws(c, disp_w, disp_h, (int)c->img_w, (int)c->img_h);
	} else {
		int w = (int)(swap ? c->img_h : c->img_w), h = (int)(swap ? c->img_w : c->img_h);
		if ((ret = make_turned(c, c->dst_fmt, w, h)) >= 0)
			ret = make_sws(c, c->src_w, c->src_h, w, h);
	}
	return ret < 0 ? ret : 1;
}

static void fill_bars(const struct conv *c, const struct plane_desc *d, struct fr_frame_header *hdr)
{
	uint8_t *rec = (uint8_t *)hdr;
	for (unsigned i = 0; i < d->count; i++) {
		unsigned hs = i ? d->hsub : 0, vs = i ? d->vsub : 0;
		uint8_t *base = rec + hdr->plane[i].offset;
		size_t stride = hdr->plane[i].stride;
		unsigned rows = fr_frame_plane_rows(c->fourcc, c->out_h, i);
		size_t row_bytes = fr_frame_plane_row_bytes(c->fourcc, c->out_w, i);
		unsigned y0 = c->img_y >> vs, y1 = y0 + ((c->img_h + (1u << vs) - 1) >> vs);
		size_t x0 = (size_t)(c->img_x >> hs) * d->bpp[i];
		size_t x1 = x0 + (size_t)((c->img_w + (1u << hs) - 1) >> hs) * d->bpp[i];
		if (y1 > rows)
			y1 = rows;
		if (x1 > row_bytes)
			x1 = row_bytes;
		for (unsigned y = 0; y < rows; y++) {
			uint8_t *row = base + y * stride;
			if (y < y0 || y >= y1) {
				memset(row, d->black[i], row_bytes);
				continue;
			}
			if (x0)
				memset(row, d->black[i], x0);
			if (x1 < row_bytes)
				memset(row + x1, d->black[i], row_bytes - x1);
		}
	}
}

/* swscale refcounts its destination frame; the ring owns this memory, so the
 * buffer wrapping it frees nothing. */
static void no_free(void *opaque, uint8_t *data)
{
	(void)opaque;
	(void)data;
}

/* swscale SRC into the picture rectangle DST of the record HDR. */
static int scale_into(struct conv *c, const AVFrame *src, struct fr_frame_header *hdr,
		      const struct plane_desc *d, uint8_t *const dst[4], const int dst_stride[4])
{
	uint8_t *rec = (uint8_t *)hdr;
	AVFrame *out = av_frame_alloc();
	if (!out)
		return AVERROR(ENOMEM);
	int ret = 0;
	out->buf[0] = av_buffer_create(rec, (size_t)hdr->plane[0].offset + hdr->image_size, no_free,
				       NULL, 0);
	if (!out->buf[0]) {
		ret = AVERROR(ENOMEM);
		goto end;
	}
	out->format = c->dst_fmt;
	out->width = (int)c->img_w;
	out->height = (int)c->img_h;
	for (unsigned i = 0; i < d->count; i++) {
		out->data[i] = dst[i];
		out->linesize[i] = dst_stride[i];
	}
	ret = sws_scale_frame(c->sws, out, src);
end:
	av_frame_free(&out);
	return ret;
}

/* conv_frame() for a picture shown turned: see the top of this file. */
static int turn_frame(struct conv *c, const AVFrame *f, struct fr_frame_header *hdr,
		      const struct plane_desc *d, uint8_t *const dst[4], const int dst_stride[4])
{
	const uint8_t *const *src = (const uint8_t *const *)f->data;
	if (c->copy) {
		orient_image(dst, dst_stride, src, f->linesize, c->src_fmt, f->width, f->height, c->orient);
		return 0;
	}
	if (!c->turn_last) {
		orient_image(c->turned->data, c->turned->linesize, src, f->linesize, c->src_fmt, f->width,
			     f->height, c->orient);
		return scale_into(c, c->turned, hdr, d, dst, dst_stride);
	}
	int ret = sws_scale_frame(c->sws, c->turned, f);
	if (ret < 0)
		return ret;
	orient_image(dst, dst_stride, (const uint8_t *const *)c->turned->data, c->turned->linesize, c->dst_fmt,
		     c->turned->width, c->turned->height, c->orient);
	return 0;
}

int conv_frame(struct conv *c, const AVFrame *f, struct fr_frame_header *hdr)
{
	struct plane_desc d = describe(c->fourcc);
	uint8_t *rec = (uint8_t *)hdr;
	uint8_t *dst[4] = {0};
	int dst_stride[4] = {0};

	hdr->color_matrix = c->color_matrix;
	hdr->color_range = c->color_range;
	hdr->color_primaries = c->color_primaries;
	hdr->color_transfer = c->color_transfer;
	hdr->chroma_location = c->chroma_location;
	if (c->img_w != c->out_w || c->img_h != c->out_h)
		fill_bars(c, &d, hdr);
	for (unsigned i = 0; i < d.count; i++) {
		unsigned hs = i ? d.hsub : 0, vs = i ? d.vsub : 0;
		dst_stride[i] = (int)hdr->plane[i].stride;
		dst[i] = rec + hdr->plane[i].offset + (size_t)(c->img_y >> vs) * hdr->plane[i].stride +
			 (size_t)(c->img_x >> hs) * d.bpp[i];
	}

	if (c->orient)
		return turn_frame(c, f, hdr, &d, dst, dst_stride);
	if (c->copy) {
		for (unsigned i = 0; i < d.count; i++)
			av_image_copy_plane(dst[i], dst_stride[i], f->data[i], f->linesize[i],
					    (int)fr_frame_plane_row_bytes(c->fourcc, c->out_w, i),
					    (int)fr_frame_plane_rows(c->fourcc, c->out_h, i));
		return 0;
	}
	return scale_into(c, f, hdr, &d, dst, dst_stride);
}
