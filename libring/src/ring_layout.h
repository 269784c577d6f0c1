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
 * checked against the mapping every time they are read.
 */
#ifndef FRAMERING_RING_LAYOUT_H
#define FRAMERING_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define RING_MAGIC 0x31474e49524d5246ull /* "FRMRING1" little-endian */
#define RING_LAYOUT_VERSION 1u
#define RING_HEADER_SIZE 4096u /* data area starts page aligned */
#define RING_LINE 128u         /* two cache lines: keeps adjacent-line prefetch from false sharing */

#define RING_REC_HDR 8u
#define RING_REC_DATA 0x41544144u /* "DATA" */
#define RING_REC_PAD 0x44444150u  /* "PADD" */

/* A process identity that survives pid reuse: the pid in the low 22 bits
 * (Linux's pid_max limit) and its start time in clock ticks since boot
 * (/proc/PID/stat field 22) above. One word, so a side attaches with one CAS
 * and an observer never sees a pid paired with another process's start time. */
#define RING_OWNER_PID_BITS 22
#define RING_OWNER_PID_MASK ((1ull << RING_OWNER_PID_BITS) - 1)

struct ring_record_header {
	uint32_t len;
	uint32_t type;
};

struct ring_shm_header {
	/* line 0: written once by the creating producer, before `magic`. */
	_Atomic uint64_t magic;   /*   0 RING_MAGIC, stored last with release */
	uint32_t layout_version;  /*   8 RING_LAYOUT_VERSION */
	uint32_t header_size;     /*  12 RING_HEADER_SIZE: offset of the data area */
	uint64_t capacity;        /*  16 data area bytes, power of two */
	uint64_t segment_size;    /*  24 header_size + capacity */
	uint8_t pad0[RING_LINE - 32];

	/* line 1: producer control, written by the producer only. */
	alignas(RING_LINE) _Atomic uint64_t tail; /* bytes published; release after record bytes */
	_Atomic uint64_t producer_owner;          /* RING_OWNER pack, 0: none; CAS to attach */
	_Atomic uint32_t eos;                     /* 1: no record follows the last one */
	_Atomic uint32_t on_full;                 /* enum ring_full_policy, informative */
	_Atomic uint64_t records_written;
	_Atomic uint64_t bytes_written;
	_Atomic uint64_t records_dropped;
	_Atomic uint64_t bytes_dropped;
	_Atomic uint64_t producer_futex_waits;
	_Atomic uint64_t producer_futex_wakes;

	/* line 2: consumer control, written by the consumer only. */
	alignas(RING_LINE) _Atomic uint64_t head; /* bytes consumed; release after reading */
	_Atomic uint64_t consumer_owner;          /* RING_OWNER pack, 0: none */
	_Atomic uint64_t consumer_attaches;       /* consumers ever attached; with owner 0: one left */
	_Atomic uint64_t records_read;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t records_skipped;
	_Atomic uint64_t bytes_skipped;
	_Atomic uint64_t consumer_futex_waits;
	_Atomic uint64_t consumer_futex_wakes;

	/* line 3, 4: futex words, each alone so reading it on every commit or
	 * release costs no cache-line transfer while its owner is awake. */
	alignas(RING_LINE) _Atomic uint32_t consumer_sleeping; /* 1: consumer waits for data */
	alignas(RING_LINE) _Atomic uint32_t producer_sleeping; /* 1: producer waits for space */

	/* line 5: stream description set by the producer (ring_set_meta),
	 * guarded by a sequence lock: odd while being written. */
	alignas(RING_LINE) _Atomic uint32_t meta_seq;
	_Atomic uint32_t meta_len;
	_Atomic uint64_t meta[8];
};

_Static_assert(sizeof(struct ring_shm_header) <= RING_HEADER_SIZE, "header fits its page");
_Static_assert(sizeof(((struct ring_shm_header *)0)->meta) == 64, "RING_META_SIZE");

#endif /* FRAMERING_RING_LAYOUT_H */
