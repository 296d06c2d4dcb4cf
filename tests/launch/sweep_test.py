"""Tests of launch.sweep: spec parsing and its errors, a local submitit sweep, skip and resume."""
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest

from launch import app, sweep

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import regression_experiment as rx  # noqa: E402


def _base():
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.learning_rate = 0.5
  c.use_bias = True
  c.name = "a"
  c.model = ml_collections.ConfigDict({"width": 8})
  c.sizes = (1, 2)
  return c


# ----------------------------------------------------------------------------- specs


def test_parse_ranges_lists_types_and_nested_fields():
  axes = sweep.parse_sweep(["seed=0:3", "learning_rate=1e-3, 3e-4", "use_bias=false,1",
                            "name=x,y", "model.width=16:64:16"], _base())
  assert axes == {"seed": [0, 1, 2], "learning_rate": [1e-3, 3e-4], "use_bias": [False, True],
                  "name": ["x", "y"], "model.width": [16, 32, 48]}
  assert isinstance(axes["learning_rate"][0], float)


@pytest.mark.parametrize("spec, message", [
    ("seed", "expected field=a:b"),
    ("=1,2", "expected field=a:b"),
    ("seed=", "expected field=a:b"),
    ("depth=1,2", "no field 'depth'"),
    ("model.depth=1", "no field 'model.depth'"),
    ("seed=a,b", "'a' is not a int"),
    ("use_bias=yes", "'yes' is not a bool"),
    ("learning_rate=0:3", "needs an integer field"),
    ("seed=0:x", "must be integers"),
    ("seed=3:0", "gives no values"),
    ("seed=1,1", "repeats a value"),
    ("sizes=1,2", "cannot be swept"),
])
def test_bad_specs_are_refused_by_name(spec, message):
  with pytest.raises(sweep.SweepError, match=message.replace("(", r"\(")):
    sweep.parse_sweep([spec], _base())


def test_field_swept_twice_and_no_sweep_are_refused():
  with pytest.raises(sweep.SweepError, match="swept twice"):
    sweep.parse_sweep(["seed=0:2", "seed=3"], _base())
  with pytest.raises(sweep.SweepError, match="no --sweep given"):
    sweep.parse_sweep([], _base())


def test_points_are_the_cross_product_first_field_slowest():
  points = sweep.sweep_points({"a": [1, 2], "b": ["x", "y", "z"]})
  assert points == [{"a": a, "b": b} for a in (1, 2) for b in "xyz"]
  assert sweep.point_name({"seed": 0, "model.width": 8}) == "seed=0,model.width=8"
  config = sweep.point_config(_base(), {"model.width": 32, "seed": 4})
  assert (config.model.width, config.seed, _base().model.width) == (32, 4, 8)


def test_experiment_paths_and_unknown_executor():
  module, config = sweep.experiment_paths("calcium.chen2013")
  assert module == "launch.calcium.chen2013"
  assert config == ROOT / "launch" / "calcium" / "configs" / "chen2013.py"
  with pytest.raises(sweep.SweepError, match="expected <package>.<experiment>"):
    sweep.experiment_paths("chen2013")
  with pytest.raises(sweep.SweepError, match="--executor='pbs'"):
    sweep.run_sweep("regression_experiment", _base(), {"seed": [0]}, "/tmp/x", executor="pbs")


def test_aggregate_mean_and_standard_error_by_hand():
  rows = [{"lr": 1, "seed": 0, "m": 1.0}, {"lr": 1, "seed": 1, "m": 3.0},
          {"lr": 2, "seed": 0, "m": 5.0}]
  mean, se, n = sweep.aggregate(rows, "lr", [1, 2], "m")
  # lr=1: mean 2, sd sqrt(2), se sqrt(2)/sqrt(2) = 1; lr=2: one seed, se 0.
  np.testing.assert_allclose(mean, [2.0, 5.0])
  np.testing.assert_allclose(se, [1.0, 0.0])
  np.testing.assert_array_equal(n, [2, 1])


# ----------------------------------------------------------------------------- running


def test_local_sweep_runs_every_point_skips_finished_ones_and_collects(tmp_path):
  base = rx.get_config("smoke")
  base.num_chunks = 2
  axes = sweep.parse_sweep(["learning_rate=0.5,0.1", "seed=0:2"], base)
  pythonpath = os.environ.get("PYTHONPATH")
  log = []
  results = sweep.run_sweep("regression_experiment", base, axes, tmp_path, executor="local",
                            timeout_min=10, log=log.append)
  names = [sweep.point_name(p) for p in sweep.sweep_points(axes)]
  assert sorted(results) == sorted(names)
  # Each job computed what the launcher computes for that point's config in this process.
  for point in sweep.sweep_points(axes):
    reference = app.execute(rx.experiment, sweep.point_config(base, point),
                            tmp_path / "reference" / sweep.point_name(point), progress=False)
    assert results[sweep.point_name(point)]["w"] == pytest.approx(reference["w"], abs=1e-6)
  assert results["learning_rate=0.5,seed=0"]["final_loss"] < results[
      "learning_rate=0.1,seed=0"]["final_loss"]  # a larger step gets further in 40 steps

  assert os.environ.get("PYTHONPATH") == pythonpath  # the jobs' path does not leak out
  log.clear()
  assert sweep.run_sweep("regression_experiment", base, axes, tmp_path, executor="local",
                         log=log.append) == {}
  assert sum("finished, skipped" in line for line in log) == 4

  out = sweep.collect(tmp_path, metric="final_loss")
  assert len(out["rows"]) == 4 and not out["missing"]
  lines = (tmp_path / "sweep.csv").read_text().splitlines()
  assert lines[0].startswith("learning_rate,seed,") and len(lines) == 5
  assert (tmp_path / "sweep_learning_rate.png").stat().st_size > 1000
  assert not (tmp_path / "sweep_seed.png").exists()  # seeds are averaged, not plotted
  losses = [results[f"learning_rate=0.1,seed={s}"]["final_loss"] for s in (0, 1)]
  mean, se, _ = sweep.aggregate(out["rows"], "learning_rate", [0.1], "final_loss")
  assert mean[0] == pytest.approx(np.mean(losses))
  assert se[0] == pytest.approx(abs(losses[0] - losses[1]) / 2)  # sd/sqrt(2) for two seeds


def test_collect_names_points_that_have_not_finished(tmp_path):
  base = rx.get_config("smoke")
  base.num_chunks = 1
  axes = {"seed": [0, 1]}
  sweep.run_sweep("regression_experiment", base, {"seed": [0]}, tmp_path, executor="inline",
                  log=lambda _: None)
  (tmp_path / "sweep.json").write_text(json.dumps({"experiment": "regression_experiment",
                                                   "axes": axes}))
  out = sweep.collect(tmp_path, metric="final_loss")
  assert out["missing"] == ["seed=1"]
  assert "Not finished (1): seed=1" in (tmp_path / "sweep.md").read_text()


_SWEEP_SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {here!r}]
import regression_experiment as rx
from launch import sweep
sweep.run_sweep("regression_experiment", rx.get_config("kill"), {{"seed": [0]}}, {workdir!r},
                executor="local", timeout_min=10)
"""


@pytest.mark.slow  # ~1 min; the skip test above is its fast counterpart
def test_killed_sweep_resumes_the_point_to_the_same_result(tmp_path):
  reference = app.execute(rx.experiment, rx.get_config("kill"), tmp_path / "whole",
                          progress=False)
  workdir = tmp_path / "sweep"
  script = _SWEEP_SCRIPT.format(root=str(ROOT), here=str(HERE), workdir=str(workdir))
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  metrics = workdir / "seed=0" / "metrics.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
      break
    time.sleep(0.2)
  assert proc.poll() is None, "the sweep ended before it could be killed"
  os.killpg(proc.pid, signal.SIGKILL)  # the sweep process and its submitit job with it
  proc.wait()
  time.sleep(1.0)
  done = len(metrics.read_text().splitlines())
  assert 2 <= done < 8, f"killed after {done} of 8 chunks"
  assert not (workdir / "seed=0" / "summary.json").exists()

  log = []
  results = sweep.run_sweep("regression_experiment", rx.get_config("kill"), {"seed": [0]},
                            workdir, executor="local", timeout_min=10, log=log.append)
  assert "1 of 1 points to run (local)" in log
  resumed = results["seed=0"]
  np.testing.assert_allclose(resumed["w"], reference["w"], rtol=0, atol=1e-6)
  assert resumed["steps"] == reference["steps"] == 2400
  steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
  assert steps == sorted(set(steps)) and steps[-1] == 2400 and math.isfinite(resumed["b"])
