"""Training augmentation over frame rates and noise levels (after CASCADE, Rupprecht et al. 2021).

CASCADE trains its networks on ground truth brought to the frame rate and the noise level of the
data to be inferred: each ground-truth trace is resampled to the target frame rate, then noise is
added until the trace reaches the target noise level, with the noise level measured as

    nu = median_t |f_{t+1} - f_t| / sqrt(frame_rate)        (dF/F; reported x 100, in %/sqrt(Hz))

(Rupprecht et al. 2021, Methods). nu is rate-independent for white shot noise whose variance per
frame falls as the frame's integration time grows (sigma^2 ~ frame_rate), which is what averaging
frames does. Here one DeepSpike network serves every rate instead of one network per rate:
`augmented_copies` makes, for every recording, one training copy per (frame rate, noise level)
and puts each copy on the model's grid the way `DeepSpike.infer` would see such a recording
(normalised at its own rate, then linearly interpolated onto `model_rate`), so the network is
trained on what it is later shown.

* Frame rate (`bin_average`): frames averaged in bins of 1 / rate (a frame belongs to the bin that
  holds its time; a complete bin of a recording k times faster is the mean of k frames), and the
  spikes counted in the same bins, so no spike is lost or moved to another bin. Rates above a
  recording's own (by more than `tolerance`) are skipped; within it the frames are used as
  recorded.
* Noise level (`add_noise_to_level`): Gaussian white noise of std s added to every valid frame,
  with s^2 = sigma_target^2 - sigma_now^2 and sigma = median|diff| / (0.6745 sqrt 2) the noise std
  of a trace whose frame differences are Gaussian (median |N(0, 2 sigma^2)| = 0.6745 sqrt(2)
  sigma); CASCADE adds Gaussian and Poisson noise, only the Gaussian part is made here. A level 0
  means "as recorded"; a copy whose recording is already noisier than the level is left out, as in
  CASCADE (noise cannot be taken away).
* Indicator kinetics (`time_warp`) [O, not in CASCADE]: a recording replayed s times faster
  (frame and spike times divided by s) is what an indicator with s times shorter rise and decay
  would have recorded from a neuron firing s times faster, at s times the frame rate with the same
  noise per frame. CASCADE covers new indicators by training on ground truth of that indicator;
  when none is at hand (a jGCaMP8f set held out from nine slower sets), warped copies put faster
  kinetics into the training data. Warped copies then go through the rate and noise copies above.

Everything is vectorised over frames (numpy `bincount`, `interp`); the loops run over copies.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np

from calcium import data as data_lib

MEDIAN_ABS_DIFF_PER_STD = 0.6745 * np.sqrt(2.0)  # median |x_t - x_{t-1}| / std of white noise x.


class Copy(NamedTuple):
  """One training copy of a recording on the model's grid.

  Attributes:
    frame_rate: the rate the recording was brought to (Hz; its own rate where within tolerance).
    noise_level: the asked CASCADE noise level nu (%/sqrt(Hz); 0: as recorded).
    achieved_noise_level: nu measured on the copy at `frame_rate` after the added noise.
    trace: (T',) normalised trace on the model's grid (NaN on invalid frames).
    spikes: (T' * upsample,) spike counts per fine bin of the model's grid.
    valid: (T',) bool.
  """
  frame_rate: float
  noise_level: float
  achieved_noise_level: float
  trace: np.ndarray
  spikes: np.ndarray
  valid: np.ndarray


def _positive(value, name: str) -> float:
  try:
    v = float(value)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{name} must be a positive number; got {value!r}.") from e
  if not (np.isfinite(v) and v > 0):
    raise ValueError(f"{name} must be a positive number; got {value!r}.")
  return v


def cascade_noise_level(fluorescence, frame_rate: float) -> float:
  """CASCADE's noise level nu = 100 median |f_{t+1} - f_t| / sqrt(frame_rate) (Rupprecht et al.
  2021) of a dF/F trace, in %/sqrt(Hz); differences only between adjacent finite frames."""
  rate = _positive(frame_rate, "frame_rate")
  d = np.diff(np.asarray(fluorescence, np.float64))
  d = d[np.isfinite(d)]
  if not d.size:
    raise ValueError("fluorescence has no two adjacent finite frames; no noise level.")
  return float(100.0 * np.median(np.abs(d)) / np.sqrt(rate))


def bin_average(frame_times, fluorescence, valid, spike_times, frame_rate: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """A recording brought down to `frame_rate` by averaging its frames in bins of 1 / frame_rate.

  Frame i (time t_i, interval dt = median frame interval) covers [t_i - dt/2, t_i + dt/2); bin j
  covers [a + j D, a + (j + 1) D) with a = t_0 - dt/2 and D = 1 / frame_rate, and holds the frames
  whose times fall in it. Only complete bins (ending by t_last + dt/2) are kept. A bin's value is
  the mean of its frames, its time the bin's centre, and it is valid when all its frames are.
  The spikes are counted in the same bins (`data.spike_counts` on the new frame times uses exactly
  these edges).

  Args:
    frame_times: (T,) increasing seconds.
    fluorescence: (T,) trace (NaN on invalid frames).
    valid: (T,) bool.
    spike_times: (N,) seconds.
    frame_rate: the new rate (Hz), at most the recording's own.

  Returns:
    (times (T',), fluorescence (T',), valid (T',), spike counts per new frame (T',)).
  """
  t = np.asarray(frame_times, np.float64)
  f = np.asarray(fluorescence, np.float64)
  ok = np.asarray(valid, bool)
  if t.ndim != 1 or t.size < 2 or f.shape != t.shape or ok.shape != t.shape:
    raise ValueError(f"frame_times, fluorescence and valid must be (T,) arrays with T >= 2; got "
                     f"{t.shape}, {f.shape}, {ok.shape}.")
  if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
    raise ValueError("frame_times must be finite and strictly increasing.")
  rate = _positive(frame_rate, "frame_rate")
  dt = float(np.median(np.diff(t)))
  if rate > (1.0 + 1e-6) / dt:
    raise ValueError(f"frame_rate {rate:.3f} Hz is above the recording's own {1 / dt:.3f} Hz; "
                     f"bin_average only lowers the rate.")
  width = 1.0 / rate
  start = t[0] - dt / 2
  num_bins = int(np.floor((t[-1] + dt / 2 - start) / width + 1e-6))
  if num_bins < 1:
    raise ValueError(f"the recording ({t.size} frames) is shorter than one bin at {rate} Hz.")
  idx = np.floor((t - start) / width + 1e-9).astype(np.int64)
  keep = idx < num_bins
  idx, fk, okk = idx[keep], f[keep], ok[keep]
  frames = np.bincount(idx, minlength=num_bins)
  sums = np.bincount(idx, weights=np.where(okk, fk, 0.0), minlength=num_bins)
  good = np.bincount(idx, weights=okk.astype(float), minlength=num_bins)
  new_valid = (frames > 0) & (good == frames)
  new_f = np.where(new_valid, sums / np.maximum(frames, 1), np.nan)
  new_t = start + (np.arange(num_bins) + 0.5) * width
  counts, _ = np.histogram(np.asarray(spike_times, np.float64),
                           start + np.arange(num_bins + 1) * width)
  return new_t, new_f, new_valid, counts.astype(np.float64)


def add_noise_to_level(fluorescence, frame_rate: float, level: float, key
                       ) -> tuple[np.ndarray, float]:
  """The trace with Gaussian white noise added so that its `cascade_noise_level` reaches `level`
  (%/sqrt(Hz)); NaN frames stay NaN.

  The trace's noise std is sigma_0 = median|diff| / (0.6745 sqrt 2); the target's is
  sigma_1 = (level / 100) sqrt(frame_rate) / (0.6745 sqrt 2); the added noise has std
  s = sqrt(sigma_1^2 - sigma_0^2) (independent Gaussian variances add), 0 where the trace is
  already at or above the level.

  Returns:
    (noisy trace (T,), s).
  """
  rate = _positive(frame_rate, "frame_rate")
  target = _positive(level, "level")
  f = np.asarray(fluorescence, np.float64)
  if f.ndim != 1:
    raise ValueError(f"fluorescence must be a (T,) trace; got shape {f.shape}.")
  now = cascade_noise_level(f, rate)
  sigma_0 = now / 100.0 * np.sqrt(rate) / MEDIAN_ABS_DIFF_PER_STD
  sigma_1 = target / 100.0 * np.sqrt(rate) / MEDIAN_ABS_DIFF_PER_STD
  if sigma_1 <= sigma_0:
    return f.copy(), 0.0
  s = float(np.sqrt(sigma_1 ** 2 - sigma_0 ** 2))
  noise = np.asarray(jax.random.normal(key, f.shape), np.float64)
  return f + s * noise, s


def time_warp(recording: data_lib.Recording, factor: float) -> data_lib.Recording:
  """The recording replayed `factor` times faster: frame and spike times divided by `factor`,
  frame rate multiplied by it, fluorescence unchanged (module doc: an indicator `factor` times
  faster, a neuron firing `factor` times faster). `factor` 1 returns the recording itself."""
  s = _positive(factor, "factor")
  if s == 1.0:
    return recording
  return recording._replace(
      name=f"{recording.name}@x{s:g}",
      frame_times=np.asarray(recording.frame_times, np.float64) / s,
      spike_times=np.asarray(recording.spike_times, np.float64) / s,
      frame_rate=float(recording.frame_rate) * s)


def augmented_copies(recording: data_lib.Recording, frame_rates: Sequence[float],
                     noise_levels: Sequence[float], model_rate: float, key, *, upsample: int = 1,
                     max_frames: int = 0, tolerance: float = 0.02,
                     time_warps: Sequence[float] = ()) -> list[Copy]:
  """Training copies of one recording, one per (frame rate, noise level), on the model's grid.

  For each rate r of `frame_rates` (empty: the recording's own rate only) not above the
  recording's own by more than `tolerance` (relative): the recording at r (`bin_average`; as
  recorded within tolerance); for each level of `noise_levels` (empty or 0: as recorded) not below
  the copy's own noise level: noise added to reach it (`add_noise_to_level`); the trace normalised
  at r (`data.normalise`, as `DeepSpike.infer` does), linearly interpolated onto the `model_rate`
  grid when r differs from it by more than `tolerance` (`data.resample_trace`: the grid
  `DeepSpike.infer` uses), the first `max_frames` frames of that grid kept (0: all), and the
  spikes counted per fine bin of the grid (`data.spike_counts`).

  Args:
    recording: a ground-truth `data.Recording` (dF/F).
    frame_rates: training frame rates (Hz).
    noise_levels: CASCADE noise levels nu (%/sqrt(Hz)); 0 stands for the recording's own.
    model_rate: the network's grid (Hz), `config.train.frame_rate`.
    key: PRNG key of the added noise (folded with the copy's index).
    upsample: fine spike bins per model frame.
    max_frames: frames kept per copy on the model's grid (0: all).
    tolerance: relative rate difference treated as equal.
    time_warps: kinetics factors (`time_warp`); every warped recording gets the rate and noise
      copies above (empty: (1,), the recording as recorded), in the order of `time_warps`;
      factor 1's copies are exactly those made without warps (same key).

  Returns:
    the copies (possibly none, e.g. when every level is below the recording's noise).
  """
  warps = [_positive(w, "time_warps[...]") for w in time_warps] or [1.0]
  if len(warps) > 1 or warps[0] != 1.0:
    copies = []
    for i, w in enumerate(warps):
      # Factor 1 keeps the unwarped key, so its copies are those made without warps.
      k = key if w == 1.0 else jax.random.fold_in(key, 1_000_003 + i)
      copies += augmented_copies(time_warp(recording, w), frame_rates, noise_levels, model_rate,
                                 k, upsample=upsample, max_frames=max_frames,
                                 tolerance=tolerance)
    return copies
  model_rate = _positive(model_rate, "model_rate")
  rates = [_positive(r, "frame_rates[...]") for r in frame_rates] or [recording.frame_rate]
  levels = list(noise_levels) or [0.0]
  for lv in levels:
    if not (np.isfinite(float(lv)) and float(lv) >= 0):
      raise ValueError(f"noise_levels must hold levels >= 0 (0: as recorded); got {lv!r}.")
  native = recording.frame_rate
  copies = []
  for i, rate in enumerate(rates):
    if rate > native * (1 + tolerance):
      continue
    if abs(rate / native - 1.0) <= tolerance:
      t, f, valid = recording.frame_times, recording.fluorescence, recording.valid
      spikes_at, rate = recording.spike_times, native
    else:
      t, f, valid, _ = bin_average(recording.frame_times, recording.fluorescence, recording.valid,
                                   recording.spike_times, rate)
      spikes_at = recording.spike_times
    if valid.sum() < 3:
      continue
    own = cascade_noise_level(np.where(valid, f, np.nan), rate)
    for j, level in enumerate(levels):
      level = float(level)
      if level and level < own:
        continue
      g = np.where(valid, f, np.nan)
      if level:
        g, _ = add_noise_to_level(g, rate, level, jax.random.fold_in(key, i * len(levels) + j))
      achieved = cascade_noise_level(g, rate)
      z = data_lib.normalise(g)
      tt, vv = t, valid
      if abs(rate / model_rate - 1.0) > tolerance:
        tt, z, vv = data_lib.resample_trace(t, z, valid, model_rate)
      if max_frames:
        tt, z, vv = tt[:max_frames], z[:max_frames], vv[:max_frames]
      counts = data_lib.spike_counts(spikes_at, tt, upsample)
      copies.append(Copy(float(rate), level, achieved, z, counts, vv))
  return copies


DECIMATION_METHODS = ("average", "drop")


def decimate(frame_times, fluorescence, valid, frame_rate: float, method: str = "average"
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A recording at a lower `frame_rate`: "average" (`bin_average`: means of the frames in bins of
  1 / frame_rate, noise std per frame down by sqrt(k), nu kept; what a longer integration per
  frame records) or "drop" (every k-th frame kept, k = native / frame_rate rounded, which must be
  an integer within 2 %; noise per frame kept, nu up by sqrt(k)).

  Returns:
    (frame_times (T',), fluorescence (T',), valid (T',)).
  """
  if method not in DECIMATION_METHODS:
    raise ValueError(f"method must be one of {DECIMATION_METHODS}; got {method!r}.")
  if method == "average":
    t, f, v, _ = bin_average(frame_times, fluorescence, valid, [], frame_rate)
    return t, f, v
  t = np.asarray(frame_times, np.float64)
  rate = _positive(frame_rate, "frame_rate")
  ratio = 1.0 / (float(np.median(np.diff(t))) * rate)
  k = int(round(ratio))
  if k < 1 or abs(ratio / k - 1.0) > 0.02:
    raise ValueError(f"method 'drop' needs a native rate that is an integer multiple of "
                     f"frame_rate {rate:.3f} Hz; the ratio is {ratio:.3f}.")
  return t[::k], np.asarray(fluorescence, np.float64)[::k], np.asarray(valid, bool)[::k]
