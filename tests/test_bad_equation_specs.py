"""Malformed equation specs: one line naming the file, the equation (or field) and the
problem; exit status 2; nothing written."""

from __future__ import annotations

import pytest

from derive.cli import main
from tests.bad_equation_specs import BAD_SPECS

GOOD = """
name = "residual"
[sizes]
d_in = 4
d_h = 8
d_out = 2
[inputs]
x = ["batch", "d_in"]
y = ["batch", "d_out"]
[parameters]
W0 = ["d_h", "d_in"]
b0 = ["d_h"]
W1 = ["d_h", "d_h"]
W2 = ["d_out", "d_h"]
[equations]
h0 = "relu(x @ W0.T + b0)"
h1 = "h0 + tanh(h0 @ W1.T)"
y_predicted = "h1 @ W2.T"
loss = "mean(sum((y_predicted - y)**2, axis=-1)) + 0.001 * sum(W1**2)"
"""
H0 = 'h0 = "relu(x @ W0.T + b0)"'


def h0(formula: str) -> str:
    """GOOD with ``h0`` defined by ``formula`` (a TOML literal string)."""
    return GOOD.replace(H0, "h0 = '" + formula + "'")


#: Cases beyond the agreed list in tests/bad_equation_specs.py: (spec, where, phrase).
EXTRA = {
    "loss not last": (
        GOOD + 'extra = "h0 * 2"\n',
        "equations.extra",
        "comes after loss",
    ),
    "redefined parameter": (
        GOOD.replace(H0, H0 + '\nW1 = "W0 @ W0.T"'),
        "equations.W1",
        "redefines the parameter 'W1'",
    ),
    "unused parameter": (
        GOOD.replace('W2 = ["d_out", "d_h"]', 'W2 = ["d_out", "d_h"]\nW3 = ["d_h"]'),
        "parameters.W3",
        "W3 is not used by any equation",
    ),
    # A spec of scalars needs no [sizes]; one whose arrays name axes does.
    "missing sizes": (
        GOOD.replace("[sizes]\nd_in = 4\nd_h = 8\nd_out = 2\n", ""),
        "inputs.x",
        "unknown axis name 'd_in'; known: batch",
    ),
    "a name the module uses": (
        GOOD.replace(H0, H0 + '\ngradients = "h0 * 2"'),
        "equations.gradients",
        "is reserved",
    ),
    "wrong argument count": (
        h0("tanh(x, x)"),
        "equations.h0",
        "tanh takes 1 positional",
    ),
    "an index that is a name": (
        h0("x[:, d_in]"),
        "equations.h0",
        "only integers and full",
    ),
    "a partial slice": (h0("x[:, 1:3]"), "equations.h0", "only integers and full"),
    "einsum with ...": (
        GOOD.replace(H0, "h0 = \"einsum('...i,ji->...j', x, W0)\""),
        "equations.h0",
        "einsum subscripts with ... are not supported",
    ),
}
CASES = [
    *((c.label, c.text, c.where, c.phrase) for c in BAD_SPECS),
    *((label, *case) for label, case in EXTRA.items()),
]


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({label for label, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("label", "text", "where", "phrase"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_equation_spec_gives_one_clean_line(
    tmp_path, capsys, label, text, where, phrase
):
    """Exit status 2, one line naming the file, the equation or field, and the
    problem; nothing written."""
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert main([str(spec), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert error.startswith(f"derive: error: {spec}: "), error
    assert f": {where}" in error or f"equations.{where}:" in error, error
    assert phrase in error, error
    assert not out.exists()


def test_the_good_spec_is_good(tmp_path):
    spec = tmp_path / "good.toml"
    spec.write_text(GOOD)
    assert main([str(spec), "--out", str(tmp_path / "out")]) == 0
