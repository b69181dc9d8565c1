"""What each spec made the last time, so that a run where nothing changed derives
nothing (``derive --check specs/`` in about the time Python takes to start).

An entry is keyed by a hash of everything the generated files depend on: the spec's
bytes, the path its headers record, derive's version and the contents of its own
source files and templates (so that a change to derive's code invalidates every
entry, released or not), Python's version, and the versions of SymPy, ruff, Jinja2
and NumPy. It holds the SHA-256 of each file the spec made, never the files: a spec
is skipped only when the files on disk are, byte for byte, the ones it would make
(their hashes match the entry's). A file edited, deleted or formatted by another
tool is therefore never passed by the cache; the spec is then derived again, as
without a cache.

Entries live in ``.derive_cache/VERSION/KEY.json`` in the project holding the output
folder (the nearest folder above it with a ``pyproject.toml`` or ``.git``), or else
in the output folder's parent. The folder holds a ``.gitignore`` of ``*`` and a
``CACHEDIR.TAG``, as ruff's cache does, so that it is never committed nor backed up.
It is only an optimization: one that cannot be read or written is ignored, and so
is one that is not exactly what a run of its spec writes (:meth:`Cache.get`): it is
a miss, overwritten once the spec is derived. ``--no-cache`` reads no entry (every
spec is derived again) but writes each one afresh, so it also repairs a bad one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

from derive import __version__

#: derive's package folder.
PACKAGE = Path(__file__).resolve().parent
#: The folder's name.
CACHE_NAME = ".derive_cache"
#: The packages whose versions can change what derive writes.
DEPENDENCIES = ("sympy", "ruff", "jinja2", "numpy")
#: What marks a project's top folder (as in :func:`derive.cli.recorded_path`).
PROJECT_MARKERS = ("pyproject.toml", ".git")
#: The files an entry lists, a spec's NAME.py, NAME.tex and NAME.md (never its PDF,
#: which depends on the TeX installation the key does not hold).
CACHED_SUFFIXES = (".py", ".tex", ".md")
#: What :func:`file_hash` returns: 64 lowercase hex digits.
_HASH = re.compile(r"[0-9a-f]{64}")
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by derive.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def cache_folder(out: Path) -> Path:
    """Where the entries for output folder ``out`` live."""
    out = out.resolve()
    for folder in (out, *out.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder / CACHE_NAME / __version__
    return out.parent / CACHE_NAME / __version__


def resource_folder(name: str) -> Path:
    """``derive/NAME`` in a wheel, else ``NAME/`` at the checkout's top, as
    :func:`derive.render.resource_folder` finds it (which is not imported here: its
    module imports SymPy, which a run the cache answers for does not need)."""
    for folder in (PACKAGE / name, PACKAGE.parent / name):
        if folder.is_dir():
            return folder
    return PACKAGE / name


def _versions() -> list[str]:
    found = []
    for name in DEPENDENCIES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return found


def _source_files() -> Iterable[tuple[str, Path]]:
    """derive's own source files and its templates, each with its name inside its
    folder, in a fixed order."""
    templates = resource_folder("templates")
    files = [
        (f"derive/{p.relative_to(PACKAGE).as_posix()}", p)
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    # in a checkout, templates/ beside the package; in a wheel, derive/templates/
    files += [
        (f"templates/{p.relative_to(templates).as_posix()}", p)
        for p in templates.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    return sorted(files)


@cache
def fingerprint() -> str:
    """A hash of what, besides a spec, the generated files depend on."""
    digest = hashlib.sha256()
    for line in (f"derive {__version__}", f"python {sys.version}", *_versions()):
        digest.update(line.encode() + b"\n")
    for name, path in _source_files():
        data = path.read_bytes()
        digest.update(f"{name} {len(data)}\n".encode() + data)
    return digest.hexdigest()


def key(spec: bytes, recorded: str) -> str:
    """The key of a spec's entry: its bytes and the path its headers record."""
    digest = hashlib.sha256(fingerprint().encode())
    digest.update(recorded.encode("utf-8", "surrogateescape") + b"\0" + spec)
    return digest.hexdigest()


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_names(name: str) -> set[str]:
    """The files an entry of spec ``name`` lists."""
    return {f"{name}{suffix}" for suffix in CACHED_SUFFIXES}


class Cache:
    """The entries for one output folder. ``read=False`` (``--no-cache``) finds none
    but still stores what was derived, replacing the entry there was."""

    def __init__(self, out: Path, read: bool = True) -> None:
        self.read = read
        self.folder = cache_folder(out)

    def get(self, entry_key: str, name: str) -> dict[str, str] | None:
        """The hashes (file name -> SHA-256) of what spec ``name`` made, if stored.

        An entry is used only if it is exactly what :meth:`put` writes for that
        spec: its name, the spec's three files (:func:`cached_names`) and a
        well-formed hash for each. Anything else (edited by hand, truncated, from
        a bug) is a miss: trusting it would skip the spec and list none or only
        some of its files, or make ``--check`` call them orphans.
        """
        if not self.read:
            return None
        try:
            data = json.loads((self.folder / f"{entry_key}.json").read_bytes())
            stored, files = data["name"], data["files"]
        except (OSError, ValueError, KeyError, TypeError):  # none, or not ours
            return None
        if stored != name or not isinstance(files, dict):
            return None
        if set(files) != cached_names(name):
            return None
        if not all(isinstance(h, str) and _HASH.fullmatch(h) for h in files.values()):
            return None
        return files

    def matches(self, folder: Path, files: dict[str, str]) -> bool:
        """Whether each file is in ``folder`` with the hash given."""
        for name, expected in files.items():
            try:
                if file_hash((folder / name).read_bytes()) != expected:
                    return False
            except OSError:
                return False
        return True

    def put(self, entry_key: str, name: str, files: dict[str, bytes]) -> None:
        """Store what spec ``name`` made; a cache that cannot be written is left."""
        text = json.dumps(
            {"name": name, "files": {n: file_hash(d) for n, d in files.items()}},
            indent=1,
        )
        try:
            _prepare(self.folder.parent)
            self.folder.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".entry.", dir=self.folder)
            os.close(handle)
            try:
                Path(temporary).write_text(text, encoding="utf-8")
                os.replace(temporary, self.folder / f"{entry_key}.json")
            finally:
                Path(temporary).unlink(missing_ok=True)
        except OSError:
            pass


def _prepare(folder: Path) -> None:
    """Create the cache's top folder with its ``.gitignore`` and ``CACHEDIR.TAG``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (".gitignore", "# Automatically created by derive.\n*\n"),
        ("CACHEDIR.TAG", _TAG),
    ):
        if not (folder / name).exists():
            (folder / name).write_text(text, encoding="utf-8")
