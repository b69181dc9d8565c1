"""Generated files in a project with its own, stricter ruff settings.

derive formats its output with ruff's defaults (line length 88) wherever it runs, so
that the files are the same everywhere. A project that lints at line length 79 with
pep8-naming (``W0``, ``d_loss_d_W0`` are the problem set's names) would flag them,
and its ``ruff format`` would rewrite them, after which ``derive --check`` calls them
stale. Each module's header exempts it from lint (``# ruff: noqa``); formatters have
no such comment, so the README's exclude lines keep ``ruff format`` away from
``generated/``. Both are checked here in a temporary project with its own
``pyproject.toml``, run from its folder as the project's own tools would be.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ruff.__main__ import find_ruff_bin

from tests.conftest import GENERATED, ROOT

#: A strict project configuration: the rule sets the issue names and more.
STRICT = """\
[tool.ruff]
line-length = 79

[tool.ruff.lint]
select = [{rules}]
"""
RULES = ["E", "F", "W", "N", "UP", "B", "I", "SIM", "C4", "RUF", "PL", "D", "ANN"]


def _readme_exclude() -> str:
    """The ``[tool.ruff]`` line the README gives for a project's pyproject.toml, read
    from the README itself so that the two cannot drift apart."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### generated/ in your project's lint and format")[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    ruff_table = block.split("[tool.ruff]\n", 1)[1].split("\n\n", 1)[0]
    assert ruff_table == 'extend-exclude = ["generated"]', ruff_table
    return ruff_table + "\n"


#: The lines the README gives for a project's pyproject.toml.
EXCLUDE = _readme_exclude()

#: A file of the project's own that breaks its rules: the configuration is in force
#: (a test that passes because nothing is checked would prove nothing).
OWN_CODE = "def Train(X):\n    return X\n"


def ruff(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_ruff_bin(), *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def make_project(
    tmp_path: Path, rules: list[str], exclude: bool, own_code: bool = False
) -> Path:
    """A project holding every committed generated file under generated/."""
    project = tmp_path / "project"
    project.mkdir()
    config = STRICT.format(rules=", ".join(f'"{r}"' for r in rules))
    if exclude:
        config = config.replace("line-length = 79\n", "line-length = 79\n" + EXCLUDE)
    (project / "pyproject.toml").write_text(config)
    shutil.copytree(GENERATED, project / "generated")
    if own_code:
        (project / "train.py").write_text(OWN_CODE)
    return project


@pytest.mark.parametrize("rules", [RULES, ["ALL"]], ids=["strict", "all-rules"])
def test_ruff_check_passes_on_generated_files_under_the_projects_rules(tmp_path, rules):
    """No exclude needed for lint: the header's ``# ruff: noqa`` is honoured, under
    the issue's rule sets and under ``select = ["ALL"]`` (whose PGH004 would flag the
    blanket ``noqa`` itself, were it not exempted by name)."""
    project = make_project(tmp_path, rules, exclude=False, own_code=True)
    result = ruff(project, "check", "--no-cache", "generated")
    assert result.returncode == 0, result.stdout + result.stderr
    own = ruff(project, "check", "--no-cache", "train.py")
    assert own.returncode == 1 and "N802" in own.stdout, own.stdout
    # Without the header the same files fail the project's rules.
    stripped = project / "generated" / "seed_mlp.py"
    stripped.write_text(
        "".join(
            line
            for line in stripped.read_text().splitlines(keepends=True)
            if not line.startswith("# ruff: noqa")
        )
    )
    result = ruff(project, "check", "--no-cache", "generated/seed_mlp.py")
    assert result.returncode == 1 and "N803" in result.stdout, result.stdout


def test_the_header_exempts_every_module_from_lint():
    """The first lines after the provenance comments, in every module."""
    for path in sorted(GENERATED.glob("*.py")):
        lines = path.read_text().splitlines()
        assert "# ruff: noqa" in lines, path.name
        assert lines.index("# ruff: noqa") < lines.index(
            next(line for line in lines if line.startswith('"""'))
        ), path.name


def test_without_the_exclude_the_projects_ruff_format_rewrites_generated_files(
    tmp_path,
):
    """Why the README's exclude lines are needed: line length 79 is not derive's 88."""
    project = make_project(tmp_path, RULES, exclude=False)
    result = ruff(project, "format", "--no-cache", "--check", ".")
    assert result.returncode == 1
    assert "--> generated/seed_mlp.py:" in result.stdout, result.stdout


def test_the_readmes_exclude_keeps_ruff_format_away_from_generated_files(tmp_path):
    """``ruff format --check .`` in the project, and on the generated files named one
    by one as pre-commit's ruff hook names them (it passes ``--force-exclude``);
    the project's own files are still formatted."""
    project = make_project(tmp_path, RULES, exclude=True, own_code=True)
    (project / "train.py").write_text("x = ( 1 )\n")
    result = ruff(project, "format", "--no-cache", "--check", ".")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--> train.py:" in result.stdout, result.stdout
    assert "generated" not in result.stdout
    (project / "train.py").write_text("x = 1\n")
    assert ruff(project, "format", "--no-cache", "--check", ".").returncode == 0
    named = sorted(str(p.relative_to(project)) for p in project.glob("generated/*"))
    result = ruff(project, "format", "--no-cache", "--check", "--force-exclude", *named)
    assert result.returncode == 0, result.stdout + result.stderr
    result = ruff(project, "check", "--no-cache", "--force-exclude", *named)
    assert result.returncode == 0, result.stdout + result.stderr
