"""Smoke test of launch.latent_dynamics.env_models."""
import math

import numpy as np
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


@pytest.mark.slow   # 14 s on 2 quiet cores (the suite is near its 15-minute budget)
def test_minipacman_frames_scored_per_plane(tmp_path):
  # MiniPacman's 15x19 frames of 6 planes are scored by a Bernoulli per plane: a model after 3
  # Adam steps is near -285 x 6 x log 2 = -1,185 nats per frame, far below anything a per-tile
  # categorical gives (at least -285 x log 6 = -511 at uniform, and higher once trained).
  config = config_module.get_config("smoke")
  config.envs, config.models = "minipacman", "dSSM-DET"
  summary = app.execute(ld_env_models.experiment, config, tmp_path, progress=False)
  curve = [summary[f"minipacman/dSSM-DET/ll_per_frame_T{t}"] for t in (1, 2, 3)]
  assert all(-285 * 6 * math.log(2) - 400 < v < -285 * math.log(6) - 100 for v in curve), curve


def test_frame_likelihood_per_environment_and_figure_tiles():
  config = config_module.get_config("default")
  assert [ld_env_models.frame_likelihood(config, e) for e in ld_env_models.ENVS] == [
      "bernoulli", "categorical", "categorical"]
  config.frame_likelihood.sokoban = "gaussian"
  with pytest.raises(ValueError, match="config.frame_likelihood.sokoban must be one of"):
    ld_env_models.frame_likelihood(config, "sokoban")
  # A floor cell with no plane on is drawn as its own colour (C = 3) under "bernoulli".
  planes = np.array([[[0, 1, 0], [0, 0, 0], [0.2, 0.1, 0.7]]])
  np.testing.assert_array_equal(ld_env_models.tiles(planes), [[1, 3, 2]])
  np.testing.assert_array_equal(ld_env_models.tiles(planes, "categorical"), [[1, 0, 2]])


def test_bad_config_names_the_field():
  config = config_module.get_config("smoke")
  with pytest.raises(ValueError, match="config.models must list some of"):
    ld_env_models.parse_list("RAR,PixelCNN", ld_env_models.MODELS, "models")
  with pytest.raises(ValueError, match="preset must be smoke, default or full"):
    config_module.get_config("demo")
  assert config.length == 3


def test_mspacman_data_from_cached_recordings(tmp_path):
  # Fake recordings under the specs the launcher asks for: it reads them from the cache (no
  # envpool), maps the second policy's palette onto the first's, and labels rewards by value.
  import numpy as np  # noqa: PLC0415

  from envs.host import atari_frames as af  # noqa: PLC0415
  config = config_module.get_config("smoke")
  config.mspacman_cache_dir = str(tmp_path)
  k, size = config.mspacman_colours, config.mspacman_size
  for split, (b, t) in (("train", (config.mspacman_envs, config.mspacman_steps)),
                        ("test", (config.mspacman_test_envs, config.mspacman_test_steps))):
    for i, policy in enumerate(("random", "sticky")):
      spec = af.FramesSpec(policy=policy, num_envs=b, num_steps=t, size=size, num_colours=k,
                           seed=10 * i + (0 if split == "train" else 1))
      palette = np.arange(3 * k, dtype=np.uint8).reshape(k, 3) * (1 + i)   # i = 1: doubled
      obs = np.full((t + 1, b, size, size), i, np.uint8)
      reward = np.zeros((t, b), np.float32)
      reward[1, 0] = 10.0 * (1 + i)
      af.save(f"{tmp_path}/mspacman_{policy}_{split}_s{size}_k{k}.npz",
              af.Frames(obs, np.zeros((t, b), np.int32), reward, np.ones((t, b), np.float32),
                        palette), spec)
  train, test, spec = ld_env_models.mspacman_data(config, tmp_path)
  t, b = config.mspacman_steps, 2 * config.mspacman_envs
  assert train.obs_tm1.shape == (t, b, size, size, k) and train.obs_tm1.dtype == np.float32
  assert test.action.shape == (config.mspacman_test_steps, 2 * config.mspacman_test_envs)
  # Policy 0's tiles are colour 0; policy 1's colour 1 of its palette = (6, 8, 10) is nearest
  # to colour 2 = (6, 7, 8) of policy 0's palette.
  np.testing.assert_array_equal(np.argmax(train.obs_t[:, :config.mspacman_envs], -1), 0)
  np.testing.assert_array_equal(np.argmax(train.obs_t[:, config.mspacman_envs:], -1), 2)
  assert spec.values == (0.0, 10.0, 20.0)
  assert int(train.reward_class[1, 0]) == 1
  assert int(train.reward_class[1, config.mspacman_envs]) == 2
  assert int(train.reward_class[0, 0]) == 0


@pytest.mark.slow   # 172 s at load 7.4 (records 4 x 2 x 24-step MsPacman caches, two models)
def test_mspacman_smoke_records_once(tmp_path):
  config = config_module.get_config("smoke")
  config.envs, config.models = "mspacman", "dSSM-DET"
  config.mspacman_cache_dir = str(tmp_path / "data")
  summary = app.execute(ld_env_models.experiment, config, tmp_path / "run1", progress=False)
  size, k = config.mspacman_size, config.mspacman_colours
  curve = [summary[f"mspacman/dSSM-DET/ll_per_frame_T{t}"] for t in (1, 2, 3)]
  assert all(math.isfinite(v) and -size * size * math.log(k) - 50 < v < 0 for v in curve)
  caches = sorted((tmp_path / "data").glob("mspacman_*.npz"))
  assert len(caches) == 4
  stamps = [p.stat().st_mtime_ns for p in caches]
  # Another run (another workdir: a workdir refuses a changed config) reads the shared caches.
  config.models = "dSSM-VAE"
  app.execute(ld_env_models.experiment, config, tmp_path / "run2", progress=False)
  assert [p.stat().st_mtime_ns for p in caches] == stamps
