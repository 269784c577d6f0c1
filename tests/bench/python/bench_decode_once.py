#!/usr/bin/env python3
"""bench_decode_once - k Python processes working on one video: framering decodes it once for all of them, cv2.VideoCapture once per process.

For each k in --consumers (default 1 2 3), two arms run k Python processes that
do the same work on each of --frames frames (the sample, looped) at the
source's size, bgr24:
  framering  one framering-capture (--on-full block --wait-consumers k) decodes
             and converts each frame once into a ring; k processes read it with
             framering.Consumer(mode="every"), each frame a zero-copy view
  cv2        k processes, each decoding and converting every frame itself with
             cv2.VideoCapture on the same file (reopened at its end)
The work, the same function in both arms: cv2.cvtColor to gray into a reused
buffer, then cv2.mean - the first step of many vision pipelines, single-threaded
(cv2.setNumThreads(1)) so that k thread pools do not fight over the cores.

Printed per round, k and arm, then as medians [min..max] over the rounds:
  fps/consumer   a consumer's frames / its wall time, averaged over the k
                 consumers (their range is shown per round)
  CPU ms/frame   user+sys of every process of the arm, summed, per source frame;
                 a Python process counts from the start signal on (interpreter
                 start and imports, ~0.8 s each and the same in both arms, are
                 left out), framering-capture counts whole
  ratio          framering / cv2 fps/consumer, per round and its median
Target: at k = 3, framering >= 2x cv2's fps/consumer.  Arms alternate which
goes first from round to round; the machine may be shared, so only same-round
ratios mean much.  Frame counts are checked (every consumer must get every
frame, and all consumers of an arm the same frames); timings never are.

Environment (set by the bench-decode-once target): FRAMERING_CAPTURE,
FRAMERING_LIB, FRAMERING_SAMPLE.  Example:
  cmake --build build --target bench-decode-once
  FRAMERING_CAPTURE=build/app/capture/framering-capture \\
      /usr/bin/python3 tests/bench/python/bench_decode_once.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

# bench_common before framering: it puts this checkout's viewer_py/ on sys.path.
from bench_common import cv2_frames, default_sample, ffprobe_frames, ffprobe_size, unique_ring_name

import cv2
import framering

FRAMERING, CV2 = "framering", "cv2"
ARMS = (FRAMERING, CV2)
TARGET_K, TARGET_RATIO = 3, 2.0


class BenchError(Exception):
    """A run went wrong (a process failed, a frame went missing): no figures from it."""


# ---------------------------------------------------------------- the consumer processes


class GrayMean:
    """The per-frame work of both arms: BGR -> gray into a reused buffer, then its mean."""

    def __init__(self) -> None:
        self.gray: Optional[np.ndarray] = None

    def __call__(self, bgr: np.ndarray) -> float:
        if self.gray is None or self.gray.shape != bgr.shape[:2]:
            self.gray = np.empty(bgr.shape[:2], np.uint8)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY, dst=self.gray)
        return cv2.mean(self.gray)[0]


def own_cpu_seconds() -> float:
    """User+sys CPU of this process, all its threads (cv2's decoder threads included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def consumer_process(arm: str, ring: str, video: str, frames: int, width: int, height: int) -> int:
    """One consumer: say 'ready' once imported, wait for 'go', work through the frames,
    print a JSON report {frames, wall, cpu, sum} timed from 'go'."""
    cv2.setNumThreads(1)
    work = GrayMean()
    buf = np.empty((height, width, 3), np.uint8)
    if arm == FRAMERING:
        framering.library_path()  # load libframering-ring now, not inside the timed window
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1  # the parent went away before the start
    t0, cpu0 = time.perf_counter(), own_cpu_seconds()
    n, acc = 0, 0.0
    if arm == FRAMERING:
        with framering.Consumer(ring, timeout=30, mode="every") as cons:
            for frame in cons:
                acc += work(frame.array)
                n += 1
    else:
        for img in cv2_frames(video, frames, buf):
            acc += work(img)
            n += 1
    report = {"frames": n, "wall": time.perf_counter() - t0, "cpu": own_cpu_seconds() - cpu0, "sum": acc}
    print(json.dumps(report), flush=True)
    return 0


# ---------------------------------------------------------------- running one arm


class Children:
    """The processes of one run. Leaving the block by an exception (a failure, Ctrl-C,
    the watchdog) stops and reaps whichever still run and removes the ring if its
    producer could not, so no process or /dev/shm segment outlives the benchmark."""

    def __init__(self, ring: Optional[str]) -> None:
        self.ring = ring
        self.procs: List[subprocess.Popen] = []

    def __enter__(self) -> "Children":
        return self

    def spawn(self, cmd: List[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def reap(p: subprocess.Popen) -> resource.struct_rusage:
        """Wait for P; its exit code goes to p.returncode, its CPU (all threads) is returned."""
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        return ru

    def __exit__(self, *exc) -> None:
        # SIGTERM first: framering-capture then marks end of stream and removes its ring.
        for p in self.procs:
            if p.returncode is None:
                p.terminate()
        for p in self.procs:
            if p.returncode is None:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for pipe in (p.stdin, p.stdout):
                if pipe:
                    pipe.close()
        if self.ring and os.path.exists("/dev/shm/" + self.ring):
            try:
                framering.unlink_stale(self.ring)  # only a dead producer's ring, never a live one
            except framering.FrameringError as e:
                sys.stderr.write(f"bench_decode_once: could not remove ring {self.ring}: {e}\n")


def read_line(p: subprocess.Popen, what: str) -> str:
    line = p.stdout.readline()
    if not line:
        raise BenchError(f"consumer process {p.pid} ended before {what}")
    return line


def failed(p: subprocess.Popen) -> bool:
    """Whether P has exited other than with 0; it is left unreaped (wait4 later gets its CPU)."""
    info = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None and not (info.si_code == os.CLD_EXITED and info.si_status == 0)


def collect_reports(consumers: List[subprocess.Popen], producer: Optional[subprocess.Popen]) -> List[Dict]:
    """Each consumer's report, in order. Fails as soon as a consumer ends without one or
    the producer fails, instead of waiting out the consumers' attach timeout."""
    pending = {c.stdout: c for c in consumers}
    reports = {}
    while pending:
        readable, _, _ = select.select(list(pending), [], [], 0.2)
        for pipe in readable:
            c = pending.pop(pipe)
            reports[c.pid] = json.loads(read_line(c, "its report"))
        if producer is not None and failed(producer):
            Children.reap(producer)
            raise BenchError(f"framering-capture exited {producer.returncode} while the consumers read")
    return [reports[c.pid] for c in consumers]


def run_arm(arm: str, k: int, args: argparse.Namespace, tmpdir: str) -> Dict:
    """k consumers of ARM, started together once all are imported; their figures."""
    ring = unique_ring_name("bench-once") if arm == FRAMERING else None
    consumer_cmd = [sys.executable, os.path.abspath(__file__), "--consumer-process", arm, "--ring", ring or "",
                    "--input", args.input, "--frames", str(args.frames),
                    "--size", f"{args.width}x{args.height}"]
    producer_cpu, stats = 0.0, None
    with Children(ring) as kids:
        consumers = [kids.spawn(consumer_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for _ in range(k)]
        for c in consumers:
            if read_line(c, "it was ready").strip() != "ready":
                raise BenchError(f"consumer process {c.pid} did not say 'ready'")
        producer = None
        if arm == FRAMERING:
            stats_path = os.path.join(tmpdir, ring + ".json")
            producer = kids.spawn([args.capture, "--ring", ring, "--quiet", "--size", "source",
                                   "--loop", "--frames", str(args.frames), "--on-full", "block",
                                   "--wait-consumers", str(k), "--max-consumers", str(max(k, 8)),
                                   "--stats-json", stats_path, args.input])
        for c in consumers:
            c.stdin.write("go\n")
            c.stdin.flush()
        reports = collect_reports(consumers, producer)
        for c in consumers:
            kids.reap(c)
            if c.returncode:
                raise BenchError(f"{arm} consumer process exited {c.returncode}")
        if producer:
            ru = kids.reap(producer)
            if producer.returncode:
                raise BenchError(f"framering-capture exited {producer.returncode}")
            producer_cpu = ru.ru_utime + ru.ru_stime
            with open(stats_path) as f:
                stats = json.load(f)
            os.unlink(stats_path)

    for r in reports:
        if r["frames"] != args.frames:
            raise BenchError(f"{arm}, k={k}: a consumer got {r['frames']} frames, not {args.frames}")
    # Same frames through the same work: every consumer of the arm must get the same sum.
    if max(r["sum"] for r in reports) - min(r["sum"] for r in reports) > 1e-6 * abs(reports[0]["sum"]):
        raise BenchError(f"{arm}, k={k}: the consumers saw different frames (sums {[r['sum'] for r in reports]})")
    if stats is not None and stats["frames_written"] != args.frames:
        raise BenchError(f"framering-capture wrote {stats['frames_written']} frames, not {args.frames}")
    if ring and os.path.exists("/dev/shm/" + ring):
        raise BenchError(f"ring {ring} was left in /dev/shm")
    fps = [r["frames"] / r["wall"] for r in reports]
    consumers_cpu = sum(r["cpu"] for r in reports)
    return {
        "fps": statistics.mean(fps), "fps_lo": min(fps), "fps_hi": max(fps),
        "cpu_ms": 1e3 * (producer_cpu + consumers_cpu) / args.frames,
        "producer_ms": 1e3 * producer_cpu / args.frames,
        "consumer_ms": 1e3 * consumers_cpu / k / args.frames,  # per consumer process
        "convert_ms": stats["cpu_convert_s"] * 1e3 / args.frames if stats else 0.0,
        "sum": reports[0]["sum"],
    }


# ---------------------------------------------------------------- the benchmark


def med_range(values: List[float], fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}..{fmt.format(max(values))}]"


def on_alarm(signum, frame):
    raise BenchError("a run took longer than --run-timeout seconds")


def on_sigterm(signum, frame):
    sys.exit(143)  # SystemExit unwinds through Children, which stops the processes


def benchmark(args: argparse.Namespace) -> int:
    per_file = ffprobe_frames(args.input)
    print(f"input {args.input}: {args.width}x{args.height}, {per_file} frames, looped to {args.frames} "
          f"per consumer; {args.rounds} rounds; k = {' '.join(map(str, args.consumers))}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    print("work per frame (both arms): cv2.cvtColor BGR->gray + cv2.mean, cv2.setNumThreads(1)\n", flush=True)
    results = {(arm, k): [] for k in args.consumers for arm in ARMS}
    ratios = {k: [] for k in args.consumers}
    same_frames = True
    with tempfile.TemporaryDirectory(prefix="bench-once-") as tmpdir:
        for rnd in range(args.rounds):
            for k in args.consumers:
                # Alternate which arm goes first, so a drift in machine load hits both alike.
                order = ARMS if rnd % 2 == 0 else ARMS[::-1]
                got = {}
                for arm in order:
                    signal.alarm(args.run_timeout)
                    got[arm] = run_arm(arm, k, args, tmpdir)
                    signal.alarm(0)
                    results[arm, k].append(got[arm])
                ratio = got[FRAMERING]["fps"] / got[CV2]["fps"]
                ratios[k].append(ratio)
                same_frames &= abs(got[FRAMERING]["sum"] - got[CV2]["sum"]) <= 1e-6 * abs(got[CV2]["sum"])
                print(f"round {rnd + 1} k={k}:  "
                      + "  ".join(f"{arm} {got[arm]['fps']:6.1f} fps/consumer "
                                  f"({got[arm]['fps_lo']:.1f}..{got[arm]['fps_hi']:.1f}), "
                                  f"CPU {got[arm]['cpu_ms']:5.2f} ms/frame" for arm in ARMS)
                      + f"  ratio {ratio:.2f}", flush=True)

    print(f"\nmedian [min..max] over {args.rounds} rounds, {args.frames} frames per consumer:")
    print(f"{'k':>2} {'arm':10} {'fps/consumer':>22} {'CPU ms/frame, all procs':>26}   where the CPU goes (median ms/frame)")
    for k in args.consumers:
        for arm in ARMS:
            rs = results[arm, k]
            if arm == FRAMERING:
                split = (f"capture {statistics.median(r['producer_ms'] for r in rs):.2f} "
                         f"(swscale {statistics.median(r['convert_ms'] for r in rs):.2f}) "
                         f"+ {k} x consumer {statistics.median(r['consumer_ms'] for r in rs):.2f}")
            else:
                split = f"{k} x process {statistics.median(r['consumer_ms'] for r in rs):.2f}"
            print(f"{k:>2} {arm:10} {med_range([r['fps'] for r in rs]):>22} "
                  f"{med_range([r['cpu_ms'] for r in rs], '{:.2f}'):>26}   {split}")
    print("\nratio framering / cv2 of fps/consumer (median of the per-round ratios; each round's ratio):")
    for k in args.consumers:
        med_ratio = statistics.median(ratios[k])
        of_medians = (statistics.median(r["fps"] for r in results[FRAMERING, k])
                      / statistics.median(r["fps"] for r in results[CV2, k]))
        target = ""
        if k == TARGET_K:
            target = f"  (target >= {TARGET_RATIO:.1f}: {'met' if med_ratio >= TARGET_RATIO else 'NOT met'})"
        print(f"  k={k}: {med_ratio:.2f}  rounds: {' '.join(f'{x:.2f}' for x in ratios[k])}  "
              f"(ratio of the medians {of_medians:.2f}){target}")
    # CPU per frame depends far less than fps on what else the machine runs: the steadier view of "decode once".
    print("\nCPU per frame, all processes, cv2 / framering (median of the per-round ratios):")
    for k in args.consumers:
        cpu_ratios = [c["cpu_ms"] / f["cpu_ms"] for f, c in zip(results[FRAMERING, k], results[CV2, k])]
        print(f"  k={k}: {statistics.median(cpu_ratios):.2f}  rounds: {' '.join(f'{x:.2f}' for x in cpu_ratios)}")
    print(f"\nevery consumer got all {args.frames} frames; framering and cv2 frames identical "
          f"(same work sums): {'yes' if same_frames else 'no (the conversions differ)'}; "
          f"load average now {os.getloadavg()[0]:.2f}")
    return 0


def parse_size(text: str) -> tuple:
    w, _, h = text.partition("x")
    return int(w), int(h)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="\n".join(__doc__.split("\n")[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--consumers", type=int, nargs="+", default=[1, 2, 3], metavar="K",
                    help="numbers of consumer processes to run (default: 1 2 3; at most 12)")
    ap.add_argument("--rounds", type=int, help="rounds, each running every K in both arms (default 5)")
    ap.add_argument("--frames", type=int, help="frames per consumer, the input looped (default 600)")
    ap.add_argument("--quick", action="store_true",
                    help="a short check: 1 round, one pass over the input (unless --rounds/--frames say otherwise)")
    ap.add_argument("--input", default=default_sample(), help="video file (default: the 1080p sample)")
    ap.add_argument("--capture", default=os.environ.get("FRAMERING_CAPTURE"),
                    help="framering-capture binary (default: $FRAMERING_CAPTURE)")
    ap.add_argument("--run-timeout", type=int, default=300, metavar="SEC",
                    help="give up on a run (one arm, one K) after SEC seconds (default 300)")
    # The consumer processes are this script again, started with these:
    ap.add_argument("--consumer-process", choices=ARMS, help=argparse.SUPPRESS)
    ap.add_argument("--ring", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.consumer_process:
        try:
            return consumer_process(args.consumer_process, args.ring, args.input, args.frames, *args.size)
        except KeyboardInterrupt:
            return 130  # Ctrl-C reaches the whole process group: the parent reports it

    if not args.capture or not os.access(args.capture, os.X_OK):
        sys.stderr.write("bench_decode_once: framering-capture not found: pass --capture or set FRAMERING_CAPTURE\n")
        return 1
    if not os.path.exists(args.input):
        sys.stderr.write(f"bench_decode_once: input {args.input} not found\n")
        return 1
    if any(not 1 <= k <= 12 for k in args.consumers):
        sys.stderr.write("bench_decode_once: K must be 1..12 (the ring's consumer limit)\n")
        return 2
    args.width, args.height = ffprobe_size(args.input)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.frames is None:
        args.frames = ffprobe_frames(args.input) if args.quick else 600

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return benchmark(args)
    except BenchError as e:
        sys.stderr.write(f"bench_decode_once: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench_decode_once: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
