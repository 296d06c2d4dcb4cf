"""The shared on-policy rollout: `lax.scan` over time, `vmap` over environments, automatic reset.

Every on-policy agent (A2C, and later I2A, IBP, CF-GPS) collects its experience here, and so do
imagination rollouts through a learned environment model: all that is needed of `env` is the
gymnax 1.0 `step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`
signature, with the automatic reset inside `step` (as `envs.Environment.step` does).

    carry = reset(env, env_params, key, num_envs)
    carry, traj = rollout(policy_fn, env, env_params, carry, key, num_steps)
    # traj fields are [T, B, ...]; carry continues the rollout where it stopped.

Time indexing follows rlax: `traj.obs_tm1[t]` is the observation the action `traj.action[t]` was
taken in, and `reward[t]`, `terminated[t]`, `truncated[t]`, `info[t]` belong to that transition.
`traj.obs_t[t]` is the observation returned by the step: after a finished episode
(`terminated | truncated`) it is the first observation of the next one, so `obs_tm1[t + 1] ==
obs_t[t]` always, and the value of `carry.obs` bootstraps the last step.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class RolloutCarry(NamedTuple):
  """What a rollout needs to continue: the batch of environment states and their observations."""
  env_state: Any   # [B] pytree of environment states
  obs: Any         # [B, ...] current observations (those the next actions are taken in)


class Trajectory(NamedTuple):
  """`[T, B, ...]` transitions of a rollout (rlax's `_tm1`/`_t` indexing, see the module doc)."""
  obs_tm1: Any           # observation the action was taken in
  action: jax.Array      # [T, B] (or [T, B, ...]) actions
  reward: jax.Array      # [T, B] float32
  discount: jax.Array    # [T, B] float32: 0 where the episode terminated, else 1 (no gamma)
  terminated: jax.Array  # [T, B] bool: a terminal state was reached (no bootstrap)
  truncated: jax.Array   # [T, B] bool: cut by a time limit, not terminated (bootstrap)
  obs_t: Any             # observation returned by the step (the next episode's after a reset)
  policy_extras: Any     # what `policy_fn` returned beside the action (logits, values, ...)
  info: Any              # the environment's `info` per step


PolicyFn = Callable[[jax.Array, Any], tuple[jax.Array, Any]]


def reset(env, env_params, key: jax.Array, num_envs: int) -> RolloutCarry:
  """Resets `num_envs` environments with independent keys. Returns the starting carry."""
  if not isinstance(num_envs, int) or num_envs < 1:
    raise ValueError(f"num_envs must be a positive integer; got {num_envs!r}.")
  obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs),
                                                      env_params)
  return RolloutCarry(state, obs)


def rollout(policy_fn: PolicyFn, env, env_params, carry: RolloutCarry, key: jax.Array,
            num_steps: int) -> tuple[RolloutCarry, Trajectory]:
  """Steps a batch of environments `num_steps` times under `policy_fn`.

  Args:
    policy_fn: `policy_fn(key, obs[B, ...]) -> (action[B, ...], extras)`, batched over the
      environments; `extras` (any pytree with leading axis B, or None) is stored per step.
    env: anything with the gymnax `step(key, state, action, params)` signature and automatic
      reset (an `envs.Environment`, a wrapper, or a learned model).
    env_params: the environment's params (shared by all environments).
    carry: `RolloutCarry` from `reset` or from a previous rollout.
    key: PRNG key; split once per step into the policy's key and one key per environment.
    num_steps: T, a static positive integer.

  Returns:
    `(carry, trajectory)`: the carry after the last step and the `[T, B]` trajectory.
  """
  if not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"num_steps must be a positive integer; got {num_steps!r}.")
  num_envs = jax.tree.leaves(carry.obs)[0].shape[0]
  step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

  def body(c: RolloutCarry, k):
    k_policy, k_env = jax.random.split(k)
    action, extras = policy_fn(k_policy, c.obs)
    obs, state, reward, terminated, truncated, info = step(
        jax.random.split(k_env, num_envs), c.env_state, action, env_params)
    terminated = jnp.asarray(terminated, bool)
    truncated = jnp.logical_and(jnp.asarray(truncated, bool), jnp.logical_not(terminated))
    transition = Trajectory(
        obs_tm1=c.obs, action=action, reward=jnp.asarray(reward, jnp.float32),
        discount=1.0 - terminated.astype(jnp.float32), terminated=terminated,
        truncated=truncated, obs_t=obs, policy_extras=extras, info=info)
    return RolloutCarry(state, obs), transition

  return jax.lax.scan(body, carry, jax.random.split(key, num_steps))
