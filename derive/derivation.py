"""Backpropagation by SymPy: the chain rule, one layer at a time.

For every value and parameter ``t`` of the network, walking from the loss back to the
input, the gradient is assembled from the values ``c`` that use ``t`` directly::

    dL/dt[P] = sum over c, and over c's indices m, of  dL/dc[m] * dc[m]/dt[P]

``dc[m]/dt[P]`` is ``sympy.diff`` of ``c``'s definition (a small local expression),
and ``dL/dc`` is the gradient found one step earlier, kept as a named symbol
(``d_loss_d_r1``), so every result stays closed-form and small. The sums are then
collapsed (:mod:`derive.passes.collapse`) to expressions such as
``d_loss_d_r1[i] * h0[j]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.activations import Activation, Y
from derive.losses import expand_losses
from derive.network import BATCH, INPUT_UNIT, UNIT, Array, Network
from derive.passes.collapse import collapse

#: Indices of the element a gradient is taken with respect to: dL/dW1[i, j].
TARGET_INDICES = (sp.Symbol("i", integer=True), sp.Symbol("j", integer=True))
#: Dummies that run over the elements of the value using it: batch, then unit.
USER_BATCH = sp.Symbol("a", integer=True)
USER_UNIT = sp.Symbol("m", integer=True)
#: A definition's own indices, renamed to the dummies before differentiating it.
RENAMED = {BATCH: USER_BATCH, UNIT: USER_UNIT}


@dataclass(frozen=True)
class Step:
    """One term of the chain rule: through ``user`` (or through the loss itself)."""

    user: Array | None  # None: the loss depends on the target directly
    upstream: sp.Expr  # dL/d user, at the user's summed indices
    local: sp.Expr  # d user / d target, from sympy.diff
    summed: tuple[tuple[sp.Symbol, sp.Expr, sp.Expr], ...]  # sum limits
    result: sp.Expr  # the term after the sums collapse


@dataclass(frozen=True)
class Gradient:
    """``dL/d target``, as an array of the target's shape."""

    target: Array
    array: Array  # the gradient itself, named d_loss_d_<target>
    steps: tuple[Step, ...]
    expression: sp.Expr  # index form, in array.indices

    @property
    def name(self) -> str:
        return self.array.name


@dataclass(frozen=True)
class Derivation:
    """Every gradient of the network, in the order the backward pass computes them."""

    network: Network
    loss_derivative: sp.Expr  # dL/dy_predicted before the loss is named
    gradients: tuple[Gradient, ...]

    def of(self, name: str) -> Gradient:
        """The gradient with respect to the value or parameter ``name``."""
        for gradient in self.gradients:
            if gradient.target.name == name:
                return gradient
        raise KeyError(name)


def gradient_name(target: str) -> str:
    """``d_loss_d_W1`` for ``W1``; ``d_loss_d_ypredicted`` for ``y_predicted``."""
    return "d_loss_d_" + target.replace("_", "")


def target_indices(target: Array) -> tuple[sp.Symbol, ...]:
    """The indices a gradient is written in: ``b`` for the batch, then ``i``, ``j``."""
    if target.batched:
        return (BATCH, *TARGET_INDICES[: len(target.indices) - 1])
    return TARGET_INDICES[: len(target.indices)]


def derive(network: Network) -> Derivation:
    """Differentiate ``network``'s loss with respect to every value and parameter."""
    index_symbols = {
        BATCH,
        UNIT,
        INPUT_UNIT,
        USER_BATCH,
        USER_UNIT,
        *TARGET_INDICES,
        *network.widths,
        *(s for a in network.values for s in a.sizes),
    }
    gradients: dict[str, Gradient] = {}
    targets = [*reversed(network.values[1:]), *network.parameters]
    for target in targets:
        indices = target_indices(target)
        element = target.at(*indices)
        steps = []
        if network.loss.has(target.base):
            local = sp.diff(network.loss.xreplace(RENAMED), element)
            result = expand_losses(collapse(local, index_symbols))
            steps.append(Step(None, sp.Integer(1), expand_losses(local), (), result))
        for user in network.values:
            if user.definition is None or not user.definition.has(target.base):
                continue
            steps.append(
                _through(user, gradients[user.name].array, element, index_symbols)
            )
        gradient_array = Array(
            gradient_name(target.name), indices, target.sizes, target.layer
        )
        expression = sp.factor_terms(sp.Add(*(step.result for step in steps)))
        gradients[target.name] = Gradient(
            target, gradient_array, tuple(steps), expression
        )
    output = network.output
    return Derivation(
        network=network,
        loss_derivative=gradients[output.name].expression,
        gradients=tuple(gradients.values()),
    )


def _through(
    user: Array, upstream: Array, element: sp.Expr, index_symbols: set
) -> Step:
    """The chain-rule term ``sum_m dL/du[m] * du[m]/dt`` through the value ``user``."""
    assert user.definition is not None, "only computed values use other arrays"
    dummies = tuple(RENAMED.get(index, index) for index in user.indices)
    definition = user.definition.xreplace(RENAMED)
    local = _in_output_form(sp.diff(definition, element), definition, user.at(*dummies))
    upstream_element = upstream.at(*dummies)
    limits = tuple(
        (d, sp.Integer(0), size - 1)
        for d, size in zip(dummies, user.sizes, strict=True)
    )
    # Sum first over the dummies a KroneckerDelta pins down, so that each sum collapses.
    deltas = {s for delta in local.atoms(sp.KroneckerDelta) for s in delta.free_symbols}
    ordered = sorted(limits, key=lambda limit: limit[0] not in deltas)
    term = collapse(upstream_element * local, index_symbols)
    for limit in ordered:
        term = collapse(sp.Sum(term, limit), index_symbols)
    if term.has(sp.exp):
        term = sp.powsimp(term, combine="exp")
    return Step(user, upstream_element, local, limits, term)


def _in_output_form(local: sp.Expr, definition: sp.Expr, value: sp.Expr) -> sp.Expr:
    """``local`` (d value / d target) written with ``value`` where that is simpler.

    - ``value = f(r)`` for an activation whose derivative is a function of its output:
      ``tanh'(r) = 1 - value**2``, so backprop reuses the forward pass's value;
    - ``value = log(S)``: ``S = exp(value)``, so ``exp(z[i]) / S`` becomes
      ``exp(z[i] - value)``, the softmax computed without overflow.
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
    return local
