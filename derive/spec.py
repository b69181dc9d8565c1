"""Read and validate a network spec (TOML).

A spec describes a fully connected network::

    name = "seed_mlp"          # a Python identifier: the module is generated/NAME.py
    input = 1                  # size of the input
    shapes = "problem_set"     # or "torch" (the default)

    style = "vectorized"       # or "unrolled": one line per neuron, plain floats
    target = "numpy"           # or "array_api": one module for NumPy, torch, JAX,
                               # CuPy and Dask arrays (see derive.targets)

    [[layers]]                 # one table per layer, input side first
    width = 3
    activation = "relu"
    bias = false               # default true

    [[layers]]
    width = 3
    activation = "leaky_relu"
    slope = 0.1                # leaky_relu only; default 0.01

    [[layers]]
    width = 1
    activation = "custom"
    expression = "x * sigmoid(x)"   # custom only: a formula in x
    function_name = "swish"         # custom only: its name in the code

    [loss]
    kind = "squared"
    reduction = "mean"         # "mean" or "sum" over the batch (torch's names)
    # delta = 1.0              # huber only
    # expression = "(y_predicted - y)**4"   # custom only

    [worked_point]             # optional: numbers the derivation is evaluated at
    x = 10
    y = 180
    W0 = [1, 2, 3]             # one entry per parameter, in its shape

``shapes = "torch"`` gives torch's ``nn.Linear`` conventions: a leading batch axis on
``x``, ``W`` of shape ``(out, in)`` and ``b`` of shape ``(out,)``.
``shapes = "problem_set"`` gives the problem set's: one sample, no batch axis, and a
size-1 input or output is a scalar (so ``W0`` and the last ``W`` are vectors).

Every error names the file, the field and what is allowed (:class:`SpecError`).
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive.activations import ACTIVATIONS, definition
from derive.equations import EquationSpec, is_equation_spec, read_equation_spec
from derive.errors import SpecError
from derive.expressions import FormulaError
from derive.functions import PRIMITIVES
from derive.losses import LOSSES, make_loss
from derive.reserved import LAYER_MODULE_NAMES, reserved
from derive.targets import DEFAULT_TARGET, TARGETS, shadowing

SHAPES = ("torch", "problem_set")
STYLES = ("vectorized", "unrolled")
REDUCTIONS = ("mean", "sum")
MAX_WIDTH = 1 << 20
MAX_LAYERS = 256
#: Most scalar parameters (weights and biases) the unrolled style emits: beyond it the
#: module would run to tens of thousands of lines and take minutes to print.
MAX_UNROLLED_PARAMETERS = 2048

TOP_FIELDS = (
    "name",
    "description",
    "input",
    "shapes",
    "style",
    "target",
    "layers",
    "loss",
    "worked_point",
)
#: Most numbers a worked point may hold: its numbers are printed in the derivation.
MAX_WORKED_NUMBERS = 4096
LAYER_FIELDS = ("width", "activation", "bias", "slope", "expression", "function_name")
LOSS_FIELDS = ("kind", "reduction", "delta", "expression")


_FUNCTION_NAME = re.compile(r"[a-z][a-z0-9_]*")  # fullmatch: $ passes "swish\n"
#: The module's own functions, which a custom function must not be named: the
#: activations it may define, and the helpers their formulas use.
_OWN_FUNCTIONS = frozenset({*(a for a in ACTIVATIONS if a != "custom"), *PRIMITIVES})
#: The network's values and parameters (r0, h0, W0, b0; W is upper-case), their
#: gradients and the derivatives of functions.
_VALUE_NAME = re.compile(r"[rhb]\d+|d_loss_d_.*|.*_derivative")


@dataclass(frozen=True)
class LayerSpec:
    """One fully connected layer: ``h = activation(W @ h_prev + b)``."""

    width: int
    activation: str
    bias: bool
    slope: float | None = None  # leaky_relu only
    expression: str | None = None  # custom only
    function_name: str = ""  # the function's name in the code: activation or custom's

    def __post_init__(self) -> None:
        if not self.function_name:
            object.__setattr__(self, "function_name", self.activation)


@dataclass(frozen=True)
class LossSpec:
    """The loss and how it is reduced over the batch."""

    kind: str
    reduction: str
    delta: float | None = None  # huber only
    expression: str | None = None  # custom only


@dataclass(frozen=True)
class NetworkSpec:
    """A validated spec, and the file it came from."""

    name: str
    description: str
    input: int
    shapes: str
    style: str
    layers: tuple[LayerSpec, ...]
    loss: LossSpec
    source: str
    #: x, y and every parameter as numbers or nested lists; shapes are checked when
    #: the network is built (see :mod:`derive.evaluate`).
    worked_point: dict[str, Any] | None = None
    #: The array library the module is written for: a key of derive.targets.TARGETS.
    target: str = DEFAULT_TARGET


#: The largest spec read, in bytes. A spec is a page or two of TOML; a file this big
#: is something else (a log, a data file named .toml) and is refused unread.
MAX_SPEC_BYTES = 1 << 20


def load_spec(path: Path | str) -> NetworkSpec | EquationSpec:
    """Read ``path`` and return the validated spec, or raise :class:`SpecError`.

    Only a regular file of at most :data:`MAX_SPEC_BYTES` is read: a FIFO would wait
    for a writer forever, and a device such as /dev/zero never ends.
    """
    import os
    import stat

    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        # O_NONBLOCK: opening a FIFO waits for a writer without it; it is refused
        # below, as its kind shows only once it is open (or stat'ed).
        handle = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpecError(path, "", "no such file") from None
    except OSError as error:
        try:
            kind = os.stat(path).st_mode  # a socket cannot be opened at all
        except (OSError, ValueError):
            kind = stat.S_IFREG
        if not stat.S_ISREG(kind):
            raise SpecError(path, "", _not_a_file(kind)) from None
        reason = error.strerror or str(error)  # File name too long, Permission denied
        raise SpecError(path, "", f"cannot read the file ({reason})") from None
    except ValueError:  # from Python: a NUL character in the name
        raise SpecError(
            path, "", "cannot read the file (its name holds a NUL character)"
        ) from None
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode):  # open() of a folder's handle would raise
        os.close(handle)
        raise SpecError(path, "", _not_a_file(info.st_mode))
    with open(handle, "rb") as stream:
        size = info.st_size
        if size <= MAX_SPEC_BYTES:
            try:
                data = stream.read(MAX_SPEC_BYTES + 1)  # +1: it may grow meanwhile
            except OSError as error:
                raise SpecError(
                    path, "", f"cannot read the file ({error.strerror or error})"
                ) from None
            size = len(data)
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            path,
            "",
            f"the file is {size} bytes; a spec is at most {MAX_SPEC_BYTES} (1 MiB)",
        )
    try:
        # utf-8-sig: files saved by Windows editors start with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(path, "", f"cannot read the file ({error})") from None
    return parse_spec(text, path)


def _not_a_file(mode: int) -> str:
    """Why a spec path that is not a regular file is refused."""
    import stat

    if stat.S_ISDIR(mode):
        kind = "a folder"
    elif stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a device"
    return f"is {kind}, not a regular file; a spec is read only from a regular file"


def parse_spec(text: str, path: Path | str) -> NetworkSpec | EquationSpec:
    """Validate the TOML ``text`` read from ``path``."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            path,
            "",
            f"the text is {len(text)} characters; a spec is at most "
            f"{MAX_SPEC_BYTES} (1 MiB)",
        )
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, "", f"not valid TOML ({error})") from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise SpecError(
            path, "", "not a spec: arrays or tables nested too deeply"
        ) from None
    if not data:
        empty = (
            "standard input is empty" if str(path) == "<stdin>" else "the file is empty"
        )
        raise SpecError(
            path,
            "",
            f"{empty}; a spec needs name, input, [[layers]] and loss ([[layers]] form) "
            "or name, inputs, parameters and [equations] (equations form)",
        )
    return spec_from_data(data, path)


def spec_from_data(
    data: dict[str, Any], path: Path | str
) -> NetworkSpec | EquationSpec:
    """Validate a spec already read into a dict (as :mod:`tomllib` reads one);
    errors name ``path``. A spec with [equations] is an equation spec."""
    _check_keys(data, path)
    if is_equation_spec(data):
        return read_equation_spec(data, path)
    return _Reader(path).network(data)


def _check_keys(data: Any, path: Path | str) -> None:
    """Refuse a key that is not a string anywhere in ``data``: TOML's keys always are,
    a dict from Python may hold any (``{1: 2}``), and every check after this one
    takes a key for a field name. Shared and cyclic parts are walked once."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if id(value) in seen:
            continue
        if isinstance(value, dict):
            seen.add(id(value))
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(
                        path,
                        where,
                        f"field names are strings, as TOML keys are; got {key!r} "
                        f"({type(key).__name__})",
                    )
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, (list, tuple)):
            seen.add(id(value))
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


class _Reader:
    """Checks one field at a time, so every error can name its field."""

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, field: str, message: str) -> SpecError:
        return SpecError(self.path, field, message)

    def check_fields(
        self, table: dict[str, Any], allowed: tuple[str, ...], where: str
    ) -> None:
        for key in table:
            if key not in allowed:
                field = f"{where}.{key}" if where else key
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(
                    field, f"unknown field; {hint}allowed: {', '.join(allowed)}"
                )

    def required(self, table: dict[str, Any], key: str, field: str) -> Any:
        if key not in table:
            raise self.fail(field, "missing")
        return table[key]

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                field, f"must be an integer from {low} to {high}, got {value!r}"
            )
        if not low <= value <= high:
            raise self.fail(field, f"must be from {low} to {high}, got {value}")
        return value

    def choice(self, value: Any, field: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(field, f"got {value!r}; allowed: {', '.join(allowed)}")
        return value

    def network(self, data: dict[str, Any]) -> NetworkSpec:
        self.check_fields(data, TOP_FIELDS, "")
        name = self.required(data, "name", "name")
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or keyword.iskeyword(name)
        ):
            raise self.fail(
                "name",
                f"got {name!r}; must be a Python identifier (letters, digits, underscores, "
                "not starting with a digit) and not a keyword",
            )
        if not name.isascii():
            raise self.fail(
                "name", f"got {name!r}; must use ASCII letters, digits and _"
            )
        if shadowing(name):
            raise self.fail("name", shadowing(name))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"must be a string, got {description!r}")
        size = self.integer(
            self.required(data, "input", "input"), "input", 1, MAX_WIDTH
        )
        shapes = self.choice(data.get("shapes", "torch"), "shapes", SHAPES)
        style = self.choice(data.get("style", "vectorized"), "style", STYLES)
        target = self.choice(
            data.get("target", DEFAULT_TARGET), "target", tuple(TARGETS)
        )
        if style not in TARGETS[target].styles:
            raise self.fail(
                "target",
                f"{target!r} writes array code, and style = {style!r} works on "
                "Python floats, one variable per element; use style = "
                f"{' or '.join(repr(s) for s in TARGETS[target].styles)}, "
                'or target = "numpy"',
            )
        layers = self.required(data, "layers", "layers")
        if not isinstance(layers, list) or not all(isinstance(t, dict) for t in layers):
            raise self.fail("layers", "must be an array of tables ([[layers]])")
        if not 1 <= len(layers) <= MAX_LAYERS:
            raise self.fail(
                "layers", f"needs from 1 to {MAX_LAYERS} layers, got {len(layers)}"
            )
        loss = self.required(data, "loss", "loss")
        if not isinstance(loss, dict):
            raise self.fail("loss", "must be a table ([loss])")
        layer_specs = tuple(self.layer(t, f"layers[{n}]") for n, t in enumerate(layers))
        self.check_function_names(layer_specs)
        loss_spec = self.loss(loss)
        self.check_target(target, layer_specs, loss_spec)
        if loss_spec.kind == "softmax_cross_entropy" and layer_specs[-1].width < 2:
            raise self.fail(
                f"layers[{len(layer_specs) - 1}].width",
                "softmax_cross_entropy needs at least 2 output units (classes); "
                "for one output use binary_cross_entropy",
            )
        if style == "unrolled":
            self.check_unrolled_size(size, layer_specs)
        worked_point = None
        if "worked_point" in data:
            worked_point = self.worked_point(data["worked_point"], layer_specs)
        return NetworkSpec(
            name=name,
            description=" ".join(description.split()),
            input=size,
            shapes=shapes,
            style=style,
            layers=layer_specs,
            loss=loss_spec,
            source=Path(self.path).as_posix(),
            worked_point=worked_point,
            target=target,
        )

    def layer(self, table: dict[str, Any], where: str) -> LayerSpec:
        self.check_fields(table, LAYER_FIELDS, where)
        width = self.integer(
            self.required(table, "width", f"{where}.width"),
            f"{where}.width",
            1,
            MAX_WIDTH,
        )
        activation = self.choice(
            self.required(table, "activation", f"{where}.activation"),
            f"{where}.activation",
            ACTIVATIONS,
        )
        bias = table.get("bias", True)
        if not isinstance(bias, bool):
            raise self.fail(f"{where}.bias", f"must be true or false, got {bias!r}")
        self.only_for(table, where, "slope", activation, "leaky_relu")
        self.only_for(table, where, "expression", activation, "custom")
        self.only_for(table, where, "function_name", activation, "custom")
        slope = None
        if "slope" in table:
            slope = self.number(table["slope"], f"{where}.slope", -1e6, 1e6)
        expression, function_name = None, activation
        if activation == "custom":
            expression = self.required(table, "expression", f"{where}.expression")
        try:
            definition(activation, slope, expression)
        except FormulaError as error:
            raise self.fail(f"{where}.expression", f"{expression!r} {error}") from None
        if activation == "custom":
            function_name = self.function_name(
                table.get("function_name", "custom"), f"{where}.function_name"
            )
        return LayerSpec(width, activation, bias, slope, expression, function_name)

    def loss(self, table: dict[str, Any]) -> LossSpec:
        self.check_fields(table, LOSS_FIELDS, "loss")
        kind = self.choice(
            self.required(table, "kind", "loss.kind"), "loss.kind", LOSSES
        )
        reduction = self.choice(
            table.get("reduction", "mean"), "loss.reduction", REDUCTIONS
        )
        self.only_for(table, "loss", "delta", kind, "huber")
        self.only_for(table, "loss", "expression", kind, "custom")
        delta = None
        if "delta" in table:
            delta = self.number(table["delta"], "loss.delta", 1e-12, 1e12)
        expression = None
        if kind == "custom":
            expression = self.required(table, "expression", "loss.expression")
        try:
            make_loss(kind, delta, expression)
        except FormulaError as error:
            raise self.fail("loss.expression", f"{expression!r} {error}") from None
        return LossSpec(kind, reduction, delta, expression)

    def worked_point(self, table: Any, layers: tuple[LayerSpec, ...]) -> dict[str, Any]:
        """Names and numbers only; shapes are checked against the built network."""
        if not isinstance(table, dict):
            raise self.fail("worked_point", "must be a table ([worked_point])")
        names = ["x", "y"]
        for n, layer in enumerate(layers):
            names += [f"W{n}", f"b{n}"] if layer.bias else [f"W{n}"]
        self.check_fields(table, tuple(names), "worked_point")
        count = 0
        for name in names:
            value = self.required(table, name, f"worked_point.{name}")
            count += self.numbers(value, f"worked_point.{name}")
        if count > MAX_WORKED_NUMBERS:
            raise self.fail(
                "worked_point",
                f"holds {count} numbers; at most {MAX_WORKED_NUMBERS} are printed",
            )
        return {name: table[name] for name in names}

    def numbers(self, value: Any, field: str) -> int:
        """How many numbers ``value`` (a number or nested arrays of them) holds."""
        if isinstance(value, list):
            return sum(self.numbers(item, field) for item in value)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise self.fail(
                field, f"must be a number or arrays of numbers, got {value!r}"
            )
        return 1

    def only_for(
        self, table: dict[str, Any], where: str, key: str, kind: str, owner: str
    ) -> None:
        if key in table and kind != owner:
            raise self.fail(f"{where}.{key}", f"only {owner} takes {key}, not {kind}")

    def number(self, value: Any, field: str, low: float, high: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise self.fail(
                field, f"must be a number from {low:g} to {high:g}, got {value!r}"
            )
        return float(value)

    def function_name(self, value: Any, field: str) -> str:
        if (
            not isinstance(value, str)
            or not _FUNCTION_NAME.fullmatch(value)
            or keyword.iskeyword(value)
            or value in _OWN_FUNCTIONS
            or value in LAYER_MODULE_NAMES
            or reserved(value)
            or _VALUE_NAME.fullmatch(value)
        ):
            raise self.fail(
                field,
                f"got {value!r}; must be a lowercase Python identifier (a-z, 0-9, _) "
                "that the generated module does not use itself (not a built-in "
                "activation or a Python built-in such as len, not mlp, loss, forward, "
                "gradients, x, y, r0, h0, b0, ...)",
            )
        return value

    def check_function_names(self, layers: tuple[LayerSpec, ...]) -> None:
        """One name, one formula: two layers may share a name only with one formula."""
        seen: dict[str, tuple[int, Any]] = {}
        for n, layer in enumerate(layers):
            formula = definition(layer.activation, layer.slope, layer.expression)
            name = layer.function_name
            if name in seen and seen[name][1] != formula:
                field = "slope" if layer.activation == "leaky_relu" else "function_name"
                raise self.fail(
                    f"layers[{n}].{field}",
                    f"{name!r} is already defined differently by layers[{seen[name][0]}]; "
                    "one network uses one formula per function name",
                )
            seen.setdefault(name, (n, formula))

    def check_target(
        self, target: str, layers: tuple[LayerSpec, ...], loss: LossSpec
    ) -> None:
        """Refuse, before deriving, a function the target's arrays cannot compute."""
        refused = TARGETS[target].refuses
        formulas = [
            (
                f"layers[{n}].{'expression' if layer.activation == 'custom' else 'activation'}",
                layer.activation
                if layer.activation != "custom"
                else repr(layer.expression),
                definition(layer.activation, layer.slope, layer.expression),
            )
            for n, layer in enumerate(layers)
        ]
        formulas.append(
            (
                "loss.kind" if loss.kind != "custom" else "loss.expression",
                loss.kind if loss.kind != "custom" else repr(loss.expression),
                make_loss(loss.kind, loss.delta, loss.expression).element,
            )
        )
        for field, what, formula in formulas:
            for function, reason in refused.items():
                if formula is not None and formula.has(function):
                    raise self.fail(
                        field,
                        f"{what} needs {function.__name__}, which target = "
                        f'"{target}" cannot compute ({reason}); use target = "numpy"',
                    )

    def check_unrolled_size(self, size: int, layers: tuple[LayerSpec, ...]) -> None:
        count = 0
        for layer in layers:
            count += layer.width * (size + layer.bias)
            size = layer.width
        if count > MAX_UNROLLED_PARAMETERS:
            raise self.fail(
                "style",
                f"unrolled emits one line per scalar; this network has {count} "
                f"parameters, and unrolled allows at most {MAX_UNROLLED_PARAMETERS}; "
                'use style = "vectorized"',
            )
