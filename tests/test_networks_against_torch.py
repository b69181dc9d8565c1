"""Networks in torch's conventions, generated from random specs, against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from derive.spec import load_spec
from tests.conftest import GENERATED, SPECS, examples, generate_module, import_path
from tests.torch_reference import CUSTOM_ACTIVATIONS, CUSTOM_LOSSES, network_gradients

ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "gelu"]
ACTIVATIONS += list(CUSTOM_ACTIVATIONS)  # custom formulas, by their text
LOSSES = ["squared", "mse", "huber", "binary_cross_entropy", "softmax_cross_entropy"]
LOSSES += list(CUSTOM_LOSSES)


def spec_text(input_size, layers, loss, reduction, slope=0.01, delta=1.0):
    """A torch-shaped spec; ``layers`` holds (width, activation or formula, bias)."""
    text = f'name = "net"\ninput = {input_size}\nshapes = "torch"\n'
    for n, (width, activation, bias) in enumerate(layers):
        text += f"[[layers]]\nwidth = {width}\nbias = {str(bias).lower()}\n"
        if activation in CUSTOM_ACTIVATIONS:
            text += f'activation = "custom"\nexpression = "{activation}"\n'
            text += f'function_name = "custom{n}"\n'
        else:
            text += f'activation = "{activation}"\n'
        if activation == "leaky_relu":
            text += f"slope = {slope}\n"
    text += f'[loss]\nreduction = "{reduction}"\n'
    if loss in CUSTOM_LOSSES:
        return text + f'kind = "custom"\nexpression = "{loss}"\n'
    if loss == "huber":
        return text + f'kind = "huber"\ndelta = {delta}\n'
    return text + f'kind = "{loss}"\n'


def random_problem(rng, module, batch, loss="squared", labels=False):
    """Parameters, inputs and targets that suit ``loss``."""
    params = {n: rng.standard_normal(s) for n, s in module.PARAMETER_SHAPES.items()}
    n_in, n_out = module.INPUT_SHAPE[1], module.OUTPUT_SHAPE[1]
    x = rng.standard_normal((batch, n_in))
    if loss == "binary_cross_entropy":
        y = rng.uniform(size=(batch, n_out))
    elif loss == "softmax_cross_entropy" and labels:
        y = rng.integers(0, n_out, size=batch)
    elif loss == "softmax_cross_entropy":
        y = rng.dirichlet(np.ones(n_out), size=batch)
    else:
        y = rng.standard_normal((batch, n_out))
    return params, x, y


layer = st.tuples(st.integers(1, 16), st.sampled_from(ACTIVATIONS), st.booleans())


@settings(max_examples=examples(8))
# Found by the deep run: gradients of 1e-7 through two layers that cancel.
@example(
    n_in=11,
    layers=[
        (10, "x * sigmoid(x)", True),
        (13, "sqrt(1 + x**2) - 1", False),
        (15, "sqrt(1 + x**2) - 1", False),
        (11, "sigmoid", False),
    ],
    loss="squared",
    reduction="mean",
    batch=1,
    slope=0.01,
    delta=1.0,
    labels=False,
    seed=0,
)
@given(
    n_in=st.integers(1, 16),
    layers=st.lists(layer, min_size=1, max_size=5),
    loss=st.sampled_from(LOSSES),
    reduction=st.sampled_from(["mean", "sum"]),
    batch=st.integers(1, 8),
    slope=st.sampled_from([0.01, 0.2]),
    delta=st.sampled_from([1.0, 0.3]),
    labels=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_architectures_match_torch(
    tmp_path_factory, n_in, layers, loss, reduction, batch, slope, delta, labels, seed
):
    """Depth 1-5, widths 1-16, every activation and loss, biases or not, any batch."""
    if loss == "softmax_cross_entropy":  # needs two classes or more
        width, activation, bias = layers[-1]
        layers = [*layers[:-1], (max(width, 2), activation, bias)]
    text = spec_text(n_in, layers, loss, reduction, slope, delta)
    spec, module = generate_module(tmp_path_factory.mktemp("net"), text)
    rng = np.random.default_rng(seed)
    params, x, y = random_problem(rng, module, batch, loss, labels)
    expected_loss, expected = network_gradients(spec, params, x, y)
    got = module.gradients(params, x, y)
    assert float(module.loss(params, x, y)) == pytest.approx(expected_loss, rel=1e-9)
    assert list(got) == list(params)
    # Relative error at most 1e-9, or an absolute 1e-13 of the loss's scale where a
    # gradient is that small: a formula that cancels (sqrt(1 + x**2) - 1 at small x,
    # found by the deep run) carries float64 rounding of about 1e-15 absolute into
    # gradients of 1e-7, whoever computes it (torch and derive agreed to 8 digits
    # there). A wrong formula is off by the gradient's own size, far above the floor.
    floor = 1e-13 * max(1.0, abs(expected_loss))
    for name, value in got.items():
        assert value.shape == params[name].shape
        assert value.dtype == np.float64
        scale = max(np.abs(expected[name]).max(), 1e-12)
        error = np.abs(value - expected[name]).max()
        assert error <= max(1e-9 * scale, floor), name
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    y32 = y if y.dtype.kind == "i" else y.astype(np.float32)
    got32 = module.gradients(params32, x.astype(np.float32), y32)
    assert all(v.dtype == np.float32 for v in got32.values())


def test_committed_small_regression_matches_torch():
    module = import_path(GENERATED / "small_regression.py")
    rng = np.random.default_rng(7)
    params, x, y = random_problem(rng, module, 16)
    spec = load_spec(SPECS / "small_regression.toml")
    _, expected = network_gradients(spec, params, x, y)
    for name, value in module.gradients(params, x, y).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-10, atol=1e-14)


def test_float32_in_float32_out():
    module = import_path(GENERATED / "small_regression.py")
    rng = np.random.default_rng(3)
    params, x, y = random_problem(rng, module, 5)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    got = module.gradients(params32, x.astype(np.float32), y.astype(np.float32))
    assert all(v.dtype == np.float32 for v in got.values())


@pytest.mark.parametrize(
    ("params_change", "message"),
    [
        (lambda p: p.pop("W0"), "missing parameter 'W0' of shape (8, 4)"),
        (
            lambda p: p.update(W0=np.zeros((4, 8))),
            "parameter 'W0' has shape (4, 8), expected (8, 4)",
        ),
        (lambda p: p.update(W9=np.zeros(1)), "unknown parameter 'W9'"),
    ],
)
def test_wrong_parameters_raise_value_error_naming_them(params_change, message):
    module = import_path(GENERATED / "small_regression.py")
    params, x, y = random_problem(np.random.default_rng(0), module, 3)
    params_change(params)
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        module.gradients(params, x, y)


def test_wrong_input_shape_raises_value_error():
    module = import_path(GENERATED / "small_regression.py")
    params, x, y = random_problem(np.random.default_rng(0), module, 3)
    with pytest.raises(
        ValueError, match=r"x has shape \(3, 5\), expected \('batch', 4\)"
    ):
        module.gradients(params, np.zeros((3, 5)), y)


def test_nan_propagates():
    module = import_path(GENERATED / "small_regression.py")
    params, x, y = random_problem(np.random.default_rng(0), module, 3)
    x[0, 0] = np.nan
    with np.errstate(invalid="ignore"):
        got = module.gradients(params, x, y)
    assert np.isnan(got["W0"]).any()
