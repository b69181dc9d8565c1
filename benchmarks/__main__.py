"""Run the benchmarks and print (and save) their tables.

python -m benchmarks              # everything, a few minutes
python -m benchmarks --quick      # tiny sizes, seconds: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from benchmarks import derivation_time, gradient_speed
from benchmarks.networks import MNIST_SIZES, Size

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_SIZES = (
    Size("8-16-16-10, batch 4", (8, 16, 16, 10), 4, "softmax_cross_entropy", "float32"),
)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    blas = ""
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '')} {info.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 (the BLAS name is informative only)
        blas = "unknown"
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "processor": platform.processor() or platform.machine(),
    }


def markdown(gradients: list[dict], derivation: list[dict]) -> str:
    lines = [
        "| size | method | time per call | vs hand-written NumPy | vs matmul limit |"
    ]
    lines.append("| --- | --- | ---: | ---: | ---: |")
    for row in gradients:
        lines.append(
            f"| {row['size']} | {row['method']} | {row['us']:.0f} us "
            f"| {row['vs_hand']:.2f}x | {row['vs_limit']:.2f}x |"
        )
    lines += [
        "",
        "| style | depth | width | spec to files written | vs the narrowest |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    narrowest: dict[tuple[str, int], float] = {}
    for row in derivation:
        base = narrowest.setdefault((row["style"], row["depth"]), row["seconds"])
        lines.append(
            f"| {row['style']} | {row['depth']} | {row['width']} "
            f"| {row['seconds']:.2f} s | {row['seconds'] / base:.2f}x |"
        )
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
        help="folder for the results (default: benchmarks/results, or none with --quick)",
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        gradients = gradient_speed.run(QUICK_SIZES, seconds=0.01, turns=2)
        derivation = derivation_time.run(
            widths=(4, 64), depths=(2,), unrolled_widths=(3,)
        )
    else:
        gradients = gradient_speed.run(MNIST_SIZES)
        derivation = derivation_time.run()
    table = markdown(gradients, derivation)
    print(table)
    out = arguments.out if arguments.out or arguments.quick else RESULTS
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "machine": machine(),
            "gradients": gradients,
            "derivation": derivation,
        }
        (out / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / "latest.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
