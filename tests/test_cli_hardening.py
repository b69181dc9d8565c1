"""Inputs a new user tried in order to break derive: formulas that divide by zero,
overflow or are not real, descriptions that are not plain prose, names that shadow a
module, output folders that cannot be written, byte-order marks, failing LaTeX, and
``--check`` from another folder."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruff.__main__ import find_ruff_bin

from derive import files
from derive.cli import main
from derive.targets import SHADOWED_MODULES
from tests.conftest import GENERATED, SPECS, generate_module
from tests.test_cli import SEED, assert_refused, run

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


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
