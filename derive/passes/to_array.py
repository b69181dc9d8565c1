"""Rewrite a collapsed index-form expression as an expression over whole arrays.

``Sum(W1[m, i] * d_loss_d_r1[b, m], (m, 0, n1 - 1))`` with axes ``(b, i)`` becomes
``MatProd(d_loss_d_r1, W1)``; ``d_loss_d_r1[i] * h0[j]`` becomes ``Outer(d_loss_d_r1,
h0)``; elementwise expressions lose their indices and rely on NumPy broadcasting.
The array operations are small SymPy nodes defined here, printed by the NumPy and
LaTeX printers; no string is built in this pass.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence

import sympy as sp

Axes = tuple[sp.Symbol, ...]


class ArrayOp(sp.Function):
    """An operation on whole arrays; never evaluated, only printed."""

    is_commutative = True


class MatProd(ArrayOp):
    """Matrix (or matrix-vector, or dot) product ``A @ B``."""

    nargs = 2


class Transposed(ArrayOp):
    """``A.T`` of a 2-D array."""

    nargs = 1


class Outer(ArrayOp):
    """Outer product of two vectors."""

    nargs = 2


class SumAxes(ArrayOp):
    """Sum over the listed axes (all of them when the list is empty): ``A.sum(axis=...)``."""


class Einsum(ArrayOp):
    """``numpy.einsum(subscripts, *operands)``; the subscripts are the first argument."""


class NewAxes(ArrayOp):
    """``A[:, None]``: the operand, with length-1 axes where the flags are 0.

    NumPy broadcasts from the last axis, so an array over ``(b,)`` combined with one
    over ``(b, i)`` needs an axis appended: ``lse[:, None]``.
    """


class LogSumExp(ArrayOp):
    """``log(sum(exp(A), axis))``, computed without overflow."""

    nargs = 2

    def _eval_is_extended_real(self) -> bool:
        return True


class AxesError(ValueError):
    """The expression does not describe an array with the requested axes."""


def to_array(expr: sp.Expr, axes: Sequence[sp.Symbol]) -> sp.Expr:
    """Rewrite ``expr`` (free indices ``axes``) as an array expression with those axes."""
    want = tuple(axes)
    result, got = _convert(expr, want)
    return _align(result, got, want)


def _align(expr: sp.Expr, got: Axes, want: Axes) -> sp.Expr:
    if got == want:
        return expr
    if len(got) == 2 and got == want[::-1]:
        return Transposed(expr)
    raise AxesError(f"{expr} has axes {got}, expected {want}")


def _convert(expr: sp.Expr, want: Axes) -> tuple[sp.Expr, Axes]:
    if isinstance(expr, sp.Indexed):
        indices = tuple(expr.indices)
        if len(set(indices)) != len(indices) or not all(
            isinstance(i, sp.Symbol) for i in indices
        ):
            raise AxesError(f"{expr}: only distinct plain indices are supported")
        return sp.Symbol(str(expr.base.label), real=True), indices
    if not expr.args or expr.is_Number:
        return expr, ()
    if _is_log_sum_exp(expr):
        return _convert_log_sum_exp(expr, want)
    if isinstance(expr, sp.Sum):
        return _convert_sum(expr, want)
    if isinstance(expr, sp.Mul):
        return _convert_product(expr.args, (), want)
    parts = [_convert(arg, want) for arg in expr.args]
    axes = _broadcast([got for _, got in parts], expr)
    return expr.func(*(_broadcastable(e, got, axes) for e, got in parts)), axes


def _broadcast(all_axes: list[Axes], expr: sp.Expr) -> Axes:
    """The axes of an elementwise combination: the longest, if the others fit in it
    (in order, or as its transpose)."""
    widest = max(all_axes, key=len)
    for axes in all_axes:
        fits = _is_subsequence(axes, widest) or (
            len(axes) == 2 and axes[::-1] == widest
        )
        if not fits:
            raise AxesError(f"{expr}: axes {axes} do not broadcast against {widest}")
    return widest


def _is_subsequence(axes: Axes, widest: Axes) -> bool:
    remaining = iter(widest)
    return all(axis in remaining for axis in axes)


def _broadcastable(expr: sp.Expr, got: Axes, axes: Axes) -> sp.Expr:
    """``expr`` (over ``got``) in a form that NumPy broadcasts against ``axes``."""
    if len(got) == 2 and got == axes[::-1] and got != axes:
        return Transposed(expr)
    if not got or got == axes[len(axes) - len(got) :]:
        return expr
    tail = axes[axes.index(got[0]) :]
    coefficient, operand = expr.as_coeff_Mul()
    return _times(coefficient, NewAxes(operand, *(sp.Integer(a in got) for a in tail)))


def _is_log_sum_exp(expr: sp.Expr) -> bool:
    if not isinstance(expr, sp.log) or not isinstance(expr.args[0], sp.Sum):
        return False
    total = expr.args[0]
    return len(total.limits) == 1 and isinstance(total.function, sp.exp)


def _convert_log_sum_exp(expr: sp.Expr, want: Axes) -> tuple[sp.Expr, Axes]:
    """``log(Sum(exp(A[b, k]), k))`` as ``LogSumExp(A, axis of k)``."""
    total = expr.args[0]
    index = total.limits[0][0]
    operand, axes = _convert(total.function.args[0], want)
    if index not in axes:
        raise AxesError(f"{expr}: the sum's index {index} is not an axis of {axes}")
    remaining = tuple(a for a in axes if a != index)
    return LogSumExp(operand, sp.Integer(axes.index(index))), remaining


def _convert_sum(expr: sp.Sum, want: Axes) -> tuple[sp.Expr, Axes]:
    summed: list[sp.Symbol] = []
    body = expr
    while isinstance(body, sp.Sum):
        summed.extend(limit[0] for limit in body.limits)
        body = body.function
    factors = body.args if isinstance(body, sp.Mul) else (body,)
    return _convert_product(factors, tuple(summed), want)


def _convert_product(
    factors: Sequence[sp.Expr], summed: Axes, want: Axes
) -> tuple[sp.Expr, Axes]:
    """A product of factors, summed over ``summed``: elementwise, outer, matmul or einsum."""
    scalars: list[sp.Expr] = []
    groups: dict[Axes, list[sp.Expr]] = {}
    for factor in factors:
        converted, axes = _convert(factor, want)
        if axes:
            groups.setdefault(axes, []).append(converted)
        else:
            scalars.append(converted)
    operands = [(sp.Mul(*group), axes) for axes, group in groups.items()]
    # The factors come from a Mul SymPy already simplified: keep them as they are,
    # so that 2*(y_predicted - y_observed) is not distributed into two terms.
    coefficient = (
        sp.Mul(*scalars, evaluate=False) if len(scalars) > 1 else sp.Mul(*scalars)
    )
    if not operands:
        return coefficient, ()
    if not summed:
        if len(operands) == 1 or _broadcasts(operands):
            axes = _broadcast([a for _, a in operands], sp.Mul(*factors))
            product = sp.Mul(*(_broadcastable(e, a, axes) for e, a in operands))
            return _times(coefficient, product), axes
        if len(operands) == 2 and all(len(a) == 1 for _, a in operands):
            (left, la), (right, ra) = operands
            if la + ra != want and ra + la == want:
                (left, la), (right, ra) = (right, ra), (left, la)
            return _times(coefficient, Outer(left, right)), la + ra
        return _einsum(coefficient, operands, summed, want)
    if len(operands) == 1 and len(summed) == 1 and operands[0][1] == summed:
        group = groups[summed]
        if len(group) == 2:  # a dot product of two vectors
            return _times(coefficient, MatProd(*group)), ()
    if len(operands) == 1:
        operand, axes = operands[0]
        if not set(summed) <= set(axes):
            raise AxesError(f"sum over {summed} of an array with axes {axes}")
        positions = tuple(sp.Integer(axes.index(s)) for s in summed)
        remaining = tuple(a for a in axes if a not in summed)
        if not remaining:
            positions = ()
        return _times(coefficient, SumAxes(operand, *positions)), remaining
    if len(operands) == 2 and len(summed) == 1:
        found = _matmul(operands, summed[0], want)
        if found is not None:
            product, axes = found
            return _times(coefficient, product), axes
    return _einsum(coefficient, operands, summed, want)


def _times(coefficient: sp.Expr, product: sp.Expr) -> sp.Expr:
    """``coefficient * product``, without distributing a number over a sum."""
    if coefficient == 1:
        return product
    return sp.Mul(coefficient, product, evaluate=False)


def _broadcasts(operands: list[tuple[sp.Expr, Axes]]) -> bool:
    try:
        _broadcast([a for _, a in operands], sp.Integer(0))
    except AxesError:
        return False
    return True


def _matmul(
    operands: list[tuple[sp.Expr, Axes]], index: sp.Symbol, want: Axes
) -> tuple[sp.Expr, Axes] | None:
    """``A @ B`` contracting ``index``, transposing as needed; prefers ``want``'s order."""
    candidates = []
    for (left, la), (right, ra) in itertools.permutations(operands):
        if index not in la or index not in ra or len(la) > 2 or len(ra) > 2:
            continue
        transposes = 0
        if la[-1] != index:
            left, la, transposes = Transposed(left), la[::-1], transposes + 1
        if ra[0] != index:
            right, ra, transposes = Transposed(right), ra[::-1], transposes + 1
        axes = la[:-1] + ra[1:]
        candidates.append((axes != want, transposes, MatProd(left, right), axes))
    if not candidates:
        return None
    _, _, product, axes = min(candidates, key=lambda c: (c[0], c[1]))
    return product, axes


def _einsum(
    coefficient: sp.Expr, operands: list[tuple[sp.Expr, Axes]], summed: Axes, want: Axes
) -> tuple[sp.Expr, Axes]:
    letters = dict(
        zip(
            dict.fromkeys(a for _, axes in operands for a in axes),
            string.ascii_lowercase,
            strict=False,
        )
    )
    free = tuple(a for a in want if a in letters and a not in summed)
    inputs = ",".join("".join(letters[a] for a in axes) for _, axes in operands)
    subscripts = f"{inputs}->{''.join(letters[a] for a in free)}"
    einsum = Einsum(sp.Symbol(subscripts), *(e for e, _ in operands))
    return _times(coefficient, einsum), free
