"""A hand-written vectorized backward pass for ``specs/small_regression.toml``.

The generic way in: ``gradients(params, x, y)`` returns a dict keyed by parameter.
Correct as it stands; the audit tests plant the classic slip of a bias gradient
summed over the wrong axis in a copy of it.
"""

import numpy as np


def gradients(params, x, y):
    W0, b0 = params["W0"], params["b0"]
    W1, b1 = params["W1"], params["b1"]
    W2, b2 = params["W2"], params["b2"]
    r0 = x @ W0.T + b0
    h0 = np.tanh(r0)
    r1 = h0 @ W1.T + b1
    h1 = np.maximum(r1, 0.0)
    y_predicted = h1 @ W2.T + b2
    d_y = 2.0 * (y_predicted - y) / y.size
    d_h1 = d_y @ W2
    d_r1 = d_h1 * (r1 > 0)
    d_h0 = d_r1 @ W1
    d_r0 = d_h0 * (1.0 - h0**2)
    return {
        "W0": d_r0.T @ x,
        "b0": d_r0.sum(axis=0),
        "W1": d_r1.T @ h0,
        "b1": d_r1.sum(axis=0),
        "W2": d_y.T @ h1,
        "b2": d_y.sum(axis=0),
    }
