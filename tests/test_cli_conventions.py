"""The command line as ruff and black have it (issue 22): --diff, -q and -v, ``-``
for standard input, [tool.derive] in pyproject.toml, which files of a folder are
specs, orphaned files in --check, --help, a closed pipe, every error of a run, the
cache of what each spec made, and the pre-commit hooks.

Most tests call :func:`derive.cli.main` in this process (a subprocess spends seconds
importing SymPy on a busy machine); those about standard input, pipes and the
environment run the command.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derive import cache, cli, spec
from derive.cli import main
from tests.conftest import ROOT
from tests.test_cli import SEED, SEED_FILES, git, run

OTHER = SEED.replace('"seed_mlp"', '"other_mlp"')
OTHER_FILES = ["other_mlp.py", "other_mlp.tex", "other_mlp.md"]


@pytest.fixture(scope="module")
def seed_made(tmp_path_factory) -> Path:
    """generated/ of a folder holding seed.toml, made once for the whole module."""
    folder = tmp_path_factory.mktemp("seed_made")
    (folder / "seed.toml").write_text(SEED)
    assert main([str(folder / "seed.toml"), "--out", str(folder / "generated")]) == 0
    return folder / "generated"


@pytest.fixture
def project(tmp_path, seed_made, monkeypatch) -> Path:
    """A working folder with seed.toml and its generated/ (files as derive made
    them), as the working folder of the test."""
    (tmp_path / "seed.toml").write_text(SEED)
    shutil.copytree(seed_made, tmp_path / "generated")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# Item 1: --diff.
def test_diff_is_a_unified_diff_that_applies_and_writes_nothing(project, capsys):
    before = files_in(project / "generated")
    (project / "seed.toml").write_text(SEED.replace("x = 10", "x = 11"))
    (project / "generated" / "seed_mlp.md").unlink()
    assert main(["--diff", "seed.toml"]) == 1
    captured = capsys.readouterr()
    diff = captured.out
    assert diff.startswith(
        "--- a/generated/seed_mlp.tex\n+++ b/generated/seed_mlp.tex\n"
    )
    assert "-x &= 10 \\\\\n+x &= 11 \\\\\n" in diff
    assert "--- /dev/null\n+++ b/generated/seed_mlp.md\n" in diff
    assert "seed_mlp.py" not in diff  # the module does not hold the worked point
    assert "2 of 3 generated files would change" in captured.err
    del before["seed_mlp.md"]
    assert files_in(project / "generated") == before
    # the diff is what a run would write: applied, --check passes
    (project / "seed_mlp.diff").write_text(diff)
    applied = subprocess.run(
        ["git", "apply", "seed_mlp.diff"], cwd=project, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert main(["--check", "seed.toml"]) == 0


def test_diff_without_a_change_prints_nothing_and_exits_0(project, capsys):
    assert main(["--diff", "-q", "seed.toml"]) == 0
    assert capsys.readouterr() == ("", "")


def test_diff_of_a_pdf_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seed_mlp.pdf").write_bytes(b"%PDF-1.5 old")
    text = cli._unified_diff(tmp_path / "seed_mlp.pdf", b"%PDF-1.5 new", tmp_path)
    assert text == "binary file seed_mlp.pdf differs\n"


def test_diff_marks_a_last_line_without_a_line_break(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.py").write_text("a\nb")
    text = cli._unified_diff(tmp_path / "f.py", "a\nc\n", tmp_path)
    assert text.endswith("-b\n\\ No newline at end of file\n+c\n")


# Item 2: -q and -v.
def test_quiet_prints_nothing_but_findings(project, capsys):
    assert main(["-q", "seed.toml"]) == 0
    assert main(["--quiet", "--check", "seed.toml"]) == 0
    assert capsys.readouterr() == ("", "")
    (project / "generated" / "seed_mlp.py").write_text("# edited\n")
    assert main(["-q", "--check", "seed.toml"]) == 1
    assert capsys.readouterr() == (
        "stale: generated/seed_mlp.py (differs from its spec)\n",
        "",
    )


def test_verbose_says_each_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seed.toml").write_text(SEED)
    assert main(["-v", "seed.toml"]) == 0  # a new folder: nothing in the cache
    err = capsys.readouterr().err
    for step in (
        "seed.toml: building the network and deriving its gradients",
        "seed.toml: checking seed_mlp.py against the spec numerically",
        "seed.toml: formatting seed_mlp.py with ruff",
        "seed.toml: printing the derivation in LaTeX and Markdown",
    ):
        assert step in err, err
    assert all(line.startswith("derive: [") for line in err.splitlines())
    assert main(["--verbose", "seed.toml"]) == 0
    assert "seed.toml: unchanged since the last run" in capsys.readouterr().err


def test_quiet_and_verbose_together_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["-q", "-v"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "derive: error: argument -v/--verbose: not allowed with argument -q/--quiet; "
        "see derive --help\n"
    )


# Item 3: - reads standard input.
def test_a_spec_from_standard_input_is_recorded_as_stdin(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "derive", "-", "--out", "out"],
        input=SEED,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    heads = {n: (tmp_path / "out" / n).read_text().splitlines()[:2] for n in SEED_FILES}
    assert heads["seed_mlp.py"][0] == "# Generated by derive 0.1.0 from <stdin>."
    assert heads["seed_mlp.tex"][0] == "% Generated by derive 0.1.0 from <stdin>."
    assert heads["seed_mlp.md"][1] == " Generated by derive 0.1.0 from <stdin>."


def test_a_bad_spec_on_standard_input_names_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = SEED.replace("width = 3", "width = 0", 1).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bad)))
    assert main(["-"]) == 2
    assert capsys.readouterr().err == (
        "derive: error: <stdin>: layers[0].width: must be from 1 to 1048576, got 0\n"
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SEED.encode())))
    assert main(["-", "-"]) == 2
    assert capsys.readouterr().err == (
        "derive: error: <stdin>: standard input can be read only once\n"
    )
    assert not (tmp_path / "generated").exists()


def test_the_limit_on_standard_input_is_the_one_on_files():
    assert cli.MAX_SPEC_BYTES == spec.MAX_SPEC_BYTES


# Item 4: [tool.derive] in pyproject.toml.
def write_project(folder: Path, table: str) -> None:
    (folder / "specs").mkdir(exist_ok=True)
    (folder / "specs" / "seed.toml").write_text(SEED)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "p"\n\n{table}')


def test_tool_derive_gives_the_specs_and_the_folder(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, '[tool.derive]\nspecs = ["specs/"]\nout = "made"\n')
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")  # found upward, as ruff finds it
    assert main([]) == 0
    assert sorted(os.listdir(tmp_path / "made")) == sorted(SEED_FILES)
    assert not (tmp_path / "deep" / "er" / "generated").exists()
    header = (tmp_path / "made" / "seed_mlp.py").read_text().splitlines()[0]
    assert header == "# Generated by derive 0.1.0 from specs/seed.toml."
    capsys.readouterr()
    assert main(["--check"]) == 0
    assert "3 generated files match" in capsys.readouterr().out
    # a spec given replaces specs, and out still applies
    (tmp_path / "deep" / "o.toml").write_text(OTHER)
    assert main(["../o.toml", "-q"]) == 0
    assert (tmp_path / "made" / "other_mlp.py").is_file()


def test_a_pyproject_without_tool_derive_keeps_the_built_in_default(
    tmp_path, monkeypatch
):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "derive-user"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["-q"]) == 0
    assert files_in(tmp_path / "generated") == {
        n: (ROOT / "generated" / n).read_bytes() for n in sorted(SEED_FILES)
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[tool.derive]\nspecs = ["specs/"]\noutt = "x"\n',
            "pyproject.toml: tool.derive.outt: unknown key; did you mean 'out'? "
            "allowed: specs, out, pdf",
        ),
        (
            "[tool.derive]\ncache = false\n",
            "pyproject.toml: tool.derive.cache: unknown key; allowed: specs, out, pdf",
        ),
        (
            '[tool.derive]\nspecs = "specs/"\n',
            "pyproject.toml: tool.derive.specs: must be a list of spec files or "
            "folders (strings, at least one), such as [\"specs/\"]; got 'specs/'",
        ),
        (
            "[tool.derive]\nout = 3\n",
            "pyproject.toml: tool.derive.out: must be a folder (a string), such as "
            '"generated"; got 3',
        ),
        (
            '[tool.derive]\npdf = "yes"\n',
            "pyproject.toml: tool.derive.pdf: must be true or false; got 'yes'",
        ),
        ("[tool]\nderive = 1\n", "pyproject.toml: tool.derive: must be a table"),
        ("[tool.derive\n", "pyproject.toml: not valid TOML"),
    ],
)
def test_a_bad_tool_derive_is_one_line(tmp_path, monkeypatch, capsys, table, message):
    write_project(tmp_path, table)
    monkeypatch.chdir(tmp_path)
    assert main(["specs/seed.toml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"derive: error: {message}"), captured.err
    assert captured.err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["pyproject.toml", "specs"]


def test_pdf_from_tool_derive_and_no_pdf_on_the_command_line(tmp_path):
    """pdf = true makes a run compile (here, say that pdflatex is missing: PATH has
    none); --no-pdf turns it off."""
    write_project(tmp_path, "[tool.derive]\npdf = true\n")
    nothing = tmp_path / "empty_path"
    nothing.mkdir()
    refused = run("specs/seed.toml", cwd=tmp_path, env={"PATH": str(nothing)})
    assert refused.returncode == 2
    assert refused.stderr.startswith("derive: error: --pdf needs pdflatex")
    done = run("specs/seed.toml", "--no-pdf", cwd=tmp_path, env={"PATH": str(nothing)})
    assert done.returncode == 0, done.stderr
    assert "seed_mlp.pdf" not in done.stdout


def test_check_with_pdf_on_still_uses_the_cache(tmp_path, monkeypatch, capsys):
    """--check does not look at PDFs, so pdf = true does not make it derive."""
    write_project(tmp_path, "[tool.derive]\npdf = true\n")
    monkeypatch.chdir(tmp_path)
    assert main(["specs/seed.toml", "--no-pdf", "-q"]) == 0
    assert main(["-v", "--check", "specs/seed.toml"]) == 0
    err = capsys.readouterr().err
    assert "specs/seed.toml: unchanged since the last run" in err
    assert "building the network" not in err


# Item 5: a folder's specs.
def test_a_folder_leaves_out_tools_configuration_files(tmp_path, monkeypatch, capsys):
    (tmp_path / "seed.toml").write_text(SEED)
    for name, text in {
        "pyproject.toml": '[project]\nname = "p"\n',
        "ruff.toml": "line-length = 79\n",
        ".ruff.toml": "line-length = 79\n",
        "taplo.toml": "[formatting]\n",
        ".taplo.toml": "[formatting]\n",
        "Cargo.toml": '[package]\nname = "p"\n',
    }.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["."]) == 0
    assert main(["--check", "."]) == 0
    assert "3 generated files match" in capsys.readouterr().out
    # named on its own, a configuration file is read as the spec it is not
    assert main(["ruff.toml"]) == 2
    assert capsys.readouterr().err.startswith("derive: error: ruff.toml: ")


def test_a_folder_of_configuration_files_only_has_no_spec(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.endswith(": no *.toml spec in this folder\n")


# Item 6: --check reports orphaned files.
def test_check_reports_a_file_whose_spec_is_gone(project, capsys):
    made = project / "generated"
    for name in SEED_FILES:  # as derive would have made them from specs/old.toml
        text = (made / name).read_text().replace("../seed.toml.", "../old.toml.")
        (made / name.replace("seed_mlp", "old_net")).write_text(text)
    (made / "old_net.pdf").write_bytes(b"%PDF-1.5")
    (made / "notes.md").write_text("# mine, not derive's\n")
    assert main(["--check", "seed.toml"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"orphan: generated/old_net.{suffix} (its spec ../old.toml is gone; delete the "
        "file)"
        for suffix in ("md", "pdf", "py", "tex")
    ]
    assert "4 generated files have no spec any more" in captured.err
    (project / "old.toml").write_text(SEED)  # there again: not an orphan
    assert main(["--check", "seed.toml"]) == 0


def test_check_reports_the_files_a_renamed_network_left(project, capsys):
    (project / "seed.toml").write_text(OTHER)
    assert main(["seed.toml", "-q"]) == 0
    assert main(["--check", "seed.toml"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"orphan: generated/{name} (its spec ../seed.toml makes other files now; "
        "delete the file)"
        for name in sorted(SEED_FILES)
    ]


def test_the_built_in_default_is_never_gone(tmp_path, monkeypatch):
    """Files of the built-in default name specs/seed.toml, which is in derive."""
    monkeypatch.chdir(tmp_path)
    assert main(["-q"]) == 0
    (tmp_path / "o.toml").write_text(OTHER)
    assert main(["o.toml", "-q"]) == 0
    assert main(["--check", "o.toml"]) == 0


# Item 7: --help lists audit.
def test_help_lists_audit_with_examples(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert "derive audit SPEC MODULE.py" in text.splitlines()[1]
    assert "examples:" in text and "derive audit specs/seed.toml " in text
    for option in ("--diff", "--quiet", "--verbose", "--no-cache", "--no-pdf"):
        assert option in text
    assert "[tool.derive]" in text
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    audit_help = capsys.readouterr().out
    assert "examples:\n  derive audit specs/seed.toml solution.py" in audit_help
    assert "exit status: 0 every function ok" in audit_help


# Item 8: a closed pipe.
@pytest.mark.parametrize(
    ("arguments", "status"),
    [
        (["--diff", "seed.toml"], 1),
        (
            [
                "audit",
                "seed.toml",
                str(ROOT / "tests" / "hand_written" / "seed_loops.py"),
            ],
            1,
        ),
        # argparse drops its own write errors: --help ends as it always does
        (["--help"], 0),
    ],
)
def test_a_closed_pipe_ends_quietly(project, arguments, status):
    """The reader is gone before derive writes (``| head -1`` that has read its
    line): no traceback, exit status 1 (the audit of a correct module would be 0,
    the diff 1 too)."""
    (project / "seed.toml").write_text(SEED.replace("x = 10", "x = 11"))
    process = subprocess.Popen(
        [sys.executable, "-m", "derive", *arguments],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == status, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


# Item 9: every error of a run.
def test_every_bad_spec_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    specs = {
        "a.toml": SEED,
        "b.toml": "name = ",
        "c.toml": SEED.replace('"seed_mlp"', '"c_mlp"'),
        "d.toml": SEED.replace('"seed_mlp"', '"d_mlp"').replace(
            "width = 3", "width = 0"
        ),
        "e.toml": SEED.replace('"seed_mlp"', '"c_mlp"'),
    }
    for name, text in specs.items():
        (tmp_path / name).write_text(text)
    assert main([*specs, "missing.toml"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert [line.split(":")[2].strip() for line in lines] == [
        "b.toml",
        "d.toml",
        "e.toml",
        "missing.toml",
    ]
    assert all(line.startswith("derive: error: ") for line in lines)
    assert "e.toml: name: 'c_mlp' is also the name in c.toml" in lines[2]
    assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == sorted([*specs])


# Item 10: the cache.
def test_a_second_run_derives_nothing_and_still_sees_an_edited_file(
    project, seed_made, capsys
):
    assert main(["-v", "seed.toml"]) == 0  # a new folder: derived, then stored
    first = capsys.readouterr()
    assert "building the network" in first.err
    assert main(["-v", "--check", "seed.toml"]) == 0
    second = capsys.readouterr()
    assert "building the network" not in second.err
    assert "seed.toml: unchanged since the last run" in second.err
    # a generated file changed by hand (or by another formatter) is not passed
    (project / "generated" / "seed_mlp.md").write_text("# reformatted\n")
    assert main(["-v", "--check", "seed.toml"]) == 1
    third = capsys.readouterr()
    assert "its files in generated/ are not the ones it made" in third.err
    assert "stale: generated/seed_mlp.md (differs from its spec)" in third.out
    assert main(["seed.toml", "-q"]) == 0
    assert files_in(project / "generated") == files_in(seed_made)


def test_the_cache_folder_is_ignored_by_git_and_holds_hashes_only(project, capsys):
    assert main(["seed.toml", "-q"]) == 0
    folder = project / ".derive_cache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (folder / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    (entry,) = (folder / "0.1.0").iterdir()
    stored = json.loads(entry.read_text())
    assert stored["name"] == "seed_mlp"
    assert stored["files"] == {
        n: cache.file_hash((project / "generated" / n).read_bytes()) for n in SEED_FILES
    }


def test_a_damaged_entry_or_no_cache_means_deriving_again(project, capsys):
    assert main(["seed.toml", "-q"]) == 0
    (entry,) = (project / ".derive_cache" / "0.1.0").iterdir()
    entry.write_text("{not json")
    assert main(["-v", "--check", "seed.toml"]) == 0
    assert "building the network" in capsys.readouterr().err
    assert main(["-v", "--check", "--no-cache", "seed.toml"]) == 0
    assert "building the network" in capsys.readouterr().err


def test_the_key_holds_the_spec_its_path_derive_and_its_dependencies(
    tmp_path, monkeypatch
):
    base = cache.key(b"spec", "specs/a.toml")
    assert cache.key(b"spec!", "specs/a.toml") != base
    assert cache.key(b"spec", "specs/b.toml") != base
    first = cache.fingerprint()

    def fingerprint_now() -> str:
        cache.fingerprint.cache_clear()
        return cache.fingerprint()

    real = cache.metadata.version
    try:
        monkeypatch.setattr(
            cache.metadata, "version", lambda n: "0.0.1" if n == "ruff" else real(n)
        )
        assert fingerprint_now() != first
        monkeypatch.setattr(cache.metadata, "version", real)
        # derive's own source and templates: a copy, then one file changed in each
        copy = tmp_path / "derive"
        shutil.copytree(
            cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copytree(cache.resource_folder("templates"), tmp_path / "templates")
        monkeypatch.setattr(cache, "PACKAGE", copy)
        assert fingerprint_now() == first
        with open(copy / "render.py", "a") as stream:
            stream.write("# a change\n")
        assert fingerprint_now() != first
        shutil.copy(ROOT / "derive" / "render.py", copy / "render.py")
        assert fingerprint_now() == first
        with open(tmp_path / "templates" / "module.py.j2", "a") as stream:
            stream.write("{# a change #}\n")
        assert fingerprint_now() != first
    finally:
        monkeypatch.undo()
        cache.fingerprint.cache_clear()


def test_the_repository_ignores_the_cache():
    assert ".derive_cache/" in (ROOT / ".gitignore").read_text().splitlines()


# Item 11: pre-commit.
@pytest.mark.slow  # pre-commit builds an environment with derive installed
def test_pre_commit_hooks_from_the_repository(tmp_path):
    """``pre-commit try-repo`` with this repository's last commit, as a project
    using ``repo:`` and ``rev:`` gets it: derive-check passes, fails on an edited
    file, and the derive hook puts the file back.

    A clone of HEAD, not the checkout: try-repo would add the checkout's changes to
    tracked files but leave out its new files, a state no commit has.
    """
    pytest.importorskip("pre_commit")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist): no commit to try")
    hooks = tmp_path / "derive"
    git("clone", "--quiet", str(ROOT), str(hooks), cwd=tmp_path)
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "specs" / "seed.toml").write_text(SEED)
    (project / "pyproject.toml").write_text('[tool.derive]\nspecs = ["specs/"]\n')
    git("init", "-q", cwd=project)
    git("add", ".", cwd=project)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def hook(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pre_commit",
                "try-repo",
                str(hooks),
                name,
                "--all-files",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    # the derive hook makes generated/ (with the hook's own derive: the commit's,
    # which the checkout's changes may have moved on from); new files are not
    # changes to pre-commit, which looks at the tracked ones
    made = hook("derive")
    assert made.returncode == 0, made.stdout + made.stderr
    assert sorted(os.listdir(project / "generated")) == sorted(SEED_FILES)
    git("add", ".", cwd=project)
    passed = hook("derive-check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (project / "generated" / "seed_mlp.py").write_text("# edited by hand\n")
    git("add", ".", cwd=project)
    failed = hook("derive-check")
    assert failed.returncode == 1
    assert "stale: generated/seed_mlp.py (differs from its spec)" in failed.stdout
    fixed = hook("derive")  # it puts the file back: a tracked file changed
    assert fixed.returncode == 1
    assert "files were modified by this hook" in fixed.stdout
    git("add", ".", cwd=project)
    assert hook("derive-check").returncode == 0


# The tester's findings after issue 22.
def entry_of(project: Path) -> Path:
    (entry,) = (project / ".derive_cache" / "0.1.0").iterdir()
    return entry


@pytest.mark.parametrize(
    "damage",
    [
        lambda stored: {"name": stored["name"], "files": {}},
        lambda stored: {
            "name": "resid",
            "files": dict(list(stored["files"].items())[:2]),
        },
        lambda stored: {"name": "resid", "files": stored["files"]},
        lambda stored: {
            "name": stored["name"],
            "files": {n: h.upper() for n, h in stored["files"].items()},
        },
    ],
)
def test_an_entry_not_exactly_what_a_run_writes_is_a_miss(project, capsys, damage):
    assert main(["seed.toml", "-q"]) == 0
    good = json.loads(entry_of(project).read_text())
    entry_of(project).write_text(json.dumps(damage(good)))
    assert main(["-v", "--check", "seed.toml"]) == 0
    captured = capsys.readouterr()
    assert "building the network" in captured.err
    assert "3 generated files match their specs" in captured.out
    assert json.loads(entry_of(project).read_text()) == good  # overwritten
    entry_of(project).write_text(json.dumps(damage(good)))
    assert main(["seed.toml"]) == 0
    listed = capsys.readouterr().out
    assert all(f"generated/{n}" in listed for n in SEED_FILES), listed


def test_no_cache_reads_no_entry_but_rewrites_it(project, capsys):
    assert main(["seed.toml", "-q"]) == 0
    good = json.loads(entry_of(project).read_text())
    entry_of(project).write_text('{"name": "seed_mlp", "files": {}}')
    assert main(["-v", "--no-cache", "seed.toml"]) == 0
    assert "seed.toml: --no-cache; deriving it" in capsys.readouterr().err
    assert json.loads(entry_of(project).read_text()) == good
    assert main(["-v", "--check", "seed.toml"]) == 0
    assert "unchanged since the last run" in capsys.readouterr().err


def test_diff_prints_orphans_as_deletions_that_git_apply_applies(project, capsys):
    (project / "other.toml").write_text(OTHER)
    assert main(["seed.toml", "other.toml", "-q"]) == 0
    (project / "other.toml").unlink()
    assert main(["--diff", "seed.toml"]) == 1
    captured = capsys.readouterr()
    for name in OTHER_FILES:
        assert f"--- a/generated/{name}\n+++ /dev/null\n@@ -1," in captured.out
    assert "3 generated files have no spec any more" in captured.err
    assert "match" not in captured.out
    (project / "deleting.diff").write_text(captured.out)
    applied = subprocess.run(
        ["git", "apply", "deleting.diff"], cwd=project, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert sorted(os.listdir(project / "generated")) == sorted(SEED_FILES)
    assert main(["--check", "seed.toml"]) == 0


def test_a_plain_run_says_which_orphans_it_leaves(project, capsys):
    (project / "other.toml").write_text(OTHER)
    assert main(["seed.toml", "other.toml", "-q"]) == 0
    (project / "other.toml").unlink()
    assert main(["seed.toml"]) == 0
    err = capsys.readouterr().err
    assert (
        "derive: orphan: generated/other_mlp.py (its spec ../other.toml is gone; "
        "derive deletes no file: delete it)" in err
    )
    assert (project / "generated" / "other_mlp.py").is_file()  # never deleted


def test_diff_from_a_subfolder_is_relative_to_the_project_root(
    tmp_path, monkeypatch, capsys
):
    """git apply takes a patch's paths relative to where it runs and ignores paths
    outside it, so the diff names files from the project's root, from anywhere."""
    write_project(tmp_path, '[tool.derive]\nspecs = ["specs/"]\n')
    git("init", "-q", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["-q"]) == 0
    spec_file = tmp_path / "specs" / "seed.toml"
    spec_file.write_text(SEED.replace("x = 10", "x = 11"))
    monkeypatch.chdir(tmp_path / "specs")
    assert main(["--diff"]) == 1
    diff = capsys.readouterr().out
    assert diff.startswith(
        "--- a/generated/seed_mlp.tex\n+++ b/generated/seed_mlp.tex\n"
    ), diff
    (tmp_path / "change.diff").write_text(diff)
    applied = subprocess.run(
        ["git", "apply", "change.diff"], cwd=tmp_path, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert main(["--check"]) == 0


def test_the_default_out_is_beside_the_pyproject(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, '[tool.derive]\nspecs = ["specs/"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["-q"]) == 0
    monkeypatch.chdir(tmp_path / "specs")
    assert main(["--check"]) == 0
    assert "3 generated files match" in capsys.readouterr().out
    assert main(["-q", "--no-cache"]) == 0
    assert not (tmp_path / "specs" / "generated").exists()


def test_an_out_from_tool_derive_is_named_so_in_errors(tmp_path, monkeypatch, capsys):
    write_project(
        tmp_path, '[tool.derive]\nspecs = ["specs/"]\nout = "pyproject.toml"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["--check"]) == 2
    assert capsys.readouterr().err == (
        "derive: error: pyproject.toml: tool.derive.out (pyproject.toml): is a file, "
        "not a folder\n"
    )
    assert main(["--check", "--out", "pyproject.toml"]) == 2
    assert capsys.readouterr().err == (
        "derive: error: --out pyproject.toml: is a file, not a folder\n"
    )


def test_a_spec_named_twice_is_read_once(project, capsys):
    assert main(["seed.toml", "./seed.toml", ".", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["--check", ".", str(project / "seed.toml")]) == 0
    assert "3 generated files match" in capsys.readouterr().out


def test_verbose_marks_the_module_printed_a_second_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seed.toml").write_text(SEED)
    assert main(["-v", "seed.toml"]) == 0
    lines = [line.split("] ", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == len(set(lines)), lines  # no line said twice alike
    assert (
        "seed.toml: formatting seed_mlp.py with ruff again (the module written, its "
        "header saying how it was checked)" in lines
    )


def test_an_empty_spec_names_standard_input_and_both_forms(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: <stdin>: standard input is empty; ")
    assert "([[layers]] form)" in err and "[equations] (equations form)" in err
    with pytest.raises(spec.SpecError, match="the file is empty; .*equations form"):
        spec.parse_spec("", Path("x.toml"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--check", "--diff"], "argument --diff: not allowed with argument --check"),
        (["--pdf", "--no-pdf"], "argument --no-pdf: not allowed with argument --pdf"),
    ],
)
def test_opposite_options_together_are_an_error(capsys, arguments, message):
    with pytest.raises(SystemExit) as exit:
        main(arguments)
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"derive: error: {message}; see derive --help\n"


def test_the_summary_of_a_renamed_network_says_so(project, capsys):
    (project / "seed.toml").write_text(OTHER)
    assert main(["seed.toml", "-q"]) == 0
    capsys.readouterr()
    assert main(["--check", "seed.toml"]) == 1
    err = capsys.readouterr().err
    assert "no spec any more" not in err
    assert (
        "derive --check: 3 generated files are no longer made by their spec, which "
        "makes other files now (its name changed); delete them" in err
    )
