"""Print array expressions (see :mod:`derive.passes.to_array`) as NumPy code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE


class NumPyCodePrinter(NumPyPrinter):
    """SymPy's ``NumPyPrinter``, plus the array operations and readable names.

    ``names`` maps a symbol's name to the code that stands for it in the function
    being printed, for example ``"r1" -> 'variable_dict["r1"]'``.
    """

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self.names = dict(names or {})

    def _as_ordered_terms(self, expr: sp.Expr, order: Any = None) -> list[sp.Expr]:
        """Terms in SymPy's order, but subtracted ones last: ``y_predicted - y_observed``."""
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: term.could_extract_minus_sign())

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr.name, expr.name)

    def _print_MatProd(self, expr: sp.Expr) -> str:
        left, right = (
            self.parenthesize(a, PRECEDENCE["Mul"], strict=False) for a in expr.args
        )
        return f"{left} @ {right}"

    def _print_Transposed(self, expr: sp.Expr) -> str:
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Atom'], strict=True)}.T"

    def _print_Outer(self, expr: sp.Expr) -> str:
        return f"numpy.outer({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_SumAxes(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        if not axes:
            return f"numpy.sum({self._print(operand)})"
        axis = self._print(axes[0]) if len(axes) == 1 else self._print(tuple(axes))
        return f"{self.parenthesize(operand, PRECEDENCE['Atom'], strict=True)}.sum(axis={axis})"

    def _print_Einsum(self, expr: sp.Expr) -> str:
        subscripts, *operands = expr.args
        arguments = ", ".join(self._print(o) for o in operands)
        return f'numpy.einsum("{subscripts.name}", {arguments})'

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        arg, *at_zero = expr.args
        value = self._print(sp.Float(at_zero[0]) if at_zero else sp.Float(0.5))
        return f"numpy.heaviside({self._print(arg)}, {value})"

    def _print_Max(self, expr: sp.Expr) -> str:
        if len(expr.args) != 2:
            return super()._print_Max(expr)
        return (
            f"numpy.maximum({self._print(expr.args[0])}, {self._print(expr.args[1])})"
        )

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_Integer(self, expr: Any) -> str:
        return str(expr)
