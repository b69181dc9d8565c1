"""Build a network and its loss as SymPy expressions in index form.

Every value is an ``IndexedBase`` (or a plain ``Symbol`` when it is a scalar) whose
definition is written with the indices of one element and symbolic sizes, for example
``r1[b, i] = Sum(W1[i, k] * h0[b, k], (k, 0, n0 - 1)) + b1[i]``. Sizes stay symbolic
(``n0``, ``n_batch``), so the derivation costs the same at width 4 and width 4096.

Index names: ``b`` is the batch axis, ``i`` a unit of the value being defined and
``k`` the unit of the layer's input it sums over.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.activations import (
    Activation,
    activation_function,
    definition,
    latex_function_name,
)
from derive.losses import Loss, element_loss_function, expand_losses, make_loss
from derive.spec import LayerSpec, LossSpec, NetworkSpec

BATCH = sp.Symbol("b", integer=True)
UNIT = sp.Symbol("i", integer=True)
INPUT_UNIT = sp.Symbol("k", integer=True)
N_BATCH = sp.Symbol("n_batch", integer=True, positive=True)
N_INPUT = sp.Symbol("n_in", integer=True, positive=True)


def width_symbol(layer: int) -> sp.Symbol:
    """The symbolic width of layer ``layer``'s output."""
    return sp.Symbol(f"n{layer}", integer=True, positive=True)


@dataclass(frozen=True)
class Array:
    """A named array (or scalar) of the network: a value, a parameter or the target.

    ``indices`` name the element that ``definition`` defines; ``sizes`` are the symbolic
    lengths of the axes, in the same order.
    """

    name: str
    indices: tuple[sp.Symbol, ...]
    sizes: tuple[sp.Symbol, ...]
    layer: int
    definition: sp.Expr | None = None
    activation: str | None = None

    @property
    def base(self) -> sp.Symbol | sp.IndexedBase:
        if not self.indices:
            return sp.Symbol(self.name, real=True)
        return sp.IndexedBase(self.name, shape=self.sizes)

    def at(self, *indices: sp.Expr) -> sp.Expr:
        """The element at ``indices`` (the scalar itself when there are none)."""
        if len(indices) != len(self.indices):
            raise ValueError(f"{self.name} takes {len(self.indices)} indices")
        base = self.base
        return base[indices] if isinstance(base, sp.IndexedBase) else base

    @property
    def element(self) -> sp.Expr:
        """The element named by :attr:`indices`."""
        return self.at(*self.indices)

    @property
    def batched(self) -> bool:
        return bool(self.sizes) and self.sizes[0] == N_BATCH

    @property
    def has_units(self) -> bool:
        """Whether it has a unit axis (a problem-set scalar, or one per sample, has not)."""
        return len(self.indices) > int(self.batched)


@dataclass(frozen=True)
class Network:
    """The symbolic network: values in forward order, parameters, target and loss."""

    spec: NetworkSpec
    values: tuple[Array, ...]
    parameters: tuple[Array, ...]
    observed: Array
    loss: sp.Expr
    loss_kind: Loss
    widths: dict[sp.Symbol, int]
    functions: dict[str, type[Activation]]  # activations used, by code name

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def batched(self) -> bool:
        return is_batched(self.spec)

    @property
    def forward_function(self) -> str:
        """The name of the problem set's forward function in the generated module,
        the one that returns the dict of values (``mlp(x, W0, W1, W2)``)."""
        return "mlp"

    @property
    def output(self) -> Array:
        return self.array("y_predicted")

    @property
    def loss_formula(self) -> sp.Expr:
        """The loss with every element loss written out, for printing."""
        return expand_losses(self.loss)

    @property
    def loss_of_prediction(self) -> sp.Expr:
        """The loss in ``y_predicted`` and ``y_observed`` alone (softmax's log
        normalizer written out): what ``loss(y_predicted, y_observed)`` computes."""
        normalizer = {v.element: v.definition for v in self.values if v.name == "lse"}
        return self.loss_formula.xreplace(normalizer)

    def array(self, name: str) -> Array:
        for array in (*self.values, *self.parameters, self.observed):
            if array.name == name:
                return array
        raise KeyError(name)

    def sample_shape(self, array: Array) -> tuple[int, ...]:
        """Numeric shape of ``array`` in a network without a batch axis."""
        if array.batched:
            raise ValueError(f"{array.name} has a batch axis")
        return tuple(self.widths[s] for s in array.sizes)

    def shape(self, array: Array) -> tuple[int | str, ...]:
        """Numeric shape of ``array``; the batch axis is ``"batch"``."""
        return tuple("batch" if s == N_BATCH else self.widths[s] for s in array.sizes)


def is_batched(spec: NetworkSpec) -> bool:
    """Torch shapes in the vectorized style have a leading batch axis; unrolled code
    takes one sample."""
    return spec.shapes == "torch" and spec.style == "vectorized"


def activation_class(layer: LayerSpec) -> type[Activation]:
    """The SymPy function class for ``layer``'s activation."""
    formula = definition(layer.activation, layer.slope, layer.expression)
    name = layer.function_name
    latex = latex_function_name(
        name if layer.activation == "custom" else layer.activation
    )
    return activation_function(name, formula, latex)


def build_network(spec: NetworkSpec) -> Network:
    """Turn a validated spec into the symbolic network and its loss."""
    batched = is_batched(spec)
    scalar_ends = spec.shapes == "problem_set"
    widths: dict[sp.Symbol, int] = {N_INPUT: spec.input}

    def axes(size: sp.Symbol, width: int, index: sp.Symbol) -> tuple[tuple, tuple]:
        """Indices and sizes of a value with ``width`` units."""
        unit = () if scalar_ends and width == 1 else ((index,), (size,))
        unit_indices, unit_sizes = unit if unit else ((), ())
        if batched:
            return (BATCH, *unit_indices), (N_BATCH, *unit_sizes)
        return tuple(unit_indices), tuple(unit_sizes)

    indices, sizes = axes(N_INPUT, spec.input, UNIT)
    previous = Array("x", indices, sizes, layer=-1)
    values = [previous]
    parameters = []
    functions: dict[str, type[Activation]] = {}
    last = len(spec.layers) - 1
    for layer, layer_spec in enumerate(spec.layers):
        size = width_symbol(layer)
        widths[size] = layer_spec.width
        indices, sizes = axes(size, layer_spec.width, UNIT)
        out_units = indices[1:] if batched else indices
        out_sizes = sizes[1:] if batched else sizes
        in_units = (INPUT_UNIT,) if previous.has_units else ()
        in_element = previous.at(
            *previous.indices[: len(previous.indices) - len(in_units)], *in_units
        )
        in_sizes = previous.sizes[-1:] if in_units else ()
        weight = Array(
            f"W{layer}", (*out_units, *in_units), (*out_sizes, *in_sizes), layer
        )
        parameters.append(weight)
        linear = weight.element * in_element
        if in_units:
            linear = sp.Sum(linear, (INPUT_UNIT, 0, in_sizes[0] - 1))
        if layer_spec.bias:
            bias = Array(f"b{layer}", out_units, out_sizes, layer)
            parameters.append(bias)
            linear = linear + bias.element
        activation = layer_spec.activation
        linear_name = (
            "y_predicted" if layer == last and activation == "identity" else f"r{layer}"
        )
        previous = Array(linear_name, indices, sizes, layer, definition=linear)
        values.append(previous)
        if activation != "identity":
            name = "y_predicted" if layer == last else f"h{layer}"
            function = activation_class(layer_spec)
            functions.setdefault(layer_spec.function_name, function)
            applied = function(previous.element)
            previous = Array(
                name,
                indices,
                sizes,
                layer,
                definition=applied,
                activation=layer_spec.function_name,
            )
            values.append(previous)

    output = values[-1]
    observed = Array("y_observed", output.indices, output.sizes, layer=last)
    kind = make_loss(spec.loss.kind, spec.loss.delta, spec.loss.expression)
    if kind.element is None:
        normalizer = _log_normalizer(output)
        values.append(normalizer)
        loss = _softmax_loss(spec.loss, output, observed, normalizer)
    else:
        loss = _element_loss(spec.loss, kind, output, observed)
    return Network(
        spec=spec,
        values=tuple(values),
        parameters=tuple(parameters),
        observed=observed,
        loss=loss,
        loss_kind=kind,
        widths=widths,
        functions=functions,
    )


def _element_loss(
    spec: LossSpec, kind: Loss, output: Array, observed: Array
) -> sp.Expr:
    """The element loss summed over every axis, then scaled."""
    assert kind.element is not None
    total = element_loss_function(kind.element)(output.element, observed.element)
    scale = sp.Integer(1)
    averaged = spec.reduction == "mean"
    for index, size in zip(output.indices, output.sizes, strict=True):
        total = sp.Sum(total, (index, 0, size - 1))
        if averaged and (size == N_BATCH or kind.units == "mean"):
            scale = scale / size
    return scale * total


def _log_normalizer(output: Array) -> Array:
    """``lse[b] = log(sum_k exp(y_predicted[b, k]))``, softmax's log normalizer."""
    indices, sizes = output.indices[:-1], output.sizes[:-1]
    logits = output.at(*indices, INPUT_UNIT)
    definition = sp.log(sp.Sum(sp.exp(logits), (INPUT_UNIT, 0, output.sizes[-1] - 1)))
    return Array("lse", indices, sizes, output.layer, definition=definition)


def _softmax_loss(
    spec: LossSpec, output: Array, observed: Array, normalizer: Array
) -> sp.Expr:
    """``sum_b [sum_i y[b, i] * lse[b] - sum_i y[b, i] * y_predicted[b, i]]``, scaled.

    This is ``-sum_i y[b, i] * log(softmax(y_predicted[b])[i])`` written with the log
    normalizer, which is what torch's ``CrossEntropyLoss`` computes for
    class-probability (and, through one-hot rows, class-index) targets.
    """
    unit, units = output.indices[-1], output.sizes[-1]
    per_sample = sp.Sum(observed.element, (unit, 0, units - 1)) * normalizer.element
    per_sample -= sp.Sum(observed.element * output.element, (unit, 0, units - 1))
    if not normalizer.indices:
        return per_sample
    total = sp.Sum(per_sample, (BATCH, 0, N_BATCH - 1))
    return total / N_BATCH if spec.reduction == "mean" else total
