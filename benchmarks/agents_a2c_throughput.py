"""Training frames per second of our A2C beside jumanji's A2C, and the share spent in the env.

    python -m benchmarks.agents_a2c_throughput [--quick] [--repeats=R]

* Ours: `agents.a2c.make_trainer(config, env, env_params)` on MiniPacman ("regular") and Sokoban
  (10x10 with 4 boxes, 7x7 with 2), `num_envs` environments under `vmap`, one jitted `chunk` =
  `U` updates of `T`-step rollouts.
* Anchor: jumanji's own A2C (`jumanji.training.agents.a2c.A2CAgent`, dm-haiku networks from
  `make_actor_critic_networks_sokoban`, Adam, its Sokoban config's loss weights) on jumanji's
  Sokoban (10x10, 4 boxes) with `ToyGenerator` (two fixed levels shipped in the package: the
  default generator downloads the Boxoban set, which benchmarks may not do) under its
  `VmapAutoResetWrapper`. jumanji's `train.py` (hydra) maps `lax.scan(agent.run_epoch)` over
  devices with `pmap`; here the same function runs under `jit(vmap(..., axis_name="devices"))`
  over a one-device axis, which is what `pmap` computes on one CPU device (measured at the same
  speed; `pmap` also recompiles on its second call in jax 0.10.2).
* Matched: batch (environments), rollout length `T` and updates per timed chunk `U`; the
  networks have the same layers: two 3x3 convolutions of 16 channels, the first with stride 2,
  and one hidden layer of 256 units. jumanji's policy and value are separate networks (two
  torsos), ours share one torso, so at the same layers ours has about half the parameters; a
  second row of ours on Sokoban 10x10/4 doubles the hidden layer (512), which matches jumanji's
  parameter count. Both parameter counts are printed.

Frames = environments x T x U per chunk (each frame is an environment step plus its share of the
update). Compile time is the ahead-of-time compilation of one chunk, reported apart; the
steady-state time is the median over `--repeats` rounds in which every trainer of a batch size
runs one chunk in turn (interleaved, so load from other processes on a shared machine falls on
all alike). Environment share: the time of a pure environment scan (uniform random actions,
automatic resets, `benchmarks.envs_throughput.jax_rollout`) of the same environments x T x U
steps, divided by the training chunk's time. Environment-only steps/s at batch 1,024 are
measured too (the issue's "about 560k steps/s"). Writes results/bench/agents_a2c_throughput.json.
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
from benchmarks import envs_throughput  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parent.parent / "results" / "bench"
       / "agents_a2c_throughput.json")

# The network both agents use (jumanji: per network; ours: the shared torso).
CONV_FEATURES = (16, 16)
CONV_STRIDES = (2, 1)
HIDDEN = 256


def num_params(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))




def jumanji_a2c(num_envs: int, rollout: int, updates: int, hidden: int = HIDDEN,
                conv_features=CONV_FEATURES):
  """`(compile seconds, Runner, parameter count)` of jumanji's A2C on its Sokoban."""
  import optax  # noqa: PLC0415
  from jumanji.environments.routing.sokoban import Sokoban  # noqa: PLC0415
  from jumanji.environments.routing.sokoban.generator import ToyGenerator  # noqa: PLC0415
  from jumanji.training import networks as jumanji_networks  # noqa: PLC0415
  from jumanji.training.agents.a2c import A2CAgent  # noqa: PLC0415
  from jumanji.training.types import ActingState, TrainingState  # noqa: PLC0415
  from jumanji.wrappers import VmapAutoResetWrapper  # noqa: PLC0415

  env = VmapAutoResetWrapper(Sokoban(generator=ToyGenerator()))
  networks = jumanji_networks.make_actor_critic_networks_sokoban(
      env.unwrapped, channels=tuple(conv_features), policy_layers=(hidden,),
      value_layers=(hidden,))
  # Loss weights, discount, lambda and learning rate of jumanji's configs/env/sokoban.yaml.
  agent = A2CAgent(env=env, n_steps=rollout, total_batch_size=num_envs,
                   actor_critic_networks=networks, optimizer=optax.adam(3e-4),
                   normalize_advantage=True, discount_factor=0.97, bootstrapping_factor=0.95,
                   l_pg=1.0, l_td=1.0, l_en=0.01)
  k_params, k_reset, k_act = jax.random.split(jax.random.PRNGKey(0), 3)
  params_state = agent.init_params(k_params)
  env_state, timestep = env.reset(jax.random.split(k_reset, num_envs))
  acting = ActingState(state=env_state, timestep=timestep, key=k_act,
                       episode_count=jnp.float32(0), env_step_count=jnp.float32(0))
  # A leading device axis of size one, as jumanji's setup_training_state builds for one device.
  state = jax.tree.map(lambda x: jnp.asarray(x)[None],
                       TrainingState(params_state=params_state, acting_state=acting))

  def epoch(training_state):
    training_state, metrics = jax.lax.scan(lambda s, _: agent.run_epoch(s), training_state,
                                           None, updates)
    return training_state, jax.tree.map(jnp.mean, metrics)

  chunk = jax.vmap(epoch, axis_name="devices")
  compile_s, compiled = timing.compile_timed(chunk, state)
  runner = timing.Runner("jumanji Sokoban 10x10/4", compiled, state, num_envs * rollout * updates)
  return compile_s, runner, num_params(params_state.params)


def jumanji_env_rollout(num_envs: int, steps: int):
  return envs_throughput.jumanji_rollout(num_envs, steps)


def time_env_only(fn, repeats: int) -> float:
  """Median seconds of `fn(key)` after one warm-up call (compiles)."""
  jax.block_until_ready(fn(jax.random.PRNGKey(0)))
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.PRNGKey(i + 1)))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


# A hand-made 10x10 room with 4 boxes: quick mode's one-level bank (the default bank of generated
# levels takes about 25 s to compile and generate).
QUICK_LEVEL = """
##########
#   #    #
# $   .  #
#  ## $  #
# .   #  #
#  $  .  #
## #  $  #
#  .   @ #
#        #
##########
"""

SOKOBAN_10 = "ours Sokoban 10x10/4"


def our_envs(quick: bool):
  """`[(name, env, env_params)]`: MiniPacman "regular", Sokoban 10x10/4 and 7x7/2 (defaults).

  Quick mode: Sokoban 10x10/4 only, on the one-level bank `QUICK_LEVEL`.
  """
  import envs  # noqa: PLC0415
  if quick:
    env = envs.Sokoban(10, 10, 4)
    return [(SOKOBAN_10, env, env.make_params(envs.parse_levels(QUICK_LEVEL, "QUICK_LEVEL")))]
  pacman = envs.MiniPacman("regular")
  out = [("ours MiniPacman regular", pacman, pacman.default_params)]
  for height, boxes in ((10, 4), (7, 2)):
    env = envs.Sokoban(height, height, boxes)
    out.append((f"ours Sokoban {height}x{height}/{boxes}", env, env.default_params))
  return out


def our_a2c(name, env, env_params, num_envs: int, rollout: int, updates: int,
            hidden: int = HIDDEN, conv_features=CONV_FEATURES):
  """`(compile seconds, Runner, parameter count)` of our A2C, configured like the anchor."""
  from agents import a2c  # noqa: PLC0415
  # Adam at jumanji's rate without clipping, jumanji's discount and lambda: the anchor's update.
  config = a2c.default_config(
      num_envs=num_envs, rollout_length=rollout, updates_per_chunk=updates, num_minibatches=1,
      conv_features=tuple(conv_features), kernel_sizes=(3,) * len(conv_features),
      strides=CONV_STRIDES[:len(conv_features)], hidden_size=hidden, optimizer="adam",
      learning_rate=3e-4, max_grad_norm=0.0, discount=0.97, advantage="gae", gae_lambda=0.95,
      entropy_coef=0.01)
  trainer = a2c.make_trainer(config, env, env_params, env_name=name)
  state = trainer.init(jax.random.key(0))
  compile_s, compiled = timing.compile_timed(trainer.chunk, state)
  return compile_s, timing.Runner(name, compiled, state, config.frames_per_chunk), num_params(
      state.params)



def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="batch 16, Sokoban 10x10 and the anchor, a small network (smoke test)")
  parser.add_argument("--repeats", type=int, default=5, help="timed rounds per batch size")
  parser.add_argument("--rollout", type=int, default=20,
                      help="T (default: jumanji's Sokoban config, n_steps = 20)")
  parser.add_argument("--frames", type=int, default=5120,
                      help="frames per timed chunk: U = max(1, frames // (batch * T))")
  args = parser.parse_args(argv)
  quick = args.quick
  batches = [16] if quick else [16, 64, 256]
  rollout = 5 if quick else args.rollout
  repeats = 2 if quick else args.repeats
  frames = 160 if quick else args.frames
  hidden, conv = (32, (8,)) if quick else (HIDDEN, CONV_FEATURES)
  try:
    import haiku  # noqa: F401, PLC0415
    import jumanji.training.agents.a2c  # noqa: F401, PLC0415
    have_anchor = True
  except ImportError as e:
    have_anchor = False
    print(f"jumanji's A2C not importable ({e}): its column is skipped "
          "(pip install -e '.[bench]' installs jumanji and dm-haiku)")
  load_start = timing.machine_load()
  t_start = time.perf_counter()
  ours = our_envs(quick)
  env_only_steps = 100
  env_rows = []  # Environment-only steps/s at batch 1024 (full mode; quick mode: rows only).
  for name, env, params in ([] if quick else ours):
    fn = envs_throughput.jax_rollout(env, params, 1024, env_only_steps)
    env_rows.append({"env": name, "batch": 1024,
                     "steps_per_s": 1024 * env_only_steps / time_env_only(fn, repeats)})
  if have_anchor and not quick:
    fn = jumanji_env_rollout(1024, env_only_steps)
    env_rows.append({"env": "jumanji Sokoban 10x10/4", "batch": 1024,
                     "steps_per_s": 1024 * env_only_steps / time_env_only(fn, repeats)})

  rows = []
  for batch in batches:
    updates = max(1, frames // (batch * rollout))
    runners, meta = [], {}
    for name, env, params in ours:
      compile_s, runner, n = our_a2c(name, env, params, batch, rollout, updates, hidden, conv)
      env_s = time_env_only(envs_throughput.jax_rollout(env, params, batch, rollout * updates),
                            repeats)
      runners.append(runner)
      meta[name] = {"compile_s": compile_s, "params": n, "env_s": env_s}
      if name == SOKOBAN_10 and not quick:
        # jumanji's policy and value nets have a torso each: twice our parameters at the same
        # layers. This row doubles our hidden layer, which matches its parameter count.
        wide = f"{SOKOBAN_10}, hidden {2 * hidden}"
        compile_s, runner, n = our_a2c(name, env, params, batch, rollout, updates, 2 * hidden,
                                       conv)
        runner.name = wide
        runners.append(runner)
        meta[wide] = {"compile_s": compile_s, "params": n, "env_s": env_s}
    if have_anchor:
      compile_s, runner, n = jumanji_a2c(batch, rollout, updates, hidden, conv)
      env_s = time_env_only(jumanji_env_rollout(batch, rollout * updates), repeats)
      runners.append(runner)
      meta[runner.name] = {"compile_s": compile_s, "params": n, "env_s": env_s}
    for r in runners:  # Warm-up: the first call of a compiled chunk.
      r.step()
      r.times.clear()
    for _ in range(repeats):
      for r in runners:
        r.step()
    anchor = runners[-1] if have_anchor else None
    for r in runners:
      m = meta[r.name]
      row = {"agent": r.name, "batch": batch, "rollout": rollout, "updates_per_chunk": updates,
             "frames_per_chunk": r.frames, "chunk_s": r.seconds(),
             "frames_per_s": r.frames / r.seconds(), "compile_s": m["compile_s"],
             "params": m["params"], "env_fraction": m["env_s"] / r.seconds(),
             "env_only_steps_per_s": r.frames / m["env_s"], "chunk_times_s": r.times}
      if anchor is not None:
        row["vs_jumanji"] = row["frames_per_s"] / (anchor.frames / anchor.seconds())
      rows.append(row)

  load_end = timing.machine_load()
  print(f"\nA2C training frames/s on {jax.devices()[0].platform} ({os.cpu_count()} cores), "
        f"T = {rollout}, median of {repeats} interleaved chunks; load average (1, 5, 15 min) "
        f"{load_start} at start, {load_end} at end")
  print("| agent | envs | frames/s | / jumanji | env share | compile s | params |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['agent']} | {r['batch']} | {r['frames_per_s']:,.0f} | "
          f"{r.get('vs_jumanji', float('nan')):.2f}x | {100 * r['env_fraction']:.1f}% | "
          f"{r['compile_s']:.1f} | {r['params']:,} |")
  print("\nenvironments alone, uniform random actions, batch 1024:")
  for r in env_rows:
    print(f"  {r['env']}: {r['steps_per_s']:,.0f} steps/s")
  target = target_all = None
  if have_anchor:
    # The matched pair is the same game at the same size (same layers, and in full mode also
    # the same parameter count); the other rows are other games.
    matched = [r for r in rows if r["agent"].startswith(SOKOBAN_10)]
    ours_rows = [r for r in rows if r["agent"].startswith("ours")]
    target = all(r["vs_jumanji"] >= 1.0 for r in matched)
    target_all = all(r["vs_jumanji"] >= 1.0 for r in ours_rows)
    label = lambda r: r["agent"][len(SOKOBAN_10) + 2:] or "same layers"  # noqa: E731
    ratios = ", ".join(f"{r['vs_jumanji']:.2f}x ({label(r)}, {r['batch']} envs)" for r in matched)
    print(f"target (ours >= jumanji's A2C on Sokoban 10x10/4 at every batch size): "
          f"{'met' if target else 'NOT met'} ({ratios}); on every game: "
          f"{'met' if target_all else 'not met'}")
  summary = {"quick": quick, "cpu_count": os.cpu_count(), "machine": platform.machine(),
             "platform": jax.devices()[0].platform, "jax": jax.__version__,
             "load_average_start": load_start, "load_average_end": load_end,
             "wall_s": time.perf_counter() - t_start, "rollout": rollout, "repeats": repeats,
             "network": {"conv_features": list(conv), "kernel": 3, "hidden": hidden,
                         "conv_strides": list(CONV_STRIDES[:len(conv)])},
             "jumanji_generator": "ToyGenerator" if have_anchor else None,
             "rows": rows, "env_only_batch_1024": env_rows,
             "target_met_sokoban_10x10": target, "target_met_every_game": target_all}
  OUT.parent.mkdir(parents=True, exist_ok=True)
  OUT.write_text(json.dumps(summary, indent=2))
  print(f"wrote {OUT}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
