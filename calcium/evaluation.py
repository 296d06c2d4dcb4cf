"""Spikefinder-style evaluation (Berens et al. 2018; as used by Speiser et al. 2017, Sec. 3).

Predictions are in calibrated units: the expected number of spikes per frame (for the binary
models, the posterior probability of a spike in each fine bin, summed over the frame's bins).
The predicted rate and the true spike count are summed in common 40 ms bins; the score is the
Pearson correlation per recording, averaged over recordings.
"""
from __future__ import annotations

import numpy as np

SPIKEFINDER_BIN_S = 0.04


def bin_sum(values: np.ndarray, frame_times: np.ndarray, bin_width: float = SPIKEFINDER_BIN_S
            ) -> np.ndarray:
  """Sums per-frame `values` into bins of `bin_width` s starting at frame_times[0]."""
  values, frame_times = np.asarray(values, float), np.asarray(frame_times, float)
  if values.shape != frame_times.shape or values.ndim != 1:
    raise ValueError(f"values and frame_times must be 1-D of equal length; got {values.shape} "
                     f"and {frame_times.shape}.")
  if not bin_width > 0:
    raise ValueError(f"bin_width must be positive; got {bin_width!r}.")
  idx = np.floor((frame_times - frame_times[0]) / bin_width + 1e-9).astype(int)
  return np.bincount(idx, weights=np.nan_to_num(values))


def binned_spike_counts(spike_times: np.ndarray, frame_times: np.ndarray,
                        bin_width: float = SPIKEFINDER_BIN_S) -> np.ndarray:
  """True spikes per bin, on the same bins as `bin_sum(., frame_times)`."""
  frame_times = np.asarray(frame_times, float)
  n = int(np.floor((frame_times[-1] - frame_times[0]) / bin_width + 1e-9)) + 1
  # The same index rule as `bin_sum`, so a spike at a frame time lands in that frame's bin;
  # spikes just before the first frame count in the first bin.
  idx = np.floor((np.asarray(spike_times, float) - frame_times[0]) / bin_width + 1e-9).astype(int)
  idx = np.maximum(idx, 0)
  return np.bincount(idx[idx < n], minlength=n).astype(float)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson correlation; nan where either input is constant."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.shape != y.shape:
    raise ValueError(f"x and y must have the same shape; got {x.shape} and {y.shape}.")
  xc, yc = x - x.mean(), y - y.mean()
  denom = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
  return float((xc * yc).sum() / denom) if denom > 0 else float("nan")


def spikefinder_correlation(rate: np.ndarray, frame_times: np.ndarray, spike_times: np.ndarray,
                            bin_width: float = SPIKEFINDER_BIN_S) -> float:
  """Pearson correlation of predicted rate and true spikes, both summed in `bin_width` bins."""
  pred = bin_sum(rate, frame_times, bin_width)
  true = binned_spike_counts(spike_times, frame_times, bin_width)
  return pearson(pred, true[:pred.size])


def spike_count_ratio(rate: np.ndarray, spike_times: np.ndarray) -> float:
  """Predicted number of spikes (sum of expected counts) over the true number."""
  n = np.asarray(spike_times).size
  return float(np.nansum(rate) / n) if n else float("nan")


def timing_error(rate: np.ndarray, counts: np.ndarray, dt: float, max_lag: int = 10) -> float:
  """Lag (seconds; positive = prediction late) maximising the cross-correlation within +-max_lag;
  NaN where `counts` or `rate` is constant (no spike: every lag ties, and the first, -max_lag,
  used to be reported).

  Args:
    rate: (T,) predicted rate per bin.
    counts: (T,) true spike counts on the same bins.
    dt: seconds per bin.
    max_lag: largest lag searched, in bins.
  """
  rate, counts = np.asarray(rate, float), np.asarray(counts, float)
  if rate.shape != counts.shape or rate.ndim != 1:
    raise ValueError(f"rate and counts must be 1-D of equal length; got {rate.shape}, "
                     f"{counts.shape}.")
  if not 0 <= max_lag < rate.size:
    raise ValueError(f"max_lag must be in [0, {rate.size}); got {max_lag}.")
  r, c = rate - rate.mean(), counts - counts.mean()
  if not (np.any(r) and np.any(c)):
    return float("nan")
  lags = np.arange(-max_lag, max_lag + 1)
  xc = [np.dot(r[max(lag, 0):rate.size + min(lag, 0)], c[max(-lag, 0):rate.size - max(lag, 0)])
        for lag in lags]
  return float(lags[int(np.argmax(xc))] * dt)


def evaluate(rates: list[np.ndarray], frame_times: list[np.ndarray], spike_times: list[np.ndarray],
             bin_width: float = SPIKEFINDER_BIN_S) -> dict[str, float]:
  """Mean over recordings of the correlation, count ratio and timing error (per-frame rates); each
  a mean over the recordings where it is defined (nanmean; NaN where it is nowhere defined)."""
  if not (len(rates) == len(frame_times) == len(spike_times)) or not rates:
    raise ValueError("rates, frame_times and spike_times must be non-empty lists of equal length.")
  corr, ratio, lag = [], [], []
  for r, t, s in zip(rates, frame_times, spike_times):
    corr.append(spikefinder_correlation(r, t, s, bin_width))
    ratio.append(spike_count_ratio(r, s))
    pred = bin_sum(r, t, bin_width)
    true = binned_spike_counts(s, t, bin_width)[:pred.size]
    lag.append(timing_error(pred, true, bin_width, min(5, pred.size - 1)))
  mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
  return {"correlation": mean(corr), "count_ratio": mean(ratio), "timing_error_s": mean(lag),
          "per_recording": [float(c) for c in corr]}


def spread_bin_sum(values: np.ndarray, frame_times: np.ndarray, origin: float, num_bins: int,
                   bin_width: float = SPIKEFINDER_BIN_S) -> np.ndarray:
  """Per-frame `values` spread uniformly over each frame's interval and summed in `num_bins` bins
  [origin + k w, origin + (k + 1) w).

  Frame i covers [e_i, e_{i+1}) with e the midpoints between frame times (the ends extended by half
  the neighbouring interval); bin k receives v_i |frame_i n bin_k| / |frame_i| from every frame.
  For frames shorter than a bin this is `bin_sum` up to the frames that straddle a bin edge; for
  frames longer than a bin (a 7.5 Hz recording scored in 40 ms bins) it is the only choice that
  does not leave most bins empty. Computed exactly from the cumulative sum (piecewise linear in
  time) at the bin edges; NaN values count as 0.
  """
  v = np.nan_to_num(np.asarray(values, np.float64))
  t = np.asarray(frame_times, np.float64)
  if v.shape != t.shape or v.ndim != 1 or t.size < 2:
    raise ValueError(f"values and frame_times must be 1-D of equal length >= 2; got {v.shape} and "
                     f"{t.shape}.")
  if not np.all(np.diff(t) > 0):
    raise ValueError("frame_times must be strictly increasing.")
  if not bin_width > 0:
    raise ValueError(f"bin_width must be positive; got {bin_width!r}.")
  if int(num_bins) != num_bins or num_bins < 1:
    raise ValueError(f"num_bins must be a positive integer; got {num_bins!r}.")
  edges = np.concatenate([[t[0] - (t[1] - t[0]) / 2], (t[1:] + t[:-1]) / 2,
                          [t[-1] + (t[-1] - t[-2]) / 2]])
  cumulative = np.concatenate([[0.0], np.cumsum(v)])
  at = np.interp(origin + np.arange(int(num_bins) + 1) * bin_width, edges, cumulative)
  return np.diff(at)


def spread_correlation(rate: np.ndarray, frame_times: np.ndarray, spike_times: np.ndarray,
                       origin: float, end: float, bin_width: float = SPIKEFINDER_BIN_S) -> float:
  """Pearson correlation of `spread_bin_sum(rate)` and the true spikes in the same bins, from
  `origin` to `end` (complete bins only): one set of bins for every frame rate of a recording, so
  scores at 60 and at 7.5 Hz compare the same truth (Berens et al. 2018's 40 ms bins)."""
  num_bins = int(np.floor((end - origin) / bin_width + 1e-9))
  if num_bins < 2:
    raise ValueError(f"[origin, end] = [{origin}, {end}] holds fewer than 2 bins of {bin_width} s.")
  pred = spread_bin_sum(rate, frame_times, origin, num_bins, bin_width)
  idx = np.floor((np.asarray(spike_times, float) - origin) / bin_width + 1e-9).astype(int)
  true = np.bincount(idx[(idx >= 0) & (idx < num_bins)], minlength=num_bins).astype(float)
  return pearson(pred, true)
