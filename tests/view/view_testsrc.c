/* view_testsrc.c - a test producer for framering-view: writes frames of a known block pattern into a ring.
 *
 * Every frame is an 8 x 8 grid of solid blocks whose colours depend on the block and the frame
 * number (pattern_rgb), so a test can tell which frame a snapshot shows and compare it pixel by
 * pixel. Frames can be written with padded strides (--pad) to exercise the viewer's pitch
 * handling, and the format/size can change mid-stream (--switch-at). --raw writes the packed
 * pixel bytes of every frame (what `ffmpeg -f rawvideo` would give), the reference for the tests.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apputil.h"
#include "frame.h"
#include "ring.h"

#define PROG "view_testsrc"

struct stream {
	uint32_t fourcc;
	unsigned w, h;
};

/* Colour of block (bx, by) of frame n; the Python tests carry the same formula. */
static void pattern_rgb(unsigned bx, unsigned by, uint64_t n, uint8_t rgb[3])
{
	rgb[0] = (uint8_t)(bx * 32 + n * 7);
	rgb[1] = (uint8_t)(by * 32 + n * 11);
	rgb[2] = (uint8_t)((bx + by) * 16 + n * 5 + 40);
}

/* BT.601 limited range, integer (the usual 8-bit approximation). */
static void rgb_to_yuv(const uint8_t rgb[3], uint8_t *y, uint8_t *u, uint8_t *v)
{
	int r = rgb[0], g = rgb[1], b = rgb[2];
	*y = (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
	*u = (uint8_t)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
	*v = (uint8_t)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
}

/* Fill the planes of one frame; pixel (x, y) belongs to block (8x/w, 8y/h). GRAY8 carries the
 * luma of the block colour. Chroma of a 2x2 group is taken from its top-left pixel. */
static void fill(const struct fr_frame_header *h, uint8_t *rec, uint64_t n)
{
	unsigned w = h->width, ht = h->height;
	uint8_t *p0 = rec + h->plane[0].offset;
	size_t s0 = h->plane[0].stride;

	for (unsigned y = 0; y < ht; y++) {
		for (unsigned x = 0; x < w; x++) {
			uint8_t rgb[3], Y, U, V;
			pattern_rgb(x * 8 / w, y * 8 / ht, n, rgb);
			switch (h->fourcc) {
			case FR_FRAME_FMT_BGR24:
				p0[y * s0 + 3 * x + 0] = rgb[2];
				p0[y * s0 + 3 * x + 1] = rgb[1];
				p0[y * s0 + 3 * x + 2] = rgb[0];
				break;
			case FR_FRAME_FMT_RGB24:
				memcpy(p0 + y * s0 + 3 * x, rgb, 3);
				break;
			default:
				rgb_to_yuv(rgb, &Y, &U, &V);
				p0[y * s0 + x] = Y;
				if (h->fourcc == FR_FRAME_FMT_GRAY8 || (x & 1) || (y & 1))
					break;
				if (h->fourcc == FR_FRAME_FMT_I420) {
					rec[h->plane[1].offset + (y / 2) * h->plane[1].stride + x / 2] = U;
					rec[h->plane[2].offset + (y / 2) * h->plane[2].stride + x / 2] = V;
				} else { /* NV12 */
					uint8_t *uv = rec + h->plane[1].offset + (y / 2) * h->plane[1].stride + x;
					uv[0] = U;
					uv[1] = V;
				}
				break;
			}
		}
	}
}

/* Append the packed planes (no stride padding) of a frame to F. */
static int write_raw(FILE *f, const struct fr_frame_header *h, const uint8_t *rec)
{
	for (uint32_t i = 0; i < h->plane_count; i++) {
		uint32_t rows = fr_frame_plane_rows(h->fourcc, h->height, i);
		uint32_t bytes = fr_frame_plane_row_bytes(h->fourcc, h->width, i);
		for (uint32_t y = 0; y < rows; y++)
			if (fwrite(rec + h->plane[i].offset + (size_t)y * h->plane[i].stride, 1, bytes, f) != bytes)
				return -1;
	}
	return 0;
}

/* A frame header like fr_frame_header_init()'s, but every plane's stride padded by PAD bytes. */
static int header_padded(struct fr_frame_header *h, const struct stream *s, unsigned pad, size_t *record_len)
{
	int ret = fr_frame_header_init(h, s->fourcc, s->w, s->h);
	if (ret < 0)
		return ret;
	uint32_t off = FR_FRAME_HEADER_SIZE;
	for (uint32_t i = 0; i < h->plane_count; i++) {
		h->plane[i].offset = off;
		h->plane[i].stride = fr_frame_plane_row_bytes(s->fourcc, s->w, i) + pad;
		off += h->plane[i].stride * fr_frame_plane_rows(s->fourcc, s->h, i);
	}
	h->image_size = off - h->plane[0].offset;
	*record_len = off;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --ring NAME [--format FMT] [--size WxH] [--frames N] [--fps F] [--pad N]\n"
		   "       [--switch-at N --format2 FMT --size2 WxH] [--raw FILE] [--slots N] [--wait-consumer SEC]\n"
		   "       [--prerender K]  (frame n = a copy of prerendered frame n %% K; not with --switch-at)\n"
		   "       [--linger SEC]   (after end of stream keep the ring SEC s before closing it, as\n"
		   "                         framering-capture does while slower consumers drain it)\n"
		   "Write N frames (0: until killed) of an 8x8 block pattern into ring NAME, then mark end of stream.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ring", required_argument, NULL, 'r' },     { "format", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },     { "frames", required_argument, NULL, 'n' },
		{ "fps", required_argument, NULL, 'F' },      { "pad", required_argument, NULL, 'P' },
		{ "switch-at", required_argument, NULL, 'S' }, { "format2", required_argument, NULL, 'q' },
		{ "size2", required_argument, NULL, 'z' },    { "raw", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'k' },    { "wait-consumer", required_argument, NULL, 'W' },
		{ "prerender", required_argument, NULL, 'K' },
		{ "linger", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *raw_path = NULL;
	struct stream s1 = { FR_FRAME_FMT_BGR24, 320, 240 }, s2 = { 0, 0, 0 };
	uint64_t frames = 10, switch_at = UINT64_MAX, pad = 0, slots = 4, prerender = 0;
	uint8_t *cache = NULL;
	double fps = 0, wait_consumer = 0, linger = 0;
	fr_ring_t *ring = NULL;
	FILE *raw = NULL;
	int c, ret, status = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': name = optarg; break;
		case 'p':
			if (!(s1.fourcc = fr_frame_format_from_name(optarg))) {
				fprintf(stderr, PROG ": unknown format '%s'\n", optarg);
				return 1;
			}
			break;
		case 'q':
			if (!(s2.fourcc = fr_frame_format_from_name(optarg))) {
				fprintf(stderr, PROG ": unknown format '%s'\n", optarg);
				return 1;
			}
			break;
		case 's':
		case 'z':
			if (app_parse_size(optarg, c == 's' ? &s1.w : &s2.w, c == 's' ? &s1.h : &s2.h) < 0) {
				fprintf(stderr, PROG ": bad size '%s'\n", optarg);
				return 1;
			}
			break;
		case 'n':
		case 'S':
		case 'P':
		case 'k':
		case 'K':
			if (app_parse_u64(optarg, c == 'n' ? &frames : c == 'S' ? &switch_at : c == 'P' ? &pad :
						   c == 'k' ? &slots : &prerender) < 0) {
				fprintf(stderr, PROG ": bad number '%s'\n", optarg);
				return 1;
			}
			break;
		case 'F':
			if (app_parse_seconds(optarg, &fps) < 0) {
				fprintf(stderr, PROG ": bad --fps '%s'\n", optarg);
				return 1;
			}
			break;
		case 'R': raw_path = optarg; break;
		case 'L':
			if (app_parse_seconds(optarg, &linger) < 0) {
				fprintf(stderr, PROG ": bad --linger '%s'\n", optarg);
				return 1;
			}
			break;
		case 'W':
			if (app_parse_seconds(optarg, &wait_consumer) < 0) {
				fprintf(stderr, PROG ": bad --wait-consumer '%s'\n", optarg);
				return 1;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!name || optind < argc || pad > 4096 || slots < 2 || prerender > 64 ||
	    (prerender && switch_at != UINT64_MAX)) {
		usage(stderr);
		return 1;
	}
	if (!s2.fourcc)
		s2.fourcc = s1.fourcc;
	if (!s2.w) {
		s2.w = s1.w;
		s2.h = s1.h;
	}
	app_install_stop_signals();

	/* Capacity: SLOTS of the larger record (plus alignment), as a power of two; a record may
	 * take at most half the ring, hence at least twice the record. */
	struct fr_frame_header tmp;
	size_t len1, len2;
	if (header_padded(&tmp, &s1, (unsigned)pad, &len1) < 0 || header_padded(&tmp, &s2, (unsigned)pad, &len2) < 0) {
		fprintf(stderr, PROG ": bad format/size\n");
		return 1;
	}
	uint64_t need = ((len1 > len2 ? len1 : len2) + FR_FRAME_ALIGN + 64) * slots, cap = FR_RING_MIN_CAPACITY;
	while (cap < need)
		cap <<= 1;
	struct fr_ring_create_opts ro = { .capacity = cap, .mode = 0600, .on_full = FR_RING_FULL_BLOCK };
	ret = fr_ring_create(&ring, name, &ro);
	if (ret < 0) {
		fprintf(stderr, PROG ": fr_ring_create('%s') failed: %s\n", name, fr_ring_strerror(ret));
		return 1;
	}
	if (raw_path && !(raw = fopen(raw_path, "wb"))) {
		fprintf(stderr, PROG ": cannot write '%s': %s\n", raw_path, strerror(errno));
		goto end;
	}

	/* Tests start the viewer in either order; waiting for it keeps a short stream from being
	 * written and unlinked before the viewer has even opened the ring. */
	if (wait_consumer > 0) {
		uint64_t deadline = app_now_ns() + (uint64_t)(wait_consumer * 1e9);
		struct fr_ring_stats st;
		for (;;) {
			fr_ring_get_stats(ring, &st);
			if (st.consumer_alive || app_stop_requested)
				break;
			if (app_now_ns() > deadline) {
				fprintf(stderr, PROG ": no consumer attached within %g s\n", wait_consumer);
				goto end;
			}
			struct timespec ts = { 0, 5000000 };
			nanosleep(&ts, NULL);
		}
	}
	uint64_t t0 = app_now_ns();
	for (uint64_t n = 0; frames == 0 || n < frames; n++) {
		const struct stream *s = n >= switch_at ? &s2 : &s1;
		struct fr_frame_header h;
		size_t len;
		void *data;

		if (app_stop_requested)
			break;
		if (fps > 0) {
			uint64_t due = t0 + (uint64_t)((double)n * 1e9 / fps);
			uint64_t now = app_now_ns();
			if (due > now) {
				struct timespec ts = { (time_t)((due - now) / 1000000000u), (long)((due - now) % 1000000000u) };
				nanosleep(&ts, NULL);
			}
		}
		header_padded(&h, s, (unsigned)pad, &len);
		do
			ret = fr_ring_reserve(ring, len, FR_FRAME_ALIGN, &data, 100 * 1000000LL);
		while ((ret == -ETIMEDOUT || ret == -EAGAIN) && !app_stop_requested);
		if (ret < 0) {
			if (!app_stop_requested)
				fprintf(stderr, PROG ": fr_ring_reserve failed: %s\n", fr_ring_strerror(ret));
			goto end;
		}
		h.seq = n;
		h.pts = (int64_t)n;
		h.time_base_num = 1;
		h.time_base_den = fps > 0 ? (int32_t)fps : 25;
		if (n == switch_at)
			h.flags |= FR_FRAME_FLAG_DISCONTINUITY;
		if (prerender) {
			/* Benchmarks: frame n is a copy of prerendered frame n % K (one memcpy), so the
			 * producer costs little next to the viewer it feeds. */
			if (!cache) {
				cache = malloc(len * prerender);
				if (!cache) {
					fprintf(stderr, PROG ": out of memory\n");
					fr_ring_abort(ring);
					goto end;
				}
				for (uint64_t k = 0; k < prerender; k++) {
					memcpy(cache + k * len, &h, sizeof(h));
					fill(&h, cache + k * len, k);
				}
			}
			memcpy((uint8_t *)data + FR_FRAME_HEADER_SIZE, cache + (n % prerender) * len + FR_FRAME_HEADER_SIZE,
			       len - FR_FRAME_HEADER_SIZE);
			memcpy(data, &h, sizeof(h));
		} else {
			memcpy(data, &h, sizeof(h));
			fill(&h, data, n);
		}
		if (raw && write_raw(raw, &h, data) < 0) {
			fprintf(stderr, PROG ": cannot write '%s': %s\n", raw_path, strerror(errno));
			fr_ring_abort(ring);
			goto end;
		}
		/* capture_ns last: the latency the viewer measures starts when the frame is ready. */
		((struct fr_frame_header *)data)->capture_ns = fr_frame_now_ns();
		ret = fr_ring_commit(ring, len);
		if (ret < 0) {
			fprintf(stderr, PROG ": fr_ring_commit failed: %s\n", fr_ring_strerror(ret));
			goto end;
		}
	}
	if (linger > 0) {
		/* End of stream is marked, the name stays: a consumer that comes back meets this ring. */
		ret = fr_ring_mark_eos(ring);
		if (ret < 0) {
			fprintf(stderr, PROG ": fr_ring_mark_eos failed: %s\n", fr_ring_strerror(ret));
			goto end;
		}
		struct timespec ts = { (time_t)linger, (long)((linger - (double)(time_t)linger) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !app_stop_requested)
			;
	}
	status = 0;
end:
	if (raw && fclose(raw) != 0 && status == 0) {
		fprintf(stderr, PROG ": cannot write '%s': %s\n", raw_path, strerror(errno));
		status = 1;
	}
	fr_ring_close(&ring); /* marks end of stream and unlinks the name */
	free(cache);
	return status;
}
