"""What the derivation document says: every equation printed from SymPy as LaTeX.

The same :class:`~derive.derivation.Derivation` that the code is printed from is
printed here by :class:`DeriveLatexPrinter`, in index form (one chain-rule step per
line) and in matrix form (the array expression the code computes). The templates
``derivation.tex.j2`` and ``derivation.md.j2`` lay it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from derive.activations import HEAVISIDE_AT_ZERO, X
from derive.derivation import RENAMED, Derivation, Gradient, Step
from derive.network import Array
from derive.passes.to_array import to_array
from derive.printing.latex import DeriveLatexPrinter, latex_name


@dataclass(frozen=True)
class ActivationMath:
    name: str
    definition: str  # f(x) = ...
    derivative: str  # f'(x) = ...


@dataclass(frozen=True)
class GradientMath:
    """The derivation of one gradient: chain rule, local derivatives, result."""

    name: str  # code name, d_loss_d_W1
    title: str  # LaTeX of the target, W^{(1)}
    steps: tuple[str, ...]  # right-hand sides, one per line, after "dL/dt = "
    left: str  # LaTeX of dL/dt[P]
    matrix_left: str
    matrix: str  # right-hand side in matrix form
    code: str  # the line of NumPy it becomes


@dataclass(frozen=True)
class DocumentContext:
    name: str
    description: str
    source: str
    sizes: tuple[tuple[str, int], ...]
    shapes: tuple[tuple[str, str], ...]  # array LaTeX, shape LaTeX
    forward: tuple[tuple[str, str], ...]  # left, right
    loss: tuple[str, str]
    loss_summary: str
    activations: tuple[ActivationMath, ...]
    kink: bool
    gradients: tuple[GradientMath, ...]


def document_context(
    derivation: Derivation, source: str, code: Mapping[str, str]
) -> DocumentContext:
    """Print every equation of ``derivation`` as LaTeX for the document templates.

    ``code`` maps each gradient's name to the lines the module computes it with, as
    the module's printer printed them, so the two cannot drift.
    """
    network = derivation.network
    arrays = {
        a.name
        for a in (*network.values, *network.parameters, network.observed)
        if a.indices
    }
    arrays |= {g.name for g in derivation.gradients if g.array.indices}
    latex = DeriveLatexPrinter(arrays).doprint
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
    return DocumentContext(
        name=network.name,
        description=network.spec.description,
        source=source,
        sizes=tuple((latex(s), n) for s, n in network.widths.items()),
        shapes=tuple((latex_name(a.name), _shape(a, latex)) for a in everything),
        forward=tuple(
            (latex(v.element), latex(v.definition)) for v in network.values[1:]
        ),
        loss=("L", latex(network.loss_formula)),
        loss_summary=network.loss_kind.summary,
        activations=activations,
        kink=any(
            f.derivative.formula.has(sp.Heaviside) for f in network.functions.values()
        )
        and HEAVISIDE_AT_ZERO == 0,
        gradients=tuple(
            _gradient(g, derivation, latex, code[g.name]) for g in derivation.gradients
        ),
    )


def _shape(array: Array, latex) -> str:
    if not array.sizes:
        return r"\text{scalar}"
    return r" \times ".join(latex(s) for s in array.sizes)


def _gradient(
    gradient: Gradient, derivation: Derivation, latex, code: str
) -> GradientMath:
    chain = sp.Add(
        *(_chain(step, gradient, derivation, local=False) for step in gradient.steps)
    )
    local = sp.Add(
        *(_chain(step, gradient, derivation, local=True) for step in gradient.steps)
    )
    steps = [latex(chain), latex(local), latex(gradient.expression)]
    array = to_array(gradient.expression, gradient.array.indices)  # sizes symbolic
    return GradientMath(
        name=gradient.name,
        title=latex_name(gradient.target.name),
        steps=tuple(dict.fromkeys(steps)),  # drop a line that repeats the one before
        left=latex(gradient.array.element),
        matrix_left=latex_name(gradient.name),
        matrix=latex(array),
        code=code,
    )


def _chain(
    step: Step, gradient: Gradient, derivation: Derivation, local: bool
) -> sp.Expr:
    """One chain-rule term, unevaluated: ``sum_m dL/du[m] * du[m]/dt``."""
    target = gradient.target.at(*gradient.array.indices)
    if step.user is None:
        loss = derivation.network.loss_formula.xreplace(RENAMED)
        return step.local if local else sp.Derivative(loss, target, evaluate=False)
    user = step.user.at(*(limit[0] for limit in step.summed))
    factor = step.local if local else sp.Derivative(user, target, evaluate=False)
    term = sp.Mul(step.upstream, factor, evaluate=False)
    for limit in step.summed:
        term = sp.Sum(term, limit)
    return term
