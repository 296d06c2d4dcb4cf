"""I2A on the five MiniPacman tasks with one shared environment model: returns over frames of
I2A, the copy-model agent and the large standard agent (Weber et al. 2017, Sec. 5, Table 1).

The model is trained once, on data from a partly trained standard agent on the first task, and
cached in the workdir (`launch.agents.i2a_common.env_model`); every task reuses its params with
the task's reward values. Per task and agent, `config.num_seeds` seeds train under `jax.vmap`
(one resumable loop `<task>_<agent>`), then the final policy is evaluated beside a uniform one.
Outputs: `figures/curves.png` (one panel per task), `results.md`, summary keys
`<value>/<task>/<agent>` (`final_return`, `final_return_se`, `random_return`, `margin_se`,
`frames`, `wall_s`) and `model_frame_accuracy_k<k>`.

  python -m launch.agents.i2a_minipacman --config=launch/agents/configs/i2a_minipacman.py:smoke \
    --workdir=/tmp/i2a_minipacman
"""
import time

from agents import i2a
from launch import app
from launch.agents import i2a_common


def experiment(config, run: app.Run) -> dict:
  t0 = time.perf_counter()
  for tag in config.tasks:
    if not tag.startswith("minipacman-"):
      raise ValueError(f"config.tasks: {tag!r} is not a MiniPacman task.")
  first = config.tasks[0]
  env0, params0 = i2a_common.environment(first, config)
  model0, model_params, info = i2a_common.env_model(run, config, "minipacman", first, env0,
                                                    params0)
  summary = {f"model_frame_accuracy_k{k}": f for k, f in zip(info["ks"],
                                                               info["frame_accuracy"])}
  summary["model_reward_accuracy"] = info["reward_accuracy"]
  panels, rows = {}, []
  for tag in config.tasks:
    env, params = i2a_common.environment(tag, config)
    model = i2a.env_model_for(model0.config, env, params, i2a_common.reward_spec(tag, params))
    panels[tag] = {}
    for kind in config.agents:
      values, stats, _, _ = i2a_common.train_and_evaluate(
          run, config, f"{tag}_{kind}", i2a_common.agent_config(config, kind), tag, env, params,
          model=model, model_params=model_params)
      panels[tag][kind] = stats
      rows.append((tag, kind, values))
      summary.update({f"{k}/{tag}/{kind}": v for k, v in values.items()})
      run.log_metrics(int(values["frames"]), {f"{k}/{tag}/{kind}": v
                                              for k, v in values.items()}, stream="final")
  i2a_common.figure(run, panels, "curves")
  lines = [f"I2A on MiniPacman, one environment model for all tasks; {config.num_seeds} seeds "
           "per agent; final return (mean +- SE over seeds) beside a uniform policy.", "",
           "| task | agent | final return | uniform | margin (SE) | frames per seed | wall (s) |",
           "|---|---|---|---|---|---|---|"]
  for tag, kind, v in rows:
    lines.append(f"| {tag} | {kind} | {i2a_common.fmt(v['final_return'])} ± "
                 f"{i2a_common.fmt(v['final_return_se'])} | {i2a_common.fmt(v['random_return'])}"
                 f" | {i2a_common.fmt(v['margin_se'], 1)} | {v['frames']:.0f} | "
                 f"{v['wall_s']:.0f} |")
  lines.append("")
  lines += i2a_common.model_lines("minipacman", info)
  i2a_common.write_table(run, lines)
  summary["experiment_wall_s"] = time.perf_counter() - t0
  return summary


if __name__ == "__main__":
  app.run(experiment)
