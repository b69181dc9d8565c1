"""derive: symbolic backpropagation for small networks, emitted as plain NumPy.

Data flows one way::

    spec (TOML) -> symbolic network (SymPy) -> derivation (sympy.diff, chain rule
    layer by layer) -> printers (NumPy, LaTeX) and Jinja templates -> files

From Python: :func:`build` returns a spec's generated module, loaded in memory,
:func:`derivation` its derivation, which Jupyter renders (see :mod:`derive.api`),
and :func:`audit` checks a hand-written gradient module against a spec's
derivation, function by function (see :mod:`derive.audit`).
"""

# The one place the version is written: pyproject.toml reads it from here (hatch's
# dynamic version), and the generated files' headers print it.
__version__ = "0.1.0"

# ``derivation`` and ``audit`` the functions shadow the submodules of the same names
# as attributes of the package; ``from derive.derivation import ...`` and
# ``from derive.audit import ...`` still find the submodules (in sys.modules).
from derive.api import build, derivation  # noqa: E402
from derive.audit import audit  # noqa: E402
from derive.errors import DerivationError, DeriveError, SpecError  # noqa: E402

__all__ = [
    "DerivationError",
    "DeriveError",
    "SpecError",
    "audit",
    "build",
    "derivation",
]
