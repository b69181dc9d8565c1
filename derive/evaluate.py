"""Evaluate a derivation at a point with SymPy, independently of the generated code.

Every value and every gradient is taken from the same index-form expressions the
LaTeX prints, unrolled at concrete sizes (:mod:`derive.passes.unroll`) with the
activations written out, and evaluated in SymPy's exact arithmetic where the numbers
allow it (the problem set's worked point gives integers), else to 30 digits. The
derivation documents show these numbers at a spec's worked point, and the tests
compare them with what the generated code computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from derive.activations import expand_activations
from derive.derivation import Derivation
from derive.graph import N_BATCH
from derive.graph import Value as Array
from derive.losses import expand_losses
from derive.passes.unroll import elements, unroll

DIGITS = 30


class ShapeError(ValueError):
    """A number given for an array does not have the array's shape."""

    def __init__(
        self, name: str, shape: tuple[int, ...], expected: tuple[int, ...]
    ) -> None:
        super().__init__(f"{name} has shape {shape}, expected {expected}")
        self.name = name
        self.message = f"has shape {shape}, expected {expected}"


def evaluate(derivation: Derivation, point: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every value and gradient of ``derivation`` at ``point``; see :class:`Evaluator`."""
    return Evaluator(derivation, point).results


class Evaluator:
    """A derivation evaluated at one point.

    ``point`` holds every input (``x``, ``y_observed``) and parameter, as numbers or nested
    lists in their shapes (with the batch axis first, for torch shapes).
    :attr:`results` is keyed by name (``r1``, ``d_loss_d_W0``, ``loss``); each entry is
    an object array of SymPy numbers. :meth:`element` evaluates any other index-form
    expression over the same arrays, such as a line of a printed derivation.
    """

    def __init__(self, derivation: Derivation, point: Mapping[str, Any]) -> None:
        network = derivation.network
        self.widths: dict[sp.Symbol, int] = dict(network.widths)
        for given in network.inputs:
            if given.batched:
                size = np.asarray(point[given.name], dtype=object).shape[0]
                self.widths[N_BATCH] = size
        self.known: dict[tuple[str, tuple[int, ...]], sp.Expr] = {}
        self.results: dict[str, np.ndarray] = {}
        for given in (*network.inputs, *network.parameters):
            self._given(given, point[given.name])
        for value in network.computed:
            self._computed(value, value.definition, value.indices)
        loss_formula = expand_losses(network.loss)
        loss = unroll(expand_activations(loss_formula), self.widths)
        self.results["loss"] = np.asarray(_number(self._substitute(loss)), dtype=object)
        for gradient in derivation.gradients:
            self._computed(gradient.array, gradient.expression, gradient.array.indices)

    def shape(self, array: Array) -> tuple[int, ...]:
        # A size is a symbol, or a number (a kept axis, keepdims=True, has size 1).
        return tuple(int(s.xreplace(self.widths)) for s in array.sizes)

    def element(
        self, expr: sp.Expr, indices: Sequence[sp.Symbol], at: Sequence[int]
    ) -> sp.Expr:
        """``expr`` (free ``indices``) at the element ``at``, as a number."""
        # unroll does the sums once the sizes are numbers: doit() before that, on
        # symbolic sizes, costs ten times more.
        written_out = expand_activations(expr)
        return _number(self._substitute(unroll(written_out, self.widths, indices, at)))

    def _substitute(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every element and scalar whose number is known replaced."""

        def number(e: sp.Expr) -> sp.Expr:
            if isinstance(e, sp.Indexed):
                return self.known[(str(e.base.label), tuple(int(i) for i in e.indices))]
            return self.known.get((e.name, ()), e)

        return expr.replace(lambda e: isinstance(e, (sp.Indexed, sp.Symbol)), number)

    def _given(self, array: Array, values: Any) -> None:
        grid = np.asarray(values, dtype=object)
        if grid.shape != self.shape(array):
            raise ShapeError(array.name, grid.shape, self.shape(array))
        for at in elements(grid.shape):
            self.known[(array.name, at)] = _given_number(grid[at])
        self.results[array.name] = _grid(self.known, array.name, grid.shape)

    def _computed(self, array: Array, expr: sp.Expr, indices: tuple) -> None:
        written_out = expand_activations(expr)
        for at in elements(self.shape(array)):
            value = self._substitute(unroll(written_out, self.widths, indices, at))
            self.known[(array.name, at)] = _number(value)
        self.results[array.name] = _grid(self.known, array.name, self.shape(array))


def _given_number(value: Any) -> sp.Expr:
    """An integer exactly (the worked point's ``x = 10``), anything else as a Float."""
    number = float(value)
    if number.is_integer() and abs(number) < 2**53:
        return sp.Integer(int(number))
    return sp.Float(number, DIGITS)


def _number(value: sp.Expr) -> sp.Expr:
    """``value`` exactly when SymPy can keep it exact and short, else as a Float."""
    value = sp.sympify(value).doit()
    if not value.is_number:
        raise ValueError(f"not a number at this point: {value}")
    if value.is_Rational:
        return value
    return value.evalf(DIGITS)


def _grid(
    known: Mapping[tuple[str, tuple[int, ...]], sp.Expr],
    name: str,
    shape: tuple[int, ...],
) -> np.ndarray:
    grid = np.empty(shape, dtype=object)
    for at in elements(shape):
        grid[at] = known[(name, at)]
    return grid
