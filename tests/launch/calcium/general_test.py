"""Smoke test of launch.calcium.general on synthetic CASCADE-format folders at three frame rates:
every recording used, the model saved and usable by `python -m calcium.infer`."""
import importlib.util
import math

import numpy as np
import pytest

from calcium import deepspike
from calcium import infer as infer_cli
from launch import app
from launch.calcium import general
from launch.calcium.configs import general as config_module


def test_smoke_on_synthetic_sets(tmp_path, cascade_set):
  a = cascade_set(tmp_path / "DS91-a", 60.0)
  b = cascade_set(tmp_path / "DS92-b", 120.0, recordings=1, seed=1)
  c = cascade_set(tmp_path / "DS93-c", 30.0, neurons=1, seed=2)
  config = config_module.get_config("smoke")
  config.train_dirs = (str(a), str(b))
  config.test_dirs = (str(c),)
  config.max_recordings = 0  # Every recording: 4 + 2.
  config.max_test_recordings = 0
  config.oasis = importlib.util.find_spec("oasis") is not None  # OASIS is an optional extra.
  summary = app.execute(general.experiment, config, tmp_path / "run", progress=False)
  assert summary["train_recordings"] == 6 and summary["test_recordings"] == 2
  # Augmentation (smoke: 30 and 15 Hz, noise as recorded and nu = 4): the synthetic traces'
  # own noise level (unit white noise in dF/F, kept by averaging: nu = 100 * 0.954 /
  # sqrt(native rate), 8.7 at 120 Hz and 12.3 at 60 Hz) is above 4, so only the as-recorded
  # copies remain, two rates per recording.
  assert summary["train_copies"] == 12 and summary["train_copies_noise_0"] == 12
  assert summary["train_copies_rate_30"] == summary["train_copies_rate_15"] == 6
  assert summary["train_sets"] == "DS91-a, DS92-b" and summary["DS93_recordings"] == 2
  keys = ("DS93_corr", "test_corr") + (
      ("DS93_oasis_ar2_corr", "test_minus_oasis_ar2_corr") if config.oasis else ())
  for k in keys:
    assert math.isfinite(summary[k]) and -1 <= summary[k] <= 1, k
  model = deepspike.load_model(tmp_path / "run" / "model")
  assert model.frame_rate == 30.0 and model.training_data == "DS91-a, DS92-b"
  assert infer_cli.main(["--model", str(tmp_path / "run" / "model"), "--input",
                         str(b / "cell0.mat"), "--out", str(tmp_path / "b.npz"),
                         "--no_progress"]) == 0
  out = np.load(tmp_path / "b.npz")
  assert out["expected_counts"].shape == (1, 4800) and out["resampled"].all()


def test_config_refuses_unknown_preset_and_empty_train_dirs(tmp_path):
  with pytest.raises(ValueError, match="'huge'"):
    config_module.get_config("huge")
  config = config_module.get_config("smoke")
  config.train_dirs = ()
  with pytest.raises(ValueError, match="config.train_dirs must name at least one"):
    app.execute(general.experiment, config, tmp_path / "a", progress=False)
  config.train_dirs = ("no-such-set",)
  with pytest.raises(ValueError, match="no ground-truth folder 'no-such-set'"):
    app.execute(general.experiment, config, tmp_path / "b", progress=False)
