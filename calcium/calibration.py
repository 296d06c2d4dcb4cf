"""Calibration of DeepSpike's posterior: reliability of spike probabilities, coverage of intervals.

CASCADE and OASIS give a rate or a deconvolved trace; DeepSpike's recognition network gives a
distribution over spike trains (Speiser et al. 2017, Eq. (5)), so its probabilities and its
credible intervals can be checked against the ground truth:

* *Reliability* (DeGroot & Fienberg 1983, the reliability diagram): frames are grouped by their
  predicted P(>= 1 spike) into equal-width bins of [0, 1]; a calibrated posterior has, in every
  bin, an observed frequency of frames with a spike equal to the bin's mean prediction. The
  expected calibration error is ECE = sum_b (n_b / n) |observed_b - predicted_b|
  (Naeini, Cooper, Hauskrecht 2015); the Brier score mean (p - y)^2 is given beside it.
* *Coverage* of credible intervals of the spike count in windows: from K posterior samples of a
  window's count, the equal-tailed interval at level c is [Q((1 - c) / 2), Q((1 + c) / 2)] with Q
  the samples' quantile function (inverse empirical CDF); `interval_coverage` is the fraction of
  windows whose true count lies inside it (ends included). For counts this is at least c even
  for a calibrated posterior (the ends carry probability mass), so `pit_coverage` also gives the
  randomised probability integral transform of Czado, Gneiting & Held 2009 (Biometrics 65,
  Eq. (2)): u = F(y - 1) + v (F(y) - F(y - 1)), v ~ U(0, 1), with F the samples' empirical CDF;
  u is uniform when y is drawn from the predictive distribution, so the fraction of windows with
  |u - 1/2| <= c / 2 equals c up to binomial error (and 1 / K from the finite sample).

Everything is vectorised over frames and windows (numpy), no loop over time.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np


class Reliability(NamedTuple):
  """Reliability diagram of per-frame spike probabilities.

  Attributes:
    edges: (B + 1,) bin edges on [0, 1].
    predicted: (B,) mean predicted probability per bin (NaN where the bin is empty).
    observed: (B,) fraction of the bin's frames with a spike (NaN where empty).
    counts: (B,) frames per bin.
    ece: expected calibration error, sum_b (n_b / n) |observed_b - predicted_b|.
    brier: mean squared error (p - y)^2 over the frames.
  """
  edges: np.ndarray
  predicted: np.ndarray
  observed: np.ndarray
  counts: np.ndarray
  ece: float
  brier: float


def _levels(levels: Sequence[float]) -> np.ndarray:
  c = np.asarray(levels, np.float64).reshape(-1)
  if c.size == 0 or not np.all((c > 0) & (c < 1)):
    raise ValueError(f"levels must be credible levels in (0, 1); got {levels!r}.")
  return c


def reliability(probability, event, num_bins: int = 10) -> Reliability:
  """Reliability of `probability` (P(spike) per frame) against `event` (1 where the frame holds a
  spike); frames where either is NaN are left out. Bin b holds p in [b / B, (b + 1) / B)
  (the last bin includes 1)."""
  p = np.asarray(probability, np.float64).reshape(-1)
  y = np.asarray(event, np.float64).reshape(-1)
  if p.shape != y.shape:
    raise ValueError(f"probability and event must have the same size; got {np.size(probability)} "
                     f"and {np.size(event)}.")
  if int(num_bins) != num_bins or num_bins < 1:
    raise ValueError(f"num_bins must be a positive integer; got {num_bins!r}.")
  ok = np.isfinite(p) & np.isfinite(y)
  p, y = p[ok], y[ok]
  if not p.size:
    raise ValueError("probability and event have no frame where both are finite.")
  if np.any((p < 0) | (p > 1)):
    raise ValueError("probability must lie in [0, 1].")
  if np.any((y != 0) & (y != 1)):
    raise ValueError("event must be 0 or 1 (1: the frame holds at least one spike).")
  b = int(num_bins)
  idx = np.minimum((p * b).astype(np.int64), b - 1)
  counts = np.bincount(idx, minlength=b)
  with np.errstate(invalid="ignore", divide="ignore"):
    predicted = np.bincount(idx, weights=p, minlength=b) / counts
    observed = np.bincount(idx, weights=y, minlength=b) / counts
  gap = np.where(counts > 0, np.abs(observed - predicted), 0.0)
  return Reliability(np.linspace(0.0, 1.0, b + 1), predicted, observed, counts,
                     float(np.sum(counts * gap) / p.size), float(np.mean((p - y) ** 2)))


def window_sums(x, window: int) -> np.ndarray:
  """Sums of `x` (..., T) over consecutive windows of `window` frames along the last axis
  (..., T // window); the frames after the last complete window are dropped, and a window with a
  NaN frame is NaN."""
  if int(window) != window or window < 1:
    raise ValueError(f"window must be a positive integer number of frames; got {window!r}.")
  x = np.asarray(x, np.float64)
  n = x.shape[-1] // int(window)
  if n == 0:
    raise ValueError(f"x has {x.shape[-1]} frames, fewer than one window of {window}.")
  return x[..., :n * int(window)].reshape(x.shape[:-1] + (n, int(window))).sum(-1)


def _check_samples(samples, observed):
  s = np.asarray(samples, np.float64)
  y = np.asarray(observed, np.float64)
  if s.ndim != 2 or y.shape != (s.shape[1],) or s.shape[0] < 1:
    raise ValueError(f"samples must be (K, W) and observed (W,); got {s.shape} and {y.shape}.")
  ok = np.isfinite(y) & np.all(np.isfinite(s), axis=0)
  if not ok.any():
    raise ValueError("no window with a finite observed count and finite samples.")
  return s[:, ok], y[ok]


def credible_intervals(samples, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  """(lower, upper), each (L, W): the equal-tailed intervals [Q((1 - c) / 2), Q((1 + c) / 2)] of
  the (K, W) samples per window, Q the inverse empirical CDF (smallest x with F(x) >= q)."""
  c = _levels(levels)
  s = np.asarray(samples, np.float64)
  lo = np.quantile(s, (1 - c) / 2, axis=0, method="inverted_cdf")
  hi = np.quantile(s, (1 + c) / 2, axis=0, method="inverted_cdf")
  return lo, hi


def interval_coverage(samples, observed, levels: Sequence[float]) -> np.ndarray:
  """(L,) fraction of windows whose observed count lies in the level-c equal-tailed interval of
  its posterior samples (ends included; `credible_intervals`). Windows with a NaN are left out."""
  s, y = _check_samples(samples, observed)
  lo, hi = credible_intervals(s, levels)
  return np.mean((y[None] >= lo) & (y[None] <= hi), axis=1)


def randomised_pit(samples, observed, key) -> np.ndarray:
  """(W,) randomised PIT u = F(y-) + v (F(y) - F(y-)) of each window's observed count y under the
  empirical CDF F of its samples (Czado et al. 2009), v ~ U(0, 1) from `key`."""
  s, y = _check_samples(samples, observed)
  below = np.mean(s < y[None], axis=0)
  at_most = np.mean(s <= y[None], axis=0)
  v = np.asarray(jax.random.uniform(key, y.shape), np.float64)
  return below + v * (at_most - below)


def pit_coverage(samples, observed, levels: Sequence[float], key) -> np.ndarray:
  """(L,) fraction of windows with |u - 1/2| <= c / 2 for the randomised PIT u (`randomised_pit`):
  c up to binomial error for a calibrated posterior, at any count distribution."""
  c = _levels(levels)
  u = randomised_pit(samples, observed, key)
  return np.mean(np.abs(u[None] - 0.5) <= c[:, None] / 2, axis=1)


def binomial_se(fraction, n) -> np.ndarray:
  """sqrt(f (1 - f) / n): the standard error of a fraction of n independent trials."""
  f = np.asarray(fraction, np.float64)
  return np.sqrt(f * (1 - f) / np.maximum(np.asarray(n, np.float64), 1))
