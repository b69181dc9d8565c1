"""Losses, written in SymPy: per element of the output, or per sample for softmax.

An elementwise loss is a formula ``l(y_predicted, y)`` of one predicted and one observed
value. The network's loss sums it over the output units (``squared``, the problem set's,
and ``custom``) or, with ``reduction = "mean"``, averages it over every element as
torch's ``MSELoss``, ``HuberLoss`` and ``BCEWithLogitsLoss`` do; then it is averaged or
summed over the batch as the spec's ``reduction`` says.

Built-in element losses, with ``d = y_predicted - y``:

- ``squared`` and ``mse``: ``d**2``;
- ``huber``: ``d**2/2`` where ``|d| <= delta``, else ``delta*(|d| - delta/2)``;
- ``binary_cross_entropy`` (from logits): ``softplus(y_predicted) - y*y_predicted``,
  which is ``-y*log(sigmoid(y_predicted)) - (1 - y)*log(1 - sigmoid(y_predicted))``;
- ``custom``: any formula in ``y_predicted`` and ``y`` (see :mod:`derive.expressions`).

``softmax_cross_entropy`` is not elementwise: per sample it is
``-sum_i y[i]*log(softmax(y_predicted)[i]) = sum_i y[i] * lse - sum_i y[i]*y_predicted[i]``
with ``lse = log(sum_k exp(y_predicted[k]))``; :mod:`derive.network` makes ``lse`` a
value of the network, so that its gradient, ``exp(y_predicted - lse)``, is the softmax
computed without overflow.

During differentiation an element loss is a SymPy function of two arguments,
``loss_element(y_predicted[b, i], y_observed[b, i])``, whose derivative is ``sympy.diff``
of its formula; :func:`expand_losses` puts the formulas back for printing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy as sp

from derive.activations import kink_convention
from derive.expressions import FormulaError, parse_formula
from derive.functions import softplus

#: The symbols an element loss is written in.
Y_PREDICTED = sp.Symbol("y_predicted", real=True)
Y_OBSERVED = sp.Symbol("y_observed", real=True)

LOSSES = (
    "squared",
    "mse",
    "softmax_cross_entropy",
    "binary_cross_entropy",
    "huber",
    "custom",
)
#: torch's default ``delta`` for ``HuberLoss``.
DEFAULT_DELTA = 1.0


@dataclass(frozen=True)
class Loss:
    """A loss: its element formula (``None`` for softmax) and how it is combined.

    ``units`` is ``"sum"`` (summed over output units) or ``"mean"`` (averaged over
    them too, when the spec's reduction is ``"mean"``).
    """

    kind: str
    element: sp.Expr | None
    units: str
    summary: str


def make_loss(
    kind: str, delta: float | None = None, expression: str | None = None
) -> Loss:
    """The loss ``kind``; raises :class:`~derive.expressions.FormulaError` for a custom
    formula that is not allowed or that SymPy cannot differentiate."""
    d = Y_PREDICTED - Y_OBSERVED
    if kind == "squared":
        return Loss(
            kind,
            d**2,
            "sum",
            "squared error summed over output units (the problem set's)",
        )
    if kind == "mse":
        return Loss(kind, d**2, "mean", "squared error averaged like torch's MSELoss")
    if kind == "huber":
        bound = _number(DEFAULT_DELTA if delta is None else delta)
        element = sp.Piecewise(
            (d**2 / 2, sp.Abs(d) <= bound), (bound * (sp.Abs(d) - bound / 2), True)
        )
        return Loss(kind, element, "mean", f"Huber loss with delta = {float(bound)}")
    if kind == "binary_cross_entropy":
        element = softplus(Y_PREDICTED) - Y_OBSERVED * Y_PREDICTED
        return Loss(
            kind, element, "mean", "binary cross-entropy of logits (BCEWithLogitsLoss)"
        )
    if kind == "softmax_cross_entropy":
        return Loss(
            kind, None, "sum", "softmax cross-entropy of logits (CrossEntropyLoss)"
        )
    formula = parse_formula(
        expression or "", {"y_predicted": Y_PREDICTED, "y": Y_OBSERVED}
    )
    if not formula.has(Y_PREDICTED):
        raise FormulaError("does not use y_predicted")
    derivative = sp.diff(formula, Y_PREDICTED)
    if derivative.has(sp.Derivative, sp.Subs):
        raise FormulaError(f"SymPy cannot differentiate it (got {derivative})")
    return Loss(kind, formula, "sum", "custom loss, summed over output units")


def _number(value: float) -> sp.Expr:
    """An integral value as an Integer (so ``1.0*x`` reads ``x``), else a Float."""
    return sp.Integer(int(value)) if float(value).is_integer() else sp.Float(value)


class ElementLoss(sp.Function):
    """``l(y_predicted, y)`` at one element; differentiated through its formula."""

    nargs = 2
    formula: ClassVar[sp.Expr]
    derivative: ClassVar[type[ElementLoss] | None]

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1 or self.derivative is None:
            return super().fdiff(argindex)
        return self.derivative(*self.args)

    def definition(self) -> sp.Expr:
        predicted, observed = self.args
        return self.formula.subs(
            {Y_PREDICTED: predicted, Y_OBSERVED: observed}, simultaneous=True
        )

    def _latex(self, printer: Any, exp: Any = None) -> str:
        return printer._print(self.definition())


_MADE: dict[sp.Expr, type[ElementLoss]] = {}


def element_loss_function(formula: sp.Expr) -> type[ElementLoss]:
    """The SymPy function class for the element loss ``formula``; made once each."""
    if formula not in _MADE:
        derivative = type(
            "loss_element_derivative",
            (ElementLoss,),
            {
                "formula": kink_convention(sp.diff(formula, Y_PREDICTED)),
                "derivative": None,
            },
        )
        _MADE[formula] = type(
            "loss_element",
            (ElementLoss,),
            {"formula": formula, "derivative": derivative},
        )
    return _MADE[formula]


def element_derivative(loss: Loss) -> sp.Expr:
    """``dl/dy_predicted`` as SymPy derives it from the element formula."""
    assert loss.element is not None
    return kink_convention(sp.diff(loss.element, Y_PREDICTED))


def expand_losses(expr: sp.Expr) -> sp.Expr:
    """Replace every element-loss call by its formula."""
    is_call: Callable[[Any], bool] = lambda e: isinstance(e, ElementLoss)  # noqa: E731
    return expr.replace(is_call, lambda e: e.definition())
