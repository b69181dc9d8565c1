"""Print unrolled scalar expressions (see :mod:`derive.passes.unroll`) as plain Python.

The unrolled style works on Python floats, one variable per element: ``W1[0, 2]``
prints as ``W1_0_2`` and ``d_loss_d_r1[2]`` as ``d_loss_d_r1_2``. Functions come from
:mod:`math`; kinks print as conditional expressions (``0.0 if r <= 0.0 else r``), the
fastest form in CPython, written so that NaN passes through ReLU as in NumPy;
``sigmoid`` and ``softplus`` print in forms whose ``math.exp`` never overflows (it
raises ``OverflowError`` past about 709).
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.printing.pycode import PythonCodePrinter

from derive.printing.code import CodePrinterMixin


class ScalarCodePrinter(CodePrinterMixin, PythonCodePrinter):
    """SymPy's ``PythonCodePrinter`` for one-variable-per-element code."""

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        base = str(expr.base.label)
        suffix = "_".join(str(int(i)) for i in expr.indices)
        return f"{self.names.get(base, base)}_{suffix}"

    def _conditional(self, value: Any, condition: Any, otherwise: Any) -> str:
        return f"({self._print(value)} if {self._print(condition)} else {self._print(otherwise)})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        if len(expr.args) != 2 or expr.args[1].cond is not sp.true:
            return super()._print_Piecewise(expr)
        (value, condition), (otherwise, _) = expr.args
        return self._conditional(value, condition, otherwise)

    def _print_Mul(self, expr: sp.Expr) -> str:
        """A product with a step ``Heaviside(x, 0)`` as ``(rest if x > 0 else 0.0)``:
        a ReLU gate, without multiplying by 1.0 or 0.0."""
        steps = [
            f
            for f in expr.args
            if isinstance(f, sp.Heaviside) and len(f.args) == 2 and f.args[1] == 0
        ]
        if not steps:
            return super()._print_Mul(expr)
        step = steps[0]
        rest = sp.Mul(*(f for f in expr.args if f is not step))
        return self._conditional(rest, _positive(step.args[0]), sp.Float(0))

    def _print_Max(self, expr: sp.Expr) -> str:
        args = list(expr.args)
        if len(args) == 2 and sp.S.Zero in args:
            # Written so that NaN falls through to ``other``, as numpy.maximum and
            # torch.relu pass NaN on.
            (other,) = [a for a in args if a != 0]
            return self._conditional(sp.Float(0), _positive(other).negated, other)
        return f"max({', '.join(self._print(a) for a in args)})"

    def _print_Min(self, expr: sp.Expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        arg, *at_zero = expr.args
        zero = sp.Float(at_zero[0]) if at_zero else sp.Float(0.5)
        below = (
            sp.Float(0)
            if zero == 0
            else sp.Piecewise((zero, sp.Eq(arg, 0)), (sp.Float(0), True))
        )
        return self._conditional(sp.Float(1), _positive(arg), below)

    def _print_sigmoid(self, expr: sp.Expr) -> str:
        (x,) = expr.args
        if "sigmoid" in self.helpers:
            return f"sigmoid({self._print(x)})"
        stable = sp.Piecewise(
            (1 / (1 + sp.exp(-x)), x >= 0), (sp.exp(x) / (1 + sp.exp(x)), True)
        )
        return self._print(stable)

    def _print_softplus(self, expr: sp.Expr) -> str:
        (x,) = expr.args
        if "softplus" in self.helpers:
            return f"softplus({self._print(x)})"
        return self._print(sp.Max(x, 0) + log1p(sp.exp(-sp.Abs(x))))

    def _print_ScalarLogSumExp(self, expr: sp.Expr) -> str:
        return f"logsumexp({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr: sp.Expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr: sp.Expr) -> str:
        (x,) = expr.args
        negative = sp.Piecewise((sp.Float(-1), x < 0), (sp.Float(0), True))
        return self._print(sp.Piecewise((sp.Float(1), x > 0), (negative, True)))


def _positive(x: sp.Expr) -> sp.Expr:
    """``x > 0.0``: comparing a float with a float literal is faster in CPython than
    with the integer 0."""
    return sp.StrictGreaterThan(x, sp.Float(0), evaluate=False)
