"""Print array expressions for any library of the Python array API standard (2023.12).

The generated module calls every array function through ``xp``, the namespace
``array_api_compat.array_namespace`` finds for its arguments (NumPy, torch, JAX, CuPy,
Dask, array-api-strict). :class:`ArrayAPICodePrinter` is derive's NumPy printer with
``_module = "xp"`` and the calls that the standard spells differently:

- no ``outer`` or ``einsum``: an outer product is ``a[:, None] * b``, an einsum the
  broadcast product of its operands (``permute_dims``, length-1 axes) summed over
  its contracted letters; ``swapaxes`` and ``transpose`` are ``matrix_transpose``
  and ``permute_dims``;
- arrays it makes (a unit vector, a constant gradient) take the dtype and device of
  an array in scope (``like``), since the standard mixes neither kinds nor devices;
- no methods beyond the standard's: ``xp.sum(a, axis=0)``, ``xp.astype(a, dtype)``;
- functions take arrays only (Python scalars only next to operators), so
  ``maximum(0, x)`` is ``xp.maximum(x, xp.zeros_like(x))``, which keeps ``x``'s dtype
  and device, and passes NaN on as NumPy's does;
- no ``erf``: gelu cannot be written, and the spec is refused before anything is
  derived (:mod:`derive.targets`).

Calls of the module's own functions (``relu``, ``logsumexp``) pass ``xp=xp`` on, so a
call of ``gradients`` looks the namespace up once.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.numpy import _known_functions_numpy
from sympy.printing.precedence import PRECEDENCE, precedence

from derive.activations import Elementwise
from derive.errors import DeriveError
from derive.passes.to_array import Einsum, NewAxes, Outer, Permuted
from derive.printing.numpy_code import NumPyCodePrinter

#: The standard's elementwise functions, by SymPy's names where NumPy's differ.
_STANDARD_NAMES = {
    "arccos": "acos",
    "arccosh": "acosh",
    "arcsin": "asin",
    "arcsinh": "asinh",
    "arctan": "atan",
    "arctan2": "atan2",
    "arctanh": "atanh",
}
#: Elementwise functions of the 2023.12 standard.
_STANDARD = frozenset(
    """abs acos acosh asin asinh atan atan2 atanh ceil cos cosh exp expm1 floor hypot
    isfinite isinf isnan log log1p log2 log10 logaddexp maximum minimum sign sin sinh
    sqrt square tan tanh trunc""".split()
)
_ARRAY_API_FUNCTIONS = {
    sympy_name: f"xp.{_STANDARD_NAMES.get(name, name)}"
    for sympy_name, name in _known_functions_numpy.items()
    if _STANDARD_NAMES.get(name, name) in _STANDARD
}
_ARRAY_API_CONSTANTS = {
    "Exp1": "xp.e",
    "Pi": "xp.pi",
    "NaN": "xp.nan",
    "Infinity": "xp.inf",
}


class ArrayAPICodePrinter(NumPyCodePrinter):
    """:class:`NumPyCodePrinter` for the array API standard, through the namespace ``xp``."""

    _module = "xp"
    _kf = _ARRAY_API_FUNCTIONS
    _kc = _ARRAY_API_CONSTANTS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SymPy's NumPyPrinter adds the math module's functions (math.erf) to the
        # known ones; only the standard's may be printed here.
        self.known_functions = dict(_ARRAY_API_FUNCTIONS)

    def _helper_call(self, function: str, *arguments: str) -> str:
        self.module_imports[self._module].add(function)
        return super()._helper_call(function, *arguments, "xp=xp")

    def _as_array(self, expr: sp.Expr, like: str) -> str:
        """``expr`` as an array like the array ``like``: a number becomes
        ``xp.full_like(like, number)``, since the standard's functions take arrays."""
        if not expr.is_number:
            return self._print(expr)
        if expr == 0:
            return self._call("zeros_like", like)
        return self._call("full_like", like, self._print(sp.Float(expr)))

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        """SymPy's bracketing rule, with the precedence of what this printer writes
        as an operator where NumPy's printer writes a call (see :meth:`_precedence`)."""
        own = self._precedence(item)
        if own < level or (not strict and own <= level):
            return f"({self._print(item)})"
        return self._print(item)

    def _precedence(self, item: Any) -> int:
        """``outer`` is ``a[:, None] * b`` here, an einsum without a contraction a
        bare product, and a Heaviside with a value at 0 besides 0 or 1 a sum."""
        if isinstance(item, Outer):
            return PRECEDENCE["Mul"]
        if isinstance(item, Einsum) and "->" in item.args[0].name:
            inputs, output = item.args[0].name.split("->")
            if set(inputs.replace(",", "")) <= set(output):
                return PRECEDENCE["Mul"]
        if isinstance(item, sp.Heaviside):
            at_zero = item.args[1] if len(item.args) > 1 else sp.Rational(1, 2)
            if at_zero not in (0, 1):
                return PRECEDENCE["Add"]
        return int(precedence(item))

    def _print_Outer(self, expr: sp.Expr) -> str:
        left, right = expr.args
        column = self.parenthesize(left, PRECEDENCE["Atom"], strict=True)
        return f"{column}[:, None] * {self.parenthesize(right, PRECEDENCE['Mul'], strict=False)}"

    def _print_SumAxes(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        if not axes:
            return self._call("sum", self._print(operand))
        axis = self._print(axes[0]) if len(axes) == 1 else self._print(tuple(axes))
        return self._call("sum", self._print(operand), f"axis={axis}")

    def _print_Einsum(self, expr: sp.Expr) -> str:
        """The standard has no einsum: each operand's axes are put in the order of
        the letters (``permute_dims``), given length-1 axes for the letters it lacks,
        and the broadcast product is summed over the contracted letters. This
        materializes the product over every letter; derive prints an einsum only
        where no matrix product or ``tensordot`` computes the contraction."""
        subscripts, *operands = expr.args
        inputs, output = subscripts.name.split("->")
        terms = inputs.split(",")
        letters = [*output, *sorted({c for t in terms for c in t} - set(output))]
        factors = []
        for term, operand in zip(terms, operands, strict=True):
            own = [c for c in letters if c in term]
            array = operand
            if own != list(term):
                array = Permuted(operand, *(sp.Integer(term.index(c)) for c in own))
            flags = [sp.Integer(c in term) for c in letters]
            if len(own) < len(letters):
                array = NewAxes(array, *flags)
            factors.append(self.parenthesize(array, PRECEDENCE["Mul"], strict=False))
        product = " * ".join(factors)
        summed = tuple(range(len(output), len(letters)))
        if not summed:
            return product
        axis = str(summed[0]) if len(summed) == 1 else str(summed)
        return self._call("sum", product, f"axis={axis}")

    def _print_Sliced(self, expr: sp.Expr) -> str:
        """``x[:, 0, :]``: the standard indexes every axis (NumPy fills in trailing
        ``:``, which the standard leaves unspecified)."""
        operand, *key = expr.args
        items = [":" if k == -1 else self._print(k) for k in key]
        text = self.parenthesize(operand, PRECEDENCE["Atom"], strict=True)
        return f"{text}[{', '.join(items)}]"

    def _print_Permuted(self, expr: sp.Expr) -> str:
        """``matrix_transpose`` for the last two axes, else ``permute_dims``."""
        operand, *order = expr.args
        positions = tuple(int(p) for p in order)
        n = len(positions)
        if positions == (*range(n - 2), n - 1, n - 2):
            return self._call("matrix_transpose", self._print(operand))
        return self._call("permute_dims", self._print(operand), str(positions))

    def _like(self, what: str) -> tuple[str, str]:
        """The dtype and device of the array :attr:`like` names, for ``what``."""
        if self.like is None:
            raise DeriveError(
                f"the array_api target needs an array in scope for the dtype and "
                f"device of {what}; none is known here"
            )
        # array_api_compat's device(), which the module imports by name (recorded in
        # module_imports, as SymPy's printers record what they call).
        self.module_imports["array_api_compat"].add("device")
        return f"{self.like}.dtype", f"device({self.like})"

    def _print_UnitVector(self, expr: sp.Expr) -> str:
        """``arange(size) == position`` in the dtype and on the device of the
        arrays around it (the standard does not mix booleans and floats)."""
        size, position = expr.args
        dtype, device = self._like("a unit vector")
        arange = self._call("arange", self._print(size), f"device={device}")
        return self._call("astype", f"{arange} == {self._print(position)}", dtype)

    def _print_BroadcastTo(self, expr: sp.Expr) -> str:
        """``broadcast_to`` of an array; a number is ``full`` of the shape, since the
        standard's functions take arrays."""
        operand, *shape = expr.args
        sizes = ", ".join(self._print(s) for s in shape)
        comma = "," if len(shape) == 1 else ""
        if not operand.is_number:
            return self._call("broadcast_to", self._print(operand), f"({sizes}{comma})")
        dtype, device = self._like("a constant gradient")
        value = self._print(sp.Float(operand))
        return self._call(
            "full", f"({sizes}{comma})", value, f"dtype={dtype}", f"device={device}"
        )

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        """``x > 0`` in ``x``'s dtype; the value at 0 added where it is not 0 or 1."""
        arg, *at_zero = expr.args
        value = at_zero[0] if at_zero else sp.Rational(1, 2)
        x = self.parenthesize(arg, PRECEDENCE["Atom"], strict=True)
        step = self._call(
            "astype", f"{x} > 0" if value != 1 else f"{x} >= 0", f"{x}.dtype"
        )
        if value in (0, 1):
            return step
        at = self._call("astype", f"{x} == 0", f"{x}.dtype")
        return f"{step} + {self._print(sp.Float(value))} * {at}"

    def _extremum(self, expr: sp.Expr, function: str) -> str:
        arrays = [a for a in expr.args if not a.is_number]
        like = self._print(arrays[0])
        printed = [self._as_array(a, like) for a in expr.args if a is not arrays[0]]
        result = like
        for other in printed:
            result = self._call(function, result, other)
        return result

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._extremum(expr, "maximum")

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._extremum(expr, "minimum")

    def _print_sigmoid(self, expr: sp.Expr) -> str:
        (x,) = expr.args
        if "sigmoid" in self.helpers:
            return self._helper_call("sigmoid", self._print(x))
        negated = self._print(-x)
        zero = self._call("zeros_like", self._print(x))
        return self._call("exp", "-" + self._call("logaddexp", zero, negated))

    def _print_softplus(self, expr: sp.Expr) -> str:
        (x,) = expr.args
        arg = self._print(x)
        if "softplus" in self.helpers:
            return self._helper_call("softplus", arg)
        return self._call("logaddexp", self._call("zeros_like", arg), arg)

    def _print_erf(self, expr: sp.Expr) -> str:
        raise DeriveError(
            'the array_api target has no erf (gelu needs it); use target = "numpy"'
        )

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        if len(expr.args) != 2 or expr.args[1].cond is not sp.true:
            return super()._print_Piecewise(expr)
        (value, condition), (otherwise, _) = expr.args
        if value.is_number and otherwise.is_number:
            return super()._print_Piecewise(expr)  # a step: see NumPyCodePrinter
        arrays = [p for p in (value, otherwise) if not p.is_number]
        like = self._print(arrays[0])
        return self._call(
            "where",
            self._print(condition),
            self._as_array(value, like),
            self._as_array(otherwise, like),
        )

    def _print_Function(self, expr: Any) -> str:
        """An activation or its derivative as a call of the module's function
        (``Elementwise._numpycode`` prints it for NumPy); any other function is one
        the standard lacks, which the spec reader refuses first."""
        if isinstance(expr, Elementwise):
            return self._helper_call(expr.code_name, self._print(expr.args[0]))
        raise DeriveError(
            f"the array_api target has no function {expr.func.__name__}; "
            'use target = "numpy"'
        )
