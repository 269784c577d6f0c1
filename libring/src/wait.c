/* wait.c - how a side waits for its peer without polling: spin, futex sleep, wake-ups, peer liveness. */
#include "ring.h"

#include <errno.h>
#include <limits.h>

#include "platform.h"
#include "ring_internal.h"
#include "ring_layout.h"

/* How often a non-blocking caller that finds nothing may pay for a liveness check. */
#define LIVENESS_CHECK_INTERVAL_NS (100 * 1000000ull)
/* Spins on the other side's index before going to sleep: a peer that is
 * about to publish is cheaper to wait for than a futex round trip. A side
 * whose spins keep failing (a consumer that sleeps between frames) stops
 * spinning, because there the spin only adds to the wake-up latency; it
 * tries again every SPIN_RETRY_EVERY waits in case the pace changed. */
#define SPIN_BEFORE_SLEEP 64
#define SPIN_MISSES_MAX 4
#define SPIN_RETRY_EVERY 16

/* ------------------------------------------------------------ waiting */

/* Whether a liveness look is due (one per LIVENESS_CHECK_INTERVAL_NS). */
static bool liveness_due(fr_ring_t *r)
{
	uint64_t now = plat_now_ns();
	if (now - r->last_liveness_check < LIVENESS_CHECK_INTERVAL_NS)
		return false;
	r->last_liveness_check = now;
	return r->fd >= 0;
}

/* Take the dead off the roster (a clean detach took itself off); the others
 * go on. Returns whether any was taken off. */
static bool reap_all_dead(fr_ring_t *r)
{
	bool reaped = false;
	for (uint32_t who = roster(r, NULL); who; who &= who - 1)
		reaped |= reap_if_dead(r, (unsigned)__builtin_ctz(who));
	return reaped;
}

bool reap_dead_consumers(fr_ring_t *r)
{
	return liveness_due(r) && reap_all_dead(r);
}

bool peer_dead(fr_ring_t *r)
{
	if (!liveness_due(r))
		return false;
	/* Only the last reader's death is the producer's business: like a
	 * pipe's reader dying. */
	if (r->is_producer)
		return reap_all_dead(r) && roster(r, NULL) == 0;
	/* A ring under a name got its producer's lock before it got the name. */
	return plat_byte_locked(r->fd, r->producer_lock) == 0;
}

bool reap_if_dead(fr_ring_t *r, unsigned i)
{
	/* A live consumer holds this byte: then we cannot take it. While we
	 * hold it, no new consumer can take the slot and be taken off by us. */
	if (plat_lock_byte(r->fd, RING_LOCK_CONSUMER + i) < 0)
		return false;
	uint32_t bit = 1u << i;
	bool was_on = atomic_fetch_and(&r->hdr->attached, ~bit) & bit;
	atomic_fetch_and(&r->hdr->live, ~bit);
	struct ring_consumer_slot *s = &r->hdr->consumers[i];
	atomic_store_explicit(&s->hold, 0, memory_order_relaxed);
	atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
	if (was_on) {
		counter_add(&r->hdr->consumers_reaped, 1);
		/* Remembered, not reported once: whichever call happens to reap
		 * the last consumer (a wait for the front of a hot lap, a
		 * non-waiting reserve, wait_consumers), every later "nobody will
		 * make room" says it died. */
		uint64_t attaches = atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed);
		if (roster(r, NULL) == 0) { /* read after ATTACHES: one that joins now is counted past it */
			r->last_died = true;
			r->died_attaches = attaches;
		}
	}
	plat_unlock_byte(r->fd, RING_LOCK_CONSUMER + i);
	r->lease_end = r->tail; /* the gate and the holds changed: look again before writing on */
	return was_on;
}

uint64_t deadline_at(struct deadline *d)
{
	if (!d->at)
		d->at = d->timeout_ns < 0 ? UINT64_MAX : plat_now_ns() + (uint64_t)d->timeout_ns;
	return d->at;
}

/* fr_ring_interrupt() was called: consume it. */
static bool take_interrupt(fr_ring_t *r)
{
	return atomic_load_explicit(&r->interrupted, memory_order_relaxed) &&
	       atomic_exchange(&r->interrupted, false);
}

int wait_until(fr_ring_t *r, _Atomic uint32_t *word, _Atomic uint64_t *wait_counter, ready_fn ready,
	       struct deadline *dl)
{
	if (take_interrupt(r))
		return -ECANCELED;
	if (r->spin_misses < SPIN_MISSES_MAX || ++r->spin_skipped % SPIN_RETRY_EVERY == 0) {
		for (int i = 0; i < SPIN_BEFORE_SLEEP; i++) {
			if (ready(r)) {
				r->spin_misses = 0;
				return 0;
			}
			plat_cpu_relax();
		}
		if (r->spin_misses < SPIN_MISSES_MAX)
			r->spin_misses++;
	}
	if (mapping_lost(r))
		return -EFAULT; /* nothing will ever change in zero pages */
	uint64_t deadline = deadline_at(dl);
	uint64_t now = plat_now_ns();
	if (now >= deadline)
		return -ETIMEDOUT;
	if (peer_dead(r))
		return -EOWNERDEAD;
	/* Announce the sleep, then look once more (see ring_layout.h: the other
	 * side stores its index, fences, then reads this word). fr_ring_interrupt()
	 * does the same with its flag: it sets the flag, then clears this word
	 * and wakes, so either we see the flag here or it sees the word. */
	atomic_store_explicit(word, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (ready(r) || atomic_load_explicit(&r->interrupted, memory_order_relaxed)) {
		atomic_store_explicit(word, 0, memory_order_relaxed);
		return take_interrupt(r) ? -ECANCELED : 0;
	}
	uint64_t left = deadline - now; /* deadline may be UINT64_MAX: stay unsigned */
	int64_t slice = left > (uint64_t)LIVENESS_SLICE_NS ? LIVENESS_SLICE_NS : (int64_t)left;
	counter_add(wait_counter, 1);
	int rc = plat_futex_wait(word, 1, slice);
	atomic_store_explicit(word, 0, memory_order_relaxed);
	if (take_interrupt(r))
		return -ECANCELED;
	if (rc == -EINTR)
		return -EINTR;
	return 0;
}

void wake_if_sleeping(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter)
{
	atomic_thread_fence(memory_order_seq_cst);
	wake_if_sleeping_fenced(word, wake_counter);
}

void wake_if_sleeping_fenced(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter)
{
	if (atomic_load_explicit(word, memory_order_relaxed) &&
	    atomic_exchange_explicit(word, 0, memory_order_relaxed)) {
		plat_futex_wake(word, 1);
		counter_add(wake_counter, 1);
	}
}

RING_API int fr_ring_interrupt(fr_ring_t *r)
{
	if (!r)
		return -EINVAL;
	/* Only atomics and one system call: fine in a signal handler. */
	atomic_store(&r->interrupted, true);
	_Atomic uint32_t *word = r->is_producer ? &r->hdr->producer_sleeping : &r->slot->sleeping;
	if (!r->read_only && atomic_exchange(word, 0))
		plat_futex_wake(word, INT_MAX);
	return 0;
}

/* Whether consumers have been attached and none is now (a dead one is the
 * liveness check's business: it stays on the roster until reaped). */
bool consumer_detached(fr_ring_t *r)
{
	return roster(r, NULL) == 0 && atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) > 0;
}

int no_consumer_error(fr_ring_t *r)
{
	bool died = r->last_died &&
		    atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) == r->died_attaches;
	return died ? -EOWNERDEAD : -ENOTCONN;
}

/* Everything committed has been read by every attached every-consumer (live
 * consumers take what they want and leave the rest). -1: nobody is attached. */
static int all_read(fr_ring_t *r)
{
	uint32_t attached = roster(r, NULL);
	uint64_t lag = every_lag(r);
	if (!attached) {
		/* Nobody now: drained if nothing was ever written for anybody, or
		 * if the last every-consumer to leave had read it all. */
		if (atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) == 0)
			return r->tail == 0 ? 1 : -1;
		return atomic_load_explicit(&r->hdr->last_head, memory_order_relaxed) == r->tail ? 1 : -1;
	}
	return lag == 0 || lag == UINT64_MAX;
}

static bool drained_or_roster_changed(fr_ring_t *r)
{
	return all_read(r) == 1 || roster(r, NULL) != r->roster_at_wait ||
	       atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) != r->gate_at_wait;
}

static int wait_drained_unchecked(fr_ring_t *r, int64_t timeout_ns)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	if (r->detached)
		return -ESHUTDOWN;
	struct deadline dl = {timeout_ns, 0};
	for (;;) {
		int done = all_read(r);
		if (done == 1)
			return 0;
		if (done < 0 && consumer_detached(r))
			return no_consumer_error(r); /* they left (or died) with records unread */
		if (timeout_ns == 0) {
			/* Only a wait looks for the dead otherwise: a caller that
			 * polls would hear "not yet" for ever from a dead consumer. */
			if (peer_dead(r))
				return -EOWNERDEAD;
			return -EAGAIN;
		}
		r->roster_at_wait = roster(r, NULL);
		r->gate_at_wait = atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed);
		int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits,
				    drained_or_roster_changed, &dl);
		if (rc < 0 && all_read(r) != 1)
			return rc;
	}
}

static bool enough_consumers(fr_ring_t *r)
{
	return (unsigned)__builtin_popcount(roster(r, NULL)) >= r->want_consumers;
}

static int wait_consumers_unchecked(fr_ring_t *r, unsigned n, int64_t timeout_ns)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	if (r->detached)
		return -ESHUTDOWN;
	if (n > r->max_consumers)
		return -EINVAL;
	struct deadline dl = {timeout_ns, 0};
	r->want_consumers = n;
	for (;;) {
		/* A consumer that died is not attached, though it stays on the
		 * roster until reaped: a pipeline waiting for its lossless
		 * consumers must not start without one of them. */
		reap_all_dead(r);
		if (enough_consumers(r))
			return 0;
		if (timeout_ns == 0)
			return -EAGAIN;
		/* Woken by every attach (fr_ring_attach wakes a sleeping producer). */
		int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits, enough_consumers, &dl);
		/* -EOWNERDEAD: the last consumer died meanwhile. For this wait
		 * that is one fewer attached, not an end: wait on for N. */
		if (rc < 0 && rc != -EOWNERDEAD && !enough_consumers(r))
			return rc;
	}
}

RING_API int fr_ring_wait_consumers(fr_ring_t *r, unsigned n, int64_t timeout_ns)
{
	int rc = wait_consumers_unchecked(r, n, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_wait_drained(fr_ring_t *r, int64_t timeout_ns)
{
	int rc = wait_drained_unchecked(r, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
