"""Print array expressions (see :mod:`derive.passes.to_array`) as NumPy code."""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.core.mul import _keep_coeff
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from derive.passes.to_array import ArrayOp
from derive.printing.code import CodePrinterMixin


class NumPyCodePrinter(CodePrinterMixin, NumPyPrinter):
    """SymPy's ``NumPyPrinter``, plus the array operations (:mod:`derive.passes.to_array`),
    readable names and the stable forms of the functions SymPy lacks.

    Every array function is called through ``self._module`` (SymPy's own parameter
    for the array module, recorded in ``module_imports``), so a subclass for another
    array library changes the module and the few calls that differ, not the rest.
    """

    def _call(self, function: str, *arguments: str) -> str:
        """``numpy.function(arguments)``, in this printer's array module."""
        name = self._module_format(f"{self._module}.{function}")
        return f"{name}({', '.join(arguments)})"

    def _helper_call(self, function: str, *arguments: str) -> str:
        """A call of a function the generated module defines (``relu``, ``logsumexp``)."""
        return f"{function}({', '.join(arguments)})"

    def _print_Mul(self, expr: sp.Expr) -> str:
        """SymPy's product, with its factors bracketed as a product's even when it is
        negative: SymPy takes a negative product's precedence to be a sum's, and so
        would print ``-W*(d.T @ x)`` as ``-W*d.T @ x``, which Python reads as
        ``(-W*d.T) @ x``."""
        coefficient, rest = expr.as_coeff_Mul()
        binary = [
            f
            for f in sp.Mul.make_args(rest)
            if isinstance(f, ArrayOp) and precedence(f) == PRECEDENCE["Mul"]
        ]
        if coefficient >= 0 or not binary:
            return str(super()._print_Mul(expr))
        positive = _keep_coeff(-coefficient, rest)
        if isinstance(positive, sp.Mul):
            return "-" + str(super()._print_Mul(positive))
        return "-" + self.parenthesize(positive, PRECEDENCE["Mul"], strict=False)

    def _print_MatProd(self, expr: sp.Expr) -> str:
        left, right = (self._operand_of_product(a) for a in expr.args)
        return f"{left} @ {right}"

    def _operand_of_product(self, item: sp.Expr) -> str:
        """An operand of ``@``: bracketed unless it binds tighter than a product. A
        negative power prints as a quotient (``1 / sqrt(b)``), though SymPy ranks it
        a power: ``x @ 1 / sqrt(b)`` would read as ``(x @ 1) / sqrt(b)``."""
        if isinstance(item, sp.Pow) and item.exp.is_negative:
            return f"({self._print(item)})"
        return self.parenthesize(item, PRECEDENCE["Mul"], strict=False)

    def _print_Transposed(self, expr: sp.Expr) -> str:
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Atom'], strict=True)}.T"

    def _print_Outer(self, expr: sp.Expr) -> str:
        return self._call("outer", *(self._print(a) for a in expr.args))

    def _print_SumAxes(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        if not axes:
            return self._call("sum", self._print(operand))
        axis = self._print(axes[0]) if len(axes) == 1 else self._print(tuple(axes))
        return f"{self.parenthesize(operand, PRECEDENCE['Atom'], strict=True)}.sum(axis={axis})"

    def _print_Einsum(self, expr: sp.Expr) -> str:
        """Always with ``optimize=True``: bare einsum is 5-7x slower than BLAS."""
        subscripts, *operands = expr.args
        arguments = ", ".join(self._print(o) for o in operands)
        return self._call("einsum", f'"{subscripts.name}"', arguments, "optimize=True")

    def _print_TensorDot(self, expr: sp.Expr) -> str:
        left, right, left_axes, right_axes = expr.args
        axes = f"({self._print(tuple(left_axes))}, {self._print(tuple(right_axes))})"
        tensordot = self._module_format(f"{self._module}.tensordot")
        return f"{tensordot}({self._print(left)}, {self._print(right)}, axes={axes})"

    def _print_Permuted(self, expr: sp.Expr) -> str:
        operand, *order = expr.args
        text = self.parenthesize(operand, PRECEDENCE["Atom"], strict=True)
        positions = [int(p) for p in order]
        n = len(positions)
        if positions == [*range(n - 2), n - 1, n - 2]:
            return f"{text}.swapaxes(-1, -2)"
        return f"{text}.transpose({', '.join(map(str, positions))})"

    def _print_Sliced(self, expr: sp.Expr) -> str:
        operand, *key = expr.args
        items = [":" if k == -1 else self._print(k) for k in key]
        while items and items[-1] == ":":
            items.pop()
        text = self.parenthesize(operand, PRECEDENCE["Atom"], strict=True)
        return f"{text}[{', '.join(items)}]"

    def _print_UnitVector(self, expr: sp.Expr) -> str:
        size, position = expr.args
        arange = self._module_format(f"{self._module}.arange")
        return f"({arange}({self._print(size)}) == {self._print(position)})"

    def _print_BroadcastTo(self, expr: sp.Expr) -> str:
        operand, *shape = expr.args
        broadcast = self._module_format(f"{self._module}.broadcast_to")
        sizes = ", ".join(self._print(s) for s in shape)
        comma = "," if len(shape) == 1 else ""
        return f"{broadcast}({self._print(operand)}, ({sizes}{comma}))"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        """``Heaviside(x, 0)`` as ``x > 0`` in ``x``'s float type.

        ``numpy.heaviside`` is twenty times slower than a comparison (it handles NaN
        and a value at 0 in its inner loop). The comparison gives 0 for NaN, as torch's
        ReLU gradient does.
        """
        arg, *at_zero = expr.args
        value = at_zero[0] if at_zero else sp.Rational(1, 2)  # SymPy's default
        x = self._print(arg)
        if value not in (0, 1):
            return self._call("heaviside", x, self._print(sp.Float(value)))
        compare = self._call("greater" if value == 0 else "greater_equal", x, "0")
        return f"{compare}.astype({self._call('result_type', x, '0.0')})"

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._pairwise("maximum", expr.args)

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._pairwise("minimum", expr.args)

    def _pairwise(self, name: str, args: tuple[sp.Expr, ...]) -> str:
        """``numpy.maximum(a, numpy.maximum(b, c))``: elementwise, any count."""
        function = self._module_format(f"{self._module}.{name}")
        text = self._print(args[-1])
        for arg in reversed(args[:-1]):
            text = f"{function}({self._print(arg)}, {text})"
        return text

    def _print_NewAxes(self, expr: sp.Expr) -> str:
        operand, *flags = expr.args
        key = ", ".join(":" if flag else "None" for flag in flags)
        return f"{self.parenthesize(operand, PRECEDENCE['Atom'], strict=True)}[{key}]"

    def _print_LogSumExp(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        axis = self._print(axes[0]) if len(axes) == 1 else self._print(tuple(axes))
        return self._helper_call("logsumexp", self._print(operand), f"axis={axis}")

    def _print_sigmoid(self, expr: sp.Expr) -> str:
        arg = self._print(expr.args[0])
        if "sigmoid" in self.helpers:
            return self._helper_call("sigmoid", arg)
        negated = self._print(-expr.args[0])
        return self._call("exp", "-" + self._call("logaddexp", "0", negated))

    def _print_softplus(self, expr: sp.Expr) -> str:
        arg = self._print(expr.args[0])
        if "softplus" in self.helpers:
            return self._helper_call("softplus", arg)
        return self._call("logaddexp", "0", arg)

    def _print_erf(self, expr: sp.Expr) -> str:
        # _module_format records the import in module_imports, as SymPy's own do.
        erf = self._module_format("scipy.special.erf")
        return f"{erf}({self._print(expr.args[0])})"

    def _print_Abs(self, expr: sp.Expr) -> str:
        return self._call("abs", self._print(expr.args[0]))

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        """Two pieces as ``numpy.where``; a step between two numbers as a Heaviside.

        ``numpy.where(x > 0, 1.0, 0.01)`` would be float64 whatever ``x`` is, while
        ``0.01 + 0.99*numpy.heaviside(x, 0.0)`` keeps ``x``'s dtype.
        """
        if len(expr.args) != 2 or expr.args[1].cond is not sp.true:
            return super()._print_Piecewise(expr)
        (value, condition), (otherwise, _) = expr.args
        step = _as_step(value, condition, otherwise)
        if step is not None:
            return self._print(step)
        parts = (self._print(part) for part in (condition, value, otherwise))
        return self._call("where", *parts)

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_Integer(self, expr: Any) -> str:
        return str(expr)


def _as_step(value: sp.Expr, condition: Any, otherwise: sp.Expr) -> sp.Expr | None:
    """``Piecewise((a, x > 0), (b, True))`` with numbers a, b as a Heaviside step."""
    if not (value.is_number and otherwise.is_number):
        return None
    if not isinstance(condition, sp.core.relational.Relational) or condition.rhs != 0:
        return None
    arg = condition.lhs
    steps = {
        ">": (arg, 0, value, otherwise),
        ">=": (arg, 1, value, otherwise),
        "<": (-arg, 0, value, otherwise),
        "<=": (-arg, 1, value, otherwise),
    }
    if condition.rel_op not in steps:
        return None
    step_arg, at_zero, high, low = steps[condition.rel_op]
    return low + (high - low) * sp.Heaviside(step_arg, at_zero)
