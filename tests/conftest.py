"""Shared fixtures: the committed generated modules, imported from generated/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

#: Three runs. The README's test command is the quick one: the default profile,
#: derandomized (the same draws every time, so that a red run is the change's fault,
#: not the draw's), without the tests marked ``slow``. ``.ci/run`` then runs the deep
#: one, ``pytest -m "slow or hypothesis" --hypothesis-profile=ci``: the slow tests and
#: every hypothesis test again with three times the draws (still derandomized, the
#: quick run's draws first). ``pytest --hypothesis-profile=thorough`` searches ten
#: times longer with fresh random draws, and is how new cases are found (two CI runs
#: at random drew a width-1 output and a per-sample lse that the LaTeX round trip then
#: failed on; both are fixed and pinned in tests).
settings.register_profile("default", deadline=None, derandomize=True)
# derandomize said outright: a profile inherits from the one loaded when it is
# registered, and that is "default" (derandomized) once the line above has run.
settings.register_profile("ci", deadline=None, max_examples=300, derandomize=True)
settings.register_profile(
    "thorough", deadline=None, max_examples=1000, derandomize=False
)
settings.load_profile("default")

#: How many random equation specs the fuzz test against torch draws in each profile
#: (tests/test_equations.py): it is the search for wrong gradients, so it draws more
#: than the other tests.
FUZZ_EXAMPLES = {"default": 25, "ci": 400, "thorough": 5000}


def _profile() -> str:
    return getattr(settings, "get_current_profile_name", lambda: "")()


def fuzz_examples() -> int:
    """The fuzz test's ``max_examples`` in the profile loaded now (a profile of
    another name: four times its own ``max_examples``)."""
    return FUZZ_EXAMPLES.get(_profile(), 4 * settings().max_examples)


def examples(quick: int) -> int:
    """A hypothesis test's ``max_examples``: ``quick`` in the README's run, scaled
    with the profile loaded now (``ci`` three times, ``thorough`` ten times): the
    profile's own ``max_examples`` is 100 in the default profile."""
    return max(1, round(quick * settings().max_examples / 100))


ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"
SPECS = ROOT / "specs"


def import_path(path: Path, name: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` as a fresh module."""
    name = name or f"_derive_test_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def seed() -> ModuleType:
    """``generated/seed_mlp.py``, as committed."""
    return import_path(GENERATED / "seed_mlp.py", "seed_mlp")


def generate_module(folder: Path, text: str, source: str = "net.toml"):
    """Render the spec ``text`` in-process and import its module from ``folder``.

    Returns the parsed spec and the module.
    """
    from derive.render import render
    from derive.spec import parse_spec

    spec = parse_spec(text, source)
    outputs = render(spec, source)
    path = folder / outputs[0].name
    path.write_text(outputs[0].text)
    return spec, import_path(path)
