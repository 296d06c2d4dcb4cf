"""Spike-inference throughput (frames/s) and accuracy: DeepSpike network vs OASIS vs Gibbs MCMC.

    python -m benchmarks.calcium_vs_oasis [--quick]

Simulated SCF traces at 60 Hz (per-cell decay times, ~1 Hz firing, spike SNR 3). A factorised
DeepSpike CNN is trained (supervised on separate simulated traces, so the benchmark is quick), then
on the same test batch, in this one process:
  * network: one jitted, vmapped forward pass over the batch (compile time reported apart);
  * OASIS AR1 / AR2 (oasis-deconv), trace by trace, as users run it;
  * Gibbs MCMC of the exact SCF model with the true parameters (`calcium.mcmc`), on a subset.
Times are medians of `--repeats` runs after a warm-up. Accuracy: Pearson correlation with the true
spikes per 60 Hz frame and in 40 ms bins, mean over traces.
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


def scores(pred, spikes):
  t = np.arange(spikes.shape[1]) / FRAME_RATE
  frame = np.nanmean([evaluation.pearson(p, s) for p, s in zip(pred, spikes)])
  binned = np.nanmean([evaluation.spikefinder_correlation(p, t, t[s > 0])
                       for p, s in zip(pred, spikes)])
  return float(frame), float(binned)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test, < 60 s).")
  parser.add_argument("--repeats", type=int, default=None, help="Timed runs (median).")
  parser.add_argument("--skip_mcmc", action="store_true",
                      help="Leave out the Gibbs sampler (a sequential scan: minutes on a GPU).")
  parser.add_argument("--out", default=str(OUT), help="Path of the JSON summary.")
  parser.add_argument("--num_traces", type=int, default=None, help="Test batch (default 100).")
  args = parser.parse_args(argv)
  q = args.quick
  num_traces, num_frames = (8, 2000) if q else (100, 10_000)
  num_traces = args.num_traces or num_traces
  train_steps = 150 if q else 1500
  mcmc_traces, sweeps = (2, 30) if q else (5, 200)
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

  nfr = mfr = float("nan")
  if not args.skip_mcmc:
    sub = traces[:mcmc_traces, :, None]
    sub_raws = jax.tree.map(lambda x: x[:mcmc_traces], raws)
    gibbs = jax.jit(jax.vmap(lambda r, f, k: mcmc.scf_gibbs_marginals(model, r, f, k, sweeps,
                                                                       sweeps // 5, 200)))
    keys = jax.random.split(jax.random.key(3), mcmc_traces)
    t0 = time.perf_counter()
    gibbs_compiled = gibbs.lower(sub_raws, sub, keys).compile()
    gibbs_compile_s = time.perf_counter() - t0
    mcmc_s = timed(lambda: gibbs_compiled(sub_raws, sub, keys), 1)
    mcmc_pred = np.asarray(gibbs_compiled(sub_raws, sub, keys))
    mfr, mbn = scores(mcmc_pred, spikes[:mcmc_traces])
    nfr, nbn = scores(net_pred[:mcmc_traces], spikes[:mcmc_traces])
    rows["gibbs_mcmc_true_params"] = dict(seconds=mcmc_s * num_traces / mcmc_traces,
                                          compile_s=gibbs_compile_s, corr_frame_bins=mfr,
                                          corr_40ms=mbn, measured_traces=mcmc_traces, sweeps=sweeps,
                                          network_corr_same_traces=nfr)
  for r in rows.values():
    r["frames_per_s"] = frames / r["seconds"]

  ds_fps = rows["deepspike_network"]["frames_per_s"]
  summary = {
      "device": f"{jax.devices()[0].platform} ({os.cpu_count()} cores)",
      "num_traces": num_traces, "num_frames": num_frames, "train_steps": train_steps,
      "train_s": train_s, "rows": rows,
      "network_vs_oasis_ar1_speed": ds_fps / rows["oasis_ar1"]["frames_per_s"],
      "network_vs_oasis_ar2_speed": ds_fps / rows["oasis_ar2"]["frames_per_s"],
      "network_vs_mcmc_speed": (ds_fps / rows["gibbs_mcmc_true_params"]["frames_per_s"]
                                if "gibbs_mcmc_true_params" in rows else float("nan")),
      "network_minus_oasis_ar2_corr": rows["deepspike_network"]["corr_frame_bins"]
      - rows["oasis_ar2"]["corr_frame_bins"],
      "network_minus_mcmc_corr_same_traces": nfr - mfr,
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
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
