/* meta.c - the stream description area: a small seqlock-guarded record the producer rewrites and anyone reads. */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "ring_internal.h"
#include "ring_layout.h"

#define RING_META_WORDS (FR_RING_META_SIZE / 8)

static int set_meta_unchecked(fr_ring_t *r, const void *meta, size_t len)
{
	if (!r || (!meta && len) || len > FR_RING_META_SIZE)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	if (r->detached)
		return -ESHUTDOWN;
	struct ring_shm_header *h = r->hdr;
	uint64_t words[RING_META_WORDS] = {0};
	if (len) /* META may be NULL then: memcpy from NULL is undefined even for 0 bytes */
		memcpy(words, meta, len);
	uint32_t seq = atomic_load_explicit(&h->meta_seq, memory_order_relaxed);
	atomic_store_explicit(&h->meta_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < RING_META_WORDS; i++)
		atomic_store_explicit(&h->meta[i], words[i], memory_order_relaxed);
	atomic_store_explicit(&h->meta_len, (uint32_t)len, memory_order_relaxed);
	atomic_store_explicit(&h->meta_seq, seq + 2, memory_order_release);
	return 0;
}

/* Seqlock read from a header in a mapping or a pread copy. */
static int read_meta(const struct ring_shm_header *h, void *meta, size_t len)
{
	uint64_t words[RING_META_WORDS];
	uint32_t mlen;
	for (int tries = 0;; tries++) {
		uint32_t s1 = atomic_load_explicit(&h->meta_seq, memory_order_acquire);
		for (unsigned i = 0; i < RING_META_WORDS; i++)
			words[i] = atomic_load_explicit(&h->meta[i], memory_order_relaxed);
		mlen = atomic_load_explicit(&h->meta_len, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		uint32_t s2 = atomic_load_explicit(&h->meta_seq, memory_order_relaxed);
		if (s1 == s2 && (s1 & 1) == 0)
			break;
		if (tries > 1000)
			return -EAGAIN;
	}
	if (mlen > FR_RING_META_SIZE)
		return -EBADMSG;
	size_t n = len < mlen ? len : mlen;
	if (len) { /* META may be NULL then (a caller asking only for the length) */
		memset(meta, 0, len);
		memcpy(meta, words, n);
	}
	return (int)mlen;
}

static int get_meta_unchecked(const fr_ring_t *r, void *meta, size_t len)
{
	if (!r || (!meta && len))
		return -EINVAL;
	return read_meta(r->hdr, meta, len);
}

int read_end_reason(const struct ring_shm_header *h, char *msg, size_t len)
{
	if (msg && len)
		msg[0] = '\0';
	/* eos_error and eos_message were written before eos (release). */
	if (atomic_load_explicit(&h->eos, memory_order_acquire) != RING_EOS_ERROR)
		return 0;
	int err = h->eos_error;
	if (err >= 0 || err < -4095)
		err = -EIO; /* not an errno value: a failure all the same */
	if (msg && len) {
		/* Bounded by the field and by LEN, whatever the producer left there. */
		size_t n = strnlen(h->eos_message, sizeof(h->eos_message));
		if (n > len - 1)
			n = len - 1;
		memcpy(msg, h->eos_message, n);
		msg[n] = '\0';
	}
	return err;
}

RING_API int fr_ring_end_reason(const fr_ring_t *r, char *msg, size_t len)
{
	if (!r)
		return -EINVAL;
	int rc = read_end_reason(r->hdr, msg, len);
	return mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_inspect_meta(const char *name, void *meta, size_t len)
{
	fr_ring_t *r;
	if (!meta && len)
		return -EINVAL;
	int rc = open_segment(&r, name);
	if (rc < 0)
		return rc;
	rc = read_meta(r->hdr, meta, len);
	if (mapping_lost(r))
		rc = -EFAULT;
	fr_ring_close(&r);
	return rc;
}

RING_API int fr_ring_set_meta(fr_ring_t *r, const void *meta, size_t len)
{
	int rc = set_meta_unchecked(r, meta, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int fr_ring_get_meta(const fr_ring_t *r, void *meta, size_t len)
{
	int rc = get_meta_unchecked(r, meta, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
