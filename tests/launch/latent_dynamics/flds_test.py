"""Smoke test of launch.latent_dynamics.flds."""
import math

import pytest

from launch import app
from launch.latent_dynamics import flds as ld_flds
from launch.latent_dynamics.configs import flds as config_module


# 37-41 s of make test; fast counterparts: tests/latent_dynamics/ (fLDS model and training)
# and tests/launch/configs_test.py.
@pytest.mark.slow
def test_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(ld_flds.experiment, config, tmp_path, progress=False)
  for kind in ("flds", "plds"):
    for d in config.latent_dims:
      one_step, loo = summary[f"{kind}_one_step_d{d}"], summary[f"{kind}_loo_d{d}"]
      assert math.isfinite(one_step) and math.isfinite(loo)
      # Log-likelihoods of counts per bin: negative, and far better than a wild model (about
      # -0.2 per neuron-bin for these rates; anything below -5 would be broken).
      assert -5.0 < loo < 0.0
      assert -5.0 * config.num_neurons < one_step < 0.0
  assert (tmp_path / "figures" / "flds_vs_plds.png").exists()
