"""Activations as SymPy functions that know their own definition.

Each activation a network uses becomes a SymPy ``Function`` class (``relu``) whose
derivative is another (``relu_derivative``). SymPy's chain rule calls
:meth:`Activation.fdiff`, which returns the derivative class applied to the same
argument; the derivative's formula is ``sympy.diff`` of the definition, never typed in
by hand. Keeping the calls unexpanded lets the generated code and the LaTeX read
``relu(r0)`` and ``relu'(r0)``, while :func:`expand_activations` swaps in the
definitions when numbers are wanted.

The built-in definitions, in ``x``:

- ``identity``: ``x`` (adds no node to the network);
- ``relu``: ``max(0, x)``;
- ``leaky_relu``: ``x`` where ``x > 0``, else ``slope * x`` (torch's default slope 0.01);
- ``sigmoid``: ``1/(1 + exp(-x))``, kept whole as :class:`derive.functions.sigmoid`;
- ``tanh``: ``tanh(x)``;
- ``softplus``: ``log(1 + exp(x))``, kept whole as :class:`derive.functions.softplus`;
- ``gelu``: ``x/2 * (1 + erf(x/sqrt(2)))`` (the exact form, torch's default);
- ``custom``: any formula in ``x`` (see :mod:`derive.expressions`).

Kinks follow torch. ``diff(Max(0, x), x)`` is ``Heaviside(x)``, and SymPy's
``Heaviside(0)`` is 1/2; torch's ReLU gradient at exactly 0 is 0, so every
``Heaviside`` produced here is ``Heaviside(x, 0)``. ``leaky_relu``'s derivative at 0 is
``slope``, as in torch, because its definition takes the ``slope * x`` branch there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import sympy as sp

from derive.expressions import FormulaError, parse_formula
from derive.functions import sigmoid, softplus

#: The variable every activation's definition is written in.
X = sp.Symbol("x", real=True)

#: The activations a spec may name, in the order the docs list them.
ACTIVATIONS = (
    "identity",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softplus",
    "gelu",
    "custom",
)
#: torch's default negative slope for ``leaky_relu``.
DEFAULT_SLOPE = 0.01

#: How each built-in activation is written in LaTeX; a custom one uses its name.
LATEX_NAMES: dict[str, str] = {
    "identity": r"\operatorname{id}",
    "relu": r"\operatorname{relu}",
    "leaky_relu": r"\operatorname{lrelu}",
    "sigmoid": r"\sigma",
    "tanh": r"\tanh",
    "softplus": r"\operatorname{softplus}",
    "gelu": r"\operatorname{gelu}",
}

#: The output of an activation, in :attr:`Activation.output_form`.
Y = sp.Symbol("y", real=True)

#: The value taken for the ReLU derivative (the Heaviside step) at exactly 0, as torch.
HEAVISIDE_AT_ZERO = sp.Integer(0)


def definition(
    kind: str, slope: float | None = None, expression: str | None = None
) -> sp.Expr:
    """The formula, in :data:`X`, of the activation ``kind``.

    Raises :class:`~derive.expressions.FormulaError` for a custom formula that is not
    allowed or that SymPy cannot differentiate.
    """
    if kind == "leaky_relu":
        negative = sp.Float(DEFAULT_SLOPE if slope is None else slope)
        return sp.Piecewise((X, X > 0), (negative * X, True))
    if kind == "custom":
        formula = parse_formula(expression or "", {"x": X})
        if not formula.has(X):
            raise FormulaError("does not use x")
        derivative = sp.diff(formula, X)
        if derivative.has(sp.Derivative, sp.Subs):
            raise FormulaError(f"SymPy cannot differentiate it (got {derivative})")
        return formula
    builtin = {
        "identity": X,
        "relu": sp.Max(0, X),
        "sigmoid": sigmoid(X),
        "tanh": sp.tanh(X),
        "softplus": softplus(X),
        "gelu": X / 2 * (1 + sp.erf(X / sp.sqrt(2))),
    }
    return builtin[kind]


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

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def definition(self) -> sp.Expr:
        """The formula with this call's argument in place of ``x``."""
        return self.formula.subs(X, self.args[0])


class Activation(Elementwise):
    """An activation; its derivative class is :attr:`derivative`.

    :attr:`output_form` is the derivative written in the activation's output ``Y``
    when SymPy's derivative uses ``x`` only through the activation itself
    (``tanh' = 1 - tanh(x)**2 = 1 - Y**2``), else ``None``: backprop then reuses the
    forward pass's ``h`` instead of recomputing ``tanh(r)``.
    """

    derivative: ClassVar[type[Elementwise]]
    output_form: ClassVar[sp.Expr | None]

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self.derivative(self.args[0])


class Derivative(Elementwise):
    """The derivative of an activation; differentiates its own formula in turn."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return kink_convention(sp.diff(self.formula, X)).subs(X, self.args[0])


_MADE: dict[tuple[str, sp.Expr], type[Activation]] = {}


def activation_function(name: str, formula: sp.Expr, latex: str) -> type[Activation]:
    """The SymPy function class ``name`` with the definition ``formula`` (in :data:`X`).

    Made once per name and formula, so that equal calls compare equal.
    """
    key = (name, formula)
    if key not in _MADE:
        slope = kink_convention(sp.diff(formula, X))
        derivative = type(
            f"{name}_derivative",
            (Derivative,),
            {
                "code_name": f"{name}_derivative",
                "latex_name": latex + "'",
                "formula": slope,
            },
        )
        in_output = slope.subs(formula, Y) if formula != X else slope
        _MADE[key] = type(
            name,
            (Activation,),
            {
                "code_name": name,
                "latex_name": latex,
                "formula": formula,
                "derivative": derivative,
                "output_form": None if in_output.has(X) else in_output,
            },
        )
    return _MADE[key]


def latex_function_name(name: str) -> str:
    """LaTeX for the activation function called ``name`` in the code."""
    if name in LATEX_NAMES:
        return LATEX_NAMES[name]
    return r"\operatorname{" + name.replace("_", r"\_") + "}"


def expand_activations(expr: sp.Expr) -> sp.Expr:
    """Replace every activation (and derivative) call by its formula."""
    is_call: Callable[[Any], bool] = lambda e: isinstance(e, Elementwise)  # noqa: E731
    return expr.replace(is_call, lambda e: e.definition())
