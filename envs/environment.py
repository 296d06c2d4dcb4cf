"""Base class of the JAX-native environments: gymnax 1.0 signature with automatic reset.

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

Subclasses implement `reset_env` and `step_env` (one transition, no reset). `step` adds the
automatic reset: when `terminated | truncated`, the returned observation and state are those of a
fresh episode (drawn with an independent key), while reward, flags and `info` belong to the
transition that ended the episode. Everything is a pure function of its arguments, so `jax.jit`
and `jax.vmap` apply directly; structural choices (grid size, observation type) are constructor
arguments, numbers that may vary between runs are in `params` (a `flax.struct` dataclass).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs import spaces


class Environment:
  """Abstract JAX environment; see the module docstring for the contract."""

  num_actions: int

  @property
  def default_params(self) -> Any:
    raise NotImplementedError

  def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
    raise NotImplementedError

  def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
    raise NotImplementedError

  def observation_space(self, params: Any) -> spaces.Box:
    raise NotImplementedError

  def action_space(self, params: Any) -> spaces.Discrete | spaces.Box:
    return spaces.Discrete(self.num_actions)

  def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
    """Starts an episode. Returns `(obs, state)`."""
    params = self.default_params if params is None else params
    return self.reset_env(key, params)

  def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
    """One transition with automatic reset.

    Returns:
      `(obs, state, reward, terminated, truncated, info)`; reward float32 scalar, flags bool.
    """
    params = self.default_params if params is None else params
    action = self.check_action(action)
    key_step, key_reset = jax.random.split(key)
    obs_st, state_st, reward, terminated, truncated, info = self.step_env(
        key_step, state, action, params)
    obs_re, state_re = self.reset_env(key_reset, params)
    done = jnp.logical_or(terminated, truncated)
    state = jax.tree.map(lambda a, b: jnp.where(done, a, b), state_re, state_st)
    obs = jax.tree.map(lambda a, b: jnp.where(done, a, b), obs_re, obs_st)
    return obs, state, reward, terminated, truncated, info

  def check_action(self, action) -> jax.Array:
    """Checks the action's shape and dtype (always) and range (when its value is concrete).

    Inside `jit` the value is unknown; an out-of-range discrete action then gives a NaN reward
    (see `invalid_action_reward`) rather than being silently clipped.
    """
    space = self.action_space(None)
    if isinstance(space, spaces.Discrete):
      dtype = getattr(action, "dtype", None)
      if dtype is None:
        if not isinstance(action, (int, np.integer)) or isinstance(action, bool):
          raise ValueError(f"action must be an integer scalar in [0, {space.num_values}), "
                           f"got {action!r}")
        action = jnp.asarray(action, jnp.int32)
      elif not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"action must have an integer dtype, got {dtype}")
      if jnp.shape(action) != ():
        raise ValueError(f"action must be a scalar (vmap for batches), got shape "
                         f"{jnp.shape(action)}")
      if not isinstance(action, jax.core.Tracer):
        value = int(action)
        if not 0 <= value < space.num_values:
          raise ValueError(f"action must be in [0, {space.num_values}), got {value}")
      return jnp.asarray(action, jnp.int32)
    action = jnp.asarray(action)
    if action.shape != tuple(space.shape):
      raise ValueError(f"action must have shape {tuple(space.shape)}, got {action.shape}")
    if not jnp.issubdtype(action.dtype, jnp.floating):
      raise ValueError(f"action must have a floating dtype, got {action.dtype}")
    return action


def invalid_action_reward(reward: jax.Array, action: jax.Array, num_actions: int) -> jax.Array:
  """NaN reward for a traced action outside `[0, num_actions)`, so the error cannot go unseen."""
  valid = jnp.logical_and(action >= 0, action < num_actions)
  return jnp.where(valid, reward, jnp.nan).astype(jnp.float32)
