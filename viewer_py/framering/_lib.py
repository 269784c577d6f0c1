"""_lib - find libframering-ring.so and declare its C API for ctypes.

The library is loaded with ctypes.CDLL (never PyDLL): every foreign call
releases the GIL, so a consumer blocked in a futex wait inside fr_ring_peek()
does not stop the other Python threads.

Search order (the first that loads wins):
  1. $FRAMERING_LIB (a file path)
  2. next to the package (an installed copy: framering/libframering-ring.so*)
  3. build trees of the source checkout this package lives in:
     <repo>/build*/libring/libframering-ring.so*, newest first; trees built
     with FRAMERING_SANITIZE are left out (an instrumented library cannot be
     loaded into an uninstrumented python3: gcc's ASan aborts the process)
  4. ctypes.util.find_library("framering-ring") (ldconfig / LD_LIBRARY_PATH)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import FrameringError

LIB_BASENAME = "libframering-ring.so"

c_int64_p = ctypes.POINTER(ctypes.c_int64)


class RingStatsStruct(ctypes.Structure):
    """struct fr_ring_stats from ring.h (field order and C types must match)."""

    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("used", ctypes.c_uint64),
        ("records_written", ctypes.c_uint64),
        ("bytes_written", ctypes.c_uint64),
        ("records_dropped", ctypes.c_uint64),
        ("bytes_dropped", ctypes.c_uint64),
        ("records_read", ctypes.c_uint64),
        ("bytes_read", ctypes.c_uint64),
        ("records_skipped", ctypes.c_uint64),
        ("bytes_skipped", ctypes.c_uint64),
        ("producer_futex_waits", ctypes.c_uint64),
        ("producer_futex_wakes", ctypes.c_uint64),
        ("consumer_futex_waits", ctypes.c_uint64),
        ("consumer_futex_wakes", ctypes.c_uint64),
        ("producer_pid", ctypes.c_int32),  # pid_t
        ("consumer_pid", ctypes.c_int32),
        ("producer_alive", ctypes.c_bool),
        ("consumer_alive", ctypes.c_bool),
        ("eos", ctypes.c_bool),
        ("on_full", ctypes.c_int),  # enum ring_full_policy
        ("consumers", ctypes.c_uint),
        ("max_consumers", ctypes.c_uint),
        ("consumers_reaped", ctypes.c_uint64),
        ("eos_error", ctypes.c_int),
    ]


class RingCreateOpts(ctypes.Structure):
    """struct fr_ring_create_opts from ring.h."""

    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("mode", ctypes.c_uint32),  # mode_t
        ("on_full", ctypes.c_int),
        ("max_consumers", ctypes.c_uint),
    ]


class RingAttachOpts(ctypes.Structure):
    """struct fr_ring_attach_opts from ring.h."""

    _fields_ = [
        ("mode", ctypes.c_int),  # enum ring_consumer_mode
        ("wait_ns", ctypes.c_int64),
    ]


class ConsumerInfoStruct(ctypes.Structure):
    """struct fr_ring_consumer_info from ring.h."""

    _fields_ = [
        ("slot", ctypes.c_uint),
        ("pid", ctypes.c_int32),  # pid_t
        ("alive", ctypes.c_bool),
        ("mode", ctypes.c_int),  # enum ring_consumer_mode
        ("records_read", ctypes.c_uint64),
        ("bytes_read", ctypes.c_uint64),
        ("records_skipped", ctypes.c_uint64),
        ("lag_records", ctypes.c_uint64),
        ("lag_bytes", ctypes.c_uint64),
    ]


class FramePlane(ctypes.Structure):
    """struct fr_frame_plane from frame.h."""

    _fields_ = [("offset", ctypes.c_uint32), ("stride", ctypes.c_uint32)]


class FrameHeader(ctypes.Structure):
    """struct fr_frame_header from frame.h: 128 bytes, little-endian."""

    _fields_ = [
        ("magic", ctypes.c_uint32),
        ("version", ctypes.c_uint16),
        ("header_size", ctypes.c_uint16),
        ("fourcc", ctypes.c_uint32),
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("plane_count", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
        ("seq", ctypes.c_uint64),
        ("pts", ctypes.c_int64),
        ("time_base_num", ctypes.c_int32),
        ("time_base_den", ctypes.c_int32),
        ("capture_ns", ctypes.c_uint64),
        ("plane", FramePlane * 4),
        ("image_size", ctypes.c_uint64),
        ("color_matrix", ctypes.c_uint8),
        ("color_range", ctypes.c_uint8),
        ("color_primaries", ctypes.c_uint8),
        ("color_transfer", ctypes.c_uint8),
        ("chroma_location", ctypes.c_uint8),
        ("reserved1", ctypes.c_uint8 * 19),
    ]


assert ctypes.sizeof(FrameHeader) == 128, "struct fr_frame_header must be 128 bytes"

# The constants of frame.h and ring.h the binding mirrors: ctypes cannot read
# a #define, so they are written here once, and tests/python/test_binding.py
# compares every one of them (and every ctypes struct above) with what the C
# compiler makes of the headers. Everything derived from them -- format names,
# plane geometry, sizes -- comes from the library's functions, not from here.
FRAME_HEADER_SIZE = 128
FRAME_ALIGN = 64
FRAME_MAX_PLANES = 4
FRAME_MAX_DIM = 16384
FRAME_FLAG_KEY = 1 << 0
FRAME_FLAG_DISCONTINUITY = 1 << 1
FRAME_FLAG_EOS = 1 << 2
PTS_UNKNOWN = -(1 << 63)  # INT64_MIN
# Colorimetry (frame.h): the header fields in the order of enum frame_color_field,
# and the codes the binding itself acts on (the names come from fr_frame_color_name()).
COLOR_FIELDS = ("color_matrix", "color_range", "color_primaries", "color_transfer", "chroma_location")
FRAME_MATRIX_RGB = 0
FRAME_MATRIX_BT709 = 1
FRAME_MATRIX_UNSPECIFIED = 2
FRAME_MATRIX_FCC = 4
FRAME_MATRIX_BT470BG = 5
FRAME_MATRIX_BT601 = 6
FRAME_MATRIX_SMPTE240M = 7
FRAME_MATRIX_BT2020_NCL = 9
FRAME_MATRIX_BT2020_CL = 10
FRAME_RANGE_UNSPECIFIED = 0
FRAME_RANGE_LIMITED = 1
FRAME_RANGE_FULL = 2
RING_WAIT_FOREVER = -1
RING_FULL_BLOCK = 0
RING_FULL_DROP = 1
RING_META_SIZE = 256
RING_EOS_MESSAGE_MAX = 128
RING_MAX_CONSUMERS = 12
RING_DEFAULT_CONSUMERS = 8
RING_CONSUMER_EVERY = 0
RING_CONSUMER_LATEST = 1


def fourcc(code: str) -> int:
    """FRAME_FOURCC('B','G','R','3') for a 4-character string."""
    b = code.encode("ascii")
    return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)


FMT_BGR24 = fourcc("BGR3")
FMT_RGB24 = fourcc("RGB3")
FMT_GRAY8 = fourcc("GREY")
FMT_I420 = fourcc("I420")
FMT_NV12 = fourcc("NV12")

#: Every FRAME_FMT_* of frame.h (the library has no call that lists them).
FORMATS = (FMT_BGR24, FMT_RGB24, FMT_GRAY8, FMT_I420, FMT_NV12)


def _candidates() -> List[Tuple[str, str]]:
    """(path or name, where it came from) in search order."""
    out: List[Tuple[str, str]] = []
    env = os.environ.get("FRAMERING_LIB")
    if env:
        out.append((env, "$FRAMERING_LIB"))
    here = Path(__file__).resolve().parent
    for p in sorted(here.glob(LIB_BASENAME + "*")):
        out.append((str(p), "next to the package"))
    # viewer_py/framering/_lib.py -> the repository root is two levels up.
    repo = here.parent.parent
    found = [p for build in repo.glob("build*") if not _sanitized_build(build)
             for p in glob.glob(str(build / "libring" / (LIB_BASENAME + "*")))]
    # Newest first, so the tree you built last is the one you test.
    found.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    seen = set()
    for p in found:
        real = os.path.realpath(p)
        if real in seen:
            continue
        seen.add(real)
        out.append((p, "build tree"))
    name = ctypes.util.find_library("framering-ring")
    if name:
        out.append((name, "ctypes.util.find_library"))
    return out


def _sanitized_build(build_dir: Path) -> bool:
    """Whether the CMake build tree BUILD_DIR was configured with FRAMERING_SANITIZE."""
    try:
        with open(build_dir / "CMakeCache.txt", encoding="utf-8", errors="replace") as cache:
            for line in cache:
                if line.startswith("FRAMERING_SANITIZE:"):
                    return bool(line.split("=", 1)[1].strip())
    except OSError:
        pass
    return False


def _declare(lib: ctypes.CDLL) -> None:
    """Set argtypes/restype so ctypes converts (and checks) every argument."""
    vp = ctypes.c_void_p
    vpp = ctypes.POINTER(ctypes.c_void_p)
    sz = ctypes.c_size_t
    i64 = ctypes.c_int64
    cp = ctypes.c_char_p
    protos = {
        "fr_ring_create": (ctypes.c_int, [vpp, cp, ctypes.POINTER(RingCreateOpts)]),
        "fr_ring_replace": (ctypes.c_int, [vp, vpp, ctypes.POINTER(RingCreateOpts)]),
        "fr_ring_open": (ctypes.c_int, [vpp, cp]),
        "fr_ring_attach": (ctypes.c_int, [vpp, cp, ctypes.POINTER(RingAttachOpts)]),
        "fr_ring_consumers": (ctypes.c_int, [vp, ctypes.POINTER(ConsumerInfoStruct), ctypes.c_uint]),
        "fr_ring_wait_consumers": (ctypes.c_int, [vp, ctypes.c_uint, i64]),
        "fr_ring_inspect_consumers": (ctypes.c_int, [cp, ctypes.POINTER(ConsumerInfoStruct), ctypes.c_uint]),
        "fr_ring_open_wait": (ctypes.c_int, [vpp, cp, i64]),
        "fr_ring_close": (ctypes.c_int, [vpp]),
        "fr_ring_detach": (ctypes.c_int, [vp]),
        "fr_ring_interrupt": (ctypes.c_int, [vp]),
        "fr_ring_reserve": (ctypes.c_int, [vp, sz, sz, vpp, i64]),
        "fr_ring_commit": (ctypes.c_int, [vp, sz]),
        "fr_ring_abort": (ctypes.c_int, [vp]),
        "fr_ring_mark_eos": (ctypes.c_int, [vp]),
        "fr_ring_mark_eos_error": (ctypes.c_int, [vp, ctypes.c_int, cp]),
        "fr_ring_end_reason": (ctypes.c_int, [vp, ctypes.c_char_p, sz]),
        "fr_ring_note_drop": (None, [vp, sz]),
        "fr_ring_set_full_policy": (None, [vp, ctypes.c_int]),
        "fr_ring_set_hot_lap": (ctypes.c_int, [vp, ctypes.c_uint64, i64]),
        "fr_ring_max_record": (sz, [vp]),
        "fr_ring_release": (ctypes.c_int, [vp]),
        "fr_ring_unpeek": (ctypes.c_int, [vp]),
        "fr_ring_skip_to_latest": (i64, [vp]),
        "fr_ring_get_stats": (None, [vp, ctypes.POINTER(RingStatsStruct)]),
        "fr_ring_inspect": (ctypes.c_int, [cp, ctypes.POINTER(RingStatsStruct)]),
        "fr_ring_unlink_stale": (ctypes.c_int, [cp]),
        "fr_ring_peer_alive": (ctypes.c_bool, [vp]),
        "fr_ring_mapping": (None, [vp, vpp, ctypes.POINTER(sz)]),
        "fr_ring_name": (cp, [vp]),
        "fr_ring_set_meta": (ctypes.c_int, [vp, vp, sz]),
        "fr_ring_get_meta": (ctypes.c_int, [vp, vp, sz]),
        "fr_ring_strerror": (cp, [ctypes.c_int]),
        "fr_frame_format_from_name": (ctypes.c_uint32, [cp]),
        "fr_frame_format_name": (cp, [ctypes.c_uint32]),
        "fr_frame_image_size": (sz, [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
        "fr_frame_record_size": (sz, [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
        "fr_frame_ring_capacity": (ctypes.c_uint64, [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint]),
        "fr_frame_header_init": (ctypes.c_int, [ctypes.POINTER(FrameHeader), ctypes.c_uint32, ctypes.c_uint32,
                                             ctypes.c_uint32]),
        "fr_frame_plane_rows": (ctypes.c_uint32, [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
        "fr_frame_plane_row_bytes": (ctypes.c_uint32, [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
        "fr_frame_now_ns": (ctypes.c_uint64, []),
        "fr_frame_color_name": (cp, [ctypes.c_int, ctypes.c_uint]),
        "fr_frame_reserve": (ctypes.c_int, [vp, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                         ctypes.POINTER(ctypes.POINTER(FrameHeader)), i64]),
        "fr_frame_commit": (ctypes.c_int, [vp, ctypes.POINTER(FrameHeader)]),
        "fr_frame_peek": (ctypes.c_int, [vp, ctypes.POINTER(FrameHeader), vpp, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_uint64), i64]),
    }
    missing = []
    for name, (restype, argtypes) in protos.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise FrameringError(0, f"{lib._name}: symbols not exported: {', '.join(missing)}")


def load() -> ctypes.CDLL:
    """Load the first library of the search order; raise with the list of places tried."""
    tried: List[str] = []
    for path, where in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            if where == "$FRAMERING_LIB":
                # An explicit choice that fails must not fall back to another copy silently.
                raise FrameringError(0, f"FRAMERING_LIB={path}: cannot load: {e}") from None
            tried.append(f"  {path} ({where}): {e}")
            continue
        _declare(lib)
        return lib
    here = Path(__file__).resolve().parent
    env = os.environ.get("FRAMERING_LIB")
    places = [
        f"  $FRAMERING_LIB ({env!r})" if env else "  $FRAMERING_LIB (not set)",
        f"  {here}/{LIB_BASENAME}*",
        f"  {here.parent.parent}/build*/libring/{LIB_BASENAME}*",
        "  ctypes.util.find_library('framering-ring')",
    ]
    failed = "\n".join(tried) if tried else "  (no candidate file exists)"
    raise FrameringError(
        0,
        f"cannot find {LIB_BASENAME}. Looked in:\n" + "\n".join(places)
        + "\nFailed candidates:\n" + failed
        + "\nBuild it (cmake --build <build> --target ring_shared) or set "
        f"FRAMERING_LIB=/path/to/{LIB_BASENAME}",
    )


_LIB: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, so `import framering` never fails)."""
    global _LIB
    if _LIB is None:
        _LIB = load()
    return _LIB


def lib_path() -> str:
    """Path of the library in use."""
    return lib()._name
