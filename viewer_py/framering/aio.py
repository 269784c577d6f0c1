"""aio - asyncio reading of a Consumer: ``await consumer.anext_frame()`` and ``async for frame in consumer``.

    async with framering.Consumer("cam0", timeout=5) as cons:   # (a plain ``with`` works too)
        async for frame in cons:                  # ends at end of stream
            detect(frame.array)                   # the same zero-copy view as in sync code

The design: a worker thread per Consumer does the blocking wait (the same
``fr_frame_peek`` in slices as ``next_frame()``, GIL released in C) and hands
the frame to the event loop through a future. The event loop never calls into
a wait: awaiting only queues a job for that thread.

Why a thread and not a pollable handle: the ring's waits are futex waits on
words in shared memory (ring_layout.h), which no file descriptor reports, and
the producer wakes a consumer only if it sleeps (no system call while the
consumer keeps up). An eventfd would need the producer to signal it per frame
(a system call the ring avoids, and a change of the C library's protocol), or
a thread that turns futex wake-ups into eventfd writes -- which is this design
with one more hop. One thread per Consumer (not the loop's default executor):
a Consumer's calls are serialized anyway, and a consumer waiting forever must
not take a slot of a pool other code needs (the default pool has only a few).
The thread is a daemon: a wait that never ends never keeps the interpreter
from exiting.

Cancellation (``task.cancel()``, ``asyncio.wait_for`` running out) leaves no
record peeked and loses none. Each wait carries a ticket that is either
*delivered* (the worker peeked a frame and the caller still wanted it) or
*cancelled* (the caller gave up first), decided once under a lock:

* cancelled while waiting: the canceller wakes the wait at once
  (fr_ring_interrupt(), whose flag a later wait may take: then that wait just goes
  on) and the worker stops with nothing peeked; while it waits for the ring that
  replaced its own (an attach, with no handle to interrupt) it sees the cancel
  within one wait slice;
* cancelled just as the frame came: the worker finds the ticket cancelled and
  gives the record back unread (fr_ring_unpeek()) before anyone sees it;
* delivered, but the task was cancelled before it resumed with the frame:
  the frame is given back unread by the worker thread (and any read that comes
  first unpeeks it instead of releasing it).

So the next read, sync or async, returns the frame the cancelled one would
have: in "every" mode the next in order, in "latest" mode the newest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import TYPE_CHECKING, AsyncIterator, Callable, Optional

from .errors import EndOfStream, InvalidFrame
from .ring import _WaitCancelled, _WaitTicket

if TYPE_CHECKING:  # pragma: no cover
    from .ring import Consumer, Frame


class _Worker:
    """One daemon thread running jobs in order for one Consumer (its blocking waits)."""

    def __init__(self, name: str) -> None:
        self._jobs: "queue.SimpleQueue[Optional[tuple]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"framering-aio {name}", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], object]) -> concurrent.futures.Future:
        """Run FN in the thread after the jobs before it; its result or exception lands in the future."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        return fut

    def stop(self) -> None:
        """End the thread after the jobs queued so far."""
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled before it started: nothing was peeked
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001  (handed to the awaiting task)
                fut.set_exception(e)
            del job, fn, fut  # no reference to a frame or consumer between jobs


async def next_frame(consumer: "Consumer", latest: bool, timeout: Optional[float]) -> "Frame":
    """Await CONSUMER's next frame (its newest with LATEST) without blocking the event loop;
    cancellation-safe (see the module docstring). Raises what next_frame()/latest() raise."""
    ticket = _WaitTicket()
    fut = consumer._async_worker().submit(lambda: consumer._peek(latest, timeout, ticket))
    try:
        return await asyncio.wrap_future(fut)
    except asyncio.CancelledError:
        if ticket.cancel():
            consumer._interrupt_wait()  # wake the worker now; it keeps nothing
        else:
            # Delivered, but this task will never see it: give it back once the worker is done.
            fut.add_done_callback(lambda f: _give_back(consumer, f))
        raise
    except _WaitCancelled:  # pragma: no cover  (only a cancelled ticket raises it, and then we were cancelled)
        raise asyncio.CancelledError() from None


def _give_back(consumer: "Consumer", fut: concurrent.futures.Future) -> None:
    """Done callback of a delivered wait whose task was cancelled: unpeek its frame."""
    if not fut.cancelled() and fut.exception() is None:
        consumer._give_back(fut.result())


async def frames(consumer: "Consumer", latest: bool, timeout: Optional[float]) -> AsyncIterator["Frame"]:
    """Frames until end of stream, as Consumer.frames() but awaited (see Consumer.aframes)."""
    while True:
        try:
            frame = await next_frame(consumer, latest, timeout)
        except EndOfStream:
            return
        except InvalidFrame:
            continue
        yield frame
