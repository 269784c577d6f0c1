#!/usr/bin/env python3
"""bench_send.py - framering-send figures: encode throughput against the ffmpeg CLI, and glass-to-glass
latency of the loopback chain. A benchmark: it prints figures, it asserts nothing.

1. Throughput. The same N raw 1080p yuv420p frames (testsrc2, written to a file once) are encoded
   with libx264 at the same settings into an mp4 by
     ffmpeg:          cat frames.yuv | ffmpeg -f rawvideo -pix_fmt yuv420p -s 1920x1080 -r 30 -i pipe: -c:v libx264 ...
     framering-send:  framering-capture -f rawvideo frames.yuv (plain copy into ring) -> framering-send
   Wall time from start to the finished file; --runs interleaved runs (each runs every row once, in an
   order rotated by the run), medians; the ratio is the median of the per-run ffmpeg time / send time.
   CPU per frame of each process (getrusage of the child: all its threads): the feeder (cat, or
   framering-capture reading the file into the ring) and the encoder process (ffmpeg, framering-send).
   --compare-send adds another framering-send binary (an older build) as one more row.

2. Latency (glass to glass) at 1080p30 and 720p30 with --low-latency:
     framering-capture testsrc2 (paced at 30 fps; "captured" when the frame falls due) -> ring A
       -> framering-send --latest --low-latency --timestamps pts srt://...?mode=listener
       -> framering-capture srt://... (caller) -> ring B -> a Python consumer (framering.Consumer, latest)
   A frame's identity across the network is its pts (the MPEG-TS pts is ring A's pts in 1/90000, the
   muxer adds no offset with --low-latency), so each frame the consumer receives is matched with
   ring A's header of that pts (framering-dump --headers on ring A). latency = the consumer's
   CLOCK_MONOTONIC when it receives the frame - capture_ns in ring A. All on one machine: one clock.
   Split: send (ring A capture -> packet written, framering-send's --stats-json), wire + receive
   (ring A capture -> decoded into ring B, ring B's capture_ns), consumer (ring B -> Python).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CONSUMER = r"""
import sys, time, framering
name, out = sys.argv[1], sys.argv[2]
with open(out, "w") as f, framering.Consumer(name, timeout=30, mode="latest") as c:
    for fr in c:
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        f.write("%d %d %d\n" % (fr.pts if fr.pts is not None else -1, fr.capture_ns, now))
"""


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def udp_bound(port):
    for line in open("/proc/net/udp").readlines()[1:]:
        if int(line.split()[1].split(":")[1], 16) == port:
            return True
    return False


def wait_cpu(p):
    """Wait for child P; its CPU seconds (user + system, all its threads)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def throughput(a, tmp):
    w, h, n = 1920, 1080, a.frames
    frames = os.path.join(tmp, "frames.yuv")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=%dx%d:rate=30" % (w, h),
                    "-frames:v", str(n), "-pix_fmt", "yuv420p", "-f", "rawvideo", "-y", frames], check=True)
    enc = ["-preset", a.preset, "-crf", "23"]

    def run_ffmpeg(out):
        t0 = time.monotonic()
        r, wr = os.pipe()
        cat = subprocess.Popen(["cat", frames], stdout=wr)
        os.close(wr)
        ff = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s",
                               "%dx%d" % (w, h), "-r", "30", "-i", "pipe:", "-c:v", "libx264"] + enc + ["-y", out],
                              stdin=r)
        os.close(r)
        c_enc, c_feed = wait_cpu(ff), wait_cpu(cat)
        if ff.returncode or cat.returncode:
            raise RuntimeError("ffmpeg failed")
        return time.monotonic() - t0, c_feed, c_enc, None

    def run_send(send, out):
        stats = os.path.join(tmp, "send.json")
        ring = "bench-send-%d" % os.getpid()
        t0 = time.monotonic()
        sp = subprocess.Popen([send, "-q", "-r", ring, "-w", "20", "--stats-json", stats, "--preset", a.preset,
                               "--crf", "23", out])
        try:
            cap = subprocess.Popen([a.capture, "-q", "-r", ring, "--on-full", "block", "-p", "i420", "-s", "source",
                                    "-f", "rawvideo", "-o", "video_size=%dx%d" % (w, h), "-o", "pixel_format=yuv420p",
                                    "-o", "framerate=30", frames])
            c_feed = wait_cpu(cap)
            if cap.returncode:
                raise RuntimeError("framering-capture failed")
            c_enc = wait_cpu(sp)
        finally:
            if sp.returncode is None and sp.poll() is None:
                sp.kill()
                sp.wait()
            if os.path.exists("/dev/shm/" + ring):
                os.unlink("/dev/shm/" + ring)
        st = json.load(open(stats))
        assert st["frames"] == n, st
        return time.monotonic() - t0, c_feed, c_enc, st

    # rows: (label, function); every run does each row once, in an order rotated by the run
    rows = [("ffmpeg -f rawvideo -i pipe:", lambda out: run_ffmpeg(out)),
            ("framering-send (ring)", lambda out: run_send(a.send, out))]
    for i, other in enumerate(a.compare_send):
        rows.append(("  other send %d (ring)" % (i + 1), lambda out, s=other: run_send(s, out)))
    res = [[] for _ in rows]
    for run in range(a.runs):
        for k in range(len(rows)):
            i = (k + run) % len(rows)
            res[i].append(rows[i][1](os.path.join(tmp, "out%d.mp4" % i)))
    sizes = [os.path.getsize(os.path.join(tmp, "out%d.mp4" % i)) for i in range(len(rows))]
    print("== encode throughput: %d frames 1920x1080 yuv420p, libx264 -preset %s -crf 23 -> mp4, %d interleaved runs"
          % (n, a.preset, a.runs))
    print("  %-30s %7s %7s %7s  %s" % ("", "median", "best", "fps", "CPU ms/frame: feeder (cat / framering-capture), "
                                       "encoder process; runs"))
    for i, (label, _) in enumerate(rows):
        t = [r[0] for r in res[i]]
        med = statistics.median(t)
        print("  %-30s %6.2fs %6.2fs %7.1f  %5.2f %6.2f   (runs: %s)" % (
            label, med, min(t), n / med, 1e3 * statistics.median(r[1] for r in res[i]) / n,
            1e3 * statistics.median(r[2] for r in res[i]) / n, " ".join("%.2f" % x for x in t)))
        st = res[i][-1][3]
        if st:
            print("  %-30s input path %s: %s zero-copy, %s copied, %s converted frames; main thread per frame:"
                  " copy %.2f ms, x264 calls %.2f ms" % (
                      "", st.get("input_path", "(not reported)"), st.get("frames_zero_copy", "-"),
                      st.get("frames_copied", "-"), st.get("frames_converted", "-"),
                      1e3 * st["cpu_convert_s"] / n, 1e3 * st["cpu_encode_s"] / n))
    for i in range(1, len(rows)):
        ratios = [f[0] / s[0] for f, s in zip(res[0], res[i])]
        print("  ratio %s / ffmpeg: median %.2fx (per run %s)   (files: ffmpeg %d bytes, this %d bytes)" % (
            rows[i][0].strip(), statistics.median(ratios), " ".join("%.2f" % r for r in ratios), sizes[0], sizes[i]))
    if len(rows) > 2:
        for i in range(2, len(rows)):
            ratios = [o[0] / s[0] for s, o in zip(res[1], res[i])]
            print("  framering-send / %s: median %.2fx (per run %s)" % (
                rows[i][0].strip(), statistics.median(ratios), " ".join("%.2f" % r for r in ratios)))
    print("  load after: %.2f %.2f %.2f" % os.getloadavg())
    os.unlink(frames)


def latency(a, tmp, w, h):
    port = free_udp_port()
    ra, rb = "bench-la-%d" % os.getpid(), "bench-lb-%d" % os.getpid()
    ahdr, rx, stats, bstats = (os.path.join(tmp, x) for x in ("a.hdr", "rx.txt", "send.json", "b.json"))
    srt_lat = "latency=%d" % (a.srt_latency_ms * 1000)
    env = dict(os.environ, PYTHONPATH=a.pkg, FRAMERING_LIB=a.lib)
    procs = []
    try:
        cap_a = subprocess.Popen([a.capture, "-q", "-r", ra, "-p", "i420", "-s", "%dx%d" % (w, h), "-f", "lavfi",
                                  "testsrc2=size=%dx%d:rate=30" % (w, h)])
        procs.append(cap_a)
        dump_a = subprocess.Popen([a.dump, "-q", "-r", ra, "-w", "20", "--headers", ahdr])
        send = subprocess.Popen([a.send, "-q", "-r", ra, "-w", "20", "--latest", "--low-latency", "--timestamps",
                                 "pts", "--preset", a.ll_preset, "--stats-json", stats, "-o", srt_lat] + sum((["-o", o] for o in a.send_opt), []) + [
                                 "srt://127.0.0.1:%d?mode=listener" % port])
        procs += [dump_a, send]
        t = time.time() + 20
        while not udp_bound(port):
            if time.time() > t:
                raise RuntimeError("framering-send did not listen")
            time.sleep(0.05)
        cap_b = subprocess.Popen([a.capture, "-q", "-r", rb, "-p", "i420", "-s", "source", "--stats-json", bstats,
                                  "srt://127.0.0.1:%d?%s" % (port, srt_lat)])
        cons = subprocess.Popen([a.python, "-c", CONSUMER, rb, rx], env=env)
        procs += [cap_b, cons]
        time.sleep(a.seconds)
        cap_a.send_signal(signal.SIGINT)  # end of stream flows down the chain
        for p in (cap_a, dump_a, send, cap_b, cons):
            p.wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for r in (ra, rb):
            if os.path.exists("/dev/shm/" + r):
                os.unlink("/dev/shm/" + r)
    a_cap = {}
    for line in open(ahdr):
        f = line.split()
        a_cap[int(f[1]) * 90000 * int(f[2]) // int(f[3])] = int(f[4])
    rows = [tuple(int(x) for x in l.split()) for l in open(rx)]
    t0 = rows[0][2] if rows else 0
    total, wire, cons_ms, unmatched = [], [], [], 0
    for pts, b_cap, now in rows:
        if now - t0 < 2e9:  # warm-up: SRT handshake, the receiver's probing
            continue
        c = a_cap.get(pts)
        if c is None:
            unmatched += 1
            continue
        total.append((now - c) / 1e6)
        wire.append((b_cap - c) / 1e6)
        cons_ms.append((now - b_cap) / 1e6)
    st = json.load(open(stats))
    print("== glass to glass %dx%d30, --low-latency (x264 -preset %s, tune zerolatency), SRT latency %d ms, %d s"
          % (w, h, a.ll_preset, a.srt_latency_ms, a.seconds))
    print("  frames received %d (after 2 s warm-up %d, unmatched %d), ring A frames %d, send skipped %d"
          % (len(rows), len(total), unmatched, len(a_cap), st["skipped"]))
    print("  total   capture -> consumer        p50 %7.1f ms  p99 %7.1f ms" % (pct(total, 50), pct(total, 99)))
    bst = json.load(open(bstats))
    nf, nb = max(st["frames"], 1), max(bst["frames_written"], 1)
    print("  send    capture -> packet written  p50 %7.1f ms  p99 %7.1f ms  (per frame: copy %.2f ms, x264 calls %.2f ms"
          " on the main thread; process CPU %.1f ms)"
          % (st["latency_ms_p50"], st["latency_ms_p99"], 1e3 * st["cpu_convert_s"] / nf,
             1e3 * st["cpu_encode_s"] / nf, 1e3 * st["cpu_process_s"] / nf))
    print("  receive capture -> in ring B       p50 %7.1f ms  p99 %7.1f ms  (send + SRT + demux + H.264 decode: decode"
          " %.2f ms CPU per frame on the main thread, process CPU %.1f ms)"
          % (pct(wire, 50), pct(wire, 99), 1e3 * bst["cpu_decode_s"] / nb, 1e3 * bst["cpu_process_s"] / nb))
    print("  hand-off ring B -> Python          p50 %7.1f ms  p99 %7.1f ms" % (pct(cons_ms, 50), pct(cons_ms, 99)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--send", required=True)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--lib", required=True, help="libframering shared library (for the Python consumer)")
    ap.add_argument("--pkg", required=True, help="the viewer_py folder")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--ll-preset", default="ultrafast")
    ap.add_argument("--srt-latency-ms", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--only", choices=["throughput", "latency"])
    ap.add_argument("--send-opt", action="append", default=[], help="extra -o KEY=VALUE for the sender")
    ap.add_argument("--compare-send", action="append", default=[], metavar="PROGRAM",
                    help="another framering-send (e.g. an older build) for the throughput case: one more row, "
                         "interleaved with the others")
    a = ap.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("bench_send: the ffmpeg program is needed")
    print("machine: %d cores, load %.2f %.2f %.2f" % ((os.cpu_count() or 0,) + os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        if a.only in (None, "throughput"):
            throughput(a, tmp)
        if a.only in (None, "latency"):
            for w, h in ((1920, 1080), (1280, 720)):
                latency(a, tmp, w, h)


if __name__ == "__main__":
    main()
