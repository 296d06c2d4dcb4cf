"""What a new level every episode costs A2C: chunk seconds on Sokoban, pool vs level stream.

    python -m benchmarks.agents_a2c_sokoban_levels [--quick] [--rounds=5] [--envs=...]

The `default` preset of `launch.agents.a2c` (3 seeds under `jax.vmap`, 16 environments per
seed, 150 updates of 5-step rollouts per chunk: 12,000 frames per seed), one jitted chunk
timed per level source, interleaved over `--rounds` rounds (median; load from other jobs falls
on all alike), compile apart:

* `pool`: the 1,024-level pool, levels repeat (`env.default_params`).
* `stream`: the I2A paper's rule, a new App. D.3 level every episode: before every chunk each
  seed's stream receives `sokoban_stream_levels` (256) new levels, searched 64 lanes at a time
  (`env.refill_stream` through `sokoban_generator.generate_in_batches`, whose batching rule runs
  the three seeds' searches as one sequence of 64-lane searches).
* `stream, per-seed searches` (the anchor for that rule): the same levels made by
  `jax.lax.map(generate_batch)` under the vmap over seeds, i.e. the search's `while_loop`
  vmapped over seeds (how refills ran before the rule).

Reports seconds per chunk, the ratio to the pool, levels generated per second by the stream
(3 x 256 per chunk over the extra time), and the episodes played per chunk (consumption, against
the 256 levels supplied per seed). Writes results/bench/agents_a2c_sokoban_levels.json.
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

from agents import a2c  # noqa: E402
from envs import sokoban_generator  # noqa: E402
from launch.agents import a2c as launcher  # noqa: E402
from launch.agents.configs import a2c as a2c_configs  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parent.parent / "results" / "bench"
       / "agents_a2c_sokoban_levels.json")
MODES = ("pool", "stream", "stream, per-seed searches")


def per_seed_search_refill(env, num: int, batch: int):
  """`env.refill_stream` with the search vmapped over seeds instead of flattened (anchor)."""

  def refill(key, params):
    keys = jax.random.split(key, num)
    keys = keys.reshape((num // batch, batch) + keys.shape[1:])
    search = lambda k: sokoban_generator.generate_batch(  # noqa: E731
        k, env.height, env.width, env.num_boxes, env.generator)[:2]
    levels, ok = jax.tree.map(lambda x: x.reshape((num,) + x.shape[2:]),
                              jax.lax.map(search, keys))
    return env.append_to_stream(params, levels, ok)

  return refill


def build(tag: str, mode: str, config, seeds: int):
  """`(compiled chunk, state, compile seconds)` of one level source."""
  config.sokoban_levels = "pool" if mode == "pool" else "stream"
  env, params = launcher.environment(tag, config)
  if mode == "pool":
    refresh = None
  elif mode == "stream":
    refresh = launcher.refresh_env_params(tag, env, config)
  else:
    refresh = per_seed_search_refill(env, int(config.sokoban_stream_levels),
                                     int(config.sokoban_stream_batch))
  trainer = a2c.make_trainer(launcher.agent_config(config, tag), env, params, env_name=tag,
                             refresh_env_params=refresh)
  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(jnp.arange(seeds))
  state = jax.jit(jax.vmap(trainer.init))(keys)
  t0 = time.perf_counter()
  chunk = jax.jit(jax.vmap(trainer.chunk)).lower(state).compile()
  compile_s = time.perf_counter() - t0
  state, metrics = chunk(state)  # warm-up
  jax.block_until_ready(metrics)
  return chunk, state, compile_s


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="the first of --envs only, 10 updates per chunk, 2 rounds")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--envs", default="sokoban-7x7-2,sokoban-10x10-4")
  args = parser.parse_args(argv)
  config = a2c_configs.get_config("default")
  rounds = 2 if args.quick else args.rounds
  if args.quick:
    config.agent.updates_per_chunk = 10
    config.sokoban_stream_levels, config.sokoban_stream_batch = 64, 32
  frames = (config.num_seeds * config.agent.num_envs * config.agent.rollout_length
            * config.agent.updates_per_chunk)
  load0 = os.getloadavg()
  results = {}
  tags = args.envs.split(",")[:1] if args.quick else args.envs.split(",")
  for tag in tags:
    runs = {mode: build(tag, mode, config, config.num_seeds) for mode in MODES}
    times = {mode: [] for mode in MODES}
    episodes = {}
    for _ in range(rounds):
      for mode, (chunk, state, _) in runs.items():
        t0 = time.perf_counter()
        state, metrics = chunk(state)
        jax.block_until_ready(metrics)
        times[mode].append(time.perf_counter() - t0)
        runs[mode] = (chunk, state, runs[mode][2])
        episodes[mode] = float(metrics["episodes"].sum()) / config.num_seeds
        if mode != "pool":
          episodes[mode + " dry"] = float(metrics["stream_dry"].sum())
    med = {mode: statistics.median(t) for mode, t in times.items()}
    levels = config.num_seeds * int(config.sokoban_stream_levels)
    results[tag] = {
        mode: {"chunk_s": med[mode], "chunk_s_all": times[mode], "ratio_to_pool":
               med[mode] / med["pool"], "compile_s": runs[mode][2],
               "frames_per_s": frames / med[mode],
               "episodes_per_seed_per_chunk": episodes[mode],
               "levels_per_s": (levels / max(med[mode] - med["pool"], 1e-9)
                                if mode != "pool" else None),
               "dry_resets_last_chunk": episodes.get(mode + " dry")}
        for mode in MODES}
  load1 = os.getloadavg()
  print(f"\nA2C chunk on Sokoban, {config.num_seeds} seeds vmapped, {frames:,} frames per chunk, "
        f"median of {rounds} interleaved rounds; load {list(load0)} at start, {list(load1)} "
        "at end")
  print("| env | levels | chunk s | / pool | frames/s | stream levels/s | episodes/seed/chunk "
        "| compile s |\n|---|---|---|---|---|---|---|---|")
  for tag, by_mode in results.items():
    for mode, r in by_mode.items():
      lv = "" if r["levels_per_s"] is None else f"{r['levels_per_s']:,.0f}"
      print(f"| {tag} | {mode} | {r['chunk_s']:.2f} | {r['ratio_to_pool']:.2f}x | "
            f"{r['frames_per_s']:,.0f} | {lv} | {r['episodes_per_seed_per_chunk']:.0f} | "
            f"{r['compile_s']:.1f} |")
  OUT.parent.mkdir(parents=True, exist_ok=True)
  OUT.write_text(json.dumps({"results": results, "load_start": load0, "load_end": load1,
                             "machine": platform.platform(), "jax": jax.__version__,
                             "rounds": rounds, "frames_per_chunk": frames,
                             "stream_levels_per_seed": int(config.sokoban_stream_levels),
                             "stream_batch": int(config.sokoban_stream_batch)}, indent=1))
  print(f"wrote {OUT}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
