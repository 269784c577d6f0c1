/* output.c - framering-send's encoder and muxer: ring frame -> swscale -> libavcodec -> libavformat.
 *
 * Laid out like FFmpeg's doc/examples/mux.c: open the encoder, give the stream
 * its parameters, open the I/O (unless the format does its own, as RTSP),
 * write the header; per frame send_frame / receive_packet / write; at the end
 * drain and write the trailer. Every call is checked; a failure says once
 * what failed and returns the exit status.
 */
#include "output.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/cpu.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "apputil.h"
#include "consumer_exit.h"
#include "fflog.h"
#include "frame_av.h"

#define PTS_MAP 64 /* frames the encoder may hold whose capture time we keep */
#define LAT_MAX (1u << 20)

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* pts -> capture time of the frames in the encoder, to time each packet. */
static struct {
	int64_t pts;
	uint64_t capture_ns;
} pts_map[PTS_MAP];

bool send_is_network(const char *url)
{
	const char *p = strstr(url, "://");
	return p && strncmp(url, "file:", 5) != 0;
}

uint64_t send_out_queue(const struct send_out *o)
{
	return o->frames_in > o->packets ? o->frames_in - o->packets : 0;
}

static bool is_rgb(enum AVPixelFormat f)
{
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
	return d && (d->flags & AV_PIX_FMT_FLAG_RGB);
}

/* The encoder's pixel format for ring format SRC: --pix-fmt; else SRC itself
 * when the encoder takes it (nothing lost); else, for a lossy encoder,
 * yuv420p (what players take) and for a lossless-only one the format that
 * loses least. */
static enum AVPixelFormat pick_pix_fmt(const struct send_out_cfg *cfg, enum AVPixelFormat src)
{
	const enum AVPixelFormat *l = cfg->codec->pix_fmts;
	if (cfg->pix_fmt != AV_PIX_FMT_NONE)
		return cfg->pix_fmt;
	if (!l)
		return src;
	bool has420 = false;
	for (const enum AVPixelFormat *p = l; *p != AV_PIX_FMT_NONE; p++) {
		if (*p == src)
			return src;
		has420 |= *p == AV_PIX_FMT_YUV420P;
	}
	const AVCodecDescriptor *d = avcodec_descriptor_get(cfg->codec->id);
	bool lossy = !d || (d->props & AV_CODEC_PROP_LOSSY);
	if (lossy && has420)
		return AV_PIX_FMT_YUV420P;
	return avcodec_find_best_pix_fmt_of_list(l, src, 0, NULL);
}

/* The swscale matrix for a header matrix code (the codes are H.273's, as SWS_CS_*). */
static int sws_space(uint8_t m)
{
	switch (m) {
	case FR_FRAME_MATRIX_BT709: case FR_FRAME_MATRIX_FCC: case FR_FRAME_MATRIX_BT470BG:
	case FR_FRAME_MATRIX_BT601: case FR_FRAME_MATRIX_SMPTE240M: case FR_FRAME_MATRIX_BT2020_NCL:
		return m;
	case FR_FRAME_MATRIX_BT2020_CL:
		return FR_FRAME_MATRIX_BT2020_NCL;
	default:
		return SWS_CS_ITU601;
	}
}

/* Open the encoder for frames of H's format at the output size. QUIET: a
 * first attempt, whose failure is not said (the caller tries again). */
static int open_encoder(struct send_out *o, const struct fr_frame_header *h, bool quiet)
{
	const struct send_out_cfg *cfg = o->cfg;
	enum AVPixelFormat src = app_av_pix_fmt(h->fourcc);
	o->enc = avcodec_alloc_context3(cfg->codec);
	if (!o->enc) {
		app_complain("out of memory");
		return CONSUMER_EXIT_OTHER;
	}
	AVCodecContext *e = o->enc;
	e->width = (int)o->out_w;
	e->height = (int)o->out_h;
	e->pix_fmt = o->out_fmt;
	e->time_base = o->tb;
	e->sample_aspect_ratio = (AVRational){1, 1};
	if (cfg->frame_rate.num > 0)
		e->framerate = cfg->frame_rate;
	if (cfg->bit_rate > 0)
		e->bit_rate = cfg->bit_rate;
	if (cfg->gop >= 0)
		e->gop_size = cfg->gop;
	else if (cfg->low_latency)
		e->gop_size = cfg->frame_rate.num > 0 ? (int)(av_q2d(cfg->frame_rate) + 0.5) : 30;
	if (cfg->low_latency) {
		e->max_b_frames = 0;
		e->flags |= AV_CODEC_FLAG_LOW_DELAY;
	}
	e->thread_count = 0;
	/* Colorimetry: YUV->YUV keeps the ring's; RGB->YUV uses the matrix the
	 * record names (BT.601 when it names none), limited range. */
	bool src_rgb = is_rgb(src), dst_rgb = is_rgb(o->out_fmt);
	if (dst_rgb) {
		e->colorspace = AVCOL_SPC_RGB;
		e->color_range = AVCOL_RANGE_JPEG;
	} else if (o->out_fmt == AV_PIX_FMT_GRAY8 && h->fourcc == FR_FRAME_FMT_GRAY8) {
		e->color_range = AVCOL_RANGE_JPEG;
	} else {
		e->colorspace = (enum AVColorSpace)sws_space(h->color_matrix);
		e->color_range = !src_rgb && h->color_range == FR_FRAME_RANGE_FULL ? AVCOL_RANGE_JPEG
										 : AVCOL_RANGE_MPEG;
	}
	if (h->color_primaries)
		e->color_primaries = (enum AVColorPrimaries)h->color_primaries;
	if (h->color_transfer)
		e->color_trc = (enum AVColorTransferCharacteristic)h->color_transfer;
	if (o->mux->oformat->flags & AVFMT_GLOBALHEADER)
		e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

	AVDictionary *d = NULL;
	av_dict_copy(&d, cfg->opts, 0);
	if (cfg->low_latency && av_opt_find(e->priv_data, "tune", NULL, 0, 0) &&
	    !av_dict_get(d, "tune", NULL, 0) && !strcmp(cfg->codec->name, "libx264"))
		av_dict_set(&d, "tune", "zerolatency", 0);
	int ret = avcodec_open2(e, cfg->codec, &d);
	av_dict_free(&d);
	if (ret < 0 && quiet)
		return SEND_EXIT_ENCODER;
	if (ret < 0) {
		app_complain("cannot open the %s encoder for %ux%u %s at time base %d/%d: %s%s", cfg->codec->name,
			     o->out_w, o->out_h, av_get_pix_fmt_name(o->out_fmt), o->tb.num, o->tb.den,
			     av_err2str(ret), fflog_detail());
		return SEND_EXIT_ENCODER;
	}
	return 0;
}

/* The zero-copy mode for a freshly opened encoder: a frame-threaded one hands
 * its input to another thread and lets go of it later, so never. */
static enum send_zero_copy zero_copy_for(const struct send_out *o, enum send_zero_copy want)
{
	return o->enc->active_thread_type & FF_THREAD_FRAME ? SEND_ZC_OFF : want;
}

/* Whether option KEY is one that component OBJ (with its AVClass) knows. */
static bool knows(void *obj, const char *key)
{
	return obj && av_opt_find(obj, key, NULL, 0, AV_OPT_SEARCH_CHILDREN | AV_OPT_SEARCH_FAKE_OBJ);
}

/* The path of a file output ("file:" URLs name it after the colon), or NULL
 * for anything else (a network URL, pipe:, "-"). */
static const char *file_path(const char *url)
{
	if (!strncmp(url, "file:", 5))
		url += 5;
	if (send_is_network(url) || !strncmp(url, "pipe:", 5) || !strcmp(url, "-") || !*url)
		return NULL;
	return url;
}

/* Whether the encoder or the muxer (its generic or its own options) knows KEY. */
static bool known(struct send_out *o, const char *key)
{
	return knows(o->enc, key) || knows(o->mux, key);
}

/* Set the output's geometry and timing from the first frame H; EVEN: one more
 * column / row for an odd 4:2:x size (an encoder that wants even sizes). */
static void set_geometry(struct send_out *o, const struct fr_frame_header *h, bool even)
{
	const struct send_out_cfg *cfg = o->cfg;
	o->fourcc = h->fourcc;
	o->src_w = h->width;
	o->src_h = h->height;
	o->out_w = cfg->width ? cfg->width : h->width;
	o->out_h = cfg->height ? cfg->height : h->height;
	o->out_fmt = pick_pix_fmt(cfg, app_av_pix_fmt(h->fourcc));
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(o->out_fmt);
	if (even && d && d->log2_chroma_w && (o->out_w & 1) && !cfg->width)
		o->out_w++;
	if (even && d && d->log2_chroma_h && (o->out_h & 1) && !cfg->height)
		o->out_h++;
}

/* Set the geometry for H and open the encoder: at the frame's own size when
 * the encoder takes it (FFV1 keeps an odd-sized 4:2:0 picture whole, and
 * lossless), else, for one that wants even 4:2:x sizes (libx264), one more
 * column / row. MUTED: FFmpeg's log is held back already (fflog). */
static int geometry_and_encoder(struct send_out *o, const struct fr_frame_header *h, bool muted)
{
	set_geometry(o, h, true);
	unsigned even_w = o->out_w, even_h = o->out_h;
	set_geometry(o, h, false);
	if (o->out_w != even_w || o->out_h != even_h) {
		fflog_mute(true); /* the refusal of the odd size is no news */
		int ret = open_encoder(o, h, true);
		fflog_mute(muted);
		if (ret == 0)
			return 0;
		avcodec_free_context(&o->enc);
		set_geometry(o, h, true);
	}
	return open_encoder(o, h, false);
}

int send_out_open(struct send_out *o, const struct send_out_cfg *cfg, const struct fr_frame_header *h)
{
	/* the latency samples outlive a reopened output (--reconnect) */
	double *lat = o->lat_ms;
	size_t lat_n = o->lat_n, lat_cap = o->lat_cap;
	*o = (struct send_out){.cfg = cfg, .last_pts = INT64_MIN, .lat_ms = lat, .lat_n = lat_n, .lat_cap = lat_cap};
	int ret = avformat_alloc_output_context2(&o->mux, cfg->ofmt, NULL, cfg->url);
	if (ret < 0 || !o->mux) {
		app_complain("cannot set up the %s muxer for '%s': %s", cfg->ofmt->name, cfg->url, av_err2str(ret));
		return SEND_EXIT_OUTPUT;
	}
	o->mux->interrupt_callback = (AVIOInterruptCB){cfg->interrupt, NULL};
	if (cfg->low_latency) {
		o->mux->flags |= AVFMT_FLAG_FLUSH_PACKETS;
		o->mux->max_delay = 0;
	}
	if (cfg->capture_clock || h->pts == INT64_MIN || h->time_base_num <= 0 || h->time_base_den <= 0)
		o->tb = (AVRational){1, 90000};
	else
		o->tb = (AVRational){h->time_base_num, h->time_base_den};
	o->frame_dur = cfg->frame_rate.num > 0 ? av_rescale_q(1, av_inv_q(cfg->frame_rate), o->tb) : 1;
	if (o->frame_dur < 1)
		o->frame_dur = 1;
	if ((ret = geometry_and_encoder(o, h, true)) != 0)
		return ret;
	o->zc = zero_copy_for(o, cfg->zero_copy);

	o->st = avformat_new_stream(o->mux, NULL);
	o->pkt = av_packet_alloc();
	if (!o->st || !o->pkt) {
		app_complain("out of memory");
		return CONSUMER_EXIT_OTHER;
	}
	o->st->time_base = o->tb;
	if (cfg->frame_rate.num > 0)
		o->st->avg_frame_rate = cfg->frame_rate;
	ret = avcodec_parameters_from_context(o->st->codecpar, o->enc);
	if (ret < 0) {
		app_complain("cannot describe the stream to the muxer: %s", av_err2str(ret));
		return SEND_EXIT_OUTPUT;
	}

	/* Each -o KEY=VALUE must be known to the encoder, the muxer or the
	 * protocol: else it is a typo, and an error before anything is written. */
	const AVDictionaryEntry *e = NULL;
	while ((e = av_dict_get(cfg->opts, "", e, AV_DICT_IGNORE_SUFFIX))) {
		if (known(o, e->key))
			continue;
		if (!(o->mux->oformat->flags & AVFMT_NOFILE)) {
			/* protocol options (srt latency, udp pkt_size, file blocksize ...)
			 * are checked after avio_open2 below, which leaves the unknown
			 * ones in its copy (a file made by then is removed again) */
			continue;
		}
		app_complain("option '%s' is not known to the %s encoder, the %s muxer or its protocol", e->key,
			     cfg->codec->name, o->mux->oformat->name);
		return CONSUMER_EXIT_USAGE;
	}

	AVDictionary *d = NULL;
	av_dict_copy(&d, cfg->opts, 0);
	if (!(o->mux->oformat->flags & AVFMT_NOFILE)) {
		/* Only a regular file (or one the open makes) may be removed later:
		 * never a device (/dev/full, /dev/stdout), a FIFO or a pipe: URL. */
		struct stat sb;
		const char *path = file_path(cfg->url);
		bool plain_file = path && (stat(path, &sb) != 0 ? errno == ENOENT : S_ISREG(sb.st_mode));
		ret = avio_open2(&o->mux->pb, cfg->url, AVIO_FLAG_WRITE, &o->mux->interrupt_callback, &d);
		if (ret < 0) {
			av_dict_free(&d);
			/* stopped while connecting, or while open() waited in the kernel
			 * (a FIFO without a reader) and got EINTR */
			if (ret == AVERROR_EXIT || (ret == AVERROR(EINTR) && app_stop_requested))
				return -1;
			if (!cfg->quiet_open)
				app_complain("cannot open output '%s': %s%s", cfg->url, av_err2str(ret),
					     fflog_detail());
			return SEND_EXIT_OUTPUT;
		}
		/* A file: (re)made by us, so removed again if nothing gets into it (what
		 * was there before was truncated by the open). */
		o->created_file = plain_file;
		/* The protocol's leftovers that neither encoder nor muxer know: typos. */
		e = NULL;
		while ((e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX))) {
			if (known(o, e->key))
				continue;
			app_complain("option '%s' is not known to the %s encoder, the %s muxer or the protocol of '%s'",
				     e->key, cfg->codec->name, o->mux->oformat->name, cfg->url);
			av_dict_free(&d);
			return CONSUMER_EXIT_USAGE;
		}
		av_dict_free(&d);
		av_dict_copy(&d, cfg->opts, 0);
	}
	ret = avformat_write_header(o->mux, &d);
	av_dict_free(&d);
	if (ret < 0) {
		if (ret == AVERROR_EXIT)
			return -1;
		app_complain("cannot start the %s output '%s': %s%s", o->mux->oformat->name, cfg->url, av_err2str(ret),
			     fflog_detail());
		return SEND_EXIT_OUTPUT;
	}
	o->header_written = true;
	return 0;
}

/* Write every packet the encoder has ready. 0 or an exit status. */
static int drain(struct send_out *o)
{
	for (;;) {
		uint64_t c0 = thread_cpu_ns();
		int ret = avcodec_receive_packet(o->enc, o->pkt);
		o->cpu_encode_ns += thread_cpu_ns() - c0;
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0) {
			app_complain("the %s encoder failed: %s", o->cfg->codec->name, av_err2str(ret));
			return SEND_EXIT_ENCODER;
		}
		o->packets++;
		o->bytes += (uint64_t)o->pkt->size;
		if (o->pkt->flags & AV_PKT_FLAG_KEY)
			o->keyframes++;
		int64_t pts = o->pkt->pts;
		if (o->pkt->duration <= 0) /* the last sample of an mp4 needs one, or it is cut */
			o->pkt->duration = o->frame_dur;
		av_packet_rescale_ts(o->pkt, o->tb, o->st->time_base);
		o->pkt->stream_index = o->st->index;
		c0 = thread_cpu_ns();
		ret = av_interleaved_write_frame(o->mux, o->pkt);
		o->cpu_mux_ns += thread_cpu_ns() - c0;
		if (ret >= 0 && o->mux->pb && o->mux->pb->error < 0)
			ret = o->mux->pb->error; /* a buffered write that failed (disk full) */
		if (ret < 0) {
			o->last_error = ret;
			if (ret == AVERROR_EXIT)
				app_complain("writing '%s' was cut short by a stop that did not get through",
					     o->cfg->url);
			else if (send_is_network(o->cfg->url))
				app_complain("the receiver of '%s' went away: %s", o->cfg->url, av_err2str(ret));
			else
				app_complain("cannot write '%s': %s", o->cfg->url, av_err2str(ret));
			return SEND_EXIT_PEER;
		}
		uint64_t cap = pts_map[(uint64_t)pts % PTS_MAP].pts == pts ? pts_map[(uint64_t)pts % PTS_MAP].capture_ns : 0;
		if (cap) {
			double ms = (double)(app_now_ns() - cap) / 1e6;
			o->latency_sum_ms += ms;
			if (o->lat_n == o->lat_cap && o->lat_cap < LAT_MAX) {
				size_t n = o->lat_cap ? o->lat_cap * 2 : 1024;
				double *p = realloc(o->lat_ms, n * sizeof(*p));
				if (p) {
					o->lat_ms = p;
					o->lat_cap = n;
				}
			}
			if (o->lat_n < o->lat_cap)
				o->lat_ms[o->lat_n++] = ms;
		}
	}
}

/* Restart the encoder for frames of H's new size or format (--on-change restart):
 * drain the old one into the stream, open a new one in its place. */
static int restart_encoder(struct send_out *o, const struct fr_frame_header *h)
{
	int ret = avcodec_send_frame(o->enc, NULL);
	if (ret == 0 && (ret = drain(o)) != 0)
		return ret;
	avcodec_free_context(&o->enc);
	sws_freeContext(o->sws);
	o->sws = NULL;
	if ((ret = geometry_and_encoder(o, h, false)) != 0)
		return ret;
	o->zc = zero_copy_for(o, o->zc);
	avcodec_parameters_from_context(o->st->codecpar, o->enc);
	return 0;
}

/* The pts of H in the encoder's time base, strictly after the last one: a
 * timeline that jumps back (a loop, a restarted producer) is moved on. */
static int64_t frame_pts(struct send_out *o, const struct fr_frame_header *h)
{
	int64_t pts;
	if (o->tb.num == 1 && o->tb.den == 90000 &&
	    (o->cfg->capture_clock || h->pts == INT64_MIN || h->time_base_num <= 0)) {
		if (!o->have_pts)
			o->first_capture_ns = h->capture_ns;
		pts = av_rescale((int64_t)(h->capture_ns - o->first_capture_ns), 90000, 1000000000);
	} else if (h->pts == INT64_MIN || h->time_base_num <= 0 || h->time_base_den <= 0) {
		/* a frame without a time in a timed stream: one step after the last */
		pts = o->have_pts ? o->last_pts + o->frame_dur : 0;
		o->have_pts = true;
		o->last_pts = pts;
		return pts;
	} else {
		pts = av_rescale_q(h->pts, (AVRational){h->time_base_num, h->time_base_den}, o->tb);
	}
	pts += o->pts_offset;
	if (o->have_pts && pts <= o->last_pts) {
		o->pts_offset += o->last_pts + o->frame_dur - pts;
		pts = o->last_pts + o->frame_dur;
	} else if (o->have_pts) {
		o->frame_dur = pts - o->last_pts; /* the step a jump back continues with */
	}
	o->have_pts = true;
	o->last_pts = pts;
	return pts;
}

/* The free callback of a buffer over ring memory: the encoder side let go of it. */
static void ring_buffer_freed(void *opaque, uint8_t *data)
{
	(void)data;
	atomic_fetch_sub(&((struct send_out *)opaque)->ring_refs, 1);
}

/* Whether the record's planes can be the encoder's frame as they lie: every
 * plane and stride aligned as libavcodec's own frames are (SIMD loads). */
static bool aligned_for_simd(const struct fr_frame_header *h, const uint8_t *rec)
{
	size_t align = av_cpu_max_align();
	for (uint32_t i = 0; i < h->plane_count && i < 4; i++)
		if (((uintptr_t)(rec + h->plane[i].offset) | h->plane[i].stride) & (align - 1))
			return false;
	return true;
}

/* Frame F over the record REC itself: its buffer is ring memory, read-only, and
 * o->ring_refs counts it until the encoder side frees it. */
static int wrap_record(struct send_out *o, const struct fr_frame_header *h, const uint8_t *rec, AVFrame *f)
{
	f->buf[0] = av_buffer_create((uint8_t *)rec + h->plane[0].offset, (size_t)h->image_size, ring_buffer_freed, o,
				     AV_BUFFER_FLAG_READONLY);
	if (!f->buf[0]) {
		app_complain("out of memory");
		return CONSUMER_EXIT_OTHER;
	}
	atomic_fetch_add(&o->ring_refs, 1);
	for (uint32_t i = 0; i < h->plane_count && i < 4; i++) {
		f->data[i] = (uint8_t *)rec + h->plane[i].offset;
		f->linesize[i] = (int)h->plane[i].stride;
	}
	o->held = *h;
	return 0;
}

/* Convert (swscale) the record's planes SP/SS into F, straight from the ring. */
static int convert_into(struct send_out *o, const struct fr_frame_header *h, const uint8_t *const sp[4],
			const int ss[4], AVFrame *f)
{
	enum AVPixelFormat src = app_av_pix_fmt(h->fourcc);
	if (!o->sws || o->sws_fourcc != h->fourcc || o->sws_w != h->width || o->sws_h != h->height ||
	    o->sws_matrix != h->color_matrix || o->sws_range != h->color_range) {
		sws_freeContext(o->sws);
		o->sws = sws_getContext((int)h->width, (int)h->height, src, (int)o->out_w, (int)o->out_h, o->out_fmt,
					SWS_BICUBIC, NULL, NULL, NULL);
		if (!o->sws) {
			app_complain("cannot convert %ux%u %s to %ux%u %s", h->width, h->height,
				     fr_frame_format_name(h->fourcc), o->out_w, o->out_h, av_get_pix_fmt_name(o->out_fmt));
			return CONSUMER_EXIT_OTHER;
		}
		int in_full = is_rgb(src) || h->fourcc == FR_FRAME_FMT_GRAY8 || h->color_range == FR_FRAME_RANGE_FULL;
		int out_full = o->enc->color_range == AVCOL_RANGE_JPEG;
		const int *ci = sws_getCoefficients(sws_space(h->color_matrix));
		const int *co = sws_getCoefficients(o->enc->colorspace == AVCOL_SPC_RGB ? SWS_CS_ITU601
							: sws_space((uint8_t)o->enc->colorspace));
		sws_setColorspaceDetails(o->sws, ci, in_full, co, out_full, 0, 1 << 16, 1 << 16);
		o->sws_fourcc = h->fourcc;
		o->sws_w = h->width;
		o->sws_h = h->height;
		o->sws_matrix = h->color_matrix;
		o->sws_range = h->color_range;
	}
	sws_scale(o->sws, sp, ss, 0, (int)h->height, f->data, f->linesize);
	return 0;
}

int send_out_convert(struct send_out *o, const struct fr_frame_header *h, const uint8_t *rec, AVFrame **out)
{
	int ret;
	if (h->fourcc != o->fourcc || h->width != o->src_w || h->height != o->src_h) {
		if (o->cfg->restart_on_change) {
			if ((ret = restart_encoder(o, h)) != 0)
				return ret;
			o->restarts++;
		} else {
			o->scaled_changes++;
		}
		o->fourcc = h->fourcc;
		o->src_w = h->width;
		o->src_h = h->height;
	}
	uint64_t c0 = thread_cpu_ns();
	AVFrame *f = av_frame_alloc();
	if (!f) {
		app_complain("out of memory");
		return CONSUMER_EXIT_OTHER;
	}
	f->format = o->out_fmt;
	f->width = (int)o->out_w;
	f->height = (int)o->out_h;
	bool same = app_av_pix_fmt(h->fourcc) == o->out_fmt && h->width == o->out_w && h->height == o->out_h;
	bool in_place = same && aligned_for_simd(h, rec);
	if (in_place && o->zc == SEND_ZC_ON) {
		o->path = SEND_PATH_ZERO_COPY;
		ret = wrap_record(o, h, rec, f);
	} else if ((ret = av_frame_get_buffer(f, 0)) < 0) {
		app_complain("out of memory");
		ret = CONSUMER_EXIT_OTHER;
	} else {
		const uint8_t *sp[4] = {0};
		int ss[4] = {0};
		for (uint32_t i = 0; i < h->plane_count && i < 4; i++) {
			sp[i] = rec + h->plane[i].offset;
			ss[i] = (int)h->plane[i].stride;
		}
		if (same) {
			o->path = SEND_PATH_COPY;
			av_image_copy(f->data, f->linesize, sp, ss, o->out_fmt, (int)h->width, (int)h->height);
			/* a probe: does the encoder let go of this copy within the call? */
			for (int i = 0; in_place && o->zc == SEND_ZC_AUTO && i < 4 && f->buf[i]; i++)
				if (!(o->probe[i] = av_buffer_ref(f->buf[i]))) {
					app_complain("out of memory");
					ret = CONSUMER_EXIT_OTHER;
				}
		} else {
			o->path = SEND_PATH_CONVERT;
			ret = convert_into(o, h, sp, ss, f);
		}
	}
	o->cpu_convert_ns += thread_cpu_ns() - c0;
	if (ret != 0) {
		av_frame_free(&f);
		return ret;
	}
	f->pts = frame_pts(o, h);
	pts_map[(uint64_t)f->pts % PTS_MAP].pts = f->pts;
	pts_map[(uint64_t)f->pts % PTS_MAP].capture_ns = h->capture_ns;
	*out = f;
	return 0;
}

/* After a probe frame was sent and drained: count it if the encoder kept none
 * of our copy's buffers; one it kept means no zero-copy with this encoder. */
static void end_probe(struct send_out *o)
{
	bool kept = false;
	for (int i = 0; i < 4 && o->probe[i]; i++) {
		kept |= av_buffer_get_ref_count(o->probe[i]) > 1;
		av_buffer_unref(&o->probe[i]);
	}
	if (o->zc != SEND_ZC_AUTO)
		return;
	if (kept)
		o->zc = SEND_ZC_OFF;
	else if (++o->zc_probes_ok >= SEND_ZC_PROBES)
		o->zc = SEND_ZC_ON;
}

/* The encoder still holds ring memory after a send and a drain (it kept the
 * zero-copy frame, against what it did before): drain it and close it, which
 * frees every frame it holds, then open a new one in the same stream that
 * gets copies. CODE: the status so far. */
static int let_go_of_ring(struct send_out *o, int code)
{
	o->zc_fallbacks++;
	o->zc = SEND_ZC_OFF;
	if (code == 0) {
		app_complain("the %s encoder kept a frame that lies in the ring: restarting it, and copying "
			     "frames into it from now on", o->cfg->codec->name);
		code = restart_encoder(o, &o->held);
	}
	if (atomic_load(&o->ring_refs) != 0)
		avcodec_free_context(&o->enc); /* the run ends (CODE): closing frees what it held */
	if (atomic_load(&o->ring_refs) != 0) {
		/* libavcodec frees every frame a closed encoder held: cannot happen, and
		 * releasing the record now would let the producer write under it */
		app_complain("the %s encoder still holds a frame in the ring after closing", o->cfg->codec->name);
		abort();
	}
	return code;
}

int send_out_encode(struct send_out *o, AVFrame **frame)
{
	AVFrame *f = *frame;
	*frame = NULL;
	uint64_t c0 = thread_cpu_ns();
	int ret;
	ret = avcodec_send_frame(o->enc, f);
	o->cpu_encode_ns += thread_cpu_ns() - c0;
	av_frame_free(&f);
	int code = 0;
	if (ret < 0) {
		app_complain("the %s encoder refused a frame: %s", o->cfg->codec->name, av_err2str(ret));
		code = SEND_EXIT_ENCODER;
	} else {
		o->frames_in++;
		code = drain(o);
	}
	switch (o->path) {
	case SEND_PATH_ZERO_COPY: o->frames_zero_copy++; break;
	case SEND_PATH_COPY: o->frames_copied++; break;
	case SEND_PATH_CONVERT: o->frames_converted++; break;
	case SEND_PATH_NONE: break;
	}
	if (o->probe[0])
		end_probe(o);
	if (atomic_load(&o->ring_refs) != 0)
		code = let_go_of_ring(o, code);
	return code;
}

const char *send_input_path_name(enum send_input_path p)
{
	static const char *const names[] = {"", "zero-copy", "copy", "convert"};
	return names[p];
}

int send_out_finish(struct send_out *o)
{
	if (!o->header_written)
		return 0;
	if (o->last_error)
		return SEND_EXIT_PEER; /* the output failed already (said then): nothing more goes there */
	int code = 0;
	if (o->enc && avcodec_send_frame(o->enc, NULL) == 0)
		code = drain(o);
	if (code == SEND_EXIT_PEER)
		return code; /* no trailer to a peer that is gone */
	int ret = av_write_trailer(o->mux);
	o->trailer_written = true;
	if (ret < 0) {
		app_complain("cannot finish '%s': %s", o->cfg->url, av_err2str(ret));
		return code ? code : SEND_EXIT_PEER;
	}
	if (o->mux->pb) {
		avio_flush(o->mux->pb);
		if (o->mux->pb->error < 0) {
			app_complain("cannot write '%s': %s", o->cfg->url, av_err2str(o->mux->pb->error));
			return code ? code : SEND_EXIT_PEER;
		}
	}
	return code;
}

void send_out_close(struct send_out *o)
{
	if (o->header_written && !o->trailer_written) {
		/* The output failed (it was said): the trailer only lets the muxer
		 * free what it holds (RTSP's streams); its own errors are no news. */
		fflog_mute(true);
		av_write_trailer(o->mux);
		fflog_mute(false);
		o->trailer_written = true;
	}
	if (o->mux && o->mux->pb && !(o->mux->oformat->flags & AVFMT_NOFILE))
		avio_closep(&o->mux->pb);
	if (o->created_file && o->packets == 0)
		unlink(file_path(o->cfg->url)); /* nothing in it: no half file */
	avformat_free_context(o->mux);
	o->mux = NULL;
	avcodec_free_context(&o->enc);
	for (int i = 0; i < 4; i++)
		av_buffer_unref(&o->probe[i]);
	av_packet_free(&o->pkt);
	sws_freeContext(o->sws);
	o->sws = NULL;
}
