"""Write generated files all at once, or compare them with what is on disk.

:func:`write_all` writes every file to a temporary file beside its target, checks that
every target can be replaced, and only then renames them into place; should a rename
still fail (or Ctrl-C arrive) part way, the files already replaced are restored from
backups. A run changes every file or none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from derive.errors import DeriveError
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


def output_folder(folder: Path) -> Path:
    """``folder``, created if missing; a :class:`DeriveError` if it cannot be."""
    if folder.exists() and not folder.is_dir():
        raise DeriveError(f"--out {folder.as_posix()}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeriveError(
            f"--out {folder.as_posix()}: cannot create the folder ({_reason(error)})"
        ) from None
    return folder


def write_all(folder: Path, outputs: Sequence[Output]) -> list[Path]:
    """Write ``outputs`` into ``folder``; return the paths whose content changed."""
    output_folder(folder)
    mode = _file_mode()
    staged: list[tuple[str, Path]] = []
    try:
        for output in outputs:
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
        _replace_all(folder, staged)
        staged.clear()
        return changed
    finally:
        for temporary, _ in staged:
            Path(temporary).unlink(missing_ok=True)


def _replace_all(folder: Path, staged: Sequence[tuple[str, Path]]) -> None:
    """Rename each temporary file onto its target, all or none.

    The targets that exist are first linked (or copied) into a backup folder; if a
    rename fails, the targets already replaced get their backups back.
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
    if folder.exists() and not folder.is_dir():
        raise DeriveError(f"--out {folder.as_posix()}: is a file, not a folder")
    return [folder / o.name for o in outputs if _differs(folder / o.name, o.text)]


def _differs(path: Path, text: str | bytes) -> bool:
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        return path.read_bytes() != data
    except OSError:  # missing, a folder, or unreadable: not what derive would write
        return True
