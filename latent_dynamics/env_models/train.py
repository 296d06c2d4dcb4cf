"""Minibatch training of a state-space environment model by its ELBO (Buesing et al. 2018,
Sec. 2.3, Eq. (4)): `latent_dynamics.supervised`'s trainer (the one `agents` trains its models
with) on the model's stochastic loss.

    trainer = make_trainer(model, TrainConfig(learning_rate=5e-4))
    state = trainer.init(key)                        # TrainState(params, opt_state, key, steps)
    state, metrics = trainer.update(state, batch)    # one Adam step on `Sequences[B]`
    state, metrics = trainer.chunk(state, data)      # metrics [steps_per_chunk]

[O] Each step of `chunk` splits the state's key three ways, `key, k_idx, k_elbo`: a draw of
`batch_size` sequences (uniform with replacement from `data[N]`) and the ELBO's sample key;
Adam behind global-norm clipping (B18 trains with Adam; the rate and clipping here are
CPU-sized choices). `data` is an argument, so one compiled trainer serves every data set of the
same size. [O] `loop="host"` by default: a chunk is a host loop of jitted steps, not one
`lax.scan` (XLA's CPU convolutions inside a `while` loop ran 29x slower per step on the sSSM at
MiniPacman sizes: `latent_dynamics.supervised`'s module doc).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from latent_dynamics import supervised
from latent_dynamics.env_models import models as models_lib
from latent_dynamics.supervised import TrainState

__all__ = ["TrainConfig", "TrainState", "Trainer", "check_config", "make_trainer"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Adam on minibatches of sequences."""
  learning_rate: float = 5e-4     # Adam's constant rate
  batch_size: int = 16            # sequences per step
  steps_per_chunk: int = 100      # steps in one `chunk`
  max_grad_norm: float = 10.0     # global-norm clipping (<= 0: none)
  loop: str = "host"              # "host" (a loop of jitted steps) or "scan" (one lax.scan)

  def replace(self, **kwargs) -> "TrainConfig":
    return dataclasses.replace(self, **kwargs)


class Trainer(NamedTuple):
  """`init(key, params=None)`, `update(state, batch) -> (state, metrics)`, `chunk(state, data[N]) ->
  (state, metrics[steps_per_chunk])`."""
  init: Callable[..., TrainState]
  update: Callable[[TrainState, models_lib.Sequences], tuple[TrainState, dict]]
  chunk: Callable[[TrainState, models_lib.Sequences], tuple[TrainState, dict]]
  model: models_lib.SSMFns
  config: TrainConfig


def _shared_config(config: TrainConfig) -> supervised.TrainConfig:
  return supervised.TrainConfig(learning_rate=config.learning_rate,
                                batch_size=config.batch_size,
                                steps_per_chunk=config.steps_per_chunk,
                                max_grad_norm=config.max_grad_norm, loop=config.loop)


def check_config(config: TrainConfig) -> None:
  """Raises a `ValueError` naming the bad field."""
  supervised.check_config(_shared_config(config))


def make_trainer(model: models_lib.SSMFns, config: TrainConfig = TrainConfig()) -> Trainer:
  """The model's ELBO trainer. Raises a `ValueError` naming a bad config field."""
  shared = supervised.make_trainer(model.loss, jax.jit(model.init), _shared_config(config),
                                   loss_takes_key=True)

  def init(key, params: Any = None) -> TrainState:
    """A fresh state (`model.init`), or one starting from given `params` (fine-tuning)."""
    return shared.init(key, params)

  def chunk(state: TrainState, data: models_lib.Sequences) -> tuple[TrainState, dict]:
    data = models_lib.Sequences(jnp.asarray(data.obs, jnp.float32), jnp.asarray(data.action),
                                jnp.asarray(data.reward, jnp.float32))
    model.check_batch(data, "data")
    return shared.chunk(state, data)

  return Trainer(init, shared.update, chunk, model, config)
