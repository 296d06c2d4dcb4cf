"""Baselines: moving averages (optax-style factory) and leave-one-out baselines.

A baseline b_v subtracted from the learning signal of score-function node v leaves the estimator
unbiased as long as b_v depends only on non-descendants of v (Weber et al. 2019, Eq. (6);
Williams 1992). Learned baselines V(B) are ordinary network outputs declared in the model with
`stochastic_graphs.baseline(node, value)`; `make_surrogate` checks the non-descendant condition
on the derived graph and returns their Monte Carlo fitting loss in `SurrogateInfo.baseline_loss`.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class MovingAverageState(NamedTuple):
  """State of `moving_average_baseline`: biased averages and the number of updates."""
  biased: Any
  count: jax.Array


class BaselineTransform(NamedTuple):
  """Pure functions of a stateful baseline (optax style)."""
  init: Callable[[Any], MovingAverageState]
  update: Callable[[MovingAverageState, Any], MovingAverageState]
  value: Callable[[MovingAverageState], Any]


def moving_average_baseline(decay: float = 0.9) -> BaselineTransform:
  """Exponential moving average of the learning signal, zero-debiased (Adam-style).

  `value = biased / (1 - decay**count)`, the average of the returns seen so far with weights
  proportional to decay**age; 0 before the first update. Being computed from earlier samples
  only, it is a valid baseline for every node.

  Args:
    decay: weight of the old average, in [0, 1).

  Returns:
    `BaselineTransform(init, update, value)`: `init(template)` takes a pytree of arrays with the
    shapes of one baseline per node (e.g. `info.returns` of one example); `update(state,
    returns)` averages any extra leading (batch) axes of `returns` first.
  """
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"decay must be in [0, 1); got {decay}.")

  def init(template):
    return MovingAverageState(jax.tree.map(jnp.zeros_like, template), jnp.zeros((), jnp.int32))

  def update(state, returns):
    def one(b, r):
      r = jnp.asarray(r)
      extra = r.ndim - b.ndim
      if extra < 0 or r.shape[extra:] != b.shape:
        raise ValueError(f"returns leaf of shape {r.shape} does not end with the baseline's "
                         f"shape {b.shape}.")
      r = jnp.mean(r, axis=tuple(range(extra))) if extra else r
      return decay * b + (1.0 - decay) * jax.lax.stop_gradient(r).astype(b.dtype)
    return MovingAverageState(jax.tree.map(one, state.biased, returns), state.count + 1)

  def value(state):
    corr = 1.0 - decay ** state.count.astype(jnp.result_type(float))
    return jax.tree.map(lambda b: jnp.where(state.count > 0, b / jnp.maximum(corr, 1e-12),
                                            jnp.zeros_like(b)), state.biased)

  return BaselineTransform(init, update, value)


def leave_one_out_baseline(signals: jax.Array, axis: int = 0) -> jax.Array:
  """Mean of the other samples: b_k = (sum_j f_j - f_k) / (K - 1) (Kool et al. 2019, Eq. (8)).

  Args:
    signals: per-sample learning signals, K >= 2 along `axis`.
    axis: the sample axis.

  Returns:
    Array of the same shape, stopped (each b_k is independent of sample k).
  """
  signals = jnp.asarray(signals)
  k = signals.shape[axis]
  if k < 2:
    raise ValueError(f"signals needs at least 2 samples along axis {axis}; got {k}.")
  total = jnp.sum(signals, axis=axis, keepdims=True)
  return jax.lax.stop_gradient((total - signals) / (k - 1))
