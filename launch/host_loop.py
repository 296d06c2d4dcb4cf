"""The resumable training loop for host-stepped environments (envpool), beside `train_loop`.

`launch.train_loop` jits a whole chunk, which a simulator stepping in Python on the host cannot
be part of. This loop runs a user's host-side `chunk_fn(state, chunk) -> (state, history,
summary)` instead (for SAC / SAC-D: `agents.sac.host_train.run_host_training` on a fresh envpool
environment) and keeps everything else of `train_loop`: after every chunk an orbax checkpoint of
the device state, the chunk's history (`history/chunk_NNNNNN.npz`, read back by
`train_loop.load_history`), one JSON line of the chunk's summary, and progress with an ETA. A
restarted launcher restores the last checkpoint and runs only the chunks after it; a finished run
is only restored. Resumption is exact when `chunk_fn` depends on nothing but the state and the
chunk index (seed the chunk's environment by the chunk, as `launch/agents/sacd_runs.py` does).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from launch import train_loop as train_loop_lib
from launch.workdir import Workdir


def host_loop(workdir: Workdir, init_fn: Callable[[], Any],
              chunk_fn: Callable[[Any, int], tuple[Any, dict[str, np.ndarray], dict[str, float]]],
              num_chunks: int, *, name: str = "train",
              step_of: Callable[[Any], int] | None = None,
              max_to_keep: int = 2) -> tuple[Any, dict[str, np.ndarray]]:
  """Runs `num_chunks` host-side chunks with checkpoints and resumption.

  Args:
    workdir: where checkpoints (checkpoints/NAME), history and metrics go.
    init_fn: `init_fn() -> state`, the device state (a pytree of arrays; typed keys allowed).
    chunk_fn: `chunk_fn(state, chunk) -> (state, history, summary)`, chunk 0-based; `history`
      is a dict of arrays saved for the chunk, `summary` a dict of scalars logged for it.
    num_chunks: chunks in the whole run.
    name: the loop's name: checkpoints/NAME, its history and its metrics stream.
    step_of: `step_of(state) -> int`, the step at which a chunk's summary is logged (default:
      the chunk number).
    max_to_keep: checkpoints kept on disk.

  Returns:
    The final state and the history of every chunk of the run (including those run before a
    restart), concatenated (`train_loop.load_history`).
  """
  if not isinstance(num_chunks, (int, np.integer)) or num_chunks < 1:
    raise ValueError(f"num_chunks must be a positive integer; got {num_chunks!r}.")
  hist = train_loop_lib.history_dir(workdir, name)
  state = init_fn()
  with train_loop_lib.quiet_absl():
    manager = ocp.CheckpointManager(
        workdir.checkpoint_dir(name),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             enable_async_checkpointing=False, create=True))
    start = manager.latest_step() or 0
  if start:
    state = train_loop_lib.restore_checkpoint(manager, start, state)
    workdir.drop_metrics_after_chunk(name, start)
    logging.info("%s: resumed after chunk %d of %d", name, start, num_chunks)
  if workdir.is_writer:
    hist.mkdir(parents=True, exist_ok=True)
    for f in hist.glob("chunk_*.npz"):  # Written by a killed run after its last checkpoint.
      if int(f.stem.split("_")[1]) > start:
        f.unlink()
  t_start = time.perf_counter()
  for chunk in range(start, num_chunks):
    state, history, summary = chunk_fn(state, chunk)
    jax.block_until_ready(state)
    if workdir.is_writer:
      np.savez(hist / f"chunk_{chunk + 1:06d}.npz", **history)
    step = chunk + 1 if step_of is None else int(step_of(state))
    workdir.log_metrics(step, {"chunk": chunk + 1, **summary}, stream=name)
    with train_loop_lib.quiet_absl():
      manager.save(chunk + 1, args=ocp.args.StandardSave(train_loop_lib.to_savable(state)))
    done = chunk + 1 - start
    eta = (time.perf_counter() - t_start) / done * (num_chunks - chunk - 1)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in summary.items()
                      if isinstance(v, (float, int, np.floating, np.integer)))
    logging.info("%s: chunk %d/%d, ETA %s: %s", name, chunk + 1, num_chunks,
                 train_loop_lib.format_seconds(eta), shown)
  with train_loop_lib.quiet_absl():
    manager.wait_until_finished()
    manager.close()
  return state, train_loop_lib.load_history(workdir, name)
