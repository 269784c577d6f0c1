#!/usr/bin/env bash
# demo.sh: install what is missing, build, and play the sample video through a ring into the SDL2 viewer
# (a real window when there is a display, --headless otherwise). Extra arguments go to the viewer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FRAMERING_BUILD_DIR:-$root/build}
"$root/.ci/install-deps"
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

ring="demo-$$"
view_args=()
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "demo: no display found: running the viewer headless (set DISPLAY for a window)" >&2
  view_args+=(--headless)
fi
"$build/app/capture/framering-capture" --ring "$ring" --realtime "$root/assets/sample.mp4" &
producer=$!
trap 'kill "$producer" 2>/dev/null || true' EXIT INT TERM
"$build/app/view/framering-view" --ring "$ring" --every "${view_args[@]}" "$@"
wait "$producer"
