/* errors.c - fr_ring_strerror: what each negative error code of the library means. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "ring.h"
#include "ring_internal.h"

RING_API const char *fr_ring_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EINVAL: return "invalid argument";
	case -ENAMETOOLONG: return "ring name too long";
	case -ENOENT: return "no such ring";
	case -EBUSY: return "ring is in use by a live process";
	case -EEXIST: return "name is taken by a segment that is not a framering ring";
	case -EPROTO: return "ring or frame of another format version";
	case -EBADMSG: return "not a framering ring, or the ring is corrupt";
	case -EMSGSIZE: return "record too large";
	case -EAGAIN: return "would block";
	case -ETIMEDOUT: return "timed out";
	case -ENOBUFS: return "ring full: record dropped";
	case -ENODATA: return "end of stream";
	case -ESTALE: return "the ring was replaced by a new one under its name (attach again)";
	case -EREMOTEIO: return "the producer failed and ended the stream (fr_ring_end_reason says why)";
	case -EOWNERDEAD: return "peer process died";
	case -EALREADY: return "a reservation or peeked record is outstanding";
	case -EPERM: return "operation not allowed on this side of the ring";
	case -EPIPE: return "end of stream already marked";
	case -ENOTCONN: return "the consumer detached";
	case -EINTR: return "interrupted";
	case -EFAULT: return "the peer shrank the ring segment: its memory now reads as zeros";
	case -ENOSPC: return "not enough shared memory (/dev/shm) for the ring";
	case -ECANCELED: return "the wait was interrupted (fr_ring_interrupt)";
	case -ESHUTDOWN: return "this side has detached from the ring";
	case -ENOMSG: return "a record that is not a valid frame was skipped";
	case -EFBIG: return "the ring is larger than this (32-bit) process can map";
	/* Any int may come here: -INT_MIN would overflow, and is no errno anyway. */
	default: return err < 0 && err != INT_MIN ? strerror(-err) : "unknown error";
	}
}
