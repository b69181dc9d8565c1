"""A correct hand-written backward pass for ``specs/residual_mlp.toml``, one function
per partial derivative.

An equation spec's way in: ``forward(params, x, y)`` returns the dict of values, and
one ``d_loss_d_<name>`` function per value and parameter takes that dict and the
arrays it needs, matched by name (``d_loss_d_W0`` takes them in another order than
the generated one). Written as a person would, not as the generated code is: sums
are ``einsum``, the activation's derivative is a mask, each gradient names its
upstream. ``derive audit specs/residual_mlp.toml`` finds every function ``ok``; the
audit tests plant one slip at a time in a copy of this file.
"""

import numpy as np

L2 = 0.001


def relu(x):
    return np.maximum(x, 0.0)


def relu_derivative(x):
    return (np.asarray(x) > 0).astype(float)


def forward(params, x, y):
    W0, b0 = params["W0"], params["b0"]
    W1, b1 = params["W1"], params["b1"]
    W2, b2 = params["W2"], params["b2"]
    h0_in = np.einsum("bj,ij->bi", x, W0) + b0
    h0 = relu(h0_in)
    h1_in = np.einsum("bj,ij->bi", h0, W1) + b1
    h1 = h0 + np.tanh(h1_in)
    y_predicted = np.einsum("bj,ij->bi", h1, W2) + b2
    squared = np.sum((y_predicted - y) ** 2) / len(x)
    penalty = L2 * (np.sum(W0**2) + np.sum(W1**2) + np.sum(W2**2))
    return {
        "h0_in": h0_in,
        "h0": h0,
        "h1_in": h1_in,
        "h1": h1,
        "y_predicted": y_predicted,
        "loss": squared + penalty,
    }


def loss(params, x, y):
    return forward(params, x, y)["loss"]


def d_loss_d_y_predicted(values, y):
    return 2.0 * (values["y_predicted"] - y) / len(y)


def d_loss_d_h1(values, W2, y):
    return np.einsum("bm,mi->bi", d_loss_d_y_predicted(values, y), W2)


def d_loss_d_h1_in(values, W2, y):
    return d_loss_d_h1(values, W2, y) * (1.0 - np.tanh(values["h1_in"]) ** 2)


def d_loss_d_h0(values, W1, W2, y):
    skip = d_loss_d_h1(values, W2, y)
    through_tanh = np.einsum("bm,mi->bi", d_loss_d_h1_in(values, W2, y), W1)
    return skip + through_tanh


def d_loss_d_h0_in(values, W1, W2, y):
    return d_loss_d_h0(values, W1, W2, y) * relu_derivative(values["h0_in"])


def d_loss_d_W0(values, x, y, W2, W1, W0):
    upstream = d_loss_d_h0_in(values, W1, W2, y)
    return np.einsum("bi,bj->ij", upstream, x) + 2 * L2 * W0


def d_loss_d_b0(values, W1, W2, y):
    return np.sum(d_loss_d_h0_in(values, W1, W2, y), axis=0)


def d_loss_d_W1(values, W1, W2, y):
    upstream = d_loss_d_h1_in(values, W2, y)
    return np.einsum("bi,bj->ij", upstream, values["h0"]) + 2 * L2 * W1


def d_loss_d_b1(values, W2, y):
    return np.sum(d_loss_d_h1_in(values, W2, y), axis=0)


def d_loss_d_W2(values, W2, y):
    upstream = d_loss_d_y_predicted(values, y)
    return np.einsum("bi,bj->ij", upstream, values["h1"]) + 2 * L2 * W2


def d_loss_d_b2(values, y):
    return np.sum(d_loss_d_y_predicted(values, y), axis=0)
