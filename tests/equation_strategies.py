"""Hypothesis strategies that draw random equation specs (issue 10), as TOML text.

A drawn spec starts from a 3-axis input ``x = ["batch", "m", "n"]`` (and sometimes a
2-axis ``z = ["batch", "p"]``), then draws equations one by one, each an operation of
the language applied to values defined above it:

- linear maps ``v @ W.T`` (with a bias or not), matrix-vector ``v @ w``, stacked
  matrix products ``v @ swapaxes(u, -1, -2)``, and ``einsum`` contractions;
- elementwise functions, and ``+ - * /``, ``maximum``, ``minimum`` between values
  that broadcast (one's axes a trailing part of the other's);
- ``sum``/``mean``/``logsumexp`` over one axis or a tuple (positive or negative
  indices), and with ``keepdims=True`` inside a normalization (``v - mean(v, ...)``);
- ``softmax`` and ``log_softmax`` over an axis; integer indexing with full slices.

A weight of a shape already drawn is reused half the time (a parameter shared by
several equations), operands are drawn from every value above (several users per
value), and the ``loss`` sums the mean of the last value and of a few others, plus an
L2 term on a parameter now and then (so that parameter has one more user). Every
formula stays in the domain of its functions (``log(1 + v**2)``, ``sqrt(v**2 + 1)``,
``exp(tanh(v))``), so a drawn spec evaluates to finite numbers at any point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hypothesis import strategies as st

AXES = ("m", "n", "p")
LETTERS = "abcdefghijkl"
#: einsum draws no more axes than this over its two operands
MAX_EINSUM_AXES = 6

UNARY = (
    "tanh({})",
    "sigmoid({})",
    "relu({})",
    "softplus({})",
    "gelu({})",
    "sin({})",
    "cos({})",
    "erf({})",
    "abs({})",
    "exp(tanh({}))",
    "log(1 + {}**2)",
    "sqrt({}**2 + 1)",
    "leaky_relu({}, 0.1)",
    "-{}",
    "{} / 2",
)
BINARY = (
    "{} + {}",
    "{} - {}",
    "{} * {}",
    "{} / (1 + {}**2)",
    "maximum({}, {})",
    "minimum({}, {})",
)
KEEPDIMS = (
    "{v} - mean({v}, axis={axis}, keepdims=True)",
    "{v} - logsumexp({v}, axis={axis}, keepdims=True)",
    "{v} / (1 + sum({v}**2, axis={axis}, keepdims=True))",
)


@dataclass
class _Draft:
    """The spec being drawn: sizes, arrays by name and axes, equations in order."""

    sizes: dict[str, int]
    inputs: dict[str, tuple[str, ...]]
    parameters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    equations: dict[str, str] = field(default_factory=dict)

    def parameter(self, draw: st.DrawFn, axes: tuple[str, ...], prefix: str) -> str:
        """A parameter with these axes: one already drawn (shared), or a new one."""
        same = [name for name, a in self.parameters.items() if a == axes]
        if same and draw(st.booleans()):
            return draw(st.sampled_from(same))
        name = f"{prefix}{len(self.parameters)}"
        self.parameters[name] = axes
        return name

    def operand(
        self, draw: st.DrawFn, rank: int = 0, weighable: bool = False
    ) -> str | None:
        """A value (or input) with at least ``rank`` axes, or None; ``weighable``:
        its last axis is not the batch axis (a parameter cannot have that axis)."""
        found = [
            name
            for name, axes in self.values.items()
            if len(axes) >= rank and not (weighable and axes[-1] == "batch")
        ]
        return draw(st.sampled_from(found)) if found else None


def _axis_text(draw: st.DrawFn, position: int, rank: int) -> str:
    """``position`` written as NumPy allows, positive or negative."""
    return str(position - rank if draw(st.booleans()) else position)


def _linear(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1, weighable=True)
    if v is None:
        return None
    axes = draft.values[v]
    out = draw(st.sampled_from(AXES))
    weight = draft.parameter(draw, (out, axes[-1]), "W")
    formula = f"{v} @ {weight}.T"
    if draw(st.booleans()):
        formula += f" + {draft.parameter(draw, (out,), 'b')}"
    return formula, axes[:-1] + (out,)


def _vector(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1, weighable=True)
    if v is None:
        return None
    axes = draft.values[v]
    return f"{v} @ {draft.parameter(draw, (axes[-1],), 'w')}", axes[:-1]


def _stacked(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 2)
    if v is None:
        return None
    axes = draft.values[v]
    partners = [
        name
        for name, other in draft.values.items()
        if len(other) == len(axes) and other[:-2] == axes[:-2] and other[-1] == axes[-1]
    ]
    u = draw(st.sampled_from(partners))  # v itself is always a partner
    return f"{v} @ swapaxes({u}, -1, -2)", axes[:-1] + (draft.values[u][-2],)


def _einsum(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1)
    u = draft.operand(draw, 1)
    if v is None or u is None:
        return None
    if len(draft.values[v]) + len(draft.values[u]) > MAX_EINSUM_AXES:
        return None
    v_axes, u_axes = draft.values[v], draft.values[u]
    letters = iter(LETTERS)
    v_letters = [next(letters) for _ in v_axes]
    u_letters = []
    for axis in u_axes:
        free = [
            letter
            for letter, a in zip(v_letters, v_axes, strict=True)
            if a == axis and letter not in u_letters
        ]
        if free and draw(st.booleans()):
            u_letters.append(draw(st.sampled_from(free)))
        else:
            u_letters.append(next(letters))
    names = dict(zip(v_letters, v_axes, strict=True)) | dict(
        zip(u_letters, u_axes, strict=True)
    )
    kept = [c for c in names if draw(st.booleans())]
    subscripts = f"{''.join(v_letters)},{''.join(u_letters)}->{''.join(kept)}"
    return f"einsum('{subscripts}', {v}, {u})", tuple(names[c] for c in kept)


def _unary(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw)
    assert v is not None
    return draw(st.sampled_from(UNARY)).format(v), draft.values[v]


def _binary(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw)
    assert v is not None
    axes = draft.values[v]
    # operands whose axes are a trailing part of v's: NumPy broadcasts them
    tails = [
        name
        for name, other in draft.values.items()
        if len(other) <= len(axes) and axes[len(axes) - len(other) :] == other
    ]
    u = draw(st.sampled_from(tails))  # v itself is one: a value with two users
    left, right = (v, u) if draw(st.booleans()) else (u, v)
    return draw(st.sampled_from(BINARY)).format(left, right), axes


def _reduction(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1)
    if v is None:
        return None
    axes = draft.values[v]
    kind = draw(st.sampled_from(("sum", "mean", "logsumexp")))
    chosen = draw(
        st.lists(st.integers(0, len(axes) - 1), min_size=1, max_size=2, unique=True)
    )
    written = [_axis_text(draw, a, len(axes)) for a in chosen]
    axis = written[0] if len(written) == 1 else "(" + ", ".join(written) + ")"
    kept = tuple(a for n, a in enumerate(axes) if n not in chosen)
    return f"{kind}({v}, axis={axis})", kept


def _keepdims(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1)
    if v is None:
        return None
    axes = draft.values[v]
    axis = _axis_text(draw, draw(st.integers(0, len(axes) - 1)), len(axes))
    return draw(st.sampled_from(KEEPDIMS)).format(v=v, axis=axis), axes


def _normalizer(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    v = draft.operand(draw, 1)
    if v is None:
        return None
    axes = draft.values[v]
    kind = draw(st.sampled_from(("softmax", "log_softmax")))
    if draw(st.booleans()):
        return f"{kind}({v})", axes  # NumPy's default: the last axis
    axis = _axis_text(draw, draw(st.integers(0, len(axes) - 1)), len(axes))
    return f"{kind}({v}, axis={axis})", axes


def _index(draw: st.DrawFn, draft: _Draft) -> tuple[str, tuple[str, ...]] | None:
    found = [
        (name, n)
        for name, axes in draft.values.items()
        for n, axis in enumerate(axes)
        if axis != "batch"
    ]
    if not found:
        return None
    v, position = draw(st.sampled_from(found))
    axes = draft.values[v]
    size = draft.sizes[axes[position]]
    index = draw(st.integers(-size, size - 1))
    items = [":"] * position + [str(index)]
    if draw(st.booleans()):
        items += [":"] * (len(axes) - position - 1)
    return f"{v}[{', '.join(items)}]", axes[:position] + axes[position + 1 :]


OPERATIONS = (
    _linear,
    _vector,
    _stacked,
    _einsum,
    _unary,
    _binary,
    _reduction,
    _keepdims,
    _normalizer,
    _index,
)


@st.composite
def equation_specs(draw: st.DrawFn, max_equations: int = 6) -> str:
    """A random equation spec, as TOML text; its ``loss`` is a scalar."""
    sizes = {axis: draw(st.integers(1, 4)) for axis in AXES}
    inputs = {"x": ("batch", "m", "n")}
    if draw(st.booleans()):
        inputs["z"] = ("batch", "p")
    draft = _Draft(sizes, inputs, values=dict(inputs))
    # a first linear map of x, as a network starts, so that there is a parameter
    steps = [_linear] + [
        draw(st.sampled_from(OPERATIONS))
        for _ in range(draw(st.integers(0, max_equations - 1)))
    ]
    for step in steps:
        drawn = step(draw, draft) or _unary(draw, draft)
        assert drawn is not None
        formula, axes = drawn
        name = f"v{len(draft.equations)}"
        draft.equations[name] = formula
        draft.values[name] = axes
    last = name
    others = [v for v in draft.equations if v != last]
    chosen = (
        draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
        if others
        else []
    )
    terms = [f"mean({last}**2)"] + [f"mean({v})" for v in chosen]
    if draw(st.booleans()):
        weight = draw(st.sampled_from(sorted(draft.parameters)))
        terms.append(f"0.01 * sum({weight}**2)")
    draft.equations["loss"] = " + ".join(terms)
    return _toml(draft)


def _toml(draft: _Draft) -> str:
    """The draft as an equation spec (JSON's strings and lists are TOML's too)."""
    lines = ['name = "drawn"', "", "[sizes]"]
    lines += [f"{k} = {v}" for k, v in draft.sizes.items()]
    for title, table in (("inputs", draft.inputs), ("parameters", draft.parameters)):
        lines += ["", f"[{title}]"]
        lines += [f"{k} = {json.dumps(list(v))}" for k, v in table.items()]
    lines += ["", "[equations]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in draft.equations.items()]
    return "\n".join(lines) + "\n"
