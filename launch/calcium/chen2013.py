"""Chen et al. 2013 GCaMP6s ground truth, cross-validated over recordings (Speiser 2017, Sec. 3.2).

`config.data_dir` may name any CASCADE-format ground-truth folder (default: the shared DS14 set);
the set's name comes from its folder and README, every recording is used unless
`config.max_recordings` caps them, and a cap that drops recordings is logged.

Recordings are split into folds; for each fold DeepSpike (factorised CNN, SCF generative model with
a rise time, one parameter set per training cell, initialised from each trace's autocovariance) is
trained on the other folds in each training variant of `calcium.train.VARIANTS` (the VIMCO bound,
traces simulated from the initial models, cross-entropy, or bound and cross-entropy), and tested
on the held-out recordings next to OASIS AR1 / AR2 on the same traces. Scores: spikefinder
correlation (40 ms bins, mean over test recordings), spike-count ratio (DeepSpike
only: OASIS is in arbitrary units) and timing error.
"""
import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import data, evaluation, oasis_baseline, train  # noqa: E402
from launch import app  # noqa: E402


def _dataset(recs, max_frames, upsample):
  traces = [r.fluorescence[:max_frames] for r in recs]
  spikes = [data.spike_counts(r.spike_times, r.frame_times[:max_frames], upsample) for r in recs]
  valid = [r.valid[:max_frames] for r in recs]
  return train.make_dataset(traces, spikes, valid)


def experiment(config, run: app.Run) -> dict:
  unknown = [v for v in config.variants if v not in train.VARIANTS]
  if unknown:  # Before any data is loaded or trained.
    raise ValueError(f"config.variants: unknown variant {unknown[0]!r}; expected one of "
                     f"{train.VARIANTS}.")
  folder = data.ground_truth_folder(config.data_dir or None)
  name = data.data_set_description(folder)
  recs = data.load_folder(folder)
  recs = [data.match_frame_rate(r, config.train.frame_rate) for r in recs]
  # Every recording, in a seeded order; `max_recordings` (0 or absent: all) caps them, logged.
  recs = data.select_recordings(recs, config.get("max_recordings") or None, seed=config.seed,
                                name=name)
  order = np.arange(len(recs))
  folds = np.array_split(order, config.num_folds)[:config.max_folds]
  upsample = int(config.train.upsample)  # Model bins per frame (super-resolution).
  scores = {v: [] for v in config.variants}
  scores.update({"oasis_ar1": [], "oasis_ar2": []})
  fold_scores = {k: [] for k in scores}  # Mean over each fold's test recordings.
  ratios = {v: [] for v in config.variants}
  lags = {v: [] for v in config.variants}
  example = None
  for fi, test_idx in enumerate(folds):
    train_idx = [i for i in order if i not in set(test_idx)]
    train_ds = _dataset([recs[i] for i in train_idx], config.max_frames, upsample)
    test_recs = [recs[i] for i in test_idx]
    test_ds = _dataset(test_recs, config.max_frames, upsample)
    times = [r.frame_times[:config.max_frames] for r in test_recs]
    spk = [r.spike_times[r.spike_times <= t[-1] + 0.02] for r, t in zip(test_recs, times)]
    for variant in config.variants:
      # Speiser et al. 2017, Sec. 2.4 (calcium.train.variant_config); "simulated" pretrains for
      # the whole loop of num_chunks chunks.
      tcfg = train.variant_config(
          config.train, variant, total_steps=config.num_chunks * config.train.steps_per_chunk,
          combined=config.combined, unsupervised=config.unsupervised)
      trainer = train.make_trainer(tcfg, train_ds)
      state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed + fi)),
                             trainer.chunk, config.num_chunks, name=f"{variant}_fold{fi}")
      # Expected spikes per frame: the bin probabilities summed over each frame's fine bins.
      infer = jax.jit(lambda p, f: train.infer(trainer.recognition, p, f, upsample=upsample))
      rates = [np.asarray(infer(state.recognition_params, f[:n]))[:, 0]
               for f, n in zip(test_ds.fluorescence, test_ds.lengths)]
      ev = evaluation.evaluate(rates, times, spk)
      scores[variant] += ev["per_recording"]
      fold_scores[variant].append(ev["correlation"])
      ratios[variant].append(ev["count_ratio"])
      lags[variant].append(ev["timing_error_s"])
      if example is None:
        example = (test_ds.fluorescence[0, :, 0], rates[0], times[0], spk[0], variant)
      run.log_metrics(fi, {f"{variant}_corr": ev["correlation"]})
    for order_ in (1, 2):
      fold = []
      for r, t, s in zip(test_recs, times, spk):
        f = data.fill_nan(data.normalise(r.fluorescence[:config.max_frames]))
        est = oasis_baseline.oasis_deconvolve(f, order_)
        fold.append(evaluation.spikefinder_correlation(est, t, s))
      scores[f"oasis_ar{order_}"] += fold
      fold_scores[f"oasis_ar{order_}"].append(float(np.nanmean(fold)))
  summary = {f"{k}_corr": float(np.nanmean(v)) for k, v in scores.items()}
  for k, v in fold_scores.items():
    summary.update({f"{k}_corr_fold{i}": float(c) for i, c in enumerate(v)})
  for v in config.variants:  # Paired over the same test recordings.
    summary[f"{v}_minus_oasis_ar2_corr"] = float(np.nanmean(
        np.asarray(scores[v]) - np.asarray(scores["oasis_ar2"])))
  summary.update({f"{k}_count_ratio": float(np.mean(v)) for k, v in ratios.items()})
  summary.update({f"{k}_timing_error_s": float(np.mean(v)) for k, v in lags.items()})
  summary["test_recordings"] = int(sum(len(f) for f in folds))
  summary["recordings"] = len(recs)
  summary["data_set"] = name
  fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
  f, rate, t, s, variant = example
  n = min(len(t), 1800)
  axes[0].plot(t[:n], f[:n], lw=0.6)
  axes[0].plot(s[s <= t[n - 1]], np.full(np.sum(s <= t[n - 1]), f[:n].max()), "k|", ms=10)
  axes[0].set(ylabel="fluorescence (noise std)", title=f"{name}: held-out recording")
  axes[1].plot(t[:n], rate[:n], lw=0.8, label=f"DeepSpike ({variant})")
  axes[1].set(xlabel="time (s)", ylabel="expected spikes / frame")
  axes[1].legend()
  run.save_figure("chen2013_example", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
