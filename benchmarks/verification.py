"""What verifying a module costs: for every committed spec, the time ``derive`` takes
for it (the module, both documents) and, measured apart in the same run, the time of
the numerical check inside it (:mod:`derive.verify`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.timing import Progress, step
from derive.loading import load_module
from derive.render import derive_spec, python_code, render
from derive.spec import load_spec
from derive.verify.check import verify

SPECS = Path(__file__).resolve().parent.parent / "specs"


def all_specs() -> list[Path]:
    return sorted(SPECS.glob("*.toml"))


def quick_specs() -> list[Path]:
    """--quick: the seed network and one equation spec."""
    return [SPECS / "seed.toml", SPECS / "residual_mlp.toml"]


def _best(repeats: int, function: Callable[..., object], *args: object) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def run(
    specs: list[Path] | None = None, repeats: int = 3, progress: Progress | None = None
) -> list[dict]:
    """One row per spec: derive's seconds for it, and the check's share of them."""
    rows = []
    for path in specs or all_specs():
        step(progress, f"verification cost: {path.name}")
        spec = load_spec(path)
        source = path.name
        whole = _best(repeats, render, spec, source)
        derivation = derive_spec(spec)
        module = load_module(spec.name, python_code(derivation, source).source)
        check = _best(repeats, verify, derivation.network, module)
        rows.append(
            {
                "spec": path.name,
                "derive_seconds": whole,
                "verify_seconds": check,
                # what verifying adds to derive without it
                "added": check / max(whole - check, 1e-9),
            }
        )
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [
        "## Verification: what checking each module numerically adds to derive",
        "",
        "| spec | derive (with the check) | the check | added |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['spec']} | {row['derive_seconds']:.2f} s "
            f"| {1000 * row['verify_seconds']:.0f} ms | {100 * row['added']:.1f}% |"
        )
    return lines
