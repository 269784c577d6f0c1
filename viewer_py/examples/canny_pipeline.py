#!/usr/bin/env python3
"""canny_pipeline - read ring A, run cv2.Canny into a GRAY8 frame of ring B in place, for framering-view to show.

    framering-capture -r cam --realtime &                  # C producer: decoded BGR frames
    python3 viewer_py/examples/canny_pipeline.py --in cam --out edges &
    framering-view -r edges                                # C viewer (SDL) of the edges

Neither hop copies a frame: the input is a read-only numpy view of ring A,
cvtColor writes the grey image to a private scratch buffer (reused), and
Canny writes its result straight into the reserved frame of ring B (dst= is
a view of ring B's shared memory). pts, time base, flags and capture time
are passed on, so the viewer's latency is end to end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Run from a source checkout without installing: the package is one folder up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import framering  # noqa: E402

PROG = "canny_pipeline"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description="ring A -> cv2.Canny -> ring B (GRAY8), zero-copy.")
    p.add_argument("--in", dest="src", default="framering", help="input ring (default: framering)")
    p.add_argument("--out", dest="dst", default="edges", help="output ring (default: edges)")
    p.add_argument("--low", type=float, default=50, help="Canny low threshold (default 50)")
    p.add_argument("--high", type=float, default=150, help="Canny high threshold (default 150)")
    p.add_argument("--slots", type=int, default=4, help="output ring size in frames (default 4)")
    p.add_argument("--on-full", choices=("block", "drop"), default="block",
                   help="when the viewer lags: wait (block, default) or drop the frame")
    p.add_argument("--latest", action="store_true", help="always process the newest input frame")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the input ring (default 5)")
    p.add_argument("--frames", type=int, help="stop after N frames")
    p.add_argument("--quiet", action="store_true", help="no summary")
    return p.parse_args()


def gray_of(frame, scratch: np.ndarray) -> np.ndarray:
    """The luma/grey image of FRAME: a view where the format has one, else cvtColor into SCRATCH."""
    fmt = frame.format
    if fmt == "gray8":
        return frame.array
    if fmt in ("i420", "nv12"):
        return frame.planes[0]  # the Y plane is the grey image
    code = cv2.COLOR_BGR2GRAY if fmt == "bgr24" else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(frame.array, code, dst=scratch)


def main() -> int:
    args = parse_args()
    prod = None
    n = dropped = 0
    status = 0
    t0 = time.monotonic()
    why = "end of stream"
    tty = sys.stderr.isatty() and not args.quiet
    try:
        with framering.Consumer(args.src, timeout=args.wait) as cons:
            scratch = None
            for frame in cons.frames(latest=args.latest):
                w, h = frame.width, frame.height
                if scratch is None or scratch.shape != (h, w):
                    scratch = np.empty((h, w), np.uint8)
                if prod is None:
                    prod = framering.Producer(args.dst, slots=args.slots, width=w, height=h,
                                              format="gray8", on_full=args.on_full)
                gray = gray_of(frame, scratch)
                try:
                    with prod.reserve_frame(w, h, "gray8") as out:
                        edges = out.array
                        cv2.Canny(gray, args.low, args.high, edges=edges)
                        out.pts = frame.pts
                        out.time_base = frame.time_base
                        out.capture_ns = frame.capture_ns
                        out.flags = frame.flags
                except framering.RingFull:
                    dropped += 1  # counted by the ring as well
                frame.release()
                n += 1
                if tty and n % 15 == 0:
                    dt = time.monotonic() - t0
                    sys.stderr.write(f"\r{PROG}: {n} frames  {n / max(dt, 1e-9):6.1f} fps  "
                                     f"latency {frame.latency * 1e3:6.1f} ms  dropped {dropped}  ")
                if args.frames is not None and n >= args.frames:
                    why = f"{n} frames"
                    break
    except KeyboardInterrupt:
        why = "interrupted"
    except (framering.RingNotFound, framering.RingBusy, framering.ForeignRing) as e:
        sys.stderr.write(("\n" if tty else "") + f"{PROG}: {e}\n")
        status = 2
        why = "stopped"
    except framering.PeerDied as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        status = 3
        why = "producer died"
    finally:
        if prod is not None:
            prod.mark_eos()
            prod.close()
    if not args.quiet:
        dt = time.monotonic() - t0
        if tty:
            sys.stderr.write("\n")
        sys.stderr.write(f"{PROG}: {why}: {n} frames {args.src} -> {args.dst} in {dt:.2f} s "
                         f"({n / max(dt, 1e-9):.1f} fps), dropped {dropped}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
