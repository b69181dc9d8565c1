"""The index-form to array-form pass, printed by the NumPy printer."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive.passes.to_array import AxesError, to_array
from derive.printing.numpy_code import NumPyCodePrinter

b, i, j, k = sp.symbols("b i j k", integer=True)
n = sp.Symbol("n", integer=True, positive=True)
W, h, g, x = (sp.IndexedBase(name) for name in ("W", "h", "g", "x"))
CASES = [
    (sp.Sum(W[i, k] * h[k], (k, 0, n - 1)), (i,), "W @ h"),
    (sp.Sum(W[k, i] * g[k], (k, 0, n - 1)), (i,), "g @ W"),
    (sp.Sum(W[i, k] * x[b, k], (k, 0, n - 1)), (b, i), "x @ W.T"),
    (sp.Sum(g[b, i] * x[b, j], (b, 0, n - 1)), (i, j), "g.T @ x"),
    (sp.Sum(g[b, i], (b, 0, n - 1)), (i,), "g.sum(axis=0)"),
    (sp.Sum(W[k] * h[k], (k, 0, n - 1)), (), "W @ h"),
    (g[i] * h[j], (i, j), "numpy.outer(g, h)"),
    (
        g[i] * sp.Heaviside(h[i], 0),
        (i,),
        "g*numpy.greater(h, 0).astype(numpy.result_type(h, 0.0))",
    ),
    (sp.Mul(2, g[b, i] - h[b, i], evaluate=False), (b, i), "2*(g - h)"),
    (
        sp.Sum((g[b, i] - h[b, i]) ** 2, (b, 0, n - 1), (i, 0, n - 1)),
        (),
        "numpy.sum((g - h)**2)",
    ),
]


@pytest.mark.parametrize(("expr", "axes", "code"), CASES, ids=[c for *_, c in CASES])
def test_prints_as_numpy(expr, axes, code):
    assert NumPyCodePrinter().doprint(to_array(expr, axes)) == code


@pytest.mark.parametrize(("expr", "axes", "code"), CASES, ids=[c for *_, c in CASES])
def test_printed_code_computes_the_index_form(expr, axes, code):
    """Evaluate the printed code and the index form element by element: same numbers."""
    rng = np.random.default_rng(0)
    size = 3
    arrays = {
        "W": rng.standard_normal(
            (size, size) if expr.has(W[i, k]) or expr.has(W[k, i]) else size
        ),
        "h": rng.standard_normal((size, size) if expr.has(h[b, i]) else size),
        "g": rng.standard_normal((size, size) if expr.has(g[b, i]) else size),
        "x": rng.standard_normal((size, size)),
    }
    value = eval(code, {"numpy": np, **arrays})  # code printed by our own printer
    concrete = expr.xreplace({n: size})
    for index in np.ndindex(*(size,) * len(axes)):
        element = concrete.xreplace(dict(zip(axes, index, strict=True))).doit()
        element = element.replace(
            lambda e: isinstance(e, sp.Indexed),
            lambda e: sp.Float(arrays[str(e.base)][tuple(int(v) for v in e.indices)]),
        )
        assert float(element) == pytest.approx(np.asarray(value)[index], rel=1e-12)


def test_parts_over_different_axes_broadcast_to_their_union():
    """``g[i] + h[j]`` over ``(i, j)``: ``g[:, None] + h``, as NumPy broadcasts."""
    code = NumPyCodePrinter().doprint(to_array(g[i] + h[j], (i, j)))
    assert code in ("g[:, None] + h", "h + g[:, None]"), code


def test_axes_that_are_not_wanted_are_refused():
    with pytest.raises(AxesError):
        to_array(g[i] + h[j], (i,))
