"""A built wheel carries its templates and the built-in spec, and works from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import GENERATED, ROOT


def test_wheel_generates_the_committed_seed_output_from_another_folder(tmp_path):
    pytest.importorskip("hatchling")
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("derive-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "derive/templates/module.py.j2" in names
    assert "derive/specs/seed.toml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "derive"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ["seed_mlp.py", "seed_mlp.tex", "seed_mlp.md"]:
        assert (work / "generated" / name).read_bytes() == (
            GENERATED / name
        ).read_bytes()
