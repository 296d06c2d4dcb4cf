"""I2A on a state-space environment model (Buesing et al. 2018, Sec. 5) on MiniPacman, or on
MsPacman (`--config.task=mspacman`, the `full` preset: envpool's MsPacman through
`envs.make("mspacman")`, stepped on the host inside the jitted trainers): returns over frames
of the large standard agent, the copy-model agent (I2A's architecture with the identity for a
model, Weber et al. 2017 Sec. 4.2: the control for "its predictions help"), I2A with RAR
(I2A's own pixel-space model), I2A with an SSM (`agents.i2a.ssm_model.SSMEnv`) trained by
distillation, and the same with learning to query (`rollout_training="query"`: pi_hat trained
by the agent's policy gradient).

Both models learn from the same data policy, a partly trained standard agent
(`launch.agents.i2a_common.data_agent_policy`, as I2A's MiniPacman experiment): RAR through
`i2a_common.env_model` (cached in `WORKDIR/env_model/<minipacman|mspacman>.*`), the SSM here
by its ELBO (`latent_dynamics.env_models.train`; free bits, `config.ssm.free_nats`) on windows
of 3 context frames + `ssm_train_length` steps of `data_envs` x `data_steps` transitions, the
context replaced by the last context frame repeated three times ([O], what the agent gives
it: `agents.i2a.ssm_model.repeat_context`), and cached in
`WORKDIR/env_model/ssm_<kind>.msgpack` + `.json` (a cache that does not fit, or was trained
under another `config.ssm` or other `ssm_*` training fields, raises a `ValueError` naming the
file). Its held-out one-step tile and frame accuracy (its rollout under the prior, every plane
of a tile thresholded at 1/2) sits beside RAR's in the table. The SSM trains as a host loop of
jitted Adam steps and logs its loss and KL after every chunk of `ssm_steps_per_chunk` steps.

Outputs: `figures/curves.png`, `results.md`, summary keys `<value>/<agent>` (as
`i2a_minipacman`'s) and `ssm_tile_accuracy_k1`, `ssm_frame_accuracy_k1`,
`ssm_final_kl`, `model_frame_accuracy_k<k>` (RAR).

  python -m launch.agents.i2a_ssm --config=launch/agents/configs/i2a_ssm.py:smoke \
    --workdir=/tmp/i2a_ssm
"""
from __future__ import annotations

import json
import time

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from agents import i2a
from agents.i2a import ssm_model
from latent_dynamics import env_models
from latent_dynamics.env_models import data as data_lib
from latent_dynamics.env_models import train as ssm_train
from launch import app
from launch.agents import i2a_common
from launch.agents.configs.i2a_ssm import AGENTS


def check_agents(agents) -> tuple:
  agents = tuple(agents)
  bad = [a for a in agents if a not in AGENTS]
  if not agents or bad:
    raise ValueError(f"config.agents must list some of {AGENTS}; got {agents!r}.")
  return agents


def _windows(traj, c):
  seqs = data_lib.sequences_from_trajectory(traj.obs_tm1, traj.action, traj.obs_t,
                                            traj.reward, traj.frame_valid,
                                            int(c.ssm_train_length), 1)
  obs = np.asarray(seqs.obs)
  obs[:, :env_models.models.NUM_CONTEXT] = obs[:, env_models.models.NUM_CONTEXT - 1][:, None]
  return seqs._replace(obs=obs)


SSM_TRAIN_FIELDS = ("ssm_train_length", "ssm_learning_rate", "ssm_batch_size",
                    "ssm_steps_per_chunk", "ssm_chunks")


def ssm_cache_key(c) -> dict:
  """What the SSM cache must match (JSON types): `config.ssm` and the training fields."""
  key = dict(c.ssm.items())
  key.update({name: c[name] for name in SSM_TRAIN_FIELDS})
  return json.loads(json.dumps(key))


def ssm_env_model(run: app.Run, c, tag: str, env, env_params):
  """`(model, params, info)`: the SSM of `c.ssm`, trained (module doc) or loaded from cache."""
  obs_shape = tuple(env.observation_space(env_params).shape)
  num_actions = env.action_space(env_params).num_values
  model = env_models.make_env_model(env_models.EnvModelConfig(**dict(c.ssm.items())), obs_shape,
                                    num_actions)
  adapter = ssm_model.SSMEnv(model, c.ssm_output)
  folder = run.workdir / "env_model"
  path, meta_path = folder / f"ssm_{c.ssm.kind}.msgpack", folder / f"ssm_{c.ssm.kind}.json"
  if path.exists() and meta_path.exists():
    try:
      params = flax.serialization.from_bytes(model.init(jax.random.key(0)), path.read_bytes())
      adapter.check_params(params)
    except Exception as err:  # noqa: BLE001
      raise ValueError(f"SSM cache {path} is corrupted or from another model config: "
                       f"{err}") from err
    info = json.loads(meta_path.read_text())
    wanted = ssm_cache_key(c)
    if info.get("config") != wanted:
      raise ValueError(f"SSM cache {path} was trained under config.ssm and training fields "
                       f"{info.get('config')}, not this run's {wanted}: delete it or use "
                       "another workdir.")
    return model, params, info
  t0 = time.perf_counter()
  policy = i2a_common.data_agent_policy(run, c, tag, env, env_params)
  spec = i2a_common.reward_spec(tag, env_params)
  k_data, k_held, k_init = jax.random.split(jax.random.fold_in(jax.random.key(c.seed), 778), 3)
  data = i2a.collect_transitions(policy, env, env_params, spec, k_data, c.data_envs,
                                 c.data_steps)
  held = i2a.collect_transitions(policy, env, env_params, spec, k_held, c.data_envs,
                                 c.data_steps)
  train_seqs, held_seqs = _windows(data, c), _windows(held, c)
  trainer = ssm_train.make_trainer(model, ssm_train.TrainConfig(
      learning_rate=float(c.ssm_learning_rate), batch_size=int(c.ssm_batch_size),
      steps_per_chunk=int(c.ssm_steps_per_chunk)))
  state = trainer.init(k_init)
  losses, kls, t_train = [], [], time.perf_counter()
  for i in range(int(c.ssm_chunks)):
    t_chunk = time.perf_counter()
    state, metrics = trainer.chunk(state, train_seqs)
    losses.append(float(np.mean(metrics["loss"])))
    kls.append(float(np.mean(metrics["kl"])))
    logging.info("SSM (%s) chunk %d/%d (%d Adam steps): mean loss %.3f, frame ll %.3f, KL "
                 "%.3f; %.1f s", c.ssm.kind, i + 1, int(c.ssm_chunks), int(state.steps),
                 losses[-1], float(np.mean(metrics["frame_ll"])),
                 float(np.mean(metrics["kl"])), time.perf_counter() - t_chunk)
  train_s = time.perf_counter() - t_train

  @jax.jit
  def one_step(params, obs, action, key):
    s0 = model.observe(params, obs[:, :3])
    _, out = model.imagine(params, s0, action[:, :1], key)
    probs = env_models.models.frame_probs(out.frame_logits[:, 0], model.config.frame_likelihood)
    # Plane by plane, binarised at 1/2 (MiniPacman's planes are not one-hot: an argmax over
    # planes would call an empty floor cell a wall), as `agents.i2a.multi_step_accuracy`.
    hit = jnp.all((probs > 0.5) == (obs[:, 3] > 0.5), -1)
    return jnp.mean(hit), jnp.mean(jnp.all(hit, (-2, -1)))

  n = min(512, held_seqs.action.shape[0])
  tile, frame = one_step(state.params, held_seqs.obs[:n], held_seqs.action[:n],
                         jax.random.fold_in(k_init, 1))
  info = {"kind": c.ssm.kind, "config": ssm_cache_key(c),
          "final_kl": kls[-1] if kls else None,
          "steps": int(c.ssm_chunks) * int(c.ssm_steps_per_chunk),
          "train_windows": int(train_seqs.action.shape[0]),
          "final_loss": losses[-1] if losses else None, "tile_accuracy_k1": float(tile),
          "frame_accuracy_k1": float(frame), "train_s": train_s,
          "wall_s": time.perf_counter() - t0}
  if run.is_writer:
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flax.serialization.to_bytes(jax.device_get(state.params)))
    meta_path.write_text(json.dumps(info, indent=2))
  return model, state.params, info


def experiment(config, run: app.Run) -> dict:
  t0 = time.perf_counter()
  agents = check_agents(config.agents)
  tag = config.task
  if not (tag.startswith("minipacman-") or tag == "mspacman"):
    raise ValueError(f"config.task: {tag!r} is neither a MiniPacman task nor 'mspacman'.")
  model_name = "mspacman" if tag == "mspacman" else "minipacman"  # RAR's cache name
  env, params = i2a_common.environment(tag, config)
  summary, models = {}, {}
  if "i2a_rar" in agents:
    rar, rar_params, rar_info = i2a_common.env_model(run, config, model_name, tag, env, params)
    models["i2a_rar"] = (rar, rar_params)
    summary.update({f"model_frame_accuracy_k{k}": f
                    for k, f in zip(rar_info["ks"], rar_info["frame_accuracy"])})
  ssm_info = None
  if any(a.startswith("i2a_ssm") for a in agents):
    ssm, ssm_params, ssm_info = ssm_env_model(run, config, tag, env, params)
    adapter = ssm_model.SSMEnv(ssm, config.ssm_output)
    models["i2a_ssm"] = models["i2a_ssm_query"] = (adapter, ssm_params)
    summary["ssm_tile_accuracy_k1"] = ssm_info["tile_accuracy_k1"]
    summary["ssm_frame_accuracy_k1"] = ssm_info["frame_accuracy_k1"]
    if ssm_info.get("final_kl") is not None:
      summary["ssm_final_kl"] = ssm_info["final_kl"]
  panel, rows = {}, []
  for name in agents:
    kind = {"standard": "standard", "i2a_copy": "copy"}.get(name, "i2a")
    cfg = i2a_common.agent_config(config, kind)
    if name == "i2a_ssm_query":
      cfg = cfg.replace(net=cfg.net.replace(rollout_training="query",
                                            query_coef=float(config.query_coef)))
    model, model_params = models.get(name, (None, None))
    values, stats, _, _ = i2a_common.train_and_evaluate(
        run, config, name, cfg, tag, env, params, model=model, model_params=model_params)
    panel[name] = stats
    rows.append((name, values))
    summary.update({f"{k}/{name}": v for k, v in values.items()})
    run.log_metrics(int(values["frames"]), {f"{k}/{name}": v for k, v in values.items()},
                    stream="final")
  i2a_common.figure(run, {tag: panel}, "curves")
  lines = [f"I2A on {tag} with an SSM ({config.ssm.kind}, imagining its {config.ssm_output}) vs "
           f"RAR vs the copy model vs the standard agent; {config.num_seeds} seeds per agent; "
           "final return (mean +- SE over seeds) beside a uniform policy.", "",
           "| agent | final return | uniform | margin (SE) | frames per seed | wall (s) |",
           "|---|---|---|---|---|---|"]
  for name, v in rows:
    lines.append(f"| {name} | {i2a_common.fmt(v['final_return'])} ± "
                 f"{i2a_common.fmt(v['final_return_se'])} | {i2a_common.fmt(v['random_return'])}"
                 f" | {i2a_common.fmt(v['margin_se'], 1)} | {v['frames']:.0f} | "
                 f"{v['wall_s']:.0f} |")
  if ssm_info is not None:
    lines += ["", f"SSM ({ssm_info['kind']}, {ssm_info['steps']} Adam steps on "
              f"{ssm_info['train_windows']} windows in "
              f"{ssm_info.get('train_s', float('nan')):.0f} s, final loss "
              f"{i2a_common.fmt(ssm_info['final_loss'])}): held-out one-step tile accuracy "
              f"{ssm_info['tile_accuracy_k1']:.3f}, frame accuracy "
              f"{ssm_info['frame_accuracy_k1']:.3f}; KL of the last chunk "
              f"{i2a_common.fmt(ssm_info.get('final_kl'), 3)} nats per step (free bits "
              f"{config.ssm.get('free_nats', 0.0)})."]
  if "i2a_rar" in agents:
    lines += [""] + i2a_common.model_lines(model_name, rar_info)
  i2a_common.write_table(run, lines)
  summary["experiment_wall_s"] = time.perf_counter() - t0
  return summary


if __name__ == "__main__":
  app.run(experiment)
