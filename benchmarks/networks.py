"""The benchmark networks: their specs, data, and the hand-written code to beat.

Every network is a ReLU MLP in torch's conventions (``W`` is ``(out, in)``), with
biases, a batch of inputs, and either softmax cross-entropy over 10 classes (the
MNIST-sized networks) or the mean squared error to one output (the width sweep).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from derive.render import render
from derive.spec import parse_spec


@dataclass(frozen=True)
class Size:
    """One benchmark point: layer widths from input to output, batch, loss, dtype."""

    label: str
    widths: tuple[int, ...]
    batch: int
    loss: str  # "softmax_cross_entropy" or "mse"
    dtype: str  # "float32" or "float64"

    @property
    def hidden(self) -> int:
        return self.widths[1]


MNIST_SIZES = (
    Size(
        "784-256-256-10, batch 64",
        (784, 256, 256, 10),
        64,
        "softmax_cross_entropy",
        "float32",
    ),
    Size(
        "784-1024-1024-10, batch 256",
        (784, 1024, 1024, 10),
        256,
        "softmax_cross_entropy",
        "float32",
    ),
)
SWEEP_WIDTHS = (3, 16, 64, 256, 1024)


def sweep_size(width: int) -> Size:
    """The width sweep: 32-w-w-1, batch 32, float32, mean squared error."""
    return Size(
        f"32-{width}-{width}-1, batch 32", (32, width, width, 1), 32, "mse", "float32"
    )


def spec_text(
    size: Size, style: str = "vectorized", name: str = "bench", target: str = "numpy"
) -> str:
    """The derive spec of ``size``: ReLU hidden layers, a linear output layer."""
    text = f'name = "{name}"\ninput = {size.widths[0]}\nstyle = "{style}"\n'
    text += f'target = "{target}"\n'
    for n, width in enumerate(size.widths[1:]):
        last = n == len(size.widths) - 2
        activation = "identity" if last else "relu"
        text += f'[[layers]]\nwidth = {width}\nactivation = "{activation}"\n'
    return text + f'[loss]\nkind = "{size.loss}"\nreduction = "mean"\n'


def equations_text(size: Size, name: str = "bench_equations") -> str:
    """The network of ``size`` written as equations (the same parameter names and
    shapes, the same loss), for timing it against its ``[[layers]]`` spec."""
    widths = size.widths
    sizes = "".join(f"n{n} = {w}\n" for n, w in enumerate(widths))
    last = len(widths) - 1
    parameters = "".join(
        f'W{n} = ["n{n + 1}", "n{n}"]\nb{n} = ["n{n + 1}"]\n' for n in range(last)
    )
    equations = "".join(
        f'h{n} = "relu({"x" if n == 0 else f"h{n - 1}"} @ W{n}.T + b{n})"\n'
        for n in range(last - 1)
    )
    equations += f'z = "h{last - 2} @ W{last - 1}.T + b{last - 1}"\n'
    if size.loss == "softmax_cross_entropy":
        equations += 'loss = "-mean(sum(y * log_softmax(z, axis=-1), axis=-1))"\n'
    else:  # derive's mse with reduction "mean": the mean over samples and outputs
        equations += 'loss = "mean((z - y)**2)"\n'
    return (
        f'name = "{name}"\n[sizes]\n{sizes}'
        f'[inputs]\nx = ["batch", "n0"]\ny = ["batch", "n{last}"]\n'
        f"[parameters]\n{parameters}[equations]\n{equations}"
    )


def import_file(path: Path, name: str) -> ModuleType:
    """Import the Python file at ``path`` as the module ``name``."""
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def generated_module(
    size: Size, style: str = "vectorized", target: str = "numpy"
) -> ModuleType:
    """Run derive on ``size``'s spec and import the module it writes."""
    name = f"bench_{style}_{target}_{'_'.join(map(str, size.widths))}_{size.loss}"
    return module_of_spec(spec_text(size, style, name, target), name)


def module_of_spec(text: str, name: str) -> ModuleType:
    """Run derive on the spec ``text`` (named ``name``) and import its module."""
    spec = parse_spec(text, f"{name}.toml")
    output = render(spec, f"{name}.toml")[0]
    path = Path(tempfile.mkdtemp(prefix="derive-bench-")) / output.name
    path.write_text(output.text)
    return import_file(path, spec.name)


def problem(
    size: Size, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parameters (He-scaled), inputs and targets (one-hot rows for softmax)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(size.dtype)
    params = {}
    for n, (fan_in, fan_out) in enumerate(itertools.pairwise(size.widths)):
        params[f"W{n}"] = (
            rng.standard_normal((fan_out, fan_in)) * np.sqrt(2 / fan_in)
        ).astype(dtype)
        params[f"b{n}"] = np.zeros(fan_out, dtype=dtype)
    x = rng.standard_normal((size.batch, size.widths[0])).astype(dtype)
    if size.loss == "softmax_cross_entropy":
        y = np.eye(size.widths[-1], dtype=dtype)[
            rng.integers(0, size.widths[-1], size.batch)
        ]
    else:
        y = rng.standard_normal((size.batch, size.widths[-1])).astype(dtype)
    return params, x, y


def numpy_backprop(size: Size):
    """Careful hand-written NumPy backprop for ``size``: what derive must match."""
    layers = len(size.widths) - 1
    softmax = size.loss == "softmax_cross_entropy"

    def gradients(
        params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> dict[str, Any]:
        weights = [params[f"W{n}"] for n in range(layers)]
        biases = [params[f"b{n}"] for n in range(layers)]
        inputs, pre_activations = [x], []
        h = x
        for n in range(layers - 1):
            r = h @ weights[n].T + biases[n]
            pre_activations.append(r)
            h = np.maximum(r, 0)
            inputs.append(h)
        z = h @ weights[-1].T + biases[-1]
        if softmax:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            delta = (e / e.sum(axis=1, keepdims=True) - y) / len(x)
        else:
            delta = 2 * (z - y) / z.size
        grads: dict[str, Any] = {}
        for n in reversed(range(layers)):
            grads[f"W{n}"] = delta.T @ inputs[n]
            grads[f"b{n}"] = delta.sum(axis=0)
            if n:
                delta = (delta @ weights[n]) * (pre_activations[n - 1] > 0)
        return grads

    return gradients


def matmul_limit(size: Size, params: dict[str, np.ndarray], x: np.ndarray):
    """Only the matrix products backprop needs, into preallocated arrays: the floor
    for any NumPy implementation (forward ``h @ W.T``, backward ``d.T @ h`` and
    ``d @ W``)."""
    layers = len(size.widths) - 1
    weights = [params[f"W{n}"] for n in range(layers)]
    dtype = x.dtype
    outs = [np.empty((size.batch, w), dtype) for w in size.widths[1:]]
    grads = [np.empty(w.shape, dtype) for w in weights]
    deltas = [np.empty((size.batch, w), dtype) for w in size.widths[:-1]]

    def products() -> None:
        h = x
        for n in range(layers):
            np.matmul(h, weights[n].T, out=outs[n])
            h = outs[n]
        for n in reversed(range(layers)):
            delta = outs[n]
            np.matmul(delta.T, x if n == 0 else outs[n - 1], out=grads[n])
            if n:
                np.matmul(delta, weights[n], out=deltas[n])

    return products
