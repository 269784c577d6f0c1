"""errors - the exceptions of the framering package, one per ring error that callers handle differently.

Every exception carries the negative errno value the C library returned
(``err.code``, e.g. ``-errno.ENOENT``) and the library's own message
(fr_ring_strerror) in its text: ``str(err) == err.message``.

Every error the package itself raises is a FrameringError; where a builtin
already says what happened, the class is that builtin too, so code that
catches the builtin keeps working (as numpy's ``AxisError(ValueError, IndexError)``):
``Timeout`` is a ``TimeoutError`` and ``InvalidArgument`` a ``ValueError``.
Exceptions pickle (multiprocessing, concurrent.futures) with code and message.
"""

from __future__ import annotations

import errno as _errno


class FrameringError(Exception):
    """Base class: any failure reported by libframering-ring.

    Attributes:
        code: the negative errno value returned by the C call (0 if none).
        message: the human-readable text (includes fr_ring_strerror()).
    """

    def __init__(self, code: int, message: str) -> None:
        # One argument: str(err) is the message, also for the OSError subclasses
        # (OSError(code, message) would print "[Errno N] message").
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple:
        # BaseException pickles self.args, (message,), which __init__ cannot take.
        return type(self), (self.code, self.message), self.__dict__


class InvalidArgument(FrameringError, ValueError):
    """An argument the library or this package refuses (-EINVAL, -ENAMETOOLONG,
    -EMSGSIZE): a bad ring name, an unknown format, a frame size out of range
    or too large for the ring, on_full neither 'block' nor 'drop'; also
    ``frame.array`` asked of a frame that cannot be one (H*3/2, W) view. Also a
    ValueError."""


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
    without a reader: nobody will make room until another consumer attaches. (If the
    last consumer died instead, the producer gets PeerDied, likewise until then.)"""


class PeerDied(FrameringError):
    """The other side's process died (-EOWNERDEAD); for a consumer, after every
    record the producer committed has been read."""


class Timeout(FrameringError, TimeoutError):
    """A wait ran out (-ETIMEDOUT), or a non-blocking call could not proceed (-EAGAIN).
    Also a TimeoutError (an OSError), whose ``errno`` is ETIMEDOUT or EAGAIN."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.errno = -code  # strerror stays None, so str(err) stays the message


class EndOfStream(FrameringError):
    """The producer marked end of stream (or closed) and every frame before it
    was consumed (-ENODATA). Iterating a Consumer simply stops here."""


class ProducerFailed(FrameringError):
    """The producer ended the stream on an error (-EREMOTEIO, fr_ring_mark_eos_error),
    after every frame before it was consumed: the stream is not complete.
    Iterating a Consumer raises it (a clean end just stops the iteration).

    Attributes:
        reason: the producer's one-line message (as it wrote it; may be empty).
        error: the negative errno value the producer gave (e.g. -errno.EIO).
    """

    def __init__(self, code: int, message: str, reason: str = "", error: int = 0) -> None:
        super().__init__(code, message)
        self.reason = reason
        self.error = error

    def __reduce__(self) -> tuple:
        return type(self), (self.code, self.message, self.reason, self.error), self.__dict__


class RingFull(FrameringError):
    """The ring was full under on_full='drop': the frame was dropped and counted (-ENOBUFS)."""


class FrameReleased(FrameringError):
    """A released frame's pixels were asked for (frame.array/planes after release).
    Keep data past release with frame.copy()."""


class RingClosed(FrameringError):
    """The Consumer/Producer was closed (also from another thread while a call waited:
    -ECANCELED); no further reads or writes are possible."""


_BY_ERRNO = {
    _errno.EINVAL: InvalidArgument,
    _errno.ENAMETOOLONG: InvalidArgument,
    _errno.EMSGSIZE: InvalidArgument,
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
    _errno.EREMOTEIO: ProducerFailed,
    _errno.ENOBUFS: RingFull,
}


def error_class(code: int) -> type:
    """The exception class for a negative errno value from the library."""
    return _BY_ERRNO.get(-code, FrameringError)
