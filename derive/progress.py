"""A status line on a terminal, for work that takes long enough to wonder about.

:class:`StatusLine` shows one line of text on standard error, rewritten in place as
the work moves on, and erased when it ends. It writes nothing at all when the stream
is not a terminal (a pipe, a file, a CI log), and, with a ``delay``, nothing for work
that ends before the delay is up: a quick run stays as quiet as it always was.
:class:`StatusLog` is what ``derive -v`` uses instead: every text on a line of its
own, on a terminal or not, each with the seconds since the run began.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

#: Told what a long piece of work is doing, a few words at a time.
Status = Callable[[str], None]


def quiet(text: str) -> None:
    """A :data:`Status` that says nothing."""


class StatusLine:
    """``with StatusLine() as status: status("deriving ...")``.

    Each call replaces the text shown. With ``delay`` seconds, the first text appears
    only once the work has run that long (from a timer thread, so a single long step
    is announced while it runs).
    """

    def __init__(
        self, prefix: str = "", delay: float = 0.0, stream: TextIO | None = None
    ) -> None:
        self.prefix = prefix
        self.delay = delay
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self._text = ""
        self._shown = False  # whether the line is on the screen now
        self._started = False  # whether the delay is over
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> StatusLine:
        if self.enabled:
            if self.delay > 0:
                self._timer = threading.Timer(self.delay, self._start)
                self._timer.daemon = True
                self._timer.start()
            else:
                self._started = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __call__(self, text: str) -> None:
        """Say that the work is now doing ``text``."""
        with self._lock:
            self._text = text
            if self.enabled and self._started:
                self._draw()

    def close(self) -> None:
        """Stop the timer and erase the line, so that what is printed next starts on
        a clean line."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._started = False
            if self._shown:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self._shown = False

    def _start(self) -> None:
        with self._lock:
            self._started = True
            if self._text:
                self._draw()

    def _draw(self) -> None:
        columns = shutil.get_terminal_size().columns
        line = f"{self.prefix}{self._text}"
        if len(line) >= columns:  # a wrapped line could not be erased with \r
            line = line[: max(columns - 4, 0)] + "..."
        self.stream.write(f"\r\033[K{line}")
        self.stream.flush()
        self._shown = True


class StatusLog:
    """``with StatusLog("derive: ") as status: status("deriving ...")``: each text
    written at once as a line of its own, prefixed with the seconds since the log
    was created (``derive: [  1.2 s] specs/seed.toml: ...``)."""

    def __init__(self, prefix: str = "", stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._lock = threading.Lock()

    def __enter__(self) -> StatusLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass

    def __call__(self, text: str) -> None:
        seconds = time.monotonic() - self._start
        with self._lock:
            self.stream.write(f"{self.prefix}[{seconds:5.1f} s] {text}\n")
            self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
