"""The ``array_api`` target's speed: the one module on NumPy arrays and on torch
tensors, next to the ``numpy`` target and torch autograd in every size's run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.peers import installed
from benchmarks.timing import format_time

#: The array_api target's module, on NumPy arrays and on torch CPU tensors.
ARRAY_API_METHODS = (
    "derive array_api, NumPy arrays",
    "derive array_api, torch tensors",
)


def array_api_methods(
    module: Any, params: dict[str, Any], x: Any, y: Any
) -> dict[str, Callable[[], Any]]:
    """``module.gradients`` (a module written for the array API standard) on the
    NumPy arrays given, and on the same data as torch tensors when torch is here."""
    found: dict[str, Callable[[], Any]] = {
        ARRAY_API_METHODS[0]: lambda: module.gradients(params, x, y)
    }
    if installed("torch"):
        import torch

        tensors = {k: torch.from_numpy(v) for k, v in params.items()}
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        found[ARRAY_API_METHODS[1]] = lambda: module.gradients(tensors, xt, yt)
    return found


def table(rows: list[dict]) -> list[str]:
    """Per size: the array_api module on NumPy arrays against the numpy target's
    module, and on torch tensors against torch's ``loss.backward()``."""
    lines = [
        "| size | numpy target | array_api, NumPy arrays | ratio "
        "| torch backward | array_api, torch tensors | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in dict.fromkeys(r["size"] for r in rows):
        us = {r["method"]: r["us"] for r in rows if r["size"] == size}
        if ARRAY_API_METHODS[0] not in us:
            continue
        cells = [size]
        for reference, method in (
            ("derive, vectorized", ARRAY_API_METHODS[0]),
            ("torch loss.backward()", ARRAY_API_METHODS[1]),
        ):
            if reference in us and method in us:
                ratio = f"{us[method] / us[reference]:.2f}x"
                cells += [format_time(us[reference]), format_time(us[method]), ratio]
            else:
                cells += ["-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
