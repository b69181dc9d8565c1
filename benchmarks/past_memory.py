"""Past memory: gradients of ``specs/mnist_classifier.toml`` over a dataset on disk that
is larger than the memory its Dask workers may use.

    python -m benchmarks.past_memory                # 4 GiB of float32 samples
    python -m benchmarks.past_memory --gib 0.05     # a quick run

The samples are a memory-mapped ``.npy`` file (float32, 784 per row) with integer class
labels beside it. The same module, generated with ``target = "array_api"``, runs on
Dask arrays chunked along the batch on a ``dask.distributed.LocalCluster`` (process
workers, each with a memory limit), and its gradients are checked against the
``numpy`` target's run chunk by chunk in one process over the same file (the mean
over the dataset is the chunks' means weighted by their sizes). Reported: samples per
second for both, and the peak resident memory of each worker and of the NumPy process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "mnist_classifier.toml"
FEATURES, CLASSES = 784, 10
GIB = 1 << 30


class NpyFile:
    """A ``.npy`` file read in slices: it pickles as its path, so each Dask worker
    maps the file itself, copies out only the rows of its chunk and unmaps it (a
    mapping left open would count every page it touched as resident memory)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        array = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[key])


def write_dataset(folder: Path, gib: float, seed: int = 0) -> tuple[Path, Path]:
    """``x.npy`` (float32 rows of 784, ``gib`` GiB) and ``y.npy`` (int64 labels),
    written block by block with plain writes, so that this process never holds the
    whole (a writable memory map would count the file in its resident memory)."""
    rows = max(int(gib * GIB) // (FEATURES * 4), 1)
    x_path, y_path = folder / "x.npy", folder / "y.npy"
    rng = np.random.default_rng(seed)
    block = 1 << 16
    with open(x_path, "wb") as x, open(y_path, "wb") as y:
        for file, dtype, shape in (
            (x, np.float32, (rows, FEATURES)),
            (y, np.int64, (rows,)),
        ):
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                "fortran_order": False,
                "shape": shape,
            }
            np.lib.format.write_array_header_1_0(file, header)
        for start in range(0, rows, block):
            count = min(block, rows - start)
            x.write(rng.random((count, FEATURES), dtype=np.float32).tobytes())
            y.write(rng.integers(0, CLASSES, count, dtype=np.int64).tobytes())
    return x_path, y_path


def parameters(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W0": (rng.standard_normal((128, FEATURES)) * np.sqrt(2 / FEATURES)).astype(
            np.float32
        ),
        "b0": np.zeros(128, np.float32),
        "W1": (rng.standard_normal((CLASSES, 128)) * np.sqrt(2 / 128)).astype(
            np.float32
        ),
        "b1": np.zeros(CLASSES, np.float32),
    }


def numpy_chunk_by_chunk(
    x_path: str, y_path: str, rows_per_chunk: int, queue: Any
) -> None:
    """In a child process: the numpy target's gradients over the file, one chunk at a
    time, accumulated in float64; puts (gradients, seconds, peak RSS bytes)."""
    import importlib.util  # not benchmarks.networks: that imports derive and SymPy

    found = importlib.util.spec_from_file_location(
        "past_memory_numpy", ROOT / "generated" / "mnist_classifier.py"
    )
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    params = parameters()
    x, y = NpyFile(Path(x_path)), NpyFile(Path(y_path))
    rows = x.shape[0]
    total = {k: np.zeros(v.shape) for k, v in params.items()}
    start = time.perf_counter()
    for begin in range(0, rows, rows_per_chunk):
        xs = x[begin : begin + rows_per_chunk]
        ys = y[begin : begin + rows_per_chunk]
        for name, value in module.gradients(params, xs, ys).items():
            total[name] += value * (len(xs) / rows)
    seconds = time.perf_counter() - start
    queue.put((total, seconds, _peak_rss()))


def _peak_rss() -> int:
    """This process's peak resident memory in bytes: Linux's VmHWM, which starts
    afresh in a new process (``ru_maxrss`` carries the parent's peak over a fork)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(
    gib: float = 4.0,
    workers: int = 2,
    memory_limit: str = "1GiB",
    rows_per_chunk: int = 1 << 15,
    folder: Path | None = None,
) -> dict:
    """Write the dataset, run both ways, check them equal, and return the figures."""
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    from benchmarks.networks import module_of_spec

    own_folder = folder is None
    folder = (
        Path(tempfile.mkdtemp(prefix="derive-past-memory-")) if own_folder else folder
    )
    try:
        x_path, y_path = write_dataset(folder, gib)
        rows = int(np.load(x_path, mmap_mode="r").shape[0])
        module = module_of_spec(
            SPEC.read_text().replace(
                'name = "mnist_classifier"',
                'name = "past_memory_array_api"\ntarget = "array_api"',
            ),
            "past_memory_array_api",
        )
        params = parameters()
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(
            target=numpy_chunk_by_chunk,
            args=(str(x_path), str(y_path), rows_per_chunk, queue),
        )
        child.start()
        expected, numpy_seconds, numpy_peak = queue.get()
        child.join()

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=memory_limit,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            x = da.from_array(NpyFile(x_path), chunks=(rows_per_chunk, FEATURES))
            y = da.from_array(NpyFile(y_path), chunks=(rows_per_chunk,))
            baseline = client.run(_peak_rss)  # imports, before any data
            start = time.perf_counter()
            lazy = module.gradients(params, x, y)
            (got,) = client.compute([lazy], sync=True)
            dask_seconds = time.perf_counter() - start
            peaks = client.run(_peak_rss)
            limit = cluster.workers[next(iter(cluster.workers))].memory_manager
            limit_bytes = int(limit.memory_limit)
        difference = max(
            float(np.max(np.abs(got[k] - expected[k])) / np.max(np.abs(expected[k])))
            for k in expected
        )
        assert difference < 1e-4, f"Dask and NumPy gradients differ by {difference:.1e}"
        return {
            "dataset_bytes": rows * FEATURES * 4,
            "samples": rows,
            "rows_per_chunk": rows_per_chunk,
            "workers": workers,
            "worker_memory_limit_bytes": limit_bytes,
            "dask_seconds": dask_seconds,
            "numpy_seconds": numpy_seconds,
            "dask_samples_per_second": rows / dask_seconds,
            "numpy_samples_per_second": rows / numpy_seconds,
            "worker_peak_bytes": [peaks[w] for w in sorted(peaks)],
            "worker_start_bytes": [baseline[w] for w in sorted(peaks)],
            "numpy_peak_bytes": numpy_peak,
            "max_relative_difference": difference,
        }
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)


def table(record: dict) -> list[str]:
    """The figures as Markdown."""
    mib = 1 << 20
    peaks = ", ".join(
        f"{peak / mib:.0f} (from {start / mib:.0f} at start)"
        for peak, start in zip(
            record["worker_peak_bytes"], record["worker_start_bytes"], strict=True
        )
    )
    return [
        "## Past memory: mnist_classifier over a dataset on disk, through Dask",
        "",
        f"{record['samples']:,} samples of 784 float32 ({record['dataset_bytes'] / GIB:.2f}"
        f" GiB, memory-mapped .npy), chunks of {record['rows_per_chunk']:,} rows; "
        f"{record['workers']} Dask process workers limited to "
        f"{record['worker_memory_limit_bytes'] / GIB:.2f} GiB each. Gradients equal to"
        f" the chunk-by-chunk NumPy result within {record['max_relative_difference']:.1e}"
        " (largest difference over the largest element, float32).",
        "",
        "| run | samples/s | peak resident memory (MiB) |",
        "| --- | ---: | ---: |",
        f"| array_api module on Dask, {record['workers']} workers "
        f"| {record['dask_samples_per_second']:,.0f} | {peaks} (per worker) |",
        f"| numpy module, chunk by chunk, one process "
        f"| {record['numpy_samples_per_second']:,.0f} "
        f"| {record['numpy_peak_bytes'] / mib:.0f} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.past_memory", description=__doc__
    )
    parser.add_argument("--gib", type=float, default=4.0, help="dataset size in GiB")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB", help="per Dask worker")
    parser.add_argument("--rows-per-chunk", type=int, default=1 << 15)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args(argv)
    record = run(
        arguments.gib,
        arguments.workers,
        arguments.memory_limit,
        arguments.rows_per_chunk,
    )
    print("\n".join(table(record)))
    if arguments.json:
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
