"""A batch of envpool environments behind the gymnax step signature, so that the jitted on-policy
trainers (A2C, I2A: `agents.rollout`) run on host-stepped tasks such as MsPacman unchanged.

    env = JaxHostEnv("MsPacman-v5", seed=0, **atari_palette_kwargs(palette, 80))
    carry = rollout.reset(env, env.default_params, key, 16)     # vmapped over 16 envs
    carry, traj = rollout.rollout(policy, env, env.default_params, carry, key, 5)

How: `reset` and `step` are `jax.pure_callback`s with `vmap_method="expand_dims"`, so the
rollout's `vmap` over its N environments (times any outer `vmap`, e.g. over seeds) becomes ONE
host call carrying all N actions, which steps an envpool batch of N environments once. One
`JaxHostEnv` keeps one envpool batch per N (made on first use), so training (16 environments)
and evaluation (8) each have their own. An unbatched call (the trainers' one-step probe) runs
on a batch of one.

Rollouts of the same size share their batch, one after another: `reset` starts a new
generation of it, which every state carries and every step checks, so a state whose batch was
reset by another rollout since is refused (ValueError naming the batch) instead of silently
continuing someone else's episodes; likewise a state stepped out of order (every state carries
its step count since the reset: a host simulator cannot branch from or repeat a state, and the
count also keeps XLA from hoisting a step with loop-invariant inputs out of a scan, which it
may do with a pure callback). A state from an earlier process (a restored checkpoint)
restarts the batch's episodes instead ([O]: the emulator state is not in the checkpoint; the
first step after a resume acts on the saved observation), and says so in the log.

Conventions, matching `envs.Environment`:
- automatic reset inside `step`: a finished environment is reset on the host at once
  (`HostEnv.reset_some`), so the returned observation is the next episode's first, while reward
  and flags belong to the finishing transition (envpool's own deferred reset, which spends the
  next action on a no-op reset step, never happens);
- time limits: `params.max_steps` (0: envpool's own limit) truncates an episode after that many
  agent steps ([O]: counted on the host so that launchers set it as for the JAX environments;
  envpool's frame skip makes one agent step several emulator frames);
- `info` holds nothing (`solved` is False for these tasks).

What this cannot do (it is a host simulator): be differentiated, run on an accelerator without
host round trips (one per step: on a GPU the device-host copies of the observations are the
cost), or resume bit-exactly (above).

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
from absl import logging

from envs import spaces
from envs.host import atari_frames
from envs.host.envpool_env import HostEnv


@flax.struct.dataclass
class HostEnvParams:
  max_steps: Any = 0   # agent steps before truncation (0: envpool's own limit only)


@flax.struct.dataclass
class HostEnvState:
  row: jax.Array         # int32: this environment's row in its envpool batch
  generation: jax.Array  # int32: the batch's reset this episode belongs to (module docstring)
  count: jax.Array       # int32: steps of the batch since that reset (see `step`)


class _Batch:
  """One envpool batch of `n` environments and its host-side bookkeeping."""

  def __init__(self, host: HostEnv):
    self.host = host
    self.elapsed = np.zeros(host.num_envs, np.int32)
    self.generation = -1
    self.count = 0   # steps since the last reset


class JaxHostEnv:
  """See the module docstring.

  Args:
    task_id: an envpool task with discrete actions, e.g. "MsPacman-v5".
    seed: envpool seed of the first batch of each size (others: seed + 1000 x index).
    preprocess: host-side `raw[N, ...] -> obs[N, ...]` (numpy); None: raw observations.
    max_steps: default `params.max_steps`.
    palette: the colours of a palette preprocessing's tiles (kept as `env.palette`).
    **kwargs: passed to `envpool.make` (through `HostEnv`).
  """

  def __init__(self, task_id: str, seed: int = 0, *,
               preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
               max_steps: int = 0, palette: np.ndarray | None = None, **kwargs):
    self.task_id, self._seed, self._kwargs = task_id, int(seed), kwargs
    self.palette = palette  # [K, 3] uint8 colours of the observation's tiles (palette envs)
    self._preprocess = preprocess or (lambda x: np.asarray(x))
    self._batches: dict[int, _Batch] = {}
    # Generations are issued from a per-process random base, so a state restored from another
    # process is told apart from a stale state of this one.
    self._base = int(np.random.default_rng().integers(1, 2 ** 30))
    self._next_generation = self._base
    probe = self._batch(1)
    space = probe.host.action_space
    if not hasattr(space, "n"):
      raise ValueError(f"JaxHostEnv needs discrete actions; {task_id} has {space}")
    self.num_actions = int(space.n)
    obs, _ = probe.host.reset()
    first = np.asarray(self._preprocess(np.asarray(obs)))
    if first.shape[0] != 1:
      raise ValueError(f"preprocess must keep the batch axis: 1 environment in, "
                       f"{first.shape[0]} rows out")
    self.obs_shape, self.obs_dtype = first.shape[1:], first.dtype
    self._default_max_steps = int(max_steps)
    self.steps_taken = 0   # host calls of `step` over all batches (tests, progress)

  @property
  def default_params(self) -> HostEnvParams:
    return HostEnvParams(max_steps=jnp.int32(self._default_max_steps))

  def action_space(self, params=None) -> spaces.Discrete:
    return spaces.Discrete(self.num_actions)

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, self.obs_shape, jnp.dtype(self.obs_dtype))

  # ------------------------------------------------------------------------- host side
  def _batch(self, n: int) -> _Batch:
    if n not in self._batches:
      seed = self._seed + 1000 * len(self._batches)
      self._batches[n] = _Batch(HostEnv(self.task_id, num_envs=n, seed=seed, **self._kwargs))
    return self._batches[n]

  def _obs(self, raw) -> np.ndarray:
    return np.asarray(self._preprocess(np.asarray(raw)), self.obs_dtype)

  def _host_reset(self, key_data):
    lead = np.shape(key_data)[:-1]   # the vmapped axes (key data has one trailing axis)
    n = int(np.prod(lead, dtype=np.int64))
    batch = self._batch(n)
    obs, _ = batch.host.reset()
    batch.elapsed[:] = 0
    batch.count = 0
    batch.generation = self._next_generation
    self._next_generation += 1
    rows = np.arange(n, dtype=np.int32).reshape(lead)
    return (self._obs(obs).reshape(lead + self.obs_shape), rows,
            np.full(lead, batch.generation, np.int32))

  def _host_step(self, action, row, generation, count, max_steps):
    lead = np.shape(action)
    n = int(np.prod(lead, dtype=np.int64))
    batch = self._batches.get(n)
    gen = np.asarray(generation).reshape(-1)
    count = int(np.asarray(count).reshape(-1)[0])
    if batch is None or not np.all(gen == gen[0]) or gen[0] != batch.generation:
      if batch is not None and self._base <= gen[0] < self._next_generation:
        raise ValueError(
            f"{self.task_id}: this rollout's batch of {n} environments was reset by another "
            f"rollout of the same size since (generation {gen[0]}, now {batch.generation}); "
            "rollouts of one size must not interleave")
      logging.warning("%s: a state from another process (restored checkpoint): restarting the "
                      "episodes of the batch of %d environments", self.task_id, n)
      batch = self._batch(n)
      batch.host.reset()
      batch.elapsed[:] = 0
      batch.generation, batch.count = int(gen[0]), count
    if count != batch.count:
      raise ValueError(f"{self.task_id}: a state of the batch of {n} environments stepped out of "
                       f"order (its step {count}, the batch's {batch.count}): a host simulator "
                       "cannot branch from or repeat an earlier state")
    if not np.array_equal(np.asarray(row).reshape(-1), np.arange(n)):
      raise ValueError(f"{self.task_id}: the batch rows are not its environments in order (a "
                       "permuted or sliced batch of states)")
    out = batch.host.step(np.asarray(action, np.int32).reshape(-1))
    self.steps_taken += 1
    batch.count += 1
    limit = int(np.asarray(max_steps).reshape(-1)[0])
    batch.elapsed += 1
    terminated = np.asarray(out.terminated, bool)
    truncated = np.asarray(out.truncated, bool) & ~terminated
    if limit > 0:
      truncated |= (batch.elapsed >= limit) & ~terminated
    done = terminated | truncated
    raw = np.array(out.obs)
    if done.any():
      raw[done] = batch.host.reset_some(np.nonzero(done)[0])
    batch.elapsed[done] = 0
    return (self._obs(raw).reshape(lead + self.obs_shape),
            np.asarray(out.reward, np.float32).reshape(lead), terminated.reshape(lead),
            truncated.reshape(lead))

  # ------------------------------------------------------------------------- jax side
  def reset(self, key: jax.Array, params: HostEnvParams | None = None):
    """Resets the batch this call is part of (module docstring). Returns `(obs, state)`."""
    del params
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    shapes = (jax.ShapeDtypeStruct(self.obs_shape, self.obs_dtype),
              jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((), jnp.int32))
    obs, row, generation = jax.pure_callback(self._host_reset, shapes, data,
                                             vmap_method="expand_dims")
    return obs, HostEnvState(row, generation, jnp.int32(0))

  def step(self, key: jax.Array, state: HostEnvState, action: jax.Array,
           params: HostEnvParams | None = None):
    """One agent step of every environment of the batch (module docstring). Returns `(obs,
    state, reward, terminated, truncated, info)`."""
    del key
    params = self.default_params if params is None else params
    action = jnp.asarray(action)
    if action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
      raise ValueError(f"action must be an integer scalar (vmap for batches), got shape "
                       f"{action.shape} and dtype {action.dtype}")
    shapes = (jax.ShapeDtypeStruct(self.obs_shape, self.obs_dtype),
              jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((), jnp.bool_),
              jax.ShapeDtypeStruct((), jnp.bool_))
    # The step count is an input so that no two steps of a rollout have equal inputs: a pure
    # callback with loop-invariant inputs (a constant policy) is hoisted out of the scan by XLA
    # and called once. It is checked on the host too (out-of-order steps are refused).
    obs, reward, terminated, truncated = jax.pure_callback(
        self._host_step, shapes, action.astype(jnp.int32), state.row, state.generation,
        state.count, jnp.asarray(params.max_steps, jnp.int32), vmap_method="broadcast_all")
    return obs, state.replace(count=state.count + 1), reward, terminated, truncated, {}

  def close(self) -> None:
    for batch in self._batches.values():
      batch.host.close()
    self._batches.clear()


def atari_palette_kwargs(palette: np.ndarray, size: int = 80) -> dict:
  """`JaxHostEnv` keyword arguments for Atari frames as `atari_frames` records them: envpool's
  full-size colour screen, one frame (no stacking), downsampled to `size x size`, quantised to
  `palette` and one-hot: observations `[size, size, K] float32`."""
  palette = np.asarray(palette, np.uint8)
  k = palette.shape[0]

  def preprocess(raw: np.ndarray) -> np.ndarray:
    frames = atari_frames.downsample(atari_frames.to_hwc(raw), size)
    return atari_frames.one_hot(atari_frames.quantise(frames, palette), k)

  return dict(preprocess=preprocess, palette=palette, img_height=210, img_width=160,
              stack_num=1, gray_scale=False)


def mspacman(max_steps: int = 0, *, size: int = 80, num_colours: int = 8, seed: int = 0,
             palette_spec: atari_frames.FramesSpec | None = None) -> JaxHostEnv:
  """MsPacman as B18 models it (`atari_frames`' preprocessing: `size x size` tiles of the
  `num_colours` palette of the recording `palette_spec`, by default the model experiment's
  random MsPacman recording's spec, recorded here without a cache: 800 frames, seconds), behind
  `JaxHostEnv`."""
  spec = palette_spec or atari_frames.FramesSpec(size=size, num_colours=num_colours)
  palette = atari_frames.record(spec).palette
  return JaxHostEnv("MsPacman-v5", seed, max_steps=max_steps,
                    **atari_palette_kwargs(palette, size))


def record_policy_frames(env: JaxHostEnv, policy_fn, key: jax.Array, num_envs: int,
                         num_steps: int) -> atari_frames.Frames:
  """`num_steps` steps of `num_envs` environments of a palette `env` (`mspacman`,
  `atari_palette_kwargs`) under `policy_fn(key, obs[B, ...]) -> action[B]` (jittable; e.g. a
  partly trained A2C agent's `lambda k, o: trainer.policy(params, k, o)`), as the
  `atari_frames.Frames` its models read: palette indices (the argmax of the one-hot tiles),
  actions, rewards, and `frame_valid` 0 where `obs[t + 1]` starts a new episode. `palette` is
  `env.palette`. One jitted rollout (`agents`-free: the scan is written here)."""
  palette = getattr(env, "palette", None)
  if palette is None:
    raise ValueError("record_policy_frames needs a palette environment (env.palette): build it "
                     "with envs.host.jax_env.mspacman or atari_palette_kwargs")
  params = env.default_params

  def run(key):
    k_reset, k_steps = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs),
                                                        params)

    def body(carry, k):
      obs, state = carry
      action = jnp.asarray(policy_fn(k, obs), jnp.int32)
      nxt, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
          jax.random.split(k, num_envs), state, action, params)
      return (nxt, state), (jnp.argmax(nxt, -1).astype(jnp.uint8), action, reward,
                            1.0 - jnp.logical_or(term, trunc).astype(jnp.float32))

    _, (frames, action, reward, valid) = jax.lax.scan(body, (obs, state),
                                                      jax.random.split(k_steps, num_steps))
    return jnp.argmax(obs, -1).astype(jnp.uint8), frames, action, reward, valid

  first, frames, action, reward, valid = jax.device_get(jax.jit(run)(key))
  return atari_frames.Frames(np.concatenate([first[None], frames]), np.asarray(action, np.int32),
                             np.asarray(reward, np.float32), np.asarray(valid, np.float32),
                             np.asarray(palette, np.uint8))
