"""SAC vs SAC-D on envpool tasks: returns over environment steps, several seeds.

MacGlashan et al. 2022 report that decomposing the critic does not change SAC's performance;
this launcher trains both agents with the same hyperparameters and seeds and reports the final
returns, their difference in standard errors over seeds, and the return curves.

  python -m launch.agents.sacd_compare \
    --config=launch/agents/configs/sacd_compare.py:smoke --workdir=/tmp/sc
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from launch import app  # noqa: E402
from launch.agents import sacd_runs as runs  # noqa: E402


def experiment(config, run: app.Run) -> dict:
  summary = {}
  fig, axes = plt.subplots(1, len(config.envs), figsize=(5 * len(config.envs), 3.5),
                           squeeze=False)
  for ax, task_id in zip(axes[0], config.envs):
    finals = {}
    for agent in config.agents:
      _, _, histories = runs.run_seeds(config, run, task_id, agent, tag=f"{task_id}/{agent}")
      steps, curve = runs.return_curve(histories, config.return_window, config.env_steps,
                                       config.num_envs)
      per_seed = [runs.final_mean([h["episode_return"]]) for h in histories]
      finals[agent] = np.asarray(per_seed, np.float64)
      summary[f"final_return/{task_id}/{agent}"] = float(np.nanmean(per_seed))
      summary[f"final_return_std/{task_id}/{agent}"] = float(np.nanstd(per_seed, ddof=1)) if (
          len(per_seed) > 1) else float("nan")
      summary[f"final_return_per_seed/{task_id}/{agent}"] = [float(r) for r in per_seed]
      summary[f"episodes/{task_id}/{agent}"] = int(sum(len(h["episode_return"])
                                                       for h in histories))
      mean = np.nanmean(curve, axis=0) if np.isfinite(curve).any() else curve[0]
      ax.plot(steps, mean, marker="o", label=agent)
      if curve.shape[0] > 1:
        ax.fill_between(steps, np.nanmin(curve, 0), np.nanmax(curve, 0), alpha=0.2)
    if {"sac", "sac_d"} <= set(finals):
      a, b = finals["sac"], finals["sac_d"]
      se = np.sqrt(np.nanvar(a, ddof=1) / len(a) + np.nanvar(b, ddof=1) / len(b)) if (
          len(a) > 1 and len(b) > 1) else float("nan")
      summary[f"difference/{task_id}"] = float(np.nanmean(b) - np.nanmean(a))
      summary[f"difference_in_sac_se/{task_id}"] = float(
          (np.nanmean(b) - np.nanmean(a)) / se) if np.isfinite(se) and se > 0 else float("nan")
    ax.set_title(task_id)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.legend()
  fig.tight_layout()
  run.save_figure("returns", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
