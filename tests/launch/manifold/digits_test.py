"""Smoke test of the digits launcher on its tiny preset."""
import numpy as np

from launch import app
from launch.manifold import digits as experiment_module
from launch.manifold.configs import digits as config_module


def test_smoke(tmp_path):
  summary = app.execute(experiment_module.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for name in ("lle_error", "isomap_error", "tsne_error"):
    # Five classes: chance is 0.8; the sklearn baselines beat it clearly even at the smoke size.
    assert 0.0 <= summary[name] < 0.7, (name, summary[name])
  # LL-LVM runs only 5 EM iterations here; the check is that its pipeline produces a valid error.
  assert 0.0 <= summary["lllvm_error"] <= 1.0
  assert np.all(np.isfinite(list(summary["lllvm_bounds"].values())))
  assert (tmp_path / "figures" / "embeddings.png").exists()
  assert (tmp_path / "table.md").exists()
