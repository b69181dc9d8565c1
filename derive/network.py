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
from derive.equations import EquationSpec, build_graph
from derive.graph import N_BATCH, Axis, Graph, Role, Value, batch_axis
from derive.losses import Loss, element_loss_function, expand_losses, make_loss
from derive.spec import LayerSpec, LossSpec, NetworkSpec

__all__ = ["N_BATCH", "Array", "Network", "build", "build_network"]


def build(spec: NetworkSpec | EquationSpec) -> Graph:
    """The graph of either spec form: equations lowered, or layers compiled."""
    if isinstance(spec, EquationSpec):
        return build_graph(spec)
    return build_network(spec)


BATCH = sp.Symbol("b", integer=True)
UNIT = sp.Symbol("i", integer=True)
INPUT_UNIT = sp.Symbol("k", integer=True)
N_INPUT = sp.Symbol("n_in", integer=True, positive=True)
#: How the layer front end's sizes read in LaTeX.
SIZE_LATEX = {"n_batch": r"n_{\text{batch}}", "n_in": r"n_{\text{in}}"}

#: A value of a layered network (the graph's value type).
Array = Value


def width_symbol(layer: int) -> sp.Symbol:
    """The symbolic width of layer ``layer``'s output."""
    return sp.Symbol(f"n{layer}", integer=True, positive=True)


def _latex(name: str, layer: int | None = None) -> str:
    """The problem set's notation: ``h^{(0)}``, ``W^{(1)}``, ``\\hat{y}``."""
    special = {"y_predicted": r"\hat{y}", "y_observed": "y", "x": "x"}
    if name in special:
        return special[name]
    if name == "lse":
        return r"\operatorname{lse}"
    return f"{name[0]}^{{({layer})}}"


@dataclass(frozen=True)
class Network(Graph):
    """A graph built from a ``[[layers]]`` spec: one input ``x``, one target
    ``y_observed``, values ``r0, h0, ..., y_predicted`` and a loss of a kind."""

    loss_kind: Loss | None = None

    @property
    def values(self) -> tuple[Value, ...]:
        """``x``, then every computed value, as the problem set's ``mlp`` returns them."""
        return (self.array("x"), *self.computed)

    @property
    def observed(self) -> Value:
        return self.array("y_observed")

    @property
    def forward_function(self) -> str:
        """The name of the problem set's forward function in the generated module,
        the one that returns the dict of values (``mlp(x, W0, W1, W2)``)."""
        return "mlp"

    @property
    def output(self) -> Value:
        return self.array("y_predicted")

    @property
    def kind(self) -> Loss:
        assert self.loss_kind is not None
        return self.loss_kind

    @property
    def loss_formula(self) -> sp.Expr:
        """The loss with every element loss written out, for printing."""
        return expand_losses(self.loss)

    @property
    def loss_of_prediction(self) -> sp.Expr:
        """The loss in ``y_predicted`` and ``y_observed`` alone (softmax's log
        normalizer written out): what ``loss(y_predicted, y_observed)`` computes."""
        normalizer = {v.element: v.definition for v in self.of_role(Role.NORMALIZER)}
        return self.loss_formula.xreplace(normalizer)


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
    """Compile a validated ``[[layers]]`` spec into the graph of named values."""
    batched = is_batched(spec)
    scalar_ends = spec.shapes == "problem_set"
    widths: dict[sp.Symbol, int] = {N_INPUT: spec.input}

    def axes(size: sp.Symbol, width: int) -> tuple[tuple, tuple]:
        """Indices and axes of a value with ``width`` units."""
        unit = not (scalar_ends and width == 1)
        indices = (UNIT,) if unit else ()
        named = (Axis(size.name, size),) if unit else ()
        if batched:
            return (BATCH, *indices), (batch_axis(), *named)
        return indices, named

    def value(
        name: str, role: Role, indices: tuple, axes_: tuple, layer: int | None, **fields
    ) -> Value:
        return Value(
            name,
            role,
            axes_,
            indices,
            latex=_latex(name, layer),
            gradient="d_loss_d_" + name.replace("_", ""),
            layer=layer,
            **fields,
        )

    indices, axes_ = axes(N_INPUT, spec.input)
    previous = value("x", Role.INPUT, indices, axes_, None, doc="the input")
    nodes = [previous]
    parameters = []
    computed = []
    functions: dict[str, type[Activation]] = {}
    last = len(spec.layers) - 1
    for layer, layer_spec in enumerate(spec.layers):
        size = width_symbol(layer)
        widths[size] = layer_spec.width
        indices, axes_ = axes(size, layer_spec.width)
        out_units = indices[1:] if batched else indices
        out_axes = axes_[1:] if batched else axes_
        in_units = (INPUT_UNIT,) if previous.has_units else ()
        in_element = previous.at(
            *previous.indices[: len(previous.indices) - len(in_units)], *in_units
        )
        in_axes = previous.axes[-1:] if in_units else ()
        weight = value(
            f"W{layer}",
            Role.PARAMETER,
            (*out_units, *in_units),
            (*out_axes, *in_axes),
            layer,
            doc=f"layer {layer} weights",
        )
        parameters.append(weight)
        linear = weight.element * in_element
        if in_units:
            linear = sp.Sum(linear, (INPUT_UNIT, 0, in_axes[0].size - 1))
        if layer_spec.bias:
            bias = value(
                f"b{layer}",
                Role.PARAMETER,
                out_units,
                out_axes,
                layer,
                doc=f"layer {layer} biases",
            )
            parameters.append(bias)
            linear = linear + bias.element
        activation = layer_spec.activation
        linear_name = (
            "y_predicted" if layer == last and activation == "identity" else f"r{layer}"
        )
        previous = value(
            linear_name, Role.VALUE, indices, axes_, layer, definition=linear
        )
        computed.append(previous)
        if activation != "identity":
            name = "y_predicted" if layer == last else f"h{layer}"
            function = activation_class(layer_spec)
            functions.setdefault(layer_spec.function_name, function)
            applied = function(previous.element)
            previous = value(
                name,
                Role.VALUE,
                indices,
                axes_,
                layer,
                definition=applied,
                activation=layer_spec.function_name,
            )
            computed.append(previous)

    output = computed[-1]
    observed = value(
        "y_observed", Role.INPUT, output.indices, output.axes, None, doc="the target"
    )
    kind = make_loss(spec.loss.kind, spec.loss.delta, spec.loss.expression)
    if kind.element is None:
        normalizer = _log_normalizer(output)
        computed.append(normalizer)
        loss = _softmax_loss(spec.loss, output, observed, normalizer)
    else:
        loss = _element_loss(spec.loss, kind, output, observed)
    loss_value = Value("loss", Role.LOSS, (), (), definition=loss, latex="L")
    return Network(
        name=spec.name,
        spec=spec,
        nodes=(*nodes, observed, *parameters, *computed, loss_value),
        sizes=widths,
        functions=dict(functions),
        size_latex=SIZE_LATEX,
        loss_kind=kind,
    )


def _element_loss(
    spec: LossSpec, kind: Loss, output: Array, observed: Array
) -> sp.Expr:
    """The element loss summed over every axis, then scaled."""
    assert kind.element is not None
    total = element_loss_function(kind.element)(output.element, observed.element)
    scale = sp.Integer(1)
    averaged = spec.reduction == "mean"
    for index, axis in zip(output.indices, output.axes, strict=True):
        total = sp.Sum(total, (index, 0, axis.size - 1))
        if averaged and (axis.batch or kind.units == "mean"):
            size = axis.size
            scale = scale / size
    return scale * total


def _log_normalizer(output: Array) -> Array:
    """``lse[b] = log(sum_k exp(y_predicted[b, k]))``, softmax's log normalizer."""
    indices, axes = output.indices[:-1], output.axes[:-1]
    logits = output.at(*indices, INPUT_UNIT)
    definition = sp.log(sp.Sum(sp.exp(logits), (INPUT_UNIT, 0, output.sizes[-1] - 1)))
    return Value(
        "lse",
        Role.NORMALIZER,
        axes,
        indices,
        definition=definition,
        latex=r"\operatorname{lse}",
        gradient="d_loss_d_lse",
        layer=output.layer,
        doc="log-normalizer of the softmax",
    )


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
