"""The README's loss table, cell by cell: what each ``reduction`` computes, per loss,
checked against torch's own losses (or, where torch has none, the sum the README
names)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import generate_module

BATCH, UNITS = 3, 4


def spec(kind: str, reduction: str, shapes: str = "torch", width: int = UNITS) -> str:
    extra = {
        "huber": "delta = 0.5\n",
        "custom": 'expression = "(y_predicted - y)**4 / 4"\n',
    }.get(kind, "")
    return (
        f'name = "net"\ninput = 2\nshapes = "{shapes}"\n'
        f'[[layers]]\nwidth = {width}\nactivation = "identity"\n'
        f'[loss]\nkind = "{kind}"\nreduction = "{reduction}"\n{extra}'
    )


def element(kind: str, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each loss per element, unreduced, from torch's own functions."""
    if kind in ("squared", "mse"):
        return F.mse_loss(p, y, reduction="none")
    if kind == "huber":
        return F.huber_loss(p, y, reduction="none", delta=0.5)
    if kind == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(p, y, reduction="none")
    assert kind == "custom"
    return (p - y) ** 4 / 4


# (kind, reduction) -> what the README says, as a function of the unreduced losses
# (batch, units). Softmax cross-entropy is per sample, below.
README = {
    ("squared", "mean"): lambda e: e.sum(1).mean(),  # units summed, batch averaged
    ("squared", "sum"): lambda e: e.sum(),
    ("mse", "mean"): lambda e: e.mean(),  # every element averaged
    ("mse", "sum"): lambda e: e.sum(),
    ("huber", "mean"): lambda e: e.mean(),
    ("huber", "sum"): lambda e: e.sum(),
    ("binary_cross_entropy", "mean"): lambda e: e.mean(),
    ("binary_cross_entropy", "sum"): lambda e: e.sum(),
    ("custom", "mean"): lambda e: e.sum(1).mean(),
    ("custom", "sum"): lambda e: e.sum(),
}
TORCH = {
    "mse": lambda p, y, r: F.mse_loss(p, y, reduction=r),
    "huber": lambda p, y, r: F.huber_loss(p, y, reduction=r, delta=0.5),
    "binary_cross_entropy": lambda p, y, r: F.binary_cross_entropy_with_logits(
        p, y, reduction=r
    ),
}


def targets(kind: str, rng, shape) -> np.ndarray:
    return (
        rng.uniform(0, 1, shape)
        if kind == "binary_cross_entropy"
        else rng.normal(size=shape)
    )


@pytest.mark.parametrize(("kind", "reduction"), sorted(README))
def test_each_reduction_computes_what_the_readme_says(tmp_path, kind, reduction):
    _, module = generate_module(tmp_path, spec(kind, reduction))
    rng = np.random.default_rng(1)
    p, y = rng.normal(size=(BATCH, UNITS)), targets(kind, rng, (BATCH, UNITS))
    got = float(module.loss(p, y))
    pt, yt = torch.tensor(p), torch.tensor(y)
    assert got == pytest.approx(
        float(README[kind, reduction](element(kind, pt, yt))), rel=1e-12
    )
    if kind in TORCH:
        assert got == pytest.approx(float(TORCH[kind](pt, yt, reduction)), rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_reduces_over_the_batch(tmp_path, reduction):
    _, module = generate_module(tmp_path, spec("softmax_cross_entropy", reduction))
    rng = np.random.default_rng(2)
    p = rng.normal(size=(BATCH, UNITS))
    labels = rng.integers(0, UNITS, BATCH)
    expected = F.cross_entropy(
        torch.tensor(p), torch.tensor(labels), reduction=reduction
    )
    assert float(module.loss(p, labels)) == pytest.approx(float(expected), rel=1e-12)
    one_hot = np.eye(UNITS)[labels]
    assert float(module.loss(p, one_hot)) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize(
    "kind", ["squared", "mse", "huber", "binary_cross_entropy", "custom"]
)
def test_without_a_batch_axis_mean_averages_only_the_torch_means(tmp_path, kind):
    """One sample (problem-set shapes): "mean" averages mse, huber and
    binary_cross_entropy over the output units and leaves the others summed."""
    _, module = generate_module(tmp_path, spec(kind, "mean", shapes="problem_set"))
    rng = np.random.default_rng(3)
    p, y = rng.normal(size=UNITS), targets(kind, rng, UNITS)
    losses = element(kind, torch.tensor(p), torch.tensor(y))
    averaged = kind in ("mse", "huber", "binary_cross_entropy")
    expected = losses.mean() if averaged else losses.sum()
    assert float(module.loss(p, y)) == pytest.approx(float(expected), rel=1e-12)
