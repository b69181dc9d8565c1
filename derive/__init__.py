"""derive: symbolic backpropagation for small networks, emitted as plain NumPy.

Data flows one way::

    spec (TOML) -> symbolic network (SymPy) -> derivation (sympy.diff, chain rule
    layer by layer) -> printers (NumPy, LaTeX) and Jinja templates -> files
"""

__version__ = "0.1.0"
