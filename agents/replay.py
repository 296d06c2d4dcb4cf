"""Uniform experience replay as a ring buffer held in a pytree on the device.

The buffer is a pytree of arrays with a leading `[capacity]` axis plus two int32 counters, so it
lives inside `jit`/`lax.scan`, is checkpointed with the rest of the training state and is vmapped
over seeds like any other state. New rows overwrite the oldest once the buffer is full (a ring);
sampling draws uniformly from the rows written so far, never from unwritten slots.

    buffer = replay_buffer(capacity=10_000)
    state = buffer.init(example_transition)       # one row, no leading axis
    state = buffer.add(state, batch)              # leading axis n <= capacity
    batch = buffer.sample(state, key, batch_size)
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class ReplayState(NamedTuple):
  """Ring-buffer contents.

  Attributes:
    data: pytree like a transition, each leaf with a leading `[capacity]` axis.
    position: int32 index of the next slot to write.
    size: int32 number of valid rows, `min(rows written, capacity)`.
  """
  data: Any
  position: jax.Array
  size: jax.Array


class ReplayBuffer(NamedTuple):
  """Pure functions of a uniform ring replay buffer (see the module docstring)."""
  init: Callable[[Any], ReplayState]
  add: Callable[..., ReplayState]
  sample: Callable[[ReplayState, jax.Array, int], Any]


def replay_buffer(capacity: int) -> ReplayBuffer:
  """Builds a uniform ring replay buffer with room for `capacity` transitions.

  Args:
    capacity: number of rows kept; a positive integer.

  Returns:
    `ReplayBuffer(init, add, sample)` of pure, jittable functions.
  """
  if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
    raise ValueError(f"capacity must be a positive integer, got {capacity!r}")

  def init(example: Any) -> ReplayState:
    """Empty buffer whose rows have the shapes and dtypes of `example` (one transition)."""
    leaves = jax.tree.leaves(example)
    if not leaves:
      raise ValueError("example must be a non-empty pytree of arrays (one transition)")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

  def add(state: ReplayState, batch: Any, mask: jax.Array | None = None) -> ReplayState:
    """Writes the `n` rows of `batch` (leading axis n <= capacity) after the newest row.

    Args:
      state: the buffer.
      batch: pytree of `[n, ...]` rows.
      mask: optional `[n]` bool; only rows with `mask` True are written (in order, contiguously),
        e.g. to skip the reset steps of a host environment. Jittable: the row count may be traced.
    """
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(batch)}
    if len(sizes) != 1 or None in sizes:
      raise ValueError(f"batch leaves must share one leading (row) axis; got leading sizes {sizes}")
    n = sizes.pop()
    if n > capacity:
      raise ValueError(f"batch has {n} rows, more than the buffer capacity {capacity}")
    jax.tree.map(_check_row_shape, state.data, batch)
    if mask is None:
      offsets = jnp.arange(n, dtype=jnp.int32)
      written = jnp.asarray(n, jnp.int32)
    else:
      mask = jnp.asarray(mask, bool)
      if mask.shape != (n,):
        raise ValueError(f"mask must have shape ({n},) like the batch rows, got {mask.shape}")
      offsets = jnp.cumsum(mask.astype(jnp.int32)) - 1
      written = jnp.sum(mask.astype(jnp.int32))
    idx = (state.position + offsets) % capacity
    if mask is not None:
      idx = jnp.where(mask, idx, capacity)  # Out of range: dropped by mode="drop".
    data = jax.tree.map(lambda d, x: d.at[idx].set(jnp.asarray(x, d.dtype), mode="drop"),
                        state.data, batch)
    return ReplayState(data, (state.position + written) % capacity,
                       jnp.minimum(state.size + written, capacity).astype(jnp.int32))

  def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Any:
    """Draws `batch_size` rows uniformly, with replacement, from the valid rows.

    An empty buffer cannot be sampled: outside `jit` this raises; inside `jit` the caller must
    guarantee `size > 0` (the training loops only sample after `learning_starts` steps).
    """
    if not isinstance(state.size, jax.core.Tracer) and int(state.size) == 0:
      raise ValueError("cannot sample from an empty replay buffer (size 0); add rows first")
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda d: d[idx], state.data)

  return ReplayBuffer(init, add, sample)


def _check_row_shape(stored: jax.Array, new: jax.Array) -> None:
  if stored.shape[1:] != jnp.shape(new)[1:]:
    raise ValueError(f"batch rows have shape {jnp.shape(new)[1:]}, but the buffer stores rows of "
                     f"shape {stored.shape[1:]}")
