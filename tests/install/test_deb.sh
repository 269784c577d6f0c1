#!/usr/bin/env bash
# test_deb.sh [--install] BUILD_DIR: the package's version and library directory are the build tree's
# (CPackConfig.cmake's CPACK_PACKAGE_VERSION = project(VERSION), CMAKE_INSTALL_LIBDIR).
# The Debian package (issue 14.5): build it from BUILD_DIR with cpack, check its control data
# (name, version, dependencies found by dpkg-shlibdeps, shlibs, maintainer scripts) and its
# files (library, headers, pkg-config and CMake files, programs, man pages, the Python package
# in dist-packages; nothing outside /usr, no bytecode), then use what it contains:
#   default:   extract it with dpkg-deb -x (no root, nothing touches /) and run from there, with
#              LD_LIBRARY_PATH and PYTHONPATH pointing into the extracted tree;
#   --install: (root, a machine to change: CI) apt-get install it, run the installed programs
#              and /usr/bin/python3 from outside the checkout, then purge it and check that
#              nothing is left in its paths.
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
installed=0
cleanup() {
  if [ $installed = 1 ]; then dpkg --purge framering >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in cpack dpkg-deb dpkg-shlibdeps help2man; do
  command -v $tool >/dev/null || fail "$tool missing (.ci/install-deps installs it)"
done
unset PYTHONPATH FRAMERING_LIB LD_LIBRARY_PATH

# --- build
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 \
  || { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
arch=$(dpkg --print-architecture)
deb="$tmp/pkg/framering_${version}_${arch}.deb"
[ -f "$deb" ] || { ls "$tmp/pkg"; fail "no framering_${version}_${arch}.deb (the CMake project's version)"; }

# --- control data
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = framering ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), CMake project: $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
# from dpkg-shlibdeps (the programs' libraries) and the Python package's own
for dep in 'libc6 [(]>=' 'libavformat[0-9]+ ' 'libavcodec[0-9]+ ' 'libswscale[0-9]+ ' 'libsdl2-2.0-0 ' \
           'python3(,|$)' 'python3-numpy'; do
  grep -Eq "(^|, )$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
dpkg-deb -I "$deb" >"$tmp/info"
for member in shlibs postinst prerm postrm triggers; do
  grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? +$member( |$)" "$tmp/info" || fail "control member $member missing"
done
# The linker cache is refreshed by dpkg's ldconfig trigger, not by the maintainer scripts.
grep -qx "activate-noawait ldconfig" <<<"$(dpkg-deb -I "$deb" triggers)" || fail "triggers: $(dpkg-deb -I "$deb" triggers)"
for script in postinst postrm; do
  ! grep -q '^[^#]*ldconfig' <<<"$(dpkg-deb -I "$deb" $script)" || fail "$script calls ldconfig itself"
done
# (no `cmd | grep -q` anywhere: under pipefail, grep's early exit would fail the pipeline by SIGPIPE)
grep -qx "libframering-ring $so_major framering (>= $version)" <<<"$(dpkg-deb -I "$deb" shlibs)" || fail "shlibs: $(dpkg-deb -I "$deb" shlibs)"

# --- files
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$tmp/files"
py=/usr/lib/python3/dist-packages/framering
want=(/usr/include/framering/ring.h /usr/include/framering/frame.h
      "/usr/$libdir/libframering-ring.so" "/usr/$libdir/libframering-ring.so.$so_major"
      "/usr/$libdir/libframering-ring.so.$version" "/usr/$libdir/libframering-ring.a"
      "/usr/$libdir/pkgconfig/framering.pc" "/usr/$libdir/cmake/framering/framering-config.cmake"
      "/usr/$libdir/cmake/framering/framering-config-version.cmake"
      "/usr/$libdir/cmake/framering/framering-targets.cmake"
      $py/py.typed $py/libframering-ring.so /usr/share/framering/sample.mp4)
for f in "$src"/viewer_py/framering/*.py; do want+=("$py/$(basename "$f")"); done
for p in capture view dump ctl send; do want+=(/usr/bin/framering-$p /usr/share/man/man1/framering-$p.1.gz); done
for f in "${want[@]}"; do grep -qxF "$f" "$tmp/files" || fail "the .deb lacks $f"; done
outside=$(grep -v '^/usr\(/\|$\)' "$tmp/files" | grep -vx '' || true)
[ -z "$outside" ] || fail "files outside /usr: $outside"
! grep -Eq '__pycache__|\.pyc$|^/usr/local' "$tmp/files" || fail "bytecode or /usr/local in the .deb"
# A native package's Debian changelog, whose newest entry is this version.
changelog=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/doc/framering/changelog.gz | zcat)
[ "$(head -1 <<<"$changelog")" = "framering ($version) unstable; urgency=medium" ] \
  || fail "changelog.gz: the newest entry is '$(head -1 <<<"$changelog")', the package is $version"
echo "deb: $(basename "$deb"): ${#want[@]} expected files present; Depends: $depends"

# --- lintian (when installed: .ci/install-deps installs it). What it still finds is known and
# written down in README (Debian package): anything else fails.
if command -v lintian >/dev/null; then
  known='bogus-mail-host|bogus-mail-host-in-debian-changelog|no-copyright-file|link-to-shared-library-in-wrong-package|package-name-doesnt-match-sonames'
  # Configured without -DCMAKE_INSTALL_PREFIX=/usr, the library is in /usr/lib, not the multiarch directory.
  [[ "$libdir" == lib/*-linux-* ]] || known+='|pkg-config-unavailable-for-cross-compilation'
  lintian --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 || true
  new_tags=$(grep -E '^[EW]: ' "$tmp/lintian" | grep -Ev "^[EW]: framering: ($known)( |$)" || true)
  [ -z "$new_tags" ] || fail "lintian: $new_tags"
  echo "deb: lintian finds only the known tags ($(grep -cE '^[EW]: ' "$tmp/lintian") lines: $known)"
else
  echo "deb: lintian not installed: not run"
fi

# --- man pages: checked in the package's own files (a Docker image's dpkg excludes /usr/share/man)
dpkg-deb -x "$deb" "$tmp/root"
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
  ! dpkg -s framering >/dev/null 2>&1 || fail "a framering package is installed already: not replacing it"
  installed=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 \
    || { cat "$tmp/apt.log"; fail "apt-get install $deb"; }
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
  dpkg -L framering >"$tmp/owned"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq framering >"$tmp/purge.log" 2>&1 \
    || { cat "$tmp/purge.log"; fail "apt-get purge framering"; }
  installed=0
  ! dpkg -s framering >/dev/null 2>&1 || fail "framering still known to dpkg after purge"
  left=()
  while read -r f; do
    case "$f" in /.|/usr|/usr/bin|/usr/include|/usr/lib|/usr/lib/*-linux-gnu|/usr/lib/pkgconfig|/usr/lib/cmake|\
      /usr/lib/python3|/usr/lib/python3/dist-packages|/usr/share|/usr/share/man|/usr/share/man/man1|\
      /usr/share/doc|/usr/lib/*-linux-gnu/pkgconfig|/usr/lib/*-linux-gnu/cmake) continue;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
  done <"$tmp/owned"
  [ -e $py ] && left+=($py)
  [ ${#left[@]} = 0 ] || fail "left after purge: ${left[*]}"
  echo "deb: purged; none of its $(wc -l <"$tmp/owned") paths is left"
fi
echo "deb test passed ($([ $install = 1 ] && echo "installed into /, then purged" || echo "extracted, not installed"))"
