"""The names a generated module uses itself, in one list: no name from a spec takes one.

A spec's names become names in the module derive writes: an equation spec's sizes,
inputs, parameters and values are arguments and locals of ``forward``, ``gradients``
and the ``d_loss_d_*`` functions; a ``[[layers]]`` spec's custom function is a
module-level function those call. Such a name must differ from every name the
templates (``templates/*.py.j2``) put beside it: the module's own functions, constants
and imports, the arguments and locals of the functions that hold the spec's names,
and the built-in names any function of the module calls (a custom function named
``len`` would replace the built-in for the whole module).

``tests/test_reserved_names.py`` renders every committed spec with its names replaced
by marked ones and fails if a template introduces a name in a shared scope that
:data:`MODULE_NAMES` lacks.
"""

from __future__ import annotations

import builtins

#: Names the templates define or use beside a spec's names.
MODULE_NAMES = frozenset(
    {
        # The module's functions and constants (both spec forms, every target).
        "forward",
        "gradients",
        "logsumexp",
        "sigmoid",
        "AXES",
        "INPUT_SHAPE",
        "INPUT_SHAPES",
        "OUTPUT_SHAPE",
        "PARAMETER_SHAPES",
        "_NAMESPACES",
        "_SHAPES",
        "_array",
        "_check",
        "_check_value",
        "_checked",
        "_converted",
        "_inputs",
        "_leaves",
        "_namespace",
        "_number",
        "_one_library",
        "_one_library_and_dtype",
        "_parameters",
        "_shape",
        "_target",
        "_values",
        "_not_a_mapping",
        # Arguments and locals of the functions that hold a spec's names.
        "params",
        "inputs",
        "values",
        "arrays",
        "given",
        "named",
        "with_loss",
        "batch",
        "error",
        "xp",
        # Imports, and the constants a formula may name.
        "annotations",
        "numpy",
        "scipy",
        "math",
        "numbers",
        "array_namespace",
        "device",
        "is_dask_array",
        "is_numpy_array",
        "overload",
        "Any",
        "Mapping",
        "ArrayLike",
        "NDArray",
        "Parameters",
        "TypedDict",
        "pi",
        "e",
    }
)

#: Names a ``[[layers]]`` module uses besides (its values are named by derive: x, r0,
#: h0, W0, b0, ..., y_predicted), which its custom functions must not take. An equation
#: spec names its own values, so these are free there (``loss`` is required there).
LAYER_MODULE_NAMES = frozenset(
    {"mlp", "loss", "variable_dict", "x", "y", "lse", "y_predicted", "y_observed"}
)

#: Python's built-in names (``len``, ``zip``, ``sorted``, ``input``, ``sum``): the
#: module calls some of them, and shadowing one is a trap for whoever reads the code
#: (ruff's flake8-builtins rules flag it too).
BUILTIN_NAMES = frozenset(name for name in dir(builtins) if not name.startswith("_"))


def reserved(name: str) -> str:
    """Why a spec may not give ``name`` to anything, or "" when it may."""
    if name in BUILTIN_NAMES:
        return f"{name!r} is reserved: a Python built-in name (the module calls some)"
    if name in MODULE_NAMES:
        return f"{name!r} is reserved: the generated module uses the name itself"
    if name.startswith("d_loss_d_"):
        return f"{name!r} is reserved: d_loss_d_NAME is the gradient of NAME"
    if name.endswith("_derivative"):
        return f"{name!r} is reserved: NAME_derivative is the derivative of NAME"
    return ""
