"""Sokoban level generator (I2A App. D.3): repeats among generated levels, solution lengths.

    python -m benchmarks.envs_sokoban_levels [--num 100000] [--sample 1000] [--quick]

For each configuration (10x10 with 4 boxes, I2A's; 7x7 with 2 boxes) it generates `--num`
levels with `envs.sokoban_generator.generate_batch`, level i from key `fold_in(PRNGKey(seed),
i)` as in `generate_bank`, and reports

- the fraction of failed generations (`ok = False`: no try scored above 0; the environment
  then plays a bank level instead),
- the repeat fraction among the valid levels, `1 - distinct / valid`, a level being its walls,
  targets, boxes and player (I2A App. D.3: "less than 0.7%" repeats in 4e7 levels),
- for the first `--sample` valid levels, the fewest-steps solution of the host A* solver
  (`envs.sokoban_levels.solve_level`): how many were solved (all must be), and the distribution
  of solution lengths in environment steps (the episode limit is 120).

With `--throughput` it measures instead environment steps/s of `envs.Sokoban` under `vmap` at
16, 64 and 256 environments (random actions, one jitted `lax.scan`, episode clocks started at
uniform times in [0, 120) so that resets are spread as in a long run), with fresh levels
(`env.fresh_params()`: the generator runs at every reset) and with a bank
(`env.make_params(bank)`), compile time apart.

The tally is written to `--out` (JSON) after every batch, so a long run that is stopped still
leaves its partial counts. Generation time includes the first batch's compilation, reported
apart.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from envs import sokoban_generator, sokoban_levels

CONFIGS = {"10x10x4": (10, 10, 4), "7x7x2": (7, 7, 2)}


def level_bytes(levels) -> list[bytes]:
  """One byte string per level of a bank (walls, targets, boxes bit-packed, then the player)."""
  grids = np.concatenate([np.asarray(levels.walls), np.asarray(levels.targets),
                          np.asarray(levels.boxes)], axis=1).reshape(len(levels.walls), -1)
  packed = np.packbits(grids, axis=1)
  player = np.asarray(levels.player, np.uint8)
  return [p.tobytes() + q.tobytes() for p, q in zip(packed, player)]


def length_summary(lengths) -> dict:
  x = np.asarray(lengths, float)
  if x.size == 0:
    return {}
  edges = list(range(0, 130, 10)) + [10_000]
  hist, _ = np.histogram(x, bins=edges)
  return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std()),
          "min": int(x.min()), "p10": float(np.percentile(x, 10)),
          "median": float(np.median(x)), "p90": float(np.percentile(x, 90)),
          "max": int(x.max()), "over_120": int(np.sum(x > 120)),
          "histogram_bins_of_10": {f"{lo}-{lo + 9}" if lo < 120 else "120+": int(c)
                                   for lo, c in zip(edges[:-1], hist)}}


def run_config(name, num, sample, batch, seed, out, record):
  height, width, boxes = CONFIGS[name]
  key = jax.random.PRNGKey(seed)
  seen, valid, failed, done = set(), 0, 0, 0
  to_solve = []
  t0 = time.time()
  compile_s = None
  res = record.setdefault(name, {})
  while done < num:
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(np.arange(done, done + batch))
    t = time.time()
    levels, ok, _ = sokoban_generator.generate_batch(keys, height, width, boxes)
    ok = np.asarray(ok)
    if compile_s is None:
      compile_s = time.time() - t
      t0 = time.time()
    take = min(batch, num - done)
    ok = ok[:take]
    levels = jax.tree.map(lambda x: np.asarray(x)[:take][ok], levels)
    failed += int(take - ok.sum())
    valid += int(ok.sum())
    seen.update(level_bytes(levels))
    if len(to_solve) < sample:
      to_solve += [levels[i] for i in range(min(len(levels.walls), sample - len(to_solve)))]
    done += take
    elapsed = time.time() - t0
    res.update({"generated": done, "failed": failed, "valid": valid, "distinct": len(seen),
                "repeats": valid - len(seen),
                "repeat_fraction": (valid - len(seen)) / max(valid, 1),
                "first_batch_s": compile_s, "generate_s_after_first_batch": elapsed,
                "levels_per_s": (done - batch) / elapsed if done > batch else None})
    out.write_text(json.dumps(record, indent=1))
    print(f"{name}: {done}/{num} generated, {failed} failed, repeats {valid - len(seen)} "
          f"({res['repeat_fraction']:.5f}), {elapsed:.0f} s", flush=True)
  if sample:
    t = time.time()
    lengths, unsolved = [], 0
    for i, level in enumerate(to_solve):
      actions = sokoban_levels.solve_level(level, max_expansions=2_000_000)
      if actions is None:
        unsolved += 1
      else:
        lengths.append(len(actions))
      if (i + 1) % 50 == 0 or i + 1 == len(to_solve):
        res["solver"] = {"sampled": i + 1, "unsolved": unsolved,
                         "seconds": time.time() - t, "steps": length_summary(lengths)}
        out.write_text(json.dumps(record, indent=1))
        print(f"{name}: solved {i + 1 - unsolved}/{i + 1}, {time.time() - t:.0f} s", flush=True)
    print(f"{name}: solver {len(to_solve) - unsolved}/{len(to_solve)} solved, steps "
          f"{res['solver']['steps']}", flush=True)


def throughput(name, batches, steps, repeats=2) -> dict:
  from envs import sokoban  # noqa: PLC0415
  height, width, boxes = CONFIGS[name]
  env = sokoban.Sokoban(height, width, boxes)
  fresh = env.fresh_params()
  modes = {"bank": env.make_params(fresh.levels), "fresh": fresh}
  out = {}

  def rollout(key, params, num_envs, num_steps):
    k_reset, k_time, k_run = jax.random.split(key, 3)
    _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), params)
    state = state.replace(time=jax.random.randint(k_time, (num_envs,), 0, params.max_steps))

    def body(state, k):
      k_act, k_step = jax.random.split(k)
      action = jax.random.randint(k_act, (num_envs,), 0, env.num_actions)
      _, state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
          jax.random.split(k_step, num_envs), state, action, params)
      return state, (reward.sum(), jnp.sum(term | trunc))

    _, (reward, resets) = jax.lax.scan(body, state, jax.random.split(k_run, num_steps))
    return reward.sum(), resets.sum()

  for num_envs in batches:
    for mode, params in modes.items():
      num_steps = steps[mode]
      run = jax.jit(lambda k, p, n=num_envs, t=num_steps: rollout(k, p, n, t))
      t = time.time()
      jax.block_until_ready(run(jax.random.PRNGKey(0), params))
      compile_s = time.time() - t
      best, resets = None, 0
      for r in range(repeats):
        t = time.time()
        _, resets = jax.block_until_ready(run(jax.random.PRNGKey(r + 1), params))
        best = min(best or 1e9, time.time() - t)
      rate = num_envs * num_steps / best
      out[f"{mode}_{num_envs}"] = {"steps_per_s": rate, "compile_s": compile_s,
                                   "rollout_steps": num_steps, "resets": int(resets)}
      print(f"{name} {mode:5s} envs {num_envs:4d}: {rate:10.0f} steps/s ({int(resets)} resets "
            f"in {num_envs * num_steps} steps; compile {compile_s:.1f} s)", flush=True)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num", type=int, default=100_000)
  parser.add_argument("--sample", type=int, default=1000)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--configs", default="7x7x2,10x10x4")
  parser.add_argument("--quick", action="store_true", help="512 levels, 50 solved")
  parser.add_argument("--throughput", action="store_true",
                      help="steps/s with fresh levels vs a bank instead")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  if args.throughput:
    args.out = args.out or "results/bench/envs_sokoban_throughput.json"
    record = {"load_average_start": os.getloadavg()}
    steps = {"bank": 2000, "fresh": 20 if args.quick else 60}
    for name in args.configs.split(","):
      record[name] = throughput(name, (16, 64, 256), steps)
    record["load_average_end"] = os.getloadavg()
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))
    return
  args.out = args.out or "results/bench/envs_sokoban_levels.json"
  if args.quick:
    args.num, args.sample = 512, 50
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  record = {"num": args.num, "sample": args.sample, "batch": args.batch, "seed": args.seed,
            "load_average_start": os.getloadavg()}
  t = time.time()
  for name in args.configs.split(","):
    if name not in CONFIGS:
      raise ValueError(f"configs: unknown {name!r}, expected some of {sorted(CONFIGS)}")
    run_config(name, args.num, args.sample, args.batch, args.seed, out, record)
  record["wall_s"] = time.time() - t
  record["load_average_end"] = os.getloadavg()
  out.write_text(json.dumps(record, indent=1))
  print(json.dumps(record, indent=1))


if __name__ == "__main__":
  main()
