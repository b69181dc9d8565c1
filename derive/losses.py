"""Losses as SymPy expressions of one predicted value and one observed value.

A loss is an element loss ``l(y_predicted, y_observed)`` summed over the output units
(``squared``, the problem set's) or, with ``reduction = "mean"``, averaged over them
(``mse``: torch's ``MSELoss`` averages over every element, or sums every element),
then averaged or summed over the batch as the spec's ``reduction`` says. Derivatives come from
``sympy.diff`` on the assembled loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

#: The symbols an element loss is written in.
Y_PREDICTED = sp.Symbol("y_predicted", real=True)
Y_OBSERVED = sp.Symbol("y_observed", real=True)


@dataclass(frozen=True)
class Loss:
    """An element loss and how it is combined over the output units."""

    element: sp.Expr
    units: str  # "sum" over output units, or "mean" when the reduction is "mean"
    summary: str

    def at(self, predicted: sp.Expr, observed: sp.Expr) -> sp.Expr:
        """The element loss at one predicted and one observed value."""
        return self.element.subs(
            {Y_PREDICTED: predicted, Y_OBSERVED: observed}, simultaneous=True
        )


LOSSES: dict[str, Loss] = {
    "squared": Loss(
        (Y_PREDICTED - Y_OBSERVED) ** 2,
        "sum",
        "squared error, summed over output units (the problem set's loss)",
    ),
    "mse": Loss(
        (Y_PREDICTED - Y_OBSERVED) ** 2,
        "mean",
        "squared error, averaged over every element (torch's MSELoss)",
    ),
}
