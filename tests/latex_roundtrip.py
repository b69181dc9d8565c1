"""Read a derivation document's LaTeX back into SymPy and evaluate it.

SymPy's LaTeX parser (``parse_latex``'s lark backend, :class:`LarkLaTeXParser`) reads
the printed text, with derive's notation added through the parser's documented hooks:
a grammar file (SymPy's grammar followed by ``derive_latex.lark``) and a transformer
(:class:`DeriveTransformer`). Names are looked up in the document's own table (math,
code): ``W^{(1)}_{i j}`` becomes ``W1[i, j]``, ``\\frac{\\partial L}{\\partial
r^{(1)}_{m}}`` the gradient ``d_loss_d_r1[m]``, ``\\frac{\\partial \\hat{y}_{a m}}
{\\partial h^{(0)}_{b i}}`` the derivative of ``y_predicted[a, m]``'s definition,
``\\sum_{m}`` a sum over the axis ``m`` indexes, ``\\odot`` an elementwise product,
juxtaposed arrays a matrix product and ``^{\\top}`` a transpose.

Equation specs' documents name values as their tables do (``{W_{0}}_{m n}``,
``\\mathrm{scores}_{b i j}``, sizes such as ``d_{k}``): their reader adds
``derive_equations.lark`` and :class:`EquationTransformer`, and reads the matrix form's
``\\operatorname{tensordot}``, permuted transposes ``^{\\top(0,2,1)}`` and slices
``_{[:,0]}`` (a ``[[layers]]`` document has none of them).

Every equation ``left = right = ...`` is then checked numerically: each side is
evaluated at a random point of a small copy of the network (sizes stay symbolic in
the documents, so the equations hold at any size) and compared with what the left
side names there, computed by :class:`derive.evaluate.Evaluator` from the expressions
the document was printed from. An ambiguous reading is an error unless every reading
has the same value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from lark import Tree
from scipy.special import expit, logsumexp
from sympy.parsing.latex.lark import LarkLaTeXParser
from sympy.parsing.latex.lark.transformer import TransformToSymPyExpr

from derive.activations import X, expand_activations
from derive.derivation import Derivation, derive
from derive.document import latex_printer
from derive.equations import EquationSpec
from derive.evaluate import Evaluator
from derive.functions import PRIMITIVES
from derive.graph import N_BATCH, Graph
from derive.losses import Y_OBSERVED, Y_PREDICTED, element_derivative
from derive.network import INPUT_UNIT, Array, Network, build
from derive.passes.to_array import (
    LogSumExp,
    MatProd,
    NewAxes,
    Permuted,
    Sliced,
    SumAxes,
    TensorDot,
    Transposed,
)
from derive.passes.unroll import elements
from derive.spec import NetworkSpec

Spec = NetworkSpec | EquationSpec

GRAMMAR = Path(__file__).with_name("derive_latex.lark")
EQUATION_GRAMMAR = Path(__file__).with_name("derive_equations.lark")
SYMPY_GRAMMAR = (
    Path(sp.__file__).parent / "parsing" / "latex" / "lark" / "grammar" / "latex.lark"
)

_NAME = re.compile(r"^(?P<name>.*?)(_\{(?P<indices>[a-z](\s+[a-z])*)\})?$")


class NotationError(ValueError):
    """The text uses a name or a construct the document does not define."""


@dataclass
class Notation:
    """What the names of one document mean: the network, read from its table."""

    network: Graph  # a Network for a [[layers]] spec's document
    derivation: Derivation
    names: dict[str, str]  # LaTeX name -> code name, from the document's table
    mode: str = "index"  # "index", "array" (matrix form) or "scalar" (x, y-hat, y)
    functions: dict[str, type[sp.Function]] = field(default_factory=dict)
    #: The last local derivative read, (numerator, target): its indices and sizes.
    last_local: tuple[sp.Expr, sp.Expr] | None = None

    def __post_init__(self) -> None:
        self.gradients = {g.target.name: g for g in self.derivation.gradients}
        if isinstance(self.network, Network):
            # The table names the target as the code's argument does, y.
            self.names = {
                m: "y_observed" if c == "y" else c for m, c in self.names.items()
            }
            self.sizes = {
                "n_{" + _size_text(s.name) + "}": s
                for s in (*self.network.widths, *_batch(self.network))
            }
        else:  # an equation spec's sizes, as its document's printer writes them
            printer = latex_printer(self.derivation)
            self.sizes = {
                printer.doprint(s): s for s in (*self.network.widths, N_BATCH)
            }
        for function in self.network.functions.values():
            self.functions[function.latex_name] = function
            self.functions[function.derivative.latex_name] = function.derivative
        for primitive in PRIMITIVES.values():
            self.functions.setdefault(primitive.latex_name, primitive)

    def array(self, code: str) -> Array:
        if code.startswith("d_loss_d_"):
            for gradient in self.derivation.gradients:
                if gradient.name == code:
                    return gradient.array
        return self.network.array(code)


def _size_text(name: str) -> str:
    return {"n_batch": r"\text{batch}", "n_in": r"\text{in}"}.get(name, name[1:])


def _batch(network: Network) -> tuple[sp.Symbol, ...]:
    return tuple(s for a in network.values for s in a.sizes if s.name == "n_batch")[:1]


def _index(letter: str) -> sp.Expr:
    """An index as printed: a letter, or a number (a kept axis's 0)."""
    return sp.Integer(letter) if letter.isdigit() else sp.Symbol(letter, integer=True)


class DeriveTransformer(TransformToSymPyExpr):
    """SymPy's transformer, with a method for each rule of ``derive_latex.lark``."""

    notation: Notation

    # -- names ---------------------------------------------------------------------
    def DERIVE_NAME(self, token: Any) -> sp.Expr:  # noqa: N802 (lark's naming)
        match = _NAME.match(str(token))
        assert match is not None
        name, indices = match["name"], match["indices"]
        if name == "e" and "e" not in self.notation.names:
            return sp.E
        if name == "L" and indices is None:
            return sp.Symbol("L")
        code = self._code(name)
        return self._element(code, indices.split() if indices else [])

    def _code(self, name: str) -> str:
        if name not in self.notation.names:
            raise NotationError(f"the document does not define {name!r}")
        return self.notation.names[name]

    def _element(self, code: str, letters: list[str]) -> sp.Expr:
        if self.notation.mode == "scalar":
            scalars = {"x": X, "y_predicted": Y_PREDICTED, "y_observed": Y_OBSERVED}
            if letters or code not in scalars:
                raise NotationError(f"{code} in a scalar formula")
            return scalars[code]
        if self.notation.mode == "array" or not letters:
            return sp.Symbol(code, real=True)
        array = self.notation.array(code)
        if len(letters) != len(array.indices):
            raise NotationError(f"{code} takes {len(array.indices)} indices: {letters}")
        return array.base[tuple(_index(c) for c in letters)]

    def size(self, tokens: list) -> sp.Expr:
        text = str(tokens[0])
        if text not in self.notation.sizes:
            raise NotationError(f"unknown size {text}")
        return self.notation.sizes[text]

    def constant_pi(self, tokens: list) -> sp.Expr:
        return sp.pi

    def kronecker(self, tokens: list) -> sp.Expr:
        i, j = re.findall(r"[a-z0-9]", str(tokens[0])[len(r"\delta") :])
        return sp.KroneckerDelta(_index(i), _index(j))

    # -- derivatives ---------------------------------------------------------------
    def gradient(self, tokens: list) -> sp.Expr:
        numerator, target = tokens[3], tokens[7]
        if isinstance(numerator, sp.Symbol) and numerator.name == "L":
            return self._gradient(target)
        if str(numerator) == r"\ell":
            if target != Y_PREDICTED:
                raise NotationError(r"\partial \ell is taken with respect to \hat{y}")
            return sp.Symbol("dl_dy_predicted")
        return self._local(numerator, target)

    def _gradient(self, target: sp.Expr) -> sp.Expr:
        if isinstance(target, sp.Indexed):
            name, indices = str(target.base.label), tuple(target.indices)
        else:
            name, indices = target.name, ()
        if name not in self.notation.gradients:
            raise NotationError(f"no gradient with respect to {name}")
        code = self.notation.gradients[name].name
        return self._element(code, [str(i) for i in indices])

    def _local(self, numerator: sp.Expr, target: sp.Expr) -> sp.Expr:
        """``d numerator / d target``: the derivative of the numerator's definition."""
        if not isinstance(numerator, sp.Indexed | sp.Symbol):
            raise NotationError(f"cannot differentiate {numerator}")
        name = (
            str(numerator.base.label)
            if isinstance(numerator, sp.Indexed)
            else numerator.name
        )
        user = self.notation.array(name)
        self.notation.last_local = (numerator, target)
        if numerator == target or (
            isinstance(numerator, sp.Indexed) and _bases(numerator) == _bases(target)
        ):
            return sp.diff(numerator, target)  # an array by itself: 1, or a delta
        if user.definition is None:
            raise NotationError(f"{name} has no definition to differentiate")
        fresh = sp.Symbol("k_", integer=True)  # not one of the printed indices
        # [[layers]] sum over k; an equation spec's value may have k as its own index.
        bound = {} if INPUT_UNIT in user.indices else {INPUT_UNIT: fresh}
        definition = _bound_renamed(user.definition.xreplace(bound))
        if isinstance(numerator, sp.Indexed):
            definition = definition.xreplace(
                dict(zip(user.indices, numerator.indices, strict=True))
            )
        return sp.diff(definition, target)

    def local_derivative(self, tokens: list) -> Any:
        return ("d/d", tokens[6])

    def applied_derivative(self, tokens: list) -> sp.Expr:
        """``\\frac{\\partial}{\\partial t} (operand)``, with every element real
        while SymPy differentiates (``|d|`` has no derivative for complex ``d``)."""
        (_, target), operand = tokens
        bases = {b for b in (operand, target) for b in _bases(b)}
        real = {b: sp.IndexedBase(b.label, shape=b.shape, real=True) for b in bases}
        back = {r: b for b, r in real.items()}
        derivative = sp.diff(operand.xreplace(real), target.xreplace(real))
        return derivative.xreplace(back)

    # -- sums, functions, cases ----------------------------------------------------
    def index_sum(self, tokens: list) -> sp.Expr:
        letters = str(tokens[0])[len(r"\sum_{") : -1].split(",")
        body = -tokens[2] if len(tokens) == 3 else tokens[1]
        limits = [(_index(c), 0, self._size_of(_index(c), body) - 1) for c in letters]
        return sp.Sum(body, *limits)

    def _size_of(self, index: sp.Symbol, body: sp.Expr) -> sp.Expr:
        for element in body.atoms(sp.Indexed):
            if index in element.indices:
                array = self.notation.array(str(element.base.label))
                return array.sizes[list(element.indices).index(index)]
        # Only Kronecker deltas use it (a mean's derivative, \sum_{j} \delta_{i j}):
        # its size is that of the index it is paired with, see resolve_sizes.
        if any(index in d.args for d in body.atoms(sp.KroneckerDelta)):
            return _unknown_size(index)
        raise NotationError(f"the sum's index {index} indexes no array")

    def activation(self, tokens: list) -> sp.Expr:
        name = str(tokens[0])
        if name not in self.notation.functions:
            raise NotationError(f"unknown function {name}")
        function = self.notation.functions[name]
        if len(tokens) == 2:
            return function(tokens[1])
        return function(tokens[3]) ** tokens[2]

    def function_heaviside(self, tokens: list) -> sp.Expr:
        return sp.Heaviside(tokens[2], 0)

    def function_applied(self, tokens: list) -> sp.Expr:  # only H(...), see grammar
        return sp.Heaviside(tokens[2], 0)

    def sympy_function(self, tokens: list) -> sp.Expr:
        return _SYMPY_FUNCTIONS[str(tokens[0])](tokens[1])

    def function_power(self, tokens: list) -> sp.Expr:
        functions = {
            "FUNC_TANH": sp.tanh,
            "FUNC_SINH": sp.sinh,
            "FUNC_COSH": sp.cosh,
            "FUNC_LOG": sp.log,
        }
        function = functions.get(tokens[0].type) or _SYMPY_FUNCTIONS[str(tokens[0])]
        return function(tokens[3]) ** tokens[2]

    def ell(self, tokens: list) -> sp.Expr:
        if (tokens[2], tokens[4]) != (Y_PREDICTED, Y_OBSERVED):
            raise NotationError(r"\ell is written \ell(\hat{y}, y)")
        return sp.Symbol("l_element")

    def case_row(self, tokens: list) -> tuple[sp.Expr, Any]:
        condition = tokens[3] if len(tokens) == 4 else sp.true
        return (tokens[0], condition)

    def cases(self, tokens: list) -> sp.Expr:
        rows = [t for t in tokens if isinstance(t, tuple)]
        return sp.Piecewise(*rows)

    # -- array form ----------------------------------------------------------------
    def elementwise(self, tokens: list) -> sp.Expr:
        return sp.Mul(tokens[0], tokens[2])

    def transposed(self, tokens: list) -> sp.Expr:
        return Transposed(tokens[1] if len(tokens) == 4 else tokens[0])

    def array_op(self, tokens: list) -> sp.Expr:
        if str(tokens[0]) == r"\operatorname{logsumexp}":
            return LogSumExp(tokens[-1], sp.Integer(tokens[3]))
        if str(tokens[0]).startswith(r"\operatorname{einsum}"):
            raise NotationError("einsum is not read back yet")
        axes = [sp.Integer(t) for t in tokens[3:-2] if str(t).isdigit()]
        return SumAxes(tokens[-1], *axes)

    def tensordot(self, tokens: list) -> sp.Expr:
        over = str(tokens[0]).split("_{", 1)[1][:-1]
        left_axes, right_axes = (
            sp.Tuple(*(sp.Integer(a) for a in side.split(",")))
            for side in over.split(";")
        )
        return TensorDot(tokens[2], tokens[4], left_axes, right_axes)

    def permuted(self, tokens: list) -> sp.Expr:
        order = re.findall(r"\d+", str(tokens[1]))
        return Permuted(tokens[0], *(sp.Integer(o) for o in order))

    def sliced(self, tokens: list) -> sp.Expr:
        key = str(tokens[1])[len("_{[") : -len("]}")].split(",")
        if r"\mathrm{None}" in key:
            if not set(key) <= {":", r"\mathrm{None}"}:
                raise NotationError(f"a new axis and an integer index in {tokens[1]}")
            return NewAxes(tokens[0], *(sp.Integer(k == ":") for k in key))
        return Sliced(tokens[0], *(sp.Integer(-1 if k == ":" else k) for k in key))

    def adjacent_expressions(self, tokens: list) -> Any:
        left, right = tokens
        if (
            self.notation.mode == "array"
            and self._is_array(left)
            and self._is_array(right)
        ):
            return MatProd(left, right)
        return super().adjacent_expressions(tokens)

    def _is_array(self, expr: Any) -> bool:
        """Whether a matrix-form expression is an array: it has a name with axes (not
        a size, not a scalar) and it is not a sum over every axis."""
        if not isinstance(expr, sp.Basic):
            return False
        if isinstance(expr, SumAxes) and len(expr.args) == 1:
            return False
        # An element picked by integers on every axis, {v}_{[0]}, is a number.
        expr = expr.replace(
            lambda e: isinstance(e, Sliced) and all(k != -1 for k in e.args[1:]),
            lambda e: sp.Symbol("element_", real=True),
        )
        return any(
            not s.is_integer
            and s.name != "element_"
            and self.notation.array(s.name).indices
            for s in expr.free_symbols
        )

    def _ambig(self, options: list) -> Any:
        """Several readings: fine when they are one expression, else an error."""
        first, *others = options
        for other in others:
            if other != first and sp.simplify(other - first) != 0:
                raise NotationError(f"ambiguous: {first} or {other}")
        return first


def _unknown_size(index: sp.Symbol) -> sp.Symbol:
    return sp.Symbol(f"size_of_{index}", integer=True, positive=True)


def resolve_sizes(expr: sp.Expr, sizes: dict[sp.Expr, sp.Expr]) -> sp.Expr:
    """``expr`` with the size of every sum over an index that only Kronecker deltas
    use taken from the delta's other index, one of ``sizes`` (the free indices),
    within that sum (two sums may reuse one index name)."""

    def unresolved(e: sp.Basic) -> bool:
        return isinstance(e, sp.Sum) and any(
            s.name.startswith("size_of_") for s in e.free_symbols
        )

    def resolved(e: sp.Sum) -> sp.Expr:
        known = {}
        for index, _, upper in e.limits:
            size = _unknown_size(index)
            if size not in upper.free_symbols:
                continue
            partners = {
                other
                for delta in e.function.atoms(sp.KroneckerDelta)
                if index in delta.args
                for other in delta.args
                if other != index and other in sizes
            }
            if len(partners) != 1:
                raise NotationError(f"no size for the sum over {index}")
            known[size] = sizes[partners.pop()]
        return e.xreplace(known)

    return expr.replace(unresolved, resolved)


def _bound_renamed(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every sum's index renamed ``m'`` (no printed index is), so that
    a printed index that replaces a free one is never captured by a sum of the
    definition; the same name each time, so that two readings of a text compare."""
    return expr.replace(
        lambda e: isinstance(e, sp.Sum),
        lambda e: e.xreplace(
            {
                limit[0]: sp.Symbol(f"{limit[0].name}'", integer=True)
                for limit in e.limits
            }
        ),
    )


def _bases(expr: sp.Expr) -> set[sp.IndexedBase]:
    return {e.base for e in sp.preorder_traversal(expr) if isinstance(e, sp.Indexed)}


_SYMPY_FUNCTIONS = {
    r"\operatorname{erf}": sp.erf,
    r"\operatorname{atan}": sp.atan,
    r"\operatorname{sign}": sp.sign,
}


_ELEMENT = re.compile(
    r"^(\{(?P<braced>.+)\}|(?P<plain>.+?))_\{(?P<indices>[a-z0-9](\s+[a-z0-9])*)\}$"
)


class EquationTransformer(DeriveTransformer):
    """The transformer for equation specs' documents, whose names are any of the
    table's (``derive_equations.lark``): a name is looked up whole first, then as an
    element, ``{W_{0}}_{m n}`` or ``x_{b i}``; a size by the printed text."""

    def DERIVE_NAME(self, token: Any) -> sp.Expr:  # noqa: N802 (lark's naming)
        text = str(token)
        if text in self.notation.sizes:
            return self.notation.sizes[text]
        if text in self.notation.names:
            return self._element(self.notation.names[text], [])
        if text == "e":
            return sp.E
        if text == "L":
            return sp.Symbol("L")
        match = _ELEMENT.match(text)
        if match is None:
            raise NotationError(f"the document does not define {text!r}")
        name = match["braced"] or match["plain"]
        return self._element(self._code(name), match["indices"].split())


class Reader:
    """``parse_latex``'s lark backend with derive's grammar and transformer; with
    ``equations``, the names of equation specs' documents instead of [[layers]]'."""

    def __init__(self, tmp: Path, equations: bool = False) -> None:
        grammar = tmp / f"derive_latex{'_equations' * equations}.lark"
        parts = [SYMPY_GRAMMAR, GRAMMAR, *([EQUATION_GRAMMAR] * equations)]
        grammar.write_text("\n".join(p.read_text() for p in parts))
        self.parser = LarkLaTeXParser(
            grammar_file=str(grammar),
            transformer=EquationTransformer if equations else DeriveTransformer,
        )

        # A .tex and its .md print the same equations: read each once per notation.
        self.cache: dict[tuple, tuple[Any, Any]] = {}
        # ... and evaluates them at one point per network (see check_document).
        self.checkers: dict[tuple, Checker] = {}

    def parse(self, text: str, notation: Notation) -> Any:
        key = (
            repr(notation.network.spec),
            tuple(sorted(notation.names.items())),
            notation.mode,
            text,
        )
        if key not in self.cache:
            notation.last_local = None
            self.parser.transformer.notation = notation
            result = self.parser.doparse(text)
            if isinstance(result, Tree):
                raise NotationError(f"not read: {result}")
            self.cache[key] = (result, notation.last_local)
        result, notation.last_local = self.cache[key]
        return result


# -- the document's equations ---------------------------------------------------------


@dataclass(frozen=True)
class Equation:
    section: str  # "network", "activations", "backward", "matrix", "worked", "sizes"
    sides: tuple[str, ...]  # left, right, ... as printed


def equations(path: Path) -> tuple[list[tuple[str, str]], list[Equation]]:
    """The names table (math, code) and every displayed equation of a document."""
    text = path.read_text()
    if path.suffix == ".tex":
        table = re.findall(r"^\$(.+?)\$ & \\texttt\{(.+?)\} &", text, re.M)
        table = [(m, c.replace(r"\_", "_")) for m, c in table]
        blocks = re.finditer(
            r"\\(section|subsection\*?)\{(.*?)\}|\\begin\{align\*\}(.*?)\\end\{align\*\}"
            r"|\\\[(.*?)\\\]|Sizes: (.*?)\.\n",
            text,
            re.S,
        )
    else:
        table = re.findall(r"^\| \$(.+?)\$ \| `(.+?)` \|", text, re.M)
        blocks = re.finditer(
            r"^(##+) (.*?)$|\$\$\n\\begin\{aligned\}(.*?)\\end\{aligned\}\n\$\$"
            r"|\$\$\n(.*?)\n\$\$|^Sizes: (.*?)\.$",
            text,
            re.S | re.M,
        )
    found: list[Equation] = []
    section = ""
    for block in blocks:
        heading, title, aligned, single, sizes = block.groups()
        if heading is not None:
            section = _section(title, section)
        elif sizes is not None:
            for inline in re.findall(r"\$(.*?)\$", sizes):
                found.append(Equation("sizes", tuple(inline.split(" = "))))
        elif aligned is not None:
            found.extend(Equation(section, sides) for sides in _rows(aligned))
        else:
            assert single is not None
            found.append(Equation("matrix", tuple(single.strip().split(" = ", 1))))
    return table, found


def _section(title: str, previous: str) -> str:
    for word, section in (
        ("network", "network"),
        ("The equations", "network"),  # an equation spec's forward equations
        ("Activations", "activations"),
        ("Backward", "backward"),
        ("worked", "worked"),
    ):
        if word in title:
            return section
    return previous  # a gradient's subsection


def _rows(body: str) -> Iterator[tuple[str, ...]]:
    """``left &= a \\\\ &= b`` as (left, a, b); a row that starts ``&\\qquad``
    continues the expression above it, and a row's own ``= c`` adds a side."""
    sides: list[str] = []
    for row in _split_rows(body):
        left, _, right = row.partition("&")
        right = right.strip()
        if right.startswith(r"\qquad"):
            sides[-1] += " " + right[len(r"\qquad") :]
            continue
        if left.strip():
            if sides:
                yield tuple(sides)
            sides = [left.strip()]
        assert right.startswith("="), row
        sides.extend(s.strip() for s in _split_top(right[1:], " = "))
    if sides:
        yield tuple(sides)


def _split_rows(body: str) -> list[str]:
    """Rows of an aligned block: split at ``\\\\`` outside any environment."""
    rows, depth, start = [], 0, 0
    for match in re.finditer(r"\\begin\{|\\end\{|\\\\", body):
        token = match.group()
        if token == r"\begin{":
            depth += 1
        elif token == r"\end{":
            depth -= 1
        elif depth == 0:
            rows.append(body[start : match.start()])
            start = match.end()
    rows.append(body[start:])
    return [r for r in rows if r.strip()]


def _split_top(text: str, separator: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for k, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and text.startswith(separator, k):
            parts.append(text[start:k])
            start = k + len(separator)
    parts.append(text[start:])
    return parts


# -- numbers ---------------------------------------------------------------------------


def small(spec: Spec, width: int = 3) -> Spec:
    """The same network with every width (every size of an equation spec) above
    ``width`` cut to it."""
    if isinstance(spec, EquationSpec):
        sizes = {name: min(size, width) for name, size in spec.sizes.items()}
        return dataclasses.replace(spec, sizes=sizes, worked_point=None)
    layers = tuple(
        dataclasses.replace(layer, width=min(layer.width, width))
        for layer in spec.layers
    )
    return dataclasses.replace(
        spec, input=min(spec.input, width), layers=layers, worked_point=None
    )


def random_point(network: Graph, rng: np.random.Generator) -> dict[str, Any]:
    """Random numbers for every input and parameter (batch 2)."""
    point = {}
    given = (
        (network.values[0], network.observed, *network.parameters)
        if isinstance(network, Network)
        else (*network.inputs, *network.parameters)
    )
    for array in given:
        shape = tuple(
            2 if s.name == "n_batch" else network.widths[s] for s in array.sizes
        )
        values = rng.uniform(-1.5, 1.5, shape)
        probabilities = ("softmax_cross_entropy", "binary_cross_entropy")
        if isinstance(network, Network) and array is network.observed:
            if network.kind.kind in probabilities:
                values = rng.uniform(0.05, 1, shape)
        point[array.name] = values.tolist() if shape else float(values)
    return point


class Checker:
    """Evaluates every side of a document's equations at one random point."""

    def __init__(self, reader: Reader, spec: Spec, table, seed: int = 0):
        self.reader = reader
        self.equation_spec = isinstance(spec, EquationSpec)
        self.network = build(spec)
        self.derivation = derive(self.network)
        self.rng = np.random.default_rng(seed)
        self.evaluator = Evaluator(
            self.derivation, random_point(self.network, self.rng)
        )
        self.names = dict(table)
        self.checked = 0
        self.grids: dict[tuple, np.ndarray] = {}

    def notation(self, mode: str) -> Notation:
        return Notation(self.network, self.derivation, self.names, mode)

    def check(self, equation: Equation, worked: dict[str, Any] | None = None) -> None:
        section, sides = equation.section, equation.sides
        if section == "sizes":
            return  # sizes are numbers of the spec, checked against the table below
        if section == "worked":
            assert worked is not None
            self._check_worked(sides, worked)
        elif section == "matrix":
            self._check_array(sides)
        elif section == "activations" and r"\operatorname{lse}" not in sides[0]:
            self._check_scalar(sides)
        else:
            self._check_index(sides)
        self.checked += 1

    def _parse(self, text: str, mode: str) -> Any:
        return self.reader.parse(text, self.notation(mode))

    def _check_index(self, sides: tuple[str, ...]) -> None:
        left = self._parse(sides[0], "index")
        sizes: dict[sp.Expr, sp.Expr] = {}
        if left == sp.Symbol("L"):
            indices: tuple[sp.Symbol, ...] = ()
            expected = np.asarray(self.evaluator.results["loss"], dtype=float)
        elif isinstance(left, sp.Indexed):
            indices = tuple(left.indices)
            expected = self._values(str(left.base.label))
            array = self.notation("index").array(str(left.base.label))
            sizes = dict(zip(indices, array.sizes, strict=True))
        elif isinstance(left, sp.Symbol):
            indices = ()
            expected = self._values(left.name)
        else:  # a local derivative, \partial lse / \partial y-hat
            notation = self.notation("index")
            left = self.reader.parse(sides[0], notation)
            assert notation.last_local is not None, sides[0]
            elements = sp.Mul(*notation.last_local)
            indices = tuple(
                dict.fromkeys(
                    i  # a scalar numerator (one sample's lse) is a Symbol
                    for e in notation.last_local
                    for i in getattr(e, "indices", ())
                )
            )
            expected = self._grid(left, indices, self._shape_of(elements, indices))
        for side in sides[1:]:
            right = resolve_sizes(self._parse(side, "index"), sizes)
            got = self._grid(right, indices, expected.shape)
            np.testing.assert_allclose(
                got, expected, rtol=1e-9, atol=1e-12, err_msg=side
            )

    def _values(self, name: str) -> np.ndarray:
        return np.asarray(self.evaluator.results[name], dtype=float)

    def _grid(
        self, expr: sp.Expr, indices: tuple[sp.Symbol, ...], shape: tuple[int, ...]
    ) -> np.ndarray:
        free = _indices(sp.sympify(expr))
        if not free <= set(indices):
            raise NotationError(f"{expr} has free indices {free - set(indices)}")
        key = (expr, indices, shape)
        if key not in self.grids:  # the .tex and the .md print the same sides
            grid = np.empty(shape)
            for at in elements(shape):
                grid[at] = float(self.evaluator.element(expr, indices, at))
            self.grids[key] = grid
        return self.grids[key]

    def _shape_of(self, expr: sp.Expr, indices: tuple[sp.Symbol, ...]) -> tuple:
        sizes = {}
        for element in sp.preorder_traversal(expr):
            if isinstance(element, sp.Indexed):
                array = self.notation("index").array(str(element.base.label))
                for index, size in zip(element.indices, array.sizes, strict=True):
                    sizes.setdefault(index, self.evaluator.widths[size])
        return tuple(sizes[i] for i in indices)

    def _check_scalar(self, sides: tuple[str, ...]) -> None:
        left = self._parse(sides[0], "scalar")
        kind = getattr(self.network, "loss_kind", None)  # a [[layers]] spec's
        if kind is not None:  # \ell, one element's loss, and its derivative
            meaning = {
                sp.Symbol("l_element"): kind.element,
                sp.Symbol("dl_dy_predicted"): element_derivative(kind)
                if kind.element is not None
                else None,
            }
            left = meaning.get(left, left)
        for side in sides[1:]:
            right = self._parse(side, "scalar")
            for _ in range(8):
                values = dict(
                    zip(
                        (X, Y_PREDICTED, Y_OBSERVED),
                        self.rng.uniform(-3, 3, 3),
                        strict=True,
                    )
                )
                a, b = (
                    complex(expand_activations(e).subs(values).evalf(30))
                    for e in (left, right)
                )
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=side)

    def _check_array(self, sides: tuple[str, ...]) -> None:
        """The matrix form read as NumPy reads it (see :func:`_matmul`): the result
        must have the gradient's shape, or broadcast to it by NumPy's rule (a
        gradient constant along an axis is printed without it)."""
        left, right = (self._parse(s, "array") for s in sides)
        expected = np.asarray(self._array_value(left))
        got = np.asarray(self._array_value(right))
        try:
            got = np.broadcast_to(got, expected.shape)
        except ValueError:
            raise AssertionError(
                f"{sides[1]}: reads as shape {got.shape}, the gradient's is "
                f"{expected.shape}"
            ) from None
        np.testing.assert_allclose(
            got, expected, rtol=1e-9, atol=1e-12, err_msg=sides[1]
        )

    def _array_value(self, expr: sp.Expr) -> Any:
        """``expr`` evaluated with NumPy's rules, one reading only: every array has
        its own shape (a vector is 1-D), elementwise operations broadcast from the
        trailing axes, and a juxtaposition is ``numpy.matmul``, except that a
        transposed vector is a row (``u \\, {v}^{\\top}`` is an outer product,
        ``{u}^{\\top} v`` a dot product)."""
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        values = [
            self.evaluator.widths[s] if s.is_integer else self._values(s.name)
            for s in symbols
        ]
        operations = {
            "MatProd": _matmul,
            "Transposed": _transpose,
            "SumAxes": lambda a, *axes: np.sum(
                a, axis=tuple(int(x) for x in axes) or None
            ),
            "LogSumExp": lambda a, axis: logsumexp(a, axis=int(axis)),
            "Permuted": lambda a, *order: np.transpose(a, order),
            "TensorDot": lambda a, b, left, right: np.tensordot(
                a, b, axes=(left, right)
            ),
            "Sliced": lambda a, *key: np.asarray(a)[
                tuple(slice(None) if k == -1 else k for k in key)
            ],
            "NewAxes": lambda a, *flags: np.asarray(a)[
                tuple(slice(None) if f else None for f in flags)
            ],
            "Heaviside": lambda a, at_zero=0: np.heaviside(a, at_zero),
            "sigmoid": expit,
            "softplus": lambda a: np.logaddexp(0, a),
        }
        function = sp.lambdify(
            symbols, expand_activations(expr), modules=[operations, "scipy", "numpy"]
        )
        return np.asarray(function(*values))

    def _check_worked(self, sides: tuple[str, ...], worked: dict[str, Any]) -> None:
        left, right = (self._parse(s, "array") for s in sides)
        name = "loss" if left == sp.Symbol("L") else left.name
        expected = np.asarray(worked[name], dtype=float)
        got = np.asarray(
            np.array(
                right.tolist() if isinstance(right, sp.MatrixBase) else right,
                dtype=float,
            )
        )
        np.testing.assert_allclose(
            np.reshape(got, expected.shape), expected, rtol=1e-5, err_msg=sides[1]
        )


class _Row(np.ndarray):
    """A transposed vector: a row, ``{v}^{\\top}`` (NumPy's ``v.T`` is ``v``)."""


def _transpose(a: Any) -> np.ndarray:
    array = np.asarray(a)
    if array.ndim == 1:
        return array.reshape(1, -1).view(_Row)
    return np.transpose(array)


def _matmul(a: Any, b: Any) -> Any:
    """A juxtaposition: a column times a row is their outer product, a row times a
    column their dot product; anything else is ``numpy.matmul``."""
    if isinstance(b, _Row) and np.ndim(a) == 1:
        return np.outer(a, np.asarray(b)[0])
    if isinstance(a, _Row) and np.ndim(b) == 1:
        return float(np.asarray(a)[0] @ b)
    return np.matmul(np.asarray(a), np.asarray(b))


def _indices(expr: sp.Expr) -> set[sp.Symbol]:
    """The free indices of ``expr``: integer symbols that are not sizes."""
    return {
        s
        for s in expr.free_symbols
        if s.is_integer and not s.is_positive and isinstance(s, sp.Symbol)
    }


def check_document(path: Path, spec: Spec, reader: Reader, worked=None) -> int:
    """Check every equation of the document at ``path`` (printed from ``spec``);
    returns how many were checked."""
    table, found = equations(path)
    assert table, f"{path.name}: no names table"
    key = (repr(spec), tuple(table))
    if key not in reader.checkers:
        reader.checkers[key] = Checker(reader, small(spec), table)
    checker = reader.checkers[key]
    checker.checked = 0
    sizes = [e for e in found if e.section == "sizes"]
    for equation in sizes:
        size = reader.parse(equation.sides[0], checker.notation("index"))
        assert build(spec).widths[size] == int(equation.sides[1]), equation
    for equation in found:
        try:
            checker.check(equation, worked)
        except Exception as error:
            error.add_note(f"{path.name}: {equation}")
            raise
    return checker.checked
