"""Poor vs good environment model, I2A vs Monte-Carlo search with the same model (Weber et al.
2017, Sec. 4.2, Fig. 4 right).

Trains the environment model twice on the same data (good: `config.model_chunks` chunks; poor:
one chunk of `config.poor_model_steps` Adam steps), scores both on held-out trajectories
(`multi_step_accuracy`), trains the large standard agent and I2A with each model
(`config.num_seeds` seeds each), and evaluates the Monte-Carlo search agent
(`agents.i2a.mc_search`, rollout policy and value of each standard seed) with each model.
Outputs: `figures/curves.png`, `results.md`, summary keys `<value>/<agent>` for agents
`standard`, `i2a_good`, `i2a_poor`, `mc_good`, `mc_poor`, and `model_frame_accuracy_k<k>/<model>`.

  python -m launch.agents.i2a_poor_model --config=launch/agents/configs/i2a_poor_model.py:smoke \
    --workdir=/tmp/i2a_poor
"""
import time

import jax
import numpy as np

from agents import i2a
from launch import app
from launch.agents import a2c as a2c_launch
from launch.agents import i2a_common


def experiment(config, run: app.Run) -> dict:
  t0 = time.perf_counter()
  tag = config.env
  env, params = i2a_common.environment(tag, config)
  models, summary = {}, {}
  poor = config.copy_and_resolve_references()
  poor.model_train.steps_per_chunk = int(config.poor_model_steps)
  for name, cfg, chunks in (("good", config, config.model_chunks),
                            ("poor", poor, config.poor_model_chunks)):
    models[name] = i2a_common.env_model(run, cfg, name, tag, env, params, model_chunks=chunks)
    info = models[name][2]
    summary.update({f"model_frame_accuracy_k{k}/{name}": f
                    for k, f in zip(info["ks"], info["frame_accuracy"])})
    summary[f"model_reward_accuracy/{name}"] = info["reward_accuracy"]
  curves, rows = {}, []

  def record(name, values, stats=None):
    if stats is not None:
      curves[name] = stats
    rows.append((name, values))
    summary.update({f"{k}/{name}": v for k, v in values.items()})

  values, stats, std_trainer, std_state = i2a_common.train_and_evaluate(
      run, config, "standard", i2a_common.agent_config(config, "standard"), tag, env, params)
  record("standard", values, stats)
  for name in ("good", "poor"):
    model, model_params, _ = models[name]
    values, stats, _, _ = i2a_common.train_and_evaluate(
        run, config, f"i2a_{name}", i2a_common.agent_config(config, "i2a"), tag, env, params,
        model=model, model_params=model_params)
    record(f"i2a_{name}", values, stats)
  std_params = jax.device_get(std_state.params)
  eval_params = a2c_launch.evaluation_params(tag, env, params, config)
  for name in ("good", "poor"):
    t1 = time.perf_counter()
    model, model_params, _ = models[name]

    def policy_fn(s, model=model, model_params=model_params):
      seed_params = jax.tree.map(lambda x: x[s], std_params)
      rollout_fn, value_fn = i2a.standard_agent_parts(std_trainer.network, seed_params)
      return i2a.make_mc_search_policy(model, model_params, rollout_fn, value_fn,
                                       depth=int(config.mc_depth),
                                       num_rollouts=int(config.mc_rollouts),
                                       discount=float(config.agent.discount))
    episodes = i2a_common.evaluate_policy(policy_fn, env, eval_params, config,
                                          jax.random.fold_in(jax.random.key(config.seed),
                                                             10_000), config.num_seeds)
    values = i2a_common.episode_values(episodes)
    values["wall_s"] = time.perf_counter() - t1
    record(f"mc_{name}", values)
  i2a_common.figure(run, {f"{tag}: return": curves}, "curves")
  i2a_common.figure(run, {f"{tag}: solve rate": curves}, "solve_rate", metric="solve_rate")
  lines = [f"Poor vs good environment model on {tag}: {config.num_seeds} seeds; I2A and the "
           "standard agent trained, Monte-Carlo search (depth "
           f"{config.mc_depth}, {config.mc_rollouts} rollouts per action, each standard seed's "
           "policy and value) evaluated with each model; held-out levels.", "",
           "| agent | solve rate | final return | wall (s) |", "|---|---|---|---|"]
  for name, v in rows:
    lines.append(f"| {name} | {i2a_common.fmt(v['solve_rate'], 3)} | "
                 f"{i2a_common.fmt(v['final_return'])} ± {i2a_common.fmt(v['final_return_se'])}"
                 f" | {v['wall_s']:.0f} |")
  lines.append("")
  for name in ("good", "poor"):
    lines += i2a_common.model_lines(name, models[name][2])
  i2a_common.write_table(run, lines)
  summary["uniform_solve_rate"] = float(np.nan_to_num(rows[0][1].get("random_solve_rate")))
  summary["experiment_wall_s"] = time.perf_counter() - t0
  return summary


if __name__ == "__main__":
  app.run(experiment)
