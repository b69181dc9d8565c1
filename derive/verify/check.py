"""Check a generated module numerically before it is handed out or written.

At a few random points (inputs and parameters drawn from a generator seeded by the
spec, so every run checks the same points), the module's forward pass is compared
with the spec evaluated directly by NumPy (:mod:`.reference`), and every gradient it
computes (each entry of ``gradients()`` and every ``d_loss_d_*`` function) is
compared with a central finite difference of that independent loss, along a random
direction, Richardson-extrapolated. Specs with a batch axis are checked at batch
sizes equal to their own sizes (so that a wrong broadcast that fits cannot hide) and
at one that is none of them (so that a wrong axis fails). A point where a finite
difference straddles a kink (the estimates at two steps disagree) is redrawn.

Any disagreement, or any error raised by the module, is a bug of derive:
:class:`~derive.errors.DerivationError`, naming what disagreed and by how much.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from derive.equations import EquationSpec
from derive.errors import DerivationError, SpecError
from derive.graph import Graph, Role, Value
from derive.verify.reference import EquationReference, LayersReference, Reference

Array = Any
#: How many points are checked.
POINTS = 3
#: Largest relative disagreement accepted: of a gradient with its finite difference,
#: and of a forward value with the direct evaluation.
GRADIENT_TOLERANCE = 1e-6
FORWARD_TOLERANCE = 1e-8
#: Batch sizes above this are not used to check a broadcast (a size of the spec can
#: be large; the distinct batch size is small).
LARGEST_BATCH = 16
#: Finite-difference steps (relative to the size of what is perturbed): the check's,
#: Richardson-extrapolated, and a much smaller one whose difference from it shows a
#: kink nearby (the point is then redrawn).
STEPS = (1e-4, 1e-6)
REDRAWS = 16
#: Directions tried at a point before it is redrawn (each over about half as many
#: elements as the one before).
DIRECTIONS = 8
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
#: How the entries of a point are drawn, in order, until the loss is finite there:
#: normal; positive (a log or a square root of an input); within (0, 1).
DRAWS = ("normal", "positive", "unit")


@dataclass(frozen=True)
class Verification:
    """What was checked, for the line every generated file carries."""

    points: int
    batch_sizes: tuple[int, ...]  # empty without a batch axis
    gradients: int  # values and parameters whose gradient was checked
    largest: float  # the largest relative disagreement seen

    @property
    def sentence(self) -> str:
        """What was checked, and to what tolerance. Not the disagreement measured:
        a measured figure, even rounded to a power of ten, changes with the last
        bits of a machine's BLAS (1e-11 here, 1e-10 there), and the files it is
        printed in must be byte-identical on every machine."""
        where = f"{self.points} points"
        if self.batch_sizes:
            count = len(set(self.batch_sizes))
            where += f", {count} batch size{'s' if count > 1 else ''}"
        return (
            f"forward and {self.gradients} gradients against finite differences "
            f"at {where} (every relative error below {GRADIENT_TOLERANCE:g})"
        )


def verify(graph: Graph, module: ModuleType) -> Verification:
    """Check ``module``, generated for ``graph``; raise :class:`DerivationError`."""
    return _Check(graph, module).run()


def reference_for(graph: Graph) -> Reference:
    spec = graph.spec
    if isinstance(spec, EquationSpec):
        return EquationReference(spec, graph.sites)
    return LayersReference(spec)


def _seed(spec: Any) -> int:
    """A seed from the spec's content (not from where it was read)."""
    text = repr(replace(spec, source=""))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class _Check:
    def __init__(self, graph: Graph, module: ModuleType) -> None:
        self.graph = graph
        self.module = module
        self.spec = graph.spec
        self.source = self.spec.source
        self.equations = isinstance(self.spec, EquationSpec)
        self.unrolled = getattr(self.spec, "style", "") == "unrolled"
        self.reference = reference_for(graph)
        self.random = np.random.default_rng(_seed(self.spec))
        self.largest = 0.0
        self.checked: set[str] = set()

    # -- the points

    def batch_sizes(self) -> list[int | None]:
        if not self.graph.batched:
            return [None] * POINTS
        sizes = sorted(set(self.graph.sizes.values()))
        equal = [s for s in sizes if 2 <= s <= LARGEST_BATCH]
        distinct = next(n for n in range(2, 1 << 20) if n not in sizes)
        chosen = [*equal[:1], distinct, *equal[1:2]]
        others = (n for n in itertools.count(distinct + 1) if n not in sizes)
        while len(chosen) < POINTS:
            chosen.append(next(others))
        return list(chosen[:POINTS])

    def shape(self, value: Value, batch: int | None) -> tuple[int, ...]:
        return tuple(
            batch if axis.batch else int(axis.size.xreplace(self.graph.sizes))  # type: ignore[misc]
            for axis in value.axes
        )

    def draw(self, batch: int | None, how: str) -> dict[str, Array]:
        arrays = {}
        for value in self.graph.of_role(Role.INPUT, Role.PARAMETER):
            shape = self.shape(value, batch)
            scale = 1.0
            if value.role is Role.PARAMETER and len(shape) >= 2:
                scale = 1 / math.sqrt(shape[-1])
            elif value.role is Role.PARAMETER:
                scale = 0.5
            if how == "normal":
                entries = self.random.normal(0.0, scale, shape)
            elif how == "positive":
                entries = np.abs(self.random.normal(0.0, scale, shape)) + 0.1 * scale
            else:
                entries = self.random.uniform(0.1, 0.9, shape)
            arrays[value.name] = np.asarray(entries, dtype=np.float64)
        return arrays

    def point(self, batch: int | None) -> tuple[dict[str, Array], dict[str, Array]]:
        """Inputs and parameters where the spec's every value is finite, and those
        values."""
        for how in DRAWS:
            for _ in range(2):
                arrays = self.draw(batch, how)
                with np.errstate(all="ignore"):
                    values = self.reference.values(arrays)
                if all(np.all(np.isfinite(v)) for v in values.values()):
                    return arrays, values
        field = "equations.loss" if self.equations else "loss"
        raise SpecError(
            self.source,
            field,
            "the loss is not finite (nan or inf) at any point derive tried "
            "(inputs and parameters drawn normal, positive and within (0, 1)); derive "
            "checks every gradient numerically before writing it, and cannot here",
        )

    def run(self) -> Verification:
        used = []
        for batch in self.batch_sizes():
            for _ in range(REDRAWS):
                arrays, values = self.point(batch)
                if self.check_point(arrays, values, batch):
                    used.append(batch)
                    break
            else:
                field = "equations.loss" if self.equations else "loss"
                raise SpecError(
                    self.source,
                    field,
                    f"the loss has a kink at every one of the {REDRAWS} points derive "
                    "tried (a relu, abs, maximum or minimum of something that is "
                    "exactly 0 wherever derive looked?); derive checks every gradient "
                    "by finite differences before writing it, and cannot here",
                )
        return Verification(
            points=len(used),
            batch_sizes=tuple(b for b in used if b is not None),
            gradients=len(self.checked),
            largest=self.largest,
        )

    # -- calling the module

    def given(
        self, arrays: Mapping[str, Array]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params`` and the inputs by the module's argument names."""
        convert: Callable[[Array], Any] = (
            (lambda a: np.asarray(a).tolist()) if self.unrolled else (lambda a: a)
        )
        params = {p.name: convert(arrays[p.name]) for p in self.graph.parameters}
        inputs = {}
        for value in self.graph.inputs:
            name = value.name
            if not self.equations:
                name = {"y_observed": "y"}.get(name, name)
            inputs[name] = convert(arrays[value.name])
        return params, inputs

    def call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            with np.errstate(all="ignore"):
                return function(*args)
        except Exception as error:  # a bug in the generated code: reported, not raised
            message = str(error).splitlines()[0] if str(error) else ""
            raise self.failure(
                f"the generated {what} raises {type(error).__name__}"
                + (f" ({message})" if message else "")
            ) from None

    def failure(self, what: str) -> DerivationError:
        return DerivationError(
            f"internal error: {self.source}: {what}; nothing was written; please "
            "report this spec"
        )

    def forward(self, params: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        if self.equations:
            return dict(
                self.call("forward", self.module.forward, params, *inputs.values())
            )
        values = dict(self.call("forward", self.module.forward, params, inputs["x"]))
        values["loss"] = self.call(
            "loss", self.module.loss, params, inputs["x"], inputs["y"]
        )
        return values

    # -- one point

    def check_point(
        self, arrays: dict[str, Array], expected: dict[str, Array], batch: int | None
    ) -> bool:
        """Check everything at one point; False when a kink is too close to it."""
        at = f" at batch size {batch}" if batch is not None else ""
        params, inputs = self.given(arrays)
        computed = self.forward(params, inputs)
        # A value that cancels to 0 is rounding noise of its terms: it is compared
        # against the point's largest magnitude, not against itself.
        magnitude = max(
            (
                float(np.max(np.abs(v)))
                for v in (*expected.values(), *arrays.values())
                if np.size(v)
            ),
            default=0.0,
        )
        for name, value in expected.items():
            if name not in computed:
                continue
            got = np.asarray(computed[name], dtype=np.float64)
            if got.shape != value.shape:
                raise self.failure(
                    f"the generated forward pass gives {name} the shape {got.shape}"
                    f"{at}, expected {value.shape}"
                )
            error = _relative(got, value, 1e-4 * magnitude)
            self.note(error)
            if not error <= FORWARD_TOLERANCE:
                raise self.failure(
                    f"the generated forward pass computes {name} wrong{at} "
                    f"(relative error {error:.2g})"
                )
        grads = dict(
            self.call("gradients()", self.module.gradients, params, *inputs.values())
        )
        # In the backward pass's order, so that the first disagreement named is the
        # one the others inherit (each d_loss_d_* function calls the ones before).
        targets = self.partials(computed, arrays)
        for parameter in self.graph.parameters:
            targets.append((parameter, "gradients()", grads[parameter.name]))
        for value, label, gradient in targets:
            if not self.check_gradient(value, label, gradient, arrays, expected, at):
                return False
        return True

    def partials(
        self, computed: Mapping[str, Any], arrays: Mapping[str, Array]
    ) -> list[tuple[Value, str, Array]]:
        """Every ``d_loss_d_*`` function the module has, called as the problem set
        calls them: the dict ``forward`` returns, then the arrays it names."""
        found = []
        values = {k: v for k, v in computed.items() if k != "loss" or self.equations}
        by_name = dict(arrays)
        backward = (
            *reversed(self.graph.of_role(Role.VALUE, Role.NORMALIZER)),
            *self.graph.parameters,
        )
        for value in backward:
            function = getattr(self.module, value.gradient, None)
            if function is None:
                continue
            names = list(inspect.signature(function).parameters)[1:]
            args = [by_name[n] for n in names]
            label = f"{value.gradient}()"
            found.append((value, label, self.call(label, function, values, *args)))
        return found

    def check_gradient(
        self,
        value: Value,
        label: str,
        gradient: Array,
        arrays: dict[str, Array],
        expected: dict[str, Array],
        at: str,
    ) -> bool:
        base = np.asarray(
            arrays[value.name]
            if value.role is Role.PARAMETER
            else expected[value.name],
            dtype=np.float64,
        )
        gradient = np.asarray(gradient, dtype=np.float64)
        if gradient.shape != base.shape:
            raise self.failure(
                f"the derived gradient of {value.name} ({label}) has shape "
                f"{gradient.shape}{at}, expected {base.shape}"
            )
        if not np.all(np.isfinite(gradient)):
            raise self.failure(
                f"the derived gradient of {value.name} ({label}) is not finite at a "
                f"point where the loss is{at}"
            )
        # Random directions: first over every element; where that meets a kink at
        # the point (a ReLU whose argument is exactly 0 because everything before it
        # is, as for a sample a layer is dead on), over fewer and fewer of them, so
        # that the elements away from every kink are checked.
        for attempt in range(DIRECTIONS):
            keep = 0.5**attempt
            direction = self.random.normal(0.0, 1.0, base.shape)
            if attempt:
                mask = self.random.uniform(size=base.shape) < keep
                if not mask.any():
                    mask.flat[self.random.integers(mask.size)] = True
                direction *= mask
            found = self.along(
                value, label, gradient, base, direction, arrays, expected, at
            )
            if found:
                self.checked.add(value.name)
                return True
        return False

    def along(
        self,
        value: Value,
        label: str,
        gradient: Array,
        base: Array,
        direction: Array,
        arrays: dict[str, Array],
        expected: dict[str, Array],
        at: str,
    ) -> bool:
        """Check the gradient along one direction; False when a kink is in the way."""
        # A unit direction, and steps relative to the length of what moves: small
        # moves of every element, so that few kinks are crossed.
        direction = direction / max(_length(direction), _TINY)
        size = max(_length(base), 1.0)
        along = float(np.sum(gradient * direction))
        scale = _length(gradient * (direction != 0))

        def loss_at(step: float) -> float:
            moved = base + step * direction
            with np.errstate(all="ignore"):
                if value.role is Role.PARAMETER:
                    values = self.reference.values(
                        {**arrays, value.name: moved}, None, expected, value.name
                    )
                else:
                    values = self.reference.values(
                        arrays, {value.name: moved}, expected, value.name
                    )
            return float(values["loss"])

        coarse, fine = STEPS
        h, tiny_h = coarse * size, fine * size
        ends = [loss_at(s) for s in (h, -h, h / 2, -h / 2, tiny_h, -tiny_h)]
        if not all(math.isfinite(e) for e in ends):
            return False
        middle = float(expected["loss"])
        # Richardson's extrapolation of the central differences at h and h/2 ...
        estimate = (4 * (ends[2] - ends[3]) / h - (ends[0] - ends[1]) / (2 * h)) / 3
        # ... must agree with the central difference at a step 100 times smaller, and
        # the one-sided differences there with each other: else a kink is near.
        # (A smooth loss's one-sided differences differ by the curvature times the
        # step; a kink at the point makes them differ by its jump, at any step.)
        small = (ends[4] - ends[5]) / (2 * tiny_h)
        jump = (ends[4] - 2 * middle + ends[5]) / tiny_h
        curved = (ends[0] - 2 * middle + ends[1]) / h**2 * tiny_h
        # What rounding can make of a difference of losses: generously, for the
        # kink tests; as the extrapolation's own, for the check (below the gradient
        # that rounding alone could fake at the step, it compares absolutely).
        largest = max(abs(e) for e in (*ends, middle))
        rounding = 64 * _EPS * largest
        size_of = max(scale, abs(estimate))
        if abs(jump - curved) > 1e-3 * size_of + 20 * rounding / tiny_h:
            return False
        spread = abs(small - estimate)
        if spread > 0.1 * GRADIENT_TOLERANCE * size_of + 10 * rounding / tiny_h:
            return False
        resolution = 8 * _EPS * largest / h / GRADIENT_TOLERANCE
        floor = max(size_of, resolution, _TINY)
        error = abs(estimate - along) / floor
        # What the differences leave open (their spread across steps: a loss that is
        # smooth but not twice so, as sqrt(1 + relu(r)**2), where a ReLU's argument
        # is 0) is not held against the gradient.
        if error > GRADIENT_TOLERANCE and abs(estimate - along) > (
            GRADIENT_TOLERANCE * floor + spread + 10 * rounding / tiny_h
        ):
            raise self.failure(
                f"the derived gradient of {value.name} ({label}) disagrees with "
                f"finite differences{at} (relative error {error:.2g})"
            )
        if size_of >= resolution:  # a figure for the header only where it means one
            self.note(min(error, GRADIENT_TOLERANCE))
        return True

    def note(self, error: float) -> None:
        self.largest = max(self.largest, error)


def _length(array: Array) -> float:
    """The Euclidean length, without BLAS (whose threads a busy machine stalls)."""
    return math.sqrt(float(np.sum(np.square(array))))


def _relative(got: Array, expected: Array, floor: float = 0.0) -> float:
    if got.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), float(np.max(np.abs(got))), floor)
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(got - expected))) / scale
