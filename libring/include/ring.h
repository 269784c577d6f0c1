/* ring.h - a single-producer, many-consumer record ring in POSIX shared memory.
 *
 * One producer process creates a named ring; up to max_consumers consumer
 * processes attach to it at once, each as an EVERY (lossless: the producer
 * waits for it) or a LATEST (live: it reads the newest record and never
 * slows anyone) consumer. The producer reserves space *inside* the shared
 * mapping, writes its payload there and commits it; each consumer peeks the
 * record where it lies and releases it when done. No byte is copied by the
 * library on this path, for any number of consumers.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success
 * and a negative errno value on failure; fr_ring_strerror() turns it into text.
 * The codes that have a ring-specific meaning:
 *
 *   -EINVAL        bad argument (NULL, capacity not a power of two, ...)
 *   -ENAMETOOLONG  ring name longer than FR_RING_NAME_MAX
 *   -ENOENT        no ring of that name (consumer)
 *   -EBUSY         the ring already has a live producer / all its consumer slots taken
 *   -EEXIST        the name is taken by a segment that is not a ring
 *   -EPROTO        the segment is a ring of another layout version
 *   -EBADMSG       the name is not a framering ring segment (another file, a
 *                  FIFO, a directory, a link), or the segment or a record in
 *                  it is corrupt. A consumer gets it for corruption at the ring
 *                  level (indices, record headers): it cannot go on reading
 *                  that ring, so a reader loop should stop, not retry
 *   -EMSGSIZE      record larger than fr_ring_max_record(), or a read buffer too small
 *   -EAGAIN        non-blocking call could not proceed now
 *   -ETIMEDOUT     a blocking call's timeout expired
 *   -ENOBUFS       ring full under FR_RING_FULL_DROP: the record was dropped and counted
 *   -ENODATA       end of stream: the producer marked it (or closed) and all
 *                  records before it have been consumed
 *   -EREMOTEIO     end of stream, marked by a producer that failed
 *                  (fr_ring_mark_eos_error): the stream is not complete;
 *                  fr_ring_end_reason() says why
 *   -ESTALE        the producer replaced this ring by a new one under the
 *                  same name (fr_ring_replace) and every record of this one has
 *                  been read: close it and attach to the name again
 *   -EOWNERDEAD    the peer process died (producer: the last consumer died and
 *                  the record does not fit in what it left, on every call
 *                  until a consumer attaches; consumer: producer died and its
 *                  records are drained)
 *   -EALREADY      a reservation / peeked record is already outstanding
 *   -EPERM         operation not allowed on this side (e.g. peek on a producer)
 *   -EPIPE         reserve after fr_ring_mark_eos()
 *   -ENOTCONN      producer waited for a consumer that has detached (cleanly) and
 *                  none is attached now: like writing to a pipe without a reader
 *                  (-EOWNERDEAD instead when the last one to go died)
 *   -EINTR         a blocking call was interrupted by a signal handler (call again,
 *                  or stop: this is how Ctrl-C reaches a program that waits)
 *   -EFAULT        the peer shrank the segment (ftruncate) under our mapping: the
 *                  ring is unusable; every later call fails the same way
 *   -ENOSPC        not enough shared memory for the segment (fr_ring_create: the
 *                  file system of /dev/shm is too small or full)
 *   -EFBIG         the segment is larger than a size_t can hold, so this process
 *                  cannot map it (only on a 32-bit build: a capacity of 4 GiB)
 *   -ECANCELED     a waiting call was cut short by fr_ring_interrupt()
 *   -ESHUTDOWN     the handle was detached (fr_ring_detach()): only fr_ring_close()
 *                  and the read-only getters remain
 *
 * Timeouts are in nanoseconds: 0 (FR_RING_NO_WAIT) never waits, any negative
 * value (FR_RING_WAIT_FOREVER is -1) waits without a limit.
 *
 * Liveness: a side is attached exactly while it holds a lock on its own
 * byte of the segment file (see ring_layout.h); the kernel drops the lock
 * when the process ends, however it ends. So a peer is known dead without
 * looking for it in /proc (it may live in another pid namespace), a pid
 * that was reused cannot pose as a peer, and two consumers can never both
 * attach. Pids in the segment are for display only. A process forked from a
 * side (without exec) shares its open file and keeps the side alive.
 *
 * Shrunk segments: touching a page of a shared mapping past the end of its
 * file raises SIGBUS. Every mapping the library makes is guarded: on such a
 * fault its whole range becomes anonymous zero pages (so data pointers handed
 * out earlier stay readable and read zeros) and the calls return -EFAULT. The
 * SIGBUS handler is installed process-wide when a ring is mapped (again, if
 * another handler replaced it since); for any other SIGBUS it steps aside and
 * restores the handler that was there before, so that one acts as usual.
 *
 * Threading: a fr_ring_t handle belongs to one side and is not shared between
 * threads without external locking; the one exception is fr_ring_interrupt(),
 * which any thread or a signal handler may call while another thread uses
 * the handle. The two sides run concurrently without locks; ordering is
 * documented next to each index in ring_layout.h.
 */
#ifndef FRAMERING_RING_H
#define FRAMERING_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FR_RING_NAME_MAX 200            /* bytes, without the leading '/' */
#define FR_RING_DEFAULT_CAPACITY (64u << 20)
#define FR_RING_MIN_CAPACITY 4096u
#define FR_RING_MAX_CAPACITY (1ull << 32) /* 4 GiB: two frames of the largest size a frame may have */
#define FR_RING_MAX_ALIGN 4096u         /* largest payload alignment fr_ring_reserve() accepts */
#define FR_RING_MAX_CONSUMERS 12u       /* consumers attached at once, at the most */
#define FR_RING_DEFAULT_CONSUMERS 8u

/* Timeouts are in nanoseconds; any negative value waits forever. */
#define FR_RING_WAIT_FOREVER ((int64_t)-1)
#define FR_RING_NO_WAIT ((int64_t)0)

typedef struct fr_ring fr_ring_t;

/* What the producer does when a record does not fit. */
enum fr_ring_full_policy {
	FR_RING_FULL_BLOCK = 0, /* wait for the consumer (lossless) up to the call's timeout */
	FR_RING_FULL_DROP = 1,  /* fail at once with -ENOBUFS and count a drop */
};

struct fr_ring_create_opts {
	uint64_t capacity;             /* data area in bytes, a power of two; 0: FR_RING_DEFAULT_CAPACITY */
	mode_t mode;                   /* permission bits of the segment; 0: 0600 */
	enum fr_ring_full_policy on_full; /* default for fr_ring_reserve() */
	unsigned max_consumers;        /* 1..FR_RING_MAX_CONSUMERS; 0: FR_RING_DEFAULT_CONSUMERS */
};

/* How a consumer reads. */
enum fr_ring_consumer_mode {
	/* Lossless: every record, in order. The producer never writes over a
	 * record it has not released (under FR_RING_FULL_BLOCK it waits, under
	 * FR_RING_FULL_DROP it drops). Attaching late, it starts at the oldest
	 * record still whole in the ring. */
	FR_RING_CONSUMER_EVERY = 0,
	/* Live: each peek returns the newest record (counting the ones it
	 * skipped). It never slows the producer or another consumer; a record
	 * it holds is never overwritten while held (the producer writes on
	 * around it: give the ring room for one record per live consumer).
	 * Attaching late, its first peek returns the newest record. */
	FR_RING_CONSUMER_LATEST = 1,
};

struct fr_ring_attach_opts {
	enum fr_ring_consumer_mode mode;
	int64_t wait_ns;               /* wait for a live producer of that name: 0 no, < 0 forever */
};

/* Counters and liveness, readable by either side or from outside (fr_ring_inspect). */
struct fr_ring_stats {
	uint64_t capacity;          /* data area bytes */
	uint64_t used;              /* bytes committed and not yet released, pads included (after the
	                               hot lap's early wrap, the rest of the lap: see lag_records) */
	uint64_t records_written, bytes_written;   /* committed by the producer */
	uint64_t records_dropped, bytes_dropped;   /* refused under FR_RING_FULL_DROP or fr_ring_note_drop() */
	uint64_t records_read, bytes_read;         /* released by the consumer */
	uint64_t records_skipped, bytes_skipped;   /* discarded by fr_ring_skip_to_latest() */
	uint64_t producer_futex_waits, producer_futex_wakes; /* system calls made by each side: */
	uint64_t consumer_futex_waits, consumer_futex_wakes; /* zero while nobody sleeps */
	pid_t producer_pid, consumer_pid;          /* as the side stored it (display only); 0: none */
	bool producer_alive, consumer_alive;       /* the side holds its lock: attached and running */
	bool eos;                   /* the producer marked end of stream */
	enum fr_ring_full_policy on_full;
	unsigned consumers;         /* attached now */
	unsigned max_consumers;
	uint64_t consumers_reaped;  /* dead consumers the producer took off the roster */
	int eos_error;              /* eos marked by fr_ring_mark_eos_error(): its negative errno; else 0 */
};

/* One attached consumer (fr_ring_consumers, fr_ring_inspect_consumers). */
struct fr_ring_consumer_info {
	unsigned slot;                  /* 0..max_consumers-1 */
	pid_t pid;                      /* as it stored it (display only) */
	bool alive;                     /* holds its slot's lock */
	enum fr_ring_consumer_mode mode;
	uint64_t records_read, bytes_read;
	uint64_t records_skipped;       /* EVERY: by skip_to_latest; LATEST: passed over for newer ones */
	uint64_t lag_records;           /* committed records it has not come to yet */
	uint64_t lag_bytes;             /* EVERY: bytes between its head and the tail, pads included */
};

/* fr_ring_create - create the ring NAME and attach as its producer.
 * NAME is 1..FR_RING_NAME_MAX bytes of [A-Za-z0-9._-], no '/'. The segment is
 * built without a name, with every byte of it allocated (so a short
 * /dev/shm fails here, not with SIGBUS later), and linked into place whole.
 * A ring of that name left by a dead producer is reclaimed (its name is
 * removed and ours put there while we hold its producer lock, so two
 * producers reclaiming one name cannot both win); one held by a live
 * producer gives -EBUSY. opts may be NULL for the defaults.
 * Errors: -EINVAL, -ENAMETOOLONG, -EBUSY, -EEXIST (the name is taken by
 * something that is not a ring of this version), -ENOSPC, -EFBIG (32-bit
 * build: capacity too large to map), or an errno from open or mmap (e.g.
 * -EACCES, -ENOMEM). */
int fr_ring_create(fr_ring_t **out, const char *name, const struct fr_ring_create_opts *opts);

/* fr_ring_attach - attach to ring NAME as a consumer in OPTS->mode (NULL: an
 * EVERY consumer that does not wait), taking a free slot of the consumer
 * table. With OPTS->wait_ns != 0 it waits like fr_ring_open_wait().
 * Errors as fr_ring_open(); -EBUSY when all max_consumers slots are taken. */
int fr_ring_attach(fr_ring_t **out, const char *name, const struct fr_ring_attach_opts *opts);

/* fr_ring_open - open the existing ring NAME as an EVERY consumer.
 * The segment's header is validated before anything else is read (anything
 * but a regular file is refused before it is even opened). The consumer
 * starts at the oldest unread record. A ring whose producer is gone is
 * opened too (to read what it left; then -EOWNERDEAD).
 * Errors: -ENOENT, -EBUSY (every consumer slot is taken), -EPROTO (other
 * layout version), -EBADMSG (not a ring, or corrupt), -EACCES, -EINVAL,
 * -EFBIG (32-bit build: a segment too large to map). */
int fr_ring_open(fr_ring_t **out, const char *name);

/* fr_ring_open_wait - fr_ring_open(), but wait up to timeout_ns for a ring NAME
 * with a live producer (inotify on /dev/shm; no polling loop). A stale ring
 * left under the name by a producer that died is passed over: the call
 * waits for the producer that reclaims the name. A ring whose producer
 * marked end of stream before it went is not (it may have closed just after
 * the consumer came): its records are read, then -ENODATA. -ETIMEDOUT if
 * none came.
 * A ring appears whole: fr_ring_create() links it into place once built. */
int fr_ring_open_wait(fr_ring_t **out, const char *name, int64_t timeout_ns);

/* fr_ring_detach - end this side's attachment now, but keep the mapping, so
 * that data pointers handed out earlier stay readable until fr_ring_close().
 * A producer aborts its reservation, marks end of stream (if not yet done)
 * and removes the name: the consumer keeps its mapping, drains what is
 * left, then gets -ENODATA. A consumer releases its record and leaves the
 * slot to the next consumer; if the producer is gone it also removes the
 * stale name (only if the name still refers to this segment). Either side
 * drops its liveness lock. Later calls on R fail with -ESHUTDOWN, except
 * fr_ring_close(), fr_ring_interrupt() and the getters. Returns 0, or the first
 * thing that failed (e.g. -EFAULT, or an errno from unlink); the detach
 * itself always happens. A second call returns 0. */
int fr_ring_detach(fr_ring_t *r);

/* fr_ring_close - fr_ring_detach() if not yet done, unmap and free *r, then set
 * *r to NULL; NULL is a no-op. Returns what fr_ring_detach() returned. */
int fr_ring_close(fr_ring_t **r);

/* fr_ring_interrupt - make the blocking call waiting on R in another thread
 * (or the next one, if none waits now) return -ECANCELED at once. Safe
 * from any thread and from a signal handler: the way to stop a thread that
 * waits forever, or a Ctrl-C handler that must not race the next wait.
 * Returns 0, or -EINVAL for NULL. */
int fr_ring_interrupt(fr_ring_t *r);

/* ------------------------------------------------------------ producer */

/* fr_ring_reserve - reserve LEN bytes for one record and return in *data a
 * pointer into the shared mapping where the payload is written in place.
 * The payload starts at a multiple of ALIGN (a power of two up to
 * FR_RING_MAX_ALIGN; below 8, or 0, means 8) and is one contiguous span: a
 * record never wraps. LEN + ALIGN must fit in the capacity (-EMSGSIZE). Publish it with fr_ring_commit(), or give it back with fr_ring_abort().
 * Waiting follows the ring's policy: FR_RING_FULL_BLOCK waits up to timeout_ns
 * (-EAGAIN for FR_RING_NO_WAIT, -ETIMEDOUT after a wait); FR_RING_FULL_DROP never
 * waits and returns -ENOBUFS, counted as a dropped record. Records held by
 * latest-consumers are written around; when they leave no span long enough
 * for LEN, the ring counts as full until one is released (a blocking reserve
 * looks again every millisecond: a release does not wake the producer).
 * Errors: -EMSGSIZE, -EINVAL, -EALREADY, -EPERM, -EAGAIN, -ETIMEDOUT,
 * -ENOBUFS, -EOWNERDEAD / -ENOTCONN (no consumer is attached, the last one
 * died / detached, and the record does not fit in what it left: the call
 * fails so, waiting or not, until a consumer attaches; a record that fits
 * still goes in, whenever the death was noticed; while none has attached
 * yet, a full ring just waits). */
int fr_ring_reserve(fr_ring_t *r, size_t len, size_t align, void **data, int64_t timeout_ns);

/* fr_ring_commit - publish the reserved record with its final length LEN
 * (<= the reserved length). Wakes the consumer only if it sleeps.
 * Errors: -EINVAL (no reservation, or LEN too large), -EPIPE (end of stream
 * was marked since the reservation: the record is dropped, never seen). */
int fr_ring_commit(fr_ring_t *r, size_t len);

/* fr_ring_abort - give back the outstanding reservation; the consumer never sees it.
 * Errors: -EINVAL (nothing reserved), -EPERM (not a producer). */
int fr_ring_abort(fr_ring_t *r);

/* fr_ring_write - copy LEN bytes from DATA as one record (reserve + memcpy +
 * commit). For small messages; errors as fr_ring_reserve(). */
int fr_ring_write(fr_ring_t *r, const void *data, size_t len, int64_t timeout_ns);

/* fr_ring_mark_eos - mark end of stream after the last committed record and wake
 * the consumer. Further reserves give -EPIPE. */
int fr_ring_mark_eos(fr_ring_t *r);

/* fr_ring_replace - make a new ring with OPTS (NULL: defaults) under producer
 * R's name and return it in *OUT, e.g. a larger one when records no longer
 * fit. The new ring is in place before R ends: R's consumers read every
 * record committed to it, then get -ESTALE, and attaching to the name again
 * finds the new ring. The frame counter (fr_frame_reserve's seq) goes on. R is
 * detached (fr_ring_detach: pointers into it stay valid until fr_ring_close(&R)).
 * On failure R is unchanged and goes on working, except after -EEXIST
 * (another producer took the name in the moment it was free): then R has no
 * name any more. Consumers follow by name: a ring replaced again before one
 * of R's consumers has attached to its successor leaves that consumer the
 * newest ring, and the records of the rings between are lost to it, even to
 * an every-consumer (fr_ring_wait_consumers on the new ring tells when they
 * have followed; framering-capture replaces a ring only when frames grew).
 * Errors: as fr_ring_create(), -EPERM (not a producer), -EALREADY (a
 * reservation is outstanding), -EPIPE (end of stream was marked). */
int fr_ring_replace(fr_ring_t *r, fr_ring_t **out, const struct fr_ring_create_opts *opts);

/* fr_ring_mark_eos_error - mark end of stream like fr_ring_mark_eos(), saying that
 * the stream ends because the producer failed (a decode error, a source that
 * went away): a consumer gets -EREMOTEIO instead of -ENODATA once it has read
 * every record before the mark, and fr_ring_end_reason() returns ERR and
 * MESSAGE. ERR is a negative errno value (anything else is stored as -EIO);
 * MESSAGE is one line, cut to FR_RING_EOS_MESSAGE_MAX - 1 bytes (NULL: none).
 * Errors: -EALREADY (end of stream was marked already: the first mark
 * stands), -EPERM (not a producer). */
#define FR_RING_EOS_MESSAGE_MAX 128u
int fr_ring_mark_eos_error(fr_ring_t *r, int err, const char *message);

/* fr_ring_wait_drained - wait up to timeout_ns until the consumer has released
 * every committed record (so closing the ring loses nothing). Waits for a
 * consumer to attach if none has yet; woken by release, attach and detach,
 * no polling. Errors: -ETIMEDOUT, -EAGAIN (FR_RING_NO_WAIT), -ENOTCONN (the
 * consumer detached with records unread), -EOWNERDEAD (it died so), -EINTR, -EPERM. */
int fr_ring_wait_drained(fr_ring_t *r, int64_t timeout_ns);

/* fr_ring_wait_consumers - wait up to timeout_ns until at least N consumers are
 * attached (of any mode): e.g. all the lossless consumers of a pipeline,
 * before the first record, so that none starts late. Woken by each attach,
 * no polling. Errors: -ETIMEDOUT, -EAGAIN (FR_RING_NO_WAIT), -EINVAL (N above
 * max_consumers), -ECANCELED, -EINTR, -EPERM. */
int fr_ring_wait_consumers(fr_ring_t *r, unsigned n, int64_t timeout_ns);

/* fr_ring_note_drop - count a record of LEN bytes the caller chose not to write
 * (e.g. after an -EAGAIN under FR_RING_FULL_BLOCK). */
void fr_ring_note_drop(fr_ring_t *r, size_t len);

/* fr_ring_set_full_policy - change the policy fr_ring_reserve() follows from now on. */
void fr_ring_set_full_policy(fr_ring_t *r, enum fr_ring_full_policy policy);

/* fr_ring_set_hot_lap - keep the producer's records in the first BYTES of the
 * data area for as long as the consumers keep up, so that frames are written
 * into memory the consumers just read and read while still in the cache.
 * A byte ring otherwise reuses the space freed longest ago: with a ring of
 * many frames every frame goes out to DRAM and back (issue 13: 2-4x slower
 * at 1080p here). When the next record would end past BYTES, the producer
 * starts the lap again at the front of the data area (a pad covers the
 * rest), waiting up to WAIT_NS for the consumers to release the front. If
 * they do not in time (a slow or stalled consumer), the record goes where it
 * would have gone, the rest of the ring takes up the slack as before, and
 * the producer does not wait for the front again until the lap ends. So a
 * reserve may wait up to WAIT_NS more than it would otherwise, at most once
 * per lap, and never past its own timeout; FR_RING_FULL_DROP and
 * FR_RING_NO_WAIT reserves never wait for the front. Consumers see nothing
 * but pads; no record is lost or reordered, and a late every-consumer
 * finds fewer old records to start from while the lap is short.
 * BYTES: 0 (the default) sizes the lap for two records of the size being
 * reserved, at least FR_RING_HOT_LAP_MIN, for records of at least
 * FR_RING_HOT_LAP_MIN_RECORD bytes (frames; smaller messages ran slower with
 * a lap and go round the whole ring); FR_RING_HOT_LAP_OFF uses the whole ring
 * in turn for every record; any other value is the lap for every record.
 * WAIT_NS < 0 takes FR_RING_HOT_WAIT_DEFAULT_NS.
 * Errors: -EINVAL (NULL), -EPERM (not a producer). */
#define FR_RING_HOT_LAP_MIN (4u << 20)
#define FR_RING_HOT_LAP_MIN_RECORD 4096u
#define FR_RING_HOT_LAP_OFF UINT64_MAX
#define FR_RING_HOT_WAIT_DEFAULT_NS ((int64_t)4000000) /* 4 ms: longer than a consumer takes for a 1080p frame */
int fr_ring_set_hot_lap(fr_ring_t *r, uint64_t bytes, int64_t wait_ns);

/* fr_ring_max_record - the largest LEN fr_ring_reserve() accepts (capacity / 2); 0 for NULL. */
size_t fr_ring_max_record(const fr_ring_t *r);

/* ------------------------------------------------------------ consumer */

/* fr_ring_peek - wait up to timeout_ns for the next record and return it in
 * place: *data points into the shared mapping, *len is its length. The record
 * stays valid until fr_ring_release(). An EVERY consumer gets the next record in
 * order; a LATEST consumer the newest one not yet returned. Every header read
 * from the segment is checked against the mapping first. End of stream, once reported, stays
 * reported: nothing a producer commits after it is delivered.
 * Errors: -EAGAIN, -ETIMEDOUT, -ENODATA (end of stream), -EOWNERDEAD
 * (producer died, nothing left), -EBADMSG (corrupt ring: stop reading),
 * -ECANCELED, -EALREADY, -EPERM. */
int fr_ring_peek(fr_ring_t *r, const void **data, size_t *len, int64_t timeout_ns);

/* fr_ring_peek_latest - like fr_ring_peek(), but first discard every committed
 * record except the newest (counted as skipped) and return that one. If
 * skipped is not NULL it receives how many records were discarded. (For a
 * LATEST consumer this is fr_ring_peek() with the count.) */
int fr_ring_peek_latest(fr_ring_t *r, const void **data, size_t *len, uint64_t *skipped,
		     int64_t timeout_ns);

/* fr_ring_release - free the record returned by the last peek, so the producer
 * may reuse its space; wakes the producer only if it sleeps.
 * Errors: -EINVAL (nothing peeked), -EPERM (not a consumer). */
int fr_ring_release(fr_ring_t *r);

/* fr_ring_unpeek - give the record returned by the last peek back unread: it
 * is not counted as read, and the next peek returns it again. An EVERY
 * consumer gets exactly this record again; a LATEST consumer drops its hold
 * and gets the newest record, which is this one unless a newer one came
 * meanwhile (or the producer wrote over it once it was no longer held).
 * For a reader that peeked a record it can no longer hand on, e.g. a wait
 * in a worker thread whose caller gave up (a cancelled asyncio task).
 * Errors: -EINVAL (nothing peeked), -EPERM (not a consumer). */
int fr_ring_unpeek(fr_ring_t *r);

/* fr_ring_read - copy the next record into BUF (BUFLEN bytes) and release it;
 * returns its length. -EMSGSIZE if it does not fit (the record stays);
 * other errors as fr_ring_peek(). */
ssize_t fr_ring_read(fr_ring_t *r, void *buf, size_t buflen, int64_t timeout_ns);

/* fr_ring_skip_to_latest - discard every committed record except the newest, without
 * waiting; returns how many were discarded (>= 0), or an error as fr_ring_peek(). */
int64_t fr_ring_skip_to_latest(fr_ring_t *r);

/* ------------------------------------------------------------ both sides */

/* fr_ring_get_stats - fill *st from the shared counters. The read/skip counters
 * and futex counts of the consumer side are this consumer's own on a
 * consumer's handle, the sum over all consumers on the producer's;
 * consumer_pid/consumer_alive name the first attached consumer. */
void fr_ring_get_stats(const fr_ring_t *r, struct fr_ring_stats *st);

/* fr_ring_consumers - describe up to MAX attached consumers into OUT; returns
 * how many are attached (may exceed MAX), or -EINVAL. */
int fr_ring_consumers(const fr_ring_t *r, struct fr_ring_consumer_info *out, unsigned max);

/* fr_ring_inspect_consumers - the same for ring NAME, without attaching.
 * Errors as fr_ring_inspect(). */
int fr_ring_inspect_consumers(const char *name, struct fr_ring_consumer_info *out, unsigned max);

/* fr_ring_inspect - read the counters of ring NAME without attaching to it
 * (read-only mapping, header validated). For tools like framering-ctl.
 * Errors as fr_ring_open(), except -EBUSY never happens. */
int fr_ring_inspect(const char *name, struct fr_ring_stats *st);

/* fr_ring_unlink_stale - remove ring NAME if its producer is not alive. Only
 * the segment that was checked is ever removed: the check and the unlink
 * happen while holding its producer lock.
 * -EBUSY if a live producer holds it, -ENOENT if there is none (or the name
 * was given to another segment meanwhile), -EEXIST if the name is not a
 * framering ring of this version (it is left alone), -EACCES. */
int fr_ring_unlink_stale(const char *name);

/* fr_ring_peer_alive - whether the other side is attached (holds its lock); for
 * the producer: whether any consumer is. */
bool fr_ring_peer_alive(const fr_ring_t *r);

/* fr_ring_mapping - the whole shared mapping (for callers that want to prove
 * that a pointer lies inside it). */
void fr_ring_mapping(const fr_ring_t *r, const void **base, size_t *size);

/* fr_ring_name - the name the ring was created or opened with. */
const char *fr_ring_name(const fr_ring_t *r);

/* fr_ring_set_meta / fr_ring_get_meta - a small (FR_RING_META_SIZE bytes) area the
 * producer fills with a description of the stream (e.g. the current frame
 * format), readable at any time by the consumer or fr_ring_inspect_meta();
 * consistent under concurrent updates (sequence lock). The getters zero-fill
 * META to LEN bytes and return the stored length (>= 0); -EAGAIN if the
 * producer kept rewriting it through 1000 attempts. */
#define FR_RING_META_SIZE 256u
int fr_ring_set_meta(fr_ring_t *r, const void *meta, size_t len);
int fr_ring_get_meta(const fr_ring_t *r, void *meta, size_t len);
int fr_ring_inspect_meta(const char *name, void *meta, size_t len);

/* fr_ring_end_reason - why the stream of R ended: 0 if it ended cleanly or has
 * not ended (as this consumer has seen it), else the negative errno the
 * producer passed to fr_ring_mark_eos_error(), with its message copied to MSG
 * (LEN bytes, always NUL-terminated; MSG may be NULL). The copy is bounded
 * whatever the segment holds; the bytes are the producer's: a program that
 * prints them to a terminal escapes what is not printable. */
int fr_ring_end_reason(const fr_ring_t *r, char *msg, size_t len);

/* fr_ring_strerror - a static description of a negative error code from this library. */
const char *fr_ring_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* FRAMERING_RING_H */
