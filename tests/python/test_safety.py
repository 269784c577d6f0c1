"""test_safety - the package's promises under threads, interpreter exit and lying peers: an error, never a crash or a hang.

Each scenario runs in its own interpreter (a crash must fail the test, not end pytest),
and says which point of the safety issue it covers.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap

import pytest

from conftest import SHM, python_env

RUN_TIMEOUT = 60  # a hang bound, never a measure

PRELUDE = textwrap.dedent("""
    import atexit, sys, threading, time
    import numpy as np
    import framering

    def wait_for(cond, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                print("TIMEOUT waiting for", what, flush=True)
                sys.exit(9)
            time.sleep(0.005)

    # A thread waiting for CONS's next frame without a limit; what ended the wait goes into
    # RESULT: "frame", "closed" (RingClosed) or the repr of another exception.
    def start_reader(cons, result):
        def reader():
            try:
                cons.next_frame(timeout=None)
                result.append("frame")
            except framering.RingClosed:
                result.append("closed")
            except Exception as e:
                result.append(repr(e))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        return t
""")


def run_script(body: str, *args: str) -> subprocess.CompletedProcess:
    """Run PRELUDE + BODY in a fresh /usr/bin/python3 (the interpreter running the tests)."""
    r = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body), *args], env=python_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
    return r


def assert_clean_exit(r: subprocess.CompletedProcess) -> None:
    # A negative code is a signal: -11 SIGSEGV, -7 SIGBUS, -6 SIGABRT.
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


# ---------------------------------------------------------------- 9.1: close from another thread

def test_close_wakes_a_waiting_reader(ring_name):
    """A UI thread closing the consumer while a reader thread waits in C (the GIL released):
    the wait ends at once with RingClosed, and nothing is unmapped under it. It used to free
    the ring under the running call: a segfault or a wait that never noticed."""
    r = run_script("""
        name = sys.argv[1]
        prod = framering.Producer(name, slots=2, width=64, height=48)
        cons = framering.Consumer(name, timeout=1)
        result = []
        t = start_reader(cons, result)
        wait_for(lambda: prod.stats.consumer_futex_waits >= 1, "the reader to sleep in C")
        cons.close()
        t.join(20)
        assert not t.is_alive(), "the reader still waits after close()"
        print("reader:", result, flush=True)
        # the slot is free again at once
        with framering.Consumer(name, timeout=1):
            pass
        prod.close()
    """, ring_name)
    assert_clean_exit(r)
    assert "reader: ['closed']" in r.stdout


def test_close_wakes_a_reader_following_a_replaced_ring(ring_name):
    """close() from another thread also wakes a reader that waits for the ring that replaced
    its own (here the producer replaced its ring and went away, so none comes): RingClosed at
    once, as for any wait. It went on waiting until REPLACE_WAIT ran out (made endless here),
    as the attach did not look at close()."""
    r = run_script("""
        name = sys.argv[1]
        framering.ring.REPLACE_WAIT = None  # only close() can end the wait for the new ring
        prod = framering.Producer(name, capacity=1 << 16)
        cons = framering.Consumer(name, timeout=1)
        prod.replace(1 << 16)
        prod.close()  # the name is gone with it
        result = []
        t = start_reader(cons, result)
        time.sleep(0.3)  # the reader is waiting for the new ring by now (if not, it is closed before)
        cons.close()
        t.join(20)
        assert not t.is_alive(), "the reader still waits after close()"
        print("reader:", result, flush=True)
    """, ring_name)
    assert_clean_exit(r)
    assert "reader: ['closed']" in r.stdout


def test_close_wakes_a_waiting_writer(ring_name):
    """The same for a producer thread blocked in reserve_frame() on a full ring."""
    r = run_script("""
        name = sys.argv[1]
        prod = framering.Producer(name, slots=2, width=64, height=48)
        cons = framering.Consumer(name, timeout=1)
        img = np.zeros((48, 64, 3), np.uint8)
        while True:
            try:
                prod.write_frame(img, timeout=0)
            except framering.Timeout:
                break
        result = []

        def writer():
            try:
                prod.reserve_frame(64, 48, timeout=None)
                result.append("reserved")
            except framering.RingClosed:
                result.append("closed")
            except Exception as e:
                result.append(repr(e))

        t = threading.Thread(target=writer)
        t.start()
        wait_for(lambda: cons.stats.producer_futex_waits >= 1, "the writer to sleep in C")
        prod.close()
        t.join(20)
        assert not t.is_alive(), "the writer still waits after close()"
        print("writer:", result, flush=True)
        n = sum(1 for _ in cons)  # what was committed is read, then end of stream
        print("read after close:", n, flush=True)
        cons.close()
    """, ring_name)
    assert_clean_exit(r)
    assert "writer: ['closed']" in r.stdout
    assert "read after close: 0" not in r.stdout
    assert not (SHM / ring_name).exists()


def test_close_while_another_thread_iterates(ring_name):
    """close() while another thread runs `for frame in consumer` with frames flowing: the loop
    ends with RingClosed (or at end of stream), views it kept stay readable."""
    r = run_script("""
        name = sys.argv[1]
        prod = framering.Producer(name, slots=4, width=320, height=240, on_full="drop")
        cons = framering.Consumer(name, timeout=1)
        kept, ended = [], []
        stop = threading.Event()

        def produce():
            i = 0
            while not stop.is_set():
                try:
                    prod.write_frame(np.full((240, 320, 3), i % 256, np.uint8))
                except framering.RingFull:
                    time.sleep(0.001)
                i += 1

        def iterate():
            try:
                for f in cons:
                    kept.append(f.array)
                    del kept[:-3]
                    float(kept[-1].mean())
                ended.append("eos")
            except framering.RingClosed:
                ended.append("closed")

        threads = [threading.Thread(target=produce), threading.Thread(target=iterate)]
        for t in threads:
            t.start()
        wait_for(lambda: prod.stats.records_read >= 50, "frames to flow")
        cons.close()
        threads[1].join(20)
        stop.set()
        threads[0].join(20)
        assert not any(t.is_alive() for t in threads)
        print("ended:", ended, "views readable:", all(v.shape == (240, 320, 3) and v.mean() >= 0 for v in kept))
        prod.close()
    """, ring_name)
    assert_clean_exit(r)
    assert "ended: ['closed'] views readable: True" in r.stdout


def test_two_threads_share_a_consumer(ring_name):
    """9.3: a Consumer shared by two reader threads: calls are serialized, so every frame is
    delivered exactly once, in order per thread; no crash from two calls inside C at once."""
    r = run_script("""
        name = sys.argv[1]
        N = 400
        prod = framering.Producer(name, slots=4, width=32, height=8)
        cons = framering.Consumer(name, timeout=1)
        got = {0: [], 1: []}

        def read(k):
            while True:
                try:
                    f = cons.next_frame(timeout=10)
                except framering.EndOfStream:
                    return
                got[k].append(f.seq)
                float(f.array.mean())  # may have been released by the other thread: safe anyway

        readers = [threading.Thread(target=read, args=(k,)) for k in (0, 1)]
        for t in readers:
            t.start()
        for i in range(N):
            prod.write_frame(np.full((8, 32, 3), i % 256, np.uint8), timeout=30)
        prod.mark_eos()
        for t in readers:
            t.join(60)
        assert not any(t.is_alive() for t in readers)
        seqs = sorted(got[0] + got[1])
        print("all once:", seqs == list(range(N)), "in order:", all(g == sorted(g) for g in got.values()))
        cons.close()
        prod.close()
    """, ring_name)
    assert_clean_exit(r)
    assert "all once: True in order: True" in r.stdout


def test_close_while_another_thread_fills_a_reserved_frame(ring_name):
    """A writer thread sets the header of its reserved frame (out.colorimetry: calls into C,
    the GIL released, between its check and its writes) while another thread closes the
    producer and drops it. The reservation's header in shared memory kept nothing alive, so
    the ring was unmapped under the writer: a segfault. Now the writer gets RingClosed."""
    r = run_script("""
        import gc
        name = sys.argv[1]
        col = framering.Colorimetry("bt709", "full", "bt709", "smpte2084", "topleft")
        ended = set()
        for i in range(200):
            prod = framering.Producer(name, capacity=1 << 16)
            out = prod.reserve_frame(8, 8, "gray8")

            def writer():
                try:
                    while True:
                        out.colorimetry = col
                        out.pts = i
                except framering.RingClosed:
                    ended.add("RingClosed")

            t = threading.Thread(target=writer)
            t.start()
            prod.close()
            del prod
            gc.collect()
            t.join(20)
            assert not t.is_alive()
        print("writer ended with", sorted(ended), flush=True)
    """, ring_name)
    assert_clean_exit(r)
    assert "writer ended with ['RingClosed']" in r.stdout


# ---------------------------------------------------------------- 9.2: interpreter exit

@pytest.mark.parametrize("attempt", range(3))
def test_exit_with_live_views(ring_name, attempt):
    """At interpreter exit a daemon thread still reads a frame view and an atexit handler reads
    another; a Producer and a Consumer were never closed. The finalizers used to unmap at exit
    under the readers: SIGSEGV. Now nothing is unmapped at exit, yet the sides are detached: the
    ring's name is gone (end of stream marked)."""
    r = run_script("""
        name = sys.argv[1]
        prod = framering.Producer(name, slots=3, width=1920, height=1080)
        cons = framering.Consumer(name, timeout=1)
        prod.write_frame(np.full((1080, 1920, 3), 7, np.uint8))
        prod.write_frame(np.full((1080, 1920, 3), 9, np.uint8))
        first = cons.next_frame(timeout=1).copy()
        view = cons.next_frame(timeout=1).array
        reads = [0]

        def keep_reading():
            while True:
                view.sum()  # a large reduction: numpy releases the GIL while it runs
                reads[0] += 1

        atexit.register(lambda: print("atexit read:", int(view[::97, ::89].max()), flush=True))
        threading.Thread(target=keep_reading, daemon=True).start()
        wait_for(lambda: reads[0] >= 2, "the daemon reader")
        print("leaving", flush=True)
    """, ring_name)
    assert_clean_exit(r)
    assert "atexit read: 9" in r.stdout
    assert not (SHM / ring_name).exists(), "a Producer left open at exit must still remove its ring"


# ---------------------------------------------------------------- 9.7 / 9.14: lying or foreign producers

def _impostor_ring(name: str, pid_word: int) -> None:
    """A ring with two frames left by a producer that is gone (killed: its lock went with it),
    whose pid word then names PID_WORD: a live unrelated process, or 0."""
    r = run_script("""
        import os, signal
        prod = framering.Producer(sys.argv[1], slots=4, width=16, height=16)
        for i in range(2):
            prod.write_frame(np.full((16, 16, 3), i, np.uint8))
        os.kill(os.getpid(), signal.SIGKILL)
    """, name)
    assert r.returncode == -9, r.stderr
    with open(SHM / name, "r+b") as f:
        f.seek(136)  # producer_pid (ring_layout.h)
        f.write(struct.pack("<I", pid_word))


@pytest.mark.parametrize("pid_word", ["parent", "init", "zero"])
def test_consumer_of_an_impostor_ends(ring_name, pid_word):
    """9.7: the "producer" is no framering producer (its pid names a live unrelated process, or
    nobody, and no end of stream): a consumer waiting without timeout reads what is there and then
    gets PeerDied within the liveness bound, instead of waiting forever; so does the viewer (exit 3).
    (A consumer that asks to wait for the ring, timeout > 0, passes such a ring over: 9.9.)"""
    import os
    _impostor_ring(ring_name, {"parent": os.getpid(), "init": 1, "zero": 0}[pid_word])
    r = run_script("""
        cons = framering.Consumer(sys.argv[1], timeout=0)  # attach now: waiting would pass a dead ring over
        seqs = []
        try:
            while True:
                seqs.append(cons.next_frame(timeout=None).seq)
        except framering.PeerDied as e:
            print("read", seqs, "then PeerDied", flush=True)
        cons.close()
    """, ring_name)
    assert_clean_exit(r)
    assert "read [0, 1] then PeerDied" in r.stdout
    assert not (SHM / ring_name).exists(), "the consumer removes the dead producer's name when it leaves"
    _impostor_ring(ring_name, {"parent": os.getpid(), "init": 1, "zero": 0}[pid_word])
    v = subprocess.run([sys.executable, "-m", "framering.view", ring_name, "--headless", "--every", "--timeout", "0"],
                       env=python_env(), stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
    assert v.returncode == 3 and "producer died" in v.stderr, v.stderr


def test_frame_of_another_version_does_not_wedge(ring_name):
    """9.14: one frame of another FRAME_VERSION between good ones used to wedge a Python consumer
    for good (-EPROTO left it peeked: -EALREADY on every later call). Now it is skipped with
    ForeignRing, like fr_frame_peek() in C, and the frames after it are read; a record that is not a
    frame at all is skipped with InvalidFrame, and iteration skips those and counts them."""
    import framering
    with framering.Producer(ring_name, slots=8, width=16, height=16) as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        for i in range(3):
            with prod.reserve_frame(16, 16) as out:
                out.array[:] = i
                if i == 1:
                    out._hdr.version += 1  # written into the shared header: the consumer sees it
        assert cons.next_frame(timeout=1).seq == 0
        with pytest.raises(framering.ForeignRing, match="version") as e:
            cons.next_frame(timeout=1)
        assert e.value.code == -__import__("errno").EPROTO
        f = cons.next_frame(timeout=1)
        assert f.seq == 2 and int(f.array.max()) == 2
        # a record that is no frame: InvalidFrame, skipped; iteration skips and counts it
        with prod.reserve_frame(16, 16) as out:
            out._hdr.magic = 0
        prod.write_frame(__import__("numpy").full((16, 16, 3), 4, "uint8"))
        with pytest.raises(framering.InvalidFrame):
            cons.next_frame(timeout=1)
        assert cons.next_frame(timeout=1).seq == 4
        with prod.reserve_frame(16, 16) as out:
            out._hdr.magic = 0
        prod.write_frame(__import__("numpy").full((16, 16, 3), 6, "uint8"))
        prod.mark_eos()
        assert [f.seq for f in cons] == [6]
        assert cons.invalid_frames == 2
