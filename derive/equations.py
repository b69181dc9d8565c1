"""Equation specs: the forward pass written as NumPy expressions, lowered to index form.

An equation spec names its sizes, its inputs and parameters by axis names, and its
values as equations in order::

    [sizes]
    d_in = 4
    d_h = 8

    [inputs]
    x = ["batch", "d_in"]
    y = ["batch"]

    [parameters]
    W0 = ["d_h", "d_in"]
    w = ["d_h"]

    [equations]
    h0 = "relu(x @ W0.T)"
    loss = "mean((h0 @ w - y)**2)"

Each formula is parsed once by :mod:`ast` and walked with an allow-list, never
evaluated. Every operation is lowered with NumPy's meaning (broadcasting from the
last axis, ``numpy.matmul``'s rules, ``axis=``/``keepdims=``) to an index-form SymPy
expression whose axes are checked as it goes: a sum over an axis is a ``Sum`` over
its index, a broadcast is a shared index. Axes match by name: ``d_h`` broadcasts
against ``d_h`` (or a kept length-1 axis), never against ``d_in``, whatever the
numbers, because the derivation keeps sizes symbolic.

``softmax``, ``log_softmax`` and ``logsumexp`` introduce a named log-normalizer value
(role :attr:`~derive.graph.Role.NORMALIZER`), printed stably; the argument of a
nonlinear function that contains a sum (``tanh(h0 @ W1.T)``) becomes a named value of
its own, so that the backward pass reuses it instead of computing it again.

Every error names the equation and what is wrong, as one line
(:class:`~derive.errors.SpecError`).
"""

from __future__ import annotations

import ast
import difflib
import itertools
import keyword
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from derive.activations import activation_function, definition, latex_function_name
from derive.errors import SpecError
from derive.expressions import (
    FormulaError,
    check_depth,
    check_folded,
    check_number,
    check_power,
    too_deep,
)
from derive.expressions import describe_node as _describe
from derive.functions import sigmoid, softplus
from derive.graph import N_BATCH, Axis, Graph, Role, Value, batch_axis
from derive.printing.latex import default_latex
from derive.reserved import reserved
from derive.targets import DEFAULT_TARGET, TARGETS, shadowing
from derive.verify.interpreter import Site, span

TOP_FIELDS = (
    "name",
    "description",
    "sizes",
    "inputs",
    "parameters",
    "equations",
    "target",
    "worked_point",
)
MAX_SIZE = 1 << 20
MAX_EQUATIONS = 256
MAX_LENGTH = 1000
MAX_AXES = 8
#: Most numbers a worked point may hold: its numbers are printed in the derivation
#: (as for [[layers]] specs).
MAX_WORKED_NUMBERS = 4096
#: The module's own functions of a second, third ... leaky_relu slope.
_LEAKY_RELU_NAME = re.compile(r"leaky_relu_\d+")


@dataclass(frozen=True)
class EquationSpec:
    """A validated equation spec: names and shapes checked; formulas still text."""

    name: str
    description: str
    source: str
    sizes: dict[str, int]
    inputs: dict[str, tuple[str, ...]]
    parameters: dict[str, tuple[str, ...]]
    equations: dict[str, str]
    worked_point: dict[str, Any] | None = None
    style: str = "vectorized"
    shapes: str = "torch"
    #: The array library the module is written for: a key of derive.targets.TARGETS.
    target: str = DEFAULT_TARGET


def is_equation_spec(data: dict[str, Any]) -> bool:
    return "equations" in data and "layers" not in data


def read_equation_spec(data: dict[str, Any], path: Path | str) -> EquationSpec:
    """Check the tables of an equation spec (the formulas are read by
    :func:`build_graph`); raise :class:`SpecError` naming the field."""
    return _Reader(path).spec(data)


class _Reader:
    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, field_name: str, message: str) -> SpecError:
        return SpecError(self.path, field_name, message)

    def table(self, data: dict[str, Any], key: str, required: bool = True) -> dict:
        if key not in data:
            if required:
                raise self.fail(key, f"missing; an equation spec needs [{key}]")
            return {}
        table = data[key]
        if not isinstance(table, dict):
            raise self.fail(key, f"must be a table ([{key}])")
        return table

    def identifier(self, name: str, where: str, taken: dict[str, str]) -> None:
        field_name = f"{where}.{name}"
        if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
            raise self.fail(
                field_name,
                f"{name!r} must be a Python identifier (ASCII letters, digits, _)",
            )
        if name == "loss" and where == "equations":
            reason = ""  # the one name every equation spec must define
        elif name in FUNCTIONS or _LEAKY_RELU_NAME.fullmatch(name):
            reason = f"{name!r} is reserved: a function formulas call"
        else:
            reason = reserved(name)
        if reason:
            raise self.fail(field_name, f"{reason}; choose another name")
        if name in taken:
            kind = taken[name].removesuffix("s")
            raise self.fail(field_name, f"redefines the {kind} {name!r}")
        taken[name] = where

    def spec(self, data: dict[str, Any]) -> EquationSpec:
        for key in data:
            if key not in TOP_FIELDS:
                close = difflib.get_close_matches(key, TOP_FIELDS, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(
                    key, f"unknown field; {hint}allowed: {', '.join(TOP_FIELDS)}"
                )
        name = data.get("name")
        if name is None:
            raise self.fail("name", "missing")
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or not name.isascii()
            or keyword.iskeyword(name)
        ):
            raise self.fail(
                "name", f"got {name!r}; must be a Python identifier and not a keyword"
            )
        if shadowing(name):
            raise self.fail("name", shadowing(name))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"must be a string, got {description!r}")
        target = data.get("target", DEFAULT_TARGET)
        if not isinstance(target, str) or target not in TARGETS:
            raise self.fail("target", f"got {target!r}; allowed: {', '.join(TARGETS)}")
        taken: dict[str, str] = {}
        sizes = {}
        # A spec whose values are all scalars names no size.
        for size, value in self.table(data, "sizes", required=False).items():
            self.identifier(size, "sizes", taken)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 1 <= value <= MAX_SIZE
            ):
                raise self.fail(
                    f"sizes.{size}",
                    f"must be a positive integer (at most {MAX_SIZE}), got {value!r}",
                )
            sizes[size] = value
        inputs = self.arrays(
            self.table(data, "inputs", required=False), "inputs", sizes, taken
        )
        parameters = self.arrays(
            self.table(data, "parameters"), "parameters", sizes, taken
        )
        if not parameters:
            raise self.fail("parameters", "needs at least one parameter")
        equations = {}
        table = self.table(data, "equations")
        if not 1 <= len(table) <= MAX_EQUATIONS:
            raise self.fail("equations", f"needs from 1 to {MAX_EQUATIONS} equations")
        for value_name, formula in table.items():
            where = f"equations.{value_name}"
            self.identifier(value_name, "equations", taken)
            if not isinstance(formula, str) or not formula.strip():
                raise self.fail(where, "must be a formula, as a string")
            if len(formula) > MAX_LENGTH:
                raise self.fail(where, f"is longer than {MAX_LENGTH} characters")
            equations[value_name] = formula
        if "loss" not in equations:
            raise self.fail(
                "equations",
                "no equation named loss; the scalar to differentiate must be "
                "called loss",
            )
        worked = None
        if "worked_point" in data:
            worked = self.worked_point(data["worked_point"], inputs, parameters)
        return EquationSpec(
            name=name,
            description=" ".join(description.split()),
            source=Path(self.path).as_posix(),
            sizes=sizes,
            inputs=inputs,
            parameters=parameters,
            equations=equations,
            worked_point=worked,
            target=target,
        )

    def arrays(
        self,
        table: dict[str, Any],
        where: str,
        sizes: dict[str, int],
        taken: dict[str, str],
    ) -> dict[str, tuple[str, ...]]:
        arrays = {}
        for name, axes in table.items():
            self.identifier(name, where, taken)
            field_name = f"{where}.{name}"
            if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
                raise self.fail(
                    field_name, 'must be a list of axis names, as ["batch", "d_in"]'
                )
            if len(axes) > MAX_AXES:
                raise self.fail(field_name, f"has more than {MAX_AXES} axes")
            for position, axis in enumerate(axes):
                if axis == "batch":
                    if where == "parameters":
                        raise self.fail(field_name, "a parameter has no batch axis")
                    if position != 0:
                        raise self.fail(field_name, '"batch" must be the first axis')
                    continue
                if axis not in sizes:
                    close = difflib.get_close_matches(axis, [*sizes, "batch"], n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    known = ", ".join([*sizes, "batch"])
                    raise self.fail(
                        field_name, f"unknown axis name {axis!r}; {hint}known: {known}"
                    )
            arrays[name] = tuple(axes)
        return arrays

    def worked_point(
        self,
        table: Any,
        inputs: dict[str, tuple[str, ...]],
        parameters: dict[str, tuple[str, ...]],
    ) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail("worked_point", "must be a table ([worked_point])")
        names = (*inputs, *parameters)
        for key in table:
            if key not in names:
                raise self.fail(
                    f"worked_point.{key}",
                    f"unknown name; allowed: {', '.join(names)}",
                )
        count = 0
        for key in names:
            where = f"worked_point.{key}"
            if key not in table:
                raise self.fail(where, "missing")
            count += _numbers(table[key], where, self.fail)
        if count > MAX_WORKED_NUMBERS:
            raise self.fail(
                "worked_point",
                f"holds {count} numbers; at most {MAX_WORKED_NUMBERS} are printed",
            )
        return {key: table[key] for key in names}


def _numbers(value: Any, where: str, fail: Callable[[str, str], SpecError]) -> int:
    """How many numbers ``value`` (a number or nested arrays of them) holds."""
    if isinstance(value, list):
        return sum(_numbers(item, where, fail) for item in value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
    ):
        raise fail(where, f"must be a number or arrays of numbers, got {value!r}")
    return 1


# --- Lowering formulas to index form -------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """An index-form expression with its free indices, one per axis."""

    expr: sp.Expr
    indices: tuple[sp.Symbol, ...]
    axes: tuple[Axis, ...]

    @property
    def ndim(self) -> int:
        return len(self.axes)

    def renamed(self, mapping: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
        return self.expr.xreplace(mapping)


ONE = sp.Integer(1)


def _kept_axis() -> Axis:
    """A length-1 axis left by ``keepdims=True``."""
    return Axis("1", ONE)


class LoweringError(ValueError):
    """A formula that cannot be lowered; the message names the problem."""


#: Elementwise functions of one array, by name.
UNARY: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "tanh": sp.tanh,
    "sin": sp.sin,
    "cos": sp.cos,
    "erf": sp.erf,
    "sigmoid": sigmoid,
    "softplus": softplus,
}
#: Activations the module defines as functions of its own (as [[layers]] do).
ACTIVATIONS = ("relu", "gelu")
#: Every function a formula may call.
FUNCTIONS = (
    *UNARY,
    *ACTIVATIONS,
    "leaky_relu",
    "maximum",
    "minimum",
    "sum",
    "mean",
    "logsumexp",
    "softmax",
    "log_softmax",
    "einsum",
    "swapaxes",
)


def _size_text(axis: Axis, sizes: dict[sp.Symbol, int]) -> str:
    if axis.batch:
        return "batch"
    if axis.size == ONE:
        return "1 (kept)"
    return f"{axis.name} ({sizes[axis.size]})"


class _Equation:
    """Lowers one formula; collects the auxiliary values it introduces."""

    def __init__(self, builder: _GraphBuilder, name: str, text: str) -> None:
        self.builder = builder
        self.name = name
        self.text = text
        self.auxiliary: list[Value] = []

    # Index symbols are made fresh here and renamed to readable letters at the end.
    def index(self) -> sp.Symbol:
        return self.builder.fresh_index()

    def fail(self, node: ast.AST | None, message: str) -> LoweringError:
        where = f"{ast.unparse(node)}: " if node is not None else ""
        return LoweringError(where + message)

    def size(self, axis: Axis) -> str:
        return _size_text(axis, self.builder.numeric)

    # -- the walk

    def lower(self, node: ast.expr) -> Tensor:
        tensor = self.walk(node)
        if (
            not tensor.indices
            and tensor.expr.free_symbols <= self.builder.numeric.keys()
        ):
            # A number the generated code computes in float64: finite and real, with
            # the spec's sizes put in (``sqrt(d_h - 10)``), as in a custom formula.
            self.bounded(lambda: check_number(node, self.numeric(tensor.expr)))
        return tensor

    def numeric(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the spec's sizes put in (sympified: a lone size becomes a
        Python int)."""
        return sp.sympify(expr.xreplace(self.builder.numeric))

    def bounded(self, check: Callable[[], None]) -> None:
        try:
            check()
        except FormulaError as error:
            raise self.fail(None, str(error)) from None

    def walk(self, node: ast.expr) -> Tensor:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str):
                raise self.fail(node, "a string where a number is expected")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.refuse(node, f"the constant {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise self.refuse(node, f"the number {value!r}")
            number = sp.Integer(value) if isinstance(value, int) else sp.Float(value)
            return Tensor(number, (), ())
        if isinstance(node, ast.Name):
            return self.name_reference(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.lower(node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            return Tensor(-operand.expr, operand.indices, operand.axes)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(
                    node, f"attribute .{node.attr} is not allowed (only .T)"
                )
            operand = self.lower(node.value)
            return Tensor(operand.expr, operand.indices[::-1], operand.axes[::-1])
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(node, _describe(node))

    def refuse(self, node: ast.AST, what: str) -> LoweringError:
        return self.fail(
            node,
            f"{what} is not allowed; use numbers, sizes, arrays, + - * / ** @, .T, "
            f"indexing with integers and ':', and the functions {', '.join(FUNCTIONS)}",
        )

    def name_reference(self, node: ast.Name) -> Tensor:
        name = node.id
        builder = self.builder
        if name in builder.values:
            value = builder.values[name]
            indices = tuple(self.index() for _ in value.axes)
            return Tensor(value.at(*indices), indices, value.axes)
        if name in builder.size_symbols:
            return Tensor(builder.size_symbols[name], (), ())
        if name in ("pi", "e"):
            return Tensor(sp.pi if name == "pi" else sp.E, (), ())
        if name == self.name:
            raise self.fail(
                None, f"{name} is used before it is defined (in its own definition)"
            )
        if name in builder.spec.equations:
            raise self.fail(
                None, f"{name} is used before it is defined (equations are in order)"
            )
        known = [*builder.values, *builder.size_symbols, "pi", "e"]
        if name in FUNCTIONS:
            raise self.fail(None, f"{name} is a function; call it: {name}(...)")
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise self.fail(None, f"unknown name {name!r}{hint}")

    def broadcast(
        self, node: ast.AST, tensors: Sequence[Tensor]
    ) -> tuple[list[sp.Expr], tuple[sp.Symbol, ...], tuple[Axis, ...]]:
        """NumPy broadcasting: axes aligned from the last, matched by name; a kept
        length-1 axis stretches. Returns each operand's expression in the shared
        indices, and those indices and axes."""
        ndim = max(t.ndim for t in tensors)
        indices: list[sp.Symbol | None] = [None] * ndim
        axes: list[Axis | None] = [None] * ndim
        for tensor in tensors:
            offset = ndim - tensor.ndim
            for k, axis in enumerate(tensor.axes):
                current = axes[offset + k]
                if current is None or current.size == ONE:
                    axes[offset + k] = axis
                elif axis.size != ONE and axis != current:
                    raise self.fail(
                        node,
                        f"cannot broadcast {_shape(tensors[0].axes)} with "
                        f"{_shape(tensor.axes)} ({self.size(current)} against "
                        f"{self.size(axis)})",
                    )
        shared = [self.index() for _ in range(ndim)]
        for k in range(ndim):
            indices[k] = shared[k]
        exprs = []
        for tensor in tensors:
            offset = ndim - tensor.ndim
            mapping: dict[sp.Symbol, sp.Expr] = {}
            for k, (index, axis) in enumerate(
                zip(tensor.indices, tensor.axes, strict=True)
            ):
                target = axes[offset + k]
                assert target is not None
                # A kept length-1 axis is read at 0 wherever it is stretched.
                if axis.size == ONE and target.size != ONE:
                    mapping[index] = sp.Integer(0)
                else:
                    mapping[index] = shared[offset + k]
            exprs.append(tensor.renamed(mapping))
        return exprs, tuple(shared), tuple(a for a in axes if a is not None)

    def binary(self, node: ast.BinOp) -> Tensor:
        left, right = self.lower(node.left), self.lower(node.right)
        if isinstance(node.op, ast.MatMult):
            return self.matmul(node, left, right)
        operations: dict[type, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b,
            ast.Pow: lambda a, b: a**b,
        }
        if type(node.op) not in operations:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.fail(node, f"operator {symbol} is not allowed")
        (a, b), indices, axes = self.broadcast(node, (left, right))
        sizes = self.builder.numeric.keys()
        if not right.indices and right.expr.free_symbols <= sizes:
            # Checked before SymPy computes anything: 9**9**9 would never finish.
            if isinstance(node.op, ast.Div) and self.numeric(right.expr).is_zero:
                raise self.fail(node, "divides by zero")
            if isinstance(node.op, ast.Pow) and left.expr.free_symbols <= sizes:
                left_number = self.numeric(left.expr)
                right_number = self.numeric(right.expr)
                self.bounded(lambda: check_power(node, left_number, right_number))
        return Tensor(operations[type(node.op)](a, b), indices, axes)

    def contract(
        self, node: ast.AST, left: Tensor, right: Tensor, la: int, ra: int
    ) -> tuple[sp.Symbol, Axis]:
        """Check that ``left``'s axis ``la`` and ``right``'s ``ra`` can be summed
        together; return the shared dummy index and the axis."""
        a, b = left.axes[la], right.axes[ra]
        if a != b:
            raise self.fail(node, f"contracting {self.size(a)} with {self.size(b)}")
        return self.index(), a

    def matmul(self, node: ast.BinOp, left: Tensor, right: Tensor) -> Tensor:
        """``numpy.matmul``: 1-D operands are promoted and their axis removed again;
        N-D operands are stacks of matrices whose leading axes broadcast."""
        if left.ndim == 0 or right.ndim == 0:
            raise self.fail(node, "@ needs arrays with axes, not scalars (use *)")
        dummy, axis = self.contract(node, left, right, -1, max(-2, -right.ndim))
        k_left, k_right = left.indices[-1], right.indices[max(-2, -right.ndim)]
        a = left.renamed({k_left: dummy})
        b = right.renamed({k_right: dummy})
        if left.ndim == 1 and right.ndim == 1:
            return Tensor(sp.Sum(a * b, (dummy, 0, axis.size - 1)), (), ())
        if right.ndim == 1:
            body = Tensor(a * b, left.indices[:-1], left.axes[:-1])
            return self.summed(body, dummy, axis)
        if left.ndim == 1:
            keep = right.indices[:-2] + right.indices[-1:]
            body = Tensor(a * b, keep, right.axes[:-2] + right.axes[-1:])
            return self.summed(body, dummy, axis)
        # Stacks: broadcast the leading axes, then (m, k) @ (k, n).
        stack_l = Tensor(a, left.indices[:-2], left.axes[:-2])
        stack_r = Tensor(b, right.indices[:-2], right.axes[:-2])
        (ea, eb), stack, stack_axes = self.broadcast(node, (stack_l, stack_r))
        indices = (*stack, left.indices[-2], right.indices[-1])
        axes = (*stack_axes, left.axes[-2], right.axes[-1])
        return self.summed(Tensor(ea * eb, indices, axes), dummy, axis)

    def summed(self, body: Tensor, dummy: sp.Symbol, axis: Axis) -> Tensor:
        return Tensor(
            sp.Sum(body.expr, (dummy, 0, axis.size - 1)), body.indices, body.axes
        )

    def subscript(self, node: ast.Subscript) -> Tensor:
        """Indexing with integer constants and full slices: ``x[:, 0]``."""
        array = self.lower(node.value)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(items) > array.ndim:
            raise self.fail(
                node, f"{len(items)} indices for an array with {array.ndim} axes"
            )
        mapping: dict[sp.Symbol, sp.Expr] = {}
        keep = []
        for position, item in enumerate(items):
            axis, index = array.axes[position], array.indices[position]
            if isinstance(item, ast.Slice):
                if item.lower or item.upper or item.step:
                    raise self.fail(node, "only integers and full slices (:) may index")
                keep.append(position)
                continue
            number = _integer(item)
            if number is None:
                raise self.fail(node, "only integers and full slices (:) may index")
            if axis.batch:
                raise self.fail(
                    node,
                    "an integer index on the batch axis is not allowed (the batch "
                    "is sized by the data)",
                )
            size = 1 if axis.size == ONE else self.builder.numeric[axis.size]
            if not -size <= number < size:
                raise self.fail(
                    node,
                    f"index {number} is out of range for {self.size(axis)} "
                    f"(axis {position})",
                )
            mapping[index] = sp.Integer(number % size)
        keep += list(range(len(items), array.ndim))
        return Tensor(
            array.renamed(mapping),
            tuple(array.indices[k] for k in keep),
            tuple(array.axes[k] for k in keep),
        )

    # -- calls

    def call(self, node: ast.Call) -> Tensor:
        if not isinstance(node.func, ast.Name):
            what = (
                "a lambda"
                if isinstance(node.func, ast.Lambda)
                else ast.unparse(node.func)
            )
            raise self.fail(node, f"calling {what} is not allowed")
        name = node.func.id
        if name not in FUNCTIONS:
            if name in self.builder.values or name in self.builder.size_symbols:
                raise self.fail(node, f"{name} is not a function")
            close = difflib.get_close_matches(name, FUNCTIONS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.fail(node, f"unknown function {name!r}{hint}")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse(node, "*arguments")
        keywords = {}
        for keyword_node in node.keywords:
            if keyword_node.arg is None:
                raise self.refuse(node, "**arguments")
            keywords[keyword_node.arg] = keyword_node.value
        if name == "einsum":
            return self.einsum(node, keywords)
        if name in ("sum", "mean", "logsumexp", "softmax", "log_softmax"):
            return self.reduction(node, name, keywords)
        if name == "swapaxes":
            self.arguments(node, name, 3, keywords, ())
            array = self.lower(node.args[0])
            first, second = (self.axis_number(node, a, array) for a in node.args[1:])
            order = list(range(array.ndim))
            order[first], order[second] = order[second], order[first]
            return Tensor(
                array.expr,
                tuple(array.indices[k] for k in order),
                tuple(array.axes[k] for k in order),
            )
        if name in ("maximum", "minimum"):
            self.arguments(node, name, 2, keywords, ())
            function = sp.Max if name == "maximum" else sp.Min
            tensors = [self.lower(a) for a in node.args]
            (a, b), indices, axes = self.broadcast(node, tensors)
            return Tensor(function(a, b), indices, axes)
        if name == "leaky_relu":
            self.arguments(node, name, 2, keywords, ())
            slope = _number(node.args[1])
            if slope is None:
                raise self.fail(node, "leaky_relu's slope must be a number")
            function = self.builder.activation("leaky_relu", slope)
            return self.elementwise(node, function, self.lower(node.args[0]))
        self.arguments(node, name, 1, keywords, ())
        argument = self.lower(node.args[0])
        if name in ACTIVATIONS:
            return self.elementwise(node, self.builder.activation(name), argument)
        return self.elementwise(node, UNARY[name], argument)

    def arguments(
        self,
        node: ast.Call,
        name: str,
        count: int,
        keywords: dict[str, ast.expr],
        allowed: tuple[str, ...],
    ) -> None:
        if len(node.args) != count:
            raise self.fail(node, f"{name} takes {count} positional argument(s)")
        for key in keywords:
            if key not in allowed:
                allowed_text = ", ".join(f"{a}=" for a in allowed) or "none"
                raise self.fail(
                    node,
                    f"keyword {key}= is not allowed in {name}() (allowed: "
                    f"{allowed_text})",
                )

    def elementwise(
        self, node: ast.AST, function: Callable[[sp.Expr], sp.Expr], arg: Tensor
    ) -> Tensor:
        """``function`` of every element; an argument holding a sum is named first,
        so that the backward pass reads it instead of computing it again."""
        if arg.expr.has(sp.Sum):
            assert isinstance(node, ast.Call)
            arg = self.named(arg, "in", node.args[0])
        return Tensor(function(arg.expr), arg.indices, arg.axes)

    def named(
        self, tensor: Tensor, suffix: str, at: ast.expr, role: Role = Role.VALUE
    ) -> Tensor:
        """``tensor``, the part of the formula at ``at``, as an auxiliary value of the
        graph, referenced at its indices. Where it is in the formula is recorded
        (:attr:`Graph.sites`), so that the check before writing can name it too."""
        value = self.builder.auxiliary(self, tensor, suffix, role)
        self.builder.sites.setdefault(self.name, {})[span(at, suffix)] = value.name
        return Tensor(value.at(*tensor.indices), tensor.indices, tensor.axes)

    def axis_number(self, node: ast.AST, item: ast.expr, array: Tensor) -> int:
        number = _integer(item)
        if number is None:
            raise self.fail(node, "an axis must be an integer constant")
        if not -array.ndim <= number < array.ndim:
            raise self.fail(
                node,
                f"axis {number} is out of range for an array with {array.ndim} axes",
            )
        return number % array.ndim

    def axes_argument(
        self, node: ast.Call, value: ast.expr | None, array: Tensor
    ) -> tuple[int, ...]:
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            return tuple(range(array.ndim))
        items = value.elts if isinstance(value, ast.Tuple) else [value]
        axes = tuple(self.axis_number(node, item, array) for item in items)
        if len(set(axes)) != len(axes):
            raise self.fail(node, "an axis is repeated")
        return axes

    def reduction(
        self, node: ast.Call, name: str, keywords: dict[str, ast.expr]
    ) -> Tensor:
        normalized = name in ("softmax", "log_softmax")
        allowed = ("axis",) if normalized else ("axis", "keepdims")
        if len(node.args) == 2 and "axis" not in keywords:
            keywords["axis"] = node.args[1]
            node_args = node.args[:1]
        else:
            node_args = node.args
        if len(node_args) != 1:
            raise self.fail(node, f"{name} takes one array (and axis=)")
        for key in keywords:
            if key not in allowed:
                raise self.fail(
                    node,
                    f"keyword {key}= is not allowed in {name}() (allowed: "
                    f"{', '.join(a + '=' for a in allowed)})",
                )
        array = self.lower(node_args[0])
        axis_node = keywords.get("axis")
        if array.ndim == 0 and axis_node is None and name in ("sum", "mean"):
            return array  # NumPy's sum or mean of a scalar is the scalar
        if array.ndim == 0 and axis_node is None and name == "logsumexp":
            return array  # log(exp(a)) is a
        if normalized and axis_node is None:
            axis_node = ast.Constant(-1)
        axes = self.axes_argument(node, axis_node, array)
        keepdims = False
        if "keepdims" in keywords:
            flag = keywords["keepdims"]
            if not isinstance(flag, ast.Constant) or not isinstance(flag.value, bool):
                raise self.fail(node, "keepdims must be True or False")
            keepdims = flag.value
        if name in ("sum", "mean"):
            result = self.reduce(array, axes, keepdims)
            if name == "mean":
                count = sp.Mul(*(array.axes[k].size for k in axes))
                result = Tensor(result.expr / count, result.indices, result.axes)
            return result
        # A log-normalizer: log(sum(exp(a))) over ``axes``, named, computed stably.
        if array.expr.has(sp.Sum):
            array = self.named(array, "in", node_args[0])
        exp = Tensor(sp.exp(array.expr), array.indices, array.axes)
        total = self.reduce(exp, axes, keepdims=False)
        normalizer = self.named(
            Tensor(sp.log(total.expr), total.indices, total.axes),
            "lse",
            node,
            Role.NORMALIZER,
        )
        if name == "logsumexp":
            if not keepdims:
                return normalizer
            return self.keep(normalizer, array, axes)
        kept = self.keep(normalizer, array, axes)
        (a, lse), indices, axes_ = self.broadcast(node, (array, kept))
        shifted = a - lse
        if name == "softmax":
            return Tensor(sp.exp(shifted), indices, axes_)
        return Tensor(shifted, indices, axes_)

    def keep(self, reduced: Tensor, original: Tensor, axes: tuple[int, ...]) -> Tensor:
        """``reduced`` with length-1 axes put back where ``axes`` were."""
        indices, kept_axes = [], []
        remaining = iter(zip(reduced.indices, reduced.axes, strict=True))
        for k in range(original.ndim):
            if k in axes:
                indices.append(self.index())
                kept_axes.append(_kept_axis())
            else:
                index, axis = next(remaining)
                indices.append(index)
                kept_axes.append(axis)
        return Tensor(reduced.expr, tuple(indices), tuple(kept_axes))

    def reduce(self, array: Tensor, axes: tuple[int, ...], keepdims: bool) -> Tensor:
        limits = []
        mapping: dict[sp.Symbol, sp.Expr] = {}
        for k in axes:
            axis = array.axes[k]
            if axis.size == ONE:  # a kept length-1 axis: its one element
                mapping[array.indices[k]] = sp.Integer(0)
                continue
            dummy = self.index()
            mapping[array.indices[k]] = dummy
            limits.append((dummy, 0, axis.size - 1))
        expr = array.renamed(mapping)
        if limits:
            expr = sp.Sum(expr, *limits)
        if keepdims:
            kept = Tensor(
                expr,
                tuple(i for k, i in enumerate(array.indices) if k not in axes),
                tuple(a for k, a in enumerate(array.axes) if k not in axes),
            )
            return self.keep(kept, array, axes)
        indices = tuple(i for k, i in enumerate(array.indices) if k not in axes)
        return Tensor(
            expr, indices, tuple(a for k, a in enumerate(array.axes) if k not in axes)
        )

    def einsum(self, node: ast.Call, keywords: dict[str, ast.expr]) -> Tensor:
        if keywords:
            raise self.fail(node, "einsum takes no keyword arguments")
        if not node.args or not (
            isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            raise self.fail(node, "einsum's first argument must be a subscripts string")
        subscripts = node.args[0].value.replace(" ", "")
        operands = [self.lower(a) for a in node.args[1:]]
        if "." in subscripts:
            raise self.fail(node, "einsum subscripts with ... are not supported")
        inputs, arrow, output = subscripts.partition("->")
        terms = inputs.split(",")
        if len(terms) != len(operands):
            raise self.fail(
                node, f"einsum names {len(terms)} operands, given {len(operands)}"
            )
        letters: dict[str, tuple[sp.Symbol, Axis]] = {}
        mapping_all = []
        for term, operand in zip(terms, operands, strict=True):
            if not term.isalpha() or len(term) != operand.ndim:
                raise self.fail(
                    node,
                    f"einsum subscripts {term!r} do not fit an array with "
                    f"{operand.ndim} axes",
                )
            mapping: dict[sp.Symbol, sp.Expr] = {}
            for letter, index, axis in zip(
                term, operand.indices, operand.axes, strict=True
            ):
                if letter in letters:
                    known = letters[letter][1]
                    if known != axis:
                        raise self.fail(
                            node,
                            f"einsum letter {letter!r} stands for {self.size(known)} "
                            f"and for {self.size(axis)}",
                        )
                else:
                    letters[letter] = (self.index(), axis)
                mapping[index] = letters[letter][0]
            mapping_all.append(operand.renamed(mapping))
        if not arrow:
            counts = {c: inputs.count(c) for c in letters}
            output = "".join(sorted(c for c, n in counts.items() if n == 1))
        for letter in output:
            if letter not in letters:
                raise self.fail(
                    node, f"einsum output subscript {letter} is not an input's"
                )
        if len(set(output)) != len(output):
            raise self.fail(node, "einsum output repeats a subscript")
        body = sp.Mul(*mapping_all)
        summed = [letters[c] for c in letters if c not in output]
        if summed:
            body = sp.Sum(body, *((i, 0, a.size - 1) for i, a in summed))
        return Tensor(
            body,
            tuple(letters[c][0] for c in output),
            tuple(letters[c][1] for c in output),
        )


#: How Python writes the operators a formula may not use.
_OPERATOR_SYMBOLS: dict[type, str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
}


def _shape(axes: Sequence[Axis]) -> str:
    """``[batch, d_h]``: a value's axes by name (a kept length-1 axis as 1)."""
    return "[" + ", ".join("1" if a.size == ONE else a.name for a in axes) + "]"


def _integer(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _integer(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if isinstance(node.value, bool):
            return None
        return float(node.value)
    return None


# --- Building the graph ----------------------------------------------------------------

#: Readable index names: the batch axis, then the others, then sum dummies.
_BATCH_INDEX = "b"
_INDEX_NAMES = ("i", "j", "k", "l", "p", "q", "r", "s", "t", "u", "v", "w")


@dataclass
class _GraphBuilder:
    spec: EquationSpec
    size_symbols: dict[str, sp.Symbol] = field(default_factory=dict)
    numeric: dict[sp.Symbol, int] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    nodes: list[Value] = field(default_factory=list)
    functions: dict[str, Any] = field(default_factory=dict)
    slopes: dict[float, str] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)
    #: Where each auxiliary value is in its equation's formula (see Graph.sites).
    sites: dict[str, dict[Site, str]] = field(default_factory=dict)

    def fresh_index(self) -> sp.Symbol:
        return sp.Symbol(f"_i{next(self.counter)}", integer=True)

    def activation(self, kind: str, slope: float | None = None) -> Any:
        name = kind
        if kind == "leaky_relu":
            assert slope is not None
            if slope not in self.slopes:
                self.slopes[slope] = (
                    "leaky_relu"
                    if not self.slopes
                    else f"leaky_relu_{len(self.slopes) + 1}"
                )
            name = self.slopes[slope]
        function = activation_function(
            name, definition(kind, slope), latex_function_name(kind)
        )
        self.functions.setdefault(name, function)
        return function

    def add(self, value: Value) -> None:
        self.values[value.name] = value
        self.nodes.append(value)

    def axis(self, name: str) -> Axis:
        if name == "batch":
            return batch_axis()
        return Axis(name, self.size_symbols[name])

    def given(self, name: str, axes: tuple[str, ...], role: Role) -> None:
        resolved = tuple(self.axis(a) for a in axes)
        indices = self.readable(resolved, set())
        kind = "input" if role is Role.INPUT else "parameter"
        self.add(
            Value(
                name,
                role,
                resolved,
                indices,
                latex=default_latex(name),
                gradient=f"d_loss_d_{name}",
                doc=f"{kind} {name}",
            )
        )

    def readable(self, axes: Sequence[Axis], taken: set[str]) -> tuple[sp.Symbol, ...]:
        """Index symbols for ``axes``: ``b`` for the batch axis, then ``i, j, ...``."""
        taken |= set(self.values) | set(self.size_symbols) | set(self.spec.equations)
        result = []
        for axis in axes:
            name = _BATCH_INDEX if axis.batch and _BATCH_INDEX not in taken else None
            if name is None:
                name = next(
                    (n for n in _INDEX_NAMES if n not in taken),
                    f"i{len(taken)}",
                )
            taken.add(name)
            result.append(sp.Symbol(name, integer=True))
        return tuple(result)

    def define(self, name: str, tensor: Tensor, role: Role, doc: str) -> Value:
        """A value defined by ``tensor``, its indices renamed to readable letters."""
        taken: set[str] = set()
        indices = self.readable(tensor.axes, taken)
        mapping: dict[sp.Symbol, sp.Expr] = dict(
            zip(tensor.indices, indices, strict=True)
        )
        bound = [
            (limit[0], limit[2])
            for s in sp.preorder_traversal(tensor.expr)
            if isinstance(s, sp.Sum)
            for limit in s.limits
        ]
        for dummy, upper in dict.fromkeys(bound):
            axis = batch_axis() if upper.has(N_BATCH) else Axis("", ONE)
            (mapping[dummy],) = self.readable((axis,), taken)
        stray = {
            s
            for s in tensor.expr.free_symbols
            if s.is_integer and s.name.startswith("_i")
        } - set(tensor.indices)
        # A kept length-1 axis's index that the expression does not use is fine; any
        # other free index would be a lowering bug.
        assert not stray, f"free indices {stray} in {tensor.expr}"
        value = Value(
            name,
            role,
            tensor.axes,
            indices,
            definition=tensor.expr.xreplace(mapping),
            latex="L" if role is Role.LOSS else default_latex(name),
            gradient=f"d_loss_d_{name}",
            doc=doc,
        )
        self.add(value)
        return value

    def auxiliary(
        self, equation: _Equation, tensor: Tensor, suffix: str, role: Role
    ) -> Value:
        base = f"{equation.name}_{suffix}"
        name, n = base, 1
        while (
            name in self.values
            or name in self.spec.equations
            or name in self.size_symbols
        ):
            n += 1
            name = f"{base}{n}"
        doc = (
            f"the log-normalizer of the softmax in {equation.name}, computed stably"
            if role is Role.NORMALIZER
            else f"the argument of a function in {equation.name}, named so that the "
            "backward pass reads it instead of computing it again"
        )
        # The auxiliary value keeps the tensor's own (fresh) indices as its element
        # indices in the formula being lowered.
        return self.define(name, tensor, role, doc)

    def equation(self, name: str, text: str) -> None:
        try:
            tree = ast.parse(text.strip(), mode="eval")
            check_depth(tree.body)
        except SyntaxError as error:
            raise LoweringError(f"is not a formula ({error.msg})") from None
        except RecursionError:  # CPython's parser has its own nesting limit
            raise LoweringError(too_deep()) from None
        except FormulaError as error:
            raise LoweringError(str(error)) from None
        lowering = _Equation(self, name, text)
        tensor = lowering.lower(tree.body)
        lowering.bounded(lambda: check_folded(lowering.numeric(tensor.expr)))
        role = Role.LOSS if name == "loss" else Role.VALUE
        if role is Role.LOSS and tensor.axes:
            shape = ", ".join(lowering.size(a) for a in tensor.axes)
            raise LoweringError(
                f"the loss must be a scalar; this has axes ({shape}): reduce it "
                "with sum or mean"
            )
        self.define(name, tensor, role, doc=text)


def build_graph(spec: EquationSpec) -> Graph:
    """Lower every equation of ``spec`` and return the graph; raise
    :class:`SpecError` naming the equation for any that does not lower."""
    builder = _GraphBuilder(spec)
    for name, size in spec.sizes.items():
        symbol = sp.Symbol(name, integer=True, positive=True)
        builder.size_symbols[name] = symbol
        builder.numeric[symbol] = size
    for name, axes in spec.inputs.items():
        builder.given(name, axes, Role.INPUT)
    for name, axes in spec.parameters.items():
        builder.given(name, axes, Role.PARAMETER)
    loss_seen = False
    for name, text in spec.equations.items():
        if loss_seen:
            raise SpecError(
                spec.source,
                f"equations.{name}",
                "comes after loss; the loss must be the last equation",
            )
        defined = len(builder.nodes)
        try:
            builder.equation(name, text)
        except LoweringError as error:
            raise SpecError(spec.source, f"equations.{name}", str(error)) from None
        _check_target(spec, name, builder.nodes[defined:])
        loss_seen = name == "loss"
    graph = Graph(
        name=spec.name,
        spec=spec,
        nodes=tuple(builder.nodes),
        sizes=builder.numeric,
        functions=builder.functions,
        size_latex={"n_batch": r"n_{\text{batch}}"},
        sites=builder.sites,
    )
    unused = [p.name for p in graph.parameters if not graph.users(p)]
    if unused:
        raise SpecError(
            spec.source,
            f"parameters.{unused[0]}",
            f"{unused[0]} is not used by any equation; its gradient would be zero",
        )
    return graph


def _check_target(spec: EquationSpec, name: str, values: Sequence[Value]) -> None:
    """Refuse, before deriving, a function the target's arrays cannot compute, naming
    the equation that calls it (directly, or through an activation such as gelu)."""
    refused = TARGETS[spec.target].refuses
    for value in values:
        assert value.definition is not None
        for function, reason in refused.items():
            calls = [
                f
                for f in value.definition.atoms(sp.Function)
                if isinstance(f, function)
                or any(
                    formula.has(function)
                    for formula in (
                        getattr(f, "formula", None),
                        getattr(getattr(f, "derivative", None), "formula", None),
                    )
                    if formula is not None
                )
            ]
            if calls:
                what = type(calls[0]).__name__
                needs = "calls" if what == function.__name__ else f"{what} needs"
                raise SpecError(
                    spec.source,
                    f"equations.{name}",
                    f"{needs} {function.__name__}, which target = "
                    f'"{spec.target}" cannot compute ({reason}); use target = "numpy"',
                )
