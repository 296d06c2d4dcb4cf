"""LL-LVM scaling on the CPU: seconds per EM iteration and peak memory vs n, beside sklearn's LLE
and Isomap on the same swiss-roll data, as ratios; growth exponent of the time per iteration.

    python -m benchmarks.manifold_scaling [--quick]

Compile time is reported apart from steady-state time (warm-up call, block_until_ready, median
of repeats). The time per iteration is that of a chunk of `--chunk` EM iterations (one `run_em`
call, as `fit` runs them) divided by its length: a chunk computes Phi_x once more at its start,
so a one-iteration chunk overstates the steady-state cost by one Phi_x. Peak memory is the
growth of the process's resident-set high-water mark during the
LL-LVM runs at that n (an upper bound on what one iteration needs; sizes run in increasing order).
A size whose estimated working set (about 30 dense (n dx)^2 float64 arrays: the measured peak
growth was 22 of them at n = 2000 and 30 at n = 4000) exceeds `--max_mem_fraction` (default
0.5) of the memory available is skipped and reported as such (the machine is shared).
`--fit_sizes` also times a fit to convergence (relative bound change below `--fit_tol`, at most
`--fit_max_iters` iterations).
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


def _available_mb() -> float:
  """MemAvailable from /proc/meminfo (inf where unreadable)."""
  try:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
      if line.startswith("MemAvailable:"):
        return float(line.split()[1]) / 1024.0
  except OSError:
    pass
  return float("inf")


def estimated_mb(n: int, dx: int = 2) -> float:
  """Rough working set of one EM iteration: 30 dense (n dx)^2 float64 arrays."""
  return 30 * (n * dx) ** 2 * 8 / 2 ** 20


def bench_one(n: int, k: int, repeats: int, fit: dict | None, chunk: int = 3) -> dict:
  y, roll = sklearn.datasets.make_swiss_roll(n, noise=0.05, random_state=0)
  ys = manifold.normalise(y).y
  rss0 = _max_rss_mb()
  t0 = time.perf_counter()
  graph = manifold.knn_graph(ys, k, connect=True)
  graph_s = time.perf_counter() - t0
  with jax.enable_x64(True):
    problem = manifold.make_problem(ys, graph)
    state = manifold.init_state(problem, graph, 2, jax.random.PRNGKey(0))
    steps = jnp.zeros(chunk)
    t0 = time.perf_counter()
    state, b = manifold.run_em(problem, state, steps)
    jax.block_until_ready(b)
    first_s = time.perf_counter() - t0

    def step():
      jax.block_until_ready(manifold.run_em(problem, state, steps))

    chunk_s, chunk_cpu_s = _median_times(step, repeats)
    iter_s, iter_cpu_s = chunk_s / chunk, chunk_cpu_s / chunk
    row = {"n": n, "k": k, "chunk": chunk, "graph_and_spectrum_s": graph_s,
           "compile_s": max(first_s - chunk_s, 0.0), "iter_s": iter_s, "iter_cpu_s": iter_cpu_s,
           "peak_rss_growth_mb": _max_rss_mb() - rss0}
    if fit:
      t0 = time.perf_counter()
      c0 = time.process_time()
      result = manifold.fit(ys, graph, 2, init="spectral", gamma=1000.0, **fit)
      row["fit_s"] = time.perf_counter() - t0
      row["fit_cpu_s"] = time.process_time() - c0
      row["fit_iters"] = len(result.bounds)
      row["fit_converged"] = bool(len(result.bounds) < fit["max_iters"])
      row["fit_accelerate"] = bool(fit.get("accelerate", False))
      row["fit_final_bound"] = float(result.bounds[-1])
      row["fit_spearman"] = manifold.spearman_to_truth(np.asarray(result.state.mu_x), roll)
      row["fit_trustworthiness"] = manifold.trustworthiness(ys, np.asarray(result.state.mu_x))
  row["lle_s"], row["lle_cpu_s"] = _median_times(lambda: sklearn.manifold.LocallyLinearEmbedding(
      n_neighbors=k, n_components=2, random_state=0).fit_transform(y), repeats)
  row["isomap_s"], row["isomap_cpu_s"] = _median_times(lambda: sklearn.manifold.Isomap(
      n_neighbors=k, n_components=2).fit_transform(y), repeats)
  row["iter_over_lle"] = row["iter_s"] / row["lle_s"]
  row["iter_over_isomap"] = row["iter_s"] / row["isomap_s"]
  row["iter_cpu_over_lle_cpu"] = row["iter_cpu_s"] / row["lle_cpu_s"]
  return row


def _write(rows, skipped, quick, final, out=OUT):
  """Writes the JSON table; returns the wall and CPU growth exponents of the time per iteration."""
  ns = np.array([r["n"] for r in rows], dtype=float)
  fit_exp = lambda key: (float(np.polyfit(np.log(ns), np.log([r[key] for r in rows]), 1)[0])
                         if len(rows) > 1 else float("nan"))
  exponent, cpu_exponent = fit_exp("iter_s"), fit_exp("iter_cpu_s")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({"rows": rows, "skipped": skipped,
                             "iter_time_growth_exponent": exponent,
                             "iter_cpu_time_growth_exponent": cpu_exponent,
                             "complete": final, "quick": quick}, indent=1))
  return exponent, cpu_exponent


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test, < 60 s).")
  parser.add_argument("--sizes", default="", help="Comma-separated n (overrides the default).")
  parser.add_argument("--fit_sizes", default="",
                      help="Comma-separated n at which a fit to convergence is also timed.")
  parser.add_argument("--fit_tol", type=float, default=1e-5,
                      help="Relative bound change per iteration that counts as converged.")
  parser.add_argument("--fit_max_iters", type=int, default=200, help="Iteration cap of the fit.")
  parser.add_argument("--fit_gauge", action="store_true",
                      help="Fit with the parameter-expansion step (manifold.update_gauge).")
  parser.add_argument("--fit_accelerate", action="store_true",
                      help="Fit with SQUAREM-accelerated EM (manifold.run_squarem).")
  parser.add_argument("--fit_chunk", type=int, default=10,
                      help="EM iterations per compiled call of the fit (convergence is checked "
                      "between calls; with --fit_accelerate, chunk // 3 SQUAREM cycles).")
  parser.add_argument("--chunk", type=int, default=3,
                      help="EM iterations per timed run_em call (time per iteration = chunk / n).")
  parser.add_argument("--out", default=str(OUT), help="Path of the JSON table.")
  parser.add_argument("--max_mem_fraction", type=float, default=0.5,
                      help="Skip a size whose estimated working set exceeds this fraction of the "
                      "available memory.")
  args = parser.parse_args(argv)
  sizes = [100, 200] if args.quick else [400, 1000, 2000, 4000]
  if args.sizes:
    sizes = [int(s) for s in args.sizes.split(",")]
  fit_sizes = {int(s) for s in args.fit_sizes.split(",") if s}
  fit = dict(tol=args.fit_tol, max_iters=args.fit_max_iters, gauge=args.fit_gauge,
             accelerate=args.fit_accelerate, chunk=args.fit_chunk)
  rows, skipped = [], []
  print("| n | iter s | iter CPU s | compile s | graph+eig s | peak RSS MB | LLE s | Isomap s | "
        "iter/LLE | iter/Isomap |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
  for n in sizes:
    need, have = estimated_mb(n), _available_mb()
    if need > args.max_mem_fraction * have:
      skipped.append({"n": n, "estimated_mb": need, "available_mb": have})
      print(f"| {n} | skipped: estimated working set {need:.0f} MB > {args.max_mem_fraction} of "
            f"available {have:.0f} MB |", flush=True)
      continue
    repeats = 2 if args.quick else (3 if n <= 1000 else 1)
    row = bench_one(n, 9, repeats, fit if n in fit_sizes else None, chunk=args.chunk)
    rows.append(row)
    print(f"| {n} | {row['iter_s']:.3f} | {row['iter_cpu_s']:.3f} | {row['compile_s']:.1f} | "
          f"{row['graph_and_spectrum_s']:.2f} | {row['peak_rss_growth_mb']:.0f} | "
          f"{row['lle_s']:.3f} | {row['isomap_s']:.3f} | {row['iter_over_lle']:.1f} | "
          f"{row['iter_over_isomap']:.1f} |", flush=True)
    if "fit_s" in row:
      print(f"  fit at n={n}: {row['fit_s']:.1f} s ({row['fit_cpu_s']:.1f} CPU s), "
            f"{row['fit_iters']} iterations, converged: {row['fit_converged']}, accelerated: "
            f"{row['fit_accelerate']}, bound {row['fit_final_bound']:.4f}, Spearman "
            f"{row['fit_spearman']:.3f}, trustworthiness {row['fit_trustworthiness']:.3f}",
            flush=True)
    # Written after every size, so a run stopped at a large n keeps the smaller ones.
    _write(rows, skipped, args.quick, final=False, out=pathlib.Path(args.out))
  exponent, cpu_exponent = _write(rows, skipped, args.quick, final=True, out=pathlib.Path(args.out))
  print(f"growth exponent of time per EM iteration: wall {exponent:.2f}, CPU {cpu_exponent:.2f}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
