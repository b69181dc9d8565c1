"""A hand-written vectorized backward pass for ``specs/residual_mlp.toml``.

The generic way in, for an equation spec: ``gradients(params, x, y)`` (the spec's
inputs in order) returns a dict keyed by parameter. Correct as it stands; the audit
tests plant the residual's classic slip in a copy of it: the skip connection's
gradient forgotten, so that ``h0`` receives only what flows through ``tanh``.
"""

import numpy as np


def gradients(params, x, y):
    W0, b0 = params["W0"], params["b0"]
    W1, b1 = params["W1"], params["b1"]
    W2, b2 = params["W2"], params["b2"]
    h0_in = x @ W0.T + b0
    h0 = np.maximum(h0_in, 0.0)
    h1_in = h0 @ W1.T + b1
    h1 = h0 + np.tanh(h1_in)
    y_predicted = h1 @ W2.T + b2
    d_y = 2.0 * (y_predicted - y) / len(x)
    d_h1 = d_y @ W2
    d_h1_in = d_h1 * (1.0 - np.tanh(h1_in) ** 2)
    d_h0 = d_h1 + d_h1_in @ W1
    d_h0_in = d_h0 * (h0_in > 0)
    return {
        "W0": d_h0_in.T @ x + 0.002 * W0,
        "b0": d_h0_in.sum(axis=0),
        "W1": d_h1_in.T @ h0 + 0.002 * W1,
        "b1": d_h1_in.sum(axis=0),
        "W2": d_y.T @ h1 + 0.002 * W2,
        "b2": d_y.sum(axis=0),
    }
