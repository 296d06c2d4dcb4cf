"""Rollout speed of the learned environment models of Buesing et al. 2018 (B18 Sec. 4.1, the
claim: state-space models roll out more than 5x faster than the autoregressive RAR at equal
batch, jumpy ones faster still).

    python -m benchmarks.latent_dynamics_env_models [--quick] [--repeats=R] [--steps=T]
        [--likelihoods=WORKDIR]

* RAR: I2A's environment model (`agents.i2a.env_model`, its default, paper-sized config: a
  1x1 conv of 64 channels and two basic blocks with 7x7 long-range convs), which predicts in
  frame space and feeds its own *sampled* frame back at every step (`predict(mode="sample")`).
  Its convolutions are `agents.a2c.networks.PatchConv` (patches @ kernel, chosen for fast
  gradients); the row "RAR, XLA conv" computes the same function with XLA's convolution (a
  flax method interceptor), the lowering the SSMs roll out with (`blocks.Conv(impl="xla")`).
  Two speed-up columns: action steps/s over the plain RAR row's ("x RAR") and over the
  XLA-conv RAR row's ("x RAR-XLA", the same lowering as the SSMs' rollouts), same batch.
* dSSM-DET, dSSM-VAE, sSSM, jumpy sSSM (`k = 4` actions per model step):
  `latent_dynamics.env_models` at their default (B18 App. A) sizes, rolled out by
  `imagine` with the frame logits decoded at every model step (`decode=True`, the rows
  "frames") and without the frame head (`decode=False`, "latent": what an agent reading the
  states gets; the reward head still runs).
* Frames: MiniPacman's symbolic 15x19x6 tiles, 5 actions (the models only see shapes; speed
  does not depend on training, so parameters are random). Each rollout runs `T` actions
  (`--steps`, default 12) from one state per batch element; the SSMs' initial state from
  three frames is computed outside the timed function, as RAR's first frame is given.

Test log-likelihood per frame sits in the same table (`--likelihoods`): the columns
"<env> ll T1 / T10" are read from the `summary.json` of an experiment-1 run
(`launch.latent_dynamics.env_models`, whose RAR and SSMs have these sizes), nats per frame of
10-step test rollouts (`<env>/<model>/ll_per_frame_T<t>`); training them here would cost the
experiment's 22 minutes. The two RAR rows share RAR's; the jumpy sSSM is not trained there.

Model steps/s = batch x model steps / seconds (a jumpy step covers `k` actions); action steps/s
= batch x T / seconds. Compile time is the ahead-of-time compilation of one rollout function,
reported apart; the steady-state time is the median over `--repeats` rounds in which every
model of a batch size runs once in turn (interleaved, so load from other processes falls on all
alike). Writes
results/bench/latent_dynamics_env_models.json.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from agents.a2c.networks import PatchConv  # noqa: E402
from agents.i2a import env_model as i2a_env_model  # noqa: E402
from envs import minipacman  # noqa: E402
from latent_dynamics import env_models  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parent.parent / "results" / "bench"
       / "latent_dynamics_env_models.json")
JUMP = 4


def num_params(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


def _xla_conv(next_fun, args, kwargs, context):
  """A flax method interceptor computing `agents.a2c.networks.PatchConv` (patches @ kernel) by
  XLA's convolution instead: the same function of the same params."""
  module = context.module
  if not isinstance(module, PatchConv) or context.method_name != "__call__" \
      or module.stride != 1:
    return next_fun(*args, **kwargs)
  kernel, bias = module.variables["params"]["kernel"], module.variables["params"]["bias"]
  return jax.lax.conv_general_dilated(args[0], kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias


def rar_runner(obs_shape, num_actions, reward_spec, xla_conv: bool = False):
  """`(params, rollout(params, obs0[B], actions[B, T], key) -> (frames, rewards))`."""
  model = i2a_env_model.make_env_model(i2a_env_model.EnvModelConfig(), obs_shape, num_actions,
                                       reward_spec)
  params = model.init(jax.random.key(0))

  def rollout(params, obs0, actions, key):
    def body(obs, x):
      a, t = x
      obs, reward = model.predict(params, obs, a, mode="sample", key=jax.random.fold_in(key, t))
      return obs, (obs, reward)
    if xla_conv:
      with nn.intercept_methods(_xla_conv):
        _, out = jax.lax.scan(body, obs0, (actions.T, jnp.arange(actions.shape[1])))
    else:
      _, out = jax.lax.scan(body, obs0, (actions.T, jnp.arange(actions.shape[1])))
    return out

  return params, rollout


def ssm_runner(kind, jump, obs_shape, num_actions, decode):
  model = env_models.make_env_model(env_models.EnvModelConfig(kind=kind, jump=jump), obs_shape,
                                    num_actions)
  params = model.init(jax.random.key(0))

  def rollout(params, s0, actions, key):
    _, out = model.imagine(params, s0, actions, key, decode=decode)
    return out.frame_logits, out.reward

  return model, params, rollout


LL_ENVS = ("minipacman", "sokoban")


def likelihood_columns(summary: dict | None, name: str) -> dict:
  """`{"<env>_ll_T1": ..., "<env>_ll_T10": ...}` of benchmark row `name` from an experiment-1
  summary (None where the run lacks it, or for the jumpy model, which it does not train)."""
  model = "RAR" if name.startswith("RAR") else name
  out = {}
  for env in LL_ENVS:
    for t in (1, 10):
      value = None if summary is None else summary.get(f"{env}/{model}/ll_per_frame_T{t}")
      out[f"{env}_ll_T{t}"] = value
  return out


def load_likelihoods(path: str | None) -> dict | None:
  """The experiment-1 summary at `path` (a workdir or its summary.json); None without one."""
  if not path:
    return None
  p = pathlib.Path(path)
  p = p / "summary.json" if p.is_dir() else p
  if not p.exists():
    raise ValueError(f"--likelihoods: no experiment-1 summary at {p} (run "
                     "launch.latent_dynamics.env_models with --workdir first).")
  return json.loads(p.read_text())


def _fmt(x) -> str:
  return "n/a" if x is None else f"{x:.2f}"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test).")
  parser.add_argument("--repeats", type=int, default=None)
  parser.add_argument("--steps", type=int, default=None, help="actions per rollout (T)")
  parser.add_argument("--likelihoods", default=None,
                      help="workdir (or summary.json) of an experiment-1 run: its test "
                           "log-likelihoods per frame join the table")
  args = parser.parse_args()
  ll_summary = load_likelihoods(args.likelihoods)
  batches = (1, 16) if args.quick else (1, 16, 256)
  repeats = args.repeats or (2 if args.quick else 5)
  t_len = args.steps or (8 if args.quick else 12)
  if t_len % JUMP:
    raise ValueError(f"--steps must be a multiple of the jump size {JUMP}; got {t_len}.")

  env = minipacman.MiniPacman()
  env_params = env.default_params
  obs_shape = tuple(env.observation_space(env_params).shape)
  num_actions = env.action_space(env_params).num_values
  spec = i2a_env_model.minipacman_event_spec(env_params)

  rar_params, rar_fn = rar_runner(obs_shape, num_actions, spec)
  _, rar_xla_fn = rar_runner(obs_shape, num_actions, spec, xla_conv=True)
  entries = [("RAR (I2A env model)", "frames", 1, None, rar_params, rar_fn),
             ("RAR, XLA conv", "frames", 1, None, rar_params, rar_xla_fn)]
  for kind, jump in (("dSSM-DET", 1), ("dSSM-VAE", 1), ("sSSM", 1), ("sSSM", JUMP)):
    for decode in (True, False):
      model, params, fn = ssm_runner(kind, jump, obs_shape, num_actions, decode)
      name = kind if jump == 1 else f"jumpy {kind} (k={jump})"
      entries.append((name, "frames" if decode else "latent", jump, model, params, fn))

  key = jax.random.key(1)
  tiles = jax.random.randint(key, (max(batches), 3) + obs_shape[:2], 0, obs_shape[2])
  context = jax.nn.one_hot(tiles, obs_shape[2], dtype=jnp.float32)
  actions_all = jax.random.randint(key, (max(batches), t_len), 0, num_actions)

  rows = []
  for b in batches:
    runners = []
    for name, output, jump, model, params, fn in entries:
      actions = actions_all[:b]
      start = context[:b, -1] if model is None else model.observe(params, context[:b])
      t0 = time.perf_counter()
      compiled = jax.jit(fn).lower(params, start, actions, key).compile()
      compile_s = time.perf_counter() - t0
      jax.block_until_ready(compiled(params, start, actions, key))   # warm-up
      runners.append(dict(name=name, output=output, jump=jump, batch=b, compile_s=compile_s,
                          params=num_params(params), times=[],
                          call=lambda c=compiled, p=params, s=start, a=actions: c(p, s, a, key)))
    for _ in range(repeats):
      for r in runners:
        t0 = time.perf_counter()
        jax.block_until_ready(r["call"]())
        r["times"].append(time.perf_counter() - t0)
    for r in runners:
      sec = statistics.median(r.pop("times"))
      r.pop("call")
      r["seconds"] = sec
      r["action_steps_per_s"] = b * t_len / sec
      r["model_steps_per_s"] = b * (t_len // r["jump"]) / sec
    rar, rar_xla = runners[0]["action_steps_per_s"], runners[1]["action_steps_per_s"]
    for r in runners:
      r["speedup_vs_rar"] = r["action_steps_per_s"] / rar
      r["speedup_vs_rar_xla"] = r["action_steps_per_s"] / rar_xla
      r.update(likelihood_columns(ll_summary, r["name"]))
      rows.append(r)

  load = os.getloadavg()
  print(f"Rollouts of T = {t_len} actions on MiniPacman 15x19x6 tiles; {repeats} repeats; "
        f"{jax.devices()[0].device_kind} ({os.cpu_count()} cores), load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
  header = (f"{'model':<24} {'output':<7} {'batch':>5} {'model st/s':>11} {'action st/s':>12} "
            f"{'x RAR':>6} {'x RAR-XLA':>9} {'compile s':>9} {'params':>8}"
            + "".join(f" {e[:4] + ' ll T1/T10':>16}" for e in LL_ENVS))
  print(header)
  print("-" * len(header))
  for r in rows:
    print(f"{r['name']:<24} {r['output']:<7} {r['batch']:>5} {r['model_steps_per_s']:>11.1f} "
          f"{r['action_steps_per_s']:>12.1f} {r['speedup_vs_rar']:>6.2f} "
          f"{r['speedup_vs_rar_xla']:>9.2f} {r['compile_s']:>9.1f} {r['params']:>8}"
          + "".join(f" {_fmt(r[e + '_ll_T1']) + ' / ' + _fmt(r[e + '_ll_T10']):>16}"
                    for e in LL_ENVS))
  OUT.parent.mkdir(parents=True, exist_ok=True)
  OUT.write_text(json.dumps({
      "rows": rows, "steps": t_len, "repeats": repeats, "jump": JUMP, "quick": args.quick,
      "device": jax.devices()[0].device_kind, "platform": platform.platform(),
      "cpu_count": os.cpu_count(), "load_average": load,
      "likelihoods_from": args.likelihoods}, indent=1))
  print(f"wrote {OUT}")


if __name__ == "__main__":
  main()
