"""The width sweep as a picture: time per gradient against width, one line per method."""

from __future__ import annotations

from pathlib import Path


def plot_sweep(rows: list[dict], path: Path, title: str) -> None:
    """Save a log-log plot of microseconds per call against hidden width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    methods = list(dict.fromkeys(row["method"] for row in rows))
    for method in methods:
        points = sorted((r["width"], r["us"]) for r in rows if r["method"] == method)
        widths, times = zip(*points, strict=True)
        style = "-o" if method.startswith("derive") else "--."
        axes.plot(
            widths, times, style, label=method, linewidth=2 if style == "-o" else 1
        )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("hidden width w (network 32-w-w-1, batch 32, float32)")
    axes.set_ylabel("time per gradient (us)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    # A fixed creation date keeps the PNG the same when the numbers are.
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
