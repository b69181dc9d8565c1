"""A built wheel carries its templates and the built-in spec, and works from any folder;
installed next to a project's own older ruff and SymPy it keeps them and works; the
sdist runs its own tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import GENERATED, ROOT

SEED_FILES = ["seed_mlp.py", "seed_mlp.tex", "seed_mlp.md"]


def _build_wheel(folder: Path) -> Path:
    pytest.importorskip("hatchling")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(folder),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = folder.glob("derive_backprop-*.whl")
    return wheel


def test_wheel_generates_the_committed_seed_output_from_another_folder(tmp_path):
    wheel = _build_wheel(tmp_path / "wheels")
    names = zipfile.ZipFile(wheel).namelist()
    assert "derive/templates/module.py.j2" in names
    assert "derive/specs/seed.toml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "derive"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in SEED_FILES:
        assert (work / "generated" / name).read_bytes() == (
            GENERATED / name
        ).read_bytes()


def _low_ends() -> list[str]:
    """``NAME==LOW`` for SymPy and ruff, the low ends of the ranges pyproject.toml
    accepts (``ruff>=0.3,<0.18`` gives ``ruff==0.3``, which is 0.3.0)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [
        re.sub(r"\s*>=\s*([^,;\s]+).*", r"==\1", requirement)
        for requirement in pyproject["project"]["dependencies"]
        if re.match(r"(sympy|ruff)\b", requirement)
    ]
    assert len(pins) == 2 and all("==" in p for p in pins), pins
    return pins


def _padded(pin: str) -> str:
    """``ruff==0.3`` as pip reports what it installed for it: ``ruff==0.3.0``."""
    name, version = pin.split("==")
    return f"{name}=={version}{'.0' * (2 - version.count('.'))}"


def _installed(python: Path, names: tuple[str, ...] = ("sympy", "ruff")) -> str:
    """``NAME==VERSION`` of each of ``names`` in the environment of ``python``."""
    result = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, importlib.metadata as m;"
            "print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))",
            *names,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _pip(python: Path, *arguments: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_wheel_installed_next_to_an_older_ruff_and_sympy_keeps_them_and_works(
    tmp_path,
):
    """A project with its own ruff and SymPy at the low ends of derive's ranges
    (older than the test environment's) installs the wheel: both stay as they were,
    and derive writes the committed seed output byte for byte with them.

    Downloads from the package index (ruff, SymPy, NumPy, Jinja2): in CI, where the
    registries are reachable, and never in the quick run. .ci/run regenerates every
    committed spec the same way."""
    wheel = _build_wheel(tmp_path / "wheels")
    subprocess.run(
        [sys.executable, "-m", "venv", str(tmp_path / "project")], check=True
    )
    python = tmp_path / "project" / "bin" / "python"
    _pip(python, *_low_ends())
    before = _installed(python)
    assert before.split() == [_padded(p) for p in _low_ends()], before
    _pip(python, str(wheel))
    assert _installed(python) == before
    out = tmp_path / "out"
    result = subprocess.run(
        [
            str(tmp_path / "project" / "bin" / "derive"),
            "--no-cache",  # derived and formatted by these versions, not looked up
            "specs/seed.toml",
            "--out",
            out,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in SEED_FILES:
        assert (out / name).read_bytes() == (GENERATED / name).read_bytes(), name


#: Tests that read what only the sdist's include list brings: the committed output
#: and specs, the README, the examples. Collecting the whole suite imports every test
#: module (the benchmarks, the hand-written modules, the problem set).
SDIST_TESTS = [
    "tests/test_cli.py::test_default_output_is_the_committed_output",
    "tests/test_api.py::test_the_readme_example_runs",
    "tests/test_generated_code_quality.py::test_the_examples_are_lint_clean",
    "tests/test_packaging.py::test_the_sdist_holds_what_its_tests_read",
]


@pytest.mark.slow
def test_the_sdist_runs_its_own_tests(tmp_path):
    """Unpacked elsewhere, the sdist collects its whole test suite and passes the
    tests that read its generated/, specs/, examples/ and README, with this
    environment's packages and the sdist's own derive."""
    pytest.importorskip("hatchling")
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hatchling.build as b; print(b.build_sdist(sys.argv[1]))",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sdist = tmp_path / built.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (root,) = (tmp_path / "unpacked").iterdir()
    where = subprocess.run(
        [sys.executable, "-c", "import derive; print(derive.__file__)"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(root)
    for arguments in (["--collect-only", "-q", "tests"], SDIST_TESTS):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                *arguments,
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
