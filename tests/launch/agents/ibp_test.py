"""Smoke tests of the IBP Spaceship launchers (budget, tau, strategies) on their tiny presets, and
their registration in reproduce."""
import json

import numpy as np
import pytest

from launch import app, reproduce
from launch.agents import ibp as launcher
from launch.agents import ibp_budget, ibp_strategies, ibp_tau
from launch.agents.configs import ibp_budget as budget_config
from launch.agents.configs import ibp_strategies as strategies_config
from launch.agents.configs import ibp_tau as tau_config

MODULES = {"budget": (ibp_budget, budget_config), "tau": (ibp_tau, tau_config),
           "strategies": (ibp_strategies, strategies_config)}


def test_registered_and_settings():
  names = reproduce.registered_experiments()
  for name in ("agents.ibp_budget", "agents.ibp_tau", "agents.ibp_strategies"):
    assert name in names
  # The default grids: 3 x 4 budget settings, 5 taus, 3 strategies x 2 prices.
  assert len(launcher.settings(budget_config.get_config())) == 12
  assert len(launcher.settings(tau_config.get_config())) == 5
  s = launcher.settings(strategies_config.get_config())
  assert [x[0] for x in s] == ["one_step_p0", "one_step_p1", "n_step_p0", "n_step_p1",
                               "tree_p0", "tree_p1"]
  assert s[1][2] == 0.0004 and s[4][3].strategy == "tree" and s[4][3].fixed_budget
  for preset in ("smoke", "default", "full"):
    for _, module in MODULES.values():
      launcher.settings(module.get_config(preset))
  with pytest.raises(ValueError, match="unknown preset 'huge'"):
    budget_config.get_config("huge")
  c = budget_config.get_config("smoke")
  c.budgets = (-1,)
  with pytest.raises(ValueError, match="max_imaginations"):
    launcher.settings(c)
  c = tau_config.get_config("smoke")
  c.experiment = "beam"
  with pytest.raises(ValueError, match="config.experiment must be one of"):
    launcher.settings(c)
  # The imagination is trained with the planner by default; "frozen" is the earlier setting.
  for _, module in MODULES.values():
    assert module.get_config().imagination_training == "joint"
  c = budget_config.get_config("smoke")
  c.imagination_training = "fixed"
  with pytest.raises(ValueError, match="config.imagination_training must be one of"):
    launcher.settings(c)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["budget", "tau", "strategies"])
def test_smoke(tmp_path, experiment):
  """Each launcher on its smoke preset (40-80 s on the loaded 2-core CPU, mostly compilation of
  2-3 planners; `test_smoke_fast` is the default suite's counterpart)."""
  module, config_module = MODULES[experiment]
  config = config_module.get_config("smoke")
  summary = app.execute(module.experiment, config, tmp_path, progress=False)
  names = [x[0] for x in launcher.settings(config)]
  for name in names:
    assert np.isfinite(summary[f"task_loss/{name}"]) and summary[f"task_loss/{name}"] > 0
  if experiment == "budget":   # fixed budgets: exactly n imaginations per action
    assert summary["imaginations/K1_n0"] == 0.0 and summary["imaginations/K1_n1"] == 1.0
  assert (tmp_path / "figures" / f"{experiment}.png").exists()
  table = (tmp_path / "results.md").read_text()
  assert all(f"| {name} |" in table for name in names)
  assert json.loads((tmp_path / "summary.json").read_text())["wall_s"] > 0


@pytest.mark.slow
def test_smoke_fast(tmp_path):
  """The budget launcher with a single setting (1 action, 1 imagination): trains, evaluates,
  writes the figure, table and summary (25 s on the loaded CPU: slow too; the default suite keeps
  `test_registered_and_settings`)."""
  config = budget_config.get_config("smoke")
  config.budgets = (1,)
  summary = app.execute(ibp_budget.experiment, config, tmp_path, progress=False)
  assert summary["imaginations/K1_n1"] == 1.0 and np.isfinite(summary["task_loss/K1_n1"])
  assert summary["imagination_position_error"] > 0
  assert summary["imagination_error/K1_n1"] > 0 and summary["imagination_error_own/K1_n1"] > 0
  assert (tmp_path / "figures" / "budget.png").exists()
  assert "| K1_n1 |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_smoke_frozen(tmp_path):
  """The budget launcher with the imagination fitted first and frozen (the earlier setting)."""
  config = budget_config.get_config("smoke")
  config.budgets, config.imagination_training = (1,), "frozen"
  summary = app.execute(ibp_budget.experiment, config, tmp_path, progress=False)
  assert np.isfinite(summary["task_loss/K1_n1"]) and "imagination_error/K1_n1" not in summary
  assert "trained frozen" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_maze_smoke(tmp_path):
  """The maze launcher on its smoke preset (about a minute on the loaded CPU: 3 planners'
  compilation)."""
  from launch.agents import ibp_maze
  from launch.agents.configs import ibp_maze as maze_config
  assert "agents.ibp_maze" in reproduce.registered_experiments()
  summary = app.execute(ibp_maze.experiment, maze_config.get_config("smoke"), tmp_path,
                        progress=False)
  for key in ("return_train/n0", "return_held_out/n1", "imaginations/multi_layout0",
              "imaginations/multi_layout2"):
    assert np.isfinite(summary[key])
  assert -20 <= summary["return_held_out/n1"] <= 20
  assert (tmp_path / "figures" / "maze.png").exists()
  assert "| single_n1 |" in (tmp_path / "results.md").read_text()
