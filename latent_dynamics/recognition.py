"""Recognition models: networks (or free per-trial tables) that output a posterior's parameters.

`make_recognition(kind, model, ...)` returns a `Recognition` of pure functions:
  * "mean_field": per-step MLP y_t -> (mu_t, log s_t); `posteriors.mean_field`.
  * "structured": per-step MLP y_t -> (mu_t, R_tt) and pair MLP (y_t, y_{t+1}) -> R_{t+1,t}
    (Archer et al. 2015, Sec. 3); `posteriors.structured`.
  * "smoothing": per-step MLP y_t -> (M_t, eta_t), combined with the generative LDS prior
    (Gao et al. 2016, Sec. 3); `posteriors.smoothing`.

With `amortized=False` the per-step outputs are free parameters of each trial (a table indexed by
`batch["index"]`), which is how one fits "the" posterior of a single data set (Archer et al. 2015,
Sec. 4) rather than an inference network.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from latent_dynamics import posteriors
from latent_dynamics.models import StateSpaceModel

KINDS = ("mean_field", "structured", "smoothing")


class StepMLP(nn.Module):
  """An MLP applied to every time step independently (features on the last axis)."""
  features: Sequence[int]
  out: int
  zero_init_output: bool = False

  @nn.compact
  def __call__(self, x):
    for f in self.features:
      x = jnp.tanh(nn.Dense(f)(x))
    init = nn.initializers.zeros if self.zero_init_output else nn.initializers.lecun_normal()
    return nn.Dense(self.out, kernel_init=init)(x)


class Recognition(NamedTuple):
  """Attributes:
    kind: static.
    init: `(key, batch) -> params`.
    posterior: `(params, gen_params, batch) -> BlockTridiagGaussian` with batch shape (B,).
    raw_outputs: `(params, batch) -> dict` of the per-step arrays before the posterior is built.
  """
  kind: str
  init: Callable
  posterior: Callable
  raw_outputs: Callable


def _features(model: StateSpaceModel, batch, neuron_mask_input: bool) -> jax.Array:
  y = batch["y"]
  # Counts span orders of magnitude; log1p keeps the first layer in its linear range.
  f = jnp.log1p(y) if model.observation == "poisson" else y
  if neuron_mask_input:
    # Which neurons the network may see (leave-one-neuron-out): hidden ones read as 0 and the
    # mask itself is an input, so "silent" and "unobserved" differ.
    nm = batch.get("neuron_mask")
    nm = jnp.ones(y.shape[-1:], y.dtype) if nm is None else nm.astype(y.dtype)
    nm = jnp.broadcast_to(nm[..., None, :] if nm.ndim == y.ndim - 1 else nm, y.shape)
    f = jnp.concatenate([f * nm, nm], axis=-1)
  if batch.get("inputs") is not None:
    f = jnp.concatenate([f, batch["inputs"]], axis=-1)
  return f


def make_recognition(kind: str, model: StateSpaceModel, *, hidden: Sequence[int] = (64,),
                     amortized: bool = True, num_trials: int | None = None,
                     num_steps: int | None = None, parallel: bool = False,
                     init_log_scale: float = 0.0,
                     neuron_mask_input: bool = False) -> Recognition:
  """Builds a recognition model.

  Args:
    kind: "mean_field", "structured" or "smoothing".
    model: the generative model (its latent_dim and, for "smoothing", its prior).
    hidden: hidden widths of the networks (amortized only).
    amortized: networks of y (True) or free per-trial tables (False; needs num_trials, num_steps).
    parallel: build posteriors on the O(log T)-depth linear algebra.
    init_log_scale: initial posterior log std (mean-field / structured; larger = broader).
    neuron_mask_input: feed `batch["neuron_mask"]` ((p,) or (B, p), 1 = observed) to the
      networks, hiding masked neurons (for leave-one-neuron-out prediction).

  Returns:
    A `Recognition`.
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
  if not amortized and (not num_trials or not num_steps):
    raise ValueError("amortized=False needs num_trials and num_steps (the table's size).")
  n = model.latent_dim
  nn2 = n * n
  diag_offset = jnp.log(jnp.expm1(jnp.exp(-init_log_scale)))  # softplus^{-1}(1 / s0)
  if kind == "mean_field":
    sizes = {"mean": n, "scale": n}
  elif kind == "structured":
    sizes = {"mean": n, "diag": nn2}
  else:
    sizes = {"factor": nn2, "eta": n}
  width = sum(sizes.values())

  def split(out):
    parts, i = {}, 0
    for k, s in sizes.items():
      parts[k] = out[..., i:i + s]
      i += s
    return parts

  step_net = StepMLP(tuple(hidden), width)
  pair_net = StepMLP(tuple(hidden), nn2, zero_init_output=True)

  def init(key, batch):
    k1, k2 = jax.random.split(key)
    if not amortized:
      p = {"step": jnp.zeros((num_trials, num_steps, width))}
      if kind == "structured":
        p["pair"] = jnp.zeros((num_trials, num_steps - 1, nn2))
      return p
    f = _features(model, batch, neuron_mask_input)
    p = {"step": step_net.init(k1, f[..., :1, :])}
    if kind == "structured":
      p["pair"] = pair_net.init(k2, jnp.concatenate([f[..., :1, :], f[..., :1, :]], -1))
    return p

  def raw_outputs(params, batch):
    if amortized:
      f = _features(model, batch, neuron_mask_input)
      out = split(step_net.apply(params["step"], f))
      if kind == "structured":
        pair = jnp.concatenate([f[..., :-1, :], f[..., 1:, :]], axis=-1)
        out["pair"] = pair_net.apply(params["pair"], pair)
    else:
      if "index" not in batch:
        raise ValueError("a non-amortized recognition model needs batch['index'] (trial ids).")
      t = batch["y"].shape[-2]
      if t != num_steps:
        raise ValueError(f"a non-amortized recognition model covers whole trials of "
                         f"{num_steps} steps; got windows of {t}.")
      out = split(params["step"][batch["index"]])
      if kind == "structured":
        out["pair"] = params["pair"][batch["index"]]
    return out

  def posterior(params, gen_params, batch):
    out = raw_outputs(params, batch)
    mask = batch.get("mask")
    shape = out[next(iter(sizes))].shape[:-1]
    if kind == "mean_field":
      return posteriors.mean_field(out["mean"], out["scale"] + init_log_scale, mask, parallel)
    if kind == "structured":
      diag = out["diag"].reshape(shape + (n, n)) + diag_offset * jnp.eye(n)
      lower = out["pair"].reshape(shape[:-1] + (shape[-1] - 1, n, n))
      return posteriors.structured(out["mean"], diag, lower, mask, parallel)
    inputs = batch.get("inputs")
    prior = jax.vmap(lambda m, u: model.prior_precision(gen_params, shape[-1], m, u))
    mask_b = jnp.ones(shape) if mask is None else mask
    pd, pl, ph = prior(mask_b, inputs)
    return posteriors.smoothing(pd, pl, ph, out["factor"].reshape(shape + (n, n)), out["eta"],
                                mask, parallel)

  return Recognition(kind, init, posterior, raw_outputs)
