#!/usr/bin/env bash
# clang_build.sh SRC INCLUDE_DIR LIBRING_A OUT: build the C++ wrapper's tests with clang++
# (-std=c++17 -Wall -Wextra -Wpedantic -Werror and the warnings tests/cpp/CMakeLists.txt adds) against the static libring, then run them.
set -euo pipefail
src=$1 inc=$2 lib=$3 out=$4
cxx=${FRAMERING_CLANGXX:-clang++}
mkdir -p "$(dirname "$out")"
# The include directory is made to look like the installed one: <framering/framering.hpp>.
mkdir -p "$out.inc"
ln -sfn "$inc" "$out.inc/framering"
"$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor \
      -Woverloaded-virtual -Wcast-qual -Wnull-dereference -Wmissing-declarations -I"$out.inc" "$src" "$lib" -pthread -lrt -o "$out"
"$out"
