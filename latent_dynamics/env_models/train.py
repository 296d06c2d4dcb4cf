"""Minibatch training of a state-space environment model by its ELBO (Buesing et al. 2018,
Sec. 2.3, Eq. (4)).

Optax style (as `agents.supervised`, which `latent_dynamics` may not import): a frozen config
and a factory returning a NamedTuple of pure functions; the state is a pytree.

    trainer = make_trainer(model, TrainConfig(learning_rate=5e-4))
    state = trainer.init(key)                        # TrainState(params, opt_state, key, steps)
    state, metrics = trainer.update(state, batch)    # one Adam step on `Sequences[B]`
    state, metrics = trainer.chunk(state, data)      # jitted; metrics [steps_per_chunk]

[O] Each step of `chunk` splits the state's key into a draw of `batch_size` sequences (uniform
with replacement from `data[N]`) and the ELBO's sample key; Adam behind global-norm clipping
(B18 trains with Adam; the rate and clipping here are CPU-sized choices). `data` is an argument,
so one compiled trainer serves every data set of the same size.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latent_dynamics.env_models import models as models_lib


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Adam on minibatches of sequences."""
  learning_rate: float = 5e-4     # Adam's constant rate
  batch_size: int = 16            # sequences per step
  steps_per_chunk: int = 100      # steps in one jitted `chunk` (one lax.scan)
  max_grad_norm: float = 10.0     # global-norm clipping (<= 0: none)

  def replace(self, **kwargs) -> "TrainConfig":
    return dataclasses.replace(self, **kwargs)


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array
  steps: jax.Array   # int32, gradient steps done


class Trainer(NamedTuple):
  """`init(key, params=None)`, `update(state, batch) -> (state, metrics)`, `chunk(state, data[N]) ->
  (state, metrics[steps_per_chunk])` (jitted)."""
  init: Callable[..., TrainState]
  update: Callable[[TrainState, models_lib.Sequences], tuple[TrainState, dict]]
  chunk: Callable[[TrainState, models_lib.Sequences], tuple[TrainState, dict]]
  model: models_lib.SSMFns
  config: TrainConfig


def check_config(config: TrainConfig) -> None:
  """Raises a `ValueError` naming the bad field."""
  for name in ("batch_size", "steps_per_chunk"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")
  if not config.learning_rate > 0:
    raise ValueError(f"config.learning_rate must be positive; got {config.learning_rate!r}.")


def make_trainer(model: models_lib.SSMFns, config: TrainConfig = TrainConfig()) -> Trainer:
  """The model's ELBO trainer. Raises a `ValueError` naming a bad config field."""
  check_config(config)
  opt = optax.adam(config.learning_rate)
  if config.max_grad_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)

  @jax.jit
  def _init(key):
    k_init, k_state = jax.random.split(key)
    params = model.init(k_init)
    return TrainState(params, opt.init(params), k_state, jnp.zeros((), jnp.int32))

  def init(key: jax.Array, params: Any = None) -> TrainState:
    """A fresh state (`model.init`), or one starting from given `params` (fine-tuning)."""
    if params is None:
      return _init(key)
    return TrainState(params, opt.init(params), key, jnp.zeros((), jnp.int32))

  def _step(state: TrainState, batch, key) -> tuple[TrainState, dict]:
    (value, info), grads = jax.value_and_grad(model.loss, has_aux=True)(state.params, batch,
                                                                        key)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": value, "grad_norm": optax.tree.norm(grads), **info._asdict()}
    return state._replace(params=params, opt_state=opt_state, steps=state.steps + 1), metrics

  def update(state: TrainState, batch: models_lib.Sequences) -> tuple[TrainState, dict]:
    key, k = jax.random.split(state.key)
    return _step(state._replace(key=key), batch, k)

  @jax.jit
  def _chunk(state, data):
    n = data.action.shape[0]

    def body(state, _):
      key, k_idx, k_elbo = jax.random.split(state.key, 3)
      idx = jax.random.randint(k_idx, (config.batch_size,), 0, n)
      batch = jax.tree.map(lambda x: x[idx], data)
      return _step(state._replace(key=key), batch, k_elbo)

    return jax.lax.scan(body, state, None, length=config.steps_per_chunk)

  def chunk(state: TrainState, data: models_lib.Sequences) -> tuple[TrainState, dict]:
    data = models_lib.Sequences(jnp.asarray(data.obs, jnp.float32), jnp.asarray(data.action),
                                jnp.asarray(data.reward, jnp.float32))
    model.check_batch(data, "data")
    return _chunk(state, data)

  return Trainer(init, update, chunk, model, config)
