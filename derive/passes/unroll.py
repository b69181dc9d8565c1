"""Unroll an index-form expression into one scalar expression per element.

``d_loss_d_h0[i] = Sum(W1[m, i]*d_loss_d_r1[m], (m, 0, n1 - 1))`` at ``n1 = 3`` and
``i = 1`` becomes ``W1[0, 1]*d_loss_d_r1[0] + W1[1, 1]*d_loss_d_r1[1] +
W1[2, 1]*d_loss_d_r1[2]``: the problem set's style, one line per neuron. Sums are
expanded by SymPy (``doit``) once the sizes are numbers; a log-sum-exp becomes a
:class:`ScalarLogSumExp` of its terms, which the printer computes without overflow.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import sympy as sp


class ScalarLogSumExp(sp.Function):
    """``log(exp(a) + exp(b) + ...)`` of its arguments, computed without overflow."""

    @classmethod
    def eval(cls, *args: sp.Expr) -> sp.Expr | None:
        if all(a.is_number for a in args):  # exact, or to any precision: no overflow
            return sp.log(sp.Add(*(sp.exp(a) for a in args)))
        return None

    def _eval_is_extended_real(self) -> bool:
        return True


def elements(sizes: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every index tuple of an array of ``sizes``, in row-major order."""
    return itertools.product(*(range(n) for n in sizes))


def unroll(
    expr: sp.Expr,
    widths: Mapping[sp.Symbol, int],
    indices: Sequence[sp.Symbol] = (),
    at: Sequence[int] = (),
) -> sp.Expr:
    """``expr`` at the element ``at`` of its free ``indices``, sums written out."""
    numeric = expr.xreplace(dict(widths))
    numeric = numeric.xreplace(
        {index: sp.Integer(n) for index, n in zip(indices, at, strict=True)}
    )
    numeric = numeric.replace(_is_log_sum_exp, _log_sum_exp)
    # doit() multiplies numbers into sums (2*(a - b) -> 2*a - 2*b); factor_terms
    # takes the common number back out.
    return sp.factor_terms(numeric.doit())


def _is_log_sum_exp(expr: sp.Basic) -> bool:
    if not isinstance(expr, sp.log) or not isinstance(expr.args[0], sp.Sum):
        return False
    total = expr.args[0]
    return len(total.limits) == 1 and isinstance(total.function, sp.exp)


def _log_sum_exp(expr: sp.Expr) -> sp.Expr:
    total = expr.args[0]
    index, low, high = total.limits[0]
    exponent = total.function.args[0]
    terms = (exponent.xreplace({index: sp.Integer(k)}) for k in range(low, high + 1))
    return ScalarLogSumExp(*terms)
