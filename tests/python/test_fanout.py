"""test_fanout - one framering-capture, many consumers of every kind at once: lossless ones get every frame with the right pixels, live ones a subset in order, and killing any of them hurts no other."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import framering
from conftest import ffmpeg_raw, program, python_env, sample

VIEW_PY = [sys.executable, "-m", "framering.view"]
W, H = 320, 240
FRAME = W * H * 3

# A Python consumer in its own process: one line "seq md5" per frame, then "end <why>".
PY_READER = textwrap.dedent("""
    import hashlib, sys, time, framering
    name, mode, slow = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with framering.Consumer(name, timeout=30, mode=mode) as cons:
        for f in cons:
            print(f.seq, hashlib.md5(f.array.tobytes()).hexdigest(), flush=True)
            time.sleep(slow)
    print("end eos", flush=True)
""")


def py_reader(procs, name, mode="every", slow=0.0):
    """The Python reader, attached (waited for with inspect_consumers: its stdout is read whole
    at the end, by communicate())."""
    before = len(framering.inspect_consumers(name))
    p = procs([sys.executable, "-c", PY_READER, name, mode, str(slow)], env=python_env())
    wait_consumers(name, before + 1)
    return p


def wait_consumers(name, n, timeout=30):
    """Wait until N consumers are attached to NAME (framering.inspect_consumers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(framering.inspect_consumers(name)) >= n:
                return
        except framering.RingNotFound:
            pass
        time.sleep(0.02)
    pytest.fail(f"{n} consumers never attached to {name}")


def frame_hashes(raw: bytes):
    return [hashlib.md5(raw[i:i + FRAME]).hexdigest() for i in range(0, len(raw), FRAME)]


def test_four_kinds_read_one_capture(ring_name, procs, tmp_path):
    """framering-capture (a file, lossless) read at once by framering-dump and a Python consumer
    in "every" mode, and by framering-view --headless and a slow framering-dump --latest (holding
    each frame 50 ms) as live consumers: both lossless ones get every frame, pixel for pixel what
    ffmpeg decodes; the live ones a subset, in order; everyone ends cleanly at end of stream."""
    capture, dump, view = program("FRAMERING_CAPTURE"), program("FRAMERING_DUMP"), program("FRAMERING_VIEW")
    video = sample("FRAMERING_SAMPLE_SMALL")
    want = ffmpeg_raw(["-i", video])
    n = len(want) // FRAME
    raw, headers, live_headers = tmp_path / "every.raw", tmp_path / "every.txt", tmp_path / "live.txt"
    # The lossless readers first: the producer waits for both (--wait-consumers 2), so both start
    # at the first frame; the live ones come later, whenever they like.
    d_every = procs([dump, "-r", ring_name, "--wait", "30", "-q", "--raw", str(raw), "--headers", str(headers)])
    capt = procs([capture, "-r", ring_name, "--quiet", "-s", "source", "--wait-consumers", "2", video])
    wait_consumers(ring_name, 1)
    p_every = py_reader(procs, ring_name, "every")
    v_live = procs([view, "-r", ring_name, "--headless", "--quiet", "--wait", "30"])
    d_slow = procs([dump, "-r", ring_name, "--wait", "30", "-q", "--latest", "--slow-ms", "50",
                    "--headers", str(live_headers)])
    assert capt.wait(timeout=120) == 0, capt.stderr.read().decode()
    out, err = p_every.communicate(timeout=60)
    assert p_every.returncode == 0, err.decode()
    for p in (d_every, v_live, d_slow):
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()

    assert raw.read_bytes() == want, "the lossless dump is not every frame as ffmpeg decodes it"
    assert [int(line.split()[0]) for line in headers.read_text().splitlines()] == list(range(n))
    lines = out.decode().split()
    assert lines[-2:] == ["end", "eos"]
    got = [(int(lines[i]), lines[i + 1]) for i in range(0, len(lines) - 2, 2)]
    assert got == list(enumerate(frame_hashes(want))), "the Python lossless consumer missed or changed frames"
    seqs = [int(line.split()[0]) for line in live_headers.read_text().splitlines()]
    assert seqs and all(a < b for a, b in zip(seqs, seqs[1:])), seqs
    assert len(seqs) <= n


def test_kill_each_kind_mid_stream(ring_name, procs, tmp_path):
    """kill -9 of each kind of consumer mid-stream (framering-dump every, Python every,
    framering-view live, framering-dump --latest live): the producer and the lossless survivor go on
    to a clean end with every frame; the dead are reaped (framering-ctl and inspect show it)."""
    capture, dump, view = program("FRAMERING_CAPTURE"), program("FRAMERING_DUMP"), program("FRAMERING_VIEW")
    frames = 300
    headers = tmp_path / "survivor.txt"
    survivor = procs([dump, "-r", ring_name, "--wait", "30", "-q", "--headers", str(headers), "--sum"])
    capt = procs([capture, "-r", ring_name, "--quiet", "-f", "lavfi", f"testsrc2=size={W}x{H}:rate=60",
                  "--on-full", "block", "--frames", str(frames), "--realtime", "--wait-consumers", "1"])
    wait_consumers(ring_name, 1)
    victims = {
        "dump every": procs([dump, "-r", ring_name, "--wait", "30", "-q", "--slow-ms", "5"]),
        "python every": py_reader(procs, ring_name, "every", slow=0.005),
        "view live": procs([view, "-r", ring_name, "--headless", "--quiet", "--wait", "30"]),
        "dump live slow": procs([dump, "-r", ring_name, "--wait", "30", "-q", "--latest", "--slow-ms", "50"]),
    }
    wait_consumers(ring_name, 5)
    for what, p in victims.items():
        time.sleep(0.3)  # mid-stream, one after the other
        assert p.poll() is None, f"{what} ended early: {p.stderr.read().decode()}"
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    assert capt.wait(timeout=120) == 0, capt.stderr.read().decode()
    assert survivor.wait(timeout=60) == 0, survivor.stderr.read().decode()
    seqs = [int(line.split()[0]) for line in headers.read_text().splitlines()]
    assert seqs == list(range(frames)), "the lossless survivor lost frames when the others died"


def test_python_modes_and_inspect(ring_name):
    """The package's own modes: an "every" consumer gets each frame, a "latest" one the newest,
    both at once; inspect_consumers() and consumers() say who reads what."""
    with framering.Producer(ring_name, slots=8, width=16, height=16) as prod:
        with framering.Consumer(ring_name, timeout=0, mode="every") as every, \
                framering.Consumer(ring_name, timeout=0, mode="latest") as live:
            for i in range(5):
                prod.write_frame(np.full((16, 16, 3), i, np.uint8))
            assert [every.next_frame(timeout=1).seq for _ in range(5)] == [0, 1, 2, 3, 4]
            f = live.next_frame(timeout=1)
            assert f.seq == 4 and f.skipped == 4 and int(f.array.max()) == 4
            infos = framering.inspect_consumers(ring_name)
            assert sorted(c.mode for c in infos) == ["every", "latest"]
            assert all(c.alive and c.pid == os.getpid() for c in infos)
            # the every-consumer still holds frame 4 (not released: not read yet); the live one is at the newest
            assert {c.mode: c.lag_records for c in prod.consumers()} == {"every": 1, "latest": 0}
            st = prod.stats
            assert st.consumers == 2 and st.max_consumers == 8
        with pytest.raises(framering.InvalidArgument):
            framering.Consumer(ring_name, timeout=0, mode="sometimes")
    with framering.Producer(ring_name, capacity=1 << 16, max_consumers=1) as prod:
        with framering.Consumer(ring_name, timeout=0):
            with pytest.raises(framering.RingBusy):
                framering.Consumer(ring_name, timeout=0, mode="latest")
        prod.wait_consumers(0, timeout=0)
        with pytest.raises(framering.Timeout):
            prod.wait_consumers(1, timeout=0.1)
