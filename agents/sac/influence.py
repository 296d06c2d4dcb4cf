"""Reward influence: how strongly each value component steers the action choice
(MacGlashan et al. 2022, Sec. 4, continuous-action form).

For a state s and action a, the influence of component i is the size of the action-gradient of
its value, normalised over the components:

    I_i(s, a) = || d Q^i(s, a) / d a || / sum_k || d Q^k(s, a) / d a ||.

A component whose value is flat in the action has no say in which action the greedy policy
prefers, whatever its magnitude; the summed-value policy gradient is the sum of these vectors.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def reward_influence(q_fn: Callable[[jax.Array, jax.Array], jax.Array], obs: jax.Array,
                     action: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Normalised action-gradient norms of each value component.

  Args:
    q_fn: `q_fn(obs [obs_dim], action [action_dim]) -> [K]` component values of ONE state.
    obs: `[B, obs_dim]` states.
    action: `[B, action_dim]` actions at which the gradients are taken (usually pi's mean).
    eps: where every gradient vanishes the influence is uniform, `1/K`.

  Returns:
    `[B, K]` influences, non-negative, summing to one over K.
  """
  if jnp.ndim(obs) != 2 or jnp.ndim(action) != 2 or obs.shape[0] != action.shape[0]:
    raise ValueError(f"obs and action must be [B, obs_dim] and [B, action_dim] with the same B, "
                     f"got {jnp.shape(obs)} and {jnp.shape(action)}")

  def one(o, a):
    jac = jax.jacrev(q_fn, argnums=1)(o, a)               # [K, action_dim]
    norms = jnp.linalg.norm(jac, axis=-1)
    total = jnp.sum(norms)
    k = norms.shape[0]
    return jnp.where(total > eps, norms / jnp.maximum(total, eps), jnp.full_like(norms, 1.0 / k))

  return jax.vmap(one)(obs, action)


def agent_influence(critic: Callable, critic_params, obs: jax.Array, action: jax.Array,
                    num_components: int) -> jax.Array:
  """Influence of the reward components of a SAC-D critic (the entropy head is left out).

  The gradients are those of the twin whose summed value is smaller at `(s, a)`, the twin the
  SAC-D target would pick.

  Args:
    critic: `critic(params, obs [B, D], action [B, A]) -> [2, B, H]` (`Agent.critic`).
    critic_params: its parameters.
    obs: `[B, obs_dim]`; action: `[B, action_dim]`.
    num_components: number of reward components K (the first K heads).

  Returns:
    `[B, K]` influences.
  """

  def q_fn(o, a):
    q = critic(critic_params, o[None], a[None])[:, 0]       # [2, H]
    twin = jnp.argmin(jnp.sum(q, axis=-1))
    return q[twin, :num_components]

  return reward_influence(q_fn, obs, action)
