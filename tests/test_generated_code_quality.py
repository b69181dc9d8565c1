"""Generated Python is formatted, lint-clean and type-checks; it imports only NumPy."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from ruff.__main__ import find_ruff_bin

from tests.conftest import GENERATED, ROOT

MODULES = sorted(GENERATED.glob("*.py"))


def test_there_are_generated_modules():
    assert [p.name for p in MODULES if p.name == "seed_mlp.py"]


def assert_succeeds(*command: str) -> None:
    """Run a checker; fail with what it printed if it finds anything."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "isolated", [True, False], ids=["ruff-defaults", "repo-config"]
)
def test_ruff_format_check(isolated):
    """Python modules and the Python blocks of the Markdown, under both configurations."""
    files = [*MODULES, *sorted(GENERATED.glob("*.md"))]
    options = ["--isolated"] if isolated else []
    assert_succeeds(find_ruff_bin(), "format", *options, "--check", *map(str, files))


def test_ruff_check():
    """ruff's default rules, plus pycodestyle warnings, bugbear and pyupgrade.
    ``--ignore-noqa``: each module's header exempts it from a user's lint settings
    (tests/test_user_lint_settings.py), not from derive's own."""
    rules = "E4,E7,E9,F,W,B,UP"
    assert_succeeds(
        find_ruff_bin(),
        "check",
        "--isolated",
        "--ignore-noqa",
        "--select",
        rules,
        *map(str, MODULES),
    )


@pytest.mark.slow  # mypy over every generated module (40 s)
def test_mypy_strict():
    pytest.importorskip("mypy")
    modules = map(str, MODULES)
    assert_succeeds(
        sys.executable, "-m", "mypy", "--strict", "--no-incremental", *modules
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_only_numpy_and_the_standard_library(path):
    """A numpy-target module imports NumPy; an array_api-target module imports
    array-api-compat instead (and no NumPy: it runs on whatever arrays it is given)."""
    tree = ast.parse(path.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    library = "array_api_compat" if "array_api_compat" in imported else "numpy"
    allowed = {library, "__future__", "collections", "typing", "numbers"}
    assert imported <= allowed, imported


def test_derive_itself_type_checks_and_is_lint_clean():
    """derive's own source: mypy (SymPy ships no types, so its imports are Any) and
    ruff, with the repository's configuration."""
    pytest.importorskip("mypy")
    package = str(ROOT / "derive")
    assert_succeeds(
        sys.executable,
        "-m",
        "mypy",
        "--ignore-missing-imports",
        "--no-incremental",
        package,
    )
    assert_succeeds(find_ruff_bin(), "check", package, str(ROOT / "benchmarks"))
    assert_succeeds(
        find_ruff_bin(), "format", "--check", package, str(ROOT / "benchmarks")
    )


def test_the_public_api_type_checks_strictly():
    """``derive.build``, ``derive.derivation`` and what they return, the command and
    its status line: ``mypy --strict`` (modules they import are checked by the test
    above, not strictly)."""
    pytest.importorskip("mypy")
    public = ("__init__.py", "api.py", "progress.py", "cli.py")
    assert_succeeds(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--ignore-missing-imports",
        "--follow-imports=silent",
        "--no-incremental",
        *(str(ROOT / "derive" / name) for name in public),
    )


def test_the_examples_are_lint_clean():
    """The training script and the notebook's code cells, by ruff."""
    examples = str(ROOT / "examples")
    assert_succeeds(find_ruff_bin(), "check", examples)
    assert_succeeds(find_ruff_bin(), "format", "--check", examples)
