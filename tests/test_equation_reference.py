"""The torch reference for equation specs is itself checked: its values against NumPy
reading the same formulas, its gradients against central finite differences of that
NumPy evaluation, the seed written as equations against the seed module, and every
malformed spec of ``tests/bad_equation_specs.py`` refused in the agreed words."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.bad_equation_specs import BAD_SPECS
from tests.equation_numpy import numpy_values
from tests.equation_reference import (
    EquationSpec,
    EquationSpecError,
    evaluate,
    load_equation_spec,
    parse_equation_spec,
    random_point,
)
from tests.torch_reference import seed_gradients

EQUATION_SPECS = Path(__file__).resolve().parent.parent / "specs"
EXAMPLES = sorted(
    p for p in EQUATION_SPECS.glob("*.toml") if "[equations]" in p.read_text()
)


#: Every construct of the language, each equation using the ones above it.
TOUR = """
name = "tour"

[sizes]
a = 2
b = 3
c = 4

[inputs]
x = ["batch", "a", "b"]
u = ["batch", "c"]
s = []

[parameters]
P = ["b", "c"]
Q = ["c", "b"]
w = ["b"]
M = ["a", "a"]
k = []

[equations]
t1 = "x @ P"
t2 = "t1 @ Q"
t3 = "w @ swapaxes(x, -1, -2)"
t4 = "x @ w"
t5 = "w @ w"
t6 = "M @ x"
t7 = "x @ swapaxes(t2, 1, 2)"
t8 = "P.T @ Q.T"
t9 = "u @ Q + +s"
reversed = "sum(x.T * t2.T, axis=-1)"
elementwise = "exp(t3) + log(1 + t4**2) + sqrt(t4**2 + 1) + abs(t3) + tanh(t3) + sigmoid(t4) + softplus(t3) + relu(t4) + gelu(t3) + sin(t4) + cos(t3) + erf(t4)"
powers = "(1 + t4**2) ** sigmoid(t3) - 2 ** t3 / (2 + cos(t4))"
kinks = "leaky_relu(t1, 0.2) + maximum(t1, 0.1) - minimum(t1, -t1) + leaky_relu(t1, -0.5)"
r1 = "sum(t2, axis=(1, -1))"
r2 = "mean(t7, axis=-2, keepdims=True)"
r3 = "logsumexp(kinks, axis=(0, 2), keepdims=True)"
r4 = "logsumexp(t6)"
r5 = "mean(t6, 0)"
r6 = "sum(r2 * r3, axis=None, keepdims=False)"
n1 = "softmax(t7)"
n2 = "log_softmax(t6, axis=1)"
n3 = "softmax(t9, axis=0) * log_softmax(t9)"
e1 = "einsum('bij,jk->bik', x, P)"
e2 = "einsum('bij,bkj', x, t2)"
e3 = "einsum('ii->i', M)"
e4 = "einsum('bij, bij ->', x, x) + sum(einsum('i', w))"
idx = "x[:, 1] + x[:, 0, :] * t2[:, -1] + w[1] + (M[:, -2] @ M)[0] + P[2, 3]"
numbers = "k * pi + e / sqrt(a * b) + c**2 - 1e-3 + 1 / 2"
loss = "mean(elementwise) + sum(kinks**2) / c + mean(r1) + r6 + r4 + sum(r5) + mean(n1 * t7) + mean(n2) + mean(n3) + sum(e1 * t1) / 10 + sum(e2) + sum(e3) + e4 + mean(idx**3) + numbers * t5 + sum(t8) + mean(t9**2) + mean(powers) - mean(reversed)"
"""


def _split(spec: EquationSpec, arrays: dict) -> tuple[dict, dict]:
    params = {k: v for k, v in arrays.items() if k in spec.parameters}
    inputs = {k: v for k, v in arrays.items() if k in spec.inputs}
    return params, inputs


def _numpy_loss(spec: EquationSpec, params: dict, inputs: dict) -> float:
    return float(numpy_values(spec, {**params, **inputs})["loss"])


def check_against_numpy(spec: EquationSpec, batch: int, seed: int) -> None:
    params, inputs = random_point(spec, batch, seed)
    result = evaluate(spec, params, inputs)
    expected = numpy_values(spec, {**params, **inputs})
    assert result.values.keys() == expected.keys()
    for name, value in expected.items():
        got = result.values[name]
        assert got.shape == np.shape(value), name
        np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-12, err_msg=name)
    assert result.loss == pytest.approx(float(expected["loss"]), rel=1e-12)


def check_finite_differences(
    spec: EquationSpec, batch: int, seed: int, entries: int = 3
) -> None:
    """A few entries of every parameter's gradient against central differences of the
    loss evaluated by NumPy."""
    params, inputs = random_point(spec, batch, seed)
    result = evaluate(spec, params, inputs)
    rng = np.random.default_rng(seed + 1)
    step = 1e-6
    for name, value in params.items():
        assert result.gradients[name].shape == value.shape, name
        flat = value.reshape(-1)
        for i in rng.choice(flat.size, min(entries, flat.size), replace=False):
            shifted = {}
            for sign in (1, -1):
                moved = flat.copy()
                moved[i] += sign * step
                shifted[sign] = _numpy_loss(
                    spec, {**params, name: moved.reshape(value.shape)}, inputs
                )
            numeric = (shifted[1] - shifted[-1]) / (2 * step)
            analytic = result.gradients[name].reshape(-1)[i]
            scale = max(1.0, abs(result.loss))
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-7 * scale), (
                name,
                i,
            )


@pytest.mark.parametrize("seed", [0, 1])
def test_every_construct_means_what_numpy_says(seed):
    spec = parse_equation_spec(TOUR, "tour.toml")
    check_against_numpy(spec, batch=3, seed=seed)


def test_every_construct_differentiates_as_finite_differences_say():
    spec = parse_equation_spec(TOUR, "tour.toml")
    check_finite_differences(spec, batch=2, seed=3)


def test_a_batch_of_one_and_the_value_gradients():
    spec = parse_equation_spec(TOUR, "tour.toml")
    check_against_numpy(spec, batch=1, seed=4)
    params, inputs = random_point(spec, 2, 5)
    result = evaluate(spec, params, inputs)
    for name, value in result.values.items():
        assert result.value_gradients[name].shape == value.shape, name
    # the loss is a sum of terms: d loss / d numbers is t5
    assert result.value_gradients["numbers"] == pytest.approx(result.values["t5"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_specs_evaluate_and_differentiate(path):
    spec = load_equation_spec(path)
    assert spec.name == path.stem
    check_against_numpy(spec, batch=3, seed=0)
    params, inputs = random_point(spec, 3, 0)
    result = evaluate(spec, params, inputs)
    assert np.ndim(result.loss) == 0 and math.isfinite(result.loss)
    assert all(np.isfinite(g).all() for g in result.gradients.values())
    check_finite_differences(spec, batch=2, seed=1, entries=2)


def test_example_sizes_are_the_issues():
    attention = load_equation_spec(EQUATION_SPECS / "attention_regressor.toml")
    assert attention.sizes == {"tokens": 64, "d_model": 64, "d_k": 64}
    assert attention.inputs["x"] == ("batch", "tokens", "d_model")
    rnn = load_equation_spec(EQUATION_SPECS / "rnn_classifier.toml")
    # the recurrent weights are shared by the three unrolled steps
    assert sum("W_h" in f for f in rnn.formulas.values()) == 2
    assert sum("W_in" in f for f in rnn.formulas.values()) == 3


def test_seed_as_equations_gives_the_seed_modules_numbers(seed):
    spec = load_equation_spec(EQUATION_SPECS / "seed_equations.toml")
    assert spec.worked_point is not None
    params, inputs = _split(spec, spec.worked_point)
    result = evaluate(spec, params, inputs)
    point = {k: v for k, v in spec.worked_point.items()}
    values = seed.mlp(point["x"], point["W0"], point["W1"], point["W2"])
    for name in ("r0", "h0", "r1", "h1", "y_predicted"):
        np.testing.assert_array_equal(result.values[name], values[name], err_msg=name)
    assert result.loss == seed.loss(values["y_predicted"], point["y_observed"])
    y = point["y_observed"]
    expected = {
        "W0": seed.d_loss_d_W0(values, point["W1"], point["W2"], y),
        "W1": seed.d_loss_d_W1(values, point["W2"], y),
        "W2": seed.d_loss_d_W2(values, y),
    }
    for name, value in expected.items():
        np.testing.assert_array_equal(result.gradients[name], value, err_msg=name)
    torch_grads = seed_gradients(
        float(point["x"]), point["W0"], point["W1"], point["W2"], float(y)
    )
    np.testing.assert_array_equal(
        result.value_gradients["r1"], torch_grads["d_loss_d_r1"]
    )
    assert result.value_gradients["y_predicted"] == torch_grads["d_loss_d_ypredicted"]


@pytest.mark.parametrize("magnitude", [1000.0, -1000.0])
def test_softmax_and_logsumexp_at_large_logits(magnitude):
    text = """
name = "stable"
[sizes]
n = 3
[inputs]
z = ["batch", "n"]
[parameters]
w = ["n"]
[equations]
logits = "z * w"
loss = "mean(logsumexp(logits, axis=-1)) + sum(softmax(logits) * log_softmax(logits))"
"""
    spec = parse_equation_spec(text)
    result = evaluate(
        spec, {"w": np.array([1.0, 0.5, -1.0])}, {"z": np.full((2, 3), magnitude)}
    )
    assert math.isfinite(result.loss)
    assert np.isfinite(result.gradients["w"]).all()


def test_data_that_does_not_fit_names_the_array_and_the_axis():
    spec = load_equation_spec(EQUATION_SPECS / "residual_mlp.toml")
    params, inputs = random_point(spec, 3, 0)
    with pytest.raises(ValueError, match=r"W1: axis 1 \(d_h\) has size 7, expected 8"):
        evaluate(spec, {**params, "W1": np.zeros((8, 7))}, inputs)
    with pytest.raises(ValueError, match="y: batch axis has size 2, but x's has 3"):
        evaluate(spec, params, {**inputs, "y": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"b2: missing"):
        evaluate(spec, {k: v for k, v in params.items() if k != "b2"}, inputs)
    with pytest.raises(ValueError, match="did you mean 'W2'"):
        evaluate(spec, {**params, "W3": np.zeros(2)}, inputs)
    with pytest.raises(ValueError, match="x: a parameter of|x: an input of"):
        evaluate(spec, {**params, "x": inputs["x"]}, {"y": inputs["y"]})


def test_at_least_24_bad_specs_with_distinct_labels():
    assert len(BAD_SPECS) >= 24
    assert len({case.label for case in BAD_SPECS}) == len(BAD_SPECS)


@pytest.mark.parametrize("case", BAD_SPECS, ids=lambda case: case.label)
def test_bad_spec_is_valid_toml_and_refused_in_the_agreed_words(case):
    tomllib.loads(case.text)
    with pytest.raises(EquationSpecError) as caught:
        parse_equation_spec(case.text, "bad.toml")
    assert caught.value.where == case.where
    assert case.phrase in caught.value.message
    assert "\n" not in str(caught.value)


def test_the_examples_differ_only_where_the_bad_specs_break_them():
    """The bad specs' base spec is itself good: each case fails for its own reason."""
    from tests.bad_equation_specs import RNN, spec

    parse_equation_spec(spec(), "base.toml")
    parse_equation_spec(RNN.format(index=2), "rnn.toml")
