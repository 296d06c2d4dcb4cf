"""latent_dynamics against dynamax on the exact LDS smoothing posterior: time and agreement.

The benchmark `benchmarks.latent_dynamics_vs_dynamax` as a registered experiment, so that
`make demo` shows the speed ratio beside the papers' claims: for an LDS with latent dimension 10
and 50 Gaussian observations, our exact posterior (block-tridiagonal Cholesky of the precision,
Archer et al. 2015's structure; mean, one sample and the entropy) against dynamax's RTS smoother
on the same data in one process, after compilation (reported apart), with the largest difference
of the posterior means relative to their scale.
"""
import json

from benchmarks import latent_dynamics_vs_dynamax as bench
from launch import app


def experiment(config, run: app.Run) -> dict:
  out = run.workdir / "bench"
  argv = [f"--seed={config.seed}", f"--lengths={','.join(map(str, config.lengths))}",
          f"--reps={config.reps}", f"--out={out}",
          f"--parallel_timeout={config.parallel_timeout_s}"]
  if not config.dynamax_parallel:
    argv.append("--skip_dynamax_parallel")
  bench.main(argv)
  rows = json.loads((out / f"{bench.NAME}.json").read_text())["rows"]
  summary = {}
  for r in rows:
    t = r["T"]
    summary[f"ours_s/T{t}"], summary[f"dynamax_s/T{t}"] = r["ours_s"], r["dynamax_s"]
    summary[f"speedup_over_dynamax/T{t}"] = r["dynamax_s"] / r["ours_s"]
    summary[f"mean_rel_diff/T{t}"] = r["ours_mean_rel_diff"]
    summary[f"compile_s/T{t}"] = r["ours_compile_s"]
    if r.get("dynamax_parallel_s") is not None:
      summary[f"speedup_parallel_over_dynamax_parallel/T{t}"] = (
          r["dynamax_parallel_s"] / r["ours_parallel_s"])
  return summary


if __name__ == "__main__":
  app.run(experiment)
