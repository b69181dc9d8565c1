"""Networks in torch's conventions, generated from random specs, against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.render import render
from derive.spec import parse_spec
from tests.conftest import GENERATED, import_path
from tests.torch_reference import network_gradients


def spec_text(input_size, layers, loss, reduction):
    text = f'name = "net"\ninput = {input_size}\nshapes = "torch"\n'
    for width, activation, bias in layers:
        text += f'[[layers]]\nwidth = {width}\nactivation = "{activation}"\n'
        text += f"bias = {str(bias).lower()}\n"
    return text + f'[loss]\nkind = "{loss}"\nreduction = "{reduction}"\n'


def generate(tmp_path, text):
    outputs = render(parse_spec(text, "net.toml"), "net.toml")
    path = tmp_path / outputs[0].name
    path.write_text(outputs[0].text)
    return import_path(path)


def random_problem(rng, module, batch):
    params = {n: rng.standard_normal(s) for n, s in module.PARAMETER_SHAPES.items()}
    n_in, n_out = module.INPUT_SHAPE[1], module.OUTPUT_SHAPE[1]
    return (
        params,
        rng.standard_normal((batch, n_in)),
        rng.standard_normal((batch, n_out)),
    )


layer = st.tuples(
    st.integers(1, 5), st.sampled_from(["identity", "relu", "tanh"]), st.booleans()
)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(layer, min_size=1, max_size=3),
    st.sampled_from(["squared", "mse"]),
    st.sampled_from(["mean", "sum"]),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_random_architectures_match_torch(
    tmp_path_factory, n_in, layers, loss, reduction, batch, seed
):
    module = generate(
        tmp_path_factory.mktemp("net"), spec_text(n_in, layers, loss, reduction)
    )
    params, x, y = random_problem(np.random.default_rng(seed), module, batch)
    spec = [(a, b) for _, a, b in layers]
    expected_loss, expected = network_gradients(spec, loss, reduction, params, x, y)
    got = module.gradients(params, x, y)
    assert float(module.loss(params, x, y)) == pytest.approx(expected_loss, rel=1e-12)
    assert list(got) == list(params)
    for name, value in got.items():
        assert value.shape == params[name].shape
        scale = max(np.abs(expected[name]).max(), 1e-12)
        assert np.abs(value - expected[name]).max() <= 1e-10 * scale, name


def test_committed_small_regression_matches_torch():
    module = import_path(GENERATED / "small_regression.py")
    rng = np.random.default_rng(7)
    params, x, y = random_problem(rng, module, 16)
    _, expected = network_gradients(
        [("tanh", True), ("relu", True), ("identity", True)],
        "mse",
        "mean",
        params,
        x,
        y,
    )
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
