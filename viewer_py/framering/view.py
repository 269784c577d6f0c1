"""view - the OpenCV viewer: show the frames of a framering ring in a window (python3 -m framering.view NAME).

Every frame is shown with cv2.imshow: bgr24 directly from the shared-memory
view, other formats through one cv2.cvtColor. The overlay (fps, latency,
frames skipped) is drawn on the converted image for non-BGR formats; the ring
view of a BGR frame is read-only, so the overlay is drawn on a copy whose
cost is measured and printed in the summary (--no-overlay shows the view
itself with no copy at all).

Keys: q or Esc quits, s saves the current frame (without overlay) as PNG.
Exit status: the table every framering consumer shares (app/common/consumer_exit.h):
0 done, 1 bad usage, 2 ring missing/busy, 3 producer died, 4 corrupt or foreign
ring, 5 display failure, 6 anything else, 7 the producer failed (ended the stream on an error).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import time
from typing import List, Optional, Sequence

import numpy as np

from . import (
    Consumer,
    EndOfStream,
    ForeignRing,
    FrameringError,
    InvalidFrame,
    PeerDied,
    ProducerFailed,
    RingBusy,
    RingNotFound,
    Timeout,
)

PROG = "python3 -m framering.view"

# The exit codes of every framering consumer (app/common/consumer_exit.h; a test checks they match).
EXIT_DONE = 0        # end of stream, q/Esc, Ctrl-C, --frames reached
EXIT_USAGE = 1       # bad option
EXIT_NO_RING = 2     # ring missing (not found within --timeout), busy, or not accessible
EXIT_PRODUCER_DIED = 3
EXIT_BAD_RING = 4    # corrupt or foreign ring: not a ring, corrupt indices/records, other version, shrunk
EXIT_DISPLAY = 5     # no display to open a window on
EXIT_OTHER = 6       # anything else
EXIT_PRODUCER_FAILED = 7  # the producer ended the stream on an error (its reason is printed)

EXIT_HELP = ("exit status (the same for every framering consumer): 0 done (end of stream, q/Esc, Ctrl-C, "
             "--frames), 1 bad usage, 2 ring missing, busy or not accessible, 3 the producer died, "
             "4 the ring is corrupt or foreign, 5 display failure, 6 anything else, "
             "7 the producer failed (it ended the stream on an error).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 1 like the C tools
        sys.stderr.write(f"{PROG}: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = _Parser(
        prog=PROG,
        description="Show the frames of a framering ring in an OpenCV window, with fps, "
                    "latency and skipped frames drawn on top.",
        epilog="keys: q/Esc quit, s save the current frame. " + EXIT_HELP,
    )
    p.add_argument("name", nargs="?", default="framering", help="ring name (default: framering)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--latest", action="store_true",
                      help="always show the newest frame, skipping older ones, as a live consumer that never "
                           "slows the producer or other consumers (the default, as framering-view)")
    mode.add_argument("--every", action="store_true",
                      help="show every frame in order (a blocking producer waits for the viewer)")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SEC",
                   help="seconds to wait for the ring to appear (default 5)")
    p.add_argument("--headless", action="store_true", help="no window: read frames and print statistics only")
    p.add_argument("--no-overlay", action="store_true", help="do not draw fps/latency on the image")
    p.add_argument("--save-dir", default=".", metavar="DIR", help="where 's' saves frames (default: .)")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    a = p.parse_args(argv)
    if a.frames is not None and a.frames <= 0:
        p.error(f"--frames must be positive, not {a.frames}")
    if a.timeout < 0:
        p.error(f"--timeout must not be negative, not {a.timeout}")
    return a


def display_problem() -> Optional[str]:
    """Why no window can be opened (None if one probably can). Checked before
    cv2 touches Qt, which aborts the whole process when it finds no display."""
    disp = os.environ.get("DISPLAY")
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if not disp and not wayland:
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if disp and not wayland:
        # ":N" / "unix:N" -> the local X socket; "host:N" -> TCP 6000+N.
        host, _, rest = disp.rpartition(":")
        num = rest.split(".")[0]
        if not num.isdigit():
            return f"DISPLAY={disp!r} is not a valid X display name"
        try:
            if host in ("", "unix"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(1.0)
                s.connect(f"/tmp/.X11-unix/X{num}")
            else:
                s = socket.create_connection((host, 6000 + int(num)), timeout=1.0)
            s.close()
        except OSError as e:
            return f"cannot connect to X display {disp!r}: {e.strerror or e}"
    return None


def to_bgr(frame, cv2) -> np.ndarray:
    """The frame as a BGR image: the ring view itself for bgr24, else one cv2.cvtColor."""
    fmt = frame.format
    if fmt == "bgr24":
        return frame.array
    if fmt == "rgb24":
        return cv2.cvtColor(frame.array, cv2.COLOR_RGB2BGR)
    if fmt == "gray8":
        return cv2.cvtColor(frame.array, cv2.COLOR_GRAY2BGR)
    code = cv2.COLOR_YUV2BGR_I420 if fmt == "i420" else cv2.COLOR_YUV2BGR_NV12
    try:
        return cv2.cvtColor(frame.array, code)
    except ValueError:
        # Odd size: OpenCV's 4:2:0 converters need even W and H. Show the
        # even-sized top-left part (packed into one private buffer).
        w, h = frame.width & ~1, frame.height & ~1
        if w == 0 or h == 0:
            return np.zeros((max(h, 1), max(w, 1), 3), np.uint8)
        planes = frame.planes
        y = planes[0][:h, :w]
        if fmt == "i420":
            u, v = planes[1][:h // 2, :w // 2], planes[2][:h // 2, :w // 2]
            buf = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
        else:
            uv = planes[1][:h // 2, :w]
            buf = np.concatenate([y.ravel(), uv.ravel()]).reshape(h * 3 // 2, w)
        return cv2.cvtColor(buf, code)


class Stats:
    """fps over a sliding window, latency samples, counters."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.times: List[float] = []
        self.latencies: List[float] = []
        self.frames = 0
        self.skipped = 0
        self.copy_s = 0.0
        self.copies = 0
        self.last_progress = 0.0

    def add(self, latency: float, skipped: int) -> None:
        now = time.monotonic()
        self.frames += 1
        self.skipped += skipped
        self.latencies.append(latency)
        self.times.append(now)
        if len(self.times) > 60:
            del self.times[0]

    @property
    def fps(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-9)

    def progress(self, name: str) -> None:
        now = time.monotonic()
        if now - self.last_progress < 0.5 or not sys.stderr.isatty():
            return
        self.last_progress = now
        lat = self.latencies[-1] * 1e3 if self.latencies else 0.0
        sys.stderr.write(f"\r{name}: {self.frames} frames  {self.fps:6.1f} fps  "
                         f"latency {lat:6.1f} ms  skipped {self.skipped}   ")
        sys.stderr.flush()

    def summary(self, name: str, dropped: int, why: str) -> str:
        elapsed = time.monotonic() - self.start
        lat = np.array(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        text = (f"{name}: {why}: {self.frames} frames in {elapsed:.2f} s "
                f"({self.frames / max(elapsed, 1e-9):.1f} fps), skipped {self.skipped}, "
                f"dropped by producer {dropped}, latency ms mean {lat.mean():.2f} "
                f"p95 {np.percentile(lat, 95):.2f} max {lat.max():.2f}")
        if self.copies:
            text += f", overlay copy {self.copy_s / self.copies * 1e3:.3f} ms/frame"
        return text


def draw_overlay(img: np.ndarray, stats: Stats, frame, cv2) -> None:
    text = (f"{stats.fps:5.1f} fps  latency {frame.latency * 1e3:6.1f} ms  "
            f"skipped {stats.skipped}  #{frame.seq}")
    scale = max(img.shape[1] / 1280.0, 0.5)
    org = (int(10 * scale), int(30 * scale))
    # Dark outline under light text: readable on any picture.
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0),
                max(int(4 * scale), 2), cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (255, 255, 255),
                max(int(1.5 * scale), 1), cv2.LINE_AA)


def save_frame(frame, save_dir: str, name: str, cv2) -> None:
    """Write FRAME (without overlay) as a PNG into SAVE_DIR and say where."""
    path = os.path.join(save_dir, f"framering-{name}-{frame.seq:06d}.png")
    if cv2.imwrite(path, to_bgr(frame, cv2)):
        sys.stderr.write(f"\n{PROG}: saved {path}\n")
    else:
        sys.stderr.write(f"\n{PROG}: could not write {path}\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.headless:
        why = display_problem()
        if why:
            sys.stderr.write(f"{PROG}: {why}; cannot open a window. Use --headless for statistics "
                             "only, or run under xvfb-run.\n")
            return EXIT_DISPLAY
    cv2 = None
    if not args.headless:
        import cv2  # only now: importing it needs no display, but keep headless runs lean

    status = EXIT_DONE
    why = "end of stream"
    cons: Optional[Consumer] = None
    stats = Stats()
    win = f"framering: {args.name}"
    window_open = False
    shown = None  # the frame on screen: held (not released) until the next one comes, so 's' can save it
    try:
        try:
            # --latest (the default): a live consumer that never slows the producer or the
            # other consumers of the ring; --every: a lossless one the producer waits for.
            cons = Consumer(args.name, timeout=args.timeout, mode="every" if args.every else "latest")
        except (RingNotFound, RingBusy) as e:  # missing or busy
            sys.stderr.write(f"{PROG}: {e}\n")
            return EXIT_NO_RING
        except ForeignRing as e:
            sys.stderr.write(f"{PROG}: {e}\n")
            return EXIT_BAD_RING
        except FrameringError as e:
            sys.stderr.write(f"{PROG}: {e}\n")
            return EXIT_NO_RING if e.code in (-errno.EACCES, -errno.EPERM) else EXIT_OTHER
        stats.start = time.monotonic()
        get = cons.next_frame if args.every else cons.latest
        while args.frames is None or stats.frames < args.frames:
            try:
                # Short waits: between them the window keeps handling events.
                frame = get(0.05 if not args.headless else None)
            except InvalidFrame as e:
                if cons.invalid_frames == 1:
                    sys.stderr.write(f"\n{PROG}: {e} (further ones are counted in the summary)\n")
                continue
            except Timeout:
                if window_open:
                    # Keys come here too while no new frame arrives: handle them all.
                    key = cv2.waitKey(1) & 0xFF
                    if key == ord("s") and shown is not None and not shown.released:
                        save_frame(shown, args.save_dir, args.name, cv2)
                    if key in (ord("q"), 27) or cv2.getWindowProperty(win, cv2.WND_PROP_VISIBLE) < 1:
                        why = "quit"
                        break
                continue
            stats.add(frame.latency, frame.skipped)
            if args.headless:
                frame.release()
                stats.progress(args.name)
                continue
            img = to_bgr(frame, cv2)
            if not args.no_overlay:
                if frame.format == "bgr24":
                    t0 = time.perf_counter()
                    img = img.copy()  # the ring view is read-only
                    stats.copy_s += time.perf_counter() - t0
                    stats.copies += 1
                draw_overlay(img, stats, frame, cv2)
            if not window_open:
                cv2.namedWindow(win, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                cv2.resizeWindow(win, frame.width, frame.height)
                window_open = True
            cv2.imshow(win, img)
            shown = frame  # released when the next frame is asked for
            key = cv2.waitKey(1) & 0xFF
            if key == ord("s"):
                save_frame(frame, args.save_dir, args.name, cv2)
            stats.progress(args.name)
            if key in (ord("q"), 27):
                why = "quit"
                break
            if cv2.getWindowProperty(win, cv2.WND_PROP_VISIBLE) < 1:
                why = "window closed"
                break
        else:
            why = f"{args.frames} frames"
    except EndOfStream:
        why = "end of stream"
    except PeerDied as e:
        why = f"producer died ({e})"
        status = EXIT_PRODUCER_DIED
    except ProducerFailed as e:
        # The reason is the producer's text: nothing in it may reach the terminal as a control sequence.
        text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in str(e))
        sys.stderr.write(f"\n{PROG}: {text}\n")
        why = "producer failed"
        status = EXIT_PRODUCER_FAILED
    except KeyboardInterrupt:
        why = "interrupted"
    except ForeignRing as e:
        sys.stderr.write(f"\n{PROG}: {e}: stopped reading\n")
        why = "corrupt or foreign ring"
        status = EXIT_BAD_RING
    except FrameringError as e:
        sys.stderr.write(f"\n{PROG}: {e}\n")
        why = "error"
        status = EXIT_OTHER
    finally:
        dropped = 0
        if cons is not None and not cons.closed:
            try:
                dropped = cons.stats.records_dropped
            except FrameringError:
                pass
            cons.close()
        if window_open:
            cv2.destroyAllWindows()
    if sys.stderr.isatty() and stats.frames:
        sys.stderr.write("\n")
    if not args.quiet:
        sys.stderr.write(stats.summary(args.name, dropped, why) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
