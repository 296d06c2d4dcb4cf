"""Smoke test of launch.calcium.dsbap."""
import math

import pytest

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")

from launch import app  # noqa: E402
from launch.calcium import dsbap as calcium_dsbap  # noqa: E402
from launch.calcium.configs import dsbap as config_module  # noqa: E402


def test_smoke(tmp_path):
  summary = app.execute(calcium_dsbap.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for prefix in ("", "oasis_"):
    for ch in ("bap", "event"):
      v = summary[f"{prefix}{ch}_corr"]
      assert math.isfinite(v) and -1 <= v <= 1
  assert "true_model_bap_corr" not in summary  # The smoke preset skips the true-model run.
  # bAPs are seen in both traces at SNR 3: the OASIS baseline finds them on 900 frames.
  assert summary["oasis_bap_corr"] > 0.3
  assert summary["bap_count_ratio"] > 0 and summary["event_count_ratio"] > 0
  assert 0 < summary["true_bap_rate_hz"] < 2 and 0 < summary["true_event_rate_hz"] < 2
  assert math.isfinite(summary["final_bound_per_frame"])
  assert (tmp_path / "figures" / "dsbap_example.png").exists()
  assert (tmp_path / "figures" / "dsbap_correlation.png").exists()
