"""Command line: spike inference with a saved DeepSpike model on new recordings.

    python -m calcium.infer --model DIR --input PATH [--frame_rate HZ] --out FILE.npz

`DIR` is a model written by `calcium.save_model`. `PATH` is one of

* a CASCADE-format `.mat` file (`CAttached` structs; each recording its own cell, frame times and
  rate from `fluo_time`; `--frame_rate`, if given, must agree with them);
* a NumPy `.npy` array, cells x frames (or one trace), with `--frame_rate`;
* a suite2p output folder (`F.npy`, `Fneu.npy`, `iscell.npy`, `ops.npy`; or its `plane0/`): the
  traces are F - neuropil * Fneu (`--neuropil`, default 0.7 as suite2p), the ROIs that
  `iscell.npy` marks as cells (all with `--all_rois`), the rate from `ops.npy`'s `fs` unless
  `--frame_rate` is given.

Writes `FILE.npz` (per cell: `probability`, `expected_counts`, optional `samples`, `frame_times`,
`valid`, padded with NaN to the longest recording, with `lengths`, `names`, `frame_rate`, `roi`)
and beside it the suite2p layout `FILE_suite2p/` (`spks.npy`: expected spikes per frame, ROIs x
frames, 0 where not inferred or NaN; `spike_probability.npy`; `iscell.npy`), with progress over
cells. The inference itself is `DeepSpike.infer` (Speiser et al. 2017; resampling and
normalisation are described in `calcium.deepspike`).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import NamedTuple

import jax
import numpy as np
import tqdm
from absl import logging

from calcium import data as data_lib
from calcium import deepspike


class Group(NamedTuple):
  """Cells that share their frames: names (n,), traces (n, T), frame_times (T,) or None, rate."""
  names: list
  traces: np.ndarray
  frame_times: np.ndarray | None
  frame_rate: float


class Inputs(NamedTuple):
  """What `read_input` found: groups of cells, and for suite2p the ROIs they are."""
  kind: str  # "mat", "npy" or "suite2p".
  groups: list
  num_rois: int  # Rows of the suite2p layout.
  roi: np.ndarray  # (cells,) row of each inferred cell in that layout.
  iscell: np.ndarray  # (num_rois, 2) suite2p's iscell (ones where the input has none).


def _suite2p_folder(path: pathlib.Path) -> pathlib.Path:
  if (path / "F.npy").is_file():
    return path
  planes = sorted(p for p in path.glob("plane*") if (p / "F.npy").is_file())
  if len(planes) == 1:
    return planes[0]
  if planes:
    raise ValueError(f"{path}: {len(planes)} planes ({', '.join(p.name for p in planes)}); pass "
                     f"one plane's folder as --input.")
  raise ValueError(f"{path}: not a suite2p output folder (no F.npy here or in plane*/).")


def _load_npy(path: pathlib.Path, allow_pickle: bool = False):
  try:
    return np.load(path, allow_pickle=allow_pickle)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not a readable .npy file ({e}).") from e


def read_input(path, frame_rate: float | None = None, *, neuropil: float = 0.7,
               all_rois: bool = False) -> Inputs:
  """Reads a `.mat`, `.npy` or suite2p folder (module docstring) into groups of cells."""
  path = pathlib.Path(path)
  if not path.exists():
    raise ValueError(f"--input {path}: no such file or folder.")
  if path.is_dir():
    folder = _suite2p_folder(path)
    f = np.asarray(_load_npy(folder / "F.npy"), np.float64)
    if f.ndim != 2:
      raise ValueError(f"{folder / 'F.npy'}: expected ROIs x frames; got shape {f.shape}.")
    if neuropil:
      if not (folder / "Fneu.npy").is_file():
        raise ValueError(f"{folder}: no Fneu.npy for the neuropil correction (pass --neuropil 0 "
                         f"to use F alone).")
      fneu = np.asarray(_load_npy(folder / "Fneu.npy"), np.float64)
      if fneu.shape != f.shape:
        raise ValueError(f"{folder}: Fneu.npy has shape {fneu.shape}, F.npy {f.shape}.")
      f = f - neuropil * fneu
    if (folder / "iscell.npy").is_file():
      iscell = np.asarray(_load_npy(folder / "iscell.npy"), np.float64).reshape(f.shape[0], -1)
    else:
      logging.warning("%s: no iscell.npy; every ROI is taken as a cell.", folder)
      iscell = np.ones((f.shape[0], 2))
    roi = np.arange(f.shape[0]) if all_rois else np.flatnonzero(iscell[:, 0] > 0.5)
    if not roi.size:
      raise ValueError(f"{folder}: iscell.npy marks no ROI as a cell (pass --all_rois).")
    if frame_rate is None:
      if not (folder / "ops.npy").is_file():
        raise ValueError(f"{folder}: no ops.npy to read the frame rate from; pass --frame_rate.")
      ops = _load_npy(folder / "ops.npy", allow_pickle=True).item()
      if "fs" not in ops:
        raise ValueError(f"{folder / 'ops.npy'}: no 'fs' (frame rate); pass --frame_rate.")
      frame_rate = float(ops["fs"])
    logging.info("%s: %d of %d ROIs, %d frames at %.2f Hz, neuropil coefficient %.2f.", folder,
                 roi.size, f.shape[0], f.shape[1], frame_rate, neuropil)
    group = Group([f"roi{i}" for i in roi], f[roi], None, float(frame_rate))
    return Inputs("suite2p", [group], f.shape[0], roi, iscell)
  if path.suffix == ".npy":
    f = np.asarray(_load_npy(path), np.float64)
    f = f[None] if f.ndim == 1 else f
    if f.ndim != 2:
      raise ValueError(f"{path}: expected cells x frames (or one trace); got shape {f.shape}.")
    if frame_rate is None:
      raise ValueError(f"{path}: a .npy array has no frame rate; pass --frame_rate.")
    if f.shape[0] > f.shape[1]:
      logging.warning("%s: %d cells x %d frames; the array is read as cells x frames.", path,
                      *f.shape)
    group = Group([f"cell{i}" for i in range(f.shape[0])], f, None, float(frame_rate))
    return Inputs("npy", [group], f.shape[0], np.arange(f.shape[0]), np.ones((f.shape[0], 2)))
  if path.suffix == ".mat":
    recs = data_lib.load_mat(path)
    groups = [Group([r.name], r.fluorescence[None], r.frame_times,
                    float(r.frame_rate if frame_rate is None else frame_rate)) for r in recs]
    return Inputs("mat", groups, len(recs), np.arange(len(recs)), np.ones((len(recs), 2)))
  raise ValueError(f"--input {path}: expected a .mat file, a .npy array or a suite2p folder.")


def run(model: deepspike.DeepSpike, inputs: Inputs, *, num_samples: int = 0, seed: int = 0,
        batch_cells: int = 64, progress: bool = True,
        downsample: str = deepspike.DOWNSAMPLE) -> dict:
  """`DeepSpike.infer` over every cell of `inputs` in batches; the arrays `write_outputs` saves."""
  if batch_cells < 1:
    raise ValueError(f"batch_cells must be >= 1; got {batch_cells}.")
  key = jax.random.key(seed)
  results, names, rates, times, resampled = [], [], [], [], []
  total = sum(len(g.names) for g in inputs.groups)
  cell = 0
  with tqdm.tqdm(total=total, unit="cell", disable=not progress, desc="cells") as bar:
    for g in inputs.groups:
      for start in range(0, len(g.names), batch_cells):
        out = model.infer(g.traces[start:start + batch_cells], g.frame_rate,
                          frame_times=g.frame_times, num_samples=num_samples, key=key,
                          first_cell=cell, downsample=downsample, name=g.names[start])
        results.append(out)
        n = out.expected_counts.shape[0]
        names += g.names[start:start + n]
        rates += [g.frame_rate] * n
        times += [out.frame_times] * n
        resampled += [out.resampled] * n
        cell += n
        bar.update(n)
  lengths = np.array([t.size for t in times])
  t_max = int(lengths.max())

  def pad(arrays, dtype=np.float32):
    rows = [a for r in arrays for a in r]
    out = np.full((len(rows),) + rows[0].shape[:-1] + (t_max,), np.nan, dtype)
    for i, a in enumerate(rows):
      out[i, ..., :a.shape[-1]] = a
    return out

  arrays = {"probability": pad([r.probability for r in results]),
            "expected_counts": pad([r.expected_counts for r in results]),
            "frame_times": pad([[t] for t in times], np.float64),
            "valid": pad([r.valid.astype(np.float32) for r in results]) == 1,
            "lengths": lengths, "names": np.array(names), "frame_rate": np.array(rates),
            "roi": inputs.roi, "resampled": np.array(resampled)}
  if num_samples:
    arrays["samples"] = pad([r.samples for r in results])
  return arrays


def write_outputs(out: pathlib.Path, arrays: dict, inputs: Inputs, **attributes) -> pathlib.Path:
  """Writes the .npz and, beside it, the suite2p layout folder; returns that folder."""
  out = pathlib.Path(out)
  if out.suffix != ".npz":
    raise ValueError(f"--out {out}: expected a .npz file name.")
  out.parent.mkdir(parents=True, exist_ok=True)
  np.savez(out, **arrays, **{k: np.asarray(v) for k, v in attributes.items()})
  layout = out.with_name(out.stem + "_suite2p")
  layout.mkdir(exist_ok=True)
  t_max = arrays["expected_counts"].shape[1]
  for name, key in (("spks.npy", "expected_counts"), ("spike_probability.npy", "probability")):
    full = np.zeros((inputs.num_rois, t_max), np.float32)
    full[arrays["roi"]] = np.nan_to_num(arrays[key], nan=0.0)
    np.save(layout / name, full)
  np.save(layout / "iscell.npy", inputs.iscell)
  return layout


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m calcium.infer", description=__doc__.split(
      "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", required=True, help="folder written by calcium.save_model")
  parser.add_argument("--input", required=True, help=".mat file, .npy array or suite2p folder")
  parser.add_argument("--frame_rate", type=float, default=None,
                      help="frames per second (default: from the .mat times or suite2p ops.npy)")
  parser.add_argument("--out", required=True, help="output .npz (suite2p layout beside it)")
  parser.add_argument("--neuropil", type=float, default=0.7,
                      help="suite2p neuropil coefficient: F - neuropil * Fneu (default 0.7)")
  parser.add_argument("--all_rois", action="store_true",
                      help="suite2p: every ROI, not only those iscell.npy marks as cells")
  parser.add_argument("--num_samples", type=int, default=0, help="posterior samples per cell")
  parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
  parser.add_argument("--batch_cells", type=int, default=64, help="cells per network call")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  parser.add_argument("--downsample", choices=deepspike.DOWNSAMPLING, default=deepspike.DOWNSAMPLE,
                      help="recordings faster than the model's grid: frame means in its bins or "
                           f"linear interpolation (default {deepspike.DOWNSAMPLE})")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    model = deepspike.load_model(args.model)
    inputs = read_input(args.input, args.frame_rate, neuropil=args.neuropil,
                        all_rois=args.all_rois)
    arrays = run(model, inputs, num_samples=args.num_samples, seed=args.seed,
                 batch_cells=args.batch_cells, progress=not args.no_progress,
                 downsample=args.downsample)
    layout = write_outputs(pathlib.Path(args.out), arrays, inputs, model=str(args.model),
                           input=str(args.input), kind=inputs.kind, neuropil=args.neuropil,
                           model_frame_rate=model.frame_rate)
  except ValueError as e:
    print(f"calcium.infer: error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {args.out} ({len(arrays['names'])} cells, up to {arrays['lengths'].max()} frames; "
        f"{int(arrays['resampled'].sum())} resampled to the model's {model.frame_rate:g} Hz) and "
        f"{layout}/")
  return 0


if __name__ == "__main__":
  sys.exit(main())
