"""What a built wheel and sdist say about derive, and what they hold: a distribution
name of its own, dependencies as ranges (no exact pins that would replace a
project's own SymPy and ruff), the licence, the version written once; an sdist that
holds what its tests read. Nothing here downloads (the install next to an older
ruff and SymPy is in tests/test_wheel.py, marked slow, and in .ci/run)."""

from __future__ import annotations

import email.parser
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import derive
import derive.render
from derive.cli import main
from derive.errors import DeriveError, SpecError
from derive.render import format_with_ruff, ruff_range_text
from tests.conftest import ROOT, SPECS

pytest.importorskip("hatchling")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NAME = "derive-backprop"


def _build(kind: str, folder: Path) -> Path:
    """The wheel or sdist of this checkout, built by hatchling into ``folder``."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, hatchling.build as b; print(b.build_{kind}(sys.argv[1]))",
            str(folder),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return folder / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("wheel", tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("sdist", tmp_path_factory.mktemp("sdist"))


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def _runtime_requirements(metadata: Message) -> dict[str, str]:
    """Requires-Dist without an extra marker: distribution name -> its specifier."""
    found = {}
    for line in metadata.get_all("Requires-Dist") or []:
        if ";" in line and "extra ==" in line.split(";", 1)[1]:
            continue
        name, specifier = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
        found[name.lower()] = specifier.strip()
    return found


def test_the_wheel_has_a_distribution_name_of_its_own(wheel):
    """The name "derive" on the index is another project's: the wheel is
    ``derive-backprop``, and its import package and command are still ``derive``."""
    metadata = _metadata(wheel)
    assert metadata["Name"] == NAME
    assert wheel.name.startswith("derive_backprop-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode("utf-8")
    assert "derive/__init__.py" in names
    assert "derive = derive.cli:main" in scripts


def test_runtime_requirements_are_ranges_not_pins(wheel):
    """No ``==`` (nor ``===`` or ``~=`` of a full version): installing derive keeps a
    project's own SymPy and ruff when they are in the range; SymPy and ruff have both
    ends, the range across which the output was measured byte-identical."""
    requirements = _runtime_requirements(_metadata(wheel))
    assert {"sympy", "ruff", "numpy", "jinja2"} <= set(requirements)
    for name, specifier in requirements.items():
        assert "==" not in specifier and "~=" not in specifier, (name, specifier)
    for name in ("sympy", "ruff"):
        assert ">=" in requirements[name] and "<" in requirements[name].replace(
            "<=", ""
        ), (name, requirements[name])
    assert "torch" not in requirements  # always installed on its own (.ci/run)


def test_the_wheel_carries_the_mit_licence(wheel):
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheel) as archive:
        (licence,) = [n for n in archive.namelist() if n.endswith("licenses/LICENSE")]
        text = archive.read(licence).decode("utf-8")
    assert text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "the derive authors" in text


def test_classifiers_and_extras(wheel):
    """The classifiers the index shows, and an ``[array-api]`` extra naming what the
    array_api target needs."""
    metadata = _metadata(wheel)
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert "array-api" in (metadata.get_all("Provides-Extra") or [])
    extra = [
        line
        for line in metadata.get_all("Requires-Dist") or []
        if "extra == 'array-api'" in line or 'extra == "array-api"' in line
    ]
    assert [re.split(r"[<>=;\s]", line, maxsplit=1)[0] for line in extra] == [
        "array-api-compat"
    ]


def test_the_version_is_written_once(wheel):
    """In derive/__init__.py, which hatch reads: pyproject.toml has no number."""
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "derive/__init__.py"
    assert _metadata(wheel)["Version"] == derive.__version__
    written = re.findall(
        r"^__version__ = \"(.+)\"$",
        (ROOT / "derive" / "__init__.py").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert written == [derive.__version__]


def test_the_changelog_is_in_keep_a_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "[Keep a Changelog]" in text
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert sections and sections[0] == "Unreleased"
    assert re.findall(r"^### (\w+)", text, re.MULTILINE)
    assert set(re.findall(r"^### (\w+)", text, re.MULTILINE)) <= {
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
    }


def test_a_spec_error_is_a_value_error(tmp_path):
    """Code that calls derive.build on a spec it was handed catches what it catches
    for any bad input; derive's own classes still tell it apart."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[layers]]\nsize = 0\n', encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        derive.build(bad)
    assert isinstance(caught.value, SpecError)
    assert isinstance(caught.value, DeriveError)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    assert issubclass(derive.SpecError, ValueError)


def _referenced_by_the_tests() -> set[str]:
    """The top-level files and folders of the checkout the tests read: every
    ``ROOT / "NAME"`` in tests/ (conftest's GENERATED and SPECS among them)."""
    names = set()
    for path in (ROOT / "tests").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"\bROOT\s*/\s*\"([^\"/]+)", text))
    return names


def _files_under(name: str) -> list[str]:
    """The files below ``name`` that a build may ship: git's view (tracked, and
    untracked but not ignored) in a checkout; in an unpacked sdist, every file but
    Python's caches."""
    target = ROOT / name
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "--", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        return [n for n in listed if (ROOT / n).is_file()]  # not deleted meanwhile
    if target.is_file():
        return [name]
    return [
        Path(folder, file).relative_to(ROOT).as_posix()
        for folder, dirs, files in os.walk(target)
        for file in files
        if "__pycache__" not in Path(folder).parts and not file.endswith(".pyc")
    ]


def test_the_sdist_holds_what_its_tests_read(sdist):
    """The committed output, the benchmarks, the examples, the README and the
    pre-commit configuration the tests read, besides the package and the tests."""
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/", 1)[0]
        shipped = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    referenced = _referenced_by_the_tests()
    assert {"generated", "specs", "benchmarks", "examples", "README.md"} <= referenced
    excluded = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"].get(
        "exclude", []
    )
    missing = [
        file
        for name in sorted(referenced | {"derive", "templates", "tests", "LICENSE"})
        for file in _files_under(name)
        if file not in shipped and not any(fnmatch.fnmatch(file, p) for p in excluded)
    ]
    assert not missing, f"{sdist.name} lacks {missing[:10]} ({len(missing)} in all)"
    assert top == sdist.name.removesuffix(".tar.gz")
    assert "CHANGELOG.md" in shipped and "pyproject.toml" in shipped
    assert not [n for n in shipped if "node_modules" in n.split("/")]


MARKDOWN = """\
# A document

Text with `x*2` and a block that is not Python:

```text
y=x*2
```

```python
d_loss_d_h1 = W2*d_loss_d_ypredicted
```

```mermaid
flowchart LR
  a-->b
```

A block derive never writes, not Python, stays as it is:

```python
x = (1+
```

```python
d = {'a':1,
  'b':2}
def f(x): return x**2
```
"""


def test_markdown_python_blocks_are_formatted_as_ruff_formats_markdown(
    tmp_path, monkeypatch
):
    """derive formats a document's Python blocks as Python files (ruff formats
    Markdown only from 0.16 on); the result is what ruff's own Markdown formatting
    gives, where the installed ruff has it, and nothing is left in the working
    folder (no .ruff_cache)."""
    monkeypatch.chdir(tmp_path)
    formatted = format_with_ruff(MARKDOWN, "document.md")
    assert "d_loss_d_h1 = W2 * d_loss_d_ypredicted\n" in formatted
    assert "```text\ny=x*2\n```" in formatted  # only Python blocks are touched
    assert "x = (1+\n" in formatted
    assert 'd = {"a": 1, "b": 2}\n\n\ndef f(x):\n    return x**2\n```' in formatted
    assert formatted.split("```python", 1)[0] == MARKDOWN.split("```python", 1)[0]
    assert list(tmp_path.iterdir()) == []
    from ruff.__main__ import find_ruff_bin

    ruffs_own = subprocess.run(
        [find_ruff_bin(), "format", "--isolated", "--stdin-filename", "d.md", "-"],
        input=MARKDOWN,
        capture_output=True,
        text=True,
        check=False,
    )
    if ruffs_own.returncode == 0:  # ruff 0.16 and later
        assert formatted == ruffs_own.stdout


def test_a_document_without_python_blocks_is_left_as_it_is():
    text = "# Title\n\n```text\na=1\n```\n"
    assert format_with_ruff(text, "plain.md") == text


def test_the_committed_documents_python_blocks_are_formatted():
    """Every committed document is a fixed point of the formatting, so each of
    its Python blocks is formatted as ruff formats a Python file."""
    documents = sorted((ROOT / "generated").glob("*.md"))
    assert len(documents) >= len(list(SPECS.glob("*.toml")))
    for path in documents[:3]:
        text = path.read_text(encoding="utf-8")
        assert "```python\n" in text
        assert format_with_ruff(text, path.name) == text


def test_derive_s_ruff_range_is_pyproject_s():
    """The range format_with_ruff accepts is the one pip installs from."""
    assert ruff_range_text() in PYPROJECT["project"]["dependencies"]


def test_a_ruff_outside_the_range_is_one_line_naming_both(
    tmp_path, monkeypatch, capsys
):
    """A ruff that pip would not have installed (an environment set up with
    --no-deps) formats differently: derive stops before writing, in one line that
    names the installed version and the range, exit status 2."""
    real = derive.render.metadata.version

    def version(name: str) -> str:
        return "0.2.2" if name == "ruff" else real(name)

    monkeypatch.setattr(derive.render.metadata, "version", version)
    with pytest.raises(DeriveError, match=r"ruff 0\.2\.2 is installed.*ruff>=0\.3,"):
        format_with_ruff("x=1\n", "module.py")
    out = tmp_path / "out"
    assert main([str(SPECS / "seed.toml"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "ruff 0.2.2 is installed" in error
    assert ruff_range_text() in error and "Traceback" not in error
    assert not out.exists() or not list(out.iterdir())
