"""Gradient speed: derive's generated code against hand-written NumPy backprop and
the matrix-product limit, at the sizes the issues name."""

from __future__ import annotations

import numpy as np

from benchmarks.networks import (
    MNIST_SIZES,
    Size,
    generated_module,
    matmul_limit,
    numpy_backprop,
    problem,
)
from benchmarks.timing import compare


def methods(size: Size) -> dict[str, object]:
    """The ways of computing every parameter's gradient at ``size``, checked equal."""
    params, x, y = problem(size)
    generated = generated_module(size)
    hand = numpy_backprop(size)
    expected = hand(params, x, y)
    got = generated.gradients(params, x, y)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_allclose(got[name], value, rtol=2e-3, atol=1e-6)
    return {
        "derive, vectorized": lambda: generated.gradients(params, x, y),
        "hand-written NumPy": lambda: hand(params, x, y),
        "matmul limit (NumPy)": matmul_limit(size, params, x),
    }


def run(
    sizes: tuple[Size, ...] = MNIST_SIZES, seconds: float = 0.2, turns: int = 7
) -> list[dict]:
    """One row per size and method: seconds per call and ratios."""
    rows = []
    for size in sizes:
        times = compare(methods(size), seconds, turns)
        hand = times["hand-written NumPy"]
        limit = times["matmul limit (NumPy)"]
        for method, seconds_per_call in times.items():
            rows.append(
                {
                    "size": size.label,
                    "method": method,
                    "us": seconds_per_call * 1e6,
                    "vs_hand": seconds_per_call / hand,
                    "vs_limit": seconds_per_call / limit,
                }
            )
    return rows
