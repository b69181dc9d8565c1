"""The problem set's hand-written backpropagation, written again in our own code.

Same formulas, same conventions, same function names and arguments as LIGN 167
Problem Set 3 (``shared/seed``), and its two slips kept on purpose, so that the tests
can show where the generated code and the hand derivation part ways:

1. ``relu_derivative(x)`` returns 1 at ``x == 0`` (torch, and derive, use 0).
2. ``d_loss_d_r1`` evaluates ``relu_derivative`` at ``h1 = relu(r1)`` instead of at
   ``r1``. Since ``h1 >= 0`` always, it returns 1 for every unit, so a unit with a
   negative pre-activation wrongly passes gradient back. (``d_loss_d_r0`` uses ``r0``
   correctly.)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def relu(x: float) -> float:
    return 0 if x < 0 else x


def relu_derivative(x: float) -> float:
    # Slip 1: 1 at exactly 0.
    return 0 if x < 0 else 1


def loss(y_predicted: float, y_observed: float) -> float:
    return (y_predicted - y_observed) ** 2


def mlp(x: float, W0: Any, W1: Any, W2: Any) -> dict[str, Any]:
    # One neuron at a time, as the problem set writes it.
    r0 = np.array([x * W0[unit] for unit in range(3)])
    h0 = np.array([relu(value) for value in r0])
    r1 = np.array([sum(h0[k] * W1[unit, k] for k in range(3)) for unit in range(3)])
    h1 = np.array([relu(value) for value in r1])
    y_predicted = sum(h1[k] * W2[k] for k in range(3))
    return {"x": x, "r0": r0, "h0": h0, "r1": r1, "h1": h1, "y_predicted": y_predicted}


def d_loss_d_ypredicted(variable_dict: dict[str, Any], y_observed: float) -> float:
    return 2 * (variable_dict["y_predicted"] - y_observed)


def d_loss_d_W2(variable_dict: dict[str, Any], y_observed: float) -> Any:
    return d_loss_d_ypredicted(variable_dict, y_observed) * variable_dict["h1"]


def d_loss_d_h1(variable_dict: dict[str, Any], W2: Any, y_observed: float) -> Any:
    return d_loss_d_ypredicted(variable_dict, y_observed) * W2


def d_loss_d_r1(variable_dict: dict[str, Any], W2: Any, y_observed: float) -> Any:
    # Slip 2: the derivative is taken at h1, not at r1.
    gate = np.array(
        [relu_derivative(value) for value in variable_dict["h1"]], dtype=float
    )
    return d_loss_d_h1(variable_dict, W2, y_observed) * gate


def d_loss_d_W1(variable_dict: dict[str, Any], W2: Any, y_observed: float) -> Any:
    return np.outer(d_loss_d_r1(variable_dict, W2, y_observed), variable_dict["h0"])


def d_loss_d_h0(
    variable_dict: dict[str, Any], W1: Any, W2: Any, y_observed: float
) -> Any:
    upstream = d_loss_d_r1(variable_dict, W2, y_observed)
    # Column by column, as the problem set does with np.dot on reshaped slices.
    return np.array([float(np.dot(upstream, W1[:, column])) for column in range(3)])


def d_loss_d_r0(
    variable_dict: dict[str, Any], W1: Any, W2: Any, y_observed: float
) -> Any:
    upstream = d_loss_d_h0(variable_dict, W1, W2, y_observed)
    r0 = variable_dict["r0"]
    return np.array([upstream[unit] * relu_derivative(r0[unit]) for unit in range(3)])


def d_loss_d_W0(
    variable_dict: dict[str, Any], W1: Any, W2: Any, y_observed: float
) -> Any:
    return d_loss_d_r0(variable_dict, W1, W2, y_observed) * variable_dict["x"]


#: The problem set's worked point.
WORKED_POINT = {
    "x": 10,
    "W0": np.array([1, 2, 3]),
    "W1": np.array([[3, 4, 5], [-5, 4, 3], [3, 4, 1]]),
    "W2": np.array([1, 3, -3]),
    "y_observed": 180,
}
