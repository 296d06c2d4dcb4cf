"""Smoke test of the swiss-roll launcher on its tiny preset."""
import numpy as np

from launch import app
from launch.manifold import swiss_roll as experiment_module
from launch.manifold.configs import swiss_roll as config_module


def test_smoke(tmp_path):
  summary = app.execute(experiment_module.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  assert np.isfinite(summary["final_bound"])
  assert summary["bound_monotone"]
  assert 0.5 < summary["trustworthiness"] <= 1.0
  assert 0.0 <= summary["spearman"] <= 1.0
  assert (tmp_path / "figures" / "embedding.png").exists()
  assert (tmp_path / "figures" / "tangent_planes.png").exists()


def test_smoke_accelerated(tmp_path):
  config = config_module.get_config("smoke")
  config.accelerate = True
  summary = app.execute(experiment_module.experiment, config, tmp_path, progress=False)
  assert np.isfinite(summary["final_bound"])
  assert summary["bound_monotone"]
  assert 0.5 < summary["trustworthiness"] <= 1.0
