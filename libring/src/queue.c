/* queue.c - the data path: reserve/commit on the producer side, peek/release on the consumer side. */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "platform.h"
#include "ring_internal.h"
#include "ring_layout.h"

/* ------------------------------------------------------------ producer */

/* Refresh the cached head, checking it first: a consumer that wrote
 * nonsense into its index gets -EBADMSG, and the nonsense is never cached. */
static int load_head(ring_t *r)
{
	uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (r->tail - head > r->capacity)
		return -EBADMSG;
	r->cached_head = head;
	return 0;
}

static inline uint64_t free_space(const ring_t *r)
{
	return r->capacity - (r->tail - r->cached_head);
}

static bool space_ready(ring_t *r)
{
	return load_head(r) < 0 || free_space(r) >= r->want_space || consumer_detached(r);
}

/* Make WANT bytes free at the tail, waiting as the policy and timeout allow. */
static int wait_for_space(ring_t *r, uint64_t want, struct deadline *dl, bool may_wait)
{
	if (free_space(r) >= want)
		return 0;
	int rc = load_head(r);
	if (rc < 0)
		return rc;
	if (free_space(r) >= want)
		return 0;
	if (!may_wait)
		return -EAGAIN;
	r->want_space = want;
	for (;;) {
		if (consumer_detached(r))
			return -ENOTCONN; /* like a pipe without a reader: nobody will make room */
		rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits, space_ready, dl);
		int loaded = load_head(r);
		if (loaded < 0)
			return loaded;
		if (free_space(r) >= want)
			return 0;
		if (rc < 0)
			return rc;
	}
}

/* Publish the producer's tail and wake a sleeping consumer. */
static void publish_tail(ring_t *r)
{
	/* Make the record bytes visible before the tail moves. */
	atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
	wake_if_sleeping(&r->hdr->consumer_sleeping, &r->hdr->consumer_futex_wakes);
}

RING_API size_t ring_max_record(const ring_t *r)
{
	uint64_t m = r->capacity / 2;
	return (size_t)(m > UINT32_MAX - 4096 ? UINT32_MAX - 4096 : m);
}

static int check_producer(const ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	return r->detached ? -ESHUTDOWN : 0;
}

static int reserve_unchecked(ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns)
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
	if (align > RING_MAX_ALIGN || (align & (align - 1)) != 0)
		return -EINVAL;
	if (align < 8)
		align = 8; /* records are 8-byte aligned anyway */
	if (len > ring_max_record(r))
		return -EMSGSIZE;
	bool drop = r->policy == RING_FULL_DROP;
	bool may_wait = !drop && timeout_ns != 0;
	struct deadline dl = {timeout_ns, 0};
	uint64_t body = RING_REC_HDR + round8(len);
	/* The worst case starts at offset 0 after a wrap: it must fit then. */
	if (align - RING_REC_HDR + body > r->capacity)
		return -EMSGSIZE;

	for (;;) {
		uint64_t off = r->tail & r->mask;
		/* Padding so that the payload (after the 8-byte header) is aligned. */
		uint64_t lead = (align - ((off + RING_REC_HDR) & (align - 1))) & (align - 1);
		if (off + lead + body <= r->capacity) {
			rc = wait_for_space(r, lead + body, &dl, may_wait);
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
		 * so a record of up to capacity/2 fits once the consumer moves on. */
		uint64_t pad = r->capacity - off;
		rc = wait_for_space(r, pad, &dl, may_wait);
		if (rc < 0)
			break;
		struct ring_record_header *ph = record_at(r, r->tail);
		ph->len = (uint32_t)pad;
		ph->type = RING_REC_PAD;
		r->tail += pad;
		publish_tail(r);
	}
	if (drop && rc == -EAGAIN) {
		ring_note_drop(r, len);
		return -ENOBUFS;
	}
	return rc;
}

static int commit_unchecked(ring_t *r, size_t len)
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
	uint64_t off = r->tail & r->mask;
	if (r->res_lead) {
		struct ring_record_header *ph = (struct ring_record_header *)(r->data + off);
		ph->len = (uint32_t)r->res_lead;
		ph->type = RING_REC_PAD;
	}
	struct ring_record_header *rh = (struct ring_record_header *)(r->data + off + r->res_lead);
	rh->len = (uint32_t)len;
	rh->type = RING_REC_DATA;
	r->tail += r->res_lead + RING_REC_HDR + round8(len);
	r->reserved = false;
	counter_add(&r->hdr->records_written, 1);
	counter_add(&r->hdr->bytes_written, len);
	publish_tail(r);
	return 0;
}

RING_API int ring_abort(ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	if (!r->reserved)
		return -EINVAL;
	r->reserved = false;
	return 0;
}

RING_API int ring_write(ring_t *r, const void *data, size_t len, int64_t timeout_ns)
{
	void *dst;
	if (!data && len)
		return -EINVAL;
	int rc = ring_reserve(r, len, 8, &dst, timeout_ns);
	if (rc < 0)
		return rc;
	if (len)
		memcpy(dst, data, len);
	return ring_commit(r, len);
}

static int mark_eos_unchecked(ring_t *r)
{
	int rc = check_producer(r);
	if (rc < 0)
		return rc;
	r->eos_marked = true;
	/* The consumer reads eos, then the tail again: records committed before
	 * this store are all seen before end of stream is reported. */
	atomic_store_explicit(&r->hdr->eos, 1, memory_order_release);
	wake_if_sleeping(&r->hdr->consumer_sleeping, &r->hdr->consumer_futex_wakes);
	return 0;
}

RING_API void ring_note_drop(ring_t *r, size_t len)
{
	if (check_producer(r) < 0)
		return;
	counter_add(&r->hdr->records_dropped, 1);
	counter_add(&r->hdr->bytes_dropped, len);
}

RING_API void ring_set_full_policy(ring_t *r, enum ring_full_policy policy)
{
	if (check_producer(r) < 0 || (policy != RING_FULL_BLOCK && policy != RING_FULL_DROP))
		return;
	r->policy = policy;
	atomic_store_explicit(&r->hdr->on_full, (uint32_t)policy, memory_order_relaxed);
}

/* ------------------------------------------------------------ consumer */

void publish_head(ring_t *r)
{
	if (r->head == r->head_published)
		return;
	/* Done reading before the producer may overwrite: release. */
	atomic_store_explicit(&r->hdr->head, r->head, memory_order_release);
	r->head_published = r->head;
	wake_if_sleeping(&r->hdr->producer_sleeping, &r->hdr->producer_futex_wakes);
}

/* Refresh the cached tail, checking it first: cached_tail only ever holds
 * a tail at most one capacity ahead of head, so walking up to it ends. */
static int load_tail(ring_t *r)
{
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	if (tail - r->head > r->capacity || (tail & 7) != 0)
		return -EBADMSG;
	r->cached_tail = tail;
	return 0;
}

/* Whether waking up is worth it: something new, or end of stream. The tail
 * is only compared here; load_tail() checks it before anything uses it. */
static bool data_ready(ring_t *r)
{
	return atomic_load_explicit(&r->hdr->tail, memory_order_acquire) != r->head ||
	       atomic_load_explicit(&r->hdr->eos, memory_order_relaxed);
}

/* Read and check the record header at POS (head <= POS < cached_tail). Pads
 * are returned with *is_data false. Loads are done once into locals, so the
 * producer rewriting the header meanwhile cannot change what was checked. */
static int read_record(const ring_t *r, uint64_t pos, uint32_t *len, uint64_t *span, bool *is_data)
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

/* Find the next data record, skipping pads; wait as allowed. */
static int next_record(ring_t *r, uint32_t *len, uint64_t *span, int64_t timeout_ns)
{
	struct deadline dl = {timeout_ns, 0};
	int rc;
	if (r->eos_seen)
		return -ENODATA;
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
		/* Empty. End of stream only once every record before it is consumed:
		 * read eos, then the tail once more. It counts before a death: a
		 * producer that marked it and then went away finished cleanly. */
		if (atomic_load_explicit(&r->hdr->eos, memory_order_acquire)) {
			if ((rc = load_tail(r)) < 0)
				return rc;
			if (r->cached_tail == r->head) {
				r->eos_seen = true;
				return -ENODATA;
			}
			continue;
		}
		if (r->peer_gone)
			return -EOWNERDEAD;
		if (timeout_ns == 0) {
			if (!peer_dead(r))
				return -EAGAIN;
			rc = -EOWNERDEAD;
		} else {
			rc = wait_until(r, &r->hdr->consumer_sleeping, &r->hdr->consumer_futex_waits, data_ready,
					&dl);
		}
		if (rc == -EOWNERDEAD) {
			/* The producer may have committed more just before dying:
			 * drain that first, then report the death on every later call. */
			r->peer_gone = true;
			timeout_ns = 0;
			continue;
		}
		if (rc < 0 && !data_ready(r))
			return rc;
	}
}

static int check_consumer(const ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	return r->detached ? -ESHUTDOWN : 0;
}

static int peek_unchecked(ring_t *r, const void **data, size_t *len, int64_t timeout_ns)
{
	if (!data || !len)
		return -EINVAL;
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	uint32_t l;
	uint64_t span;
	rc = next_record(r, &l, &span, timeout_ns);
	if (rc < 0)
		return rc;
	r->peeked = true;
	r->peek_span = span;
	r->peek_len = l;
	*data = r->data + (r->head & r->mask) + RING_REC_HDR;
	*len = l;
	return 0;
}

static int release_unchecked(ring_t *r)
{
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (!r->peeked)
		return -EINVAL;
	r->head += r->peek_span;
	r->peeked = false;
	counter_add(&r->hdr->records_read, 1);
	counter_add(&r->hdr->bytes_read, r->peek_len);
	publish_head(r);
	return 0;
}

/* Forget a peek without consuming the record: the next peek returns it again. */
static void unpeek(ring_t *r)
{
	r->peeked = false;
}

static int64_t skip_to_latest_unchecked(ring_t *r)
{
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	if (r->eos_seen)
		return 0;
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
		counter_add(&r->hdr->records_skipped, skipped);
		counter_add(&r->hdr->bytes_skipped, skipped_bytes);
	}
	publish_head(r);
	return (int64_t)skipped;
}

RING_API int ring_peek_latest(ring_t *r, const void **data, size_t *len, uint64_t *skipped,
			      int64_t timeout_ns)
{
	if (!data || !len)
		return -EINVAL;
	int rc = check_consumer(r);
	if (rc < 0)
		return rc;
	if (r->peeked)
		return -EALREADY;
	int64_t n = ring_skip_to_latest(r);
	if (n < 0)
		return (int)n;
	rc = ring_peek(r, data, len, timeout_ns);
	if (rc == 0 && n == 0) {
		/* We may have waited: take what piled up meanwhile into account. */
		unpeek(r);
		n = ring_skip_to_latest(r);
		if (n < 0)
			return (int)n;
		rc = ring_peek(r, data, len, 0);
	}
	if (rc == 0 && skipped)
		*skipped = (uint64_t)n;
	return rc;
}

RING_API ssize_t ring_read(ring_t *r, void *buf, size_t buflen, int64_t timeout_ns)
{
	const void *data;
	size_t len;
	if (!buf && buflen)
		return -EINVAL;
	int rc = ring_peek(r, &data, &len, timeout_ns);
	if (rc < 0)
		return rc;
	if (len > buflen) {
		unpeek(r);
		return -EMSGSIZE;
	}
	memcpy(buf, data, len);
	ring_release(r);
	return (ssize_t)len;
}

/* ------------------------------------------------------------ checked entry points */

/* A peer that shrank the segment under us turned our mapping into zero
 * pages (plat_guard_mapping): whatever a call computed from them, -EFAULT
 * says what happened, on this call and every later one. */

RING_API int ring_reserve(ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns)
{
	int rc = reserve_unchecked(r, len, align, data, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int ring_commit(ring_t *r, size_t len)
{
	int rc = commit_unchecked(r, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int ring_mark_eos(ring_t *r)
{
	int rc = mark_eos_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int ring_peek(ring_t *r, const void **data, size_t *len, int64_t timeout_ns)
{
	int rc = peek_unchecked(r, data, len, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int ring_release(ring_t *r)
{
	int rc = release_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int64_t ring_skip_to_latest(ring_t *r)
{
	int64_t rc = skip_to_latest_unchecked(r);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
