"""Smoke test of launch.latent_dynamics.lds_vs_kalman."""
import math

from launch import app
from launch.latent_dynamics import lds_vs_kalman as ld_lds_vs_kalman
from launch.latent_dynamics.configs import lds_vs_kalman as config_module


def test_smoke(tmp_path):
  summary = app.execute(ld_lds_vs_kalman.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for k in ("mean_rel_err", "var_max_rel_err", "elbo_gap_per_step"):
    assert math.isfinite(summary[k])
  # Even 300 steps get close to the exact smoother on 20 steps.
  assert summary["mean_rel_err"] < 0.1
  assert summary["var_mean_rel_err"] < 0.2
  assert -0.05 < summary["elbo_gap_per_step"] < 0.5
  assert (tmp_path / "figures" / "posterior_vs_kalman.png").exists()
