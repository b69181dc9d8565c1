"""Print index-form and array-form expressions as LaTeX, with the code's names.

Each value prints as its graph value says (``Value.latex``: ``r^{(1)}`` for a layer's
``r1``, SymPy's ``W_{q}`` for an equation's ``W_q``), with its indices as subscripts:
``W1[i, j]`` as ``W^{(1)}_{i j}``; a gradient ``d_loss_d_r1[m]`` as
``\\frac{\\partial L}{\\partial r^{(1)}_{m}}``.
In array form (see :mod:`derive.passes.to_array`) a product of two arrays is
elementwise and prints with ``\\odot``; ``MatProd`` prints as juxtaposition.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import sympy as sp
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, greek_letters_set, translate
from sympy.printing.precedence import PRECEDENCE

from derive.passes.to_array import (
    ArrayOp,
    LogSumExp,
    MatProd,
    NewAxes,
    Outer,
    Permuted,
    Sliced,
    SumAxes,
    TensorDot,
    Transposed,
    UnitVector,
)

#: How much printed math fits on one line of the page after ``left &=``, in
#: characters as :func:`visible_length` counts them (A4, 2 cm margins, 11 pt).
LINE = 52
#: What continues a broken line in an ``align`` environment.
CONTINUED = " \\\\\n &\\qquad "


#: A name SymPy's convention splits into base, subscripts and superscripts that each
#: print as themselves: a letter then letters or digits, each script not empty.
_SPLIT_BASE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_SPLIT_SCRIPT = re.compile(r"[A-Za-z0-9]+")


def default_latex(name: str) -> str:
    """A name from a spec as LaTeX, split as SymPy splits symbol names: ``W_q`` as
    ``W_{q}``, ``h0_in`` as ``h_{0,\\mathrm{in}}``; a word is upright
    (``\\mathrm{scores}``), as a multi-letter name is not a product of letters.

    A name the split would not print as itself (``_``, ``__x``, ``x_``, ``_1``: SymPy
    leaves a base starting with ``_``, whose ``_`` TeX reads as a subscript, or an
    empty script) is upright as written, its underscores escaped:
    ``\\mathrm{\\_\\_x}``; so every identifier prints as valid LaTeX, and as itself.
    """
    base, supers, subs = split_super_sub(name)
    if not (
        _SPLIT_BASE.fullmatch(base)
        and all(_SPLIT_SCRIPT.fullmatch(s) for s in (*supers, *subs))
    ):
        return rf"\mathrm{{{tex_text(name)}}}"

    def word(text: str) -> str:
        return rf"\mathrm{{{text}}}" if len(text) > 1 and text.isalpha() else text

    text = word(base)
    if subs:
        text += "_{" + ",".join(word(s) for s in subs) + "}"
    if supers:
        text += "^{" + ",".join(word(s) for s in supers) + "}"
    return text


#: Printable ASCII that TeX reads as markup, or that the default font encoding (OT1)
#: prints as another character (``<`` as ``¡``, ``|`` as an em dash, ``"`` as a
#: closing quote), each as the command that prints it as itself. The commands OT1
#: lacks a glyph for (``\\textquotedbl``, ``\\textasciigrave``; ``\\_``, ``~``, ``^``
#: print as a rule or an accent) are declared in ``derivation.tex.j2``.
_TEX_ASCII = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "#": r"\#",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
    "`": r"\textasciigrave{}",
}
#: Characters beyond ASCII that print with the fonts every TeX installation has
#: (OT1 and the math fonts; none needs TS1 or T1, whose fonts are often missing).
_TEX_UNICODE = {
    "¡": r"\textexclamdown{}",
    "¿": r"\textquestiondown{}",
    "–": r"\textendash{}",
    "—": r"\textemdash{}",
    "‘": r"\textquoteleft{}",
    "’": r"\textquoteright{}",
    "“": r"\textquotedblleft{}",
    "”": r"\textquotedblright{}",
    "ß": r"\ss{}",
    "æ": r"\ae{}",
    "Æ": r"\AE{}",
    "œ": r"\oe{}",
    "Œ": r"\OE{}",
    "ø": r"\o{}",
    "Ø": r"\O{}",
    "ł": r"\l{}",
    "Ł": r"\L{}",
    "ı": r"\i{}",
    "ȷ": r"\j{}",
    **{
        c: rf"\ensuremath{{{command}}}"
        for c, command in {
            "×": r"\times",
            "·": r"\cdot",
            "±": r"\pm",
            "−": "-",
            "•": r"\bullet",
            "†": r"\dagger",
            "‡": r"\ddagger",
            "°": r"^{\circ}",
            "→": r"\rightarrow",
            "←": r"\leftarrow",
            "↔": r"\leftrightarrow",
            "⇒": r"\Rightarrow",
            "⇔": r"\Leftrightarrow",
            "≤": r"\leq",
            "≥": r"\geq",
            "≠": r"\neq",
            "≈": r"\approx",
            "≡": r"\equiv",
            "∞": r"\infty",
            "∂": r"\partial",
            "∇": r"\nabla",
            "∑": r"\sum",
            "∏": r"\prod",
            "∫": r"\int",
            "√": r"\surd",
            "∈": r"\in",
            "∉": r"\notin",
            "∀": r"\forall",
            "∃": r"\exists",
            "∅": r"\emptyset",
            "∩": r"\cap",
            "∪": r"\cup",
            "⊂": r"\subset",
            "⊆": r"\subseteq",
            "∘": r"\circ",
            "⊙": r"\odot",
            "⊗": r"\otimes",
            "⊕": r"\oplus",
        }.items()
    },
}
#: Combining accents OT1 has, as TeX's accent commands: ``é`` is ``\\'{e}``.
_TEX_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0304": "=",
    "\u0306": "u",
    "\u0307": ".",
    "\u0308": '"',
    "\u030a": "r",
    "\u030b": "H",
    "\u030c": "v",
    "\u0323": "d",
    "\u0327": "c",
    "\u0331": "b",
}
#: TeX's ligatures among ASCII characters: ``--`` prints as an en dash, ``''`` as a
#: closing double quote; an empty group between the two keeps both.
_TEX_LIGATURE = re.compile(r"(?<=-)(?=-)|(?<=')(?=')")


def tex_text(text: str) -> str:
    """``text`` (from a spec: a description, a file name) as LaTeX text that prints
    each character as itself and runs no command, whatever it holds.

    The result is ASCII: TeX's specials are escaped; a character that is not
    printable (a newline, an escape, a bidi control, a byte that is not UTF-8) is
    shown as its Python escape, ``\\n``; a letter with an accent is the accent
    command, a Greek letter SymPy's ``\\alpha``; anything the standard fonts lack
    is its code point, ``U+2603``, rather than a character pdflatex stops on.
    """
    printed = "".join(map(_tex_character, unicodedata.normalize("NFC", text)))
    return _TEX_LIGATURE.sub("{}", printed)


def _tex_character(c: str) -> str:
    if c in _TEX_ASCII:
        return _TEX_ASCII[c]
    if " " <= c <= "~":
        return c
    if not c.isprintable():  # repr writes it as ASCII: \n, \x1b, \u202e, \udcff
        return "".join(map(_tex_character, repr(c)[1:-1]))
    if c in _TEX_UNICODE:
        return _TEX_UNICODE[c]
    decomposed = unicodedata.normalize("NFD", c)  # a letter, then its accents
    base, marks = decomposed[0], decomposed[1:]
    if base.isascii() and base.isalpha() and marks in _TEX_ACCENTS:
        # An accent above i or j sits on the dotless letter; one below, on the letter.
        above = marks < "\u0323"
        letter = {"i": r"\i", "j": r"\j"}.get(base, base) if above else base
        return rf"\{_TEX_ACCENTS[marks]}{{{letter}}}"
    greek = _greek(c)
    if greek:
        return rf"\ensuremath{{{greek}}}"
    kind = unicodedata.decomposition(c).partition(" ")[0]  # "<super>", "<sub>", ...
    compatible = unicodedata.normalize("NFKC", c)
    if compatible != c and all(" " <= d <= "~" for d in compatible):
        printed = "".join(map(_tex_character, compatible))
        if kind == "<super>":
            return rf"\textsuperscript{{{printed}}}"
        if kind == "<sub>":
            return rf"\textsubscript{{{printed}}}"
        return printed
    return rf"\texttt{{U+{ord(c):04X}}}"


def _greek(c: str) -> str:
    """SymPy's LaTeX for the Greek letter ``c`` (``\\lambda``), else ``""``."""
    match = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", unicodedata.name(c, ""))
    if not match:
        return ""
    word = {"LAMDA": "LAMBDA"}.get(match[2], match[2]).lower()
    if word not in greek_letters_set:
        return ""
    return translate(word if match[1] == "SMALL" else word.capitalize())


def _subscriptable(name: str) -> str:
    """``name`` ready for a subscript: ``{W_{q}}`` (TeX refuses a double subscript)."""
    return f"{{{name}}}" if "_" in name else name


def visible_length(text: str) -> int:
    """About how wide ``text`` prints, in characters: a symbol command is one, a
    function name its letters, a binary operator three with its spacing; braces,
    scripts' carets and ``\\left``/``\\right`` none (a fraction counts both parts)."""
    text = re.sub(
        r"\\(left|right|Bigl|Bigr|frac|hat|operatorname|text|qquad)\b|\\[,;:!]|[{}^_&]",
        "",
        text,
    )
    text = re.sub(r"\\(?!log|exp|tanh|sinh|cosh|sin|cos)[A-Za-z]+", "#", text)
    return len(re.sub(r"[-+=<>]", "###", text).replace(" ", ""))


class DeriveLatexPrinter(LatexPrinter):
    """SymPy's ``LatexPrinter`` with the graph's names and array operations.

    ``names`` maps a value's (or a size's) name in the code to its LaTeX, as the
    graph's values carry it; ``gradients`` maps a gradient's name to the LaTeX of
    what it is the gradient of, so that ``d_loss_d_h1[m]`` prints as
    ``\\frac{\\partial L}{\\partial h_{m}}``. ``arrays`` maps each symbol that stands for a whole array in array-form
    expressions to its number of axes: their products print as ``\\odot``, and a
    vector is a column, so that ``d @ W`` with a vector ``d`` prints as
    ``{W}^{\\top} d`` and an outer product as ``u \\, {v}^{\\top}``.
    """

    def __init__(
        self,
        arrays: Mapping[str, int] | None = None,
        names: Mapping[str, str] | None = None,
        gradients: Mapping[str, str] | None = None,
        rows: bool = False,
    ) -> None:
        super().__init__({"mul_symbol": None})
        self.rows = rows
        self.arrays = dict(arrays or {})
        self.names = dict(names or {})
        self.gradients = dict(gradients or {})

    def __call__(self, expr: Any) -> str:
        """``expr`` printed; as rows of an ``align`` environment when made with
        ``rows`` (see :meth:`lines`)."""
        return self.lines(expr) if self.rows else self.doprint(expr)

    def name(self, name: str) -> str:
        """The LaTeX of the array, scalar or size called ``name`` in the code."""
        if name in self.gradients:
            return rf"\frac{{\partial L}}{{\partial {self.gradients[name]}}}"
        return self.names.get(name) or default_latex(name)

    def lines(self, expr: sp.Expr, width: int = LINE) -> str:
        """``expr`` as rows of an ``align`` environment: a sum too long for one line
        is broken before a term, each row after the first continued ``&\\qquad``;
        a long sum inside a product, a ``\\sum`` or a derivative is broken inside
        ``\\Bigl( ... \\Bigr)``, which, unlike ``\\left``, may span rows."""
        text = self._print(expr)
        if visible_length(text) <= width:
            return text
        return self._broken(expr, width) or text

    def _broken(self, expr: sp.Expr, width: int) -> str | None:
        if isinstance(expr, sp.Add):
            return self._broken_sum(expr, width)
        if isinstance(expr, sp.Derivative) and not expr.expr.is_Atom:
            inner = self._broken(expr.expr, width)
            if inner is None:
                return None
            ((variable, _),) = expr.variable_count
            head = rf"\frac{{\partial}}{{\partial {self._print(variable)}}}"
            return rf"{head} \Bigl({inner}\Bigr)"
        if isinstance(expr, sp.Sum):
            inner = self._broken(expr.function, width)
            if inner is None:
                return None
            indices = ",".join(self._print(limit[0]) for limit in expr.limits)
            return rf"\sum_{{{indices}}} \Bigl({inner}\Bigr)"
        if isinstance(expr, sp.Mul) and not self._is_array(expr):
            longest = max(expr.args, key=lambda f: len(self._print(f)))
            inner = self._broken(longest, width)
            if inner is None:
                return None
            if isinstance(longest, sp.Add):
                inner = rf"\Bigl({inner}\Bigr)"
            rest = sp.Mul(*(f for f in expr.args if f is not longest))
            if rest == 1:
                return inner
            if rest == -1:
                return f"- {inner}"
            return f"{self.parenthesize(rest, PRECEDENCE['Mul'], strict=True)} {inner}"
        return None

    def _broken_sum(self, expr: sp.Add, width: int) -> str:
        rows = [""]
        for k, term in enumerate(self._as_ordered_terms(expr)):
            sign = ""
            if k and term.could_extract_minus_sign():
                sign, term = "- ", -term
            elif k:
                sign = "+ "
            printed = self._print(term)
            if self._needs_add_brackets(term):
                printed = rf"\left({printed}\right)"
            piece = sign + printed
            if rows[-1] and visible_length(rows[-1] + piece) > width:
                rows.append(piece)
            else:
                rows[-1] += (" " if rows[-1] else "") + piece
        return CONTINUED.join(rows)

    def _as_ordered_terms(self, expr: sp.Expr, order: Any = None) -> list[sp.Expr]:
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: term.could_extract_minus_sign())

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr.is_integer and expr.name not in self.names:  # an index
            return super()._print_Symbol(expr, style)
        return self.name(expr.name)

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        name = str(expr.base.label)
        indices = " ".join(self._print(i) for i in expr.indices)
        if name in self.gradients:
            target = _subscriptable(self.gradients[name])
            return rf"\frac{{\partial L}}{{\partial {target}_{{{indices}}}}}"
        return f"{_subscriptable(self.name(name))}_{{{indices}}}"

    def _print_IndexedBase(self, expr: sp.IndexedBase) -> str:
        return self.name(str(expr.label))

    def _print_Pow(self, expr: sp.Pow) -> str:
        """A power of an array operation: ``\\left(...\\right)^{2}`` (SymPy would pass
        the exponent into the operation's own printer)."""
        if isinstance(expr.base, ArrayOp):
            base = self._print(expr.base)
            return rf"\left({base}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _helper_print_standard_power(self, expr: sp.Pow, template: str) -> str:
        """``{h^{(1)}_{a m}}^{2}``: a power of a name that carries its own scripts
        gets braces (TeX refuses a double superscript)."""
        if isinstance(expr.base, (sp.Indexed, sp.Symbol)):
            base = self._print(expr.base)
            if "^" in base or "_" in base:
                return template % (f"{{{base}}}", self._print(expr.exp))
        return super()._helper_print_standard_power(expr, template)

    def _print_Heaviside(self, expr: sp.Expr, exp: Any = None) -> str:
        text = rf"H\left({self._print(expr.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_KroneckerDelta(self, expr: sp.Expr, exp: Any = None) -> str:
        i, j = (self._print(a) for a in expr.args)
        text = rf"\delta_{{{i} {j}}}"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_Sum(self, expr: sp.Sum) -> str:
        indices = ",".join(self._print(limit[0]) for limit in expr.limits)
        body = self._print(expr.function)
        if (
            isinstance(expr.function, sp.Add)
            or expr.function.could_extract_minus_sign()
        ):
            body = rf"\left({body}\right)"  # never \sum_{a} - \sum_{m} ...
        return rf"\sum_{{{indices}}} {body}"

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        ((variable, _count),) = expr.variable_count
        numerator = self._print(expr.expr)
        if not isinstance(expr.expr, (sp.Symbol, sp.Indexed)):
            numerator = rf"\left({numerator}\right)"
            return rf"\frac{{\partial}}{{\partial {self._print(variable)}}} {numerator}"
        return rf"\frac{{\partial {numerator}}}{{\partial {self._print(variable)}}}"

    def _print_Mul(self, expr: sp.Expr) -> str:
        """A product with two or more array factors is elementwise: ``a \\odot b``.

        Every factor that binds looser than a product (a sum, another product, a
        matrix product) gets brackets, and so does a scalar coefficient that is a sum:
        ``(1 - h) (g \\odot h)``, never ``1 - h (g \\odot h)``.
        """
        # A pass may leave a product unevaluated inside another (``1/n (a b c)``);
        # SymPy's printer would juxtapose the inner factors, which reads as a
        # matrix product, so the factors are taken from every level.
        factors = _factors(expr)
        arrays = [f for f in factors if self._is_array(f)]
        if len(arrays) < 2:
            return super()._print_Mul(expr)
        scalars = [f for f in factors if not self._is_array(f)]
        product = r" \odot ".join(self._factor(f) for f in arrays)
        coefficient = sp.Mul(*scalars)
        if coefficient == 1:
            return product
        if coefficient == -1:
            return rf"- \left({product}\right)"
        scale = self.parenthesize(coefficient, PRECEDENCE["Mul"], strict=True)
        return rf"{scale} \left({product}\right)"

    def _factor(self, expr: sp.Expr) -> str:
        """An operand of ``\\odot``: bracketed unless it is a name, a power or a call."""
        if isinstance(expr, (MatProd, Outer)) or expr.could_extract_minus_sign():
            return rf"\left({self._print(expr)}\right)"
        return self.parenthesize(expr, PRECEDENCE["Mul"], strict=False)

    def _is_array(self, expr: sp.Expr) -> bool:
        """Whether ``expr`` is an array (not a number, nor a sum over every axis)."""
        return self._ndim(expr) > 0

    def _print_MatProd(self, expr: sp.Expr) -> str:
        left, right = expr.args
        shape = (self._ndim(left), self._ndim(right))
        if shape == (1, 2):  # NumPy's d @ W is W^T d for a column d
            left, right = _transposed(right), left
        elif shape == (1, 1):  # a dot product
            left = Transposed(left)
        # An elementwise product is bracketed too: ``(a \\odot b) W``.
        return " ".join(
            self.parenthesize(a, PRECEDENCE["Mul"], strict=False) for a in (left, right)
        )

    def _ndim(self, expr: sp.Expr) -> int:
        """The number of axes of an array-form expression."""
        if isinstance(expr, sp.Symbol):
            return self.arrays.get(expr.name, 0)
        if isinstance(expr, MatProd):
            return max(0, sum(self._ndim(a) for a in expr.args) - 2)
        if isinstance(expr, Outer):
            return 2
        if isinstance(expr, SumAxes):
            operand, *axes = expr.args
            return self._ndim(operand) - len(axes) if axes else 0
        if isinstance(expr, LogSumExp):
            operand, *axes = expr.args
            return self._ndim(operand) - len(axes)
        if isinstance(expr, TensorDot):
            left, right, left_axes, _ = expr.args
            return self._ndim(left) + self._ndim(right) - 2 * len(left_axes)
        if isinstance(expr, Permuted):
            return self._ndim(expr.args[0])
        if isinstance(expr, Sliced):
            operand, *key = expr.args
            return self._ndim(operand) - sum(1 for k in key if k != -1)
        if isinstance(expr, NewAxes):
            operand, *flags = expr.args
            return self._ndim(operand) + sum(1 for f in flags if not f)
        if isinstance(expr, UnitVector):
            return 1
        return max((self._ndim(a) for a in expr.args), default=0)

    def _print_Transposed(self, expr: sp.Expr) -> str:
        # Braces: the operand may carry a superscript already, as W^{(1)} does; a
        # gradient prints as a fraction, which gets parentheses.
        operand = self.parenthesize(expr.args[0], PRECEDENCE["Pow"], strict=True)
        if operand.startswith(r"\frac"):
            return rf"\left({operand}\right)^{{\top}}"
        return rf"{{{operand}}}^{{\top}}"

    def _print_Outer(self, expr: sp.Expr) -> str:
        left, right = (
            self.parenthesize(a, PRECEDENCE["Mul"], strict=False) for a in expr.args
        )
        return rf"{left} \, {{{right}}}^{{\top}}"

    def _print_SumAxes(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        over = r"\text{all}" if not axes else ",".join(self._print(a) for a in axes)
        return rf"\operatorname{{sum}}_{{{over}}}\left({self._print(operand)}\right)"

    def _print_NewAxes(self, expr: sp.Expr) -> str:
        r"""A new axis is printed where the code makes one, ``{lse}_{[:,\mathrm{None}]}``
        for ``lse[:, None]``: left out, ``lse ⊙ weights`` would broadcast lse along
        the wrong axis (NumPy's rule aligns trailing axes)."""
        operand, *flags = expr.args
        key = ",".join(":" if flag else r"\mathrm{None}" for flag in flags)
        return rf"{{{self._print(operand)}}}_{{[{key}]}}"

    def _print_LogSumExp(self, expr: sp.Expr) -> str:
        operand, *axes = expr.args
        over = ",".join(self._print(a) for a in axes)
        return (
            rf"\operatorname{{logsumexp}}_{{{over}}}"
            rf"\left({self._print(operand)}\right)"
        )

    def _print_TensorDot(self, expr: sp.Expr) -> str:
        """A contraction over the listed axes of each operand."""
        left, right, left_axes, right_axes = expr.args
        over = (
            ",".join(self._print(a) for a in left_axes)
            + ";"
            + ",".join(self._print(a) for a in right_axes)
        )
        return (
            rf"\operatorname{{tensordot}}_{{{over}}}\left({self._print(left)}, "
            rf"{self._print(right)}\right)"
        )

    def _print_Permuted(self, expr: sp.Expr) -> str:
        operand, *order = expr.args
        text = self.parenthesize(operand, PRECEDENCE["Pow"], strict=True)
        positions = ",".join(self._print(p) for p in order)
        return rf"{{{text}}}^{{\top({positions})}}"

    def _print_Sliced(self, expr: sp.Expr) -> str:
        operand, *key = expr.args
        items = ",".join(":" if k == -1 else self._print(k) for k in key)
        return rf"{{{self._print(operand)}}}_{{[{items}]}}"

    def _print_UnitVector(self, expr: sp.Expr) -> str:
        size, position = expr.args
        return rf"e_{{{self._print(position)}}}"

    def _print_BroadcastTo(self, expr: sp.Expr) -> str:
        return self._print(expr.args[0])

    def _print_Einsum(self, expr: sp.Expr) -> str:
        subscripts, *operands = expr.args
        args = ", ".join(self._print(o) for o in operands)
        return rf"\operatorname{{einsum}}_{{\texttt{{{subscripts.name}}}}}\left({args}\right)"


def _transposed(expr: sp.Expr) -> sp.Expr:
    return expr.args[0] if isinstance(expr, Transposed) else Transposed(expr)


def _factors(expr: sp.Expr) -> list[sp.Expr]:
    """The factors of the product ``expr``, nested unevaluated products opened."""
    factors: list[sp.Expr] = []
    for factor in expr.args:
        factors.extend(_factors(factor) if isinstance(factor, sp.Mul) else [factor])
    return factors
