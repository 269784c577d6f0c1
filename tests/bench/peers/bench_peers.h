/* bench_peers.h - what the bench_peers driver and its transports (framering, pipe, socket, iceoryx, GStreamer) share. */
#ifndef BENCH_PEERS_H
#define BENCH_PEERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_W 1920u
#define FRAME_H 1080u
#define FRAME_BYTES ((size_t)FRAME_W * FRAME_H * 3u) /* 1080p BGR24: 6,220,800 */
#define SMALL_BYTES ((size_t)64)
/* Every message starts with these 64-bit words; the rest is memset to (seq & 0xff). */
enum { HDR_SEQ, HDR_T_CAPTURE, HDR_T_SENT, HDR_LAST, HDR_WORDS };

/* A side waits at most this long for its peer, for data or for space: a stuck
 * transport is an error, not a hang (and the driver's watchdog ends the rest). */
#define SIDE_TIMEOUT_NS ((uint64_t)10 * 1000000000u)

enum kind { KIND_THROUGHPUT, KIND_LATENCY, KIND_SMALL, KIND_COUNT };

/* What one side measured and, if it failed, why. */
struct side {
	uint64_t t_start_ns, t_end_ns; /* CLOCK_MONOTONIC: first message started / last one done */
	uint64_t cpu_ns;               /* getrusage(RUSAGE_SELF) of the process over that span */
	uint64_t count;
	uint64_t retries;              /* transport-specific: e.g. iceoryx loans that found no chunk */
	uint64_t sleeps;               /* the transport's own sleeps over that span (framering: futex waits) */
	uint64_t vcsw, ivcsw;          /* getrusage: voluntary / involuntary context switches over that span */
	int failed;
	char err[240];
};

/* One run: in a MAP_SHARED anonymous mapping made by the driver, seen by both children. */
struct ctl {
	/* set by the driver before the children start */
	int kind;
	size_t msg_size;
	uint64_t max_msgs;   /* the producer sends at most this many */
	uint64_t budget_ns;  /* ... and, in throughput runs, marks the one at this age the last */
	uint64_t period_ns;  /* latency runs: one message per period */
	uint64_t warmup;     /* messages sent and checked before the timed part, not counted */
	char name[160];      /* ring name, socket path or iceoryx event name */
	char instance[64];   /* iceoryx instance name */
	int fds[2];          /* pipe / socket pair made by the driver; -1 if none */
	pid_t driver_pid;
	/* handshake */
	_Atomic int prod_ready, cons_ready, cons_done;
	/* Progress, for the warm-up hand-over and the driver's "stuck" line: each on
	 * its own line, so that the two sides never share one in the timed loop. */
	_Alignas(128) _Atomic uint64_t sent;
	_Alignas(128) _Atomic uint64_t received;
	_Alignas(128) struct side prod;
	_Alignas(128) struct side cons;
	/* latency runs: per message, in microseconds (capture -> consumer, sent -> consumer) */
	_Alignas(128) double *lat_capture, *lat_handoff;
};

struct case_def;

/* One side of one run, in its child process. */
struct endpoint {
	struct ctl *ctl;
	const struct case_def *cd;
	struct side *side; /* &ctl->prod or &ctl->cons */
	void *priv;        /* the transport's state */
};

/* A transport: the driver calls these in the producer child (prod_*), the
 * consumer child (cons_*) or itself (setup, cleanup). Every int function
 * returns 0, or -1 after side_fail() said why. */
struct peer_ops {
	int (*setup)(struct ctl *c, const struct case_def *cd, char *why, size_t n); /* driver, before the fork */
	int (*prod_open)(struct endpoint *ep);      /* before the consumer starts */
	int (*prod_connected)(struct endpoint *ep); /* optional: wait until the transport sees the consumer */
	int (*prod_get)(struct endpoint *ep, void **buf); /* a buffer of msg_size bytes to fill */
	int (*prod_put)(struct endpoint *ep, void *buf);  /* send what was filled */
	void (*prod_close)(struct endpoint *ep);
	int (*cons_open)(struct endpoint *ep);
	int (*cons_get)(struct endpoint *ep, const void **buf, size_t *len); /* next message, in hand */
	int (*cons_put)(struct endpoint *ep);       /* done with it */
	void (*cons_close)(struct endpoint *ep);
	uint64_t (*sleeps)(struct endpoint *ep);    /* optional: this side's sleeps so far (--per-run) */
	/* driver, after the run: remove whatever a killed side left behind */
	void (*cleanup)(struct ctl *c, const struct case_def *cd, pid_t prod, pid_t cons);
};

enum group { GROUP_FRAMES, GROUP_SMALL };
enum { FR_WHOLE_RING = 1 }; /* framering's variant: fr_ring_set_hot_lap(FR_RING_HOT_LAP_OFF) */

struct case_def {
	const char *key;   /* --cases name */
	const char *label; /* table row */
	enum group group;
	const struct peer_ops *ops;
	uint64_t ring_capacity; /* framering: 0 = the library default */
	int variant;            /* GStreamer: GST_ZEROCOPY / GST_APPSRC_COPY; framering: 0 or FR_WHOLE_RING */
	unsigned queue;         /* iceoryx subscriber queue */
	char skip[256];         /* not empty: not measured, and why */
};

/* helpers (bench_peers.c) */
uint64_t now_ns(void);
void side_fail(struct side *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait (polling every 200 us) until *flag != 0, at most timeout_ns; 0 or -1. */
int wait_flag(_Atomic int *flag, uint64_t timeout_ns);

/* transports */
extern const struct peer_ops framering_ops, pipe_ops, socket_ops;
#ifdef BENCH_HAVE_ICEORYX
extern const struct peer_ops iceoryx_ops;
/* RouDi, started and stopped by the driver: 0, or -1 with the reason in WHY. */
int roudi_start(const char *exe, const char *dir, char *why, size_t n);
bool roudi_alive(void);
uint64_t roudi_cpu_ns(void); /* CPU time the daemon used so far */
void roudi_stop(void);
#endif
#ifdef BENCH_HAVE_GST
enum { GST_ZEROCOPY, GST_APPSRC_COPY };
extern const struct peer_ops gst_ops;
/* In a child: the GStreamer runtime version and whether the elements are there;
 * 0, or -1 with the reason in WHY. */
int gst_preflight(char *version, size_t vn, char *why, size_t n);
#endif

#endif /* BENCH_PEERS_H */
