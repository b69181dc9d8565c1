"""Hypothesis strategies that draw random equation specs (issue 10), as TOML text.

A drawn spec is one of three kinds: **batched** (a first input ``x`` with the batch
axis and one, two or three axes in all, sometimes a second batched input and an input
without the batch axis), **unbatched** (inputs like ``X = ["m", "n"]``, no batch axis
anywhere) or **scalar** (every input and parameter a scalar, ``a = []``; no
``[sizes]`` table, an empty one or one with an unused size; no inputs, or one or two
scalar inputs; an empty ``[inputs]`` table or none). Sizes are
drawn all distinct or with two of them equal, and :func:`equation_cases` draws a batch
size equal to one of them or distinct from all.

Equations are then drawn one by one. Each formula is an expression tree (three or four
operations deep) over the values above it: inputs, parameters and earlier equations,
each operand either such a name or a formula written inline, so that one value has
several users and one subexpression is written several times in one formula
(``tanh(h) / (1 + tanh(h)**2)``, a layer norm of ``h @ W.T`` written inline). The
operations are every one of the language:

- linear maps ``v @ W.T`` / ``v @ W`` / ``W @ v`` (with a bias or not), matrix-vector
  ``v @ w`` and ``w @ v``, products of two values (``v @ swapaxes(u, -1, -2)``,
  ``v @ u.T``, ``v.T @ u``, ``v @ u``; a value with itself), attention
  ``softmax(q @ swapaxes(k, -1, -2) / sqrt(n), axis=-1) @ v`` (with and without the
  batch axis), and ``einsum``;
- elementwise functions and powers (``(v @ W.T) ** 2``, ``(1 + v**2) ** -1``), and
  ``+ - * /``, ``maximum``, ``minimum``, gates ``exp(a) * b`` between values that
  broadcast (axes matched by name from the last; a kept length-1 axis stretches),
  numbers and sizes used as numbers;
- ``sum``/``mean``/``logsumexp`` over one axis, a tuple (positive or negative indices)
  or all, with and without ``keepdims=True``, the kept results used inline in further
  reductions (``mean((v - mean(v, axis=-1, keepdims=True))**2, axis=-1, ...)``) and as
  named values of their own (a layer norm as a chain of equations);
- ``softmax``/``log_softmax``/``logsumexp`` anywhere: as an operand of ``*``, inside
  ``@``, inside another function, reduced again;
- integer indexing with full slices (on a formula too), ``.T`` and ``swapaxes``.

A weight of a shape already drawn is reused half the time (a parameter shared by
several equations), and the ``loss`` sums the mean of the last value and of a few
others, plus an L2 term on a parameter now and then. Every formula stays in the domain
of its functions (``log(1 + v**2)``, ``sqrt(v**2 + 1)``, divisions by ``1 + u**2``)
and each value carries an estimate of its magnitude at a random point: ``exp`` is only
drawn of values up to :data:`EXP_ARGUMENT`, no value is drawn past :data:`LARGEST`, so
a drawn spec evaluates to finite numbers of a moderate range at any point.
"""

from __future__ import annotations

import ast
import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

AXES = ("m", "n", "p")
BATCH = "batch"
#: A length-1 axis left by ``keepdims=True``.
KEPT = "1"
LETTERS = "abcdefghijkl"
#: einsum draws no more axes than this over its two operands, and keeps at most 4
MAX_EINSUM_AXES = 6
#: The batch size a magnitude estimate assumes (the test draws up to this).
BATCH_ESTIMATE = 6
#: Largest magnitude a value is drawn to reach (an estimate at a random point), and
#: largest argument of ``exp``.
LARGEST = 1e4
EXP_ARGUMENT = 8.0
#: A formula longer than this is not drawn (derive takes up to 1000 characters).
LONGEST = 600

Scale = Callable[[float], float]


def _same(s: float) -> float:
    return s


def _one(s: float) -> float:
    return 1.0


#: Elementwise forms of one operand: (template, magnitude of the result, largest
#: magnitude of the operand it may take). ``{a}`` is the operand as a function's
#: argument, ``{p}`` as an operator's (in parentheses where it needs them).
UNARY: tuple[tuple[str, Scale, float], ...] = (
    ("tanh({a})", _one, math.inf),
    ("sigmoid({a})", _one, math.inf),
    ("relu({a})", _same, math.inf),
    ("softplus({a})", lambda s: s + 0.7, math.inf),
    ("gelu({a})", _same, math.inf),
    ("sin({a})", _one, math.inf),
    ("cos({a})", _one, math.inf),
    ("erf({a})", _one, math.inf),
    ("abs({a})", _same, math.inf),
    ("exp(tanh({a}))", lambda s: math.e, math.inf),
    ("exp({a})", math.exp, EXP_ARGUMENT),
    ("log(1 + {p}**2)", lambda s: 1 + 2 * math.log1p(s), math.inf),
    ("sqrt({p}**2 + 1)", lambda s: s + 1, math.inf),
    ("leaky_relu({a}, 0.1)", _same, math.inf),
    ("-{p}", _same, math.inf),
    ("{p} / 2", _same, math.inf),
    ("1 / (1 + {p}**2)", _one, math.inf),
    ("{p} / (1 + {p}**2)", _one, math.inf),
    ("{p} * sigmoid({a})", _same, math.inf),
    ("log(sigmoid({a}))", lambda s: s + 0.7, 50.0),
)
#: The plain function calls among UNARY (drawn as often as all the rest).
FUNCTIONS = UNARY[:9] + UNARY[10:12] + UNARY[13:14]
#: Powers of one operand, as UNARY.
POWERS: tuple[tuple[str, Scale, float], ...] = (
    ("{p}**2", lambda s: s * s, math.inf),
    ("{p}**3", lambda s: s**3, math.inf),
    ("(1 + {p}**2)**0.5", lambda s: s + 1, math.inf),
    ("(1 + {p}**2)**-1", _one, math.inf),
    ("(1 + {p}**2)**1.5", lambda s: (s + 1) ** 3, math.inf),
    ("sigmoid({a})**2", _one, math.inf),
)
#: Forms of two operands: (template, magnitude from both, largest first operand).
BINARY: tuple[tuple[str, Callable[[float, float], float], float], ...] = (
    ("{pa} + {pb}", lambda a, b: a + b, math.inf),
    ("{pa} - {pb}", lambda a, b: a + b, math.inf),
    ("{pa} * {pb}", lambda a, b: a * b, math.inf),
    ("{pa} * {pb}", lambda a, b: a * b, math.inf),
    ("{pa} * {pb}", lambda a, b: a * b, math.inf),
    ("{pa} / (1 + {pb}**2)", lambda a, b: a, math.inf),
    ("{pa} / (1 + {pb}**2)", lambda a, b: a, math.inf),
    ("{pa} / sqrt({pb}**2 + 1)", lambda a, b: a, math.inf),
    ("maximum({a}, {b})", max, math.inf),
    ("minimum({a}, {b})", max, math.inf),
    ("{pa} * sigmoid({b})", lambda a, b: a, math.inf),
    ("exp({a}) * {pb}", lambda a, b: math.exp(a) * b, EXP_ARGUMENT),
    ("{pa} ** 2 * {pb}", lambda a, b: a * a * b, math.inf),
)
#: What a gate applies to a linear map before it multiplies another (as UNARY).
GATES: tuple[tuple[str, Scale, float], ...] = (
    ("exp({a})", math.exp, EXP_ARGUMENT),
    ("exp({a})", math.exp, EXP_ARGUMENT),
    ("sigmoid({a})", _one, math.inf),
    ("tanh({a})", _one, math.inf),
    ("softmax({a}, axis=-1)", _one, math.inf),
    ("relu({a})", _same, math.inf),
    ("{p}", _same, math.inf),
)
#: How a gated product combines the gate with the other linear map.
GATED = ("{g} * {pb}", "{g} / (1 + {pb}**2)", "({g} * {pb}) ** 2", "{pb} * {g}")
KEEPDIMS = (
    "{p} - mean({a}, axis={axis}, keepdims=True)",
    "{p} - logsumexp({a}, axis={axis}, keepdims=True)",
    "{p} / (1 + sum({p}**2, axis={axis}, keepdims=True))",
    "exp({p} - logsumexp({a}, axis={axis}, keepdims=True))",
)
#: A layer norm written inline: the operand three or four times, a kept mean inside a
#: kept mean (the variance), or the variance as E[v**2] - E[v]**2.
LAYER_NORMS = (
    "({p} - mean({a}, axis={axis}, keepdims=True)) / sqrt(mean(({p} - mean({a}, "
    "axis={axis}, keepdims=True))**2, axis={axis}, keepdims=True) + {eps})",
    "({p} - mean({a}, axis={axis}, keepdims=True)) / sqrt(mean({p}**2, axis={axis}, "
    "keepdims=True) - mean({a}, axis={axis}, keepdims=True)**2 + {eps})",
)
NUMBERS = ("2", "0.5", "3", "1.5")


@dataclass(frozen=True)
class Expr:
    """A formula (or a name): its text, its axes (names; KEPT for a length-1 axis
    left by keepdims) and an estimate of its largest magnitude at a random point."""

    text: str
    axes: tuple[str, ...]
    scale: float = 3.0

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def weighable(self) -> bool:
        """Its last axis can be contracted with a parameter (not batch, not kept)."""
        return bool(self.axes) and self.axes[-1] not in (BATCH, KEPT)

    @property
    def contractable(self) -> bool:
        return bool(self.axes) and KEPT not in self.axes

    @property
    def p(self) -> str:
        """The text as an operand of an operator."""
        node = ast.parse(self.text, mode="eval").body
        if isinstance(node, (ast.Name, ast.Call, ast.Subscript, ast.Attribute)):
            return self.text
        if isinstance(node, ast.Constant) and not str(self.text).startswith("-"):
            return self.text
        return f"({self.text})"


def _broadcast(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """NumPy's broadcast of two axis tuples, axes matched by name from the last (a
    kept length-1 axis stretches); None where they do not broadcast."""
    longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
    out = list(longer)
    offset = len(longer) - len(shorter)
    for k, axis in enumerate(shorter):
        mine = out[offset + k]
        if axis == mine or axis == KEPT:
            continue
        if mine == KEPT:
            out[offset + k] = axis
            continue
        return None
    return tuple(out)


@dataclass
class _Draft:
    """The spec being drawn: sizes, arrays by name and axes, equations in order."""

    kind: str  # batched, unbatched, scalar
    sizes: dict[str, int]
    inputs: dict[str, tuple[str, ...]]
    parameters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, Expr] = field(default_factory=dict)
    equations: dict[str, str] = field(default_factory=dict)

    @property
    def axes(self) -> tuple[str, ...]:
        """The size names an equation may put on a new parameter."""
        return tuple(self.sizes) if self.kind != "scalar" else ()

    def size(self, axis: str) -> int:
        if axis == BATCH:
            return BATCH_ESTIMATE
        if axis == KEPT:
            return 1
        return self.sizes[axis]

    def parameter(self, draw: st.DrawFn, axes: tuple[str, ...], prefix: str) -> Expr:
        """A parameter with these axes: one already drawn (shared), or a new one."""
        same = [name for name, a in self.parameters.items() if a == axes]
        if same and draw(st.booleans()):
            name = draw(st.sampled_from(same))
        else:
            name = f"{prefix}{len(self.parameters)}"
            self.parameters[name] = axes
        return Expr(name, axes, 3.0)

    def names(self, draw: st.DrawFn, accept: Callable[[Expr], bool]) -> list[Expr]:
        """Inputs and values above (and, a quarter of the time, the parameters)."""
        pool = list(self.values.values())
        if draw(st.integers(0, 3)) == 0:
            pool += [Expr(n, a, 3.0) for n, a in self.parameters.items()]
        return [e for e in pool if accept(e)]

    def name(self, draw: st.DrawFn, accept: Callable[[Expr], bool]) -> Expr | None:
        found = self.names(draw, accept)
        return draw(st.sampled_from(found)) if found else None


def _any(e: Expr) -> bool:
    return True


def _operand(
    draw: st.DrawFn, draft: _Draft, depth: int, accept: Callable[[Expr], bool] = _any
) -> Expr | None:
    """An operand: a formula written inline (two times in three, while ``depth``
    allows) or a name; one that ``accept`` takes, or None."""
    if depth > 0 and draw(st.integers(0, 2)):
        inline = _expression(draw, draft, depth - 1)
        if accept(inline):
            return inline
    return draft.name(draw, accept)


def _axis_text(draw: st.DrawFn, position: int, rank: int) -> str:
    """``position`` written as NumPy allows, positive or negative."""
    return str(position - rank if draw(st.booleans()) else position)


def _form(template: str, e: Expr, **more: str) -> str:
    return template.format(a=e.text, p=e.p, **more)


# --- expressions: each returns an Expr, or None where it does not apply -------------


def _unary(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    e = _operand(draw, draft, depth)
    if e is None:
        return None
    table = draw(st.sampled_from((FUNCTIONS, FUNCTIONS, UNARY, POWERS)))
    allowed = [u for u in table if e.scale <= u[2]]
    template, scale, _ = draw(st.sampled_from(allowed))
    return Expr(_form(template, e), e.axes, scale(e.scale))


def _partner(draw: st.DrawFn, draft: _Draft, e: Expr, depth: int) -> Expr:
    """A second operand that broadcasts with ``e``: ``e`` itself or a function of it
    (the subexpression written twice), a name, a parameter of a trailing part of its
    axes (a bias, a scale), a number or a size, or another formula."""
    choice = draw(st.sampled_from(("same", "function", "name", "parameter", "number")))
    if choice == "same":
        return e
    if choice == "function":
        allowed = [u for u in UNARY if e.scale <= u[2]]
        template, scale, _ = draw(st.sampled_from(allowed))
        return Expr(_form(template, e), e.axes, scale(e.scale))
    if choice == "name":
        if depth > 0 and draw(st.booleans()):
            inline = _expression(draw, draft, depth - 1)
            if _broadcast(inline.axes, e.axes) is not None:
                return inline
        found = draft.name(draw, lambda u: _broadcast(u.axes, e.axes) is not None)
        if found is not None:
            return found
    if choice == "parameter":
        tails = [
            e.axes[k:]
            for k in range(e.ndim + 1)
            if BATCH not in e.axes[k:] and KEPT not in e.axes[k:]
        ]
        if draft.kind == "scalar":
            tails = [()]
        return draft.parameter(draw, draw(st.sampled_from(tails)), "b")
    if draft.sizes and draw(st.booleans()):
        size = draw(st.sampled_from(sorted(draft.sizes)))
        if draw(st.booleans()):
            return Expr(f"sqrt({size})", (), math.sqrt(draft.sizes[size]))
        return Expr(size, (), draft.sizes[size])
    number = draw(st.sampled_from(NUMBERS))
    return Expr(number, (), float(number))


def _binaries(
    a: Expr, b: Expr
) -> list[tuple[str, Callable[[float, float], float], float]]:
    """The forms of BINARY ``a`` and ``b`` can take: not v - v (zero) nor
    maximum(v, v) (a tie everywhere) of one operand twice."""
    allowed = [f for f in BINARY if a.scale <= f[2]]
    if a.text == b.text:
        allowed = [f for f in allowed if not f[0].startswith(("{pa} -", "max", "min"))]
    return allowed


def _binary(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    e = _operand(draw, draft, depth)
    if e is None:
        return None
    u = _partner(draw, draft, e, depth)
    axes = _broadcast(e.axes, u.axes)
    assert axes is not None
    a, b = (e, u) if draw(st.booleans()) else (u, e)
    allowed = _binaries(a, b)
    template, scale, _ = draw(st.sampled_from(allowed))
    text = template.format(a=a.text, pa=a.p, b=b.text, pb=b.p)
    return Expr(text, axes, scale(a.scale, b.scale))


def _linear(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """``v @ W.T`` (+ b), ``v @ W``, or ``W @ v`` (a left product of a matrix); of
    an elementwise product or function now and then (``(v * u) @ W.T``), and used as
    a power or a reciprocal now and then (``(v @ W.T) ** 2``)."""
    e = _operand(draw, draft, depth, lambda e: e.weighable)
    if e is None or not draft.axes:
        return None
    inside = draw(st.integers(0, 5))
    if inside == 0:  # an elementwise product or quotient
        u = _partner(draw, draft, e, depth)
        if _broadcast(e.axes, u.axes) == e.axes:
            template, scale, _ = draw(st.sampled_from(_binaries(e, u)[:9]))
            text = template.format(a=e.text, pa=e.p, b=u.text, pb=u.p)
            e = Expr(text, e.axes, scale(e.scale, u.scale))
    elif inside == 1:  # a function
        template, scale, _ = draw(
            st.sampled_from([f for f in FUNCTIONS if e.scale <= f[2]])
        )
        e = Expr(_form(template, e), e.axes, scale(e.scale))
    out = draw(st.sampled_from(draft.axes))
    left = e.ndim >= 2 and e.axes[-2] not in (BATCH, KEPT) and draw(st.booleans())
    if left:
        weight = draft.parameter(draw, (out, e.axes[-2]), "W")
        text, axes = f"{weight.text} @ {e.p}", e.axes[:-2] + (out, e.axes[-1])
    elif draw(st.booleans()):
        weight = draft.parameter(draw, (out, e.axes[-1]), "W")
        text, axes = f"{e.p} @ {weight.text}.T", e.axes[:-1] + (out,)
    else:
        weight = draft.parameter(draw, (e.axes[-1], out), "W")
        text, axes = f"{e.p} @ {weight.text}", e.axes[:-1] + (out,)
    scale = e.scale
    if not left and draw(st.booleans()):
        text += f" + {draft.parameter(draw, (out,), 'b').text}"
        scale += 2
    return _wrapped(draw, Expr(text, axes, scale))


def _wrapped(draw: st.DrawFn, e: Expr) -> Expr:
    """``e``, or (a fifth of the time) a power of it or one over one plus its square."""
    if draw(st.integers(0, 4)):
        return e
    template, scale, _ = draw(st.sampled_from(POWERS[:2] + UNARY[16:18]))
    return Expr(_form(template, e), e.axes, scale(e.scale))


def _vector(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """``v @ w`` over the last axis, or ``w @ v`` over the one before."""
    e = _operand(draw, draft, depth, lambda e: e.weighable)
    if e is None:
        return None
    if e.ndim >= 2 and e.axes[-2] not in (BATCH, KEPT) and draw(st.booleans()):
        w = draft.parameter(draw, (e.axes[-2],), "w")
        found = Expr(f"{w.text} @ {e.p}", e.axes[:-2] + e.axes[-1:], e.scale)
    else:
        w = draft.parameter(draw, (e.axes[-1],), "w")
        found = Expr(f"{e.p} @ {w.text}", e.axes[:-1], e.scale)
    return _wrapped(draw, found)


def _gate(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """A gated unit: a function of one linear map of ``v`` times another,
    ``exp(v @ W.T + b) * (v @ V.T)``, ``softmax(v @ W.T, axis=-1) * (v @ V.T)``."""
    e = _operand(draw, draft, depth, lambda e: e.weighable)
    if e is None or not draft.axes:
        return None
    out = draw(st.sampled_from(draft.axes))
    first = draft.parameter(draw, (out, e.axes[-1]), "W")
    second = draft.parameter(draw, (out, e.axes[-1]), "W")
    a = Expr(f"{e.p} @ {first.text}.T", e.axes[:-1] + (out,), e.scale)
    if draw(st.booleans()):
        bias = draft.parameter(draw, (out,), "b")
        a = Expr(f"{a.text} + {bias.text}", a.axes, a.scale + 2)
    b = Expr(f"{e.p} @ {second.text}.T", a.axes, e.scale)
    template, scale, _ = draw(st.sampled_from([g for g in GATES if a.scale <= g[2]]))
    gate = Expr(_form(template, a), a.axes, scale(a.scale))
    text = draw(st.sampled_from(GATED)).format(g=gate.p, pb=b.p)
    return Expr(text, a.axes, (gate.scale * b.scale) ** (2 if "** 2" in text else 1))


def _stacks(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """The leading (stack) axes of a matrix product: one a trailing part of the
    other."""
    longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
    if longer[len(longer) - len(shorter) :] == shorter:
        return longer
    return None


def _products(e: Expr, u: Expr) -> list[tuple[str, tuple[str, ...], str]]:
    """Every way to write a matrix product of ``e`` and ``u`` that contracts axes of
    the same name: (text, axes, the contracted axis)."""
    found = []
    last = e.axes[-1]
    if u.ndim == 1 and u.axes[0] == last:
        found.append((f"{e.p} @ {u.p}", e.axes[:-1], last))
    if u.ndim >= 2 and u.axes[-2] == last:
        if e.ndim == 1:
            found.append((f"{e.p} @ {u.p}", u.axes[:-2] + u.axes[-1:], last))
        else:
            stack = _stacks(e.axes[:-2], u.axes[:-2])
            if stack is not None:
                axes = stack + (e.axes[-2], u.axes[-1])
                found.append((f"{e.p} @ {u.p}", axes, last))
    if u.ndim >= 2 and u.axes[-1] == last:
        swapped = f"{u.text}.T" if u.ndim == 2 and u.p == u.text else None
        swapped = swapped or f"swapaxes({u.text}, -1, -2)"
        if e.ndim == 1:
            found.append((f"{e.p} @ {swapped}", u.axes[:-2] + (u.axes[-2],), last))
        else:
            stack = _stacks(e.axes[:-2], u.axes[:-2])
            if stack is not None:
                axes = stack + (e.axes[-2], u.axes[-2])
                found.append((f"{e.p} @ {swapped}", axes, last))
    if e.ndim == 2 and e.p == e.text:
        first = e.axes[0]
        if u.ndim == 1 and u.axes[0] == first:
            found.append((f"{e.text}.T @ {u.p}", (e.axes[1],), first))
        if u.ndim >= 2 and u.axes[-2] == first:
            axes = u.axes[:-2] + (e.axes[1], u.axes[-1])
            found.append((f"{e.text}.T @ {u.p}", axes, first))
    return found


def _matmul(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """A matrix product of two values (or of a value with itself)."""
    e = _operand(draw, draft, depth, lambda e: e.contractable)
    if e is None:
        return None
    partners = [e, *draft.names(draw, lambda u: u.contractable)]
    other = _operand(draw, draft, depth, lambda u: u.contractable)
    if other is not None:
        partners.append(other)
    found = [(u, *p) for u in partners for p in _products(e, u)]
    if not found:
        return None
    u, text, axes, contracted = draw(st.sampled_from(found))
    return Expr(text, axes, e.scale * u.scale * draft.size(contracted))


def _attention(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """``softmax(q @ swapaxes(k, -1, -2) / sqrt(h), axis=-1) @ v`` of one value's
    projections (or of the value itself), in one formula."""
    e = _operand(draw, draft, depth, lambda e: e.ndim >= 2 and e.weighable)
    if e is None or KEPT in e.axes or not draft.axes:
        return None
    head = draw(st.sampled_from(draft.axes))

    def projection(axis: str) -> Expr:
        if draw(st.booleans()):
            return e
        weight = draft.parameter(draw, (axis, e.axes[-1]), "W")
        return Expr(f"{e.p} @ {weight.text}.T", e.axes[:-1] + (axis,), 1.5 * e.scale)

    q = projection(head)
    k = projection(q.axes[-1])
    v = projection(draw(st.sampled_from(draft.axes)))
    if k.axes[-1] != q.axes[-1]:
        return None
    transposed = f"{k.p}.T" if e.ndim == 2 else f"swapaxes({k.text}, -1, -2)"
    scores = f"{q.p} @ {transposed}"
    if draw(st.booleans()):
        scores += draw(st.sampled_from((f" / sqrt({q.axes[-1]})", " / 2")))
    text = f"softmax({scores}, axis=-1) @ {v.p}"
    return Expr(text, e.axes[:-1] + v.axes[-1:], v.scale)


def _transpose(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    e = _operand(draw, draft, depth, lambda e: e.ndim >= 2)
    if e is None:
        return None
    if e.ndim == 2 and draw(st.booleans()):
        return Expr(f"{e.p}.T", e.axes[::-1], e.scale)
    i, j = draw(
        st.lists(st.integers(0, e.ndim - 1), min_size=2, max_size=2, unique=True)
    )
    axes = list(e.axes)
    axes[i], axes[j] = axes[j], axes[i]
    first, second = _axis_text(draw, i, e.ndim), _axis_text(draw, j, e.ndim)
    text = f"swapaxes({e.text}, {first}, {second})"
    return Expr(text, tuple(axes), e.scale)


def _einsum(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    v = _operand(draw, draft, depth, lambda e: e.contractable)
    if v is None:
        return None
    u = draft.name(
        draw, lambda e: e.contractable and e.ndim + v.ndim <= MAX_EINSUM_AXES
    )
    if u is None or draw(st.integers(0, 3)) == 0:
        u = v
    if len(v.axes) + len(u.axes) > MAX_EINSUM_AXES:
        return None
    letters = iter(LETTERS)
    v_letters = [next(letters) for _ in v.axes]
    u_letters: list[str] = []
    for axis in u.axes:
        free = [
            letter
            for letter, a in zip(v_letters, v.axes, strict=True)
            if a == axis and letter not in u_letters
        ]
        if free and draw(st.booleans()):
            u_letters.append(draw(st.sampled_from(free)))
        else:
            u_letters.append(next(letters))
    names = dict(zip(v_letters, v.axes, strict=True)) | dict(
        zip(u_letters, u.axes, strict=True)
    )
    kept = [c for c in names if draw(st.booleans())][:4]
    summed = math.prod(draft.size(names[c]) for c in names if c not in kept)
    subscripts = f"{''.join(v_letters)},{''.join(u_letters)}->{''.join(kept)}"
    text = f"einsum('{subscripts}', {v.text}, {u.text})"
    return Expr(text, tuple(names[c] for c in kept), v.scale * u.scale * summed)


def _reduction(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """``sum``/``mean``/``logsumexp`` over one axis, a tuple or all, with
    ``keepdims=True`` or not."""
    e = _operand(draw, draft, depth)
    if e is None:
        return None
    kind = draw(st.sampled_from(("sum", "mean", "logsumexp")))
    if e.ndim == 0 or draw(st.integers(0, 4)) == 0:
        chosen = list(range(e.ndim))
        arguments = ""
    else:
        count = draw(st.integers(1, min(2, e.ndim)))
        chosen = draw(st.permutations(range(e.ndim)))[:count]
        written = [_axis_text(draw, a, e.ndim) for a in chosen]
        axis = written[0] if len(written) == 1 else "(" + ", ".join(written) + ")"
        arguments = f", axis={axis}"
    keepdims = e.ndim > 0 and draw(st.booleans())
    if keepdims:
        arguments += ", keepdims=True"
        axes = tuple(KEPT if n in chosen else a for n, a in enumerate(e.axes))
    else:
        axes = tuple(a for n, a in enumerate(e.axes) if n not in chosen)
    count = math.prod(draft.size(e.axes[n]) for n in chosen)
    scale = {"sum": e.scale * count, "mean": e.scale}.get(kind, e.scale + count)
    return Expr(f"{kind}({e.text}{arguments})", axes, scale)


def _keepdims(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """A kept reduction broadcast back against its operand: a centring, a stable
    softmax, a normalization, or a layer norm (a kept mean inside a kept mean)."""
    e = _operand(draw, draft, depth, lambda e: e.ndim > 0)
    if e is None:
        return None
    axis = _axis_text(draw, draw(st.integers(0, e.ndim - 1)), e.ndim)
    if draw(st.booleans()):
        eps = draw(st.sampled_from(("1", "0.1")))
        text = _form(draw(st.sampled_from(LAYER_NORMS)), e, axis=axis, eps=eps)
        return Expr(text, e.axes, 2 * math.sqrt(max(draft.size(a) for a in e.axes)))
    text = _form(draw(st.sampled_from(KEEPDIMS)), e, axis=axis)
    return Expr(text, e.axes, 2 * e.scale + 2)


def _normalizer(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """``softmax``/``log_softmax``/``logsumexp`` over an axis, used in any position:
    alone, as an operand of ``*``, inside ``@``, inside a function, reduced again."""
    e = _operand(draw, draft, depth, lambda e: e.ndim > 0)
    if e is None:
        return None
    kind = draw(st.sampled_from(("softmax", "log_softmax", "logsumexp")))
    position = draw(st.integers(0, e.ndim - 1))
    axes = e.axes
    if kind == "logsumexp":
        axis = _axis_text(draw, position, e.ndim)
        if draw(st.booleans()):
            text = f"logsumexp({e.text}, axis={axis}, keepdims=True)"
            axes = tuple(KEPT if n == position else a for n, a in enumerate(axes))
        else:
            text = f"logsumexp({e.text}, axis={axis})"
            axes = axes[:position] + axes[position + 1 :]
        scale = e.scale + draft.size(e.axes[position])
    else:
        scale = 1.0 if kind == "softmax" else 2 * e.scale + 2
        if draw(st.booleans()):
            text = f"{kind}({e.text})"  # NumPy's default: the last axis
        else:
            axis = _axis_text(draw, position, e.ndim)
            text = f"{kind}({e.text}, axis={axis})"
    found = Expr(text, axes, scale)
    where = draw(st.sampled_from(("alone", "product", "matmul", "function", "reduced")))
    if where == "product":
        u = _partner(draw, draft, found, depth)
        axes = _broadcast(found.axes, u.axes)
        assert axes is not None
        pair = (found, u) if draw(st.booleans()) else (u, found)
        text = f"{pair[0].p} * {pair[1].p}"
        return Expr(text, axes, found.scale * u.scale)
    if where == "matmul" and found.weighable and draft.axes:
        out = draw(st.sampled_from(draft.axes))
        weight = draft.parameter(draw, (out, found.axes[-1]), "W")
        return Expr(f"{found.p} @ {weight.text}.T", found.axes[:-1] + (out,), scale)
    if where == "function":
        allowed = [u for u in UNARY if found.scale <= u[2]]
        template, function, _ = draw(st.sampled_from(allowed))
        return Expr(_form(template, found), found.axes, function(found.scale))
    if where == "reduced" and found.ndim > 0:
        reduced = draw(st.integers(0, found.ndim - 1))
        again = draw(st.sampled_from(("sum", "mean", "logsumexp")))
        axis = _axis_text(draw, reduced, found.ndim)
        left = found.axes[:reduced] + found.axes[reduced + 1 :]
        count = draft.size(found.axes[reduced])
        return Expr(f"{again}({found.text}, axis={axis})", left, found.scale * count)
    return found


def _index(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr | None:
    """Integer indices (one or two) with full slices, of a name or of a formula."""
    least = draw(st.integers(1, 2))
    e = _operand(  # of a formula more often than other operations are
        draw, draft, depth + 1, lambda e: sum(a != BATCH for a in e.axes) >= least
    )
    if e is None:
        return None
    positions = [n for n, a in enumerate(e.axes) if a != BATCH]
    count = draw(st.integers(1, min(2, len(positions))))
    chosen = sorted(draw(st.permutations(positions))[:count])
    items = [":"] * e.ndim
    for n in chosen:
        size = draft.size(e.axes[n])
        items[n] = str(draw(st.integers(-size, size - 1)))
    last = max(chosen) + 1
    if draw(st.booleans()):
        items = items[:last]
    axes = tuple(a for n, a in enumerate(e.axes) if n not in chosen)
    return Expr(f"{e.p}[{', '.join(items)}]", axes, e.scale)


EXPRESSIONS = (
    _unary,
    _unary,
    _unary,
    _binary,
    _binary,
    _linear,
    _linear,
    _gate,
    _gate,
    _vector,
    _vector,
    _matmul,
    _attention,
    _attention,
    _transpose,
    _einsum,
    _reduction,
    _reduction,
    _reduction,
    _keepdims,
    _normalizer,
    _normalizer,
    _index,
    _index,
)
#: What a spec of scalars can use.
SCALAR_EXPRESSIONS = (_unary, _binary, _binary, _reduction)


def _expression(draw: st.DrawFn, draft: _Draft, depth: int) -> Expr:
    """A formula of up to ``depth + 1`` operations deep over the names above."""
    table = SCALAR_EXPRESSIONS if draft.kind == "scalar" else EXPRESSIONS
    for _ in range(3):
        e = draw(st.sampled_from(table))(draw, draft, depth)
        if e is not None and len(e.text) <= LONGEST and e.scale <= LARGEST:
            return e
    e = draft.name(draw, lambda e: e.scale <= LARGEST)
    assert e is not None  # an input or the first equation
    return Expr(f"tanh({e.text})", e.axes, 1.0)


# --- chains of equations -------------------------------------------------------------


def _equation(draw: st.DrawFn, draft: _Draft) -> list[Expr]:
    depth = draw(st.sampled_from((0, 1, 1, 2, 2)))
    return [_expression(draw, draft, depth)]


def _layer_norm(draw: st.DrawFn, draft: _Draft) -> list[Expr]:
    """A layer norm over named steps: the mean a value of its own (or inline), the
    variance one (or inline), then the normalized value, used below."""
    v = _operand(draw, draft, 1, lambda e: e.ndim > 0 and len(e.text) <= 200)
    if v is None:
        return _equation(draw, draft)
    axis = _axis_text(draw, draw(st.integers(0, v.ndim - 1)), v.ndim)
    kept = tuple(
        KEPT if str(n) == axis or str(n - v.ndim) == axis else a
        for n, a in enumerate(v.axes)
    )
    steps = []
    mean = Expr(f"mean({v.text}, axis={axis}, keepdims=True)", kept, v.scale)
    if draw(st.booleans()):
        steps.append(mean)
        mean = Expr(f"v{len(draft.equations)}", kept, v.scale)
    centred = Expr(f"{v.p} - {mean.p}", v.axes, 2 * v.scale)
    if draw(st.booleans()):
        steps.append(centred)
        centred = Expr(
            f"v{len(draft.equations) + len(steps) - 1}", v.axes, centred.scale
        )
    variance = Expr(f"mean({centred.p}**2, axis={axis}, keepdims=True)", kept, 1.0)
    if draw(st.booleans()):
        steps.append(variance)
        variance = Expr(f"v{len(draft.equations) + len(steps) - 1}", kept, 1.0)
    eps = draw(st.sampled_from(("1", "0.1", "1e-3")))
    bound = 2 * math.sqrt(max(draft.size(a) for a in v.axes))
    steps.append(Expr(f"{centred.p} / sqrt({variance.text} + {eps})", v.axes, bound))
    return steps


def _attention_chain(draw: st.DrawFn, draft: _Draft) -> list[Expr]:
    """Attention over named steps: the scores, the weights, the mix."""
    e = draft.name(draw, lambda e: e.ndim >= 2 and e.weighable and KEPT not in e.axes)
    if e is None or not draft.axes:
        return _equation(draw, draft)
    head = draw(st.sampled_from(draft.axes))
    wq = draft.parameter(draw, (head, e.axes[-1]), "W")
    wk = draft.parameter(draw, (head, e.axes[-1]), "W")
    n = len(draft.equations)
    q = Expr(f"{e.text} @ {wq.text}.T", e.axes[:-1] + (head,), 1.5 * e.scale)
    k = Expr(f"{e.text} @ {wk.text}.T", q.axes, q.scale)
    steps = [q, k]
    transposed = f"v{n + 1}.T" if e.ndim == 2 else f"swapaxes(v{n + 1}, -1, -2)"
    scores = f"v{n} @ {transposed} / sqrt({head})"
    axes = e.axes[:-1] + (e.axes[-2],)
    steps.append(Expr(scores, axes, q.scale**2 * draft.size(head)))
    weights = f"softmax(v{n + 2}, axis=-1)"
    if draw(st.booleans()):
        steps.append(Expr(weights, axes, 1.0))
        weights = f"v{n + 3}"
    steps.append(Expr(f"{weights} @ {e.text}", e.axes, e.scale))
    return steps


STEPS = (_equation, _equation, _equation, _equation, _layer_norm, _attention_chain)


def _first(draw: st.DrawFn, draft: _Draft) -> Expr:
    """The first equation: a parameter applied to the first input, as a network
    starts (a linear map where the input has a weighable axis)."""
    x = next(iter(draft.values.values()), None)
    if x is not None and x.weighable:
        draft_values = dict(draft.values)
        draft.values = {x.text: x}
        found = _linear(draw, draft, 0)
        draft.values = draft_values
        assert found is not None
        return found
    a = draft.parameter(draw, (), "a")
    if x is None:  # no inputs: parameters only, e.g. 2 * a + 2 + a
        c = draft.parameter(draw, (), "a")
        return Expr(f"2 * {a.text} + 2 + {c.text}", (), 15.0)
    return Expr(
        f"{x.p} * {a.text} + {draft.parameter(draw, (), 'a').text}", x.axes, 12.0
    )


def _sizes(draw: st.DrawFn) -> dict[str, int]:
    """All distinct, or two of them equal."""
    if draw(st.booleans()):
        values = draw(st.permutations(range(1, 6)))[: len(AXES)]
    else:
        values = [draw(st.integers(1, 4)) for _ in AXES]
        i, j = draw(
            st.lists(st.integers(0, len(AXES) - 1), min_size=2, max_size=2, unique=True)
        )
        values[j] = values[i]
    return dict(zip(AXES, values, strict=True))


def _inputs(draw: st.DrawFn, kind: str) -> dict[str, tuple[str, ...]]:
    if kind == "scalar":
        count = draw(st.integers(0, 2))
        return {name: () for name in ("x", "s")[:count]}
    rank = draw(st.integers(1, 3))
    axes = tuple(draw(st.permutations(AXES)))
    inputs: dict[str, tuple[str, ...]] = {}
    if kind == "batched":
        inputs["x"] = (BATCH, *axes[: rank - 1])
        if draw(st.booleans()):
            inputs["z"] = (BATCH, draw(st.sampled_from(AXES)))
    else:
        inputs["x"] = axes[:rank]
        if draw(st.booleans()):
            inputs["z"] = (draw(st.sampled_from(AXES)),)
    extra = draw(st.integers(0, 3))
    if extra == 1:
        inputs["c"] = (draw(st.sampled_from(AXES)),)  # no batch axis in a batched spec
    elif extra == 2:
        inputs["s"] = ()
    return inputs


@st.composite
def equation_specs(draw: st.DrawFn, max_equations: int = 8) -> str:
    """A random equation spec, as TOML text; its ``loss`` is a scalar."""
    kind = draw(st.sampled_from(("batched",) * 3 + ("unbatched",) * 2 + ("scalar",)))
    if kind == "scalar":
        sizes = {} if draw(st.booleans()) else {"m": draw(st.integers(1, 4))}
    else:
        sizes = _sizes(draw)
    inputs = _inputs(draw, kind)
    draft = _Draft(kind, sizes, inputs)
    draft.values = {n: Expr(n, a, 3.0) for n, a in inputs.items()}
    count = draw(st.sampled_from(range(1, max_equations + 1)))
    steps = [_first(draw, draft)]
    while True:
        for e in steps:
            name = f"v{len(draft.equations)}"
            draft.equations[name] = e.text
            draft.values[name] = Expr(name, e.axes, e.scale)
        if len(draft.equations) >= count:
            break
        steps = draw(st.sampled_from(STEPS))(draw, draft)
    last = name
    others = [v for v in draft.equations if v != last]
    chosen = (
        draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
        if others
        else []
    )
    terms = [f"mean({last}**2)"] + [f"mean({v})" for v in chosen]
    used = _used(draft.equations)
    if draw(st.booleans()):
        weight = draw(st.sampled_from(sorted(p for p in draft.parameters if p in used)))
        terms.append(f"0.01 * sum({weight}**2)")
    draft.equations["loss"] = " + ".join(terms)
    # a parameter drawn into a formula that was then not used has no gradient
    draft.parameters = {k: v for k, v in draft.parameters.items() if k in used}
    if draw(st.booleans()):  # as a user writes it: no redundant parentheses
        draft.equations = {
            k: ast.unparse(ast.parse(v, mode="eval"))
            for k, v in draft.equations.items()
        }
    return _toml(draft, tables=draw(st.booleans()))


def _used(equations: dict[str, str]) -> set[str]:
    return {
        node.id
        for text in equations.values()
        for node in ast.walk(ast.parse(text, mode="eval"))
        if isinstance(node, ast.Name)
    }


@st.composite
def equation_cases(draw: st.DrawFn, max_equations: int = 8) -> tuple[str, int]:
    """A drawn spec and a batch size: equal to one of the spec's sizes, or to none."""
    text = draw(equation_specs(max_equations))
    sizes = set(tomllib.loads(text).get("sizes", {}).values())
    equal = sorted(sizes)
    distinct = [b for b in range(1, BATCH_ESTIMATE + 1) if b not in sizes]
    if equal and draw(st.booleans()):
        return text, draw(st.sampled_from(equal))
    return text, draw(st.sampled_from(distinct))


def _toml(draft: _Draft, tables: bool = True) -> str:
    """The draft as an equation spec (JSON's strings and lists are TOML's too);
    without ``tables``, an empty ``[sizes]`` or ``[inputs]`` is left out."""
    lines = ['name = "drawn"']
    for title, table in (
        ("sizes", draft.sizes),
        ("inputs", draft.inputs),
        ("parameters", draft.parameters),
    ):
        if table or tables or title == "parameters":
            lines += ["", f"[{title}]"]
        if title == "sizes":
            lines += [f"{k} = {v}" for k, v in table.items()]
        else:
            lines += [f"{k} = {json.dumps(list(v))}" for k, v in table.items()]
    lines += ["", "[equations]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in draft.equations.items()]
    return "\n".join(lines) + "\n"
