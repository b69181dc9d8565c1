"""The unrolled style: one line per neuron on Python floats, equal to the vectorized
style's gradients, and refused beyond its size limit."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GENERATED, examples, generate_module, import_path
from tests.test_networks_against_torch import (
    ACTIVATIONS,
    LOSSES,
    random_problem,
    spec_text,
)

layer = st.tuples(st.integers(1, 5), st.sampled_from(ACTIVATIONS), st.booleans())


def both_styles(folder, text):
    """The vectorized and unrolled modules of one spec."""
    unrolled_text = text.replace('name = "net"', 'name = "net_unrolled"')
    unrolled_text = unrolled_text.replace(
        'shapes = "torch"', 'shapes = "torch"\nstyle = "unrolled"'
    )
    _, vectorized = generate_module(folder, text)
    _, unrolled = generate_module(folder, unrolled_text)
    return vectorized, unrolled


@settings(max_examples=examples(5))
@given(
    n_in=st.integers(1, 5),
    layers=st.lists(layer, min_size=1, max_size=3),
    loss=st.sampled_from(LOSSES),
    seed=st.integers(0, 2**32 - 1),
)
def test_unrolled_equals_vectorized(tmp_path_factory, n_in, layers, loss, seed):
    if loss == "softmax_cross_entropy":
        width, activation, bias = layers[-1]
        layers = [*layers[:-1], (max(width, 2), activation, bias)]
    text = spec_text(n_in, layers, loss, "mean")
    vectorized, unrolled = both_styles(tmp_path_factory.mktemp("net"), text)
    params, x, y = random_problem(np.random.default_rng(seed), vectorized, 1, loss)
    expected = vectorized.gradients(params, x, y)
    plain = {name: value.tolist() for name, value in params.items()}
    got = unrolled.gradients(plain, x[0].tolist(), y[0].tolist())
    assert list(got) == list(expected)
    for name, value in got.items():
        array = np.asarray(value)
        assert array.dtype == np.float64 and array.shape == params[name].shape
        scale = max(np.abs(expected[name]).max(), 1e-12)
        assert np.abs(array - expected[name]).max() <= 1e-12 * scale, name
    assert unrolled.loss(plain, x[0].tolist(), y[0].tolist()) == pytest.approx(
        float(vectorized.loss(params, x, y)), rel=1e-12
    )


def test_unrolled_seed_matches_the_problem_set_and_returns_floats(tmp_path, seed):
    from tests.problem_set import WORKED_POINT

    W0, W1, W2 = (np.asarray(WORKED_POINT[k], dtype=float) for k in ("W0", "W1", "W2"))
    X, Y_OBSERVED = WORKED_POINT["x"], WORKED_POINT["y_observed"]
    module = import_path(GENERATED / "seed_unrolled.py")
    params = {"W0": W0.tolist(), "W1": W1.tolist(), "W2": W2.tolist()}
    got = module.gradients(params, float(X), float(Y_OBSERVED))
    expected = seed.gradients(params, X, Y_OBSERVED)
    for name in params:
        np.testing.assert_array_equal(np.asarray(got[name]), expected[name])
    assert all(isinstance(v, float) for v in got["W0"])
    values = module.mlp(float(X), *params.values())
    assert values["y_predicted"] == 200.0


def test_unrolled_module_imports_no_numpy(tmp_path):

    module = import_path(GENERATED / "seed_unrolled.py")
    tree = ast.parse(open(module.__file__).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "numpy" not in imported
    assert imported <= {"__future__", "math", "numbers", "collections", "typing"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("W1"), "missing parameter 'W1' of shape (3, 3)"),
        (lambda p: p.update(W1=[[1.0, 2.0]]), "parameter 'W1' has shape (1, 2)"),
        (lambda p: p.update(W7=[0.0]), "unknown parameter 'W7'"),
    ],
)
def test_unrolled_wrong_parameters_raise_value_error(tmp_path, change, message):
    from tests.problem_set import WORKED_POINT

    W0, W1, W2 = (np.asarray(WORKED_POINT[k], dtype=float) for k in ("W0", "W1", "W2"))
    module = import_path(GENERATED / "seed_unrolled.py")
    params = {"W0": W0.tolist(), "W1": W1.tolist(), "W2": W2.tolist()}
    change(params)
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        module.gradients(params, 10.0, 180.0)


def test_unrolled_nan_input_propagates():
    from tests.problem_set import WORKED_POINT

    module = import_path(GENERATED / "seed_unrolled.py")
    params = {k: np.asarray(WORKED_POINT[k], dtype=float).tolist() for k in PARAMS}
    got = module.gradients(params, float("nan"), 180.0)
    assert np.isnan(np.asarray(got["W2"])).all()
    assert np.isnan(module.loss(params, float("nan"), 180.0))


PARAMS = ("W0", "W1", "W2")
