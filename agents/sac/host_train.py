"""Training loop of SAC / SAC-D on a host (envpool) environment.

The environment steps in Python on the host, one batched step at a time; everything on the
device, the replay write, `updates_per_step` gradient updates (a `lax.scan`), the influence
metrics and the next action, is one jitted call per environment step:

    trainer = make_host_train(TrainConfig(...), env, env_name="HalfCheetah-v4")
    state, history = run_host_training(trainer, env, num_steps=10_000, key=key)

The environment follows `envs.host.envpool_env.HostEnv`: `reset() -> (obs, info)`,
`step(action) -> HostStep(obs, reward, terminated, truncated, reward_components, info)` with
`info["reset_step"]` marking the rows that envpool spent resetting (their transitions are not
stored), `action_space` (a Box) and `component_names`. Every step is checked on the host
(`agents.reward_components.check_step`), so a broken decomposition or a non-finite observation
stops training with an error naming the environment and the component.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents import replay
from agents.sac import reward_components as rc
from agents.sac.sac import Agent, AgentState, Transition
from agents.sac.train import (
  TrainConfig,
  build_agent,
  check_train_config,
  make_update_step,
  update_metrics_template,
)


class HostTrainState(NamedTuple):
  agent: AgentState
  buffer: replay.ReplayState
  env_steps: jax.Array
  key: jax.Array


class HostTrainer(NamedTuple):
  """Jitted device-side functions of the host loop.

  Attributes:
    init: `init(key) -> HostTrainState`.
    act: `act(state, obs [N, obs_dim]) -> (state, action [N, A] in (-1, 1))`.
    learn_and_act: `learn_and_act(state, transition [N], mask [N], next_obs) ->
      (state, metrics, next_action)`: stores the masked rows, updates (after warm-up) and picks
      the next action, in one call.
    agent: the SAC / SAC-D agent.
    env_name, component_names, obs_dim, action_dim, low, high: environment description.
  """
  init: Callable
  act: Callable
  learn_and_act: Callable
  agent: Agent
  env_name: str
  component_names: list[str]
  obs_dim: int
  action_dim: int
  low: np.ndarray
  high: np.ndarray


def make_host_train(config: TrainConfig, env: Any, *, env_name: str | None = None) -> HostTrainer:
  """Builds the device side of SAC / SAC-D training on a host environment.

  Args:
    config: loop settings and agent hyperparameters (`num_envs` must match the environment).
    env: a `HostEnv`-like batch of environments (see the module docstring).
    env_name: name for messages (default: `env.task_id`).

  Raises:
    ValueError: SAC-D on an environment without a reward decomposition, or a mismatch of
      `num_envs`, or a non-Box action space.
  """
  check_train_config(config)
  env_name = env_name or getattr(env, "task_id", type(env).__name__)
  names = list(getattr(env, "component_names", ()) or ())
  if config.agent == "sac_d" and (not names or names == ["reward"]):
    raise ValueError(f"environment {env_name!r} provides no reward components (its adapter "
                     f"reports {names or 'none'}); SAC-D needs a reward decomposition. Train "
                     "plain SAC (config.agent='sac') or use a decomposed task.")
  if getattr(env, "num_envs", config.num_envs) != config.num_envs:
    raise ValueError(f"config.num_envs={config.num_envs} but environment {env_name!r} has "
                     f"num_envs={env.num_envs}")
  space = env.action_space
  if hasattr(space, "n") or len(space.shape) != 1:
    raise ValueError(f"environment {env_name!r}: SAC needs a flat Box action space, got {space}")
  obs_dim = int(np.prod(env.observation_space.shape))
  action_dim = int(space.shape[0])
  num_components = max(len(names), 1)
  names = rc.component_names_or_default(names or None, num_components)
  agent = build_agent(config, obs_dim, action_dim, num_components)
  buffer = replay.replay_buffer(config.buffer_size)
  update_step = make_update_step(agent, buffer, config, num_components)
  zero_metrics = update_metrics_template(agent, obs_dim, action_dim, num_components,
                                         config.batch_size)
  n = config.num_envs

  def init(key):
    key, k_agent = jax.random.split(key)
    example = Transition(jnp.zeros(obs_dim), jnp.zeros(action_dim), jnp.zeros(()),
                         jnp.zeros(num_components), jnp.zeros(()), jnp.zeros(obs_dim))
    return HostTrainState(agent.init(k_agent), buffer.init(example), jnp.zeros((), jnp.int32),
                          key)

  def act(state, obs):
    key, k_act, k_rand = jax.random.split(state.key, 3)
    policy = agent.act(state.agent.actor_params, obs, k_act)
    random = jax.random.uniform(k_rand, (n, action_dim), minval=-1.0, maxval=1.0)
    action = jnp.where(state.env_steps < config.learning_starts, random, policy)
    return state._replace(key=key), action

  def learn_and_act(state, transition, mask, next_obs):
    key, k_update = jax.random.split(state.key)
    buffer_state = buffer.add(state.buffer, transition, mask)
    warmup = state.env_steps < config.learning_starts
    measure = (state.env_steps + 1) % config.influence_every == 0
    agent_state, metrics = jax.lax.cond(
        warmup, lambda a, b, k, m: (a, zero_metrics), update_step, state.agent, buffer_state,
        k_update, measure)
    metrics = dict(metrics, updating=jnp.logical_not(warmup).astype(jnp.float32))
    state = HostTrainState(agent_state, buffer_state, state.env_steps + 1, key)
    state, action = act(state, next_obs)
    return state, metrics, action

  low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
  high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
  return HostTrainer(jax.jit(init), jax.jit(act), jax.jit(learn_and_act, donate_argnums=0),
                     agent, env_name, names, obs_dim, action_dim, low, high)


def to_env_action(trainer: HostTrainer, action) -> np.ndarray:
  """Maps actions in (-1, 1) to the environment's box."""
  action = np.asarray(action, np.float64)
  return (trainer.low + 0.5 * (action + 1.0) * (trainer.high - trainer.low)).astype(np.float32)


def run_host_training(trainer: HostTrainer, env: Any, num_steps: int, key: jax.Array,
                      state: HostTrainState | None = None, metrics_every: int = 1,
                      on_metrics: Callable[[int, dict], None] | None = None
                      ) -> tuple[HostTrainState, dict]:
  """Runs `num_steps` batched environment steps with training.

  Args:
    trainer: from `make_host_train`.
    env: the same environment.
    num_steps: batched environment steps.
    key: used only when `state` is None.
    state: a state to continue from. The environments are reset first either way: an episode
      running when an earlier call returned is abandoned (its stored transitions stay valid;
      it is not counted as finished).
    metrics_every: keep the update metrics of the steps whose global index (below) is a
      multiple of `metrics_every`.
    on_metrics: optional `on_metrics(step, metrics)` callback for the kept steps (logging).

  Returns:
    `(state, history)`: history holds numpy arrays `episode_step` / `episode_return` /
    `episode_components` (one row per finished episode, with the env step it finished at) and
    `metrics_step` plus one array per update metric. Steps are global: counted from
    `state.env_steps` at the start, so the histories of consecutive calls concatenate.
  """
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  n = env.num_envs
  state = trainer.init(key) if state is None else state
  start = int(state.env_steps)
  obs, _ = env.reset()
  obs = np.asarray(obs, np.float32).reshape(n, -1)
  rc.check_step(trainer.env_name, obs, np.zeros(n), np.zeros((n, 1)))
  state, action = trainer.act(state, obs)
  k = len(trainer.component_names)
  ep_return, ep_comps = np.zeros(n), np.zeros((n, k))
  episodes = {"episode_step": [], "episode_return": [], "episode_components": []}
  kept: dict[str, list] = {"metrics_step": []}
  for t in range(num_steps):
    action_np = np.asarray(action)
    out = env.step(to_env_action(trainer, action_np))
    next_obs = np.asarray(out.obs, np.float32).reshape(n, -1)
    comps = np.asarray(out.reward_components, np.float64).reshape(n, -1)
    rc.check_step(trainer.env_name, next_obs, out.reward, comps, trainer.component_names)
    reset_rows = np.asarray(out.info.get("reset_step", np.zeros(n, bool)), bool)
    transition = Transition(obs, action_np, np.asarray(out.reward, np.float32),
                            comps.astype(np.float32),
                            1.0 - np.asarray(out.terminated, np.float32), next_obs)
    state, metrics, action = trainer.learn_and_act(state, transition, ~reset_rows, next_obs)
    live = ~reset_rows
    ep_return += np.where(live, out.reward, 0.0)
    ep_comps += np.where(live[:, None], comps, 0.0)
    done = live & (np.asarray(out.terminated) | np.asarray(out.truncated))
    for i in np.flatnonzero(done):
      episodes["episode_step"].append(start + t + 1)
      episodes["episode_return"].append(ep_return[i])
      episodes["episode_components"].append(ep_comps[i].copy())
    ep_return[done] = 0.0
    ep_comps[done] = 0.0
    obs = next_obs
    step = start + t + 1
    if step % metrics_every == 0:
      metrics = jax.device_get(metrics)
      kept["metrics_step"].append(step)
      for name, value in metrics.items():
        kept.setdefault(name, []).append(np.asarray(value))
      if on_metrics is not None:
        on_metrics(step, metrics)
  history = {name: np.asarray(values) for name, values in {**episodes, **kept}.items()}
  history["episode_step"] = history["episode_step"].astype(np.int64)
  history["metrics_step"] = history["metrics_step"].astype(np.int64)
  if not episodes["episode_components"]:
    history["episode_components"] = np.zeros((0, k))
  return state, history
