"""Spike-inference throughput (frames/s) and accuracy: DeepSpike network vs OASIS vs Gibbs MCMC.

    python -m benchmarks.calcium_vs_oasis [--quick]

Simulated SCF traces at 60 Hz (per-cell decay times, ~1 Hz firing, spike SNR 3). A factorised
DeepSpike CNN is trained (supervised on separate simulated traces, so the benchmark is quick), then
on the same test batch, in this one process:
  * network: one jitted, vmapped forward pass over the batch (compile time reported apart);
  * OASIS AR1 / AR2 (oasis-deconv), trace by trace, as users run it;
  * Gibbs MCMC of the exact SCF model with the true parameters (`calcium.mcmc`), on the first
    `--mcmc_traces` traces, at a ladder of budgets (`--sweeps`, e.g. 1, 2, 5, ..., 200 sweeps;
    burn-in sweeps // 5 as before, so 0 below 5 sweeps). Each budget is its own chain (compiled
    apart, then timed) from the same key, so a smaller budget's chain is the start of a larger
    one's. Its accuracy-vs-cost curve is set against the network on the same traces: the
    cheapest budget whose mean 40 ms correlation reaches the network's, and the network's speed
    ratio against that budget and against the largest. A second ladder (`--oasis_init_sweeps`)
    starts the chains from OASIS AR1's spikes (thresholded at half the true spike size), the
    OASIS pass added to its times.
Times are medians of `--repeats` runs after a warm-up (MCMC: after compiling, one run per budget,
the median of `--repeats` where one run takes under a second). Accuracy: Pearson correlation with
the true spikes per 60 Hz frame and in 40 ms bins, mean over traces; MCMC-minus-network
differences are paired per trace, with standard errors over traces.
Writes results/bench/calcium_vs_oasis.json.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from calcium import evaluation, mcmc, models, oasis_baseline, train

OUT = pathlib.Path(__file__).resolve().parent.parent / "results" / "bench" / "calcium_vs_oasis.json"
FRAME_RATE = 60.0
MCMC_WINDOW = 200  # Frames of the spike kernel the sampler keeps (gamma^200 < 1e-3 at tau = 1 s).
SWEEPS = (1, 2, 5, 10, 20, 50, 70, 100, 200)
QUICK_SWEEPS = (1, 2, 5, 10, 30)
OASIS_INIT_SWEEPS = (2, 5, 10, 20, 35, 50, 70)  # Chains started from OASIS AR1's spikes.
QUICK_OASIS_INIT_SWEEPS = (2, 10)


def simulate(num_traces: int, num_frames: int, seed: int):
  model = models.make_model("scf", frame_rate=FRAME_RATE)
  rng = np.random.default_rng(seed)
  taus = rng.uniform(0.4, 1.0, num_traces)
  raws = [model.init(tau=tau, alpha=3.0, beta=0.0, sigma=1.0, rate=1.0) for tau in taus]
  raws = jax.tree.map(lambda *x: jnp.stack(x), *raws)
  keys = jax.random.split(jax.random.key(seed), num_traces)
  sim = jax.jit(jax.vmap(lambda r, k: model.simulate(r, k, num_frames)))
  spikes, traces = sim(raws, keys)
  return model, raws, np.asarray(spikes)[..., 0], np.asarray(traces)[..., 0]


def timed(fn, repeats: int):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def time_oasis(traces, order: int, repeats: int):
  """Median seconds of `repeats` trace-by-trace OASIS passes over `traces`, and the estimates.

  One untimed call on a short piece comes first: the first call imports oasis-deconv (about 1 s,
  as long as a whole AR1 pass over 10^6 frames), which is not part of the per-frame cost.
  """
  oasis_baseline.oasis_deconvolve(traces[0][:500], order)  # Warm-up (import), not timed.
  times, preds = [], []
  for _ in range(repeats):
    t0 = time.perf_counter()
    preds = [oasis_baseline.oasis_deconvolve(f, order) for f in traces]
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), preds


def per_trace_scores(pred, spikes):
  """Per-trace Pearson correlations with the true spikes: per 60 Hz frame and in 40 ms bins."""
  t = np.arange(spikes.shape[1]) / FRAME_RATE
  frame = np.array([evaluation.pearson(p, s) for p, s in zip(pred, spikes)])
  binned = np.array([evaluation.spikefinder_correlation(p, t, t[s > 0])
                     for p, s in zip(pred, spikes)])
  return frame, binned


def scores(pred, spikes):
  frame, binned = per_trace_scores(pred, spikes)
  return float(np.nanmean(frame)), float(np.nanmean(binned))


def mean_and_se(values):
  """Mean over traces and its standard error (sample std / sqrt(n); nan for fewer than 2)."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
  return float(v.mean()) if v.size else float("nan"), se


def timed_with_output(fn, repeats: int, quick_s: float = 1.0):
  """Seconds of one call of `fn` (median of `repeats` if one call takes under `quick_s`), output."""
  times = []
  while True:
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
    if len(times) >= repeats or times[0] >= quick_s:
      return float(np.median(times)), out


def mcmc_ladder(model, raws, traces, spikes, net_pred, sweeps, key, repeats: int = 1,
                init_spikes=None, init_seconds: float = 0.0):
  """Accuracy and cost of Gibbs MCMC (true parameters) at each budget in `sweeps`, per trace.

  Args:
    model, raws: the SCF model and the traces' raw parameters (leading axis: trace).
    traces, spikes: (N, T) fluorescence and true spikes.
    net_pred: (N, T) the network's spike probabilities on the same traces.
    sweeps: strictly increasing positive sweep counts; burn-in is sweeps // 5.
    key: one key per trace is split from it, the same for every budget.
    repeats: timed runs per budget whose one run takes under a second (median).
    init_spikes: optional (N, T) 0/1 spike trains the chains start from (default: none).
    init_seconds: time it took to make `init_spikes`, added to every budget's `seconds`.

  Returns:
    A list of dicts, one per budget (sweeps, burn_in, seconds (sampler_seconds + init_seconds),
    compile_s, frames_per_s,
    correlations with standard errors over traces, and MCMC-minus-network paired differences),
    and a dict of the network's correlations on these traces.
  """
  sweeps = [int(n) for n in sweeps]
  if not sweeps or sweeps[0] < 1 or any(b <= a for a, b in zip(sweeps, sweeps[1:])):
    raise ValueError(f"sweeps must be strictly increasing positive integers; got {sweeps}.")
  num, num_frames = traces.shape
  fluo = jnp.asarray(traces[:, :, None])
  keys = jax.random.split(key, num)
  net_fr, net_bn = per_trace_scores(net_pred, spikes)
  network = dict(zip(("corr_frame_bins", "corr_frame_bins_se"), mean_and_se(net_fr)))
  network.update(zip(("corr_40ms", "corr_40ms_se"), mean_and_se(net_bn)))
  init = jnp.zeros(traces.shape) if init_spikes is None else jnp.asarray(init_spikes, jnp.float32)
  rows = []
  for n in sweeps:
    burn_in = n // 5
    # Without init_spikes the sampler keeps its own default start (no spikes).
    gibbs = jax.jit(jax.vmap(lambda r, f, k, s, n=n, b=burn_in: mcmc.scf_gibbs_marginals(
        model, r, f, k, n, b, MCMC_WINDOW, None if init_spikes is None else s)))
    t0 = time.perf_counter()
    compiled = gibbs.lower(raws, fluo, keys, init).compile()
    compile_s = time.perf_counter() - t0
    sampler_s, pred = timed_with_output(lambda c=compiled: c(raws, fluo, keys, init), repeats)
    seconds = sampler_s + init_seconds
    fr, bn = per_trace_scores(np.asarray(pred), spikes)
    row = dict(sweeps=n, burn_in=burn_in, seconds=seconds, sampler_seconds=sampler_s,
               init_seconds=init_seconds, compile_s=compile_s,
               frames_per_s=num * num_frames / seconds, measured_traces=num)
    row.update(zip(("corr_frame_bins", "corr_frame_bins_se"), mean_and_se(fr)))
    row.update(zip(("corr_40ms", "corr_40ms_se"), mean_and_se(bn)))
    row.update(zip(("minus_network_corr_frame_bins", "minus_network_corr_frame_bins_se"),
                   mean_and_se(fr - net_fr)))
    row.update(zip(("minus_network_corr_40ms", "minus_network_corr_40ms_se"),
                   mean_and_se(bn - net_bn)))
    rows.append(row)
  return rows, network


def oasis_init_spikes(traces, alphas, repeats: int = 1):
  """0/1 spike trains from OASIS AR1 (a frame's deconvolved activity >= half the true spike size
  `alphas`, one per trace), and the median seconds of the OASIS pass that made them."""
  seconds, preds = time_oasis(traces, 1, repeats)
  return (np.stack(preds) >= 0.5 * np.asarray(alphas)[:, None]).astype(np.float32), seconds


def cheapest_matching_budget(ladder, network_corr: float, field: str = "corr_40ms"):
  """The first (cheapest) ladder row whose mean `field` reaches `network_corr`; None if none."""
  for row in ladder:
    if row[field] >= network_corr:
      return row
  return None


def cheapest_within_noise(ladder, num_se: float = 2.0):
  """The first ladder row whose paired 40 ms difference to the network is not below zero by more
  than `num_se` standard errors (not significantly worse); None if none."""
  for row in ladder:
    if row["minus_network_corr_40ms"] + num_se * row["minus_network_corr_40ms_se"] >= 0:
      return row
  return None


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test, < 60 s).")
  parser.add_argument("--repeats", type=int, default=None, help="Timed runs (median).")
  parser.add_argument("--skip_mcmc", action="store_true",
                      help="Leave out the Gibbs sampler (a sequential scan: minutes on a GPU).")
  parser.add_argument("--out", default=str(OUT), help="Path of the JSON summary.")
  parser.add_argument("--num_traces", type=int, default=None, help="Test batch (default 100).")
  parser.add_argument("--mcmc_traces", type=int, default=None,
                      help="Traces the sampler runs on (the first of the batch; default 40, "
                      "quick 4).")
  parser.add_argument("--sweeps", default=None,
                      help="Comma-separated, increasing MCMC budgets in sweeps (default "
                      f"{','.join(map(str, SWEEPS))}; quick {','.join(map(str, QUICK_SWEEPS))}).")
  parser.add_argument("--oasis_init_sweeps", default=None,
                      help="Budgets of the chains started from OASIS AR1's spikes (default "
                      f"{','.join(map(str, OASIS_INIT_SWEEPS))}; quick "
                      f"{','.join(map(str, QUICK_OASIS_INIT_SWEEPS))}; 'none' leaves them out).")
  args = parser.parse_args(argv)
  q = args.quick
  num_traces, num_frames = (8, 2000) if q else (100, 10_000)
  num_traces = args.num_traces or num_traces
  train_steps = 150 if q else 1500
  mcmc_traces = min(args.mcmc_traces or (4 if q else 40), num_traces)
  sweeps = (tuple(int(n) for n in args.sweeps.split(",")) if args.sweeps
            else QUICK_SWEEPS if q else SWEEPS)
  if args.oasis_init_sweeps == "none":
    init_sweeps = ()
  elif args.oasis_init_sweeps:
    init_sweeps = tuple(int(n) for n in args.oasis_init_sweeps.split(","))
  else:
    init_sweeps = QUICK_OASIS_INIT_SWEEPS if q else OASIS_INIT_SWEEPS
  repeats = args.repeats or (2 if q else 5)

  _, _, train_spikes, train_traces = simulate(8 if q else 20, 3000, seed=1)
  cfg = train.default_config()
  cfg.update(unsupervised_weight=0.0, supervised_weight=1.0, num_steps=train_steps,
             batch_size=8, snippet_frames=200, buffer_frames=30, learning_rate=3e-3)
  if q:  # A smaller network for the smoke run.
    cfg.update(features=(16, 16), kernel_size=(15, 9))
  ds = train.make_dataset(list(train_traces), list(train_spikes))
  t0 = time.perf_counter()
  state, _ = train.make_train(cfg, ds)(jax.random.key(0))
  jax.block_until_ready(state)
  train_s = time.perf_counter() - t0
  rec = train.build_recognition(cfg, train.build_model(cfg))

  model, raws, spikes, traces = simulate(num_traces, num_frames, seed=2)
  test = np.asarray(train.make_dataset(list(traces)).fluorescence)  # Normalised (B, T, 1).
  frames = num_traces * num_frames
  net = jax.jit(jax.vmap(lambda f: rec.probabilities(state.recognition_params, f)[:, 0]))
  t0 = time.perf_counter()
  net_compiled = net.lower(test).compile()
  net_compile_s = time.perf_counter() - t0
  jax.block_until_ready(net_compiled(test))
  net_s = timed(lambda: net_compiled(test), repeats)
  net_pred = np.asarray(net_compiled(test))

  rows = {"deepspike_network": dict(seconds=net_s, compile_s=net_compile_s,
                                    corr_frame_bins=scores(net_pred, spikes)[0],
                                    corr_40ms=scores(net_pred, spikes)[1])}
  for order in (1, 2):
    seconds, preds = time_oasis(traces, order, repeats)
    fr, bn = scores(np.stack(preds), spikes)
    rows[f"oasis_ar{order}"] = dict(seconds=seconds, compile_s=0.0,
                                    corr_frame_bins=fr, corr_40ms=bn)

  ladder, network_same, matching, within = [], {}, None, None
  init_ladder, init_match, init_within = [], None, None
  if not args.skip_mcmc:
    sub_raws = jax.tree.map(lambda x: x[:mcmc_traces], raws)
    ladder, network_same = mcmc_ladder(model, sub_raws, traces[:mcmc_traces],
                                       spikes[:mcmc_traces], net_pred[:mcmc_traces], sweeps,
                                       jax.random.key(3), repeats)
    matching = cheapest_matching_budget(ladder, network_same["corr_40ms"])
    within = cheapest_within_noise(ladder)
    if init_sweeps:
      alphas = np.asarray(jax.vmap(model.constrain)(sub_raws)["alpha"])
      init_spikes, init_s = oasis_init_spikes(traces[:mcmc_traces], alphas, repeats)
      init_ladder, _ = mcmc_ladder(model, sub_raws, traces[:mcmc_traces], spikes[:mcmc_traces],
                                   net_pred[:mcmc_traces], init_sweeps, jax.random.key(3),
                                   repeats, init_spikes, init_s)
      init_match = cheapest_matching_budget(init_ladder, network_same["corr_40ms"])
      init_within = cheapest_within_noise(init_ladder)
    full = ladder[-1]
    rows["gibbs_mcmc_true_params"] = dict(
        seconds=full["seconds"] * num_traces / mcmc_traces, compile_s=full["compile_s"],
        corr_frame_bins=full["corr_frame_bins"], corr_40ms=full["corr_40ms"],
        measured_traces=mcmc_traces, sweeps=full["sweeps"],
        network_corr_same_traces=network_same["corr_frame_bins"],
        network_corr_40ms_same_traces=network_same["corr_40ms"])
  for r in rows.values():
    r["frames_per_s"] = frames / r["seconds"]

  ds_fps = rows["deepspike_network"]["frames_per_s"]
  nan = float("nan")
  summary = {
      "device": f"{jax.devices()[0].platform} ({os.cpu_count()} cores)",
      "num_traces": num_traces, "num_frames": num_frames, "train_steps": train_steps,
      "train_s": train_s, "rows": rows,
      "network_vs_oasis_ar1_speed": ds_fps / rows["oasis_ar1"]["frames_per_s"],
      "network_vs_oasis_ar2_speed": ds_fps / rows["oasis_ar2"]["frames_per_s"],
      "network_vs_mcmc_speed": (ds_fps / rows["gibbs_mcmc_true_params"]["frames_per_s"]
                                if "gibbs_mcmc_true_params" in rows else nan),
      "network_minus_oasis_ar2_corr": rows["deepspike_network"]["corr_frame_bins"]
      - rows["oasis_ar2"]["corr_frame_bins"],
      # Per 60 Hz frame, on the MCMC traces, largest budget (as before the ladder existed).
      "network_minus_mcmc_corr_same_traces": (-ladder[-1]["minus_network_corr_frame_bins"]
                                              if ladder else nan),
      "mcmc_traces": mcmc_traces if ladder else 0,
      "mcmc_ladder": ladder,
      "network_same_traces": network_same,
      # The cheapest budget whose mean 40 ms correlation reaches the network's (None: none does).
      "mcmc_matching_sweeps": matching["sweeps"] if matching else None,
      "network_vs_mcmc_matching_speed": (ds_fps / matching["frames_per_s"] if matching
                                         else nan),
      "network_vs_mcmc_cheapest_speed": ds_fps / ladder[0]["frames_per_s"] if ladder else nan,
      # The cheapest budget not below the network by more than 2 standard errors (paired).
      "mcmc_within_2se_sweeps": within["sweeps"] if within else None,
      "network_vs_mcmc_within_2se_speed": ds_fps / within["frames_per_s"] if within else nan,
      # Chains started from OASIS AR1's spikes (thresholded at half the true spike size); their
      # seconds include that OASIS pass.
      "mcmc_oasis_init_ladder": init_ladder,
      "mcmc_oasis_init_matching_sweeps": init_match["sweeps"] if init_match else None,
      "network_vs_mcmc_oasis_init_matching_speed": (ds_fps / init_match["frames_per_s"]
                                                    if init_match else nan),
      "mcmc_oasis_init_within_2se_sweeps": init_within["sweeps"] if init_within else None,
      "network_vs_mcmc_oasis_init_within_2se_speed": (ds_fps / init_within["frames_per_s"]
                                                      if init_within else nan),
  }
  print(f"\n{num_traces} traces x {num_frames} frames on {summary['device']}; network trained "
        f"{train_steps} supervised steps in {train_s:.1f} s")
  print("| method | frames/s | compile s | corr (60 Hz) | corr (40 ms) |")
  print("|---|---|---|---|---|")
  for name, r in rows.items():
    print(f"| {name} | {r['frames_per_s']:,.0f} | {r['compile_s']:.2f} | "
          f"{r['corr_frame_bins']:.3f} | {r['corr_40ms']:.3f} |")
  print(f"network / OASIS AR1 speed {summary['network_vs_oasis_ar1_speed']:.1f}x, / AR2 "
        f"{summary['network_vs_oasis_ar2_speed']:.1f}x, / MCMC "
        f"{summary['network_vs_mcmc_speed']:.0f}x; corr - MCMC on the same traces "
        f"{summary['network_minus_mcmc_corr_same_traces']:+.3f}")
  if ladder:
    net = network_same
    print(f"\nMCMC budget ladders on {mcmc_traces} traces; network on the same traces: "
          f"{net['corr_frame_bins']:.3f} +- {net['corr_frame_bins_se']:.3f} (60 Hz), "
          f"{net['corr_40ms']:.3f} +- {net['corr_40ms_se']:.3f} (40 ms); +- one standard error "
          "over traces; differences paired per trace.")
  for title, lad, match, within_row in (
      ("started from no spikes", ladder, matching, within),
      ("started from OASIS AR1's spikes (times include the OASIS pass)", init_ladder, init_match,
       init_within)):
    if not lad:
      continue
    print(f"\nMCMC {title}:")
    print("| sweeps | burn-in | frames/s | network speed ratio | compile s | corr (60 Hz) | "
          "corr (40 ms) | MCMC - network (40 ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in lad:
      print(f"| {r['sweeps']} | {r['burn_in']} | {r['frames_per_s']:,.0f} | "
            f"{ds_fps / r['frames_per_s']:,.0f}x | {r['compile_s']:.2f} | "
            f"{r['corr_frame_bins']:.3f} | {r['corr_40ms']:.3f} +- {r['corr_40ms_se']:.3f} | "
            f"{r['minus_network_corr_40ms']:+.3f} +- {r['minus_network_corr_40ms_se']:.3f} |")
    if match:
      print(f"cheapest budget reaching the network's 40 ms correlation: {match['sweeps']} sweeps "
            f"({match['corr_40ms']:.3f} vs {net['corr_40ms']:.3f}); network "
            f"{ds_fps / match['frames_per_s']:,.0f}x faster than it, "
            f"{ds_fps / lad[-1]['frames_per_s']:,.0f}x than {lad[-1]['sweeps']} sweeps")
    else:
      print(f"no budget up to {lad[-1]['sweeps']} sweeps reaches the network's 40 ms "
            f"correlation on these traces")
    if within_row:
      print(f"cheapest budget within 2 standard errors of the network (40 ms, paired): "
            f"{within_row['sweeps']} sweeps ({within_row['minus_network_corr_40ms']:+.3f} +- "
            f"{within_row['minus_network_corr_40ms_se']:.3f}); network "
            f"{ds_fps / within_row['frames_per_s']:,.0f}x faster than it")
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
