/* bench_fanout.c - fan-out throughput (issue 11): one producer, K lossless consumers at 1080p zero-copy, the cost of a slow live consumer, 64 B copy mode; separate processes.
 *
 * Cases (every consumer is its own process, forked before the ring exists and
 * attached with fr_ring_attach(); the producer is this process):
 *   k1, k2, k4  1080p BGR24 zero-copy: the producer fr_ring_reserve()s a 6,220,800 B
 *               record (align 64), memsets every byte in place (the sequence number
 *               in the first word), commits; K EVERY consumers each fr_ring_peek(), read
 *               every byte (sum of 64-bit words, checked against the sequence
 *               number) and fr_ring_release().
 *   live        the same with K = 1 on a larger ring, once without and once with an
 *               extra LATEST consumer that holds each frame it gets for 50 ms
 *               (usleep) before releasing it, checking before and after the hold
 *               that the frame was not written over.
 *   64          64 B copy mode: fr_ring_write() / fr_ring_read() + check, one EVERY consumer.
 * The producer waits for all consumers (fr_ring_wait_consumers) before the first
 * record and warms up (two laps of the ring and --warm seconds, so that a
 * lossless pair is in its steady state: the ring full if the consumers are the
 * slower side), then is timed; each process's rate is its own records over its
 * own timed span. A repetition ends with
 * fr_ring_mark_eos(); every consumer must have got every record.
 *
 * Every figure is the median over --reps repetitions, and the repetitions of the
 * cases are interleaved (rep 1 of every case, then rep 2, ...) so that a noisy
 * neighbour on this shared machine hurts every case alike; every second
 * repetition runs the cases in reverse order, so that no case always runs
 * first or second of a pair (with a fixed order, the second of the slow-live
 * pair came out a few per cent faster, whichever it was). Ratios compare figures of
 * this one run only.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ring.h"

/* Blocking calls never wait forever: a stuck peer is an error, not a hang. */
#define CALL_TIMEOUT_NS ((int64_t)10 * 1000000000)
#define MAX_REPS 50
#define MAX_KIDS 5 /* K = 4 every-consumers, or 1 every + 1 latest */
#define FRAME_1080P ((size_t)1920 * 1080 * 3)
#define MSG_SMALL ((size_t)64)

enum case_id { C_K1, C_K2, C_K4, C_NOLIVE, C_LIVE, C_COPY64, NCASES };

struct case_def {
	const char *key;   /* --cases */
	const char *label; /* in the tables */
	int every;         /* EVERY consumers */
	int live;          /* LATEST consumers (holding each frame) */
	bool zerocopy;     /* else fr_ring_write / fr_ring_read */
};

static const struct case_def cases[NCASES] = {
	[C_K1] = {"k1", "1080p zero-copy, K=1", 1, 0, true},
	[C_K2] = {"k2", "1080p zero-copy, K=2", 2, 0, true},
	[C_K4] = {"k4", "1080p zero-copy, K=4", 4, 0, true},
	[C_NOLIVE] = {"live", "slow live: K=1 alone", 1, 0, true},
	[C_LIVE] = {"live", "slow live: K=1 + latest", 1, 1, true},
	[C_COPY64] = {"64", "64 B copy, 1 every", 1, 0, false},
};

struct options {
	int reps;
	double rep_s;
	double warm_s;
	uint64_t cap, cap_live, cap_small;
	unsigned hold_us;
	bool on[NCASES];
	bool check_targets;
	bool fixed_order;
	double noise_max;
	double retry_budget_s;
};

/* --inject-corruption: the producer flips one payload bit of this record. */
static uint64_t corrupt_seq = UINT64_MAX;

/* What one consumer process reports (in the shared mapping). */
struct kid_report {
	_Atomic int state; /* 0 starting, 1 attached, -1 failed */
	int live;          /* LATEST consumer */
	uint64_t records;  /* all it got, warm-up included */
	uint64_t timed;    /* records with seq >= warm-up, after the first of them */
	uint64_t t_first_ns, t_end_ns; /* release of the first timed record, of the last */
	uint64_t skipped;  /* LATEST: passed over for newer ones */
	uint64_t futex_waits, futex_wakes; /* its own, over the timed span */
	uint64_t cpu_ns, nvcsw, nivcsw;    /* getrusage over the timed span */
	uint64_t rq_wait_ns;               /* /proc/self/schedstat: runnable but not running */
};

/* Shared by the producer and the consumer processes: a MAP_SHARED anonymous
 * mapping made before any fork(). */
struct shared {
	char name[64];
	size_t size;
	bool zerocopy;
	_Atomic uint64_t warm; /* records before the timed part; UINT64_MAX: warming up still */
	unsigned hold_us;
	pid_t parent;
	_Atomic int err_claimed;
	_Atomic int failed;
	char errmsg[256];
	struct kid_report kid[MAX_KIDS];
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* The first error wins; any process may report one. */
static void set_error(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct shared *sh, const char *fmt, ...)
{
	if (atomic_exchange(&sh->err_claimed, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sh->errmsg, sizeof(sh->errmsg), fmt, ap);
	va_end(ap);
	atomic_store(&sh->failed, 1);
}

static bool is_tty;
static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	if (!is_tty)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

/* ------------------------------------------------------------ payload (fill/verify: bench_util.h) */

/* The live consumer's cheap look: the first word, then one byte every 64 KiB
 * and the last one (a frame written over by another would differ there). */
static bool spot_check(const uint8_t *p, size_t n, uint64_t seq)
{
	uint64_t first;
	memcpy(&first, p, sizeof(first));
	if (first != seq)
		return false;
	for (size_t i = 8; i < n; i += 65536)
		if (p[i] != (uint8_t)seq)
			return false;
	return p[n - 1] == (uint8_t)seq;
}

/* ------------------------------------------------------------ process accounting */

struct acct {
	uint64_t cpu_ns, nvcsw, nivcsw, rq_wait_ns;
};

/* Time spent runnable but waiting for a CPU, from /proc/self/schedstat
 * ("run_ns wait_ns timeslices"); 0 if the kernel does not provide it. */
static uint64_t rq_wait_ns(void)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static void acct_now(struct acct *a)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	a->cpu_ns = ((uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
		     (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) * 1000u;
	a->nvcsw = (uint64_t)ru.ru_nvcsw;
	a->nivcsw = (uint64_t)ru.ru_nivcsw;
	a->rq_wait_ns = rq_wait_ns();
}

/* ------------------------------------------------------------ consumer processes */

static fr_ring_t *volatile kid_ring;

/* SIGTERM in a consumer: sent by the kernel when the producer (our parent) dies
 * (PR_SET_PDEATHSIG), or by whoever signals the whole group. */
static void kid_on_term(int sig)
{
	(void)sig;
	fr_ring_t *r = kid_ring;
	if (r)
		fr_ring_interrupt(r);
}

static bool parent_gone(const struct shared *sh)
{
	return getppid() != sh->parent;
}

static void kid_every(struct shared *sh, struct kid_report *k, fr_ring_t *r, int idx)
{
	uint64_t seq = 0;
	struct acct a0 = {0}, a1;
	struct fr_ring_stats st0 = {0}, st1;
	bool draining = false;
	uint8_t buf[MSG_SMALL];
	for (;;) {
		const void *p;
		size_t len;
		int rc;
		if (sh->zerocopy) {
			rc = fr_ring_peek(r, &p, &len, CALL_TIMEOUT_NS);
		} else {
			ssize_t n = fr_ring_read(r, buf, sizeof(buf), CALL_TIMEOUT_NS);
			rc = n < 0 ? (int)n : 0;
			p = buf;
			len = n < 0 ? 0 : (size_t)n;
		}
		if (rc == -ENODATA)
			break;
		if (rc == -EINTR || rc == -ECANCELED) {
			if (parent_gone(sh)) {
				set_error(sh, "consumer %d: the producer is gone", idx);
				return;
			}
			continue; /* the producer decides when to stop */
		}
		if (rc < 0) {
			set_error(sh, "consumer %d: record %" PRIu64 ": %s", idx, seq, fr_ring_strerror(rc));
			return;
		}
		if (draining) {
			/* After a bad record: consume unchecked until end of stream, so
			 * that the producer sees the failure instead of waiting for space. */
		} else if (len != sh->size) {
			set_error(sh, "consumer %d: record %" PRIu64 " is %zu bytes, not %zu", idx, seq, len, sh->size);
			draining = true;
		} else if (!verify(p, len, seq)) {
			uint64_t got;
			memcpy(&got, p, sizeof(got));
			set_error(sh, "consumer %d: record %" PRIu64 " is corrupt (its sequence number says %" PRIu64
				  "; content %s)",
				  idx, seq, got, got == seq ? "differs" : "not checked");
			draining = true;
		}
		if (sh->zerocopy && (rc = fr_ring_release(r)) < 0) {
			set_error(sh, "consumer %d: fr_ring_release: %s", idx, fr_ring_strerror(rc));
			return;
		}
		if (seq == atomic_load_explicit(&sh->warm, memory_order_relaxed)) {
			k->t_first_ns = now_ns();
			acct_now(&a0);
			fr_ring_get_stats(r, &st0);
		}
		seq++;
	}
	k->records = seq;
	uint64_t warm = atomic_load(&sh->warm);
	if (warm != UINT64_MAX && seq > warm + 1) {
		k->t_end_ns = now_ns();
		k->timed = seq - warm - 1;
		acct_now(&a1);
		fr_ring_get_stats(r, &st1);
		k->cpu_ns = a1.cpu_ns - a0.cpu_ns;
		k->nvcsw = a1.nvcsw - a0.nvcsw;
		k->nivcsw = a1.nivcsw - a0.nivcsw;
		k->rq_wait_ns = a1.rq_wait_ns - a0.rq_wait_ns;
		k->futex_waits = st1.consumer_futex_waits - st0.consumer_futex_waits;
		k->futex_wakes = st1.consumer_futex_wakes - st0.consumer_futex_wakes;
	}
}

static void kid_live(struct shared *sh, struct kid_report *k, fr_ring_t *r, int idx)
{
	uint64_t last = UINT64_MAX, n = 0, timed = 0, skipped_all = 0;
	struct acct a0 = {0}, a1;
	struct fr_ring_stats st0 = {0}, st1;
	bool draining = false;
	for (;;) {
		const void *p;
		size_t len;
		uint64_t skipped = 0;
		int rc = fr_ring_peek_latest(r, &p, &len, &skipped, CALL_TIMEOUT_NS);
		if (rc == -ENODATA)
			break;
		if (rc == -EINTR || rc == -ECANCELED) {
			if (parent_gone(sh)) {
				set_error(sh, "live consumer %d: the producer is gone", idx);
				return;
			}
			continue;
		}
		if (rc < 0) {
			set_error(sh, "live consumer %d: after record %" PRId64 ": %s", idx,
				  last == UINT64_MAX ? (int64_t)-1 : (int64_t)last, fr_ring_strerror(rc));
			return;
		}
		uint64_t seq;
		memcpy(&seq, p, sizeof(seq));
		if (draining) {
		} else if (len != sh->size) {
			set_error(sh, "live consumer %d: a record of %zu bytes, not %zu", idx, len, sh->size);
			draining = true;
		} else if (last != UINT64_MAX && seq != last + 1 + skipped) {
			set_error(sh, "live consumer %d: record %" PRIu64 " after %" PRIu64 " and %" PRIu64
				  " skipped (expected %" PRIu64 ")",
				  idx, seq, last, skipped, last + 1 + skipped);
			draining = true;
		} else if (!spot_check(p, len, seq)) {
			set_error(sh, "live consumer %d: record %" PRIu64 " is corrupt", idx, seq);
			draining = true;
		}
		if (!draining)
			usleep(sh->hold_us);
		if (!draining && !spot_check(p, len, seq)) {
			set_error(sh, "live consumer %d: record %" PRIu64 " was written over while held", idx, seq);
			draining = true;
		}
		if ((rc = fr_ring_release(r)) < 0) {
			set_error(sh, "live consumer %d: fr_ring_release: %s", idx, fr_ring_strerror(rc));
			return;
		}
		if (last != UINT64_MAX)
			skipped_all += skipped;
		last = seq;
		n++;
		if (seq >= atomic_load_explicit(&sh->warm, memory_order_relaxed)) {
			if (timed++ == 0) {
				k->t_first_ns = now_ns();
				acct_now(&a0);
				fr_ring_get_stats(r, &st0);
			} else {
				k->t_end_ns = now_ns();
			}
		}
	}
	k->records = n;
	k->skipped = skipped_all;
	if (timed > 1) {
		k->timed = timed - 1;
		acct_now(&a1);
		fr_ring_get_stats(r, &st1);
		k->cpu_ns = a1.cpu_ns - a0.cpu_ns;
		k->nvcsw = a1.nvcsw - a0.nvcsw;
		k->nivcsw = a1.nivcsw - a0.nivcsw;
		k->rq_wait_ns = a1.rq_wait_ns - a0.rq_wait_ns;
		k->futex_waits = st1.consumer_futex_waits - st0.consumer_futex_waits;
		k->futex_wakes = st1.consumer_futex_wakes - st0.consumer_futex_wakes;
	}
}

static __attribute__((noreturn)) void kid_main(struct shared *sh, int idx)
{
	struct kid_report *k = &sh->kid[idx];
	/* Die with the producer: our SIGTERM handler interrupts the ring call, and
	 * fr_ring_close() of the last consumer of a dead producer's ring removes its name. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct sigaction sa = {.sa_handler = kid_on_term}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN); /* Ctrl-C is the producer's: it marks end of stream, we drain */
	signal(SIGHUP, SIG_IGN);
	if (parent_gone(sh))
		_exit(1);

	fr_ring_t *r = NULL;
	struct fr_ring_attach_opts ao = {k->live ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, CALL_TIMEOUT_NS};
	int rc = fr_ring_attach(&r, sh->name, &ao);
	if (rc < 0) {
		set_error(sh, "consumer %d: fr_ring_attach(%s): %s", idx, sh->name, fr_ring_strerror(rc));
		atomic_store(&k->state, -1);
	} else {
		kid_ring = r;
		atomic_store(&k->state, 1);
		if (k->live)
			kid_live(sh, k, r, idx);
		else
			kid_every(sh, k, r, idx);
		kid_ring = NULL;
		fr_ring_close(&r);
	}
	if (parent_gone(sh))
		fr_ring_unlink_stale(sh->name); /* in case we never got to attach */
	_exit(atomic_load(&sh->failed) ? 1 : 0);
}

/* ------------------------------------------------------------ the producer side */

struct kids {
	pid_t pid[MAX_KIDS];
	int n;
};

/* Kill and reap every consumer still running. */
static void kill_kids(struct kids *ks)
{
	for (int i = 0; i < ks->n; i++) {
		if (ks->pid[i] <= 0)
			continue;
		kill(ks->pid[i], SIGKILL);
		while (waitpid(ks->pid[i], NULL, 0) < 0 && errno == EINTR)
			;
		ks->pid[i] = 0;
	}
}

/* Reap the consumers within TIMEOUT_NS (then kill the rest); -1 if one failed. */
static int join_kids(struct shared *sh, struct kids *ks, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;
	int ret = 0;
	for (;;) {
		int left = 0;
		for (int i = 0; i < ks->n; i++) {
			if (ks->pid[i] <= 0)
				continue;
			int status;
			pid_t p = waitpid(ks->pid[i], &status, WNOHANG);
			if (p == 0) {
				left++;
				continue;
			}
			ks->pid[i] = 0;
			if (p < 0) {
				set_error(sh, "waitpid: %s", strerror(errno));
				ret = -1;
			} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				set_error(sh, "consumer %d failed (status 0x%x)", i, status);
				ret = -1;
			}
		}
		if (!left)
			return ret;
		if (now_ns() > deadline) {
			set_error(sh, "a consumer did not finish within %.0f s", (double)timeout_ns / 1e9);
			kill_kids(ks);
			return -1;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Wait until every consumer is attached: fr_ring_wait_consumers in short slices,
 * so that a consumer that failed to attach ends the wait at once. */
static int wait_attached(struct shared *sh, fr_ring_t *r, struct kids *ks)
{
	uint64_t deadline = now_ns() + (uint64_t)CALL_TIMEOUT_NS;
	for (;;) {
		int rc = fr_ring_wait_consumers(r, (unsigned)ks->n, 100 * 1000000);
		if (rc == 0)
			return 0;
		if (rc != -ETIMEDOUT && rc != -EINTR) {
			set_error(sh, "fr_ring_wait_consumers: %s", fr_ring_strerror(rc));
			return -1;
		}
		if (stop_requested || atomic_load(&sh->failed))
			return -1;
		for (int i = 0; i < ks->n; i++)
			if (atomic_load(&sh->kid[i].state) < 0)
				return -1;
		if (now_ns() > deadline) {
			set_error(sh, "%d consumer(s) did not attach within %d s", ks->n,
				  (int)(CALL_TIMEOUT_NS / (int64_t)NS_PER_S));
			return -1;
		}
	}
}

struct run_result {
	double prod_rate;          /* records/s committed by the producer (timed part) */
	double cons_rate[MAX_KIDS]; /* per every-consumer */
	double live_rate;          /* frames/s the live consumer got */
	uint64_t records, live_frames, live_skipped;
	double noise;              /* % of one CPU other processes used meanwhile */
	/* diagnostics: producer, the first every-consumer, the live consumer */
	double p_cpu, p_futex, p_vcsw, p_ivcsw, p_rqwait;
	double c_cpu, c_futex, c_vcsw, c_ivcsw, c_rqwait;
	double l_cpu, l_ivcsw;
};

static unsigned name_counter;

static uint64_t case_cap(const struct options *o, enum case_id c)
{
	return c == C_COPY64 ? o->cap_small : (c == C_NOLIVE || c == C_LIVE) ? o->cap_live : o->cap;
}

/* One repetition of one case; 0, -1 on error (sh->errmsg), 1 interrupted. */
static int run_case(struct shared *sh, const struct options *o, enum case_id cid, struct run_result *res)
{
	const struct case_def *cd = &cases[cid];
	struct kids ks = {.n = cd->every + cd->live};
	fr_ring_t *r = NULL;
	uint8_t src[MSG_SMALL];
	int ret = -1, rc;
	uint64_t seq = 0, cap = case_cap(o, cid);

	snprintf(sh->name, sizeof(sh->name), "bench-fanout-%d-%u", (int)getpid(), name_counter++);
	sh->size = cd->zerocopy ? FRAME_1080P : MSG_SMALL;
	sh->zerocopy = cd->zerocopy;
	/* At least two laps of the ring before the clock starts (every page is
	 * mapped by every process), and --warm seconds: a producer a little faster
	 * than its consumers fills the ring slowly, and until it is full its rate
	 * is not the pipeline's. */
	uint64_t rec_bytes = cd->zerocopy ? sh->size + 64 : sh->size + 8;
	uint64_t warm_min = 2 * cap / rec_bytes + 2, warm = UINT64_MAX;
	atomic_store(&sh->warm, UINT64_MAX);
	sh->hold_us = o->hold_us;
	atomic_store(&sh->err_claimed, 0);
	atomic_store(&sh->failed, 0);
	sh->errmsg[0] = 0;
	memset(sh->kid, 0, sizeof(sh->kid));
	*res = (struct run_result){0};

	/* The consumers first, before the ring exists (they wait for it in
	 * fr_ring_attach): a child forked from the producer would share its segment
	 * file and keep the producer "alive" after its death. */
	fflush(NULL);
	for (int i = 0; i < ks.n; i++) {
		sh->kid[i].live = i >= cd->every;
		pid_t p = fork();
		if (p < 0) {
			set_error(sh, "fork: %s", strerror(errno));
			goto end;
		}
		if (p == 0)
			kid_main(sh, i);
		ks.pid[i] = p;
	}
	struct fr_ring_create_opts ro = {.capacity = cap, .on_full = FR_RING_FULL_BLOCK};
	if ((rc = fr_ring_create(&r, sh->name, &ro)) < 0) {
		set_error(sh, "fr_ring_create(%s, %" PRIu64 " bytes): %s", sh->name, cap, fr_ring_strerror(rc));
		goto end;
	}
	if (wait_attached(sh, r, &ks) < 0)
		goto end;

	memset(src, 0, sizeof(src));
	unsigned check_mask = cd->zerocopy ? 0 : 255; /* the clock costs about a 64 B message */
	uint64_t t0 = 0, t_last = 0, deadline = UINT64_MAX;
	struct acct a0 = {0}, a1;
	struct fr_ring_stats st0 = {0}, st1;
	uint64_t warm_until = now_ns() + (uint64_t)(o->warm_s * 1e9);
	for (;; seq++) {
		if (warm == UINT64_MAX && seq >= warm_min && (seq & check_mask) == 0 && now_ns() >= warm_until) {
			warm = seq;
			atomic_store(&sh->warm, warm); /* before record WARM is committed: its readers see it */
			acct_now(&a0);
			fr_ring_get_stats(r, &st0);
			t0 = now_ns();
			deadline = t0 + (uint64_t)(o->rep_s * 1e9);
		}
		if ((seq & check_mask) == 0 && warm != UINT64_MAX && seq > warm &&
		    ((t_last = now_ns()) >= deadline || stop_requested || atomic_load(&sh->failed)))
			break;
		if (stop_requested || atomic_load_explicit(&sh->failed, memory_order_relaxed))
			break;
		if (cd->zerocopy) {
			void *p;
			rc = fr_ring_reserve(r, sh->size, 64, &p, CALL_TIMEOUT_NS);
			if (rc == 0) {
				fill(p, sh->size, seq);
				if (seq == corrupt_seq)
					((uint8_t *)p)[sh->size / 2] ^= 0x40;
				rc = fr_ring_commit(r, sh->size);
			}
		} else {
			fill(src, sizeof(src), seq);
			if (seq == corrupt_seq)
				src[sizeof(src) / 2] ^= 0x40;
			rc = fr_ring_write(r, src, sizeof(src), CALL_TIMEOUT_NS);
		}
		if (rc == -EINTR && stop_requested)
			break;
		if (rc < 0) {
			set_error(sh, "producer: record %" PRIu64 ": %s", seq, fr_ring_strerror(rc));
			break;
		}
	}
	acct_now(&a1);
	fr_ring_get_stats(r, &st1);
	/* Everyone still attached at the end (and the roster agrees). */
	struct fr_ring_consumer_info info[FR_RING_MAX_CONSUMERS];
	int nc = fr_ring_consumers(r, info, FR_RING_MAX_CONSUMERS);
	if (!atomic_load(&sh->failed) && !stop_requested && nc != ks.n)
		set_error(sh, "%d consumer(s) attached at the end, not %d", nc, ks.n);
	fr_ring_mark_eos(r);
	if (join_kids(sh, &ks, (uint64_t)CALL_TIMEOUT_NS) < 0 || atomic_load(&sh->failed))
		goto end;
	if (stop_requested) {
		ret = 1;
		goto end;
	}
	if (st1.records_written != seq) {
		set_error(sh, "ring counters: %" PRIu64 " written, producer sent %" PRIu64, st1.records_written, seq);
		goto end;
	}
	for (int i = 0; i < ks.n; i++) {
		struct kid_report *k = &sh->kid[i];
		if (!k->live && k->records != seq) {
			set_error(sh, "consumer %d got %" PRIu64 " records, the producer sent %" PRIu64, i, k->records,
				  seq);
			goto end;
		}
	}
	if (warm == UINT64_MAX || seq <= warm + 1 || t_last <= t0) {
		set_error(sh, "no timed records (--time too short?)");
		goto end;
	}

	double wall = (double)(t_last - t0);
	uint64_t timed = seq - warm;
	res->records = timed;
	res->prod_rate = (double)timed / (wall / 1e9);
	res->p_cpu = (double)(a1.cpu_ns - a0.cpu_ns) / wall;
	res->p_futex = (double)(st1.producer_futex_waits - st0.producer_futex_waits + st1.producer_futex_wakes -
				st0.producer_futex_wakes) / (double)timed;
	res->p_vcsw = (double)(a1.nvcsw - a0.nvcsw) / (wall / 1e9);
	res->p_ivcsw = (double)(a1.nivcsw - a0.nivcsw) / (wall / 1e9);
	res->p_rqwait = (double)(a1.rq_wait_ns - a0.rq_wait_ns) / wall * 100.0;
	for (int i = 0; i < ks.n; i++) {
		struct kid_report *k = &sh->kid[i];
		double span = (double)(k->t_end_ns - k->t_first_ns);
		double rate = k->timed && span > 0 ? (double)k->timed / (span / 1e9) : 0;
		if (k->live) {
			res->live_rate = rate;
			res->live_frames = k->records;
			res->live_skipped = k->skipped;
			res->l_cpu = span > 0 ? (double)k->cpu_ns / span : 0;
			res->l_ivcsw = span > 0 ? (double)k->nivcsw / (span / 1e9) : 0;
			continue;
		}
		res->cons_rate[i] = rate;
		if (i == 0 && span > 0) {
			res->c_cpu = (double)k->cpu_ns / span;
			res->c_futex = (double)(k->futex_waits + k->futex_wakes) / (double)k->timed;
			res->c_vcsw = (double)k->nvcsw / (span / 1e9);
			res->c_ivcsw = (double)k->nivcsw / (span / 1e9);
			res->c_rqwait = (double)k->rq_wait_ns / span * 100.0;
		}
	}
	ret = 0;
end:
	if (r)
		fr_ring_mark_eos(r); /* consumers still running drain and end */
	if (ret < 0 || stop_requested)
		join_kids(sh, &ks, 2 * NS_PER_S); /* kills what is left after 2 s */
	kill_kids(&ks);
	fr_ring_close(&r);
	/* Unlink by name: normally fr_ring_close() removed it already (-ENOENT). */
	rc = fr_ring_unlink_stale(sh->name);
	if (rc == 0)
		fprintf(stderr, "bench_fanout: warning: ring %s was left behind and is removed now\n", sh->name);
	return ret;
}

/* ------------------------------------------------------------ machine state (probes: bench_util.h) */

/* After a noisy run: wait (at most 2 s) for a 200 ms window in which others
 * use less than the limit, so that the retry has a chance. */
static void wait_quiet(const struct options *o)
{
	for (int i = 0; i < 10 && !stop_requested; i++) {
		struct probe p;
		struct timespec ts = {0, 200000000};
		probe_start(&p);
		nanosleep(&ts, NULL);
		if (probe_other(&p) < o->noise_max)
			return;
	}
}

/* ------------------------------------------------------------ results */

struct results {
	struct run_result run[NCASES][MAX_REPS];
	double line_rt[MAX_REPS + 1];
	int retries;
	double retry_s;
	int reps_done;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double tmp[MAX_REPS];
	if (n <= 0)
		return 0;
	memcpy(tmp, v, (size_t)n * sizeof(double));
	qsort(tmp, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* A field of every repetition of case C, as an array. */
#define FIELD(R, c, expr, out)                                   \
	do {                                                      \
		for (int i_ = 0; i_ < (R)->reps_done; i_++) {     \
			const struct run_result *x = &(R)->run[c][i_]; \
			(out)[i_] = (expr);                       \
		}                                                 \
	} while (0)

static double med_field_prod(const struct results *R, int c)
{
	double v[MAX_REPS];
	FIELD(R, c, x->prod_rate, v);
	return median(v, R->reps_done);
}

static void min_max(const double *v, int n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : 0;
	for (int i = 1; i < n; i++) {
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
}

/* "1234" for frames/s, "24.3 M" for messages/s. */
static void fmt_rate(char *buf, size_t n, double v)
{
	if (v >= 1e6)
		snprintf(buf, n, "%.2f M", v / 1e6);
	else
		snprintf(buf, n, "%.0f", v);
}

static void print_results(const struct options *o, const struct results *R)
{
	int n = R->reps_done;
	double v[MAX_REPS], lo, hi;
	char a[32], b[32], c[32];
	printf("\nrings: %" PRIu64 " MiB for K every-consumers (%.1f frames), %" PRIu64
	       " MiB for the slow-live pair (%.1f frames: one may be held), %" PRIu64
	       " KiB for 64 B; FR_RING_FULL_BLOCK\n",
	       o->cap >> 20, (double)o->cap / (double)FRAME_1080P, o->cap_live >> 20,
	       (double)o->cap_live / (double)FRAME_1080P, o->cap_small >> 10);
	printf("1080p = 1920x1080 BGR24, 6220800 B, payload align 64; producer: memset of every byte + sequence "
	       "number;\nevery-consumer: sum of every 64-bit word, checked; live consumer: holds each frame %.0f ms "
	       "(usleep),\nchecks its sequence number and one byte per 64 KiB before and after\n",
	       o->hold_us / 1000.0);
	printf("warm-up: two laps of the ring and %.2f s, untimed; rate = a process's own records over its own timed "
	       "span\n",
	       o->warm_s);
	printf("core-to-core cache line round trip before each repetition and at the end:");
	for (int i = 0; i <= n; i++)
		printf(" %.0f", R->line_rt[i]);
	printf(" ns\n\n");

	printf("throughput: medians of %d repetition(s); range = slowest..fastest repetition; noise = median %% of "
	       "a CPU\nother processes used during a repetition\n",
	       n);
	printf("%-26s %12s %21s %6s  %s\n", "case", "producer/s", "range", "noise", "each every-consumer/s (median)");
	for (int cid = 0; cid < NCASES; cid++) {
		if (!o->on[cid])
			continue;
		const struct case_def *cd = &cases[cid];
		FIELD(R, cid, x->prod_rate, v);
		double m = median(v, n);
		min_max(v, n, &lo, &hi);
		fmt_rate(a, sizeof(a), m);
		fmt_rate(b, sizeof(b), lo);
		fmt_rate(c, sizeof(c), hi);
		char range[80];
		snprintf(range, sizeof(range), "%s..%s", b, c);
		double nz[MAX_REPS];
		FIELD(R, cid, x->noise, nz);
		printf("%-26s %12s %21s %5.0f%% ", cd->label, a, range, median(nz, n));
		for (int k = 0; k < cd->every; k++) {
			FIELD(R, cid, x->cons_rate[k], v);
			fmt_rate(a, sizeof(a), median(v, n));
			printf(" %s", a);
		}
		if (cd->live) {
			FIELD(R, cid, x->live_rate, v);
			double fr[MAX_REPS], sk[MAX_REPS];
			FIELD(R, cid, (double)x->live_frames, fr);
			FIELD(R, cid, (double)x->live_skipped, sk);
			printf("; live consumer %.1f frames/s (%.0f frames, %.0f skipped per repetition)", median(v, n),
			       median(fr, n), median(sk, n));
		}
		if (cd->zerocopy) {
			printf("  [written %.1f GB/s, read %.1f GB/s]", m * (double)FRAME_1080P / 1e9,
			       m * (double)FRAME_1080P * cd->every / 1e9);
		}
		printf("\n");
	}

	printf("\nwhere the time goes (medians over the timed spans): cpu = CPUs used (1 = one core all along),\n"
	       "futex/rec = futex calls (waits + wakes, fr_ring_get_stats) per record, vcs/s and ics/s = voluntary and\n"
	       "involuntary context switches per second (getrusage), rq = %% of the time runnable but waiting for a\n"
	       "CPU (/proc/self/schedstat); P = producer, C = the first every-consumer, L = the live consumer\n");
	printf("%-26s %5s %9s %7s %7s %5s | %5s %9s %7s %7s %5s | %6s %5s\n", "case", "P cpu", "futex/rec", "vcs/s",
	       "ics/s", "rq", "C cpu", "futex/rec", "vcs/s", "ics/s", "rq", "L cpu", "ics/s");
	for (int cid = 0; cid < NCASES; cid++) {
		if (!o->on[cid])
			continue;
		double f[13];
		FIELD(R, cid, x->p_cpu, v);
		f[0] = median(v, n);
		FIELD(R, cid, x->p_futex, v);
		f[1] = median(v, n);
		FIELD(R, cid, x->p_vcsw, v);
		f[2] = median(v, n);
		FIELD(R, cid, x->p_ivcsw, v);
		f[3] = median(v, n);
		FIELD(R, cid, x->p_rqwait, v);
		f[4] = median(v, n);
		FIELD(R, cid, x->c_cpu, v);
		f[5] = median(v, n);
		FIELD(R, cid, x->c_futex, v);
		f[6] = median(v, n);
		FIELD(R, cid, x->c_vcsw, v);
		f[7] = median(v, n);
		FIELD(R, cid, x->c_ivcsw, v);
		f[8] = median(v, n);
		FIELD(R, cid, x->c_rqwait, v);
		f[9] = median(v, n);
		FIELD(R, cid, x->l_cpu, v);
		f[10] = median(v, n);
		FIELD(R, cid, x->l_ivcsw, v);
		f[11] = median(v, n);
		printf("%-26s %5.2f %9.4f %7.0f %7.0f %4.0f%% | %5.2f %9.4f %7.0f %7.0f %4.0f%% |", cases[cid].label,
		       f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]);
		if (cases[cid].live)
			printf(" %5.1f%% %5.0f\n", f[10] * 100, f[11]);
		else
			printf(" %6s %5s\n", "-", "-");
	}
}

/* Ratios and PASS/MISS lines; returns the number of misses. */
static int print_targets(const struct options *o, const struct results *R)
{
	int n = R->reps_done, misses = 0;
	double v[MAX_REPS], w[MAX_REPS], lo, hi;
	printf("\nratios and targets (from this run only)\n");
#define TARGET(ok, ...)                                   \
	do {                                              \
		printf("  %s  ", (ok) ? "PASS" : "MISS"); \
		printf(__VA_ARGS__);                      \
		printf("\n");                             \
		misses += !(ok);                          \
	} while (0)
	if (o->on[C_K1]) {
		double k1 = med_field_prod(R, C_K1);
		printf("  info  1080p zero-copy K=1: %.0f frames/s at the producer (%.2f GB/s; compare with bench_ring's "
		       "1080p zerocopy process figure)\n",
		       k1, k1 * (double)FRAME_1080P / 1e9);
		for (int cid = C_K2; cid <= C_K4; cid++) {
			if (!o->on[cid])
				continue;
			double m = med_field_prod(R, cid);
			/* Paired per repetition as well: both ran within seconds of each other. */
			for (int i = 0; i < n; i++)
				w[i] = R->run[C_K1][i].prod_rate > 0 ? R->run[cid][i].prod_rate / R->run[C_K1][i].prod_rate
								      : 0;
			min_max(w, n, &lo, &hi);
			printf("  info  K=%d / K=1: %.0f / %.0f frames/s = %.2fx (per repetition %.2f..%.2fx); "
			       "consumers read %.2fx the bytes of K=1\n",
			       cases[cid].every, m, k1, k1 > 0 ? m / k1 : 0, lo, hi,
			       k1 > 0 ? m * cases[cid].every / k1 : 0);
		}
	}
	if (o->on[C_NOLIVE] && o->on[C_LIVE]) {
		const char *who[2] = {"producer", "fast every-consumer"};
		for (int s = 0; s < 2; s++) {
			if (s == 0) {
				FIELD(R, C_NOLIVE, x->prod_rate, v);
				FIELD(R, C_LIVE, x->prod_rate, w);
			} else {
				FIELD(R, C_NOLIVE, x->cons_rate[0], v);
				FIELD(R, C_LIVE, x->cons_rate[0], w);
			}
			double without = median(v, n), with = median(w, n), ratio = without > 0 ? with / without : 0;
			double pr[MAX_REPS];
			for (int i = 0; i < n; i++)
				pr[i] = v[i] > 0 ? w[i] / v[i] : 0;
			min_max(pr, n, &lo, &hi);
			TARGET(ratio >= 0.95,
			       "slow live consumer (%.0f ms hold), %s with/without >= 0.95x: %.0f / %.0f frames/s = %.3fx "
			       "(paired per repetition: median %.3fx, %.3f..%.3fx)",
			       o->hold_us / 1000.0, who[s], with, without, ratio, median(pr, n), lo, hi);
		}
	}
	if (o->on[C_COPY64]) {
		double m = med_field_prod(R, C_COPY64);
		FIELD(R, C_COPY64, x->cons_rate[0], v);
		TARGET(m >= 12e6, "64 B copy mode, 1 every-consumer >= 12 M msg/s: %.2f M msg/s at the producer, %.2f M "
				  "at the consumer",
		       m / 1e6, median(v, n) / 1e6);
	}
#undef TARGET
	return misses;
}

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_fanout [OPTIONS]\n"
		"Benchmark the framering ring's fan-out, with one process per side (fork): 1080p BGR24 zero-copy\n"
		"to K = 1, 2, 4 lossless (EVERY) consumers, the cost of a slow live (LATEST) consumer that holds\n"
		"each frame, and 64 B copy mode. Prints medians, ranges, ratios and a PASS/MISS line per target.\n"
		"\n"
		"  --quick            a few seconds (CI smoke): 1 repetition of 0.2 s per case, 0.05 s warm-up,\n"
		"                     no retries\n"
		"  --reps N           repetitions per case, interleaved (default 5, at most %d)\n"
		"  --time SEC         timed seconds per repetition (default 1.5)\n"
		"  --warm SEC         untimed warm-up before it, at least two laps of the ring (default 0.3)\n"
		"  --cases LIST       comma list of k1,k2,k4,live,64 (default all; live = with and without)\n"
		"  --fixed-order      run the cases in the same order in every repetition (default: every\n"
		"                     second repetition in reverse order)\n"
		"  --cap BYTES        ring capacity for the K cases (power of two, default 32 MiB)\n"
		"  --cap-live BYTES   ring capacity for both slow-live cases (default 64 MiB: room for the\n"
		"                     held frame on top of what the K=1 case has)\n"
		"  --cap-small BYTES  ring capacity for 64 B copy mode (default 4 MiB)\n"
		"  --hold-ms MS       how long the live consumer holds each frame (default 50)\n"
		"  --noise-max PCT    retry a repetition during which other processes used more than PCT%% of\n"
		"                     one CPU (default 20; up to 3 attempts, the quietest is kept)\n"
		"  --retry-budget SEC at most this much time for such retries in all (default 60, --quick 0)\n"
		"  --inject-corruption  self-test: flip a bit in record 100 of every run; the consumers must\n"
		"                     report it and the program exit 1\n"
		"  --check-targets    exit 3 if a target is missed (default: targets never fail the run)\n"
		"  -h, --help         this text\n"
		"Exit status: 0 ok, 1 error or corrupt data, 2 bad option, 3 target missed (--check-targets), 130 "
		"interrupted.\n",
		MAX_REPS);
}

static int parse_num(const char *arg, double lo, double hi, double *out, const char *opt)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "bench_fanout: %s wants a number in %g..%g, not '%s'\n", opt, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_cap(const char *arg, uint64_t *out, const char *opt)
{
	double v;
	if (parse_num(arg, FR_RING_MIN_CAPACITY, (double)(1ull << 32), &v, opt) < 0)
		return -1;
	uint64_t c = (uint64_t)v;
	if ((double)c != v || (c & (c - 1)) != 0) {
		fprintf(stderr, "bench_fanout: %s must be a power of two, not '%s'\n", opt, arg);
		return -1;
	}
	*out = c;
	return 0;
}

static int parse_cases(const char *arg, bool *on)
{
	char buf[256];
	if (strlen(arg) >= sizeof(buf)) {
		fprintf(stderr, "bench_fanout: --cases list too long\n");
		return -1;
	}
	strcpy(buf, arg);
	for (int i = 0; i < NCASES; i++)
		on[i] = false;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		for (int i = 0; i < NCASES; i++) {
			if (strcmp(tok, cases[i].key) == 0) {
				on[i] = true;
				found = true;
			}
		}
		if (!found) {
			fprintf(stderr, "bench_fanout: unknown case '%s' (k1,k2,k4,live,64)\n", tok);
			return -1;
		}
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	double v;
	*o = (struct options){.reps = 5, .rep_s = 1.5, .warm_s = 0.3, .cap = 32u << 20, .cap_live = 64u << 20,
			      .cap_small = 4u << 20, .hold_us = 50000, .noise_max = 20, .retry_budget_s = 60};
	for (int i = 0; i < NCASES; i++)
		o->on[i] = true;
	/* --quick first, so that explicit options before or after it still win. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			o->reps = 1;
			o->rep_s = 0.2;
			o->warm_s = 0.05;
			o->retry_budget_s = 0;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			takes = false;
		} else if (strcmp(a, "--check-targets") == 0) {
			takes = false;
			o->check_targets = true;
		} else if (strcmp(a, "--fixed-order") == 0) {
			takes = false;
			o->fixed_order = true;
		} else if (strcmp(a, "--inject-corruption") == 0) {
			takes = false;
			corrupt_seq = 100;
		} else if (!val) {
			fprintf(stderr, "bench_fanout: unknown option or missing value: '%s' (see --help)\n", a);
			return -1;
		} else if (strcmp(a, "--reps") == 0) {
			if (parse_num(val, 1, MAX_REPS, &v, a) < 0)
				return -1;
			o->reps = (int)v;
		} else if (strcmp(a, "--time") == 0) {
			if (parse_num(val, 0.01, 60, &o->rep_s, a) < 0)
				return -1;
		} else if (strcmp(a, "--warm") == 0) {
			if (parse_num(val, 0, 60, &o->warm_s, a) < 0)
				return -1;
		} else if (strcmp(a, "--cases") == 0) {
			if (parse_cases(val, o->on) < 0)
				return -1;
		} else if (strcmp(a, "--cap") == 0) {
			if (parse_cap(val, &o->cap, a) < 0)
				return -1;
		} else if (strcmp(a, "--cap-live") == 0) {
			if (parse_cap(val, &o->cap_live, a) < 0)
				return -1;
		} else if (strcmp(a, "--cap-small") == 0) {
			if (parse_cap(val, &o->cap_small, a) < 0)
				return -1;
		} else if (strcmp(a, "--hold-ms") == 0) {
			if (parse_num(val, 0, 1000, &v, a) < 0)
				return -1;
			o->hold_us = (unsigned)(v * 1000);
		} else if (strcmp(a, "--noise-max") == 0) {
			if (parse_num(val, 0, 200, &o->noise_max, a) < 0)
				return -1;
		} else if (strcmp(a, "--retry-budget") == 0) {
			if (parse_num(val, 0, 3600, &o->retry_budget_s, a) < 0)
				return -1;
		} else {
			fprintf(stderr, "bench_fanout: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		if (takes)
			i++;
	}
	/* A record takes up to half the capacity (plus its alignment). */
	if ((o->on[C_K1] || o->on[C_K2] || o->on[C_K4]) && FRAME_1080P + 64 > o->cap / 2) {
		fprintf(stderr, "bench_fanout: --cap %" PRIu64 " is too small for a 1080p frame (at least 16 MiB)\n",
			o->cap);
		return -1;
	}
	if (o->on[C_LIVE] && FRAME_1080P + 64 > o->cap_live / 2) {
		fprintf(stderr, "bench_fanout: --cap-live %" PRIu64 " is too small for a 1080p frame (at least 16 MiB)\n",
			o->cap_live);
		return -1;
	}
	if (o->on[C_COPY64] && o->cap_small < 4096) {
		fprintf(stderr, "bench_fanout: --cap-small too small\n");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	struct options o;
	struct results *R = NULL;
	struct shared *sh = MAP_FAILED;
	int ret = 1;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	is_tty = isatty(STDERR_FILENO);
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	R = calloc(1, sizeof(*R));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!R || sh == MAP_FAILED) {
		fprintf(stderr, "bench_fanout: out of memory\n");
		goto end;
	}
	memset(sh, 0, sizeof(*sh));
	sh->parent = getpid();

	printf("bench_fanout: %d repetition(s), %.2f s timed per case, %ld online CPUs, nothing pinned, one process "
	       "per side (fork);\ncases interleaved, %s\n",
	       o.reps, o.rep_s, sysconf(_SC_NPROCESSORS_ONLN),
	       o.fixed_order ? "in the same order in every repetition" : "every second repetition in reverse order");
	fflush(stdout);
	uint64_t t_begin = now_ns(), busy0 = 0, steal0 = 0, own0 = own_cpu();
	bool have_cpu = machine_cpu(&busy0, &steal0) == 0;
	for (int rep = 0; rep < o.reps && !stop_requested; rep++) {
		R->line_rt[rep] = line_round_trip_ns();
		for (int ci = 0; ci < NCASES && !stop_requested; ci++) {
			int cid = o.fixed_order || rep % 2 == 0 ? ci : NCASES - 1 - ci;
			if (!o.on[cid])
				continue;
			struct run_result res, best = {0};
			double best_noise = 1e9;
			for (int attempt = 0; attempt < 3 && !stop_requested; attempt++) {
				struct probe pb;
				uint64_t ta = now_ns();
				if (attempt) {
					R->retries++;
					wait_quiet(&o);
				}
				progress("rep %d/%d  %s%s", rep + 1, o.reps, cases[cid].label,
					 attempt ? " (retry: noisy)" : "");
				probe_start(&pb);
				int rc = run_case(sh, &o, (enum case_id)cid, &res);
				if (rc > 0 || stop_requested)
					break;
				if (rc < 0) {
					progress("%s", "");
					fprintf(stderr, "bench_fanout: %s: %s\n", cases[cid].label, sh->errmsg);
					goto end;
				}
				res.noise = probe_other(&pb);
				if (attempt)
					R->retry_s += (double)(now_ns() - ta) / 1e9;
				if (res.noise < best_noise) {
					best = res;
					best_noise = res.noise;
				}
				if (res.noise < o.noise_max || R->retry_s >= o.retry_budget_s)
					break;
			}
			R->run[cid][rep] = best;
		}
		if (!stop_requested)
			R->reps_done = rep + 1;
	}
	R->line_rt[R->reps_done] = line_round_trip_ns();
	progress("%s", "");
	if (stop_requested) {
		fprintf(stderr, "bench_fanout: interrupted\n");
		ret = 130;
		goto end;
	}
	print_results(&o, R);
	int misses = print_targets(&o, R);
	double wall = (double)(now_ns() - t_begin);
	printf("\ntotal time %.1f s (%d noisy repetition(s) retried, %.1f s)", wall / 1e9, R->retries, R->retry_s);
	uint64_t busy1, steal1;
	if (have_cpu && machine_cpu(&busy1, &steal1) == 0) {
		double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
		double other = ((double)(busy1 - busy0) - (double)(own_cpu() - own0)) / (wall * ncpu) * 100.0;
		printf("; other processes used %.0f%% of the %.0f CPUs meanwhile, hypervisor steal %.1f%%%s",
		       other < 0 ? 0 : other, ncpu, (double)(steal1 - steal0) / (wall * ncpu) * 100.0,
		       other > 10 ? " (NOISY: figures are unreliable)" : "");
	}
	printf("\n");
	ret = misses && o.check_targets ? 3 : 0;
end:
	fflush(stdout);
	free(R);
	if (sh != MAP_FAILED)
		munmap(sh, sizeof(*sh));
	return ret;
}
