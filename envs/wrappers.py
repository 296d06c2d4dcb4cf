"""Environment wrappers with the gymnax 1.0 signature: `EpisodeStatistics` (return, length, solved).

A wrapper holds an environment and exposes the same `reset(key, params) -> (obs, state)` and
`step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`; anything
else (`action_space`, `observation_space`, `default_params`, `num_actions`, ...) is the wrapped
environment's. Wrappers are pure, so `jit` and `vmap` apply as to the environment itself.

`EpisodeStatistics` keeps the running return, length and "solved" flag of the episode in its
state and adds to `info`, per step:

- `episode_return`, `episode_length`, `episode_solved`: of the current episode up to and
  including this step. On the step that ends an episode (`terminated | truncated`) they are the
  completed episode's totals; the automatic reset inside the wrapped `step` starts the next
  episode, whose running statistics start from zero at the following step.
- `episode_done`: `terminated | truncated` (so sums over `where(episode_done, ...)` are the
  completed episodes' statistics).
- `returned_episode_return`, `returned_episode_length`, `returned_episode_solved`: the last
  completed episode's (zeros before the first one ends).

"Solved", per environment (`solved_rule`):
- Sokoban and PO-Sokoban: all boxes on targets (`info["solved"]`, the terminal step).
- MiniPacman: a level was cleared during the episode (`info["level_changed"]`; the level-change
  rule is the task's: all food eaten for regular and avoid, all ghosts for hunt and ambush, all
  power pills for rush; avoid's 128-step level timer counts as well, since the released rules
  advance the level on it).
- Maze: the goal was reached (the episode terminated).
- Spaceship and environments without a notion of success: False, unless `info` has `"solved"`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

SolvedFn = Callable[[dict, jax.Array, jax.Array], jax.Array]


class Wrapper:
  """Base wrapper: `reset` and `step` pass through; other attributes are the wrapped env's."""

  def __init__(self, env):
    self._env = env

  @property
  def unwrapped(self):
    env = self._env
    while isinstance(env, Wrapper):
      env = env._env
    return env

  def __getattr__(self, name):
    if name == "_env":  # not set yet (e.g. during unpickling): avoid infinite recursion
      raise AttributeError(name)
    return getattr(self._env, name)

  def reset(self, key, params=None):
    return self._env.reset(key, params)

  def step(self, key, state, action, params=None):
    return self._env.step(key, state, action, params)


def _solved_from_info(info, terminated, truncated):
  del terminated, truncated
  if isinstance(info, dict) and "solved" in info:
    return jnp.asarray(info["solved"], bool)
  return jnp.bool_(False)


def _level_cleared(info, terminated, truncated):
  del terminated, truncated
  return jnp.asarray(info["level_changed"], bool)


def _reached_goal(info, terminated, truncated):
  del info, truncated
  return jnp.asarray(terminated, bool)


def solved_rule(env) -> SolvedFn:
  """`solved(info, terminated, truncated) -> bool` of a step, for the environment's type."""
  from envs import maze, minipacman  # local: keeps this module importable on its own

  base = env.unwrapped if isinstance(env, Wrapper) else env
  if isinstance(base, minipacman.MiniPacman):
    return _level_cleared
  if isinstance(base, maze.Maze):
    return _reached_goal
  return _solved_from_info  # Sokoban, PO-Sokoban ("solved" in info); else False


@flax.struct.dataclass
class EpisodeStatisticsState:
  env_state: Any
  episode_return: jax.Array           # float32, running return of the current episode
  episode_length: jax.Array           # int32
  episode_solved: jax.Array           # bool
  returned_episode_return: jax.Array  # last completed episode's
  returned_episode_length: jax.Array
  returned_episode_solved: jax.Array


class EpisodeStatistics(Wrapper):
  """Adds running and completed episode return, length and `solved` to `info` (module doc).

  Args:
    env: the environment (with automatic reset in `step`).
    solved_fn: `solved(info, terminated, truncated) -> bool` of one step; an episode is solved
      if any of its steps is. Default: `solved_rule(env)`.
  """

  def __init__(self, env, solved_fn: SolvedFn | None = None):
    super().__init__(env)
    self._solved_fn = solved_rule(env) if solved_fn is None else solved_fn

  def reset(self, key, params=None):
    obs, state = self._env.reset(key, params)
    zero_f, zero_i, no = jnp.float32(0.0), jnp.int32(0), jnp.bool_(False)
    return obs, EpisodeStatisticsState(state, zero_f, zero_i, no, zero_f, zero_i, no)

  def step(self, key, state: EpisodeStatisticsState, action, params=None):
    obs, env_state, reward, terminated, truncated, info = self._env.step(
        key, state.env_state, action, params)
    done = jnp.logical_or(terminated, truncated)
    ret = state.episode_return + jnp.asarray(reward, jnp.float32)
    length = state.episode_length + 1
    solved = jnp.logical_or(state.episode_solved, self._solved_fn(info, terminated, truncated))
    info = dict(info)
    info.update(
        episode_return=ret, episode_length=length, episode_solved=solved, episode_done=done,
        returned_episode_return=jnp.where(done, ret, state.returned_episode_return),
        returned_episode_length=jnp.where(done, length, state.returned_episode_length),
        returned_episode_solved=jnp.where(done, solved, state.returned_episode_solved))
    new = EpisodeStatisticsState(
        env_state, jnp.where(done, 0.0, ret).astype(jnp.float32),
        jnp.where(done, 0, length).astype(jnp.int32), jnp.logical_and(~done, solved),
        info["returned_episode_return"], info["returned_episode_length"],
        info["returned_episode_solved"])
    return obs, new, reward, terminated, truncated, info
