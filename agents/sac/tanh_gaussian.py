"""The tanh-squashed diagonal Gaussian policy distribution of SAC.

Actions are `u = tanh(x)` with `x ~ N(mean, diag(std^2))`, so they lie in `(-1, 1)^d`; the log
density follows the change of variables of Appendix C, Eq. (21) of Haarnoja et al. 2018
(arXiv:1801.01290):

    log pi(u | s) = log N(x; mean, std) - sum_i log(1 - tanh(x_i)^2).

distrax's `Tanh` bijector computes the Jacobian term in the stable form
`2 (log 2 - x - softplus(-2x))`, which stays finite where `1 - tanh(x)^2` underflows.
"""
from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp


def distribution(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
  """Tanh-squashed diagonal Gaussian over the last axis.

  Args:
    mean: `[..., action_dim]` mean of the pre-squash Gaussian.
    log_std: `[..., action_dim]` log standard deviation of the pre-squash Gaussian.

  Returns:
    A distrax distribution with event shape `[action_dim]` on `(-1, 1)^action_dim`.
  """
  if jnp.shape(mean) != jnp.shape(log_std):
    raise ValueError(f"mean and log_std must have the same shape, got {jnp.shape(mean)} and "
                     f"{jnp.shape(log_std)}")
  if jnp.ndim(mean) < 1:
    raise ValueError("mean must have a trailing action axis, got a scalar")
  base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
  return distrax.Transformed(base, distrax.Block(distrax.Tanh(), ndims=1))


def sample_and_log_prob(mean: jax.Array, log_std: jax.Array,
                        key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Reparameterised sample `u = tanh(mean + std * eps)` and its log density (Eq. (21)).

  Returns:
    `(action [..., action_dim], log_prob [...])`; gradients flow to `mean` and `log_std`.
  """
  return distribution(mean, log_std).sample_and_log_prob(seed=key)


def deterministic_action(mean: jax.Array) -> jax.Array:
  """The squashed mean `tanh(mean)`, the action used for evaluation."""
  return jnp.tanh(mean)
