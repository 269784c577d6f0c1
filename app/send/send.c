/* send.c - framering-send: read a ring, encode with FFmpeg and write a file or a network stream.
 *
 * The other direction of framering-capture. One loop in main(): take the next
 * frame in place (fr_frame_peek), hand it to the encoder where it lies or convert
 * it into the encoder's frame (output.c), encode, write, and release it (before
 * encoding when it was converted or copied). The output opens on the first frame (the
 * encoder takes its size and format); end of stream, Ctrl-C and a dead producer
 * all finalize it (trailer, index) and the exit status says which.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "apputil.h"
#include "capture_meta.h"
#include "consumer_exit.h"
#include "fflog.h"
#include "frame.h"
#include "output.h"
#include "ring.h"

#define PEEK_SLICE_NS 100000000ll   /* a peek waits this long before the loop looks around */
#define PROGRESS_INTERVAL_NS 500000000ull
#define STOP_GRACE_NS 3000000000ull /* after Ctrl-C, how long finishing a network write may block */
#define RECONNECT_EVERY_NS 1000000000ull

enum timestamps { TS_AUTO, TS_PTS, TS_CAPTURE };

struct options {
	const char *ring_name;
	double wait_s;
	bool wait_forever;
	bool latest;
	const char *output;
	const char *format;
	const char *codec;
	const char *pix_fmt;
	int64_t bit_rate;
	int gop;
	unsigned width, height;
	bool restart_on_change;
	enum timestamps ts;
	bool low_latency;
	bool reconnect;
	enum send_zero_copy zero_copy;
	uint64_t max_frames;
	bool quiet;
	const char *stats_json;
	AVDictionary *av_opts;
};

static void usage(FILE *out)
{
	fputs("usage: framering-send [OPTIONS] OUTPUT\n"
	      "Read frames from a framering ring, encode them with FFmpeg and write them to\n"
	      "OUTPUT: a file (mp4, mkv, ts, ...: the format comes from the name, or -f) or a\n"
	      "URL (srt://, udp://, tcp:// and rtp:// send MPEG-TS; rtsp:// pushes; rtmp://\n"
	      "sends FLV). The other direction of framering-capture.\n"
	      "\n"
	      "  -r, --ring NAME        ring name (default \"framering\")\n"
	      "  -w, --wait SEC         wait up to SEC seconds for the ring (default: forever)\n"
	      "      --every            read every frame, in order; the producer waits for us\n"
	      "                         (default: recording)\n"
	      "      --latest           read as a live consumer: the newest frame, skipping older\n"
	      "                         ones, never slowing the producer\n"
	      "  -c, -c:v, --codec ENC  encoder (default libx264, else any H.264 encoder); any of\n"
	      "                         `ffmpeg -encoders`, e.g. ffv1, libx265, mpeg4, mjpeg\n"
	      "  -p, --pix-fmt FMT      the encoder's pixel format (default: the ring's when the\n"
	      "                         encoder takes it, else yuv420p for lossy encoders, else\n"
	      "                         the one that loses least)\n"
	      "  -b, -b:v, --bitrate R  target bitrate, e.g. 4M, 800k\n"
	      "      --crf N            constant quality (encoders with a crf option: libx264 ...)\n"
	      "      --preset P         encoder preset (libx264: ultrafast ... veryslow)\n"
	      "  -g, --gop N            frames from one key frame to the next\n"
	      "  -f, --format FMT       output format (`ffmpeg -muxers`): mp4, matroska, mpegts, ...\n"
	      "  -o, --option KEY=VALUE encoder, muxer or protocol option, repeatable: -o qp=0,\n"
	      "                         -o movflags=+frag_keyframe, -o latency=20000 (srt), ...\n"
	      "                         An option none of them knows is an error.\n"
	      "  -s, --size WxH         output size (default: the first frame's)\n"
	      "      --on-change scale|restart\n"
	      "                         when the ring's size or format changes: scale to the\n"
	      "                         first size (default), or restart the encoder in the same\n"
	      "                         stream (formats with in-band headers only: mpegts)\n"
	      "      --timestamps auto|pts|capture\n"
	      "                         frame times from the header's pts and time base, or from\n"
	      "                         its capture time; auto (default): capture time for a live\n"
	      "                         source read with --latest, else pts (VFR and pauses kept)\n"
	      "      --low-latency      live streaming: no B-frames, zero-latency tuning (x264),\n"
	      "                         one-second GOP, every packet flushed at once, MPEG-TS\n"
	      "                         PES lengths given (the receiver need not wait for the\n"
	      "                         next frame)\n"
	      "      --reconnect        a network receiver that goes away is waited for again\n"
	      "                         (the output is reopened, from a key frame)\n"
	      "      --zero-copy auto|on|off\n"
	      "                         a frame already in the encoder's format and size goes\n"
	      "                         to it where it lies in the ring, no copy, when the\n"
	      "                         encoder lets go of it at once (libx264 copies it); auto\n"
	      "                         (default): after the first 8 frames (copies) showed that\n"
	      "                         it does; on: from the first frame; off: always a copy.\n"
	      "                         An encoder that keeps a frame is restarted in the same\n"
	      "                         stream and gets copies\n"
	      "  -n, --frames N         stop after N frames\n"
	      "  -q, --quiet            no progress line, no summary\n"
	      "      --stats-json FILE  write counters and times to FILE at the end\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "Examples:\n"
	      "  framering-send -r cam0 rec.mp4                         record every frame (H.264)\n"
	      "  framering-send -r cam0 -c:v ffv1 rec.mkv               lossless\n"
	      "  framering-send -r cam0 -o qp=0 -p yuv420p rec.mkv      lossless H.264 of an i420 ring\n"
	      "  framering-send -r cam0 --latest --low-latency 'srt://0.0.0.0:9000?mode=listener'\n"
	      "      ... and on another machine: framering-capture -r cam0 srt://HOST:9000\n"
	      "  framering-send -r cam0 --low-latency udp://239.0.0.1:1234\n"
	      "  framering-send -r cam0 --low-latency rtsp://server:8554/cam0\n"
	      "\n"
	      "The output opens when the first frame comes; end of stream, Ctrl-C/SIGTERM and a\n"
	      "producer that dies all finish it (an mp4 gets its index). Killed with SIGKILL,\n"
	      "an mp4 cannot be finished: record to mkv or ts, or pass\n"
	      "-o movflags=+frag_keyframe+empty_moov, to keep what was written. A failure\n"
	      "before the first packet leaves no file. On a TTY a progress line shows frames,\n"
	      "fps, bitrate, frames in the encoder and lag behind the ring; a summary follows.\n"
	      "\n" CONSUMER_EXIT_HELP
	      "  8  encoder: unknown, or it refused the stream or its settings\n"
	      "  9  output cannot be opened: unknown format, unreachable URL, unwritable file\n"
	      " 10  output failed while running: the network receiver went away (without\n"
	      "     --reconnect), or the file cannot be written (disk full)\n",
	      out);
}

/* "4M", "800k", "2500000" -> bits per second; -1 if bad. */
static int64_t parse_rate(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v > 0))
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1e6, end++;
	else if (*end == 'G' || *end == 'g')
		v *= 1e9, end++;
	if (*end || v > 1e12 || v < 1) /* below 1 bit/s it would be 0: the encoder's default, silently */
		return -1;
	return (int64_t)v;
}

static int set_opt(struct options *o, const char *key, const char *value)
{
	if (av_dict_set(&o->av_opts, key, value, 0) < 0) {
		app_complain("out of memory");
		return CONSUMER_EXIT_OTHER;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_EVERY = 256, OPT_LATEST, OPT_CRF, OPT_PRESET, OPT_ON_CHANGE, OPT_TS, OPT_LOW_LATENCY,
	       OPT_RECONNECT, OPT_STATS, OPT_ZERO_COPY };
	static const struct option longopts[] = {
		{"ring", required_argument, NULL, 'r'},
		{"wait", required_argument, NULL, 'w'},
		{"every", no_argument, NULL, OPT_EVERY},
		{"latest", no_argument, NULL, OPT_LATEST},
		{"codec", required_argument, NULL, 'c'},
		{"pix-fmt", required_argument, NULL, 'p'},
		{"bitrate", required_argument, NULL, 'b'},
		{"crf", required_argument, NULL, OPT_CRF},
		{"preset", required_argument, NULL, OPT_PRESET},
		{"gop", required_argument, NULL, 'g'},
		{"format", required_argument, NULL, 'f'},
		{"option", required_argument, NULL, 'o'},
		{"size", required_argument, NULL, 's'},
		{"on-change", required_argument, NULL, OPT_ON_CHANGE},
		{"timestamps", required_argument, NULL, OPT_TS},
		{"low-latency", no_argument, NULL, OPT_LOW_LATENCY},
		{"reconnect", no_argument, NULL, OPT_RECONNECT},
		{"zero-copy", required_argument, NULL, OPT_ZERO_COPY},
		{"frames", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"stats-json", required_argument, NULL, OPT_STATS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.ring_name = "framering", .wait_forever = true, .gop = -1};
	/* ffmpeg's spellings -c:v and -b:v are ours too */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-c:v") || !strcmp(argv[i], "-vcodec"))
			argv[i] = "--codec";
		else if (!strcmp(argv[i], "-b:v"))
			argv[i] = "--bitrate";
	}
	int c, ret;
	uint64_t u;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:w:c:p:b:g:f:o:s:n:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->ring_name = optarg;
			break;
		case 'w':
			if (app_parse_seconds(optarg, &o->wait_s) < 0) {
				app_complain("bad --wait '%s': expected seconds", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			o->wait_forever = false;
			break;
		case OPT_EVERY:
			o->latest = false;
			break;
		case OPT_LATEST:
			o->latest = true;
			break;
		case 'c':
			o->codec = optarg;
			break;
		case 'p':
			o->pix_fmt = optarg;
			break;
		case 'b':
			if ((o->bit_rate = parse_rate(optarg)) < 0) {
				app_complain("bad --bitrate '%s': expected bits per second, e.g. 4M or 800k", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case OPT_CRF: {
			char *end;
			double v = strtod(optarg, &end);
			if (*end || end == optarg || !(v >= 0 && v <= 63)) { /* NaN too */
				app_complain("bad --crf '%s': expected 0..63", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			if ((ret = set_opt(o, "crf", optarg)) != 0)
				return ret;
			break;
		}
		case OPT_PRESET:
			if ((ret = set_opt(o, "preset", optarg)) != 0)
				return ret;
			break;
		case 'g':
			if (app_parse_u64(optarg, &u) < 0 || u < 1 || u > 100000) {
				app_complain("bad --gop '%s': expected 1..100000 frames", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			o->gop = (int)u;
			break;
		case 'f':
			o->format = optarg;
			break;
		case 'o': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				app_complain("bad -o '%s': expected KEY=VALUE", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			char *key = av_strndup(optarg, (size_t)(eq - optarg));
			ret = key ? set_opt(o, key, eq + 1) : CONSUMER_EXIT_OTHER;
			av_free(key);
			if (ret)
				return ret;
			break;
		}
		case 's':
			if (app_parse_size(optarg, &o->width, &o->height) < 0) {
				app_complain("bad --size '%s': expected WxH (1..16384 each)", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case OPT_ON_CHANGE:
			if (!strcmp(optarg, "scale") || !strcmp(optarg, "restart")) {
				o->restart_on_change = optarg[0] == 'r';
			} else {
				app_complain("bad --on-change '%s': expected scale or restart", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case OPT_TS:
			if (!strcmp(optarg, "auto"))
				o->ts = TS_AUTO;
			else if (!strcmp(optarg, "pts"))
				o->ts = TS_PTS;
			else if (!strcmp(optarg, "capture"))
				o->ts = TS_CAPTURE;
			else {
				app_complain("bad --timestamps '%s': expected auto, pts or capture", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case OPT_LOW_LATENCY:
			o->low_latency = true;
			break;
		case OPT_RECONNECT:
			o->reconnect = true;
			break;
		case OPT_ZERO_COPY:
			if (!strcmp(optarg, "auto"))
				o->zero_copy = SEND_ZC_AUTO;
			else if (!strcmp(optarg, "on"))
				o->zero_copy = SEND_ZC_ON;
			else if (!strcmp(optarg, "off"))
				o->zero_copy = SEND_ZC_OFF;
			else {
				app_complain("bad --zero-copy '%s': expected auto, on or off", optarg);
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case 'n':
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				app_complain("bad --frames '%s': expected a positive integer", optarg);
				return CONSUMER_EXIT_USAGE;
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
			exit(CONSUMER_EXIT_DONE);
		case ':':
			app_complain("option '%s' needs a value (see --help)", argv[optind - 1]);
			return CONSUMER_EXIT_USAGE;
		default:
			app_complain_unknown_option(argv);
			return CONSUMER_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		app_complain("no OUTPUT given: a file name or a URL (see --help)");
		return CONSUMER_EXIT_USAGE;
	}
	o->output = argv[optind++];
	if (optind < argc) {
		app_complain("more than one OUTPUT given ('%s'); see --help", argv[optind]);
		return CONSUMER_EXIT_USAGE;
	}
	if (o->reconnect && !send_is_network(o->output)) {
		app_complain("--reconnect is for network outputs (a URL), not the file '%s'", o->output);
		return CONSUMER_EXIT_USAGE;
	}
	return CONSUMER_EXIT_DONE;
}

/* The output format: -f, else from the URL's scheme (MPEG-TS for the stream
 * protocols), else from the file name. NULL after a complaint. */
static const AVOutputFormat *pick_format(const struct options *o)
{
	static const struct { const char *scheme, *format; } by_scheme[] = {
		{"srt://", "mpegts"}, {"udp://", "mpegts"}, {"tcp://", "mpegts"}, {"rtp://", "rtp_mpegts"},
		{"rtsp://", "rtsp"}, {"rtmp://", "flv"}, {"rtmps://", "flv"}, {"pipe:", "mpegts"},
	};
	const AVOutputFormat *f = NULL;
	if (o->format) {
		f = av_guess_format(o->format, NULL, NULL);
		if (!f)
			app_complain("unknown output format '%s' (see `ffmpeg -muxers`)", o->format);
		return f;
	}
	for (size_t i = 0; i < sizeof(by_scheme) / sizeof(by_scheme[0]); i++)
		if (!strncmp(o->output, by_scheme[i].scheme, strlen(by_scheme[i].scheme)))
			return av_guess_format(by_scheme[i].format, NULL, NULL);
	f = av_guess_format(NULL, o->output, NULL);
	if (!f)
		app_complain("cannot tell the output format from the name '%s': give -f (see `ffmpeg -muxers`)",
			     o->output);
	return f;
}

static const AVCodec *pick_codec(const struct options *o)
{
	const AVCodec *c;
	if (o->codec) {
		c = avcodec_find_encoder_by_name(o->codec);
		if (!c) {
			const AVCodecDescriptor *d = avcodec_descriptor_get_by_name(o->codec);
			c = d ? avcodec_find_encoder(d->id) : NULL;
		}
		if (!c)
			app_complain("unknown encoder '%s' (see `ffmpeg -encoders`)", o->codec);
		else if (c->type != AVMEDIA_TYPE_VIDEO) {
			app_complain("'%s' is not a video encoder", o->codec);
			c = NULL;
		}
		return c;
	}
	c = avcodec_find_encoder_by_name("libx264");
	if (!c)
		c = avcodec_find_encoder(AV_CODEC_ID_H264);
	if (!c)
		app_complain("no H.264 encoder in this FFmpeg: choose one with -c:v (see `ffmpeg -encoders`)");
	return c;
}

/* libx264 prints its own complaint about an unknown preset or tune on stderr
 * (before FFmpeg's log callback is in place): check them against x264's
 * lists (x264.h x264_preset_names, x264_tune_names) first. 0 or an exit status. */
static int check_x264_names(const struct options *o, const AVCodec *c)
{
	static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
					      "slow", "slower", "veryslow", "placebo", NULL};
	static const char *const tunes[] = {"film", "animation", "grain", "stillimage", "psnr", "ssim",
					    "fastdecode", "zerolatency", NULL};
	if (strcmp(c->name, "libx264") && strcmp(c->name, "libx264rgb"))
		return 0;
	const char *key[] = {"preset", "tune"};
	const char *const *list[] = {presets, tunes};
	for (int k = 0; k < 2; k++) {
		const AVDictionaryEntry *e = av_dict_get(o->av_opts, key[k], NULL, 0);
		if (!e)
			continue;
		/* a tune may be several joined by ',' or '+' */
		char *copy = av_strdup(e->value), *save = NULL;
		bool ok = copy && *copy;
		for (char *t = copy ? strtok_r(copy, ",+", &save) : NULL; t && ok; t = strtok_r(NULL, ",+", &save)) {
			bool found = false;
			for (const char *const *p = list[k]; *p; p++)
				found |= !strcmp(*p, t);
			ok = found && (k == 1 || !strpbrk(e->value, ",+"));
		}
		av_free(copy);
		if (!ok) {
			app_complain("unknown %s %s '%s' (x264 knows: %s)", c->name, key[k], e->value,
				     k ? "film animation grain stillimage psnr ssim fastdecode zerolatency"
				       : "ultrafast superfast veryfast faster fast medium slow slower veryslow placebo");
			return SEND_EXIT_ENCODER;
		}
	}
	return 0;
}

/* Whether OUTPUT (when a file) and --stats-json may be written: neither may be
 * a ring's segment (app_output_ok), else the one line for it. Checked before the
 * wait for the ring and again before the output is opened, as the segment may
 * have appeared (under a link) meanwhile. */
static bool outputs_ok(const struct options *o)
{
	const char *path = strncmp(o->output, "file:", 5) ? o->output : o->output + 5;
	bool file = !send_is_network(o->output) && strncmp(o->output, "pipe:", 5) && strcmp(o->output, "-");
	return (!file || app_output_ok("output", path, o->ring_name)) &&
	       (!o->stats_json || app_output_ok("--stats-json", o->stats_json, o->ring_name));
}

/* ------------------------------------------------------------ the run */

struct run {
	const struct options *opt;
	struct send_out_cfg cfg;
	struct send_out out;
	bool out_open;
	fr_ring_t *ring;
	bool opened;    /* the output was open at some time: something was sent */
	bool live_ring;
	uint64_t frames, skipped, invalid, reconnects, replacements;
	uint64_t next_connect_ns;
	uint64_t t_first, t_last, t_progress;
	double lag_ms;
	const char *end;
	int code;
	/* totals of the outputs closed before (reconnects) */
	uint64_t packets, bytes;
};

/* FFmpeg's blocking calls (connecting, listening, writing) ask this. A
 * stop ends a connect or listen at once; a write in progress gets a grace
 * period, so that the trailer still reaches a receiver that reads. */
static bool opening;
static uint64_t stop_seen_ns;
/* While opening (a listener waiting for its caller can wait long), the
 * producer is looked at now and then: one that died ends the wait. */
static const fr_ring_t *opening_ring;
static bool producer_gone;
static uint64_t producer_checked_ns;
#define PRODUCER_CHECK_NS 200000000ull

static int interrupt_cb(void *opaque)
{
	(void)opaque;
	if (opening && opening_ring) {
		uint64_t now = app_now_ns();
		if (now - producer_checked_ns > PRODUCER_CHECK_NS) {
			producer_checked_ns = now;
			struct fr_ring_stats st;
			fr_ring_get_stats(opening_ring, &st);
			producer_gone = !st.producer_alive && !st.eos;
		}
		if (producer_gone)
			return 1;
	}
	if (!app_stop_requested)
		return 0;
	if (opening)
		return 1;
	uint64_t now = app_now_ns();
	if (!stop_seen_ns)
		stop_seen_ns = now;
	return now - stop_seen_ns > STOP_GRACE_NS;
}

/* Open ring NAME, waiting as --wait says. 0, -1 on Ctrl-C, or an exit status. */
static int open_ring(struct run *r)
{
	const struct options *o = r->opt;
	struct fr_ring_attach_opts ao = {o->latest ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY,
				      o->wait_forever ? -1 : o->wait_s > 0 ? (int64_t)(o->wait_s * 1e9) : 0};
	int ret = app_attach(&r->ring, o->ring_name, &ao);
	if (ret == 0)
		return 0;
	if (ret == -EINTR && app_stop_requested)
		return -1;
	return app_complain_attach_failed(o->ring_name, o->wait_s, ret);
}

static void close_output(struct run *r)
{
	if (!r->out_open)
		return;
	r->packets += r->out.packets;
	r->bytes += r->out.bytes;
	send_out_close(&r->out);
	r->out_open = false;
}

/* The output failed while writing (SEND_EXIT_PEER): under --reconnect, close it
 * and wait for the receiver again (0); else the status stands. */
static int output_failed(struct run *r, int code)
{
	if (code != SEND_EXIT_PEER || !r->opt->reconnect)
		return code;
	close_output(r);
	r->reconnects++;
	r->next_connect_ns = app_now_ns() + RECONNECT_EVERY_NS;
	if (!r->opt->quiet)
		app_complain("waiting for '%s' again (--reconnect)", r->opt->output);
	return 0;
}

/* What framering-capture says of its stream (capture_meta.h): live or not, the
 * frame rate. Read when a frame is there: the producer writes it after the ring
 * appears, so a consumer that attached at once may have found none yet. */
static void read_meta(struct run *r)
{
	struct capture_meta m;
	if (fr_ring_get_meta(r->ring, &m, sizeof(m)) >= (int)sizeof(m) && m.magic == CAPTURE_META_MAGIC &&
	    m.version >= 2) {
		r->live_ring = m.flags & CAPTURE_META_LIVE;
		if (m.fps_num > 0 && m.fps_den > 0 && !r->cfg.frame_rate.num)
			r->cfg.frame_rate = (AVRational){m.fps_num, m.fps_den};
	}
}

/* One frame, still held in the ring: open the output if it is not, then
 * convert the frame into *OUT (NULL: this frame is not sent). 0 to go on,
 * else an exit status (after its line). */
static int take_frame(struct run *r, const struct fr_frame_header *h, const uint8_t *rec, AVFrame **out)
{
	const struct options *o = r->opt;
	int ret;
	if (!r->out_open) {
		if (r->reconnects && app_now_ns() < r->next_connect_ns)
			return 0; /* waiting for the receiver again: this frame is not sent */
		if (!outputs_ok(o)) {
			r->end = "bad output";
			return CONSUMER_EXIT_USAGE;
		}
		read_meta(r);
		r->cfg.quiet_open = r->reconnects > 0; /* retried every second: said once already */
		r->cfg.capture_clock = o->ts == TS_CAPTURE || (o->ts == TS_AUTO && r->live_ring && o->latest);
		opening = true;
		opening_ring = r->ring;
		producer_gone = false;
		fflog_mute(true);
		if (send_is_network(o->output) && !o->quiet)
			app_progress("opening '%s' ...", o->output);
		ret = send_out_open(&r->out, &r->cfg, h);
		opening = false;
		fflog_mute(false);
		opening_ring = NULL;
		if (ret != 0) {
			send_out_close(&r->out);
			if (ret < 0 && producer_gone) {
				app_complain("the producer of ring '%s' died while '%s' was being opened", o->ring_name,
					     o->output);
				r->end = "producer died";
				return CONSUMER_EXIT_PRODUCER_DIED;
			}
			if (ret < 0)
				return -1; /* stopped while connecting */
			if (ret == SEND_EXIT_OUTPUT && o->reconnect && r->reconnects) {
				r->next_connect_ns = app_now_ns() + RECONNECT_EVERY_NS;
				return 0;
			}
			return ret;
		}
		r->out_open = r->opened = true;
		if (r->reconnects && !o->quiet)
			app_complain("'%s' is back: sending again", o->output);
	}
	return output_failed(r, send_out_convert(&r->out, h, rec, out));
}

static void progress(struct run *r, bool force)
{
	uint64_t now = app_now_ns();
	if (r->opt->quiet || (!force && now - r->t_progress < PROGRESS_INTERVAL_NS))
		return;
	r->t_progress = now;
	double el = (double)(now - r->t_first) / 1e9;
	uint64_t bytes = r->bytes + (r->out_open ? r->out.bytes : 0);
	app_progress("frames %" PRIu64 "  %.1f fps  %.0f kbit/s  encoder queue %" PRIu64
		     "  lag %.0f ms  skipped %" PRIu64,
		     r->frames, el > 0 ? (double)r->frames / el : 0.0, el > 0 ? (double)bytes * 8 / el / 1e3 : 0.0,
		     r->out_open ? send_out_queue(&r->out) : 0, r->lag_ms, r->skipped);
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
static int write_stats(struct run *r, double wall_s)
{
	const struct options *o = r->opt;
	FILE *f = fopen(o->stats_json, "w");
	if (!f) {
		app_complain("cannot write --stats-json '%s': %s", o->stats_json, strerror(errno));
		return -1;
	}
	struct send_out *out = &r->out;
	fputs("{\n  \"ring\": ", f);
	json_string(f, o->ring_name);
	fputs(",\n  \"output\": ", f);
	json_string(f, o->output);
	fprintf(f, ",\n  \"format\": \"%s\",\n  \"encoder\": \"%s\",\n  \"pix_fmt\": \"%s\",\n",
		r->cfg.ofmt ? r->cfg.ofmt->name : "", r->cfg.codec ? r->cfg.codec->name : "",
		out->out_fmt > AV_PIX_FMT_NONE && av_get_pix_fmt_name(out->out_fmt) ? av_get_pix_fmt_name(out->out_fmt) : "");
	fprintf(f, "  \"width\": %u,\n  \"height\": %u,\n  \"time_base\": \"%d/%d\",\n", out->out_w, out->out_h,
		out->tb.num, out->tb.den);
	fprintf(f, "  \"mode\": \"%s\",\n  \"timestamps\": \"%s\",\n  \"low_latency\": %s,\n",
		o->latest ? "latest" : "every", r->cfg.capture_clock ? "capture" : "pts",
		o->low_latency ? "true" : "false");
	fprintf(f, "  \"frames\": %" PRIu64 ",\n  \"frames_encoded\": %" PRIu64 ",\n  \"packets\": %" PRIu64
		   ",\n  \"bytes\": %" PRIu64 ",\n  \"keyframes\": %" PRIu64 ",\n",
		r->frames, out->frames_in, r->packets, r->bytes, out->keyframes);
	fprintf(f, "  \"skipped\": %" PRIu64 ",\n  \"invalid_records\": %" PRIu64 ",\n  \"encoder_restarts\": %" PRIu64
		   ",\n  \"scaled_changes\": %" PRIu64 ",\n  \"reconnects\": %" PRIu64 ",\n  \"ring_replacements\": %" PRIu64 ",\n",
		r->skipped, r->invalid, out->restarts, out->scaled_changes, r->reconnects, r->replacements);
	/* how frames went into the encoder: the last one's path, then counts of each */
	static const char *const zc_names[] = {"auto", "on", "off"};
	int threading = out->enc ? out->enc->active_thread_type : 0;
	fprintf(f, "  \"input_path\": \"%s\",\n  \"zero_copy\": \"%s\",\n  \"frames_zero_copy\": %" PRIu64
		   ",\n  \"frames_copied\": %" PRIu64 ",\n  \"frames_converted\": %" PRIu64
		   ",\n  \"zero_copy_fallbacks\": %" PRIu64 ",\n  \"encoder_threading\": \"%s\",\n",
		send_input_path_name(out->path), zc_names[out->zc], out->frames_zero_copy, out->frames_copied,
		out->frames_converted, out->zc_fallbacks,
		threading & FF_THREAD_FRAME ? "frame" : threading & FF_THREAD_SLICE ? "slice" : "none");
	double p50 = app_percentile(out->lat_ms, out->lat_n, 50), p99 = app_percentile(out->lat_ms, out->lat_n, 99);
	fprintf(f, "  \"wall_s\": %.6f,\n  \"fps\": %.3f,\n  \"bitrate_bps\": %.0f,\n", wall_s,
		wall_s > 0 ? (double)r->frames / wall_s : 0.0, wall_s > 0 ? (double)r->bytes * 8 / wall_s : 0.0);
	/* capture time in the header -> packet written: what this stage adds */
	fprintf(f, "  \"latency_ms_p50\": %.3f,\n  \"latency_ms_p99\": %.3f,\n  \"latency_samples\": %zu,\n", p50,
		p99, out->lat_n);
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	fprintf(f, "  \"cpu_process_s\": %.6f,\n  \"cpu_convert_s\": %.6f,\n  \"cpu_encode_s\": %.6f,\n"
		   "  \"cpu_mux_s\": %.6f,\n",
		(double)ts.tv_sec + (double)ts.tv_nsec / 1e9, (double)out->cpu_convert_ns / 1e9,
		(double)out->cpu_encode_ns / 1e9, (double)out->cpu_mux_ns / 1e9);
	fputs("  \"end\": ", f);
	json_string(f, r->end);
	fprintf(f, ",\n  \"exit_code\": %d\n}\n", r->code);
	if (fclose(f) != 0) {
		app_complain("cannot write --stats-json '%s': %s", o->stats_json, strerror(errno));
		return -1;
	}
	return 0;
}

/* Give the frame's record back to the producer, which may write over it at
 * once: never while a frame over it is in the encoder's hands. */
static int release_record(struct run *r)
{
	if (atomic_load(&r->out.ring_refs) != 0) {
		app_complain("ring '%s': releasing a record the encoder still reads (a bug)", r->opt->ring_name);
		abort();
	}
	return fr_ring_release(r->ring);
}

/* Read the ring until it ends; every frame goes to take_frame() and the encoder. */
static void run_loop(struct run *r)
{
	const struct options *o = r->opt;
	int ret;
	while (!app_stop_requested) {
		struct fr_frame_header h;
		const uint8_t *rec;
		ret = fr_frame_peek(r->ring, &h, &rec, o->latest, &r->skipped, PEEK_SLICE_NS);
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret == -ECANCELED)
			break;
		if (ret == -ENODATA) {
			r->end = "end of stream";
			return;
		}
		if (ret == -ESTALE) {
			/* The producer replaced the ring (frames outgrew it): follow. */
			app_interrupt_ring(NULL);
			fr_ring_close(&r->ring);
			ret = open_ring(r);
			if (ret != 0) {
				r->code = ret < 0 ? CONSUMER_EXIT_DONE : ret;
				return;
			}
			app_interrupt_ring(r->ring);
			r->replacements++;
			continue;
		}
		if (ret == -ENOMSG) {
			if (!r->invalid++)
				app_complain("ring '%s': skipping a record that is not a valid frame "
					     "(further ones are counted in the summary)", o->ring_name);
			continue;
		}
		if (ret == -EOWNERDEAD) {
			app_complain("the producer of ring '%s' died: finishing '%s'", o->ring_name, o->output);
			r->code = CONSUMER_EXIT_PRODUCER_DIED;
			r->end = "producer died";
			return;
		}
		if (ret == -EREMOTEIO) {
			app_complain_producer_failed(r->ring, o->ring_name);
			r->code = CONSUMER_EXIT_PRODUCER_FAILED;
			r->end = "producer failed";
			return;
		}
		if (consumer_ring_broken(ret)) {
			app_complain("ring '%s' %s", o->ring_name, consumer_read_problem(ret));
			r->code = CONSUMER_EXIT_BAD_RING;
			r->end = "bad ring";
			return;
		}
		if (ret < 0) {
			app_complain("reading ring '%s' failed: %s", o->ring_name, fr_ring_strerror(ret));
			r->code = consumer_exit_for(ret);
			r->end = "ring error";
			return;
		}

		/* A frame converted or copied while the record is held: the record
		 * goes back to the producer before the encoder's work. A frame that
		 * is the record (zero-copy): after it, when the encoder has let go
		 * of it (send_out_encode makes sure it has, whatever happened). */
		AVFrame *f = NULL;
		int code = take_frame(r, &h, rec, &f);
		bool in_ring = f && r->out.path == SEND_PATH_ZERO_COPY;
		if (!in_ring)
			ret = release_record(r);
		if (code == 0 && f)
			code = output_failed(r, send_out_encode(&r->out, &f));
		av_frame_free(&f);
		if (in_ring)
			ret = release_record(r);
		if (code < 0) {
			r->end = r->opened ? "stopped by signal" : "stopped by signal while it was being opened";
			return;
		}
		if (code != 0) {
			r->code = code;
			if (!r->end[0])
				r->end = "failure";
			return;
		}
		if (ret < 0) {
			if (consumer_ring_broken(ret))
				app_complain("ring '%s' %s", o->ring_name, consumer_read_problem(ret));
			else
				app_complain("releasing a frame of ring '%s' failed: %s", o->ring_name,
					     fr_ring_strerror(ret));
			r->code = consumer_exit_for(ret);
			r->end = "ring error";
			return;
		}
		if (!r->out_open)
			continue; /* waiting for a receiver to come back */
		r->frames++;
		r->t_last = app_now_ns();
		if (!r->t_first)
			r->t_first = r->t_last;
		r->lag_ms = h.capture_ns && h.capture_ns < r->t_last ? (double)(r->t_last - h.capture_ns) / 1e6 : 0;
		progress(r, false);
		if (o->max_frames && r->frames >= o->max_frames) {
			r->end = "--frames reached";
			return;
		}
	}
	r->end = "stopped by signal";
}

int main(int argc, char **argv)
{
	struct options opt;
	struct run r = {.opt = &opt, .end = "not started"};

	app_open_std_fds();

	r.code = parse_options(argc, argv, &opt);
	if (r.code != CONSUMER_EXIT_DONE)
		goto end;
	/* Held back until the output is open: a bad setting gets one line from us, quoting the first error. */
	fflog_install(opt.quiet ? AV_LOG_FATAL : AV_LOG_ERROR, FFLOG_KEEP_FIRST, NULL);
	r.cfg = (struct send_out_cfg){.url = opt.output, .pix_fmt = AV_PIX_FMT_NONE, .width = opt.width,
				      .height = opt.height, .bit_rate = opt.bit_rate, .gop = opt.gop,
				      .low_latency = opt.low_latency, .restart_on_change = opt.restart_on_change,
				      .opts = opt.av_opts, .interrupt = interrupt_cb, .zero_copy = opt.zero_copy};
	/* Everything that can be checked without a frame is checked before the ring. */
	if (!(r.cfg.codec = pick_codec(&opt))) {
		r.code = SEND_EXIT_ENCODER;
		goto end;
	}
	if ((r.code = check_x264_names(&opt, r.cfg.codec)) != 0)
		goto end;
	if (opt.pix_fmt && (r.cfg.pix_fmt = av_get_pix_fmt(opt.pix_fmt)) == AV_PIX_FMT_NONE) {
		app_complain("unknown pixel format '%s' (see `ffmpeg -pix_fmts`)", opt.pix_fmt);
		r.code = CONSUMER_EXIT_USAGE;
		goto end;
	}
	if (opt.pix_fmt && r.cfg.codec->pix_fmts) {
		bool ok = false;
		for (const enum AVPixelFormat *p = r.cfg.codec->pix_fmts; *p != AV_PIX_FMT_NONE; p++)
			ok |= *p == r.cfg.pix_fmt;
		if (!ok) {
			app_complain("the %s encoder does not take %s frames", r.cfg.codec->name, opt.pix_fmt);
			r.code = SEND_EXIT_ENCODER;
			goto end;
		}
	}
	if (!(r.cfg.ofmt = pick_format(&opt))) {
		r.code = SEND_EXIT_OUTPUT;
		goto end;
	}
	if (opt.restart_on_change && (r.cfg.ofmt->flags & AVFMT_GLOBALHEADER)) {
		app_complain("--on-change restart needs a format that carries codec headers in the stream "
			     "(mpegts), not %s: use --on-change scale", r.cfg.ofmt->name);
		r.code = CONSUMER_EXIT_USAGE;
		goto end;
	}
	if (avformat_query_codec(r.cfg.ofmt, r.cfg.codec->id, FF_COMPLIANCE_NORMAL) == 0) {
		app_complain("the %s format cannot carry %s video", r.cfg.ofmt->name, r.cfg.codec->name);
		r.code = SEND_EXIT_OUTPUT;
		goto end;
	}
	if (!outputs_ok(&opt)) {
		r.code = CONSUMER_EXIT_USAGE;
		goto end;
	}
	if (!send_is_network(opt.output)) {
		/* A file: its directory must be there and writable now, not after the wait
		 * (FFmpeg's "file:PATH" names the file PATH). */
		const char *path = strncmp(opt.output, "file:", 5) ? opt.output : opt.output + 5;
		char *dir = av_strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
		const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
		if (access(d, W_OK) != 0) {
			app_complain("cannot write '%s': %s", opt.output, strerror(errno));
			av_free(dir);
			r.code = SEND_EXIT_OUTPUT;
			goto end;
		}
		av_free(dir);
	}
	/* SRT in live mode drops what is still unsent when the socket closes:
	 * the last frames of a stream that ends. Linger a moment, as a file
	 * would be flushed (-o linger=0 turns it off). */
	if (!strncmp(opt.output, "srt://", 6) && !av_dict_get(opt.av_opts, "linger", NULL, 0) &&
	    (r.code = set_opt(&opt, "linger", "2")) != 0)
		goto end;
	/* MPEG-TS leaves a video PES's length out by default, so a receiver's
	 * demuxer holds each frame until the next one starts: one frame of
	 * latency (45 ms of 110 at 720p30 in bench-send). Say the length. */
	if (opt.low_latency && !strcmp(r.cfg.ofmt->name, "mpegts") &&
	    !av_dict_get(opt.av_opts, "omit_video_pes_length", NULL, 0) &&
	    (r.code = set_opt(&opt, "omit_video_pes_length", "0")) != 0)
		goto end;
	r.cfg.opts = opt.av_opts;
	avformat_network_init();
	app_install_stop_signals();

	int ret = open_ring(&r);
	if (ret < 0) {
		r.end = "stopped by signal";
		r.code = CONSUMER_EXIT_DONE;
		goto end;
	}
	if (ret != 0) {
		r.code = ret;
		goto end;
	}
	app_interrupt_ring(r.ring);
	r.t_first = app_now_ns();
	r.end = "";
	run_loop(&r);

	/* Finish the output whatever ended the stream: a playable file, a closed stream. */
	if (r.out_open) {
		int fin = send_out_finish(&r.out);
		if (fin && (r.code == CONSUMER_EXIT_DONE || r.code == CONSUMER_EXIT_PRODUCER_DIED))
			r.code = fin;
	}
	if (!opt.quiet && (r.frames || r.code == CONSUMER_EXIT_DONE)) {
		double el = (double)(app_now_ns() - r.t_first) / 1e9;
		progress(&r, true);
		app_progress_end();
		uint64_t bytes = r.bytes + (r.out_open ? r.out.bytes : 0);
		if (!r.out.out_w) /* no frame came: nothing was opened or written */
			fprintf(stderr, "framering-send: no frame from ring '%s': nothing written to '%s'%s%s",
				opt.ring_name, opt.output, r.end[0] ? ", " : "", r.end);
		else if (!r.opened) /* Ctrl-C while connecting: the encoder and format never got a frame */
			fprintf(stderr, "framering-send: nothing written to '%s'%s%s", opt.output,
				r.end[0] ? ", " : "", r.end);
		else
			fprintf(stderr,
				"framering-send: %" PRIu64 " frames from ring '%s' to '%s' (%s %ux%u %s, %s), %" PRIu64
				" bytes, %.1f fps, %.0f kbit/s, %" PRIu64 " skipped%s%s",
				r.frames, opt.ring_name, opt.output, r.cfg.codec->name, r.out.out_w, r.out.out_h,
				av_get_pix_fmt_name(r.out.out_fmt), r.cfg.ofmt->name, bytes,
				el > 0 ? (double)r.frames / el : 0.0, el > 0 ? (double)bytes * 8 / el / 1e3 : 0.0,
				r.skipped, r.end[0] ? ", " : "", r.end);
		if (r.invalid)
			fprintf(stderr, ", %" PRIu64 " invalid record%s skipped", r.invalid, r.invalid == 1 ? "" : "s");
		if (r.reconnects)
			fprintf(stderr, ", %" PRIu64 " reconnect%s", r.reconnects, r.reconnects == 1 ? "" : "s");
		if (r.replacements)
			fprintf(stderr, ", followed %" PRIu64 " ring replacement%s", r.replacements,
				r.replacements == 1 ? "" : "s");
		fputc('\n', stderr);
	}
	if (r.out_open) {
		r.packets += r.out.packets;
		r.bytes += r.out.bytes;
	}
	if (opt.stats_json && write_stats(&r, (double)(app_now_ns() - r.t_first) / 1e9) < 0 &&
	    r.code == CONSUMER_EXIT_DONE)
		r.code = CONSUMER_EXIT_OTHER; /* an output file that cannot be written */
	if (r.out_open) {
		send_out_close(&r.out);
		r.out_open = false;
	}

end:
	app_interrupt_ring(NULL);
	fr_ring_close(&r.ring);
	free(r.out.lat_ms);
	av_dict_free(&opt.av_opts);
	return r.code;
}
