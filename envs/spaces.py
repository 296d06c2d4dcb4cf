"""Observation and action specs: what an environment emits and accepts.

Specs are small immutable descriptions (shape, dtype, bounds) with `sample(key)` and
`contains(x)`, so agents can build networks and random policies without running the environment.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Discrete:
  """Integer actions or observations in `{0, ..., num_values - 1}` (scalar int32)."""
  num_values: int
  dtype: Any = jnp.int32

  def __post_init__(self):
    if int(self.num_values) < 1:
      raise ValueError(f"num_values must be >= 1, got {self.num_values}")

  @property
  def shape(self) -> tuple[int, ...]:
    return ()

  def sample(self, key: jax.Array) -> jax.Array:
    return jax.random.randint(key, (), 0, self.num_values, dtype=self.dtype)

  def contains(self, x) -> bool:
    x = np.asarray(x)
    return (x.shape == () and np.issubdtype(x.dtype, np.integer)
            and 0 <= int(x) < self.num_values)


@dataclasses.dataclass(frozen=True)
class Box:
  """Arrays of a fixed shape and dtype with elementwise bounds `low <= x <= high`."""
  low: float
  high: float
  shape: tuple[int, ...]
  dtype: Any = jnp.float32

  def sample(self, key: jax.Array) -> jax.Array:
    if jnp.issubdtype(self.dtype, jnp.integer):
      return jax.random.randint(key, self.shape, int(self.low), int(self.high) + 1, self.dtype)
    return jax.random.uniform(key, self.shape, self.dtype, self.low, self.high)

  def contains(self, x) -> bool:
    x = np.asarray(x)
    return (x.shape == tuple(self.shape) and x.dtype == np.dtype(self.dtype)
            and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))
