"""Smoke test of launch/agents/cfgps_pe on its tiny preset, its registration, and bad input."""
import json

import numpy as np
import pytest

from agents.cfgps import pe_experiment
from launch import app, claims, reproduce
from launch.agents import cfgps_pe
from launch.agents.configs import cfgps_pe as config_module


def test_registered():
  assert "agents.cfgps_pe" in reproduce.registered_experiments()
  for preset in ("smoke", "default", "full"):
    cfg = cfgps_pe.pe_config(config_module.get_config(preset))
    assert isinstance(cfg, pe_experiment.PEConfig)
  default = config_module.get_config("default")
  assert (default.height, default.width, default.num_boxes, default.horizon) == (10, 10, 3, 50)
  assert tuple(default.t_set) == (0, 5, 10, 20, 30, 40, 50)
  for claim in config_module.REPORT["claims"]:
    claims.check_claim(claim)


def test_summarise_by_hand():
  """The fast counterpart of the smoke run: summary keys, means and the IS minimum by hand."""
  def est(err):
    return {"rel_error": err, "rel_error_se": 0.01, "value": 1.0 - err}
  names = cfgps_pe.ESTIMATORS + ("cf_t0", "cf_t20")
  res = {"policies": {f"eps{e:g}": dict({n: est(0.1 * (i + 1) + 0.01 * j)
                                          for j, n in enumerate(names)},
                                         epsilon=e, true_value=1.0, true_value_se=0.0,
                                         solve_rate=0.5)
                      for i, e in enumerate((0.05, 0.8))},
         "posterior": {0: {"log_lik": -40.0, "exact": 0.0}, 20: {"log_lik": -5.0, "exact": 0.5}},
         "wall_s": 1.0, "scenario_train_s": 0.5}
  s = cfgps_pe.summarise(res, (0, 20))
  assert s["mb_rel_error/eps0.05"] == pytest.approx(0.1)
  assert s["mb_rel_error_mean"] == pytest.approx(0.15)      # (0.1 + 0.2) / 2
  assert s["is_rel_error_min"] == pytest.approx(0.11)       # is is the second estimator
  assert s["cf_t50_rel_error_mean"] == s["cf_t20_rel_error_mean"] == pytest.approx(0.2)  # j = 5
  assert s["posterior_exact_t50"] == 0.5 and s["posterior_log_lik_t0"] == -40.0


@pytest.mark.slow
def test_smoke(tmp_path):
  c = config_module.get_config("smoke")
  summary = app.execute(cfgps_pe.experiment, c, tmp_path, progress=False)
  for tag in ("eps0.05", "eps0.8"):
    assert summary[f"true_value/{tag}"] >= 0
    for n in ("mb", "is", "cf_t0", "cf_t20", "cf_true_level"):
      assert np.isfinite(summary[f"{n}_rel_error/{tag}"]), (n, tag)
  assert 0.0 <= summary["posterior_exact_t50"] <= 1.0
  assert (tmp_path / "figures" / "relative_error.png").exists()
  assert "| mb |" in (tmp_path / "results.md").read_text()
  res = json.loads((tmp_path / "results.json").read_text())
  # CF-PE with the true level and IS are unbiased for J: on the smoke's tiny sample they need
  # only be finite; the relative errors must agree with the values written.
  p = res["policies"]["eps0.05"]
  assert p["mb"]["rel_error"] == pytest.approx(abs(p["mb"]["value"] - p["true_value"])
                                               / abs(p["true_value"]))


def test_bad_input(tmp_path):
  c = config_module.get_config("smoke")
  c.num_eval_levels = 64
  with pytest.raises(ValueError, match="the level bank has 64 levels, too few for a held-out "
                     "split of num_heldout=64"):
    pe_experiment.run(cfgps_pe.pe_config(c), log=lambda s: None)
  c = config_module.get_config("smoke")
  c.t_set = (0, 30)
  with pytest.raises(ValueError, match="t=30 is beyond the episode length"):
    pe_experiment.run(cfgps_pe.pe_config(c), log=lambda s: None)
