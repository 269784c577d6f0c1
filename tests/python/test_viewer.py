"""test_viewer - python3 -m framering.view: headless runs, no-display refusal, a real window under Xvfb (screenshot colours, keys s and q)."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

import framering
from framering import view as view_mod
from conftest import program, python_env, remove_segment, sample
from x11keys import XKeys

VIEW = [sys.executable, "-m", "framering.view"]


def run_view(args, env=None, timeout=60):
    return subprocess.run(VIEW + args, env=python_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def test_help():
    r = run_view(["--help"])
    assert r.returncode == 0
    for opt in ("--latest", "--every", "--headless", "--frames", "--timeout", "--reconnect", "--exit-at-eos"):
        assert opt.encode() in r.stdout


def test_bad_option_one_line_exit_1():
    r = run_view(["--frames", "-3"])
    assert r.returncode == 1
    assert r.stderr.count(b"\n") == 1 and b"--frames" in r.stderr
    r = run_view(["--exit-at-eos"])
    assert r.returncode == 1
    assert r.stderr.count(b"\n") == 1 and b"--exit-at-eos needs --reconnect" in r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e10", "five"])
def test_a_timeout_that_is_no_number_of_seconds_is_bad_usage(value, capsys):
    """--timeout must be a finite number of seconds from 0 to 1e9, as the C tools' (apputil.c
    app_parse_seconds): nan passed the "not negative" check and the wait for the ring then
    never ended (a deadline of nan is never reached), inf neither. One line, exit 1."""
    with pytest.raises(SystemExit) as e:
        view_mod.parse_args(["ring", "--timeout=" + value])
    assert e.value.code == view_mod.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--timeout" in err and value in err


def test_no_display_refuses_cleanly(ring_name):
    env = python_env()
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run(VIEW + [ring_name, "--timeout", "0"], env=env, stderr=subprocess.PIPE, timeout=60)
    # A Qt abort would be a negative return code (SIGABRT) and a core dump; 5 is "display failure".
    assert r.returncode == 5
    assert b"no display" in r.stderr and b"--headless" in r.stderr
    env["DISPLAY"] = ":4095"  # a display nobody serves
    r = subprocess.run(VIEW + [ring_name], env=env, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 5 and b"cannot connect" in r.stderr and b"--headless" in r.stderr


def test_no_opencv_says_so(ring_name, xvfb):
    """OpenCV is optional for the package, needed only for a window: without it the viewer says
    so in one line and exits 5 (no window possible; --headless still works), not with an
    ImportError traceback and exit 1 ("bad usage")."""
    code = ("import sys; sys.modules['cv2'] = None  # as if python3-opencv were not installed\n"
            "from framering import view; sys.exit(view.main(sys.argv[1:]))")
    env = python_env({"DISPLAY": xvfb})
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run([sys.executable, "-c", code, ring_name, "--timeout", "0"], env=env,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert b"Traceback" not in r.stderr and b"OpenCV" in r.stderr and b"--headless" in r.stderr
    r = subprocess.run([sys.executable, "-c", code, ring_name, "--timeout", "0", "--headless"], env=env,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"Traceback" not in r.stderr, r.stderr  # no ring: headless needs no OpenCV


def view_one_frame(ring_name, env, again_with=None):
    """Run the viewer (a window, not --headless) in ENV on a ring with one 64x48 frame and end of
    stream; AGAIN_WITH: environment changes for a second run on the same ring. Returns the
    completed run(s)."""
    with framering.Producer(ring_name, capacity=1 << 20) as prod:
        prod.write_frame(np.zeros((48, 64, 3), np.uint8))
        prod.mark_eos()
        runs = []
        for change in [{}] + ([again_with] if again_with else []):
            env.update(change)
            runs.append(subprocess.run(VIEW + [ring_name, "--every", "--timeout", "5"], env=env,
                                       stderr=subprocess.PIPE, timeout=60))
    return runs if again_with else runs[0]


def test_wayland_display_nobody_serves_refuses_cleanly(ring_name, tmp_path):
    """WAYLAND_DISPLAY set, DISPLAY not (or nobody's either), and no compositor at that socket: the
    viewer says it has no display (5) before the first frame would make OpenCV open a window,
    instead of Qt aborting the process there."""
    env = python_env({"WAYLAND_DISPLAY": "wayland-framering-test", "XDG_RUNTIME_DIR": str(tmp_path)})
    env.pop("DISPLAY", None)
    # the second run: both set, neither served: both said, still no abort
    r, r2 = view_one_frame(ring_name, env, again_with={"DISPLAY": ":4095"})
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert b"wayland-framering-test" in r.stderr and b"--headless" in r.stderr
    assert r2.returncode == 5, (r2.returncode, r2.stderr)
    assert b"wayland-framering-test" in r2.stderr and b":4095" in r2.stderr


@pytest.fixture
def live_wayland_socket(tmp_path):
    """A listening Unix socket standing in for a Wayland compositor (it answers the viewer's
    connect, nothing more); yields the environment that names it (WAYLAND_DISPLAY in a private
    XDG_RUNTIME_DIR), QT_QPA_PLATFORM unset so that Qt picks its platform itself."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(tmp_path / "wayland-framering-live"))
        s.listen(8)
        env = python_env({"WAYLAND_DISPLAY": "wayland-framering-live", "XDG_RUNTIME_DIR": str(tmp_path)})
        env.pop("QT_QPA_PLATFORM", None)
        yield env


def qt_wayland_plugin_missing() -> bool:
    """Whether the Qt that OpenCV uses here has platform plugins but no wayland one (the case the
    next tests are about; a machine with qtwayland5 installed cannot show it)."""
    dirs = view_mod.qt_platform_plugin_dirs(cv2) if view_mod.opencv_uses_qt(cv2) else []
    return bool(dirs) and not any(n.startswith("libqwayland") for d in dirs for n in os.listdir(d))


def test_live_wayland_without_qt_wayland_plugin_refuses_cleanly(ring_name, live_wayland_socket):
    """A compositor answers at WAYLAND_DISPLAY, DISPLAY is unset, and OpenCV's Qt has no wayland
    platform plugin: Qt would try xcb, find no X server and abort the process (SIGABRT) at the
    first window. The viewer says so in one line and exits 5 instead."""
    if not qt_wayland_plugin_missing():
        pytest.skip("OpenCV here does not use a Qt without a wayland plugin")
    env = live_wayland_socket
    env.pop("DISPLAY", None)
    r = view_one_frame(ring_name, env)
    assert r.returncode == 5, (r.returncode, r.stderr)
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "wayland-framering-live" in lines[0] and "plugin" in lines[0], lines


def test_live_wayland_and_x_without_qt_wayland_plugin_uses_x(ring_name, live_wayland_socket, xvfb):
    """The same with an X server too, in a session that says it is Wayland's: Qt would look for
    its missing wayland plugin first. The viewer sends it to X (QT_QPA_PLATFORM=xcb), which
    shows the frame: no word from Qt about a plugin."""
    if not qt_wayland_plugin_missing():
        pytest.skip("OpenCV here does not use a Qt without a wayland plugin")
    env = live_wayland_socket
    env.update({"DISPLAY": xvfb, "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "sway"})
    r = view_one_frame(ring_name, env)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert b"qt.qpa" not in r.stderr, r.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_not_a_file_at_the_name_ends_with_4(ring_name, kind):
    """10.7: a directory or a FIFO at the ring's name is 'not a ring' (4), as for framering-view
    and framering-dump."""
    path = f"/dev/shm/{ring_name}"
    os.mkdir(path) if kind == "directory" else os.mkfifo(path)
    try:
        r = run_view([ring_name, "--headless", "--timeout", "1"])
    finally:
        os.rmdir(path) if kind == "directory" else os.unlink(path)
    assert r.returncode == view_mod.EXIT_BAD_RING == 4, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and b"not a framering ring" in r.stderr, r.stderr


def test_missing_ring_exit_2(ring_name):
    r = run_view([ring_name, "--headless", "--timeout", "0.2"])
    assert r.returncode == 2 and ring_name.encode() in r.stderr


def test_headless_until_end_of_stream(ring_name, procs):
    capture = program("FRAMERING_CAPTURE")
    cap = procs([capture, "-r", ring_name, "--quiet", "-s", "source", sample("FRAMERING_SAMPLE_SMALL")])
    r = run_view([ring_name, "--headless", "--every", "--timeout", "10"])
    assert r.returncode == 0, r.stderr.decode()
    assert b"end of stream: 90 frames" in r.stderr
    assert cap.wait(timeout=30) == 0


def test_headless_frames_limit(ring_name):
    with framering.Producer(ring_name, slots=8, width=32, height=32) as prod:
        for i in range(6):
            prod.write_frame(np.full((32, 32, 3), i, np.uint8))
        r = run_view([ring_name, "--headless", "--every", "--frames", "4", "--timeout", "5"])
        assert r.returncode == 0, r.stderr.decode()
        assert b"4 frames" in r.stderr
        assert prod.stats.records_read == 4


def wait_attached(name: str, proc) -> None:
    """Wait until PROC is the ring's consumer (so a signal lands in its read loop, not in its imports)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if framering.inspect(name).consumer_pid == proc.pid:
            return
        time.sleep(0.02)
    pytest.fail(f"process {proc.pid} never attached to ring {name}")


def test_headless_ctrl_c_and_peer_death(ring_name, procs):
    code = textwrap.dedent("""
        import sys, time, framering
        p = framering.Producer(sys.argv[1], capacity=1 << 16)
        print("ready", flush=True)
        time.sleep(120)
    """)
    prod = procs([sys.executable, "-c", code, ring_name], env=python_env())
    try:
        assert prod.stdout.readline().strip() == b"ready"
        v = procs(VIEW + [ring_name, "--headless", "--timeout", "10"], env=python_env())
        wait_attached(ring_name, v)
        time.sleep(0.2)  # into the frame wait
        v.send_signal(signal.SIGINT)
        out, err = v.communicate(timeout=10)
        assert v.returncode == 0 and b"interrupted" in err, err.decode()

        v = procs(VIEW + [ring_name, "--headless", "--timeout", "10"], env=python_env())
        wait_attached(ring_name, v)
        os.kill(prod.pid, signal.SIGKILL)
        out, err = v.communicate(timeout=20)
        assert v.returncode == 3 and b"producer died" in err, err.decode()
    finally:
        remove_segment(ring_name)


WAITING = "waiting for the next producer"


def wait_for_count(path, text: str, count: int, proc, timeout: float = 60) -> str:
    """Wait until TEXT occurs COUNT times in the file PATH (PROC's stderr); fail if PROC ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = path.read_text(errors="replace")
        if out.count(text) >= count:
            return out
        assert proc.poll() is None, f"the viewer ended ({proc.returncode}) before {text!r} x{count}:\n{out}"
        time.sleep(0.02)
    pytest.fail(f"{text!r} not printed {count} times within {timeout} s:\n{path.read_text()}")


def clean_run(name: str, frames: int = 3) -> None:
    """A producer in this process: waits for the viewer, writes FRAMES frames and ends the stream."""
    with framering.Producer(name, slots=4, width=64, height=48) as prod:
        prod.wait_consumers(1, timeout=30)
        for i in range(frames):
            prod.write_frame(np.full((48, 64, 3), 40 * i, np.uint8), timeout=30)


ENDLESS = textwrap.dedent("""
    import sys, time, numpy as np, framering
    with framering.Producer(sys.argv[1], slots=4, width=64, height=48) as p:
        while True:
            p.write_frame(np.zeros((48, 64, 3), np.uint8), timeout=30)
            time.sleep(0.01)
""")


def killed_run(name: str, procs) -> None:
    """A producer process that writes until the viewer has read from it, then dies by SIGKILL."""
    prod = procs([sys.executable, "-c", ENDLESS, name], env=python_env())
    deadline = time.monotonic() + 60
    while True:
        try:
            if framering.inspect(name).records_read >= 1:
                break
        except framering.RingNotFound:
            pass
        assert prod.poll() is None, prod.communicate()[1].decode()
        assert time.monotonic() < deadline, "the viewer never read from the producer"
        time.sleep(0.02)
    prod.kill()
    prod.wait()


def test_reconnect_after_end_of_stream(ring_name, tmp_path, procs):
    """--reconnect outlives a producer that ends its stream (and --exit-at-eos still ends there)."""
    err_path = tmp_path / "view.err"
    with open(err_path, "wb") as err:
        v = procs(VIEW + [ring_name, "--headless", "--every", "--reconnect"], env=python_env(), stderr=err)
    clean_run(ring_name, 3)
    wait_for_count(err_path, WAITING, 1, v)
    clean_run(ring_name, 5)
    wait_for_count(err_path, WAITING, 2, v)
    time.sleep(0.3)  # into the wait for a producer
    v.send_signal(signal.SIGINT)
    assert v.wait(timeout=30) == 0
    text = err_path.read_text()
    assert f"end of stream after 3 frames from this producer; {WAITING} of ring '{ring_name}'" in text
    assert "end of stream after 5 frames from this producer" in text and text.count("reconnected") == 1
    assert "interrupted: 8 frames" in text and "1 reconnects, frames from 2 producers" in text, text

    with open(err_path, "wb") as err:
        v = procs(VIEW + [ring_name, "--headless", "--every", "--reconnect", "--exit-at-eos"], env=python_env(),
                  stderr=err)
    clean_run(ring_name, 2)
    assert v.wait(timeout=30) == 0
    text = err_path.read_text()
    assert "end of stream: 2 frames" in text and WAITING not in text, text


LINGER = textwrap.dedent("""
    import sys, time, numpy as np, framering
    p = framering.Producer(sys.argv[1], slots=4, width=64, height=48)
    p.wait_consumers(1, timeout=30)
    for i in range(2):
        p.write_frame(np.zeros((48, 64, 3), np.uint8), timeout=30)
    p.mark_eos()
    time.sleep(60)
""")


def test_ended_ring_is_not_attached_again(ring_name, tmp_path, procs):
    """A producer that keeps its ring after marking end of stream (as framering-capture does while
    slower consumers drain it), or dies there: the viewer waits for the next producer, not for that
    ring again."""
    err_path = tmp_path / "view.err"
    with open(err_path, "wb") as err:
        v = procs(VIEW + [ring_name, "--headless", "--every", "--reconnect"], env=python_env(), stderr=err)
    with framering.Producer(ring_name, slots=4, width=64, height=48) as prod:
        prod.wait_consumers(1, timeout=30)
        for i in range(3):
            prod.write_frame(np.full((48, 64, 3), i, np.uint8), timeout=30)
        prod.mark_eos()
        wait_for_count(err_path, WAITING, 1, v)
        time.sleep(1.0)  # the ended ring stays under the name meanwhile
    # This one dies while it lingers: its ended ring stays until the next producer reclaims the name.
    lingering = procs([sys.executable, "-c", LINGER, ring_name], env=python_env())
    wait_for_count(err_path, WAITING, 2, v)
    lingering.kill()
    lingering.wait()
    time.sleep(0.5)
    clean_run(ring_name, 2)
    wait_for_count(err_path, WAITING, 3, v)
    v.send_signal(signal.SIGINT)
    assert v.wait(timeout=30) == 0
    text = err_path.read_text()
    assert text.count("reconnected") == 2 and "interrupted: 7 frames" in text, text


RECONNECT_RUNS = 20


def test_reconnects_leak_nothing(ring_name, tmp_path, procs):
    """RECONNECT_RUNS producers one after the other, ending cleanly and by SIGKILL in turn: the viewer
    shows frames of every one, and neither its file descriptors nor its /dev/shm mappings grow."""
    import procinfo
    err_path = tmp_path / "view.err"
    with open(err_path, "wb") as err:
        v = procs(VIEW + [ring_name, "--headless", "--every", "--reconnect"], env=python_env(), stderr=err)
    held = []
    for n in range(1, RECONNECT_RUNS + 1):
        if n % 2:
            clean_run(ring_name)
        else:
            killed_run(ring_name, procs)
        wait_for_count(err_path, WAITING, n, v)
        held.append(procinfo.resources(v.pid)[:2])
    v.send_signal(signal.SIGINT)
    assert v.wait(timeout=30) == 0
    text = err_path.read_text()
    fds, shm = zip(*held)
    assert set(fds) == {fds[0]}, f"file descriptors while waiting, run by run: {fds}"
    assert set(shm) == {0}, f"/dev/shm mappings while waiting (no ring open), run by run: {shm}"
    ends = [line for line in text.splitlines() if WAITING in line]
    assert len(ends) == RECONNECT_RUNS, text
    for n, line in enumerate(ends, 1):
        assert line.startswith(f"{view_mod.PROG}: {'end of stream' if n % 2 else 'producer died'} after "), line
        assert " after 0 frames" not in line, f"nothing shown from producer {n}: {line}"
    assert f"{RECONNECT_RUNS - 1} reconnects, frames from {RECONNECT_RUNS} producers" in text, text


# The test pattern: four quadrants whose colours change under an R/B swap
# (red->blue, yellow->cyan), so a wrong conversion cannot pass.
QUADS = {"red": (0, 0, 255), "green": (0, 255, 0), "yellow": (0, 255, 255), "white": (255, 255, 255)}
ABSENT = {"blue": (255, 0, 0), "cyan": (255, 255, 0)}


def pattern(w=320, h=240) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:h // 2, :w // 2] = QUADS["red"]
    img[:h // 2, w // 2:] = QUADS["green"]
    img[h // 2:, :w // 2] = QUADS["yellow"]
    img[h // 2:, w // 2:] = QUADS["white"]
    return img


def as_format(img: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "bgr24":
        return img
    if fmt == "rgb24":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if fmt == "gray8":
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    i420 = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)
    if fmt == "i420":
        return i420
    h, w = img.shape[:2]
    y, u, v = i420[:h], i420[h:h + h // 4].reshape(h // 2, w // 2), i420[h + h // 4:].reshape(h // 2, w // 2)
    uv = np.dstack([u, v]).reshape(h // 2, w)
    return np.vstack([y, uv])


def count_colour(img: np.ndarray, bgr, tol: int = 40) -> int:
    return int(np.count_nonzero((np.abs(img.astype(np.int16) - np.array(bgr)) <= tol).all(axis=2)))


@pytest.mark.parametrize("fmt", ["bgr24", "rgb24", "gray8", "i420", "nv12"])
def test_to_bgr_conversions(ring_name, fmt):
    img = pattern(64, 48)
    with framering.Producer(ring_name, slots=2, width=64, height=48, format=fmt) as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        prod.write_frame(as_format(img, fmt), fmt)
        with cons.next_frame(timeout=1) as f:
            bgr = view_mod.to_bgr(f, cv2)
    assert bgr.shape == (48, 64, 3)
    if fmt == "gray8":
        expect = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        assert np.array_equal(bgr, expect)
    else:
        # 4:2:0 chroma round trip: exact inside the quadrants, off only at their edges.
        assert np.abs(bgr[4:20, 4:28].astype(int) - img[4:20, 4:28]).max() <= 8


def test_to_bgr_odd_size_i420(ring_name):
    with framering.Producer(ring_name, slots=2, width=33, height=17, format="i420") as prod, \
            framering.Consumer(ring_name, timeout=1) as cons:
        with prod.reserve_frame(33, 17, "i420") as out:
            y, u, v = out.planes
            y[:] = 81
            u[:] = 90
            v[:] = 240  # red
        with cons.next_frame(timeout=1) as f:
            bgr = view_mod.to_bgr(f, cv2)
    assert bgr.shape == (17, 33, 3)  # the whole picture: the last row and column too
    for at in ((8, 16), (16, 32)):
        b, g, r = (int(c) for c in bgr[at])
        assert r > 200 and g < 60 and b < 60, at


@pytest.mark.parametrize("fmt", ["bgr24", "rgb24", "i420"])
def test_window_under_xvfb_shows_frame_colours(ring_name, tmp_path, procs, fmt):
    if shutil.which("xvfb-run") is None or shutil.which("import") is None:
        pytest.skip("xvfb-run or ImageMagick's import not installed (apt-get install xvfb imagemagick)")
    shot, ready, done = tmp_path / "shot.png", tmp_path / "ready", tmp_path / "done"
    # Overlay on: for bgr24 its copy cost is printed in the summary.
    view_cmd = shlex.join(VIEW + [ring_name, "--every", "--timeout", "20"])
    script = textwrap.dedent(f"""
        {view_cmd} &
        V=$!
        i=0
        while [ ! -e {ready} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
        import -window root {shot}
        touch {done}
        wait $V
        echo "viewer-exit=$?"
    """)
    env = python_env({"XDG_RUNTIME_DIR": str(tmp_path)})
    env.pop("WAYLAND_DISPLAY", None)
    frame = as_format(pattern(), fmt)
    with framering.Producer(ring_name, slots=4, width=320, height=240, format=fmt) as prod:
        x = procs(["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", "sh", "-c", script], env=env)
        # Keep showing the pattern until the window surely painted it: the
        # viewer releases a frame only after imshow + waitKey.
        for _ in range(15):
            prod.write_frame(frame, fmt, timeout=30)
        deadline = time.monotonic() + 60
        while prod.stats.records_read < 15 and time.monotonic() < deadline and x.poll() is None:
            time.sleep(0.05)
        assert prod.stats.records_read == 15, "the viewer did not read the frames"
        time.sleep(0.5)  # a last repaint
        ready.touch()
        while not done.exists() and time.monotonic() < deadline and x.poll() is None:
            time.sleep(0.05)
        prod.mark_eos()
    out, err = x.communicate(timeout=60)
    assert x.returncode == 0, err.decode()
    assert b"viewer-exit=0" in out, err.decode()
    assert b"end of stream: 15 frames" in err
    if fmt == "bgr24":
        assert b"overlay copy" in err
    img = cv2.imread(str(shot))
    assert img is not None, "no screenshot"
    for name, bgr in QUADS.items():
        n = count_colour(img, bgr)
        assert n >= 10000, f"{fmt}: only {n} {name} pixels on screen (quadrant is 19200)"
    for name, bgr in ABSENT.items():
        n = count_colour(img, bgr)
        assert n < 500, f"{fmt}: {n} {name} pixels on screen: colour channels swapped?"


@pytest.fixture
def xvfb():
    """A private Xvfb server; yields its display name (":N", picked free by the server itself)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    rfd, wfd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(wfd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(wfd)
    try:
        with os.fdopen(rfd) as r:
            number = r.readline().strip()  # written once the server accepts clients
        assert number.isdigit(), f"Xvfb did not report a display (exit {server.poll()})"
        yield ":" + number
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_x_server_on_its_abstract_socket_only_is_a_display(xvfb, monkeypatch):
    """An X server whose socket file in /tmp/.X11-unix is not there (a container that shares the
    network namespace but not /tmp; a cleaned /tmp) still answers on Linux's abstract socket of
    the same name, which libxcb tries first: that is a display, not 'cannot connect'."""
    num = xvfb.lstrip(":")
    os.unlink(f"/tmp/.X11-unix/X{num}")  # our own private server's
    r = subprocess.run(["xdpyinfo", "-display", xvfb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30) if shutil.which("xdpyinfo") else None
    assert r is None or r.returncode == 0, "X clients still connect"
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert view_mod.display_problem() is None


def window_centre(display: str, title: str):
    """Centre of the top-level window called TITLE on DISPLAY (xwininfo), or None while there is none."""
    r = subprocess.run(["xwininfo", "-display", display, "-name", title], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=10)
    if r.returncode != 0:
        return None
    if "Map State: IsViewable" not in r.stdout:
        return None  # created, not yet on screen: a key pressed now would go nowhere
    geo = {k.strip(): int(v) for k, v in (line.split(":", 1) for line in r.stdout.splitlines()
                                          if line.strip().startswith(("Absolute upper-left", "Width", "Height")))}
    if geo.get("Width", 0) < 50:  # mapped, not yet sized
        return None
    return geo["Absolute upper-left X"] + geo["Width"] // 2, geo["Absolute upper-left Y"] + geo["Height"] // 2


def test_window_keys_save_and_quit(ring_name, tmp_path, procs, xvfb):
    """In a real window: 's' saves the shown frame as PNG (pixels of the frame, no overlay), 'q' quits
    with exit 0 while the producer still has frames to give."""
    if shutil.which("xwininfo") is None:
        pytest.skip("xwininfo (x11-utils) is not installed: the window cannot be found")

    frame = pattern()
    env = python_env({"DISPLAY": xvfb, "XDG_RUNTIME_DIR": str(tmp_path)})
    env.pop("WAYLAND_DISPLAY", None)
    err_path = tmp_path / "view.err"
    with framering.Producer(ring_name, slots=4, width=320, height=240) as prod:
        with open(err_path, "wb") as err:
            v = procs(VIEW + [ring_name, "--every", "--timeout", "20", "--save-dir", str(tmp_path)], env=env,
                      stderr=err)
        keys = XKeys(xvfb)
        pressed = []
        s_again_at = 0.0
        deadline = time.monotonic() + 30
        # Keep frames coming: the viewer handles 's' while it shows one.
        while v.poll() is None and time.monotonic() < deadline:
            try:
                prod.write_frame(frame, timeout=0.05)
            except framering.Timeout:
                pass
            except framering.ConsumerDetached:
                # The viewer left (after 'q', before it exits): the normal end here. Writing on
                # until its process is gone used to raise this from the test itself, now and then.
                assert pressed == ["s", "q"], f"the viewer left before 'q'; it said: {err_path.read_text()}"
                break
            if not pressed or (pressed == ["s"] and time.monotonic() > s_again_at
                               and not list(tmp_path.glob("framering-*.png"))):
                # A key typed while Qt is still setting the window up can be lost (seen under
                # load): if no PNG came, look for the window again and type 's' again.
                centre = window_centre(xvfb, f"framering: {ring_name}")
                if centre:
                    keys.move(*centre)
                    keys.press("s")
                    pressed[:] = ["s"]
                    s_again_at = time.monotonic() + 2.0
            elif pressed == ["s"] and list(tmp_path.glob("framering-*.png")):
                keys.press("q")
                pressed.append("q")
            time.sleep(0.02)
        keys.close()
        assert pressed == ["s", "q"], f"keys typed: {pressed}; viewer said: {err_path.read_text()}"
        assert v.wait(timeout=30) == 0, err_path.read_text()
    text = err_path.read_text()
    assert "saved " in text and ": quit:" in text, text
    saved = list(tmp_path.glob(f"framering-{ring_name}-*.png"))
    assert saved
    for path in saved:  # one per 's' that arrived
        img = cv2.imread(str(path))
        assert img is not None and np.array_equal(img, frame), "the saved PNG is not the frame's pixels"


def test_window_waits_dimmed_between_producers(ring_name, tmp_path, procs, xvfb):
    """--reconnect in a real window: after a clean end of stream the last picture stays, dimmed, with
    "waiting for producer" on it and in the window title; 'q' while waiting quits with 0."""
    if shutil.which("xwininfo") is None or shutil.which("import") is None:
        pytest.skip("xwininfo (x11-utils) or ImageMagick's import is not installed")
    env = python_env({"DISPLAY": xvfb, "XDG_RUNTIME_DIR": str(tmp_path)})
    env.pop("WAYLAND_DISPLAY", None)
    err_path, shot = tmp_path / "view.err", tmp_path / "shot.png"
    with open(err_path, "wb") as err:
        v = procs(VIEW + [ring_name, "--every", "--reconnect", "--no-overlay"], env=env, stderr=err)
    with framering.Producer(ring_name, slots=4, width=320, height=240) as prod:
        prod.wait_consumers(1, timeout=30)
        for _ in range(3):
            prod.write_frame(pattern(), timeout=30)
    wait_for_count(err_path, WAITING, 1, v)
    title = f"framering: {ring_name} - waiting for producer"
    deadline = time.monotonic() + 30
    dimmed = {name: tuple(c * 95 // 255 for c in bgr) for name, bgr in QUADS.items()}
    while True:
        centre = window_centre(xvfb, title)
        counts = {}
        if centre:
            subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=30)
            img = cv2.imread(str(shot))
            counts = {name: count_colour(img, bgr, tol=12) for name, bgr in dimmed.items()}
            if min(counts.values()) >= 10000:
                break
        assert time.monotonic() < deadline, f"window {title!r}: {centre}, dimmed quadrants seen: {counts}"
        time.sleep(0.2)
    # The text is written across the picture's middle: white pixels inside the dimmed picture (the
    # window's own toolbar may be light too, outside it); none of the undimmed colours are left.
    ys, xs = (np.abs(img.astype(np.int16) - np.array(dimmed["red"])) <= 12).all(axis=2).nonzero()
    y0, x0 = ys.min(), xs.min()  # the red quadrant is the picture's top left quarter
    picture = img[y0:y0 + 2 * (ys.max() + 1 - y0), x0:x0 + 2 * (xs.max() + 1 - x0)]
    assert count_colour(picture, QUADS["white"], tol=60) > 30, "no text on the waiting picture"
    assert count_colour(img, QUADS["red"]) < 500 and count_colour(img, QUADS["green"]) < 500
    keys = XKeys(xvfb)
    keys.move(*centre)
    keys.press("q")
    keys.close()
    assert v.wait(timeout=30) == 0, err_path.read_text()
    text = err_path.read_text()
    assert ": quit: 3 frames" in text and "0 reconnects, frames from 1 producers" in text, text


# ---------------------------------------------------------------- the exit-code table, damaged rings

def test_exit_codes_match_the_c_consumers():
    """The Python viewer uses the exit-code table every framering consumer shares; its numbers
    are those of app/common/consumer_exit.h (parsed here, so the two cannot drift apart)."""
    import re
    from conftest import REPO
    text = (REPO / "app" / "common" / "consumer_exit.h").read_text()
    c = {m.group(1): int(m.group(2)) for m in re.finditer(r"CONSUMER_EXIT_(\w+) = (\d+)", text)}
    py = {"DONE": view_mod.EXIT_DONE, "USAGE": view_mod.EXIT_USAGE, "NO_RING": view_mod.EXIT_NO_RING,
          "PRODUCER_DIED": view_mod.EXIT_PRODUCER_DIED, "BAD_RING": view_mod.EXIT_BAD_RING,
          "DISPLAY": view_mod.EXIT_DISPLAY, "OTHER": view_mod.EXIT_OTHER,
          "PRODUCER_FAILED": view_mod.EXIT_PRODUCER_FAILED}
    assert c == py
    r = run_view(["--help"])
    assert b"4 the ring is corrupt or foreign" in r.stdout.replace(b"\n", b" ").replace(b"  ", b" ")


def full_ring(name: str, frames_at_least: int = 3) -> framering.Producer:
    """A Producer whose ring is full (nothing moves until a consumer reads)."""
    prod = framering.Producer(name, slots=4, width=64, height=48)
    img = np.zeros((48, 64, 3), np.uint8)
    n = 0
    while True:
        try:
            with prod.reserve_frame(64, 48, timeout=0) as out:
                out.array[:] = n
        except framering.Timeout:
            break
        n += 1
    assert n >= frames_at_least
    return prod


@pytest.mark.parametrize("kind", ["unknown-type", "pad-zero-length", "huge-length", "frame-version"])
def test_corrupt_ring_ends_with_4(ring_name, kind):
    """9.5: a corrupt ring (damage from tests/common/shmring.py, after the first frame) ends the Python
    viewer as it ends framering-view and framering-dump: one line naming the ring, exit 4, no spin."""
    import shmring
    prod = full_ring(ring_name)
    try:
        rc, err, cpu, wall = shmring.consume_damaged(
            shmring.Segment(ring_name), kind,
            VIEW + [ring_name, "--headless", "--every", "--quiet", "--timeout", "0"], 30)
    finally:
        prod.close()
    shmring.assert_one_line_exit_4(view_mod.PROG, ring_name, rc, err, cpu, wall, "")


def test_producer_failure_ends_with_7(ring_name):
    """A producer that ends the stream on an error ends the Python viewer as it ends framering-view
    and framering-dump: every frame shown, then exit 7 and one line with the reason, escaped."""
    prod = full_ring(ring_name)
    try:
        prod.mark_eos_error("decoder failed\x1b]0;x\x07", -errno.EIO)
        r = run_view([ring_name, "--headless", "--every", "--quiet", "--timeout", "0"])
    finally:
        prod.close()
    assert r.returncode == view_mod.EXIT_PRODUCER_FAILED == 7, r.stderr
    assert r.stderr.decode().strip().splitlines() == [
        f"{view_mod.PROG}: ring '{ring_name}': the producer failed: decoder failed\\x1b]0;x\\x07"], r.stderr


def test_invalid_frame_is_skipped(ring_name):
    """A record whose frame header is broken is skipped with one warning; the rest is shown and the
    viewer ends 0 at end of stream."""
    import shmring
    prod = full_ring(ring_name)
    total = prod.stats.records_written
    seg = shmring.Segment(ring_name)
    shmring.damage(seg, "frame-magic")
    seg.close()
    prod.mark_eos()
    r = run_view([ring_name, "--headless", "--every", "--timeout", "0"])
    prod.close()
    assert r.returncode == 0, r.stderr.decode()
    assert f"end of stream: {total - 1} frames".encode() in r.stderr
    assert r.stderr.count(b"not a valid frame") == 1


def test_latency_samples_are_bounded(monkeypatch):
    """A viewer left running keeps only the newest latency samples (it grew 8 B per frame, for ever)."""
    monkeypatch.setattr(view_mod.Stats, "LAT_MAX_SAMPLES", 1000)
    stats = view_mod.Stats()
    for i in range(2500):
        stats.add(i / 1e3, 0)
    assert stats.frames == 2500
    assert len(stats.latencies) == 1000 and stats.latencies[0] == 1.5 and stats.latencies[-1] == 2.499
    assert len(stats.times) == 60
    assert "max 2499.00" in stats.summary("t", "end of stream")
