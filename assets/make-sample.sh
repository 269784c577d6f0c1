#!/bin/sh
# make-sample.sh - regenerate the sample videos in assets/ (the exact commands that made them).
# Needs Debian's ffmpeg 5.1 with libx264. Output: sample.mp4 (5 s, 1920x1080, 30 fps, 150 frames,
# H.264 High, yuv420p, GOP 30, 2 B-frames, ~1.4 MB) and sample-320x240.mp4 (3 s, 90 frames, ~64 kB).
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=5 \
	-c:v libx264 -preset medium -crf 30 -pix_fmt yuv420p -g 30 -bf 2 -movflags +faststart -an -y sample.mp4
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=320x240:rate=30:duration=3 \
	-c:v libx264 -preset medium -crf 30 -pix_fmt yuv420p -g 30 -bf 2 -movflags +faststart -an -y sample-320x240.mp4
