"""latent_dynamics vs dynamax on an LDS posterior: time, compile time, agreement, memory.

    python -m benchmarks.latent_dynamics_vs_dynamax [--quick]

For an LDS with latent dim 10 and 50 Gaussian observations and T in {1e3, 1e4, 1e5}: our exact
smoothing posterior (`latent_dynamics.posteriors.smoothing` with the LDS prior and the exact
Gaussian-likelihood potentials; block-tridiagonal Cholesky, sequential `lax.scan` or parallel
`associative_scan`) computing the posterior mean, one reparameterised sample and the entropy,
against dynamax's RTS smoother (`lgssm_smoother`) and its parallel smoother (Sarkka and
Garcia-Fernandez 2021), all in one process on the same data. Compile time is measured apart
(lower + compile); steady-state time is the median of several runs after a warm-up. Agreement is
the max abs difference of the posterior means relative to their max abs value. Memory is XLA's
temporary-buffer size of our compiled function, per time step (flat in T = linear memory).
Writes results/bench/latent_dynamics_vs_dynamax.json.

On the CPU, dynamax's parallel smoother runs in a child process with a time limit: with jaxlib
0.10 its batched LAPACK calls inside the associative scan can deadlock the 2-thread pool (seen at
T = 1e4; our parallel routines avoid those kernels on the CPU, see
`latent_dynamics.block_tridiag_parallel`). A run that does not finish is reported as such.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from latent_dynamics import models, posteriors

NAME = "latent_dynamics_vs_dynamax"


def problem(t_len: int, n: int = 10, p: int = 50, seed: int = 0):
  rng = np.random.default_rng(seed)
  a = 0.95 * np.linalg.qr(rng.normal(size=(n, n)))[0]
  q = 0.1 * np.eye(n)
  c = rng.normal(size=(p, n)) / np.sqrt(n)
  r_std = 0.5 * np.ones(p)
  params = models.lds_params(jnp.asarray(a, jnp.float32), jnp.asarray(q, jnp.float32),
                             jnp.asarray(c, jnp.float32), jnp.asarray(r_std, jnp.float32))
  model = models.make_model("lds", n, p)
  _, y = jax.jit(model.sample, static_argnums=2)(params, jax.random.key(seed), t_len)
  return model, params, y, dict(a=a, q=q, c=c, r=np.diag(r_std ** 2))


def ours_fn(model, parallel: bool):
  """Posterior mean, one sample and entropy from (params, y, key)."""
  def f(params, y, key):
    t_len = y.shape[0]
    diag, lower, h = model.prior_precision(params, t_len)
    c = params["obs"]["c"]
    r_inv_sqrt = jnp.exp(-params["obs"]["log_r"])
    factor = jnp.broadcast_to((c * r_inv_sqrt[:, None]).T, (t_len,) + c.T.shape)  # C^T R^{-1/2}
    eta = ((y - params["obs"]["d"]) * r_inv_sqrt ** 2) @ c                       # C^T R^{-1} y_t
    q = posteriors.smoothing(diag, lower, h, factor, eta, parallel=parallel)
    return q.mean(), q.sample(seed=key), q.entropy()

  return f


def dynamax_fns(mats):
  from dynamax.linear_gaussian_ssm import inference as seq
  from dynamax.linear_gaussian_ssm import parallel_inference as par

  n = mats["a"].shape[0]
  params = seq.make_lgssm_params(
      jnp.zeros(n, jnp.float32), jnp.eye(n, dtype=jnp.float32),
      jnp.asarray(mats["a"], jnp.float32), jnp.asarray(mats["q"], jnp.float32),
      jnp.asarray(mats["c"], jnp.float32), jnp.asarray(mats["r"], jnp.float32))

  def run(mod):
    def f(y):
      post = mod.lgssm_smoother(params, y)
      return post.smoothed_means, post.smoothed_covariances
    return f

  return {"dynamax": run(seq), "dynamax_parallel": run(par)}


def measure(fn, args, reps: int):
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(*args))  # warm-up
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  mem = compiled.memory_analysis()
  temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
  return out, compile_s, statistics.median(times), temp


def _dynamax_parallel_child(t_len: int, reps: int, out_path: str, seed: int) -> int:
  """Child-process mode: times dynamax's parallel smoother alone and saves its means."""
  _, _, y, mats = problem(t_len, seed=seed)
  out, c_s, run_s, _ = measure(dynamax_fns(mats)["dynamax_parallel"], (y,), reps)
  np.savez(out_path, mean=np.asarray(out[0]), run_s=run_s, compile_s=c_s)
  return 0


def _dynamax_parallel_guarded(t_len: int, reps: int, timeout_s: float, seed: int):
  """(mean, compile s, run s) from a child process, or None if it did not finish in time."""
  with tempfile.TemporaryDirectory() as tmp:
    path = str(pathlib.Path(tmp) / "out.npz")
    cmd = [sys.executable, "-m", "benchmarks.latent_dynamics_vs_dynamax",
           f"--child_dynamax_parallel={t_len}", f"--reps={reps}", f"--child_out={path}",
           f"--seed={seed}"]
    try:
      subprocess.run(cmd, check=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
      return None
    with np.load(path) as z:
      return z["mean"], float(z["compile_s"]), float(z["run_s"])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="T = 500 only (smoke test).")
  parser.add_argument("--out", default="results/bench", help="Directory of the JSON output.")
  parser.add_argument("--lengths", default="1000,10000,100000", help="Comma-separated T values.")
  parser.add_argument("--reps", type=int, default=5, help="Timed runs after the warm-up.")
  parser.add_argument("--parallel_timeout", type=float, default=300.0,
                      help="Seconds allowed to dynamax's parallel smoother's child process (CPU).")
  parser.add_argument("--seed", type=int, default=0, help="Seed of the simulated LDS data.")
  parser.add_argument("--skip_dynamax_parallel", action="store_true",
                      help="Leave dynamax's parallel smoother out (reported as not run).")
  parser.add_argument("--child_dynamax_parallel", type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument("--child_out", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child_dynamax_parallel:
    return _dynamax_parallel_child(args.child_dynamax_parallel, args.reps, args.child_out,
                                   args.seed)
  on_cpu = jax.default_backend() == "cpu"
  lengths = (500,) if args.quick else tuple(int(v) for v in args.lengths.split(","))
  reps = 2 if args.quick else args.reps
  rows = []
  for t_len in lengths:
    model, params, y, mats = problem(t_len, seed=args.seed)
    key = jax.random.key(1)
    res = {"T": t_len}
    means = {}
    for name, parallel in (("ours", False), ("ours_parallel", True)):
      print(f"T={t_len}: {name}...", flush=True)
      out, c_s, run_s, temp = measure(ours_fn(model, parallel), (params, y, key), reps)
      means[name] = np.asarray(out[0])
      res[f"{name}_s"], res[f"{name}_compile_s"] = run_s, c_s
      res[f"{name}_temp_bytes_per_step"] = None if temp is None else temp / t_len
      res[f"{name}_entropy"] = float(out[2])
    for name, fn in dynamax_fns(mats).items():
      print(f"T={t_len}: {name}...", flush=True)
      if name == "dynamax_parallel" and args.skip_dynamax_parallel:
        res[f"{name}_s"] = res[f"{name}_compile_s"] = None
        continue
      if name == "dynamax_parallel" and on_cpu:
        got = _dynamax_parallel_guarded(t_len, reps, args.parallel_timeout, args.seed)
        if got is None:
          print(f"T={t_len}: dynamax_parallel did not finish in {args.parallel_timeout:.0f} s "
                "(timed out; see the module docstring)", flush=True)
          res[f"{name}_s"] = res[f"{name}_compile_s"] = None
          continue
        means[name], c_s, run_s = got
      else:
        out, c_s, run_s, _ = measure(fn, (y,), reps)
        means[name] = np.asarray(out[0])
      res[f"{name}_s"], res[f"{name}_compile_s"] = run_s, c_s
    scale = float(np.max(np.abs(means["dynamax"])))
    for name in means:
      res[f"{name}_mean_rel_diff"] = float(np.max(np.abs(means[name] - means["dynamax"])) / scale)
    res["ratio_ours_vs_dynamax"] = res["ours_s"] / res["dynamax_s"]
    res["ratio_ours_parallel_vs_dynamax_parallel"] = (
        None if res["dynamax_parallel_s"] is None
        else res["ours_parallel_s"] / res["dynamax_parallel_s"])
    res["ratio_ours_parallel_vs_dynamax"] = res["ours_parallel_s"] / res["dynamax_s"]
    rows.append(res)

  header = (f"{'T':>7} {'ours s':>9} {'dynamax s':>10} {'ratio':>6} {'ours par s':>11} "
            f"{'dmx par s':>10} {'ratio':>6} {'compile ours/dmx s':>19} {'mean diff':>9} "
            f"{'temp B/step':>11}")
  print(f"device: {jax.devices()[0].platform}; latent 10, obs 50, float32; "
        "ours = mean + 1 sample + entropy, dynamax = RTS smoother (means + covs)")
  print(header)
  fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
  for r in rows:
    temp = r["ours_temp_bytes_per_step"]
    print(f"{r['T']:>7} {r['ours_s']:>9.4f} {r['dynamax_s']:>10.4f} "
          f"{r['ratio_ours_vs_dynamax']:>6.2f} {r['ours_parallel_s']:>11.4f} "
          f"{fmt(r['dynamax_parallel_s'], '>10.4f'):>10} "
          f"{fmt(r['ratio_ours_parallel_vs_dynamax_parallel'], '>6.2f'):>6} "
          f"{r['ours_compile_s']:>8.2f}/{r['dynamax_compile_s']:<8.2f}  "
          f"{r['ours_mean_rel_diff']:>9.1e} {temp if temp is None else round(temp):>11}")
  out_dir = pathlib.Path(args.out)
  out_dir.mkdir(parents=True, exist_ok=True)
  payload = {"name": NAME, "device": jax.devices()[0].platform, "quick": args.quick,
             "latent_dim": 10, "obs_dim": 50, "rows": rows}
  (out_dir / f"{NAME}.json").write_text(json.dumps(payload, indent=1))
  bad = [r for r in rows if not all(math.isfinite(v) for v in r.values()
                                    if isinstance(v, float))]
  return 1 if bad else 0


if __name__ == "__main__":
  raise SystemExit(main())
