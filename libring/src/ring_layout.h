/* ring_layout.h - the layout of a framering ring in shared memory, field by field.
 *
 * A segment is RING_HEADER_SIZE bytes of header followed by the data area of
 * `capacity` bytes (a power of two). Indices count bytes and only grow; the
 * offset in the data area is index & (capacity - 1). Each side owns one
 * index and writes it alone; it reads the other's, and caches it so it only
 * touches the other side's cache line when its cached copy says "no room" /
 * "nothing new".
 *
 * The data area is a sequence of records, each starting 8-byte aligned:
 *
 *   +-------------------+---------------------+----------+
 *   | u32 len | u32 type| payload (len bytes) | pad to 8 |
 *   +-------------------+---------------------+----------+
 *
 * type RING_REC_DATA: len is the payload length; the record spans
 *   RING_REC_HDR + round_up(len, 8) bytes.
 * type RING_REC_PAD: the producer skipped this span (to the end of the data
 *   area, so that no record wraps, or to align the next payload); len is the
 *   whole span including this header.
 * A record never crosses the end of the data area.
 *
 * Memory ordering (C11 atomics on the fields marked _Atomic):
 *  - The producer writes the record bytes, then stores `tail` with release;
 *    the consumer loads `tail` with acquire before reading record bytes.
 *  - The consumer stores `head` with release after it has finished reading a
 *    record; the producer loads `head` with acquire before reusing the space.
 *  - Sleeping (futex) uses a Dekker handshake with a sequentially consistent
 *    fence on both sides: the waiter stores its `*_sleeping` word = 1, fences,
 *    then re-checks the index; the other side stores the index, fences, then
 *    loads `*_sleeping`. At least one of them sees the other's store, so a
 *    wake-up is never lost, and while nobody sleeps no system call is made.
 *
 * Nothing in here is trusted by a consumer: the immutable fields are checked
 * once at open and copied to process memory; indices and record headers are
 * checked against the mapping every time they are read. Liveness is not
 * read from here at all (see RING_LOCK_PRODUCER).
 */
#ifndef FRAMERING_RING_LAYOUT_H
#define FRAMERING_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC 0x31474e49524d5246ull /* "FRMRING1" little-endian */
#define RING_LAYOUT_VERSION 2u /* 2: liveness by file locks, pids for display only */
#define RING_HEADER_SIZE 4096u /* data area starts page aligned */
#define RING_LINE 128u         /* two cache lines: keeps adjacent-line prefetch from false sharing */

#define RING_REC_HDR 8u
#define RING_REC_DATA 0x41544144u /* "DATA" */
#define RING_REC_PAD 0x44444150u  /* "PADD" */

/* Liveness: each attached side holds an open-file-description write lock
 * (F_OFD_SETLK) on one byte of the segment file, numbered below, for as
 * long as it is attached. The numbers are file offsets; a lock never
 * touches the bytes themselves. A side is alive exactly while its byte is
 * locked; the kernel drops the lock when the process dies, in whatever pid
 * namespace, so no one has to find the peer in /proc. Whoever removes a
 * ring's name (its closing producer, a producer reclaiming it, a consumer
 * or framering-ctl removing a stale one) holds RING_LOCK_PRODUCER while it
 * checks that the name still refers to this file and unlinks it. */
#define RING_LOCK_PRODUCER 0u
#define RING_LOCK_CONSUMER 1u

struct ring_record_header {
	uint32_t len;
	uint32_t type;
};

/* Offsets are in bytes from the start of the segment (static-asserted below). */
struct ring_shm_header {
	/* line 0: written once by the creating producer, before `magic`. */
	_Atomic uint64_t magic;   /*   0 RING_MAGIC, stored last with release */
	uint32_t layout_version;  /*   8 RING_LAYOUT_VERSION */
	uint32_t header_size;     /*  12 RING_HEADER_SIZE: offset of the data area */
	uint64_t capacity;        /*  16 data area bytes, power of two, <= RING_MAX_CAPACITY */
	uint64_t segment_size;    /*  24 header_size + capacity; the file is this long and fully backed */
	uint8_t pad0[RING_LINE - 32];

	/* line 1: producer control, written by the producer only. */
	alignas(RING_LINE) _Atomic uint64_t tail; /* 128 bytes published; release after record bytes */
	_Atomic uint32_t producer_pid;            /* 136 for display only (liveness: RING_LOCK_PRODUCER); 0 after close */
	_Atomic uint32_t eos;                     /* 140 1: no record follows the last one */
	_Atomic uint32_t on_full;                 /* 144 enum ring_full_policy, informative */
	uint32_t pad1;                            /* 148 */
	_Atomic uint64_t records_written;         /* 152 */
	_Atomic uint64_t bytes_written;           /* 160 */
	_Atomic uint64_t records_dropped;         /* 168 */
	_Atomic uint64_t bytes_dropped;           /* 176 */
	_Atomic uint64_t producer_futex_waits;    /* 184 */
	_Atomic uint64_t producer_futex_wakes;    /* 192 */

	/* line 2: consumer control, written by the consumer only. */
	alignas(RING_LINE) _Atomic uint64_t head; /* 256 bytes consumed; release after reading */
	_Atomic uint32_t consumer_pid;            /* 264 for display (liveness: RING_LOCK_CONSUMER); 0: detached cleanly */
	uint32_t pad2;                            /* 268 */
	_Atomic uint64_t consumer_attaches;       /* 272 consumers ever attached */
	_Atomic uint64_t records_read;            /* 280 */
	_Atomic uint64_t bytes_read;              /* 288 */
	_Atomic uint64_t records_skipped;         /* 296 */
	_Atomic uint64_t bytes_skipped;           /* 304 */
	_Atomic uint64_t consumer_futex_waits;    /* 312 */
	_Atomic uint64_t consumer_futex_wakes;    /* 320 */

	/* line 3, 4: futex words, each alone so reading it on every commit or
	 * release costs no cache-line transfer while its owner is awake. */
	alignas(RING_LINE) _Atomic uint32_t consumer_sleeping; /* 384 1: consumer waits for data */
	alignas(RING_LINE) _Atomic uint32_t producer_sleeping; /* 512 1: producer waits for space */

	/* line 5: stream description set by the producer (ring_set_meta),
	 * guarded by a sequence lock: odd while being written. */
	alignas(RING_LINE) _Atomic uint32_t meta_seq; /* 640 */
	_Atomic uint32_t meta_len;                    /* 644 <= 64 */
	_Atomic uint64_t meta[8];                     /* 648 */
};

#define RING_ASSERT_OFFSET(field, off) \
	_Static_assert(offsetof(struct ring_shm_header, field) == (off), "ring_shm_header." #field " at " #off)
RING_ASSERT_OFFSET(magic, 0);
RING_ASSERT_OFFSET(layout_version, 8);
RING_ASSERT_OFFSET(header_size, 12);
RING_ASSERT_OFFSET(capacity, 16);
RING_ASSERT_OFFSET(segment_size, 24);
RING_ASSERT_OFFSET(tail, 128);
RING_ASSERT_OFFSET(producer_pid, 136);
RING_ASSERT_OFFSET(eos, 140);
RING_ASSERT_OFFSET(on_full, 144);
RING_ASSERT_OFFSET(records_written, 152);
RING_ASSERT_OFFSET(bytes_written, 160);
RING_ASSERT_OFFSET(records_dropped, 168);
RING_ASSERT_OFFSET(bytes_dropped, 176);
RING_ASSERT_OFFSET(producer_futex_waits, 184);
RING_ASSERT_OFFSET(producer_futex_wakes, 192);
RING_ASSERT_OFFSET(head, 256);
RING_ASSERT_OFFSET(consumer_pid, 264);
RING_ASSERT_OFFSET(consumer_attaches, 272);
RING_ASSERT_OFFSET(records_read, 280);
RING_ASSERT_OFFSET(bytes_read, 288);
RING_ASSERT_OFFSET(records_skipped, 296);
RING_ASSERT_OFFSET(bytes_skipped, 304);
RING_ASSERT_OFFSET(consumer_futex_waits, 312);
RING_ASSERT_OFFSET(consumer_futex_wakes, 320);
RING_ASSERT_OFFSET(consumer_sleeping, 384);
RING_ASSERT_OFFSET(producer_sleeping, 512);
RING_ASSERT_OFFSET(meta_seq, 640);
RING_ASSERT_OFFSET(meta_len, 644);
RING_ASSERT_OFFSET(meta, 648);
#undef RING_ASSERT_OFFSET
_Static_assert(sizeof(struct ring_shm_header) <= RING_HEADER_SIZE, "header fits its page");
_Static_assert(sizeof(((struct ring_shm_header *)0)->meta) == 64, "RING_META_SIZE");

#endif /* FRAMERING_RING_LAYOUT_H */
