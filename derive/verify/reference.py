"""The spec's forward pass and loss computed directly by NumPy, for both spec forms.

:class:`EquationReference` walks each equation's formula (:mod:`.interpreter`);
:class:`LayersReference` runs a ``[[layers]]`` spec's layers, activations and loss as
plain NumPy, written here from the spec's fields. Neither reads the derivation, the
graph's definitions or the generated code. Both return every value by the name the
graph gives it, the loss last, and take a value given for any of them (the
upstream values are then not used), which is how a gradient with respect to a value
is checked by finite differences.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from derive.equations import EquationSpec
from derive.losses import DEFAULT_DELTA, make_loss
from derive.spec import LayerSpec, NetworkSpec
from derive.verify.interpreter import UNARY, Site, Walk, _logsumexp, parse

Array = Any


class Reference(Protocol):
    """A spec's forward pass: every value, keyed by its graph name, the loss last."""

    def values(
        self,
        arrays: Mapping[str, Array],
        given: Mapping[str, Array] | None = None,
        known: Mapping[str, Array] | None = None,
        changed: str | None = None,
    ) -> dict[str, Array]: ...


class EquationReference:
    """An equation spec's formulas, each walked in order with NumPy."""

    def __init__(
        self, spec: EquationSpec, sites: Mapping[str, Mapping[Site, str]]
    ) -> None:
        self.spec = spec
        self.trees = {name: parse(text) for name, text in spec.equations.items()}
        self.sites = sites
        # The first equation each name can change: its own (a value, or a part named
        # inside it), or its first reader's (an input or parameter).
        self.first: dict[str, int] = {}
        for position, (name, tree) in enumerate(self.trees.items()):
            self.first.setdefault(name, position)
            for part in sites.get(name, {}).values():
                self.first.setdefault(part, position)
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in self.first:
                    self.first[node.id] = position
        self.order = list(self.trees)  # the equations in order, to slice

    def values(
        self,
        arrays: Mapping[str, Array],
        given: Mapping[str, Array] | None = None,
        known: Mapping[str, Array] | None = None,
        changed: str | None = None,
    ) -> dict[str, Array]:
        """Every value at ``arrays``, with ``given`` taken for some. ``known`` are the
        values at a point that differs only in ``changed``: the equations before the
        first that ``changed`` can reach are not walked again."""
        given = given or {}
        scope: dict[str, Any] = {**self.spec.sizes, **arrays}
        values: dict[str, Array] = {}
        start = 0
        if known is not None and changed is not None:
            start = self.first.get(changed, len(self.order))
            for name in self.order[:start]:
                scope[name] = known[name]
            values.update(
                {k: v for k, v in known.items() if self.first.get(k, 0) < start}
            )
        for name in self.order[start:]:
            tree = self.trees[name]
            walk = Walk(scope, self.sites.get(name, {}), given)
            result = given[name] if name in given else walk(tree)
            values.update(walk.named)
            values[name] = scope[name] = np.asarray(result, dtype=np.float64)
        return values


class LayersReference:
    """A ``[[layers]]`` spec's network: ``r = h W^T + b``, ``h = f(r)``, then the loss."""

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec
        self.loss = make_loss(spec.loss.kind, spec.loss.delta, spec.loss.expression)
        self.batched = spec.shapes == "torch" and spec.style == "vectorized"

    def values(
        self,
        arrays: Mapping[str, Array],
        given: Mapping[str, Array] | None = None,
        known: Mapping[str, Array] | None = None,
        changed: str | None = None,
    ) -> dict[str, Array]:
        given = given or {}
        values: dict[str, Array] = {}

        def named(name: str, value: Callable[[], Array]) -> Array:
            values[name] = np.asarray(given[name] if name in given else value())
            return values[name]

        h = np.asarray(arrays["x"], dtype=np.float64)
        last = len(self.spec.layers) - 1
        start = 0
        if known is not None and changed is not None:
            # The layers before the first that ``changed`` reaches are as they were.
            start = self._layer_of(changed)
            for n in range(start):
                for name in self._names(n):
                    values[name] = known[name]
            if start > 0:  # what the first layer walked reads: perhaps the change
                before = self._names(start - 1)[-1]
                if before in given:
                    values[before] = np.asarray(given[before])
                h = values[before]
        for n in range(start, len(self.spec.layers)):
            layer = self.spec.layers[n]
            identity = layer.activation == "identity"

            def linear(n: int = n, h: Array = h, bias: bool = layer.bias) -> Array:
                weight = np.asarray(arrays[f"W{n}"])
                r = _linear(h, weight, self._has_units(n - 1), self._has_units(n))
                return r + arrays[f"b{n}"] if bias else r

            r = named("y_predicted" if n == last and identity else f"r{n}", linear)
            if not identity:
                h = named(
                    "y_predicted" if n == last else f"h{n}",
                    functools.partial(_apply, layer, r),
                )
            else:
                h = r
        y = np.asarray(arrays["y_observed"], dtype=np.float64)
        values["loss"] = self._loss(h, y, named)
        return values

    def _names(self, n: int) -> list[str]:
        """The values layer ``n`` makes, in order: ``r{n}``, then ``h{n}``."""
        last = n == len(self.spec.layers) - 1
        if self.spec.layers[n].activation == "identity":
            return ["y_predicted" if last else f"r{n}"]
        return [f"r{n}", "y_predicted" if last else f"h{n}"]

    def _layer_of(self, name: str) -> int:
        """The first layer that a change of ``name`` reaches."""
        if name[:1] in "Wb" and name[1:].isdigit():
            return int(name[1:])
        for n in range(len(self.spec.layers)):
            if name in self._names(n):
                return n + 1 if name == self._names(n)[-1] else n
        return 0 if name == "x" else len(self.spec.layers)

    def _has_units(self, layer: int) -> bool:
        """Whether layer ``layer``'s output (``-1``: the input) has a unit axis."""
        width = self.spec.input if layer < 0 else self.spec.layers[layer].width
        return not (self.spec.shapes == "problem_set" and width == 1)

    def _loss(self, predicted: Array, observed: Array, named: Any) -> Array:
        spec = self.spec.loss
        mean = spec.reduction == "mean"
        if spec.kind == "softmax_cross_entropy":
            lse = named("lse", lambda: _logsumexp(predicted, axis=-1))
            per_sample = np.sum(observed, axis=-1) * lse - np.sum(
                observed * predicted, axis=-1
            )
            if not self.batched:
                return per_sample
            total = np.sum(per_sample)
            return total / predicted.shape[0] if mean else total
        element = _element_loss(spec.kind, spec.delta, spec.expression)
        total = np.sum(element(predicted, observed))
        count = 1
        if mean and self.batched:
            count *= predicted.shape[0]
        if mean and self.loss.units == "mean":
            count *= int(
                np.prod(predicted.shape[1:] if self.batched else predicted.shape)
            )
        return total / count


def _linear(h: Array, weight: Array, in_units: bool, out_units: bool) -> Array:
    """``h W^T`` for every arrangement of unit axes (``W`` is ``(out, in)``, with an
    axis left out where its side is a scalar)."""
    if in_units and out_units:
        return h @ weight.T
    if in_units:
        return h @ weight
    if out_units:
        return h[..., None] * weight
    return h * weight


def _apply(layer: LayerSpec, r: Array) -> Array:
    if layer.activation == "leaky_relu":
        slope = 0.01 if layer.slope is None else layer.slope
        return np.where(r > 0, r, slope * r)
    if layer.activation == "custom":
        assert layer.expression is not None
        return Walk({"x": r})(parse(layer.expression))
    return UNARY[layer.activation](r)


def _element_loss(kind: str, delta: float | None, expression: str | None) -> Any:
    """The loss of one element, ``l(y_predicted, y)``, as NumPy computes it."""
    if kind in ("squared", "mse"):
        return lambda p, y: (p - y) ** 2
    if kind == "huber":
        bound = DEFAULT_DELTA if delta is None else delta
        return lambda p, y: np.where(
            np.abs(p - y) <= bound,
            (p - y) ** 2 / 2,
            bound * (np.abs(p - y) - bound / 2),
        )
    if kind == "binary_cross_entropy":
        return lambda p, y: np.logaddexp(0.0, p) - y * p
    assert kind == "custom" and expression is not None
    tree = parse(expression)
    return lambda p, y: Walk({"y_predicted": p, "y": y})(tree)
