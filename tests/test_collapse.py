"""The collapse pass drops index-range Piecewise only, then evaluates the sums."""

from __future__ import annotations

import sympy as sp

from derive.passes.collapse import collapse

i, k, p, q = sp.symbols("i k p q", integer=True)
n = sp.Symbol("n", integer=True, positive=True)
W, h, g = (sp.IndexedBase(name) for name in ("W", "h", "g"))


def test_outer_sum_collapses_after_differentiation():
    local = sp.diff(sp.Sum(W[i, k] * h[k], (k, 0, n - 1)), W[p, q])
    result = collapse(sp.Sum(g[i] * local, (i, 0, n - 1)), {p: n, q: n})
    assert result == g[p] * h[q]


def test_a_piecewise_on_values_is_kept():
    gate = sp.Piecewise((h[k], h[k] > 0), (0, True))
    assert collapse(gate, {k: n}) == gate
