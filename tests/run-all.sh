#!/usr/bin/env bash
# run-all.sh: install what is missing, build framering, run every test (ctest: C, Python, end to end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FRAMERING_BUILD_DIR:-$root/build}
"$root/.ci/install-deps"
cmake -S "$root" -B "$build" -DFRAMERING_WERROR=ON ${FRAMERING_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"${FRAMERING_TEST_JOBS:-2}" "$@"
