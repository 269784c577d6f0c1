"""color - what a frame's colorimetry says, and turning I420/NV12 samples into BGR the way it says.

The header codes are ITU-T H.273's (libring/include/frame.h); their names come
from the C library (fr_frame_color_name), so Python and the C tools print the same
words. The conversion follows the header: the matrix's Kr/Kb, limited or full
range, each chroma sample repeated over its 2 x 2 pixels (as swscale does at
the same size, so the result is within 3 levels of ffmpeg's). An unspecified matrix is
taken as BT.601 and an unspecified range as limited, as swscale and ffmpeg do.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _lib
from .errors import InvalidArgument

#: Luma weights (Kr, Kb) per matrix code; anything else converts as BT.601.
_KR_KB = {
    _lib.FRAME_MATRIX_BT709: (0.2126, 0.0722),
    _lib.FRAME_MATRIX_FCC: (0.30, 0.11),
    _lib.FRAME_MATRIX_SMPTE240M: (0.212, 0.087),
    _lib.FRAME_MATRIX_BT2020_NCL: (0.2627, 0.0593),
    _lib.FRAME_MATRIX_BT2020_CL: (0.2627, 0.0593),  # converted as NCL, as swscale does
}
_BT601 = (0.299, 0.114)


def color_name(field: int, code: int) -> str:
    """The C library's name of CODE for colorimetry field FIELD (an index into
    _lib.COLOR_FIELDS), or the number as text when it has none."""
    name = _lib.lib().fr_frame_color_name(field, code)
    return name.decode() if name else str(code)


def color_code(field: int, name: str) -> int:
    """The code fr_frame_color_name() calls NAME (a number in text, 0..255, is taken as is);
    InvalidArgument (a ValueError) for anything else."""
    if name.isdecimal() and int(name) < 256:
        return int(name)
    for code in range(256):
        if color_name(field, code) == name:
            return code
    raise InvalidArgument(-errno.EINVAL, f"unknown {_lib.COLOR_FIELDS[field]} {name!r}")


@dataclass(frozen=True)
class Colorimetry:
    """How a frame's samples turn into colour (frame.h; names as framering-dump prints them).

    For i420/nv12 the matrix and range are those of the samples; for bgr24/rgb24/gray8
    made from YUV, ``matrix`` is the one the producer converted with and ``range`` is
    "full" ("rgb": the source was RGB). "unspecified" where the source did not say.
    """

    matrix: str           #: "bt709", "bt601", "bt470bg", "bt2020nc", "rgb", "unspecified", ...
    range: str            #: "limited", "full" or "unspecified"
    primaries: str        #: H.273 colour primaries, FFmpeg's names ("bt709", "bt2020", ...)
    transfer: str         #: H.273 transfer ("bt709", "smpte2084", "arib-std-b67", ...)
    chroma_location: str  #: "left", "center", "topleft", ... or "unspecified"

    @classmethod
    def _from_header(cls, hdr: _lib.FrameHeader) -> "Colorimetry":
        return cls(*(color_name(i, getattr(hdr, f)) for i, f in enumerate(_lib.COLOR_FIELDS)))

    def _to_header(self, hdr: _lib.FrameHeader) -> None:
        values = (self.matrix, self.range, self.primaries, self.transfer, self.chroma_location)
        codes = [color_code(i, v) for i, v in enumerate(values)]  # all checked before any is written
        for f, code in zip(_lib.COLOR_FIELDS, codes):
            setattr(hdr, f, code)


def _upsample(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A chroma plane brought to HEIGHT x WIDTH (float32), each sample repeated
    2 x 2: what swscale's same-size YUV to BGR conversion (ffmpeg -pix_fmt bgr24) does."""
    return np.repeat(np.repeat(plane.astype(np.float32), 2, 0), 2, 1)[:height, :width]


def yuv420_to_bgr(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: int, full_range: bool,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """BGR (H, W, 3) uint8 from 4:2:0 planes Y (H, W), U and V ((H+1)//2, (W+1)//2),
    with the luma weights of MATRIX (a FRAME_MATRIX_* code) and the given range."""
    h, w = y.shape
    kr, kb = _KR_KB.get(matrix, _BT601)
    kg = 1.0 - kr - kb
    yf = y.astype(np.float32)
    cb = _upsample(u, h, w) - 128.0
    cr = _upsample(v, h, w) - 128.0
    if not full_range:  # Y 16..235 and chroma 16..240 onto 0..255
        yf = (yf - 16.0) * (255.0 / 219.0)
        cb *= 255.0 / 224.0
        cr *= 255.0 / 224.0
    r = yf + (2.0 - 2.0 * kr) * cr
    b = yf + (2.0 - 2.0 * kb) * cb
    g = (yf - kr * r - kb * b) / kg
    if out is None:
        out = np.empty((h, w, 3), np.uint8)
    for i, c in enumerate((b, g, r)):
        np.clip(np.rint(c), 0, 255, out=c)
        out[:, :, i] = c
    return out
