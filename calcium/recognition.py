"""Recognition networks q(s | f) over binary spike trains (Speiser et al. 2017, Sec. 2.3).

Two architectures, both flax.linen modules that only describe the network, wrapped in a
`Recognition` NamedTuple of pure functions:

* Factorised (Speiser Eq. (5)): q(s | f) = prod_t Bernoulli(s_t; sigmoid(l_t(f))), with the logits
  l from a 1-D CNN over the fluorescence.
* Autoregressive (Speiser Eq. (6) and Fig. 1): CNN features, a backward RNN over them (so each bin
  sees the future of the trace), and a forward RNN fed the previous sample, giving
  q(s | f) = prod_t Bernoulli(s_t; sigmoid(l_t(f, s_{<t}))) -- a non-factorised posterior.

The networks compute in float32 whatever the input dtype. Shapes: fluorescence (T, C) for one
trace; spikes (T * upsample, S). `sample` returns the per-bin
spike probabilities used to draw each sample (for the factorised net the same for every sample),
the samples (K, T * upsample, S) and log q (K,). Inference is one forward pass of the network.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp


def kernel_sizes(features: Sequence[int], kernel_size) -> tuple[int, ...]:
  """Per-layer kernel widths: one int for every layer, or one width per layer."""
  sizes = ((kernel_size,) * len(features) if isinstance(kernel_size, int)
           else tuple(int(k) for k in kernel_size))
  if len(sizes) != len(features) or any(k < 1 for k in sizes):
    raise ValueError(f"kernel_size must be a positive int or one positive width per layer "
                     f"({len(features)} layers); got {kernel_size!r}.")
  return sizes


def receptive_field(features: Sequence[int], kernel_size) -> int:
  """Frames of the input that one output frame of the CNN sees: 1 + sum(k - 1)."""
  return 1 + sum(k - 1 for k in kernel_sizes(features, kernel_size))


class ConvFeatures(nn.Module):
  """Stack of 'same'-padded 1-D convolutions with ELU; (T, C) -> (T, features[-1]).

  `kernel_size` is one width for all layers or a tuple of widths, one per layer (long first
  kernels give the long receptive field that slow indicators need: Speiser et al. used widths
  31, 21, 21, 13, 11, i.e. 93 frames at 60 Hz).
  """
  features: Sequence[int] = (32, 32, 32)
  kernel_size: int | Sequence[int] = 9

  @nn.compact
  def __call__(self, x):
    for width, k in zip(self.features, kernel_sizes(self.features, self.kernel_size)):
      x = nn.elu(nn.Conv(width, (k,), padding="SAME")(x))
    return x


class FactorisedCNN(nn.Module):
  """CNN giving one Bernoulli logit per fine bin and spike channel: (T, C) -> (T * U, S)."""
  features: Sequence[int] = (32, 32, 32)
  kernel_size: int | Sequence[int] = 9
  upsample: int = 1
  num_spike_channels: int = 1

  @nn.compact
  def __call__(self, fluorescence):
    h = ConvFeatures(self.features, self.kernel_size)(fluorescence)
    logits = nn.Dense(self.upsample * self.num_spike_channels)(h)
    return logits.reshape(-1, self.num_spike_channels)


class AutoregressiveRNN(nn.Module):
  """CNN features, backward GRU, forward GRU fed the previous sample (Speiser Fig. 1)."""
  features: Sequence[int] = (32, 32, 32)
  kernel_size: int | Sequence[int] = 9
  hidden: int = 32
  upsample: int = 1
  num_spike_channels: int = 1

  def setup(self):
    self.conv = ConvFeatures(self.features, self.kernel_size)
    self.to_fine = nn.Dense(self.upsample * self.hidden)
    self.backward_rnn = nn.RNN(nn.GRUCell(self.hidden), reverse=True, keep_order=True)
    self.forward_cell = nn.GRUCell(self.hidden)
    self.head_hidden = nn.Dense(self.hidden)
    self.head = nn.Dense(self.num_spike_channels)

  def encode(self, fluorescence):
    """(T, C) -> backward-RNN states (T * U, hidden): summaries of the present and future."""
    h = self.conv(fluorescence)
    h = self.to_fine(h).reshape(-1, self.hidden)
    return self.backward_rnn(h)

  def step(self, carry, context, previous):
    """One forward step: state, backward context (hidden,), previous sample (S,) -> logits (S,)."""
    carry, out = self.forward_cell(carry, jnp.concatenate([context, previous], -1))
    logits = self.head(nn.elu(self.head_hidden(jnp.concatenate([out, context], -1))))
    return carry, logits

  def initial_carry(self):
    return jnp.zeros((self.hidden,))

  def __call__(self, fluorescence, spikes):
    """Teacher-forced logits (T * U, S) of `spikes` given the trace (used only by `init`)."""
    context = self.encode(fluorescence)
    return self.step(self.initial_carry(), context[0], jnp.zeros_like(spikes[0]))[1]


class Recognition(NamedTuple):
  """Pure functions around a recognition network.

  Attributes:
    module: the flax module.
    init: `(key, fluorescence (T, C)) -> params`.
    sample: `(params, fluorescence, key, num_samples) -> (probs (K, T*U, S), samples (K, T*U, S),
      log_q (K,))`.
    log_prob: `(params, fluorescence, spikes (..., T*U, S)) -> log q (...)` (teacher-forced).
    probabilities: `(params, fluorescence, key, num_samples) -> (T*U, S)` marginal spike probability
      per bin (exact for the factorised net, a Rao-Blackwellised mean over samples otherwise).
    receptive_field: frames seen by the CNN around each frame.
  """
  module: nn.Module
  init: Callable
  sample: Callable
  log_prob: Callable
  probabilities: Callable
  receptive_field: int


def _bernoulli_log_prob(logits, spikes):
  return distrax.Bernoulli(logits=logits).log_prob(spikes)


def _check_trace(fluorescence, receptive_field: int, num_traces: int | None):
  """Checks shape and length; returns the trace as float32 (the networks' precision)."""
  fluorescence = jnp.asarray(fluorescence)
  if fluorescence.ndim != 2:
    raise ValueError(f"fluorescence must have shape (T, C); got {fluorescence.shape}.")
  if num_traces is not None and fluorescence.shape[1] != num_traces:
    raise ValueError(f"fluorescence must have {num_traces} trace(s) in its last axis; got "
                     f"{fluorescence.shape}.")
  if fluorescence.shape[0] < receptive_field:
    raise ValueError(f"fluorescence has {fluorescence.shape[0]} frames, fewer than the network's "
                     f"receptive field of {receptive_field} frames.")
  return fluorescence.astype(jnp.float32)


def _kernel_arg(features, kernel_size):
  sizes = kernel_sizes(features, kernel_size)  # Validates.
  return kernel_size if isinstance(kernel_size, int) else sizes


def make_factorised(features: Sequence[int] = (32, 32, 32), kernel_size: int | Sequence[int] = 9,
                    upsample: int = 1, num_spike_channels: int = 1,
                    num_traces: int | None = None) -> Recognition:
  """Factorised CNN posterior (Speiser Eq. (5)); `kernel_size`: one width or one per layer."""
  module = FactorisedCNN(tuple(features), _kernel_arg(features, kernel_size), upsample,
                         num_spike_channels)
  rf = receptive_field(features, kernel_size)

  def init(key, fluorescence):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    return module.init(key, fluorescence)

  def log_prob(params, fluorescence, spikes):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    logits = module.apply(params, fluorescence)
    return jnp.sum(_bernoulli_log_prob(logits, spikes), axis=(-2, -1))

  def sample(params, fluorescence, key, num_samples: int):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    logits = module.apply(params, fluorescence)
    samples = jax.random.bernoulli(key, jax.nn.sigmoid(logits), (num_samples,) + logits.shape)
    samples = samples.astype(logits.dtype)
    log_q = jnp.sum(_bernoulli_log_prob(logits, samples), axis=(-2, -1))
    probs = jnp.broadcast_to(jax.nn.sigmoid(logits), samples.shape)
    return probs, samples, log_q

  def probabilities(params, fluorescence, key=None, num_samples: int = 1):
    del key, num_samples  # Exact marginals: no sampling needed.
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    return jax.nn.sigmoid(module.apply(params, fluorescence))

  return Recognition(module, init, sample, log_prob, probabilities, rf)


def make_autoregressive(features: Sequence[int] = (32, 32, 32),
                        kernel_size: int | Sequence[int] = 9, hidden: int = 32, upsample: int = 1,
                        num_spike_channels: int = 1,
                        num_traces: int | None = None) -> Recognition:
  """Autoregressive posterior (Speiser Eq. (6)): q(s_t | f, s_{<t}) via a forward RNN."""
  module = AutoregressiveRNN(tuple(features), _kernel_arg(features, kernel_size), hidden, upsample,
                             num_spike_channels)
  rf = receptive_field(features, kernel_size)
  zeros_s = jnp.zeros((num_spike_channels,), jnp.float32)

  def init(key, fluorescence):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    n = fluorescence.shape[0] * upsample
    return module.init(key, fluorescence, jnp.zeros((n, num_spike_channels)))

  def encode(params, fluorescence):
    return module.apply(params, fluorescence, method=AutoregressiveRNN.encode)

  def step(params, carry, context, previous):
    return module.apply(params, carry, context, previous, method=AutoregressiveRNN.step)

  def log_prob_one(params, context, spikes):
    previous = jnp.concatenate([zeros_s[None], spikes[:-1]], 0)

    def body(carry, inputs):
      ctx, prev = inputs
      return step(params, carry, ctx, prev)

    _, logits = jax.lax.scan(body, jnp.zeros((hidden,)), (context, previous))
    return jnp.sum(_bernoulli_log_prob(logits, spikes))

  def log_prob(params, fluorescence, spikes):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    context = encode(params, fluorescence)
    flat = jnp.asarray(spikes, jnp.float32).reshape((-1,) + spikes.shape[-2:])
    out = jax.vmap(lambda s: log_prob_one(params, context, s))(flat)
    return out.reshape(spikes.shape[:-2])

  def sample_one(params, context, key):
    keys = jax.random.split(key, context.shape[0])

    def body(state, inputs):
      carry, prev = state
      ctx, k = inputs
      carry, logits = step(params, carry, ctx, prev)
      s = jax.random.bernoulli(k, jax.nn.sigmoid(logits)).astype(logits.dtype)
      return (carry, s), (jax.nn.sigmoid(logits), s, jnp.sum(_bernoulli_log_prob(logits, s)))

    _, (probs, samples, lq) = jax.lax.scan(body, (jnp.zeros((hidden,)), zeros_s), (context, keys))
    return probs, samples, jnp.sum(lq)

  def sample(params, fluorescence, key, num_samples: int):
    fluorescence = _check_trace(fluorescence, rf, num_traces)
    context = encode(params, fluorescence)
    return jax.vmap(lambda k: sample_one(params, context, k))(jax.random.split(key, num_samples))

  def probabilities(params, fluorescence, key, num_samples: int = 16):
    probs, _, _ = sample(params, fluorescence, key, num_samples)
    return probs.mean(0)

  return Recognition(module, init, sample, log_prob, probabilities, rf)
