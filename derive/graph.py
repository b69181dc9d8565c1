"""The core: a graph of named values, each knowing its role, its axes and its definition.

Both spec forms build one :class:`Graph`: ``[[layers]]`` specs (:mod:`derive.network`)
and equation specs (:mod:`derive.equations`). A value is an array (or a scalar) with
any number of axes; each axis has a name, a symbolic size and whether it is the batch
axis. A computed value's definition is written in index form, in the value's own
index symbols (one per axis), for example
``h0[b, i] = relu(Sum(x[b, k]*W0[i, k], (k, 0, d_in - 1)) + b0[i])``. Sizes stay
symbolic, so the derivation costs the same at every size.

Nothing downstream parses a name: printers read :attr:`Value.role`,
:attr:`Value.axes` and :attr:`Value.latex`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

#: The symbolic size of the batch axis.
N_BATCH = sp.Symbol("n_batch", integer=True, positive=True)


class Role(enum.Enum):
    """What a value is to the derivation."""

    INPUT = "input"  # given at run time; no gradient
    PARAMETER = "parameter"  # given; the gradient is taken for it
    VALUE = "value"  # computed from the ones before it
    NORMALIZER = "log-normalizer"  # log(sum(exp(z))), computed stably
    LOSS = "loss"  # the scalar that is differentiated


#: Roles whose values are computed from a definition.
COMPUTED = (Role.VALUE, Role.NORMALIZER, Role.LOSS)


@dataclass(frozen=True)
class Axis:
    """One axis of a value: its name (a size name, or ``batch``), its symbolic size."""

    name: str
    size: sp.Expr
    batch: bool = False


def batch_axis() -> Axis:
    return Axis("batch", N_BATCH, batch=True)


@dataclass(frozen=True)
class Value:
    """A named array (or scalar) of the graph.

    ``indices`` name the element that ``definition`` defines, one per axis.
    ``latex`` is how documents write it; ``gradient`` the name of its gradient in the
    generated code; ``doc`` a short description for comments.
    """

    name: str
    role: Role
    axes: tuple[Axis, ...]
    indices: tuple[sp.Symbol, ...]
    definition: sp.Expr | None = None
    latex: str = ""
    gradient: str = ""
    doc: str = ""
    #: [[layers]] only: the layer it belongs to and its activation, for the diagram.
    layer: int | None = None
    activation: str | None = None

    @property
    def sizes(self) -> tuple[sp.Expr, ...]:
        return tuple(axis.size for axis in self.axes)

    @property
    def base(self) -> sp.Symbol | sp.IndexedBase:
        if not self.axes:
            return sp.Symbol(self.name, real=True)
        return sp.IndexedBase(self.name, shape=self.sizes, real=True)

    def at(self, *indices: sp.Expr) -> sp.Expr:
        """The element at ``indices`` (the scalar itself when there are none)."""
        if len(indices) != len(self.axes):
            raise ValueError(f"{self.name} takes {len(self.axes)} indices")
        base = self.base
        return base[indices] if isinstance(base, sp.IndexedBase) else base

    @property
    def element(self) -> sp.Expr:
        """The element named by :attr:`indices`."""
        return self.at(*self.indices)

    @property
    def batched(self) -> bool:
        return bool(self.axes) and self.axes[0].batch

    @property
    def has_units(self) -> bool:
        """Whether it has an axis besides the batch axis."""
        return len(self.axes) > int(self.batched)

    def uses(self, other: Value) -> bool:
        """Whether this value's definition reads ``other`` directly."""
        return self.definition is not None and self.definition.has(other.base)


@dataclass(frozen=True)
class Graph:
    """Every named value in topological order, and the numeric sizes.

    ``spec`` is the spec it was built from; ``functions`` the elementwise functions it
    defines for itself (activations), by code name.
    """

    name: str
    spec: Any
    nodes: tuple[Value, ...]
    sizes: dict[sp.Symbol, int]
    functions: dict[str, Any] = field(default_factory=dict)
    #: LaTeX of each size symbol, where it differs from SymPy's default.
    size_latex: Mapping[str, str] = field(default_factory=dict)
    #: Equation specs: where each auxiliary value (``h0_in``, ``weights_lse``) is in
    #: its equation's formula, by equation: ``{"h0": {(1, 5, 1, 20, "in"): "h0_in"}}``
    #: (the span of the part in the parsed text, and what was named there).
    sites: Mapping[str, Mapping[tuple[int, int, int, int, str], str]] = field(
        default_factory=dict
    )

    def __iter__(self) -> Iterator[Value]:
        return iter(self.nodes)

    def of_role(self, *roles: Role) -> tuple[Value, ...]:
        return tuple(v for v in self.nodes if v.role in roles)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return self.of_role(Role.INPUT)

    @property
    def parameters(self) -> tuple[Value, ...]:
        return self.of_role(Role.PARAMETER)

    @property
    def computed(self) -> tuple[Value, ...]:
        """Values computed before the loss (normalizers included), in order."""
        return self.of_role(Role.VALUE, Role.NORMALIZER)

    @property
    def loss_value(self) -> Value:
        (loss,) = self.of_role(Role.LOSS)
        return loss

    @property
    def loss(self) -> sp.Expr:
        definition = self.loss_value.definition
        assert definition is not None
        return definition

    @property
    def batched(self) -> bool:
        return any(v.batched for v in self.inputs)

    @property
    def widths(self) -> dict[sp.Symbol, int]:
        """The numeric sizes, by size symbol (the batch size is not among them)."""
        return self.sizes

    def array(self, name: str) -> Value:
        for value in self.nodes:
            if value.name == name:
                return value
        raise KeyError(name)

    def users(self, value: Value) -> tuple[Value, ...]:
        """The values (and the loss) whose definitions read ``value`` directly."""
        return tuple(u for u in self.nodes if u.uses(value))

    def edges(self) -> Iterable[tuple[Value, Value]]:
        """``(source, user)`` for every direct use, in topological order of users."""
        for user in self.nodes:
            for source in self.nodes:
                if user.uses(source):
                    yield source, user

    def sample_shape(self, array: Value) -> tuple[int, ...]:
        """Numeric shape of ``array`` in a graph without a batch axis."""
        if array.batched:
            raise ValueError(f"{array.name} has a batch axis")
        return tuple(self._size(s) for s in array.sizes)

    def shape(self, array: Value) -> tuple[int | str, ...]:
        """Numeric shape of ``array``; the batch axis is ``"batch"``."""
        return tuple(
            "batch" if axis.batch else self._size(axis.size) for axis in array.axes
        )

    def _size(self, size: sp.Expr) -> int:
        return int(size.xreplace(self.sizes))
