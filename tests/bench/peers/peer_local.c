/* peer_local.c - bench_peers transports that need nothing outside this tree: framering (frames in place, 64 B copy mode), a pipe and a Unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_peers.h"
#include "frame.h"
#include "ring.h"

/* ------------------------------------------------------------ framering */

struct fr_state {
	fr_ring_t *r;
	struct fr_frame_header *hdr; /* producer: the frame reserved in the ring */
	uint8_t *buf;             /* copy mode: the private buffer */
};

static int fr_prod_open(struct endpoint *ep)
{
	struct fr_state *st = calloc(1, sizeof(*st));
	struct fr_ring_create_opts ro = {.capacity = ep->cd->ring_capacity, .on_full = FR_RING_FULL_BLOCK};
	if (!st) {
		side_fail(ep->side, "out of memory");
		return -1;
	}
	ep->priv = st;
	int rc = fr_ring_create(&st->r, ep->ctl->name, &ro);
	if (rc < 0) {
		side_fail(ep->side, "fr_ring_create(%s): %s", ep->ctl->name, fr_ring_strerror(rc));
		return -1;
	}
	/* The ring as 0.2 used it: every frame a lap's length after the last one. */
	if (ep->cd->variant == FR_WHOLE_RING)
		fr_ring_set_hot_lap(st->r, FR_RING_HOT_LAP_OFF, -1);
	if (ep->ctl->msg_size != FRAME_BYTES) {
		if (!(st->buf = malloc(ep->ctl->msg_size))) {
			side_fail(ep->side, "out of memory");
			return -1;
		}
		memset(st->buf, 0, ep->ctl->msg_size);
	}
	return 0;
}

static int fr_prod_get(struct endpoint *ep, void **buf)
{
	struct fr_state *st = ep->priv;
	if (st->buf) { /* copy mode: fill a private buffer, fr_ring_write() copies it */
		*buf = st->buf;
		return 0;
	}
	int rc = fr_frame_reserve(st->r, FR_FRAME_FMT_BGR24, FRAME_W, FRAME_H, &st->hdr, (int64_t)SIDE_TIMEOUT_NS);
	if (rc < 0) {
		side_fail(ep->side, "fr_frame_reserve: %s", fr_ring_strerror(rc));
		return -1;
	}
	*buf = (uint8_t *)st->hdr + st->hdr->plane[0].offset;
	return 0;
}

static int fr_prod_put(struct endpoint *ep, void *buf)
{
	struct fr_state *st = ep->priv;
	int rc = st->buf ? fr_ring_write(st->r, buf, ep->ctl->msg_size, (int64_t)SIDE_TIMEOUT_NS)
			 : fr_frame_commit(st->r, st->hdr);
	if (rc < 0) {
		side_fail(ep->side, "%s: %s", st->buf ? "fr_ring_write" : "fr_frame_commit", fr_ring_strerror(rc));
		return -1;
	}
	return 0;
}

static void fr_close(struct endpoint *ep)
{
	struct fr_state *st = ep->priv;
	if (!st)
		return;
	fr_ring_close(&st->r);
	free(st->buf);
	free(st);
	ep->priv = NULL;
}

static int fr_cons_open(struct endpoint *ep)
{
	struct fr_state *st = calloc(1, sizeof(*st));
	if (!st) {
		side_fail(ep->side, "out of memory");
		return -1;
	}
	ep->priv = st;
	int rc = fr_ring_open(&st->r, ep->ctl->name);
	if (rc < 0) {
		side_fail(ep->side, "fr_ring_open(%s): %s", ep->ctl->name, fr_ring_strerror(rc));
		return -1;
	}
	if (ep->ctl->msg_size != FRAME_BYTES) {
		if (!(st->buf = malloc(ep->ctl->msg_size))) {
			side_fail(ep->side, "out of memory");
			return -1;
		}
		memset(st->buf, 0, ep->ctl->msg_size);
	}
	return 0;
}

static int fr_cons_get(struct endpoint *ep, const void **buf, size_t *len)
{
	struct fr_state *st = ep->priv;
	if (st->buf) {
		ssize_t n = fr_ring_read(st->r, st->buf, ep->ctl->msg_size, (int64_t)SIDE_TIMEOUT_NS);
		if (n < 0) {
			side_fail(ep->side, "fr_ring_read: %s", fr_ring_strerror((int)n));
			return -1;
		}
		*buf = st->buf;
		*len = (size_t)n;
		return 0;
	}
	struct fr_frame_header h;
	const uint8_t *rec;
	int rc = fr_frame_peek(st->r, &h, &rec, 0, NULL, (int64_t)SIDE_TIMEOUT_NS);
	if (rc < 0) {
		side_fail(ep->side, "fr_frame_peek: %s", fr_ring_strerror(rc));
		return -1;
	}
	*buf = rec + h.plane[0].offset;
	*len = (size_t)h.image_size;
	return 0;
}

static int fr_cons_put(struct endpoint *ep)
{
	struct fr_state *st = ep->priv;
	if (st->buf)
		return 0;
	int rc = fr_ring_release(st->r);
	if (rc < 0) {
		side_fail(ep->side, "fr_ring_release: %s", fr_ring_strerror(rc));
		return -1;
	}
	return 0;
}

static uint64_t fr_sleeps(struct endpoint *ep)
{
	struct fr_state *st = ep->priv;
	struct fr_ring_stats s;
	fr_ring_get_stats(st->r, &s);
	return ep->side == &ep->ctl->prod ? s.producer_futex_waits : s.consumer_futex_waits;
}

static void fr_cleanup(struct ctl *c, const struct case_def *cd, pid_t prod, pid_t cons)
{
	(void)cd;
	(void)prod;
	(void)cons;
	/* A producer that was killed leaves its ring; only a dead producer's ring is removed. */
	fr_ring_unlink_stale(c->name);
}

/* Frames: fr_frame_reserve/fr_frame_commit and fr_frame_peek/fr_ring_release, in place;
 * 64 B messages (msg_size != FRAME_BYTES): fr_ring_write and fr_ring_read, copy mode. */
const struct peer_ops framering_ops = {
	.prod_open = fr_prod_open,
	.prod_get = fr_prod_get,
	.prod_put = fr_prod_put,
	.prod_close = fr_close,
	.cons_open = fr_cons_open,
	.cons_get = fr_cons_get,
	.cons_put = fr_cons_put,
	.cons_close = fr_close,
	.sleeps = fr_sleeps,
	.cleanup = fr_cleanup,
};

/* ------------------------------------------------------------ pipe and Unix socket */

/* The producer fills a private buffer and write()s all of it; the consumer
 * read()s the whole message into its private buffer. Blocking calls: a stuck
 * peer is ended by the driver's watchdog. */
struct fd_state {
	int fd;
	uint8_t *buf;
};

static int pipe_setup(struct ctl *c, const struct case_def *cd, char *why, size_t n)
{
	(void)cd;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(why, n, "pipe2: %s", strerror(errno));
		return -1;
	}
	/* As large as an unprivileged process may make it (fs.pipe-max-size, 1 MiB by default). */
	long max = 1 << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 1 << 20;
		fclose(f);
	}
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)max) < 0)
		fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	c->fds[0] = fds[0]; /* read end */
	c->fds[1] = fds[1]; /* write end */
	return 0;
}

static int socket_setup(struct ctl *c, const struct case_def *cd, char *why, size_t n)
{
	(void)cd;
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		snprintf(why, n, "socketpair: %s", strerror(errno));
		return -1;
	}
	c->fds[0] = fds[0]; /* consumer */
	c->fds[1] = fds[1]; /* producer */
	return 0;
}

static int fd_open(struct endpoint *ep, bool producer)
{
	struct fd_state *st = calloc(1, sizeof(*st));
	if (!st || !(st->buf = malloc(ep->ctl->msg_size))) {
		free(st);
		side_fail(ep->side, "out of memory");
		return -1;
	}
	memset(st->buf, 0, ep->ctl->msg_size); /* no page fault in the timed loop */
	ep->priv = st;
	st->fd = ep->ctl->fds[producer ? 1 : 0];
	close(ep->ctl->fds[producer ? 0 : 1]);
	return 0;
}

static int fd_prod_open(struct endpoint *ep)
{
	return fd_open(ep, true);
}

static int fd_cons_open(struct endpoint *ep)
{
	return fd_open(ep, false);
}

static int fd_prod_get(struct endpoint *ep, void **buf)
{
	*buf = ((struct fd_state *)ep->priv)->buf;
	return 0;
}

static int fd_prod_put(struct endpoint *ep, void *buf)
{
	struct fd_state *st = ep->priv;
	const uint8_t *p = buf;
	size_t left = ep->ctl->msg_size;
	while (left) {
		ssize_t n = write(st->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			side_fail(ep->side, "write: %s", n < 0 ? strerror(errno) : "wrote nothing");
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

static int fd_cons_get(struct endpoint *ep, const void **buf, size_t *len)
{
	struct fd_state *st = ep->priv;
	size_t got = 0;
	while (got < ep->ctl->msg_size) {
		ssize_t n = read(st->fd, st->buf + got, ep->ctl->msg_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			side_fail(ep->side, "read: %s", n < 0 ? strerror(errno) : "end of file (the producer is gone)");
			return -1;
		}
		got += (size_t)n;
	}
	*buf = st->buf;
	*len = got;
	return 0;
}

static int fd_cons_put(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

static void fd_close(struct endpoint *ep)
{
	struct fd_state *st = ep->priv;
	if (!st)
		return;
	close(st->fd);
	free(st->buf);
	free(st);
	ep->priv = NULL;
}

const struct peer_ops pipe_ops = {
	.setup = pipe_setup,
	.prod_open = fd_prod_open,
	.prod_get = fd_prod_get,
	.prod_put = fd_prod_put,
	.prod_close = fd_close,
	.cons_open = fd_cons_open,
	.cons_get = fd_cons_get,
	.cons_put = fd_cons_put,
	.cons_close = fd_close,
};

const struct peer_ops socket_ops = {
	.setup = socket_setup,
	.prod_open = fd_prod_open,
	.prod_get = fd_prod_get,
	.prod_put = fd_prod_put,
	.prod_close = fd_close,
	.cons_open = fd_cons_open,
	.cons_get = fd_cons_get,
	.cons_put = fd_cons_put,
	.cons_close = fd_close,
};
