"""SGVB training of a state-space model and its recognition model (Archer et al. 2015, Sec. 3).

The ELBO (Archer et al. 2015, Sec. 2; Gao et al. 2016, Sec. 3):
  L(theta, phi) = E_{q_phi(x|y)}[log p_theta(x, y)] + H[q_phi(x|y)],
with the entropy in closed form (block-tridiagonal log-determinant) and the expectation by
`num_samples` reparameterised draws x = mu + L^{-T} eps (Archer et al. 2015, Sec. 3). The
pathwise gradient comes from `stochastic_graphs`: the negative ELBO is written as a stochastic
computation graph with one pathwise node and `stochastic_graphs.make_surrogate` turns it into
the surrogate whose gradient is the estimator (`sgvb_objective`, the one place where the
estimator is chosen).

Minibatches are random trials or random windows of long trials (`window` > 0). Generative
(theta) and recognition (phi) parameters are trained jointly with one optax optimiser.
`make_train(config, data) -> train(key)` runs everything under one jit; `make_trainer` exposes
`init` / `chunk` for the launchers' resumable loop.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import ml_collections
import optax

import stochastic_graphs as sg
from latent_dynamics import models as models_lib
from latent_dynamics import recognition as recognition_lib


class Dataset(NamedTuple):
  """Trials padded to a common length.

  Attributes:
    y: (N, T, p) observations.  mask: (N, T) 1 on valid steps (a prefix).
    inputs: (N, T, m) or None.
  """
  y: jax.Array
  mask: jax.Array
  inputs: jax.Array | None = None


def make_dataset(y, mask=None, inputs=None) -> Dataset:
  """Stacks trials; `y` is an array (N, T, p) or a list of (T_i, p) arrays of varying length."""
  if isinstance(y, (list, tuple)):
    t_max = max(int(a.shape[0]) for a in y)
    mask = jnp.stack([jnp.arange(t_max) < a.shape[0] for a in y]).astype(jnp.float32)
    pad = lambda a: jnp.pad(jnp.asarray(a), [(0, t_max - a.shape[0])] + [(0, 0)] * (a.ndim - 1))  # noqa: E731
    inputs = None if inputs is None else jnp.stack([pad(u) for u in inputs])
    y = jnp.stack([pad(a) for a in y])
  y = jnp.asarray(y)
  if y.ndim != 3:
    raise ValueError(f"y must have shape (N, T, p); got {y.shape}.")
  mask = jnp.ones(y.shape[:2], y.dtype) if mask is None else jnp.asarray(mask, y.dtype)
  return Dataset(y, mask, None if inputs is None else jnp.asarray(inputs, y.dtype))


class TrainState(NamedTuple):
  params: Any   # {"gen": generative params, "rec": recognition params}
  opt_state: Any
  key: jax.Array
  step: jax.Array


class Trainer(NamedTuple):
  """Pure functions of one training setup.

  Attributes:
    model, recognition: the generative and recognition models.
    init: `(key) -> TrainState`.
    step: `(state) -> (state, metrics)`, one SGVB update on a fresh minibatch.
    chunk: `(state) -> (state, metrics)`, `steps_per_chunk` steps in a `lax.scan`.
    elbo: `(params, batch, key) -> (elbo_sum, num_valid_steps)`, the estimate on a batch.
    loss: `(params, batch, key) -> (loss, aux)`, the surrogate per valid step (grad = estimator).
  """
  model: models_lib.StateSpaceModel
  recognition: recognition_lib.Recognition
  init: Callable
  step: Callable
  chunk: Callable
  elbo: Callable
  loss: Callable


def default_config() -> ml_collections.ConfigDict:
  """Training hyperparameters (each field commented)."""
  c = ml_collections.ConfigDict()
  c.model = "lds"  # Generative model: "lds", "plds" or "flds".
  c.latent_dim = 2  # Latent dimension n.
  c.observation = "poisson"  # fLDS observation model ("poisson" | "gaussian").
  c.link = "exp"  # Poisson rate link ("exp" | "softplus").
  c.embedding_hidden = (32, 32)  # fLDS embedding MLP widths.
  c.recognition = "structured"  # "mean_field", "structured" (Archer 2015) or "smoothing" (fLDS).
  c.recognition_hidden = (64,)  # Recognition MLP widths.
  c.amortized = True  # Recognition networks (True) or free per-trial tables (False).
  c.parallel = False  # O(log T)-depth linear algebra in the posterior.
  c.neuron_mask_input = False  # Recognition sees a neuron mask (for leave-one-neuron-out).
  c.neuron_dropout = 0.0  # Probability of hiding each neuron from the recognition net in training.
  c.init_log_scale = -1.0  # Initial posterior log std.
  c.learn_generative = True  # Train theta jointly (False: fit q to a known model).
  c.num_samples = 4  # Reparameterised samples per trial in the ELBO estimate.
  c.batch_size = 8  # Trials (or windows) per minibatch.
  c.window = 0  # Window length for long trials (0: whole trials).
  c.learning_rate = 1e-2  # Adam step size.
  c.schedule = "constant"  # "constant" or "cosine" (decay to 1% over num_steps).
  c.grad_clip = 10.0  # Global gradient-norm clip (0: none).
  c.num_steps = 1000  # Total steps of `make_train`'s train(key).
  c.steps_per_chunk = 100  # Steps per jitted chunk (launchers checkpoint after each).
  return c


def build_models(config, data: Dataset):
  """The generative and recognition models a config describes."""
  p = data.y.shape[-1]
  m = 0 if data.inputs is None else data.inputs.shape[-1]
  model = models_lib.make_model(config.model, config.latent_dim, p, input_dim=m,
                                observation=config.observation, link=config.link,
                                hidden=tuple(config.embedding_hidden))
  rec = recognition_lib.make_recognition(
      config.recognition, model, hidden=tuple(config.recognition_hidden),
      amortized=config.amortized, num_trials=data.y.shape[0], num_steps=data.y.shape[1],
      parallel=config.parallel, init_log_scale=config.init_log_scale,
      neuron_mask_input=config.neuron_mask_input)
  return model, rec


class _IIDSamples(distrax.Distribution):
  """`num` independent draws of `base` as one node (sample shape (num,) + base's shape)."""

  def __init__(self, base, num: int):
    self.base = base
    self.num = int(num)

  @property
  def event_shape(self):
    return (self.num,) + tuple(self.base.batch_shape) + tuple(self.base.event_shape)

  @property
  def dtype(self):
    return self.base.dtype

  def _sample_n(self, key, n):
    return self.base.sample(seed=key, sample_shape=(n, self.num))

  def log_prob(self, value):
    return jnp.sum(self.base.log_prob(value), axis=tuple(range(-1 - len(self.base.batch_shape),
                                                                 0)))


def minibatch(data: Dataset, key: jax.Array, batch_size: int, window: int) -> dict:
  """Random trials (with replacement if batch_size > N), or random windows of them.

  A window starts uniformly within the trial's valid part (so that it holds
  min(window, length) valid steps); returns a batch dict with y, mask, inputs, index.
  """
  k_idx, k_start = jax.random.split(key)
  n_trials, t_len = data.y.shape[:2]
  idx = jax.random.choice(k_idx, n_trials, (batch_size,), replace=batch_size > n_trials)
  batch = {"y": data.y[idx], "mask": data.mask[idx], "index": idx}
  if data.inputs is not None:
    batch["inputs"] = data.inputs[idx]
  if window:
    lengths = jnp.sum(batch["mask"], axis=-1).astype(jnp.int32)
    hi = jnp.maximum(lengths - window, 0) + 1
    starts = jax.random.randint(k_start, (batch_size,), 0, hi)

    def cut(a, s):
      return jax.lax.dynamic_slice_in_dim(a, s, window, axis=0)

    for k in ("y", "mask", "inputs"):
      if k in batch:
        batch[k] = jax.vmap(cut)(batch[k], starts)
  return batch


def make_elbo(model, recognition, num_samples: int):
  """`elbo(params, batch, key) -> (elbo summed over the batch, number of valid steps)`.

  A plain Monte Carlo estimate with reparameterised samples; `sgvb_objective` is the same graph
  made into a `stochastic_graphs` surrogate for gradients.
  """
  graph = _neg_elbo_graph(model, recognition, num_samples)

  def elbo(params, batch, key):
    neg, num_valid = graph(params, batch, key)
    return -neg, num_valid

  return elbo


def _neg_elbo_graph(model, recognition, num_samples: int):
  """The negative ELBO as a stochastic computation graph (one pathwise node "x", two costs)."""
  def graph(params, batch, key):
    q = recognition.posterior(params["rec"], params["gen"], batch)
    x = sg.sample("x", _IIDSamples(q, num_samples), key, estimator="pathwise")  # (S, B, T, n)
    inputs = batch.get("inputs")
    log_joint = jax.vmap(jax.vmap(model.log_joint, in_axes=(None, 0, 0, 0, 0)),
                         in_axes=(None, 0, None, None, None))(
                             params["gen"], x, batch["y"], batch["mask"], inputs)
    neg_lj = sg.cost("neg_log_joint", -jnp.sum(log_joint) / num_samples)
    neg_h = sg.cost("neg_entropy", -jnp.sum(q.entropy()))
    return neg_lj + neg_h, jnp.sum(batch["mask"])

  return graph


def sgvb_objective(model, recognition, num_samples: int):
  """`loss(params, batch, key) -> (neg_elbo_per_step, (elbo_sum, num_valid))` for SGVB.

  The gradient is the pathwise (reparameterisation) estimator of the ELBO's gradient (Archer et
  al. 2015, Sec. 2-3; Weber et al. 2019, Eq. (4)), built by `stochastic_graphs.make_surrogate`. Its
  value equals the Monte Carlo negative ELBO (pathwise nodes add no score terms).
  """
  graph = _neg_elbo_graph(model, recognition, num_samples)
  surrogate = sg.make_surrogate(lambda p, b, k: graph(p, b, k)[0], check_finite=False)

  def loss(params, batch, key):
    value, _ = surrogate(params, batch, key)
    num_valid = jnp.sum(batch["mask"])
    return value / num_valid, (-jax.lax.stop_gradient(value), num_valid)

  return loss


def make_trainer(config, data: Dataset, gen_params=None) -> Trainer:
  """Builds the pure training functions for `config` (see `default_config`) on `data`.

  `gen_params`, if given, replaces the random initial generative parameters (e.g. the true model
  when only the posterior is fitted, `learn_generative=False`).
  """
  if config.num_samples < 1 or config.batch_size < 1:
    raise ValueError(f"num_samples and batch_size must be >= 1; got {config.num_samples}, "
                     f"{config.batch_size}.")
  min_steps = 1 if config.recognition == "mean_field" else 2
  if config.window and config.window < min_steps:
    raise ValueError(f"window={config.window} is too short for the {config.recognition!r} "
                     f"posterior (needs >= {min_steps} steps).")
  if config.window and config.window > data.y.shape[1]:
    raise ValueError(f"window={config.window} is longer than the trials (T={data.y.shape[1]}).")
  model, rec = build_models(config, data)
  model.check_data(data.y, data.mask, data.inputs, min_steps=min_steps)
  if not config.amortized and config.window:
    raise ValueError("windows need an amortized recognition model (amortized=True).")
  loss_fn = sgvb_objective(model, rec, config.num_samples)
  elbo_fn = make_elbo(model, rec, config.num_samples)
  if config.schedule == "cosine":
    lr = optax.cosine_decay_schedule(config.learning_rate, config.num_steps, alpha=0.01)
  elif config.schedule == "constant":
    lr = config.learning_rate
  else:
    raise ValueError(f"schedule must be 'constant' or 'cosine'; got {config.schedule!r}.")
  opt = optax.adam(lr)
  if config.grad_clip:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
  neuron_dropout = float(config.neuron_dropout)
  p = data.y.shape[-1]

  def init(key):
    k_gen, k_rec, k_state = jax.random.split(key, 3)
    batch = {"y": data.y[:1], "mask": data.mask[:1]}
    if data.inputs is not None:
      batch["inputs"] = data.inputs[:1]
    gen = model.init(k_gen) if gen_params is None else gen_params
    params = {"gen": gen, "rec": rec.init(k_rec, batch)}
    return TrainState(params, opt.init(params), k_state, jnp.zeros((), jnp.int32))

  def step(state):
    key, k_batch, k_drop, k_elbo = jax.random.split(state.key, 4)
    batch = minibatch(data, k_batch, config.batch_size, config.window)
    if neuron_dropout > 0:
      batch["neuron_mask"] = (jax.random.uniform(k_drop, (config.batch_size, p))
                              >= neuron_dropout).astype(data.y.dtype)

    def objective(params):
      if not config.learn_generative:
        params = {"gen": jax.lax.stop_gradient(params["gen"]), "rec": params["rec"]}
      return loss_fn(params, batch, k_elbo)

    (loss, (elbo_sum, num_valid)), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"elbo_per_step": elbo_sum / num_valid, "loss": loss,
               "grad_norm": optax.tree.norm(grads)}
    return TrainState(params, opt_state, key, state.step + 1), metrics

  def chunk(state):
    return jax.lax.scan(lambda s, _: step(s), state, None, length=config.steps_per_chunk)

  return Trainer(model, rec, init, step, chunk, elbo_fn, loss_fn)


def make_train(config, data: Dataset, gen_params=None) -> Callable:
  """`train(key) -> (TrainState, metrics)`: `config.num_steps` SGVB steps in one jit.

  Pure and vmappable over keys (`jax.vmap(train)(keys)` trains several seeds at once).
  """
  trainer = make_trainer(config, data, gen_params)

  @jax.jit
  def train(key):
    state = trainer.init(key)
    return jax.lax.scan(lambda s, _: trainer.step(s), state, None, length=config.num_steps)

  return train
