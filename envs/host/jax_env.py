"""A batch of envpool environments behind the gymnax step signature, so that the jitted on-policy
trainers (A2C, I2A: `agents.rollout`) run on host-stepped tasks such as MsPacman unchanged.

    env = JaxHostEnv("MsPacman-v5", num_envs=16, seed=0, **atari_palette_kwargs(palette, 80))
    carry = rollout.reset(env, env.default_params, key, 16)     # vmapped over the 16 envs
    carry, traj = rollout.rollout(policy, env, env.default_params, carry, key, 5)

How: `reset` and `step` are `jax.pure_callback`s with `vmap_method="expand_dims"`, so the
rollout's `vmap` over its B environments becomes ONE host call carrying all B actions, which
steps the envpool batch once. The batch the callback sees must therefore be the envpool batch:
the environment state holds each environment's index, checked on every step, and a call with
another batch size (for example the trainer vmapped over seeds as well) is refused with a
ValueError naming both sizes. An unbatched call (the trainers' one-step probe) steps every
environment with the same action and returns environment 0's transition.

Conventions, matching `envs.Environment`:
- automatic reset inside `step`: a finished environment is reset on the host at once
  (`HostEnv.reset_some`), so the returned observation is the next episode's first, while reward
  and flags belong to the finishing transition (envpool's own deferred reset, which spends the
  next action on a no-op reset step, never happens);
- time limits: `params.max_steps` (0: envpool's own limit) truncates an episode after that many
  agent steps ([O]: counted here in the state so that launchers set it as for the JAX
  environments; envpool's frame skip makes one agent step several emulator frames);
- `info` holds nothing (`solved` is False for these tasks).

What this cannot do (it is a host simulator): be differentiated, be vmapped over anything but
its own batch, run on an accelerator without host round trips (one per step: on a GPU the
device-host copies of the observations are the cost), or resume bit-exactly: the emulator state
is not in the checkpoint, so a resumed run starts fresh episodes ([O]: the trainers' carry is
refreshed by `reset` after a restore).

Observations go through `preprocess(raw[B, ...]) -> [B, ...]` on the host (for Atari the
palette tiles of `envs.host.atari_frames`: `atari_palette_kwargs`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from envs import spaces
from envs.host import atari_frames
from envs.host.envpool_env import HostEnv


@flax.struct.dataclass
class HostEnvParams:
  max_steps: Any = 0   # agent steps before truncation (0: envpool's own limit only)


@flax.struct.dataclass
class HostEnvState:
  env_id: jax.Array    # int32: which envpool environment this batch row is
  elapsed: jax.Array   # int32: agent steps of the current episode


class JaxHostEnv:
  """See the module docstring.

  Args:
    task_id: an envpool task with discrete actions, e.g. "MsPacman-v5".
    num_envs: B, the envpool batch (the rollout's number of environments must equal it).
    seed: envpool seed.
    preprocess: host-side `raw[B, ...] -> obs[B, ...]` (numpy); None: raw observations.
    max_steps: default `params.max_steps`.
    **kwargs: passed to `envpool.make` (through `HostEnv`).
  """

  def __init__(self, task_id: str, num_envs: int, seed: int = 0, *,
               preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
               max_steps: int = 0, **kwargs):
    self.host = HostEnv(task_id, num_envs=num_envs, seed=seed, **kwargs)
    space = self.host.action_space
    if not hasattr(space, "n"):
      raise ValueError(f"JaxHostEnv needs discrete actions; {task_id} has {space}")
    self.task_id, self.num_envs, self.num_actions = task_id, num_envs, int(space.n)
    self._preprocess = preprocess or (lambda x: np.asarray(x))
    obs, _ = self.host.reset()
    first = np.asarray(self._preprocess(np.asarray(obs)))
    if first.shape[0] != num_envs:
      raise ValueError(f"preprocess must keep the batch axis: {num_envs} environments in, "
                       f"{first.shape[0]} rows out")
    self.obs_shape, self.obs_dtype = first.shape[1:], first.dtype
    self._default_max_steps = int(max_steps)
    self.steps_taken = 0   # host steps of the envpool batch (for tests and progress)

  @property
  def default_params(self) -> HostEnvParams:
    return HostEnvParams(max_steps=jnp.int32(self._default_max_steps))

  def action_space(self, params=None) -> spaces.Discrete:
    return spaces.Discrete(self.num_actions)

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, self.obs_shape, jnp.dtype(self.obs_dtype))

  # ------------------------------------------------------------------------- host side
  def _rows(self, n: int, what: str) -> None:
    if n != self.num_envs:
      raise ValueError(f"{self.task_id}: {what} for {n} environments, but the envpool batch has "
                       f"num_envs={self.num_envs}; vmap the rollout over exactly that many "
                       "environments (and not over seeds too)")

  def _host_reset(self, key_data):
    batched = np.ndim(key_data) == 2
    if batched:
      self._rows(key_data.shape[0], "reset")
    obs, _ = self.host.reset()
    obs = np.asarray(self._preprocess(np.asarray(obs)), self.obs_dtype)
    ids = np.arange(self.num_envs, dtype=np.int32)
    return (obs, ids) if batched else (obs[0], ids[0])

  def _host_step(self, action, env_id, elapsed, max_steps):
    batched = np.ndim(action) == 1
    action = np.asarray(action, np.int32).reshape(-1)
    if batched:
      self._rows(action.shape[0], "step")
      if not np.array_equal(np.asarray(env_id).reshape(-1), np.arange(self.num_envs)):
        raise ValueError(f"{self.task_id}: the batch rows are not the envpool environments in "
                         "order (a state from another batch or a permuted batch)")
    else:
      action = np.full(self.num_envs, action[0], np.int32)
      elapsed = np.full(self.num_envs, np.asarray(elapsed).reshape(-1)[0])
    out = self.host.step(action)
    self.steps_taken += 1
    limit = int(np.asarray(max_steps).reshape(-1)[0])
    elapsed = np.asarray(elapsed, np.int32).reshape(-1) + 1
    terminated = np.asarray(out.terminated, bool)
    truncated = np.asarray(out.truncated, bool) & ~terminated
    if limit > 0:
      truncated |= (elapsed >= limit) & ~terminated
    done = terminated | truncated
    raw = np.array(out.obs)
    if done.any():
      raw[done] = self.host.reset_some(np.nonzero(done)[0])
    obs = np.asarray(self._preprocess(raw), self.obs_dtype)
    elapsed = np.where(done, 0, elapsed).astype(np.int32)
    res = (obs, np.asarray(out.reward, np.float32), terminated, truncated, elapsed)
    return res if batched else tuple(x[0] for x in res)

  # ------------------------------------------------------------------------- jax side
  def reset(self, key: jax.Array, params: HostEnvParams | None = None):
    """Resets every environment of the batch. Returns `(obs, state)`."""
    del params
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    shapes = (jax.ShapeDtypeStruct(self.obs_shape, self.obs_dtype),
              jax.ShapeDtypeStruct((), jnp.int32))
    obs, env_id = jax.pure_callback(self._host_reset, shapes, data, vmap_method="expand_dims")
    return obs, HostEnvState(env_id, jnp.int32(0))

  def step(self, key: jax.Array, state: HostEnvState, action: jax.Array,
           params: HostEnvParams | None = None):
    """One agent step of every environment (module docstring). Returns `(obs, state, reward,
    terminated, truncated, info)`."""
    del key
    params = self.default_params if params is None else params
    action = jnp.asarray(action)
    if action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
      raise ValueError(f"action must be an integer scalar (vmap for batches), got shape "
                       f"{action.shape} and dtype {action.dtype}")
    shapes = (jax.ShapeDtypeStruct(self.obs_shape, self.obs_dtype),
              jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((), jnp.bool_),
              jax.ShapeDtypeStruct((), jnp.bool_), jax.ShapeDtypeStruct((), jnp.int32))
    obs, reward, terminated, truncated, elapsed = jax.pure_callback(
        self._host_step, shapes, action.astype(jnp.int32), state.env_id, state.elapsed,
        jnp.asarray(params.max_steps, jnp.int32), vmap_method="expand_dims")
    return obs, HostEnvState(state.env_id, elapsed), reward, terminated, truncated, {}

  def close(self) -> None:
    self.host.close()


def atari_palette_kwargs(palette: np.ndarray, size: int = 80) -> dict:
  """`JaxHostEnv` keyword arguments for Atari frames as `atari_frames` records them: envpool's
  full-size colour screen, one frame (no stacking), downsampled to `size x size`, quantised to
  `palette` and one-hot: observations `[size, size, K] float32`."""
  palette = np.asarray(palette, np.uint8)
  k = palette.shape[0]

  def preprocess(raw: np.ndarray) -> np.ndarray:
    frames = atari_frames.downsample(atari_frames.to_hwc(raw), size)
    return atari_frames.one_hot(atari_frames.quantise(frames, palette), k)

  return dict(preprocess=preprocess, img_height=210, img_width=160, stack_num=1,
              gray_scale=False)
