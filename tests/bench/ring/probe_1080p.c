/* probe_1080p.c - where the time of a slow 1080p zero-copy run goes: per run and per side CPU, faults, switches, migrations, CPUs (issue 13).
 *
 * One run = a fixed number of 1080p BGR frames (6,220,800 B) from a producer
 * process to a consumer process (fork), after a warm-up lap. Every run
 * records, for each side over the timed frames: CPU time (thread CPU
 * clock), the time spent in the payload work (memset / sum) and in the
 * hand-off calls, minor/major faults and context switches (getrusage),
 * migrations and run-queue wait (/proc/thread-self/sched, schedstat), the
 * CPU each frame ran on (sched_getcpu), how far the consumer lagged; and
 * for the machine, just before the run: the core-to-core cache line round
 * trip (and again just after), how fast CPU B reads what CPU A has just
 * written, and how fast each CPU sums / memsets an L2-resident buffer (a
 * vCPU the host slows down shows there); during it: other processes' CPU use,
 * steal; the load average. Faults of the warm-up lap are counted apart.
 *
 * Cases (all interleaved, in a shuffled order every round, so that noise
 * hits them alike):
 *   ring    the bench_ring zero-copy case: fr_ring_reserve, memset in place,
 *           commit / fr_ring_peek, sum every word in place, release.
 *   flag    the control without the ring: the same frame slots, back to back
 *           in a shared mapping as the ring lays them out, handed over by two
 *           counters (futex wait when full / empty, a wake after each frame).
 *   mru     as flag, but the producer fills the slot the consumer freed last
 *           (most recently used) instead of the next one in turn (the one
 *           freed longest ago), as a slot pool could and a byte ring cannot.
 *   memset  one process, no hand-off: memset frame after frame over N distinct
 *           frame buffers (the footprint of one ring lap), then sum them the
 *           same way; p.* columns are the memset pass, c.* the sum pass.
 * Placements: free (nothing pinned), split (producer on CPU A, consumer on
 * CPU B), same (both on CPU A).
 *
 * It prints figures only: a line per run, a summary per case, and for every
 * case whose runs spread by more than --split-ratio, the slow and the fast
 * runs side by side with the rank correlation of every metric with fps;
 * all runs, then (if some were noisy) only the runs during which other
 * processes used less than --quiet-pct of a CPU.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ring.h"

#define FRAME_BYTES ((size_t)1920 * 1080 * 3) /* 6,220,800: a multiple of 64 */
#define FR_FRAME_ALIGN 64
/* What one 64-aligned 1080p record takes in the ring: 8 B record header,
 * padded so that the payload starts 64-aligned; records follow at this stride. */
#define SLOT_STRIDE (FRAME_BYTES + FR_FRAME_ALIGN)
#define CALL_TIMEOUT_NS ((int64_t)10 * 1000000000)
#define MAX_CAPS 8
#define MAX_RUNS 200
#define MAX_CPUS 1024
#define MAX_SLOTS 1024 /* frames in a lap of the largest --caps (4096 MiB: 690) */
#define SLOT_BUSY UINT64_MAX

enum kind { K_RING, K_FLAG, K_MRU, K_MEMSET, K_COUNT };
enum place { P_FREE, P_SPLIT, P_SAME, P_COUNT };
static const char *const kind_names[K_COUNT] = {"ring", "flag", "mru", "memset"};
static const char *const place_names[P_COUNT] = {"free", "split", "same"};

/* Per-run figures. p. = producer (memset pass), c. = consumer (sum pass). */
enum metric {
	M_FPS,
	M_P_CPU, M_P_SYS, M_P_WORK, M_P_WORK_MEAN, M_P_WAIT, M_C_CPU, M_C_SYS, M_C_WORK, M_C_WORK_MEAN, M_C_WAIT,
	M_P_MINFLT, M_C_MINFLT, M_P_WARMFLT, M_C_WARMFLT, M_MAJFLT,
	M_P_VCSW, M_P_IVCSW, M_C_VCSW, M_C_IVCSW,
	M_P_MIGR, M_C_MIGR, M_P_RQ, M_C_RQ,
	M_SAME, M_P_CHG, M_C_CHG, M_P_CPUA, M_LAG,
	M_RT, M_RT_AFTER, M_XFER, M_CAL_SUM_A, M_CAL_SUM_B, M_CAL_SET_A, M_CAL_SET_B, M_NOISE, M_STEAL, M_LOAD,
	M_COUNT
};
static const struct {
	const char *name, *what;
} metric_info[M_COUNT] = {
	[M_FPS] = {"fps", "frames/s (memset: one core doing memset + sum)"},
	[M_P_CPU] = {"p.cpu_us", "producer CPU time per frame, us (thread CPU clock)"},
	[M_P_SYS] = {"p.sys_us", "of which in the kernel (getrusage ru_stime; tick-sampled), us"},
	[M_P_WORK] = {"p.memset_us", "producer memset per frame, median, us"},
	[M_P_WORK_MEAN] = {"p.memset_avg", "producer memset per frame, mean, us"},
	[M_P_WAIT] = {"p.wait_us", "producer in reserve+commit (or flag wait) per frame, us"},
	[M_C_CPU] = {"c.cpu_us", "consumer CPU time per frame, us"},
	[M_C_SYS] = {"c.sys_us", "of which in the kernel, us"},
	[M_C_WORK] = {"c.sum_us", "consumer sum per frame, median, us"},
	[M_C_WORK_MEAN] = {"c.sum_avg", "consumer sum per frame, mean, us"},
	[M_C_WAIT] = {"c.wait_us", "consumer in peek+release (or flag wait) per frame, us"},
	[M_P_MINFLT] = {"p.minflt", "producer minor faults, timed frames"},
	[M_C_MINFLT] = {"c.minflt", "consumer minor faults, timed frames"},
	[M_P_WARMFLT] = {"p.warmflt", "producer minor faults in the warm-up lap (memset: its first pass)"},
	[M_C_WARMFLT] = {"c.warmflt", "consumer minor faults in the warm-up lap"},
	[M_MAJFLT] = {"majflt", "major faults, both sides, whole run"},
	[M_P_VCSW] = {"p.vcsw", "producer voluntary context switches"},
	[M_P_IVCSW] = {"p.ivcsw", "producer involuntary context switches"},
	[M_C_VCSW] = {"c.vcsw", "consumer voluntary context switches"},
	[M_C_IVCSW] = {"c.ivcsw", "consumer involuntary context switches"},
	[M_P_MIGR] = {"p.migr", "producer migrations (se.nr_migrations)"},
	[M_C_MIGR] = {"c.migr", "consumer migrations"},
	[M_P_RQ] = {"p.rq_ms", "producer time runnable but waiting for a CPU, ms (schedstat)"},
	[M_C_RQ] = {"c.rq_ms", "consumer time waiting for a CPU, ms"},
	[M_SAME] = {"same_cpu%", "frames whose producer and consumer sampled the same CPU"},
	[M_P_CHG] = {"p.cpu_chg", "producer frames on another CPU than its previous frame"},
	[M_C_CHG] = {"c.cpu_chg", "consumer frames on another CPU than its previous frame"},
	[M_P_CPUA] = {"p.on_A%", "producer frames on CPU A"},
	[M_LAG] = {"c.lag", "frames committed after the one the consumer peeks, median"},
	[M_RT] = {"rt_ns", "cache line round trip CPU A <-> CPU B just before the run, ns"},
	[M_RT_AFTER] = {"rt_after_ns", "the same just after the run"},
	[M_XFER] = {"xfer_gbs", "CPU B sums 2 MiB CPU A has just memset, GB/s, before the run (median of 8)"},
	[M_CAL_SUM_A] = {"cal.sum_A", "sum_words over 256 KiB (L2-hot) on CPU A just before the run, GB/s"},
	[M_CAL_SUM_B] = {"cal.sum_B", "the same on CPU B"},
	[M_CAL_SET_A] = {"cal.mset_A", "memset of 256 KiB (L2-hot) on CPU A just before the run, GB/s"},
	[M_CAL_SET_B] = {"cal.mset_B", "the same on CPU B"},
	[M_NOISE] = {"noise%", "other processes' CPU use during the run, % of one CPU"},
	[M_STEAL] = {"steal%", "hypervisor steal during the run, % of one CPU"},
	[M_LOAD] = {"load1", "1-minute load average at the start of the run"},
};

struct options {
	int runs;
	int frames;
	int ncaps;
	uint64_t caps[MAX_CAPS];
	bool kind_on[K_COUNT], place_on[P_COUNT];
	int cpu_a, cpu_b;
	double split_ratio;
	double quiet_pct;  /* runs during which others used less than this count as quiet */
	double wait_quiet; /* before a run, wait for others to use less than this (0: do not) */
	double pace;       /* producer frames per second (0: as fast as it can) */
	bool spin;         /* both sides poll instead of sleeping */
	bool quiet;
	const char *csv;
	uint64_t seed;
};

struct ru {
	long minflt, majflt, nvcsw, nivcsw;
	int64_t stime_ns;
};

struct schedsnap {
	uint64_t migrations, run_ns, rq_ns;
};

/* What one side measured. */
struct side {
	uint64_t t0, t1;     /* CLOCK_MONOTONIC: first timed frame started, last one done */
	uint64_t cpu_ns;     /* thread CPU clock over the timed frames */
	uint64_t work_ns, wait_ns;
	double work_med_ns;
	double lag_med;
	struct ru warm, span;
	struct schedsnap sched;
	uint64_t cpu_changes, on_a;
};

struct shared {
	_Atomic int ready; /* consumer: 1 attached, -1 failed */
	_Atomic int failed;
	char errmsg[200];
	char name[64];
	int kind, cpu;     /* the consumer's case and CPU (-1: not pinned) */
	bool spin;         /* --spin */
	uint64_t total, warm, slots;
	uint8_t *buf;      /* flag case: the slots, in a shared mapping made before fork */
	_Alignas(64) _Atomic uint32_t produced;
	_Alignas(64) _Atomic uint32_t consumed;
	struct side prod, cons;
	int16_t *pcpu, *ccpu; /* CPU of every frame, per side (shared mapping) */
	/* mru case: the slot of frame seq is slot_of[seq % slots]; a free slot's
	 * freed_at is the frame it held + 1 (0: never used), a taken one's SLOT_BUSY. */
	_Atomic uint32_t slot_of[MAX_SLOTS];
	_Atomic uint64_t freed_at[MAX_SLOTS];
};

static volatile sig_atomic_t stop_requested;
static double median_of(const double *v, int n);
static int cpu_a_g;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void set_error(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct shared *sh, const char *fmt, ...)
{
	if (sh->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sh->errmsg, sizeof(sh->errmsg), fmt, ap);
	va_end(ap);
	sh->failed = 1;
}

/* ------------------------------------------------------------ per-side accounting */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void ru_now(struct ru *r)
{
	struct rusage u;
	getrusage(RUSAGE_THREAD, &u);
	*r = (struct ru){u.ru_minflt, u.ru_majflt, u.ru_nvcsw, u.ru_nivcsw,
			 (int64_t)u.ru_stime.tv_sec * 1000000000 + (int64_t)u.ru_stime.tv_usec * 1000};
}

static struct ru ru_sub(struct ru a, struct ru b)
{
	return (struct ru){a.minflt - b.minflt, a.majflt - b.majflt, a.nvcsw - b.nvcsw, a.nivcsw - b.nivcsw,
			   a.stime_ns - b.stime_ns};
}

/* se.nr_migrations from /proc/thread-self/sched; run and run-queue wait time
 * from /proc/thread-self/schedstat (both there without CONFIG_SCHEDSTATS). */
static void sched_now(struct schedsnap *s)
{
	char buf[4096];
	*s = (struct schedsnap){0};
	FILE *f = fopen("/proc/thread-self/sched", "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *p = strstr(buf, "se.nr_migrations");
		if (p && (p = strchr(p, ':')))
			s->migrations = strtoull(p + 1, NULL, 10);
	}
	f = fopen("/proc/thread-self/schedstat", "r");
	if (f) {
		unsigned long long run = 0, wait = 0;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
			s->run_ns = run;
			s->rq_ns = wait;
		}
		fclose(f);
	}
}

struct acct {
	struct ru ru0, ru_warm;
	struct schedsnap s0;
	uint64_t cpu0;
	uint32_t *work; /* per timed frame, ns */
	uint32_t *lag;
	uint64_t n;
};

static int acct_init(struct acct *a, uint64_t frames)
{
	*a = (struct acct){0};
	a->work = calloc(frames ? frames : 1, sizeof(*a->work));
	a->lag = calloc(frames ? frames : 1, sizeof(*a->lag));
	ru_now(&a->ru0);
	return a->work && a->lag ? 0 : -1;
}

/* At the first timed frame. */
static void acct_begin(struct acct *a, struct side *s)
{
	struct ru now;
	ru_now(&now);
	s->warm = ru_sub(now, a->ru0);
	a->ru_warm = now;
	sched_now(&a->s0);
	s->t0 = now_ns();
	a->cpu0 = thread_cpu_ns();
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

static double median_u32(uint32_t *v, uint64_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	return n % 2 ? v[n / 2] : ((double)v[n / 2 - 1] + v[n / 2]) / 2;
}

/* After the last timed frame. */
static void acct_end(struct acct *a, struct side *s)
{
	s->cpu_ns = thread_cpu_ns() - a->cpu0;
	s->t1 = now_ns();
	struct ru now;
	struct schedsnap sn;
	ru_now(&now);
	sched_now(&sn);
	s->span = ru_sub(now, a->ru_warm);
	s->sched = (struct schedsnap){sn.migrations - a->s0.migrations, sn.run_ns - a->s0.run_ns,
				      sn.rq_ns - a->s0.rq_ns};
	s->work_med_ns = median_u32(a->work, a->n);
	s->lag_med = median_u32(a->lag, a->n);
}

static void acct_free(struct acct *a)
{
	free(a->work);
	free(a->lag);
}

static void cpu_note(int16_t *cpus, uint64_t i, struct side *s, bool timed)
{
	int c = sched_getcpu();
	cpus[i] = (int16_t)c;
	if (timed) {
		s->cpu_changes += i > 0 && cpus[i - 1] != cpus[i];
		s->on_a += c == cpu_a_g;
	}
}

static int pin_to(int cpu, const cpu_set_t *all)
{
	cpu_set_t set;
	if (cpu < 0)
		return sched_setaffinity(0, sizeof(*all), all);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* ------------------------------------------------------------ flag hand-off */

static long futex(_Atomic uint32_t *w, int op, uint32_t val)
{
	struct timespec ts = {.tv_sec = CALL_TIMEOUT_NS / (int64_t)NS_PER_S};
	return syscall(SYS_futex, (uint32_t *)w, op, val, op == FUTEX_WAIT ? &ts : NULL, NULL, 0);
}

/* Wait until WORD has moved on from the values that keep us waiting: those
 * for which (word - base) mod 2^32 >= limit (produced: base = seq + 1, limit
 * 2^31; consumed: base = seq - slots + 1, limit 2^31). -1 after CALL_TIMEOUT_NS. */
static int flag_wait(_Atomic uint32_t *word, uint32_t base, bool spin)
{
	uint32_t v;
	uint64_t deadline = spin ? now_ns() + (uint64_t)CALL_TIMEOUT_NS : 0;
	while ((uint32_t)((v = atomic_load_explicit(word, memory_order_acquire)) - base) >= 0x80000000u) {
		if (spin) {
			if (now_ns() > deadline)
				return -1;
		} else if (futex(word, FUTEX_WAIT, v) < 0 && errno == ETIMEDOUT) {
			return -1;
		}
	}
	return 0;
}

/* --spin: fr_ring_reserve / fr_ring_peek polled with FR_RING_NO_WAIT, so that the
 * side never sleeps (and its vCPU never idles); -ETIMEDOUT after 10 s. */
static int reserve_spin(fr_ring_t *r, void **p)
{
	uint64_t deadline = now_ns() + (uint64_t)CALL_TIMEOUT_NS;
	int rc;
	while ((rc = fr_ring_reserve(r, FRAME_BYTES, FR_FRAME_ALIGN, p, FR_RING_NO_WAIT)) == -EAGAIN)
		if (now_ns() > deadline)
			return -ETIMEDOUT;
	return rc;
}

static int peek_spin(fr_ring_t *r, const void **p, size_t *len)
{
	uint64_t deadline = now_ns() + (uint64_t)CALL_TIMEOUT_NS;
	int rc;
	while ((rc = fr_ring_peek(r, p, len, FR_RING_NO_WAIT)) == -EAGAIN)
		if (now_ns() > deadline)
			return -ETIMEDOUT;
	return rc;
}

/* mru case: take the free slot freed last. The caller has seen (acquire on
 * `consumed`) that at most slots - 1 frames are in flight: one slot is free. */
static uint64_t mru_take(struct shared *sh)
{
	uint64_t best = 0, best_t = 0;
	bool found = false;
	for (uint64_t i = 0; i < sh->slots; i++) {
		uint64_t t = atomic_load_explicit(&sh->freed_at[i], memory_order_relaxed);
		if (t != SLOT_BUSY && (!found || t > best_t)) {
			best = i;
			best_t = t;
			found = true;
		}
	}
	atomic_store_explicit(&sh->freed_at[best], SLOT_BUSY, memory_order_relaxed);
	return best;
}

/* ------------------------------------------------------------ consumer */

static void consumer_main(struct shared *sh)
{
	struct acct a;
	struct side *s = &sh->cons;
	fr_ring_t *r = NULL;
	int rc;
	if (sh->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(sh->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	if (acct_init(&a, sh->total - sh->warm) < 0) {
		set_error(sh, "consumer: out of memory");
		atomic_store(&sh->ready, -1);
		return;
	}
	if (sh->kind == K_RING && (rc = fr_ring_open(&r, sh->name)) < 0) {
		set_error(sh, "consumer: fr_ring_open(%s): %s", sh->name, fr_ring_strerror(rc));
		atomic_store(&sh->ready, -1);
		acct_free(&a);
		return;
	}
	if (sh->kind != K_RING) {
		/* Map every slot page now: the mru producer may hand out a slot
		 * first in the timed frames, and its faults would count there. */
		volatile uint8_t sink = 0;
		for (size_t off = 0; off < sh->slots * SLOT_STRIDE; off += 4096)
			sink ^= sh->buf[off];
		(void)sink;
	}
	atomic_store(&sh->ready, 1);
	for (uint64_t seq = 0; seq < sh->total && !sh->failed; seq++) {
		bool timed = seq >= sh->warm;
		if (seq == sh->warm)
			acct_begin(&a, s);
		cpu_note(sh->ccpu, seq, s, timed);
		uint64_t t0 = now_ns(), t1, t2, slot = 0;
		const void *p;
		size_t len = FRAME_BYTES;
		if (sh->kind == K_RING) {
			rc = sh->spin ? peek_spin(r, &p, &len) : fr_ring_peek(r, &p, &len, CALL_TIMEOUT_NS);
			if (rc < 0) {
				set_error(sh, "consumer: frame %" PRIu64 ": %s", seq, fr_ring_strerror(rc));
				break;
			}
		} else {
			if (flag_wait(&sh->produced, (uint32_t)seq + 1u, sh->spin) < 0) {
				set_error(sh, "consumer: frame %" PRIu64 " not produced within 10 s", seq);
				break;
			}
			slot = sh->kind == K_MRU ? atomic_load_explicit(&sh->slot_of[seq % sh->slots], memory_order_relaxed)
						 : seq % sh->slots;
			p = sh->buf + slot * SLOT_STRIDE + FR_FRAME_ALIGN;
		}
		uint32_t lag = atomic_load_explicit(&sh->produced, memory_order_relaxed) - (uint32_t)seq - 1u;
		t1 = now_ns();
		if (len != FRAME_BYTES || !verify(p, FRAME_BYTES, seq)) {
			set_error(sh, "consumer: frame %" PRIu64 " is corrupt (length, sequence or content)", seq);
			break;
		}
		t2 = now_ns();
		if (sh->kind == K_RING) {
			if ((rc = fr_ring_release(r)) < 0) {
				set_error(sh, "consumer: fr_ring_release: %s", fr_ring_strerror(rc));
				break;
			}
		} else {
			if (sh->kind == K_MRU)
				atomic_store_explicit(&sh->freed_at[slot], seq + 1, memory_order_relaxed);
			atomic_store_explicit(&sh->consumed, (uint32_t)seq + 1u, memory_order_release);
			futex(&sh->consumed, FUTEX_WAKE, 1);
		}
		if (timed) {
			s->wait_ns += (t1 - t0) + (now_ns() - t2);
			s->work_ns += t2 - t1;
			a.work[a.n] = (uint32_t)(t2 - t1);
			a.lag[a.n++] = lag;
		}
	}
	if (!sh->failed) {
		acct_end(&a, s);
		if (sh->kind == K_RING) {
			/* The producer marks end of stream after the last frame. */
			const void *p;
			size_t len;
			rc = fr_ring_peek(r, &p, &len, CALL_TIMEOUT_NS);
			if (rc != -ENODATA)
				set_error(sh, "consumer: expected end of stream, got %s", rc < 0 ? fr_ring_strerror(rc) : "a record");
		}
	}
	fr_ring_close(&r);
	acct_free(&a);
}

/* ------------------------------------------------------------ calibration */

/* How fast CPU is right now with no memory traffic: sum_words (the consumer's
 * code) and memset (the producer's) over a 256 KiB buffer that stays in L2.
 * A host that slows a vCPU down (another guest on its SMT sibling, a lower
 * clock) shows here; a slow run with a normal figure here is not that. */
#define CAL_BYTES ((size_t)256 << 10)
#define CAL_PASSES 40
static void calibrate(int cpu, const cpu_set_t *all, uint8_t *cal, double *sum_gbs, double *set_gbs)
{
	volatile uint64_t sink = 0;
	pin_to(cpu, all);
	memset(cal, 1, CAL_BYTES);
	sink += sum_words(cal, CAL_BYTES);
	uint64_t t0 = now_ns();
	for (int i = 0; i < CAL_PASSES; i++)
		sink += sum_words(cal, CAL_BYTES);
	uint64_t t1 = now_ns();
	for (int i = 0; i < CAL_PASSES; i++) {
		memset(cal, i, CAL_BYTES);
		__asm__ __volatile__("" : : "r"(cal) : "memory");
	}
	uint64_t t2 = now_ns();
	pin_to(-1, all);
	(void)sink;
	*sum_gbs = (double)(CAL_BYTES * CAL_PASSES) / (double)(t1 - t0);
	*set_gbs = (double)(CAL_BYTES * CAL_PASSES) / (double)(t2 - t1);
}

/* How fast data written on one CPU is read on the other: CPU A memsets
 * XFER_BYTES (more than an L2, so most of it is in the last-level cache
 * when it is read), then CPU B sums it; median of XFER_PASSES. Where the
 * two vCPUs do not share a last-level cache on the host, this is slow. */
#define XFER_BYTES ((size_t)2 << 20)
#define XFER_PASSES 8
static double cross_read_gbs(int cpu_a, int cpu_b, const cpu_set_t *all, uint8_t *buf)
{
	double v[XFER_PASSES];
	volatile uint64_t sink = 0;
	for (int i = 0; i < XFER_PASSES; i++) {
		pin_to(cpu_a, all);
		memset(buf, i, XFER_BYTES);
		pin_to(cpu_b, all);
		uint64_t t0 = now_ns();
		sink += sum_words(buf, XFER_BYTES);
		v[i] = (double)XFER_BYTES / (double)(now_ns() - t0);
	}
	pin_to(-1, all);
	(void)sink;
	return median_of(v, XFER_PASSES);
}

/* ------------------------------------------------------------ one run */

struct cond {
	enum kind kind;
	enum place place;
	uint64_t cap;  /* ring capacity the case mimics */
	uint64_t slots; /* frames in one lap of such a ring */
	char label[48];
};

struct run {
	double m[M_COUNT];
	int round;
	bool done;
};

static uint64_t slots_for(uint64_t cap)
{
	return cap / SLOT_STRIDE;
}

static int run_pair(struct shared *sh, const struct options *o, const struct cond *c, const cpu_set_t *all,
		    double *m)
{
	static unsigned counter;
	fr_ring_t *r = NULL;
	struct acct a;
	struct side *s = &sh->prod;
	pid_t child = -1;
	int ret = -1, rc;
	uint8_t *buf = MAP_FAILED;
	size_t buf_size = (size_t)(c->slots * SLOT_STRIDE);

	sh->kind = (int)c->kind;
	sh->spin = o->spin;
	sh->warm = c->slots + 2;
	sh->total = sh->warm + (uint64_t)o->frames;
	sh->slots = c->slots;
	sh->cpu = c->place == P_SPLIT ? o->cpu_b : c->place == P_SAME ? o->cpu_a : -1;
	sh->ready = 0;
	sh->failed = 0;
	sh->errmsg[0] = '\0';
	sh->prod = (struct side){0};
	sh->cons = (struct side){0};
	atomic_store(&sh->produced, 0);
	atomic_store(&sh->consumed, 0);
	for (int i = 0; i < MAX_SLOTS; i++)
		atomic_store(&sh->freed_at[i], 0);
	if (acct_init(&a, (uint64_t)o->frames) < 0) {
		set_error(sh, "out of memory");
		return -1;
	}
	if (c->kind == K_RING) {
		struct fr_ring_create_opts ro = {.capacity = c->cap, .on_full = FR_RING_FULL_BLOCK};
		snprintf(sh->name, sizeof(sh->name), "probe-1080p-%d-%u", (int)getpid(), counter++);
		if ((rc = fr_ring_create(&r, sh->name, &ro)) < 0) {
			set_error(sh, "fr_ring_create(%s, %" PRIu64 " B): %s", sh->name, c->cap, fr_ring_strerror(rc));
			goto end;
		}
	} else {
		/* Shared memory as the ring's (shmem), populated as fr_ring_create does. */
		buf = mmap(NULL, buf_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (buf == MAP_FAILED) {
			set_error(sh, "mmap %zu B: %s", buf_size, strerror(errno));
			goto end;
		}
		sh->buf = buf;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		set_error(sh, "fork: %s", strerror(errno));
		goto end;
	}
	if (child == 0) {
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		consumer_main(sh);
		_exit(sh->failed ? 1 : 0);
	}
	pin_to(c->place == P_FREE ? -1 : o->cpu_a, all);
	uint64_t deadline = now_ns() + (uint64_t)CALL_TIMEOUT_NS;
	while (atomic_load(&sh->ready) == 0 && now_ns() < deadline) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&sh->ready) <= 0) {
		set_error(sh, "consumer did not attach");
		goto end;
	}
	/* The warm-up lap's faults start here: fr_ring_create's MAP_POPULATE (one
	 * fault per page of the data area) is not the stream's. */
	ru_now(&a.ru0);
	uint64_t base = now_ns(), period = o->pace > 0 ? (uint64_t)(1e9 / o->pace) : 0;
	for (uint64_t seq = 0; seq < sh->total && !sh->failed && !stop_requested; seq++) {
		bool timed = seq >= sh->warm;
		if (period) {
			/* A live source: frame seq is not there before base + seq periods. */
			uint64_t due = base + seq * period;
			struct timespec ts = {(time_t)(due / NS_PER_S), (long)(due % NS_PER_S)};
			if (o->spin)
				while (now_ns() < due && !stop_requested)
					;
			else
				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
				       !stop_requested)
					;
		}
		if (seq == sh->warm)
			acct_begin(&a, s);
		cpu_note(sh->pcpu, seq, s, timed);
		uint64_t t0 = now_ns(), t1, t2, slot = 0;
		void *p;
		if (c->kind == K_RING) {
			rc = o->spin ? reserve_spin(r, &p) : fr_ring_reserve(r, FRAME_BYTES, FR_FRAME_ALIGN, &p, CALL_TIMEOUT_NS);
			if (rc < 0) {
				set_error(sh, "producer: frame %" PRIu64 ": %s", seq, fr_ring_strerror(rc));
				break;
			}
		} else {
			if (flag_wait(&sh->consumed, (uint32_t)(seq + 1 - sh->slots), o->spin) < 0) {
				set_error(sh, "producer: no free slot for frame %" PRIu64 " within 10 s", seq);
				break;
			}
			slot = c->kind == K_MRU ? mru_take(sh) : seq % sh->slots;
			p = buf + slot * SLOT_STRIDE + FR_FRAME_ALIGN;
		}
		t1 = now_ns();
		fill(p, FRAME_BYTES, seq);
		t2 = now_ns();
		if (c->kind == K_RING && (rc = fr_ring_commit(r, FRAME_BYTES)) < 0) {
			set_error(sh, "producer: fr_ring_commit: %s", fr_ring_strerror(rc));
			break;
		}
		if (c->kind == K_MRU)
			atomic_store_explicit(&sh->slot_of[seq % sh->slots], (uint32_t)slot, memory_order_relaxed);
		atomic_store_explicit(&sh->produced, (uint32_t)seq + 1u, memory_order_release);
		if (c->kind != K_RING)
			futex(&sh->produced, FUTEX_WAKE, 1);
		if (timed) {
			s->wait_ns += (t1 - t0) + (now_ns() - t2);
			s->work_ns += t2 - t1;
			a.work[a.n++] = (uint32_t)(t2 - t1);
		}
	}
	if (!sh->failed && !stop_requested)
		acct_end(&a, s);
	if (r)
		fr_ring_mark_eos(r);
	ret = 0;
end:
	if (child > 0) {
		int status;
		if (ret < 0 || stop_requested) {
			sh->failed = 1;
			if (r)
				fr_ring_mark_eos(r);
			/* A flag consumer may wait for a frame that will not come. */
			kill(child, SIGKILL);
		}
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		if (ret == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
			if (!sh->failed)
				set_error(sh, "consumer failed (status 0x%x)", status);
			ret = -1;
		}
	}
	if (ret == 0 && sh->failed)
		ret = -1;
	if (ret == 0 && r) {
		struct fr_ring_stats st;
		fr_ring_get_stats(r, &st);
		if (st.records_written != sh->total || st.records_read != sh->total) {
			set_error(sh, "ring counters: %" PRIu64 " written, %" PRIu64 " read, %" PRIu64 " sent",
				  st.records_written, st.records_read, sh->total);
			ret = -1;
		}
	}
	pin_to(-1, all);
	fr_ring_close(&r);
	if (buf != MAP_FAILED)
		munmap(buf, buf_size);
	acct_free(&a);
	if (ret < 0)
		return -1;

	const struct side *P = &sh->prod, *C = &sh->cons;
	double n = (double)o->frames;
	m[M_FPS] = n / ((double)(C->t1 - P->t0) / 1e9);
	m[M_P_CPU] = (double)P->cpu_ns / n / 1e3;
	m[M_P_SYS] = (double)P->span.stime_ns / n / 1e3;
	m[M_P_WORK] = P->work_med_ns / 1e3;
	m[M_P_WORK_MEAN] = (double)P->work_ns / n / 1e3;
	m[M_P_WAIT] = (double)P->wait_ns / n / 1e3;
	m[M_C_CPU] = (double)C->cpu_ns / n / 1e3;
	m[M_C_SYS] = (double)C->span.stime_ns / n / 1e3;
	m[M_C_WORK] = C->work_med_ns / 1e3;
	m[M_C_WORK_MEAN] = (double)C->work_ns / n / 1e3;
	m[M_C_WAIT] = (double)C->wait_ns / n / 1e3;
	m[M_P_MINFLT] = (double)P->span.minflt;
	m[M_C_MINFLT] = (double)C->span.minflt;
	m[M_P_WARMFLT] = (double)P->warm.minflt;
	m[M_C_WARMFLT] = (double)C->warm.minflt;
	m[M_MAJFLT] = (double)(P->warm.majflt + P->span.majflt + C->warm.majflt + C->span.majflt);
	m[M_P_VCSW] = (double)P->span.nvcsw;
	m[M_P_IVCSW] = (double)P->span.nivcsw;
	m[M_C_VCSW] = (double)C->span.nvcsw;
	m[M_C_IVCSW] = (double)C->span.nivcsw;
	m[M_P_MIGR] = (double)P->sched.migrations;
	m[M_C_MIGR] = (double)C->sched.migrations;
	m[M_P_RQ] = (double)P->sched.rq_ns / 1e6;
	m[M_C_RQ] = (double)C->sched.rq_ns / 1e6;
	uint64_t same = 0;
	for (uint64_t i = sh->warm; i < sh->total; i++)
		same += sh->pcpu[i] == sh->ccpu[i];
	m[M_SAME] = 100.0 * (double)same / n;
	m[M_P_CHG] = (double)P->cpu_changes;
	m[M_C_CHG] = (double)C->cpu_changes;
	m[M_P_CPUA] = 100.0 * (double)P->on_a / n;
	m[M_LAG] = C->lag_med;
	return 0;
}

/* One process: memset N frames over the slots, then sum N frames over them. */
static int run_memset(struct shared *sh, const struct options *o, const struct cond *c, double *m)
{
	size_t size = (size_t)(c->slots * SLOT_STRIDE);
	uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uint64_t *last = calloc(c->slots, sizeof(*last));
	struct acct a[2];
	struct side sd[2] = {{0}};
	int ret = -1;
	if (buf == MAP_FAILED || !last) {
		set_error(sh, "out of memory");
		goto end;
	}
	if (acct_init(&a[0], (uint64_t)o->frames) < 0 || acct_init(&a[1], (uint64_t)o->frames) < 0) {
		set_error(sh, "out of memory");
		goto end;
	}
	uint64_t seq = 0;
	for (int pass = 0; pass < 2; pass++) {
		struct side *s = &sd[pass];
		/* The memset pass starts with one warm-up lap, as the pairs do. */
		uint64_t warm = pass == 0 ? c->slots + 2 : 0;
		for (uint64_t i = 0; i < warm + (uint64_t)o->frames && !stop_requested; i++) {
			bool timed = i >= warm;
			if (i == warm)
				acct_begin(&a[pass], s);
			cpu_note(sh->pcpu, i, s, timed);
			uint64_t k = i % c->slots;
			uint8_t *p = buf + k * SLOT_STRIDE + FR_FRAME_ALIGN;
			uint64_t t1 = now_ns();
			if (pass == 0) {
				fill(p, FRAME_BYTES, seq);
				last[k] = seq++;
			} else if (!verify(p, FRAME_BYTES, last[k])) {
				set_error(sh, "memset case: buffer %" PRIu64 " corrupt", k);
				goto end;
			}
			uint64_t t2 = now_ns();
			if (timed) {
				s->work_ns += t2 - t1;
				a[pass].work[a[pass].n++] = (uint32_t)(t2 - t1);
			}
		}
		acct_end(&a[pass], s);
	}
	if (stop_requested)
		goto end;
	double n = (double)o->frames;
	m[M_FPS] = n / ((double)(sd[0].t1 - sd[0].t0 + sd[1].t1 - sd[1].t0) / 1e9);
	m[M_P_CPU] = (double)sd[0].cpu_ns / n / 1e3;
	m[M_P_SYS] = (double)sd[0].span.stime_ns / n / 1e3;
	m[M_P_WORK] = sd[0].work_med_ns / 1e3;
	m[M_P_WORK_MEAN] = (double)sd[0].work_ns / n / 1e3;
	m[M_C_CPU] = (double)sd[1].cpu_ns / n / 1e3;
	m[M_C_SYS] = (double)sd[1].span.stime_ns / n / 1e3;
	m[M_C_WORK] = sd[1].work_med_ns / 1e3;
	m[M_C_WORK_MEAN] = (double)sd[1].work_ns / n / 1e3;
	m[M_P_MINFLT] = (double)sd[0].span.minflt;
	m[M_C_MINFLT] = (double)sd[1].span.minflt;
	m[M_P_WARMFLT] = (double)sd[0].warm.minflt;
	m[M_MAJFLT] = (double)(sd[0].warm.majflt + sd[0].span.majflt + sd[1].span.majflt);
	m[M_P_VCSW] = (double)sd[0].span.nvcsw;
	m[M_P_IVCSW] = (double)sd[0].span.nivcsw;
	m[M_C_VCSW] = (double)sd[1].span.nvcsw;
	m[M_C_IVCSW] = (double)sd[1].span.nivcsw;
	m[M_P_MIGR] = (double)sd[0].sched.migrations;
	m[M_C_MIGR] = (double)sd[1].sched.migrations;
	m[M_P_RQ] = (double)sd[0].sched.rq_ns / 1e6;
	m[M_C_RQ] = (double)sd[1].sched.rq_ns / 1e6;
	m[M_P_CHG] = (double)sd[0].cpu_changes;
	m[M_C_CHG] = (double)sd[1].cpu_changes;
	m[M_P_CPUA] = 100.0 * (double)sd[0].on_a / n;
	ret = 0;
end:
	acct_free(&a[0]);
	acct_free(&a[1]);
	free(last);
	if (buf != MAP_FAILED)
		munmap(buf, size);
	return ret;
}

/* ------------------------------------------------------------ statistics */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double median_of(const double *v, int n)
{
	double t[MAX_RUNS];
	if (n <= 0)
		return NAN;
	memcpy(t, v, (size_t)n * sizeof(*t));
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Ranks 1..n, ties averaged. */
static void ranks(const double *v, int n, double *rk)
{
	for (int i = 0; i < n; i++) {
		int less = 0, eq = 0;
		for (int j = 0; j < n; j++) {
			less += v[j] < v[i];
			eq += v[j] == v[i];
		}
		rk[i] = less + (eq + 1) / 2.0;
	}
}

/* Spearman's rank correlation; NAN if either side is constant. */
static double spearman(const double *x, const double *y, int n)
{
	double rx[MAX_RUNS], ry[MAX_RUNS], mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
	ranks(x, n, rx);
	ranks(y, n, ry);
	for (int i = 0; i < n; i++) {
		mx += rx[i];
		my += ry[i];
	}
	mx /= n;
	my /= n;
	for (int i = 0; i < n; i++) {
		sxy += (rx[i] - mx) * (ry[i] - my);
		sxx += (rx[i] - mx) * (rx[i] - mx);
		syy += (ry[i] - my) * (ry[i] - my);
	}
	return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static void print_value(double v)
{
	if (isnan(v))
		printf(" %9s", "-");
	else if (fabs(v) >= 1e5)
		printf(" %9.3g", v);
	else if (fabs(v) >= 100 || v == floor(v))
		printf(" %9.0f", v);
	else
		printf(" %9.2f", v);
}

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: probe_1080p [OPTIONS]\n"
		"Why 1080p zero-copy ring throughput is bimodal (issue 13): runs a 1080p BGR producer/consumer\n"
		"pair (two processes) for a fixed number of frames per run and records per run and per side:\n"
		"fps, CPU time per frame, memset/sum time, minor/major faults, context switches, migrations,\n"
		"run-queue wait, the CPU of every frame, the consumer's lag, the core-to-core line round trip,\n"
		"other processes' CPU use. Cases: the ring, a control that hands the same frame slots over\n"
		"by a flag (no ring), the same with the slot freed last refilled first (mru), and one core\n"
		"memsetting/summing the same footprint. Prints figures only.\n"
		"\n"
		"  --runs N           rounds; every case runs once per round, in a shuffled order (default 20)\n"
		"  --frames N         timed frames per run, after a warm-up lap (default 2000)\n"
		"  --caps LIST        ring capacities in MiB, powers of two >= 16 (default 16,32,64)\n"
		"  --cases LIST       comma list of ring,flag,mru,memset (default ring,flag,memset)\n"
		"  --pace FPS         the producer makes at most FPS frames/s, as a live source (default: as\n"
		"                     fast as the consumer takes them); memset cases ignore it\n"
		"  --spin             neither side ever sleeps: the ring calls are polled with FR_RING_NO_WAIT,\n"
		"                     the flag waits and the --pace waits spin (their CPUs never go idle)\n"
		"  --places LIST      comma list of free,split,same (default all): nothing pinned, producer\n"
		"                     on CPU A and consumer on CPU B, both on CPU A (memset: always free)\n"
		"  --cpus A,B         the CPUs of split and same (default: the first two allowed)\n"
		"  --split-ratio R    compare slow and fast runs of a case whose fastest run is more than R\n"
		"                     times its slowest (default 1.25)\n"
		"  --quiet-pct PCT    when some runs were noisy, analyse again the runs during which other\n"
		"                     processes used less than PCT%% of one CPU (default 20)\n"
		"  --wait-quiet PCT   before each run, wait up to 5 s for a 200 ms window in which other\n"
		"                     processes use less than PCT%% of one CPU (default: do not wait)\n"
		"  --csv FILE         also write every run's figures to FILE\n"
		"  --seed N           seed of the shuffled order (default 1)\n"
		"  --quiet            no line per run\n"
		"  -h, --help         this text\n"
		"Exit status: 0 ok, 1 error or corrupt frame, 2 bad option, 130 interrupted.\n");
}

static int parse_int(const char *arg, long lo, long hi, long *out, const char *opt)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "probe_1080p: %s wants an integer in %ld..%ld, not '%s'\n", opt, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_names(const char *arg, const char *const *names, int count, bool *on, const char *what)
{
	char buf[256];
	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	for (int i = 0; i < count; i++)
		on[i] = false;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i = 0;
		while (i < count && strcmp(t, names[i]) != 0)
			i++;
		if (i == count) {
			fprintf(stderr, "probe_1080p: unknown %s '%s'\n", what, t);
			return -1;
		}
		on[i] = true;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	long v;
	*o = (struct options){.runs = 20, .frames = 2000, .ncaps = 3, .caps = {16u << 20, 32u << 20, 64u << 20},
			      .cpu_a = -1, .cpu_b = -1, .split_ratio = 1.25, .quiet_pct = 20, .seed = 1};
	for (int i = 0; i < K_COUNT; i++)
		o->kind_on[i] = i != K_MRU;
	for (int i = 0; i < P_COUNT; i++)
		o->place_on[i] = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--quiet") == 0 || strcmp(a, "--spin") == 0) {
			if (a[2] == 'q')
				o->quiet = true;
			else
				o->spin = true;
			continue;
		}
		if (!val) {
			fprintf(stderr, "probe_1080p: unknown option or missing value: '%s' (see --help)\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--runs") == 0) {
			if (parse_int(val, 1, MAX_RUNS, &v, a) < 0)
				return -1;
			o->runs = (int)v;
		} else if (strcmp(a, "--frames") == 0) {
			if (parse_int(val, 1, 1000000, &v, a) < 0)
				return -1;
			o->frames = (int)v;
		} else if (strcmp(a, "--caps") == 0) {
			char buf[256];
			if (strlen(val) >= sizeof(buf))
				return -1;
			strcpy(buf, val);
			o->ncaps = 0;
			for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				char *end;
				v = strtol(t, &end, 10);
				if (o->ncaps == MAX_CAPS || *end || end == t || v < 16 || v > 4096 || (v & (v - 1))) {
					fprintf(stderr, "probe_1080p: --caps wants up to %d powers of two 16..4096 (MiB)\n",
						MAX_CAPS);
					return -1;
				}
				o->caps[o->ncaps++] = (uint64_t)v << 20;
			}
			if (!o->ncaps)
				return -1;
		} else if (strcmp(a, "--cases") == 0) {
			if (parse_names(val, kind_names, K_COUNT, o->kind_on, "case") < 0)
				return -1;
		} else if (strcmp(a, "--places") == 0) {
			if (parse_names(val, place_names, P_COUNT, o->place_on, "place") < 0)
				return -1;
		} else if (strcmp(a, "--cpus") == 0) {
			char tail;
			if (sscanf(val, "%d,%d%c", &o->cpu_a, &o->cpu_b, &tail) != 2 || o->cpu_a < 0 || o->cpu_b < 0 ||
			    o->cpu_a >= MAX_CPUS || o->cpu_b >= MAX_CPUS) {
				fprintf(stderr, "probe_1080p: --cpus wants A,B (CPU numbers)\n");
				return -1;
			}
		} else if (strcmp(a, "--split-ratio") == 0) {
			char *end;
			o->split_ratio = strtod(val, &end);
			if (*end || !(o->split_ratio >= 1)) {
				fprintf(stderr, "probe_1080p: --split-ratio wants a number >= 1\n");
				return -1;
			}
		} else if (strcmp(a, "--quiet-pct") == 0 || strcmp(a, "--wait-quiet") == 0) {
			char *end;
			double x = strtod(val, &end);
			if (*end || end == val || !(x >= 0 && x <= 200)) {
				fprintf(stderr, "probe_1080p: %s wants a percentage 0..200\n", a);
				return -1;
			}
			if (a[2] == 'q')
				o->quiet_pct = x;
			else
				o->wait_quiet = x;
		} else if (strcmp(a, "--pace") == 0) {
			char *end;
			o->pace = strtod(val, &end);
			if (*end || end == val || !(o->pace >= 0 && o->pace <= 100000)) {
				fprintf(stderr, "probe_1080p: --pace wants frames per second, 0..100000\n");
				return -1;
			}
		} else if (strcmp(a, "--csv") == 0) {
			o->csv = val;
		} else if (strcmp(a, "--seed") == 0) {
			if (parse_int(val, 0, 1L << 30, &v, a) < 0)
				return -1;
			o->seed = (uint64_t)v;
		} else {
			fprintf(stderr, "probe_1080p: unknown option '%s' (see --help)\n", a);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ main */

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void print_run_header(void)
{
	printf("%5s %-22s %7s %8s %8s %8s %8s %7s %7s %6s %6s %5s %5s %6s %5s %5s %5s %5s %6s %5s\n", "round", "case",
	       "fps", "p.cpu_us", "p.mset", "c.cpu_us", "c.sum", "p.flt", "c.flt", "p.csw", "c.csw", "migr", "same%",
	       "lag", "rt_ns", "cal.s", "xfer", "noise", "steal", "load");
}

static void print_run(int round, const struct cond *c, const double *m)
{
	printf("%5d %-22s %7.0f %8.0f %8.0f %8.0f %8.0f %7.0f %7.0f %6.0f %6.0f %5.0f %5.0f %6.1f %5.0f %5.1f %5.1f "
	       "%4.0f%% %5.1f%% %5.2f\n",
	       round, c->label, m[M_FPS], m[M_P_CPU], m[M_P_WORK_MEAN], m[M_C_CPU], m[M_C_WORK_MEAN], m[M_P_MINFLT],
	       m[M_C_MINFLT], m[M_P_VCSW] + m[M_P_IVCSW], m[M_C_VCSW] + m[M_C_IVCSW], m[M_P_MIGR] + m[M_C_MIGR],
	       m[M_SAME], m[M_LAG], m[M_RT], m[M_CAL_SUM_A], m[M_XFER], m[M_NOISE], m[M_STEAL], m[M_LOAD]);
	fflush(stdout);
}

/* Slow and fast runs of one case side by side: split at the largest gap
 * between consecutive fps (sorted) if it is at least 10%, else at the median. */
static void print_split(const struct cond *c, struct run *runs, int n)
{
	double fps[MAX_RUNS], col[MAX_RUNS], slow[MAX_RUNS], fast[MAX_RUNS];
	int idx[MAX_RUNS];
	for (int i = 0; i < n; i++) {
		idx[i] = i;
		fps[i] = runs[i].m[M_FPS];
	}
	for (int i = 1; i < n; i++) /* insertion sort of idx by fps */
		for (int j = i; j > 0 && fps[idx[j - 1]] > fps[idx[j]]; j--) {
			int t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	int cut = n / 2;
	double best = 1.10;
	for (int i = 1; i < n; i++) {
		double g = fps[idx[i]] / fps[idx[i - 1]];
		if (g > best && i >= 2 && n - i >= 2) {
			best = g;
			cut = i;
		}
	}
	printf("\n%s: %d runs, fps %.0f..%.0f; slow = the %d slowest, fast = the %d fastest (%s)\n", c->label, n,
	       fps[idx[0]], fps[idx[n - 1]], cut, n - cut,
	       best > 1.10 ? "split at the largest gap in fps" : "no gap of 10%: split at the median");
	printf("  %-13s %9s %9s %9s %6s   %s\n", "metric", "slow med", "fast med", "fast/slow", "rho", "(rho: Spearman with fps over these runs)");
	for (int k = 0; k < M_COUNT; k++) {
		int ns = 0, nf = 0;
		bool any = false;
		for (int i = 0; i < n; i++) {
			col[i] = runs[idx[i]].m[k];
			any |= !isnan(col[i]);
			if (i < cut)
				slow[ns++] = col[i];
			else
				fast[nf++] = col[i];
		}
		if (!any)
			continue;
		double ms = median_of(slow, ns), mf = median_of(fast, nf);
		double sorted_fps[MAX_RUNS];
		for (int i = 0; i < n; i++)
			sorted_fps[i] = fps[idx[i]];
		printf("  %-13s", metric_info[k].name);
		print_value(ms);
		print_value(mf);
		if (ms != 0 && !isnan(ms) && !isnan(mf))
			printf(" %9.2f", mf / ms);
		else
			printf(" %9s", "-");
		double rho = k == M_FPS ? NAN : spearman(col, sorted_fps, n);
		if (isnan(rho))
			printf(" %6s\n", "-");
		else
			printf(" %+6.2f\n", rho);
	}
}

/* Medians [min..max] per case, then slow vs fast runs of the cases that
 * spread; only runs during which others used less than MAX_NOISE count. */
static void print_analysis(const struct options *o, const struct cond *conds, int nc,
			   struct run (*runs)[MAX_RUNS], int rounds, double max_noise)
{
	static const int sum_cols[] = {M_FPS, M_P_CPU, M_P_WORK_MEAN, M_C_CPU, M_C_WORK_MEAN, M_P_MINFLT, M_C_MINFLT,
				       M_P_IVCSW, M_P_MIGR, M_C_MIGR, M_P_RQ, M_SAME, M_LAG, M_RT, M_XFER, M_NOISE};
	static struct run sel[MAX_RUNS];
	int nsum = (int)(sizeof(sum_cols) / sizeof(sum_cols[0]));
	if (isinf(max_noise))
		printf("\n=== all runs\n");
	else
		printf("\n=== quiet runs only: those during which other processes used less than %.0f%% of one CPU\n",
		       max_noise);
	printf("\nsummary: median [min..max] per case\n");
	for (int ci = 0; ci < nc; ci++) {
		int n = 0;
		for (int r = 0; r < rounds; r++)
			if (runs[ci][r].m[M_NOISE] < max_noise)
				sel[n++] = runs[ci][r];
		printf("%-22s n %2d", conds[ci].label, n);
		for (int j = 0; j < nsum && n; j++) {
			double v[MAX_RUNS], lo = INFINITY, hi = -INFINITY;
			int k = sum_cols[j], m = 0;
			for (int r = 0; r < n; r++) {
				double x = sel[r].m[k];
				if (isnan(x))
					continue;
				v[m++] = x;
				lo = x < lo ? x : lo;
				hi = x > hi ? x : hi;
			}
			if (m)
				printf("  %s %.4g [%.4g..%.4g]", metric_info[k].name, median_of(v, m), lo, hi);
		}
		printf("\n");
	}
	printf("\nslow vs fast runs of the cases whose fastest run is more than %.2fx their slowest:\n",
	       o->split_ratio);
	for (int ci = 0; ci < nc; ci++) {
		double lo = INFINITY, hi = 0;
		int n = 0;
		for (int r = 0; r < rounds; r++) {
			if (!(runs[ci][r].m[M_NOISE] < max_noise))
				continue;
			sel[n++] = runs[ci][r];
			double f = runs[ci][r].m[M_FPS];
			lo = f < lo ? f : lo;
			hi = f > hi ? f : hi;
		}
		if (n >= 4 && hi > o->split_ratio * lo)
			print_split(&conds[ci], sel, n);
	}
}

/* Wait (at most 5 s) for a 200 ms window in which other processes use less
 * than PCT % of one CPU. */
static void wait_quiet(double pct)
{
	for (int i = 0; i < 25 && !stop_requested; i++) {
		struct probe p;
		struct timespec ts = {0, 200000000};
		probe_start(&p);
		nanosleep(&ts, NULL);
		if (probe_other(&p) < pct)
			return;
	}
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	cpu_set_t all;
	if (sched_getaffinity(0, sizeof(all), &all) != 0) {
		fprintf(stderr, "probe_1080p: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	if (o.cpu_a < 0) {
		for (int c = 0; c < MAX_CPUS && (o.cpu_a < 0 || o.cpu_b < 0); c++) {
			if (!CPU_ISSET(c, &all))
				continue;
			if (o.cpu_a < 0)
				o.cpu_a = c;
			else
				o.cpu_b = c;
		}
		if (o.cpu_b < 0)
			o.cpu_b = o.cpu_a; /* one CPU: split is the same as same */
	}
	cpu_a_g = o.cpu_a;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* The cases. */
	static struct cond conds[K_COUNT * P_COUNT * (MAX_CAPS + 1)];
	int nc = 0;
	for (int ci = 0; ci < o.ncaps; ci++) {
		for (int k = K_RING; k <= K_MRU; k++) {
			if (!o.kind_on[k])
				continue;
			for (int p = 0; p < P_COUNT; p++) {
				if (!o.place_on[p])
					continue;
				struct cond *c = &conds[nc++];
				*c = (struct cond){k, p, o.caps[ci], slots_for(o.caps[ci]), ""};
				snprintf(c->label, sizeof(c->label), "%s %" PRIu64 "M %s", kind_names[k], o.caps[ci] >> 20,
					 place_names[p]);
			}
		}
	}
	if (o.kind_on[K_MEMSET]) {
		for (int ci = -1; ci < o.ncaps; ci++) {
			uint64_t slots = ci < 0 ? 1 : slots_for(o.caps[ci]);
			struct cond *c = &conds[nc];
			*c = (struct cond){K_MEMSET, P_FREE, ci < 0 ? 0 : o.caps[ci], slots, ""};
			if (ci < 0)
				snprintf(c->label, sizeof(c->label), "memset 1 buf");
			else
				snprintf(c->label, sizeof(c->label), "memset %" PRIu64 " bufs (%" PRIu64 "M)", slots,
					 o.caps[ci] >> 20);
			nc++;
		}
	}
	if (!nc) {
		fprintf(stderr, "probe_1080p: no case selected\n");
		return 2;
	}

	static struct run runs[sizeof(conds) / sizeof(conds[0])][MAX_RUNS];
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t maxframes = (uint64_t)o.frames + 2;
	for (int i = 0; i < nc; i++)
		maxframes = conds[i].slots + 2 + (uint64_t)o.frames > maxframes ? conds[i].slots + 2 + (uint64_t)o.frames
										 : maxframes;
	size_t cpus_size = (size_t)maxframes * sizeof(int16_t);
	int16_t *cpus = mmap(NULL, 2 * cpus_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	FILE *csv = NULL;
	int ret = 1;
	uint8_t *cal = aligned_alloc(4096, CAL_BYTES), *xfer = aligned_alloc(4096, XFER_BYTES);
	if (sh == MAP_FAILED || cpus == MAP_FAILED || !cal || !xfer) {
		fprintf(stderr, "probe_1080p: out of memory\n");
		return 1;
	}
	memset(sh, 0, sizeof(*sh));
	sh->pcpu = cpus;
	sh->ccpu = cpus + maxframes;
	if (o.csv && !(csv = fopen(o.csv, "w"))) {
		fprintf(stderr, "probe_1080p: %s: %s\n", o.csv, strerror(errno));
		return 1;
	}
	if (csv) {
		fprintf(csv, "round,case,kind,place,cap_mib,slots");
		for (int k = 0; k < M_COUNT; k++)
			fprintf(csv, ",%s", metric_info[k].name);
		fprintf(csv, "\n");
	}

	double load[3] = {0};
	getloadavg(load, 3);
	printf("probe_1080p: %d round(s) of %d case(s), %d timed frames per run after a warm-up lap; 1080p BGR "
	       "(%zu B, slot stride %zu B); CPU A = %d, CPU B = %d; %ld online CPUs; load average %.2f %.2f %.2f\n",
	       o.runs, nc, o.frames, FRAME_BYTES, (size_t)SLOT_STRIDE, o.cpu_a, o.cpu_b,
	       sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
	if (o.pace > 0)
		printf("producer paced at %g frames/s (a live source); memset cases unpaced\n", o.pace);
	if (o.spin)
		printf("--spin: both sides poll instead of sleeping (CPU time then includes the waits)\n");
	printf("ring laps: ");
	for (int ci = 0; ci < o.ncaps; ci++)
		printf("%s%" PRIu64 " MiB = %" PRIu64 " frames (%.1f MB)", ci ? ", " : "", o.caps[ci] >> 20,
		       slots_for(o.caps[ci]), (double)(slots_for(o.caps[ci]) * SLOT_STRIDE) / 1e6);
	printf("\nper run: us are per frame; p.mset/c.sum = mean memset/sum time of one frame; flt = minor "
	       "faults and csw = context switches in the timed frames; migr = both sides' migrations; lag = "
	       "median frames committed after the one the consumer reads; rt_ns = cache line round trip A<->B "
	       "before the run; cal.s = sum_words GB/s over 256 KiB (L2-hot) on CPU A, xfer = GB/s at which B sums what A just wrote, before the run; noise = "
	       "other processes' CPU, %% of one CPU\n");
	if (!o.quiet)
		print_run_header();

	uint64_t rng = o.seed * 0x9e3779b97f4a7c15ull + 1;
	int order[sizeof(conds) / sizeof(conds[0])];
	uint64_t t_begin = now_ns();
	int done_rounds = 0;
	for (int round = 0; round < o.runs && !stop_requested; round++) {
		for (int i = 0; i < nc; i++)
			order[i] = i;
		for (int i = nc - 1; i > 0; i--) {
			int j = (int)(rnd(&rng) % (uint64_t)(i + 1));
			int t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int oi = 0; oi < nc && !stop_requested; oi++) {
			int ci = order[oi];
			const struct cond *c = &conds[ci];
			struct run *ru = &runs[ci][round];
			for (int k = 0; k < M_COUNT; k++)
				ru->m[k] = NAN;
			ru->round = round + 1;
			ru->m[M_RT] = line_round_trip_on(o.cpu_a, o.cpu_b);
			ru->m[M_XFER] = cross_read_gbs(o.cpu_a, o.cpu_b, &all, xfer);
			calibrate(o.cpu_a, &all, cal, &ru->m[M_CAL_SUM_A], &ru->m[M_CAL_SET_A]);
			calibrate(o.cpu_b, &all, cal, &ru->m[M_CAL_SUM_B], &ru->m[M_CAL_SET_B]);
			if (o.wait_quiet > 0)
				wait_quiet(o.wait_quiet);
			getloadavg(load, 1);
			ru->m[M_LOAD] = load[0];
			struct probe pb;
			probe_start(&pb);
			int rc = c->kind == K_MEMSET ? run_memset(sh, &o, c, ru->m) : run_pair(sh, &o, c, &all, ru->m);
			if (rc < 0) {
				if (stop_requested)
					break;
				fprintf(stderr, "probe_1080p: %s, round %d: %s\n", c->label, round + 1, sh->errmsg);
				goto end;
			}
			ru->m[M_NOISE] = probe_other(&pb);
			ru->m[M_RT_AFTER] = line_round_trip_on(o.cpu_a, o.cpu_b);
			uint64_t busy, steal;
			if (pb.ok && machine_cpu(&busy, &steal) == 0)
				ru->m[M_STEAL] = (double)(steal - pb.steal) / (double)(now_ns() - pb.t) * 100.0;
			ru->done = true;
			if (!o.quiet)
				print_run(round + 1, c, ru->m);
			if (csv) {
				fprintf(csv, "%d,%s,%s,%s,%" PRIu64 ",%" PRIu64, round + 1, c->label, kind_names[c->kind],
					place_names[c->place], c->cap >> 20, c->slots);
				for (int k = 0; k < M_COUNT; k++)
					fprintf(csv, ",%.6g", ru->m[k]);
				fprintf(csv, "\n");
				fflush(csv);
			}
		}
		if (!stop_requested)
			done_rounds = round + 1;
	}
	if (stop_requested) {
		fprintf(stderr, "probe_1080p: interrupted after %d round(s)\n", done_rounds);
		ret = 130;
		goto end;
	}

	getloadavg(load, 3);
	printf("\nload average now %.2f %.2f %.2f, %.0f s in all\n", load[0], load[1], load[2],
	       (double)(now_ns() - t_begin) / 1e9);
	print_analysis(&o, conds, nc, runs, done_rounds, INFINITY);
	bool noisy = false;
	for (int ci = 0; ci < nc; ci++)
		for (int r = 0; r < done_rounds; r++)
			noisy |= !(runs[ci][r].m[M_NOISE] < o.quiet_pct);
	if (noisy)
		print_analysis(&o, conds, nc, runs, done_rounds, o.quiet_pct);
	printf("\nmetrics:\n");
	for (int k = 0; k < M_COUNT; k++)
		printf("  %-13s %s\n", metric_info[k].name, metric_info[k].what);
	ret = 0;
end:
	fflush(stdout);
	if (csv)
		fclose(csv);
	munmap(cpus, 2 * cpus_size);
	munmap(sh, sizeof(*sh));
	free(cal);
	free(xfer);
	return ret;
}
