"""The attention benchmark's hand-written NumPy backward pass is right: it equals torch
autograd (through the equation reference, on the committed attention spec) in
float64 to 1e-10, and the benchmark's sizes are the spec's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks import attention
from tests.equation_reference import evaluate, load_equation_spec, parse_equation_spec


def _reference(size: attention.AttentionSize, seed: int):
    params, x, y = attention.problem(size, seed)
    spec = parse_equation_spec(
        attention.spec_text(size.tokens, size.d_model, size.d_k), "attention.toml"
    )
    return params, x, y, evaluate(spec, params, {"x": x, "y": y})


@pytest.mark.parametrize(
    "size",
    [
        dataclasses.replace(attention.FULL, dtype="float64"),
        attention.AttentionSize("odd sizes", 3, 5, 7, 4, "float64"),
        attention.AttentionSize("one token", 2, 1, 3, 2, "float64"),
    ],
    ids=lambda s: (
        f"batch {s.batch}, {s.tokens} tokens, d_model {s.d_model}, d_k {s.d_k}"
    ),
)
def test_hand_written_backward_equals_torch_autograd(size):
    params, x, y, expected = _reference(size, seed=1)
    got = attention.numpy_gradients(params, x, y)
    assert got.keys() == expected.gradients.keys()
    for name, value in expected.gradients.items():
        assert got[name].shape == value.shape, name
        scale = np.max(np.abs(value))
        np.testing.assert_allclose(
            got[name], value, rtol=1e-10, atol=1e-10 * scale, err_msg=name
        )


def test_hand_written_backward_keeps_float32():
    params, x, y = attention.problem(attention.QUICK)
    for name, value in attention.numpy_gradients(params, x, y).items():
        assert value.dtype == np.float32, name


def test_benchmark_sizes_are_the_committed_specs():
    spec = load_equation_spec(attention.spec_path())
    full = attention.FULL
    assert spec.sizes == {
        "tokens": full.tokens,
        "d_model": full.d_model,
        "d_k": full.d_k,
    }
    assert (full.batch, full.dtype) == (32, "float32")
    rewritten = parse_equation_spec(
        attention.spec_text(full.tokens, full.d_model, full.d_k), "rewritten.toml"
    )
    assert rewritten.formulas == spec.formulas
    assert rewritten.inputs == spec.inputs and rewritten.parameters == spec.parameters
    assert rewritten.description == spec.description
