"""SAC / SAC-D runs on envpool environments, shared by the sacd_* launchers.

The host loop (`agents.host_train`) is not one jitted scan, so these runs do not go through
`run.train_loop` (no mid-run checkpoint); each (environment, agent, seed) run is short and is
repeated in full if the launcher is restarted. Update metrics are logged through
`run.log_metrics` under the stream `<tag>`.
"""
from __future__ import annotations

from typing import Any

import jax
import ml_collections
import numpy as np

from agents import host_train, sac, train


def train_config(config: ml_collections.ConfigDict, agent: str) -> train.TrainConfig:
  """The agents.TrainConfig described by a sacd_* launcher config."""
  agent_config = sac.SacConfig(
      hidden_sizes=tuple(config.hidden_sizes), actor_learning_rate=config.learning_rate,
      critic_learning_rate=config.learning_rate, alpha_learning_rate=config.learning_rate,
      discount=config.discount, tau=config.tau)
  return train.TrainConfig(
      agent=agent, sac=agent_config, num_envs=config.num_envs, buffer_size=config.buffer_size,
      batch_size=config.batch_size, learning_starts=config.learning_starts,
      updates_per_step=config.updates_per_step, influence_states=config.influence_states)


def make_env(task_id: str, num_envs: int, seed: int, weights: dict[str, float] | None = None):
  """An envpool `HostEnv`, optionally with re-weighted reward components."""
  from envs.host.envpool_env import HostEnv  # noqa: PLC0415  (envpool is heavy)
  env = HostEnv(task_id, num_envs=num_envs, seed=seed)
  if weights:
    env = ReweightedEnv(env, weights)
  return env


class ReweightedEnv:
  """A host environment whose reward is `sum_k w_k r^k` (a reward designer's weights).

  Components missing from `weights` keep weight 1. `info["original_reward"]` holds the reward
  before re-weighting, so runs with different weights can be scored on the same task.
  """

  def __init__(self, env, weights: dict[str, float]):
    names = list(env.component_names)
    unknown = sorted(set(weights) - set(names))
    if unknown:
      raise ValueError(f"weights name components {unknown} that environment "
                       f"{getattr(env, 'task_id', env)!r} lacks; its components: {names}")
    self._env = env
    self.weights = np.array([float(weights.get(n, 1.0)) for n in names])
    self.component_names = env.component_names
    self.task_id = getattr(env, "task_id", "env")
    self.num_envs = env.num_envs
    self.observation_space = env.observation_space
    self.action_space = env.action_space

  def reset(self):
    return self._env.reset()

  def step(self, action):
    out = self._env.step(action)
    comps = np.asarray(out.reward_components, np.float64) * self.weights
    info = dict(out.info, original_reward=np.asarray(out.reward))
    return out._replace(reward=comps.sum(-1).astype(np.float32), reward_components=comps,
                        info=info)


def run_seeds(config: ml_collections.ConfigDict, run: Any, task_id: str, agent: str, tag: str,
              weights: dict[str, float] | None = None, trainer: Any = None
              ) -> tuple[Any, list, list]:
  """Trains `agent` on `task_id` for `config.num_seeds` seeds (one compiled trainer for all).

  Args:
    trainer: a `HostTrainer` built earlier for the same task and agent, whose compiled
      functions are reused (e.g. across reward weightings); None builds one.

  Returns:
    `(trainer, states, histories)` with one state and history per seed.
  """
  tc = train_config(config, agent)
  states, histories = [], []
  for s in range(config.num_seeds):
    seed = config.seed + s
    env = make_env(task_id, config.num_envs, seed, weights)
    if trainer is None:
      trainer = host_train.make_host_train(tc, env, env_name=task_id)
    names = trainer.component_names

    def log(step, metrics, seed=seed):
      scalars = {f"seed{seed}/{k}": float(v) for k, v in metrics.items() if np.ndim(v) == 0}
      for i, name in enumerate(names):
        scalars[f"seed{seed}/influence/{name}"] = float(metrics["influence"][i])
        scalars[f"seed{seed}/q/{name}"] = float(metrics["q_heads"][i]) if (
            np.shape(metrics["q_heads"])[0] > i) else float("nan")
      run.log_metrics(step * config.num_envs, scalars, stream=tag)

    state, history = host_train.run_host_training(
        trainer, env, config.env_steps, jax.random.key(seed), metrics_every=config.log_every,
        on_metrics=log)
    states.append(state)
    histories.append(history)
  return trainer, states, histories


def return_curve(histories: list[dict], window: int, total: int, num_envs: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Mean episode return per window of `window` environment steps (all envs), per seed.

  Returns:
    `(steps [W], returns [seeds, W])`, NaN where no episode finished in a window.
  """
  edges = np.arange(0, total * num_envs + window, window)
  out = np.full((len(histories), len(edges) - 1), np.nan)
  for s, h in enumerate(histories):
    steps = np.asarray(h["episode_step"]) * num_envs
    returns = np.asarray(h["episode_return"])
    for w in range(len(edges) - 1):
      sel = (steps > edges[w]) & (steps <= edges[w + 1])
      if sel.any():
        out[s, w] = returns[sel].mean()
  return edges[1:], out


def final_mean(values: list[np.ndarray], fraction: float = 0.2) -> float:
  """Mean over seeds of the mean of the last `fraction` of each seed's values (NaN if empty)."""
  means = []
  for v in values:
    v = np.asarray(v)
    if len(v):
      means.append(np.mean(v[-max(1, int(round(fraction * len(v)))):], axis=0))
  return np.mean(means, axis=0) if means else float("nan")
