/* segment.c - a ring segment's life: names, create/open/close, validation, inspection from outside, stream meta. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"
#include "ring_internal.h"
#include "ring_layout.h"

/* ------------------------------------------------------------ names, segments */

static int check_name(const char *name, char path[RING_NAME_MAX + 2])
{
	if (!name)
		return -EINVAL;
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > RING_NAME_MAX)
		return -ENAMETOOLONG;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-';
		if (!ok)
			return -EINVAL;
	}
	path[0] = '/';
	memcpy(path + 1, name, n + 1);
	return 0;
}

/* Check the immutable part of a header copy against the segment's real size.
 * -EBADMSG for anything that is not a ring, -EPROTO for another version. */
static int validate_header(const struct ring_shm_header *h, uint64_t file_size)
{
	if (file_size < sizeof(*h))
		return -EBADMSG;
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != RING_MAGIC)
		return -EBADMSG;
	if (h->layout_version != RING_LAYOUT_VERSION)
		return -EPROTO;
	uint64_t cap = h->capacity;
	if (h->header_size != RING_HEADER_SIZE || cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0 || h->segment_size != RING_HEADER_SIZE + cap ||
	    h->segment_size > file_size)
		return -EBADMSG;
	return 0;
}

/* Read a header copy with pread, so a tool can look without mapping. */
static int read_header_copy(int fd, struct ring_shm_header *h, uint64_t *file_size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*file_size = (uint64_t)st.st_size;
	if (*file_size < sizeof(*h))
		return -EBADMSG;
	ssize_t n = pread(fd, h, sizeof(*h), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(*h))
		return -EBADMSG;
	return 0;
}

static void fill_stats(const struct ring_shm_header *h, uint64_t capacity, struct ring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->capacity = capacity;
	uint64_t head = atomic_load_explicit(&h->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	st->used = tail - head <= capacity ? tail - head : capacity;
#define LOAD(f) atomic_load_explicit(&h->f, memory_order_relaxed)
	st->records_written = LOAD(records_written);
	st->bytes_written = LOAD(bytes_written);
	st->records_dropped = LOAD(records_dropped);
	st->bytes_dropped = LOAD(bytes_dropped);
	st->records_read = LOAD(records_read);
	st->bytes_read = LOAD(bytes_read);
	st->records_skipped = LOAD(records_skipped);
	st->bytes_skipped = LOAD(bytes_skipped);
	st->producer_futex_waits = LOAD(producer_futex_waits);
	st->producer_futex_wakes = LOAD(producer_futex_wakes);
	st->consumer_futex_waits = LOAD(consumer_futex_waits);
	st->consumer_futex_wakes = LOAD(consumer_futex_wakes);
	uint64_t prod = LOAD(producer_owner), cons = LOAD(consumer_owner);
	st->eos = LOAD(eos) != 0;
	st->on_full = LOAD(on_full) == RING_FULL_DROP ? RING_FULL_DROP : RING_FULL_BLOCK;
#undef LOAD
	st->producer_pid = plat_owner_pid(prod);
	st->consumer_pid = plat_owner_pid(cons);
	st->producer_alive = prod && plat_owner_alive(prod);
	st->consumer_alive = cons && plat_owner_alive(cons);
}

static void unmap_and_free(ring_t *r)
{
	if (r->hdr) {
		plat_unguard_mapping(r->hdr);
		munmap((void *)r->hdr, r->map_size);
	}
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* The peer can shrink the segment under our mapping (both sides may write
 * it); touching the lost pages would raise SIGBUS. The guard turns that into
 * zero pages and r->lost, which every call then reports as -EFAULT. Without
 * a free guard slot (hundreds of rings in one process) the ring still works,
 * unguarded, as a ring without this protection would. */
static void guard(ring_t *r, int prot)
{
	(void)plat_guard_mapping(r->hdr, r->map_size, prot, &r->lost);
}

/* ------------------------------------------------------------ create / open */

/* The name is taken: -EBUSY for a live ring, -EEXIST for a segment that is
 * not a ring of ours, 0 after removing a dead producer's ring. */
static int reclaim_name(const char *path)
{
	int old = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (old < 0)
		return errno == ENOENT ? 0 : -errno; /* removed meanwhile */
	struct ring_shm_header h;
	uint64_t size = 0;
	int rc = read_header_copy(old, &h, &size);
	close(old);
	if (rc == 0)
		rc = validate_header(&h, size);
	if (rc < 0)
		return -EEXIST; /* another version, or not a ring: not ours to remove */
	uint64_t owner = atomic_load_explicit(&h.producer_owner, memory_order_relaxed);
	if (owner && plat_owner_alive(owner))
		return -EBUSY;
	if (shm_unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

RING_API int ring_create(ring_t **out, const char *name, const struct ring_create_opts *opts)
{
	char path[RING_NAME_MAX + 2], tmp_path[RING_NAME_MAX + 40];
	int rc;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	uint64_t cap = opts && opts->capacity ? opts->capacity : RING_DEFAULT_CAPACITY;
	if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY || (cap & (cap - 1)) != 0)
		return -EINVAL;
	mode_t mode = opts && opts->mode ? opts->mode : 0600;
	if (mode & ~(mode_t)0777)
		return -EINVAL;
	enum ring_full_policy policy = opts ? opts->on_full : RING_FULL_BLOCK;
	if (policy != RING_FULL_BLOCK && policy != RING_FULL_DROP)
		return -EINVAL;

	/* The segment is built under a private name and linked into place only
	 * when its header is complete: a consumer never sees a half-made ring,
	 * and link() refuses an existing name atomically. */
	snprintf(tmp_path, sizeof(tmp_path), "%s.creating.%d", path, (int)getpid());
	int fd = shm_open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) { /* left by an earlier process with our pid */
		shm_unlink(tmp_path);
		fd = shm_open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	if (fd < 0)
		return -errno;

	ring_t *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		shm_unlink(tmp_path);
		return -ENOMEM;
	}
	r->fd = fd;
	r->is_producer = true;
	r->capacity = cap;
	r->mask = cap - 1;
	r->map_size = RING_HEADER_SIZE + cap;
	r->policy = policy;
	memcpy(r->name, name, strlen(name) + 1);

	/* shm_open's mode passed through the umask: set exactly what was asked. */
	if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t)r->map_size) < 0) {
		rc = -errno;
		goto fail;
	}
	void *map = mmap(NULL, r->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	r->hdr = map;
	r->data = (uint8_t *)map + RING_HEADER_SIZE;
	guard(r, PROT_READ | PROT_WRITE);

	struct ring_shm_header *h = r->hdr;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->segment_size = r->map_size;
	atomic_store_explicit(&h->on_full, (uint32_t)policy, memory_order_relaxed);
	atomic_store_explicit(&h->producer_owner, plat_self_owner(), memory_order_relaxed);
	atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);

	for (int attempt = 0;; attempt++) {
		rc = plat_shm_link(tmp_path, path);
		if (rc != -EEXIST || attempt >= 3)
			break;
		if ((rc = reclaim_name(path)) < 0)
			break;
	}
	if (rc < 0)
		goto fail;
	shm_unlink(tmp_path);
	*out = r;
	return 0;
fail:
	shm_unlink(tmp_path);
	unmap_and_free(r);
	return rc;
}

/* Open and validate; ATTACH selects consumer attachment (else a read-only look). */
static int open_segment(ring_t **out, const char *name, bool attach)
{
	char path[RING_NAME_MAX + 2];
	int rc;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = shm_open(path, (attach ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ring_shm_header h;
	uint64_t file_size = 0;
	rc = read_header_copy(fd, &h, &file_size);
	if (rc == 0)
		rc = validate_header(&h, file_size);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	ring_t *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	/* Only the validated copy's sizes are used from here on: a producer
	 * that rewrites its header later cannot make us index past the map. */
	r->fd = fd;
	r->capacity = h.capacity;
	r->mask = h.capacity - 1;
	r->map_size = h.segment_size;
	memcpy(r->name, name, strlen(name) + 1);
	int prot = attach ? PROT_READ | PROT_WRITE : PROT_READ;
	void *map = mmap(NULL, r->map_size, prot, MAP_SHARED | (attach ? MAP_POPULATE : 0), fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		r->hdr = NULL;
		unmap_and_free(r);
		return rc;
	}
	r->hdr = map;
	r->data = (uint8_t *)map + RING_HEADER_SIZE;
	guard(r, prot);
	r->read_only = !attach;
	*out = r;
	return 0;
}

RING_API int ring_open(ring_t **out, const char *name)
{
	ring_t *r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = open_segment(&r, name, true);
	if (rc < 0)
		return rc;
	struct ring_shm_header *h = r->hdr;
	uint64_t self = plat_self_owner();
	uint64_t cur = 0;
	while (!atomic_compare_exchange_strong(&h->consumer_owner, &cur, self)) {
		/* cur holds the current owner: take over only from a dead one. */
		if (plat_owner_alive(cur)) {
			unmap_and_free(r);
			return -EBUSY;
		}
	}
	r->head = atomic_load_explicit(&h->head, memory_order_acquire);
	r->head_published = r->head;
	r->cached_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (r->cached_tail - r->head > r->capacity || (r->head & 7) != 0) {
		atomic_store(&h->consumer_owner, 0);
		unmap_and_free(r);
		return -EBADMSG;
	}
	atomic_fetch_add_explicit(&h->consumer_attaches, 1, memory_order_relaxed);
	/* A producer may be waiting for a consumer (ring_wait_drained). */
	wake_if_sleeping(&h->producer_sleeping, &h->producer_futex_wakes);
	*out = r;
	return 0;
}

RING_API int ring_open_wait(ring_t **out, const char *name, int64_t timeout_ns)
{
	char path[RING_NAME_MAX + 2];
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = check_name(name, path);
	if (rc < 0)
		return rc;
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : plat_now_ns() + (uint64_t)timeout_ns;
	int watch = -1;
	for (;;) {
		rc = ring_open(out, name); /* rings appear whole (ring_create links them in) */
		if (rc != -ENOENT)
			break;
		uint64_t now = plat_now_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		int64_t left = deadline == UINT64_MAX ? LIVENESS_SLICE_NS : (int64_t)(deadline - now);
		int w = plat_watch_shm_dir(&watch, left);
		if (w == -EINTR) {
			rc = -EINTR;
			break;
		}
	}
	plat_watch_close(&watch);
	return rc;
}

RING_API void ring_close(ring_t **rp)
{
	if (!rp || !*rp)
		return;
	ring_t *r = *rp;
	struct ring_shm_header *h = r->hdr;
	char path[RING_NAME_MAX + 2];
	bool have_path = check_name(r->name, path) == 0;
	if (r->is_producer) {
		if (r->reserved)
			ring_abort(r);
		ring_mark_eos(r);
		/* Unlink only if the name still refers to our segment. */
		struct stat mine, named;
		int nfd = have_path ? shm_open(path, O_RDONLY | O_CLOEXEC, 0) : -1;
		if (nfd >= 0) {
			if (fstat(r->fd, &mine) == 0 && fstat(nfd, &named) == 0 && mine.st_ino == named.st_ino)
				shm_unlink(path);
			close(nfd);
		}
		atomic_store_explicit(&h->producer_owner, 0, memory_order_release);
	} else if (!r->read_only) {
		if (r->peeked)
			ring_release(r);
		else
			ring_publish_head(r);
		uint64_t self = plat_self_owner();
		atomic_compare_exchange_strong(&h->consumer_owner, &self, 0);
		/* A producer waiting for space or for the drain learns we left. */
		wake_if_sleeping(&h->producer_sleeping, &h->producer_futex_wakes);
		uint64_t prod = atomic_load_explicit(&h->producer_owner, memory_order_relaxed);
		if (prod && !plat_owner_alive(prod) && have_path) {
			/* The producer died without cleaning up: remove its stale name. */
			struct stat mine, named;
			int nfd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
			if (nfd >= 0) {
				if (fstat(r->fd, &mine) == 0 && fstat(nfd, &named) == 0 &&
				    mine.st_ino == named.st_ino)
					shm_unlink(path);
				close(nfd);
			}
		}
	}
	unmap_and_free(r);
	*rp = NULL;
}

/* ------------------------------------------------------------ both sides */

RING_API void ring_get_stats(const ring_t *r, struct ring_stats *st)
{
	if (!r || !st)
		return;
	fill_stats(r->hdr, r->capacity, st);
}

RING_API int ring_inspect(const char *name, struct ring_stats *st)
{
	char path[RING_NAME_MAX + 2];
	int rc;
	if (!st)
		return -EINVAL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ring_shm_header h;
	uint64_t size = 0;
	rc = read_header_copy(fd, &h, &size);
	close(fd);
	if (rc == 0)
		rc = validate_header(&h, size);
	if (rc == 0)
		fill_stats(&h, h.capacity, st);
	return rc;
}

RING_API int ring_unlink_stale(const char *name)
{
	char path[RING_NAME_MAX + 2];
	struct ring_stats st;
	int rc = check_name(name, path);
	if (rc < 0)
		return rc;
	rc = ring_inspect(name, &st);
	if (rc == -EBADMSG || rc == -EPROTO)
		return -EEXIST; /* not a ring of ours: somebody else's segment */
	if (rc < 0)
		return rc;
	if (st.producer_alive)
		return -EBUSY;
	if (shm_unlink(path) < 0)
		return -errno;
	return 0;
}

RING_API bool ring_peer_alive(const ring_t *r)
{
	if (!r)
		return false;
	uint64_t owner = atomic_load_explicit(r->is_producer ? &r->hdr->consumer_owner : &r->hdr->producer_owner,
					      memory_order_relaxed);
	return owner && plat_owner_alive(owner);
}

RING_API void ring_mapping(const ring_t *r, const void **base, size_t *size)
{
	if (base)
		*base = r ? (const void *)r->hdr : NULL;
	if (size)
		*size = r ? r->map_size : 0;
}

RING_API const char *ring_name(const ring_t *r)
{
	return r ? r->name : NULL;
}

static int set_meta_unchecked(ring_t *r, const void *meta, size_t len)
{
	if (!r || (!meta && len) || len > RING_META_SIZE)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	struct ring_shm_header *h = r->hdr;
	uint64_t words[8] = {0};
	memcpy(words, meta, len);
	uint32_t seq = atomic_load_explicit(&h->meta_seq, memory_order_relaxed);
	atomic_store_explicit(&h->meta_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (int i = 0; i < 8; i++)
		atomic_store_explicit(&h->meta[i], words[i], memory_order_relaxed);
	atomic_store_explicit(&h->meta_len, (uint32_t)len, memory_order_relaxed);
	atomic_store_explicit(&h->meta_seq, seq + 2, memory_order_release);
	return 0;
}

/* Seqlock read from a header in a mapping or a pread copy. */
static int read_meta(const struct ring_shm_header *h, void *meta, size_t len)
{
	uint64_t words[8];
	uint32_t mlen;
	for (int tries = 0;; tries++) {
		uint32_t s1 = atomic_load_explicit(&h->meta_seq, memory_order_acquire);
		for (int i = 0; i < 8; i++)
			words[i] = atomic_load_explicit(&h->meta[i], memory_order_relaxed);
		mlen = atomic_load_explicit(&h->meta_len, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		uint32_t s2 = atomic_load_explicit(&h->meta_seq, memory_order_relaxed);
		if (s1 == s2 && (s1 & 1) == 0)
			break;
		if (tries > 1000)
			return -EAGAIN;
	}
	if (mlen > RING_META_SIZE)
		return -EBADMSG;
	size_t n = len < mlen ? len : mlen;
	memset(meta, 0, len);
	memcpy(meta, words, n);
	return (int)mlen;
}

static int get_meta_unchecked(const ring_t *r, void *meta, size_t len)
{
	if (!r || (!meta && len))
		return -EINVAL;
	return read_meta(r->hdr, meta, len);
}

RING_API int ring_inspect_meta(const char *name, void *meta, size_t len)
{
	ring_t *r;
	if (!meta && len)
		return -EINVAL;
	int rc = open_segment(&r, name, false);
	if (rc < 0)
		return rc;
	rc = read_meta(r->hdr, meta, len);
	if (mapping_lost(r))
		rc = -EFAULT;
	unmap_and_free(r);
	return rc;
}

RING_API int ring_set_meta(ring_t *r, const void *meta, size_t len)
{
	int rc = set_meta_unchecked(r, meta, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

RING_API int ring_get_meta(const ring_t *r, void *meta, size_t len)
{
	int rc = get_meta_unchecked(r, meta, len);
	return r && mapping_lost(r) ? -EFAULT : rc;
}
