"""``[tool.derive]`` in a project's ``pyproject.toml``, and which files of a folder
are specs.

The table is looked for as ruff looks for ``[tool.ruff]``: in the nearest
``pyproject.toml`` that has one, from the working folder upward. It gives what a run
without spec arguments does::

    [tool.derive]
    specs = ["specs/"]      # files or folders, relative to this pyproject.toml
    out = "generated"       # the output folder (default: generated, beside this file)
    pdf = false             # compile NAME.pdf too (default: false)

``out`` and ``pdf`` apply to every run in the project (``--out`` and ``--pdf`` /
``--no-pdf`` on the command line win); ``specs`` only to a run given no spec. Any
other key is an error, so a misspelled one is not silently ignored.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from derive.errors import DeriveError

#: The keys ``[tool.derive]`` may hold.
KEYS = ("specs", "out", "pdf")

#: TOML files that are some tool's configuration, never a spec: a folder given as a
#: spec (``derive .``, ``derive specs/``) leaves them out, as it leaves out every
#: hidden file (``.ruff.toml``, ``.taplo.toml``). Named on their own, they are read
#: as specs (and refused, if they are not one).
CONFIGURATION_FILES = frozenset(
    {
        "pyproject.toml",  # Python packaging, and [tool.*] of ruff, black, mypy, ...
        "ruff.toml",
        "taplo.toml",
        "uv.toml",
        "pixi.toml",
        "hatch.toml",
        "pdm.toml",
        "poetry.toml",
        "typos.toml",
        "_typos.toml",
        "Cargo.toml",
        "rustfmt.toml",
        "rust-toolchain.toml",
        "clippy.toml",
        "deny.toml",
        "netlify.toml",
        "book.toml",
    }
)


def is_spec_file(path: Path) -> bool:
    """Whether a folder's entry ``path`` (a ``*.toml``) stands for a spec: not a
    hidden file, not a tool's configuration file (:data:`CONFIGURATION_FILES`)."""
    return not path.name.startswith(".") and path.name not in CONFIGURATION_FILES


@dataclass(frozen=True)
class Config:
    """A ``[tool.derive]`` table, its paths made relative to the working folder."""

    path: Path  # the pyproject.toml it is in
    specs: tuple[Path, ...] | None = None
    out: Path | None = None
    pdf: bool | None = None

    def relative(self, path: Path) -> Path:
        """``path`` of the table (relative to its pyproject.toml), as the working
        folder sees it."""
        return _relative(self.path.parent / path)


def find_config(start: Path | None = None) -> Config | None:
    """``[tool.derive]`` of the nearest ``pyproject.toml`` above ``start`` (the
    working folder) that has the table, or None."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if not path.is_file():
            continue
        table = _derive_table(path)
        if table is not None:
            return _config(path, table)
    return None


def _shown(path: Path) -> str:
    """``path`` relative to the working folder where it can be."""
    from derive.files import display_path

    return display_path(path)


def _derive_table(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DeriveError(f"{_shown(path)}: cannot read the file ({error})") from None
    if "derive" not in text:  # not ours: no need to read, or refuse, its TOML
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeriveError(f"{_shown(path)}: not valid TOML ({error})") from None
    tool = data.get("tool")
    if not isinstance(tool, dict) or "derive" not in tool:
        return None
    table = tool["derive"]
    if not isinstance(table, dict):
        raise DeriveError(
            f"{_shown(path)}: tool.derive: must be a table ([tool.derive]), "
            f"got {table!r}"
        )
    return table


def _config(path: Path, table: dict[str, Any]) -> Config:
    shown = _shown(path)
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise DeriveError(
                f"{shown}: tool.derive.{key}: unknown key; {hint}allowed: "
                + ", ".join(KEYS)
            )
    base = path.parent
    specs = table.get("specs")
    if specs is not None:
        if (
            not isinstance(specs, list)
            or not specs
            or not all(isinstance(s, str) and s for s in specs)
        ):
            raise DeriveError(
                f"{shown}: tool.derive.specs: must be a list of spec files or folders "
                f'(strings, at least one), such as ["specs/"]; got {specs!r}'
            )
    out = table.get("out")
    if out is not None and (not isinstance(out, str) or not out):
        raise DeriveError(
            f'{shown}: tool.derive.out: must be a folder (a string), such as "generated"; '
            f"got {out!r}"
        )
    pdf = table.get("pdf")
    if pdf is not None and not isinstance(pdf, bool):
        raise DeriveError(
            f"{shown}: tool.derive.pdf: must be true or false; got {pdf!r}"
        )
    return Config(
        path=path,
        specs=None if specs is None else tuple(_relative(base / s) for s in specs),
        out=None if out is None else _relative(base / out),
        pdf=pdf,
    )


def _relative(path: Path) -> Path:
    """``path`` relative to the working folder when it is below it (so that messages
    and the listing of written files read as they do for arguments)."""
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path
