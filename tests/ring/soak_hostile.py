"""soak_hostile.py - hostile-peer soak driver: consumers must never crash, hang or spin while the producer scribbles over the live ring.

Each round starts soak_hostile_producer (one process, one ring per consumer, a seed of
its own, a set of scribbles from THEMES) and, against those rings, the consumers: the C
consumer mode of that program, framering-dump ($FRAMERING_DUMP) and a Python consumer
(this file, --consume, using the framering package with $FRAMERING_LIB). A consumer that
ends while the producer runs is started again (the producer makes its ring anew). The
producer scribbles for --seconds, restores the control words it broke, and stops (closing
the rings, or _exit()ing as a crash for odd seeds). Every consumer run must exit by
itself, at the latest --grace seconds after that, not by a signal, with an exit code that
means "end of stream / producer gone / ring error", with no sanitizer report, and without
spinning: CPU time below --cpu-max % of its lifetime and below --peak-max % in every 3 s
window. The runs on one ring must not read more frames than were committed to it, plus
two rings' worth of stale records per run (what a tail that is ahead by less than the
capacity legitimately shows). A failure prints the seed, the command that repeats the
round, what the consumer printed, the stack of a hung one with whether its fr_frame_peek()
returns (gdb, if present), and the producer's scribbles before it began to spin.

    python3 soak_hostile.py --producer build/tests/ring/soak_hostile_producer [--rounds 6]
        [--seconds 8] [--seed N] [--dump PATH] [--no-python REASON]
Exit status 0: every round passed; 1: a consumer crashed, hung or spun; 2: bad set-up.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import glob
import importlib.util
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHM = "/dev/shm"
TICK = os.sysconf("SC_CLK_TCK")
SANITIZER_MARKS = ("Sanitizer", "runtime error:")
# Exit codes that mean "ended by itself on end of stream, producer death or a ring error".
ALLOWED_RC = {"c": {0, 2}, "dump": {0, 2, 3, 4}, "py": {0, 2}}
WEDGED = 7  # the Python consumer got -EALREADY: the package left a record peeked, every read fails now
MEANING = {("c", 5): "the library returned a frame outside its mapping",
           ("py", WEDGED): "the package wedged itself: a record stayed peeked (-EALREADY) after an error",
           ("py", 1): "an exception other than FrameringError (traceback above)"}


# ---------------------------------------------------------------- the Python consumer

def consume(name: str, give_up: int) -> int:
    """Read ring NAME with the framering package, touching every byte of every frame."""
    import faulthandler

    import numpy as np
    import framering

    frames = bad = timeouts = total = rc = stale = last_seq = 0
    end = "?"
    try:
        cons = framering.Consumer(name, timeout=5)
    except framering.FrameringError as e:
        print(f"consumer: frames 0 bad 0 timeouts 0 end open:{type(e).__name__}: {e}", flush=True)
        return 2
    # A damaged record: ForeignRing (-EBADMSG), or InvalidFrame (-ENOMSG) where the package has it.
    bad_record = tuple(c for c in (framering.ForeignRing, getattr(framering, "InvalidFrame", None)) if c)
    rng = random.Random(name)
    consecutive, last_err, beat = 0, "", time.monotonic() + 2
    while True:
        if time.monotonic() > beat:  # a heartbeat: what a consumer that never ends was doing
            beat += 2
            print(f"consumer: alive, frames {frames} bad {bad} timeouts {timeouts} last error {last_err}",
                  file=sys.stderr, flush=True)
        # A call stuck in the library: say where (the process stays, for gdb, until killed).
        faulthandler.dump_traceback_later(10)
        try:
            f = cons.latest(timeout=2) if rng.random() < 0.2 else cons.next_frame(timeout=2)
        except framering.Timeout:
            timeouts += 1  # keep going
            continue
        except bad_record as e:
            last_err = str(e)
            bad += 1
            consecutive += 1
            if consecutive >= give_up:
                end = "gave-up"
                break
            if consecutive > 20:
                time.sleep(0.01)  # the ring itself may be corrupt: never spin on it
            continue
        except framering.FrameringError as e:
            end = f"{type(e).__name__}: {e}"
            if e.code == -errno.EALREADY:
                rc = WEDGED
            break
        faulthandler.cancel_dump_traceback_later()
        consecutive = 0
        if frames and f.seq <= last_seq:
            stale += 1  # an older frame than the last one: read past the producer's tail
        last_seq = f.seq
        for p in f.planes:
            total += int(p.sum(dtype=np.uint64))
        try:
            total += int(f.array.sum(dtype=np.uint64))
        except ValueError:
            pass  # odd-sized i420/nv12: planes only, as documented
        frames += 1
        if frames % 50 == 0:
            try:
                cons.meta
            except framering.FrameringError:
                pass
    faulthandler.cancel_dump_traceback_later()
    cons.close()
    print(f"consumer: frames {frames} bad {bad} timeouts {timeouts} stale {stale} sum {total:x} end {end}",
          flush=True)
    return rc


# ---------------------------------------------------------------- processes

def _die_with_parent() -> None:
    """preexec: SIGKILL this child if the driver dies (a ctest timeout must not leave a spinner)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """A child whose stdout/stderr go to files; reaped with wait4 for its CPU time."""

    def __init__(self, kind: str, cmd: list, tmp: str, env: dict | None = None, stdout=None, tag: str = ""):
        self.kind, self.cmd = kind, cmd
        self.out_path = os.path.join(tmp, (tag or kind) + ".out")
        self.err_path = os.path.join(tmp, (tag or kind) + ".err")
        self.t_start = time.monotonic()
        with open(self.err_path, "wb") as err, open(self.out_path, "wb") as out:
            self.p = subprocess.Popen(cmd, stdout=stdout or out, stderr=err, env=env,
                                      stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.rc = None          # exit code, -signal if killed by one
        self.cpu = 0.0          # seconds of CPU (final: from rusage)
        self.t_end = None
        self.samples = [(self.t_start, 0.0)]
        self.hung = False
        self.stack = ""

    def poll(self) -> bool:
        """Reap if it exited (True), else take a CPU sample."""
        if self.rc is not None:
            return True
        pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
        now = time.monotonic()
        if pid:
            self.rc = os.waitstatus_to_exitcode(status)
            self.p.returncode = self.rc
            self.t_end, self.cpu = now, ru.ru_utime + ru.ru_stime
            self.samples.append((now, self.cpu))
            return True
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            self.cpu = (int(rest[11]) + int(rest[12])) / TICK
            self.samples.append((now, self.cpu))
        except (OSError, IndexError, ValueError):
            pass
        return False

    def kill(self) -> None:
        """SIGKILL (by pid) and reap, unless it already ended."""
        if self.rc is not None:
            return
        try:
            self.p.kill()
            _, status, ru = os.wait4(self.p.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            self.rc = self.p.returncode if self.p.returncode is not None else -signal.SIGKILL
            return
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc
        self.t_end, self.cpu = time.monotonic(), ru.ru_utime + ru.ru_stime

    def wall(self) -> float:
        return (self.t_end or time.monotonic()) - self.t_start

    def cpu_pct(self) -> float:
        """CPU % of its lifetime; short lives count as 3 s (Python's imports are no spin)."""
        return 100.0 * self.cpu / max(self.wall(), 3.0)

    def peak(self, span: float = 3.0):
        """(highest CPU % over any SPAN-second window, when that window started)."""
        best, at, s = 0.0, None, self.samples
        j = 0
        for i in range(len(s)):
            while j < len(s) and s[j][0] - s[i][0] < span:
                j += 1
            if j == len(s):
                break
            pct = 100.0 * (s[j][1] - s[i][1]) / (s[j][0] - s[i][0])
            if pct > best:
                best, at = pct, s[i][0]
        return best, at

    def spin_start(self):
        """The first sample after which the process burned >= 80 % of a core for 1 s."""
        s = self.samples
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                if s[j][0] - s[i][0] >= 1.0:
                    if (s[j][1] - s[i][1]) / (s[j][0] - s[i][0]) >= 0.8:
                        return s[i][0]
                    break
        return None

    def text(self, which: str) -> str:
        try:
            with open(self.out_path if which == "out" else self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def gdb_stack(pid: int) -> str:
    """The stack of a hung process and whether its fr_frame_peek() call still returns (gdb finish):
    a call that returns means the program loops around it; one that does not is stuck inside."""
    gdb = shutil.which("gdb")
    if not gdb:
        return "(no gdb: no stack)"
    cmd = [gdb, "-p", str(pid), "-batch", "-nx", "-ex", "bt 25", "-ex", "frame function fr_frame_peek",
           "-ex", "finish"]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=8)
        out, timed_out = r.stdout, False
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        timed_out = True
    lines = list(dict.fromkeys(ln for ln in out.splitlines() if ln.startswith("#")))[:25]
    in_peek = any("fr_frame_peek" in ln for ln in lines) and "No frame" not in out and "not defined" not in out
    func = "fr_frame_peek" if in_peek else "its innermost function (not in fr_frame_peek)"
    if "Value returned" in out:
        value = out.split("Value returned is", 1)[1].split("\n", 1)[0].split("=")[-1].strip()
        lines.append(f"({func} returns, value {value}: the program loops around it)")
    elif timed_out and in_peek:
        lines.append("(fr_frame_peek() did not return within 8 s: stuck inside the library)")
    elif lines:
        lines.append("(sampled outside fr_frame_peek: the program's own loop calls the library again and again)")
    return "\n".join(lines) or "(gdb gave no stack)"


def tail(text: str, n: int) -> str:
    lines = text.rstrip("\n").splitlines()
    return "\n".join(("      " + ln) for ln in lines[-n:]) if lines else "      (nothing)"


def summary_of(c: Proc) -> str:
    """The consumer's own last word: its final 'consumer: ...' line, or framering-dump's summary."""
    for ln in reversed(c.text("out").splitlines()):
        if ln.startswith("consumer:"):
            return ln.split(":", 1)[1].strip()
    for ln in reversed(c.text("err").splitlines()):
        if ln.startswith("framering-dump:") or ln.startswith("consumer:"):
            return ln.split(":", 1)[1].strip()
    return "(no summary)"


def remove_segments(pattern: str) -> list:
    gone = []
    for path in glob.glob(os.path.join(SHM, pattern)):
        try:
            os.unlink(path)
            gone.append(os.path.basename(path))
        except FileNotFoundError:
            pass
    return gone


# ---------------------------------------------------------------- one round

# The scribbles of each round (soak_hostile_producer --only), in turn; None: all of them. Rounds
# of only index attacks reach the index checks before record damage ends a consumer's run.
THEMES = [None, "pad_storm,tail_flicker,tail", None,
          "record_header,frame_header,head,futex,meta,owner,eos,restore", None, "pad_storm,tail_flicker,fanout"]
CAPACITY = 256 * 1024
# A consumer run may legitimately read stale records, a ring's worth each time a hostile tail is
# ahead by less than the capacity (it looks like real data): two rings' worth are allowed. Smallest record: gray8 33x17 (128 + 561 + 8 bytes).
STALE_PER_RUN = 2 * CAPACITY // 697
RESTART_GAP = {"c": 0.3, "dump": 0.3, "py": 1.0}  # a consumer that ended is started again, this far apart
MAX_LIVES = 40


def start_consumer(args, kind: str, ring: str, tmp: str, n: int) -> Proc:
    tag = f"{kind}{n}"
    if kind == "c":
        live = ["--live"] if n % 2 else []  # every other run a LATEST (live) consumer
        return Proc(kind, [args.producer, "--consume", ring, "--wait", "5"] + live, tmp, tag=tag)
    if kind == "dump":
        return Proc(kind, [args.dump, "-r", ring, "--wait", "5", "--sum"], tmp, tag=tag)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return Proc(kind, [sys.executable, os.path.abspath(__file__), "--consume", ring], tmp, env=env, tag=tag)


def verdict(args, c: Proc) -> list:
    """Why this consumer life failed (empty: it passed)."""
    why = []
    if c.hung:
        why.append(f"did not exit within {args.grace:g} s after the producer stopped")
    elif c.rc < 0:
        why.append(f"killed by signal {signal.Signals(-c.rc).name}")
    elif c.rc not in ALLOWED_RC[c.kind]:
        why.append(f"exit code {c.rc} (allowed: {sorted(ALLOWED_RC[c.kind])})"
                   + (f": {MEANING[(c.kind, c.rc)]}" if (c.kind, c.rc) in MEANING else ""))
    if any(m in c.text("err") for m in SANITIZER_MARKS):
        why.append("sanitizer report")
    peak, peak_at = c.peak()
    if c.cpu_pct() > args.cpu_max:
        why.append(f"spun: cpu {c.cpu_pct():.0f}% of its lifetime > {args.cpu_max:g}%")
    elif peak > args.peak_max:
        why.append(f"spun: {peak:.0f}% cpu in a 3 s window > {args.peak_max:g}%")
    return why


def run_round(args, idx: int, seed: int, kinds: list, started: list):
    """One round; returns (failures, the scribbles it used)."""
    crash = seed % 2 == 1  # odd seeds end as a crash: a seed repeats its round exactly
    prefix = f"frt-{os.getpid()}-soak{idx}"
    names = {k: f"{prefix}-{k}" for k in kinds}
    tmp = tempfile.mkdtemp(prefix="soak-")
    failures = []
    try:
        cmd = [args.producer, "--seed", str(seed), "--seconds", str(args.seconds), "--fps", str(args.fps),
               "--capacity", str(CAPACITY)]
        for k in kinds:
            cmd += ["-r", names[k]]
        if crash:
            cmd.append("--crash")
        only = args.only or THEMES[idx % len(THEMES)]
        if only:
            cmd += ["--only", only]
        prod = Proc("producer", cmd, tmp, stdout=subprocess.PIPE)
        started.append(prod)
        t_prod = prod.t_start
        # Ready when it says so (the rings exist): no sleep stands in for it.
        out, deadline = b"", time.monotonic() + 20
        while b"ready\n" not in out and time.monotonic() < deadline and not prod.poll():
            if select.select([prod.p.stdout], [], [], 0.5)[0]:
                out += os.read(prod.p.stdout.fileno(), 4096)
        if b"ready\n" not in out:
            prod.kill()
            return [f"producer never became ready (rc {prod.rc}): {out!r} {prod.text('err')[-500:]}"], only

        lives = {k: [start_consumer(args, k, names[k], tmp, 0)] for k in kinds}
        started.extend(c[0] for c in lives.values())
        # Watch: restart consumers that ended while the producer runs; once it stopped,
        # give the last ones GRACE seconds to exit by themselves.
        t_stop = None
        t_last_start = t_prod + args.seconds - 1.5
        hard_stop = time.monotonic() + args.seconds + 30
        while True:
            now = time.monotonic()
            if t_stop is None and prod.poll():
                t_stop = prod.t_end
            running = False
            for k in kinds:
                c = lives[k][-1]
                if not c.poll():
                    running = True
                elif (t_stop is None and now < t_last_start and now - c.t_start >= RESTART_GAP[k]
                      and len(lives[k]) < MAX_LIVES):
                    c = start_consumer(args, k, names[k], tmp, len(lives[k]))
                    lives[k].append(c)
                    started.append(c)
                    running = True
            if t_stop is not None and (not running or now > t_stop + args.grace):
                break
            if t_stop is None and now > hard_stop:
                failures.append("producer did not stop within --seconds + 30 s: killed")
                prod.p.kill()
            time.sleep(0.25)
        out += prod.p.stdout.read() or b""
        prod.p.stdout.close()
        for k in kinds:
            c = lives[k][-1]
            if c.rc is None:
                c.hung = True
                c.poll()
                if args.stacks > 0:
                    args.stacks -= 1
                    c.stack = gdb_stack(c.p.pid)
                c.kill()

        # Verdicts.
        if prod.rc != 0:
            failures.append(f"producer exited with {prod.rc}")
        if any(m in prod.text("err") for m in SANITIZER_MARKS):
            failures.append("producer: sanitizer report")
        mode = "crash (_exit)" if crash else "fr_ring_close"
        print(f"round {idx} seed {seed}: producer ran {args.seconds:g} s, then {mode}; scribbles: "
              f"{only or 'all'}", flush=True)
        committed = {}
        for ln in out.decode(errors="replace").splitlines():
            if ln.startswith("ring "):
                print("  producer " + ln, flush=True)
                w = ln.split()
                committed[w[1]] = int(w[w.index("frames") + 1])
        for k in kinds:
            frames, ends, worst_cpu, worst_peak = 0, {}, 0.0, 0.0
            for c in lives[k]:
                summ = summary_of(c)
                frames += frames_of(c.kind, summ)
                end = end_of(c, summ)
                ends[end] = ends.get(end, 0) + 1
                worst_cpu, worst_peak = max(worst_cpu, c.cpu_pct()), max(worst_peak, c.peak()[0])
                why = verdict(args, c)
                if why:
                    failures.append(describe(c, names[k], why, prod, t_prod))
            limit = committed.get(names[k], 0) + STALE_PER_RUN * len(lives[k])
            if names[k] in committed and frames > limit:
                failures.append(
                    f"{k}: its {len(lives[k])} run(s) read {frames} frames, but only {committed[names[k]]} were "
                    f"committed to {names[k]} (+ {STALE_PER_RUN} stale records allowed per run): the "
                    f"library handed out records past the tail again and again")
            last = lives[k][-1]
            after = (last.t_end - t_stop) if (last.t_end and t_stop and not last.hung) else None
            print(f"  {k:5s} {len(lives[k])} run(s), {frames} frames; cpu <= {worst_cpu:.0f}% "
                  f"(3 s peak <= {worst_peak:.0f}%); last one "
                  + ("HUNG (killed)" if last.hung else f"exited {after:+.1f} s after the producer" if after is not None
                     else "ended before the producer")
                  + "; ends: " + ", ".join(f"{n}x {e}" for e, n in sorted(ends.items(), key=lambda x: -x[1])),
                  flush=True)
    finally:
        for p in started:
            if p.rc is None:
                p.kill()
        started.clear()
        remove_segments(prefix + "-*")
        shutil.rmtree(tmp, ignore_errors=True)
    return failures, only


def frames_of(kind: str, summ: str) -> int:
    words = summ.replace(",", "").split()
    try:
        return int(words[0] if kind == "dump" else words[words.index("frames") + 1])
    except (ValueError, IndexError):
        return 0


def end_of(c: Proc, summ: str) -> str:
    """How a consumer life ended, in a few words."""
    if c.hung:
        return "HUNG"
    if c.rc is not None and c.rc < 0:
        return f"signal {-c.rc}"
    if c.kind == "dump":
        return {0: "end of stream", 2: "could not open", 3: "producer died", 4: "ring error"}.get(c.rc, f"rc {c.rc}")
    if " end " in summ:
        return summ.split(" end ", 1)[1][:60]
    return f"rc {c.rc}"


def describe(c: Proc, ring: str, why: list, prod: Proc, t_prod: float) -> str:
    """A failed consumer life: why, what it printed, its stack, the scribbles that led there."""
    t_from = c.t_start - t_prod
    t_to = (c.t_end or time.monotonic()) - t_prod
    ended = "was killed: HUNG" if c.hung else f"exited at t={t_to:.1f} s with rc {c.rc}"
    msg = [f"{c.kind} started at t={t_from:.1f} s, {ended} ({' '.join(c.cmd)}): " + "; ".join(why),
           "    stdout:\n" + tail(c.text("out"), 8), "    stderr:\n" + tail(c.text("err"), 12)]
    if c.stack:
        msg.append("    stack when killed:\n" + tail(c.stack, 25))
    scribbles = [ln for ln in prod.text("err").splitlines() if f" {ring} " in ln]
    spin = c.spin_start()
    if spin is not None:
        t = spin - t_prod
        near = [ln for ln in scribbles if t - 1.5 <= _t(ln) <= t + 0.3]
        msg.append(f"    spinning from t~{t:.2f} s; scribbles on {ring} just before:\n" + tail("\n".join(near), 12))
    else:
        during = [ln for ln in scribbles if t_from <= _t(ln) <= t_to]
        msg.append(f"    last scribbles on {ring} while it ran:\n" + tail("\n".join(during), 10))
    return "\n".join(msg)


def _t(line: str) -> float:
    try:
        return float(line.split("]", 1)[0].strip("[ "))
    except ValueError:
        return -1.0


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--producer", help="soak_hostile_producer (also the C consumer)")
    ap.add_argument("--dump", default=os.environ.get("FRAMERING_DUMP"), help="framering-dump ($FRAMERING_DUMP)")
    ap.add_argument("--no-python", metavar="REASON", help="skip the Python consumer, saying why")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=8.0, help="producer run time per round")
    ap.add_argument("--fps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or None,
                    help="first round's seed (round i: seed + i); default random, or $SOAK_SEED")
    ap.add_argument("--grace", type=float, default=15.0, help="seconds a consumer may take to exit")
    ap.add_argument("--cpu-max", type=float, default=60.0, help="CPU %% of its lifetime a consumer may use")
    ap.add_argument("--peak-max", type=float, default=90.0, help="CPU %% in any 3 s window")
    ap.add_argument("--stacks", type=int, default=4, help="gdb stacks of hung consumers, at most")
    ap.add_argument("--consumers", default="c,dump,py", help="which of c, dump, py to run (default all)")
    ap.add_argument("--only", help="only these scribbles (soak_hostile_producer --help lists them)")
    ap.add_argument("--consume", metavar="NAME", help=argparse.SUPPRESS)
    ap.add_argument("--give-up", type=int, default=200, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consume:
        return consume(args.consume, args.give_up)
    if not args.producer or not os.access(args.producer, os.X_OK):
        print(f"soak_hostile: --producer {args.producer!r} is not an executable", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    want = set(args.consumers.split(","))
    kinds = ["c"] if "c" in want else []
    if "dump" not in want:
        pass
    elif args.dump and os.access(args.dump, os.X_OK):
        kinds.append("dump")
    else:
        print("soak_hostile: framering-dump consumer skipped: not built ($FRAMERING_DUMP unset; "
              "FRAMERING_APPS is OFF, e.g. in sanitizer builds)")
    py_reason = args.no_python or ("not asked for (--consumers)" if "py" not in want else None)
    if not py_reason and not os.environ.get("FRAMERING_LIB"):
        py_reason = "$FRAMERING_LIB unset (no shared library to load)"
    if not py_reason and importlib.util.find_spec("numpy") is None:  # the consumer runs under this python
        py_reason = f"{sys.executable} has no numpy"
    if py_reason:
        print(f"soak_hostile: Python consumer skipped: {py_reason}")
    else:
        kinds.append("py")

    if not kinds:
        print("soak_hostile: no consumer to run", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    me = os.path.abspath(__file__)
    print(f"soak_hostile: {args.rounds} rounds x {args.seconds:g} s, consumers {', '.join(kinds)}, seed {seed}",
          flush=True)
    t0, started, failed = time.monotonic(), [], []
    try:
        for i in range(args.rounds):
            f, only = run_round(args, i, seed + i, kinds, started)
            if f:
                env = " ".join(f"{v}={os.environ[v]}" for v in ("FRAMERING_DUMP", "FRAMERING_LIB", "PYTHONPATH")
                               if os.environ.get(v))
                extra = f" --consumers {','.join(kinds)}" + (f" --only {only}" if only else "")
                failed.append((i, seed + i, f))
                print(f"ROUND {i} FAILED (seed {seed + i}); repeat it with:\n  {env} {sys.executable} {me} "
                      f"--producer {os.path.abspath(args.producer)} --rounds 1 --seed {seed + i}{extra}",
                      flush=True)
                for msg in f:
                    print("  - " + msg, flush=True)
    finally:
        for p in started:
            p.kill()
        left = remove_segments(f"frt-{os.getpid()}-soak*")
        if left:
            print(f"soak_hostile: removed leftover segments {left}")
    print(f"soak_hostile: {args.rounds - len(failed)}/{args.rounds} rounds passed in "
          f"{time.monotonic() - t0:.0f} s (seed {seed})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
