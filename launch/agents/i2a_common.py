"""What the three I2A experiments share (Weber et al. 2017): environments, configs, the cached
environment model, training and evaluation of one agent, figures and tables.

Not an experiment itself (its config module has no REPORT); the launchers are
`launch/agents/i2a_minipacman.py`, `i2a_sokoban.py` and `i2a_poor_model.py`.

The environment model [P] (Sec. 3.1, App. B) is trained on data from a partly trained standard
agent, then frozen: `env_model` trains that agent (`config.data_agent_chunks` chunks of the
standard agent, resumable as the loop `data_agent`), collects `config.data_envs` x
`config.data_steps` transitions with its policy (plus as many held out), trains the model
(`config.model_chunks` x `config.model_train.steps_per_chunk` Adam steps, reward classes
weighted by `balanced_reward_weights` of the data [O], see `agents.i2a.env_model`), scores its
1/3/5/10-step accuracy on the held-out trajectories (`multi_step_accuracy`), and caches params
and scores in `WORKDIR/env_model/<name>.msgpack` and `.json`, so a resumed run reuses them. A
cache file that does not fit the model (another config, or corrupted) raises a `ValueError`
naming the file.
"""
from __future__ import annotations

import json
import time

import flax.serialization
import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents import a2c, i2a  # noqa: E402
from agents.i2a import env_model as rar_lib  # noqa: E402
from launch import app  # noqa: E402
from launch.agents import a2c as a2c_launch  # noqa: E402

AGENT_KINDS = ("i2a", "copy", "standard")


# ------------------------------------------------------------------------------ config
def fields(obj) -> ml_collections.ConfigDict:
  """A frozen dataclass's fields as a ConfigDict."""
  return ml_collections.ConfigDict({f: getattr(obj, f) for f in obj.__dataclass_fields__})


def _tuples(d: dict) -> dict:
  return {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v)
              if isinstance(v, (list, tuple)) else v) for k, v in d.items()}


def base_config() -> ml_collections.ConfigDict:
  """Fields every I2A experiment has (presets change them)."""
  c = ml_collections.ConfigDict()
  c.seed = 0                      # Key of seed s: fold_in(key(seed), s).
  c.num_seeds = 3                 # Seeds per agent, trained together under jax.vmap.
  c.observation = "symbolic"      # MiniPacman / Sokoban observations (one-hot tiles).
  c.max_episode_steps = 0         # Episode time limit (params.max_steps); 0: the env's own.
  c.sokoban_levels = "stream"     # Sokoban levels: "stream", "pool" or "fresh" (a2c launcher).
  c.sokoban_stream_levels = 256   # Stream: levels per seed per chunk.
  c.sokoban_stream_batch = 64     # Stream: levels per batched search.
  c.env_overrides = ml_collections.ConfigDict()  # (the a2c launcher's; unused here)
  c.curve_points = 20             # Points of the training curves.
  c.final_fraction = 0.2          # Training return: episodes of the last 20% of updates.
  c.random_steps = 2_001          # Evaluation steps (at least 2 x the time limit + 1).
  c.random_envs = 16              # Evaluation environments per seed.
  # The A2C fields of every agent (rollouts, loss, optimiser); conv/hidden fields unused.
  c.agent = a2c_launch_fields(num_envs=16, rollout_length=5, updates_per_chunk=100,
                              num_chunks=20, learning_rate=2e-3, entropy_coef=0.01)
  # The I2A network (agents.i2a.I2AConfig); CPU-sized.
  c.net = fields(i2a.I2AConfig(
      depth=3, conv_features=(16,), kernel_sizes=(3,), strides=(2,), hidden_size=64,
      encoder_features=(8,), encoder_kernel_sizes=(3,), encoder_strides=(2,), lstm_size=32,
      rollout_features=(8,), rollout_kernel_sizes=(3,), rollout_strides=(2,),
      rollout_hidden=32, rollout_actions="sample", imagination_mode="greedy"))
  c.reuse_imagination = True      # The update reuses the acting pass's imagination.
  # Train the seeds together under jax.vmap (one loop) or one after another (one loop each).
  # [O] False: with jax 0.10.2 on the CPU, the I2A chunk vmapped over seeds hung in its first
  # execution at XLA's default optimisation level (every thread in a futex wait, no CPU used;
  # twice for I2A at depth 3, once for the copy model), while single seeds at 16 and 48
  # environments ran; on a GPU set it True.
  c.vmap_seeds = False
  # The environment model (agents.i2a.EnvModelConfig), its data and training.
  c.model = fields(i2a.EnvModelConfig(width=32, blocks=((8, 16, 32),), large_kernel=7,
                                      frame_hidden=32, reward_hidden=32))
  c.model_train = fields(i2a.TrainConfig(learning_rate=1e-3, batch_size=64,
                                         steps_per_chunk=500))
  c.model_chunks = 6              # Model training chunks (x steps_per_chunk Adam steps).
  c.reward_weight_cap = 30.0      # Cap of the class-balanced reward weights.
  c.data_agent_chunks = 5         # Chunks of the standard agent that collects the model's data.
  c.data_envs = 32                # Environments of the data collection.
  c.data_steps = 100              # Steps per environment (as many again held out).
  return c


def a2c_launch_fields(**overrides) -> ml_collections.ConfigDict:
  return fields(a2c.default_config(**overrides))


def environment(tag: str, c):
  """`(env, env_params)` of a tag (the a2c launcher's tags: MiniPacman tasks,
  `sokoban-<H>x<W>-<boxes>`)."""
  return a2c_launch.environment(tag, c)


def reward_spec(tag: str, env_params) -> i2a.RewardSpec:
  """The reward classes of the environment model: Sokoban's 4 rewards, or MiniPacman's 16 event
  classes valued with this task's weights (one model serves every task)."""
  if tag.startswith("sokoban-"):
    return i2a.sokoban_reward_spec(env_params)
  if tag.startswith("minipacman-"):
    return i2a.minipacman_event_spec(env_params)
  if tag == "mspacman":
    return mspacman_reward_spec()
  raise ValueError(f"unknown environment {tag!r} for I2A: MiniPacman tasks, "
                   "sokoban-<H>x<W>-<boxes> or mspacman.")


# Ms. Pac-Man's point values (the game's scoring: dot 10, energizer 50, ghosts 200-1600, fruit
# 100-5000); a random or sticky policy meets 0, 10, 50, 100, 200, 400 (24,000 steps measured).
MSPACMAN_REWARDS = (0.0, 10.0, 50.0, 100.0, 200.0, 400.0, 500.0, 700.0, 800.0, 1000.0, 1600.0,
                    2000.0, 5000.0)


def mspacman_reward_spec() -> i2a.RewardSpec:
  """MsPacman's reward classes for the environment model (I2A on B18's MS_PACMAN): the game's
  point values, a step's reward labelled by the nearest one ([O]: with envpool's frame skip of 4
  a step's reward can sum two events, e.g. a dot and a ghost, 210 -> 200; every reward gets a
  class, so no transition is refused)."""
  return i2a.RewardSpec(MSPACMAN_REWARDS,
                        rar_lib.nearest_value_classes(MSPACMAN_REWARDS, atol=float("inf")),
                        "mspacman")


# The fields a cache written before they were recorded was trained with (then the defaults).
_LEGACY_MODEL_FIELDS = {"frame_likelihood": "categorical", "copy_path": False}


def model_fields(c) -> dict:
  """`c.model` as the cache records it (JSON types), without the data-dependent reward weights,
  the convolution form of the frozen model and the greedy frame's `change_threshold` (the
  same params serve either)."""
  d = {k: v for k, v in dict(c.model.items()).items()
       if k not in ("reward_class_weights", "rollout_conv", "change_threshold")}
  return json.loads(json.dumps(_tuples(d)))


def model_config(c, **overrides) -> i2a.EnvModelConfig:
  return i2a.EnvModelConfig(**_tuples(dict(c.model.items()))).replace(**overrides)


def agent_config(c, kind: str, depth: int | None = None) -> i2a.AgentConfig:
  """`AgentConfig` of agent `kind` ("i2a", "copy", "standard") at rollout depth `depth`."""
  if kind not in AGENT_KINDS:
    raise ValueError(f"agent must be one of {AGENT_KINDS}; got {kind!r}.")
  net = i2a.I2AConfig(**_tuples(dict(c.net.items())))
  if depth is not None:
    net = net.replace(depth=depth)
  return i2a.AgentConfig(agent=kind, a2c=a2c.A2CConfig(**_tuples(dict(c.agent.items()))),
                         net=net, reuse_imagination=bool(c.reuse_imagination))


def seed_keys(c, salt: int = 0) -> jax.Array:
  base = jax.random.fold_in(jax.random.key(c.seed), salt)
  return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.arange(c.num_seeds))


# ------------------------------------------------------------------------------ environment model
def env_model(run: app.Run, c, name: str, tag: str, env, env_params, *,
              model_chunks: int | None = None, data_policy=None):
  """`(model, model_params, info)`: the environment model `name`, trained (module doc) or loaded
  from the workdir's cache. `data_policy(key, obs) -> action`: the data's policy (None: a
  partly trained standard agent, trained here as the loop `data_agent`). `info`: the held-out
  accuracies, data sizes and wall time."""
  spec = reward_spec(tag, env_params)
  chunks = c.model_chunks if model_chunks is None else int(model_chunks)
  folder = run.workdir / "env_model"
  path, meta_path = folder / f"{name}.msgpack", folder / f"{name}.json"
  if path.exists() and meta_path.exists():
    info = json.loads(meta_path.read_text())
    got, want = info.get("model", _LEGACY_MODEL_FIELDS), model_fields(c)
    diff = sorted(k for k in got if got[k] != want.get(k))
    if diff:
      raise ValueError(f"environment model cache {path} was trained with another model config "
                       f"({', '.join(f'{k}={got[k]!r}, now {want.get(k)!r}' for k in diff)}); "
                       "use another workdir or delete the cache.")
    model = i2a.env_model_for(model_config(c, reward_class_weights=tuple(info["weights"])), env,
                              env_params, spec)
    template = model.init(jax.random.key(0))
    try:
      params = flax.serialization.from_bytes(template, path.read_bytes())
    except Exception as err:  # noqa: BLE001
      raise ValueError(f"environment model cache {path} is corrupted or from another model "
                       f"config: {err}") from err
    try:
      model.check_params(params)
    except ValueError as err:
      raise ValueError(f"environment model cache {path}: {err}") from err
    return model, params, info
  t0 = time.perf_counter()
  if data_policy is None:
    data_policy = data_agent_policy(run, c, tag, env, env_params)
  k_data, k_held, k_init = jax.random.split(jax.random.fold_in(jax.random.key(c.seed), 777), 3)
  data = i2a.collect_transitions(data_policy, env, env_params, spec, k_data, c.data_envs,
                                 c.data_steps)
  held = i2a.collect_transitions(data_policy, env, env_params, spec, k_held, c.data_envs,
                                 c.data_steps)
  weights = i2a.balanced_reward_weights(np.asarray(data.reward_class), spec.num_classes,
                                        cap=c.reward_weight_cap)
  model = i2a.env_model_for(model_config(c, reward_class_weights=tuple(weights)), env,
                            env_params, spec)
  trainer = i2a.make_trainer(model, i2a.TrainConfig(**dict(c.model_train.items())))
  state = trainer.init(k_init)
  flat = i2a.flatten(data)
  losses = []
  t_train = time.perf_counter()
  for _ in range(chunks):
    state, metrics = trainer.chunk(state, flat)
    losses.append(float(np.mean(metrics["loss"])))
  params = state.params
  train_s = time.perf_counter() - t_train
  acc = jax.device_get(jax.jit(lambda p, h: i2a.multi_step_accuracy(
      lambda o, a: model.predict(p, o, a)[0], h, (1, 3, 5, 10)))(params, held))
  copy = jax.device_get(jax.jit(lambda h: i2a.multi_step_accuracy(
      i2a.copy_predict, h, (1, 3, 5, 10)))(held))
  reward_hit = _reward_recall(model, params, held)
  info = {"weights": [float(w) for w in weights], "steps": chunks * c.model_train.steps_per_chunk,
          "frame_accuracy": [float(x) for x in acc["frame"]],
          "tile_accuracy": [float(x) for x in acc["tile"]],
          "changed_tile_accuracy": [float(x) for x in acc["changed_tile"]],
          "copy_frame_accuracy": [float(x) for x in copy["frame"]],
          "copy_tile_accuracy": [float(x) for x in copy["tile"]],
          "ks": [int(k) for k in acc["k"]], "final_loss": losses[-1] if losses else None,
          "transitions": int(np.prod(data.action.shape)), **reward_hit,
          "model": model_fields(c), "train_s": train_s, "wall_s": time.perf_counter() - t0}
  if run.is_writer:
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flax.serialization.to_bytes(jax.device_get(params)))
    meta_path.write_text(json.dumps(info, indent=2))
  return model, params, info


def _reward_recall(model, params, held) -> dict:
  """One-step reward accuracy on held-out data, overall and on the non-modal reward classes."""
  flat = i2a.flatten(held)
  _, reward_logits = jax.jit(model.apply)(params, flat.obs_tm1, flat.action)
  pred = np.asarray(jnp.argmax(reward_logits, -1))
  true = np.asarray(flat.reward_class)
  modal = np.bincount(true, minlength=model.reward_spec.num_classes).argmax()
  rare = true != modal
  return {"reward_accuracy": float(np.mean(pred == true)),
          "rare_reward_recall": float(np.mean(pred[rare] == true[rare])) if rare.any() else None,
          "rare_rewards": int(rare.sum())}


_DATA_POLICIES: dict = {}


def data_agent_policy(run: app.Run, c, tag: str, env, env_params):
  """The policy of a partly trained standard agent (seed 0; `c.data_agent_chunks` chunks,
  resumable as the loop `data_agent`) for the model's data; trained once per run."""
  memo = (id(run), str(run.workdir), tag)
  if memo not in _DATA_POLICIES:
    _DATA_POLICIES[memo] = _train_data_agent(run, c, tag, env, env_params)
  return _DATA_POLICIES[memo]


def _train_data_agent(run: app.Run, c, tag: str, env, env_params):
  cfg = agent_config(c, "standard")
  cfg = cfg.replace(a2c=cfg.a2c.replace(num_chunks=int(c.data_agent_chunks)))
  trainer = i2a.make_agent_trainer(cfg, env, env_params, env_name=tag,
                                   refresh_env_params=a2c_launch.refresh_env_params(tag, env, c))
  state = run.train_loop(trainer.init, trainer.chunk, cfg.a2c.num_chunks, name="data_agent",
                         seed_keys=seed_keys(c, 555)[:1])
  params = jax.tree.map(lambda x: x[0], jax.device_get(state.params))
  return lambda k, obs: trainer.policy(params, k, obs)


# ------------------------------------------------------------------------------ agents
def _mean_se(x) -> tuple[float, float]:
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return float("nan"), float("nan")
  return float(x.mean()), (float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan"))


def train_and_evaluate(run: app.Run, c, name: str, cfg: i2a.AgentConfig, tag: str, env,
                       env_params, *, model=None, model_params=None, salt: int = 0):
  """Trains agent `cfg` (`c.num_seeds` seeds, the resumable loop `name`), then evaluates its
  final policy beside a uniform one (`launch.agents.a2c.evaluate`: the same rollout, complete
  episodes). Returns `(values, curves, trainer, state)`; `values` as the a2c launcher's."""
  t0 = time.perf_counter()
  trainer = i2a.make_agent_trainer(cfg, env, env_params, env_model=model,
                                   model_params=model_params, env_name=tag,
                                   refresh_env_params=a2c_launch.refresh_env_params(tag, env, c))
  keys = seed_keys(c, salt)
  if c.vmap_seeds:
    state = run.train_loop(trainer.init, trainer.chunk, cfg.a2c.num_chunks, name=name,
                           seed_keys=keys)
    history = run.history(name)
  else:  # one loop per seed (see `base_config`'s vmap_seeds), stacked as vmap would
    states, histories = [], []
    for s in range(c.num_seeds):
      states.append(run.train_loop(trainer.init, trainer.chunk, cfg.a2c.num_chunks,
                                   name=f"{name}_seed{s}", seed_keys=keys[s:s + 1]))
      histories.append(run.history(f"{name}_seed{s}"))
    state = jax.tree.map(lambda *x: jnp.concatenate(x), *jax.device_get(states))
    history = {k: np.concatenate([np.asarray(h[k]) for h in histories]) for k in histories[0]}
  a2c.check_finite(history, tag)
  updates = history["episodes"].shape[-1]
  curves = a2c.episode_statistics(history, max(1, updates // c.curve_points))
  ours, rand = a2c_launch.evaluate(trainer, env,
                                   a2c_launch.evaluation_params(tag, env, env_params, c),
                                   jax.device_get(state.params),
                                   jax.random.fold_in(jax.random.key(c.seed), 10_000), c)
  values = episode_values(ours, rand)
  last = max(1, int(round(c.final_fraction * updates)))
  values["train_return"] = float(np.mean(
      history["episode_return_sum"][:, -last:].sum(-1)
      / np.maximum(history["episodes"][:, -last:].sum(-1), 1)))
  values["frames"] = float(history["frames"][0, -1])
  values["wall_s"] = time.perf_counter() - t0
  return values, curves, trainer, state


def episode_values(ours, rand=None) -> dict:
  """Final return (mean +- SE over seeds of each seed's mean), solve rate, and the uniform
  policy's (mean +- SE over its episodes) with the margin in SE, from per-seed episode dicts."""
  per_seed = np.array([_mean_se(e["return"])[0] for e in ours])
  final, final_se = _mean_se(per_seed)
  values = {"final_return": final, "final_return_se": final_se,
            "solve_rate": float(np.mean([np.mean(e["solved"]) if len(e["solved"]) else np.nan
                                         for e in ours])),
            "eval_episodes": int(sum(len(e["return"]) for e in ours))}
  if rand is not None:
    r, r_se = _mean_se(np.concatenate([e["return"] for e in rand]))
    values.update(random_return=r, random_return_se=r_se,
                  random_solve_rate=float(np.mean(np.concatenate([e["solved"] for e in rand]))),
                  margin_se=(final - r) / np.sqrt(final_se ** 2 + r_se ** 2))
  return values


def evaluate_policy(policy_fn, env, env_params, c, key, num_seeds: int):
  """Per-seed complete episodes of `policy_fn(seed_index_params, key, obs)`-free policies:
  `policy_fn(s)` gives seed s's `(key, obs) -> action`; each runs the evaluation rollout of
  `launch.agents.a2c.evaluate` (same sizes)."""
  max_steps = int(env_params.max_steps)
  steps = max(c.random_steps, 2 * max_steps + 1)
  out = []
  for s in range(num_seeds):
    fn = jax.jit(lambda k, s=s: a2c.evaluation_rollout(policy_fn(s), env, env_params, k,
                                                       c.random_envs, steps))
    out.append(a2c.complete_episodes(jax.device_get(fn(jax.random.fold_in(key, s))),
                                     max_steps))
  return out


# ------------------------------------------------------------------------------ outputs
def figure(run: app.Run, panels: dict, name: str = "curves", metric: str = "return") -> None:
  """One column per panel (environment), one line per agent (mean over seeds, band min-max)."""
  fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
  for col, (panel, agents) in enumerate(panels.items()):
    ax = axes[0, col]
    for agent, stats in agents.items():
      frames, y = stats["frames"][0], stats[metric]
      with np.errstate(all="ignore"):
        ax.plot(frames, np.nanmean(y, 0), label=agent)
        ax.fill_between(frames, np.nanmin(y, 0), np.nanmax(y, 0), alpha=0.15)
    ax.set_title(panel, fontsize=9)
    ax.set_xlabel("frames per seed")
    ax.set_ylabel("episode return" if metric == "return" else metric.replace("_", " "))
  axes[0, 0].legend(fontsize=7)
  fig.tight_layout()
  run.save_figure(name, fig)
  plt.close(fig)


def fmt(x, digits: int = 2) -> str:
  return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def write_table(run: app.Run, lines: list[str]) -> None:
  if run.is_writer:
    (run.workdir / "results.md").write_text("\n".join(lines) + "\n")


def model_lines(name: str, info: dict) -> list[str]:
  acc = ", ".join(f"{k}: {fmt(f, 3)}" for k, f in zip(info["ks"], info["frame_accuracy"]))
  copy = ", ".join(f"{k}: {fmt(f, 3)}" for k, f in zip(info["ks"], info["copy_frame_accuracy"]))
  return [f"- environment model `{name}`: {info['steps']} Adam steps on {info['transitions']} "
          f"transitions; held-out whole-frame accuracy after k steps ({acc}); the copy model "
          f"({copy}); one-step reward accuracy {fmt(info['reward_accuracy'], 3)}, recall of "
          f"the rarer rewards {fmt(info['rare_reward_recall'], 3)} "
          f"({info['rare_rewards']} held out)."]
