"""``target = "array_api"``: one generated module on NumPy, array-api-strict, torch, JAX
and Dask arrays, with the gradients of the NumPy target and of each library's autodiff.

Every example spec is generated again with ``target = "array_api"`` (the unrolled one
excepted: that style is plain Python floats, and the target refuses it), equation
specs included.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from derive.equations import EquationSpec
from derive.spec import NetworkSpec, load_spec, parse_spec
from tests.conftest import GENERATED, SPECS, generate_module, import_path
from tests.equation_reference import evaluate, parse_equation_spec, random_point
from tests.test_networks_against_torch import random_problem
from tests.torch_reference import network_gradients, seed_gradients

array_api_strict = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

#: Every [[layers]] example spec in the vectorized style, by name.
EXAMPLES = sorted(
    path.stem
    for path in SPECS.glob("*.toml")
    if isinstance(spec := load_spec(path), NetworkSpec)
    and spec.style == "vectorized"
    and spec.target == "numpy"
)


def as_array_api(text: str) -> str:
    """The spec ``text`` with ``target = "array_api"`` and the name ``NAME_xp``."""
    text, count = re.subn(
        r'^name = "(\w+)"$', r'name = "\1_xp"\ntarget = "array_api"', text, flags=re.M
    )
    assert count == 1
    return text


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> dict[str, tuple[Any, ModuleType, ModuleType]]:
    """Per example: its spec, the committed NumPy module, and the array_api module."""
    folder = tmp_path_factory.mktemp("array_api")
    found = {}
    for name in EXAMPLES:
        spec_path = SPECS / f"{name}.toml"
        spec, module = generate_module(
            folder, as_array_api(spec_path.read_text()), f"{name}.toml"
        )
        numpy_module = import_path(GENERATED / f"{spec.name.removesuffix('_xp')}.py")
        found[name] = (spec, numpy_module, module)
    return found


@pytest.fixture(autouse=True, scope="module")
def strict_2023_12():
    """array-api-strict as the 2023.12 standard: no Python scalars in functions, ..."""
    flags = array_api_strict.get_array_api_strict_flags()
    array_api_strict.set_array_api_strict_flags(api_version="2023.12")
    yield
    array_api_strict.set_array_api_strict_flags(**flags)


def problem(module: ModuleType, rng: np.random.Generator, batch: int = 5) -> tuple:
    """Parameters, x and y (one-hot or regression targets) as NumPy float64 arrays."""
    params = {n: rng.standard_normal(s) for n, s in module.PARAMETER_SHAPES.items()}
    if module.INPUT_SHAPE == ():  # the problem set's shapes: one sample, scalars
        return params, rng.standard_normal(), rng.standard_normal()
    loss = "softmax_cross_entropy" if hasattr(module, "logsumexp") else "mse"
    params, x, y = random_problem(rng, module, batch, loss)
    return params, x, y


def convert(value: Any, to: Any) -> Any:
    """A NumPy array, a float, or a dict or tuple of them, as ``to``'s arrays."""
    if isinstance(value, dict):
        return {k: convert(v, to) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(convert(v, to) for v in value)
    return to(np.asarray(value))


def assert_close(got: dict, expected: dict, rtol: float, atol: float = 0.0) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(
            np.asarray(got[name]), value, rtol=rtol, atol=atol, err_msg=name
        )


def test_the_unrolled_style_is_refused(tmp_path):
    text = (SPECS / "seed_unrolled.toml").read_text()
    path = tmp_path / "seed_unrolled.toml"
    path.write_text(as_array_api(text))
    result = run_derive(path, tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "target" in result.stderr and "unrolled" in result.stderr
    assert not (tmp_path / "out").exists()


def run_derive(*arguments: Path) -> subprocess.CompletedProcess:
    path, out = arguments
    return subprocess.run(
        [sys.executable, "-m", "derive", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ('activation = "gelu"', "layers[0].activation"),
        ('activation = "custom"\nexpression = "x * erf(x)"', "layers[0].expression"),
    ],
)
def test_erf_is_refused_naming_the_activation_and_target(tmp_path, layer, field):
    path = tmp_path / "gelu.toml"
    path.write_text(
        'name = "g"\ninput = 2\ntarget = "array_api"\n'
        f"[[layers]]\nwidth = 3\n{layer}\n[[layers]]\nwidth = 1\n"
        'activation = "identity"\n[loss]\nkind = "mse"\n'
    )
    result = run_derive(path, tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{path}: {field}:" in result.stderr
    assert "erf" in result.stderr and '"array_api"' in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_target_is_refused():
    with pytest.raises(
        Exception, match=r"target: got 'cupy'; allowed: numpy, array_api"
    ):
        parse_spec(
            'name = "n"\ninput = 1\ntarget = "cupy"\n[[layers]]\nwidth = 1\n'
            'activation = "relu"\n[loss]\nkind = "mse"\n',
            "n.toml",
        )


def test_the_numpy_target_is_the_default_and_the_documents_do_not_change(tmp_path):
    """The derivation's mathematics is the target's own only in its code lines."""
    from derive.render import render

    text = (SPECS / "mnist_classifier.toml").read_text()
    numpy_outputs = render(parse_spec(text, "m.toml"), "m.toml")
    explicit = text.replace("input = 784", 'input = 784\ntarget = "numpy"')
    assert render(parse_spec(explicit, "m.toml"), "m.toml") == numpy_outputs
    xp_text = text.replace("input = 784", 'input = 784\ntarget = "array_api"')
    xp_outputs = render(parse_spec(xp_text, "m.toml"), "m.toml")
    assert xp_outputs[1] == numpy_outputs[1]  # the LaTeX shows no code
    numpy_md, xp_md = numpy_outputs[2].text, xp_outputs[2].text
    assert isinstance(numpy_md, str) and isinstance(xp_md, str)
    differing = [
        (a, b)
        for a, b in zip(numpy_md.splitlines(), xp_md.splitlines(), strict=True)
        if a != b
    ]
    assert differing, "the Markdown's code lines should be the target's"
    for numpy_line, xp_line in differing:
        assert "numpy" in numpy_line or "xp" in xp_line, (numpy_line, xp_line)
        assert "$" not in numpy_line + xp_line  # no equation differs


@pytest.mark.parametrize("name", EXAMPLES)
def test_array_api_strict_matches_the_numpy_target(modules, name):
    """Every function of the module on array-api-strict arrays (which refuse anything
    outside the 2023.12 standard), against the committed NumPy module, float64."""
    spec, numpy_module, module = modules[name]
    rng = np.random.default_rng(14)
    params, x, y = problem(numpy_module, rng)
    strict = lambda a: array_api_strict.asarray(a, dtype=array_api_strict.float64)  # noqa: E731
    got = module.gradients(convert(params, strict), strict(x), strict(y))
    assert all(type(g) is type(strict(x)) for g in got.values())
    assert_close(got, numpy_module.gradients(params, x, y), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        float(module.loss(convert(params, strict), strict(x), strict(y))),
        float(numpy_module.loss(params, x, y)),
        rtol=1e-12,
    )
    # The problem set's functions: mlp's values, then each partial derivative.
    names = [p for p in numpy_module.PARAMETER_SHAPES]
    values = module.mlp(strict(x), *(strict(params[p]) for p in names))
    expected_values = numpy_module.mlp(x, *(params[p] for p in names))
    assert_close(
        values, {k: np.asarray(v) for k, v in expected_values.items()}, 1e-12, 1e-15
    )
    for function in (f for f in dir(numpy_module) if f.startswith("d_loss_d_")):
        arguments = _partial_arguments(numpy_module, function, params, y)
        expected = getattr(numpy_module, function)(expected_values, *arguments)
        strict_arguments = [strict(a) for a in arguments]
        got_partial = getattr(module, function)(values, *strict_arguments)
        np.testing.assert_allclose(
            np.asarray(got_partial), expected, rtol=1e-12, atol=1e-15, err_msg=function
        )


def _partial_arguments(module: ModuleType, function: str, params: dict, y: Any) -> list:
    """The arguments after ``variable_dict`` that ``module.function`` takes."""
    import inspect

    names = list(inspect.signature(getattr(module, function)).parameters)[1:]
    return [y if n == "y_observed" else params[n] for n in names]


@pytest.mark.parametrize("name", EXAMPLES)
def test_integer_class_labels(modules, name):
    spec, numpy_module, module = modules[name]
    if not hasattr(module, "logsumexp"):
        pytest.skip("not a classifier")
    rng = np.random.default_rng(1)
    params, x, y = random_problem(rng, numpy_module, 6, "softmax_cross_entropy", True)
    strict = array_api_strict.asarray
    got = module.gradients(convert(params, strict), strict(x), strict(y))
    assert_close(got, numpy_module.gradients(params, x, y), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="class labels must be from 0 to 9"):
        module.gradients(convert(params, strict), strict(x), strict(y + 10))


# torch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_tensors_in_torch_tensors_out_equal_to_autograd(modules, name, dtype):
    torch = pytest.importorskip("torch")
    spec, numpy_module, module = modules[name]
    rng = np.random.default_rng(3)
    params, x, y = problem(numpy_module, rng)
    if spec.shapes == "problem_set":
        names = list(params)
        reference = seed_gradients(x, *(params[n] for n in names), y)
        expected = {n: reference[f"d_loss_d_{n}"] for n in names}
    else:
        expected = network_gradients(spec, params, x, y)[1]
    tensor = lambda a: torch.tensor(np.asarray(a), dtype=getattr(torch, dtype))  # noqa: E731
    got = module.gradients(convert(params, tensor), tensor(x), tensor(y))
    for value in got.values():
        assert isinstance(value, torch.Tensor)
        assert value.dtype == getattr(torch, dtype) and value.device.type == "cpu"
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (2e-4, 2e-5)
    assert_close({k: v.numpy() for k, v in got.items()}, expected, rtol, atol)


# JAX -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


@pytest.mark.parametrize(
    "name",
    # One spec in the quick run (jit compiles each: 2-4 s a spec), all in the deep one.
    [
        n if n == EXAMPLES[0] else pytest.param(n, marks=pytest.mark.slow)
        for n in EXAMPLES
    ],
)
def test_jax_arrays_also_under_jit_equal_to_jax_grad(modules, name, jax):
    """The module's own loss, differentiated by jax.grad, against its gradients()."""
    import jax.numpy as jnp

    spec, numpy_module, module = modules[name]
    numpy_problem = problem(numpy_module, np.random.default_rng(5))
    params, x, y = convert(numpy_problem, jnp.asarray)
    expected = jax.grad(lambda p: module.loss(p, x, y))(params)
    got = module.gradients(params, x, y)
    jitted = jax.jit(module.gradients)(params, x, y)
    for value in (*got.values(), *jitted.values()):
        assert isinstance(value, jax.Array) and value.dtype == jnp.float64
    expected_numpy = {k: np.asarray(v) for k, v in expected.items()}
    assert_close(got, expected_numpy, rtol=1e-10, atol=1e-12)
    assert_close(jitted, expected_numpy, rtol=1e-10, atol=1e-12)
    assert_close(got, numpy_module.gradients(*numpy_problem), rtol=1e-12, atol=1e-15)


# Dask ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    """Two workers, started by the test; threads in this process, which is enough to
    check the task graph (the benchmark runs process workers with memory limits)."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def full_batch_outputs(results: dict, batch: int) -> list[tuple]:
    """Run the graph of ``results`` task by task and return every task whose output
    has an axis as long as the whole batch: a chunk collected whole into one task."""
    import dask
    from dask.callbacks import Callback

    found = []

    def posttask(key, result, dsk, state, worker_id):
        if batch in getattr(result, "shape", ()):
            found.append((key, result.shape))

    with Callback(posttask=posttask):
        dask.compute(results, scheduler="synchronous")
    return found


@pytest.mark.parametrize("name", EXAMPLES)
def test_dask_chunked_along_the_batch(modules, name, dask_client):
    da = pytest.importorskip("dask.array")
    spec, numpy_module, module = modules[name]
    if spec.shapes == "problem_set":
        pytest.skip("one sample: no batch to chunk")
    rng = np.random.default_rng(7)
    batch, chunk = 97, 20  # 5 chunks; 97 is no width of any example
    params, x, y = problem(numpy_module, rng, batch)
    labels = hasattr(module, "logsumexp")
    if labels:
        y = rng.integers(0, numpy_module.OUTPUT_SHAPE[1], size=batch)
    lazy = module.gradients(
        convert(params, da.from_array),
        da.from_array(x, chunks=(chunk, -1)),
        da.from_array(y, chunks=(chunk,) + (-1,) * (y.ndim - 1)),
    )
    assert all(isinstance(g, da.Array) for g in lazy.values())
    (computed,) = dask_client.compute([lazy], sync=True)
    assert_close(computed, numpy_module.gradients(params, x, y), rtol=1e-9, atol=1e-12)
    # Batch sums are reduced chunk by chunk: no task ever holds a whole-batch array.
    assert full_batch_outputs(lazy, batch) == []


# Argument checks, in the standard -------------------------------------------------------


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> dict[str, tuple[Any, ModuleType, ModuleType]]:
    """test_arguments.py's classifier and regression: spec, NumPy and array_api module."""
    from tests.test_arguments import CLASSIFIER, REGRESSION

    folder = tmp_path_factory.mktemp("array_api_checks")
    made = {}
    for name, text in {"classifier": CLASSIFIER, "regression": REGRESSION}.items():
        spec, numpy_module = generate_module(folder, text, f"{name}.toml")
        _, module = generate_module(folder, as_array_api(text), f"{name}_xp.toml")
        made[name] = (spec, numpy_module, module)
    return made


def strict_problem(module: ModuleType, loss: str, labels: bool = False) -> tuple:
    """Parameters, x and y as NumPy arrays and as array-api-strict arrays."""
    rng = np.random.default_rng(11)
    params, x, y = random_problem(rng, module, 4, loss, labels)
    return (params, x, y), convert((params, x, y), array_api_strict.asarray)


@pytest.mark.parametrize("name", ["classifier", "regression"])
def test_checks_a_target_for_fewer_samples_than_x(checked, name):
    spec, numpy_module, module = checked[name]
    _, (params, x, y) = strict_problem(numpy_module, spec.loss.kind)
    with pytest.raises(ValueError, match=r"^y has 1 samples but x has 4; expected"):
        module.gradients(params, x, y[:1, ...])
    with pytest.raises(ValueError, match=r"^y has 1 samples but x has 4"):
        module.loss(params, x, y[:1, ...])
    y_predicted = module.forward(params, x)["y_predicted"]
    with pytest.raises(ValueError, match=r"^y_observed has 1 samples but y_predicted"):
        module.loss(y_predicted, y[:1, ...])
    values = module.mlp(x, *params.values())
    with pytest.raises(ValueError, match=r"^y has 1 samples but y_predicted has 4"):
        module.d_loss_d_W0(
            values, *_partial_arguments(module, "d_loss_d_W0", params, y[:1, ...])
        )


def test_checks_labels_at_every_entry_point(checked):
    spec, numpy_module, module = checked["classifier"]
    (np_params, np_x, np_y), (params, x, y) = strict_problem(
        numpy_module, "softmax_cross_entropy", labels=True
    )
    assert_close(
        module.gradients(params, x, y),
        numpy_module.gradients(np_params, np_x, np_y),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        float(module.loss(params, x, y)), numpy_module.loss(np_params, np_x, np_y)
    )
    values = module.mlp(x, *params.values())
    np_values = numpy_module.mlp(np_x, *np_params.values())
    for function in (f for f in dir(module) if f.startswith("d_loss_d_")):
        got = getattr(module, function)(
            values, *_partial_arguments(module, function, params, y)
        )
        expected = getattr(numpy_module, function)(
            np_values, *_partial_arguments(numpy_module, function, np_params, np_y)
        )
        np.testing.assert_allclose(
            np.asarray(got), expected, rtol=1e-12, err_msg=function
        )
    with pytest.raises(
        ValueError, match=r"class labels must be from 0 to 2, got 0 to 5"
    ):
        module.gradients(params, x, array_api_strict.asarray([0, 1, 5, 2]))
    with pytest.raises(ValueError, match=r"class labels must be integers from 0 to 2"):
        module.gradients(params, x, array_api_strict.asarray([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"^y has 2 samples but x has 4"):
        module.gradients(params, x, array_api_strict.asarray([0, 1]))


@pytest.mark.parametrize("name", ["classifier", "regression"])
def test_checks_an_empty_batch(checked, name):
    spec, numpy_module, module = checked[name]
    _, (params, x, y) = strict_problem(numpy_module, spec.loss.kind)
    for call in (
        lambda: module.gradients(params, x[:0, ...], y[:0, ...]),
        lambda: module.loss(params, x[:0, ...], y[:0, ...]),
        lambda: module.forward(params, x[:0, ...]),
    ):
        with pytest.raises(ValueError, match=r"^x has an empty batch"):
            call()


def test_checks_dtypes_and_what_is_not_an_array(checked):
    spec, numpy_module, module = checked["regression"]
    (np_params, np_x, np_y), (params, x, y) = strict_problem(numpy_module, "mse")
    xp = array_api_strict
    for argument in ("x", "y", "W0"):
        arguments = {"x": x, "y": y, **params}
        arguments[argument] = xp.astype(arguments[argument], xp.complex128)
        name = "parameter 'W0'" if argument == "W0" else argument
        with pytest.raises(
            TypeError, match=rf"^{name} has dtype .*complex128.*; expected real"
        ):
            module.gradients(
                {k: arguments[k] for k in params}, arguments["x"], arguments["y"]
            )
    with pytest.raises(TypeError, match=r"^x has dtype .*; expected real numbers"):
        module.gradients(np_params, np_x.astype(np.str_), np_y)
    with pytest.raises(
        TypeError, match=r"^x is a list, not an array; expected an array"
    ):
        module.gradients(params, np_x.tolist(), y)
    with pytest.raises(TypeError, match=r"^parameter 'b0' is a float, not an array"):
        module.forward({**params, "b0": 1.0}, x)
    with pytest.raises(TypeError, match=r"^params must be a dict .* got NoneType"):
        module.gradients(None, x, y)
    with pytest.raises(
        ValueError, match=r"^parameter 'W0' has shape \(4, 5\), expected \(5, 4\)"
    ):
        module.gradients({**params, "W0": xp.permute_dims(params["W0"], (1, 0))}, x, y)
    with pytest.raises(ValueError, match=r"^unknown parameter 'W9'"):
        module.gradients({**params, "W9": params["W0"]}, x, y)
    # Integer arrays become float64, as in the NumPy target.
    rounded = {k: xp.astype(xp.round(v), xp.int64) for k, v in params.items()}
    got = module.gradients(rounded, x, y)
    assert all(g.dtype == xp.float64 for g in got.values())
    expected = numpy_module.gradients(
        {k: np.round(v).astype(int) for k, v in np_params.items()}, np_x, np_y
    )
    assert_close(got, expected, rtol=1e-12)


def test_checks_on_torch_tensors(checked):
    """The same checks on torch tensors (where ``len``, ``.min()`` and NumPy's dtype
    kinds are not the standard's)."""
    torch = pytest.importorskip("torch")
    spec, numpy_module, module = checked["classifier"]
    rng = np.random.default_rng(12)
    params, x, y = convert(
        random_problem(rng, numpy_module, 4, "softmax_cross_entropy", True),
        torch.from_numpy,
    )
    got = module.gradients(params, x, y)
    assert all(isinstance(g, torch.Tensor) for g in got.values())
    with pytest.raises(ValueError, match=r"^y has 2 samples but x has 4"):
        module.gradients(params, x, y[:2])
    with pytest.raises(
        ValueError, match=r"class labels must be from 0 to 2, got 0 to 7"
    ):
        module.gradients(params, x, torch.tensor([0, 7, 1, 2]))
    with pytest.raises(ValueError, match=r"^x has an empty batch"):
        module.gradients(params, x[:0], y[:0])
    with pytest.raises(
        TypeError, match=r"^x has dtype torch.complex128; expected real"
    ):
        module.gradients(params, x.to(torch.complex128), y)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_integer_labels_on_torch_half_precision(checked, dtype):
    """One-hot rows take the logits' dtype: torch's matmul refuses float32 rows next
    to float16 or bfloat16 logits. The gradients keep the parameters' dtype and are
    the float64 gradients, rounded."""
    torch = pytest.importorskip("torch")
    spec, numpy_module, module = checked["classifier"]
    rng = np.random.default_rng(13)
    params, x, y = random_problem(rng, numpy_module, 8, "softmax_cross_entropy", True)
    expected = numpy_module.gradients(params, x, y)
    half = getattr(torch, dtype)
    tensors = {k: torch.from_numpy(v).to(half) for k, v in params.items()}
    labels = torch.from_numpy(y)
    got = module.gradients(tensors, torch.from_numpy(x).to(half), labels)
    assert {g.dtype for g in got.values()} == {half}
    tolerance = {"float16": 2e-2, "bfloat16": 1e-1, "float32": 1e-5}[dtype]
    assert_close(
        {k: g.float().numpy() for k, g in got.items()},
        expected,
        rtol=tolerance,
        atol=tolerance * max(float(np.abs(g).max()) for g in expected.values()),
    )
    loss = module.loss(tensors, torch.from_numpy(x).to(half), labels)
    assert loss.dtype == half


def test_mixing_libraries_or_dtypes_is_one_type_error_naming_the_arrays(checked):
    """NumPy arrays next to torch tensors, or two float dtypes: one ``TypeError``
    that names which arrays are which, before any arithmetic (where NumPy meeting a
    tensor raised an ``AttributeError`` naming neither)."""
    torch = pytest.importorskip("torch")
    spec, numpy_module, module = checked["classifier"]
    rng = np.random.default_rng(14)
    params, x, y = random_problem(rng, numpy_module, 4, "softmax_cross_entropy", True)
    tensors, tx, ty = convert((params, x, y), torch.from_numpy)
    names = ", ".join(f"parameter {k!r}" for k in params)
    with pytest.raises(TypeError) as raised:
        module.gradients(tensors, x, y)
    assert str(raised.value) == (
        f"the arrays are of different libraries ({names}: torch; "
        "x, y: numpy); pass arrays of one library and one floating dtype "
        "(integers become float64)"
    )
    with pytest.raises(TypeError, match=r"libraries \(x: torch; y: numpy\)"):
        module.loss(tensors, tx, y)
    with pytest.raises(
        TypeError,
        match=rf"^the arrays are of different libraries \({names}: numpy; x: torch\)",
    ):
        module.forward(params, tx)
    mixed = {**tensors, "W0": tensors["W0"].float()}
    with pytest.raises(TypeError) as raised:
        module.gradients(mixed, tx, ty)
    assert str(raised.value).startswith(
        "the arrays are of different dtypes (parameter 'W0': torch.float32; "
        "parameter 'b0', "
    )
    with pytest.raises(
        TypeError, match=r"dtypes \(.*: torch.float64; x: torch.float32\)"
    ):
        module.forward(tensors, tx.float())
    # One library and dtype passes, labels included; integer parameters become
    # float64 like the rest.
    module.gradients({**tensors, "b0": tensors["b0"].round().long()}, tx, ty)


# Equation specs ------------------------------------------------------------------------

#: Every example equation spec (issue 10), by name.
EQUATION_EXAMPLES = sorted(
    path.stem
    for path in SPECS.glob("*.toml")
    if isinstance(spec := load_spec(path), EquationSpec) and spec.target == "numpy"
)

#: What the examples do not reach: an element of a value and of a parameter picked by
#: integer indices (a unit vector in the gradient), ``swapaxes`` of a 3-axis value, a
#: parameter whose gradient is a constant (``full``), and contractions that only an
#: einsum computes (a broadcast product and a sum in the standard).
COVERAGE = """
name = "coverage"
[sizes]
d = 3
k = 4
f = 2
j = 2
[inputs]
x = ["batch", "d", "k", "j"]
y = ["batch"]
[parameters]
A = ["d", "k", "j", "f"]
B = ["f", "d"]
P = ["j", "d"]
c = ["f"]
[equations]
h = "tanh(einsum('bdkj,dkjf->bdf', x, A))"
g = "einsum('bdf,fd->b', h, B) + h[:, 0, 1] * P[1, 2]"
loss = "mean((g - y)**2) + 0.5 * sum(P) + sum(swapaxes(h, 0, 2)[1, 2]) + sum(c)"
"""


@pytest.fixture(scope="module")
def equation_modules(tmp_path_factory) -> dict[str, tuple[Any, ModuleType, ModuleType]]:
    """Per equation spec: the reference's reading of it, its NumPy module (the
    committed one for an example) and its array_api module."""
    folder = tmp_path_factory.mktemp("array_api_equations")
    texts = {name: (SPECS / f"{name}.toml").read_text() for name in EQUATION_EXAMPLES}
    found = {}
    for name, text in {**texts, "coverage": COVERAGE}.items():
        if name in texts:
            numpy_module = import_path(GENERATED / f"{name}.py")
        else:
            numpy_module = generate_module(folder, text, f"{name}.toml")[1]
        _, module = generate_module(folder, as_array_api(text), f"{name}_xp.toml")
        found[name] = (parse_equation_spec(text), numpy_module, module)
    return found


def test_equation_examples_are_found():
    assert EQUATION_EXAMPLES == [
        "attention_regressor",
        "digits_residual",
        "layernorm_mlp",
        "residual_mlp",
        "rnn_classifier",
        "seed_equations",
    ]


@pytest.mark.parametrize("name", [*EQUATION_EXAMPLES, "coverage"])
def test_equation_spec_on_array_api_strict_matches_the_numpy_target(
    equation_modules, name
):
    """forward, loss, gradients and every d_loss_d_* function on array-api-strict
    arrays (2023.12), against the NumPy target, float64."""
    spec, numpy_module, module = equation_modules[name]
    params, inputs = random_point(spec, batch=5, seed=14)
    strict = lambda a: array_api_strict.asarray(a, dtype=array_api_strict.float64)  # noqa: E731
    strict_params, strict_inputs = convert(params, strict), convert(inputs, strict)
    got = module.gradients(strict_params, **strict_inputs)
    assert all(type(g) is type(strict(0.0)) for g in got.values())
    expected = numpy_module.gradients(params, **inputs)
    assert_close(got, expected, rtol=1e-12, atol=1e-15)
    values = module.forward(strict_params, *strict_inputs.values())
    expected_values = numpy_module.forward(params, *inputs.values())
    assert_close(values, expected_values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        float(module.loss(strict_params, **strict_inputs)),
        float(numpy_module.loss(params, **inputs)),
        rtol=1e-12,
    )
    given = {**params, **inputs}
    for function in (f for f in dir(numpy_module) if f.startswith("d_loss_d_")):
        expected_partial = getattr(numpy_module, function)(
            expected_values, *_given_arguments(numpy_module, function, given)
        )
        got_partial = getattr(module, function)(
            values, *(strict(a) for a in _given_arguments(module, function, given))
        )
        assert type(got_partial) is type(strict(0.0)), function
        np.testing.assert_allclose(
            np.asarray(got_partial),
            expected_partial,
            rtol=1e-12,
            atol=1e-15,
            err_msg=function,
        )


def _given_arguments(module: ModuleType, function: str, given: dict) -> list:
    """The arrays after ``values`` that ``module.function`` takes, by name."""
    import inspect

    names = list(inspect.signature(getattr(module, function)).parameters)[1:]
    return [given[n] for n in names]


@pytest.mark.parametrize("name", [*EQUATION_EXAMPLES, "coverage"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_equation_spec_on_torch_tensors_equals_autograd(equation_modules, name, dtype):
    """torch tensors in, torch tensors of the same dtype out, equal to torch
    autograd on the reference's evaluation of the same equations and to the NumPy
    target on arrays of that dtype."""
    torch = pytest.importorskip("torch")
    spec, numpy_module, module = equation_modules[name]
    params, inputs = random_point(spec, batch=4, seed=3)
    expected = evaluate(spec, params, inputs)
    tensor = lambda a: torch.tensor(np.asarray(a), dtype=getattr(torch, dtype))  # noqa: E731
    got = module.gradients(convert(params, tensor), **convert(inputs, tensor))
    for value in got.values():
        assert isinstance(value, torch.Tensor)
        assert value.dtype == getattr(torch, dtype) and value.device.type == "cpu"
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (2e-4, 2e-5)
    assert_close({k: v.numpy() for k, v in got.items()}, expected.gradients, rtol, atol)
    numpy_params, numpy_inputs = (
        convert(a, lambda v: v.astype(dtype)) for a in (params, inputs)
    )
    expected_numpy = numpy_module.gradients(numpy_params, **numpy_inputs)
    assert_close({k: v.numpy() for k, v in got.items()}, expected_numpy, rtol, atol)


@pytest.mark.parametrize("name", ["residual_mlp", "seed_equations"])
def test_equation_spec_mixing_libraries_or_dtypes_is_one_type_error_naming_the_arrays(
    equation_modules, name
):
    """The [[layers]] modules' check and message (templates/one_library.py.j2), the
    arrays named as the equation modules' other errors name them: torch parameters
    with NumPy inputs, or float32 parameters with float64 inputs, raise one
    ``TypeError`` at every entry point, before any arithmetic (where NumPy meeting a
    tensor raised a ``TypeError`` or ``AttributeError`` naming neither, and torch a
    ``RuntimeError`` for the matmul of two dtypes)."""
    torch = pytest.importorskip("torch")
    spec, _, module = equation_modules[name]
    params, inputs = random_point(spec, batch=4, seed=5)
    inputs = convert(inputs, np.asarray)  # NumPy arrays, 0-d ones too
    tensors, tensor_inputs = (convert(a, torch.from_numpy) for a in (params, inputs))
    parameters = ", ".join(f"parameter {k!r}" for k in params)
    given = ", ".join(f"input {k!r}" for k in inputs)
    advice = (
        "pass arrays of one library and one floating dtype (integers become float64)"
    )
    for function in (module.gradients, module.forward, module.loss):
        with pytest.raises(TypeError) as raised:
            function(tensors, **inputs)
        assert str(raised.value) == (
            f"the arrays are of different libraries ({parameters}: torch; "
            f"{given}: numpy); {advice}"
        )
    with pytest.raises(TypeError) as raised:
        module.gradients(params, **tensor_inputs)
    assert str(raised.value) == (
        f"the arrays are of different libraries ({parameters}: numpy; "
        f"{given}: torch); {advice}"
    )
    single = {k: v.float() for k, v in tensors.items()}
    for function in (module.gradients, module.forward, module.loss):
        with pytest.raises(TypeError) as raised:
            function(single, **tensor_inputs)
        assert str(raised.value) == (
            f"the arrays are of different dtypes ({parameters}: torch.float32; "
            f"{given}: torch.float64); {advice}"
        )
    first, *_ = inputs
    with pytest.raises(TypeError) as raised:
        module.gradients(
            tensors, **{**tensor_inputs, first: tensor_inputs[first].float()}
        )
    assert str(raised.value).endswith(f"input {first!r}: torch.float32); {advice}")
    # One library and dtype passes; integer parameters become float64 like the rest.
    rounded = {k: v.round().long() for k, v in tensors.items()}
    got = module.gradients(rounded, **tensor_inputs)
    assert {v.dtype for v in got.values()} == {torch.float64}


@pytest.mark.parametrize(
    "name",
    # The coverage spec (every operation) in the quick run, the examples in the deep one.
    [*(pytest.param(n, marks=pytest.mark.slow) for n in EQUATION_EXAMPLES), "coverage"],
)
def test_equation_spec_on_jax_also_under_jit_equals_jax_grad(
    equation_modules, name, jax
):
    """The module's own loss, differentiated by jax.grad, against its gradients(),
    eager and under jax.jit; and against the NumPy target."""
    import jax.numpy as jnp

    spec, numpy_module, module = equation_modules[name]
    params, inputs = random_point(spec, batch=4, seed=9)
    jax_params, jax_inputs = convert(params, jnp.asarray), convert(inputs, jnp.asarray)
    expected = jax.grad(lambda p: module.loss(p, **jax_inputs))(jax_params)
    got = module.gradients(jax_params, **jax_inputs)
    jitted = jax.jit(lambda p, i: module.gradients(p, **i))(jax_params, jax_inputs)
    for value in (*got.values(), *jitted.values()):
        assert isinstance(value, jax.Array) and value.dtype == jnp.float64
    expected_numpy = {k: np.asarray(v) for k, v in expected.items()}
    assert_close(got, expected_numpy, rtol=1e-10, atol=1e-12)
    assert_close(jitted, expected_numpy, rtol=1e-10, atol=1e-12)
    assert_close(got, numpy_module.gradients(params, **inputs), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [*EQUATION_EXAMPLES, "coverage"])
@pytest.mark.parametrize("parameters", ["dask", "numpy"])
def test_equation_spec_on_dask_chunked_along_the_batch(
    equation_modules, name, parameters, dask_client
):
    """Every input chunked along its batch axis, the parameters Dask or NumPy arrays
    (the one mix the library check lets pass: Dask's chunks are NumPy arrays): the
    gradients equal NumPy's, and no task holds a whole-batch array (batch sums are
    reduced chunk by chunk)."""
    da = pytest.importorskip("dask.array")
    spec, numpy_module, module = equation_modules[name]
    if not all(spec.inputs[n][:1] == ("batch",) for n in spec.inputs):
        pytest.skip("an input without a batch axis: no batch to chunk")
    batch, chunk = 97, 20  # 5 chunks; 97 is no size of any example
    params, inputs = random_point(spec, batch=batch, seed=11)
    chunked = {
        n: da.from_array(a, chunks=(chunk,) + (-1,) * (a.ndim - 1))
        for n, a in inputs.items()
    }
    given = convert(params, da.from_array) if parameters == "dask" else params
    lazy = module.gradients(given, **chunked)
    assert all(isinstance(g, da.Array) for g in lazy.values())
    (computed,) = dask_client.compute([lazy], sync=True)
    expected = numpy_module.gradients(params, **inputs)
    assert_close(computed, expected, rtol=1e-9, atol=1e-12)
    assert full_batch_outputs(lazy, batch) == []


@pytest.mark.parametrize(
    ("formula", "says"),
    [
        ("gelu(x @ W.T)", "gelu needs erf"),
        ("x + erf(x @ W.T)", "calls erf"),
    ],
)
def test_erf_in_an_equation_spec_is_refused_naming_the_equation(
    tmp_path, formula, says
):
    path = tmp_path / "gelu.toml"
    path.write_text(
        'name = "g"\ntarget = "array_api"\n[sizes]\nd = 3\n[inputs]\n'
        'x = ["batch", "d"]\n[parameters]\nW = ["d", "d"]\n[equations]\n'
        f'h = "{formula}"\nloss = "mean(h)"\n'
    )
    result = run_derive(path, tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{path}: equations.h: {says}" in result.stderr
    assert 'target = "array_api" cannot compute' in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_target_of_an_equation_spec_is_refused():
    text = (SPECS / "residual_mlp.toml").read_text()
    with pytest.raises(
        Exception, match=r"r\.toml: target: got 'cupy'; allowed: numpy, array_api"
    ):
        parse_spec(text.replace("[sizes]", 'target = "cupy"\n[sizes]'), "r.toml")
