/* ring_internal.h - the process-local ring handle and the helpers the library's files share; never installed. */
#ifndef FRAMERING_RING_INTERNAL_H
#define FRAMERING_RING_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "ring_layout.h"

/* How many lease starts the producer remembers: where a late every-consumer
 * may start (the oldest of them still whole). A lease covers at least an
 * eighth of the ring, so 16 cover more than a lap. */
#define LEASE_HISTORY 16

struct fr_ring {
	struct ring_shm_header *hdr; /* the mapping; data area at data */
	uint8_t *data;
	uint64_t capacity, mask;     /* validated copies, never re-read from the segment */
	size_t map_size;
	unsigned max_consumers;      /* validated copy */
	int fd;                      /* holds this side's liveness lock; -1 once detached */
	bool is_producer;
	bool read_only;              /* fr_ring_inspect_meta's look, no side attached */
	bool detached;               /* fr_ring_detach() ran: only close and getters remain */
	_Atomic bool lost;           /* the peer shrank the segment: the mapping is zeros now */
	_Atomic bool interrupted;    /* fr_ring_interrupt(): the current or next wait returns -ECANCELED */
	char name[FR_RING_NAME_MAX + 1];

	/* producer */
	uint64_t tail;               /* own index; the shared one lags until publish */
	uint64_t lease_end;          /* [tail, lease_end) may be written without looking at anyone */
	uint64_t claimed;            /* the claim last published */
	uint64_t gate_seen;          /* the every-consumers' limit when one was last attached */
	uint64_t step_pos, step_span; /* a held record at the lease's end, to step over */
	uint64_t want_space;         /* what wait_for_space() waits for */
	unsigned want_consumers;     /* what fr_ring_wait_consumers() waits for */
	bool last_died;              /* the roster emptied by reaping a dead consumer ... */
	uint64_t died_attaches;      /* ... when consumer_attaches was this (nobody came since) */
	uint64_t index;              /* data records committed (the next one's index) */
	uint64_t lease_pos[LEASE_HISTORY], lease_index[LEASE_HISTORY];
	unsigned lease_next;         /* where the next lease start is remembered */
	enum fr_ring_full_policy policy;
	uint64_t hot_lap;            /* fr_ring_set_hot_lap(): 0 auto, FR_RING_HOT_LAP_OFF */
	int64_t hot_wait_ns;         /* how long a reserve waits for the front of the ring */
	bool hot_spilled;            /* the front was not freed in time: no more waiting for it this lap */
	uint64_t lap_held, lap_held_lap; /* bytes of held records stepped over in the lap starting at lap_held_lap */
	bool reserved, eos_marked;
	uint64_t gate_at_wait;       /* the gate when fr_ring_wait_drained() went to sleep */
	uint32_t roster_at_wait;     /* the roster then */
	uint64_t res_lead, res_len;  /* outstanding reservation: alignment pad, length */
	uint64_t frame_seq;          /* next frame sequence number (frame.c) */

	/* consumer */
	struct ring_consumer_slot *slot; /* ours in the consumer table */
	unsigned slot_index;
	unsigned mode;               /* RING_MODE_EVERY / RING_MODE_LATEST */
	uint64_t head;               /* own index, includes pads already skipped */
	uint64_t head_published;
	uint64_t cached_tail;        /* only ever holds a tail that passed load_tail()'s check */
	uint64_t next_index;         /* index of the next data record (EVERY), last delivered + 1 (LATEST) */
	uint64_t gone_index;         /* LATEST: the newest record was gone below this index when we reached for it */
	uint64_t commit_index;       /* LATEST: a commit was under way until records_written passes this */
	bool peeked, peer_gone;
	bool eos_seen;               /* end of stream was returned: it is returned from now on */
	uint32_t eos_kind;           /* ... and which end it was: RING_EOS_CLEAN / _ERROR / _REPLACED */
	uint64_t peek_span, peek_len;

	uint64_t last_liveness_check;
	unsigned producer_lock;      /* the producer's liveness byte, from the validated header copy */
	uint32_t spin_misses;        /* consecutive waits whose spin found nothing */
	uint32_t spin_skipped;       /* waits since spinning was given up */
};

/* segment.c: open, validate and map NAME for a read-only look (no side attached). */
int open_segment(fr_ring_t **out, const char *name);

/* meta.c: what fr_ring_end_reason() returns, read from H. */
int read_end_reason(const struct ring_shm_header *h, char *msg, size_t len);

/* queue.c: mark end of stream on producer R, telling consumers that the
 * ring was replaced under its name (RING_EOS_REPLACED). */
void mark_eos_replaced(fr_ring_t *r);

/* queue.c: publish the consumer's head (release) and wake a producer that sleeps for space. */
void publish_head(fr_ring_t *r);

/* Exported API functions are marked with this; everything else stays hidden. */
#define RING_API __attribute__((visibility("default")))

static inline uint64_t round8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

/* The lock byte that says whether the producer of header H is alive
 * (ring_layout.h: RING_LOCK_PRODUCER_LIVE, or RING_LOCK_PRODUCER for rings
 * made before it). H may be a hostile peer's: any value gives one of the two. */
static inline unsigned producer_live_byte(const struct ring_shm_header *h)
{
	return (atomic_load_explicit(&h->producer_flags, memory_order_relaxed) & RING_PRODUCER_HOLDS_LIVE)
		       ? RING_LOCK_PRODUCER_LIVE
		       : RING_LOCK_PRODUCER;
}

static inline bool mapping_lost(const fr_ring_t *r)
{
	return atomic_load_explicit(&r->lost, memory_order_relaxed);
}

static inline struct ring_record_header *record_at(const fr_ring_t *r, uint64_t pos)
{
	return (struct ring_record_header *)(r->data + (pos & r->mask));
}

/* A single-writer counter: no locked read-modify-write needed. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

/* ---- wait.c: waiting for the peer */

/* How long a waiting side sleeps before it looks at its peer's liveness:
 * a dead peer is noticed within about this long. */
#define LIVENESS_SLICE_NS (200 * 1000000ll)

/* A caller's timeout, turned into a deadline only when a wait really
 * begins: reading the clock on every call that does not wait would cost as
 * much as moving a small record. */
struct deadline {
	int64_t timeout_ns; /* < 0: forever */
	uint64_t at;        /* 0: not yet computed */
};

typedef bool (*ready_fn)(fr_ring_t *r);

/* When the deadline D falls (UINT64_MAX: never), computed now if not yet. */
uint64_t deadline_at(struct deadline *d);

/* Sleep on WORD until READY(r) holds or the slice/deadline passes.
 * Returns 0 to re-check, -ETIMEDOUT at the deadline, -EOWNERDEAD, -EINTR,
 * -EFAULT, -ECANCELED (fr_ring_interrupt). */
int wait_until(fr_ring_t *r, _Atomic uint32_t *word, _Atomic uint64_t *wait_counter, ready_fn ready,
	       struct deadline *dl);

/* The other side announced a sleep: wake it. Called after the index store;
 * the _fenced form after the caller's own seq_cst fence (one for many words). */
void wake_if_sleeping(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter);
void wake_if_sleeping_fenced(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter);

/* Whether the peer has died: it was attached and no longer holds its lock
 * (rate-limited to one look per LIVENESS_CHECK_INTERVAL). */
bool peer_dead(fr_ring_t *r);

/* The producer takes dead consumers off the roster (rate-limited like
 * peer_dead); returns whether it took any off. For a producer that does not
 * wait: a dead every-consumer's head would gate it for ever. */
bool reap_dead_consumers(fr_ring_t *r);

/* Whether the producer holds its lock; 1 yes, 0 no, or a negative errno. */
int producer_alive(const fr_ring_t *r);

/* Whether consumers have been attached and none is now (a pipe without a reader). */
bool consumer_detached(fr_ring_t *r);

/* What the producer reports when consumer_detached(): -EOWNERDEAD if the
 * last consumer died, -ENOTCONN if it detached. */
int no_consumer_error(fr_ring_t *r);

/* queue.c: how far behind the tail the slowest attached every-consumer is
 * (bytes), or UINT64_MAX when none is attached. */
uint64_t every_lag(const fr_ring_t *r);

/* The roster: bit i set for an attached consumer in slot i (LIVE: in LATEST mode). */
uint32_t roster(const fr_ring_t *r, uint32_t *live);

/* The producer takes slot I off the roster if its consumer is dead (holding
 * the slot's lock while it does, so a new consumer cannot be caught in
 * between). Returns true if it was dead. */
bool reap_if_dead(fr_ring_t *r, unsigned i);

#endif
