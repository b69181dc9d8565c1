"""derive from Python: a spec's gradient module, built in memory, and its derivation.

    >>> import derive
    >>> net = derive.build("specs/seed.toml")        # a module, no file written
    >>> grads = net.gradients(params, x, y)
    >>> derive.derivation("specs/seed.toml")         # rendered in Jupyter
    >>> derive.derivation("specs/seed.toml").gradient("W1")

A spec is given as a path, as TOML text, or as a dict shaped like the TOML. The module
is executed from exactly the source ``derive`` writes for that spec, and a bad spec
raises the same :class:`~derive.errors.SpecError`, with the same one-line message, as
the command line prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from derive.document import DocumentContext, GradientMath
from derive.equations import EquationSpec
from derive.files import display_path
from derive.loading import load_module
from derive.render import (
    derive_spec,
    gradient_markdown,
    internal_errors,
    python_code,
    rendered,
)
from derive.spec import NetworkSpec, load_spec, parse_spec, spec_from_data

#: What :func:`build` and :func:`derivation` take: a path to a spec file, the TOML
#: text of one (any text with a line break), or the dict ``tomllib`` would read from it.
Spec = str | os.PathLike[str] | Mapping[str, Any]


class GeneratedModule(Protocol):
    """What :func:`build` returns, as a type checker sees it: what every generated
    module has, whichever the spec's form, style and target.

    ``forward``, ``loss`` and ``gradients`` take ``params``, a dict of arrays keyed
    by parameter name (shapes in ``PARAMETER_SHAPES``), then the inputs: ``x`` (and
    ``y``) for a ``[[layers]]`` spec, an equation spec's inputs by name or in the
    order of ``INPUT_SHAPES``; ``loss`` of a ``[[layers]]`` spec also takes
    ``(y_predicted, y_observed)``. The rest (``mlp``, the ``d_loss_d_*`` functions,
    ``INPUT_SHAPE``, ...) differs between specs and is ``Any`` here. A module
    imported from its file (``generated/NAME.py``) is typed exactly instead: its
    inputs by name, and ``params`` its own ``TypedDict``, ``Parameters``.
    """

    __name__: str
    PARAMETER_SHAPES: dict[str, tuple[int, ...]]

    def forward(
        self, params: Mapping[str, Any], /, *inputs: Any, **named: Any
    ) -> dict[str, Any]: ...

    def loss(self, *arguments: Any, **named: Any) -> Any: ...

    def gradients(
        self, params: Mapping[str, Any], /, *inputs: Any, **named: Any
    ) -> dict[str, Any]: ...

    def __getattr__(self, name: str) -> Any: ...


def build(spec: Spec, *, source: str | None = None) -> GeneratedModule:
    """The generated gradient module for ``spec``, imported from memory.

    It is the module ``derive`` would write as ``NAME.py``, byte for byte: the same
    ``forward``, ``loss``, ``gradients`` and ``d_loss_d_*`` functions. Nothing is
    written to disk and nothing is added to ``sys.modules``. ``source`` names the spec
    in the module's header and in errors (default: the path, as ``derive`` names it;
    ``<string>`` for TOML text; ``<dict>`` for a dict).
    """
    network, label = _read(spec, source)
    with internal_errors(label):
        code = python_code(derive_spec(network), label)
    # The module is a ModuleType at run time; the protocol is the part of its
    # attributes that every spec's module has, which mypy cannot see in a module
    # made from text.
    return cast(GeneratedModule, load_module(network.name, code.source))


def derivation(spec: Spec, *, source: str | None = None) -> DerivationDocument:
    """The derivation of ``spec``'s gradients, as the document ``derive`` writes.

    Jupyter renders it as Markdown with its math; ``.gradient("W1")`` is one
    gradient's chain-rule steps, ``.source`` the generated module's source.
    """
    made = rendered(*_read(spec, source))
    return DerivationDocument(made.document, made.markdown, made.tex, made.code.source)


@dataclass(frozen=True)
class GradientSteps:
    """One gradient's derivation: the chain rule step by step, its matrix form and
    the code computing it, as a section of the Markdown document."""

    name: str  # the value or parameter it is the gradient of: W1
    function: str  # the generated function computing it: d_loss_d_W1
    markdown: str
    math: GradientMath = field(repr=False)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __str__(self) -> str:
        return self.markdown


@dataclass(frozen=True)
class DerivationDocument:
    """A network's derivation: the Markdown and LaTeX documents ``derive`` writes,
    and the source of the module it generates."""

    document: DocumentContext = field(repr=False)
    markdown: str = field(repr=False)
    latex: str = field(repr=False)
    source: str = field(repr=False)

    @property
    def name(self) -> str:
        """The network's name (``NAME.py``)."""
        return self.document.name

    @property
    def targets(self) -> tuple[str, ...]:
        """Every value and parameter with a gradient, in backward-pass order."""
        return tuple(g.target for g in self.document.gradients)

    @property
    def worked_point(self) -> dict[str, NDArray[np.float64]] | None:
        """The spec's ``[worked_point]`` evaluated by SymPy (exactly, where it can):
        ``x``, ``y_observed``, every parameter, value and gradient (``d_loss_d_W1``)
        and ``loss``, keyed by name, as float64 arrays; ``None`` without one."""
        worked = self.document.worked
        if worked is None:
            return None
        return {
            name: np.asarray(value, dtype=np.float64)
            for name, value in worked.numbers.items()
        }

    def gradient(self, name: str) -> GradientSteps:
        """The derivation of the gradient with respect to ``name`` (``"W1"``), or of
        the generated function ``name`` (``"d_loss_d_W1"``)."""
        for math in self.document.gradients:
            if name in (math.target, math.name):
                markdown = gradient_markdown(math, self.document.style)
                return GradientSteps(math.target, math.name, markdown, math)
        raise ValueError(
            f"{self.name} has no gradient with respect to {name!r}; it has: "
            f"{', '.join(self.targets)}"
        )

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __str__(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return (
            f"<derivation of {self.name}: {len(self.targets)} gradients "
            f"({', '.join(self.targets)})>"
        )


def _read(spec: Spec, source: str | None) -> tuple[NetworkSpec | EquationSpec, str]:
    """The validated spec and the name it goes by in headers and errors."""
    if isinstance(spec, Mapping):
        label = source or "<dict>"
        return spec_from_data(dict(spec), label), label
    if isinstance(spec, str) and "\n" in spec:
        label = source or "<string>"
        return parse_spec(spec, label), label
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        return load_spec(path), source or display_path(path)
    raise TypeError(
        f"spec must be a path, TOML text or a dict, not {type(spec).__name__}"
    )
