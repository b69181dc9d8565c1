"""One list of the names a generated module uses itself (derive.reserved), checked
against what the templates write, and refused in every place a spec names something.

The check renders every committed spec with the names a spec controls replaced by
marked ones (``zq...``): every name that then shares a scope with a marked one (the
module's own functions, constants and imports, the names any function loads from
outside itself, and every name in a function that holds a marked one) is a name the
templates introduce, and must be in the list. A template that starts using a new
name beside a spec's names fails here until the name is added to the list.
"""

from __future__ import annotations

import ast
import copy
import tomllib
from pathlib import Path

import pytest

from derive import SpecError
from derive.equations import FUNCTIONS
from derive.progress import quiet
from derive.render import _module_source, derive_spec
from derive.reserved import BUILTIN_NAMES, LAYER_MODULE_NAMES, MODULE_NAMES, reserved
from derive.spec import spec_from_data
from derive.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.toml"))
MARK = "zq"


def _data(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


EQUATION_SPECS = [p for p in SPECS if "equations" in _data(p)]
LAYER_SPECS = [p for p in SPECS if "layers" in _data(p)]


def _marked_equations(data: dict, target: str) -> dict:
    """``data`` with each of its names (sizes, inputs, parameters, values; not
    ``loss``, which every spec must define) marked, in tables and formulas."""
    names = {
        *data.get("sizes", {}),
        *data.get("inputs", {}),
        *data["parameters"],
        *data["equations"],
    } - {"loss"}

    def marked(name: str) -> str:
        return f"{MARK}{name}" if name in names else name

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            node.id = marked(node.id)
            return node

    out = dict(data, target=target)
    for key in ("sizes", "inputs", "parameters", "worked_point"):
        if key in data:
            out[key] = {
                marked(k): [marked(a) for a in v]
                if key in ("inputs", "parameters")
                else v
                for k, v in data[key].items()
            }
    out["equations"] = {
        marked(k): ast.unparse(Rename().visit(ast.parse(v, mode="eval")))
        for k, v in data["equations"].items()
    }
    return out


def _marked_layers(data: dict) -> dict:
    """``data`` with every activation a custom function named ``zqfN``."""
    out = copy.deepcopy(data)
    out.pop("worked_point", None)
    for n, layer in enumerate(out["layers"]):
        if layer.get("activation", "identity") != "identity":
            layer.pop("slope", None)
            layer.update(
                activation="custom",
                expression="x * sigmoid(x)",
                function_name=f"{MARK}f{n}",
            )
    return out


def _module(data: dict) -> tuple[ast.Module, set[str]]:
    """The generated module's syntax tree (not verified: only its names are read),
    and the names of the network's values and their gradients."""
    derivation = derive_spec(spec_from_data(data, "probe.toml"))
    source, _ = _module_source(derivation, "probe.toml", "", quiet)
    values = {v.name for v in derivation.network}
    return ast.parse(source), values | {f"d_loss_d_{v}" for v in values}


def shared_names(tree: ast.Module, marked: set[str]) -> set[str]:
    """The names of ``tree`` that share a scope with a name in ``marked``."""
    out: set[str] = set()
    for node in tree.body:  # module level
        if isinstance(node, ast.FunctionDef):
            out.add(node.name)
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                out.add(child.id)
            elif isinstance(child, ast.alias):
                out.add((child.asname or child.name).split(".")[0])
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        bound = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
        bound |= {
            n.id
            for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        bound |= {
            h.name
            for h in ast.walk(node)
            if isinstance(h, ast.ExceptHandler) and h.name
        }
        loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        out |= loaded - bound  # globals and built-ins it calls
        if (bound | loaded) & marked:
            out |= bound | loaded
    return out - marked


def _refused(name: str) -> bool:
    """Whether the spec readers refuse ``name`` for a spec's own use: listed, a
    d_loss_d_NAME or NAME_derivative, or a function formulas call."""
    return bool(reserved(name)) or name in FUNCTIONS


def _equation_cases() -> list[tuple[Path, str]]:
    return [
        (path, target)
        for path in EQUATION_SPECS
        for target in TARGETS
        if target == "numpy" or "erf" not in path.read_text()
    ]


@pytest.mark.parametrize(
    "path, target",
    _equation_cases(),
    ids=[f"{p.stem}-{t}" for p, t in _equation_cases()],
)
def test_equation_modules_use_only_listed_names_beside_a_spec_s_names(path, target):
    tree, values = _module(_marked_equations(_data(path), target))
    marked = {v for v in values if MARK in v}
    # derive names what it adds after the spec's names (loss_lse, d_loss_d_loss).
    derived = {v for v in values if v.startswith(("loss", "d_loss_d_loss"))}
    unlisted = {n for n in shared_names(tree, marked) - derived if not _refused(n)}
    assert not unlisted, f"add to derive.reserved.MODULE_NAMES: {sorted(unlisted)}"


@pytest.mark.parametrize("path", LAYER_SPECS, ids=[p.stem for p in LAYER_SPECS])
def test_layer_modules_use_only_listed_names_beside_a_custom_function(path):
    data = _marked_layers(_data(path))
    tree, values = _module(data)
    functions = {f"{MARK}f{n}" for n in range(len(data["layers"]))}
    marked = functions | {f"{f}_derivative" for f in functions}
    unlisted = {
        n
        for n in shared_names(tree, marked) - values - LAYER_MODULE_NAMES
        if not _refused(n)
    }
    assert not unlisted, f"add to derive.reserved: {sorted(unlisted)}"
    # The network's own names (x, r0, h0, W0, b0, y_predicted) are refused too.
    for name in sorted(values):
        if name.islower():
            with pytest.raises(SpecError, match="function_name"):
                spec_from_data(_layers_with_function_name(name), "t.toml")


EQUATION_SPEC = {
    "name": "t",
    "sizes": {"n": 3},
    "inputs": {"x": ["batch", "n"]},
    "parameters": {"w": ["n"]},
    "equations": {"loss": "mean((x @ w) ** 2)"},
}


def _with_name(place: str, name: str) -> dict:
    data = copy.deepcopy(EQUATION_SPEC)
    if place == "sizes":
        data["sizes"][name] = 2
    elif place == "inputs":
        data["inputs"][name] = ["batch"]
        data["equations"] = {"loss": f"mean((x @ w) ** 2 * {name})"}
    elif place == "parameters":
        data["parameters"][name] = []
        data["equations"] = {"loss": f"mean((x @ w) ** 2) * {name}"}
    else:
        data["equations"] = {name: "x @ w", "loss": f"mean({name} ** 2)"}
    return data


def _layers_with_function_name(name: str) -> dict:
    return {
        "name": "t",
        "input": 2,
        "layers": [
            {
                "width": 3,
                "activation": "custom",
                "expression": "x * sigmoid(x)",
                "function_name": name,
            },
            {"width": 1, "activation": "identity"},
        ],
        "loss": {"kind": "squared"},
    }


#: Every listed name, and the names issue 23 found breaking a module.
REFUSED = sorted(
    MODULE_NAMES
    | BUILTIN_NAMES
    | {"with_loss", "arrays", "given", "_parameters", "_values", "_inputs"}
    | {"relu_derivative", "d_loss_d_w", "leaky_relu_2"}
)


@pytest.mark.parametrize("place", ["sizes", "inputs", "parameters", "equations"])
def test_every_reserved_name_is_refused_in_an_equation_spec(place):
    for name in REFUSED:
        if not name.isidentifier():
            continue
        with pytest.raises(SpecError) as caught:
            spec_from_data(_with_name(place, name), "t.toml")
        (line,) = str(caught.value).splitlines()
        assert line.startswith(f"t.toml: {place}.{name}: "), line
        assert "choose another name" in line or "identifier" in line, line


def test_every_reserved_name_is_refused_as_a_custom_function_name():
    # (leaky_relu_2 names an equation module's second slope; a [[layers]] module
    # never defines it.)
    names = {*REFUSED, *LAYER_MODULE_NAMES, "b0", "r1", "h2"} - {"leaky_relu_2"}
    for name in sorted(names):
        with pytest.raises(SpecError) as caught:
            spec_from_data(_layers_with_function_name(name), "t.toml")
        (line,) = str(caught.value).splitlines()
        assert line.startswith("t.toml: layers[0].function_name: "), line


def test_a_function_name_with_a_trailing_line_break_is_refused():
    # A regex's $ matches before a final line break: "swish\n" passed, and derive
    # stopped with an internal error when ruff could not format the module.
    with pytest.raises(SpecError) as caught:
        spec_from_data(_layers_with_function_name("swish\n"), "t.toml")
    (line,) = str(caught.value).splitlines()
    assert line.startswith("t.toml: layers[0].function_name: got 'swish\\n'"), line


def test_names_the_module_does_not_use_stay_free():
    """The list refuses only what collides: an equation spec may still name its
    values x, y, h, mu, var, k, q, v, name or shape."""
    for name in ("x2", "y", "h", "mu", "var", "k", "q", "v", "name", "shape"):
        spec_from_data(_with_name("equations", name), "t.toml")
