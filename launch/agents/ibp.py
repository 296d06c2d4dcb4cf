"""IBP (Pascanu et al. 2017) on Spaceship: the planner's experiments (issue 18).

One launcher, three registered experiments, chosen by `config.experiment`:
- `budget` (`configs/ibp_budget.py`, the paper's Fig. 3 question): task loss against the
  maximum number of imaginations per action (0 = the SVG controller alone, the paper's
  baseline), for 1, 2 and 3 external actions.
- `tau` (`configs/ibp_tau.py`): imaginations per action and task loss against the imagination
  cost tau, with the learned manager deciding when to act.
- `strategies` (`configs/ibp_strategies.py`): 1-step vs n-step vs tree at a fixed budget, for
  both fuel prices.

Every experiment first pre-fits the imagination (interaction network, supervised on
random-thrust transitions, held-out error in the summary), then, per setting, trains
`config.num_seeds` planners together (`jax.vmap` over seeds, `launch.train_loop`, resumable by
setting name) and evaluates each on `config.eval_episodes` fresh scenes.
`config.imagination_training`: `"joint"` (default; [P] the model trained together with the
planner on its own supervised loss, on the planner's real transitions, the pre-fit of
`warm_start_steps` its warm start) or `"frozen"` (the pre-fit of `imagination_steps` is the
whole of its training). Outputs: `figures/<experiment>.png`, `results.md` (one row per setting:
task loss mean +- SE over seeds, imaginations per action, fuel, final distance, the model's
held-out position error after training, wall time) and summary keys `<metric>/<setting>`
(`task_loss`, `task_loss_se`, `imaginations`, `final_distance`, `fuel`, and when joint
`imagination_error` on the random-thrust held-out transitions and `imagination_error_own` on the
evaluation episodes' real transitions), settings named `K<actions>_n<budget>`, `tau<i>` (i-th
tau), `<strategy>_p<price index>`.

  python -m launch.agents.ibp_budget --config=launch/agents/configs/ibp_budget.py:smoke \
    --workdir=/tmp/ibp_budget
"""
import time

import matplotlib
from absl import logging

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents import ibp  # noqa: E402
from agents.ibp import train as ibp_train  # noqa: E402
from envs import spaceship as ss  # noqa: E402
from launch import app  # noqa: E402

EXPERIMENTS = ("budget", "tau", "strategies")
IMAGINATION_TRAINING = ("joint", "frozen")


def settings(config) -> list[tuple[str, int, float, ibp.PlannerConfig]]:
  """`(name, num_actions, fuel_price, PlannerConfig)` of every setting of `config.experiment`."""
  if config.experiment not in EXPERIMENTS:
    raise ValueError(f"config.experiment must be one of {EXPERIMENTS}; got "
                     f"{config.experiment!r}")
  if config.imagination_training not in IMAGINATION_TRAINING:
    raise ValueError(f"config.imagination_training must be one of {IMAGINATION_TRAINING}; got "
                     f"{config.imagination_training!r}")
  base = ibp.PlannerConfig(memory_size=config.memory_size,
                           controller_hidden=tuple(config.controller_hidden),
                           manager_hidden=tuple(config.manager_hidden),
                           baseline_hidden=tuple(config.manager_hidden),
                           entropy_coef=config.entropy_coef)
  out = []
  if config.experiment == "budget":
    for k in config.num_actions:
      for n in config.budgets:
        out.append((f"K{k}_n{n}", int(k), config.fuel_prices[0],
                    base.replace(max_imaginations=int(n), strategy=config.strategy,
                                 fixed_budget=True)))
  elif config.experiment == "tau":
    for i, tau in enumerate(config.taus):
      out.append((f"tau{i}", int(config.num_actions[0]), config.fuel_prices[0],
                  base.replace(max_imaginations=int(config.budgets[0]), strategy=config.strategy,
                               fixed_budget=False, imagination_cost=float(tau))))
  else:
    for strategy in config.strategies:
      for i, price in enumerate(config.fuel_prices):
        out.append((f"{strategy}_p{i}", int(config.num_actions[0]), float(price),
                    base.replace(max_imaginations=int(config.budgets[0]), strategy=strategy,
                                 fixed_budget=True)))
  for _, _, _, pc in out:
    ibp.planner.check_config(pc)
  return out


def experiment(config, run: app.Run) -> dict:
  todo = settings(config)   # refuses a bad experiment or planner field before any training
  env = ss.Spaceship()
  base_params = env.default_params
  key = jax.random.key(config.seed)
  joint = config.imagination_training == "joint"
  t0 = time.perf_counter()
  fit = ibp_train.fit_imagination(
      env, base_params, jax.random.fold_in(key, 1), num_episodes=config.imagination_episodes,
      steps=config.warm_start_steps if joint else config.imagination_steps)
  summary = {"imagination_position_error": fit.held_out["model"]["position_error"],
             "ballistic_position_error": fit.held_out["ballistic"]["position_error"],
             "imagination_wall_s": time.perf_counter() - t0}
  logging.info("imagination (%s): pre-fit held-out position error %.3f (ballistic %.3f)",
               config.imagination_training, summary["imagination_position_error"],
               summary["ballistic_position_error"])
  tc = ibp_train.TrainConfig(learning_rate=config.learning_rate, batch_size=config.batch_size,
                             updates_per_chunk=config.updates_per_chunk,
                             eval_episodes=config.eval_episodes,
                             model_learning_rate=config.model_learning_rate)
  rows = []
  seed_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(key, 2), s))(
      jnp.arange(config.num_seeds))
  for name, num_actions, price, pc in todo:
    t1 = time.perf_counter()
    env_params = base_params.replace(num_actions=num_actions, fuel_price=price)
    if joint:
      planner = ibp.make_planner(pc, env, env_params, model=fit.model, model_params=fit.params)
    else:
      planner = ibp.make_planner(pc, env, env_params, imagine=fit.imagine)
    trainer = ibp_train.make_trainer(planner, tc)
    state = run.train_loop(trainer.init, trainer.chunk, config.num_chunks, name=name,
                           seed_keys=seed_keys)
    params = jax.device_get(state.params)
    per_seed = [trainer.evaluate(jax.tree.map(lambda x, s=s: x[s], params),
                                 jax.random.fold_in(key, 3))
                for s in range(config.num_seeds)]
    tl = np.array([e["task_loss"] for e in per_seed])
    values = {
        "task_loss": float(tl.mean()),
        "task_loss_se": float(tl.std(ddof=1) / np.sqrt(len(tl))) if len(tl) > 1 else
        float(per_seed[0]["task_loss_se"]),
        "task_loss_per_seed": tl,
        "imaginations": float(np.mean([e["imaginations_per_action"] for e in per_seed])),
        "root_fraction": float(np.mean([e["root_fraction"] for e in per_seed])),
        "final_distance": float(np.mean([e["final_distance"] for e in per_seed])),
        "fuel": float(np.mean([e["fuel"] for e in per_seed])),
        "wall_s": time.perf_counter() - t1,
    }
    if joint:   # the jointly trained model's held-out errors (random thrusts; own episodes)
      values["imagination_error"] = float(np.mean([ibp_train.model_position_error(
          fit.model, jax.tree.map(lambda x, s=s: x[s], params["imagination"]), fit.test)
          for s in range(config.num_seeds)]))
      values["imagination_error_own"] = float(np.mean(
          [e["imagination_position_error"] for e in per_seed]))
    logging.info("%s: task loss %.4f +- %.4f, imaginations/action %.2f (%.0f s)", name,
                 values["task_loss"], values["task_loss_se"], values["imaginations"],
                 values["wall_s"])
    summary.update({f"{k}/{name}": v for k, v in values.items()})
    run.log_metrics(int(config.num_chunks * config.updates_per_chunk),
                    {f"{k}/{name}": v for k, v in values.items() if k != "task_loss_per_seed"},
                    stream="final")
    rows.append((name, num_actions, price, pc, values))
  _figure(run, config, rows)
  _table(run, config, rows, summary)
  return summary


def _figure(run: app.Run, config, rows) -> None:
  if config.experiment == "budget":
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for k in config.num_actions:
      sel = [(pc.max_imaginations, v) for _, kk, _, pc, v in rows if kk == k]
      x = [n for n, _ in sel]
      ax.errorbar(x, [v["task_loss"] for _, v in sel], [v["task_loss_se"] for _, v in sel],
                  marker="o", capsize=3, label=f"{k} external action{'s' if k > 1 else ''}")
    ax.set_xlabel("imaginations per action (0 = SVG controller alone)")
    ax.set_ylabel("task loss (held-out scenes)")
    ax.set_xticks(list(config.budgets))
  elif config.experiment == "tau":
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
    taus = list(config.taus)
    x = np.arange(len(taus))
    axes[0].plot(x, [v["imaginations"] for *_, v in rows], marker="o")
    axes[0].set_ylabel("imaginations per action")
    axes[1].errorbar(x, [v["task_loss"] for *_, v in rows], [v["task_loss_se"] for *_, v in rows],
                     marker="o", capsize=3)
    axes[1].set_ylabel("task loss")
    for ax in axes:
      ax.set_xticks(x)
      ax.set_xticklabels([f"{t:g}" for t in taus], fontsize=7)
      ax.set_xlabel("imagination cost tau")
    ax = axes[0]
  else:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    width = 0.8 / len(config.fuel_prices)
    for i, price in enumerate(config.fuel_prices):
      sel = [v for name, _, p, _, v in rows if name.endswith(f"_p{i}")]
      x = np.arange(len(sel)) + i * width
      ax.bar(x, [v["task_loss"] for v in sel], width, yerr=[v["task_loss_se"] for v in sel],
             capsize=3, label=f"fuel price {price:g}")
    ax.set_xticks(np.arange(len(config.strategies)) + 0.4 - width / 2)
    ax.set_xticklabels(list(config.strategies))
    ax.set_ylabel(f"task loss ({config.budgets[0]} imaginations per action)")
  if config.experiment != "tau":
    ax.legend(fontsize=7)
  fig.tight_layout()
  run.save_figure(config.experiment, fig)
  plt.close(fig)


def _table(run: app.Run, config, rows, summary) -> None:
  if not run.is_writer:
    return
  lines = [f"IBP on Spaceship, experiment `{config.experiment}`: {config.num_seeds} seeds per "
           f"setting, {config.num_chunks * config.updates_per_chunk} updates of "
           f"{config.batch_size} episodes, evaluated on {config.eval_episodes} held-out scenes "
           f"per seed (task loss: mean +- SE over seeds). Imagination trained "
           f"{config.imagination_training}; after its pre-fit, held-out position error "
           f"{summary['imagination_position_error']:.3f} of the mean displacement (ballistic "
           f"{summary['ballistic_position_error']:.3f}); the model error column: after the "
           "planner's training, on the random-thrust held-out transitions (joint only).", "",
           "| setting | actions | fuel price | strategy | budget | tau | task loss | "
           "imaginations / action | final distance | fuel | model error | wall (s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, k, price, pc, v in rows:
    err = f"{v['imagination_error']:.3f}" if "imagination_error" in v else "-"
    lines.append(f"| {name} | {k} | {price:g} | {pc.strategy} | {pc.max_imaginations}"
                 f"{' (fixed)' if pc.fixed_budget else ''} | {pc.imagination_cost:g} | "
                 f"{v['task_loss']:.4f} +- {v['task_loss_se']:.4f} | {v['imaginations']:.2f} | "
                 f"{v['final_distance']:.4f} | {v['fuel']:.5f} | {err} | {v['wall_s']:.0f} |")
  (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(experiment)
