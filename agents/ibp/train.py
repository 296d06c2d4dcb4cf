"""Training and evaluation of IBP's planner (Pascanu et al. 2017, Sec. 2, "Training").

[P] Three subgraphs, each on its own objective, trained together: the imagination supervised on
real transitions; the manager by REINFORCE with an entropy bonus and a learned baseline;
controller and memory by SVG through the learned model. With a planner built on a trainable
model (`make_planner(..., model=...)`) one update trains all three: `Planner.loss` is the
surrogate (manager, controller, memory; the model's params stopped inside it) plus the model's
supervised loss on the real transitions of the update's own episodes, so each subgraph's
gradient is its own objective's (see `planner.py`, tested).

[O] Our choices, for CPU budgets:
- `fit_imagination` pre-fits the model on transitions under random thrusts: a short warm start
  of the joint training (so the first SVG gradients go through a model that already knows
  ballistic motion bent by gravity, not through a random network), or, with a planner built on
  `imagine=fit.imagine`, the whole of the model's training, frozen afterwards (the earlier
  setting, kept for comparison; `imagination_training = "frozen"` in the launchers' configs).
- The planner's subgraphs share one Adam (their gradients are disjoint, so one optimiser is
  several) with global-norm clipping; the model has its own Adam (`model_learning_rate`) and its
  own clipping, so its gradient's size never rescales the planner's step (optax
  `multi_transform` on the `"imagination"` subtree). A fresh batch of scenes per update
  (`reset` inside the jitted `lax.scan` of a chunk).

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
  model_learning_rate: float = 1e-3  # [O] Adam of a trainable imagination (its own optimiser)

  def replace(self, **kwargs) -> "TrainConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: TrainConfig) -> None:
  for name in ("batch_size", "updates_per_chunk", "eval_episodes"):
    value = getattr(config, name)
    if isinstance(value, bool) or int(value) != value or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}")
  for name in ("learning_rate", "model_learning_rate"):
    if not getattr(config, name) > 0:
      raise ValueError(f"config.{name} must be > 0; got {getattr(config, name)!r}")


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
  if planner.model is not None:   # [O] the model's own Adam and clipping (module docstring)
    labels = lambda params: {k: jax.tree.map(lambda _, k=k: "model" if k == "imagination"
                                             else "planner", v) for k, v in params.items()}
    opt = optax.multi_transform(
        {"planner": opt, "model": optax.chain(*clip, optax.adam(config.model_learning_rate))},
        labels)
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
    planner_grads = {k: v for k, v in grads.items() if k != "imagination"}
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(planner_grads))
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
    terms, imaginations per external action, and the fraction of imaginations from the root.
    With a trainable model, also `imagination_position_error`: its held-out error on the real
    transitions of these episodes (`imagination.evaluate`'s position error: mean |x_pred - x'|
    over the mean displacement)."""
    out = _eval(params, key)
    n = config.eval_episodes
    tl = np.asarray(out.task_loss)
    imag = np.asarray(out.trace.imagined)
    root = np.asarray(out.trace.routes) == planner_lib.ROOT
    res = {"task_loss": float(tl.mean()), "task_loss_se": float(tl.std() / np.sqrt(n)),
           "fuel": float(np.mean(out.fuel)), "final_distance": float(np.mean(out.final_distance)),
           "imaginations_per_action": float(np.mean(out.trace.imaginations)),
           "root_fraction": float(root.sum() / max(imag.sum(), 1)),
           "episodes": n}
    if planner.model is not None:
      trs = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out.transitions)
      res["imagination_position_error"] = model_position_error(
          planner.model, params["imagination"], trs)
    return res

  return Trainer(init, chunk, evaluate, planner, config)


def model_position_error(model: imagination_lib.Imagination, params, data) -> float:
  """Mean |x_pred - x'| / mean |x' - x| of `model` on transitions `data` `[N]` (the position
  error of `imagination.evaluate`, without its baselines)."""
  pred = jax.jit(jax.vmap(lambda tr: model.predict(params, tr, tr.thrust).ship))(data)
  disp = jnp.mean(jnp.linalg.norm(data.next_ship - data.ship, axis=-1))
  return float(jnp.mean(jnp.linalg.norm(pred - data.next_ship, axis=-1)) / disp)


class FittedImagination(NamedTuple):
  model: imagination_lib.Imagination
  params: Any
  imagine: Callable            # imagine(state, thrust) -> Prediction, params closed over
  held_out: dict               # imagination_lib.evaluate on held-out transitions
  final_loss: float            # mean training loss of the last 100 steps (nan if steps = 0)
  test: Any = None             # the held-out transitions [N] (random thrusts)


def fit_imagination(env: ss.Spaceship, env_params: ss.SpaceshipParams, key: jax.Array,
                    num_episodes: int = 2048, steps: int = 3000,
                    config: imagination_lib.ImaginationConfig | None = None,
                    held_out_episodes: int = 500) -> FittedImagination:
  """[P] The imagination trained supervised on real transitions (random thrusts, 3-action
  episodes so later actions start moving); the held-out position error beside the baselines.

  `steps = 0`: no training, the model's random init (its scales are still measured on the
  data): the start of a joint training without a warm start."""
  if isinstance(steps, bool) or int(steps) != steps or steps < 0:
    raise ValueError(f"steps must be an integer >= 0; got {steps!r}")
  config = config or imagination_lib.ImaginationConfig()
  k_data, k_test, k_init = jax.random.split(key, 3)
  data_params = env_params.replace(num_actions=3)
  data = imagination_lib.collect_transitions(env, data_params, k_data, num_episodes)
  test = imagination_lib.collect_transitions(env, data_params, k_test, held_out_episodes)
  model = imagination_lib.make_imagination(config, env_params,
                                           imagination_lib.measure_scales(data, env_params))
  if steps == 0:
    params, final_loss = model.init(k_init), float("nan")
  else:
    tc = imagination_lib.TrainConfig(steps_per_chunk=int(steps), decay_steps=int(steps))
    trainer = imagination_lib.make_trainer(model, tc)
    state, metrics = trainer.chunk(trainer.init(k_init), data)
    params = state.params
    final_loss = float(np.asarray(metrics["loss"])[-100:].mean())
  held = imagination_lib.evaluate(model, params, test)
  return FittedImagination(model, params, lambda s, c: model.predict(params, s, c), held,
                           final_loss, test)
