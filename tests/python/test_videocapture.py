"""test_videocapture - framering.VideoCapture behaves as cv2.VideoCapture: the same pixels, detections and properties.

Why exact comparison is honest here: cv2.VideoCapture (Debian's OpenCV 4.6, FFmpeg
backend) decodes with libavcodec and converts to BGR with swscale, SWS_BICUBIC,
the untagged yuv420p source read as BT.601 limited range; framering-capture
--format bgr24 does the same conversion as the ffmpeg CLI (app/capture/convert.c),
and both equal `ffmpeg -pix_fmt bgr24` byte for byte on the samples (test_e2e.py
checks capture against ffmpeg; measured for cv2: 0 bytes differ in 90 + 150
frames). So frames match exactly and the tracker's float output must too. The
ring must be at the source size (framering-capture's default output is 1920x1080:
-s source), or the ring holds a scaled picture that cv2 never saw.

Where they differ, and why: a source tagged with another matrix than BT.601 (HD
video is usually tagged BT.709). cv2 4.6 converts every source as BT.601 (exactly
`ffmpeg -vf scale=in_color_matrix=bt601`); framering-capture, like the ffmpeg CLI,
converts with the matrix the stream names. test_tagged_bt709_source shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import framering
from framering import videocapture as vc
from conftest import REPO, ffmpeg_raw, need_ffmpeg, program, python_env, remove_segment, sample

LK_TRACK = REPO / "viewer_py" / "examples" / "lk_track.py"


def start_capture(procs, ring: str, video: str):
    return procs([program("FRAMERING_CAPTURE"), "-r", ring, "--quiet", "-s", "source", "--format", "bgr24", video])


def test_lk_track_detects_the_same_in_file_and_ring(ring_name, procs):
    """OpenCV's lk_track sample, once on cv2.VideoCapture(file), once on framering.VideoCapture(ring):
    the same corners found and the same track ends, frame by frame."""
    video = sample("FRAMERING_SAMPLE_SMALL")
    direct = subprocess.run([sys.executable, str(LK_TRACK), "--headless", video], env=python_env(),
                            stdout=subprocess.PIPE, check=True, timeout=300).stdout.decode().splitlines()
    cap = start_capture(procs, ring_name, video)
    ring = subprocess.run([sys.executable, str(LK_TRACK), "--headless", "--ring", ring_name, "--timeout", "20"],
                          env=python_env(), stdout=subprocess.PIPE, check=True, timeout=300).stdout.decode().splitlines()
    assert cap.wait(timeout=30) == 0
    a, b = [json.loads(x) for x in direct], [json.loads(x) for x in ring]
    assert len(a) == 90, "the sample has 90 frames"
    assert sum(len(x["found"]) for x in a) > 50 and sum(len(x["tracks"]) for x in a) > 500, \
        "the tracker found too little to compare"
    for fa, fb in zip(a, b):
        assert fa == fb, f"frame {fa['frame']}: detections differ"
    assert len(b) == len(a)


@pytest.mark.parametrize("which,frames", [("FRAMERING_SAMPLE_SMALL", 90), ("FRAMERING_SAMPLE", 150)],
                         ids=["320x240", "1080p"])
def test_frames_and_properties_equal_cv2(ring_name, procs, which, frames):
    video = sample(which)
    start_capture(procs, ring_name, video)
    ref = cv2.VideoCapture(video)
    with framering.VideoCapture(ring_name, timeout=20) as cap:
        assert cap.isOpened() and ref.isOpened()
        # framering-capture describes the stream just after it created the ring; an attach
        # that wakes at the creation can come before that: the size is 0 until it is there.
        deadline = time.monotonic() + 10
        while cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        for prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS,
                     cv2.CAP_PROP_POS_FRAMES):
            assert cap.get(prop) == ref.get(prop), f"property {prop} before the first frame"
        n = 0
        while True:
            ok, img = cap.read()
            ok_ref, img_ref = ref.read()
            assert ok == ok_ref, f"frame {n}: one ended before the other"
            if not ok:
                break
            assert img.shape == img_ref.shape and img.dtype == img_ref.dtype
            if not np.array_equal(img, img_ref):
                d = np.abs(img.astype(np.int16) - img_ref)
                pytest.fail(f"frame {n}: differs from cv2's decode, max {d.max()}, {np.count_nonzero(d)} bytes")
            for prop in (cv2.CAP_PROP_POS_FRAMES, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                         cv2.CAP_PROP_FPS):
                assert cap.get(prop) == ref.get(prop), f"frame {n}: property {prop}"
            # The frame's pts. cv2 4.6 says 0 for the last frames, those it takes from the
            # decoder once the file has no packets left (it times frames by their packet):
            # compare where it knows, and with the 30 fps timeline everywhere.
            assert cap.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(n * 1000 / 30)
            if n == 0 or ref.get(cv2.CAP_PROP_POS_MSEC) != 0:
                assert cap.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(ref.get(cv2.CAP_PROP_POS_MSEC))
            n += 1
        assert n == frames
        assert cap.read() == (False, None)  # the end stays the end
        assert cap.isOpened()  # as cv2's at the end of a file
    assert not cap.isOpened()


def test_read_gives_a_view_until_the_next_read_or_a_copy(ring_name):
    with framering.Producer(ring_name, slots=4, width=8, height=4) as prod:
        with framering.VideoCapture(ring_name, timeout=1) as cap:
            for i in range(4):
                prod.write_frame(np.full((4, 8, 3), i, np.uint8))
            ok, view = cap.read()
            assert ok and view.shape == (4, 8, 3) and int(view[0, 0, 0]) == 0
            assert not view.flags.writeable
            assert np.shares_memory(view, cap.frame.array), "bgr24 read() is zero-copy"
            ok, copy = cap.read(copy=True)
            assert ok and int(copy[0, 0, 0]) == 1 and copy.flags.writeable
            assert not np.shares_memory(copy, cap.consumer._map)
            out = np.zeros((4, 8, 3), np.uint8)
            ok, filled = cap.read(out)
            assert ok and filled is out and int(out[0, 0, 0]) == 2
            cap.copy = True
            ok, img = cap.read()
            assert ok and img.flags.writeable and int(img[0, 0, 0]) == 3
            cv2.circle(img, (2, 2), 1, (255, 255, 255), -1)  # drawing in place works on a copy
            assert cap.get(cv2.CAP_PROP_POS_FRAMES) == 4


def test_an_image_to_fill_that_does_not_fit_gives_a_private_image(ring_name):
    """read(image) with an image that cannot take the frame (another size: the stream changed
    size; or the read-only view the last read() gave, passed back as cv2 code does) gives a
    new private, writable image, as cv2 allocates one -- not the shared read-only view that
    the next read overwrites."""
    with framering.Producer(ring_name, slots=4, width=8, height=4) as prod:
        with framering.VideoCapture(ring_name, timeout=1) as cap:
            for i in range(4):
                prod.write_frame(np.full((4, 8, 3), i, np.uint8))
            ok, img = cap.read(np.zeros((2, 2, 3), np.uint8))
            assert ok and img.shape == (4, 8, 3) and int(img[0, 0, 0]) == 0
            assert img.flags.writeable and not np.shares_memory(img, cap.consumer._map)
            ok, view = cap.read()
            assert ok and not view.flags.writeable  # no image given: the zero-copy view
            ok, img = cap.read(view)
            assert ok and int(img[0, 0, 0]) == 2 and img.flags.writeable
            assert not np.shares_memory(img, cap.consumer._map)
            assert cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
            ok, img = cap.read(np.zeros((1, 1), np.uint8))
            assert ok and int(img[0, 0, 0]) == 3 and img.flags.writeable
            assert not np.shares_memory(img, cap.consumer._map)


@pytest.mark.parametrize("fmt", ["gray8", "i420", "nv12", "rgb24"])
def test_other_formats_are_converted_or_raw(ring_name, fmt):
    w, h = 16, 8
    rng = np.random.default_rng(3)
    with framering.Producer(ring_name, slots=4, width=w, height=h, format=fmt) as prod:
        with framering.Consumer(ring_name, timeout=1) as check, framering.VideoCapture(ring_name, timeout=1) as cap:
            shape = {"gray8": (h, w), "rgb24": (h, w, 3)}.get(fmt, (h * 3 // 2, w))
            for _ in range(2):
                prod.write_frame(rng.integers(0, 256, shape, np.uint8), fmt)
            ok, img = cap.read()
            want = check.next_frame(timeout=1).to_bgr()
            assert ok and img.shape == (h, w, 3) and np.array_equal(img, want)
            assert img.flags.writeable, "a converted image is a private copy"
            assert cap.set(cv2.CAP_PROP_CONVERT_RGB, 0) and cap.get(cv2.CAP_PROP_CONVERT_RGB) == 0
            ok, raw = cap.read()
            assert ok and raw.shape == shape and np.array_equal(raw, check.next_frame(timeout=1).array)


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_raw_mode_gives_a_4_2_0_frame_that_is_no_h3_2_by_w_view(ring_name, fmt):
    """CAP_PROP_CONVERT_RGB 0 on a 4:2:0 frame of an odd size (or with padded planes) has no
    (H*3/2, W) zero-copy view: read() raised InvalidArgument out of the read loop. It gives the
    planes packed back to back in a copy instead, as cv2 gives raw data: (H*3/2, W), which
    cvtColor takes, when the size is even; one row (1, N) when no image shape fits; and goes on
    with the next frame."""
    w, h = 15, 9
    rng = np.random.default_rng(5)
    with framering.Producer(ring_name, slots=4, width=16, height=16, format=fmt) as prod:
        with framering.VideoCapture(ring_name, timeout=1) as cap:
            assert cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
            with prod.reserve_frame(w, h, fmt) as out:
                planes = [rng.integers(0, 256, p.shape, np.uint8) for p in out.planes]
                for p, v in zip(out.planes, planes):
                    p[...] = v
            with prod.reserve_frame(32, 16, fmt) as out:  # 16x16 in rows of 32: padded planes
                out._hdr.width = 16                      # (as a C producer with its own strides)
                padded = [rng.integers(0, 256, p.shape, np.uint8) for p in out.planes]
                for p, v in zip(out.planes, padded):
                    p[...] = v
            prod.write_frame(np.full((24, 16), 7, np.uint8), fmt)
            ok, raw = cap.read()
            assert ok and raw.shape == (1, sum(p.size for p in planes)) and raw.dtype == np.uint8
            assert np.array_equal(raw[0], np.concatenate([p.ravel() for p in planes]))
            ok, raw = cap.read()
            assert ok and cap.frame.strides[0] == 32 and raw.shape == (24, 16)
            assert np.array_equal(raw.ravel(), np.concatenate([p.ravel() for p in cap.frame.planes]))
            code = cv2.COLOR_YUV2BGR_I420 if fmt == "i420" else cv2.COLOR_YUV2BGR_NV12
            assert cv2.cvtColor(raw, code).shape == (16, 16, 3)
            ok, raw = cap.read()
            assert ok and raw.shape == (24, 16) and int(raw[0, 0]) == 7


def test_open_failure_is_not_an_exception(ring_name):
    cap = framering.VideoCapture(ring_name, timeout=0.2)
    assert not cap.isOpened()
    assert isinstance(cap.last_error, framering.RingNotFound)
    assert cap.read() == (False, None) and not cap.grab()
    assert cap.retrieve() == (False, None)
    assert "closed" in repr(cap)
    cap.release()
    assert framering.VideoCapture().isOpened() is False


def test_latest_mode_end_of_stream_and_release(ring_name):
    with framering.Producer(ring_name, slots=8, width=8, height=4) as prod:
        cap = framering.VideoCapture(ring_name, mode="latest", timeout=1, read_timeout=0.05)
        assert "latest" in repr(cap)
        assert cap.read() == (False, None) and isinstance(cap.last_error, framering.Timeout)
        assert cap.isOpened(), "a read that timed out leaves the capture open"
        for i in range(5):
            prod.write_frame(np.full((4, 8, 3), i, np.uint8))
        ok, img = cap.read()
        assert ok and int(img[0, 0, 0]) == 4 and cap.frame.seq == 4 and cap.frame.skipped == 4
        assert cap.get(cv2.CAP_PROP_POS_FRAMES) == 5 and cap.last_error is None
        prod.mark_eos()
        assert cap.read() == (False, None) and cap.last_error is None
        cap.release()
        assert not cap.isOpened() and cap.read() == (False, None)
        cap.release()


def test_properties_are_cv2s_numbers_and_set_refuses_what_the_producer_owns(ring_name):
    for name in ("POS_MSEC", "POS_FRAMES", "FRAME_WIDTH", "FRAME_HEIGHT", "FPS", "FOURCC", "FRAME_COUNT",
                 "FORMAT", "CONVERT_RGB"):
        assert getattr(vc, "CAP_PROP_" + name) == getattr(cv2, "CAP_PROP_" + name)
    with framering.Producer(ring_name, slots=2, width=8, height=4):
        with framering.VideoCapture(ring_name, timeout=1) as cap:
            assert not cap.set(cv2.CAP_PROP_POS_FRAMES, 10)
            assert not cap.set(cv2.CAP_PROP_FRAME_WIDTH, 640)
            assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == -1
            assert cap.get(cv2.CAP_PROP_FPS) == 0, "a Python producer leaves no capture meta: rate unknown"
            assert cap.get(cv2.CAP_PROP_FOURCC) == cv2.VideoWriter_fourcc(*"BGR3")
            assert cap.get(cv2.CAP_PROP_BRIGHTNESS) == 0
            assert cap.getBackendName() == "framering"


def test_a_capture_not_open_answers_as_cv2s(ring_name):
    """Not opened, failed to open, or released: get() is 0.0 for every property and set() False,
    as cv2.VideoCapture answers when nothing is open -- not the last ring's size, position and
    format, nor a set() that claims to have done something."""
    props = [getattr(cv2, "CAP_PROP_" + n) for n in ("POS_MSEC", "POS_FRAMES", "FRAME_WIDTH", "FRAME_HEIGHT",
                                                     "FPS", "FOURCC", "FRAME_COUNT", "FORMAT", "CONVERT_RGB")]
    ref = cv2.VideoCapture()

    def same_as_cv2(cap, when):
        for prop in props:
            assert cap.get(prop) == ref.get(prop) == 0.0, (when, prop)
        assert cap.set(cv2.CAP_PROP_CONVERT_RGB, 0) is ref.set(cv2.CAP_PROP_CONVERT_RGB, 0) is False, when

    same_as_cv2(framering.VideoCapture(), "never opened")
    same_as_cv2(framering.VideoCapture(ring_name + "-none", timeout=0), "open failed")
    with framering.Producer(ring_name, slots=4, width=8, height=4) as prod:
        cap = framering.VideoCapture(ring_name, timeout=1)
        prod.write_frame(np.zeros((4, 8, 3), np.uint8), pts=3, time_base=(1, 30))
        assert cap.read()[0] and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 8
        cap.release()
        same_as_cv2(cap, "released")
        assert cap.open(ring_name) and cap.get(cv2.CAP_PROP_CONVERT_RGB) == 1.0, "open again: as new"
        cap.release()


def test_producer_death_ends_reading_with_its_reason(ring_name, procs):
    code = ("import sys, numpy as np, framering, time\n"
            "p = framering.Producer(sys.argv[1], slots=4, width=8, height=4)\n"
            "p.write_frame(np.zeros((4, 8, 3), np.uint8))\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")
    p = procs([sys.executable, "-c", code, ring_name], env=python_env())
    try:
        assert p.stdout.readline().strip() == b"ready"
        with framering.VideoCapture(ring_name, timeout=10) as cap:
            ok, _ = cap.read()
            assert ok
            p.kill()
            p.wait(timeout=10)
            assert cap.read() == (False, None)
            assert isinstance(cap.last_error, framering.PeerDied)
    finally:
        remove_segment(ring_name)  # a killed producer cannot remove its segment


def test_cv2s_open_signatures_with_api_preference_and_params(ring_name):
    """VideoCapture(name, apiPreference[, params]) and open(name, apiPreference[, params]) are
    cv2's signatures, so code that names a backend switches by the class name alone: the
    preference is ignored (the producer decodes), params are cv2's (prop, value) pairs:
    open and read timeouts in ms and CONVERT_RGB are taken, any other makes open() False
    (last_error says which), as cv2's backends refuse parameters they do not support."""
    with framering.Producer(ring_name, slots=4, width=8, height=4) as prod:
        for i in range(3):
            prod.write_frame(np.full((4, 8, 3), i, np.uint8))
        with framering.VideoCapture(ring_name, cv2.CAP_FFMPEG, timeout=1) as cap:
            assert cap.isOpened() and int(cap.read()[1][0, 0, 0]) == 0
        with framering.VideoCapture(ring_name, cv2.CAP_ANY, []) as cap:
            assert cap.isOpened() and int(cap.read()[1][0, 0, 0]) == 0
        with framering.VideoCapture(apiPreference=cv2.CAP_ANY) as cap:
            assert not cap.isOpened()
            assert cap.open(ring_name, cv2.CAP_ANY) and cap.isOpened()
            assert cap.open(ring_name, cv2.CAP_FFMPEG, [cv2.CAP_PROP_CONVERT_RGB, 0,
                                                       cv2.CAP_PROP_READ_TIMEOUT_MSEC, 50,
                                                       cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 1000])
            assert cap.get(cv2.CAP_PROP_CONVERT_RGB) == 0 and cap.read_timeout == 0.05
            ok, raw = cap.read()
            assert ok and raw.shape == (4, 8, 3)
            assert not cap.open(ring_name, cv2.CAP_ANY, [cv2.CAP_PROP_BRIGHTNESS, 5])
            assert not cap.isOpened() and isinstance(cap.last_error, framering.InvalidArgument)
            assert str(cv2.CAP_PROP_BRIGHTNESS) in str(cap.last_error)
            with pytest.raises(TypeError):
                cap.open(ring_name, "ffmpeg")
            with pytest.raises(ValueError):
                cap.open(ring_name, cv2.CAP_ANY, [cv2.CAP_PROP_CONVERT_RGB])


def test_bad_mode_is_a_usage_error_not_a_closed_capture(ring_name):
    with pytest.raises(ValueError):
        framering.VideoCapture(ring_name, mode="fastest")


def test_tagged_bt709_source(ring_name, procs, tmp_path):
    """The one difference in pixels found: cv2 ignores the colour matrix a stream is tagged with.
    Ring == ffmpeg's conversion with the tag (BT.709); cv2 == ffmpeg's forced to BT.601."""
    clip = str(tmp_path / "bt709.mkv")
    need_ffmpeg()
    made = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
                           "-frames:v", "10", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-colorspace", "bt709",
                           "-color_primaries", "bt709", "-color_trc", "bt709", clip], stderr=subprocess.PIPE)
    if made.returncode != 0:
        pytest.skip(f"ffmpeg cannot make an H.264 test clip: {made.stderr.decode().strip()[-200:]}")
    shape = (-1, 240, 320, 3)
    tagged = np.frombuffer(ffmpeg_raw(["-i", clip]), np.uint8).reshape(shape)
    as601 = np.frombuffer(ffmpeg_raw(["-i", clip, "-vf", "scale=in_color_matrix=bt601"]), np.uint8).reshape(shape)
    assert len(tagged) == 10 and np.abs(tagged.astype(np.int16) - as601).max() > 10, "the matrices should differ"
    start_capture(procs, ring_name, clip)
    ref = cv2.VideoCapture(clip)
    with framering.VideoCapture(ring_name, timeout=20) as cap:
        for i in range(10):
            ok, img = cap.read()
            ok_ref, img_ref = ref.read()
            assert ok and ok_ref
            assert cap.frame.colorimetry.matrix == "bt709"
            assert np.array_equal(img, tagged[i]), f"frame {i}: the ring is not ffmpeg's BT.709 conversion"
            assert np.array_equal(img_ref, as601[i]), f"frame {i}: cv2 is not a BT.601 conversion"
        assert cap.read() == (False, None)
