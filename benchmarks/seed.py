"""The problem set's network (1-3-3-1, ReLU, no biases, squared error), one sample,
float64: where per-call cost is everything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.array_api import array_api_methods
from benchmarks.networks import import_file, module_of_spec
from benchmarks.peers import installed

GENERATED = Path(__file__).resolve().parent.parent / "generated"
SEED_SPEC = Path(__file__).resolve().parent.parent / "specs" / "seed.toml"

#: The problem set's worked point.
POINT = {
    "W0": [1.0, 2.0, 3.0],
    "W1": [[3.0, 4.0, 5.0], [-5.0, 4.0, 3.0], [3.0, 4.0, 1.0]],
    "W2": [1.0, 3.0, -3.0],
}
X, Y = 10.0, 180.0


def hand_scalar(params: dict, x: float, y: float) -> dict[str, Any]:
    """The fastest scalar Python we could write by hand, on the same types as derive's
    unrolled code (nested lists in, nested lists out): values unpacked once, ReLU gates
    fused into the products."""
    a0, a1, a2 = params["W0"]
    (b00, b01, b02), (b10, b11, b12), (b20, b21, b22) = params["W1"]
    c0, c1, c2 = params["W2"]
    r0, r1, r2 = a0 * x, a1 * x, a2 * x
    h0 = r0 if r0 > 0.0 else 0.0
    h1 = r1 if r1 > 0.0 else 0.0
    h2 = r2 if r2 > 0.0 else 0.0
    s0 = b00 * h0 + b01 * h1 + b02 * h2
    s1 = b10 * h0 + b11 * h1 + b12 * h2
    s2 = b20 * h0 + b21 * h1 + b22 * h2
    k0 = s0 if s0 > 0.0 else 0.0
    k1 = s1 if s1 > 0.0 else 0.0
    k2 = s2 if s2 > 0.0 else 0.0
    g = 2.0 * (c0 * k0 + c1 * k1 + c2 * k2 - y)
    d0 = g * c0 if s0 > 0.0 else 0.0
    d1 = g * c1 if s1 > 0.0 else 0.0
    d2 = g * c2 if s2 > 0.0 else 0.0
    e0 = (b00 * d0 + b10 * d1 + b20 * d2) if r0 > 0.0 else 0.0
    e1 = (b01 * d0 + b11 * d1 + b21 * d2) if r1 > 0.0 else 0.0
    e2 = (b02 * d0 + b12 * d1 + b22 * d2) if r2 > 0.0 else 0.0
    return {
        "W0": [e0 * x, e1 * x, e2 * x],
        "W1": [
            [d0 * h0, d0 * h1, d0 * h2],
            [d1 * h0, d1 * h1, d1 * h2],
            [d2 * h0, d2 * h1, d2 * h2],
        ],
        "W2": [g * k0, g * k1, g * k2],
    }


def hand_numpy(params: dict, x: float, y: float) -> dict[str, np.ndarray]:
    """Hand-written NumPy for one sample, as the problem set's functions compute it."""
    w0, w1, w2 = params["W0"], params["W1"], params["W2"]
    r0 = w0 * x
    h0 = np.maximum(r0, 0)
    r1 = w1 @ h0
    h1 = np.maximum(r1, 0)
    g = 2 * (w2 @ h1 - y)
    d1 = g * w2 * (r1 > 0)
    d0 = (d1 @ w1) * (r0 > 0)
    return {"W0": d0 * x, "W1": np.outer(d1, h0), "W2": g * h1}


def matmul_limit(arrays: dict[str, np.ndarray]) -> Callable[[], None]:
    """Only the products backprop needs, into preallocated arrays."""
    w0, w1, w2 = arrays["W0"], arrays["W1"], arrays["W2"]
    h0, h1 = w0 * X, np.empty(3)
    d0, g1 = np.empty(3), np.empty((3, 3))

    def products() -> None:
        np.matmul(w1, h0, out=h1)
        np.dot(w2, h1)
        np.outer(h1, h0, out=g1)
        np.matmul(h1, w1, out=d0)

    return products


def _torch_loss(torch: Any, w0: Any, w1: Any, w2: Any, x: Any, y: float) -> Any:
    h1 = torch.relu(w1 @ torch.relu(w0 * x))
    return (w2 @ h1 - y) ** 2


def methods() -> dict[str, Callable[[], Any]]:
    """Every way of computing the seed's three gradients, checked equal first."""
    unrolled = import_file(GENERATED / "seed_unrolled.py", "bench_seed_unrolled")
    vectorized = import_file(GENERATED / "seed_mlp.py", "bench_seed_mlp")
    array_api = module_of_spec(
        SEED_SPEC.read_text().replace(
            'name = "seed_mlp"', 'name = "bench_seed_array_api"\ntarget = "array_api"'
        ),
        "bench_seed_array_api",
    )
    arrays = {k: np.asarray(v) for k, v in POINT.items()}
    # The array_api module takes arrays only, so it gets x and y as 0-d arrays; the
    # numpy target gets the Python floats the hand-written code gets (its checks'
    # fast path expects a float where the problem set has a number; 0-d arrays take
    # the converting path, which doubled its time here).
    x, y = np.asarray(X), np.asarray(Y)
    found: dict[str, Callable[[], Any]] = {
        "derive, unrolled": lambda: unrolled.gradients(POINT, X, Y),
        "hand-written scalar Python": lambda: hand_scalar(POINT, X, Y),
        "derive, vectorized": lambda: vectorized.gradients(arrays, X, Y),
        "hand-written NumPy": lambda: hand_numpy(arrays, X, Y),
        **array_api_methods(array_api, arrays, x, y),
    }
    if installed("torch"):
        import torch

        leaves = [torch.tensor(arrays[k], requires_grad=True) for k in POINT]
        xt = torch.tensor(X, dtype=torch.float64)

        def backward() -> list:
            _torch_loss(torch, *leaves, xt, Y).backward()
            grads = [t.grad for t in leaves]
            for t in leaves:
                t.grad = None
            return grads

        tensors = [torch.from_numpy(arrays[k]) for k in POINT]
        func_grad = torch.func.grad(lambda w: _torch_loss(torch, *w, xt, Y))
        found["torch loss.backward()"] = backward
        found["torch.func.grad"] = lambda: func_grad(tensors)
    if installed("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        def jax_loss(w: list, x: Any, y: Any) -> Any:
            h0 = w[0] * x
            h0 = jnp.where(h0 > 0, h0, 0)  # torch's gradient at 0, unlike maximum
            h1 = w[1] @ h0
            h1 = jnp.where(h1 > 0, h1, 0)
            return (w[2] @ h1 - y) ** 2

        jitted = jax.jit(jax.grad(jax_loss))
        device = [jnp.asarray(arrays[k]) for k in POINT]
        found["jax.jit(jax.grad)"] = lambda: jax.block_until_ready(jitted(device, X, Y))
    if installed("autograd"):
        import autograd
        import autograd.numpy as anp

        def autograd_loss(w: list) -> Any:
            h0 = w[0] * X
            h0 = anp.where(h0 > 0, h0, 0)
            h1 = anp.dot(w[1], h0)
            h1 = anp.where(h1 > 0, h1, 0)
            return (anp.dot(w[2], h1) - Y) ** 2

        gradient = autograd.grad(autograd_loss)
        weights = [arrays[k] for k in POINT]
        found["HIPS autograd"] = lambda: gradient(weights)
    found["matmul limit (NumPy)"] = matmul_limit(arrays)
    expected = hand_numpy(arrays, X, Y)
    for name, function in found.items():
        if name.startswith("matmul limit"):
            continue
        got = function()
        values = got.values() if isinstance(got, dict) else got
        for key, value in zip(POINT, values, strict=True):
            np.testing.assert_allclose(
                np.asarray(value, dtype=float), expected[key], err_msg=name
            )
    return found
