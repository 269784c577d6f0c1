/* dump.c - framering-dump: the C test consumer; reads frames from a ring and dumps pixels and headers.
 *
 * Reads every frame in place (fr_frame_peek), writes its packed planes to --raw
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
#include "consumer_exit.h"
#include "frame.h"
#include "ring.h"

/* Wait in slices: a stop request ends the wait at once (fr_ring_interrupt from the
 * signal handler); the slices are a second line, for a signal that came
 * before the ring was registered with the handler. */
#define PEEK_SLICE_NS 100000000ll

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
	      "                      flags plane_count stride0 stride1 stride2 matrix range\n"
	      "                      primaries transfer chroma_location (fr_frame_color_name());\n"
	      "                      each line is in FILE as soon as its frame is read\n"
	      "      --latest        read as a live consumer: always the newest frame, skipping\n"
	      "                      older ones, never slowing the producer or other consumers\n"
	      "                      (default: every frame, in order; the producer waits for it)\n"
	      "      --slow-ms N     hold every frame N ms before releasing it (slow consumer)\n"
	      "      --sum           read every byte of every frame; print a checksum\n"
	      "  -q, --quiet         no progress line, no summary\n"
	      "  -h, --help          this text\n"
	      "\n"
	      "A summary (frames, skipped, invalid records, drops seen, fps) goes to stderr at\n"
	      "the end. A record that is not a valid frame is skipped (warned about once);\n"
	      "a corrupt ring ends the program (status 4). Every failure is one line on stderr.\n"
	      "\n" CONSUMER_EXIT_HELP,
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
				return CONSUMER_EXIT_USAGE;
			}
			break;
		case 'n':
			if (app_parse_u64(optarg, &o->max_frames) < 0 || o->max_frames == 0) {
				app_complain("bad --frames '%s': expected a positive integer", optarg);
				return CONSUMER_EXIT_USAGE;
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
				return CONSUMER_EXIT_USAGE;
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
			exit(CONSUMER_EXIT_DONE);
		case ':':
			app_complain("option '%s' needs a value (see --help)", argv[optind - 1]);
			return CONSUMER_EXIT_USAGE;
		default:
			app_complain_unknown_option(argv);
			return CONSUMER_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		app_complain("unexpected argument '%s' (see --help)", argv[optind]);
		return CONSUMER_EXIT_USAGE;
	}
	/* before --raw and --headers are opened (truncated) */
	if (!app_ring_name_ok(o->ring_name))
		return CONSUMER_EXIT_USAGE;
	if ((o->raw_path && !app_output_ok("--raw", o->raw_path, o->ring_name)) ||
	    (o->headers_path && !app_output_ok("--headers", o->headers_path, o->ring_name)))
		return CONSUMER_EXIT_USAGE;
	return CONSUMER_EXIT_DONE;
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
static int handle_pixels(const struct fr_frame_header *h, const uint8_t *rec, FILE *raw, bool sum,
			 uint64_t *acc)
{
	for (uint32_t i = 0; i < h->plane_count; i++) {
		const uint8_t *p = rec + h->plane[i].offset;
		size_t stride = h->plane[i].stride;
		size_t rows = fr_frame_plane_rows(h->fourcc, h->height, i);
		size_t row_bytes = fr_frame_plane_row_bytes(h->fourcc, h->width, i);
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

/* Open output PATH with a buffer of BUFSIZE bytes, *BUF (free it after fclose),
 * or line-buffered for BUFSIZE 0; NULL after its line, or without one when a
 * stop cut the open short. */
static FILE *open_out(const char *path, size_t bufsize, char **buf)
{
	/* Ours: glibc's setvbuf() ignores the size when it is to allocate the
	 * buffer itself, and takes st_blksize (4 KiB): two write()s a frame. */
	if (bufsize && !(*buf = malloc(bufsize))) {
		app_complain("out of memory");
		return NULL;
	}
	FILE *f = fopen(path, "wb");
	if (!f) {
		/* EINTR on a stop: open() of a FIFO waited for its reader; not a failure */
		if (errno != EINTR || !app_stop_requested)
			app_complain("cannot write '%s': %s", path, strerror(errno));
		return NULL;
	}
	setvbuf(f, *buf, bufsize ? _IOFBF : _IOLBF, bufsize);
	return f;
}

/* Open ring NAME, waiting up to --wait for its producer. Returns 0 with *ring
 * set, or the exit status after the one line that says why. */
static int open_ring(fr_ring_t **ring, const struct options *o)
{
	/* --latest: a live consumer (never slows the producer or the other
	 * consumers); else a lossless one, that the producer waits for. */
	struct fr_ring_attach_opts ao = {o->latest ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY,
				      o->wait_s > 0 ? (int64_t)(o->wait_s * 1e9) : 1};
	int ret = app_attach(ring, o->ring_name, &ao);
	if (ret == 0)
		return CONSUMER_EXIT_DONE;
	if (ret == -EINTR && app_stop_requested)
		return -1; /* Ctrl-C while waiting: done, nothing to complain about */
	return app_complain_attach_failed(o->ring_name, o->wait_s, ret);
}

int main(int argc, char **argv)
{
	struct options opt;
	fr_ring_t *ring = NULL;
	FILE *raw = NULL, *headers = NULL;
	char *raw_buf = NULL, *headers_buf = NULL;
	uint64_t frames = 0, skipped = 0, invalid = 0, checksum = 0, replacements = 0;
	uint64_t t_first = 0, t_last = 0, t_progress = 0;
	bool eos = false;
	int ret;

	app_open_std_fds();

	int code = parse_options(argc, argv, &opt);
	if (code != CONSUMER_EXIT_DONE)
		goto end;
	app_install_stop_signals();
	if (opt.raw_path && !(raw = open_out(opt.raw_path, 1 << 20, &raw_buf))) {
		code = app_stop_requested ? CONSUMER_EXIT_DONE : CONSUMER_EXIT_OTHER;
		goto end;
	}
	if (opt.headers_path && !(headers = open_out(opt.headers_path, 0, &headers_buf))) {
		code = app_stop_requested ? CONSUMER_EXIT_DONE : CONSUMER_EXIT_OTHER;
		goto end;
	}

	code = open_ring(&ring, &opt);
	if (code < 0) {
		code = CONSUMER_EXIT_DONE;
		goto end;
	}
	if (code != CONSUMER_EXIT_DONE)
		goto end;
	/* From here a stop signal also cuts the wait of the next peek short. */
	app_interrupt_ring(ring);

	/* The main loop: take the next frame in place, dump it, release it. */
	while (!app_stop_requested) {
		struct fr_frame_header h;
		const uint8_t *rec;
		ret = fr_frame_peek(ring, &h, &rec, opt.latest, &skipped, PEEK_SLICE_NS);
		if (ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR)
			continue;
		if (ret == -ECANCELED)
			break; /* the stop handler interrupted the wait */
		if (ret == -ENODATA) {
			eos = true;
			break;
		}
		if (ret == -ESTALE) {
			/* The producer replaced the ring (frames outgrew it) and we read
			 * all of the old one: go on in the new one under the name. */
			app_interrupt_ring(NULL);
			fr_ring_close(&ring);
			code = open_ring(&ring, &opt);
			if (code != CONSUMER_EXIT_DONE) {
				code = code < 0 ? CONSUMER_EXIT_DONE : code;
				break;
			}
			app_interrupt_ring(ring);
			replacements++;
			continue;
		}
		if (ret == -ENOMSG) {
			/* One damaged record, already skipped by fr_frame_peek: the ring is sound, read on. */
			if (!invalid++)
				app_complain("ring '%s': skipping a record that is not a valid frame "
					     "(further ones are counted in the summary)", opt.ring_name);
			continue;
		}
		if (ret == -EOWNERDEAD) {
			app_complain("the producer of ring '%s' died", opt.ring_name);
			code = CONSUMER_EXIT_PRODUCER_DIED;
			break;
		}
		if (ret == -EREMOTEIO) {
			app_complain_producer_failed(ring, opt.ring_name);
			code = CONSUMER_EXIT_PRODUCER_FAILED;
			break;
		}
		if (consumer_ring_broken(ret)) {
			/* Nothing is peeked and nothing after this point can be trusted:
			 * stop, never release-and-retry (that spun forever). */
			app_complain("ring '%s' %s", opt.ring_name, consumer_read_problem(ret));
			code = CONSUMER_EXIT_BAD_RING;
			break;
		}
		if (ret < 0) {
			app_complain("reading ring '%s' failed: %s", opt.ring_name, fr_ring_strerror(ret));
			code = consumer_exit_for(ret);
			break;
		}

		if (handle_pixels(&h, rec, raw, opt.sum, &checksum) < 0) {
			app_complain("cannot write '%s': %s", opt.raw_path, strerror(errno));
			fr_ring_release(ring);
			code = CONSUMER_EXIT_OTHER;
			break;
		}
		if (headers) {
			fprintf(headers, "%" PRIu64 " %" PRId64 " %" PRId32 " %" PRId32 " %" PRIu64
				" %" PRIu32 " %" PRIu32 " %s %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32
				" %" PRIu32,
				h.seq, h.pts, h.time_base_num, h.time_base_den, h.capture_ns, h.width,
				h.height, fr_frame_format_name(h.fourcc), h.flags, h.plane_count,
				h.plane[0].stride, h.plane_count > 1 ? h.plane[1].stride : 0,
				h.plane_count > 2 ? h.plane[2].stride : 0);
			const uint8_t color[] = {h.color_matrix, h.color_range, h.color_primaries,
						 h.color_transfer, h.chroma_location};
			char num[12];
			for (unsigned i = 0; i < sizeof(color); i++)
				fprintf(headers, " %s", app_color_name(i, color[i], num));
			fputc('\n', headers);
		}
		if (opt.slow_ms) {
			struct timespec nap = {(time_t)(opt.slow_ms / 1000), (long)(opt.slow_ms % 1000) * 1000000};
			nanosleep(&nap, NULL);
		}
		ret = fr_ring_release(ring);
		if (ret < 0) {
			/* e.g. -EFAULT: the segment was shrunk while we held the frame. */
			if (consumer_ring_broken(ret))
				app_complain("ring '%s' %s", opt.ring_name, consumer_read_problem(ret));
			else
				app_complain("releasing a frame of ring '%s' failed: %s", opt.ring_name,
					     fr_ring_strerror(ret));
			code = consumer_exit_for(ret);
			break;
		}

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
		struct fr_ring_stats st = {0}; /* stays 0 if following a replaced ring failed */
		fr_ring_get_stats(ring, &st);
		double el = (double)(t_last - t_first) / 1e9;
		app_progress_end();
		/* Starts with the frame count: tests/ring/soak_hostile.py reads it there. */
		fprintf(stderr,
			"framering-dump: %" PRIu64 " frames, %" PRIu64 " skipped, %" PRIu64
			" drops seen, %.1f fps%s",
			frames, skipped, st.records_dropped, el > 0 ? (double)(frames - 1) / el : 0.0,
			eos ? ", end of stream" : app_stop_requested ? ", stopped by signal" : "");
		if (invalid)
			fprintf(stderr, ", %" PRIu64 " invalid record%s skipped", invalid, invalid == 1 ? "" : "s");
		if (replacements)
			fprintf(stderr, ", followed %" PRIu64 " ring replacement%s", replacements,
				replacements == 1 ? "" : "s");
		if (opt.sum)
			fprintf(stderr, ", sum %016" PRIx64, checksum);
		fputc('\n', stderr);
	}

end:
	app_interrupt_ring(NULL); /* before the handler could see a freed ring */
	/* A consumer's close cannot lose anything; a failure here (e.g. -EFAULT after
	 * the segment was shrunk) was already reported by the call that met it. */
	fr_ring_close(&ring);
	if (raw && fclose(raw) != 0 && code == CONSUMER_EXIT_DONE) {
		app_complain("cannot write '%s': %s", opt.raw_path, strerror(errno));
		code = CONSUMER_EXIT_OTHER;
	}
	if (headers && fclose(headers) != 0 && code == CONSUMER_EXIT_DONE) {
		app_complain("cannot write '%s': %s", opt.headers_path, strerror(errno));
		code = CONSUMER_EXIT_OTHER;
	}
	free(raw_buf);
	free(headers_buf);
	return code;
}
