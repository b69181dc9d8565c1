"""sigmoid and softplus: their derivatives are sympy.diff of their definitions, and
they evaluate like the definitions."""

from __future__ import annotations

import math

import pytest
import sympy as sp

from derive.functions import PRIMITIVES

X = sp.Symbol("x", real=True)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_derivative_is_sympy_diff_of_the_definition(name):
    function = PRIMITIVES[name]
    derived = sp.diff(function.definition(X), X)
    assert sp.simplify(sp.diff(function(X), X).rewrite(sp.exp) - derived) == 0


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("value", [-30.0, -1.5, 0.0, 0.25, 40.0])
def test_values_equal_the_definition(name, value):
    function = PRIMITIVES[name]
    expected = float(function.definition(sp.Float(value, 30)).evalf(30))
    assert float(function(sp.Float(value))) == pytest.approx(expected, rel=1e-14)
    assert math.isfinite(float(function(sp.Float(-1000.0))))


def test_they_are_real_for_real_arguments():
    assert all(f(X).is_real for f in PRIMITIVES.values())
    assert PRIMITIVES["sigmoid"](0) == sp.Rational(1, 2)
