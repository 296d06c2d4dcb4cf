"""A trained DeepSpike network as a tool: saved, loaded and applied to new recordings.

Speiser et al. 2017 train one recognition network q(s | f) shared across cells, so inference on
a new recording is one forward pass (amortised inference, Sec. 2.3). `DeepSpike` holds that
network (its training config and parameters; the grid it was trained on is `config.frame_rate`,
the rate the training data were resampled to); `save_model` / `load_model` store it with orbax
beside `deepspike.json` (config, frame rate, format version, a free-text note of the training
data); `DeepSpike.infer(traces, frame_rate)` returns, on the recording's own frames, the
probability of at least one spike per frame, the expected spike count per frame and, on request,
posterior samples of the counts.

How a recording at another frame rate is handled (`infer`):

1. Each trace is normalised at its native rate, as in training (`data.normalise`: median removed,
   divided by the noise std from frame differences), so resampling cannot change the noise
   estimate the network's input is scaled by. NaN frames are left out of both statistics and
   filled by linear interpolation for the network input.
2. If `frame_rate` is more than `tolerance` (relative) away from the model's, the normalised trace
   is linearly interpolated onto the model's grid, `t_0 + j / model_rate` up to the last frame
   time (a slower recording always; a faster one with `downsample="interpolate"`); otherwise the
   frames are used as they are.
   2b. A recording faster than the grid is by default (`downsample="average"`) averaged onto it:
   bin j of width 1 / model_rate from t_0 - dt / 2 (dt the median frame interval; the edges of
   `augmentation.bin_average`, which made the training copies at the model's rate) holds the
   frames whose times fall in it, its value is the mean of its valid frames (a bin with none is
   filled like a NaN frame), and that trace is normalised at the model's rate, as those copies
   were. Every frame is used, where interpolation reads about model_rate / frame_rate of them.
   A bin's expected spikes are then spread evenly over its valid frames, P(>= 1 spike) of a frame
   is 1 - prod_b (1 - p_b / n) over the bin's fine bins b (n valid frames), and every sampled
   spike goes to a uniformly drawn valid frame of its bin [O: a spike is equally likely anywhere
   in the bin; counts add up as with interpolation]. On the ten shared sets this scored +0.02 to
   +0.05 above interpolation on six of the seven sets faster than 30 Hz and level on the seventh
   (calcium/README.md, "Averaging onto the grid"), hence the default.
3. The network gives a probability p_b for each fine bin b of that grid (`upsample` bins per
   model frame). Each fine bin is assigned to the recording's frame whose interval (from the
   midpoints between frame times) holds the bin's centre, and a frame's expected count is the sum
   of its bins' p_b and its spike probability 1 - prod_b (1 - p_b) (exact for the factorised
   posterior, Speiser Eq. (5); for the autoregressive one, Eq. (6), the product of the
   sample-averaged marginals). Samples are binary spike trains of the posterior summed the same
   way, so the expected counts are the samples' mean and every count is kept.

The preprocessing and the mapping back are pure JAX, one jit vmapped over the cells of a batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import pathlib
import shutil
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

FORMAT_VERSION = 1
DOWNSAMPLING = ("average", "interpolate")
DOWNSAMPLE = "average"  # infer's default (calcium/README.md, "Averaging onto the grid").
METADATA_FILE = "deepspike.json"
PARAMS_DIR = "params"
_TUPLE_FIELDS = ("features", "kernel_size", "fixed_generative")


class SpikeEstimate(NamedTuple):
  """Output of `DeepSpike.infer` on the recording's frames (cell axis absent for a (T,) input).

  Attributes:
    probability: (N, T) probability of at least one spike in each frame; NaN on NaN frames.
    expected_counts: (N, T) expected spikes in each frame; NaN on NaN frames.
    samples: (N, K, T) posterior samples of the spikes per frame (float, NaN on NaN frames), or
      None when `num_samples` is 0.
    frame_times: (T,) seconds of each frame.
    valid: (N, T) bool, False on NaN frames.
    resampled: whether the traces were resampled onto the model's grid.
  """
  probability: np.ndarray
  expected_counts: np.ndarray
  samples: np.ndarray | None
  frame_times: np.ndarray
  valid: np.ndarray
  resampled: bool


def model_grid(frame_times, model_rate: float) -> np.ndarray:
  """(T',) times `t_0 + j / model_rate` from the first to the last frame time (inclusive)."""
  t = np.asarray(frame_times, np.float64)
  count = int(np.floor((t[-1] - t[0]) * model_rate + 1e-6)) + 1
  return t[0] + np.arange(count) / model_rate


def bin_assignment(frame_times, grid_times, upsample: int = 1) -> np.ndarray:
  """(T' * upsample,) index of the recording frame that holds each fine bin's centre.

  Frame i covers [e_i, e_{i+1}) with e the midpoints between frame times, the first and last
  extended by half their neighbouring interval; the fine bins of grid frame j split
  [g_j - dg / 2, g_j + dg / 2) (dg the grid's median interval) into `upsample` equal parts.
  A centre on an edge goes to the frame that starts there; centres outside every frame go to the
  nearest end frame.
  """
  t = np.asarray(frame_times, np.float64)
  g = np.asarray(grid_times, np.float64)
  if t.size == 1:
    return np.zeros(g.size * upsample, np.int64)
  edges = np.concatenate([[t[0] - (t[1] - t[0]) / 2], (t[1:] + t[:-1]) / 2,
                          [t[-1] + (t[-1] - t[-2]) / 2]])
  dg = float(np.median(np.diff(g))) if g.size > 1 else float(t[1] - t[0])
  centres = (g[:, None] - dg / 2 + (np.arange(upsample) + 0.5) * dg / upsample).reshape(-1)
  # A centre on an edge (e.g. every other bin of a grid at twice the frame rate) belongs to the
  # frame that starts there; the shift keeps rounding from deciding.
  centres = centres + 1e-6 * dg / upsample
  return np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, t.size - 1)


def grid_bins(frame_times, model_rate: float) -> np.ndarray:
  """(T,) index of the model-grid bin that holds each frame ("average" downsampling).

  Bin j covers [a + j / model_rate, a + (j + 1) / model_rate) with a = t_0 - dt / 2 (dt the
  median frame interval), the edges of `augmentation.bin_average`; the last bin may be partial.
  """
  t = np.asarray(frame_times, np.float64)
  dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0 / model_rate
  return np.floor((t - (t[0] - dt / 2)) * model_rate + 1e-9).astype(np.int64)


@jax.jit
def normalise_and_fill(fluorescence, valid):
  """(T,) trace in units of its noise std around its median, NaN frames filled linearly.

  The JAX form of `data.normalise` then `data.fill_nan` (the training input): the median over
  valid frames; the noise std median|f_t - f_{t-1}| / (0.6745 sqrt 2) over pairs of adjacent valid
  frames; invalid frames interpolated between their valid neighbours (ends: the nearest one).
  """
  f = jnp.where(valid, fluorescence, jnp.nan)
  pair = valid[1:] & valid[:-1]
  noise = jnp.nanmedian(jnp.where(pair, jnp.abs(jnp.diff(f)), jnp.nan)) / (0.6745 * jnp.sqrt(2.0))
  z = (f - jnp.nanmedian(f)) / noise
  idx = jnp.arange(f.shape[0])
  prev = jax.lax.cummax(jnp.where(valid, idx, -1))
  nxt = jax.lax.cummin(jnp.where(valid, idx, f.shape[0]), reverse=True)
  prev_ok, next_ok = prev >= 0, nxt < f.shape[0]
  lo = jnp.where(prev_ok, prev, nxt)
  hi = jnp.where(next_ok, nxt, prev)
  w = jnp.where(hi > lo, (idx - lo) / jnp.maximum(hi - lo, 1), 0.0)
  zf = jnp.where(valid, z, 0.0)
  return jnp.where(valid, z, zf[lo] * (1 - w) + zf[hi] * w)


def _check_rate(frame_rate, name: str) -> float:
  if isinstance(frame_rate, (bool, str, bytes)) or not np.isscalar(frame_rate):
    raise ValueError(f"{name} must be a positive number of frames per second; got "
                     f"{frame_rate!r}.")
  rate = float(frame_rate)
  if not (np.isfinite(rate) and rate > 0):
    raise ValueError(f"{name} must be a positive number of frames per second; got "
                     f"{frame_rate!r}.")
  return rate


@dataclasses.dataclass(frozen=True, eq=False)
class DeepSpike:
  """A trained DeepSpike recognition network (Speiser et al. 2017) ready for new recordings.

  Attributes:
    config: the training config (`calcium.train.default_config` fields); `config.frame_rate` is
      the grid the network was trained on.
    params: the recognition network's parameters (e.g. `TrainState.recognition_params`).
    training_data: free text naming what it was trained on (saved with the model).
  """
  config: ml_collections.ConfigDict
  params: Any
  training_data: str = ""

  @property
  def frame_rate(self) -> float:
    """Frames per second of the training data's grid (`config.frame_rate`)."""
    return float(self.config.frame_rate)

  @functools.cached_property
  def recognition(self):
    from calcium import train as train_lib
    model = train_lib.build_model(self.config)
    if model.num_traces != 1 or model.num_spike_channels != 1:
      raise ValueError(f"DeepSpike.infer takes one trace and one spike train per cell; the "
                       f"{model.name!r} model has {model.num_traces} traces and "
                       f"{model.num_spike_channels} spike channels.")
    return train_lib.build_recognition(self.config, model)

  @functools.cached_property
  def _core(self):
    recognition = self.recognition
    upsample = int(self.config.upsample)

    def one(f, valid, key, times, grid, assign, resampled, average, num_marginal, num_samples):
      n = f.shape[0]
      k_marg, k_samp = jax.random.split(key)
      if average:  # `assign` is each frame's bin of the model's grid (module docstring, 2b).
        bins = grid.shape[0]
        per_bin = jax.ops.segment_sum(valid.astype(f.dtype), assign, bins)
        mean = jax.ops.segment_sum(jnp.where(valid, f, 0.0), assign, bins) / jnp.maximum(
            per_bin, 1.0)
        z = normalise_and_fill(mean, per_bin > 0)  # At the model's rate, as its training copies.
      else:
        z = normalise_and_fill(f, valid)
        if resampled:
          z = jnp.interp(grid, times, z)
      p = recognition.probabilities(self.params, z[:, None], k_marg, num_marginal)[:, 0]
      if average:  # Each bin's spikes spread evenly over its valid frames.
        share = 1.0 / jnp.maximum(per_bin, 1.0)
        fine = p.reshape(bins, upsample)
        counts = fine.sum(1)[assign] * share[assign]
        prob = -jnp.expm1(jnp.sum(jnp.log1p(-jnp.minimum(fine * share[:, None], 1.0)), 1))[assign]
      else:
        counts = jax.ops.segment_sum(p, assign, n)
        prob = -jnp.expm1(jax.ops.segment_sum(jnp.log1p(-jnp.minimum(p, 1.0)), assign, n))
      nan = jnp.asarray(jnp.nan, p.dtype)
      out = (jnp.where(valid, prob, nan), jnp.where(valid, counts, nan))
      if num_samples:
        _, s, _ = recognition.sample(self.params, z[:, None], k_samp, num_samples)
        s = s[..., 0]
        if average:  # Every sampled spike in a uniformly drawn valid frame of its bin.
          fine_bin = jnp.repeat(jnp.arange(bins), upsample)
          frames = jnp.nonzero(valid, size=n, fill_value=0)[0]  # Valid frames, in time order.
          first = (jnp.cumsum(per_bin) - per_bin).astype(jnp.int32)[fine_bin]
          width = per_bin.astype(jnp.int32)[fine_bin]
          u = jax.random.uniform(jax.random.fold_in(k_samp, 1), s.shape)
          pos = first + jnp.minimum(jnp.floor(u * width).astype(jnp.int32),
                                    jnp.maximum(width - 1, 0))
          target = frames[jnp.clip(pos, 0, n - 1)]
          s = jnp.where(width > 0, s, 0.0)  # A bin without a valid frame has no output frame.
          s = jax.vmap(lambda x, tgt: jax.ops.segment_sum(x, tgt, n))(s, target)
        else:
          s = jax.vmap(lambda x: jax.ops.segment_sum(x, assign, n))(s)
        out += (jnp.where(valid[None], s, nan),)
      return out

    @functools.partial(jax.jit, static_argnames=("resampled", "average", "num_marginal",
                                                 "num_samples"))
    def core(f, valid, key, cells, times, grid, assign, *, resampled, average, num_marginal,
             num_samples):
      keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(cells)
      return jax.vmap(lambda a, b, k: one(a, b, k, times, grid, assign, resampled, average,
                                          num_marginal, num_samples))(f, valid, keys)

    return core

  def infer(self, traces, frame_rate, *, frame_times=None, num_samples: int = 0, key=None,
            num_marginal_samples: int = 16, tolerance: float = 0.02, first_cell: int = 0,
            downsample: str = DOWNSAMPLE, name: str = "traces") -> SpikeEstimate:
    """Spike probabilities, expected counts and optional samples per frame (module docstring).

    Args:
      traces: (T,) or (N, T) raw fluorescence (cells x frames), NaN frames allowed.
      frame_rate: frames per second of `traces`.
      frame_times: optional (T,) seconds (default: frame index / frame_rate); their median
        interval must agree with `frame_rate` within `tolerance`.
      num_samples: posterior samples of the spike trains to return (0: none).
      key: PRNG key of the samples (and of the autoregressive network's marginals).
      num_marginal_samples: samples behind the autoregressive network's marginals.
      tolerance: relative frame-rate difference used without resampling.
      first_cell: index of the first row among all cells of a recording: cell i's random draws
        use `fold_in(key, first_cell + i)`, so they do not depend on how cells are batched.
      downsample: how a recording faster than the model's grid is brought onto it: "average"
        (the default: frame means in the grid's bins, normalised at the model's rate) or
        "interpolate" (the trace normalised at its own rate, linearly interpolated; the default
        before 2026-12-06); module docstring, steps 2 and 2b.
      name: how error messages call the traces.

    Returns:
      `SpikeEstimate`.
    """
    rate = _check_rate(frame_rate, "frame_rate")
    if downsample not in DOWNSAMPLING:
      raise ValueError(f"downsample must be one of {DOWNSAMPLING}; got {downsample!r}.")
    try:
      f = np.asarray(traces, np.float64)
    except (TypeError, ValueError) as e:
      raise ValueError(f"{name} must be a numeric (frames,) or (cells, frames) array ({e}).") from e
    single = f.ndim == 1
    f = f[None] if single else f
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] < 2:
      raise ValueError(f"{name} must have shape (frames,) or (cells, frames) with >= 2 frames and "
                       f">= 1 cell; got {np.shape(traces)}.")
    if frame_times is None:
      frame_times = np.arange(f.shape[1]) / rate
    t = np.asarray(frame_times, np.float64)
    if t.shape != (f.shape[1],):
      raise ValueError(f"frame_times must have shape ({f.shape[1]},) (one time per frame of "
                       f"{name}); got {t.shape}.")
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
      raise ValueError("frame_times must be finite and strictly increasing.")
    times_rate = 1.0 / float(np.median(np.diff(t)))
    if abs(times_rate / rate - 1.0) > tolerance:
      raise ValueError(f"frame_rate {rate:.3f} Hz does not match frame_times (median interval: "
                       f"{times_rate:.3f} Hz).")
    valid = np.isfinite(f)
    few = np.flatnonzero(valid.sum(1) < 2)
    if few.size:
      raise ValueError(f"{name}[{few[0]}] has fewer than 2 finite frames.")
    model_rate = self.frame_rate
    resampled = abs(rate / model_rate - 1.0) > tolerance
    average = resampled and rate > model_rate and downsample == "average"
    if average:
      assign = grid_bins(t, model_rate)
      grid = t[0] - 0.5 / times_rate + (np.arange(assign[-1] + 1) + 0.5) / model_rate
    else:
      grid = model_grid(t, model_rate) if resampled else t
    rf = self.recognition.receptive_field
    if grid.size < rf:
      raise ValueError(f"{name}: {f.shape[1]} frames at {rate:.2f} Hz give {grid.size} frames at "
                       f"the model's {model_rate:.2f} Hz, shorter than the network's receptive "
                       f"field of {rf} frames.")
    upsample = int(self.config.upsample)
    if not average:
      assign = (bin_assignment(t, grid, upsample) if resampled
                else np.repeat(np.arange(t.size), upsample))
    key = jax.random.key(0) if key is None else key
    out = self._core(jnp.asarray(np.where(valid, f, 0.0), jnp.float32), jnp.asarray(valid), key,
                     jnp.arange(f.shape[0]) + int(first_cell),
                     jnp.asarray(t - t[0], jnp.float32), jnp.asarray(grid - t[0], jnp.float32),
                     jnp.asarray(assign, jnp.int32),
                     resampled=bool(resampled), average=bool(average),
                     num_marginal=int(num_marginal_samples),
                     num_samples=int(num_samples))
    out = [np.asarray(o) for o in out]
    bad = [i for i in range(f.shape[0]) if not np.isfinite(out[1][i][valid[i]]).all()]
    if bad:
      raise ValueError(f"{name}[{bad[0]}] has no noise level (constant, or no two adjacent finite "
                       f"frames).")
    samples = out[2] if num_samples else None
    if single:
      out = [o[0] for o in out]
      samples = out[2] if num_samples else None
      valid = valid[0]
    return SpikeEstimate(out[0], out[1], samples, t, valid, bool(resampled))


@contextlib.contextmanager
def _quiet_orbax():
  """orbax logs every save and restore at INFO through absl; keep the caller's log readable."""
  level = logging.get_verbosity()
  logging.set_verbosity(min(level, logging.WARNING))
  try:
    yield
  finally:
    logging.set_verbosity(level)


def _config_to_json(config) -> dict:
  return json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else dict(config)))


def _config_from_json(content: dict) -> ml_collections.ConfigDict:
  content = dict(content)
  for k in _TUPLE_FIELDS:
    if isinstance(content.get(k), list):
      content[k] = tuple(content[k])
  return ml_collections.ConfigDict(content)


def save_model(path, model: DeepSpike, *, overwrite: bool = False) -> pathlib.Path:
  """Writes `model` to the folder `path`: orbax parameters in `params/`, then `deepspike.json`
  (format version, config, frame rate, training data). Refuses a non-empty folder unless
  `overwrite`. Returns the folder."""
  import orbax.checkpoint as ocp

  if not isinstance(model, DeepSpike):
    raise ValueError(f"model must be a calcium.DeepSpike; got {type(model).__name__}.")
  path = pathlib.Path(path).resolve()
  if path.exists() and (not path.is_dir() or any(path.iterdir())):
    if not overwrite:
      raise ValueError(f"{path} exists and is not an empty folder; pass overwrite=True to "
                       f"replace it.")
    shutil.rmtree(path) if path.is_dir() else path.unlink()
  path.mkdir(parents=True, exist_ok=True)
  _ = model.recognition  # Refuses a model infer cannot run before anything is written.
  with _quiet_orbax(), ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path / PARAMS_DIR, jax.tree.map(jnp.asarray, model.params))
    checkpointer.wait_until_finished()
  metadata = {"format_version": FORMAT_VERSION, "frame_rate": model.frame_rate,
              "training_data": model.training_data, "config": _config_to_json(model.config)}
  (path / METADATA_FILE).write_text(json.dumps(metadata, indent=1))
  return path


def load_model(path) -> DeepSpike:
  """The `DeepSpike` saved in the folder `path` by `save_model`; ValueError naming the folder
  when it, its `deepspike.json` or its parameters are missing, or its format version is unknown."""
  import orbax.checkpoint as ocp

  path = pathlib.Path(path).resolve()
  if not path.is_dir():
    raise ValueError(f"{path}: no such model folder (expected one written by calcium.save_model).")
  meta_path = path / METADATA_FILE
  if not meta_path.is_file():
    raise ValueError(f"{path}: no {METADATA_FILE}; not a model written by calcium.save_model.")
  try:
    metadata = json.loads(meta_path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{meta_path}: not valid JSON ({e}).") from e
  version = metadata.get("format_version")
  if version != FORMAT_VERSION:
    raise ValueError(f"{meta_path}: format_version {version!r} is not one this calcium reads "
                     f"(version {FORMAT_VERSION}).")
  config = _config_from_json(metadata["config"])
  if abs(float(metadata["frame_rate"]) - float(config.frame_rate)) > 1e-9:
    raise ValueError(f"{meta_path}: frame_rate {metadata['frame_rate']} disagrees with "
                     f"config.frame_rate {config.frame_rate}.")
  if not (path / PARAMS_DIR).is_dir():
    raise ValueError(f"{path}: no {PARAMS_DIR}/ folder of parameters.")
  shell = DeepSpike(config, None, metadata.get("training_data", ""))
  rf = shell.recognition.receptive_field
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.eval_shape(lambda k: shell.recognition.init(k, jnp.zeros((rf, 1))),
                          jax.random.key(0))
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), target)
  with _quiet_orbax(), ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(path / PARAMS_DIR, target)
  return DeepSpike(config, params, metadata.get("training_data", ""))
