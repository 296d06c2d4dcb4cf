"""A reward-design diagnosis in the spirit of MacGlashan et al. 2022 (Sec. 5).

The designer of LunarLanderContinuous has multiplied the fuel cost (main and side engine
components) by `misscale`. SAC-D trained on the mis-scaled reward shows it: the fuel components'
influence on the action and their share of the value grow, and the lander learns to avoid its
engines. Restoring the weights ("fixed") lowers the fuel influence and restores the return on
the task's own reward, which is how both variants are scored (each episode's return re-weighted
to the original weights).

  python -m launch.agents.sacd_diagnosis \
    --config=launch/agents/configs/sacd_diagnosis.py:smoke --workdir=/tmp/sd
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from launch import app  # noqa: E402
from launch.agents import sacd_runs as runs  # noqa: E402


def experiment(config, run: app.Run) -> dict:
  summary = {}
  variants = {"misscaled": {n: config.misscale for n in config.fuel_components}, "fixed": {}}
  fig, (ax_infl, ax_ret) = plt.subplots(1, 2, figsize=(10, 3.5))
  trainer = None  # Built once: the weights change the data, not the compiled functions.
  for variant, weights in variants.items():
    trainer, _, histories = runs.run_seeds(config, run, config.env, "sac_d",
                                           tag=f"{variant}/sac_d", weights=weights or None,
                                           trainer=trainer)
    names = list(trainer.component_names)
    fuel = [names.index(n) for n in config.fuel_components]
    w = np.array([weights.get(n, 1.0) for n in names])
    h0 = histories[0]
    updating = h0["updating"] > 0
    steps = h0["metrics_step"] * config.num_envs
    fuel_infl = [h["influence"][:, fuel].sum(-1) for h in histories]
    ax_infl.plot(steps[updating], np.mean(fuel_infl, 0)[updating], label=variant)
    summary[f"fuel_influence/{variant}"] = float(runs.final_mean(
        [f[h["updating"] > 0] for f, h in zip(fuel_infl, histories)]))
    # Share of the fuel heads in the summed |value| of the reward heads (entropy excluded).
    q = [np.abs(h["q_heads"][:, :len(names)]) for h in histories]
    share = [qi[:, fuel].sum(-1) / np.maximum(qi.sum(-1), 1e-8) for qi in q]
    summary[f"fuel_value_share/{variant}"] = float(runs.final_mean(
        [s[h["updating"] > 0] for s, h in zip(share, histories)]))
    summary[f"fuel_value/{variant}"] = float(runs.final_mean(
        [h["q_heads"][h["updating"] > 0][:, fuel].sum(-1) for h in histories]))
    # Score on the task's own reward: undo the weights of each episode's component returns.
    task_returns = [h["episode_components"] @ (1.0 / w) for h in histories]
    summary[f"task_return/{variant}"] = float(runs.final_mean(task_returns))
    summary[f"episodes/{variant}"] = int(sum(len(t) for t in task_returns))
    ax_ret.plot(np.concatenate([h["episode_step"] for h in histories]) * config.num_envs,
                np.concatenate(task_returns), ".", alpha=0.5, label=variant)
  ax_infl.set_title("influence of the fuel components")
  ax_infl.set_xlabel("environment steps")
  ax_infl.legend()
  ax_ret.set_title("episode return (original weights)")
  ax_ret.set_xlabel("environment steps")
  ax_ret.legend()
  fig.tight_layout()
  run.save_figure("diagnosis", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
