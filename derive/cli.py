"""The ``derive`` command line.

    derive                      regenerate the built-in default (specs/seed.toml)
    derive SPEC.toml ...        generate NAME.py, NAME.tex and NAME.md for each spec
    derive specs/               every *.toml in a folder
    derive --out DIR ...        write into DIR instead of ./generated
    derive --check ...          write nothing; exit 1 if any generated file is stale
    derive --pdf ...            also compile each NAME.tex to NAME.pdf (needs pdflatex)
    derive audit SPEC MODULE.py check a hand-written gradient module against SPEC's
                                derivation (derive audit --help)

Errors in a spec are reported in one line naming the file and the field; the exit
status is then 2 and no file is touched. Ctrl-C and SIGTERM stop a run the same way,
with exit status 130 and 143; a run waits for another one writing into the same
folder (:func:`derive.files.output_lock`). A module that fails the numerical check it
gets before it is written (:mod:`derive.verify`) is derive's own bug: one line, exit
status 3, nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from derive import __version__
from derive.errors import (
    DerivationError,
    DeriveError,
    Interrupted,
    OneLineParser,
    one_line,
    sigterm_as_interrupt,
)
from derive.files import display_path, stale, write_all
from derive.pdf import compile_tex, pdflatex
from derive.progress import Status, StatusLine
from derive.render import Output, render, resource_folder
from derive.spec import load_spec

DEFAULT_SPEC = "specs/seed.toml"
#: Seconds a run goes on before it says, on a terminal, what it is doing.
STATUS_DELAY = 1.0
DESCRIPTIONS = {
    ".py": "gradient code",
    ".tex": "derivation, LaTeX",
    ".md": "derivation, Markdown",
    ".pdf": "derivation, PDF",
}


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="derive",
        description="Derive backpropagation for a network spec with SymPy and write it as "
        "plain NumPy code plus a LaTeX and Markdown derivation.",
    )
    parser.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help="network spec files (TOML), or folders of them; default: the built-in "
        f"{DEFAULT_SPEC}, the problem set's 1-3-3-1 ReLU network",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("generated"),
        help="output folder (default: generated)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files that are missing or differ",
    )
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="also write NAME.pdf, compiled from NAME.tex with pdflatex (not checked "
        "by --check)",
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


def _spec_files(given: Sequence[str]) -> list[Path]:
    """The spec files named, with each folder replaced by the ``*.toml`` in it."""
    files: list[Path] = []
    for name in given:
        path = Path(name)
        try:
            folder = path.is_dir()
        except OSError:  # a name too long: load_spec says so, in one line
            folder = False
        if folder:
            found = sorted(path.glob("*.toml"))
            if not found:
                raise DeriveError(
                    f"{display_path(path)}: no *.toml spec in this folder"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def _outputs(specs: Sequence[str], status: Status, out: Path) -> list[Output]:
    if not specs:
        default = resource_folder("specs") / Path(DEFAULT_SPEC).name
        return render(load_spec(default), DEFAULT_SPEC, _saying(status, DEFAULT_SPEC))
    outputs: list[Output] = []
    names: dict[str, str] = {}
    files = _spec_files(specs)
    for number, path in enumerate(files, start=1):
        spec = load_spec(path)
        source = display_path(path)
        if spec.name in names:
            raise DeriveError(
                f"{source}: name: '{spec.name}' is also the name in {names[spec.name]}; "
                "each network needs its own name"
            )
        names[spec.name] = source
        where = f"{source} ({number} of {len(files)})" if len(files) > 1 else source
        outputs.extend(render(spec, recorded_path(path, out), _saying(status, where)))
    return outputs


def _saying(status: Status, where: str) -> Status:
    """``status``, each text prefixed with the spec it is about."""
    return lambda text: status(f"{where}: {text}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
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


def _run(arguments: argparse.Namespace) -> int:
    # On a terminal, a run that takes longer than STATUS_DELAY says what it is doing.
    status = StatusLine("derive: ", delay=STATUS_DELAY)
    changed: list[Path] | None = None
    try:
        with status:
            outputs = _outputs(arguments.specs, status, arguments.out)
            if not arguments.check:
                if arguments.pdf:
                    outputs = _with_pdfs(outputs, status)
                changed = write_all(arguments.out, outputs, status)
        if arguments.check:
            return _check(arguments.out, outputs)
        assert changed is not None
        _report(arguments, outputs, changed)
    except DerivationError as error:  # derive's own bug, caught before any writing
        print(f"derive: {one_line(error)}", file=sys.stderr)
        return 3
    except DeriveError as error:
        print(f"derive: error: {one_line(error)}", file=sys.stderr)
        return 2
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
    arguments: argparse.Namespace, outputs: Sequence[Output], changed: Sequence[Path]
) -> None:
    for output in outputs:
        path = arguments.out / output.name
        state = "wrote    " if path in changed else "unchanged"
        print(f"{state} {path.as_posix():<36} {DESCRIPTIONS[path.suffix]}")
    suffix = ".pdf" if arguments.pdf else ".md"
    readable = [o.name for o in outputs if o.name.endswith(suffix)]
    print(
        f"Read the derivation in {', '.join((arguments.out / n).as_posix() for n in readable)}."
    )


def _with_pdfs(outputs: list[Output], status: Status) -> list[Output]:
    """``outputs``, each ``NAME.tex`` followed by its compiled ``NAME.pdf``."""
    pdflatex()  # fail before any compiling if it is missing
    result = []
    for output in outputs:
        result.append(output)
        if output.name.endswith(".tex") and isinstance(output.text, str):
            name = output.name.removesuffix(".tex")
            status(f"compiling {name}.pdf with pdflatex")
            result.append(Output(f"{name}.pdf", compile_tex(output.text, name).pdf))
    return result


def _check(folder: Path, outputs: Sequence[Output]) -> int:
    out_of_date = stale(folder, outputs)
    for path in out_of_date:
        state = "missing" if not path.exists() else "differs from its spec"
        print(f"stale: {path.as_posix()} ({state})")
    if out_of_date:
        print("derive --check: run derive to regenerate", file=sys.stderr)
        return 1
    print(f"derive --check: {len(outputs)} generated files match their specs")
    return 0
