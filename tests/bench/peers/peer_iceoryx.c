/* peer_iceoryx.c - the iceoryx peer of bench_peers (C binding, loan/publish and take/release) and the RouDi daemon it needs, started and stopped here. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_peers.h"

#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/wait_set.h"

#define SERVICE "bench_peers"

/* ------------------------------------------------------------ RouDi */

/* Mempools: 8 chunks that hold a 1080p BGR frame (6 MiB each), and 1024 small
 * ones for the 64 B messages. The frame subscriber's queue is 4, so at most
 * 4 queued + 1 held by the subscriber + 1 loaned are in use: loans never run dry
 * for lack of chunks, the publisher waits for the queue instead. */
static const char roudi_config[] = "[general]\n"
				   "version = 1\n"
				   "\n"
				   "[[segment]]\n"
				   "\n"
				   "[[segment.mempool]]\n"
				   "size = 128\n"
				   "count = 1024\n"
				   "\n"
				   "[[segment.mempool]]\n"
				   "size = 6291456\n"
				   "count = 8\n";

#define ROUDI_LOCK "/tmp/iox-unique-roudi.lock"
#define ROUDI_READY "RouDi is ready for clients"

static pid_t roudi_pid = -1;
static char roudi_log[512];

static void last_log_line(char *out, size_t n)
{
	char line[512];
	out[0] = '\0';
	FILE *f = fopen(roudi_log, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n') {
			size_t l = strlen(line) < n ? strlen(line) : n - 1;
			memcpy(out, line, l);
			out[l] = '\0';
		}
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static bool log_says_ready(void)
{
	char line[512];
	bool ready = false;
	FILE *f = fopen(roudi_log, "r");
	if (!f)
		return false;
	while (!ready && fgets(line, sizeof(line), f))
		ready = strstr(line, ROUDI_READY) != NULL;
	fclose(f);
	return ready;
}

int roudi_start(const char *exe, const char *dir, char *why, size_t n)
{
	char cfg[512], last[256];
	/* RouDi holds a flock on this file while it runs: another one must be left alone
	 * (and would not have our mempools). */
	int lf = open(ROUDI_LOCK, O_RDONLY | O_CLOEXEC);
	if (lf >= 0) {
		int busy = flock(lf, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(lf);
		if (busy) {
			snprintf(why, n, "a RouDi that bench_peers did not start is running (it holds %s); left alone",
				 ROUDI_LOCK);
			return -1;
		}
	}
	if (access(exe, X_OK) < 0) {
		snprintf(why, n, "no RouDi daemon at %s (Debian package iceoryx; --roudi PATH)", exe);
		return -1;
	}
	snprintf(cfg, sizeof(cfg), "%s/roudi.toml", dir);
	snprintf(roudi_log, sizeof(roudi_log), "%s/roudi.log", dir);
	FILE *f = fopen(cfg, "w");
	if (!f || fputs(roudi_config, f) < 0 || fclose(f) != 0) {
		snprintf(why, n, "cannot write %s: %s", cfg, strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, n, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* Its own process group: a Ctrl-C at the terminal reaches the driver,
		 * which stops the clients first and RouDi last. If the driver dies,
		 * RouDi is told to stop. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		int fd = open(roudi_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		execl(exe, exe, "-c", cfg, "-l", "info", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	roudi_pid = pid;
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	while (!log_says_ready()) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			roudi_pid = -1;
			last_log_line(last, sizeof(last));
			snprintf(why, n, "iox-roudi exited (status 0x%x) before it was ready: %s", status,
				 last[0] ? last : "(no output)");
			return -1;
		}
		if (now_ns() > deadline) {
			roudi_stop();
			snprintf(why, n, "iox-roudi was not ready within %d s (log: %s)",
				 (int)(SIDE_TIMEOUT_NS / 1000000000u), roudi_log);
			return -1;
		}
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

bool roudi_alive(void)
{
	int status;
	if (roudi_pid <= 0)
		return false;
	if (waitpid(roudi_pid, &status, WNOHANG) == roudi_pid) {
		roudi_pid = -1;
		return false;
	}
	return true;
}

uint64_t roudi_cpu_ns(void)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	if (roudi_pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)roudi_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	const char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (uint64_t)((double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK));
}

void roudi_stop(void)
{
	int status = 0;
	bool clean = false;
	if (roudi_pid <= 0)
		return;
	kill(roudi_pid, SIGTERM);
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	for (;;) {
		pid_t w = waitpid(roudi_pid, &status, WNOHANG);
		if (w == roudi_pid || (w < 0 && errno != EINTR)) {
			clean = w == roudi_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
			break;
		}
		if (now_ns() > deadline) {
			kill(roudi_pid, SIGKILL);
			waitpid(roudi_pid, &status, 0);
			break;
		}
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	roudi_pid = -1;
	if (!clean) {
		/* It did not clean up after itself: remove what iceoryx 2.0 names. No
		 * other RouDi ran (roudi_start checked), so these are ours. */
		char path[300];
		struct passwd *pw = getpwuid(geteuid());
		unlink("/dev/shm/iceoryx_mgmt");
		if (pw) {
			snprintf(path, sizeof(path), "/dev/shm/%s", pw->pw_name);
			unlink(path);
		}
		unlink("/tmp/roudi");
		unlink("/tmp/roudi.lock");
		unlink(ROUDI_LOCK);
	}
}

/* ------------------------------------------------------------ publisher / subscriber */

struct iox_state {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_ws_storage_t ws_storage;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	void *chunk;
	const void *taken;
	uint64_t published;
};

static struct iox_state *iox_begin(struct endpoint *ep, char role)
{
	char name[64];
	struct iox_state *st = calloc(1, sizeof(*st));
	if (!st) {
		side_fail(ep->side, "out of memory");
		return NULL;
	}
	ep->priv = st;
	iox_set_loglevel(Iceoryx_LogLevel_Error);
	/* The runtime's name is also its socket, /tmp/NAME (removed by cleanup if killed). */
	snprintf(name, sizeof(name), "bp-%c-%d", role, (int)getpid());
	iox_runtime_init(name);
	return st;
}

static int iox_prod_open(struct endpoint *ep)
{
	struct iox_state *st = iox_begin(ep, 'p');
	if (!st)
		return -1;
	iox_pub_options_t o;
	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER; /* lossless, like the others */
	st->pub = iox_pub_init(&st->pub_storage, SERVICE, ep->ctl->instance, ep->ctl->name, &o);
	return 0;
}

static int iox_prod_connected(struct endpoint *ep)
{
	struct iox_state *st = ep->priv;
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	while (!iox_pub_has_subscribers(st->pub)) {
		if (now_ns() > deadline) {
			side_fail(ep->side, "the publisher saw no subscriber within %d s",
				  (int)(SIDE_TIMEOUT_NS / 1000000000u));
			return -1;
		}
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int iox_prod_get(struct endpoint *ep, void **buf)
{
	struct iox_state *st = ep->priv;
	uint64_t deadline = 0;
	for (;;) {
		enum iox_AllocationResult r =
			iox_pub_loan_aligned_chunk(st->pub, &st->chunk, (uint32_t)ep->ctl->msg_size, 64);
		if (r == AllocationResult_SUCCESS) {
			*buf = st->chunk;
			return 0;
		}
		if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS) {
			side_fail(ep->side, "iox_pub_loan_aligned_chunk: iox_AllocationResult %d", (int)r);
			return -1;
		}
		/* Every chunk is in use: wait for the subscriber to release one. */
		ep->side->retries++;
		if (!deadline)
			deadline = now_ns() + SIDE_TIMEOUT_NS;
		else if (now_ns() > deadline) {
			side_fail(ep->side, "no free chunk for %d s", (int)(SIDE_TIMEOUT_NS / 1000000000u));
			return -1;
		}
		sched_yield();
	}
}

static int iox_prod_put(struct endpoint *ep, void *buf)
{
	struct iox_state *st = ep->priv;
	/* Blocks while the subscriber's queue is full (WAIT_FOR_CONSUMER + BLOCK_PRODUCER). */
	iox_pub_publish_chunk(st->pub, buf);
	st->chunk = NULL;
	/* RouDi drops an application that stops responding (about 1.5 s): then the
	 * publisher publishes to nobody. Look now and then. */
	if ((++st->published & 1023) == 0 || ep->ctl->msg_size == FRAME_BYTES) {
		if (!iox_pub_has_subscribers(st->pub)) {
			side_fail(ep->side, "the subscriber is gone (RouDi removed it, or it died)");
			return -1;
		}
	}
	return 0;
}

static void iox_prod_close(struct endpoint *ep)
{
	struct iox_state *st = ep->priv;
	if (!st)
		return;
	if (st->pub) {
		if (st->chunk)
			iox_pub_release_chunk(st->pub, st->chunk);
		iox_pub_deinit(st->pub);
	}
	free(st);
	ep->priv = NULL;
	/* The runtime unregisters from RouDi when the process exits (exit(), not _exit()). */
}

static int iox_cons_open(struct endpoint *ep)
{
	struct iox_state *st = iox_begin(ep, 'c');
	if (!st)
		return -1;
	iox_sub_options_t o;
	iox_sub_options_init(&o);
	o.queueCapacity = ep->cd->queue;
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	st->sub = iox_sub_init(&st->sub_storage, SERVICE, ep->ctl->instance, ep->ctl->name, &o);
	st->ws = iox_ws_init(&st->ws_storage);
	enum iox_WaitSetResult wr = iox_ws_attach_subscriber_state(st->ws, st->sub, SubscriberState_HAS_DATA, 0, NULL);
	if (wr != WaitSetResult_SUCCESS) {
		side_fail(ep->side, "iox_ws_attach_subscriber_state: iox_WaitSetResult %d", (int)wr);
		return -1;
	}
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	while (iox_sub_get_subscription_state(st->sub) != SubscribeState_SUBSCRIBED) {
		if (now_ns() > deadline) {
			side_fail(ep->side, "not subscribed within %d s (state %d)", (int)(SIDE_TIMEOUT_NS / 1000000000u),
				  (int)iox_sub_get_subscription_state(st->sub));
			return -1;
		}
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int iox_cons_get(struct endpoint *ep, const void **buf, size_t *len)
{
	struct iox_state *st = ep->priv;
	uint64_t deadline = 0;
	for (;;) {
		enum iox_ChunkReceiveResult r = iox_sub_take_chunk(st->sub, &st->taken);
		if (r == ChunkReceiveResult_SUCCESS) {
			*buf = st->taken;
			*len = ep->ctl->msg_size; /* the C binding does not tell the payload size */
			return 0;
		}
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			side_fail(ep->side, "iox_sub_take_chunk: iox_ChunkReceiveResult %d", (int)r);
			return -1;
		}
		if (!deadline)
			deadline = now_ns() + SIDE_TIMEOUT_NS;
		else if (now_ns() > deadline) {
			side_fail(ep->side, "no chunk for %d s", (int)(SIDE_TIMEOUT_NS / 1000000000u));
			return -1;
		}
		iox_notification_info_t info[2];
		uint64_t missed = 0;
		struct timespec to = {0, 200000000};
		iox_ws_timed_wait(st->ws, to, info, 2, &missed);
	}
}

static int iox_cons_put(struct endpoint *ep)
{
	struct iox_state *st = ep->priv;
	iox_sub_release_chunk(st->sub, st->taken);
	st->taken = NULL;
	return 0;
}

static void iox_cons_close(struct endpoint *ep)
{
	struct iox_state *st = ep->priv;
	if (!st)
		return;
	if (st->ws) {
		if (st->sub)
			iox_ws_detach_subscriber_state(st->ws, st->sub, SubscriberState_HAS_DATA);
		iox_ws_deinit(st->ws);
	}
	if (st->sub) {
		if (st->taken)
			iox_sub_release_chunk(st->sub, st->taken);
		iox_sub_deinit(st->sub);
	}
	free(st);
	ep->priv = NULL;
}

static void iox_cleanup(struct ctl *c, const struct case_def *cd, pid_t prod, pid_t cons)
{
	(void)c;
	(void)cd;
	/* A killed application leaves its socket and lock in /tmp (RouDi forgets it by itself). */
	char path[80];
	for (int i = 0; i < 2; i++) {
		pid_t pid = i ? cons : prod;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/tmp/bp-%c-%d", i ? 'c' : 'p', (int)pid);
		unlink(path);
		snprintf(path, sizeof(path), "/tmp/bp-%c-%d.lock", i ? 'c' : 'p', (int)pid);
		unlink(path);
	}
}

const struct peer_ops iceoryx_ops = {
	.prod_open = iox_prod_open,
	.prod_connected = iox_prod_connected,
	.prod_get = iox_prod_get,
	.prod_put = iox_prod_put,
	.prod_close = iox_prod_close,
	.cons_open = iox_cons_open,
	.cons_get = iox_cons_get,
	.cons_put = iox_cons_put,
	.cons_close = iox_cons_close,
	.cleanup = iox_cleanup,
};
