"""The formulas of a spec, evaluated directly by NumPy: the reference that every
generated module is checked against before it is written.

An equation (``"relu(x @ W0.T + b0)"``) or a custom activation or loss
(``"x * sigmoid(x)"``) is parsed by :mod:`ast` and walked here with NumPy's own
operations, independently of the derivation: nothing of SymPy, the index form, the
passes or the printers is used, so a mistake in any of them shows as a disagreement.
The spec readers have already allow-listed every node; anything else is a bug and
raises.

Where the equation reader named a part of a formula as a value of its own (the
argument of a nonlinear function that holds a sum, ``h0_in``; a softmax's
log-normalizer, ``weights_lse``), the walk computes that part as NumPy does and
reports it under the same name, and takes a value given for it instead: so a
gradient with respect to any value the module has can be checked by perturbing it.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Array = Any
#: Where the reader named a part of a formula: the part's span in the formula's
#: parsed text (line, column, end line, end column) and the kind ("in", "lse").
Site = tuple[int, int, int, int, str]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(a: Array) -> Array:
    return np.exp(-np.logaddexp(0.0, -a))


def _logsumexp(a: Array, axis: Any = None, keepdims: bool = False) -> Array:
    a = np.asarray(a, dtype=np.float64)
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    total = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


#: Elementwise functions of one argument, by the name a formula calls them.
UNARY: dict[str, Callable[[Array], Array]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "sin": np.sin,
    "cos": np.cos,
    "atan": np.arctan,
    "erf": _erf,
    "sigmoid": _sigmoid,
    "softplus": lambda a: np.logaddexp(0.0, a),
    "relu": lambda a: np.maximum(a, 0.0),
    "gelu": lambda a: a / 2 * (1 + _erf(a / math.sqrt(2))),
}
#: Elementwise functions of two arguments.
BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "maximum": np.maximum,
    "minimum": np.minimum,
    "max": np.maximum,  # custom formulas' names
    "min": np.minimum,
    "leaky_relu": lambda a, slope: np.where(a > 0, a, slope * a),
}
CONSTANTS = {"pi": math.pi, "e": math.e}

_OPERATORS: dict[type, Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.MatMult: np.matmul,
}


def parse(text: str) -> ast.expr:
    """The formula's tree, parsed as the spec readers parse it."""
    return ast.parse(text.strip(), mode="eval").body


def span(node: ast.expr, kind: str) -> Site:
    """Where ``node`` is in its formula, and what was named there."""
    return (
        node.lineno,
        node.col_offset,
        node.end_lineno or node.lineno,
        node.end_col_offset or node.col_offset,
        kind,
    )


class Walk:
    """One formula evaluated on ``scope`` (names to arrays and numbers).

    ``sites`` names the parts the reader named (see the module's docstring);
    ``given`` holds values to take for some of them; :attr:`named` collects every
    named part as computed (or given).
    """

    def __init__(
        self,
        scope: Mapping[str, Any],
        sites: Mapping[Site, str] | None = None,
        given: Mapping[str, Array] | None = None,
    ) -> None:
        self.scope = scope
        self.sites = sites or {}
        self.given = given or {}
        self.named: dict[str, Array] = {}

    def site(self, node: ast.expr, kind: str, compute: Callable[[], Array]) -> Array:
        """The part at ``node``: given, or computed; recorded when it is named."""
        name = self.sites.get(span(node, kind))
        if name is None:
            return compute()
        value = self.given[name] if name in self.given else compute()
        self.named[name] = value
        return value

    def __call__(self, node: ast.expr) -> Array:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.scope:
                return self.scope[node.id]
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            operation = _OPERATORS[type(node.op)]
            return operation(self(node.left), self(node.right))
        if isinstance(node, ast.Attribute):
            assert node.attr == "T", node.attr
            return np.asarray(self(node.value)).T
        if isinstance(node, ast.Subscript):
            items = (
                node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            )
            index = tuple(
                slice(None) if isinstance(item, ast.Slice) else self(item)
                for item in items
            )
            return np.asarray(self(node.value))[index]
        if isinstance(node, ast.Call):
            return self.call(node)
        raise AssertionError(f"the reader let through {ast.dump(node)}")

    def argument(self, node: ast.expr) -> Array:
        """An argument of a function: named where the reader named it."""
        return self.site(node, "in", lambda: self(node))

    def call(self, node: ast.Call) -> Array:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        keywords = {k.arg: k.value for k in node.keywords}
        if name in UNARY:
            return UNARY[name](self.argument(node.args[0]))
        if name == "leaky_relu":
            return BINARY[name](self.argument(node.args[0]), self(node.args[1]))
        if name in BINARY:
            return BINARY[name](*(self(a) for a in node.args))
        if name == "einsum":
            subscripts = node.args[0]
            assert isinstance(subscripts, ast.Constant)
            operands = [np.asarray(self(a), dtype=np.float64) for a in node.args[1:]]
            return np.einsum(str(subscripts.value), *operands)  # type: ignore[arg-type]
        if name == "swapaxes":
            first, second = (self(a) for a in node.args[1:])
            return np.swapaxes(self(node.args[0]), first, second)
        axis_node = keywords.get("axis", node.args[1] if len(node.args) > 1 else None)
        axis = None if axis_node is None else self.axes(axis_node)
        keepdims = "keepdims" in keywords and self(keywords["keepdims"]) is True
        if name in ("sum", "mean"):
            array = self(node.args[0])
            if np.ndim(array) == 0 and axis is None:
                return array
            reduce = np.sum if name == "sum" else np.mean
            return reduce(array, axis=axis, keepdims=keepdims)
        assert name in ("logsumexp", "softmax", "log_softmax"), name
        array = np.asarray(self.argument(node.args[0]), dtype=np.float64)
        if array.ndim == 0 and axis is None and name == "logsumexp":
            return array
        if axis is None:
            axis = -1 if name != "logsumexp" else tuple(range(array.ndim))
        # The log-normalizer, without its reduced axes (as the reader names it).
        lse = self.site(node, "lse", lambda: _logsumexp(array, axis=axis))
        kept = np.expand_dims(lse, axis)
        if name == "logsumexp":
            return kept if keepdims else lse
        if name == "softmax":
            return np.exp(array - kept)
        return array - kept

    def axes(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Tuple):
            return tuple(self(item) for item in node.elts)
        return self(node)
