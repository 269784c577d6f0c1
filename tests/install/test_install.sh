#!/usr/bin/env bash
# test_install.sh BUILD_DIR CONSUMER_SRC: install libring to a scratch prefix and use it from outside, both ways.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/framering/ring.h"
# find_package
cmake -S "$src" -B "$tmp/fp" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/fp" >/dev/null
"$tmp/fp/uses_find_package"
# pkg-config (static: the shared library would need an rpath or LD_LIBRARY_PATH)
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/$(gcc -dumpmachine)/pkgconfig"
pkg-config --exists framering
cc -std=c11 "$src/main.c" -o "$tmp/uses_pkg_config" $(pkg-config --cflags framering) \
   -L"$(pkg-config --variable=libdir framering)" -Wl,-Bstatic -lframering-ring -Wl,-Bdynamic $(pkg-config --libs-only-other --static framering) -lrt
"$tmp/uses_pkg_config"
# and the shared library, as the Python package loads it
cc -std=c11 "$src/main.c" -o "$tmp/uses_shared" $(pkg-config --cflags --libs framering) -Wl,-rpath,"$(pkg-config --variable=libdir framering)"
"$tmp/uses_shared"
echo "install test: find_package, pkg-config static and shared all work"
