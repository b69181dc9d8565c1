"""The tools people would use instead: torch autograd, jax and HIPS autograd.

Each builder returns a function of no arguments that computes the gradient of the loss
with respect to every parameter, for one network and one batch, or ``None`` when the
library is not installed (``pip install -e ".[bench]"`` installs jax and autograd;
torch is installed as ``torch==2.13.0``). :func:`compile_seconds` reports jax's
compilation apart from its per-call time.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.networks import Size

Gradient = Callable[[], Any]


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _layers(size: Size) -> int:
    return len(size.widths) - 1


def _loss_of(xp: Any, size: Size, softmax_cross_entropy: Callable | None = None):
    """The network's loss as a function of (params, x, y), written with ``xp``
    (``jax.numpy`` or ``autograd.numpy``)."""
    layers = _layers(size)

    def loss(params: dict, x: Any, y: Any) -> Any:
        h = x
        for n in range(layers):
            h = h @ params[f"W{n}"].T + params[f"b{n}"]
            if n < layers - 1:
                # Not maximum(h, 0): its gradient at a tie is 1/2, and zero biases
                # make ties (a unit whose inputs are all off); torch's is 0.
                h = xp.where(h > 0, h, 0)
        if size.loss == "softmax_cross_entropy":
            peak = xp.max(h, axis=1, keepdims=True)
            lse = xp.log(xp.sum(xp.exp(h - peak), axis=1)) + peak[:, 0]
            return xp.mean(xp.sum(y, axis=1) * lse - xp.sum(y * h, axis=1))
        return xp.mean((h - y) ** 2)

    return loss


def _torch_loss(size: Size, params: dict, x: Any, y: Any) -> Any:
    """The network's loss in torch, as ``nn.Linear``, ``relu`` and torch's losses."""
    import torch
    import torch.nn.functional as F

    h = x
    layers = _layers(size)
    for n in range(layers):
        h = F.linear(h, params[f"W{n}"], params[f"b{n}"])
        if n < layers - 1:
            h = torch.relu(h)
    if size.loss == "softmax_cross_entropy":
        return F.cross_entropy(h, y)
    return F.mse_loss(h, y)


def torch_backward(
    size: Size, params: dict, x: np.ndarray, y: np.ndarray
) -> Gradient | None:
    """``loss.backward()`` on leaf tensors, reading ``.grad`` and clearing it."""
    return torch_backward_of(
        lambda p, xt, yt: _torch_loss(size, p, xt, yt), params, x, y
    )


def torch_backward_of(
    loss: Callable[[dict, Any, Any], Any], params: dict, x: np.ndarray, y: np.ndarray
) -> Gradient | None:
    """``loss(params, x, y).backward()`` in torch, on leaf tensors, reading ``.grad``
    and clearing it; None without torch."""
    if not installed("torch"):
        return None
    import torch

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def gradient() -> dict:
        loss(leaves, xt, yt).backward()
        grads = {k: t.grad for k, t in leaves.items()}
        for t in leaves.values():
            t.grad = None
        return grads

    return gradient


def torch_func_grad(
    size: Size, params: dict, x: np.ndarray, y: np.ndarray
) -> Gradient | None:
    """``torch.func.grad`` of a functional loss."""
    if not installed("torch"):
        return None
    import torch

    tensors = {k: torch.from_numpy(v) for k, v in params.items()}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gradient = torch.func.grad(lambda p: _torch_loss(size, p, xt, yt))
    return lambda: gradient(tensors)


def _jax_gradient(size: Size, params: dict) -> tuple[Any, Any, dict]:
    """jax (in the size's precision), ``jit(grad(loss))`` and the parameters on the
    device."""
    import jax

    jax.config.update("jax_enable_x64", size.dtype == "float64")
    import jax.numpy as jnp

    gradient = jax.jit(jax.grad(_loss_of(jnp, size)))
    return jax, gradient, {k: jnp.asarray(v) for k, v in params.items()}


def jax_jit_grad(
    size: Size, params: dict, x: np.ndarray, y: np.ndarray
) -> Gradient | None:
    """``jax.jit(jax.grad(loss))``, on the CPU, waiting for the result."""
    if not installed("jax"):
        return None
    jax, gradient, device = _jax_gradient(size, params)
    xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(y)
    return lambda: jax.block_until_ready(gradient(device, xj, yj))


def compile_seconds(
    size: Size, params: dict, x: np.ndarray, y: np.ndarray
) -> float | None:
    """How long jax takes to trace and compile ``jit(grad(loss))`` for this size."""
    if not installed("jax"):
        return None
    jax, gradient, device = _jax_gradient(size, params)
    start = time.perf_counter()
    gradient.lower(device, jax.numpy.asarray(x), jax.numpy.asarray(y)).compile()
    return time.perf_counter() - start


def hips_autograd(
    size: Size, params: dict, x: np.ndarray, y: np.ndarray
) -> Gradient | None:
    """HIPS ``autograd.grad`` (tracing NumPy on every call)."""
    if not installed("autograd"):
        return None
    import autograd
    import autograd.numpy as anp

    gradient = autograd.grad(_loss_of(anp, size))
    return lambda: gradient(params, x, y)


PEERS: dict[str, Callable[..., Gradient | None]] = {
    "torch loss.backward()": torch_backward,
    "torch.func.grad": torch_func_grad,
    "jax.jit(jax.grad)": jax_jit_grad,
    "HIPS autograd": hips_autograd,
}
