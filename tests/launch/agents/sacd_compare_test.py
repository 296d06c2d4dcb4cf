"""Smoke test of launch/agents/sacd_compare on its tiny preset."""
import numpy as np

from launch import app
from launch.agents import sacd_compare
from launch.agents.configs import sacd_compare as config_module


def test_smoke(tmp_path):
  summary = app.execute(sacd_compare.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  task = "LunarLanderContinuous-v2"
  for agent in ("sac", "sac_d"):
    # 200 steps x 2 envs: random LunarLander episodes end within ~60-150 steps.
    assert summary[f"episodes/{task}/{agent}"] >= 2
    # Returns of the (mostly random) early policy: a crash costs -100, shaping is bounded.
    assert -1000 < summary[f"final_return/{task}/{agent}"] < 300
  assert np.isfinite(summary[f"difference/{task}"])
  assert (tmp_path / "figures" / "returns.png").exists()
