"""launch.host_loop: checkpoints, exact resumption after a kill, history and metric lines."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from launch import host_loop
from launch.workdir import Workdir


class Killed(RuntimeError):
  pass


def _workdir(path):
  return Workdir(path, ml_collections.ConfigDict({"seed": 0}))


def _init():
  return {"total": jnp.zeros(()), "key": jax.random.key(5), "chunks": jnp.zeros((), jnp.int32)}


def _chunk_fn(made, kill_in=None):
  """State: a running sum of uniform draws of the state's key; history: the chunk's draws."""

  def chunk_fn(state, chunk):
    made.append(chunk)
    if chunk == kill_in:
      raise Killed(chunk)
    key, sub = jax.random.split(state["key"])
    draws = np.asarray(jax.random.uniform(sub, (3,)))
    state = {"total": state["total"] + draws.sum(), "key": key, "chunks": state["chunks"] + 1}
    return state, {"draws": draws, "chunk": np.array([chunk])}, {"draw_mean": float(draws.mean())}

  return chunk_fn


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
  made = []
  ref, ref_history = host_loop.host_loop(_workdir(tmp_path / "ref"), _init, _chunk_fn(made), 4,
                                         name="t", step_of=lambda s: 10 * int(s["chunks"]))
  assert made == [0, 1, 2, 3]
  assert int(ref["chunks"]) == 4
  np.testing.assert_array_equal(ref_history["chunk"], [0, 1, 2, 3])
  assert ref_history["draws"].shape == (12,)
  np.testing.assert_allclose(float(ref["total"]), ref_history["draws"].sum(), rtol=1e-6)
  lines = _workdir(tmp_path / "ref").read_metrics("t")
  assert [(l["step"], l["chunk"]) for l in lines] == [(10, 1), (20, 2), (30, 3), (40, 4)]

  made = []
  with pytest.raises(Killed):
    host_loop.host_loop(_workdir(tmp_path / "run"), _init, _chunk_fn(made, kill_in=2), 4,
                        name="t")
  assert made == [0, 1, 2]
  made = []
  state, history = host_loop.host_loop(_workdir(tmp_path / "run"), _init, _chunk_fn(made), 4,
                                       name="t")
  assert made == [2, 3]  # Resumed after the checkpoint of chunk 2.
  assert float(state["total"]) == float(ref["total"])
  np.testing.assert_array_equal(jax.random.key_data(state["key"]), jax.random.key_data(ref["key"]))
  np.testing.assert_array_equal(history["draws"], ref_history["draws"])
  assert [l["chunk"] for l in _workdir(tmp_path / "run").read_metrics("t")] == [1, 2, 3, 4]

  made = []  # A finished run is only restored.
  again, _ = host_loop.host_loop(_workdir(tmp_path / "run"), _init, _chunk_fn(made), 4, name="t")
  assert made == [] and float(again["total"]) == float(ref["total"])


def test_bad_num_chunks(tmp_path):
  with pytest.raises(ValueError, match="num_chunks must be a positive integer; got 0"):
    host_loop.host_loop(_workdir(tmp_path), _init, _chunk_fn([]), 0)
