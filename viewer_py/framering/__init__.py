"""framering - read and write raw video frames in a framering shared-memory ring, zero-copy, from Python.

A C producer (framering-capture) decodes video into a ring; this package maps
its frames as numpy arrays without copying a byte, and can itself produce
frames other programs (framering-view, framering-dump) read:

    import framering, cv2
    with framering.Consumer("framering", timeout=5) as cons:
        for frame in cons:                       # stops at end of stream
            img = frame.array                    # (H, W, 3) uint8 view of shared memory
            print(frame.seq, frame.pts_seconds, frame.latency, img[::64, ::64].mean())

    with framering.Producer("edges", slots=4, width=w, height=h, format="gray8") as prod:
        with prod.reserve_frame(w, h, "gray8") as out:
            cv2.Canny(gray, 50, 150, edges=out.array)   # written in place, committed on exit

Errors are exceptions derived from FrameringError (RingNotFound, RingBusy,
ForeignRing and its RingShrunk, PeerDied, Timeout, EndOfStream, ProducerFailed, RingFull,
FrameReleased, RingClosed, InvalidFrame, ConsumerDetached, InvalidArgument);
Timeout is also a TimeoutError and InvalidArgument a ValueError, so code that
catches the builtins catches them. End of stream: next_frame()/latest() raise
EndOfStream, and iterating a Consumer simply ends; a producer that failed ends the
stream with ProducerFailed (its ``reason`` says why), which iteration raises.

The shared library libframering-ring.so is found via $FRAMERING_LIB, next to
this package, the build trees of the source checkout (newest first), then
the system's library path; see framering.library_path().

OpenCV code written for cv2.VideoCapture switches with one line:
``cap = framering.VideoCapture("cam0")`` (see framering.videocapture for what
differs: read() gives a read-only view unless copy=True). asyncio:
``frame = await cons.anext_frame()`` and ``async for frame in cons`` never block
the event loop, and a cancelled wait loses and holds nothing (framering.aio).

The OpenCV viewer: python3 -m framering.view NAME  (--help).
"""

from .errors import (
    ConsumerDetached,
    EndOfStream,
    ForeignRing,
    FrameReleased,
    FrameringError,
    InvalidArgument,
    InvalidFrame,
    PeerDied,
    ProducerFailed,
    RingBusy,
    RingClosed,
    RingFull,
    RingNotFound,
    RingShrunk,
    Timeout,
)
from .ring import (
    HOT_LAP_OFF,
    WAIT_SLICE,
    Consumer,
    ConsumerInfo,
    Frame,
    OutFrame,
    Producer,
    RingStats,
    capacity_for,
    format_code,
    format_name,
    inspect,
    inspect_consumers,
    now_ns,
    unlink_stale,
)
from ._lib import lib_path as library_path
from .color import Colorimetry
from .videocapture import VideoCapture

__version__ = "0.5.1"  # = project(framering VERSION) in CMakeLists.txt (test_version_is_the_projects)

__all__ = [
    "Consumer", "Producer", "Frame", "OutFrame", "RingStats", "ConsumerInfo", "Colorimetry", "VideoCapture",
    "FrameringError", "RingNotFound", "RingBusy", "ForeignRing", "PeerDied", "Timeout",
    "EndOfStream", "ProducerFailed", "RingFull", "FrameReleased", "RingClosed", "RingShrunk", "InvalidFrame",
    "ConsumerDetached", "InvalidArgument",
    "inspect", "inspect_consumers", "unlink_stale", "capacity_for", "format_code", "format_name", "now_ns",
    "library_path", "WAIT_SLICE", "HOT_LAP_OFF",
]
