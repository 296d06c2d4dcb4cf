"""Smoke test of the out-of-sample launcher on its tiny preset."""
import numpy as np

from launch import app
from launch.manifold import out_of_sample as experiment_module
from launch.manifold.configs import out_of_sample as config_module


def test_smoke(tmp_path):
  summary = app.execute(experiment_module.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  assert np.isfinite(summary["extension_rel_error"])
  # Placed within the embedding's scale of where refitting puts them.
  assert summary["extension_rel_error"] < 1.0
  assert (tmp_path / "figures" / "out_of_sample.png").exists()
