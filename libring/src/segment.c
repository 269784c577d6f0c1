/* segment.c - a ring segment's life: names, create/open/detach/close, validation, liveness locks, inspection from outside. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"
#include "ring_internal.h"
#include "ring_layout.h"

/* ------------------------------------------------------------ names, headers */

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

/* Check the immutable part of a header copy against the file it came from.
 * -EBADMSG for anything that is not a ring, -EPROTO for another version.
 * The file must be as long as the header says and every byte of it backed:
 * a producer allocates the whole segment at creation, so a sparse file is
 * not one of ours, and mapping it must not make us allocate what it claims. */
static int validate_header(const struct ring_shm_header *h, const struct stat *st)
{
	uint64_t file_size = (uint64_t)st->st_size;
	if (file_size < sizeof(*h))
		return -EBADMSG;
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != RING_MAGIC)
		return -EBADMSG;
	if (h->layout_version != RING_LAYOUT_VERSION)
		return -EPROTO;
	uint64_t cap = h->capacity;
	if (h->header_size != RING_HEADER_SIZE || cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0 || h->segment_size != RING_HEADER_SIZE + cap ||
	    h->segment_size > file_size || (uint64_t)st->st_blocks * 512 < h->segment_size)
		return -EBADMSG;
	return 0;
}

/* Open the segment PATH, read a header copy with pread (no mapping yet)
 * and validate it. Returns the descriptor or a negative errno. */
static int open_checked(const char *path, bool writable, struct ring_shm_header *h)
{
	struct stat st;
	int fd = plat_shm_open(path, writable, &st);
	if (fd < 0)
		return fd;
	int rc = -EBADMSG;
	if ((uint64_t)st.st_size >= sizeof(*h)) {
		ssize_t n = pread(fd, h, sizeof(*h), 0);
		rc = n < 0 ? -errno : (size_t)n == sizeof(*h) ? validate_header(h, &st) : -EBADMSG;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Liveness of the side whose lock byte is BYTE, seen through FD. SELF is
 * the lock byte FD itself holds (our own side is alive: our own lock does
 * not show through our own descriptor), or -1. */
static bool side_alive(int fd, int self, unsigned byte)
{
	if (self == (int)byte)
		return true;
	return fd >= 0 && plat_byte_locked(fd, byte) == 1;
}

static void fill_stats(const struct ring_shm_header *h, uint64_t capacity, int fd, int self, struct ring_stats *st)
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
	st->producer_pid = (pid_t)(LOAD(producer_pid) & 0x7fffffff);
	st->consumer_pid = (pid_t)(LOAD(consumer_pid) & 0x7fffffff);
	st->eos = LOAD(eos) != 0;
	st->on_full = LOAD(on_full) == RING_FULL_DROP ? RING_FULL_DROP : RING_FULL_BLOCK;
#undef LOAD
	st->producer_alive = side_alive(fd, self, RING_LOCK_PRODUCER);
	st->consumer_alive = side_alive(fd, self, RING_LOCK_CONSUMER);
}

static void unmap_and_free(ring_t *r)
{
	if (r->hdr) {
		plat_unguard_mapping(r->hdr);
		munmap((void *)r->hdr, r->map_size);
	}
	/* With the mapping gone (it holds a reference to the open file too),
	 * closing drops any lock this side still held. */
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* The peer can shrink the segment under our mapping (both sides may write
 * it); touching the lost pages would raise SIGBUS. The guard turns that into
 * zero pages and r->lost, which every call then reports as -EFAULT. Without
 * a free guard slot (hundreds of rings in one process) the ring still works,
 * unguarded, as a ring without this protection would. */
static int map_guarded(ring_t *r, int prot, int flags)
{
	void *map = mmap(NULL, r->map_size, prot, MAP_SHARED | flags, r->fd, 0);
	if (map == MAP_FAILED)
		return errno == EPERM ? -EACCES : -errno; /* -EPERM means "not on this side" here */
	r->hdr = map;
	r->data = (uint8_t *)map + RING_HEADER_SIZE;
	(void)plat_guard_mapping(r->hdr, r->map_size, prot, &r->lost);
	return 0;
}

/* ------------------------------------------------------------ removing a name */

/* Take the producer lock of the segment open at FD: only a segment whose
 * producer is gone can be locked. Another remover may hold it for a moment
 * (a consumer closing a stale ring, a producer reclaiming it), so a busy
 * lock is tried a few times before it counts as a live producer's. */
static int lock_producer_byte(int fd)
{
	int rc = 0;
	for (int attempt = 0; attempt < 5; attempt++) {
		rc = plat_lock_byte(fd, RING_LOCK_PRODUCER);
		if (rc != -EBUSY)
			break;
		struct timespec nap = {0, 2000000};
		nanosleep(&nap, NULL);
	}
	return rc;
}

/* Remove PATH if it still names the segment open at FD. The caller holds
 * that segment's producer lock, and everyone who removes a ring's name
 * holds it while doing so: between our check and our unlink, nobody else
 * can remove this segment's name, and a new segment cannot be linked to a
 * name that is still taken. So only the segment that was checked goes. */
static int remove_name_if_ours(const char *path, int fd)
{
	int rc = plat_shm_names(path, fd);
	if (rc <= 0)
		return rc == 0 ? -ENOENT : rc;
	return plat_shm_unlink(path);
}

/* The name is taken by another segment. If it is a ring whose producer is
 * gone, lock it and return its descriptor in *stale, so that the caller can
 * remove the name and link its own while still holding the lock. -EBUSY for
 * a live producer's ring, -EEXIST for anything that is not a ring of ours,
 * -ENOENT if the name went away meanwhile (try again). */
static int lock_stale_ring(const char *path, int *stale)
{
	struct ring_shm_header h;
	int fd = open_checked(path, true, &h);
	if (fd == -EBADMSG || fd == -EPROTO)
		return -EEXIST; /* another version, or not a ring: not ours to remove */
	if (fd < 0)
		return fd;
	int rc = lock_producer_byte(fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*stale = fd;
	return 0;
}

/* ------------------------------------------------------------ create / open */

RING_API int ring_create(ring_t **out, const char *name, const struct ring_create_opts *opts)
{
	char path[RING_NAME_MAX + 2], tmp_path[PLAT_SHM_PATH_MAX];
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

	ring_t *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->is_producer = true;
	r->capacity = cap;
	r->mask = cap - 1;
	r->map_size = RING_HEADER_SIZE + cap;
	r->policy = policy;
	memcpy(r->name, name, strlen(name) + 1);

	/* Built without a name (or under a private one) and linked into place
	 * only when its header is complete: a consumer never sees a half-made
	 * ring. Every byte is allocated now: -ENOSPC here, not SIGBUS later. */
	r->fd = plat_shm_create(r->map_size, mode, tmp_path);
	if (r->fd < 0) {
		rc = r->fd;
		free(r);
		return rc;
	}
	/* Our lock is in place before anyone can see the segment: a ring under
	 * a name always has a live producer, or a dead one. */
	if ((rc = plat_lock_byte(r->fd, RING_LOCK_PRODUCER)) < 0 ||
	    (rc = map_guarded(r, PROT_READ | PROT_WRITE, MAP_POPULATE)) < 0)
		goto fail;

	struct ring_shm_header *h = r->hdr;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->segment_size = r->map_size;
	atomic_store_explicit(&h->on_full, (uint32_t)policy, memory_order_relaxed);
	atomic_store_explicit(&h->producer_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);

	for (int attempt = 0;; attempt++) {
		rc = plat_shm_publish(r->fd, tmp_path, path);
		if (rc != -EEXIST || attempt >= 8)
			break;
		int stale = -1;
		rc = lock_stale_ring(path, &stale);
		if (rc == -ENOENT)
			continue; /* the name went away meanwhile */
		if (rc < 0)
			break;
		/* Holding the stale ring's producer lock: remove its name and put
		 * ours there before anyone else may touch the name. */
		rc = remove_name_if_ours(path, stale);
		if (rc == 0 || rc == -ENOENT)
			rc = plat_shm_publish(r->fd, tmp_path, path);
		close(stale);
		if (rc != -EEXIST)
			break;
	}
	if (rc < 0)
		goto fail;
	plat_shm_discard(tmp_path);
	*out = r;
	return 0;
fail:
	plat_shm_discard(tmp_path);
	unmap_and_free(r);
	return rc;
}

/* Open, validate and map NAME. ATTACH: as its consumer (read-write, the
 * consumer lock taken: -EBUSY if another consumer holds it); otherwise a
 * read-only look with no side attached. */
int open_segment(ring_t **out, const char *name, bool attach)
{
	char path[RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = open_checked(path, attach, &h);
	if (fd < 0)
		return fd;
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
	r->read_only = !attach;
	memcpy(r->name, name, strlen(name) + 1);
	if (attach && (rc = plat_lock_byte(fd, RING_LOCK_CONSUMER)) < 0) {
		unmap_and_free(r);
		return rc;
	}
	/* No MAP_POPULATE: what the segment claims is not ours to allocate. */
	if ((rc = map_guarded(r, attach ? PROT_READ | PROT_WRITE : PROT_READ, 0)) < 0) {
		unmap_and_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int producer_alive(const ring_t *r)
{
	if (r->fd < 0)
		return 0;
	return plat_byte_locked(r->fd, RING_LOCK_PRODUCER);
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
	r->head = atomic_load_explicit(&h->head, memory_order_acquire);
	r->head_published = r->head;
	r->cached_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (r->cached_tail - r->head > r->capacity || (r->head & 7) != 0 || (r->cached_tail & 7) != 0) {
		unmap_and_free(r);
		return -EBADMSG;
	}
	/* We hold the consumer lock: nobody else writes the consumer line now. */
	atomic_store_explicit(&h->consumer_pid, (uint32_t)getpid(), memory_order_relaxed);
	counter_add(&h->consumer_attaches, 1);
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
	/* The watch first, then the look: a ring linked in between is seen. */
	int watch = -1;
	plat_watch_shm_dir(&watch, 0);
	for (;;) {
		rc = ring_open(out, name); /* rings appear whole (ring_create links them in) */
		if (rc == 0 && producer_alive(*out) == 0) {
			/* A dead producer's ring: wait for the one that reclaims the
			 * name. Leave quietly: no stale-name removal from here. */
			ring_t *stale = *out;
			*out = NULL;
			atomic_store_explicit(&stale->hdr->consumer_pid, 0, memory_order_relaxed);
			unmap_and_free(stale);
			rc = -ENOENT;
		}
		if (rc != -ENOENT)
			break;
		uint64_t now = plat_now_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		uint64_t left = deadline - now;
		int w = plat_watch_shm_dir(&watch, left > (uint64_t)LIVENESS_SLICE_NS ? LIVENESS_SLICE_NS : (int64_t)left);
		if (w == -EINTR) {
			rc = -EINTR;
			break;
		}
	}
	plat_watch_close(&watch);
	return rc;
}

/* ------------------------------------------------------------ detach / close */

static int producer_detach(ring_t *r, const char *path)
{
	struct ring_shm_header *h = r->hdr;
	int rc = 0;
	if (r->reserved)
		ring_abort(r);
	if (!r->eos_marked)
		rc = ring_mark_eos(r); /* on failure, still remove the name below */
	/* We hold our own producer lock: the name is ours to remove, if it still names us. */
	int unlinked = remove_name_if_ours(path, r->fd);
	if (rc == 0 && unlinked < 0 && unlinked != -ENOENT)
		rc = unlinked;
	atomic_store_explicit(&h->producer_pid, 0, memory_order_release);
	return rc;
}

static int consumer_detach(ring_t *r, const char *path)
{
	struct ring_shm_header *h = r->hdr;
	int rc = 0;
	if (r->peeked)
		rc = ring_release(r);
	else
		publish_head(r);
	/* A clean detach: the pid word goes to 0 before the lock goes, so a
	 * producer tells it from a death (lock gone, pid still there). */
	atomic_store_explicit(&h->consumer_pid, 0, memory_order_release);
	wake_if_sleeping(&h->producer_sleeping, &h->producer_futex_wakes);
	/* If the producer is gone, its name is stale: remove it, holding the
	 * producer lock so that a producer reclaiming the name meanwhile and we
	 * do not both act on it. */
	if (plat_lock_byte(r->fd, RING_LOCK_PRODUCER) == 0) {
		int unlinked = remove_name_if_ours(path, r->fd);
		if (rc == 0 && unlinked < 0 && unlinked != -ENOENT)
			rc = unlinked;
		plat_unlock_byte(r->fd, RING_LOCK_PRODUCER);
	}
	return rc;
}

RING_API int ring_detach(ring_t *r)
{
	char path[RING_NAME_MAX + 2];
	int rc = 0;
	if (!r)
		return -EINVAL;
	if (r->detached)
		return 0;
	if (!r->read_only && check_name(r->name, path) == 0)
		rc = r->is_producer ? producer_detach(r, path) : consumer_detach(r, path);
	if (mapping_lost(r))
		rc = -EFAULT;
	r->detached = true;
	/* Unlock before closing: our mapping holds a reference to the open
	 * file, and an OFD lock lives until the open file's last reference. */
	if (!r->read_only)
		plat_unlock_byte(r->fd, r->is_producer ? RING_LOCK_PRODUCER : RING_LOCK_CONSUMER);
	close(r->fd);
	r->fd = -1;
	return rc;
}

RING_API int ring_close(ring_t **rp)
{
	if (!rp || !*rp)
		return 0;
	int rc = ring_detach(*rp);
	unmap_and_free(*rp);
	*rp = NULL;
	return rc;
}

/* ------------------------------------------------------------ both sides, and from outside */

RING_API void ring_get_stats(const ring_t *r, struct ring_stats *st)
{
	if (!r || !st)
		return;
	int self = r->read_only || r->detached ? -1 : r->is_producer ? (int)RING_LOCK_PRODUCER : (int)RING_LOCK_CONSUMER;
	fill_stats(r->hdr, r->capacity, r->fd, self, st);
}

RING_API int ring_inspect(const char *name, struct ring_stats *st)
{
	char path[RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc;
	if (!st)
		return -EINVAL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = open_checked(path, false, &h);
	if (fd < 0)
		return fd;
	fill_stats(&h, h.capacity, fd, -1, st);
	close(fd);
	return 0;
}

RING_API int ring_unlink_stale(const char *name)
{
	char path[RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc = check_name(name, path);
	if (rc < 0)
		return rc;
	int fd = open_checked(path, true, &h);
	if (fd == -EBADMSG || fd == -EPROTO)
		return -EEXIST; /* not a ring of ours: somebody else's segment */
	if (fd < 0)
		return fd;
	rc = lock_producer_byte(fd);
	if (rc == 0)
		rc = remove_name_if_ours(path, fd);
	close(fd);
	return rc;
}

RING_API bool ring_peer_alive(const ring_t *r)
{
	if (!r || r->read_only || r->fd < 0)
		return false;
	return plat_byte_locked(r->fd, r->is_producer ? RING_LOCK_CONSUMER : RING_LOCK_PRODUCER) == 1;
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
