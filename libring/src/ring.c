/* ring.c - the SPSC record ring in POSIX shared memory: create/open, reserve/commit, peek/release, waiting. */
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

#define RING_API __attribute__((visibility("default")))

/* How long a waiting side sleeps before it looks at its peer's liveness:
 * a dead peer is noticed within about this long. */
#define LIVENESS_SLICE_NS (200 * 1000000ll)
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

static inline uint64_t round8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

static inline bool mapping_lost(const ring_t *r)
{
	return atomic_load_explicit(&r->lost, memory_order_relaxed);
}

static inline struct ring_record_header *record_at(const ring_t *r, uint64_t pos)
{
	return (struct ring_record_header *)(r->data + (pos & r->mask));
}

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

/* A single-writer counter: no locked read-modify-write needed. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
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

static inline void wake_if_sleeping(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter);

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

/* ------------------------------------------------------------ waiting */

/* Whether the peer has died. Rate-limited: reading /proc costs system calls. */
static bool peer_dead(ring_t *r)
{
	uint64_t now = plat_now_ns();
	if (now - r->last_liveness_check < LIVENESS_CHECK_INTERVAL_NS)
		return false;
	r->last_liveness_check = now;
	struct ring_shm_header *h = r->hdr;
	uint64_t owner = atomic_load_explicit(r->is_producer ? &h->consumer_owner : &h->producer_owner,
					      memory_order_relaxed);
	if (!owner)
		return false; /* nobody attached: nobody to die */
	return !plat_owner_alive(owner);
}

/* A caller's timeout, turned into a deadline only when a wait really
 * begins: reading the clock on every call that does not wait would cost as
 * much as moving a small record. */
struct deadline {
	int64_t timeout_ns; /* < 0: forever */
	uint64_t at;        /* 0: not yet computed */
};

static uint64_t deadline_at(struct deadline *d)
{
	if (!d->at)
		d->at = d->timeout_ns < 0 ? UINT64_MAX : plat_now_ns() + (uint64_t)d->timeout_ns;
	return d->at;
}

/* Sleep on WORD until READY(r) holds or the slice/deadline passes.
 * Returns 0 to re-check, -ETIMEDOUT at the deadline, -EOWNERDEAD, -EINTR. */
typedef bool (*ready_fn)(ring_t *r);

static int wait_until(ring_t *r, _Atomic uint32_t *word, _Atomic uint64_t *wait_counter, ready_fn ready,
		      struct deadline *dl)
{
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
	 * side stores its index, fences, then reads this word). */
	atomic_store_explicit(word, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (ready(r)) {
		atomic_store_explicit(word, 0, memory_order_relaxed);
		return 0;
	}
	uint64_t left = deadline - now; /* deadline may be UINT64_MAX: stay unsigned */
	int64_t slice = left > (uint64_t)LIVENESS_SLICE_NS ? LIVENESS_SLICE_NS : (int64_t)left;
	counter_add(wait_counter, 1);
	int rc = plat_futex_wait(word, 1, slice);
	atomic_store_explicit(word, 0, memory_order_relaxed);
	if (rc == -EINTR)
		return -EINTR;
	return 0;
}

/* The other side announced a sleep: wake it. Called after the index store. */
static inline void wake_if_sleeping(_Atomic uint32_t *word, _Atomic uint64_t *wake_counter)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(word, memory_order_relaxed) &&
	    atomic_exchange_explicit(word, 0, memory_order_relaxed)) {
		plat_futex_wake(word, 1);
		counter_add(wake_counter, 1);
	}
}

/* ------------------------------------------------------------ producer */

/* Whether a consumer has been attached and none is now (a dead one is the
 * liveness check's business: its owner word stays set). */
static bool consumer_detached(ring_t *r)
{
	return atomic_load_explicit(&r->hdr->consumer_owner, memory_order_relaxed) == 0 &&
	       atomic_load_explicit(&r->hdr->consumer_attaches, memory_order_relaxed) > 0;
}

static bool space_ready(ring_t *r)
{
	r->cached_head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	return r->capacity - (r->tail - r->cached_head) >= r->want_space || consumer_detached(r);
}

/* Make WANT bytes free at the tail, waiting as the policy and timeout allow. */
static int wait_for_space(ring_t *r, uint64_t want, struct deadline *dl, bool may_wait)
{
	if (r->capacity - (r->tail - r->cached_head) >= want)
		return 0;
	r->cached_head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (r->tail - r->cached_head > r->capacity)
		return -EBADMSG; /* a consumer wrote nonsense into its index */
	if (r->capacity - (r->tail - r->cached_head) >= want)
		return 0;
	if (!may_wait)
		return -EAGAIN;
	r->want_space = want;
	for (;;) {
		if (consumer_detached(r))
			return -ENOTCONN; /* like a pipe without a reader: nobody will make room */
		int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits, space_ready,
				    dl);
		if (r->tail - r->cached_head > r->capacity)
			return -EBADMSG;
		if (r->capacity - (r->tail - r->cached_head) >= want)
			return 0;
		if (rc < 0)
			return rc;
	}
}

static bool drained_or_consumer_changed(ring_t *r)
{
	return atomic_load_explicit(&r->hdr->head, memory_order_acquire) == r->tail ||
	       atomic_load_explicit(&r->hdr->consumer_owner, memory_order_relaxed) != r->owner_at_wait;
}

static int wait_drained_unchecked(ring_t *r, int64_t timeout_ns)
{
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
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
		r->owner_at_wait = atomic_load_explicit(&r->hdr->consumer_owner, memory_order_relaxed);
		int rc = wait_until(r, &r->hdr->producer_sleeping, &r->hdr->producer_futex_waits,
				    drained_or_consumer_changed, &dl);
		if (rc < 0 && atomic_load_explicit(&r->hdr->head, memory_order_acquire) != r->tail)
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

static int reserve_unchecked(ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns)
{
	if (!r || !data)
		return -EINVAL;
	*data = NULL;
	if (!r->is_producer)
		return -EPERM;
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
	int rc;
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
	if (!r || !r->is_producer || !r->reserved || len > r->res_len)
		return -EINVAL;
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

RING_API void ring_abort(ring_t *r)
{
	if (r && r->is_producer)
		r->reserved = false;
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
	if (!r)
		return -EINVAL;
	if (!r->is_producer)
		return -EPERM;
	r->eos_marked = true;
	/* The consumer reads eos, then the tail again: records committed before
	 * this store are all seen before end of stream is reported. */
	atomic_store_explicit(&r->hdr->eos, 1, memory_order_release);
	wake_if_sleeping(&r->hdr->consumer_sleeping, &r->hdr->consumer_futex_wakes);
	return 0;
}

RING_API void ring_note_drop(ring_t *r, size_t len)
{
	if (!r || !r->is_producer)
		return;
	counter_add(&r->hdr->records_dropped, 1);
	counter_add(&r->hdr->bytes_dropped, len);
}

RING_API void ring_set_full_policy(ring_t *r, enum ring_full_policy policy)
{
	if (!r || !r->is_producer || (policy != RING_FULL_BLOCK && policy != RING_FULL_DROP))
		return;
	r->policy = policy;
	atomic_store_explicit(&r->hdr->on_full, (uint32_t)policy, memory_order_relaxed);
}

/* ------------------------------------------------------------ consumer */

void ring_publish_head(ring_t *r)
{
	if (r->head == r->head_published)
		return;
	/* Done reading before the producer may overwrite: release. */
	atomic_store_explicit(&r->hdr->head, r->head, memory_order_release);
	r->head_published = r->head;
	wake_if_sleeping(&r->hdr->producer_sleeping, &r->hdr->producer_futex_wakes);
}

static bool data_ready(ring_t *r)
{
	r->cached_tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	return r->cached_tail != r->head || atomic_load_explicit(&r->hdr->eos, memory_order_relaxed);
}

/* Refresh the cached tail, checking it against the mapping. */
static int load_tail(ring_t *r)
{
	r->cached_tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	if (r->cached_tail - r->head > r->capacity || (r->cached_tail & 7) != 0)
		return -EBADMSG;
	return 0;
}

/* Read and check the record header at r->head (which is < tail). Pads are
 * returned with *is_data false. Loads are done once into locals, so the
 * producer rewriting the header meanwhile cannot change what was checked. */
static int read_record(ring_t *r, uint32_t *len, uint64_t *span, bool *is_data)
{
	uint64_t off = r->head & r->mask;
	uint64_t avail = r->cached_tail - r->head;
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
	for (;;) {
		if (r->cached_tail == r->head && (rc = load_tail(r)) < 0)
			return rc;
		while (r->cached_tail != r->head) {
			bool is_data;
			if ((rc = read_record(r, len, span, &is_data)) < 0)
				return rc;
			if (is_data)
				return 0;
			r->head += *span; /* pad: published with the next release or before sleeping */
		}
		ring_publish_head(r);
		if (r->peer_gone)
			return -EOWNERDEAD;
		/* Empty. End of stream only once every record before it is consumed:
		 * read eos, then the tail once more. */
		if (atomic_load_explicit(&r->hdr->eos, memory_order_acquire)) {
			if ((rc = load_tail(r)) < 0)
				return rc;
			if (r->cached_tail == r->head)
				return -ENODATA;
			continue;
		}
		if (timeout_ns == 0) {
			if (peer_dead(r))
				goto dead;
			return -EAGAIN;
		}
		rc = wait_until(r, &r->hdr->consumer_sleeping, &r->hdr->consumer_futex_waits, data_ready,
				&dl);
		if (rc == -EOWNERDEAD)
			goto dead;
		if (rc < 0 && !data_ready(r))
			return rc;
	}
dead:
	/* The producer may have committed more just before dying: drain that
	 * first, then report the death on every later call. */
	r->peer_gone = true;
	return next_record(r, len, span, 0);
}

static int peek_unchecked(ring_t *r, const void **data, size_t *len, int64_t timeout_ns)
{
	if (!r || !data || !len)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	if (r->peeked)
		return -EALREADY;
	uint32_t l;
	uint64_t span;
	int rc = next_record(r, &l, &span, timeout_ns);
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
	if (!r)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	if (!r->peeked)
		return -EINVAL;
	r->head += r->peek_span;
	r->peeked = false;
	counter_add(&r->hdr->records_read, 1);
	counter_add(&r->hdr->bytes_read, r->peek_len);
	ring_publish_head(r);
	return 0;
}

static int64_t skip_to_latest_unchecked(ring_t *r)
{
	if (!r)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	if (r->peeked)
		return -EALREADY;
	int rc = load_tail(r);
	if (rc < 0)
		return rc;
	/* Walk to the newest data record; everything before it is discarded. */
	uint64_t pos = r->head, newest = UINT64_MAX;
	uint64_t skipped = 0, skipped_bytes = 0, last_len = 0;
	while (pos != r->cached_tail) {
		uint64_t saved = r->head;
		uint32_t l;
		uint64_t span;
		bool is_data;
		r->head = pos;
		rc = read_record(r, &l, &span, &is_data);
		r->head = saved;
		if (rc < 0)
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
	ring_publish_head(r);
	return (int64_t)skipped;
}

RING_API int ring_peek_latest(ring_t *r, const void **data, size_t *len, uint64_t *skipped,
			      int64_t timeout_ns)
{
	if (!r || !data || !len)
		return -EINVAL;
	if (r->is_producer || r->read_only)
		return -EPERM;
	if (r->peeked)
		return -EALREADY;
	int64_t n = ring_skip_to_latest(r);
	if (n < 0)
		return (int)n;
	int rc = ring_peek(r, data, len, timeout_ns);
	if (rc == 0 && n == 0) {
		/* We may have waited: take what piled up meanwhile into account. */
		ring_release_peek_only(r);
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
		ring_release_peek_only(r);
		return -EMSGSIZE;
	}
	memcpy(buf, data, len);
	ring_release(r);
	return (ssize_t)len;
}

/* Forget a peek without consuming the record: the next peek returns it again. */
void ring_release_peek_only(ring_t *r)
{
	r->peeked = false;
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

/* ------------------------------------------------------------ checked entry points */

/* A peer that shrank the segment under us turned our mapping into zero
 * pages (plat_guard_mapping): whatever a call computed from them, -EFAULT
 * says what happened, on this call and every later one. */

RING_API int ring_wait_drained(ring_t *r, int64_t timeout_ns)
{
	int rc = wait_drained_unchecked(r, timeout_ns);
	return r && mapping_lost(r) ? -EFAULT : rc;
}

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
