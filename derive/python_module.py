"""What the generated Python module says: every line of code printed from SymPy.

This module turns a :class:`~derive.derivation.Derivation` into the data the template
``templates/module.py.j2`` lays out. Code comes from :class:`NumPyCodePrinter` on the
array form of each expression; docstrings come from :func:`derive.printing.text.text`
on the index form of the same expression.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.derivation import Derivation
from derive.graph import N_BATCH, Graph, Value
from derive.helpers import (
    ActivationCode,
    HelperCode,
    primitives_used,
    scalar_functions,
)
from derive.network import Array, Network
from derive.passes.to_array import LogSumExp, to_array
from derive.printing.code import Printers
from derive.printing.numpy_code import NumPyCodePrinter
from derive.printing.text import text
from derive.targets import TARGETS, Target


@dataclass(frozen=True)
class Assignment:
    """``name = code``, documented by ``math`` (index form)."""

    name: str
    code: str
    math: str


@dataclass(frozen=True)
class Function:
    """A generated function of a fixed argument list returning ``code``."""

    name: str
    arguments: tuple[str, ...]
    code: str
    math: str
    doc: str
    returns_array: bool
    reads_target: bool  # whether its code reads y_observed, which it then checks
    namespace: str = ""  # the array_api target's namespace line, when the code needs it


@dataclass(frozen=True)
class Parameter:
    """A parameter, its numeric shape and what it is."""

    name: str
    shape: tuple[int, ...]
    doc: str
    gradient: str


@dataclass(frozen=True)
class ModuleContext:
    """Everything the module template needs; each code string is printed by SymPy."""

    network: Network
    target: Target
    activations: tuple[ActivationCode, ...]
    helpers: tuple[HelperCode, ...]
    imports: tuple[str, ...]  # modules besides the array module: scipy.special
    log_sum_exp: bool  # whether the module needs its logsumexp helper
    class_labels: bool  # whether y may be given as integer class labels
    parameters: tuple[Parameter, ...]
    values: tuple[str, ...]
    input_shape: tuple[int | str, ...]
    output_shape: tuple[int | str, ...]
    forward: tuple[Assignment, ...]
    loss_code: str
    loss_math: str
    backward: tuple[Assignment, ...]
    backward_inputs: tuple[str, ...]
    backward_parameters: tuple[str, ...]
    partials: tuple[Function, ...]
    sizes: tuple[tuple[str, int], ...]
    #: The namespace lines of mlp, loss and gradients (empty for a fixed module, or
    #: where the code calls no array function).
    forward_namespace: str = ""
    loss_namespace: str = ""
    backward_namespace: str = ""


def module_context(derivation: Derivation) -> ModuleContext:
    """Print every expression of ``derivation`` for the module template."""
    network = derivation.network
    assert isinstance(network, Network), "a [[layers]] network"
    target = TARGETS[network.spec.target]
    widths = network.widths
    # Each gradient in array form, converted once for every function that prints it.
    arrays = {
        g.name: to_array(g.expression.xreplace(widths), g.array.indices)
        for g in derivation.gradients
    }
    functions = network.functions
    primitives = primitives_used(network, arrays.values())
    helper_names = {*functions, *primitives}
    printer = Printers(target.printer)
    activations, helpers = scalar_functions(network, primitives, printer, helper_names)
    printed = list(arrays.values())
    forward_printer = printer(None, helper_names)

    def code(
        expr: sp.Expr, axes: tuple, code_printer: NumPyCodePrinter = forward_printer
    ) -> str:
        array = to_array(expr.xreplace(widths), axes)
        printed.append(array)
        return code_printer.doprint(array)

    forward = tuple(
        Assignment(
            v.name, code(v.definition, v.indices), equation(v.element, v.definition)
        )
        for v in network.values[1:]
    )
    output = network.output
    loss_printer = printer({N_BATCH.name: f"{output.name}.shape[0]"}, helper_names)
    loss_code = code(network.loss_of_prediction, (), loss_printer)
    local = printer({N_BATCH.name: "x.shape[0]", "y_observed": "y"}, helper_names)
    backward = _backward(derivation, arrays, local)
    needed = set().union(*(_symbols(array) for array in arrays.values()))
    backward_inputs = tuple(v.name for v in network.values[1:] if v.name in needed)

    calling = Calling(
        values="variable_dict",
        given=(*(p.name for p in network.parameters), "y_observed"),
        computed=tuple(v.name for v in network.values),
        batch_code='variable_dict["x"].shape[0]',
    )
    partials = _partials(derivation, arrays, helper_names, target, printer, calling)
    gradient_of = {g.target.name: g.name for g in derivation.gradients}
    parameters = tuple(
        Parameter(p.name, network.shape(p), describe(p), gradient_of[p.name])  # type: ignore[arg-type]
        for p in network.parameters
    )
    # The namespace is the data's: parameters may be NumPy arrays next to Dask data.
    forward_namespace = (
        target.namespace_line("x", given=True) if _calls_module(forward_printer) else ""
    )
    return ModuleContext(
        network=network,
        target=target,
        activations=activations,
        helpers=helpers,
        imports=printer.imports(besides=[target.module]),
        log_sum_exp=any(array.has(LogSumExp) for array in printed),
        class_labels=network.kind.kind == "softmax_cross_entropy",
        parameters=parameters,
        values=tuple(v.name for v in network.values),
        input_shape=network.shape(network.values[0]),
        output_shape=network.shape(output),
        forward=forward,
        loss_code=loss_code,
        loss_math=text(network.loss_formula),
        backward=backward,
        backward_inputs=backward_inputs,
        backward_parameters=tuple(
            p.name for p in network.parameters if p.name in needed
        ),
        partials=partials,
        sizes=tuple((s.name, n) for s, n in widths.items()),
        forward_namespace=forward_namespace,
        loss_namespace=(
            target.namespace_line("y_predicted, y_observed")
            if _calls_module(loss_printer)
            else ""
        ),
        backward_namespace=(
            target.namespace_line("x, y")
            if forward_namespace or _calls_module(local)
            else ""
        ),
    )


def _backward(
    derivation: Derivation, arrays: dict[str, sp.Expr], printer: NumPyCodePrinter
) -> tuple[Assignment, ...]:
    """The backward pass of ``gradients()``: each gradient's array form (``arrays``,
    by gradient name) printed by ``printer``, documented by its index form."""
    return tuple(
        Assignment(
            g.name,
            printer.doprint(arrays[g.name]),
            equation(g.array.element, g.expression),
        )
        for g in derivation.gradients
    )


def _calls_module(printer: NumPyCodePrinter) -> bool:
    """Whether the code ``printer`` printed calls its array module (``xp``), as SymPy's
    printers record in ``module_imports``."""
    return printer._module in printer.module_imports


def equation(left: sp.Expr, right: sp.Expr) -> str:
    return f"{text(left)} = {text(right)}"


def _symbols(array: sp.Expr) -> set[str]:
    """Names of the arrays an array-form expression reads."""
    return {s.name for s in array.free_symbols if isinstance(s, sp.Symbol)}


def describe(parameter: Array) -> str:
    return parameter.doc


def _partials(
    derivation: Derivation,
    arrays: dict[str, sp.Expr],
    helpers: set[str],
    target: Target,
    printer: Printers,
    calling: Calling,
) -> tuple[Function, ...]:
    """The problem set's functions: one per partial derivative, each calling upstream.

    ``d_loss_d_h0(variable_dict, W1, W2, y_observed)`` takes the dict of forward
    values, then the arrays its formula needs (directly or through the upstream
    gradients it calls) among ``calling.given``, in that order.
    """
    arguments: dict[str, tuple[str, ...]] = {}
    functions = []
    for gradient in derivation.gradients:
        array = arrays[gradient.name]
        symbols = _symbols(array)
        needs = {s for s in symbols if s in calling.given}
        if N_BATCH.name in symbols and calling.batch_argument:
            needs.add(calling.batch_argument)
        for upstream in symbols:
            if upstream in arguments:
                needs.update(arguments[upstream][1:])
        ordered = (calling.values, *(a for a in calling.given if a in needs))
        arguments[gradient.name] = ordered
        names = {v: f'{calling.values}["{v}"]' for v in calling.computed}
        names[N_BATCH.name] = calling.batch_code
        for upstream, args in arguments.items():
            if upstream != gradient.name:
                names[upstream] = f"{upstream}({', '.join(args)})"
        # Arrays the code makes take the dtype and device of the first forward value.
        like = f'{calling.values}["{calling.computed[0]}"]'
        code_printer = printer(names, helpers, like=like)
        code = code_printer.doprint(array)
        namespace = f"*{calling.values}.values()"
        functions.append(
            Function(
                name=gradient.name,
                arguments=ordered,
                code=code,
                math=equation(gradient.array.element, gradient.expression),
                doc=f"Gradient of the loss with respect to ``{gradient.target.name}``.",
                returns_array=bool(gradient.array.indices),
                namespace=(
                    target.namespace_line(namespace)
                    if _calls_module(code_printer)
                    else ""
                ),
                reads_target="y_observed" in symbols,
            )
        )
    return tuple(functions)


@dataclass(frozen=True)
class Calling:
    """How the per-gradient functions are called: the name of their dict of forward
    values, the arrays that may be passed besides it (in order), the values in the
    dict, and the code for the batch size (with the argument it reads, if any)."""

    values: str
    given: tuple[str, ...]
    computed: tuple[str, ...]
    batch_code: str
    batch_argument: str | None = None


@dataclass(frozen=True)
class GivenArray:
    """An input or parameter: its shape (``"batch"`` for the batch axis), axis names."""

    name: str
    shape: tuple[int | str, ...]
    axes: tuple[str, ...]
    doc: str
    gradient: str = ""


@dataclass(frozen=True)
class EquationContext:
    """Everything ``equations.py.j2`` needs; each code string is printed by SymPy."""

    network: Graph
    target: Target
    activations: tuple[ActivationCode, ...]
    helpers: tuple[HelperCode, ...]
    imports: tuple[str, ...]
    log_sum_exp: bool
    parameters: tuple[GivenArray, ...]
    inputs: tuple[GivenArray, ...]
    values: tuple[str, ...]  # every computed value, the loss last
    forward: tuple[Assignment, ...]
    backward: tuple[Assignment, ...]
    backward_values: tuple[str, ...]  # forward values the backward pass reads
    backward_parameters: tuple[str, ...]  # parameters it reads
    backward_inputs: tuple[str, ...]  # inputs it reads
    partials: tuple[Function, ...]
    sizes: tuple[tuple[str, int], ...]
    batch_code: str  # the batch size, in the backward pass
    #: Whether the code calls array_api_compat's device() (arrays it makes take the
    #: device of an array in scope); the module then imports it.
    uses_device: bool = False
    #: The namespace lines of the forward pass and of gradients (empty for a fixed
    #: module, or where the code calls no array function).
    forward_namespace: str = ""
    backward_namespace: str = ""


def equation_module_context(derivation: Derivation) -> EquationContext:
    """Print every expression of an equation graph's derivation for its template."""
    network = derivation.network
    sizes = network.sizes
    arrays = {
        g.name: to_array(
            g.expression.xreplace(sizes),
            g.array.indices,
            tuple(s.xreplace(sizes) for s in g.array.sizes),
        )
        for g in derivation.gradients
    }
    primitives = primitives_used(network, arrays.values())
    helper_names = {*network.functions, *primitives}
    target = TARGETS[network.spec.target]
    printers = Printers(target.printer)
    activations, helpers = scalar_functions(network, primitives, printers, helper_names)
    batched = [v for v in network.inputs if v.batched]
    first_batched = batched[0].name if batched else None
    batch_code = f"{first_batched}.shape[0]" if first_batched else "1"
    printer = printers({N_BATCH.name: batch_code}, helper_names)
    # Arrays the backward pass makes (a unit vector, a constant gradient) take the
    # dtype and device of a forward value, or of an input or parameter.
    if network.computed:
        like = f'values["{network.computed[0].name}"]'
    elif network.inputs:
        like = f'given["{network.inputs[0].name}"]'
    else:
        like = f'arrays["{network.parameters[0].name}"]'
    backward_printer = printers({N_BATCH.name: batch_code}, helper_names, like=like)
    printed = list(arrays.values())
    computed = (*network.computed, network.loss_value)

    def code(value: Value) -> str:
        assert value.definition is not None
        array = to_array(
            value.definition.xreplace(sizes),
            value.indices,
            tuple(s.xreplace(sizes) for s in value.sizes),
        )
        printed.append(array)
        return printer.doprint(array)

    forward = tuple(
        Assignment(v.name, code(v), equation(v.element, v.definition)) for v in computed
    )
    backward = _backward(derivation, arrays, backward_printer)
    needed = set().union(*(_symbols(array) for array in arrays.values()))
    # The namespace is the data's (parameters may be NumPy arrays next to Dask data):
    # the inputs', or the parameters' in a network without inputs.
    given_arrays = network.inputs or network.parameters
    forward_namespace = (
        target.namespace_line(", ".join(v.name for v in given_arrays), given=True)
        if _calls_module(printer)
        else ""
    )
    gradient_of = {g.target.name: g.name for g in derivation.gradients}

    def given(value: Value) -> GivenArray:
        return GivenArray(
            value.name,
            network.shape(value),
            tuple(axis.name for axis in value.axes),
            value.doc,
            gradient_of.get(value.name, ""),
        )

    values_with_batch = [v for v in network.computed if v.batched]
    if values_with_batch:
        partial_batch = f'values["{values_with_batch[0].name}"].shape[0]'
        batch_argument = None
    else:
        partial_batch, batch_argument = batch_code, first_batched
    calling = Calling(
        values="values",
        given=(
            *(p.name for p in network.parameters),
            *(i.name for i in network.inputs),
        ),
        computed=tuple(v.name for v in computed),
        batch_code=partial_batch,
        batch_argument=batch_argument,
    )
    partials = _partials(derivation, arrays, helper_names, target, printers, calling)
    return EquationContext(
        network=network,
        target=target,
        activations=activations,
        helpers=helpers,
        imports=printers.imports(besides=[target.module, "array_api_compat"]),
        log_sum_exp=any(array.has(LogSumExp) for array in printed),
        uses_device=any("array_api_compat" in p.module_imports for p in printers.made),
        parameters=tuple(given(p) for p in network.parameters),
        inputs=tuple(given(i) for i in network.inputs),
        values=tuple(v.name for v in computed),
        forward=forward,
        backward=backward,
        backward_values=tuple(v.name for v in network.computed if v.name in needed),
        backward_parameters=tuple(
            p.name for p in network.parameters if p.name in needed
        ),
        backward_inputs=tuple(
            i.name
            for i in network.inputs
            if i.name in needed or (N_BATCH.name in needed and i.name == first_batched)
        ),
        partials=partials,
        sizes=tuple((s.name, n) for s, n in sizes.items()),
        batch_code=batch_code,
        forward_namespace=forward_namespace,
        backward_namespace=(
            target.namespace_line(
                "*given.values()" if network.inputs else "*arrays.values()"
            )
            if forward_namespace or _calls_module(backward_printer)
            else ""
        ),
    )
