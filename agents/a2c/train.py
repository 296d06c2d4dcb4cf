"""A2C training under one `jit`: many environments under `vmap`, a `lax.scan` over updates.

Synchronous advantage actor-critic (Mnih et al. 2016, Alg. S3, with the asynchronous actors
replaced by `num_envs` environments stepped in lockstep, as in the I2A paper's "standard"
agent, Weber et al. 2017, Sec. 4). One update: a `rollout_length`-step rollout of every
environment (`agents.rollout`), the loss of `agents.a2c.losses` on the `[T, B]` batch (split
over environments into `num_minibatches` sequential gradient steps), global-norm gradient
clipping, RMSprop (the I2A paper's optimiser) or Adam.

    trainer = make_trainer(default_config(), env, env_params)
    state = trainer.init(key)
    state, metrics = trainer.chunk(state)      # `updates_per_chunk` updates, metrics [U]
    state, metrics = trainer.train(key)        # init + `num_chunks` chunks, metrics [U * C]
    jax.vmap(trainer.train)(keys)              # seeds

The loop itself (rollouts, minibatched gradient steps, the chunk's scan and its metrics) is
`make_loop`, shared with the I2A paper's agents (`agents.i2a.train`), which bring their own
network, acting pass and loss.

`Trainer(init, chunk)` is the agents' trainer contract, so
`launch.train_loop.train_loop(workdir, mesh, trainer.init, trainer.chunk, num_chunks,
seed_keys=keys)` runs it directly. Before anything is compiled the config is checked and one
probe transition is taken on the host (discrete actions, finite observation and reward), so bad
input fails with a message naming the field or the environment; later non-finite values are
counted in the metrics and raised by `check_finite`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents import rollout as rollout_lib
from agents.a2c import losses
from agents.a2c.networks import ActorCritic
from envs import spaces, wrappers

OPTIMIZERS = ("rmsprop", "adam")
LR_SCHEDULES = ("constant", "linear")


@dataclasses.dataclass(frozen=True)
class A2CConfig:
  """Hyperparameters of A2C (CPU-sized defaults; `launch/agents/configs/a2c.py` has presets)."""
  num_envs: int = 16               # B: environments stepped in parallel (vmap).
  rollout_length: int = 5          # T: steps per environment per update (A3C's t_max = 5).
  updates_per_chunk: int = 100     # Updates per jitted chunk (a lax.scan).
  num_chunks: int = 10             # Chunks run by `train`.
  num_minibatches: int = 1         # Gradient steps per rollout, each on B / M environments.
  discount: float = 0.99           # gamma.
  advantage: str = "gae"           # "gae" (lambda returns) or "n_step".
  gae_lambda: float = 0.95         # lambda of GAE / lambda returns.
  n_step: int = 5                  # n of the n-step returns (n >= T: A3C's longest returns).
  value_coef: float = 0.5          # Weight of the value loss.
  entropy_coef: float = 0.01       # beta, the entropy bonus (Mnih et al. 2016, Sec. 4).
  reward_scale: float = 1.0        # Rewards are multiplied by this in the loss (values too).
  optimizer: str = "rmsprop"       # "rmsprop" (I2A) or "adam".
  learning_rate: float = 7e-4      # Step size.
  lr_schedule: str = "constant"    # "constant", or "linear" decay to 0 over the whole run.
  rmsprop_decay: float = 0.99      # RMSprop's second-moment decay.
  rmsprop_eps: float = 1e-5        # RMSprop's epsilon (added outside the square root).
  max_grad_norm: float = 0.5       # Global-norm gradient clipping (<= 0: none).
  conv_features: tuple = (16, 16)  # Channels per conv layer (image observations).
  kernel_sizes: tuple = (3, 3)     # Square kernel size per conv layer.
  strides: tuple = (1, 2)          # Stride per conv layer.
  hidden_size: int = 256           # Width of the fully connected layer.

  @property
  def frames_per_update(self) -> int:
    return self.num_envs * self.rollout_length

  @property
  def frames_per_chunk(self) -> int:
    return self.frames_per_update * self.updates_per_chunk

  def replace(self, **kwargs) -> "A2CConfig":
    return dataclasses.replace(self, **kwargs)


def default_config(**overrides) -> A2CConfig:
  """The default A2C config, with `overrides` (field names) applied."""
  return A2CConfig().replace(**overrides)


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  rollout: rollout_lib.RolloutCarry   # environments' states and current observations
  key: jax.Array
  updates: jax.Array                  # int32, updates done
  frames: jax.Array                   # int32 per environment step summed over environments
  env_params: Any = None              # per-seed environment params (with `refresh_env_params`)


class Trainer(NamedTuple):
  """`init(key) -> state`, `chunk(state) -> (state, metrics)`: the agents' trainer contract.

  `train(key)` runs `init` and `config.num_chunks` chunks; `policy(params, key, obs)` samples
  actions of a batch of observations; `network` is the flax module.
  """
  init: Callable[[jax.Array], TrainState]
  chunk: Callable[[TrainState], tuple[TrainState, dict]]
  train: Callable[[jax.Array], tuple[TrainState, dict]]
  policy: Callable[[Any, jax.Array, jax.Array], jax.Array]
  network: ActorCritic
  config: A2CConfig


def check_config(config: A2CConfig) -> None:
  """Raises a `ValueError` naming the field for an invalid config (before any compilation)."""
  for name in ("num_envs", "rollout_length", "updates_per_chunk", "num_chunks",
               "num_minibatches", "n_step", "hidden_size"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")
  if config.num_envs % config.num_minibatches:
    raise ValueError(f"config.num_minibatches ({config.num_minibatches}) must divide "
                     f"config.num_envs ({config.num_envs}): each minibatch takes B / M whole "
                     "environments.")
  if config.advantage not in losses.ADVANTAGES:
    raise ValueError(f"config.advantage must be one of {losses.ADVANTAGES}; got "
                     f"{config.advantage!r}.")
  if config.lr_schedule not in LR_SCHEDULES:
    raise ValueError(f"config.lr_schedule must be one of {LR_SCHEDULES}; got "
                     f"{config.lr_schedule!r}.")
  if config.optimizer not in OPTIMIZERS:
    raise ValueError(f"config.optimizer must be one of {OPTIMIZERS}; got {config.optimizer!r}.")
  for name, lo, hi in (("discount", 0.0, 1.0), ("gae_lambda", 0.0, 1.0),
                       ("rmsprop_decay", 0.0, 1.0)):
    value = getattr(config, name)
    if not lo <= value <= hi:
      raise ValueError(f"config.{name} must be in [{lo}, {hi}]; got {value!r}.")
  for name in ("learning_rate", "rmsprop_eps", "reward_scale"):
    if not getattr(config, name) > 0:
      raise ValueError(f"config.{name} must be positive; got {getattr(config, name)!r}.")
  for name in ("value_coef", "entropy_coef"):
    if not getattr(config, name) >= 0:
      raise ValueError(f"config.{name} must be >= 0; got {getattr(config, name)!r}.")
  if not len(config.conv_features) == len(config.kernel_sizes) == len(config.strides):
    raise ValueError("config.conv_features, config.kernel_sizes and config.strides need one "
                     f"entry per layer; got {config.conv_features}, {config.kernel_sizes}, "
                     f"{config.strides}.")


def probe(env, env_params, env_name: str) -> tuple[int, tuple, Any]:
  """One host-side reset and step, checked. Returns `(num_actions, obs_shape, obs_dtype)`.

  Raises:
    ValueError: the action space is not `Discrete`, or the observation or reward is not finite.
  """
  space = env.action_space(env_params)
  if not isinstance(space, spaces.Discrete):
    raise ValueError(f"A2C needs a discrete action space; environment {env_name!r} has "
                     f"{type(space).__name__} actions ({space}). Use an agent for continuous "
                     "actions (agents.sac).")
  key = jax.random.key(0)
  obs, state = jax.jit(env.reset)(key, env_params)
  obs2, _, reward, _, _, _ = jax.jit(env.step)(key, state, jnp.zeros((), jnp.int32), env_params)
  for what, value in (("observation after reset", obs), ("observation after a step", obs2),
                      ("reward", reward)):
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
      raise ValueError(f"environment {env_name!r} returned a non-finite {what} in the probe "
                       f"step (action 0): {value.ravel()[:8]}...")
  return int(space.num_values), tuple(np.shape(obs)), np.asarray(obs).dtype


def learning_rate(config: A2CConfig) -> optax.ScalarOrSchedule:
  """The step size: constant, or decayed linearly to 0 over the run's gradient steps
  (`num_chunks * updates_per_chunk * num_minibatches`), as OpenAI baselines' A2C does."""
  if config.lr_schedule == "constant":
    return config.learning_rate
  steps = config.num_chunks * config.updates_per_chunk * config.num_minibatches
  return optax.linear_schedule(config.learning_rate, 0.0, steps)


def make_optimizer(config: A2CConfig) -> optax.GradientTransformation:
  """RMSprop (the I2A paper's optimiser) or Adam at `learning_rate(config)`, after global-norm
  clipping at `config.max_grad_norm` (none if <= 0)."""
  lr = learning_rate(config)
  if config.optimizer == "rmsprop":
    opt = optax.rmsprop(lr, decay=config.rmsprop_decay, eps=config.rmsprop_eps)
  else:
    opt = optax.adam(lr)
  if config.max_grad_norm > 0:
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
  return opt


class Loop(NamedTuple):
  """The training loop `make_loop` builds: `init(key)`, `chunk(state)`, `train(key)` (the
  `Trainer` contract's), and `collect(state) -> (carry, traj, loss_key, next_key)`, one update's
  rollout (`loss_key` None unless `make_loop(..., loss_key=True)`)."""
  init: Callable[[jax.Array], TrainState]
  chunk: Callable[[TrainState], tuple[TrainState, dict]]
  train: Callable[[jax.Array], tuple[TrainState, dict]]
  collect: Callable[[TrainState], tuple[Any, Any, Any, jax.Array]]


def make_loop(config: A2CConfig, env, env_params, *,
              init_params: Callable[[jax.Array], Any],
              act: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, Any]],
              loss_fn: Callable[..., tuple[jax.Array, tuple[losses.LossInfo, dict]]],
              refresh_env_params: Callable[[jax.Array, Any], Any] | None = None,
              loss_key: bool = False) -> Loop:
  """The A2C training loop shared by `make_trainer` and the I2A paper's agents
  (`agents.i2a.train.make_agent_trainer`): rollouts, minibatched gradient steps with
  `make_optimizer(config)`, the chunk's `lax.scan` over updates and its metrics.

  Args:
    config: a checked `A2CConfig` (rollouts, minibatches, optimiser, chunk sizes).
    env: the environment (wrapped in `envs.wrappers.EpisodeStatistics` unless it already is).
    env_params: its params (the fixed ones; see `refresh_env_params`).
    init_params: `key -> params` of the network.
    act: `(params, key, obs[B]) -> (action[B], extras)`, the acting pass; `extras` is stored as
      the trajectory's `policy_extras` (None: nothing).
    loss_fn: `(params, traj[T, B'], bootstrap_obs[B'], key) -> (loss, (a2c_info, extra))` on a
      minibatch of `B' = B / M` environments (the trajectory's `info` removed); `a2c_info` the
      `agents.a2c.losses.LossInfo`, `extra` a dict of scalars or arrays averaged into the
      metrics under their own names; `key` is None unless `loss_key`, else a key per minibatch.
    refresh_env_params: as `make_trainer`'s.
    loss_key: split a loss key off every update's key (three ways instead of two).

  Returns:
    A `Loop`; `chunk` metrics as described in `make_trainer`, plus `extra`'s.
  """
  if not isinstance(env, wrappers.EpisodeStatistics):
    env = wrappers.EpisodeStatistics(env)
  optimizer = make_optimizer(config)
  b, t, m = config.num_envs, config.rollout_length, config.num_minibatches

  def _env_params(state_env_params):
    return env_params if refresh_env_params is None else state_env_params

  def init(key: jax.Array) -> TrainState:
    k_net, k_env, key = jax.random.split(key, 3)
    params = init_params(k_net)
    seed_env_params = None
    if refresh_env_params is not None:  # (no extra split otherwise: same runs as before)
      key, k_params = jax.random.split(key)
      seed_env_params = refresh_env_params(k_params, env_params)
    carry = rollout_lib.reset(env, _env_params(seed_env_params), k_env, b)
    return TrainState(params, optimizer.init(params), carry, key, jnp.int32(0), jnp.int32(0),
                      seed_env_params)

  def collect(ts: TrainState):
    if loss_key:
      key, k_roll, k_loss = jax.random.split(ts.key, 3)
    else:
      (key, k_roll), k_loss = jax.random.split(ts.key), None
    carry, traj = rollout_lib.rollout(lambda k, obs: act(ts.params, k, obs), env,
                                      _env_params(ts.env_params), ts.rollout, k_roll, t)
    return carry, traj, k_loss, key

  def update(ts: TrainState, _):
    carry, traj, k_loss, key = collect(ts)

    def minibatch_step(state, i):
      params, opt_state = state
      take = lambda x: jax.lax.dynamic_slice_in_dim(x, i * (b // m), b // m, axis=1)  # noqa: E731
      mb = jax.tree.map(take, traj._replace(info=None))
      boot = jax.lax.dynamic_slice_in_dim(carry.obs, i * (b // m), b // m, axis=0)
      k = None if k_loss is None else jax.random.fold_in(k_loss, i)
      (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb, boot, k)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      return (params, opt_state), (loss, aux, optax.global_norm(grads))

    if m == 1:  # one gradient step on the whole batch: no scan (faster on the CPU)
      (params, opt_state), out = minibatch_step((ts.params, ts.opt_state), 0)
      loss, (info, extra), grad_norm = jax.tree.map(lambda x: x[None], out)
    else:
      (params, opt_state), (loss, (info, extra), grad_norm) = jax.lax.scan(
          minibatch_step, (ts.params, ts.opt_state), jnp.arange(m))
    done = traj.info["episode_done"]
    frames = ts.frames + b * t
    metrics = {
        "loss": jnp.mean(loss), "policy_loss": jnp.mean(info.policy_loss),
        "entropy": jnp.mean(info.entropy), "value_loss": jnp.mean(info.value_loss),
        "advantage": jnp.mean(info.advantage), "value": jnp.mean(info.value),
        "grad_norm": jnp.mean(grad_norm), "frames": frames.astype(jnp.float32),
        "reward_mean": jnp.mean(traj.reward),
        "episodes": jnp.sum(done).astype(jnp.float32),
        "episode_return_sum": jnp.sum(jnp.where(done, traj.info["episode_return"], 0.0)),
        "episode_length_sum": jnp.sum(jnp.where(done, traj.info["episode_length"], 0)
                                      ).astype(jnp.float32),
        "episode_solved_sum": jnp.sum(done & traj.info["episode_solved"]).astype(jnp.float32),
        # Counted here and raised on the host by `check_finite` (jitted code cannot raise).
        "nonfinite_obs": _count_nonfinite(traj.obs_t),
        "nonfinite_reward": jnp.sum(~jnp.isfinite(traj.reward)).astype(jnp.float32),
        "nonfinite_loss": jnp.sum(~jnp.isfinite(loss)).astype(jnp.float32),
    }
    metrics.update({name: jnp.mean(value) for name, value in extra.items()})
    if isinstance(traj.info, dict) and "stream_dry" in traj.info:
      metrics["stream_dry"] = jnp.sum(traj.info["stream_dry"]).astype(jnp.float32)
    return TrainState(params, opt_state, carry, key, ts.updates + 1, frames,
                      ts.env_params), metrics

  def chunk(ts: TrainState) -> tuple[TrainState, dict]:
    if refresh_env_params is not None:
      key, k_params = jax.random.split(ts.key)
      ts = ts._replace(key=key, env_params=refresh_env_params(k_params, ts.env_params))
    return jax.lax.scan(update, ts, None, length=config.updates_per_chunk)

  def train(key: jax.Array) -> tuple[TrainState, dict]:
    ts = init(key)
    ts, metrics = jax.lax.scan(lambda s, _: chunk(s), ts, None, length=config.num_chunks)
    return ts, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), metrics)

  return Loop(init, chunk, train, collect)


def make_trainer(config: A2CConfig, env, env_params=None, *, env_name: str = "env",
                 refresh_env_params: Callable[[jax.Array, Any], Any] | None = None) -> Trainer:
  """Builds the jittable A2C trainer for a gymnax-signature environment with discrete actions.

  Args:
    config: `A2CConfig` (see `default_config`).
    env: the environment (automatic reset in `step`); wrapped in `envs.wrappers.
      EpisodeStatistics` unless it already is, for episode returns, lengths and solve rates.
    env_params: its params (None: the environment's defaults).
    env_name: used in error messages.
    refresh_env_params: `(key, env_params) -> env_params`, jittable, or None. When given, the
      environment's params live in `TrainState.env_params` (one copy per seed under `vmap`):
      `init` applies it once to `env_params` and every `chunk` applies it again before its
      updates. This is how a Sokoban level stream gets its new levels between chunks
      (`lambda k, p: env.refill_stream(k, p, num, batch)`: the I2A paper's new level every
      episode); `info["stream_dry"]`, where the environment reports it, is summed into the
      metric `stream_dry` (resets that found the stream empty).

  Returns:
    A `Trainer`. `chunk` metrics (leading axis: the chunk's updates): loss terms, entropy,
    gradient norm, `frames` (total environment steps after the update), and sums over the
    update's completed episodes (`episodes`, `episode_return_sum`, `episode_length_sum`,
    `episode_solved_sum`), plus `nonfinite_obs` / `nonfinite_reward` / `nonfinite_loss`
    counts for `check_finite`.
  """
  check_config(config)
  env_params = env.default_params if env_params is None else env_params
  num_actions, obs_shape, obs_dtype = probe(env, env_params, env_name)
  network = ActorCritic(num_actions=num_actions, obs_rank=len(obs_shape),
                        conv_features=tuple(config.conv_features),
                        kernel_sizes=tuple(config.kernel_sizes), strides=tuple(config.strides),
                        hidden_size=config.hidden_size)

  def policy(params, key, obs):
    logits, _ = network.apply(params, obs)
    return distrax.Categorical(logits=logits).sample(seed=key).astype(jnp.int32)

  def loss_fn(params, traj: rollout_lib.Trajectory, bootstrap_obs, key=None):
    del key
    logits, values = network.apply(params, traj.obs_tm1)
    _, bootstrap_value = network.apply(params, bootstrap_obs)
    loss, info = losses.a2c_loss(logits, values, bootstrap_value, traj.action,
                                 config.reward_scale * traj.reward, traj.discount,
                                 traj.truncated, config)
    return loss, (info, {})

  loop = make_loop(
      config, env, env_params,
      init_params=lambda key: network.init(key, jnp.zeros((1,) + obs_shape, obs_dtype)),
      act=lambda params, key, obs: (policy(params, key, obs), None), loss_fn=loss_fn,
      refresh_env_params=refresh_env_params)
  return Trainer(loop.init, loop.chunk, loop.train, policy, network, config)


def _count_nonfinite(obs) -> jax.Array:
  leaves = [x for x in jax.tree.leaves(obs) if jnp.issubdtype(x.dtype, jnp.floating)]
  return sum((jnp.sum(~jnp.isfinite(x)) for x in leaves), jnp.zeros((), jnp.int32)).astype(
      jnp.float32)


def check_finite(metrics: dict, env_name: str = "env") -> None:
  """Raises if a chunk met a non-finite observation, reward or loss (metrics of `chunk`/`train`).

  Raises:
    ValueError: naming the environment, what was non-finite and the first update (within
      `metrics`; the seed index too when metrics have a leading seeds axis).
  """
  kinds = {"nonfinite_obs": "a non-finite observation", "nonfinite_reward": "a non-finite reward",
           "nonfinite_loss": "a non-finite loss (diverged)"}
  first = []
  for kind, what in kinds.items():
    bad = np.asarray(metrics[kind]) > 0
    if bad.any():
      where = np.argwhere(bad)
      row = where[np.argmin(where[:, -1])]
      first.append((int(row[-1]), int(row[0]) if bad.ndim > 1 else None, what))
  if first:
    update, seed, what = min(first, key=lambda f: f[0])
    seed_text = f" (seed index {seed})" if seed is not None else ""
    raise ValueError(f"environment {env_name!r}: {what} during update {update} of these "
                     f"metrics{seed_text}.")


def episode_statistics(metrics: dict, window: int) -> dict[str, np.ndarray]:
  """Means over the episodes completed in each window of `window` updates.

  Args:
    metrics: `chunk`/`train` metrics (leading axis updates, or seeds then updates).
    window: updates per point.

  Returns:
    `return`, `length`, `solve_rate` and `frames` (at each window's end), `[..., num_windows]`;
    NaN where no episode ended in a window.
  """
  def windows(x):
    x = np.asarray(x, np.float64)
    n = x.shape[-1] // window
    return x[..., :n * window].reshape(x.shape[:-1] + (n, window))

  count = windows(metrics["episodes"]).sum(-1)
  out = {}
  with np.errstate(invalid="ignore", divide="ignore"):
    for name, key in (("return", "episode_return_sum"), ("length", "episode_length_sum"),
                      ("solve_rate", "episode_solved_sum")):
      out[name] = np.where(count > 0, windows(metrics[key]).sum(-1) / np.maximum(count, 1),
                           np.nan)
  out["frames"] = windows(metrics["frames"])[..., -1]
  out["episodes"] = count
  return out


def evaluation_rollout(policy_fn: Callable[[jax.Array, Any], jax.Array], env, env_params,
                       key: jax.Array, num_envs: int, num_steps: int) -> dict[str, jax.Array]:
  """`num_steps` steps of `num_envs` fresh environments under `policy_fn(key, obs[B]) -> [B]`.

  Jittable (one `lax.scan`, `agents.rollout`). Returns `[T, B]` arrays `done`, `return`,
  `length`, `solved` (the `envs.wrappers.EpisodeStatistics` of the episode ending at each step;
  meaningful where `done`). `complete_episodes` selects an unbiased sample of them.
  """
  if not isinstance(env, wrappers.EpisodeStatistics):
    env = wrappers.EpisodeStatistics(env)
  k_reset, k_roll = jax.random.split(key)
  carry = rollout_lib.reset(env, env_params, k_reset, num_envs)
  _, traj = rollout_lib.rollout(lambda k, obs: (policy_fn(k, obs), None), env, env_params,
                                carry, k_roll, num_steps)
  return {"done": traj.info["episode_done"], "return": traj.info["episode_return"],
          "length": traj.info["episode_length"], "solved": traj.info["episode_solved"]}


def complete_episodes(rollout: dict, max_episode_steps: int) -> dict[str, np.ndarray]:
  """The episodes of an `evaluation_rollout` that started within its first
  `T - max_episode_steps` steps, all of which end inside it: every episode start is counted
  whatever its length, so long episodes are not under-represented (as they would be among all
  episodes that happen to end within T steps).

  Returns:
    `return`, `length`, `solved` of the selected episodes (1-D; any leading axes are flattened
    with `[T, B]`, so pass one seed's rollout to get that seed's episodes).
  """
  done = np.asarray(rollout["done"], bool)
  num_steps = done.shape[-2]
  if num_steps <= max_episode_steps:
    raise ValueError(f"the evaluation needs more steps ({num_steps}) than the longest episode "
                     f"({max_episode_steps}) to see complete episodes.")
  end = np.arange(num_steps).reshape((num_steps, 1))
  start = end - np.asarray(rollout["length"]) + 1
  keep = done & (start <= num_steps - 1 - max_episode_steps)
  return {name: np.asarray(rollout[name])[keep] for name in ("return", "length", "solved")}
