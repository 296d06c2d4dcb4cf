"""Architectures of the SAC and SAC-D actor and critics (flax.linen; no training logic here)."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """ReLU multilayer perceptron with a linear output layer of width `out_dim`."""
  hidden_sizes: Sequence[int]
  out_dim: int

  @nn.compact
  def __call__(self, x):
    for width in self.hidden_sizes:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.out_dim)(x)


class Actor(nn.Module):
  """Mean and log-std of the pre-tanh Gaussian policy.

  The log-std is squashed smoothly into `[log_std_min, log_std_max]` (as in common SAC
  implementations) so that early updates cannot drive the policy to a degenerate width.
  """
  hidden_sizes: Sequence[int]
  action_dim: int
  log_std_min: float = -5.0
  log_std_max: float = 2.0

  @nn.compact
  def __call__(self, obs):
    out = MLP(self.hidden_sizes, 2 * self.action_dim)(obs)
    mean, raw = jnp.split(out, 2, axis=-1)
    log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (jnp.tanh(raw) + 1)
    return mean, log_std


class TwinCritic(nn.Module):
  """Two independent critics `Q_1, Q_2` (clipped double-Q), each with `num_outputs` heads.

  SAC uses `num_outputs = 1`; SAC-D uses one head per value component. Returns
  `[2, ..., num_outputs]`.
  """
  hidden_sizes: Sequence[int]
  num_outputs: int

  @nn.compact
  def __call__(self, obs, action):
    x = jnp.concatenate([obs, action], axis=-1)
    twins = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                    in_axes=None, out_axes=0, axis_size=2)
    return twins(self.hidden_sizes, self.num_outputs)(x)
