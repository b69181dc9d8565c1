"""A correct hand-written solution of the problem set, written with loops.

Not the generated code's shape: every sum is a Python loop over units, and each
function reads like a student's, and ``d_loss_d_h0`` takes its arguments in another
order than the generated one (the audit matches them by name). ``derive audit
specs/seed.toml`` finds every function ``ok``; the audit tests plant one slip at a time
in a copy of this file and check that the audit names the function that holds it.
"""

import numpy as np


def relu(x):
    return x if x > 0 else 0.0


def relu_derivative(x):
    return 1.0 if x > 0 else 0.0


def loss(y_predicted, y_observed):
    return (y_predicted - y_observed) ** 2


def mlp(x, W0, W1, W2):
    r0 = np.array([x * W0[i] for i in range(3)])
    h0 = np.array([relu(r0[i]) for i in range(3)])
    r1 = np.zeros(3)
    for i in range(3):
        for k in range(3):
            r1[i] += W1[i, k] * h0[k]
    h1 = np.array([relu(r1[i]) for i in range(3)])
    y_predicted = 0.0
    for k in range(3):
        y_predicted += W2[k] * h1[k]
    return {"x": x, "r0": r0, "h0": h0, "r1": r1, "h1": h1, "y_predicted": y_predicted}


def d_loss_d_ypredicted(variable_dict, y_observed):
    return 2 * (variable_dict["y_predicted"] - y_observed)


def d_loss_d_W2(variable_dict, y_observed):
    upstream = d_loss_d_ypredicted(variable_dict, y_observed)
    return np.array([upstream * variable_dict["h1"][i] for i in range(3)])


def d_loss_d_h1(variable_dict, W2, y_observed):
    upstream = d_loss_d_ypredicted(variable_dict, y_observed)
    return np.array([upstream * W2[i] for i in range(3)])


def d_loss_d_r1(variable_dict, W2, y_observed):
    upstream = d_loss_d_h1(variable_dict, W2, y_observed)
    r1 = variable_dict["r1"]
    return np.array([upstream[i] * relu_derivative(r1[i]) for i in range(3)])


def d_loss_d_W1(variable_dict, W2, y_observed):
    upstream = d_loss_d_r1(variable_dict, W2, y_observed)
    h0 = variable_dict["h0"]
    gradient = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            gradient[i, j] = upstream[i] * h0[j]
    return gradient


def d_loss_d_h0(variable_dict, y_observed, W2, W1):
    upstream = d_loss_d_r1(variable_dict, W2, y_observed)
    gradient = np.zeros(3)
    for k in range(3):
        for i in range(3):
            gradient[k] += upstream[i] * W1[i, k]
    return gradient


def d_loss_d_r0(variable_dict, W1, W2, y_observed):
    upstream = d_loss_d_h0(variable_dict, y_observed, W2, W1)
    r0 = variable_dict["r0"]
    return np.array([upstream[i] * relu_derivative(r0[i]) for i in range(3)])


def d_loss_d_W0(variable_dict, W1, W2, y_observed):
    upstream = d_loss_d_r0(variable_dict, W1, W2, y_observed)
    return np.array([upstream[i] * variable_dict["x"] for i in range(3)])
