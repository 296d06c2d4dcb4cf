"""Smoke test of launch.calcium.chen2013 (skips where the data or OASIS is absent)."""
import math

import pytest

from calcium import data

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")
if not data.chen2013_files():
  pytest.skip(f"Chen 2013 data absent from {data.default_data_dir()} (set "
              f"${data.DATA_ENV_VAR})", allow_module_level=True)

from launch import app  # noqa: E402
from launch.calcium import chen2013 as calcium_chen2013  # noqa: E402
from launch.calcium.configs import chen2013 as config_module  # noqa: E402


def test_smoke(tmp_path):
  summary = app.execute(calcium_chen2013.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for k in ("combined_corr", "simulated_corr", "oasis_ar1_corr", "oasis_ar2_corr"):
    assert math.isfinite(summary[k]) and -1 <= summary[k] <= 1
  assert summary["oasis_ar2_corr"] > 0.1  # OASIS finds real spikes on 2000 frames.
  assert summary["combined_count_ratio"] > 0
  assert summary["test_recordings"] == 2
  assert (tmp_path / "figures" / "chen2013_example.png").exists()


def test_unknown_variant_is_refused_by_name(tmp_path):
  config = config_module.get_config("smoke")
  config.variants = ("semi",)
  with pytest.raises(ValueError, match="unknown variant 'semi'"):
    app.execute(calcium_chen2013.experiment, config, tmp_path, progress=False)
