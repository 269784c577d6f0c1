"""test_api - the package's public surface reads well in help(): every public name, method and property has a docstring, every callable full type hints."""

from __future__ import annotations

import inspect
import re
import typing

import pytest

import framering
from conftest import REPO

PUBLIC = [getattr(framering, n) for n in framering.__all__]


def members(obj):
    """Public methods and properties defined by a framering class (not inherited from object)."""
    for name, value in inspect.getmembers(obj):
        if name.startswith("_") and name not in ("__enter__", "__exit__", "__iter__"):
            continue
        if inspect.isfunction(value) or isinstance(inspect.getattr_static(obj, name), property):
            if getattr(value, "__module__", "framering").startswith("framering") or isinstance(
                    inspect.getattr_static(obj, name), property):
                yield name, inspect.getattr_static(obj, name)


def test_every_public_name_is_documented():
    missing = [getattr(o, "__name__", repr(o)) for o in PUBLIC
               if (inspect.isclass(o) or callable(o)) and not inspect.getdoc(o)]
    assert not missing, f"no docstring: {missing}"


@pytest.mark.parametrize("cls", [o for o in PUBLIC if inspect.isclass(o) and not issubclass(o, Exception)],
                         ids=lambda c: c.__name__)
def test_methods_and_properties_documented_and_typed(cls):
    undocumented, untyped = [], []
    for name, attr in members(cls):
        fn = attr.fget if isinstance(attr, property) else attr
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        if name not in ("__enter__", "__exit__", "__iter__") and not inspect.getdoc(fn):
            undocumented.append(name)
        hints = typing.get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if "return" not in hints or any(p.name not in hints for p in params):
            untyped.append(name)
    assert not undocumented, f"{cls.__name__}: no docstring on {undocumented}"
    assert not untyped, f"{cls.__name__}: missing type hints on {untyped}"


def test_functions_typed():
    untyped = []
    for o in PUBLIC:
        if inspect.isfunction(o):
            hints = typing.get_type_hints(o)
            if "return" not in hints or any(p not in hints for p in inspect.signature(o).parameters):
                untyped.append(o.__name__)
    assert not untyped, f"missing type hints: {untyped}"


def test_version_is_the_projects():
    """framering.__version__ is the version of the C project (CMakeLists.txt) that the wheel and the .deb carry."""
    m = re.search(r"project\(framering VERSION (\d+\.\d+\.\d+)", (REPO / "CMakeLists.txt").read_text())
    assert m and framering.__version__ == m.group(1), (framering.__version__, m and m.group(1))
