"""Collapse index-form sums after differentiation.

Differentiating ``Sum(W[i, k] * h[k], (k, 0, n - 1))`` with respect to ``W[p, q]``
gives ``Piecewise((KroneckerDelta(i, p) * h[q], (q >= 0) & (q <= n - 1)), (0, True))``.
The condition only says that ``q`` is a valid index, which it always is here, but it
stops the enclosing sum from collapsing. This pass drops exactly those Piecewise whose
conditions mention nothing but index and size symbols (a ReLU gate written as a
Piecewise would mention a value, and is kept), then lets SymPy evaluate the sums,
until nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp


def collapse(expr: sp.Expr, index_symbols: Iterable[sp.Symbol]) -> sp.Expr:
    """Evaluate ``expr``'s sums, treating index-range conditions as true."""
    allowed = frozenset(index_symbols)

    def is_range_check(piecewise: sp.Basic) -> bool:
        if not isinstance(piecewise, sp.Piecewise):
            return False
        conditions = [cond for _, cond in piecewise.args if cond is not sp.true]
        return all(cond.free_symbols <= allowed for cond in conditions)

    expr = _deltas_first(expr).doit()
    while True:
        folded = sp.piecewise_fold(expr)
        reduced = folded.replace(is_range_check, lambda pw: pw.args[0][0]).doit()
        if reduced == expr:
            return expr
        expr = reduced


def _deltas_first(expr: sp.Expr) -> sp.Expr:
    """Sums with the indices that a ``KroneckerDelta`` pins down summed first
    (innermost), so that the delta collapses them before SymPy meets the others:
    ``Sum(delta(i, j)*y[j, m], (m, ...), (j, ...))`` sums over ``j`` first."""

    def is_mixed(e: sp.Basic) -> bool:
        return isinstance(e, sp.Sum) and len(e.limits) > 1 and e.has(sp.KroneckerDelta)

    def reordered(e: sp.Sum) -> sp.Expr:
        pinned = {
            s
            for delta in e.function.atoms(sp.KroneckerDelta)
            for s in delta.free_symbols
        }
        limits = sorted(e.limits, key=lambda limit: limit[0] not in pinned)
        return sp.Sum(e.function, *limits)

    return expr.replace(is_mixed, reordered)
