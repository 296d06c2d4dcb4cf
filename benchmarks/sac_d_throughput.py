"""Throughput of our SAC and SAC-D: gradient updates per second and environment steps per second.

    python -m benchmarks.sac_d_throughput [--quick]

* Updates/s: `U` gradient updates under one jit (`lax.scan`, replay sampling included) from a
  filled device replay buffer, for SAC and for SAC-D with K reward components (HalfCheetah's
  K = 2 and LunarLander's K = 8). The decomposition cost is SAC-D's time per update over SAC's
  (target: within 1.2x).
* Env steps/s: the full host training loop (envpool step, reward-component checks, one jitted
  learn-and-act call per step) on envpool HalfCheetah-v4, beside envpool's raw stepping rate with
  random actions (the anchor: what the environment alone costs).
Compile time is reported apart; steady-state numbers are medians of several timed repeats after
a warm-up. Writes results/bench/sac_d_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from agents import replay
from agents.sac import Transition, host_train, sac, sac_d, train

OUT = pathlib.Path(__file__).resolve().parent.parent / "results" / "bench" / "sac_d_throughput.json"


def _filled_buffer(obs_dim, action_dim, k, size, key):
  keys = jax.random.split(key, 4)
  comps = jax.random.normal(keys[2], (size, k))
  rows = Transition(jax.random.normal(keys[0], (size, obs_dim)),
                    jax.random.uniform(keys[1], (size, action_dim), minval=-1, maxval=1),
                    comps.sum(-1), comps, jnp.ones(size), jax.random.normal(keys[3], (size,
                                                                                      obs_dim)))
  buffer = replay.replay_buffer(size)
  return buffer, buffer.add(buffer.init(jax.tree.map(lambda x: x[0], rows)), rows)


def compile_updates(agent, buffer, buffer_state, batch_size, num_updates):
  """`(compile seconds, run)` where `run(key)` performs `num_updates` scanned updates."""

  def scan_updates(state, key):
    def one(s, k):
      k1, k2 = jax.random.split(k)
      s, m = agent.update(s, buffer.sample(buffer_state, k1, batch_size), k2)
      return s, m["critic_loss"]
    return jax.lax.scan(one, state, jax.random.split(key, num_updates))

  state = agent.init(jax.random.key(0))
  t0 = time.perf_counter()
  compiled = jax.jit(scan_updates).lower(state, jax.random.key(1)).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(state, jax.random.key(1)))  # Warm-up.
  return compile_s, lambda key: compiled(state, key)


def time_interleaved(runs, repeats):
  """Median seconds of each run, timed alternately so that load from other processes hits all
  of them alike (the machine may be shared)."""
  times = [[] for _ in runs]
  for r in range(repeats):
    for i, run in enumerate(runs):
      t0 = time.perf_counter()
      jax.block_until_ready(run(jax.random.key(100 + r)))
      times[i].append(time.perf_counter() - t0)
  return [float(np.median(t)) for t in times]


def bench_env_steps(agent_name, config, num_steps, quick):
  from envs.host.envpool_env import HostEnv  # noqa: PLC0415
  env = HostEnv("HalfCheetah-v4", num_envs=config.num_envs, seed=0)
  tc = config._replace(agent=agent_name)
  trainer = host_train.make_host_train(tc, env)
  t0 = time.perf_counter()
  state, _ = host_train.run_host_training(trainer, env, tc.learning_starts + 2, jax.random.key(0),
                                          metrics_every=10**9)
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(2 if quick else 3):
    t0 = time.perf_counter()
    state, _ = host_train.run_host_training(trainer, env, num_steps, jax.random.key(0),
                                            state=state, metrics_every=10**9)
    jax.block_until_ready(state.agent.log_alpha)
    times.append(time.perf_counter() - t0)
  env.close()
  return compile_s, num_steps * config.num_envs / float(np.median(times))


def raw_env_steps(num_envs, num_steps):
  from envs.host.envpool_env import HostEnv  # noqa: PLC0415
  env = HostEnv("HalfCheetah-v4", num_envs=num_envs, seed=0)
  env.reset()
  rng = np.random.default_rng(0)
  actions = rng.uniform(-1, 1, (num_steps, num_envs, 6)).astype(np.float32)
  t0 = time.perf_counter()
  for a in actions:
    env.step(a)
  seconds = time.perf_counter() - t0
  env.close()
  return num_steps * num_envs / seconds


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (< 60 s).")
  parser.add_argument("--updates_only", action="store_true",
                      help="Time the gradient updates only (no envpool, e.g. on a GPU machine "
                           "without it); writes sac_d_throughput_<platform>.json.")
  args = parser.parse_args(argv)
  quick = args.quick
  hidden = (64, 64) if quick else (256, 256)
  batch_size = 64 if quick else 256
  num_updates = 200 if quick else 1000
  repeats = 7 if quick else 9
  obs_dim, action_dim = 17, 6
  config = sac.SacConfig(hidden_sizes=hidden)
  rows = []
  results = {"device": f"{jax.device_count()}x {jax.devices()[0].platform}",
             "hidden_sizes": list(hidden), "batch_size": batch_size, "quick": quick}
  sac_agent = sac.make_sac(config, obs_dim, action_dim)
  for k in ((2,) if quick else (2, 8)):
    buffer, state = _filled_buffer(obs_dim, action_dim, k, 10_000, jax.random.key(k))
    c_sac, run_sac = compile_updates(sac_agent, buffer, state, batch_size, num_updates)
    agent = sac_d.make_sac_d(config, obs_dim, action_dim, k)
    c_d, run_d = compile_updates(agent, buffer, state, batch_size, num_updates)
    t_sac, t_d = (t / num_updates for t in time_interleaved([run_sac, run_d], repeats))
    results[f"K{k}"] = {"sac_update_ms": 1e3 * t_sac, "sac_d_update_ms": 1e3 * t_d,
                        "sac_updates_per_s": 1 / t_sac, "sac_d_updates_per_s": 1 / t_d,
                        "sac_compile_s": c_sac, "sac_d_compile_s": c_d,
                        "decomposition_cost_ratio": t_d / t_sac}
    rows.append((f"updates/s (K={k})", f"{1 / t_sac:.0f}", f"{1 / t_d:.0f}", f"{t_d / t_sac:.3f}"))
    rows.append((f"compile s (K={k})", f"{c_sac:.1f}", f"{c_d:.1f}", ""))
  if args.updates_only:
    _report(results, rows, hidden, batch_size,
            OUT.with_name(f"sac_d_throughput_{jax.devices()[0].platform}.json"))
    return
  # Influence is measured every 1000 env steps, as the launchers do (every logged step).
  loop = train.TrainConfig(sac=config, num_envs=1, buffer_size=20_000, batch_size=batch_size,
                           learning_starts=20, influence_states=16, influence_every=1000)
  steps = 100 if quick else 1000
  env_rates = {}
  # --quick times the loop for SAC-D only (each loop costs a compile); the full run times both.
  for name in (("sac_d",) if quick else ("sac", "sac_d")):
    c, rate = bench_env_steps(name, loop, steps, quick)
    env_rates[name] = rate
    results[f"{name}_loop_env_steps_per_s"] = rate
    results[f"{name}_loop_compile_s"] = c
  raw = raw_env_steps(1, 500 if quick else 5000)
  results["envpool_raw_env_steps_per_s"] = raw
  sac_rate = env_rates.get("sac", float("nan"))
  rows.append(("env steps/s, training loop (HalfCheetah)", f"{sac_rate:.0f}",
               f"{env_rates['sac_d']:.0f}", f"{sac_rate / env_rates['sac_d']:.3f}"))
  rows.append(("env steps/s, envpool alone (anchor)", f"{raw:.0f}", f"{raw:.0f}", ""))
  _report(results, rows, hidden, batch_size, OUT)


def _report(results, rows, hidden, batch_size, out):
  print(f"device: {results['device']}, hidden {hidden}, batch {batch_size}")
  print("| measure | SAC | SAC-D | SAC-D cost / SAC |\n|---|---|---|---|")
  for r in rows:
    print("| " + " | ".join(r) + " |")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=2))
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
