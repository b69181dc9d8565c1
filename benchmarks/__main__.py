"""Run the benchmarks; print their tables and save them with a plot.

    python -m benchmarks              # everything: a few minutes
    python -m benchmarks --quick      # tiny sizes in seconds, to check that it runs
    python -m benchmarks --past-memory-gib 8   # a larger dataset for the Dask run
    python -m benchmarks --seed       # the seed network only (under a minute)
    python -m benchmarks --verification   # what verifying each module costs

Each size runs every method side by side in this one process, each in long turns;
ratios are the numbers to read, since the host's speed drifts. Results go to
benchmarks/results/ (latest.json, latest.md, sweep.png), or to --out.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import numpy as np

from benchmarks import (
    array_api,
    attention,
    derivation_time,
    gradient_speed,
    past_memory,
    verification,
)
from benchmarks.networks import MNIST_SIZES, SWEEP_WIDTHS, Size, sweep_size
from benchmarks.peers import installed
from benchmarks.plot import plot_sweep
from benchmarks.timing import Progress, format_time
from derive.progress import StatusLine

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_SIZES = (
    Size("8-16-16-10, batch 4", (8, 16, 16, 10), 4, "softmax_cross_entropy", "float32"),
)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        versions["numpy BLAS"] = f"{blas.get('name', '')} {blas.get('version', '')}"
    except (KeyError, TypeError, AttributeError):
        versions["numpy BLAS"] = "unknown"
    for name in ("torch", "jax", "autograd", "sympy"):
        if installed(name):
            versions[name] = importlib.metadata.version(name)
    if installed("torch"):
        import torch

        versions["torch BLAS"] = "MKL" if torch.backends.mkl.is_available() else "other"
        versions["torch threads"] = str(torch.get_num_threads())
    versions["processor"] = platform.processor() or platform.machine()
    return versions


def _gradient_table(rows: list[dict]) -> list[str]:
    lines = [
        "| size | method | time per call | vs hand-written NumPy | vs matmul limit |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']} | {row['method']} | {format_time(row['us'])} "
            f"| {row['vs_hand']:.2f}x | {row['vs_limit']:.2f}x |"
        )
    return lines


SHORT_NAMES = {
    "derive, unrolled": "derive unrolled",
    "derive, vectorized": "derive vectorized",
    "derive, as equations": "as equations",
    "derive array_api, NumPy arrays": "array_api on NumPy",
    "derive array_api, torch tensors": "array_api on torch",
    "hand-written scalar Python": "hand scalar",
    "hand-written NumPy": "hand NumPy",
    "torch loss.backward()": "torch backward",
    "torch.func.grad": "torch.func.grad",
    "jax.jit(jax.grad)": "jax jit(grad)",
    "HIPS autograd": "autograd",
    "matmul limit (NumPy)": "matmul limit",
}


def summary(record: dict) -> list[str]:
    """One row per size, one column per method: time per gradient."""
    rows = record["seed"] + record["mnist"] + record["sweep"]
    methods = [m for m in SHORT_NAMES if any(r["method"] == m for r in rows)]
    lines = [
        "| size | " + " | ".join(SHORT_NAMES[m] for m in methods) + " |",
        "| --- | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for size in dict.fromkeys(r["size"] for r in rows):
        times = {r["method"]: r["us"] for r in rows if r["size"] == size}
        cells = [format_time(times[m]) if m in times else "-" for m in methods]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return lines


def layers_against_equations(rows: list[dict]) -> list[str]:
    """Per size: the [[layers]] spec's module and the same network's equation
    spec's module, side by side."""
    lines = [
        "## A [[layers]] spec and the same network as equations",
        "",
        "| size | [[layers]] | as equations | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for size in dict.fromkeys(r["size"] for r in rows):
        us = {r["method"]: r["us"] for r in rows if r["size"] == size}
        if "derive, as equations" in us:
            layers, equations = us["derive, vectorized"], us["derive, as equations"]
            lines.append(
                f"| {size} | {format_time(layers)} | {format_time(equations)} "
                f"| {equations / layers:.3f}x |"
            )
    return lines


def markdown(record: dict) -> str:
    """The results as Markdown tables."""
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in record["machine"].items()]
    lines += ["", "## Summary: time per gradient of every parameter", ""]
    lines += summary(record)
    rows = record["seed"] + record["mnist"] + record["sweep"]
    for title, key in (
        ("The seed network", "seed"),
        ("MNIST-sized networks", "mnist"),
        ("Width sweep", "sweep"),
    ):
        if record.get(key):
            lines += ["", f"## {title}", "", *_gradient_table(record[key])]
    lines += [
        "",
        "## The array_api target: one module, NumPy arrays and torch tensors",
        "",
        *array_api.table(rows),
    ]
    lines += ["", *layers_against_equations(rows)]
    if record.get("past_memory"):
        lines += ["", *past_memory.table(record["past_memory"])]
    if record.get("jax_compile"):
        lines += ["", "## jax compile time (apart from the per-call times above)", ""]
        lines += [
            f"- {size}: {seconds:.2f} s"
            for size, seconds in record["jax_compile"].items()
        ]
    lines += [
        "",
        "## Derivation time: spec to files written",
        "",
        "| style | depth | width | time | vs the narrowest at this depth |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    narrowest: dict[tuple[str, int], float] = {}
    for row in record["derivation"]:
        key = (row["style"], row["depth"])
        base = narrowest.setdefault(key, row["seconds"])
        same_depth = sum(
            1 for r in record["derivation"] if (r["style"], r["depth"]) == key
        )
        ratio = f"{row['seconds'] / base:.2f}x" if same_depth > 1 else "-"
        lines.append(
            f"| {row['style']} | {row['depth']} | {row['width']} "
            f"| {row['seconds']:.2f} s | {ratio} |"
        )
    if record.get("attention"):
        lines += attention.markdown(record["attention"], record["attention_derivation"])
    if record.get("verification"):
        lines += ["", *verification.table(record["verification"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, to check it runs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the results (default: benchmarks/results; none with --quick)",
    )
    parser.add_argument(
        "--past-memory-gib",
        type=float,
        default=None,
        help="size of the on-disk dataset for the Dask run (default 4; 0.01 with "
        "--quick; 0 skips it)",
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="the seed network only; results in seed.json and seed.md",
    )
    parser.add_argument(
        "--verification",
        action="store_true",
        help="what verifying each committed spec's module costs; results in "
        "verification.json and verification.md",
    )
    arguments = parser.parse_args(argv)
    if arguments.seed:
        return _seed_only(arguments.out or RESULTS)
    if arguments.verification:
        return _verification_only(arguments.out or RESULTS)
    gib = arguments.past_memory_gib
    if gib is None:
        gib = 0.01 if arguments.quick else 4.0
    if arguments.quick:
        seconds, turns, pause = 0.01, 2, 0.0
        mnist, sweep = QUICK_SIZES, (sweep_size(3),)
        derivation_points = derivation_time.points(
            widths=(4, 64), depths=(2,), unrolled_widths=(3,), unrolled_depths=(2,)
        )
        attention_size, attention_repeats = attention.QUICK, 1
    else:
        seconds, turns, pause = 0.25, 5, 0.5
        mnist, sweep = MNIST_SIZES, tuple(sweep_size(w) for w in SWEEP_WIDTHS)
        derivation_points = derivation_time.points()
        attention_size, attention_repeats = attention.FULL, 3
    compiled = mnist + sweep if installed("jax") else ()
    # On a terminal: which size and method runs now, and how many pieces there are
    # (the attention block and its derivation time are the last two).
    with StatusLine("benchmarks: ") as status:
        checked = verification.quick_specs() if arguments.quick else None
        total = len(derivation_points) + 1 + len(mnist) + len(sweep) + len(compiled) + 2
        total += len(checked or verification.all_specs())
        progress = Progress(status, total)
        derivation = derivation_time.run(derivation_points, progress)
        record = {
            "machine": machine(),
            "seed": gradient_speed.run_seed(seconds, turns, pause, progress),
            "mnist": gradient_speed.run(mnist, seconds, turns, pause, progress),
            "sweep": gradient_speed.run(sweep, seconds, turns, pause, progress),
            "jax_compile": gradient_speed.jax_compile_seconds(compiled, progress),
            "derivation": derivation,
            # the attention block's turns are twice as long: its calls take milliseconds
            "attention": attention.run(
                attention_size, 2 * seconds, turns + 2, pause, progress
            ),
            "attention_derivation": attention.derivation_seconds(
                repeats=attention_repeats, progress=progress
            ),
            "verification": verification.run(
                checked, repeats=1 if arguments.quick else 3, progress=progress
            ),
            "past_memory": (
                past_memory.run(
                    gib, rows_per_chunk=1024 if arguments.quick else 1 << 15
                )
                if gib and installed("distributed")
                else {}
            ),
        }
    table = markdown(record)
    print(table)
    out = arguments.out if arguments.out or arguments.quick else RESULTS
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / "latest.md").write_text(table)
        if installed("matplotlib"):
            title = f"Gradient of every parameter, {os.cpu_count()} cores, numpy {np.__version__}"
            plot_sweep(record["sweep"], out / "sweep.png", title)
    return 0


def _seed_only(out: Path) -> int:
    """The seed network's table alone: the cost of each call at the smallest size,
    where argument checks weigh the most."""
    record = {"machine": machine(), "seed": gradient_speed.run_seed()}
    table = "\n".join(["## The seed network", "", *_gradient_table(record["seed"])])
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seed.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "seed.md").write_text(table + "\n")
    return 0


def _verification_only(out: Path) -> int:
    """The cost of verifying each committed spec's module, alone."""
    record = {"machine": machine(), "verification": verification.run()}
    table = "\n".join(verification.table(record["verification"]))
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verification.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "verification.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
