"""SAC / SAC-D runs on envpool environments, shared by the sacd_* launchers; resumable.

The device side (`agents.sac.host_train`) is driven by envpool stepping in Python, so the runs
go through the framework's host loop, `launch.host_loop.host_loop`, not `launch.train_loop`.
Each (environment, agent, seed) run is cut into chunks of `config.steps_per_chunk` batched env
steps, and after every chunk the whole device state (`HostTrainState`: agent parameters,
optimiser states, target critics, temperature, the replay ring buffer, the random key and the
env-step counter) is saved as an orbax checkpoint in `checkpoints/<tag>/seed<s>/` of the
workdir, beside the chunk's history (finished episodes and update metrics) under `history/`. A
restarted launcher restores the last checkpoint and runs only the chunks after it; finished runs
are only restored.

The environments' own state (the simulators) cannot be checkpointed. Every chunk therefore
starts from freshly made and reset environments, seeded by `(seed, chunk)`: an episode still
running at a chunk boundary is abandoned (its transitions stay in the replay buffer, with the
time-limit bootstrap of a truncation; it is not counted as a finished episode). Since this
happens at every boundary whether or not the run was interrupted, a resumed run computes exactly
what an uninterrupted one does (bit-equal on the same device; tests/launch/agents/sacd_runs_test).
Choose `steps_per_chunk` well above the episode length (HalfCheetah: a multiple of 1001, the
1000 steps of an episode plus envpool's reset step).

Update metrics are logged through `run.log_metrics` under the stream `<tag>/seed<s>`, each line
carrying its `chunk`, so the lines of a chunk recomputed after a restart are not duplicated.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from agents.sac import host_train, sac, train
from launch import host_loop


def train_config(config: ml_collections.ConfigDict, agent: str) -> train.TrainConfig:
  """The agents.TrainConfig described by a sacd_* launcher config."""
  # `learning_rate` is the policy's step size; the critics and the temperature take their own
  # (`critic_learning_rate`, `alpha_learning_rate`) where the config has them, else the same.
  agent_config = sac.SacConfig(
      hidden_sizes=tuple(config.hidden_sizes), actor_learning_rate=config.learning_rate,
      critic_learning_rate=config.get("critic_learning_rate", config.learning_rate),
      alpha_learning_rate=config.get("alpha_learning_rate", config.learning_rate),
      discount=config.discount, tau=config.tau)
  return train.TrainConfig(
      agent=agent, sac=agent_config, num_envs=config.num_envs, buffer_size=config.buffer_size,
      batch_size=config.batch_size, learning_starts=config.learning_starts,
      updates_per_step=config.updates_per_step, influence_states=config.influence_states,
      influence_every=config.log_every)


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

  def close(self):
    self._env.close()

  def step(self, action):
    out = self._env.step(action)
    comps = np.asarray(out.reward_components, np.float64) * self.weights
    info = dict(out.info, original_reward=np.asarray(out.reward))
    return out._replace(reward=comps.sum(-1).astype(np.float32), reward_components=comps,
                        info=info)


def num_chunks(config: ml_collections.ConfigDict) -> int:
  """Chunks of a run: `env_steps / steps_per_chunk`, with a clear error if that is not whole."""
  if config.steps_per_chunk < 1 or config.env_steps % config.steps_per_chunk:
    raise ValueError(f"config.env_steps ({config.env_steps}) must be a positive multiple of "
                     f"config.steps_per_chunk ({config.steps_per_chunk})")
  if config.steps_per_chunk % config.log_every:
    raise ValueError(f"config.steps_per_chunk ({config.steps_per_chunk}) must be a multiple of "
                     f"config.log_every ({config.log_every}), so that every chunk logs")
  return config.env_steps // config.steps_per_chunk


def chunk_seed(seed: int, chunk: int) -> int:
  """Seed of the environments of chunk `chunk` of run `seed` (31 bits, as envpool takes)."""
  return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0] >> 1)


def host_chunk_fn(trainer: host_train.HostTrainer, make_chunk_env: Callable[[int], Any],
                  steps_per_chunk: int, key: jax.Array, *, metrics_every: int,
                  on_metrics: Callable[[int, int, dict], None] | None = None) -> Callable:
  """The `chunk_fn(state, chunk)` of `launch.host_loop.host_loop` for SAC / SAC-D on envpool.

  Args:
    trainer: from `agents.sac.host_train.make_host_train`.
    make_chunk_env: `make_chunk_env(chunk) -> env`, a fresh environment for chunk `chunk`
      (0-based); it must depend on `chunk` only (deterministic resumption). Closed after the
      chunk if it has `close`.
    steps_per_chunk: batched env steps per chunk.
    key: the run's key.
    metrics_every: keep the update metrics of every `metrics_every`-th env step.
    on_metrics: optional `on_metrics(chunk, step, metrics)` (chunk 1-based), for logging.
  """

  def chunk_fn(state, chunk):
    env = make_chunk_env(chunk)
    t0 = time.perf_counter()
    state, history = host_train.run_host_training(
        trainer, env, steps_per_chunk, key, state=state, metrics_every=metrics_every,
        on_metrics=None if on_metrics is None else (
            lambda step, m: on_metrics(chunk + 1, step, m)))
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
    if hasattr(env, "close"):
      env.close()
    returns = history["episode_return"]
    summary = {"episodes": len(returns),
               "mean_episode_return": float(np.mean(returns)) if len(returns) else float("nan"),
               "env_steps_per_s": steps_per_chunk * env.num_envs / seconds}
    return state, history, summary

  return chunk_fn


def run_seeds(config: ml_collections.ConfigDict, run: Any, task_id: str, agent: str, tag: str,
              weights: dict[str, float] | None = None, trainer: Any = None
              ) -> tuple[Any, list, list]:
  """Trains `agent` on `task_id` for `config.num_seeds` seeds (one compiled trainer for all).

  Each seed is a resumable chunked run (`launch.host_loop.host_loop`) named `<tag>/seed<s>`.

  Args:
    trainer: a `HostTrainer` built earlier for the same task and agent, whose compiled
      functions are reused (e.g. across reward weightings); None builds one.

  Returns:
    `(trainer, states, histories)` with one state and history per seed.
  """
  tc = train_config(config, agent)
  chunks = num_chunks(config)
  if trainer is None:
    probe = make_env(task_id, config.num_envs, config.seed, weights)
    trainer = host_train.make_host_train(tc, probe, env_name=task_id)
    probe.close()
  names = trainer.component_names
  states, histories = [], []
  for s in range(config.num_seeds):
    seed = config.seed + s
    name = f"{tag}/seed{seed}"

    def log(chunk, step, metrics, name=name):
      scalars = {"chunk": chunk}
      scalars.update({k: float(v) for k, v in metrics.items() if np.ndim(v) == 0})
      for i, component in enumerate(names):
        scalars[f"influence/{component}"] = float(metrics["influence"][i])
        scalars[f"q/{component}"] = float(metrics["q_heads"][i]) if (
            np.shape(metrics["q_heads"])[0] > i) else float("nan")
      run.log_metrics(step * config.num_envs, scalars, stream=name)

    key = jax.random.key(seed)
    chunk_fn = host_chunk_fn(
        trainer,
        lambda chunk, seed=seed: make_env(task_id, config.num_envs, chunk_seed(seed, chunk),
                                          weights),
        config.steps_per_chunk, key, metrics_every=config.log_every, on_metrics=log)
    state, history = host_loop.host_loop(
        run.workdir_obj, lambda key=key: trainer.init(key), chunk_fn, chunks, name=name,
        step_of=lambda s: int(s.env_steps) * config.num_envs)
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
