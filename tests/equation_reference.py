"""The reference for equation specs (issue 10): every equation evaluated in torch,
float64, and differentiated by torch autograd.

An equation spec is TOML::

    name = "residual_regressor"
    [sizes]        d_in = 4 ...                       positive integers
    [inputs]       x = ["batch", "d_in"] ...          "batch" leads, sized by the data
    [parameters]   W0 = ["d_h", "d_in"] ...           what the gradient is taken for
    [equations]    h0 = "relu(x @ W0.T + b0)" ...     in order; ``loss`` is a scalar
    [worked_point] (optional) numbers for inputs and parameters

Each formula is parsed once with :mod:`ast` and walked against an allow-list; nothing
is ever evaluated by Python. The formulas mean what they mean in NumPy (broadcasting,
``numpy.matmul``'s rules for 1-D, 2-D and stacked arrays, ``.T``, ``swapaxes``,
reductions with ``axis=``/``keepdims=``, ``einsum``, integer and full-slice indexing);
the tests check that against NumPy itself and against finite differences.

One rule is stricter than NumPy: axes meet by *name*. Two different size names never
broadcast against or contract with each other, even where their sizes happen to be
equal, because the derivation keeps sizes symbolic (a spec must stay valid when one
size changes). An axis without a name (the size-1 axis ``keepdims=True`` leaves)
broadcasts as NumPy's does. The batch axis is the axis named ``"batch"``.

At a kink the gradient follows torch, as derive does: ``relu'(0) = 0``, ``abs'(0) = 0``,
``leaky_relu``'s slope at 0, and ``maximum``/``minimum`` pass half the gradient to each
side of a tie. Random points never land there.

A spec that breaks a rule raises :class:`EquationSpecError` naming the field or the
equation (``h0: x @ W0: contracting d_in (4) with d_h (8)``); data that does not fit
the spec raises ``ValueError`` naming the array, the axis and both sizes.
"""

from __future__ import annotations

import ast
import difflib
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BATCH = "batch"


def _softplus(t: torch.Tensor) -> torch.Tensor:
    # logaddexp(0, x): torch's F.softplus switches to x above 20, a 2e-9 gradient slip.
    return torch.logaddexp(torch.zeros_like(t), t)


def _gelu(t: torch.Tensor) -> torch.Tensor:
    return t / 2 * (1 + torch.erf(t / math.sqrt(2)))


#: The elementwise functions of one array, in torch.
ELEMENTWISE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": _softplus,
    "relu": torch.relu,  # relu'(0) = 0, as derive takes it
    "gelu": _gelu,
    "sin": torch.sin,
    "cos": torch.cos,
    "erf": torch.erf,
}
REDUCTIONS = ("sum", "mean", "logsumexp")
NORMALIZERS = ("softmax", "log_softmax")
OTHER_FUNCTIONS = ("leaky_relu", "maximum", "minimum", "swapaxes", "einsum")
FUNCTIONS = (*ELEMENTWISE, *REDUCTIONS, *NORMALIZERS, *OTHER_FUNCTIONS)
CONSTANTS = {"pi": math.pi, "e": math.e}
#: Names a spec cannot give to a size, an input, a parameter or an equation.
RESERVED = frozenset((*FUNCTIONS, *CONSTANTS, BATCH))
OPERATORS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.MatMult: "@",
}
FIELDS = (
    "name",
    "description",
    "sizes",
    "inputs",
    "parameters",
    "equations",
    "worked_point",
)


class EquationSpecError(ValueError):
    """A spec that breaks a rule: ``where`` is the field or equation, then the problem."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class _Refusal(Exception):
    """A problem inside one formula; the caller adds the equation's name."""


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class EquationSpec:
    """A parsed equation spec; ``equations`` keeps each formula's ``ast`` tree."""

    name: str
    description: str
    sizes: dict[str, int]
    inputs: dict[str, tuple[str, ...]]
    parameters: dict[str, tuple[str, ...]]
    formulas: dict[str, str]
    equations: dict[str, ast.expr]
    worked_point: dict[str, np.ndarray] | None

    def shape(self, name: str, batch: int) -> tuple[int, ...]:
        """The shape of input or parameter ``name`` at batch size ``batch``."""
        axes = self.inputs.get(name, self.parameters.get(name))
        assert axes is not None, name
        return tuple(batch if a == BATCH else self.sizes[a] for a in axes)

    @property
    def batched(self) -> bool:
        return any(axes[:1] == (BATCH,) for axes in self.inputs.values())


def load_equation_spec(path: Path | str) -> EquationSpec:
    return parse_equation_spec(Path(path).read_text(), str(path))


def parse_equation_spec(text: str, source: str = "spec.toml") -> EquationSpec:
    """Read and check an equation spec: its fields, then every formula's shapes."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EquationSpecError(source, f"not valid TOML ({error})") from None
    for key in data:
        if key not in FIELDS:
            raise EquationSpecError(key, f"unknown field; allowed: {', '.join(FIELDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _is_identifier(name):
        raise EquationSpecError("name", "must be a Python identifier, as a string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise EquationSpecError("description", "must be a string")
    owners: dict[str, str] = {}
    sizes = _sizes(_table(data, "sizes", required=False), owners)
    inputs = _arrays(_table(data, "inputs", required=False), "input", sizes, owners)
    parameters = _arrays(_table(data, "parameters"), "parameter", sizes, owners)
    formulas: dict[str, str] = {}
    equations: dict[str, ast.expr] = {}
    for key, formula in _table(data, "equations").items():
        _check_name(key, key, "equation", owners)
        if not isinstance(formula, str):
            raise EquationSpecError(key, "must be a formula, as a string")
        try:
            tree = ast.parse(formula.strip(), mode="eval")
        except SyntaxError as error:
            raise EquationSpecError(
                key, f"not a formula ({error.msg}): {formula!r}"
            ) from None
        formulas[key] = formula
        equations[key] = tree.body
    if "loss" not in equations:
        raise EquationSpecError(
            "equations", "no equation named loss (the scalar that is differentiated)"
        )
    spec = EquationSpec(
        name, description, sizes, inputs, parameters, formulas, equations, None
    )
    _check_shapes(spec)
    if "worked_point" in data:
        point = _worked_point(spec, _table(data, "worked_point"))
        spec = EquationSpec(
            name, description, sizes, inputs, parameters, formulas, equations, point
        )
    return spec


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not text.startswith("_") and text.isascii()


def _table(data: dict, key: str, required: bool = True) -> dict:
    if key not in data:
        if required:
            raise EquationSpecError(key, "missing: a table is required")
        return {}
    if not isinstance(data[key], dict):
        raise EquationSpecError(key, "must be a table ([" + key + "])")
    return data[key]


def _check_name(where: str, name: str, kind: str, owners: dict[str, str]) -> None:
    if not _is_identifier(name):
        raise EquationSpecError(where, f"{name!r} is not a Python identifier")
    if name in RESERVED:
        raise EquationSpecError(
            where, f"{name!r} is reserved (a function, a constant or the batch axis)"
        )
    if name in owners:
        raise EquationSpecError(where, f"redefines the {owners[name]} {name!r}")
    if name == "loss" and kind != "equation":
        raise EquationSpecError(where, "'loss' is the equation that is differentiated")
    owners[name] = kind


def _sizes(table: dict, owners: dict[str, str]) -> dict[str, int]:
    sizes = {}
    for key, value in table.items():
        _check_name(f"sizes.{key}", key, "size", owners)
        if type(value) is not int or value < 1:
            raise EquationSpecError(
                f"sizes.{key}", f"must be a positive integer, not {value!r}"
            )
        sizes[key] = value
    return sizes


def _arrays(
    table: dict, kind: str, sizes: dict[str, int], owners: dict[str, str]
) -> dict[str, tuple[str, ...]]:
    arrays = {}
    section = "inputs" if kind == "input" else "parameters"
    for key, axes in table.items():
        where = f"{section}.{key}"
        _check_name(where, key, kind, owners)
        if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
            raise EquationSpecError(
                where, 'must be a list of axis names, like ["batch", "d_in"]'
            )
        for n, axis in enumerate(axes):
            if axis == BATCH:
                if kind == "parameter":
                    raise EquationSpecError(
                        where, "a parameter has no batch axis; only inputs do"
                    )
                if n:
                    raise EquationSpecError(where, '"batch" must be the first axis')
            elif axis not in sizes:
                raise EquationSpecError(
                    where,
                    f"unknown axis name {axis!r}{_suggest(axis, [*sizes, BATCH])}",
                )
        arrays[key] = tuple(axes)
    return arrays


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(sorted(known))}" if known else ""


def _worked_point(spec: EquationSpec, table: dict) -> dict[str, np.ndarray]:
    point = {}
    for key, value in table.items():
        if key not in spec.inputs and key not in spec.parameters:
            raise EquationSpecError(
                f"worked_point.{key}",
                f"not an input or a parameter{_suggest(key, [*spec.inputs, *spec.parameters])}",
            )
        try:
            point[key] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise EquationSpecError(
                f"worked_point.{key}", "must be a number or nested lists of numbers"
            ) from None
    missing = [k for k in (*spec.inputs, *spec.parameters) if k not in point]
    if missing:
        raise EquationSpecError(
            "worked_point", f"gives no value for {', '.join(missing)}"
        )
    try:
        _check_data(spec, point)
    except ValueError as error:
        raise EquationSpecError("worked_point", str(error)) from None
    return point


# --------------------------------------------------------------------------- axes


@dataclass(frozen=True)
class Axis:
    """One axis of a value: its size name (``None`` for keepdims' size-1 axis)."""

    name: str | None
    size: int

    def __str__(self) -> str:
        if self.name == BATCH:
            return BATCH
        return (
            f"{self.name} ({self.size})"
            if self.name
            else f"an axis of size {self.size}"
        )


def _shape_text(axes: tuple[Axis, ...]) -> str:
    return "[" + ", ".join(a.name or str(a.size) for a in axes) + "]"


def _meet(a: Axis, b: Axis) -> Axis | None:
    """The axis two axes make when they broadcast or contract, or None if they can't."""
    if a.name is None and a.size == 1:
        return b
    if b.name is None and b.size == 1:
        return a
    if a.name == b.name and a.size == b.size:
        return a
    return None


def _broadcast(
    left: tuple[Axis, ...], right: tuple[Axis, ...], context: str
) -> tuple[Axis, ...]:
    n = max(len(left), len(right))
    padded_left = (None,) * (n - len(left)) + left
    padded_right = (None,) * (n - len(right)) + right
    result = []
    for a, b in zip(padded_left, padded_right, strict=True):
        if a is None or b is None:
            result.append(a or b)
            continue
        met = _meet(a, b)
        if met is None:
            raise _Refusal(
                f"{context}: cannot broadcast {_shape_text(left)} with "
                f"{_shape_text(right)} ({a} against {b})"
            )
        result.append(met)
    return tuple(result)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Term:
    """A value under evaluation: its tensor and its axes."""

    tensor: torch.Tensor
    axes: tuple[Axis, ...]


# --------------------------------------------------------------------------- evaluation


class _Evaluator:
    """Walks one formula's ``ast`` tree against the allow-list, in torch."""

    def __init__(self, scope: dict[str, Term], later: set[str], device: str) -> None:
        self.scope = scope
        self.later = later
        self.device = device

    def number(self, value: float) -> Term:
        return Term(
            torch.tensor(float(value), dtype=torch.float64, device=self.device), ()
        )

    def __call__(self, node: ast.expr) -> Term:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise _Refusal(f"{ast.unparse(node)}: {_kind(node)} is not allowed")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Term:
        value = node.value
        if isinstance(value, str):
            raise _Refusal(
                f"{ast.unparse(node)}: a string where a number is expected "
                "(strings only as einsum's subscripts)"
            )
        if isinstance(value, bool) or value is None:
            raise _Refusal(
                f"{ast.unparse(node)}: {value} only as keepdims= or axis= of a reduction"
            )
        if not isinstance(value, int | float):
            raise _Refusal(f"{ast.unparse(node)}: not a real number")
        return self.number(value)

    def _Name(self, node: ast.Name) -> Term:
        name = node.id
        if name in self.scope:
            return self.scope[name]
        if name in CONSTANTS:
            return self.number(CONSTANTS[name])
        if name in self.later:
            raise _Refusal(f"{name} is used before it is defined")
        if name in FUNCTIONS:
            raise _Refusal(f"{name} is a function: call it, as {name}(...)")
        raise _Refusal(
            f"unknown name {name!r}{_suggest(name, [*self.scope, *CONSTANTS])}"
        )

    def _UnaryOp(self, node: ast.UnaryOp) -> Term:
        if isinstance(node.op, ast.USub):
            operand = self(node.operand)
            return Term(-operand.tensor, operand.axes)
        if isinstance(node.op, ast.UAdd):
            return self(node.operand)
        raise _Refusal(
            f"{ast.unparse(node)}: operator {_unary(node.op)} is not allowed; "
            "allowed: + - * / ** @ and unary minus"
        )

    def _BinOp(self, node: ast.BinOp) -> Term:
        symbol = OPERATORS.get(type(node.op))
        if symbol is None:
            hint = " (** is the power)" if isinstance(node.op, ast.BitXor) else ""
            raise _Refusal(
                f"{ast.unparse(node)}: operator {_binary(node.op)} is not allowed{hint}; "
                "allowed: + - * / ** @"
            )
        left, right = self(node.left), self(node.right)
        context = ast.unparse(node)
        if symbol == "@":
            return _matmul(left, right, context)
        axes = _broadcast(left.axes, right.axes, context)
        a, b = left.tensor, right.tensor
        tensor = {
            "+": torch.add,
            "-": torch.sub,
            "*": torch.mul,
            "/": torch.div,
            "**": torch.pow,
        }[symbol](a, b)
        return Term(tensor, axes)

    def _Attribute(self, node: ast.Attribute) -> Term:
        if node.attr != "T":
            raise _Refusal(
                f"{ast.unparse(node)}: attribute .{node.attr} is not allowed (only .T)"
            )
        value = self(node.value)
        order = tuple(reversed(range(len(value.axes))))
        return Term(value.tensor.permute(order), tuple(reversed(value.axes)))

    def _Subscript(self, node: ast.Subscript) -> Term:
        value = self(node.value)
        context = ast.unparse(node)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(items) > len(value.axes):
            raise _Refusal(
                f"{context}: {len(items)} indices for a value with "
                f"{len(value.axes)} axes {_shape_text(value.axes)}"
            )
        index: list[Any] = []
        axes: list[Axis] = []
        for item, axis in zip(items, value.axes, strict=False):
            if isinstance(item, ast.Slice):
                if item.lower or item.upper or item.step:
                    raise _Refusal(
                        f"{context}: only integers and full slices (:) may index"
                    )
                index.append(slice(None))
                axes.append(axis)
                continue
            position = _integer(item)
            if position is None:
                raise _Refusal(
                    f"{context}: only integers and full slices (:) may index"
                )
            if axis.name == BATCH:
                raise _Refusal(
                    f"{context}: an integer index on the batch axis (its size is the data's)"
                )
            if not -axis.size <= position < axis.size:
                raise _Refusal(
                    f"{context}: index {position} is out of range for {axis}"
                )
            index.append(position)
        axes += value.axes[len(items) :]
        return Term(value.tensor[tuple(index)], tuple(axes))

    def _Call(self, node: ast.Call) -> Term:
        context = ast.unparse(node)
        if not isinstance(node.func, ast.Name):
            raise _Refusal(
                f"{context}: calling {ast.unparse(node.func)} is not allowed; "
                "call the functions by name, as exp(x)"
            )
        name = node.func.id
        if name not in FUNCTIONS:
            if name in self.scope or name in CONSTANTS:
                raise _Refusal(f"{context}: {name} is not a function")
            raise _Refusal(
                f"{context}: unknown function {name!r}{_suggest(name, list(FUNCTIONS))}"
            )
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise _Refusal(f"{context}: *arguments are not allowed")
        allowed = {
            **dict.fromkeys(REDUCTIONS, ("axis", "keepdims")),
            **dict.fromkeys(NORMALIZERS, ("axis",)),
        }.get(name, ())
        keywords = {}
        for keyword in node.keywords:
            if keyword.arg not in allowed:
                shown = "**" if keyword.arg is None else f"{keyword.arg}="
                permitted = ", ".join(f"{k}=" for k in allowed) or "none"
                raise _Refusal(
                    f"{context}: keyword {shown} is not allowed in {name}(); "
                    f"allowed: {permitted}"
                )
            keywords[keyword.arg] = keyword.value
        if name == "einsum":
            return self._einsum(node, context)
        args = node.args
        if name in ELEMENTWISE:
            (a,) = _arity(args, 1, 1, name, context)
            value = self(a)
            return Term(ELEMENTWISE[name](value.tensor), value.axes)
        if name == "leaky_relu":
            a, slope_node = _arity(args, 2, 2, name, context)
            slope = _number(slope_node)
            if slope is None:
                raise _Refusal(f"{context}: leaky_relu's slope must be a number")
            value = self(a)
            return Term(F.leaky_relu(value.tensor, slope), value.axes)
        if name in ("maximum", "minimum"):
            a, b = (self(arg) for arg in _arity(args, 2, 2, name, context))
            axes = _broadcast(a.axes, b.axes, context)
            function = torch.maximum if name == "maximum" else torch.minimum
            return Term(function(a.tensor, b.tensor), axes)
        if name == "swapaxes":
            a, i, j = _arity(args, 3, 3, name, context)
            value = self(a)
            first = _axis(i, value.axes, context)
            second = _axis(j, value.axes, context)
            axes = list(value.axes)
            axes[first], axes[second] = axes[second], axes[first]
            return Term(value.tensor.transpose(first, second), tuple(axes))
        # reductions and normalizers: (a, axis) positionally or axis= by keyword
        positional = _arity(args, 1, 2, name, context)
        if len(positional) == 2:
            if "axis" in keywords:
                raise _Refusal(f"{context}: axis given twice")
            keywords["axis"] = positional[1]
        value = self(positional[0])
        if name in NORMALIZERS:
            axis_node = keywords.get("axis")
            axis = -1 if axis_node is None else _axis(axis_node, value.axes, context)
            if axis_node is None and not value.axes:
                raise _Refusal(f"{context}: {name} of a scalar (it has no axis -1)")
            axis %= max(len(value.axes), 1)
            function = torch.softmax if name == "softmax" else torch.log_softmax
            return Term(function(value.tensor, axis), value.axes)
        return _reduce(name, value, keywords, context)

    def _einsum(self, node: ast.Call, context: str) -> Term:
        if not node.args or not (
            isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            raise _Refusal(
                f"{context}: einsum's first argument is its subscripts, a string"
            )
        subscripts = node.args[0].value.replace(" ", "")
        operands = [self(a) for a in node.args[1:]]
        inputs_text, arrow, output_text = subscripts.partition("->")
        terms = inputs_text.split(",")
        letters = "".join(terms) + output_text
        if not all(c.isascii() and c.isalpha() for c in letters):
            raise _Refusal(
                f"{context}: einsum subscripts are letters, commas and one -> (no ...)"
            )
        if len(terms) != len(operands):
            raise _Refusal(
                f"{context}: einsum {subscripts!r} names {len(terms)} operands, "
                f"given {len(operands)}"
            )
        found: dict[str, Axis] = {}
        for n, (term, operand) in enumerate(zip(terms, operands, strict=True)):
            if len(term) != len(operand.axes):
                raise _Refusal(
                    f"{context}: einsum operand {n + 1} has {len(operand.axes)} axes "
                    f"{_shape_text(operand.axes)}, {term!r} names {len(term)}"
                )
            for letter, axis in zip(term, operand.axes, strict=True):
                if letter in found:
                    met = _meet(found[letter], axis)
                    if met is None:
                        raise _Refusal(
                            f"{context}: einsum letter {letter!r} stands for "
                            f"{found[letter]} and for {axis}"
                        )
                    found[letter] = met
                else:
                    found[letter] = axis
        if arrow:
            for letter in output_text:
                if letter not in found:
                    raise _Refusal(
                        f"{context}: einsum output letter {letter!r} is in no operand"
                    )
                if output_text.count(letter) > 1:
                    raise _Refusal(f"{context}: einsum output repeats {letter!r}")
        else:  # NumPy's implicit mode: letters that appear once, sorted
            joined = "".join(terms)
            output_text = "".join(sorted(c for c in found if joined.count(c) == 1))
        explicit = ",".join(terms) + "->" + output_text
        tensor = torch.einsum(explicit, *(o.tensor for o in operands))
        return Term(tensor, tuple(found[c] for c in output_text))


def _kind(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.Compare: "a comparison",
        ast.BoolOp: "and/or",
        ast.IfExp: "if/else",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.NamedExpr: "an assignment (:=)",
        ast.JoinedStr: "an f-string",
        ast.Starred: "*unpacking",
    }
    return names.get(type(node), type(node).__name__)


def _unary(op: ast.unaryop) -> str:
    return {ast.Not: "not", ast.Invert: "~"}.get(type(op), type(op).__name__)


def _binary(op: ast.operator) -> str:
    return {
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.BitXor: "^",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.LShift: "<<",
        ast.RShift: ">>",
    }.get(type(op), type(op).__name__)


def _arity(
    args: list[ast.expr], least: int, most: int, name: str, context: str
) -> list[ast.expr]:
    if not least <= len(args) <= most:
        wanted = str(least) if least == most else f"{least} or {most}"
        raise _Refusal(
            f"{context}: {name}() takes {wanted} arguments, given {len(args)}"
        )
    return args


def _number(node: ast.expr) -> float | None:
    """A literal real number (a unary minus allowed), or None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return sign * node.value
    return None


def _integer(node: ast.expr) -> int | None:
    value = _number(node)
    return value if isinstance(value, int) else None


def _axis(node: ast.expr, axes: tuple[Axis, ...], context: str) -> int:
    """An axis argument, normalized; NumPy's range: -ndim <= axis < ndim."""
    axis = _integer(node)
    if axis is None:
        raise _Refusal(
            f"{context}: an axis must be an integer (or a tuple of integers), "
            f"not {ast.unparse(node)}"
        )
    if not -len(axes) <= axis < len(axes):
        raise _Refusal(
            f"{context}: axis {axis} is out of range for {_shape_text(axes)} "
            f"({len(axes)} axes)"
        )
    return axis % len(axes)


def _reduce(
    name: str, value: Term, keywords: dict[str, ast.expr], context: str
) -> Term:
    axis_node = keywords.get("axis")
    if axis_node is None or (
        isinstance(axis_node, ast.Constant) and axis_node.value is None
    ):
        dims = list(range(len(value.axes)))
    elif isinstance(axis_node, ast.Tuple):
        dims = [_axis(n, value.axes, context) for n in axis_node.elts]
        if len(set(dims)) != len(dims):
            raise _Refusal(f"{context}: an axis is repeated in axis=")
    else:
        dims = [_axis(axis_node, value.axes, context)]
    keepdims = False
    if "keepdims" in keywords:
        flag = keywords["keepdims"]
        if not (isinstance(flag, ast.Constant) and isinstance(flag.value, bool)):
            raise _Refusal(f"{context}: keepdims must be True or False")
        keepdims = flag.value
    if not dims:  # NumPy: a reduction of a scalar is the scalar
        return value
    t = value.tensor
    if name == "sum":
        tensor = torch.sum(t, dim=dims, keepdim=keepdims)
    elif name == "mean":
        tensor = torch.mean(t, dim=dims, keepdim=keepdims)
    else:
        tensor = torch.logsumexp(t, dim=dims, keepdim=keepdims)
    if keepdims:
        axes = tuple(
            Axis(None, 1) if n in dims else a for n, a in enumerate(value.axes)
        )
    else:
        axes = tuple(a for n, a in enumerate(value.axes) if n not in dims)
    return Term(tensor, axes)


def _matmul(left: Term, right: Term, context: str) -> Term:
    """``numpy.matmul``'s rules: 1-D operands gain and lose an axis, stacks broadcast."""
    for side, term in (("left", left), ("right", right)):
        if not term.axes:
            raise _Refusal(
                f"{context}: @ needs arrays with axes; the {side} is a scalar"
            )
    a, b = left.axes, right.axes
    k_left = a[-1]
    k_right = b[0] if len(b) == 1 else b[-2]
    if _meet_exact(k_left, k_right) is None:
        raise _Refusal(f"{context}: contracting {k_left} with {k_right}")
    if len(a) == 1 and len(b) == 1:
        axes: tuple[Axis, ...] = ()
    elif len(a) == 1:
        axes = b[:-2] + b[-1:]
    elif len(b) == 1:
        axes = a[:-1]
    else:
        axes = _broadcast(a[:-2], b[:-2], context) + (a[-2], b[-1])
    return Term(torch.matmul(left.tensor, right.tensor), axes)


def _meet_exact(a: Axis, b: Axis) -> Axis | None:
    """Contracted axes must be the same axis (a size-1 axis does not stretch here)."""
    if a.name == b.name and a.size == b.size:
        return a
    return None


# --------------------------------------------------------------------------- running


@dataclass
class EquationResult:
    """Every equation's value, the loss, and the gradient of every parameter and of
    every equation's value (``value_gradients``), as float64 NumPy arrays."""

    values: dict[str, np.ndarray]
    loss: float
    gradients: dict[str, np.ndarray]
    value_gradients: dict[str, np.ndarray]


def _check_shapes(spec: EquationSpec) -> None:
    """Run every formula on shape-only (meta) tensors, so a spec is refused up front."""
    batch = 2
    scope = {
        name: Term(
            torch.empty(spec.shape(name, batch), dtype=torch.float64, device="meta"),
            _axes(spec, name, batch),
        )
        for name in (*spec.inputs, *spec.parameters)
    }
    _run(spec, scope, "meta")


def _axes(spec: EquationSpec, name: str, batch: int) -> tuple[Axis, ...]:
    axes = spec.inputs.get(name, spec.parameters.get(name, ()))
    return tuple(Axis(a, batch if a == BATCH else spec.sizes[a]) for a in axes)


def _run(spec: EquationSpec, scope: dict[str, Term], device: str) -> dict[str, Term]:
    scope = dict(scope)
    for size, value in spec.sizes.items():
        scope[size] = Term(
            torch.tensor(float(value), dtype=torch.float64, device=device), ()
        )
    later = set(spec.equations)
    values = {}
    for name, tree in spec.equations.items():
        later.discard(name)
        try:
            term = _Evaluator(scope, later | {name}, device)(tree)
        except _Refusal as refusal:
            raise EquationSpecError(name, str(refusal)) from None
        scope[name] = values[name] = term
    loss = values["loss"]
    if loss.axes:
        raise EquationSpecError(
            "loss", f"must be a scalar; it has axes {_shape_text(loss.axes)}"
        )
    return values


def _check_data(spec: EquationSpec, arrays: Mapping[str, Any]) -> int | None:
    """Names and shapes of ``arrays`` against the spec; returns the batch size."""
    expected = [*spec.inputs, *spec.parameters]
    for key in arrays:
        if key not in expected:
            raise ValueError(
                f"{key}: not an input or a parameter of {spec.name}{_suggest(key, expected)}"
            )
    batch: int | None = None
    batch_owner = ""
    for key in expected:
        if key not in arrays:
            raise ValueError(f"{key}: missing (expected {', '.join(expected)})")
        shape = np.shape(arrays[key])
        axes = spec.inputs.get(key, spec.parameters.get(key, ()))
        if len(shape) != len(axes):
            raise ValueError(
                f"{key}: has {len(shape)} axes {shape}, expected {len(axes)} {list(axes)}"
            )
        for n, (axis, got) in enumerate(zip(axes, shape, strict=True)):
            if axis == BATCH:
                if batch is None:
                    batch, batch_owner = got, key
                elif got != batch:
                    raise ValueError(
                        f"{key}: batch axis has size {got}, but {batch_owner}'s has {batch}"
                    )
            elif got != spec.sizes[axis]:
                raise ValueError(
                    f"{key}: axis {n} ({axis}) has size {got}, expected {spec.sizes[axis]}"
                )
    return batch


def evaluate(
    spec: EquationSpec,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> EquationResult:
    """Every equation of ``spec`` at ``params`` and ``inputs`` (float64), and the
    gradient of ``loss`` with respect to every parameter and every value."""
    overlap = set(params) & set(inputs)
    if overlap:
        raise ValueError(f"{', '.join(sorted(overlap))}: given as input and parameter")
    for key in params:
        if key in spec.inputs:
            raise ValueError(f"{key}: an input of {spec.name}, given as a parameter")
    for key in inputs:
        if key in spec.parameters:
            raise ValueError(f"{key}: a parameter of {spec.name}, given as an input")
    arrays = {**params, **inputs}
    batch = _check_data(spec, arrays) or 1
    leaves = {
        k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
        for k, v in params.items()
    }
    scope = {k: Term(t, _axes(spec, k, batch)) for k, t in leaves.items()}
    for key, value in inputs.items():
        scope[key] = Term(
            torch.tensor(np.asarray(value, dtype=np.float64)), _axes(spec, key, batch)
        )
    values = _run(spec, scope, "cpu")
    for term in values.values():
        if term.tensor.requires_grad:
            term.tensor.retain_grad()
    loss = values["loss"].tensor
    if loss.requires_grad:
        loss.backward()

    def grad(t: torch.Tensor) -> np.ndarray:
        found = t.grad
        return np.zeros(tuple(t.shape)) if found is None else found.detach().numpy()

    return EquationResult(
        values={k: v.tensor.detach().numpy().copy() for k, v in values.items()},
        loss=float(loss.detach()),
        gradients={k: grad(t) for k, t in leaves.items()},
        value_gradients={
            k: grad(v.tensor)
            if v.tensor.requires_grad
            else np.zeros(tuple(v.tensor.shape))
            for k, v in values.items()
        },
    )


def random_point(
    spec: EquationSpec, batch: int = 4, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Float64 parameters and inputs for ``spec``: inputs standard normal, parameters
    normal with standard deviation 1/sqrt(last axis size) (a fan-in scaling, so that
    products of many terms stay of order one). Labels and one-hot targets are the spec
    author's business: every input here is a float array."""
    rng = np.random.default_rng(seed)
    params = {}
    for name in spec.parameters:
        shape = spec.shape(name, batch)
        fan = shape[-1] if shape else 1
        params[name] = rng.standard_normal(shape) / math.sqrt(fan)
    inputs = {
        name: rng.standard_normal(spec.shape(name, batch)) for name in spec.inputs
    }
    return params, inputs
