"""test_lib_lookup - libframering-ring.so is found without the user setting paths, and a miss says where it looked."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SHOW = "import framering; print(framering.library_path())"


def run_py(code: str, pythonpath: str, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("FRAMERING_LIB", "PYTHONPATH")}
    env["PYTHONPATH"] = pythonpath
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=cwd or "/", timeout=60)


def built_lib() -> str:
    lib = os.environ.get("FRAMERING_LIB")
    if not lib or not os.path.exists(lib):
        pytest.skip("FRAMERING_LIB (the built library) not given: run through ctest")
    return lib


def test_env_var_wins():
    lib = built_lib()
    r = run_py(SHOW, str(REPO / "viewer_py"), {"FRAMERING_LIB": lib})
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == lib


def test_bad_env_var_is_an_error_not_a_fallback():
    r = run_py(SHOW, str(REPO / "viewer_py"), {"FRAMERING_LIB": "/nonexistent/libframering-ring.so"})
    assert r.returncode != 0
    assert b"FRAMERING_LIB=/nonexistent/libframering-ring.so" in r.stderr


def test_found_next_to_package(tmp_path):
    lib = built_lib()
    pkg = tmp_path / "framering"
    shutil.copytree(REPO / "viewer_py" / "framering", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    os.symlink(lib, pkg / "libframering-ring.so")
    r = run_py(SHOW, str(tmp_path))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == str(pkg / "libframering-ring.so")


def test_found_in_build_tree_of_checkout():
    lib = Path(built_lib()).resolve()
    builds = [p for p in REPO.glob("build*/libring") if p.is_dir()]
    if not any(lib.is_relative_to(p.resolve()) for p in builds):
        pytest.skip(f"the build tree ({lib.parent.parent}) is not <repo>/build*: nothing to find there")
    r = run_py(SHOW, str(REPO / "viewer_py"))
    assert r.returncode == 0, r.stderr.decode()
    found = Path(r.stdout.decode().strip())
    assert found.parent.parent.parent == REPO and found.parent.name == "libring"


def test_sanitizer_build_tree_is_passed_over(tmp_path):
    """A checkout with a plain build and a newer ASan build: the plain one is taken (gcc's ASan
    library would abort an uninstrumented python3 the moment it is loaded)."""
    lib = built_lib()
    shutil.copytree(REPO / "viewer_py" / "framering", tmp_path / "viewer_py" / "framering",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    for build, sanitize in (("build", ""), ("build-asan", "address,undefined")):
        (tmp_path / build / "libring").mkdir(parents=True)
        shutil.copy(lib, tmp_path / build / "libring" / "libframering-ring.so")
        (tmp_path / build / "CMakeCache.txt").write_text(
            f"CMAKE_BUILD_TYPE:STRING=Debug\nFRAMERING_SANITIZE:STRING={sanitize}\n")
    os.utime(tmp_path / "build" / "libring" / "libframering-ring.so", (1, 1))  # the ASan one is newest
    r = run_py(SHOW, str(tmp_path / "viewer_py"))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == str(tmp_path / "build" / "libring" / "libframering-ring.so")


def test_not_found_lists_places(tmp_path):
    if ctypes.util.find_library("framering-ring"):
        pytest.skip("an installed libframering-ring is on the system library path")
    shutil.copytree(REPO / "viewer_py" / "framering", tmp_path / "framering",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    r = run_py("import framering\ntry:\n framering.Consumer('x')\nexcept framering.FrameringError as e:\n"
               " print(e); raise SystemExit(9)", str(tmp_path))
    assert r.returncode == 9, r.stderr.decode()
    text = r.stdout.decode()
    assert "cannot find libframering-ring.so" in text
    for place in ("$FRAMERING_LIB", str(tmp_path / "framering"), "build*/libring", "find_library"):
        assert place in text, f"message does not mention {place}:\n{text}"


def test_import_never_needs_the_library(tmp_path):
    shutil.copytree(REPO / "viewer_py" / "framering", tmp_path / "framering",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    r = run_py("import framering, framering.view; help(framering.Consumer); print('ok')", str(tmp_path))
    assert r.returncode == 0 and r.stdout.decode().strip().endswith("ok")
    assert b"next_frame" in r.stdout and b"latest" in r.stdout


def test_install_ships_the_package_with_py_typed(tmp_path):
    """`cmake --install` puts every module, py.typed and a link to the library into the package
    directory, and the installed package finds that library by itself."""
    build = os.environ.get("FRAMERING_BUILD_DIR")
    if not build or not (Path(build) / "cmake_install.cmake").exists() or not shutil.which("cmake"):
        pytest.skip("FRAMERING_BUILD_DIR (a configured build tree) or cmake missing: run through ctest")
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    assert r.returncode == 0, r.stdout.decode()
    (pkg,) = [p.parent for p in prefix.rglob("framering/__init__.py")]
    source = REPO / "viewer_py" / "framering"
    expected = {p.name for p in source.iterdir() if p.suffix == ".py"} | {"py.typed"}
    assert expected <= {p.name for p in pkg.iterdir()}
    assert (pkg / "py.typed").read_bytes() == (source / "py.typed").read_bytes()
    r = run_py(SHOW, str(pkg.parent))
    assert r.returncode == 0, r.stderr.decode()
    found = Path(r.stdout.decode().strip())
    assert found == pkg / "libframering-ring.so" and found.resolve().is_relative_to(prefix)
