"""LL-LVM scaling on the CPU: seconds per EM iteration and peak memory vs n, beside sklearn's LLE
and Isomap on the same swiss-roll data, as ratios; growth exponent of the time per iteration.

    python -m benchmarks.manifold_scaling [--quick]

Compile time is reported apart from steady-state time (warm-up call, block_until_ready, median
of repeats). Peak memory is the growth of the process's resident-set high-water mark during the
LL-LVM runs at that n (an upper bound on what one iteration needs; sizes run in increasing order).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import sklearn.datasets
import sklearn.manifold

import manifold

OUT = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench" / "manifold_scaling.json"


def _max_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_times(fn, repeats):
  """Median wall and process-CPU seconds (CPU time is robust to other processes on the cores)."""
  wall, cpu = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  return float(np.median(wall)), float(np.median(cpu))


def bench_one(n: int, k: int, repeats: int, fit_iters: int | None) -> dict:
  y, _ = sklearn.datasets.make_swiss_roll(n, noise=0.05, random_state=0)
  ys = 0.03 * y
  rss0 = _max_rss_mb()
  t0 = time.perf_counter()
  graph = manifold.knn_graph(ys, k, connect=True)
  graph_s = time.perf_counter() - t0
  with jax.enable_x64(True):
    problem = manifold.make_problem(ys, graph)
    state = manifold.init_state(problem, graph, 2, jax.random.PRNGKey(0))
    one = jnp.zeros(1)
    t0 = time.perf_counter()
    state, b = manifold.run_em(problem, state, one)
    jax.block_until_ready(b)
    first_s = time.perf_counter() - t0

    def step():
      jax.block_until_ready(manifold.run_em(problem, state, one))

    iter_s, iter_cpu_s = _median_times(step, repeats)
    row = {"n": n, "k": k, "graph_and_spectrum_s": graph_s, "compile_s": max(first_s - iter_s, 0.0),
           "iter_s": iter_s, "iter_cpu_s": iter_cpu_s, "peak_rss_growth_mb": _max_rss_mb() - rss0}
    if fit_iters:
      t0 = time.perf_counter()
      result = manifold.fit(ys, graph, 2, max_iters=fit_iters)
      row["fit_s"] = time.perf_counter() - t0
      row["fit_iters"] = len(result.bounds)
  row["lle_s"], row["lle_cpu_s"] = _median_times(lambda: sklearn.manifold.LocallyLinearEmbedding(
      n_neighbors=k, n_components=2, random_state=0).fit_transform(y), repeats)
  row["isomap_s"], row["isomap_cpu_s"] = _median_times(lambda: sklearn.manifold.Isomap(
      n_neighbors=k, n_components=2).fit_transform(y), repeats)
  row["iter_over_lle"] = row["iter_s"] / row["lle_s"]
  row["iter_over_isomap"] = row["iter_s"] / row["isomap_s"]
  row["iter_cpu_over_lle_cpu"] = row["iter_cpu_s"] / row["lle_cpu_s"]
  return row


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test, < 60 s).")
  parser.add_argument("--sizes", default="", help="Comma-separated n (overrides the default).")
  parser.add_argument("--fit_iters", type=int, default=0,
                      help="Also time a full fit (up to this many iterations) at each n.")
  args = parser.parse_args(argv)
  sizes = [100, 200] if args.quick else [400, 1000, 2000, 4000]
  if args.sizes:
    sizes = [int(s) for s in args.sizes.split(",")]
  repeats = 2 if args.quick else 3
  rows = []
  print("| n | iter s | iter CPU s | compile s | graph+eig s | peak RSS MB | LLE s | Isomap s | "
        "iter/LLE | iter/Isomap |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
  for n in sizes:
    row = bench_one(n, 9, repeats, args.fit_iters or None)
    rows.append(row)
    print(f"| {n} | {row['iter_s']:.3f} | {row['iter_cpu_s']:.3f} | {row['compile_s']:.1f} | "
          f"{row['graph_and_spectrum_s']:.2f} | {row['peak_rss_growth_mb']:.0f} | "
          f"{row['lle_s']:.3f} | {row['isomap_s']:.3f} | {row['iter_over_lle']:.1f} | "
          f"{row['iter_over_isomap']:.1f} |", flush=True)
  ns = np.array([r["n"] for r in rows], dtype=float)
  fit_exp = lambda key: (float(np.polyfit(np.log(ns), np.log([r[key] for r in rows]), 1)[0])
                         if len(rows) > 1 else float("nan"))
  exponent, cpu_exponent = fit_exp("iter_s"), fit_exp("iter_cpu_s")
  print(f"growth exponent of time per EM iteration: wall {exponent:.2f}, CPU {cpu_exponent:.2f}")
  OUT.parent.mkdir(parents=True, exist_ok=True)
  OUT.write_text(json.dumps({"rows": rows, "iter_time_growth_exponent": exponent,
                             "iter_cpu_time_growth_exponent": cpu_exponent,
                             "quick": args.quick}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
