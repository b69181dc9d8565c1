"""The formula parser: what it turns into SymPy, and what it refuses."""

from __future__ import annotations

import pytest
import sympy as sp

from derive.expressions import FormulaError, parse_formula
from derive.functions import sigmoid

X = sp.Symbol("x", real=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x * sigmoid(x)", X * sigmoid(X)),
        ("x**3/3 - 2.5*x", X**3 / 3 - sp.Float(2.5) * X),
        ("-x + +x", sp.Integer(0)),
        ("max(x, 0) + min(0, x)", sp.Max(X, 0) + sp.Min(0, X)),
        (
            "exp(-x**2) * erf(x) / sqrt(pi)",
            sp.exp(-(X**2)) * sp.erf(X) / sp.sqrt(sp.pi),
        ),
        ("abs(x) + log(e)", sp.Abs(X) + 1),
    ],
)
def test_formulas_become_sympy(text, expected):
    assert parse_formula(text, {"x": X}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('ls')", "calling attribute access is not allowed"),
        ("x.__class__", "attribute access is not allowed"),
        ("(lambda: x)()", "calling a lambda is not allowed"),
        ("[x][0]", "indexing is not allowed"),
        ("x if x > 0 else 0", "if/else is not allowed"),
        ("x > 0", "a comparison is not allowed"),
        ("open('f')", "the function 'open' is not allowed"),
        ("exp(x, 2)", "exp takes 1 argument(s)"),
        ("exp(*[x])", "exp takes 1 argument(s)"),
        ("y", "the name 'y' is not allowed"),
        ("'x'", "the constant 'x' is not allowed"),
        ("x +", "is not a formula"),
        ("", "must be a non-empty string"),
        ("x" + " + x" * 200, "is longer than 500 characters"),
    ],
)
def test_everything_else_is_refused(text, message):
    with pytest.raises(
        FormulaError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_formula(text, {"x": X})


def test_refusals_say_what_is_allowed():
    with pytest.raises(
        FormulaError, match="use variables x; constants pi, e; functions"
    ):
        parse_formula("x.real", {"x": X})
