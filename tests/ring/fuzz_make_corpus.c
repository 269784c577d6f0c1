/* fuzz_make_corpus.c - writes the seed corpus of fuzz_ring_open: real segments made by the library (small rings, records, frames). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "ring.h"

static int save(const char *dir, const char *what, unsigned mode, const fr_ring_t *r)
{
	const void *base;
	size_t size;
	char path[4096];
	FILE *f;
	unsigned char m = (unsigned char)mode;

	fr_ring_mapping(r, &base, &size);
	snprintf(path, sizeof(path), "%s/seed-%s-%u", dir, what, mode);
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "fuzz_make_corpus: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* byte 0 is the target's mode byte, the rest the segment as the library left it */
	if (fwrite(&m, 1, 1, f) != 1 || fwrite(base, 1, size, f) != size) {
		fprintf(stderr, "fuzz_make_corpus: short write to %s\n", path);
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int frame(fr_ring_t *r, uint32_t fourcc, uint32_t w, uint32_t h)
{
	struct fr_frame_header *fh;
	int rc = fr_frame_reserve(r, fourcc, w, h, &fh, FR_RING_NO_WAIT);

	if (rc < 0)
		return rc;
	memset((unsigned char *)fh + fh->plane[0].offset, 0x80, (size_t)fh->image_size);
	return fr_frame_commit(r, fh);
}

int main(int argc, char **argv)
{
	struct fr_ring_create_opts o = { .capacity = FR_RING_MIN_CAPACITY };
	char name[64];
	fr_ring_t *r = NULL;
	int rc = 0, bad = 0;
	char rec[1500];

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc == 2 ? stdout : stderr, "usage: fuzz_make_corpus DIR\n"
			"Writes seed segments for fuzz_ring_open into DIR (created if missing).\n");
		return argc == 2 ? 0 : 1;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_make_corpus: cannot create %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(name, sizeof(name), "frt-%d-corpus", (int)getpid());
	if ((rc = fr_ring_create(&r, name, &o)) < 0) {
		fprintf(stderr, "fuzz_make_corpus: fr_ring_create: %s\n", fr_ring_strerror(rc));
		return 1;
	}
	memset(rec, 'x', sizeof(rec));
	/* each step changes the ring, then saves it raw (mode 0) and with the header overlay (mode 17) */
	bad |= save(argv[1], "empty", 0, r);
	for (int i = 0; i < 3; i++)
		bad |= fr_ring_write(r, rec, 10 + (size_t)i * 100, FR_RING_NO_WAIT) < 0;
	bad |= save(argv[1], "records", 0, r);
	bad |= save(argv[1], "records", 17, r);
	bad |= fr_ring_set_meta(r, "gray8 8x8", 9) < 0;
	bad |= frame(r, FR_FRAME_FMT_GRAY8, 8, 8) < 0;
	bad |= frame(r, FR_FRAME_FMT_I420, 16, 8) < 0;
	bad |= frame(r, FR_FRAME_FMT_NV12, 6, 4) < 0;
	bad |= frame(r, FR_FRAME_FMT_BGR24, 5, 3) < 0;
	bad |= save(argv[1], "frames", 0, r);
	bad |= save(argv[1], "frames", 23, r);
	/* drain and wrap: a pad record at the end of the data area */
	{
		fr_ring_t *c = NULL;
		char buf[2048];
		bad |= fr_ring_open(&c, name) < 0;
		while (c && fr_ring_read(c, buf, sizeof(buf), FR_RING_NO_WAIT) > 0)
			;
		for (int i = 0; i < 3; i++)
			bad |= fr_ring_write(r, rec, 1000, FR_RING_NO_WAIT) < 0;
		bad |= save(argv[1], "wrapped", 16, r);
		bad |= fr_ring_mark_eos(r) < 0;
		bad |= save(argv[1], "eos", 16, r);
		fr_ring_close(&c);
	}
	fr_ring_close(&r);

	/* Hostile seeds (the safety issue's cases), read with a live producer (mode 32):
	 * a pad over the whole data area with the tail 2^62 ahead, and a frame of another
	 * version between good ones (read through fr_frame_peek, mode 96). */
	{
		struct fr_ring_create_opts small = { .capacity = 4096 };
		fr_ring_t *h = NULL;
		struct fr_frame_header *fh;
		bad |= fr_ring_create(&h, name, &small) < 0;
		if (h) {
			for (int i = 0; i < 3; i++) {
				bad |= fr_frame_reserve(h, FR_FRAME_FMT_GRAY8, 8, 8, &fh, FR_RING_NO_WAIT) < 0;
				if (fh && i == 1)
					fh->version = FR_FRAME_VERSION + 1;
				bad |= fh ? fr_frame_commit(h, fh) < 0 : 1;
			}
			bad |= save(argv[1], "frame-version", 96, h);
			bad |= save(argv[1], "frame-version-live", 96 | 128, h);
			const void *base;
			size_t size;
			fr_ring_mapping(h, &base, &size);
			unsigned char *copy = malloc(size);
			if (copy) {
				memcpy(copy, base, size);
				uint64_t tail = (1ull << 62), head = 0;
				uint32_t pad[2] = { 4096, 0x44444150u }; /* len = the whole area, "PADD" */
				memcpy(copy + 4096, pad, sizeof(pad));
				memcpy(copy + 128, &tail, 8); /* tail (ring_layout.h) */
				memcpy(copy + 256, &head, 8); /* head */
				char path[4096];
				snprintf(path, sizeof(path), "%s/seed-pad-lap-32", argv[1]);
				FILE *f = fopen(path, "wb");
				unsigned char m = 32;
				bad |= !f || fwrite(&m, 1, 1, f) != 1 || fwrite(copy, 1, size, f) != size;
				if (f)
					bad |= fclose(f) != 0;
				free(copy);
			}
			fr_ring_close(&h);
		}
	}
	if (bad) {
		fprintf(stderr, "fuzz_make_corpus: building the seed segments failed\n");
		return 1;
	}
	return 0;
}
