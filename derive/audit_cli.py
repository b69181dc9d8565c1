"""``derive audit SPEC MODULE.py``: the command line of :mod:`derive.audit`.

Exit status 0 when every function is ``ok`` or follows another ``convention`` at a
kink, 1 when any is wrong, inherits a slip, raises or is missing, and 2 for a usage
problem (no such file, a bad spec, a module that fails to import), reported in one
line without a traceback; 3 when derive's own module for the spec fails the check
it gets before any use (an internal error, see :mod:`derive.verify`). Ctrl-C and
SIGTERM end it with status 130 and 143, the module's child process killed first.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import TracebackType

from derive.audit import DEFAULT_POINTS, DEFAULT_RTOL, DEFAULT_TIMEOUT, audit
from derive.errors import (
    DerivationError,
    DeriveError,
    Interrupted,
    OneLineParser,
    one_line,
    sigterm_as_interrupt,
)

#: The most random points: each costs a call of every function, and a typo (a
#: hundred million) would run for hours.
MAX_POINTS = 100_000
#: The longest --timeout, a day: the waits it sets cannot be infinite.
MAX_TIMEOUT = 86_400.0


def _number(
    kind: Callable[[str], float], what: str, low: float, high: float, above: bool
) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` from ``low`` (excluded when ``above``) to
    ``high``, with the range in the error. nan is out of every range, and inf out of
    every finite one (``--timeout inf`` made an infinite wait fail deep inside)."""
    if above:
        allowed = f"{what} above {low:g}" + (
            f", at most {high:g}" if math.isfinite(high) else ""
        )
    else:
        allowed = f"{what} from {low:g}" + (
            f" to {high:g}" if math.isfinite(high) else ""
        )

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (low < value if above else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


AUDIT_EPILOG = """\
examples:
  derive audit specs/seed.toml solution.py             a report for the terminal
  derive audit specs/seed.toml solution.py --format markdown > report.md
  derive audit specs/seed.toml solution.py --json | jq '.functions.mlp'
  derive audit specs/seed.toml solution.py --points 200 --seed 1

exit status: 0 every function ok (or another convention at a kink), 1 a function
is wrong, inherits a slip, raises or is missing, 2 a usage problem (a bad spec, a
module that fails to import), 3 derive's own bug, 130/143 interrupted.
"""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="derive audit",
        description="Check a hand-written gradient module against derive's derivation "
        "for SPEC: which function holds a slip, at which point it shows, and the "
        "chain-rule step it should have taken. The module runs as your own code (in a "
        "child process with a time limit), not in a sandbox.",
        epilog=AUDIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", metavar="SPEC", help="the network spec (TOML)")
    parser.add_argument(
        "module",
        metavar="MODULE.py",
        help="the hand-written module: the problem set's functions (mlp, "
        "d_loss_d_*, ...) or gradients(params, x, y)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text for the terminal (default), or Markdown with the LaTeX of each "
        "step, for a grading report",
    )
    parser.add_argument(
        "--seed",
        type=_number(int, "an integer", 0, math.inf, above=False),
        default=0,
        help="seed of the random points, an integer from 0 (default 0)",
    )
    parser.add_argument(
        "--points",
        type=_number(int, "an integer", 0, MAX_POINTS, above=False),
        default=DEFAULT_POINTS,
        help=f"random points, besides the crafted ones (default {DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--rtol",
        type=_number(float, "a number", 0, 1, above=True),
        default=DEFAULT_RTOL,
        help="relative tolerance; a difference is relative to the largest element "
        f"of derive's value or the module's (default {DEFAULT_RTOL:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_number(float, "a number of seconds", 0, MAX_TIMEOUT, above=True),
        default=DEFAULT_TIMEOUT,
        help="seconds for the module to import, and for each function's checks "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    arguments = _parser().parse_args(argv)
    try:
        # SIGTERM (kill, timeout, a cancelled CI job) stops it as Ctrl-C does.
        with sigterm_as_interrupt():
            report = audit(
                arguments.spec,
                arguments.module,
                points=arguments.points,
                seed=arguments.seed,
                rtol=arguments.rtol,
                timeout=arguments.timeout,
            )
    except DerivationError as error:  # derive's own module failed its check
        print(f"derive audit: {one_line(error)}", file=sys.stderr)
        return 3
    except DeriveError as error:
        print(f"derive audit: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        _kill_children(error.__traceback__)
        stopped = Interrupted.of(error)
        print(f"derive audit: {stopped.what}", file=sys.stderr)
        return stopped.status
    if arguments.json:
        print(json.dumps(report.as_json(), indent=2))
    elif arguments.format == "markdown":
        print(report.markdown(), end="")
    else:
        print(report.text(), end="")
    return 0 if report.ok else 1


def _kill_children(traceback: TracebackType | None) -> None:
    """Kill the child processes the interrupted audit was waiting on.

    The audited module runs in a child process (:func:`derive.audit._child`); the
    interrupt unwinds past it without ending it, and a SIGTERM sent to this process
    alone (Ctrl-C reaches the whole process group) would leave it running, maybe in
    an infinite loop. The ones still running are found among the locals of the
    frames the interrupt unwound: the audit keeps each child it waits on in one.
    """
    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            if isinstance(value, subprocess.Popen) and value.poll() is None:
                value.kill()
                value.wait()
        traceback = traceback.tb_next
