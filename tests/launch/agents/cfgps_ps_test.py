"""Smoke test of launch/agents/cfgps_ps on its tiny preset (slow), its registration, the
summary by hand, and bad input."""
import json

import numpy as np
import pytest

from agents.cfgps import ps_experiment
from launch import app, claims, reproduce
from launch.agents import cfgps_ps
from launch.agents.configs import cfgps_ps as config_module


def test_registered():
  assert "agents.cfgps_ps" in reproduce.registered_experiments()
  for preset in ("smoke", "default", "full"):
    cfg = config_module.ps_config(config_module.get_config(preset), "/tmp/w")
    assert isinstance(cfg, ps_experiment.PSConfig)
    ps_experiment.check_config(cfg)
  default = config_module.get_config("default")
  assert (default.height, default.width, default.num_boxes, default.horizon) == (10, 10, 3, 50)
  assert default.num_cf == 10 and default.gps_t == 1
  cfg = config_module.ps_config(default, "/tmp/w")
  assert cfg.cache_dir == "/tmp/w/scenario_cache"
  assert cfg.search.num_cf == 10
  default.cache_dir = ""
  assert config_module.ps_config(default, "/tmp/w").cache_dir is None
  for claim in config_module.REPORT["claims"]:
    claims.check_claim(claim)


def test_summarise_by_hand():
  """Final and AUC means over seeds with their standard errors, real-episode solve rates."""
  res = {"methods": {
      "cfgps": {"eval_solve_rate": [[0.0, 0.2, 0.4], [0.0, 0.4, 0.6]],
                "eval_return": [[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]],
                "train_solve_rate": [[0.1, 0.3], [0.2, 0.4]],
                "train_return": [[1.0, 1.0], [1.0, 1.0]],
                "consistent": [[0.5, 0.5], [1.0, 1.0]], "cf_solve_rate": [[0.9, 0.9], [0.9, 0.9]],
                "wall_s": 3.0},
      "a2c": {"eval_solve_rate": [[0.0, 0.0, 0.1], [0.0, 0.0, 0.1]],
              "eval_return": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
              "train_solve_rate": [[0.0, 0.0], [0.0, 0.0]],
              "train_return": [[0.0, 0.0], [0.0, 0.0]], "wall_s": 1.0}},
      "wall_s": 4.0, "scenario_train_s": 0.5}
  s = cfgps_ps.summarise(res)
  assert s["eval_solve_rate_final/cfgps"] == pytest.approx(0.5)
  assert s["eval_solve_rate_final_se/cfgps"] == pytest.approx(0.1)   # sd 0.1414 / sqrt(2)
  assert s["eval_solve_rate_auc/cfgps"] == pytest.approx(0.4)        # (0.3 + 0.5) / 2
  assert s["eval_return_final/cfgps"] == pytest.approx(3.0)
  assert s["train_solve_rate/cfgps"] == pytest.approx(0.25)
  assert s["consistent/cfgps"] == pytest.approx(0.75)
  assert s["eval_solve_rate_final/a2c"] == pytest.approx(0.1)
  assert s["eval_solve_rate_final_se/a2c"] == 0.0
  assert "consistent/a2c" not in s


@pytest.mark.slow
def test_smoke(tmp_path):
  c = config_module.get_config("smoke")
  summary = app.execute(cfgps_ps.experiment, c, tmp_path, progress=False)
  for m in ("cfgps", "gps", "mbps", "a2c"):
    assert 0.0 <= summary[f"eval_solve_rate_final/{m}"] <= 1.0, m
    assert np.isfinite(summary[f"eval_return_final/{m}"]), m
  for name in ("solve_rate", "return"):
    assert (tmp_path / "figures" / f"{name}.png").exists()
  assert "| CF-GPS (p(U \\| h_T)) |" in (tmp_path / "results.md").read_text()
  res = json.loads((tmp_path / "results.json").read_text())
  assert res["real_episodes"] == [0, 4, 8]
  assert res["methods"]["a2c"]["frames"] == [[4 * 20, 8 * 20]]
  # the scenario model was cached in the workdir and a second run loads it
  assert list((tmp_path / "scenario_cache").glob("scenario_*.msgpack"))


def test_bad_input():
  c = config_module.get_config("smoke")
  c.num_heldout = 64
  c.num_eval_levels = 8
  with pytest.raises(ValueError, match="the level bank has 64 levels, too few for a held-out "
                     "split of num_heldout=64"):
    ps_experiment.run(config_module.ps_config(c), log=lambda s: None)
  c = config_module.get_config("smoke")
  c.gps_t = 30
  with pytest.raises(ValueError, match="t=30 is beyond the episode length"):
    ps_experiment.run(config_module.ps_config(c), log=lambda s: None)
