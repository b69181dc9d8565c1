"""Activations as SymPy functions that know their own definition.

Each activation is a SymPy ``Function`` class (``relu``) whose derivative is another
(``relu_derivative``). SymPy's chain rule calls :meth:`Activation.fdiff`, which returns
the derivative class applied to the same argument; the derivative's formula is
``sympy.diff`` of the definition, never typed in by hand. Keeping the calls unexpanded
lets the generated code and the LaTeX read ``relu(r0)`` and ``relu'(r0)``, while
:func:`expand_activations` swaps in the definitions when numbers are wanted.

The ReLU kink: ``diff(Max(0, x), x)`` is ``Heaviside(x)``, and SymPy's ``Heaviside(0)``
is 1/2. torch's ReLU gradient at exactly 0 is 0, so every ``Heaviside`` produced here
is ``Heaviside(x, 0)``: the derivative of ReLU at 0 is taken as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import sympy as sp

#: The variable every activation's definition is written in.
X = sp.Symbol("x", real=True)

#: Definitions, in ``X``. ``identity`` adds no node to the network.
DEFINITIONS: dict[str, sp.Expr] = {
    "identity": X,
    "relu": sp.Max(0, X),
    "tanh": sp.tanh(X),
}

#: How each activation is written in LaTeX.
LATEX_NAMES: dict[str, str] = {
    "identity": r"\operatorname{id}",
    "relu": r"\operatorname{relu}",
    "tanh": r"\tanh",
}

ACTIVATIONS = tuple(DEFINITIONS)

#: The value taken for the ReLU derivative (the Heaviside step) at exactly 0, as torch.
HEAVISIDE_AT_ZERO = sp.Integer(0)


def kink_convention(expr: sp.Expr) -> sp.Expr:
    """Give every ``Heaviside`` step the value 0 at 0 (torch's convention)."""
    return expr.replace(
        sp.Heaviside, lambda arg, *_: sp.Heaviside(arg, HEAVISIDE_AT_ZERO)
    )


class Elementwise(sp.Function):
    """A scalar function of one argument, applied elementwise in the generated code."""

    nargs = 1
    code_name: ClassVar[str]
    latex_name: ClassVar[str]
    formula: ClassVar[sp.Expr]

    def _numpycode(self, printer: Any) -> str:
        return f"{self.code_name}({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        return self._numpycode(printer)

    def _sympystr(self, printer: Any) -> str:
        return f"{self.code_name}({printer._print(self.args[0])})"

    def _latex(self, printer: Any, exp: Any = None) -> str:
        text = rf"{self.latex_name}\left({printer._print(self.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def definition(self) -> sp.Expr:
        """The formula with this call's argument in place of ``x``."""
        return self.formula.subs(X, self.args[0])


class Activation(Elementwise):
    """An activation; its derivative class is :attr:`derivative`."""

    derivative: ClassVar[type[Elementwise]]

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self.derivative(self.args[0])


class Derivative(Elementwise):
    """The derivative of an activation; differentiates its own formula in turn."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return kink_convention(sp.diff(self.formula, X)).subs(X, self.args[0])


def _make(name: str) -> type[Activation]:
    formula = DEFINITIONS[name]
    derivative = type(
        f"{name}_derivative",
        (Derivative,),
        {
            "code_name": f"{name}_derivative",
            "latex_name": LATEX_NAMES[name] + "'",
            "formula": kink_convention(sp.diff(formula, X)),
        },
    )
    return type(
        name,
        (Activation,),
        {
            "code_name": name,
            "latex_name": LATEX_NAMES[name],
            "formula": formula,
            "derivative": derivative,
        },
    )


#: One SymPy function class per activation, made once so that equal calls compare equal.
FUNCTIONS: dict[str, type[Activation]] = {name: _make(name) for name in DEFINITIONS}


def expand_activations(expr: sp.Expr) -> sp.Expr:
    """Replace every activation (and derivative) call by its formula."""
    is_call: Callable[[Any], bool] = lambda e: isinstance(e, Elementwise)  # noqa: E731
    return expr.replace(is_call, lambda e: e.definition())
