#!/usr/bin/env python3
"""bench_view.py - framering-view benchmark: 1080p throughput and CPU per frame, a baseline against ffplay, latency.

All runs are headless (SDL offscreen video driver, software renderer, no vsync), so "render" is
SDL's software rasteriser standing in for the GPU. Figures are medians over --runs runs.

 1. Throughput: view_testsrc --prerender (one memcpy per frame, so the producer is cheap) writes
    1080p frames as fast as the viewer takes them (--every). Reported: frames shown per second,
    the viewer's CPU per frame (getrusage, all threads), the texture upload (CLOCK_THREAD_CPUTIME_ID
    around lock/copy/unlock, which with the software renderer includes SDL's conversion to its
    native ARGB texture) and what is left outside the upload, as a share of one core at 60 fps;
    for --upload lock (SDL_LockTexture + copy, the default) and --upload update (SDL_UpdateTexture
    family reading the planes in shared memory directly).
 2. 1080p60 paced: the same at 60 fps, showing that the viewer keeps up and what it costs.
 3. Baseline: the same testsrc2 1080p60 lavfi graph shown (a) by ffplay (decode + convert +
    upload + render in one process: ffplay -an -autoexit -noframedrop, same SDL offscreen driver
    and software renderer, the texture in the same pixel format) and (b) by framering-capture
    into framering-view. CPU per frame of each process, so the cost of the ring hop is visible.
 4. Glass-to-glass latency at 30 fps from testsrc2 (framering-capture paced in real time into
    framering-view --latest): present time minus the frame's capture_ns, p50 and p99.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HEADLESS_ENV = {"SDL_VIDEODRIVER": "offscreen", "SDL_RENDER_DRIVER": "software",
                "SDL_FRAMEBUFFER_ACCELERATION": "0"}


def cpu_s(ru):
    return ru.ru_utime + ru.ru_stime


def spawn(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)


def reap(p, timeout=300):
    """Wait for P and return (returncode, cpu seconds of the process and its threads, stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    return p.returncode, cpu_s(ru), err


def view_run(a, ring, producer, view_extra, tmp):
    """Viewer first (waits for the ring), then the producer. Returns stats + CPU of both."""
    stats = os.path.join(tmp, f"{ring}.json")
    view = spawn([a.view, "-r", ring, "--wait", "30", "--headless", "--no-vsync", "-q", "--stats-json", stats]
                 + view_extra)
    t0 = time.monotonic()
    prod = spawn(producer)
    prc, pcpu, perr = reap(prod)
    vrc, vcpu, verr = reap(view)
    wall = time.monotonic() - t0
    if vrc != 0 or prc != 0:
        sys.exit(f"bench_view: run failed (viewer {vrc}, producer {prc}):\n{verr}{perr}")
    with open(stats) as f:
        st = json.load(f)
    st.update(view_cpu_s=vcpu, prod_cpu_s=pcpu, wall_s=wall)
    return st


def ring_name(tag):
    return f"fr-benchview-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--view", required=True, help="framering-view")
    ap.add_argument("--testsrc", required=True, help="view_testsrc (tests/view)")
    ap.add_argument("--capture", help="framering-capture (sections 3 and 4)")
    ap.add_argument("--ffplay", default=shutil.which("ffplay"), help="ffplay for the baseline")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=600, help="frames per throughput run")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_view-")
    size = "1920x1080"

    print(f"framering-view benchmark: {size}, headless (offscreen, software renderer, no vsync), "
          f"median of {a.runs} runs, {os.cpu_count()} CPUs")

    print("\n1. throughput (producer: view_testsrc --prerender, viewer --every)")
    print(f"   {'format':7} {'--upload':8} {'fps':>7} {'cpu/frame':>10} {'upload':>8} {'render':>8} {'other':>8} "
          f"{'outside upload @60fps':>22}")
    for fmt in ("bgr24", "i420"):
        for upload in ("lock", "update"):
            runs = []
            for _ in range(a.runs):
                ring = ring_name("tp")
                runs.append(view_run(a, ring, [a.testsrc, "--ring", ring, "--format", fmt, "--size", size,
                                               "--frames", str(a.frames), "--prerender", "8", "--wait-consumer",
                                               "30"], ["--every", "--upload", upload], tmp))
            cpu, up, rd = (median(runs, k) for k in ("cpu_ms_per_frame", "upload_cpu_ms_per_frame",
                                                      "render_cpu_ms_per_frame"))
            other = statistics.median(r["cpu_ms_per_frame"] - r["upload_cpu_ms_per_frame"] for r in runs)
            print(f"   {fmt:7} {upload:8} {median(runs, 'fps'):7.1f} {cpu:8.3f}ms {up:6.3f}ms {rd:6.3f}ms "
                  f"{cpu - up - rd:6.3f}ms {other * 60 / 10:20.1f} %")

    print("\n2. 1080p60 paced (view_testsrc --fps 60, 300 frames, viewer --every)")
    print(f"   {'format':7} {'shown':>6} {'skipped+lost':>12} {'fps':>6} {'cpu/frame':>10} {'core share':>11} "
          f"{'outside upload':>15}")
    for fmt in ("bgr24", "i420"):
        runs = []
        for _ in range(a.runs):
            ring = ring_name("60")
            runs.append(view_run(a, ring, [a.testsrc, "--ring", ring, "--format", fmt, "--size", size, "--frames",
                                           "300", "--fps", "60", "--prerender", "8", "--wait-consumer", "30"],
                                 ["--every"], tmp))
        cpu = median(runs, "cpu_ms_per_frame")
        other = statistics.median(r["cpu_ms_per_frame"] - r["upload_cpu_ms_per_frame"] for r in runs)
        print(f"   {fmt:7} {median(runs, 'frames_shown'):6.0f} "
              f"{statistics.median(r['frames_skipped'] + r['frames_lost'] for r in runs):12.0f} "
              f"{median(runs, 'fps'):6.1f} {cpu:8.3f}ms {cpu * 60 / 10:9.1f} % {other * 60 / 10:13.1f} %")

    if a.capture and a.ffplay:
        n, secs = 300, 5
        print(f"\n3. baseline: testsrc2 {size} 60 fps, {n} frames, CPU ms per frame shown")
        print(f"   {'format':7} {'ffplay':>8} {'capture':>8} {'view':>8} {'capture+view':>13} {'(c+v)/ffplay':>13} "
              f"{'view/ffplay':>12} {'ffplay wall':>12} {'ring wall':>10}")
        for fmt, avfmt in (("bgr24", "bgr24"), ("i420", "yuv420p")):
            ff, fr = [], []
            for _ in range(a.runs):
                graph = f"testsrc2=size={size}:rate=60:duration={secs}"
                t0 = time.monotonic()
                p = spawn([a.ffplay, "-hide_banner", "-loglevel", "error", "-nostats", "-an", "-autoexit",
                           "-noframedrop", "-f", "lavfi", f"{graph},format={avfmt}"], HEADLESS_ENV)
                rc, c, err = reap(p)
                if rc != 0:
                    sys.exit(f"bench_view: ffplay failed ({rc}): {err}")
                ff.append({"cpu": c / n * 1e3, "wall": time.monotonic() - t0})
                ring = ring_name("ff")
                # Lossless like ffplay -noframedrop (a lavfi graph would drop when the ring is full).
                st = view_run(a, ring, [a.capture, "-r", ring, "--quiet", "-f", "lavfi", graph, "-s", size,
                                        "-p", fmt, "--on-full", "block"], ["--every"], tmp)
                shown = max(st["frames_shown"], 1)
                fr.append({"cap": st["prod_cpu_s"] / shown * 1e3, "view": st["view_cpu_s"] / shown * 1e3,
                           "wall": st["wall_s"], "shown": st["frames_shown"]})
            f_cpu = median(ff, "cpu")
            cap, view = median(fr, "cap"), median(fr, "view")
            print(f"   {fmt:7} {f_cpu:6.2f}ms {cap:6.2f}ms {view:6.2f}ms {cap + view:11.2f}ms "
                  f"{(cap + view) / f_cpu:12.2f}x {view / f_cpu:11.2f}x {median(ff, 'wall'):10.2f}s "
                  f"{median(fr, 'wall'):8.2f}s   (frames shown by the viewer: {median(fr, 'shown'):.0f})")
        print("   (whole-process CPU including start-up; ffplay also shows every frame: -noframedrop)")

    print(f"\n4. glass-to-glass latency at 30 fps, {size}, viewer --latest (frame interval 33.33 ms)")
    print(f"   {'source':34} {'format':7} {'p50':>8} {'p99':>8} {'max':>8}")
    sources = [("view_testsrc --fps 30", lambda ring, fmt: [
        a.testsrc, "--ring", ring, "--format", fmt, "--size", size, "--frames", "150", "--fps", "30",
        "--prerender", "8", "--wait-consumer", "30"])]
    if a.capture:
        sources.append(("framering-capture testsrc2 (paced)", lambda ring, fmt: [
            a.capture, "-r", ring, "--quiet", "-f", "lavfi", f"testsrc2=size={size}:rate=30", "-s", size,
            "-p", fmt, "--frames", "150"]))
    for name, producer in sources:
        for fmt in ("bgr24", "i420"):
            runs = []
            for _ in range(a.runs):
                ring = ring_name("lat")
                runs.append(view_run(a, ring, producer(ring, fmt), ["--latest"], tmp))
            print(f"   {name:34} {fmt:7} {median(runs, 'latency_ms_p50'):6.2f}ms "
                  f"{median(runs, 'latency_ms_p99'):6.2f}ms {median(runs, 'latency_ms_max'):6.2f}ms")
    print("   (latency = time after SDL_RenderPresent minus the frame's capture_ns. view_testsrc stamps it\n"
          "    just before the commit; framering-capture stamps it when a paced frame falls due (after\n"
          "    its pacing sleep), as a camera would deliver it. With a real display and vsync, add up to\n"
          "    one refresh interval.)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
