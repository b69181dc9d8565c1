"""Scalar functions SymPy lacks: the logistic sigmoid and softplus.

They are SymPy functions in their own right, as ``tanh`` is: each knows its
derivative (:meth:`fdiff`) and its definition in terms of ``exp``
(``rewrite(sp.exp)``), and a test checks that the two agree with ``sympy.diff`` of the
definition. Keeping them whole, instead of writing ``1/(1 + exp(-x))``, lets the
derivatives read ``sigmoid(x)*(1 - sigmoid(x))`` and lets the printers emit the forms
that never overflow:

- ``sigmoid(x) = exp(-logaddexp(0, -x))``: ``1/(1 + exp(-x))`` overflows in ``exp``
  for ``x`` below about -709;
- ``softplus(x) = logaddexp(0, x)``: ``log(1 + exp(x))`` overflows above about 709.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy as sp


class DefinedFunction(sp.Function):
    """A real function of one argument with a definition in terms of ``exp``."""

    nargs = 1
    latex_name: ClassVar[str]
    at_zero: ClassVar[sp.Expr]

    @staticmethod
    def definition(arg: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr | None:
        if arg.is_zero:
            return cls.at_zero
        if arg.is_Float:
            return cls.definition(arg).evalf(sp.Float(arg)._prec)
        return None

    def _eval_rewrite_as_exp(self, arg: sp.Expr, **kwargs: Any) -> sp.Expr:
        return self.definition(arg)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.definition(self.args[0])._eval_evalf(prec)

    def _latex(self, printer: Any, exp: Any = None) -> str:
        text = rf"{self.latex_name}\left({printer._print(self.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"


class sigmoid(DefinedFunction):  # noqa: N801 (SymPy's function classes are lowercase)
    """The logistic function ``1/(1 + exp(-x))``."""

    latex_name = r"\sigma"
    at_zero = sp.Rational(1, 2)

    @staticmethod
    def definition(arg: sp.Expr) -> sp.Expr:
        return 1 / (1 + sp.exp(-arg))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)


class softplus(DefinedFunction):  # noqa: N801
    """``log(1 + exp(x))``, a smooth ReLU."""

    latex_name = r"\operatorname{softplus}"
    at_zero = sp.log(2)

    @staticmethod
    def definition(arg: sp.Expr) -> sp.Expr:
        return sp.log(1 + sp.exp(arg))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])


#: The functions defined here, by name.
PRIMITIVES: dict[str, type[DefinedFunction]] = {
    "sigmoid": sigmoid,
    "softplus": softplus,
}
