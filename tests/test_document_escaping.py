"""Hostile and careless text in the documents: every text from a spec that reaches a
``.tex`` or a ``.md`` (the description, names of values, parameters and sizes, the
spec's file name) is escaped for where it stands, so nothing breaks or injects into
them.

A corpus of hostile strings (HTML and script, comments opened and closed, backticks,
Markdown's emphasis, links and block markers, LaTeX's specials and commands, newlines
and other characters that are not printable, unicode, long words) is put into a few
documents at once: a description made of all of it, file names made of it, and
parameters named as Mermaid's keywords and as identifiers SymPy's name convention
cannot split (``_``, ``__x``). Each document is then read back by what its readers
use: pdflatex (and pdftotext, where it is installed), a CommonMark renderer
(markdown-it-py), Mermaid's own parser and KaTeX (``tests/mermaid``, one node
process for every diagram and formula).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from derive.cli import main
from derive.pdf import compile_tex
from derive.printing.latex import default_latex
from derive.render import _markdown_code, _markdown_text, rendered
from derive.spec import parse_spec

#: The checks of the Markdown documents that need node (tests/mermaid): CI installs
#: it there and requires it, as it requires pdflatex.
CHECKER = Path(__file__).resolve().parent / "mermaid"
REQUIRED = bool(os.environ.get("DERIVE_REQUIRE_PDFLATEX"))
HAS_CHECKER = (
    shutil.which("node") is not None and (CHECKER / "node_modules" / "mermaid").is_dir()
)
needs_node = pytest.mark.skipif(
    not HAS_CHECKER and not REQUIRED,
    reason="node or tests/mermaid/node_modules is missing "
    "(npm ci --prefix tests/mermaid; .ci/run installs it and requires it)",
)
needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None and not REQUIRED,
    reason="pdflatex is not installed (.ci/run installs it and requires it)",
)

#: Printable ASCII that is markup somewhere: each prints as itself in the PDF.
ASCII = [
    "# a heading?",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- the rest is hidden?",
    "--> closed? --!> <!-->",
    "`code` ``two`` ```python",
    "*emphasis* **strong** _under_ __dunder__ ~~struck~~ ~one~ a*b*c x_y_ _x_y",
    "[a link](javascript:alert(1)) ![an image](x.png) [ref]: <https://x.org> [^1]",
    "&amp; &lt; &#60; &#x3c; &copy",
    "- a list? + another 1. ordered 2) also > quoted | a | table |",
    "$x$ $$y$$ \\(z\\) \\[w\\] costs $5 or $6",
    "# $ % & ~ _ ^ \\ { } \\\\",
    "\\write18{touch pwned} \\immediate\\write18{ls} \\input{/etc/passwd}",
    "\\def\\x{y} \\catcode`\\~=0 ^^M ^^5c \\end{document} \\begin{verbatim}",
    "-- --- '' `` !` ?` << >> ,, a--b",
    "\"double\" 'single' it's",
    "#quot; #35; #lt;b#gt; &#35;",
    "end subgraph style click call graph classDef linkStyle",
    "see https://example.org/a_b?c=%20&d=~e#f. and (https://x.org/(y)).",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
]
#: Beyond ASCII, and characters that are not printable: shown, escaped, never raw.
UNICODE = [
    "café naïve Åström Łódź ß æ œ ø í",
    "α β Γ λ Λ σ ς",
    "☃ 😀 日本語",
    "x² y₁ ﬁ Ｆ … – — “quoted” ‘single’",
    "rtl\u202eoverride zero\u200bwidth e\u0301 bell\x07 nul\x00 esc\x1b",
]
DESCRIPTION = " ".join(ASCII + UNICODE)
#: File names hold any byte but / and NUL; a few such names, joined into one path.
FILE_NAMES = [
    "evil\n# not a comment\n\\end{document}.toml",
    "a%b{c}$d$&e#f~g^h_i\\j.toml",
    "<!-- x -->y--!>z<script>.toml",
    "`tick` ``two``",
    "uni ☃ café 😀 \u202e.toml",
    "\udcff not UTF-8.toml",
    " spaced ",
]
SOURCE = " / ".join(FILE_NAMES)  # spaced: a long path has nowhere to break
#: The spec file the command line reads: a name of all of it, under 255 bytes.
FILE_NAME = "evil\n# %{$}\\input{x}<!-- -->`t`\u202e☃\udcff.toml"
#: Parameter names: Mermaid's keywords and edge ends, names SymPy's convention
#: splits into an empty or underscored part.
NAMES = [
    "_",
    "__x",
    "x_",
    "_1",
    "x__",
    "a___b",
    "end",
    "subgraph",
    "style",
    "call",
    "graph",
    "click",
    "classDef",
    "linkStyle",
    "flowchart",
    "direction",
    "o",
]


def equation_spec(description: str) -> str:
    """An equation spec: every name of ``NAMES`` a parameter, ``__h`` a value."""
    # json.dumps writes a string TOML reads the same (its escapes are TOML's too).
    parameters = "\n".join(f'{n} = ["__n"]' for n in NAMES)
    terms = " + ".join(
        f"{a} * {b}" for a, b in zip(NAMES[::2], NAMES[1::2], strict=False)
    )
    return f"""
name = "hostile"
description = {json.dumps(description, ensure_ascii=False)}
[sizes]
__n = 2
[inputs]
x = ["__n"]
y = ["__n"]
[parameters]
{parameters}
[equations]
__h = "tanh(x * {NAMES[-1]} + {terms})"
loss = "sum((__h - y)**2)"
"""


LAYERED = f"""
name = "hostile_layers"
description = {json.dumps(DESCRIPTION, ensure_ascii=False)}
input = 2
[[layers]]
width = 2
activation = "tanh"
[[layers]]
width = 1
activation = "identity"
[loss]
kind = "mse"
"""


@dataclass(frozen=True)
class Document:
    name: str
    tex: str
    markdown: str
    description: str  # as the spec holds it
    source: str  # as the document names it
    context: object  # the DocumentContext, for what the diagram must hold


def shown(text: str) -> str:
    """What a document shows of ``text``: a character that is not printable as its
    Python escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> list[Document]:
    """Three documents holding the whole corpus: the equation spec as the command
    line makes it from a file of a hostile name, the same with every hostile file
    name as its path, and a [[layers]] spec's."""
    folder = tmp_path_factory.mktemp("hostile")
    path = folder / "specs" / FILE_NAME
    path.parent.mkdir()
    path.write_text(equation_spec(DESCRIPTION), encoding="utf-8")
    assert main([str(path), "--out", str(folder / "out")]) == 0
    spec = parse_spec(equation_spec(DESCRIPTION), SOURCE)
    made = rendered(spec, SOURCE)
    tex, markdown = (folder / "out" / f"hostile.{e}" for e in ("tex", "md"))
    layered = parse_spec(LAYERED, SOURCE)
    layers = rendered(layered, SOURCE)
    description = " ".join(DESCRIPTION.split())
    # The file the command line read is named as ../specs/NAME from the output.
    cli_source = f"../specs/{FILE_NAME}"
    return [
        Document(
            "hostile",
            tex.read_text(encoding="utf-8"),
            markdown.read_text(encoding="utf-8"),
            description,
            cli_source,
            made.document,
        ),
        Document(
            "hostile", made.tex, made.markdown, description, SOURCE, made.document
        ),
        Document(
            "hostile_layers",
            layers.tex,
            layers.markdown,
            description,
            SOURCE,
            layers.document,
        ),
    ]


# Markdown -------------------------------------------------------------------------

COMMONMARK = MarkdownIt("commonmark")


def inline_text(token) -> str | None:
    """The text an inline token renders, if it is nothing but text; else ``None``."""
    kinds = {child.type for child in token.children}
    if not kinds <= {"text", "softbreak"}:
        return None
    return "".join(
        " " if child.type == "softbreak" else child.content for child in token.children
    )


@pytest.mark.parametrize("text", ASCII + UNICODE + FILE_NAMES)
def test_markdown_text_renders_as_the_text_itself(text):
    """Each hostile string alone, as a paragraph of its own (so its start is a
    line's start): CommonMark renders exactly the text, in one paragraph, no HTML,
    emphasis, link, code or heading."""
    tokens = COMMONMARK.parse(_markdown_text(text))
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert inline_text(tokens[1]) == " ".join(shown(text).split())


@pytest.mark.parametrize("text", FILE_NAMES + ["`", "``", " ` ", "a`", "`a"])
def test_markdown_code_span_shows_the_file_name_verbatim(text):
    tokens = COMMONMARK.parse(f"from {_markdown_code(text)}.")
    code = [c for c in tokens[1].children if c.type == "code_inline"]
    assert [c.content for c in code] == [shown(text)]


def markdown_checks(document: Document) -> None:
    tokens = COMMONMARK.parse(document.markdown)
    # The header comment ends where derive ends it, at its last line: no file name
    # closes it early (showing the rest) or keeps it open (hiding the document).
    assert tokens[0].type == "html_block"
    assert tokens[0].content.count("-->") == 1
    assert tokens[0].content.endswith("-->\n")
    assert tokens[1].type == "heading_open"
    # No other HTML anywhere: none from the description, the file name or the names.
    everything = [*tokens, *(c for t in tokens for c in t.children or ())]
    assert [t.type for t in everything if t.type.startswith("html")] == ["html_block"]
    inlines = [t for t in tokens if t.type == "inline"]
    # The file name, verbatim in a code span.
    (derived,) = [t for t in inlines if t.content.startswith("Derived by SymPy")]
    code = [c.content for c in derived.children if c.type == "code_inline"]
    assert code == [shown(document.source)]
    # The description, as its own paragraph of text and nothing else.
    assert shown(document.description) in [inline_text(t) for t in inlines]
    # Every section is there, none swallowed, none added by the description.
    headings = [
        tokens[k + 1].content
        for k, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2"
    ]
    assert headings[0] in ("The equations", "The network")
    assert "Backward pass" in headings
    assert len([t for t in tokens if t.type == "fence" and t.info == "mermaid"]) == 1


def test_markdown_documents_show_every_text_as_itself(hostile):
    for document in hostile:
        markdown_checks(document)


# Mermaid and KaTeX -----------------------------------------------------------------


def diagram(markdown: str) -> str:
    (fence,) = [
        t
        for t in COMMONMARK.parse(markdown)
        if t.type == "fence" and t.info == "mermaid"
    ]
    return fence.content


def math(markdown: str) -> list[tuple[str, bool]]:
    """Every formula of a Markdown document, and whether it is a display."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    display = re.findall(r"^\$\$\n(.*?)^\$\$$", text, flags=re.M | re.S)
    text = re.sub(r"^\$\$\n.*?^\$\$$", "", text, flags=re.M | re.S)
    inline = re.findall(r"(?<!\\)\$([^$\n]+?)(?<!\\)\$", text)
    return [(m, True) for m in display] + [(m, False) for m in inline]


def expected_diagram(context) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """The nodes (id: label) and edges the diagram of ``context`` must have."""
    if context.graph is not None:
        nodes = {n.key: f"{n.code}: {n.shape}, {n.role}" for n in context.graph.nodes}
        return nodes, {(s, u, "") for s, u, _ in context.graph.edges}
    columns = context.diagram
    nodes = {
        f"n{k}": f"{c.code}: {c.width}, {c.caption}" for k, c in enumerate(columns)
    }
    loss, y = f"n{len(columns)}", f"n{len(columns) + 1}"
    nodes |= {loss: "L", y: "y"}
    edges = {(f"n{k}", f"n{k + 1}", c.parameters) for k, c in enumerate(columns[1:])}
    return nodes, edges | {(f"n{len(columns) - 1}", loss, ""), (y, loss, "")}


@pytest.fixture(scope="module")
def parsed(hostile):
    """Every diagram and formula of the documents, read by Mermaid and KaTeX, in one
    node process; and the same for names alone, as the documents print them."""
    if not HAS_CHECKER:
        pytest.fail(
            "DERIVE_REQUIRE_PDFLATEX is set, but node or tests/mermaid/node_modules "
            "is missing: run npm ci --prefix tests/mermaid"
        )
    names = [default_latex(n) for n in NAMES + ["__n", "_x_", "x_0_", "W_q"]]
    scripted = [
        rf"{{{n}}}_{{i j}} + {{{n}}}^{{2}} + \frac{{\partial L}}{{\partial {n}}}"
        for n in names
    ]
    request = {
        "mermaid": [diagram(d.markdown) for d in hostile],
        "katex": [f for d in hostile for f in math(d.markdown)]
        + [(s, False) for s in scripted],
    }
    result = subprocess.run(
        ["node", str(CHECKER / "check.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    return request, answer


@needs_node
def test_mermaid_parses_every_diagram_with_the_names_as_labels(hostile, parsed):
    """Parameters named ``end``, ``subgraph``, ``style``, ``o``: the diagram parses,
    each node is one of derive's ids with its label as written, each edge is there."""
    _, answer = parsed
    for document, result in zip(hostile, answer["mermaid"], strict=True):
        assert result["error"] is None, (result["error"], diagram(document.markdown))
        nodes, edges = expected_diagram(document.context)
        assert result["nodes"] == nodes
        assert {tuple(e) for e in result["edges"]} == edges
        assert len(result["edges"]) == len(edges)
    labels = answer["mermaid"][0]["nodes"].values()
    assert {label.split(":")[0] for label in labels} >= set(NAMES)


@needs_node
def test_katex_reads_every_formula_and_name(parsed):
    request, answer = parsed
    errors = [
        (formula, error)
        for (formula, _), error in zip(request["katex"], answer["katex"], strict=True)
        if error
    ]
    assert errors == []
    assert len(request["katex"]) > 100


# LaTeX ----------------------------------------------------------------------------


def test_tex_keeps_every_text_in_its_place(hostile):
    for document in hostile:
        tex = document.tex
        # The header is comments up to \documentclass: no file name ends one.
        head = tex[: tex.index("\\documentclass")].splitlines()
        assert head and all(line.startswith("% ") for line in head)
        # Past the header (comments, which may hold any printable text), nothing
        # outside ASCII: each such character is a command, or shown as its code.
        assert tex[tex.index("\\documentclass") :].isascii()
        # The diagram's nodes are derive's ids, one per value.
        ids = re.findall(r"^\\node\[value[^]]*\] \((\w+)\)", tex, flags=re.M)
        context = document.context
        if context.graph is not None:
            assert ids == [n.key for n in context.graph.nodes]
            assert len(set(ids)) == len(ids)


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "document.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def comparable(text: str) -> str:
    """``text`` without what typesetting changes: spaces and line breaks, the hyphens
    of words broken across lines, the apostrophe (a typographic one in the PDF), an
    accent as a character of its own or composed; ligatures (``--`` as an en dash,
    ``!``` as ``¡``) stay different."""
    text = unicodedata.normalize("NFC", text)
    return re.sub(r"[\s-]", "", text).replace("\u2019", "'")


@needs_pdflatex
def test_tex_compiles_and_prints_every_text_as_itself(hostile, tmp_path):
    """The three documents compile; where pdftotext is installed, the PDF's text
    holds the description and the file name as written: ``<`` is no ``¡``, ``\\write18``
    ran nothing, ``--`` is two hyphens."""
    texts = []
    for document in hostile:
        compiled = compile_tex(document.tex, document.name)
        assert compiled.pdf.startswith(b"%PDF")
        # pdflatex runs with no shell escape at all (TeX Live's default allows some
        # programs, and its log then says "restricted \write18 enabled").
        assert "write18 enabled" not in compiled.log
        texts.append(compiled.pdf)
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: compiled only")
    for document, pdf in zip(hostile, texts, strict=True):
        text = comparable(pdf_text(pdf, tmp_path))
        # Each run of printable ASCII as written; the rest as the commands print it.
        for text_from_spec in (document.description, document.source):
            composed = unicodedata.normalize("NFC", shown(text_from_spec))
            for run in re.split(r"[^ -~]+", composed):
                assert comparable(run) in text, run
        for word in ("café", "α", "Γ", "λ", "U+2603", "U+1F600", "\\u202e"):
            assert word in text, word
        assert "\u202e" not in text and "¡" not in text
