#!/usr/bin/env bash
# test_python_pkg.sh pip|wheel SOURCE_DIR PYTHON VERSION [CAPTURE]
#   pip:   `pip install --no-build-isolation ./viewer_py` into a fresh venv (--system-site-packages:
#          Debian's numpy), as the README says, from the checkout;
#   wheel: `python3 -m build --no-isolation viewer_py` makes an sdist and, from it, a wheel; check
#          both (name, version = the CMake project's VERSION, tag, the library inside), then install
#          the wheel into a fresh venv.
# Then, from a directory outside the checkout and with no path set (no PYTHONPATH, FRAMERING_LIB,
# LD_LIBRARY_PATH), the installed package reads frames a producer writes (e2e_read.py): the C
# framering-capture when CAPTURE is given, else a Python producer.
set -euo pipefail
mode=$1 src=$2 py=$3 version=$4 capture=${5:-}
tmp=$(mktemp -d /tmp/framering-pytest-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
case "$tmp" in "$src"/*) echo "scratch dir $tmp is inside the checkout" >&2; exit 1;; esac
unset PYTHONPATH FRAMERING_LIB LD_LIBRARY_PATH PYTHONHOME
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1  # offline: never wait for PyPI

"$py" -m venv --system-site-packages "$tmp/venv"
case "$mode" in
pip)
  (cd "$src" && "$tmp/venv/bin/python" -m pip install -q --no-build-isolation ./viewer_py)
  ;;
wheel)
  "$py" -m build --no-isolation --outdir "$tmp/dist" "$src/viewer_py" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log"; exit 1; }
  sdist="$tmp/dist/framering-$version.tar.gz"
  whl=("$tmp/dist/framering-$version-py3-none-linux_"*.whl)
  [ -f "$sdist" ] || { echo "no sdist framering-$version.tar.gz (the CMake project's version) in:"; ls "$tmp/dist"; exit 1; }
  [ -f "${whl[0]}" ] || { echo "no wheel framering-$version-py3-none-linux_*.whl in:"; ls "$tmp/dist"; exit 1; }
  # the sdist carries the C sources (the wheel above was built from it), the wheel the library
  tar tzf "$sdist" >"$tmp/sdist.txt"
  grep -qx "framering-$version/csrc/libring/src/frame.c" "$tmp/sdist.txt" \
    || { echo "sdist lacks csrc/libring/"; exit 1; }
  "$py" - "${whl[0]}" "$version" "$src/viewer_py/framering" <<'PYEOF'
import sys, zipfile
from pathlib import Path
whl, version, pkg = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with zipfile.ZipFile(whl) as z:
    names = set(z.namelist())
    meta = z.read(f"framering-{version}.dist-info/METADATA").decode()
    wheel = z.read(f"framering-{version}.dist-info/WHEEL").decode()
    lib = z.getinfo("framering/libframering-ring.so")
    elf = z.read(lib)[:4]
want = {f"framering/{p.name}" for p in pkg.glob("*.py")} | {"framering/py.typed", "framering/libframering-ring.so"}
assert want <= names, f"wheel lacks {sorted(want - names)}"
assert f"\nVersion: {version}\n" in meta, "wheel version differs from the CMake project's"
assert "Root-Is-Purelib: false" in wheel, wheel
assert elf == b"\x7fELF", "libframering-ring.so in the wheel is no ELF file"
assert not any("__pycache__" in n or n.endswith(".pyc") for n in names), "bytecode in the wheel"
print(f"wheel ok: {Path(whl).name}, {len(names)} files")
PYEOF
  "$tmp/venv/bin/python" -m pip install -q "${whl[0]}"
  ;;
*) echo "usage: $0 pip|wheel SOURCE_DIR PYTHON VERSION [CAPTURE]" >&2; exit 2;;
esac

# pip's view: installed as a distribution of the CMake project's version
got=$("$tmp/venv/bin/python" -m pip show framering | sed -n 's/^Version: //p')
[ "$got" = "$version" ] || { echo "installed framering version '$got', CMake project says '$version'"; exit 1; }
mkdir "$tmp/outside"
cp "$(dirname "$0")/e2e_read.py" "$tmp/outside/"
cd "$tmp/outside"
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
"$tmp/venv/bin/python" e2e_read.py "$site" $capture
"$tmp/venv/bin/python" e2e_read.py "$site"
"$tmp/venv/bin/python" -m framering.view --help >/dev/null
echo "python package ($mode): installed into a fresh venv and read frames from outside the checkout"
