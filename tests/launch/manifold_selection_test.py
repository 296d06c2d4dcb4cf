"""Smoke test of the model-selection launcher on its tiny preset."""
import numpy as np

from launch import app
from launch import manifold_selection as experiment_module
from launch.configs import manifold_selection as config_module


def test_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(experiment_module.experiment, config, tmp_path, progress=False)
  assert np.all(np.isfinite(summary["bounds_vs_k"])) and len(summary["bounds_vs_k"]) == 2
  assert summary["best_k"] in config.ks and summary["best_dx"] in config.dxs
  # The short-circuit edge joins two layers of the roll: the bound must drop.
  assert summary["bound_drop_short_circuit"] > 0
  assert (tmp_path / "figures" / "selection.png").exists()
