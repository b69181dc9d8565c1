"""Backpropagation by SymPy: reverse mode over the graph of named values.

Walking the graph from the loss back, in reverse topological order, the gradient of
every value and parameter ``t`` is assembled from the values ``u`` that use ``t``
directly (its users)::

    dL/dt[P] = sum over users u, and over u's indices m, of  dL/du[m] * du[m]/dt[P]

``du[m]/dt[P]`` is ``sympy.diff`` of ``u``'s definition (a small local expression),
and ``dL/du`` is the gradient found one step earlier, kept as a named symbol
(``d_loss_d_h1``), so every result stays closed-form and small. Each user's term is
kept as a :class:`Step`, so a value with several users (a residual connection's two
paths, a weight shared by three recurrent steps, a regularized parameter) shows one
term per user. The sums are then collapsed (:mod:`derive.passes.collapse`) to
expressions such as ``d_loss_d_r1[i] * h0[j]``.

No index name is fixed: the element a gradient is taken at gets fresh index symbols,
one per axis (``b`` for the batch axis, then ``i, j, k, ...``), and each user's own
indices are renamed to fresh dummies (``a`` for the batch, then ``m, n, ...``) that
clash with nothing in sight.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import sympy as sp

from derive.activations import Activation, Y
from derive.graph import N_BATCH, Graph, Role, Value
from derive.losses import expand_losses
from derive.passes.collapse import collapse

#: Names for the indices of the element a gradient is taken at, batch axis first.
TARGET_NAMES = ("i", "j", "k", "l", "p", "q", "r", "s")
TARGET_BATCH = "b"
#: Names for the dummies that run over a user's elements.
DUMMY_NAMES = ("m", "n", "u", "v", "w", "o", "g", "c")
DUMMY_BATCH = "a"


@dataclass(frozen=True)
class Step:
    """One term of the chain rule: the part of ``dL/dt`` that flows through ``user``."""

    user: Value  # a value (or the loss) whose definition reads the target
    definition: sp.Expr  # the user's definition, in the dummies below
    element: sp.Expr  # the user's element at the dummies
    upstream: sp.Expr  # dL/d user at the dummies (1 for the loss)
    local: sp.Expr  # d user / d target, from sympy.diff
    summed: tuple[tuple[sp.Symbol, sp.Expr, sp.Expr], ...]  # sum limits
    result: sp.Expr  # the term after the sums collapse


@dataclass(frozen=True)
class Gradient:
    """``dL/d target``, as an array of the target's shape."""

    target: Value
    array: Value  # the gradient itself, named by target.gradient
    steps: tuple[Step, ...]
    expression: sp.Expr  # index form, in array.indices

    @property
    def name(self) -> str:
        return self.array.name


@dataclass(frozen=True)
class Derivation:
    """Every gradient of the graph, in the order the backward pass computes them."""

    network: Graph
    gradients: tuple[Gradient, ...]

    def of(self, name: str) -> Gradient:
        """The gradient with respect to the value or parameter ``name``."""
        for gradient in self.gradients:
            if gradient.target.name == name:
                return gradient
        raise KeyError(name)


def fresh(
    count: int, taken: set[str], names: Iterable[str], prefix: str
) -> list[sp.Symbol]:
    """``count`` integer symbols named from ``names`` (then ``prefix1, prefix2, ...``)
    that are not in ``taken``; their names are added to ``taken``."""
    symbols: list[sp.Symbol] = []
    numbered = (f"{prefix}{n}" for n in itertools.count(1))
    candidates = itertools.chain(names, numbered)
    while len(symbols) < count:
        name = next(candidates)
        if name not in taken:
            taken.add(name)
            symbols.append(sp.Symbol(name, integer=True))
    return symbols


def index_names(value: Value, taken: set[str], batch: str, names: Iterable[str]):
    """Fresh index symbols for ``value``'s axes: ``batch`` for the batch axis."""
    names = tuple(names)
    result = []
    for axis in value.axes:
        if axis.batch and batch not in taken:
            taken.add(batch)
            result.append(sp.Symbol(batch, integer=True))
        else:
            result.extend(fresh(1, taken, names, names[0]))
    return tuple(result)


def _symbol_names(expr: sp.Basic) -> set[str]:
    """Every symbol name in ``expr``, bound ones (sum dummies) included."""
    return {s.name for s in expr.atoms(sp.Symbol)}


def derive(network: Graph) -> Derivation:
    """Differentiate the graph's loss with respect to every value and parameter."""
    reserved = {v.name for v in network} | {s.name for s in network.sizes}
    gradients: dict[str, Gradient] = {}
    reusable = _patterns(network)
    targets = [
        v for v in reversed(network.nodes) if v.role in (Role.VALUE, Role.NORMALIZER)
    ]
    targets += [v for v in network.nodes if v.role is Role.PARAMETER]
    for target in targets:
        taken = set(reserved)
        indices = index_names(target, taken, TARGET_BATCH, TARGET_NAMES)
        element = target.at(*indices)
        steps = []
        for user in network.users(target):
            upstream = None if user.role is Role.LOSS else gradients[user.name].array
            assert user.definition is not None
            in_sight = taken | _symbol_names(user.definition)
            ranges = dict(zip(indices, target.sizes, strict=True))
            steps.append(_through(user, upstream, element, in_sight, ranges))
        gradient_array = Value(
            target.gradient,
            target.role,
            target.axes,
            indices,
            latex=rf"\frac{{\partial L}}{{\partial {target.latex}}}",
        )
        expression = sp.factor_terms(sp.Add(*(step.result for step in steps)))
        expression = _single_elements(expression, target, indices)
        expression = _reuse_values(expression, reusable)
        gradients[target.name] = Gradient(
            target, gradient_array, tuple(steps), expression
        )
    ordered = [gradients[t.name] for t in targets]
    return Derivation(network=network, gradients=tuple(ordered))


def _through(
    user: Value,
    upstream: Value | None,
    element: sp.Expr,
    taken: set[str],
    ranges: dict[sp.Symbol, sp.Expr],
) -> Step:
    """The chain-rule term ``sum_m dL/du[m] * du[m]/dt`` through the value ``user``."""
    assert user.definition is not None, "only computed values use other values"
    dummies = index_names(user, taken, DUMMY_BATCH, DUMMY_NAMES)
    renamed = dict(zip(user.indices, dummies, strict=True))
    # A sum's own dummy that clashes with the target's indices gets a fresh name.
    target_names = {s.name for s in element.free_symbols if s.is_integer}
    for bound, size in _bound(user.definition):
        if bound.name in target_names and bound not in renamed:
            batch = size.has(N_BATCH) and DUMMY_BATCH not in taken
            renamed[bound] = (
                fresh(1, taken, (DUMMY_BATCH,), "a")[0]
                if batch
                else fresh(1, taken, DUMMY_NAMES, "m")[0]
            )
    definition = user.definition.xreplace(renamed)
    value = user.at(*dummies)
    local = _in_output_form(
        _merged_powers(sp.diff(definition, element)), definition, value
    )
    upstream_element = sp.Integer(1) if upstream is None else upstream.at(*dummies)
    limits = tuple(
        (d, sp.Integer(0), size - 1)
        for d, size in zip(dummies, user.sizes, strict=True)
    )
    # Every free index's range: the target's (given), the dummies' (the user's axes).
    ranges = {**ranges, **dict(zip(dummies, user.sizes, strict=True))}
    # Sum first over the dummies a KroneckerDelta pins down, so that each sum collapses.
    deltas = {s for delta in local.atoms(sp.KroneckerDelta) for s in delta.free_symbols}
    ordered = sorted(limits, key=lambda limit: limit[0] not in deltas)
    term = collapse(upstream_element * local, ranges)
    for limit in ordered:
        term = collapse(sp.Sum(term, limit), ranges)
    if term.has(sp.exp):
        term = sp.powsimp(term, combine="exp")
    term = expand_losses(term)
    return Step(user, definition, value, upstream_element, local, limits, term)


def _patterns(network: Graph) -> list[tuple[sp.Expr, sp.Expr]]:
    """For each value defined as one function call (``attention = exp(s - lse)``),
    its definition with wildcards for its indices, and the value at them."""
    patterns = []
    for value in network.computed:
        definition = value.definition
        if definition is None or not definition.is_Function or not value.indices:
            continue
        wilds = [sp.Wild(f"w{n}") for n in range(len(value.indices))]
        mapping = dict(zip(value.indices, wilds, strict=True))
        patterns.append((definition.xreplace(mapping), value.at(*wilds)))
    return patterns


def _reuse_values(expr: sp.Expr, patterns: list[tuple[sp.Expr, sp.Expr]]) -> sp.Expr:
    """``expr`` reading a forward value wherever it would compute one again: the
    softmax's ``exp(s - lse)`` in a log-normalizer's gradient is ``attention``."""
    reused = expr
    for pattern, value in patterns:
        if reused.has(pattern.func):
            reused = reused.replace(pattern, value)
    return expr if reused == expr else sp.factor_terms(reused)


def _single_elements(
    expr: sp.Expr, target: Value, indices: tuple[sp.Symbol, ...]
) -> sp.Expr:
    """``KroneckerDelta(0, k)`` is 1 where ``k`` runs over a length-1 axis (one kept
    by ``keepdims``): its only element is 0."""
    single = {i for i, a in zip(indices, target.axes, strict=True) if a.size == 1}
    if not single:
        return expr
    return expr.replace(
        lambda e: (
            isinstance(e, sp.KroneckerDelta)
            and any(a in single for a in e.args)
            and any(a == 0 for a in e.args)
        ),
        lambda e: sp.Integer(1),
    )


def _bound(expr: sp.Expr) -> list[tuple[sp.Symbol, sp.Expr]]:
    """The sums' dummies in ``expr``, with their upper limits, outermost first."""
    found = dict.fromkeys(
        (limit[0], limit[2])
        for s in sp.preorder_traversal(expr)
        if isinstance(s, sp.Sum)
        for limit in s.limits
    )
    return list(found)


def _merged_powers(expr: sp.Expr) -> sp.Expr:
    """``expr`` with each product's powers of one base merged: ``b**n * b**-1`` as
    ``b**(n - 1)``.

    SymPy differentiates a power whose exponent is a symbol (``relu(h)**d_h``, a
    parameter ``x**p``) to ``n * b**n / b``, which is 0/0 wherever ``b`` is 0, though
    the derivative is 0 there for ``n > 1`` (as torch computes it). Only a base that
    appears more than once with a symbolic exponent is merged; ``exp`` (base E) is
    left to its own rules.
    """

    def merge(product: sp.Expr) -> sp.Expr:
        exponents: dict[sp.Expr, list[sp.Expr]] = {}
        for factor in product.args:
            base, exponent = factor.as_base_exp()
            exponents.setdefault(base, []).append(exponent)
        if not any(
            base is not sp.E
            and len(powers) > 1
            and not all(p.is_number for p in powers)
            for base, powers in exponents.items()
        ):
            return product
        return sp.Mul(*(sp.Pow(b, sp.Add(*e)) for b, e in exponents.items()))

    return expr.replace(lambda e: e.is_Mul, merge)


def _in_output_form(local: sp.Expr, definition: sp.Expr, value: sp.Expr) -> sp.Expr:
    """``local`` (d value / d target) written with ``value`` where that is simpler.

    - ``value = f(r)`` for an activation whose derivative is a function of its output:
      ``tanh'(r) = 1 - value**2``, so backprop reuses the forward pass's value;
    - ``value = log(S)``: ``S = exp(value)``, so ``exp(z[i]) / S`` becomes
      ``exp(z[i] - value)``, the softmax computed without overflow;
    - anywhere else the definition itself appears (``exp(z)``'s derivative is
      ``exp(z)``), it is the value.
    """
    if isinstance(definition, Activation):
        form = type(definition).output_form
        if form is not None:
            return local.subs(
                type(definition).derivative(definition.args[0]), form.subs(Y, value)
            )
        return local
    if isinstance(definition, sp.log):
        return local.subs(definition.args[0], sp.exp(value))
    if definition.is_Atom or isinstance(definition, sp.Indexed):
        return local
    return local.xreplace({definition: value})
