"""test_color - frame.colorimetry and frame.to_bgr(): the header's matrix and range, read back and used, against ffmpeg's own conversion."""

from __future__ import annotations

import functools
import subprocess

import numpy as np
import pytest

import framering

W, H = 320, 240
# framering matrix name -> ffmpeg's name for the same matrix
MATRICES = {"bt601": "smpte170m", "bt709": "bt709", "bt2020nc": "bt2020nc"}


def ffmpeg(args, data=None) -> bytes:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error"] + args, input=data, check=True,
                          capture_output=True, timeout=60).stdout


@functools.lru_cache(maxsize=None)
def yuv_and_bgr(matrix: str, rng: str):
    """One testsrc2 frame as yuv420p made with MATRIX and RANGE, and ffmpeg's BGR of those samples."""
    ffm, ffr = MATRICES[matrix], {"limited": "tv", "full": "pc"}[rng]
    yuv = ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}", "-frames:v", "1", "-vf",
                  f"scale=out_color_matrix={ffm}:out_range={ffr}", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"])
    bgr = ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-i", "-", "-vf",
                  f"scale=in_color_matrix={ffm}:in_range={ffr}", "-pix_fmt", "bgr24", "-f", "rawvideo", "-"], yuv)
    return np.frombuffer(yuv, np.uint8), np.frombuffer(bgr, np.uint8).reshape(H, W, 3)


def send_and_read(ring_name, fmt, planes_bytes, colorimetry):
    """Write one frame of FMT with COLORIMETRY through a ring; return (colorimetry read, to_bgr())."""
    with framering.Producer(ring_name, slots=2, width=W, height=H, format=fmt) as prod, \
            framering.Consumer(ring_name, timeout=0) as cons:
        with prod.reserve_frame(W, H, fmt) as out:
            out.array.reshape(-1)[:] = planes_bytes
            out.colorimetry = colorimetry
        frame = cons.next_frame(timeout=5)
        return frame.colorimetry, frame.to_bgr().copy()


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
@pytest.mark.parametrize("rng", ["limited", "full"])
@pytest.mark.parametrize("matrix", sorted(MATRICES))
def test_to_bgr_follows_the_header(ring_name, matrix, rng, fmt):
    """to_bgr() converts with the header's matrix and range: within 3 levels of ffmpeg's
    conversion of the same samples, and far from it when the header names another matrix."""
    yuv, ref = yuv_and_bgr(matrix, rng)
    data = yuv
    if fmt == "nv12":
        y, u, v = yuv[:W * H], yuv[W * H:W * H * 5 // 4], yuv[W * H * 5 // 4:]
        data = np.concatenate([y, np.stack([u, v], 1).reshape(-1)])
    said = framering.Colorimetry(matrix, rng, "bt709", "bt709", "left")
    got, bgr = send_and_read(ring_name, fmt, data, said)
    assert got == said
    d = np.abs(bgr.astype(np.int16) - ref)
    # swscale rounds through its own fixed-point tables: a few levels, never more
    assert d.max() <= 3 and d.mean() < 1.0, (d.max(), d.mean())
    if matrix != "bt601":
        # the matrix matters: read as BT.601, the same samples are far off
        _, wrong = send_and_read(ring_name, fmt, data, framering.Colorimetry("bt601", rng, "bt709", "bt709", "left"))
        assert np.abs(wrong.astype(np.int16) - ref).mean() > 3.0


def test_unspecified_reads_as_bt601_limited(ring_name):
    """A frame that says nothing converts as swscale and ffmpeg convert an untagged one."""
    yuv, ref = yuv_and_bgr("bt601", "limited")
    said = framering.Colorimetry("unspecified", "unspecified", "unspecified", "unspecified", "unspecified")
    got, bgr = send_and_read(ring_name, "i420", yuv, said)
    assert got == said
    assert np.abs(bgr.astype(np.int16) - ref).max() <= 3


def test_packed_formats_and_bad_names(ring_name):
    """bgr24/rgb24/gray8 to BGR exactly; colorimetry written from Python reads back; an unknown
    name is a ValueError and writes nothing."""
    img = np.random.default_rng(1).integers(0, 256, (H, W, 3), np.uint8)
    with framering.Producer(ring_name, slots=2, width=W, height=H) as prod, \
            framering.Consumer(ring_name, timeout=0) as cons:
        for fmt, data in (("bgr24", img), ("rgb24", img[:, :, ::-1]), ("gray8", img[:, :, 1])):
            with prod.reserve_frame(W, H, fmt) as out:
                out.array[...] = data
                assert out.colorimetry.matrix == "unspecified"  # what a fresh frame says
                with pytest.raises(ValueError):
                    out.colorimetry = framering.Colorimetry("bt999", "full", "bt709", "bt709", "left")
                out.colorimetry = framering.Colorimetry("rgb", "full", "bt709", "iec61966-2-1", "unspecified")
            frame = cons.next_frame(timeout=5)
            assert frame.colorimetry.transfer == "iec61966-2-1" and frame.colorimetry.matrix == "rgb"
            want = img if fmt != "gray8" else np.repeat(img[:, :, 1:2], 3, 2)
            assert np.array_equal(frame.to_bgr(), want), fmt
        assert np.shares_memory(frame.to_bgr(), frame.array) is False  # gray8 gives a new image


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_padded_planes_at_an_even_size_convert(ring_name, fmt):
    """A producer may pad its rows (strides above the row bytes; the library accepts it). Such a
    frame has no (H*3/2, W) view, but to_bgr() converts it all the same -- also at an even size
    in BT.601 limited range, which otherwise goes through OpenCV's cvtColor -- and gives what the
    same samples packed give (within the 3 levels by which its own conversion and OpenCV's differ)."""
    w, h = 32, 24
    yuv = np.random.default_rng(2).integers(16, 236, w * h * 3 // 2, np.uint8)
    y, chroma = yuv[:w * h].reshape(h, w), yuv[w * h:]
    with framering.Producer(ring_name, capacity=1 << 20) as prod, \
            framering.Consumer(ring_name, timeout=0) as cons:
        with prod.reserve_frame(w, h, fmt) as out:
            out.array.reshape(-1)[:] = yuv
        with cons.next_frame(timeout=5) as packed:
            want = packed.to_bgr().copy()
        # The same picture with every row padded to twice its bytes: reserved as a frame twice
        # as wide, then described as w x h with the strides of the wider one.
        with prod.reserve_frame(2 * w, h, fmt) as out:
            hdr = out._hdr
            hdr.width = w
            for p in out.planes:
                p[...] = 0
            off, planes = hdr.plane[0].offset, [y]
            if fmt == "i420":
                planes += [chroma[:w * h // 4].reshape(h // 2, w // 2), chroma[w * h // 4:].reshape(h // 2, w // 2)]
            else:
                planes += [chroma.reshape(h // 2, w)]
            for i, data in enumerate(planes):
                stride = 2 * data.shape[1]
                hdr.plane[i].offset, hdr.plane[i].stride = off, stride
                rows = out._buf[out._off + off:out._off + off + stride * data.shape[0]].reshape(-1, stride)
                rows[:, :data.shape[1]] = data
                off += stride * data.shape[0]
        with cons.next_frame(timeout=5) as padded:
            assert padded.strides[0] == 2 * w and padded.colorimetry.matrix == "unspecified"
            with pytest.raises(ValueError):
                padded.array  # no single view of padded planes
            assert np.abs(padded.to_bgr().astype(np.int16) - want).max() <= 3
