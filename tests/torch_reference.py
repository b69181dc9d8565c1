"""The same networks in torch (float64), differentiated by autograd."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from derive.activations import DEFAULT_SLOPE
from derive.losses import DEFAULT_DELTA
from derive.spec import LayerSpec, LossSpec, NetworkSpec


def _softplus(t: torch.Tensor) -> torch.Tensor:
    """softplus without torch's linear cut-over above 20 (``F.softplus(threshold=20)``
    returns x there, whose gradient 1 differs from sigmoid(20) by 2e-9)."""
    return torch.logaddexp(torch.zeros_like(t), t)


#: The custom formulas the tests use, written in torch.
CUSTOM_ACTIVATIONS = {
    "x * sigmoid(x)": lambda t: t * torch.sigmoid(t),
    "x * tanh(softplus(x))": lambda t: t * torch.tanh(_softplus(t)),
    "sqrt(1 + x**2) - 1": lambda t: torch.sqrt(1 + t**2) - 1,
}
CUSTOM_LOSSES = {
    "sqrt(1 + (y_predicted - y)**2) - 1": lambda p, y: torch.sqrt(1 + (p - y) ** 2) - 1,
    "(y_predicted - y)**4 / 4": lambda p, y: (p - y) ** 4 / 4,
}


def activation(layer: LayerSpec, t: torch.Tensor) -> torch.Tensor:
    """``layer``'s activation applied to ``t``, with torch's own functions."""
    kind = layer.activation
    if kind == "identity":
        return t
    if kind == "relu":
        return torch.relu(t)
    if kind == "leaky_relu":
        slope = DEFAULT_SLOPE if layer.slope is None else layer.slope
        return F.leaky_relu(t, slope)
    if kind == "sigmoid":
        return torch.sigmoid(t)
    if kind == "tanh":
        return torch.tanh(t)
    if kind == "softplus":
        return _softplus(t)
    if kind == "gelu":
        return F.gelu(t)
    return CUSTOM_ACTIVATIONS[layer.expression](t)


def loss(spec: LossSpec, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``spec``'s loss, with torch's own loss functions where torch has one."""
    reduction = spec.reduction
    if spec.kind == "mse":
        return F.mse_loss(predicted, target, reduction=reduction)
    if spec.kind == "huber":
        delta = DEFAULT_DELTA if spec.delta is None else spec.delta
        return F.huber_loss(predicted, target, reduction=reduction, delta=delta)
    if spec.kind == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(
            predicted, target, reduction=reduction
        )
    if spec.kind == "softmax_cross_entropy":
        return F.cross_entropy(predicted, target, reduction=reduction)
    if spec.kind == "squared":
        per_sample = ((predicted - target) ** 2).sum(dim=-1)
    else:  # custom: summed over output units
        per_sample = CUSTOM_LOSSES[spec.expression](predicted, target).sum(dim=-1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


def network_gradients(
    spec: NetworkSpec, params: dict[str, Any], x: Any, y: Any
) -> tuple[float, dict[str, Any]]:
    """Loss and parameter gradients of a torch-shaped MLP (``nn.Linear`` conventions).

    ``y`` may be integer class labels for softmax cross-entropy, as torch allows.
    """
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in params.items()
    }
    h = torch.tensor(x, dtype=torch.float64)
    for n, layer in enumerate(spec.layers):
        bias = tensors[f"b{n}"] if layer.bias else None
        h = activation(layer, F.linear(h, tensors[f"W{n}"], bias))
    y = np.asarray(y)
    target = (
        torch.tensor(y) if y.dtype.kind == "i" else torch.tensor(y, dtype=torch.float64)
    )
    value = loss(spec.loss, h, target)
    value.backward()
    return value.item(), {k: t.grad.numpy() for k, t in tensors.items()}


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
