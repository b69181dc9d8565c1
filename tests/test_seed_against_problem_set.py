"""The generated seed module against the problem set's hand-written functions.

They agree function by function at the worked point and wherever the problem set's
two slips do not bite; where they do, torch and finite differences side with the
generated code, and these tests say why.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import problem_set
from tests.conftest import examples
from tests.torch_reference import seed_gradients

POINT = problem_set.WORKED_POINT
GRADIENTS = {
    "d_loss_d_ypredicted": ("y_observed",),
    "d_loss_d_W2": ("y_observed",),
    "d_loss_d_h1": ("W2", "y_observed"),
    "d_loss_d_r1": ("W2", "y_observed"),
    "d_loss_d_W1": ("W2", "y_observed"),
    "d_loss_d_h0": ("W1", "W2", "y_observed"),
    "d_loss_d_r0": ("W1", "W2", "y_observed"),
    "d_loss_d_W0": ("W1", "W2", "y_observed"),
}


def call(module, name, point):
    """Call ``module.name`` the problem set's way: the variable dict, then the arguments."""
    variable_dict = module.mlp(point["x"], point["W0"], point["W1"], point["W2"])
    return getattr(module, name)(variable_dict, *(point[a] for a in GRADIENTS[name]))


finite = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3))
positive = st.floats(0.01, 5).map(lambda v: round(v, 3))


@st.composite
def points(draw, inputs=finite):
    """A random point; with ``inputs=positive``, x, W0 and W1 are positive, so every
    r0 and r1 is positive and the problem set's slips cannot bite."""
    return {
        "x": draw(inputs),
        "W0": np.array(draw(st.lists(inputs, min_size=3, max_size=3))),
        "W1": np.array(draw(st.lists(inputs, min_size=9, max_size=9))).reshape(3, 3),
        "W2": np.array(draw(st.lists(finite, min_size=3, max_size=3))),
        "y_observed": draw(finite),
    }


def test_generated_module_has_the_problem_set_functions(seed):
    for name in ["relu", "relu_derivative", "loss", "mlp", *GRADIENTS]:
        assert callable(getattr(seed, name)), name


def test_forward_pass_at_the_worked_point(seed):
    ours = seed.mlp(POINT["x"], POINT["W0"], POINT["W1"], POINT["W2"])
    theirs = problem_set.mlp(POINT["x"], POINT["W0"], POINT["W1"], POINT["W2"])
    assert list(ours) == ["x", "r0", "h0", "r1", "h1", "y_predicted"] == list(theirs)
    for key in theirs:
        np.testing.assert_array_equal(ours[key], theirs[key])
    assert ours["y_predicted"] == 260 * 1 + 120 * 3 + 140 * -3 == 200
    assert seed.loss(ours["y_predicted"], POINT["y_observed"]) == 400


@pytest.mark.parametrize("name", GRADIENTS)
def test_every_gradient_at_the_worked_point(seed, name):
    expected = call(problem_set, name, POINT)
    got = call(seed, name, POINT)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_worked_point_values(seed):
    """The numbers a student gets by hand at the worked point (y_predicted = 200)."""
    np.testing.assert_array_equal(call(seed, "d_loss_d_W2", POINT), [10400, 4800, 5600])
    # d_loss_d_h0 = 40 * [1, 3, -3] @ W1 = 40 * [-21, 4, 11]; every r0 > 0; times x = 10.
    np.testing.assert_array_equal(call(seed, "d_loss_d_h0", POINT), [-840, 160, 440])
    np.testing.assert_array_equal(call(seed, "d_loss_d_W0", POINT), [-8400, 1600, 4400])
    np.testing.assert_array_equal(
        call(seed, "d_loss_d_W1", POINT), 40 * np.outer([1, 3, -3], [10, 20, 30])
    )


@settings(max_examples=examples(300), deadline=None)
@given(points(inputs=positive))
def test_every_gradient_matches_where_the_problem_set_is_right(seed, point):
    """Away from the slips (every r0 and r1 > 0) all eight functions agree."""
    values = problem_set.mlp(point["x"], point["W0"], point["W1"], point["W2"])
    assert np.all(values["r0"] > 0) and np.all(values["r1"] > 0)
    for name in GRADIENTS:
        np.testing.assert_allclose(
            call(seed, name, point),
            call(problem_set, name, point),
            rtol=1e-12,
            atol=1e-9,
        )


@settings(max_examples=examples(300), deadline=None)
@given(points())
def test_gradients_upstream_of_the_slips_always_match(seed, point):
    """d_loss_d_ypredicted, d_loss_d_W2 and d_loss_d_h1 never touch the slips."""
    for name in ["d_loss_d_ypredicted", "d_loss_d_W2", "d_loss_d_h1"]:
        np.testing.assert_allclose(
            call(seed, name, point),
            call(problem_set, name, point),
            rtol=1e-12,
            atol=1e-9,
        )


NEGATIVE_R1 = dict(POINT, W1=np.array([[3, 4, 5], [-5, -4, 3], [3, 4, 1]]))


def test_problem_set_d_loss_d_r1_is_wrong_where_r1_is_negative_and_torch_is_right(seed):
    """Slip 2: the problem set gates d_loss_d_r1 with relu_derivative(h1), not (r1).

    Here r1[1] = -50 - 80 + 90 = -40 < 0, so h1[1] = relu(r1[1]) = 0 and the unit is
    off: nudging r1[1] does not change the loss, so d_loss_d_r1[1] must be 0. The
    problem set evaluates relu_derivative at h1[1] = 0, gets 1, and passes gradient
    through the dead unit. torch (and the chain rule) say 0; derive agrees with torch.
    """
    values = seed.mlp(
        NEGATIVE_R1["x"], NEGATIVE_R1["W0"], NEGATIVE_R1["W1"], NEGATIVE_R1["W2"]
    )
    assert values["r1"][1] == -40
    theirs = call(problem_set, "d_loss_d_r1", NEGATIVE_R1)
    ours = call(seed, "d_loss_d_r1", NEGATIVE_R1)
    torch_grads = seed_gradients(**NEGATIVE_R1)
    assert theirs[1] != 0  # the slip
    assert ours[1] == 0 == torch_grads["d_loss_d_r1"][1]
    for name in [
        "d_loss_d_r1",
        "d_loss_d_W1",
        "d_loss_d_h0",
        "d_loss_d_r0",
        "d_loss_d_W0",
    ]:
        np.testing.assert_allclose(
            call(seed, name, NEGATIVE_R1), torch_grads[name], rtol=1e-12
        )
    # ... and the slip propagates to W1's gradient, whose row for the dead unit is wrong.
    assert np.any(call(problem_set, "d_loss_d_W1", NEGATIVE_R1)[1] != 0)


def test_problem_set_relu_derivative_at_the_kink_is_1_torch_and_derive_take_0(seed):
    """Slip 1: at a pre-activation of exactly 0 the problem set's relu_derivative is 1.

    ReLU has no derivative at 0; any value in [0, 1] is a valid subgradient, so neither
    is wrong as calculus, but they disagree. derive states and follows torch's
    convention, relu'(0) = 0, so its gradients match torch's bit for bit. Here
    W0[0] = 0 makes r0[0] exactly 0.
    """
    kink = dict(POINT, W0=np.array([0, 2, 3]))
    values = seed.mlp(kink["x"], kink["W0"], kink["W1"], kink["W2"])
    assert values["r0"][0] == 0
    assert problem_set.relu_derivative(0) == 1
    assert seed.relu_derivative(0.0) == 0
    torch_grads = seed_gradients(**kink)
    ours = call(seed, "d_loss_d_W0", kink)
    assert ours[0] == 0 == torch_grads["d_loss_d_W0"][0]
    assert call(problem_set, "d_loss_d_W0", kink)[0] != 0
    np.testing.assert_allclose(ours, torch_grads["d_loss_d_W0"], rtol=1e-12)
