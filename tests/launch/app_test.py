"""Tests of the launch framework: workdir checks, resumption, sharding, multi-process, errors."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from launch import app, claims, report, reproduce
from launch import workdir as workdir_lib

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent
EXPERIMENT = HERE / "regression_experiment.py"
sys.path.insert(0, str(HERE))
import regression_experiment as rx  # noqa: E402


def _env(**extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  env.update(extra)
  return env


def _launch(workdir, *overrides, preset="smoke", **popen):
  cmd = [sys.executable, str(EXPERIMENT), f"--config={EXPERIMENT}:{preset}",
         f"--workdir={workdir}", "--noprogress", *overrides]
  return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **popen)


def test_execute_writes_workdir_and_learns(tmp_path):
  summary = app.execute(rx.experiment, rx.get_config("smoke"), tmp_path, progress=False)
  # Starting from w = 0 the loss is log 2 exactly; 80 gradient steps must lower it well below.
  assert summary["first_loss"] == pytest.approx(np.log(2.0), rel=1e-3)
  assert summary["final_loss"] < 0.45
  assert summary["steps"] == 80
  assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 80
  assert json.loads((tmp_path / "config.json").read_text())["dim"] == 8
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines] == [20, 40, 60, 80]
  assert summary["compile_s"] > 0


def test_rerun_in_finished_workdir_resumes_without_recomputing(tmp_path):
  first = app.execute(rx.experiment, rx.get_config("smoke"), tmp_path, progress=False)
  second = app.execute(rx.experiment, rx.get_config("smoke"), tmp_path, progress=False)
  assert second["w"] == first["w"]
  assert second["compile_s"] == 0.0  # Nothing left to run, so nothing was compiled.
  assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


# Slow (140 s from a cold compile cache); fast counterparts: the killed-run resume of
# tests/launch/agents/sacd_runs_test.py and the finished-run resume test above.
@pytest.mark.slow
def test_resume_after_kill_gives_same_parameters(tmp_path):
  reference = app.execute(rx.experiment, rx.get_config("kill"), tmp_path / "whole",
                          progress=False)
  killed = tmp_path / "killed"
  proc = _launch(killed, preset="kill")
  deadline = time.time() + 240
  metrics = killed / "metrics.jsonl"
  while time.time() < deadline:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
      break
    if proc.poll() is not None:
      pytest.fail("run ended before it could be interrupted:\n" + proc.stdout.read())
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  done = len(metrics.read_text().splitlines())
  assert 2 <= done < 8, f"killed after {done} of 8 chunks"
  assert not (killed / "summary.json").exists()

  resumed = _launch(killed, preset="kill")
  out, _ = resumed.communicate(timeout=300)
  assert resumed.returncode == 0, out
  assert "resumed from checkpoint" in out
  summary = json.loads((killed / "summary.json").read_text())
  np.testing.assert_array_equal(summary["w"], reference["w"])
  assert summary["b"] == reference["b"]
  steps = [json.loads(l)["step"] for l in metrics.read_text().splitlines()]
  assert steps == [300 * (i + 1) for i in range(8)]  # Each chunk logged exactly once.


_SHARDED_SCRIPT = """
import json, sys
import jax
import jax.numpy as jnp
sys.path.insert(0, {here!r})
import regression_experiment as rx
from launch import app, parallel
assert jax.device_count() == 4, jax.devices()
config = rx.get_config("smoke")
one = app.execute(rx.experiment, config, {wd!r} + "/one",
                  mesh=parallel.data_mesh(jax.devices()[:1]), progress=False)
four = app.execute(rx.experiment, config, {wd!r} + "/four", progress=False)
print("RESULT " + json.dumps({{"one": one, "four": four}}))
"""


def test_sharded_training_equals_single_device(tmp_path):
  script = _SHARDED_SCRIPT.format(here=str(HERE), wd=str(tmp_path))
  out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
                       timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.split("RESULT ", 1)[1])
  assert result["four"]["devices"] == "4x cpu" and result["one"]["devices"] == "4x cpu"
  # The gradient's sum over examples is split over 4 devices: equal up to float32 reassociation.
  np.testing.assert_allclose(result["four"]["w"], result["one"]["w"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(result["four"]["b"], result["one"]["b"], rtol=1e-5, atol=1e-6)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.multiprocess
def test_two_processes_agree(tmp_path):
  address = f"127.0.0.1:{_free_port()}"
  env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen([sys.executable, str(HERE / "distributed_worker.py"), address, "2",
                             str(i), str(tmp_path / "run")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  results = [json.loads(o.split("RESULT ", 1)[1].splitlines()[0]) for o in outs]
  assert [r["devices"] for r in results] == [4, 4]
  assert results[0]["w"] == results[1]["w"]
  single = app.execute(rx.experiment, rx.get_config("smoke"), tmp_path / "single",
                       progress=False)
  np.testing.assert_allclose(results[0]["w"], single["w"], rtol=1e-5, atol=1e-6)


def test_resume_with_different_config_is_refused_and_keeps_workdir(tmp_path):
  app.execute(rx.experiment, rx.get_config("smoke"), tmp_path, progress=False)
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  changed = rx.get_config("smoke")
  changed.learning_rate = 0.1
  with pytest.raises(workdir_lib.WorkdirError, match=r"config.learning_rate: workdir has 0.5"):
    app.execute(rx.experiment, changed, tmp_path, progress=False)
  after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  assert after == before


def test_run_control_fields_may_change_on_resume(tmp_path):
  config = rx.get_config("smoke")
  with config.unlocked():
    config.run_control_fields = ("log_note",)
    config.log_note = "first"
  app.execute(rx.experiment, config, tmp_path, progress=False)
  config.log_note = "second"
  app.execute(rx.experiment, config, tmp_path, progress=False)


@pytest.mark.parametrize("override, message", [
    ("--config.no_such_field=3", "--config.no_such_field: the config has no field"),
    ("--config.dim=abc", "--config.dim=abc: invalid literal for int()"),
])
def test_bad_override_is_refused_by_name(tmp_path, override, message):
  proc = _launch(tmp_path / "w", override)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode != 0
  assert message in out
  assert not (tmp_path / "w").exists()  # Refused before anything was written.


def test_unwritable_workdir_is_refused(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(workdir_lib.WorkdirError, match=r"--workdir=.*file/sub: cannot create"):
    app.execute(rx.experiment, rx.get_config("smoke"), blocker / "sub", progress=False)


def test_config_without_seed_is_refused(tmp_path):
  with pytest.raises(ValueError, match="no field 'seed'"):
    app.execute(rx.experiment, ml_collections.ConfigDict({"dim": 3}), tmp_path)


def test_seeds_in_one_loop_match_separate_runs(tmp_path):
  """`seed_keys` vmaps init and chunk: each seed's result equals its own single-seed run."""
  import jax.numpy as jnp

  def init(key):
    return {"x": jnp.zeros(3), "key": key}

  def chunk(state):
    def step(s, _):
      key, sub = jax.random.split(s["key"])
      x = 0.9 * s["x"] + jax.random.normal(sub, (3,))
      return {"x": x, "key": key}, {"norm": jnp.sum(x ** 2)}
    return jax.lax.scan(step, state, None, length=5)

  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  config = ml_collections.ConfigDict({"seed": 0})

  def experiment(config, run):
    many = run.train_loop(init, chunk, 3, name="many", seed_keys=keys)
    singles = [run.train_loop(lambda k=k: init(k), chunk, 3, name=f"one{i}")
               for i, k in enumerate(keys)]
    return {"many": np.asarray(many["x"]).tolist(),
            "singles": [np.asarray(s["x"]).tolist() for s in singles],
            "hist_many": run.history("many")["norm"].shape,
            "hist_one": run.history("one0")["norm"].tolist(),
            "hist_many0": run.history("many")["norm"][0].tolist()}

  out = app.execute(experiment, config, tmp_path, progress=False)
  np.testing.assert_allclose(out["many"], out["singles"], rtol=1e-6)
  assert out["hist_many"] == [4, 15]
  np.testing.assert_allclose(out["hist_many0"], out["hist_one"], rtol=1e-6)


def test_host_loop_chunk_runs_unjitted_and_resumes(tmp_path):
  """`jit_chunk=False`: a host loop of jitted steps (`supervised`'s loop="host") runs as it is,
  with checkpoints: 2 chunks then 2 more on resume equal 4 in one go, and the history holds
  every step."""
  from latent_dynamics import supervised as sup
  rng = np.random.default_rng(0)
  x = rng.normal(size=(32, 2)).astype(np.float32)
  data = {"x": x, "y": (x @ np.array([1.0, -1.0], np.float32))}

  def mse(params, batch):
    return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2), {}
  trainer = sup.make_trainer(mse, lambda key: {"w": jnp.zeros(2)},
                             sup.TrainConfig(learning_rate=0.1, batch_size=4, steps_per_chunk=3,
                                             loop="host"))
  init = lambda: trainer.init(jax.random.key(1))  # noqa: E731

  def experiment(chunks):
    def run_it(config, run):
      state = run.train_loop(init, trainer.chunk, chunks, name="host", data=data,
                             jit_chunk=False)
      return {"w": np.asarray(state.params["w"]).tolist(), "steps": int(state.steps),
              "hist": run.history("host")["loss"].shape}
    return run_it

  config = ml_collections.ConfigDict({"seed": 0})
  app.execute(experiment(2), config, tmp_path / "a", progress=False)
  resumed = app.execute(experiment(4), config, tmp_path / "a", progress=False)
  whole = app.execute(experiment(4), config, tmp_path / "b", progress=False)
  assert resumed["steps"] == whole["steps"] == 12 and whole["hist"] == [12]
  np.testing.assert_allclose(resumed["w"], whole["w"], rtol=1e-6)
  with pytest.raises(ValueError, match="loop='host' chunk cannot run traced"):
    app.execute(lambda c, run: run.train_loop(init, trainer.chunk, 1, name="jit", data=data),
                config, tmp_path / "c", progress=False)


def test_config_differences_hand_case():
  old = {"a": 1, "b": {"c": 2.0, "d": [1, 2]}, "progress": True}
  new = {"a": 1, "b": {"c": 3.0, "d": [1, 2]}, "progress": False, "e": "x"}
  assert workdir_lib.config_differences(old, new) == [
      "config.b.c: workdir has 2.0, this run has 3.0",
      "config.e: workdir has '<absent>', this run has 'x'"]


def test_report_lists_headline_numbers_and_figures(tmp_path):
  run_dir = tmp_path / "runs" / "smoke" / "exp"
  (run_dir / "figures").mkdir(parents=True)
  (run_dir / "figures" / "curve.png").write_bytes(b"png")
  entries = [{"name": "exp", "title": "An experiment", "headline": ["acc"], "workdir": run_dir,
              "status": "ok", "seconds": 1.5, "summary": {"acc": 0.912345, "wall_s": 1.0}},
             {"name": "bad", "title": "Broken", "headline": ["acc"], "workdir": tmp_path / "b",
              "status": "failed", "seconds": 0.1, "error": "ValueError: boom"}]
  text = report.write_report(tmp_path, "smoke", entries).read_text()
  assert "| An experiment (`exp`) | ok | 1.5 | acc = 0.9123 |" in text
  assert "![curve](runs/smoke/exp/figures/curve.png)" in text
  assert "| Broken (`bad`) | failed | 0.1 | - |" in text and "ValueError: boom" in text


def _claim_entry(name, summary, *claims, status="ok"):
  return {"name": name, "title": name, "headline": [], "workdir": pathlib.Path("/nonexistent"),
          "status": status, "seconds": 1.0, "summary": summary, "claims": list(claims)}


def test_report_claims_table_verdicts_follow_the_numbers(tmp_path):
  Claim = claims.Claim
  entries = [
      _claim_entry("calcium.chen2013", {"ours_corr": 0.70, "oasis_corr": 0.60},
                   Claim("Speiser et al. 2017", "DeepSpike above OASIS AR2", "ours_corr",
                         "oasis_corr", ">", anchor_name="OASIS AR2"),
                   Claim("Speiser et al. 2017", "by more than 0.2", "ours_corr", "oasis_corr",
                         ">", margin=0.2)),
      _claim_entry("manifold.swiss_roll", {"err": 0.05},
                   Claim("Park et al. 2015", "error below 0.1", "err", 0.1, "<"),
                   Claim("Park et al. 2015", "error below 0.1 by 0.06", "err", 0.1, "<",
                         margin=0.06)),
      _claim_entry("agents.x", {"ret": float("nan")},
                   Claim("Someone", "returns above random", "ret", "random_ret", ">")),
      _claim_entry("agents.y", {}, Claim("Someone", "learns", "ret", 0.0, ">"),
                   status="failed"),
  ]
  text = report.write_report(tmp_path, "demo", entries).read_text()
  assert report.SMOKE_NOTE not in text
  assert "2 of 6 claims hold at this preset." in text
  rows = [line for line in text.splitlines() if line.startswith("| Speiser") or
          line.startswith("| Park") or line.startswith("| Someone")]
  # 0.70 > 0.60 holds; 0.70 > 0.60 + 0.2 does not; 0.05 < 0.1 holds; 0.05 < 0.1 - 0.06 does not;
  # a NaN or absent number (a failed run) is not measured rather than a verdict.
  assert [r.rsplit("|", 2)[-2].strip() for r in rows] == [
      "holds", "does not hold", "holds", "does not hold", "not measured", "not measured"]
  assert "| OASIS AR2: 0.6 | ours_corr: 0.7 |" in rows[0]
  assert "| fixed 0.1 | err: 0.05 |" in rows[2]
  smoke = report.write_report(tmp_path, "smoke", entries[:1]).read_text()
  assert smoke.splitlines()[2] == report.SMOKE_NOTE


def test_malformed_claims_are_refused_by_name():
  with pytest.raises(ValueError, match="relation '=>'"):
    claims.check_claim(claims.Claim("p", "c", "a", "b", "=>"))
  with pytest.raises(ValueError, match="margin must be >= 0"):
    claims.check_claim(claims.Claim("p", "c", "a", "b", ">", margin=-1.0))
  with pytest.raises(ValueError, match="`anchor` must be"):
    claims.check_claim(claims.Claim("p", "c", "a", None))


def test_demo_runs_only_the_demo_experiments_and_each_has_claims():
  names = reproduce.registered_experiments()
  demos = [n for n in names if reproduce.config_module(n).REPORT.get("demo", False)]
  assert demos, "no experiment is marked REPORT['demo']"
  for name in demos:
    report_spec = reproduce.config_module(name).REPORT
    assert report_spec.get("claims"), f"{name} is in the demo but states no claim"
    for c in report_spec["claims"]:
      claims.check_claim(c)


def test_second_reproduce_call_reuses_runs_and_reports_their_first_time(tmp_path, monkeypatch):
  import types

  calls = []

  def experiment(config, run):
    calls.append(config.x)
    time.sleep(0.3)  # a run time that a read-back could not take
    return {"acc": 0.5}

  module = types.SimpleNamespace(
      REPORT={"title": "Fake", "headline": ("acc",)},
      get_config=lambda preset: ml_collections.ConfigDict({"seed": 0, "x": 1}))
  monkeypatch.setattr(reproduce, "registered_experiments", lambda: ["pkg.fake"])
  monkeypatch.setattr(reproduce, "config_module", lambda name: module)
  monkeypatch.setattr(reproduce, "experiment_fn", lambda name: experiment)
  (first,) = reproduce.reproduce("smoke", tmp_path, progress=False)
  (second,) = reproduce.reproduce("smoke", tmp_path, progress=False)
  assert calls == [1] and not first.get("reused") and second["reused"]
  assert first["seconds"] >= 0.3
  assert second["seconds"] == pytest.approx(first["summary"]["wall_s"])
  text = (tmp_path / "REPORT.md").read_text()
  assert "1 of 1 runs finished in an earlier call and reused" in text
  # A `|` in a title is escaped, so it cannot split the table's cells.
  module.REPORT["title"] = "Fake | with a pipe"
  reproduce.reproduce("smoke", tmp_path, progress=False)
  piped = (tmp_path / "REPORT.md").read_text()
  assert "| Fake \\| with a pipe (`pkg.fake`) | ok (reused) |" in piped
  assert f"| Fake (`pkg.fake`) | ok (reused) | {second['seconds']:.1f} |" in text


def test_reproduce_refuses_unknown_experiment(tmp_path):
  with pytest.raises(ValueError, match="--only names unregistered experiments"):
    reproduce.reproduce("smoke", tmp_path, only=["no_such_experiment"])
  with pytest.raises(ValueError, match="--preset must be one of"):
    reproduce.reproduce("huge", tmp_path)


def test_every_registered_config_has_presets_and_seed():
  names = reproduce.registered_experiments()
  # The walk over launch/*/configs/ finds the experiments of every package (spot-check a few)
  # and skips config modules without REPORT (the fields that the manifold configs share).
  assert {"stochastic_graphs.bernoulli", "latent_dynamics.plds", "manifold.swiss_roll",
          "calcium.chen2013"} <= set(names)
  assert "manifold.fit" not in names
  demos = [n for n in names if reproduce.config_module(n).REPORT.get("demo", False)]
  for name in names:
    module = reproduce.config_module(name)
    for preset in reproduce.PRESETS:
      if preset == "demo" and name not in demos:
        continue  # only the demo experiments need a demo preset
      config = module.get_config(preset)
      assert "seed" in config, (name, preset)
    assert callable(reproduce.experiment_fn(name)), name
    with pytest.raises(ValueError, match="'huge'"):  # An unknown preset is refused by name.
      module.get_config("huge")


def test_launcher_finds_its_own_config(monkeypatch):
  # `python -m launch.calcium.simulated` without --config uses launch/calcium/configs/simulated.py.
  import types

  main = types.ModuleType("__main__")
  main.__spec__ = types.SimpleNamespace(name="launch.calcium.simulated")
  monkeypatch.setitem(sys.modules, "__main__", main)
  assert app._default_config_path() == str(ROOT / "launch" / "calcium" / "configs" /
                                            "simulated.py")
  main.__spec__ = types.SimpleNamespace(name="launch.calcium.no_such_experiment")
  assert app._default_config_path() is None


def test_tensorboard_events_hold_every_scalar_metric_and_the_figures(tmp_path):
  import matplotlib
  from tensorboard.backend.event_processing import event_accumulator
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  config = rx.get_config("smoke")
  wd = workdir_lib.Workdir(tmp_path, config)
  for step, loss in ((20, 0.5), (40, 0.25)):
    wd.log_metrics(step, {"loss": loss, "w": [1.0, 2.0], "ok": True}, stream="train")
  fig, ax = plt.subplots(figsize=(2, 1.5))
  ax.plot([0, 1], [1, 0])
  wd.save_figure("curve", fig)
  wd.write_summary({"final_loss": 0.25})
  acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
  acc.Reload()
  # Scalars only: the vector `w` and the flag `ok` stay in metrics.jsonl.
  assert acc.Tags()["scalars"] == ["train/loss"]
  assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(20, 0.5), (40, 0.25)]
  image = acc.Images("figures/curve")[0]
  png = plt.imread(tmp_path / "figures" / "curve.png")
  assert (image.height, image.width) == png.shape[:2]


def test_finished_summary_only_for_the_same_config(tmp_path):
  config = rx.get_config("smoke")
  config.num_chunks = 1
  assert workdir_lib.finished_summary(tmp_path, config) is None  # nothing there yet
  summary = app.execute(rx.experiment, config, tmp_path, progress=False)
  assert workdir_lib.finished_summary(tmp_path, config) == json.loads(
      (tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
  config.progress = False  # a run-control field: still the same run
  config.run_control_fields = ("progress",)
  assert workdir_lib.finished_summary(tmp_path, config) is not None
  other = rx.get_config("smoke")
  other.num_chunks, other.learning_rate = 1, 0.1
  assert workdir_lib.finished_summary(tmp_path, other) is None
