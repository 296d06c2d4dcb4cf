"""Leave-one-data-set-out evaluation of the general DeepSpike model against OASIS (issue 21).

For every set of `config.held_out` (default: every set of `config.sets`, the ten shared
ground-truth sets) as the held-out fold:

1. the general supervised model of `launch.calcium.general` (`general.train_model`: its data
   preparation and CASCADE's augmentation) is trained on the other sets of `config.sets` and saved
   in `<workdir>/models/<SET>`;
2. it is scored on every recording of the held-out set at the recording's own rate
   (`general.score_recordings`: spikefinder correlation in 40 ms bins), beside OASIS AR1 and AR2
   on the same normalised traces;
3. each label-free variant of `config.label_free.variants` ("unsupervised": the VIMCO bound after
   a warm start on simulated traces; "unsupervised_warm": the VIMCO bound from the network of
   step 1, which never saw the held-out set [O]; "simulated": simulated traces only; `calcium.
   train.variant_config`) is fitted on the held-out set's own traces, labels removed, for
   `config.label_free.seeds` seeds, and scored on the same recordings (transductive: it has seen
   the test traces, never their spikes).

Per set: the mean correlation of each method, and the paired differences DeepSpike - OASIS AR2,
DeepSpike - OASIS AR1 (and variant - OASIS AR2) per recording, with their standard errors over the
set's recordings. Over sets: the mean of the set means, the worst set's paired difference, the
count of sets where DeepSpike is above OASIS AR2, and the paired difference pooled over every
recording of every fold.

Resumable: each finished fold is written to `<workdir>/folds/<SET>.json` (per-recording scores),
and a restarted run in the same workdir loads it instead of training again; a fold interrupted
during training resumes from its training loop's last checkpoint (loops are named
`supervised_<SET>` and `<variant>_<SET>_seed<i>`). Writes `results.md` (the table) and
`figures/leave_one_out.png` (per-set bars with standard errors).
"""
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from absl import logging

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import data, deepspike, train  # noqa: E402
from launch import app  # noqa: E402
from launch.calcium import general  # noqa: E402
from launch.calcium.configs.leave_one_out import LABEL_FREE_VARIANTS  # noqa: E402
from launch.calcium.robustness import paired  # noqa: E402

BASELINES = ("oasis_ar1", "oasis_ar2")
LABELS = {"deepspike": "DeepSpike", "oasis_ar1": "OASIS AR1", "oasis_ar2": "OASIS AR2",
          "unsupervised": "unsupervised", "simulated": "simulated",
          "unsupervised_warm": "unsupervised (warm)"}


def folds(config) -> list[tuple[str, str, tuple[str, ...]]]:
  """(key, held-out set, training sets) per fold, in the order of `config.held_out` (or
  `config.sets`); refuses held-out names outside `config.sets` and sets with the same key."""
  sets = tuple(config.sets)
  if len(sets) < 2:
    raise ValueError(f"config.sets must name at least two ground-truth folders; got {sets!r}.")
  keys = [general.set_key(data.data_set_name(general.resolve_folder(s))) for s in sets]
  if len(set(keys)) != len(keys):
    raise ValueError(f"config.sets: two sets share a key ({keys}); keys are the folder names' "
                     "first '-'-separated part.")
  held = tuple(config.held_out) or sets
  unknown = [h for h in held if h not in sets]
  if unknown:
    raise ValueError(f"config.held_out: {unknown[0]!r} is not one of config.sets {sets}.")
  return [(keys[sets.index(h)], h, tuple(s for s in sets if s != h)) for h in held]


def _write_json(path: pathlib.Path, value) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(json.dumps(value, indent=1))
  os.replace(tmp, path)


def label_free_model(config, run: app.Run, variant: str, recs, seed: int, name: str,
                     supervised: deepspike.DeepSpike | None = None
                     ) -> tuple[deepspike.DeepSpike, float]:
  """`variant` fitted on the traces of `recs` (their scoring windows, spikes removed) on the
  label-free training grid; returns the model and the last chunk's mean bound per frame.
  "unsupervised_warm" starts the network from `supervised` (the fold's general model, which has
  never seen `recs`), and applies `config.label_free.warm` to the unsupervised config."""
  lf = config.label_free
  base = "unsupervised" if variant == "unsupervised_warm" else variant
  tcfg = train.variant_config(lf.train, base, total_steps=lf.num_chunks * lf.train.steps_per_chunk,
                              unsupervised=lf.warm if variant == "unsupervised_warm" else None)
  if variant == "unsupervised_warm":
    if supervised is None:
      raise ValueError(f"{name}: unsupervised_warm needs the fold's supervised model.")
    sc = supervised.config
    mismatch = [k for k in ("frame_rate", "upsample", "recognition", "features", "kernel_size")
                if tuple(np.atleast_1d(sc[k])) != tuple(np.atleast_1d(tcfg[k]))]
    if mismatch:
      raise ValueError(f"{name}: config.label_free.train.{mismatch[0]} = {tcfg[mismatch[0]]!r} "
                       f"differs from the supervised model's {sc[mismatch[0]]!r}; the warm start "
                       "needs the same network and grid.")
  window = tcfg.snippet_frames + 2 * tcfg.buffer_frames
  traces, valid = [], []
  for rec in recs:
    t, f, _ = general.scoring_window(rec, config.max_test_frames)
    unlabelled = rec._replace(frame_times=t, fluorescence=f, valid=rec.valid[:t.size],
                              spike_times=np.zeros(0))
    z, _, v = general.on_grid(unlabelled, tcfg.frame_rate, tcfg.upsample, 0,
                              config.downsample)  # As the scoring (DeepSpike.infer) sees them.
    if z.size >= window and v.sum() >= 2:
      traces.append(z)
      valid.append(v)
  if not traces:
    raise ValueError(f"{name}: no held-out trace is long enough for one {window}-frame window.")
  dataset = train.make_dataset(traces, None, valid, normalise=False)  # Normalised by on_grid.
  trainer = train.make_trainer(tcfg, dataset)  # Per-trace moment initialisation.

  def init():
    state = trainer.init(jax.random.key(seed))
    if variant != "unsupervised_warm":
      return state
    params = jax.tree.map(jnp.asarray, supervised.params)
    if jax.tree.structure(params) != jax.tree.structure(state.recognition_params):
      raise ValueError(f"{name}: the supervised model's parameters do not fit the network.")
    return state._replace(recognition_params=params)  # Adam's moments are zero either way.

  state = run.train_loop(init, trainer.chunk, lf.num_chunks, name=name)
  bound = run.history(name).get("bound_per_frame")
  last = float(np.nanmean(bound[-tcfg.steps_per_chunk:])) if bound is not None else float("nan")
  model = deepspike.DeepSpike(tcfg, jax.device_get(state.recognition_params),
                              training_data=f"{name}: held-out traces, no labels")
  return model, last


def run_fold(config, run: app.Run, key: str, held: str, train_sets) -> dict:
  """Trains, scores and returns one fold's record (written to folds/<key>.json)."""
  t0 = time.perf_counter()
  if config.model_root:  # An earlier run's fold model, trained on the same other sets.
    model = deepspike.load_model(pathlib.Path(config.model_root) / key)
    names = [data.data_set_name(general.resolve_folder(s)) for s in train_sets]
    if sorted(model.training_data.split(", ")) != sorted(names):
      raise ValueError(f"config.model_root: {pathlib.Path(config.model_root) / key} was trained on "
                       f"{model.training_data!r}, not on the other sets {names}.")
    info = {"train_sets": model.training_data, "train_recordings": None, "train_copies": None}
  else:
    model, info = general.train_model(config, run, name=f"supervised_{key}",
                                      train_dirs=train_sets, model_dir=run.workdir / "models" / key)
  train_s = time.perf_counter() - t0
  recs = general.held_out_recordings(held, config)
  scores = general.score_recordings(model, recs, config.max_test_frames, oasis_orders=(1, 2),
                                    downsample=config.downsample)
  bounds = {}
  for variant in config.label_free.variants:
    per_seed = []
    for s in range(config.label_free.seeds):
      m, bounds[f"{variant}_seed{s}"] = label_free_model(
          config, run, variant, recs, config.seed + s, f"{variant}_{key}_seed{s}", model)
      per_seed.append(general.score_recordings(m, recs, config.max_test_frames, oasis_orders=(),
                                               downsample=config.downsample)["deepspike"])
    scores[f"{variant}_per_seed"] = per_seed
    with np.errstate(invalid="ignore"):
      scores[variant] = np.nanmean(np.asarray(per_seed, float), axis=0).tolist()
  return {"set": data.data_set_name(general.resolve_folder(held)), "key": key,
          "recordings": [r.name for r in recs], "train_sets": info["train_sets"],
          "train_recordings": info["train_recordings"], "train_copies": info["train_copies"],
          "scores": scores, "final_bound_per_frame": bounds, "train_s": train_s,
          "wall_s": time.perf_counter() - t0}


def _mean_se(x) -> tuple[float, float]:
  x = np.asarray(x, float)
  x = x[np.isfinite(x)]
  if not x.size:
    return float("nan"), float("nan")
  return float(np.mean(x)), (float(np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1
                             else float("nan"))


def fold_summary(record: dict, variants) -> dict:
  """Summary keys `<KEY>_...` of one fold: means, their standard errors, paired differences."""
  k, sc = record["key"], record["scores"]
  out = {f"{k}_recordings": len(record["recordings"]), f"{k}_train_copies": record["train_copies"]}
  for m in ("deepspike",) + BASELINES + tuple(variants):
    out[f"{k}_{m}_corr"], out[f"{k}_{m}_se"] = _mean_se(sc[m])
    out[f"{k}_{m}_per_recording"] = [float(v) for v in sc[m]]
  for b in BASELINES:
    out[f"{k}_minus_{b}_corr"], out[f"{k}_minus_{b}_se"], _ = paired(sc["deepspike"], sc[b])
  for v in variants:
    out[f"{k}_{v}_minus_oasis_ar2_corr"], out[f"{k}_{v}_minus_oasis_ar2_se"], _ = paired(
        sc[v], sc["oasis_ar2"])
    seeds = [_mean_se(s)[0] for s in sc[f"{v}_per_seed"]]
    out.update({f"{k}_{v}_corr_seed{i}": c for i, c in enumerate(seeds)})
    out[f"{k}_{v}_min_seed_corr"] = float(np.min(seeds))
    out.update({f"{k}_{v}_final_bound_seed{i}": record["final_bound_per_frame"][f"{v}_seed{i}"]
                for i in range(len(seeds))})
  return out


def summarise(records: list[dict], variants) -> dict:
  """Per-fold keys (`fold_summary`) and the keys over sets (module docstring)."""
  out = {"folds": len(records), "held_out_sets": ", ".join(r["set"] for r in records)}
  for r in records:
    out.update(fold_summary(r, variants))
  keys = [r["key"] for r in records]
  for m in ("deepspike",) + BASELINES + tuple(variants):
    out[f"mean_{m}_corr"] = float(np.mean([out[f"{k}_{m}_corr"] for k in keys]))
  for b in BASELINES:
    diffs = [out[f"{k}_minus_{b}_corr"] for k in keys]
    out[f"mean_minus_{b}_corr"] = float(np.mean(diffs))
    out[f"worst_minus_{b}_corr"] = float(np.min(diffs))
    out[f"sets_above_{b}"] = int(sum(d > 0 for d in diffs))
    out[f"sets_above_{b}_2se"] = int(sum(out[f"{k}_minus_{b}_corr"]
                                         > 2 * out[f"{k}_minus_{b}_se"] for k in keys))
    pooled = lambda m: np.concatenate([r["scores"][m] for r in records])  # noqa: E731
    out[f"pooled_minus_{b}_corr"], out[f"pooled_minus_{b}_se"], out["pooled_recordings"] = paired(
        pooled("deepspike"), pooled(b))
  for v in variants:
    out[f"mean_{v}_minus_oasis_ar2_corr"] = float(np.mean(
        [out[f"{k}_{v}_minus_oasis_ar2_corr"] for k in keys]))
    # Sets where every seed's mean reaches OASIS AR2's mean on the same recordings.
    out[f"sets_{v}_at_oasis_ar2"] = int(sum(
        all(_mean_se(s)[0] >= out[f"{r['key']}_oasis_ar2_corr"]
            for s in r["scores"][f"{v}_per_seed"]) for r in records))
  return out


def results_markdown(summary: dict, records: list[dict], variants) -> str:
  """The table: one row per held-out set, the mean over sets, the pooled paired differences."""
  def diff(prefix):
    return f"{summary[prefix + '_corr']:+.3f} +- {summary[prefix + '_se']:.3f}"

  head = ["held-out set", "recordings", "DeepSpike", "OASIS AR1", "OASIS AR2", "DeepSpike - AR1",
          "DeepSpike - AR2"]
  for v in variants:
    head += [LABELS[v], f"{LABELS[v]} - AR2"]
  lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  for r in records:
    k = r["key"]
    cells = [r["set"], str(summary[f"{k}_recordings"])]
    cells += [f"{summary[f'{k}_{m}_corr']:.3f}" for m in ("deepspike",) + BASELINES]
    cells += [diff(f"{k}_minus_oasis_ar1"), diff(f"{k}_minus_oasis_ar2")]
    for v in variants:
      cells += [f"{summary[f'{k}_{v}_corr']:.3f}", diff(f"{k}_{v}_minus_oasis_ar2")]
    lines.append("| " + " | ".join(cells) + " |")
  cells = [f"mean over {len(records)} sets", str(summary["pooled_recordings"])]
  cells += [f"{summary[f'mean_{m}_corr']:.3f}" for m in ("deepspike",) + BASELINES]
  cells += [f"{summary['mean_minus_oasis_ar1_corr']:+.3f}",
            f"{summary['mean_minus_oasis_ar2_corr']:+.3f}"]
  for v in variants:
    cells += [f"{summary[f'mean_{v}_corr']:.3f}",
              f"{summary[f'mean_{v}_minus_oasis_ar2_corr']:+.3f}"]
  lines.append("| " + " | ".join(cells) + " |")
  cells = ["all recordings, paired", str(summary["pooled_recordings"]), "", "", "",
           diff("pooled_minus_oasis_ar1"), diff("pooled_minus_oasis_ar2")]
  cells += ["", ""] * len(variants)
  lines.append("| " + " | ".join(cells) + " |")
  lines += ["", f"DeepSpike above OASIS AR2 on {summary['sets_above_oasis_ar2']} of "
            f"{len(records)} held-out sets ({summary['sets_above_oasis_ar2_2se']} by more than two "
            f"standard errors); worst set {summary['worst_minus_oasis_ar2_corr']:+.3f}."]
  for v in variants:
    lines.append(f"{LABELS[v]}: every seed at or above OASIS AR2 on "
                 f"{summary[f'sets_{v}_at_oasis_ar2']} of {len(records)} sets.")
  return "\n".join(lines) + "\n"


def plot(run: app.Run, summary: dict, records: list[dict], variants) -> None:
  methods = ("deepspike",) + tuple(variants) + BASELINES
  keys = [r["key"] for r in records]
  x = np.arange(len(keys))
  width = 0.8 / len(methods)
  fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(keys) + 2), 4))
  for j, m in enumerate(methods):
    ax.bar(x + (j - (len(methods) - 1) / 2) * width, [summary[f"{k}_{m}_corr"] for k in keys],
           width, yerr=[summary[f"{k}_{m}_se"] for k in keys], capsize=2,
           label=LABELS[m] + ("" if m in BASELINES else " (general, supervised)"
                              if m == "deepspike" else " (own traces, no labels)"))
  ax.set_xticks(x, keys)
  ax.axhline(0, color="k", lw=0.5)
  ax.set(ylabel="correlation (40 ms bins), mean +- SE", xlabel="held-out set",
         title="leave one data set out")
  ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
  fig.tight_layout()
  run.save_figure("leave_one_out", fig)
  plt.close(fig)


def experiment(config, run: app.Run) -> dict:
  variants = tuple(config.label_free.variants)
  unknown = [v for v in variants if v not in LABEL_FREE_VARIANTS]
  if unknown:
    raise ValueError(f"config.label_free.variants: unknown variant {unknown[0]!r}; expected a "
                     f"subset of {LABEL_FREE_VARIANTS}.")
  if variants and config.label_free.seeds < 1:
    raise ValueError(f"config.label_free.seeds must be >= 1; got {config.label_free.seeds}.")
  plan = folds(config)
  records, resumed, t_start = [], 0, time.perf_counter()
  for i, (key, held, train_sets) in enumerate(plan):
    path = run.workdir / "folds" / f"{key}.json"
    if path.exists():
      records.append(json.loads(path.read_text()))
      resumed += 1
      logging.info("fold %d/%d (%s): finished in an earlier run, loaded from %s.", i + 1,
                   len(plan), key, path)
      continue
    logging.info("fold %d/%d: holding out %s, training on %d sets.", i + 1, len(plan), held,
                 len(train_sets))
    record = run_fold(config, run, key, held, train_sets)
    if run.is_writer:
      _write_json(path, record)
    records.append(record)
    s = fold_summary(record, variants)
    run.log_metrics(i, {f"{key}_{m}_corr": s[f"{key}_{m}_corr"]
                        for m in ("deepspike",) + BASELINES + variants}, stream="folds")
    done = i + 1 - resumed
    eta = (time.perf_counter() - t_start) / done * (len(plan) - i - 1)
    logging.info("fold %d/%d (%s, %d recordings) in %.0f s: DeepSpike %.3f, OASIS AR1 %.3f, AR2 "
                 "%.3f, DeepSpike - AR2 %+.3f +- %.3f%s; ETA %s.", i + 1, len(plan), key,
                 len(record["recordings"]), record["wall_s"], s[f"{key}_deepspike_corr"],
                 s[f"{key}_oasis_ar1_corr"], s[f"{key}_oasis_ar2_corr"],
                 s[f"{key}_minus_oasis_ar2_corr"], s[f"{key}_minus_oasis_ar2_se"],
                 "".join(f", {v} {s[f'{key}_{v}_corr']:.3f}" for v in variants),
                 time.strftime("%H:%M:%S", time.gmtime(eta)))
  summary = summarise(records, variants)
  summary["folds_resumed"] = resumed
  if run.is_writer:
    (run.workdir / "results.md").write_text(results_markdown(summary, records, variants))
    plot(run, summary, records, variants)
  return summary


if __name__ == "__main__":
  app.run(experiment)
