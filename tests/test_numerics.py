"""Stable numerics: logits of magnitude 1000 give finite, correct gradients without
overflow warnings; float32 stays float32; class labels equal one-hot targets."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import GENERATED, generate_module, import_path
from tests.torch_reference import network_gradients

EXTREME = np.array([[1000.0, -1000.0, 0.5], [-1000.0, 999.0, 1000.0]])


def one_layer(loss: str, activation: str = "identity") -> str:
    """A single 3-to-3 layer, so that the logits are whatever the test makes them."""
    return (
        'name = "edge"\ninput = 3\n[[layers]]\nwidth = 3\nbias = false\n'
        f'activation = "{activation}"\n[loss]\nkind = "{loss}"\n'
    )


def assert_matches_torch(spec, module, params, x, y):
    # Any overflow, 0/0 or log(0) raises; underflow to 0 is the right answer here.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        got = module.gradients(params, x, y)
        value = module.loss(params, x, y)
    expected_loss, expected = network_gradients(spec, params, x, y)
    assert np.isfinite(value) and value == pytest.approx(expected_loss, rel=1e-12)
    for name, gradient in got.items():
        assert np.isfinite(gradient).all()
        np.testing.assert_allclose(gradient, expected[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "y",
    [np.array([1, 0]), np.array([[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]])],
    ids=["labels", "probabilities"],
)
def test_softmax_cross_entropy_at_logits_1000(tmp_path, y):
    spec, module = generate_module(tmp_path, one_layer("softmax_cross_entropy"))
    params = {"W0": np.eye(3)}  # the logits are x itself
    assert_matches_torch(spec, module, params, EXTREME, y)


def test_binary_cross_entropy_at_logits_1000(tmp_path):
    spec, module = generate_module(tmp_path, one_layer("binary_cross_entropy"))
    y = np.array([[1.0, 0.0, 0.3], [1.0, 0.0, 0.9]])
    assert_matches_torch(spec, module, {"W0": np.eye(3)}, EXTREME, y)


@pytest.mark.parametrize("activation", ["sigmoid", "softplus", "gelu", "tanh"])
def test_activations_at_pre_activations_1000(tmp_path, activation):
    spec, module = generate_module(tmp_path, one_layer("mse", activation))
    y = np.zeros((2, 3))
    assert_matches_torch(spec, module, {"W0": np.eye(3)}, EXTREME, y)


def test_custom_swish_at_1000(tmp_path):
    text = one_layer("mse", "custom").replace(
        'activation = "custom"', 'activation = "custom"\nexpression = "x * sigmoid(x)"'
    )
    spec, module = generate_module(tmp_path, text)
    assert_matches_torch(spec, module, {"W0": np.eye(3)}, EXTREME, np.zeros((2, 3)))


@pytest.mark.parametrize(
    "name",
    ["small_regression", "mnist_classifier", "tanh_huber_regression", "swish_custom"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_committed_modules_keep_the_dtype(name, dtype):
    module = import_path(GENERATED / f"{name}.py")
    rng = np.random.default_rng(0)
    params = {
        k: rng.standard_normal(s).astype(dtype)
        for k, s in module.PARAMETER_SHAPES.items()
    }
    x = rng.standard_normal((4, module.INPUT_SHAPE[1])).astype(dtype)
    y = rng.standard_normal((4, module.OUTPUT_SHAPE[1])).astype(dtype)
    if name == "mnist_classifier":
        y = rng.integers(0, 10, size=4)
    got = module.gradients(params, x, y)
    assert {k: v.dtype for k, v in got.items()} == {k: dtype for k in params}
    assert np.asarray(module.loss(params, x, y)).dtype == dtype


def test_class_labels_equal_one_hot_rows():
    module = import_path(GENERATED / "mnist_classifier.py")
    rng = np.random.default_rng(1)
    params = {k: rng.standard_normal(s) for k, s in module.PARAMETER_SHAPES.items()}
    x = rng.standard_normal((5, 784))
    labels = np.array([3, 0, 9, 9, 1])
    one_hot = np.eye(10)[labels]
    by_label = module.gradients(params, x, labels)
    by_row = module.gradients(params, x, one_hot)
    for name in params:
        np.testing.assert_array_equal(by_label[name], by_row[name])
    assert module.loss(params, x, labels) == module.loss(params, x, one_hot)


def test_class_labels_out_of_range_raise():
    module = import_path(GENERATED / "mnist_classifier.py")
    params = {k: np.zeros(s) for k, s in module.PARAMETER_SHAPES.items()}
    with pytest.raises(ValueError, match="class labels must be from 0 to 9"):
        module.gradients(params, np.zeros((2, 784)), np.array([0, 10]))
