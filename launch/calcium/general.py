"""One general DeepSpike model for many indicators: trained on ground-truth sets, saved, tested.

The recognition network (Speiser et al. 2017; supervised variant, Sec. 2.4: cross-entropy
against the electrophysiological spikes) is trained on every recording of every folder in
`config.train_dirs` (CASCADE format; names relative to the shared data root or paths). With
`config.augment` (CASCADE's augmentation, `calcium.augmentation`) every recording is first copied
at each training frame rate (bin-averaged, at or below its own) and each noise level (Gaussian
noise added up to CASCADE's nu); each copy is normalised at its rate and linearly interpolated
onto one grid at `config.train.frame_rate`, its spikes counted on that grid. The model is saved with
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

from calcium import augmentation, data, deepspike, evaluation, train
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


def on_grid(rec: data.Recording, frame_rate: float, upsample: int, max_frames: int,
            downsample: str = "interpolate"):
  """(trace, spikes, valid) on the `frame_rate` grid: normalised at the native rate, then
  interpolated; or, with `downsample="average"` and a recording faster than the grid, its frames
  averaged in the grid's bins (`augmentation.bin_average`) and normalised at the grid's rate, as
  `DeepSpike.infer(downsample="average")` sees it."""
  if downsample == "average" and rec.frame_rate > 1.02 * frame_rate:
    t, f, valid, _ = augmentation.bin_average(rec.frame_times, rec.fluorescence, rec.valid,
                                              rec.spike_times, frame_rate)
    z = np.where(valid, data.normalise(np.where(valid, f, np.nan)), np.nan)
  else:
    z = np.where(rec.valid, data.normalise(rec.fluorescence), np.nan)
    t, valid = rec.frame_times, rec.valid
    if abs(rec.frame_rate / frame_rate - 1.0) > 0.02:
      t, z, valid = data.resample_trace(t, z, valid, frame_rate)
  if max_frames:
    t, z, valid = t[:max_frames], z[:max_frames], valid[:max_frames]
  return z, data.spike_counts(rec.spike_times, t, upsample), valid


def training_data(config, tcfg, train_dirs=None) -> dict:
  """Every recording of `train_dirs` (default `config.train_dirs`) as training copies on the
  `tcfg.frame_rate` grid.

  Without augmentation (`config.augment.frame_rates` and `noise_levels` both empty) one copy per
  recording, normalised at its native rate (`on_grid`). Otherwise the copies of
  `calcium.augmentation.augmented_copies`: each recording brought to each training frame rate at
  or below its own and to each noise level at or above its own (CASCADE's augmentation), each
  normalised at that rate and put on the model's grid. Copies shorter than one training window
  are left out (logged).

  Returns:
    {"traces", "spikes", "valid": lists per copy, "recordings": count, "sets": names,
     "copies_per_rate": {rate: count}, "copies_per_level": {level: count}}.
  """
  window = tcfg.snippet_frames + 2 * tcfg.buffer_frames
  augment = config.get("augment", None)
  rates = tuple(augment.frame_rates) if augment is not None else ()
  levels = tuple(augment.noise_levels) if augment is not None else ()
  warps = tuple(augment.get("time_warps", ())) if augment is not None else ()
  out = {"traces": [], "spikes": [], "valid": [], "recordings": 0, "sets": [],
         "copies_per_rate": {}, "copies_per_level": {}}
  short = 0
  key = jax.random.key(config.seed)
  train_dirs = config.train_dirs if train_dirs is None else train_dirs
  for folder in map(resolve_folder, train_dirs):
    name = data.data_set_description(folder)
    recs = data.select_recordings(data.load_folder(folder), config.max_recordings or None,
                                  seed=config.seed, name=name)
    for rec in recs:
      out["recordings"] += 1
      if rates or levels or warps:
        copies = augmentation.augmented_copies(
            rec, rates, levels, tcfg.frame_rate, jax.random.fold_in(key, out["recordings"]),
            upsample=tcfg.upsample, max_frames=config.max_frames, time_warps=warps)
        copies = [(c.trace, c.spikes, c.valid, c.frame_rate, c.noise_level) for c in copies]
      else:
        copies = [on_grid(rec, tcfg.frame_rate, tcfg.upsample, config.max_frames)
                  + (rec.frame_rate, 0.0)]
      for z, s, v, rate, level in copies:
        if z.size < window or v.sum() < 2:
          short += 1
          continue
        out["traces"].append(z)
        out["spikes"].append(s)
        out["valid"].append(v)
        # Keyed by the asked rate (a copy within 2 % of its recording's rate keeps that rate).
        rate_key = f"{min(rates, key=lambda r: abs(r - rate)):g}" if rates else "native"
        out["copies_per_rate"][rate_key] = out["copies_per_rate"].get(rate_key, 0) + 1
        out["copies_per_level"][f"{level:g}"] = out["copies_per_level"].get(f"{level:g}", 0) + 1
    out["sets"].append(data.data_set_name(folder))
  if short:
    logging.warning("%d training copies shorter than a %d-frame window at %.1f Hz left out.",
                    short, window, tcfg.frame_rate)
  if not out["traces"]:
    raise ValueError("no training recording is long enough for one snippet plus its buffers.")
  logging.info("training on %d copies of %d recordings of %d sets at %.1f Hz (copies per rate: "
               "%s; per noise level: %s).", len(out["traces"]), out["recordings"],
               len(out["sets"]), tcfg.frame_rate, out["copies_per_rate"],
               out["copies_per_level"])
  return out


def train_model(config, run: app.Run, name: str = "general", *, train_dirs=None,
                model_dir=None) -> tuple[deepspike.DeepSpike, dict]:
  """Trains the supervised network on `training_data(config, ...)` of `train_dirs` (default
  `config.train_dirs`) with `run.train_loop` (loop `name`) and saves it in `model_dir` (default
  `<workdir>/model`); returns the model and summary fields."""
  train_dirs = config.train_dirs if train_dirs is None else tuple(train_dirs)
  if not train_dirs:
    raise ValueError("config.train_dirs must name at least one ground-truth folder.")
  tcfg = train.variant_config(config.train, "supervised")
  prepared = training_data(config, tcfg, train_dirs)
  dataset = train.make_dataset(prepared["traces"], prepared["spikes"], prepared["valid"],
                               normalise=False)  # Normalised above.
  # The supervised loss is the cross-entropy alone: the per-cell generative models take no part,
  # so they are not moment-initialised (which costs a pass over every copy).
  n = dataset.fluorescence.shape[0]
  gparams = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)),
                         train.build_model(tcfg).init())
  trainer = train.make_trainer(tcfg, dataset, generative_params=gparams)
  state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                         config.num_chunks, name=name)
  train_names = prepared["sets"]
  model = deepspike.DeepSpike(tcfg, jax.device_get(state.recognition_params),
                              training_data=", ".join(train_names))
  model_dir = run.workdir / "model" if model_dir is None else pathlib.Path(model_dir)
  if run.is_writer:
    deepspike.save_model(model_dir, model, overwrite=True)
  summary = {"train_recordings": prepared["recordings"], "train_copies": len(prepared["traces"]),
             "train_sets": ", ".join(train_names), "model_dir": str(model_dir)}
  summary.update({f"train_copies_rate_{k}": v for k, v in prepared["copies_per_rate"].items()})
  summary.update({f"train_copies_noise_{k}": v for k, v in prepared["copies_per_level"].items()})
  return model, summary


def held_out_recordings(folder, config) -> list[data.Recording]:
  """Every recording of ground-truth `folder` in the seeded order (`config.seed`), the first
  `config.max_test_recordings` of them when that is set (0: all; a cap that drops is logged)."""
  folder = resolve_folder(folder)
  return data.select_recordings(data.load_folder(folder), config.max_test_recordings or None,
                                seed=config.seed, name=data.data_set_description(folder))


def scoring_window(rec: data.Recording, max_frames: int):
  """(frame times, fluorescence, spike times) of the first `max_frames` frames of `rec` (0: all),
  the spikes up to half a frame after the last frame."""
  n = max_frames or rec.frame_times.size
  t, f = rec.frame_times[:n], rec.fluorescence[:n]
  return t, f, rec.spike_times[rec.spike_times <= t[-1] + 0.5 / rec.frame_rate]


def score_recordings(model: deepspike.DeepSpike, recs, max_frames: int = 0,
                     oasis_orders=(2,), downsample: str = deepspike.DOWNSAMPLE
                     ) -> dict[str, list[float]]:
  """Spikefinder correlation (40 ms bins) per recording of `model` (`DeepSpike.infer` at the
  recording's own rate), key "deepspike", and of OASIS AR(p) for each p in `oasis_orders` on the
  same normalised traces, keys "oasis_ar{p}"; each list in the order of `recs`, on their first
  `max_frames` frames (`scoring_window`)."""
  if oasis_orders:
    from calcium import oasis_baseline
  out = {"deepspike": []}
  out.update({f"oasis_ar{p}": [] for p in oasis_orders})
  for rec in recs:
    t, f, spk = scoring_window(rec, max_frames)
    est = model.infer(f, rec.frame_rate, frame_times=t, downsample=downsample, name=rec.name)
    out["deepspike"].append(evaluation.spikefinder_correlation(est.expected_counts, t, spk))
    if oasis_orders:
      z = data.fill_nan(data.normalise(f))
      for p in oasis_orders:
        out[f"oasis_ar{p}"].append(evaluation.spikefinder_correlation(
            oasis_baseline.oasis_deconvolve(z, p), t, spk))
  return out


def experiment(config, run: app.Run) -> dict:
  model, summary = train_model(config, run)
  set_corr, set_oasis, test_count = [], [], 0
  for folder in map(resolve_folder, config.test_dirs):
    name = data.data_set_name(folder)
    recs = held_out_recordings(folder, config)
    scores = score_recordings(model, recs, config.max_test_frames,
                              oasis_orders=(2,) if config.oasis else (),
                              downsample=config.downsample)
    ours = scores["deepspike"]
    key = set_key(name)
    summary[f"{key}_corr"] = float(np.nanmean(ours))
    summary[f"{key}_recordings"] = len(recs)
    set_corr.append(summary[f"{key}_corr"])
    test_count += len(recs)
    if config.oasis:
      oasis = scores["oasis_ar2"]
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
