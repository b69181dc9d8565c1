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
    unrolled_depths: tuple[int, ...] = (6, 10),
) -> list[dict]:
    """Rows of (style, depth, width, seconds): vectorized against width at each depth;
    unrolled against width at depth 3, then against depth at width 4."""
    points = [("vectorized", d, w) for d in depths for w in widths]
    points += [("unrolled", 3, w) for w in unrolled_widths]
    points += [("unrolled", d, 4) for d in unrolled_depths]
    rows = []
    for style, depth, width in points:
        repeats = 3 if style == "vectorized" else 1
        seconds = seconds_to_generate(network(width, depth), style, repeats)
        rows.append(
            {"style": style, "depth": depth, "width": width, "seconds": seconds}
        )
    return rows
