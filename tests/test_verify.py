"""Every module is verified before derive hands it out (derive/verify): the specs that
came out wrong before are right now, and a wrong module is refused, never written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli import main
from derive.equations import build_graph
from derive.loading import load_module
from derive.passes import to_array
from derive.render import derive_spec, python_code
from derive.spec import load_spec, parse_spec
from derive.verify.check import Verification, reference_for, verify
from tests.equation_reference import evaluate, parse_equation_spec, random_point

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GENERATED = ROOT / "generated"


def _equations(sizes: str, inputs: str, parameters: str, equations: str) -> str:
    return (
        f'name = "case"\n[sizes]\n{sizes}\n[inputs]\n{inputs}\n'
        f"[parameters]\n{parameters}\n[equations]\n{equations}\n"
    )


GATED = _equations(
    "d_in = 4\nd_h = 5",
    'x = ["batch", "d_in"]\ny = ["batch"]',
    'W = ["d_h", "d_in"]\nV = ["d_h", "d_in"]\nb = ["d_h"]\nw = ["d_h"]',
    '{h}\nloss = "mean((h @ w - y)**2)"',
)
#: A matrix product next to *, / and ** (the gated units, a factorization machine).
MIXED = [
    'h = "exp(x @ W.T + b) * (x @ V.T)"',  # GLU
    'h = "(x @ W.T + b) * sigmoid(x @ W.T + b) * (x @ V.T)"',  # SwiGLU
    'h = "(x @ V.T) / (1 + (x @ W.T + b)**2)"',
    'h = "(x @ W.T + b) ** 2 - (x @ V.T)"',
    'h = "(x * x) @ W.T + b * (x @ V.T)"',
    'h = "tanh(x @ W.T + b) * (x @ V.T) / 2"',
    'h = "0.5 * ((x @ V.T + b)**2 - (x**2) @ (W**2).T)"',  # a factorization machine
]

ATTENTION = """
name = "attention"
[sizes]
tokens = {tokens}
d = 4
[inputs]
X = ["tokens", "d"]
T = ["tokens", "d"]
[parameters]
W_Q = ["d", "d"]
W_K = ["d", "d"]
W_V = ["d", "d"]
[equations]
Q = "X @ W_Q"
K = "X @ W_K"
V = "X @ W_V"
A = "softmax(Q @ K.T, axis=-1) @ V"
loss = "0.5 * sum((A - T)**2)"
"""

LAYER_NORM = _equations(
    "d_in = 3\nd_h = 5",
    'x = ["batch", "d_in"]\ny = ["batch", "d_h"]',
    'W = ["d_h", "d_in"]\ng = ["d_h"]\nc = ["d_h"]',
    "{equations}",
)
#: A variance of a kept-axis mean, written inline, with and without a function
#: in front and a gain and bias after.
VARIANCES = [
    'h = "x @ W.T"\nmu = "mean(h, axis=-1, keepdims=True)"\n'
    'var = "mean((h - mu)**2, axis=-1, keepdims=True)"\n'
    'loss = "mean(var**2) + mean(y) + sum(g**2) + sum(c**2)"',
    'h = "tanh(x @ W.T)"\nmu = "mean(h, axis=-1, keepdims=True)"\n'
    'var = "mean((h - mu)**2, axis=-1, keepdims=True)"\n'
    'n = "g * (h - mu) / sqrt(var + 1e-5) + c"\nloss = "mean((n - y)**2)"',
    'h = "gelu(x @ W.T)"\n'
    'n = "g * (h - mean(h, axis=-1, keepdims=True)) / sqrt(mean((h - mean(h, axis=-1, '
    'keepdims=True))**2, axis=-1, keepdims=True) + 1e-5) + c"\nloss = "mean((n - y)**2)"',
    'h = "x @ W.T"\n'
    'loss = "mean((g * h / sum(h**2 + 1, axis=-1, keepdims=True) + c - y)**2)"',
]


def _matches_torch(text: str, batch: int = 3) -> None:
    module = derive.build(text)
    reference = parse_equation_spec(text)
    for seed in range(2):
        params, inputs = random_point(reference, batch, seed)
        expected = evaluate(reference, params, inputs)
        assert float(module.loss(params, **inputs)) == pytest.approx(
            expected.loss, rel=1e-10, abs=1e-12
        )
        for name, gradient in module.gradients(params, **inputs).items():
            np.testing.assert_allclose(
                gradient, expected.gradients[name], rtol=1e-9, atol=1e-12
            )


@pytest.mark.parametrize("equation", MIXED)
def test_a_matrix_product_next_to_an_elementwise_operation_is_right(equation):
    _matches_torch(GATED.format(h=equation))


@pytest.mark.parametrize("tokens", [3, 4])
def test_attention_without_a_batch_axis_is_right(tokens):
    _matches_torch(ATTENTION.format(tokens=tokens))


@pytest.mark.parametrize("equations", VARIANCES)
@pytest.mark.parametrize("batch", [2, 5])
def test_a_variance_of_a_kept_axis_mean_is_right(equations, batch):
    _matches_torch(LAYER_NORM.format(equations=equations), batch)


def test_a_kept_axis_of_a_vector_keeps_its_shape():
    """``mean(x, axis=0, keepdims=True)`` of a 1-D value has shape (1,), not ()."""
    _matches_torch(
        'name = "kept"\n[inputs]\nx = ["batch"]\n[parameters]\na = []\n'
        '[equations]\nv1 = "mean((a * x)**2, axis=0, keepdims=True)"\n'
        'v2 = "(a * x)**2 - v1"\nv3 = "mean(v2**2, axis=0, keepdims=True)"\n'
        'loss = "mean(v2 / sqrt(v3 + 1)) + mean(v1)"\n'
    )


def test_a_spec_of_scalars_needs_no_sizes():
    """micrograd's own sanity check, as an equation spec."""
    module = derive.build(
        'name = "micro"\n[parameters]\nx = []\n[equations]\n'
        'z = "2 * x + 2 + x"\nq = "relu(z) + z * x"\nh = "relu(z * z)"\n'
        'y = "h + q + q * x"\nloss = "y"\n'
    )
    assert float(module.loss({"x": -4.0})) == -20.0
    assert float(module.gradients({"x": -4.0})["x"]) == 46.0


# --- a wrong module is refused -------------------------------------------------------


def _checked(path: Path, edit: tuple[str, str]):
    """The module for ``path`` with one line of it edited, verified."""
    derivation = derive_spec(load_spec(path))
    source = python_code(derivation, path.name).source
    old, new = edit
    assert old in source, old
    return verify(derivation.network, load_module("edited", source.replace(old, new)))


@pytest.mark.parametrize(
    ("spec", "edit", "phrase"),
    [
        (
            "seed_equations.toml",
            ("d_loss_d_W2 = d_loss_d_y_predicted * h1", "d_loss_d_W2 = 1.001 * h1"),
            "the derived gradient of W2 (gradients()) disagrees",
        ),
        (
            "residual_mlp.toml",
            (
                "d_loss_d_b1 = d_loss_d_h1_in.sum(axis=0)",
                "d_loss_d_b1 = d_loss_d_h1_in",
            ),
            "the derived gradient of b1 (gradients()) has shape (",
        ),
        (
            "seed.toml",
            ("    h1 = relu(r1)\n    y_predicted", "    h1 = r1\n    y_predicted"),
            "the generated forward pass computes h1 wrong",
        ),
        (
            "layernorm_mlp.toml",
            ("return (-d_loss_d_centered(", "return (d_loss_d_centered("),
            "the derived gradient of mu (d_loss_d_mu()) disagrees",
        ),
        (
            "mnist_classifier.toml",
            ("d_loss_d_W1 = ", "d_loss_d_W1 = 1.0001 * "),
            "the derived gradient of W1 (gradients()) disagrees",
        ),
    ],
)
def test_a_wrong_module_is_an_internal_error(spec, edit, phrase):
    with pytest.raises(derive.DerivationError) as caught:
        _checked(SPECS / spec, edit)
    message = str(caught.value)
    assert message.startswith("internal error: ") and phrase in message
    assert message.endswith("; nothing was written; please report this spec")


@pytest.fixture
def unbracketed_products(monkeypatch):
    """The printer bug this issue fixed, put back: @ binding tighter than *."""
    monkeypatch.setattr(
        to_array.MatProd, "precedence", sp.printing.precedence.PRECEDENCE["Atom"]
    )


def test_the_command_refuses_a_wrong_module_with_exit_3(
    tmp_path, capsys, unbracketed_products
):
    spec = tmp_path / "glu.toml"
    spec.write_text(GATED.format(h=MIXED[0]))
    out = tmp_path / "out"
    assert main([str(spec), "--out", str(out)]) == 3
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    # Which check fails first depends on the sizes: a wrong broadcast that fits
    # gives wrong numbers, one that does not raises.
    assert re.fullmatch(
        r"derive: internal error: .*glu\.toml: the (derived gradient of \w+ "
        r"\(gradients\(\)\) disagrees with finite differences|generated forward pass "
        r"computes h wrong|generated forward raises ValueError)( at batch size \d+)?"
        r" \(.*\); nothing was written; please report this spec",
        line,
    ), line
    assert not out.exists()
    with pytest.raises(derive.DerivationError) as caught:
        derive.build(spec)
    assert line == f"derive: {caught.value}"


def test_every_committed_module_says_how_it_was_verified():
    pattern = re.compile(
        r"Verified: forward and \d+ gradients against finite differences at 3 "
        r"points(, \d batch sizes?)? \(every relative error below 1e-06\)\."
    )
    for path in sorted(GENERATED.glob("*.py")):
        comments = path.read_text().split('"""', 1)[0].splitlines()[2:]
        # The sentence, without the lint exemptions that follow it (# ruff: noqa).
        sentence = [line for line in comments if not line.startswith("# ruff: ")]
        header = " ".join(line.removeprefix("# ") for line in sentence)
        assert pattern.fullmatch(header), path.name
        markdown = path.with_suffix(".md").read_text()
        assert "checked before it was written: forward and" in markdown, path.name


def test_the_verification_is_the_same_every_run():
    spec = load_spec(SPECS / "layernorm_mlp.toml")
    first = python_code(derive_spec(spec), "a.toml").verification
    again = python_code(derive_spec(spec), "elsewhere/b.toml").verification
    assert first == again
    assert isinstance(first, Verification) and first.points == 3
    assert sorted(set(first.batch_sizes)) == sorted(
        set(first.batch_sizes) & {2, 3, 6, 16, 4}
    )


# --- the reference derive checks against --------------------------------------------


@pytest.mark.parametrize(
    "name",
    sorted(p.stem for p in SPECS.glob("*.toml") if "[equations]" in p.read_text()),
)
def test_the_numpy_reference_agrees_with_torch(name):
    """The interpreter the modules are checked against, against torch's evaluation
    of the same equations (tests/equation_reference.py)."""
    text = (SPECS / f"{name}.toml").read_text()
    graph = build_graph(parse_spec(text, f"{name}.toml"))
    reference = reference_for(graph)
    spec = parse_equation_spec(text)
    params, inputs = random_point(spec, 3, 0)
    values = reference.values({**params, **inputs})
    expected = evaluate(spec, params, inputs)
    for key, value in expected.values.items():
        np.testing.assert_allclose(values[key], value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("numpy", "the name of a module generated code imports"),
        ("json", "or of the standard library"),
    ],
)
def test_an_equation_spec_may_not_shadow_a_module(name, message):
    text = f'name = "{name}"\n[parameters]\nx = []\n[equations]\nloss = "x**2"\n'
    with pytest.raises(derive.SpecError, match=message):
        parse_spec(text, "s.toml")


def test_an_equation_specs_worked_point_is_limited():
    text = (
        'name = "big"\n[sizes]\nn = 5000\n[parameters]\nw = ["n"]\n'
        '[equations]\nloss = "sum(w**2)"\n[worked_point]\nw = ' + str([0] * 5000) + "\n"
    )
    with pytest.raises(derive.SpecError, match="holds 5000 numbers; at most 4096"):
        parse_spec(text, "s.toml")
