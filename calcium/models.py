"""Generative models of calcium fluorescence given binary spikes (Speiser et al. 2017, Sec. 2.2).

Every model is a `GenerativeModel`: a NamedTuple of pure functions over *unconstrained* per-cell
parameters (a dict of arrays). `constrain` maps them to physical values by reparameterisation
(softplus for positive quantities, a shifted softplus for Hill exponents and time constants that
must exceed the Euler step, `1 - exp(-rate dt)` for spike probabilities), so gradient steps on the
raw values never leave the valid region. One cell's parameters describe one trace; `jax.vmap` over
the leading axis of the raw dict gives one set per cell.

Shapes (single cell; vmap for batches):
  spikes:        (T * upsample, S) binary, on the model's fine time grid (super-resolution: the
                 spike grid is `upsample` times finer than the frame rate).
  fluorescence:  (T, C) frames; each frame is the mean of the model's noiseless trace over its
                 `upsample` sub-bins plus Gaussian noise.

Models (S spike channels, C fluorescence traces):
  scf    (S=1, C=1): c_t = gamma c_{t-1} + s_t, f = alpha c + beta + sigma eps (Speiser Sec. 2.2).
  scf_rise (S=1, C=1): SCF with a rise time (AR(2) calcium, as OASIS AR2; Friedrich et al. 2017):
                     the response to one spike is the difference of two exponentials with time
                     constants tau (decay) and tau_rise, scaled to peak at 1, so f = alpha c + beta
                     + sigma eps keeps alpha as the single-spike peak. GCaMP6s rises over 3-9
                     frames at 60 Hz, which the AR(1) SCF cannot represent.
  scdf   (S=1, C=1): calcium as SCF, then indicator binding with a Hill nonlinearity and saturation,
                     b' = k_on c^n (1 - b) - k_off b, integrated exactly over each bin;
                     f = alpha b + beta + sigma eps (Speiser Sec. 2.2).
  mlphys (S=1, C=1): MLspike's biophysical model (Deneux et al. 2016), Euler-stepped:
                     calcium relaxes to its baseline c0 with time constant tau, jumps by A per
                     spike; fluorescence follows phi(c) = (c^n - c0^n) / (1 + kappa (c^n - c0^n))
                     with rise time tau_r;
                     f = F0 (1 + y) + sigma eps.
  ds_bap (S=2, C=2): dendritic spine model (Speiser Sec. 3.4): spike channel 0 holds
                     back-propagating action potentials that raise calcium in both spine
                     and dendrite, channel 1 the spine's own synaptic events; trace 0 is the spine,
                     trace 1 the dendrite.

Every model can add a slow baseline drift: `drift_terms` cosine (DCT-II) basis functions of the
absolute frame index over `drift_period` frames, with per-cell weights.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, jax.Array]

_LOG_2PI = math.log(2.0 * math.pi)


def _softplus_inv(y):
  y = jnp.asarray(y, dtype=jnp.result_type(float))
  return y + jnp.log(-jnp.expm1(-y))


class _Field(NamedTuple):
  """One parameter: its constraint (`positive`, `real`, or `above:<lower>`), shape and default."""
  kind: str
  default: tuple[float, ...]


def _to_physical(field: _Field, raw, lower: float = 0.0):
  if field.kind == "real":
    return raw
  return lower + jax.nn.softplus(raw)


def _to_raw(field: _Field, value, lower: float = 0.0):
  if field.kind == "real":
    return jnp.asarray(value, dtype=jnp.result_type(float))
  return _softplus_inv(jnp.asarray(value) - lower)


class GenerativeModel(NamedTuple):
  """A calcium generative model as pure functions (see the module docstring for shapes).

  Attributes:
    name: model name.
    num_spike_channels: S.
    num_traces: C.
    upsample: fine spike bins per frame.
    frame_dt: seconds per frame.
    init: `init(**physical_overrides) -> raw params` (defaults, or physical values given by name).
    constrain: raw params -> physical params (dict of the same keys plus `spike_prob`).
    unconstrain: physical params -> raw params.
    mean_fluorescence: `(raw, spikes, frame_offset=0) -> (T, C)` noiseless frames.
    log_prior: `(raw, spikes) -> scalar` log p(s), Bernoulli per fine bin.
    log_likelihood: `(raw, spikes, fluorescence, mask=None, frame_offset=0) -> scalar`
      log p(f | s), summing the frames where `mask` is true (NaN frames must be masked out).
    log_joint: log p(s) + log p(f | s), same arguments as `log_likelihood`.
    simulate: `(raw, key, num_frames, frame_offset=0) -> (spikes, fluorescence)`.
  """
  name: str
  num_spike_channels: int
  num_traces: int
  upsample: int
  frame_dt: float
  init: Callable[..., Params]
  constrain: Callable[[Params], Params]
  unconstrain: Callable[[Params], Params]
  mean_fluorescence: Callable[..., jax.Array]
  log_prior: Callable[..., jax.Array]
  log_likelihood: Callable[..., jax.Array]
  log_joint: Callable[..., jax.Array]
  simulate: Callable[..., tuple[jax.Array, jax.Array]]


def drift_basis(num_frames: int, num_terms: int, period: int, frame_offset=0) -> jax.Array:
  """DCT-II cosine basis (num_frames, num_terms) of the absolute frame index, k = 1..num_terms.

  Column k is cos(pi k (t + 1/2) / period) for t = frame_offset .. frame_offset + num_frames - 1,
  so a slow drift over a whole recording of `period` frames is shared by its snippets.
  """
  t = jnp.arange(num_frames) + frame_offset
  k = jnp.arange(1, num_terms + 1)
  return jnp.cos(jnp.pi * k[None, :] * (t[:, None] + 0.5) / period)


def _hill(c, n):
  # c^n with a finite gradient in n at c = 0 (log 0 would give NaN gradients).
  return jnp.where(c > 0, jnp.exp(n * jnp.log(jnp.maximum(c, 1e-30))), 0.0)


def _scf_trace(p, spikes, dt):
  """Eq. SCF of Speiser et al. 2017: c_t = gamma c_{t-1} + s_t, trace alpha c + beta."""
  gamma = jnp.exp(-dt / p["tau"])
  # Linear recurrence, so an associative scan: log-depth on accelerators.
  a = jnp.broadcast_to(gamma, spikes[:, 0].shape)

  def combine(x, y):
    return y[0] * x[0], y[0] * x[1] + y[1]

  _, c = jax.lax.associative_scan(combine, (a, spikes[:, 0]))
  return (p["alpha"] * c + p["beta"])[:, None]


def _exp_filter(decay, x):
  """y_t = decay y_{t-1} + x_t (y_{-1} = 0) as an associative scan over the leading axis."""
  a = jnp.broadcast_to(decay, x.shape)

  def combine(u, v):
    return v[0] * u[0], v[0] * u[1] + v[1]

  return jax.lax.associative_scan(combine, (a, x))[1]


def rise_decay_peak(decay, rise):
  """Peak over k >= 0 of h_k = (d^(k+1) - r^(k+1)) / (d - r), d = max, r = min of the two factors
  (the AR(2) impulse response with h_0 = 1), from the continuous maximiser's neighbours."""
  d, r = jnp.maximum(decay, rise), jnp.minimum(decay, rise)
  r = jnp.minimum(r, d * (1.0 - 1e-4))  # Equal factors: the limit (k + 1) d^k, kept finite.
  k_star = jnp.log(jnp.log(r) / jnp.log(d)) / jnp.log(d / r) - 1.0
  ks = jnp.maximum(jnp.stack([jnp.floor(k_star), jnp.ceil(k_star)]), 0.0)
  return jnp.max((d ** (ks + 1) - r ** (ks + 1)) / (d - r))


def _scf_rise_trace(p, spikes, dt):
  """SCF with a rise: c = (d A_d - r A_r) / (d - r) / peak, A_x the spikes filtered by decay x; i.e.
  c_t = (d + r) c_{t-1} - d r c_{t-2} + s_t / peak (AR(2)), one spike peaking at 1."""
  d, r = jnp.exp(-dt / p["tau"]), jnp.exp(-dt / p["tau_rise"])
  hi, lo = jnp.maximum(d, r), jnp.minimum(d, r)
  lo = jnp.minimum(lo, hi * (1.0 - 1e-4))
  c = (hi * _exp_filter(hi, spikes[:, 0]) - lo * _exp_filter(lo, spikes[:, 0])) / (hi - lo)
  return (p["alpha"] * c / rise_decay_peak(hi, lo) + p["beta"])[:, None]


def _scdf_trace(p, spikes, dt):
  """SCDF of Speiser et al. 2017: SCF calcium, then saturating Hill-type dye binding."""
  gamma = jnp.exp(-dt / p["tau"])

  def step(carry, s):
    c, b = carry
    c = gamma * c + s[0]
    drive = p["k_on"] * _hill(c, p["hill"])
    rate = drive + p["k_off"]
    b_eq = drive / rate
    # Exact solution of b' = drive (1 - b) - k_off b over a bin with c held fixed: stays in [0, 1].
    b = b_eq + (b - b_eq) * jnp.exp(-rate * dt)
    return (c, b), b

  zero = jnp.zeros((), spikes.dtype)
  _, b = jax.lax.scan(step, (zero, zero), spikes)
  return (p["alpha"] * b + p["beta"])[:, None]


def _mlphys_trace(p, spikes, dt):
  """MLspike's physiological model (Deneux et al. 2016, Methods), forward-Euler steps of dt."""
  c0n = _hill(p["c0"], p["hill"])

  def step(carry, s):
    c, y = carry
    c = c - dt / p["tau"] * (c - p["c0"]) + p["amplitude"] * s[0]
    x = _hill(c, p["hill"]) - c0n
    phi = x / (1.0 + p["kappa"] * x)
    y = y + dt / p["tau_rise"] * (phi - y)
    return (c, y), y

  _, y = jax.lax.scan(step, (p["c0"] * jnp.ones((), spikes.dtype), jnp.zeros((), spikes.dtype)),
                      spikes)
  return (p["f0"] * (1.0 + y))[:, None]


def _ds_bap_trace(p, spikes, dt):
  """DS-BAP (Speiser Sec. 3.4): bAPs (channel 0) drive spine and dendrite, events only the spine."""
  gamma = jnp.exp(-dt / p["tau"])  # (2,): spine, dendrite

  def step(c, s):
    drive = jnp.stack([s[0] + p["event_amplitude"] * s[1], s[0]])
    c = gamma * c + drive
    return c, c

  _, c = jax.lax.scan(step, jnp.zeros((2,), spikes.dtype), spikes)
  return p["alpha"] * c + p["beta"]


_SPECS: dict[str, tuple[dict[str, _Field], int, int, Callable]] = {
    # name: (fields, S, C, trace function)
    "scf": ({"tau": _Field("positive", (0.5,)), "alpha": _Field("positive", (1.0,)),
             "beta": _Field("real", (0.0,)), "sigma": _Field("positive", (0.3,)),
             "rate": _Field("positive", (1.0,))}, 1, 1, _scf_trace),
    "scf_rise": ({"tau": _Field("positive", (1.0,)), "tau_rise": _Field("positive", (0.05,)),
                  "alpha": _Field("positive", (1.0,)), "beta": _Field("real", (0.0,)),
                  "sigma": _Field("positive", (0.3,)), "rate": _Field("positive", (1.0,))},
                 1, 1, _scf_rise_trace),
    "scdf": ({"tau": _Field("positive", (0.5,)), "k_on": _Field("positive", (20.0,)),
              "k_off": _Field("positive", (5.0,)), "hill": _Field("above:1", (2.0,)),
              "alpha": _Field("positive", (1.0,)), "beta": _Field("real", (0.0,)),
              "sigma": _Field("positive", (0.1,)), "rate": _Field("positive", (1.0,))},
             1, 1, _scdf_trace),
    "mlphys": ({"c0": _Field("positive", (0.1,)), "amplitude": _Field("positive", (0.2,)),
                "tau": _Field("above:dt", (1.0,)), "tau_rise": _Field("above:dt", (0.05,)),
                "hill": _Field("above:1", (2.0,)), "kappa": _Field("positive", (0.5,)),
                "f0": _Field("positive", (1.0,)), "sigma": _Field("positive", (0.05,)),
                "rate": _Field("positive", (1.0,))}, 1, 1, _mlphys_trace),
    "ds_bap": ({"tau": _Field("positive", (0.3, 0.5)),
                "event_amplitude": _Field("positive", (1.0,)),
                "alpha": _Field("positive", (1.0, 1.0)), "beta": _Field("real", (0.0, 0.0)),
                "sigma": _Field("positive", (0.3, 0.3)), "rate": _Field("positive", (0.5, 0.5))},
               2, 2, _ds_bap_trace),
}

MODEL_NAMES = tuple(_SPECS)


def make_model(name: str, *, frame_rate: float = 60.0, upsample: int = 1, drift_terms: int = 0,
               drift_period: int = 10_000) -> GenerativeModel:
  """Builds generative model `name` (one of MODEL_NAMES) on a grid `upsample` times the frames.

  Args:
    name: 'scf', 'scf_rise', 'scdf', 'mlphys' or 'ds_bap'.
    frame_rate: frames per second of the fluorescence.
    upsample: fine spike bins per frame (1: spikes at the frame rate).
    drift_terms: number of cosine basis functions of the slow baseline drift (0: none).
    drift_period: frames spanned by the drift basis (the recording length).

  Returns:
    A `GenerativeModel`.
  """
  if name not in _SPECS:
    raise ValueError(f"name must be one of {MODEL_NAMES}; got {name!r}.")
  if not (isinstance(frame_rate, (int, float)) and frame_rate > 0):
    raise ValueError(f"frame_rate must be a positive number of frames per second; got "
                     f"{frame_rate!r}.")
  if not (isinstance(upsample, int) and upsample >= 1):
    raise ValueError(f"upsample must be an integer >= 1; got {upsample!r}.")
  if not (isinstance(drift_terms, int) and drift_terms >= 0):
    raise ValueError(f"drift_terms must be an integer >= 0; got {drift_terms!r}.")
  if drift_period < 1:
    raise ValueError(f"drift_period must be >= 1 frame; got {drift_period!r}.")
  fields, num_s, num_c, trace_fn = _SPECS[name]
  frame_dt = 1.0 / float(frame_rate)
  dt = frame_dt / upsample
  fields = dict(fields)
  if drift_terms:
    fields["drift"] = _Field("real", (0.0,) * (drift_terms * num_c))

  def lower(field: _Field) -> float:
    if field.kind.startswith("above:"):
      bound = field.kind.split(":")[1]
      return dt if bound == "dt" else float(bound)
    return 0.0

  def shape(key: str, field: _Field):
    if key == "drift":
      return (drift_terms, num_c)
    return (len(field.default),) if len(field.default) > 1 else ()

  def constrain(raw: Params) -> Params:
    missing = set(fields) - set(raw)
    if missing:
      raise ValueError(f"raw params lack {sorted(missing)} for model {name!r}.")
    phys = {k: _to_physical(f, raw[k], lower(f)) for k, f in fields.items()}
    # Spike probability per fine bin of a Poisson process of `rate` Hz, clipped to one spike.
    phys["spike_prob"] = -jnp.expm1(-phys["rate"] * dt)
    return phys

  def unconstrain(phys: Params) -> Params:
    return {k: _to_raw(f, phys[k], lower(f)) for k, f in fields.items()}

  def init(**overrides) -> Params:
    unknown = set(overrides) - set(fields)
    if unknown:
      raise ValueError(f"unknown parameters {sorted(unknown)} for model {name!r}; "
                       f"known: {sorted(fields)}.")
    phys = {}
    for k, f in fields.items():
      value = overrides.get(k, f.default if len(f.default) > 1 or k == "drift" else f.default[0])
      # Checked on the host (skipped for traced values, so `init` also works under jit).
      concrete = not isinstance(value, jax.core.Tracer)
      if concrete and f.kind != "real" and np.any(np.asarray(value) <= lower(f)):
        raise ValueError(f"parameter {k!r} of model {name!r} must be > {lower(f)}; got {value}.")
      phys[k] = jnp.reshape(jnp.asarray(value, dtype=jnp.result_type(float)), shape(k, f))
    return unconstrain(phys)

  def check_spikes(spikes):
    if spikes.ndim != 2 or spikes.shape[1] != num_s or spikes.shape[0] % upsample:
      raise ValueError(f"spikes must have shape (T * {upsample}, {num_s}) for model {name!r}; "
                       f"got {spikes.shape}.")

  def mean_fluorescence(raw: Params, spikes, frame_offset=0):
    spikes = jnp.asarray(spikes, dtype=jnp.result_type(float))
    check_spikes(spikes)
    phys = constrain(raw)
    fine = trace_fn(phys, spikes, dt)  # (T * upsample, C)
    frames = fine.reshape(-1, upsample, num_c).mean(axis=1)  # Each frame integrates its sub-bins.
    if drift_terms:
      basis = drift_basis(frames.shape[0], drift_terms, drift_period, frame_offset)
      frames = frames + basis @ phys["drift"]
    return frames

  def sigma_per_trace(phys):
    return jnp.broadcast_to(phys["sigma"], (num_c,))

  def log_prior(raw: Params, spikes):
    spikes = jnp.asarray(spikes, dtype=jnp.result_type(float))
    check_spikes(spikes)
    p = jnp.broadcast_to(constrain(raw)["spike_prob"], (num_s,))
    return jnp.sum(spikes * jnp.log(p) + (1.0 - spikes) * jnp.log1p(-p))

  def log_likelihood(raw: Params, spikes, fluorescence, mask=None, frame_offset=0):
    fluorescence = jnp.asarray(fluorescence)
    if fluorescence.ndim != 2 or fluorescence.shape[1] != num_c:
      raise ValueError(f"fluorescence must have shape (T, {num_c}) for model {name!r}; "
                       f"got {fluorescence.shape}.")
    if spikes.shape[0] != fluorescence.shape[0] * upsample:
      raise ValueError(f"spikes must have {upsample} bins per frame: {fluorescence.shape[0]} "
                       f"frames need {fluorescence.shape[0] * upsample} bins, got "
                       f"{spikes.shape[0]}.")
    mu = mean_fluorescence(raw, spikes, frame_offset)
    sigma = sigma_per_trace(constrain(raw))
    if mask is None:
      mask = jnp.ones(fluorescence.shape[:1], bool)
    mask = jnp.asarray(mask, bool)
    f = jnp.where(mask[:, None], fluorescence, mu)  # Masked (e.g. NaN) frames never enter.
    ll = -0.5 * ((f - mu) / sigma) ** 2 - jnp.log(sigma) - 0.5 * _LOG_2PI
    return jnp.sum(jnp.where(mask[:, None], ll, 0.0))

  def log_joint(raw: Params, spikes, fluorescence, mask=None, frame_offset=0):
    return log_prior(raw, spikes) + log_likelihood(raw, spikes, fluorescence, mask, frame_offset)

  def simulate(raw: Params, key, num_frames: int, frame_offset=0):
    if not (isinstance(num_frames, (int, np.integer)) and num_frames >= 1):
      raise ValueError(f"num_frames must be a positive integer; got {num_frames!r}.")
    phys = constrain(raw)
    k_spikes, k_noise = jax.random.split(key)
    p = jnp.broadcast_to(phys["spike_prob"], (num_s,))
    spikes = jax.random.bernoulli(k_spikes, p, (num_frames * upsample, num_s))
    spikes = spikes.astype(jnp.result_type(float))
    mu = mean_fluorescence(raw, spikes, frame_offset)
    noise = jax.random.normal(k_noise, mu.shape, mu.dtype)
    return spikes, mu + sigma_per_trace(phys) * noise

  return GenerativeModel(name=name, num_spike_channels=num_s, num_traces=num_c, upsample=upsample,
                         frame_dt=frame_dt, init=init, constrain=constrain, unconstrain=unconstrain,
                         mean_fluorescence=mean_fluorescence, log_prior=log_prior,
                         log_likelihood=log_likelihood, log_joint=log_joint, simulate=simulate)
