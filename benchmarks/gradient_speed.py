"""Gradient speed: derive's generated code against hand-written NumPy backprop and
the matrix-product limit, at the sizes the issues name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import seed
from benchmarks.array_api import ARRAY_API_METHODS, array_api_methods
from benchmarks.networks import (
    MNIST_SIZES,
    Size,
    equations_text,
    generated_module,
    matmul_limit,
    module_of_spec,
    numpy_backprop,
    problem,
)
from benchmarks.peers import PEERS, compile_seconds
from benchmarks.timing import Progress, compare, step

#: The same network written as equations (issue 10: within 3% of its [[layers]] spec).
EQUATIONS = "derive, as equations"


def methods(size: Size) -> dict[str, Callable[[], Any]]:
    """The ways of computing every parameter's gradient at ``size``, checked equal."""
    params, x, y = problem(size)
    generated = generated_module(size)
    hand = numpy_backprop(size)
    expected = hand(params, x, y)
    got = generated.gradients(params, x, y)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_allclose(got[name], value, rtol=2e-3, atol=1e-6)
    name = f"bench_equations_{'_'.join(map(str, size.widths))}"
    equations = module_of_spec(equations_text(size, name), name)
    found: dict[str, Callable[[], Any]] = {
        "derive, vectorized": lambda: generated.gradients(params, x, y),
        EQUATIONS: lambda: equations.gradients(params, x, y),
        "hand-written NumPy": lambda: hand(params, x, y),
    }
    _check(EQUATIONS, found[EQUATIONS](), expected)
    found.update(
        array_api_methods(generated_module(size, target="array_api"), params, x, y)
    )
    for name in ARRAY_API_METHODS:
        if name in found:
            _check(name, found[name](), expected)
    for name, build in PEERS.items():
        function = build(size, params, x, y)
        if function is not None:
            _check(name, function(), expected)
            found[name] = function
    found["matmul limit (NumPy)"] = matmul_limit(size, params, x)
    return found


def _check(name: str, got: Any, expected: dict[str, np.ndarray]) -> None:
    """A peer's gradients (a dict of tensors or arrays) equal hand-written NumPy's."""
    for key, value in expected.items():
        array = np.asarray(
            got[key].detach() if hasattr(got[key], "detach") else got[key]
        )
        np.testing.assert_allclose(array, value, rtol=2e-3, atol=1e-5, err_msg=name)


def rows_for(label: str, times: dict[str, float], width: int | None) -> list[dict]:
    """One row per method: microseconds per call, and ratios to the references."""
    hand = times["hand-written NumPy"]
    limit = times["matmul limit (NumPy)"]
    return [
        {
            "size": label,
            "width": width,
            "method": method,
            "us": seconds * 1e6,
            "vs_hand": seconds / hand,
            "vs_limit": seconds / limit,
        }
        for method, seconds in times.items()
    ]


def run(
    sizes: tuple[Size, ...] = MNIST_SIZES,
    seconds: float = 0.25,
    turns: int = 5,
    pause: float = 0.5,
    progress: Progress | None = None,
) -> list[dict]:
    """Rows for every size: each method timed in long turns, in one process."""
    rows = []
    for size in sizes:
        status = step(progress, size.label)
        status("deriving and checking every method")
        times = compare(methods(size), seconds, turns, pause, status)
        rows += rows_for(size.label, times, size.hidden)
    return rows


SEED_LABEL = "seed 1-3-3-1, 1 sample, float64"


def run_seed(
    seconds: float = 0.25,
    turns: int = 5,
    pause: float = 0.5,
    progress: Progress | None = None,
) -> list[dict]:
    """Rows for the problem set's network, one sample, float64."""
    status = step(progress, SEED_LABEL)
    times = compare(seed.methods(), seconds, turns, pause, status)
    return rows_for(SEED_LABEL, times, None)


def jax_compile_seconds(
    sizes: tuple[Size, ...], progress: Progress | None = None
) -> dict[str, float]:
    """jax's trace-and-compile time per size, reported apart from per-call times."""
    found = {}
    for size in sizes:
        step(progress, f"{size.label}: jax compile time")
        params, x, y = problem(size)
        compiled = compile_seconds(size, params, x, y)
        if compiled is not None:
            found[size.label] = compiled
    return found
