"""test_ctl.py - framering-ctl on names in /dev/shm that are not rings: a FIFO, a directory, a symbolic link, a foreign file, and libring's creation temporaries.

Run by ctest (tests/capture/CMakeLists.txt) with FRAMERING_CTL, FRAMERING_CAPTURE and
FRAMERING_SAMPLE_SMALL set. Every name made here is unique (pid + random) and removed
on every path. A FIFO used to make `stat` and `rm` block forever in open(); "at once"
is checked only against a generous hang bound.
"""
import os
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
    assert "(not a ring:" in rows[junk]


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
