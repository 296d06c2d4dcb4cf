"""Smoke test of launch/agents/a2c on its tiny preset, and its registration in reproduce."""
import json

import numpy as np
import pytest

from launch import app, reproduce
from launch.agents import a2c
from launch.agents.configs import a2c as config_module


def test_registered():
  assert "agents.a2c" in reproduce.registered_experiments()
  for preset in ("smoke", "demo", "default", "full"):
    c = config_module.get_config(preset)
    a2c.agent_config(c)  # every preset builds an A2CConfig
  assert len(config_module.get_config("default").envs) == 7
  with pytest.raises(ValueError, match="unknown preset 'huge'"):
    config_module.get_config("huge")


def test_env_overrides_change_only_their_environment():
  c = config_module.get_config("default")
  c.env_overrides = {"minipacman_hunt": {"num_chunks": 7, "reward_scale": 0.25},
                     "sokoban_9x9_3": {"discount": 0.5}}
  hunt = a2c.agent_config(c, "minipacman-hunt")
  assert (hunt.num_chunks, hunt.reward_scale) == (7, 0.25)
  assert hunt.learning_rate == c.agent.learning_rate          # untouched fields kept
  regular = a2c.agent_config(c, "minipacman-regular")
  assert (regular.num_chunks, regular.reward_scale) == (c.agent.num_chunks, 1.0)
  assert a2c.agent_config(c, "sokoban-9x9-3").discount == 0.5
  c.env_overrides = {"minipacman_hnt": {"num_chunks": 7}}
  with pytest.raises(ValueError, match=r"unknown environments \['minipacman_hnt'\]"):
    a2c.agent_config(c)
  c.env_overrides = {"minipacman_hunt": {"num_chunk": 7}}
  for tag in ("minipacman-hunt", "minipacman-regular", None):  # checked whatever is trained
    with pytest.raises(ValueError, match=r"minipacman_hunt: \['num_chunk'\] are not A2CConfig"):
      a2c.agent_config(c, tag)


def test_sokoban_level_sources():
  c = config_module.get_config("smoke")
  c.sokoban_levels, c.sokoban_stream_levels, c.sokoban_stream_batch = "stream", 128, 64
  env, params = a2c.environment("sokoban-7x7-2", c)
  assert params.stream.levels.walls.shape == (256, 7, 7) and int(params.stream.end) == 0
  assert a2c.refresh_env_params("sokoban-7x7-2", env, c) is not None
  assert a2c.refresh_env_params("minipacman-regular", env, c) is None
  held_out = a2c.evaluation_params("sokoban-7x7-2", env, params, c)
  assert held_out.stream is None and held_out.max_steps == params.max_steps == 20
  c.sokoban_stream_levels = 100
  with pytest.raises(ValueError, match="positive multiple of config.sokoban_stream_batch"):
    a2c.environment("sokoban-7x7-2", c)
  c.sokoban_levels = "bank"
  with pytest.raises(ValueError, match=r"config.sokoban_levels must be one of \('pool'"):
    a2c.environment("sokoban-7x7-2", c)


def test_level_source_per_environment():
  # The default trains 7x7/2 on the stream and 10x10/4 on the pool (its entry says so); the
  # level fields never reach A2CConfig and are refused outside Sokoban's entries.
  c = config_module.get_config("default")
  assert a2c.env_setting(c, "sokoban-7x7-2", "sokoban_levels") == "stream"
  assert a2c.env_setting(c, "sokoban-10x10-4", "sokoban_levels") == "pool"
  env, params = a2c.environment("sokoban-10x10-4", c)
  assert params.stream is None and a2c.refresh_env_params("sokoban-10x10-4", env, c) is None
  assert a2c.agent_config(c, "sokoban-10x10-4").num_chunks == 400
  c.env_overrides = {"sokoban_7x7_2": {"sokoban_stream_levels": 128, "sokoban_stream_batch": 32}}
  _, params = a2c.environment("sokoban-7x7-2", c)
  assert params.stream.levels.walls.shape[0] == 2 * 128
  c.env_overrides = {"minipacman_rush": {"sokoban_levels": "pool"}}
  with pytest.raises(ValueError, match=r"minipacman_rush: \['sokoban_levels'\] apply to Sokoban"):
    a2c.agent_config(c)
  c.env_overrides = {"sokoban_7x7_2": {"sokoban_levels": "bank"}}
  with pytest.raises(ValueError, match=r"one of \('pool', 'stream', 'fresh'\); got 'bank' for"):
    a2c.environment("sokoban-7x7-2", c)


def test_environment_tags():
  c = config_module.get_config("smoke")
  env, params = a2c.environment("sokoban-7x7-2", c)
  assert (env.height, env.width, env.num_boxes) == (7, 7, 2) and params.max_steps == 20
  with pytest.raises(ValueError, match="sokoban-<height>x<width>-<boxes>"):
    a2c.environment("sokoban-7by7", c)
  with pytest.raises(ValueError, match="unknown environment 'pong'"):
    a2c.environment("pong", c)


@pytest.mark.slow  # 27 s in CI (session 16); fast counterparts: the override and tag tests above,
# tests/agents/a2c/*, and tests/envs/jax_host_env_test.py's A2C chunk through the launcher's env
def test_smoke(tmp_path):
  summary = app.execute(a2c.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  env = "minipacman-regular"
  # 20-step episodes: returns are food eaten (<= 20 + pills and ghosts), never negative.
  for key in ("final_return", "random_return"):
    assert 0.0 <= summary[f"{key}/{env}"] < 60.0
  assert summary[f"random_episodes/{env}"] >= 8 * 2  # >= one complete episode per env
  assert np.isfinite(summary[f"margin_se/{env}"])
  assert summary[f"frames/{env}"] == 4 * 5 * 5 * 2
  assert (tmp_path / "figures" / "curves.png").exists()
  assert env in (tmp_path / "results.md").read_text()
  assert json.loads((tmp_path / "summary.json").read_text())[f"final_return/{env}"] == (
      summary[f"final_return/{env}"])
