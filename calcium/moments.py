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
  f = np.asarray(fluorescence, np.float64)
  if f.ndim != 1 or f.size < num_lags + 3 or not np.all(np.isfinite(f)):
    raise ValueError(f"fluorescence must be a finite 1-D trace of more than {num_lags + 2} "
                     f"frames; got shape {f.shape}.")
  if not frame_rate > 0:
    raise ValueError(f"frame_rate must be positive; got {frame_rate!r}.")
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
