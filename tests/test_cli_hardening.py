"""Inputs a new user tried in order to break derive: formulas that divide by zero,
overflow or are not real, descriptions that are not plain prose, names that shadow a
module, output folders that cannot be written, byte-order marks, failing LaTeX, and
``--check`` from another folder; signals, two runs into one folder, specs that are
not regular files, and out-of-range arguments."""

from __future__ import annotations

import ast
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruff.__main__ import find_ruff_bin

from derive import files
from derive.cli import main
from derive.targets import SHADOWED_MODULES
from tests.conftest import GENERATED, SPECS, examples, generate_module
from tests.test_cli import SEED, SEED_FILES, _read_terminal_until, assert_refused, run

CUSTOM = SEED.replace('"relu"', '"custom"\nexpression = "{}"', 1)
LOSS = SEED.replace('kind = "squared"', 'kind = "custom"\nexpression = "{}"')
MORE_BAD_SPECS = {
    "division by zero": (
        CUSTOM.format("x/0"),
        "layers[0].expression: 'x/0' divides by zero in x / 0",
    ),
    "division by zero in a loss": (
        LOSS.format("(y_predicted - y)/0"),
        "loss.expression: '(y_predicted - y)/0' divides by zero",
    ),
    "division by a zero difference": (CUSTOM.format("x/(2 - 2)"), "divides by zero"),
    "tower of powers": (
        CUSTOM.format("x**(2**2**2**2**2)"),
        "2 ** 2 ** 2 ** 2 ** 2 is about 2**6.554e+04, beyond float64's range",
    ),
    "power of ten characters": (
        CUSTOM.format("9**9**9*x"),
        "9 ** 9 ** 9 is about 2**1.228e+09",
    ),
    "tiny power": (
        CUSTOM.format("0.5**3000*x"),
        "is about 2**-3000, beyond float64's range",
    ),
    "exponential beyond float64": (
        CUSTOM.format("exp(800)*x"),
        "exp(800) is about 2.726e+347",
    ),
    "folded constant beyond float64": (
        CUSTOM.format("x*1e300*1e300"),
        "holds the number 1.000e+600, beyond float64's range",
    ),
    "square root of -1": (CUSTOM.format("sqrt(-1)*x"), "sqrt(-1) is not a real number"),
    "logarithm of -1": (CUSTOM.format("log(-1)*x"), "log(-1) is not a real number"),
    "cube root of -8": (
        CUSTOM.format("(-8)**(1/3)*x"),
        "(-8) ** (1 / 3) is not a real number",
    ),
    "logarithm of 0": (CUSTOM.format("log(0) + x"), "log(0) is not a finite number"),
    "zero to a negative power": (
        CUSTOM.format("0**-1*x"),
        "0 ** (-1) is not a finite number",
    ),
    **{
        f"name {name}": (
            SEED.replace('"seed_mlp"', f'"{name}"'),
            f"name: got '{name}', the name of a module generated code imports",
        )
        for name in (
            "numpy",
            "scipy",
            "typing",
            "collections",
            "math",
            "functools",
            "numbers",
        )
    },
    "name __future__": (
        SEED.replace('"seed_mlp"', '"__future__"'),
        "NAME.py would shadow it",
    ),
}


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    """The seed network's files, generated once for every bad-spec case."""
    out = tmp_path_factory.mktemp("seed_files")
    assert main(["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("case", MORE_BAD_SPECS)
def test_more_bad_specs_give_one_line_exit_2_and_touch_nothing(
    tmp_path, seed_files, case
):
    assert_refused(tmp_path, seed_files, *MORE_BAD_SPECS[case])


def imported_modules(source: str) -> set[str]:
    tree = ast.parse(source)
    return {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }


def test_every_module_generated_code_imports_is_a_refused_name(tmp_path):
    """The refused names cover what generated code imports, including what the
    printers add (scipy.special for erf, functools for a min of three)."""
    sources = [path.read_text() for path in sorted(GENERATED.glob("*.py"))]
    gelu = SEED.replace('"relu"', '"gelu"', 1)
    generate_module(tmp_path, gelu)
    sources.append((tmp_path / "seed_mlp.py").read_text())
    for source in sources:
        assert imported_modules(source) <= SHADOWED_MODULES


def test_min_of_x_and_a_number_generates_working_code(tmp_path):
    """``min(x, 1)`` used to print ``functools.reduce`` without importing it."""
    import numpy as np

    text = SEED.replace('"relu"', '"custom"\nexpression = "min(x, 1) + x"', 1)
    _, module = generate_module(tmp_path, text)
    r = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(module.custom(r), [-4.0, 1.0, 4.0])
    np.testing.assert_array_equal(module.custom_derivative(r), [2.0, 2.0, 1.0])


def test_printers_record_what_they_import():
    import sympy as sp

    from derive.printing.code import Printers
    from derive.printing.numpy_code import NumPyCodePrinter

    x, y, z = sp.symbols("x y z")
    printers = Printers(NumPyCodePrinter)
    # A min of three is nested numpy.minimum: nothing to import besides numpy.
    assert (
        printers().doprint(sp.Min(x, y, z)) == "numpy.minimum(x, numpy.minimum(y, z))"
    )
    assert printers().doprint(sp.erf(x)) == "scipy.special.erf(x)"
    assert printers.imports(besides=["numpy"]) == ("scipy.special",)


# Item 5: a description is text, whatever it holds.
def check_description(folder: Path, description: str) -> None:
    from derive.render import render
    from derive.spec import parse_spec

    spec = parse_spec(SEED, "seed.toml")
    spec = type(spec)(**{**spec.__dict__, "description": " ".join(description.split())})
    source = render(spec, "seed.toml")[0].text
    assert isinstance(source, str)
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree, clean=False) or ""
    assert " ".join(spec.description.split()) in " ".join(docstring.split())
    assert [type(node) for node in tree.body[:2]] == [ast.Expr, ast.ImportFrom]
    path = folder / "described.py"
    path.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [
            find_ruff_bin(),
            "check",
            "--isolated",
            "--select",
            "E4,E7,E9,F,W,B,UP",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "description",
    [
        'ends the docstring """ and then __import__("os")',
        r"\N and C:\xfiles and \a",
        "\x07 bell \u200b",
        'quote" ""',
        "\\",
    ],
)
def test_descriptions_that_broke_the_docstring(tmp_path, description):
    check_description(tmp_path, description)


@settings(
    max_examples=examples(15),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.text(max_size=200))
def test_any_description_stays_text(tmp_path, description):
    check_description(tmp_path, description)


# Item 7: output folders that cannot be written.
def test_out_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file\n")
    for out, message in (
        ("taken", "--out taken: is a file, not a folder"),
        (
            "taken/below",
            "--out taken/below: cannot create the folder (Not a directory)",
        ),
        ("/proc/derive-out", "--out /proc/derive-out: cannot create the folder"),
        ("/proc", "--out /proc: cannot write in this folder"),
    ):
        result = run("--out", out, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"derive: error: {message}"), result.stderr
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert (tmp_path / "taken").read_text() == "a file\n"
    check = run("--check", "--out", "taken", cwd=tmp_path)
    assert check.returncode == 2
    assert check.stderr.strip() == "derive: error: --out taken: is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_that_is_not_writable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = run("--out", "locked", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "derive: error: --out locked: cannot write in this folder"
    )


def test_a_folder_where_one_output_goes_changes_nothing(tmp_path):
    out = tmp_path / "generated"
    assert main(["--out", str(out)]) == 0
    (out / "seed_mlp.py").write_text("# previous\n")
    (out / "seed_mlp.md").unlink()
    (out / "seed_mlp.md").mkdir()
    before = {p.name: p.is_dir() or p.read_bytes() for p in out.iterdir()}
    result = run("--out", "generated", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "derive: error: generated/seed_mlp.md: is a folder, where derive writes a file; "
        "no file was changed"
    )
    assert {p.name: p.is_dir() or p.read_bytes() for p in out.iterdir()} == before


def test_a_rename_that_fails_part_way_is_undone(tmp_path, monkeypatch, capsys):
    out = tmp_path / "generated"
    assert main(["--out", str(out)]) == 0
    (out / "seed_mlp.py").write_text("# previous\n")
    (out / "seed_mlp.tex").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = os.replace
    calls = []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise PermissionError(1, "Operation not permitted", source, None, target)
        return real(source, target)

    monkeypatch.setattr(files.os, "replace", failing_replace)
    assert main(["--out", str(out)]) == 2
    assert (
        "seed_mlp.md: cannot replace it (Operation not permitted); no file was changed"
        in capsys.readouterr().err
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# Item 8: a byte-order mark.
def test_a_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "seed.toml").write_bytes(b"\xef\xbb\xbf" + SEED.encode())
    result = run("seed.toml", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# Item 9: a failed pdflatex run shows its error.
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_a_latex_error_is_shown_in_the_message():
    from derive.errors import DeriveError
    from derive.pdf import compile_tex

    tex = "\\documentclass{article}\n\\begin{document}\nHello \\nosuchmacro{} world.\n\\end{document}\n"
    with pytest.raises(DeriveError) as error:
        compile_tex(tex, "broken")
    lines = str(error.value).splitlines()
    assert lines[:3] == [
        "pdflatex failed on broken.tex:",
        "    ! Undefined control sequence.",
        "    l.3 Hello \\nosuchmacro",
    ]
    assert lines[3].strip() == "{} world." and len(lines) == 4


# Item 10: the header does not depend on the working folder.
@pytest.mark.slow  # derives every spec
def test_check_passes_from_another_folder(tmp_path):
    result = run("--check", str(SPECS), "--out", str(GENERATED), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_headers_name_the_spec_relative_to_the_output_folder(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "seed.toml").write_text(SEED)
    (tmp_path / "elsewhere").mkdir()
    for cwd, spec, out in (
        (tmp_path, "specs/seed.toml", "out"),
        (tmp_path / "elsewhere", "../specs/seed.toml", "../out"),
    ):
        assert run(spec, "--out", out, cwd=cwd).returncode == 0
        header = (tmp_path / "out" / "seed_mlp.py").read_text().splitlines()[0]
        assert header == "# Generated by derive 0.1.0 from ../specs/seed.toml."
    (tmp_path / "pyproject.toml").write_text("")
    assert run("specs/seed.toml", "--out", "out", cwd=tmp_path).returncode == 0
    header = (tmp_path / "out" / "seed_mlp.py").read_text().splitlines()[0]
    assert header == "# Generated by derive 0.1.0 from specs/seed.toml."
    assert (
        run(
            "--check",
            "../specs/seed.toml",
            "--out",
            "../out",
            cwd=tmp_path / "elsewhere",
        ).returncode
        == 0
    )


# Issue 23: hostile and careless input.
def previous_seed_files(seed_files: Path, out: Path) -> dict[str, bytes]:
    """The seed network's files in ``out``, one of them an older version."""
    shutil.copytree(seed_files, out, dirs_exist_ok=True)
    (out / "seed_mlp.py").write_text("# previous\n")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def contents(out: Path) -> dict[str, bytes]:
    """Every entry of ``out`` (temporary files, backups and lock files included)."""
    return {
        p.name: p.read_bytes() if p.is_file() else b"<folder>" for p in out.iterdir()
    }


def signal_at_call(monkeypatch, function: str, call: int, number: int) -> None:
    """Send ``number`` to this process at the ``call``-th call of ``files.os.<function>``
    (then make the call): a signal arriving at a known point of the write."""
    real = getattr(os, function)
    calls = []

    def signalled(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            # raise_signal runs the Python handler before it returns: no race
            signal.raise_signal(number)
        return real(*args, **kwargs)

    monkeypatch.setattr(files.os, function, signalled)


def test_sigterm_while_staging_removes_the_temporary_files(
    seed_files, tmp_path, monkeypatch, capsys
):
    """SIGTERM used to end the process on the spot, leaving .seed_mlp.py.XXXX."""
    before = previous_seed_files(seed_files, tmp_path)
    capsys.readouterr()
    signal_at_call(monkeypatch, "fdopen", 2, signal.SIGTERM)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["--out", str(tmp_path)]) == 143
    assert capsys.readouterr().err == "derive: terminated; no file was changed\n"
    assert contents(tmp_path) == before
    assert signal.getsignal(signal.SIGTERM) == handler


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_renames_puts_every_file_back(
    seed_files, tmp_path, monkeypatch, capsys, number
):
    """SIGTERM between two renames used to leave the .py new, the .md and .tex old,
    and the .derive-backup-* folder. A signal is held until the next rename, where
    the renames done are undone."""
    before = previous_seed_files(seed_files, tmp_path)
    capsys.readouterr()
    signal_at_call(monkeypatch, "replace", 2, number)
    assert main(["--out", str(tmp_path)]) == 128 + number
    what = "terminated" if number == signal.SIGTERM else "interrupted"
    assert capsys.readouterr().err == f"derive: {what}; no file was changed\n"
    assert contents(tmp_path) == before


def test_a_signal_after_the_last_rename_says_the_files_were_written(
    seed_files, tmp_path, monkeypatch, capsys
):
    previous_seed_files(seed_files, tmp_path)
    signal_at_call(monkeypatch, "replace", 3, signal.SIGTERM)  # the third of three
    assert main(["--out", str(tmp_path)]) == 143
    assert (
        capsys.readouterr().err
        == "derive: terminated; every file was already written\n"
    )
    assert contents(tmp_path) == contents(seed_files)


def run_on_terminal(*args: str, cwd: Path) -> tuple[subprocess.Popen, int]:
    """derive started with standard error on a pseudo-terminal, where its status line
    says what it is doing; the process and the terminal's end to read."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "derive", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    return process, leader


def finish(process: subprocess.Popen, leader: int) -> tuple[bytes, str]:
    """Standard output, and what the terminal got to the end, once it exits."""
    stdout, _ = process.communicate(timeout=60)
    stderr = _read_terminal_until(leader, None, 60).decode()
    os.close(leader)
    return stdout, stderr


WAITING = b"derive: waiting for another derive run writing in generated/"


def test_a_run_waits_for_another_writing_into_the_folder(tmp_path):
    """Two runs into one folder once left the .md of one and the .py and .tex of the
    other. The test holds the folder's lock as another run would: derive waits for
    it, past its derivation, with nothing written, and writes once it is released."""
    out = tmp_path / "generated"
    out.mkdir()
    with files.output_lock(out):
        process, leader = run_on_terminal(cwd=tmp_path)
        shown = _read_terminal_until(leader, WAITING, 120)
        assert WAITING in shown, shown
        assert sorted(p.name for p in out.iterdir()) == [".derive.lock"]
    stdout, stderr = finish(process, leader)
    assert process.returncode == 0, stderr
    assert b"wrote     generated/seed_mlp.py" in stdout
    # the lock file went with the run that held it last
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILES)


def test_sigterm_to_a_run_waiting_for_the_lock(seed_files, tmp_path):
    """A real SIGTERM from outside, at a known point: while derive waits for the lock
    the test holds. Exit status 143, nothing written, nothing left."""
    out = tmp_path / "generated"
    before = previous_seed_files(seed_files, out)
    with files.output_lock(out):
        process, leader = run_on_terminal(cwd=tmp_path)
        shown = _read_terminal_until(leader, WAITING, 120)
        assert WAITING in shown, shown
        process.send_signal(signal.SIGTERM)
        stdout, stderr = finish(process, leader)
    assert process.returncode == 143, stderr
    assert stderr.endswith("derive: terminated; no file was changed\r\n"), stderr
    assert stdout == b""
    assert contents(out) == before


def test_a_lock_held_too_long_is_one_line_and_changes_nothing(
    seed_files, tmp_path, monkeypatch, capsys
):
    before = previous_seed_files(seed_files, tmp_path)
    capsys.readouterr()
    monkeypatch.setattr(files, "LOCK_WAIT", 0.0)  # give up at the first try
    with files.output_lock(tmp_path):
        assert main(["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"derive: error: --out {tmp_path.as_posix()}: another derive run (process "
        f"{os.getpid()}) is writing in this folder and still holds .derive.lock "
        "after 0 s; no file was changed\n"
    )
    assert contents(tmp_path) == before


def test_a_lock_file_left_behind_is_harmless(tmp_path, seed_files):
    """A run killed with SIGKILL leaves .derive.lock (its lock goes with it): the
    next run takes it and removes it, and --check does not mind it."""
    previous_seed_files(seed_files, tmp_path)
    (tmp_path / ".derive.lock").write_text("12345\n")
    assert main(["--out", str(tmp_path)]) == 0
    assert contents(tmp_path) == contents(seed_files)
    (tmp_path / ".derive.lock").write_text("12345\n")
    assert main(["--check", "--out", str(tmp_path)]) == 0


def test_a_removed_lock_file_is_not_taken(tmp_path):
    """The lock of a file the run before removed is no lock: a run waiting on it
    takes the file now at the path, or two runs would both hold "the" lock."""
    import fcntl

    with files.output_lock(tmp_path):
        stale = os.open(tmp_path / ".derive.lock", os.O_RDONLY)
    try:
        assert not (tmp_path / ".derive.lock").exists()
        fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody holds it
        assert not files._is_at(stale, tmp_path / ".derive.lock")
        with files.output_lock(tmp_path):
            held = tmp_path / ".derive.lock"
            assert held.exists() and held.read_text() == f"{os.getpid()}\n"
    finally:
        os.close(stale)


def test_sigterm_to_audit_kills_the_module_process(tmp_path):
    """SIGTERM to ``derive audit`` alone (not its process group, as Ctrl-C reaches)
    used to leave the audited module running, here in an infinite loop."""
    marker = tmp_path / "pid"
    module = tmp_path / "hangs.py"
    module.write_text(
        "import os\n"
        f"open({str(marker)!r} + '.new', 'w').write(str(os.getpid()))\n"
        f"os.replace({str(marker)!r} + '.new', {str(marker)!r})\n"
        "while True:\n    pass\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "derive", "audit", str(SPECS / "seed.toml"), str(module)]
        + ["--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the module to be running: not a race
    assert marker.exists(), process.communicate(timeout=60)
    child = int(marker.read_text())
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (
        143,
        "",
        "derive audit: terminated\n",
    )
    with pytest.raises(ProcessLookupError):  # killed and waited for: gone
        os.kill(child, 0)


def test_a_spec_is_read_only_from_a_regular_file(tmp_path, capsys):
    folder = tmp_path / "specs"
    folder.mkdir()
    os.mkfifo(folder / "x.toml")
    long_name = "a" * 300 + ".toml"
    deep = "a/" * 2100 + "seed.toml"
    big = tmp_path / "big.toml"
    big.write_bytes(SEED.encode() + b"#" * (1 << 20))
    (tmp_path / "deep.toml").write_text("x = " + "[" * 100_000)
    for spec, message in (
        (str(folder / "x.toml"), "is a named pipe (FIFO), not a regular file"),
        ("/dev/zero", "is a device, not a regular file"),
        (long_name, "cannot read the file (File name too long)"),
        (deep, "cannot read the file (File name too long)"),
        (
            str(big),
            f"the file is {big.stat().st_size} bytes; a spec is at most 1048576",
        ),
        (str(tmp_path / "deep.toml"), "not a spec: arrays or tables nested too deeply"),
    ):
        assert main([spec, "--out", str(tmp_path / "out")]) == 2, spec
        captured = capsys.readouterr()
        assert captured.err.startswith(f"derive: error: {spec}: {message}"), captured
        assert captured.err.count("\n") == 1 and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_a_fifo_in_a_spec_folder_does_not_block(tmp_path):
    """``derive specs/`` with a FIFO named x.toml there used to wait forever for a
    writer (a timeout here, in case it does again)."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "seed.toml").write_text(SEED)
    os.mkfifo(tmp_path / "specs" / "x.toml")
    result = subprocess.run(
        [sys.executable, "-m", "derive", "specs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "derive: error: specs/x.toml: is a named pipe (FIFO), not a regular file; "
        "a spec is read only from a regular file\n"
    )
    assert not (tmp_path / "generated").exists()


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--timeout", "inf", "a number of seconds above 0, at most 86400"),
        ("--timeout", "nan", "a number of seconds above 0, at most 86400"),
        ("--timeout", "0", "a number of seconds above 0, at most 86400"),
        ("--seed", "-5", "an integer from 0"),
        ("--seed", "1.5", "an integer from 0"),
        ("--points", "100000000", "an integer from 0 to 100000"),
        ("--rtol", "inf", "a number above 0, at most 1"),
    ],
)
def test_audit_arguments_out_of_range_are_one_line(capsys, option, value, allowed):
    with pytest.raises(SystemExit) as exit:
        main(["audit", "seed.toml", "module.py", option, value])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        f"derive audit: error: argument {option}: must be {allowed}, got '{value}'; "
        "see derive audit --help\n"
    )


def test_an_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--chek"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "derive: error: unrecognized arguments: --chek; see derive --help\n"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({1: 2}, "<dict>: field names are strings, as TOML keys are; got 1 (int)"),
        (
            {"sizes": {1: 3}, "equations": {"y": "x"}},
            "<dict>: sizes: field names are strings, as TOML keys are; got 1 (int)",
        ),
        (
            {"name": "net", "layers": [{"width": 2, None: 1}]},
            "<dict>: layers[0]: field names are strings, as TOML keys are; got None",
        ),
    ],
)
def test_a_dict_with_a_key_that_is_not_a_string_is_a_spec_error(data, message):
    import derive
    from derive.errors import SpecError

    with pytest.raises(SpecError) as error:
        derive.build(data)
    assert str(error.value).startswith(message)


def test_api_text_and_paths_that_are_not_specs_are_spec_errors(tmp_path):
    import derive
    from derive.errors import SpecError

    with pytest.raises(SpecError, match=r"the text is 1048582 characters; a spec"):
        derive.build("x = 1\n" + " " * (1 << 20))
    with pytest.raises(SpecError, match=r"cannot read the file \(File name too long\)"):
        derive.build("a" * 300)
    with pytest.raises(SpecError, match=r"is a folder, not a regular file"):
        derive.build(tmp_path)


def test_an_error_about_a_file_whose_name_holds_a_line_break_is_one_line(
    tmp_path, capsys
):
    """A file name may hold any character but / and NUL; the one line stays one
    line, the name's line break and escape written as Python writes them."""
    spec = tmp_path / "bad\nname\x1b[2J.toml"
    spec.write_text('name = "t"\n')
    assert main([str(spec), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert "bad\\nname\\x1b[2J.toml" in error
    assert not (tmp_path / "out").exists()
