"""The generated seed module against torch autograd (float64) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import problem_set
from tests.conftest import examples
from tests.test_seed_against_problem_set import GRADIENTS, call, points
from tests.torch_reference import seed_gradients

POINT = problem_set.WORKED_POINT
RTOL = 1e-10


def relative_error(got, expected):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    scale = max(np.max(np.abs(expected)), 1e-300)
    return float(np.max(np.abs(got - expected)) / scale)


@pytest.mark.parametrize("name", GRADIENTS)
def test_every_partial_at_the_worked_point(seed, name):
    expected = seed_gradients(**POINT)[name]
    assert relative_error(call(seed, name, POINT), expected) <= RTOL


@settings(max_examples=examples(200), deadline=None)
@given(points())
def test_every_partial_at_random_points(seed, point):
    expected = seed_gradients(**point)
    for name in GRADIENTS:
        got = call(seed, name, point)
        assert np.shape(got) == np.shape(expected[name]), name
        assert relative_error(got, expected[name]) <= RTOL, name


@settings(max_examples=examples(200), deadline=None)
@given(points())
def test_generic_gradients_at_random_points(seed, point):
    params = {k: point[k].astype(np.float64) for k in ("W0", "W1", "W2")}
    got = seed.gradients(params, point["x"], point["y_observed"])
    expected = seed_gradients(**point)
    assert list(got) == ["W0", "W1", "W2"]
    for name, value in got.items():
        assert value.shape == params[name].shape
        assert value.dtype == np.float64
        assert relative_error(value, expected[f"d_loss_d_{name}"]) <= RTOL


def test_generic_loss_and_forward(seed):
    params = {k: POINT[k] for k in ("W0", "W1", "W2")}
    assert seed.loss(params, POINT["x"], POINT["y_observed"]) == 400
    assert seed.forward(params, POINT["x"])["y_predicted"] == 200


def test_kink_matches_torch(seed):
    """Pre-activations exactly 0 in both layers: relu'(0) = 0, as torch."""
    point = dict(
        POINT,
        W0=np.array([0.0, 2.0, 3.0]),
        W1=np.array([[3.0, 4.0, 5.0], [0.0, 0.0, 0.0], [3.0, 4.0, 1.0]]),
    )
    values = seed.mlp(point["x"], point["W0"], point["W1"], point["W2"])
    assert values["r0"][0] == 0 and values["r1"][1] == 0
    expected = seed_gradients(**point)
    for name in GRADIENTS:
        np.testing.assert_array_equal(call(seed, name, point), expected[name])


@settings(max_examples=examples(100), deadline=None)
@given(points(), st.sampled_from(["W0", "W1", "W2"]))
def test_parameter_gradients_against_central_differences(seed, point, name):
    """Central differences, at points where no pre-activation is near the kink."""
    params = {k: point[k].astype(np.float64) for k in ("W0", "W1", "W2")}
    values = seed.forward(params, point["x"])
    step = 1e-6
    margin = 1e3 * step * (1 + abs(point["x"])) * (1 + np.abs(params["W1"]).sum())
    if min(np.abs(values["r0"]).min(), np.abs(values["r1"]).min()) < margin:
        return  # too close to a kink for a finite difference to mean anything
    analytic = seed.gradients(params, point["x"], point["y_observed"])[name]
    numeric = np.zeros_like(params[name])
    for index in np.ndindex(params[name].shape):
        up = {k: v.copy() for k, v in params.items()}
        down = {k: v.copy() for k, v in params.items()}
        up[name][index] += step
        down[name][index] -= step
        numeric[index] = (
            seed.loss(up, point["x"], point["y_observed"])
            - seed.loss(down, point["x"], point["y_observed"])
        ) / (2 * step)
    scale = max(np.abs(analytic).max(), 1.0)
    assert np.abs(analytic - numeric).max() <= 1e-5 * scale
