"""Ground-truth calcium recordings (CASCADE curation, Rupprecht et al. 2021) and preprocessing.

A ground-truth set is a folder of .mat files (one neuron each, one or several recordings of it),
named for the set (e.g. `DS14-GCaMP6s-m-V1`, Chen et al. 2013's GCaMP6s recordings); the README of
the folder above describes each set in a table row (`data_set_description`). `load_folder` reads
every recording of a set; `select_recordings` shuffles and caps them, and says in the log how many
a cap dropped (no recording is dropped silently). Files are MATLAB structs `CAttached` (one or an
array, one per recording) with fields `fluo_time` (frame times, s), `fluo_mean` (dF/F, may hold
NaN frames) and `events_AP` (spike times in 1e-4 s). NaN frames are reported (logged and counted
in `Recording.nan_frames`) and kept out of the likelihood through `Recording.valid`; the network
input fills them by linear interpolation.
"""
from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import numpy as np
from absl import logging

DATA_ENV_VAR = "CALCIUM_DATA_DIR"
CHEN2013_SUBDIR = "DS14-GCaMP6s-m-V1"


class Recording(NamedTuple):
  """One trace with its ground-truth spikes.

  Attributes:
    name: '<file stem>#<index>'.
    frame_times: (T,) seconds.
    fluorescence: (T,) dF/F as stored (NaN frames kept as NaN).
    spike_times: (N,) seconds.
    frame_rate: frames per second (median of the frame intervals).
    valid: (T,) bool, False on NaN frames.
    nan_frames: number of NaN frames.
  """
  name: str
  frame_times: np.ndarray
  fluorescence: np.ndarray
  spike_times: np.ndarray
  frame_rate: float
  valid: np.ndarray
  nan_frames: int


def default_data_dir() -> pathlib.Path:
  """`$CALCIUM_DATA_DIR`, else `<repo root>/../shared/data/calcium`."""
  if os.environ.get(DATA_ENV_VAR):
    return pathlib.Path(os.environ[DATA_ENV_VAR])
  return pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "calcium"


def chen2013_files(data_dir: str | pathlib.Path | None = None) -> list[pathlib.Path]:
  """Sorted .mat files of the Chen 2013 set; [] when the directory is absent."""
  root = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
  folder = root / CHEN2013_SUBDIR if (root / CHEN2013_SUBDIR).is_dir() else root
  return sorted(folder.glob("*.mat")) if folder.is_dir() else []


def ground_truth_folder(data_dir: str | pathlib.Path | None = None,
                        default_subdir: str = CHEN2013_SUBDIR) -> pathlib.Path:
  """The folder of .mat files `data_dir` names: `data_dir/default_subdir` where that exists (the
  shared root holds one folder per set), else `data_dir` itself (default: `default_data_dir()`)."""
  root = pathlib.Path(data_dir) if data_dir else default_data_dir()
  return root / default_subdir if (root / default_subdir).is_dir() else root


def data_set_name(folder: str | pathlib.Path) -> str:
  """The set's name: its folder's name (e.g. 'DS14-GCaMP6s-m-V1')."""
  return pathlib.Path(folder).resolve().name


def data_set_description(folder: str | pathlib.Path) -> str:
  """'<name> (<indicator>, <preparation>)' from the table row of the README beside or inside the
  folder whose first cell is the folder's name in backticks; the bare name where there is none."""
  folder = pathlib.Path(folder).resolve()
  name = folder.name
  for readme in (folder / "README.md", folder.parent / "README.md"):
    if not readme.is_file():
      continue
    for line in readme.read_text(errors="replace").splitlines():
      cells = [c.strip() for c in line.strip().strip("|").split("|")]
      if len(cells) >= 3 and cells[0] == f"`{name}`":
        return f"{name} ({cells[1]}, {cells[2]})"
  return name


def select_recordings(recordings: list, max_recordings: int | None = None, *,
                      seed: int | None = None, name: str = "data set") -> list:
  """Every recording (in a seeded random order when `seed` is given), or the first
  `max_recordings` of that order when a limit is set (None or 0: no limit); a limit that drops
  recordings says so in one logged line naming the set and the counts."""
  order = (np.random.default_rng(seed).permutation(len(recordings)) if seed is not None
           else np.arange(len(recordings)))
  if max_recordings is not None and int(max_recordings) < 0:
    raise ValueError(f"max_recordings must be >= 0 (0 or None: all); got {max_recordings!r}.")
  if max_recordings and int(max_recordings) < len(order):
    logging.warning("%s: max_recordings = %d keeps %d of %d recordings; %d dropped.", name,
                    int(max_recordings), int(max_recordings), len(order),
                    len(order) - int(max_recordings))
    order = order[:int(max_recordings)]
  return [recordings[i] for i in order]


def _field(struct, name: str, path: pathlib.Path, index: int) -> np.ndarray:
  if not hasattr(struct, name):
    raise ValueError(f"{path}: recording {index} of 'CAttached' has no field {name!r}; "
                     f"fields: {sorted(getattr(struct, '_fieldnames', []))}.")
  try:
    return np.atleast_1d(np.asarray(getattr(struct, name), dtype=np.float64))
  except (TypeError, ValueError) as e:
    raise ValueError(f"{path}: field {name!r} of recording {index} is not numeric ({e}).") from e


def load_mat(path: str | pathlib.Path) -> list[Recording]:
  """Reads one CASCADE-format .mat file; ValueError naming the file and field on bad input."""
  import scipy.io

  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"{path}: no such file.")
  try:
    content = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
  except Exception as e:  # scipy raises several types for non-MATLAB content.
    raise ValueError(f"{path}: not a readable MATLAB .mat file ({e}).") from e
  if "CAttached" not in content:
    raise ValueError(f"{path}: no variable 'CAttached'; variables: "
                     f"{sorted(k for k in content if not k.startswith('__'))}.")
  recordings = []
  for i, struct in enumerate(np.atleast_1d(content["CAttached"])):
    times = _field(struct, "fluo_time", path, i)
    fluo = _field(struct, "fluo_mean", path, i)
    spikes = _field(struct, "events_AP", path, i) / 1e4
    if times.shape != fluo.shape:
      raise ValueError(f"{path}: recording {i}: 'fluo_time' has {times.size} frames but "
                       f"'fluo_mean' has {fluo.size}.")
    timed = np.isfinite(times)
    if not timed.all():
      first, last = (int(np.argmax(timed)), int(timed.size - np.argmax(timed[::-1]))
                     if timed.any() else (0, 0))
      # Leading or trailing frames with neither a time nor a fluorescence value (e.g. DS07's
      # Fish1_cell1 #0: its first 1201 frames) hold no data: they are cut, with the spikes
      # before the first timed frame. A NaN time anywhere else is refused.
      if (timed.any() and timed[first:last].all() and not np.isfinite(fluo[~timed]).any()):
        logging.warning("%s#%d: %d frames without frame time or fluorescence cut (%d leading, %d "
                        "trailing).", path.stem, i, int((~timed).sum()), first,
                        timed.size - last)
        times, fluo = times[first:last], fluo[first:last]
        spikes = spikes[spikes >= times[0] - 0.5 * np.median(np.diff(times))]
      else:
        raise ValueError(f"{path}: recording {i}: 'fluo_time' has {int((~timed).sum())} "
                         f"non-finite (NaN or inf) frame times, first at frame "
                         f"{int(np.argmin(timed))}.")
    if times.size < 2 or not np.all(np.diff(times) > 0):
      raise ValueError(f"{path}: recording {i}: 'fluo_time' must be increasing with >= 2 frames.")
    valid = np.isfinite(fluo)
    nan_frames = int((~valid).sum())
    name = f"{path.stem}#{i}"
    if nan_frames:
      logging.warning("%s: %d NaN frames skipped (masked from the likelihood, interpolated for "
                      "the network input).", name, nan_frames)
    recordings.append(Recording(name, times, fluo, np.sort(spikes[np.isfinite(spikes)]),
                                float(1.0 / np.median(np.diff(times))), valid, nan_frames))
  return recordings


def load_folder(folder: str | pathlib.Path) -> list[Recording]:
  """Every recording of every .mat file in `folder` (sorted by file name); ValueError naming the
  folder if it holds none."""
  folder = pathlib.Path(folder)
  files = sorted(folder.glob("*.mat")) if folder.is_dir() else []
  if not files:
    raise ValueError(f"no .mat files in {folder} (a folder of CASCADE-format ground truth; set "
                     f"${DATA_ENV_VAR} or pass the folder).")
  recordings = [r for f in files for r in load_mat(f)]
  logging.info("%s: %d recordings from %d files.", data_set_name(folder), len(recordings),
               len(files))
  return recordings


def load_chen2013(data_dir: str | pathlib.Path | None = None) -> list[Recording]:
  """All 18 recordings of Chen et al. 2013 (GCaMP6s); ValueError if none are found."""
  files = chen2013_files(data_dir)
  if not files:
    raise ValueError(f"no Chen 2013 .mat files under {data_dir or default_data_dir()} "
                     f"(set ${DATA_ENV_VAR}).")
  return [r for f in files for r in load_mat(f)]


def fill_nan(fluorescence: np.ndarray) -> np.ndarray:
  """Linear interpolation over NaN frames (edges take the nearest finite value)."""
  f = np.asarray(fluorescence, dtype=np.float64)
  ok = np.isfinite(f)
  if not ok.any():
    raise ValueError("fluorescence has no finite frame.")
  if ok.all():
    return f
  idx = np.arange(f.size)
  return np.interp(idx, idx[ok], f[ok])


def noise_level(fluorescence: np.ndarray) -> float:
  """Robust noise std from frame-to-frame differences: median|diff| / (0.6745 sqrt 2)."""
  d = np.diff(np.asarray(fluorescence)[np.isfinite(fluorescence)])
  return float(np.median(np.abs(d)) / (0.6745 * np.sqrt(2.0)))


def normalise(fluorescence: np.ndarray) -> np.ndarray:
  """(f - median) / noise_level: a trace in units of its own noise std, NaNs kept."""
  f = np.asarray(fluorescence, dtype=np.float64)
  scale = noise_level(f)
  if not scale > 0:
    raise ValueError("fluorescence has zero noise level (constant trace?).")
  return (f - np.nanmedian(f)) / scale


def spike_counts(spike_times: np.ndarray, frame_times: np.ndarray, upsample: int = 1) -> np.ndarray:
  """Spikes per fine bin: frame i covers [t_i - dt/2, t_i + dt/2), split into `upsample` bins."""
  t = np.asarray(frame_times)
  dt = np.median(np.diff(t))
  edges = t[0] - dt / 2 + np.arange(t.size * upsample + 1) * dt / upsample
  counts, _ = np.histogram(spike_times, bins=edges)
  return counts.astype(np.float64)


def resample_trace(frame_times: np.ndarray, fluorescence: np.ndarray, valid: np.ndarray,
                   frame_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Linear interpolation of a (T,) or (T, C) trace onto a `frame_rate` grid from frame_times[0].

  A new frame is valid only where it lies between valid old frames (NaN otherwise).

  Returns:
    (new_times (T',), fluorescence (T',) or (T', C), valid (T',)).
  """
  if not frame_rate > 0:
    raise ValueError(f"frame_rate must be positive; got {frame_rate!r}.")
  t = np.asarray(frame_times, np.float64)
  f = np.asarray(fluorescence, np.float64)
  valid = np.asarray(valid, bool)
  if f.shape[:1] != t.shape or valid.shape != t.shape or t.ndim != 1:
    raise ValueError(f"frame_times, fluorescence and valid must share their first axis; got "
                     f"{t.shape}, {f.shape}, {valid.shape}.")
  new_t = np.arange(t[0], t[-1] + 1e-12, 1.0 / frame_rate)
  cols = f.reshape(t.size, -1)
  new_f = np.stack([np.interp(new_t, t, fill_nan(np.where(valid, c, np.nan))) for c in cols.T], 1)
  new_valid = np.interp(new_t, t, valid.astype(float)) > 0.999
  new_f = np.where(new_valid[:, None], new_f, np.nan)
  return new_t, new_f.reshape((new_t.size,) + f.shape[1:]), new_valid


def resample(recording: Recording, frame_rate: float) -> Recording:
  """Linear interpolation of the trace onto a grid at `frame_rate` (same start time)."""
  new_t, f, valid = resample_trace(recording.frame_times, recording.fluorescence, recording.valid,
                                   frame_rate)
  return recording._replace(frame_times=new_t, fluorescence=f, frame_rate=float(frame_rate),
                            valid=valid, nan_frames=int((~valid).sum()))


def match_frame_rate(recording: Recording, frame_rate: float, *, tolerance: float = 0.02,
                     allow_resample: bool = True) -> Recording:
  """Returns the recording at the model's `frame_rate`: unchanged within `tolerance` (relative),
  resampled if allowed, otherwise a ValueError naming both rates."""
  if abs(recording.frame_rate / frame_rate - 1.0) <= tolerance:
    return recording
  if not allow_resample:
    raise ValueError(f"{recording.name}: frame rate {recording.frame_rate:.2f} Hz does not match "
                     f"the trained model's {frame_rate:.2f} Hz; resample it first.")
  logging.info("%s: resampling %.2f Hz -> %.2f Hz.", recording.name, recording.frame_rate,
               frame_rate)
  return resample(recording, frame_rate)
