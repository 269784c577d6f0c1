"""test_errors - every ring failure surfaces as its own Python exception, and no misuse crashes the interpreter."""

from __future__ import annotations

import errno
import os
import signal
import sys
import textwrap
import time

import numpy as np
import pytest

import framering
from conftest import SHM, program, python_env, remove_segment

# A Python producer process: 64x48 BGR frames as fast as the consumer takes them.
PY_PRODUCER = textwrap.dedent("""
    import sys, numpy as np, framering
    p = framering.Producer(sys.argv[1], slots=4, width=64, height=48)
    print("ready", flush=True)
    i = 0
    while True:
        p.write_frame(np.full((48, 64, 3), i % 256, np.uint8), pts=i)
        i += 1
""")


def test_missing_ring(ring_name):
    with pytest.raises(framering.RingNotFound) as ei:
        framering.Consumer(ring_name, timeout=0)
    assert ei.value.code == -errno.ENOENT
    assert ring_name in str(ei.value)
    assert isinstance(ei.value, framering.FrameringError)
    # Waiting for it: still not found after the timeout, with a message that says so.
    with pytest.raises(framering.RingNotFound, match="appeared"):
        framering.Consumer(ring_name, timeout=0.2)


def test_consumer_waits_for_ring_to_appear(ring_name):
    import threading
    made = {}

    def create_later():
        time.sleep(0.3)
        made["p"] = framering.Producer(ring_name, capacity=1 << 16)

    t = threading.Thread(target=create_later)
    t.start()
    try:
        with framering.Consumer(ring_name, timeout=10) as cons:
            assert cons.peer_alive
    finally:
        t.join()
        made["p"].close()


def test_busy_ring(ring_name):
    with framering.Producer(ring_name, capacity=1 << 16, max_consumers=1):
        with framering.Consumer(ring_name, timeout=1):
            with pytest.raises(framering.RingBusy) as ei:
                framering.Consumer(ring_name, timeout=0)
            assert ei.value.code == -errno.EBUSY
        # A second live producer on the same name is refused too.
        with pytest.raises(framering.RingBusy):
            framering.Producer(ring_name, capacity=1 << 16)


def test_foreign_segment(ring_name):
    (SHM / ring_name).write_bytes(b"not a ring" * 1000)
    with pytest.raises(framering.ForeignRing) as ei:
        framering.Consumer(ring_name, timeout=0)
    assert ei.value.code in (-errno.EBADMSG, -errno.EPROTO)
    with pytest.raises(framering.ForeignRing) as ei:
        framering.Producer(ring_name, capacity=1 << 16)
    assert ei.value.code == -errno.EEXIST
    assert (SHM / ring_name).read_bytes()[:10] == b"not a ring", "a foreign segment must be left alone"


def test_drop_policy_raises_ring_full(ring_name):
    with framering.Producer(ring_name, slots=2, width=64, height=48, on_full="drop") as prod:
        # Nobody reads losslessly: a live producer runs at its own pace, overwriting.
        for _ in range(100):
            prod.write_frame(np.zeros((48, 64, 3), np.uint8))
        assert prod.stats.records_dropped == 0
        # An "every" consumer that does not read (it starts at the oldest frame still in the
        # ring: the ring is full for it at once): then frames are dropped.
        with framering.Consumer(ring_name, timeout=0) as cons:
            with pytest.raises(framering.RingFull):
                for _ in range(100):
                    prod.write_frame(np.zeros((48, 64, 3), np.uint8))
            assert prod.stats.records_dropped == 1
            prod.on_full = "block"
            with pytest.raises(framering.Timeout):
                prod.write_frame(np.zeros((48, 64, 3), np.uint8), timeout=0.1)
            assert cons.stats.records_read == 0


def test_exception_in_with_block_aborts_frame(ring_name):
    with framering.Producer(ring_name, capacity=1 << 16) as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        with pytest.raises(RuntimeError):
            with prod.reserve_frame(16, 16) as out:
                out.array[:] = 1
                raise RuntimeError("processing failed")
        prod.write_frame(np.full((16, 16, 3), 2, np.uint8))
        with cons.next_frame(timeout=1) as f:
            assert int(f.array[0, 0, 0]) == 2, "the aborted frame must never be seen"


def _bad_arguments(ring_name, prod):
    """(what, call, code, text in the message): every argument the library or the package refuses."""
    return [
        ("unknown format name", lambda: framering.format_code("yuyv"), errno.EINVAL, "unknown frame format"),
        ("unknown format code", lambda: framering.format_code(0x12345), errno.EINVAL, "unknown frame format"),
        ("on_full", lambda: framering.Producer(ring_name, on_full="maybe"), errno.EINVAL, "on_full"),
        ("on_full setter", lambda: setattr(prod, "on_full", "maybe"), errno.EINVAL, "on_full"),
        ("slots without size", lambda: framering.Producer(ring_name, slots=4), errno.EINVAL, "slots needs"),
        ("slots and capacity", lambda: framering.Producer(ring_name, 1 << 16, slots=4, width=8, height=8),
         errno.EINVAL, "capacity or slots"),
        ("frame size", lambda: framering.capacity_for(4, 0, 480), errno.EINVAL, "bad frame size"),
        ("ring name", lambda: framering.Producer("bad/name", capacity=1 << 16), errno.EINVAL, "bad/name"),
        ("consumer's ring name", lambda: framering.Consumer("bad/name", timeout=0), errno.EINVAL, "bad/name"),
        ("long ring name", lambda: framering.Producer("n" * 300, capacity=1 << 16), errno.ENAMETOOLONG, "too long"),
        ("size above FRAME_MAX_DIM", lambda: prod.reserve_frame(16385, 8, timeout=0), errno.EINVAL, "16385x8"),
        ("frame larger than the ring", lambda: prod.reserve_frame(1920, 1080, timeout=0), errno.EMSGSIZE, "1920x1080"),
    ]


def test_bad_arguments_are_value_errors(ring_name):
    """Every refused argument is an InvalidArgument: a FrameringError and a ValueError, so
    `except ValueError` catches it, with the errno in .code and the message in str()."""
    with framering.Producer(ring_name + "-p", capacity=1 << 16) as prod:
        for what, call, code, text in _bad_arguments(ring_name, prod):
            try:
                call()
            except ValueError as e:
                assert isinstance(e, framering.InvalidArgument) and isinstance(e, framering.FrameringError), what
                assert e.code == -code, what
                assert text in str(e) and str(e) == e.message, what
            else:
                pytest.fail(f"{what}: no exception")
        assert prod.on_full == "block" and not prod.closed  # a refused setting changes nothing
    assert not (SHM / ring_name).exists()


def test_time_base_consumers_would_refuse_is_refused(ring_name):
    """A frame's time base must be positive (consumers skip a frame whose is not, as invalid):
    setting one that is not -- unset, zero, negative, or beyond the header's int32 fields
    (as a float's exact fraction is) -- raises InvalidArgument and leaves the frame as it was,
    instead of committing a frame every consumer throws away."""
    from fractions import Fraction
    with framering.Producer(ring_name, capacity=1 << 16) as prod, \
            framering.Consumer(ring_name, timeout=0) as cons:
        with prod.reserve_frame(8, 8, "gray8") as out:
            out.time_base = (1, 30)
            for bad in (None, (0, 1), (1, 0), (-1, 30), Fraction(-1, 25), 1 / 30, (1, 1 << 31)):
                with pytest.raises(ValueError) as e:
                    out.time_base = bad
                assert isinstance(e.value, framering.InvalidArgument), bad
                assert e.value.code == -errno.EINVAL and "time base" in str(e.value), bad
                assert out.time_base == Fraction(1, 30), bad
        frame = cons.next_frame(timeout=1)  # not an InvalidFrame
        assert frame.time_base == Fraction(1, 30)


def test_nul_in_a_ring_name_is_refused_not_cut(ring_name):
    """A ring name with a NUL byte is an InvalidArgument everywhere, as in the C++ wrapper; it
    must not be cut at the NUL (the C string ctypes passes), which would create, attach to,
    inspect or remove another ring: the one named by the part before it."""
    with framering.Producer(ring_name, capacity=1 << 16):
        calls = {
            "Producer": lambda: framering.Producer(ring_name + "-p\0x", capacity=1 << 16),
            "Consumer": lambda: framering.Consumer(ring_name + "\0x", timeout=0),
            "Consumer waiting": lambda: framering.Consumer(ring_name + "\0x", timeout=1),
            "inspect": lambda: framering.inspect(ring_name + "\0x"),
            "inspect_consumers": lambda: framering.inspect_consumers(ring_name + "\0x"),
            "unlink_stale": lambda: framering.unlink_stale(ring_name + "\0x"),
        }
        for what, call in calls.items():
            with pytest.raises(ValueError) as e:
                call()
            assert isinstance(e.value, framering.InvalidArgument), what
            assert e.value.code == -errno.EINVAL and "NUL" in str(e.value), what
        assert framering.inspect(ring_name).consumers == 0
    assert not (SHM / (ring_name + "-p")).exists()


def test_colorimetry_and_hot_lap_refusals_are_invalid_argument(ring_name):
    """The package's own refusals are InvalidArgument too (a FrameringError, as errors.py promises,
    and a ValueError): an unknown colorimetry name, a code that does not fit the header's byte
    (it was cut to 8 bits and written: 300 became 44), a negative hot lap or wait."""
    with framering.Producer(ring_name, capacity=1 << 16) as prod:
        with prod.reserve_frame(8, 8, "gray8") as out:
            before = out.colorimetry
            for bad in (framering.Colorimetry("bt999", "full", "bt709", "bt709", "left"),
                        framering.Colorimetry("bt709", "full", "300", "bt709", "left")):
                with pytest.raises(framering.InvalidArgument) as e:
                    out.colorimetry = bad
                assert isinstance(e.value, ValueError) and e.value.code == -errno.EINVAL
                assert out.colorimetry == before, bad
            out.colorimetry = framering.Colorimetry("bt709", "full", "255", "bt709", "left")
            assert out.colorimetry.primaries == "255"  # a number the library has no name for
        for nbytes, wait in ((-1, None), (0, -2.0)):
            with pytest.raises(framering.InvalidArgument):
                prod.set_hot_lap(nbytes, wait)


def test_integers_that_do_not_fit_c_are_refused_not_wrapped(ring_name):
    """An integer that does not fit the C type it is passed as is an InvalidArgument naming
    the argument: ctypes would cut it to the type's width without a word (2**32 + 8 became
    a width of 8, 2**64 + 65536 a 65536-byte ring, 2**63 a pts of "unknown", -1 dropped
    bytes 2**64 - 1), and the call would go on with another value than the caller's."""
    with framering.Producer(ring_name, capacity=1 << 16) as prod:
        refusals = [
            ("width", lambda: prod.reserve_frame(2 ** 32 + 8, 8, "gray8", timeout=0)),
            ("height", lambda: prod.reserve_frame(8, -1, "gray8", timeout=0)),
            ("capacity", lambda: framering.Producer(ring_name + "-p", capacity=2 ** 64 + 65536)),
            ("capacity", lambda: framering.Producer(ring_name + "-p", capacity=-1)),
            ("mode", lambda: framering.Producer(ring_name + "-p", capacity=1 << 16, mode=2 ** 32 + 0o600)),
            ("max_consumers", lambda: framering.Producer(ring_name + "-p", capacity=1 << 16,
                                                         max_consumers=2 ** 32 + 1)),
            ("capacity", lambda: prod.replace(2 ** 64 + 65536)),
            ("slots", lambda: framering.capacity_for(2 ** 32 + 2, 64, 64, "gray8")),
            ("width", lambda: framering.capacity_for(2, 2 ** 32 + 64, 64, "gray8")),
            ("nbytes", lambda: prod.note_drop(-1)),
            ("nbytes", lambda: prod.note_drop(2 ** 64)),
            ("n", lambda: prod.wait_consumers(2 ** 32, timeout=0)),
            ("code", lambda: prod.mark_eos_error("x", -(2 ** 31) - 1)),
            ("wait", lambda: prod.set_hot_lap(0, 1e10)),
            ("nbytes", lambda: prod.set_hot_lap(2 ** 64)),
        ]
        for what, call in refusals:
            with pytest.raises(ValueError) as e:
                call()
            assert isinstance(e.value, framering.InvalidArgument), what
            assert e.value.code == -errno.EINVAL and what in str(e.value), (what, str(e.value))
        with prod.reserve_frame(8, 8, "gray8", timeout=0) as out:
            for field, bad in (("pts", 2 ** 63), ("pts", framering.ring.PTS_UNKNOWN),
                               ("capture_ns", -1), ("capture_ns", 2 ** 64), ("flags", 2 ** 32 + 1)):
                before = getattr(out, field)
                with pytest.raises(framering.InvalidArgument) as e:
                    setattr(out, field, bad)
                assert field in str(e.value), field
                assert getattr(out, field) == before, field
            out.pts = 2 ** 63 - 1
            assert out.pts == 2 ** 63 - 1
        st = prod.stats
        assert st.capacity == 1 << 16 and st.records_dropped == 0 and st.records_written == 1
        assert not prod.closed and prod.max_record == 1 << 15
    assert not (SHM / (ring_name + "-p")).exists()


def test_commit_after_the_producer_closed_is_ring_closed(ring_name):
    """commit() of a frame whose producer was closed meanwhile raises RingClosed, as its docstring
    says (close() aborted the reservation), not FrameReleased; the header fields stay readable;
    a second commit() or an abort() changes nothing."""
    prod = framering.Producer(ring_name, capacity=1 << 16)
    out = prod.reserve_frame(8, 8, "gray8")
    out.pts = 7
    prod.close()
    with pytest.raises(framering.RingClosed):
        out.commit()
    with pytest.raises(framering.RingClosed):
        out.array
    out.abort()
    assert out.pts == 7 and out.width == 8


def test_timeout_and_no_wait_are_timeout_errors(ring_name):
    with framering.Producer(ring_name, capacity=1 << 16), framering.Consumer(ring_name, timeout=1) as cons:
        for call, code in ((lambda: cons.next_frame(timeout=0.05), errno.ETIMEDOUT),
                           (lambda: cons.latest(timeout=0), errno.EAGAIN)):
            try:
                call()
            except TimeoutError as e:
                assert isinstance(e, framering.Timeout) and isinstance(e, framering.FrameringError)
                assert e.code == -code and e.errno == code
                waited = 0.05 if code == errno.ETIMEDOUT else 0
                assert str(e) == e.message == f"ring '{ring_name}': no frame within {waited:g} s"
            else:
                pytest.fail("no Timeout")


def test_infinite_timeouts_are_no_limit_and_no_wait(ring_name):
    """timeout=math.inf waits without a limit, as None does, and -math.inf does not wait, as 0
    does: in every call that waits (not an OverflowError from turning it into nanoseconds)."""
    import math
    with framering.Producer(ring_name, capacity=1 << 16) as prod:
        with framering.Consumer(ring_name, timeout=math.inf) as cons:
            prod.wait_consumers(1, timeout=math.inf)
            with prod.reserve_frame(8, 8, "gray8", timeout=math.inf):
                pass
            assert cons.next_frame(timeout=math.inf).seq == 0
            with pytest.raises(framering.Timeout):
                cons.next_frame(timeout=-math.inf)
            with pytest.raises(framering.Timeout):
                prod.wait_consumers(2, timeout=-math.inf)


ALL_ERRORS = [getattr(framering, n) for n in framering.__all__
              if isinstance(getattr(framering, n), type) and issubclass(getattr(framering, n), Exception)]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_exception_keeps_code_and_message_and_pickles(cls):
    import pickle
    e = cls(-errno.EINVAL, "create ring 'x': invalid argument")
    assert isinstance(e, framering.FrameringError)
    assert str(e) == e.message == "create ring 'x': invalid argument" and e.code == -errno.EINVAL
    assert e.args == (e.message,)
    e.note = "kept"
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.code == e.code and str(back) == str(e) and back.note == "kept"
    assert back.message == e.message and back.args == e.args
    # Only the classes a builtin names are that builtin.
    assert issubclass(cls, TimeoutError) == (cls is framering.Timeout)
    assert issubclass(cls, OSError) == (cls is framering.Timeout)
    assert issubclass(cls, ValueError) == (cls is framering.InvalidArgument)


def test_errno_mapping():
    from framering.errors import error_class
    expect = {
        errno.EINVAL: framering.InvalidArgument, errno.ENAMETOOLONG: framering.InvalidArgument,
        errno.EMSGSIZE: framering.InvalidArgument, errno.ETIMEDOUT: framering.Timeout,
        errno.EAGAIN: framering.Timeout, errno.ENOENT: framering.RingNotFound, errno.EBUSY: framering.RingBusy,
        errno.EEXIST: framering.ForeignRing, errno.EPROTO: framering.ForeignRing,
        errno.EBADMSG: framering.ForeignRing, errno.EFAULT: framering.RingShrunk,
        errno.ENOMSG: framering.InvalidFrame, errno.ENOTCONN: framering.ConsumerDetached,
        errno.ECANCELED: framering.RingClosed, errno.ESHUTDOWN: framering.RingClosed,
        errno.EOWNERDEAD: framering.PeerDied, errno.ENODATA: framering.EndOfStream,
        errno.ENOBUFS: framering.RingFull, errno.ENOSPC: framering.FrameringError,
        errno.EREMOTEIO: framering.ProducerFailed,
    }
    for code, cls in expect.items():
        assert error_class(-code) is cls, errno.errorcode[code]
    assert issubclass(framering.RingShrunk, framering.ForeignRing)


def test_producer_failure_ends_the_stream_with_its_reason(ring_name):
    """A producer that fails marks an error end: consumers read every frame before
    it, then iteration raises ProducerFailed (never a clean stop) with the reason."""
    import pickle
    with framering.Producer(ring_name, slots=4, width=8, height=4) as prod:
        with framering.Consumer(ring_name, timeout=0) as every, \
                framering.Consumer(ring_name, timeout=0, mode="latest") as live:
            prod.write_frame(np.full((4, 8, 3), 7, np.uint8))
            prod.mark_eos_error("camera unplugged", -errno.ENODEV)
            with pytest.raises(framering.FrameringError) as again:
                prod.mark_eos_error("second")
            assert again.value.code == -errno.EALREADY
            for cons in (every, live):
                seen = []
                with pytest.raises(framering.ProducerFailed) as ei:
                    for frame in cons:
                        seen.append(int(frame.array[0, 0, 0]))
                assert seen == [7]
                e = ei.value
                assert e.code == -errno.EREMOTEIO and e.error == -errno.ENODEV
                assert e.reason == "camera unplugged"
                assert "camera unplugged" in str(e) and ring_name in str(e)
                back = pickle.loads(pickle.dumps(e))
                assert (back.reason, back.error, str(back)) == (e.reason, e.error, str(e))
            assert framering.inspect(ring_name).eos_error == -errno.ENODEV


def test_consumers_follow_a_replaced_ring(ring_name):
    """10.5: a producer whose frames outgrow its ring replaces it under the same name; every and
    latest consumers read the old ring to its end and go on in the new one by themselves, views of
    old frames stay readable, frame numbers go on."""
    with framering.Producer(ring_name, slots=2, width=8, height=4) as prod:
        with framering.Consumer(ring_name, timeout=0) as every, \
                framering.Consumer(ring_name, timeout=0, mode="latest") as live:
            prod.write_frame(np.full((4, 8, 3), 1, np.uint8))
            old_view = every.next_frame(timeout=1).array
            with pytest.raises(framering.InvalidArgument):
                prod.write_frame(np.zeros((400, 800, 3), np.uint8))  # does not fit
            prod.replace(slots=2, width=800, height=400)
            prod.write_frame(np.full((400, 800, 3), 2, np.uint8))
            prod.mark_eos()
            got = [(f.seq, f.width, int(f.array[0, 0, 0])) for f in every]
            assert got == [(1, 800, 2)] and every.replacements == 1
            assert [(f.seq, f.width) for f in live] == [(0, 8), (1, 800)] and live.replacements == 1
            assert int(old_view[0, 0, 0]) == 1  # the old ring's view is still mapped
            assert framering.inspect(ring_name).capacity >= 2 * 800 * 400 * 3


def test_use_after_release_and_close_never_crash(ring_name):
    prod = framering.Producer(ring_name, slots=4, width=64, height=48)
    cons = framering.Consumer(ring_name, timeout=1)
    prod.write_frame(np.full((48, 64, 3), 77, np.uint8))
    f = cons.next_frame(timeout=1)
    view = f.array
    f.release()
    with pytest.raises(framering.FrameReleased, match="copy"):
        f.array
    with pytest.raises(framering.FrameReleased):
        f.planes
    with pytest.raises(framering.FrameReleased):
        f.address  # the record is no longer this frame's (not an AttributeError from inside)
    assert f.seq == 0 and f.width == 64  # header fields are a private copy
    assert int(view.max()) == 77  # stale but readable

    # Close the consumer with a live view: no crash, the data is still there.
    prod.write_frame(np.full((48, 64, 3), 78, np.uint8))
    g = cons.next_frame(timeout=1)
    live = g.array
    cons.close()
    assert g.released
    with pytest.raises(framering.RingClosed):
        cons.next_frame(timeout=0)
    assert int(live.mean()) == 78
    # close() detached at once: the slot is free for the next consumer while the view lives ...
    st = prod.stats
    assert st.consumer_pid == 0 and not st.consumer_alive
    with framering.Consumer(ring_name, timeout=1) as second:
        assert second.peer_alive
    assert int(live.mean()) == 78
    # ... and even the producer going away leaves the mapping readable.
    prod.close()
    assert not (SHM / ring_name).exists(), "Producer.close() must remove the ring"
    assert int(live.mean()) == 78 and int(view.max()) == 77
    del live, view, g, f
    import gc
    gc.collect()
    # The last view is gone: fr_ring_close ran; a new producer/consumer pair works.
    with framering.Producer(ring_name, capacity=1 << 16), framering.Consumer(ring_name, timeout=1):
        pass


def test_segment_shrunk_under_views(ring_name):
    """A peer that shrinks the segment (ftruncate) would make the next touch of the mapping raise
    SIGBUS and kill the interpreter: instead views read zeros and the calls raise ForeignRing (-EFAULT)."""
    with framering.Producer(ring_name, slots=4, width=64, height=48) as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        prod.write_frame(np.full((48, 64, 3), 77, np.uint8))
        prod.write_frame(np.full((48, 64, 3), 78, np.uint8))
        f = cons.next_frame(timeout=1)
        view = f.array
        assert int(view.max()) == 77
        os.truncate(SHM / ring_name, 0)
        assert int(view.max()) == 0
        with pytest.raises(framering.ForeignRing, match="shrank") as e:
            cons.next_frame(timeout=None)  # would otherwise wait forever on zero pages
        assert e.value.code == -errno.EFAULT and isinstance(e.value, framering.RingShrunk)
        with pytest.raises(framering.ForeignRing, match="shrank"):
            with prod.reserve_frame(64, 48) as out:
                out.array[:] = 1


def test_release_after_consumer_handle_gone(ring_name):
    with framering.Producer(ring_name, capacity=1 << 16) as prod:
        prod.write_frame(np.zeros((8, 8, 3), np.uint8))
        cons = framering.Consumer(ring_name, timeout=1)
        f = cons.next_frame(timeout=1)
        del cons  # the Consumer object dies first
        import gc
        gc.collect()
        f.release()  # must be harmless
        f.release()


def _read_until_peer_died(cons, killed_at):
    """Drain frames; return (frames, seconds from kill to PeerDied). Timeout is a failure."""
    n = 0
    while True:
        try:
            with cons.next_frame(timeout=10):
                n += 1
        except framering.PeerDied as e:
            assert e.code == -errno.EOWNERDEAD
            return n, time.monotonic() - killed_at


@pytest.mark.parametrize("producer", ["capture", "python"])
def test_producer_killed_mid_stream(ring_name, procs, producer):
    if producer == "capture":
        exe = program("FRAMERING_CAPTURE")
        p = procs([exe, "-r", ring_name, "-f", "lavfi", "-s", "source", "--quiet",
                   "testsrc2=size=160x120:rate=100"])
    else:
        p = procs([sys.executable, "-c", PY_PRODUCER, ring_name], env=python_env())
    try:
        with framering.Consumer(ring_name, timeout=10) as cons:
            for _ in range(5):
                with cons.next_frame(timeout=10) as f:
                    assert f.width > 0
            os.kill(p.pid, signal.SIGKILL)
            killed = time.monotonic()
            p.wait(timeout=10)
            n, delay = _read_until_peer_died(cons, killed)
            # The issue asks for PeerDied within 2 s; the figure is printed, not asserted
            # (timing on a shared machine), the 10 s frame timeout above bounds it.
            print(f"PeerDied {delay * 1e3:.0f} ms after SIGKILL ({n} frames drained)")
            assert not cons.peer_alive
    finally:
        remove_segment(ring_name)  # a killed producer cannot remove its segment


def test_consumer_killed_while_producer_waits(ring_name, procs):
    code = textwrap.dedent("""
        import sys, time, framering
        c = framering.Consumer(sys.argv[1], timeout=10)
        f = c.next_frame(timeout=10)
        print("holding", flush=True)
        time.sleep(60)
    """)
    with framering.Producer(ring_name, slots=2, width=64, height=48) as prod:
        p = procs([sys.executable, "-c", code, ring_name], env=python_env())
        prod.write_frame(np.zeros((48, 64, 3), np.uint8))
        assert p.stdout.readline().strip() == b"holding"
        # Fill the ring until the producer would wait.
        with pytest.raises(framering.Timeout):
            for _ in range(100):
                prod.write_frame(np.zeros((48, 64, 3), np.uint8), timeout=0.2)
        os.kill(p.pid, signal.SIGKILL)
        with pytest.raises(framering.PeerDied):
            prod.write_frame(np.zeros((48, 64, 3), np.uint8), timeout=10)


def test_ctrl_c_during_long_wait(ring_name, procs):
    code = textwrap.dedent("""
        import sys, framering
        print("opening", flush=True)
        c = framering.Consumer(sys.argv[1], timeout=None)  # waits for a ring that never comes
        print("never", flush=True)
    """)
    code2 = textwrap.dedent("""
        import sys, framering
        p = framering.Producer(sys.argv[1], capacity=1 << 16)
        c = framering.Consumer(sys.argv[1], timeout=1)
        try:
            print("waiting", flush=True)
            c.next_frame(timeout=None)  # nothing ever comes
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            c.close(); p.close()
            sys.exit(0)
    """)
    p = procs([sys.executable, "-c", code2, ring_name], env=python_env())
    assert p.stdout.readline().strip() == b"waiting"
    time.sleep(0.3)  # let it enter the wait
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err.decode()
    assert out.strip() == b"interrupted"
    assert not (SHM / ring_name).exists()

    # Ctrl-C while waiting for a ring to appear (fr_ring_open_wait) works too.
    q = procs([sys.executable, "-c", code, ring_name + "-o"], env=python_env())
    assert q.stdout.readline().strip() == b"opening"
    time.sleep(0.3)
    q.send_signal(signal.SIGINT)
    out, err = q.communicate(timeout=10)
    assert b"KeyboardInterrupt" in err and b"never" not in out


def test_a_timeout_also_bounds_following_a_replaced_ring(ring_name, monkeypatch):
    """next_frame(timeout=T) on a ring whose producer replaced it and went away (the new ring
    gone with it) is a Timeout after T, as any wait for a frame: not a wait of REPLACE_WAIT
    seconds for the new ring, ended by RingNotFound."""
    monkeypatch.setattr(framering.ring, "REPLACE_WAIT", 10.0)
    prod = framering.Producer(ring_name, capacity=1 << 16)
    with framering.Consumer(ring_name, timeout=1) as cons:
        prod.replace(1 << 16)
        prod.close()  # the name is gone with it
        with pytest.raises(framering.Timeout):
            cons.next_frame(timeout=0.2)
        with pytest.raises(framering.Timeout):
            cons.next_frame(timeout=0)  # no wait at all: the new ring is not there now
        assert cons.replacements == 0
