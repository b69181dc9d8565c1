"""Write generated files all at once, or compare them with what is on disk.

:func:`write_all` writes every file to a temporary file beside its target and renames
them into place only after all of them were written, so a failure part way leaves the
previous files exactly as they were.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from derive.render import Output


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


def write_all(folder: Path, outputs: Sequence[Output]) -> list[Path]:
    """Write ``outputs`` into ``folder``; return the paths whose content changed."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = _file_mode()
    staged: list[tuple[str, Path]] = []
    try:
        for output in outputs:
            handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
            staged.append((temporary, folder / output.name))
            os.chmod(temporary, mode)
            data = output.text
            if isinstance(data, str):
                data = data.encode("utf-8")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
        changed = [
            target
            for (_, target), o in zip(staged, outputs, strict=True)
            if _differs(target, o.text)
        ]
        for temporary, target in staged:
            os.replace(temporary, target)
        staged.clear()
        return changed
    finally:
        for temporary, _ in staged:
            Path(temporary).unlink(missing_ok=True)


def stale(folder: Path, outputs: Sequence[Output]) -> list[Path]:
    """The files in ``folder`` that are missing or differ from ``outputs``."""
    return [folder / o.name for o in outputs if _differs(folder / o.name, o.text)]


def _differs(path: Path, text: str | bytes) -> bool:
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        return path.read_bytes() != data
    except FileNotFoundError:
        return True
