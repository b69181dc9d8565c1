"""Read and validate a network spec (TOML).

A spec describes a fully connected network::

    name = "seed_mlp"          # a Python identifier: the module is generated/NAME.py
    input = 1                  # size of the input
    shapes = "problem_set"     # or "torch" (the default)

    [[layers]]                 # one table per layer, input side first
    width = 3
    activation = "relu"
    bias = false               # default true

    [loss]
    kind = "squared"
    reduction = "mean"         # "mean" or "sum" over the batch (torch's names)

``shapes = "torch"`` gives torch's ``nn.Linear`` conventions: a leading batch axis on
``x``, ``W`` of shape ``(out, in)`` and ``b`` of shape ``(out,)``.
``shapes = "problem_set"`` gives the problem set's: one sample, no batch axis, and a
size-1 input or output is a scalar (so ``W0`` and the last ``W`` are vectors).

Every error names the file, the field and what is allowed (:class:`SpecError`).
"""

from __future__ import annotations

import difflib
import keyword
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive.activations import ACTIVATIONS
from derive.errors import SpecError
from derive.losses import LOSSES

SHAPES = ("torch", "problem_set")
STYLES = ("vectorized",)
REDUCTIONS = ("mean", "sum")
MAX_WIDTH = 1 << 20
MAX_LAYERS = 256

TOP_FIELDS = ("name", "description", "input", "shapes", "style", "layers", "loss")
LAYER_FIELDS = ("width", "activation", "bias")
LOSS_FIELDS = ("kind", "reduction")


@dataclass(frozen=True)
class LayerSpec:
    """One fully connected layer: ``h = activation(W @ h_prev + b)``."""

    width: int
    activation: str
    bias: bool


@dataclass(frozen=True)
class LossSpec:
    """The loss and how it is reduced over the batch."""

    kind: str
    reduction: str


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


def load_spec(path: Path | str) -> NetworkSpec:
    """Read ``path`` and return the validated spec, or raise :class:`SpecError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(path, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(path, "", f"cannot read the file ({error})") from None
    return parse_spec(text, path)


def parse_spec(text: str, path: Path | str) -> NetworkSpec:
    """Validate the TOML ``text`` read from ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, "", f"not valid TOML ({error})") from None
    if not data:
        raise SpecError(
            path, "", "the file is empty; a spec needs name, input, layers and loss"
        )
    return _Reader(path).network(data)


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
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"must be a string, got {description!r}")
        size = self.integer(
            self.required(data, "input", "input"), "input", 1, MAX_WIDTH
        )
        shapes = self.choice(data.get("shapes", "torch"), "shapes", SHAPES)
        style = self.choice(data.get("style", "vectorized"), "style", STYLES)
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
        return NetworkSpec(
            name=name,
            description=" ".join(description.split()),
            input=size,
            shapes=shapes,
            style=style,
            layers=tuple(self.layer(t, f"layers[{n}]") for n, t in enumerate(layers)),
            loss=self.loss(loss),
            source=Path(self.path).as_posix(),
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
            tuple(ACTIVATIONS),
        )
        bias = table.get("bias", True)
        if not isinstance(bias, bool):
            raise self.fail(f"{where}.bias", f"must be true or false, got {bias!r}")
        return LayerSpec(width=width, activation=activation, bias=bias)

    def loss(self, table: dict[str, Any]) -> LossSpec:
        self.check_fields(table, LOSS_FIELDS, "loss")
        kind = self.choice(
            self.required(table, "kind", "loss.kind"), "loss.kind", tuple(LOSSES)
        )
        reduction = self.choice(
            table.get("reduction", "mean"), "loss.reduction", REDUCTIONS
        )
        return LossSpec(kind=kind, reduction=reduction)
