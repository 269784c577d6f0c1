/* view.c - framering-view: show the frames of a framering ring in an SDL2 window (or headless, for tests/benchmarks).
 *
 * The frame stays in shared memory: it is copied once, by SDL_LockTexture/memcpy/SDL_UnlockTexture
 * (like SDL's test/teststreaming.c) straight from the ring record into the streaming texture (the
 * GPU upload; --upload update hands the planes to SDL_Update*Texture instead), and the ring record
 * is released right after that copy, before rendering, so the producer gets its space back as early
 * as possible. SDL renderers have no 24-bit texture: for BGR24/RGB24 SDL converts to ARGB itself,
 * from its lock buffer at unlock (an extra pass), or with --upload update straight from shared
 * memory. Structure follows FFmpeg's doc/examples/demux_decode.c: a linear main loop, every call
 * checked, one cleanup path at `end:`.
 */
#define SDL_MAIN_HANDLED
#include <SDL.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "apputil.h"
#include "consumer_exit.h"
#include "frame.h"
#include "ring.h"

#define PROG "framering-view"
#define POLL_NS (10 * 1000000LL)   /* how long one peek waits before events are looked at again */
#define OPEN_SLICE_NS (100 * 1000000LL)
#define REPORT_NS (500 * 1000000ULL) /* progress line / window title refresh */
#define LIVENESS_NS (200 * 1000000ULL)
#define LAT_MAX_SAMPLES (1u << 20)   /* latency samples kept (the newest), ~4.8 h at 60 fps */

struct options {
	const char *ring_name;
	double wait_s;
	bool wait_forever;
	bool latest;
	bool hold, reconnect, headless, vsync, quiet, fullscreen;
	bool upload_update; /* --upload update: SDL_Update*Texture instead of lock/copy/unlock */
	const char *snapshot;
	uint64_t snapshot_at;
	bool have_at;
	uint64_t max_frames; /* 0: no limit */
	const char *stats_json;
	unsigned size_w, size_h; /* initial window size; 0: from the first frame */
};

struct stats {
	uint64_t shown, skipped, lost, bad_records, reconnects;
	uint64_t bad_since_shown; /* invalid records skipped since the last shown frame */
	uint64_t last_seq;
	bool have_seq;
	double *lat_ms; /* cyclic once LAT_MAX_SAMPLES are reached */
	size_t lat_n, lat_cap, lat_total;
	uint64_t upload_cpu_ns, render_cpu_ns; /* CLOCK_THREAD_CPUTIME_ID */
	uint64_t t_first_ns, t_last_ns;        /* wall clock of the first and last shown frame */
	struct rusage ru_first;
	/* for the progress line / title: the interval since the last report */
	uint64_t iv_t0, iv_shown;
	double iv_fps, last_lat_ms;
};

struct viewer {
	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *tex;
	uint32_t fourcc, w, h; /* of the texture */
	bool have_frame;       /* the texture holds a frame */
	uint64_t seq;          /* its seq */
	bool fullscreen;
	uint8_t *gray_chroma; /* U = V = 128 for GRAY8 with --upload update */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [OPTIONS]\n"
		"Show the raw video frames of a framering ring (written by framering-capture) in a window.\n"
		"\n"
		"  -r, --ring NAME      ring to open (default \"framering\")\n"
		"  -w, --wait SEC       wait up to SEC seconds for the producer to create the ring\n"
		"                       (default: forever; 0: do not wait)\n"
		"      --latest         always show the newest frame, skipping older ones (default)\n"
		"      --every          show every frame, in order\n"
		"      --hold           at end of stream keep the last frame up until q/Esc (not with --headless)\n"
		"      --reconnect      when the producer dies, wait for a new one instead of exiting\n"
		"      --no-vsync       do not wait for the display refresh when presenting\n"
		"      --upload lock|update\n"
		"                       fill the texture by SDL_LockTexture + copy (default), or hand the\n"
		"                       frame's planes to SDL_UpdateTexture/UpdateYUVTexture/UpdateNVTexture\n"
		"      --fullscreen     start in fullscreen\n"
		"      --size WxH       initial window size (default: the frame size, shrunk to fit the screen)\n"
		"      --headless       no window: SDL's offscreen (or dummy) video driver and the software\n"
		"                       renderer; frames go through the same texture upload and render\n"
		"      --snapshot FILE  write the rendered frame (read back from the renderer) to FILE:\n"
		"                       .ppm gives a binary PPM, anything else a 24-bit BMP\n"
		"      --at N           which frame --snapshot writes: the first shown with seq >= N (default 0)\n"
		"  -n, --frames N       exit after N frames shown\n"
		"  -q, --quiet          no progress line, no summary\n"
		"      --stats-json FILE write the summary as JSON to FILE\n"
		"  -h, --help           this text\n"
		"\n"
		"Keys: f fullscreen, space pause, s save the shown frame (framering-view-SEQ.bmp), q/Esc quit.\n"
		"The window title shows size, format, fps, skipped frames and glass-to-glass latency\n"
		"(present time minus the frame's capture time).\n"
		"\n"
		"A record that is not a valid frame is skipped (warned about once, counted as bad in the\n"
		"summary); a corrupt ring ends the viewer. Every failure is one line on stderr.\n"
		"\n" CONSUMER_EXIT_HELP
		"Here 6 also means: the --snapshot frame was never shown.\n");
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double rusage_cpu_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_LATEST = 256, OPT_EVERY, OPT_HOLD, OPT_RECONNECT, OPT_NO_VSYNC, OPT_FULLSCREEN,
	       OPT_SIZE, OPT_HEADLESS, OPT_SNAPSHOT, OPT_AT, OPT_STATS_JSON, OPT_UPLOAD };
	static const struct option longopts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "latest", no_argument, NULL, OPT_LATEST },
		{ "every", no_argument, NULL, OPT_EVERY },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ "reconnect", no_argument, NULL, OPT_RECONNECT },
		{ "no-vsync", no_argument, NULL, OPT_NO_VSYNC },
		{ "fullscreen", no_argument, NULL, OPT_FULLSCREEN },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "headless", no_argument, NULL, OPT_HEADLESS },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		{ "at", required_argument, NULL, OPT_AT },
		{ "frames", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "stats-json", required_argument, NULL, OPT_STATS_JSON },
		{ "upload", required_argument, NULL, OPT_UPLOAD },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->ring_name = "framering";
	o->wait_forever = true;
	o->latest = true;
	o->vsync = true;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:w:n:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!*optarg || strlen(optarg) > RING_NAME_MAX) {
				fprintf(stderr, PROG ": bad ring name '%s'\n", optarg);
				return -1;
			}
			o->ring_name = optarg;
			break;
		case 'w':
			if (app_parse_seconds(optarg, &o->wait_s) < 0) {
				fprintf(stderr, PROG ": bad --wait '%s' (seconds expected)\n", optarg);
				return -1;
			}
			o->wait_forever = false;
			break;
		case OPT_LATEST: o->latest = true; break;
		case OPT_EVERY: o->latest = false; break;
		case OPT_HOLD: o->hold = true; break;
		case OPT_RECONNECT: o->reconnect = true; break;
		case OPT_NO_VSYNC: o->vsync = false; break;
		case OPT_FULLSCREEN: o->fullscreen = true; break;
		case OPT_HEADLESS: o->headless = true; break;
		case OPT_SIZE:
			if (app_parse_size(optarg, &o->size_w, &o->size_h) < 0) {
				fprintf(stderr, PROG ": bad --size '%s' (WxH expected)\n", optarg);
				return -1;
			}
			break;
		case OPT_SNAPSHOT: o->snapshot = optarg; break;
		case OPT_AT:
			if (app_parse_u64(optarg, &o->snapshot_at) < 0) {
				fprintf(stderr, PROG ": bad --at '%s' (frame number expected)\n", optarg);
				return -1;
			}
			o->have_at = true;
			break;
		case 'n':
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				fprintf(stderr, PROG ": bad --frames '%s' (positive number expected)\n", optarg);
				return -1;
			}
			break;
		case 'q': o->quiet = true; break;
		case OPT_STATS_JSON: o->stats_json = optarg; break;
		case OPT_UPLOAD:
			if (strcmp(optarg, "lock") && strcmp(optarg, "update")) {
				fprintf(stderr, PROG ": bad --upload '%s' (lock or update)\n", optarg);
				return -1;
			}
			o->upload_update = !strcmp(optarg, "update");
			break;
		case 'h': usage(stdout); exit(CONSUMER_EXIT_DONE);
		case ':':
			fprintf(stderr, PROG ": option '%s' needs an argument (see --help)\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
		return -1;
	}
	if (o->have_at && !o->snapshot) {
		fprintf(stderr, PROG ": --at needs --snapshot FILE\n");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ SDL side */

static int create_window(struct viewer *v, const struct options *o, uint32_t w, uint32_t h)
{
	int ww = (int)w, wh = (int)h;
	Uint32 wflags = 0, rflags = 0;

	if (o->headless) {
		/* Window = frame size, so the rendered frame is the frame pixel for pixel. */
		rflags = SDL_RENDERER_SOFTWARE;
	} else {
		SDL_Rect usable;
		wflags = SDL_WINDOW_RESIZABLE;
		rflags = SDL_RENDERER_ACCELERATED | (o->vsync ? SDL_RENDERER_PRESENTVSYNC : 0);
		if (o->size_w) {
			ww = (int)o->size_w;
			wh = (int)o->size_h;
		} else if (SDL_GetDisplayUsableBounds(0, &usable) == 0 && usable.w > 0 && usable.h > 0 &&
			   (ww > usable.w * 9 / 10 || wh > usable.h * 9 / 10)) {
			/* Shrink to 90% of the screen, keeping the aspect ratio. */
			double s = SDL_min(usable.w * 0.9 / ww, usable.h * 0.9 / wh);
			ww = SDL_max(1, (int)(ww * s));
			wh = SDL_max(1, (int)(wh * s));
		}
	}
	v->win = SDL_CreateWindow(PROG, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, ww, wh, wflags);
	if (!v->win) {
		fprintf(stderr, PROG ": SDL_CreateWindow failed: %s\n", SDL_GetError());
		return -1;
	}
	v->ren = SDL_CreateRenderer(v->win, -1, rflags);
	if (!v->ren && !o->headless) {
		/* No accelerated renderer (e.g. no GL): take whatever SDL has, the software one last. */
		fprintf(stderr, PROG ": SDL_CreateRenderer(accelerated) failed: %s; trying any renderer\n",
			SDL_GetError());
		v->ren = SDL_CreateRenderer(v->win, -1, o->vsync ? SDL_RENDERER_PRESENTVSYNC : 0);
	}
	if (!v->ren) {
		fprintf(stderr, PROG ": SDL_CreateRenderer failed: %s\n", SDL_GetError());
		return -1;
	}
	if (o->fullscreen && !o->headless) {
		if (SDL_SetWindowFullscreen(v->win, SDL_WINDOW_FULLSCREEN_DESKTOP) < 0)
			fprintf(stderr, PROG ": SDL_SetWindowFullscreen failed: %s\n", SDL_GetError());
		else
			v->fullscreen = true;
	}
	if (!o->quiet) {
		SDL_RendererInfo info;
		if (SDL_GetRendererInfo(v->ren, &info) == 0)
			fprintf(stderr, PROG ": video driver %s, renderer %s%s\n", SDL_GetCurrentVideoDriver(),
				info.name, /* offscreen nothing waits, whatever the flag says */
				(info.flags & SDL_RENDERER_PRESENTVSYNC) && !o->headless ? ", vsync" : "");
	}
	return 0;
}

static Uint32 sdl_format_of(uint32_t fourcc)
{
	switch (fourcc) {
	case FRAME_FMT_BGR24: return SDL_PIXELFORMAT_BGR24; /* bytes B G R, like the frame */
	case FRAME_FMT_RGB24: return SDL_PIXELFORMAT_RGB24;
	case FRAME_FMT_GRAY8: return SDL_PIXELFORMAT_IYUV;  /* Y = gray, U = V = 128 */
	case FRAME_FMT_I420: return SDL_PIXELFORMAT_IYUV;
	case FRAME_FMT_NV12: return SDL_PIXELFORMAT_NV12;
	default: return SDL_PIXELFORMAT_UNKNOWN;
	}
}

/* Make the texture match the frame's format and size (re-created on a change). */
static int ensure_texture(struct viewer *v, const struct options *o, const struct frame_header *h)
{
	Uint32 fmt = sdl_format_of(h->fourcc);

	if (v->tex && v->fourcc == h->fourcc && v->w == h->width && v->h == h->height)
		return 0;
	if (fmt == SDL_PIXELFORMAT_UNKNOWN) {
		fprintf(stderr, PROG ": frame format 0x%08" PRIx32 " cannot be shown\n", h->fourcc);
		return -1;
	}
	if (!v->win) {
		if (create_window(v, o, h->width, h->height) < 0)
			return -1;
	} else if (o->headless) {
		/* Keep the window the frame's size so snapshots stay pixel exact. */
		SDL_SetWindowSize(v->win, (int)h->width, (int)h->height);
	}
	if (v->tex) {
		SDL_DestroyTexture(v->tex);
		v->tex = NULL;
		v->have_frame = false;
	}
	/* GRAY8 is shown as full-range Y (R = G = B = Y); the YUV formats as FFmpeg's swscale writes
	 * them by default: BT.601, limited range. SDL reads this mode when it converts/draws. */
	SDL_SetYUVConversionMode(h->fourcc == FRAME_FMT_GRAY8 ? SDL_YUV_CONVERSION_JPEG
							  : SDL_YUV_CONVERSION_BT601);
	v->tex = SDL_CreateTexture(v->ren, fmt, SDL_TEXTUREACCESS_STREAMING, (int)h->width, (int)h->height);
	if (!v->tex) {
		fprintf(stderr, PROG ": SDL_CreateTexture(%s %" PRIu32 "x%" PRIu32 ") failed: %s\n",
			SDL_GetPixelFormatName(fmt), h->width, h->height, SDL_GetError());
		return -1;
	}
	if (SDL_SetTextureBlendMode(v->tex, SDL_BLENDMODE_NONE) < 0)
		fprintf(stderr, PROG ": SDL_SetTextureBlendMode failed: %s\n", SDL_GetError());
	free(v->gray_chroma);
	v->gray_chroma = NULL;
	if (h->fourcc == FRAME_FMT_GRAY8 && o->upload_update) {
		/* One chroma plane of 128s serves as U and V of every frame. */
		size_t csize = (size_t)((h->width + 1) / 2) * ((h->height + 1) / 2);
		v->gray_chroma = malloc(csize);
		if (!v->gray_chroma) {
			fprintf(stderr, PROG ": out of memory\n");
			return -1;
		}
		memset(v->gray_chroma, 128, csize);
	} else if (h->fourcc == FRAME_FMT_GRAY8) {
		/* Neutral chroma, written once: every renderer on Linux (software, GL, GLES2) keeps the
		 * locked buffer of a streaming texture between locks, so later locks only write Y. */
		void *pixels;
		int pitch;
		if (SDL_LockTexture(v->tex, NULL, &pixels, &pitch) < 0) {
			fprintf(stderr, PROG ": SDL_LockTexture failed: %s\n", SDL_GetError());
			return -1;
		}
		size_t ysize = (size_t)pitch * h->height;
		size_t csize = 2 * (size_t)((pitch + 1) / 2) * ((h->height + 1) / 2);
		memset(pixels, 0, ysize);
		memset((uint8_t *)pixels + ysize, 128, csize);
		SDL_UnlockTexture(v->tex);
	}
	v->fourcc = h->fourcc;
	v->w = h->width;
	v->h = h->height;
	return 0;
}

static void copy_plane(uint8_t *dst, size_t dst_pitch, const uint8_t *src, size_t src_stride,
		       size_t row_bytes, size_t rows)
{
	if (dst_pitch == src_stride && row_bytes == src_stride) {
		memcpy(dst, src, row_bytes * rows);
		return;
	}
	for (size_t y = 0; y < rows; y++)
		memcpy(dst + y * dst_pitch, src + y * src_stride, row_bytes);
}

/* --upload update: SDL reads the planes in shared memory itself, each with its own stride. When
 * the renderer has no texture of the frame's format (24-bit RGB: SDL keeps a staging buffer and
 * converts to ARGB at unlock) this saves the pass through the lock buffer. */
static int upload_update(struct viewer *v, const struct frame_header *h, const uint8_t *rec)
{
	const uint8_t *p0 = rec + h->plane[0].offset;
	int s0 = (int)h->plane[0].stride, ret;
	const char *fn;

	switch (h->fourcc) {
	case FRAME_FMT_GRAY8:
		fn = "SDL_UpdateYUVTexture";
		ret = SDL_UpdateYUVTexture(v->tex, NULL, p0, s0, v->gray_chroma, (int)(h->width + 1) / 2,
					   v->gray_chroma, (int)(h->width + 1) / 2);
		break;
	case FRAME_FMT_I420:
		fn = "SDL_UpdateYUVTexture";
		ret = SDL_UpdateYUVTexture(v->tex, NULL, p0, s0, rec + h->plane[1].offset, (int)h->plane[1].stride,
					   rec + h->plane[2].offset, (int)h->plane[2].stride);
		break;
	case FRAME_FMT_NV12:
		fn = "SDL_UpdateNVTexture";
		ret = SDL_UpdateNVTexture(v->tex, NULL, p0, s0, rec + h->plane[1].offset, (int)h->plane[1].stride);
		break;
	default:
		fn = "SDL_UpdateTexture";
		ret = SDL_UpdateTexture(v->tex, NULL, p0, s0);
		break;
	}
	if (ret < 0) {
		fprintf(stderr, PROG ": %s failed: %s\n", fn, SDL_GetError());
		return -1;
	}
	return 0;
}

/* The one copy: from the ring record into the texture, honouring the frame's strides and the
 * texture's pitch. The locked YUV layout is SDL's: planes back to back, chroma pitch (pitch+1)/2
 * (IYUV) or 2*((pitch+1)/2) (NV12), chroma rows (h+1)/2. */
static int upload(struct viewer *v, const struct frame_header *h, const uint8_t *rec, bool update)
{
	void *pixels;
	int pitch;

	if (update)
		return upload_update(v, h, rec);
	if (SDL_LockTexture(v->tex, NULL, &pixels, &pitch) < 0) {
		fprintf(stderr, PROG ": SDL_LockTexture failed: %s\n", SDL_GetError());
		return -1;
	}
	uint8_t *dst = pixels;
	size_t p = (size_t)pitch, rows = h->height, crows = (h->height + 1) / 2;
	const uint8_t *src[FRAME_MAX_PLANES];
	for (uint32_t i = 0; i < h->plane_count && i < FRAME_MAX_PLANES; i++)
		src[i] = rec + h->plane[i].offset;

	switch (h->fourcc) {
	case FRAME_FMT_BGR24:
	case FRAME_FMT_RGB24:
	case FRAME_FMT_GRAY8: /* chroma of the IYUV texture was set once in ensure_texture() */
		copy_plane(dst, p, src[0], h->plane[0].stride, frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		break;
	case FRAME_FMT_I420: {
		size_t cp = (p + 1) / 2;
		uint8_t *u = dst + p * rows, *vv = u + cp * crows;
		copy_plane(dst, p, src[0], h->plane[0].stride, frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		copy_plane(u, cp, src[1], h->plane[1].stride, frame_plane_row_bytes(h->fourcc, h->width, 1),
			   frame_plane_rows(h->fourcc, h->height, 1));
		copy_plane(vv, cp, src[2], h->plane[2].stride, frame_plane_row_bytes(h->fourcc, h->width, 2),
			   frame_plane_rows(h->fourcc, h->height, 2));
		break;
	}
	case FRAME_FMT_NV12: {
		size_t cp = 2 * ((p + 1) / 2);
		copy_plane(dst, p, src[0], h->plane[0].stride, frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		copy_plane(dst + p * rows, cp, src[1], h->plane[1].stride,
			   frame_plane_row_bytes(h->fourcc, h->width, 1), frame_plane_rows(h->fourcc, h->height, 1));
		break;
	}
	}
	SDL_UnlockTexture(v->tex);
	return 0;
}

/* Write W x H pixels read back from the renderer to PATH (BMP, or PPM for *.ppm). */
static int save_readback(SDL_Renderer *ren, const SDL_Rect *r, const char *path)
{
	size_t n = strlen(path);
	bool ppm = n >= 4 && SDL_strcasecmp(path + n - 4, ".ppm") == 0;
	/* BGR24 is BMP's own byte order, so SDL_SaveBMP writes it without a conversion. */
	SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, r->w, r->h, 24,
							ppm ? SDL_PIXELFORMAT_RGB24 : SDL_PIXELFORMAT_BGR24);
	int ret = -1;

	if (!s) {
		fprintf(stderr, PROG ": SDL_CreateRGBSurfaceWithFormat failed: %s\n", SDL_GetError());
		return -1;
	}
	if (SDL_RenderReadPixels(ren, r, s->format->format, s->pixels, s->pitch) < 0) {
		fprintf(stderr, PROG ": SDL_RenderReadPixels failed: %s\n", SDL_GetError());
		goto end;
	}
	if (ppm) {
		FILE *f = fopen(path, "wb");
		if (!f) {
			fprintf(stderr, PROG ": cannot write '%s': %s\n", path, strerror(errno));
			goto end;
		}
		bool ok = fprintf(f, "P6\n%d %d\n255\n", r->w, r->h) > 0;
		for (int y = 0; ok && y < r->h; y++)
			ok = fwrite((uint8_t *)s->pixels + (size_t)y * s->pitch, 3, (size_t)r->w, f) == (size_t)r->w;
		if (fclose(f) != 0 || !ok) {
			fprintf(stderr, PROG ": cannot write '%s': %s\n", path, strerror(errno));
			goto end;
		}
	} else if (SDL_SaveBMP(s, path) < 0) {
		fprintf(stderr, PROG ": SDL_SaveBMP('%s') failed: %s\n", path, SDL_GetError());
		goto end;
	}
	ret = 0;
end:
	SDL_FreeSurface(s);
	return ret;
}

/* Draw the texture letterboxed into the window and present it. With SNAPSHOT, the drawn frame
 * is read back (before the present: the back buffer is undefined after it) and saved. Returns 0,
 * -1 for an SDL failure, -2 when only the snapshot failed. */
static int render(struct viewer *v, const char *snapshot)
{
	int ow, oh, ret = 0;
	SDL_Rect dst;

	if (SDL_GetRendererOutputSize(v->ren, &ow, &oh) < 0) {
		fprintf(stderr, PROG ": SDL_GetRendererOutputSize failed: %s\n", SDL_GetError());
		return -1;
	}
	/* Largest rectangle of the frame's aspect ratio that fits, centred. */
	if ((int64_t)ow * v->h > (int64_t)oh * v->w) {
		dst.h = oh;
		dst.w = (int)((int64_t)oh * v->w / v->h);
	} else {
		dst.w = ow;
		dst.h = (int)((int64_t)ow * v->h / v->w);
	}
	dst.w = SDL_max(dst.w, 1);
	dst.h = SDL_max(dst.h, 1);
	dst.x = (ow - dst.w) / 2;
	dst.y = (oh - dst.h) / 2;
	if (SDL_SetRenderDrawColor(v->ren, 0, 0, 0, 255) < 0 || SDL_RenderClear(v->ren) < 0) {
		fprintf(stderr, PROG ": SDL_RenderClear failed: %s\n", SDL_GetError());
		return -1;
	}
	if (SDL_RenderCopy(v->ren, v->tex, NULL, &dst) < 0) {
		fprintf(stderr, PROG ": SDL_RenderCopy failed: %s\n", SDL_GetError());
		return -1;
	}
	if (snapshot && save_readback(v->ren, &dst, snapshot) < 0)
		ret = -2;
	SDL_RenderPresent(v->ren);
	return ret;
}

/* ------------------------------------------------------------ ring side */

enum { EV_NONE = 0, EV_QUIT = 1 };

struct ui {
	bool paused, save_requested, redraw;
};

/* Handle pending window events; returns EV_QUIT on q/Esc/close. */
static int pump_events(struct viewer *v, struct ui *ui)
{
	SDL_Event ev;

	while (SDL_PollEvent(&ev)) {
		switch (ev.type) {
		case SDL_QUIT:
			return EV_QUIT;
		case SDL_WINDOWEVENT:
			if (ev.window.event == SDL_WINDOWEVENT_EXPOSED ||
			    ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED)
				ui->redraw = true;
			break;
		case SDL_KEYDOWN:
			switch (ev.key.keysym.sym) {
			case SDLK_q:
			case SDLK_ESCAPE:
				return EV_QUIT;
			case SDLK_SPACE:
				ui->paused = !ui->paused;
				break;
			case SDLK_s:
				ui->save_requested = true;
				break;
			case SDLK_f:
				if (v->win) {
					Uint32 fl = v->fullscreen ? 0 : SDL_WINDOW_FULLSCREEN_DESKTOP;
					if (SDL_SetWindowFullscreen(v->win, fl) < 0)
						fprintf(stderr, PROG ": SDL_SetWindowFullscreen failed: %s\n",
							SDL_GetError());
					else
						v->fullscreen = !v->fullscreen;
					ui->redraw = true;
				}
				break;
			}
			break;
		}
	}
	return EV_NONE;
}

/* Open the ring, waiting for its producer up to --wait, in slices so that window events and
 * Ctrl-C are handled meanwhile. Returns 0, EV_QUIT-style 1 for a quit request, or -errno. */
static int wait_ring(ring_t **ring, const struct options *o, struct viewer *v, struct ui *ui)
{
	uint64_t deadline = app_now_ns() + (uint64_t)(o->wait_s * 1e9);
	bool said = false;

	for (;;) {
		int64_t slice = OPEN_SLICE_NS;
		if (!o->wait_forever) {
			uint64_t now = app_now_ns();
			int64_t left = now < deadline ? (int64_t)(deadline - now) : 0;
			slice = SDL_min(slice, left);
		}
		int ret = slice > 0 ? ring_open_wait(ring, o->ring_name, slice) : ring_open(ring, o->ring_name);
		if (ret == 0) {
			app_interrupt_ring(*ring); /* Ctrl-C now also cuts a peek's wait short */
			return 0;
		}
		/* A ring appears whole (ring_create links it in): anything but "not yet" is final. */
		if (ret != -ETIMEDOUT && ret != -ENOENT && ret != -EINTR)
			return ret;
		if (!o->wait_forever && app_now_ns() >= deadline)
			return -ETIMEDOUT;
		if (!said && !o->quiet) {
			if (o->wait_forever)
				fprintf(stderr, PROG ": waiting for a producer to create ring '%s' (Ctrl-C to stop)\n",
					o->ring_name);
			else
				fprintf(stderr, PROG ": waiting up to %g s for a producer to create ring '%s'\n",
					o->wait_s, o->ring_name);
			said = true;
		}
		if (app_stop_requested || pump_events(v, ui) == EV_QUIT)
			return 1;
		if (ui->redraw && v->have_frame) {
			ui->redraw = false;
			if (render(v, NULL) < 0)
				return -EIO;
		}
	}
}

static void report(struct stats *st, const struct options *o, struct viewer *v, bool force)
{
	uint64_t now = app_now_ns();
	char line[256];

	if (!force && now - st->iv_t0 < REPORT_NS)
		return;
	if (now > st->iv_t0)
		st->iv_fps = (double)(st->shown - st->iv_shown) * 1e9 / (double)(now - st->iv_t0);
	st->iv_t0 = now;
	st->iv_shown = st->shown;
	if (!v->tex)
		return;
	snprintf(line, sizeof(line), "%s  %" PRIu32 "x%" PRIu32 " %s  %.1f fps  shown %" PRIu64 "  skipped %" PRIu64
		 "  latency %.1f ms", o->ring_name, v->w, v->h, frame_format_name(v->fourcc), st->iv_fps, st->shown,
		 st->skipped + st->lost, st->last_lat_ms);
	if (!o->headless)
		SDL_SetWindowTitle(v->win, line);
	if (!o->quiet)
		app_progress("%s", line);
}

static void add_latency(struct stats *st, double ms)
{
	if (st->lat_n < st->lat_cap) {
		st->lat_ms[st->lat_n++] = ms;
	} else if (st->lat_cap < LAT_MAX_SAMPLES) {
		size_t cap = st->lat_cap ? st->lat_cap * 2 : 4096;
		double *p = realloc(st->lat_ms, cap * sizeof(*p));
		if (!p)
			return; /* statistics only: keep what we have */
		st->lat_ms = p;
		st->lat_cap = cap;
		st->lat_ms[st->lat_n++] = ms;
	} else {
		st->lat_ms[st->lat_total % st->lat_cap] = ms; /* keep the newest */
	}
	st->lat_total++;
	st->last_lat_ms = ms;
}

/* Print the summary line and write --stats-json; -1 if that file cannot be written. */
static int summary(struct stats *st, const struct options *o, const struct viewer *v, const char *why)
{
	struct rusage ru;
	double secs = st->shown > 1 ? (double)(st->t_last_ns - st->t_first_ns) / 1e9 : 0;
	double fps = secs > 0 ? (double)(st->shown - 1) / secs : 0;
	double cpu = 0, upload_ms = 0, render_ms = 0;
	double p50 = app_percentile(st->lat_ms, st->lat_n, 50);
	double p99 = app_percentile(st->lat_ms, st->lat_n, 99);
	double lmax = st->lat_n ? st->lat_ms[st->lat_n - 1] : 0; /* sorted by app_percentile */

	getrusage(RUSAGE_SELF, &ru);
	if (st->shown) {
		/* The process's CPU is counted from the first frame on (start-up and window creation
		 * excluded), so it covers the frames after it. */
		if (st->shown > 1)
			cpu = (rusage_cpu_s(&ru) - rusage_cpu_s(&st->ru_first)) * 1e3 / (double)(st->shown - 1);
		upload_ms = (double)st->upload_cpu_ns / 1e6 / (double)st->shown;
		render_ms = (double)st->render_cpu_ns / 1e6 / (double)st->shown;
	}
	app_progress_end();
	if (!o->quiet)
		fprintf(stderr,
			PROG ": %s: shown %" PRIu64 " frames in %.2f s (%.1f fps), skipped %" PRIu64 ", lost %" PRIu64
			", bad %" PRIu64 "; latency p50 %.2f ms p99 %.2f ms; cpu/frame %.3f ms (upload %.3f, render %.3f)\n",
			why, st->shown, secs, fps, st->skipped, st->lost, st->bad_records, p50, p99, cpu, upload_ms,
			render_ms);
	if (o->stats_json) {
		FILE *f = fopen(o->stats_json, "w");
		if (!f) {
			app_complain("cannot write '%s': %s", o->stats_json, strerror(errno));
			return -1;
		}
		fprintf(f,
			"{\"ring\": \"%s\", \"end\": \"%s\", \"frames_shown\": %" PRIu64 ", \"frames_skipped\": %" PRIu64
			", \"frames_lost\": %" PRIu64 ", \"bad_records\": %" PRIu64 ", \"reconnects\": %" PRIu64
			", \"last_seq\": %" PRIu64 ", \"width\": %" PRIu32 ", \"height\": %" PRIu32 ", \"format\": \"%s\""
			", \"seconds\": %.6f, \"fps\": %.3f, \"latency_ms_p50\": %.4f, \"latency_ms_p99\": %.4f"
			", \"latency_ms_max\": %.4f, \"latency_samples\": %zu, \"cpu_ms_per_frame\": %.4f"
			", \"upload_cpu_ms_per_frame\": %.4f, \"render_cpu_ms_per_frame\": %.4f}\n",
			o->ring_name, why, st->shown, st->skipped, st->lost, st->bad_records, st->reconnects, st->last_seq,
			v->w, v->h, v->tex ? frame_format_name(v->fourcc) : "", secs, fps, p50, p99, lmax, st->lat_n, cpu,
			upload_ms, render_ms);
		if (fclose(f) != 0) {
			app_complain("cannot write '%s': %s", o->stats_json, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The ring cannot be read on (consumer_ring_broken: -EBADMSG, -EFAULT, or -EPROTO for frames
 * this viewer does not know): say so in one line; returns the exit status. */
static int ring_broken(const char *name, int err, const char **why)
{
	app_complain("ring '%s' %s", name, consumer_read_problem(err));
	*why = "corrupt ring";
	return CONSUMER_EXIT_BAD_RING;
}

int main(int argc, char **argv)
{
	struct options o;
	struct viewer v = { 0 };
	struct stats st = { 0 };
	struct ui ui = { 0 };
	ring_t *ring = NULL;
	bool sdl_up = false, snapshot_done = false;
	const char *why = "end of stream";
	uint64_t last_live_check = 0;
	int ret, status = CONSUMER_EXIT_DONE;

	if (parse_options(argc, argv, &o) < 0)
		return CONSUMER_EXIT_USAGE;
	app_install_stop_signals();

	if (o.headless) {
		/* Hints, not setenv: an SDL_VIDEODRIVER / SDL_RENDER_DRIVER from the environment still wins. */
		SDL_SetHint(SDL_HINT_VIDEODRIVER, "offscreen");
		SDL_SetHint(SDL_HINT_RENDER_DRIVER, "software");
		/* Else SDL presents the software surface through an OpenGL texture (llvmpipe here),
		 * which burns CPU in threads of its own for a window nobody sees. */
		SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
	}
	/* Offscreen there is no display refresh to wait for. */
	SDL_SetHint(SDL_HINT_RENDER_VSYNC, o.vsync && !o.headless ? "1" : "0");
	SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
	SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1"); /* ours (apputil) stay in charge of Ctrl-C */
	if (SDL_Init(SDL_INIT_VIDEO) < 0) {
		if (o.headless) {
			fprintf(stderr, PROG ": SDL_Init(offscreen) failed: %s; trying the dummy driver\n", SDL_GetError());
			SDL_SetHint(SDL_HINT_VIDEODRIVER, "dummy");
			ret = SDL_Init(SDL_INIT_VIDEO);
		} else {
			ret = -1;
		}
		if (ret < 0) {
			fprintf(stderr, PROG ": SDL_Init failed: %s%s\n", SDL_GetError(),
				o.headless ? "" : " (no display? try --headless)");
			status = CONSUMER_EXIT_DISPLAY;
			goto end;
		}
	}
	sdl_up = true;
	if (!o.headless && !getenv("SDL_VIDEODRIVER")) {
		/* Without a display SDL 2.26 quietly falls back to its offscreen driver: a window
		 * nobody would ever see. Say so instead of showing frames to nobody. */
		const char *drv = SDL_GetCurrentVideoDriver();
		if (drv && (!strcmp(drv, "offscreen") || !strcmp(drv, "dummy"))) {
			fprintf(stderr, PROG ": SDL_Init failed: no display to open a window on (SDL picked its '%s' "
				"driver); set DISPLAY, or use --headless\n", drv);
			status = CONSUMER_EXIT_DISPLAY;
			goto end;
		}
	}

	ret = wait_ring(&ring, &o, &v, &ui);
	if (ret != 0)
		goto open_failed;
	st.iv_t0 = app_now_ns();

	for (;;) {
		struct frame_header hdr;
		const uint8_t *rec;
		uint64_t skipped = 0;

		if (app_stop_requested) {
			why = "interrupted";
			break;
		}
		if (pump_events(&v, &ui) == EV_QUIT) {
			why = "quit";
			break;
		}
		if (ui.save_requested && v.have_frame) {
			char path[64];
			snprintf(path, sizeof(path), "framering-view-%06" PRIu64 ".bmp", v.seq);
			ui.save_requested = false;
			ret = render(&v, path);
			if (ret == -1) {
				status = CONSUMER_EXIT_DISPLAY;
				goto end;
			}
			if (ret == 0)
				fprintf(stderr, PROG ": saved frame %" PRIu64 " to %s\n", v.seq, path);
		}
		if (ui.paused) {
			/* Paused: keep the shown frame. Under --latest the ring is drained meanwhile so a
			 * live producer is not held up; under --every nothing is read (lossless). */
			if (o.latest) {
				int64_t n = ring_skip_to_latest(ring);
				if (n > 0)
					st.skipped += (uint64_t)n;
				if (n < 0 && consumer_ring_broken((int)n)) {
					status = ring_broken(o.ring_name, (int)n, &why); /* as a read would */
					break;
				}
			}
			if (ui.redraw && v.have_frame) {
				ui.redraw = false;
				if (render(&v, NULL) == -1) {
					status = CONSUMER_EXIT_DISPLAY;
					goto end;
				}
			}
			SDL_Delay(10);
			report(&st, &o, &v, false);
			continue;
		}

		ret = frame_peek(ring, &hdr, &rec, o.latest, &skipped, POLL_NS);
		if (ret == -ECANCELED) {
			/* The stop handler interrupted the wait (ring_interrupt). */
			why = "interrupted";
			break;
		}
		if (ret == -EAGAIN || ret == -ETIMEDOUT || ret == -EINTR) {
			uint64_t now = app_now_ns();
			/* The library reports a dead producer as -EOWNERDEAD; the liveness check here is
			 * a second line of defence so a viewer never waits forever on a dead ring. */
			if (now - last_live_check >= LIVENESS_NS) {
				last_live_check = now;
				if (!ring_peer_alive(ring)) {
					ret = frame_peek(ring, &hdr, &rec, o.latest, &skipped, RING_NO_WAIT);
					if (ret == -EAGAIN)
						ret = -EOWNERDEAD;
				}
			}
			if (ret == -EAGAIN || ret == -ETIMEDOUT || ret == -EINTR) {
				if (ui.redraw && v.have_frame) {
					ui.redraw = false;
					if (render(&v, NULL) == -1) {
						status = CONSUMER_EXIT_DISPLAY;
						goto end;
					}
				}
				report(&st, &o, &v, false);
				continue;
			}
		}
		if (ret == -ENOMSG) {
			st.skipped += skipped; /* --latest: what was discarded to reach it */
			/* One record that is not a valid frame, already skipped by frame_peek: the
			 * ring itself is sound, read on. */
			st.bad_since_shown++;
			if (st.bad_records++ == 0)
				app_complain("ring '%s': skipping a record that is not a valid frame "
					     "(further ones are counted in the summary)", o.ring_name);
			continue;
		}
		if (ret == -ENODATA) {
			why = "end of stream";
			if (o.hold && !o.headless && v.have_frame) {
				app_progress_end();
				fprintf(stderr, PROG ": end of stream; holding frame %" PRIu64 ", press q to quit\n", v.seq);
				while (!app_stop_requested && pump_events(&v, &ui) != EV_QUIT) {
					if (ui.save_requested) {
						char path[64];
						snprintf(path, sizeof(path), "framering-view-%06" PRIu64 ".bmp", v.seq);
						ui.save_requested = false;
						if (render(&v, path) == 0)
							fprintf(stderr, PROG ": saved frame %" PRIu64 " to %s\n", v.seq, path);
					} else if (ui.redraw) {
						ui.redraw = false;
						if (render(&v, NULL) == -1) {
							status = CONSUMER_EXIT_DISPLAY;
							goto end;
						}
					}
					SDL_WaitEventTimeout(NULL, 100);
				}
			}
			break;
		}
		if (ret == -EOWNERDEAD) {
			app_complain("the producer of ring '%s' died", o.ring_name);
			if (!o.reconnect) {
				why = "producer died";
				status = CONSUMER_EXIT_PRODUCER_DIED;
				break;
			}
			app_interrupt_ring(NULL); /* before the handler could see a freed ring */
			ring_close(&ring); /* the old ring is gone: nothing to report about closing it */
			st.reconnects++;
			st.have_seq = false;
			ret = wait_ring(&ring, &o, &v, &ui);
			if (ret != 0)
				goto open_failed;
			if (!o.quiet)
				fprintf(stderr, PROG ": reconnected to ring '%s'\n", o.ring_name);
			continue;
		}
		if (consumer_ring_broken(ret)) {
			/* Nothing is peeked: stop, never release and retry. */
			status = ring_broken(o.ring_name, ret, &why);
			break;
		}
		if (ret < 0) {
			app_complain("reading ring '%s' failed: %s", o.ring_name, ring_strerror(ret));
			why = "error";
			status = consumer_exit_for(ret);
			break;
		}

		/* A frame, in place in shared memory. */
		st.skipped += skipped;
		if (st.have_seq && hdr.seq > st.last_seq + 1 + skipped) {
			/* A gap in seq is frames the producer dropped, less the invalid records
			 * skipped meanwhile (their seq could not be read, but they took numbers). */
			uint64_t gap = hdr.seq - st.last_seq - 1 - skipped;
			st.lost += gap - SDL_min(gap, st.bad_since_shown);
		}
		st.bad_since_shown = 0;
		st.last_seq = hdr.seq;
		st.have_seq = true;
		bool first_window = !v.win;
		if (ensure_texture(&v, &o, &hdr) < 0) {
			ring_release(ring);
			status = CONSUMER_EXIT_DISPLAY;
			goto end;
		}
		uint64_t c0 = thread_cpu_ns();
		ret = upload(&v, &hdr, rec, o.upload_update);
		st.upload_cpu_ns += thread_cpu_ns() - c0;
		/* Released as soon as the texture has the pixels: before drawing and presenting. */
		int rel = ring_release(ring);
		if (ret < 0) {
			status = CONSUMER_EXIT_DISPLAY;
			goto end;
		}
		if (rel < 0 && consumer_ring_broken(rel)) {
			/* e.g. -EFAULT: the segment was shrunk while the frame was being copied. */
			status = ring_broken(o.ring_name, rel, &why);
			break;
		}
		if (rel < 0) {
			app_complain("releasing a frame of ring '%s' failed: %s", o.ring_name, ring_strerror(rel));
			status = consumer_exit_for(rel);
			goto end;
		}
		v.have_frame = true;
		v.seq = hdr.seq;

		const char *snap = NULL;
		if (o.snapshot && !snapshot_done && hdr.seq >= o.snapshot_at && st.reconnects == 0)
			snap = o.snapshot;
		c0 = thread_cpu_ns();
		ret = render(&v, snap);
		st.render_cpu_ns += thread_cpu_ns() - c0;
		ui.redraw = false;
		if (ret == -1) {
			status = CONSUMER_EXIT_DISPLAY;
			goto end;
		}
		if (snap) {
			if (ret < 0) {
				status = CONSUMER_EXIT_OTHER;
				goto end;
			}
			snapshot_done = true;
			if (!o.quiet) {
				app_progress_end();
				fprintf(stderr, PROG ": wrote frame %" PRIu64 " to %s\n", hdr.seq, o.snapshot);
			}
		}
		uint64_t now = app_now_ns();
		if (st.shown == 0) {
			st.t_first_ns = now;
			getrusage(RUSAGE_SELF, &st.ru_first);
		}
		st.t_last_ns = now;
		st.shown++;
		/* Glass-to-glass: the present just returned; capture_ns is on the same clock. The
		 * frame that had to wait for the window and renderer to be created is left out:
		 * start-up, not the steady state the percentiles describe. */
		if (hdr.capture_ns && hdr.capture_ns <= now && !first_window)
			add_latency(&st, (double)(now - hdr.capture_ns) / 1e6);
		report(&st, &o, &v, false);
		if (o.max_frames && st.shown >= o.max_frames) {
			why = "frame limit reached";
			break;
		}
	}
	goto finish;

open_failed:
	if (ret == 1) {
		why = app_stop_requested ? "interrupted" : "quit";
		goto finish;
	}
	if (ret == -ETIMEDOUT) {
		app_complain("no ring '%s' appeared within %g s (is the producer running with --ring %s?)",
			     o.ring_name, o.wait_s, o.ring_name);
		status = CONSUMER_EXIT_NO_RING;
	} else if (consumer_ring_broken(ret)) {
		app_complain("'%s' is not a valid framering ring (foreign, corrupt or another version): %s",
			     o.ring_name, ring_strerror(ret));
		status = CONSUMER_EXIT_BAD_RING;
	} else if (ret == -EBUSY) {
		app_complain("ring '%s' is busy: another consumer is attached", o.ring_name);
		status = CONSUMER_EXIT_NO_RING;
	} else if (ret == -EIO) {
		status = CONSUMER_EXIT_DISPLAY; /* render() said why */
	} else if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", o.ring_name,
			     RING_NAME_MAX);
		status = CONSUMER_EXIT_USAGE;
	} else {
		app_complain("cannot open ring '%s': %s", o.ring_name, ring_strerror(ret));
		status = consumer_exit_for(ret);
	}
	goto end;

finish:
	if (o.snapshot && !snapshot_done && status == CONSUMER_EXIT_DONE) {
		app_progress_end();
		fprintf(stderr, PROG ": frame %" PRIu64 " was never shown; %s not written\n", o.snapshot_at,
			o.snapshot);
		status = CONSUMER_EXIT_OTHER;
	}
	report(&st, &o, &v, true);
	if (summary(&st, &o, &v, why) < 0 && status == CONSUMER_EXIT_DONE)
		status = CONSUMER_EXIT_OTHER;
end:
	app_progress_end();
	app_interrupt_ring(NULL); /* before the handler could see a freed ring */
	/* A consumer's close cannot lose anything; a failure here (e.g. -EFAULT after the
	 * segment was shrunk) was already reported by the call that met it. */
	ring_close(&ring);
	if (v.tex)
		SDL_DestroyTexture(v.tex);
	if (v.ren)
		SDL_DestroyRenderer(v.ren);
	if (v.win)
		SDL_DestroyWindow(v.win);
	if (sdl_up)
		SDL_Quit();
	free(st.lat_ms);
	free(v.gray_chroma);
	return status;
}
