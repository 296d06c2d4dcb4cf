"""Tiny discrete-action environments (`envs.Environment` subclasses) for the on-policy tests.

- `Counter`: a walk on {0, ..., length} started uniformly at random; action 0 stays, 1 steps up;
  reward = the new position; terminates on reaching `length`, truncated after `max_steps`.
  Every quantity is an integer, so a Python loop reproduces a rollout exactly.
- `Bandit`: one-step episodes with a constant observation; arm `a` pays `payoffs[a]`.
- `Chain`: a corridor of `length` cells started at 0; action 1 moves right, 0 left (a wall at 0);
  reward 1 and termination at the right end, truncated after `max_steps`.
- `BadValues`: like `Counter`, but from `bad_from` steps into an episode it emits a NaN reward or
  observation (for the non-finite checks; the first step is clean, so a one-step probe passes
  when `bad_from > 1`).
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from envs import environment, spaces


@flax.struct.dataclass
class CounterState:
  position: jax.Array
  time: jax.Array


@flax.struct.dataclass
class CounterParams:
  max_steps: int = 6


class Counter(environment.Environment):
  num_actions = 2

  def __init__(self, length: int = 4):
    self.length = length

  @property
  def default_params(self):
    return CounterParams()

  def observation_space(self, params=None):
    return spaces.Box(0.0, float(self.length), (2,), jnp.float32)

  def _obs(self, state):
    return jnp.stack([state.position, state.time]).astype(jnp.float32)

  def reset_env(self, key, params):
    state = CounterState(jax.random.randint(key, (), 0, self.length), jnp.int32(0))
    return self._obs(state), state

  def step_env(self, key, state, action, params):
    del key
    position = state.position + action
    time = state.time + 1
    state = CounterState(position, time)
    terminated = position >= self.length
    truncated = ~terminated & (time >= params.max_steps)
    return (self._obs(state), state, position.astype(jnp.float32), terminated, truncated,
            {"position": position})


@flax.struct.dataclass
class BanditParams:
  payoffs: jax.Array = flax.struct.field(default_factory=lambda: jnp.array([0.0, 1.0]))


class Bandit(environment.Environment):
  num_actions = 2

  @property
  def default_params(self):
    return BanditParams()

  def observation_space(self, params=None):
    return spaces.Box(1.0, 1.0, (3,), jnp.float32)

  def reset_env(self, key, params):
    return jnp.ones(3, jnp.float32), jnp.int32(0)

  def step_env(self, key, state, action, params):
    return (jnp.ones(3, jnp.float32), state, params.payoffs[action], jnp.bool_(True),
            jnp.bool_(False), {})


@flax.struct.dataclass
class ChainParams:
  max_steps: int = 20


class Chain(environment.Environment):
  num_actions = 2

  def __init__(self, length: int = 5):
    self.length = length

  @property
  def default_params(self):
    return ChainParams()

  def observation_space(self, params=None):
    return spaces.Box(0.0, 1.0, (self.length,), jnp.float32)

  def reset_env(self, key, params):
    state = CounterState(jnp.int32(0), jnp.int32(0))
    return jax.nn.one_hot(state.position, self.length), state

  def step_env(self, key, state, action, params):
    position = jnp.clip(state.position + 2 * action - 1, 0, self.length - 1)
    time = state.time + 1
    terminated = position == self.length - 1
    truncated = ~terminated & (time >= params.max_steps)
    state = CounterState(position, time)
    return (jax.nn.one_hot(position, self.length), state, terminated.astype(jnp.float32),
            terminated, truncated, {})


class BadValues(Counter):
  """`Counter` whose reward (`what="reward"`) or observation (`"obs"`) turns NaN late."""

  def __init__(self, what: str = "reward", bad_from: int = 1):
    super().__init__(length=100)
    self.what, self.bad_from = what, bad_from

  def step_env(self, key, state, action, params):
    obs, state, reward, terminated, truncated, info = super().step_env(key, state, action, params)
    bad = state.time >= self.bad_from
    if self.what == "reward":
      reward = jnp.where(bad, jnp.nan, reward)
    else:
      obs = jnp.where(bad, jnp.nan, obs)
    return obs, state, reward, terminated, truncated, info
