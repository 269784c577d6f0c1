"""test_asyncio - awaiting frames never blocks the event loop, and cancelled waits lose and hold nothing.

No assertion is on timing: the "keeps ticking" test makes the frame's arrival
depend on the ticker having ticked, so a wait that blocked the loop could
only end in a Timeout; the cancellation tests check which frame comes next
and what the ring counted, after every cancelled wait.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Optional

import numpy as np
import pytest

import framering
from framering import ring as ring_mod

W = H = 16


def image(i: int) -> np.ndarray:
    return np.full((H, W, 3), i % 256, np.uint8)


async def worker_idle(cons: framering.Consumer) -> None:
    """Wait until the consumer's worker thread has run every job queued so far (jobs run in order)."""
    await asyncio.wrap_future(cons._async_worker().submit(lambda: None))


def held(cons: framering.Consumer) -> bool:
    """Whether the consumer holds a peeked record now: fr_ring_unpeek says -EINVAL when none is
    (and gives back one that is, so a failing check does not also break the next read)."""
    handle = cons._handle
    with handle.calls:
        rc = framering._lib.lib().fr_ring_unpeek(handle.ptr)
    assert rc in (0, -22), rc
    return rc == 0 or cons._current is not None


def test_event_loop_keeps_ticking_while_a_wait_lasts(ring_name, monkeypatch):
    # One foreign call for the whole wait (no Python-level slicing): if the wait ran on the
    # loop's thread, the ticker could not tick, the frame would never be written, and the
    # wait would end in Timeout after 30 s.
    monkeypatch.setattr(ring_mod, "_SLICE_NS", 60 * 10**9)
    ticks = {"n": 0, "at_write": None, "waiter_done_at_write": None}

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks["n"] += 1
            await asyncio.sleep(0.005)

    async def main() -> framering.Frame:
        with framering.Producer(ring_name, slots=2, width=W, height=H) as prod, \
                framering.Consumer(ring_name, timeout=1) as cons:
            stop = asyncio.Event()
            tick_task = asyncio.create_task(ticker(stop))
            wait = asyncio.create_task(cons.anext_frame(timeout=30))
            while ticks["n"] < 40:  # the consumer is waiting all along
                await asyncio.sleep(0.005)
            ticks["at_write"] = ticks["n"]
            ticks["waiter_done_at_write"] = wait.done()
            prod.write_frame(image(5))
            frame = await asyncio.wait_for(wait, 60)
            stop.set()
            await tick_task
            assert int(frame.array[0, 0, 0]) == 5 and frame.seq == 0
            return frame

    asyncio.run(main())
    assert ticks["at_write"] >= 40
    assert ticks["waiter_done_at_write"] is False, "the wait ended before any frame was written"


def test_async_for_reads_every_frame_to_the_end(ring_name):
    async def main() -> list:
        with framering.Producer(ring_name, slots=8, width=W, height=H) as prod:
            async with framering.Consumer(ring_name, timeout=1) as cons:
                for i in range(6):
                    prod.write_frame(image(i))
                prod.mark_eos()
                return [(f.seq, int(f.array[0, 0, 0])) async for f in cons]

    assert asyncio.run(main()) == [(i, i) for i in range(6)]


@pytest.mark.parametrize("mode", ["every", "latest"])
def test_cancelled_waits_leave_nothing_held_and_lose_nothing(ring_name, mode):
    """Round r: frame r is written before or after some waits that are cancelled at random
    points (before the worker runs, while it waits, just as the frame comes, after it was
    delivered); then nothing is held, and the next read -- awaited or not -- is frame r."""
    rng = random.Random(1234)
    rounds = 150
    outcomes = {"cancelled": 0, "finished_first": 0}

    async def cancelled_wait(cons: framering.Consumer) -> Optional[framering.Frame]:
        """A wait cancelled at a random point: None, or its frame if it had finished before."""
        read = cons.anext_frame if mode == "every" else cons.alatest
        task = asyncio.create_task(read(timeout=30))
        how = rng.randrange(4)
        if how >= 1:
            await asyncio.sleep(0)  # the job is queued; the worker may be peeking
        if how >= 2:
            for _ in range(rng.randrange(1, 20)):
                await asyncio.sleep(0)
        if how == 3:
            await asyncio.sleep(rng.random() * 0.003)
        done_before = task.done()
        task.cancel()
        try:
            frame = await task
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
            return None
        assert done_before, "a task cancelled while it waited returned a frame"
        outcomes["finished_first"] += 1
        return frame

    async def main() -> None:
        with framering.Producer(ring_name, slots=8, width=W, height=H) as prod, \
                framering.Consumer(ring_name, timeout=1, mode=mode) as cons:
            for r in range(rounds):
                for _ in range(rng.randrange(4)):
                    assert await cancelled_wait(cons) is None  # nothing written yet
                prod.write_frame(image(r))
                frame = None
                for _ in range(rng.randrange(4)):
                    got = await cancelled_wait(cons)
                    if got is not None:  # frame r, read before the cancel came (asking again would release it)
                        frame = got
                        break
                await worker_idle(cons)
                if frame is None:
                    assert not held(cons), f"round {r}: a cancelled wait left a record held"
                    if r % 3 == 2:
                        frame = cons.next_frame(timeout=5) if mode == "every" else cons.latest(timeout=5)
                    else:
                        frame = await asyncio.wait_for(cons.anext_frame(timeout=5) if mode == "every"
                                                       else cons.alatest(timeout=5), 30)
                assert frame.seq == r, f"round {r}: the next {mode} frame is {frame.seq}"
                assert int(frame.array[0, 0, 0]) == r % 256
                assert frame.skipped == 0
                frame.release()
                assert not held(cons)
            info = cons.consumers()[0]
            assert info.records_read == rounds, "a frame was read (released) twice or not at all"
            assert info.records_skipped == 0

    asyncio.run(main())
    assert outcomes["cancelled"] > 100, outcomes


@pytest.mark.parametrize("mode", ["every", "latest"])
def test_timeouts_racing_a_live_producer(ring_name, mode):
    """A producer thread writes while the loop reads with asyncio.wait_for timeouts so short that
    most waits are cancelled, some of them just as a frame arrives: "every" still gets each frame
    once and in order, "latest" only ever newer frames, ending with the last one."""
    n = 400
    rng = random.Random(99)

    def produce(prod: framering.Producer) -> None:
        r = random.Random(7)
        for i in range(n):
            prod.write_frame(image(i), timeout=30)
            if r.random() < 0.3:
                threading.Event().wait(r.random() * 0.002)
        prod.mark_eos()

    async def main() -> list:
        got = []
        with framering.Producer(ring_name, slots=4, width=W, height=H) as prod, \
                framering.Consumer(ring_name, timeout=1, mode=mode) as cons:
            writer = threading.Thread(target=produce, args=(prod,))
            writer.start()
            try:
                timeouts = 0
                while True:
                    try:
                        # From limits that cut most waits to limits most waits finish within.
                        limit = rng.random() * rng.choice((0.0002, 0.001, 0.003))
                        frame = await asyncio.wait_for(cons.anext_frame(timeout=30), limit)
                    except asyncio.TimeoutError:
                        timeouts += 1
                        continue
                    except framering.EndOfStream:
                        break
                    got.append((frame.seq, int(frame.array[0, 0, 0])))
            finally:
                writer.join(timeout=60)
            print(f"{mode}: {timeouts} waits cut short, {len(got)} frames")
            assert timeouts > 20, f"only {timeouts} waits were cut short: the test did not test cancellation"
            assert cons.consumers()[0].records_read == len(got)
        return got

    got = asyncio.run(main())
    seqs = [s for s, _ in got]
    assert all(v == s % 256 for s, v in got)
    if mode == "every":
        assert seqs == list(range(n))
    else:
        assert seqs == sorted(set(seqs)) and seqs[-1] == n - 1


def test_close_wakes_an_awaiting_reader(ring_name):
    async def main() -> None:
        with framering.Producer(ring_name, slots=2, width=W, height=H):
            cons = framering.Consumer(ring_name, timeout=1)
            wait = asyncio.create_task(cons.anext_frame())
            await asyncio.sleep(0.05)
            assert not wait.done()
            cons.close()
            with pytest.raises(framering.RingClosed):
                await asyncio.wait_for(wait, 30)
            with pytest.raises(framering.RingClosed):
                await cons.anext_frame()

    asyncio.run(main())


def test_cancel_wakes_the_worker_at_once(ring_name, monkeypatch):
    """A cancelled wait does not sit out its wait in the worker thread: fr_ring_interrupt() wakes
    it, so the worker is free long before the 60 s its one C call would otherwise last."""
    monkeypatch.setattr(ring_mod, "_SLICE_NS", 60 * 10**9)

    async def main() -> None:
        with framering.Producer(ring_name, slots=2, width=W, height=H) as prod, \
                framering.Consumer(ring_name, timeout=1) as cons:
            for _ in range(3):
                wait = asyncio.create_task(cons.anext_frame())
                await asyncio.sleep(0.05)  # in the C call by now (if not, the cancel finds it queued)
                wait.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await wait
                await asyncio.wait_for(worker_idle(cons), 20)
                assert not held(cons)
            prod.write_frame(image(9))
            frame = await asyncio.wait_for(cons.anext_frame(), 20)
            assert frame.seq == 0 and int(frame.array[0, 0, 0]) == 9

    asyncio.run(main())


def test_cancel_while_following_a_replaced_ring_is_prompt(ring_name):
    """A wait cancelled while the worker waits for the ring that replaced its own (the producer
    replaced it and went away: none comes) lets the worker go at once, not after the attach
    wait of REPLACE_WAIT (5 s) that the cancel was not looked for in; a later read follows the
    ring that does come. The bound (2.5 s) only tells "at once" from "after the wait"."""
    assert ring_mod.REPLACE_WAIT is not None and ring_mod.REPLACE_WAIT >= 5

    async def main() -> None:
        prod = framering.Producer(ring_name, slots=2, width=W, height=H)
        with framering.Consumer(ring_name, timeout=1) as cons:
            prod.replace(slots=2, width=W, height=H)
            prod.close()  # the name goes with it: the worker waits for a ring that is not there
            wait = asyncio.create_task(cons.anext_frame())
            await asyncio.sleep(0.3)  # in the attach wait by now (if not, the cancel finds it queued)
            wait.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait
            loop = asyncio.get_running_loop()
            cancelled_at = loop.time()
            await asyncio.wait_for(worker_idle(cons), 20)
            assert loop.time() - cancelled_at < 2.5, "the worker sat out the wait for the new ring"
            assert cons.replacements == 0
            with framering.Producer(ring_name, slots=2, width=W, height=H) as again:
                again.write_frame(image(7))
                frame = await asyncio.wait_for(cons.anext_frame(), 20)
                assert int(frame.array[0, 0, 0]) == 7 and cons.replacements == 1
                frame.release()

    asyncio.run(main())
