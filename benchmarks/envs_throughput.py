"""Steps per second of our JAX Sokoban and MiniPacman beside envpool's and jumanji's Sokoban.

    python -m benchmarks.envs_throughput [--quick]

Each JAX environment runs `batch` copies under `vmap` with uniformly random actions, the whole
`steps`-long rollout inside one `jit` (`lax.scan`), automatic resets included; the observation
is folded into a checksum so it cannot be optimised away. envpool's Sokoban (C++, threads =
cores) steps the same batch from Python with numpy random actions. jumanji's Sokoban (1.1.2,
`ToyGenerator`, `AutoResetWrapper`) runs like ours. Compile time is reported apart; steady-state
time is the median of `--repeats` runs after a warm-up. Writes results/bench/envs_throughput.json.
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
import numpy as np  # noqa: E402

from envs import minipacman, sokoban  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "results" / "bench" / "envs_throughput.json"


def jax_rollout(env, params, batch: int, steps: int):
  """A jitted function `key -> checksum` stepping `batch` envs for `steps` steps."""
  num_actions = env.num_actions

  def run(key):
    k_reset, k_run = jax.random.split(key)
    _, states = jax.vmap(lambda k: env.reset(k, params))(jax.random.split(k_reset, batch))

    def body(carry, k):
      states, acc = carry
      k_act, k_step = jax.random.split(k)
      actions = jax.random.randint(k_act, (batch,), 0, num_actions)
      obs, states, r, *_ = jax.vmap(lambda kk, s, a: env.step(kk, s, a, params))(
          jax.random.split(k_step, batch), states, actions)
      return (states, acc + r.sum() + obs.astype(jnp.float32).sum()), None

    (_, acc), _ = jax.lax.scan(body, (states, jnp.float32(0)), jax.random.split(k_run, steps))
    return acc

  return jax.jit(run)


def jumanji_rollout(batch: int, steps: int):
  """As `jax_rollout`, for jumanji's Sokoban with its auto-reset wrapper."""
  from jumanji.environments.routing.sokoban import Sokoban  # noqa: PLC0415
  from jumanji.environments.routing.sokoban.generator import ToyGenerator  # noqa: PLC0415
  from jumanji.wrappers import AutoResetWrapper  # noqa: PLC0415
  env = AutoResetWrapper(Sokoban(generator=ToyGenerator()))

  def run(key):
    k_reset, k_run = jax.random.split(key)
    states, _ = jax.vmap(env.reset)(jax.random.split(k_reset, batch))

    def body(carry, k):
      states, acc = carry
      actions = jax.random.randint(k, (batch,), 0, 4)
      states, ts = jax.vmap(env.step)(states, actions)
      return (states, acc + ts.reward.sum() + ts.observation.grid.astype(jnp.float32).sum()), None

    (_, acc), _ = jax.lax.scan(body, (states, jnp.float32(0)), jax.random.split(k_run, steps))
    return acc

  return jax.jit(run)


def time_jax(fn, repeats: int):
  key = jax.random.PRNGKey(0)
  t0 = time.perf_counter()
  jax.block_until_ready(fn(key))
  compile_s = time.perf_counter() - t0
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.PRNGKey(i + 1)))
    times.append(time.perf_counter() - t0)
  return compile_s, statistics.median(times)


def time_envpool(batch: int, steps: int, repeats: int):
  from envs.host import envpool_env  # noqa: PLC0415
  env = envpool_env.HostEnv("Sokoban-v0", num_envs=batch, seed=0,
                            num_threads=min(batch, os.cpu_count() or 1))
  env.reset()
  rng = np.random.default_rng(0)
  actions = rng.integers(0, 4, (steps, batch)).astype(np.int32)
  raw = env._env  # the bare envpool object: time envpool itself, not our checks
  for t in range(min(steps, 10)):
    raw.step(actions[t])
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for t in range(steps):
      raw.step(actions[t])
    times.append(time.perf_counter() - t0)
  env.close()
  return statistics.median(times)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="batch 1024 only, short rollouts")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  batches = [1024] if args.quick else [1, 16, 256, 1024, 4096]
  steps = 32 if args.quick else 100
  repeats = 2 if args.quick else args.repeats
  try:
    import jumanji  # noqa: F401, PLC0415
    have_jumanji = True
  except ImportError:
    have_jumanji = False
    print("jumanji not installed: its column is skipped (pip install jumanji)")

  sok = sokoban.Sokoban()
  sok_params = sok.default_params
  pac = minipacman.MiniPacman("regular")
  pac_params = pac.default_params
  rows = []
  for batch in batches:
    row = {"batch": batch, "steps": steps}
    for name, fn in [("sokoban", jax_rollout(sok, sok_params, batch, steps)),
                     ("minipacman", jax_rollout(pac, pac_params, batch, steps))] + (
                         [("jumanji_sokoban", jumanji_rollout(batch, steps))]
                         if have_jumanji else []):
      compile_s, run_s = time_jax(fn, repeats)
      row[f"{name}_steps_per_s"] = batch * steps / run_s
      row[f"{name}_compile_s"] = compile_s
    # envpool steps from Python at ~1e4 steps/s: fewer steps at large batches keep runs short.
    ep_steps = max(8, min(steps, 40_000 // batch))
    row["envpool_sokoban_steps_per_s"] = batch * ep_steps / time_envpool(batch, ep_steps, repeats)
    ref = row["envpool_sokoban_steps_per_s"]
    row["sokoban_vs_envpool"] = row["sokoban_steps_per_s"] / ref
    row["minipacman_vs_envpool"] = row["minipacman_steps_per_s"] / ref
    if have_jumanji:
      row["sokoban_vs_jumanji"] = row["sokoban_steps_per_s"] / row["jumanji_sokoban_steps_per_s"]
    rows.append(row)

  print(f"\nsteps/s on {jax.devices()[0].platform} ({os.cpu_count()} cores), {steps}-step "
        "rollouts, median of {} runs".format(repeats))
  header = ("| batch | ours Sokoban | ours MiniPacman | envpool Sokoban | jumanji Sokoban | "
            "Sokoban / envpool | Sokoban / jumanji | compile s (Sokoban, MiniPacman) |")
  print(header)
  print("|" + "---|" * 8)
  for r in rows:
    jm = r.get("jumanji_sokoban_steps_per_s", float("nan"))
    print(f"| {r['batch']} | {r['sokoban_steps_per_s']:,.0f} | {r['minipacman_steps_per_s']:,.0f}"
          f" | {r['envpool_sokoban_steps_per_s']:,.0f} | {jm:,.0f} | "
          f"{r['sokoban_vs_envpool']:.1f}x | {r.get('sokoban_vs_jumanji', float('nan')):.1f}x | "
          f"{r['sokoban_compile_s']:.1f}, {r['minipacman_compile_s']:.1f} |")
  at_1024 = next(r for r in rows if r["batch"] == 1024)
  summary = {"quick": args.quick, "cpu_count": os.cpu_count(), "machine": platform.machine(),
             "jax": jax.__version__, "rows": rows,
             "sokoban_vs_envpool_at_1024": at_1024["sokoban_vs_envpool"],
             "target_met_10x_at_1024": bool(at_1024["sokoban_vs_envpool"] >= 10.0)}
  OUT.parent.mkdir(parents=True, exist_ok=True)
  OUT.write_text(json.dumps(summary, indent=2))
  print(f"Sokoban / envpool at batch 1024: {at_1024['sokoban_vs_envpool']:.1f}x (target 10x); "
        f"wrote {OUT}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
