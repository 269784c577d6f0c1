#!/usr/bin/env python3
"""bench_python - frames into Python: framering ring vs an ffmpeg pipe vs cv2.VideoCapture, plus the per-frame hand-off cost.

Every method delivers the same 600 BGR 1920x1080 frames (the sample looped)
to the same per-frame work, arr[::64, ::64].mean():
  (a) framering-capture --loop --frames 600 -> framering.Consumer (zero-copy views)
  (b) ffmpeg -stream_loop ... -f rawvideo -pix_fmt bgr24 pipe: -> readinto a preallocated numpy buffer
  (c) cv2.VideoCapture (reopened at the end of the file), read into a preallocated buffer
  (d) ffmpeg -stream_loop ... -pix_fmt bgr24 -f null -   (decode + convert, no consumer: the ceiling)
Runs are interleaved (a b c d a b c d ...); medians and ratios are printed.
Then the hand-off cost: next_frame + .array + release in a tight loop, with
an in-process producer that filled the ring beforehand (no waiting timed).

Environment (set by the bench-python target): FRAMERING_CAPTURE, FRAMERING_LIB,
FRAMERING_SAMPLE.  Example:
  cmake --build build --target bench-python
  FRAMERING_CAPTURE=build/app/capture/framering-capture python3 tests/bench/python/bench_python.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# bench_common before framering: it puts this checkout's viewer_py/ on sys.path.
from bench_common import cv2_frames, default_sample, ffprobe_frames, unique_ring_name

import framering

W, H = 1920, 1080


def work(arr: np.ndarray) -> float:
    """The per-frame work every method does: touch a sparse grid of pixels."""
    return float(arr[::64, ::64].mean())


def run_ring(capture: str, video: str, frames: int, hot_lap: str = "auto") -> tuple:
    name = unique_ring_name("bench-py")
    t0 = time.perf_counter()
    p = subprocess.Popen([capture, "-r", name, "--quiet", "--loop", "--frames", str(frames),
                          "--on-full", "block", "--hot-lap", hot_lap, video])
    n = 0
    acc = 0.0
    try:
        with framering.Consumer(name, timeout=10) as cons:
            for f in cons:
                acc += work(f.array)
                n += 1
    finally:
        rc = p.wait(timeout=60)
    dt = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"framering-capture exited {rc}")
    return n, dt, acc


def ffmpeg_input(video: str, frames: int, per_file: int) -> list:
    loops = max(0, -(-frames // per_file) - 1)
    return ["-stream_loop", str(loops), "-i", video, "-frames:v", str(frames)]


def run_pipe(video: str, frames: int, per_file: int) -> tuple:
    t0 = time.perf_counter()
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", *ffmpeg_input(video, frames, per_file),
                          "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:"], stdout=subprocess.PIPE, bufsize=0)
    buf = np.empty((H, W, 3), np.uint8)
    mv = memoryview(buf).cast("B")
    size = buf.nbytes
    n = 0
    acc = 0.0
    while True:
        got = 0
        while got < size:
            k = p.stdout.readinto(mv[got:])
            if not k:
                break
            got += k
        if got < size:
            break
        acc += work(buf)
        n += 1
    p.wait()
    return n, time.perf_counter() - t0, acc


def run_cv2(video: str, frames: int) -> tuple:
    t0 = time.perf_counter()
    buf = np.empty((H, W, 3), np.uint8)
    n = 0
    acc = 0.0
    for img in cv2_frames(video, frames, buf):
        acc += work(img)
        n += 1
    return n, time.perf_counter() - t0, acc


def run_null(video: str, frames: int, per_file: int) -> tuple:
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *ffmpeg_input(video, frames, per_file),
                    "-pix_fmt", "bgr24", "-f", "null", "-"], check=True)
    return frames, time.perf_counter() - t0, 0.0


def handoff_cost(iterations: int, width: int, height: int) -> dict:
    """Seconds per frame for next_frame()+release() and next_frame()+.array+release(),
    timed only while the ring is full (the in-process producer refills between batches)."""
    name = unique_ring_name("bench-py-h")
    slots = 8
    out = {}
    with framering.Producer(name, slots=slots, width=width, height=height) as prod, \
            framering.Consumer(name, timeout=1) as cons:
        for label, with_view in (("peek+release", False), ("peek+view+release", True)):
            timed = 0.0
            done = 0
            while done < iterations:
                batch = 0
                while batch < slots - 1:
                    try:
                        with prod.reserve_frame(width, height, timeout=0):
                            pass  # no pixels written: only the hand-off is measured
                    except framering.Timeout:
                        break
                    batch += 1
                t0 = time.perf_counter()
                if with_view:
                    for _ in range(batch):
                        f = cons.next_frame(0)
                        f.array
                        f.release()
                else:
                    for _ in range(batch):
                        cons.next_frame(0).release()
                timed += time.perf_counter() - t0
                done += batch
            out[label] = timed / done
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each method (default 5)")
    ap.add_argument("--frames", type=int, default=600, help="frames per run (default 600)")
    ap.add_argument("--input", default=default_sample(),
                    help="1080p video (default: the sample)")
    ap.add_argument("--capture", default=os.environ.get("FRAMERING_CAPTURE"), help="framering-capture binary")
    ap.add_argument("--handoff-iterations", type=int, default=20000)
    ap.add_argument("--skip-cv2", action="store_true", help="leave out (c)")
    args = ap.parse_args()
    if not args.capture or not os.access(args.capture, os.X_OK):
        sys.stderr.write("bench_python: framering-capture not found: pass --capture or set FRAMERING_CAPTURE\n")
        return 1
    if not os.path.exists(args.input):
        sys.stderr.write(f"bench_python: input {args.input} not found\n")
        return 1
    per_file = ffprobe_frames(args.input)
    print(f"input {args.input}: {per_file} frames, looped to {args.frames}; {args.runs} runs each; "
          f"library {framering.library_path()}", flush=True)

    methods = {
        "a": ("framering-capture -> Consumer (zero-copy)", lambda: run_ring(args.capture, args.input, args.frames)),
        "a0": ("(a) with --hot-lap off (framering 0.2)",
               lambda: run_ring(args.capture, args.input, args.frames, "off")),
        "b": ("ffmpeg rawvideo pipe -> numpy readinto", lambda: run_pipe(args.input, args.frames, per_file)),
        "c": ("cv2.VideoCapture", lambda: run_cv2(args.input, args.frames)),
        "d": ("ffmpeg decode+convert -f null (no consumer)", lambda: run_null(args.input, args.frames, per_file)),
    }
    if args.skip_cv2:
        del methods["c"]
    fps = {k: [] for k in methods}
    sums = {k: None for k in methods}
    for r in range(args.runs):
        for k, (label, fn) in methods.items():
            n, dt, acc = fn()
            if n != args.frames:
                sys.stderr.write(f"bench_python: ({k}) delivered {n} frames, not {args.frames}\n")
                return 1
            fps[k].append(n / dt)
            if k != "d":
                # The same frames went through the same work: the sums must agree.
                sums[k] = acc
        print(f"run {r + 1}: " + "  ".join(f"({k}) {fps[k][-1]:7.1f} fps" for k in methods), flush=True)

    med = {k: statistics.median(v) for k, v in fps.items()}
    print("\nmedian fps over", args.runs, "runs (600 frames 1920x1080 bgr24, work = arr[::64, ::64].mean()):")
    for k, (label, _) in methods.items():
        print(f"  ({k}) {label:46s} {med[k]:8.1f} fps  (min {min(fps[k]):.1f}, max {max(fps[k]):.1f})")
    # Ratios within each round (the runs of one round are back to back, so a
    # machine-wide slowdown hits both sides), then their median.
    def ratio(x: str, y: str) -> float:
        return statistics.median(fx / fy for fx, fy in zip(fps[x], fps[y]))

    ab, ad = ratio("a", "b"), ratio("a", "d")
    print(f"  ratio (a)/(b) = {ab:.2f}  (median of per-round ratios; target >= 1.30: {'met' if ab >= 1.3 else 'NOT met'})")
    print(f"  ratio (a)/(d) = {ad:.2f}  (median of per-round ratios; target >= 0.95: {'met' if ad >= 0.95 else 'NOT met'})")
    if "c" in med:
        print(f"  ratio (a)/(c) = {ratio('a', 'c'):.2f}")
    print(f"  ratio (a)/(a0) = {ratio('a', 'a0'):.2f}  (the hot lap against the whole ring in turn)")
    print(f"  (ratios of the medians: (a)/(b) {med['a'] / med['b']:.2f}, (a)/(d) {med['a'] / med['d']:.2f})")
    # Same frames, same work: (a) and (b) must compute the same sum (cv2 may convert differently).
    print(f"  work sums: (a) {sums['a']:.3f}  (b) {sums['b']:.3f}"
          + (f"  (c) {sums['c']:.3f}" if "c" in sums else "")
          + f"  -> (a) == (b): {abs(sums['a'] - sums['b']) < 1e-6 * max(abs(sums['b']), 1)}"
          + f", (a0) == (a): {sums['a0'] == sums['a']}")

    print(f"\nhand-off cost per frame in Python ({args.handoff_iterations} frames 1920x1080, ring kept full):")
    costs = [handoff_cost(args.handoff_iterations, W, H) for _ in range(max(3, min(args.runs, 5)))]
    for label in costs[0]:
        us = statistics.median(c[label] for c in costs) * 1e6
        print(f"  {label:20s} {us:6.2f} us  (median of {len(costs)})"
              + ("  (target < 20 us: met)" if label == "peek+view+release" and us < 20 else
                 "  (target < 20 us: NOT met)" if label == "peek+view+release" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
