"""test_binding - the ctypes binding agrees with C: struct layouts and constants as the compiler sees them, formats and plane geometry from the library.

Nothing the package uses is a copy of C that could drift: a probe compiled from the
headers reports every ctypes struct field and mirrored constant, and format names and
plane geometry are the library's own answers, checked here at odd sizes too.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from typing import Dict, List, Tuple

import numpy as np
import pytest

import framering
from framering import _lib
from framering import ring as ring_mod
from conftest import REPO

INCLUDE = REPO / "libring" / "include"

#: Every ctypes struct of the binding and the C struct it stands for.
STRUCTS = {
    _lib.RingStatsStruct: "struct fr_ring_stats",
    _lib.RingCreateOpts: "struct fr_ring_create_opts",
    _lib.FrameHeader: "struct fr_frame_header",
    _lib.FramePlane: "struct fr_frame_plane",
}
#: Enum fields: their signedness is the compiler's choice (gcc makes an enum without negative
#: values unsigned); ctypes has no enum type and c_int is the convention.
ENUM_FIELDS = {("struct fr_ring_stats", "on_full"), ("struct fr_ring_create_opts", "on_full")}
#: The constants _lib.py mirrors (Python name: the C name, which carries the FR_ prefix).
CONSTANTS = {name: "FR_FRAME_" + name if name.startswith("FMT_") else "FR_" + name
             for name in ("FRAME_HEADER_SIZE", "FRAME_ALIGN", "FRAME_MAX_PLANES", "FRAME_MAX_DIM",
                          "FRAME_FLAG_KEY", "FRAME_FLAG_DISCONTINUITY", "FRAME_FLAG_EOS",
                          "RING_WAIT_FOREVER", "RING_FULL_BLOCK", "RING_FULL_DROP", "RING_META_SIZE",
                          "RING_EOS_MESSAGE_MAX", "FRAME_MATRIX_RGB", "FRAME_MATRIX_BT709",
                          "FRAME_MATRIX_UNSPECIFIED", "FRAME_MATRIX_BT470BG", "FRAME_MATRIX_BT601",
                          "FRAME_MATRIX_SMPTE240M", "FRAME_MATRIX_BT2020_NCL", "FRAME_MATRIX_BT2020_CL",
                          "FRAME_RANGE_UNSPECIFIED", "FRAME_RANGE_LIMITED", "FRAME_RANGE_FULL",
                          "FMT_BGR24", "FMT_RGB24", "FMT_GRAY8", "FMT_I420", "FMT_NV12")}

#: Dimensions of Frame.array for the packed formats (the rest are planar 4:2:0).
PACKED_SHAPE = {"bgr24": 3, "rgb24": 3, "gray8": 2}
SIZES = [(1, 1), (3, 5), (641, 479), (1919, 1081), (16384, 16384)]
FORMATS = {framering.format_name(code): code for code in _lib.FORMATS}


def _is_scalar(ctype) -> bool:
    return not issubclass(ctype, (ctypes.Array, ctypes.Structure))


def _c_program() -> str:
    """A C program that prints, for every field of every STRUCTS entry, its offset, size and
    signedness, then the sizeof of each struct and the value of each CONSTANTS entry."""
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include <string.h>',
             '#include "ring.h"', '#include "frame.h"', 'int main(void)', '{']
    for cls, cname in STRUCTS.items():
        lines.append(f'\t{{ {cname} v; memset(&v, 0, sizeof v);')
        lines.append(f'\t  printf("sizeof {cname}|%zu\\n", sizeof v);')
        for field, ctype in cls._fields_:
            signed = f"(v.{field} = 0, v.{field} -= 1, v.{field} < 0)" if _is_scalar(ctype) else "-1"
            lines.append(f'\t  printf("field {cname}|{field}|%zu|%zu|%d\\n", offsetof({cname}, {field}), '
                         f'sizeof v.{field}, (int){signed});')
        lines.append('\t}')
    for cname in CONSTANTS.values():
        lines.append(f'\tprintf("const {cname}|%lld\\n", (long long){cname});')
    lines += ['\treturn 0;', '}']
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def c_view(tmp_path_factory) -> Dict[str, str]:
    """What the C compiler says about the headers (compiled from _c_program())."""
    cc = os.environ.get("FRAMERING_CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler (set FRAMERING_CC or install gcc): struct layouts not checked against C")
    tmp = tmp_path_factory.mktemp("abi")
    (tmp / "abi.c").write_text(_c_program())
    build = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-w", f"-I{INCLUDE}", str(tmp / "abi.c"),
                            "-o", str(tmp / "abi")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert build.returncode == 0, f"{cc} cannot compile the layout probe:\n{build.stdout.decode()}"
    out = subprocess.run([str(tmp / "abi")], stdout=subprocess.PIPE, check=True).stdout.decode()
    # "sizeof struct x|N", "field struct x|name|offset|size|signed", "const NAME|value"
    return dict(_probe_line(line) for line in out.splitlines())


def _probe_line(line: str) -> Tuple[str, str]:
    """A line of the probe as (key, value): ("sizeof struct x", "N"), ("field struct x|name",
    "offset|size|signed") or ("const NAME", "value")."""
    if line.startswith("field "):
        cname, field, rest = line.split("|", 2)
        return f"{cname}|{field}", rest
    key, value = line.split("|", 1)
    return key, value


def _header_fields(cname: str) -> List[str]:
    """The field names of C struct CNAME in declaration order, read from the public headers
    (the compiler can check a field it is told about, but cannot list them)."""
    text = "\n".join((INCLUDE / h).read_text() for h in ("ring.h", "frame.h"))
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
    body = re.search(re.escape(cname) + r"\s*\{(.*?)\};", text, re.S)
    assert body, f"{cname} not found in {INCLUDE}"
    names = []
    for decl in filter(str.strip, body.group(1).split(";")):
        for declarator in decl.split(","):
            names.append(re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*$", declarator.strip())[0])
    return names


@pytest.mark.parametrize("cls", list(STRUCTS), ids=lambda c: c.__name__)
def test_struct_fields_are_the_headers(cls):
    """The ctypes struct names every field of the C struct, in order (none missing, none extra)."""
    assert [f for f, _ in cls._fields_] == _header_fields(STRUCTS[cls])


@pytest.mark.parametrize("cls", list(STRUCTS), ids=lambda c: c.__name__)
def test_struct_layout_matches_c(c_view, cls):
    """Size of the struct, and offset, size and signedness of every field, as the compiler has them."""
    cname = STRUCTS[cls]
    assert int(c_view[f"sizeof {cname}"]) == ctypes.sizeof(cls), f"sizeof({cname})"
    for field, ctype in cls._fields_:
        offset, size, signed = map(int, c_view[f"field {cname}|{field}"].split("|"))
        desc = getattr(cls, field)
        assert (offset, size) == (desc.offset, desc.size), f"{cname}.{field}: C (offset, size) {offset, size}"
        if signed >= 0 and (cname, field) not in ENUM_FIELDS:
            assert bool(signed) == (ctype(-1).value < 0), f"{cname}.{field}: signedness differs from C"


def test_constants_match_c(c_view):
    wrong = {name: (getattr(_lib, name), int(c_view[f"const {cname}"])) for name, cname in CONSTANTS.items()
             if getattr(_lib, name) != int(c_view[f"const {cname}"])}
    assert not wrong, f"_lib.py constants differ from C (python, C): {wrong}"


def test_every_c_format_is_known():
    """_lib.FORMATS lists every FR_FRAME_FMT_* of frame.h (the library has no call that lists them)."""
    in_header = set(re.findall(r"^#define (FR_FRAME_FMT_\w+)", (INCLUDE / "frame.h").read_text(), re.M))
    mirrored = [n for n in CONSTANTS if n.startswith("FMT_")]
    assert in_header == {CONSTANTS[n] for n in mirrored}
    assert sorted(_lib.FORMATS) == sorted(getattr(_lib, n) for n in mirrored)
    assert all(_lib.lib().fr_frame_format_name(code) for code in _lib.FORMATS)


def test_format_names_come_from_c():
    lib = _lib.lib()
    for name, code in FORMATS.items():
        assert framering.format_name(code) == name
        assert framering.format_code(code) == code
        for alias in (name, name.upper(), name.capitalize()):
            assert framering.format_code(alias) == lib.fr_frame_format_from_name(alias.encode()) == code
    for alias, name in (("gray", "gray8"), ("yuv420p", "i420"), ("YUV420P", "i420")):
        assert framering.format_code(alias) == lib.fr_frame_format_from_name(alias.encode()) == FORMATS[name]
    assert framering.format_name(0x12345) == "0x00012345"


def _c_header(code: int, width: int, height: int) -> _lib.FrameHeader:
    """The header fr_frame_header_init() makes for a frame of this format and size."""
    hdr = _lib.FrameHeader()
    assert _lib.lib().fr_frame_header_init(ctypes.byref(hdr), code, width, height) == 0
    return hdr


def _c_geometry(code: int, width: int, height: int) -> List[Tuple[int, int]]:
    """(rows, row_bytes) per plane straight from the library, up to the header's plane count."""
    lib = _lib.lib()
    return [(lib.fr_frame_plane_rows(code, height, p), lib.fr_frame_plane_row_bytes(code, width, p))
            for p in range(_c_header(code, width, height).plane_count)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_plane_geometry_matches_c(fmt, size):
    """What the package views (planes, record length) is what C lays out, at odd sizes too."""
    code, (w, h) = FORMATS[fmt], size
    lib = _lib.lib()
    geometry = ring_mod._plane_geometry(code, w, h)
    assert list(geometry) == _c_geometry(code, w, h)
    hdr = _c_header(code, w, h)
    assert [hdr.plane[i].stride for i in range(hdr.plane_count)] == [rb for _, rb in geometry]
    assert sum(r * rb for r, rb in geometry) == lib.fr_frame_image_size(code, w, h) == hdr.image_size
    assert ring_mod._record_len(hdr) == lib.fr_frame_record_size(code, w, h)
    # One past the largest size: the library refuses it, and so does the package.
    assert ring_mod._plane_geometry(code, _lib.FRAME_MAX_DIM + 1, h) == ()
    with pytest.raises(framering.InvalidArgument):
        framering.capacity_for(2, w, _lib.FRAME_MAX_DIM + 1, fmt)


def test_pts_unknown_matches_c():
    hdr = _c_header(_lib.FMT_GRAY8, 2, 2)
    assert hdr.pts == _lib.PTS_UNKNOWN and hdr.header_size == _lib.FRAME_HEADER_SIZE


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_views_of_odd_sized_frames(ring_name, fmt):
    """Frames through a ring at odd sizes: each plane view has C's rows, row bytes and strides,
    and .array is the OpenCV shape (planar 4:2:0 only at even sizes)."""
    sizes = [s for s in SIZES if s[0] * s[1] < 4096 * 4096] + [(640, 480)]
    largest = max(sizes, key=lambda s: s[0] * s[1])
    with framering.Producer(ring_name, slots=2, width=largest[0], height=largest[1], format=fmt) as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        for w, h in sizes:
            with prod.reserve_frame(w, h, fmt) as out:
                for i, plane in enumerate(out.planes):
                    plane[:] = i + 1
            with cons.next_frame(timeout=1) as frame:
                geometry = _c_geometry(FORMATS[fmt], w, h)
                assert [p.shape for p in frame.planes] == geometry
                assert [p.strides[0] for p in frame.planes] == list(frame.strides)
                assert [int(p.min()) for p in frame.planes] == [int(p.max()) for p in frame.planes] \
                    == list(range(1, len(geometry) + 1))
                if fmt in PACKED_SHAPE:
                    assert frame.array.shape == (h, w, 3)[:PACKED_SHAPE[fmt]]
                elif w % 2 == 0 and h % 2 == 0:
                    assert frame.array.shape == (h * 3 // 2, w)
                    assert np.shares_memory(frame.array, frame.planes[-1])
                else:
                    with pytest.raises(ValueError, match="use frame.planes") as ei:
                        frame.array
                    assert isinstance(ei.value, framering.InvalidArgument)
                copy = frame.copy()
            assert [int(p.max()) for p in copy.planes] == list(range(1, len(geometry) + 1))


def test_geometry_is_cached_per_format_and_size():
    ring_mod._plane_geometry.cache_clear()
    for _ in range(3):
        ring_mod._plane_geometry(_lib.FMT_I420, 641, 479)
    info = ring_mod._plane_geometry.cache_info()
    assert (info.hits, info.misses) == (2, 1) and info.maxsize is not None
