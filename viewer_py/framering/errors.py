"""errors - the exceptions of the framering package, one per ring error that callers handle differently.

Every exception carries the negative errno value the C library returned
(``err.code``, e.g. ``-errno.ENOENT``) and the library's own message
(ring_strerror) in its text.
"""

from __future__ import annotations

import errno as _errno


class FrameringError(Exception):
    """Base class: any failure reported by libframering-ring.

    Attributes:
        code: the negative errno value returned by the C call (0 if none).
        message: the human-readable text (includes ring_strerror()).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RingNotFound(FrameringError):
    """No ring of that name exists (-ENOENT), or it never appeared within the timeout."""


class RingBusy(FrameringError):
    """The ring already has a live consumer, or a live producer holds the name (-EBUSY)."""


class ForeignRing(FrameringError):
    """The name is not a framering ring (another file, a FIFO, a directory), a ring
    or frames of another format version, or a corrupt ring (-EEXIST, -EPROTO,
    -EBADMSG); or (RingShrunk) the peer shrank the segment under this mapping.
    A reader cannot go on with a corrupt ring; a frame of another version was
    skipped, but so will be every frame that producer sends."""


class RingShrunk(ForeignRing):
    """The peer shrank the segment under this process's mapping (-EFAULT): views of
    it now read zeros, and every call on the ring fails the same way."""


class InvalidFrame(FrameringError):
    """A record that is not a valid frame was skipped (-ENOMSG); the next call goes on
    with the records after it. Iterating a Consumer skips such records and counts them
    in ``consumer.invalid_frames``."""


class ConsumerDetached(FrameringError):
    """The producer waited for room, but the consumer detached (-ENOTCONN), as a pipe
    without a reader: nobody will make room until another consumer attaches."""


class PeerDied(FrameringError):
    """The other side's process died (-EOWNERDEAD); for a consumer, after every
    record the producer committed has been read."""


class Timeout(FrameringError):
    """A wait ran out (-ETIMEDOUT), or a non-blocking call could not proceed (-EAGAIN)."""


class EndOfStream(FrameringError):
    """The producer marked end of stream (or closed) and every frame before it
    was consumed (-ENODATA). Iterating a Consumer simply stops here."""


class RingFull(FrameringError):
    """The ring was full under on_full='drop': the frame was dropped and counted (-ENOBUFS)."""


class FrameReleased(FrameringError):
    """A released frame's pixels were asked for (frame.array/planes after release).
    Keep data past release with frame.copy()."""


class RingClosed(FrameringError):
    """The Consumer/Producer was closed (also from another thread while a call waited:
    -ECANCELED); no further reads or writes are possible."""


_BY_ERRNO = {
    _errno.ENOENT: RingNotFound,
    _errno.EBUSY: RingBusy,
    _errno.EEXIST: ForeignRing,
    _errno.EPROTO: ForeignRing,
    _errno.EBADMSG: ForeignRing,
    _errno.EFAULT: RingShrunk,
    _errno.ENOMSG: InvalidFrame,
    _errno.ENOTCONN: ConsumerDetached,
    _errno.ECANCELED: RingClosed,
    _errno.ESHUTDOWN: RingClosed,
    _errno.EOWNERDEAD: PeerDied,
    _errno.ETIMEDOUT: Timeout,
    _errno.EAGAIN: Timeout,
    _errno.ENODATA: EndOfStream,
    _errno.ENOBUFS: RingFull,
}


def error_class(code: int) -> type:
    """The exception class for a negative errno value from the library."""
    return _BY_ERRNO.get(-code, FrameringError)
