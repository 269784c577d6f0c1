#!/usr/bin/env python3
"""lk_track - Lucas-Kanade feature tracking on a video file or a framering ring: the same OpenCV loop either way.

Built like OpenCV's own samples/python/lk_track.py (goodFeaturesToTrack every few
frames, calcOpticalFlowPyrLK forward and back to keep only tracks that agree), to
show that a program written for cv2.VideoCapture reads a ring by changing the one
line that opens the source (open_source() below); the loop is untouched.

    python3 lk_track.py assets/sample.mp4                  # cv2.VideoCapture decodes the file
    build/app/capture/framering-capture -r cam0 assets/sample.mp4 &
    python3 lk_track.py --ring cam0                        # framering.VideoCapture reads the ring

--headless prints what was detected in each frame as one JSON line instead of showing
it (tests/python/test_videocapture.py compares the two runs frame by frame).
Keys: Esc or q quits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

try:
    import framering
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import framering

LK_PARAMS = dict(winSize=(15, 15), maxLevel=2,
                 criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03))
FEATURE_PARAMS = dict(maxCorners=500, qualityLevel=0.3, minDistance=7, blockSize=7)
TRACK_LEN = 10
DETECT_INTERVAL = 5


def open_source(args: argparse.Namespace):
    """The only line that differs between reading a file and reading a ring."""
    if args.ring:
        return framering.VideoCapture(args.ring, timeout=args.timeout)
    return cv2.VideoCapture(args.source)


class App:
    """One frame per step(): track the points found so far, find new ones every few frames."""

    def __init__(self, cap, headless: bool) -> None:
        self.cap = cap
        self.headless = headless
        self.tracks: list = []
        self.frame_idx = 0
        self.prev_gray = None

    def track(self, gray: np.ndarray, vis: np.ndarray) -> None:
        """Follow every track into GRAY; keep those whose backward flow comes home (within 1 px)."""
        p0 = np.float32([tr[-1] for tr in self.tracks]).reshape(-1, 1, 2)
        p1, _st, _err = cv2.calcOpticalFlowPyrLK(self.prev_gray, gray, p0, None, **LK_PARAMS)
        p0r, _st, _err = cv2.calcOpticalFlowPyrLK(gray, self.prev_gray, p1, None, **LK_PARAMS)
        good = abs(p0 - p0r).reshape(-1, 2).max(-1) < 1
        kept = []
        for tr, (x, y), ok in zip(self.tracks, p1.reshape(-1, 2), good):
            if not ok:
                continue
            tr.append((float(x), float(y)))
            del tr[:-TRACK_LEN]
            kept.append(tr)
            if vis is not None:
                cv2.circle(vis, (int(x), int(y)), 2, (0, 255, 0), -1)
        self.tracks = kept

    def detect(self, gray: np.ndarray) -> list:
        """New corners away from the tracked ones (goodFeaturesToTrack)."""
        mask = np.full_like(gray, 255)
        for x, y in [np.int32(tr[-1]) for tr in self.tracks]:
            cv2.circle(mask, (int(x), int(y)), 5, 0, -1)
        p = cv2.goodFeaturesToTrack(gray, mask=mask, **FEATURE_PARAMS)
        found = [] if p is None else [(float(x), float(y)) for x, y in np.float32(p).reshape(-1, 2)]
        self.tracks.extend([pt] for pt in found)
        return found

    def step(self) -> bool:
        """Read, track, detect, show (or print); False at the end of the video."""
        ok, frame = self.cap.read()
        if not ok:
            return False
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        vis = None if self.headless else frame.copy()  # drawn on: the frame itself stays as read
        if self.tracks:
            self.track(gray, vis)
        found = self.detect(gray) if self.frame_idx % DETECT_INTERVAL == 0 else []
        if self.headless:
            print(json.dumps({"frame": self.frame_idx, "found": found,
                              "tracks": [tr[-1] for tr in self.tracks]}), flush=True)
        else:
            cv2.polylines(vis, [np.int32(tr) for tr in self.tracks], False, (0, 255, 0))
            cv2.putText(vis, f"track count: {len(self.tracks)}", (20, 20), cv2.FONT_HERSHEY_PLAIN, 1.0,
                        (255, 255, 255), lineType=cv2.LINE_AA)
            cv2.imshow("lk_track", vis)
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                return False
        self.frame_idx += 1
        self.prev_gray = gray
        return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="?", help="a video file (or URL) for cv2.VideoCapture")
    p.add_argument("--ring", metavar="NAME", help="read framering ring NAME instead (framering.VideoCapture)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SEC", help="wait this long for the ring")
    p.add_argument("--headless", action="store_true", help="print detections as JSON lines, show nothing")
    args = p.parse_args()
    if (args.source is None) == (args.ring is None):
        p.error("give a video file or --ring NAME")
    cap = open_source(args)
    if not cap.isOpened():
        why = getattr(cap, "last_error", None)
        print(f"lk_track: cannot open {args.ring or args.source}{f': {why}' if why else ''}", file=sys.stderr)
        return 2
    app = App(cap, args.headless)
    while app.step():
        pass
    cap.release()
    if not args.headless:
        cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
