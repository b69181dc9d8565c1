"""Derivation time: from a spec to files written, against width and depth."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from benchmarks.networks import Size, spec_text
from derive.cli import main


def seconds_to_generate(size: Size, style: str, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``derive SPEC --out DIR``, in this process."""
    folder = Path(tempfile.mkdtemp(prefix="derive-bench-"))
    spec = folder / "net.toml"
    spec.write_text(spec_text(size, style, name="net"))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            status = main([str(spec), "--out", str(folder / "out")])
        best = min(best, time.perf_counter() - start)
        assert status == 0
    return best


def network(width: int, depth: int) -> Size:
    """``depth`` layers: width-wide ReLU layers and a 10-class softmax output."""
    return Size(
        f"depth {depth}, width {width}",
        (width,) * depth + (10,),
        1,
        "softmax_cross_entropy",
        "float64",
    )


def run(
    widths: tuple[int, ...] = (4, 64, 1024, 4096),
    depths: tuple[int, ...] = (3, 10),
    unrolled_widths: tuple[int, ...] = (3, 8, 16),
) -> list[dict]:
    """Rows of (style, depth, width, seconds); the vectorized ones interleaved so
    that drift in the host's speed affects every width alike."""
    rows = []
    for depth in depths:
        for width in widths:
            seconds = seconds_to_generate(network(width, depth), "vectorized")
            rows.append(
                {
                    "style": "vectorized",
                    "depth": depth,
                    "width": width,
                    "seconds": seconds,
                }
            )
    for width in unrolled_widths:
        size = network(width, 3)
        seconds = seconds_to_generate(size, "unrolled", repeats=1)
        rows.append(
            {"style": "unrolled", "depth": 3, "width": width, "seconds": seconds}
        )
    return rows
