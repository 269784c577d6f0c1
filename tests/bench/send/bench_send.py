#!/usr/bin/env python3
"""bench_send.py - framering-send figures: encode throughput against the ffmpeg CLI, and glass-to-glass
latency of the loopback chain. A benchmark: it prints figures, it asserts nothing.

1. Throughput. The same N raw 1080p yuv420p frames (testsrc2, written to a file once) are encoded
   with libx264 at the same settings into an mp4 by
     ffmpeg:          cat frames.yuv | ffmpeg -f rawvideo -pix_fmt yuv420p -s 1920x1080 -r 30 -i pipe: -c:v libx264 ...
     framering-send:  framering-capture -f rawvideo frames.yuv (plain copy into ring) -> framering-send
   Wall time from start to the finished file, best of --runs; the ratio is send fps / ffmpeg fps.

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


def throughput(a, tmp):
    w, h, n = 1920, 1080, a.frames
    frames = os.path.join(tmp, "frames.yuv")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=%dx%d:rate=30" % (w, h),
                    "-frames:v", str(n), "-pix_fmt", "yuv420p", "-f", "rawvideo", "-y", frames], check=True)
    enc = ["-preset", a.preset, "-crf", "23"]
    ff_t, send_t, send_stats = [], [], None
    for run in range(a.runs):
        out = os.path.join(tmp, "ff.mp4")
        t0 = time.monotonic()
        cat = subprocess.Popen(["cat", frames], stdout=subprocess.PIPE)
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s",
                        "%dx%d" % (w, h), "-r", "30", "-i", "pipe:", "-c:v", "libx264"] + enc + ["-y", out],
                       stdin=cat.stdout, check=True)
        cat.wait()
        ff_t.append(time.monotonic() - t0)

        out = os.path.join(tmp, "send.mp4")
        stats = os.path.join(tmp, "send.json")
        ring = "bench-send-%d" % os.getpid()
        t0 = time.monotonic()
        send = subprocess.Popen([a.send, "-q", "-r", ring, "-w", "20", "--stats-json", stats, "--preset", a.preset,
                                 "--crf", "23", out])
        try:
            subprocess.run([a.capture, "-q", "-r", ring, "--on-full", "block", "-p", "i420", "-s", "source",
                            "-f", "rawvideo", "-o", "video_size=%dx%d" % (w, h), "-o", "pixel_format=yuv420p",
                            "-o", "framerate=30", frames], check=True)
            send.wait(timeout=600)
        finally:
            if send.poll() is None:
                send.kill()
                send.wait()
            if os.path.exists("/dev/shm/" + ring):
                os.unlink("/dev/shm/" + ring)
        send_t.append(time.monotonic() - t0)
        send_stats = json.load(open(stats))
        assert send_stats["frames"] == n, send_stats
    ff, se = min(ff_t), min(send_t)
    sizes = (os.path.getsize(os.path.join(tmp, "ff.mp4")), os.path.getsize(os.path.join(tmp, "send.mp4")))
    print("== encode throughput: %d frames 1920x1080 yuv420p, libx264 -preset %s -crf 23 -> mp4, best of %d"
          % (n, a.preset, a.runs))
    print("  ffmpeg -f rawvideo -i pipe:   %6.2f s  %6.1f fps   (runs: %s)" % (ff, n / ff, " ".join("%.2f" % t for t in ff_t)))
    print("  framering-send (ring)         %6.2f s  %6.1f fps   (runs: %s)" % (se, n / se, " ".join("%.2f" % t for t in send_t)))
    print("  ratio send / ffmpeg: %.2fx   (files: ffmpeg %d bytes, send %d bytes: the same encode)"
          % (ff / se, sizes[0], sizes[1]))
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
