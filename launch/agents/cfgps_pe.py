"""CF-GPS policy evaluation on PO-Sokoban (Buesing et al. 2019, Sec. 5.1; issue 19).

Runs `agents.cfgps.pe_experiment` and writes `figures/relative_error.png` (relative error vs t
per target policy, MB-PE and IS beside), `results.md` (one row per target and estimator, and
the posterior's quality per t) and summary keys: per target `true_value/eps<e>`,
`<estimator>_rel_error/eps<e>` and `..._se` (estimators: mb, is, wis, cf_true_level, cf_t<t>),
their means over targets `<estimator>_rel_error_mean`, `is_rel_error_min`, and per t the
posterior's `posterior_log_lik_t<t>`, `posterior_exact_t<t>`, `posterior_consistent_t<t>`,
`posterior_solvable_t<t>`; `wall_s`.

  python -m launch.agents.cfgps_pe --config=launch/agents/configs/cfgps_pe.py:smoke \
    --workdir=/tmp/cfgps_pe
"""
import json

import matplotlib
from absl import logging

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.cfgps import pe_experiment, scenario  # noqa: E402
from launch import app  # noqa: E402
from launch.agents.configs import cfgps_pe as pe_configs  # noqa: E402

ESTIMATORS = ("mb", "is", "wis", "cf_true_level")


def pe_config(config) -> pe_experiment.PEConfig:
  """The `PEConfig` of a launcher config."""
  return pe_experiment.PEConfig(
      seed=int(config.seed), height=int(config.height), width=int(config.width),
      num_boxes=int(config.num_boxes), horizon=int(config.horizon),
      bank_seed=int(config.bank_seed), num_levels=int(config.num_levels),
      num_eval_levels=int(config.num_eval_levels), epsilons=tuple(config.epsilons),
      t_set=tuple(int(t) for t in config.t_set), true_value_reps=int(config.true_value_reps),
      max_floor=int(config.max_floor), posterior_tries=int(config.posterior_tries),
      scenario=pe_configs.scenario_config(config, scenario.T_SET),
      scenario_chunks=int(config.scenario_chunks))


def summarise(res: dict, t_set) -> dict:
  """Flat summary keys of `pe_experiment.run`'s result (module docstring)."""
  s = {}
  names = ESTIMATORS + tuple(f"cf_t{t}" for t in t_set)
  for tag, p in res["policies"].items():
    s[f"true_value/{tag}"] = p["true_value"]
    s[f"true_value_se/{tag}"] = p["true_value_se"]
    s[f"solve_rate/{tag}"] = p["solve_rate"]
    for n in names:
      s[f"{n}_rel_error/{tag}"] = p[n]["rel_error"]
      s[f"{n}_rel_error_se/{tag}"] = p[n]["rel_error_se"]
      s[f"{n}_value/{tag}"] = p[n]["value"]
  for n in names:
    errs = [p[n]["rel_error"] for p in res["policies"].values()]
    s[f"{n}_rel_error_mean"] = float(np.mean(errs))
  s["is_rel_error_min"] = float(min(p["is"]["rel_error"] for p in res["policies"].values()))
  last = t_set[-1]
  s["cf_t50_rel_error_mean"] = s[f"cf_t{last}_rel_error_mean"]  # the claims' key (t = T)
  for t, row in res["posterior"].items():
    for k in ("log_lik", "exact", "consistent", "solvable", "consistent_and_solvable"):
      if k in row:
        s[f"posterior_{k}_t{t}"] = row[k]
  s["posterior_exact_t50"] = res["posterior"][last]["exact"]
  for t, row in res.get("rejection", {}).items():
    s[f"rejection_consistent_t{t}"] = row["found"]
    s[f"rejection_exact_t{t}"] = row["exact"]
  s["wall_s"] = res["wall_s"]
  s["scenario_train_s"] = res["scenario_train_s"]
  return s


def _figure(run: app.Run, res: dict, t_set) -> None:
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, (_tag, p) in enumerate(res["policies"].items()):
    color = f"C{i}"
    err = [p[f"cf_t{t}"]["rel_error"] for t in t_set]
    se = [p[f"cf_t{t}"]["rel_error_se"] for t in t_set]
    ax.errorbar(t_set, err, yerr=se, color=color, marker="o",
                label=f"CF-PE, eps={p['epsilon']:g} (J={p['true_value']:.2f})")
    ax.axhline(p["mb"]["rel_error"], color=color, ls="--", lw=1)
    ax.scatter([t_set[-1] + 4], [p["is"]["rel_error"]], color=color, marker="x")
  ax.plot([], [], "k--", lw=1, label="MB-PE (learned prior)")
  ax.scatter([], [], color="k", marker="x", label="per-episode IS")
  ax.set_xlabel("t (steps of history the posterior sees)")
  ax.set_ylabel("relative error |J_hat - J| / J")
  ax.set_yscale("symlog", linthresh=0.05)
  ax.legend(fontsize=7)
  ax.set_title("PO-Sokoban policy evaluation (uniform behaviour)", fontsize=9)
  fig.tight_layout()
  run.save_figure("relative_error", fig)
  plt.close(fig)


def _table(run: app.Run, res: dict, t_set) -> None:
  lines = ["Relative error |J_hat - J| / J (+- SE, with the true value's SE) of each estimator "
           "per target policy; J from on-policy episodes on the held-out levels.", "",
           "| estimator | " + " | ".join(f"eps={p['epsilon']:g} (J={p['true_value']:.3f})"
                                          for p in res["policies"].values()) + " |",
           "|---|" + "---|" * len(res["policies"])]
  for n in ("mb",) + tuple(f"cf_t{t}" for t in t_set) + ("cf_true_level", "is", "wis"):
    cells = [f"{p[n]['rel_error']:.3f} ± {p[n]['rel_error_se']:.3f}"
             for p in res["policies"].values()]
    lines.append(f"| {n} | " + " | ".join(cells) + " |")
  lines += ["", "Posterior p(U | h_t) on the held-out episodes (one sample each):", "",
            "| t | log-lik of true level (nats) | sample = true level | consistent with h_t "
            "| solvable | consistent and solvable |", "|---|---|---|---|---|---|"]
  for t, r in res["posterior"].items():
    lines.append(f"| {t} | {r['log_lik']:.1f} ± {r['log_lik_se']:.1f} | {r['exact']:.3f} | "
                 f"{r['consistent']:.3f} | {r.get('solvable', float('nan')):.3f} | "
                 f"{r.get('consistent_and_solvable', float('nan')):.3f} |")
  if res.get("rejection"):
    lines += ["", "CF-PE's levels with rejection of samples that contradict h_t (up to "
              f"{res['config']['posterior_tries']} tries per episode):", "",
              "| t | a consistent sample found | sample = true level |", "|---|---|---|"]
    for t, r in res["rejection"].items():
      lines.append(f"| {t} | {r['found']:.3f} | {r['exact']:.3f} |")
  if run.is_writer:
    (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


def experiment(config, run: app.Run) -> dict:
  cfg = pe_config(config)
  res = pe_experiment.run(cfg, log=logging.info)
  _figure(run, res, cfg.t_set)
  _table(run, res, cfg.t_set)
  if run.is_writer:
    (run.workdir / "results.json").write_text(json.dumps(res, default=float, indent=1))
  return summarise(res, cfg.t_set)


if __name__ == "__main__":
  app.run(experiment)
