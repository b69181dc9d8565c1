"""The benchmark script still runs (at a tiny size); its numbers are not checked here:
speed is measured by ``python -m benchmarks``, not by timed tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # runs every benchmark
def test_benchmarks_run_at_a_tiny_size(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "benchmarks: [" not in result.stderr  # progress only on a terminal
    record = json.loads((tmp_path / "latest.json").read_text())
    rows = record["seed"] + record["mnist"] + record["sweep"]
    methods = {row["method"] for row in rows}
    assert {
        "derive, vectorized",
        "hand-written NumPy",
        "matmul limit (NumPy)",
    } <= methods
    assert {"derive, unrolled", "hand-written scalar Python"} <= methods
    assert "torch loss.backward()" in methods  # torch is installed with the tests
    assert {
        "derive array_api, NumPy arrays",
        "derive array_api, torch tensors",
    } <= methods
    past_memory = record["past_memory"]
    assert past_memory["samples"] > past_memory["rows_per_chunk"]
    assert past_memory["max_relative_difference"] < 1e-4
    assert all(peak > 0 for peak in past_memory["worker_peak_bytes"])
    assert all(row["us"] > 0 for row in rows)
    assert {row["style"] for row in record["derivation"]} == {"vectorized", "unrolled"}
    attention = record["attention"]
    methods = {row["method"] for row in attention["rows"]}
    assert {"hand-written NumPy", "torch loss.backward()"} <= methods
    # derive's generated module is timed once derive builds equation specs (issue 10);
    # until then a line says why it is not
    assert "derive, generated" in methods or any(
        line.startswith("derive, generated: skipped: ") for line in attention["skipped"]
    )
    derivation = record["attention_derivation"]
    assert [row["d_model"] for row in derivation["rows"]] == [6, 512] or (
        derivation["skipped"].startswith("derivation time: skipped: ")
    )
    table = (tmp_path / "latest.md").read_text()
    assert "## Self-attention block" in table
    assert table.startswith("## Machine")
    assert "## Summary: time per gradient of every parameter" in table
    assert "## The array_api target" in table and "## Past memory" in table
    assert table in result.stdout


@pytest.mark.slow  # runs the GPU check's torch part (7 s)
def test_the_gpu_check_runs_its_torch_part_on_the_cpu():
    """benchmarks/gpu_check.py needs a GPU to mean anything; with --device cpu its
    torch comparisons run here, so that the script cannot rot."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.gpu_check",
            "--device",
            "cpu",
            "--no-timing",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    assert result.stdout.count(" ok\n") >= 40
