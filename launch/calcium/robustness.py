"""One general DeepSpike model against frame rate and noise level, and its posterior's calibration.

Trains the supervised general model of `launch.calcium.general` (its data preparation, CASCADE's
frame-rate and noise augmentation included; or loads `config.model_dir`), then on every recording
of `config.test_dirs` (held out from training):

a. *Frame rate*: each recording decimated to every rate of `config.eval_frame_rates` at or below
   its own (`calcium.augmentation.decimate`, `config.decimation`: frame means by default);
   DeepSpike (`DeepSpike.infer` at that rate) beside OASIS AR1 and AR2 on the same decimated,
   normalised traces. Score: spikefinder correlation in 40 ms bins (Berens et al. 2018) with every
   frame's prediction spread over its interval (`evaluation.spread_correlation`), on one set of
   bins from the recording's start, so every rate is scored against the same truth. Per rate: the
   mean over recordings and the paired difference to each OASIS with its standard error.
b. *Noise level*: each recording at its own rate with Gaussian noise added up to each CASCADE
   level of `config.eval_noise_levels` (`augmentation.add_noise_to_level`; recordings already
   noisier are skipped at that level); the same columns.
c. *Calibration* at `config.calibration_rate` (default the model's own, where a frame is one of
   the network's bins): a reliability diagram of P(>= 1 spike) per frame against the frequency of
   frames with a spike (`calibration.reliability`, counts per bin), and the coverage of the
   equal-tailed credible intervals of the spike count in windows of `config.coverage_windows_s`
   from `config.num_posterior_samples` posterior samples, as sampled (ends included) and by the
   randomised PIT (`calibration.interval_coverage`, `pit_coverage`; observed fraction against the
   nominal level, with its binomial standard error over windows).

Writes figures `accuracy.png`, `reliability.png`, `coverage.png` and the tables in `results.md`.
"""
import time

import jax
import matplotlib
import numpy as np
from absl import logging

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import augmentation, calibration, data, deepspike, evaluation  # noqa: E402
from launch import app  # noqa: E402
from launch.calcium import general  # noqa: E402

METHODS = ("deepspike", "oasis_ar1", "oasis_ar2")
LABELS = {"deepspike": "DeepSpike", "oasis_ar1": "OASIS AR1", "oasis_ar2": "OASIS AR2"}


def tag(value: float) -> str:
  """Summary-key form of a number: 7.5 -> '7p5', 60.0 -> '60'."""
  return f"{value:g}".replace(".", "p").replace("-", "m")


def paired(a, b) -> tuple[float, float, int]:
  """Mean of a - b over the recordings where both are finite, its standard error, the count."""
  d = np.asarray(a, float) - np.asarray(b, float)
  d = d[np.isfinite(d)]
  if not d.size:
    return float("nan"), float("nan"), 0
  se = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
  return float(np.mean(d)), se, int(d.size)


def score_recording(model, t, f, valid, spikes, origin, name, oasis: bool,
                    downsample: str = deepspike.DOWNSAMPLE) -> dict:
  """40 ms correlations (`evaluation.spread_correlation` from `origin` to the end of the last
  frame) of DeepSpike and, with `oasis`, OASIS AR1 and AR2 on one (decimated or noisy) trace."""
  rate = 1.0 / float(np.median(np.diff(t)))
  end = t[-1] + 0.5 / rate
  f = np.where(valid, f, np.nan)
  est = model.infer(f, rate, frame_times=t, downsample=downsample, name=name)
  out = {"deepspike": evaluation.spread_correlation(est.expected_counts, t, spikes, origin, end)}
  if oasis:
    from calcium import oasis_baseline
    z = data.fill_nan(data.normalise(f))
    for order in (1, 2):
      out[f"oasis_ar{order}"] = evaluation.spread_correlation(
          oasis_baseline.oasis_deconvolve(z, order), t, spikes, origin, end)
  return out


def condition_summary(prefix: str, scores: list[dict], methods) -> dict:
  """Means per method and paired differences DeepSpike - OASIS over one condition's recordings."""
  out = {f"{prefix}_recordings": len(scores)}
  for m in methods:
    out[f"{prefix}_{m}_corr"] = (float(np.nanmean([s[m] for s in scores])) if scores
                                 else float("nan"))
    # Per recording (test order), so that two runs can be compared pairwise.
    out[f"{prefix}_{m}_per_recording"] = [float(s[m]) for s in scores]
  for m in methods[1:]:
    diff, se, _ = paired([s["deepspike"] for s in scores], [s[m] for s in scores])
    out[f"{prefix}_minus_{m}_corr"], out[f"{prefix}_minus_{m}_se"] = diff, se
  return out


def load_tests(config) -> list[data.Recording]:
  tests = []
  for folder in map(general.resolve_folder, config.test_dirs):
    recs = data.select_recordings(data.load_folder(folder), config.max_test_recordings or None,
                                  seed=config.seed, name=data.data_set_description(folder))
    n = config.max_test_frames
    for rec in recs:
      if n and rec.frame_times.size > n:
        last = rec.frame_times[n - 1] + 0.5 / rec.frame_rate
        rec = rec._replace(frame_times=rec.frame_times[:n], fluorescence=rec.fluorescence[:n],
                           valid=rec.valid[:n], spike_times=rec.spike_times[rec.spike_times < last],
                           nan_frames=int((~rec.valid[:n]).sum()))
      tests.append(rec)
  if not tests:
    raise ValueError("config.test_dirs holds no recording.")
  return tests


def at_rate(rec: data.Recording, rate: float, method: str):
  """(t, f, valid) of `rec` at `rate`: as recorded within 2 %, else `augmentation.decimate`."""
  if abs(rate / rec.frame_rate - 1.0) <= 0.02:
    return rec.frame_times, rec.fluorescence, rec.valid
  return augmentation.decimate(rec.frame_times, rec.fluorescence, rec.valid, rate, method)


def accuracy_against_rate(config, model, tests, methods) -> tuple[dict, list]:
  summary, rows = {}, []
  for rate in config.eval_frame_rates:
    t0 = time.perf_counter()
    scores = []
    for rec in tests:
      if rate > rec.frame_rate * 1.02:
        continue
      t, f, v = at_rate(rec, rate, config.decimation)
      origin = rec.frame_times[0] - 0.5 / rec.frame_rate
      scores.append(score_recording(model, t, f, v, rec.spike_times, origin, rec.name,
                                    config.oasis, config.downsample))
    block = condition_summary(f"rate_{tag(rate)}", scores, methods)
    summary.update(block)
    rows.append((rate, block))
    logging.info("frame rate %g Hz: %d recordings, DeepSpike %.3f%s (%.1f s).", rate, len(scores),
                 block[f"rate_{tag(rate)}_deepspike_corr"],
                 f", OASIS AR2 {block[f'rate_{tag(rate)}_oasis_ar2_corr']:.3f}" if config.oasis
                 else "", time.perf_counter() - t0)
  return summary, rows


def accuracy_against_noise(config, model, tests, methods) -> tuple[dict, list]:
  summary, rows = {}, []
  key = jax.random.key(config.seed + 1)
  for j, level in enumerate(config.eval_noise_levels):
    t0 = time.perf_counter()
    scores, skipped = [], 0
    for i, rec in enumerate(tests):
      f = np.where(rec.valid, rec.fluorescence, np.nan)
      if augmentation.cascade_noise_level(f, rec.frame_rate) > level:
        skipped += 1
        continue
      noisy, _ = augmentation.add_noise_to_level(f, rec.frame_rate, level,
                                                 jax.random.fold_in(jax.random.fold_in(key, j), i))
      origin = rec.frame_times[0] - 0.5 / rec.frame_rate
      scores.append(score_recording(model, rec.frame_times, noisy, rec.valid, rec.spike_times,
                                    origin, rec.name, config.oasis, config.downsample))
    block = condition_summary(f"noise_{tag(level)}", scores, methods)
    block[f"noise_{tag(level)}_skipped"] = skipped
    summary.update(block)
    rows.append((level, block))
    logging.info("noise level %g: %d recordings (%d already noisier), DeepSpike %.3f (%.1f s).",
                 level, len(scores), skipped, block[f"noise_{tag(level)}_deepspike_corr"],
                 time.perf_counter() - t0)
  return summary, rows


def posterior_calibration(config, model, tests) -> tuple[dict, dict]:
  """Reliability and coverage numbers at the calibration rate (module docstring, c)."""
  rate = float(config.calibration_rate or model.frame_rate)
  probs, events, window_samples, window_counts = [], [], {}, {}
  windows = {w: max(1, int(round(w * rate))) for w in config.coverage_windows_s}
  predicted_total, observed_total, used = 0.0, 0.0, 0
  key = jax.random.key(config.seed + 2)
  for i, rec in enumerate(tests):
    if rate > rec.frame_rate * 1.02:
      continue
    t, f, v = at_rate(rec, rate, config.decimation)
    actual = 1.0 / float(np.median(np.diff(t)))
    est = model.infer(np.where(v, f, np.nan), actual, frame_times=t,
                      num_samples=int(config.num_posterior_samples),
                      key=jax.random.fold_in(key, i), name=rec.name)
    counts = data.spike_counts(rec.spike_times, t)
    probs.append(np.where(v, est.probability, np.nan))
    events.append(np.where(v, (counts >= 1).astype(float), np.nan))
    predicted_total += float(np.nansum(est.expected_counts))
    observed_total += float(counts[v].sum())
    used += 1
    for w, frames in windows.items():
      if t.size < frames:
        continue
      window_samples.setdefault(w, []).append(calibration.window_sums(est.samples, frames))
      window_counts.setdefault(w, []).append(
          calibration.window_sums(np.where(v, counts, np.nan), frames))
  if not used:
    raise ValueError(f"no test recording reaches the calibration rate {rate} Hz.")
  rel = calibration.reliability(np.concatenate(probs), np.concatenate(events),
                                int(config.reliability_bins))
  summary = {"calibration_rate": rate, "calibration_recordings": used,
             "calibration_frames": int(rel.counts.sum()), "reliability_ece": rel.ece,
             "reliability_brier": rel.brier,
             "calibration_count_ratio": predicted_total / max(observed_total, 1.0),
             "reliability_predicted": rel.predicted.tolist(),
             "reliability_observed": rel.observed.tolist(),
             "reliability_counts": rel.counts.tolist()}
  levels = tuple(config.credible_levels)
  coverage = {"levels": levels, "windows": {}}
  for w in windows:
    if w not in window_samples:
      continue
    s = np.concatenate(window_samples[w], axis=1)
    y = np.concatenate(window_counts[w])
    ok = np.isfinite(y) & np.all(np.isfinite(s), axis=0)
    inc = calibration.interval_coverage(s, y, levels)
    pit = calibration.pit_coverage(s, y, levels, jax.random.fold_in(key, 10_000 + windows[w]))
    n = int(ok.sum())
    coverage["windows"][w] = {"frames": windows[w], "n": n, "interval": inc, "pit": pit}
    summary[f"coverage_w{tag(w)}_windows"] = n
    for c, a, b in zip(levels, inc, pit):
      summary[f"interval_coverage_w{tag(w)}_c{tag(c)}"] = float(a)
      summary[f"pit_coverage_w{tag(w)}_c{tag(c)}"] = float(b)
      summary[f"coverage_w{tag(w)}_c{tag(c)}_se"] = float(calibration.binomial_se(c, n))
  return summary, {"reliability": rel, "coverage": coverage}


def plot_accuracy(run, rate_rows, noise_rows, methods):
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, rows, prefix, xlabel in ((axes[0], rate_rows, "rate", "frame rate (Hz)"),
                                   (axes[1], noise_rows, "noise", "noise level nu (%/sqrt(Hz))")):
    x = [r for r, _ in rows]
    for m in methods:
      ax.plot(x, [b[f"{prefix}_{tag(r)}_{m}_corr"] for r, b in rows], "o-", label=LABELS[m])
    ax.set(xlabel=xlabel, ylabel="correlation (40 ms bins)", xscale="log")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.minorticks_off()
    ax.legend()
  fig.tight_layout()
  run.save_figure("accuracy", fig)
  plt.close(fig)


def plot_calibration(run, cal: dict, rate: float):
  rel = cal["reliability"]
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                    gridspec_kw={"height_ratios": (3, 1)})
  ok = rel.counts > 0
  se = calibration.binomial_se(rel.observed[ok], rel.counts[ok])
  top.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
  top.errorbar(rel.predicted[ok], rel.observed[ok], yerr=2 * se, fmt="o-", ms=4,
               label="DeepSpike (+- 2 SE)")
  top.set(ylabel="observed frequency of a spike",
          title=f"reliability per {1000 / rate:.0f} ms frame (ECE {rel.ece:.3f})")
  top.legend()
  centres = (rel.edges[1:] + rel.edges[:-1]) / 2
  bottom.bar(centres, rel.counts, width=rel.edges[1] - rel.edges[0], color="0.6")
  bottom.set(yscale="log", xlabel="predicted P(>= 1 spike)", ylabel="frames")
  fig.tight_layout()
  run.save_figure("reliability", fig)
  plt.close(fig)
  cov = cal["coverage"]
  fig, ax = plt.subplots(figsize=(5, 4.5))
  ax.plot([0, 1], [0, 1], "k:", lw=1)
  for w, d in cov["windows"].items():
    se = 2 * calibration.binomial_se(np.asarray(cov["levels"]), d["n"])
    ax.errorbar(cov["levels"], d["pit"], yerr=se, fmt="o-", label=f"{w:g} s, randomised PIT")
    ax.plot(cov["levels"], d["interval"], "s--", label=f"{w:g} s, interval as sampled")
  ax.set(xlabel="nominal level", ylabel="observed coverage", xlim=(0.4, 1), ylim=(0, 1),
         title="credible intervals of the spike count")
  ax.legend(fontsize=8)
  fig.tight_layout()
  run.save_figure("coverage", fig)
  plt.close(fig)


def results_markdown(summary, rate_rows, noise_rows, cal, methods) -> str:
  """The three tables of the README's results section."""
  def row(label, prefix, block):
    cells = [f"{block[f'{prefix}_{m}_corr']:.3f}" for m in methods]
    cells += [f"{block[f'{prefix}_minus_{m}_corr']:+.3f} +- {block[f'{prefix}_minus_{m}_se']:.3f}"
              for m in methods[1:]]
    return f"| {label} | {block[f'{prefix}_recordings']} | " + " | ".join(cells) + " |"
  head = ("| {} | recordings | " + " | ".join(LABELS[m] for m in methods)
          + "".join(f" | DeepSpike - {LABELS[m]}" for m in methods[1:]) + " |")
  sep = "|---" * (2 + len(methods) + len(methods) - 1) + "|"
  lines = ["### Accuracy against frame rate", "", head.format("frame rate (Hz)"), sep]
  lines += [row(f"{r:g}", f"rate_{tag(r)}", b) for r, b in rate_rows]
  lines += ["", "### Accuracy against added noise", "", head.format("noise level nu"), sep]
  lines += [row(f"{lv:g}", f"noise_{tag(lv)}", b) for lv, b in noise_rows]
  rel = cal["reliability"]
  lines += ["", f"### Calibration at {summary['calibration_rate']:g} Hz "
            f"({summary['calibration_frames']} frames, ECE {rel.ece:.3f}, Brier "
            f"{rel.brier:.4f}, expected / true spikes {summary['calibration_count_ratio']:.2f})",
            "", "| predicted P(>= 1 spike) | frames | mean predicted | observed frequency |",
            "|---|---|---|---|"]
  for lo, hi, n, p, o in zip(rel.edges[:-1], rel.edges[1:], rel.counts, rel.predicted,
                             rel.observed):
    lines.append(f"| {lo:.1f}-{hi:.1f} | {n} | {p:.3f} | {o:.3f} |" if n
                 else f"| {lo:.1f}-{hi:.1f} | 0 | - | - |")
  cov = cal["coverage"]
  lines += ["", "| window | windows | nominal | interval as sampled | randomised PIT | "
            "binomial SE |", "|---|---|---|---|---|---|"]
  for w, d in cov["windows"].items():
    for c, a, b in zip(cov["levels"], d["interval"], d["pit"]):
      lines.append(f"| {w:g} s ({d['frames']} frames) | {d['n']} | {c:g} | {a:.3f} | {b:.3f} | "
                   f"{float(calibration.binomial_se(c, d['n'])):.3f} |")
  return "\n".join(lines) + "\n"


def experiment(config, run: app.Run) -> dict:
  if config.decimation not in augmentation.DECIMATION_METHODS:
    raise ValueError(f"config.decimation must be one of {augmentation.DECIMATION_METHODS}; got "
                     f"{config.decimation!r}.")
  t0 = time.perf_counter()
  if config.model_dir:
    model = deepspike.load_model(config.model_dir)
    summary = {"model_dir": str(config.model_dir), "train_sets": model.training_data}
  else:
    model, summary = general.train_model(config, run, name="robustness")
  summary["train_s"] = time.perf_counter() - t0
  tests = load_tests(config)
  summary["test_recordings"] = len(tests)
  methods = METHODS if config.oasis else METHODS[:1]
  logging.info("evaluating on %d held-out recordings.", len(tests))
  rate_summary, rate_rows = accuracy_against_rate(config, model, tests, methods)
  noise_summary, noise_rows = accuracy_against_noise(config, model, tests, methods)
  t1 = time.perf_counter()
  cal_summary, cal = posterior_calibration(config, model, tests)
  logging.info("calibration: ECE %.3f over %d frames (%.1f s).", cal_summary["reliability_ece"],
               cal_summary["calibration_frames"], time.perf_counter() - t1)
  summary.update(rate_summary)
  summary.update(noise_summary)
  summary.update(cal_summary)
  if run.is_writer:
    plot_accuracy(run, rate_rows, noise_rows, methods)
    (run.workdir / "results.md").write_text(
        results_markdown(summary, rate_rows, noise_rows, cal, methods))
    plot_calibration(run, cal, summary["calibration_rate"])
  summary["eval_s"] = time.perf_counter() - t0 - summary["train_s"]
  return summary


if __name__ == "__main__":
  app.run(experiment)
