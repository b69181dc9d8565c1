"""examples/walkthrough.ipynb runs from top to bottom (nbclient), in a kernel of this
very environment, and is committed without outputs."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ipykernel_kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOK = ROOT / "examples" / "walkthrough.ipynb"
#: A kernel registered for the test only, running this interpreter (sys.executable):
#: the default "python3" could be any Python a machine has registered.
KERNEL = "derive-tests"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert cell.metadata == {}, cell.source[:60]
    assert set(notebook.metadata) == {"kernelspec", "language_info"}
    assert notebook.metadata.kernelspec.name == "python3"
    # The file is as nbformat writes it, so a re-save in Jupyter changes nothing else.
    assert (
        NOTEBOOK.read_text()
        == json.dumps(json.loads(NOTEBOOK.read_text()), indent=1, ensure_ascii=False)
        + "\n"
    )


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """Register a kernel running ``sys.executable``, found before any other."""
    prefix = tmp_path / "jupyter"
    ipykernel_kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline plots
    spec = json.loads(
        (prefix / "share/jupyter/kernels" / KERNEL / "kernel.json").read_text()
    )
    assert spec["argv"][0] == sys.executable
    return KERNEL


def test_the_notebook_runs(kernel):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell("import sys\nprint(sys.executable, end='')")
    )
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell, if any cell fails
    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    assert outputs[-1][0]["text"] == sys.executable  # the kernel is this environment

    def shown(cell_outputs, kind):
        return [o["data"][kind] for o in cell_outputs if kind in o.get("data", {})]

    # The derivation and one gradient render as Markdown with their math.
    document = shown(outputs[1], "text/markdown")
    assert document and document[0].startswith("<!--")
    assert r"\frac{\partial L}{\partial W^{(1)}_{i j}}" in document[0]
    gradient = shown(outputs[2], "text/markdown")
    assert gradient and gradient[0].startswith("### $W^{(1)}$")
    worked = "".join(o.get("text", "") for o in outputs[3])
    assert "agrees with SymPy's exact numbers" in worked
    trained = "".join(o.get("text", "") for o in outputs[4])
    assert "after 30 epochs" in trained
    assert shown(outputs[5], "image/png")
