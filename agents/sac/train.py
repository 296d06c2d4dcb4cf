"""Training loop of SAC / SAC-D on a jittable (gymnax-signature) environment.

Everything, the environment steps, replay writes, gradient updates and metrics, runs under one
`jit` as a `lax.scan` over environment steps, and `jax.vmap(train)(keys)` runs several seeds:

    trainer = make_trainer(TrainConfig(...), env, env_params, env_name="point_mass")
    state = trainer.init(key)
    state, metrics = trainer.chunk(state)        # `steps_per_chunk` env steps
    final_state, metrics = trainer.train(key)    # init + `num_chunks` chunks

`Trainer(init, chunk)` is the agents' trainer contract: `launch.train_loop.train_loop` runs
`trainer.init` and `trainer.chunk` directly (checkpoints, resumption, vmapped seeds).

The environment must emit `info["reward_components"]` (`[K]`, summing to the reward) for SAC-D;
SAC uses the scalar reward. Before anything is compiled, one probe transition is taken on the
host and checked (`agents.reward_components.check_step`), so a missing or inconsistent
decomposition fails with a message naming the environment and the component.
Actions are produced in (-1, 1) and rescaled to the environment's action box.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents import replay
from agents.sac import influence as influence_lib
from agents.sac import reward_components as rc
from agents.sac.sac import Agent, AgentState, SacConfig, Transition, make_sac
from agents.sac.sac_d import make_sac_d

AGENTS = ("sac", "sac_d")


class TrainConfig(NamedTuple):
  """Settings of the training loop (hyperparameters of the agent are in `sac`)."""
  agent: str = "sac_d"              # "sac" or "sac_d".
  sac: SacConfig = SacConfig()      # Agent hyperparameters.
  num_envs: int = 1                 # Environments stepped in parallel (vmap).
  buffer_size: int = 100_000        # Replay capacity (transitions).
  batch_size: int = 256             # Transitions per gradient update.
  learning_starts: int = 1000       # Env steps (per environment) of uniform random actions.
  updates_per_step: int = 1         # Gradient updates per env step (a lax.scan).
  steps_per_chunk: int = 1000       # Env steps per jitted chunk.
  num_chunks: int = 10              # Chunks run by `train`.
  influence_states: int = 32        # Batch states on which reward influence is measured.
  influence_every: int = 1          # Measure influence after every this many env steps (NaN in
                                    # between): one backward pass per component is not free.


class TrainState(NamedTuple):
  agent: AgentState
  buffer: replay.ReplayState
  env_state: Any
  obs: jax.Array                    # [num_envs, obs_dim]
  episode_return: jax.Array         # [num_envs] running undiscounted return
  episode_components: jax.Array     # [num_envs, K] running component returns
  env_steps: jax.Array              # Env steps per environment so far.
  key: jax.Array


class Trainer(NamedTuple):
  """`init(key) -> state`, `chunk(state) -> (state, metrics)` (the agents' trainer contract)."""
  init: Callable[[jax.Array], TrainState]
  chunk: Callable[[TrainState], tuple[TrainState, dict]]
  train: Callable[[jax.Array], tuple[TrainState, dict]]
  agent: Agent
  num_components: int
  component_names: list[str]


def build_agent(config: TrainConfig, obs_dim: int, action_dim: int, num_components: int) -> Agent:
  """The SAC or SAC-D agent named by `config.agent`."""
  if config.agent == "sac":
    return make_sac(config.sac, obs_dim, action_dim)
  if config.agent == "sac_d":
    return make_sac_d(config.sac, obs_dim, action_dim, num_components)
  raise ValueError(f"config.agent must be one of {AGENTS}, got {config.agent!r}")


def check_train_config(config: TrainConfig) -> None:
  for name in ("num_envs", "buffer_size", "batch_size", "updates_per_step", "steps_per_chunk",
               "num_chunks", "influence_states", "influence_every"):
    value = getattr(config, name)
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer, got {value!r}")
  if config.learning_starts < 1:
    raise ValueError(f"config.learning_starts must be >= 1 (the buffer must hold data before "
                     f"the first update), got {config.learning_starts}")
  if config.num_envs > config.buffer_size:
    raise ValueError(f"config.num_envs ({config.num_envs}) exceeds config.buffer_size "
                     f"({config.buffer_size})")


def update_metrics_template(agent: Agent, obs_dim: int, action_dim: int, num_components: int,
                            batch_size: int) -> dict:
  """Zero metrics with the structure `agent.update` returns plus influence (for `lax.cond`)."""
  state = jax.eval_shape(agent.init, jax.random.key(0))
  batch = Transition(jnp.zeros((batch_size, obs_dim)), jnp.zeros((batch_size, action_dim)),
                     jnp.zeros((batch_size,)), jnp.zeros((batch_size, num_components)),
                     jnp.zeros((batch_size,)), jnp.zeros((batch_size, obs_dim)))
  _, metrics = jax.eval_shape(agent.update, state, batch, jax.random.key(0))
  metrics = dict(metrics)
  metrics["influence"] = jax.ShapeDtypeStruct((num_components,), jnp.float32)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics)


def make_update_step(agent: Agent, buffer: replay.ReplayBuffer, config: TrainConfig,
                     num_components: int) -> Callable:
  """`update_step(agent_state, buffer_state, key, measure) -> (agent_state, metrics)`.

  Runs `config.updates_per_step` gradient updates on fresh replay batches (a lax.scan) and, where
  the boolean `measure` is true, measures reward influence at the policy's mean action on the
  last batch's first states (NaN otherwise). Metrics are the last update's.
  """

  def update_step(agent_state, buffer_state, key, measure):
    def one(state, k):
      k_sample, k_update = jax.random.split(k)
      batch = buffer.sample(buffer_state, k_sample, config.batch_size)
      state, metrics = agent.update(state, batch, k_update)
      return state, (metrics, batch.obs)

    if config.updates_per_step == 1:  # No scan: a loop of one only adds compile time.
      agent_state, (metrics, obs) = one(agent_state, key)
    else:
      keys = jax.random.split(key, config.updates_per_step)
      agent_state, (metrics, obs) = jax.lax.scan(one, agent_state, keys)
      metrics = jax.tree.map(lambda x: x[-1], metrics)
      obs = obs[-1]
    obs = obs[:config.influence_states]
    if config.agent == "sac_d":
      def measured():
        action = agent.act(agent_state.actor_params, obs, key, deterministic=True)
        return jnp.mean(influence_lib.agent_influence(
            agent.critic, agent_state.critic_params, obs, action, num_components), axis=0)

      metrics["influence"] = jax.lax.cond(
          measure, measured, lambda: jnp.full((num_components,), jnp.nan, jnp.float32))
    else:  # A scalar critic has no decomposition; report the uniform split.
      metrics["influence"] = jnp.full((num_components,), 1.0 / num_components)
    return agent_state, metrics

  return update_step


def _probe(env, env_params, env_name, component_names, agent_name):
  """One host-side reset and step, checked; returns (obs_dim, action_dim, K, low, high, names)."""
  key = jax.random.key(0)
  obs, state = env.reset(key, env_params)
  space = env.action_space(env_params)
  action = jnp.zeros(tuple(space.shape), jnp.float32)
  obs2, _, reward, _, _, info = env.step(key, state, action, env_params)
  if agent_name == "sac_d":
    comps = rc.components_from_info(env_name, info)
  else:
    comps = info.get(rc.INFO_KEY, jnp.reshape(reward, (1,))) if info else jnp.reshape(reward, (1,))
  comps = np.asarray(comps)
  if comps.ndim != 1:
    raise ValueError(f"environment {env_name!r}: info[{rc.INFO_KEY!r}] must be a vector per "
                     f"step, got shape {comps.shape}")
  names = rc.component_names_or_default(component_names, comps.shape[0])
  for o in (obs, obs2):
    if np.ndim(o) != 1:
      raise ValueError(f"environment {env_name!r}: observations must be flat vectors, got shape "
                       f"{np.shape(o)}")
  rc.check_step(env_name, obs, reward, comps, names)
  rc.check_step(env_name, obs2, reward, comps, names)
  low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
  high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
  return int(np.shape(obs)[0]), int(space.shape[0]), int(comps.shape[0]), low, high, names


def make_trainer(config: TrainConfig, env, env_params=None, *, env_name: str = "env",
               component_names: Sequence[str] | None = None) -> Trainer:
  """Builds the jittable SAC / SAC-D training functions for a gymnax-signature environment.

  Args:
    config: loop settings and agent hyperparameters.
    env: environment with `reset`, `step`, `action_space` (a Box) and, for SAC-D,
      `info["reward_components"]`.
    env_params: its parameters (None: the environment's defaults).
    env_name: name used in error messages.
    component_names: names of the reward components (for messages and logs).

  Returns:
    A `Trainer`; `chunk` metrics have a leading `[steps_per_chunk]` axis.
  """
  check_train_config(config)
  build_agent(config, 1, 1, 1)  # Validates config.agent before touching the environment.
  env_params = env.default_params if env_params is None else env_params
  obs_dim, action_dim, num_components, low, high, names = _probe(
      env, env_params, env_name, component_names, config.agent)
  agent = build_agent(config, obs_dim, action_dim, num_components)
  buffer = replay.replay_buffer(config.buffer_size)
  update_step = make_update_step(agent, buffer, config, num_components)
  zero_metrics = update_metrics_template(agent, obs_dim, action_dim, num_components,
                                         config.batch_size)
  low, high = jnp.asarray(low), jnp.asarray(high)
  n = config.num_envs

  def components_of(reward, info):
    if rc.INFO_KEY in info:
      return info[rc.INFO_KEY]
    return reward[:, None]

  def init(key: jax.Array) -> TrainState:
    key, k_agent, k_env = jax.random.split(key, 3)
    agent_state = agent.init(k_agent)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, n), env_params)
    example = Transition(obs[0], jnp.zeros(action_dim), jnp.zeros(()),
                         jnp.zeros(num_components), jnp.zeros(()), obs[0])
    return TrainState(agent_state, buffer.init(example), env_state, obs, jnp.zeros(n),
                      jnp.zeros((n, num_components)), jnp.zeros((), jnp.int32), key)

  def step(ts: TrainState, _):
    key, k_act, k_rand, k_env, k_update = jax.random.split(ts.key, 5)
    policy_action = agent.act(ts.agent.actor_params, ts.obs, k_act)
    random_action = jax.random.uniform(k_rand, (n, action_dim), minval=-1.0, maxval=1.0)
    warmup = ts.env_steps < config.learning_starts
    action = jnp.where(warmup, random_action, policy_action)
    env_action = low + 0.5 * (action + 1.0) * (high - low)
    obs2, env_state, reward, terminated, truncated, info = jax.vmap(
        env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, n), ts.env_state, env_action,
                                           env_params)
    comps = components_of(reward, info)
    # With automatic reset, obs2 of a finished episode is the next episode's first observation;
    # bootstrap from the final observation when the environment reports it.
    next_obs = info.get("final_obs", obs2) if isinstance(info, dict) else obs2
    transition = Transition(ts.obs, action, reward, comps,
                            1.0 - terminated.astype(jnp.float32), next_obs)
    buffer_state = buffer.add(ts.buffer, transition)

    measure = (ts.env_steps + 1) % config.influence_every == 0
    agent_state, metrics = jax.lax.cond(
        warmup, lambda a, b, k, m: (a, zero_metrics), update_step, ts.agent, buffer_state,
        k_update, measure)

    done = jnp.logical_or(terminated, truncated)
    ep_return = ts.episode_return + reward
    ep_comps = ts.episode_components + comps
    metrics = dict(metrics)
    metrics["episodes_done"] = jnp.sum(done).astype(jnp.float32)
    metrics["episode_return_sum"] = jnp.sum(jnp.where(done, ep_return, 0.0))
    metrics["episode_components_sum"] = jnp.sum(jnp.where(done[:, None], ep_comps, 0.0), axis=0)
    metrics["updating"] = jnp.logical_not(warmup).astype(jnp.float32)
    # Counted here and raised on the host by `check_finite` (jitted code cannot raise).
    metrics["nonfinite_obs"] = jnp.sum(~jnp.isfinite(obs2)).astype(jnp.float32)
    metrics["nonfinite_reward"] = jnp.sum(~jnp.isfinite(reward)).astype(jnp.float32)
    metrics["nonfinite_components"] = jnp.sum(~jnp.isfinite(comps), axis=0).astype(jnp.float32)
    new = TrainState(agent_state, buffer_state, env_state, obs2,
                     jnp.where(done, 0.0, ep_return), jnp.where(done[:, None], 0.0, ep_comps),
                     ts.env_steps + 1, key)
    return new, metrics

  def chunk(ts: TrainState) -> tuple[TrainState, dict]:
    return jax.lax.scan(step, ts, None, length=config.steps_per_chunk)

  def train(key: jax.Array) -> tuple[TrainState, dict]:
    ts = init(key)
    ts, metrics = jax.lax.scan(lambda s, _: chunk(s), ts, None, length=config.num_chunks)
    return ts, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), metrics)

  return Trainer(init, chunk, train, agent, num_components, names)


def check_finite(env_name: str, component_names: Sequence[str], metrics: dict) -> None:
  """Raises if the environment produced a non-finite value during `chunk` / `train`.

  The probe in `make_trainer` checks one step before compiling; later steps run under `jit`,
  which counts non-finite observations, rewards and components per step instead of raising.
  Call this on the metrics of each chunk.

  Args:
    env_name: used in the message.
    component_names: the trainer's `component_names`.
    metrics: metrics of `chunk` or `train`, `[steps]` leading axis (optionally seeds first).

  Raises:
    ValueError: naming the environment, the component (or observation / reward) and the first
      env step (within `metrics`) at which it was non-finite.
  """
  names = list(component_names)
  kinds = {"nonfinite_obs": "a non-finite observation",
           "nonfinite_reward": "a non-finite reward",
           "nonfinite_components": "a non-finite reward component"}
  first = []  # (step, seed index or None, kind, component) of each kind's first bad value.
  for kind in kinds:
    counts = np.asarray(metrics[kind])
    bad = counts > 0 if kind == "nonfinite_components" else (counts > 0)[..., None]
    if not bad.any():
      continue
    where = np.argwhere(bad)                         # [..., step, component]
    row = where[np.argmin(where[:, -2])]
    seed = int(row[0]) if len(row) > 2 else None
    first.append((int(row[-2]), seed, kind, int(row[-1])))
  if first:
    step, seed, kind, k = min(first, key=lambda f: f[0])
    detail = f" {names[k]!r}" if kind == "nonfinite_components" else ""
    where = f" (seed index {seed})" if seed is not None else ""
    raise ValueError(f"environment {env_name!r} returned {kinds[kind]}{detail} at env step "
                     f"{step} of these metrics{where}")


def episode_returns(metrics: dict, window: int) -> np.ndarray:
  """Mean return of the episodes finished in each window of `window` env steps.

  Args:
    metrics: `chunk`/`train` metrics with a leading steps axis (optionally seeds first).
    window: env steps per window.

  Returns:
    `[..., num_windows]` mean returns; NaN where no episode finished in a window.
  """
  total = np.asarray(metrics["episode_return_sum"], np.float64)
  count = np.asarray(metrics["episodes_done"], np.float64)
  steps = total.shape[-1] // window
  total = total[..., :steps * window].reshape(total.shape[:-1] + (steps, window)).sum(-1)
  count = count[..., :steps * window].reshape(count.shape[:-1] + (steps, window)).sum(-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
