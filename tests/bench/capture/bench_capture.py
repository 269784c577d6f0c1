#!/usr/bin/env python3
"""bench_capture.py - framering-capture (decode + convert + ring hand-off) against ffmpeg's own decode + convert.

Input: the 1080p sample repeated to --frames frames (remuxed with `ffmpeg -stream_loop
-c copy` into a temporary file, so every contender decodes the same H.264 stream).
Per round, in this order, each timed from process start to exit:

  ffmpeg-null   ffmpeg -i IN -pix_fmt bgr24 -f null -
  ffmpeg-raw    ffmpeg -i IN -pix_fmt bgr24 -f rawvideo -y /dev/null
  framering     framering-capture IN (1920x1080 bgr24, block mode) with
                framering-dump --sum reading every byte of every frame
  framering-noread  the same with a consumer that only peeks and releases
                (shows what reading 6 MB per frame costs on a shared 2-core box)
  framering-2slots  framering with --slots 2 (a 16 MiB ring whose lap can stay in
                the cache) instead of the default 4 (32 MiB)

Prints medians over --runs rounds, the ratio framering / ffmpeg (target >= 0.95),
CPU time per frame (user+sys of each process, from wait4), and from the producer's
--stats-json the CPU time per frame its main thread spent outside decode and
conversion calls (CLOCK_THREAD_CPUTIME_ID around avcodec_*/conversion vs the thread's
total). The machine is shared: only the same-run ratios mean much.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def timed(cmd, **kw):
    """Run CMD; return (wall seconds, cpu seconds, returncode)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, p.returncode


def run_framering(args, inp, frames, tmp, read=True, extra=()):
    ring = "frbench-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6])
    stats = os.path.join(tmp, "stats.json")
    t0 = time.monotonic()
    dump = subprocess.Popen([args.dump, "--ring", ring, "--wait", "30", "--quiet"] + (["--sum"] if read else []))
    cap = subprocess.Popen([args.capture, "--ring", ring, "--quiet", "--stats-json", stats] + list(extra) + [inp])
    _, cst, cru = os.wait4(cap.pid, 0)
    _, dst, dru = os.wait4(dump.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(cst) or os.waitstatus_to_exitcode(dst):
        sys.exit("framering run failed (capture %d, dump %d)" % (os.waitstatus_to_exitcode(cst),
                                                                  os.waitstatus_to_exitcode(dst)))
    if os.path.exists("/dev/shm/" + ring):
        os.unlink("/dev/shm/" + ring)
        sys.exit("ring %s was left behind" % ring)
    st = json.load(open(stats))
    if st["frames_written"] != frames:
        sys.exit("framering wrote %d frames, expected %d" % (st["frames_written"], frames))
    return wall, cru.ru_utime + cru.ru_stime, dru.ru_utime + dru.ru_stime, st


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--loops", type=int, default=4, help="copies of the sample in the input (150 frames each)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="frbench-") as tmp:
        inp = os.path.join(tmp, "long.mp4")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-stream_loop", str(args.loops - 1),
                        "-i", args.sample, "-c", "copy", "-y", inp], check=True)
        frames = int(subprocess.check_output(
            ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_packets", "-of", "csv=p=0", inp], text=True).split()[0])
        ff = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", inp, "-pix_fmt", "bgr24"]
        contenders = {
            "ffmpeg-null": ff + ["-f", "null", "-"],
            "ffmpeg-raw": ff + ["-f", "rawvideo", "-y", "/dev/null"],
        }
        res = {k: [] for k in list(contenders) + ["framering", "framering-noread", "framering-2slots"]}
        cpu = {k: [] for k in list(contenders) + ["framering-capture", "framering-dump"]}
        other_us, nodemux_us, conv_us, proc_us = [], [], [], []
        print("input: %s x%d = %d frames 1920x1080 H.264 -> bgr24; %d runs; %d CPUs" % (
            os.path.basename(args.sample), args.loops, frames, args.runs, os.cpu_count()))
        for r in range(args.runs):
            for name, cmd in contenders.items():
                wall, c, rc = timed(cmd)
                if rc:
                    sys.exit("%s failed" % name)
                res[name].append(frames / wall)
                cpu[name].append(c / frames)
            wall, ccpu, dcpu, st = run_framering(args, inp, frames, tmp)
            res["framering"].append(frames / wall)
            cpu["framering-capture"].append(ccpu / frames)
            cpu["framering-dump"].append(dcpu / frames)
            other_us.append(st["cpu_other_per_frame_us"])
            nodemux_us.append(st["cpu_other_no_demux_per_frame_us"])
            conv_us.append(st["cpu_convert_per_frame_us"])
            proc_us.append(st["cpu_process_per_frame_us"])
            wall, _, _, _ = run_framering(args, inp, frames, tmp, read=False)
            res["framering-noread"].append(frames / wall)
            wall, _, _, _ = run_framering(args, inp, frames, tmp, extra=["--slots", "2"])
            res["framering-2slots"].append(frames / wall)
            print("run %d: " % (r + 1) + "  ".join("%s %.1f fps" % (k, v[-1]) for k, v in res.items()),
                  flush=True)

        med = {k: statistics.median(v) for k, v in res.items()}
        print()
        print("%-17s %10s %10s %10s" % ("", "median fps", "min", "max"))
        for k, v in res.items():
            print("%-17s %10.1f %10.1f %10.1f" % (k, med[k], min(v), max(v)))
        print()
        for base in contenders:
            ratio = med["framering"] / med[base]
            best = max(res["framering"]) / max(res[base])
            print("framering / %-11s = %.3f median, %.3f best of %d  (target >= 0.95: %s)" % (
                base, ratio, best, args.runs, "met" if ratio >= 0.95 else "NOT met"))
        print("framering-noread / ffmpeg-null = %.3f" % (med["framering-noread"] / med["ffmpeg-null"]))
        print("framering-2slots / framering = %.3f median (per run: %s)" % (
            med["framering-2slots"] / med["framering"],
            ", ".join("%.2f" % (a / b) for a, b in zip(res["framering-2slots"], res["framering"]))))
        print()
        print("CPU per frame (user+sys, median):")
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        for k, v in mcpu.items():
            print("  %-18s %8.2f ms" % (k, 1e3 * v))
        print("CPU efficiency, ffmpeg-null / framering-capture = %.3f; / (capture + dump) = %.3f"
              % (mcpu["ffmpeg-null"] / mcpu["framering-capture"],
                 mcpu["ffmpeg-null"] / (mcpu["framering-capture"] + mcpu["framering-dump"])))
        print("producer main thread, per frame (median): outside decode/convert %.1f us "
              "(%.1f us without demuxing: ring hand-off and bookkeeping), in conversion calls %.1f us;\n"
              "whole producer process %.1f us (decoder and swscale worker threads included)"
              % (statistics.median(other_us), statistics.median(nodemux_us), statistics.median(conv_us),
                 statistics.median(proc_us)))


if __name__ == "__main__":
    main()
