"""test_dump.py - framering-dump as a consumer: the shared exit-code table, damaged rings (stop with exit 4, never spin), damaged frames (skip and read on), Ctrl-C.

Run by ctest (tests/capture/CMakeLists.txt) like test_capture.py, with the same environment:
FRAMERING_CAPTURE, FRAMERING_DUMP, FRAMERING_SAMPLE_SMALL. The producer is framering-capture
reading a file: in block mode it fills the ring and then sleeps for space, so the test can
damage a segment in which nothing moves (tests/common/shmring.py) before the consumer starts.
"""
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import procinfo  # noqa: E402  (tests/common)
import shmring  # noqa: E402  (tests/common)

CAPTURE = os.environ.get("FRAMERING_CAPTURE", "framering-capture")
DUMP = os.environ.get("FRAMERING_DUMP", "framering-dump")
SMALL = os.environ.get("FRAMERING_SAMPLE_SMALL", "assets/sample-320x240.mp4")
TIMEOUT = 60   # hang bound for a whole run
HANG = 20      # hang bound for a consumer that should end at once

EXIT_ROWS = ["0  done", "1  bad usage", "2  ring missing", "3  the producer died", "4  the ring is corrupt",
             "5  display failure", "6  anything else", "7  the producer failed"]


@pytest.fixture
def ring():
    """A unique ring name; whatever is left under it in /dev/shm is removed afterwards (a killed
    producer leaves its segment, by design)."""
    name = "frtest-dump-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    yield name
    try:
        os.unlink(os.path.join("/dev/shm", name))
    except FileNotFoundError:
        pass


def blocked_capture(ring, frames=10, max_consumers=8):
    """framering-capture writing FRAMES 160x120 frames of the small sample into RING, blocked once
    the ring (4 slots: 4 frames) is full; returns it and the mapped segment."""
    prod = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--slots", "4", "-s", "160x120",
                             "--max-consumers", str(max_consumers), "--frames", str(frames), SMALL],
                            stderr=subprocess.PIPE, text=True)
    try:
        shmring.wait_for_segment(ring, prod)
        seg = shmring.Segment(ring)
        shmring.wait_producer_blocked(seg, prod)
    except BaseException:
        shmring.stop(prod)
        raise
    return prod, seg


def finish_capture(prod):
    """Wait for the producer to end by itself (at end of input, or when its consumer left, like a
    pipe's writer); returns (exit code, stderr)."""
    try:
        _, err = prod.communicate(timeout=TIMEOUT)
    finally:
        shmring.stop(prod)
    return prod.returncode, err


def test_dump_help_exit_table():
    r = subprocess.run([DUMP, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for row in EXIT_ROWS:
        assert row in r.stdout, (row, r.stdout)


@pytest.mark.parametrize("kind", sorted(shmring.RING_DAMAGE))
def test_dump_corrupt_ring_ends_with_4(ring, kind):
    """A ring broken after its first frame (shmring.RING_DAMAGE): one line, exit 4, at once, no spin."""
    prod, seg = blocked_capture(ring)
    try:
        rc, err, cpu, wall = shmring.consume_damaged(seg, kind, [DUMP, "--ring", ring, "--wait", "20", "--quiet"],
                                                     HANG)
    finally:
        shmring.stop(prod)
    shmring.assert_one_line_exit_4("framering-dump", ring, rc, err, cpu, wall, shmring.RING_DAMAGE_SAYS[kind])


def test_dump_shrunk_segment_ends_with_4(ring):
    """The segment truncated under a reading dump (-EFAULT): one line, exit 4, no SIGBUS crash."""
    prod, seg = blocked_capture(ring, frames=1000)
    dump = shmring.Measured([DUMP, "--ring", ring, "--wait", "20", "--quiet"])
    try:
        shmring.wait_consumer_reading(seg, dump.proc)
        # Stopped, dump has unread frames ahead once the producer blocks again; whatever it
        # touches first after SIGCONT lies in the pages the truncation takes away.
        dump.proc.send_signal(signal.SIGSTOP)
        shmring.wait_producer_blocked(seg, prod)
        seg.close()
        os.truncate(os.path.join("/dev/shm", ring), shmring.HEADER_SIZE)
        dump.proc.send_signal(signal.SIGCONT)
        rc, err, cpu, wall = dump.wait(timeout=HANG)
    finally:
        seg.close()
        dump.kill()
        shmring.stop(prod)
    shmring.assert_one_line_exit_4("framering-dump", ring, rc, err, cpu, wall, "was shrunk")


def test_dump_bad_frame_header_is_skipped(tmp_path, ring):
    """One frame with a wrong magic between good ones: skipped with one warning and named in the
    summary; every good frame is dumped, to end of stream, exit 0."""
    hdr = tmp_path / "out.hdr"
    prod, seg = blocked_capture(ring, frames=10)
    try:
        shmring.damage(seg, "frame-magic")  # frame 1
        r = subprocess.run([DUMP, "--ring", ring, "--wait", "20", "--headers", str(hdr)],
                           capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        seg.close()
    prc, perr = finish_capture(prod)
    assert prc == 0, perr
    assert r.returncode == 0, r.stderr
    seqs = [int(line.split()[0]) for line in hdr.read_text().splitlines()]
    assert seqs == [0] + list(range(2, 10)), seqs
    assert r.stderr.count("skipping a record that is not a valid frame") == 1, r.stderr
    assert "framering-dump: ring '%s': skipping" % ring in r.stderr
    summary = r.stderr.strip().splitlines()[-1]
    assert re.match(r"framering-dump: 9 frames, .*end of stream, 1 invalid record skipped", summary), summary


def test_dump_producer_failure_ends_with_7_and_its_reason(ring):
    """A producer that ends the stream on an error: dump reads what is there, then exits 7 with
    the producer's reason on one line, control bytes escaped (the reason is the peer's text)."""
    prod, seg = blocked_capture(ring, frames=1000)
    try:
        seg.mark_error_end(-5, b"decoder failed\x1b]0;pwned\x07\x1b[2J, stream cut")
        r = subprocess.run([DUMP, "--ring", ring, "--quiet"], capture_output=True, timeout=HANG)
    finally:
        seg.close()
        shmring.stop(prod)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 7, r.stderr
    assert lines == ["framering-dump: the producer of ring '%s' failed: decoder failed\\x1b]0;pwned\\x07"
                     "\\x1b[2J, stream cut" % ring], r.stderr
    assert b"\x1b" not in r.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_dump_not_a_file_at_the_name_ends_with_4(ring, kind):
    """10.7: a directory or a FIFO at the ring's name is 'not a ring' (4), as for every consumer."""
    path = os.path.join("/dev/shm", ring)
    os.mkdir(path) if kind == "directory" else os.mkfifo(path)
    try:
        r = subprocess.run([DUMP, "--ring", ring, "--wait", "1"], capture_output=True, text=True, timeout=HANG)
    finally:
        os.rmdir(path) if kind == "directory" else os.unlink(path)
    assert r.returncode == 4, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "not a framering ring" in r.stderr, r.stderr


def test_dump_exit_codes(tmp_path, ring):
    """The rows of the table dump can reach without a damaged ring: 1 usage, 2 missing / busy /
    bad name is usage, 6 output file cannot be written; each with exactly one line."""
    def run(args, code, pattern):
        r = subprocess.run([DUMP] + args, capture_output=True, text=True, timeout=TIMEOUT)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == code, (args, r.stderr)
        assert len(lines) == 1 and re.search(pattern, lines[0]), (args, r.stderr)

    run(["--bogus"], 1, r"unknown option")
    run(["--frames", " -1"], 1, r"bad --frames")  # a negative number, blank first, is no count
    run(["--wait", "0", "-xq"], 1, r"unknown option '-x'")  # the option, not the argument before it
    run(["--ring", "a/b", "--wait", "0"], 1, r"bad ring name 'a/b'")
    # bad usage touches nothing: a file that is there is not truncated for a bad ring name
    keep = tmp_path / "keep.raw"
    keep.write_bytes(b"frames of yesterday")
    run(["--ring", "a/b", "--raw", str(keep), "--headers", str(keep)], 1, r"bad ring name 'a/b'")
    assert keep.read_bytes() == b"frames of yesterday"
    run(["--ring", ring, "--wait", "0.2"], 2, r"ring '%s' not found" % ring)
    run(["--ring", ring, "--raw", str(tmp_path / "no" / "such" / "dir")], 6, r"cannot write")
    prod, seg = blocked_capture(ring, frames=1000, max_consumers=1)
    first = None
    try:
        first = subprocess.Popen([DUMP, "--ring", ring, "--quiet", "--slow-ms", "200"])
        shmring.wait_consumer_reading(seg, first)
        run(["--ring", ring, "--wait", "5"], 2, r"ring '%s' is busy: all its consumer slots are taken" % ring)
    finally:
        seg.close()
        shmring.stop(first)
        shmring.stop(prod)


def test_dump_refuses_a_ring_segment_as_output(tmp_path, ring):
    """--raw or --headers naming a ring's segment (/dev/shm/NAME, a link to it, the segment of
    another ring, the place of a ring yet to come) is bad usage: one line, status 1, and the
    segment keeps every byte (its truncation shrank the ring under the producer, which failed).
    Any other file in /dev/shm may be written."""
    seg_path = os.path.join("/dev/shm", ring)
    link = tmp_path / "link"
    os.symlink(seg_path, link)
    other, later = ring + "-b", ring + "-c"
    plain = os.path.join("/dev/shm", ring + "-raw")
    prod, seg = blocked_capture(ring, frames=10)
    prod_b = None
    try:
        prod_b, seg_b = blocked_capture(other, frames=10)
        seg_b.close()
        size, size_b = os.path.getsize(seg_path), os.path.getsize(os.path.join("/dev/shm", other))
        for opt, path, owner, name in [("--raw", seg_path, ring, ring), ("--headers", str(link), ring, ring),
                                       ("--raw", "/dev/shm/./" + other, ring, other),
                                       ("--headers", os.path.join("/dev/shm", later), later, later)]:
            r = subprocess.run([DUMP, "--ring", owner, "--wait", "0.2", opt, path], capture_output=True,
                               text=True, timeout=HANG)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1, (opt, path, r.stderr)
            assert lines == ["framering-dump: %s '%s' is the shared-memory segment of ring '%s': writing it "
                             "would destroy the ring" % (opt, path, name)], r.stderr
        assert not os.path.exists(os.path.join("/dev/shm", later))
        assert os.path.getsize(os.path.join("/dev/shm", other)) == size_b
        assert os.path.getsize(seg_path) == size
        # the ring is whole: every frame reads, and the producer ends well
        r = subprocess.run([DUMP, "--ring", ring, "--wait", "20", "--raw", plain], capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert os.path.getsize(plain) == 10 * 160 * 120 * 3
    finally:
        seg.close()
        shmring.stop(prod_b)
        for n in (other, later, ring + "-raw"):
            if os.path.exists(os.path.join("/dev/shm", n)):
                os.unlink(os.path.join("/dev/shm", n))
    rc, err = finish_capture(prod)
    assert rc == 0, err


def test_dump_sigint_while_waiting(ring):
    """Ctrl-C while dump waits for the next frame ends it as done: exit 0, 'stopped by signal'."""
    prod = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "-f", "lavfi",
                             "testsrc2=size=160x120:rate=2"], stderr=subprocess.DEVNULL)
    dump = None
    try:
        shmring.wait_for_segment(ring, prod)
        seg = shmring.Segment(ring)
        try:
            dump = shmring.Measured([DUMP, "--ring", ring, "--wait", "20"])
            shmring.wait_consumer_reading(seg, dump.proc)  # then it waits ~0.5 s per frame
        finally:
            seg.close()
        dump.proc.send_signal(signal.SIGINT)
        rc, err, _, _ = dump.wait(timeout=HANG)
    finally:
        if dump:
            dump.kill()
        prod.send_signal(signal.SIGINT)
        finish_capture(prod)
    assert rc == 0, err
    assert "stopped by signal" in err.strip().splitlines()[-1], err


def test_dump_sigint_while_opening_a_fifo(tmp_path, ring):
    """--raw FILE may be a FIFO another program reads; opening it waits in the kernel for that
    reader, and Ctrl-C there is a stop (0), not 'cannot write' (6)."""
    fifo = tmp_path / "raw.fifo"
    os.mkfifo(fifo)
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--raw", str(fifo)], stderr=subprocess.PIPE,
                            text=True)
    try:
        procinfo.wait_opening_fifo(dump, HANG, "dump")
        dump.send_signal(signal.SIGINT)
        _, err = dump.communicate(timeout=HANG)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    assert dump.returncode == 0, err
    assert "cannot write" not in err, err


def test_dump_stderr_closed_keeps_raw_clean(tmp_path, ring):
    """Started with stderr closed (2>&-), dump's lines must not land in the first file it opens
    (--raw took fd 2): the raw file is the frames' bytes and nothing else."""
    raw = tmp_path / "out.raw"
    prod = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "-s", "64x48", "--frames", "10", SMALL])
    try:
        dump = subprocess.run([DUMP, "--ring", ring, "--wait", "20", "--raw", str(raw)],
                              preexec_fn=lambda: os.close(2), timeout=TIMEOUT)
        assert dump.returncode == 0
    finally:
        finish_capture(prod)
    data = raw.read_bytes()
    assert b"framering-dump" not in data
    assert len(data) == 10 * 64 * 48 * 3, len(data)


def test_dump_raw_is_written_in_large_blocks(tmp_path, ring):
    """--raw is written through its 1 MiB buffer: 300 frames of 64x64 (3.6 MB) take a handful of
    write() calls, not two a frame (glibc's setvbuf with no buffer of ours ignores the size and
    buffers 4 KiB). Counted by the kernel (/proc/PID/io syscw), read while dump is a zombie."""
    raw = tmp_path / "out.raw"
    frames, frame_bytes = 300, 64 * 64 * 3
    prod = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "-s", "64x64", "--frames", str(frames),
                             "--no-realtime", "--on-full", "block", "--wait-consumers", "1", "-f", "lavfi",
                             "testsrc2=size=64x64:rate=30"], stderr=subprocess.PIPE, text=True)
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--quiet", "--raw", str(raw)],
                            stderr=subprocess.PIPE)
    try:
        # -q: nothing goes to stderr, so every write() is one of --raw
        os.waitid(os.P_PID, dump.pid, os.WEXITED | os.WNOWAIT)
        with open("/proc/%d/io" % dump.pid) as f:
            io = dict(line.split(": ") for line in f.read().splitlines())
        _, err = dump.communicate(timeout=HANG)
    finally:
        shmring.stop(dump)
        rc, perr = finish_capture(prod)
    assert dump.returncode == 0 and err == b"", err
    assert rc == 0, perr
    assert raw.stat().st_size == frames * frame_bytes
    assert int(io["wchar"]) == frames * frame_bytes, io
    assert int(io["syscw"]) <= frames * frame_bytes // (1 << 20) + 2, io


def test_dump_headers_reach_the_file_frame_by_frame(tmp_path, ring):
    """--headers is line-buffered: a frame's line is in the file as soon as the frame is read,
    so the file can be followed (tail -f) while a live ring plays. With a 64 KiB buffer a 10 fps
    source's lines (about 150 bytes each) came out after about 40 s."""
    headers = tmp_path / "headers.txt"
    prod = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "-s", "64x48", "--frames", "600", "-f", "lavfi",
                             "testsrc2=size=64x48:rate=10"], stderr=subprocess.PIPE, text=True)
    dump = subprocess.Popen([DUMP, "--ring", ring, "--wait", "20", "--quiet", "--headers", str(headers)],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + HANG
        lines = []
        while time.monotonic() < deadline and dump.poll() is None:
            lines = headers.read_text().splitlines() if headers.exists() else []
            if len(lines) >= 3:
                break
            time.sleep(0.05)
        assert dump.poll() is None, dump.communicate()[1]
        assert len(lines) >= 3, "only %d header line(s) in the file after %d s" % (len(lines), HANG)
        assert lines[0].split()[0] == "0" and lines[2].split()[0] == "2", lines[:3]
    finally:
        shmring.stop(dump)
        shmring.stop(prod)
