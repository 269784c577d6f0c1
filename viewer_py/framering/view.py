"""view - the OpenCV viewer: show the frames of a framering ring in a window (python3 -m framering.view NAME).

Every frame is shown with cv2.imshow: bgr24 directly from the shared-memory
view, other formats through frame.to_bgr() (their colorimetry's matrix and range). The overlay (fps, latency,
frames skipped) is drawn on the converted image for non-BGR formats; the ring
view of a BGR frame is read-only, so the overlay is drawn on a copy whose
cost is measured and printed in the summary (--no-overlay shows the view
itself with no copy at all).

Keys: q or Esc quits, s saves the current frame (without overlay) as PNG.

--reconnect outlives producers: when the producer ends, cleanly (end of
stream: stopped, end of its input) or not (it died), the viewer waits for the
next one; the window keeps the last picture, dimmed, with "waiting for
producer" written on it and in its title. --exit-at-eos keeps the exit at a
clean end of stream. The same options, with the same meaning, as framering-view.
Exit status: the table every framering consumer shares (app/common/consumer_exit.h):
0 done, 1 bad usage, 2 ring missing/busy, 3 producer died, 4 corrupt or foreign
ring, 5 display failure, 6 anything else, 7 the producer failed (ended the stream on an error).
"""

from __future__ import annotations

import argparse
import collections
import errno
import math
import os
import socket
import sys
import time
from typing import Deque, List, Optional, Sequence

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
    inspect,
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

#: How each end of a producer's stream is named in the "waiting for the next producer" line.
ENDS = {"eos": "end of stream", "died": "producer died", "failed": "producer failed"}

EXIT_HELP = ("exit status (the same for every framering consumer): 0 done (end of stream, q/Esc, Ctrl-C, "
             "--frames), 1 bad usage, 2 ring missing, busy or not accessible, 3 the producer died, "
             "4 the ring is corrupt or foreign, 5 display failure, 6 anything else, "
             "7 the producer failed (it ended the stream on an error).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 1 like the C tools
        sys.stderr.write(f"{PROG}: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


def _seconds(text: str) -> float:
    """An option's seconds: a finite number from 0 to 1e9, as the C tools take (apputil.c
    app_parse_seconds); nan or inf would make a wait that never ends."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1e9:  # also false for nan
        raise argparse.ArgumentTypeError(f"seconds from 0 to 1e9 expected, not {text!r}")
    return value


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
    p.add_argument("--timeout", type=_seconds, metavar="SEC",
                   help="seconds to wait for the ring to appear, each time (default 5; with --reconnect: "
                        "forever)")
    p.add_argument("--reconnect", action="store_true",
                   help="outlive producers: when the producer ends, whether it dies or ends its stream cleanly "
                        "(stopped, end of its input), wait for the next one instead of exiting. Meanwhile the "
                        "window keeps the last picture, dimmed, with 'waiting for producer' on it and in its "
                        "title; q/Esc/Ctrl-C still end the viewer (0). The summary counts the reconnects")
    p.add_argument("--exit-at-eos", action="store_true",
                   help="with --reconnect: exit at a clean end of stream all the same, and wait only for a "
                        "producer that died")
    p.add_argument("--headless", action="store_true", help="no window: read frames and print statistics only")
    p.add_argument("--no-overlay", action="store_true", help="do not draw fps/latency on the image")
    p.add_argument("--save-dir", default=".", metavar="DIR", help="where 's' saves frames (default: .)")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    a = p.parse_args(argv)
    if a.frames is not None and a.frames <= 0:
        p.error(f"--frames must be positive, not {a.frames}")
    if a.exit_at_eos and not a.reconnect:
        p.error("--exit-at-eos needs --reconnect (without it every end of stream ends the viewer)")
    if a.timeout is None and not a.reconnect:
        a.timeout = 5.0
    return a


def display_problem() -> Optional[str]:
    """Why no window can be opened (None if one probably can): neither DISPLAY's X server nor
    WAYLAND_DISPLAY's compositor (whichever are set) answers. Checked before cv2 touches Qt,
    which aborts the whole process when it finds no display."""
    disp = os.environ.get("DISPLAY")
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if not disp and not wayland:
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    problems = []
    for check, value in ((x_display_problem, disp), (wayland_display_problem, wayland)):
        if value:
            problem = check(value)
            if problem is None:
                return None
            problems.append(problem)
    return "; ".join(problems)


def x_display_problem(disp: str) -> Optional[str]:
    """Why X display DISP does not answer, or None."""
    # ":N" / "unix:N" -> the local X socket; "host:N" -> TCP 6000+N.
    host, _, rest = disp.rpartition(":")
    num = rest.split(".")[0]
    if not num.isdigit():
        return f"DISPLAY={disp!r} is not a valid X display name"
    try:
        if host not in ("", "unix"):
            socket.create_connection((host, 6000 + int(num)), timeout=1.0).close()
            return None
        # Linux's abstract socket first, as libxcb tries it: it answers without the file
        # (a container that shares the network namespace but not /tmp); then the file.
        for path in (f"\0/tmp/.X11-unix/X{num}", f"/tmp/.X11-unix/X{num}"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                try:
                    s.connect(path)
                    return None
                except OSError as e:
                    error = e
        raise error
    except OSError as e:
        return f"cannot connect to X display {disp!r}: {e.strerror or e}"


def wayland_display_problem(wayland: str) -> Optional[str]:
    """Why Wayland display WAYLAND (a name in $XDG_RUNTIME_DIR, or a path) does not answer, or None."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not wayland.startswith("/") and not runtime:
        return f"WAYLAND_DISPLAY={wayland!r}, but XDG_RUNTIME_DIR is not set"
    path = os.path.join(runtime or "/", wayland)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(path)
    except OSError as e:
        return f"cannot connect to Wayland display {wayland!r} ({path}): {e.strerror or e}"
    return None


def qt_platform_problem(cv2) -> Optional[str]:
    """Why OpenCV's Qt cannot open a window on the display that answers, or None; may set
    QT_QPA_PLATFORM so that it can. Qt picks its platform plugin by itself (xcb by default in
    Qt 5, wayland for XDG_SESSION_TYPE=wayland) and aborts the process when that one cannot
    start, so a live Wayland socket is no display for a Qt without the wayland plugin (Debian
    and Ubuntu ship it apart, qtwayland5). Called after importing CV2, before its first window:
    Qt reads QT_QPA_PLATFORM then. A platform the user chose (QT_QPA_PLATFORM) is left alone,
    and so is a Qt whose plugin directory cannot be found (nothing to go by)."""
    if os.environ.get("QT_QPA_PLATFORM") or not opencv_uses_qt(cv2):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if not wayland or wayland_display_problem(wayland) is not None:
        return None  # no compositor: Qt goes to X, which display_problem() found answering
    dirs = qt_platform_plugin_dirs(cv2)
    if not dirs:
        return None
    has_wayland = any(name.startswith("libqwayland") for d in dirs for name in os.listdir(d))
    disp = os.environ.get("DISPLAY")
    if disp and x_display_problem(disp) is None:
        if not has_wayland:
            os.environ["QT_QPA_PLATFORM"] = "xcb"  # not wayland, even where the session says so
        return None
    if has_wayland:
        os.environ["QT_QPA_PLATFORM"] = "wayland"  # Qt 5 would try xcb, with no X server to answer
        return None
    return (f"WAYLAND_DISPLAY={wayland!r} answers, but the Qt that OpenCV uses has no Wayland platform "
            f"plugin (none in {', '.join(dirs)}: install qtwayland5 or set DISPLAY to an X server)")


def opencv_uses_qt(cv2) -> bool:
    """Whether CV2's windows are Qt's (its build information's "GUI:" line)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "GUI":
            return value.strip().upper().startswith("QT")
    return False


def qt_platform_plugin_dirs(cv2) -> List[str]:
    """The Qt platform plugin directories that exist where the Qt of CV2 looks: the
    environment's (QT_QPA_PLATFORM_PLUGIN_PATH, QT_PLUGIN_PATH) and its built-in one, found
    next to the libQt*Core loaded with OpenCV (lib/qt5/plugins, lib/qt6/plugins,
    lib/qt/plugins, lib/../plugins), or inside the opencv-python wheel (cv2/qt/plugins)."""
    candidates = [os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")]
    candidates += [os.path.join(p, "platforms") for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    for core in loaded_qt_core():
        lib = os.path.dirname(core)
        for sub in ("qt5/plugins", "qt6/plugins", "qt/plugins", "../plugins"):
            candidates.append(os.path.join(lib, sub, "platforms"))
    if getattr(cv2, "__file__", None):
        candidates.append(os.path.join(os.path.dirname(cv2.__file__), "qt", "plugins", "platforms"))
    seen: List[str] = []
    for c in candidates:
        path = os.path.normpath(c) if c else ""
        if path and path not in seen and os.path.isdir(path):
            seen.append(path)
    return seen


def loaded_qt_core() -> List[str]:
    """Paths of the libQt5Core/libQt6Core mapped into this process (by importing cv2)."""
    found: List[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                base = os.path.basename(path)
                if base.startswith(("libQt5Core", "libQt6Core")) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def to_bgr(frame, cv2) -> np.ndarray:
    """The frame as a BGR image, converted as its colorimetry says: the ring view itself for
    bgr24, else frame.to_bgr() (OpenCV's cvtColor for BT.601 limited range)."""
    return frame.to_bgr()


class Stats:
    """fps over a sliding window, latency samples (the newest LAT_MAX_SAMPLES, as framering-view
    keeps: a viewer left running for days must not grow), counters."""

    LAT_MAX_SAMPLES = 1 << 20  # ~4.8 h at 60 fps, 8 MiB of floats at most

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.times: Deque[float] = collections.deque(maxlen=60)
        self.latencies: Deque[float] = collections.deque(maxlen=self.LAT_MAX_SAMPLES)
        self.frames = 0
        self.skipped = 0
        self.copy_s = 0.0
        self.copies = 0
        self.last_progress = 0.0
        self.reconnects = 0
        self.producers_shown = 0  # producers (the first one and each reconnect) that got a frame shown
        self.dropped = 0          # by the producers, summed over the rings read

    def add(self, latency: float, skipped: int) -> None:
        now = time.monotonic()
        self.frames += 1
        self.skipped += skipped
        self.latencies.append(latency)
        self.times.append(now)

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

    def summary(self, name: str, why: str, reconnect: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        lat = np.array(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        text = (f"{name}: {why}: {self.frames} frames in {elapsed:.2f} s "
                f"({self.frames / max(elapsed, 1e-9):.1f} fps), skipped {self.skipped}, "
                f"dropped by producer {self.dropped}, latency ms mean {lat.mean():.2f} "
                f"p95 {np.percentile(lat, 95):.2f} max {lat.max():.2f}")
        if self.copies:
            text += f", overlay copy {self.copy_s / self.copies * 1e3:.3f} ms/frame"
        if reconnect:
            text += f"; {self.reconnects} reconnects, frames from {self.producers_shown} producers"
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


def say(text: str) -> None:
    """One line on stderr, after ending the progress line (a terminal only has one)."""
    sys.stderr.write(f"{chr(10) if sys.stderr.isatty() else ''}{PROG}: {text}\n")


def waiting_image(last: np.ndarray, cv2) -> np.ndarray:
    """The last picture shown, dimmed (to 95/255, as framering-view dims it), with "waiting for
    producer" written across its middle: what the window shows between producers."""
    img = cv2.convertScaleAbs(last, alpha=95 / 255)
    text = "waiting for producer"
    scale = max(img.shape[1] / 640.0, 0.4)
    thick = max(int(2 * scale), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org = (max((img.shape[1] - tw) // 2, 0), (img.shape[0] + th) // 2)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


class Window:
    """The OpenCV window (opened with the first frame), or nothing at all with --headless.

    ``last`` is the picture on screen (possibly a view into the ring: dropped before the ring
    is closed, so nothing keeps the mapping); ``shown`` the frame it came from, held until the
    next one is asked for so that 's' can save it."""

    def __init__(self, args: argparse.Namespace, cv2) -> None:
        self.args = args
        self.cv2 = cv2
        self.name = f"framering: {args.name}"
        self.open = False
        self.last: Optional[np.ndarray] = None
        self.shown = None
        self.why: Optional[str] = None  # why a wait for a producer was given up (q/Esc/closed)

    def show(self, img: np.ndarray, frame) -> None:
        cv2 = self.cv2
        if not self.open:
            cv2.namedWindow(self.name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(self.name, frame.width, frame.height)
            self.open = True
        cv2.imshow(self.name, img)
        self.last, self.shown = img, frame

    def keys(self, wait_ms: int = 1) -> Optional[str]:
        """Serve the window for up to WAIT_MS (just sleep without one); why to stop, or None.
        's' saves the frame on screen, if it is still held."""
        if not self.open:
            time.sleep(wait_ms / 1000)
            return None
        key = self.cv2.waitKey(wait_ms) & 0xFF
        if key == ord("s") and self.shown is not None and not self.shown.released:
            save_frame(self.shown, self.args.save_dir, self.args.name, self.cv2)
        if key in (ord("q"), 27):
            return "quit"
        if self.cv2.getWindowProperty(self.name, self.cv2.WND_PROP_VISIBLE) < 1:
            return "window closed"
        return None

    def waiting(self) -> None:
        """Between producers: the last picture dimmed, with "waiting for producer", also in the title."""
        self.shown = None
        if self.open and self.last is not None:
            self.cv2.imshow(self.name, waiting_image(self.last, self.cv2))
            self.cv2.setWindowTitle(self.name, f"{self.name} - waiting for producer")
        self.last = None  # a view into the ring that is being closed: let it go

    def reading(self) -> None:
        if self.open:
            self.cv2.setWindowTitle(self.name, self.name)

    def close(self) -> None:
        if self.open:
            self.cv2.destroyAllWindows()


WAIT_SLICE = 0.1  # seconds: how long a wait for a producer goes without serving the window


def ended_ring_still_there(name: str, ended) -> bool:
    """Whether ring NAME is still the ring whose stream ended last (ENDED: its producer pid and
    records written). A producer may keep its ring a while after marking end of stream
    (framering-capture waits until its consumers have read the last frames), or die there and
    leave it until the next producer reclaims the name: attaching to it again would only meet
    the same end of stream. inspect() looks without attaching."""
    try:
        st = inspect(name)
    except FrameringError:
        return False
    return st.eos and (st.producer_pid, st.records_written) == ended


def attach(args: argparse.Namespace, win: Window, ended) -> Optional[Consumer]:
    """Wait for a producer of the ring (--timeout bounds the wait; None: forever) and attach as
    the consumer; None if q/Esc/closing the window stopped the wait (then win.why says which).
    The window is served between slices of the wait. Raises what Consumer() raises, and
    RingNotFound when --timeout ran out."""
    # --latest (the default): a live consumer that never slows the producer or the other
    # consumers of the ring; --every: a lossless one the producer waits for.
    mode = "every" if args.every else "latest"
    if args.timeout == 0:
        return Consumer(args.name, timeout=0, mode=mode)  # one look (a dead producer's ring too)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    while True:
        left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
        if left > 0:
            if ended is not None and ended_ring_still_there(args.name, ended):
                win.why = win.keys(int(left * 1000) + 1)
                if win.why:
                    return None
            else:
                ended = None  # gone, or another ring has the name: the old one never comes back
                try:
                    return Consumer(args.name, timeout=left, mode=mode)
                except RingNotFound:
                    pass
        if deadline is not None and time.monotonic() >= deadline:
            raise RingNotFound(-errno.ETIMEDOUT, f"open ring '{args.name}': no ring of that name appeared "
                                                 f"within {args.timeout:g} s")
        win.why = win.keys()
        if win.why:
            return None


def read_frames(cons: Consumer, args: argparse.Namespace, win: Window, stats: Stats, cv2):
    """Show the frames of CONS until its producer ends or the viewer is to stop. Returns
    ("eos", None) at end of stream, ("died", the PeerDied message) when the producer died, ("failed",
    the ProducerFailed message, escaped) when it ended the stream on an error, ("stop",
    WHY) for q/Esc/the window closed/--frames reached. Never an exception object: its traceback
    would keep the ring's handle, and with it the mapping, alive while the viewer waits."""
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
            why = win.keys()  # keys come here too while no new frame arrives
            if why:
                return "stop", why
            continue
        except EndOfStream:
            return "eos", None
        except PeerDied as e:
            return "died", str(e)
        except ProducerFailed as e:
            # The reason is the producer's text: nothing in it may reach the terminal as a control sequence.
            return "failed", "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in str(e))
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
        win.show(img, frame)  # the frame is released when the next one is asked for
        key = cv2.waitKey(1) & 0xFF
        if key == ord("s"):
            save_frame(frame, args.save_dir, args.name, cv2)
        stats.progress(args.name)
        if key in (ord("q"), 27):
            return "stop", "quit"
        if cv2.getWindowProperty(win.name, cv2.WND_PROP_VISIBLE) < 1:
            return "stop", "window closed"
    return "stop", f"{args.frames} frames"


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
        try:
            import cv2  # only now: importing it needs no display, but keep headless runs lean
        except ImportError as e:
            sys.stderr.write(f"{PROG}: OpenCV is needed for a window ({e}); install it (python3-opencv), "
                             "or use --headless for statistics only.\n")
            return EXIT_DISPLAY
        why = qt_platform_problem(cv2)
        if why:
            sys.stderr.write(f"{PROG}: {why}; cannot open a window. Use --headless for statistics only.\n")
            return EXIT_DISPLAY

    status = EXIT_DONE
    why = "end of stream"
    stats = Stats()
    win = Window(args, cv2)
    ended = None  # (producer pid, records written) of the ring whose stream ended last
    attached_before = False
    try:
        while True:
            try:
                cons = attach(args, win, ended)
            except (RingNotFound, RingBusy) as e:  # missing or busy
                sys.stderr.write(f"{PROG}: {e}\n")
                return EXIT_NO_RING
            except ForeignRing as e:
                sys.stderr.write(f"{PROG}: {e}\n")
                return EXIT_BAD_RING
            except FrameringError as e:
                sys.stderr.write(f"{PROG}: {e}\n")
                return EXIT_NO_RING if e.code in (-errno.EACCES, -errno.EPERM) else EXIT_OTHER
            if cons is None:  # q/Esc/window closed while waiting
                why = win.why
                break
            if attached_before:
                stats.reconnects += 1
                if not args.quiet:
                    say(f"reconnected to ring '{args.name}'")
                win.reading()
            else:
                stats.start = time.monotonic()
                attached_before = True
            first = stats.frames
            try:
                end, detail = read_frames(cons, args, win, stats, cv2)
                ended = (cons.stats.producer_pid, cons.stats.records_written)
            finally:
                try:
                    stats.dropped += cons.stats.records_dropped
                except FrameringError:
                    pass
                win.shown = None
                cons.close()
                cons = None
            run_frames = stats.frames - first
            stats.producers_shown += run_frames > 0
            if end == "stop":
                why = detail
                break
            if end == "died" and not args.reconnect:
                why = f"producer died ({detail})"
                status = EXIT_PRODUCER_DIED
                break
            if end == "failed":
                sys.stderr.write(f"\n{PROG}: {detail}\n")
                if not args.reconnect:
                    why = "producer failed"
                    status = EXIT_PRODUCER_FAILED
                    break
            if end == "eos" and (not args.reconnect or args.exit_at_eos):
                why = "end of stream"
                break
            # --reconnect: wait for the next producer.
            if end == "died":
                say(f"the producer of ring '{args.name}' died")
            if not args.quiet:
                say(f"{ENDS[end]} after {run_frames} frames from "
                    f"this producer; waiting for the next producer of ring '{args.name}' (Ctrl-C to stop)")
            win.waiting()
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
        win.close()
    if sys.stderr.isatty() and stats.frames:
        sys.stderr.write("\n")
    if not args.quiet:
        sys.stderr.write(stats.summary(args.name, why, args.reconnect) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
