"""Time several ways of doing the same job, side by side in one process.

Each method gets long turns (many calls in a row), and the turns rotate: on two cores,
NumPy's and torch's thread pools fight when they alternate call by call. After each
turn the process sleeps a moment, so that the worker threads the last library left
spinning (OpenBLAS's, OpenMP's, XLA's) go idle before the next library starts. The
result per method is its best turn's mean time per call: the host has slow phases of
about 2x that can fall on one method's turns, and the best turn is the least
disturbed. Compare methods by their ratios, since the host's speed drifts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from derive.progress import Status, quiet


class Progress:
    """Which piece of the benchmarks is running, and how many there are, said on a
    status line (which shows only on a terminal)."""

    def __init__(self, status: Status, total: int) -> None:
        self.status = status
        self.total = total
        self.done = 0

    def next(self, label: str) -> Status:
        """Start the next piece; return what tells how it goes."""
        self.done += 1
        prefix = f"[{self.done}/{self.total}] {label}"
        self.status(prefix)
        return lambda detail: self.status(f"{prefix}: {detail}")


def step(progress: Progress | None, label: str) -> Status:
    """``progress.next(label)``, or a status that says nothing without progress."""
    return progress.next(label) if progress is not None else quiet


def calls_per_turn(function: Callable[[], object], seconds: float) -> int:
    """How many calls of ``function`` take about ``seconds``."""
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4 or count >= 1 << 20:
            return max(1, int(count * seconds / max(elapsed, 1e-9)))
        count *= 4


def compare(
    methods: Mapping[str, Callable[[], object]],
    seconds_per_turn: float = 0.2,
    turns: int = 7,
    pause: float = 0.5,
    status: Status = quiet,
) -> dict[str, float]:
    """Seconds per call of each method in its best turn, the turns rotating;
    ``status`` is told which method and turn is running."""
    samples = turn_samples(methods, seconds_per_turn, turns, pause, status)
    return {name: min(values) for name, values in samples.items()}


def turn_samples(
    methods: Mapping[str, Callable[[], object]],
    seconds_per_turn: float = 0.2,
    turns: int = 7,
    pause: float = 0.5,
    status: Status = quiet,
) -> dict[str, list[float]]:
    """Seconds per call of each method in each of its turns, the turns rotating;
    ``status`` is told which method and turn is running."""
    status("warming up")
    for function in methods.values():  # warm up caches, JIT, thread pools
        function()
    counts = {}
    for name, function in methods.items():
        status(f"{name}, calls per turn")
        counts[name] = calls_per_turn(function, seconds_per_turn)
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for turn in range(turns):
        for name, function in methods.items():
            status(f"{name}, turn {turn + 1} of {turns}")
            count = counts[name]
            start = time.perf_counter()
            for _ in range(count):
                function()
            samples[name].append((time.perf_counter() - start) / count)
            time.sleep(pause)
    return samples


def format_time(us: float) -> str:
    """Microseconds as a table shows them."""
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} us"
