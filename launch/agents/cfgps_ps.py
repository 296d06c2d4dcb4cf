"""CF-GPS policy search on PO-Sokoban (Buesing et al. 2019, Sec. 5.2; issue 19).

Runs `agents.cfgps.ps_experiment` and writes `figures/solve_rate.png` and
`figures/return.png` (held-out solve rate and return of pi against real episodes, per method:
the mean over seeds as a line, each seed as thin marked lines), `results.md` (per method the
final and area-under-curve solve rates and returns with standard errors over seeds, the real
episodes' solve rate, the scenarios' consistency), `results.json` (every curve) and summary
keys per method m: `eval_solve_rate_final/<m>` and `_se`, `eval_return_final/<m>` and `_se`,
`eval_solve_rate_auc/<m>`, `train_solve_rate/<m>` (all real episodes), `consistent/<m>`; and
`wall_s`, `scenario_train_s`.

  python -m launch.agents.cfgps_ps --config=launch/agents/configs/cfgps_ps.py:smoke \
    --workdir=/tmp/cfgps_ps
"""
import json

import matplotlib
from absl import logging

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.cfgps import ps_experiment  # noqa: E402
from launch import app  # noqa: E402
from launch.agents.configs import cfgps_ps as config_module  # noqa: E402


def summarise(res: dict) -> dict:
  """Flat summary keys of `ps_experiment.run`'s result (module docstring)."""
  s = {}
  for m, r in res["methods"].items():
    for metric in ("eval_solve_rate", "eval_return"):
      mean, se = ps_experiment.final_stats(r, metric)
      s[f"{metric}_final/{m}"], s[f"{metric}_final_se/{m}"] = mean, se
      mean, se = ps_experiment.area_stats(r, metric)
      s[f"{metric}_auc/{m}"], s[f"{metric}_auc_se/{m}"] = mean, se
    s[f"train_solve_rate/{m}"] = float(np.mean(r["train_solve_rate"]))
    s[f"train_return/{m}"] = float(np.mean(r["train_return"]))
    if "consistent" in r:
      s[f"consistent/{m}"] = float(np.mean(r["consistent"]))
      s[f"cf_solve_rate/{m}"] = float(np.mean(r["cf_solve_rate"]))
    s[f"wall_s/{m}"] = r["wall_s"]
  s["wall_s"] = res["wall_s"]
  s["scenario_train_s"] = res.get("scenario_train_s", 0.0)
  return s


def _figure(run: app.Run, res: dict, metric: str, ylabel: str) -> None:
  fig, ax = plt.subplots(figsize=(6, 4))
  x = np.asarray(res["real_episodes"])
  for i, (m, r) in enumerate(res["methods"].items()):
    y = np.asarray(r[metric], np.float64)
    color = f"C{i}"
    for seed_curve in y:
      ax.plot(x, seed_curve, color=color, lw=0.7, alpha=0.5, marker=".", ms=3)
    mean = y.mean(0)
    ax.plot(x, mean, color=color, lw=2, label=ps_experiment.LABELS[m])
    if y.shape[0] > 1:
      se = y.std(0, ddof=1) / np.sqrt(y.shape[0])
      ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.15)
  ax.set_xlabel("real episodes")
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=7)
  ax.set_title("PO-Sokoban policy search (held-out levels; mean ± SE over seeds, thin: "
               "seeds)", fontsize=8)
  fig.tight_layout()
  run.save_figure(metric.replace("eval_", ""), fig)
  plt.close(fig)


def _table(run: app.Run, res: dict, summary: dict) -> None:
  cfg = res["config"]
  lines = [f"Held-out performance of pi after {cfg['iterations']} rounds of "
           f"{cfg['episodes_per_iteration']} real episodes ({res['real_episodes'][-1]} real "
           f"episodes per seed), mean ± SE over {cfg['num_seeds']} seeds; "
           f"{cfg['num_eval_levels']} held-out levels per evaluation. AUC: the mean over rounds "
           "1..end of the curve.", "",
           "| method | solve rate (final) | return (final) | solve rate (AUC) | return (AUC) "
           "| real episodes solved | scenario consistent with h_t | counterfactual rollouts "
           "solved |", "|---|---|---|---|---|---|---|---|"]
  for m in res["methods"]:
    def cell(key, fmt="{:.3f}"):
      return (fmt + " ± " + fmt).format(summary[f"{key}/{m}"], summary[f"{key}_se/{m}"])
    cons = (f"{summary[f'consistent/{m}']:.3f}" if f"consistent/{m}" in summary else "")
    cfs = (f"{summary[f'cf_solve_rate/{m}']:.3f}" if f"cf_solve_rate/{m}" in summary else "")
    label = ps_experiment.LABELS[m].replace("|", "\\|")  # a table cell's pipe, escaped
    lines.append(f"| {label} | {cell('eval_solve_rate_final')} | "
                 f"{cell('eval_return_final', '{:.2f}')} | {cell('eval_solve_rate_auc')} | "
                 f"{cell('eval_return_auc', '{:.2f}')} | {summary[f'train_solve_rate/{m}']:.3f} "
                 f"| {cons} | {cfs} |")
  init = {m: (float(np.mean(np.asarray(r["eval_solve_rate"])[:, 0])),
              float(np.mean(np.asarray(r["eval_return"])[:, 0])))
          for m, r in res["methods"].items()}
  lines += ["", "Held-out solve rate / return before any round (the model-based methods share "
            "their initial pi): " + ", ".join(f"{m} {a:.3f} / {b:.2f}"
                                              for m, (a, b) in init.items()) + ".",
            "", f"Wall time {res['wall_s']:.0f} s (scenario model "
            f"{res.get('scenario_train_s', 0.0):.0f} s, "
            f"{'loaded from the cache' if res.get('scenario_loaded') else 'trained'}); per "
            "method: " + ", ".join(f"{m} {r['wall_s']:.0f} s" for m, r in res["methods"].items())
            + "."]
  if run.is_writer:
    (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


def experiment(config, run: app.Run) -> dict:
  cfg = config_module.ps_config(config, run.workdir)
  res = ps_experiment.run(cfg, log=logging.info)
  summary = summarise(res)
  _figure(run, res, "eval_solve_rate", "held-out solve rate")
  _figure(run, res, "eval_return", "held-out return")
  _table(run, res, summary)
  if run.is_writer:
    (run.workdir / "results.json").write_text(json.dumps(res, default=str, indent=1))
  return summary


if __name__ == "__main__":
  app.run(experiment)
