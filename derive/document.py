"""What the derivation document says: every equation printed from SymPy as LaTeX.

The same :class:`~derive.derivation.Derivation` that the code is printed from is
printed here by :class:`DeriveLatexPrinter`, in index form (one chain-rule step per
line) and in matrix form (the array expression the code computes). The templates
``derivation.tex.j2`` and ``derivation.md.j2`` lay it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive.activations import HEAVISIDE_AT_ZERO, X
from derive.derivation import Derivation, Gradient, Step
from derive.errors import SpecError
from derive.evaluate import ShapeError, evaluate
from derive.graph import Graph, Role, Value
from derive.losses import Y_OBSERVED, Y_PREDICTED, element_derivative, expand_losses
from derive.network import Array, Network
from derive.passes.collapse import collapse
from derive.passes.to_array import to_array
from derive.printing.latex import CONTINUED, DeriveLatexPrinter, default_latex

#: A layer wider than this is drawn as its first units, a gap and its last unit.
DRAWN_UNITS = 5


@dataclass(frozen=True)
class ActivationMath:
    name: str
    definition: str  # f(x) = ...
    derivative: str  # f'(x) = ...


@dataclass(frozen=True)
class GradientMath:
    """The derivation of one gradient: chain rule, local derivatives, result."""

    name: str  # code name, d_loss_d_W1
    target: str  # name of the value or parameter it is the gradient of, W1
    title: str  # LaTeX of the target, W^{(1)}
    steps: tuple[str, ...]  # right-hand sides, one per line, after "dL/dt = "
    left: str  # LaTeX of dL/dt[P]
    matrix_left: str
    matrix: str  # right-hand side in matrix form
    code: str  # the line of NumPy it becomes
    #: The index-form expressions printed in ``steps`` that hold no unevaluated
    #: derivative, in the target's indices ``indices``: tests evaluate them.
    expressions: tuple[sp.Expr, ...]
    indices: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class Column:
    """One layer of the diagram: its units' heights, and what it is."""

    name: str  # LaTeX of the value, h^{(0)}
    code: str  # its name in the code, h0
    width: int
    units: tuple[float, ...]  # heights of the drawn units, top first
    gap: float | None  # height of the dots standing for the units not drawn
    caption: str  # LaTeX under the column: the activation, or "input"
    weights: str  # LaTeX of the parameters into this layer ("" for the input)
    parameters: str  # the same, as named in the code: "W0, b0"


@dataclass(frozen=True)
class Node:
    """A value in the diagram of the graph, at a column (its depth) and a row.

    ``key`` names it in the diagrams' own languages (TikZ, Mermaid): ``n0``, ``n1``,
    ..., made here, never from the value's name, which may be a word either language
    reserves (Mermaid's ``end``, ``style``, ``subgraph``) or reads as syntax (``o``
    and ``x`` after an arrow are Mermaid's edge ends; ``_`` is no TikZ name).
    """

    key: str
    code: str
    latex: str
    role: str
    shape: str  # the axis names
    column: int
    row: float


@dataclass(frozen=True)
class GraphDiagram:
    """The value graph as a DAG: an edge from each value to each value using it;
    ``skips`` marks an edge that jumps over a column (a residual connection)."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str, bool], ...]  # source's key, user's key, skips
    spacing: float  # centimetres between columns


@dataclass(frozen=True)
class WorkedPoint:
    """Numbers at the spec's worked point, each as (LaTeX of the name, LaTeX value)."""

    given: tuple[tuple[str, str], ...]
    forward: tuple[tuple[str, str], ...]
    loss: str
    gradients: tuple[tuple[str, str], ...]
    numbers: dict[str, Any]  # every value and gradient, by name, as SymPy numbers


@dataclass(frozen=True)
class DocumentContext:
    name: str
    description: str
    source: str
    style: str
    sizes: tuple[tuple[str, int], ...]
    names: tuple[tuple[str, str, str], ...]  # LaTeX, name in the code, shape LaTeX
    forward: tuple[tuple[str, str], ...]  # left, right
    loss: tuple[str, str]
    loss_summary: str
    loss_lines: tuple[str, ...]  # the element loss and its derivative, as aligned rows
    activations: tuple[ActivationMath, ...]
    kink: bool
    gradients: tuple[GradientMath, ...]
    diagram: tuple[Column, ...]  # [[layers]]: the units, layer by layer
    graph: GraphDiagram | None  # equations: the value graph
    worked: WorkedPoint | None
    #: How the generated module was checked before it was written.
    verified: str


def document_context(
    derivation: Derivation, source: str, code: Mapping[str, str], verified: str
) -> DocumentContext:
    """Print every equation of ``derivation`` as LaTeX for the document templates.

    ``code`` maps each gradient's name to the lines the module computes it with, as
    the module's printer printed them, so the two cannot drift.
    """
    network = derivation.network
    # Index-form and scalar equations print as rows of aligned equations (a long
    # sum may break across lines); the matrix form knows which names are arrays.
    latex, matrix_latex = latex_printers(derivation)
    latex_name = latex.name
    activations = tuple(
        ActivationMath(
            name,
            f"{latex(function(X))} &= {latex(function.formula)}",
            f"{latex(function.derivative(X))} &= "
            f"{latex(function.derivative(X).definition())}",
        )
        for name, function in network.functions.items()
    )
    layered = isinstance(network, Network)
    if isinstance(network, Network):
        everything = (*network.values, network.observed, *network.parameters)
        forward = network.values[1:]
        loss = network.loss_formula
        summary = f"The loss is the {network.kind.summary}."
    else:
        everything = (*network.inputs, *network.parameters, *network.computed)
        forward = network.computed
        loss = network.loss
        named = [
            f"{v.name} is {v.doc}"
            for v in network.computed
            if v.name not in network.spec.equations
        ]
        summary = (
            f"derive named values of its own: {'; '.join(named)}." if named else ""
        )
    code_names = {"y_observed": "y"} if layered else {}
    return DocumentContext(
        name=network.name,
        description=network.spec.description,
        source=source,
        style=network.spec.style,
        sizes=tuple((latex(s), n) for s, n in network.widths.items()),
        names=tuple(
            (latex_name(a.name), code_names.get(a.name, a.name), _shape(a, latex))
            for a in everything
        ),
        forward=tuple((latex(v.element), latex(v.definition)) for v in forward),
        loss=("L", latex(loss)),
        loss_summary=summary,
        loss_lines=_loss_lines(network, latex) if isinstance(network, Network) else (),
        activations=activations,
        kink=has_kink(network),
        gradients=tuple(
            _gradient(g, derivation, latex, matrix_latex, code[g.name])
            for g in derivation.gradients
        ),
        diagram=_diagram(network, latex) if isinstance(network, Network) else (),
        graph=None if isinstance(network, Network) else _graph_diagram(network, latex),
        worked=_worked_point(derivation, latex),
        verified=verified,
    )


def has_kink(network: Graph) -> bool:
    """Whether a derivative is a Heaviside step taken as 0 at the kink (ReLU's)."""
    return (
        any(f.derivative.formula.has(sp.Heaviside) for f in network.functions.values())
        and HEAVISIDE_AT_ZERO == 0
    )


def latex_printers(
    derivation: Derivation,
) -> tuple[DeriveLatexPrinter, DeriveLatexPrinter]:
    """derive's two LaTeX printers for ``derivation``: index form and scalars (rows
    of aligned equations: a value's ``x`` is a number there, and a product an
    ordinary one), and matrix form (arrays as matrices, products of arrays as
    ``\\odot``)."""
    network = derivation.network
    arrays = {a.name: len(a.indices) for a in network if a.indices}
    arrays |= {g.name: len(g.array.indices) for g in derivation.gradients}
    return latex_printer(derivation, rows=True), latex_printer(derivation, arrays)


def latex_printer(
    derivation: Derivation, arrays: Mapping[str, int] | None = None, rows: bool = False
) -> DeriveLatexPrinter:
    """The LaTeX printer with every name as the graph's values and sizes give it."""
    network = derivation.network
    names = {s.name: default_latex(s.name) for s in network.sizes}
    names.update({v.name: v.latex for v in network if v.latex})
    names.update(network.size_latex)
    gradients = {g.name: g.target.latex for g in derivation.gradients}
    return DeriveLatexPrinter(arrays, names, gradients, rows=rows)


def _loss_lines(network: Network, latex) -> tuple[str, ...]:
    """The element loss and ``sympy.diff`` of it, or softmax's log normalizer."""
    kind = network.kind
    predicted, observed = latex(Y_PREDICTED), latex(Y_OBSERVED)
    if kind.element is None:
        logits = network.output
        (normalizer,) = network.of_role(Role.NORMALIZER)
        element = normalizer.at(*normalizer.indices)
        derivative = sp.Derivative(element, logits.element, evaluate=False)
        ranges = dict(zip(logits.indices, logits.sizes, strict=True))
        derived = collapse(sp.diff(normalizer.definition, logits.element), ranges)
        softmax = sp.exp(logits.element - element)
        return (
            f"{latex(element)} &= {latex(normalizer.definition)}",
            f"{latex(derivative)} &= {latex(derived)} = {latex(softmax)}",
        )
    ell = rf"\ell\left({predicted}, {observed}\right)"
    return (
        f"{ell} &= {latex(kind.element)}",
        rf"\frac{{\partial \ell}}{{\partial {predicted}}} &= {latex(element_derivative(kind))}",
    )


def _diagram(network: Network, latex) -> tuple[Column, ...]:
    """The layers, input to output, with the units to draw."""
    outputs: dict[int, Array] = {}
    for value in network.values[1:]:
        if value.role is Role.VALUE and value.layer is not None:
            outputs[value.layer] = value  # the layer's output: h, or r if linear
    columns = [_column(network, network.values[0], "input", (), latex)]
    for layer, value in sorted(outputs.items()):
        caption = value.activation or "linear"
        weights = tuple(p for p in network.parameters if p.layer == layer)
        columns.append(_column(network, value, caption, weights, latex))
    return tuple(columns)


def _column(
    network: Network,
    array: Array,
    caption: str,
    weights: tuple[Array, ...],
    latex: DeriveLatexPrinter,
) -> Column:
    """A column of unit circles; a wide layer shows its first units, dots, its last."""
    width = int(network.shape(array)[-1]) if array.has_units else 1
    if width <= DRAWN_UNITS:
        units = tuple((width - 1) / 2 - k for k in range(width))
        gap = None
    else:
        units, gap = (1.5, 0.75, 0.0, -1.5), -0.75
    return Column(
        name=latex.name(array.name),
        code=array.name,
        width=width,
        units=units,
        gap=gap,
        caption=caption,
        weights=", ".join(latex.name(p.name) for p in weights),
        parameters=", ".join(p.name for p in weights),
    )


def _graph_diagram(network: Graph, latex: DeriveLatexPrinter) -> GraphDiagram:
    """Computed values in columns by depth (the longest path from the inputs), each
    input and parameter one column before its first user; rows in spec order."""
    depth: dict[str, int] = {}
    for value in network.computed + (network.loss_value,):
        sources = [s for s in network if value.uses(s) and s.name in depth]
        depth[value.name] = 1 + max((depth[s.name] for s in sources), default=0)
    for value in (*network.inputs, *network.parameters):
        users = [depth[u.name] for u in network.users(value)]
        depth[value.name] = min(users, default=1) - 1
    columns: dict[int, list[Value]] = {}
    for value in network:
        columns.setdefault(depth[value.name], []).append(value)
    nodes: list[Node] = []
    keys: dict[str, str] = {}
    for column, values in sorted(columns.items()):
        for row, value in enumerate(values):
            axes = " x ".join(a.name for a in value.axes) or "scalar"
            keys[value.name] = f"n{len(nodes)}"
            nodes.append(
                Node(
                    keys[value.name],
                    value.name,
                    value.latex,
                    value.role.value,
                    axes,
                    column,
                    (len(values) - 1) / 2 - row,
                )
            )
    given = (Role.INPUT, Role.PARAMETER)
    edges = tuple(
        (
            keys[source.name],
            keys[user.name],
            source.role not in given and depth[user.name] - depth[source.name] > 1,
        )
        for source, user in network.edges()
    )
    # Columns share the text width (about 16 cm), 2.4 cm apart at most.
    spacing = min(2.4, 15.0 / max(len(columns) - 1, 1))
    return GraphDiagram(tuple(nodes), edges, round(spacing, 2))


def _worked_point(derivation: Derivation, latex) -> WorkedPoint | None:
    """Every value and gradient at the spec's worked point, evaluated by SymPy."""
    spec = derivation.network.spec
    if spec.worked_point is None:
        return None
    layered = isinstance(derivation.network, Network)
    renamed = {"y": "y_observed"} if layered else {}
    point = {renamed.get(k, k): v for k, v in spec.worked_point.items()}
    try:
        numbers = evaluate(derivation, point)
    except ShapeError as error:
        field = "y" if error.name == "y_observed" else error.name
        raise SpecError(spec.source, f"worked_point.{field}", error.message) from None
    network = derivation.network

    def shown(name: str) -> tuple[str, str]:
        return (latex.name(name), latex(_matrix(numbers[name])))

    if isinstance(network, Network):
        given = ["x", *(p.name for p in network.parameters), "y_observed"]
    else:
        given = [v.name for v in (*network.inputs, *network.parameters)]
    return WorkedPoint(
        given=tuple(shown(name) for name in given),
        forward=tuple(shown(v.name) for v in network.computed),
        loss=latex(_matrix(numbers["loss"])),
        gradients=tuple(shown(g.name) for g in derivation.gradients),
        numbers=numbers,
    )


def _matrix(grid) -> sp.Expr:
    """A number, or a row vector, or a matrix, rounded to 6 significant digits."""

    def rounded(value: sp.Expr) -> sp.Expr:
        return value if value.is_Rational else sp.Float(value, 6)

    if grid.ndim == 0:
        return rounded(grid[()])
    rows = grid.reshape(1, -1) if grid.ndim == 1 else grid
    return sp.Matrix([[rounded(v) for v in row] for row in rows])


def _shape(array: Array, latex) -> str:
    if not array.sizes:
        return r"\text{scalar}"
    return r" \times ".join(latex(s) for s in array.sizes)


def chain_rule(gradient: Gradient, derivation: Derivation) -> tuple[sp.Expr, sp.Expr]:
    """The chain rule for ``gradient`` as the documents print it, unevaluated: with
    each local derivative as a derivative, then as ``sympy.diff`` returned it."""
    chain = sp.Add(
        *(_chain(step, gradient, derivation, local=False) for step in gradient.steps)
    )
    local = sp.Add(
        *(_chain(step, gradient, derivation, local=True) for step in gradient.steps)
    )
    return chain, local


def gradient_math(derivation: Derivation, name: str, code: str) -> GradientMath:
    """The derivation of the gradient ``name`` (``d_loss_d_W1``) as the documents
    print it; ``code`` is the line of NumPy it becomes."""
    gradient = next(g for g in derivation.gradients if g.name == name)
    return _gradient(gradient, derivation, *latex_printers(derivation), code)


def _gradient(
    gradient: Gradient, derivation: Derivation, latex, matrix_latex, code: str
) -> GradientMath:
    chains = [
        _chain(step, gradient, derivation, local=False) for step in gradient.steps
    ]
    locals_ = [
        _chain(step, gradient, derivation, local=True) for step in gradient.steps
    ]
    local = sp.Add(*locals_)
    # One term per user, each on its own line: a value with several users shows
    # every path its gradient comes back by.
    steps = [_terms(chains, latex), _terms(locals_, latex), latex(gradient.expression)]
    evaluable = tuple(
        e for e in (local, gradient.expression) if not e.has(sp.Derivative)
    )
    array = to_array(  # sizes symbolic
        gradient.expression, gradient.array.indices, gradient.array.sizes
    )
    return GradientMath(
        name=gradient.name,
        target=gradient.target.name,
        title=latex.name(gradient.target.name),
        steps=tuple(dict.fromkeys(steps)),  # drop a line that repeats the one before
        left=latex(gradient.array.element),
        matrix_left=latex.name(gradient.name),
        matrix=matrix_latex(array),
        code=code,
        expressions=evaluable,
        indices=gradient.array.indices,
    )


def _terms(terms: list[sp.Expr], latex: DeriveLatexPrinter) -> str:
    """``terms`` as a sum, the second and later on lines of their own."""
    kept = [t for t in terms if t != 0] or [sp.Integer(0)]
    lines = [latex(kept[0])]
    for term in kept[1:]:
        negative = term.could_extract_minus_sign()
        sign = "-" if negative else "+"
        lines.append(f"{CONTINUED}{sign} {latex(-term if negative else term)}")
    return "".join(lines)


def _without_zero_sums(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``Sum(0, ...)`` that ``sympy.diff`` left behind removed."""
    return expr.replace(
        lambda e: isinstance(e, sp.Sum) and e.function == 0, lambda e: sp.Integer(0)
    )


def _chain(
    step: Step, gradient: Gradient, derivation: Derivation, local: bool
) -> sp.Expr:
    """One chain-rule term, unevaluated: ``sum_m dL/du[m] * du[m]/dt``."""
    target = gradient.target.at(*gradient.array.indices)
    if step.user.role is Role.LOSS:
        if local:
            return _without_zero_sums(expand_losses(step.local))
        # Only the loss's terms that read the target: the others differentiate to 0,
        # and a loss with a penalty on every weight would not fit on the page.
        base = gradient.target.base
        terms = [t for t in sp.Add.make_args(step.definition) if t.has(base)]
        loss = expand_losses(sp.Add(*terms))
        return sp.Derivative(loss, target, evaluate=False)
    user = step.element
    factor = (
        _without_zero_sums(step.local)
        if local
        else sp.Derivative(user, target, evaluate=False)
    )
    term = sp.Mul(step.upstream, factor, evaluate=False)
    for limit in step.summed:
        term = sp.Sum(term, limit)
    return term
