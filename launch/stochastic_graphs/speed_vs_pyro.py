"""stochastic_graphs against Pyro on the NVIL sigmoid belief net: time per step and variance.

The benchmark `benchmarks.stochastic_graphs_vs_pyro` as a registered experiment, so that
`make demo` shows the speed ratio beside the papers' claims: the same one-layer SBN, initial
parameters and minibatch, trained by the same estimator in both (score function with the causal
cost and a learned input-dependent baseline: Mnih and Gregor 2014's NVIL, Pyro's
`TraceGraph_ELBO` with an `nn_baseline`). Reports Pyro's time per gradient step over ours
(after compilation, which is reported apart), and the encoder-gradient variance ratio with its
standard error at identical trained parameters (equal estimators: a ratio near 1).
"""
import json

from benchmarks import stochastic_graphs_vs_pyro as bench
from launch import app


def experiment(config, run: app.Run) -> dict:
  out = run.workdir / "bench"
  bench.main([f"--seed={config.seed}", f"--steps={config.steps}",
              f"--repeats={config.repeats}",
              f"--variance_samples={config.variance_samples}",
              f"--train_steps={config.train_steps}", f"--out={out}"])
  table = json.loads((out / "stochastic_graphs_vs_pyro.json").read_text())
  ratio, se = table["variance_ratio_ours_over_pyro"], table["variance_ratio_se"]
  return {"ours_step_ms": table["ours_step_ms"], "pyro_step_ms": table["pyro_step_ms"],
          "speedup_over_pyro": table["speedup_pyro_over_ours"],
          "ours_compile_s": table["ours_compile_s"],
          "variance_ratio_ours_over_pyro": ratio, "variance_ratio_se": se,
          "variance_ratio_distance_se": abs(ratio - 1.0) / se if se > 0 else float("inf"),
          "mean_gradient_frac_within_4se": table["trained/mean_gradient_frac_within_4se"]}


if __name__ == "__main__":
  app.run(experiment)
