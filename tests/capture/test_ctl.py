"""test_ctl.py - framering-ctl on hostile input: names in /dev/shm that are not rings (a FIFO, a directory, a symbolic link, a foreign file, libring's creation temporaries, a name with escape sequences) and a ring whose meta area lies.

Run by ctest (tests/capture/CMakeLists.txt) with FRAMERING_CTL, FRAMERING_CAPTURE and
FRAMERING_SAMPLE_SMALL set. Every name made here is unique (pid + random) and removed
on every path. A FIFO used to make `stat` and `rm` block forever in open(); "at once"
is checked only against a generous hang bound.
"""
import mmap
import os
import struct
import subprocess
import time
import uuid

import pytest

CTL = os.environ.get("FRAMERING_CTL", "framering-ctl")
CAPTURE = os.environ.get("FRAMERING_CAPTURE", "framering-capture")
SMALL = os.environ.get("FRAMERING_SAMPLE_SMALL", "assets/sample-320x240.mp4")
HANG = 10  # seconds: far more than any of these takes; only a blocked call reaches it
SHM = "/dev/shm"


def unique(tag):
    return "frtest-ctl-%s-%d-%s" % (tag, os.getpid(), uuid.uuid4().hex[:8])


def remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


@pytest.fixture
def names():
    """Paths in /dev/shm the test creates; all removed afterwards, whatever happened."""
    made = []
    yield made
    for path in made:
        remove(path)


def ctl(*args):
    return subprocess.run([CTL] + list(args), capture_output=True, text=True, timeout=HANG)


def test_ctl_refuses_non_rings_at_once(names):
    fifo, folder, link, junk = unique("fifo"), unique("dir"), unique("link"), unique("junk")
    paths = {n: os.path.join(SHM, n) for n in (fifo, folder, link, junk)}
    names.extend(paths.values())
    os.mkfifo(paths[fifo])
    os.mkdir(paths[folder])
    os.symlink(paths[fifo], paths[link])
    with open(paths[junk], "wb") as f:
        f.write(b"not a ring" * 1000)
    want = {fifo: "is a FIFO, not a framering ring", folder: "is a directory, not a framering ring",
            link: "is a symbolic link, not a framering ring", junk: "is not a framering ring"}
    for name, says in want.items():
        for cmd, tail in (("stat", ""), ("rm", ": not removed")):
            r = ctl(cmd, name)  # a blocking open() would hit the HANG timeout (TimeoutExpired)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 4, (cmd, name, r.stderr)
            assert r.stdout == "", (cmd, name, r.stdout)
            assert len(lines) == 1, (cmd, name, r.stderr)
            assert lines[0] == "framering-ctl: '%s' in /dev/shm %s%s" % (name, says, tail) or (
                name == junk and says in lines[0] and lines[0].endswith(tail)), lines[0]
        assert os.path.lexists(paths[name]), "rm removed %s, which is not a ring" % name
    # list: never blocks, shows none of them as a ring; --all says what each is.
    r = ctl("list")
    assert r.returncode == 0, r.stderr
    assert not any(n in r.stdout for n in want), r.stdout
    r = ctl("list", "--all")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l for l in r.stdout.splitlines()[1:] if l.split()}
    assert "(not a ring: a FIFO)" in rows[fifo]
    assert "(not a ring: a directory)" in rows[folder]
    assert "(not a ring: a symbolic link)" in rows[link]
    assert rows[junk].split(None, 1)[1] == "(not a ring)", rows[junk]


def test_ctl_list_hides_creation_temporaries(names):
    """Where O_TMPFILE cannot be used, libring builds a ring as /dev/shm/.framering-creating-PID-HEX
    and links it into place; such a name is never a ring of that name, so list must not show it,
    even when it is (as here, a second link to a live ring) a whole valid segment."""
    ring = unique("ring")
    tmp = ".framering-creating-%d-%016x" % (os.getpid(), uuid.uuid4().int & (2**64 - 1))
    names.extend([os.path.join(SHM, ring), os.path.join(SHM, tmp)])
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "--loop", "-s", "160x120", SMALL])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(SHM, ring)):
            assert cap.poll() is None and time.monotonic() < deadline, "the ring never appeared"
            time.sleep(0.02)
        os.link(os.path.join(SHM, ring), os.path.join(SHM, tmp))
        for args in (("list",), ("list", "--all")):
            r = ctl(*args)
            assert r.returncode == 0, r.stderr
            listed = [l.split()[0] for l in r.stdout.splitlines()[1:] if l.split()]
            assert listed.count(ring) == 1, r.stdout
            assert tmp not in r.stdout, r.stdout
    finally:
        if cap.poll() is None:
            cap.terminate()
        cap.wait(timeout=30)
    assert cap.returncode == 0


def start_capture(ring, *args):
    """framering-capture writing a live 160x120 testsrc2 into RING, once the ring exists."""
    cap = subprocess.Popen([CAPTURE, "--ring", ring, "--quiet", "-s", "160x120"] + list(args))
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(SHM, ring)):
        assert cap.poll() is None and time.monotonic() < deadline, "the ring never appeared"
        time.sleep(0.02)
    time.sleep(0.2)  # the meta area is written once the first frame is decoded
    return cap


def stop_capture(cap):
    if cap.poll() is None:
        cap.terminate()
    cap.wait(timeout=30)


def test_ctl_shows_the_whole_source(names):
    """stat and list show the source as the capture was given it (a lavfi graph), not cut at 15."""
    ring = unique("src")
    names.append(os.path.join(SHM, ring))
    cap = start_capture(ring, "-f", "lavfi", "testsrc2=size=160x120:rate=30")
    try:
        kv = dict(l.split(": ", 1) for l in ctl("stat", ring).stdout.splitlines())
        assert kv["source"] == "testsrc2=size=160x120:rate=30", kv
        row = [l for l in ctl("list").stdout.splitlines() if l.split()[:1] == [ring]]
        assert row and row[0].endswith("160x120 bgr24 testsrc2=size=160x120:rate=30"), row
    finally:
        stop_capture(cap)


def test_ctl_meta_that_lies_is_bounded_and_escaped(names):
    """A producer's meta area whose source has no NUL and carries terminal escape sequences: stat
    and list print exactly the field's 192 bytes, escaped (never the stack after it, never a raw
    ESC that retitles or clears the terminal)."""
    ring = unique("meta")
    names.append(os.path.join(SHM, ring))
    cap = start_capture(ring, "-f", "lavfi", "testsrc2=size=160x120:rate=30")
    try:
        hostile = (b"\x1b]0;pwned\x07\x1b[2J" + b"A" * 192)[:192]  # no NUL anywhere
        with open(os.path.join(SHM, ring), "r+b") as f, mmap.mmap(f.fileno(), 4096) as m:
            seq = struct.unpack_from("<I", m, 512)[0]
            assert seq % 2 == 0 and m[520:524] == b"CAPM", "capture wrote no meta"
            struct.pack_into("<I", m, 512, seq + 1)           # seqlock: writing
            m[520 + 64:520 + 256] = hostile                   # capture_meta.source
            struct.pack_into("<I", m, 512, seq + 2)
        shown = hostile.decode().replace("\x1b", "\\x1b").replace("\x07", "\\x07")
        st = ctl("stat", ring)
        assert st.returncode == 0, st.stderr
        assert "\x1b" not in st.stdout and "\x07" not in st.stdout
        kv = dict(l.split(": ", 1) for l in st.stdout.splitlines())
        assert kv["source"] == shown, kv["source"]
        ls = ctl("list")
        assert ls.returncode == 0 and "\x1b" not in ls.stdout, ls.stdout
        row = [l for l in ls.stdout.splitlines() if l.split()[:1] == [ring]]
        assert row and row[0].endswith(" " + shown), row
    finally:
        stop_capture(cap)


def test_ctl_escapes_file_names(names):
    """A file in /dev/shm whose name holds escape sequences is listed escaped by list --all."""
    name = unique("esc") + "\x1b]0;pwned\x07\x1b[2J"
    names.append(os.path.join(SHM, name))
    with open(os.path.join(SHM, name), "wb") as f:
        f.write(b"x" * 100)
    r = subprocess.run([CTL, "list", "--all"], capture_output=True, timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stdout and b"\x07" not in r.stdout
    want = name.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert any(l.split(None, 1) == [want, "(not a ring)"] for l in r.stdout.decode().splitlines()), r.stdout
