"""Write generated files all at once, or compare them with what is on disk.

:func:`write_all` writes every file to a temporary file beside its target, checks that
every target can be replaced, and only then renames them into place; should a rename
still fail (or Ctrl-C arrive) part way, the files already replaced are restored from
backups. A run changes every file or none.

Two runs writing into one folder take turns: each holds a lock on ``.derive.lock`` in
the folder while it writes (it is removed when the run is done), and a run that
finds it held waits :data:`LOCK_WAIT` seconds at most. While a run writes, Ctrl-C and
SIGTERM are held back until a point where what was done can be undone: between two
files staged, or before a rename; then they act, after the cleanup.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from derive.errors import DeriveError, Interrupted
from derive.progress import Status, quiet

if TYPE_CHECKING:  # derive.render imports SymPy, which a cached run does not need
    from derive.render import Output

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not serialized
    fcntl = None  # type: ignore[assignment]

#: The lock file a run holds in the output folder while it writes.
LOCK_NAME = ".derive.lock"
#: Seconds a run waits for another run writing into the same folder. Writing takes a
#: moment (everything is derived and compiled before the lock is taken), so a lock
#: held this long belongs to a run that is stuck or stopped (Ctrl-Z).
LOCK_WAIT = 30.0
#: Seconds between two tries at a held lock.
LOCK_POLL = 0.05


def display_path(path: Path) -> str:
    """``path`` as the generated headers name it: relative to here when it can be."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _file_mode() -> int:
    """The mode a new file gets here (``0o644`` under the usual umask 022).

    ``mkstemp`` creates its files readable by their owner only; the generated files
    are meant to be read by anyone, as a file written with ``open`` would be.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _not_a_folder(folder: Path) -> bool:
    """Whether ``folder`` exists as something else than a folder."""
    try:
        return folder.exists() and not folder.is_dir()
    except OSError as error:  # a name too long, say: pathlib raises for it
        raise DeriveError(f"--out {folder.as_posix()}: {_reason(error)}") from None


def output_folder(folder: Path) -> Path:
    """``folder``, created if missing; a :class:`DeriveError` if it cannot be."""
    if _not_a_folder(folder):
        raise DeriveError(f"--out {folder.as_posix()}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeriveError(
            f"--out {folder.as_posix()}: cannot create the folder ({_reason(error)})"
        ) from None
    return folder


def write_all(
    folder: Path, outputs: Sequence[Output], status: Status = quiet
) -> list[Path]:
    """Write ``outputs`` into ``folder``; return the paths whose content changed.

    ``status`` is told when the run waits for another one writing into ``folder``.
    """
    output_folder(folder)
    mode = _file_mode()
    with _HeldSignals() as signals, output_lock(folder, status, signals.check):
        staged: list[tuple[str, Path]] = []
        try:
            for output in outputs:
                signals.check()
                try:
                    handle, temporary = tempfile.mkstemp(
                        prefix=f".{output.name}.", dir=folder
                    )
                except OSError as error:
                    raise DeriveError(
                        f"--out {folder.as_posix()}: cannot write in this folder "
                        f"({_reason(error)})"
                    ) from None
                staged.append((temporary, folder / output.name))
                os.chmod(temporary, mode)
                data = output.text
                if isinstance(data, str):
                    data = data.encode("utf-8")
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
            for _, target in staged:
                if target.is_dir() and not target.is_symlink():
                    raise DeriveError(
                        f"{target.as_posix()}: is a folder, where derive writes a file; "
                        "no file was changed"
                    )
            changed = [
                target
                for (_, target), o in zip(staged, outputs, strict=True)
                if _differs(target, o.text)
            ]
            _replace_all(folder, staged, signals.check)
            staged.clear()
            signals.written = True
            return changed
        finally:
            for temporary, _ in staged:
                Path(temporary).unlink(missing_ok=True)


class _Stop(BaseException):
    """Raised at a check once Ctrl-C or SIGTERM came: unwinds through the cleanup
    (a BaseException, so that no ``except Exception`` stops it on the way)."""


class _HeldSignals:
    """``with _HeldSignals() as signals``: Ctrl-C and SIGTERM are only noted;
    ``signals.check()`` raises :class:`_Stop` if one came.

    A signal acting wherever it lands could fall between a rename and the note that
    it was done (and that file would not be put back), or inside the putting back.
    On leaving, the signal noted is raised again to the handlers found on entry, so
    it ends as it would have: KeyboardInterrupt, :class:`Interrupted`, or the end of
    the process. ``written`` (set by the caller) says it came after every file was in
    place. Outside the main thread nothing is held: signals reach only that one.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.written = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int] = {}

    def __enter__(self) -> _HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                handler = signal.getsignal(number)
                # an ignored signal stays ignored; None is a handler set outside
                # Python, which could not be put back
                if handler is not None and handler != signal.SIG_IGN:
                    self._previous[number] = handler
                    signal.signal(number, self._note)
        return self

    def _note(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:  # a second Ctrl-C must not cut the cleanup short
            self.received = number

    def check(self) -> None:
        if self.received is not None:
            raise _Stop

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if self.received is None:
            return
        try:
            signal.raise_signal(self.received)
        except KeyboardInterrupt as interrupt:
            # the run is told whether the files had all been written
            stopped = Interrupted.of(interrupt)
            raise Interrupted(stopped.signum, written=self.written) from None
        if not self.written:  # a handler that returns: the write was still undone
            raise Interrupted(self.received) from None


@contextmanager
def output_lock(
    folder: Path, status: Status = quiet, check: Callable[[], None] = lambda: None
) -> Iterator[None]:
    """Hold ``folder``'s lock (:data:`LOCK_NAME`), waiting :data:`LOCK_WAIT` seconds at
    most for another run holding it; ``check`` is called while waiting.

    The lock file is removed before it is released, so no run leaves it behind; a
    run that was waiting on the removed file then takes the one now at its path.
    Where the file system has no locks (some network mounts), the run goes on
    without one, as every run did before there was a lock.
    """
    path = folder / LOCK_NAME
    deadline: float | None = None
    while True:
        handle = _open_lock(path, folder)
        try:
            locked = _try_lock(handle)
        except BaseException:
            os.close(handle)
            raise
        if locked is None or (locked and _is_at(handle, path)):
            break
        os.close(handle)
        if locked:  # the lock of a file the run before removed: take the new one
            continue
        if deadline is None:
            deadline = time.monotonic() + LOCK_WAIT
            status(f"waiting for another derive run writing in {folder.as_posix()}/")
        if time.monotonic() >= deadline:
            holder = _holder(path)
            raise DeriveError(
                f"--out {folder.as_posix()}: another derive run{holder} is writing "
                f"in this folder and still holds {LOCK_NAME} after {LOCK_WAIT:g} s; "
                "no file was changed"
            )
        check()
        time.sleep(LOCK_POLL)
    try:
        if locked:
            try:  # for the message of a run that waits on this one
                os.ftruncate(handle, 0)
                os.write(handle, f"{os.getpid()}\n".encode())
            except OSError:
                pass
        yield
    finally:
        if locked:
            Path(path).unlink(missing_ok=True)
        os.close(handle)


def _open_lock(path: Path, folder: Path) -> int:
    flags = os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, os.O_RDWR | flags, 0o666)
    except OSError as raised:
        error = raised
    if isinstance(error, PermissionError):
        try:  # a lock file another user left: locking needs no writing
            return os.open(path, os.O_RDONLY | flags)
        except OSError:
            pass
    raise DeriveError(
        f"--out {folder.as_posix()}: cannot write in this folder ({_reason(error)})"
    ) from None


def _try_lock(handle: int) -> bool | None:
    """True once locked, False while another run holds it, None without locks."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: no locks on this file system
        return None
    return True


def _is_at(handle: int, path: Path) -> bool:
    """Whether the file ``handle`` is open on is still the one at ``path``."""
    try:
        here = os.stat(path)
    except OSError:
        return False
    there = os.fstat(handle)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(path: Path) -> str:
    """`` (process 1234)``, the run holding the lock at ``path``, where it says."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""


def _replace_all(
    folder: Path,
    staged: Sequence[tuple[str, Path]],
    check: Callable[[], None] = lambda: None,
) -> None:
    """Rename each temporary file onto its target, all or none.

    The targets that exist are first linked (or copied) into a backup folder; if a
    rename fails, or ``check`` raises before one, the targets already replaced get
    their backups back.
    """
    backups = Path(tempfile.mkdtemp(prefix=".derive-backup-", dir=folder))
    try:
        saved: dict[Path, Path] = {}
        for _, target in staged:
            if target.exists() or target.is_symlink():
                saved[target] = backups / target.name
                try:
                    os.link(target, saved[target], follow_symlinks=False)
                except OSError:
                    shutil.copy2(target, saved[target], follow_symlinks=False)
        replaced: list[Path] = []
        try:
            for temporary, target in staged:
                check()
                os.replace(temporary, target)
                replaced.append(target)
        except BaseException as error:
            for target in reversed(replaced):
                if target in saved:
                    os.replace(saved[target], target)
                else:
                    target.unlink(missing_ok=True)
            if isinstance(error, OSError):
                name = Path(error.filename2 or error.filename or folder).name
                raise DeriveError(
                    f"{(folder / name).as_posix()}: cannot replace it "
                    f"({_reason(error)}); no file was changed"
                ) from None
            raise
    finally:
        shutil.rmtree(backups, ignore_errors=True)


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def stale(folder: Path, outputs: Sequence[Output]) -> list[Path]:
    """The files in ``folder`` that are missing or differ from ``outputs``."""
    if _not_a_folder(folder):
        raise DeriveError(f"--out {folder.as_posix()}: is a file, not a folder")
    return [folder / o.name for o in outputs if _differs(folder / o.name, o.text)]


def _differs(path: Path, text: str | bytes) -> bool:
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        return path.read_bytes() != data
    except OSError:  # missing, a folder, or unreadable: not what derive would write
        return True


#: The header line every generated text file has among its first lines
#: (:func:`derive.render.header`): ``# Generated by derive 0.1.0 from specs/seed.toml.``
_HEADER = re.compile(r"^(?:#|%|) ?Generated by derive \S+ from (?P<source>.+)\.$")
#: The escapes a header writes a spec's path with (Python's; ``\x2d`` for a ``-``
#: after a ``-`` in the Markdown's HTML comment).
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[\\nrtfv])")
_SIMPLE = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v"}
#: What marks the top folder of a project (as for the header's path).
_PROJECT_MARKERS = ("pyproject.toml", ".git")


@dataclass(frozen=True)
class Orphan:
    """A generated file whose spec no longer makes it."""

    path: Path
    reason: str  # "its spec specs/old.toml is gone"
    gone: bool = True  # False: its spec is there and makes other files now


def recorded_source(path: Path) -> str | None:
    """The spec's path a generated file's header records, or None when ``path``
    is not a file derive wrote."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096).decode("utf-8", "replace").splitlines()[:6]
    except OSError:
        return None
    for line in head:
        match = _HEADER.match(line.strip())
        if match:
            return _ESCAPE.sub(_unescape, match["source"])
    return None


def _unescape(match: re.Match[str]) -> str:
    code = match[1]
    if code in _SIMPLE:
        return _SIMPLE[code]
    return chr(int(code[1:], 16))


def orphans(
    folder: Path, made: set[str], given: set[Path], builtin: str
) -> list[Orphan]:
    """The files derive wrote in ``folder`` (its header says so) that this run does
    not make (``made``: the names of the run's files), because their spec is gone
    or, being one of the run's specs (``given``, resolved), makes other files now.

    A header's path is relative to the project the spec was in, or to the output
    folder (:func:`derive.cli.recorded_path`); both are tried. ``builtin`` (the
    built-in default's path) and ``<stdin>`` always count as there. A PDF is an
    orphan with its ``.tex``.
    """
    if not folder.is_dir():
        return []
    roots = [folder.resolve()]
    for above in (roots[0], *roots[0].parents):
        if any((above / marker).exists() for marker in _PROJECT_MARKERS):
            roots.insert(0, above)
            break
    found: dict[str, Orphan] = {}
    entries = sorted(p for p in folder.iterdir() if p.name not in made)
    for path in entries:
        if path.suffix not in (".py", ".tex", ".md") or not path.is_file():
            continue
        source = recorded_source(path)
        if source is None or source in (builtin, "<stdin>"):
            continue
        candidates = [(root / source).resolve() for root in roots]
        if any(c in given for c in candidates):
            found[path.name] = Orphan(
                path, f"its spec {source} makes other files now", gone=False
            )
        elif not any(c.is_file() for c in candidates):
            found[path.name] = Orphan(path, f"its spec {source} is gone")
    for path in entries:
        tex = f"{path.stem}.tex"
        if path.suffix == ".pdf" and tex in found:
            found[path.name] = Orphan(path, found[tex].reason, found[tex].gone)
    return [found[name] for name in sorted(found)]
