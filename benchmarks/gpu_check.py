"""The ``array_api`` target on a GPU: torch CUDA tensors and CuPy arrays.

    python -m benchmarks.gpu_check

For a machine with an NVIDIA GPU and torch (a CUDA build) and/or CuPy installed; it
checks what ``tests/test_array_api.py`` checks on the CPU, on ``cuda`` devices:

- every example spec generated with ``target = "array_api"``: torch CUDA tensors in
  (float64 and float32), torch CUDA tensors out, on the same device, equal to torch
  autograd's gradients of the module's own loss (float64 to 1e-10 relative);
- the same on CuPy arrays: CuPy arrays out, equal to the ``numpy`` target's gradients
  on the host (float64, 1e-12 relative);

then times the module on CUDA tensors against torch's ``loss.backward()`` on the same
device, at the sizes of ``python -m benchmarks``. It exits 1 if any check fails, and
says which library or device it could not find. Not run where there is no GPU (see the
README).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.networks import (
    MNIST_SIZES,
    SWEEP_WIDTHS,
    Size,
    generated_module,
    import_file,
    module_of_spec,
    problem,
    sweep_size,
)
from benchmarks.peers import _torch_loss, installed

ROOT = Path(__file__).resolve().parent.parent


def example_modules() -> dict[str, tuple[Any, Any]]:
    """Per example spec in the vectorized style: (numpy module, array_api module)."""
    found = {}
    for path in sorted((ROOT / "specs").glob("*.toml")):
        text = path.read_text()
        if (
            'style = "unrolled"' in text
            or 'target = "array_api"' in text
            or "[equations]" in text
        ):
            continue
        name = re.search(r'^name = "(\w+)"$', text, flags=re.M)
        assert name is not None
        numpy_module = import_file(ROOT / "generated" / f"{name[1]}.py", name[1])
        xp_text = text.replace(name[0], f'name = "{name[1]}_xp"\ntarget = "array_api"')
        found[name[1]] = (numpy_module, module_of_spec(xp_text, f"{name[1]}_xp"))
    return found


def random_problem(module: Any, rng: np.random.Generator, batch: int = 16) -> tuple:
    params = {n: rng.standard_normal(s) for n, s in module.PARAMETER_SHAPES.items()}
    if module.INPUT_SHAPE == ():
        return (
            params,
            np.asarray(rng.standard_normal()),
            np.asarray(rng.standard_normal()),
        )
    x = rng.standard_normal((batch, module.INPUT_SHAPE[1]))
    classes = module.OUTPUT_SHAPE[1]
    if hasattr(module, "logsumexp"):
        y = np.eye(classes)[rng.integers(0, classes, batch)]
    else:
        y = rng.standard_normal((batch, classes))
    return params, x, y


def relative_error(got: Any, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-300))


def check_torch(modules: dict, failures: list[str], device: Any) -> None:
    import torch

    for name, (_, module) in modules.items():
        for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
            params, x, y = random_problem(module, np.random.default_rng(0))
            leaves = {
                k: torch.tensor(v, dtype=dtype, device=device).requires_grad_()
                for k, v in params.items()
            }
            xt, yt = (torch.tensor(a, dtype=dtype, device=device) for a in (x, y))
            loss = module.loss(leaves, xt, yt)
            expected = dict(
                zip(
                    leaves,
                    torch.autograd.grad(loss, list(leaves.values())),
                    strict=True,
                )
            )
            got = module.gradients({k: v.detach() for k, v in leaves.items()}, xt, yt)
            for key, value in got.items():
                where = f"torch {name} {dtype} {key}"
                if not (
                    isinstance(value, torch.Tensor) and value.device.type == device.type
                ):
                    failures.append(f"{where}: got {type(value).__name__} off {device}")
                    continue
                if value.dtype != dtype:
                    failures.append(f"{where}: dtype {value.dtype}")
                error = relative_error(
                    value.double().cpu().numpy(), expected[key].double().cpu().numpy()
                )
                status = "ok" if error <= tolerance else "FAILED"
                print(f"{where}: relative error {error:.1e} {status}")
                if error > tolerance:
                    failures.append(f"{where}: relative error {error:.1e}")


def check_cupy(modules: dict, failures: list[str]) -> None:
    import cupy

    for name, (numpy_module, module) in modules.items():
        params, x, y = random_problem(module, np.random.default_rng(1))
        expected = numpy_module.gradients(params, x, y)
        got = module.gradients(
            {k: cupy.asarray(v) for k, v in params.items()},
            cupy.asarray(x),
            cupy.asarray(y),
        )
        for key, value in got.items():
            where = f"cupy {name} {key}"
            if not isinstance(value, cupy.ndarray):
                failures.append(f"{where}: got {type(value).__name__}")
                continue
            error = relative_error(cupy.asnumpy(value), np.asarray(expected[key]))
            print(
                f"{where}: relative error {error:.1e} {'ok' if error <= 1e-12 else 'FAILED'}"
            )
            if error > 1e-12:
                failures.append(f"{where}: relative error {error:.1e}")


def best_seconds(function: Callable[[], Any], synchronize: Callable[[], None]) -> float:
    """Best mean time per call over five turns of about 0.2 s."""
    import time

    function()
    synchronize()
    count, elapsed = 1, 0.0
    while elapsed < 0.05:
        start = time.perf_counter()
        for _ in range(count):
            function()
        synchronize()
        elapsed = time.perf_counter() - start
        count *= 2
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            function()
        synchronize()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def time_torch(sizes: tuple[Size, ...], device: Any) -> None:
    import torch

    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    print(
        f"\n| size | array_api module, {device} tensors | torch loss.backward(), {device} | ratio |"
    )
    print("| --- | ---: | ---: | ---: |")
    for size in sizes:
        ours, theirs = _gradient_functions(size, device)
        mine, torch_time = (
            best_seconds(ours, synchronize),
            best_seconds(theirs, synchronize),
        )
        print(
            f"| {size.label} | {mine * 1e6:.1f} us | {torch_time * 1e6:.1f} us "
            f"| {mine / torch_time:.2f}x |"
        )


def _gradient_functions(size: Size, device: Any) -> tuple[Callable, Callable]:
    """The array_api module's gradients and torch's ``loss.backward()`` at ``size``,
    on ``device``."""
    import torch

    module = generated_module(size, target="array_api")
    params, x, y = problem(size)
    tensors = {k: torch.from_numpy(v).to(device) for k, v in params.items()}
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    leaves = {k: t.clone().requires_grad_() for k, t in tensors.items()}

    def backward() -> None:
        _torch_loss(size, leaves, xt, yt).backward()
        for t in leaves.values():
            t.grad = None

    return (lambda: module.gradients(tensors, xt, yt)), backward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__
    )
    parser.add_argument("--no-timing", action="store_true", help="only the checks")
    parser.add_argument(
        "--device",
        default="cuda",
        help="torch device (cpu runs the torch part where there is no GPU; CuPy "
        "runs with cuda only)",
    )
    arguments = parser.parse_args(argv)
    modules = example_modules()
    failures: list[str] = []
    ran = []
    if installed("torch"):
        import torch

        device = torch.device(arguments.device)
        if device.type != "cuda" or torch.cuda.is_available():
            check_torch(modules, failures, device)
            ran.append("torch")
        else:
            print("torch is installed without a CUDA device: skipped")
    else:
        print("torch is not installed: skipped")
    if arguments.device == "cuda" and installed("cupy"):
        check_cupy(modules, failures)
        ran.append("cupy")
    elif arguments.device == "cuda":
        print("cupy is not installed: skipped")
    if not ran:
        print("no GPU library found: nothing was checked")
        return 1
    if "torch" in ran and not arguments.no_timing:
        time_torch((*MNIST_SIZES, *(sweep_size(w) for w in SWEEP_WIDTHS)), device)
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
