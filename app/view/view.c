/* view.c - framering-view: show the frames of a framering ring in an SDL2 window (or headless, for tests/benchmarks).
 *
 * The frame stays in shared memory: it is copied once, by SDL_LockTexture/memcpy/SDL_UnlockTexture
 * (like SDL's test/teststreaming.c) straight from the ring record into the streaming texture (the
 * GPU upload; --upload update hands the planes to SDL_Update*Texture instead), and the ring record
 * is released right after that copy, before rendering, so the producer gets its space back as early
 * as possible. SDL renderers have no 24-bit texture: for BGR24/RGB24 SDL converts to ARGB itself,
 * from its lock buffer at unlock (an extra pass), or with --upload update straight from shared
 * memory.
 *
 * Structure: one readable loop, as in SDL's test/teststreaming.c (`while (!done) loop();`) and
 * SDL3's SDL_AppIterate/SDL_AppEvent split. All the viewer's state is one `struct app`; main()
 * parses the options, starts SDL, runs `while (!app.done) iterate(&app);` and ends through one
 * path (summary, then freeing everything), like FFmpeg's doc/examples/demux_decode.c. An
 * iteration is: stop requested? (events through handle_event()), a pending 's' save, then either
 * holding / waiting for a producer (no ring yet, or --reconnect after a producer ended: one slice
 * of wait_for_producer()) / paused, or one peek whose frame goes to show_frame() and whose
 * "no frame" result goes to handle_peek_error(). A run ends either in order (end_run():
 * the summary follows) or on a failure already said in its one line (fail(): no summary); every
 * line on stderr goes through app_complain(), which ends the progress line first.
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
#define REPLACE_WAIT_NS (5000 * 1000000LL) /* for the ring that replaced ours (normally there already) */
#define REPORT_NS (500 * 1000000ULL) /* progress line / window title refresh */
#define LIVENESS_NS (200 * 1000000ULL)
#define LAT_MAX_SAMPLES (1u << 20)   /* latency samples kept (the newest), ~4.8 h at 60 fps */
#define WAIT_DIM_ALPHA 160           /* waiting for a producer: the last frame at (255-160)/255 */

/* A line of information, not a failure. It has the shape of a complaint ("framering-view: ...",
 * after the progress line is ended), so it goes through the same one helper. */
#define note(...) app_complain(__VA_ARGS__)

struct options {
	const char *ring_name;
	double wait_s;
	bool wait_forever;
	bool latest;
	bool hold, reconnect, exit_at_eos, headless, vsync, quiet, fullscreen;
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
	uint64_t replacements; /* the producer replaced the ring (frames grew) and we followed */
	uint64_t run_shown;       /* shown from the producer attached now */
	uint64_t producers_shown; /* producers (first one and reconnects) that got a frame shown */
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
	bool color_approximated; /* a frame's colorimetry SDL cannot show exactly was seen (said once) */
};

/* What the keys and the window asked for, done by the next iteration. */
struct ui {
	bool paused, save_requested, redraw;
};

/* The whole viewer: what main() sets up, every iteration works on, and the one end path frees. */
struct app {
	struct options o;
	struct viewer v;
	struct stats st;
	struct ui ui;
	fr_ring_t *ring; /* NULL: waiting for a producer (the first one, or the next under --reconnect) */
	bool sdl_up;
	bool snapshot_done;
	bool holding; /* --hold after end of stream: the last frame stays up until q */
	bool attached_before; /* a producer's ring was open before: attaching again is a reconnect */
	uint64_t last_live_check;
	/* While waiting: when --wait runs out, and whether "waiting" was said. */
	uint64_t wait_deadline;
	bool wait_said;
	/* The ring whose stream ended last (--reconnect): its producer may keep it under the name for
	 * a while after marking end of stream, and it is never attached to again. */
	struct {
		bool valid;
		pid_t pid;
		uint64_t records_written;
	} ended;
	/* How the run ends: done stops the loop; failed (a failure already said) skips the summary. */
	bool done, failed;
	const char *why; /* the summary's reason */
	int status;      /* consumer_exit.h */
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
		"      --latest         always show the newest frame, skipping older ones, as a live\n"
		"                       consumer that never slows the producer or other consumers\n"
		"                       (default)\n"
		"      --every          show every frame, in order\n"
		"      --hold           at end of stream keep the last frame up until q/Esc (not with --headless;\n"
		"                       with --reconnect only together with --exit-at-eos)\n"
		"      --reconnect      outlive producers: when the producer ends, whether it dies or ends\n"
		"                       its stream cleanly (stopped by SIGINT/SIGTERM, end of its input),\n"
		"                       wait for the next one instead of exiting. Meanwhile the window\n"
		"                       keeps the last frame, dimmed, and its title says \"waiting for\n"
		"                       producer\"; --wait bounds each wait; q/Esc/Ctrl-C still end the\n"
		"                       viewer (0). The summary counts the reconnects\n"
		"      --exit-at-eos    with --reconnect: exit at a clean end of stream all the same, and\n"
		"                       wait only for a producer that died\n"
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
	enum { OPT_LATEST = 256, OPT_EVERY, OPT_HOLD, OPT_RECONNECT, OPT_EXIT_AT_EOS, OPT_NO_VSYNC,
	       OPT_FULLSCREEN, OPT_SIZE, OPT_HEADLESS, OPT_SNAPSHOT, OPT_AT, OPT_STATS_JSON, OPT_UPLOAD };
	static const struct option longopts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "latest", no_argument, NULL, OPT_LATEST },
		{ "every", no_argument, NULL, OPT_EVERY },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ "reconnect", no_argument, NULL, OPT_RECONNECT },
		{ "exit-at-eos", no_argument, NULL, OPT_EXIT_AT_EOS },
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
			if (!*optarg || strlen(optarg) > FR_RING_NAME_MAX) {
				app_complain("bad ring name '%s'", optarg);
				return -1;
			}
			o->ring_name = optarg;
			break;
		case 'w':
			if (app_parse_seconds(optarg, &o->wait_s) < 0) {
				app_complain("bad --wait '%s' (seconds expected)", optarg);
				return -1;
			}
			o->wait_forever = false;
			break;
		case OPT_LATEST: o->latest = true; break;
		case OPT_EVERY: o->latest = false; break;
		case OPT_HOLD: o->hold = true; break;
		case OPT_RECONNECT: o->reconnect = true; break;
		case OPT_EXIT_AT_EOS: o->exit_at_eos = true; break;
		case OPT_NO_VSYNC: o->vsync = false; break;
		case OPT_FULLSCREEN: o->fullscreen = true; break;
		case OPT_HEADLESS: o->headless = true; break;
		case OPT_SIZE:
			if (app_parse_size(optarg, &o->size_w, &o->size_h) < 0) {
				app_complain("bad --size '%s' (WxH expected)", optarg);
				return -1;
			}
			break;
		case OPT_SNAPSHOT: o->snapshot = optarg; break;
		case OPT_AT:
			if (app_parse_u64(optarg, &o->snapshot_at) < 0) {
				app_complain("bad --at '%s' (frame number expected)", optarg);
				return -1;
			}
			o->have_at = true;
			break;
		case 'n':
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				app_complain("bad --frames '%s' (positive number expected)", optarg);
				return -1;
			}
			break;
		case 'q': o->quiet = true; break;
		case OPT_STATS_JSON: o->stats_json = optarg; break;
		case OPT_UPLOAD:
			if (strcmp(optarg, "lock") && strcmp(optarg, "update")) {
				app_complain("bad --upload '%s' (lock or update)", optarg);
				return -1;
			}
			o->upload_update = !strcmp(optarg, "update");
			break;
		case 'h': usage(stdout); exit(CONSUMER_EXIT_DONE);
		case ':':
			app_complain("option '%s' needs an argument (see --help)", argv[optind - 1]);
			return -1;
		default:
			app_complain_unknown_option(argv);
			return -1;
		}
	}
	if (optind < argc) {
		app_complain("unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (o->have_at && !o->snapshot) {
		app_complain("--at needs --snapshot FILE");
		return -1;
	}
	if (o->exit_at_eos && !o->reconnect) {
		app_complain("--exit-at-eos needs --reconnect (without it every end of stream ends the viewer)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ SDL side: window, texture, upload, render */

/* Copy SDL's error of a first attempt, before a fallback's attempt overwrites it: a fallback that
 * fails too is still one line, naming both errors. */
static void keep_sdl_error(char *buf, size_t size)
{
	snprintf(buf, size, "%s", SDL_GetError());
}

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
		app_complain("SDL_CreateWindow failed: %s", SDL_GetError());
		return -1;
	}
	v->ren = SDL_CreateRenderer(v->win, -1, rflags);
	if (!v->ren && !o->headless) {
		/* No accelerated renderer (e.g. no GL): take whatever SDL has, the software one last. */
		char accel_error[256];
		keep_sdl_error(accel_error, sizeof(accel_error));
		v->ren = SDL_CreateRenderer(v->win, -1, o->vsync ? SDL_RENDERER_PRESENTVSYNC : 0);
		if (!v->ren) {
			app_complain("SDL_CreateRenderer failed: %s (accelerated: %s)", SDL_GetError(), accel_error);
			return -1;
		}
		app_complain("SDL_CreateRenderer(accelerated) failed: %s; using another renderer", accel_error);
	}
	if (!v->ren) {
		app_complain("SDL_CreateRenderer failed: %s", SDL_GetError());
		return -1;
	}
	if (o->fullscreen && !o->headless) {
		if (SDL_SetWindowFullscreen(v->win, SDL_WINDOW_FULLSCREEN_DESKTOP) < 0)
			app_complain("SDL_SetWindowFullscreen failed: %s", SDL_GetError());
		else
			v->fullscreen = true;
	}
	if (!o->quiet) {
		SDL_RendererInfo info;
		if (SDL_GetRendererInfo(v->ren, &info) == 0)
			note("video driver %s, renderer %s%s", SDL_GetCurrentVideoDriver(),
			     info.name, /* offscreen nothing waits, whatever the flag says */
			     (info.flags & SDL_RENDERER_PRESENTVSYNC) && !o->headless ? ", vsync" : "");
	}
	return 0;
}

static Uint32 sdl_format_of(uint32_t fourcc)
{
	switch (fourcc) {
	case FR_FRAME_FMT_BGR24: return SDL_PIXELFORMAT_BGR24; /* bytes B G R, like the frame */
	case FR_FRAME_FMT_RGB24: return SDL_PIXELFORMAT_RGB24;
	case FR_FRAME_FMT_GRAY8: return SDL_PIXELFORMAT_IYUV;  /* Y = gray, U = V = 128 */
	case FR_FRAME_FMT_I420: return SDL_PIXELFORMAT_IYUV;
	case FR_FRAME_FMT_NV12: return SDL_PIXELFORMAT_NV12;
	default: return SDL_PIXELFORMAT_UNKNOWN;
	}
}

/* Pointer-to-pointer frees (as FFmpeg's av_frame_free): safe on NULL, and the pointer is NULL
 * afterwards, so a half-built viewer and a texture re-created on a format change go the same way. */
static void texture_free(SDL_Texture **t)
{
	if (*t)
		SDL_DestroyTexture(*t);
	*t = NULL;
}

static void renderer_free(SDL_Renderer **r)
{
	if (*r)
		SDL_DestroyRenderer(*r);
	*r = NULL;
}

static void window_free(SDL_Window **w)
{
	if (*w)
		SDL_DestroyWindow(*w);
	*w = NULL;
}

static void bytes_free(uint8_t **p)
{
	free(*p);
	*p = NULL;
}

/* SDL's YUV to RGB conversion for frame H, from its colorimetry (frame.h). SDL reads the mode when
 * it converts (the software renderer: at upload; GL: when it draws), so it is set before each
 * upload. SDL 2 knows BT.601 and BT.709 at limited range and BT.601 at full range ("JPEG"); an
 * unspecified matrix is BT.601 and an unspecified range limited, as swscale takes them. Anything
 * else is shown with the nearest mode, and said once. GRAY8 is full-range Y (R = G = B = Y). */
static void use_colorimetry(struct viewer *v, const struct fr_frame_header *h)
{
	SDL_YUV_CONVERSION_MODE mode = SDL_YUV_CONVERSION_BT601;
	bool exact = true;
	bool full = h->color_range == FR_FRAME_RANGE_FULL;

	if (h->fourcc == FR_FRAME_FMT_GRAY8) {
		mode = SDL_YUV_CONVERSION_JPEG;
	} else if (h->fourcc == FR_FRAME_FMT_I420 || h->fourcc == FR_FRAME_FMT_NV12) {
		switch (h->color_matrix) {
		case FR_FRAME_MATRIX_BT709:
			mode = SDL_YUV_CONVERSION_BT709;
			exact = !full;
			break;
		case FR_FRAME_MATRIX_BT2020_NCL:
		case FR_FRAME_MATRIX_BT2020_CL:
		case FR_FRAME_MATRIX_SMPTE240M:
			mode = SDL_YUV_CONVERSION_BT709; /* the nearest luma weights SDL has */
			exact = false;
			break;
		default: /* BT.601 (525 or 625 lines, FCC), unspecified */
			mode = full ? SDL_YUV_CONVERSION_JPEG : SDL_YUV_CONVERSION_BT601;
			exact = h->color_matrix != FR_FRAME_MATRIX_FCC;
			break;
		}
	}
	if (SDL_GetYUVConversionMode() != mode)
		SDL_SetYUVConversionMode(mode);
	if (!exact && !v->color_approximated) {
		char m[12] = "", r[12] = "";
		v->color_approximated = true;
		note("frames say matrix %s, range %s: SDL 2 shows them as %s (the nearest it has)",
		     app_color_name(FR_FRAME_COLOR_MATRIX, h->color_matrix, m),
		     app_color_name(FR_FRAME_COLOR_RANGE, h->color_range, r),
		     mode == SDL_YUV_CONVERSION_BT709 ? "BT.709 limited range" : "BT.601");
	}
}

/* Make the texture match the frame's format and size (re-created on a change). */
static int ensure_texture(struct viewer *v, const struct options *o, const struct fr_frame_header *h)
{
	Uint32 fmt = sdl_format_of(h->fourcc);

	if (v->tex && v->fourcc == h->fourcc && v->w == h->width && v->h == h->height)
		return 0;
	if (fmt == SDL_PIXELFORMAT_UNKNOWN) {
		app_complain("frame format 0x%08" PRIx32 " cannot be shown", h->fourcc);
		return -1;
	}
	if (!v->win) {
		if (create_window(v, o, h->width, h->height) < 0)
			return -1;
	} else if (o->headless) {
		/* Keep the window the frame's size so snapshots stay pixel exact. */
		SDL_SetWindowSize(v->win, (int)h->width, (int)h->height);
	}
	texture_free(&v->tex);
	v->have_frame = false;
	v->tex = SDL_CreateTexture(v->ren, fmt, SDL_TEXTUREACCESS_STREAMING, (int)h->width, (int)h->height);
	if (!v->tex) {
		app_complain("SDL_CreateTexture(%s %" PRIu32 "x%" PRIu32 ") failed: %s", SDL_GetPixelFormatName(fmt),
			     h->width, h->height, SDL_GetError());
		return -1;
	}
	if (SDL_SetTextureBlendMode(v->tex, SDL_BLENDMODE_NONE) < 0)
		app_complain("SDL_SetTextureBlendMode failed: %s", SDL_GetError());
	bytes_free(&v->gray_chroma);
	if (h->fourcc == FR_FRAME_FMT_GRAY8 && o->upload_update) {
		/* One chroma plane of 128s serves as U and V of every frame. */
		size_t csize = (size_t)((h->width + 1) / 2) * ((h->height + 1) / 2);
		v->gray_chroma = malloc(csize);
		if (!v->gray_chroma) {
			app_complain("out of memory");
			return -1;
		}
		memset(v->gray_chroma, 128, csize);
	} else if (h->fourcc == FR_FRAME_FMT_GRAY8) {
		/* Neutral chroma, written once: every renderer on Linux (software, GL, GLES2) keeps the
		 * locked buffer of a streaming texture between locks, so later locks only write Y. */
		void *pixels;
		int pitch;
		if (SDL_LockTexture(v->tex, NULL, &pixels, &pitch) < 0) {
			app_complain("SDL_LockTexture failed: %s", SDL_GetError());
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
static int upload_update(struct viewer *v, const struct fr_frame_header *h, const uint8_t *rec)
{
	const uint8_t *p0 = rec + h->plane[0].offset;
	int s0 = (int)h->plane[0].stride, ret;
	const char *fn;

	switch (h->fourcc) {
	case FR_FRAME_FMT_GRAY8:
		fn = "SDL_UpdateYUVTexture";
		ret = SDL_UpdateYUVTexture(v->tex, NULL, p0, s0, v->gray_chroma, (int)(h->width + 1) / 2,
					   v->gray_chroma, (int)(h->width + 1) / 2);
		break;
	case FR_FRAME_FMT_I420:
		fn = "SDL_UpdateYUVTexture";
		ret = SDL_UpdateYUVTexture(v->tex, NULL, p0, s0, rec + h->plane[1].offset, (int)h->plane[1].stride,
					   rec + h->plane[2].offset, (int)h->plane[2].stride);
		break;
	case FR_FRAME_FMT_NV12:
		fn = "SDL_UpdateNVTexture";
		ret = SDL_UpdateNVTexture(v->tex, NULL, p0, s0, rec + h->plane[1].offset, (int)h->plane[1].stride);
		break;
	default:
		fn = "SDL_UpdateTexture";
		ret = SDL_UpdateTexture(v->tex, NULL, p0, s0);
		break;
	}
	if (ret < 0) {
		app_complain("%s failed: %s", fn, SDL_GetError());
		return -1;
	}
	return 0;
}

/* The one copy: from the ring record into the texture, honouring the frame's strides and the
 * texture's pitch. The locked YUV layout is SDL's: planes back to back, chroma pitch (pitch+1)/2
 * (IYUV) or 2*((pitch+1)/2) (NV12), chroma rows (h+1)/2. */
static int upload(struct viewer *v, const struct fr_frame_header *h, const uint8_t *rec, bool update)
{
	void *pixels;
	int pitch;

	if (update)
		return upload_update(v, h, rec);
	if (SDL_LockTexture(v->tex, NULL, &pixels, &pitch) < 0) {
		app_complain("SDL_LockTexture failed: %s", SDL_GetError());
		return -1;
	}
	uint8_t *dst = pixels;
	size_t p = (size_t)pitch, rows = h->height, crows = (h->height + 1) / 2;
	const uint8_t *src[FR_FRAME_MAX_PLANES] = {0}; /* plane_count was validated: all used ones are set */
	for (uint32_t i = 0; i < h->plane_count && i < FR_FRAME_MAX_PLANES; i++)
		src[i] = rec + h->plane[i].offset;

	switch (h->fourcc) {
	case FR_FRAME_FMT_BGR24:
	case FR_FRAME_FMT_RGB24:
	case FR_FRAME_FMT_GRAY8: /* chroma of the IYUV texture was set once in ensure_texture() */
		copy_plane(dst, p, src[0], h->plane[0].stride, fr_frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		break;
	case FR_FRAME_FMT_I420: {
		size_t cp = (p + 1) / 2;
		uint8_t *u = dst + p * rows, *vv = u + cp * crows;
		copy_plane(dst, p, src[0], h->plane[0].stride, fr_frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		copy_plane(u, cp, src[1], h->plane[1].stride, fr_frame_plane_row_bytes(h->fourcc, h->width, 1),
			   fr_frame_plane_rows(h->fourcc, h->height, 1));
		copy_plane(vv, cp, src[2], h->plane[2].stride, fr_frame_plane_row_bytes(h->fourcc, h->width, 2),
			   fr_frame_plane_rows(h->fourcc, h->height, 2));
		break;
	}
	case FR_FRAME_FMT_NV12: {
		size_t cp = 2 * ((p + 1) / 2);
		copy_plane(dst, p, src[0], h->plane[0].stride, fr_frame_plane_row_bytes(h->fourcc, h->width, 0),
			   rows);
		copy_plane(dst + p * rows, cp, src[1], h->plane[1].stride,
			   fr_frame_plane_row_bytes(h->fourcc, h->width, 1), fr_frame_plane_rows(h->fourcc, h->height, 1));
		break;
	}
	}
	SDL_UnlockTexture(v->tex);
	return 0;
}

/* Binary PPM (P6) of the RGB24 surface S, W x H; 0 or -1 (said). */
static int write_ppm(const char *path, const SDL_Surface *s, int w, int h)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fprintf(f, "P6\n%d %d\n255\n", w, h) > 0;

	for (int y = 0; ok && y < h; y++)
		ok = fwrite((const uint8_t *)s->pixels + (size_t)y * s->pitch, 3, (size_t)w, f) == (size_t)w;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok) {
		app_complain("cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Write W x H pixels read back from the renderer to PATH (BMP, or PPM for *.ppm); 0 or -1 (said). */
static int save_readback(SDL_Renderer *ren, const SDL_Rect *r, const char *path)
{
	size_t n = strlen(path);
	bool ppm = n >= 4 && SDL_strcasecmp(path + n - 4, ".ppm") == 0;
	/* BGR24 is BMP's own byte order, so SDL_SaveBMP writes it without a conversion. */
	SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, r->w, r->h, 24,
							ppm ? SDL_PIXELFORMAT_RGB24 : SDL_PIXELFORMAT_BGR24);
	int ret = -1;

	if (!s) {
		app_complain("SDL_CreateRGBSurfaceWithFormat failed: %s", SDL_GetError());
		return -1;
	}
	if (SDL_RenderReadPixels(ren, r, s->format->format, s->pixels, s->pitch) < 0)
		app_complain("SDL_RenderReadPixels failed: %s", SDL_GetError());
	else if (ppm)
		ret = write_ppm(path, s, r->w, r->h);
	else if (SDL_SaveBMP(s, path) < 0)
		app_complain("SDL_SaveBMP('%s') failed: %s", path, SDL_GetError());
	else
		ret = 0;
	SDL_FreeSurface(s);
	return ret;
}

/* Draw the texture letterboxed into the window and present it. With SNAPSHOT, the drawn frame
 * is read back (before the present: the back buffer is undefined after it) and saved. DIM (waiting
 * for a producer) darkens the picture after that read-back, so a saved frame is the frame itself.
 * Returns 0, -1 for an SDL failure, -2 when only the snapshot failed (each said in its one line). */
static int render(struct viewer *v, const char *snapshot, bool dim)
{
	int ow, oh, ret = 0;
	SDL_Rect dst;

	if (SDL_GetRendererOutputSize(v->ren, &ow, &oh) < 0) {
		app_complain("SDL_GetRendererOutputSize failed: %s", SDL_GetError());
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
		app_complain("SDL_RenderClear failed: %s", SDL_GetError());
		return -1;
	}
	if (SDL_RenderCopy(v->ren, v->tex, NULL, &dst) < 0) {
		app_complain("SDL_RenderCopy failed: %s", SDL_GetError());
		return -1;
	}
	if (snapshot && save_readback(v->ren, &dst, snapshot) < 0)
		ret = -2;
	if (dim) {
		/* Black at WAIT_DIM_ALPHA over the whole output: the frame shows through, darker. */
		if (SDL_SetRenderDrawBlendMode(v->ren, SDL_BLENDMODE_BLEND) < 0 ||
		    SDL_SetRenderDrawColor(v->ren, 0, 0, 0, WAIT_DIM_ALPHA) < 0 || SDL_RenderFillRect(v->ren, NULL) < 0) {
			app_complain("dimming the frame (SDL_RenderFillRect) failed: %s", SDL_GetError());
			return -1;
		}
	}
	SDL_RenderPresent(v->ren);
	return ret;
}

/* Everything SDL-side the viewer holds, newest first; safe on a half-built viewer. */
static void viewer_free(struct viewer *v)
{
	texture_free(&v->tex);
	renderer_free(&v->ren);
	window_free(&v->win);
	bytes_free(&v->gray_chroma);
}

/* ------------------------------------------------------------ how a run ends */

/* In order (end of stream, q, Ctrl-C, the producer died, a corrupt ring, ...): the loop stops and
 * the summary, with WHY, follows. */
static void end_run(struct app *a, const char *why, int status)
{
	a->why = why;
	a->status = status;
	a->done = true;
}

/* On a failure its caller has already said in one line (a display failure, a file that cannot be
 * written, the ring not there): the loop stops, no summary. Returns -1 for the caller to pass on. */
static int fail(struct app *a, int status)
{
	a->status = status;
	a->done = a->failed = true;
	return -1;
}

/* ------------------------------------------------------------ drawing, saving, events */

/* Draw the shown frame and present it, dimmed while waiting for a producer; an SDL failure ends
 * the viewer (5). */
static int draw(struct app *a)
{
	a->ui.redraw = false;
	return render(&a->v, NULL, !a->ring) == -1 ? fail(a, CONSUMER_EXIT_DISPLAY) : 0;
}

/* Draw the shown frame again if the window asked for it (exposed, resized, fullscreen toggled). */
static int redraw(struct app *a)
{
	return a->ui.redraw && a->v.have_frame ? draw(a) : 0;
}

/* Draw the shown frame, save it (read back from the renderer) and say so. The 's' key comes here
 * with SNAPSHOT NULL: framering-view-SEQ.bmp in the working directory, and a file that cannot be
 * written leaves the viewer running. --snapshot comes here with its FILE, which must be written
 * (else 6). Returns 0, or -1 when the viewer is to end (already said). */
static int save_frame(struct app *a, const char *snapshot)
{
	char name[64];
	const char *path = snapshot;

	if (!snapshot) {
		snprintf(name, sizeof(name), "framering-view-%06" PRIu64 ".bmp", a->v.seq);
		path = name;
	}
	a->ui.redraw = false;
	int ret = render(&a->v, path, !a->ring);
	if (ret == -1)
		return fail(a, CONSUMER_EXIT_DISPLAY);
	if (ret < 0) /* only the file failed; save_readback() said why */
		return snapshot ? fail(a, CONSUMER_EXIT_OTHER) : 0;
	if (!snapshot) {
		note("saved frame %" PRIu64 " to %s", a->v.seq, path);
	} else {
		a->snapshot_done = true;
		if (!a->o.quiet)
			note("wrote frame %" PRIu64 " to %s", a->v.seq, path);
	}
	return 0;
}

/* One window event (SDL3's SDL_AppEvent): keys and window changes say what the next iteration
 * does. Returns true for q/Esc/closing the window. */
static bool handle_event(struct app *a, const SDL_Event *ev)
{
	struct viewer *v = &a->v;

	switch (ev->type) {
	case SDL_QUIT:
		return true;
	case SDL_WINDOWEVENT:
		if (ev->window.event == SDL_WINDOWEVENT_EXPOSED || ev->window.event == SDL_WINDOWEVENT_SIZE_CHANGED)
			a->ui.redraw = true;
		return false;
	case SDL_KEYDOWN:
		switch (ev->key.keysym.sym) {
		case SDLK_q:
		case SDLK_ESCAPE:
			return true;
		case SDLK_SPACE:
			a->ui.paused = !a->ui.paused;
			break;
		case SDLK_s:
			a->ui.save_requested = true;
			break;
		case SDLK_f:
			if (!v->win)
				break;
			if (SDL_SetWindowFullscreen(v->win, v->fullscreen ? 0 : SDL_WINDOW_FULLSCREEN_DESKTOP) < 0)
				app_complain("SDL_SetWindowFullscreen failed: %s", SDL_GetError());
			else
				v->fullscreen = !v->fullscreen;
			a->ui.redraw = true;
			break;
		}
		return false;
	default:
		return false;
	}
}

/* Whether the run is to stop: Ctrl-C/SIGTERM, or q/Esc/close among the pending events (which are
 * handled meanwhile). If so the run ends in order; the reason is the stop, except under --hold,
 * where the stream had already ended and that stays the reason. */
static bool stop_asked(struct app *a)
{
	const char *why = "interrupted";
	SDL_Event ev;

	if (!app_stop_requested) {
		bool quit = false;
		while (!quit && SDL_PollEvent(&ev))
			quit = handle_event(a, &ev);
		if (!quit)
			return false;
		why = "quit";
	}
	end_run(a, a->holding ? a->why : why, CONSUMER_EXIT_DONE);
	return true;
}

/* ------------------------------------------------------------ the ring */

/* Opening the ring failed with RET (a negative errno): one line, and the exit code for it. */
static void open_failed(struct app *a, int ret)
{
	const char *name = a->o.ring_name;

	if (ret == -ETIMEDOUT) {
		app_complain("no ring '%s' appeared within %g s (is the producer running with --ring %s?)", name,
			     a->o.wait_s, name);
		fail(a, CONSUMER_EXIT_NO_RING);
	} else if (consumer_ring_broken(ret)) {
		app_complain("'%s' is not a valid framering ring (foreign, corrupt or another version): %s", name,
			     fr_ring_strerror(ret));
		fail(a, CONSUMER_EXIT_BAD_RING);
	} else if (ret == -EBUSY) {
		app_complain("ring '%s' is busy: all its consumer slots are taken", name);
		fail(a, CONSUMER_EXIT_NO_RING);
	} else if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", name, FR_RING_NAME_MAX);
		fail(a, CONSUMER_EXIT_USAGE);
	} else {
		app_complain("cannot open ring '%s': %s", name, fr_ring_strerror(ret));
		fail(a, consumer_exit_for(ret));
	}
}

/* Wait for a producer from now on: the first one, or the next one under --reconnect. --wait
 * bounds each wait; SAID: a line saying that the viewer waits was printed already. */
static void start_waiting(struct app *a, bool said)
{
	a->wait_deadline = app_now_ns() + (uint64_t)(a->o.wait_s * 1e9);
	a->wait_said = said;
}

/* Whether the ring whose stream ended last still has the name. A producer may keep it for a while
 * after marking end of stream (framering-capture waits until its consumers have read the last
 * frames), or die there and leave it until the next producer reclaims the name; attaching to it
 * again would only meet the same end of stream, over and over: look without attaching
 * (fr_ring_inspect). */
static bool ended_ring_still_there(struct app *a)
{
	struct fr_ring_stats rs;

	if (!a->ended.valid)
		return false;
	if (fr_ring_inspect(a->o.ring_name, &rs) == 0 && rs.eos && rs.producer_pid == a->ended.pid &&
	    rs.records_written == a->ended.records_written)
		return true;
	a->ended.valid = false; /* gone, or another ring has the name: the old one never comes back */
	return false;
}

/* Attach to the ring if a producer has it, waiting up to SLICE ns for one: 0, -ETIMEDOUT/-ENOENT/
 * -EINTR for "not yet", anything else is final (open_failed). */
static int try_attach(struct app *a, int64_t slice)
{
	if (ended_ring_still_there(a)) {
		SDL_Delay((Uint32)(slice / 1000000));
		return -ETIMEDOUT;
	}
	/* --latest (the default): a live consumer, which never slows the producer
	 * or the other consumers; --every: a lossless one. */
	struct fr_ring_attach_opts ao = {a->o.latest ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, slice};
	return app_attach(&a->ring, a->o.ring_name, &ao);
}

/* The ring cannot be read on (consumer_ring_broken: -EBADMSG, -EFAULT, or -EPROTO for frames
 * this viewer does not know): say so in one line and end; nothing is retried. */
static void ring_broken(struct app *a, int err)
{
	app_complain("ring '%s' %s", a->o.ring_name, consumer_read_problem(err));
	end_run(a, "corrupt ring", CONSUMER_EXIT_BAD_RING);
}

/* ------------------------------------------------------------ statistics */

static void report(struct app *a, bool force)
{
	struct stats *st = &a->st;
	const struct viewer *v = &a->v;
	uint64_t now = app_now_ns();
	char line[256];

	if (!force && now - st->iv_t0 < REPORT_NS)
		return;
	if (now > st->iv_t0)
		st->iv_fps = (double)(st->shown - st->iv_shown) * 1e9 / (double)(now - st->iv_t0);
	st->iv_t0 = now;
	st->iv_shown = st->shown;
	if (!a->ring && a->attached_before)
		snprintf(line, sizeof(line), "%s  waiting for producer  shown %" PRIu64 "  reconnects %" PRIu64,
			 a->o.ring_name, st->shown, st->reconnects);
	else if (v->tex)
		snprintf(line, sizeof(line), "%s  %" PRIu32 "x%" PRIu32 " %s  %.1f fps  shown %" PRIu64
			 "  skipped %" PRIu64 "  latency %.1f ms", a->o.ring_name, v->w, v->h,
			 fr_frame_format_name(v->fourcc), st->iv_fps, st->shown, st->skipped + st->lost, st->last_lat_ms);
	else
		return;
	if (!a->o.headless && v->win)
		SDL_SetWindowTitle(v->win, line);
	if (!a->o.quiet)
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

/* Print the summary line and write --stats-json; -1 if that file cannot be written (said). */
static int summary(struct app *a)
{
	const struct options *o = &a->o;
	const struct viewer *v = &a->v;
	struct stats *st = &a->st;
	struct rusage ru;
	double secs = st->shown > 1 ? (double)(st->t_last_ns - st->t_first_ns) / 1e9 : 0;
	double fps = secs > 0 ? (double)(st->shown - 1) / secs : 0;
	double cpu = 0, upload_ms = 0, render_ms = 0;
	double p50 = app_percentile(st->lat_ms, st->lat_n, 50);
	double p99 = app_percentile(st->lat_ms, st->lat_n, 99);
	double lmax = st->lat_n ? st->lat_ms[st->lat_n - 1] : 0; /* sorted by app_percentile */
	char producers[160] = "";

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
	if (o->reconnect)
		snprintf(producers, sizeof(producers), "; %" PRIu64 " reconnects, frames from %" PRIu64 " producers",
			 st->reconnects, st->producers_shown);
	if (st->replacements)
		snprintf(producers + strlen(producers), sizeof(producers) - strlen(producers),
			 "; followed %" PRIu64 " ring replacements", st->replacements);
	if (!o->quiet)
		note("%s: shown %" PRIu64 " frames in %.2f s (%.1f fps), skipped %" PRIu64 ", lost %" PRIu64
		     ", bad %" PRIu64 "; latency p50 %.2f ms p99 %.2f ms; cpu/frame %.3f ms (upload %.3f, render %.3f)%s",
		     a->why, st->shown, secs, fps, st->skipped, st->lost, st->bad_records, p50, p99, cpu, upload_ms,
		     render_ms, producers);
	if (!o->stats_json)
		return 0;
	FILE *f = fopen(o->stats_json, "w");
	if (f)
		fprintf(f,
			"{\"ring\": \"%s\", \"end\": \"%s\", \"frames_shown\": %" PRIu64 ", \"frames_skipped\": %" PRIu64
			", \"frames_lost\": %" PRIu64 ", \"bad_records\": %" PRIu64 ", \"reconnects\": %" PRIu64
			", \"producers_shown\": %" PRIu64 ", \"ring_replacements\": %" PRIu64
			", \"last_seq\": %" PRIu64 ", \"width\": %" PRIu32 ", \"height\": %" PRIu32 ", \"format\": \"%s\""
			", \"seconds\": %.6f, \"fps\": %.3f, \"latency_ms_p50\": %.4f, \"latency_ms_p99\": %.4f"
			", \"latency_ms_max\": %.4f, \"latency_samples\": %zu, \"cpu_ms_per_frame\": %.4f"
			", \"upload_cpu_ms_per_frame\": %.4f, \"render_cpu_ms_per_frame\": %.4f}\n",
			o->ring_name, a->why, st->shown, st->skipped, st->lost, st->bad_records, st->reconnects,
			st->producers_shown, st->replacements, st->last_seq, v->w, v->h, v->tex ? fr_frame_format_name(v->fourcc) : "", secs,
			fps, p50, p99, lmax, st->lat_n, cpu, upload_ms, render_ms);
	if (!f || fclose(f) != 0) {
		app_complain("cannot write '%s': %s", o->stats_json, strerror(errno));
		return -1;
	}
	return 0;
}

/* The end of an orderly run: a --snapshot frame that never came is a failure (6); then the last
 * progress line, the summary and --stats-json. */
static void wrap_up(struct app *a)
{
	if (a->o.snapshot && !a->snapshot_done && a->status == CONSUMER_EXIT_DONE) {
		app_complain("frame %" PRIu64 " was never shown; %s not written", a->o.snapshot_at, a->o.snapshot);
		a->status = CONSUMER_EXIT_OTHER;
	}
	report(a, true);
	if (summary(a) < 0 && a->status == CONSUMER_EXIT_DONE)
		a->status = CONSUMER_EXIT_OTHER;
}

/* ------------------------------------------------------------ one iteration */

/* The ring is open: this producer's frames from now on. */
static void attached(struct app *a)
{
	app_interrupt_ring(a->ring); /* Ctrl-C now also cuts a peek's wait short */
	a->st.have_seq = false;      /* a new producer: no gap to its predecessor's frames */
	a->st.run_shown = 0;
	if (!a->attached_before) {
		a->attached_before = true;
		a->st.iv_t0 = app_now_ns(); /* the first progress interval starts with the ring */
		return;
	}
	a->st.reconnects++;
	if (!a->o.quiet)
		note("reconnected to ring '%s'", a->o.ring_name);
	report(a, true); /* the title no longer says "waiting" */
}

/* No ring: wait one slice for a producer (the first one, or the next under --reconnect), serving
 * the window meanwhile. Running out of --wait ends the viewer (2). */
static void wait_for_producer(struct app *a)
{
	const struct options *o = &a->o;
	int64_t slice = OPEN_SLICE_NS;

	if (!o->wait_forever) {
		uint64_t now = app_now_ns();
		slice = SDL_min(slice, now < a->wait_deadline ? (int64_t)(a->wait_deadline - now) : 0);
	}
	int ret = try_attach(a, slice);
	if (ret == 0) {
		attached(a);
		return;
	}
	/* A ring appears whole (fr_ring_create links it in): anything but "not yet" is final. */
	if (ret != -ETIMEDOUT && ret != -ENOENT && ret != -EINTR) {
		open_failed(a, ret);
		return;
	}
	if (!o->wait_forever && app_now_ns() >= a->wait_deadline) {
		open_failed(a, -ETIMEDOUT);
		return;
	}
	if (!a->wait_said && !o->quiet) {
		if (o->wait_forever)
			note("waiting for a producer to create ring '%s' (Ctrl-C to stop)", o->ring_name);
		else
			note("waiting up to %g s for a producer to create ring '%s'", o->wait_s, o->ring_name);
	}
	a->wait_said = true;
	if (redraw(a) == 0)
		report(a, false);
}

/* The producer is gone and --reconnect is on (WHY: "end of stream" or "producer died"): close its
 * ring and wait for the next one. The window keeps the last frame, dimmed, and its title says that
 * the viewer waits. */
static void await_next_producer(struct app *a, const char *why)
{
	struct fr_ring_stats rs;

	fr_ring_get_stats(a->ring, &rs);
	a->ended.valid = true;
	a->ended.pid = rs.producer_pid;
	a->ended.records_written = rs.records_written;
	app_interrupt_ring(NULL); /* before the handler could see a freed ring */
	fr_ring_close(&a->ring);     /* read to its end: nothing to report about closing it */
	if (!a->o.quiet)
		note("%s after %" PRIu64 " frames from this producer; waiting for the next producer of ring '%s' "
		     "(Ctrl-C to stop)", why, a->st.run_shown, a->o.ring_name);
	start_waiting(a, true);
	a->ui.redraw = true;
	if (redraw(a) == 0)
		report(a, true);
}

/* The producer replaced the ring by a larger one under the same name (its frames grew) and this
 * one is read to its end: go on in the new one. It is in place already; the same producer, so
 * no reconnect and no gap in the frame numbers. */
static void follow_replacement(struct app *a)
{
	app_interrupt_ring(NULL);
	fr_ring_close(&a->ring);
	struct fr_ring_attach_opts ao = {a->o.latest ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, REPLACE_WAIT_NS};
	int ret = app_attach(&a->ring, a->o.ring_name, &ao);
	if (ret == -EINTR && app_stop_requested) {
		end_run(a, "interrupted", CONSUMER_EXIT_DONE); /* Ctrl-C while waiting for it: a stop */
		return;
	}
	if (ret < 0) {
		open_failed(a, ret);
		return;
	}
	app_interrupt_ring(a->ring);
	a->st.replacements++;
	if (!a->o.quiet)
		note("ring '%s' was replaced by a larger one (the frames grew): following it", a->o.ring_name);
}

/* Peek at the next frame, waiting up to POLL_NS. The library reports a dead producer as
 * -EOWNERDEAD; the liveness check here is a second line of defence, so a viewer never waits
 * forever on a dead ring: what the producer wrote is still read first. */
static int peek(struct app *a, struct fr_frame_header *hdr, const uint8_t **rec, uint64_t *skipped)
{
	int ret = fr_frame_peek(a->ring, hdr, rec, a->o.latest, skipped, POLL_NS);
	uint64_t now;

	if (ret != -EAGAIN && ret != -ETIMEDOUT && ret != -EINTR)
		return ret;
	now = app_now_ns();
	if (now - a->last_live_check < LIVENESS_NS)
		return ret;
	a->last_live_check = now;
	if (fr_ring_peer_alive(a->ring))
		return ret;
	ret = fr_frame_peek(a->ring, hdr, rec, a->o.latest, skipped, FR_RING_NO_WAIT);
	return ret == -EAGAIN ? -EOWNERDEAD : ret;
}

/* A peek gave no frame (RET < 0, SKIPPED records passed over to reach that): what it means for
 * the run. */
static void handle_peek_error(struct app *a, int ret, uint64_t skipped)
{
	switch (ret) {
	case -EAGAIN:
	case -ETIMEDOUT:
	case -EINTR: /* nothing yet */
		if (redraw(a) == 0)
			report(a, false);
		return;
	case -ECANCELED: /* the stop handler interrupted the wait (fr_ring_interrupt) */
		end_run(a, "interrupted", CONSUMER_EXIT_DONE);
		return;
	case -ENOMSG:
		/* One record that is not a valid frame, already skipped by fr_frame_peek: the ring
		 * itself is sound, read on. */
		a->st.skipped += skipped; /* --latest: what was discarded to reach it */
		a->st.bad_since_shown++;
		if (a->st.bad_records++ == 0)
			app_complain("ring '%s': skipping a record that is not a valid frame "
				     "(further ones are counted in the summary)", a->o.ring_name);
		return;
	case -ENODATA:
		if (a->o.reconnect && !a->o.exit_at_eos) {
			await_next_producer(a, "end of stream");
		} else if (a->o.hold && !a->o.headless && a->v.have_frame) {
			note("end of stream; holding frame %" PRIu64 ", press q to quit", a->v.seq);
			a->why = "end of stream";
			a->holding = true;
		} else {
			end_run(a, "end of stream", CONSUMER_EXIT_DONE);
		}
		return;
	case -EOWNERDEAD:
		app_complain("the producer of ring '%s' died", a->o.ring_name);
		if (a->o.reconnect)
			await_next_producer(a, "producer died");
		else
			end_run(a, "producer died", CONSUMER_EXIT_PRODUCER_DIED);
		return;
	case -EREMOTEIO:
		app_complain_producer_failed(a->ring, a->o.ring_name);
		if (a->o.reconnect)
			await_next_producer(a, "producer failed");
		else
			end_run(a, "producer failed", CONSUMER_EXIT_PRODUCER_FAILED);
		return;
	case -ESTALE:
		follow_replacement(a);
		return;
	default:
		if (consumer_ring_broken(ret)) {
			ring_broken(a, ret); /* nothing is peeked: stop, never release and retry */
		} else {
			app_complain("reading ring '%s' failed: %s", a->o.ring_name, fr_ring_strerror(ret));
			end_run(a, "error", consumer_exit_for(ret));
		}
		return;
	}
}

/* Count what lies between the last shown frame and HDR (SKIPPED: discarded under --latest). */
static void count_frame(struct stats *st, const struct fr_frame_header *hdr, uint64_t skipped)
{
	st->skipped += skipped;
	if (st->have_seq && hdr->seq > st->last_seq + 1 + skipped) {
		/* A gap in seq is frames the producer dropped, less the invalid records skipped
		 * meanwhile (their seq could not be read, but they took numbers). */
		uint64_t gap = hdr->seq - st->last_seq - 1 - skipped;
		st->lost += gap - SDL_min(gap, st->bad_since_shown);
	}
	st->bad_since_shown = 0;
	st->last_seq = hdr->seq;
	st->have_seq = true;
}

/* A frame, in place in shared memory at REC: into the texture, released, drawn (and written for
 * --snapshot), counted. */
static void show_frame(struct app *a, const struct fr_frame_header *hdr, const uint8_t *rec, uint64_t skipped)
{
	struct stats *st = &a->st;
	bool first_window = !a->v.win;
	uint64_t c0, now;
	int ret, rel;

	count_frame(st, hdr, skipped);
	if (ensure_texture(&a->v, &a->o, hdr) < 0) {
		fr_ring_release(a->ring);
		fail(a, CONSUMER_EXIT_DISPLAY);
		return;
	}
	use_colorimetry(&a->v, hdr);
	c0 = thread_cpu_ns();
	ret = upload(&a->v, hdr, rec, a->o.upload_update);
	st->upload_cpu_ns += thread_cpu_ns() - c0;
	/* Released as soon as the texture has the pixels: before drawing and presenting. */
	rel = fr_ring_release(a->ring);
	if (ret < 0) {
		fail(a, CONSUMER_EXIT_DISPLAY);
		return;
	}
	if (rel < 0 && consumer_ring_broken(rel)) {
		/* e.g. -EFAULT: the segment was shrunk while the frame was being copied. */
		ring_broken(a, rel);
		return;
	}
	if (rel < 0) {
		app_complain("releasing a frame of ring '%s' failed: %s", a->o.ring_name, fr_ring_strerror(rel));
		fail(a, consumer_exit_for(rel));
		return;
	}
	a->v.have_frame = true;
	a->v.seq = hdr->seq;

	bool snap = a->o.snapshot && !a->snapshot_done && hdr->seq >= a->o.snapshot_at && st->reconnects == 0;
	c0 = thread_cpu_ns();
	ret = snap ? save_frame(a, a->o.snapshot) : draw(a);
	st->render_cpu_ns += thread_cpu_ns() - c0;
	if (ret < 0)
		return;

	now = app_now_ns();
	if (st->shown == 0) {
		st->t_first_ns = now;
		getrusage(RUSAGE_SELF, &st->ru_first);
	}
	st->t_last_ns = now;
	st->shown++;
	if (st->run_shown++ == 0)
		st->producers_shown++;
	/* Glass-to-glass: the present just returned; capture_ns is on the same clock. The frame that
	 * had to wait for the window and renderer to be created is left out: start-up, not the
	 * steady state the percentiles describe. */
	if (hdr->capture_ns && hdr->capture_ns <= now && !first_window)
		add_latency(st, (double)(now - hdr->capture_ns) / 1e6);
	report(a, false);
	if (a->o.max_frames && st->shown >= a->o.max_frames)
		end_run(a, "frame limit reached", CONSUMER_EXIT_DONE);
}

/* Paused: keep the shown frame. Under --latest the ring is drained meanwhile so a live producer is
 * not held up; under --every nothing is read (lossless). */
static void keep_paused(struct app *a)
{
	if (a->o.latest) {
		int64_t n = fr_ring_skip_to_latest(a->ring);
		if (n > 0)
			a->st.skipped += (uint64_t)n;
		if (n < 0 && consumer_ring_broken((int)n)) {
			ring_broken(a, (int)n); /* as a read would */
			return;
		}
	}
	if (redraw(a) < 0)
		return;
	SDL_Delay(10);
	report(a, false);
}

/* One iteration of the viewer (teststreaming.c's loop(), SDL3's SDL_AppIterate). */
static void iterate(struct app *a)
{
	struct fr_frame_header hdr;
	const uint8_t *rec;
	uint64_t skipped = 0;

	if (stop_asked(a))
		return;
	if (a->ui.save_requested && a->v.have_frame) {
		a->ui.save_requested = false;
		if (save_frame(a, NULL) < 0)
			return;
	}
	if (a->holding) {
		/* The stream has ended, the last frame stays up: only the window is served. Sleep until
		 * the next event, at most 100 ms so that Ctrl-C is seen too. */
		if (redraw(a) == 0)
			SDL_WaitEventTimeout(NULL, 100);
		return;
	}
	if (!a->ring) {
		wait_for_producer(a);
		return;
	}
	if (a->ui.paused) {
		keep_paused(a);
		return;
	}
	int ret = peek(a, &hdr, &rec, &skipped);
	if (ret < 0)
		handle_peek_error(a, ret, skipped);
	else
		show_frame(a, &hdr, rec, skipped);
}

/* ------------------------------------------------------------ start and end */

/* SDL's video subsystem, headless (offscreen driver, software renderer) or for a real window;
 * 0, or -1 (said, and the run failed with 5). */
static int start_sdl(struct app *a)
{
	const struct options *o = &a->o;
	char first_error[256];

	if (o->headless) {
		/* Hints, not setenv: an SDL_VIDEODRIVER / SDL_RENDER_DRIVER from the environment still wins. */
		SDL_SetHint(SDL_HINT_VIDEODRIVER, "offscreen");
		SDL_SetHint(SDL_HINT_RENDER_DRIVER, "software");
		/* Else SDL presents the software surface through an OpenGL texture (llvmpipe here),
		 * which burns CPU in threads of its own for a window nobody sees. */
		SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
	}
	/* Offscreen there is no display refresh to wait for. */
	SDL_SetHint(SDL_HINT_RENDER_VSYNC, o->vsync && !o->headless ? "1" : "0");
	SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
	SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1"); /* ours (apputil) stay in charge of Ctrl-C */
	if (SDL_Init(SDL_INIT_VIDEO) < 0) {
		if (!o->headless) {
			app_complain("SDL_Init failed: %s (no display? try --headless)", SDL_GetError());
			return fail(a, CONSUMER_EXIT_DISPLAY);
		}
		keep_sdl_error(first_error, sizeof(first_error));
		SDL_SetHint(SDL_HINT_VIDEODRIVER, "dummy");
		if (SDL_Init(SDL_INIT_VIDEO) < 0) {
			app_complain("SDL_Init failed: %s (offscreen: %s)", SDL_GetError(), first_error);
			return fail(a, CONSUMER_EXIT_DISPLAY);
		}
		app_complain("SDL_Init(offscreen) failed: %s; using the dummy driver", first_error);
	}
	a->sdl_up = true;
	if (!o->headless && !getenv("SDL_VIDEODRIVER")) {
		/* Without a display SDL 2.26 quietly falls back to its offscreen driver: a window
		 * nobody would ever see. Say so instead of showing frames to nobody. */
		const char *drv = SDL_GetCurrentVideoDriver();
		if (drv && (!strcmp(drv, "offscreen") || !strcmp(drv, "dummy"))) {
			app_complain("SDL_Init failed: no display to open a window on (SDL picked its '%s' "
				     "driver); set DISPLAY, or use --headless", drv);
			return fail(a, CONSUMER_EXIT_DISPLAY);
		}
	}
	return 0;
}

/* Free everything, whichever way the run ended. */
static void app_free(struct app *a)
{
	app_progress_end();
	app_interrupt_ring(NULL); /* before the handler could see a freed ring */
	/* A consumer's close cannot lose anything; a failure here (e.g. -EFAULT after the
	 * segment was shrunk) was already reported by the call that met it. */
	fr_ring_close(&a->ring);
	viewer_free(&a->v);
	if (a->sdl_up)
		SDL_Quit();
	free(a->st.lat_ms);
	a->st.lat_ms = NULL;
}

int main(int argc, char **argv)
{
	struct app app = { .why = "end of stream", .status = CONSUMER_EXIT_DONE };

	app_open_std_fds();

	if (parse_options(argc, argv, &app.o) < 0)
		return CONSUMER_EXIT_USAGE;
	app_install_stop_signals();
	if (start_sdl(&app) == 0)
		start_waiting(&app, false); /* iterate() waits for the producer, then reads */
	while (!app.done)
		iterate(&app);
	if (!app.failed)
		wrap_up(&app);
	app_free(&app);
	return app.status;
}
