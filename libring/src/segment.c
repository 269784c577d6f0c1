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

static int check_name(const char *name, char path[FR_RING_NAME_MAX + 2])
{
	if (!name)
		return -EINVAL;
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > FR_RING_NAME_MAX)
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
	if (h->header_size != RING_HEADER_SIZE || cap < FR_RING_MIN_CAPACITY || cap > FR_RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0 || h->segment_size != RING_HEADER_SIZE + cap ||
	    h->segment_size > file_size || (uint64_t)st->st_blocks * 512 < h->segment_size ||
	    h->max_consumers < 1 || h->max_consumers > RING_CONSUMERS_MAX)
		return -EBADMSG;
	return 0;
}

/* SEGMENT_SIZE (header and data area, up to 4 GiB + the header) as a mapping
 * length in *MAP_SIZE, or -EFBIG where a size_t cannot hold it (a 32-bit
 * build): truncated, it would map less than the capacity the ring indexes. */
static int map_size_of(uint64_t segment_size, size_t *map_size)
{
	if ((uint64_t)(size_t)segment_size != segment_size)
		return -EFBIG;
	*map_size = (size_t)segment_size;
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

/* The roster of a header copy or a mapping, limited to its slots. */
static uint32_t attached_slots(const struct ring_shm_header *h, unsigned max_consumers, uint32_t *live)
{
	uint32_t all = (1u << max_consumers) - 1;
	uint32_t attached = atomic_load_explicit(&h->attached, memory_order_relaxed) & all;
	if (live)
		*live = atomic_load_explicit(&h->live, memory_order_relaxed) & attached;
	return attached;
}

/* ONLY: the one slot whose counters count (a consumer's own), or -1 for the sum over all slots.
 * PRODUCER_LOCK: the producer's liveness byte, from a validated header copy (the mapping's
 * producer_flags are the peer's to rewrite after that: liveness never reads them). */
static void fill_stats(const struct ring_shm_header *h, uint64_t capacity, unsigned max_consumers, int fd, int self,
		       int only, unsigned producer_lock, struct fr_ring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->capacity = capacity;
	st->max_consumers = max_consumers;
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
#define LOAD(f) atomic_load_explicit(&h->f, memory_order_relaxed)
	st->records_written = LOAD(records_written);
	st->bytes_written = LOAD(bytes_written);
	st->records_dropped = LOAD(records_dropped);
	st->bytes_dropped = LOAD(bytes_dropped);
	st->producer_futex_waits = LOAD(producer_futex_waits);
	st->producer_futex_wakes = LOAD(producer_futex_wakes);
	st->producer_pid = (pid_t)(LOAD(producer_pid) & 0x7fffffff);
	st->eos = LOAD(eos) != 0;
	st->eos_error = read_end_reason(h, NULL, 0);
	st->on_full = LOAD(on_full) == FR_RING_FULL_DROP ? FR_RING_FULL_DROP : FR_RING_FULL_BLOCK;
	st->consumers_reaped = LOAD(consumers_reaped);
#undef LOAD
	uint32_t live, attached = attached_slots(h, max_consumers, &live);
	uint64_t max_used = 0;
	for (unsigned i = 0; i < max_consumers; i++) {
		const struct ring_consumer_slot *s = &h->consumers[i];
		bool on = attached & (1u << i);
		if (only >= 0 && (int)i != only)
			continue;
#define LOAD(f) atomic_load_explicit(&s->f, memory_order_relaxed)
		/* A consumer's own counts start where it attached; the ring's are the slots' sums. */
		st->records_read += LOAD(records_read) - (only >= 0 ? LOAD(read_base) : 0);
		st->bytes_read += LOAD(bytes_read);
		st->records_skipped += LOAD(records_skipped) - (only >= 0 ? LOAD(skipped_base) : 0);
		st->bytes_skipped += LOAD(bytes_skipped);
		st->consumer_futex_waits += LOAD(futex_waits);
		st->consumer_futex_wakes += LOAD(futex_wakes);
		uint64_t head = LOAD(head);
#undef LOAD
		if (on && !(live & (1u << i)) && tail - head <= capacity && tail - head > max_used)
			max_used = tail - head;
	}
	st->used = max_used;
	st->consumers = (unsigned)__builtin_popcount(attached);
	if (attached) {
		unsigned first = (unsigned)__builtin_ctz(attached);
		st->consumer_pid = (pid_t)(atomic_load_explicit(&h->consumers[first].pid, memory_order_relaxed) & 0x7fffffff);
		st->consumer_alive = side_alive(fd, self, RING_LOCK_CONSUMER + first);
	}
	st->producer_alive = side_alive(fd, self, producer_lock);
}

/* Describe the attached consumers of a header (up to MAX into OUT); returns how many are attached. */
static int fill_consumers(const struct ring_shm_header *h, uint64_t capacity, unsigned max_consumers, int fd,
			  int self, struct fr_ring_consumer_info *out, unsigned max)
{
	uint32_t live, attached = attached_slots(h, max_consumers, &live);
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	uint64_t written = atomic_load_explicit(&h->records_written, memory_order_relaxed);
	unsigned n = 0;
	for (uint32_t who = attached; who; who &= who - 1, n++) {
		if (n >= max || !out)
			continue;
		unsigned i = (unsigned)__builtin_ctz(who);
		const struct ring_consumer_slot *s = &h->consumers[i];
		struct fr_ring_consumer_info *c = &out[n];
		memset(c, 0, sizeof(*c));
		c->slot = i;
		c->pid = (pid_t)(atomic_load_explicit(&s->pid, memory_order_relaxed) & 0x7fffffff);
		c->alive = side_alive(fd, self, RING_LOCK_CONSUMER + i);
		c->mode = (live & (1u << i)) ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY;
		c->records_read = atomic_load_explicit(&s->records_read, memory_order_relaxed) -
				  atomic_load_explicit(&s->read_base, memory_order_relaxed);
		c->bytes_read = atomic_load_explicit(&s->bytes_read, memory_order_relaxed);
		c->records_skipped = atomic_load_explicit(&s->records_skipped, memory_order_relaxed) -
				     atomic_load_explicit(&s->skipped_base, memory_order_relaxed);
		uint64_t next = atomic_load_explicit(&s->next_index, memory_order_relaxed);
		c->lag_records = written > next ? written - next : 0;
		uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
		if (c->mode == FR_RING_CONSUMER_EVERY && tail - head <= capacity)
			c->lag_bytes = tail - head;
	}
	return (int)n;
}

static void unmap_and_free(fr_ring_t *r)
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
static int map_guarded(fr_ring_t *r, int prot, int flags)
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

/* Build a producer ring for NAME (checked into PATH) with OPTS, locked,
 * mapped and with its header whole, but not yet under its name (TMP_PATH
 * is its private name, "" if it has none). */
static int build_segment(fr_ring_t **out, const char *name, const struct fr_ring_create_opts *opts, char path[FR_RING_NAME_MAX + 2],
			 char tmp_path[PLAT_SHM_PATH_MAX])
{
	int rc;
	tmp_path[0] = '\0';
	if ((rc = check_name(name, path)) < 0)
		return rc;
	uint64_t cap = opts && opts->capacity ? opts->capacity : FR_RING_DEFAULT_CAPACITY;
	if (cap < FR_RING_MIN_CAPACITY || cap > FR_RING_MAX_CAPACITY || (cap & (cap - 1)) != 0)
		return -EINVAL;
	mode_t mode = opts && opts->mode ? opts->mode : 0600;
	if (mode & ~(mode_t)0777)
		return -EINVAL;
	enum fr_ring_full_policy policy = opts ? opts->on_full : FR_RING_FULL_BLOCK;
	if (policy != FR_RING_FULL_BLOCK && policy != FR_RING_FULL_DROP)
		return -EINVAL;
	unsigned consumers = opts && opts->max_consumers ? opts->max_consumers : FR_RING_DEFAULT_CONSUMERS;
	if (consumers > FR_RING_MAX_CONSUMERS)
		return -EINVAL;
	size_t map_size;
	if ((rc = map_size_of(RING_HEADER_SIZE + cap, &map_size)) < 0)
		return rc;

	fr_ring_t *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->is_producer = true;
	r->producer_lock = RING_LOCK_PRODUCER_LIVE;
	r->capacity = cap;
	r->mask = cap - 1;
	r->map_size = map_size;
	r->max_consumers = consumers;
	r->policy = policy;
	r->hot_wait_ns = FR_RING_HOT_WAIT_DEFAULT_NS;
	r->gate_seen = cap; /* the first consumer reads from the first record: wait for it (FR_RING_FULL_BLOCK) */
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
	    (rc = plat_lock_byte(r->fd, RING_LOCK_PRODUCER_LIVE)) < 0 ||
	    (rc = map_guarded(r, PROT_READ | PROT_WRITE, MAP_POPULATE)) < 0) {
		plat_shm_discard(tmp_path);
		unmap_and_free(r);
		return rc;
	}

	struct ring_shm_header *h = r->hdr;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->segment_size = r->map_size;
	h->max_consumers = consumers;
	atomic_store_explicit(&h->on_full, (uint32_t)policy, memory_order_relaxed);
	atomic_store_explicit(&h->producer_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&h->producer_flags, RING_PRODUCER_HOLDS_LIVE, memory_order_relaxed);
	atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);
	*out = r;
	return 0;
}

RING_API int fr_ring_create(fr_ring_t **out, const char *name, const struct fr_ring_create_opts *opts)
{
	char path[FR_RING_NAME_MAX + 2], tmp_path[PLAT_SHM_PATH_MAX];
	fr_ring_t *r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = build_segment(&r, name, opts, path, tmp_path);
	if (rc < 0)
		return rc;
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
	plat_shm_discard(tmp_path);
	if (rc < 0) {
		unmap_and_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

RING_API int fr_ring_replace(fr_ring_t *old, fr_ring_t **out, const struct fr_ring_create_opts *opts)
{
	char path[FR_RING_NAME_MAX + 2], tmp_path[PLAT_SHM_PATH_MAX];
	fr_ring_t *r;
	if (!old || !out)
		return -EINVAL;
	*out = NULL;
	if (!old->is_producer)
		return -EPERM;
	if (old->detached)
		return -ESHUTDOWN;
	if (old->reserved)
		return -EALREADY;
	if (old->eos_marked)
		return -EPIPE;
	int rc = build_segment(&r, old->name, opts, path, tmp_path);
	if (rc < 0)
		return rc;
	/* We hold the old ring's producer lock, so its name is ours to take
	 * away (nobody else removes it meanwhile), and ours to give to the new
	 * segment. The name is missing for a moment in between: a consumer
	 * looking for it then waits for it (fr_ring_open_wait). */
	rc = remove_name_if_ours(path, old->fd);
	if (rc == 0 || rc == -ENOENT)
		rc = plat_shm_publish(r->fd, tmp_path, path);
	plat_shm_discard(tmp_path);
	if (rc < 0) {
		/* -EEXIST: another producer took the name in that moment */
		unmap_and_free(r);
		return rc;
	}
	r->frame_seq = old->frame_seq; /* frame numbers go on */
	r->hot_lap = old->hot_lap;
	r->hot_wait_ns = old->hot_wait_ns;
	/* Only now, with the new ring in place: consumers that read the mark
	 * and come back for the name find the new ring. */
	mark_eos_replaced(old);
	fr_ring_detach(old); /* its name is no longer its own: nothing is removed */
	*out = r;
	return 0;
}

/* Open, validate and map NAME: read-write (WRITABLE) for a consumer, or
 * read-only for a look with no side attached. */
static int map_segment(fr_ring_t **out, const char *name, bool writable)
{
	char path[FR_RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = open_checked(path, writable, &h);
	if (fd < 0)
		return fd;
	size_t map_size;
	if ((rc = map_size_of(h.segment_size, &map_size)) < 0) {
		close(fd);
		return rc;
	}
	fr_ring_t *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	/* Only the validated copy's sizes are used from here on: a producer
	 * that rewrites its header later cannot make us index past the map. */
	r->fd = fd;
	r->capacity = h.capacity;
	r->mask = h.capacity - 1;
	r->map_size = map_size;
	r->max_consumers = h.max_consumers;
	r->read_only = !writable;
	/* Read once, from the copy: a liveness check never touches the mapping
	 * (a shrunk segment would fault there), and a producer cannot switch it. */
	r->producer_lock = producer_live_byte(&h);
	memcpy(r->name, name, strlen(name) + 1);
	/* No MAP_POPULATE: what the segment claims is not ours to allocate. */
	if ((rc = map_guarded(r, writable ? PROT_READ | PROT_WRITE : PROT_READ, 0)) < 0) {
		unmap_and_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int open_segment(fr_ring_t **out, const char *name)
{
	return map_segment(out, name, false);
}

int producer_alive(const fr_ring_t *r)
{
	if (r->fd < 0)
		return 0;
	return plat_byte_locked(r->fd, r->producer_lock);
}

static int attach_wait(fr_ring_t **out, const char *name, const struct fr_ring_attach_opts *opts);

/* Take ourselves off the roster: the attached bit before the live bit, so
 * the producer never sees a live consumer as an every-consumer. The pid goes
 * to 0 first: a clean detach, not a death. */
static void leave_roster(fr_ring_t *r)
{
	uint32_t bit = 1u << r->slot_index;
	atomic_store_explicit(&r->slot->hold, 0, memory_order_release);
	atomic_store_explicit(&r->slot->pid, 0, memory_order_release);
	atomic_fetch_and(&r->hdr->attached, ~bit);
	atomic_fetch_and(&r->hdr->live, ~bit);
}

/* Take the first free slot of the consumer table: its lock is the slot. */
static int take_slot(fr_ring_t *r)
{
	for (unsigned i = 0; i < r->max_consumers; i++) {
		int rc = plat_lock_byte(r->fd, RING_LOCK_CONSUMER + i);
		if (rc == 0) {
			r->slot_index = i;
			r->slot = &r->hdr->consumers[i];
			return 0;
		}
		if (rc != -EBUSY)
			return rc;
	}
	return -EBUSY; /* every slot has a consumer */
}

/* Join the roster as an EVERY consumer: start at the oldest record still
 * whole. The head goes out, then the roster bit, then the claim is checked
 * (ring_layout.h): a producer that claimed past our start before it saw us
 * makes us start later, at the oldest record still whole then. */
static int join_every(fr_ring_t *r)
{
	struct ring_shm_header *h = r->hdr;
	uint32_t bit = 1u << r->slot_index;
	atomic_fetch_and(&h->live, ~bit);
	for (int attempt = 0; attempt < 1000; attempt++) {
		uint64_t oldest = atomic_load_explicit(&h->oldest, memory_order_acquire);
		uint64_t index = atomic_load_explicit(&h->oldest_index, memory_order_relaxed);
		uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
		if (((oldest | tail) & 7) != 0)
			return -EBADMSG;
		if (tail - oldest > r->capacity) {
			plat_cpu_relax();
			continue; /* lapped between the two loads: look again */
		}
		r->head = r->head_published = oldest;
		r->cached_tail = tail;
		r->next_index = index;
		atomic_store_explicit(&r->slot->head, oldest, memory_order_release);
		atomic_store_explicit(&r->slot->next_index, index, memory_order_relaxed);
		atomic_fetch_or(&h->attached, bit);
		if (atomic_load_explicit(&h->claim, memory_order_seq_cst) <= oldest + r->capacity)
			return 0;
		plat_cpu_relax();
	}
	return -EBADMSG; /* a producer whose claim never lets a start stay whole */
}

/* Join as a LATEST consumer: the first peek returns the newest record. The
 * live bit goes first, so the producer never takes us for an EVERY consumer. */
static int join_latest(fr_ring_t *r)
{
	struct ring_shm_header *h = r->hdr;
	uint32_t bit = 1u << r->slot_index;
	/* The newest committed record is written - 1; newest_index may already
	 * be that of a commit under way (queue.c: load_newest). */
	uint64_t written = atomic_load_explicit(&h->records_written, memory_order_acquire);
	r->next_index = written ? written - 1 : 0;
	r->head = r->head_published = atomic_load_explicit(&h->tail, memory_order_acquire);
	if ((r->head & 7) != 0)
		return -EBADMSG;
	atomic_store_explicit(&r->slot->head, r->head, memory_order_relaxed);
	atomic_store_explicit(&r->slot->next_index, r->next_index, memory_order_relaxed);
	atomic_fetch_or(&h->live, bit);
	atomic_fetch_or(&h->attached, bit);
	return 0;
}

RING_API int fr_ring_attach(fr_ring_t **out, const char *name, const struct fr_ring_attach_opts *opts)
{
	struct fr_ring_attach_opts none = {FR_RING_CONSUMER_EVERY, 0};
	if (!opts)
		opts = &none;
	if (opts->mode != FR_RING_CONSUMER_EVERY && opts->mode != FR_RING_CONSUMER_LATEST)
		return -EINVAL;
	if (opts->wait_ns != 0)
		return attach_wait(out, name, opts);
	fr_ring_t *r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = map_segment(&r, name, true);
	if (rc < 0)
		return rc;
	if ((rc = take_slot(r)) < 0) {
		unmap_and_free(r);
		return rc;
	}
	struct ring_consumer_slot *s = r->slot;
	r->mode = opts->mode == FR_RING_CONSUMER_LATEST ? RING_MODE_LATEST : RING_MODE_EVERY;
	/* The slot is ours (its lock): a dead predecessor's leftovers go. */
	atomic_store_explicit(&s->hold, 0, memory_order_relaxed);
	atomic_store_explicit(&s->mode, r->mode, memory_order_relaxed);
	atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
	/* The slot's counters go on (their sums are the ring's totals); ours
	 * start here. */
	atomic_store_explicit(&s->read_base, atomic_load_explicit(&s->records_read, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&s->skipped_base, atomic_load_explicit(&s->records_skipped, memory_order_relaxed),
			      memory_order_relaxed);
	rc = r->mode == RING_MODE_LATEST ? join_latest(r) : join_every(r);
	if (rc < 0) {
		atomic_fetch_and(&r->hdr->attached, ~(1u << r->slot_index));
		unmap_and_free(r);
		return rc;
	}
	atomic_fetch_add_explicit(&r->hdr->consumer_attaches, 1, memory_order_relaxed);
	/* A producer may be waiting for a consumer (fr_ring_wait_drained, or its first). */
	wake_if_sleeping(&r->hdr->producer_sleeping, &r->hdr->producer_futex_wakes);
	*out = r;
	return 0;
}

RING_API int fr_ring_open(fr_ring_t **out, const char *name)
{
	return fr_ring_attach(out, name, NULL);
}

/* fr_ring_attach() that waits for NAME with a live producer. */
static int attach_wait(fr_ring_t **out, const char *name, const struct fr_ring_attach_opts *opts)
{
	char path[FR_RING_NAME_MAX + 2];
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = check_name(name, path);
	if (rc < 0)
		return rc;
	struct fr_ring_attach_opts now = {opts->mode, 0};
	int64_t timeout_ns = opts->wait_ns;
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : plat_now_ns() + (uint64_t)timeout_ns;
	/* The watch first, then the look: a ring linked in between is seen. */
	int watch = -1;
	plat_watch_shm_dir(&watch, 0);
	for (;;) {
		rc = fr_ring_attach(out, name, &now); /* rings appear whole (fr_ring_create links them in) */
		if (rc == 0 && producer_alive(*out) == 0 &&
		    !atomic_load_explicit(&(*out)->hdr->eos, memory_order_acquire)) {
			/* A dead producer's ring: wait for the one that reclaims the
			 * name. Leave quietly: no stale-name removal from here. A ring
			 * whose producer marked end of stream before it went (it may
			 * have closed just after we joined, waiting for us) is kept:
			 * its records are ours to read, then end of stream. */
			fr_ring_t *stale = *out;
			*out = NULL;
			leave_roster(stale);
			unmap_and_free(stale);
			rc = -ENOENT;
		}
		if (rc != -ENOENT)
			break;
		uint64_t t = plat_now_ns();
		if (t >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		uint64_t left = deadline - t;
		int w = plat_watch_shm_dir(&watch, left > (uint64_t)LIVENESS_SLICE_NS ? LIVENESS_SLICE_NS : (int64_t)left);
		if (w == -EINTR) {
			rc = -EINTR;
			break;
		}
	}
	plat_watch_close(&watch);
	return rc;
}

RING_API int fr_ring_open_wait(fr_ring_t **out, const char *name, int64_t timeout_ns)
{
	struct fr_ring_attach_opts opts = {FR_RING_CONSUMER_EVERY, timeout_ns == 0 ? 1 : timeout_ns};
	return fr_ring_attach(out, name, &opts);
}

/* ------------------------------------------------------------ detach / close */

static int producer_detach(fr_ring_t *r, const char *path)
{
	struct ring_shm_header *h = r->hdr;
	int rc = 0;
	if (r->reserved)
		fr_ring_abort(r);
	if (!r->eos_marked)
		rc = fr_ring_mark_eos(r); /* on failure, still remove the name below */
	/* We hold our own producer lock: the name is ours to remove, if it still names us. */
	int unlinked = remove_name_if_ours(path, r->fd);
	if (rc == 0 && unlinked < 0 && unlinked != -ENOENT)
		rc = unlinked;
	atomic_store_explicit(&h->producer_pid, 0, memory_order_release);
	return rc;
}

static int consumer_detach(fr_ring_t *r, const char *path)
{
	struct ring_shm_header *h = r->hdr;
	int rc = 0;
	if (r->peeked)
		rc = fr_ring_release(r);
	else
		publish_head(r);
	/* Off the roster before the lock goes: a clean detach frees the slot
	 * and its hold at once, and a producer waiting for us looks again
	 * (and, draining, learns how far the last of us read). */
	if (r->mode == RING_MODE_EVERY)
		atomic_store_explicit(&h->last_head, r->head, memory_order_relaxed);
	leave_roster(r);
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

RING_API int fr_ring_detach(fr_ring_t *r)
{
	char path[FR_RING_NAME_MAX + 2];
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
	if (!r->read_only && r->is_producer) {
		plat_unlock_byte(r->fd, RING_LOCK_PRODUCER_LIVE); /* dead to the consumers from here */
		plat_unlock_byte(r->fd, RING_LOCK_PRODUCER);
	} else if (!r->read_only) {
		plat_unlock_byte(r->fd, RING_LOCK_CONSUMER + r->slot_index);
	}
	close(r->fd);
	r->fd = -1;
	return rc;
}

RING_API int fr_ring_close(fr_ring_t **rp)
{
	if (!rp || !*rp)
		return 0;
	int rc = fr_ring_detach(*rp);
	unmap_and_free(*rp);
	*rp = NULL;
	return rc;
}

/* ------------------------------------------------------------ both sides, and from outside */

/* The lock byte our own descriptor holds (it does not show through it), or -1. */
static int own_lock(const fr_ring_t *r)
{
	if (r->read_only || r->detached)
		return -1;
	return r->is_producer ? (int)RING_LOCK_PRODUCER_LIVE : (int)(RING_LOCK_CONSUMER + r->slot_index);
}

RING_API void fr_ring_get_stats(const fr_ring_t *r, struct fr_ring_stats *st)
{
	if (!r || !st)
		return;
	fill_stats(r->hdr, r->capacity, r->max_consumers, r->fd, own_lock(r),
		   r->is_producer || r->read_only ? -1 : (int)r->slot_index, r->producer_lock, st);
}

RING_API int fr_ring_inspect(const char *name, struct fr_ring_stats *st)
{
	char path[FR_RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc;
	if (!st)
		return -EINVAL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = open_checked(path, false, &h);
	if (fd < 0)
		return fd;
	fill_stats(&h, h.capacity, h.max_consumers, fd, -1, -1, producer_live_byte(&h), st);
	close(fd);
	return 0;
}

RING_API int fr_ring_unlink_stale(const char *name)
{
	char path[FR_RING_NAME_MAX + 2];
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

RING_API bool fr_ring_peer_alive(const fr_ring_t *r)
{
	if (!r || r->read_only || r->fd < 0)
		return false;
	if (!r->is_producer)
		return plat_byte_locked(r->fd, r->producer_lock) == 1;
	for (uint32_t who = roster(r, NULL); who; who &= who - 1)
		if (plat_byte_locked(r->fd, RING_LOCK_CONSUMER + (unsigned)__builtin_ctz(who)) == 1)
			return true;
	return false;
}

RING_API int fr_ring_consumers(const fr_ring_t *r, struct fr_ring_consumer_info *out, unsigned max)
{
	if (!r || (!out && max))
		return -EINVAL;
	return fill_consumers(r->hdr, r->capacity, r->max_consumers, r->fd, own_lock(r), out, max);
}

RING_API int fr_ring_inspect_consumers(const char *name, struct fr_ring_consumer_info *out, unsigned max)
{
	char path[FR_RING_NAME_MAX + 2];
	struct ring_shm_header h;
	int rc;
	if (!out && max)
		return -EINVAL;
	if ((rc = check_name(name, path)) < 0)
		return rc;
	int fd = open_checked(path, false, &h);
	if (fd < 0)
		return fd;
	rc = fill_consumers(&h, h.capacity, h.max_consumers, fd, -1, out, max);
	close(fd);
	return rc;
}

RING_API void fr_ring_mapping(const fr_ring_t *r, const void **base, size_t *size)
{
	if (base)
		*base = r ? (const void *)r->hdr : NULL;
	if (size)
		*size = r ? r->map_size : 0;
}

RING_API const char *fr_ring_name(const fr_ring_t *r)
{
	return r ? r->name : NULL;
}
