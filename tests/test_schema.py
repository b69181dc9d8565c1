"""The JSON Schema for editors (derive/schema/spec.schema.json): generated from
derive's tables, valid for every spec derive accepts, never stricter than derive on
the bad-spec corpora and on drawn specs, and the same under draft 7 (taplo's rules)
as under 2020-12.

Only the spec readers run here (``parse_spec``, ``spec_from_data``): nothing is
derived."""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator

import derive.schema
from derive import equations, spec
from derive.activations import ACTIVATIONS, DEFAULT_SLOPE
from derive.errors import SpecError
from derive.losses import DEFAULT_DELTA, LOSSES
from derive.schema.__main__ import main as schema_main
from derive.spec import parse_spec, spec_from_data
from derive.targets import DEFAULT_TARGET, TARGETS
from tests import test_api, test_bad_equation_specs, test_cli, test_cli_hardening
from tests.bad_equation_specs import BAD_SPECS as BAD_EQUATION_SPECS
from tests.conftest import ROOT, SPECS, examples
from tests.equation_strategies import equation_specs
from tests.test_document_escaping import LAYERED, equation_spec

SCHEMA = derive.schema.load()
VALIDATOR = Draft202012Validator(SCHEMA)
# taplo's JSON Schema library knows drafts 4, 6 and 7 only: a 2020-12 schema is
# read with draft-7 rules there. Without $schema, so that nothing here reads it.
DRAFT7 = Draft7Validator({k: v for k, v in SCHEMA.items() if k != "$schema"})


def verdict(data: Any) -> bool:
    """Whether ``data`` is valid, asserting both drafts agree."""
    valid = VALIDATOR.is_valid(data)
    assert DRAFT7.is_valid(data) == valid, "draft 7 and 2020-12 disagree"
    return valid


def refusal(data: dict[str, Any]) -> SpecError | None:
    """derive's reader's error for ``data``, or None when it accepts it."""
    try:
        spec_from_data(data, "bad.toml")
    except SpecError as error:
        return error
    return None


# --- the file ---------------------------------------------------------------------


def test_the_committed_schema_is_the_one_the_tables_give():
    """Regenerate with ``python -m derive.schema --write`` after changing a table."""
    assert derive.schema.PATH.read_text(encoding="utf-8") == derive.schema.text()


def test_the_schema_is_a_valid_2020_12_and_draft_7_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)
    Draft7Validator.check_schema(DRAFT7.schema)


#: Keywords whose meaning differs between 2020-12 and draft 7 (or that draft 7 lacks):
#: under taplo they would be ignored or read otherwise.
LATER_KEYWORDS = {
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
    "minContains",
    "maxContains",
    "$dynamicRef",
    "$anchor",
}


def _subschemas(node: Any) -> Any:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def test_the_schema_uses_only_what_draft_7_reads_the_same():
    for node in _subschemas(SCHEMA):
        assert not LATER_KEYWORDS & node.keys(), node
        # Draft 7 ignores everything beside a $ref.
        if "$ref" in node:
            assert node.keys() <= {"$ref", "description", "default"}, node
        # items as an array is draft 7's tuple form, an error in 2020-12.
        assert not isinstance(node.get("items"), list), node


def test_the_enumerations_are_derives_tables():
    props = SCHEMA["properties"]
    layer = SCHEMA["$defs"]["layer"]["properties"]
    loss = SCHEMA["$defs"]["loss"]["properties"]
    assert layer["activation"]["enum"] == list(ACTIVATIONS)
    assert loss["kind"]["enum"] == list(LOSSES)
    assert loss["reduction"]["enum"] == list(spec.REDUCTIONS)
    assert props["shapes"]["enum"] == list(spec.SHAPES)
    assert props["style"]["enum"] == list(spec.STYLES)
    assert props["target"]["enum"] == list(TARGETS)
    assert set(SCHEMA["$defs"]["layer"]["properties"]) == set(spec.LAYER_FIELDS)
    assert set(SCHEMA["$defs"]["loss"]["properties"]) == set(spec.LOSS_FIELDS)
    layers_spec = SCHEMA["$defs"]["layersSpec"]["propertyNames"]["enum"]
    assert layers_spec == list(spec.TOP_FIELDS)
    equation_spec_fields = SCHEMA["$defs"]["equationSpec"]["propertyNames"]["enum"]
    assert equation_spec_fields == list(equations.TOP_FIELDS)
    refused = SCHEMA["$defs"]["identifier"]["not"]["anyOf"][0]["enum"]
    assert set(equations.FUNCTIONS) <= set(refused)


def test_the_defaults_are_what_derive_fills_in():
    """A spec that leaves every optional field out reads as the schema's defaults."""
    props = SCHEMA["properties"]
    layer = SCHEMA["$defs"]["layer"]["properties"]
    loss = SCHEMA["$defs"]["loss"]["properties"]
    text = (
        'name = "n"\ninput = 2\n'
        '[[layers]]\nwidth = 2\nactivation = "custom"\nexpression = "x**2"\n'
        '[loss]\nkind = "huber"\n'
    )
    read = parse_spec(text, "n.toml")
    assert read.description == props["description"]["default"]
    assert read.shapes == props["shapes"]["default"]
    assert read.style == props["style"]["default"]
    assert read.target == props["target"]["default"] == DEFAULT_TARGET
    assert read.layers[0].bias is layer["bias"]["default"]
    assert read.layers[0].function_name == layer["function_name"]["default"]
    assert read.loss.reduction == loss["reduction"]["default"]
    # slope and delta stay None in the spec; the formulas take these defaults.
    assert layer["slope"]["default"] == DEFAULT_SLOPE
    assert loss["delta"]["default"] == DEFAULT_DELTA
    equation = parse_spec(
        'name = "n"\n[parameters]\nw = []\n[equations]\nloss = "w**2"\n', "n.toml"
    )
    assert equation.target == props["target"]["default"]


def test_python_m_derive_schema_prints_the_path_and_the_schema(capsys):
    assert schema_main([]) == 0
    assert capsys.readouterr().out == f"{derive.schema.PATH}\n"
    assert schema_main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA
    assert derive.schema.path() == derive.schema.PATH


# --- specs derive accepts validate ------------------------------------------------

COMMITTED = sorted(SPECS.glob("*.toml"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_every_committed_spec_validates(path):
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    errors = [e.message for e in VALIDATOR.iter_errors(data)]
    assert errors == []
    assert verdict(data)


#: Spec texts from the other tests that derive reads (some it then refuses while
#: deriving, which the schema cannot see).
ACCEPTED = {
    "seed": test_cli.SEED,
    "good residual": test_bad_equation_specs.GOOD,
    "hostile description and names (equations)": equation_spec(
        "any text: $ \\ { } % # ` <!-- -->"
    ),
    "hostile description (layers)": LAYERED,
    "custom activation, min": test_cli.SEED.replace(
        '"relu"', '"custom"\nexpression = "min(x, 1) + x"', 1
    ),
}


@pytest.mark.parametrize("label", ACCEPTED)
def test_spec_texts_derive_reads_validate(label):
    text = ACCEPTED[label]
    parse_spec(text, "t.toml")  # derive reads it
    data = tomllib.loads(text)
    assert [e.message for e in VALIDATOR.iter_errors(data)] == []
    assert verdict(data)


def test_a_spec_of_every_activation_loss_and_target_validates():
    """Each value of each table, in a spec derive reads."""
    for target in TARGETS:
        for activation in ACTIVATIONS:
            for kind in LOSSES:
                text = (
                    f'name = "n"\ninput = 2\ntarget = "{target}"\n[[layers]]\n'
                    f'width = 2\nactivation = "{activation}"\n'
                    + ('expression = "x**3"\n' if activation == "custom" else "")
                    + ("slope = 0.2\n" if activation == "leaky_relu" else "")
                    + f'[loss]\nkind = "{kind}"\n'
                    + (
                        'expression = "(y_predicted - y)**4"\n'
                        if kind == "custom"
                        else ""
                    )
                    + ("delta = 0.5\n" if kind == "huber" else "")
                )
                data = tomllib.loads(text)
                if refusal(data) is None:
                    assert verdict(data), text
                else:  # array_api and gelu: both refuse
                    assert not verdict(data), text


def _subsets(fields: dict[str, str]) -> list[dict[str, str]]:
    items = list(fields.items())
    return [
        dict(item for bit, item in enumerate(items) if mask >> bit & 1)
        for mask in range(1 << len(items))
    ]


def test_the_schema_and_derive_agree_on_which_fields_each_activation_and_loss_take():
    """Every activation with every subset of slope, expression and function_name,
    and every loss with every subset of delta and expression: valid exactly when
    derive reads it (only leaky_relu takes slope, custom needs an expression, ...)."""
    layer_fields = {
        "slope": "slope = 0.2",
        "expression": 'expression = "x**3"',
        "function_name": 'function_name = "cube"',
    }
    loss_fields = {
        "delta": "delta = 0.5",
        "expression": 'expression = "(y_predicted - y)**4"',
    }
    agreed = 0
    for activation in ACTIVATIONS:
        for chosen in _subsets(layer_fields):
            layer = "\n".join(chosen.values())
            text = (
                f'name = "n"\ninput = 2\n[[layers]]\nwidth = 2\n'
                f'activation = "{activation}"\n{layer}\n[loss]\nkind = "mse"\n'
            )
            data = tomllib.loads(text)
            assert verdict(data) == (refusal(data) is None), text
            agreed += 1
    for kind in LOSSES:
        for chosen in _subsets(loss_fields):
            loss = "\n".join(chosen.values())
            text = (
                'name = "n"\ninput = 2\n[[layers]]\nwidth = 2\n'
                f'activation = "relu"\n[loss]\nkind = "{kind}"\n{loss}\n'
            )
            data = tomllib.loads(text)
            assert verdict(data) == (refusal(data) is None), text
            agreed += 1
    assert agreed == len(ACTIVATIONS) * 8 + len(LOSSES) * 4


@settings(
    max_examples=examples(40),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(equation_specs())
def test_drawn_equation_specs_validate(text):
    data = tomllib.loads(text)
    assert [e.message for e in VALIDATOR.iter_errors(data)] == []
    assert verdict(data)


# --- the bad-spec corpora -----------------------------------------------------------


def _corpus() -> dict[str, str]:
    cases = {f"cli: {k}": text for k, (text, _) in test_cli.BAD_SPECS.items()}
    cases |= {
        f"hardening: {k}": text
        for k, (text, _) in test_cli_hardening.MORE_BAD_SPECS.items()
    }
    cases |= {f"equations: {c.label}": c.text for c in BAD_EQUATION_SPECS}
    cases |= {
        f"equations extra: {k}": text
        for k, (text, *_) in test_bad_equation_specs.EXTRA.items()
    }
    cases |= {f"api: {k}": text for k, text in test_api.BAD_SPECS.items()}
    return cases


BAD = _corpus()

#: The bad specs the schema refuses, so an editor marks them as they are typed: wrong
#: types, values outside a table or a range, unknown or misplaced fields, missing
#: ones, reserved names. The others need derive: what a formula means or computes,
#: shapes and axes, names given twice, the standard library's and Python's built-in
#: names, counts across tables, and text that is not TOML at all.
CAUGHT = {
    "cli: empty file",
    "cli: missing name",
    "cli: misspelled field",
    "cli: misspelled layer field",
    "cli: name not identifier",
    "cli: name is a keyword",
    "cli: injection in name",
    "cli: zero width",
    "cli: negative width",
    "cli: absurd width",
    "cli: width not integer",
    "cli: unknown activation",
    "cli: unknown style",
    "cli: slope on relu",
    "cli: slope not a number",
    "cli: custom without expression",
    "cli: custom name reserved",
    "cli: delta on squared",
    "cli: negative delta",
    "cli: worked point not numbers",
    "cli: unknown loss",
    "cli: bias not boolean",
    "cli: unknown shapes",
    "cli: no layers",
    "hardening: name numpy",
    "hardening: name scipy",
    "equations: a function's name taken by an equation",
    "equations: no loss",
    "equations: batch axis on a parameter",
    "equations: size 0",
    "equations: size -1",
    "equations: size 2.5",
    'equations: size "4"',
    "equations: size true",
    "equations: an equation that is not a string",
    "api: unknown field",
    "api: bad width",
    "equations extra: a name the module uses",
}


def test_the_corpora_are_read():
    assert len(BAD) >= 100


@pytest.mark.parametrize("label", BAD)
def test_what_the_schema_refuses_derive_refuses(label):
    """Never stricter than derive: a spec the schema refuses, derive's reader refuses
    too, naming the place the schema names, or one inside it or around it."""
    try:
        data = tomllib.loads(BAD[label])
    except tomllib.TOMLDecodeError:
        assert label not in CAUGHT  # the editor's TOML parser marks it
        return
    valid = verdict(data)
    assert valid == (label not in CAUGHT), [
        e.message for e in VALIDATOR.iter_errors(data)
    ]
    if valid:
        return
    error = refusal(data)
    assert error is not None, "the schema refuses a spec derive's reader accepts"
    places = {_place(e.absolute_path) for e in _all_errors(data)}
    # One names the other's field or a part of it (the schema an axis of a
    # parameter, derive the parameter; derive an unknown key, the schema its table).
    assert any(
        error.field.startswith(place) or place.startswith(error.field)
        for place in places
    ), (error, places)


def _all_errors(data: Any) -> list[Any]:
    found, stack = [], list(VALIDATOR.iter_errors(data))
    while stack:
        error = stack.pop()
        found.append(error)
        stack.extend(error.context)
    return found


def _place(path: Any) -> str:
    """A schema error's path as derive names a field: ``layers[0].width``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def test_the_schema_catches_the_structural_refusals():
    """38 of the 116 bad specs that are TOML; the rest are formulas and the checks
    across tables listed above CAUGHT."""
    assert len(CAUGHT) >= 38
    assert CAUGHT <= BAD.keys()


# --- drawn specs: never stricter than derive ---------------------------------------

SEED_DATA = tomllib.loads(test_cli.SEED)
GOOD_DATA = tomllib.loads(test_bad_equation_specs.GOOD)

NAMES = st.sampled_from(
    [
        "h2",
        "W9",
        "d_x",
        "loss",
        "batch",
        "e",
        "pi",
        "sum",
        "exp",
        "relu",
        "leaky_relu_2",
        "d_loss_d_h0",
        "h0_derivative",
        "len",
        "input",
        "for",
        "None",
        "match",
        "x y",
        "1a",
        "\u00e9t\u00e9",
        "_a",
        "forward",
        "params",
        "custom",
        "swish",
        "sigmoid",
        "numpy",
        "math",
        "mlp",
        "r0",
        "b12",
        "y_predicted",
        "a-b",
        "",
    ]
) | st.text(alphabet="aWb_0 .", min_size=1, max_size=4)
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0, 1, 2, spec.MAX_WIDTH, spec.MAX_WIDTH + 1, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXTS = st.sampled_from(
    [
        *ACTIVATIONS,
        *LOSSES,
        *spec.SHAPES,
        *spec.STYLES,
        *spec.REDUCTIONS,
        *TARGETS,
        "x*sigmoid(x)",
        "(y_predicted - y)**2",
        "x/0",
        "",
        "   ",
        "\ufeff",
        "x" * 600,
        "d_h",
        "d_in",
    ]
)
VALUES = st.one_of(
    NUMBERS,
    st.booleans(),
    TEXTS,
    NAMES,
    st.lists(st.one_of(NUMBERS, TEXTS), max_size=3),
    st.just({}),
    st.just([{}]),
)
#: A value deleted instead of set.
DELETE = object()


def _mutate(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    table = data
    for key in path[:-1]:
        if isinstance(table, list):
            if not isinstance(key, int) or not table:
                return
            table = table[key % len(table)]
        elif isinstance(table, dict) and key in table:
            table = table[key]
        else:
            return
        if not isinstance(table, dict | list):
            return
    if not isinstance(table, dict):
        return
    if value is DELETE:
        table.pop(path[-1], None)
    else:
        table[path[-1]] = value


LAYER_PATHS = st.one_of(
    st.tuples(st.sampled_from([*spec.TOP_FIELDS, "equations", "sizes", "junk"])),
    st.tuples(
        st.just("layers"),
        st.integers(0, 2),
        st.sampled_from([*spec.LAYER_FIELDS, "junk"]),
    ),
    st.tuples(st.just("loss"), st.sampled_from([*spec.LOSS_FIELDS, "junk"])),
    st.tuples(st.just("worked_point"), NAMES),
)
EQUATION_PATHS = st.one_of(
    st.tuples(st.sampled_from([*equations.TOP_FIELDS, "layers", "style", "junk"])),
    st.tuples(st.sampled_from(["sizes", "inputs", "parameters", "equations"]), NAMES),
    st.tuples(
        st.sampled_from(["sizes", "inputs", "parameters", "equations"]),
        st.sampled_from(["d_h", "x", "W0", "h0", "loss"]),
    ),
    st.tuples(st.just("worked_point"), NAMES),
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], paths: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    if base is SEED_DATA and draw(st.booleans()):
        del data["worked_point"]  # most mutations then leave it valid
    if base is SEED_DATA and draw(st.booleans()):
        # A custom or leaky_relu layer, a huber or custom loss: their own fields.
        layer = data["layers"][0]
        layer["activation"] = draw(st.sampled_from(["custom", "leaky_relu", "gelu"]))
        if layer["activation"] == "custom":
            layer["expression"] = "x * sigmoid(x)"
        data["loss"]["kind"] = draw(st.sampled_from(["huber", "custom", "mse"]))
        if data["loss"]["kind"] == "custom":
            data["loss"]["expression"] = "(y_predicted - y)**4"
    for _ in range(draw(st.integers(1, 3))):
        value = draw(st.one_of(VALUES, st.just(DELETE)))
        if draw(st.integers(0, 4)) == 0:  # an axis list, as inputs hold them
            value = draw(st.lists(st.one_of(NAMES, st.just("batch")), max_size=3))
        _mutate(data, draw(paths), value)
    return data


@settings(
    max_examples=examples(300),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.one_of(mutated(SEED_DATA, LAYER_PATHS), mutated(GOOD_DATA, EQUATION_PATHS)))
def test_a_drawn_spec_the_schema_refuses_derive_refuses(data):
    if not verdict(data):
        assert refusal(data) is not None, [
            e.message for e in VALIDATOR.iter_errors(data)
        ]


def test_the_readme_paths_exist():
    """The file sits inside the package the wheel is built from (hatch's
    ``packages = ["derive"]`` takes every file under derive/)."""
    assert derive.schema.PATH.is_file()
    assert derive.schema.PATH.parent == ROOT / "derive" / "schema"
