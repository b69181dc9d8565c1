"""What the derivation document says: every equation printed from SymPy as LaTeX.

The same :class:`~derive.derivation.Derivation` that the code is printed from is
printed here by :class:`DeriveLatexPrinter`, in index form (one chain-rule step per
line) and in matrix form (the array expression the code computes). The templates
``derivation.tex.j2`` and ``derivation.md.j2`` lay it out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive.activations import HEAVISIDE_AT_ZERO, X
from derive.derivation import RENAMED, Derivation, Gradient, Step
from derive.errors import SpecError
from derive.evaluate import ShapeError, evaluate
from derive.losses import Y_OBSERVED, Y_PREDICTED, element_derivative
from derive.network import INPUT_UNIT, Array, Network
from derive.passes.collapse import collapse
from derive.passes.to_array import to_array
from derive.printing.latex import DeriveLatexPrinter, latex_name

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
    diagram: tuple[Column, ...]
    worked: WorkedPoint | None


def document_context(
    derivation: Derivation, source: str, code: Mapping[str, str]
) -> DocumentContext:
    """Print every equation of ``derivation`` as LaTeX for the document templates.

    ``code`` maps each gradient's name to the lines the module computes it with, as
    the module's printer printed them, so the two cannot drift.
    """
    network = derivation.network
    # Index-form and scalar equations have no arrays: ``x`` in an activation's
    # definition is a number, and a product there is an ordinary one. They are rows
    # of aligned equations, so a long sum may break across lines.
    latex, matrix_latex = latex_printers(derivation)
    activations = tuple(
        ActivationMath(
            name,
            f"{latex(function(X))} &= {latex(function.formula)}",
            f"{latex(function.derivative(X))} &= "
            f"{latex(function.derivative(X).definition())}",
        )
        for name, function in network.functions.items()
    )
    everything = (*network.values, network.observed, *network.parameters)
    code_names = {"y_observed": "y"}
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
        forward=tuple(
            (latex(v.element), latex(v.definition)) for v in network.values[1:]
        ),
        loss=("L", latex(network.loss_formula)),
        loss_summary=network.loss_kind.summary,
        loss_lines=_loss_lines(network, latex),
        activations=activations,
        kink=has_kink(network),
        gradients=tuple(
            _gradient(g, derivation, latex, matrix_latex, code[g.name])
            for g in derivation.gradients
        ),
        diagram=_diagram(network, latex),
        worked=_worked_point(derivation, latex),
    )


def has_kink(network: Network) -> bool:
    """Whether a derivative is a Heaviside step taken as 0 at the kink (ReLU's)."""
    return (
        any(f.derivative.formula.has(sp.Heaviside) for f in network.functions.values())
        and HEAVISIDE_AT_ZERO == 0
    )


def latex_printers(
    derivation: Derivation,
) -> tuple[Callable[[sp.Expr], str], Callable[[sp.Expr], str]]:
    """derive's two LaTeX printers for ``derivation``: index form and scalars (rows
    of aligned equations), and matrix form (arrays as matrices)."""
    network = derivation.network
    arrays = {
        a.name: len(a.indices)
        for a in (*network.values, *network.parameters, network.observed)
        if a.indices
    }
    arrays |= {g.name: len(g.array.indices) for g in derivation.gradients}
    return DeriveLatexPrinter().lines, DeriveLatexPrinter(arrays).doprint


def _loss_lines(network: Network, latex) -> tuple[str, ...]:
    """The element loss and ``sympy.diff`` of it, or softmax's log normalizer."""
    kind = network.loss_kind
    predicted, observed = latex(Y_PREDICTED), latex(Y_OBSERVED)
    if kind.element is None:
        logits = network.output
        normalizer = network.array("lse")
        element = normalizer.at(*normalizer.indices)
        derivative = sp.Derivative(element, logits.element, evaluate=False)
        indices = {*logits.indices, INPUT_UNIT, *logits.sizes, *network.widths}
        derived = collapse(sp.diff(normalizer.definition, logits.element), indices)
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
        if value.name != "lse":
            outputs[value.layer] = value  # the layer's output: h, or r if linear
    columns = [_column(network, network.values[0], "input", ())]
    for layer, value in sorted(outputs.items()):
        caption = value.activation or "linear"
        weights = tuple(p for p in network.parameters if p.layer == layer)
        columns.append(_column(network, value, caption, weights))
    return tuple(columns)


def _column(
    network: Network, array: Array, caption: str, weights: tuple[Array, ...]
) -> Column:
    """A column of unit circles; a wide layer shows its first units, dots, its last."""
    width = int(network.shape(array)[-1]) if array.has_units else 1
    if width <= DRAWN_UNITS:
        units = tuple((width - 1) / 2 - k for k in range(width))
        gap = None
    else:
        units, gap = (1.5, 0.75, 0.0, -1.5), -0.75
    return Column(
        name=latex_name(array.name),
        code=array.name,
        width=width,
        units=units,
        gap=gap,
        caption=caption,
        weights=", ".join(latex_name(p.name) for p in weights),
        parameters=", ".join(p.name for p in weights),
    )


def _worked_point(derivation: Derivation, latex) -> WorkedPoint | None:
    """Every value and gradient at the spec's worked point, evaluated by SymPy."""
    spec = derivation.network.spec
    if spec.worked_point is None:
        return None
    point = {("y_observed" if k == "y" else k): v for k, v in spec.worked_point.items()}
    try:
        numbers = evaluate(derivation, point)
    except ShapeError as error:
        field = "y" if error.name == "y_observed" else error.name
        raise SpecError(spec.source, f"worked_point.{field}", error.message) from None
    network = derivation.network

    def shown(name: str) -> tuple[str, str]:
        return (latex_name(name), latex(_matrix(numbers[name])))

    given = ["x", *(p.name for p in network.parameters), "y_observed"]
    return WorkedPoint(
        given=tuple(shown(name) for name in given),
        forward=tuple(shown(v.name) for v in network.values[1:]),
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
    chain, local = chain_rule(gradient, derivation)
    steps = [latex(chain), latex(local), latex(gradient.expression)]
    evaluable = tuple(
        e for e in (local, gradient.expression) if not e.has(sp.Derivative)
    )
    array = to_array(gradient.expression, gradient.array.indices)  # sizes symbolic
    return GradientMath(
        name=gradient.name,
        target=gradient.target.name,
        title=latex_name(gradient.target.name),
        steps=tuple(dict.fromkeys(steps)),  # drop a line that repeats the one before
        left=latex(gradient.array.element),
        matrix_left=latex_name(gradient.name),
        matrix=matrix_latex(array),
        code=code,
        expressions=evaluable,
        indices=gradient.array.indices,
    )


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
    if step.user is None:
        loss = derivation.network.loss_formula.xreplace(RENAMED)
        if local:
            return _without_zero_sums(step.local)
        return sp.Derivative(loss, target, evaluate=False)
    user = step.user.at(*(limit[0] for limit in step.summed))
    factor = (
        _without_zero_sums(step.local)
        if local
        else sp.Derivative(user, target, evaluate=False)
    )
    term = sp.Mul(step.upstream, factor, evaluate=False)
    for limit in step.summed:
        term = sp.Sum(term, limit)
    return term
