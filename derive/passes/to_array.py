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
from sympy.printing.precedence import PRECEDENCE

Axes = tuple[sp.Symbol, ...]

#: How tightly each kind of array node binds, read by every printer through SymPy's
#: ``precedence()`` (which takes an expression's ``precedence`` attribute first).
#: ``A @ B`` binds as ``*`` does in Python (same level, left to right), so a matrix
#: product inside an elementwise product, a quotient or a power is always bracketed:
#: ``exp(r) * (x @ V.T)``, never ``exp(r) * x @ V.T`` (which Python reads as
#: ``(exp(r) * x) @ V.T``). Postfix forms (``A.T``, ``A[:, None]``, ``A.sum(axis=1)``)
#: and calls bind tightest.
POSTFIX = PRECEDENCE["Atom"]
CALL = PRECEDENCE["Func"]
PRODUCT = PRECEDENCE["Mul"]


class ArrayOp(sp.Function):
    """An operation on whole arrays; never evaluated, only printed.

    Every subclass states its ``precedence`` (see :data:`POSTFIX`)."""

    is_commutative = True
    precedence = CALL


class MatProd(ArrayOp):
    """Matrix (or matrix-vector, or dot) product ``A @ B``."""

    nargs = 2
    precedence = PRODUCT


class Transposed(ArrayOp):
    """``A.T`` of a 2-D array."""

    nargs = 1
    precedence = POSTFIX


class Outer(ArrayOp):
    """Outer product of two vectors."""

    nargs = 2


class SumAxes(ArrayOp):
    """Sum over the listed axes (all of them when the list is empty): ``A.sum(axis=...)``."""

    precedence = POSTFIX


class Einsum(ArrayOp):
    """``numpy.einsum(subscripts, *operands)``; the subscripts are the first argument."""


class NewAxes(ArrayOp):
    """``A[:, None]``: the operand, with length-1 axes where the flags are 0.

    NumPy broadcasts from the last axis, so an array over ``(b,)`` combined with one
    over ``(b, i)`` needs an axis appended: ``lse[:, None]``.
    """

    precedence = POSTFIX


class Permuted(ArrayOp):
    """``A`` with its axes reordered: the first argument, then the new order."""

    precedence = POSTFIX


class TensorDot(ArrayOp):
    """``numpy.tensordot(A, B, axes=(left_axes, right_axes))``: one matrix product
    over the merged axes (a stack of rows times a 2-D weight is one GEMM, not a loop
    over the stack). Arguments: A, B, then ``Tuple(left_axes), Tuple(right_axes)``."""


class Sliced(ArrayOp):
    """``A[:, 0, :]``: the operand, then one entry per axis: an integer, or -1 for ':'."""

    precedence = POSTFIX


class UnitVector(ArrayOp):
    """``numpy.arange(size) == position``: 1 at ``position``, 0 elsewhere (the
    gradient of an element picked by an integer index)."""

    nargs = 2


class BroadcastTo(ArrayOp):
    """``numpy.broadcast_to(A, shape)``: a gradient constant along some axes."""


class LogSumExp(ArrayOp):
    """``log(sum(exp(A), axes))``, computed without overflow: A, then the axes."""

    def _eval_is_extended_real(self) -> bool:
        return True


class AxesError(ValueError):
    """The expression does not describe an array with the requested axes."""


def to_array(
    expr: sp.Expr,
    axes: Sequence[sp.Symbol],
    sizes: Sequence[sp.Expr] | None = None,
) -> sp.Expr:
    """Rewrite ``expr`` (free indices ``axes``) as an array expression with those axes.

    ``sizes`` (the axes' sizes) lets a result that is constant along some axis be
    broadcast to its full shape, and an integer index's gradient be a unit vector.
    """
    want = tuple(axes)
    size_of = dict(zip(want, sizes, strict=True)) if sizes is not None else {}
    expr = _unit_vectors(expr, size_of)
    result, got = _convert(expr, want)
    return _align(result, got, want, size_of)


def _unit_vectors(expr: sp.Expr, size_of: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
    """``KroneckerDelta(0, q)`` (q an axis) as an array over q: a unit vector."""

    def is_pick(e: sp.Basic) -> bool:
        if not isinstance(e, sp.KroneckerDelta):
            return False
        numbers = [a for a in e.args if a.is_Integer]
        return len(numbers) == 1 and any(a in size_of for a in e.args)

    def unit(e: sp.Basic) -> sp.Expr:
        (position,) = [a for a in e.args if a.is_Integer]
        (index,) = [a for a in e.args if not a.is_Integer]
        return _Pick(index, position, size_of[index])

    return expr.replace(is_pick, unit)


class _Pick(sp.Function):
    """Index form of a unit vector (converted by :func:`_convert`)."""

    nargs = 3
    is_commutative = True


def _align(
    expr: sp.Expr,
    got: Axes,
    want: Axes,
    size_of: dict[sp.Symbol, sp.Expr] | None = None,
) -> sp.Expr:
    if got == want:
        return expr
    if set(got) == set(want):
        return _permuted(expr, got, want)
    if set(got) < set(want) and size_of and all(a in size_of for a in want):
        ordered = tuple(a for a in want if a in got)
        operand = _permuted(expr, got, ordered) if got != ordered else expr
        kept = all(size_of[a] == 1 for a in want if a not in got)  # length-1 axes
        if ordered or kept:  # a scalar with kept axes takes them too: v[None]
            operand = _new_axes(operand, [a in got for a in want])
        if kept and not (operand.is_number and not operand.has(ArrayOp)):
            # (a number takes its shape below)
            return operand
        return BroadcastTo(operand, *(size_of[a] for a in want))
    raise AxesError(f"{expr} has axes {got}, expected {want}")


def _new_axes(operand: sp.Expr, flags: Sequence[bool]) -> sp.Expr:
    """``operand[:, None]`` (a flag for each axis: the operand's own, or new); a
    number is left alone (it broadcasts by itself: a term that cancelled to 0 in
    array form, as ``SumAxes(W, 0) / SumAxes(W, 0) - 1``, is no array)."""
    operand = sp.sympify(operand)
    if isinstance(operand, sp.Mul) and any(f.is_zero for f in operand.args):
        return sp.Integer(0)  # (1 - 1*1)/SumAxes(W, 0): SymPy leaves it unevaluated
    if operand.is_number and not operand.has(ArrayOp):  # (a unit vector is an array)
        return operand
    return NewAxes(operand, *(sp.Integer(flag) for flag in flags))


def _permuted(expr: sp.Expr, got: Axes, want: Axes) -> sp.Expr:
    """``expr`` (over ``got``) with its axes in ``want``'s order."""
    if len(got) == 2:
        return Transposed(expr)
    return Permuted(expr, *(sp.Integer(got.index(a)) for a in want))


def _convert(expr: sp.Expr, want: Axes) -> tuple[sp.Expr, Axes]:
    if isinstance(expr, sp.Indexed):
        indices = tuple(expr.indices)
        symbols = tuple(i for i in indices if not i.is_Integer)
        if len(set(symbols)) != len(symbols) or not all(
            isinstance(i, sp.Symbol) for i in symbols
        ):
            raise AxesError(f"{expr}: only distinct plain indices are supported")
        array = sp.Symbol(str(expr.base.label), real=True)
        if len(symbols) < len(indices):  # x[b, 0, i]: an integer index picks
            key = (i if i.is_Integer else sp.Integer(-1) for i in indices)
            return Sliced(array, *key), symbols
        return array, indices
    if isinstance(expr, _Pick):
        index, position, size = expr.args
        return UnitVector(size, position), (index,)
    if not expr.args or expr.is_Number:
        return expr, ()
    if _is_log_sum_exp(expr):
        return _convert_log_sum_exp(expr, want)
    if isinstance(expr, sp.Sum):
        return _convert_sum(expr, want)
    if isinstance(expr, sp.Mul):
        return _convert_product(expr.args, (), want)
    parts = [_convert(arg, want) for arg in expr.args]
    axes = _broadcast([got for _, got in parts], expr, want)
    return expr.func(*(_broadcastable(e, got, axes) for e, got in parts)), axes


def _broadcast(all_axes: list[Axes], expr: sp.Expr, want: Axes | None = None) -> Axes:
    """The axes of an elementwise combination: the longest, if the others' axes are
    among its own (permuted where their order differs); else, given ``want``, every
    axis any of them has, in ``want``'s order (``z[m, i] + z[u, i]`` is over
    ``(m, u, i)``: each part gets a new axis for the other's)."""
    widest = max(all_axes, key=len)
    if all(set(axes) <= set(widest) for axes in all_axes):
        return widest
    if want is None:
        raise AxesError(f"{expr}: axes {all_axes} do not broadcast against each other")
    union = dict.fromkeys(a for axes in all_axes for a in axes)
    return tuple(a for a in want if a in union) + tuple(
        a for a in union if a not in want
    )


def _is_subsequence(axes: Axes, widest: Axes) -> bool:
    remaining = iter(widest)
    return all(axis in remaining for axis in axes)


def _broadcastable(expr: sp.Expr, got: Axes, axes: Axes) -> sp.Expr:
    """``expr`` (over ``got``) in a form that NumPy broadcasts against ``axes``."""
    if expr.is_number and not expr.has(ArrayOp):
        # A part that cancelled to a number in array form (heaviside(A - A) of
        # maximum(A, A) is 1/2) broadcasts by itself; (1/2).T is no Python.
        return expr
    if len(got) == 2 and got == axes[::-1] and got != axes:
        return Transposed(expr)
    if not _is_subsequence(got, axes):  # reorder first, then insert new axes
        ordered = tuple(a for a in axes if a in got)
        return _broadcastable(_permuted(expr, got, ordered), ordered, axes)
    if not got or got == axes[len(axes) - len(got) :]:
        return expr
    tail = axes[axes.index(got[0]) :]
    coefficient, operand = expr.as_coeff_Mul()
    return _times(coefficient, _new_axes(operand, [a in got for a in tail]))


def _is_log_sum_exp(expr: sp.Expr) -> bool:
    if not isinstance(expr, sp.log) or not isinstance(expr.args[0], sp.Sum):
        return False
    return isinstance(expr.args[0].function, sp.exp)


def _convert_log_sum_exp(expr: sp.Expr, want: Axes) -> tuple[sp.Expr, Axes]:
    """``log(Sum(exp(A[b, k]), k))`` as ``LogSumExp(A, axis of k)``."""
    total = expr.args[0]
    summed = [limit[0] for limit in total.limits]
    operand, axes = _convert(total.function.args[0], want)
    if not set(summed) <= set(axes):
        raise AxesError(f"{expr}: the sum's indices {summed} are not axes of {axes}")
    remaining = tuple(a for a in axes if a not in summed)
    positions = sorted(axes.index(index) for index in summed)
    return LogSumExp(operand, *(sp.Integer(p) for p in positions)), remaining


def _convert_sum(expr: sp.Sum, want: Axes) -> tuple[sp.Expr, Axes]:
    limits: list[tuple[sp.Expr, ...]] = []
    body = expr
    while isinstance(body, sp.Sum):
        limits.extend(body.limits)
        body = body.function
    # An index the body does not read sums the same term once per value it takes:
    # Σ_j mu[b] over j < d_h is d_h * mu[b], never mu[b].
    read = body.free_symbols
    count = sp.Mul(*(upper - lower + 1 for i, lower, upper in limits if i not in read))
    summed = tuple(limit[0] for limit in limits if limit[0] in read)
    factors = body.args if isinstance(body, sp.Mul) else (body,)
    if count != 1:
        factors = (count, *factors)
    return _convert_product(factors, summed, want)


def _convert_product(
    factors: Sequence[sp.Expr], summed: Axes, want: Axes
) -> tuple[sp.Expr, Axes]:
    """A product of factors, summed over ``summed``: elementwise, outer, matmul or einsum."""
    scalars: list[sp.Expr] = []
    groups: dict[Axes, list[sp.Expr]] = {}
    for factor in factors:
        converted, axes = _convert(factor, want)
        if converted.is_zero:  # two sums that differ in their dummies' names only
            return sp.Integer(0), ()
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
        # Disjoint axes: broadcasting, each operand given length-1 axes.
        union = dict.fromkeys(a for _, axes in operands for a in axes)
        target = tuple(a for a in want if a in union)
        target += tuple(a for a in union if a not in target)
        product = sp.Mul(*(_broadcastable(e, a, target) for e, a in operands))
        return _times(coefficient, product), target
    if len(operands) == 1 and len(summed) == 1 and operands[0][1] == summed:
        group = groups[summed]
        if len(group) == 2:  # a dot product of two vectors
            return _times(coefficient, MatProd(*group)), ()
    if len(operands) == 2 and len(summed) == 1:
        found = _matmul(operands, summed[0], want)
        if found is not None:
            product, axes = found
            return _times(coefficient, product), axes
    operands = _merged(operands)
    if len(operands) == 1:
        total, remaining = _summed(operands[0], summed)
        return _times(coefficient, total), remaining
    # An index summed but read by one operand only is summed there first.
    presummed = []
    for operand, axes in operands:
        alone = tuple(
            s
            for s in summed
            if s in axes
            and not any(s in other for _, other in operands if other is not axes)
        )
        presummed.append(_summed((operand, axes), alone) if alone else (operand, axes))
    operands = presummed
    summed = tuple(s for s in summed if sum(s in axes for _, axes in operands) > 1)
    if len(operands) == 2 and len(summed) == 1:
        found = _matmul(operands, summed[0], want)
        if found is not None:
            product, axes = found
            return _times(coefficient, product), axes
    if len(operands) == 2 and summed:
        found = _contraction(operands, summed, want)
        if found is not None:
            product, axes = found
            return _times(coefficient, product), axes
    return _einsum(coefficient, operands, summed, want)


def _merged(operands: list[tuple[sp.Expr, Axes]]) -> list[tuple[sp.Expr, Axes]]:
    """Operands whose axes are among another's, multiplied into it elementwise first
    (``g[b, k] * a[k]`` is one array over ``(b, k)``; nothing grows)."""
    result = list(operands)
    merged = True
    while merged and len(result) > 1:
        merged = False
        for (small, sa), (big, ba) in itertools.permutations(result, 2):
            if set(sa) <= set(ba):
                result.remove((small, sa))
                result.remove((big, ba))
                product = big * _broadcastable(small, sa, ba)
                result.append((product, ba))
                merged = True
                break
    return result


def _summed(operand: tuple[sp.Expr, Axes], summed: Axes) -> tuple[sp.Expr, Axes]:
    """One operand summed over ``summed``."""
    expr, axes = operand
    if not set(summed) <= set(axes):
        raise AxesError(f"sum over {summed} of an array with axes {axes}")
    remaining = tuple(a for a in axes if a not in summed)
    if not summed:
        return expr, axes
    positions = (
        () if not remaining else tuple(sp.Integer(axes.index(s)) for s in summed)
    )
    return SumAxes(expr, *positions), remaining


def _contraction(
    operands: list[tuple[sp.Expr, Axes]], summed: Axes, want: Axes
) -> tuple[sp.Expr, Axes] | None:
    """Two arrays summed over shared indices, as BLAS does it.

    Without an index both keep (a stack), it is ``numpy.tensordot``: one matrix
    product over the merged axes, 2.5x faster than ``@`` looping over a stack (see
    the notes on NumPy contractions). With stacked indices and one summed index it is
    a stacked ``@``; anything else is left to ``einsum(..., optimize=True)``.
    """
    (left, la), (right, ra) = operands
    stacked = tuple(a for a in la if a in ra and a not in summed)
    if not stacked:
        candidates = []
        for (a, aa), (b, ba) in (
            (operands[0], operands[1]),
            (operands[1], operands[0]),
        ):
            axes = tuple(x for x in aa if x not in summed) + tuple(
                x for x in ba if x not in summed
            )
            product = TensorDot(
                a,
                b,
                sp.Tuple(*(sp.Integer(aa.index(s)) for s in summed)),
                sp.Tuple(*(sp.Integer(ba.index(s)) for s in summed)),
            )
            candidates.append((axes != want, product, axes))
        _, product, axes = min(candidates, key=lambda c: c[0])
        return product, axes
    if len(summed) != 1:
        return None
    (index,) = summed
    free_l = tuple(a for a in la if a not in stacked and a != index)
    free_r = tuple(a for a in ra if a not in stacked and a != index)
    if len(free_l) != 1 or len(free_r) != 1:
        return None
    first = tuple(a for a in want if a in stacked) + tuple(
        a for a in stacked if a not in want
    )
    stacks: list[tuple[bool, int, sp.Expr, Axes]] = []
    for (a, aa, fa), (b, ba, fb) in (
        ((left, la, free_l), (right, ra, free_r)),
        ((right, ra, free_r), (left, la, free_l)),
    ):
        target_a = (*first, *fa, index)
        target_b = (*first, index, *fb)
        moved = (aa != target_a) + (ba != target_b)
        product = MatProd(_reordered(a, aa, target_a), _reordered(b, ba, target_b))
        axes = (*first, *fa, *fb)
        stacks.append((axes != want, moved, product, axes))
    _, _, stacked_product, stacked_axes = min(stacks, key=lambda c: (c[0], c[1]))
    return stacked_product, stacked_axes


def _reordered(expr: sp.Expr, got: Axes, want: Axes) -> sp.Expr:
    return expr if got == want else _permuted(expr, got, want)


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
        if set(la) & set(ra) != {index}:
            # Another shared axis is elementwise (``M[i, a] * g[a, i]`` summed over
            # ``a``), which a matrix product would make an outer one: not a matmul.
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
    free += tuple(a for a in letters if a not in summed and a not in free)
    inputs = ",".join("".join(letters[a] for a in axes) for _, axes in operands)
    subscripts = f"{inputs}->{''.join(letters[a] for a in free)}"
    # Never bare: without optimize=True einsum is 5-7x slower than the BLAS call.
    einsum = Einsum(sp.Symbol(subscripts), *(e for e, _ in operands))
    return _times(coefficient, einsum), free
