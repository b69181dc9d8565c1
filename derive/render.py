"""Lay out the generated files with Jinja, then format the Python with ruff.

Templates live in the top-level ``templates/`` folder of a checkout and are packaged
into ``derive/templates`` in a wheel. Templates hold file skeletons only: every piece
of math in them was printed by a SymPy printer before it got there.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import html
import re
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jinja2

from derive import __version__
from derive.derivation import Derivation, derive
from derive.document import (
    DocumentContext,
    GradientMath,
    document_context,
    has_kink,
)
from derive.equations import EquationSpec
from derive.errors import DerivationError, DeriveError
from derive.loading import load_module
from derive.network import build
from derive.printing.latex import tex_text
from derive.progress import Status, quiet
from derive.python_module import (
    EquationContext,
    ModuleContext,
    equation_module_context,
    module_context,
)
from derive.spec import NetworkSpec
from derive.unrolled_module import Line, UnrolledContext, unrolled_context
from derive.verify.check import Verification, verify

PACKAGE = Path(__file__).resolve().parent


def resource_folder(name: str) -> Path:
    """``derive/NAME`` in an installed wheel, else ``NAME/`` at the checkout's top."""
    for folder in (PACKAGE / name, PACKAGE.parent / name):
        if folder.is_dir():
            return folder
    raise DeriveError(f"derive is installed without its {name}/ folder")


@dataclass(frozen=True)
class Output:
    """One generated file: its name inside the output folder, and its text."""

    name: str
    text: str | bytes  # bytes for a PDF


def _python_tuple(shape: tuple) -> str:
    return repr(tuple(shape))


#: A character of a URL in a description: printable ASCII but a brace or a backslash
#: (``\\url`` reads the URL verbatim, up to a brace) and the quotes and angle brackets
#: no URL holds unencoded (they may close the text around it).
_URL_CHARACTER = r"""(?:(?![{}\\"'<>`])[!-~])"""
#: A URL, without the punctuation that ends a sentence after it.
_URL = re.compile(rf"https?://{_URL_CHARACTER}*(?![.,;:!?)]){_URL_CHARACTER}")


def _tex_prose(text: str) -> str:
    """``text`` escaped for LaTeX, its URLs as ``\\url{...}`` so that they break
    across lines (url.sty takes them verbatim)."""
    pieces, start = [], 0
    for match in _URL.finditer(text):
        pieces += [tex_text(text[start : match.start()]), rf"\url{{{match[0]}}}"]
        start = match.end()
    return "".join([*pieces, tex_text(text[start:])])


def _visible(text: str) -> str:
    """``text`` with each character that is not printable (a newline, an escape, a
    bidi control, a byte of a file name that is not UTF-8) as its Python escape,
    ``\\n``: shown, rather than ending a line or reordering the text around it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


#: ASCII punctuation that CommonMark (and GitHub's tables, strikethrough and math)
#: reads as markup inside a line; a backslash before it is CommonMark's escape.
#: ``_`` between two letters or digits opens and closes nothing, and stays as it is
#: (``y_predicted``); ``<``, ``>`` and ``&`` become HTML's entities.
_MARKDOWN_INLINE = re.compile(r"[\\`*\[\]~|$]|(?<![^\W_])_|_(?![^\W_])")
#: What opens a block at the start of a line: a heading, a list item, a thematic
#: break or a setext underline, an ordered list item (``1.``, ``1)``); ``>``, ``<``,
#: ``*``, ``|`` and fences are escaped wherever they stand.
_MARKDOWN_BLOCK = re.compile(r"^([#+=-])|^(\d+)([.)])")


def _markdown_text(text: str) -> str:
    """``text`` (from a spec: a description) as Markdown that renders as the text
    itself: no HTML, no emphasis, link, code, math or heading of its own.

    It is one line (:func:`_visible` shows every line break as ``\\n``), so only its
    start can open a block; leading spaces, which would make a code block, go."""
    escaped = html.escape(_visible(text), quote=False).lstrip()
    escaped = _MARKDOWN_INLINE.sub(lambda m: "\\" + m[0], escaped)
    return _MARKDOWN_BLOCK.sub(
        lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped
    )


def _markdown_code(text: str) -> str:
    """``text`` (a file name) as a Markdown code span, which shows it verbatim.

    CommonMark's rule: the span is fenced by more backticks than any run in the text,
    and padded with a space (which the renderer drops) where the text begins or ends
    with a backtick, or with a space at both ends. A plain path keeps one backtick
    on each side.
    """
    text = _visible(text)
    fence = "`" * (1 + max(map(len, re.findall("`+", text)), default=0))
    padded = (
        text[:1] == "`"
        or text[-1:] == "`"
        or (text[:1] == " " and text[-1:] == " " and text.strip())
    )
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def _html_comment(text: str) -> str:
    """``text`` as it may stand inside ``<!-- ... -->``: a ``-`` after a ``-`` as
    ``\\x2d`` (the header's escapes are Python's), so that no ``-->`` or ``--!>``
    in a file name ends the comment and shows the rest, or hides the document."""
    return re.sub(r"(?<=-)-", r"\\x2d", text)


#: Mermaid's entity escapes (``#quot;``, ``#35;``) for what would end a quoted label,
#: or be read as HTML, an entity or a Markdown string in it.
_MERMAID = {
    "#": "#35;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "&": "#amp;",
    "`": "#96;",
    "|": "#124;",
}


def _mermaid_label(text: str) -> str:
    """``text`` for a quoted Mermaid label, ``"..."``: shown as written."""
    return "".join(_MERMAID.get(c, c) for c in _visible(text))


def _docstring_text(text: str, width: int = 84) -> str:
    """``text`` wrapped at ``width`` and escaped for a ``\"\"\"`` docstring.

    Any text stays text: backslashes are escaped (``\\N``, ``\\a`` or ``C:\\xfiles``
    would otherwise be read as escapes), so are runs of three double quotes (which
    would end the docstring), and characters that are not printable are written as
    Python escapes. Long words (a URL) are not broken.
    """
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    return "\n".join(
        "".join(map(_escape_character, line)).replace('"""', '\\"\\"\\"')
        for line in lines
    )


def _escape_character(character: str) -> str:
    if character == "\\":
        return "\\\\"
    return character if character.isprintable() else repr(character)[1:-1]


#: PEP 263: a first or second line matching ``coding[:=]`` sets the file's encoding
#: (CPython matches "coding" in lower case; any case is defused, to be safe).
_CODING = re.compile(r"(coding)([:=])", re.IGNORECASE)


def _comment_text(text: str) -> str:
    """``text`` (a spec's path) as it may stand in a one-line comment.

    Any text stays in the comment: backslashes are doubled and characters that are
    not printable are written as Python escapes (``\\n``, ``\\r``, ``\\x0c``,
    ``\\u2028``, ``\\x85``, ...: each may end the line for Python or an editor),
    so no file name becomes code; and ``coding:`` becomes ``coding\\x3a``, since on
    the first line it would set the file's encoding. An ordinary path is unchanged.
    """
    escaped = "".join(map(_escape_character, text))
    return _CODING.sub(lambda m: m[1] + f"\\x{ord(m[2]):02x}", escaped)


def _environment(latex: bool) -> jinja2.Environment:
    """Jinja for the templates; LaTeX templates use ``<< >>`` and ``<% %>``, since
    LaTeX is full of braces."""
    block, variable, comment = (
        (("<%", "%>"), ("<<", ">>"), ("<#", "#>"))
        if latex
        else (("{%", "%}"), ("{{", "}}"), ("{#", "#}"))
    )
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_folder("templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        block_start_string=block[0],
        block_end_string=block[1],
        variable_start_string=variable[0],
        variable_end_string=variable[1],
        comment_start_string=comment[0],
        comment_end_string=comment[1],
    )
    environment.filters["pytuple"] = _python_tuple
    environment.filters["texescape"] = tex_text
    environment.filters["texprose"] = _tex_prose
    environment.filters["mdtext"] = _markdown_text
    environment.filters["mdcode"] = _markdown_code
    environment.filters["mermaid"] = _mermaid_label
    environment.filters["docstring"] = _docstring_text
    return environment


def header(source: str, comment: str, verified: str = "") -> str:
    """The first lines of every generated file: where it came from (no timestamp),
    and, for the module, how it was checked before it was written."""
    lines = [
        f"{comment} Generated by derive {__version__} from {_comment_text(source)}.",
        f"{comment} Do not edit: change the spec and run derive.",
    ]
    if verified:
        lines += textwrap.wrap(
            f"Verified: {verified}.",
            84,
            initial_indent=f"{comment} ",
            subsequent_indent=f"{comment} ",
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Code:
    """The generated module's source, and each gradient's lines in it."""

    source: str  # formatted by ruff: the file derive writes, byte for byte
    gradients: dict[str, str]  # d_loss_d_W1 -> the lines computing it, as printed
    verification: Verification  # how the module was checked before it was handed out


def derive_spec(spec: NetworkSpec | EquationSpec, status: Status = quiet) -> Derivation:
    """The graph of ``spec`` (either form) and every gradient of its loss."""
    status("building the network and deriving its gradients")
    return derive(build(spec))


def python_code(derivation: Derivation, source: str, status: Status = quiet) -> Code:
    """The module ``NAME.py`` for ``derivation``, formatted by ruff, after checking
    it numerically against the spec (:mod:`derive.verify`): a module that disagrees
    raises :class:`~derive.errors.DerivationError` and is never handed out."""
    draft, code = _module_source(derivation, source, "", status)
    spec = derivation.network.spec
    status(f"checking {spec.name}.py against the spec numerically")
    verification = verify(derivation.network, load_module(spec.name, draft))
    final, _ = _module_source(derivation, source, verification.sentence, status)
    return Code(final, code, verification)


def _module_source(
    derivation: Derivation, source: str, verified: str, status: Status
) -> tuple[str, dict[str, str]]:
    """The module's formatted source (its header saying how it was verified), and
    each gradient's lines in it."""
    spec = derivation.network.spec
    context: ModuleContext | UnrolledContext | EquationContext
    if isinstance(spec, EquationSpec):
        status("printing the gradients as NumPy")
        context = equation_module_context(derivation)
        template = "equations.py.j2"
        code = {line.name: f"{line.name} = {line.code}" for line in context.backward}
    elif spec.style == "unrolled":
        context = unrolled_context(derivation, status)
        template = "unrolled.py.j2"
        code = {name: _excerpt(lines) for name, lines in context.backward}
    else:
        status("printing the gradients as NumPy")
        context = module_context(derivation)
        template = "module.py.j2"
        code = {line.name: f"{line.name} = {line.code}" for line in context.backward}
    python = (
        _environment(latex=False)
        .get_template(template)
        .render(
            header=header(source, "#", verified),
            description=spec.description,
            net=derivation.network,
            ctx=context,
            kink=has_kink(derivation.network),
        )
    )
    status(f"formatting {spec.name}.py with ruff")
    return format_with_ruff(python, f"{spec.name}.py"), code


def documents(document: DocumentContext, source: str) -> tuple[str, str]:
    """The derivation in LaTeX and in Markdown (the latter formatted by ruff)."""
    latex = _environment(latex=True)
    tex = latex.get_template("derivation.tex.j2").render(
        header=header(source, "%"), doc=document, version=__version__
    )
    comment = _html_comment(header(source, ""))
    markdown = latex.get_template("derivation.md.j2").render(
        header=f"<!--\n{comment}\n-->", doc=document, version=__version__
    )
    return tex, format_with_ruff(markdown, f"{document.name}.md")


def gradient_markdown(gradient: GradientMath, style: str) -> str:
    """One gradient's section of the Markdown document, on its own."""
    macro = _environment(latex=True).get_template("gradient.md.j2").module.gradient  # type: ignore[attr-defined]
    return format_with_ruff(f"{macro(gradient, style)}\n", f"{gradient.name}.md")


@dataclass(frozen=True)
class Rendered:
    """Everything derive makes for one spec, before it becomes files."""

    code: Code
    document: DocumentContext
    tex: str
    markdown: str


@contextlib.contextmanager
def internal_errors(source: str) -> Iterator[None]:
    """Any failure of derive's own (not a :class:`DeriveError` about the spec) as one
    line, :class:`DerivationError`, never a traceback: a pass that meets what it
    cannot express, a recursion SymPy does not end."""
    try:
        yield
    except DeriveError:
        raise
    except (Exception, RecursionError) as error:
        message = str(error).splitlines()[0] if str(error) else ""
        if len(message) > 200:
            message = message[:200] + "..."
        raise DerivationError(
            f"internal error: {source}: deriving it failed with "
            f"{type(error).__name__}"
            + (f" ({message})" if message else "")
            + "; nothing was written; please report this spec"
        ) from error


def rendered(
    spec: NetworkSpec | EquationSpec, source: str, status: Status = quiet
) -> Rendered:
    """The module, the document's context and the two documents for ``spec``."""
    with internal_errors(source):
        derivation = derive_spec(spec, status)
        code = python_code(derivation, source, status)
        status("printing the derivation in LaTeX and Markdown")
        document = document_context(
            derivation, source, code.gradients, code.verification.sentence
        )
        tex, markdown = documents(document, source)
    return Rendered(code, document, tex, markdown)


def render(
    spec: NetworkSpec | EquationSpec, source: str, status: Status = quiet
) -> list[Output]:
    """Every file for ``spec``: ``NAME.py``, ``NAME.tex`` and ``NAME.md``."""
    made = rendered(spec, source, status)
    return [
        Output(f"{spec.name}.py", made.code.source),
        Output(f"{spec.name}.tex", made.tex),
        Output(f"{spec.name}.md", made.markdown),
    ]


def _excerpt(lines: Sequence[Line], shown: int = 4) -> str:
    """The first unrolled lines of a gradient, and how many more there are."""
    text = [f"{line.name} = {line.code}" for line in lines[:shown]]
    if len(lines) > shown:
        text.append(f"# ... and {len(lines) - shown} more lines, one per element")
    return "\n".join(text)


#: The Python blocks of a Markdown document as derive's templates write them: the
#: fence at the start of a line, the language ``python``.
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def format_with_ruff(source: str, filename: str) -> str:
    """``source`` (Python, or Markdown with Python blocks) formatted by ruff with its
    defaults, ignoring any local configuration, so the output is the same everywhere.

    Markdown is not handed to ruff as Markdown: ruff formats ``.md`` files only from
    0.16 on (0.15 in preview, earlier ones not at all), which would make derive
    require a ruff newer than a project's own. Each Python block is formatted as a
    Python file instead, which is what ruff's Markdown formatting does to them (the
    rest of the document it leaves as it is): byte for byte the same documents,
    measured on every committed spec with 20 releases from ruff 0.3.0 to 0.17.6
    (the range pyproject.toml accepts). A block that is not valid Python stays as
    it is, as ruff leaves it.
    """
    if filename.endswith(".md"):
        return _format_markdown(source, filename)
    return _ruff_format(source, filename)


#: The ruff releases derive accepts, lowest first and the first one not accepted:
#: across them its output was measured byte-identical (pyproject.toml requires the
#: same range, and tests/test_packaging.py keeps the two equal).
RUFF_RANGE = ((0, 3), (0, 18))


def _release(version: str) -> tuple[int, ...]:
    """``0.17.6`` as (0, 17, 6): the release numbers, without a pre-release or
    local suffix (``0.18.0rc1`` is 0.18.0, which is outside the range too)."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in numbers.group().split(".")) if numbers else ()


def ruff_range_text() -> str:
    """:data:`RUFF_RANGE` as a requirement: ``ruff>=0.3,<0.18``."""
    low, high = (".".join(map(str, end)) for end in RUFF_RANGE)
    return f"ruff>={low},<{high}"


@functools.cache
def _ruff_version_error(installed: str) -> str:
    """Why ``installed`` cannot format derive's output ("" when it can): pip keeps
    ruff in the range, but an environment installed with --no-deps (or conda) may
    hold another, which would format the generated files differently and make
    ``derive --check`` call them stale without saying why."""
    low, high = RUFF_RANGE
    if low <= _release(installed) < high:
        return ""
    return (
        f"ruff {installed} is installed, but derive's output is byte-identical only "
        f"with {ruff_range_text()}, which made the committed generated files; "
        f"install one: pip install '{ruff_range_text()}'"
    )


def _ruff_command() -> list[str]:
    # ruff.__main__ has find_ruff_bin in every ruff derive accepts: since 0.15 it
    # lives in ruff._find_ruff, and __main__ imports it from there.
    from ruff.__main__ import find_ruff_bin

    try:
        installed = metadata.version("ruff")
    except metadata.PackageNotFoundError:  # a ruff package without its metadata
        installed = ""
    if installed and (error := _ruff_version_error(installed)):
        raise DeriveError(error)
    return [find_ruff_bin(), "format", "--isolated"]


def _ruff_failed(filename: str, stderr: str) -> DerivationError:
    reason = stderr.strip().splitlines()[0] if stderr.strip() else ""
    return DerivationError(
        f"internal error: ruff could not format the generated {filename} "
        f"({reason}); nothing was written; please report this spec"
    )


def _ruff_format(source: str, filename: str) -> str:
    result = subprocess.run(
        [*_ruff_command(), "--stdin-filename", filename, "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:  # what derive printed is not valid Python: its bug
        raise _ruff_failed(filename, result.stderr)
    return result.stdout


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: a NUL character in the block
        return False
    return True


def _format_markdown(source: str, filename: str) -> str:
    """``source`` with each valid Python block formatted as a Python file, all of
    them in one ruff run (one run per block would cost about 15 ms each, 2 s for
    the committed specs' 138 blocks)."""
    blocks = [m for m in _PYTHON_BLOCK.finditer(source) if _parses(m.group(1))]
    if not blocks:
        return source
    with tempfile.TemporaryDirectory(prefix="derive-ruff-") as folder:
        paths = [Path(folder, f"block_{i}.py") for i in range(len(blocks))]
        for path, block in zip(paths, blocks, strict=True):
            path.write_text(block.group(1), encoding="utf-8")
        # Named files are formatted whatever ruff's default excludes say; --no-cache:
        # no .ruff_cache/ left in the user's working folder.
        result = subprocess.run(
            [*_ruff_command(), "--no-cache", *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise _ruff_failed(filename, result.stderr.replace(folder, filename))
        formatted = [path.read_text(encoding="utf-8") for path in paths]
    pieces: list[str] = []
    last = 0
    for block, code in zip(blocks, formatted, strict=True):
        pieces += [source[last : block.start(1)], code]
        last = block.end(1)
    return "".join([*pieces, source[last:]])
