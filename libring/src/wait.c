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

bool peer_dead(ring_t *r)
{
	uint64_t now = plat_now_ns();
	if (now - r->last_liveness_check < LIVENESS_CHECK_INTERVAL_NS)
		return false;
	r->last_liveness_check = now;
	if (r->fd < 0)
		return false;
	if (r->is_producer) {
		/* A consumer that detached cleanly cleared its pid word first; a
		 * consumer that never came has none. Neither died. */
		if (atomic_load_explicit(&r->hdr->consumer_pid, memory_order_relaxed) == 0)
			return false;
		return plat_byte_locked(r->fd, RING_LOCK_CONSUMER) == 0;
	}
	/* A ring under a name got its producer's lock before it got the name. */
	return plat_byte_locked(r->fd, RING_LOCK_PRODUCER) == 0;
}

static uint64_t deadline_at(struct deadline *d)
{
	if (!d->at)
		d->at = d->timeout_ns < 0 ? UINT64_MAX : plat_now_ns() + (uint64_t)d->timeout_ns;
	return d->at;
}

/* ring_interrupt() was called: consume it. */
static bool take_interrupt(ring_t *r)
{
	return atomic_load_explicit(&r->interrupted, memory_order_relaxed) &&
	       atomic_exchange(&r->interrupted, false);
}

int wait_until(ring_t *r, _Atomic uint32_t *word, _Atomic uint64_t *wait_counter, ready_fn ready,
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
	 * side stores its index, fences, then reads this word). ring_interrupt()
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
	if (atomic_load_explicit(word, memory_order_relaxed) &&
	    atomic_exchange_explicit(word, 0, memory_order_relaxed)) {
		plat_futex_wake(word, 1);
		counter_add(wake_counter, 1);
	}
}

RING_API int ring_interrupt(ring_t *r)
{
	if (!r)
		return -EINVAL;
	/* Only atomics and one system call: fine in a signal handler. */
	atomic_store(&r->interrupted, true);
	_Atomic uint32_t *word = r->is_producer ? &r->hdr->producer_sleeping : &r->hdr->consumer_sleeping;
	if (!r->read_only && atomic_exchange(word, 0))
		plat_futex_wake(word, INT_MAX);
	return 0;
}

/* Whether a consumer has been attached and none is now (a dead one is the
 * liveness check's business: its pid word stays set). */
bool consumer_detached(ring_t *r)
{
	return atomic_load_explicit(&r->hdr->consumer_pid, memory_order_relaxed) == 0 &&
	       atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) > 0;
}

static bool drained_or_consumer_changed(ring_t *r)
{
	return atomic_load_explicit(&r->hdr->head, memory_order_acquire) == r->tail ||
	       atomic_load_explicit(&r->hdr->consumer_pid, memory_order_relaxed) != r->consumer_at_wait ||
	       atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) != r->attaches_at_wait;
}

static int wait_drained_unchecked(ring_t *r, int64_t timeout_ns)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	if (r->detached)
		return -ESHUTDOWN;
	struct deadline dl = {timeout_ns, 0};
	for (;;) {
		uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
		if (r->tail - head > r->capacity)
			return -EBADMSG;
		if (head == r->tail)
			return 0;
		if (consumer_detached(r))
			return -ENOTCONN;
		if (timeout_ns == 0)
			return -EAGAIN;
		r->consumer_at_wait = atomic_load_explicit(&r->hdr->consumer_pid, memory_order_relaxed);
		r->attaches_at_wait = atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed);
		int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits,
				    drained_or_consumer_changed, &dl);
		if (rc < 0 && atomic_load_explicit(&r->hdr->head, memory_order_acquire) != r->tail)
			return rc;
	}
}

RING_API int ring_wait_drained(ring_t *r, int64_t timeout_ns)
{
	int rc = wait_drained_unchecked(r, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
