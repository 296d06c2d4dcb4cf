"""Executes every notebook in notebooks/ (jupytext percent-format .py files) in a fresh Jupyter
kernel, so that the tours cannot rot: a cell that raises, including a notebook's closing
`assert`, fails the test. Each notebook is its own parametrised case, so a new one is picked up
by adding the file.
"""
import pathlib

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
CELL_TIMEOUT_S = 600  # Generous: the shared CI CPU runs several jobs at once (README).


def test_every_package_has_a_tour():
  names = {p.stem for p in NOTEBOOKS}
  for package in ("stochastic_graphs", "latent_dynamics", "manifold", "calcium", "envs",
                  "agents"):
    assert f"{package}_tour" in names, f"notebooks/{package}_tour.py is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
  # The kernel inherits this process's environment: pin the inline backend, so a backend or
  # path set by an earlier test in the same worker cannot turn the figures off.
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  monkeypatch.delenv("PYTHONPATH", raising=False)
  notebook = jupytext.read(path)
  assert any(c.cell_type == "markdown" for c in notebook.cells), f"{path.name}: no markdown cell"
  client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                   resources={"metadata": {"path": str(ROOT)}})
  try:
    client.execute()
  except nbclient.exceptions.CellExecutionError as e:
    pytest.fail(f"{path.name} failed:\n{e}")
  images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert images, f"{path.name} made no plot"
