"""Resumption of the chunked, checkpointed envpool runs of launch/agents/sacd_runs."""
import functools
import json

import jax
import ml_collections
import numpy as np
import pytest

from agents.sac import host_train
from launch import app
from launch.agents import sacd_runs as runs

TASK = "LunarLanderContinuous-v2"
MAKE_ENV = runs.make_env


def _config():
  """The sacd smoke presets' agent and loop (one compiled trainer with a persistent jax cache),
  in three chunks."""
  c = ml_collections.ConfigDict()
  c.seed = 3
  c.num_seeds = 1
  c.num_envs = 2
  c.env_steps = 300
  c.steps_per_chunk = 100
  c.learning_starts = 50
  c.updates_per_step = 1
  c.batch_size = 32
  c.buffer_size = 2_000
  c.hidden_sizes = (32, 32)
  c.learning_rate = 3e-4
  c.discount = 0.9
  c.tau = 0.005
  c.influence_states = 16
  c.log_every = 25
  return c


@functools.cache
def _trainer():
  """One compiled trainer for every run of this file (the runs differ only in their workdirs)."""
  config = _config()
  env = MAKE_ENV(TASK, config.num_envs, 0)
  trainer = host_train.make_host_train(runs.train_config(config, "sac_d"), env, env_name=TASK)
  env.close()
  return trainer


class Killed(RuntimeError):
  """Stands for the process being killed in the middle of a chunk."""


def _execute(workdir, monkeypatch, kill_in_chunk=None):
  """Runs the seeds in `workdir`; returns (final state, history, seeds of the envs made)."""
  trainer = _trainer()
  made, out = [], {}

  def counting_make_env(task_id, num_envs, seed, weights=None):
    made.append(seed)
    return MAKE_ENV(task_id, num_envs, seed, weights)

  monkeypatch.setattr(runs, "make_env", counting_make_env)

  def experiment(config, run):
    if kill_in_chunk is not None:
      log = run.log_metrics

      def log_or_die(step, metrics, *, stream="eval"):
        if metrics.get("chunk") == kill_in_chunk:
          raise Killed(f"killed in chunk {kill_in_chunk}")
        log(step, metrics, stream=stream)

      run.log_metrics = log_or_die
    _, states, histories = runs.run_seeds(config, run, TASK, "sac_d", tag="t", trainer=trainer)
    out["state"], out["history"] = states[0], histories[0]
    return {}

  app.execute(experiment, _config(), workdir, progress=False)
  return out["state"], out["history"], made


def _stream_chunks(workdir):
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return sorted(r["chunk"] for r in lines if r["stream"] == "t/seed3")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
  ref_state, ref_history, made = _execute(tmp_path / "ref", monkeypatch)
  assert made == [runs.chunk_seed(3, c) for c in range(3)]
  with pytest.raises(Killed):
    _execute(tmp_path / "run", monkeypatch, kill_in_chunk=3)
  state, history, made = _execute(tmp_path / "run", monkeypatch)
  # Only the third chunk ran again, from the checkpoint written after the second.
  assert made == [runs.chunk_seed(3, 2)]
  assert int(state.env_steps) == int(ref_state.env_steps) == 300
  assert int(state.buffer.size) > 500      # Rows of all three chunks (minus envpool's resets).
  leaves, ref_leaves = jax.tree.leaves(state), jax.tree.leaves(ref_state)
  assert len(leaves) == len(ref_leaves)
  for a, b in zip(leaves, ref_leaves):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.agent))
  assert set(history) == set(ref_history)
  for name in history:
    np.testing.assert_array_equal(history[name], ref_history[name], err_msg=name)
  np.testing.assert_array_equal(history["metrics_step"], np.arange(25, 301, 25))
  assert len(history["episode_return"]) >= 1 and np.all(np.isfinite(history["episode_return"]))
  # Five lines per chunk (four metric rows and the chunk summary), none duplicated by the kill.
  assert _stream_chunks(tmp_path / "run") == _stream_chunks(tmp_path / "ref") == (
      [1] * 5 + [2] * 5 + [3] * 5)
  # A finished run is restored, not recomputed.
  again, _, made = _execute(tmp_path / "run", monkeypatch)
  assert made == []
  np.testing.assert_array_equal(again.agent.log_alpha, state.agent.log_alpha)


def test_chunking_must_divide_the_run():
  config = _config()
  config.steps_per_chunk = 70
  with pytest.raises(ValueError, match=r"env_steps \(300\) must be a positive multiple of "
                                       r"config.steps_per_chunk \(70\)"):
    runs.num_chunks(config)
  config.steps_per_chunk = 100
  config.log_every = 30
  with pytest.raises(ValueError, match=r"multiple of config.log_every \(30\)"):
    runs.num_chunks(config)
