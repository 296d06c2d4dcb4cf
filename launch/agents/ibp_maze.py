"""IBP (Pascanu et al. 2017, Sec. 4) on the maze: the single maze's held-out goal and the
multi-maze manager (issue 18, experiment 4).

- Single maze: planners with `config.budgets` imaginations per move (fixed budget; 0 = the
  controller alone) are trained on the 3 training goals and evaluated on the training goals and
  on the held-out 4th goal (`goal_set` 0 and 1).
- Multi-maze: a planner whose manager decides when to act (imagination cost `config.tau`, at most
  `config.multi_budget` imaginations per move) is trained on the 3 layouts (2, 3 and 4 goals);
  its imaginations per move are reported per layout.

The planner (`agents.ibp.maze_planner`): the tree strategy, the maze's own step as imagination,
REINFORCE for every subgraph (see its docstring for our choices). `config.num_seeds` planners per
setting (vmapped, `launch.train_loop`). Outputs: `figures/maze.png`, `results.md`, summary keys
`return_train/n<b>`, `return_held_out/n<b>`, `solve_held_out/n<b>`, `return/multi`,
`imaginations/multi_layout<k>` (k = 0, 1, 2: the 2-, 3-, 4-goal layouts).

  python -m launch.agents.ibp_maze --config=launch/agents/configs/ibp_maze.py:smoke \
    --workdir=/tmp/ibp_maze
"""
import time

import matplotlib
from absl import logging

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.ibp import maze_planner as mp  # noqa: E402
from envs import maze as maze_lib  # noqa: E402
from launch import app  # noqa: E402


def _train(config, run, name, planner, key):
  trainer = mp.make_maze_trainer(planner, config.learning_rate, config.batch_size,
                                 config.updates_per_chunk)
  keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(config.num_seeds))
  state = run.train_loop(trainer.init, trainer.chunk, config.num_chunks, name=name,
                         seed_keys=keys)
  params = jax.device_get(state.params)
  return [jax.tree.map(lambda x, s=s: x[s], params) for s in range(config.num_seeds)]


def _mean_se(values):
  v = np.asarray(values, float)
  return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def experiment(config, run: app.Run) -> dict:
  env = maze_lib.Maze(cells=config.cells)
  base = env.default_params
  key = jax.random.key(config.seed)
  pc = mp.MazePlannerConfig(strategy="tree", memory_size=config.memory_size,
                            hidden=tuple(config.hidden), entropy_coef=config.entropy_coef)
  for b in tuple(config.budgets) + (config.multi_budget,):
    mp.check_config(pc.replace(max_imaginations=int(b)))
  summary, rows = {}, []
  for b in config.budgets:
    t0 = time.perf_counter()
    cfg = pc.replace(max_imaginations=int(b), fixed_budget=True)
    planner = mp.make_maze_planner(cfg, env, base.replace(goal_set=maze_lib.TRAIN))
    per_seed = _train(config, run, f"single_n{b}", planner, jax.random.fold_in(key, 1))
    values = {}
    for goal_set, label in ((maze_lib.TRAIN, "train"), (maze_lib.HELD_OUT, "held_out")):
      ev = mp.make_maze_planner(cfg, env, base.replace(goal_set=goal_set))
      res = [mp.evaluate(ev, p, jax.random.fold_in(key, 2), config.eval_episodes)
             for p in per_seed]
      values[f"return_{label}"], values[f"return_{label}_se"] = _mean_se(
          [r["return"] for r in res])
      values[f"solve_{label}"] = float(np.mean([r["solve_rate"] for r in res]))
    values["wall_s"] = time.perf_counter() - t0
    logging.info("single maze, %d imaginations: return train %.2f, held-out %.2f (%.0f s)", b,
                 values["return_train"], values["return_held_out"], values["wall_s"])
    summary.update({f"{k}/n{b}": v for k, v in values.items()})
    rows.append((f"single_n{b}", b, values))
  t0 = time.perf_counter()
  cfg = pc.replace(max_imaginations=int(config.multi_budget), fixed_budget=False,
                   imagination_cost=float(config.tau))
  multi = base.replace(multi_maze=1, layout=-1)
  planner = mp.make_maze_planner(cfg, env, multi)
  per_seed = _train(config, run, "multi", planner, jax.random.fold_in(key, 3))
  layout_imag = {}
  returns = []
  for k in range(env.num_layouts):
    ev = mp.make_maze_planner(cfg, env, multi.replace(layout=k))
    res = [mp.evaluate(ev, p, jax.random.fold_in(key, 4), config.eval_episodes)
           for p in per_seed]
    layout_imag[k] = float(np.mean([r["imaginations_per_move"] for r in res]))
    returns.append(np.mean([r["return"] for r in res]))
    summary[f"imaginations/multi_layout{k}"] = layout_imag[k]
    summary[f"return/multi_layout{k}"] = float(returns[-1])
  summary["return/multi"] = float(np.mean(returns))
  summary["wall_s/multi"] = time.perf_counter() - t0
  logging.info("multi-maze: imaginations per move by layout %s", layout_imag)
  _figure(run, config, rows, layout_imag)
  _table(run, config, rows, summary, env)
  return summary


def _figure(run, config, rows, layout_imag) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
  x = np.arange(len(rows))
  for i, (label, shift) in enumerate((("train", -0.2), ("held_out", 0.2))):
    axes[0].bar(x + shift, [v[f"return_{label}"] for *_, v in rows], 0.4,
                yerr=[v[f"return_{label}_se"] for *_, v in rows], capsize=3,
                label=f"{'training goals' if i == 0 else 'held-out goal'}")
  axes[0].set_xticks(x)
  axes[0].set_xticklabels([f"{b} imag." for _, b, _ in rows])
  axes[0].set_ylabel("episode return (single maze)")
  axes[0].legend(fontsize=7)
  ks = sorted(layout_imag)
  axes[1].bar(ks, [layout_imag[k] for k in ks])
  axes[1].set_xticks(ks)
  axes[1].set_xticklabels([f"{g} goals" for g in maze_lib.MULTI_GOAL_COUNTS[:len(ks)]])
  axes[1].set_ylabel(f"imaginations per move (tau {config.tau:g})")
  fig.tight_layout()
  run.save_figure("maze", fig)
  plt.close(fig)


def _table(run, config, rows, summary, env) -> None:
  if not run.is_writer:
    return
  lines = [f"IBP on the maze ({env.size}x{env.size}), {config.num_seeds} seeds per setting, "
           f"{config.num_chunks * config.updates_per_chunk} updates of {config.batch_size} "
           f"episodes, {config.eval_episodes} evaluation episodes per seed (mean +- SE over "
           "seeds).", "",
           "| setting | imaginations per move | return (training goals) | return (held-out goal)"
           " | solve rate (train / held-out) | wall (s) |", "|---|---|---|---|---|---|"]
  for name, b, v in rows:
    lines.append(f"| {name} | {b} (fixed) | {v['return_train']:.2f} +- {v['return_train_se']:.2f}"
                 f" | {v['return_held_out']:.2f} +- {v['return_held_out_se']:.2f} | "
                 f"{v['solve_train']:.2f} / {v['solve_held_out']:.2f} | {v['wall_s']:.0f} |")
  lines += ["", f"Multi-maze (tau {config.tau:g}, at most {config.multi_budget} imaginations per "
            "move, learned act):", "", "| layout | goals | imaginations per move | return |",
            "|---|---|---|---|"]
  for k in range(env.num_layouts):
    lines.append(f"| {k} | {maze_lib.MULTI_GOAL_COUNTS[k]} | "
                 f"{summary[f'imaginations/multi_layout{k}']:.3f} | "
                 f"{summary[f'return/multi_layout{k}']:.2f} |")
  (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(experiment)
