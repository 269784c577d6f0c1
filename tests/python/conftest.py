"""conftest - shared fixtures for the framering Python tests: unique ring names, /dev/shm cleanup, program paths.

ctest passes the build tree through the environment (tests/python/CMakeLists.txt):
FRAMERING_LIB (libframering-ring.so), FRAMERING_CAPTURE / _DUMP / _VIEW (the C
programs, when built), FRAMERING_SAMPLE / FRAMERING_SAMPLE_SMALL (the videos)
and PYTHONPATH (viewer_py, so `import framering` is the source tree's package).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "viewer_py"))
sys.path.insert(0, str(REPO / "tests" / "common"))  # x11keys (shared with tests/view), children

import framering  # noqa: E402,F401  (fail early if the package does not import)
from children import Children  # noqa: E402  (tests/common)

SHM = Path("/dev/shm")
PREFIX = f"pyt{os.getpid()}-"


def program(var: str) -> str:
    """Path of a C program from the environment, or skip saying which one is missing."""
    path = os.environ.get(var)
    if not path:
        prog = "framering-" + var.split("_", 1)[1].lower()
        pytest.skip(f"{prog} is not built (${var} not set; ctest sets it when the target exists, "
                    f"e.g. with FRAMERING_APPS=ON)")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{var}={path} is not an executable file (target not built?)")
    return path


def sample(var: str = "FRAMERING_SAMPLE") -> str:
    """Path of a sample video (FRAMERING_SAMPLE or _SMALL), defaulting to the checkout's assets."""
    default = {"FRAMERING_SAMPLE": "sample.mp4", "FRAMERING_SAMPLE_SMALL": "sample-320x240.mp4"}[var]
    path = os.environ.get(var) or str(REPO / "assets" / default)
    if not os.path.exists(path):
        pytest.skip(f"sample video {path} missing (assets/make-sample.sh makes it)")
    return path


def need_ffmpeg() -> None:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install ffmpeg)")


def ffmpeg_raw(args: List[str], fmt: str = "bgr24") -> bytes:
    """FFmpeg's own conversion: `ffmpeg <args> -pix_fmt FMT -f rawvideo -`."""
    need_ffmpeg()
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *args, "-pix_fmt", fmt, "-f", "rawvideo", "-"],
                         check=True, stdout=subprocess.PIPE)
    return out.stdout


def new_ring_name(tag: str = "r") -> str:
    return f"{PREFIX}{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ring_name():
    """A ring name unique to this test run; its segment is removed afterwards even on failure."""
    name = new_ring_name()
    yield name
    remove_segment(name)


def remove_segment(name: str) -> None:
    try:
        (SHM / name).unlink()
    except FileNotFoundError:
        pass


@pytest.fixture(autouse=True, scope="session")
def _no_segments_left():
    """After the session: remove anything this run left in /dev/shm (and fail loudly about it)."""
    yield
    left = sorted(p.name for p in SHM.glob(PREFIX + "*"))
    for n in left:
        remove_segment(n)
    assert not left, f"segments left in /dev/shm: {left}"


@pytest.fixture
def procs():
    """Start subprocesses that are killed (by pid) when the test ends, passed or not."""
    children = Children(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield children.start
    children.kill_all()


def python_env(extra: Optional[dict] = None) -> dict:
    """Environment for a Python subprocess that imports this checkout's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "viewer_py") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env
