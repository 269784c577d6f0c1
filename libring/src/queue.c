/* queue.c - the data path: reserve/commit on the producer side (leases, gating, holds), peek/release for every and latest consumers. */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "platform.h"
#include "ring_internal.h"
#include "ring_layout.h"

/* ------------------------------------------------------------ who limits the producer */

uint32_t roster(const fr_ring_t *r, uint32_t *live)
{
	uint32_t all = (1u << r->max_consumers) - 1; /* max_consumers <= RING_CONSUMERS_MAX < 32 */
	uint32_t attached = atomic_load_explicit(&r->hdr->attached, memory_order_acquire) & all;
	if (live)
		*live = atomic_load_explicit(&r->hdr->live, memory_order_acquire) & attached;
	return attached;
}

/* How far behind our tail the slowest attached every-consumer is, in bytes
 * (its head is then tail - lag), or UINT64_MAX when none gates. A head that
 * cannot be (ahead of the tail, more than a lap behind, unaligned) is
 * ignored: the consumer that wrote it only loses its own records. */
uint64_t every_lag(const fr_ring_t *r)
{
	uint32_t live, every = roster(r, &live) & ~live;
	uint64_t max_lag = UINT64_MAX;
	for (; every; every &= every - 1) {
		uint64_t head = atomic_load_explicit(&r->hdr->consumers[__builtin_ctz(every)].head, memory_order_acquire);
		uint64_t lag = r->tail - head;
		if (lag > r->capacity || (head & 7) != 0)
			continue;
		if (max_lag == UINT64_MAX || lag > max_lag)
			max_lag = lag;
	}
	return max_lag;
}

/* Where the producer may write up to: one lap past the slowest every-
 * consumer; before any consumer came, under FR_RING_FULL_BLOCK, one lap past the
 * first record (the first consumer reads from there); with consumers gone,
 * where the last of them let us; with only live consumers, or none under
 * FR_RING_FULL_DROP, without limit. */
static uint64_t gate_limit(fr_ring_t *r)
{
	uint64_t lag = every_lag(r);
	if (lag != UINT64_MAX) {
		r->gate_seen = r->tail - lag + r->capacity;
		return r->gate_seen;
	}
	if (roster(r, NULL) != 0) {
		r->gate_seen = r->tail + r->capacity; /* as if they read it all: one more lap, should they all leave */
		return UINT64_MAX;
	}
	return r->policy == FR_RING_FULL_DROP ? UINT64_MAX : r->gate_seen;
}

/* Remember TAIL (a record boundary) as a lease start, and publish the oldest
 * remembered start that is still whole below the claim CLAIM: where a late
 * every-consumer begins. */
static void remember_lease_start(fr_ring_t *r, uint64_t claim)
{
	unsigned last = (r->lease_next + LEASE_HISTORY - 1) % LEASE_HISTORY;
	if (r->lease_pos[last] != r->tail || r->tail == 0) {
		r->lease_pos[r->lease_next] = r->tail;
		r->lease_index[r->lease_next] = r->index;
		r->lease_next = (r->lease_next + 1) % LEASE_HISTORY;
	}
	uint64_t oldest = r->tail, oldest_index = r->index;
	for (unsigned i = 0; i < LEASE_HISTORY; i++) {
		uint64_t pos = r->lease_pos[i];
		if (pos <= r->tail && pos + r->capacity >= claim && pos < oldest) {
			oldest = pos;
			oldest_index = r->lease_index[i];
		}
	}
	atomic_store_explicit(&r->hdr->oldest_index, oldest_index, memory_order_relaxed);
	atomic_store_explicit(&r->hdr->oldest, oldest, memory_order_release);
}

/* The span of the record a live consumer holds at HOLD (its position), read
 * from its header (DATA, or the PAD we turned it into a lap ago); 0 if the
 * hold cannot be a record's. */
static uint64_t held_span(const fr_ring_t *r, uint64_t hold)
{
	if (hold & 7)
		return 0;
	uint64_t off = hold & r->mask;
	if (off + RING_REC_HDR > r->capacity)
		return 0;
	volatile struct ring_record_header *rh = (volatile struct ring_record_header *)(r->data + off);
	uint32_t len = rh->len, type = rh->type;
	uint64_t span = type == RING_REC_DATA ? RING_REC_HDR + round8(len) : type == RING_REC_PAD ? len : 0;
	if (span < RING_REC_HDR || (span & 7) != 0 || span > r->capacity / 2 + FR_RING_MAX_ALIGN ||
	    off + span > r->capacity)
		return 0;
	return span;
}

/* Renew the lease so that [tail, tail + NEED) may be written. The claim goes
 * out first, then we look at the consumers (see ring_layout.h: a hold
 * published after our look sees the claim). Returns 0 when the lease covers
 * NEED, 1 when a held record is in the way (r->step_pos, r->step_span: step
 * over it and renew again), -EAGAIN when the every-consumers gate us. */
static int renew_lease(fr_ring_t *r, uint64_t need)
{
	uint64_t cap = r->capacity;
	uint64_t want = r->tail + (need > cap / 8 ? need : cap / 8);
	uint64_t limit = gate_limit(r);
	if (limit - r->tail < want - r->tail)
		want = limit; /* never claim past the gate: an attaching consumer starts below it */
	/* The start for late every-consumers goes out before the claim, and is
	 * whole below both the old claim and the new: a consumer that reads the
	 * two while we are stopped in between finds them agreeing (join_every). */
	remember_lease_start(r, want > r->claimed ? want : r->claimed);
	atomic_store_explicit(&r->hdr->claim, want, memory_order_relaxed);
	r->claimed = want;
	atomic_thread_fence(memory_order_seq_cst);
	limit = gate_limit(r); /* again: a consumer that attached meanwhile gates us now */
	if (limit - r->tail < want - r->tail)
		want = limit;

	/* The first held record in [tail, want), a lap on from where it was read. */
	r->step_span = 0;
	uint32_t live;
	roster(r, &live);
	for (; live; live &= live - 1) {
		uint64_t hold = atomic_load_explicit(&r->hdr->consumers[__builtin_ctz(live)].hold, memory_order_acquire);
		uint64_t span = hold ? held_span(r, hold - 1) : 0;
		if (!span)
			continue;
		uint64_t off = (hold - 1) & r->mask, tail_off = r->tail & r->mask;
		if (off < tail_off && off + span > tail_off)
			continue; /* we are past its start already: that hold came too late and is given up */
		uint64_t at = r->tail + ((off - tail_off) & r->mask);
		if (at < want) {
			want = at;
			r->step_pos = at;
			r->step_span = span;
		}
	}
	r->lease_end = want;
	if (want - r->tail >= need)
		return 0;
	return r->step_span && want == r->step_pos ? 1 : -EAGAIN;
}

/* Wake the consumers that sleep (after whatever they wait for was stored). */
static void wake_consumers(fr_ring_t *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t who = roster(r, NULL); who; who &= who - 1) {
		struct ring_consumer_slot *s = &r->hdr->consumers[__builtin_ctz(who)];
		wake_if_sleeping_fenced(&s->sleeping, &s->futex_wakes);
	}
}

/* Publish the producer's tail and wake the consumers that sleep. */
static void publish_tail(fr_ring_t *r)
{
	/* Make the record bytes visible before the tail moves. */
	atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
	wake_consumers(r);
}

/* Write a pad record of SPAN bytes at the tail (SPAN must not cross the end). */
static void write_pad(fr_ring_t *r, uint64_t span)
{
	struct ring_record_header *ph = record_at(r, r->tail);
	ph->len = (uint32_t)span;
	ph->type = RING_REC_PAD;
	r->tail += span;
}

/* Step over the held record at r->step_pos: pad up to it, turn its header
 * into a pad over it (the holder has its length and never reads it again;
 * every-consumers passed it a lap ago), and go on behind it. */
static void step_over_hold(fr_ring_t *r)
{
	uint64_t start = r->tail;
	while (r->tail < r->step_pos) {
		uint64_t to_end = r->capacity - (r->tail & r->mask);
		uint64_t gap = r->step_pos - r->tail;
		write_pad(r, gap < to_end ? gap : to_end);
	}
	write_pad(r, r->step_span);
	/* The hot lap grows by what is held in it (hot_lap_end): else a live
	 * consumer holding one of its two records leaves the producer one, the
	 * one the every-consumers are reading, and it waits for them each time. */
	uint64_t lap = r->tail & ~r->mask;
	uint64_t held = r->tail - ((start & ~r->mask) == lap ? start : lap); /* in this lap, with the pad before it */
	r->lap_held = (lap == r->lap_held_lap ? r->lap_held : 0) + held;
	r->lap_held_lap = lap;
	r->lease_end = r->tail;
	/* Published now, not with the next record: the start the next renewal
	 * offers late every-consumers must not lie past the shared tail. */
	atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
}

static bool space_ready(fr_ring_t *r)
{
	uint64_t limit = gate_limit(r);
	return limit - r->tail >= r->want_space || consumer_detached(r);
}

/* Make NEED bytes writable at the tail, waiting as the policy and timeout
 * allow. Returns 0, 1 if the tail moved (a held record was stepped over:
 * the caller lays its record out again), or a negative errno. */
static int wait_for_space(fr_ring_t *r, uint64_t need, struct deadline *dl, bool may_wait)
{
	if (r->lease_end - r->tail >= need)
		return 0; /* the fast path: nobody else's memory is touched */
	for (;;) {
		int rc = renew_lease(r, need);
		if (rc == 0)
			return 0;
		if (rc == 1) {
			step_over_hold(r);
			return 1;
		}
		if (consumer_detached(r))
			return no_consumer_error(r); /* like a pipe without a reader: nobody will make room, waiting or not */
		if (!may_wait) {
			/* A dead every-consumer gates us until it is reaped, and
			 * only a wait looks for the dead: without this a producer
			 * that never waits (FR_RING_FULL_DROP, FR_RING_NO_WAIT)
			 * would drop every record from now on, for everyone. */
			if (reap_dead_consumers(r))
				continue;
			return -EAGAIN;
		}
		r->want_space = need;
		rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits, space_ready, dl);
		if (rc < 0 && renew_lease(r, need) != 0)
			return rc;
	}
}

/* Where the hot lap ends for a record of BODY bytes aligned to ALIGN: two
 * such records (one being read while the next is written), at least
 * FR_RING_HOT_LAP_MIN so that small records still go out in batches, or
 * what fr_ring_set_hot_lap() asked for; plus the records held by live
 * consumers that were stepped over in this lap (step_over_hold). Records
 * below FR_RING_HOT_LAP_MIN_RECORD have no automatic lap: 64 B messages ran
 * slower with it. */
static uint64_t hot_lap_end(const fr_ring_t *r, uint64_t body, size_t align)
{
	uint64_t held = (r->tail & ~r->mask) == r->lap_held_lap ? r->lap_held : 0;
	if (r->hot_lap) /* any size the caller likes: past UINT64_MAX it is still the whole ring */
		return r->hot_lap > UINT64_MAX - held ? UINT64_MAX : r->hot_lap + held;
	if (body < FR_RING_HOT_LAP_MIN_RECORD)
		return UINT64_MAX;
	uint64_t two = 2 * (body + align);
	return (two > FR_RING_HOT_LAP_MIN ? two : FR_RING_HOT_LAP_MIN) + held;
}

/* The padding before a record's header at offset 0 that aligns its payload to ALIGN. */
static uint64_t front_lead(size_t align)
{
	return (align - (RING_REC_HDR & (align - 1))) & (align - 1);
}

/* The record (BODY bytes, ALIGN, LEAD before it at offset OFF) would end past
 * the hot lap, and the front of the next lap, PAD bytes on, is held by a live
 * consumer. Stepping over it would leave the next lap one free record at its
 * front, the one the every-consumers are reading now: the producer would
 * wait for them every record. Rather, let this lap grow by the held record,
 * once: the record goes at the tail (while the lap's own records come free
 * again), and the next lap grows likewise when it steps over the hold
 * (step_over_hold). Returns whether the lap grew. */
static bool grow_lap_by_front_hold(fr_ring_t *r, uint64_t off, uint64_t lead, uint64_t body, size_t align,
				   uint64_t pad)
{
	uint64_t lap = r->tail & ~r->mask;
	if (r->lap_held_lap == lap && r->lap_held)
		return false; /* grown once, or stepped over a hold already: this lap ends here */
	uint64_t end = hot_lap_end(r, body, align);
	if (renew_lease(r, pad + front_lead(align) + body) != 1 || r->step_pos - (r->tail + pad) >= end)
		return false; /* free, gated by a slow every-consumer, or held beyond the front */
	uint64_t held = r->step_pos + r->step_span - (r->tail + pad); /* with the lead before it */
	if (off + lead + body > end + held)
		return false;
	r->lap_held = held;
	r->lap_held_lap = lap;
	return true;
}

/* The record (BODY bytes, ALIGN, LEAD_HERE before it) would end past the hot lap, at offset OFF:
 * start the lap again at the front of the data area, whose lines the
 * consumers touched last, once they have released it there. Wait for that
 * up to the hot wait (never past the caller's deadline DL), and not at all
 * when the caller may not wait or the front was already late this lap.
 * Returns 1 when the tail moved (wrapped, or stepped over a held record:
 * lay the record out again), 0 to place it at the tail as usual (the rest
 * of the ring takes up the slack, or the lap grew by a held front), or a negative errno. */
static int wrap_early(fr_ring_t *r, uint64_t off, uint64_t lead_here, uint64_t body, size_t align,
		      struct deadline *dl, bool may_wait)
{
	uint64_t pad = r->capacity - off;
	uint64_t lead = front_lead(align);
	if (grow_lap_by_front_hold(r, off, lead_here, body, align, pad))
		return 0;
	bool wait = may_wait && r->hot_wait_ns > 0;
	struct deadline front = {0, 0};
	if (wait) {
		uint64_t own = deadline_at(dl), until = plat_now_ns() + (uint64_t)r->hot_wait_ns;
		front.timeout_ns = r->hot_wait_ns;
		front.at = until < own ? until : own;
	}
	int rc = wait_for_space(r, pad + lead + body, &front, wait);
	if (rc == 1)
		return 1;
	if (rc == 0) {
		write_pad(r, pad);
		publish_tail(r);
		return 1;
	}
	/* -ENOTCONN, -EOWNERDEAD: the last consumer left or died, the front
	 * will not come free; but the record may still fit at the tail, where
	 * it goes without a hot lap (and the death is reported once the ring is
	 * full, as it is without one: no_consumer_error). */
	if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -ENOTCONN || rc == -EOWNERDEAD) {
		r->hot_spilled = true;
		return 0;
	}
	return rc;
}

/* How often a producer that only a release can make room for looks again. */
#define HOLD_POLL_NS (1000 * 1000ll)

static bool never_ready(fr_ring_t *r)
{
	(void)r;
	return false;
}

/* Stepping over the live consumers' holds took the tail round the whole
 * ring within one reserve: every span between two holds is too short for
 * the record, and only a release (or a holder leaving) makes room. Live
 * consumers do not wake the producer when they release, as nothing else
 * waits on them, so look again after HOLD_POLL_NS, within the caller's
 * deadline DL. Returns 0 to look again, -EAGAIN when the caller may not
 * wait, or wait_until's errors (-ETIMEDOUT at the deadline). */
static int wait_for_a_release(fr_ring_t *r, struct deadline *dl, bool may_wait)
{
	if (!may_wait)
		return -EAGAIN;
	uint64_t until = deadline_at(dl), now = plat_now_ns();
	if (now >= until)
		return -ETIMEDOUT;
	struct deadline tick = {until - now < HOLD_POLL_NS ? (int64_t)(until - now) : HOLD_POLL_NS, 0};
	int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits, never_ready, &tick);
	/* A holder that died was reaped, its hold with it: look again. */
	return rc == -ETIMEDOUT || rc == -EOWNERDEAD ? 0 : rc;
}

static int check_producer(const fr_ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	return r->detached ? -ESHUTDOWN : 0;
}

RING_API int fr_ring_set_hot_lap(fr_ring_t *r, uint64_t bytes, int64_t wait_ns)
{
	int rc = check_producer(r);
	if (rc < 0)
		return rc;
	r->hot_lap = bytes;
	r->hot_wait_ns = wait_ns < 0 ? FR_RING_HOT_WAIT_DEFAULT_NS : wait_ns;
	return 0;
}

RING_API size_t fr_ring_max_record(const fr_ring_t *r)
{
	if (!r)
		return 0; /* no ring: no record fits (a size_t has no room for -EINVAL) */
	uint64_t m = r->capacity / 2;
	return (size_t)(m > UINT32_MAX - 4096 ? UINT32_MAX - 4096 : m);
}

static int reserve_unchecked(fr_ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns)
{
	if (!data)
		return -EINVAL;
	*data = NULL;
	int rc = check_producer(r);
	if (rc < 0)
		return rc;
	if (r->reserved)
		return -EALREADY;
	if (r->eos_marked)
		return -EPIPE;
	if (align > FR_RING_MAX_ALIGN || (align & (align - 1)) != 0)
		return -EINVAL;
	if (align < 8)
		align = 8; /* records are 8-byte aligned anyway */
	if (len > fr_ring_max_record(r))
		return -EMSGSIZE;
	bool drop = r->policy == FR_RING_FULL_DROP;
	bool may_wait = !drop && timeout_ns != 0;
	struct deadline dl = {timeout_ns, 0};
	uint64_t body = RING_REC_HDR + round8(len);
	/* The worst case starts at offset 0 after a wrap: it must fit then. */
	if (align - RING_REC_HDR + body > r->capacity)
		return -EMSGSIZE;

	uint64_t lap_start = r->tail;
	for (;;) {
		if (r->tail - lap_start >= r->capacity) {
			/* Without it a producer that only live consumers read stepped
			 * over their holds for ever, whatever its timeout. */
			if ((rc = wait_for_a_release(r, &dl, may_wait)) < 0)
				break;
			lap_start = r->tail;
		}
		uint64_t off = r->tail & r->mask;
		/* Padding so that the payload (after the 8-byte header) is aligned. */
		uint64_t lead = (align - ((off + RING_REC_HDR) & (align - 1))) & (align - 1);
		/* Past the hot lap: start it again at the front if the record fits
		 * there below the tail's offset (so the two never overlap). */
		if (!r->hot_spilled && r->hot_lap != FR_RING_HOT_LAP_OFF && off + lead + body > hot_lap_end(r, body, align) &&
		    off + lead + body <= r->capacity && off >= front_lead(align) + body) {
			rc = wrap_early(r, off, lead, body, align, &dl, may_wait);
			if (rc == 1)
				continue;
			if (rc < 0)
				break;
		}
		if (off + lead + body <= r->capacity) {
			rc = wait_for_space(r, lead + body, &dl, may_wait);
			if (rc == 1)
				continue; /* stepped over a held record: lay out again */
			if (rc < 0)
				break;
			r->reserved = true;
			r->res_lead = lead;
			r->res_len = len;
			*data = r->data + off + lead + RING_REC_HDR;
			return 0;
		}
		/* The record would cross the end: pad to the end first, so every
		 * payload is one contiguous span. The pad is published on its own,
		 * so a record of up to capacity/2 fits once the consumers move on. */
		uint64_t pad = r->capacity - off;
		rc = wait_for_space(r, pad, &dl, may_wait);
		if (rc == 1)
			continue;
		if (rc < 0)
			break;
		write_pad(r, pad);
		publish_tail(r);
		r->hot_spilled = false; /* a new lap: the front may be waited for again */
	}
	if (drop && rc == -EAGAIN) {
		fr_ring_note_drop(r, len);
		return -ENOBUFS;
	}
	return rc;
}

static int commit_unchecked(fr_ring_t *r, size_t len)
{
	int rc = check_producer(r);
	if (rc < 0)
		return rc == -EPERM ? -EINVAL : rc;
	if (!r->reserved || len > r->res_len)
		return -EINVAL;
	if (r->eos_marked) {
		r->reserved = false; /* nothing follows end of stream */
		return -EPIPE;
	}
	if (r->res_lead)
		write_pad(r, r->res_lead);
	uint64_t pos = r->tail;
	struct ring_record_header *rh = record_at(r, pos);
	rh->len = (uint32_t)len;
	rh->type = RING_REC_DATA;
	r->tail += RING_REC_HDR + round8(len);
	r->reserved = false;
	/* The record bytes, then the tail (every-consumers), then the newest
	 * record's place (live consumers: newest always lies below the tail
	 * they read after it), then the count they wait on, then the wake. */
	atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
	atomic_store_explicit(&r->hdr->newest_index, r->index, memory_order_relaxed);
	atomic_store_explicit(&r->hdr->newest, pos, memory_order_release);
	r->index++;
	counter_add(&r->hdr->bytes_written, len);
	atomic_store_explicit(&r->hdr->records_written, r->index, memory_order_release);
	wake_consumers(r);
	return 0;
}

RING_API int fr_ring_abort(fr_ring_t *r)
{
	int rc = check_producer(r);
	if (rc < 0)
		return rc; /* detached: -ESHUTDOWN, as every call but close and the getters */
	if (!r->reserved)
		return -EINVAL;
	r->reserved = false;
	return 0;
}

RING_API int fr_ring_write(fr_ring_t *r, const void *data, size_t len, int64_t timeout_ns)
{
	void *dst;
	if (!data && len)
		return -EINVAL;
	int rc = fr_ring_reserve(r, len, 8, &dst, timeout_ns);
	if (rc < 0)
		return rc;
	if (len)
		memcpy(dst, data, len);
	return fr_ring_commit(r, len);
}

/* Publish end of stream of kind HOW (RING_EOS_*). A consumer reads eos,
 * then the tail again: records committed before this store are all seen
 * before end of stream is reported, and whatever the producer wrote about
 * the end before it (eos_error, eos_message) is visible with it. */
static void store_eos(fr_ring_t *r, uint32_t how)
{
	r->eos_marked = true;
	atomic_store_explicit(&r->hdr->eos, how, memory_order_release);
	publish_tail(r); /* wakes every sleeping consumer */
}

/* MESSAGE NULL: a clean end; else an error end with ERR. */
static int mark_eos_unchecked(fr_ring_t *r, int err, const char *message)
{
	int rc = check_producer(r);
	if (rc < 0)
		return rc;
	if (r->eos_marked)
		return message ? -EALREADY : 0; /* the first mark stands */
	if (message) {
		r->hdr->eos_error = err < 0 && err >= -4095 ? err : -EIO;
		size_t n = strnlen(message, FR_RING_EOS_MESSAGE_MAX - 1);
		memcpy(r->hdr->eos_message, message, n);
		memset(r->hdr->eos_message + n, 0, FR_RING_EOS_MESSAGE_MAX - n);
	}
	store_eos(r, message ? RING_EOS_ERROR : RING_EOS_CLEAN);
	return 0;
}

void mark_eos_replaced(fr_ring_t *r)
{
	store_eos(r, RING_EOS_REPLACED);
}

/* What a consumer that has seen end of stream returns from now on. */
static int stream_ended(const fr_ring_t *r)
{
	return r->eos_kind == RING_EOS_ERROR ? -EREMOTEIO : r->eos_kind == RING_EOS_REPLACED ? -ESTALE : -ENODATA;
}

RING_API void fr_ring_note_drop(fr_ring_t *r, size_t len)
{
	if (check_producer(r) < 0)
		return;
	counter_add(&r->hdr->records_dropped, 1);
	counter_add(&r->hdr->bytes_dropped, len);
}

RING_API void fr_ring_set_full_policy(fr_ring_t *r, enum fr_ring_full_policy policy)
{
	if (check_producer(r) < 0 || (policy != FR_RING_FULL_BLOCK && policy != FR_RING_FULL_DROP))
		return;
	r->policy = policy;
	r->lease_end = r->tail; /* the gate may change with the policy: look again */
	atomic_store_explicit(&r->hdr->on_full, (uint32_t)policy, memory_order_relaxed);
}

/* ------------------------------------------------------------ every-consumer (lossless) */

void publish_head(fr_ring_t *r)
{
	if (r->head == r->head_published)
		return;
	/* Done reading before the producer may overwrite: release. */
	atomic_store_explicit(&r->slot->head, r->head, memory_order_release);
	atomic_store_explicit(&r->slot->next_index, r->next_index, memory_order_relaxed);
	r->head_published = r->head;
	wake_if_sleeping(&r->hdr->producer_sleeping, &r->hdr->producer_futex_wakes);
}

/* Refresh the cached tail, checking it first: cached_tail only ever holds
 * a tail at most one capacity ahead of head, so walking up to it ends. */
static int load_tail(fr_ring_t *r)
{
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	if (tail - r->head > r->capacity || (tail & 7) != 0)
		return -EBADMSG;
	r->cached_tail = tail;
	return 0;
}

/* Whether waking up is worth it: something new, or end of stream. The tail
 * is only compared here; load_tail() checks it before anything uses it. */
static bool data_ready(fr_ring_t *r)
{
	return atomic_load_explicit(&r->hdr->tail, memory_order_acquire) != r->head ||
	       atomic_load_explicit(&r->hdr->eos, memory_order_relaxed);
}

/* Read and check the record header at POS (head <= POS < cached_tail). Pads
 * are returned with *is_data false. Loads are done once into locals, so the
 * producer rewriting the header meanwhile cannot change what was checked. */
static int read_record(const fr_ring_t *r, uint64_t pos, uint32_t *len, uint64_t *span, bool *is_data)
{
	uint64_t off = pos & r->mask;
	uint64_t avail = r->cached_tail - pos;
	if (avail < RING_REC_HDR || off + RING_REC_HDR > r->capacity)
		return -EBADMSG;
	volatile struct ring_record_header *rh = (volatile struct ring_record_header *)(r->data + off);
	uint32_t l = rh->len, type = rh->type;
	uint64_t s;
	if (type == RING_REC_DATA) {
		s = RING_REC_HDR + round8(l);
		*is_data = true;
	} else if (type == RING_REC_PAD) {
		s = l;
		*is_data = false;
		if (s < RING_REC_HDR || (s & 7) != 0)
			return -EBADMSG;
	} else {
		return -EBADMSG;
	}
	if (s > avail || off + s > r->capacity)
		return -EBADMSG;
	*len = l;
	*span = s;
	return 0;
}

/* What an empty ring means once nothing more is there: end of stream (only
 * once every record before it is consumed: read eos, then the tail once
 * more), the producer's death, or "wait". Returns 1 to look again. */
static int when_empty(fr_ring_t *r, bool (*more)(fr_ring_t *r))
{
	uint32_t eos = atomic_load_explicit(&r->hdr->eos, memory_order_acquire);
	if (eos) {
		if (more(r))
			return 1;
		r->eos_seen = true;
		r->eos_kind = eos;
		return stream_ended(r);
	}
	if (r->peer_gone)
		return -EOWNERDEAD;
	return 0;
}

/* A consumer found nothing new: report end of stream or the producer's death,
 * or sleep until READY (MORE_NOW is READY without end of stream). Returns 0
 * to look again, or the negative errno to return. A producer that died may
 * have committed more just before: that is drained first (the deadline drops
 * to "now"), and the death is reported on every call after. */
static int await_more(fr_ring_t *r, ready_fn more_now, ready_fn ready, struct deadline *dl)
{
	int rc = when_empty(r, more_now);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	if (dl->timeout_ns == 0)
		rc = peer_dead(r) ? -EOWNERDEAD : -EAGAIN;
	else
		rc = wait_until(r, &r->slot->sleeping, &r->slot->futex_waits, ready, dl);
	if (rc == -EOWNERDEAD) {
		r->peer_gone = true;
		dl->timeout_ns = 0;
		return 0;
	}
	return rc < 0 && !ready(r) ? rc : 0;
}

static bool tail_moved(fr_ring_t *r)
{
	return load_tail(r) < 0 || r->cached_tail != r->head;
}

/* Find the next data record, skipping pads; wait as allowed. */
static int next_record(fr_ring_t *r, uint32_t *len, uint64_t *span, int64_t timeout_ns)
{
	struct deadline dl = {timeout_ns, 0};
	int rc;
	if (r->eos_seen)
		return stream_ended(r);
	for (;;) {
		if (r->cached_tail == r->head && (rc = load_tail(r)) < 0)
			return rc;
		while (r->cached_tail != r->head) {
			bool is_data;
			if ((rc = read_record(r, r->head, len, span, &is_data)) < 0)
				return rc;
			if (is_data)
				return 0;
			r->head += *span; /* pad: published with the next release or before sleeping */
		}
		publish_head(r);
		if ((rc = await_more(r, tail_moved, data_ready, &dl)) < 0)
			return rc;
	}
}

/* ------------------------------------------------------------ latest-consumer (live) */

/* The newest record as of now: its position and index, read consistently.
 * A commit stores newest_index, then newest, then records_written
 * (commit_unchecked). So with records_written = W read first, an index of
 * W - 1 says the position is that record's (a newer position, loaded with
 * acquire, would come with its newer index). A larger index is a commit
 * under way: its index may be out with the old position still there, and
 * the two cannot be told apart until records_written moves (the producer
 * may be stopped right there). Returns 0, or 1 for a commit under way
 * (*written is then what records_written moves past when it is done). */
static int load_newest(const fr_ring_t *r, uint64_t *pos, uint64_t *index, uint64_t *written)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		*written = atomic_load_explicit(&r->hdr->records_written, memory_order_acquire);
		*pos = atomic_load_explicit(&r->hdr->newest, memory_order_acquire);
		*index = atomic_load_explicit(&r->hdr->newest_index, memory_order_acquire);
		if (*index + 1 == *written)
			return 0;
		plat_cpu_relax();
	}
	return 1;
}

/* The index a live consumer waits for: past the last one delivered, and
 * past a newest one that was gone when we reached for it. */
static uint64_t latest_wanted(const fr_ring_t *r)
{
	uint64_t want = r->next_index > r->gone_index ? r->next_index : r->gone_index;
	/* A commit under way is waited for only while its producer lives. */
	return !r->peer_gone && r->commit_index > want ? r->commit_index : want;
}

static bool newer_record_now(fr_ring_t *r)
{
	return atomic_load_explicit(&r->hdr->records_written, memory_order_acquire) > latest_wanted(r);
}

static bool newer_record(fr_ring_t *r)
{
	return newer_record_now(r) || atomic_load_explicit(&r->hdr->eos, memory_order_relaxed);
}

/* Take the newest record and hold it (see ring_layout.h: the hold goes out,
 * then the claim is checked). A newest record that is gone, or that the
 * producer may already be writing over, is given up: returns 1, and only a
 * newer one is waited for (the producer may be stopped right there). So is
 * a commit under way: returns 1, and that commit is waited for. */
static int hold_newest(fr_ring_t *r, uint32_t *len, uint64_t *span, uint64_t *skipped)
{
	uint64_t pos, index, written;
	if (load_newest(r, &pos, &index, &written) != 0 && !r->peer_gone) {
		r->commit_index = written; /* wait for the commit under way, then take it */
		return 1;
	}
	/* (A producer that died inside a commit never ends it: the position
	 * there is the newest there will be, whichever index goes with it.) */
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	uint64_t off = pos & r->mask;
	if ((pos & 7) != 0 || off + RING_REC_HDR > r->capacity || index < r->next_index)
		return -EBADMSG;
	r->gone_index = index + 1; /* unless we get to hold it below */
	if (tail - pos > r->capacity || tail - pos < RING_REC_HDR)
		return 1; /* lapped, or stepped over (the tail moved past its place a lap on) */
	volatile struct ring_record_header *rh = (volatile struct ring_record_header *)(r->data + off);
	uint32_t l = rh->len, type = rh->type;
	uint64_t s = RING_REC_HDR + round8(l);
	atomic_store_explicit(&r->slot->hold, pos + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->claim, memory_order_relaxed) > pos + r->capacity) {
		atomic_store_explicit(&r->slot->hold, 0, memory_order_release);
		return 1; /* the producer is on its way over it */
	}
	/* What we read before the hold is what the producer left: it could not
	 * have written over it without claiming past it first. */
	if (type != RING_REC_DATA || s > tail - pos || off + s > r->capacity) {
		atomic_store_explicit(&r->slot->hold, 0, memory_order_release);
		return -EBADMSG;
	}
	*len = l;
	*span = s;
	*skipped = index - r->next_index;
	r->head = pos;
	r->next_index = index + 1;
	atomic_store_explicit(&r->slot->next_index, r->next_index, memory_order_relaxed); /* its lag: 0 now */
	return 0;
}

static int latest_record(fr_ring_t *r, uint32_t *len, uint64_t *span, uint64_t *skipped, int64_t timeout_ns)
{
	struct deadline dl = {timeout_ns, 0};
	int rc;
	if (r->eos_seen)
		return stream_ended(r);
	for (unsigned let_go = 0;;) {
		if (newer_record_now(r)) {
			rc = hold_newest(r, len, span, skipped);
			if (rc <= 0)
				return rc;
			/* Each let-go waits for a newer record; a producer that keeps
			 * us from ever holding one is not a producer we can read. */
			if (++let_go >= 100000)
				return -EBADMSG;
			plat_cpu_relax();
			continue;
		}
		if ((rc = await_more(r, newer_record_now, newer_record, &dl)) < 0)
			return rc;
	}
}

/* ------------------------------------------------------------ both kinds of consumer */

static int check_consumer(const fr_ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	return r->detached ? -ESHUTDOWN : 0;
}

static int peek_record(fr_ring_t *r, const void **data, size_t *len, uint64_t *skipped, int64_t timeout_ns)
{
	uint32_t l;
	uint64_t span, n = 0;
	int rc = r->mode == RING_MODE_LATEST ? latest_record(r, &l, &span, &n, timeout_ns)
					     : next_record(r, &l, &span, timeout_ns);
	if (rc < 0)
		return rc;
	if (n) {
		counter_add(&r->slot->records_skipped, n);
		if (skipped)
			*skipped = n;
	}
	r->peeked = true;
	r->peek_span = span;
	r->peek_len = l;
	*data = r->data + (r->head & r->mask) + RING_REC_HDR;
	*len = l;
	return 0;
}

static int peek_unchecked(fr_ring_t *r, const void **data, size_t *len, int64_t timeout_ns)
{
	if (!data || !len)
		return -EINVAL;
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	return peek_record(r, data, len, NULL, timeout_ns);
}

static int release_unchecked(fr_ring_t *r)
{
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (!r->peeked)
		return -EINVAL;
	r->peeked = false;
	counter_add(&r->slot->records_read, 1);
	counter_add(&r->slot->bytes_read, r->peek_len);
	if (r->mode == RING_MODE_LATEST) {
		/* Done reading: the producer may write over it from now on. */
		atomic_store_explicit(&r->slot->hold, 0, memory_order_release);
		return 0;
	}
	r->head += r->peek_span;
	r->next_index++;
	publish_head(r);
	return 0;
}

/* Forget a peek without consuming the record: the next peek returns it again
 * (a LATEST consumer: the newest record, which is this one unless a newer one
 * came or the producer wrote over it once the hold was dropped). */
static void unpeek(fr_ring_t *r)
{
	r->peeked = false;
	if (r->mode == RING_MODE_LATEST) {
		r->next_index--;
		r->gone_index = r->next_index; /* hold_newest() left it one past this record */
		atomic_store_explicit(&r->slot->hold, 0, memory_order_release);
	}
}

static int unpeek_unchecked(fr_ring_t *r)
{
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (!r->peeked)
		return -EINVAL;
	unpeek(r);
	return 0;
}

static int64_t skip_to_latest_unchecked(fr_ring_t *r)
{
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	if (r->eos_seen || r->mode == RING_MODE_LATEST)
		return 0; /* a live consumer always takes the newest: nothing to skip ahead of time */
	if ((rc = load_tail(r)) < 0)
		return rc;
	/* Walk to the newest data record; everything before it is discarded.
	 * The walk ends: cached_tail is at most one capacity ahead, and every
	 * record checked spans at least 8 bytes. */
	uint64_t pos = r->head, newest = UINT64_MAX;
	uint64_t skipped = 0, skipped_bytes = 0, last_len = 0;
	while (pos != r->cached_tail) {
		uint32_t l;
		uint64_t span;
		bool is_data;
		if ((rc = read_record(r, pos, &l, &span, &is_data)) < 0)
			return rc;
		if (is_data) {
			if (newest != UINT64_MAX) {
				skipped++;
				skipped_bytes += last_len;
			}
			newest = pos;
			last_len = l;
		}
		pos += span;
	}
	if (newest == UINT64_MAX)
		newest = pos; /* only pads: consume them all */
	r->head = newest;
	if (skipped) {
		r->next_index += skipped;
		counter_add(&r->slot->records_skipped, skipped);
		counter_add(&r->slot->bytes_skipped, skipped_bytes);
	}
	publish_head(r);
	return (int64_t)skipped;
}

RING_API int fr_ring_peek_latest(fr_ring_t *r, const void **data, size_t *len, uint64_t *skipped,
			      int64_t timeout_ns)
{
	if (!data || !len)
		return -EINVAL;
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	if (skipped)
		*skipped = 0;
	if (r->mode == RING_MODE_LATEST) {
		rc = peek_record(r, data, len, skipped, timeout_ns);
		return mapping_lost(r) ? -EFAULT : rc;
	}
	int64_t n = fr_ring_skip_to_latest(r);
	if (n < 0)
		return (int)n;
	rc = fr_ring_peek(r, data, len, timeout_ns);
	if (rc == 0 && n == 0) {
		/* We may have waited: take what piled up meanwhile into account. */
		unpeek(r);
		n = fr_ring_skip_to_latest(r);
		if (n < 0)
			return (int)n;
		rc = fr_ring_peek(r, data, len, 0);
	}
	if (rc == 0 && skipped)
		*skipped = (uint64_t)n;
	return rc;
}

RING_API ssize_t fr_ring_read(fr_ring_t *r, void *buf, size_t buflen, int64_t timeout_ns)
{
	const void *data;
	size_t len;
	if (!buf && buflen)
		return -EINVAL;
	int rc = fr_ring_peek(r, &data, &len, timeout_ns);
	if (rc < 0)
		return rc;
	if (len > buflen) {
		unpeek(r);
		return -EMSGSIZE;
	}
	if (len) /* BUF may be NULL for an empty record: memcpy to NULL is undefined even for 0 bytes */
		memcpy(buf, data, len);
	fr_ring_release(r);
	return (ssize_t)len;
}

/* ------------------------------------------------------------ checked entry points */

/* A peer that shrank the segment under us turned our mapping into zero
 * pages (plat_guard_mapping): whatever a call computed from them, -EFAULT
 * says what happened, on this call and every later one. */

RING_API int fr_ring_reserve(fr_ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns)
{
	int rc = reserve_unchecked(r, len, align, data, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_commit(fr_ring_t *r, size_t len)
{
	int rc = commit_unchecked(r, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_mark_eos(fr_ring_t *r)
{
	int rc = mark_eos_unchecked(r, 0, NULL);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_mark_eos_error(fr_ring_t *r, int err, const char *message)
{
	int rc = mark_eos_unchecked(r, err, message ? message : "");
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_peek(fr_ring_t *r, const void **data, size_t *len, int64_t timeout_ns)
{
	int rc = peek_unchecked(r, data, len, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_release(fr_ring_t *r)
{
	int rc = release_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_unpeek(fr_ring_t *r)
{
	int rc = unpeek_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int64_t fr_ring_skip_to_latest(fr_ring_t *r)
{
	int64_t rc = skip_to_latest_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
