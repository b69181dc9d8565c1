"""A JSON Schema of both spec forms, for editors: ``spec.schema.json`` beside this file.

Taplo and Even Better TOML (VS Code) read it from a ``#:schema`` comment on a spec's
first line or from a ``[[rule]]`` of ``taplo.toml``, and then complete field names,
show each field's description and underline a wrong type, an unknown field or a value
that is not allowed as it is typed. ``python -m derive.schema`` prints the path of the
installed file (``--json`` prints the schema itself).

The schema is generated from derive's own tables (the fields each reader accepts, the
activations, losses, reductions, shapes, styles, targets, the limits and the names a
spec may not take) by :func:`build`; ``python -m derive.schema --write`` writes it and
``tests/test_schema.py`` fails when the committed file differs. It is never stricter
than derive: everything it refuses, derive refuses. It cannot say everything derive
checks (what a formula means, an axis that is not a size, a name given twice, a
worked point's shapes); each field's description says what is left to derive.

It is written for draft 2020-12 with only the keywords that mean the same in draft 7:
taplo validates with draft-7 rules (the JSON Schema library it uses knows no later
draft), so the schema avoids ``prefixItems``, ``dependentRequired``,
``unevaluatedProperties`` and ``$ref`` beside other validation keywords.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The installed schema: a plain file inside the package, so the wheel carries it.
PATH = Path(__file__).with_name("spec.schema.json")

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: A Python identifier in ASCII, as ``str.isidentifier() and str.isascii()`` accept.
IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_]*$"


def path() -> Path:
    """Where the installed schema is (for a ``#:schema`` line or an editor setting)."""
    return PATH


def load() -> dict[str, Any]:
    """The committed schema, as a dict."""
    result: dict[str, Any] = json.loads(PATH.read_text(encoding="utf-8"))
    return result


def text() -> str:
    """The schema as the file holds it: JSON, indented, ASCII, a final newline."""
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


def build() -> dict[str, Any]:
    """The schema, from derive's tables (imported here: they pull in SymPy, which
    :data:`PATH` and :func:`load` do not need)."""
    import keyword

    from derive import equations, expressions, spec
    from derive.activations import ACTIVATIONS, DEFAULT_SLOPE, definition
    from derive.losses import DEFAULT_DELTA, LOSSES, make_loss
    from derive.reserved import LAYER_MODULE_NAMES, MODULE_NAMES
    from derive.targets import DEFAULT_TARGET, RUNTIME_MODULES, TARGETS

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/$defs/{name}"}

    keywords = sorted(set(keyword.kwlist))
    module_name = {
        "description": (
            "A Python identifier (ASCII letters, digits and _, not starting with a "
            "digit, not a keyword): the module is generated/NAME.py. Not "
            f"{', '.join(sorted(RUNTIME_MODULES))} or a standard-library module, "
            "which it would shadow (derive checks the standard library's names; "
            "this schema does not list them, as they depend on the Python version)."
        ),
        "type": "string",
        "pattern": IDENTIFIER,
        "not": {"enum": sorted({*keywords, *RUNTIME_MODULES})},
    }
    # The names an equation spec's sizes, inputs, parameters and values may not
    # take: derive.equations._Reader.identifier (keywords, the functions formulas
    # call, leaky_relu_2 ..., and derive.reserved.reserved but for Python's
    # built-in names, whose list depends on the Python version).
    identifier = {
        "description": (
            "A Python identifier (ASCII letters, digits, _) that is not a keyword, a "
            "function formulas call (exp, sum, softmax, ...), or a name the "
            "generated module uses itself (forward, gradients, params, batch, pi, "
            "e, ...; d_loss_d_NAME, the gradient of NAME; NAME_derivative; "
            "leaky_relu_2, ...). derive also refuses Python's built-in names (len, "
            "zip, input, ...) and a name given twice across sizes, inputs, "
            "parameters and equations; this schema cannot check those."
        ),
        "type": "string",
        "pattern": IDENTIFIER,
        "not": {
            "anyOf": [
                {"enum": sorted({*keywords, *equations.FUNCTIONS, *MODULE_NAMES})},
                {"pattern": f"^{equations._LEAKY_RELU_NAME.pattern}$"},
                {"pattern": "^d_loss_d_"},
                {"pattern": "_derivative$"},
            ]
        },
    }
    numbers = {
        "description": (
            "A number or (nested) arrays of numbers, in the array's shape. derive "
            "checks the shape and that every number is finite (TOML's nan and inf "
            "are refused)."
        ),
        "anyOf": [
            {"type": "number"},
            {"type": "array", "items": ref("numbers")},
        ],
    }
    formula_text = {
        # Blank as str.strip() sees it: every character whitespace. ECMA's \s also
        # takes U+FEFF, which Python's does not, hence the alternative.
        "type": "string",
        "pattern": "[^\\s]|\\uFEFF",
    }

    # --- the [[layers]] form --------------------------------------------------------
    activations_table = (
        "identity: x. relu: max(0, x). leaky_relu: x if x > 0, else slope*x. "
        "sigmoid: 1/(1 + exp(-x)). tanh: tanh(x). softplus: log(1 + exp(x)). "
        "gelu: x/2*(1 + erf(x/sqrt(2))), exact, torch's default (the code imports "
        "scipy.special for erf). custom: expression, a formula in x, with its own "
        "function_name."
    )
    losses_table = (
        "Per element, with d = y_predicted - y: squared: d**2 (the problem set's), "
        "summed over output units. mse: d**2, averaged over every element as "
        "torch's MSELoss(). huber: d**2/2 if abs(d) <= delta, else "
        "delta*(abs(d) - delta/2), as HuberLoss(). binary_cross_entropy: from "
        "logits, softplus(y_predicted) - y*y_predicted, as BCEWithLogitsLoss(). "
        "softmax_cross_entropy: per sample, -sum_i y[i]*log(softmax(y_predicted)[i]), "
        "as CrossEntropyLoss(); y may be integer class labels or one-hot rows; the "
        "last layer needs at least 2 units (derive checks it, this schema cannot). "
        "custom: expression, in y_predicted and y."
    )
    own_functions = sorted(spec._OWN_FUNCTIONS)
    layer = {
        "description": "One fully connected layer: h = activation(W @ h_prev + b).",
        "type": "object",
        "properties": {
            "width": {
                "description": (
                    f"The number of units, an integer from 1 to {spec.MAX_WIDTH}."
                ),
                "type": "integer",
                "minimum": 1,
                "maximum": spec.MAX_WIDTH,
            },
            "activation": {
                "description": activations_table,
                "enum": list(ACTIVATIONS),
            },
            "bias": {
                "description": "Whether the layer adds a bias b (default true).",
                "type": "boolean",
                "default": True,
            },
            "slope": {
                "description": (
                    f"leaky_relu only: the slope for x <= 0 (default {DEFAULT_SLOPE}, "
                    "torch's), a number from -1e6 to 1e6. Two leaky_relu layers with "
                    "different slopes get functions of their own."
                ),
                "type": "number",
                "minimum": -1e6,
                "maximum": 1e6,
                "default": DEFAULT_SLOPE,
            },
            "expression": {
                "description": (
                    "custom only: a formula in x: numbers, x, pi, e, + - * / **, and "
                    "exp log sqrt abs tanh sinh cosh sin cos atan erf sigmoid "
                    f"softplus max min; at most {expressions.MAX_LENGTH} characters. "
                    "derive parses it with Python's ast and an allow-list (never "
                    "evaluated) and refuses a part that is not a finite real number "
                    "(x/0, log(0), exp(800)); this schema checks only that it is "
                    "text."
                ),
                **formula_text,
                "maxLength": expressions.MAX_LENGTH,
            },
            "function_name": {
                "description": (
                    'custom only: its name in the code (default "custom"): a '
                    "lowercase Python identifier (a-z, 0-9, _) that the generated "
                    "module does not use itself (not a built-in activation, not mlp, "
                    "loss, forward, gradients, x, y, r0, h0, b0, ...). derive also "
                    "refuses Python's built-in names (len, sum, ...) and two layers "
                    "that give one name two formulas; this schema cannot check those."
                ),
                "type": "string",
                # Anchored: a JSON Schema pattern matches anywhere, and derive matches
                # the whole name (fullmatch).
                "pattern": f"^{spec._FUNCTION_NAME.pattern}$",
                "not": {
                    "anyOf": [
                        {
                            "enum": sorted(
                                {
                                    *keywords,
                                    *own_functions,
                                    *LAYER_MODULE_NAMES,
                                    *MODULE_NAMES,
                                }
                            )
                        },
                        # spec._VALUE_NAME and reserved()'s prefix and suffix.
                        {"pattern": "^[rhb][0-9]+$"},
                        {"pattern": "^d_loss_d_"},
                        {"pattern": "_derivative$"},
                    ]
                },
                "default": "custom",
            },
        },
        "required": ["width", "activation"],
        "additionalProperties": False,
        "allOf": fields_by_value("activation", ACTIVATIONS, spec.LAYER_FIELDS, OWNED),
    }
    loss = {
        "description": "The loss and how it is reduced over the batch.",
        "type": "object",
        "properties": {
            "kind": {"description": losses_table, "enum": list(LOSSES)},
            "reduction": {
                "description": (
                    '"mean" (the default) or "sum" over the batch, as torch names '
                    'them. Without a batch axis (shapes = "problem_set", or the '
                    'unrolled style) the batch is the one sample: "mean" then '
                    "averages mse, huber and binary_cross_entropy over the output "
                    "units and leaves the others summed."
                ),
                "enum": list(spec.REDUCTIONS),
                "default": "mean",
            },
            "delta": {
                "description": (
                    f"huber only: delta (default {DEFAULT_DELTA:g}), a number from "
                    "1e-12 to 1e12."
                ),
                "type": "number",
                "minimum": 1e-12,
                "maximum": 1e12,
                "default": DEFAULT_DELTA,
            },
            "expression": {
                "description": (
                    "custom only: the loss per element, a formula in y_predicted "
                    "and y (numbers, pi, e, + - * / ** and the functions a custom "
                    f"activation may call); at most {expressions.MAX_LENGTH} "
                    "characters, checked by derive as a custom activation's is."
                ),
                **formula_text,
                "maxLength": expressions.MAX_LENGTH,
            },
        },
        "required": ["kind"],
        "additionalProperties": False,
        "allOf": fields_by_value("kind", LOSSES, spec.LOSS_FIELDS, OWNED),
    }
    layers_worked_point = {
        "description": (
            "Optional: numbers the derivation is evaluated at: x, y and every "
            "parameter (W0, b0, W1, b1, ...; no b for a layer with bias = false), "
            "each in its shape. derive checks the names against the layers, the "
            f"shapes, and that there are at most {spec.MAX_WORKED_NUMBERS} numbers."
        ),
        "type": "object",
        "propertyNames": {"pattern": "^(x|y|[Wb](0|[1-9][0-9]*))$"},
        "additionalProperties": ref("numbers"),
        "required": ["x", "y", "W0"],
    }
    # A target that cannot compute a function refuses the activations and losses
    # whose formulas hold it (derive.spec._Reader.check_target), and a target that
    # writes array code refuses the unrolled style.
    per_target = []
    for name, target in TARGETS.items():
        refused = [
            a
            for a in ACTIVATIONS
            if a != "custom" and any(definition(a).has(f) for f in target.refuses)
        ]
        # A loss without an element formula (softmax cross-entropy) is written by
        # derive itself, in functions every target has.
        elements = [(k, make_loss(k).element) for k in LOSSES if k != "custom"]
        refused_losses = [
            k
            for k, element in elements
            if element is not None and any(element.has(f) for f in target.refuses)
        ]
        then: dict[str, Any] = {}
        if set(target.styles) != set(spec.STYLES):
            then["style"] = {"enum": list(target.styles)}
        if refused:
            then["layers"] = {
                "items": {"properties": {"activation": {"not": {"enum": refused}}}}
            }
        if refused_losses:
            then["loss"] = {"properties": {"kind": {"not": {"enum": refused_losses}}}}
        if then:
            per_target.append(
                {
                    "if": {
                        "properties": {"target": {"const": name}},
                        "required": ["target"],
                    },
                    "then": {"properties": then},
                }
            )
    layers_fields = {
        "input": {
            "description": f"The input size, an integer from 1 to {spec.MAX_WIDTH}.",
            "type": "integer",
            "minimum": 1,
            "maximum": spec.MAX_WIDTH,
        },
        "shapes": {
            "description": (
                '"torch": nn.Linear\'s shapes with a leading batch axis on x, W of '
                'shape (out, in), b of shape (out,) (the default); "problem_set": '
                "one sample, no batch axis, a size-1 input or output is a scalar."
            ),
            "enum": list(spec.SHAPES),
            "default": "torch",
        },
        "style": {
            "description": (
                '"vectorized": matrix code with a leading batch axis, at any width '
                '(the default); "unrolled": the problem set\'s own style, one line '
                "per neuron on plain Python floats, one sample at a time, for "
                f"networks of at most {spec.MAX_UNROLLED_PARAMETERS} parameters "
                "(derive counts them; this schema cannot)."
            ),
            "enum": list(spec.STYLES),
            "default": "vectorized",
        },
        "layers": {
            "description": (
                "One table per layer ([[layers]]), input side first; from 1 to "
                f"{spec.MAX_LAYERS} layers."
            ),
            "type": "array",
            "items": ref("layer"),
            "minItems": 1,
            "maxItems": spec.MAX_LAYERS,
        },
        "loss": ref("loss"),
    }

    # --- the equation form ----------------------------------------------------------
    sizes = {
        "description": (
            "Every axis size, a positive integer (at most "
            f"{equations.MAX_SIZE}); the derivation keeps them symbolic. A spec "
            "whose values are all scalars names no size."
        ),
        "type": "object",
        "propertyNames": ref("identifier"),
        "additionalProperties": {
            "type": "integer",
            "minimum": 1,
            "maximum": equations.MAX_SIZE,
        },
    }
    axis_help = (
        f"At most {equations.MAX_AXES} axes, each a name from [sizes] (derive "
        "checks that it is one)."
    )
    inputs = {
        "description": (
            'Arrays given at run time, by axis names: "batch" is a leading batch '
            "axis sized by the data (only first: derive checks its place); [] is a "
            "scalar. " + axis_help
        ),
        "type": "object",
        "propertyNames": ref("identifier"),
        "additionalProperties": {
            "type": "array",
            "maxItems": equations.MAX_AXES,
            "items": {"anyOf": [{"const": "batch"}, ref("identifier")]},
        },
    }
    parameters = {
        "description": (
            "Arrays the gradient is taken for, by axis names (a parameter has no "
            "batch axis); at least one, and derive refuses one no equation uses. "
            + axis_help
        ),
        "type": "object",
        "propertyNames": ref("identifier"),
        "additionalProperties": {
            "type": "array",
            "maxItems": equations.MAX_AXES,
            "items": ref("identifier"),
        },
        "minProperties": 1,
    }
    equations_table = {
        "description": (
            "The values, in order; each may use sizes, inputs, parameters and "
            "values defined above it. The value named loss must be a scalar; it "
            "is what is differentiated, and it comes last. From 1 to "
            f"{equations.MAX_EQUATIONS} equations. Every formula means exactly "
            "what it means in NumPy (+ - * / ** @ .T, swapaxes, exp log sqrt abs "
            "tanh sigmoid softplus relu gelu sin cos erf, leaky_relu(a, slope), "
            "maximum, minimum, sum mean logsumexp with axis= and keepdims=, "
            "softmax and log_softmax with axis=, einsum, indexing with integers "
            "and full slices). derive parses each with Python's ast and an "
            "allow-list and checks its names, axes and shapes; this schema checks "
            f"only that it is text of at most {equations.MAX_LENGTH} characters."
        ),
        "type": "object",
        "propertyNames": ref("identifier"),
        "additionalProperties": {**formula_text, "maxLength": equations.MAX_LENGTH},
        "required": ["loss"],
        "minProperties": 1,
        "maxProperties": equations.MAX_EQUATIONS,
    }
    equation_worked_point = {
        "description": (
            "Optional: numbers for every input and parameter, each in its shape; "
            "the derivation then shows every value and gradient there. derive "
            "checks that every input and parameter is given, the shapes, and that "
            f"there are at most {equations.MAX_WORKED_NUMBERS} numbers."
        ),
        "type": "object",
        "propertyNames": ref("identifier"),
        "additionalProperties": ref("numbers"),
    }

    # --- both forms -----------------------------------------------------------------
    shared = {
        "name": ref("moduleName"),
        "description": {
            "description": (
                "Optional text for the docstring and the derivation (any text: "
                "escaped)."
            ),
            "type": "string",
            "default": "",
        },
        "target": {
            "description": (
                "The array library the module is written for: "
                f'"{DEFAULT_TARGET}" (the default), or "array_api": one module for '
                "NumPy, torch, JAX, CuPy, Dask and array-api-strict arrays, through "
                "array-api-compat (vectorized style only; gelu and erf refused, "
                "since the array API standard has no erf)."
            ),
            "enum": list(TARGETS),
            "default": DEFAULT_TARGET,
        },
        "worked_point": {
            "description": (
                "Optional: numbers the derivation is evaluated at, one entry per "
                "input and parameter, in its shape."
            ),
            "type": "object",
        },
    }
    # Every field of both forms at the top, for an editor's completion and hover
    # (taplo looks into properties, not into if/then/else); each form then allows
    # only its own fields, with derive's messages' lists.
    every_field = {
        **shared,
        **layers_fields,
        "sizes": sizes,
        "inputs": inputs,
        "parameters": parameters,
        "equations": equations_table,
    }
    undescribed = {*spec.TOP_FIELDS, *equations.TOP_FIELDS} - every_field.keys()
    if undescribed:  # a field a reader took on, which needs its description here
        raise RuntimeError(f"no schema for the spec fields {sorted(undescribed)}")
    return {
        "$schema": DIALECT,
        "title": "derive network spec",
        "description": (
            "A network spec for derive, in one of two forms: a stack of [[layers]] "
            "with a [loss], or the network as equations in NumPy notation "
            "([sizes], [inputs], [parameters], [equations]). A spec with "
            "[equations] and no [[layers]] is an equation spec; any other is a "
            "[[layers]] spec. This schema checks each field's type, its allowed "
            "values and limits, and refuses unknown fields; derive checks the rest "
            "(each field's description says what), and everything this schema "
            "refuses, derive refuses too."
        ),
        "type": "object",
        "properties": every_field,
        "if": {"required": ["equations"], "not": {"required": ["layers"]}},
        "then": ref("equationSpec"),
        "else": ref("layersSpec"),
        "$defs": {
            "layersSpec": {
                "description": (
                    "A [[layers]] spec: a fully connected network, input side first."
                ),
                "propertyNames": {"enum": list(spec.TOP_FIELDS)},
                "required": ["name", "input", "layers", "loss"],
                "properties": {"worked_point": layers_worked_point},
                "allOf": per_target,
            },
            "equationSpec": {
                "description": (
                    "An equation spec: sizes, inputs and parameters by axis names, "
                    "and every value as an equation, in order."
                ),
                "propertyNames": {"enum": list(equations.TOP_FIELDS)},
                "required": ["name", "parameters", "equations"],
                "properties": {"worked_point": equation_worked_point},
            },
            "moduleName": module_name,
            "identifier": identifier,
            "numbers": numbers,
            "layer": layer,
            "loss": loss,
        },
    }


#: The fields only one activation or loss takes (derive.spec._Reader.only_for), and
#: the ones it requires besides: a custom formula's expression.
OWNED = {
    "slope": "leaky_relu",
    "delta": "huber",
    "expression": "custom",
    "function_name": "custom",
}
REQUIRED_BY = {"custom": ["expression"]}


def fields_by_value(
    key: str, values: tuple[str, ...], fields: tuple[str, ...], owned: dict[str, str]
) -> list[dict[str, Any]]:
    """For each value of ``key`` (an activation, a loss kind), the fields a table
    with it may hold: those no value owns, and its own. The values that own none
    share one rule. An editor then says '"slope" is not one of ["width",
    "activation", "bias"]' on a relu layer, as derive says "only leaky_relu takes
    slope"."""
    shared = [f for f in fields if f not in owned]
    groups: dict[tuple[str, ...], list[str]] = {}
    for value in values:
        own = tuple(f for f in fields if owned.get(f) == value)
        groups.setdefault(own, []).append(value)
    rules = []
    for own, members in groups.items():
        then: dict[str, Any] = {"propertyNames": {"enum": [*shared, *own]}}
        required = [r for m in members for r in REQUIRED_BY.get(m, []) if r in own]
        if required:
            then["required"] = required
        condition = {"const": members[0]} if len(members) == 1 else {"enum": members}
        rules.append(
            {"if": {"properties": {key: condition}, "required": [key]}, "then": then}
        )
    return rules
