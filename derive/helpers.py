"""The scalar functions a generated module defines for itself.

Every module defines each activation it uses and its derivative (``relu``,
``relu_derivative``), and the functions SymPy lacks that its formulas call
(``sigmoid``, ``softplus``, printed in forms that do not overflow). Both module kinds
print them alike, each with its own printer class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive.activations import X
from derive.functions import PRIMITIVES
from derive.graph import Graph as Network
from derive.losses import expand_losses
from derive.printing.text import text


@dataclass(frozen=True)
class ActivationCode:
    """An activation and its derivative, as functions of ``x``."""

    name: str
    code: str
    math: str
    derivative_code: str
    derivative_math: str
    #: Whether the code calls the array module (then an array_api function looks up
    #: its namespace first).
    calls_module: bool = False
    derivative_calls_module: bool = False


@dataclass(frozen=True)
class HelperCode:
    """A scalar function SymPy lacks (``sigmoid``), printed in its stable form."""

    name: str
    code: str
    math: str
    calls_module: bool = False


def primitives_used(network: Network, more: Iterable[sp.Expr]) -> tuple[str, ...]:
    """The functions of :mod:`derive.functions` that the network's activations, their
    derivatives, its loss or the expressions ``more`` call."""
    functions = network.functions.values()
    formulas = [
        *(f.formula for f in functions),
        *(f.derivative.formula for f in functions),
        expand_losses(network.loss),
        *more,
    ]
    return tuple(
        name
        for name, primitive in PRIMITIVES.items()
        if any(formula.has(primitive) for formula in formulas)
    )


def written_out(formula: sp.Expr) -> sp.Expr:
    """A single function of ``x`` by its definition: ``sigmoid(x)`` as
    ``1/(1 + exp(-x))``, ``tanh(x)`` in exponentials; anything else as it is."""
    if isinstance(formula, sp.Function) and formula.args == (X,):
        return formula.rewrite(sp.exp)
    return formula


def scalar_functions(
    network: Network,
    primitives: tuple[str, ...],
    printer: Callable[..., Any],
    calls: Iterable[str],
) -> tuple[tuple[ActivationCode, ...], tuple[HelperCode, ...]]:
    """The activations' and the primitives' code, printed by ``printer(helpers=...)``.

    ``calls`` names the functions the printed code may call; a function's own body
    never calls itself (``sigmoid``'s body is the stable formula, not ``sigmoid(x)``).
    """
    callable_names = frozenset(calls)

    def body(formula: sp.Expr, helpers: frozenset[str]) -> tuple[str, bool]:
        """The code of ``formula``, and whether it calls a module (SymPy's printers
        record the modules they call in ``module_imports``)."""
        code_printer = printer(helpers=helpers)
        return code_printer.doprint(formula), bool(code_printer.module_imports)

    activations = []
    for name, function in network.functions.items():
        code, calls_module = body(function.formula, callable_names - {name})
        derivative, derivative_calls = body(function.derivative.formula, callable_names)
        activations.append(
            ActivationCode(
                name=name,
                code=code,
                math=text(written_out(function.formula)),
                derivative_code=derivative,
                derivative_math=text(function.derivative.formula),
                calls_module=calls_module,
                derivative_calls_module=derivative_calls,
            )
        )
    helpers = []
    for name in primitives:
        if name not in network.functions:
            code, calls_module = body(PRIMITIVES[name](X), callable_names - {name})
            math = text(PRIMITIVES[name](X).rewrite(sp.exp))
            helpers.append(HelperCode(name, code, math, calls_module))
    return tuple(activations), tuple(helpers)
