"""viewtest.py - helpers for the framering-view tests: programs, unique ring names, pixel references."""
import os
import signal
import subprocess
import time
import uuid

import numpy as np

VIEW = os.environ.get("FRAMERING_VIEW", "")
TESTSRC = os.environ.get("FRAMERING_VIEW_TESTSRC", "")
CAPTURE = os.environ.get("FRAMERING_CAPTURE", "")
DUMP = os.environ.get("FRAMERING_DUMP", "")
SAMPLE = os.environ.get("FRAMERING_SAMPLE", "")

# Generous limits so a hang fails the test instead of blocking ctest; never used as timing assertions.
TIMEOUT = 60

# The tolerance for YUV formats, per channel, against yuv_to_bgr() below (BT.601 limited range,
# nearest-neighbour chroma). SDL's software converter uses fixed-point tables that round
# differently from this float reference: we measured a maximum difference of 1; 2 leaves margin.
YUV_TOLERANCE = 2


def unique_ring(tag):
    return f"fr-viewtest-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_ring(name):
    try:
        os.unlink(f"/dev/shm/{name}")
    except FileNotFoundError:
        pass


def pattern_rgb(bx, by, n):
    """Colour (R, G, B) of block (bx, by) of frame n; the same formula as view_testsrc.c."""
    return ((bx * 32 + n * 7) & 255, (by * 32 + n * 11) & 255, ((bx + by) * 16 + n * 5 + 40) & 255)


def frame_bytes(fmt, w, h):
    cw, ch = (w + 1) // 2, (h + 1) // 2
    return {"bgr24": w * h * 3, "rgb24": w * h * 3, "gray": w * h, "gray8": w * h,
            "i420": w * h + 2 * cw * ch, "nv12": w * h + 2 * cw * ch}[fmt]


def yuv_to_bgr(y, u, v):
    """BT.601 limited range YUV -> BGR, float, rounded; u and v already upsampled to y's size."""
    y = y.astype(np.float64) - 16
    u = u.astype(np.float64) - 128
    v = v.astype(np.float64) - 128
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.391 * u - 0.813 * v
    b = 1.164 * y + 2.018 * u
    return np.clip(np.stack([b, g, r], -1) + 0.5, 0, 255).astype(np.uint8)


def reference_bgr(fmt, w, h, raw, n):
    """Frame n of a packed raw file (as view_testsrc --raw / framering-dump --raw write it) as BGR."""
    size = frame_bytes(fmt, w, h)
    fr = np.frombuffer(raw, np.uint8, size, n * size)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    if fmt == "bgr24":
        return fr.reshape(h, w, 3)
    if fmt == "rgb24":
        return fr.reshape(h, w, 3)[:, :, ::-1]
    if fmt in ("gray", "gray8"):
        g = fr.reshape(h, w)
        return np.stack([g, g, g], -1)
    y = fr[: w * h].reshape(h, w)
    if fmt == "i420":
        u = fr[w * h: w * h + cw * ch].reshape(ch, cw)
        v = fr[w * h + cw * ch:].reshape(ch, cw)
    else:
        uv = fr[w * h:].reshape(ch, cw, 2)
        u, v = uv[:, :, 0], uv[:, :, 1]
    u = u.repeat(2, 0).repeat(2, 1)[:h, :w]
    v = v.repeat(2, 0).repeat(2, 1)[:h, :w]
    return yuv_to_bgr(y, u, v)


def start(args, **kw):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(p, timeout=TIMEOUT):
    """Wait for p (killing it if it hangs) and return (returncode, stdout, stderr)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"{p.args[0]} did not finish within {timeout} s; stderr:\n{err}")
    return p.returncode, out, err


def wait_for_line(path, text, proc, timeout=TIMEOUT):
    """Poll the file PATH (a process's stderr) until it contains TEXT; fail if PROC exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            if text in f.read():
                return
        if proc.poll() is not None:
            with open(path, errors="replace") as f:
                raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r}:\n{f.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not printed within {timeout} s")


def wait_for_count(path, text, count, proc, timeout=TIMEOUT):
    """Poll the file PATH (a process's stderr) until TEXT occurs COUNT times in it; fail if PROC exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            if f.read().count(text) >= count:
                return
        if proc.poll() is not None:
            with open(path, errors="replace") as f:
                raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r} "
                                     f"{count} times:\n{f.read()}")
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not printed {count} times within {timeout} s")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait()
