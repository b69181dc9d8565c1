"""Derivation time: from a spec to files written, against width and depth."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from benchmarks.networks import Size, spec_text
from benchmarks.timing import Progress, step
from derive.cli import main


def seconds_to_generate(size: Size, style: str, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``derive SPEC --out DIR``, in this process."""
    folder = Path(tempfile.mkdtemp(prefix="derive-bench-"))
    spec = folder / "net.toml"
    spec.write_text(spec_text(size, style, name="net"))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        # Quiet: its list of files, and its own status line (stderr is no terminal).
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
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


#: One derivation-time measurement: style, depth, width.
Point = tuple[str, int, int]


def points(
    widths: tuple[int, ...] = (4, 64, 1024, 4096),
    depths: tuple[int, ...] = (3, 10),
    unrolled_widths: tuple[int, ...] = (3, 8, 16),
    unrolled_depths: tuple[int, ...] = (6, 10),
) -> list[Point]:
    """Vectorized against width at each depth; unrolled against width at depth 3,
    then against depth at width 4."""
    found = [("vectorized", d, w) for d in depths for w in widths]
    found += [("unrolled", 3, w) for w in unrolled_widths]
    found += [("unrolled", d, 4) for d in unrolled_depths]
    return found


def run(
    measured: list[Point] | None = None, progress: Progress | None = None
) -> list[dict]:
    """Rows of (style, depth, width, seconds), one per point (default: :func:`points`)."""
    rows = []
    for style, depth, width in measured if measured is not None else points():
        step(progress, f"derivation time, {style}, depth {depth}, width {width}")
        repeats = 3 if style == "vectorized" else 1
        seconds = seconds_to_generate(network(width, depth), style, repeats)
        rows.append(
            {"style": style, "depth": depth, "width": width, "seconds": seconds}
        )
    return rows
