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

With `--throughput` it measures instead

- the generator's batched throughput: valid levels/s of `generate_batch` calls at
  `--gen-batches` (default 16, 64, 256, 1024 levels per call; one search loop as long as its
  slowest lane; calls with new keys for at least 5 s), compile apart;
- environment steps/s of `envs.Sokoban` under `vmap` at `--envs` (default 16, 64, 256)
  environments (random actions, one jitted `lax.scan`, episode clocks started at uniform
  times in [0, 120) so that resets are spread as in a long run), for the level sources in
  `--modes`: `bank` (a generated pool, `env.make_params(bank)`), `stream`
  (`env.stream_params`: chunks of `--chunk-steps` steps, each after as many
  `env.refill_stream` calls of `--refill-batch` levels, searched `--search-batch` at a time,
  as cover the levels the bank rollout consumed in as many steps, plus 10%; by default a
  chunk is as long as one refill covers, 0.9 x refill_batch / (resets per step); steps/s for
  the rollout alone and with the refills' time included, levels consumed and generated per
  second, dry resets) and `fresh` (`env.fresh_params()`: the generator runs at every reset;
  slow, off by default), compile time apart. The bank rows carry the random policy's episode
  length and solve rate (a near-random agent's: levels/s consumed = frames/s / length).

The tally is written to `--out` (JSON) after every batch, so a long run that is stopped still
leaves its partial counts; every 8 batches the valid levels so far are saved beside it
(`<out>.<config>.seed<seed>.npz`), from which `--resume` continues a stopped run. The
first batch's time (compilation included) is reported apart from the generation rate.
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


def run_config(name, num, sample, batch, seed, out, record, resume=False):
  height, width, boxes = CONFIGS[name]
  key = jax.random.PRNGKey(seed)
  seen, valid, failed, done = set(), 0, 0, 0
  rows = []  # every valid level's bytes, in order, saved with `done` for --resume
  progress = out.with_name(f"{out.stem}.{name}.seed{seed}.npz")
  if resume and progress.exists():
    saved = np.load(progress)
    rows = [r.tobytes() for r in saved["rows"]]
    done, failed = int(saved["done"]), int(saved["failed"])
    seen, valid = set(rows), len(rows)
    print(f"{name}: resuming at {done} generated ({progress})", flush=True)
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
    new_rows = level_bytes(levels)
    seen.update(new_rows)
    rows += new_rows
    if len(to_solve) < sample:
      to_solve += [levels[i] for i in range(min(len(levels.walls), sample - len(to_solve)))]
    done += take
    elapsed = time.time() - t0
    if (done // batch) % 8 == 0 or done >= num:
      tmp = progress.with_suffix(".tmp.npz")
      np.savez(tmp, rows=np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), -1),
               done=done, failed=failed)
      tmp.replace(progress)
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


def generator_throughput(name, batches, min_seconds=5.0, min_calls=3) -> dict:
  """Valid levels/s of `generate_batch` at each batch size, compile apart: calls with new keys
  until `min_seconds` and `min_calls` are reached, total valid levels over total time (a
  call's length is its slowest lane's, which varies from call to call)."""
  height, width, boxes = CONFIGS[name]
  out = {}
  for batch in batches:
    keys = lambda r, b=batch: jax.random.split(jax.random.PRNGKey(r), b)  # noqa: E731
    t = time.time()
    jax.block_until_ready(sokoban_generator.generate_batch(keys(0), height, width, boxes))
    compile_s = time.time() - t
    calls, valid, iterations, elapsed = 0, 0, [], 0.0
    while elapsed < min_seconds or calls < min_calls:
      t = time.time()
      _, ok, info = jax.block_until_ready(
          sokoban_generator.generate_batch(keys(calls + 1), height, width, boxes))
      elapsed += time.time() - t
      calls += 1
      valid += int(np.sum(ok))
      iterations.append(int(np.max(info["iterations"])))
    out[f"batch_{batch}"] = {"levels_per_s": valid / elapsed, "seconds": elapsed,
                             "calls": calls, "valid": valid,
                             "loop_iterations_mean": float(np.mean(iterations)),
                             "compile_s": compile_s}
    print(f"{name} generator batch {batch:5d}: {valid / elapsed:8.1f} levels/s ({valid} valid "
          f"in {calls} calls, {elapsed:.1f} s, {np.mean(iterations):.0f} loop iterations per "
          f"call; compile {compile_s:.1f} s)", flush=True)
  return out


def throughput(name, batches, steps, modes=("bank", "stream"), repeats=2, chunk_steps=0,
               refill_batch=256, chunks=3, search_batch=None) -> dict:
  from envs import sokoban  # noqa: PLC0415
  height, width, boxes = CONFIGS[name]
  env = sokoban.Sokoban(height, width, boxes)
  fallback = env.pool(64)
  sources = {"bank": env.make_params(fallback), "fresh": env.fresh_params()}
  out = {}

  def start(key, params, num_envs):
    k_reset, k_time = jax.random.split(key)
    _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), params)
    return state.replace(time=jax.random.randint(k_time, (num_envs,), 0, params.max_steps))

  def run_steps(state, key, params, num_envs, num_steps):
    def body(state, k):
      k_act, k_step = jax.random.split(k)
      action = jax.random.randint(k_act, (num_envs,), 0, env.num_actions)
      _, state, reward, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(
          jax.random.split(k_step, num_envs), state, action, params)
      dry = info.get("stream_dry", jnp.zeros_like(term))
      return state, (reward.sum(), jnp.sum(term | trunc), jnp.sum(term), jnp.sum(dry))

    state, sums = jax.lax.scan(body, state, jax.random.split(key, num_steps))
    return state, jax.tree.map(jnp.sum, sums)

  def rollout(key, params, num_envs, num_steps):
    k_start, k_run = jax.random.split(key)
    return run_steps(start(k_start, params, num_envs), k_run, params, num_envs, num_steps)[1]

  resets_per_step = {}
  for num_envs in batches:
    for mode in [m for m in ("bank", "fresh") if m in modes]:
      params, num_steps = sources[mode], steps[mode]
      run = jax.jit(lambda k, p, n=num_envs, t=num_steps: rollout(k, p, n, t))
      t = time.time()
      jax.block_until_ready(run(jax.random.PRNGKey(0), params))
      compile_s = time.time() - t
      best, sums = None, None
      for r in range(repeats):
        t = time.time()
        sums = jax.block_until_ready(run(jax.random.PRNGKey(r + 1), params))
        best = min(best or 1e9, time.time() - t)
      rate = num_envs * num_steps / best
      _, resets, solved, _ = (int(x) for x in sums)
      row = {"steps_per_s": rate, "compile_s": compile_s, "rollout_steps": num_steps,
             "resets": resets}
      if mode == "bank":
        resets_per_step[num_envs] = resets / num_steps
        row.update(mean_episode_length=num_envs * num_steps / max(resets, 1),
                   solve_rate=solved / max(resets, 1))
      out[f"{mode}_{num_envs}"] = row
      print(f"{name} {mode:6s} envs {num_envs:4d}: {rate:10.0f} steps/s ({resets} resets, "
            f"{solved} solved, in {num_envs * num_steps} steps; compile {compile_s:.1f} s)",
            flush=True)
    if "stream" in modes:
      out[f"stream_{num_envs}"] = stream_throughput(
          env, name, num_envs, chunk_steps, refill_batch, chunks, start, run_steps,
          resets_per_step.get(num_envs, num_envs / 100), search_batch)
  return out


def stream_throughput(env, name, num_envs, chunk_steps, refill_batch, chunks, start, run_steps,
                      resets_per_step, search_batch=None) -> dict:
  """Chunks of `chunk_steps` steps, each after enough refills of `refill_batch` levels."""
  if not chunk_steps:
    chunk_steps = max(1, int(0.9 * refill_batch / resets_per_step))
  calls = max(1, int(np.ceil(1.1 * resets_per_step * chunk_steps / refill_batch)))
  capacity = (calls + 1) * refill_batch
  refill = jax.jit(lambda k, p: env.refill_stream(k, p, refill_batch, search_batch))
  params = env.stream_params(None, capacity=capacity)
  chunk = jax.jit(lambda s, k, p: run_steps(s, k, p, num_envs, chunk_steps))
  # Compile: a refill, the first reset (num_envs levels) and a chunk; they play the first
  # levels, which are then used up.
  t = time.time()
  for c in range(int(np.ceil(num_envs / refill_batch))):
    params = refill(jax.random.PRNGKey(10_000 + c), params)
  jax.block_until_ready(params)
  refill_compile_s = time.time() - t
  t = time.time()
  state = jax.jit(lambda k, p: start(k, p, num_envs))(jax.random.PRNGKey(0), params)
  jax.block_until_ready(chunk(state, jax.random.PRNGKey(0), params))
  compile_s = time.time() - t
  t_refill = t_roll = 0.0
  resets = dry = generated = 0
  n = 0
  for c in range(chunks):
    t = time.time()
    for _ in range(calls):
      params = refill(jax.random.PRNGKey(n), params)
      n += 1
    jax.block_until_ready(params)
    t_refill += time.time() - t
    generated += calls * refill_batch
    t = time.time()
    state, sums = jax.block_until_ready(chunk(state, jax.random.PRNGKey(100 + c), params))
    t_roll += time.time() - t
    resets += int(sums[1])
    dry += int(sums[3])
  frames = num_envs * chunk_steps * chunks
  row = {"steps_per_s_rollout": frames / t_roll, "steps_per_s_with_refill":
         frames / (t_roll + t_refill), "refill_s": t_refill, "rollout_s": t_roll,
         "chunk_steps": chunk_steps, "chunks": chunks, "refill_batch": refill_batch,
         "search_batch": search_batch or refill_batch,
         "refills_per_chunk": calls, "capacity": capacity, "levels_consumed": resets,
         "levels_generated": generated, "dry_resets": dry,
         "levels_consumed_per_s": resets / (t_roll + t_refill),
         "levels_generated_per_s_of_refill": generated / t_refill,
         "compile_s": compile_s, "refill_compile_s": refill_compile_s}
  print(f"{name} stream envs {num_envs:4d}: {frames / t_roll:10.0f} steps/s rollout, "
        f"{frames / (t_roll + t_refill):8.0f} with refills ({resets} levels played, "
        f"{generated} generated at {generated / t_refill:.1f}/s, {dry} dry; compile "
        f"{compile_s:.1f} s + refill {refill_compile_s:.1f} s)", flush=True)
  return row


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num", type=int, default=100_000)
  parser.add_argument("--sample", type=int, default=1000)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--configs", default="7x7x2,10x10x4")
  parser.add_argument("--quick", action="store_true", help="512 levels, 50 solved")
  parser.add_argument("--resume", action="store_true",
                      help="continue from the levels saved beside --out (every 8 batches)")
  parser.add_argument("--throughput", action="store_true",
                      help="generator levels/s and steps/s per level source instead")
  parser.add_argument("--modes", default="bank,stream", help="of bank, stream, fresh")
  parser.add_argument("--gen-batches", default="16,64,256,1024")
  parser.add_argument("--envs", default="16,64,256")
  parser.add_argument("--chunk-steps", type=int, default=0, help="0: one refill per chunk")
  parser.add_argument("--refill-batch", type=int, default=256, help="levels per refill call")
  parser.add_argument("--search-batch", type=int, default=64,
                      help="levels per batched search within a refill (0: the whole refill)")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  if args.throughput:
    args.out = args.out or "results/bench/envs_sokoban_throughput.json"
    record = {"load_average_start": os.getloadavg()}
    steps = {"bank": 2000, "fresh": 20 if args.quick else 60}
    modes = args.modes.split(",")
    envs = tuple(int(n) for n in args.envs.split(",") if n)
    gen_batches = tuple(int(n) for n in args.gen_batches.split(",") if n)
    for name in args.configs.split(","):
      record[name] = {"generator": generator_throughput(name, gen_batches)}
      record[name].update(throughput(name, envs, steps, modes, chunk_steps=args.chunk_steps,
                                     refill_batch=args.refill_batch,
                                     search_batch=args.search_batch or None))
      record[f"load_average_after_{name}"] = os.getloadavg()
      pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
      pathlib.Path(args.out).write_text(json.dumps(record, indent=1))
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
    run_config(name, args.num, args.sample, args.batch, args.seed, out, record, args.resume)
  record["wall_s"] = time.time() - t
  record["load_average_end"] = os.getloadavg()
  out.write_text(json.dumps(record, indent=1))
  print(json.dumps(record, indent=1))


if __name__ == "__main__":
  main()
