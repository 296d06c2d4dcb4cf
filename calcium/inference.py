"""Spike inference on new traces with a trained network: input checks, NaN frames, frame rate.

Inference is one forward pass of the recognition network (Speiser et al. 2017, Sec. 2.3); this
module puts a raw trace into the form the network was trained on and refuses what it cannot use:

* frame rate: within `tolerance` of the trained model's it is used as is; otherwise the trace is
  resampled onto the model's grid (`allow_resample=True`) or refused with a message naming both
  rates;
* NaN frames: counted and logged, interpolated for the network input only, and reported as NaN in
  the output at exactly those frames, so a gap never spreads over the network's receptive field;
* traces shorter than the receptive field, wrong shapes and empty traces: ValueError naming the
  argument and what was expected.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from absl import logging

from calcium import data as data_lib
from calcium import recognition as recognition_lib


class Inference(NamedTuple):
  """Result of `infer_trace`.

  Attributes:
    rate: (T',) or (T', S) expected spikes per frame on the model's frame grid; NaN on NaN frames.
    frame_times: (T',) seconds of each output frame.
    valid: (T',) bool, False on frames that had no data.
    nan_frames: number of such frames.
    resampled: whether the trace was resampled to the model's frame rate.
  """
  rate: np.ndarray
  frame_times: np.ndarray
  valid: np.ndarray
  nan_frames: int
  resampled: bool


def _as_frames(fluorescence, name: str) -> np.ndarray:
  try:
    f = np.asarray(fluorescence, np.float64)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{name}: fluorescence must be numeric ({e}).") from e
  if f.ndim == 1:
    f = f[:, None]
  if f.ndim != 2 or f.shape[0] == 0:
    raise ValueError(f"{name}: fluorescence must have shape (T,) or (T, C) with T > 0; got "
                     f"{np.shape(fluorescence)}.")
  return f


def infer_trace(recognition: recognition_lib.Recognition, params, fluorescence, *,
                frame_rate: float, model_frame_rate: float, upsample: int = 1,
                frame_times=None, key=None, num_samples: int = 16, allow_resample: bool = True,
                tolerance: float = 0.02, name: str = "trace") -> Inference:
  """Expected spikes per frame of one raw trace (see the module docstring for the checks).

  Args:
    recognition: the trained network's `Recognition` (e.g. `Trainer.recognition`).
    params: its parameters.
    fluorescence: (T,) or (T, C) raw trace; NaN frames allowed.
    frame_rate: frames per second of `fluorescence`.
    model_frame_rate: frames per second the network was trained at (`config.frame_rate`).
    upsample: the model's fine bins per frame (outputs are summed over them).
    frame_times: optional (T,) seconds (default: frame index / frame_rate).
    key: PRNG key (autoregressive networks only).
    num_samples: samples of the autoregressive network's marginal estimate.
    allow_resample: resample a mismatched frame rate (True) or refuse it (False).
    tolerance: relative frame-rate difference accepted without resampling.
    name: how messages refer to the trace.

  Returns:
    `Inference`.
  """
  if not (np.isscalar(frame_rate) and frame_rate > 0 and np.isfinite(frame_rate)):
    raise ValueError(f"{name}: frame_rate must be a positive number; got {frame_rate!r}.")
  if not (np.isscalar(model_frame_rate) and model_frame_rate > 0):
    raise ValueError(f"model_frame_rate must be a positive number; got {model_frame_rate!r}.")
  f = _as_frames(fluorescence, name)
  if frame_times is None:
    frame_times = np.arange(f.shape[0]) / float(frame_rate)
  frame_times = np.asarray(frame_times, np.float64)
  if frame_times.shape != f.shape[:1]:
    raise ValueError(f"{name}: frame_times must have shape ({f.shape[0]},); got "
                     f"{frame_times.shape}.")
  if f.shape[0] > 1:
    times_rate = 1.0 / float(np.median(np.diff(frame_times)))
    if not abs(times_rate / frame_rate - 1.0) <= tolerance:
      raise ValueError(f"{name}: frame_rate {frame_rate:.3f} Hz does not match frame_times "
                       f"(median interval: {times_rate:.3f} Hz).")
  valid = np.all(np.isfinite(f), axis=1)
  if not valid.any():
    raise ValueError(f"{name}: fluorescence has no finite frame.")
  resampled = abs(frame_rate / model_frame_rate - 1.0) > tolerance
  if resampled:
    if not allow_resample:
      raise ValueError(f"{name}: frame rate {frame_rate:.2f} Hz does not match the trained "
                       f"model's {model_frame_rate:.2f} Hz; resample it (allow_resample=True) or "
                       f"train a model at this rate.")
    logging.info("%s: resampling %.2f Hz -> %.2f Hz.", name, frame_rate, model_frame_rate)
    frame_times, f, valid = data_lib.resample_trace(frame_times, f, valid, model_frame_rate)
  nan_frames = int((~valid).sum())
  if nan_frames:
    logging.warning("%s: %d NaN frames skipped (interpolated for the network input, NaN in the "
                    "output).", name, nan_frames)
  rf = recognition.receptive_field
  if f.shape[0] < rf:
    raise ValueError(f"{name}: {f.shape[0]} frames at {model_frame_rate:.2f} Hz is shorter than "
                     f"the network's receptive field of {rf} frames.")
  net_input = np.stack([data_lib.fill_nan(data_lib.normalise(np.where(valid, col, np.nan)))
                        for col in f.T], axis=1)
  probs = recognition.probabilities(params, net_input, key if key is not None
                                    else jax.random.key(0), num_samples)
  rate = np.asarray(probs, np.float64).reshape(f.shape[0], upsample, -1).sum(1)
  rate[~valid] = np.nan
  return Inference(rate[:, 0] if rate.shape[1] == 1 else rate, frame_times, valid, nan_frames,
                   bool(resampled))
