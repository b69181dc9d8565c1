"""Compile a generated ``.tex`` derivation to PDF with pdflatex.

pdflatex runs in a temporary folder, offline, twice at most (once is enough: the
documents have no cross-references), with ``SOURCE_DATE_EPOCH`` fixed so that the same
``.tex`` gives the same PDF. Missing pdflatex and LaTeX errors become
:class:`~derive.errors.DeriveError` messages that say what to do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from derive.errors import DeriveError

#: What to install where pdflatex is missing (the Debian and Ubuntu packages).
INSTALL_HINT = (
    "install it (Debian or Ubuntu: apt-get install texlive-latex-base "
    "texlive-latex-recommended texlive-pictures)"
)
_SOURCE_LINE = re.compile(r"^l\.\d+ ")
_OVERFULL = re.compile(r"^Overfull \\hbox \((?P<points>[\d.]+)pt too wide\)", re.M)


@dataclass(frozen=True)
class Compiled:
    """A PDF and the log pdflatex wrote for it."""

    pdf: bytes
    log: str

    @property
    def overfull(self) -> list[float]:
        """How far (in points) each overfull line sticks out into the margin."""
        return [float(m["points"]) for m in _OVERFULL.finditer(self.log)]


def pdflatex() -> str:
    """The pdflatex command, or a :class:`DeriveError` saying how to get it."""
    found = shutil.which("pdflatex")
    if found is None:
        raise DeriveError(
            f"--pdf needs pdflatex, which is not installed; {INSTALL_HINT}"
        )
    return found


def compile_tex(tex: str, name: str) -> Compiled:
    """Compile the LaTeX source ``tex`` (a generated ``NAME.tex``) to PDF."""
    # No shell escape, not even TeX Live's restricted one: a document runs no program
    # (text from the spec is escaped, so none reaches TeX as \write18; this is the
    # second wall).
    command = [
        pdflatex(),
        "-no-shell-escape",
        "-interaction=nonstopmode",
        "-halt-on-error",
        f"{name}.tex",
    ]
    environment = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory(prefix="derive-pdf-") as folder:
        (Path(folder) / f"{name}.tex").write_text(tex, encoding="utf-8")
        result = subprocess.run(
            command,
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        log_path = Path(folder) / f"{name}.log"
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        pdf = Path(folder) / f"{name}.pdf"
        if result.returncode != 0 or not pdf.exists():
            raise DeriveError(
                f"pdflatex failed on {name}.tex:\n    {_first_error(log)}"
            )
        return Compiled(pdf.read_bytes(), log)


def _first_error(log: str, most: int = 8) -> str:
    """pdflatex's first error (``! ...``) and the lines after it, through the
    ``l.12 ...`` line and the next (the source line, split where TeX stopped), or the
    end of the log if it has no error line: the log itself is in a temporary folder,
    gone when this is read."""
    lines = [line.rstrip() for line in log.splitlines()]
    for n, line in enumerate(lines):
        if line.startswith("!"):
            shown = lines[n : n + most]
            for k, more in enumerate(shown):
                if _SOURCE_LINE.match(more):
                    shown = shown[: k + 2]
                    break
            return "\n    ".join(more for more in shown if more)
    tail = [line for line in lines if line][-4:]
    return "\n    ".join(["no error line in its log; it ends:", *tail])
