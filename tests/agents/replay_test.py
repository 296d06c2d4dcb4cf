"""Tests of the device ring replay buffer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import replay


def _rows(values):
  values = jnp.asarray(values, jnp.float32)
  return {"x": values, "y": jnp.stack([values, -values], axis=-1)}


def test_wraps_around_and_overwrites_oldest():
  buffer = replay.replay_buffer(5)
  state = buffer.init({"x": jnp.zeros(()), "y": jnp.zeros(2)})
  state = buffer.add(state, _rows([0, 1, 2]))
  state = jax.jit(buffer.add)(state, _rows([3, 4, 5, 6]))
  np.testing.assert_array_equal(state.data["x"], [5, 6, 2, 3, 4])
  np.testing.assert_array_equal(state.data["y"][:, 1], [-5, -6, -2, -3, -4])
  assert int(state.position) == 2 and int(state.size) == 5


def test_masked_add_writes_only_masked_rows_contiguously():
  buffer = replay.replay_buffer(4)
  state = buffer.init({"x": jnp.zeros(()), "y": jnp.zeros(2)})
  state = buffer.add(state, _rows([1, 2, 3]), mask=jnp.array([True, False, True]))
  np.testing.assert_array_equal(state.data["x"], [1, 3, 0, 0])
  assert int(state.position) == 2 and int(state.size) == 2
  state = buffer.add(state, _rows([4, 5, 6]), mask=jnp.array([True, True, True]))
  np.testing.assert_array_equal(state.data["x"], [6, 3, 4, 5])
  assert int(state.position) == 1 and int(state.size) == 4


def test_samples_only_valid_rows_uniformly():
  buffer = replay.replay_buffer(100)
  state = buffer.init({"x": jnp.zeros(()), "y": jnp.zeros(2)})
  state = buffer.add(state, _rows(np.arange(1, 8)))
  n = 7000
  batch = jax.jit(buffer.sample, static_argnums=2)(state, jax.random.key(0), n)
  values = np.asarray(batch["x"])
  assert set(np.unique(values)) == set(range(1, 8))  # Never an unwritten (zero) row.
  np.testing.assert_array_equal(batch["y"][:, 0], values)  # Rows stay intact.
  counts = np.bincount(values.astype(int), minlength=8)[1:]
  se = np.sqrt(n * (1 / 7) * (6 / 7))
  assert np.all(np.abs(counts - n / 7) < 5 * se), counts


def test_bad_input():
  with pytest.raises(ValueError, match="capacity"):
    replay.replay_buffer(0)
  buffer = replay.replay_buffer(3)
  state = buffer.init({"x": jnp.zeros(()), "y": jnp.zeros(2)})
  with pytest.raises(ValueError, match="empty replay buffer"):
    buffer.sample(state, jax.random.key(0), 2)
  with pytest.raises(ValueError, match="more than the buffer capacity 3"):
    buffer.add(state, _rows([1, 2, 3, 4]))
  with pytest.raises(ValueError, match="rows of shape"):
    buffer.add(state, {"x": jnp.zeros(2), "y": jnp.zeros((2, 3))})
