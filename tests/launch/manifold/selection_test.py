"""Smoke test of the model-selection launcher on its tiny preset."""
import numpy as np
import pytest

from launch import app
from launch.manifold import selection as experiment_module
from launch.manifold.configs import selection as config_module


# 36-52 s of make test; fast counterparts: tests/manifold/selection_test.py and
# tests/launch/configs_test.py.
@pytest.mark.slow
def test_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(experiment_module.experiment, config, tmp_path, progress=False)
  assert np.all(np.isfinite(summary["bounds_vs_k"])) and len(summary["bounds_vs_k"]) == 2
  assert summary["best_k"] in config.ks and summary["best_dx"] in config.dxs
  # At this size (60 points, 10 EM iterations) the fits are far from converged, so only the
  # pipeline is checked here; tests/manifold/selection_test.py checks that a short circuit
  # lowers the converged bound.
  assert np.isfinite(summary["bound_drop_short_circuit"])
  i, j = summary["short_circuit_edge"]
  assert i != j and 0 <= i < config.n and 0 <= j < config.n
  assert np.shape(summary["sheet_bounds_dx1_dx2"]) == (1, 2)
  assert np.all(np.isfinite(summary["helix_bounds_dx1_dx2"]))
  assert summary["sheet_picks_dx2"] in (0, 1) and summary["helix_picks_dx1"] in (0, 1)
  assert (tmp_path / "figures" / "selection.png").exists()
