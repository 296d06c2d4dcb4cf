"""Smoke test of launch/agents/sacd_influence on its tiny preset."""
import numpy as np

from launch import app
from launch.agents import sacd_influence
from launch.agents.configs import sacd_influence as config_module


def test_smoke(tmp_path):
  summary = app.execute(sacd_influence.experiment, config_module.get_config("smoke"), tmp_path,
                        progress=False)
  task = "LunarLanderContinuous-v2"
  names = ("position", "velocity", "angle", "left_leg", "right_leg", "main_engine",
           "side_engine", "terminal")
  influence = np.array([summary[f"influence/{task}/{n}"] for n in names])
  np.testing.assert_allclose(influence.sum(), 1.0, rtol=1e-4)
  assert np.all(influence >= 0)
  # Fuel is only ever spent: its observed discounted sum is <= 0 (and at most 0.3 per step).
  assert -0.3 / (1 - 0.9) - 1e-6 <= summary[f"value_observed/{task}/main_engine"] <= 0
  assert summary[f"eval_states/{task}"] > 100
  assert all(np.isfinite(summary[f"value_predicted/{task}/{n}"]) for n in names)
  assert (tmp_path / "figures" / "influence_and_values.png").exists()
