"""Collapse index-form sums after differentiation.

Differentiating ``Sum(W[i, k] * h[k], (k, 0, n - 1))`` with respect to ``W[p, q]``
gives ``Piecewise((KroneckerDelta(i, p) * h[q], (q >= 0) & (q <= n - 1)), (0, True))``.
The condition only says that ``q`` is a valid index of its own axis, which it always
is, but it stops the enclosing sum from collapsing. This pass drops exactly those
conditions: a conjunction of bounds on one index each that the index's own range
``0 <= q <= n - 1`` implies (the first piece is then the value). Any other condition
(a ReLU gate on a value, or an index compared with part of its range, as a
concatenation's ``i < n_a`` is) is kept.

Sums are evaluated here, not by ``Sum.doit()``: a term is taken out of a sum over an
index it does not read (times the number of terms), a ``KroneckerDelta`` factor on the
summed index collapses the sum (the term at the delta's other index), and any other sum
stays a sum, to be printed as a reduction. SymPy's general summation goes on to try
hypergeometric and residue methods and to factor the body, which finds nothing for
index-form bodies, costs most of a derivation's time, and on some bodies (a ``tanh``
of a layer norm) recurses until Python stops it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import sympy as sp

#: Each index symbol's axis size: the index runs from 0 to size - 1.
Ranges = Mapping[sp.Symbol, sp.Expr]


def collapse(expr: sp.Expr, ranges: Ranges) -> sp.Expr:
    """Evaluate ``expr``'s sums, dropping the conditions that only say an index is
    within its range. ``ranges`` gives the free indices' sizes; the bound indices of
    sums in ``expr`` take theirs from their limits."""
    expr = _deltas_first(expr)
    while True:
        folded = sp.piecewise_fold(_evaluated(expr))
        known = {**ranges, **_sum_ranges(folded)}
        reduced = folded.replace(
            functools.partial(_is_range_check, ranges=known), lambda pw: pw.args[0][0]
        )
        if reduced == expr:
            return expr
        expr = reduced


def _sum_ranges(expr: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
    """The sizes of the indices the sums in ``expr`` bind (from 0 to upper)."""
    found = {}
    for term in expr.atoms(sp.Sum):
        for index, lower, upper in term.limits:
            if lower == 0:
                found[index] = upper + 1
    return found


def _is_range_check(piecewise: sp.Basic, ranges: Ranges) -> bool:
    """A ``Piecewise`` whose first condition is true for every index in range (so
    its first piece is its value): ``Piecewise((f, (q >= 0) & (q <= n - 1)), (0,
    True))``, or the several pieces ``piecewise_fold`` makes of nested ones."""
    if not isinstance(piecewise, sp.Piecewise):
        return False
    condition = piecewise.args[0][1]
    if condition is sp.true:
        return True
    bounds = condition.args if isinstance(condition, sp.And) else (condition,)
    return all(_within_range(bound, ranges) for bound in bounds)


def _within_range(bound: sp.Basic, ranges: Ranges) -> bool:
    """Whether ``bound`` (``q >= 0``, ``q <= n - 1``, ...) holds for every ``q`` from
    0 to its size - 1: it reads one index, linearly, and holds at both ends."""
    if not isinstance(bound, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return False
    indices = [s for s in bound.free_symbols if s in ranges]
    if len(indices) != 1:
        return False
    (index,) = indices
    gap = bound.lhs - bound.rhs
    if not gap.is_polynomial(index) or sp.degree(gap, index) > 1:
        return False
    ends = (sp.Integer(0), ranges[index] - 1)
    return all(_holds(bound.xreplace({index: end})) for end in ends)


def _holds(bound: sp.Basic) -> bool:
    """Whether a bound on sizes holds for all of them (each an integer from 1): each
    size ``n`` is written ``1 + m`` with ``m >= 0``, so that SymPy's assumptions see
    ``n_a + n_b - 1 >= 0`` (``1 + m_a + m_b >= 0``)."""
    if bound is sp.true or bound is sp.false:
        return bound is sp.true
    if not isinstance(bound, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return False
    gap = (
        bound.lhs - bound.rhs
        if isinstance(bound, (sp.Ge, sp.Gt))
        else bound.rhs - bound.lhs
    )
    sizes = [s for s in gap.free_symbols if s.is_integer and s.is_positive]
    shifted = gap.xreplace(
        {
            s: 1 + sp.Symbol(f"{s.name}_less_one", integer=True, nonnegative=True)
            for s in sizes
        }
    )
    strict = isinstance(bound, (sp.Gt, sp.Lt))
    return bool(shifted.is_positive if strict else shifted.is_nonnegative)


def _evaluated(expr: sp.Expr) -> sp.Expr:
    """Every sum in ``expr`` evaluated as far as :func:`_sum` goes, innermost first."""
    return expr.replace(lambda e: isinstance(e, sp.Sum), _unnested)


def _unnested(term: sp.Sum) -> sp.Expr:
    result = term.function
    for limit in term.limits:
        result = _sum(result, limit)
    return result


def _sum(body: sp.Expr, limit: tuple[sp.Symbol, sp.Expr, sp.Expr]) -> sp.Expr:
    """``Sum(body, limit)``: term by term, factors without the index taken out."""
    index, lower, upper = limit
    if upper == lower:  # a kept length-1 axis: its one element
        return body.xreplace({index: lower})
    terms = []
    for term in _delta_terms(body, index):
        outside, inside = term.as_independent(index, as_Add=False)
        if inside == 1:
            terms.append(outside * (upper - lower + 1))
        else:
            terms.append(outside * _picked(inside, limit))
    return sp.Add(*terms)


def _delta_terms(body: sp.Expr, index: sp.Symbol) -> list[sp.Expr]:
    """The terms of ``body``, with each factor that is a sum holding a delta on
    ``index`` multiplied out (only that one): ``a (δ(j, m) b + δ(j, u) c)`` is
    ``a δ(j, m) b + a δ(j, u) c``, so that each delta can pick its term."""
    done, pending = [], list(sp.Add.make_args(body))
    while pending:
        term = pending.pop(0)
        factors = list(sp.Mul.make_args(term))
        for position, factor in enumerate(factors):
            if isinstance(factor, sp.Add) and any(
                index in delta.args for delta in factor.atoms(sp.KroneckerDelta)
            ):
                rest = sp.Mul(*factors[:position], *factors[position + 1 :])
                pending[:0] = [rest * part for part in factor.args]
                break
        else:
            done.append(term)
    return done


def _picked(term: sp.Expr, limit: tuple[sp.Symbol, sp.Expr, sp.Expr]) -> sp.Expr:
    """``Sum(term, limit)`` where a factor ``KroneckerDelta(index, q)`` picks one
    term: the rest at ``index = q``, where ``q`` is within the limits; any other sum
    stays a sum. (``deltasummation`` would hand the terms it cannot pick to SymPy's
    general summation, which recurses on some.)"""
    index, lower, upper = limit
    factors = list(sp.Mul.make_args(term))
    for position, factor in enumerate(factors):
        if not isinstance(factor, sp.KroneckerDelta) or index not in factor.args:
            continue
        first, second = factor.args
        other = second if first == index else first
        if index in other.free_symbols:
            continue
        rest = sp.Mul(*factors[:position], *factors[position + 1 :])
        within = sp.And(other >= lower, other <= upper)
        return sp.Piecewise((rest.xreplace({index: other}), within), (0, True))
    return sp.Sum(term, limit)


def _deltas_first(expr: sp.Expr) -> sp.Expr:
    """Sums with the indices that a ``KroneckerDelta`` pins down summed first
    (innermost), so that the delta collapses them before the others are met:
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
