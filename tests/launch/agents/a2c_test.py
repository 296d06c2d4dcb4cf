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


def test_environment_tags():
  c = config_module.get_config("smoke")
  env, params = a2c.environment("sokoban-7x7-2", c)
  assert (env.height, env.width, env.num_boxes) == (7, 7, 2) and params.max_steps == 20
  with pytest.raises(ValueError, match="sokoban-<height>x<width>-<boxes>"):
    a2c.environment("sokoban-7by7", c)
  with pytest.raises(ValueError, match="unknown environment 'pong'"):
    a2c.environment("pong", c)


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
