"""Parse a formula from a spec (``"x * sigmoid(x)"``) into SymPy, safely.

The text is parsed by Python's :mod:`ast` and never evaluated: the tree is walked, and
only numbers, the allowed variable names, the allowed function names called with
positional arguments, and the operators ``+ - * / **`` are turned into SymPy
(``sympy.parse_expr`` would ``eval`` the text). Anything else (attribute access,
subscripts, lambdas, keyword arguments, strings, comparisons, an unknown name) is
refused with a message that says what is allowed.

Every part of a formula without a variable in it is a number the generated code
computes in float64, so each is checked as it is built: a division by zero, a value
that is not a finite real number (``log(0)``, ``sqrt(-1)``, ``(-8)**(1/3)``) or one
beyond float64's range is refused, naming that part. A power of two numbers is
checked before SymPy computes it, so ``9**9**9`` (369 million digits) costs nothing.

A formula nests at most :data:`MAX_DEPTH` levels deep (``exp(exp(...))``, ``-----x``,
``W.T.T.T``): the walk, SymPy's differentiation and the printers all recurse once per
level, and a formula within the length limit could otherwise exhaust Python's stack.
The equation reader (:mod:`derive.equations`) applies the same checks.
"""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Callable, Mapping

import sympy as sp

from derive.functions import sigmoid, softplus

#: Functions a formula may call, with the number of arguments each takes.
FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int]] = {
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "abs": (sp.Abs, 1),
    "tanh": (sp.tanh, 1),
    "sinh": (sp.sinh, 1),
    "cosh": (sp.cosh, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "atan": (sp.atan, 1),
    "erf": (sp.erf, 1),
    "sigmoid": (sigmoid, 1),
    "softplus": (softplus, 1),
    "max": (sp.Max, 2),
    "min": (sp.Min, 2),
}
#: Constants a formula may use.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}
#: Longest formula accepted, in characters.
MAX_LENGTH = 500
#: Largest magnitude of a number in a formula, as a power of two: float64's range.
MAX_BITS = math.log2(sys.float_info.max)
#: Deepest nesting of a formula's syntax tree (a call, an operator, an attribute or
#: a subscript each add a level); written formulas stay far below it.
MAX_DEPTH = 60

_OPERATORS: dict[type[ast.operator], Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


class FormulaError(ValueError):
    """The formula is not one derive accepts; the message says why."""


def parse_formula(text: str, variables: Mapping[str, sp.Symbol]) -> sp.Expr:
    """The SymPy expression written in ``text``, in the symbols ``variables``."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"is not a formula ({error.msg})") from None
    except RecursionError:  # CPython's parser has its own nesting limit (about 200)
        raise FormulaError(too_deep()) from None
    check_depth(tree.body)
    formula = _Converter(variables).convert(tree.body)
    check_folded(formula)
    return formula


def too_deep() -> str:
    return f"nests deeper than {MAX_DEPTH} levels; write it as several simpler parts"


def check_depth(tree: ast.AST) -> None:
    """Refuse a syntax tree more than :data:`MAX_DEPTH` levels deep, walked without
    recursion (the point is to stop before anything recurses that deep)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(too_deep())
        # Context markers (Load) and operator kinds are not levels of the formula.
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop))
        )


def check_folded(formula: sp.Expr) -> None:
    """Refuse a formula holding a number beyond float64's range: constants SymPy
    folded together (``1e300 * x * 1e300``) that no single part held, or an
    infinity or nan SymPy made of them."""
    for infinite in (sp.zoo, sp.oo, -sp.oo, sp.nan):
        if formula.has(infinite):
            raise FormulaError(f"is not finite: SymPy makes it {infinite}")
    for number in formula.atoms(sp.Number):
        if _bits(number) > MAX_BITS:
            raise FormulaError(
                f"holds the number {number:.3e}, beyond float64's range (about 1.8e308)"
            )


def allowed_names(variables: Mapping[str, sp.Symbol]) -> str:
    """What a formula may use, for error messages."""
    return (
        f"variables {', '.join(variables)}; constants {', '.join(CONSTANTS)}; "
        f"functions {', '.join(FUNCTIONS)}; numbers and + - * / **"
    )


class _Converter:
    def __init__(self, variables: Mapping[str, sp.Symbol]) -> None:
        self.variables = variables

    def refuse(self, what: str) -> FormulaError:
        return FormulaError(
            f"{what} is not allowed; use {allowed_names(self.variables)}"
        )

    def convert(self, node: ast.expr) -> sp.Expr:
        result = self.build(node)
        if not result.free_symbols:
            check_number(node, result)
        return result

    def build(self, node: ast.expr) -> sp.Expr:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.refuse(f"the constant {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise self.refuse(f"the number {value!r}")
            return sp.Integer(value) if isinstance(value, int) else sp.Float(value)
        if isinstance(node, ast.Name):
            if node.id in self.variables:
                return self.variables[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise self.refuse(f"the name {node.id!r}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.convert(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.convert(node.left), self.convert(node.right)
            if isinstance(node.op, ast.Div) and right.is_zero:
                raise FormulaError(f"divides by zero in {_shown(node)}")
            if isinstance(node.op, ast.Pow):
                check_power(node, left, right)
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(describe_node(node))

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.refuse("calling " + describe_node(node.func))
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.refuse(f"the function {name!r}")
        if node.keywords:
            raise self.refuse(f"a keyword argument to {name}")
        function, arity = FUNCTIONS[name]
        if len(node.args) != arity or any(
            isinstance(a, ast.Starred) for a in node.args
        ):
            raise FormulaError(f"{name} takes {arity} argument(s)")
        return function(*(self.convert(a) for a in node.args))


def check_number(node: ast.expr, value: sp.Expr) -> None:
    """Refuse a part without variables that is not a finite real float64 number.

    Its parts were checked before it, so evaluating it (to 15 digits) is cheap.
    """
    part = _shown(node)
    if value.has(sp.zoo, sp.oo, sp.nan) or value.is_finite is False:
        raise FormulaError(f"{part} is not a finite number (SymPy gives {value})")
    if value.is_extended_real is False:
        raise FormulaError(
            f"{part} is not a real number (SymPy gives {value}); the generated code "
            "computes with real floats"
        )
    number = value.evalf(15)
    if not number.is_extended_real:
        raise FormulaError(f"{part} is not a real number (about {number})")
    if _bits(number) > MAX_BITS:
        raise FormulaError(
            f"{part} is about {number:.3e}, beyond float64's range (about 1.8e308)"
        )


def check_power(node: ast.BinOp, base: sp.Expr, exponent: sp.Expr) -> None:
    """Refuse a power of two numbers beyond float64's range before SymPy computes it."""
    if base.free_symbols or exponent.free_symbols:
        return
    magnitude = abs(sp.Float(base.evalf(15)))
    if magnitude == 0:
        return
    bits = float(exponent.evalf(15)) * float(sp.log(magnitude, 2))
    if abs(bits) > MAX_BITS:
        raise FormulaError(
            f"{_shown(node)} is about 2**{bits:.4g}, beyond float64's range "
            "(2**-1074 to about 1.8e308)"
        )


def _shown(node: ast.expr, limit: int = 60) -> str:
    """The part of the formula ``node`` stands for, shortened for a message."""
    text = ast.unparse(node)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _bits(number: sp.Expr) -> float:
    """``abs(log2(abs(number)))``: how far a real number is from 1, in powers of two."""
    magnitude = abs(sp.Float(number))
    return 0.0 if magnitude == 0 else abs(float(sp.log(magnitude, 2)))


def describe_node(node: ast.AST) -> str:
    """What a syntax node is, in words, for error messages."""
    kinds = {
        ast.Attribute: "attribute access",
        ast.Subscript: "indexing",
        ast.Lambda: "a lambda",
        ast.Compare: "a comparison",
        ast.BoolOp: "and/or",
        ast.IfExp: "if/else",
        ast.NamedExpr: "an assignment",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.Call: "a call",
        ast.Starred: "*arguments",
    }
    for kind, description in kinds.items():
        if isinstance(node, kind):
            return description
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        op = node.op
        return f"the operator {type(op).__name__}"
    return type(node).__name__
