"""Smoke test of launch/agents/sacd_diagnosis (tiny preset) and of the re-weighting wrapper."""
import numpy as np
import pytest

from launch import app
from launch.agents import sacd_diagnosis, sacd_runs
from launch.agents.configs import sacd_diagnosis as config_module


def test_reweighted_env_scales_components_and_keeps_original_reward():
  base = sacd_runs.make_env("LunarLanderContinuous-v2", 2, 0)
  env = sacd_runs.make_env("LunarLanderContinuous-v2", 2, 0, {"main_engine": 10.0})
  base.reset()
  env.reset()
  action = np.array([[1.0, 0.0], [0.8, 0.9]], np.float32)
  a, b = base.step(action), env.step(action)
  i = list(env.component_names).index("main_engine")
  np.testing.assert_allclose(b.reward_components[:, i], 10 * a.reward_components[:, i])
  np.testing.assert_allclose(b.reward, b.reward_components.sum(-1), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(b.info["original_reward"], a.reward)
  with pytest.raises(ValueError, match="fuel"):
    sacd_runs.make_env("LunarLanderContinuous-v2", 1, 0, {"fuel": 2.0})


def test_smoke(tmp_path):
  summary = app.execute(sacd_diagnosis.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  for variant in ("misscaled", "fixed"):
    assert 0.0 <= summary[f"fuel_influence/{variant}"] <= 1.0
    assert 0.0 <= summary[f"fuel_value_share/{variant}"] <= 1.0
    assert np.isfinite(summary[f"fuel_value/{variant}"])
    assert summary[f"episodes/{variant}"] >= 1
    assert -1000 < summary[f"task_return/{variant}"] < 300
  assert (tmp_path / "figures" / "diagnosis.png").exists()


def test_restore_preset_is_whole_chunks_and_buffer_holds_the_run():
  for preset in ("default", "restore", "full"):
    config = config_module.get_config(preset)
    assert sacd_runs.num_chunks(config) * config.steps_per_chunk == config.env_steps
    assert config.buffer_size >= config.env_steps * config.num_envs, preset
  restore = config_module.get_config("restore")
  assert restore.num_seeds >= 2 and restore.num_envs == 4 and restore.env_steps == 200_200
  with pytest.raises(ValueError, match="restore"):
    config_module.get_config("nope")
