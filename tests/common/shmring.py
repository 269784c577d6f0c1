"""shmring.py - test helpers that look into and damage a live framering ring segment in /dev/shm, and run a consumer under a hang bound with its CPU time measured.

The offsets are those of libring/src/ring_layout.h (static-asserted there) and
libring/include/frame.h. A test lets a producer fill a ring until it blocks (nothing
moves then: the producer sleeps for space, no consumer is attached), scribbles on
the segment file, then starts a consumer and checks how it ends. Used by
tests/view/test_view.py (framering-view) and tests/capture/test_dump.py
(framering-dump), so both consumers meet the same damage.
"""
import mmap
import os
import signal
import struct
import subprocess
import tempfile
import time

SHM = "/dev/shm"
RING_MAGIC = 0x31474E49524D5246  # "FRMRING1"
HEADER_SIZE = 4096                # the data area starts here
OFF_CAPACITY = 16
OFF_TAIL = 128
OFF_EOS = 140                     # 2: an error end, with the two fields below
OFF_RECORDS_WRITTEN = 152
OFF_OLDEST = 224                  # where a new every-consumer starts (the oldest record still whole)
OFF_PRODUCER_SLEEPING = 384
OFF_EOS_ERROR = 776               # a negative errno value
OFF_EOS_MESSAGE = 780             # 128 bytes, NUL-terminated unless hostile
OFF_SLOT0 = 1024                  # the consumer table: a test's one consumer takes slot 0
OFF_CONSUMER_PID = OFF_SLOT0 + 20
OFF_RECORDS_READ = OFF_SLOT0 + 32
REC_HDR = 8
REC_DATA = 0x41544144  # "DATA"
REC_PAD = 0x44444150   # "PADD"
FRAME_OFF_MAGIC = 0     # in the frame header, at the start of a DATA payload
FRAME_OFF_VERSION = 4

# Damage that makes the ring unreadable from that point: the consumer must stop with exit 4.
# Each breaks the second data record (the first frame is good, so the consumer is
# reading when it meets the damage), except "tail-unaligned", which breaks the index
# (fr_ring_open checks it, so the consumer is refused at open).
RING_DAMAGE = {
    "unknown-type": "a record header with an unknown type",
    "tail-unaligned": "a tail index that is not 8-aligned",
    "pad-zero-length": "a padding record of length 0 (would never advance)",
    "huge-length": "a record length of 0xFFFFFFF8",
    "frame-version": "a frame of another FRAME_VERSION (-EPROTO)",
}
# What the consumer's one line says for each (app/common/consumer_exit.h, and the open failure).
RING_DAMAGE_SAYS = {
    "unknown-type": "is corrupt",
    "tail-unaligned": "is not a valid framering ring",
    "pad-zero-length": "is corrupt",
    "huge-length": "is corrupt",
    "frame-version": "another format version",
}


class Segment:
    """The segment file of ring NAME, mapped read-write (the test is the hostile peer)."""

    def __init__(self, name):
        self.path = os.path.join(SHM, name)
        self._f = open(self.path, "r+b")
        self._m = mmap.mmap(self._f.fileno(), 0)
        assert self.u64(0) == RING_MAGIC, f"{self.path} is not a ring"

    def close(self):
        """Unmap (needed before the file shrinks: touching a lost page would SIGBUS this process)."""
        if self._m is not None:
            self._m.close()
            self._f.close()
            self._m = None

    def u16(self, off):
        return struct.unpack_from("<H", self._m, off)[0]

    def u32(self, off):
        return struct.unpack_from("<I", self._m, off)[0]

    def u64(self, off):
        return struct.unpack_from("<Q", self._m, off)[0]

    def put_u16(self, off, v):
        struct.pack_into("<H", self._m, off, v)

    def put_u32(self, off, v):
        struct.pack_into("<I", self._m, off, v)

    def put_u64(self, off, v):
        struct.pack_into("<Q", self._m, off, v)

    def put_bytes(self, off, data):
        self._m[off:off + len(data)] = data

    def mark_error_end(self, code, message):
        """End the stream as a failed producer would (fr_ring_mark_eos_error), with any bytes."""
        self.put_u32(OFF_EOS_ERROR, code & 0xFFFFFFFF)
        self.put_bytes(OFF_EOS_MESSAGE, message[:128].ljust(128, b"\0"))
        self.put_u32(OFF_EOS, 2)

    def data_records(self):
        """[(file offset of the record header, payload length)] of the data records a new consumer
        would read: from the oldest record still whole to the tail."""
        cap = self.u64(OFF_CAPACITY)
        pos, tail, out = self.u64(OFF_OLDEST), self.u64(OFF_TAIL), []
        while pos < tail:
            off = HEADER_SIZE + (pos & (cap - 1))
            length, kind = self.u32(off), self.u32(off + 4)
            if kind == REC_DATA:
                out.append((off, length))
                pos += REC_HDR + ((length + 7) & ~7)
            else:
                assert kind == REC_PAD and length >= REC_HDR, f"unexpected record {kind:#x} at {off}"
                pos += length
        return out


def wait_for_segment(name, proc, timeout=30):
    """Wait until ring NAME exists (it appears whole) while PROC runs."""
    path = os.path.join(SHM, name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, f"the producer exited ({proc.returncode}) before creating {name}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def wait_producer_blocked(seg, proc, min_records=3, timeout=30):
    """Wait until the producer sleeps for space on a full ring: from then on nothing in the segment
    changes until a consumer reads. Returns the number of records written."""
    deadline, last = time.monotonic() + timeout, -1
    while True:
        assert proc.poll() is None, f"the producer exited ({proc.returncode}) instead of blocking"
        written = seg.u64(OFF_RECORDS_WRITTEN)
        if written >= min_records and written == last and seg.u32(OFF_PRODUCER_SLEEPING) == 1:
            return written
        assert time.monotonic() < deadline, f"the producer never blocked (records written: {written})"
        last = written
        time.sleep(0.05)


def damage(seg, kind):
    """Break the ring as RING_DAMAGE[kind] says, or (kind "frame-magic") make the second frame's
    header invalid (wrong magic): a damaged record the consumer must skip and read on."""
    recs = seg.data_records()
    assert len(recs) >= 3, f"need 3 unread frames to damage the second, have {len(recs)}"
    hdr, _ = recs[1]
    payload = hdr + REC_HDR
    if kind == "unknown-type":
        seg.put_u32(hdr + 4, 0x214B4E55)  # "UNK!"
    elif kind == "tail-unaligned":
        seg.put_u64(OFF_TAIL, seg.u64(OFF_TAIL) - 4)
    elif kind == "pad-zero-length":
        seg.put_u32(hdr, 0)
        seg.put_u32(hdr + 4, REC_PAD)
    elif kind == "huge-length":
        seg.put_u32(hdr, 0xFFFFFFF8)
    elif kind == "frame-version":
        seg.put_u16(payload + FRAME_OFF_VERSION, seg.u16(payload + FRAME_OFF_VERSION) + 1)
    elif kind == "frame-magic":
        seg.put_u32(payload + FRAME_OFF_MAGIC, 0x21444142)  # "BAD!"
    else:
        raise ValueError(kind)


def wait_consumer_reading(seg, proc, timeout=30):
    """Wait until a consumer is attached and has released at least one record."""
    deadline = time.monotonic() + timeout
    while not (seg.u32(OFF_CONSUMER_PID) and seg.u64(OFF_RECORDS_READ) >= 1):
        assert proc.poll() is None, f"the consumer exited ({proc.returncode}) before reading"
        assert time.monotonic() < deadline, "the consumer never read a frame"
        time.sleep(0.01)


class Measured:
    """A consumer process with stderr in a file; wait() reaps it with os.wait4 for its CPU time."""

    def __init__(self, args):
        self._err = tempfile.TemporaryFile("w+")
        self.args = args
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._err)

    def wait(self, timeout):
        """(exit code, stderr, CPU seconds, wall seconds); fails the test if it outlives TIMEOUT (a hang)."""
        while True:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - self.t0 > timeout:
                self.proc.kill()
                os.wait4(self.proc.pid, 0)
                self.proc.returncode = -signal.SIGKILL
                raise AssertionError(f"{self.args[0]} did not end within {timeout} s (hung or spinning); "
                                     f"stderr:\n{self.stderr()}")
            time.sleep(0.02)
        wall = time.monotonic() - self.t0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode, self.stderr(), ru.ru_utime + ru.ru_stime, wall

    def stderr(self):
        self._err.seek(0)
        return self._err.read()

    def kill(self):
        if self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def consume_damaged(seg, kind, args, timeout):
    """Damage SEG as KIND (see damage()), then run the consumer ARGS on it under a hang bound:
    (exit code, stderr, CPU seconds, wall seconds). The segment is unmapped on every path."""
    consumer = None
    try:
        damage(seg, kind)
        consumer = Measured(args)
        return consumer.wait(timeout=timeout)
    finally:
        seg.close()
        if consumer:
            consumer.kill()


def assert_one_line_exit_4(prog, ring, rc, err, cpu, wall, want):
    """The consumer PROG stopped on a broken ring as every consumer must: exit 4, exactly one
    line on stderr naming PROG, the ring and WANT, and no spinning while it ran (the old
    release-and-retry loops burnt a core)."""
    lines = err.strip().splitlines()
    assert rc == 4, err
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith(f"{prog}: ") and f"'{ring}'" in lines[0] and want in lines[0], lines[0]
    assert cpu < 0.5 * wall + 0.5, f"{cpu:.2f} s of CPU in {wall:.2f} s: spinning?"


def stop(proc):
    """Kill PROC if it still runs (cleanup)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
