"""derive: symbolic backpropagation for small networks, emitted as plain NumPy.

Data flows one way::

    spec (TOML) -> symbolic network (SymPy) -> derivation (sympy.diff, chain rule
    layer by layer) -> printers (NumPy, LaTeX) and Jinja templates -> files

From Python: :func:`build` returns a spec's generated module, loaded in memory, and
:func:`derivation` its derivation, which Jupyter renders (see :mod:`derive.api`).
"""

__version__ = "0.1.0"

# ``derivation`` the function shadows the submodule ``derive.derivation`` as an
# attribute of the package; ``from derive.derivation import ...`` still finds the
# submodule (in sys.modules).
from derive.api import build, derivation  # noqa: E402

__all__ = ["build", "derivation"]
