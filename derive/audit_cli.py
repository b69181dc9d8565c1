"""``derive audit SPEC MODULE.py``: the command line of :mod:`derive.audit`.

Exit status 0 when every function is ``ok`` or follows another ``convention`` at a
kink, 1 when any is wrong, inherits a slip, raises or is missing, and 2 for a usage
problem (no such file, a bad spec, a module that fails to import), reported in one
line without a traceback; 3 when derive's own module for the spec fails the check
it gets before any use (an internal error, see :mod:`derive.verify`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from derive.audit import DEFAULT_POINTS, DEFAULT_RTOL, DEFAULT_TIMEOUT, audit
from derive.errors import DerivationError, DeriveError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="derive audit",
        description="Check a hand-written gradient module against derive's derivation "
        "for SPEC: which function holds a slip, at which point it shows, and the "
        "chain-rule step it should have taken. The module runs as your own code (in a "
        "child process with a time limit), not in a sandbox.",
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
        "--seed", type=int, default=0, help="seed of the random points (default 0)"
    )
    parser.add_argument(
        "--points",
        type=int,
        default=DEFAULT_POINTS,
        help=f"random points, besides the crafted ones (default {DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--rtol",
        type=float,
        default=DEFAULT_RTOL,
        help="relative tolerance; a difference is relative to the largest element "
        f"of derive's value or the module's (default {DEFAULT_RTOL:g})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds for the module to import, and for each function's checks "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    arguments = _parser().parse_args(argv)
    try:
        report = audit(
            arguments.spec,
            arguments.module,
            points=arguments.points,
            seed=arguments.seed,
            rtol=arguments.rtol,
            timeout=arguments.timeout,
        )
    except DerivationError as error:  # derive's own module failed its check
        print(f"derive audit: {error}", file=sys.stderr)
        return 3
    except DeriveError as error:
        print(f"derive audit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("derive audit: interrupted", file=sys.stderr)
        return 130
    if arguments.json:
        print(json.dumps(report.as_json(), indent=2))
    elif arguments.format == "markdown":
        print(report.markdown(), end="")
    else:
        print(report.text(), end="")
    return 0 if report.ok else 1
