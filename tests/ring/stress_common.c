/* stress_common.c - the producer and consumer loops of the ring stress tests, shared by the fork and pthread variants. */
#include "stress_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ring_layout.h"
#include "ringtest.h"

#define FORCED_WAIT_LIMIT_MS 20000u /* a hang guard, not a timing assertion */

static void fail(struct stress_side *s, struct stress_shared *sh, const char *fmt, ...)
{
	va_list ap;

	if (!s->failed) {
		va_start(ap, fmt);
		vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
		va_end(ap);
	}
	s->failed = 1;
	atomic_store(&sh->abort, 1);
}

size_t stress_record_len(uint64_t seed, uint64_t seq)
{
	uint64_t r = rt_mix64(seed * 31 + seq);

	if (r % 100 == 0)
		return 4097 + (size_t)((r >> 20) % ((1u << 20) - 4096));
	return 1 + (size_t)((r >> 20) % 4096);
}

/* Tiny records (< 16 bytes) cannot hold seq + checksum: their bytes are a function of seq. */
static unsigned char tiny_byte(uint64_t seed, uint64_t seq, size_t i)
{
	return (unsigned char)(rt_mix64(seed ^ (seq * 16 + i) ^ 0x7777) >> 17);
}

static uint64_t pattern_base(uint64_t seed, uint64_t seq)
{
	return rt_mix64(seed ^ (seq << 1));
}

/* Record of len >= 16: [u64 seq][u64 checksum of the rest][pattern words]. */
static void fill(unsigned char *p, size_t len, uint64_t seed, uint64_t seq)
{
	if (len < 16) {
		for (size_t i = 0; i < len; i++)
			p[i] = tiny_byte(seed, seq, i);
		return;
	}
	uint64_t base = pattern_base(seed, seq), w;
	size_t i = 16;
	for (; i + 8 <= len; i += 8) {
		w = base + i * 0x9e3779b97f4a7c15ull;
		memcpy(p + i, &w, 8);
	}
	w = base + i * 0x9e3779b97f4a7c15ull;
	memcpy(p + i, &w, len - i);
	uint64_t h = rt_hash(p + 16, len - 16, seq ^ len);
	memcpy(p, &seq, 8);
	memcpy(p + 8, &h, 8);
}

static int pattern_ok(const unsigned char *p, size_t len, uint64_t seed, uint64_t seq)
{
	uint64_t base = pattern_base(seed, seq), w, got;
	size_t i = 16;
	for (; i + 8 <= len; i += 8) {
		w = base + i * 0x9e3779b97f4a7c15ull;
		memcpy(&got, p + i, 8);
		if (got != w)
			return 0;
	}
	w = base + i * 0x9e3779b97f4a7c15ull;
	return memcmp(p + i, &w, len - i) == 0;
}

static int tiny_ok(const unsigned char *p, size_t len, uint64_t seed, uint64_t seq)
{
	if (stress_record_len(seed, seq) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] != tiny_byte(seed, seq, i))
			return 0;
	return 1;
}

/* Sleep now and then (about every 1000 records, 0-200 us; rarely 1-5 ms) so
 * the other side finds the ring empty/full and goes to sleep in the futex. */
static void random_pause(uint64_t *rng)
{
	uint64_t r = rt_rand(rng);

	if (r % 1000 != 0)
		return;
	if ((r >> 10) % 20 == 0)
		rt_sleep_ns(1000000 + (r >> 20) % 4000000);
	else
		rt_sleep_ns((r >> 20) % 200000);
}

enum forced_what { CONSUMER_SLEPT, PRODUCER_SLEPT, PRODUCER_DROPPED };

static uint64_t stat_of(const struct fr_ring_stats *st, enum forced_what w)
{
	return w == CONSUMER_SLEPT ? st->consumer_futex_waits
	       : w == PRODUCER_SLEPT ? st->producer_futex_waits
				     : st->records_dropped;
}

/* Stop this side until the other one shows it went through the path WHAT
 * (a futex sleep, a drop). Proves the path runs; the limit only guards a hang. */
static int forced_wait(fr_ring_t *r, enum forced_what w, struct stress_side *s, struct stress_shared *sh)
{
	static const char *what[] = { "consumer futex wait on an empty ring", "producer futex wait on a full ring",
				      "producer drop on a full ring" };
	struct fr_ring_stats st;

	fr_ring_get_stats(r, &st);
	uint64_t start = stat_of(&st, w);
	for (unsigned ms = 0; ms < FORCED_WAIT_LIMIT_MS; ms++) {
		rt_sleep_ns(1000000);
		s->forced_wait_polls++;
		if (atomic_load(&sh->abort))
			return -1;
		fr_ring_get_stats(r, &st);
		if (stat_of(&st, w) > start)
			return 0;
		if (w == PRODUCER_DROPPED && st.eos)
			return 0; /* the producer already finished (it dropped meanwhile) */
	}
	fail(s, sh, "no %s within %u s while the other side stood still", what[w], FORCED_WAIT_LIMIT_MS / 1000);
	return -1;
}

int stress_produce(fr_ring_t *p, const struct stress_cfg *cfg, struct stress_shared *sh)
{
	struct stress_side *s = &sh->prod;
	uint64_t rng = cfg->seed ^ 0x1234;

	if (cfg->hot_lap && fr_ring_set_hot_lap(p, cfg->hot_lap, cfg->hot_wait_ns) < 0) {
		fail(s, sh, "fr_ring_set_hot_lap failed");
		return -1;
	}
	for (uint64_t seq = 0; seq < cfg->records; seq++) {
		size_t len = stress_record_len(cfg->seed, seq);
		void *d;
		int rc;

		if (atomic_load(&sh->abort))
			return -1;
		if (seq == cfg->records / 3 && forced_wait(p, CONSUMER_SLEPT, s, sh) < 0)
			return -1;
		s->attempted++;
		while ((rc = fr_ring_reserve(p, len, 8, &d, cfg->timeout_ns)) == -ETIMEDOUT && cfg->timeout_ns > 0) {
			if (atomic_load(&sh->abort))
				return -1;
		}
		if (rc == -ENOBUFS && cfg->drop) {
			s->dropped++;
			s->dropped_bytes += len;
			random_pause(&rng);
			continue;
		}
		if (rc < 0) {
			fail(s, sh, "seq %llu: fr_ring_reserve(%zu): %s", (unsigned long long)seq, len, fr_ring_strerror(rc));
			return -1;
		}
		fill(d, len, cfg->seed, seq);
		if ((rc = fr_ring_commit(p, len)) < 0) {
			fail(s, sh, "seq %llu: fr_ring_commit: %s", (unsigned long long)seq, fr_ring_strerror(rc));
			return -1;
		}
		s->committed++;
		random_pause(&rng);
	}
	int rc = fr_ring_mark_eos(p);
	if (rc < 0) {
		fail(s, sh, "fr_ring_mark_eos: %s", fr_ring_strerror(rc));
		return -1;
	}
	fr_ring_get_stats(p, &s->st);
	return 0;
}

int stress_consume(fr_ring_t *c, const struct stress_cfg *cfg, struct stress_shared *sh)
{
	struct stress_side *s = &sh->cons;
	uint64_t rng = cfg->seed ^ 0x5678, next = 0;
	int forced_done = 0;
	const void *base;
	size_t map_size;

	fr_ring_mapping(c, &base, &map_size);
	const unsigned char *lo = (const unsigned char *)base + RING_HEADER_SIZE;
	const unsigned char *hi = (const unsigned char *)base + map_size;
	for (;;) {
		const void *vd;
		size_t len;
		uint64_t seq;
		int rc;

		if (atomic_load(&sh->abort))
			return -1;
		rc = fr_ring_peek(c, &vd, &len, cfg->timeout_ns);
		if (rc == -ETIMEDOUT && cfg->timeout_ns > 0)
			continue;
		if (rc == -ENODATA)
			break;
		if (rc < 0) {
			fail(s, sh, "after seq %llu: fr_ring_peek: %s", (unsigned long long)next, fr_ring_strerror(rc));
			return -1;
		}
		const unsigned char *d = vd;
		/* one contiguous span inside the data area: never split, never outside */
		if (d < lo || d > hi || len > (size_t)(hi - d) || len == 0) {
			fail(s, sh, "after seq %llu: record [%p, +%zu) outside data area [%p, %p)",
			     (unsigned long long)next, vd, len, (const void *)lo, (const void *)hi);
			return -1;
		}
		if (len >= 16) {
			uint64_t h;
			memcpy(&seq, d, 8);
			memcpy(&h, d + 8, 8);
			if (seq < next || seq >= cfg->records || (!cfg->drop && seq != next)) {
				fail(s, sh, "expected seq %llu, got %llu (len %zu)%s", (unsigned long long)next,
				     (unsigned long long)seq, len, cfg->drop ? " (drop mode)" : ": lost or reordered");
				return -1;
			}
			if (len != stress_record_len(cfg->seed, seq)) {
				fail(s, sh, "seq %llu: length %zu, written %zu", (unsigned long long)seq, len,
				     stress_record_len(cfg->seed, seq));
				return -1;
			}
			if (h != rt_hash(d + 16, len - 16, seq ^ len) ||
			    ((seq % 16 == 0 || len > 4096) && !pattern_ok(d, len, cfg->seed, seq))) {
				fail(s, sh, "seq %llu (len %zu): checksum/content mismatch: corrupt record",
				     (unsigned long long)seq, len);
				return -1;
			}
			if (len > 4096)
				s->big++;
		} else {
			/* Tiny: in block mode it must be exactly `next`; with drops, the first
			 * later seq whose length and bytes match. */
			uint64_t limit = cfg->drop ? cfg->records : next + 1;
			for (seq = next; seq < limit; seq++)
				if (tiny_ok(d, len, cfg->seed, seq))
					break;
			if (seq >= limit) {
				fail(s, sh, "tiny record of %zu bytes after seq %llu matches no expected record",
				     len, (unsigned long long)next);
				return -1;
			}
			s->tiny++;
		}
		if (seq - next > s->max_gap)
			s->max_gap = seq - next;
		next = seq + 1;
		s->received++;
		s->bytes += len;
		if ((rc = fr_ring_release(c)) < 0) {
			fail(s, sh, "seq %llu: fr_ring_release: %s", (unsigned long long)seq, fr_ring_strerror(rc));
			return -1;
		}
		if (!forced_done && seq >= cfg->records / 2) {
			forced_done = 1;
			if (forced_wait(c, cfg->drop ? PRODUCER_DROPPED : PRODUCER_SLEPT, s, sh) < 0)
				return -1;
		}
		random_pause(&rng);
	}
	fr_ring_get_stats(c, &s->st);
	return 0;
}

void stress_report(const char *what, const struct stress_cfg *cfg, const struct stress_shared *sh, double secs)
{
	const struct fr_ring_stats *st = &sh->cons.st;

	fprintf(stderr,
		"%s: %llu attempted, %llu received (%llu tiny, %llu > 4 KiB, %.1f MiB), %llu dropped, "
		"max seq gap %llu, %.2f s\n"
		"  futex: producer waits %llu wakes %llu, consumer waits %llu wakes %llu\n",
		what, (unsigned long long)cfg->records, (unsigned long long)sh->cons.received,
		(unsigned long long)sh->cons.tiny, (unsigned long long)sh->cons.big,
		(double)sh->cons.bytes / (1 << 20), (unsigned long long)st->records_dropped,
		(unsigned long long)sh->cons.max_gap, secs, (unsigned long long)st->producer_futex_waits,
		(unsigned long long)st->producer_futex_wakes, (unsigned long long)st->consumer_futex_waits,
		(unsigned long long)st->consumer_futex_wakes);
	if (sh->prod.failed)
		fprintf(stderr, "  PRODUCER FAILED: %s\n", sh->prod.msg);
	if (sh->cons.failed)
		fprintf(stderr, "  CONSUMER FAILED: %s\n", sh->cons.msg);
}

int stress_check(const struct stress_cfg *cfg, const struct stress_shared *sh, char *msg, size_t size)
{
	const struct fr_ring_stats *st = &sh->cons.st; /* read by the consumer after end of stream */
	const struct stress_side *p = &sh->prod, *c = &sh->cons;

#define CHECK(cond, ...)                                  \
	do {                                              \
		if (!(cond)) {                            \
			snprintf(msg, size, __VA_ARGS__); \
			return -1;                        \
		}                                         \
	} while (0)
	CHECK(!p->failed && !c->failed, "a side failed: %s%s", p->failed ? p->msg : "", c->failed ? c->msg : "");
	CHECK(p->attempted == cfg->records, "producer attempted %llu of %llu", (unsigned long long)p->attempted,
	      (unsigned long long)cfg->records);
	CHECK(st->eos, "end of stream not marked in the ring");
	CHECK(st->records_written == p->committed, "ring counted %llu written, producer committed %llu",
	      (unsigned long long)st->records_written, (unsigned long long)p->committed);
	CHECK(c->received == p->committed, "received %llu, committed %llu", (unsigned long long)c->received,
	      (unsigned long long)p->committed);
	CHECK(st->records_read == c->received && st->bytes_read == c->bytes,
	      "ring counted %llu records / %llu bytes read, consumer saw %llu / %llu",
	      (unsigned long long)st->records_read, (unsigned long long)st->bytes_read,
	      (unsigned long long)c->received, (unsigned long long)c->bytes);
	CHECK(c->received + st->records_dropped == cfg->records, "received %llu + dropped %llu != attempted %llu",
	      (unsigned long long)c->received, (unsigned long long)st->records_dropped,
	      (unsigned long long)cfg->records);
	CHECK(st->records_dropped == p->dropped && st->bytes_dropped == p->dropped_bytes,
	      "ring counted %llu drops / %llu bytes, producer saw %llu / %llu",
	      (unsigned long long)st->records_dropped, (unsigned long long)st->bytes_dropped,
	      (unsigned long long)p->dropped, (unsigned long long)p->dropped_bytes);
	CHECK(st->used == 0, "%llu bytes still used after the consumer drained", (unsigned long long)st->used);
	CHECK(st->consumer_futex_waits > 0 && st->consumer_futex_wakes > 0,
	      "consumer futex path never ran (waits %llu, wakes %llu)",
	      (unsigned long long)st->consumer_futex_waits, (unsigned long long)st->consumer_futex_wakes);
	if (cfg->drop) {
		CHECK(st->records_dropped > 0, "drop mode dropped nothing");
		CHECK(st->producer_futex_waits == p->setup_waits, "FR_RING_FULL_DROP waited %llu times: it must never wait",
		      (unsigned long long)st->producer_futex_waits);
	} else {
		CHECK(st->records_dropped == 0, "block mode dropped %llu", (unsigned long long)st->records_dropped);
		CHECK(st->producer_futex_waits > 0 && st->producer_futex_wakes > 0,
		      "producer futex path never ran (waits %llu, wakes %llu)",
		      (unsigned long long)st->producer_futex_waits, (unsigned long long)st->producer_futex_wakes);
		CHECK(c->tiny > 0 && c->big > 0, "size mix missing: %llu tiny, %llu big records",
		      (unsigned long long)c->tiny, (unsigned long long)c->big);
	}
#undef CHECK
	return 0;
}
