"""Smoke test of launch.calcium.posterior_samples."""
import math

from launch import app
from launch.calcium import posterior_samples as calcium_posterior_samples
from launch.calcium.configs import posterior_samples as config_module


def test_smoke(tmp_path):
  summary = app.execute(calcium_posterior_samples.experiment, config_module.get_config("smoke"),
                        tmp_path, progress=False)
  assert -1 <= summary["posterior_corr"] <= 1
  assert summary["sample_count_ratio"] >= 0
  assert math.isfinite(summary["final_bound_per_frame"])
  assert (tmp_path / "figures" / "posterior_samples.png").exists()
