"""Print index-form expressions as one line of plain text, for docstrings.

``Sum(W1[m, i]*d_loss_d_r1[m], (m, 0, n1 - 1))`` prints as
``Σ_m W1[m, i]*d_loss_d_r1[m]``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter


class TextPrinter(StrPrinter):
    """SymPy's ``StrPrinter``, with sums written as ``Σ_m`` and subtractions last."""

    def _as_ordered_terms(self, expr: sp.Expr, order: Any = None) -> list[sp.Expr]:
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: term.could_extract_minus_sign())

    def _print_Sum(self, expr: sp.Sum) -> str:
        indices = ",".join(self._print(limit[0]) for limit in expr.limits)
        body = self.parenthesize(expr.function, PRECEDENCE["Mul"], strict=True)
        return f"Σ_{indices} {body}"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        return f"heaviside({', '.join(self._print(a) for a in expr.args)})"

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        """``∂h1[m]/∂r1[i]``: a chain-rule factor before ``sympy.diff`` takes it."""
        (variable, count), *rest = expr.variable_count
        if rest or count != 1:
            return super()._print_Derivative(expr)
        numerator = self.parenthesize(expr.expr, PRECEDENCE["Mul"], strict=True)
        return f"∂{numerator}/∂{self._print(variable)}"

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta) -> str:
        return f"δ({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Max(self, expr: sp.Expr) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"


def text(expr: sp.Expr) -> str:
    """``expr`` as one line of text."""
    return TextPrinter().doprint(expr)
