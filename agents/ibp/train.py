"""Training and evaluation of IBP's planner (Pascanu et al. 2017, Sec. 2, "Training").

[P] Three subgraphs, each on its own objective, trained together: the imagination supervised on
real transitions (`fit_imagination`, on `agents.ibp.imagination`); the manager by REINFORCE with
an entropy bonus and a learned baseline; controller and memory by SVG through the learned model.
The last two come from one surrogate (`Planner.loss`, see `planner.py`), whose gradient holds
each subgraph's own gradient.

[O] Our choices, for CPU budgets:
- The imagination is fitted first, on transitions under random thrusts, and then held fixed
  while the planner trains (the paper trains it alongside; the planner's own transitions come
  from the same scene distribution, and the held-out error is reported by `fit_imagination`).
- One Adam over all parameters (the objectives' gradients are disjoint per subgraph, so one
  optimiser is several), global-norm clipping; a fresh batch of scenes per update (`reset`
  inside the jitted `lax.scan` of a chunk).

    trainer = make_trainer(planner, TrainConfig())
    state = trainer.init(key)
    state, metrics = trainer.chunk(state)            # updates_per_chunk updates, one jit
    results = trainer.evaluate(state.params, key)    # held-out scenes
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents.ibp import imagination as imagination_lib
from agents.ibp import planner as planner_lib
from envs import spaceship as ss


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  learning_rate: float = 1e-3     # [O] Adam
  batch_size: int = 32            # [O] episodes (fresh scenes) per update
  updates_per_chunk: int = 100    # [O] updates per jitted lax.scan
  max_grad_norm: float = 10.0     # [O] global-norm clipping (<= 0: none)
  eval_episodes: int = 512        # [O] held-out scenes of `evaluate`

  def replace(self, **kwargs) -> "TrainConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: TrainConfig) -> None:
  for name in ("batch_size", "updates_per_chunk", "eval_episodes"):
    value = getattr(config, name)
    if isinstance(value, bool) or int(value) != value or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}")
  if not config.learning_rate > 0:
    raise ValueError(f"config.learning_rate must be > 0; got {config.learning_rate!r}")


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array
  updates: jax.Array   # int32


class Trainer(NamedTuple):
  """`init(key) -> TrainState`; `chunk(state) -> (state, metrics[updates_per_chunk])`;
  `evaluate(params, key) -> dict` of held-out numbers (see `evaluate`)."""
  init: Callable
  chunk: Callable
  evaluate: Callable
  planner: planner_lib.Planner
  config: TrainConfig


def _scenes(env, env_params, key, num):
  return jax.vmap(lambda k: env.reset_env(k, env_params)[1])(jax.random.split(key, num))


def make_trainer(planner: planner_lib.Planner, config: TrainConfig = TrainConfig()) -> Trainer:
  """The planner's trainer: one jit per chunk, `lax.scan` over updates, fresh scenes each."""
  check_config(config)
  env, env_params = planner.env, planner.env_params
  clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
  opt = optax.chain(*clip, optax.adam(config.learning_rate))
  B = config.batch_size

  def init(key):
    k_init, key = jax.random.split(key)
    params = planner.init(k_init)
    return TrainState(params, opt.init(params), key, jnp.int32(0))

  def update(state, _):
    key, k_scene, k_ep = jax.random.split(state.key, 3)
    states0 = _scenes(env, env_params, k_scene, B)
    (loss, aux), grads = jax.value_and_grad(planner.loss, has_aux=True)(
        state.params, states0, jax.random.split(k_ep, B))
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(grads))
    return TrainState(params, opt_state, key, state.updates + 1), metrics

  @jax.jit
  def chunk(state):
    return jax.lax.scan(update, state, None, length=config.updates_per_chunk)

  @jax.jit
  def _eval(params, key):
    k_scene, k_ep = jax.random.split(key)
    states0 = _scenes(env, env_params, k_scene, config.eval_episodes)
    return jax.vmap(lambda s0, k: planner.rollout(params, s0, k))(
        states0, jax.random.split(k_ep, config.eval_episodes))

  def evaluate(params, key) -> dict:
    """Mean (and standard error over episodes) of the task loss, its fuel and final-distance
    terms, imaginations per external action, and the fraction of imaginations from the root."""
    out = _eval(params, key)
    n = config.eval_episodes
    tl = np.asarray(out.task_loss)
    imag = np.asarray(out.trace.imagined)
    root = np.asarray(out.trace.routes) == planner_lib.ROOT
    return {"task_loss": float(tl.mean()), "task_loss_se": float(tl.std() / np.sqrt(n)),
            "fuel": float(np.mean(out.fuel)), "final_distance": float(np.mean(out.final_distance)),
            "imaginations_per_action": float(np.mean(out.trace.imaginations)),
            "root_fraction": float(root.sum() / max(imag.sum(), 1)),
            "episodes": n}

  return Trainer(init, chunk, evaluate, planner, config)


class FittedImagination(NamedTuple):
  model: imagination_lib.Imagination
  params: Any
  imagine: Callable            # imagine(state, thrust) -> Prediction, params closed over
  held_out: dict               # imagination_lib.evaluate on held-out transitions
  final_loss: float


def fit_imagination(env: ss.Spaceship, env_params: ss.SpaceshipParams, key: jax.Array,
                    num_episodes: int = 2048, steps: int = 3000,
                    config: imagination_lib.ImaginationConfig | None = None,
                    held_out_episodes: int = 500) -> FittedImagination:
  """[P] The imagination trained supervised on real transitions (random thrusts, 3-action
  episodes so later actions start moving); the held-out position error beside the baselines."""
  config = config or imagination_lib.ImaginationConfig()
  k_data, k_test, k_init = jax.random.split(key, 3)
  data_params = env_params.replace(num_actions=3)
  data = imagination_lib.collect_transitions(env, data_params, k_data, num_episodes)
  test = imagination_lib.collect_transitions(env, data_params, k_test, held_out_episodes)
  model = imagination_lib.make_imagination(config, env_params,
                                           imagination_lib.measure_scales(data, env_params))
  tc = imagination_lib.TrainConfig(steps_per_chunk=steps, decay_steps=steps)
  trainer = imagination_lib.make_trainer(model, tc)
  state, metrics = trainer.chunk(trainer.init(k_init), data)
  params = state.params
  held = imagination_lib.evaluate(model, params, test)
  return FittedImagination(model, params, lambda s, c: model.predict(params, s, c), held,
                           float(np.asarray(metrics["loss"])[-100:].mean()))
