"""The "a2c" MsPacman recordings of launch.latent_dynamics.env_models (B18's partly trained
policy): an A2C agent trained in the run on envs.make("mspacman"), its frames recorded and cached,
a second call reading the cache without training; refused without a run or a cache."""
import numpy as np
import pytest

from launch import app
from launch.latent_dynamics import env_models as ld_env_models
from launch.latent_dynamics.configs import env_models as config_module

pytest.importorskip("envpool")


def _config(tmp_path):
  from envs.host import envpool_env

  if envpool_env.atari_rom_path("MsPacman") is None:
    pytest.skip("envpool's MsPacman ROM is not installed")
  config = config_module.get_config("smoke")
  config.mspacman_policies = "a2c"
  config.mspacman_cache_dir = str(tmp_path / "cache")
  return config


@pytest.mark.slow  # about 30 s on the shared 2 cores (A2C compiles); fast counterpart:
# tests/envs/jax_host_env_test.py::test_record_policy_frames_by_hand and the refusal below
def test_a2c_recordings_train_once_then_read_the_cache(tmp_path):
  config = _config(tmp_path)
  out = {}

  def experiment(c, run):
    out["parts"] = ld_env_models.mspacman_recordings(c, run.workdir, "train", run)
    return {"n": len(out["parts"])}

  app.execute(experiment, config, tmp_path / "run", progress=False)
  (rec,) = out["parts"]
  t, b, s = config.mspacman_steps, config.mspacman_envs, config.mspacman_size
  assert rec.obs.shape == (t + 1, b, s, s) and rec.action.shape == (t, b)
  assert rec.obs.max() < config.mspacman_colours and rec.palette.shape == (
      config.mspacman_colours, 3)
  # max_steps = 50 within 24 steps: no episode ends unless the game does.
  assert np.all((rec.frame_valid == 0) | (rec.frame_valid == 1))
  frames = config.mspacman_agent.frames
  cached = tmp_path / "cache" / f"mspacman_a2c{frames}_train_s{s}_k{config.mspacman_colours}.npz"
  assert cached.exists()
  # Read back without a run: the same arrays.
  (again,) = ld_env_models.mspacman_recordings(config, tmp_path, "train", None)
  np.testing.assert_array_equal(again.obs, rec.obs)
  np.testing.assert_array_equal(again.action, rec.action)


def test_a2c_recordings_without_cache_or_run_are_refused(tmp_path):
  config = _config(tmp_path)
  with pytest.raises(ValueError, match="no cached a2c recording"):
    ld_env_models.mspacman_recordings(config, tmp_path, "test", None)
