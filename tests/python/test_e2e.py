"""test_e2e - the Python package against the C programs: capture -> Python, Python -> dump, capture -> Python -> dump/view.

Pixels are compared with FFmpeg's own conversion of the same frames
(`ffmpeg -i IN -pix_fmt bgr24 -f rawvideo -`), exactly: framering-capture
converts with swscale as the ffmpeg CLI does, so tolerance 0 holds (measured).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import framering
from conftest import REPO, ffmpeg_raw, need_ffmpeg, new_ring_name, program, python_env, remove_segment, sample

PIPELINE = REPO / "viewer_py" / "examples" / "canny_pipeline.py"
FF_PIXFMT = {"bgr24": "bgr24", "rgb24": "rgb24", "gray": "gray", "i420": "yuv420p", "nv12": "nv12"}


def ffprobe_frames(path: str):
    """(pts, key) of every video frame in decode order of presentation, and the stream time base."""
    need_ffmpeg()
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=time_base:frame=pts,key_frame", "-of", "json", path],
                         check=True, stdout=subprocess.PIPE).stdout
    info = json.loads(out)
    tb = Fraction(info["streams"][0]["time_base"])
    return [(int(f["pts"]), int(f["key_frame"])) for f in info["frames"]], tb


def ffprobe_count(path: str) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                         check=True, stdout=subprocess.PIPE).stdout
    return int(out.strip())


def test_capture_sample_every_frame_equals_ffmpeg(ring_name, procs):
    """The 1080p sample: frame count, header fields and every pixel of every frame."""
    capture = program("FRAMERING_CAPTURE")
    video = sample()
    expected_n = ffprobe_count(video)
    probe, tb = ffprobe_frames(video)
    assert len(probe) == expected_n
    # ffmpeg's frames, streamed one at a time (150 1080p frames would be 900 MB at once).
    ff = procs(["ffmpeg", "-v", "error", "-nostdin", "-i", video, "-pix_fmt", "bgr24", "-f", "rawvideo", "-"],
               stderr=subprocess.DEVNULL)
    cap = procs([capture, "-r", ring_name, "--quiet", video])
    n = 0
    last_capture = 0
    with framering.Consumer(ring_name, timeout=10) as cons:
        for f in cons:
            assert (f.width, f.height, f.format) == (1920, 1080, "bgr24")
            assert f.seq == n
            assert f.strides == (1920 * 3,)
            assert f.time_base == tb
            assert (f.pts, int(f.is_key)) == probe[n], f"frame {n}: pts/key differ from ffprobe"
            assert f.capture_ns >= last_capture
            last_capture = f.capture_ns
            ref = np.frombuffer(ff.stdout.read(1920 * 1080 * 3), np.uint8).reshape(1080, 1920, 3)
            a = f.array
            if not np.array_equal(a, ref):
                d = np.abs(a.astype(np.int16) - ref)
                pytest.fail(f"frame {n} differs from ffmpeg's bgr24: max {d.max()}, {np.count_nonzero(d)} bytes")
            n += 1
    assert n == expected_n, f"read {n} frames, ffprobe -count_frames says {expected_n}"
    assert ff.stdout.read(1) == b"", "ffmpeg produced more frames than the ring delivered"
    assert cap.wait(timeout=30) == 0


@pytest.mark.parametrize("fmt", ["bgr24", "rgb24", "gray", "i420", "nv12"])
def test_capture_testsrc2_formats_equal_ffmpeg(ring_name, procs, fmt):
    capture = program("FRAMERING_CAPTURE")
    graph = "testsrc2=size=320x240:rate=30"
    ref = ffmpeg_raw(["-f", "lavfi", "-i", graph, "-frames:v", "30"], FF_PIXFMT[fmt])
    cap = procs([capture, "-r", ring_name, "--quiet", "-s", "source", "-p", fmt, "--frames", "30",
                 "--no-realtime", "--on-full", "block", "-f", "lavfi", graph])
    got = []
    with framering.Consumer(ring_name, timeout=10) as cons:
        for f in cons:
            assert f.seq == len(got) and f.pts == f.seq and f.time_base == Fraction(1, 30)
            assert f.format == framering.format_name(framering.format_code(fmt))
            assert f.array.shape == ((240, 320, 3) if fmt in ("bgr24", "rgb24") else
                                     (240, 320) if fmt == "gray" else (360, 320))
            got.append(f.array.tobytes())
    assert cap.wait(timeout=30) == 0
    assert len(got) == 30
    assert b"".join(got) == ref, f"{fmt} pixels differ from ffmpeg's conversion"


@pytest.mark.parametrize("fmt,w,h", [("bgr24", 64, 48), ("gray8", 33, 17), ("i420", 64, 48), ("nv12", 40, 30)])
def test_python_producer_to_c_dump(ring_name, procs, tmp_path, fmt, w, h):
    dump = program("FRAMERING_DUMP")
    raw, hdr = tmp_path / "out.raw", tmp_path / "headers.txt"
    rng = np.random.default_rng(1)
    n = 20
    sent = []
    with framering.Producer(ring_name, slots=4, width=w, height=h, format=fmt) as prod:
        d = procs([dump, "-r", ring_name, "--wait", "10", "--raw", str(raw), "--headers", str(hdr), "--quiet"])
        for i in range(n):
            with prod.reserve_frame(w, h, fmt, timeout=30) as out:
                for p in out.planes:  # planes work for every size, odd ones too
                    p[:] = rng.integers(0, 256, p.shape, dtype=np.uint8)
                sent.append(b"".join(p.tobytes() for p in out.planes))
                out.pts = 1000 + 40 * i
                out.time_base = (1, 1000)
                out.is_key = i % 5 == 0
        prod.mark_eos()
    assert d.wait(timeout=30) == 0, d.stderr.read().decode()
    assert raw.read_bytes() == b"".join(sent), "framering-dump --raw must see the bytes Python wrote"
    lines = hdr.read_text().split("\n")[:-1]
    assert len(lines) == n
    for i, line in enumerate(lines):
        f = line.split()
        assert int(f[0]) == i and int(f[1]) == 1000 + 40 * i and (f[2], f[3]) == ("1", "1000")
        assert (int(f[5]), int(f[6]), f[7]) == (w, h, fmt)
        assert int(f[8]) == (1 if i % 5 == 0 else 0)


def _raw_input(tmp_path: Path, frames: int = 30):
    """A bgr24 rawvideo file of the small sample: capture's conversion of it is a plain copy."""
    video = sample("FRAMERING_SAMPLE_SMALL")
    data = ffmpeg_raw(["-i", video, "-frames:v", str(frames)])
    path = tmp_path / "in.bgr"
    path.write_bytes(data)
    return path, np.frombuffer(data, np.uint8).reshape(-1, 240, 320, 3)


def test_pipeline_capture_python_canny_dump(procs, tmp_path):
    """C producer -> Python (cv2.Canny into ring B in place) -> C consumer, every frame checked."""
    capture, dump = program("FRAMERING_CAPTURE"), program("FRAMERING_DUMP")
    a, b = new_ring_name("a"), new_ring_name("b")
    src, frames = _raw_input(tmp_path)
    raw, hdr = tmp_path / "edges.raw", tmp_path / "edges.txt"
    try:
        cap = procs([capture, "-r", a, "--quiet", "-s", "source", "-f", "rawvideo",
                     "-o", "video_size=320x240", "-o", "pixel_format=bgr24", str(src)])
        pipe = procs([sys.executable, str(PIPELINE), "--in", a, "--out", b, "--wait", "10"], env=python_env())
        d = procs([dump, "-r", b, "--wait", "10", "--raw", str(raw), "--headers", str(hdr), "--quiet"])
        assert cap.wait(timeout=60) == 0
        assert pipe.wait(timeout=60) == 0, pipe.stderr.read().decode()
        assert d.wait(timeout=60) == 0, d.stderr.read().decode()
    finally:
        remove_segment(a)
        remove_segment(b)
    out = np.frombuffer(raw.read_bytes(), np.uint8).reshape(-1, 240, 320)
    assert len(out) == len(frames)
    for i, img in enumerate(frames):
        expect = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 50, 150)
        assert np.array_equal(out[i], expect), f"edges of frame {i} differ"
    lines = [l.split() for l in hdr.read_text().splitlines()]
    assert [int(l[0]) for l in lines] == list(range(len(frames)))
    assert all(l[7] == "gray8" for l in lines)
    # pts and time base are passed through the Python hop.
    assert [int(l[1]) for l in lines] == list(range(len(frames)))


def test_pipeline_to_c_viewer_headless(procs, tmp_path):
    """capture -> canny_pipeline.py -> framering-view --headless, which exits 0 at end of stream."""
    capture, view = program("FRAMERING_CAPTURE"), program("FRAMERING_VIEW")
    a, b = new_ring_name("a"), new_ring_name("b")
    stats = tmp_path / "view.json"
    try:
        cap = procs([capture, "-r", a, "--quiet", "-s", "source", "--frames", "20",
                     sample("FRAMERING_SAMPLE_SMALL")])
        pipe = procs([sys.executable, str(PIPELINE), "--in", a, "--out", b, "--wait", "10"], env=python_env())
        v = procs([view, "-r", b, "--wait", "10", "--headless", "--every", "--quiet",
                   "--stats-json", str(stats)])
        assert v.wait(timeout=60) == 0, v.stderr.read().decode()
        assert pipe.wait(timeout=60) == 0
        assert cap.wait(timeout=60) == 0
    finally:
        remove_segment(a)
        remove_segment(b)
    text = stats.read_text()
    info = json.loads(text)
    shown = info.get("frames_shown", info.get("frames"))
    assert shown == 20, text


@pytest.mark.parametrize("var,args", [("FRAMERING_VIEW", ["--headless", "--every"]), ("FRAMERING_DUMP", [])])
def test_ctrl_c_while_following_a_replaced_ring(ring_name, procs, var, args):
    """Ctrl-C while a C consumer waits for the ring that replaced the one it read to its end (none
    comes: the producer replaced its ring and closed the new one at once) is a stop: exit 0 and
    the summary, not 'cannot open ring' (exit 6). The consumer is stopped (SIGSTOP) meanwhile, so
    it finds the old ring replaced and the name gone, whatever the timing."""
    exe = program(var)
    prod = framering.Producer(ring_name, slots=4, width=64, height=48, format="gray8")
    try:
        c = procs([exe, "-r", ring_name, "--wait", "10"] + args)
        prod.wait_consumers(1, timeout=20)
        c.send_signal(signal.SIGSTOP)
        with prod.reserve_frame(64, 48, "gray8", timeout=10) as out:
            out.array[...] = 7
        prod.replace(slots=4, width=128, height=96, format="gray8")
    finally:
        prod.close()  # the new ring, and its name, go with it: there is nothing to follow
    c.send_signal(signal.SIGCONT)
    time.sleep(1)  # it reads the frame, finds the ring replaced and waits (5 s) for the new one
    c.send_signal(signal.SIGINT)
    rc = c.wait(timeout=30)
    err = c.stderr.read().decode()
    assert rc == 0, err
    assert "cannot open" not in err and "1 frame" in err, err
