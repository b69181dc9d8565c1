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


def test_a_condition_an_operation_means_is_kept():
    """A concatenation's index form picks a part by a condition on the index: only
    conditions that the index's own range implies are dropped."""
    a, b = sp.IndexedBase("a"), sp.IndexedBase("b")
    n_a, n_b = sp.symbols("n_a n_b", integer=True, positive=True)
    concatenated = sp.Piecewise((a[i], i < n_a), (b[i - n_a], True))
    assert collapse(concatenated, {i: n_a + n_b}) == concatenated
    in_range = sp.Piecewise((a[i], (i >= 0) & (i <= n_a + n_b - 1)), (0, True))
    assert collapse(in_range, {i: n_a + n_b}) == a[i]
    assert collapse(in_range, {i: n_a + n_b + 1}) == in_range  # i may be out of it


def test_a_sum_of_a_term_without_the_index_counts_its_terms():
    assert collapse(sp.Sum(h[k], (i, 0, n - 1)), {k: n}) == n * h[k]
    assert collapse(sp.Sum(g[i], (i, 0, 0)), {}) == g[0]  # a kept length-1 axis
