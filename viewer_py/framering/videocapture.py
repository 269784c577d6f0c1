"""videocapture - framering.VideoCapture, a drop-in for cv2.VideoCapture that reads a ring.

Existing OpenCV code switches by changing one line:

    cap = cv2.VideoCapture("video.mp4")          # before: this process decodes
    cap = framering.VideoCapture("cam0")         # after: framering-capture -r cam0 decodes, once for all readers
    while cap.isOpened():
        ok, img = cap.read()                     # (H, W, 3) uint8 BGR
        if not ok:
            break
        ...
    cap.release()

What differs from cv2.VideoCapture, and why:

* ``img`` is a zero-copy, **read-only** view of the frame in shared memory, valid
  until the next read()/grab() (or release()): after that the producer may write
  a newer frame there. Code that keeps images, or draws on them in place
  (``cv2.circle(img, ...)``), reads with ``read(copy=True)`` or opens with
  ``VideoCapture(name, copy=True)``: then every image is a private, writable
  copy, as cv2's are.
* Pixels: framering-capture --format bgr24 -s source decodes and converts as the
  ffmpeg CLI does, and so does cv2 for an untagged or BT.601 source: the images
  are the same, byte for byte. A source tagged BT.709 (most HD video) differs:
  cv2 4.6 converts it as BT.601 regardless, framering-capture with its matrix.
* A ring that is not bgr24 (rgb24, gray8, i420, nv12) is converted to BGR with
  ``frame.to_bgr()``, as cv2 converts whatever it decodes: that is a copy (the
  image is then private and stays valid). ``set(CAP_PROP_CONVERT_RGB, 0)``
  gives the frame as it lies in the ring instead (``frame.array``, zero-copy:
  (H, W) gray, (H*3/2, W) i420/nv12), as cv2's raw mode does. A 4:2:0 frame that is no
  such view (padded planes, from a producer with its own strides; an odd size) comes as its
  planes packed back to back, a copy: (H*3/2, W) at an even size, which cvtColor takes, and
  one row (1, N) at an odd one, which no image shape fits (as cv2 gives raw buffers).
* cv2's signatures ``VideoCapture(name, apiPreference[, params])`` and ``open(name,
  apiPreference[, params])`` work. apiPreference (cv2.CAP_ANY, cv2.CAP_FFMPEG, ...: any
  integer) is ignored: which backend decodes is the producer's choice, and a ring has one
  way in. params are cv2's (prop, value, ...) pairs: CAP_PROP_OPEN_TIMEOUT_MSEC and
  CAP_PROP_READ_TIMEOUT_MSEC set ``timeout`` (for that open) and ``read_timeout``,
  CAP_PROP_CONVERT_RGB does what set() does; any other makes open() False (``last_error``
  names it), as cv2's FFmpeg backend refuses a parameter it does not support.
* Opening waits up to ``timeout`` seconds for a ring of that name with a live
  producer. A ring that does not come, is busy (all consumer slots taken) or is
  not a ring makes isOpened() False, as cv2 does for a file it cannot open
  (no exception); ``last_error`` keeps the exception that said why.
* read() waits as long as the producer lives (a camera's read blocks too;
  ``read_timeout`` bounds it). It returns (False, None) at end of stream (and
  on every read after it; isOpened() stays True, as cv2's does at the end of a
  file), when the producer died or failed (``last_error`` says which), after
  release(), or when read_timeout ran out (``last_error`` is a Timeout; a later
  read may succeed). A record that is not a valid frame is skipped.
* ``mode="every"`` (default) reads every frame in order, like a file (a slow
  reader makes a file producer wait); ``mode="latest"`` always returns the
  newest frame and never slows the producer or other readers, like a live
  camera whose old frames are dropped.
* get(): CAP_PROP_FRAME_WIDTH/HEIGHT (of the last frame; before the first, what
  framering-capture says it writes, in the ring's meta area, which it fills just
  after creating the ring: 0 until then, and with another producer), CAP_PROP_FPS (the source's nominal rate as
  framering-capture records it; 0 if unknown), CAP_PROP_POS_FRAMES (the ring's
  frame number after the last frame read: frames read so far, plus any skipped
  in "latest" mode), CAP_PROP_POS_MSEC (the last frame's pts in milliseconds),
  CAP_PROP_FRAME_COUNT (-1: a ring has no length), CAP_PROP_CONVERT_RGB, and
  CAP_PROP_FOURCC / CAP_PROP_FORMAT as cv2 reports them for BGR. Anything else: 0.
  set(): only CAP_PROP_CONVERT_RGB (True); the rest -- seeking, a size, a rate --
  is the producer's business (False, as cv2 answers for a property a backend
  does not support). While no ring is open (before open(), after it failed, after
  release()), get() is 0.0 and set() False for every property, as cv2's.

Frame headers (seq, pts, capture time, latency) are at ``cap.frame``.
"""

from __future__ import annotations

import errno
import operator
import struct
from types import TracebackType
from typing import Optional, Sequence, Tuple, Type

import numpy as np

from .errors import EndOfStream, FrameringError, InvalidArgument, InvalidFrame
from .ring import Consumer, Frame, _planes_packed

# cv2's property numbers (videoio.hpp): the same ints, so cv2.CAP_PROP_* work unchanged
# and this module does not need OpenCV.
CAP_PROP_POS_MSEC = 0
CAP_PROP_POS_FRAMES = 1
CAP_PROP_FRAME_WIDTH = 3
CAP_PROP_FRAME_HEIGHT = 4
CAP_PROP_FPS = 5
CAP_PROP_FOURCC = 6
CAP_PROP_FRAME_COUNT = 7
CAP_PROP_FORMAT = 8
CAP_PROP_CONVERT_RGB = 16
CAP_PROP_OPEN_TIMEOUT_MSEC = 53
CAP_PROP_READ_TIMEOUT_MSEC = 54
CAP_ANY = 0

_BGR24_FOURCC = struct.unpack("<I", b"BGR3")[0]  # what cv2 reports for its BGR output
_CV_8UC3 = 16

# app/common/capture_meta.h: what framering-capture keeps in the ring's meta area.
_CAPTURE_META = struct.Struct("<IHHIIIIIiiiiI")
_CAPTURE_META_MAGIC = 0x4D504143


def _capture_meta(cons: Consumer) -> Optional[dict]:
    """Width, height and nominal fps from framering-capture's stream description, or None
    if the producer left none (another producer's meta area is not ours to read)."""
    try:
        raw = cons.meta
    except FrameringError:
        return None
    if len(raw) < _CAPTURE_META.size:
        return None
    magic, version, _size, _fourcc, w, h, _sw, _sh, _tbn, _tbd, fps_n, fps_d, _flags = _CAPTURE_META.unpack_from(raw)
    if magic != _CAPTURE_META_MAGIC or version < 1:
        return None
    return {"width": w, "height": h, "fps": fps_n / fps_d if fps_n > 0 and fps_d > 0 else 0.0}


def _raw_image(frame: Frame) -> np.ndarray:
    """FRAME as the ring holds it (raw mode): frame.array, or for a 4:2:0 frame that is no
    (H*3/2, W) view its planes packed back to back (a copy), (H*3/2, W) at an even size and
    (1, N) at an odd one."""
    if frame.plane_count == 1 or _planes_packed(frame._hdr):
        return frame.array
    packed = np.concatenate([p.ravel() for p in frame.planes])
    even = frame.width % 2 == 0 and frame.height % 2 == 0
    return packed.reshape(-1, frame.width) if even else packed.reshape(1, -1)


class VideoCapture:
    """cv2.VideoCapture's interface over a framering ring (see the module docstring).

    >>> cap = framering.VideoCapture("cam0")          # doctest: +SKIP
    >>> ok, img = cap.read()                          # img: read-only view until the next read

    Args:
        name: ring name (framering-capture -r NAME); None: open() it later.
        apiPreference: cv2's backend preference, accepted and ignored (see open()).
        params: cv2's open parameters, (prop, value) pairs (see open()).
        mode: "every" (each frame in order) or "latest" (always the newest).
        timeout: seconds open() waits for the ring (None: forever, 0: not at all).
        read_timeout: seconds read()/grab() wait for a frame (None: as long as the producer lives).
        copy: the default of read(copy=...): True gives private, writable images.

    Raises InvalidArgument (a ValueError) for a bad mode: a mistake in the caller, unlike a
    ring that cannot be opened (isOpened() False).
    """

    def __init__(self, name: Optional[str] = None, apiPreference: int = CAP_ANY,  # noqa: N803  (cv2's name)
                 params: Sequence[int] = (), *, mode: str = "every", timeout: Optional[float] = 5.0,
                 read_timeout: Optional[float] = None, copy: bool = False) -> None:
        if mode not in ("every", "latest"):  # a bug in the caller, not a ring that cannot be opened
            raise InvalidArgument(-errno.EINVAL, f"mode must be 'every' or 'latest', not {mode!r}")
        self.mode = mode
        self.timeout = timeout
        #: Seconds read()/grab() wait for a frame (None: as long as the producer lives).
        self.read_timeout = read_timeout
        #: Default of read(copy=...) and retrieve(copy=...).
        self.copy = copy
        #: The exception behind the last False from open()/read()/grab(), None after a success.
        self.last_error: Optional[BaseException] = None
        self._cons: Optional[Consumer] = None
        self._frame: Optional[Frame] = None
        self._convert = True
        self._meta: Optional[dict] = None
        self._pos, self._msec, self._size = 0, 0.0, None
        if name is not None:
            self.open(name, apiPreference, params)

    def open(self, name: str, apiPreference: int = CAP_ANY, params: Sequence[int] = ()) -> bool:  # noqa: N803
        """Attach to ring NAME (closing what was open); False if it cannot be read (last_error says why).

        APIPREFERENCE (cv2.CAP_*, an int) is ignored: the producer decodes. PARAMS are cv2's
        (prop, value, ...) pairs: CAP_PROP_OPEN_TIMEOUT_MSEC (this open's timeout),
        CAP_PROP_READ_TIMEOUT_MSEC (read_timeout) and CAP_PROP_CONVERT_RGB (as set()); any other
        makes open() False, as cv2 does for a parameter its backend does not support. TypeError
        for a preference that is not an int, InvalidArgument for PARAMS of odd length."""
        operator.index(apiPreference)  # cv2 refuses anything but an int, too
        values = [operator.index(v) for v in params]
        if len(values) % 2:
            raise InvalidArgument(-errno.EINVAL, f"params {values}: (property, value) pairs, not an odd count")
        self.release()
        self._pos, self._msec, self._size = 0, 0.0, None
        timeout, read_timeout, convert = self.timeout, self.read_timeout, None
        for prop, value in zip(values[0::2], values[1::2]):
            if prop == CAP_PROP_OPEN_TIMEOUT_MSEC:
                timeout = value / 1000
            elif prop == CAP_PROP_READ_TIMEOUT_MSEC:
                read_timeout = value / 1000
            elif prop == CAP_PROP_CONVERT_RGB:
                convert = bool(value)
            else:
                self.last_error = InvalidArgument(-errno.EINVAL, f"open parameter {prop} is not supported (only"
                                                  " CAP_PROP_OPEN_TIMEOUT_MSEC, _READ_TIMEOUT_MSEC, _CONVERT_RGB)")
                return False
        try:
            self._cons = Consumer(name, timeout=timeout, mode=self.mode)
        except FrameringError as e:
            self.last_error = e
            return False
        self.last_error = None
        self._meta = _capture_meta(self._cons)
        self.read_timeout = read_timeout
        if convert is not None:
            self._convert = convert
        return True

    def isOpened(self) -> bool:  # noqa: N802  (cv2's name)
        """Whether a ring is attached: False after a failed open() or release(); True at the end of
        the stream, as cv2 stays open at the end of a file (read() then says (False, None))."""
        return self._cons is not None

    def grab(self) -> bool:
        """Take the next frame (the newest in "latest" mode), releasing the one before; False
        at end of stream, when the producer died or failed, after read_timeout, or when closed.
        isOpened() stays True after the end, as cv2's does for a file: release() detaches."""
        cons = self._cons
        self._frame = None
        if cons is None:
            return False
        while True:
            try:
                self._frame = cons.next_frame(self.read_timeout)
            except InvalidFrame:
                continue  # skipped and counted in cons.invalid_frames
            except EndOfStream:
                self.last_error = None  # the end; every later read says so again
                return False
            except FrameringError as e:  # Timeout (the producer lives: try again), PeerDied, ProducerFailed, ...
                self.last_error = e
                return False
            f = self._frame
            self._pos, self._size = f.seq + 1, (f.width, f.height)
            t = f.pts_seconds
            self._msec = t * 1000.0 if t is not None else 0.0
            self.last_error = None
            return True

    def retrieve(self, image: Optional[np.ndarray] = None, flag: int = 0, *,
                 copy: Optional[bool] = None) -> Tuple[bool, Optional[np.ndarray]]:
        """The frame grab() took, as (ok, image): BGR (H, W, 3) uint8; a read-only zero-copy view of
        a bgr24 ring unless COPY (default: the capture's ``copy``) or IMAGE asks for a private one:
        IMAGE is filled if it fits (shape, dtype, writable), else a new image is made, as cv2
        does. Non-BGR rings are converted (a copy). (False, None) if no frame was grabbed. FLAG is
        cv2's channel selector, accepted and ignored."""
        frame = self._frame
        if frame is None or frame.released:
            return False, None
        copy = (self.copy if copy is None else copy) or image is not None
        if not self._convert:  # CAP_PROP_CONVERT_RGB off: the frame as the ring holds it
            raw = _raw_image(frame)
            if image is not None and image.shape == raw.shape and image.dtype == raw.dtype and image.flags.writeable:
                np.copyto(image, raw)
                return True, image
            return True, raw.copy() if copy else raw
        out = image if (image is not None and image.shape == (frame.height, frame.width, 3)
                        and image.dtype == np.uint8 and image.flags.writeable) else None
        img = frame.to_bgr(out)
        if copy and out is None and frame.format == "bgr24":
            img = img.copy()  # the only case where to_bgr() returns the shared view
        return True, img

    def read(self, image: Optional[np.ndarray] = None, *, copy: Optional[bool] = None
             ) -> Tuple[bool, Optional[np.ndarray]]:
        """grab() and retrieve(): (True, image) or (False, None). The image of a bgr24 ring is a
        read-only view valid until the next read()/grab(); COPY=True (or the capture's ``copy``)
        gives a private, writable copy, as does passing IMAGE to be filled."""
        if not self.grab():
            return False, None
        return self.retrieve(image, copy=copy)

    def release(self) -> None:
        """Detach from the ring (its consumer slot is free at once); idempotent. Images already
        returned stay readable (never a crash) but may show newer data."""
        cons, self._cons, self._frame = self._cons, None, None
        if cons is not None:
            cons.close()

    def get(self, prop_id: int) -> float:
        """A property (cv2.CAP_PROP_*; see the module docstring for which); 0.0 if unsupported,
        and for every property while no ring is open (as cv2 answers)."""
        if self._cons is None:
            return 0.0
        if self._meta is None:
            # framering-capture writes it just after creating the ring: we may have come first.
            self._meta = _capture_meta(self._cons)
        meta = self._meta or {}
        size = self._size or (meta.get("width", 0), meta.get("height", 0))
        if prop_id == CAP_PROP_FRAME_WIDTH:
            return float(size[0])
        if prop_id == CAP_PROP_FRAME_HEIGHT:
            return float(size[1])
        if prop_id == CAP_PROP_FPS:
            return float(meta.get("fps", 0.0))
        if prop_id == CAP_PROP_POS_FRAMES:
            return float(self._pos)
        if prop_id == CAP_PROP_POS_MSEC:
            return self._msec
        if prop_id == CAP_PROP_FRAME_COUNT:
            return -1.0
        if prop_id == CAP_PROP_CONVERT_RGB:
            return 1.0 if self._convert else 0.0
        if prop_id == CAP_PROP_FOURCC:
            return float(_BGR24_FOURCC) if self._convert else 0.0
        if prop_id == CAP_PROP_FORMAT:
            return float(_CV_8UC3) if self._convert else -1.0
        return 0.0

    def set(self, prop_id: int, value: float) -> bool:
        """Set a property: only CAP_PROP_CONVERT_RGB (0: frames as the ring holds them) is
        supported; anything else is the producer's to choose and returns False, as does any set()
        while no ring is open (as cv2 answers)."""
        if prop_id == CAP_PROP_CONVERT_RGB and self._cons is not None:
            self._convert = bool(value)
            return True
        return False

    @property
    def frame(self) -> Optional[Frame]:
        """The framering Frame of the last grab() (header: seq, pts, capture_ns, latency, ...), or None."""
        return self._frame

    @property
    def consumer(self) -> Optional[Consumer]:
        """The Consumer underneath (None when not open): stats, consumers(), skip_to_latest()."""
        return self._cons

    def getBackendName(self) -> str:  # noqa: N802  (cv2's name)
        """'framering'."""
        return "framering"

    def __enter__(self) -> "VideoCapture":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self) -> str:
        cons = self._cons
        state = f"{cons.name!r} {self.mode}" if cons is not None else "closed"
        return f"<framering.VideoCapture {state}>"
