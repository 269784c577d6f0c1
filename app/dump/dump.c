/* dump.c - framering-dump: the C test consumer; reads frames from a ring and dumps pixels and headers.
 *
 * Reads every frame in place (frame_peek), writes its packed planes to --raw
 * (the bytes `ffmpeg -f rawvideo -pix_fmt FMT` gives) and one header line per
 * frame to --headers, then releases it. --slow-ms holds each frame that long to
 * play a slow consumer; --sum reads every byte of every frame into a checksum
 * (a consumer that touches all pixels, for the benchmark).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apputil.h"
#include "frame.h"
#include "ring.h"

enum {
	EXIT_OK = 0,         /* end of stream, or --frames reached, or stopped by a signal */
	EXIT_USAGE = 1,      /* bad option, or an output file cannot be written */
	EXIT_NO_RING = 2,    /* ring missing after --wait, or cannot be opened */
	EXIT_PRODUCER = 3,   /* the producer died */
	EXIT_RING_ERROR = 4, /* unexpected ring error */
};

#define PEEK_SLICE_NS 100000000ll /* wait in slices so a stop signal is seen */

struct options {
	const char *ring_name;
	double wait_s;
	uint64_t max_frames;
	const char *raw_path, *headers_path;
	bool latest, sum, quiet;
	uint64_t slow_ms;
};

static void usage(FILE *out)
{
	fputs("usage: framering-dump [OPTIONS]\n"
	      "Read frames from a framering ring until end of stream and dump them.\n"
	      "\n"
	      "  -r, --ring NAME     ring name (default \"framering\")\n"
	      "  -w, --wait SEC      wait up to SEC seconds for the ring to appear (default 5)\n"
	      "  -n, --frames N      stop after N frames\n"
	      "      --raw FILE      write the packed pixel data of every frame to FILE (the\n"
	      "                      bytes `ffmpeg -f rawvideo -pix_fmt FMT` would give)\n"
	      "      --headers FILE  write one line per frame to FILE:\n"
	      "                      seq pts tb_num tb_den capture_ns width height fourcc_name\n"
	      "                      flags plane_count stride0 stride1 stride2\n"
	      "      --latest        always take the newest frame, skipping older ones\n"
	      "      --slow-ms N     hold every frame N ms before releasing it (slow consumer)\n"
	      "      --sum           read every byte of every frame; print a checksum\n"
	      "  -q, --quiet         no progress line, no summary\n"
	      "  -h, --help          this text\n"
	      "\n"
	      "A summary (frames, skipped, drops seen, fps) goes to stderr at the end.\n"
	      "Exit status: 0 end of stream or N frames (or stopped by a signal),\n"
	      "  1 bad option or output file, 2 ring missing/timeout or cannot be opened,\n"
	      "  3 the producer died, 4 other ring error.\n",
	      out);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_RAW = 256, OPT_HEADERS, OPT_LATEST, OPT_SLOW, OPT_SUM };
	static const struct option longopts[] = {
		{"ring", required_argument, NULL, 'r'},
		{"wait", required_argument, NULL, 'w'},
		{"frames", required_argument, NULL, 'n'},
		{"raw", required_argument, NULL, OPT_RAW},
		{"headers", required_argument, NULL, OPT_HEADERS},
		{"latest", no_argument, NULL, OPT_LATEST},
		{"slow-ms", required_argument, NULL, OPT_SLOW},
		{"sum", no_argument, NULL, OPT_SUM},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.ring_name = "framering", .wait_s = 5};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:w:n:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->ring_name = optarg;
			break;
		case 'w':
			if (app_parse_seconds(optarg, &o->wait_s) < 0) {
				app_complain("bad --wait '%s': expected seconds", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				app_complain("bad --frames '%s': expected a positive integer", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_RAW:
			o->raw_path = optarg;
			break;
		case OPT_HEADERS:
			o->headers_path = optarg;
			break;
		case OPT_LATEST:
			o->latest = true;
			break;
		case OPT_SLOW:
			if (app_parse_u64(optarg, &o->slow_ms) < 0 || o->slow_ms > 3600000) {
				app_complain("bad --slow-ms '%s': expected milliseconds", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_SUM:
			o->sum = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case ':':
			app_complain("option '%s' needs a value (see --help)", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			app_complain("unknown option '%s' (see --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		app_complain("unexpected argument '%s' (see --help)", argv[optind]);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Read every byte of N bytes at P (8 at a time) into the running checksum. */
static uint64_t sum_bytes(uint64_t acc, const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		acc += w;
	}
	for (; i < n; i++)
		acc += p[i];
	return acc;
}

/* Write the planes of one frame packed (stride == row size, planes back to
 * back), and/or fold them into the checksum. */
static int handle_pixels(const struct frame_header *h, const uint8_t *rec, FILE *raw, bool sum,
			 uint64_t *acc)
{
	for (uint32_t i = 0; i < h->plane_count; i++) {
		const uint8_t *p = rec + h->plane[i].offset;
		size_t stride = h->plane[i].stride;
		size_t rows = frame_plane_rows(h->fourcc, h->height, i);
		size_t row_bytes = frame_plane_row_bytes(h->fourcc, h->width, i);
		if (stride == row_bytes) {
			if (raw && fwrite(p, 1, rows * row_bytes, raw) != rows * row_bytes)
				return -1;
			if (sum)
				*acc = sum_bytes(*acc, p, rows * row_bytes);
			continue;
		}
		for (size_t y = 0; y < rows; y++) {
			if (raw && fwrite(p + y * stride, 1, row_bytes, raw) != row_bytes)
				return -1;
			if (sum)
				*acc = sum_bytes(*acc, p + y * stride, row_bytes);
		}
	}
	return 0;
}

static FILE *open_out(const char *path, size_t bufsize)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		app_complain("cannot write '%s': %s", path, strerror(errno));
		return NULL;
	}
	setvbuf(f, NULL, _IOFBF, bufsize);
	return f;
}

int main(int argc, char **argv)
{
	struct options opt;
	ring_t *ring = NULL;
	FILE *raw = NULL, *headers = NULL;
	uint64_t frames = 0, skipped = 0, bad = 0, checksum = 0;
	uint64_t t_first = 0, t_last = 0, t_progress = 0;
	bool eos = false;
	int ret;

	int code = parse_options(argc, argv, &opt);
	if (code != EXIT_OK)
		goto end;
	app_install_stop_signals();
	if (opt.raw_path && !(raw = open_out(opt.raw_path, 1 << 20))) {
		code = EXIT_USAGE;
		goto end;
	}
	if (opt.headers_path && !(headers = open_out(opt.headers_path, 1 << 16))) {
		code = EXIT_USAGE;
		goto end;
	}

	ret = ring_open_wait(&ring, opt.ring_name, (int64_t)(opt.wait_s * 1e9));
	if (ret == -ETIMEDOUT || ret == -ENOENT) {
		app_complain("ring '%s' not found (waited %.1f s)", opt.ring_name, opt.wait_s);
		code = EXIT_NO_RING;
		goto end;
	}
	if (ret < 0) {
		app_complain("cannot open ring '%s': %s", opt.ring_name, ring_strerror(ret));
		code = EXIT_NO_RING;
		goto end;
	}

	/* The main loop: take the next frame in place, dump it, release it. */
	while (!app_stop_requested) {
		struct frame_header h;
		const uint8_t *rec;
		ret = frame_peek(ring, &h, &rec, opt.latest, &skipped, PEEK_SLICE_NS);
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret == -ENODATA) {
			eos = true;
			break;
		}
		if (ret == -EOWNERDEAD) {
			app_complain("the producer of ring '%s' died", opt.ring_name);
			code = EXIT_PRODUCER;
			break;
		}
		if (ret == -EBADMSG) {
			if (!bad++)
				app_complain("skipping a record that is not a valid frame");
			ring_release(ring);
			continue;
		}
		if (ret < 0) {
			app_complain("reading ring '%s' failed: %s", opt.ring_name, ring_strerror(ret));
			code = EXIT_RING_ERROR;
			break;
		}

		if (handle_pixels(&h, rec, raw, opt.sum, &checksum) < 0) {
			app_complain("cannot write '%s': %s", opt.raw_path, strerror(errno));
			ring_release(ring);
			code = EXIT_USAGE;
			break;
		}
		if (headers)
			fprintf(headers, "%" PRIu64 " %" PRId64 " %" PRId32 " %" PRId32 " %" PRIu64
				" %" PRIu32 " %" PRIu32 " %s %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32
				" %" PRIu32 "\n",
				h.seq, h.pts, h.time_base_num, h.time_base_den, h.capture_ns, h.width,
				h.height, frame_format_name(h.fourcc), h.flags, h.plane_count,
				h.plane[0].stride, h.plane_count > 1 ? h.plane[1].stride : 0,
				h.plane_count > 2 ? h.plane[2].stride : 0);
		if (opt.slow_ms) {
			struct timespec nap = {(time_t)(opt.slow_ms / 1000), (long)(opt.slow_ms % 1000) * 1000000};
			nanosleep(&nap, NULL);
		}
		ring_release(ring);

		frames++;
		t_last = app_now_ns();
		if (!t_first)
			t_first = t_last;
		if (!opt.quiet && t_last - t_progress > 500000000ull) {
			t_progress = t_last;
			double el = (double)(t_last - t_first) / 1e9;
			app_progress("frames %" PRIu64 "  %.1f fps  skipped %" PRIu64, frames,
				     el > 0 ? (double)(frames - 1) / el : 0.0, skipped);
		}
		if (opt.max_frames && frames >= opt.max_frames)
			break;
	}

	if (!opt.quiet) {
		struct ring_stats st;
		ring_get_stats(ring, &st);
		double el = (double)(t_last - t_first) / 1e9;
		app_progress_end();
		fprintf(stderr,
			"framering-dump: %" PRIu64 " frames, %" PRIu64 " skipped, %" PRIu64
			" drops seen, %.1f fps%s%s",
			frames, skipped, st.records_dropped, el > 0 ? (double)(frames - 1) / el : 0.0,
			eos ? ", end of stream" : "", bad ? ", invalid records skipped" : "");
		if (opt.sum)
			fprintf(stderr, ", sum %016" PRIx64, checksum);
		fputc('\n', stderr);
	}

end:
	ring_close(&ring);
	if (raw && fclose(raw) != 0 && code == EXIT_OK) {
		app_complain("cannot write '%s': %s", opt.raw_path, strerror(errno));
		code = EXIT_USAGE;
	}
	if (headers && fclose(headers) != 0 && code == EXIT_OK) {
		app_complain("cannot write '%s': %s", opt.headers_path, strerror(errno));
		code = EXIT_USAGE;
	}
	return code;
}
