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

import sys
from dataclasses import dataclass, field

import sympy as sp

from derive.printing.array_api_code import ArrayAPICodePrinter
from derive.printing.numpy_code import NumPyCodePrinter

#: Modules a generated module may import besides the standard library's (numpy,
#: scipy.special for erf, array_api_compat for the array_api target). A spec's name
#: becomes a module's name next to other generated modules, so it must not shadow
#: any of these or the standard library's (tests check that every import in
#: generated code is among them).
RUNTIME_MODULES = frozenset({"numpy", "scipy", "array_api_compat"})
SHADOWED_MODULES = RUNTIME_MODULES | sys.stdlib_module_names


def shadowing(name: str) -> str:
    """Why ``name`` cannot name a network, or "" when it can."""
    if name not in SHADOWED_MODULES:
        return ""
    return (
        f"got {name!r}, the name of a module generated code imports or of the "
        "standard library; NAME.py would shadow it, so choose another name"
    )


#: The numpy target's checks: what ``numpy.asarray`` cannot read, named. A torch
#: tensor that requires grad raises torch's ``RuntimeError`` ("Can't call numpy() on
#: Tensor that requires grad"), one on a GPU a ``TypeError``, neither naming the
#: argument; the module's own backward pass needs no autograd, so ``.detach()`` loses
#: nothing, and the array_api target computes on the tensors themselves. Only the
#: slow path gets here: a float64 NumPy array never reaches ``asarray``.
_UNREADABLE = (
    "except (RuntimeError, TypeError) as error:  # a torch tensor, say\n"
    '    if getattr({value}, "requires_grad", False) is True:\n'
    "        raise TypeError(\n"
    '            f"{{name}} is a {{type({value}).__name__}} that requires grad, which "\n'
    '            "NumPy cannot read; pass it through .detach() (this module computes "\n'
    '            "the gradients itself, without autograd), or derive the spec with "\n'
    "            'target = \"array_api\" to compute on the tensors directly'\n"
    "        ) from None\n"
    "    raise TypeError(\n"
    '        f"{{name}} is a {{type({value}).__name__}} that NumPy cannot read as an "\n'
    '        f"array ({{error}}); pass a NumPy array or nested lists of numbers"\n'
    "    ) from None"
)


@dataclass(frozen=True)
class Target:
    """One array library: its printer, imports and the code lines that differ."""

    name: str
    printer: type[NumPyCodePrinter]
    #: The import lines the module begins with (scipy.special comes apart, for erf).
    imports: tuple[str, ...]
    #: The import lines instead, when the module turns class labels into one-hot rows
    #: (or makes arrays on a device). A vectorized module (either spec form: both
    #: print templates/one_library.py.j2's check) also imports ``check_imports``, from
    #: its last line's module.
    imports_with_labels: tuple[str, ...]
    typing_imports: tuple[str, ...]
    #: Annotations of array arguments and of returned arrays.
    array_like: str
    array: str
    check_imports: tuple[str, ...] = ()
    #: The namespace line, ``{arguments}`` its arrays; empty when the module is fixed.
    namespace: str = ""
    #: What a function that may be handed the namespace adds to its parameters, and
    #: what a call of it adds to pass the namespace on.
    namespace_parameter: str = ""
    namespace_argument: str = ""
    #: What the argument checks (templates/checks.py.j2) do with what is not a float
    #: array, said in the module's docstring.
    conversions: str = (
        "lists and integers become float64 arrays; a torch tensor that requires grad "
        "raises ``TypeError`` (pass ``tensor.detach()``, or derive with ``target = "
        '"array_api"``)'
    )
    #: The checks' fast path: statements before it (in its ``try``), a condition
    #: first in it, the type every array must have, and its dtype test
    #: (``array{dtype_of} == {float_dtype}``).
    fast_path_setup: tuple[str, ...] = ()
    fast_path_condition: str = ""
    array_type: str = "numpy.ndarray"
    dtype_of: str = ".dtype.kind"
    float_dtype: str = '"f"'
    #: The fast path's test of an argument ``{0}`` where the problem set's shapes
    #: have a number: a Python float for NumPy; a 0-d array for the array API,
    #: which has no Python scalars.
    number: str = "type({0}) is float"
    #: Statements that make ``array`` from an argument ``{value}`` named ``name``
    #: (``array_from`` raises for what is not an array of ``shape``; ``labels_from``
    #: for the labels of ``_target``).
    array_from: str = (
        "try:\n"
        "    array = numpy.asarray({value})\n"
        "except ValueError as error:  # nested lists of different lengths\n"
        '    raise ValueError(f"{{name}} is not an array of shape {{shape}} ({{error}})")'
        " from None\n" + _UNREADABLE
    )
    labels_from: str = "try:\n    array = numpy.asarray({value})\n" + _UNREADABLE
    #: Checks of an array ``{0}``: its samples, whether its dtype is integral or
    #: boolean, integral, not floating; its smallest and largest element.
    batch_size: str = "len({0})"
    is_integral: str = '{0}.dtype.kind in "biu"'
    not_integer: str = '{0}.dtype.kind not in "iu"'
    not_float: str = '{0}.dtype.kind != "f"'
    minimum: str = "{0}.min()"
    maximum: str = "{0}.max()"
    #: ``{0}`` as a float64 array; a value as an array (a scalar's gradient).
    as_float64: str = "{0}.astype(numpy.float64)"
    as_array: str = "numpy.asarray({0})"
    #: Whether labels ``{0}`` fall outside ``range({1})``; the float type of one-hot
    #: rows for predictions ``{0}``; one-hot rows of labels ``{0}`` in ``{2}``.
    #: (NumPy promotes a float16 array with float32 rows; torch's matmul does not.)
    labels_outside: str = "{0}.size and ({0}.min() < 0 or {0}.max() >= {1})"
    float_type: str = "numpy.result_type({0}.dtype, numpy.float32)"
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


#: The array_api checks' first statements: the argument's namespace, or a
#: ``TypeError`` for what has none (a list or a number cannot say its library).
_NAMESPACE_OF = (
    "try:\n"
    "    xp = array_namespace({value})\n"
    "except TypeError:\n"
    "    raise TypeError(\n"
    '        f"{{name}} is a {{type({value}).__name__}}, not an array; expected an "\n'
    '        "array of the array API standard (NumPy, torch, JAX, CuPy, Dask, ...)"\n'
    "    ) from None\n"
    "array = {value}"
)

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
        # The checks tell NumPy parameters with Dask data (which pass) from arrays
        # of two libraries.
        check_imports=("is_dask_array", "is_numpy_array"),
        array_like="Any",
        array="Any",
        namespace="xp = _namespace({arguments})",
        namespace_parameter=", *, xp: Any = None",
        namespace_argument=", xp=xp",
        conversions=(
            "integer and boolean arrays become float64 arrays; what is not an array of "
            "the standard (a list, a number where an array is expected) raises "
            "``TypeError``, since the namespace comes from the arrays"
        ),
        # Parameters of x's type and dtype, a real floating one, pass at once.
        fast_path_setup=("xp = _namespace(x)", "kind, dtype = type(x), x.dtype"),
        fast_path_condition='xp.isdtype(dtype, "real floating")',
        array_type="kind",
        dtype_of=".dtype",
        float_dtype="dtype",
        number="type({0}) is kind and {0}.shape == () and {0}.dtype == dtype",
        array_from=_NAMESPACE_OF,
        labels_from=_NAMESPACE_OF,
        batch_size="{0}.shape[0]",
        is_integral='xp.isdtype({0}.dtype, ("bool", "integral"))',
        not_integer='not xp.isdtype({0}.dtype, "integral")',
        not_float='not xp.isdtype({0}.dtype, "real floating")',
        minimum="int(xp.min({0}))",
        maximum="int(xp.max({0}))",
        as_float64="xp.astype({0}, xp.float64)",
        as_array="{0}",
        labels_outside="{0}.size and (xp.min({0}) < 0 or xp.max({0}) >= {1})",
        # The predictions' own float type: torch computes float16 and bfloat16
        # logits, and its matmul refuses rows of another dtype.
        float_type=(
            '{0}.dtype if xp.isdtype({0}.dtype, "real floating") else xp.float64'
        ),
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
            "namespace instead of looking it up again. Torch tensors that require grad "
            "are computed on with torch's operations: the results stay in its graph "
            "and can be differentiated again."
        ),
        styles=("vectorized",),
        refuses={sp.erf: "the array API standard (2023.12) has no erf"},
    ),
}
DEFAULT_TARGET = "numpy"
