"""Every benchmark runs end to end at its --quick size and writes its JSON table."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import run_all

ROOT = pathlib.Path(__file__).resolve().parents[2]


# The heavy benchmarks (40-140 s each at --quick from a cold compile cache) run with -m slow; the
# light one (Pyro) stays in the default suite as the fast counterpart of the runner and JSON
# plumbing, and tests/launch/latent_dynamics/speed_vs_dynamax_test.py runs the dynamax
# benchmark's main at T = 200.
SLOW_BENCHMARKS = {"envs_throughput", "envs_sokoban_levels", "calcium_vs_oasis",
                   "sac_d_throughput", "agents_a2c_throughput", "agents_a2c_sokoban_levels",
                   "latent_dynamics_vs_dynamax", "manifold_scaling", "i2a_throughput",
                   "latent_dynamics_env_models"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BENCHMARKS else n
    for n in run_all.benchmark_names()])
def test_benchmark_quick_mode(name, tmp_path):
  out_json = ROOT / "results" / "bench" / f"{name}.json"
  before = out_json.stat().st_mtime if out_json.exists() else None
  proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  assert out_json.exists() and out_json.stat().st_mtime != before, f"{out_json} not written"
  table = json.loads(out_json.read_text())
  assert table, f"{out_json} is empty"


def test_runner_refuses_unknown_benchmark(capsys):
  with pytest.raises(SystemExit):
    run_all.main(["--only=no_such_benchmark"])
  assert "unknown benchmarks" in capsys.readouterr().err


def test_slow_benchmarks_exist():
  # A renamed benchmark would otherwise leave the slow list naming nothing and run in the default.
  assert SLOW_BENCHMARKS <= set(run_all.benchmark_names())
