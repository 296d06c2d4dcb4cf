"""Smoke test of launch.latent_dynamics.env_models."""
import math

import pytest

from launch import app
from launch.latent_dynamics import env_models as ld_env_models
from launch.latent_dynamics.configs import env_models as config_module


@pytest.mark.slow   # 270 s cold at load 8.5; 48 s with a warm XLA cache (four models)
def test_smoke(tmp_path):
  config = config_module.get_config("smoke")
  config.envs = "sokoban"
  summary = app.execute(ld_env_models.experiment, config, tmp_path, progress=False)
  for model in ("RAR", "dSSM-DET", "dSSM-VAE", "sSSM"):
    curve = [summary[f"sokoban/{model}/ll_per_frame_T{t}"] for t in (1, 2, 3)]
    # A log-likelihood per frame of 7x7 tiles of 7 classes lies in (-49 log 7 - slack, 0].
    assert all(math.isfinite(v) and -49 * math.log(7) - 50 < v <= 0 for v in curve), curve
  assert summary["sokoban/num_test_windows"] >= 1
  assert (tmp_path / "figures" / "rollouts_sokoban.png").exists()


@pytest.mark.slow   # 34-75 s cold at load 8.5-8.7 on 2 cores; 3.5 s with a warm XLA cache
def test_smoke_one_model(tmp_path):
  # The lighter counterpart of test_smoke: the deterministic SSM alone, whose log-likelihood is
  # exact, so its per-frame curve is the mean of exact prefix log-likelihoods over t.
  config = config_module.get_config("smoke")
  config.envs, config.models = "sokoban", "dSSM-DET"
  summary = app.execute(ld_env_models.experiment, config, tmp_path, progress=False)
  curve = [summary[f"sokoban/dSSM-DET/ll_per_frame_T{t}"] for t in (1, 2, 3)]
  assert all(math.isfinite(v) and -49 * math.log(7) - 50 < v < 0 for v in curve), curve
  assert (tmp_path / "figures" / "rollouts_sokoban.png").exists()


def test_bad_config_names_the_field():
  config = config_module.get_config("smoke")
  with pytest.raises(ValueError, match="config.models must list some of"):
    ld_env_models.parse_list("RAR,PixelCNN", ld_env_models.MODELS, "models")
  with pytest.raises(ValueError, match="preset must be smoke, default or full"):
    config_module.get_config("demo")
  assert config.length == 3
