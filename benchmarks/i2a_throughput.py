"""Training frames per second of I2A, the copy-model agent and the large standard agent, and the
environment model's steps per second (Weber et al. 2017; `agents.i2a.make_agent_trainer`).

    python -m benchmarks.i2a_throughput [--quick] [--repeats=R] [--env=sokoban|minipacman]

* Agents: the large standard agent (A2C's network widened to I2A's parameter count), the
  copy-model agent (depth 3) and I2A at depth 1, 3 and 5, all with the update reusing the acting
  pass's imagination (the default), plus I2A at depth 3 imagining again in the update
  (`reuse_imagination=False`, the reference) to show what the reuse saves, and I2A at each
  depth with the frozen model's convolutions computed as patches x kernel (`EnvModelConfig.
  rollout_conv="patches"`, the form before XLA's convolution became the default) to show what
  that saves (skip with `--no-patches`). Networks: the CPU
  `default` preset's sizes of `launch/agents/configs/i2a_sokoban.py` (quick mode: tiny ones).
  The environment model is at its initial params (the same arithmetic as a trained one).
* Frames = environments x T x U per chunk (one chunk: U updates of T-step rollouts of B
  environments, all under one jit; U = 20 here, the preset's B and T). Compile time
  (ahead-of-time compilation of one chunk) is reported apart; steady-state time is the median
  over `--repeats` rounds in which every agent runs one chunk in turn (interleaved, so load
  from other processes falls on all alike).
* Cost of imagination: the standard agent's frames/s divided by the agent's (how many times
  slower); memory: the compiled chunk's temporary buffer size (`memory_analysis`, where the
  backend reports it).
* Environment-model steps/s: one jitted greedy `ImaginedEnv.step` of a batch of N observations
  (N = B x A, one imagination step of the acting pass), median over repeats, with each
  convolution form.

Writes results/bench/i2a_throughput.json.
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

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks import _timing as timing  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parent.parent / "results" / "bench"
       / "i2a_throughput.json")






def setting(env_name: str, quick: bool):
  """`(env, env_params, model, model_params, AgentConfig)` of the benchmark."""
  from agents import i2a  # noqa: PLC0415
  from launch.agents import i2a_common  # noqa: PLC0415
  from launch.agents.configs import i2a_sokoban  # noqa: PLC0415
  c = i2a_sokoban.get_config("smoke" if quick else "default")
  tag = "sokoban-7x7-2" if env_name == "sokoban" else "minipacman-regular"
  c.unlock()
  c.sokoban_levels = "pool"   # the level source does not change the agents' arithmetic
  if not quick:
    c.agent.updates_per_chunk = 20   # 1,600 frames per timed chunk (B = 16, T = 5)
  env, env_params = i2a_common.environment(tag, c)
  spec = i2a_common.reward_spec(tag, env_params)
  model = i2a.env_model_for(i2a_common.model_config(c), env, env_params, spec)
  model_params = model.init(jax.random.key(0))
  return env, env_params, model, model_params, i2a_common.agent_config(c, "i2a", depth=3)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny networks, 2 rounds (smoke)")
  parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
  parser.add_argument("--env", default="sokoban", choices=("sokoban", "minipacman"))
  parser.add_argument("--out", default=str(OUT), help="JSON output path")
  parser.add_argument("--no-patches", action="store_true",
                      help="skip the rows with the model's convolutions as patches x kernel")
  args = parser.parse_args(argv)
  from agents import i2a  # noqa: PLC0415
  quick = args.quick
  repeats = 2 if quick else args.repeats
  load_start, t_start = timing.machine_load(), time.perf_counter()
  env, env_params, model, model_params, base = setting(args.env, quick)
  # The same model with its convolutions as patches x kernel (same params, same outputs).
  models = {"xla": model, "patches": i2a.make_env_model(
      model.config.replace(rollout_conv="patches"), model.obs_shape, model.num_actions,
      model.reward_spec)}
  depths = (1, 3) if quick else (1, 3, 5)
  agents = [("standard", base.replace(agent="standard"), "xla")]
  agents.append(("copy d3", base.replace(agent="copy", net=base.net.replace(depth=3)), "xla"))
  for d in depths:
    agents.append((f"i2a d{d}", base.replace(net=base.net.replace(depth=d)), "xla"))
  agents.append(("i2a d3 re-imagine", base.replace(net=base.net.replace(depth=3),
                                                   reuse_imagination=False), "xla"))
  if not args.no_patches:
    for d in depths:
      agents.append((f"i2a d{d} patches conv", base.replace(net=base.net.replace(depth=d)),
                     "patches"))
  runners, meta = [], {}
  for name, cfg, conv in agents:
    trainer = i2a.make_agent_trainer(cfg, env, env_params, env_model=models[conv],
                                     model_params=model_params, env_name=args.env)
    state = jax.jit(trainer.init)(jax.random.key(0))
    compile_s, compiled = timing.compile_timed(trainer.chunk, state)
    runners.append(timing.Runner(name, compiled, state, cfg.a2c.frames_per_chunk))
    meta[name] = {"compile_s": compile_s, "params": i2a.train.count_params(state.params),
                  "temp_bytes": timing.temp_bytes(compiled), "depth": cfg.net.depth,
                  "model_conv": conv}
  for r in runners:  # warm-up: the first call of each compiled chunk
    r.step()
    r.times.clear()
  for _ in range(repeats):
    for r in runners:
      r.step()
  standard_fps = runners[0].frames / runners[0].seconds()
  rows = []
  for r in runners:
    fps = r.frames / r.seconds()
    rows.append({"agent": r.name, **meta[r.name], "frames_per_chunk": r.frames,
                 "chunk_s": r.seconds(), "frames_per_s": fps,
                 "cost_vs_standard": standard_fps / fps, "chunk_times_s": r.times})

  # Environment-model steps/s: one greedy imagination step of B x A observations.
  b, a = base.a2c.num_envs, model.num_actions
  n = b * a
  obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(1), n),
                                                  env_params)
  actions = jnp.arange(n, dtype=jnp.int32) % a
  model_rows = {}
  for conv in ("xla",) if args.no_patches else ("xla", "patches"):
    imagined = i2a.ImaginedEnv(models[conv])
    step = jax.jit(lambda o, act, imagined=imagined: jax.vmap(
        imagined.step, in_axes=(None, 0, 0, None))(jax.random.key(0), o, act, model_params)[0])
    t0 = time.perf_counter()
    jax.block_until_ready(step(obs, actions))
    model_compile_s = time.perf_counter() - t0
    times = []
    for _ in range(max(repeats, 3) * 3):
      t0 = time.perf_counter()
      jax.block_until_ready(step(obs, actions))
      times.append(time.perf_counter() - t0)
    model_rows[conv] = {"batch": n, "steps_per_s": n / statistics.median(times),
                        "compile_s": model_compile_s}
  model_row = model_rows["xla"]

  load_end = timing.machine_load()
  c = base.a2c
  print(f"\nI2A agents' training frames/s, {args.env}, {jax.devices()[0].platform} "
        f"({os.cpu_count()} cores), B = {c.num_envs}, T = {c.rollout_length}, U = "
        f"{c.updates_per_chunk}, median of {repeats} interleaved chunks; load average "
        f"(1, 5, 15 min) {load_start} at start, {load_end} at end")
  print("| agent | frames/s | cost vs standard | compile s | params | temp MiB |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    mib = "n/a" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.1f}"
    print(f"| {r['agent']} | {r['frames_per_s']:,.0f} | {r['cost_vs_standard']:.1f}x | "
          f"{r['compile_s']:.1f} | {r['params']:,} | {mib} |")
  for conv, row in model_rows.items():
    print(f"environment model, {conv} convolutions: {row['steps_per_s']:,.0f} steps/s at batch "
          f"{n} (compile {row['compile_s']:.1f} s)")
  summary = {"quick": quick, "env": args.env, "cpu_count": os.cpu_count(),
             "machine": platform.machine(), "platform": jax.devices()[0].platform,
             "jax": jax.__version__, "load_average_start": load_start,
             "load_average_end": load_end, "wall_s": time.perf_counter() - t_start,
             "num_envs": c.num_envs, "rollout": c.rollout_length,
             "updates_per_chunk": c.updates_per_chunk, "repeats": repeats, "rows": rows,
             "env_model": model_row, "env_model_by_conv": model_rows}
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(summary, indent=2))
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
