"""What the documents print is the math: every equation, read back from the printed
LaTeX by SymPy's parser, evaluates to what the expression it was printed from computes.

See :mod:`tests.latex_roundtrip` for how derive's notation is read back.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from derive.derivation import derive
from derive.equations import EquationSpec
from derive.evaluate import evaluate
from derive.network import build, build_network
from derive.render import render
from derive.spec import NetworkSpec, load_spec, parse_spec
from tests.conftest import GENERATED, SPECS, examples
from tests.equation_strategies import equation_specs
from tests.latex_roundtrip import Notation, Reader, check_document, equations, small

SPEC_OF = {load_spec(p).name: load_spec(p) for p in SPECS.glob("*.toml")}
DOCUMENTS = sorted([*GENERATED.glob("*.tex"), *GENERATED.glob("*.md")])
# Equation specs' documents: every equation in index form (the forward equations,
# each gradient's chain-rule steps), the activations and the worked point are read
# back; the matrix form is not yet (see Checker.check).
EQUATION_DOCUMENTS = [p for p in DOCUMENTS if isinstance(SPEC_OF[p.stem], EquationSpec)]


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Reader:
    return Reader(tmp_path_factory.mktemp("grammar"))


@pytest.fixture(scope="module")
def equation_reader(tmp_path_factory) -> Reader:
    return Reader(tmp_path_factory.mktemp("grammar"), equations=True)


def worked_numbers(spec):
    if spec.worked_point is None:
        return None
    point = dict(spec.worked_point)
    if isinstance(spec, NetworkSpec):  # the table's y is the code's y_observed
        point = {("y_observed" if k == "y" else k): v for k, v in point.items()}
    return evaluate(derive(build(spec)), point)


#: The documents the quick run reads back (each reader once, 10-15 s a spec); the
#: others are read in .ci/run's slow run.
QUICK_DOCUMENTS = {"seed_equations"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=() if p.stem in QUICK_DOCUMENTS else pytest.mark.slow)
        for p in DOCUMENTS
    ],
    ids=lambda p: p.name,
)
def test_every_committed_equation_reads_back_as_the_math(reader, equation_reader, path):
    spec = SPEC_OF[path.stem]
    _, found = equations(path)
    if isinstance(spec, EquationSpec):
        checked = check_document(path, spec, equation_reader, worked_numbers(spec))
        read = [e for e in found if e.section != "sizes"]
        assert checked == len(read) >= 10
        assert {"network", "backward"} <= {e.section for e in read}
    else:
        checked = check_document(path, spec, reader, worked_numbers(spec))
        displayed = [e for e in found if e.section != "sizes"]
        assert checked == len(displayed) >= 20


# Formulas chosen to stress the printer: sums and differences as factors, quotients,
# powers of sums, nested calls, constants, kinks.
CUSTOM_ACTIVATIONS = [
    "x * sigmoid(x)",
    "x**3 / (x**4 + 6)",
    "(1 - x) * (x + 2) * sigmoid(x)",
    "x * tanh(softplus(x))",
    "sqrt(1 + x**2) - 1",
    "(x - 1)**2 * exp(-x) / (2 + x**2)",
    "abs(x) * atan(x) - cos(x) / 3",
    "max(x, 0.5 * x) + min(x, 0) * sinh(x / 2)",
    "x * erf(x / sqrt(2)) - pi * exp(-x**2) + e",
    "log(1 + exp(-x)) * (tanh(x) - sigmoid(-x))",
]
CUSTOM_LOSSES = [
    "sqrt(1 + (y_predicted - y)**2) - 1",
    "(y_predicted - y)**4 / 4",
    "(y_predicted - y) * (1 - y) * sigmoid(y_predicted)",
    "abs(y_predicted - y) / (1 + abs(y))",
]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "gelu"]
LOSSES = ["squared", "mse", "huber", "binary_cross_entropy", "softmax_cross_entropy"]


def spec_text(n_in, layers, loss, reduction, style, shapes) -> str:
    text = f'name = "net"\ninput = {n_in}\nstyle = "{style}"\nshapes = "{shapes}"\n'
    for n, (width, activation, bias) in enumerate(layers):
        text += f"[[layers]]\nwidth = {width}\nbias = {str(bias).lower()}\n"
        if activation in CUSTOM_ACTIVATIONS:
            text += f'activation = "custom"\nexpression = "{activation}"\n'
            text += f'function_name = "f{n}"\n'
        else:
            text += f'activation = "{activation}"\n'
        if activation == "leaky_relu":
            text += "slope = 0.2\n"
    text += f'[loss]\nreduction = "{reduction}"\n'
    if loss in CUSTOM_LOSSES:
        return text + f'kind = "custom"\nexpression = "{loss}"\n'
    if loss == "huber":
        return text + 'kind = "huber"\ndelta = 0.5\n'
    return text + f'kind = "{loss}"\n'


layer = st.tuples(
    st.integers(1, 3),
    st.sampled_from([*ACTIVATIONS, *CUSTOM_ACTIVATIONS]),
    st.booleans(),
)


@pytest.mark.slow  # 10-20 s a drawn spec: the deep run draws them
@settings(
    max_examples=examples(1),  # each reads two documents (10-20 s); and the @examples
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Cases random draws found: a width-1 output whose matrix-form derivative is a
# product nested inside ``1/n_batch`` (printed juxtaposed, read as a matrix
# product), and a per-sample lse (no indices) as a local derivative's numerator.
@example(
    n_in=2,
    layers=[(2, "identity", False), (1, "identity", False)],
    loss="(y_predicted - y) * (1 - y) * sigmoid(y_predicted)",
    reduction="mean",
    style="vectorized",
    shapes="torch",
)
@example(
    n_in=3,
    layers=[
        (3, "identity", False),
        (2, "max(x, 0.5 * x) + min(x, 0) * sinh(x / 2)", True),
    ],
    loss="softmax_cross_entropy",
    reduction="mean",
    style="vectorized",
    shapes="problem_set",
)
@given(
    n_in=st.integers(1, 3),
    layers=st.lists(layer, min_size=1, max_size=3),
    loss=st.sampled_from([*LOSSES, *CUSTOM_LOSSES]),
    reduction=st.sampled_from(["mean", "sum"]),
    style=st.sampled_from(["vectorized", "unrolled"]),
    shapes=st.sampled_from(["torch", "problem_set"]),
)
def test_random_networks_print_the_math(
    reader, tmp_path, n_in, layers, loss, reduction, style, shapes
):
    """Random [[layers]] specs: activations, losses, custom formulas, both styles
    and both shapes; every equation of both documents reads back as the math."""
    if loss == "softmax_cross_entropy":  # needs two classes or more
        width, activation, bias = layers[-1]
        layers = [*layers[:-1], (max(width, 2), activation, bias)]
    spec = parse_spec(
        spec_text(n_in, layers, loss, reduction, style, shapes), "net.toml"
    )
    for output in render(spec, "net.toml"):
        if output.name.endswith(".py"):
            continue
        path = tmp_path / output.name
        path.write_text(output.text)
        assert check_document(path, spec, reader) >= 5


@pytest.mark.slow  # reads two documents of a three-layer spec (20 s)
def test_the_issue_s_examples_read_back(reader, tmp_path):
    """``swish'(x)`` lost the brackets around ``1 - sigma(x)``; a sigmoid layer's
    matrix form read ``1 - h (dL/dh \\odot h)``; a scalar definition got ``\\odot``."""
    text = spec_text(
        2,
        [
            (3, "sigmoid", True),
            (2, "x**3 / (x**4 + 6)", True),
            (2, "x * sigmoid(x)", True),
        ],
        "mse",
        "mean",
        "vectorized",
        "torch",
    )
    spec = parse_spec(text, "net.toml")
    outputs = {o.name: o.text for o in render(spec, "net.toml")}
    assert r"\odot" not in outputs["net.md"].split("## Activations")[1].split("##")[0]
    for name, text in outputs.items():
        if name.endswith((".md", ".tex")):
            (tmp_path / name).write_text(text)
            assert check_document(tmp_path / name, spec, reader) >= 20


def test_a_misprinted_equation_is_caught(reader, tmp_path):
    """The check is not vacuous: the issue's misprint of swish' fails it."""
    spec = SPEC_OF["swish_custom"]
    text = (GENERATED / "swish_custom.md").read_text()
    right = r"x \left(1 - \sigma\left(x\right)\right) \sigma\left(x\right)"
    wrong = r"1 - \sigma\left(x\right) \left(x \sigma\left(x\right)\right)"
    assert right in text
    (tmp_path / "swish_custom.md").write_text(text.replace(right, wrong))
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_document(tmp_path / "swish_custom.md", spec, reader)


def test_sizes_are_the_spec_s(reader):
    spec = SPEC_OF["mnist_classifier"]
    table, _ = equations(GENERATED / "mnist_classifier.md")
    network = build_network(small(spec))
    notation = Notation(network, derive(network), dict(table))
    size = reader.parse(r"n_{\text{in}}", notation)
    assert build_network(spec).widths[size] == 784
    assert np.isclose(float(reader.parse(r"\frac{\pi}{2}", notation)), np.pi / 2)


@pytest.mark.parametrize(
    ("name", "right", "wrong"),
    [
        # dL/dh0 without the transpose of W1: the classic slip of a backward pass.
        (
            "seed_equations.md",
            r"\sum_{m} {W_{1}}_{m i} \frac{\partial L}{\partial {r_{1}}_{m}}",
            r"\sum_{m} {W_{1}}_{i m} \frac{\partial L}{\partial {r_{1}}_{m}}",
        ),
        # The matrix form without the transpose (W1 is square: only the numbers tell).
        (
            "seed_equations.md",
            r"{W_{1}}^{\top} \frac{\partial L}{\partial r_{1}}",
            r"W_{1} \frac{\partial L}{\partial r_{1}}",
        ),
        # A forward equation that contracts the wrong axis of W1.
        (
            "seed_equations.tex",
            r"\sum_{j} {W_{1}}_{i j} {h_{0}}_{j}",
            r"\sum_{j} {W_{1}}_{j i} {h_{0}}_{j}",
        ),
    ],
)
def test_a_misprinted_equation_document_is_caught(
    equation_reader, tmp_path, name, right, wrong
):
    """The check of equation specs' documents is not vacuous either."""
    text = (GENERATED / name).read_text()
    assert text.count(right) == 1
    (tmp_path / name).write_text(text.replace(right, wrong))
    spec = SPEC_OF["seed_equations"]
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_document(tmp_path / name, spec, equation_reader, worked_numbers(spec))


@pytest.mark.slow  # 10-20 s a drawn spec: the deep run draws them
@settings(
    max_examples=examples(1),  # each reads two documents (10-20 s); and the @examples
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Found by the draws: a value whose own index is k (the name [[layers]] sum over).
@example(
    text='name = "drawn"\n[sizes]\nm = 1\nn = 3\np = 4\n[inputs]\nx = ["m", "p", "n"]\n'
    '[parameters]\nW0 = ["n", "m"]\nb1 = ["m"]\nW2 = ["n", "p"]\n[equations]\n'
    'v0 = "(x + x) @ W0 + b1"\nv1 = "W2 @ x @ (W2 @ x)"\nloss = "mean(v1 ** 2)"\n'
)
# A sum over an index only Kronecker deltas read, in a step where another sum
# reuses that index name.
@example(
    text='name = "drawn"\n[sizes]\nm = 1\np = 2\n[inputs]\nx = ["batch", "m"]\n'
    '[parameters]\nW2 = ["p", "m"]\nW3 = ["p", "m"]\n[equations]\n'
    'v1 = "x @ W2.T"\nv2 = "x @ W3.T"\nv3 = "v1 @ v2.T / sqrt(p)"\n'
    'v4 = "softmax(v3, axis=-1)"\nv5 = "v4 @ x"\nloss = "mean(v5**2) + mean(v2)"\n'
)
# A kept length-1 axis of a 1-D value (v1 is one number in an array of shape (1,)).
@example(
    text='name = "drawn"\n[inputs]\nx = ["batch"]\n[parameters]\na0 = []\n'
    '[equations]\nv1 = "mean(x**2, axis=0, keepdims=True)"\nv2 = "(x**2) - v1"\n'
    'loss = "mean(v2**2) + a0 + mean(v1)"\n'
)
@given(text=equation_specs())
def test_random_equation_specs_print_the_math(equation_reader, tmp_path, text):
    """Random equation specs (tests/equation_strategies.py): every equation of both
    documents, the matrix form included, reads back strictly as the math."""
    spec = parse_spec(text, "drawn.toml")
    for output in render(spec, "drawn.toml"):
        if output.name.endswith(".py"):
            continue
        path = tmp_path / output.name
        path.write_text(output.text)
        try:
            check_document(path, spec, equation_reader)
        except Exception as error:  # the reader does not read einsum back yet
            if "einsum is not read back yet" not in str(error):
                raise
