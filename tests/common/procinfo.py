"""procinfo.py - what a process holds, from /proc: file descriptors, /dev/shm mappings, anonymous memory.

Used by the reconnect tests of both viewers (tests/view, tests/python) to check that a viewer
that outlives many producers holds no more after the last one than after the first, and by the
Ctrl-C-while-opening-a-FIFO tests of capture, dump and send (wait_opening_fifo).
"""
import os
import time


def resources(pid, samples=3):
    """What process PID holds, the least of SAMPLES looks 20 ms apart (so a file or mapping open for
    an instant is not counted): (file descriptors but its inotify ones, mappings of /dev/shm files,
    anonymous resident kB). A ring consumer waiting for a ring has an inotify descriptor on
    /dev/shm for the length of each wait slice: that one comes and goes by design."""
    best = None
    for i in range(samples):
        fds = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:  # closed meanwhile
                continue
            fds += "inotify" not in target
        with open(f"/proc/{pid}/maps") as f:
            shm = sum(" /dev/shm/" in line for line in f)
        with open(f"/proc/{pid}/status") as f:
            anon = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
        now = (fds, shm, anon)
        best = now if best is None else tuple(min(a, b) for a, b in zip(best, now))
        if i + 1 < samples:
            time.sleep(0.02)
    return best


def wait_opening_fifo(proc, bound, what):
    """Wait until PROC (a Popen) waits in open() for the other end of a FIFO (its wchan is
    wait_for_partner), failing the test with "WHAT did not open the FIFO" if it ends first or
    BOUND seconds pass."""
    t = time.monotonic()
    while True:
        try:
            with open("/proc/%d/wchan" % proc.pid) as f:
                if f.read().strip() == "wait_for_partner":
                    return
        except OSError:
            pass
        assert time.monotonic() - t < bound and proc.poll() is None, "%s did not open the FIFO" % what
        time.sleep(0.05)
