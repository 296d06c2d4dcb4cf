"""One general DeepSpike model for many indicators: trained on ground-truth sets, saved, tested.

The recognition network (Speiser et al. 2017; supervised variant, Sec. 2.4: cross-entropy
against the electrophysiological spikes) is trained on every recording of every folder in
`config.train_dirs` (CASCADE format; names relative to the shared data root or paths), each trace
normalised at its native rate and then linearly interpolated onto one grid at
`config.train.frame_rate`, its spikes counted on that grid. The model is saved with
`calcium.save_model` in `<workdir>/model` (ready for `python -m calcium.infer`) and applied with
`DeepSpike.infer` to every recording of `config.test_dirs` at its own frame rate, next to OASIS
AR2 on the same normalised traces: spikefinder correlation in 40 ms bins per recording, the mean
per set, and the paired difference to OASIS AR2 with its standard error over recordings.

Every recording is used unless `config.max_recordings` (per training folder) or
`config.max_test_recordings` caps them; a cap that drops recordings is logged, and so are
recordings shorter than a training window.
"""
import pathlib
import re

import jax
import numpy as np
from absl import logging

from calcium import data, deepspike, evaluation, train
from launch import app


def resolve_folder(folder: str) -> pathlib.Path:
  """`folder` itself where it is a directory, else `calcium.data.default_data_dir() / folder`."""
  path = pathlib.Path(folder)
  if path.is_dir():
    return path
  under_root = data.default_data_dir() / folder
  if under_root.is_dir():
    return under_root
  raise ValueError(f"no ground-truth folder {folder!r} (neither a directory nor one under "
                   f"{data.default_data_dir()}).")


def set_key(name: str) -> str:
  """Short summary key of a set: 'DS14-GCaMP6s-m-V1' -> 'DS14'."""
  return re.sub(r"\W", "_", name.split("-")[0])


def on_grid(rec: data.Recording, frame_rate: float, upsample: int, max_frames: int):
  """Normalised at the native rate, then on the `frame_rate` grid: (trace, spikes, valid)."""
  z = np.where(rec.valid, data.normalise(rec.fluorescence), np.nan)
  t, valid = rec.frame_times, rec.valid
  if abs(rec.frame_rate / frame_rate - 1.0) > 0.02:
    t, z, valid = data.resample_trace(t, z, valid, frame_rate)
  if max_frames:
    t, z, valid = t[:max_frames], z[:max_frames], valid[:max_frames]
  return z, data.spike_counts(rec.spike_times, t, upsample), valid


def experiment(config, run: app.Run) -> dict:
  if not config.train_dirs:
    raise ValueError("config.train_dirs must name at least one ground-truth folder.")
  tcfg = train.variant_config(config.train, "supervised")
  window = tcfg.snippet_frames + 2 * tcfg.buffer_frames
  traces, spikes, valid, train_names = [], [], [], []
  short = 0
  for folder in map(resolve_folder, config.train_dirs):
    name = data.data_set_description(folder)
    recs = data.select_recordings(data.load_folder(folder), config.max_recordings or None,
                                  seed=config.seed, name=name)
    for rec in recs:
      z, s, v = on_grid(rec, tcfg.frame_rate, tcfg.upsample, config.max_frames)
      if z.size < window or v.sum() < 2:
        short += 1
        continue
      traces.append(z)
      spikes.append(s)
      valid.append(v)
    train_names.append(data.data_set_name(folder))
  if short:
    logging.warning("%d training recordings shorter than a %d-frame window at %.1f Hz left out.",
                    short, window, tcfg.frame_rate)
  if not traces:
    raise ValueError("no training recording is long enough for one snippet plus its buffers.")
  logging.info("training on %d recordings of %d sets at %.1f Hz.", len(traces), len(train_names),
               tcfg.frame_rate)
  dataset = train.make_dataset(traces, spikes, valid, normalise=False)  # Normalised above.
  trainer = train.make_trainer(tcfg, dataset)
  state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                         config.num_chunks, name="general")
  model = deepspike.DeepSpike(tcfg, jax.device_get(state.recognition_params),
                              training_data=", ".join(train_names))
  model_dir = run.workdir / "model"
  if run.is_writer:
    deepspike.save_model(model_dir, model, overwrite=True)
  summary = {"train_recordings": len(traces), "train_sets": ", ".join(train_names),
             "model_dir": str(model_dir)}
  if config.oasis:
    from calcium import oasis_baseline
  set_corr, set_oasis, test_count = [], [], 0
  for folder in map(resolve_folder, config.test_dirs):
    name = data.data_set_name(folder)
    recs = data.select_recordings(data.load_folder(folder), config.max_test_recordings or None,
                                  seed=config.seed, name=data.data_set_description(folder))
    ours, oasis = [], []
    for rec in recs:
      n = config.max_test_frames or rec.frame_times.size
      t, f = rec.frame_times[:n], rec.fluorescence[:n]
      spk = rec.spike_times[rec.spike_times <= t[-1] + 0.5 / rec.frame_rate]
      est = model.infer(f, rec.frame_rate, frame_times=t, name=rec.name)
      ours.append(evaluation.spikefinder_correlation(est.expected_counts, t, spk))
      if config.oasis:
        z = data.fill_nan(data.normalise(f))
        oasis.append(evaluation.spikefinder_correlation(oasis_baseline.oasis_deconvolve(z, 2), t,
                                                        spk))
    key = set_key(name)
    summary[f"{key}_corr"] = float(np.nanmean(ours))
    summary[f"{key}_recordings"] = len(recs)
    set_corr.append(summary[f"{key}_corr"])
    test_count += len(recs)
    if config.oasis:
      diff = np.asarray(ours) - np.asarray(oasis)
      diff = diff[np.isfinite(diff)]
      summary[f"{key}_oasis_ar2_corr"] = float(np.nanmean(oasis))
      summary[f"{key}_minus_oasis_ar2_corr"] = float(np.mean(diff)) if diff.size else np.nan
      summary[f"{key}_minus_oasis_ar2_se"] = (float(np.std(diff, ddof=1) / np.sqrt(diff.size))
                                              if diff.size > 1 else np.nan)
      set_oasis.append(summary[f"{key}_oasis_ar2_corr"])
    run.log_metrics(0, {f"{key}_corr": summary[f"{key}_corr"]})
  summary["test_recordings"] = test_count
  if set_corr:
    summary["test_corr"] = float(np.mean(set_corr))  # Mean over sets of the per-set means.
  if set_oasis:
    summary["test_oasis_ar2_corr"] = float(np.mean(set_oasis))
    summary["test_minus_oasis_ar2_corr"] = summary["test_corr"] - summary["test_oasis_ar2_corr"]
  return summary


if __name__ == "__main__":
  app.run(experiment)
