"""Smoke test of launch.latent_dynamics.speed_vs_dynamax (the benchmark as an experiment)."""
import math

from launch import app
from launch.latent_dynamics import speed_vs_dynamax
from launch.latent_dynamics.configs import speed_vs_dynamax as config_module


def test_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(speed_vs_dynamax.experiment, config, tmp_path, progress=False)
  (t,) = config.lengths
  # Both compute the same exact posterior: the means agree to float32 round-off.
  assert summary[f"mean_rel_diff/T{t}"] < 1e-4
  assert summary[f"speedup_over_dynamax/T{t}"] == (summary[f"dynamax_s/T{t}"]
                                                   / summary[f"ours_s/T{t}"])
  assert math.isfinite(summary[f"speedup_over_dynamax/T{t}"])
  # The smoke preset leaves dynamax's parallel smoother out, so no ratio is made up for it.
  assert f"speedup_parallel_over_dynamax_parallel/T{t}" not in summary
  assert (tmp_path / "bench" / "latent_dynamics_vs_dynamax.json").exists()
