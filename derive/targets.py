"""The array libraries a generated module can be written for: one table, :data:`TARGETS`.

A spec's ``target`` picks a row. Each row names its code printer (a subclass of
:class:`~derive.printing.numpy_code.NumPyCodePrinter` with its own array module), the
imports the module starts with, how a function finds its array namespace, the few
argument-check expressions that its library spells differently, the styles it
supports and the functions it cannot express. The derivation and the documents'
mathematics are the same for every target; only the printed code differs.

- ``numpy`` (the default): plain NumPy, ``import numpy``.
- ``array_api``: the Python array API standard (2023.12), through
  ``xp = array_namespace(...)`` from ``array-api-compat``: one module runs on NumPy,
  torch, JAX, CuPy, Dask and array-api-strict arrays, and returns arrays of the
  library and device it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from derive.printing.array_api_code import ArrayAPICodePrinter
from derive.printing.numpy_code import NumPyCodePrinter


@dataclass(frozen=True)
class Target:
    """One array library: its printer, imports and the code lines that differ."""

    name: str
    printer: type[NumPyCodePrinter]
    #: The import lines the module begins with (scipy.special comes apart, for erf).
    imports: tuple[str, ...]
    #: The import lines instead, when the module turns class labels into one-hot rows.
    imports_with_labels: tuple[str, ...]
    typing_imports: tuple[str, ...]
    #: Annotations of array arguments and of returned arrays.
    array_like: str
    array: str
    #: The namespace line, ``{arguments}`` its arrays; empty when the module is fixed.
    namespace: str = ""
    #: What a function that may be handed the namespace adds to its parameters, and
    #: what a call of it adds to pass the namespace on.
    namespace_parameter: str = ""
    namespace_argument: str = ""
    #: Argument checks: an array's value as an array, whether it holds integers,
    #: whether labels fall outside ``range(classes)``, and one-hot rows of ``dtype``.
    as_array: str = "numpy.asarray({0})"
    is_integer: str = "numpy.issubdtype({0}.dtype, numpy.integer)"
    labels_outside: str = "{0}.size and ({0}.min() < 0 or {0}.max() >= {1})"
    float_type: str = "numpy.result_type(numpy.asarray({0}).dtype, numpy.float32)"
    one_hot: str = "numpy.eye({1}, dtype={2})[{0}]"
    #: A paragraph for the module's docstring: what arrays it takes.
    summary: str = ""
    styles: tuple[str, ...] = ("vectorized", "unrolled")
    #: SymPy functions the target cannot print, and why.
    refuses: dict[type[sp.Function], str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The name the code calls array functions through: ``numpy`` or ``xp``."""
        return self.printer._module

    def namespace_line(self, arguments: str, given: bool = False) -> str:
        """``xp = array_namespace(arguments)`` (or nothing, for a fixed module);
        ``given``: only when the caller did not pass ``xp``."""
        if not self.namespace:
            return ""
        line = self.namespace.format(arguments=arguments)
        return f"{line} if xp is None else xp" if given else line


TARGETS: dict[str, Target] = {
    "numpy": Target(
        name="numpy",
        printer=NumPyCodePrinter,
        imports=("import numpy",),
        imports_with_labels=("import numpy",),
        typing_imports=("from numpy.typing import ArrayLike, NDArray",),
        array_like="ArrayLike",
        array="NDArray[Any]",
    ),
    "array_api": Target(
        name="array_api",
        printer=ArrayAPICodePrinter,
        imports=("from array_api_compat import array_namespace",),
        imports_with_labels=("from array_api_compat import array_namespace, device",),
        typing_imports=(),
        array_like="Any",
        array="Any",
        namespace="xp = array_namespace({arguments})",
        namespace_parameter=", *, xp: Any = None",
        namespace_argument=", xp=xp",
        as_array="{0}",
        is_integer='xp.isdtype({0}.dtype, "integral")',
        labels_outside="{0}.size and (xp.min({0}) < 0 or xp.max({0}) >= {1})",
        float_type="xp.result_type({0}.dtype, xp.float32)",
        one_hot=(
            "xp.astype(xp.expand_dims({0}, axis=-1)"
            " == xp.arange({1}, device=device({0})), {2})"
        ),
        summary=(
            "Written for the Python array API standard (2023.12): every function takes "
            "arrays of one library (NumPy, torch, JAX, CuPy, Dask, ...), finds its "
            "namespace with ``array_api_compat.array_namespace(x, y)`` and returns "
            "arrays of that library, on the same device. Parameters may be NumPy arrays "
            "when the data are Dask arrays. Functions that take ``xp`` use that "
            "namespace instead of looking it up again."
        ),
        styles=("vectorized",),
        refuses={sp.erf: "the array API standard (2023.12) has no erf"},
    ),
}
DEFAULT_TARGET = "numpy"
