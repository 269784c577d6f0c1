"""test_view.py - framering-view end to end, headless: a producer into the viewer; counts, exit codes, snapshots.

The producer is view_testsrc (known block patterns, any format, padded strides, format switches) or
framering-capture (testsrc2 through lavfi, the sample video). Snapshots are the RENDERED frame read
back from SDL's renderer and are compared with the frame that was sent: exactly for BGR24/RGB24/GRAY8,
within viewtest.YUV_TOLERANCE for I420/NV12.
"""
import json
import os
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest

import procinfo  # tests/common (conftest.py puts it on the path)
import shmring
import viewtest as vt
from viewtest import CAPTURE, DUMP, SAMPLE, TESTSRC, TIMEOUT, VIEW


@pytest.fixture
def ring(request):
    name = vt.unique_ring(request.node.name.split("[")[0][5:20])
    yield name
    vt.remove_ring(name)


def run_pair(tmp_path, ring, view_args, prod_args, viewer_first=True):
    """Run the headless viewer and view_testsrc (which must succeed) on RING; return (rc, stderr, stats)."""
    stats = tmp_path / "stats.json"
    vargs = [VIEW, "-r", ring, "--wait", "20", "--headless", "--stats-json", str(stats)] + view_args
    pargs = [TESTSRC, "--ring", ring, "--wait-consumer", "20"] + prod_args
    first, second = (vargs, pargs) if viewer_first else (pargs, vargs)
    p1 = vt.start(first)
    if not viewer_first:
        time.sleep(0.2)  # only to exercise the order; either order works
    p2 = vt.start(second)
    r1 = vt.finish(p1)
    r2 = vt.finish(p2)
    (vrc, _, verr), (prc, _, perr) = (r1, r2) if viewer_first else (r2, r1)
    assert prc == 0, f"producer failed: {perr}"
    st = json.loads(stats.read_text()) if stats.exists() else None
    return vrc, verr, st


def test_help_and_bad_options():
    r = subprocess.run([VIEW, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0
    assert "Exit status" in r.stdout and "--headless" in r.stdout
    assert "--exit-at-eos" in r.stdout and "waiting for" in r.stdout  # --reconnect after a clean end, and how
    # The consumers' shared table (app/common/consumer_exit.h), as framering-dump prints it too.
    for row in ("0  done", "1  bad usage", "2  ring missing", "3  the producer died", "4  the ring is corrupt",
                "5  display failure", "6  anything else", "7  the producer failed"):
        assert row in r.stdout, row
    for bad in (["--bogus"], ["--frames", "x"], ["--wait", "-1"], ["--at", "3"], ["--size", "10"], ["extra"],
                ["--upload", "mmap"], ["--frames"], ["--exit-at-eos"]):
        r = subprocess.run([VIEW] + bad, capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 1, bad
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # an unknown short option in a cluster is named, not the argument before it
    r = subprocess.run([VIEW, "--wait", "0", "-xq"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1 and "unknown option '-x'" in r.stderr, r.stderr


@pytest.mark.parametrize("viewer_first", [True, False], ids=["viewer-first", "producer-first"])
@pytest.mark.parametrize("fmt", ["bgr24", "rgb24", "gray", "i420", "nv12"])
def test_every_counts(tmp_path, ring, fmt, viewer_first):
    rc, err, st = run_pair(tmp_path, ring, ["--every"], ["--format", fmt, "--size", "160x120", "--frames", "25"],
                           viewer_first)
    assert rc == 0, err
    assert "end of stream" in err
    assert st["frames_shown"] == 25 and st["frames_skipped"] == 0 and st["frames_lost"] == 0
    assert st["last_seq"] == 24
    assert (st["width"], st["height"], st["format"]) == (160, 120, "gray8" if fmt == "gray" else fmt)


@pytest.mark.parametrize("fmt,size,pad", [
    ("bgr24", "320x240", 0), ("bgr24", "161x121", 13), ("rgb24", "320x240", 0), ("rgb24", "161x121", 5),
    ("gray", "320x240", 0), ("gray", "161x121", 7),
    ("i420", "320x240", 0), ("i420", "161x121", 13), ("nv12", "320x240", 0), ("nv12", "161x121", 3)])
@pytest.mark.parametrize("upload", ["lock", "update"])
def test_snapshot_matches_sent_frame(tmp_path, ring, fmt, size, pad, upload):
    w, h = map(int, size.split("x"))
    raw, snap = tmp_path / "sent.raw", tmp_path / "snap.bmp"
    rc, err, st = run_pair(tmp_path, ring, ["--every", "--snapshot", str(snap), "--at", "4", "--upload", upload],
                           ["--format", fmt, "--size", size, "--pad", str(pad), "--frames", "8", "--raw", str(raw)])
    assert rc == 0, err
    img = cv2.imread(str(snap), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (h, w, 3)
    data = raw.read_bytes()
    want = vt.reference_bgr(fmt, w, h, data, 4)
    diff = np.abs(img.astype(int) - want.astype(int))
    limit = vt.YUV_TOLERANCE if fmt in ("i420", "nv12") else 0
    assert diff.max() <= limit, f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"
    # And it is frame 4, not a neighbour: frames differ everywhere by the pattern's design.
    other = vt.reference_bgr(fmt, w, h, data, 3)
    assert np.abs(img.astype(int) - other.astype(int)).max() > limit
    assert "wrote frame 4" in err


def test_format_and_size_change_followed(tmp_path, ring):
    raw, snap = tmp_path / "sent.raw", tmp_path / "snap.ppm"  # and the PPM writer
    rc, err, st = run_pair(tmp_path, ring, ["--every", "--snapshot", str(snap), "--at", "7"],
                           ["--format", "bgr24", "--size", "320x240", "--switch-at", "5", "--format2", "i420",
                            "--size2", "200x100", "--frames", "9", "--raw", str(raw)])
    assert rc == 0, err
    assert st["frames_shown"] == 9 and (st["width"], st["height"], st["format"]) == (200, 100, "i420")
    data = raw.read_bytes()
    first = 5 * vt.frame_bytes("bgr24", 320, 240)
    want = vt.reference_bgr("i420", 200, 100, data[first:], 7 - 5)
    img = cv2.imread(str(snap), cv2.IMREAD_COLOR)
    assert img.shape == (100, 200, 3)
    assert np.abs(img.astype(int) - want.astype(int)).max() <= vt.YUV_TOLERANCE


def test_latest_shows_newest_and_counts_skipped(tmp_path, ring):
    # An unpaced producer and the default --latest: every frame is shown or counted as skipped,
    # none is lost (the producer blocks when full), and the last one is always shown.
    rc, err, st = run_pair(tmp_path, ring, ["--latest"],
                           ["--format", "bgr24", "--size", "640x360", "--frames", "60", "--slots", "8"])
    assert rc == 0, err
    assert st["frames_shown"] + st["frames_skipped"] == 60, st
    assert st["frames_lost"] == 0 and st["last_seq"] == 59


def test_frames_limit(tmp_path, ring):
    stats = tmp_path / "stats.json"
    prod = vt.start([TESTSRC, "--ring", ring, "--wait-consumer", "20", "--frames", "0", "--fps", "200"])
    try:
        r = subprocess.run([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--frames", "7",
                            "--stats-json", str(stats)], capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        vt.stop(prod)
    assert r.returncode == 0, r.stderr
    st = json.loads(stats.read_text())
    assert st["frames_shown"] == 7 and st["end"] == "frame limit reached"


def test_missing_ring_times_out(ring):
    r = subprocess.run([VIEW, "-r", ring, "--wait", "0.3", "--headless"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 2
    assert f"no ring '{ring}' appeared" in r.stderr
    assert f"waiting up to 0.3 s for a producer to create ring '{ring}'" in r.stderr


@pytest.mark.parametrize("content", ["random", "short", "empty"])
def test_foreign_segment(ring, content):
    data = {"random": np.random.default_rng(1).bytes(65536), "short": b"not a ring", "empty": b""}[content]
    with open(f"/dev/shm/{ring}", "wb") as f:
        f.write(data)
    r = subprocess.run([VIEW, "-r", ring, "--wait", "5", "--headless"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 4, r.stderr
    assert f"'{ring}' is not a valid framering ring" in r.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_not_a_file_at_the_name_ends_with_4(ring, kind):
    """10.7: a directory or a FIFO at the ring's name is 'not a ring' (4), as for every consumer."""
    path = f"/dev/shm/{ring}"
    os.mkdir(path) if kind == "directory" else os.mkfifo(path)
    try:
        r = subprocess.run([VIEW, "-r", ring, "--wait", "1", "--headless"], capture_output=True, text=True,
                           timeout=TIMEOUT)
    finally:
        os.rmdir(path) if kind == "directory" else os.unlink(path)
    assert r.returncode == 4, r.stderr
    assert r.stderr.strip().splitlines() == [f"framering-view: '{ring}' is not a valid framering ring "
                                             "(foreign, corrupt or another version): not a framering ring, "
                                             "or the ring is corrupt"], r.stderr


def test_producer_killed(tmp_path, ring):
    err_path = tmp_path / "view.err"
    prod = vt.start([TESTSRC, "--ring", ring, "--frames", "0", "--fps", "30", "--size", "160x120"])
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--headless"], stdout=subprocess.DEVNULL,
                                stderr=err)
    try:
        vt.wait_for_line(err_path, "renderer", view)  # printed when the first frame arrives
        prod.send_signal(signal.SIGKILL)
        prod.wait()
        rc = view.wait(timeout=TIMEOUT)
    finally:
        vt.stop(view)
        vt.stop(prod)
    text = err_path.read_text()
    assert rc == 3, text
    assert f"the producer of ring '{ring}' died" in text
    assert "producer died" in text  # the summary
    # The consumer removed the dead producer's segment when it closed.
    assert not os.path.exists(f"/dev/shm/{ring}")


def test_reconnect_after_producer_death(tmp_path, ring):
    err_path, stats = tmp_path / "view.err", tmp_path / "stats.json"
    prod = vt.start([TESTSRC, "--ring", ring, "--frames", "0", "--fps", "30", "--size", "160x120"])
    with open(err_path, "w") as err:
        # --exit-at-eos: the second producer's clean end ends the viewer (without it, it waits again).
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--reconnect",
                                 "--exit-at-eos", "--stats-json", str(stats)], stdout=subprocess.DEVNULL, stderr=err)
    prod2 = None
    try:
        vt.wait_for_line(err_path, "renderer", view)
        prod.send_signal(signal.SIGKILL)
        prod.wait()
        vt.wait_for_line(err_path, "died", view)
        prod2 = vt.start([TESTSRC, "--ring", ring, "--frames", "6", "--size", "200x100", "--format", "nv12",
                          "--wait-consumer", "20"])
        rc = view.wait(timeout=TIMEOUT)
        assert vt.finish(prod2)[0] == 0
    finally:
        vt.stop(view)
        vt.stop(prod)
        if prod2:
            vt.stop(prod2)
    text = err_path.read_text()
    assert rc == 0, text
    assert "reconnected" in text
    st = json.loads(stats.read_text())
    assert st["reconnects"] == 1 and st["last_seq"] == 5 and st["format"] == "nv12"
    assert st["end"] == "end of stream" and st["producers_shown"] == 2


WAITING = "waiting for the next producer"


def test_reconnect_after_end_of_stream(tmp_path, ring):
    """--reconnect outlives a producer that ends cleanly (a restarted capture service): the viewer
    waits for the next one, follows its format, and Ctrl-C while waiting ends it with 0 and a
    summary that counts the reconnects."""
    err_path, stats = tmp_path / "view.err", tmp_path / "stats.json"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--reconnect",
                                 "--stats-json", str(stats)], stdout=subprocess.DEVNULL, stderr=err)
    try:
        for n, (fmt, frames) in enumerate([("bgr24", 4), ("nv12", 6)], 1):
            prod = vt.start([TESTSRC, "--ring", ring, "--frames", str(frames), "--size", "160x120", "--format", fmt,
                             "--wait-consumer", "20"])
            assert vt.finish(prod)[0] == 0
            vt.wait_for_count(err_path, WAITING, n, view)
        time.sleep(0.3)  # waiting, not reading: Ctrl-C lands in the wait for a producer
        view.send_signal(signal.SIGINT)
        rc = view.wait(timeout=TIMEOUT)
    finally:
        vt.stop(view)
    text = err_path.read_text()
    assert rc == 0, text
    assert f"end of stream after 4 frames from this producer; {WAITING} of ring '{ring}'" in text
    assert "end of stream after 6 frames from this producer" in text
    assert text.count("reconnected") == 1
    assert "interrupted: shown 10 frames" in text and "1 reconnects, frames from 2 producers" in text, text
    st = json.loads(stats.read_text())
    assert st["end"] == "interrupted" and st["frames_shown"] == 10 and st["last_seq"] == 5, st
    assert st["reconnects"] == 1 and st["producers_shown"] == 2 and st["format"] == "nv12", st


def test_exit_at_eos(tmp_path, ring):
    """--reconnect --exit-at-eos: a clean end of stream still ends the viewer (0)."""
    rc, err, st = run_pair(tmp_path, ring, ["--every", "--reconnect", "--exit-at-eos"], ["--frames", "5"])
    assert rc == 0, err
    assert st["end"] == "end of stream" and st["frames_shown"] == 5 and st["reconnects"] == 0, st
    assert WAITING not in err


def test_ended_ring_is_not_attached_again(tmp_path, ring):
    """A producer may keep its ring a while after marking end of stream (framering-capture waits for
    slower consumers to drain it), and may even die there: the viewer waits for the next producer
    instead of attaching to the ended ring again (which read its frames again, or met its end of
    stream, over and over)."""
    err_path, stats = tmp_path / "view.err", tmp_path / "stats.json"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--reconnect",
                                 "--stats-json", str(stats)], stdout=subprocess.DEVNULL, stderr=err)
    prod = None
    try:
        prod = vt.start([TESTSRC, "--ring", ring, "--frames", "3", "--size", "160x120", "--wait-consumer", "20",
                         "--linger", "1.5"])
        vt.wait_for_count(err_path, WAITING, 1, view)
        assert vt.finish(prod)[0] == 0  # its ring stayed under the name for 1.5 s, end of stream marked
        # This one dies while it lingers: its ended ring stays under the name until the next producer
        # reclaims it.
        prod = vt.start([TESTSRC, "--ring", ring, "--frames", "2", "--size", "160x120", "--wait-consumer", "20",
                         "--linger", "60"])
        vt.wait_for_count(err_path, WAITING, 2, view)
        prod.send_signal(signal.SIGKILL)
        prod.wait()
        time.sleep(0.5)
        prod = vt.start([TESTSRC, "--ring", ring, "--frames", "2", "--size", "160x120", "--wait-consumer", "20"])
        assert vt.finish(prod)[0] == 0
        vt.wait_for_count(err_path, WAITING, 3, view)
        view.send_signal(signal.SIGINT)
        rc = view.wait(timeout=TIMEOUT)
    finally:
        vt.stop(view)
        if prod:
            vt.stop(prod)
    text = err_path.read_text()
    assert rc == 0, text
    assert text.count("reconnected") == 2, text
    st = json.loads(stats.read_text())
    assert st["frames_shown"] == 7 and st["reconnects"] == 2 and st["producers_shown"] == 3, st


RECONNECT_RUNS = 20


def test_reconnects_leak_nothing(tmp_path, ring):
    """RECONNECT_RUNS producers one after the other, ending cleanly and by SIGKILL in turn: the
    viewer shows frames of every one, and its file descriptors, its /dev/shm mappings and its heap
    do not grow from one reconnect to the next."""
    err_path, stats = tmp_path / "view.err", tmp_path / "stats.json"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--reconnect",
                                 "--stats-json", str(stats)], stdout=subprocess.DEVNULL, stderr=err)
    held = []  # what the viewer holds while it waits, after each run
    prod = None
    try:
        for n in range(1, RECONNECT_RUNS + 1):
            if n % 2:  # a clean end: 4 frames, end of stream
                prod = vt.start([TESTSRC, "--ring", ring, "--frames", "4", "--size", "160x120",
                                 "--wait-consumer", "20"])
                assert vt.finish(prod)[0] == 0
            else:  # endless, killed once the viewer has read from it
                prod = vt.start([TESTSRC, "--ring", ring, "--frames", "0", "--fps", "100", "--size", "160x120"])
                shmring.wait_for_segment(ring, prod)
                seg = shmring.Segment(ring)
                try:
                    shmring.wait_consumer_reading(seg, view)
                finally:
                    seg.close()
                prod.send_signal(signal.SIGKILL)
                prod.wait()
            vt.wait_for_count(err_path, WAITING, n, view)
            held.append(procinfo.resources(view.pid))
        view.send_signal(signal.SIGINT)
        rc = view.wait(timeout=TIMEOUT)
    finally:
        vt.stop(view)
        if prod:
            vt.stop(prod)
    text = err_path.read_text()
    assert rc == 0, text
    fds, shm, anon = zip(*held)
    assert set(fds) == {fds[0]}, f"file descriptors while waiting, run by run: {fds}"
    assert set(shm) == {0}, f"/dev/shm mappings while waiting (no ring open), run by run: {shm}"
    # From the second wait on (the first SIGKILL path has run): a leak of a ring handle, a texture or
    # an SDL object per reconnect would add kilobytes each time; the latency samples add 8 bytes a frame.
    assert anon[-1] - anon[1] < 64, f"anonymous RSS (kB) while waiting, run by run: {anon}"
    ends = [line for line in text.splitlines() if WAITING in line]
    assert len(ends) == RECONNECT_RUNS, text
    for n, line in enumerate(ends, 1):
        assert line.startswith(f"framering-view: {'end of stream' if n % 2 else 'producer died'} after "), line
        assert " after 0 frames" not in line, f"nothing shown from producer {n}: {line}"
    st = json.loads(stats.read_text())
    assert st["reconnects"] == RECONNECT_RUNS - 1 and st["producers_shown"] == RECONNECT_RUNS, st


def test_sigint_while_waiting(tmp_path, ring):
    err_path = tmp_path / "view.err"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--headless"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        vt.wait_for_line(err_path, "waiting for a producer", view)  # waits forever for the ring
        view.send_signal(signal.SIGINT)
        rc = view.wait(timeout=TIMEOUT)
    finally:
        vt.stop(view)
    text = err_path.read_text()
    assert rc == 0, text
    assert "interrupted: shown 0 frames" in text


def test_snapshot_never_reached(tmp_path, ring):
    snap = tmp_path / "snap.bmp"
    rc, err, st = run_pair(tmp_path, ring, ["--every", "--snapshot", str(snap), "--at", "50"], ["--frames", "3"])
    assert rc == 6 and not snap.exists()
    assert "frame 50 was never shown" in err


# ---------------------------------------------------------------- damaged rings (tests/common/shmring.py)

def blocked_producer(ring, frames):
    """view_testsrc writing FRAMES (0: endless) 160x120 frames into RING and blocked on the full ring
    (about 4 frames), no consumer yet; returns it and the mapped segment."""
    prod = vt.start([TESTSRC, "--ring", ring, "--frames", str(frames), "--size", "160x120", "--slots", "4"])
    try:
        shmring.wait_for_segment(ring, prod)
        seg = shmring.Segment(ring)
        shmring.wait_producer_blocked(seg, prod)
    except BaseException:
        vt.stop(prod)
        raise
    return prod, seg


@pytest.mark.parametrize("kind", sorted(shmring.RING_DAMAGE))
def test_corrupt_ring_ends_with_4(ring, kind):
    """A ring broken after its first frame (see shmring.RING_DAMAGE): one line, exit 4, no spin."""
    prod, seg = blocked_producer(ring, 0)
    try:
        rc, err, cpu, wall = shmring.consume_damaged(
            seg, kind, [VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--quiet"], 20)
    finally:
        vt.stop(prod)
    shmring.assert_one_line_exit_4("framering-view", ring, rc, err, cpu, wall, shmring.RING_DAMAGE_SAYS[kind])


def test_producer_failure_ends_with_7(ring):
    """A producer that ends the stream on an error: the viewer shows what is there, then exits 7
    with the producer's reason on one line (control bytes escaped), not 'end of stream' and 0."""
    prod, seg = blocked_producer(ring, 0)
    try:
        seg.mark_error_end(-5, b"camera unplugged\x1b[2J")
        r = subprocess.run([VIEW, "-r", ring, "--headless", "--every", "--quiet"], capture_output=True,
                           timeout=TIMEOUT)
    finally:
        seg.close()
        vt.stop(prod)
    assert r.returncode == 7, r.stderr
    assert r.stderr.decode().strip().splitlines() == [
        "framering-view: the producer of ring '%s' failed: camera unplugged\\x1b[2J" % ring], r.stderr


def test_shrunk_segment_ends_with_4(ring):
    """The segment truncated under a reading viewer (-EFAULT): one line, exit 4, no crash (SIGBUS)."""
    prod, seg = blocked_producer(ring, 0)
    view = shmring.Measured([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--quiet"])
    try:
        shmring.wait_consumer_reading(seg, view.proc)
        # Stopped, the viewer has unread frames ahead of it once the producer blocks again;
        # whatever it touches first after SIGCONT lies in the pages the truncation takes away.
        view.proc.send_signal(signal.SIGSTOP)
        shmring.wait_producer_blocked(seg, prod)
        seg.close()
        os.truncate(f"/dev/shm/{ring}", shmring.HEADER_SIZE)
        view.proc.send_signal(signal.SIGCONT)
        rc, err, cpu, wall = view.wait(timeout=20)
    finally:
        seg.close()
        view.kill()
        vt.stop(prod)
    shmring.assert_one_line_exit_4("framering-view", ring, rc, err, cpu, wall, "was shrunk")


def test_bad_frame_header_is_skipped(tmp_path, ring):
    """One frame with a wrong magic between good ones: skipped with one warning, counted as bad (not
    as lost), and the viewer reads every good frame to end of stream, exit 0."""
    stats = tmp_path / "stats.json"
    prod, seg = blocked_producer(ring, 10)
    try:
        shmring.damage(seg, "frame-magic")  # frame 1
        r = subprocess.run([VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--stats-json", str(stats)],
                           capture_output=True, text=True, timeout=TIMEOUT)
        prc = vt.finish(prod)[0]
    finally:
        seg.close()
        vt.stop(prod)
    assert r.returncode == 0, r.stderr
    assert prc == 0
    st = json.loads(stats.read_text())
    assert st["end"] == "end of stream" and st["frames_shown"] == 9 and st["last_seq"] == 9, st
    assert st["bad_records"] == 1 and st["frames_lost"] == 0, st
    assert r.stderr.count("skipping a record that is not a valid frame") == 1, r.stderr
    assert f"framering-view: ring '{ring}': skipping" in r.stderr
    assert "bad 1;" in r.stderr  # the summary


# ---------------------------------------------------------------- with framering-capture / framering-dump

def need_capture():
    if not (CAPTURE and os.access(CAPTURE, os.X_OK)):
        pytest.skip("framering-capture is not built")


def need_dump():
    if not (DUMP and os.access(DUMP, os.X_OK)):
        pytest.skip("framering-dump is not built: the snapshot was not compared with the frame sent")


def capture_into(ring, consumer_args, capture_args, tmp_path):
    """Start CONSUMER (waiting for RING) first, then framering-capture; return the consumer's result."""
    cons = vt.start(consumer_args)
    cap = vt.start([CAPTURE, "-r", ring, "--quiet"] + capture_args)
    rc, out, err = vt.finish(cons)
    crc, _, cerr = vt.finish(cap)
    assert crc == 0, f"framering-capture failed: {cerr}"
    return rc, out, err


# Lossless and unpaced: a lavfi graph is a live source for framering-capture (paced, dropping when full).
LAVFI = ["-f", "lavfi", "testsrc2=size=320x240:rate=30", "-s", "320x240", "--frames", "30", "--no-realtime",
         "--on-full", "block"]


@pytest.mark.parametrize("fmt", ["bgr24", "i420"])
def test_capture_testsrc2(tmp_path, ring, fmt):
    need_capture()
    stats, snap, raw = tmp_path / "stats.json", tmp_path / "snap.bmp", tmp_path / "dump.raw"
    rc, _, err = capture_into(ring, [VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--snapshot",
                                     str(snap), "--at", "12", "--stats-json", str(stats)],
                              LAVFI + ["-p", fmt], tmp_path)
    assert rc == 0, err
    st = json.loads(stats.read_text())
    assert st["frames_shown"] == 30 and st["frames_lost"] == 0 and st["last_seq"] == 29
    need_dump()
    # testsrc2 is deterministic: a second run into framering-dump gives the frames that were sent.
    rc, _, err = capture_into(ring, [DUMP, "--ring", ring, "--wait", "20", "--raw", str(raw), "--quiet"],
                              LAVFI + ["-p", fmt], tmp_path)
    assert rc == 0, err
    want = vt.reference_bgr(fmt, 320, 240, raw.read_bytes(), 12)
    img = cv2.imread(str(snap), cv2.IMREAD_COLOR)
    diff = np.abs(img.astype(int) - want.astype(int))
    assert diff.max() <= (0 if fmt == "bgr24" else vt.YUV_TOLERANCE), diff.max()


def test_capture_sample(tmp_path, ring):
    need_capture()
    if not os.path.exists(SAMPLE):
        pytest.skip(f"sample video {SAMPLE!r} is missing")
    args = [SAMPLE, "-s", "480x270", "-p", "bgr24", "--frames", "20"]
    stats, snap, raw = tmp_path / "stats.json", tmp_path / "snap.bmp", tmp_path / "dump.raw"
    rc, _, err = capture_into(ring, [VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--snapshot",
                                     str(snap), "--at", "10", "--stats-json", str(stats)], args, tmp_path)
    assert rc == 0, err
    st = json.loads(stats.read_text())
    assert st["frames_shown"] == 20 and st["last_seq"] == 19
    need_dump()
    rc, _, err = capture_into(ring, [DUMP, "--ring", ring, "--wait", "20", "--raw", str(raw), "--quiet"],
                              args, tmp_path)
    assert rc == 0, err
    want = vt.reference_bgr("bgr24", 480, 270, raw.read_bytes(), 10)
    img = cv2.imread(str(snap), cv2.IMREAD_COLOR)
    assert np.array_equal(img, want)


def ffmpeg(args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error"] + args, check=True, timeout=TIMEOUT)


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_colorimetry_chooses_the_conversion(tmp_path, ring, fmt):
    """10.2: a BT.709-tagged source is shown with SDL's BT.709 conversion: within 4 levels of
    ffmpeg's (swscale's) BGR of the same frame, and far from a BT.601 reading of it (which the
    viewer used for every frame before; that was up to 43 levels off here)."""
    need_capture()
    src, snap = tmp_path / "bt709.mp4", tmp_path / "snap.bmp"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-frames:v", "10", "-c:v", "libx264", "-pix_fmt",
            "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-y", str(src)])
    rc, _, err = capture_into(ring, [VIEW, "-r", ring, "--wait", "20", "--headless", "--every", "--quiet",
                                     "--snapshot", str(snap), "--at", "4"], [str(src), "-s", "source", "-p", fmt],
                              tmp_path)
    assert rc == 0, err
    img = cv2.imread(str(snap), cv2.IMREAD_COLOR).astype(int)
    refs = {}
    for name, vf in (("bt709", "null"), ("bt601", "scale=in_color_matrix=bt601")):
        ffmpeg(["-i", str(src), "-vf", vf, "-pix_fmt", "bgr24", "-f", "rawvideo", "-y", str(tmp_path / name)])
        refs[name] = np.fromfile(tmp_path / name, np.uint8).reshape(10, 240, 320, 3)[4].astype(int)
    assert np.abs(img - refs["bt709"]).max() <= 4
    assert np.abs(img - refs["bt601"]).mean() > 4


def test_stream_that_grows_is_followed(tmp_path, ring):
    """10.5: the producer replaces its ring by a larger one when the source grows; the viewer
    follows by itself and shows every frame, in order, with no reconnect."""
    need_capture()
    parts = []
    # 20 small frames first: stream probing must not reach the large ones (the first ring would fit them)
    for i, (size, n) in enumerate([("320x180", 20), ("1280x720", 3), ("320x180", 5)]):
        parts.append(tmp_path / f"part{i}.ts")
        ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10", "-frames:v", str(n), "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0", "-f", "mpegts", "-y", str(parts[-1])])
    src, stats = tmp_path / "grow.ts", tmp_path / "stats.json"
    src.write_bytes(b"".join(p.read_bytes() for p in parts))
    rc, _, err = capture_into(ring, [VIEW, "-r", ring, "--wait", "20", "--headless", "--every",
                                     "--stats-json", str(stats)], [str(src), "-s", "source", "--slots", "2"],
                              tmp_path)
    assert rc == 0, err
    st = json.loads(stats.read_text())
    assert (st["frames_shown"], st["last_seq"], st["ring_replacements"], st["reconnects"]) == (28, 27, 1, 0), st
    assert "followed 1 ring replacements" in err and "was replaced by a larger one" in err, err


def test_no_display_is_an_sdl_failure(ring):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    r = subprocess.run([VIEW, "-r", ring, "--wait", "0"], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert r.returncode == 5, r.stderr
    assert "SDL_Init failed" in r.stderr and "--headless" in r.stderr
