"""Smoke test of launch.calcium.simulated."""
import math

import pytest

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")

from launch import app  # noqa: E402
from launch.calcium import simulated as calcium_simulated  # noqa: E402
from launch.calcium.configs import simulated as config_module  # noqa: E402


def test_smoke(tmp_path):
  summary = app.execute(calcium_simulated.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for name in ("scf", "scdf"):
    for k in ("deepspike", "oasis_ar1", "oasis_ar2"):
      v = summary[f"{name}_{k}_corr"]
      assert math.isfinite(v) and -1 <= v <= 1
  # Even the tiny run finds spikes on SCF at SNR 3; OASIS does too.
  assert summary["scf_deepspike_corr"] > 0.2
  assert summary["scf_oasis_ar1_corr"] > 0.3
  assert summary["scf_mcmc_true_params_corr"] > 0.3  # The exact model with its true parameters.
  assert (tmp_path / "figures" / "simulated_correlation.png").exists()
