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
from derive.helpers import (
    ActivationCode,
    HelperCode,
    primitives_used,
    scalar_functions,
)
from derive.network import N_BATCH, Array, Network
from derive.passes.to_array import LogSumExp, to_array
from derive.printing.code import Printers
from derive.printing.numpy_code import NumPyCodePrinter
from derive.printing.text import text
from derive.targets import TARGETS, Target

GRADIENT_PREFIX = "d_loss_d_"


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
    backward = tuple(
        Assignment(
            g.name,
            local.doprint(arrays[g.name]),
            equation(g.array.element, g.expression),
        )
        for g in derivation.gradients
    )
    needed = set().union(*(_symbols(array) for array in arrays.values()))
    backward_inputs = tuple(v.name for v in network.values[1:] if v.name in needed)

    partials = _partials(derivation, arrays, helper_names, target, printer)
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
        class_labels=network.loss_kind.kind == "softmax_cross_entropy",
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
    kind = "weights" if parameter.name.startswith("W") else "biases"
    return f"layer {parameter.layer} {kind}"


def _partials(
    derivation: Derivation,
    arrays: dict[str, sp.Expr],
    helpers: set[str],
    target: Target,
    printer: Printers,
) -> tuple[Function, ...]:
    """The problem set's functions: one per partial derivative, each calling upstream.

    ``d_loss_d_h0(variable_dict, W1, W2, y_observed)`` takes the values of the forward
    pass, the parameters its formula needs (directly or through the upstream
    gradients it calls) and the target.
    """
    network = derivation.network
    parameters = [p.name for p in network.parameters]
    arguments: dict[str, tuple[str, ...]] = {}
    functions = []
    for gradient in derivation.gradients:
        array = arrays[gradient.name]
        symbols = _symbols(array)
        needs = {s for s in symbols if s in parameters or s == "y_observed"}
        for upstream in symbols:
            if upstream.startswith(GRADIENT_PREFIX):
                needs.update(arguments[upstream][1:])
        ordered = (
            "variable_dict",
            *(p for p in parameters if p in needs),
            *(("y_observed",) if "y_observed" in needs else ()),
        )
        arguments[gradient.name] = ordered
        names = {v.name: f'variable_dict["{v.name}"]' for v in network.values}
        names[N_BATCH.name] = 'variable_dict["x"].shape[0]'
        for upstream, args in arguments.items():
            if upstream != gradient.name:
                names[upstream] = f"{upstream}({', '.join(args)})"
        code_printer = printer(names, helpers)
        code = code_printer.doprint(array)
        namespace = "*variable_dict.values()"
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
