"""A resumable, device-parallel training loop around a user's jittable chunk of steps.

The experiment supplies `init_fn` (builds the whole training state: parameters, optimiser state,
random key, counters) and `chunk_fn(state[, data]) -> (state, metrics)`, which runs many steps with
`lax.scan`. This module compiles the chunk once (ahead of time, so compile time is reported apart),
places the state replicated and the data sharded over a data-parallel mesh, and after every chunk
writes an orbax checkpoint, the chunk's per-step metrics and one JSON line of chunk means.
Restarted in the same workdir, it resumes from the last checkpoint; since each chunk is a
deterministic function of the checkpointed state, the result equals an uninterrupted run's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from absl import logging
from jax.sharding import Mesh

from launch import parallel
from launch.workdir import Workdir


@dataclasses.dataclass
class LoopStats:
  """Timings of one training loop; `run_s` excludes compilation."""
  compile_s: float = 0.0
  run_s: float = 0.0
  chunks_run: int = 0
  resumed_from_chunk: int = 0


def _is_key(x) -> bool:
  return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_savable(state):
  """The state as orbax saves it: typed PRNG keys become their raw uint32 data."""
  return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def from_savable(saved, like):
  """Inverse of `to_savable`: raw key data back to typed keys where `like` holds keys."""
  return jax.tree.map(
      lambda s, l: jax.random.wrap_key_data(s, impl=jax.random.key_impl(l)) if _is_key(l) else s,
      saved, like)


@contextlib.contextmanager
def quiet_absl():
  """orbax logs every save at INFO through absl; keep the run's own log readable."""
  level = logging.get_verbosity()
  logging.set_verbosity(min(level, logging.WARNING))  # absl: larger verbosity = more output.
  try:
    yield
  finally:
    logging.set_verbosity(level)


def restore_checkpoint(manager: ocp.CheckpointManager, step: int, like: Any) -> Any:
  """The state saved at `step`, with the shapes, dtypes, shardings and key types of `like`."""
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                        to_savable(like))
  with quiet_absl():
    restored = manager.restore(step, args=ocp.args.StandardRestore(target))
  return from_savable(restored, like)


def format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def _chunk_means(metrics: dict[str, np.ndarray], seeds: bool) -> dict[str, Any]:
  means = {}
  for name, values in metrics.items():
    values = np.asarray(values, dtype=np.float64)
    means[name] = float(np.mean(values))
    if seeds and values.ndim >= 1:
      means[f"{name}/per_seed"] = np.mean(values.reshape(values.shape[0], -1), axis=1).tolist()
  return means


def history_dir(workdir: Workdir, name: str):
  return workdir.checkpoint_dir(name) / "history"


def load_history(workdir: Workdir, name: str = "train") -> dict[str, np.ndarray]:
  """Per-step metrics of every completed chunk, concatenated along the steps axis.

  The steps axis is 0, or 1 when the loop ran several seeds (axis 0 is then the seed).
  """
  files = sorted(history_dir(workdir, name).glob("chunk_*.npz"))
  if not files:
    return {}
  chunks = [dict(np.load(f)) for f in files]
  seeds = bool(chunks[0].pop("__seeds__", np.array(False)))
  for c in chunks[1:]:
    c.pop("__seeds__", None)
  axis = 1 if seeds else 0
  out = {}
  for key in chunks[0]:
    parts = [np.asarray(c[key]) for c in chunks]
    if parts[0].ndim <= axis:  # Scalars per chunk: stack them.
      out[key] = np.stack(parts, axis=axis if parts[0].ndim == axis else 0)
    else:
      out[key] = np.concatenate(parts, axis=axis)
  return out


def train_loop(workdir: Workdir, mesh: Mesh, init_fn: Callable[..., Any],
               chunk_fn: Callable[..., tuple[Any, Any]], num_chunks: int, *,
               name: str = "train", data: Any = None, seed_keys: jax.Array | None = None,
               progress: bool = True, max_to_keep: int = 2,
               jit_chunk: bool = True) -> tuple[Any, LoopStats]:
  """Runs `num_chunks` chunks of training with checkpoints, resumption and progress.

  Args:
    workdir: where checkpoints (checkpoints/NAME), metrics and history go.
    mesh: the data-parallel mesh (`launch.parallel.data_mesh()`).
    init_fn: `init_fn() -> state`, or `init_fn(key) -> state` when `seed_keys` is given.
    chunk_fn: `chunk_fn(state) -> (state, metrics)`, or `chunk_fn(state, data)` when `data` is
      given. `metrics` is a dict of arrays whose leading axis indexes the steps of the chunk.
    num_chunks: chunks in the whole run (the run ends after chunk `num_chunks`).
    name: the loop's name, which keys its checkpoints, history and metrics stream.
    data: optional pytree of arrays, sharded over the mesh along its leading axis, passed to every
      chunk unchanged (a data set, or a batch whose slices the chunk draws).
    seed_keys: optional `[num_seeds]` keys. The loop then runs `vmap(init_fn)(seed_keys)` and a
      vmapped chunk: several independent seeds at once, sharded over devices when no data is given.
    progress: show a progress bar (rate and ETA) on stderr.
    max_to_keep: checkpoints kept on disk.
    jit_chunk: compile the whole chunk as one program (default). False for a chunk that is
      itself a host loop of jitted steps (`latent_dynamics.supervised`'s `loop="host"`):
      tracing it under `jit` would inline every step into one program (a 200-step SSM chunk
      took 24 GB before the OOM killer stopped it). It is then called as it is; its
      compilation happens inside the first chunk and `LoopStats.compile_s` stays 0.

  Returns:
    The final state (on the mesh) and the loop's timings.
  """
  if not isinstance(num_chunks, (int, np.integer)) or num_chunks < 1:
    raise ValueError(f"num_chunks must be a positive integer; got {num_chunks!r}.")
  if seed_keys is not None:
    state = jax.vmap(init_fn)(seed_keys)
    body = jax.vmap(chunk_fn, in_axes=(0, None)) if data is not None else jax.vmap(chunk_fn)
  else:
    state = init_fn()
    body = chunk_fn
  if seed_keys is not None and data is None:
    state = parallel.shard_leading_axis(state, mesh)
  else:
    state = parallel.replicate(state, mesh)
  if data is not None:
    data = parallel.shard_leading_axis(data, mesh)
  state_shardings = jax.tree.map(lambda x: x.sharding, state)
  call = (lambda s, d: body(s, d)) if data is not None else (lambda s, d: body(s))
  compiled = call   # replaced by the compiled program when jit_chunk
  step = jax.jit(call, donate_argnums=0,
                 out_shardings=(state_shardings, parallel.replicated(mesh)))

  stats = LoopStats()
  with quiet_absl():
    manager = ocp.CheckpointManager(
        workdir.checkpoint_dir(name),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             enable_async_checkpointing=False, create=True))
    start = manager.latest_step() or 0
  if start:
    state = restore_checkpoint(manager, start, like=state)
    workdir.drop_metrics_after_chunk(name, start)
    stats.resumed_from_chunk = int(start)
    logging.info("%s: resumed from checkpoint after chunk %d of %d", name, start, num_chunks)
  if start >= num_chunks:
    with quiet_absl():
      manager.close()
    return state, stats

  if jit_chunk:
    t0 = time.perf_counter()
    compiled = step.lower(state, data).compile()
    stats.compile_s = time.perf_counter() - t0
    logging.info("%s: compiled one chunk in %.2f s", name, stats.compile_s)
  else:
    logging.info("%s: the chunk is a host loop of jitted steps (compiled in its first chunk)",
                 name)

  hist = history_dir(workdir, name)
  if workdir.is_writer:
    hist.mkdir(parents=True, exist_ok=True)
  bar = tqdm.tqdm(total=num_chunks, initial=start, desc=name, unit="chunk", dynamic_ncols=True,
                  disable=not (progress and workdir.is_writer), mininterval=1.0)
  t_start = time.perf_counter()
  for chunk in range(start, num_chunks):
    state, metrics = compiled(state, data)
    metrics = parallel.fetch(metrics)
    metrics = metrics if isinstance(metrics, dict) else {"metric": metrics}
    steps_axis = 1 if seed_keys is not None else 0
    leaves = [np.asarray(v) for v in metrics.values()]
    per_chunk = leaves[0].shape[steps_axis] if leaves and leaves[0].ndim > steps_axis else 1
    step_count = (chunk + 1) * per_chunk
    if workdir.is_writer:
      np.savez(hist / f"chunk_{chunk + 1:06d}.npz", __seeds__=np.array(seed_keys is not None),
               **metrics)
    means = _chunk_means(metrics, seeds=seed_keys is not None)
    workdir.log_metrics(step_count, {"chunk": chunk + 1, **means}, stream=name)
    with quiet_absl():
      manager.save(chunk + 1, args=ocp.args.StandardSave(to_savable(state)))
    stats.chunks_run += 1
    elapsed = time.perf_counter() - t_start
    rate = stats.chunks_run / elapsed
    eta = (num_chunks - chunk - 1) / rate
    shown = ", ".join(f"{k}={v:.4g}" for k, v in means.items() if isinstance(v, float))
    logging.info("%s: chunk %d/%d (step %d), %.2f s/chunk, ETA %s: %s", name, chunk + 1,
                 num_chunks, step_count, 1 / rate, format_seconds(eta), shown)
    bar.set_postfix_str(shown[:80], refresh=False)
    bar.update(1)
  bar.close()
  with quiet_absl():
    manager.wait_until_finished()
    manager.close()
  stats.run_s = time.perf_counter() - t_start
  return state, stats
