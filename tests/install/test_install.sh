#!/usr/bin/env bash
# test_install.sh BUILD_DIR CONSUMER_SRC [CONSUMER_CPP_SRC]: install libring to a scratch prefix and use it
# from outside, both ways; with CONSUMER_CPP_SRC also the C++ wrapper (framering.hpp), both ways.
set -euo pipefail
build=$1 src=$2 cpp_src=${3:-}
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
if [ -n "$cpp_src" ]; then
  test -f "$tmp/prefix/include/framering/framering.hpp"
  cxx=${CXX:-c++}
  # find_package: framering::cpp gives the include path, libring and C++17 (raising the
  # project's C++11 to it: the header stops with #error below C++17)
  cmake -S "$cpp_src" -B "$tmp/fp_cpp" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_CXX_STANDARD=11 -DCMAKE_CXX_EXTENSIONS=OFF >/dev/null
  cmake --build "$tmp/fp_cpp" >/dev/null
  "$tmp/fp_cpp/uses_find_package_cpp"
  # pkg-config: the same flags as for C, plus -std=c++17
  "$cxx" -std=c++17 -Wall -Wextra -Werror "$cpp_src/main.cpp" -o "$tmp/uses_pkg_config_cpp" $(pkg-config --cflags framering) \
     -L"$(pkg-config --variable=libdir framering)" -Wl,-Bstatic -lframering-ring -Wl,-Bdynamic $(pkg-config --libs-only-other --static framering) -lrt
  "$tmp/uses_pkg_config_cpp"
  echo "install test: the C++ wrapper through find_package and pkg-config works"
fi
echo "install test: find_package, pkg-config static and shared all work"
