"""Smoke test of launch.latent_dynamics.plds."""
import math

import pytest

from launch import app
from launch.latent_dynamics import plds as ld_plds
from launch.latent_dynamics.configs import plds as config_module


@pytest.mark.slow  # 24 s in CI (session 16); fast counterparts: tests/latent_dynamics/
# models_test.py and train_test.py (the Poisson LDS and its SGVB training)
def test_smoke(tmp_path):
  summary = app.execute(ld_plds.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for kind in ("mean_field", "structured"):
    assert math.isfinite(summary[f"elbo_per_step_{kind}"])
    # Even the tiny fit recovers part of the latent (R^2 of a random map would be ~0).
    assert 0.2 < summary[f"r2_{kind}"] <= 1.0
  assert (tmp_path / "figures" / "plds_latent_recovery.png").exists()
