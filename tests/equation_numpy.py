"""The equation language read by NumPy itself: the oracle the torch reference
(``tests/equation_reference.py``) and the drawn specs are checked against."""

from __future__ import annotations

import ast

import numpy as np
import scipy.special

from tests.equation_reference import EquationSpec


def _softmax(a, axis=-1):
    return scipy.special.softmax(a, axis=axis)


def _log_softmax(a, axis=-1):
    return scipy.special.log_softmax(a, axis=axis)


#: The expression language's names, as NumPy and SciPy spell them.
NUMPY_NAMES = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,
    "softplus": lambda a: np.logaddexp(0, a),
    "relu": lambda a: np.maximum(a, 0),
    "gelu": lambda a: a / 2 * (1 + scipy.special.erf(a / np.sqrt(2))),
    "sin": np.sin,
    "cos": np.cos,
    "erf": scipy.special.erf,
    "leaky_relu": lambda a, slope: np.where(a > 0, a, slope * a),
    "maximum": np.maximum,
    "minimum": np.minimum,
    "sum": np.sum,
    "mean": np.mean,
    "logsumexp": scipy.special.logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "einsum": np.einsum,
    "swapaxes": np.swapaxes,
    "pi": np.pi,
    "e": np.e,
}


def numpy_values(spec: EquationSpec, arrays: dict[str, np.ndarray]) -> dict:
    """Every equation run by NumPy itself: the oracle for "NumPy's meaning exactly".

    Only here, on the test suite's own specs, is a formula handed to Python: compiled
    from the tree the reference parsed, with no builtins and NumPy's functions as the
    only names, so that the check does not lean on the reference's own walker.
    """
    scope: dict = {**NUMPY_NAMES, **spec.sizes, **arrays}
    values = {}
    for name, tree in spec.equations.items():
        code = compile(ast.Expression(tree), f"<{name}>", "eval")
        scope[name] = values[name] = eval(code, {"__builtins__": {}}, scope)  # noqa: S307
    return values
