"""``derive audit``: which function of a hand-written gradient module is wrong, where.

Finite differences say "the gradient of W0 is off". The audit says which function
holds the slip: every function of the module is called twice at every point, once as
written and once isolated, with each ``d_loss_d_*`` function it calls replaced by
derive's and the dict of values taken from derive's forward pass. Wrong when isolated:
the slip is in that function. Right isolated but wrong as written: it only inherits
the slip from a function it calls, and the report names which.

The functions to expect come from the derivation, not from a list of names: the
forward function is the module's (``mlp`` for ``[[layers]]`` specs, ``forward`` for
equation specs: :class:`Form` holds what differs between the two), and there is one
``d_loss_d_*`` function per gradient of the derivation, with the arguments derive's
own module gives it. derive's module is the reference: it is generated in memory for
the spec, and its functions are what "right" means (torch and finite differences
agree with them; see the tests).

The user's module runs in a child process (:mod:`derive.audit_worker`) with a time
limit, so that an infinite loop or ``sys.exit`` in it is reported instead of hanging
or ending the audit. It runs as the user's own code, not in a sandbox.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.abc
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import tomllib
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import sympy as sp

from derive import audit_worker
from derive.api import build
from derive.derivation import Derivation
from derive.document import chain_rule, gradient_math
from derive.equations import EquationSpec
from derive.errors import DeriveError
from derive.graph import Graph, Role, Value
from derive.network import Network
from derive.printing.text import text
from derive.python_module import (
    EquationContext,
    ModuleContext,
    equation_module_context,
    module_context,
)
from derive.render import derive_spec
from derive.spec import NetworkSpec, load_spec

Status = Literal["ok", "wrong", "inherits", "convention", "error", "missing"]
#: Statuses that pass: exit status 0, ``Report.ok``.
PASSING = ("ok", "convention")
DEFAULT_POINTS = 200
DEFAULT_RTOL = 1e-7
DEFAULT_TIMEOUT = 10.0
#: Units per layer given their own dead and kink points; wider layers share the rest.
CRAFTED_UNITS = 4
#: Numbers the activation helpers are called at, besides every pre-activation met.
HELPER_INPUTS = (0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 20.0, -20.0)


class AuditError(DeriveError):
    """The module cannot be audited at all: missing, or it fails to import."""


@dataclass(frozen=True)
class Point:
    """A point the functions are called at: ``x``, every parameter, ``y_observed``."""

    arrays: dict[str, Any]
    label: str
    kink: bool  # some pre-activation of a kinked activation is exactly 0 here


@dataclass(frozen=True)
class Failure:
    """Where a function fails, and what it should have returned."""

    point: Point | None  # None for a helper, called on one number
    argument: float | None  # the helper's number
    expected: Any
    actual: Any
    error: float | None
    note: str | None  # "returns shape (3, 1), expected (3,)", or the exception


@dataclass(frozen=True)
class SourceLine:
    path: str
    line: int
    text: str


@dataclass(frozen=True)
class StepText:
    """derive's step for a function: index form lines, matrix form, and LaTeX."""

    lines: tuple[str, ...]  # plain text: "d_loss_d_r1[i] = ...", then "= ..."
    matrix: str  # the NumPy line it becomes
    latex_left: str
    latex_lines: tuple[str, ...]
    latex_matrix: str


@dataclass(frozen=True)
class FunctionReport:
    name: str
    role: Literal["forward", "helper", "loss", "gradient", "generic"]
    status: Status
    max_rel_error: float | None = None
    through: tuple[str, ...] = ()  # inherits (or a convention) from these
    failure: Failure | None = None
    error: str | None = None  # the exception, one line
    convention: str | None = None  # "relu'(0) = 1; derive takes relu'(0) = 0"
    source: SourceLine | None = None
    step: StepText | None = None
    detail: str | None = None
    reads: dict[str, Any] = field(
        default_factory=dict
    )  # derive's numbers, at the point

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "status": self.status,
            "max_rel_error": _json_number(self.max_rel_error),
            "through": list(self.through),
        }
        if self.failure is not None:
            entry["point"] = (
                _jsonable(self.failure.point.arrays)
                if self.failure.point is not None
                else {"x": self.failure.argument}
            )
            if self.failure.point is not None:
                entry["point_label"] = self.failure.point.label
            entry["expected"] = _jsonable(self.failure.expected)
            entry["actual"] = _jsonable(self.failure.actual)
            if self.failure.note:
                entry["note"] = self.failure.note
        if self.error:
            entry["error"] = self.error
        if self.convention:
            entry["convention"] = self.convention
        if self.detail:
            entry["detail"] = self.detail
        if self.source is not None:
            entry["source"] = f"{self.source.path}:{self.source.line}"
        if self.step is not None:
            entry["step"] = {"index": list(self.step.lines), "matrix": self.step.matrix}
        return entry


@dataclass(frozen=True)
class Report:
    """The audit of one module against one spec."""

    spec: str
    module: str
    network: str
    points: int
    functions: dict[str, FunctionReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every function is ``ok`` or follows another ``convention``."""
        return all(f.status in PASSING for f in self.functions.values())

    @property
    def statuses(self) -> dict[str, Status]:
        return {name: f.status for name, f in self.functions.items()}

    def __getitem__(self, name: str) -> FunctionReport:
        return self.functions[name]

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "module": self.module,
            "network": self.network,
            "points": self.points,
            "ok": self.ok,
            "functions": {n: f.as_json() for n, f in self.functions.items()},
        }

    def text(self) -> str:
        return _format(self, markdown=False)

    def markdown(self) -> str:
        return _format(self, markdown=True)


# The reference: derive's module for the spec, in memory ------------------------------

#: In a call's argument list (:attr:`Form.calls`): the dict of parameters.
PARAMS = audit_worker.PARAMS


@dataclass(frozen=True)
class Form:
    """Where the two spec forms differ, for the audit; everything else reads the
    graph. A ``[[layers]]`` spec's module is the problem set's (``mlp(x, W0, W1, W2)``,
    ``loss(y_predicted, y_observed)``, ``gradients(params, x, y)``); an equation
    spec's takes ``params`` and its inputs in every call (``forward(params, x, y)``,
    ``loss(params, x, y)``, ``gradients(params, x, y)``). The ``d_loss_d_*`` functions
    of both are called the same way: the dict of values, then arrays by name."""

    #: The forward function: it returns the dict of values.
    forward: str
    #: The names of the dict the forward function returns.
    values: tuple[str, ...]
    #: The arrays a point gives (inputs and parameters), in the order shown.
    given: tuple[Value, ...]
    #: How ``forward``, ``loss`` and ``gradients`` are called: positional arguments,
    #: each the name of a given array or a forward value, or :data:`PARAMS`; None for
    #: arguments matched by name (the problem set's ``mlp``).
    calls: Mapping[str, tuple[str, ...] | None]
    #: The target, drawn as small integers (``y_observed``); None where no value is
    #: one by role (equation specs: every input is drawn alike).
    target: Value | None
    #: Whether the target holds one-hot class labels.
    classes: bool
    #: The spec's worked point, by array name, or None.
    worked: Mapping[str, Any] | None


def _layers_form(network: Network, spec: NetworkSpec) -> Form:
    inputs = (network.array("x").name, network.observed.name)
    worked = None
    if spec.worked_point is not None:
        # a [[layers]] worked point calls the target y
        worked = {
            ("y_observed" if k == "y" else k): v for k, v in spec.worked_point.items()
        }
    return Form(
        forward=network.forward_function,
        values=tuple(v.name for v in network.values),
        given=(network.array("x"), *network.parameters, network.observed),
        calls={
            "forward": None,
            "loss": (network.output.name, network.observed.name),
            "gradients": (PARAMS, *inputs),
        },
        target=network.observed,
        classes=network.kind.kind == "softmax_cross_entropy"
        and network.observed.has_units,
        worked=worked,
    )


def _equation_form(graph: Graph, spec: EquationSpec) -> Form:
    inputs = tuple(v.name for v in graph.inputs)
    arguments = (PARAMS, *inputs)
    return Form(
        forward="forward",
        values=tuple(v.name for v in (*graph.computed, graph.loss_value)),
        given=(*graph.inputs, *graph.parameters),
        calls={"forward": arguments, "loss": arguments, "gradients": arguments},
        target=None,
        classes=False,
        worked=spec.worked_point,
    )


@dataclass(frozen=True)
class Reference:
    """Everything derive knows about the spec that the audit needs."""

    spec: NetworkSpec | EquationSpec
    derivation: Derivation
    context: ModuleContext | EquationContext
    source: str  # derive's generated module, as text
    module: types.ModuleType
    form: Form

    @property
    def network(self) -> Graph:
        return self.derivation.network


def _reference(spec_path: Path) -> Reference:
    """derive's reference for a spec file; kept while the file is unchanged, so that
    an autograder auditing a class of modules derives once."""
    stat = spec_path.stat()
    return _cached_reference(
        spec_path.resolve(), spec_path.as_posix(), stat.st_mtime_ns
    )


@functools.lru_cache(maxsize=8)
def _cached_reference(path: Path, shown: str, modified: int) -> Reference:
    spec = load_spec(path)
    given: Path | dict[str, Any] = path
    if isinstance(spec, NetworkSpec) and spec.style == "unrolled":
        # The reference needs the problem set's d_loss_d_* functions, which only the
        # vectorized style has; with the problem set's shapes both styles take and
        # return the same shapes, so the vectorized twin stands for the unrolled one.
        if spec.shapes != "problem_set":
            raise AuditError(
                f"{shown}: style: derive audit takes an unrolled spec only with "
                'shapes = "problem_set"; audit against the vectorized spec instead'
            )
        spec = dataclasses.replace(spec, style="vectorized")
        given = dict(
            tomllib.loads(path.read_text(encoding="utf-8")), style="vectorized"
        )
    # derive's module, built in memory (nothing is written); the child process runs
    # the same source, read back from it.
    # A module at run time; build's type (GeneratedModule) is the view of its users.
    module = cast(types.ModuleType, build(given, source=shown))
    loader = module.__loader__
    assert isinstance(loader, importlib.abc.InspectLoader)
    source = loader.get_source(module.__name__)
    assert source is not None
    derivation = derive_spec(spec)
    graph = derivation.network
    context: ModuleContext | EquationContext
    # The one place the two forms part: the module's API, and the context it printed.
    if isinstance(spec, EquationSpec):
        context = equation_module_context(derivation)
        form = _equation_form(graph, spec)
    else:
        assert isinstance(graph, Network)
        context = module_context(derivation)
        form = _layers_form(graph, spec)
    return Reference(spec, derivation, context, source, module, form)


# Roles: which functions to expect, from the graph ------------------------------------


def _gradient_functions(reference: Reference) -> list[dict[str, Any]]:
    """The problem set's ``d_loss_d_*`` functions, in the order derive computes them."""
    return [
        {"name": f.name, "arguments": list(f.arguments)}
        for f in reference.context.partials
    ]


@dataclass(frozen=True)
class _Applied:
    """An elementwise function applied to a named value: ``relu`` of ``r1`` makes
    ``h1``; ``abs`` or ``maximum(..., 0)`` of ``h0_in`` too. Found in the graph's
    definitions, not by name."""

    pre: Value  # its argument (the pre-activation)
    made: Value  # the value whose definition applies the function to it
    helper: str | None  # the module's function for it (relu), if any
    kink: bool  # whether it has a kink where ``pre`` is 0


def _applied_function(
    graph: Graph, application: sp.Basic
) -> tuple[sp.Expr, str | None, bool] | None:
    """The argument of ``application``, the module's helper computing it (``relu``;
    None for ``abs``, ``maximum``, ``minimum``) and whether it has a kink where the
    argument is 0; None for what is neither a helper nor kinked. A helper has a kink
    where its derivative steps (a Heaviside step, or a Piecewise: ``leaky_relu``)."""
    if isinstance(application, sp.Abs):
        return application.args[0], None, True
    if isinstance(application, (sp.Max, sp.Min)) and len(application.args) == 2:
        first, second = application.args
        if first.is_zero:
            return second, None, True
        if second.is_zero:
            return first, None, True
        return first - second, None, True
    for name, function in graph.functions.items():
        if type(application) is function:
            kink = function.derivative.formula.has(sp.Heaviside, sp.Piecewise)
            return application.args[0], name, kink
    return None


def _applications(graph: Graph) -> list[_Applied]:
    """Every elementwise helper or kink whose argument is a named value at the
    indices of the value it makes (``relu(r1[i])`` in ``h1[i]``). One whose argument
    is not a named value (``abs(y_predicted - y)``, ``relu(x*W0)``) is not among
    them: no point is built for it, and it is checked at the other points."""
    named = {v.name: v for v in graph}
    found: list[_Applied] = []
    for made in graph.computed:
        if made.definition is None:
            continue
        for application in sp.preorder_traversal(made.definition):
            applied = _applied_function(graph, application)
            if applied is None:
                continue
            argument, helper, kink = applied
            pre = None
            if isinstance(argument, sp.Indexed):
                if tuple(argument.indices) == made.indices:
                    pre = named.get(str(argument.base.label))
            elif isinstance(argument, sp.Symbol) and not made.axes:
                pre = named.get(argument.name)
            if pre is None:
                continue
            entry = _Applied(pre, made, helper, kink)
            if entry not in found:
                found.append(entry)
    return found


def _kinks(graph: Graph) -> list[_Applied]:
    """The applications with a kink (``relu``, ``abs``, not ``tanh``)."""
    return [a for a in _applications(graph) if a.kink]


def _kinked_activations(network: Graph) -> list[str]:
    """The code names of the module's helpers with a kink, ``relu``."""
    return sorted({k.helper for k in _kinks(network) if k.helper})


def _conventions(reference: Reference) -> list[dict[str, Any]]:
    """Other values at a kink than derive's: each one-sided limit, and their mean."""
    names = _kinked_activations(reference.network)
    conventions = []
    everywhere: dict[str, dict[str, float]] = {"left": {}, "right": {}}
    for name in names:
        derivative = getattr(reference.module, f"{name}_derivative")
        ours = float(derivative(0.0))
        left, right = float(derivative(-1e-300)), float(derivative(1e-300))
        for value in dict.fromkeys((left, right, (left + right) / 2)):
            if value != ours:
                conventions.append(
                    {
                        "label": f"{name}'(0) = {_number(value)}",
                        "overrides": {f"{name}_derivative": value},
                    }
                )
        everywhere["left"][f"{name}_derivative"] = left
        everywhere["right"][f"{name}_derivative"] = right
    if len(names) > 1:
        for side in ("left", "right"):
            conventions.append(
                {
                    "label": ", ".join(
                        f"{n.removesuffix('_derivative')}'(0) = {_number(v)}"
                        for n, v in everywhere[side].items()
                    ),
                    "overrides": everywhere[side],
                }
            )
    return conventions


def _derive_convention(reference: Reference) -> str:
    parts = []
    for name in _kinked_activations(reference.network):
        value = float(getattr(reference.module, f"{name}_derivative")(0.0))
        parts.append(f"{name}'(0) = {_number(value)}")
    return ", ".join(parts) + (" (as torch)" if parts else "")


# Points ---------------------------------------------------------------------------


def _shape(network: Graph, array: Value, batch: int) -> tuple[int, ...]:
    return tuple(batch if s == "batch" else int(s) for s in network.shape(array))


class _Points:
    """The points of an audit, simplest first (the first failing one is reported)."""

    def __init__(self, reference: Reference, count: int, seed: int) -> None:
        self.reference = reference
        self.network = reference.network
        self.form = reference.form
        self.rng = np.random.default_rng(seed)
        self.kinks = _kinks(self.network)
        self.classes = self.form.classes
        points = self._worked()
        points += self._crafted()
        points += self._zero_and_large()
        points += [
            self._point(
                self._random(1 + i % 4 if self.network.batched else 1), "random"
            )
            for i in range(count)
        ]
        self.points = points

    def _point(self, arrays: dict[str, Any], label: str) -> Point:
        arrays = {a.name: arrays[a.name] for a in self.form.given}
        values = self.values(arrays)
        kink = any(np.any(np.asarray(values[k.pre.name]) == 0) for k in self.kinks)
        return Point(arrays, label, bool(kink))

    def values(self, arrays: Mapping[str, Any]) -> dict[str, Any]:
        return _values_of(self.reference, arrays)

    def _target(self, shape: tuple[int, ...], integers: bool) -> np.ndarray:
        if self.classes:
            labels = self.rng.integers(0, shape[-1], size=shape[:-1])
            return np.eye(shape[-1])[labels]
        if integers:
            return self.rng.integers(-3, 4, size=shape).astype(float)
        return self.rng.standard_normal(shape)

    def _random(self, batch: int) -> dict[str, Any]:
        arrays = {}
        for array in self.form.given:
            shape = _shape(self.network, array, batch)
            if array is self.form.target:
                arrays[array.name] = self._target(shape, integers=False)
            else:
                arrays[array.name] = self.rng.standard_normal(shape)
        return arrays

    def _sparse(self, density: float) -> dict[str, Any]:
        """Small integers, most of them 0: points a person can follow by hand."""
        arrays = {}
        for array in self.form.given:
            shape = _shape(self.network, array, 1)
            if array is self.form.target:
                arrays[array.name] = self._target(shape, integers=True)
                continue
            values = self.rng.choice([-2.0, -1.0, 1.0, 2.0], size=shape)
            keep = self.rng.random(shape) < (
                1.0 if array.role is Role.INPUT else density
            )
            arrays[array.name] = np.where(keep, values, 0.0)
        return arrays

    def _worked_arrays(self) -> dict[str, Any] | None:
        worked = self.form.worked
        if worked is None:
            return None
        return {k: np.asarray(v, dtype=float) for k, v in worked.items()}

    def _worked(self) -> list[Point]:
        arrays = self._worked_arrays()
        return [] if arrays is None else [self._point(arrays, "the worked point")]

    def _variants(self) -> list[tuple[str, dict[str, Any]]]:
        """The worked point with one row of one parameter negated, or zeroed: a
        unit turned off, or put exactly at its kink, in numbers the reader knows."""
        worked = self._worked_arrays()
        if worked is None:
            return []
        variants = []
        for parameter in self.network.parameters:
            array = worked[parameter.name]
            for row in range(array.shape[0] if array.ndim else 0):
                for how, factor in (("negated", -1.0), ("set to 0", 0.0)):
                    changed = array.copy()
                    changed[row] *= factor
                    variants.append(
                        (
                            f"the worked point with {parameter.name}[{row}] {how}",
                            dict(worked, **{parameter.name: changed}),
                        )
                    )
        return variants

    def _upstream(
        self, arrays: Mapping[str, Any], values: Mapping[str, Any], value: Value
    ) -> np.ndarray:
        """derive's dL/d(value) at ``arrays``."""
        name = self.reference.derivation.of(value.name).name
        function = getattr(self.reference.module, name)
        supplied = {audit_worker.VALUES: values, **arrays}
        return np.asarray(audit_worker.call(function, supplied), dtype=float)

    def _candidates(
        self,
    ) -> Iterable[tuple[tuple[int, int, float], str, dict[str, Any]]]:
        """Worked-point variants first, then small-integer points, mostly zeros."""
        for label, arrays in self._variants():
            yield (0, 0, 0.0), label, arrays
        size = sum(int(np.prod(_shape(self.network, a, 1))) for a in self.form.given)
        for attempt in range(int(min(400, max(40, 1_000_000 // max(size, 1))))):
            arrays = self._sparse(density=(0.25, 0.5, 0.8)[attempt % 3])
            simplicity = (
                1,
                sum(int(np.count_nonzero(v)) for v in arrays.values()),
                float(sum(np.abs(v).sum() for v in arrays.values())),
            )
            yield simplicity, "", arrays

    def _crafted(self) -> list[Point]:
        """For each unit (the first few of a wide layer) behind a kink: the simplest
        point found where the kink's argument is negative (a dead unit) and where it
        is exactly 0 (at the kink), with gradient flowing to the unit and to another
        one of its layer, so that a slip in its gate shows against numbers that are
        not all 0."""
        wanted: dict[tuple[str, int, str], tuple[Any, str, dict[str, Any]]] = {}
        plain: list[tuple[Any, str, dict[str, Any]]] = []
        # the values the loss reads: no gradient reaches them, none reaches anything
        outputs = [v for v in self.network.computed if self.network.loss_value.uses(v)]
        for simplicity, origin, arrays in self._candidates():
            values = self.values(arrays)
            if not any(np.any(self._upstream(arrays, values, v)) for v in outputs):
                continue  # no gradient at all: nothing can show here
            plain.append((simplicity, origin, arrays))
            for kink in self.kinks:
                pre = kink.pre.name
                numbers = np.asarray(values[pre]).reshape(-1)
                upstream = self._upstream(arrays, values, kink.made).reshape(-1)
                if not np.any(self._upstream(arrays, values, kink.pre)):
                    continue
                for unit in range(min(numbers.size, CRAFTED_UNITS)):
                    number = numbers[unit]
                    kind = "dead" if number < 0 else "kink" if number == 0 else None
                    if kind is None or upstream[unit] == 0:
                        continue
                    key = (pre, unit, kind)
                    if key not in wanted or simplicity < wanted[key][0]:
                        wanted[key] = (simplicity, origin, arrays)
        points = []
        for (pre, unit, kind), (simplicity, origin, arrays) in wanted.items():
            shape = np.shape(self.values(arrays)[pre])
            element = (
                ", ".join(str(i) for i in np.unravel_index(unit, shape))
                if shape
                else ""
            )
            where = f"{pre}[{element}]" if element else pre
            label = (
                f"{where} < 0 (a dead unit)"
                if kind == "dead"
                else f"{where} = 0 (at the kink)"
            )
            label = f"{origin}, {label}" if origin else label
            points.append((simplicity, self._point(arrays, label)))
        plain.sort(key=lambda entry: entry[0])
        for simplicity, origin, arrays in plain[:3]:
            points.append((simplicity, self._point(arrays, origin or "small integers")))
        points.sort(key=lambda entry: entry[0])
        return [point for _, point in points]

    def _zero_and_large(self) -> list[Point]:
        points = []
        base = self._random(1)
        parameters = [p.name for p in self.network.parameters]
        zero = {
            name: (np.zeros_like(value) if name in parameters else value)
            for name, value in base.items()
        }
        points.append(self._point(zero, "every weight 0"))
        for parameter in parameters:
            arrays = dict(base, **{parameter: np.zeros_like(base[parameter])})
            points.append(self._point(arrays, f"{parameter} = 0"))
        target = self.form.target
        large = {
            name: value
            * (
                1.0
                if target is not None and name == target.name and self.classes
                else 30.0
            )
            for name, value in self._random(2 if self.network.batched else 1).items()
        }
        points.append(self._point(large, "large values"))
        return points


def _save(points: Sequence[Point], path: Path) -> None:
    """The points as one ``.npz``: ``{index}/{name}`` arrays, and each kink flag."""
    arrays: dict[str, Any] = {}
    for index, point in enumerate(points):
        for name, value in point.arrays.items():
            arrays[f"{index}/{name}"] = np.asarray(value, dtype=np.float64)
        arrays[f"{index}/__kink__"] = np.asarray(point.kink)
    np.savez(path, **arrays)


# Running the checks -----------------------------------------------------------------


def _request(
    reference: Reference,
    checks: list[str],
    rtol: float,
    points: Sequence[Point],
    timeout: float,
) -> dict[str, Any]:
    network = reference.network
    form = reference.form
    return {
        "reference": reference.source,
        "forward": form.forward,
        "values": list(form.values),
        "given": [a.name for a in form.given],
        "parameters": [p.name for p in network.parameters],
        "calls": {name: how and list(how) for name, how in form.calls.items()},
        "gradients": _gradient_functions(reference),
        "conventions": _conventions(reference),
        # every pre-activation met, and a few more numbers, for relu and its kin
        # simplest first (integers, then small): the first failing one is shown
        "helper_inputs": sorted(
            {*_pre_activations(reference, points[:64]), *HELPER_INPUTS},
            key=lambda number: (not float(number).is_integer(), abs(number), number),
        ),
        "checks": checks,
        "rtol": rtol,
        "timeout": timeout,
    }


def _values_of(reference: Reference, arrays: Mapping[str, Any]) -> dict[str, Any]:
    """derive's forward pass at a point."""
    form = reference.form
    forward = getattr(reference.module, form.forward)
    parameters = [p.name for p in reference.network.parameters]
    values: dict[str, Any] = audit_worker.invoke(
        forward, form.calls["forward"], arrays, parameters
    )
    return values


def _pre_activations(reference: Reference, points: Sequence[Point]) -> list[float]:
    """The pre-activations met at ``points`` (the first elements of each)."""
    names = list(dict.fromkeys(a.pre.name for a in _applications(reference.network)))
    found: set[float] = set()
    for point in points:
        values = _values_of(reference, point.arrays)
        for name in names:
            found.update(float(v) for v in np.asarray(values[name]).reshape(-1)[:16])
    return sorted(found)


def _run_in_process(
    module: types.ModuleType, request: dict[str, Any], points: Sequence[Point]
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    arrays = [dict(p.arrays, __kink__=p.kink) for p in points]
    audit_worker.run(module, request, arrays, messages.append)
    return messages


def _run_in_child(
    path: Path, request: dict[str, Any], points: Sequence[Point], timeout: float
) -> list[dict[str, Any]]:
    """Run the checks in a child process, ``timeout`` seconds for the import and for
    each check. A check that runs out of time, or ends the process, is reported as an
    error and the child is started again without it (its function then raises when
    called), so one infinite loop costs one time limit, not the whole audit."""
    with tempfile.TemporaryDirectory(prefix="derive-audit-") as folder:
        points_file = Path(folder) / "points.npz"
        _save(points, points_file)
        request = dict(
            request,
            module=str(path.resolve()),
            module_name=f"_derive_audited_{path.stem}",
            points=str(points_file),
            hung=[],
        )
        messages: list[dict[str, Any]] = []
        remaining = list(request["checks"])
        imported: dict[str, Any] | None = None
        while True:
            request["checks"] = remaining
            received, stopped = _child(request, timeout, path)
            if imported is None:
                imported = received[0]
                messages.append(imported)
            messages.extend(m for m in received[1:] if m["event"] == "checked")
            done = {
                m["check"] for m in received if m["event"] in ("checked", "skipped")
            }
            remaining = [c for c in remaining if c not in done]
            if stopped is None or not remaining:
                return messages
            # the first check not done is the one that was running
            check = remaining.pop(0)
            messages.append(
                {
                    "event": "checked",
                    "check": check,
                    "result": {"stopped": stopped},
                }
            )
            request["hung"].append(audit_worker.checked_function(check, request))
            if not remaining:
                return messages


def _child(
    request: dict[str, Any], timeout: float, path: Path
) -> tuple[list[dict[str, Any]], str | None]:
    """One child run: its messages, and why it stopped before the end (ran out of
    time, or the process ended: ``os._exit`` or a crash in the module), if it did."""
    command = [sys.executable, "-P", audit_worker.__file__]
    environment = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=environment,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()

        def read(stream: Any = process.stdout) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            process.stdin.write(json.dumps(request))
            process.stdin.close()
        except BrokenPipeError:
            pass
        messages: list[dict[str, Any]] = []
        hung = None
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                hung = "hung"
                break
            if line is None:
                break
            messages.append(json.loads(line))
            if messages[-1]["event"] == "done":
                break
        if hung:
            process.kill()
        process.wait()
        reader.join(timeout=1)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace").strip().splitlines()
    shown = path.as_posix()
    if not messages:
        if hung:
            raise AuditError(
                f"{shown}: importing it did not finish within {timeout:g} s (an "
                "infinite loop at the top level?); --timeout sets the limit"
            )
        last = f": {stderr[-1]}" if stderr else ""
        raise AuditError(
            f"{shown}: the process importing it ended with status "
            f"{process.returncode}{last}"
        )
    if messages[0]["event"] == "import_failed":
        raise AuditError(f"{shown}: importing it failed: {messages[0]['error']}")
    if hung:
        return messages, f"did not return within {timeout:g} s"
    if messages[-1]["event"] != "done":
        return messages, f"ended the process with status {process.returncode}"
    return messages, None


# From outcomes to statuses ---------------------------------------------------------


@dataclass
class _Outcome:
    """One function's outcomes in one mode, summarized."""

    raised: str | None
    bad: bool  # wrong at a point no convention explains
    deviates: bool  # differs somewhere, all explained by a convention
    conventions: set[int] | None  # conventions explaining every deviation
    worst: float
    failure: dict[str, Any] | None


def _summary(result: Mapping[str, Any], rtol: float) -> _Outcome:
    raised, bad, deviates = None, False, False
    conventions: set[int] | None = None
    worst = 0.0
    for outcome in result["outcomes"]:
        if "raised" in outcome:
            raised = raised or outcome["raised"]
            continue
        error = outcome["error"]
        if error <= rtol:
            worst = max(worst, error)
            continue
        matched = outcome.get("conventions")
        if matched:
            deviates = True
            conventions = (
                set(matched) if conventions is None else conventions & set(matched)
            )
        else:
            bad = True
            worst = max(worst, error)
    return _Outcome(raised, bad, deviates, conventions, worst, result["failure"])


class _Judge:
    """Turns the child's outcomes into each function's status."""

    def __init__(
        self,
        reference: Reference,
        request: Mapping[str, Any],
        points: Sequence[Point],
        messages: Sequence[Mapping[str, Any]],
        module_label: str,
        rtol: float,
    ) -> None:
        self.reference = reference
        self.request = request
        self.points = points
        self.rtol = rtol
        self.defined = messages[0]["defined"]
        self.references = messages[0]["references"]
        self.results = {
            m["check"]: m["result"] for m in messages[1:] if m["event"] == "checked"
        }
        self.module_label = module_label
        self.reports: dict[str, FunctionReport] = {}

    def source(self, name: str) -> SourceLine | None:
        entry = self.defined.get(name, {})
        if "line" not in entry:
            return None
        return SourceLine(self.module_label, entry["line"], entry["text"])

    def convention_text(self, indices: set[int] | None) -> str:
        labels = [
            self.request["conventions"][i]["label"] for i in sorted(indices or ())
        ]
        theirs = " or ".join(labels) if labels else "another value at the kink"
        return f"takes {theirs}; derive takes {_derive_convention(self.reference)}"

    def failure(self, data: Mapping[str, Any] | None) -> Failure | None:
        if data is None:
            return None
        point = self.points[data["point"]] if "point" in data else None
        return Failure(
            point=point,
            argument=data.get("input"),
            expected=data.get("expected"),
            actual=data.get("actual"),
            error=data.get("error"),
            note=data.get("raised") or data.get("note"),
        )

    def simple(self, name: str, role: Any, check: str) -> FunctionReport:
        """A function checked once, as written: forward, helpers, loss."""
        return self.once(name, role, self.results[check], self.source(name))

    def once(
        self,
        name: str,
        role: Any,
        result: Mapping[str, Any],
        source: SourceLine | None,
        gradient: str | None = None,
    ) -> FunctionReport:
        """The status of what is called once per point, with nothing to isolate:
        the forward pass, a helper, ``loss``, one parameter of ``gradients``
        (``gradient``: the derivation's name for it, whose step a slip shows)."""
        base = FunctionReport(name, role, "ok", source=source)
        if "stopped" in result or "crashed" in result:
            error = result.get("stopped") or result.get("crashed")
            return dataclasses.replace(base, status="error", error=error)
        summary = _summary(result, self.rtol)
        base = dataclasses.replace(base, max_rel_error=summary.worst)
        failure = self.failure(result["failure"])
        if summary.raised:
            return dataclasses.replace(
                base, status="error", error=summary.raised, failure=failure
            )
        if summary.bad:
            return dataclasses.replace(
                base,
                status="wrong",
                failure=failure,
                detail=self.wrong_helpers(name),
                step=_step(self.reference, gradient) if gradient else None,
            )
        if summary.deviates:
            convention = self.convention_text(summary.conventions)
            return dataclasses.replace(base, status="convention", convention=convention)
        return base

    def wrong_helpers(self, name: str) -> str | None:
        off = [
            h
            for h in self.references.get(name, [])
            if h in self.reports
            and self.reports[h].status not in PASSING
            and self.reports[h].role == "helper"
        ]
        if not off:
            return None
        return (
            "it calls "
            + ", ".join(off)
            + ", which "
            + ("is" if len(off) == 1 else "are")
            + " wrong"
        )

    def gradient(self, name: str) -> FunctionReport:
        result = self.results[f"gradient:{name}"]
        source = self.source(name)
        if "stopped" in result or "crashed" in result:
            return FunctionReport(
                name,
                "gradient",
                "error",
                error=result.get("stopped") or result.get("crashed"),
                source=source,
            )
        written = _summary(result["written"], self.rtol)
        isolated = _summary(result["isolated"], self.rtol)
        worst = written.worst
        if isolated.raised:
            return FunctionReport(
                name,
                "gradient",
                "error",
                max_rel_error=worst,
                error=isolated.raised,
                failure=self.failure(result["isolated"]["failure"]),
                source=source,
            )
        if isolated.bad:
            failure = self.failure(result["isolated"]["failure"])
            return FunctionReport(
                name,
                "gradient",
                "wrong",
                max_rel_error=max(worst, isolated.worst),
                failure=failure,
                source=source,
                step=self.step(name),
                detail=self.wrong_helpers(name),
                reads=self.reads(name, failure),
            )
        if written.raised or written.bad:
            return FunctionReport(
                name,
                "gradient",
                "inherits",
                max_rel_error=worst,
                through=self.through(name),
                source=source,
                failure=self.failure(result["written"]["failure"]),
            )
        if isolated.deviates or written.deviates:
            own = isolated.conventions if isolated.deviates else written.conventions
            return FunctionReport(
                name,
                "gradient",
                "convention",
                max_rel_error=worst,
                source=source,
                convention=self.convention_text(own),
                through=() if isolated.deviates else self.through(name),
            )
        return FunctionReport(
            name, "gradient", "ok", max_rel_error=worst, source=source
        )

    def through(self, name: str) -> tuple[str, ...]:
        """The functions at the root of what ``name`` inherits: the not-ok gradient
        functions it calls (through its helpers too), and the forward pass."""
        order = [g["name"] for g in self.request["gradients"]]
        forward = self.request["forward"]
        roots: list[str] = []
        seen: set[str] = set()

        def visit(function: str) -> None:
            callees = [c for c in self.references.get(function, []) if c in order]
            if forward not in seen and forward in self.reports:
                if self.reports[forward].status != "missing":
                    callees.append(forward)
            for callee in callees:
                if callee in seen or callee == name:
                    continue
                seen.add(callee)
                report = self.reports.get(callee)
                if report is None or report.status == "ok":
                    continue
                if report.status == "inherits":
                    visit(callee)
                elif callee not in roots:
                    roots.append(callee)

        visit(name)
        rank = {n: i for i, n in enumerate([forward, *order])}
        return tuple(sorted(roots, key=lambda n: rank.get(n, len(rank))))

    def reads(self, name: str, failure: Failure | None) -> dict[str, Any]:
        """derive's numbers at the failing point for what the step reads: the
        values and the upstream gradients in its formula."""
        if failure is None or failure.point is None:
            return {}
        return _reads(self.reference, name, failure.point)

    def step(self, name: str) -> StepText:
        return _step(self.reference, name)

    def generic(self, parameter: str) -> FunctionReport:
        """One parameter's gradient from ``gradients(params, x, y)``."""
        result = self.results["generic"]
        return self.once(
            f"gradients[{parameter}]",
            "generic",
            result.get(parameter, result),  # a hang or crash covers every parameter
            self.source("gradients"),
            self.reference.derivation.of(parameter).name,
        )


def _reads(reference: Reference, name: str, point: Point) -> dict[str, Any]:
    """derive's values, at ``point``, of the arrays the gradient ``name`` reads."""
    gradient = next(g for g in reference.derivation.gradients if g.name == name)
    expression = gradient.expression
    names = {str(a.base.label) for a in expression.atoms(sp.Indexed)}
    names |= {s.name for s in expression.free_symbols if isinstance(s, sp.Symbol)}
    values = _values_of(reference, point.arrays)
    functions = {f.name: f for f in reference.context.partials}
    read: dict[str, Any] = {}
    for value in reference.form.values:
        if value in names:
            read[value] = values[value]
    for other in reference.derivation.gradients:
        if other.name in names and other.name in functions:
            supplied = {audit_worker.VALUES: values, **point.arrays}
            function = getattr(reference.module, other.name)
            read[other.name] = audit_worker.call(function, supplied)
    return read


def _step(reference: Reference, name: str) -> StepText:
    """derive's step for the gradient ``name``, printed as the documents print it."""
    derivation = reference.derivation
    gradient = next(g for g in derivation.gradients if g.name == name)
    code = {a.name: f"{a.name} = {a.code}" for a in reference.context.backward}
    chain, local = chain_rule(gradient, derivation)
    left = text(gradient.array.element)
    lines = list(dict.fromkeys([text(chain), text(local), text(gradient.expression)]))
    math = gradient_math(derivation, name, code[name])
    return StepText(
        lines=(
            f"{left} = {lines[0]}",
            *(f"{' ' * len(left)} = {line}" for line in lines[1:]),
        ),
        matrix=code[name],
        latex_left=math.left,
        latex_lines=math.steps,
        latex_matrix=f"{math.matrix_left} = {math.matrix}",
    )


# The audit -----------------------------------------------------------------------


def audit(
    spec_path: str | os.PathLike[str],
    module_or_path: str | os.PathLike[str] | types.ModuleType,
    *,
    points: int = DEFAULT_POINTS,
    seed: int = 0,
    rtol: float = DEFAULT_RTOL,
    timeout: float = DEFAULT_TIMEOUT,
) -> Report:
    """Audit a hand-written gradient module against derive's gradients for a spec.

    ``module_or_path`` is a path to a ``.py`` file, imported in a child process with
    ``timeout`` seconds to import and for each function's checks; or a module object
    already imported (an autograder's), checked in this process. Raises
    :class:`AuditError` (a :class:`~derive.errors.DeriveError`) when the file is
    missing or fails to import, and :class:`~derive.errors.SpecError` for a bad spec.
    """
    spec_file = Path(spec_path)
    if not spec_file.is_file():
        raise AuditError(f"{spec_file.as_posix()}: no such spec file")
    if points < 0 or not rtol > 0 or not timeout > 0:
        raise AuditError("--points must be at least 0, --rtol and --timeout above 0")
    module: types.ModuleType | None = None
    if isinstance(module_or_path, types.ModuleType):
        module = module_or_path
        label = getattr(module, "__file__", None) or module.__name__
    else:
        path = Path(module_or_path)
        label = path.as_posix()
        if not path.is_file():
            raise AuditError(f"{label}: no such file")
        if path.suffix != ".py":
            raise AuditError(f"{label}: not a Python file (.py)")
    reference = _reference(spec_file)
    audited = _Points(reference, points, seed).points
    network = reference.network
    gradients = _gradient_functions(reference)
    helpers = [
        name
        for function in network.functions
        for name in (function, f"{function}_derivative")
    ]
    checks = [
        "forward",
        *(f"helper:{h}" for h in helpers),
        "loss",
        *(f"gradient:{g['name']}" for g in gradients),
        "generic",
    ]
    request = _request(reference, checks, rtol, audited, timeout)
    if module is not None:
        messages = _run_in_process(module, request, audited)
    else:
        messages = _run_in_child(Path(label), request, audited, timeout)
    defined = messages[0]["defined"]
    present = [
        c for c in checks if audit_worker.checked_function(c, request) in defined
    ]
    judge = _Judge(reference, request, audited, messages, label, rtol)
    reports = judge.reports
    # The problem set's way in expects the forward function and every d_loss_d_*;
    # a module with gradients(params, x, y) and no d_loss_d_* comes the generic way,
    # and its forward function and helpers are checked if it has them.
    generic = "gradients" in defined
    problem_set = not generic or any(g["name"] in defined for g in gradients)
    forward = reference.form.forward
    # Helpers first: the report on a function that calls a wrong one names it.
    for helper in helpers:
        if f"helper:{helper}" in present:
            reports[helper] = judge.simple(helper, "helper", f"helper:{helper}")
    if "loss" in present:
        reports["loss"] = judge.simple("loss", "loss", "loss")
    if problem_set or forward in defined:
        reports[forward] = (
            judge.simple(forward, "forward", "forward")
            if "forward" in present
            else FunctionReport(forward, "forward", "missing")
        )
    for gradient in gradients if problem_set else []:
        name = gradient["name"]
        reports[name] = (
            judge.gradient(name)
            if f"gradient:{name}" in present
            else FunctionReport(name, "gradient", "missing")
        )
    if generic:
        for parameter in network.parameters:
            reports[f"gradients[{parameter.name}]"] = judge.generic(parameter.name)
    # Shown in the order the module is read: forward pass, helpers, then gradients.
    order = [forward, *helpers, "loss"]
    reports = {
        **{name: reports[name] for name in order if name in reports},
        **{name: r for name, r in reports.items() if name not in order},
    }
    return Report(
        spec=spec_file.as_posix(),
        module=label,
        network=network.name,
        points=len(audited),
        functions=reports,
    )


# Output ---------------------------------------------------------------------------


def _number(value: float) -> str:
    """``1``, ``0.5``, ``-3.25e-07``: a number as short as it reads."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return _json_number(float(value))
    return value


def _shown(value: Any) -> str:
    """A number or nested list with short numbers: ``[[-1, 0], [0, 2.5]]``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} = {_shown(v)}" for k, v in value.items())
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return _number(float(value))
    return str(value)


def _error(report: FunctionReport) -> str:
    if report.max_rel_error is None:
        return "-"
    return f"{report.max_rel_error:.2g}" if report.max_rel_error else "0"


def _remark(report: FunctionReport) -> str:
    if report.status == "inherits":
        return "from " + ", ".join(report.through) if report.through else "as written"
    if report.status == "convention":
        via = f" (through {', '.join(report.through)})" if report.through else ""
        return f"{report.convention}{via}"
    if report.status == "error":
        return report.error or ""
    if report.status == "missing":
        return "not defined in the module"
    if report.status == "wrong" and report.failure and report.failure.note:
        return report.failure.note
    return ""


def _summary_line(report: Report) -> str:
    counts: dict[str, int] = {}
    for function in report.functions.values():
        counts[function.status] = counts.get(function.status, 0) + 1
    order = ("wrong", "inherits", "error", "missing", "convention", "ok")
    parts = [f"{counts[s]} {s}" for s in order if s in counts]
    verdict = "passes" if report.ok else "fails"
    return f"{report.module} {verdict}: " + ", ".join(parts) + "."


def _format(report: Report, markdown: bool) -> str:
    rows = [
        (name, f.status, _error(f), _remark(f)) for name, f in report.functions.items()
    ]
    out: list[str] = []
    title = (
        f"{report.module} against {report.spec} (network {report.network}), "
        f"{report.points} points"
    )
    if markdown:
        out += [f"# derive audit: {title}", ""]
        out += [
            "| function | status | worst relative error | |",
            "| --- | --- | ---: | --- |",
        ]
        out += [f"| `{n}` | {s} | {e} | {_md_escape(r)} |" for n, s, e, r in rows]
        out.append("")
    else:
        out += [f"derive audit: {title}", ""]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        header = ("function", "status", "worst rel. error")
        widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
        for row in [(*header, ""), *rows]:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            out.append(("  " + "  ".join(cells) + "  " + row[3]).rstrip())
        out.append("")
    for function in report.functions.values():
        if function.status == "wrong":
            out += _wrong(function, markdown)
    out.append(_summary_line(report))
    return "\n".join(out) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def _wrong(function: FunctionReport, markdown: bool) -> list[str]:
    """The simplest failing point, expected and actual, and derive's step."""
    where = ""
    if function.source is not None:
        where = f"{function.source.path}:{function.source.line}"
    failure = function.failure
    lines: list[str] = []
    if markdown:
        lines += [f"## `{function.name}` is wrong", ""]
        if where:
            lines += [f"Defined at `{where}`: `{function.source.text.strip()}`", ""]  # type: ignore[union-attr]
    else:
        lines.append(
            f"{function.name} is wrong" + (f" ({where})" if where else "") + ":"
        )
    bullet = "- " if markdown else "  "
    code = "`" if markdown else ""
    if failure is not None:
        if failure.point is not None:
            shown = f"{code}{_shown(failure.point.arrays)}{code}"
            if markdown:
                lines.append(f"- at {failure.point.label}: {shown}")
            else:
                lines += [f"  at {failure.point.label}:", f"    {shown}"]
        elif failure.argument is not None:
            lines.append(f"{bullet}at {code}x = {_shown(failure.argument)}{code}")
        lines.append(f"{bullet}expected {code}{_shown(failure.expected)}{code}")
        lines.append(f"{bullet}actual   {code}{_shown(failure.actual)}{code}")
        if failure.note:
            lines.append(f"{bullet}{failure.note}")
    if function.reads:
        shown = _shown(function.reads)
        lines.append(f"{bullet}derive's values there: {code}{shown}{code}")
    if function.detail:
        lines.append(f"{bullet}{function.detail}")
    step = function.step
    if step is not None:
        if markdown:
            aligned = [
                (step.latex_left if i == 0 else "") + " &= " + line
                for i, line in enumerate(step.latex_lines)
            ]
            lines += [
                "",
                "derive's step, in index form and in matrix form:",
                "",
                "$$",
                "\\begin{aligned}",
                " \\\\\n".join(aligned),
                "\\end{aligned}",
                "\\qquad",
                step.latex_matrix,
                "$$",
                "",
                "```python",
                step.matrix,
                "```",
            ]
        else:
            lines.append("  derive's step:")
            lines += [f"    {line}" for line in step.lines]
            lines.append(f"  in matrix form, as code: {step.matrix}")
    lines.append("")
    return lines
