"""A2C (Mnih et al. 2016) on MiniPacman and Sokoban: does the I2A paper's standard agent learn?

For every environment of `config.envs`: `config.num_seeds` seeds trained together under
`jax.vmap` by `launch.train_loop` (one resumable loop per environment, named after it), then the
final policy and a uniformly random policy are measured by the same evaluation rollout
(`agents.a2c.evaluation_rollout`, episodes selected by `complete_episodes` so long episodes are
not under-counted). Outputs: return and solve-rate curves over frames (`figures/curves.png`),
`results.md` (one row per environment) and summary keys per environment:
`final_return` (mean over seeds of each seed's mean evaluation return), `final_return_se` (SE
over seeds), `random_return` / `random_return_se` (mean and SE over the random policy's
episodes), `margin_se` ((final - random) / sqrt(SE_final^2 + SE_random^2)), `solve_rate`,
`random_solve_rate`, `train_return` (training episodes of the last `final_fraction` of
updates), `frames` (per seed), `wall_s`, and on a Sokoban level stream `stream_dry_fraction`
(resets that found the stream empty and played a fallback level). Per-environment agent
settings: `config.env_overrides`.

  python -m launch.agents.a2c --config=launch/agents/configs/a2c.py:smoke --workdir=/tmp/a2c
  python -m launch.agents.a2c --config=launch/agents/configs/a2c.py \
    --config.envs='("minipacman-hunt",)' --workdir=/tmp/a2c_hunt
"""
import time

import matplotlib
from absl import logging

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from agents import a2c  # noqa: E402
from launch import app  # noqa: E402

SOKOBAN_LEVELS = ("pool", "stream", "fresh")
# Launcher fields that a Sokoban entry of `config.env_overrides` may set besides the A2CConfig
# fields: the level source and the stream's sizes.
LEVEL_FIELDS = ("sokoban_levels", "sokoban_stream_levels", "sokoban_stream_batch")


def environment(tag: str, config):
  """`(env, env_params)` of a tag: a registered name, or `sokoban-<H>x<W>-<boxes>`."""
  env, params = _environment(tag, config)
  if config.max_episode_steps:
    params = params.replace(max_steps=int(config.max_episode_steps))
  return env, params


def _environment(tag: str, config):
  if tag.startswith("sokoban-"):
    try:
      size, boxes = tag[len("sokoban-"):].split("-")
      height, width = (int(x) for x in size.split("x"))
      num_boxes = int(boxes)
    except ValueError as err:
      raise ValueError(f"config.envs: {tag!r} is not sokoban-<height>x<width>-<boxes>, e.g. "
                       "sokoban-7x7-2.") from err
    env, params = envs.make("sokoban", height=height, width=width, num_boxes=num_boxes,
                            observation=config.observation)
    levels = env_setting(config, tag, "sokoban_levels")
    if levels not in SOKOBAN_LEVELS:
      raise ValueError(f"config.sokoban_levels must be one of {SOKOBAN_LEVELS}; got "
                       f"{levels!r} for {tag}.")
    if levels == "fresh":
      params = params.replace(fresh=True)
    elif levels == "stream":
      num, batch = _stream_sizes(tag, config)
      if num < 1 or batch < 1 or num % batch:
        raise ValueError("config.sokoban_stream_levels (levels per chunk) must be a positive "
                         "multiple of config.sokoban_stream_batch (levels per search); got "
                         f"{num!r} and {batch!r} for {tag}.")
      params = env.stream_params(None, capacity=2 * num)
    return env, params
  if tag.startswith("minipacman-"):
    return envs.make(tag, observation=config.observation)
  return envs.make(tag)


def env_setting(config, tag: str, name: str):
  """`config.<name>` for environment `tag`: its `config.env_overrides` entry's value if it sets
  one (the level-source fields `LEVEL_FIELDS`), else the top-level field."""
  entry = (config.get("env_overrides") or {}).get(override_key(tag))
  if entry is not None and name in entry:
    return entry[name]
  return config[name]


def _stream_sizes(tag: str, config) -> tuple[int, int]:
  return (int(env_setting(config, tag, "sokoban_stream_levels")),
          int(env_setting(config, tag, "sokoban_stream_batch")))


def override_key(tag: str) -> str:
  """The key of environment `tag` in `config.env_overrides`: the tag with "-" -> "_", so that
  the command line can name it (--config.env_overrides.minipacman_hunt.num_chunks=400)."""
  return tag.replace("-", "_")


def _known_key(key: str) -> bool:
  if key in {override_key(name) for name in envs.registered_environments()}:
    return True
  parts = key.split("_")
  return (len(parts) == 3 and parts[0] == "sokoban" and parts[2].isdigit()
          and parts[1].count("x") == 1 and all(x.isdigit() for x in parts[1].split("x")))


def refresh_env_params(tag: str, env, config):
  """The trainer's `refresh_env_params` of an environment, or None: with
  `config.sokoban_levels == "stream"`, Sokoban's level stream receives
  `config.sokoban_stream_levels` new App. D.3 levels per seed before every chunk, searched
  `config.sokoban_stream_batch` at a time (envs/README.md, "Level stream")."""
  if not (tag.startswith("sokoban-") and env_setting(config, tag, "sokoban_levels") == "stream"):
    return None
  num, batch = _stream_sizes(tag, config)
  return lambda key, params: env.refill_stream(key, params, num, batch)


def evaluation_params(tag: str, env, params, config):
  """Params of the final evaluation: the training params, except that a Sokoban trained on a
  level stream is evaluated on the held-out bank (`env.eval_params()`, levels it never saw)."""
  if tag.startswith("sokoban-") and env_setting(config, tag, "sokoban_levels") == "stream":
    return env.eval_params(max_steps=params.max_steps)
  return params


def agent_config(config, tag: str | None = None) -> a2c.A2CConfig:
  """The `A2CConfig` of environment `tag`: `config.agent` with the fields of
  `config.env_overrides[override_key(tag)]` applied on top (`tag` None: `config.agent`). An
  entry may also set a Sokoban environment's level source (`LEVEL_FIELDS`; read by
  `env_setting`). Every override is checked either way: unknown environments and fields are
  refused by name."""
  fields = dict(config.agent.items())
  overrides = config.get("env_overrides") or {}
  unknown = [key for key in overrides if not _known_key(key)]
  if unknown:
    raise ValueError(f"config.env_overrides names unknown environments {sorted(unknown)}; "
                     "keys are environment tags with '-' written '_': "
                     f"{tuple(override_key(n) for n in envs.registered_environments())} and "
                     "sokoban_<H>x<W>_<boxes>.")
  for key, extra in overrides.items():
    bad = sorted(set(extra) - set(fields) - set(LEVEL_FIELDS))
    if bad:
      raise ValueError(f"config.env_overrides.{key}: {bad} are not A2CConfig fields; known: "
                       f"{sorted(fields)} (and {LEVEL_FIELDS} for Sokoban).")
    misplaced = sorted(set(extra) & set(LEVEL_FIELDS))
    if misplaced and not key.startswith("sokoban_"):
      raise ValueError(f"config.env_overrides.{key}: {misplaced} apply to Sokoban only.")
  if tag is not None and override_key(tag) in overrides:
    fields.update({k: v for k, v in overrides[override_key(tag)].items()
                   if k not in LEVEL_FIELDS})
  fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
  return a2c.A2CConfig(**fields)


def evaluate(trainer, env, params, state_params, key, config):
  """Final policy and uniform policy, same rollout: per-seed episode dicts."""
  max_steps = int(params.max_steps)
  steps = max(config.random_steps, 2 * max_steps + 1)
  keys = jax.random.split(key, config.num_seeds)
  num_actions = trainer.network.num_actions

  def learned(p, k):
    return a2c.evaluation_rollout(lambda kk, obs: trainer.policy(p, kk, obs), env, params, k,
                                  config.random_envs, steps)

  def uniform(k):
    return a2c.evaluation_rollout(
        lambda kk, obs: jax.random.randint(kk, (obs.shape[0],), 0, num_actions), env, params, k,
        config.random_envs, steps)

  ours = jax.device_get(jax.jit(jax.vmap(learned))(state_params, keys))
  rand = jax.device_get(jax.jit(jax.vmap(uniform))(jax.vmap(
      lambda k: jax.random.fold_in(k, 1))(keys)))
  pick = lambda r, s: a2c.complete_episodes(jax.tree.map(lambda x: x[s], r), max_steps)  # noqa
  return ([pick(ours, s) for s in range(config.num_seeds)],
          [pick(rand, s) for s in range(config.num_seeds)])


def _mean_se(x) -> tuple[float, float]:
  x = np.asarray(x, np.float64)
  if x.size == 0:
    return float("nan"), float("nan")
  return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")


def experiment(config, run: app.Run) -> dict:
  agent_config(config)  # refuses bad overrides, of any environment, before any training
  summary, rows, curves = {}, [], {}
  for tag in config.envs:
    agent = agent_config(config, tag)
    if override_key(tag) in (config.get("env_overrides") or {}):
      logging.info("%s: config.agent with %s", tag,
                   dict(config.env_overrides[override_key(tag)].items()))
    t0 = time.perf_counter()
    env, params = environment(tag, config)
    trainer = a2c.make_trainer(agent, env, params, env_name=tag,
                               refresh_env_params=refresh_env_params(tag, env, config))
    base = jax.random.key(config.seed)
    keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.arange(config.num_seeds))
    state = run.train_loop(trainer.init, trainer.chunk, agent.num_chunks, name=tag,
                           seed_keys=keys)
    history = run.history(tag)
    a2c.check_finite(history, tag)
    updates = history["episodes"].shape[-1]
    stats = a2c.episode_statistics(history, max(1, updates // config.curve_points))
    last = max(1, int(round(config.final_fraction * updates)))
    train_final = history["episode_return_sum"][:, -last:].sum(-1) / np.maximum(
        history["episodes"][:, -last:].sum(-1), 1)
    ours, rand = evaluate(trainer, env, evaluation_params(tag, env, params, config),
                          jax.device_get(state.params),
                          jax.random.fold_in(base, 10_000), config)
    per_seed = np.array([_mean_se(e["return"])[0] for e in ours])
    final, final_se = _mean_se(per_seed)
    random_return, random_se = _mean_se(np.concatenate([e["return"] for e in rand]))
    margin = (final - random_return) / np.sqrt(final_se ** 2 + random_se ** 2)
    solve = float(np.mean([np.mean(e["solved"]) for e in ours]))
    random_solve = float(np.mean(np.concatenate([e["solved"] for e in rand])))
    wall = time.perf_counter() - t0
    frames = float(history["frames"][0, -1])
    values = {
        "final_return": final, "final_return_se": final_se, "final_return_per_seed": per_seed,
        "random_return": random_return, "random_return_se": random_se, "margin_se": margin,
        "solve_rate": solve, "random_solve_rate": random_solve,
        "train_return": float(np.mean(train_final)), "frames": frames, "wall_s": wall,
        "eval_episodes": int(sum(len(e["return"]) for e in ours)),
        "random_episodes": int(sum(len(e["return"]) for e in rand)),
    }
    if "stream_dry" in history:  # resets that found the level stream empty (played a pool level)
      values["stream_dry_fraction"] = float(history["stream_dry"].sum()
                                            / max(1.0, history["episodes"].sum()))
    summary.update({f"{k}/{tag}": v for k, v in values.items()})
    curves[tag] = stats
    rows.append((tag, values))
    run.log_metrics(int(frames), {f"{k}/{tag}": v for k, v in values.items()
                                  if k != "final_return_per_seed"}, stream="final")
  _figure(run, curves, summary)
  _table(run, rows, config)
  return summary


def _figure(run: app.Run, curves: dict, summary: dict) -> None:
  fig, axes = plt.subplots(2, len(curves), figsize=(3.2 * len(curves), 5.5), squeeze=False)
  for col, (tag, stats) in enumerate(curves.items()):
    frames = stats["frames"][0]
    for row, (name, random_key) in enumerate((("return", "random_return"),
                                              ("solve_rate", "random_solve_rate"))):
      ax = axes[row, col]
      y = stats[name]
      with np.errstate(all="ignore"):
        ax.plot(frames, np.nanmean(y, 0), label="A2C (mean of seeds)")
        ax.fill_between(frames, np.nanmin(y, 0), np.nanmax(y, 0), alpha=0.25)
      ax.axhline(summary[f"{random_key}/{tag}"], color="k", ls="--", lw=1, label="uniform")
      ax.set_xlabel("frames per seed")
      ax.set_ylabel("episode return" if row == 0 else "solve rate")
      if row == 0:
        ax.set_title(tag, fontsize=9)
  axes[0, 0].legend(fontsize=7)
  fig.tight_layout()
  run.save_figure("curves", fig)
  plt.close(fig)


def _table(run: app.Run, rows, config) -> None:
  lines = [f"A2C, {config.num_seeds} seeds per environment; return of the final policy "
           "(mean +- SE over seeds) vs a uniformly random policy (mean +- SE over episodes), "
           "same evaluation rollout.", "",
           "| environment | A2C final return | random return | margin (SE) | solve rate "
           "(A2C / random) | frames per seed | wall (s) |", "|---|---|---|---|---|---|---|"]
  for tag, v in rows:
    lines.append(f"| {tag} | {v['final_return']:.2f} ± {v['final_return_se']:.2f} | "
                 f"{v['random_return']:.2f} ± {v['random_return_se']:.2f} | "
                 f"{v['margin_se']:.1f} | {v['solve_rate']:.3f} / {v['random_solve_rate']:.3f} "
                 f"| {v['frames']:.0f} | {v['wall_s']:.0f} |")
  if run.is_writer:
    (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(experiment)
