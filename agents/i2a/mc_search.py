"""The Monte-Carlo search agent of the I2A paper's planner comparison, with the same model.

Weber et al. 2017, Sec. 4.2 ("Learning with imperfect models", Fig. 4 right): I2A is set beside
a Monte-Carlo search agent that plans with the same environment model: with a good model both
do well, with a poor model the search collapses while I2A, which learns how far to trust its
imagination, keeps its performance. (The paper text itself could not be consulted when this was
written; its rule is reconstructed as below, and each unstated detail is marked [O].)

Rule (`mc_action_values`, `make_mc_search_policy`):

- [P] From the real observation `o_t`, for every action `a`, rollouts of depth tau in the
  model: the first action is `a`, the later ones drawn from the rollout policy (the imagination
  core of I2A, `agents.i2a.imagination.imagine`, the same function I2A uses);
- [P] each rollout scores its imagined return plus a bootstrap value at its end,
  `G(a) = sum_{k=1..tau} gamma^{k-1} r_{t+k} + gamma^tau V(o_{t+tau})`;
- [P] the agent takes the action with the highest estimate, `argmax_a Q(a)` with
  `Q(a)` = the mean of `G(a)` over `num_rollouts` rollouts [O] (ties: the lowest index).
- [O] The rollout policy and the value are those of a trained standard (A2C) agent: its policy
  (the model-free agent the paper distils pi_hat from) and its value head; the model predicts
  no episode end, so rollouts run the full depth (as I2A's do).

    policy = make_mc_search_policy(model, model_params, rollout_logits_fn, value_fn,
                                   depth=3, num_rollouts=4, discount=0.99)
    action = policy(key, obs[B])          # agents.a2c.evaluation_rollout(policy, ...)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agents.i2a import env_model as em
from agents.i2a import imagination as im


def _check_positive(name: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def mc_action_values(model: em.EnvModelFns, model_params: Any,
                     rollout_logits_fn: Callable[[jax.Array], jax.Array],
                     value_fn: Callable[[jax.Array], jax.Array], obs: jax.Array,
                     key: jax.Array | None, *, depth: int, num_rollouts: int, discount: float,
                     rollout_actions: str = "sample", imagination_mode: str = "greedy"
                     ) -> jax.Array:
  """`Q[B, A]`: the mean over `num_rollouts` imagined rollouts per first action of the imagined
  discounted return plus `discount^depth` x the value of the last imagined observation.

  Args:
    model, model_params: the environment model and its (frozen) params.
    rollout_logits_fn: `obs[N, H, W, C] -> logits[N, A]`, the rollout policy.
    value_fn: `obs[N, H, W, C] -> value[N]`, the bootstrap value.
    obs: `[B, H, W, C]` real observations.
    key: PRNG key of the rollout policy's (and a sampling model's) draws; None only if greedy.
    depth: tau >= 1. num_rollouts: rollouts per action >= 1. discount: gamma in [0, 1].
    rollout_actions, imagination_mode: as `imagine`'s and `ImaginedEnv`'s.
  """
  im.check_depth(depth)
  _check_positive("num_rollouts", num_rollouts)
  if not 0.0 <= discount <= 1.0:
    raise ValueError(f"discount must be in [0, 1]; got {discount!r}.")
  obs = jnp.asarray(obs, jnp.float32)
  if obs.ndim != 4 or tuple(obs.shape[1:]) != tuple(model.obs_shape):
    raise ValueError(f"obs must be [B, *obs_shape] with the environment model's obs_shape "
                     f"{tuple(model.obs_shape)}; got {obs.shape}.")
  b, r, a = obs.shape[0], num_rollouts, model.num_actions
  start = jnp.repeat(obs, r, axis=0)                                  # [B * R], b-major
  out = im.imagine(em.ImaginedEnv(model, mode=imagination_mode), model_params,
                   lambda o: jax.lax.stop_gradient(rollout_logits_fn(o)), start, key, depth,
                   rollout_actions)                                   # [B * R, A, tau, ...]
  gammas = discount ** jnp.arange(depth, dtype=jnp.float32)
  ret = out.reward @ gammas                                           # [B * R, A]
  last = out.obs[:, :, -1].reshape((-1,) + tuple(model.obs_shape))
  boot = value_fn(last).reshape(b * r, a)
  g = ret + discount ** depth * boot
  return jax.lax.stop_gradient(jnp.mean(g.reshape(b, r, a), axis=1))


def make_mc_search_policy(model: em.EnvModelFns, model_params: Any,
                          rollout_logits_fn: Callable[[jax.Array], jax.Array],
                          value_fn: Callable[[jax.Array], jax.Array], *, depth: int,
                          num_rollouts: int, discount: float, rollout_actions: str = "sample",
                          imagination_mode: str = "greedy"
                          ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """`policy(key, obs[B]) -> action[B]` (int32): `argmax_a` of `mc_action_values` (module doc).
  Arguments as `mc_action_values`'s; checked here, before anything is traced."""
  im.check_depth(depth)
  _check_positive("num_rollouts", num_rollouts)
  if not 0.0 <= discount <= 1.0:
    raise ValueError(f"discount must be in [0, 1]; got {discount!r}.")

  def policy(key, obs):
    q = mc_action_values(model, model_params, rollout_logits_fn, value_fn, obs, key,
                         depth=depth, num_rollouts=num_rollouts, discount=discount,
                         rollout_actions=rollout_actions, imagination_mode=imagination_mode)
    return jnp.argmax(q, -1).astype(jnp.int32)

  return policy


def standard_agent_parts(network, params) -> tuple[Callable, Callable]:
  """`(rollout_logits_fn, value_fn)` of a standard agent (`agents.a2c.ActorCritic` or the large
  standard network of `agents.i2a.train`) with its `params`: its policy logits and value."""
  return (lambda o: network.apply(params, o)[0], lambda o: network.apply(params, o)[1])
