"""The derivation documents: they compile, they fit the page, and every equation they
print evaluates to the numbers the generated code computes."""

from __future__ import annotations

import inspect
import os
import shutil

import numpy as np
import pytest

from derive.cli import main
from derive.derivation import derive
from derive.document import document_context
from derive.evaluate import Evaluator
from derive.network import build_network
from derive.passes.unroll import elements
from derive.pdf import compile_tex
from derive.spec import load_spec
from tests.conftest import GENERATED, SPECS, generate_module, import_path

TEX_FILES = sorted(GENERATED.glob("*.tex"))
needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None and not os.environ.get("DERIVE_REQUIRE_PDFLATEX"),
    reason="pdflatex is not installed (.ci/run installs it and requires it)",
)


def test_every_spec_has_a_committed_tex():
    assert {p.stem for p in TEX_FILES} == {
        load_spec(p).name for p in SPECS.glob("*.toml")
    }


@needs_pdflatex
@pytest.mark.parametrize("path", TEX_FILES, ids=lambda p: p.name)
def test_committed_tex_compiles_and_fits_the_page(path):
    compiled = compile_tex(path.read_text(), path.stem)
    assert compiled.pdf.startswith(b"%PDF")
    assert compiled.overfull == [], f"lines too wide for the page: {compiled.overfull}"


@needs_pdflatex
def test_pdf_option_writes_a_reproducible_pdf(tmp_path, capsys):
    assert main(["--pdf", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "seed_mlp.pdf").read_bytes()
    assert first.startswith(b"%PDF")
    assert "seed_mlp.pdf" in capsys.readouterr().out.splitlines()[-1]
    assert main(["--pdf", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "seed_mlp.pdf").read_bytes() == first


def test_pdf_without_pdflatex_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("derive.pdf.shutil.which", lambda name: None)
    assert main(["--pdf", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "--pdf needs pdflatex, which is not installed" in error
    assert "apt-get install texlive-latex-base" in error
    assert list(tmp_path.iterdir()) == []


def context(spec):
    derivation = derive(build_network(spec))
    code = {g.name: "" for g in derivation.gradients}
    return derivation, document_context(derivation, spec.source, code, "")


def random_point(module, rng, batch=3):
    params = {k: rng.standard_normal(s) for k, s in module.PARAMETER_SHAPES.items()}
    shape_in = [batch if s == "batch" else s for s in module.INPUT_SHAPE]
    shape_out = [batch if s == "batch" else s for s in module.OUTPUT_SHAPE]
    x = rng.standard_normal(shape_in)
    if not shape_out:  # a scalar output, as the problem set's
        return params, float(x), float(rng.standard_normal())
    y = rng.dirichlet(np.ones(shape_out[-1]), size=shape_out[:-1] or None)
    return params, x, y


def call_partial(module, name, values, params, y):
    function = getattr(module, name)
    arguments = {"variable_dict": values, "y_observed": y, **params}
    names = inspect.signature(function).parameters
    return function(*(arguments[n] for n in names))


SOFTMAX = """
name = "tiny_softmax"
input = 3
[[layers]]
width = 4
activation = "tanh"
[[layers]]
width = 3
activation = "identity"
[loss]
kind = "softmax_cross_entropy"
"""


TINY_SWISH = """
name = "tiny_swish"
input = 3
[[layers]]
width = 4
activation = "custom"
expression = "x * sigmoid(x)"
function_name = "swish"
[[layers]]
width = 2
activation = "leaky_relu"
[loss]
kind = "huber"
delta = 0.5
"""


@pytest.mark.parametrize(
    "source",
    # small_regression (12 s) in the deep run only.
    [
        "seed.toml",
        pytest.param("small_regression.toml", marks=pytest.mark.slow),
        SOFTMAX,
        TINY_SWISH,
    ],
    ids=["seed", "small_regression", "softmax", "swish_huber"],
)
def test_every_printed_equation_evaluates_like_the_code(tmp_path, source):
    """Each gradient's printed chain-rule line and result, evaluated by SymPy at a
    random point, equal the generated ``d_loss_d_*`` function there."""
    if source.endswith(".toml"):
        spec = load_spec(SPECS / source)
        module = import_path(GENERATED / f"{spec.name}.py")
    else:
        spec, module = generate_module(tmp_path, source, "tiny.toml")
    derivation, document = context(spec)
    params, x, y = random_point(module, np.random.default_rng(5), batch=2)
    evaluator = Evaluator(derivation, {"x": x, "y_observed": y, **params})
    values = module.mlp(x, *params.values())
    for name, value in values.items():
        np.testing.assert_allclose(
            np.asarray(evaluator.results[name], dtype=float), value, rtol=1e-12
        )
    for gradient in document.gradients:
        expected = np.asarray(call_partial(module, gradient.name, values, params, y))
        assert len(gradient.expressions) >= 1
        for expression in gradient.expressions:
            got = np.empty(expected.shape)
            for at in elements(expected.shape):
                got[at] = float(evaluator.element(expression, gradient.indices, at))
            np.testing.assert_allclose(
                got, expected, rtol=1e-10, atol=1e-12, err_msg=gradient.name
            )


def test_worked_point_numbers_are_the_problem_set_s():
    seed = import_path(GENERATED / "seed_mlp.py")
    _, document = context(load_spec(SPECS / "seed.toml"))
    worked = document.worked
    assert worked is not None
    point = {"x": 10, "W0": np.array([1, 2, 3])}
    point.update(
        W1=np.array([[3, 4, 5], [-5, 4, 3], [3, 4, 1]]), W2=np.array([1, 3, -3])
    )
    values = seed.mlp(*point.values())
    assert worked.numbers["y_predicted"] == 200
    assert worked.numbers["loss"] == 400
    for name in ("W0", "W1", "W2", "h0", "r1"):
        function = f"d_loss_d_{name}"
        expected = call_partial(seed, function, values, point, 180)
        np.testing.assert_array_equal(
            np.asarray(worked.numbers[function], dtype=float), expected
        )
    latex = dict(worked.gradients)
    assert r"-8400 & 1600 & 4400" in latex[r"\frac{\partial L}{\partial W^{(0)}}"]
    assert "At the worked point" in (GENERATED / "seed_mlp.md").read_text()
    assert r"\section{At the worked point}" in (GENERATED / "seed_mlp.tex").read_text()


def test_sizes_stay_symbolic_in_a_wide_network():
    """A 784-wide layer is one equation with n_in in it, not 784 of them."""
    tex = (GENERATED / "mnist_classifier.tex").read_text()
    assert r"n_{\text{in}} = 784" in tex
    assert tex.count(r"\sum_{k} W^{(0)}_{i k} x_{b k}") == 1
    assert len(tex) < 40_000


def test_markdown_has_the_diagram_and_math_blocks():
    markdown = (GENERATED / "mnist_classifier.md").read_text()
    assert "```mermaid\nflowchart LR" in markdown
    assert 'n0 -->|"W0, b0"| n1' in markdown
    assert markdown.count("$$") % 2 == 0 and markdown.count("$$") > 20


LONG_FORMULA = (
    "x * tanh(softplus(x)) * sin(x)**2 / (1 + x**2) + cos(x) * exp(-x**2) * x**3"
    " - atan(x) * erf(x / sqrt(2))"
)
WIDE = f"""
name = "a_network_with_a_rather_long_name_built_to_be_wide_on_the_page"
description = "See https://example.org/a/very/long/path/that/keeps/going/and_going/and-going/until/it/is/wider/than/the/page/index.html?query=with_parameters&and=more for more."
input = 3
[[layers]]
width = 4
activation = "custom"
function_name = "a_very_long_activation_function_name_indeed"
expression = "{LONG_FORMULA}"
{"".join(f'[[layers]]{chr(10)}width = 4{chr(10)}activation = "{a}"{chr(10)}' for a in ("relu", "tanh", "sigmoid", "softplus", "gelu", "leaky_relu"))}
[[layers]]
width = 2
activation = "identity"
[loss]
kind = "custom"
expression = "sqrt(1 + (y_predicted - y)**2) - 1 + (y_predicted - y)**4 / 4 + abs(y_predicted - y) * atan(y_predicted) + log(1 + exp(y_predicted - y))"
"""


@needs_pdflatex
def test_a_document_built_to_be_wide_fits_the_page():
    """Depth 8 (the diagram is scaled to the text width), a long custom activation
    and loss (their sums break across lines), long names and a long URL (they break
    anywhere): no overfull box."""
    from derive.render import render
    from derive.spec import parse_spec

    spec = parse_spec(WIDE, "wide.toml")
    tex = next(o.text for o in render(spec, "wide.toml") if o.name.endswith(".tex"))
    assert r"\resizebox{\linewidth}{!}" in tex
    assert r"\url{https://example.org/" in tex
    assert r"&\qquad" in tex and r"\Bigl(" in tex
    compiled = compile_tex(tex, spec.name)
    assert compiled.overfull == [], f"lines too wide for the page: {compiled.overfull}"


def test_custom_loss_summary_reads_as_english():
    spec = load_spec(SPECS / "seed.toml")
    from dataclasses import replace

    from derive.spec import LossSpec

    custom = replace(spec, loss=LossSpec("custom", "sum", None, "(y_predicted - y)**2"))
    _, document = context(custom)
    assert document.loss_summary == (
        "The loss is the custom loss, summed over output units."
    )
