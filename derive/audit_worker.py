"""The child process of ``derive audit``: import the user's module, call its functions.

The hand-written module is the user's own code: it may loop forever at import, call
``sys.exit``, print, or take the interpreter down. So ``derive audit`` never imports
it in its own process; it starts this file as a script in a fresh interpreter and
talks to it through a protocol kept deliberately small, so that there is little to go
wrong on either side:

- in: one JSON request on stdin (which functions to check, with what arguments, and
  derive's own generated module as source text), and the points as arrays in an
  ``.npz`` file (``allow_pickle=False``: nothing in it can run code);
- out: one JSON object per line on the original stdout, flushed as soon as each
  function is checked. The user's ``print`` goes to stderr instead (fd 1 is pointed
  there), so it cannot corrupt the stream. The parent reads line by line with a time
  limit, so it always knows which function was running when the time ran out, and
  can restart the child without it.

Everything numeric (relative errors, shapes, the alternative conventions at a kink) is
decided here, next to the calls, so that only a few numbers per point travel back,
and the arrays only for the first failing point of each function.

This file imports nothing from derive (it runs with the interpreter's ``-P`` flag, so
neither does derive's folder shadow the user's imports); ``derive.audit`` imports it
to run the same checks in-process on a module object (:func:`run`).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import numpy

#: The name a problem-set gradient function's first argument has in derive's module.
VALUES = "variable_dict"
#: In the argument list of a call (``request["calls"]``): the dict of parameters.
PARAMS = "<params>"


class CallFailed(Exception):
    """A call raised: carries the exception as one line, ``TypeName: message``."""


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    name = type(error).__name__
    if isinstance(error, SystemExit):
        return f"SystemExit: sys.exit({error.code!r}) was called"
    return f"{name}: {text}" if text else name


def rebound(function: types.FunctionType, namespace: dict[str, Any]) -> Any:
    """``function`` with the same code, reading its globals from ``namespace``."""
    clone = types.FunctionType(
        function.__code__,
        namespace,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__dict__.update(function.__dict__)
    return clone


def own_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """The plain functions defined at the top level of ``module`` itself."""
    namespace = vars(module)
    return {
        name: value
        for name, value in namespace.items()
        if isinstance(value, types.FunctionType) and value.__globals__ is namespace
    }


def _names_in(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # comprehensions, nested functions
            yield from _names_in(constant)


def references(module: types.ModuleType, stop: set[str]) -> dict[str, list[str]]:
    """For each function of ``module``, the module's functions its code calls,
    followed through the helpers but not through the functions in ``stop``."""
    functions = own_functions(module)
    known = set(functions) | stop  # a gradient function it calls may be missing
    direct = {
        name: {n for n in _names_in(f.__code__) if n in known and n != name}
        for name, f in functions.items()
    }
    result = {}
    for name in functions:
        seen: set[str] = set()
        todo = list(direct[name])
        while todo:
            other = todo.pop()
            if other in seen:
                continue
            seen.add(other)
            if other not in stop and other in direct:
                todo.extend(direct[other])
        result[name] = sorted(seen)
    return result


def load_file(path: str, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_source(source: str, name: str) -> types.ModuleType:
    """derive's generated module, from its text (it depends on NumPy alone)."""
    module = types.ModuleType(name)
    module.__dict__["__name__"] = name
    sys.modules[name] = module  # dataclasses and typing look modules up by name
    exec(compile(source, f"<derive: {name}>", "exec"), module.__dict__)
    return module


def as_number_array(value: Any) -> numpy.ndarray | str:
    """``value`` as a float64 array, or a sentence saying why it is not one."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        return f"returns {type(value).__name__}"
    try:
        array = numpy.asarray(value, dtype=numpy.float64)
    except (TypeError, ValueError) as error:
        return f"returns {type(value).__name__}, not numbers ({one_line(error)})"
    return array


def relative_error(actual: Any, expected: Any) -> tuple[float, str | None]:
    """The largest difference, relative to the largest element of either array.

    Relative to whole arrays rather than element by element, so that a correct
    result summed in another order (loops instead of ``@``) is not flagged where one
    element cancels to nearly 0; and to the larger of the two, so that a value that
    should be 0 gives 1, not infinity. Returns ``inf`` and a note for a value of the
    wrong shape or kind; a size-1 array stands for a number.
    """
    expected_array = numpy.asarray(expected, dtype=numpy.float64)
    array = as_number_array(actual)
    if isinstance(array, str):
        return numpy.inf, array
    if array.shape != expected_array.shape:
        if not (array.size == expected_array.size == 1):
            return (
                numpy.inf,
                f"returns shape {array.shape}, expected {expected_array.shape}",
            )
        array = array.reshape(expected_array.shape)
    if not numpy.all(numpy.isfinite(array)):
        if numpy.array_equal(array, expected_array, equal_nan=True):
            return 0.0, None
        return numpy.inf, "returns nan or inf"
    difference = float(numpy.max(numpy.abs(array - expected_array), initial=0.0))
    if difference == 0.0:
        return 0.0, None
    scale = max(
        float(numpy.max(numpy.abs(expected_array), initial=0.0)),
        float(numpy.max(numpy.abs(array), initial=0.0)),
    )
    return difference / scale, None


def plain(value: Any) -> Any:
    """``value`` as JSON: arrays as nested lists, anything else as its repr."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    array = as_number_array(value)
    if isinstance(array, str):
        return repr(value)[:200]
    return array.tolist()


_SIGNATURES: dict[Any, list[inspect.Parameter] | None] = {}


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """``function``'s parameters, looked up once (``inspect.signature`` is slow)."""
    key = getattr(function, "__code__", function)
    if key not in _SIGNATURES:
        try:
            _SIGNATURES[key] = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            _SIGNATURES[key] = None
    return _SIGNATURES[key]


def call(function: Callable[..., Any], supplied: Mapping[str, Any]) -> Any:
    """Call ``function`` with the arguments it names, found in ``supplied``.

    Matched by parameter name, so ``W2`` and ``y_observed`` may come in any order; a
    first parameter derive does not know (``vd``, ``values``) is given the dict of
    forward values. Every array is a copy, so that a function writing into its
    arguments (``variable_dict["r1"][r1 < 0] = 0``) cannot change the next call's.
    """
    supplied = {name: _fresh(value) for name, value in supplied.items()}
    parameters = _parameters(function)
    if parameters is None:
        return function(*supplied.values())
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for index, parameter in enumerate(parameters):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name in supplied:
            value = supplied[parameter.name]
        elif index == 0 and VALUES in supplied:
            value = supplied[VALUES]
        elif parameter.default is not parameter.empty:
            continue
        else:
            known = ", ".join(supplied)
            raise TypeError(
                f"it takes an argument {parameter.name!r}, which derive cannot "
                f"supply (it supplies {known})"
            )
        if parameter.kind == parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            keywords[parameter.name] = value
    return function(*positional, **keywords)


def invoke(
    function: Callable[..., Any],
    arguments: Sequence[str] | None,
    arrays: Mapping[str, Any],
    parameters: Sequence[str],
    values: Mapping[str, Any] | None = None,
) -> Any:
    """Call ``function`` the way the module's API takes it: ``arguments`` lists its
    positional arguments, each the name of an array of the point (``arrays``), of a
    forward value (``values``), or :data:`PARAMS` for the dict of ``parameters``
    (``forward(params, x, y)``); None matches ``arrays`` by name (``mlp(x, W0)``)."""
    if arguments is None:
        return call(function, arrays)
    given: list[Any] = []
    for name in arguments:
        if name == PARAMS:
            given.append({p: arrays[p] for p in parameters})
        elif name in arrays:
            given.append(arrays[name])
        else:
            assert values is not None, name
            given.append(values[name])
    return function(*_fresh(given))


def _fresh(value: Any) -> Any:
    """A copy of ``value``'s arrays (and of the dicts and lists holding them)."""
    if isinstance(value, numpy.ndarray):
        return value.copy()
    if isinstance(value, Mapping):
        return {key: _fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    return value


def attempt(function: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
    """``function(*args)``, and the exception it raised as one line (or None)."""
    try:
        return function(*args), None
    except BaseException as error:  # the user's code: SystemExit included
        if isinstance(error, KeyboardInterrupt):
            raise
        return None, one_line(error)


class Checker:
    """The checks of one request, on an imported module."""

    def __init__(
        self,
        module: types.ModuleType,
        request: Mapping[str, Any],
        points: Sequence[Mapping[str, Any]],
    ) -> None:
        self.module = module
        self.request = request
        self.points = points
        self.reference = load_source(request["reference"], "_derive_reference")
        self.conventions = [
            self._alternative(convention["overrides"], index)
            for index, convention in enumerate(request["conventions"])
        ]
        self.gradient_names = [g["name"] for g in request["gradients"]]
        for name in request.get("hung", []):
            setattr(module, name, _hung(name, request["timeout"]))
        self._user_values: dict[int, tuple[Any, str | None]] = {}
        self._derive_values: dict[tuple[int, int], Any] = {}

    def _alternative(
        self, overrides: Mapping[str, float], index: int
    ) -> types.ModuleType:
        """derive's module with other values at the kink (``relu_derivative(0) = 1``)."""
        module = load_source(self.request["reference"], f"_derive_convention_{index}")
        for name, value in overrides.items():
            setattr(module, name, _at_zero(getattr(module, name), value))
        return module

    # Arguments ------------------------------------------------------------------

    def arguments(self, point: Mapping[str, Any]) -> dict[str, Any]:
        return {name: point[name] for name in self.request["given"]}

    def invoke(
        self,
        function: Callable[..., Any],
        kind: str,
        point: Mapping[str, Any],
        values: Mapping[str, Any] | None = None,
    ) -> Any:
        """``function`` called as the module's ``kind`` (forward, loss, gradients)."""
        return invoke(
            function,
            self.request["calls"][kind],
            self.arguments(point),
            self.request["parameters"],
            values,
        )

    def derive_values(self, point: Mapping[str, Any], module: Any = None) -> Any:
        """derive's forward pass at ``point`` (computed once per point and module)."""
        module = module or self.reference
        key = (id(point), id(module))
        if key not in self._derive_values:
            forward = getattr(module, self.request["forward"])
            self._derive_values[key] = self.invoke(forward, "forward", point)
        return self._derive_values[key]

    def user_values(self, index: int) -> tuple[Any, str | None]:
        """The user's forward pass at point ``index`` (derive's if it has none)."""
        if index not in self._user_values:
            point = self.points[index]
            forward = getattr(self.module, self.request["forward"], None)
            if forward is None:
                self._user_values[index] = (self.derive_values(point), None)
            else:
                values, raised = attempt(self.invoke, forward, "forward", point)
                if raised is not None:
                    raised = f"{self.request['forward']} raised {raised}"
                self._user_values[index] = (values, raised)
        return self._user_values[index]

    # Checks ---------------------------------------------------------------------

    def check(self, name: str) -> dict[str, Any]:
        kind, _, target = name.partition(":")
        if kind == "forward":
            return self.check_forward()
        if kind == "helper":
            return self.check_helper(target)
        if kind == "loss":
            return self.check_loss()
        if kind == "gradient":
            return self.check_gradient(target)
        if kind == "generic":
            return self.check_generic()
        raise ValueError(f"unknown check {name!r}")

    def _record(
        self,
        outcomes: list[dict[str, Any]],
        index: int,
        actual: Any,
        raised: str | None,
        expected: Any,
        alternatives: Callable[[int], Any] | None,
        kink: bool,
    ) -> None:
        """The outcome at one point: the error and, at a kink, the conventions
        under which it is right: ``alternatives(c)`` gives (the user's value, derive's
        value) with convention ``c`` taken at the kink."""
        rtol = self.request["rtol"]
        if raised is not None:
            outcomes.append({"raised": raised})
            return
        error, note = relative_error(actual, expected)
        outcome: dict[str, Any] = {"error": error}
        if note:
            outcome["note"] = note
        if error > rtol and kink and alternatives is not None:
            matched = []
            for c in range(len(self.conventions)):
                (theirs, raised_there), other = alternatives(c)
                if raised_there is None and relative_error(theirs, other)[0] <= rtol:
                    matched.append(c)
            outcome["conventions"] = matched
        outcomes.append(outcome)

    def _failure(
        self, outcomes: list[dict[str, Any]], values: Callable[[int], tuple[Any, Any]]
    ) -> dict[str, Any] | None:
        """Expected and actual at the first point that fails (points come simplest
        first), preferring one where derive's value is not all zeros: a slip shows
        best where something should flow."""
        rtol = self.request["rtol"]
        first = None
        for index, outcome in enumerate(outcomes):
            if "raised" in outcome:
                return {"point": index, "raised": outcome["raised"]}
            if outcome["error"] > rtol and not outcome.get("conventions"):
                expected, actual = values(index)
                failure = {
                    "point": index,
                    "expected": plain(expected),
                    "actual": plain(actual),
                    "error": outcome["error"],
                    "note": outcome.get("note"),
                }
                if _nonzero(expected):
                    return failure
                first = first or failure
        return first

    def check_forward(self) -> dict[str, Any]:
        forward = getattr(self.module, self.request["forward"])
        names = self.request["values"]
        outcomes: list[dict[str, Any]] = []
        rtol = self.request["rtol"]
        for point in self.points:
            values, raised = attempt(self.invoke, forward, "forward", point)
            if raised is not None:
                outcomes.append({"raised": raised})
                continue
            expected = self.derive_values(point)
            if not isinstance(values, Mapping):
                outcomes.append(
                    {
                        "error": numpy.inf,
                        "note": f"returns {type(values).__name__}, "
                        "not a dict of values",
                    }
                )
                continue
            worst, notes = 0.0, []
            for name in names:
                if name not in values:
                    worst = numpy.inf
                    notes.append(f"its dict has no {name!r}")
                    continue
                error, note = relative_error(values[name], expected[name])
                worst = max(worst, error)
                if error > rtol:
                    notes.append(f"{name}: {note}" if note else f"{name} differs")
            outcome: dict[str, Any] = {"error": worst}
            if notes:
                outcome["note"] = "; ".join(notes)
            outcomes.append(outcome)

        def values_at(index: int) -> tuple[Any, Any]:
            point = self.points[index]
            expected = self.derive_values(point)
            actual = self.invoke(forward, "forward", point)
            wrong = [
                n
                for n in names
                if n not in actual or relative_error(actual[n], expected[n])[0] > rtol
            ]
            return (
                {n: plain(expected[n]) for n in wrong},
                {n: plain(actual.get(n)) for n in wrong},
            )

        return {"outcomes": outcomes, "failure": self._failure(outcomes, values_at)}

    def check_helper(self, name: str) -> dict[str, Any]:
        """An activation or its derivative, one number at a time, as the problem
        set's ``relu(x)`` takes them."""
        mine = getattr(self.module, name)
        theirs = getattr(self.reference, name)
        inputs = self.request["helper_inputs"]
        outcomes: list[dict[str, Any]] = []
        for value in inputs:
            actual, raised = attempt(mine, float(value))
            expected = theirs(float(value))

            def alternative(
                c: int, v: float = value, a: Any = actual
            ) -> tuple[tuple[Any, str | None], Any]:
                return (a, None), getattr(self.conventions[c], name)(float(v))

            self._record(
                outcomes, 0, actual, raised, expected, alternative, value == 0.0
            )
        failure = self._failure(
            outcomes,
            lambda i: (theirs(float(inputs[i])), mine(float(inputs[i]))),
        )
        if failure is not None:
            failure["input"] = inputs[failure.pop("point")]
        at_zero, _ = attempt(mine, 0.0)
        return {
            "outcomes": outcomes,
            "failure": failure,
            "at_zero": plain(at_zero) if at_zero is not None else None,
        }

    def check_loss(self) -> dict[str, Any]:
        """``loss``, called as the module's API takes it: ``loss(y_predicted,
        y_observed)`` with derive's prediction, or ``loss(params, x, y)``."""
        mine = self.module.loss

        def losses(index: int) -> tuple[Any, Any]:
            point = self.points[index]
            values = self.derive_values(point)
            expected = self.invoke(self.reference.loss, "loss", point, values)
            return expected, self.invoke(mine, "loss", point, values)

        outcomes: list[dict[str, Any]] = []
        for point in self.points:
            values = self.derive_values(point)
            actual, raised = attempt(self.invoke, mine, "loss", point, values)
            expected = self.invoke(self.reference.loss, "loss", point, values)
            self._record(outcomes, 0, actual, raised, expected, None, False)
        return {"outcomes": outcomes, "failure": self._failure(outcomes, losses)}

    def _isolated(self, name: str, callees: types.ModuleType) -> Any:
        """The user's function ``name``, calling ``callees``' gradient functions
        instead of its own; the helpers it calls (its ``relu_derivative``) stay its
        own, and are rebound so that they too reach ``callees``."""
        function = getattr(self.module, name)
        if not isinstance(function, types.FunctionType):
            return function  # not a plain function: it can only be called as written
        namespace = dict(vars(self.module))
        for other in self.gradient_names:
            if other != name:
                namespace[other] = _adapted(
                    getattr(callees, other), getattr(self.module, other, None)
                )
        for helper, value in own_functions(self.module).items():
            if helper not in self.gradient_names:
                namespace[helper] = rebound(value, namespace)
        namespace[name] = isolated = rebound(function, namespace)
        return isolated

    def check_gradient(self, name: str) -> dict[str, Any]:
        """A ``d_loss_d_*`` function, as written and isolated."""
        written = getattr(self.module, name)
        isolated = self._isolated(name, self.reference)
        alternatives = [self._isolated(name, c) for c in self.conventions]
        results: dict[str, Any] = {}
        for mode in ("written", "isolated"):
            outcomes: list[dict[str, Any]] = []
            for index, point in enumerate(self.points):
                arguments = self.arguments(point)
                expected = call(
                    getattr(self.reference, name),
                    {VALUES: self.derive_values(point), **arguments},
                )
                if mode == "written":
                    values, raised = self.user_values(index)
                    function = written
                else:
                    values, raised = self.derive_values(point), None
                    function = isolated
                actual = None
                if raised is None:
                    actual, raised = attempt(
                        call, function, {VALUES: values, **arguments}
                    )

                def alternative(
                    c: int,
                    p: Any = point,
                    a: Any = arguments,
                    mine: Any = actual,
                    mode: str = mode,
                ) -> tuple[tuple[Any, str | None], Any]:
                    convention = self.conventions[c]
                    supplied = {VALUES: self.derive_values(p, convention), **a}
                    other = call(getattr(convention, name), supplied)
                    if mode == "written":
                        return (mine, None), other
                    # isolated: derive's callees take the same convention
                    return attempt(call, alternatives[c], supplied), other

                self._record(
                    outcomes,
                    index,
                    actual,
                    raised,
                    expected,
                    alternative,
                    point["__kink__"],
                )

            def values_at(index: int, mode: str = mode) -> tuple[Any, Any]:
                point = self.points[index]
                arguments = self.arguments(point)
                expected = call(
                    getattr(self.reference, name),
                    {VALUES: self.derive_values(point), **arguments},
                )
                if mode == "written":
                    values = self.user_values(index)[0]
                    function = written
                else:
                    values, function = self.derive_values(point), isolated
                return expected, call(function, {VALUES: values, **arguments})

            results[mode] = {
                "outcomes": outcomes,
                "failure": self._failure(outcomes, values_at),
            }
        return results

    def check_generic(self) -> dict[str, Any]:
        """``gradients(params, x, y)``: every parameter's gradient, from one call."""
        invoke = self.invoke
        mine = self.module.gradients
        parameters = self.request["parameters"]
        outcomes: dict[str, list[dict[str, Any]]] = {p: [] for p in parameters}
        calls: list[tuple[Any, Any]] = []
        for point in self.points:
            expected = invoke(self.reference.gradients, "gradients", point)
            actual, raised = attempt(invoke, mine, "gradients", point)
            calls.append((expected, actual))
            for p in parameters:
                value: Any = None
                note = raised
                if raised is None:
                    if not isinstance(actual, Mapping):
                        note = f"gradients returns {type(actual).__name__}, not a dict"
                    elif p not in actual:
                        note = f"the dict gradients returns has no {p!r}"
                    else:
                        value = actual[p]
                if note is not None and raised is None:
                    outcomes[p].append({"error": numpy.inf, "note": note})
                    continue

                def alternative(
                    c: int, at: Any = point, p: str = p, mine: Any = value
                ) -> tuple[tuple[Any, str | None], Any]:
                    other = invoke(self.conventions[c].gradients, "gradients", at)
                    return (mine, None), other[p]

                self._record(
                    outcomes[p],
                    0,
                    value,
                    raised,
                    expected[p],
                    alternative,
                    point["__kink__"],
                )
        result = {}
        for p in parameters:

            def values_at(index: int, p: str = p) -> tuple[Any, Any]:
                expected, actual = calls[index]
                return expected[p], actual.get(p) if isinstance(
                    actual, Mapping
                ) else actual

            result[p] = {
                "outcomes": outcomes[p],
                "failure": self._failure(outcomes[p], values_at),
            }
        return result


def _adapted(theirs: Callable[..., Any], mine: Any) -> Callable[..., Any]:
    """derive's function ``theirs``, callable the way the user's ``mine`` is called:
    the user may take ``(variable_dict, y_observed, W2, W1)`` where derive takes
    ``(variable_dict, W1, W2, y_observed)``; arguments are matched by name."""
    parameters = _parameters(mine) if callable(mine) else None
    if not parameters:
        return theirs
    signature = inspect.Signature(parameters)
    first = parameters[0].name

    def adapted(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        supplied = dict(bound.arguments)
        supplied.setdefault(VALUES, supplied.pop(first))
        return call(theirs, supplied)

    return adapted


def checked_function(check: str, request: Mapping[str, Any]) -> str:
    """The module function a check calls: ``gradient:d_loss_d_W1`` calls
    ``d_loss_d_W1``, ``forward`` the forward function, ``generic`` ``gradients``."""
    kind, _, name = check.partition(":")
    special = {"forward": request["forward"], "generic": "gradients", "loss": "loss"}
    return str(special.get(kind, name))


def _nonzero(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_nonzero(v) for v in value.values())
    array = as_number_array(value)
    return not isinstance(array, str) and bool(numpy.any(array != 0))


def _at_zero(function: Callable[[Any], Any], value: float) -> Callable[[Any], Any]:
    """``function`` with ``value`` at exactly 0: another convention at a kink."""

    def convention(x: Any) -> Any:
        if numpy.ndim(x) == 0:
            return value if x == 0 else function(x)
        result = numpy.asarray(function(x))
        return numpy.where(numpy.asarray(x) == 0, result.dtype.type(value), result)

    return convention


def _hung(name: str, seconds: float) -> Callable[..., Any]:
    def hung(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name} did not return within {seconds:g} s")

    return hung


def describe(module: types.ModuleType, request: Mapping[str, Any]) -> dict[str, Any]:
    """What the module defines: where each function is, and what it calls."""
    defined: dict[str, Any] = {}
    for name, value in vars(module).items():
        if not callable(value) or name.startswith("__"):
            continue
        entry: dict[str, Any] = {"callable": True}
        try:
            lines, line = inspect.getsourcelines(value)
            entry.update(
                file=inspect.getsourcefile(value), line=line, text=lines[0].rstrip()
            )
        except (OSError, TypeError):
            pass
        defined[name] = entry
    stop = {g["name"] for g in request["gradients"]}
    return {"defined": defined, "references": references(module, stop)}


def load_points(path: str) -> list[dict[str, Any]]:
    """The points from the parent's ``.npz``: ``{index}/{name}`` arrays."""
    points: dict[int, dict[str, Any]] = {}
    with numpy.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            index, _, name = key.partition("/")
            array = archive[key]
            value = array.item() if array.ndim == 0 else array
            points.setdefault(int(index), {})[name] = value
    return [points[i] for i in sorted(points)]


def run(
    module: types.ModuleType,
    request: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    send: Callable[[dict[str, Any]], None],
) -> None:
    """Check ``module``: send what it defines, then one result per check."""
    described = describe(module, request)
    send({"event": "imported", **described})
    checker = Checker(module, request, points)
    for name in request["checks"]:
        if checked_function(name, request) not in described["defined"]:
            send({"event": "skipped", "check": name})  # missing: the parent says so
            continue
        result, raised = attempt(checker.check, name)
        if raised is not None:
            result = {"crashed": raised}
        send({"event": "checked", "check": name, "result": result})
    send({"event": "done"})


def main() -> None:
    # The result stream is a copy of fd 1; fd 1 itself then points at stderr, so the
    # user's prints (even from C code) cannot interleave with it.
    stream: TextIO = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.read())

    def send(message: dict[str, Any]) -> None:
        stream.write(json.dumps(message) + "\n")
        stream.flush()

    path = request["module"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        module = load_file(path, request["module_name"])
    except BaseException as error:  # the user's import: SystemExit included
        send({"event": "import_failed", "error": one_line(error)})
        return
    run(module, request, load_points(request["points"]), send)


if __name__ == "__main__":
    main()
