"""What the unrolled module says: the problem set's style, one line per neuron.

This module turns a :class:`~derive.derivation.Derivation` of a network without a batch
axis into the data ``templates/unrolled.py.j2`` lays out. Every index-form expression
is unrolled (:mod:`derive.passes.unroll`) at each element and printed by
:class:`ScalarCodePrinter`: the generated code works on Python floats and nested lists,
with activations inlined, which is the fastest plain Python for small networks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from derive.activations import expand_activations
from derive.derivation import Derivation
from derive.helpers import (
    ActivationCode,
    HelperCode,
    primitives_used,
    scalar_functions,
)
from derive.network import Array, Network
from derive.passes.unroll import ScalarLogSumExp, elements, unroll
from derive.printing.code import Printers
from derive.printing.python_code import ScalarCodePrinter
from derive.printing.text import text
from derive.progress import Status, quiet
from derive.python_module import Parameter, describe, equation


@dataclass(frozen=True)
class Line:
    """``name = code``."""

    name: str
    code: str


@dataclass(frozen=True)
class Nested:
    """An array as its element variables: ``(W1_0_0, W1_0_1), (W1_1_0, W1_1_1)``."""

    name: str
    elements: str  # the names, nested as tuples, for unpacking
    as_list: str  # the names, nested as lists, for returning


@dataclass(frozen=True)
class UnrolledContext:
    """Everything ``unrolled.py.j2`` needs; each line of math printed by SymPy."""

    network: Network
    activations: tuple[ActivationCode, ...]
    helpers: tuple[HelperCode, ...]
    imports: tuple[str, ...]  # the modules the code calls: math
    log_sum_exp: bool
    class_labels: bool  # whether y may be given as an integer class label
    parameters: tuple[Parameter, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sizes: tuple[tuple[str, int], ...]
    forward_math: tuple[str, ...]
    loss_math: str
    backward_math: tuple[str, ...]
    unpack_parameters: tuple[Nested, ...]
    x: Nested
    y: Nested
    y_predicted: Nested
    forward: tuple[Line, ...]
    values: tuple[Nested, ...]
    loss_code: str
    #: Per gradient, its lines; the parameters' gradients are computed in place in
    #: the returned lists (``gradients``) instead, each element used once.
    backward: tuple[tuple[str, tuple[Line, ...]], ...]
    gradients: tuple[Nested, ...]


def unrolled_context(derivation: Derivation, status: Status = quiet) -> UnrolledContext:
    """Unroll and print every expression of ``derivation`` for the template;
    ``status`` is told which array is being unrolled (the slow part)."""
    network = derivation.network
    assert isinstance(network, Network), "a [[layers]] network"
    unrolled = itertools.count(1)
    arrays = len(network.values) - 1 + len(derivation.gradients)
    widths = network.widths
    primitives = primitives_used(network, (g.expression for g in derivation.gradients))
    printers = Printers(ScalarCodePrinter)
    printer = printers(helpers=primitives)
    # Activations are inlined in the unrolled code; only the primitives are called.
    activations, helpers = scalar_functions(network, primitives, printers, primitives)

    def lines(array: Array, expr: sp.Expr, indices: tuple) -> tuple[Line, ...]:
        status(f"unrolling {array.name} ({next(unrolled)} of {arrays} arrays)")
        inlined = expand_activations(expr)
        return tuple(
            Line(
                printer.doprint(array.at(*map(sp.Integer, at))),
                printer.doprint(unroll(inlined, widths, indices, at)),
            )
            for at in elements(network.sample_shape(array))
        )

    def nested(array: Array) -> Nested:
        shape = network.sample_shape(array)
        element = {
            at: printer.doprint(array.at(*map(sp.Integer, at)))
            for at in elements(shape)
        }
        return Nested(
            array.name, _nest(element, shape, "(", ")"), _nest(element, shape, "[", "]")
        )

    def computed(array: Array, lines: tuple[Line, ...]) -> Nested:
        """``array`` as nested lists of the expressions that compute its elements."""
        shape = network.sample_shape(array)
        code = dict(zip(elements(shape), (line.code for line in lines), strict=True))
        return Nested(array.name, "", _nest(code, shape, "[", "]"))

    forward: list[Line] = []
    for value in network.values[1:]:
        forward.extend(lines(value, value.definition, value.indices))
    backward = tuple(
        (g.name, lines(g.array, g.expression, g.array.indices))
        for g in derivation.gradients
    )
    loss = unroll(expand_activations(network.loss_of_prediction), widths)
    gradient_of = {g.target.name: g.array for g in derivation.gradients}
    loss_code = printer.doprint(loss)
    log_sum_exp = loss.has(ScalarLogSumExp)
    return UnrolledContext(
        network=network,
        activations=activations,
        helpers=helpers,
        # SymPy's printers record the modules the printed code calls.
        imports=tuple(
            sorted({*printers.imports(), *(["math"] if log_sum_exp else [])})
        ),
        log_sum_exp=log_sum_exp,
        class_labels=network.kind.kind == "softmax_cross_entropy",
        parameters=tuple(
            Parameter(
                p.name, network.sample_shape(p), describe(p), gradient_of[p.name].name
            )
            for p in network.parameters
        ),
        input_shape=network.sample_shape(network.values[0]),
        output_shape=network.sample_shape(network.output),
        sizes=tuple((s.name, n) for s, n in widths.items()),
        forward_math=tuple(
            equation(v.element, v.definition) for v in network.values[1:]
        ),
        loss_math=text(network.loss_formula),
        backward_math=tuple(
            equation(g.array.element, g.expression) for g in derivation.gradients
        ),
        unpack_parameters=tuple(nested(p) for p in network.parameters),
        x=nested(network.values[0]),
        y=nested(network.observed),
        y_predicted=nested(network.output),
        forward=tuple(forward),
        values=tuple(nested(v) for v in network.values),
        loss_code=loss_code,
        backward=backward,
        gradients=tuple(
            computed(gradient_of[p.name], dict(backward)[gradient_of[p.name].name])
            for p in network.parameters
        ),
    )


def _nest(
    names: dict[tuple[int, ...], str], shape: tuple[int, ...], open_: str, close: str
) -> str:
    """The element names of an array of ``shape``, nested with the given brackets."""
    if not shape:
        return names[()]

    def level(prefix: tuple[int, ...]) -> str:
        depth = len(prefix)
        if depth == len(shape):
            return names[prefix]
        items = [level((*prefix, k)) for k in range(shape[depth])]
        trailing = "," if len(items) == 1 and open_ == "(" else ""
        return f"{open_}{', '.join(items)}{trailing}{close}"

    if open_ == "(":  # the outer level of an unpacking target needs no brackets
        items = [level((k,)) for k in range(shape[0])]
        return ", ".join(items) + ("," if len(items) == 1 else "")
    return level(())
