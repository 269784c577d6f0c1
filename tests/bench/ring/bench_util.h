/* bench_util.h - what bench_ring and probe_1080p share: clock, payload fill/check, core-to-core line round trip, CPU time of the machine and of others.
 *
 * Header-only (static inline), for programs built with _GNU_SOURCE.
 */
#ifndef FRAMERING_BENCH_UTIL_H
#define FRAMERING_BENCH_UTIL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ payload */

/* Every byte is (seq & 0xff), then the first word is seq: the sum of all
 * words is then known from seq alone. Sizes are multiples of 8. */
static inline void fill(void *p, size_t n, uint64_t seq)
{
	memset(p, (int)(seq & 0xff), n);
	memcpy(p, &seq, sizeof(seq));
}

/* noinline: the same code for the ring and the baselines, never folded into a loop
 * (and so not "inline": "unused" keeps a program that does not call it quiet). */
static __attribute__((noinline, unused)) uint64_t sum_words(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t s = 0;
	for (size_t i = 0; i < n / 8; i++)
		s += w[i];
	return s;
}

static inline bool verify(const void *p, size_t n, uint64_t seq)
{
	uint64_t first;
	uint64_t pat = (seq & 0xff) * 0x0101010101010101ull;
	memcpy(&first, p, sizeof(first));
	return sum_words(p, n) == seq + pat * (n / 8 - 1) && first == seq;
}

/* ------------------------------------------------------------ machine state */

/* Two threads bounce a cache line: the round trip is what every index and
 * record line handed from one core to the other costs. On this VM it is not
 * constant: it jumps from about 100 ns to 500 ns for seconds at a time (the
 * host moves the vCPUs apart), and the 1-4 KiB cases then run 5-20x slower. */
static _Alignas(128) _Atomic uint64_t pp_ping;
static _Alignas(128) _Atomic uint64_t pp_pong;
static _Atomic int pp_abort;
#define PP_ROUNDS 100000
#define PP_MAX_NS 100000000ull /* both spinning on one busy CPU would take minutes: stop */

static inline void *pingpong_thread(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= PP_ROUNDS; i++) {
		while (atomic_load_explicit(&pp_ping, memory_order_acquire) != i)
			if (atomic_load_explicit(&pp_abort, memory_order_relaxed))
				return NULL;
		atomic_store_explicit(&pp_pong, i, memory_order_release);
	}
	return NULL;
}

/* ns per round trip over at most PP_ROUNDS rounds or PP_MAX_NS; 0 if no thread.
 * The calling thread pings from CPU_A, a new thread answers from CPU_B; a
 * negative CPU leaves that side where the scheduler puts it. */
static inline double line_round_trip_on(int cpu_a, int cpu_b)
{
	pthread_t t;
	pthread_attr_t attr;
	cpu_set_t saved, set;
	bool restore = false;
	uint64_t i, spins = 0;
	atomic_store(&pp_ping, 0);
	atomic_store(&pp_pong, 0);
	atomic_store(&pp_abort, 0);
	if (pthread_attr_init(&attr) != 0)
		return 0;
	if (cpu_b >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu_b, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	if (cpu_a >= 0 && sched_getaffinity(0, sizeof(saved), &saved) == 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu_a, &set);
		restore = sched_setaffinity(0, sizeof(set), &set) == 0;
	}
	int rc = pthread_create(&t, &attr, pingpong_thread, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		if (restore)
			sched_setaffinity(0, sizeof(saved), &saved);
		return 0;
	}
	uint64_t t0 = now_ns(), t1 = t0;
	for (i = 1; i <= PP_ROUNDS; i++) {
		atomic_store_explicit(&pp_ping, i, memory_order_release);
		while (atomic_load_explicit(&pp_pong, memory_order_acquire) != i) {
			if ((++spins & 4095) == 0 && now_ns() - t0 > PP_MAX_NS)
				goto out;
		}
	}
out:
	t1 = now_ns();
	atomic_store(&pp_abort, 1);
	pthread_join(t, NULL);
	if (restore)
		sched_setaffinity(0, sizeof(saved), &saved);
	return i > 1 ? (double)(t1 - t0) / (double)(i - 1) : (double)(t1 - t0);
}

static inline double line_round_trip_ns(void)
{
	return line_round_trip_on(-1, -1);
}

/* CPU time the whole machine spent busy, and steal, from /proc/stat (ns). */
static inline int machine_cpu(uint64_t *busy_ns, uint64_t *steal_ns)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		       &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	double tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
	/* user nice system idle iowait irq softirq steal */
	*busy_ns = (uint64_t)((double)(v[0] + v[1] + v[2] + v[5] + v[6]) * tick_ns);
	*steal_ns = (uint64_t)((double)v[7] * tick_ns);
	return 0;
}

/* ------------------------------------------------------------ noise */

/* CPU time of this process and its reaped children (the consumer processes), ns. */
static inline uint64_t own_cpu(void)
{
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	uint64_t us = (uint64_t)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) *
			      1000000u +
		      (uint64_t)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec);
	return us * 1000u;
}

/* What other processes did to one run: their CPU time over its wall time. */
struct probe {
	uint64_t t, busy, steal, own;
	bool ok;
};

static inline void probe_start(struct probe *p)
{
	*p = (struct probe){.t = now_ns(), .own = own_cpu()};
	p->ok = machine_cpu(&p->busy, &p->steal) == 0;
}

/* Other processes' CPU use since probe_start, in % of one CPU (jiffy resolution). */
static inline double probe_other(const struct probe *p)
{
	uint64_t busy = 0, steal = 0;
	if (!p->ok || machine_cpu(&busy, &steal) < 0)
		return 0;
	double wall = (double)(now_ns() - p->t);
	double other = (double)(busy - p->busy) + (double)(steal - p->steal) - (double)(own_cpu() - p->own);
	return other > 0 ? other / wall * 100.0 : 0;
}

/* Our own (both sides') CPU use since probe_start, in CPUs. */
static inline double probe_own(const struct probe *p)
{
	return (double)(own_cpu() - p->own) / (double)(now_ns() - p->t);
}

#endif
