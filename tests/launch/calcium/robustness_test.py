"""Smoke test of launch.calcium.robustness on synthetic CASCADE-format folders: the general model
trained, then scored against frame rate and noise level, calibration numbers and figures."""
import importlib.util
import math

import pytest

from launch import app, reproduce
from launch.calcium import robustness
from launch.calcium.configs import robustness as config_module


def test_smoke_on_synthetic_sets(tmp_path, cascade_set):
  # dF/F scale: noise std 0.02 (CASCADE nu 0.25 at 60 Hz), 0.3 per spike, one neuron.
  def _write_set(folder, rate, seed=0):
    return cascade_set(folder, rate, neurons=1, seed=seed, spike_amplitude=0.3, noise_std=0.02)

  a = _write_set(tmp_path / "DS91-a", 60.0)
  c = _write_set(tmp_path / "DS93-c", 60.0, seed=2)
  config = config_module.get_config("smoke")
  config.train_dirs = (str(a),)
  config.test_dirs = (str(c),)
  config.max_recordings = config.max_test_recordings = 0
  config.num_chunks = 1
  config.oasis = importlib.util.find_spec("oasis") is not None  # OASIS is an optional extra.
  summary = app.execute(robustness.experiment, config, tmp_path / "run", progress=False)
  # Smoke augmentation: 30 and 15 Hz, nu as recorded and 4 (above the traces' own 0.25).
  assert summary["train_recordings"] == 2 and summary["train_copies"] == 8
  assert summary["test_recordings"] == 2
  methods = robustness.METHODS if config.oasis else ("deepspike",)
  for prefix in ("rate_60", "rate_30", "rate_15", "rate_7p5", "noise_4"):
    assert summary[f"{prefix}_recordings"] == 2, prefix
    for m in methods:
      assert -1 <= summary[f"{prefix}_{m}_corr"] <= 1, (prefix, m)
  # Calibration at the model's 30 Hz: the smoke preset's first 2000 frames at 60 Hz give 1000
  # frames per recording; counts per bin add up, 0 <= ECE <= 1.
  assert summary["calibration_rate"] == 30.0 and summary["calibration_frames"] == 2000
  assert sum(summary["reliability_counts"]) == 2000 and 0 <= summary["reliability_ece"] <= 1
  # 0.2 s windows: 6 frames, 166 per recording; 1 s: 30 frames, 33 per recording.
  assert summary["coverage_w0p2_windows"] == 332 and summary["coverage_w1_windows"] == 66
  for w in ("0p2", "1"):
    for lv in ("0p5", "0p8", "0p95"):
      assert 0 <= summary[f"pit_coverage_w{w}_c{lv}"] <= 1
      assert 0 <= summary[f"interval_coverage_w{w}_c{lv}"] <= 1
    # Nested intervals: coverage cannot fall as the level rises.
    inc = [summary[f"interval_coverage_w{w}_c{lv}"] for lv in ("0p5", "0p8", "0p95")]
    assert inc == sorted(inc)
  for name in ("accuracy", "reliability", "coverage"):
    assert (tmp_path / "run" / "figures" / f"{name}.png").stat().st_size > 1000
  text = (tmp_path / "run" / "results.md").read_text()
  assert "### Accuracy against frame rate" in text and "| 7.5 | 2 |" in text
  # The saved model is evaluated again without training: the same frame-rate scores.
  again = config_module.get_config("smoke")
  again.update(test_dirs=(str(c),), model_dir=str(tmp_path / "run" / "model"), oasis=False,
               eval_frame_rates=(15.0,), eval_noise_levels=(), max_test_recordings=0)
  second = app.execute(robustness.experiment, again, tmp_path / "again", progress=False)
  assert second["rate_15_deepspike_corr"] == pytest.approx(summary["rate_15_deepspike_corr"])
  assert math.isfinite(second["reliability_ece"])


def test_registered_presets_and_bad_input(tmp_path):
  assert "calcium.robustness" in reproduce.registered_experiments()
  for preset in ("smoke", "default", "full"):
    c = config_module.get_config(preset)
    assert c.eval_frame_rates and c.train_dirs
  assert "DS14-GCaMP6s-m-V1" not in config_module.get_config("default").train_dirs
  with pytest.raises(ValueError, match="'huge'"):
    config_module.get_config("huge")
  config = config_module.get_config("smoke")
  config.decimation = "skip"
  with pytest.raises(ValueError, match="config.decimation must be one of"):
    app.execute(robustness.experiment, config, tmp_path / "a", progress=False)
