"""``python -m derive.schema``: the installed schema's path; ``--json`` prints the
schema, ``--write`` regenerates the file from derive's tables (for derive's own
development: the file is committed, and the tests compare it with the tables)."""

from __future__ import annotations

import sys

from derive.errors import OneLineParser
from derive.schema import PATH, text


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m derive.schema",
        description="The JSON Schema of derive's spec files, for editors.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the schema")
    group.add_argument(
        "--write", action="store_true", help=f"regenerate {PATH.name} from the tables"
    )
    arguments = parser.parse_args(argv)
    if arguments.write:
        PATH.write_text(text(), encoding="utf-8")
    elif arguments.json:
        sys.stdout.write(PATH.read_text(encoding="utf-8"))
    else:
        print(PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
