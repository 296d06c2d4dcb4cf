"""launch.stochastic_graphs.speed_vs_pyro turns the benchmark's table into its summary.

The benchmark itself (both libraries, timing and variance) runs in tests/benchmarks/quick_test.py;
here its `main` is replaced by one that writes a hand-made table, so the ratios are checked
against hand-worked values without importing torch a second time.
"""
import json

import pytest

from benchmarks import stochastic_graphs_vs_pyro as bench
from launch import app, claims
from launch.stochastic_graphs import speed_vs_pyro
from launch.stochastic_graphs.configs import speed_vs_pyro as config_module


def test_summary_from_the_benchmark_table(tmp_path, monkeypatch):
  seen = []

  def fake_main(argv):
    seen.append(argv)
    out = [a.split("=", 1)[1] for a in argv if a.startswith("--out=")][0]
    table = {"ours_step_ms": 0.5, "pyro_step_ms": 7.0, "speedup_pyro_over_ours": 14.0,
             "ours_compile_s": 2.0, "variance_ratio_ours_over_pyro": 1.1,
             "variance_ratio_se": 0.04, "trained/mean_gradient_frac_within_4se": 1.0}
    (tmp_path / "w" / "bench").mkdir(parents=True, exist_ok=True)
    (tmp_path / "w" / "bench" / "stochastic_graphs_vs_pyro.json").write_text(json.dumps(table))
    assert out == str(tmp_path / "w" / "bench")

  monkeypatch.setattr(bench, "main", fake_main)
  config = config_module.get_config("demo")
  summary = app.execute(speed_vs_pyro.experiment, config, tmp_path / "w", progress=False)
  assert summary["speedup_over_pyro"] == 14.0
  assert summary["variance_ratio_distance_se"] == pytest.approx(0.1 / 0.04)  # |1.1 - 1| / SE
  (argv,) = seen
  assert f"--steps={config.steps}" in argv and f"--variance_samples={config.variance_samples}" \
      in argv and f"--seed={config.seed}" in argv
  # 14x > 1x holds; |1.1 - 1| = 2.5 SE < 3 SE holds; at SE 0.02 (5 SE) the second fails.
  verdicts = [claims.evaluate(c, summary).status for c in config_module.REPORT["claims"]]
  assert verdicts == [claims.HOLDS, claims.HOLDS]
  far = dict(summary, variance_ratio_distance_se=0.1 / 0.02)
  assert claims.evaluate(config_module.REPORT["claims"][1], far).status == claims.DOES_NOT_HOLD
