"""What the generated modules do with arguments that do not fit: a target whose batch
differs from x's, class labels at every entry point (both styles), empty batches,
strings, complex numbers, objects, ``params=None``, float labels, lists where a number
is expected. Each raises ``ValueError`` or ``TypeError`` naming the argument; nothing
broadcasts silently."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tests.conftest import GENERATED, generate_module, import_path
from tests.test_networks_against_torch import random_problem, spec_text
from tests.torch_reference import network_gradients

CLASSIFIER = spec_text(
    4, [(5, "tanh", True), (3, "identity", True)], "softmax_cross_entropy", "mean"
)
REGRESSION = spec_text(4, [(5, "relu", True), (2, "identity", True)], "mse", "mean")


def unrolled(text: str) -> str:
    return text.replace('name = "net"', 'name = "net_unrolled"').replace(
        'shapes = "torch"', 'shapes = "torch"\nstyle = "unrolled"'
    )


def problem_set_shapes(text: str) -> str:
    return text.replace('name = "net"', 'name = "net_ps"').replace(
        'shapes = "torch"', 'shapes = "problem_set"'
    )


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arguments")
    made = {}
    for name, text in {
        "classifier": CLASSIFIER,
        "regression": REGRESSION,
        "classifier_unrolled": unrolled(CLASSIFIER),
        "classifier_problem_set": problem_set_shapes(CLASSIFIER),
    }.items():
        made[name] = generate_module(folder, text, f"{name}.toml")
    return made


def problem(module, batch=4, seed=0, loss="mse", labels=False):
    return random_problem(np.random.default_rng(seed), module, batch, loss, labels)


# Item 2: the target's batch is checked against x's (and y_predicted's).
@pytest.mark.parametrize("name", ["classifier", "regression"])
def test_a_target_for_fewer_samples_than_x_is_refused(modules, name):
    spec, module = modules[name]
    loss = spec.loss.kind
    params, x, y = problem(module, loss=loss)
    for call in (
        lambda: module.gradients(params, x, y[:1]),
        lambda: module.loss(params, x, y[:1]),
    ):
        with pytest.raises(ValueError, match=r"y has 1 samples but x has 4"):
            call()
    values = module.forward(params, x)
    with pytest.raises(
        ValueError, match=r"y_observed has 1 samples but y_predicted has 4"
    ):
        module.loss(values["y_predicted"], y[:1])
    for function in partials(module):
        with pytest.raises(ValueError, match=r"1 samples but y_predicted has 4"):
            call_partial(module, function, values, params, y[:1])


def test_labels_for_fewer_samples_than_x_are_refused(modules):
    _, module = modules["classifier"]
    params, x, _ = problem(module, loss="softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"y has 1 samples but x has 4"):
        module.gradients(params, x, np.array([2]))


def partials(module):
    return [
        getattr(module, name)
        for name in dir(module)
        if name.startswith("d_loss_d_") and callable(getattr(module, name))
    ]


def call_partial(module, function, values, params, y):
    names = list(inspect.signature(function).parameters)
    arguments = {"variable_dict": values, "y_observed": y}
    return function(*(arguments.get(n, params.get(n)) for n in names))


# Item 3: class labels at every entry point, both styles, equal to one-hot rows and
# to torch.
def test_every_partial_accepts_labels_as_torch_does(modules):
    spec, module = modules["classifier"]
    params, x, labels = problem(module, loss="softmax_cross_entropy", labels=True)
    assert labels.dtype.kind == "i"
    one_hot = np.eye(3)[labels]
    values = module.forward(params, x)
    _, expected = network_gradients(spec, params, x, labels)
    for function in partials(module):
        got = call_partial(module, function, values, params, labels)
        np.testing.assert_allclose(
            got, call_partial(module, function, values, params, one_hot), rtol=1e-12
        )
        name = function.__name__.removeprefix("d_loss_d_")
        if name in expected:
            np.testing.assert_allclose(got, expected[name], rtol=1e-10, atol=1e-14)
    assert module.loss(values["y_predicted"], labels) == pytest.approx(
        module.loss(values["y_predicted"], one_hot), rel=1e-12
    )


def test_problem_set_shapes_take_one_label(modules):
    """One sample, no batch axis: ``d_loss_d_ypredicted(values, 2)`` is class 2."""
    _, module = modules["classifier_problem_set"]
    rng = np.random.default_rng(1)
    params = {n: rng.standard_normal(s) for n, s in module.PARAMETER_SHAPES.items()}
    values = module.mlp(rng.standard_normal(4), *params.values())
    for function in partials(module):
        np.testing.assert_allclose(
            call_partial(module, function, values, params, 2),
            call_partial(module, function, values, params, np.eye(3)[2]),
            rtol=1e-12,
        )
    with pytest.raises(
        ValueError, match="class labels must be from 0 to 2, got 3 to 3"
    ):
        module.d_loss_d_ypredicted(values, 3)


def test_unrolled_loss_and_gradients_take_a_label(modules):
    spec, module = modules["classifier_unrolled"]
    _, vectorized = modules["classifier"]
    params, x, labels = problem(
        vectorized, 1, loss="softmax_cross_entropy", labels=True
    )
    plain = {k: v.tolist() for k, v in params.items()}
    label = int(labels[0])
    got = module.gradients(plain, x[0].tolist(), label)
    one_hot = module.gradients(plain, x[0].tolist(), np.eye(3)[label].tolist())
    expected_loss, expected = network_gradients(spec, params, x, labels)
    for name, value in got.items():
        np.testing.assert_allclose(value, one_hot[name], rtol=1e-12)
        np.testing.assert_allclose(value, expected[name], rtol=1e-10, atol=1e-14)
    assert module.loss(plain, x[0].tolist(), label) == pytest.approx(expected_loss)
    y_predicted = module.forward(plain, x[0].tolist())["y_predicted"]
    assert module.loss(y_predicted, label) == pytest.approx(expected_loss)
    for bad, message in (
        (3, "expected 0 to 2|from 0 to 2"),
        (1.0, "must be an integer"),
    ):
        with pytest.raises(ValueError, match=message):
            module.gradients(plain, x[0].tolist(), bad)
        with pytest.raises(ValueError, match=message):
            module.loss(y_predicted, bad)


# Item 11: an empty batch.
@pytest.mark.parametrize("name", ["classifier", "regression"])
def test_an_empty_batch_is_refused(modules, name):
    spec, module = modules[name]
    params, x, y = problem(module, loss=spec.loss.kind)
    for call in (
        lambda: module.gradients(params, x[:0], y[:0]),
        lambda: module.loss(params, x[:0], y[:0]),
        lambda: module.forward(params, x[:0]),
    ):
        with pytest.raises(ValueError, match=r"x has an empty batch"):
            call()
    with pytest.raises(ValueError, match=r"y_predicted has an empty batch"):
        module.loss(np.zeros((0, 2 if name == "regression" else 3)), y[:0])


# Item 12: dtypes, params=None, float labels, a list where a number is expected.
@pytest.mark.parametrize(
    "dtype", [np.str_, np.complex128, object], ids=["string", "complex", "object"]
)
@pytest.mark.parametrize("argument", ["x", "y", "W0"])
def test_arrays_that_are_not_real_numbers_are_refused(modules, dtype, argument):
    _, module = modules["regression"]
    params, x, y = problem(module)
    arguments = {"x": x, "y": y, **params}
    arguments[argument] = arguments[argument].astype(dtype)
    if dtype is object:
        arguments[argument][0] = {"not": "a number"}
    params = {k: arguments[k] for k in params}
    name = "parameter 'W0'" if argument == "W0" else argument
    with pytest.raises(TypeError, match=rf"{name} has dtype .*; expected real numbers"):
        module.gradients(params, arguments["x"], arguments["y"])


@pytest.mark.parametrize("name", ["classifier", "regression", "classifier_unrolled"])
def test_params_none_says_what_params_must_be(modules, name):
    _, module = modules[name]
    with pytest.raises(
        TypeError,
        match=r"params must be a dict .* keyed by parameter name \(W0, b0, W1, b1\), got NoneType",
    ):
        module.gradients(None, [[0.0] * 4], [0])
    with pytest.raises(TypeError, match="params must be a dict"):
        module.forward(None, [[0.0] * 4])


def test_float_labels_are_refused_saying_labels_are_integers(modules):
    _, module = modules["classifier"]
    params, x, _ = problem(module)
    with pytest.raises(ValueError, match=r"class labels must be integers from 0 to 2"):
        module.gradients(params, x, np.array([0.0, 1.0, 2.0, 1.0]))


def test_lists_and_integers_become_float64(modules):
    _, module = modules["regression"]
    params, x, y = problem(module)
    expected = module.gradients(params, x, y)
    rounded = {k: np.round(v).astype(int) for k, v in params.items()}
    got = module.gradients(
        {k: v.tolist() for k, v in params.items()}, x.tolist(), y.tolist()
    )
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    assert all(g.dtype == np.float64 for g in module.gradients(rounded, x, y).values())


def test_unrolled_scalar_given_as_a_list_names_it(tmp_path):
    module = import_path(GENERATED / "seed_unrolled.py")
    params = {"W0": [1.0, 2.0, 3.0], "W1": [[1.0] * 3] * 3, "W2": [1.0, 3.0, -3.0]}
    with pytest.raises(ValueError, match=r"^x has shape \(1,\), expected \(\)$"):
        module.gradients(params, [0.5], 1.0)
    with pytest.raises(ValueError, match=r"^y has shape \(1,\), expected \(\)$"):
        module.gradients(params, 0.5, [1.0])
    with pytest.raises(
        TypeError, match=r"x holds '0.5' of type str; expected real numbers"
    ):
        module.gradients(params, "0.5", 1.0)
    with pytest.raises(TypeError, match=r"parameter 'W0' holds 1j of type complex"):
        module.gradients({**params, "W0": [1j, 2.0, 3.0]}, 0.5, 1.0)
    with pytest.raises(TypeError, match="params must be a dict"):
        module.gradients(None, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"x has shape \(1,\), expected \(\)"):
        module.loss(params, [0.5], 1.0)


@pytest.mark.parametrize("path", sorted(GENERATED.glob("*.py")), ids=lambda p: p.name)
def test_docstrings_say_nan_and_inf_pass_through(path):
    # The sentence may wrap across lines of the docstring.
    assert "NaN and inf pass through" in " ".join(import_path(path).__doc__.split())
