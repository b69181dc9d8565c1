"""Careless and hostile formulas (issue 23): a right answer, or one line naming the
equation, exit status 2 and nothing written; never a traceback, a hang, or a module
that fails at import.

The constants of a formula are folded with the bounds a [[layers]] custom formula
has (finite, real, within float64's range, checked before SymPy computes them), and
a formula nests at most ``derive.expressions.MAX_DEPTH`` levels.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from derive import SpecError, build
from derive.cli import main
from derive.expressions import MAX_DEPTH
from tests.test_equations import _check_against_torch

torch.set_default_dtype(torch.float64)


def spec(h0: str, loss: str = "mean((h0 @ w - y)**2)", extra: str = "") -> str:
    """A one-hidden-layer regression with ``h0`` and ``loss`` as written."""
    return textwrap.dedent(
        f"""\
        name = "careless"
        [sizes]
        d_in = 3
        d_h = 4
        [inputs]
        x = ["batch", "d_in"]
        y = ["batch"]
        [parameters]
        W0 = ["d_h", "d_in"]
        b0 = ["d_h"]
        w = ["d_h"]
        [equations]
        {extra}h0 = {h0!r}
        loss = {loss!r}
        """
    ).replace("'", '"')


# --- Right answers ----------------------------------------------------------------

#: Formulas that once gave a wrong gradient, a NaN or an exception inside the
#: generated module with exit status 0; each now matches torch.
RIGHT = {
    # gradients()["b0"] came out (8, 8): a matmul over a shared axis.
    "maximum": spec("maximum(x @ W0.T + b0, 0.0)"),
    "minimum": spec("minimum(x @ W0.T + b0, 0.5)"),
    "minimum of b0": spec("minimum(x @ W0.T + b0, b0)"),
    "maximum of itself": spec("maximum(x @ W0.T + b0, x @ W0.T + b0)"),
    # A sum over a constant printed as the constant (+ 1 where + d_h is meant).
    "sum of a constant": spec(
        "relu(h)/sum(relu(h) + 1, axis=-1, keepdims=True)",
        extra='h = "x @ W0.T + b0"\n',
    ),
    "sum of a constant in the loss": spec(
        "x @ W0.T + b0", loss="mean(sum(h0 * w + 1, axis=-1) ** 2 * y)"
    ),
    # 0/0 at dead units: d_h * h0 * relu'(h) / relu(h).
    "power of a size": spec("relu(x @ W0.T + b0) ** d_h"),
    # An einsum subscript error, a broadcasting error inside gradients().
    "rms norm inline": spec(
        "h / sqrt(mean(h**2, axis=-1, keepdims=True) + 1e-5)",
        extra='h = "x @ W0.T + b0"\n',
    ),
    "divided by a sum of exp": spec(
        "h / sum(exp(h), axis=-1, keepdims=True)", extra='h = "x @ W0.T + b0"\n'
    ),
}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_formulas_that_once_went_wrong_match_torch(text):
    for batch in (4, 5):
        _check_against_torch(text, batch, seed=3)


def test_a_power_of_a_size_is_finite_where_units_are_dead():
    """``relu(h) ** d_h`` at a point where half the units are dead: torch's gradient
    (0 there), not NaN."""
    module = build(RIGHT["power of a size"])
    rng = np.random.default_rng(0)
    params = {
        "W0": rng.normal(size=(4, 3)),
        "b0": np.array([-50.0, -50.0, 0.5, 0.5]),  # two units dead for every sample
        "w": rng.normal(size=4),
    }
    x, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    gradients = module.gradients(params, x, y)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h0 = torch.relu(torch.tensor(x) @ tensors["W0"].T + tensors["b0"]) ** 4
    torch.mean((h0 @ tensors["w"] - torch.tensor(y)) ** 2).backward()
    for name, gradient in gradients.items():
        assert np.isfinite(gradient).all(), name
        grad = tensors[name].grad
        assert grad is not None
        np.testing.assert_allclose(gradient, grad.numpy(), rtol=1e-10, atol=1e-14)


# --- Constants out of bounds --------------------------------------------------------

#: (formula of h0, what the one line says): each refused before anything is derived.
OUT_OF_BOUNDS = [
    ("relu(x @ W0.T + b0) * sqrt(-1)", "sqrt(-1) is not a real number"),
    ("relu(x @ W0.T + b0) * sqrt(d_h - 10)", "sqrt(d_h - 10) is not a real number"),
    ("relu(x @ W0.T + b0) * 1e300 * 1e300", "beyond float64's range"),
    ("relu(x @ W0.T + b0) * exp(800)", "exp(800) is about 2.726e+347"),
    ("relu(x @ W0.T + b0) / 0", "divides by zero"),
    ("relu(x @ W0.T + b0) / (d_h - 4)", "divides by zero"),
    ("relu(x @ W0.T + b0) * log(0)", "log(0) is not a finite number"),
    ("relu(x @ W0.T + b0) * 0**-1", "is not a finite number"),
    ("relu(x @ W0.T + b0) * 2**2**20", "beyond float64's range"),
    ("relu(x @ W0.T + b0) * 9**9**9", "9 ** 9 ** 9 is about 2**1.228e+09"),
    ("relu(x @ W0.T + b0) * d_h**9**9", "beyond float64's range"),
]


@pytest.mark.parametrize(
    "h0, message", OUT_OF_BOUNDS, ids=[f for f, _ in OUT_OF_BOUNDS]
)
def test_constants_beyond_float64_are_refused_naming_the_equation(h0, message):
    with pytest.raises(SpecError) as caught:
        build(spec(h0), source="careless.toml")
    (line,) = str(caught.value).splitlines()
    assert line.startswith("careless.toml: equations.h0: ")
    assert message in line


def test_a_constant_that_would_never_finish_is_refused_by_the_command_and_the_audit(
    tmp_path, capsys
):
    """``9**9**9`` has 369 million digits: derive and derive audit used to hang."""
    path = tmp_path / "careless.toml"
    path.write_text(spec("relu(x @ W0.T + b0) * 9**9**9"))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out)]) == 2
    assert not out.exists()
    student = tmp_path / "student.py"
    student.write_text("def loss(params, x, y):\n    return 0.0\n")
    assert main(["audit", str(path), str(student)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert all("equations.h0: 9 ** 9 ** 9 is about" in line for line in lines)


# --- Nesting ------------------------------------------------------------------------

#: Formulas within the 1000-character limit that nest deeper than Python's stack
#: allows derive to walk, differentiate and print them: RecursionError before.
TOO_DEEP = {
    "negations": "relu(" + "-" * 980 + "x @ W0.T + b0)",
    "transposes": "relu(x @ W0" + ".T" * 491 + " + b0)",
    "exps": "exp(" * 150 + "x @ W0.T + b0" + ")" * 150,
    # relu(...) is one level, + and @ two more, each - one and x one: MAX_DEPTH + 1.
    "just over the limit": "relu(" + "-" * (MAX_DEPTH - 3) + "x @ W0.T + b0)",
}


@pytest.mark.parametrize("h0", TOO_DEEP.values(), ids=TOO_DEEP.keys())
def test_formulas_nested_too_deep_are_refused_in_one_line(h0):
    with pytest.raises(SpecError) as caught:
        build(spec(h0), source="careless.toml")
    assert str(caught.value) == (
        f"careless.toml: equations.h0: nests deeper than {MAX_DEPTH} levels; "
        "write it as several simpler parts"
    )


def test_a_formula_as_deep_as_allowed_derives():
    """The limit refuses no formula that derive can derive: one exactly
    ``MAX_DEPTH`` levels deep is derived, verified and matches torch."""
    h0 = "relu(" + "-" * (MAX_DEPTH - 4) + "x @ W0.T + b0)"
    _check_against_torch(spec(h0), 4, seed=0)


def test_a_custom_activation_nested_too_deep_is_refused_in_one_line():
    text = textwrap.dedent(
        f"""\
        name = "careless"
        input = 2
        [[layers]]
        width = 3
        activation = "custom"
        expression = "{"-" * 495}x"
        function_name = "f"
        [[layers]]
        width = 1
        activation = "identity"
        [loss]
        kind = "squared"
        """
    )
    with pytest.raises(SpecError) as caught:
        build(text, source="careless.toml")
    (line,) = str(caught.value).splitlines()
    assert line.startswith("careless.toml: layers[0].expression: ")
    assert line.endswith(
        f"nests deeper than {MAX_DEPTH} levels; write it as several simpler parts"
    )
