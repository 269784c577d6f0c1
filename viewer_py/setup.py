"""setup.py - the C half of the `framering` wheel: build libframering-ring.so with CMake into the package.

pyproject.toml holds the metadata; this file only adds what a declarative file cannot:
  * the version, read from project(framering VERSION ...) in the C project's CMakeLists.txt
    (one place for the C library, the .deb and the wheel);
  * build_py also configures the C project (library only: no programs, no tests, no Python
    check) and builds its shared library target, then copies libframering-ring.so into the
    package, where framering/_lib.py looks first ("next to the package");
  * the wheel is tagged py3-none-<platform>: it holds a native library but no CPython extension,
    so any Python 3 on this platform can load it with ctypes;
  * the sdist carries the C sources it needs (CMakeLists.txt, libring/) under csrc/, so a wheel
    built from the sdist (what `python3 -m build` does) compiles the same library.
Build files go to a scratch directory, never into the checkout (no stale build/lib in a wheel).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # no wheel package: sdist and plain builds still work
    bdist_wheel = None

HERE = Path(__file__).resolve().parent
LIB = "libframering-ring.so"
CSRC = "csrc"  # where the sdist keeps the C sources


def c_tree() -> Path:
    """The C project: csrc/ in an unpacked sdist, else the checkout this directory lives in."""
    for cand in (HERE / CSRC, HERE.parent):
        if (cand / "CMakeLists.txt").is_file() and (cand / "libring" / "CMakeLists.txt").is_file():
            return cand
    raise SystemExit(f"framering: the C sources (CMakeLists.txt and libring/) are neither in {HERE / CSRC} "
                     f"(an sdist) nor in {HERE.parent} (a source checkout)")


def c_version() -> str:
    """VERSION of project(framering ...) in the C project's CMakeLists.txt."""
    text = (c_tree() / "CMakeLists.txt").read_text(encoding="utf-8")
    m = re.search(r"^\s*project\(\s*framering\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", text, re.M)
    if not m:
        raise SystemExit(f"framering: no 'project(framering VERSION x.y.z' in {c_tree() / 'CMakeLists.txt'}")
    return m.group(1)


class BuildPyWithLibrary(build_py):
    """build_py, then build the shared library with CMake and put it into the package."""

    def run(self) -> None:
        super().run()
        cmake = shutil.which("cmake")
        if not cmake:
            raise SystemExit("framering: cmake is needed to build libframering-ring.so (apt-get install cmake)")
        build_dir = Path(self.get_finalized_command("build").build_temp) / "libring-cmake"
        jobs = str(max(1, min(os.cpu_count() or 1, 4)))
        subprocess.run([cmake, "-S", str(c_tree()), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                        "-DFRAMERING_APPS=OFF", "-DFRAMERING_PYTHON=OFF", "-DFRAMERING_PACKAGING=OFF",
                        "-DBUILD_TESTING=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([cmake, "--build", str(build_dir), "--target", "ring_shared", "-j", jobs], check=True)
        built = build_dir / "libring" / LIB
        if not built.exists():
            raise SystemExit(f"framering: CMake built no {built}")
        dest = Path(self.build_lib) / "framering" / LIB
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)  # follows the .so -> .so.N -> .so.N.M.P links: one real file
        os.chmod(dest, 0o755)


class SdistWithCSources(sdist):
    """sdist, plus the C sources a wheel build needs, under csrc/."""

    def make_release_tree(self, base_dir: str, files) -> None:
        super().make_release_tree(base_dir, files)
        src = c_tree()
        dst = Path(base_dir) / CSRC
        dst.mkdir(exist_ok=True)
        shutil.copy2(src / "CMakeLists.txt", dst / "CMakeLists.txt")
        shutil.copytree(src / "libring", dst / "libring", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("build*", "__pycache__", "*.o", "*.so*", "*.a"))


cmdclass = {"build_py": BuildPyWithLibrary, "sdist": SdistWithCSources}


class NativeDistribution(Distribution):
    """The package holds a native library: built and installed as platform code (platlib)."""

    def has_ext_modules(self) -> bool:
        return True


if bdist_wheel is not None:
    class PlatformWheel(bdist_wheel):
        """A wheel for this platform (it carries a native library), for any Python 3."""

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel

# Out-of-tree build directories, removed when this process ends.
_scratch = tempfile.mkdtemp(prefix="framering-setup-")
atexit.register(shutil.rmtree, _scratch, True)

setup(
    version=c_version(),
    cmdclass=cmdclass,
    distclass=NativeDistribution,
    options={"build": {"build_base": os.path.join(_scratch, "build")}, "egg_info": {"egg_base": _scratch}},
)
