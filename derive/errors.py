"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations

from pathlib import Path


class DeriveError(Exception):
    """An error the command line reports as a single line and exit status 2."""


class SpecError(DeriveError):
    """A spec file is malformed: names the file, the field and what is allowed."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


class DerivationError(DeriveError):
    """derive's own bug: a module it generated disagrees with the spec (or raises)
    where it was checked. The command line reports it as one line and exit status 3;
    nothing is written."""
