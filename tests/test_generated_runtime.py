"""What a generated module does with careless and hostile input (issue 23), in both
spec forms ([[layers]] and equations) and both targets (numpy, array_api):

1. an empty batch raises ``ValueError`` naming x, as the [[layers]] form always did
   (a mean over no samples is 0/0: nan in the loss, ZeroDivisionError in the
   gradient), and the module's docstring says so;
2. ``params`` that is not a mapping (None, a list of arrays) raises ``TypeError``
   naming ``params`` and listing the parameters; missing and extra keys are named;
3. a torch tensor that requires grad is refused by the numpy target with a
   ``TypeError`` naming the argument and saying what to do, and computed on by the
   array_api target, whose results are then torch autograd's, to second order;
4. a spec's path and description reach NAME.py escaped: whatever the text, the
   header stays one comment line (no line break, no PEP 263 coding declaration),
   the description stays in the docstring, and the module holds the statements of
   a module made from a plain name, no more.

Modules are derived once per module (a fixture) from small specs; the hostile texts
share one derivation per spec form and text.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from types import MappingProxyType

import numpy as np
import pytest

import derive
from tests.conftest import generate_module, import_path

torch = pytest.importorskip("torch")

EQUATIONS = """
name = "{name}"
target = "{target}"
description = "A two-layer classifier written as equations."

[sizes]
pixels = 4
hidden = 3
classes = 2

[inputs]
x = ["batch", "pixels"]
y = ["batch", "classes"]

[parameters]
W0 = ["hidden", "pixels"]
b0 = ["hidden"]
W1 = ["classes", "hidden"]

[equations]
h0 = "tanh(x @ W0.T + b0)"
logits = "h0 @ W1.T"
loss = "-mean(sum(y * log_softmax(logits, axis=-1), axis=-1))"
"""

LAYERS = """
name = "{name}"
target = "{target}"
description = "A two-layer classifier written as layers."
input = 4

[[layers]]
width = 3
activation = "tanh"

[[layers]]
width = 2
activation = "identity"

[loss]
kind = "softmax_cross_entropy"
reduction = "mean"
"""

FORMS = {"equations": EQUATIONS, "layers": LAYERS}
PARAMETERS = {"equations": "W0, b0, W1", "layers": "W0, b0, W1, b1"}
CASES = [(form, target) for form in FORMS for target in ("numpy", "array_api")]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Each spec form for each target: ``(form, target) -> (spec, module)``."""
    folder = tmp_path_factory.mktemp("runtime")
    made = {}
    for form, target in CASES:
        name = f"runtime_{form}_{target}"
        text = FORMS[form].format(name=name, target=target)
        made[form, target] = generate_module(folder, text, f"{name}.toml")
    return made


def problem(module, batch=5, seed=0):
    """Float64 parameters, inputs and one-hot targets for ``module``."""
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s) for k, s in module.PARAMETER_SHAPES.items()}
    x = rng.standard_normal((batch, 4))
    y = np.eye(2)[rng.integers(0, 2, size=batch)]
    return params, x, y


def entry_points(form, module, params, x, y):
    """gradients, loss and forward, called as each form takes them (an equation
    spec's forward takes every input, y included)."""
    return {
        "gradients": lambda: module.gradients(params, x, y),
        "loss": lambda: module.loss(params, x, y),
        "forward": lambda: (
            module.forward(params, x, y)
            if form == "equations"
            else module.forward(params, x)
        ),
    }


def one_line(text: str) -> str:
    return " ".join(text.split())


# 1. An empty batch ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_an_empty_batch_is_refused_naming_x(modules, case):
    form, _ = case
    _, module = modules[case]
    params, x, y = problem(module)
    for call in entry_points(form, module, params, x[:0], y[:0]).values():
        with pytest.raises(
            ValueError, match=r"^(input 'x'|x) has an empty batch \(shape \(0, 4\)"
        ):
            call()
    # One sample is a batch: the refusal is of none, not of few.
    assert np.isfinite(module.loss(params, x[:1], y[:1]))
    assert "empty batch" in one_line(module.__doc__)


def test_an_empty_torch_batch_is_refused_by_the_array_api_target(modules):
    for form in FORMS:
        _, module = modules[form, "array_api"]
        params, x, y = (
            {k: torch.from_numpy(v) for k, v in part.items()}
            if isinstance(part, dict)
            else torch.from_numpy(part)
            for part in problem(module)
        )
        with pytest.raises(ValueError, match=r"x'? has an empty batch"):
            module.gradients(params, x[:0], y[:0])


# 2. params that is not a mapping ---------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_params_that_is_not_a_mapping_names_params(modules, case):
    form, _ = case
    _, module = modules[case]
    params, x, y = problem(module)
    names = re.escape(PARAMETERS[form])
    for bad, kind in (
        (None, "NoneType"),
        (list(params.values()), "list"),
        (tuple(params.values()), "tuple"),
        ("W0", "str"),
        (1.5, "float"),
    ):
        for name, call in entry_points(form, module, bad, x, y).items():
            with pytest.raises(TypeError) as raised:
                call()
            message = str(raised.value)
            assert re.match(
                rf"params must be a dict of arrays keyed by parameter name "
                rf"\({names}\), got {kind}",
                message,
            ), (name, message)
            if kind in ("list", "tuple"):
                assert "dict(zip(PARAMETER_SHAPES, params))" in message
    # What the message suggests for a list works.
    rebuilt = dict(zip(module.PARAMETER_SHAPES, list(params.values()), strict=True))
    got = module.gradients(rebuilt, x, y)
    for name, value in module.gradients(params, x, y).items():
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(value))


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_missing_and_extra_parameters_are_named(modules, case):
    form, _ = case
    _, module = modules[case]
    params, x, y = problem(module)
    expected = re.escape(PARAMETERS[form])
    missing = {k: v for k, v in params.items() if k != "b0"}
    extra = {**params, "W9": params["W0"]}
    mixed = {**params, 3: params["W0"], "zz": params["W0"]}  # keys of two types
    for bad, message in (
        (missing, r"^missing parameter 'b0' of shape \(3,\)$"),
        (extra, rf"^unknown parameter 'W9'; expected {expected}$"),
        (mixed, rf"^unknown parameter 3; expected {expected}$"),
    ):
        for call in entry_points(form, module, bad, x, y).values():
            with pytest.raises(ValueError, match=message):
                call()
    # Any mapping will do, not only a dict.
    got = module.gradients(MappingProxyType(params), x, y)
    assert set(got) == set(params)


# 3. Torch tensors that require grad ------------------------------------------------


def tensors(params, x, y, requires_grad=True):
    def tensor(value):
        return torch.tensor(value, dtype=torch.float64, requires_grad=requires_grad)

    return {k: tensor(v) for k, v in params.items()}, tensor(x), tensor(y)


@pytest.mark.parametrize("form", FORMS)
def test_the_numpy_target_refuses_a_tensor_that_requires_grad_naming_it(modules, form):
    _, module = modules[form, "numpy"]
    params, x, y = problem(module)
    grad_params, grad_x, grad_y = tensors(params, x, y)
    # An equation spec's inputs are named as inputs.
    input_x, input_y = ("input 'x'", "input 'y'") if form == "equations" else "xy"
    for argument, call_params, call_x, call_y, name in (
        ("x", params, grad_x, y, input_x),
        ("y", params, x, grad_y, input_y),
        ("W1", {**params, "W1": grad_params["W1"]}, x, y, "parameter 'W1'"),
        (
            "W0 (nn.Parameter)",
            {**params, "W0": torch.nn.Parameter(torch.from_numpy(params["W0"]))},
            x,
            y,
            "parameter 'W0'",
        ),
    ):
        calls = entry_points(form, module, call_params, call_x, call_y)
        if argument == "y" and form == "layers":
            del calls["forward"]  # takes no y
        for call in calls.values():
            with pytest.raises(TypeError) as raised:
                call()
            message = str(raised.value)
            assert re.match(
                rf"^{name} is a (Tensor|Parameter) that requires grad", message
            )
            assert ".detach()" in message and 'target = "array_api"' in message
    # Detached, the same tensors are read as the arrays they hold.
    detached = module.gradients(
        {k: v.detach() for k, v in grad_params.items()},
        grad_x.detach(),
        grad_y.detach(),
    )
    for name, value in module.gradients(params, x, y).items():
        np.testing.assert_array_equal(detached[name], value)
    assert "requires grad" in one_line(module.__doc__)


@pytest.mark.parametrize("form", FORMS)
def test_the_array_api_target_computes_on_tensors_that_require_grad(modules, form):
    """The gradients are torch tensors equal to the numpy target's, to autograd's of
    the module's own loss, and differentiable again like autograd's (second order)."""
    _, module = modules[form, "array_api"]
    _, numpy_module = modules[form, "numpy"]
    params, x, y = problem(module)
    grad_params, grad_x, grad_y = tensors(params, x, y)
    got = module.gradients(grad_params, grad_x, grad_y)
    expected = numpy_module.gradients(params, x, y)
    loss = module.loss(grad_params, grad_x, grad_y)
    autograd = dict(
        zip(
            grad_params,
            torch.autograd.grad(loss, list(grad_params.values()), create_graph=True),
            strict=True,
        )
    )
    for name, value in got.items():
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
        np.testing.assert_allclose(
            value.detach().numpy(), expected[name], rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(
            value.detach().numpy(),
            autograd[name].detach().numpy(),
            rtol=1e-12,
            atol=1e-15,
        )
    ours = sum((g**2).sum() for g in got.values())
    theirs = sum((g**2).sum() for g in autograd.values())
    wrt = [grad_x, grad_params["W0"]]
    for a, b in zip(
        torch.autograd.grad(ours, wrt), torch.autograd.grad(theirs, wrt), strict=True
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)
    assert "require grad" in one_line(module.__doc__)


# 4. Hostile paths and descriptions -------------------------------------------------

#: Texts used both as a spec's file name (with ".toml" after them) and as its
#: description; none holds "/" or NUL, which no file name can.
HOSTILE = {
    "newline_code": "spec\nimport os; os.system('echo pwned')\nPWNED = 1\n#",
    "triple_double_quotes": 'a"""; PWNED = 1; """b""""',
    "triple_single_quotes": "a'''; PWNED = 1; '''b",
    "backslashes": "C:\\xfiles \\N{BULLET} \\u0041 \\x00 \\",
    "trailing_quote": 'ends with a quote"',
    "coding_latin1": "# coding: latin-1",
    "coding_utf7": "# -*- coding: utf-7 -*- +AAo-PWNED = 1 +AAo-#",
    "carriage_return": "a\rPWNED = 1\r#",
    "controls": "a\x0cb\x0bc\x1cd\x1de\x1ef\x1fg\x07h\x1b[31mred\x7f\x08",
    "unicode_line_breaks": "a\u2028PWNED = 1\u2029b\x85PWNED = 2",
    "bidi_and_invisible": "a\u202eb\u2066c\u200bd\ufeffe\u00a0f",
    "jinja": "{{ net.name }} {% raw %} {# comment #} {%- endraw %}",
    "non_ascii": "r\u00e9seau \u2014 \u795e\u7ecf\u7f51\u7edc \U0001f642",
    "tabs": "a\tb\t\tc ",
    "undecodable_file_name": "bad\udcffname",
    "very_long": "L" * 240,
}

#: PEP 263: a first or second line that matches this declares the file's encoding.
CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Each form's module from a plain name and description: the statements every
    hostile one must equal, and its gradients."""
    from derive.render import derive_spec, python_code
    from derive.spec import parse_spec

    made = {}
    for form, text in FORMS.items():
        spec = parse_spec(text.format(name=f"hostile_{form}", target="numpy"), "x.toml")
        source = python_code(derive_spec(spec), "plain.toml").source
        made[form] = (spec, ast.parse(source.encode()))
    return made


def recorded_path(first_line: str) -> str:
    match = re.fullmatch(
        rf"# Generated by derive {re.escape(derive.__version__)} from (.*)\.",
        first_line,
    )
    assert match, first_line
    return match[1]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE)
def test_hostile_path_and_description_stay_in_comment_and_docstring(
    plain, form, text, tmp_path
):
    from derive.render import derive_spec, python_code

    spec, expected = plain[form]
    # The description as the render sees it, not as the spec's parser tidies it.
    hostile = dataclasses.replace(spec, description=text)
    source = python_code(derive_spec(hostile), f"{text}.toml").source
    data = source.encode()  # as written: utf-8
    lines = data.split(b"\n")
    # The header: comment lines only, no coding declaration (it would make Python
    # read the file as latin-1 or utf-7, where "+AAo-" is a line break).
    assert lines[0].startswith(b"# Generated by derive") and lines[1].startswith(b"# ")
    assert not CODING.match(lines[0]) and not CODING.match(lines[1])
    first = lines[0].decode()
    assert first.isprintable()
    # The recorded path is the file's, in Python's string escapes; a printable one
    # (accents, CJK, quotes) as it is.
    path = recorded_path(first)
    assert ast.literal_eval('"' + path.replace('"', '\\"') + '"') == f"{text}.toml"
    if text.isprintable() and "\\" not in text and "coding" not in text:
        assert path == f"{text}.toml"
    # The module's statements are the plain module's, the docstring aside.
    tree = ast.parse(data)  # bytes: a coding declaration would be obeyed
    docstring, *body = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert [ast.dump(n) for n in body] == [ast.dump(n) for n in expected.body[1:]]
    # It imports, says the description in its docstring, and computes.
    module_path = tmp_path / f"hostile_{form}.py"
    module_path.write_bytes(data)
    module = import_path(module_path)
    assert not hasattr(module, "PWNED")
    assert one_line(text) in one_line(module.__doc__)
    params, x, y = problem(module)
    assert set(module.gradients(params, x, y)) == set(module.PARAMETER_SHAPES)


def test_a_hostile_file_name_through_the_command_line(tmp_path):
    """The whole way: a spec file whose name holds a line break, code and a coding
    declaration, with a description full of quotes and backslashes, written by
    ``derive`` (or refused, with nothing written)."""
    from derive.cli import main

    name = "net\nimport os; PWNED = 1\n# coding: utf-7 +AAo-PWNED = 2 "
    spec = tmp_path / f"{name}.toml"
    description = (
        "Quotes \"\"\" and ''' inside, \\N{BULLET}, C:\\xfiles and a trailing \\"
    )
    toml = '"' + description.replace("\\", "\\\\").replace('"', '\\"') + '"'
    spec.write_text(
        LAYERS.format(name="hostile_cli", target="numpy").replace(
            '"A two-layer classifier written as layers."', toml
        )
    )
    out = tmp_path / "out"
    status = main([str(spec), "--out", str(out)])
    if status == 2:  # a refusal of the spec is safe too, if it writes nothing
        assert not out.exists() or not any(out.iterdir())
        return
    assert status == 0  # 3 would be derive's own failure (ruff's, once)
    data = (out / "hostile_cli.py").read_bytes()
    first = data.split(b"\n")[0].decode()
    assert first.isprintable() and not CODING.match(data.split(b"\n")[0])
    path = ast.literal_eval('"' + recorded_path(first).replace('"', '\\"') + '"')
    assert path.endswith(f"{name}.toml")
    module = import_path(out / "hostile_cli.py")
    assert not hasattr(module, "PWNED") and not hasattr(module, "os")
    assert description in one_line(module.__doc__)
