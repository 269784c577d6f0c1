"""children.py - the subprocesses one test starts, all killed and reaped when it ends (tests/python, tests/send)."""
import subprocess


class Children:
    """start() runs a command with these Popen defaults; kill_all() kills whatever still runs and reaps everything.

    Used by the `procs` fixtures, so that a failing test never leaves a producer or a consumer behind
    (a live producer would hold its ring name for the next test)."""

    def __init__(self, **popen_defaults):
        self.popen_defaults = popen_defaults
        self.started = []

    def start(self, cmd, **kw):
        for key, value in self.popen_defaults.items():
            kw.setdefault(key, value)
        p = subprocess.Popen(cmd, **kw)
        self.started.append(p)
        return p

    def kill_all(self):
        for p in self.started:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=10)
            except Exception:
                pass  # reaped as far as it can be; the test's own failure says more
