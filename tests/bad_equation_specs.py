"""Malformed equation specs (issue 10), as TOML text, each with what its error must say.

Every case is valid TOML (TOML itself refuses a key given twice in one table, so a
redefinition is written across tables). ``where`` is the equation the error names, or
the field (``sizes.d_h``, ``parameters.W0``) when the problem is outside the
equations; ``phrase`` is text the one-line error must contain. Both are the contract
for ``derive``: once the equation engine lands, a test runs ``derive`` on each case and
checks exit status 2, one line naming the file, ``where`` and ``phrase``, and no file
written. Today ``tests/test_equation_reference.py`` checks that each is valid TOML and
that the torch reference refuses it in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BadSpec:
    label: str
    text: str
    where: str
    phrase: str


SIZES = "d_in = 4\nd_h = 8\nd_out = 2"
INPUTS = 'x = ["batch", "d_in"]\ny = ["batch", "d_out"]'
PARAMETERS = 'W0 = ["d_h", "d_in"]\nb0 = ["d_h"]\nW1 = ["d_out", "d_h"]\nb1 = ["d_out"]'
EQUATIONS = (
    'h0 = "relu(x @ W0.T + b0)"\n'
    'y_predicted = "h0 @ W1.T + b1"\n'
    'loss = "mean(sum((y_predicted - y)**2, axis=-1))"'
)


def spec(
    equations: str = EQUATIONS,
    sizes: str = SIZES,
    inputs: str = INPUTS,
    parameters: str = PARAMETERS,
) -> str:
    """A small regression MLP's spec with one section replaced."""
    return (
        'name = "bad"\n\n'
        f"[sizes]\n{sizes}\n\n"
        f"[inputs]\n{inputs}\n\n"
        f"[parameters]\n{parameters}\n\n"
        f"[equations]\n{equations}\n"
    )


def with_h0(formula: str) -> str:
    """The spec with ``h0``'s formula replaced."""
    return spec(EQUATIONS.replace('"relu(x @ W0.T + b0)"', f'"{formula}"'))


RNN = """name = "bad_rnn"
[sizes]
steps = 3
d_in = 5
d_h = 8
[inputs]
x = ["batch", "steps", "d_in"]
[parameters]
W = ["d_h", "d_in"]
[equations]
h = "tanh(x[:, {index}, :] @ W.T)"
loss = "sum(h**2)"
"""

BAD_SPECS: tuple[BadSpec, ...] = (
    # names
    BadSpec(
        "unknown name, with a suggestion",
        spec(EQUATIONS.replace("((y_predicted - y)", "((y_predictd - y)")),
        "loss",
        "did you mean 'y_predicted'",
    ),
    BadSpec(
        "unknown name",
        with_h0("relu(x @ W0.T + velocity)"),
        "h0",
        "unknown name 'velocity'",
    ),
    BadSpec(
        "name used before it is defined",
        with_h0("relu(x @ W0.T + b0) + mean(y_predicted)"),
        "h0",
        "y_predicted is used before it is defined",
    ),
    BadSpec(
        "an equation that uses itself",
        with_h0("relu(x @ W0.T + b0) + h0"),
        "h0",
        "h0 is used before it is defined",
    ),
    BadSpec(
        "an input redefined by an equation",
        spec('x = "x * 2"\n' + EQUATIONS),
        "x",
        "redefines the input 'x'",
    ),
    BadSpec(
        "a parameter redefined as an input",
        spec(inputs=INPUTS + '\nW0 = ["batch", "d_in"]'),
        "parameters.W0",
        "redefines the input 'W0'",
    ),
    BadSpec(
        "a size redefined as a parameter",
        spec(parameters=PARAMETERS + '\nd_h = ["d_h"]'),
        "parameters.d_h",
        "redefines the size 'd_h'",
    ),
    BadSpec(
        "a function's name taken by an equation",
        spec('exp = "x * 2"\n' + EQUATIONS),
        "exp",
        "is reserved",
    ),
    BadSpec(
        "no loss",
        spec(EQUATIONS.rsplit("\n", 1)[0]),
        "equations",
        "no equation named loss",
    ),
    # axes and sizes
    BadSpec(
        "matmul axes that do not match",
        with_h0("relu(x @ W0 + b0)"),
        "h0",
        "x @ W0: contracting d_in (4) with d_h (8)",
    ),
    BadSpec(
        "broadcasting that fails",
        with_h0("relu(x @ W0.T + b1)"),
        "h0",
        "cannot broadcast",
    ),
    BadSpec(
        "broadcasting two different axes of equal size (sizes are symbolic)",
        spec(
            EQUATIONS.replace("W0.T + b0", "W0.T + b1"),
            sizes="d_in = 4\nd_h = 8\nd_out = 8",
        ),
        "h0",
        "cannot broadcast [batch, d_h] with [d_out] (d_h (8) against d_out (8))",
    ),
    BadSpec(
        "axis out of range",
        spec(EQUATIONS.replace("axis=-1", "axis=2")),
        "loss",
        "axis 2 is out of range",
    ),
    BadSpec(
        "negative axis out of range",
        with_h0("softmax(x @ W0.T, axis=-3)"),
        "h0",
        "axis -3 is out of range",
    ),
    BadSpec(
        "index out of range",
        RNN.format(index=3),
        "h",
        "index 3 is out of range for steps (3)",
    ),
    BadSpec(
        "a slice with bounds",
        RNN.format(index="0:2"),
        "h",
        "only integers and full slices (:) may index",
    ),
    BadSpec(
        "an integer index on the batch axis",
        RNN.replace("x[:, {index}, :]", "x[0, 1]"),
        "h",
        "integer index on the batch axis",
    ),
    BadSpec(
        "loss not scalar",
        spec(
            EQUATIONS.replace(
                "mean(sum((y_predicted - y)**2, axis=-1))", "(y_predicted - y)**2"
            )
        ),
        "loss",
        "must be a scalar",
    ),
    BadSpec(
        "unknown axis name",
        spec(parameters=PARAMETERS.replace('W0 = ["d_h"', 'W0 = ["d_hidden"')),
        "parameters.W0",
        "unknown axis name 'd_hidden'",
    ),
    BadSpec(
        "batch axis on a parameter",
        spec(parameters=PARAMETERS.replace('b0 = ["d_h"]', 'b0 = ["batch", "d_h"]')),
        "parameters.b0",
        "a parameter has no batch axis",
    ),
    BadSpec(
        "batch axis not first",
        spec(inputs=INPUTS.replace('x = ["batch", "d_in"]', 'x = ["d_in", "batch"]')),
        "inputs.x",
        '"batch" must be the first axis',
    ),
    *(
        BadSpec(
            f"size {shown}",
            spec(sizes=SIZES.replace("d_h = 8", f"d_h = {shown}")),
            "sizes.d_h",
            "must be a positive integer",
        )
        for shown in ("0", "-1", "2.5", '"4"', "true")
    ),
    BadSpec(
        "einsum letters for two different axes",
        with_h0("relu(einsum('bi,ij->bj', x, W0))"),
        "h0",
        "einsum letter 'i' stands for d_in (4) and for d_h (8)",
    ),
    BadSpec(
        "einsum with too few operands",
        with_h0("relu(einsum('bi,ji->bj', x))"),
        "h0",
        "names 2 operands, given 1",
    ),
    BadSpec(
        "matmul with a scalar",
        with_h0("relu(2 @ x @ W0.T)"),
        "h0",
        "@ needs arrays with axes",
    ),
    # outside the allow-list
    BadSpec(
        "attribute access other than .T",
        with_h0("relu(x @ W0.T + b0.shape)"),
        "h0",
        "attribute .shape is not allowed (only .T)",
    ),
    BadSpec(
        "a method call",
        with_h0("relu(x @ W0.T + b0).sum()"),
        "h0",
        "calling relu(x @ W0.T + b0).sum is not allowed",
    ),
    BadSpec(
        "a module's function",
        with_h0("np.tanh(x @ W0.T + b0)"),
        "h0",
        "calling np.tanh is not allowed",
    ),
    BadSpec("a lambda", with_h0("lambda: x"), "h0", "a lambda is not allowed"),
    BadSpec(
        "a call to another name",
        with_h0("__import__('os')"),
        "h0",
        "unknown function '__import__'",
    ),
    BadSpec(
        "a call to a value",
        with_h0("relu(x @ W0.T + b0(x))"),
        "h0",
        "b0 is not a function",
    ),
    BadSpec(
        "a misspelt function",
        with_h0("rellu(x @ W0.T + b0)"),
        "h0",
        "did you mean 'relu'",
    ),
    BadSpec(
        "a keyword not allowed",
        with_h0("relu(x @ W0.T + b0) + sum(b0, dtype=1)"),
        "h0",
        "keyword dtype= is not allowed in sum()",
    ),
    BadSpec(
        "torch's keyword where NumPy's is meant",
        with_h0("softmax(x @ W0.T + b0, dim=-1)"),
        "h0",
        "keyword dim= is not allowed in softmax()",
    ),
    BadSpec(
        "a string where a number is expected",
        with_h0("relu(x @ W0.T + b0) * 'two'"),
        "h0",
        "a string where a number is expected",
    ),
    BadSpec(
        "an operator not allowed",
        with_h0("relu(x @ W0.T + b0) // 2"),
        "h0",
        "operator // is not allowed",
    ),
    BadSpec(
        "a comparison",
        with_h0("x @ W0.T + b0 > 0"),
        "h0",
        "a comparison is not allowed",
    ),
    BadSpec(
        "a leaky_relu slope that is not a number",
        with_h0("leaky_relu(x @ W0.T, b0)"),
        "h0",
        "slope must be a number",
    ),
    BadSpec(
        "keepdims that is not True or False",
        spec(EQUATIONS.replace("axis=-1", "axis=-1, keepdims=1")),
        "loss",
        "keepdims must be True or False",
    ),
    BadSpec(
        "not a formula",
        with_h0("relu(x @ W0.T + b0"),
        "h0",
        "not a formula",
    ),
    BadSpec(
        "an equation that is not a string",
        spec("h = 3\n" + EQUATIONS),
        "h",
        "must be a formula, as a string",
    ),
)
