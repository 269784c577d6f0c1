/* fuzz_ring_open.c - libFuzzer target: the input is a whole shared-memory segment; opening and reading it must never crash. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"
#include "ring.h"
#include "ring_layout.h"

/* Input byte 0 selects what is mixed in; the rest is the segment.
 *  bit 0: overlay a valid immutable header (magic, version, sizes) sized to the input,
 *         so mutations reach the indices and records instead of dying at the magic
 *  bit 1: clamp the indices into a plausible range (tail - oldest <= capacity, newest inside)
 *  bit 2: read with fr_ring_peek_latest / fr_ring_skip_to_latest too
 *  bit 3: try fr_ring_create on the segment (reclaim path) after reading
 *  bit 4: no consumer pid shown (consumer_pid = 0)
 *  bit 5: a live producer: the fuzzer holds the segment's producer lock while reading
 *  bit 6: read through fr_frame_peek (which skips records that are no valid frames)
 *  bit 7: attach as a LATEST (live) consumer: newest/claim/holds are read, not heads */
#define MODE_HEADER 1u
#define MODE_CLAMP 2u
#define MODE_LATEST 4u
#define MODE_CREATE 8u
#define MODE_FREE 16u
#define MODE_LIVE 32u
#define MODE_FRAMES 64u
#define MODE_LIVE_CONSUMER 128u

static char name[64];
static unsigned char *seg;
static size_t seg_cap;

static void touch(const void *p, size_t len)
{
	volatile unsigned char sink = 0;
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		sink ^= b[i];
	(void)sink;
}

static void check_frame(const void *rec, size_t len)
{
	struct fr_frame_header fh;

	if (fr_frame_header_validate(rec, len, &fh) != 0)
		return;
	/* A header that passed must describe planes inside the record: read them all. */
	for (uint32_t p = 0; p < fh.plane_count && p < FR_FRAME_MAX_PLANES; p++) {
		uint64_t rows = fr_frame_plane_rows(fh.fourcc, fh.height, p);
		uint64_t row = fr_frame_plane_row_bytes(fh.fourcc, fh.width, p);
		if (!rows)
			continue;
		uint64_t end = (uint64_t)fh.plane[p].offset + (uint64_t)fh.plane[p].stride * (rows - 1) + row;
		if (end > len)
			abort(); /* validate accepted a plane outside the record */
		touch((const unsigned char *)rec + fh.plane[p].offset, (size_t)(end - fh.plane[p].offset));
	}
}

static void read_ring(unsigned mode)
{
	fr_ring_t *c = NULL;
	const void *base, *d;
	size_t size, len;
	struct fr_ring_stats st;
	unsigned char meta[FR_RING_META_SIZE];

	fr_ring_inspect(name, &st);
	fr_ring_inspect_meta(name, meta, sizeof(meta));
	struct fr_ring_attach_opts ao = { (mode & MODE_LIVE_CONSUMER) ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, 0 };
	if (fr_ring_attach(&c, name, &ao) != 0)
		return;
	fr_ring_mapping(c, &base, &size);
	fr_ring_get_stats(c, &st);
	fr_ring_get_meta(c, meta, sizeof(meta));
	for (int i = 0; i < 64; i++) {
		int rc;
		if (mode & MODE_FRAMES) {
			struct fr_frame_header fh;
			const uint8_t *rec;
			rc = fr_frame_peek(c, &fh, &rec, (mode & MODE_LATEST) && i % 2, NULL, FR_RING_NO_WAIT);
			if (rc == -ENOMSG || rc == -EPROTO)
				continue; /* skipped by fr_frame_peek: nothing is peeked */
			if (rc == 0 && (fh.image_size > SIZE_MAX || fh.header_size < FR_FRAME_HEADER_SIZE))
				abort();
			d = rec;
			len = rc == 0 ? (size_t)(fh.plane[0].offset + fh.image_size) : 0;
		} else if ((mode & MODE_LATEST) && i % 2) {
			rc = fr_ring_peek_latest(c, &d, &len, NULL, FR_RING_NO_WAIT);
		} else {
			rc = fr_ring_peek(c, &d, &len, FR_RING_NO_WAIT);
		}
		if (rc != 0)
			break;
		const unsigned char *lo = (const unsigned char *)base + RING_HEADER_SIZE;
		const unsigned char *hi = (const unsigned char *)base + size;
		if ((const unsigned char *)d < lo || (const unsigned char *)d > hi || len > (size_t)(hi - (const unsigned char *)d))
			abort(); /* a record outside the data area */
		touch(d, len);
		check_frame(d, len);
		fr_ring_release(c);
		if ((mode & MODE_LATEST) && i == 3)
			fr_ring_skip_to_latest(c);
	}
	fr_ring_close(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	int fd;

	if (!name[0])
		snprintf(name, sizeof(name), "frt-fuzz-%d", (int)getpid());
	/* the raw bytes as a frame record, too (copied: ring records are 8-byte aligned) */
	{
		static unsigned char *rec;
		static size_t rec_cap;
		if (size > rec_cap) {
			free(rec);
			rec = malloc(size);
			rec_cap = rec ? size : 0;
		}
		if (rec && size) {
			memcpy(rec, data, size);
			check_frame(rec, size);
		}
	}
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;

	/* The segment: the input, grown to a header plus the smallest data area when
	 * a valid header is mixed in. */
	n = size;
	if ((mode & MODE_HEADER) && n < RING_HEADER_SIZE + FR_RING_MIN_CAPACITY)
		n = RING_HEADER_SIZE + FR_RING_MIN_CAPACITY;
	if (n > seg_cap || !seg) {
		free(seg);
		seg = aligned_alloc(4096, (n + 4095) & ~(size_t)4095); /* as a mapping is */
		seg_cap = seg ? n : 0;
		if (!seg)
			return 0;
	}
	memset(seg, 0, n);
	if (size)
		memcpy(seg, data, size);
	if ((mode & MODE_HEADER) && n >= sizeof(struct ring_shm_header)) {
		struct ring_shm_header *h = (struct ring_shm_header *)seg;
		uint64_t cap = FR_RING_MIN_CAPACITY;
		while (RING_HEADER_SIZE + cap * 2 <= n && cap * 2 <= (1u << 20))
			cap *= 2;
		h->magic = RING_MAGIC;
		h->layout_version = RING_LAYOUT_VERSION;
		h->header_size = RING_HEADER_SIZE;
		h->capacity = cap;
		h->segment_size = RING_HEADER_SIZE + cap;
		h->max_consumers = 1 + h->max_consumers % RING_CONSUMERS_MAX;
		if (mode & MODE_CLAMP) {
			/* a consumer starts at oldest: keep it and the newest record within a lap of the tail */
			uint64_t oldest = h->oldest & ~(uint64_t)7;
			h->oldest = oldest;
			h->tail = oldest + (h->tail % (cap + 1));
			h->newest = h->tail - (h->newest % (h->tail - oldest + 1));
		}
		if (mode & MODE_FREE)
			h->consumers[0].pid = 0;
	}

	char path[128];
	snprintf(path, sizeof(path), "/%s", name);
	shm_unlink(path);
	fd = shm_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0)
		return 0;
	size_t off = 0;
	while (off < n) {
		ssize_t w = pwrite(fd, seg + off, n - off, (off_t)off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);

	/* A live producer holds its lock (ring_layout.h); without it the producer is gone. */
	int live = -1;
	if (mode & MODE_LIVE) {
		char file[160];
		snprintf(file, sizeof(file), "/dev/shm%s", path);
		live = open(file, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RING_LOCK_PRODUCER, .l_len = 1 };
		struct flock fl_live = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RING_LOCK_PRODUCER_LIVE, .l_len = 1 };
		if (live >= 0 && (fcntl(live, F_OFD_SETLK, &fl) < 0 || fcntl(live, F_OFD_SETLK, &fl_live) < 0)) {
			close(live);
			live = -1;
		}
	}
	read_ring(mode);
	if (live >= 0)
		close(live);
	if (mode & MODE_CREATE) {
		struct fr_ring_create_opts o = { .capacity = FR_RING_MIN_CAPACITY };
		fr_ring_t *p = NULL;
		if (fr_ring_create(&p, name, &o) == 0)
			fr_ring_close(&p);
	}
	shm_unlink(path);
	return 0;
}
