"""Reward influence of SAC-D's components over training, and the per-component values against
the discounted sums of the observed component rewards (MacGlashan et al. 2022, Secs. 3-4).

Influence curves show which reward terms steer the policy as it learns; the value comparison
checks that each head learned its own component's return (a head that disagrees with its
observed returns is a learning problem, a head that dwarfs the others is a design problem).

  python -m launch.agents.sacd_influence \
    --config=launch/agents/configs/sacd_influence.py:smoke --workdir=/tmp/si
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.sac import component_values  # noqa: E402
from launch import app  # noqa: E402
from launch.agents import sacd_runs as runs  # noqa: E402


def experiment(config, run: app.Run) -> dict:
  summary = {}
  n = len(config.envs)
  fig, axes = plt.subplots(2, n, figsize=(5 * n, 7), squeeze=False)
  for col, task_id in enumerate(config.envs):
    trainer, states, histories = runs.run_seeds(config, run, task_id, "sac_d",
                                                tag=f"{task_id}/sac_d")
    names = trainer.component_names
    steps = histories[0]["metrics_step"] * config.num_envs
    updating = histories[0]["updating"] > 0
    influence = np.mean([h["influence"] for h in histories], axis=0)     # [M, K]
    ax = axes[0, col]
    for i, name in enumerate(names):
      ax.plot(steps[updating], influence[updating, i], label=name)
    ax.set_title(f"{task_id}: reward influence")
    ax.set_xlabel("environment steps")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    final = runs.final_mean([h["influence"][h["updating"] > 0] for h in histories])
    evals = [component_values.evaluate_component_values(
        trainer, state, runs.make_env(task_id, config.num_envs, config.seed + 1000 + s),
        config.eval_steps, config.discount) for s, state in enumerate(states)]
    predicted = np.nanmean([e["predicted"] for e in evals], axis=0)
    observed = np.nanmean([e["observed"] for e in evals], axis=0)
    corr = np.nanmean([e["correlation"] for e in evals], axis=0) if any(
        np.isfinite(e["correlation"]).any() for e in evals) else np.full(len(names), np.nan)
    for i, name in enumerate(names):
      summary[f"influence/{task_id}/{name}"] = float(np.atleast_1d(final)[i])
      summary[f"value_predicted/{task_id}/{name}"] = float(predicted[i])
      summary[f"value_observed/{task_id}/{name}"] = float(observed[i])
      summary[f"value_correlation/{task_id}/{name}"] = float(corr[i])
    summary[f"eval_states/{task_id}"] = int(sum(e["num_states"] for e in evals))
    ax = axes[1, col]
    x = np.arange(len(names))
    ax.bar(x - 0.2, predicted, 0.4, label="critic head Q^i")
    ax.bar(x + 0.2, observed, 0.4, label="observed discounted sum")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    ax.set_title(f"{task_id}: per-component value")
    ax.legend(fontsize=7)
  fig.tight_layout()
  run.save_figure("influence_and_values", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
