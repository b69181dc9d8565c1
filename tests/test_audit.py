"""``derive audit``: the function holding a slip is named, and only that one.

Every hand-written module here is audited against derive's own module for the spec:
the problem set's solution with its slip, a correct solution written with loops, the
same solution with one slip planted at a time, a vectorized ``gradients`` for a batched
network, and modules that hang, exit or print.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.audit import AuditError, audit
from derive.cli import main
from tests import problem_set
from tests.conftest import GENERATED, ROOT, SPECS, import_path

SEED = SPECS / "seed.toml"
SMALL = SPECS / "small_regression.toml"
HAND = ROOT / "tests" / "hand_written"
LOOPS = HAND / "seed_loops.py"
PROBLEM_SET = ROOT / "tests" / "problem_set.py"
#: Few random points: the crafted points find every slip planted here.
FEW = 20

GRADIENTS = [
    "d_loss_d_ypredicted",
    "d_loss_d_h1",
    "d_loss_d_r1",
    "d_loss_d_h0",
    "d_loss_d_r0",
    "d_loss_d_W0",
    "d_loss_d_W1",
    "d_loss_d_W2",
]
ALL_OK = dict.fromkeys(["mlp", "relu", "relu_derivative", "loss", *GRADIENTS], "ok")


def statuses(**changed: str) -> dict[str, str]:
    return {**ALL_OK, **changed}


def test_the_problem_sets_slip_is_in_d_loss_d_r1_and_four_functions_inherit_it():
    report = audit(SEED, PROBLEM_SET)
    assert report.statuses == statuses(
        relu_derivative="convention",
        d_loss_d_r1="wrong",
        d_loss_d_h0="inherits",
        d_loss_d_r0="inherits",
        d_loss_d_W0="inherits",
        d_loss_d_W1="inherits",
    )
    assert not report.ok
    for name in ["d_loss_d_h0", "d_loss_d_r0", "d_loss_d_W0", "d_loss_d_W1"]:
        assert report[name].through == ("d_loss_d_r1",)
    assert report["relu_derivative"].convention == (
        "takes relu'(0) = 1; derive takes relu'(0) = 0 (as torch)"
    )

    wrong = report["d_loss_d_r1"]
    failure = wrong.failure
    assert failure is not None and failure.point is not None
    # The simplest failing point: the worked point with one unit of r1 turned off.
    assert failure.point.label == (
        "the worked point with W1[0] negated, r1[0] < 0 (a dead unit)"
    )
    point = failure.point.arrays
    np.testing.assert_array_equal(point["W1"], [[-3, -4, -5], [-5, 4, 3], [3, 4, 1]])
    values = problem_set.mlp(point["x"], point["W0"], point["W1"], point["W2"])
    assert values["r1"][0] == -260
    # derive's value has 0 where the unit is off; the problem set's passes -480 back.
    assert failure.expected == [0, -1440, 1440]
    assert failure.actual == [-480, -1440, 1440]
    np.testing.assert_array_equal(
        failure.actual,
        problem_set.d_loss_d_r1(values, point["W2"], point["y_observed"]),
    )
    assert wrong.reads["r1"].tolist() == [-260, 120, 140]
    # The step derive took, in index form and matrix form, from its derivation.
    assert wrong.step is not None
    assert wrong.step.lines[0] == "d_loss_d_r1[i] = Σ_m ∂h1[m]/∂r1[i]*d_loss_d_h1[m]"
    assert (
        wrong.step.lines[-1].split("= ")[-1] == "relu_derivative(r1[i])*d_loss_d_h1[i]"
    )
    assert wrong.step.matrix == "d_loss_d_r1 = d_loss_d_h1*relu_derivative(r1)"
    assert r"\frac{\partial L}{\partial r^{(1)}_{i}}" in wrong.step.latex_left
    # The user's line where the function is defined.
    assert wrong.source is not None
    lines = PROBLEM_SET.read_text().splitlines()
    assert lines[wrong.source.line - 1].startswith("def d_loss_d_r1(")
    assert wrong.source.text.startswith("def d_loss_d_r1(")


def test_the_command_says_where_the_slip_is_in_a_few_lines(capsys):
    assert main(["audit", str(SEED), str(PROBLEM_SET), "--points", str(FEW)]) == 1
    out = capsys.readouterr().out
    assert "d_loss_d_r1          wrong" in out
    assert "d_loss_d_W1          inherits    1                 from d_loss_d_r1" in out
    assert f"d_loss_d_r1 is wrong ({PROBLEM_SET.as_posix()}:" in out
    assert "expected [0, -1440, 1440]" in out
    assert "actual   [-480, -1440, 1440]" in out
    assert "d_loss_d_r1[i] = Σ_m ∂h1[m]/∂r1[i]*d_loss_d_h1[m]" in out
    assert out.rstrip().endswith("fails: 1 wrong, 4 inherits, 1 convention, 6 ok.")


def test_json_output(capsys):
    assert main(["audit", str(SEED), str(PROBLEM_SET), "--json", "--points", "5"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["spec"] == SEED.as_posix()
    assert report["module"] == PROBLEM_SET.as_posix()
    functions = report["functions"]
    assert list(functions) == list(ALL_OK)
    assert functions["d_loss_d_W1"]["through"] == ["d_loss_d_r1"]
    wrong = functions["d_loss_d_r1"]
    assert wrong["status"] == "wrong"
    assert wrong["expected"] == [0, -1440, 1440]
    assert wrong["actual"] == [-480, -1440, 1440]
    assert wrong["point"]["W1"] == [[-3, -4, -5], [-5, 4, 3], [3, 4, 1]]
    lines = PROBLEM_SET.read_text().splitlines()
    line = lines.index(
        "def mlp(x: float, W0: Any, W1: Any, W2: Any) -> dict[str, Any]:"
    )
    assert functions["mlp"]["status"] == "ok"
    assert functions["mlp"]["source"] == f"{PROBLEM_SET.as_posix()}:{line + 1}"
    assert functions["d_loss_d_W1"]["max_rel_error"] > 0.5


def test_markdown_output_has_the_table_and_the_latex_of_the_step(capsys):
    arguments = ["--format", "markdown", "--points", str(FEW)]
    assert main(["audit", str(SEED), str(PROBLEM_SET), *arguments]) == 1
    out = capsys.readouterr().out
    assert "| `d_loss_d_r1` | wrong | 1 |" in out
    assert "## `d_loss_d_r1` is wrong" in out
    assert "\\begin{aligned}" in out and "$$" in out
    assert "```python\nd_loss_d_r1 = d_loss_d_h1*relu_derivative(r1)\n```" in out


def test_a_correct_solution_written_with_loops_is_all_ok(capsys):
    assert main(["audit", str(SEED), str(LOOPS), "--points", str(FEW)]) == 0
    report = audit(SEED, LOOPS)
    assert report.statuses == ALL_OK
    assert report.ok
    assert max(f.max_rel_error for f in report.functions.values()) < 1e-13


def test_derives_own_generated_modules_pass_their_audit():
    for spec, module in [(SEED, "seed_mlp.py"), (SMALL, "small_regression.py")]:
        report = audit(spec, GENERATED / module, points=FEW)
        assert report.ok, report.text()
        assert set(report.statuses.values()) == {"ok"}


MLP_SLIP = statuses(mlp="wrong", **dict.fromkeys(GRADIENTS, "inherits"))
DOWNSTREAM_OF_YPREDICTED = dict.fromkeys(GRADIENTS[1:], "inherits")

#: One slip each, planted in the loop solution: (text, replacement, statuses).
SLIPS = {
    "a missing factor": (
        'return 2 * (variable_dict["y_predicted"] - y_observed)',
        'return variable_dict["y_predicted"] - y_observed',
        statuses(d_loss_d_ypredicted="wrong", **DOWNSTREAM_OF_YPREDICTED),
    ),
    "a wrong sign": (
        'return 2 * (variable_dict["y_predicted"] - y_observed)',
        'return 2 * (y_observed - variable_dict["y_predicted"])',
        statuses(d_loss_d_ypredicted="wrong", **DOWNSTREAM_OF_YPREDICTED),
    ),
    "a missing transpose": (
        "gradient[k] += upstream[i] * W1[i, k]",
        "gradient[k] += upstream[i] * W1[k, i]",
        statuses(d_loss_d_h0="wrong", d_loss_d_r0="inherits", d_loss_d_W0="inherits"),
    ),
    "an outer product the wrong way round": (
        "gradient[i, j] = upstream[i] * h0[j]",
        "gradient[i, j] = upstream[j] * h0[i]",
        statuses(d_loss_d_W1="wrong"),
    ),
    "a gate on the wrong value": (
        "upstream[i] * relu_derivative(r0[i])",
        'upstream[i] * relu_derivative(variable_dict["r1"][i])',
        statuses(d_loss_d_r0="wrong", d_loss_d_W0="inherits"),
    ),
    "a forward pass slip": (
        "h1 = np.array([relu(r1[i]) for i in range(3)])",
        "h1 = r1.copy()",
        MLP_SLIP,
    ),
    "a function that raises": (
        "    upstream = d_loss_d_r1(variable_dict, W2, y_observed)\n    h0 = ",
        '    raise NotImplementedError("TODO")\n    h0 = ',
        statuses(d_loss_d_W1="error"),
    ),
    "a missing function": (
        "def d_loss_d_h1(",
        "def unused_d_loss_d_h1(",
        statuses(
            d_loss_d_h1="missing",
            **dict.fromkeys(
                [
                    "d_loss_d_r1",
                    "d_loss_d_h0",
                    "d_loss_d_r0",
                    "d_loss_d_W0",
                    "d_loss_d_W1",
                ],
                "inherits",
            ),
        ),
    ),
    "a wrong loss": (
        "return (y_predicted - y_observed) ** 2",
        "return (y_predicted - y_observed) ** 2 / 2",
        statuses(loss="wrong"),
    ),
    "a wrong helper": (
        "return x if x > 0 else 0.0",
        "return abs(x)",
        statuses(relu="wrong", mlp="wrong", **dict.fromkeys(GRADIENTS, "inherits")),
    ),
    "relu'(0) = 1, the problem set's convention": (
        "return 1.0 if x > 0 else 0.0",
        "return 1.0 if x >= 0 else 0.0",
        statuses(
            relu_derivative="convention",
            **dict.fromkeys(
                [
                    "d_loss_d_r1",
                    "d_loss_d_h0",
                    "d_loss_d_r0",
                    "d_loss_d_W0",
                    "d_loss_d_W1",
                ],
                "convention",
            ),
        ),
    ),
}


def planted(folder: Path, text: str, replacement: str, name: str = "solution") -> Path:
    source = LOOPS.read_text()
    assert source.count(text) == 1, text
    path = folder / f"{name}.py"
    path.write_text(source.replace(text, replacement))
    return path


@pytest.mark.parametrize("slip", SLIPS)
def test_each_planted_slip_is_named_exactly(tmp_path, slip):
    text, replacement, expected = SLIPS[slip]
    report = audit(SEED, planted(tmp_path, text, replacement), points=FEW)
    assert report.statuses == expected, report.text()
    assert report.ok == all(s in ("ok", "convention") for s in expected.values())
    for name, function in report.functions.items():
        if function.status == "inherits":
            assert function.through, name
    for function in report.functions.values():
        if function.status == "wrong" and function.role == "gradient":
            assert function.failure is not None and function.step is not None


def test_what_a_function_inherits_from_is_named(tmp_path):
    missing = audit(
        SEED, planted(tmp_path, *SLIPS["a missing function"][:2]), points=FEW
    )
    assert missing["d_loss_d_W0"].through == ("d_loss_d_h1",)
    forward = audit(
        SEED, planted(tmp_path, *SLIPS["a forward pass slip"][:2], "b"), points=FEW
    )
    assert forward["d_loss_d_W2"].through == ("mlp",)
    assert "h1 differs" in (forward["mlp"].failure.note or "")


def test_a_raising_function_is_reported_in_one_line(tmp_path):
    report = audit(
        SEED, planted(tmp_path, *SLIPS["a function that raises"][:2]), points=FEW
    )
    assert report["d_loss_d_W1"].error == "NotImplementedError: TODO"


def test_a_vectorized_gradients_with_a_bias_summed_over_the_wrong_axis(tmp_path):
    source = (HAND / "small_regression_gradients.py").read_text()
    assert audit(SMALL, HAND / "small_regression_gradients.py", points=FEW).ok
    slip = '"b1": d_r1.sum(axis=0)'
    assert source.count(slip) == 1
    path = tmp_path / "vectorized.py"
    path.write_text(source.replace(slip, '"b1": d_r1.sum(axis=1)'))
    report = audit(SMALL, path, points=FEW)
    assert report.statuses == {
        "gradients[W0]": "ok",
        "gradients[b0]": "ok",
        "gradients[W1]": "ok",
        "gradients[b1]": "wrong",
        "gradients[W2]": "ok",
        "gradients[b2]": "ok",
    }
    wrong = report["gradients[b1]"]
    assert wrong.failure is not None
    assert wrong.failure.note == "returns shape (1,), expected (8,)"
    assert wrong.step is not None
    assert wrong.step.matrix == "d_loss_d_b1 = d_loss_d_r1.sum(axis=0)"


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "derive", "audit", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("source", "timeout", "message"),
    [
        (
            "while True:\n    pass\n",
            "2",
            "importing it did not finish within 2 s (an infinite loop at the top "
            "level?); --timeout sets the limit",
        ),
        (
            "import sys\nsys.exit(3)\n",
            "60",
            "importing it failed: SystemExit: sys.exit(3) was called",
        ),
    ],
    ids=["an infinite loop", "sys.exit"],
)
def test_a_module_that_hangs_or_exits_at_import_is_reported_not_hung_on(
    tmp_path, source, timeout, message
):
    path = tmp_path / "module.py"
    path.write_text(source)
    result = run_cli(str(SEED), str(path), "--timeout", timeout)
    assert result.returncode == 2
    assert result.stderr == f"derive audit: error: {path.as_posix()}: {message}\n"


def test_an_import_error_and_a_missing_file_are_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\nnp.nothing_here\n")
    result = run_cli(str(SEED), str(broken))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "AttributeError" in result.stderr
    result = run_cli(str(SEED), str(tmp_path / "nowhere.py"))
    assert (result.returncode, result.stderr) == (
        2,
        f"derive audit: error: {(tmp_path / 'nowhere.py').as_posix()}: no such file\n",
    )


def test_a_function_that_loops_forever_exits_or_ends_the_process_is_an_error(
    tmp_path,
):
    path = planted(
        tmp_path,
        "def d_loss_d_W2(variable_dict, y_observed):\n",
        "def d_loss_d_W2(variable_dict, y_observed):\n    while True:\n        pass\n",
    )
    source = path.read_text().replace(
        "def d_loss_d_r0(variable_dict, W1, W2, y_observed):\n",
        "def d_loss_d_r0(variable_dict, W1, W2, y_observed):\n    import sys\n    sys.exit(1)\n",
    )
    source = "print('hello from the module')\n" + source.replace(
        "def mlp(x, W0, W1, W2):\n", "def mlp(x, W0, W1, W2):\n    print('in mlp')\n"
    )
    source = source.replace(
        "def loss(y_predicted, y_observed):\n",
        "def loss(y_predicted, y_observed):\n    import os\n    os._exit(7)\n",
    )
    path.write_text(source)
    # 5 s: enough for the child to start and check a function on a busy machine
    report = audit(SEED, path, points=FEW, timeout=5)
    assert report.statuses == statuses(
        loss="error", d_loss_d_W2="error", d_loss_d_r0="error", d_loss_d_W0="inherits"
    )
    assert report["loss"].error == "ended the process with status 7"
    assert report["d_loss_d_W2"].error == "did not return within 5 s"
    assert report["d_loss_d_r0"].error == "SystemExit: sys.exit(1) was called"


def test_the_python_api_takes_a_module_object_for_autograders():
    module = import_path(PROBLEM_SET, "problem_set_for_the_api")
    report = derive.audit(SEED, module, points=FEW)
    assert report.statuses == audit(SEED, PROBLEM_SET, points=FEW).statuses
    assert report["d_loss_d_r1"].status == "wrong"


def test_a_bad_spec_is_a_usage_error(tmp_path):
    result = run_cli(str(tmp_path / "none.toml"), str(LOOPS))
    assert result.returncode == 2
    assert "no such spec file" in result.stderr
    with pytest.raises(AuditError):
        audit(tmp_path / "none.toml", LOOPS)


def test_the_readme_shows_the_real_output():
    """The README's example is what ``derive audit`` prints, numbers included, except
    the last digits of errors at rounding level (they depend on the BLAS)."""
    readme = (ROOT / "README.md").read_text()
    command = "$ derive audit specs/seed.toml tests/problem_set.py\n"
    shown = readme.split(command, 1)[1].split("```", 1)[0]
    result = run_cli("specs/seed.toml", "tests/problem_set.py")
    assert result.returncode == 1

    def rounding_hidden(text: str) -> str:
        return re.sub(r"\b\d(\.\d)?e-1\d\b", "<rounding>", text)

    assert rounding_hidden(result.stdout) == rounding_hidden(shown)


# Equation specs ---------------------------------------------------------------------

RESIDUAL = SPECS / "residual_mlp.toml"
SEED_EQUATIONS = SPECS / "seed_equations.toml"
BY_HAND = HAND / "residual_mlp_by_hand.py"
RESIDUAL_GRADIENTS = [
    "d_loss_d_y_predicted",
    "d_loss_d_h1",
    "d_loss_d_h1_in",
    "d_loss_d_h0",
    "d_loss_d_h0_in",
    "d_loss_d_W0",
    "d_loss_d_b0",
    "d_loss_d_W1",
    "d_loss_d_b1",
    "d_loss_d_W2",
    "d_loss_d_b2",
]
RESIDUAL_OK = dict.fromkeys(
    ["forward", "relu", "relu_derivative", "loss", *RESIDUAL_GRADIENTS], "ok"
)
#: What reads d_loss_d_h0, through the relu's gate.
BELOW_H0 = dict.fromkeys(["d_loss_d_h0_in", "d_loss_d_W0", "d_loss_d_b0"], "inherits")


def residual(**changed: str) -> dict[str, str]:
    return {**RESIDUAL_OK, **changed}


def test_the_generated_modules_of_equation_specs_pass_their_audit():
    for spec, module in [
        (RESIDUAL, "residual_mlp.py"),
        (SEED_EQUATIONS, "seed_equations.py"),
    ]:
        report = audit(spec, GENERATED / module, points=FEW)
        assert report.ok, report.text()
        # both ways in: the d_loss_d_* functions and gradients(params, *inputs)
        assert set(report.statuses.values()) == {"ok"}
        assert "forward" in report.functions
        assert "gradients[W0]" in report.functions


def test_an_equation_specs_crafted_points_put_relu_arguments_at_the_kink():
    """The kinks are found in the graph (relu's argument is the value h0_in), not by
    name: points with a unit of h0_in exactly 0, and below 0, are among the first."""
    from derive.audit import _Points, _reference

    labels = [p.label for p in _Points(_reference(RESIDUAL), 0, 0).points]
    assert any(label.endswith("= 0 (at the kink)") for label in labels), labels
    assert any("h0_in[0, 0] < 0 (a dead unit)" in label for label in labels), labels
    worked = [p.label for p in _Points(_reference(SEED_EQUATIONS), 0, 0).points]
    assert worked[0] == "the worked point"
    assert "the worked point with W1[0] negated, r1[0] < 0 (a dead unit)" in worked


def test_a_hand_written_solution_of_an_equation_spec_is_all_ok(capsys):
    report = audit(RESIDUAL, BY_HAND, points=FEW)
    assert report.statuses == RESIDUAL_OK, report.text()
    assert max(f.max_rel_error for f in report.functions.values()) < 1e-12
    assert main(["audit", str(RESIDUAL), str(BY_HAND), "--points", str(FEW)]) == 0
    # the Python API, on a module object checked in this process
    module = import_path(BY_HAND, "residual_mlp_by_hand_for_the_api")
    assert derive.audit(RESIDUAL, module, points=FEW).statuses == RESIDUAL_OK


#: One slip each, planted in the hand-written residual MLP: (text, replacement,
#: statuses).
EQUATION_SLIPS = {
    "the skip term dropped from d_loss_d_h0": (
        "return skip + through_tanh",
        "return through_tanh",
        residual(d_loss_d_h0="wrong", **BELOW_H0),
    ),
    "a missing L2 term in d_loss_d_W1": (
        'np.einsum("bi,bj->ij", upstream, values["h0"]) + 2 * L2 * W1',
        'np.einsum("bi,bj->ij", upstream, values["h0"])',
        residual(d_loss_d_W1="wrong"),
    ),
    "a transposed matmul": (
        'np.einsum("bm,mi->bi", d_loss_d_h1_in(values, W2, y), W1)',
        'np.einsum("bm,im->bi", d_loss_d_h1_in(values, W2, y), W1)',
        residual(d_loss_d_h0="wrong", **BELOW_H0),
    ),
    "a bias gradient summed over the wrong axis": (
        "return np.sum(d_loss_d_y_predicted(values, y), axis=0)",
        "return np.sum(d_loss_d_y_predicted(values, y), axis=1)",
        residual(d_loss_d_b2="wrong"),
    ),
    "the skip connection dropped from the forward pass": (
        "h1 = h0 + np.tanh(h1_in)",
        "h1 = np.tanh(h1_in)",
        residual(
            forward="wrong",
            loss="wrong",
            **dict.fromkeys(RESIDUAL_GRADIENTS, "inherits"),
        ),
    ),
    "relu'(0) = 1": (
        "(np.asarray(x) > 0)",
        "(np.asarray(x) >= 0)",
        residual(
            relu_derivative="convention",
            **dict.fromkeys(
                ["d_loss_d_h0_in", "d_loss_d_W0", "d_loss_d_b0"], "convention"
            ),
        ),
    ),
}


def planted_in(source: Path, folder: Path, text: str, replacement: str) -> Path:
    original = source.read_text()
    assert original.count(text) == 1, text
    path = folder / source.name
    path.write_text(original.replace(text, replacement))
    return path


@pytest.mark.parametrize("slip", EQUATION_SLIPS)
def test_each_slip_planted_in_an_equation_specs_module_is_named_exactly(tmp_path, slip):
    text, replacement, expected = EQUATION_SLIPS[slip]
    report = audit(
        RESIDUAL, planted_in(BY_HAND, tmp_path, text, replacement), points=FEW
    )
    assert report.statuses == expected, report.text()
    for name, function in report.functions.items():
        if function.status == "inherits":
            assert function.through, name
        if function.status == "wrong" and function.role == "gradient":
            assert function.failure is not None and function.step is not None


def test_an_equation_specs_slip_is_reported_with_its_step_and_what_inherits_it(
    tmp_path, capsys
):
    path = planted_in(
        BY_HAND, tmp_path, *EQUATION_SLIPS["the skip term dropped from d_loss_d_h0"][:2]
    )
    report = audit(RESIDUAL, path, points=FEW)
    for name in BELOW_H0:
        assert report[name].through == ("d_loss_d_h0",)
    wrong = report["d_loss_d_h0"]
    assert wrong.step is not None
    assert wrong.step.matrix == "d_loss_d_h0 = d_loss_d_h1 + d_loss_d_h1_in @ W1"
    assert wrong.step.lines[-1].endswith(
        "d_loss_d_h1[b, i] + Σ_m W1[m, i]*d_loss_d_h1_in[b, m]"
    )
    assert set(wrong.reads) >= {"d_loss_d_h1", "d_loss_d_h1_in"}
    # the difference is exactly the skip term
    failure = wrong.failure
    assert failure is not None and failure.point is not None
    np.testing.assert_allclose(
        np.subtract(failure.expected, failure.actual), wrong.reads["d_loss_d_h1"]
    )
    lines = path.read_text().splitlines()
    assert wrong.source is not None
    assert lines[wrong.source.line - 1].startswith("def d_loss_d_h0(")
    assert main(["audit", str(RESIDUAL), str(path), "--points", str(FEW)]) == 1
    out = capsys.readouterr().out
    assert f"d_loss_d_h0 is wrong ({path.as_posix()}:" in out
    assert out.rstrip().endswith("fails: 1 wrong, 3 inherits, 11 ok.")


def test_a_vectorized_gradients_for_an_equation_spec_without_the_skip_term(
    tmp_path,
):
    source = HAND / "residual_mlp_gradients.py"
    assert audit(RESIDUAL, source, points=FEW).ok
    path = planted_in(
        source, tmp_path, "d_h0 = d_h1 + d_h1_in @ W1", "d_h0 = d_h1_in @ W1"
    )
    report = audit(RESIDUAL, path, points=FEW)
    assert report.statuses == {
        "gradients[W0]": "wrong",
        "gradients[b0]": "wrong",
        "gradients[W1]": "ok",
        "gradients[b1]": "ok",
        "gradients[W2]": "ok",
        "gradients[b2]": "ok",
    }
    assert report["gradients[b0]"].step is not None
    assert (
        report["gradients[b0]"].step.matrix
        == "d_loss_d_b0 = d_loss_d_h0_in.sum(axis=0)"
    )


def test_the_command_on_equation_specs_exits_0_1_and_2(tmp_path):
    assert (
        run_cli(str(RESIDUAL), "generated/residual_mlp.py", "--points", "5").returncode
        == 0
    )
    path = planted_in(
        BY_HAND, tmp_path, *EQUATION_SLIPS["a missing L2 term in d_loss_d_W1"][:2]
    )
    result = run_cli(str(RESIDUAL), str(path), "--points", "5", "--json")
    assert result.returncode == 1
    functions = json.loads(result.stdout)["functions"]
    assert functions["d_loss_d_W1"]["status"] == "wrong"
    assert functions["forward"]["status"] == "ok"
    broken = tmp_path / "broken.py"
    broken.write_text(
        "def forward(params, x, y):\n    return {}\nraise ValueError('no')\n"
    )
    result = run_cli(str(RESIDUAL), str(broken))
    assert result.returncode == 2
    assert result.stderr == (
        f"derive audit: error: {broken.as_posix()}: importing it failed: "
        "ValueError: no\n"
    )
