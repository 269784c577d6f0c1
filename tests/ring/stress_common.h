/* stress_common.h - the producer and consumer loops of the ring stress tests, shared by the fork and pthread variants. */
#ifndef FRAMERING_STRESS_COMMON_H
#define FRAMERING_STRESS_COMMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct stress_cfg {
	uint64_t records;   /* records the producer attempts */
	int drop;           /* the ring runs FR_RING_FULL_DROP */
	int64_t timeout_ns; /* per blocking call; finite ones re-check the abort flag */
	uint64_t seed;
	uint64_t hot_lap;       /* 0: the library's default; else fr_ring_set_hot_lap(hot_lap, hot_wait_ns) */
	int64_t hot_wait_ns;
};

struct stress_side {
	uint64_t attempted, committed, dropped, dropped_bytes; /* producer */
	uint64_t received, bytes, tiny, big, max_gap;          /* consumer */
	uint64_t forced_wait_polls;
	uint64_t setup_waits; /* producer futex waits before the first record (waiting for the consumer) */
	int failed;
	char msg[256];
	struct fr_ring_stats st; /* the ring's counters when this side finished */
};

/* Lives in memory both sides see (MAP_SHARED for processes). */
struct stress_shared {
	_Atomic int abort; /* set by a failing side so the other stops */
	struct stress_side prod, cons;
};

/* Length of record SEQ: mostly 1 B..4 KiB, about one in a hundred up to 1 MiB. */
size_t stress_record_len(uint64_t seed, uint64_t seq);

/* Run the producer / consumer side on an attached ring; 0 or -1 (details in sh->prod/cons.msg). */
int stress_produce(fr_ring_t *p, const struct stress_cfg *cfg, struct stress_shared *sh);
int stress_consume(fr_ring_t *c, const struct stress_cfg *cfg, struct stress_shared *sh);

/* Print the figures of a finished run on stderr. */
void stress_report(const char *what, const struct stress_cfg *cfg, const struct stress_shared *sh, double secs);

/* Check a finished run: nothing lost in block mode, drops all counted, futex
 * paths exercised. 0, or -1 with the first broken property in MSG. */
int stress_check(const struct stress_cfg *cfg, const struct stress_shared *sh, char *msg, size_t size);

#endif
