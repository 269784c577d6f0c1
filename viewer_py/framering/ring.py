"""ring - Consumer, Producer and Frame: numpy views of video frames that live in a framering ring.

Zero copy: ``frame.array`` is a numpy array whose memory *is* the frame
record inside the shared-memory ring (no byte is copied); ``out.array`` of a
reserved frame is where the producer writes the pixels in place.

Lifetime rule (why a view can never crash the interpreter): the C handle
(``fr_ring_t*``) and its mapping belong to a small owner object. Every numpy view
keeps that owner alive through its ``.base`` chain, and so does every call
that is inside the C library; the owner calls ``fr_ring_close()`` (which
unmaps) only when the last reference is gone. ``close()`` detaches at once
(``fr_ring_detach()``: the current frame is released, the consumer slot is
free for the next consumer, a producer's name is removed), but the unmap
waits until no view and no call needs the memory. At interpreter exit
nothing is unmapped at all: rings still open are detached (end of stream
marked, names removed) and their memory stays mapped until the process is
gone, so a daemon thread or an atexit handler reading a view never faults.

Threads (the rules, tested in tests/python/test_threads.py):

* A Consumer or Producer may be shared between threads. Its calls are
  serialized by a lock it holds; a waiting call holds it while it waits, so
  a second reader waits for the first. ``stats``, ``peer_alive``,
  ``mapping`` and ``meta`` do not wait for that lock.
* ``close()`` may be called from any thread at any time (also while another
  thread waits in ``next_frame()``/``latest()``/``reserve_frame()``): it
  wakes that call at once (``fr_ring_interrupt()``), which then raises
  RingClosed; nothing is freed while a call is inside the C library.
* Only one frame is held per Consumer: asking for the next one (from any
  thread) releases the current one. Views of a released frame stay safe to
  read (never a crash) but may show newer data; keep pixels with
  ``frame.copy()``. Frames and OutFrames themselves are not meant to be
  used from two threads at once.

What a view shows after its frame was released: the ring reuses the space,
so an old view shows whatever the producer wrote there later -- the stale
frame or parts of a newer one. It never faults. Call ``frame.copy()`` (or
``np.array(frame.array)``) to keep pixels past the release. Consumer views
are read-only (``arr.flags.writeable`` is False).

Waiting: blocking calls run in the C library (futex waits) with the GIL
released (ctypes.CDLL), in slices of at most ``WAIT_SLICE`` seconds, so other
Python threads keep running and Ctrl-C (KeyboardInterrupt) is honoured
within a slice even during a long wait.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import functools
import math
import operator
import os
import threading
import time
import weakref
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import AsyncIterator, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import _lib
from .color import Colorimetry, yuv420_to_bgr
from ._lib import (
    FRAME_FLAG_DISCONTINUITY,
    FRAME_FLAG_EOS,
    FRAME_FLAG_KEY,
    FrameHeader,
    PTS_UNKNOWN,
)
from .errors import (
    EndOfStream,
    FrameReleased,
    FrameringError,
    InvalidArgument,
    InvalidFrame,
    ProducerFailed,
    RingClosed,
    RingNotFound,
    Timeout,
    error_class,
)

#: Longest single wait inside the C library, in seconds. Between slices
#: Python runs its signal handlers (Ctrl-C) and re-checks the deadline.
WAIT_SLICE = 0.1

_SLICE_NS = int(WAIT_SLICE * 1e9)

#: Producer.set_hot_lap(HOT_LAP_OFF): the whole ring in turn, as before 0.3.
HOT_LAP_OFF = (1 << 64) - 1

Seconds = Optional[float]


# ---------------------------------------------------------------- helpers

def _slice_ns(deadline: Optional[float]) -> int:
    """The next wait inside the C library: one slice, or what is left until DEADLINE
    (time.monotonic(); None: no deadline). Between slices Python runs signal handlers."""
    if deadline is None:
        return _SLICE_NS
    # Bounded before int(): a deadline of +-inf (timeout=math.inf) has no integer.
    return int(max(0.0, min(_SLICE_NS, (deadline - time.monotonic()) * 1e9)))


def _raise(code: int, what: str) -> None:
    """Raise the exception for negative errno CODE, with the library's message."""
    msg = _lib.lib().fr_ring_strerror(code)
    text = msg.decode() if msg else f"error {code}"
    raise error_class(code)(code, f"{what}: {text}")


class _WaitCancelled(Exception):
    """A wait given up by its caller (an asyncio task cancelled meanwhile); nothing is held."""


class _WaitTicket:
    """The fate of one wait run in a worker thread for an asyncio caller, decided once
    under a lock: the worker *delivers* the frame it peeked, or the caller *cancels*
    first (then the worker gives the frame back unread, fr_ring_unpeek). See aio.py."""

    __slots__ = ("_lock", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "waiting"

    def _settle(self, state: str) -> bool:
        with self._lock:
            if self._state != "waiting":
                return False
            self._state = state
            return True

    def deliver(self) -> bool:
        """The worker has a frame: True if the caller still wants it (from now on it is theirs)."""
        return self._settle("delivered")

    def cancel(self) -> bool:
        """The caller gives up: True if no frame was delivered (the worker will keep none)."""
        return self._settle("cancelled")

    @property
    def cancelled(self) -> bool:
        """Whether cancel() won."""
        return self._state == "cancelled"


def _wait_sliced(call, deadline: Optional[float], handle: Optional["_Handle"] = None,
                 closed_msg: str = "", ticket: Optional[_WaitTicket] = None) -> int:
    """Run CALL(slice_ns) until it returns something other than a wait that ran out,
    in slices (signal handlers run between them); the one wait loop of the package.
    Returns 0 or the negative errno of the last slice (-ETIMEDOUT/-EAGAIN once DEADLINE,
    a time.monotonic() value or None, has passed). With a HANDLE: RingClosed if close()
    woke the call (or had been called). With a TICKET: _WaitCancelled once it was
    cancelled (the canceller wakes the wait with fr_ring_interrupt())."""
    while True:
        if handle is not None and handle.closing:
            raise RingClosed(-errno.ECANCELED, closed_msg)
        if ticket is not None and ticket.cancelled:
            raise _WaitCancelled()
        rc = call(_slice_ns(deadline))
        if handle is not None and handle.closing:
            raise RingClosed(-errno.ECANCELED, closed_msg)
        if rc in (-errno.EINTR, -errno.ECANCELED):
            # A signal (its Python handler runs now: Ctrl-C raises from here), or a
            # fr_ring_interrupt() that was not close()'s: a cancelled asyncio wait's, which
            # may also reach the wait after it (the flag stays set until a wait takes it).
            continue
        if rc in (-errno.ETIMEDOUT, -errno.EAGAIN) and (deadline is None or time.monotonic() < deadline):
            continue  # next slice: signal handlers ran in between
        return rc


def _c_int(value: int, ctype: type, what: str, low: Optional[int] = None) -> int:
    """VALUE as an int if it fits the ctypes integer type CTYPE (and is at least LOW), else
    InvalidArgument naming WHAT: ctypes would cut it to the type's width without a word (a
    width of 2**32 + 8 would be 8). Every integer the caller gives that goes into C goes
    through here."""
    v = operator.index(value)
    bits = 8 * ctypes.sizeof(ctype)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if ctype(-1).value < 0 else (0, (1 << bits) - 1)
    if low is not None:
        lo = max(lo, low)
    if not lo <= v <= hi:
        raise InvalidArgument(-errno.EINVAL, f"{what} {v} out of range (from {lo} to {hi})")
    return v


def _c_name(name: str) -> bytes:
    """Ring NAME as the C string the library takes; InvalidArgument for a NUL in it (the C
    string would end there, and name another ring)."""
    if "\0" in name:
        raise InvalidArgument(-errno.EINVAL, f"ring name {name!r}: a NUL byte in it")
    return name.encode()


def format_code(fmt: Union[str, int]) -> int:
    """The FRAME_FMT_* fourcc for a name ('bgr24', 'rgb24', 'gray'/'gray8',
    'i420'/'yuv420p', 'nv12', case-insensitive: fr_frame_format_from_name()) or a
    fourcc int. InvalidArgument (a ValueError) for a format the library does not know."""
    if isinstance(fmt, int):
        if not 0 <= fmt <= 0xFFFFFFFF or not _lib.lib().fr_frame_format_name(fmt):
            raise InvalidArgument(-errno.EINVAL, f"unknown frame format code {fmt:#x}")
        return fmt
    code = 0 if "\0" in fmt else _lib.lib().fr_frame_format_from_name(fmt.encode())
    if not code:
        known = ", ".join(format_name(c) for c in _lib.FORMATS)
        raise InvalidArgument(-errno.EINVAL, f"unknown frame format {fmt!r}: use one of {known}")
    return code


def format_name(code: int) -> str:
    """'bgr24', 'rgb24', 'gray8', 'i420' or 'nv12' for a fourcc (fr_frame_format_name();
    hex text if unknown)."""
    name = _lib.lib().fr_frame_format_name(code) if 0 <= code <= 0xFFFFFFFF else None
    return name.decode() if name else f"{code:#010x}"


@functools.lru_cache(maxsize=256)
def _plane_geometry(fourcc: int, width: int, height: int) -> Tuple[Tuple[int, int], ...]:
    """(rows, row_bytes) of each plane: the library's fr_frame_plane_rows() and
    fr_frame_plane_row_bytes(), cached per format and size. Empty for an unknown
    format or a size the library refuses (zero, above FRAME_MAX_DIM)."""
    lib = _lib.lib()
    planes = []
    for p in range(_lib.FRAME_MAX_PLANES):
        rows, row_bytes = lib.fr_frame_plane_rows(fourcc, height, p), lib.fr_frame_plane_row_bytes(fourcc, width, p)
        if not rows or not row_bytes:
            break
        planes.append((rows, row_bytes))
    return tuple(planes)


def _record_len(hdr: FrameHeader) -> int:
    """Bytes from the record start to the end of its last plane."""
    end = _lib.FRAME_HEADER_SIZE
    for i, (rows, _) in enumerate(_plane_geometry(hdr.fourcc, hdr.width, hdr.height)):
        p = hdr.plane[i]
        end = max(end, p.offset + p.stride * rows)
    return end


def _view_planes(buf: np.ndarray, off: int, hdr: FrameHeader) -> List[np.ndarray]:
    """One 2-D uint8 view (rows, row_bytes) per plane, with the header's strides."""
    out = []
    for i, (rows, row_bytes) in enumerate(_plane_geometry(hdr.fourcc, hdr.width, hdr.height)):
        p = hdr.plane[i]
        out.append(np.ndarray((rows, row_bytes), np.uint8, buffer=buf, offset=off + p.offset,
                              strides=(p.stride, 1)))
    return out


def _view_array(buf: np.ndarray, off: int, hdr: FrameHeader) -> np.ndarray:
    """The OpenCV-shaped view of a frame record starting at BUF[OFF] (see Frame.array)."""
    w, h = hdr.width, hdr.height
    planes = _plane_geometry(hdr.fourcc, w, h)
    p0 = hdr.plane[0]
    if len(planes) == 1:  # packed: (H, W, bytes per pixel), or (H, W) for one byte
        ch = planes[0][1] // w
        if ch == 1:
            return np.ndarray((h, w), np.uint8, buffer=buf, offset=off + p0.offset, strides=(p0.stride, 1))
        return np.ndarray((h, w, ch), np.uint8, buffer=buf, offset=off + p0.offset,
                          strides=(p0.stride, ch, 1))
    # Planar 4:2:0 (i420, nv12) as OpenCV wants it for cvtColor: one (H*3/2, W) block.
    if not _planes_packed(hdr):
        strides = [hdr.plane[i].stride for i in range(hdr.plane_count)]
        raise InvalidArgument(-errno.EINVAL, f"{format_name(hdr.fourcc)} {w}x{h} with strides {strides} cannot be"
                              " one (H*3/2, W) view (odd size or padded planes): use frame.planes")
    size = sum(rows * row_bytes for rows, row_bytes in planes)
    return np.ndarray((size // w, w), np.uint8, buffer=buf, offset=off + p0.offset, strides=(w, 1))


def _planes_packed(hdr: FrameHeader) -> bool:
    """Whether a 4:2:0 frame is one (H*3/2, W) block: W and H even and the planes back to
    back without padding (stride = row bytes)."""
    if hdr.width % 2 or hdr.height % 2:
        return False
    end = hdr.plane[0].offset
    for i, (rows, row_bytes) in enumerate(_plane_geometry(hdr.fourcc, hdr.width, hdr.height)):
        p = hdr.plane[i]
        if p.offset != end or p.stride != row_bytes:
            return False
        end += rows * row_bytes
    return True


class _Handle:
    """Owns one fr_ring_t* and exposes its whole mapping to numpy (__array_interface__).

    Views of frames are slices of ``np.asarray(handle)``, so each keeps this
    object alive, and so does every call into C (it holds the handle in a
    local while it runs); fr_ring_close() (and with it munmap) runs from a weakref
    finalizer only once the last of them is gone, and never at interpreter
    exit (see _detach_all_at_exit).

    ``calls`` serializes the calls that use the fr_ring_t (fr_ring_t is one
    thread's at a time); ``state`` guards detaching against the getters,
    which do not wait for a blocked call. ``closing`` is set before a
    waiting call is interrupted, so that it knows to raise RingClosed.
    """

    def __init__(self, ptr: ctypes.c_void_p, writable: bool) -> None:
        lib = _lib.lib()
        self.lib = lib
        self.ptr = ptr
        base = ctypes.c_void_p()
        size = ctypes.c_size_t()
        lib.fr_ring_mapping(ptr, ctypes.byref(base), ctypes.byref(size))
        self.base: int = base.value or 0
        self.size: int = size.value
        self.__array_interface__ = {
            "version": 3,
            "shape": (self.size,),
            "typestr": "|u1",
            "data": (self.base, not writable),
        }
        self.calls = threading.RLock()
        self.state = threading.Lock()
        self.closing = False
        self.detached = False
        finalizer = weakref.finalize(self, _close_ring, lib, ptr)
        finalizer.atexit = False  # at exit, views may still be read: never unmap then
        _LIVE_HANDLES.add(self)

    def interrupt(self) -> None:
        """Wake the call waiting in C on this ring, from any thread (fr_ring_interrupt)."""
        self.closing = True
        if not self.detached:
            self.lib.fr_ring_interrupt(self.ptr)

    def detach(self) -> int:
        """fr_ring_detach() once; the caller holds ``calls``. Returns its result."""
        with self.state:
            if self.detached:
                return 0
            self.detached = True
            return self.lib.fr_ring_detach(self.ptr)


#: Every handle not yet collected, for the exit hook.
_LIVE_HANDLES: "weakref.WeakSet[_Handle]" = weakref.WeakSet()


def _close_ring(lib: ctypes.CDLL, ptr: ctypes.c_void_p) -> None:
    if ptr.value:
        lib.fr_ring_close(ctypes.byref(ptr))


@atexit.register
def _detach_all_at_exit() -> None:
    """At exit, end every side still attached (end of stream marked, names removed, consumer
    slots freed) but unmap nothing: daemon threads and later atexit handlers may still read
    views. A call still waiting in another thread is interrupted first; if it does not let go
    within a second the ring is left as it is (the kernel frees its slot when the process ends)."""
    for handle in list(_LIVE_HANDLES):
        handle.interrupt()
        if handle.calls.acquire(timeout=1.0):
            try:
                handle.detach()
            finally:
                handle.calls.release()


def _to_ns(timeout: Seconds) -> int:
    return -1 if timeout is None else max(0, int(timeout * 1e9))


@dataclass(frozen=True)
class RingStats:
    """Counters and liveness of a ring (struct fr_ring_stats)."""

    capacity: int
    used: int
    records_written: int
    bytes_written: int
    records_dropped: int
    bytes_dropped: int
    records_read: int
    bytes_read: int
    records_skipped: int
    bytes_skipped: int
    producer_futex_waits: int
    producer_futex_wakes: int
    consumer_futex_waits: int
    consumer_futex_wakes: int
    producer_pid: int
    consumer_pid: int
    producer_alive: bool
    consumer_alive: bool
    eos: bool
    on_full: str
    consumers: int
    max_consumers: int
    consumers_reaped: int
    eos_error: int  #: end of stream marked on an error: its negative errno; else 0

    @classmethod
    def _from_struct(cls, st: _lib.RingStatsStruct) -> "RingStats":
        vals = {name: getattr(st, name) for name, _ in st._fields_}
        vals["on_full"] = "drop" if vals["on_full"] == _lib.RING_FULL_DROP else "block"
        return cls(**vals)


@dataclass(frozen=True)
class ConsumerInfo:
    """One attached consumer of a ring (struct fr_ring_consumer_info)."""

    slot: int
    pid: int
    alive: bool
    mode: str
    records_read: int
    bytes_read: int
    records_skipped: int
    lag_records: int
    lag_bytes: int

    @classmethod
    def _from_struct(cls, c: _lib.ConsumerInfoStruct) -> "ConsumerInfo":
        vals = {name: getattr(c, name) for name, _ in c._fields_}
        vals["mode"] = "latest" if vals["mode"] == _lib.RING_CONSUMER_LATEST else "every"
        return cls(**vals)


def _consumer_infos(fill) -> List[ConsumerInfo]:
    """Call FILL(array, max) (fr_ring_consumers / fr_ring_inspect_consumers) and wrap what it gave."""
    arr = (_lib.ConsumerInfoStruct * _lib.RING_MAX_CONSUMERS)()
    n = fill(arr, _lib.RING_MAX_CONSUMERS)
    if n < 0:
        return n
    return [ConsumerInfo._from_struct(arr[i]) for i in range(min(n, _lib.RING_MAX_CONSUMERS))]


def inspect_consumers(name: str) -> List[ConsumerInfo]:
    """The consumers attached to ring NAME, without attaching (fr_ring_inspect_consumers)."""
    out = _consumer_infos(lambda arr, n: _lib.lib().fr_ring_inspect_consumers(_c_name(name), arr, n))
    if isinstance(out, int):
        _raise(out, f"inspect consumers of ring '{name}'")
    return out


def inspect(name: str) -> RingStats:
    """Counters of ring NAME without attaching to it (fr_ring_inspect)."""
    st = _lib.RingStatsStruct()
    rc = _lib.lib().fr_ring_inspect(_c_name(name), ctypes.byref(st))
    if rc < 0:
        _raise(rc, f"inspect ring '{name}'")
    return RingStats._from_struct(st)


def unlink_stale(name: str) -> None:
    """Remove ring NAME if its producer is dead (RingBusy if alive, RingNotFound if none)."""
    rc = _lib.lib().fr_ring_unlink_stale(_c_name(name))
    if rc < 0:
        _raise(rc, f"unlink ring '{name}'")


def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds: the clock of Frame.capture_ns."""
    return time.monotonic_ns()


# ---------------------------------------------------------------- frames


class _HeaderFields:
    """Read-only header properties shared by Frame and OutFrame (self._hdr is a FrameHeader)."""

    __slots__ = ()
    _hdr: FrameHeader

    @property
    def seq(self) -> int:
        """Frame sequence number: 0 for the first frame written, +1 per frame."""
        return self._hdr.seq

    @property
    def pts(self) -> Optional[int]:
        """Presentation time in time_base units, None if unknown."""
        v = self._hdr.pts
        return None if v == PTS_UNKNOWN else v

    @property
    def time_base(self) -> Optional[Fraction]:
        """The time base pts counts in (None if unset)."""
        n, d = self._hdr.time_base_num, self._hdr.time_base_den
        return Fraction(n, d) if d else None

    @property
    def pts_seconds(self) -> Optional[float]:
        """pts * time_base in seconds, None if either is unknown."""
        pts, tb = self.pts, self.time_base
        return None if pts is None or tb is None else float(pts * tb)

    @property
    def capture_ns(self) -> int:
        """CLOCK_MONOTONIC nanoseconds when the frame was captured/decoded."""
        return self._hdr.capture_ns

    @property
    def latency(self) -> float:
        """Seconds from capture_ns to now (time.monotonic_ns is CLOCK_MONOTONIC)."""
        return (time.monotonic_ns() - self._hdr.capture_ns) / 1e9

    @property
    def width(self) -> int:
        """Picture width in pixels."""
        return self._hdr.width

    @property
    def height(self) -> int:
        """Picture height in pixels."""
        return self._hdr.height

    @property
    def fourcc(self) -> int:
        """The FRAME_FMT_* code."""
        return self._hdr.fourcc

    @property
    def format(self) -> str:
        """Pixel format name: 'bgr24', 'rgb24', 'gray8', 'i420' or 'nv12'."""
        return format_name(self._hdr.fourcc)

    @property
    def flags(self) -> int:
        """FRAME_FLAG_* bits (see is_key, is_discontinuity, is_eos)."""
        return self._hdr.flags

    @property
    def is_key(self) -> bool:
        """Decoded from a key frame."""
        return bool(self._hdr.flags & FRAME_FLAG_KEY)

    @property
    def is_discontinuity(self) -> bool:
        """Timeline jump before this frame (seek, loop or format change)."""
        return bool(self._hdr.flags & FRAME_FLAG_DISCONTINUITY)

    @property
    def is_eos(self) -> bool:
        """The producer flagged this as the last frame of the stream."""
        return bool(self._hdr.flags & FRAME_FLAG_EOS)

    @property
    def strides(self) -> Tuple[int, ...]:
        """Row stride in bytes of each plane."""
        return tuple(self._hdr.plane[i].stride for i in range(self._hdr.plane_count))

    @property
    def plane_count(self) -> int:
        """Number of image planes: 1 for packed RGB/BGR/gray, 2 for NV12, 3 for I420."""
        return self._hdr.plane_count

    @property
    def colorimetry(self) -> Colorimetry:
        """How the samples turn into colour: matrix, range, primaries, transfer, chroma siting."""
        return Colorimetry._from_header(self._hdr)

    def header(self) -> dict:
        """All header fields as a dict."""
        return {
            "seq": self.seq, "pts": self.pts, "time_base": self.time_base,
            "capture_ns": self.capture_ns, "width": self.width, "height": self.height,
            "format": self.format, "flags": self.flags, "strides": self.strides,
            "colorimetry": self.colorimetry,
        }


def _opencv_converts(hdr: FrameHeader) -> bool:
    """Whether cv2.cvtColor's YUV 4:2:0 conversion (BT.601, limited range, even sizes only, of
    one (H*3/2, W) block: planes not padded) is the one frame HDR asks for, and OpenCV is there
    to do it."""
    if not _planes_packed(hdr) or hdr.color_range == _lib.FRAME_RANGE_FULL:
        return False
    if hdr.color_matrix not in (_lib.FRAME_MATRIX_BT601, _lib.FRAME_MATRIX_BT470BG, _lib.FRAME_MATRIX_UNSPECIFIED):
        return False
    try:
        import cv2  # noqa: F401  (optional: numpy alone converts too)
    except ImportError:
        return False
    return True


class Frame(_HeaderFields):
    """One frame read from a ring: header fields plus zero-copy numpy views.

    Use it as a context manager (``with consumer.next_frame() as f:``) to
    release the record on exit; release() does it explicitly, and the
    consumer releases the current frame anyway when the next one is asked
    for. After release, header fields still work (they are a private copy of
    the validated header) but ``array``/``planes`` raise FrameReleased;
    views taken before the release stay readable (see the module docstring).
    """

    __slots__ = ("_hdr", "_buf", "_off", "_consumer", "_released", "skipped")

    def __init__(self, hdr: FrameHeader, buf: np.ndarray, off: int,
                 consumer: Optional["Consumer"], skipped: int = 0) -> None:
        self._hdr = hdr
        self._buf = buf
        self._off = off
        self._consumer = consumer
        self._released = False
        #: Frames discarded just before this one by latest() (0 otherwise).
        self.skipped = skipped

    @property
    def array(self) -> np.ndarray:
        """A read-only numpy view of the pixels in shared memory (no copy).

        Shapes: (H, W, 3) uint8 for bgr24/rgb24, (H, W) for gray8, and the
        OpenCV layout (H*3/2, W) for i420/nv12 -- the latter only when W and H
        are even and the planes packed (always true for libring producers at
        even sizes); otherwise InvalidArgument (a ValueError): use ``planes``.
        Strides are the header's. Raises FrameReleased after release().
        """
        if self._released:
            raise FrameReleased(0, f"frame {self.seq} was released; keep data with frame.copy()")
        return _view_array(self._buf, self._off, self._hdr)

    @property
    def planes(self) -> List[np.ndarray]:
        """One read-only 2-D uint8 view (rows, row_bytes) per plane (Y, U, V / Y, UV / packed)."""
        if self._released:
            raise FrameReleased(0, f"frame {self.seq} was released; keep data with frame.copy()")
        return _view_planes(self._buf, self._off, self._hdr)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """np.asarray(frame) is frame.array (a view); np.array(frame) copies."""
        a = self.array
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    @property
    def address(self) -> int:
        """Address of the record (its header) in memory. Raises FrameReleased after release()."""
        if self._released:
            raise FrameReleased(0, f"frame {self.seq} was released; keep data with frame.copy()")
        return self._buf.__array_interface__["data"][0] + self._off

    @property
    def released(self) -> bool:
        """Whether the record went back to the ring (release(), the with block's end, or the
        next frame asked for); then .array and .planes raise FrameReleased."""
        return self._released

    def release(self) -> None:
        """Give the record back to the producer (idempotent). Private copies ignore it."""
        c = self._consumer
        if self._released or c is None:  # already released, or a private copy
            return
        try:
            c._release(self)
        finally:
            self._drop()

    def _drop(self) -> None:
        """Mark released and drop our reference to the mapping: only views the caller
        kept may delay the unmap now."""
        self._released = True
        self._buf = None
        self._consumer = None

    def to_bgr(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The picture as BGR (H, W, 3) uint8, converted as the header's colorimetry says.

        bgr24: the zero-copy view itself (read-only; ``out`` gets a copy if given);
        rgb24 and gray8: channels reordered / repeated; i420 and nv12: the matrix's
        luma weights (BT.709, BT.601, BT.2020, ...; BT.601 when unspecified) and its
        range (limited when unspecified), each chroma sample over its 2 x 2 pixels:
        within 3 levels of swscale's (``ffmpeg -pix_fmt bgr24``) conversion. BT.601
        limited range at an even size goes through OpenCV's cvtColor when it is there.
        OUT, if given, is filled and returned. Raises FrameReleased after release().
        """
        planes = self.planes
        fmt = self.format
        h, w = self.height, self.width
        if fmt in ("bgr24", "rgb24"):
            img = planes[0][:, :w * 3].reshape(h, w, 3)
            if fmt == "rgb24":
                img = img[:, :, ::-1]
            if out is None:
                return img if fmt == "bgr24" else np.ascontiguousarray(img)
            out[...] = img
            return out
        if fmt == "gray8":
            if out is None:
                out = np.empty((h, w, 3), np.uint8)
            out[...] = planes[0][:, :w, None]
            return out
        hdr = self._hdr
        if _opencv_converts(hdr):  # BT.601 limited range at an even size: OpenCV's SIMD conversion
            import cv2
            code = cv2.COLOR_YUV2BGR_I420 if fmt == "i420" else cv2.COLOR_YUV2BGR_NV12
            return cv2.cvtColor(self.array, code, dst=out)
        y = planes[0][:, :w]
        cw = (w + 1) // 2
        if fmt == "i420":
            u, v = planes[1][:, :cw], planes[2][:, :cw]
        else:  # nv12: interleaved U V
            uv = planes[1][:, :2 * cw]
            u, v = uv[:, 0::2], uv[:, 1::2]
        return yuv420_to_bgr(y, u, v, hdr.color_matrix, hdr.color_range == _lib.FRAME_RANGE_FULL, out)

    def copy(self) -> "Frame":
        """A Frame with a private (writable) copy of this record: valid forever;
        release() does nothing on it."""
        if self._released:
            raise FrameReleased(0, f"frame {self.seq} was released before copy()")
        n = _record_len(self._hdr)
        buf = np.array(self._buf[self._off:self._off + n])  # the one copy
        hdr = FrameHeader.from_buffer_copy(self._hdr)
        return Frame(hdr, buf, 0, None, self.skipped)

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        state = " released" if self._released else ""
        return (f"<framering.Frame seq={self.seq} {self.width}x{self.height} {self.format}"
                f" pts={self.pts}{state}>")


class OutFrame(_HeaderFields):
    """A frame reserved in a producer ring: write pixels into ``array`` in place,
    set pts/time_base/flags, then commit() (or abort()). As a context manager
    it commits on normal exit and aborts if the block raised.

    The header lives in shared memory; setting fields writes there directly.
    """

    __slots__ = ("_hdr", "_hdrp", "_buf", "_off", "_producer", "_done", "_closed")

    def __init__(self, hdrp, buf: np.ndarray, off: int, producer: "Producer") -> None:
        self._hdrp = hdrp  # POINTER(FrameHeader) for fr_frame_commit
        # The header in shared memory, as a view of BUF that keeps the mapping alive (as every
        # numpy view does; hdrp.contents would not): a setter another thread's close() races
        # writes into memory still mapped, never into a hole.
        self._hdr = FrameHeader.from_buffer(buf, off)
        self._buf = buf
        self._off = off
        self._producer = producer
        self._done = False
        self._closed = False  # the producer was closed with this frame reserved

    def _check(self) -> None:
        if self._closed:
            raise RingClosed(0, f"producer of ring '{self._producer.name}' was closed: frame {self._hdr.seq}"
                             " was aborted")
        if self._done:
            raise FrameReleased(0, f"frame {self._hdr.seq} was already committed or aborted")

    @property
    def array(self) -> np.ndarray:
        """WRITABLE numpy view of the pixels in shared memory (shapes as Frame.array),
        e.g. ``cv2.Canny(img, 50, 150, edges=out.array)``."""
        self._check()
        return _view_array(self._buf, self._off, self._hdr)

    @property
    def planes(self) -> List[np.ndarray]:
        """Writable 2-D uint8 view per plane."""
        self._check()
        return _view_planes(self._buf, self._off, self._hdr)

    @_HeaderFields.pts.setter
    def pts(self, value: Optional[int]) -> None:
        self._check()
        # INT64_MIN is PTS_UNKNOWN: a pts of that value would read back as None.
        self._hdr.pts = PTS_UNKNOWN if value is None else _c_int(int(value), ctypes.c_int64, "pts", PTS_UNKNOWN + 1)

    @_HeaderFields.time_base.setter
    def time_base(self, value: Union[Fraction, Tuple[int, int]]) -> None:
        """Numerator and denominator must be positive and fit the header's int32 fields
        (InvalidArgument otherwise: consumers would skip the frame as invalid)."""
        self._check()
        if isinstance(value, tuple):
            n, d = (int(x) for x in value)
        elif value is None:
            n, d = 0, 0
        else:
            value = Fraction(value)
            n, d = value.numerator, value.denominator
        if not (0 < n < 1 << 31 and 0 < d < 1 << 31):
            raise InvalidArgument(-errno.EINVAL, f"time base {value!r}: numerator and denominator must be"
                                  " positive 32-bit ints (a tuple or a Fraction, not a float)")
        self._hdr.time_base_num, self._hdr.time_base_den = n, d

    @_HeaderFields.capture_ns.setter
    def capture_ns(self, value: int) -> None:
        self._check()
        self._hdr.capture_ns = _c_int(int(value), ctypes.c_uint64, "capture_ns")

    @_HeaderFields.flags.setter
    def flags(self, value: int) -> None:
        self._check()
        self._hdr.flags = _c_int(int(value), ctypes.c_uint32, "flags")

    def _set_flag(self, bit: int, on: bool) -> None:
        self._check()
        self._hdr.flags = (self._hdr.flags | bit) if on else (self._hdr.flags & ~bit)

    @_HeaderFields.is_key.setter
    def is_key(self, on: bool) -> None:
        self._set_flag(FRAME_FLAG_KEY, on)

    @_HeaderFields.is_discontinuity.setter
    def is_discontinuity(self, on: bool) -> None:
        self._set_flag(FRAME_FLAG_DISCONTINUITY, on)

    @_HeaderFields.is_eos.setter
    def is_eos(self, on: bool) -> None:
        self._set_flag(FRAME_FLAG_EOS, on)

    @_HeaderFields.colorimetry.setter
    def colorimetry(self, value: Colorimetry) -> None:
        """Say how the pixels written are to be read (names as Colorimetry has them);
        a frame reserved from Python starts with everything "unspecified"."""
        self._check()
        value._to_header(self._hdr)

    def commit(self) -> None:
        """Publish the frame to the consumer (RingClosed if the producer was closed meanwhile)."""
        self._check()
        # The fields keep what was written: once committed, the consumer may
        # release the record and the producer reuse it.
        written = FrameHeader.from_buffer_copy(self._hdr)
        try:
            self._producer._commit(self)
        finally:
            self._drop(written)

    def abort(self) -> None:
        """Give the reservation back; the consumer never sees it."""
        if self._done:
            return
        try:
            self._producer._abort(self)
        finally:
            self._drop()

    def _drop(self, hdr: Optional[FrameHeader] = None, closed: bool = False) -> None:
        """Done with the shared record: from now on the fields read a private copy (the
        shared header may be reused once the consumer released the record). CLOSED: because
        the producer was closed (then commit() and the pixels raise RingClosed)."""
        if not self._done:
            self._closed = closed
            self._done = True
            self._buf = None
            self._hdr = hdr if hdr is not None else FrameHeader.from_buffer_copy(self._hdr)

    def __enter__(self) -> "OutFrame":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = " done" if self._done else ""
        return f"<framering.OutFrame seq={self.seq} {self.width}x{self.height} {self.format}{state}>"


# ---------------------------------------------------------------- consumer


_MODES = {"every": _lib.RING_CONSUMER_EVERY, "latest": _lib.RING_CONSUMER_LATEST}


def _capacity(capacity: Optional[int], slots: Optional[int], width: Optional[int], height: Optional[int],
              format: Union[str, int]) -> int:
    """A ring's data bytes from CAPACITY, or from SLOTS frames of WIDTH x HEIGHT FORMAT (0: default)."""
    if slots is None:
        return _c_int(capacity or 0, ctypes.c_uint64, "capacity")
    if capacity is not None:
        raise InvalidArgument(-errno.EINVAL, "give capacity or slots, not both")
    if width is None or height is None:
        raise InvalidArgument(-errno.EINVAL, "slots needs width and height (and format) of the frames")
    return capacity_for(slots, width, height, format)

#: Seconds a consumer waits for the ring that replaced its own (it is normally
#: in place already; only a producer that dies in between makes it wait).
REPLACE_WAIT = 5.0


def _open_consumer(name: str, timeout: Seconds, mode: str, handle: Optional[_Handle] = None,
                   ticket: Optional[_WaitTicket] = None) -> ctypes.c_void_p:
    """Attach to ring NAME, waiting up to TIMEOUT for it; with HANDLE (the ring it replaces),
    RingClosed as soon as that is closed; with TICKET (an asyncio caller's), _WaitCancelled
    within a slice of its cancel (no ring handle then for the canceller's interrupt to wake)."""
    lib = _lib.lib()
    ptr = ctypes.c_void_p()
    bname = _c_name(name)
    if timeout is not None and timeout <= 0:
        rc = lib.fr_ring_attach(ctypes.byref(ptr), bname, ctypes.byref(_lib.RingAttachOpts(_MODES[mode], 0)))
        if rc < 0:
            _raise(rc, f"open ring '{name}'")
        return ptr
    deadline = None if timeout is None else time.monotonic() + timeout
    # fr_ring_attach waits when wait_ns != 0: one slice at a time (a slice of 0 would not wait).
    try:
        rc = _wait_sliced(lambda ns: lib.fr_ring_attach(ctypes.byref(ptr), bname,
                                                     ctypes.byref(_lib.RingAttachOpts(_MODES[mode], max(ns, 1)))),
                          deadline, handle, f"consumer of ring '{name}' was closed while it waited", ticket)
    except RingClosed:
        _close_ring(lib, ptr)  # attached just as close() came: let go of the new ring too
        raise
    if rc == 0:
        return ptr
    if rc == -errno.ETIMEDOUT:
        raise RingNotFound(rc, f"open ring '{name}': no ring of that name appeared within {timeout:g} s")
    _raise(rc, f"open ring '{name}'")


class _RingSide:
    """What Consumer and Producer share: the fr_ring_t* (in a _Handle), its mapping as a
    numpy array, and the close/context-manager lifecycle. Subclasses clean up their
    side in _before_detach()."""

    _side = "ring"
    _handle: Optional[_Handle] = None

    def _attach(self, ptr: ctypes.c_void_p, writable: bool) -> None:
        self._handle = _Handle(ptr, writable=writable)
        self._map: Optional[np.ndarray] = np.asarray(self._handle)

    def _before_detach(self, handle: _Handle) -> None:
        """Side-specific clean-up, with handle.calls held (release a frame, abort a reservation)."""

    def close(self) -> None:
        """Detach now: the current frame is released (consumer) or the reservation aborted
        and end of stream marked (producer), and the name or slot is free for the next one.
        A call waiting in another thread is woken and raises RingClosed. Views still alive
        keep the memory mapped until they are dropped. Idempotent; any thread."""
        handle = self._handle
        if handle is None:
            return
        handle.interrupt()  # a call waiting in C lets go of handle.calls at once
        with handle.calls:
            if self._handle is None:
                return  # another thread closed it meanwhile
            try:
                self._before_detach(handle)
            finally:
                handle.detach()
                self._handle = None
                self._map = None

    def _calls(self) -> _Handle:
        """The open handle (RingClosed otherwise); take ``.calls`` before using its ptr."""
        handle = self._handle
        if handle is None or handle.closing:
            raise RingClosed(0, f"{self._side} of ring '{self.name}' is closed")
        return handle

    @property
    def closed(self) -> bool:
        """Whether close() ran (or the with block ended); no further reads or writes."""
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _check_open(self) -> None:
        self._calls()

    def _getter(self, fn, *args):
        """Call a read-only C getter without waiting for a blocked call (handle.state)."""
        handle = self._calls()
        with handle.state:
            if handle.detached:
                raise RingClosed(0, f"{self._side} of ring '{self.name}' is closed")
            return fn(handle.ptr, *args)

    @property
    def stats(self) -> "RingStats":
        """Counters and liveness of the ring (fr_ring_get_stats)."""
        st = _lib.RingStatsStruct()
        self._getter(self._lib.fr_ring_get_stats, ctypes.byref(st))
        return RingStats._from_struct(st)

    @property
    def peer_alive(self) -> bool:
        """Whether the other side is attached (holds its lock)."""
        return bool(self._getter(self._lib.fr_ring_peer_alive))

    def consumers(self) -> List["ConsumerInfo"]:
        """The consumers attached to the ring now: slot, pid, alive, mode, frames read and
        skipped, lag (fr_ring_consumers)."""
        handle = self._calls()
        with handle.state:
            if handle.detached:
                raise RingClosed(0, f"{self._side} of ring '{self.name}' is closed")
            out = _consumer_infos(lambda arr, n: self._lib.fr_ring_consumers(handle.ptr, arr, n))
        if isinstance(out, int):
            _raise(out, f"consumers of ring '{self.name}'")
        return out

    @property
    def mapping(self) -> Tuple[int, int]:
        """(address, size) of the whole shared mapping (fr_ring_mapping)."""
        handle = self._calls()
        return handle.base, handle.size

    def __repr__(self) -> str:
        return f"<framering.{type(self).__name__} {self.name!r}{' closed' if self.closed else ''}>"


class Consumer(_RingSide):
    """The reading side of ring NAME: frames as zero-copy numpy views.

    >>> with Consumer("framering", timeout=5) as cons:     # doctest: +SKIP
    ...     for frame in cons:                 # ends at end of stream
    ...         print(frame.seq, frame.array.mean())

    Args:
        name: ring name (as given to framering-capture -r).
        timeout: seconds to wait for a ring of that name with a live producer
            (fr_ring_attach); None waits forever, 0 does not wait (and attaches
            even to a dead producer's ring, to read what it left).
            RingNotFound if none came.
        mode: "every" (lossless: every frame in order; the producer waits
            for this consumer when the ring is full; attaching late, it starts
            at the oldest frame still in the ring) or "latest" (live: each
            frame it gets is the newest; it never slows the producer or other
            consumers, and the frame it holds is never overwritten while held;
            attaching late, it starts at the newest frame).

    Several consumers may read one ring at once (up to the producer's
    max_consumers), each in its own mode. Raises RingNotFound, RingBusy (all
    consumer slots taken), ForeignRing, InvalidArgument (bad mode).

    Reading: next_frame() returns the next frame (in order, or the newest for
    a "latest" consumer), latest() the newest one (skipping older ones); in
    asyncio code ``await anext_frame()``, ``await alatest()`` and ``async for``
    do the same without blocking the event loop (aio.py). Only
    one frame is held at a time: asking for another releases the current
    one. At end of stream they raise EndOfStream (iteration just stops);
    PeerDied if the producer died. When the producer replaces the ring by a
    new one under the same name (framering-capture does when frames outgrow
    it), the consumer reads the old ring to its end and goes on in the new
    one by itself (``replacements`` counts it).
    """

    _side = "consumer"

    def __init__(self, name: str, timeout: Seconds = 5.0, mode: str = "every") -> None:
        self.name = name
        if mode not in _MODES:
            raise InvalidArgument(-errno.EINVAL, f"mode must be 'every' or 'latest', not {mode!r}")
        #: "every" or "latest": how this consumer reads.
        self.mode = mode
        self._lib = _lib.lib()
        self._current: Optional[Frame] = None
        self._undelivered: Optional[Frame] = None
        self._worker: Optional["_aio._Worker"] = None
        #: Records skipped because they were not valid frames (InvalidFrame).
        self.invalid_frames = 0
        #: Times the producer replaced the ring (e.g. larger, for frames that grew)
        #: and this consumer followed it to the new one under the same name.
        self.replacements = 0
        self._attach(_open_consumer(name, timeout, mode), writable=False)

    # -- lifetime
    def _before_detach(self, handle: _Handle) -> None:
        frame, self._current = self._current, None
        if frame is not None:
            frame._drop()  # fr_ring_detach() releases the record itself
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()  # its job in progress, if any, ends with RingClosed

    def __enter__(self) -> "Consumer":
        return self

    # -- reading
    def _peek(self, latest: bool, timeout: Seconds, ticket: Optional[_WaitTicket] = None) -> Frame:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            handle = self._calls()
            frame = self._peek_once(handle, latest, timeout, deadline, ticket)
            if frame is not None:
                return frame
            self._follow(handle, timeout, deadline, ticket)  # the producer replaced the ring: read on in the new one

    def _follow(self, handle: _Handle, timeout: Seconds, deadline: Optional[float],
                ticket: Optional[_WaitTicket] = None) -> None:
        """Attach to the ring that replaced HANDLE's under the same name (it is in place
        before the old one says so), and read on there; counted in ``replacements``. The
        caller's DEADLINE bounds the wait for it too: Timeout, as for a frame that does not come.
        A cancelled TICKET ends the wait (_WaitCancelled), as it ends the wait for a frame."""
        wait = REPLACE_WAIT
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        cut = left is not None and (wait is None or left < wait)
        try:
            ptr = _open_consumer(self.name, left if cut else wait, self.mode, handle, ticket)
        except RingNotFound as e:
            if not cut:
                raise
            raise Timeout(-errno.ETIMEDOUT, f"ring '{self.name}': no frame within {timeout:g} s "
                          "(the ring that replaced it has not appeared)") from e
        with handle.calls:
            if self._handle is not handle or handle.closing:  # close() came meanwhile
                _close_ring(self._lib, ptr)
                raise RingClosed(-errno.ECANCELED, f"consumer of ring '{self.name}' was closed")
            handle.detach()
            self._attach(ptr, writable=False)
            self.replacements += 1

    def _peek_once(self, handle: _Handle, latest: bool, timeout: Seconds,
                   deadline: Optional[float], ticket: Optional[_WaitTicket] = None) -> Optional[Frame]:
        """One fr_frame_peek (waiting up to DEADLINE); None if the ring was replaced."""
        hdr = FrameHeader()
        rec, skipped = ctypes.c_void_p(), ctypes.c_uint64()
        peek = self._lib.fr_frame_peek
        with handle.calls:
            self._release_current(handle)
            rc = _wait_sliced(
                lambda ns: peek(handle.ptr, ctypes.byref(hdr), ctypes.byref(rec), int(latest),
                                ctypes.byref(skipped), ns),
                deadline, handle, f"consumer of ring '{self.name}' was closed while it waited", ticket)
            if rc == -errno.ESTALE:
                return None
            if rc in (-errno.ETIMEDOUT, -errno.EAGAIN):
                raise Timeout(rc, f"ring '{self.name}': no frame within {timeout:g} s")
            if rc == -errno.ENOMSG:
                self.invalid_frames += 1
            if rc == -errno.EREMOTEIO:
                self._raise_producer_failed(handle, rc)
            if rc < 0:
                # fr_frame_peek released (skipped) a record that was no frame; any other error
                # left nothing peeked. The next call goes on either way.
                _raise(rc, f"read ring '{self.name}'")
            if ticket is not None and not ticket.deliver():
                self._lib.fr_ring_unpeek(handle.ptr)  # its caller is gone: nothing held, nothing lost
                raise _WaitCancelled()
            frame = Frame(hdr, self._map, rec.value - handle.base, self, skipped.value)
            self._current = frame
        return frame

    def _raise_producer_failed(self, handle: _Handle, rc: int) -> None:
        """Raise ProducerFailed with the producer's reason (handle.calls held)."""
        buf = ctypes.create_string_buffer(_lib.RING_EOS_MESSAGE_MAX)
        error = self._lib.fr_ring_end_reason(handle.ptr, buf, len(buf))
        reason = buf.value.decode("utf-8", "backslashreplace")
        # The producer's message says what failed; its errno only when there is none.
        why = reason or (os.strerror(-error) if error < 0 else "no reason given")
        raise ProducerFailed(rc, f"ring '{self.name}': the producer failed: {why}", reason, error)

    def next_frame(self, timeout: Seconds = None) -> Frame:
        """The next frame in order (waits up to TIMEOUT seconds; None: forever).

        Releases the frame held before. Raises EndOfStream at end of stream,
        ProducerFailed at an end the producer marked on an error, Timeout, PeerDied; InvalidFrame for a record that is not a valid frame
        (it is skipped: the next call goes on); ForeignRing for a frame of
        another format version (skipped too) or a corrupt ring (stop reading);
        RingClosed if close() was called, also from another thread while waiting.
        """
        return self._peek(False, timeout)

    def latest(self, timeout: Seconds = None) -> Frame:
        """The newest committed frame, discarding older unread ones (counted as
        skipped; ``frame.skipped`` says how many). Waits like next_frame()."""
        return self._peek(True, timeout)

    def frames(self, latest: bool = False, timeout: Seconds = None) -> Iterator[Frame]:
        """Iterate frames until end of stream. Each frame is released when
        the next is asked for (keep data with frame.copy()). Records that are
        not valid frames are skipped and counted in ``invalid_frames``; every
        other error ends the iteration by raising."""
        get = self.latest if latest else self.next_frame
        while True:
            try:
                frame = get(timeout)
            except EndOfStream:
                return
            except InvalidFrame:
                continue
            yield frame

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    # -- asyncio (the machinery and its design: aio.py)
    async def anext_frame(self, timeout: Seconds = None) -> Frame:
        """next_frame() for asyncio: ``frame = await cons.anext_frame()``.

        The wait runs in this consumer's worker thread; the event loop goes on meanwhile.
        Cancelling the awaiting task (or ``asyncio.wait_for`` running out) leaves nothing
        peeked and loses nothing: the next read returns the frame this one would have.
        Raises what next_frame() raises."""
        return await _aio.next_frame(self, False, timeout)

    async def alatest(self, timeout: Seconds = None) -> Frame:
        """latest() for asyncio: the newest frame, awaited as anext_frame() is."""
        return await _aio.next_frame(self, True, timeout)

    def aframes(self, latest: bool = False, timeout: Seconds = None) -> AsyncIterator[Frame]:
        """frames() for asyncio: ``async for frame in cons.aframes(latest=True)``; ends at
        end of stream, skips invalid records, releases each frame when the next is asked for."""
        return _aio.frames(self, latest, timeout)

    def __aiter__(self) -> AsyncIterator[Frame]:
        """``async for frame in consumer``: aframes() in the consumer's mode."""
        return self.aframes()

    async def __aenter__(self) -> "Consumer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _async_worker(self) -> "_aio._Worker":
        """The thread that runs this consumer's awaited waits (started on first use)."""
        handle = self._calls()
        with handle.state:
            if self._worker is None:
                self._worker = _aio._Worker(self.name)
            return self._worker

    def _interrupt_wait(self) -> None:
        """Wake the wait in progress (a cancelled asyncio wait's) without closing anything."""
        handle = self._handle
        if handle is not None:
            with handle.state:
                if not handle.detached:
                    self._lib.fr_ring_interrupt(handle.ptr)

    def _release_current(self, handle: _Handle) -> None:
        """Give the held frame back (handle.calls held): released, or unpeeked if it never
        reached its caller (see _give_back)."""
        frame, self._current = self._current, None
        if frame is not None:
            unread, self._undelivered = frame is self._undelivered, None
            frame._drop()
            rc = (self._lib.fr_ring_unpeek if unread else self._lib.fr_ring_release)(handle.ptr)
            if rc < 0:
                _raise(rc, f"release on ring '{self.name}'")

    def _give_back(self, frame: Frame) -> None:
        """FRAME was peeked for an asyncio caller that was cancelled before it got it:
        give it back unread (fr_ring_unpeek), so the next read returns it again. Done by
        the worker thread (never blocks the event loop); if any other read comes
        first, it unpeeks instead of releasing (self._undelivered)."""
        self._undelivered = frame
        try:
            worker = self._async_worker()
        except RingClosed:
            return  # closed meanwhile: detaching let go of the record

        def unpeek() -> None:
            handle = self._handle
            if handle is None:
                return
            with handle.calls:
                if self._current is frame and self._handle is handle and not handle.detached:
                    self._release_current(handle)

        worker.submit(unpeek)

    def _release(self, frame: Frame) -> None:
        handle = self._handle
        if handle is None or self._current is not frame:
            return  # already given back: by the next frame, or by close()
        with handle.calls:
            if self._current is frame and self._handle is handle:
                self._release_current(handle)

    def skip_to_latest(self) -> int:
        """Discard every committed frame but the newest, without waiting; returns how many."""
        handle = self._calls()
        with handle.calls:
            self._release_current(handle)
            n = self._lib.fr_ring_skip_to_latest(handle.ptr)
        if n < 0:
            _raise(int(n), f"skip on ring '{self.name}'")
        return int(n)

    # -- state
    @property
    def meta(self) -> bytes:
        """The producer's stream description (Producer.set_meta; at most 256 bytes), as long
        as it was set (fr_ring_get_meta)."""
        buf = ctypes.create_string_buffer(_lib.RING_META_SIZE)
        rc = self._getter(self._lib.fr_ring_get_meta, buf, _lib.RING_META_SIZE)
        if rc < 0:
            _raise(rc, f"meta of ring '{self.name}'")
        return buf.raw[:rc]



# ---------------------------------------------------------------- producer


_POLICIES = {"block": _lib.RING_FULL_BLOCK, "drop": _lib.RING_FULL_DROP}


def _policy(on_full: str) -> int:
    """The enum ring_full_policy value of 'block' or 'drop' (InvalidArgument otherwise)."""
    try:
        return _POLICIES[on_full]
    except (KeyError, TypeError):
        raise InvalidArgument(-errno.EINVAL, f"on_full must be 'block' or 'drop', not {on_full!r}") from None



def capacity_for(slots: int, width: int, height: int, fmt: Union[str, int] = "bgr24") -> int:
    """A ring capacity (power of two) in which SLOTS frames of this size are in flight at once
    (at least 2), as framering-capture --slots sizes its ring (fr_frame_ring_capacity).

    Fewer frames keep a lap of the ring in the CPU cache; more absorb a slow consumer."""
    code = format_code(fmt)
    width, height = _c_int(width, ctypes.c_uint32, "width"), _c_int(height, ctypes.c_uint32, "height")
    slots = _c_int(max(int(slots), 0), ctypes.c_uint, "slots")
    if _lib.lib().fr_frame_record_size(code, width, height) == 0:
        raise InvalidArgument(-errno.EINVAL, f"bad frame size {width}x{height} for {fmt}")
    cap = _lib.lib().fr_frame_ring_capacity(code, width, height, slots)
    if cap == 0:
        raise InvalidArgument(-errno.EINVAL, f"{slots} frames of {width}x{height} {fmt} exceed the largest ring")
    return cap


class Producer(_RingSide):
    """The writing side: creates ring NAME (and removes it on close).

    >>> with Producer("edges", slots=4, width=640, height=480, format="gray8") as prod:  # doctest: +SKIP
    ...     with prod.reserve_frame(640, 480, "gray8") as out:
    ...         cv2.Canny(img, 50, 150, edges=out.array)   # written in place
    ...         out.pts = 0; out.time_base = (1, 30)
    ...     prod.mark_eos()

    Args:
        name: ring name.
        capacity: data area bytes (power of two); or give slots with the
            frame width/height/format and a capacity for that many frames
            is chosen. Neither: the library default (64 MiB).
        on_full: 'block' (wait for the slowest "every" consumer, lossless; before
            the first consumer came, for that one) or 'drop' (reserve_frame
            raises RingFull and the drop is counted). "latest" consumers never
            make it wait.
        mode: permission bits of the segment.
        max_consumers: how many consumers may attach at once (1..12; 0: 8).

    Raises RingBusy (a live producer holds the name), ForeignRing.
    """

    _side = "producer"

    def __init__(self, name: str, capacity: Optional[int] = None, *, slots: Optional[int] = None,
                 width: Optional[int] = None, height: Optional[int] = None,
                 format: Union[str, int] = "bgr24", on_full: str = "block",
                 mode: int = 0o600, max_consumers: int = 0) -> None:
        self.name = name
        self._lib = _lib.lib()
        self._pending: Optional[OutFrame] = None
        self._on_full = on_full
        self._opts = _lib.RingCreateOpts(_capacity(capacity, slots, width, height, format),
                                         _c_int(mode, ctypes.c_uint32, "mode"), _policy(on_full),
                                         _c_int(max_consumers, ctypes.c_uint, "max_consumers"))
        ptr = ctypes.c_void_p()
        rc = self._lib.fr_ring_create(ctypes.byref(ptr), _c_name(name), ctypes.byref(self._opts))
        if rc < 0:
            _raise(rc, f"create ring '{name}'")
        self._attach(ptr, writable=True)

    def replace(self, capacity: Optional[int] = None, *, slots: Optional[int] = None,
                width: Optional[int] = None, height: Optional[int] = None,
                format: Union[str, int] = "bgr24") -> None:
        """Go on in a new ring under the same name, of CAPACITY bytes (or SLOTS frames of
        WIDTH x HEIGHT FORMAT), e.g. when frames grew too large for this one; the rest
        (on_full, mode, max_consumers) stays. Consumers read this ring to its end, then
        follow to the new one by themselves (Consumer.replacements); frame numbers go on.
        Views of this ring's frames stay readable. Raises InvalidArgument, FrameringError
        (-EALREADY) with a frame reserved, or what creating the new ring raises."""
        opts = _lib.RingCreateOpts(_capacity(capacity, slots, width, height, format), self._opts.mode,
                                   self._opts.on_full, self._opts.max_consumers)
        handle = self._calls()
        with handle.calls:
            if self._pending is not None:
                raise FrameringError(-errno.EALREADY, f"ring '{self.name}': commit or abort the reserved frame first")
            ptr = ctypes.c_void_p()
            rc = self._lib.fr_ring_replace(handle.ptr, ctypes.byref(ptr), ctypes.byref(opts))
            if rc < 0:
                _raise(rc, f"replace ring '{self.name}'")
            handle.detach()  # fr_ring_replace detached it already: this only says so
            self._opts = opts
            self._attach(ptr, writable=True)  # the old mapping is freed with its last view

    def _before_detach(self, handle: _Handle) -> None:
        out, self._pending = self._pending, None
        if out is not None:
            out._drop(closed=True)  # fr_ring_detach() aborts the reservation and marks end of stream

    def __enter__(self) -> "Producer":
        return self

    def reserve_frame(self, width: int, height: int, format: Union[str, int] = "bgr24",
                      timeout: Seconds = None) -> OutFrame:
        """Reserve a WIDTH x HEIGHT frame in the ring; write it through out.array.

        Under on_full='block' waits up to TIMEOUT seconds (None: forever) for
        space (Timeout after that); under 'drop' raises RingFull at once.
        PeerDied if the consumer died while we waited, ConsumerDetached if it
        left; RingClosed if close() was called (also from another thread).
        """
        handle = self._calls()
        code = format_code(format)
        width, height = _c_int(width, ctypes.c_uint32, "width"), _c_int(height, ctypes.c_uint32, "height")
        hdrp = ctypes.POINTER(FrameHeader)()
        deadline = None if timeout is None else time.monotonic() + timeout
        reserve = self._lib.fr_frame_reserve
        with handle.calls:
            if self._pending is not None:
                raise FrameringError(-errno.EALREADY, f"ring '{self.name}': a reserved frame is not committed yet")
            rc = _wait_sliced(lambda ns: reserve(handle.ptr, code, width, height, ctypes.byref(hdrp), ns),
                              deadline, handle, f"producer of ring '{self.name}' was closed while it waited")
            if rc in (-errno.ETIMEDOUT, -errno.EAGAIN):
                raise Timeout(rc, f"ring '{self.name}': no space for a frame within {timeout:g} s")
            if rc < 0:
                _raise(rc, f"reserve {width}x{height} {format_name(code)} in ring '{self.name}'")
            addr = ctypes.addressof(hdrp.contents)
            out = OutFrame(hdrp, self._map, addr - handle.base, self)
            self._pending = out
        return out

    def _commit(self, out: OutFrame) -> None:
        handle = self._handle
        if handle is None:
            raise RingClosed(0, f"producer of ring '{self.name}' was closed before the commit")
        with handle.calls:
            if self._pending is not out or handle.detached:
                raise RingClosed(0, f"producer of ring '{self.name}' was closed before the commit")
            self._pending = None
            rc = self._lib.fr_frame_commit(handle.ptr, out._hdrp)
        if rc < 0:
            _raise(rc, f"commit to ring '{self.name}'")

    def _abort(self, out: OutFrame) -> None:
        handle = self._handle
        if handle is None:
            return
        with handle.calls:
            if self._pending is out and not handle.detached:
                self._pending = None
                self._lib.fr_ring_abort(handle.ptr)

    def write_frame(self, image: np.ndarray, format: Union[str, int] = "bgr24", *,
                    pts: Optional[int] = None, time_base: Union[Fraction, Tuple[int, int], None] = None,
                    flags: int = 0, timeout: Seconds = None) -> int:
        """Copy IMAGE (OpenCV layout, as Frame.array gives) into a new frame and
        commit it; returns its seq. For data that is not produced in place."""
        code = format_code(format)
        if len(_plane_geometry(code, 1, 1)) == 1:
            h, w = image.shape[:2]
        else:  # planar 4:2:0 in OpenCV's layout, as Frame.array gives it: (H*3/2, W)
            h, w = image.shape[0] * 2 // 3, image.shape[1]
        with self.reserve_frame(w, h, code, timeout) as out:
            np.copyto(out.array, image)
            out.pts = pts
            if time_base is not None:
                out.time_base = time_base
            out.flags = flags
            seq = out.seq
        return seq

    def _call(self, fn, *args):
        """FN(fr_ring_t*, *ARGS) under the call lock (RingClosed once closed)."""
        handle = self._calls()
        with handle.calls:
            if handle.detached:
                raise RingClosed(0, f"{self._side} of ring '{self.name}' is closed")
            return fn(handle.ptr, *args)

    def wait_consumers(self, n: int, timeout: Seconds = None) -> None:
        """Wait until at least N consumers are attached (fr_ring_wait_consumers): e.g. every
        lossless reader of a pipeline, before the first frame. Timeout if they did not come."""
        n = _c_int(n, ctypes.c_uint, "n")
        handle = self._calls()
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = self._lib.fr_ring_wait_consumers
        with handle.calls:
            rc = _wait_sliced(lambda ns: wait(handle.ptr, n, ns), deadline, handle,
                              f"producer of ring '{self.name}' was closed while it waited")
        if rc in (-errno.ETIMEDOUT, -errno.EAGAIN):
            raise Timeout(rc, f"ring '{self.name}': fewer than {n} consumers within {timeout:g} s")
        if rc < 0:
            _raise(rc, f"wait for consumers of ring '{self.name}'")

    def mark_eos(self) -> None:
        """Mark end of stream: the consumer reads what is left, then gets EndOfStream."""
        rc = self._call(self._lib.fr_ring_mark_eos)
        if rc < 0:
            _raise(rc, f"mark end of stream on ring '{self.name}'")

    def mark_eos_error(self, reason: str, code: int = -errno.EIO) -> None:
        """End the stream because this producer failed: consumers read what is left,
        then get ProducerFailed with REASON (one line, cut to 127 bytes) and CODE
        (a negative errno value). Raises FrameringError (-EALREADY) if end of
        stream was marked already: the first mark stands."""
        rc = self._call(self._lib.fr_ring_mark_eos_error, _c_int(code, ctypes.c_int, "code"),
                        reason.encode("utf-8", "backslashreplace")[:_lib.RING_EOS_MESSAGE_MAX - 1])
        if rc < 0:
            _raise(rc, f"mark end of stream (error) on ring '{self.name}'")

    def note_drop(self, nbytes: int = 0) -> None:
        """Count a frame the caller chose not to write."""
        self._call(self._lib.fr_ring_note_drop, _c_int(nbytes, ctypes.c_size_t, "nbytes"))

    @property
    def on_full(self) -> str:
        """'block' or 'drop'; settable."""
        return self._on_full

    @on_full.setter
    def on_full(self, policy: str) -> None:
        self._call(self._lib.fr_ring_set_full_policy, _policy(policy))
        self._on_full = policy

    def set_hot_lap(self, nbytes: int = 0, wait: Optional[float] = None) -> None:
        """Keep frames in the front of the ring while the consumers keep up
        (fr_ring_set_hot_lap): they are then written where the consumers
        just read and read while still in the cache. nbytes 0 sizes the lap
        for two frames (the default), HOT_LAP_OFF uses the whole ring in
        turn; wait is how long, in seconds, a write waits for the front
        before it uses the rest of the ring (None: the library's 4 ms)."""
        nbytes = _c_int(nbytes, ctypes.c_uint64, "nbytes")
        if wait is not None and not (math.isfinite(wait) and wait >= 0):
            raise InvalidArgument(-errno.EINVAL, f"hot lap wait of {wait} s")
        wait_ns = -1 if wait is None else _c_int(int(wait * 1e9), ctypes.c_int64, "wait (in ns)")
        rc = self._call(self._lib.fr_ring_set_hot_lap, nbytes, wait_ns)
        if rc < 0:
            _raise(rc, f"set the hot lap of ring '{self.name}'")

    @property
    def max_record(self) -> int:
        """Largest record the ring accepts (capacity / 2)."""
        return int(self._getter(self._lib.fr_ring_max_record))

    def set_meta(self, data: bytes) -> None:
        """Fill the stream description consumers read (Consumer.meta; at most 256 bytes)."""
        buf = ctypes.create_string_buffer(bytes(data), len(data))
        rc = self._call(self._lib.fr_ring_set_meta, buf, len(data))
        if rc < 0:
            _raise(rc, f"set meta of ring '{self.name}'")


from . import aio as _aio  # noqa: E402  (aio uses this module's wait helpers)
