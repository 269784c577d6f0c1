"""test_zero_copy - frame arrays are views of the ring's shared memory: shapes, strides, header fields, copy()."""

from __future__ import annotations

import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

import framering


@pytest.fixture
def pair(ring_name):
    """An in-process producer and consumer on the same ring."""
    prod = framering.Producer(ring_name, slots=4, width=64, height=48, format="bgr24")
    cons = framering.Consumer(ring_name, timeout=2)
    yield prod, cons
    cons.close()
    prod.close()


def _pattern(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w, c) if c > 1 else (h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def test_views_share_ring_memory(pair):
    prod, cons = pair
    img = _pattern(48, 64)
    prod.write_frame(img, "bgr24", pts=5)
    with cons.next_frame(timeout=2) as f:
        a, b = f.array, f.array
        assert a is not b
        assert np.shares_memory(a, b), "two views of one frame must be the same memory"
        assert np.shares_memory(a, f.planes[0])
        base, size = cons.mapping
        addr = a.__array_interface__["data"][0]
        assert base <= addr and addr + a.nbytes <= base + size, "array data must lie inside fr_ring_mapping()"
        assert addr == f.address + f._hdr.plane[0].offset
        # The frame record is 64-byte aligned (FRAME_ALIGN), so the pixels too.
        assert f.address % 64 == 0
        np.testing.assert_array_equal(a, img)
        assert a.strides == (64 * 3, 3, 1) and a.strides[0] == f.strides[0]
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0, 0, 0] = 1
        with pytest.raises(ValueError):
            a.flags.writeable = True


def test_producer_write_seen_through_existing_view(pair):
    prod, cons = pair
    with prod.reserve_frame(64, 48, "bgr24") as out:
        out.array[:] = 10
        # A committed record is not normally modified; the test keeps a
        # writable producer view to show the consumer reads the same bytes.
        writer = out.array
        pbase, _ = prod.mapping
    f = cons.next_frame(timeout=2)
    view = f.array
    assert int(view[5, 5, 1]) == 10
    writer[5, 5, 1] = 200
    writer[47, 63, :] = (1, 2, 3)
    assert int(view[5, 5, 1]) == 200, "the consumer's existing view must show the producer's write"
    assert tuple(view[47, 63]) == (1, 2, 3)
    # Same bytes, two mappings (producer and consumer map the segment separately).
    caddr = view.__array_interface__["data"][0] - cons.mapping[0]
    paddr = writer.__array_interface__["data"][0] - pbase
    assert caddr == paddr
    f.release()


def test_out_frame_written_in_place_by_opencv(pair, ring_name):
    prod, cons = pair
    gray = _pattern(48, 64, 1, seed=3)
    with prod.reserve_frame(64, 48, "gray8") as out:
        dst = out.array
        addr = dst.__array_interface__["data"][0]
        res = cv2.Canny(gray, 50, 150, edges=dst)
        # OpenCV wrote into our buffer: same address, no new allocation.
        assert res.__array_interface__["data"][0] == addr
        assert np.shares_memory(res, dst)
        assert dst.flags.writeable
    with cons.next_frame(timeout=2) as f:
        np.testing.assert_array_equal(f.array, cv2.Canny(gray, 50, 150))
        assert f.format == "gray8" and f.array.shape == (48, 64)


@pytest.mark.parametrize("fmt,w,h,shape", [
    ("bgr24", 64, 48, (48, 64, 3)),
    ("rgb24", 30, 17, (17, 30, 3)),
    ("gray8", 33, 7, (7, 33)),
    ("i420", 64, 48, (72, 64)),
    ("nv12", 64, 48, (72, 64)),
])
def test_formats_shapes_and_roundtrip(pair, fmt, w, h, shape):
    prod, cons = pair
    img = np.arange(np.prod(shape), dtype=np.uint64).astype(np.uint8).reshape(shape)
    prod.write_frame(img, fmt, pts=7, time_base=(1, 25))
    with cons.next_frame(timeout=2) as f:
        assert f.format == fmt
        assert (f.width, f.height) == (w, h)
        assert f.array.shape == shape
        np.testing.assert_array_equal(f.array, img)
        planes = f.planes
        assert sum(p.size for p in planes) == img.size
        for p in planes:
            assert np.shares_memory(p, f.array)


def test_odd_sized_i420_gives_planes_not_array(pair):
    prod, cons = pair
    with prod.reserve_frame(33, 17, "i420") as out:
        y, u, v = out.planes
        assert y.shape == (17, 33) and u.shape == (9, 17) and v.shape == (9, 17)
        y[:] = 1
        u[:] = 2
        v[:] = 3
    with cons.next_frame(timeout=2) as f:
        with pytest.raises(ValueError, match="use frame.planes"):
            f.array
        y, u, v = f.planes
        assert (y == 1).all() and (u == 2).all() and (v == 3).all()


def test_header_fields(pair):
    prod, cons = pair
    before = time.monotonic_ns()
    with prod.reserve_frame(64, 48) as out:
        out.array[:] = 0
        out.pts = 3003
        out.time_base = Fraction(1, 90000)
        out.is_key = True
        out.is_discontinuity = True
    with prod.reserve_frame(64, 48) as out:
        out.array[:] = 0
        out.pts = None
        out.capture_ns = 12345
    f = cons.next_frame(timeout=2)
    assert f.seq == 0
    assert f.pts == 3003 and f.time_base == Fraction(1, 90000)
    assert f.pts_seconds == pytest.approx(3003 / 90000)
    assert f.is_key and f.is_discontinuity and not f.is_eos
    assert f.flags == 3
    # capture_ns is CLOCK_MONOTONIC, the clock of time.monotonic_ns().
    assert before <= f.capture_ns <= time.monotonic_ns()
    assert f.latency >= 0
    assert f.format == "bgr24" and f.fourcc == framering.format_code("bgr24")
    g = cons.next_frame(timeout=2)
    assert f.released
    assert g.seq == 1 and g.pts is None and g.pts_seconds is None
    assert g.capture_ns == 12345 and not g.is_key
    g.release()


def test_copy_keeps_pixels_past_release(pair):
    prod, cons = pair
    first = _pattern(48, 64, seed=1)
    prod.write_frame(first, "bgr24")
    f = cons.next_frame(timeout=2)
    view = f.array
    kept = f.copy()
    assert not np.shares_memory(kept.array, view)
    base, size = cons.mapping
    assert not (base <= kept.array.__array_interface__["data"][0] < base + size)
    f.release()
    # Fill the ring so the producer reuses the released space.
    for i in range(12):
        prod.write_frame(np.full((48, 64, 3), 100 + i, np.uint8), "bgr24")
        cons.next_frame(timeout=2).release()
    np.testing.assert_array_equal(kept.array, first)
    assert kept.seq == 0 and kept.array.shape == (48, 64, 3)
    kept.release()  # a private copy ignores release
    np.testing.assert_array_equal(kept.array, first)
    # The stale view stays readable (no fault); it shows whatever is there now.
    assert view.shape == (48, 64, 3)
    int(view.sum())


def test_iteration_releases_previous_and_stops_at_eos(pair):
    prod, cons = pair
    for i in range(3):
        prod.write_frame(np.full((48, 64, 3), i, np.uint8), "bgr24", pts=i)
    prod.mark_eos()
    seen = []
    prev = None
    for f in cons:
        if prev is not None:
            assert prev.released
        seen.append((f.seq, f.pts, int(f.array[0, 0, 0])))
        prev = f
    assert seen == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    assert prev.released
    with pytest.raises(framering.EndOfStream):
        cons.next_frame(timeout=1)
    st = cons.stats
    assert st.records_written == 3 and st.records_read == 3 and st.eos


def test_latest_skips_and_counts(pair):
    prod, cons = pair
    for i in range(3):
        prod.write_frame(np.full((48, 64, 3), i, np.uint8), "bgr24", pts=i)
    with cons.latest(timeout=2) as f:
        assert f.pts == 2 and f.skipped == 2
    assert cons.stats.records_skipped == 2


def test_numpy_array_protocol(pair):
    prod, cons = pair
    img = _pattern(48, 64, seed=9)
    prod.write_frame(img, "bgr24")
    with cons.next_frame(timeout=2) as f:
        np.testing.assert_array_equal(np.asarray(f), img)


def test_stats_and_meta(pair):
    prod, cons = pair
    prod.set_meta(b"hello")
    assert cons.meta[:5] == b"hello"
    st = prod.stats
    assert st.capacity >= 4 * (128 + 64 * 48 * 3) and st.capacity & (st.capacity - 1) == 0
    assert st.producer_alive and st.consumer_alive
    assert prod.peer_alive and cons.peer_alive
    assert framering.inspect(cons.name).capacity == st.capacity


def test_meta_reads_back_what_was_set(pair):
    """cons.meta is the bytes the producer set, of their length (fr_ring_get_meta returns it; the
    C++ Consumer::meta() gives the same): a trailing NUL kept, an empty description empty, not
    every one padded with zeros to the area's 256 bytes."""
    prod, cons = pair
    for data in (b'{"fps": 30}', b"x\0\0", b"", bytes(range(256))):
        prod.set_meta(data)
        assert cons.meta == data


@pytest.mark.parametrize("slots,w,h,fmt", [(2, 640, 480, "bgr24"), (3, 1920, 1080, "i420"), (4, 33, 17, "gray8"),
                                           (8, 320, 240, "nv12")])
def test_slots_hold_that_many_frames(ring_name, slots, w, h, fmt):
    with framering.Producer(ring_name, slots=slots, width=w, height=h, format=fmt) as prod:
        for i in range(slots):
            with prod.reserve_frame(w, h, fmt, timeout=0):
                pass  # must not need the (absent) consumer
        assert prod.stats.records_written == slots


def _offsets(prod, cons, n, shape):
    """Write and read n frames in turn; where each frame lay in the mapping."""
    base, _ = cons.mapping
    seen = []
    for i in range(n):
        prod.write_frame(np.full(shape, i % 251, np.uint8), "bgr24", pts=i)
        with cons.next_frame(timeout=2) as f:
            assert f.array[0, 0, 0] == i % 251 and f.array[-1, -1, -1] == i % 251
            seen.append(f.array.__array_interface__["data"][0] - base)
    return seen


def test_hot_lap_keeps_frames_at_the_front(ring_name):
    """A consumer that keeps up reads every frame from the first two frames'
    worth of a 16-frame ring (the default hot lap); with HOT_LAP_OFF the
    frames go round the whole ring."""
    shape, nbytes = (720, 1280, 3), 1280 * 720 * 3
    with framering.Producer(ring_name, slots=16, width=1280, height=720, format="bgr24") as prod, \
            framering.Consumer(ring_name, timeout=2) as cons:
        hot = _offsets(prod, cons, 40, shape)
        assert max(hot) - min(hot) <= nbytes + 4096, hot
        prod.set_hot_lap(framering.HOT_LAP_OFF)
        whole = _offsets(prod, cons, 40, shape)
        assert max(whole) - min(whole) >= 10 * nbytes, whole
        prod.set_hot_lap(0, wait=0.001)
        with pytest.raises(ValueError):
            prod.set_hot_lap(-1)
        with pytest.raises(ValueError):
            prod.set_hot_lap(0, wait=-2)
