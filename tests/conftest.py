"""Shared fixtures: the committed generated modules, imported from generated/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

#: The default run draws the same examples every time (derandomize), so that a red
#: run is the change's fault, not the draw's; ``pytest --hypothesis-profile=thorough``
#: searches ten times longer with fresh random draws, and is how new cases are found
#: (two CI runs at random drew a width-1 output and a per-sample lse that the LaTeX
#: round trip then failed on; both are fixed and pinned in tests).
settings.register_profile("default", deadline=None, derandomize=True)
# derandomize=False said outright: a profile inherits from the one loaded when it is
# registered, and that is "default" (derandomized) once the line above has run.
settings.register_profile(
    "thorough", deadline=None, max_examples=400, derandomize=False
)
settings.load_profile("default")

#: How many random equation specs the fuzz test against torch draws in each profile
#: (tests/test_equations.py): it is the search for wrong gradients, so it draws more
#: than the other tests.
FUZZ_EXAMPLES = {"default": 300, "thorough": 5000}


def fuzz_examples() -> int:
    """The fuzz test's ``max_examples`` in the profile loaded now (a profile of
    another name: three times its own ``max_examples``)."""
    current = getattr(settings, "get_current_profile_name", lambda: "")()
    return FUZZ_EXAMPLES.get(current, 3 * settings().max_examples)


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
