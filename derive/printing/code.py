"""What derive's two code printers share: readable names, float literals, term order.

:class:`~derive.printing.numpy_code.NumPyCodePrinter` (array code) and
:class:`~derive.printing.python_code.ScalarCodePrinter` (unrolled scalar code) both mix
this in front of SymPy's own printer class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE


class CodePrinterMixin:
    """Settings and printing rules common to derive's code printers.

    ``names`` maps a symbol's name to the code that stands for it where it is printed
    (``"r1" -> 'variable_dict["r1"]'``); ``helpers`` names the functions the module
    defines, which printed code may call instead of writing them out; ``like`` is the
    code of an array in scope whose dtype and device the arrays the code makes take
    (the array API standard's ``arange`` and ``full`` need them; NumPy's do not).
    """

    def __init__(
        self,
        names: Mapping[str, str] | None = None,
        helpers: Iterable[str] = (),
        like: str | None = None,
    ) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})  # type: ignore[call-arg]
        self.names = dict(names or {})
        self.helpers = frozenset(helpers)
        self.like = like

    def doprint(self, expr: Any, assign_to: Any = None) -> str:
        """Print ``expr``, with numbers such as ``sqrt(2)/2`` as float literals.

        Python floats keep an array's dtype (``numpy.sqrt(2)`` is a float64 scalar,
        which would turn float32 arrays into float64).
        """
        if isinstance(expr, sp.Basic):
            expr = as_float_literals(expr)
        return super().doprint(expr, assign_to)  # type: ignore[misc]

    def _as_ordered_terms(self, expr: sp.Expr, order: Any = None) -> list[sp.Expr]:
        """Terms in SymPy's order, but subtracted ones last: ``y_predicted - y_observed``."""
        terms = super()._as_ordered_terms(expr, order=order)  # type: ignore[misc]
        return sorted(terms, key=lambda term: term.could_extract_minus_sign())

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr.name, expr.name)

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Relational(self, expr: sp.Expr) -> str:
        """``x > 0`` (SymPy's code printers write ``numpy.greater(x, 0)``)."""
        left, right = (
            self.parenthesize(a, PRECEDENCE["Relational"] + 1, strict=False)  # type: ignore[attr-defined]
            for a in expr.args
        )
        return f"{left} {expr.rel_op} {right}"


def as_float_literals(expr: sp.Basic) -> sp.Basic:
    """``expr`` with every irrational number (``sqrt(2)``, ``pi``) as a Float."""
    return expr.replace(
        lambda e: (
            isinstance(e, sp.Expr)
            and e.is_number
            and not e.is_Rational
            and not e.is_Float
            and e.is_real is True
        ),
        lambda e: e.evalf(),
    )


class Printers:
    """Makes the printers of one module and gathers the modules their code imports.

    SymPy's printers record each module the printed code refers to in
    ``module_imports`` (``functools`` for ``functools.reduce``, ``scipy.special`` for
    ``erf``); the generated module imports exactly those.
    """

    def __init__(self, kind: Callable[..., Any]) -> None:
        self.kind = kind
        self.made: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        printer = self.kind(*args, **kwargs)
        self.made.append(printer)
        return printer

    def imports(self, besides: Iterable[str] = ()) -> tuple[str, ...]:
        """The modules the printed code uses, sorted, less ``besides``."""
        used = {module for p in self.made for module in p.module_imports}
        return tuple(sorted(used - set(besides)))
