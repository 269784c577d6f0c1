"""bench_common - what the Python benchmarks share: the source tree's framering package, the sample, ffprobe, a looping cv2 reader.

Importing it puts viewer_py/ first on sys.path, so `import framering` after it
gets the package of this checkout (not an installed one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "viewer_py"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def default_sample() -> str:
    """The 1080p sample: $FRAMERING_SAMPLE (set by the bench targets) or assets/sample.mp4."""
    return os.environ.get("FRAMERING_SAMPLE", str(REPO / "assets" / "sample.mp4"))


def ffprobe_frames(path: str) -> int:
    """Number of video frames in PATH, counted by decoding (the container's count can lie)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                         check=True, stdout=subprocess.PIPE).stdout
    return int(out.strip())


def ffprobe_size(path: str) -> tuple:
    """(width, height) of PATH's first video stream."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", path],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    width, height = out.strip().split(",")[:2]
    return int(width), int(height)


def unique_ring_name(prefix: str) -> str:
    """A ring name no other run (or concurrent benchmark) uses."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def cv2_frames(video: str, frames: int, buf: np.ndarray) -> Iterator[np.ndarray]:
    """FRAMES frames of VIDEO decoded by cv2.VideoCapture into BUF (reused for every frame),
    reopening the file at its end: the counterpart of framering-capture --loop --frames."""
    n = 0
    while n < frames:
        cap = cv2.VideoCapture(video)
        if not cap.isOpened():
            raise RuntimeError(f"cv2.VideoCapture cannot open {video}")
        try:
            got_any = False
            while n < frames:
                ok, img = cap.read(buf)
                if not ok:
                    break
                got_any = True
                yield img
                n += 1
        finally:
            cap.release()
        if not got_any:
            raise RuntimeError(f"cv2.VideoCapture read no frame from {video}")
