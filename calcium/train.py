"""DeepSpike training (Speiser et al. 2017, Sec. 2.4): unsupervised VIMCO, supervised, combined.

* Unsupervised: the multi-sample bound L = log (1/K) sum_k p(f, s_k; theta_cell) / q(s_k | f)
  (Speiser Eq. (8); Mnih & Rezende 2016), with K spike trains from the recognition network,
  per-cell generative parameters theta_cell and a recognition network shared across cells. The
  gradient is VIMCO's (leave-one-out learning signals), taken from
  `stochastic_graphs.multi_sample.vimco_surrogate` -- the shared core, not a private copy.
* Supervised: cross-entropy -log q(s_true | f) against ground-truth spikes (clipped to one per bin).
* Combined (Speiser et al. 2017, Sec. 2.4): `unsupervised_weight * unsupervised +
  supervised_weight * supervised`, both per frame (`make_losses`); optionally the generative model
  fitted to the labelled spikes (`generative_fit = "labels"`) and a warm start on the labels
  (`pretrain_source = "labels"`) instead of on simulated traces.

Minibatches are snippets of `snippet_frames` frames cut from random cells at random offsets, with
`buffer_frames` extra frames on each side: the network sees the whole window and the spikes of the
buffers feed the calcium of the centre, but only central, non-NaN frames enter the likelihood.
Losses are per frame. Gradients are clipped by global norm; the optimiser is Adam, optionally with
a linear warm-up of both learning rates over the first `bound_ramp_steps` steps after the warm start
(`bound_ramp_schedule`), and with `fixed_generative` parameters kept at their initial values.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from calcium import models as models_lib
from calcium import moments as moments_lib
from calcium import recognition as recognition_lib
from calcium import simulation as simulation_lib
from stochastic_graphs import multi_sample


class Dataset(NamedTuple):
  """Traces of N cells padded to a common length.

  Attributes:
    fluorescence: (N, T, C) normalised traces, NaN frames already filled (network input).
    mask: (N, T) bool, False on NaN and padding frames.
    lengths: (N,) int, frames of each cell.
    spikes: (N, T * U, S) true spike counts, or None (unsupervised only).
  """
  fluorescence: Any
  mask: Any
  lengths: Any
  spikes: Any = None


def make_dataset(traces, spikes=None, valid=None, *, normalise: bool = True) -> Dataset:
  """Pads traces of different lengths into a `Dataset`.

  Args:
    traces: list of (T_i,) or (T_i, C) fluorescence traces (NaN frames allowed).
    spikes: optional list of (T_i * U,) or (T_i * U, S) spike counts.
    valid: optional list of (T_i,) bool masks (default: finite frames).
    normalise: put each trace in units of its noise std around its median (`data.normalise`).
  """
  from calcium import data as data_lib

  if not traces:
    raise ValueError("traces must be a non-empty list.")
  traces = [np.asarray(t, np.float64).reshape(len(t), -1) for t in traces]
  n, t_max, c = len(traces), max(len(t) for t in traces), traces[0].shape[1]
  fluo = np.zeros((n, t_max, c), np.float32)
  mask = np.zeros((n, t_max), bool)
  for i, tr in enumerate(traces):
    if tr.shape[1] != c:
      raise ValueError(f"traces[{i}] has {tr.shape[1]} trace(s) per frame; traces[0] has {c}.")
    if not np.isfinite(tr).any():
      raise ValueError(f"traces[{i}] has no finite frame.")
    ok = np.all(np.isfinite(tr), axis=1) if valid is None else np.asarray(valid[i], bool)
    if ok.shape != (len(tr),):
      raise ValueError(f"valid[{i}] must have shape ({len(tr)},); got {ok.shape}.")
    if (~ok).any():
      logging.info("traces[%d]: %d NaN frames masked out of the likelihood.", i, int((~ok).sum()))
    try:
      cols = [data_lib.normalise(tr[:, j]) if normalise else tr[:, j] for j in range(c)]
    except ValueError as e:
      raise ValueError(f"traces[{i}]: {e}") from e
    fluo[i, :len(tr)] = np.stack([data_lib.fill_nan(col) for col in cols], 1)
    mask[i, :len(tr)] = ok
  lengths = np.array([len(t) for t in traces])
  sp = None
  if spikes is not None:
    spikes = [np.asarray(s, np.float64).reshape(len(s), -1) for s in spikes]
    u = len(spikes[0]) // len(traces[0])
    sp = np.zeros((n, t_max * u, spikes[0].shape[1]), np.float32)
    for i, s in enumerate(spikes):
      if len(s) != len(traces[i]) * u:
        raise ValueError(f"spikes[{i}] has {len(s)} bins; trace {i} needs {len(traces[i]) * u}.")
      sp[i, :len(s)] = s
  return Dataset(fluo, mask, lengths, sp)


class TrainState(NamedTuple):
  recognition_params: Any
  generative_params: Any  # Raw per-cell params, leading axis N.
  opt_state: Any
  key: jax.Array
  step: jax.Array


class Trainer(NamedTuple):
  """`init(key) -> TrainState`; `step(state) -> (state, metrics)`;
  `chunk(state) -> (state, metrics)` runs `config.steps_per_chunk` steps with lax.scan."""
  model: models_lib.GenerativeModel
  recognition: recognition_lib.Recognition
  init: Callable
  step: Callable
  chunk: Callable


def default_config() -> ml_collections.ConfigDict:
  """Training defaults: three conv layers of width 9 (a 25-frame receptive field) and a generative
  learning rate above the network's (Speiser et al.'s notebooks scale it by 30). Their notebooks'
  five layers of widths 31, 21, 21, 13, 11 (93 frames) are one `kernel_size`/`features` away, but
  trained markedly worse in 1000-step runs (README, "Measured results")."""
  c = ml_collections.ConfigDict()
  c.model = "scf"  # Generative model: scf, scf_rise, scdf, mlphys, ds_bap.
  c.frame_rate = 60.0  # Frames per second of the data.
  c.upsample = 1  # Fine spike bins per frame.
  c.drift_terms = 0  # Cosine terms of the slow baseline drift.
  c.recognition = "factorised"  # factorised or autoregressive.
  c.features = (32, 32, 32)  # CNN channels per layer.
  c.kernel_size = (9, 9, 9)  # CNN kernel width per layer (frames); one per entry of features.
  c.hidden = 32  # RNN width (autoregressive).
  c.num_samples = 64  # K of the VIMCO bound.
  c.batch_size = 8  # Snippets per step.
  c.snippet_frames = 200  # Central frames per snippet (in the likelihood).
  c.buffer_frames = 30  # Frames on each side seen by the network, not the likelihood.
  c.learning_rate = 1e-3  # Adam step size of the recognition network.
  c.generative_learning_rate = 1e-2  # Adam step size of the per-cell generative parameters.
  c.train_generative = True  # False: keep the generative parameters at their initial values.
  c.clip_norm = 10.0  # Global gradient-norm clip.
  c.unsupervised_weight = 1.0  # Weight of the VIMCO loss.
  c.supervised_weight = 0.0  # Weight of the cross-entropy loss (needs spikes).
  c.pretrain_steps = 0  # First steps: a supervised warm start (targets: pretrain_source).
  # Where the warm start's targets come from: "simulated" (traces drawn from each cell's current
  # model; the network learns, the model stays) or "labels" (the data's spikes: cross-entropy for
  # the network and, with generative_fit "labels", the labelled log-joint for the model).
  c.pretrain_source = "simulated"
  # What the generative parameters maximise: "bound" (the VIMCO bound with the network's samples)
  # or "labels" (the labelled log-joint log p(f, s_true) per frame; the bound then trains the
  # network only). "labels" needs dataset.spikes.
  c.generative_fit = "bound"
  # Steps after the warm start over which both learning rates rise linearly from lr / ramp to lr
  # (`bound_ramp_schedule`); 0 = none. At the switch the bound's gradient norm is 1e3-1e5 x the
  # warm start's and Adam's moments still hold the warm start's scale, so full steps there can move
  # the network and the per-cell models into a few-spikes, large-noise optimum. On Chen 2013 a
  # 200-step ramp stopped that collapse for two fold-1 seeds but not the bound's later loss of
  # correlation (calcium/README.md, "unsupervised variant, robustness").
  c.bound_ramp_steps = 0
  c.bound_ramp_generative = True  # Ramp the generative learning rate too (False: network only).
  # Generative parameters kept at their initial per-cell values (e.g. ("sigma",): the noise std
  # from frame differences, `initial_generative_params`); the others are learned.
  c.fixed_generative = ()
  c.num_steps = 1000  # Steps of make_train's train(key) (pretraining included).
  c.steps_per_chunk = 100  # Steps per chunk of the launcher's train loop.
  c.init_from_data = True  # Initial tau, alpha, rate, beta per cell from the trace's moments.
  c.init_tau = 1.0  # Initial calcium decay time (s) (fallback where moments fail).
  c.init_alpha = 3.0  # Initial fluorescence per spike, noise std units (fallback).
  c.init_rate = 1.0  # Initial firing rate (Hz) (fallback; scf_rise: the assumed rate).
  c.init_tau_rise = 0.05  # Initial rise time (s) of scf_rise (fallback).
  return c


# Training variants of Speiser et al. 2017, Sec. 2.4 (and one without labels or bound); see
# `variant_config`.
VARIANTS = ("unsupervised", "simulated", "supervised", "combined")


def variant_config(config, variant: str, *, total_steps: int | None = None,
                   combined=None, unsupervised=None) -> ml_collections.ConfigDict:
  """The training config of one variant: `default_config()` updated by `config`, then

  * `unsupervised`: the VIMCO bound only (Speiser Eq. (8)), after `config.pretrain_steps` of warm
    start on traces simulated from each cell's model; `unsupervised` (a mapping, e.g.
    `bound_ramp_steps`, `fixed_generative`) is applied on top.
  * `simulated`: no labels and no bound: all `total_steps` steps (default `config.num_steps`)
    are the warm start, the network learning from traces simulated from each training cell's
    moment-initialised model (which therefore stays as initialised).
  * `supervised`: cross-entropy against the labels only, no warm start (it serves the bound).
  * `combined`: bound plus cross-entropy (Sec. 2.4), both weights 1, then `combined` (a mapping:
    its weights, warm start and generative fit) on top.
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}.")
  as_dict = lambda m: m.to_dict() if hasattr(m, "to_dict") else dict(m)  # noqa: E731
  c = default_config()
  c.update(as_dict(config))
  c.unsupervised_weight = 0.0 if variant == "supervised" else 1.0
  c.supervised_weight = 1.0 if variant in ("supervised", "combined") else 0.0
  if variant == "supervised":
    c.pretrain_steps = 0
  if variant == "combined" and combined is not None:
    c.update(as_dict(combined))
  if variant == "unsupervised" and unsupervised is not None:
    c.update(as_dict(unsupervised))
  if variant == "simulated":
    c.pretrain_steps = c.num_steps if total_steps is None else int(total_steps)
  return c


def build_model(config) -> models_lib.GenerativeModel:
  return models_lib.make_model(config.model, frame_rate=config.frame_rate, upsample=config.upsample,
                               drift_terms=config.drift_terms)


def build_recognition(config, model: models_lib.GenerativeModel) -> recognition_lib.Recognition:
  kernel = config.kernel_size if isinstance(config.kernel_size, int) else tuple(config.kernel_size)
  if not isinstance(kernel, int) and len(kernel) != len(config.features):
    raise ValueError(f"config.kernel_size must give one width per layer of config.features "
                     f"({len(config.features)} layers); got {kernel!r}.")
  common = dict(features=tuple(config.features), kernel_size=kernel,
                upsample=config.upsample, num_spike_channels=model.num_spike_channels,
                num_traces=model.num_traces)
  if config.recognition == "factorised":
    return recognition_lib.make_factorised(**common)
  if config.recognition == "autoregressive":
    return recognition_lib.make_autoregressive(hidden=config.hidden, **common)
  raise ValueError(f"config.recognition must be 'factorised' or 'autoregressive'; got "
                   f"{config.recognition!r}.")


# Ranges accepted from the moment estimates (outside them the config's init_* values are used).
_MOMENT_RANGES = {"tau": (0.05, 5.0), "alpha": (0.3, 50.0), "rate": (0.02, 20.0)}


def _moment_init(trace, frame_rate, config):
  """tau, alpha, rate, beta of one normalised trace from `moments.scf_moments`, with fallbacks."""
  est = moments_lib.scf_moments(trace, frame_rate)._asdict()
  out = {"tau": config.init_tau, "alpha": config.init_alpha, "rate": config.init_rate,
         "beta": float(np.percentile(trace, 20))}
  if config.init_from_data:
    if not np.isfinite(est["alpha"]) and np.isfinite(est["signal_std"]):
      # No usable skew (e.g. a saturating indicator): the jump that gives the signal variance
      # alpha^2 p (1 - p) / (1 - g^2) at the prior rate.
      p = -np.expm1(-config.init_rate / frame_rate)
      est["alpha"] = est["signal_std"] * np.sqrt((1 - est["gamma"] ** 2) / (p * (1 - p)))
    for k, (lo, hi) in _MOMENT_RANGES.items():
      if np.isfinite(est[k]) and lo <= est[k] <= hi:
        out[k] = est[k]
    if np.isfinite(est["beta"]) and out["alpha"] == est["alpha"]:
      out["beta"] = est["beta"]
  return out


_RISE_RANGES = {"tau": (0.05, 5.0), "tau_rise": (0.005, 1.0), "alpha": (0.3, 500.0)}


def _rise_decay_init(trace, frame_rate, config):
  """tau, tau_rise, alpha, beta of one normalised trace for `scf_rise` (`moments.
  rise_decay_moments`): AR(2) kinetics from the autocovariance, the spike size that gives the
  signal variance at the assumed rate `config.init_rate`, the baseline from the 20th percentile."""
  out = {"tau": config.init_tau, "tau_rise": config.init_tau_rise, "alpha": config.init_alpha}
  est = moments_lib.rise_decay_moments(trace, frame_rate)
  if config.init_from_data:
    ok = {k: np.isfinite(v) and _RISE_RANGES[k][0] <= v <= _RISE_RANGES[k][1]
          for k, v in (("tau", est.tau), ("tau_rise", est.tau_rise))}
    if ok["tau"] and ok["tau_rise"] and est.tau_rise < est.tau:
      out.update(tau=est.tau, tau_rise=est.tau_rise)
    kernel = moments_lib.rise_decay_kernel(out["tau"], out["tau_rise"], frame_rate)
    alpha = moments_lib.alpha_at_rate(est.signal_var, kernel, config.init_rate, frame_rate)
    if np.isfinite(alpha) and _RISE_RANGES["alpha"][0] <= alpha <= _RISE_RANGES["alpha"][1]:
      out["alpha"] = alpha
  # Baseline: the 20th percentile (the mean minus the signal mean at the assumed rate lands far
  # below the trace's floor on bursty GCaMP6s traces, whose rate is lower than assumed).
  out["beta"] = float(np.percentile(trace, 20))
  out["rate"] = config.init_rate
  return out


def initial_generative_params(model: models_lib.GenerativeModel, dataset: Dataset, config):
  """Per-cell raw params from each trace's statistics (host side, before any jit).

  With `config.init_from_data`, the decay time, the fluorescence of one spike, the firing rate and
  the baseline come from the trace's moments (`moments.scf_moments`: autocovariance and third
  cumulant), each trace on its own; otherwise, or where an estimate fails or leaves a plausible
  range, from `config.init_tau`, `init_alpha`, `init_rate` and the 20th percentile. The noise std
  comes from frame differences. For SCDF and DS-BAP, alpha is scaled so that one isolated spike
  peaks at the estimated jump; MLphys keeps its defaults apart from sigma and the rate.
  """
  raws = []
  frame_rate = float(config.frame_rate)
  for f, m, length in zip(np.asarray(dataset.fluorescence, np.float64), np.asarray(dataset.mask),
                          np.asarray(dataset.lengths)):
    f = f[:length]  # Drop the padding; NaN frames were filled by interpolation.
    init_fn = _rise_decay_init if model.name == "scf_rise" else _moment_init
    per_trace = [init_fn(f[:, j], frame_rate, config) for j in range(f.shape[1])]
    stat = {k: np.array([d[k] for d in per_trace]) for k in per_trace[0]}
    overrides = {}
    if model.name != "mlphys":
      peak = 1.0
      if model.name not in ("scf", "scf_rise"):  # Binding or two traces: alpha is not the peak.
        shape = (model.num_traces,) if model.num_traces > 1 else ()
        unit = model.init(alpha=np.ones(shape), tau=np.asarray(stat["tau"], float).reshape(shape))
        peak = np.reshape(simulation_lib.single_spike_peak(model, unit), shape or (1,))
      overrides.update(tau=stat["tau"], alpha=stat["alpha"] / peak, beta=stat["beta"])
    if model.name == "scf_rise":
      overrides["tau_rise"] = stat["tau_rise"]
    noise = np.median(np.abs(np.diff(f[m[:length]], axis=0)), axis=0) / (0.6745 * np.sqrt(2))
    overrides["sigma"] = np.maximum(noise, 1e-3)
    rate = stat["rate"] if model.name != "ds_bap" else np.full(2, config.init_rate)
    overrides["rate"] = np.broadcast_to(rate, (model.num_spike_channels,)).copy()
    if model.num_traces == 1:
      overrides = {k: np.reshape(v, ()) if np.size(v) == 1 else v for k, v in overrides.items()}
    raws.append(model.init(**overrides))
  return jax.tree.map(lambda *xs: jnp.stack(xs), *raws)


def bound_ramp_schedule(learning_rate: float, start: int, ramp_steps: int) -> Callable:
  """optax schedule `count -> learning rate`: `learning_rate` before step `start` (the warm start),
  then a linear warm-up (Goyal et al. 2017; Adam: Liu et al. 2020, RAdam, Sec. 3) from
  `learning_rate / ramp_steps` at step `start` to `learning_rate` at step `start + ramp_steps - 1`
  and after. Adam's count equals the trainer's step, so `count` is the step being taken (0-based).
  """
  if ramp_steps <= 0:
    return lambda count: jnp.asarray(learning_rate, jnp.float32)

  def schedule(count):
    frac = jnp.clip((count - start + 1) / ramp_steps, 0.0, 1.0)
    return jnp.where(count < start, 1.0, frac).astype(jnp.float32) * learning_rate

  return schedule


def make_losses(model, recognition, config):
  """Returns `loss(recognition_params, generative_params, snippet, key) -> (loss, metrics)` for one
  snippet: a dict with fluorescence (W, C), mask (W,), spikes (W * U, S) or None, cell, offset.

  Every term is in nats per frame, averaged over the frames it sums over:

    loss = unsupervised_weight * (-bound) / F            (VIMCO surrogate for the gradient)
         + supervised_weight * (-log q(s_true | f)) / W  (cross-entropy over the whole window)
         + [generative_fit == "labels"] * (-log p(f, s_true)) / F

  with F the snippet's central, non-NaN frames (those in the likelihood) and W its window frames
  (those the network labels). The combined objective of Speiser et al. 2017, Sec. 2.4 is the first
  two terms (the bound plus the labels' log-likelihood under q), here with weights per frame.

  With `config.generative_fit = "labels"` (used by the Chen 2013 launcher's combined variant) the
  generative parameters are fitted to the labelled spikes by the exact complete-data objective
  log p(f, s_true) (what the bound becomes when the latent spikes are observed, as in the labelled
  term of Kingma et al. 2014's semi-supervised M2), and the bound's gradient reaches the network
  only. Fitting them by the bound instead, from the network's samples, lets a model that explains
  the labelled spikes badly steer the network: on Chen 2013 (fold 0, after the warm start) the
  VIMCO gradient on the network had norm 1.6e4 against 0.06 for the cross-entropy, so at equal
  weights the labels had practically no effect; the launcher weights the bound by 1e-3 (README,
  "combined").
  """
  k_samples = int(config.num_samples)
  fit = config.generative_fit
  if fit not in ("bound", "labels"):
    raise ValueError(f"config.generative_fit must be 'bound' or 'labels'; got {fit!r}.")

  def unsupervised(rparams, gparams, snip, key):
    _, samples, log_q = recognition.sample(rparams, snip["fluorescence"], key, k_samples)
    samples = jax.lax.stop_gradient(samples)
    log_p = jax.vmap(lambda s: model.log_joint(gparams, s, snip["fluorescence"], snip["mask"],
                                               snip["offset"]))(samples)
    surrogate = multi_sample.vimco_surrogate(log_q, log_p - log_q)
    bound = jax.nn.logsumexp(log_p - log_q) - jnp.log(k_samples)
    return surrogate, bound

  def supervised(rparams, snip):
    target = jnp.minimum(snip["spikes"], 1.0)
    return -recognition.log_prob(rparams, snip["fluorescence"], target)

  def labelled_log_joint(gparams, snip):
    target = jnp.minimum(snip["spikes"], 1.0)
    return model.log_joint(gparams, target, snip["fluorescence"], snip["mask"], snip["offset"])

  def loss(rparams, gparams, snip, key):
    frames = jnp.maximum(jnp.sum(snip["mask"]), 1.0)
    total, metrics = 0.0, {}
    if config.unsupervised_weight:
      g_bound = gparams if fit == "bound" else jax.lax.stop_gradient(gparams)
      surrogate, bound = unsupervised(rparams, g_bound, snip, key)
      total = total + config.unsupervised_weight * surrogate / frames
      metrics["bound_per_frame"] = bound / frames
    if config.supervised_weight:
      ce = supervised(rparams, snip) / snip["fluorescence"].shape[0]
      total = total + config.supervised_weight * ce
      metrics["cross_entropy_per_frame"] = ce
    if fit == "labels":
      joint = labelled_log_joint(gparams, snip) / frames
      total = total - joint
      metrics["labelled_log_joint_per_frame"] = joint
    return total, metrics

  return loss


def make_trainer(config, dataset: Dataset, generative_params=None) -> Trainer:
  """Builds the pure training functions for `dataset` (see module docstring).

  Args:
    config: see `default_config`.
    dataset: the traces (`make_dataset`).
    generative_params: optional raw per-cell generative parameters (leading axis N, the model's
      keys) to start from instead of `initial_generative_params`, e.g. the true parameters of a
      simulation; with `config.train_generative = False` they stay fixed, which separates
      recognition errors from generative-model learning errors.
  """
  model = build_model(config)
  recognition = build_recognition(config, model)
  fluo = jnp.asarray(dataset.fluorescence, jnp.float32)
  mask = jnp.asarray(dataset.mask, bool)
  lengths = jnp.asarray(dataset.lengths, jnp.int32)
  spikes = None if dataset.spikes is None else jnp.asarray(dataset.spikes, jnp.float32)
  if fluo.ndim != 3 or fluo.shape[2] != model.num_traces:
    raise ValueError(f"dataset.fluorescence must have shape (N, T, {model.num_traces}); got "
                     f"{fluo.shape}.")
  if config.supervised_weight and spikes is None:
    raise ValueError("config.supervised_weight > 0 needs dataset.spikes.")
  window = int(config.snippet_frames + 2 * config.buffer_frames)
  if window < recognition.receptive_field:
    raise ValueError(f"snippet_frames + 2 * buffer_frames = {window} is shorter than the "
                     f"network's receptive field ({recognition.receptive_field} frames).")
  if int(np.min(dataset.lengths)) < window:
    raise ValueError(f"every trace needs >= {window} frames (snippet plus buffers); the shortest "
                     f"has {int(np.min(dataset.lengths))}.")
  u = model.upsample
  if generative_params is None:
    gparams0 = initial_generative_params(model, dataset, config)  # Host-side, before any jit.
  else:
    gparams0 = jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(float)), generative_params)
    expected = set(model.init())
    if not isinstance(gparams0, dict) or set(gparams0) != expected:
      raise ValueError(f"generative_params must be a dict with keys {sorted(expected)}; got "
                       f"{sorted(gparams0) if isinstance(gparams0, dict) else type(gparams0)}.")
    bad = [k for k, v in gparams0.items() if v.ndim < 1 or v.shape[0] != fluo.shape[0]]
    if bad:
      raise ValueError(f"generative_params {bad} need a leading axis of {fluo.shape[0]} cells.")
  loss_fn = make_losses(model, recognition, config)
  if config.pretrain_source not in ("simulated", "labels"):
    raise ValueError(f"config.pretrain_source must be 'simulated' or 'labels'; got "
                     f"{config.pretrain_source!r}.")
  labels_warm_start = config.pretrain_source == "labels"
  if (labels_warm_start or config.generative_fit == "labels") and spikes is None:
    raise ValueError("config.pretrain_source = 'labels' and config.generative_fit = 'labels' need "
                     "dataset.spikes.")
  if labels_warm_start:  # The warm start: the same losses without the bound.
    pre_config = ml_collections.ConfigDict(config.to_dict())
    pre_config.unsupervised_weight = 0.0
    pre_config.supervised_weight = config.supervised_weight or 1.0
    pre_loss_fn = make_losses(model, recognition, pre_config)
  ramp = int(config.bound_ramp_steps)
  if ramp < 0:
    raise ValueError(f"config.bound_ramp_steps must be >= 0; got {ramp}.")
  pre = int(config.pretrain_steps)
  generative_update = (
      optax.adam(bound_ramp_schedule(config.generative_learning_rate, pre,
                                     ramp if config.bound_ramp_generative else 0))
      if config.train_generative else optax.set_to_zero())
  # One clip over both parts, then each its own Adam (the per-cell parameters move faster).
  optimiser = optax.chain(
      optax.clip_by_global_norm(config.clip_norm),
      optax.multi_transform({"recognition": optax.adam(
                                 bound_ramp_schedule(config.learning_rate, pre, ramp)),
                             "generative": generative_update},
                            lambda params: ("recognition", "generative")))
  central = (jnp.arange(window) >= config.buffer_frames) & (
      jnp.arange(window) < config.buffer_frames + config.snippet_frames)

  def snippet(cell, start):
    snip = {"fluorescence": jax.lax.dynamic_slice_in_dim(fluo[cell], start, window, 0),
            "mask": jax.lax.dynamic_slice_in_dim(mask[cell], start, window, 0) & central,
            "offset": start, "cell": cell}
    if spikes is not None:
      snip["spikes"] = jax.lax.dynamic_slice_in_dim(spikes[cell], start * u, window * u, 0)
    return snip

  def init(key) -> TrainState:
    k_net, k_state = jax.random.split(key)
    rparams = recognition.init(k_net, fluo[0, :window])
    return TrainState(rparams, gparams0, optimiser.init((rparams, gparams0)), k_state,
                      jnp.zeros((), jnp.int32))

  fixed = tuple(config.fixed_generative)
  if set(fixed) - set(gparams0):
    raise ValueError(f"config.fixed_generative must name parameters of {model.name} "
                     f"({sorted(gparams0)}); got {fixed!r}.")

  def batch_loss(params, key, loss_fn=loss_fn):
    rparams, gparams = params
    gparams = {k: jax.lax.stop_gradient(v) if k in fixed else v for k, v in gparams.items()}
    k_cell, k_start, k_loss = jax.random.split(key, 3)
    cells = jax.random.randint(k_cell, (config.batch_size,), 0, fluo.shape[0])
    starts = jax.random.randint(k_start, (config.batch_size,), 0, lengths[cells] - window + 1)
    snips = jax.vmap(snippet)(cells, starts)

    def one(snip, k):
      g = jax.tree.map(lambda x: x[snip["cell"]], gparams)
      return loss_fn(rparams, g, snip, k)

    losses, metrics = jax.vmap(one)(snips, jax.random.split(k_loss, config.batch_size))
    return jnp.mean(losses), jax.tree.map(jnp.mean, metrics)

  def simulated_loss(params, key):
    """Cross-entropy of the network on snippets simulated from the cells' current generative
    models (Speiser et al. train on data simulated from the model): a warm start that gives the
    VIMCO samples plausible spike trains before the bound takes over. Only the network learns."""
    rparams, gparams = params
    gparams = jax.lax.stop_gradient(gparams)
    k_cell, k_start, k_sim = jax.random.split(key, 3)
    cells = jax.random.randint(k_cell, (config.batch_size,), 0, fluo.shape[0])
    starts = jax.random.randint(k_start, (config.batch_size,), 0, lengths[cells] - window + 1)

    def one(cell, start, k):
      g = jax.tree.map(lambda x: x[cell], gparams)
      sim_spikes, sim_fluo = model.simulate(g, k, window, start)
      return -recognition.log_prob(rparams, sim_fluo, sim_spikes) / window

    ce = jax.vmap(one)(cells, starts, jax.random.split(k_sim, config.batch_size))
    return jnp.mean(ce)

  def apply(state, key, loss_fn_):
    params = (state.recognition_params, state.generative_params)
    (loss, metrics), grads = jax.value_and_grad(loss_fn_, has_aux=True)(params, key)
    updates, opt_state = optimiser.update(grads, state.opt_state, params)
    rparams, gparams = optax.apply_updates(params, updates)
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
    return TrainState(rparams, gparams, opt_state, state.key, state.step + 1), metrics

  def main_step(state, key):
    state, metrics = apply(state, key, batch_loss)
    if config.pretrain_steps and not labels_warm_start:  # Same metrics in both lax.cond branches.
      metrics["simulated_cross_entropy_per_frame"] = jnp.asarray(jnp.nan, metrics["loss"].dtype)
    return state, metrics

  def pretrain_step(state, key, template):
    out = {k: jnp.full(v.shape, jnp.nan, v.dtype) for k, v in template.items()}
    if labels_warm_start:
      state, metrics = apply(state, key, lambda p, k: batch_loss(p, k, pre_loss_fn))
      return state, dict(out, **metrics)
    state, metrics = apply(state, key, lambda p, k: (simulated_loss(p, k), {}))
    return state, dict(out, loss=metrics["loss"], grad_norm=metrics["grad_norm"],
                       simulated_cross_entropy_per_frame=metrics["loss"])

  def step(state: TrainState):
    key, k = jax.random.split(state.key)
    state = state._replace(key=key)
    if not config.pretrain_steps:
      return main_step(state, k)
    template = jax.eval_shape(main_step, state, k)[1]
    return jax.lax.cond(state.step < config.pretrain_steps,
                        lambda s, kk: pretrain_step(s, kk, template), main_step, state, k)

  def chunk(state: TrainState):
    return jax.lax.scan(lambda s, _: step(s), state, None, length=config.steps_per_chunk)

  return Trainer(model, recognition, init, step, chunk)


def make_train(config, dataset: Dataset) -> Callable:
  """`train(key) -> (TrainState, metrics)`: `config.num_steps` steps under one jit with lax.scan.

  The dataset is closed over (a constant of the compiled program); vmap `train` over keys for seeds.
  """
  trainer = make_trainer(config, dataset)

  def train(key):
    state = trainer.init(key)
    return jax.lax.scan(lambda s, _: trainer.step(s), state, None, length=config.num_steps)

  return jax.jit(train)


def infer(recognition: recognition_lib.Recognition, params, fluorescence, key=None,
          num_samples: int = 16, upsample: int = 1):
  """Expected spikes per frame (T, S): marginal spike probabilities summed over a frame's bins.
  A trace shorter than the network's receptive field is refused by name (ValueError)."""
  frames = np.shape(fluorescence)[0] if np.ndim(fluorescence) else 0
  if frames < recognition.receptive_field:
    raise ValueError(f"fluorescence: {frames} frames is shorter than the network's receptive "
                     f"field of {recognition.receptive_field} frames.")
  probs = recognition.probabilities(params, fluorescence, key, num_samples)
  return probs.reshape(-1, upsample, probs.shape[-1]).sum(1)
