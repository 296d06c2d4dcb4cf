"""One supervised minibatch trainer for learned models: the state-space environment models of
`latent_dynamics.env_models` (`env_models.train`, a key per step for the ELBO's samples) and,
through `agents.supervised` (which re-exports this module: `agents` imports `latent_dynamics`,
never the reverse), I2A's environment model, IBP's interaction network and CF-GPS's scenario
model.

Optax style: a frozen config dataclass and a factory that closes over it and returns a NamedTuple
of pure functions; the state is a pytree.

    trainer = make_trainer(loss_fn, init_params_fn, TrainConfig(learning_rate=1e-3))
    state = trainer.init(key)                          # TrainState(params, opt_state, key, steps)
    state, metrics = trainer.update(state, batch)      # one Adam step on one minibatch
    state, metrics = trainer.chunk(state, data)        # jitted; metrics [steps_per_chunk]

- `loss_fn(params, batch) -> (loss, aux)`, `aux` a dict or a NamedTuple of scalars (its fields
  become metrics beside `loss` and `grad_norm`, the global norm of the unclipped gradient);
  with `make_trainer(..., loss_takes_key=True)`, `loss_fn(params, batch, key)` (a stochastic
  loss: `update` splits the state's key, `key, k = split(key)`, and passes `k`).
- `init_params_fn(key) -> params`; `init(key, params)` starts from given params instead.
- Optimiser: Adam with the learning rate `schedule` ("constant", or "cosine": optax's cosine
  decay from `learning_rate` to `final_learning_rate` over `decay_steps` steps, then constant),
  behind global-norm clipping of the gradient when `max_grad_norm > 0`.
- `chunk(state, data)`: `data` a pytree whose leaves share a leading axis `[N]`; each of
  `steps_per_chunk` steps (one `lax.scan`) splits the state's key, `key, k = split(key)`, and draws
  `batch_size` indices uniformly with replacement, `randint(k, (batch_size,), 0, N)`. The data is
  an argument rather than a constant baked into the compiled function, so one compiled trainer
  serves every data set of the same size. With `loss_takes_key`, each step splits three ways,
  `key, k_idx, k_loss = split(key, 3)` (draw, then the loss's key).
- `config.loop`: "scan" (default) runs the chunk's steps as one `lax.scan`; "host" runs them as
  a Python loop of one jitted step each: the same draws, keys and updates (equal to float32
  rounding: the two compilations may fuse differently), metrics stacked the same way. [O] On
  XLA's CPU backend convolutions inside a `while` loop run far slower than the same
  convolutions in a straight-line program (measured on the sSSM's ELBO at MiniPacman sizes,
  batch 16 windows of 5 steps, load 4-7 on 2 cores: 11.2 s per step in a scanned chunk, 0.39 s
  per step in a host loop), while one dispatch per step costs well under a millisecond. It is
  not general: I2A's MiniPacman RAR trains 2.8x faster scanned (1.22 against 0.43 steps/s,
  load 5-7). Measure per model.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

SCHEDULES = ("constant", "cosine")
LOOPS = ("scan", "host")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Adam on minibatches drawn uniformly with replacement."""
  learning_rate: float = 1e-3
  batch_size: int = 64
  steps_per_chunk: int = 500
  max_grad_norm: float = 0.0          # global-norm clipping of the gradient (<= 0: none)
  schedule: str = "constant"          # "constant" or "cosine" (to final_learning_rate)
  final_learning_rate: float = 1e-4   # "cosine" only: the rate from decay_steps on
  decay_steps: int = 3000             # "cosine" only
  loop: str = "scan"                  # a chunk's steps: one lax.scan, or a host loop of jits

  def replace(self, **kwargs) -> "TrainConfig":
    return dataclasses.replace(self, **kwargs)


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array
  steps: jax.Array   # int32, gradient steps done


class Trainer(NamedTuple):
  """`init(key, params=None) -> TrainState`; `update(state, batch) -> (state, metrics)`;
  `chunk(state, data[N]) -> (state, metrics[steps_per_chunk])` (jitted);
  `schedule(step) -> learning rate`."""
  init: Callable[..., TrainState]
  update: Callable[[TrainState, Any], tuple[TrainState, dict]]
  chunk: Callable[[TrainState, Any], tuple[TrainState, dict]]
  schedule: Callable[[Any], Any]


def _positive_int(config, name: str) -> None:
  value = getattr(config, name)
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")


def check_config(config: TrainConfig) -> None:
  """Raises a `ValueError` naming the bad field of `config`."""
  _positive_int(config, "batch_size")
  _positive_int(config, "steps_per_chunk")
  if not config.learning_rate > 0:
    raise ValueError(f"config.learning_rate must be positive; got {config.learning_rate!r}.")
  if config.loop not in LOOPS:
    raise ValueError(f"config.loop must be one of {LOOPS}; got {config.loop!r}.")
  if config.schedule not in SCHEDULES:
    raise ValueError(f"config.schedule must be one of {SCHEDULES}; got {config.schedule!r}.")
  if config.schedule == "cosine":
    _positive_int(config, "decay_steps")
    if not config.final_learning_rate >= 0:
      raise ValueError(f"config.final_learning_rate must be >= 0; got "
                       f"{config.final_learning_rate!r}.")


def make_schedule(config: TrainConfig) -> Callable[[Any], Any]:
  """`step -> learning rate`. "cosine": `lr_T + (lr_0 - lr_T) (1 + cos(pi min(t, T) / T)) / 2`
  with `lr_0 = learning_rate`, `lr_T = final_learning_rate`, `T = decay_steps`."""
  check_config(config)
  if config.schedule == "constant":
    return optax.constant_schedule(config.learning_rate)
  return optax.cosine_decay_schedule(config.learning_rate, config.decay_steps,
                                     config.final_learning_rate / config.learning_rate)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """Adam at the config's schedule, behind global-norm clipping when `max_grad_norm > 0`.

  A constant rate is given to Adam as a number (not a schedule) and clipping is left out of the
  chain when off, so the optimiser state is as small as the setting allows.
  """
  check_config(config)
  rate = (config.learning_rate if config.schedule == "constant" else make_schedule(config))
  opt = optax.adam(rate)
  if config.max_grad_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
  return opt


def _leading_size(data) -> int:
  leaves = jax.tree.leaves(data)
  if not leaves:
    raise ValueError("data must hold at least one array with a leading axis [N].")
  sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
  if len(sizes) != 1 or None in sizes or 0 in sizes:
    raise ValueError(f"data's arrays must share a non-empty leading axis [N]; got leading sizes "
                     f"{sorted(str(s) for s in sizes)}.")
  return sizes.pop()


def make_trainer(loss_fn: Callable[..., tuple[jax.Array, Any]],
                 init_params_fn: Callable[[jax.Array], Any],
                 config: TrainConfig = TrainConfig(), *, loss_takes_key: bool = False
                 ) -> Trainer:
  """The supervised trainer of `loss_fn` (module doc). Raises a `ValueError` naming a bad
  config field."""
  check_config(config)
  opt = make_optimizer(config)
  schedule = make_schedule(config)

  def init(key: jax.Array, params: Any = None) -> TrainState:
    """A fresh state (`init_params_fn`), or one starting from given `params` (fine-tuning)."""
    k_net, key = jax.random.split(key)
    if params is None:
      params = init_params_fn(k_net)
    return TrainState(params, opt.init(params), key, jnp.int32(0))

  def _step(state: TrainState, batch, loss_key) -> tuple[TrainState, dict]:
    args = (state.params, batch) + ((loss_key,) if loss_takes_key else ())
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(*args)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    aux = aux._asdict() if hasattr(aux, "_asdict") else dict(aux)
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(grads))
    return TrainState(params, opt_state, state.key, state.steps + 1), metrics

  def update(state: TrainState, batch) -> tuple[TrainState, dict]:
    if not loss_takes_key:
      return _step(state, batch, None)
    key, k = jax.random.split(state.key)
    return _step(state._replace(key=key), batch, k)

  def _draw_step(s: TrainState, data, n: int) -> tuple[TrainState, dict]:
    if loss_takes_key:
      key, k, k_loss = jax.random.split(s.key, 3)
    else:
      (key, k), k_loss = jax.random.split(s.key), None
    idx = jax.random.randint(k, (config.batch_size,), 0, n)
    return _step(s._replace(key=key), jax.tree.map(lambda x: x[idx], data), k_loss)

  @jax.jit
  def _chunk(state: TrainState, data):
    n = _leading_size(data)
    return jax.lax.scan(lambda s, _: _draw_step(s, data, n), state, None,
                        length=config.steps_per_chunk)

  @jax.jit
  def _one(state: TrainState, data):
    return _draw_step(state, data, _leading_size(data))

  def chunk(state: TrainState, data) -> tuple[TrainState, dict]:
    _leading_size(data)
    if config.loop == "scan":
      return _chunk(state, data)
    if isinstance(state.steps, jax.core.Tracer):
      # Traced (under jit, vmap or scan), the host loop would inline every step into one
      # program: a 200-step SSM chunk under `launch.train_loop`'s jit reached 24 GB.
      raise ValueError("a loop='host' chunk cannot run traced (under jit/vmap/scan): call it "
                       "directly, e.g. launch's train_loop(..., jit_chunk=False), or use "
                       "loop='scan'.")
    metrics = []
    for _ in range(config.steps_per_chunk):
      state, m = _one(state, data)
      metrics.append(m)
    return state, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)

  return Trainer(init, update, chunk, schedule)
