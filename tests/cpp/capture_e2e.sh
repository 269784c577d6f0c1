#!/usr/bin/env bash
# capture_e2e.sh CAPTURE CONSUMER: framering-capture writes 30 frames of a lavfi testsrc2 into a
# ring, the C++ consumer (capture_consumer.cpp) reads them to end of stream and checks them.
set -euo pipefail
capture=$1 consumer=$2
name="frt-$$-cpp-capture"
"$consumer" "$name" 30 320 240 &
cons=$!
trap 'kill $cons 2>/dev/null || true; rm -f /dev/shm/$name' EXIT
# block + wait-consumers: lossless from the first frame, so the count is exact
"$capture" -q -r "$name" -f lavfi testsrc2=size=320x240:rate=30 --frames 30 --format bgr24 \
	--size source --on-full block --wait-consumers 1 --no-realtime
wait $cons
