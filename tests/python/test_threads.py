"""test_threads - a consumer blocked in the C library releases the GIL, so other Python threads keep running."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

import framering
from framering import ring as ring_mod


def test_library_is_cdll_not_pydll():
    lib = framering._lib.lib()
    # PyDLL keeps the GIL during calls; CDLL releases it.
    assert isinstance(lib, ctypes.CDLL) and not isinstance(lib, ctypes.PyDLL)
    assert not (lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI)


def test_other_thread_runs_while_consumer_waits(ring_name, monkeypatch):
    # One foreign call for the whole wait (no Python-level slicing), so the
    # only way the other thread can run is the GIL being released in C.
    monkeypatch.setattr(ring_mod, "_SLICE_NS", 60 * 10**9)
    counts = {"n": 0, "at_write": None}
    prod = framering.Producer(ring_name, slots=2, width=16, height=16)
    cons = framering.Consumer(ring_name, timeout=1)
    waiting = threading.Event()

    def worker():
        waiting.wait()
        # Pure-Python work that needs the GIL: counting.
        while counts["n"] < 200_000:
            counts["n"] += 1
        counts["at_write"] = counts["n"]
        # Only after counting does the frame the main thread waits for arrive:
        # if the wait held the GIL, this would never happen and the wait would time out.
        prod.write_frame(np.full((16, 16, 3), 5, np.uint8))

    t = threading.Thread(target=worker)
    t.start()
    try:
        waiting.set()
        with cons.next_frame(timeout=30) as f:
            assert int(f.array[0, 0, 0]) == 5
        assert counts["at_write"] == 200_000
    finally:
        t.join(timeout=30)
        cons.close()
        prod.close()


def test_threads_each_own_a_side(ring_name):
    """Producer in one thread, consumer in another: frames in order, nothing lost."""
    n = 200
    with framering.Producer(ring_name, slots=3, width=32, height=8) as prod:
        with framering.Consumer(ring_name, timeout=1) as cons:
            got = []

            def consume():
                for f in cons:
                    got.append((f.seq, int(f.array[0, 0, 0])))

            t = threading.Thread(target=consume)
            t.start()
            for i in range(n):
                prod.write_frame(np.full((8, 32, 3), i % 256, np.uint8), timeout=30)
            prod.mark_eos()
            t.join(timeout=60)
            assert not t.is_alive()
    assert got == [(i, i % 256) for i in range(n)]


@pytest.mark.parametrize("latest", [False, True])
def test_wait_slices_do_not_change_results(ring_name, monkeypatch, latest):
    monkeypatch.setattr(ring_mod, "_SLICE_NS", 1_000_000)  # 1 ms slices: many loop turns
    with framering.Producer(ring_name, slots=2, width=8, height=8) as prod:
        with framering.Consumer(ring_name, timeout=1) as cons:
            t = threading.Timer(0.2, lambda: prod.write_frame(np.full((8, 8, 3), 9, np.uint8)))
            t.start()
            get = cons.latest if latest else cons.next_frame
            with get(timeout=30) as f:
                assert int(f.array[0, 0, 0]) == 9
            t.join()


def test_signal_during_wait_is_not_an_error(ring_name, monkeypatch):
    """A signal whose Python handler returns (not Ctrl-C) interrupts the futex wait
    (-EINTR from C); the wait goes on instead of raising."""
    import signal
    import time

    monkeypatch.setattr(ring_mod, "_SLICE_NS", 60 * 10**9)
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
    main = threading.get_ident()
    try:
        with framering.Producer(ring_name, slots=2, width=8, height=8) as prod, \
                framering.Consumer(ring_name, timeout=1) as cons:
            def poke():
                for _ in range(3):
                    time.sleep(0.1)
                    signal.pthread_kill(main, signal.SIGUSR1)
                time.sleep(0.1)
                prod.write_frame(np.full((8, 8, 3), 4, np.uint8))

            t = threading.Thread(target=poke)
            t.start()
            with cons.next_frame(timeout=30) as f:
                assert int(f.array[0, 0, 0]) == 4
            t.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(hits) == 3
