"""Timing pieces the training-throughput benchmarks share: the machine's load, ahead-of-time
compilation timed apart from running, the compiled program's scratch memory, and a runner that
times one compiled training chunk at a time (median over repeats). Not a benchmark itself:
`benchmarks.run_all` skips modules named `_*`."""
from __future__ import annotations

import os
import statistics
import time

import jax


def machine_load() -> list[float]:
  """The 1, 5 and 15 minute load averages (timings on a shared machine say their load)."""
  return [round(x, 2) for x in os.getloadavg()]


def compile_timed(fn, *args):
  """`(seconds, compiled)` of the ahead-of-time compilation of `jit(fn)` for `args`."""
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return time.perf_counter() - t0, compiled


def temp_bytes(compiled) -> int | None:
  """The compiled program's temporary buffer size in bytes (None where not reported)."""
  try:
    stats = compiled.memory_analysis()
    return int(stats.temp_size_in_bytes) if stats is not None else None
  except Exception:  # noqa: BLE001  (not every backend reports it)
    return None


class Runner:
  """One trainer whose `step()` runs one timed chunk and keeps its state.

  `compiled(state) -> (state, metrics)`: the metrics are computed and waited for too, as a
  training loop that logs them would.
  """

  def __init__(self, name, compiled, state, frames):
    self.name, self._compiled, self.state, self.frames = name, compiled, state, frames
    self.times: list[float] = []

  def step(self):
    t0 = time.perf_counter()
    self.state, _ = jax.block_until_ready(self._compiled(self.state))
    self.times.append(time.perf_counter() - t0)

  def seconds(self):
    """Median seconds of one chunk."""
    return statistics.median(self.times)
