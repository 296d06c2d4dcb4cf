"""Method-of-moments estimates of a trace's SCF parameters (initialisation of the cell's model).

For the SCF model (Speiser et al. 2017, Sec. 2.2) with Bernoulli(p) spikes per frame,
c_t = g c_{t-1} + s_t and f_t = alpha c_t + beta + sigma eps_t, the moments of f give the
parameters without any spike inference:

* autocovariance at lags k >= 1: alpha^2 var(c) g^k (white noise only enters lag 0), so
  g is the least-squares ratio of consecutive lags, and the signal variance is
  V = alpha^2 p (1 - p) / (1 - g^2) = acov(1) / g;
* third cumulant: Gaussian noise has none, and the shot-noise sum gives
  k3 = alpha^3 p (1 - p)(1 - 2p) / (1 - g^3); so alpha = k3 / V (1 - g^3) / ((1 - g^2)(1 - 2p)),
  then p (1 - p) = V (1 - g^2) / alpha^2 (two fixed-point passes, starting from p = 0);
* baseline beta = mean(f) - alpha p / (1 - g); noise variance sigma^2 = acov(0) - V.

These are the statistics OASIS uses for its AR coefficients (Friedrich et al. 2017) plus the third
cumulant for the spike amplitude. On nonlinear indicators (SCDF, real GCaMP) they are only a
starting point, which training then refines.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


def _checked_trace(fluorescence, frame_rate: float, min_frames: int) -> np.ndarray:
  """The trace as float64, or a ValueError naming what is wrong with it."""
  f = np.asarray(fluorescence, np.float64)
  if f.ndim != 1 or f.size < min_frames or not np.all(np.isfinite(f)):
    raise ValueError(f"fluorescence must be a finite 1-D trace of at least {min_frames} frames; "
                     f"got shape {f.shape}.")
  if not frame_rate > 0:
    raise ValueError(f"frame_rate must be positive; got {frame_rate!r}.")
  return f


class ScfMoments(NamedTuple):
  """SCF parameters of one trace estimated from its moments (NaN where an estimate fails).

  Attributes:
    gamma: calcium decay per frame g.
    tau: decay time (s), -dt / log g.
    alpha: fluorescence jump per spike.
    rate: firing rate (Hz), -log(1 - p) * frame_rate.
    beta: baseline.
    sigma: noise standard deviation.
    signal_std: standard deviation of the noiseless trace, sqrt(acov(1) / g).
  """
  gamma: float
  tau: float
  alpha: float
  rate: float
  beta: float
  sigma: float
  signal_std: float


def autocovariance(x: np.ndarray, max_lag: int) -> np.ndarray:
  """Biased autocovariance (max_lag + 1,) of a 1-D series at lags 0 .. max_lag (mean removed)."""
  x = np.asarray(x, np.float64)
  if x.ndim != 1 or not np.all(np.isfinite(x)):
    raise ValueError(f"x must be a finite 1-D series; got shape {x.shape}.")
  if not 0 <= max_lag < x.size:
    raise ValueError(f"max_lag must be in [0, {x.size}); got {max_lag}.")
  x = x - x.mean()
  return np.array([np.dot(x[:x.size - k], x[k:]) / x.size for k in range(max_lag + 1)])


def scf_moments(fluorescence: np.ndarray, frame_rate: float, num_lags: int = 10) -> ScfMoments:
  """Estimates (gamma, tau, alpha, rate, beta, sigma) of an SCF trace from its moments.

  Args:
    fluorescence: (T,) finite trace (fill NaN frames first).
    frame_rate: frames per second.
    num_lags: lags 1 .. num_lags + 1 used for the decay (least squares of acov(k+1) = g acov(k)).

  Returns:
    `ScfMoments`; fields are NaN where the data do not support an estimate (e.g. no positive
    skew, or a non-decaying autocovariance).
  """
  f = _checked_trace(fluorescence, frame_rate, num_lags + 3)
  nan = float("nan")
  acov = autocovariance(f, num_lags + 1)
  a = acov[1:]
  g = float(np.dot(a[1:], a[:-1]) / np.dot(a[:-1], a[:-1])) if a[0] > 0 else nan
  if not 0.0 < g < 1.0:
    return ScfMoments(nan, nan, nan, nan, nan, nan, nan)
  tau = -1.0 / (frame_rate * math.log(g))
  signal_var = acov[1] / g
  sigma = math.sqrt(acov[0] - signal_var) if acov[0] > signal_var else nan
  signal_std = math.sqrt(signal_var) if signal_var > 0 else nan
  k3 = float(np.mean((f - f.mean()) ** 3))
  p, alpha = 0.0, nan
  if k3 > 0:
    for _ in range(2):
      alpha = k3 / signal_var * (1 - g ** 3) / ((1 - g ** 2) * (1 - 2 * p))
      pq = signal_var * (1 - g ** 2) / alpha ** 2  # p (1 - p)
      p = 0.5 * (1 - math.sqrt(1 - 4 * pq)) if pq < 0.25 else nan
      if not p == p:  # NaN: the skew is too small for the variance.
        return ScfMoments(g, tau, nan, nan, nan, sigma, signal_std)
  else:
    return ScfMoments(g, tau, nan, nan, nan, sigma, signal_std)
  rate = -math.log1p(-p) * frame_rate
  beta = float(f.mean() - alpha * p / (1 - g))
  return ScfMoments(g, tau, float(alpha), float(rate), beta, sigma, signal_std)


class RiseDecayMoments(NamedTuple):
  """Moment estimates for the SCF model with a rise (`models.make_model("scf_rise")`).

  Attributes:
    tau: decay time (s) of the AR(2) kernel (NaN if the autocovariance has no two real decaying
      roots).
    tau_rise: rise time (s) (NaN likewise).
    signal_var: variance of the noiseless trace, acov(0) minus the noise variance.
    noise_std: noise std from frame differences (median |diff| / (0.6745 sqrt 2)).
  """
  tau: float
  tau_rise: float
  signal_var: float
  noise_std: float


def rise_decay_moments(fluorescence: np.ndarray, frame_rate: float, num_lags: int = 30,
                       first_lag: int = 3) -> RiseDecayMoments:
  """AR(2) kinetics, signal and noise variance of a trace, from its autocovariance.

  Modified Yule-Walker (as OASIS's AR(2) estimate, Friedrich et al. 2017): for an AR(2) signal
  plus white noise, acov(k) = g1 acov(k-1) + g2 acov(k-2) for k >= 2 (lag 0 holds the noise);
  least squares over k = first_lag .. num_lags gives g1, g2, whose roots are the decay and rise
  factors exp(-dt / tau), exp(-dt / tau_rise).
  """
  f = _checked_trace(fluorescence, frame_rate, num_lags + 2)
  if not 2 <= first_lag < num_lags:
    raise ValueError(f"need 2 <= first_lag < num_lags; got {first_lag}, {num_lags}.")
  acov = autocovariance(f, num_lags)
  lags = np.arange(first_lag, num_lags + 1)
  a = np.stack([acov[lags - 1], acov[lags - 2]], 1)
  g1, g2 = np.linalg.lstsq(a, acov[lags], rcond=None)[0]
  disc = g1 ** 2 + 4 * g2
  tau = tau_rise = float("nan")
  if disc > 0:
    d, r = (g1 + math.sqrt(disc)) / 2, (g1 - math.sqrt(disc)) / 2
    if 0 < r < d < 1:
      tau, tau_rise = -1 / (frame_rate * math.log(d)), -1 / (frame_rate * math.log(r))
  noise_std = float(np.median(np.abs(np.diff(f))) / (0.6745 * math.sqrt(2.0)))
  return RiseDecayMoments(tau, tau_rise, float(acov[0] - noise_std ** 2), noise_std)


def rise_decay_kernel(tau: float, tau_rise: float, frame_rate: float,
                      num_frames: int | None = None) -> np.ndarray:
  """Response to one spike of the SCF model with a rise, peak 1 (as `models.make_model
  ("scf_rise")` with upsample 1), over `num_frames` frames (default: 10 decay times)."""
  d, r = math.exp(-1 / (frame_rate * tau)), math.exp(-1 / (frame_rate * tau_rise))
  d, r = max(d, r), min(d, r)
  r = min(r, d * (1 - 1e-4))
  n = num_frames or int(math.ceil(10 * max(tau, tau_rise) * frame_rate)) + 2
  k = np.arange(n)
  h = (d ** (k + 1) - r ** (k + 1)) / (d - r)
  return h / h.max()


def alpha_at_rate(signal_var: float, kernel: np.ndarray, rate: float, frame_rate: float) -> float:
  """Spike size that gives `signal_var` at Bernoulli(p = 1 - exp(-rate / frame_rate)) spikes:
  var = alpha^2 p (1 - p) sum_k h_k^2. A second moment at an assumed rate, unlike the third
  cumulant of `scf_moments`, which bursts inflate (it reads a burst as one large spike)."""
  p = -math.expm1(-rate / frame_rate)
  if not signal_var > 0:
    return float("nan")
  return math.sqrt(signal_var / (p * (1 - p) * float(np.sum(np.square(kernel)))))
