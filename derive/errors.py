"""Errors that reach the user as one line, never as a traceback; and the signals
that stop a run (Ctrl-C, SIGTERM), which do too."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """A command line whose argument errors are one line, as every other error is
    (the usage is in ``--help``); exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


class DeriveError(Exception):
    """An error the command line reports as a single line and exit status 2."""


def one_line(error: BaseException) -> str:
    """``error``'s message as the command line prints it: one line, whatever a file
    name in it holds (a line break, a terminal escape), each character that is not
    printable written as Python writes it in a string (``\\n``, ``\\x1b``)."""
    text = str(error)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


class SpecError(DeriveError, ValueError):
    """A spec file is malformed: names the file, the field and what is allowed.

    A :class:`ValueError` too, as a bad argument is in Python: code calling
    :func:`derive.build` on a spec it was handed can catch what it already catches
    for bad input, without knowing derive's own classes."""

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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, stopping a run.

    A :class:`KeyboardInterrupt`, so that SIGTERM (``kill``, ``timeout``, a CI job
    cancelled) goes through the same cleanup Ctrl-C does: temporary files removed,
    replaced files put back, child processes killed. ``status`` is the exit status
    a shell gives a process that signal ended, 128 + its number: 130 for Ctrl-C
    (SIGINT), 143 for SIGTERM. ``written`` is true when the signal came only after
    every file was in place, too late to undo anything.
    """

    def __init__(self, signum: int = signal.SIGINT, *, written: bool = False) -> None:
        super().__init__(signum)
        self.signum = signum
        self.written = written

    @classmethod
    def of(cls, error: KeyboardInterrupt) -> Interrupted:
        """``error`` itself, or a plain Ctrl-C's KeyboardInterrupt as one."""
        return error if isinstance(error, Interrupted) else cls()

    @property
    def status(self) -> int:
        return 128 + self.signum

    @property
    def what(self) -> str:
        return "terminated" if self.signum == signal.SIGTERM else "interrupted"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Interrupted`, as Ctrl-C raises
    KeyboardInterrupt, instead of ending the process on the spot (which left
    temporary files and half-replaced outputs behind).

    Only in the main thread, the one Python delivers signals to; a SIGTERM that is
    ignored (``SIG_IGN``) on entry stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        # None: a handler set outside Python, which cannot be put back; the default.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
