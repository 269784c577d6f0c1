"""test_send.py - end-to-end tests of framering-send: ring -> encoder -> file or network stream.

Run by ctest (tests/send/CMakeLists.txt) with FRAMERING_PYTHON_EXE -m pytest; the programs
and samples come from environment variables CMake sets: FRAMERING_CAPTURE, FRAMERING_DUMP,
FRAMERING_SEND, FRAMERING_SAMPLE_SMALL.

What the ring carried is read by a second consumer, framering-dump (--raw, --headers), next to
framering-send; the producer waits for both (--wait-consumers 2, --on-full block). Recordings
are decoded by the ffmpeg CLI and compared byte for byte when the path is lossless (FFV1, or
libx264 -qp 0 in the ring's own yuv420p). Network tests use the ffmpeg CLI (or framering-capture)
as the real peer on loopback, on free ports.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from children import Children  # noqa: E402  (tests/common)
import procinfo  # noqa: E402  (tests/common)

CAPTURE = os.environ.get("FRAMERING_CAPTURE", "framering-capture")
DUMP = os.environ.get("FRAMERING_DUMP", "framering-dump")
SEND = os.environ.get("FRAMERING_SEND", "framering-send")
CTL = os.environ.get("FRAMERING_CTL", "framering-ctl")
SMALL = os.environ.get("FRAMERING_SAMPLE_SMALL", "assets/sample-320x240.mp4")
TIMEOUT = 120
FF_PIXFMT = {"bgr24": "bgr24", "i420": "yuv420p", "gray": "gray", "nv12": "nv12", "rgb24": "rgb24"}


# ------------------------------------------------------------------ helpers

def shm_path(name):
    return os.path.join("/dev/shm", name)


@pytest.fixture
def ring():
    name = "frtest-send-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    yield name
    for n in (name, name + "-b"):
        left = os.path.exists(shm_path(n))
        if left:
            os.unlink(shm_path(n))
        assert not left, "ring segment %s was left in /dev/shm" % n


@pytest.fixture
def procs():
    children = Children(stderr=subprocess.PIPE, text=True)
    yield children
    children.kill_all()


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(path, timeout=20):
    t = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < t, "%s did not appear" % path
        time.sleep(0.02)


def frame_bytes(fmt, w, h):
    cw, ch = (w + 1) // 2, (h + 1) // 2
    return {"bgr24": w * h * 3, "rgb24": w * h * 3, "gray": w * h, "i420": w * h + 2 * cw * ch,
            "nv12": w * h + 2 * cw * ch}[fmt]


def read_headers(path):
    out = []
    for line in open(path):
        f = line.split()
        out.append(dict(seq=int(f[0]), pts=int(f[1]), tb=(int(f[2]), int(f[3])), capture_ns=int(f[4]),
                        width=int(f[5]), height=int(f[6]), fmt=f[7], flags=int(f[8])))
    return out


def decode(path, pix_fmt, out):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
                    "-f", "rawvideo", "-pix_fmt", pix_fmt, "-fps_mode", "passthrough", "-y", str(out)],
                   check=True, timeout=TIMEOUT)
    return np.fromfile(out, np.uint8)


def probe_frames(path):
    """(pts_time, key) of every decoded frame, in presentation order."""
    out = subprocess.check_output(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                   "frame=best_effort_timestamp_time,key_frame", "-of", "csv=p=0",
                                   str(path)], text=True, timeout=TIMEOUT)
    frames = []
    for line in out.split():
        f = line.split(",")
        frames.append(float(f[1]) if f[1] not in ("", "N/A") else None)
    return frames


def probe_sizes(path):
    out = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "frame=width,height",
                                   "-of", "csv=p=0", str(path)], text=True, timeout=TIMEOUT)
    return [tuple(int(x) for x in l.split(",")[:2]) for l in out.split()]


def probe_count(path):
    out = subprocess.check_output(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                   "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                                  text=True, timeout=TIMEOUT)
    return int(out.split()[0].split(",")[0])


def one_line(err, pattern):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line, got: %r" % err
    assert lines[0].startswith("framering-send: ") and re.search(pattern, lines[0]), lines[0]


def record(tmp_path, procs, ring, cap_args, send_args, out_name, fmt="i420", size="320x240"):
    """Producer -> ring -> (framering-dump, framering-send OUT). Returns (send, dump, cap, out, raw, hdrs, stats)."""
    out = tmp_path / out_name
    raw, hdr, stats = tmp_path / "ring.raw", tmp_path / "ring.hdr", tmp_path / "send.json"
    dump = procs.start([DUMP, "-r", ring, "-w", "20", "--raw", str(raw), "--headers", str(hdr), "-q"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "--stats-json", str(stats)] + send_args + [str(out)])
    cap = subprocess.run([CAPTURE, "-r", ring, "-q", "--wait-consumers", "2", "--on-full", "block", "-p", fmt]
                         + (["-s", size] if size else []) + cap_args,
                         stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    _, serr = send.communicate(timeout=TIMEOUT)
    _, derr = dump.communicate(timeout=TIMEOUT)
    assert cap.returncode == 0, cap.stderr
    assert dump.returncode == 0, derr
    assert send.returncode == 0, serr
    return serr, out, np.fromfile(raw, np.uint8), read_headers(hdr), json.load(open(stats))


def assert_frames_equal(ours, ref, n, fb, what):
    assert ours.size == n * fb, "%s: %d bytes, expected %d frames of %d" % (what, ours.size, n, fb)
    assert ref.size == n * fb
    for i in range(n):
        a, b = ours[i * fb:(i + 1) * fb], ref[i * fb:(i + 1) * fb]
        if not np.array_equal(a, b):
            d = np.abs(a.astype(np.int16) - b.astype(np.int16))
            pytest.fail("%s: frame %d differs: max %d, %d bytes" % (what, i, d.max(), np.count_nonzero(d)))


def assert_pts_equal(path, headers):
    got = probe_frames(path)
    want = [h["pts"] * h["tb"][0] / h["tb"][1] for h in headers]
    assert len(got) == len(want), (len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g is not None and abs(g - w) < 0.0015, "frame %d at %s s, the ring said %.4f s" % (i, g, w)


# ------------------------------------------------------------------ help

def test_help():
    r = subprocess.run([SEND, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: framering-send")
    for row in ("Exit status", "  3  the producer died", "  8  encoder", "  9  output cannot be opened",
                " 10  output failed while running", "Examples:", "srt://"):
        assert row in r.stdout, row


# ------------------------------------------------------------------ exact recording

def test_lossless_ffv1_bgr24(tmp_path, procs, ring):
    """testsrc2 as bgr24 -> FFV1 in mkv: every frame decodes to what the ring carried, in order, same pts."""
    n = 40
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                      ["-c:v", "ffv1"], "rec.mkv", fmt="bgr24")
    assert len(hdrs) == n and st["frames"] == n and st["frames_encoded"] == n, st
    assert st["encoder"] == "ffv1" and st["format"] == "matroska" and st["timestamps"] == "pts", st
    assert "%d frames" % n in serr and "end of stream" in serr, serr
    dec = decode(out, "bgr24", tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, n, frame_bytes("bgr24", 320, 240), "ffv1")
    assert_pts_equal(out, hdrs)


def test_lossless_x264_qp0_i420(tmp_path, procs, ring):
    """testsrc2 as i420 -> libx264 -qp 0 (yuv420p, the ring's own samples): exact, order and pts kept."""
    n = 50
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=30"],
                                      ["-o", "qp=0"], "rec.mkv")
    assert st["encoder"] == "libx264" and st["pix_fmt"] == "yuv420p" and st["frames"] == n, st
    dec = decode(out, "yuv420p", tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, n, frame_bytes("i420", 320, 240), "x264 qp 0")
    assert_pts_equal(out, hdrs)


def test_sample_video_lossless(tmp_path, procs, ring):
    """The sample file through a ring into lossless H.264 in mp4: every frame of it, equal to
    ffmpeg's own decode of the sample, with the sample's timestamps."""
    n = probe_count(SMALL)
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring, [SMALL], ["-o", "qp=0", "--preset", "ultrafast"],
                                      "rec.mp4", size="source")
    assert len(hdrs) == n and st["frames"] == n, (n, st)
    assert probe_count(out) == n
    ref = decode(SMALL, "yuv420p", tmp_path / "ref.raw")
    dec = decode(out, "yuv420p", tmp_path / "dec.raw")
    fb = frame_bytes("i420", 320, 240)
    assert_frames_equal(raw, ref, n, fb, "ring vs sample")
    assert_frames_equal(dec, ref, n, fb, "recording vs sample")
    src_pts = probe_frames(SMALL)
    got = probe_frames(out)
    assert len(got) == len(src_pts)
    assert all(abs(a - b) < 0.0015 for a, b in zip(got, src_pts)), (got[:5], src_pts[:5])


def test_vfr_keeps_timestamps(tmp_path, procs, ring):
    """A variable-frame-rate source with a pause: the recording has the source's timestamps."""
    src = tmp_path / "vfr.mkv"
    # 30 frames at 25 fps, then a 1.5 s pause, then 20 frames at 10 fps
    expr = "if(lt(N,30),N*0.04,1.16+1.5+(N-30)*0.1)/TB"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25", "-vf", "setpts='%s'" % expr, "-frames:v", "50",
                    "-fps_mode", "vfr", "-c:v", "ffv1", "-y", str(src)], check=True, timeout=TIMEOUT)
    want = probe_frames(src)
    assert len(want) == 50 and want[30] - want[29] > 1.0  # the source really is VFR
    for ext in ("mp4", "mkv"):
        serr, out, raw, hdrs, st = record(tmp_path, procs, ring, [str(src)], ["--crf", "20"],
                                          "rec." + ext, size="source")
        got = probe_frames(out)
        assert len(got) == 50, (ext, len(got))
        start = got[0] - want[0]
        for i, (g, w) in enumerate(zip(got, want)):
            assert abs((g - start) - w) < 0.0015, "%s frame %d at %.4f, source %.4f" % (ext, i, g, w)
        assert_pts_equal(out, hdrs)


def test_size_change_scaled_or_restarted(tmp_path, procs, ring):
    """A ring whose size changes: scaled to the first size (mp4), or a restarted encoder in one
    MPEG-TS stream (each part at its own size)."""
    a, b, src = tmp_path / "a.ts", tmp_path / "b.ts", tmp_path / "change.ts"
    for path, size in ((a, "320x240"), (b, "640x360")):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=%s:rate=25" % size, "-frames:v", "20", "-c:v", "libx264", "-g", "10",
                        "-f", "mpegts", "-y", str(path)], check=True, timeout=TIMEOUT)
    src.write_bytes(a.read_bytes() + b.read_bytes())
    # --slots 1: the 640x360 frames do not fit the ring made for 320x240, so the producer replaces it
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring, ["--slots", "1", str(src)], ["--crf", "20"],
                                      "scaled.mp4", size="source")
    assert {(h["width"], h["height"]) for h in hdrs} == {(320, 240), (640, 360)}
    assert st["scaled_changes"] == 1 and st["encoder_restarts"] == 0 and st["frames"] == 40, st
    assert st["ring_replacements"] == 1, st  # the producer outgrew its ring: followed into the new one
    assert probe_count(out) == 40
    assert set(probe_sizes(out)) == {(320, 240)}
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring, [str(src)], ["--on-change", "restart"],
                                      "restart.ts", size="source")
    assert st["encoder_restarts"] == 1 and st["frames"] == 40, st
    dims = probe_sizes(out)
    assert dims == [(320, 240)] * 20 + [(640, 360)] * 20, dims


# ------------------------------------------------------------------ bad options

def bad(args, code, pattern, tmp_path=None):
    r = subprocess.run([SEND, "-w", "0.2"] + args, capture_output=True, text=True, timeout=60)
    assert r.returncode == code, (args, r.returncode, r.stderr)
    one_line(r.stderr, pattern)
    if tmp_path is not None:
        assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_bad_usage(tmp_path, ring):
    out = str(tmp_path / "x.mp4")
    bad(["-r", ring], 1, r"no OUTPUT given", tmp_path)
    bad(["-r", ring, out, "more.mp4"], 1, r"more than one OUTPUT", tmp_path)
    bad(["-r", ring, "--nope", out], 1, r"unknown option '--nope'", tmp_path)
    bad(["-r", ring, "-Xq", out], 1, r"unknown option '-X'", tmp_path)  # not the argument before it
    bad(["-r", ring, "-b:v", "lots", out], 1, r"bad --bitrate 'lots'", tmp_path)
    bad(["-r", ring, "--crf", "99", out], 1, r"bad --crf", tmp_path)
    bad(["-r", ring, "--crf", "nan", out], 1, r"bad --crf 'nan'", tmp_path)
    bad(["-r", ring, "-b", "0.5", out], 1, r"bad --bitrate '0.5'", tmp_path)  # not 0, which means unset
    bad(["-r", ring, "--gop", "0", out], 1, r"bad --gop", tmp_path)
    bad(["-r", ring, "-s", "0x5", out], 1, r"bad --size", tmp_path)
    bad(["-r", ring, "--on-change", "bend", out], 1, r"bad --on-change", tmp_path)
    bad(["-r", ring, "--timestamps", "wall", out], 1, r"bad --timestamps", tmp_path)
    bad(["-r", ring, "--zero-copy", "maybe", out], 1, r"bad --zero-copy 'maybe'", tmp_path)
    bad(["-r", ring, "-o", "novalue", out], 1, r"bad -o 'novalue'", tmp_path)
    bad(["-r", ring, "--reconnect", out], 1, r"--reconnect is for network outputs", tmp_path)
    bad(["-r", ring, "--on-change", "restart", out], 1, r"--on-change restart needs .* not mp4", tmp_path)
    bad(["-r", ring, "-p", "yuv999", out], 1, r"unknown pixel format 'yuv999'", tmp_path)
    bad(["-r", "bad/name", out], 1, r"bad ring name", tmp_path)


def test_bad_encoder_format_output(tmp_path, ring):
    out = str(tmp_path / "x.mp4")
    bad(["-r", ring, "-c:v", "nosuchenc", out], 8, r"unknown encoder 'nosuchenc'", tmp_path)
    bad(["-r", ring, "-c:v", "aac", out], 8, r"'aac' is not a video encoder", tmp_path)
    bad(["-r", ring, "-c:v", "ffv1", "-p", "yuv420p10le", "-c:v", "mjpeg", out], 8,
        r"mjpeg encoder does not take yuv420p10le", tmp_path)
    bad(["-r", ring, "-f", "nosuchfmt", out], 9, r"unknown output format 'nosuchfmt'", tmp_path)
    bad(["-r", ring, str(tmp_path / "x.nosuchext")], 9, r"cannot tell the output format", tmp_path)
    bad(["-r", ring, "-c:v", "ffv1", out], 9, r"mp4 format cannot carry ffv1", tmp_path)
    bad(["-r", ring, str(tmp_path / "no" / "dir.mp4")], 9, r"cannot write .*No such file", tmp_path)
    bad(["-r", ring, out], 2, r"ring '%s' not found" % ring, tmp_path)
    # FFmpeg's file: URL names the same file: its directory is the one checked
    bad(["-r", ring, "file:" + out], 2, r"ring '%s' not found" % ring, tmp_path)
    bad(["-r", ring, "file:" + str(tmp_path / "no" / "dir.mp4")], 9, r"cannot write .*No such file", tmp_path)


def producer(procs, ring, frames=None, rate=25, extra=()):
    args = [CAPTURE, "-r", ring, "-q", "-p", "i420", "-s", "320x240", "--on-full", "block"]
    if frames:
        args += ["--frames", str(frames)]
    return procs.start(args + list(extra) + ["-f", "lavfi", "testsrc2=size=320x240:rate=%d" % rate])


def test_bad_options_with_a_ring(tmp_path, procs, ring):
    """Options that only the first frame can check (encoder and muxer options, the URL): one
    line, their status, and no file left behind."""
    cap = producer(procs, ring, extra=["--on-full", "drop"])  # outlives the consumers that leave
    wait_for(shm_path(ring))
    d = tmp_path / "out"
    d.mkdir()
    bad(["-r", ring, "-o", "nosuchopt=1", str(d / "x.mp4")], 1, r"option 'nosuchopt' is not known", d)
    # a file that was there is truncated by the open: no half file is left in its place either
    (d / "old.mp4").write_bytes(b"old")
    bad(["-r", ring, "-o", "nosuchopt=1", str(d / "old.mp4")], 1, r"option 'nosuchopt' is not known", d)
    # the file protocol's own options are options too
    bad(["-r", ring, "-o", "blocksize=65536", "-o", "nosuchopt=1", str(d / "x.mkv")], 1, r"'nosuchopt'", d)
    bad(["-r", ring, "-o", "blocksize=-5", str(d / "x.mkv")], 9, r"cannot open output .*blocksize", d)
    bad(["-r", ring, "-o", "preset=warpspeed", str(d / "x.mp4")], 8, r"unknown libx264 preset 'warpspeed'", d)
    bad(["-r", ring, "-o", "qp=-7", str(d / "x.mp4")], 8, r"cannot open the libx264 encoder", d)
    bad(["-r", ring, "-o", "movflags=+nosuchflag", str(d / "x.mp4")], 9, r"cannot start the mp4 output", d)
    port = free_port()  # nobody listens there
    bad(["-r", ring, "tcp://127.0.0.1:%d" % port], 9, r"cannot open output 'tcp://127.0.0.1:%d'.*refused" % port)
    # a URL's options are the protocol's too: known once it is open (a listener here)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    bad(["-r", ring, "-o", "nosuchopt=1", "tcp://127.0.0.1:%d" % lsock.getsockname()[1]], 1,
        r"option 'nosuchopt' is not known .* protocol of 'tcp://")
    lsock.close()
    # --stats-json that cannot be written is an output that failed: its line and status 6, as
    # framering-view's (the recording itself is finished)
    r = subprocess.run([SEND, "-r", ring, "-w", "5", "-q", "--frames", "3", "--stats-json",
                        str(d / "no" / "dir" / "s.json"), str(d / "x.mkv")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 6, r.stderr
    one_line(r.stderr, r"cannot write --stats-json")
    assert probe_count(d / "x.mkv") == 3
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


def test_refuses_a_ring_segment_as_output(tmp_path, procs, ring):
    """An OUTPUT or --stats-json that is a ring's segment (/dev/shm/NAME, as a file: URL, through a
    link) is bad usage: one line, status 1, and the segment keeps every byte (the open truncated
    it under the producer and every consumer). A link to a ring that appears while send waits
    is refused when the output would be opened."""
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    wait_for(shm_path(ring))
    size = os.path.getsize(shm_path(ring))
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(shm_path(ring), links / "seg")
    os.symlink(shm_path(ring + "-b"), links / "later")
    d = tmp_path / "out"
    d.mkdir()
    says = r"'%s' is the shared-memory segment of ring '%s': writing it would destroy the ring"
    bad(["-r", ring, "-f", "mpegts", shm_path(ring)], 1, "output " + says % (shm_path(ring), ring), d)
    bad(["-r", ring, "-f", "mpegts", "file:" + shm_path(ring)], 1, "output " + says % (shm_path(ring), ring), d)
    bad(["-r", ring, "-f", "mpegts", str(links / "seg")], 1, "output " + says % (links / "seg", ring), d)
    bad(["-r", ring, "--stats-json", str(links / "seg"), str(d / "x.mkv")], 1,
        "--stats-json " + says % (links / "seg", ring), d)
    assert os.path.getsize(shm_path(ring)) == size
    send = procs.start([SEND, "-r", ring + "-b", "-w", "20", "-f", "mpegts", str(links / "later")])
    cap_b = producer(procs, ring + "-b", extra=["--on-full", "drop"])
    wait_for(shm_path(ring + "-b"))
    size_b = os.path.getsize(shm_path(ring + "-b"))
    _, err = send.communicate(timeout=60)
    assert send.returncode == 1, err
    one_line(err, "output " + says % (links / "later", ring + "-b"))
    assert os.path.getsize(shm_path(ring + "-b")) == size_b
    # the rings are whole: frames still go through, and the producers end well
    r = subprocess.run([SEND, "-r", ring, "-w", "5", "-q", "--frames", "3", str(d / "x.mkv")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert probe_count(d / "x.mkv") == 3
    for c in (cap, cap_b):
        c.send_signal(signal.SIGINT)
        assert c.wait(timeout=20) == 0


# ------------------------------------------------------------------ ends: Ctrl-C, deaths

def test_sigint_finishes_the_mp4(tmp_path, procs, ring):
    """Ctrl-C mid-stream: status 0, a playable mp4 with every frame sent; the producer sees its
    consumer leave and stops."""
    out, stats = tmp_path / "rec.mp4", tmp_path / "s.json"
    cap = producer(procs, ring)
    send = procs.start([SEND, "-r", ring, "-w", "20", "--stats-json", str(stats), str(out)])
    time.sleep(2.5)
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=30)
    assert send.returncode == 0, err
    st = json.load(open(stats))
    assert st["end"] == "stopped by signal" and st["frames"] > 10, st
    assert probe_count(out) == st["frames"]
    assert "stopped by signal" in err
    assert cap.wait(timeout=30) == 0


def test_producer_killed(tmp_path, procs, ring):
    """The producer dies (SIGKILL): status 3, the mp4 is finished and plays up to the last frame."""
    out, stats = tmp_path / "rec.mp4", tmp_path / "s.json"
    cap = producer(procs, ring)
    send = procs.start([SEND, "-r", ring, "-w", "20", "--stats-json", str(stats), str(out)])
    time.sleep(2.5)
    cap.kill()
    _, err = send.communicate(timeout=30)
    assert send.returncode == 3, err
    assert re.search(r"the producer of ring '.*' died: finishing", err), err
    st = json.load(open(stats))
    assert st["end"] == "producer died" and st["frames"] > 10 and st["exit_code"] == 3, st
    assert probe_count(out) == st["frames"]
    if os.path.exists(shm_path(ring)):  # a killed producer may leave its segment (the next one reclaims it)
        os.unlink(shm_path(ring))


def test_sender_killed(tmp_path, procs, ring):
    """The sender dies (SIGKILL) writing a fragmented mp4: what it wrote plays; the producer is
    not left hanging (its consumer left)."""
    out = tmp_path / "rec.mp4"
    cap = producer(procs, ring)
    # --low-latency: no look-ahead, so fragments reach the file while it runs
    send = procs.start([SEND, "-r", ring, "-w", "20", "--low-latency", "-g", "10", "-o",
                        "movflags=+frag_keyframe+empty_moov", str(out)])
    time.sleep(3)
    send.kill()
    send.wait(timeout=10)
    assert cap.wait(timeout=30) == 0
    assert probe_count(out) >= 10


def test_receiver_killed(tmp_path, procs, ring):
    """The receiving side of a TCP stream dies: one line, status 10, no hang; with --reconnect the
    sender waits and sends again to the next receiver."""
    port = free_port()
    url = "tcp://127.0.0.1:%d" % port
    rx = procs.start(["ffmpeg", "-v", "error", "-nostdin", "-i", url + "?listen=1", "-f", "null", "-"])
    time.sleep(0.5)
    cap = producer(procs, ring, extra=["--on-full", "drop"])  # lives on after the first sender
    send = procs.start([SEND, "-r", ring, "-w", "20", "--low-latency", url])
    time.sleep(2.5)
    rx.kill()
    _, err = send.communicate(timeout=30)
    assert send.returncode == 10, err
    assert re.search(r"the receiver of '%s' went away" % re.escape(url), err), err
    assert sum(1 for l in err.splitlines() if l.startswith("framering-send: the receiver")) == 1
    # --reconnect: a second receiver gets the stream
    stats = tmp_path / "s.json"
    rx = procs.start(["ffmpeg", "-v", "error", "-nostdin", "-i", url + "?listen=1", "-f", "null", "-"])
    time.sleep(0.5)
    send = procs.start([SEND, "-r", ring, "-w", "20", "--low-latency", "--reconnect", "--stats-json",
                        str(stats), url])
    time.sleep(2)
    rx.kill()
    time.sleep(1)
    rx2 = procs.start(["ffmpeg", "-v", "error", "-nostdin", "-i", url + "?listen=1", "-frames:v", "20",
                       "-f", "null", "-"])
    assert rx2.wait(timeout=30) == 0, rx2.stderr.read()
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=30)
    assert send.returncode == 0, err
    assert "waiting for '%s' again" % url in err and "is back" in err, err
    assert json.load(open(stats))["reconnects"] >= 1
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


def test_progress_line_on_a_tty(tmp_path, procs, ring):
    assert shutil.which("script")
    producer(procs, ring, frames=60)
    r = subprocess.run(["script", "-qfec", shlex.join([SEND, "-r", ring, "-w", "20", str(tmp_path / "p.mkv")]),
                        "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out
    lines = [l for l in out.split("\r") if l.startswith("\x1b[K")]
    assert lines, repr(out)
    for word in ("frames", "fps", "kbit/s", "encoder queue", "lag"):
        assert word in lines[-1], lines[-1]
    assert "60 frames from ring" in out, out


# ------------------------------------------------------------------ network, end to end on loopback
#
# Ring A (testsrc2, i420, paced at 25 fps) is read by framering-dump and by framering-send, which
# streams it losslessly (libx264 -qp 0 in the ring's own yuv420p) to a real peer. What the peer
# decodes is compared with what ring A carried, frame by frame.

NET_FRAMES = 50


def udp_port_bound(port):
    """Whether some socket is bound to UDP port PORT (SRT listens on UDP)."""
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            for line in open(path).readlines()[1:]:
                if int(line.split()[1].split(":")[1], 16) == port:
                    return True
        except FileNotFoundError:
            pass
    return False


def split_frames(raw, fb):
    return [raw[i * fb:(i + 1) * fb].tobytes() for i in range(raw.size // fb)]


def start_ring_a(procs, ring, tmp_path, send_args, url, frames=NET_FRAMES):
    raw, hdr, stats = tmp_path / "a.raw", tmp_path / "a.hdr", tmp_path / "send.json"
    dump = procs.start([DUMP, "-r", ring, "-w", "20", "--raw", str(raw), "--headers", str(hdr), "-q"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "--stats-json", str(stats), "-o", "qp=0"]
                       + send_args + [url])
    cap = procs.start([CAPTURE, "-r", ring, "-q", "--wait-consumers", "2", "--on-full", "block", "-p", "i420",
                       "-s", "320x240", "--frames", str(frames), "-f", "lavfi", "testsrc2=size=320x240:rate=25"])
    return dump, send, cap, raw, stats


def finish_ring_a(dump, send, cap, raw, stats):
    _, serr = send.communicate(timeout=TIMEOUT)
    assert cap.wait(timeout=TIMEOUT) == 0, cap.stderr.read()
    _, derr = dump.communicate(timeout=TIMEOUT)
    assert dump.returncode == 0, derr
    assert send.returncode == 0, serr
    st = json.load(open(stats))
    assert st["frames"] == NET_FRAMES and st["end"] == "end of stream", st
    return split_frames(np.fromfile(raw, np.uint8), frame_bytes("i420", 320, 240)), st, serr


def ffmpeg_receiver(procs, url_in, out, extra_in=()):
    return procs.start(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin"] + list(extra_in) +
                       ["-i", url_in, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough",
                        "-y", str(out)])


def assert_received(a_frames, out, exact=True, fraction=0.8):
    got = split_frames(np.fromfile(out, np.uint8), frame_bytes("i420", 320, 240))
    if exact:
        index = {f: i for i, f in enumerate(a_frames)}
        assert len(got) == len(a_frames), (len(got), len(a_frames), [index.get(g) for g in got])
        for i, (g, a) in enumerate(zip(got, a_frames)):
            assert g == a, "received frame %d differs from ring A's" % i
        return
    # a lossy transport: every frame that came through is one of ring A's, in order
    index = {f: i for i, f in enumerate(a_frames)}
    where = [index.get(g) for g in got]
    matched = [w for w in where if w is not None]
    assert len(matched) >= fraction * len(a_frames), (len(matched), len(got), len(a_frames))
    assert matched == sorted(matched), matched


def test_srt_chain(tmp_path, procs, ring):
    """framering-capture -> ring A -> framering-send srt listener -> framering-capture srt caller ->
    ring B -> framering-dump: ring B carries exactly ring A's frames."""
    port = free_port(socket.SOCK_DGRAM)
    dump, send, cap, raw, stats = start_ring_a(procs, ring, tmp_path, ["--low-latency"],
                                               "srt://127.0.0.1:%d?mode=listener" % port)
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and send.poll() is None, "framering-send did not listen"
        time.sleep(0.05)
    ring_b, b_raw = ring + "-b", tmp_path / "b.raw"
    dump_b = procs.start([DUMP, "-r", ring_b, "-w", "20", "--raw", str(b_raw), "-q"])
    cap_b = procs.start([CAPTURE, "-r", ring_b, "-q", "-p", "i420", "-s", "source", "--on-full", "block", "--stats-json",
                         str(tmp_path / "b.json"), "srt://127.0.0.1:%d" % port])
    a_frames, st, serr = finish_ring_a(dump, send, cap, raw, stats)
    _, cerr = cap_b.communicate(timeout=TIMEOUT)
    assert cap_b.returncode == 0, cerr
    _, derr = dump_b.communicate(timeout=TIMEOUT)
    assert dump_b.returncode == 0, derr
    assert st["format"] == "mpegts" and st["low_latency"], st
    st_b = json.load(open(tmp_path / "b.json"))
    assert st_b["frames_written"] == NET_FRAMES and st_b["frames_dropped"] == 0, st_b
    assert_received(a_frames, b_raw)


def test_tcp_ts(tmp_path, procs, ring):
    """MPEG-TS over TCP to an ffmpeg listener: every frame, exact."""
    port, out = free_port(), tmp_path / "rx.raw"
    rx = ffmpeg_receiver(procs, "tcp://127.0.0.1:%d?listen=1" % port, out)
    time.sleep(0.5)
    a = start_ring_a(procs, ring, tmp_path, [], "tcp://127.0.0.1:%d" % port)
    a_frames, st, _ = finish_ring_a(*a)
    assert rx.wait(timeout=TIMEOUT) == 0, rx.stderr.read()
    assert_received(a_frames, out)


def test_udp_ts(tmp_path, procs, ring):
    """MPEG-TS over UDP to an ffmpeg receiver (lossy by nature: every frame that arrives is exact)."""
    port, out = free_port(socket.SOCK_DGRAM), tmp_path / "rx.raw"
    rx = ffmpeg_receiver(procs, "udp://127.0.0.1:%d?timeout=3000000&fifo_size=100000" % port, out)
    time.sleep(0.5)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency"], "udp://127.0.0.1:%d?pkt_size=1316" % port)
    a_frames, st, _ = finish_ring_a(*a)
    rx.wait(timeout=TIMEOUT)  # ends on the silence after the stream (timeout=3 s)
    assert_received(a_frames, out, exact=False)


def test_rtsp_push(tmp_path, procs, ring):
    """framering-send pushes RTSP (interleaved TCP) to an ffmpeg listener: every frame, exact."""
    port, out = free_port(), tmp_path / "rx.raw"
    url = "rtsp://127.0.0.1:%d/live" % port
    rx = ffmpeg_receiver(procs, url, out, ["-rtsp_flags", "listen", "-rtsp_transport", "tcp"])
    time.sleep(0.5)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency", "-o", "rtsp_transport=tcp"], url)
    a_frames, st, _ = finish_ring_a(*a)
    assert st["format"] == "rtsp", st
    assert rx.wait(timeout=TIMEOUT) == 0, rx.stderr.read()
    assert_received(a_frames, out)


def test_rtmp_push(tmp_path, procs, ring):
    """framering-send pushes RTMP (FLV) to an ffmpeg listener: every frame, exact."""
    port, out = free_port(), tmp_path / "rx.raw"
    url = "rtmp://127.0.0.1:%d/live/cam" % port
    rx = ffmpeg_receiver(procs, url, out, ["-listen", "1"])
    time.sleep(0.5)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency"], url)
    a_frames, st, _ = finish_ring_a(*a)
    assert st["format"] == "flv", st
    assert rx.wait(timeout=TIMEOUT) == 0, rx.stderr.read()
    assert_received(a_frames, out)


def test_latest_live_uses_capture_time(tmp_path, procs, ring):
    """A live ring read with --latest: frame times are the headers' capture times (the moments
    the frames were captured, skipped ones and pauses included)."""
    hdr, out, stats = tmp_path / "a.hdr", tmp_path / "l.mkv", tmp_path / "s.json"
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    wait_for(shm_path(ring))
    dump = procs.start([DUMP, "-r", ring, "-w", "20", "--headers", str(hdr), "-q"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "--latest", "--frames", "30", "--stats-json", str(stats),
                        str(out)])
    _, err = send.communicate(timeout=TIMEOUT)
    assert send.returncode == 0, err
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0
    dump.communicate(timeout=20)
    st = json.load(open(stats))
    assert st["timestamps"] == "capture" and st["mode"] == "latest" and st["time_base"] == "1/90000", st
    caps = [h["capture_ns"] for h in read_headers(hdr)]
    got = probe_frames(out)
    assert len(got) == 30
    # the first frame sent is one of the ring's: from it, every frame time is a capture time
    for c0 in caps:
        if all(any(abs((c - c0) / 1e9 - t) < 0.0015 for c in caps) for t in got):
            break
    else:
        pytest.fail("frame times %s are not the ring's capture times" % got[:8])


def test_rtsp_to_capture_listener_killed(tmp_path, procs, ring):
    """framering-send pushes RTSP to framering-capture -o rtsp_flags=listen (ring B); the receiving
    capture is killed mid-stream: the sender says so in one line and exits 10 at once."""
    port = free_port()
    url = "rtsp://127.0.0.1:%d/live" % port
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    ring_b = ring + "-b"
    cap_b = procs.start([CAPTURE, "-r", ring_b, "-q", "-p", "i420", "-s", "source", "-o", "rtsp_flags=listen", url])
    dump_b = procs.start([DUMP, "-r", ring_b, "-w", "20", "-q"])
    time.sleep(0.5)
    stats = tmp_path / "s.json"
    send = procs.start([SEND, "-r", ring, "-w", "20", "--latest", "--low-latency", "--stats-json", str(stats),
                        "-o", "rtsp_transport=tcp", url])
    wait_for(shm_path(ring_b))
    time.sleep(2)
    assert send.poll() is None
    cap_b.kill()
    _, err = send.communicate(timeout=30)
    assert send.returncode == 10, err
    assert re.search(r"the receiver of '%s' went away" % re.escape(url), err), err
    assert json.load(open(stats))["frames"] > 10
    assert dump_b.wait(timeout=20) == 3  # ring B's producer died
    if os.path.exists(shm_path(ring_b)):
        os.unlink(shm_path(ring_b))
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


@pytest.mark.parametrize("fmt", ["rgb24", "gray", "nv12"])
def test_lossless_ffv1_every_format(tmp_path, procs, ring, fmt):
    """Every other ring format through FFV1 (which takes gray, and rgb24/nv12 converted without
    loss to bgr0/yuv420p): decoded back to the ring's format, every frame is exact."""
    n = 12
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                      ["-c:v", "ffv1"], "rec.mkv", fmt=fmt)
    assert st["frames"] == n, st
    dec = decode(out, FF_PIXFMT[fmt], tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, n, frame_bytes(fmt, 320, 240), "ffv1 " + fmt)


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_lossless_ffv1_odd_size(tmp_path, procs, ring, fmt):
    """An odd-sized 4:2:0 ring (65x49) through FFV1, which takes odd sizes: recorded at the ring's
    own size and exact, not scaled to 66x50; libx264, which does not, still gets one more column
    and row instead of a failure."""
    n = 6
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=64x48:rate=25"],
                                      ["-c:v", "ffv1"], "rec.mkv", fmt=fmt, size="65x49")
    assert (st["width"], st["height"]) == (65, 49), st
    dec = decode(out, FF_PIXFMT[fmt], tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, n, frame_bytes(fmt, 65, 49), "ffv1 odd " + fmt)
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=64x48:rate=25"],
                                      [], "rec.mp4", fmt=fmt, size="65x49")
    assert (st["width"], st["height"]) == (66, 50), st
    assert "width not divisible" not in serr, serr
    assert probe_count(out) == n


def test_bgr_ring_to_h264_colours(tmp_path, procs, ring):
    """A bgr24 ring into H.264 (yuv420p, converted with the matrix the record names): decoded back to
    bgr24 it is the ring's picture within the loss of 4:2:0 and a high-quality encode; --size scales."""
    n = 10
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                      ["--crf", "1"], "rec.mp4", fmt="bgr24")
    assert st["pix_fmt"] == "yuv420p", st
    dec = decode(out, "bgr24", tmp_path / "dec.raw").astype(np.int16)
    assert dec.size == raw.size
    # the reference: the ffmpeg CLI's own round trip of the same frames at the same settings
    raw_path, ref_mp4 = tmp_path / "ring.raw", tmp_path / "ref.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "320x240",
                    "-r", "25", "-i", str(raw_path), "-c:v", "libx264", "-crf", "1", "-pix_fmt", "yuv420p",
                    "-y", str(ref_mp4)], check=True, timeout=TIMEOUT)
    ref = decode(ref_mp4, "bgr24", tmp_path / "ref.raw").astype(np.int16)
    ours_err, ref_err = np.abs(dec - raw).mean(), np.abs(ref - raw).mean()
    assert ours_err < 3.0 and ours_err <= ref_err + 0.25, (ours_err, ref_err)  # a wrong matrix: tens of levels
    # no drift of the mean colour beyond ffmpeg's (a range error shifts every pixel)
    assert abs(dec.mean() - raw.mean()) <= abs(ref.mean() - raw.mean()) + 0.25, (dec.mean(), ref.mean(), raw.mean())
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                      ["--size", "160x120"], "small.mp4", fmt="bgr24")
    assert set(probe_sizes(out)) == {(160, 120)} and st["width"] == 160, st


def test_rtp_ts(tmp_path, procs, ring):
    """MPEG-TS over RTP to an ffmpeg receiver (no SDP needed for payload type 33): what arrives is exact."""
    port, out = free_port(socket.SOCK_DGRAM) & ~1, tmp_path / "rx.raw"
    rx = ffmpeg_receiver(procs, "rtp://127.0.0.1:%d?timeout=3000000" % port, out)
    time.sleep(0.5)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency", "-g", "5"], "rtp://127.0.0.1:%d" % port)
    a_frames, st, _ = finish_ring_a(*a)
    assert st["format"] == "rtp_mpegts", st
    time.sleep(2)  # what is in flight arrives; then stop the receiver (it writes what it decoded)
    rx.send_signal(signal.SIGINT)
    rx.wait(timeout=30)
    # ffmpeg's RTP receiver without an SDP may miss the first packets: it joins at a key frame
    assert_received(a_frames, out, exact=False, fraction=0.4)


def test_srt_caller_to_ffmpeg_listener(tmp_path, procs, ring):
    """framering-send as the SRT caller, the ffmpeg CLI as the listener: every frame, exact."""
    port, out = free_port(socket.SOCK_DGRAM), tmp_path / "rx.raw"
    rx = ffmpeg_receiver(procs, "srt://127.0.0.1:%d?mode=listener" % port, out)
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and rx.poll() is None, "ffmpeg did not listen"
        time.sleep(0.05)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency"], "srt://127.0.0.1:%d" % port)
    a_frames, st, _ = finish_ring_a(*a)
    assert rx.wait(timeout=TIMEOUT) == 0, rx.stderr.read()
    assert_received(a_frames, out)


def test_low_latency_settings(tmp_path, procs, ring):
    """--low-latency: no B-frames, a key frame every second (25 frames at 25 fps); without it
    x264 reorders (B-frames)."""
    types, said = {}, {}
    for name, args in (("ll.ts", ["--low-latency"]), ("default.ts", [])):
        serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                          ["--frames", "60", "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                          args, name)
        res = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "frame=pict_type,key_frame",
                                       "-of", "csv=p=0", str(out)], text=True, timeout=TIMEOUT).split()
        types[name] = [tuple(l.split(",")[:2]) for l in res]
        # what framering-send said and counted, for a failure's message (it failed once, unexplained)
        said[name] = (serr, {k: st.get(k) for k in ("frames", "input_path", "frames_zero_copy",
                                                     "zero_copy_fallbacks", "encoder_restarts")})
        assert len(types[name]) == 60, said[name]
    ll = types["ll.ts"]
    assert all(t != "B" for _, t in ll), (ll, said["ll.ts"])
    assert [i for i, (k, _) in enumerate(ll) if k == "1"] == [0, 25, 50], (ll, said["ll.ts"])
    assert any(t == "B" for _, t in types["default.ts"])


def test_meta_written_after_attach(tmp_path, procs, ring):
    """framering-capture writes its stream description (the frame rate) into the ring just after
    the ring appears; a framering-send already waiting attaches in between. It must still use the
    source's rate: --low-latency's key frame every second is every 25 frames at 25 fps, not 30.
    gdb holds the producer at its fr_ring_set_meta() until framering-send has attached."""
    gdb = shutil.which("gdb")
    assert gdb, "gdb is needed to hold the producer between creating the ring and describing it"
    out, stats = tmp_path / "ll.ts", tmp_path / "send.json"
    send = procs.start([SEND, "-r", ring, "-w", "60", "--low-latency", "--stats-json", str(stats), str(out)])
    # attached, and a moment to read what the ring says (nothing yet, here) before the producer goes on
    attached = "until %s stat %s | grep -q '^consumers: 1'; do sleep 0.05; done; sleep 0.5" % (shlex.quote(CTL), ring)
    cap = subprocess.run([gdb, "-q", "-batch", "-ex", "set breakpoint pending on", "-ex", "break fr_ring_set_meta",
                          "-ex", "run", "-ex", "shell " + attached, "-ex", "delete", "-ex", "continue", "--args",
                          CAPTURE, "-r", ring, "-q", "-p", "i420", "-s", "320x240", "--frames", "60", "--on-full",
                          "block", "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert "exited normally" in cap.stdout, cap.stdout + cap.stderr
    _, serr = send.communicate(timeout=TIMEOUT)
    assert send.returncode == 0, serr
    keys = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "frame=key_frame", "-of", "csv=p=0",
                                    str(out)], text=True, timeout=TIMEOUT).split()
    assert [i for i, k in enumerate(keys) if k.startswith("1")] == [0, 25, 50], keys


def test_sigint_while_waiting(tmp_path, procs, ring):
    """Ctrl-C while waiting for the ring, and while an SRT listener waits for its caller: status 0
    at once, no file, nothing hangs."""
    send = procs.start([SEND, "-r", ring, str(tmp_path / "never.mp4")])
    time.sleep(0.5)
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=10)
    assert send.returncode == 0 and "Traceback" not in err, err
    port = free_port(socket.SOCK_DGRAM)
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "srt://127.0.0.1:%d?mode=listener" % port])
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and send.poll() is None, "framering-send did not listen"
        time.sleep(0.05)
    t0 = time.time()
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=10)
    assert send.returncode == 0, err
    assert time.time() - t0 < 3
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
    # the summary says what happened: nothing was sent; no encoder, size or format it never used
    one_line(err, r"^framering-send: nothing written to 'srt://127\.0\.0\.1:%d\?mode=listener', "
                  r"stopped by signal while it was being opened$" % port)
    # the same for an RTMP server that takes the connection and never answers the handshake
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(20)
    url = "rtmp://127.0.0.1:%d/live/x" % lsock.getsockname()[1]
    send = procs.start([SEND, "-r", ring, "-w", "20", url])
    conn, _ = lsock.accept()  # send is in the handshake now
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=10)
    conn.close()
    lsock.close()
    assert send.returncode == 0, err
    one_line(err, r"^framering-send: nothing written to '%s', stopped by signal while it was being opened$"
             % re.escape(url))
    # a FIFO as the output (a player reads it): opening it waits in the kernel for a reader, and
    # Ctrl-C there is a stop too, not "cannot open output" (status 9)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    send = procs.start([SEND, "-r", ring, "-w", "20", "-f", "mpegts", str(fifo)])
    procinfo.wait_opening_fifo(send, 20, "framering-send")
    send.send_signal(signal.SIGINT)
    _, err = send.communicate(timeout=10)
    assert send.returncode == 0, err
    assert "cannot open" not in err, err
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


def test_stderr_closed_keeps_the_recording_clean(tmp_path, procs, ring):
    """Started with stderr closed (2>&-), framering-send's lines (its summary) must not go into the
    first file it opens, the recording, which took fd 2: the file is the stream and nothing else."""
    out = tmp_path / "rec.ts"
    producer(procs, ring, frames=10)
    send = subprocess.run([SEND, "-r", ring, "-w", "20", str(out)], preexec_fn=lambda: os.close(2),
                          timeout=TIMEOUT)
    assert send.returncode == 0
    assert b"framering-send" not in out.read_bytes()
    assert probe_count(out) == 10


def test_srt_to_srt_live_transmit(tmp_path, procs, ring):
    """framering-send as an SRT caller to the SRT project's own srt-live-transmit (srt-tools) as the
    listener, which writes the MPEG-TS it receives to a file: every frame decodes exactly."""
    slt = shutil.which("srt-live-transmit")
    assert slt, "srt-live-transmit (Debian srt-tools, .ci/install-deps) is needed"
    port, ts = free_port(socket.SOCK_DGRAM), tmp_path / "rx.ts"
    with open(ts, "wb") as f:
        rx = procs.start([slt, "-a:no", "-q", "srt://:%d?mode=listener" % port, "file://con"], stdout=f)
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and rx.poll() is None, "srt-live-transmit did not listen"
        time.sleep(0.05)
    a = start_ring_a(procs, ring, tmp_path, ["--low-latency"], "srt://127.0.0.1:%d" % port)
    a_frames, st, _ = finish_ring_a(*a)
    assert rx.wait(timeout=30) == 0, rx.stderr.read()  # it ends when the caller closes
    decode(ts, "yuv420p", tmp_path / "rx.raw")
    assert_received(a_frames, tmp_path / "rx.raw")


def test_srt_receiver_killed(tmp_path, procs, ring):
    """The receiving framering-capture of an SRT stream is killed: SRT notices the silent peer (its
    idle timeout, 5 s by default) and the sender ends with one line and status 10."""
    port = free_port(socket.SOCK_DGRAM)
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "--latest", "--low-latency",
                        "srt://127.0.0.1:%d?mode=listener" % port])
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and send.poll() is None, "framering-send did not listen"
        time.sleep(0.05)
    ring_b = ring + "-b"
    cap_b = procs.start([CAPTURE, "-r", ring_b, "-q", "-p", "i420", "-s", "source", "srt://127.0.0.1:%d" % port])
    wait_for(shm_path(ring_b))
    time.sleep(1.5)
    assert send.poll() is None
    cap_b.kill()
    cap_b.wait()
    _, err = send.communicate(timeout=30)
    assert send.returncode == 10, err
    assert len(re.findall(r"the receiver of 'srt://.*' went away", err)) == 1, err
    if os.path.exists(shm_path(ring_b)):
        os.unlink(shm_path(ring_b))
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


def test_producer_dies_while_listening(tmp_path, procs, ring):
    """An SRT listener waits for its caller, and the producer dies meanwhile: the sender does not
    wait on for a stream that cannot come; it says so and exits 3, leaving nothing."""
    port = free_port(socket.SOCK_DGRAM)
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    send = procs.start([SEND, "-r", ring, "-w", "20", "srt://127.0.0.1:%d?mode=listener" % port])
    t = time.time() + 20
    while not udp_port_bound(port):
        assert time.time() < t and send.poll() is None, "framering-send did not listen"
        time.sleep(0.05)
    cap.kill()
    _, err = send.communicate(timeout=10)
    assert send.returncode == 3, err
    one_line(err, r"the producer of ring '%s' died while 'srt://.*' was being opened" % ring)
    if os.path.exists(shm_path(ring)):
        os.unlink(shm_path(ring))


def test_disk_full(tmp_path, procs, ring):
    """Writing fails (/dev/full: no space left): one line, status 10, at once; the device is not
    removed as if it were a half-written file."""
    cap = producer(procs, ring, extra=["--on-full", "drop"])
    wait_for(shm_path(ring))
    t0 = time.time()
    r = subprocess.run([SEND, "-r", ring, "-w", "20", "--low-latency", "-f", "mpegts", "/dev/full"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 10, r.stderr
    assert time.time() - t0 < 10, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "framering-send: cannot write '/dev/full': No space left on device", r.stderr
    assert len([l for l in lines if "cannot write" in l]) == 1, r.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].endswith(", failure")), r.stderr  # a summary if frames went
    assert os.path.exists("/dev/full")
    cap.send_signal(signal.SIGINT)
    assert cap.wait(timeout=20) == 0


def test_bitrate_and_gop(tmp_path, procs, ring):
    """-b:v sets the rate the encoder aims at, -g the distance between key frames."""
    n = 100
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring,
                                      ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                      ["-b:v", "150k", "-g", "7", "-o", "sc_threshold=0"], "rate.mp4")
    kbps = st["bytes"] * 8 / (n / 25.0) / 1000
    assert 150 * 0.5 < kbps < 150 * 1.6, kbps
    res = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "frame=key_frame", "-of", "csv=p=0",
                                   str(out)], text=True, timeout=TIMEOUT).split()
    keys = [i for i, k in enumerate(res) if k.startswith("1")]
    assert keys == list(range(0, n, 7)), keys
    # the same frames at a higher rate make a larger file
    serr, out2, raw, hdrs, st2 = record(tmp_path, procs, ring,
                                        ["--frames", str(n), "-f", "lavfi", "testsrc2=size=320x240:rate=25"],
                                        ["-b:v", "600k"], "rate2.mp4")
    assert st2["bytes"] > 2 * st["bytes"], (st["bytes"], st2["bytes"])


# ------------------------------------------------------------------ zero-copy into the encoder
# A ring of two slots: a record released too early is written over by the producer at once, so
# an encoder that read the ring after the release would record the wrong picture.

ZC_N, ZC_SIZE = 40, "384x256"  # strides 384 and 192: aligned for any CPU's SIMD (64 bytes)


def zc_record(tmp_path, procs, ring, send_args, out_name):
    return record(tmp_path, procs, ring,
                  ["--slots", "2", "--frames", str(ZC_N), "-f", "lavfi", "testsrc2=size=%s:rate=30" % ZC_SIZE],
                  send_args, out_name, size=ZC_SIZE)


def packet_md5s(path):
    out = subprocess.check_output(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v", "-c", "copy",
                                   "-f", "framemd5", "-"], text=True, timeout=TIMEOUT)
    return [l.split(",")[-1].strip() for l in out.splitlines() if l and not l.startswith("#")]


def test_zero_copy_x264(tmp_path, procs, ring):
    """An i420 ring into libx264 (yuv420p, the ring's own format): the first 8 frames are copies that
    x264 lets go of within the call, every later one goes to it where it lies in the ring; the
    recording (qp 0) is exact, in order, with the ring's pts. --zero-copy off copies every frame."""
    serr, out, raw, hdrs, st = zc_record(tmp_path, procs, ring, ["-o", "qp=0"], "rec.mkv")
    assert st["frames"] == ZC_N and st["input_path"] == "zero-copy" and st["zero_copy"] == "on", st
    assert st["frames_copied"] == 8 and st["frames_zero_copy"] == ZC_N - 8, st
    assert st["frames_converted"] == 0 and st["zero_copy_fallbacks"] == 0 and st["encoder_restarts"] == 0, st
    w, h = (int(x) for x in ZC_SIZE.split("x"))
    dec = decode(out, "yuv420p", tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, ZC_N, frame_bytes("i420", w, h), "x264 qp 0, zero-copy")
    assert_pts_equal(out, hdrs)
    serr, out, raw, hdrs, st = zc_record(tmp_path, procs, ring, ["-o", "qp=0", "--zero-copy", "off"], "off.mkv")
    assert st["input_path"] == "copy" and st["frames_copied"] == ZC_N and st["frames_zero_copy"] == 0, st
    # a bgr24 ring is converted (swscale reads the record) whatever --zero-copy says
    serr, out, raw, hdrs, st = record(tmp_path, procs, ring, ["--frames", "5", "-f", "lavfi", "testsrc2=size=320x240"],
                                      ["--zero-copy", "on"], "conv.mp4", fmt="bgr24")
    assert st["input_path"] == "convert" and st["frames_converted"] == 5 and st["frames_zero_copy"] == 0, st


def test_zero_copy_same_stream(tmp_path, procs, ring):
    """mpeg4 with 2 B-frames (it reorders, and copies its input at this size) is deterministic: the
    same frames give the same packets whether they went to it in place or copied."""
    args = ["-c:v", "mpeg4", "-o", "bf=2", "-o", "threads=1", "-g", "12"]
    serr, zc, raw, hdrs, st = zc_record(tmp_path, procs, ring, args + ["--zero-copy", "on"], "zc.mkv")
    assert st["input_path"] == "zero-copy" and st["frames_zero_copy"] == ZC_N and st["zero_copy_fallbacks"] == 0, st
    serr, cp, raw, hdrs, st = zc_record(tmp_path, procs, ring, args + ["--zero-copy", "off"], "copy.mkv")
    assert st["input_path"] == "copy", st
    a, b = packet_md5s(zc), packet_md5s(cp)
    assert len(a) == ZC_N and a == b


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_zero_copy_falls_back(tmp_path, procs, ring, mode):
    """FFV1 keeps a reference to the last frame it was given. auto: the first probe copy shows it, and
    every frame is copied. on: the first frame goes in place, is kept, and the encoder is drained,
    closed (letting go of the ring) and restarted in the same stream with copies. Either way the
    recording has every frame, exact."""
    serr, out, raw, hdrs, st = zc_record(tmp_path, procs, ring, ["-c:v", "ffv1", "--zero-copy", mode], "rec.mkv")
    assert st["frames"] == ZC_N and st["frames_encoded"] == ZC_N and st["input_path"] == "copy", st
    assert st["zero_copy"] == "off", st
    if mode == "auto":
        assert st["frames_zero_copy"] == 0 and st["zero_copy_fallbacks"] == 0, st
        assert "kept a frame" not in serr, serr
    else:
        assert st["frames_zero_copy"] == 1 and st["zero_copy_fallbacks"] == 1, st
        assert "the ffv1 encoder kept a frame that lies in the ring: restarting it" in serr, serr
    w, h = (int(x) for x in ZC_SIZE.split("x"))
    dec = decode(out, "yuv420p", tmp_path / "dec.raw")
    assert_frames_equal(dec, raw, ZC_N, frame_bytes("i420", w, h), "ffv1 " + mode)
    assert_pts_equal(out, hdrs)
