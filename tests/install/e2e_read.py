"""e2e_read.py PREFIX [CAPTURE] - an installed framering package reads frames a producer writes.

Run from a directory outside the checkout, with the interpreter and environment under test
(a venv, /usr/bin/python3 with an installed .deb, or an extracted .deb on PYTHONPATH). Checks
that the package and the libframering-ring.so it loaded both lie under PREFIX (the install under
test, not the checkout or another copy), then reads every frame of a ring written by:
  CAPTURE given: framering-capture from a lavfi test source (C producer -> installed Python);
  else: a Python producer in another process, with the same installed package (known pixels).
Exit status 0 and one line "e2e read: ..." when all is well; an AssertionError otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FRAMES, W, H = 5, 320, 240

PRODUCER = f"""
import framering, sys
with framering.Producer(sys.argv[1], slots=4, width={W}, height={H}, format="bgr24") as prod:
    prod.wait_consumers(1, timeout=20)
    for i in range({FRAMES}):
        with prod.reserve_frame({W}, {H}, "bgr24", timeout=20) as out:
            out.array[...] = 10 + i
"""


def mapped_library() -> str:
    """Path of the libframering-ring.so* this process has mapped."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        paths = {line.split()[-1] for line in maps if "libframering-ring.so" in line}
    assert len(paths) == 1, f"expected one mapped libframering-ring.so, found {sorted(paths)}"
    return paths.pop()


def main() -> int:
    prefix = Path(sys.argv[1]).resolve()
    capture = sys.argv[2] if len(sys.argv) > 2 else None
    import framering

    pkg = Path(framering.__file__).resolve()
    assert pkg.is_relative_to(prefix), f"framering imported from {pkg}, not from under {prefix}"
    name = f"e2e-installed-{os.getpid()}"
    if capture:
        cmd = [capture, "-r", name, "-f", "lavfi", "--frames", str(FRAMES), "--wait-consumers", "1", "--size", "source",
               f"testsrc2=size={W}x{H}:rate=30"]
    else:
        cmd = [sys.executable, "-c", PRODUCER, name]
    prod = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    seqs = []
    try:
        with framering.Consumer(name, timeout=20) as cons:
            lib = Path(mapped_library()).resolve()
            assert lib.is_relative_to(prefix), f"library loaded from {lib}, not from under {prefix}"
            for frame in cons:
                img = frame.array
                assert img.shape == (H, W, 3), img.shape
                if capture:
                    assert img.std() > 10, f"frame {frame.seq}: a flat image from testsrc2"
                else:
                    assert (img == 10 + len(seqs)).all(), f"frame {frame.seq}: wrong pixels"
                seqs.append(frame.seq)
    finally:
        rc = prod.wait(timeout=30)
    assert rc == 0, f"producer {cmd[0]} exited {rc}"
    assert len(seqs) == FRAMES and seqs == sorted(set(seqs)), f"frames read: {seqs}"
    print(f"e2e read: {FRAMES} frames from {'framering-capture' if capture else 'a Python producer'}; "
          f"package {pkg.parent}, library {lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
