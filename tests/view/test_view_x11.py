"""test_view_x11.py - framering-view's real X11 window under Xvfb: a screenshot of the screen shows the frame sent.

ctest runs this file inside `xvfb-run -a -s "-screen 0 1280x720x24"`. The viewer opens a real window
(whatever renderer SDL picks there: OpenGL through Mesa, or software), holds the last frame at end of
stream, and `xwd -root` grabs the screen. The frame is located in the screenshot by template matching
and must match the sent frame closely everywhere and within a small tolerance at every block centre
(the blocks are large, so the renderer's chroma filtering only touches their edges). Then the keys
s (save the shown frame) and q (quit) are typed through XTEST. A second test runs a window manager
(openbox) and checks space (pause/resume: the picture stops and moves on), f (fullscreen covers the
screen, f again restores) and the window title.
"""
import os
import shutil
import struct
import subprocess
import time

import cv2
import numpy as np
import pytest

import viewtest as vt
from x11keys import XKeys
from viewtest import TESTSRC, VIEW


def read_xwd(path):
    """Parse an XWD (X Window Dump) file of a 24/32-bit TrueColor screen into a BGR image."""
    data = open(path, "rb").read()
    hdr = struct.unpack(">25I", data[:100])
    (header_size, version, fmt, depth, width, height, _xoff, byte_order, _unit, _bit_order, _pad, bpp,
     bytes_per_line, _vclass, rmask, gmask, bmask, _bits_rgb, _cmap_entries, ncolors) = hdr[:20]
    assert version == 7 and fmt == 2 and bpp in (24, 32), f"unsupported XWD: version {version} format {fmt} bpp {bpp}"
    off = header_size + ncolors * 12
    nb = bpp // 8
    rows = np.frombuffer(data, np.uint8, height * bytes_per_line, off).reshape(height, bytes_per_line)
    b = rows[:, : width * nb].reshape(height, width, nb).astype(np.uint32)
    if byte_order != 0:  # MSBFirst
        b = b[:, :, ::-1]
    px = sum(b[:, :, i] << (8 * i) for i in range(nb))

    def channel(mask):
        shift = (mask & -mask).bit_length() - 1
        return ((px & mask) >> shift).astype(np.uint8)

    return np.stack([channel(bmask), channel(gmask), channel(rmask)], -1)


def expected_frame(w, h, n):
    img = np.zeros((h, w, 3), np.uint8)
    for by in range(8):
        for bx in range(8):
            r, g, b = vt.pattern_rgb(bx, by, n)
            img[(by * h + 7) // 8:((by + 1) * h + 7) // 8, (bx * w + 7) // 8:((bx + 1) * w + 7) // 8] = (b, g, r)
    return img


@pytest.fixture
def ring():
    name = vt.unique_ring("x11")
    yield name
    vt.remove_ring(name)


def test_window_shows_the_frame(tmp_path, ring):
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display: run under xvfb-run (ctest does when xvfb-run is installed)")
    if not shutil.which("xwd"):
        pytest.skip("xwd (x11-apps) is not installed")
    w, h, frames = 640, 360, 3
    err_path, shot = tmp_path / "view.err", tmp_path / "shot.xwd"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--every", "--hold"],
                                stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    try:
        prod = vt.start([TESTSRC, "--ring", ring, "--wait-consumer", "20", "--format", "i420", "--size",
                         f"{w}x{h}", "--frames", str(frames)])
        assert vt.finish(prod)[0] == 0
        vt.wait_for_line(err_path, "holding frame", view)
        want = expected_frame(w, h, frames - 1)
        # The last present may still be on its way to the X server: grab until it shows (bounded).
        deadline = time.monotonic() + 20
        while True:
            subprocess.run(["xwd", "-root", "-silent", "-out", str(shot)], check=True, timeout=vt.TIMEOUT)
            screen = read_xwd(shot)
            res = cv2.matchTemplate(screen, want, cv2.TM_SQDIFF_NORMED)
            _, _, (x, y), _ = cv2.minMaxLoc(res)
            got = screen[y:y + h, x:x + w]
            diff = np.abs(got.astype(int) - want.astype(int))
            if diff.mean() < 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        cv2.imwrite(str(tmp_path / "shot.png"), screen)
        assert view.poll() is None, "the viewer left although --hold keeps it up until q"
        # Keys, typed through XTEST with the pointer over the window (no window manager: focus
        # follows the pointer): s saves the shown frame, q quits.
        keys = XKeys()
        keys.move(x + w // 2, y + h // 2)
        keys.press("s")
        vt.wait_for_line(err_path, "saved frame", view)
        keys.press("q")
        assert view.wait(timeout=vt.TIMEOUT) == 0
    finally:
        vt.stop(view)
    text = err_path.read_text()
    assert "video driver x11" in text, text
    saved = cv2.imread(str(tmp_path / f"framering-view-{frames - 1:06d}.bmp"), cv2.IMREAD_COLOR)
    assert saved is not None and saved.shape == want.shape
    assert np.abs(saved.astype(int) - want.astype(int)).mean() < 2
    assert "end of stream: shown 3 frames" in text
    # The frame is I420 drawn by the X11 renderer: close everywhere (chroma filtering at block
    # edges differs between renderers) and within YUV_TOLERANCE + 2 at every block centre.
    assert got.shape == want.shape, f"frame not found on screen (best match at {x},{y})"
    assert diff.mean() < 2, f"mean difference {diff.mean():.2f} at {x},{y}; see {tmp_path / 'shot.png'}"
    for by in range(8):
        for bx in range(8):
            cx, cy = bx * w // 8 + w // 16, by * h // 8 + h // 16
            assert diff[cy, cx].max() <= vt.YUV_TOLERANCE + 2, (bx, by, got[cy, cx], want[cy, cx])
    # The window is centred on the 1280x720 screen (SDL_WINDOWPOS_CENTERED, no window manager).
    assert (x, y) == ((screen.shape[1] - w) // 2, (screen.shape[0] - h) // 2)


def window_geometry(ring):
    """(title, width, height, x, y) of the viewer's window, found by its title (which starts with
    the ring name), from xwininfo; x, y are absolute screen coordinates. None if there is none yet."""
    out = subprocess.run(["xwininfo", "-root", "-tree"], check=True, capture_output=True, text=True,
                         timeout=vt.TIMEOUT).stdout
    for line in out.splitlines():
        if f'"{ring} ' in line:
            title = line.split('"')[1]
            size = [tok for tok in line.split() if "x" in tok and "+" in tok][0]
            w, h = size.split("+")[0].split("x")
            _, x, y = line.split()[-1].split("+")  # the last "+X+Y" is absolute
            return title, int(w), int(h), int(x), int(y)
    return None


def grab(path):
    subprocess.run(["xwd", "-root", "-silent", "-out", str(path)], check=True, timeout=vt.TIMEOUT)
    return read_xwd(path)


def test_keys_pause_and_fullscreen_and_title(tmp_path, ring):
    """space pauses (the picture stops changing although the producer goes on) and resumes; f makes
    the window cover the screen and f again restores it; the title names ring, size, format, fps."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display: run under xvfb-run (ctest does when xvfb-run is installed)")
    for tool in ("xwd", "xwininfo"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} (x11-apps / x11-utils) is not installed")
    # Fullscreen is a request to the window manager (_NET_WM_STATE_FULLSCREEN), as on every desktop:
    # run a real one. It gives the new window the keyboard focus, too.
    assert shutil.which("openbox"), "openbox (a window manager) is needed: .ci/install-deps installs it"
    wm = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # let it take the screen before the viewer maps its window
    w, h = 640, 360
    err_path = tmp_path / "view.err"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--latest", "--size", f"{w}x{h}"],
                                stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    prod = vt.start([TESTSRC, "--ring", ring, "--wait-consumer", "20", "--format", "bgr24", "--size",
                     f"{w}x{h}", "--frames", "0", "--fps", "25"])
    try:
        vt.wait_for_line(err_path, "video driver x11", view)
        deadline = time.monotonic() + 20
        geo = None
        while time.monotonic() < deadline:
            geo = window_geometry(ring)
            if geo and " fps" in geo[0]:
                break
            time.sleep(0.1)
        assert geo, "no viewer window found by xwininfo"
        title, win_w, win_h, win_x, win_y = geo
        assert f"{w}x{h} bgr24" in title and " fps" in title and "latency" in title, title
        assert (win_w, win_h) == (w, h), geo

        def picture(tag):
            """The window's client area only: the title bar's text (fps, counts) moves on while paused."""
            return grab(tmp_path / f"{tag}.xwd")[win_y:win_y + h, win_x:win_x + w]

        screen_w, screen_h = grab(tmp_path / "s0.xwd").shape[1::-1]
        keys = XKeys()
        live = picture("live")
        time.sleep(0.5)
        assert not np.array_equal(live, picture("live2")), \
            "the picture does not change while playing: the test could not see a pause"

        keys.press("space")
        time.sleep(0.5)  # let the key arrive and the last present land
        a = picture("paused1")
        time.sleep(0.6)  # 15 frames at 25 fps would have changed every block's colour
        b = picture("paused2")
        assert np.array_equal(a, b), "the picture changed while paused"
        keys.press("space")
        time.sleep(0.6)
        assert not np.array_equal(b, picture("resumed")), "the picture did not move on after the second space"

        def size_becomes(want):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and window_geometry(ring)[1:3] != want:
                time.sleep(0.1)
            return window_geometry(ring)[1:3] == want

        keys.press("f")
        assert size_becomes((screen_w, screen_h)), "f did not make the window cover the screen"
        keys.press("f")
        assert size_becomes((w, h)), "f again did not restore the window"

        keys.press("q")
        assert view.wait(timeout=vt.TIMEOUT) == 0
    finally:
        vt.stop(view)
        vt.stop(prod)
        vt.stop(wm)


def test_reconnect_window_waits_dimmed(tmp_path, ring):
    """--reconnect, after a clean end of stream: the window stays, shows the last frame dimmed and says
    "waiting for producer" in its title; the next producer's frames show as usual; q while waiting
    ends the viewer with 0 and a summary that counts the reconnect."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display: run under xvfb-run (ctest does when xvfb-run is installed)")
    for tool in ("xwd", "xwininfo"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} (x11-apps / x11-utils) is not installed")
    w, h = 640, 360
    err_path = tmp_path / "view.err"
    with open(err_path, "w") as err:
        view = subprocess.Popen([VIEW, "-r", ring, "--wait", "20", "--every", "--reconnect"],
                                stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    try:
        screen_w, screen_h = grab(tmp_path / "s0.xwd").shape[1::-1]
        x, y = (screen_w - w) // 2, (screen_h - h) // 2  # centred, no window manager
        for n, frames in enumerate((3, 5), 1):
            prod = vt.start([TESTSRC, "--ring", ring, "--wait-consumer", "20", "--format", "bgr24", "--size",
                             f"{w}x{h}", "--frames", str(frames)])
            assert vt.finish(prod)[0] == 0
            vt.wait_for_count(err_path, "waiting for the next producer", n, view)
            # The last frame, dimmed: black at alpha 160 over it leaves 95/255 of every channel.
            want = (expected_frame(w, h, frames - 1).astype(int) * 95 + 127) // 255
            deadline = time.monotonic() + 20
            while True:
                got = grab(tmp_path / f"wait{n}.xwd")[y:y + h, x:x + w].astype(int)
                geo = window_geometry(ring)
                if geo and "waiting for producer" in geo[0] and np.abs(got - want).max() <= 3:
                    break
                assert time.monotonic() < deadline, \
                    f"title {geo and geo[0]!r}; max difference from the dimmed frame {np.abs(got - want).max()}"
                time.sleep(0.1)
            assert f"reconnects {n - 1}" in geo[0], geo[0]
        assert view.poll() is None
        keys = XKeys()
        keys.move(x + w // 2, y + h // 2)
        keys.press("q")
        assert view.wait(timeout=vt.TIMEOUT) == 0
    finally:
        vt.stop(view)
    text = err_path.read_text()
    assert "quit: shown 8 frames" in text and "1 reconnects, frames from 2 producers" in text, text
