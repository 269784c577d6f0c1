/* capture.c - framering-capture: decode video with FFmpeg and write raw frames into a framering ring.
 *
 * demux (libavformat) -> decode (libavcodec, threaded) -> swscale or plane copy
 * straight into a frame record reserved in the ring -> commit. One linear loop in
 * main(); the per-frame work is output_frame(). Layout follows FFmpeg's
 * doc/examples/demux_decode.c: every call checked, one cleanup path.
 *
 * Pacing: files go as fast as the consumer takes them unless --realtime;
 * lavfi graphs generate frames as fast as they can, so they are paced by their
 * timestamps implicitly (a synthetic live camera); V4L2 and network sources are
 * paced by the source itself.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/cpu.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "apputil.h"
#include "capture_meta.h"
#include "fflog.h"
#include "convert.h"
#include "frame.h"
#include "orient.h"
#include "ring.h"

#ifndef FRAMERING_DEFAULT_INPUT
#define FRAMERING_DEFAULT_INPUT "assets/sample.mp4"
#endif
#ifndef FRAMERING_DATADIR
#define FRAMERING_DATADIR "share" /* CMAKE_INSTALL_DATADIR, relative to the install prefix */
#endif

/* Exit codes, one per class of failure (listed in --help). */
enum {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,   /* failure while running: ring, conversion, frame too large */
	EXIT_USAGE = 2,     /* bad option or value */
	EXIT_NOT_FOUND = 3, /* input file does not exist */
	EXIT_BAD_INPUT = 4, /* input unreadable, corrupt, no video stream, no decoder */
	EXIT_FORMAT = 5,    /* unknown input format (-f) or output pixel format (-p) */
	EXIT_SIZE = 6,      /* bad --size */
	EXIT_RING = 7,      /* ring name in use by a live producer, or ring cannot be created */
	EXIT_NO_CAMERA = 8, /* camera device missing */
};

#define PROGRESS_INTERVAL_NS 500000000ull
#define REPLACE_WAIT_NS 10000000000ull /* how long lossless consumers get to follow a replaced ring */
#define RESERVE_SLICE_NS 100000000ll /* block in slices this long so Ctrl-C is seen */

struct options {
	const char *ring_name;
	const char *input;
	const char *input_format;
	AVDictionary *av_opts;
	unsigned width, height; /* 0 x 0: source size */
	bool stretch;
	bool autorotate;        /* honour the display matrix (default), like ffmpeg */
	uint32_t fourcc;
	int realtime;           /* -1: default for the source, 0 off, 1 on */
	bool loop;
	uint64_t max_frames;    /* 0: no limit */
	double duration;        /* < 0: no limit */
	double start;           /* < 0: from the beginning */
	int on_full;            /* -1: default for the source, else enum fr_ring_full_policy */
	uint64_t slots;
	bool whole_ring;        /* --hot-lap off */
	uint64_t max_consumers;
	uint64_t wait_consumers;
	uint64_t conversion_threads; /* 0: chosen from the decoder's threading */
	bool quiet;
	const char *stats_json;
};

struct counters {
	uint64_t produced;      /* frames that reached the ring (written + dropped) */
	uint64_t written, dropped;
	uint64_t decode_failures; /* errors the decoder returned: a packet or frame gave no picture */
	uint64_t corrupt_frames;
	uint64_t skipped_before_start;
	uint64_t loops, discontinuities, format_changes;
	uint64_t ring_replacements; /* the ring was replaced by a larger one for frames that grew */
	uint64_t cpu_demux_ns, cpu_decode_ns, cpu_convert_ns;
};

struct capture {
	const struct options *opt;
	AVFormatContext *fmt;
	AVCodecContext *dec;
	AVStream *st;
	AVPacket *pkt;
	AVFrame *frame;
	fr_ring_t *ring;
	struct conv conv;
	bool conv_ready;
	bool live, camera, pace;
	enum fr_ring_full_policy policy;
	double frame_dur;       /* seconds, nominal */
	int stream_orient;      /* ORIENT_* the stream's display matrix asks for (0 with --no-autorotate) */
	int rotation_degrees;   /* clockwise angle of the last display matrix seen, applied or not */
	bool odd_angle_said;
	double start_target;    /* stream time (s) of --start, or -inf */

	/* timeline: seconds of output since the first frame, across loops */
	bool seg_started;
	int64_t seg_first_pts;
	double seg_base, last_t;
	bool discont_pending;
	bool have_first;

	/* --realtime pacing */
	bool pace_set;
	uint64_t pace_wall0;
	double pace_t0;

	bool stopped_by_consumer;
	const char *drain_end;  /* the consumer left / died with frames unread at the end (NULL: drained) */
	uint64_t frames_unread; /* how many */
	uint64_t t_start_ns, t_progress_ns, cpu_start_ns;
	struct counters n;
	int exit_code;
};


static int interrupt_cb(void *opaque)
{
	(void)opaque;
	return app_stop_requested != 0;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t process_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The input when none is given: the sample video installed with this program
 * (<prefix>/bin/framering-capture -> <prefix>/share/framering/sample.mp4, so a package or an
 * install under any prefix finds its own copy), else the one in the source tree it was built from. */
static const char *default_input(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return FRAMERING_DEFAULT_INPUT;
	exe[n] = '\0';
	for (int up = 0; up < 2; up++) { /* drop "/framering-capture", then "/bin" */
		char *slash = strrchr(exe, '/');
		if (!slash)
			return FRAMERING_DEFAULT_INPUT;
		*slash = '\0';
	}
	int len = snprintf(path, sizeof(path), "%s/%s/framering/sample.mp4", exe, FRAMERING_DATADIR);
	if (len > 0 && (size_t)len < sizeof(path) && access(path, R_OK) == 0)
		return path;
	return FRAMERING_DEFAULT_INPUT;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: framering-capture [OPTIONS] [INPUT]\n"
"Decode video with FFmpeg and write raw frames into the framering ring NAME in\n"
"/dev/shm, converted straight into ring memory. INPUT is a file or URL, a V4L2\n"
"device (/dev/videoN) or, with -f lavfi, a filter graph. Default INPUT: the sample\n"
"video installed with the program (../" FRAMERING_DATADIR "/framering/sample.mp4 from its\n"
"directory), else the one in the source tree it was built from; here:\n"
"  %s\n"
"\n"
"  -r, --ring NAME         ring name (default \"framering\")\n"
"  -f, --input-format FMT  force the input format: lavfi, v4l2, rawvideo, mp4, ...\n"
"  -o, --option KEY=VALUE  demuxer/device/decoder option, repeatable; e.g. for v4l2\n"
"                          -o video_size=1280x720 -o framerate=30 -o input_format=mjpeg,\n"
"                          for rawvideo -o video_size=WxH -o pixel_format=yuv420p,\n"
"                          for the decoder -o threads=2. Unused options are an error.\n"
"  -s, --size WxH|source   output size (default 1920x1080); 'source' follows the input\n"
"                          (its displayed size: see --no-autorotate)\n"
"      --no-autorotate     keep frames as decoded. By default a display matrix (a\n"
"                          phone's rotation) turns them as ffmpeg does: 90, 180,\n"
"                          270 degrees and mirror images; the record has the\n"
"                          displayed size (-s source: 1080x1920 for a 1920x1080\n"
"                          video rotated 90). Other angles are left as decoded\n"
"      --fit letterbox|stretch\n"
"                          keep the aspect ratio with black bars (default) or stretch.\n"
"                          Bars: Y=16 U=V=128 for i420/nv12, 0 for bgr24/rgb24/gray\n"
"  -p, --format FMT        bgr24 (default), rgb24, gray, i420, nv12\n"
"      --realtime          pace output by the stream timestamps (the demo passes it\n"
"                          for files); implicit for lavfi graphs, which would run\n"
"                          flat out otherwise\n"
"      --no-realtime       do not pace a lavfi graph (as fast as the consumer takes)\n"
"      --loop              start the file again at its end (marked DISCONTINUITY)\n"
"      --frames N          stop after N frames (written + dropped)\n"
"      --duration SEC      stop after SEC seconds of stream time (from the first\n"
"                          frame, counted on across loops)\n"
"      --start SEC         seek to SEC first (frame accurate, like ffmpeg -ss)\n"
"      --on-full block|drop\n"
"                          when the ring is full: wait for the consumer (default for\n"
"                          files: lossless) or drop the frame and count it (default\n"
"                          for live sources: lavfi, v4l2, network streams)\n"
"      --slots N           frames of the initial size in flight at once (default 4;\n"
"                          the capacity is rounded up to a power of two; frames\n"
"                          beyond the hot lap's two absorb slow consumers)\n"
"      --hot-lap auto|off  auto (default): while the consumers keep up, frames stay\n"
"                          in the first two frames of the ring, where they were just\n"
"                          read (in cache); off: every frame a lap after the last\n"
"                          (framering 0.2), for comparison\n"
"      --max-consumers N   how many consumers may read the ring at once, each as\n"
"                          'every' (lossless) or 'latest' (live) (1..12, default 8)\n"
"      --wait-consumers N  before the first frame, wait until N consumers are\n"
"                          attached (so that every one of them reads from the start)\n""      --conversion-threads N  swscale threads (default: 1 when the decoder runs\n"
"                          frame threads, as ffmpeg's scale filter; else one per core,\n"
"                          so that a live source's conversion takes less time)\n"
"  -q, --quiet             no progress line, no summary, FFmpeg messages only if fatal\n"
"      --stats-json FILE   write counters and CPU times to FILE at exit\n"
"  -h, --help              this text\n"
"\n"
"Without --realtime a file is decoded as fast as its slowest lossless consumer\n"
"reads it (live consumers, such as a viewer in its default mode, never slow it).\n"
"In block mode the producer waits for its first consumer, waits at the end until\n"
"the lossless consumers have read every frame (closing removes the ring's name,\n"
"so a late consumer would miss them), and stops when the last consumer leaves\n"
"(exits or dies), like a writer whose pipe reader closed. On a TTY a progress line shows frames, fps, drops, ring fill and decode\n"
"errors; a summary is printed at the end. SIGINT/SIGTERM stop cleanly: end of\n"
"stream is marked and the ring is removed. A stream with damaged packets keeps\n"
"going, like ffmpeg: every frame the decoder still gives is written, and each\n"
"error is said and counted (decode errors in the summary and --stats-json).\n"
"\n"
"Exit status: 0 done (end of input, limit reached, consumer left, or stopped by a\n"
"  signal)\n"
"  1 failure while running (ring, conversion, frame too large for the ring,\n"
"    --stats-json FILE cannot be written)\n"
"  2 bad option or value            3 input file not found\n"
"  4 input unreadable or corrupt, no video stream, no decoder\n"
"  5 unknown input format or pixel format   6 bad --size\n"
"  7 ring name in use by a live producer, or the ring cannot be created\n"
"    (e.g. /dev/shm too small for --slots frames of --size)\n"
"  8 camera device missing\n",
		default_input());
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_FIT = 256, OPT_NO_AUTOROTATE, OPT_REALTIME, OPT_NO_REALTIME, OPT_LOOP, OPT_FRAMES,
	       OPT_DURATION, OPT_START, OPT_ON_FULL, OPT_SLOTS, OPT_STATS, OPT_MAX_CONSUMERS, OPT_CONVERSION_THREADS,
	       OPT_WAIT_CONSUMERS, OPT_HOT_LAP };
	static const struct option longopts[] = {
		{"ring", required_argument, NULL, 'r'},
		{"input-format", required_argument, NULL, 'f'},
		{"option", required_argument, NULL, 'o'},
		{"size", required_argument, NULL, 's'},
		{"fit", required_argument, NULL, OPT_FIT},
		{"no-autorotate", no_argument, NULL, OPT_NO_AUTOROTATE},
		{"format", required_argument, NULL, 'p'},
		{"realtime", no_argument, NULL, OPT_REALTIME},
		{"no-realtime", no_argument, NULL, OPT_NO_REALTIME},
		{"loop", no_argument, NULL, OPT_LOOP},
		{"frames", required_argument, NULL, OPT_FRAMES},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"start", required_argument, NULL, OPT_START},
		{"on-full", required_argument, NULL, OPT_ON_FULL},
		{"slots", required_argument, NULL, OPT_SLOTS},
		{"hot-lap", required_argument, NULL, OPT_HOT_LAP},
		{"max-consumers", required_argument, NULL, OPT_MAX_CONSUMERS},
		{"conversion-threads", required_argument, NULL, OPT_CONVERSION_THREADS},
		{"wait-consumers", required_argument, NULL, OPT_WAIT_CONSUMERS},
		{"quiet", no_argument, NULL, 'q'},
		{"stats-json", required_argument, NULL, OPT_STATS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.ring_name = "framering", .input = default_input(),
			      .width = 1920, .height = 1080, .autorotate = true, .fourcc = FR_FRAME_FMT_BGR24,
			      .realtime = -1, .duration = -1, .start = -1, .on_full = -1,
			      .slots = 4};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:f:o:s:p:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->ring_name = optarg;
			break;
		case 'f':
			o->input_format = optarg;
			break;
		case 'o': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				app_complain("bad -o '%s': expected KEY=VALUE", optarg);
				return EXIT_USAGE;
			}
			char *key = av_strndup(optarg, (size_t)(eq - optarg));
			if (!key || av_dict_set(&o->av_opts, key, eq + 1, 0) < 0) {
				av_free(key);
				app_complain("out of memory");
				return EXIT_RUNTIME;
			}
			av_free(key);
			break;
		}
		case 's':
			if (!strcmp(optarg, "source")) {
				o->width = o->height = 0;
			} else if (app_parse_size(optarg, &o->width, &o->height) < 0) {
				app_complain("bad size '%s': expected WxH (1..16384 each) or 'source'", optarg);
				return EXIT_SIZE;
			}
			break;
		case OPT_FIT:
			if (!strcmp(optarg, "letterbox")) {
				o->stretch = false;
			} else if (!strcmp(optarg, "stretch")) {
				o->stretch = true;
			} else {
				app_complain("bad --fit '%s': expected letterbox or stretch", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_NO_AUTOROTATE:
			o->autorotate = false;
			break;
		case 'p':
			o->fourcc = fr_frame_format_from_name(optarg);
			if (!o->fourcc) {
				app_complain("unknown pixel format '%s': expected bgr24, rgb24, gray, i420 or nv12",
					 optarg);
				return EXIT_FORMAT;
			}
			break;
		case OPT_REALTIME:
			o->realtime = 1;
			break;
		case OPT_NO_REALTIME:
			o->realtime = 0;
			break;
		case OPT_LOOP:
			o->loop = true;
			break;
		case OPT_FRAMES:
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				app_complain("bad --frames '%s': expected a positive integer", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_DURATION:
			if (app_parse_seconds(optarg, &o->duration) < 0 || o->duration <= 0) {
				app_complain("bad --duration '%s': expected seconds > 0", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_START:
			if (app_parse_seconds(optarg, &o->start) < 0) {
				app_complain("bad --start '%s': expected seconds >= 0", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_ON_FULL:
			if (!strcmp(optarg, "block")) {
				o->on_full = FR_RING_FULL_BLOCK;
			} else if (!strcmp(optarg, "drop")) {
				o->on_full = FR_RING_FULL_DROP;
			} else {
				app_complain("bad --on-full '%s': expected block or drop", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_SLOTS:
			if (app_parse_u64(optarg, &o->slots) < 0 || o->slots < 1 || o->slots > 4096) {
				app_complain("bad --slots '%s': expected 1..4096", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_HOT_LAP:
			if (strcmp(optarg, "auto") && strcmp(optarg, "off")) {
				app_complain("bad --hot-lap '%s': expected auto or off", optarg);
				return EXIT_USAGE;
			}
			o->whole_ring = !strcmp(optarg, "off");
			break;
		case OPT_WAIT_CONSUMERS:
			if (app_parse_u64(optarg, &o->wait_consumers) < 0 || o->wait_consumers > FR_RING_MAX_CONSUMERS) {
				app_complain("bad --wait-consumers '%s': expected 0..%u", optarg, FR_RING_MAX_CONSUMERS);
				return EXIT_USAGE;
			}
			break;
		case OPT_CONVERSION_THREADS:
			if (app_parse_u64(optarg, &o->conversion_threads) < 0 || o->conversion_threads < 1 ||
			    o->conversion_threads > 64) {
				app_complain("bad --conversion-threads '%s': expected 1..64", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_MAX_CONSUMERS:
			if (app_parse_u64(optarg, &o->max_consumers) < 0 || o->max_consumers < 1 ||
			    o->max_consumers > FR_RING_MAX_CONSUMERS) {
				app_complain("bad --max-consumers '%s': expected 1..%u", optarg, FR_RING_MAX_CONSUMERS);
				return EXIT_USAGE;
			}
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_STATS:
			o->stats_json = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case ':':
			app_complain("option '%s' needs a value (see --help)", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			app_complain_unknown_option(argv);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc) {
		app_complain("more than one INPUT given ('%s'); see --help", argv[optind]);
		return EXIT_USAGE;
	}
	/* A bad ring name is bad usage: said now, before the input is opened (a
	 * listener would wait for its caller first). */
	if (!app_ring_name_ok(o->ring_name))
		return EXIT_USAGE;
	uint64_t most = o->max_consumers ? o->max_consumers : FR_RING_DEFAULT_CONSUMERS;
	if (o->wait_consumers > most) {
		app_complain("--wait-consumers %" PRIu64 " is more than the ring admits (--max-consumers %" PRIu64 ")",
			     o->wait_consumers, most);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static bool is_v4l2_name(const char *name)
{
	return name && (!strcmp(name, "v4l2") || !strcmp(name, "video4linux2"));
}

/* The stream's display matrix (9 values), or NULL. FFmpeg 6.1 moved stream
 * side data into the codec parameters and deprecated the old call. */
static const int32_t *stream_display_matrix(const AVStream *st)
{
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
	const AVPacketSideData *sd = av_packet_side_data_get(st->codecpar->coded_side_data,
							     st->codecpar->nb_coded_side_data,
							     AV_PKT_DATA_DISPLAYMATRIX);
	return sd && sd->size >= 9 * sizeof(int32_t) ? (const int32_t *)sd->data : NULL;
#else
	size_t size = 0;
	const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
	return m && size >= 9 * sizeof(int32_t) ? (const int32_t *)m : NULL;
#endif
}

/* The ORIENT_* turn for display matrix M (NULL: none); notes its angle. */
static int matrix_orient(struct capture *cap, const int32_t *m)
{
	int o = orient_from_display_matrix(m, &cap->rotation_degrees);
	if (!cap->opt->autorotate)
		return ORIENT_NONE;
	if (o < 0) {
		if (!cap->odd_angle_said && !cap->opt->quiet)
			app_complain("warning: '%s' is to be shown rotated by %d degrees; only multiples of 90 "
				     "are applied: frames are left as decoded", cap->opt->input, cap->rotation_degrees);
		cap->odd_angle_said = true;
		return ORIENT_NONE;
	}
	return o;
}

/* The turn for frame F. Its own display matrix (an H.264/HEVC display
 * orientation message) comes first, then the stream's, as the ffmpeg CLI
 * takes them. Frames seldom carry side data: no lookup when there is none. */
static int frame_orient(struct capture *cap, const AVFrame *f)
{
	if (f->nb_side_data && cap->opt->autorotate) {
		const AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_DISPLAYMATRIX);
		if (sd && sd->size >= 9 * sizeof(int32_t))
			return matrix_orient(cap, (const int32_t *)sd->data);
	}
	return cap->stream_orient;
}

/* Set every -o in OPTS that OBJ (WHOSE: "the h264 decoder") knows on OBJ now.
 * avformat_open_input() and avcodec_open2() fail a value an option cannot
 * take (threads=abc) with EINVAL, as they fail an input or a stream they
 * cannot open: set here first, one at a time, the typo is told apart, and
 * named. The opens set the same values again. EXIT_OK or the status after
 * its line. */
static int set_known_options(void *obj, const AVDictionary *opts, const char *whose)
{
	const AVDictionaryEntry *e = NULL;
	while ((e = av_dict_get(opts, "", e, AV_DICT_IGNORE_SUFFIX))) {
		const AVOption *opt = av_opt_find(obj, e->key, NULL, 0, AV_OPT_SEARCH_CHILDREN);
		if (!opt)
			continue; /* someone else's, or a typo that is said later */
		if (opt->flags & AV_OPT_FLAG_READONLY) {
			app_complain("bad -o %s=%s: option '%s' of %s is read-only", e->key, e->value, e->key, whose);
			return EXIT_USAGE;
		}
		int ret = av_opt_set(obj, e->key, e->value, AV_OPT_SEARCH_CHILDREN);
		if (ret == AVERROR(EINVAL) || ret == AVERROR(ERANGE)) {
			app_complain("bad -o %s=%s: option '%s' of %s does not take '%s'%s", e->key, e->value, e->key,
				     whose, e->value, ret == AVERROR(ERANGE) ? " (out of its range)" : "");
			return EXIT_USAGE;
		}
		if (ret < 0) {
			app_complain("cannot set option '%s' of %s: %s", e->key, whose, av_err2str(ret));
			return EXIT_RUNTIME;
		}
	}
	return EXIT_OK;
}

/* Open the input and find its video stream. Sets cap->live/camera. */
static int open_input(struct capture *cap, AVDictionary **av_opts)
{
	const struct options *o = cap->opt;
	const AVInputFormat *ifmt = NULL;
	const char *fmt_name = o->input_format;

	/* A /dev/videoN path means a camera even without -f v4l2. */
	if (!fmt_name && !strncmp(o->input, "/dev/video", 10))
		fmt_name = "v4l2";
	if (fmt_name) {
		ifmt = av_find_input_format(fmt_name);
		if (!ifmt) {
			app_complain("unknown input format '%s' (see `ffmpeg -demuxers`)", fmt_name);
			return EXIT_FORMAT;
		}
	}
	cap->camera = is_v4l2_name(fmt_name);
	if (cap->camera && access(o->input, F_OK) != 0) {
		app_complain("camera '%s' not found: no such device", o->input);
		return EXIT_NO_CAMERA;
	}

	cap->fmt = avformat_alloc_context();
	if (!cap->fmt) {
		app_complain("out of memory");
		return EXIT_RUNTIME;
	}
	cap->fmt->interrupt_callback = (AVIOInterruptCB){interrupt_cb, NULL};
	/* the generic ones (probesize, fflags ...): the demuxer's own are known only once it is open */
	int ret = set_known_options(cap->fmt, *av_opts, "the demuxer");
	if (ret != EXIT_OK)
		return ret;
	ret = avformat_open_input(&cap->fmt, o->input, ifmt, av_opts);
	if (ret < 0) {
		/* avformat_open_input freed the context */
		if (cap->camera && (ret == AVERROR(ENOENT) || ret == AVERROR(ENODEV) ||
				    ret == AVERROR(ENXIO))) {
			app_complain("camera '%s' not available: %s", o->input, av_err2str(ret));
			return EXIT_NO_CAMERA;
		}
		if (ret == AVERROR(ENOENT)) {
			app_complain("input '%s' not found: no such file", o->input);
			return EXIT_NOT_FOUND;
		}
		/* Interrupted by a signal: through the interrupt callback, or an open()
		 * that waited in the kernel (a FIFO without a writer) and got EINTR. */
		if (ret == AVERROR_EXIT || (ret == AVERROR(EINTR) && app_stop_requested))
			return EXIT_OK;
		app_complain("cannot open input '%s': %s%s", o->input, av_err2str(ret), fflog_detail());
		return EXIT_BAD_INPUT;
	}
	ret = avformat_find_stream_info(cap->fmt, NULL);
	if (ret < 0) {
		app_complain("cannot read stream information from '%s': %s%s", o->input, av_err2str(ret),
			 fflog_detail());
		return EXIT_BAD_INPUT;
	}
	ret = av_find_best_stream(cap->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (ret < 0) {
		app_complain("'%s' has no video stream", o->input);
		return EXIT_BAD_INPUT;
	}
	cap->st = cap->fmt->streams[ret];
	cap->stream_orient = matrix_orient(cap, stream_display_matrix(cap->st));

	const char *name = cap->fmt->iformat->name;
	const AVClass *cls = cap->fmt->iformat->priv_class;
	bool device = cls && (cls->category == AV_CLASS_CATEGORY_DEVICE_VIDEO_INPUT ||
			      cls->category == AV_CLASS_CATEGORY_DEVICE_INPUT);
	bool network = !strncmp(o->input, "rtsp://", 7) || !strncmp(o->input, "rtp://", 6) ||
		       !strncmp(o->input, "udp://", 6) || !strncmp(o->input, "srt://", 6) ||
		       !strncmp(o->input, "rtmp://", 7);
	cap->live = device || network || !strcmp(name, "lavfi");
	if (strstr(name, "video4linux2"))
		cap->camera = true;
	/* lavfi renders as fast as it can: pace it like the camera it imitates. */
	cap->pace = o->realtime == 1 || (o->realtime == -1 && !strcmp(name, "lavfi"));
	cap->policy = o->on_full >= 0 ? (enum fr_ring_full_policy)o->on_full
				      : cap->live ? FR_RING_FULL_DROP : FR_RING_FULL_BLOCK;

	AVRational fr = av_guess_frame_rate(cap->fmt, cap->st, NULL);
	cap->frame_dur = fr.num > 0 && fr.den > 0 ? av_q2d(av_inv_q(fr)) : 1.0 / 30;
	return EXIT_OK;
}

static int open_decoder(struct capture *cap, AVDictionary **av_opts)
{
	const AVCodec *codec = avcodec_find_decoder(cap->st->codecpar->codec_id);
	if (!codec) {
		app_complain("no decoder for the video codec '%s' of '%s'",
			 avcodec_get_name(cap->st->codecpar->codec_id), cap->opt->input);
		return EXIT_BAD_INPUT;
	}
	cap->dec = avcodec_alloc_context3(codec);
	if (!cap->dec) {
		app_complain("out of memory");
		return EXIT_RUNTIME;
	}
	int ret = avcodec_parameters_to_context(cap->dec, cap->st->codecpar);
	if (ret < 0) {
		app_complain("bad codec parameters in '%s': %s", cap->opt->input, av_err2str(ret));
		return EXIT_BAD_INPUT;
	}
	cap->dec->pkt_timebase = cap->st->time_base;
	/* Frame threading decodes N frames at once: the throughput files want. It
	 * delays output by a frame per thread, so live sources get slice threads. */
	cap->dec->thread_count = 0;
	cap->dec->thread_type = cap->live ? FF_THREAD_SLICE : FF_THREAD_FRAME | FF_THREAD_SLICE;
	char whose[64];
	snprintf(whose, sizeof(whose), "the %s decoder", codec->name);
	if ((ret = set_known_options(cap->dec, *av_opts, whose)) != EXIT_OK)
		return ret;
	ret = avcodec_open2(cap->dec, codec, av_opts);
	if (ret < 0) {
		app_complain("cannot open the %s decoder: %s%s", codec->name, av_err2str(ret), fflog_detail());
		return EXIT_BAD_INPUT;
	}
	const AVDictionaryEntry *e = av_dict_get(*av_opts, "", NULL, AV_DICT_IGNORE_SUFFIX);
	if (e) {
		app_complain("option '%s' is not known to the demuxer or the decoder", e->key);
		return EXIT_USAGE;
	}
	cap->pkt = av_packet_alloc();
	cap->frame = av_frame_alloc();
	if (!cap->pkt || !cap->frame) {
		app_complain("out of memory");
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

/* Bytes of a segment in /dev/shm: the ring's header page, then the data area
 * (libring/src/ring_layout.h, RING_HEADER_SIZE). */
#define SEGMENT_HEADER_BYTES 4096u
#define MIB (1024.0 * 1024.0)

/* The one line for a ring that does not fit /dev/shm (-ENOSPC): how much it
 * needs, how much is free, and the three ways out. */
static void complain_no_space(const struct options *o, uint64_t capacity, unsigned w, unsigned h)
{
	uint64_t need = SEGMENT_HEADER_BYTES + capacity;
	struct statvfs vfs;
	char shm[160] = "/dev/shm has too little free";
	char grow[160] = "a larger /dev/shm (docker run --shm-size=..., or mount -o remount,size=... /dev/shm)";
	if (statvfs("/dev/shm", &vfs) == 0) {
		uint64_t free_b = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		/* What /dev/shm would need to hold what is there now plus this ring. */
		uint64_t want_mib = (total - (total > free_b ? free_b : total) + need + (1u << 20) - 1) >> 20;
		snprintf(shm, sizeof(shm), "/dev/shm has %.1f MiB free (of %.1f MiB)", (double)free_b / MIB,
			 (double)total / MIB);
		snprintf(grow, sizeof(grow),
			 "a /dev/shm of at least %" PRIu64 " MiB (docker run --shm-size=%" PRIu64
			 "m, or mount -o remount,size=%" PRIu64 "m /dev/shm)", want_mib, want_mib, want_mib);
	}
	app_complain("cannot create ring '%s': it needs %.1f MiB of shared memory (%" PRIu64 " bytes, for "
		     "--slots %" PRIu64 " of %ux%u %s) but %s; use fewer --slots, a smaller --size, or %s",
		     o->ring_name, (double)need / MIB, need, o->slots, w, h, fr_frame_format_name(o->fourcc), shm,
		     grow);
}

static void set_meta(struct capture *cap, unsigned w, unsigned h, unsigned src_w, unsigned src_h)
{
	struct capture_meta m = {
		.magic = CAPTURE_META_MAGIC, .version = CAPTURE_META_VERSION,
		.size = sizeof(m), .fourcc = cap->opt->fourcc, .width = w, .height = h,
		.src_width = src_w, .src_height = src_h,
		.time_base_num = cap->st->time_base.num, .time_base_den = cap->st->time_base.den,
		.flags = (cap->live ? CAPTURE_META_LIVE : 0) | (cap->opt->loop ? CAPTURE_META_LOOP : 0),
	};
	AVRational fr = av_guess_frame_rate(cap->fmt, cap->st, NULL);
	m.fps_num = fr.num;
	m.fps_den = fr.den;
	m.color_matrix = cap->conv.color_matrix;
	m.color_range = cap->conv.color_range;
	m.color_primaries = cap->conv.color_primaries;
	m.color_transfer = cap->conv.color_transfer;
	m.chroma_location = cap->conv.chroma_location;
	const char *base = strrchr(cap->opt->input, '/');
	snprintf(m.source, sizeof(m.source), "%s", base && base[1] ? base + 1 : cap->opt->input);
	fr_ring_set_meta(cap->ring, &m, sizeof(m)); /* informational: a failure costs nothing */
}

/* A ring in which --slots frames of W x H are in flight at once; capacity 0
 * when that would exceed the largest ring (the caller complains). */
static struct fr_ring_create_opts ring_opts(const struct capture *cap, unsigned w, unsigned h)
{
	return (struct fr_ring_create_opts){
		.capacity = fr_frame_ring_capacity(cap->opt->fourcc, w, h, (unsigned)cap->opt->slots),
		.on_full = cap->policy,
		.max_consumers = (unsigned)cap->opt->max_consumers};
}

/* Create the ring sized for --slots frames of the first output size. */
static int open_ring(struct capture *cap)
{
	const struct options *o = cap->opt;
	unsigned src_w = (unsigned)cap->st->codecpar->width, src_h = (unsigned)cap->st->codecpar->height;
	bool swap = cap->stream_orient & ORIENT_TRANSPOSE; /* -s source: the displayed size */
	unsigned w = o->width ? o->width : swap ? src_h : src_w;
	unsigned h = o->height ? o->height : swap ? src_w : src_h;
	if (!w || !h) { /* size unknown until the first frame: assume 1080p */
		w = 1920;
		h = 1080;
	}
	size_t rec = fr_frame_record_size(o->fourcc, w, h);
	if (!rec) { /* the only reason left: a source larger than any frame (-s source) */
		app_complain("cannot make %ux%u %s frames: at most %ux%u; use --size", w, h,
			     fr_frame_format_name(o->fourcc), FR_FRAME_MAX_DIM, FR_FRAME_MAX_DIM);
		return EXIT_SIZE;
	}
	struct fr_ring_create_opts ro = ring_opts(cap, w, h);
	if (!ro.capacity) {
		app_complain("%" PRIu64 " frames of %ux%u %s do not fit the largest ring (%llu GiB): use fewer --slots or a smaller --size",
			     o->slots, w, h, fr_frame_format_name(o->fourcc), (unsigned long long)(FR_RING_MAX_CAPACITY >> 30));
		return EXIT_SIZE;
	}
	int ret = fr_ring_create(&cap->ring, o->ring_name, &ro);
	if (ret == -EBUSY) {
		struct fr_ring_stats st;
		if (fr_ring_inspect(o->ring_name, &st) == 0 && st.producer_pid)
			app_complain("ring '%s' is in use by a live producer (pid %d)", o->ring_name,
				 (int)st.producer_pid);
		else
			app_complain("ring '%s' is in use by a live producer", o->ring_name);
		return EXIT_RING;
	}
	if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", o->ring_name,
			 FR_RING_NAME_MAX);
		return EXIT_USAGE;
	}
	if (ret == -ENOSPC) {
		complain_no_space(o, ro.capacity, w, h);
		return EXIT_RING;
	}
	if (ret < 0) {
		app_complain("cannot create ring '%s': %s", o->ring_name, fr_ring_strerror(ret));
		return EXIT_RING;
	}
	if (o->whole_ring) /* replacements keep it (fr_ring_replace) */
		fr_ring_set_hot_lap(cap->ring, FR_RING_HOT_LAP_OFF, -1);
	set_meta(cap, w, h, src_w, src_h);
	if (o->wait_consumers) {
		/* Before the first frame: every consumer the pipeline waits for reads
		 * from the start (slices only so that Ctrl-C is seen; the wait is a futex). */
		if (!o->quiet)
			app_progress("waiting for %" PRIu64 " consumer(s) of ring '%s'", o->wait_consumers,
				     o->ring_name);
		while (!app_stop_requested) {
			ret = fr_ring_wait_consumers(cap->ring, (unsigned)o->wait_consumers, RESERVE_SLICE_NS);
			if (ret != -ETIMEDOUT && ret != -EINTR)
				break;
		}
		if (ret < 0 && !app_stop_requested) {
			app_complain("waiting for consumers of ring '%s': %s", o->ring_name, fr_ring_strerror(ret));
			return EXIT_RUNTIME;
		}
	}
	return EXIT_OK;
}

/* Seek to the --start position (or the file's beginning when looping). */
static int seek_start(struct capture *cap)
{
	int64_t ts = cap->opt->start > 0 ? (int64_t)(cap->opt->start * AV_TIME_BASE) : 0;
	if (cap->fmt->start_time != AV_NOPTS_VALUE)
		ts += cap->fmt->start_time; /* --start counts from the file's start, like ffmpeg -ss */
	int ret = avformat_seek_file(cap->fmt, -1, INT64_MIN, ts, ts, 0);
	if (ret < 0)
		return ret;
	avcodec_flush_buffers(cap->dec);
	cap->discont_pending = true;
	cap->seg_started = false;
	return 0;
}

/* Sleep until stream time T is due (--realtime). Restarts the clock after a
 * stall (a consumer that held us up) instead of bursting to catch up. */
static void pace(struct capture *cap, double t)
{
	uint64_t now = app_now_ns();
	if (!cap->pace_set || t < cap->pace_t0) {
		cap->pace_set = true;
		cap->pace_wall0 = now;
		cap->pace_t0 = t;
		return;
	}
	uint64_t due = cap->pace_wall0 + (uint64_t)((t - cap->pace_t0) * 1e9);
	if (now > due + 1000000000ull) {
		cap->pace_wall0 = now;
		cap->pace_t0 = t;
		return;
	}
	if (due <= now)
		return;
	struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u)};
	/* EINTR on a stop signal: fine, the loop checks the flag next */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Reserve a record, waiting in slices so a stop signal is seen. Returns 0,
 * 1 if the frame is dropped (ring full under the drop policy), 2 if stopping
 * (signal, or the consumer left or died while we waited for space: like a
 * pipe whose reader closed, a lossless producer has nobody to deliver to),
 * or a negative ring error. */
static int reserve(struct capture *cap, struct fr_frame_header **hdr)
{
	for (;;) {
		if (app_stop_requested)
			return 2;
		int ret = fr_frame_reserve(cap->ring, cap->conv.fourcc, cap->conv.out_w, cap->conv.out_h,
					hdr, RESERVE_SLICE_NS);
		if (ret == 0)
			return 0;
		if (ret == -ENOBUFS)
			return 1;
		if (ret == -ECANCELED) /* the stop handler cut the wait short (a replaced ring is registered) */
			return 2;
		if (ret == -EOWNERDEAD || ret == -ENOTCONN) {
			cap->stopped_by_consumer = true;
			return 2;
		}
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			continue;
		return ret;
	}
}

/* Stop after a failure that was just complained about: the exit status says so. */
static int fail(struct capture *cap, int exit_code)
{
	cap->exit_code = exit_code;
	return 1;
}

/* Frames grew past the ring (a source that changes size): go on in a ring
 * for --slots frames of the new size under the same name. Its consumers read
 * the old ring to its end and follow by themselves (libring's -ESTALE);
 * lossless ones are waited for a moment, so that the new ring does not
 * fill before they are back. 0, or 1 after a complaint (cap->exit_code). */
static int grow_ring(struct capture *cap)
{
	const struct options *o = cap->opt;
	struct fr_ring_create_opts ro = ring_opts(cap, cap->conv.out_w, cap->conv.out_h);
	if (!ro.capacity) {
		app_complain("%" PRIu64 " frames of %ux%u %s do not fit the largest ring: use fewer --slots or --size",
			     o->slots, cap->conv.out_w, cap->conv.out_h, fr_frame_format_name(o->fourcc));
		return fail(cap, EXIT_RUNTIME);
	}
	struct fr_ring_stats before;
	fr_ring_get_stats(cap->ring, &before);
	fr_ring_t *bigger;
	int ret = fr_ring_replace(cap->ring, &bigger, &ro);
	if (ret == -ENOSPC) {
		complain_no_space(o, ro.capacity, cap->conv.out_w, cap->conv.out_h);
		return fail(cap, EXIT_RUNTIME);
	}
	if (ret < 0) {
		app_complain("a %ux%u %s frame does not fit ring '%s', and replacing it by a larger one failed: %s",
			     cap->conv.out_w, cap->conv.out_h, fr_frame_format_name(o->fourcc), o->ring_name,
			     fr_ring_strerror(ret));
		return fail(cap, EXIT_RUNTIME);
	}
	app_interrupt_ring(NULL);
	fr_ring_close(&cap->ring);
	cap->ring = bigger;
	app_interrupt_ring(cap->ring);
	cap->n.ring_replacements++;
	set_meta(cap, cap->conv.out_w, cap->conv.out_h, (unsigned)cap->conv.src_w, (unsigned)cap->conv.src_h);
	if (cap->policy == FR_RING_FULL_BLOCK && before.consumers) {
		uint64_t until = app_now_ns() + REPLACE_WAIT_NS;
		while (!app_stop_requested && app_now_ns() < until &&
		       fr_ring_wait_consumers(cap->ring, before.consumers, RESERVE_SLICE_NS) == -ETIMEDOUT)
			;
	}
	return 0;
}

/* Closing the ring removes its name, so a consumer that has not attached yet
 * would never see the frames still in it. Block mode promises lossless
 * delivery: wait until a consumer has read them all (or one that attached
 * has left). Drop mode waits only for a consumer that is attached now. */
static void wait_drained(struct capture *cap)
{
	struct fr_ring_stats rs;
	fr_ring_get_stats(cap->ring, &rs);
	if (cap->policy == FR_RING_FULL_DROP && !(rs.consumer_pid && rs.consumer_alive))
		return;
	bool noted = false;
	while (!app_stop_requested) {
		/* Slices only so that Ctrl-C is seen; the wait itself is a futex. */
		int ret = fr_ring_wait_drained(cap->ring, RESERVE_SLICE_NS);
		fr_ring_get_stats(cap->ring, &rs);
		if (ret == -ENOTCONN || ret == -EOWNERDEAD) { /* the summary says so: not delivered */
			cap->drain_end = ret == -ENOTCONN ? "left" : "died";
			cap->frames_unread = rs.records_written - rs.records_read - rs.records_skipped;
		}
		if (ret != -ETIMEDOUT && ret != -EINTR)
			return; /* drained, or the consumer left or died */
		if (!rs.consumer_pid && !noted && !cap->opt->quiet) {
			app_complain("waiting for a consumer to read the last %" PRIu64 " frames (Ctrl-C to quit)",
				 rs.records_written - rs.records_read - rs.records_skipped);
			noted = true;
		}
	}
}

/* What the summary calls decode errors: each failure the decoder returned
 * (ffmpeg's "Error while decoding stream" line) plus each error it logged,
 * which also catches damage it concealed in a frame it still gave us. */
static uint64_t decode_errors(const struct capture *cap)
{
	return cap->n.decode_failures + fflog_counted();
}

static void progress(struct capture *cap, bool force)
{
	uint64_t now = app_now_ns();
	if (cap->opt->quiet || (!force && now - cap->t_progress_ns < PROGRESS_INTERVAL_NS))
		return;
	cap->t_progress_ns = now;
	struct fr_ring_stats rs;
	fr_ring_get_stats(cap->ring, &rs);
	double el = (double)(now - cap->t_start_ns) / 1e9;
	app_progress("frames %" PRIu64 "  %.1f fps  drops %" PRIu64 "  ring %3.0f%%  decode errors %" PRIu64,
		     cap->n.written, el > 0 ? (double)cap->n.written / el : 0.0, cap->n.dropped,
		     rs.capacity ? 100.0 * (double)rs.used / (double)rs.capacity : 0.0,
		     decode_errors(cap));
}

/* Mark end of stream: clean, or, after a failure, an error end that carries
 * the complaint to every consumer (they exit "producer failed" with it
 * instead of "end of stream"). A second call changes nothing. */
static int end_stream(struct capture *cap)
{
	if (cap->exit_code == EXIT_OK)
		return fr_ring_mark_eos(cap->ring);
	int rc = fr_ring_mark_eos_error(cap->ring, -EIO, app_last_complaint());
	return rc == -EALREADY ? 0 : rc;
}

/* Put one decoded frame into the ring. Returns 0 to go on, or 1 to stop:
 * a limit (--frames, --duration) or a stop request ends the stream, or a
 * failure, complained about, set cap->exit_code. */
static int output_frame(struct capture *cap, AVFrame *f, uint64_t decoded_ns)
{
	const struct options *o = cap->opt;
	AVRational tb = cap->st->time_base;
	int64_t pts = f->best_effort_timestamp;

	if (pts != AV_NOPTS_VALUE && (double)pts * av_q2d(tb) < cap->start_target - 1e-6) {
		cap->n.skipped_before_start++; /* decoded from the key frame before --start */
		return 0;
	}
	if (f->decode_error_flags || (f->flags & AV_FRAME_FLAG_CORRUPT))
		cap->n.corrupt_frames++;

	/* Stream time since the first frame, continuing across loops. */
	double t;
	if (!cap->seg_started) {
		cap->seg_started = true;
		cap->seg_first_pts = pts;
		cap->seg_base = cap->have_first ? cap->last_t + cap->frame_dur : 0;
		t = cap->seg_base;
	} else if (pts != AV_NOPTS_VALUE && cap->seg_first_pts != AV_NOPTS_VALUE) {
		t = cap->seg_base + (double)(pts - cap->seg_first_pts) * av_q2d(tb);
	} else {
		t = cap->last_t + cap->frame_dur;
	}
	/* (1 us of slack for rounding; the first frame, at 0, is always in) */
	if (o->duration > 0 && cap->have_first && t >= o->duration - 1e-6)
		return 1;
	cap->last_t = t;

	uint32_t flags = f->key_frame ? FR_FRAME_FLAG_KEY : 0;
	int ret = conv_prepare(&cap->conv, f, frame_orient(cap, f));
	if (ret < 0) {
		app_complain("cannot convert %dx%d %s frames to %s: %s", f->width, f->height,
			 av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format) : "?",
			 fr_frame_format_name(o->fourcc), av_err2str(ret));
		return fail(cap, EXIT_RUNTIME);
	}
	if (ret == 1) {
		cap->conv_ready = true;
		if (cap->have_first) { /* a new size or format mid-stream: follow it */
			cap->n.format_changes++;
			flags |= FR_FRAME_FLAG_DISCONTINUITY;
		}
		set_meta(cap, cap->conv.out_w, cap->conv.out_h, (unsigned)f->width, (unsigned)f->height);
	}
	if (cap->discont_pending) {
		flags |= FR_FRAME_FLAG_DISCONTINUITY;
		cap->discont_pending = false;
	}
	if (flags & FR_FRAME_FLAG_DISCONTINUITY)
		cap->n.discontinuities++;
	if (!cap->have_first)
		fflog_mute(false); /* the input works: FFmpeg may speak now */
	cap->have_first = true;

	uint64_t capture_ns = decoded_ns;
	if (cap->pace) {
		/* A paced source (a file with --realtime, lavfi) decodes ahead of time:
		 * the frame is "captured" when it falls due, which is when a camera
		 * would have delivered it. Glass-to-glass latency is measured from here. */
		pace(cap, t);
		capture_ns = app_now_ns();
	}
	if (app_stop_requested)
		return 1;

	cap->n.produced++;
	bool last = o->max_frames && cap->n.produced >= o->max_frames;
	struct fr_frame_header *hdr = NULL;
	ret = reserve(cap, &hdr);
	if (ret == -EMSGSIZE) {
		if (grow_ring(cap))
			return 1;
		ret = reserve(cap, &hdr);
	}
	if (ret == 2)
		return 1;
	if (ret == 1) {
		cap->n.dropped++;
		return last ? 1 : 0;
	}
	if (ret < 0) {
		if (ret == -EMSGSIZE)
			app_complain("a %ux%u %s frame does not fit the ring (largest record %zu bytes): "
				 "use --size or more --slots", cap->conv.out_w, cap->conv.out_h,
				 fr_frame_format_name(o->fourcc), fr_ring_max_record(cap->ring));
		else
			app_complain("cannot reserve a frame in ring '%s': %s", o->ring_name, fr_ring_strerror(ret));
		return fail(cap, EXIT_RUNTIME);
	}

	uint64_t c0 = thread_cpu_ns();
	ret = conv_frame(&cap->conv, f, hdr);
	cap->n.cpu_convert_ns += thread_cpu_ns() - c0;
	if (ret < 0) {
		fr_ring_abort(cap->ring); /* cannot fail: the reservation is ours */
		app_complain("conversion failed: %s", av_err2str(ret));
		return fail(cap, EXIT_RUNTIME);
	}
	hdr->pts = pts == AV_NOPTS_VALUE ? INT64_MIN : pts;
	hdr->time_base_num = tb.num;
	hdr->time_base_den = tb.den;
	hdr->capture_ns = capture_ns;
	hdr->flags = flags | (last ? FR_FRAME_FLAG_EOS : 0);
	ret = fr_frame_commit(cap->ring, hdr);
	if (ret < 0) {
		app_complain("cannot commit a frame to ring '%s': %s", o->ring_name, fr_ring_strerror(ret));
		return fail(cap, EXIT_RUNTIME);
	}
	cap->n.written++;
	progress(cap, false);
	return last ? 1 : 0;
}

/* A decoder that failed this many times in a row without giving a frame is
 * stuck, not damaged: stop asking it instead of spinning. */
#define MAX_FAILURES_IN_A_ROW 1000

/* The decoder gave up on a packet or a frame: count it, say so once the input
 * is known to work (before that FFmpeg's messages are held back, so that a
 * bad input gets its one line), and go on, as the ffmpeg CLI does. */
static void decode_failed(struct capture *cap, int err)
{
	cap->n.decode_failures++;
	if (!cap->opt->quiet && cap->have_first)
		app_complain("error while decoding '%s': %s; going on", cap->opt->input, av_err2str(err));
}

/* Send one packet (NULL: drain) and put every frame it yields into the ring.
 * Damaged packets and frames are counted and skipped. Returns as output_frame(). */
static int decode_packet(struct capture *cap, const AVPacket *pkt)
{
	uint64_t c0 = thread_cpu_ns();
	int ret = avcodec_send_packet(cap->dec, pkt);
	cap->n.cpu_decode_ns += thread_cpu_ns() - c0;
	if (ret < 0 && ret != AVERROR_EOF)
		decode_failed(cap, ret);

	unsigned failed = 0;
	for (;;) {
		c0 = thread_cpu_ns();
		ret = avcodec_receive_frame(cap->dec, cap->frame);
		cap->n.cpu_decode_ns += thread_cpu_ns() - c0;
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0) {
			/* One frame lost, not the end of the stream: a frame-threaded
			 * decoder reports each frame's failure on its own, and the frames
			 * its other threads decoded (at the drain: every frame after the
			 * bad one) still follow. So ask again. */
			decode_failed(cap, ret);
			if (++failed >= MAX_FAILURES_IN_A_ROW)
				return 0;
			continue;
		}
		failed = 0;
		ret = output_frame(cap, cap->frame, app_now_ns());
		av_frame_unref(cap->frame);
		if (ret != 0)
			return ret;
	}
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* Write --stats-json; -1 if it cannot be written (said). */
static int write_stats(struct capture *cap, double wall_s, uint64_t cpu_main_ns, uint64_t cpu_proc_ns)
{
	const struct options *o = cap->opt;
	FILE *f = fopen(o->stats_json, "w");
	if (!f) {
		app_complain("cannot write --stats-json '%s': %s", o->stats_json, strerror(errno));
		return -1;
	}
	struct fr_ring_stats rs = {0};
	if (cap->ring)
		fr_ring_get_stats(cap->ring, &rs);
	const struct counters *n = &cap->n;
	uint64_t frames = n->written ? n->written : 1;
	uint64_t inner = n->cpu_decode_ns + n->cpu_convert_ns;
	uint64_t other = cpu_main_ns > inner ? cpu_main_ns - inner : 0;
	fputs("{\n  \"input\": ", f);
	json_string(f, o->input);
	fputs(",\n  \"ring\": ", f);
	json_string(f, o->ring_name);
	fprintf(f, ",\n  \"format\": \"%s\",\n  \"width\": %u,\n  \"height\": %u,\n",
		fr_frame_format_name(o->fourcc), cap->conv.out_w, cap->conv.out_h);
	fprintf(f, "  \"conversion\": \"%s\",\n", !cap->conv_ready ? "none" : cap->conv.copy ? "copy" : "swscale");
	/* rotation: the turn applied to the last frame, as ffmpeg's filters;
	 * rotation_degrees: what the display matrix asks, applied or not */
	fprintf(f, "  \"autorotate\": %s,\n  \"rotation\": \"%s\",\n  \"rotation_degrees\": %d,\n",
		o->autorotate ? "true" : "false", orient_name(cap->conv.orient), cap->rotation_degrees);
	int threading = cap->dec ? cap->dec->active_thread_type : 0;
	fprintf(f, "  \"decoder_threading\": \"%s\",\n  \"decoder_threads\": %d,\n"
		   "  \"conversion_threads\": %d,\n",
		threading & FF_THREAD_FRAME ? "frame" : threading & FF_THREAD_SLICE ? "slice" : "none",
		cap->dec ? cap->dec->thread_count : 0, cap->conv.sws_threads);
	fprintf(f, "  \"live\": %s,\n  \"realtime\": %s,\n  \"on_full\": \"%s\",\n",
		cap->live ? "true" : "false", cap->pace ? "true" : "false",
		cap->policy == FR_RING_FULL_DROP ? "drop" : "block");
	fprintf(f, "  \"frames_produced\": %" PRIu64 ",\n  \"frames_written\": %" PRIu64 ",\n"
		   "  \"frames_dropped\": %" PRIu64 ",\n  \"frames_unread\": %" PRIu64 ",\n",
		n->produced, n->written, n->dropped, cap->frames_unread);
	fprintf(f, "  \"decode_errors\": %" PRIu64 ",\n  \"decode_failures\": %" PRIu64 ",\n"
		   "  \"corrupt_frames\": %" PRIu64 ",\n",
		decode_errors(cap), n->decode_failures, n->corrupt_frames);
	fprintf(f, "  \"skipped_before_start\": %" PRIu64 ",\n  \"loops\": %" PRIu64 ",\n"
		   "  \"discontinuities\": %" PRIu64 ",\n  \"format_changes\": %" PRIu64 ",\n"
		   "  \"ring_replacements\": %" PRIu64 ",\n",
		n->skipped_before_start, n->loops, n->discontinuities, n->format_changes, n->ring_replacements);
	fprintf(f, "  \"wall_s\": %.6f,\n  \"fps\": %.3f,\n", wall_s,
		wall_s > 0 ? (double)n->written / wall_s : 0.0);
	fprintf(f, "  \"cpu_process_s\": %.6f,\n  \"cpu_main_thread_s\": %.6f,\n"
		   "  \"cpu_demux_s\": %.6f,\n  \"cpu_decode_s\": %.6f,\n  \"cpu_convert_s\": %.6f,\n"
		   "  \"cpu_other_s\": %.6f,\n",
		(double)cpu_proc_ns / 1e9, (double)cpu_main_ns / 1e9, (double)n->cpu_demux_ns / 1e9,
		(double)n->cpu_decode_ns / 1e9, (double)n->cpu_convert_ns / 1e9, (double)other / 1e9);
	/* "other": the main thread's CPU outside decode and conversion calls:
	 * demuxing, ring reserve/commit, pacing and bookkeeping. */
	uint64_t no_demux = other > n->cpu_demux_ns ? other - n->cpu_demux_ns : 0;
	fprintf(f, "  \"cpu_other_per_frame_us\": %.3f,\n  \"cpu_other_no_demux_per_frame_us\": %.3f,\n"
		   "  \"cpu_convert_per_frame_us\": %.3f,\n  \"cpu_process_per_frame_us\": %.3f,\n",
		(double)other / 1e3 / (double)frames, (double)no_demux / 1e3 / (double)frames,
		(double)n->cpu_convert_ns / 1e3 / (double)frames, (double)cpu_proc_ns / 1e3 / (double)frames);
	fprintf(f, "  \"ring_capacity\": %" PRIu64 ",\n  \"ring_records_written\": %" PRIu64 ",\n"
		   "  \"ring_records_dropped\": %" PRIu64 ",\n  \"ring_records_read\": %" PRIu64 ",\n",
		rs.capacity, rs.records_written, rs.records_dropped, rs.records_read);
	fprintf(f, "  \"exit_code\": %d\n}\n", cap->exit_code);
	if (fclose(f) != 0) {
		app_complain("cannot write --stats-json '%s': %s", o->stats_json, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct capture cap = {.opt = &opt, .start_target = -INFINITY};
	AVDictionary *av_opts = NULL;
	int ret;

	app_open_std_fds();

	cap.exit_code = parse_options(argc, argv, &opt);
	av_opts = opt.av_opts; /* open_input/open_decoder consume what they know */
	if (cap.exit_code != EXIT_OK)
		goto end;

	app_install_stop_signals();
	/* Decoder errors are counted by class: frame threads log through their own contexts. */
	fflog_install(opt.quiet ? AV_LOG_FATAL : AV_LOG_WARNING, FFLOG_KEEP_LAST, avcodec_get_class());
	avdevice_register_all();

	fflog_mute(true); /* until the first frame is out: a bad input gets one line from us, not a cascade */
	cap.exit_code = open_input(&cap, &av_opts);
	fflog_reset_counted(); /* probing decodes a few frames: not ours to count */
	if (cap.exit_code != EXIT_OK || !cap.fmt)
		goto end;
	if (cap.live && (opt.loop || opt.start >= 0)) {
		app_complain("--loop and --start apply to files, not to the live source '%s'", opt.input);
		cap.exit_code = EXIT_USAGE;
		goto end;
	}
	if ((cap.exit_code = open_decoder(&cap, &av_opts)) != EXIT_OK)
		goto end;
	/* A frame-threaded decoder already keeps every core busy, and swscale's
	 * slice threads would only take turns with it: on 2 cores, 2 conversion
	 * threads made a file 3-4% slower than 1 (what ffmpeg's scale filter
	 * uses). With slice threads (live sources) conversion time is latency,
	 * so it is split across the cores. */
	int sws_threads = opt.conversion_threads ? (int)opt.conversion_threads
			  : cap.dec->active_thread_type == FF_THREAD_FRAME ? 1 : av_cpu_count();
	ret = conv_init(&cap.conv, opt.fourcc, opt.width, opt.height, opt.stretch, sws_threads);
	if (ret < 0) {
		app_complain("unsupported output format");
		cap.exit_code = EXIT_FORMAT;
		goto end;
	}
	if ((cap.exit_code = open_ring(&cap)) != EXIT_OK)
		goto end;
	if (opt.start > 0) {
		cap.start_target = opt.start;
		if (cap.fmt->start_time != AV_NOPTS_VALUE)
			cap.start_target += (double)cap.fmt->start_time / AV_TIME_BASE;
		if ((ret = seek_start(&cap)) < 0) {
			app_complain("cannot seek to %.3f s in '%s': %s", opt.start, opt.input, av_err2str(ret));
			cap.exit_code = EXIT_BAD_INPUT;
			goto end;
		}
	}

	cap.t_start_ns = app_now_ns();
	cap.cpu_start_ns = thread_cpu_ns();
	bool produced_this_pass = false;
	ret = 0;
	/* The main loop: read a packet, decode it, put its frames into the ring. */
	while (!app_stop_requested && ret == 0) {
		uint64_t c0 = thread_cpu_ns();
		int rd = av_read_frame(cap.fmt, cap.pkt);
		cap.n.cpu_demux_ns += thread_cpu_ns() - c0;
		if (rd == AVERROR(EAGAIN)) { /* a non-blocking device with nothing yet */
			struct timespec nap = {0, 1000000};
			nanosleep(&nap, NULL);
			continue;
		}
		if (rd == AVERROR_EXIT) /* interrupted by a stop signal */
			break;
		if (rd < 0) {
			if (rd != AVERROR_EOF && !opt.quiet)
				app_complain("reading '%s' failed (%s): treating it as the end", opt.input,
					 av_err2str(rd));
			uint64_t before = cap.n.produced;
			ret = decode_packet(&cap, NULL); /* drain the decoder */
			produced_this_pass |= cap.n.produced != before;
			if (ret != 0 || !opt.loop || !produced_this_pass || app_stop_requested)
				break;
			if ((rd = seek_start(&cap)) < 0) {
				app_complain("cannot rewind '%s' for --loop: %s", opt.input, av_err2str(rd));
				cap.exit_code = EXIT_RUNTIME;
				break;
			}
			cap.n.loops++;
			produced_this_pass = false;
			continue;
		}
		if (cap.pkt->stream_index == cap.st->index) {
			uint64_t before = cap.n.produced;
			ret = decode_packet(&cap, cap.pkt);
			produced_this_pass |= cap.n.produced != before;
		}
		av_packet_unref(cap.pkt);
	}
	if (cap.exit_code == EXIT_OK && !cap.have_first && !app_stop_requested) {
		if (cap.n.skipped_before_start || opt.start > 0)
			app_complain("nothing to play after --start %.3f s in '%s'", opt.start, opt.input);
		else
			app_complain("no video frame could be decoded from '%s' (truncated or corrupt?)%s",
				 opt.input, fflog_detail());
		cap.exit_code = EXIT_BAD_INPUT;
	}

	/* Summary, counters, then close: fr_ring_close() marks end of stream and
	 * removes the ring (a consumer drains what is left from its mapping). */
	double wall_s = (double)(app_now_ns() - cap.t_start_ns) / 1e9;
	uint64_t cpu_main = thread_cpu_ns() - cap.cpu_start_ns;
	uint64_t cpu_proc = process_cpu_ns();
	int eos = end_stream(&cap);
	if (eos < 0 && cap.exit_code == EXIT_OK)
		app_complain("cannot mark end of stream: %s", fr_ring_strerror(eos));
	if (cap.exit_code == EXIT_OK)
		wait_drained(&cap);
	if (!opt.quiet && cap.have_first) {
		progress(&cap, true);
		app_progress_end();
		fprintf(stderr,
			"framering-capture: %" PRIu64 " frames written to ring '%s' (%ux%u %s%s%s), %" PRIu64
			" dropped, %" PRIu64 " decode errors, %" PRIu64 " loops, %" PRIu64
			" ring replacements, in %.2f s (%.1f fps)%s",
			cap.n.written, opt.ring_name, cap.conv.out_w, cap.conv.out_h,
			fr_frame_format_name(opt.fourcc), cap.conv.orient ? ", autorotated: " : "",
			cap.conv.orient ? orient_name(cap.conv.orient) : "", cap.n.dropped,
			decode_errors(&cap), cap.n.loops, cap.n.ring_replacements, wall_s,
			wall_s > 0 ? (double)cap.n.written / wall_s : 0.0,
			app_stop_requested ? ", stopped by signal"
			: cap.stopped_by_consumer ? ", stopped: the consumer left" : "");
		if (cap.drain_end)
			fprintf(stderr, "; the consumer %s with %" PRIu64 " frame%s unread", cap.drain_end,
				cap.frames_unread, cap.frames_unread == 1 ? "" : "s");
		fputc('\n', stderr);
	}
	if (opt.stats_json && write_stats(&cap, wall_s, cpu_main, cpu_proc) < 0 && cap.exit_code == EXIT_OK)
		cap.exit_code = EXIT_RUNTIME; /* an output that cannot be written, as framering-view's */

end:
	if (cap.ring) {
		const char *name = opt.ring_name;
		end_stream(&cap); /* a failure before the loop: consumers learn why (no-op if marked) */
		app_interrupt_ring(NULL); /* before the handler could see a freed ring (grow_ring registers it) */
		int rc = fr_ring_close(&cap.ring);
		/* Detaching happens whatever failed (end of stream marked, the name
		 * removed if it was still ours): worth a warning, not a failure; and
		 * after a failure its cause (e.g. -EFAULT) was already reported once. */
		if (rc < 0 && cap.exit_code == EXIT_OK)
			app_complain("warning: closing ring '%s': %s (the ring was closed anyway)", name,
				     fr_ring_strerror(rc));
	}
	conv_free(&cap.conv);
	av_frame_free(&cap.frame);
	av_packet_free(&cap.pkt);
	avcodec_free_context(&cap.dec);
	avformat_close_input(&cap.fmt);
	av_dict_free(&av_opts);
	return cap.exit_code;
}
