"""The ``derive`` command line.

    derive                      regenerate the built-in default (specs/seed.toml), or
                                the specs [tool.derive] in pyproject.toml names
    derive SPEC.toml ...        generate NAME.py, NAME.tex and NAME.md for each spec
    derive specs/               every spec in a folder (:func:`derive.config.is_spec_file`)
    derive - < SPEC.toml        a spec read from standard input (recorded as <stdin>)
    derive --out DIR ...        write into DIR instead of ./generated
    derive --check ...          write nothing; exit 1 if any generated file is stale,
                                or is orphaned (its spec is gone)
    derive --diff ...           write nothing; print a unified diff of what would
                                change, exit 1 if anything would
    derive --pdf ...            also compile each NAME.tex to NAME.pdf (needs pdflatex)
    derive -q / -v ...          only errors and findings / every step, as it happens
    derive audit SPEC MODULE.py check a hand-written gradient module against SPEC's
                                derivation (derive audit --help)

Errors in a spec are reported in one line naming the file and the field, one line for
each spec that has one; the exit status is then 2 and no file is touched. Ctrl-C and
SIGTERM stop a run the same way, with exit status 130 and 143; a run waits for another
one writing into the same folder (:func:`derive.files.output_lock`). A module that
fails the numerical check it gets before it is written (:mod:`derive.verify`) is
derive's own bug: one line, exit status 3, nothing written. A spec whose files on disk
are what it made the last time, with the same derive and dependencies, is not derived
again (:mod:`derive.cache`). A closed pipe (``derive --diff | head -1``) ends the run
quietly, exit status 1, as Python's documentation advises.
"""

from __future__ import annotations

import argparse
import difflib
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from derive import __version__
from derive.cache import Cache, key, resource_folder
from derive.config import Config, find_config, is_spec_file
from derive.errors import (
    DerivationError,
    DeriveError,
    Interrupted,
    OneLineParser,
    SpecError,
    one_line,
    sigterm_as_interrupt,
)
from derive.files import Orphan, display_path, orphans, stale, write_all
from derive.pdf import compile_tex, pdflatex
from derive.progress import Status, StatusLine, StatusLog, quiet

# derive.render and derive.spec import SymPy (a second of a run's start), which a run
# the cache answers for entirely does not need: they are imported where they are used.
if TYPE_CHECKING:
    from derive.equations import EquationSpec
    from derive.render import Output
    from derive.spec import NetworkSpec

#: derive.spec.MAX_SPEC_BYTES (a test keeps them equal): the largest spec read.
MAX_SPEC_BYTES = 1 << 20

DEFAULT_SPEC = "specs/seed.toml"
DEFAULT_OUT = Path("generated")
#: The spec argument that reads standard input, and what the headers record for it.
STDIN = "-"
STDIN_NAME = "<stdin>"
#: Seconds a run goes on before it says, on a terminal, what it is doing.
STATUS_DELAY = 1.0
DESCRIPTIONS = {
    ".py": "gradient code",
    ".tex": "derivation, LaTeX",
    ".md": "derivation, Markdown",
    ".pdf": "derivation, PDF",
}

EPILOG = f"""\
commands:
  derive [SPEC ...]             generate NAME.py, NAME.tex and NAME.md for each spec
  derive audit SPEC MODULE.py   grade a hand-written gradient module against the
                                derivation of SPEC (see derive audit --help)

examples:
  derive                        the built-in default ({DEFAULT_SPEC}) into generated/
  derive specs/                 every spec in specs/
  derive --check specs/         exit 1 if a file in generated/ is stale or orphaned
  derive --diff specs/          show what would change, as a unified diff
  derive - --out gen < net.toml a spec from standard input
  derive audit specs/seed.toml my_gradients.py
  derive audit specs/seed.toml my_gradients.py --json

Without SPEC, derive runs the specs named by [tool.derive] in the nearest
pyproject.toml (specs = [...], out = "...", pdf = true/false), else the built-in
default. A folder stands for its *.toml files, except hidden ones and tools'
configuration files (pyproject.toml, ruff.toml, taplo.toml, Cargo.toml, ...).

exit status: 0 done (or nothing to change), 1 --check or --diff found a change, 2 an
error in a spec or an argument (nothing written), 3 derive's own bug (nothing
written), 130/143 interrupted by Ctrl-C/SIGTERM.
"""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="derive",
        usage="derive [options] [SPEC ...]\n       derive audit SPEC MODULE.py [options]",
        description="Derive backpropagation for a network spec with SymPy and write it as "
        "plain NumPy code plus a LaTeX and Markdown derivation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help="network spec files (TOML), folders of them, or - for standard input; "
        "default: the specs of [tool.derive] in pyproject.toml, else the built-in "
        f"{DEFAULT_SPEC}, the problem set's 1-3-3-1 ReLU network",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: out of [tool.derive], else generated)",
    )
    # --check and --diff, --pdf and --no-pdf: each pair says two opposite things,
    # refused (one line, exit 2) as -q with -v is, rather than one silently winning
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files that are missing, differ, or "
        "are orphaned (their spec is gone)",
    )
    compare.add_argument(
        "--diff",
        action="store_true",
        help="write nothing; print a unified diff of each file that would change "
        "(an orphaned file as its deletion), and exit 1 if any would. Its paths are "
        "relative to the project's root (the folder of the pyproject.toml with "
        "[tool.derive], else the working folder), so that git apply run there "
        "applies it",
    )
    pdf = parser.add_mutually_exclusive_group()
    pdf.add_argument(
        "--pdf",
        action="store_const",
        const=True,
        default=None,
        help="also write NAME.pdf, compiled from NAME.tex with pdflatex (not checked "
        "by --check; default: pdf of [tool.derive], else no)",
    )
    pdf.add_argument(
        "--no-pdf",
        dest="pdf",
        action="store_const",
        const=False,
        help="write no PDF, whatever [tool.derive] says",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="derive every spec again, even one whose files are what it made the "
        "last time, and rewrite its entry in .derive_cache/",
    )
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only errors, and what --check and --diff find",
    )
    talk.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say what each step does, as it starts",
    )
    parser.add_argument("--version", action="version", version=f"derive {__version__}")
    return parser


#: What marks the top folder of a project, looked for above the spec.
PROJECT_MARKERS = ("pyproject.toml", ".git")


def recorded_path(spec: Path, out: Path) -> str:
    """``spec`` as the generated files' headers record it, the same from any working
    folder: relative to the project it is in (the nearest folder above it with a
    ``pyproject.toml`` or ``.git``), else relative to the output folder."""
    spec, out = spec.resolve(), out.resolve()
    for folder in spec.parents:
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return spec.relative_to(folder).as_posix()
    return Path(os.path.relpath(spec, out)).as_posix()


@dataclass(frozen=True)
class Settings:
    """What a run does: the arguments, with [tool.derive]'s defaults filled in."""

    specs: tuple[str, ...]  # empty: the built-in default
    out: Path
    out_label: str  # how errors name it: "--out", or "pyproject.toml: tool.derive.out"
    check: bool
    diff: bool
    pdf: bool
    cache: bool
    verbosity: int  # -1 quiet, 0 normal, 1 verbose
    config: Config | None

    @property
    def compiles_pdfs(self) -> bool:
        """Whether the run compiles PDFs: --check does not look at them."""
        return self.pdf and (self.diff or not self.check)


def settings(arguments: argparse.Namespace) -> Settings:
    """The arguments, completed from the nearest ``[tool.derive]``."""
    config = find_config()
    specs: tuple[str, ...] = tuple(arguments.specs)
    if not specs and config is not None and config.specs is not None:
        specs = tuple(str(p) for p in config.specs)
    out, out_label = arguments.out, "--out"
    if out is None and config is not None:
        # [tool.derive]'s paths are relative to its pyproject.toml, the default out
        # too: a run from a subfolder must not look for (or write) a second one there
        if config.out is not None:
            out = config.out
        else:
            out = config.relative(DEFAULT_OUT)
        out_label = f"{display_path(config.path)}: tool.derive.out"
    pdf = arguments.pdf
    if pdf is None:
        pdf = bool(config is not None and config.pdf)
    return Settings(
        specs=specs,
        out=out if out is not None else DEFAULT_OUT,
        out_label=out_label,
        check=arguments.check,
        diff=arguments.diff,
        pdf=pdf,
        cache=not arguments.no_cache,
        verbosity=-1 if arguments.quiet else 1 if arguments.verbose else 0,
        config=config,
    )


@dataclass
class Source:
    """One spec of the run, and what became of it."""

    path: Path | None  # None: standard input
    shown: str  # in messages: as given, relative to here
    recorded: str  # in the headers
    data: bytes | None = None  # its bytes, when they could be read
    spec: NetworkSpec | EquationSpec | None = None  # parsed: it is to be derived
    key: str | None = None  # its cache entry's
    cached: dict[str, str] | None = None  # from the cache: its files' hashes
    name: str = ""
    outputs: list[Output] = field(default_factory=list)  # once derived


def _sources(settings: Settings, errors: list[DeriveError]) -> list[Source]:
    """The specs of the run, with each folder replaced by the specs in it; a folder
    without any is an error (added to ``errors``)."""
    if not settings.specs:
        default = resource_folder("specs") / Path(DEFAULT_SPEC).name
        return [Source(default, DEFAULT_SPEC, DEFAULT_SPEC)]
    found: list[Source] = []
    seen: set[Path] = set()  # resolved: a spec named twice is read once
    stdin_given = False
    for name in settings.specs:
        if name == STDIN:
            if stdin_given:
                errors.append(
                    DeriveError(f"{STDIN_NAME}: standard input can be read only once")
                )
            else:
                found.append(Source(None, STDIN_NAME, STDIN_NAME))
            stdin_given = True
            continue
        path = Path(name)
        try:
            folder = path.is_dir()
        except OSError:  # a name too long: load_spec says so, in one line
            folder = False
        if folder:
            files = sorted(p for p in path.glob("*.toml") if is_spec_file(p))
            if not files:
                errors.append(
                    DeriveError(f"{display_path(path)}: no *.toml spec in this folder")
                )
            paths = files
        else:
            paths = [path]
        for spec in paths:
            try:
                resolved = spec.resolve()
            except (OSError, RuntimeError):  # a name too long, a link loop
                resolved = None
            if resolved is not None:
                if resolved in seen:
                    continue
                seen.add(resolved)
            try:
                recorded = recorded_path(spec, settings.out)
            except (OSError, ValueError):  # a name too long: reading it says so
                recorded = spec.as_posix()
            found.append(Source(spec, display_path(spec), recorded))
    return found


def _read_regular(path: Path) -> bytes | None:
    """The bytes of the spec file ``path`` if it is a regular file of at most
    :data:`MAX_SPEC_BYTES`; None for anything else, which :func:`load_spec` then
    refuses in its own words (a FIFO, a folder, a file too big, a name too long)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        handle = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SPEC_BYTES:
            return None
        with open(handle, "rb", closefd=False) as stream:
            data = stream.read(MAX_SPEC_BYTES + 1)  # +1: it may have grown
    except OSError:
        return None
    finally:
        os.close(handle)
    return data if len(data) <= MAX_SPEC_BYTES else None


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None:
        raise SpecError(STDIN_NAME, "", "there is no standard input to read")
    try:
        data = stream.buffer.read(MAX_SPEC_BYTES + 1)
    except (OSError, ValueError, AttributeError) as error:
        raise SpecError(STDIN_NAME, "", f"cannot read it ({error})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            STDIN_NAME,
            "",
            f"it holds more than {MAX_SPEC_BYTES} bytes; a spec is at most "
            f"{MAX_SPEC_BYTES} (1 MiB)",
        )
    return data


def _load(source: Source, settings: Settings, cache: Cache, note: Status) -> None:
    """Read ``source``: from the cache, when its files on disk are what it made
    the last time; else parsed, to be derived. A bad spec raises SpecError."""
    if source.path is None:
        source.data = _read_stdin()
    else:
        source.data = _read_regular(source.path)
        if source.data is None:  # not a plain file: load_spec says what it is
            from derive.spec import load_spec

            source.spec = load_spec(source.path)
            source.name = source.spec.name
            return
    # The key is worked out with --no-cache too: the entry is then written afresh.
    source.key = key(source.data, source.recorded)
    declared = _declared_name(source.data)
    entry = None if declared is None else cache.get(source.key, declared)
    if not cache.read:
        note(f"{source.shown}: --no-cache; deriving it")
    elif entry is None:
        note(f"{source.shown}: not in the cache; deriving it")
    elif settings.compiles_pdfs:
        note(f"{source.shown}: --pdf compiles every spec again; deriving it")
    elif not cache.matches(settings.out, entry):
        note(
            f"{source.shown}: its files in {settings.out.as_posix()}/ are not the "
            "ones it made the last time; deriving it"
        )
    else:
        assert declared is not None
        source.name, source.cached = declared, entry
        note(
            f"{source.shown}: unchanged since the last run (spec, derive and its "
            f"dependencies; its files in {settings.out.as_posix()}/ too): skipped"
        )
        return
    try:
        # utf-8-sig: files saved by Windows editors start with a byte-order mark.
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(
            source.path or STDIN_NAME, "", f"cannot read the file ({error})"
        ) from None
    from derive.spec import parse_spec

    source.spec = parse_spec(text, source.path or STDIN_NAME)
    source.name = source.spec.name


def _declared_name(data: bytes) -> str | None:
    """The ``name`` a spec's bytes give (both spec forms have it at the top), read
    with tomllib alone: a cache entry is checked against it without SymPy. None when
    the bytes are no TOML with a string name (parsing the spec then says why)."""
    import tomllib

    try:
        table = tomllib.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    name = table.get("name")
    return name if isinstance(name, str) else None


def _saying(status: Status, where: str) -> Status:
    """``status``, each text prefixed with the spec it is about.

    A text said a second time is marked so: derive.render prints and formats the
    module twice, a draft to check numerically and then the module written, whose
    header says how it was checked; -v showed the same two lines twice."""
    said: set[str] = set()

    def say(text: str) -> None:
        if text in said:
            text = f"{text} again (the module written, its header saying how it was checked)"
        said.add(text)
        status(f"{where}: {text}")

    return say


def _derive_all(
    sources: Sequence[Source],
    settings: Settings,
    status: Status,
    note: Status,
    errors: list[DeriveError],
) -> None:
    """Read every spec, then derive those the cache does not answer for. Every
    error is added to ``errors``: all the spec errors (nothing is derived then),
    else each spec's derivation error."""
    cache = Cache(settings.out, read=settings.cache)
    names: dict[str, str] = {}
    for source in sources:
        try:
            _load(source, settings, cache, note)
        except DeriveError as error:
            errors.append(error)
            continue
        if source.name in names:
            errors.append(
                DeriveError(
                    f"{source.shown}: name: '{source.name}' is also the name in "
                    f"{names[source.name]}; each network needs its own name"
                )
            )
        names.setdefault(source.name, source.shown)
    if errors:
        return
    count = len(sources)
    for number, source in enumerate(sources, start=1):
        if source.spec is None:
            continue
        from derive.render import render

        where = f"{source.shown} ({number} of {count})" if count > 1 else source.shown
        try:
            source.outputs = render(
                source.spec, source.recorded, _saying(status, where)
            )
        except DeriveError as error:  # DerivationError included: derive's own bug
            errors.append(error)


def _store(sources: Sequence[Source], settings: Settings) -> None:
    """Put what each derived spec made into the cache (its PDF left out: it
    depends on the TeX installation, which the cache's key does not hold)."""
    cache = Cache(settings.out)
    for source in sources:
        if source.key is not None and source.outputs:
            made = {
                o.name: o.text.encode("utf-8") if isinstance(o.text, str) else o.text
                for o in source.outputs
                if not o.name.endswith(".pdf")
            }
            cache.put(source.key, source.name, made)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
    try:
        try:
            return _main(argv)
        finally:
            # Flushed here, not at exit (--help and --version exit through here
            # too), so that a reader that went away (head -1) is met below instead
            # of in Python's shutdown, which prints a traceback.
            sys.stdout.flush()
    except BrokenPipeError:
        # Python's documentation (signal, "Note on SIGPIPE"): the rest of the output
        # goes to devnull, so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audit"]:
        from derive.audit_cli import main as audit_main

        return audit_main(argv[1:])
    arguments = _parser().parse_args(argv)
    try:
        # SIGTERM (kill, timeout, a cancelled CI job) stops a run as Ctrl-C does.
        with sigterm_as_interrupt():
            return _run(arguments)
    except KeyboardInterrupt as error:  # just before the run, or just after it
        stopped = Interrupted.of(error)
        print(f"derive: {stopped.what}", file=sys.stderr)
        return stopped.status


def _error_line(error: DeriveError) -> str:
    if isinstance(error, DerivationError):  # "internal error: ..."
        return f"derive: {one_line(error)}"
    return f"derive: error: {one_line(error)}"


def _naming_out(error: DeriveError, run: Settings | None) -> DeriveError:
    """``error``, its ``--out DIR:`` (as derive.files words it) replaced by where
    the folder came from, when that is [tool.derive] and not the command line."""
    if run is None or run.out_label == "--out":
        return error
    prefix = f"--out {run.out.as_posix()}:"
    text = str(error)
    if not text.startswith(prefix):
        return error
    return DeriveError(f"{run.out_label} ({run.out.as_posix()}):{text[len(prefix) :]}")


def _run(arguments: argparse.Namespace) -> int:
    changed: list[Path] | None = None
    errors: list[DeriveError] = []
    run: Settings | None = None
    try:
        run = settings(arguments)
        # On a terminal, a run that takes longer than STATUS_DELAY says what it is
        # doing; -v says each step on a line of its own, -q nothing.
        status: StatusLine | StatusLog
        if run.verbosity > 0:
            status = StatusLog("derive: ")
        else:
            status = StatusLine("derive: ", delay=STATUS_DELAY)
            if run.verbosity < 0:
                status.enabled = False
        note: Status = status if run.verbosity > 0 else quiet
        if run.config is not None:
            note(f"using [tool.derive] of {display_path(run.config.path)}")
        if run.compiles_pdfs:
            pdflatex()  # missing: say so before seconds of deriving
        with status:
            sources = _sources(run, errors)
            _derive_all(sources, run, status, note, errors)
            if errors:
                for error in errors:
                    print(_error_line(error), file=sys.stderr)
                return 3 if any(isinstance(e, DerivationError) for e in errors) else 2
            outputs = [o for s in sources for o in s.outputs]
            if run.compiles_pdfs:
                outputs = _with_pdfs(outputs, status)
            if not run.check and not run.diff:
                changed = write_all(run.out, outputs, status) if outputs else []
                _store(sources, run)
        if run.check or run.diff:
            result = _compare(run, sources, outputs, note)
            _store(sources, run)
            return result
        assert changed is not None
        _report(run, sources, outputs, changed)
        _report_orphans(run, _orphans(run, sources, outputs))
    except DeriveError as error:  # a DerivationError is caught before any writing
        print(_error_line(_naming_out(error, run)), file=sys.stderr)
        return 3 if isinstance(error, DerivationError) else 2
    except KeyboardInterrupt as error:
        stopped = Interrupted.of(error)
        if stopped.written or changed is not None:
            done = "every file was already written"
        else:
            done = "no file was changed"
        print(f"derive: {stopped.what}; {done}", file=sys.stderr)
        return stopped.status
    return 0


def _report(
    run: Settings,
    sources: Sequence[Source],
    outputs: Sequence[Output],
    changed: Sequence[Path],
) -> None:
    if run.verbosity < 0:
        return
    pdfs = {o.name for o in outputs if o.name.endswith(".pdf")}
    names: list[str] = []
    for source in sources:
        if source.cached is not None:
            names += list(source.cached)
        else:
            names += [o.name for o in source.outputs]
            names += [
                f"{n.removesuffix('.tex')}.pdf"
                for n in (o.name for o in source.outputs)
                if n.endswith(".tex") and f"{n.removesuffix('.tex')}.pdf" in pdfs
            ]
    for name in _in_order(names):
        path = run.out / name
        state = "wrote    " if path in changed else "unchanged"
        print(f"{state} {path.as_posix():<36} {DESCRIPTIONS[path.suffix]}")
    suffix = ".pdf" if run.pdf else ".md"
    readable = [n for n in names if n.endswith(suffix)]
    print(
        f"Read the derivation in {', '.join((run.out / n).as_posix() for n in readable)}."
    )


def _in_order(names: Sequence[str]) -> list[str]:
    """``names``, each spec's files in the order derive lists them: .py, .tex, .pdf
    right after its .tex, .md."""
    rank = {".py": 0, ".tex": 1, ".pdf": 2, ".md": 3}
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(Path(name).stem, []).append(name)
    return [
        n
        for group in groups.values()
        for n in sorted(group, key=lambda n: rank.get(Path(n).suffix, 9))
    ]


def _with_pdfs(outputs: list[Output], status: Status) -> list[Output]:
    """``outputs``, each ``NAME.tex`` followed by its compiled ``NAME.pdf``."""
    from derive.render import Output

    if not any(o.name.endswith(".tex") for o in outputs):
        return outputs
    pdflatex()  # fail before any compiling if it is missing
    result = []
    for output in outputs:
        result.append(output)
        if output.name.endswith(".tex") and isinstance(output.text, str):
            name = output.name.removesuffix(".tex")
            status(f"compiling {name}.pdf with pdflatex")
            result.append(Output(f"{name}.pdf", compile_tex(output.text, name).pdf))
    return result


def _orphans(
    run: Settings, sources: Sequence[Source], outputs: Sequence[Output]
) -> list[Orphan]:
    """The files in the output folder whose spec is gone or makes other files now."""
    made = {o.name for o in outputs}
    for source in sources:
        made.update(source.cached or ())
    given = {s.path.resolve() for s in sources if s.path is not None}
    return orphans(run.out, made, given, builtin=DEFAULT_SPEC)


def _orphan_summary(command: str, found: Sequence[Orphan]) -> list[str]:
    """What the summary says of ``found``, one line for each kind of orphan."""
    lines = []
    gone = sum(o.gone for o in found)
    if gone:
        lines.append(
            f"{command}: {gone} generated files have no spec any more; delete them "
            "(or restore their specs)"
        )
    if len(found) - gone:
        lines.append(
            f"{command}: {len(found) - gone} generated files are no longer made by "
            "their spec, which makes other files now (its name changed); delete them"
        )
    return lines


def _report_orphans(run: Settings, found: Sequence[Orphan]) -> None:
    """A plain run's note of the orphans it sees: it never deletes a file."""
    if run.verbosity < 0:
        return
    for orphan in found:
        print(
            f"derive: orphan: {orphan.path.as_posix()} ({orphan.reason}; derive "
            "deletes no file: delete it)",
            file=sys.stderr,
        )


def project_root(run: Settings) -> Path:
    """What ``--diff``'s paths are relative to: the folder of the pyproject.toml
    with [tool.derive], else the working folder. ``git apply`` takes a patch's paths
    relative to where it runs and ignores those outside it (a ``../`` path from a
    subfolder), so a diff made anywhere in the project applies from its root."""
    return run.config.path.parent if run.config is not None else Path.cwd()


def _compare(
    run: Settings, sources: Sequence[Source], outputs: Sequence[Output], note: Status
) -> int:
    """``--check`` and ``--diff``: what differs from the files on disk, and the
    orphaned files; exit status 1 if anything does."""
    folder = run.out
    out_of_date = stale(folder, outputs)
    note(f"looking in {folder.as_posix()}/ for files whose spec is gone")
    found = _orphans(run, sources, outputs)
    if run.diff:
        root = project_root(run)
        by_path = {folder / o.name: o for o in outputs}
        for path in out_of_date:
            print(_unified_diff(path, by_path[path].text, root), end="")
        for orphan in found:
            print(_unified_diff(orphan.path, None, root, orphan.reason), end="")
    else:
        for path in out_of_date:
            state = "missing" if not path.exists() else "differs from its spec"
            print(f"stale: {path.as_posix()} ({state})")
        for orphan in found:
            print(
                f"orphan: {orphan.path.as_posix()} ({orphan.reason}; delete the file)"
            )
    total = len(outputs) + sum(len(s.cached or ()) for s in sources)
    command = "derive --diff" if run.diff else "derive --check"
    if run.verbosity >= 0:
        if out_of_date:
            if run.diff:
                print(
                    f"{command}: {len(out_of_date)} of {total} generated files would "
                    "change; run derive to regenerate",
                    file=sys.stderr,
                )
            else:
                print(f"{command}: run derive to regenerate", file=sys.stderr)
        for line in _orphan_summary(command, found):
            print(line, file=sys.stderr)
        if not out_of_date and not found:
            print(f"{command}: {total} generated files match their specs")
    return 1 if out_of_date or found else 0


def _unified_diff(
    path: Path, text: str | bytes | None, root: Path, reason: str = ""
) -> str:
    """The change from ``path`` on disk to ``text`` (None: the file's deletion, for
    ``reason``), as ``git diff`` and ``ruff format --diff`` show it: ``a/`` and
    ``b/`` paths relative to ``root`` (:func:`project_root`), a missing or deleted
    file as ``/dev/null``, a binary file (a PDF) as one line."""
    resolved = path.resolve()
    shown = Path(os.path.relpath(resolved, root.resolve())).as_posix()
    before, after = f"a/{shown}", f"b/{shown}"
    if shown.startswith("../"):  # outside the project: no path git apply takes
        shown = before = after = resolved.as_posix()
    try:
        old: bytes | None = path.read_bytes()
    except OSError:  # missing, or a folder: nothing derive would keep
        old, before = None, "/dev/null"
    if text is None:
        after = "/dev/null"
    if isinstance(text, bytes) or (text is None and path.suffix == ".pdf"):
        if text is None:
            return f"binary file {shown}: {reason}; delete it\n"
        return f"binary file {shown} differs\n"
    try:
        old_text = "" if old is None else old.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary file {shown} differs\n"
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        [] if text is None else text.splitlines(keepends=True),
        before,
        after,
    )
    # a last line without its line break, as diff marks it (else patch cannot apply it)
    return "".join(
        line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
        for line in lines
    )
