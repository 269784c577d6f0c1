"""test_capture.py - end-to-end tests of framering-capture -> ring -> framering-dump, and framering-ctl.

Run by ctest (tests/capture/CMakeLists.txt) with FRAMERING_PYTHON_EXE -m pytest; the
programs and samples come from environment variables CMake sets:
FRAMERING_CAPTURE, FRAMERING_DUMP, FRAMERING_CTL, FRAMERING_SAMPLE, FRAMERING_SAMPLE_SMALL.

Pixels are compared with what the ffmpeg CLI makes of the same frames
(`ffmpeg -i IN -s WxH -pix_fmt FMT -f rawvideo`). Tolerance: none, byte for byte.
framering-capture sets swscale up like ffmpeg's auto-inserted scaler (SWS_BICUBIC,
MPEG-2 chroma siting for yuv420p, the frame's matrix and range) and both use the
same libswscale on the same machine, so the output must be identical.

Every test uses a ring name with the pid and a random suffix, and the `ring`
fixture fails the test if a segment is left in /dev/shm (and removes it).
"""

import json
import os
import re
import shlex
import signal
import struct
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import procinfo  # noqa: E402  (tests/common)

CAPTURE = os.environ.get("FRAMERING_CAPTURE", "framering-capture")
DUMP = os.environ.get("FRAMERING_DUMP", "framering-dump")
CTL = os.environ.get("FRAMERING_CTL", "framering-ctl")
SAMPLE = os.environ.get("FRAMERING_SAMPLE", "assets/sample.mp4")
SMALL = os.environ.get("FRAMERING_SAMPLE_SMALL", "assets/sample-320x240.mp4")
TIMEOUT = 120

FORMATS = ["bgr24", "rgb24", "gray", "i420", "nv12"]
FF_PIXFMT = {"bgr24": "bgr24", "rgb24": "rgb24", "gray": "gray", "i420": "yuv420p", "nv12": "nv12"}
HEADER_FMT = {"bgr24": "bgr24", "rgb24": "rgb24", "gray": "gray8", "i420": "i420", "nv12": "nv12"}
FLAG_KEY, FLAG_DISCONT, FLAG_EOS = 1, 2, 4


# ------------------------------------------------------------------ helpers

def shm_path(name):
    return os.path.join("/dev/shm", name)


@pytest.fixture
def ring():
    name = "frtest-cap-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    yield name
    left = os.path.exists(shm_path(name))
    if left:
        os.unlink(shm_path(name))
    assert not left, "ring segment %s was left in /dev/shm" % name


def ffprobe_count(path, lavfi=False):
    cmd = ["ffprobe", "-v", "error"] + (["-f", "lavfi"] if lavfi else []) + [
        "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
        "-of", "csv=p=0", path]
    # an MPEG-TS lists the stream once per program: take the first figure
    return int(subprocess.check_output(cmd, text=True).split()[0].split(",")[0])


def ffmpeg_raw(inputs, out, pix_fmt, size=None, frames=None, vf=None):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error"] + inputs
    if frames:
        cmd += ["-frames:v", str(frames)]
    if size:
        cmd += ["-s", size]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-pix_fmt", pix_fmt, "-f", "rawvideo", "-y", str(out)]
    subprocess.run(cmd, check=True, timeout=TIMEOUT)
    return np.fromfile(out, np.uint8)


class Run:
    """One producer + one framering-dump consumer on a fresh ring."""

    def __init__(self, cap, dump, raw, headers, stats):
        self.cap, self.dump = cap, dump
        self.raw = np.fromfile(raw, np.uint8) if raw and os.path.exists(raw) else None
        self.headers = []
        if headers and os.path.exists(headers):
            for line in open(headers):
                f = line.split()
                self.headers.append(dict(
                    seq=int(f[0]), pts=int(f[1]), tb=(int(f[2]), int(f[3])), capture_ns=int(f[4]),
                    width=int(f[5]), height=int(f[6]), fmt=f[7], flags=int(f[8]),
                    planes=int(f[9]), strides=[int(f[10]), int(f[11]), int(f[12])],
                    color=dict(zip(("matrix", "range", "primaries", "transfer", "chroma"), f[13:18]))))
        self.stats = json.load(open(stats)) if stats and os.path.exists(stats) else None


def run_pipeline(tmp_path, ring, cap_args, dump_args=(), raw=True):
    raw_path = tmp_path / "out.raw" if raw else None
    hdr_path = tmp_path / "out.hdr"
    stats_path = tmp_path / "stats.json"
    dcmd = [DUMP, "--ring", ring, "--wait", "20", "--headers", str(hdr_path)] + list(dump_args)
    if raw:
        dcmd += ["--raw", str(raw_path)]
    dump = subprocess.Popen(dcmd, stderr=subprocess.PIPE, text=True)
    try:
        cap = subprocess.run([CAPTURE, "--ring", ring, "--stats-json", str(stats_path)] + list(cap_args),
                             stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
        _, derr = dump.communicate(timeout=TIMEOUT)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    dres = subprocess.CompletedProcess(dcmd, dump.returncode, None, derr)
    assert cap.returncode == 0, cap.stderr
    assert dres.returncode == 0, derr
    return Run(cap, dres, raw_path, hdr_path, stats_path)


def plane_shapes(fmt, w, h):
    """(rows, row_bytes, hsub, vsub, bytes per sample group) per plane."""
    cw, ch = (w + 1) // 2, (h + 1) // 2
    return {"bgr24": [(h, w * 3, 0, 0, 3)], "rgb24": [(h, w * 3, 0, 0, 3)],
            "gray": [(h, w, 0, 0, 1)],
            "i420": [(h, w, 0, 0, 1), (ch, cw, 1, 1, 1), (ch, cw, 1, 1, 1)],
            "nv12": [(h, w, 0, 0, 1), (ch, cw * 2, 1, 1, 2)]}[fmt]


def frame_bytes(fmt, w, h):
    return sum(r * b for r, b, *_ in plane_shapes(fmt, w, h))


def split_planes(buf, fmt, w, h):
    out, off = [], 0
    for rows, rb, *_ in plane_shapes(fmt, w, h):
        out.append(buf[off:off + rows * rb].reshape(rows, rb))
        off += rows * rb
    return out


def check_headers(run, n, fmt, w, h, tb=None, first_key=True):
    hs = run.headers
    assert len(hs) == n
    strides = [rb for _, rb, *_ in plane_shapes(fmt, w, h)] + [0, 0]
    for i, hd in enumerate(hs):
        assert hd["seq"] == i
        assert (hd["width"], hd["height"], hd["fmt"]) == (w, h, HEADER_FMT[fmt])
        assert hd["planes"] == len(plane_shapes(fmt, w, h))
        assert hd["strides"] == strides[:3]
        if tb:
            assert hd["tb"] == tb
    for a, b in zip(hs, hs[1:]):
        assert b["capture_ns"] >= a["capture_ns"]
        if not b["flags"] & FLAG_DISCONT:
            assert b["pts"] > a["pts"], "pts not increasing at seq %d" % b["seq"]
    if first_key:
        assert hs[0]["flags"] & FLAG_KEY


def assert_same(ours, ref, what):
    assert ours is not None and ours.size == ref.size, "%s: %s bytes vs %d from ffmpeg" % (
        what, None if ours is None else ours.size, ref.size)
    if not np.array_equal(ours, ref):
        d = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        pytest.fail("%s: pixels differ from ffmpeg: max %d, %.4f%% of bytes" % (
            what, d.max(), 100.0 * np.count_nonzero(d) / d.size))


# ------------------------------------------------------------------ help

@pytest.mark.parametrize("prog", [CAPTURE, DUMP, CTL])
def test_help(prog):
    r = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert "usage:" in r.stdout and "Exit status" in r.stdout


# ------------------------------------------------------------------ end to end, pixels

def test_sample_count_and_headers(tmp_path, ring):
    """Every frame of the sample arrives (count = ffprobe's), headers right."""
    n = ffprobe_count(SAMPLE)
    run = run_pipeline(tmp_path, ring, [SAMPLE, "-s", "320x180"], raw=False)
    check_headers(run, n, "bgr24", 320, 180, tb=(1, 15360))
    assert run.headers[-1]["pts"] > run.headers[0]["pts"]
    assert not any(h["flags"] & FLAG_DISCONT for h in run.headers)
    st = run.stats
    assert st["frames_written"] == n and st["frames_dropped"] == 0 and st["decode_errors"] == 0
    assert st["on_full"] == "block" and not st["live"]
    assert "%d frames" % n in run.dump.stderr and "end of stream" in run.dump.stderr
    # A file decodes with frame threads on a multi-core machine; then swscale
    # runs on one thread (more would take turns with the decoder's).
    if len(os.sched_getaffinity(0)) > 1:
        assert st["decoder_threading"] == "frame" and st["decoder_threads"] > 1
    assert st["conversion_threads"] == (1 if st["decoder_threading"] == "frame"
                                        else len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_1080p_pixels(tmp_path, ring, fmt):
    """Default size (1920x1080 = the source): conversion only; i420 is the plain-copy path."""
    n = 4
    run = run_pipeline(tmp_path, ring, [SAMPLE, "-p", fmt, "--frames", str(n)])
    check_headers(run, n, fmt, 1920, 1080, tb=(1, 15360))
    assert run.headers[-1]["flags"] & FLAG_EOS
    # the decoder gives yuv420p 1920x1080: i420 output is a plain plane copy
    assert run.stats["conversion"] == ("copy" if fmt == "i420" else "swscale")
    ref = ffmpeg_raw(["-i", SAMPLE], tmp_path / "ref.raw", FF_PIXFMT[fmt], frames=n)
    assert_same(run.raw, ref, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_scaled_pixels(tmp_path, ring, fmt):
    """A non-1080p size of the same aspect ratio: swscale straight into the ring."""
    n = 20
    run = run_pipeline(tmp_path, ring, [SAMPLE, "-p", fmt, "-s", "640x360", "--frames", str(n)])
    check_headers(run, n, fmt, 640, 360)
    ref = ffmpeg_raw(["-i", SAMPLE], tmp_path / "ref.raw", FF_PIXFMT[fmt], size="640x360", frames=n)
    assert_same(run.raw, ref, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_letterbox_bars(tmp_path, ring, fmt):
    """4:3 source into 16:9 (pillarbox) and 16:9 into 4:3 (letterbox): the picture
    equals ffmpeg's scale to the inner size, the bars are black (Y=16 U=V=128, or 0)."""
    cases = [(SMALL, 640, 360, 480, 360, 80, 0), (SAMPLE, 640, 480, 640, 360, 0, 60)]
    for src, w, h, iw, ih, x, y in cases:
        n = 5
        run = run_pipeline(tmp_path, ring, [src, "-p", fmt, "-s", "%dx%d" % (w, h), "--frames", str(n)])
        check_headers(run, n, fmt, w, h)
        ref = ffmpeg_raw(["-i", src], tmp_path / "ref.raw", FF_PIXFMT[fmt], size="%dx%d" % (iw, ih),
                         frames=n)
        fb, rfb = frame_bytes(fmt, w, h), frame_bytes(fmt, iw, ih)
        black = {"bgr24": [0], "rgb24": [0], "gray": [0], "i420": [16, 128, 128], "nv12": [16, 128]}[fmt]
        for i in range(n):
            ours = split_planes(run.raw[i * fb:(i + 1) * fb], fmt, w, h)
            theirs = split_planes(ref[i * rfb:(i + 1) * rfb], fmt, iw, ih)
            for p, (o, t, (rows, rb, hs, vs, bpp)) in enumerate(zip(ours, theirs, plane_shapes(fmt, w, h))):
                py, px = y >> vs, (x >> hs) * bpp
                inner = o[py:py + t.shape[0], px:px + t.shape[1]]
                assert np.array_equal(inner, t), "%s %dx%d frame %d plane %d picture differs" % (
                    fmt, w, h, i, p)
                mask = np.ones(o.shape, bool)
                mask[py:py + t.shape[0], px:px + t.shape[1]] = False
                assert mask.any()
                assert np.all(o[mask] == black[p]), "%s frame %d plane %d bars not black" % (fmt, i, p)


@pytest.fixture(scope="module")
def odd_source(tmp_path_factory):
    """Eight 321x181 frames (testsrc2 rounds its size to even: scaled; FFV1 keeps odd sizes)."""
    path = tmp_path_factory.mktemp("odd") / "odd.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=10,scale=321:181", "-frames:v", "8", "-c:v", "ffv1", "-pix_fmt", "yuv420p",
                    "-y", str(path)], check=True, timeout=TIMEOUT)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_sizes_every_format(tmp_path, ring, odd_source, fmt):
    """Odd sizes in every format, byte for byte ffmpeg's: an odd source at its own size (for i420
    the plain-copy path, chroma (w+1)/2 x (h+1)/2), and scaled to another odd size."""
    # One conversion thread: FFV1 decodes with slice threads, so swscale would run two, and
    # FFmpeg 5.1's threaded swscale was seen once in about 25 runs to differ from ffmpeg in a few
    # pixels at the slice boundary of the first frames (left open, see the note of that change).
    one = ["--conversion-threads", "1"]
    run = run_pipeline(tmp_path, ring, [str(odd_source), "-s", "source", "-p", fmt] + one)
    check_headers(run, 8, fmt, 321, 181)
    assert_same(run.raw, ffmpeg_raw(["-i", str(odd_source)], tmp_path / "ref.raw", FF_PIXFMT[fmt]), "source size")
    run = run_pipeline(tmp_path, ring, [str(odd_source), "-s", "161x99", "--fit", "stretch", "-p", fmt] + one)
    check_headers(run, 8, fmt, 161, 99)
    assert_same(run.raw, ffmpeg_raw(["-i", str(odd_source)], tmp_path / "ref.raw", FF_PIXFMT[fmt], size="161x99"),
                "161x99")


def test_stretch_and_source_size(tmp_path, ring):
    run = run_pipeline(tmp_path, ring, [SMALL, "-s", "640x360", "--fit", "stretch", "--frames", "5"])
    ref = ffmpeg_raw(["-i", SMALL], tmp_path / "ref.raw", "bgr24", size="640x360", frames=5)
    assert_same(run.raw, ref, "stretch")
    run = run_pipeline(tmp_path, ring, [SMALL, "-s", "source", "-p", "i420"])
    n = ffprobe_count(SMALL)
    check_headers(run, n, "i420", 320, 240)
    ref = ffmpeg_raw(["-i", SMALL], tmp_path / "ref.raw", "yuv420p")
    assert_same(run.raw, ref, "source size")


def test_testsrc2_live(tmp_path, ring):
    """lavfi as a synthetic camera: count = ffprobe's, pts 0..n-1 in 1/30, pixels = ffmpeg's."""
    graph = "testsrc2=size=320x240:rate=30:duration=2"
    n = ffprobe_count(graph, lavfi=True)
    run = run_pipeline(tmp_path, ring, ["-f", "lavfi", graph, "-s", "source", "--no-realtime",
                                        "--on-full", "block"])
    check_headers(run, n, "bgr24", 320, 240, tb=(1, 30))
    assert [h["pts"] for h in run.headers] == list(range(n))
    ref = ffmpeg_raw(["-f", "lavfi", "-i", graph], tmp_path / "ref.raw", "bgr24")
    assert_same(run.raw, ref, "testsrc2")
    assert run.stats["live"] and not run.stats["realtime"] and run.stats["on_full"] == "block"


def test_testsrc2_defaults_live(tmp_path, ring):
    """A lavfi source is paced (implicit --realtime) and drops when full by default."""
    run = run_pipeline(tmp_path, ring, ["-f", "lavfi", "testsrc2=size=160x120:rate=30", "-s", "source",
                                        "--frames", "10"], raw=False)
    st = run.stats
    assert st["live"] and st["realtime"] and st["on_full"] == "drop"
    assert st["frames_written"] + st["frames_dropped"] == st["frames_produced"] == 10
    # Live: no frame threads (each would hold a frame back); conversion is
    # latency, so it is split over every core.
    assert st["decoder_threading"] != "frame"
    assert st["conversion_threads"] == len(os.sched_getaffinity(0))
    assert len(run.headers) == st["frames_written"]


def test_rawvideo_input_copy(tmp_path, ring):
    """--input-format rawvideo with -o options; same format and size: a plain copy."""
    src = tmp_path / "in.bgr"
    ref = ffmpeg_raw(["-i", SMALL], src, "bgr24", frames=10)
    run = run_pipeline(tmp_path, ring, ["-f", "rawvideo", "-o", "video_size=320x240", "-o",
                                        "pixel_format=bgr24", "-o", "framerate=30", str(src),
                                        "-s", "source"])
    check_headers(run, 10, "bgr24", 320, 240, first_key=False)
    assert run.stats["conversion"] == "copy"
    assert_same(run.raw, ref, "rawvideo")


# ------------------------------------------------------------------ display matrix (autorotate)

def set_display_matrix(src, dst, a, b, c, d):
    """Copy the MP4 SRC to DST with the a b c d entries (+1/-1/0) of its video track's display
    matrix replaced. The ffmpeg CLI (5.1) can only write rotations (-metadata:s:v rotate=N);
    mirror images need the matrix itself, in the tkhd box: 40 bytes after the box type come
    the 9 values, 16.16 fixed point except u, v, w (2.30)."""
    data = bytearray(src.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0 and data.count(b"tkhd") == 1 and data[i + 4] == 0, "one version-0 tkhd expected"
    one = 1 << 16
    data[i + 44:i + 80] = struct.pack(">9i", a * one, b * one, 0, c * one, d * one, 0, 0, 0, 1 << 30)
    dst.write_bytes(bytes(data))


def display_rotation(path):
    """ffprobe's reading of the display matrix: its rotation, or None when there is no matrix."""
    out = json.loads(subprocess.check_output(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream_side_data",
         "-of", "json", str(path)], text=True))
    for sd in out["streams"][0].get("side_data_list", []):
        if sd.get("side_data_type") == "Display Matrix":
            return int(sd["rotation"])
    return None


@pytest.fixture(scope="module")
def turned_files(tmp_path_factory):
    """320x240 testsrc2 clips (H.264 yuv420p, yuv422p and yuv420p10le) with display matrices:
    name -> (path, ffprobe rotation, the turn the ffmpeg CLI inserts for it)."""
    d = tmp_path_factory.mktemp("turned")
    bases = {}
    for pix in ("yuv420p", "yuv422p", "yuv420p10le"):
        bases[pix] = d / ("base-%s.mp4" % pix)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=10", "-frames:v", "10", "-c:v", "libx264", "-preset",
                        "fast", "-pix_fmt", pix, "-y", str(bases[pix])], check=True, timeout=TIMEOUT)
    files = {}
    # what a phone writes, by the CLI's own rotate tag: (name, source, tag, rotation, turn)
    for name, pix, tag, rot, turn in (("rotate90", "yuv420p", 90, 90, "transpose=cclock"),
                                      ("rotate180", "yuv420p", 180, -180, "hflip,vflip"),
                                      ("rotate270", "yuv420p", 270, -90, "transpose=clock"),
                                      ("rotate270-422", "yuv422p", 270, -90, "transpose=clock"),
                                      ("rotate90-10bit", "yuv420p10le", 90, 90, "transpose=cclock")):
        files[name] = d / (name + ".mp4")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(bases[pix]), "-c", "copy",
                        "-metadata:s:v", "rotate=%d" % tag, "-y", str(files[name])], check=True, timeout=TIMEOUT)
        files[name] = (files[name], rot, turn)
    # mirror images and the two transposes, by the matrix itself
    for name, m, rot, turn in (("hflip", (-1, 0, 0, 1), -180, "hflip"), ("vflip", (1, 0, 0, -1), 0, "vflip"),
                               ("transpose", (0, 1, 1, 0), -90, "transpose=cclock_flip"),
                               ("antitranspose", (0, -1, -1, 0), 90, "transpose=clock_flip")):
        path = d / (name + ".mp4")
        set_display_matrix(bases["yuv420p"], path, *m)
        files[name] = (path, rot, turn)
    return files


TURNS = ["rotate90", "rotate180", "rotate270", "rotate270-422", "rotate90-10bit", "hflip", "vflip",
         "transpose", "antitranspose"]


@pytest.mark.parametrize("name", TURNS)
def test_autorotate_display_matrix(tmp_path, ring, turned_files, name):
    """A display matrix turns the frames as the ffmpeg CLI's autorotate does, byte for byte:
    the same transpose/hflip/vflip before the same scaler (or, for 4:2:2 under a transpose,
    which ffmpeg converts first, the same conversion before the same turn). The record has
    the displayed size. i420 from a yuv420p source is turned straight into the ring;
    bgr24 is turned, then converted."""
    path, rot, turn = turned_files[name]
    assert display_rotation(path) == rot, "the test file lacks its display matrix"
    w, h = (240, 320) if "transpose" in turn else (320, 240)
    for fmt in ("bgr24", "i420"):
        run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "-p", fmt])
        check_headers(run, 10, fmt, w, h)
        st = run.stats
        assert st["autorotate"] and st["rotation"] == turn, st
        assert (st["width"], st["height"]) == (w, h)
        assert "autorotated: %s" % turn in run.cap.stderr, run.cap.stderr
        if fmt == "i420" and "422" not in name and "10bit" not in name:
            assert st["conversion"] == "copy"  # turned straight into the ring
        ref = ffmpeg_raw(["-i", str(path)], tmp_path / "ref.raw", FF_PIXFMT[fmt])  # autorotates
        assert_same(run.raw, ref, "%s %s" % (name, fmt))


def test_autorotate_letterbox(tmp_path, ring, turned_files):
    """A turned picture is fitted by its displayed shape: 240x320 into 640x480 is pillarboxed
    to 360x480, and equals ffmpeg's turn then scale to that size. (An inner width that is not
    a multiple of 8, e.g. 270 in 640x360, shows swscale writing two pixels into the right bar:
    that happens without a turn too, and is not this test's business.)"""
    path, _, _ = turned_files["rotate270"]
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "640x480"])
    check_headers(run, 10, "bgr24", 640, 480)
    ref = ffmpeg_raw(["-i", str(path)], tmp_path / "ref.raw", "bgr24", size="360x480")
    fb, rfb = frame_bytes("bgr24", 640, 480), frame_bytes("bgr24", 360, 480)
    for i in range(10):
        ours = run.raw[i * fb:(i + 1) * fb].reshape(480, 640 * 3)
        theirs = ref[i * rfb:(i + 1) * rfb].reshape(480, 360 * 3)
        assert np.array_equal(ours[:, 140 * 3:500 * 3], theirs), "frame %d picture differs" % i
        assert not ours[:, :140 * 3].any() and not ours[:, 500 * 3:].any(), "frame %d bars not black" % i


@pytest.mark.parametrize("name", ["rotate270", "hflip"])
def test_no_autorotate(tmp_path, ring, turned_files, name):
    """--no-autorotate: the frames as decoded, at the decoded size, like ffmpeg -noautorotate;
    the stats still say what the matrix asked for."""
    path, rot, _ = turned_files[name]
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "--no-autorotate"])
    check_headers(run, 10, "bgr24", 320, 240)
    st = run.stats
    assert not st["autorotate"] and st["rotation"] == "none"
    assert st["rotation_degrees"] == (-rot) % 360
    assert "autorotated" not in run.cap.stderr
    ref = ffmpeg_raw(["-noautorotate", "-i", str(path)], tmp_path / "ref.raw", "bgr24")
    assert_same(run.raw, ref, "--no-autorotate")


# ------------------------------------------------------------------ timeline

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_http(tmp_path, ring):
    """A URL source: the small sample served over HTTP on loopback arrives whole and pixel-exact."""
    import sys
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", os.path.dirname(os.path.abspath(SMALL))],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/{os.path.basename(SMALL)}"
        deadline = time.monotonic() + 10
        while subprocess.run(["ffprobe", "-v", "quiet", url]).returncode != 0:
            assert time.monotonic() < deadline, "the loopback HTTP server did not come up"
            time.sleep(0.1)
        n = ffprobe_count(SMALL)
        run = run_pipeline(tmp_path, ring, [url, "-s", "source"])
        check_headers(run, n, "bgr24", 320, 240)
        assert not run.stats["live"] and run.stats["on_full"] == "block"  # HTTP serves files: lossless
        ref = tmp_path / "ref.raw"
        ffmpeg_raw(["-i", SMALL], ref, "bgr24")
        assert_same(run.raw, np.fromfile(ref, np.uint8), "HTTP source vs the local file")
    finally:
        srv.kill()
        srv.wait()


def test_network_tcp(tmp_path, ring):
    """A stream pushed by ffmpeg over TCP on loopback (MPEG-TS, paced with -re) arrives whole."""
    port = free_port()
    n = ffprobe_count(SMALL)
    srv = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", SMALL, "-c", "copy", "-f", "mpegts",
                            f"tcp://127.0.0.1:{port}?listen=1"], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the listener must be up before we connect
        run = run_pipeline(tmp_path, ring, ["-f", "mpegts", f"tcp://127.0.0.1:{port}", "-s", "source"], raw=False)
        check_headers(run, n, "bgr24", 320, 240)
    finally:
        srv.kill()
        srv.wait()


def test_network_udp_live(tmp_path, ring):
    """UDP is a live source: drop policy by default, frames arrive as they are sent."""
    port = free_port()
    hdr_path, stats_path = tmp_path / "out.hdr", tmp_path / "stats.json"
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--headers", str(hdr_path)],
                            stderr=subprocess.PIPE, text=True)
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--stats-json", str(stats_path), "-f", "mpegts",
                            "-o", "timeout=3000000", f"udp://127.0.0.1:{port}", "-s", "source"],
                           stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # listening before the first packet, so the stream starts at its key frame
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", SMALL, "-c", "copy", "-f", "mpegts",
                        f"udp://127.0.0.1:{port}?pkt_size=1316"], check=True, timeout=TIMEOUT)
        cap.send_signal(signal.SIGINT)  # a live stream has no end: stop it like a user would
        _, cerr = cap.communicate(timeout=TIMEOUT)
        _, derr = dump.communicate(timeout=TIMEOUT)
    finally:
        for p in (cap, dump):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert cap.returncode == 0, cerr
    assert dump.returncode == 0, derr
    st = json.load(open(stats_path))
    assert st["live"] and st["on_full"] == "drop", st
    n = ffprobe_count(SMALL)
    # Loopback UDP does not lose packets in practice, but a test should not bet on it.
    assert n // 2 <= st["frames_written"] <= n, st
    lines = open(hdr_path).read().split()
    assert lines[5:7] == ["320", "240"], lines[:13]


def test_progress_line_on_a_tty(ring):
    """On a terminal the producer and the consumer keep one live progress line (rewritten with
    CR + erase-line) and end with a summary; through a pipe only the summary is printed."""
    import shlex, shutil
    assert shutil.which("script"), "script (bsdutils) is needed to give the programs a terminal"
    # Bytes, not text: text mode would turn the \r that rewrites the line into \n.
    dump = subprocess.Popen(["script", "-qfec", shlex.join([DUMP, "--ring", ring, "--wait", "20"]), "/dev/null"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cap = subprocess.run(["script", "-qfec", shlex.join([CAPTURE, "--ring", ring, "--frames", "60",
                                                         "-s", "320x180", SMALL]), "/dev/null"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    cap.stdout = cap.stdout.decode(errors="replace")
    dout = dump.communicate(timeout=TIMEOUT)[0].decode(errors="replace")
    assert cap.returncode == 0 and dump.returncode == 0, (cap.stdout, dout)
    for out, live in ((cap.stdout, "frames"), (dout, "frames")):
        lines = [l for l in out.split("\r") if l.startswith("\x1b[K")]
        assert lines, f"no progress line rewritten in place: {out!r}"
        assert live in lines[-1] and "fps" in lines[-1], lines[-1]
    assert "60 frames written" in cap.stdout and "drops" in cap.stdout, cap.stdout
    assert "end of stream" in dout, dout
    # Not a terminal: no control sequences, the summary only.
    piped = subprocess.run([CAPTURE, "--ring", ring + "-p", "--frames", "10", "-s", "320x180",
                            "--on-full", "drop", SMALL], stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[K" not in piped.stderr and "\r" not in piped.stderr, repr(piped.stderr)
    assert re.search(r"\d+ frames written .* \d+ dropped", piped.stderr), piped.stderr


def damaged_ts(tmp_path, seconds):
    """An H.264 MPEG-TS of SECONDS of testsrc2 (320x240, 30 fps) whose packets past the first
    fifth have every 23rd payload replaced by noise (the TS headers kept): decode errors, no end."""
    src = tmp_path / "good.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x240:rate=30:duration={seconds}", "-c:v", "libx264", "-preset", "fast",
                    "-g", "15", "-f", "mpegts", "-y", str(src)], check=True, timeout=TIMEOUT)
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    npk = len(data) // 188
    for i in range(npk // 5, npk, 23):
        data[i * 188 + 8:(i + 1) * 188] = rng.integers(0, 256, 180, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.ts"
    bad.write_bytes(bytes(data))
    return bad


def test_ffmpeg_messages_end_the_progress_line(tmp_path, ring):
    """On a terminal FFmpeg's own messages about a damaged stream start on a line of their own,
    as every complaint does: never glued to the end of the live progress line."""
    import shlex, shutil
    assert shutil.which("script"), "script (bsdutils) is needed to give the programs a terminal"
    bad = damaged_ts(tmp_path, 3)
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--quiet"])
    cap = subprocess.run(["script", "-qfec", shlex.join([CAPTURE, "--ring", ring, "-s", "160x120", "--realtime",
                                                         str(bad)]), "/dev/null"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    out = cap.stdout.decode(errors="replace")
    assert dump.wait(timeout=TIMEOUT) == 0
    assert cap.returncode == 0, out
    assert re.search(r"\[h264 @ ", out), "no FFmpeg message to look at: %r" % out
    assert "decode errors" in out, out
    for line in out.split("\n"):
        if "decode errors" in line:  # a progress line (or the summary): nothing after it
            assert " @ 0x" not in line, "FFmpeg's message glued to the progress line: %r" % line


def test_loop(tmp_path, ring):
    n = ffprobe_count(SMALL)
    total = 2 * n + 20
    run = run_pipeline(tmp_path, ring, [SMALL, "-s", "160x120", "--loop", "--frames", str(total)])
    hs = run.headers
    assert len(hs) == total and [h["seq"] for h in hs] == list(range(total))
    disc = [h["seq"] for h in hs if h["flags"] & FLAG_DISCONT]
    assert disc == [n, 2 * n]
    assert hs[n]["pts"] == hs[0]["pts"] and hs[n]["flags"] & FLAG_KEY
    fb = frame_bytes("bgr24", 160, 120)
    assert np.array_equal(run.raw[:n * fb], run.raw[n * fb:2 * n * fb])
    assert run.stats["loops"] == 2 and hs[-1]["flags"] & FLAG_EOS
    check_headers(run, total, "bgr24", 160, 120)


def test_seek_start(tmp_path, ring):
    """--start 2: the first frame is the one at 2.000 s (not the key frame before), like ffmpeg -ss."""
    n = 10
    run = run_pipeline(tmp_path, ring, [SAMPLE, "--start", "2", "-s", "640x360", "--frames", str(n)])
    hs = run.headers
    assert hs[0]["pts"] == 2 * 15360 and hs[0]["flags"] & FLAG_DISCONT
    check_headers(run, n, "bgr24", 640, 360, first_key=False)
    ref = ffmpeg_raw(["-ss", "2", "-i", SAMPLE], tmp_path / "ref.raw", "bgr24", size="640x360", frames=n)
    assert_same(run.raw, ref, "seek")


def test_duration(tmp_path, ring):
    run = run_pipeline(tmp_path, ring, [SAMPLE, "--duration", "1", "-s", "160x90"], raw=False)
    assert len(run.headers) == 30
    # shorter than a frame: the first frame (at 0 s) is in it, never "no frame could be decoded"
    run = run_pipeline(tmp_path, ring, [SAMPLE, "--duration", "0.0000001", "-s", "160x90"], raw=False)
    assert len(run.headers) == 1
    run_bad([SAMPLE, "--start", "100"], ring, 4, r"nothing to play after --start")


@pytest.fixture(scope="module")
def size_change_ts(tmp_path_factory):
    """An MPEG-TS whose H.264 stream goes from 320x240 to 640x360 after 1 s."""
    d = tmp_path_factory.mktemp("sizechange")
    parts = []
    for i, size in enumerate(["320x240", "640x360"]):
        p = d / ("part%d.ts" % i)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=%s:rate=30:duration=1" % size, "-c:v", "libx264", "-preset",
                        "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "mpegts", "-y", str(p)],
                       check=True, timeout=TIMEOUT)
        parts.append(p)
    out = d / "change.ts"
    with open(out, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    return out, parts


def test_resolution_change(tmp_path, ring, size_change_ts):
    path, parts = size_change_ts
    n = ffprobe_count(str(path))
    # output follows the source size: the record size changes
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source"])
    hs = run.headers
    assert len(hs) == n == 60
    sizes = [(h["width"], h["height"]) for h in hs]
    k = sizes.index((640, 360))
    assert set(sizes[:k]) == {(320, 240)} and set(sizes[k:]) == {(640, 360)}
    assert [h["seq"] for h in hs if h["flags"] & FLAG_DISCONT] == [k]
    assert run.stats["format_changes"] == 1
    ref = ffmpeg_raw(["-i", str(parts[1])], tmp_path / "ref.raw", "bgr24")
    assert_same(run.raw[k * 320 * 240 * 3:], ref, "after the size change")
    # fixed output size: the scaler is re-made, records keep their size
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "640x360", "-p", "nv12"])
    check_headers(run, n, "nv12", 640, 360)
    assert [h["seq"] for h in run.headers if h["flags"] & FLAG_DISCONT] == [k]
    ref = ffmpeg_raw(["-i", str(parts[1])], tmp_path / "ref.raw", "nv12")
    assert_same(run.raw[k * frame_bytes("nv12", 640, 360):], ref, "fixed size after the change")



@pytest.fixture(scope="module")
def color_media(tmp_path_factory):
    """Ten 320x240 frames of testsrc2 each way a camera or a file tags its colour: MJPEG (yuvj420p,
    full range, BT.601), full-range HEVC, H.264 tagged BT.709, and H.264 with no tags at all."""
    d = tmp_path_factory.mktemp("color")
    made = {}
    for name, args in (("mjpeg.avi", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"]),
                       ("hevc-full.mp4", ["-c:v", "libx265", "-x265-params", "log-level=error",
                                          "-pix_fmt", "yuv420p", "-color_range", "pc"]),
                       ("h264-bt709.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
                                           "-color_primaries", "bt709", "-color_trc", "bt709"]),
                       ("h264-untagged.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"])):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=10", "-frames:v", "10"] + args + ["-y", str(d / name)],
                       check=True, timeout=TIMEOUT)
        made[name.split(".")[0]] = d / name
    return made


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
@pytest.mark.parametrize("media", ["mjpeg", "hevc-full"])
def test_full_range_source_is_made_limited(tmp_path, ring, color_media, media, fmt):
    """10.1: a full-range source at source size in i420/nv12 is converted to limited range, byte
    for byte what `ffmpeg -pix_fmt yuv420p|nv12` gives, and the header says so."""
    path = color_media[media]
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "-p", fmt])
    check_headers(run, 10, fmt, 320, 240)
    ref = ffmpeg_raw(["-i", str(path)], tmp_path / "ref.raw", "yuv420p" if fmt == "i420" else fmt)
    assert_same(run.raw, ref, "%s as %s" % (media, fmt))
    assert {h["color"]["range"] for h in run.headers} == {"limited"}
    luma = split_planes(run.raw[:frame_bytes(fmt, 320, 240)], fmt, 320, 240)[0]
    assert luma.min() >= 16 and luma.max() <= 235, (luma.min(), luma.max())


@pytest.mark.parametrize("media,matrix,tagged", [("h264-bt709", "bt709", "bt709"),
                                                 ("h264-untagged", "unspecified", "unspecified"),
                                                 ("mjpeg", "bt470bg", "unspecified")])
def test_colorimetry_in_headers_and_meta(tmp_path, ring, color_media, media, matrix, tagged):
    """10.2: YUV records carry the source's matrix, limited range, primaries, transfer and chroma
    siting; BGR records say the matrix they were converted with (BT.601 for an untagged source, as
    swscale and ffmpeg do) and full range, and their pixels are ffmpeg's conversion of the same
    frames; framering-ctl stat shows the same from the ring's meta."""
    path = color_media[media]
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "-p", "i420"])
    # H.264 is copied with its own (left) siting; MJPEG's centred chroma is resampled to left
    assert {tuple(h["color"].values()) for h in run.headers} == {(matrix, "limited", tagged, tagged, "left")}
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "-p", "bgr24"])
    converted = {"unspecified": "bt601"}.get(matrix, matrix)
    assert {tuple(h["color"].values()) for h in run.headers} == {
        (converted, "full", tagged, tagged, "unspecified")}
    assert_same(run.raw, ffmpeg_raw(["-i", str(path)], tmp_path / "ref.raw", "bgr24"), media + " as bgr24")
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--loop", "-s", "source", "-p", "bgr24",
                            str(path)])
    try:
        wait_for(shm_path(ring))
        time.sleep(0.5)
        kv = dict(l.split(": ", 1) for l in subprocess.run([CTL, "stat", ring], capture_output=True, text=True,
                                                            timeout=10).stdout.splitlines())
    finally:
        cap.terminate()
        cap.wait(timeout=TIMEOUT)
    assert (kv["color_matrix"], kv["color_range"], kv["color_primaries"]) == (converted, "full", tagged), kv


def no_room_beyond(limit):
    """A preexec_fn: files this process makes may not grow past LIMIT bytes (RLIMIT_FSIZE), and
    going past it is an error (EFBIG), not the default SIGXFSZ: like a /dev/shm that is full."""
    import resource

    def set_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


@pytest.fixture(scope="module")
def grow_and_shrink_ts(tmp_path_factory):
    """An MPEG-TS whose H.264 stream goes 320x180 (10 frames) -> 3840x2160 (3) -> 320x180 (10)."""
    d = tmp_path_factory.mktemp("grow")
    parts = []
    for i, (size, n) in enumerate([("320x180", 10), ("3840x2160", 3), ("320x180", 10)]):
        p = d / ("part%d.ts" % i)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=%s:rate=10" % size, "-frames:v", str(n), "-c:v", "libx264", "-preset",
                        "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "mpegts", "-y", str(p)],
                       check=True, timeout=TIMEOUT)
        parts.append(p)
    out = d / "grow.ts"
    out.write_bytes(b"".join(p.read_bytes() for p in parts))
    return out, parts


@pytest.mark.parametrize("fmt", ["bgr24", "i420"])
def test_stream_that_grows_is_followed(tmp_path, ring, grow_and_shrink_ts, fmt):
    """10.5: a source that grows past the ring (320x180 -> 3840x2160 -> back) never ends the stream:
    the producer replaces the ring by a larger one under the same name, the consumer follows by
    itself, and every frame arrives with ffmpeg's pixels before, during and after."""
    path, parts = grow_and_shrink_ts
    run = run_pipeline(tmp_path, ring, [str(path), "-s", "source", "--slots", "2", "-p", fmt])
    sizes = [(h["width"], h["height"]) for h in run.headers]
    assert sizes == [(320, 180)] * 10 + [(3840, 2160)] * 3 + [(320, 180)] * 10, sizes
    assert [h["seq"] for h in run.headers] == list(range(23))
    assert run.stats["ring_replacements"] == 1, run.stats
    assert "followed 1 ring replacement" in run.dump.stderr, run.dump.stderr
    assert "1 ring replacements" in run.cap.stderr, run.cap.stderr
    small, big = frame_bytes(fmt, 320, 180), frame_bytes(fmt, 3840, 2160)
    pix = {"bgr24": "bgr24", "i420": "yuv420p"}[fmt]
    off = 0
    for i, (part, n, one) in enumerate(zip(parts, (10, 3, 10), (small, big, small))):
        ref = ffmpeg_raw(["-i", str(part)], tmp_path / "ref.raw", pix)
        assert_same(run.raw[off:off + n * one], ref, "part %d" % i)
        off += n * one
    assert off == run.raw.size


def test_failure_while_running_exits_1(tmp_path, ring, size_change_ts):
    """A failure mid-stream ends the producer with exit 1 and one line naming it, and its
    consumer with exit 7 and that line (not 'end of stream' and 0): here a source-size switch
    whose larger ring finds no room in /dev/shm; and a ring segment shrunk under the producer
    by another process (ftruncate)."""
    path, _ = size_change_ts
    d = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--quiet"], stderr=subprocess.PIPE, text=True)
    # 320x240 fits the first ring (1 MiB); 640x360 needs 4 MiB, past the 2 MiB allowed
    cap = subprocess.run([CAPTURE, "--ring", ring, "-s", "source", "--slots", "2", str(path)],
                         capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=no_room_beyond(2 << 20))
    _, dump_err = d.communicate(timeout=TIMEOUT)
    assert cap.returncode == 1, cap.stderr
    complaints = [line for line in cap.stderr.splitlines() if "shared memory" in line]
    assert len(complaints) == 1 and "--slots" in complaints[0], cap.stderr
    assert d.returncode == 7, dump_err
    assert ("framering-dump: the producer of ring '%s' failed: cannot create ring" % ring) in dump_err, dump_err

    cap = subprocess.Popen([CAPTURE, "--ring", ring, "-f", "lavfi", "testsrc2=size=160x120:rate=30", "-s",
                            "source"], stderr=subprocess.PIPE, text=True)
    try:
        seg = "/dev/shm/" + ring
        deadline = time.monotonic() + 20
        while not os.path.exists(seg) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        os.truncate(seg, 0)
        _, err = cap.communicate(timeout=TIMEOUT)
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    assert cap.returncode == 1, err
    shrank = [line for line in err.splitlines() if "shrank" in line]
    assert len(shrank) == 1 and ring in shrank[0], err

# ------------------------------------------------------------------ full ring

def test_drop_mode_slow_consumer(tmp_path, ring):
    """Drop policy and a consumer holding every frame 200 ms: drops are counted
    and written + dropped == produced; the consumer gets every written frame.
    The source is paced (30 fps, lavfi's default) so the consumer is surely
    attached before the producer ends; it reads 5 frames/s of 30, so drops
    must happen whatever the machine's speed."""
    n = 45
    run = run_pipeline(tmp_path, ring, ["-f", "lavfi", "testsrc2=size=320x240:rate=30", "-s", "source",
                                        "--on-full", "drop", "--slots", "2",
                                        "--frames", str(n)], ["--slow-ms", "200"], raw=False)
    st = run.stats
    assert st["frames_produced"] == n
    assert st["frames_written"] + st["frames_dropped"] == n
    assert st["frames_dropped"] > 0
    assert st["ring_records_dropped"] == st["frames_dropped"]
    assert len(run.headers) == st["frames_written"]
    # seq is the ring's frame counter: strictly increasing; whether dropped frames
    # consume numbers (gaps) is the ring's business, so only bound it
    seqs = [h["seq"] for h in run.headers]
    assert all(b > a for a, b in zip(seqs, seqs[1:])) and seqs[0] == 0 and seqs[-1] < n
    assert seqs[-1] + 1 - len(seqs) <= st["frames_dropped"]  # gaps, if any, are drops
    assert "%d drops seen" % st["frames_dropped"] in run.dump.stderr


def test_block_mode_slow_consumer_lossless(tmp_path, ring):
    n = ffprobe_count(SMALL)
    run = run_pipeline(tmp_path, ring, [SMALL, "-s", "source", "--slots", "1"], ["--slow-ms", "5"],
                       raw=False)
    assert len(run.headers) == n and run.stats["frames_dropped"] == 0


def test_block_mode_consumer_leaves(tmp_path, ring):
    """Block mode: when the consumer quits early the producer stops (exit 0),
    like a pipe writer, instead of waiting forever for ring space."""
    r = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--frames", "10", "--quiet"])
    cap = subprocess.run([CAPTURE, "--ring", ring, "--stats-json", str(tmp_path / "s.json"), SAMPLE],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert r.wait(timeout=TIMEOUT) == 0
    assert cap.returncode == 0, cap.stderr
    assert "stopped: the consumer left" in cap.stderr
    st = json.load(open(tmp_path / "s.json"))
    assert st["ring_records_read"] == 10 and st["frames_written"] < ffprobe_count(SAMPLE)


def test_consumer_killed_while_capture_waits_for_the_last_frames(tmp_path, ring):
    """Block mode: after its last frame capture waits until a consumer has read them all. A
    consumer killed meanwhile leaves frames unread: the summary says so (exit 0: the input was
    played), and the stats count them; it used to read as if every frame had been delivered."""
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--slow-ms", "300", "--quiet"])
    try:
        cap = subprocess.Popen([CAPTURE, "--ring", ring, "-f", "lavfi", "--on-full", "block", "-s", "source",
                                "--slots", "16", "--frames", "12", "--stats-json", str(tmp_path / "s.json"),
                                "testsrc2=size=160x120:rate=30"], stderr=subprocess.PIPE, text=True)
        t = time.time() + TIMEOUT
        while True:  # all 12 written and the consumer reading the first ones: capture waits to drain
            st = subprocess.run([CTL, "stat", ring], capture_output=True, text=True).stdout
            st = dict(l.split(": ", 1) for l in st.splitlines() if ": " in l)
            if st.get("records_written") == "12" and int(st.get("records_read", 0)) >= 1:
                break
            assert time.time() < t and cap.poll() is None, "capture did not write its 12 frames"
            time.sleep(0.05)
    finally:
        dump.kill()
    dump.wait()
    err = cap.communicate(timeout=TIMEOUT)[1]
    assert cap.returncode == 0, err
    assert re.search(r"the consumer died with \d+ frames? unread", err), err
    assert json.load(open(tmp_path / "s.json"))["frames_unread"] > 0


def test_corrupt_packets_keep_going(tmp_path, ring):
    bad = damaged_ts(tmp_path, 2)
    run = run_pipeline(tmp_path, ring, [str(bad), "-s", "source", "--quiet"], raw=False)
    assert run.stats["decode_errors"] > 0
    assert run.stats["frames_written"] > 30 and len(run.headers) == run.stats["frames_written"]


@pytest.fixture(scope="module")
def h264_mp4(tmp_path_factory):
    """60 frames of testsrc2 in H.264/MP4 with the index first (+faststart), so that a
    truncated copy still opens and its last packet is cut short."""
    path = tmp_path_factory.mktemp("damaged") / "full.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=30", "-frames:v", "60", "-c:v", "libx264", "-preset",
                    "fast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y", str(path)],
                   check=True, timeout=TIMEOUT)
    return path


@pytest.mark.parametrize("threads", [None, 4])
@pytest.mark.parametrize("cut", [0.3, 0.5, 0.7])
def test_truncated_file_every_frame_ffmpeg_decodes(tmp_path, ring, h264_mp4, cut, threads):
    """A file cut short: the decoder fails on the last, partial packet and, with frame
    threads, reports it at the drain before the frames its other threads still hold.
    Every frame ffmpeg decodes arrives, pixel for pixel, and the failure is counted as
    ffmpeg counts it (one "Error while decoding stream" line per failure). threads=4 makes
    the decoder hold several frames whatever the machine's core count."""
    data = h264_mp4.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[:int(len(data) * cut)])
    dec = ["-threads", str(threads)] if threads else []
    ref_path = tmp_path / "ref.raw"
    # passthrough: the frames as decoded, none duplicated to fill a gap in the timestamps
    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error"] + dec + ["-i", str(bad),
                        "-fps_mode", "passthrough", "-pix_fmt", "bgr24", "-f", "rawvideo", "-y", str(ref_path)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    ref = np.fromfile(ref_path, np.uint8)
    fb = frame_bytes("bgr24", 320, 240)
    n, failures = ref.size // fb, r.stderr.count("Error while decoding stream")
    assert 0 < n < 60 and failures > 0, (n, r.stderr)  # the file really is damaged

    opts = ["-o", "threads=%d" % threads] if threads else []
    run = run_pipeline(tmp_path, ring, [str(bad), "-s", "source"] + opts)
    check_headers(run, n, "bgr24", 320, 240)
    assert_same(run.raw, ref, "truncated file")
    st = run.stats
    assert st["frames_written"] == n
    assert st["decode_failures"] == failures, st
    assert st["decode_errors"] >= st["decode_failures"]
    assert "%d decode errors" % st["decode_errors"] in run.cap.stderr, run.cap.stderr
    said = [l for l in run.cap.stderr.splitlines() if l.startswith("framering-capture: error while decoding")]
    assert len(said) == failures and "going on" in said[0], run.cap.stderr


# ------------------------------------------------------------------ signals

def wait_for(path, timeout=20):
    t = time.monotonic()
    while not os.path.exists(path):
        assert time.monotonic() - t < timeout, "%s never appeared" % path
        time.sleep(0.02)


@pytest.mark.parametrize("live", [False, True])
def test_sigint_stops_cleanly(tmp_path, ring, live):
    """Blocked on a full ring (file, no consumer) or dropping (live): SIGINT ends
    with exit 0, end of stream for the consumer, and the segment removed."""
    args = ["-f", "lavfi", "testsrc2=size=320x240:rate=30"] if live else [SAMPLE, "--loop"]
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--slots", "2"] + args, stderr=subprocess.PIPE,
                           text=True)
    dump = None
    try:
        wait_for(shm_path(ring))
        time.sleep(0.5)
        dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "5", "--frames", "1000000", "--quiet"])
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=20)
        assert dump.wait(timeout=20) == 0
    finally:
        for p in (cap, dump):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert cap.returncode == 0, err
    assert "stopped by signal" in err
    assert not os.path.exists(shm_path(ring))


def test_sigint_while_opening_a_fifo(tmp_path, ring):
    """A FIFO as the input (another program writes the stream into it): opening it waits in the
    kernel for a writer, and Ctrl-C there stops cleanly (0, not "cannot open input", 4)."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "-f", "mpegts", str(fifo)], stderr=subprocess.PIPE,
                           text=True)
    try:
        procinfo.wait_opening_fifo(cap, 20, "capture")
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=20)
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    assert cap.returncode == 0, err
    assert "cannot open" not in err, err
    assert not os.path.exists(shm_path(ring))


def test_sigint_after_ring_replacement(tmp_path, ring):
    """SIGINT while blocked on a full ring that replaced the first one (the frames grew) is a
    stop like any other: exit 0, one summary, a clean end of stream for the consumer; never
    "cannot reserve a frame" (the interrupted wait) passed on to it as the producer's failure."""
    parts = []
    for i, (size, n) in enumerate([("160x90", 60), ("640x360", 300)]):
        p = tmp_path / ("part%d.ts" % i)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=%s:rate=10" % size, "-frames:v", str(n), "-c:v", "libx264", "-preset",
                        "ultrafast", "-bf", "0", "-f", "mpegts", "-y", str(p)], check=True, timeout=TIMEOUT)
        parts.append(p.read_bytes())
    src = tmp_path / "grow.ts"
    src.write_bytes(b"".join(parts))
    hdr = tmp_path / "out.hdr"
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--slots", "2", "-s", "source", str(src)],
                           stderr=subprocess.PIPE, text=True)
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--slow-ms", "20", "--quiet",
                             "--headers", str(hdr)], stderr=subprocess.PIPE, text=True)
    try:
        # a slow consumer keeps the producer blocked on the full ring; once the consumer maps
        # another segment of the ring's name, the ring was replaced, the consumer reads the
        # large frames and the producer waits in the new one (not told by --headers: dump
        # writes it in 64 KiB blocks, long after the frames grew)
        t = time.monotonic()
        first = None
        while True:
            try:
                ino = os.stat(shm_path(ring)).st_ino
                with open("/proc/%d/maps" % dump.pid) as f:
                    mapped = {int(line.split()[4]) for line in f if ring in line}
            except FileNotFoundError:  # not made yet, or between the two segments
                ino, mapped = None, set()
            first = first or ino
            if ino and ino != first and ino in mapped:
                break
            assert time.monotonic() - t < 60 and cap.poll() is None, "the frames never grew"
            time.sleep(0.05)
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=20)
        _, derr = dump.communicate(timeout=20)
    finally:
        for p in (cap, dump):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert cap.returncode == 0, err
    assert "stopped by signal" in err and "1 ring replacements" in err, err
    assert "cannot reserve" not in err, err
    assert dump.returncode == 0, derr
    assert not os.path.exists(shm_path(ring))


# ------------------------------------------------------------------ bad input

def run_bad(args, ring, code, pattern):
    r = subprocess.run([CAPTURE, "--ring", ring] + args, capture_output=True, text=True, timeout=60)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == code, r.stderr
    assert len(lines) == 1, "expected one line, got: %r" % r.stderr
    assert lines[0].startswith("framering-capture: ") and re.search(pattern, lines[0]), lines[0]
    assert not os.path.exists(shm_path(ring))


def test_bad_missing_file(ring, tmp_path):
    run_bad([str(tmp_path / "nope.mp4")], ring, 3, r"not found")


def test_bad_corrupt_file(ring, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(2).integers(0, 256, 100000, dtype=np.uint8).tobytes())
    run_bad([str(junk)], ring, 4, r"junk\.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(open(SAMPLE, "rb").read()[:3000])
    run_bad([str(cut)], ring, 4, r"cut\.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    run_bad([str(empty)], ring, 4, r"empty\.mp4")
    # a decoder that cannot open the stream (raw video of 7 bits a pixel) is a bad input, also with
    # -o values it takes: EINVAL from avcodec_open2 is not always the user's option
    good = tmp_path / "raw.avi"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=5:d=1", "-c:v", "rawvideo", "-pix_fmt", "bgr24", "-vtag", "0",
                    str(good)], check=True, timeout=60)
    data = bytearray(good.read_bytes())
    bit_count = data.index(b"strf") + 8 + 14  # BITMAPINFOHEADER.biBitCount
    assert data[bit_count:bit_count + 2] == (24).to_bytes(2, "little")
    data[bit_count:bit_count + 2] = (7).to_bytes(2, "little")
    odd = tmp_path / "odd.avi"
    odd.write_bytes(bytes(data))
    run_bad(["-o", "threads=1", str(odd)], ring, 4, r"cannot open the rawvideo decoder")


def test_bad_formats(ring):
    run_bad(["-f", "nosuchformat", SAMPLE], ring, 5, r"unknown input format 'nosuchformat'")
    run_bad(["-p", "yuv999", SAMPLE], ring, 5, r"unknown pixel format 'yuv999'")


@pytest.mark.parametrize("size", ["0x10", "abc", "20000x100", "640x", "-640x480"])
def test_bad_size(ring, size):
    run_bad(["-s", size, SAMPLE], ring, 6, r"bad size")
    # -s source of a picture wider than any frame: the line says what the limit is and what to do
    run_bad(["-s", "source", "-f", "lavfi", "testsrc2=size=20000x16:d=0.1"], ring, 6,
            r"20000x16 .*16384x16384.*--size")


def test_bad_usage(ring):
    run_bad(["--no-such-option"], ring, 2, r"unknown option")
    # inside a cluster the line names the option, not the argument before it
    run_bad(["--frames", "5", "-Zq", SAMPLE], ring, 2, r"unknown option '-Z'")
    run_bad(["-o", "nosuchopt=1", SAMPLE], ring, 2, r"'nosuchopt'")
    run_bad(["-o", "novalue", SAMPLE], ring, 2, r"KEY=VALUE")
    # an option value its decoder or demuxer cannot take is a typo (2), not a bad input (4): avcodec_open2
    # and avformat_open_input say EINVAL for both; the line names the option
    run_bad(["-o", "threads=2x", SAMPLE], ring, 2,
            r"bad -o threads=2x: option 'threads' of the h264 decoder does not take '2x'$")
    run_bad(["-o", "skip_frame=bogus", SAMPLE], ring, 2, r"option 'skip_frame' of the h264 decoder")
    run_bad(["-o", "threads=-3", SAMPLE], ring, 2, r"option 'threads' of the h264 decoder .*out of its range")
    run_bad(["-o", "threads=1", "-o", "probesize=abc", SAMPLE], ring, 2,
            r"bad -o probesize=abc: option 'probesize' of the demuxer does not take 'abc'")
    run_bad(["--frames", "x", SAMPLE], ring, 2, r"--frames")
    run_bad(["--frames", " -5", SAMPLE], ring, 2, r"--frames")  # strtoull would wrap it to 2^64 - 5
    run_bad(["-f", "lavfi", "--loop", "testsrc2"], ring, 2, r"--loop")
    run_bad(["--on-full", "maybe", SAMPLE], ring, 2, r"--on-full")
    run_bad(["--hot-lap", "maybe", SAMPLE], ring, 2, r"--hot-lap")


def test_bad_stats_json(ring, tmp_path):
    """--stats-json that cannot be written (at the end of a run that went well) is a failure:
    one line and a non-zero status, never exit 0 with the counters lost."""
    r = subprocess.run([CAPTURE, "--ring", ring, "-q", "--frames", "3", "-s", "64x48", "--stats-json",
                        str(tmp_path / "no" / "dir" / "s.json"), "-f", "lavfi", "testsrc2=size=64x48:rate=30"],
                       capture_output=True, text=True, timeout=60)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1, r.stderr
    assert len(lines) == 1 and re.search(r"cannot write --stats-json", lines[0]), r.stderr
    assert not os.path.exists(shm_path(ring))


def test_bad_ring_name(ring, tmp_path):
    run_bad(["--ring", "a/b", SAMPLE], ring, 2, r"bad ring name")
    # said before the input is opened: not "input not found", and a listener does not wait first
    run_bad(["--ring", "a/b", str(tmp_path / "nope.mp4")], ring, 2, r"bad ring name")
    run_bad(["--ring", "a/b", "-f", "mpegts", "tcp://127.0.0.1:%d?listen=1" % free_tcp_port()], ring, 2,
            r"bad ring name")


def free_tcp_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_bad_missing_camera(ring):
    run_bad(["/dev/video99"], ring, 8, r"camera '/dev/video99' not found")
    run_bad(["-f", "v4l2", "-o", "video_size=640x480", "-o", "framerate=30", "-o", "input_format=mjpeg",
             "/dev/video98"], ring, 8, r"camera '/dev/video98'")


def test_bad_ring_in_use(ring):
    holder = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--loop", SMALL])
    try:
        wait_for(shm_path(ring))
        r = subprocess.run([CAPTURE, "--ring", ring, SMALL], capture_output=True, text=True, timeout=60)
        assert r.returncode == 7, r.stderr
        want = r"ring '%s' is in use by a live producer \(pid %d\)" % (ring, holder.pid)
        assert re.search(want, r.stderr), r.stderr
        assert os.path.exists(shm_path(ring))  # the holder's ring is untouched
    finally:
        holder.send_signal(signal.SIGTERM)
        rc = holder.wait(timeout=20)
    assert rc == 0, "the holder exited with %d after SIGTERM" % rc
    assert not os.path.exists(shm_path(ring))


def private_shm_shell():
    """The command that runs `sh -c SCRIPT` with a private mount namespace (so the test can mount a
    small tmpfs on /dev/shm that no one else sees), or skip saying why it cannot here."""
    why = []
    for cmd in (["unshare", "-m"], ["unshare", "-r", "-m"]):  # as root, else in a user namespace
        try:
            r = subprocess.run(cmd + ["sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                               capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            pytest.skip("unshare(1) is not installed (util-linux)")
        if r.returncode == 0:
            return cmd + ["sh", "-c"]
        why.append("%s: %s" % (" ".join(cmd), r.stderr.strip() or "exit %d" % r.returncode))
    pytest.skip("cannot mount a private /dev/shm (needs root or user namespaces): " + "; ".join(why))


def test_short_shm_advice(ring, tmp_path):
    """On a 20 MiB /dev/shm a 1080p bgr24 ring of the default 4 slots (32 MiB + a page) cannot be
    made: one line with both sizes and the ways out, exit 7, nothing left behind; and the advice
    works: --slots 2 --size 640x360 fits the same /dev/shm, and so does --slots 2 alone: two
    1080p frames in flight take a 16 MiB ring (it took 32 MiB, one slot more than asked)."""
    shell = private_shm_shell()
    err1, err2, err3 = tmp_path / "big.err", tmp_path / "small.err", tmp_path / "two.err"
    src = ["-f", "lavfi", "testsrc2=size=1920x1080:rate=30", "--frames", "5"]
    big = shlex.join([CAPTURE, "-r", ring] + src)
    small = shlex.join([CAPTURE, "-r", ring, "--quiet", "--slots", "2", "--size", "640x360"] + src)
    two = shlex.join([CAPTURE, "-r", ring, "--quiet", "--slots", "2"] + src)
    script = ("mount -t tmpfs -o size=20m tmpfs /dev/shm || exit 90\n"
              "%s 2>%s; echo \"big=$?\"; echo \"after-big=$(ls -A /dev/shm | tr '\\n' ' ')\"\n"
              "%s 2>%s; echo \"small=$?\"; echo \"after-small=$(ls -A /dev/shm | tr '\\n' ' ')\"\n"
              "%s 2>%s; echo \"two=$?\"\n"
              % (big, shlex.quote(str(err1)), small, shlex.quote(str(err2)), two, shlex.quote(str(err3))))
    r = subprocess.run(shell + [script], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    text = err1.read_text()
    lines = [l for l in text.splitlines() if l.strip()]
    assert out["big"] == "7", text
    assert len(lines) == 1 and lines[0].startswith("framering-capture: cannot create ring '%s'" % ring), text
    need = re.search(r"needs (\d+\.\d) MiB", lines[0])
    free = re.search(r"/dev/shm has (\d+\.\d) MiB free", lines[0])
    assert need and float(need.group(1)) == 32.0, lines[0]  # 4096 + 32 MiB of capacity
    assert free and 19.0 <= float(free.group(1)) <= 20.0, lines[0]
    for advice in ("fewer --slots", "smaller --size", "--shm-size=", "mount -o remount,size="):
        assert advice in lines[0], (advice, lines[0])
    assert out["after-big"].strip() == "", "left in /dev/shm: " + out["after-big"]
    assert out["small"] == "0", err2.read_text()
    assert out["after-small"].strip() == "", "left in /dev/shm: " + out["after-small"]
    assert out["two"] == "0", err3.read_text()


def test_dump_errors(ring):
    r = subprocess.run([DUMP, "--ring", ring, "--wait", "0.2"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "not found" in r.stderr
    r = subprocess.run([DUMP, "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "unknown option" in r.stderr


def test_dump_producer_died(ring):
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--loop", "-s", "160x120", SMALL])
    try:
        wait_for(shm_path(ring))
        dump = subprocess.Popen([DUMP, "--ring", ring, "--slow-ms", "50"], stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        cap.kill()
        cap.wait()
        _, err = dump.communicate(timeout=30)
        assert dump.returncode == 3, err
        assert "died" in err
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    # the consumer removes the stale segment when its producer is dead (fr_ring_close)
    if os.path.exists(shm_path(ring)):
        subprocess.run([CTL, "rm", ring], timeout=10)


# ------------------------------------------------------------------ framering-ctl

def test_ctl_list_stat_rm(ring):
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--loop", "-s", "320x240", SMALL])
    try:
        wait_for(shm_path(ring))
        time.sleep(0.3)
        out = subprocess.run([CTL, "list"], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0
        line = [l for l in out.stdout.splitlines() if l.split()[:1] == [ring]]
        assert line, out.stdout
        assert "%d(alive)" % cap.pid in line[0] and "320x240 bgr24 sample-320x240" in line[0]
        st = subprocess.run([CTL, "stat", ring], capture_output=True, text=True, timeout=10)
        kv = dict(l.split(": ", 1) for l in st.stdout.splitlines())
        assert st.returncode == 0 and kv["producer_pid"] == str(cap.pid) and kv["producer_alive"] == "yes"
        assert kv["format"] == "bgr24" and kv["width"] == "320" and kv["frame_rate"] == "30/1"
        rm = subprocess.run([CTL, "rm", ring], capture_output=True, text=True, timeout=10)
        assert rm.returncode == 3 and "live producer" in rm.stderr
        assert os.path.exists(shm_path(ring))
        cap.kill()  # no cleanup: leaves a stale ring
        cap.wait()
        st = subprocess.run([CTL, "stat", ring], capture_output=True, text=True, timeout=10)
        assert "producer_alive: no" in st.stdout
        rm = subprocess.run([CTL, "rm", ring], capture_output=True, text=True, timeout=10)
        assert rm.returncode == 0, rm.stderr
        assert not os.path.exists(shm_path(ring))
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    for args, code in ((["stat", ring], 2), (["rm", ring], 2), (["frobnicate"], 1), (["stat"], 1)):
        r = subprocess.run([CTL] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == code, (args, r.stderr)
