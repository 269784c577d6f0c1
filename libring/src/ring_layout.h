/* ring_layout.h - the layout of a framering ring in shared memory, field by field.
 *
 * A segment is RING_HEADER_SIZE bytes of header followed by the data area of
 * `capacity` bytes (a power of two). Indices count bytes and only grow; the
 * offset in the data area is index & (capacity - 1). The producer owns the
 * tail; each consumer owns one slot of the consumer table (its head, the
 * record it holds, its counters) and writes nothing else. Each side caches
 * what it reads of the others, so it touches their cache lines only when its
 * cached copy says "no room" / "nothing new".
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
 *   area, so that no record wraps; to align the next payload; or over a
 *   record a live consumer still holds); len is the whole span including
 *   this header.
 * A record never crosses the end of the data area.
 *
 * Consumers (fan-out). Up to max_consumers attach at once, each in its own
 * slot, in one of two modes:
 *  - EVERY (lossless): its `head` gates the producer, which never writes past
 *    the slowest every-consumer's head + capacity (LMAX Disruptor's gating
 *    sequences). Records it has not released are never overwritten.
 *  - LATEST (live): it never gates. It reads the newest record (`newest`) and
 *    holds it by publishing `hold`; the producer never overwrites a held
 *    record: when it reaches one, it turns the held record's header into a
 *    pad over it and writes on behind it (the holder has its length already
 *    and never reads that header again; every-consumers are past it, since
 *    they gate). So a live consumer costs the producer at most the room of
 *    the one record it holds, and never a wait.
 *
 * Memory ordering (C11 atomics on the fields marked _Atomic):
 *  - The producer writes the record bytes, then `newest` (release), then
 *    `tail` (release); a consumer loads `tail` or `newest` with acquire before
 *    it reads record bytes.
 *  - An every-consumer stores `head` with release after it has finished
 *    reading; the producer loads the heads with acquire before reusing space.
 *  - Holds (Dekker): before the producer writes into [tail, X) it stores
 *    `claim` = X, fences (seq_cst), then loads every live consumer's `hold`.
 *    A live consumer stores `hold` = the record it wants, fences, then loads
 *    `claim`; if claim already reaches the record's next lap it lets go and
 *    takes a newer one. One of the two sees the other's store, so a record is
 *    either seen as held by the producer or given up by the consumer. The
 *    producer claims in leases of up to capacity/8 (never less than the
 *    record it writes): one fence per lease, not per record. A newest record
 *    already gone (the tail a lap past it, or stepped over) is given up too,
 *    and the live consumer waits for a newer one.
 *  - Late every-consumers: with each claim the producer first publishes
 *    `oldest`, a record start whole below both the new claim and the one
 *    before, then `claim`; its `tail` never lags `oldest` (pads that step
 *    over a hold are published at once). A joining consumer stores `head` =
 *    `oldest`, sets its roster bit, then checks `claim` <= head + capacity
 *    (seq_cst on both sides): while the producer is stopped anywhere, the two
 *    agree; while it runs, the next lease sees the consumer and gates on it.
 *  - Sleeping (futex) uses the same handshake on the `*_sleeping` words: the
 *    waiter stores 1, fences, re-checks; the other side stores its index,
 *    fences, then loads the word. So a wake-up is never lost, and while
 *    nobody sleeps no system call is made.
 *
 * Nothing in here is trusted by a consumer or by the producer: the immutable
 * fields are checked once at open and copied to process memory; indices,
 * holds and record headers are checked every time they are read, and a
 * value that cannot be is ignored (a consumer's) or reported (-EBADMSG, the
 * producer's). Liveness is not read from here at all (see RING_LOCK_PRODUCER).
 */
#ifndef FRAMERING_RING_LAYOUT_H
#define FRAMERING_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h" /* FR_RING_META_SIZE, FR_RING_EOS_MESSAGE_MAX */

#define RING_MAGIC 0x31474e49524d5246ull /* "FRMRING1" little-endian */
#define RING_LAYOUT_VERSION 4u /* 4: 256-byte meta, error end of stream; 3: consumer table (fan-out); 2: liveness by file locks */
#define RING_HEADER_SIZE 4096u /* data area starts page aligned */
#define RING_LINE 128u         /* two cache lines: keeps adjacent-line prefetch from false sharing */

/* The eos field. */
#define RING_EOS_NONE 0u
#define RING_EOS_CLEAN 1u /* fr_ring_mark_eos(), or the producer closed */
#define RING_EOS_ERROR 2u /* fr_ring_mark_eos_error(): eos_error and eos_message say why */
#define RING_EOS_REPLACED 3u /* fr_ring_replace(): a new ring has this ring's name */

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
#define RING_LOCK_CONSUMER 1u /* consumer slot i holds byte RING_LOCK_CONSUMER + i */
/* A remover holds RING_LOCK_PRODUCER of a dead producer's ring for a moment,
 * and a side that looked then would take it for a live producer. So a
 * producer also holds RING_LOCK_PRODUCER_LIVE while attached, which nobody
 * else ever takes, and says so in producer_flags (RING_PRODUCER_HOLDS_LIVE):
 * its liveness is that byte. A ring whose producer_flags lack the bit (made
 * by framering 0.3 or before) is alive while RING_LOCK_PRODUCER is locked. */
#define RING_LOCK_PRODUCER_LIVE 32u
#define RING_PRODUCER_HOLDS_LIVE 1u

#define RING_CONSUMERS_MAX 12u   /* slots in the consumer table (it fills the header page) */
#define RING_CONSUMERS_OFFSET 1024u
#define RING_MODE_EVERY 0u       /* enum fr_ring_consumer_mode */
#define RING_MODE_LATEST 1u

struct ring_record_header {
	uint32_t len;
	uint32_t type;
};

/* One consumer's slot: two lines, so that the producer reading `sleeping`
 * on every commit does not pull the line the consumer writes on every
 * release. Offsets are from the start of the slot. */
struct ring_consumer_slot {
	/* line A: written by the consumer only (the producer reads head/hold). */
	_Atomic uint64_t head;          /*   0 EVERY: bytes consumed (gates the producer); LATEST: where it read last */
	_Atomic uint64_t hold;          /*   8 LATEST: position of the held record + 1; 0: none */
	_Atomic uint32_t mode;          /*  16 RING_MODE_EVERY / RING_MODE_LATEST */
	_Atomic uint32_t pid;           /*  20 for display (liveness: its lock byte); 0 after a clean detach */
	_Atomic uint64_t next_index;    /*  24 index of the next data record it reads (for its lag) */
	_Atomic uint64_t records_read;  /*  32 counters of the slot, over all its consumers: */
	_Atomic uint64_t bytes_read;    /*  40   their sums are the ring's totals */
	_Atomic uint64_t records_skipped; /* 48 */
	_Atomic uint64_t bytes_skipped; /*  56 */
	_Atomic uint64_t futex_waits;   /*  64 */
	_Atomic uint64_t read_base;     /*  72 records_read when this consumer attached */
	_Atomic uint64_t skipped_base;  /*  80 records_skipped then */
	uint8_t pad_a[RING_LINE - 88];
	/* line B: its futex word, and the producer's count of wakes. */
	alignas(RING_LINE) _Atomic uint32_t sleeping; /* 128 1: the consumer waits for data */
	uint32_t pad_b;                 /* 132 */
	_Atomic uint64_t futex_wakes;   /* 136 written by the producer */
	uint8_t pad_c[RING_LINE - 16];
};

/* Offsets are in bytes from the start of the segment (static-asserted below). */
struct ring_shm_header {
	/* line 0: written once by the creating producer, before `magic`. */
	_Atomic uint64_t magic;   /*   0 RING_MAGIC, stored last with release */
	uint32_t layout_version;  /*   8 RING_LAYOUT_VERSION */
	uint32_t header_size;     /*  12 RING_HEADER_SIZE: offset of the data area */
	uint64_t capacity;        /*  16 data area bytes, power of two, <= FR_RING_MAX_CAPACITY */
	uint64_t segment_size;    /*  24 header_size + capacity; the file is this long and fully backed */
	uint32_t max_consumers;   /*  32 slots in use by this ring, 1..RING_CONSUMERS_MAX */
	uint8_t pad0[RING_LINE - 36];

	/* line 1: producer control, written by the producer only. */
	alignas(RING_LINE) _Atomic uint64_t tail; /* 128 bytes published; release after record bytes */
	_Atomic uint32_t producer_pid;            /* 136 for display only (liveness: a lock byte, see above); 0 after close */
	_Atomic uint32_t eos;                     /* 140 RING_EOS_*: no record follows the last one */
	_Atomic uint32_t on_full;                 /* 144 enum fr_ring_full_policy, informative */
	_Atomic uint32_t producer_flags;          /* 148 RING_PRODUCER_HOLDS_LIVE; written once, before magic */
	_Atomic uint64_t records_written;         /* 152 */
	_Atomic uint64_t bytes_written;           /* 160 */
	_Atomic uint64_t records_dropped;         /* 168 */
	_Atomic uint64_t bytes_dropped;           /* 176 */
	_Atomic uint64_t producer_futex_waits;    /* 184 */
	_Atomic uint64_t producer_futex_wakes;    /* 192 */
	_Atomic uint64_t newest;                  /* 200 position of the newest data record; release before tail */
	_Atomic uint64_t newest_index;            /* 208 its index (data records before it) */
	_Atomic uint64_t claim;                   /* 216 the producer may be writing below this (holds: see above) */
	_Atomic uint64_t oldest;                  /* 224 the oldest record still whole: where a late every-consumer starts */
	_Atomic uint64_t oldest_index;            /* 232 its index */

	/* line 2: the roster, changed on attach and detach only (and when the
	 * producer reaps a dead consumer): read-mostly, so reading it costs the
	 * fast path nothing. */
	alignas(RING_LINE) _Atomic uint32_t attached; /* 256 bit i: slot i has a consumer */
	_Atomic uint32_t live;                        /* 260 bit i: ... in LATEST mode */
	_Atomic uint64_t consumer_attaches;           /* 264 consumers ever attached */
	_Atomic uint64_t consumers_reaped;            /* 272 dead consumers the producer took off the roster */
	_Atomic uint64_t last_head;                   /* 280 head of the last every-consumer that left cleanly */

	/* line 3: the producer's futex word, alone (read by every release). */
	alignas(RING_LINE) _Atomic uint32_t producer_sleeping; /* 384 1: producer waits for space */

	/* lines 4..5: stream description set by the producer (fr_ring_set_meta),
	 * guarded by a sequence lock: odd while being written. */
	alignas(RING_LINE) _Atomic uint32_t meta_seq; /* 512 */
	_Atomic uint32_t meta_len;                    /* 516 <= FR_RING_META_SIZE */
	_Atomic uint64_t meta[FR_RING_META_SIZE / 8];    /* 520 */

	/* why the stream ended, when eos is RING_EOS_ERROR: written once by the
	 * producer before it stores eos (release), read after eos (acquire). */
	int32_t eos_error;                            /* 776 a negative errno value */
	char eos_message[FR_RING_EOS_MESSAGE_MAX];       /* 780 one line, NUL-terminated (unless hostile) */
	uint8_t pad4[RING_CONSUMERS_OFFSET - 908];    /* 908 */

	/* lines 8..31: the consumer table. */
	struct ring_consumer_slot consumers[RING_CONSUMERS_MAX]; /* 1024 */
};

#define RING_ASSERT_OFFSET(field, off) \
	_Static_assert(offsetof(struct ring_shm_header, field) == (off), "ring_shm_header." #field " at " #off)
RING_ASSERT_OFFSET(magic, 0);
RING_ASSERT_OFFSET(layout_version, 8);
RING_ASSERT_OFFSET(header_size, 12);
RING_ASSERT_OFFSET(capacity, 16);
RING_ASSERT_OFFSET(segment_size, 24);
RING_ASSERT_OFFSET(max_consumers, 32);
RING_ASSERT_OFFSET(tail, 128);
RING_ASSERT_OFFSET(producer_pid, 136);
RING_ASSERT_OFFSET(eos, 140);
RING_ASSERT_OFFSET(on_full, 144);
RING_ASSERT_OFFSET(producer_flags, 148);
RING_ASSERT_OFFSET(records_written, 152);
RING_ASSERT_OFFSET(bytes_written, 160);
RING_ASSERT_OFFSET(records_dropped, 168);
RING_ASSERT_OFFSET(bytes_dropped, 176);
RING_ASSERT_OFFSET(producer_futex_waits, 184);
RING_ASSERT_OFFSET(producer_futex_wakes, 192);
RING_ASSERT_OFFSET(newest, 200);
RING_ASSERT_OFFSET(newest_index, 208);
RING_ASSERT_OFFSET(claim, 216);
RING_ASSERT_OFFSET(oldest, 224);
RING_ASSERT_OFFSET(oldest_index, 232);
RING_ASSERT_OFFSET(attached, 256);
RING_ASSERT_OFFSET(live, 260);
RING_ASSERT_OFFSET(consumer_attaches, 264);
RING_ASSERT_OFFSET(consumers_reaped, 272);
RING_ASSERT_OFFSET(last_head, 280);
RING_ASSERT_OFFSET(producer_sleeping, 384);
RING_ASSERT_OFFSET(meta_seq, 512);
RING_ASSERT_OFFSET(meta_len, 516);
RING_ASSERT_OFFSET(meta, 520);
RING_ASSERT_OFFSET(eos_error, 776);
RING_ASSERT_OFFSET(eos_message, 780);
RING_ASSERT_OFFSET(consumers, RING_CONSUMERS_OFFSET);
#undef RING_ASSERT_OFFSET
#define RING_ASSERT_SLOT(field, off) \
	_Static_assert(offsetof(struct ring_consumer_slot, field) == (off), "ring_consumer_slot." #field " at " #off)
RING_ASSERT_SLOT(head, 0);
RING_ASSERT_SLOT(hold, 8);
RING_ASSERT_SLOT(mode, 16);
RING_ASSERT_SLOT(pid, 20);
RING_ASSERT_SLOT(next_index, 24);
RING_ASSERT_SLOT(records_read, 32);
RING_ASSERT_SLOT(bytes_read, 40);
RING_ASSERT_SLOT(records_skipped, 48);
RING_ASSERT_SLOT(bytes_skipped, 56);
RING_ASSERT_SLOT(futex_waits, 64);
RING_ASSERT_SLOT(read_base, 72);
RING_ASSERT_SLOT(skipped_base, 80);
RING_ASSERT_SLOT(sleeping, 128);
RING_ASSERT_SLOT(futex_wakes, 136);
#undef RING_ASSERT_SLOT
_Static_assert(sizeof(struct ring_consumer_slot) == 2 * RING_LINE, "a slot is two lines");
_Static_assert(sizeof(struct ring_shm_header) == RING_HEADER_SIZE, "the header fills its page");
_Static_assert(sizeof(((struct ring_shm_header *)0)->meta) == FR_RING_META_SIZE, "FR_RING_META_SIZE");

#endif /* FRAMERING_RING_LAYOUT_H */
