/* ring_internal.h - the process-local ring handle, shared by ring.c and frame.c only. */
#ifndef FRAMERING_RING_INTERNAL_H
#define FRAMERING_RING_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "ring_layout.h"

struct ring {
	struct ring_shm_header *hdr; /* the mapping; data area at data */
	uint8_t *data;
	uint64_t capacity, mask;     /* validated copies, never re-read from the segment */
	size_t map_size;
	int fd;
	bool is_producer;
	bool read_only;              /* ring_inspect_meta's look, no side attached */
	_Atomic bool lost;           /* the peer shrank the segment: the mapping is zeros now */
	char name[RING_NAME_MAX + 1];

	/* producer */
	uint64_t tail;               /* own index; the shared one lags until publish */
	uint64_t cached_head;        /* last head seen: free space is at least this */
	uint64_t want_space;         /* what wait_for_space() waits for */
	enum ring_full_policy policy;
	bool reserved, eos_marked;
	uint64_t owner_at_wait;      /* consumer_owner when ring_wait_drained() went to sleep */
	uint64_t res_lead, res_len;  /* outstanding reservation: alignment pad, length */
	uint64_t frame_seq;          /* next frame sequence number (frame.c) */

	/* consumer */
	uint64_t head;               /* own index, includes pads already skipped */
	uint64_t head_published;
	uint64_t cached_tail;
	bool peeked, peer_gone;
	uint64_t peek_span, peek_len;

	uint64_t last_liveness_check;
	uint32_t spin_misses;        /* consecutive waits whose spin found nothing */
	uint32_t spin_skipped;       /* waits since spinning was given up */
};

void ring_publish_head(ring_t *r);
void ring_release_peek_only(ring_t *r);

#endif
