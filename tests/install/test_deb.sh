#!/usr/bin/env bash
# test_deb.sh [--install] BUILD_DIR: the package's version and library directory are the build tree's
# (CPackConfig.cmake's CPACK_PACKAGE_VERSION = project(VERSION), CMAKE_INSTALL_LIBDIR).
# The Debian packages (issue 14.5; split since 0.5): build them from BUILD_DIR with cpack --
#   libframering-ring<N> (the shared library), libframering-ring-dev (headers, static library,
#   pkg-config and CMake files), framering (programs, man pages, sample), python3-framering --
# check their control data (names, version, dependencies found by dpkg-shlibdeps and each one's
# own, which package pulls in FFmpeg, SDL2 or Python and which does not, Breaks/Replaces of the
# one package of 0.4 and before, shlibs, maintainer scripts) and their files (each file in the
# package it belongs to, nothing outside /usr, no bytecode), then use what they contain:
#   default:   extract them with dpkg-deb -x (no root, nothing touches /) and run from there, with
#              LD_LIBRARY_PATH and PYTHONPATH pointing into the extracted tree;
#   --install: (root, a machine to change: CI) install a stand-in for the one package of 0.4
#              first, then apt-get install the four over it (an upgrade that moves files between
#              packages), run the installed programs and /usr/bin/python3 from outside the
#              checkout, then purge them and check that nothing is left in their paths.
# Either way: every program's --help, a capture -> dump run of a lavfi test source, the man
# pages render, `import framering` plus an end-to-end read (e2e_read.py), and an outside C
# program built against the packaged library with pkg-config (static and shared) and
# find_package.
set -euo pipefail
install=0
[ "${1:-}" = --install ] && { install=1; shift; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
[ -f "$build/CPackConfig.cmake" ] || { echo "FAIL: no $build/CPackConfig.cmake: packaging not configured" >&2; exit 1; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
so_major=${version%%.*}   # SOVERSION is the project's major version (libring/CMakeLists.txt)
[ -n "$version" ] && [ -n "$libdir" ] || { echo "FAIL: version '$version' or libdir '$libdir' not found in $build" >&2; exit 1; }
tmp=$(mktemp -d /tmp/framering-debtest-XXXXXX)
lib_pkg=libframering-ring$so_major
packages=($lib_pkg libframering-ring-dev framering python3-framering)
installed=0
cleanup() {
  if [ $installed = 1 ]; then dpkg --purge "${packages[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# dpkg's state of a package: installed, config-files, ...; empty or not-installed when absent
# (dpkg -s also succeeds for a package dpkg merely remembers)
dpkg_state() { dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null || true; }
for tool in cpack dpkg-deb dpkg-shlibdeps help2man; do
  command -v $tool >/dev/null || fail "$tool missing (.ci/install-deps installs it)"
done
unset PYTHONPATH FRAMERING_LIB LD_LIBRARY_PATH

# --- build
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 \
  || { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
arch=$(dpkg --print-architecture)
declare -A deb
for p in "${packages[@]}"; do
  deb[$p]="$tmp/pkg/${p}_${version}_${arch}.deb"
  [ -f "${deb[$p]}" ] || { ls "$tmp/pkg"; fail "no ${p}_${version}_${arch}.deb (the CMake project's version)"; }
done
[ "$(ls "$tmp/pkg"/*.deb | wc -l)" = ${#packages[@]} ] || fail "cpack made other packages too: $(ls "$tmp/pkg")"

# --- control data
field() { dpkg-deb -f "${deb[$1]}" "$2"; }
# has PACKAGE FIELD REGEX / lacks PACKAGE FIELD REGEX: an entry of a comma-separated field
has() { grep -Eq "(^|, )$3" <<<"$(field "$1" "$2")" || fail "$1: $2 lacks $3: $(field "$1" "$2")"; }
lacks() { ! grep -Eq "(^|, )$3" <<<"$(field "$1" "$2")" || fail "$1: $2 has $3: $(field "$1" "$2")"; }
for p in "${packages[@]}"; do
  [ "$(field $p Package)" = $p ] || fail "Package: $(field $p Package), file ${deb[$p]}"
  [ "$(field $p Version)" = "$version" ] || fail "$p: Version: $(field $p Version), CMake project: $version"
  [ "$(field $p Architecture)" = "$arch" ] || fail "$p: Architecture: $(field $p Architecture)"
  [ "$(field $p Description | wc -l)" -gt 2 ] || fail "$p: Description: $(field $p Description)"
done
# The library needs libc alone. The programs link it statically and need FFmpeg and SDL2, not
# Python. The Python package and the development files need this very library.
has $lib_pkg Depends 'libc6 [(]>='
for dep in libav libsdl libswscale python3; do lacks $lib_pkg Depends "$dep"; done
for dep in 'libc6 [(]>=' 'libavformat[0-9]+ ' 'libavcodec[0-9]+ ' 'libswscale[0-9]+ ' 'libsdl2-2.0-0 '; do
  has framering Depends "$dep"
done
for dep in python3 "$lib_pkg"; do lacks framering Depends "$dep"; done
has libframering-ring-dev Depends "$lib_pkg [(]= $version[)]"
for dep in "$lib_pkg [(]= $version[)]" 'python3(,|$)' 'python3-numpy'; do has python3-framering Depends "$dep"; done
has python3-framering Recommends python3-opencv
# 0.4 and before were one package, framering: the packages now holding its files take them over.
for p in $lib_pkg libframering-ring-dev python3-framering; do
  for f in Breaks Replaces; do has $p $f "framering [(]<< 0[.]5[.]0[)]"; done
done
members() {
  dpkg-deb -I "${deb[$1]}" | sed -nE 's/^ +[0-9]+ bytes, +[0-9]+ lines +\*? +([a-z0-9]+).*/\1/p' \
    | grep -vx 'control\|md5sums' | sort | xargs
}
[ "$(members $lib_pkg)" = "postinst postrm shlibs triggers" ] || fail "$lib_pkg control members: $(members $lib_pkg)"
[ "$(members python3-framering)" = "postinst postrm prerm" ] || fail "python3-framering control members: $(members python3-framering)"
for p in libframering-ring-dev framering; do [ -z "$(members $p)" ] || fail "$p control members: $(members $p)"; done
# The linker cache is refreshed by dpkg's ldconfig trigger, not by the maintainer scripts.
grep -qx "activate-noawait ldconfig" <<<"$(dpkg-deb -I "${deb[$lib_pkg]}" triggers)" \
  || fail "triggers: $(dpkg-deb -I "${deb[$lib_pkg]}" triggers)"
for script in postinst postrm; do
  ! grep -q '^[^#]*ldconfig' <<<"$(dpkg-deb -I "${deb[$lib_pkg]}" $script)" || fail "$lib_pkg: $script calls ldconfig itself"
done
# (no `cmd | grep -q` anywhere: under pipefail, grep's early exit would fail the pipeline by SIGPIPE)
grep -qx "libframering-ring $so_major $lib_pkg (>= $version)" <<<"$(dpkg-deb -I "${deb[$lib_pkg]}" shlibs)" \
  || fail "shlibs: $(dpkg-deb -I "${deb[$lib_pkg]}" shlibs)"

# --- files: each in the package it belongs to (the doc directory is each package's own)
for p in "${packages[@]}"; do
  dpkg-deb -c "${deb[$p]}" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' >"$tmp/files-$p"
done
py=/usr/lib/python3/dist-packages/framering
declare -A want
want[$lib_pkg]="/usr/$libdir/libframering-ring.so.$so_major /usr/$libdir/libframering-ring.so.$version"
want[libframering-ring-dev]="/usr/include/framering/ring.h /usr/include/framering/frame.h
  /usr/include/framering/framering.hpp /usr/$libdir/libframering-ring.so /usr/$libdir/libframering-ring.a
  /usr/$libdir/pkgconfig/framering.pc /usr/$libdir/cmake/framering/framering-config.cmake
  /usr/$libdir/cmake/framering/framering-config-version.cmake /usr/$libdir/cmake/framering/framering-targets.cmake"
want[framering]=/usr/share/framering/sample.mp4
for p in capture view dump ctl send; do want[framering]+=" /usr/bin/framering-$p /usr/share/man/man1/framering-$p.1.gz"; done
want[python3-framering]="$py/py.typed $py/libframering-ring.so"
for f in "$src"/viewer_py/framering/*.py; do want[python3-framering]+=" $py/$(basename "$f")"; done
nwant=0
for p in "${packages[@]}"; do
  for f in ${want[$p]} /usr/share/doc/$p/changelog.gz; do
    grep -qxF "$f" "$tmp/files-$p" || fail "$p lacks $f"
    nwant=$((nwant + 1))
  done
done
# Nothing is in two packages, and the library's package holds nothing a developer alone needs.
twice=$(cat "$tmp"/files-* | sort | uniq -d)
[ -z "$twice" ] || fail "in two packages: $twice"
! grep -Eq '\.a$|\.so$|include/|\.mp4$' "$tmp/files-$lib_pkg" || fail "$lib_pkg holds more than the library: $(cat "$tmp/files-$lib_pkg")"
outside=$(cat "$tmp"/files-* | grep -v '^/usr/' || true)
[ -z "$outside" ] || fail "files outside /usr: $outside"
! grep -Eq '__pycache__|\.pyc$|^/usr/local' "$tmp"/files-* || fail "bytecode or /usr/local in a .deb"
# A native package's Debian changelog, whose newest entry is this version, in each package.
for p in "${packages[@]}"; do
  changelog=$(dpkg-deb --fsys-tarfile "${deb[$p]}" | tar -xOf - ./usr/share/doc/$p/changelog.gz | zcat)
  [ "$(head -1 <<<"$changelog")" = "framering ($version) unstable; urgency=medium" ] \
    || fail "$p: changelog.gz: the newest entry is '$(head -1 <<<"$changelog")', the package is $version"
done
echo "deb: ${packages[*]} ($version): $nwant expected files, each in its package; framering Depends: $(field framering Depends)"

# --- lintian (when installed: .ci/install-deps installs it). What it still finds is known and
# written down in README (Debian package): anything else fails.
if command -v lintian >/dev/null; then
  known='bogus-mail-host|bogus-mail-host-in-debian-changelog|no-copyright-file'
  # Configured without -DCMAKE_INSTALL_PREFIX=/usr, the library is in /usr/lib, not the multiarch directory.
  [[ "$libdir" == lib/*-linux-* ]] || known+='|pkg-config-unavailable-for-cross-compilation'
  lintian --tag-display-limit 0 "${deb[@]}" >"$tmp/lintian" 2>&1 || true
  new_tags=$(grep -E '^[EW]: ' "$tmp/lintian" | grep -Ev "^[EW]: [a-z0-9.+-]+: ($known)( |$)" || true)
  [ -z "$new_tags" ] || fail "lintian: $new_tags"
  echo "deb: lintian finds only the known tags ($(grep -cE '^[EW]: ' "$tmp/lintian") lines: $known)"
else
  echo "deb: lintian not installed: not run"
fi

# --- man pages: checked in the package's own files (a Docker image's dpkg excludes /usr/share/man)
for p in "${packages[@]}"; do dpkg-deb -x "${deb[$p]}" "$tmp/root"; done
for p in capture view dump ctl send; do
  man=$tmp/root/usr/share/man/man1/framering-$p.1.gz
  page=$(zcat "$man")
  grep -q "^\.TH FRAMERING-${p^^} \"1\"" <<<"$page" || fail "$man: no .TH header"
  grep -q '\\-\\-help' <<<"$page" || fail "$man: the --help text is not in it"
  if command -v man >/dev/null; then
    grep -q "framering-$p" <<<"$(MANWIDTH=80 man -l "$man" 2>/dev/null)" || fail "man -l $man renders nothing"
  fi
done

# --- where to run it from
if [ $install = 1 ]; then
  [ "$(id -u)" = 0 ] || fail "--install needs root"
  for p in "${packages[@]}"; do
    [[ "$(dpkg_state $p)" =~ ^(not-installed)?$ ]] || fail "$p is on this machine already ($(dpkg_state $p)): not replacing it"
  done
  installed=1
  # A stand-in for the one package of 0.4 and before: framering 0.4.0 holding a file of each
  # package that took its files over. Installing the four over it is an upgrade that moves files
  # between packages. dpkg unpacks them in the order given, the library's first, while the old
  # framering still owns those files: without Replaces, dpkg refuses to overwrite them. (apt
  # would unpack the new framering first, which hides a missing Replaces; like apt, the test lets
  # dpkg deconfigure the old framering, which the new packages Break.) The build machine
  # has every dependency already.
  old=$tmp/old-framering
  mkdir -p "$old/DEBIAN" "$old/usr/include/framering" "$old/usr/$libdir" "$old$py"
  printf 'Package: framering\nVersion: 0.4.0\nArchitecture: %s\nMaintainer: test <test@localhost>\nDescription: stand-in for framering 0.4.0\n' \
    "$arch" >"$old/DEBIAN/control"
  cp "$tmp/root/usr/include/framering/ring.h" "$old/usr/include/framering/"
  cp "$tmp/root/usr/$libdir/libframering-ring.so.$version" "$old/usr/$libdir/"
  cp "$tmp/root$py/__init__.py" "$old$py/"
  dpkg-deb --root-owner-group -b "$old" "$tmp/old.deb" >/dev/null
  dpkg -i "$tmp/old.deb" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "dpkg -i the stand-in for framering 0.4.0"; }
  dpkg --auto-deconfigure -i "${deb[$lib_pkg]}" "${deb[libframering-ring-dev]}" "${deb[python3-framering]}" "${deb[framering]}" \
    >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "dpkg -i ${packages[*]} over framering 0.4.0"; }
  [ "$(dpkg-query -W -f '${Version}' framering)" = "$version" ] || fail "framering not upgraded: $(dpkg-query -W framering)"
  for f in /usr/include/framering/ring.h "/usr/$libdir/libframering-ring.so.$version" $py/__init__.py; do
    owner=$(dpkg-query -S "$f" | cut -d: -f1)
    [ "$owner" != framering ] || fail "$f is still framering's after the upgrade"
  done
  echo "deb: installed over a stand-in for framering 0.4.0 (one package): its files moved to the new packages"

  root=/ prefix=/usr
  export PKG_CONFIG_PATH="" CMAKE_PREFIX_PATH=""
else
  echo "deb: not installing (pass --install, as root, to install it into /: CI does); running it extracted (dpkg-deb -x)"
  root=$tmp/root prefix=$tmp/root/usr
  export LD_LIBRARY_PATH="$prefix/$libdir"
  export PYTHONPATH="$prefix/lib/python3/dist-packages"
  export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" CMAKE_PREFIX_PATH="$prefix"
fi
bin=$prefix/bin

# --- the programs
for p in capture view dump ctl send; do
  SDL_VIDEODRIVER=dummy "$bin/framering-$p" --help >"$tmp/help" 2>&1 || fail "framering-$p --help exited $?"
  grep -qi usage "$tmp/help" || fail "framering-$p --help printed no usage"
  cp "$tmp/help" "$tmp/help-$p"
done
mkdir "$tmp/outside"
cd "$tmp/outside"
ring="deb-test-$$"
"$bin/framering-capture" -r "$ring" -f lavfi --frames 5 --size source --wait-consumers 1 \
  testsrc2=size=320x240:rate=30 >"$tmp/capture.log" 2>&1 &
cap=$!
"$bin/framering-dump" -r "$ring" --wait 20 --headers headers.txt --raw frames.bgr >"$tmp/dump.log" 2>&1 \
  || { cat "$tmp/dump.log" "$tmp/capture.log"; fail "framering-dump exited $?"; }
wait $cap || { cat "$tmp/capture.log"; fail "framering-capture exited $?"; }
[ "$(wc -l <headers.txt)" = 5 ] || fail "framering-dump wrote $(wc -l <headers.txt) header lines, expected 5"
[ "$(stat -c %s frames.bgr)" = $((5 * 320 * 240 * 3)) ] || fail "frames.bgr: $(stat -c %s frames.bgr) bytes"
"$bin/framering-ctl" list >/dev/null || fail "framering-ctl list exited $?"
# capture -> send: a recording of the same 5 frames, lossless (FFV1 in Matroska)
"$bin/framering-capture" -r "$ring-send" -f lavfi --frames 5 --size source --wait-consumers 1 \
  testsrc2=size=320x240:rate=30 >"$tmp/capture.log" 2>&1 &
cap=$!
"$bin/framering-send" -r "$ring-send" --wait 20 -c ffv1 -q rec.mkv >"$tmp/send.log" 2>&1 \
  || { cat "$tmp/send.log" "$tmp/capture.log"; fail "framering-send exited $?"; }
wait $cap || { cat "$tmp/capture.log"; fail "framering-capture (for send) exited $?"; }
n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 rec.mkv)
[ "$n" = 5 ] || fail "framering-send recorded $n frames, expected 5"
# without INPUT, capture plays the sample installed with it, not a path of the build machine
grep -qxF "  $prefix/share/framering/sample.mp4" "$tmp/help-capture" \
  || fail "framering-capture's default input is not the packaged sample: $(grep -A1 'Default INPUT' "$tmp/help-capture")"
"$bin/framering-capture" -r "$ring-sample" --frames 3 --size 320x240 --wait-consumers 1 >"$tmp/capture.log" 2>&1 &
cap=$!
"$bin/framering-dump" -r "$ring-sample" --wait 20 --headers sample.txt >"$tmp/dump.log" 2>&1 \
  || { cat "$tmp/dump.log" "$tmp/capture.log"; fail "framering-dump of the default input exited $?"; }
wait $cap || { cat "$tmp/capture.log"; fail "framering-capture of its default input exited $?"; }
[ "$(wc -l <sample.txt)" = 3 ] || fail "default input: $(wc -l <sample.txt) frames, expected 3"
echo "deb: programs ran: --help x5, capture -> dump of 5 lavfi frames and of 3 of the packaged sample, capture -> send (5 FFV1 frames), ctl list"

# --- the Python package, with Debian's interpreter, from outside the checkout
/usr/bin/python3 -c "import framering, sys; print(framering.__file__)" >"$tmp/import" \
  || fail "/usr/bin/python3 -c 'import framering' failed"
[ "$(cat "$tmp/import")" = "$prefix/lib/python3/dist-packages/framering/__init__.py" ] \
  || fail "framering imported from $(cat "$tmp/import")"
cp "$here/e2e_read.py" .
/usr/bin/python3 e2e_read.py "$prefix" "$bin/framering-capture"
/usr/bin/python3 e2e_read.py "$prefix"

# --- the C library, as an outside project uses it
cc -std=c11 "$here/consumer/main.c" -o uses_static $(pkg-config --cflags framering) \
   -L"$(pkg-config --variable=libdir framering)" -Wl,-Bstatic -lframering-ring -Wl,-Bdynamic \
   $(pkg-config --libs-only-other --static framering) -lrt
./uses_static >/dev/null
cc -std=c11 "$here/consumer/main.c" -o uses_shared $(pkg-config --cflags --libs framering)
./uses_shared >/dev/null
so=$(ldd ./uses_shared | awk -v n="libframering-ring.so.$so_major" '$1 == n {print $3}')   # /lib is /usr/lib (merged /usr)
[ "$(realpath "$so")" = "$(realpath "$prefix/$libdir/libframering-ring.so.$version")" ] \
  || fail "uses_shared loads libframering-ring.so.$so_major from '$so', not the package's"
cmake -S "$here/consumer" -B fp >/dev/null && cmake --build fp >/dev/null && ./fp/uses_find_package >/dev/null \
  || fail "find_package(framering) against the package"
echo "deb: C library used through pkg-config (static, shared) and find_package"

# --- removal
if [ $install = 1 ]; then
  cd /
  dpkg -L "${packages[@]}" | sort -u >"$tmp/owned"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >"$tmp/purge.log" 2>&1 \
    || { cat "$tmp/purge.log"; fail "apt-get purge ${packages[*]}"; }
  installed=0
  for p in "${packages[@]}"; do
    [[ "$(dpkg_state $p)" =~ ^(not-installed)?$ ]] || fail "$p is $(dpkg_state $p) after purge"
  done
  left=()
  while read -r f; do
    case "$f" in /.|/usr|/usr/bin|/usr/include|/usr/lib|/usr/lib/*-linux-gnu|/usr/lib/pkgconfig|/usr/lib/cmake|\
      /usr/lib/python3|/usr/lib/python3/dist-packages|/usr/share|/usr/share/man|/usr/share/man/man1|\
      /usr/share/doc|/usr/share/lintian|/usr/share/lintian/overrides|/usr/lib/*-linux-gnu/pkgconfig|\
      /usr/lib/*-linux-gnu/cmake) continue;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
  done <"$tmp/owned"
  [ -e $py ] && left+=($py)
  [ ${#left[@]} = 0 ] || fail "left after purge: ${left[*]}"
  echo "deb: purged; none of their $(wc -l <"$tmp/owned") paths is left"
fi
echo "deb test passed ($([ $install = 1 ] && echo "installed into /, then purged" || echo "extracted, not installed"))"
