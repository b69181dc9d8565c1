"""What a type checker sees of derive and of the modules it writes, from a user's code.

derive ships ``py.typed``, so ``derive.build`` returns :class:`GeneratedModule` to
mypy instead of ``Any``. A generated module imported from its file takes its inputs
by name (``gradients(params, x, y_observed)``) and ``params`` as its own
``TypedDict``, ``Parameters``: a misspelled key or a wrong argument is a mypy error
in the user's code, before anything runs. Checked here by ``mypy --strict`` on two
small scripts next to copies of generated modules: one that must pass, one whose
every marked line must be reported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import GENERATED, ROOT

#: Calls as the README shows them, each typed; reveal_type lines say what mypy sees.
GOOD = """\
import numpy as np

import derive
import seed_equations
import seed_mlp
import seed_unrolled

params: seed_equations.Parameters = {
    "W0": np.array([1.0, 2.0, 3.0]),
    "W1": np.eye(3),
    "W2": [1.0, 3.0, -3.0],
}
by_position = seed_equations.gradients(params, 10.0, 180.0)
by_name = seed_equations.gradients(params, x=10.0, y_observed=180.0)
value = seed_equations.loss(params, 10.0, y_observed=np.float64(180.0))
values = seed_equations.forward(params, 10.0, 180.0)
update = {name: by_name[name] * 0.1 for name in by_name}

layers: seed_mlp.Parameters = {
    "W0": np.zeros(3),
    "W1": np.zeros((3, 3)),
    "W2": np.zeros(3),
}
seed_mlp.gradients(layers, 10.0, 180.0)
seed_mlp.loss(layers, 10.0, 180.0)
seed_mlp.loss(np.float64(200.0), 180.0)
seed_mlp.forward(layers, x=10.0)
seed_unrolled.gradients({"W0": [1.0, 2.0, 3.0], "W1": [[0.0] * 3] * 3, "W2": [0.0] * 3}, 1.0, 2.0)

module = derive.build("specs/seed.toml")
reveal_type(module)
reveal_type(module.gradients)
module.gradients({"W0": np.zeros(3)}, 10.0, 180.0)
shapes: dict[str, tuple[int, ...]] = module.PARAMETER_SHAPES
module.d_loss_d_W1
"""

#: One error a line, each line marked with what mypy must say there.
BAD = """\
import numpy as np

import derive
import seed_equations
import seed_mlp

seed_equations.gradients({"W0": np.zeros(3), "W1": np.eye(3), "W9": np.zeros(3)}, 1.0, 2.0)  # E: Extra key "W9"
seed_equations.gradients({"W0": np.zeros(3), "W1": np.eye(3)}, 1.0, 2.0)  # E: Missing key "W2"
params: seed_equations.Parameters = {"W0": np.zeros(3), "W1": np.eye(3), "W2": np.zeros(3)}
seed_equations.gradients(params, x=1.0, y=2.0)  # E: Unexpected keyword argument "y"
seed_equations.loss(params, 1.0)  # E: Missing positional argument "y_observed"
seed_equations.forward(params, 1.0, 2.0, 3.0)  # E: Too many arguments
seed_equations.gradients(params, None, 2.0)  # E: Argument 2 to "gradients" has incompatible type "None"
seed_mlp.gradients({"W0": np.zeros(3), "W1": np.eye(3), "W3": np.zeros(3)}, 1.0, 2.0)  # E: Extra key "W3"
seed_mlp.loss({"W0": np.zeros(3), "W1": np.eye(3), "W2": np.zeros(3)}, 1.0, 2.0, 3.0)  # E: No overload variant of "loss"
seed_mlp.gradients({"W0": np.zeros(3), "W1": np.eye(3), "W2": np.zeros(3)}, x=1.0)  # E: Missing positional argument "y"
derive.build(3)  # E: Argument 1 to "build" has incompatible type "int"
derive.build("specs/seed.toml").gradients()  # E: Too few arguments for "gradients" of "GeneratedModule"
"""


def mypy(folder: Path, *scripts: str) -> str:
    """``mypy --strict`` on ``scripts`` in ``folder``, as a user's project runs it."""
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *scripts],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """mypy's output on both scripts, one run (most of its time is NumPy's stubs)."""
    folder = tmp_path_factory.mktemp("user_project")
    for name in ("seed_equations", "seed_mlp", "seed_unrolled"):
        shutil.copy(GENERATED / f"{name}.py", folder)
    (folder / "good.py").write_text(GOOD)
    (folder / "bad.py").write_text(BAD)
    good = mypy(folder, "good.py")
    bad = mypy(folder, "bad.py")
    return good, bad


@pytest.mark.slow  # two mypy runs over NumPy's stubs and derive (30 s)
def test_typed_calls_pass_mypy_strict_and_build_returns_the_protocol(checked):
    good, _ = checked
    errors = [line for line in good.splitlines() if ": error:" in line]
    assert not errors, good
    assert 'Revealed type is "derive.api.GeneratedModule"' in good, good
    # Without py.typed both would be ``Any``, after an import-untyped error.
    signature = "def (typing.Mapping[str, Any], *inputs: Any, **named: Any)"
    assert f'Revealed type is "{signature} -> dict[str, Any]"' in good, good


@pytest.mark.slow
def test_misspelled_keys_and_wrong_arguments_are_mypy_errors(checked):
    """Every marked line of the bad script is reported, with what it says; no other
    line is."""
    _, bad = checked
    expected = {
        number: line.split("# E: ")[1]
        for number, line in enumerate(BAD.splitlines(), start=1)
        if "# E: " in line
    }
    reported: dict[int, list[str]] = {}
    for line in bad.splitlines():
        found = re.match(r"bad\.py:(\d+): error: (.*)", line)
        if found:
            reported.setdefault(int(found[1]), []).append(found[2])
    assert sorted(reported) == sorted(expected), bad
    for number, message in expected.items():
        assert any(message in m for m in reported[number]), (number, bad)


def test_the_package_is_marked_typed_in_the_wheel(tmp_path):
    """PEP 561: without ``derive/py.typed`` in the installed package, mypy treats
    derive as untyped (``build`` is ``Any``)."""
    pytest.importorskip("hatchling")
    assert (ROOT / "derive" / "py.typed").is_file()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hatchling",
            "build",
            "-t",
            "wheel",
            "-d",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    assert "derive/py.typed" in zipfile.ZipFile(wheel).namelist()
