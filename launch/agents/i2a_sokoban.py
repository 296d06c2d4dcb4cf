"""I2A on Sokoban: solve rate over frames for I2A at depths `config.depths`, the copy-model agent
and the large standard agent (Weber et al. 2017, Sec. 4.1, Fig. 3).

One environment model (trained first on data from a partly trained standard agent, cached in
the workdir: `launch.agents.i2a_common.env_model`), then every agent trains `config.num_seeds`
seeds under `jax.vmap` (one resumable loop per agent) and is evaluated beside a uniform policy
on held-out levels. Outputs: `figures/curves.png` (return and solve rate over frames),
`results.md`, and summary keys `<value>/<agent>` (agents `standard`, `copy`, `i2a_d<depth>`;
values `final_return`, `final_return_se`, `solve_rate`, `random_return`, `margin_se`,
`frames`, `wall_s`) and `model_frame_accuracy_k<k>`.

  python -m launch.agents.i2a_sokoban --config=launch/agents/configs/i2a_sokoban.py:smoke \
    --workdir=/tmp/i2a_sokoban
"""
import time

from launch import app
from launch.agents import i2a_common


def experiment(config, run: app.Run) -> dict:
  t0 = time.perf_counter()
  tag = config.env
  env, params = i2a_common.environment(tag, config)
  model, model_params, info = i2a_common.env_model(run, config, "good", tag, env, params)
  summary = {f"model_frame_accuracy_k{k}": f for k, f in zip(info["ks"],
                                                               info["frame_accuracy"])}
  summary["model_reward_accuracy"] = info["reward_accuracy"]
  runs = []
  middle = config.depths[len(config.depths) // 2]
  for kind in config.agents:
    depths = config.depths if kind == "i2a" else (middle,)
    for depth in depths:
      name = f"i2a_d{depth}" if kind == "i2a" else kind
      runs.append((name, i2a_common.agent_config(config, kind, depth)))
  curves, rows = {}, []
  for salt, (name, cfg) in enumerate(runs):
    values, stats, _, _ = i2a_common.train_and_evaluate(
        run, config, name, cfg, tag, env, params, model=model, model_params=model_params,
        salt=0)
    del salt  # every agent starts from the same seed keys
    curves[name] = stats
    rows.append((name, values))
    summary.update({f"{k}/{name}": v for k, v in values.items()})
    run.log_metrics(int(values["frames"]), {f"{k}/{name}": v for k, v in values.items()},
                    stream="final")
  i2a_common.figure(run, {f"{tag}: return": curves}, "curves")
  i2a_common.figure(run, {f"{tag}: solve rate": curves}, "solve_rate", metric="solve_rate")
  lines = [f"I2A on {tag}: {config.num_seeds} seeds per agent, the final policy on held-out "
           "levels (mean +- SE over seeds) beside a uniform policy.", "",
           "| agent | solve rate | final return | margin over uniform (SE) | frames per seed | "
           "wall (s) |", "|---|---|---|---|---|---|"]
  for name, v in rows:
    lines.append(f"| {name} | {i2a_common.fmt(v['solve_rate'], 3)} | "
                 f"{i2a_common.fmt(v['final_return'])} ± {i2a_common.fmt(v['final_return_se'])}"
                 f" | {i2a_common.fmt(v['margin_se'], 1)} | {v['frames']:.0f} | "
                 f"{v['wall_s']:.0f} |")
  lines += [f"Uniform policy: solve rate {i2a_common.fmt(rows[0][1]['random_solve_rate'], 3)}, "
            f"return {i2a_common.fmt(rows[0][1]['random_return'])}.", ""]
  lines += i2a_common.model_lines("good", info)
  i2a_common.write_table(run, lines)
  summary["experiment_wall_s"] = time.perf_counter() - t0
  return summary


if __name__ == "__main__":
  app.run(experiment)
