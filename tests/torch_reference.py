"""The same networks in torch (float64), differentiated by autograd."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ACTIVATIONS = {"identity": lambda t: t, "relu": torch.relu, "tanh": torch.tanh}


def seed_gradients(
    x: float, W0: Any, W1: Any, W2: Any, y_observed: float
) -> dict[str, Any]:
    """Every gradient of the problem set's network, as the problem set's torch code does
    it (``torch.nn.ReLU``, ``matmul``, ``dot``), in float64 and with every intermediate
    kept. Keys are the generated functions' names."""

    def leaf(value: Any) -> torch.Tensor:
        return torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)

    w0, w1, w2 = leaf(W0), leaf(W1), leaf(W2)
    r0 = w0 * torch.tensor(float(x), dtype=torch.float64)
    h0 = torch.nn.ReLU()(r0)
    r1 = torch.matmul(w1, h0)
    h1 = torch.nn.ReLU()(r1)
    y_predicted = torch.dot(w2, h1)
    values = {"r0": r0, "h0": h0, "r1": r1, "h1": h1, "ypredicted": y_predicted}
    for value in values.values():
        value.retain_grad()
    torch.pow(y_predicted - y_observed, 2).backward()
    grads = {f"d_loss_d_{name}": v.grad.numpy() for name, v in values.items()}
    grads.update(
        d_loss_d_W0=w0.grad.numpy(),
        d_loss_d_W1=w1.grad.numpy(),
        d_loss_d_W2=w2.grad.numpy(),
    )
    return grads


def network_gradients(
    layers: list[tuple[str, bool]],
    loss: str,
    reduction: str,
    params: dict[str, Any],
    x: Any,
    y: Any,
) -> tuple[float, dict[str, Any]]:
    """Loss and parameter gradients of a torch-shaped MLP (``nn.Linear`` conventions)."""
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in params.items()
    }
    h = torch.tensor(x, dtype=torch.float64)
    for layer, (activation, bias) in enumerate(layers):
        h = torch.nn.functional.linear(
            h, tensors[f"W{layer}"], tensors[f"b{layer}"] if bias else None
        )
        h = ACTIVATIONS[activation](h)
    target = torch.tensor(y, dtype=torch.float64)
    if loss == "mse":
        value = torch.nn.functional.mse_loss(h, target, reduction=reduction)
    else:  # squared: summed over output units, then reduced over the batch
        per_sample = ((h - target) ** 2).sum(dim=1)
        value = per_sample.mean() if reduction == "mean" else per_sample.sum()
    value.backward()
    return value.item(), {k: t.grad.numpy() for k, t in tensors.items()}
