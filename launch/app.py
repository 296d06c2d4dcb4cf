"""Runs one experiment: `python -m launch.<package>.<experiment> --config=... --workdir=...`.

An experiment is a function `experiment(config, run) -> summary` in
`launch/<package>/<experiment>.py`, with its config in `launch/<package>/configs/<experiment>.py`
(`get_config(preset)`), and a one-line main:

    if __name__ == "__main__":
      app.run(experiment)

`execute` is the same thing without absl flags, for tests, notebooks and `launch.reproduce`.

Flags:
  --config         launch/<package>/configs/<experiment>.py[:preset]; presets are smoke,
                   default, full (default: the launcher's own config module).
  --config.F=V     override field F (unknown fields and wrong types are refused by name).
  --workdir        output directory; an existing one with the same config is resumed.
  --distributed    join a multi-host job (jax.distributed); --coordinator_address,
                   --num_processes and --process_id, or the cluster's environment.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
from absl import app as absl_app
from absl import flags, logging
from jax.sharding import Mesh

from launch import parallel
from launch import train_loop as train_loop_lib
from launch.workdir import Workdir, WorkdirError, to_jsonable

Experiment = Callable[[ml_collections.ConfigDict, "Run"], Mapping[str, Any]]


@dataclasses.dataclass
class Run:
  """What an experiment gets besides its config: the workdir, the mesh and the training loop."""
  workdir_obj: Workdir
  mesh: Mesh
  loops: dict[str, train_loop_lib.LoopStats] = dataclasses.field(default_factory=dict)
  progress: bool = True

  @property
  def workdir(self) -> pathlib.Path:
    return self.workdir_obj.path

  @property
  def is_writer(self) -> bool:
    """True on the one process (index 0) that writes metrics, figures and the summary."""
    return self.workdir_obj.is_writer

  def log_metrics(self, step: int, metrics: Mapping[str, Any], *, stream: str = "eval") -> None:
    self.workdir_obj.log_metrics(step, metrics, stream=stream)

  def save_figure(self, name: str, fig) -> pathlib.Path:
    return self.workdir_obj.save_figure(name, fig)

  def shard_batch(self, batch: Any) -> Any:
    """Places a batch pytree on the mesh, split along its leading axis."""
    return parallel.shard_leading_axis(batch, self.mesh)

  def train_loop(self, init_fn, chunk_fn, num_chunks: int, *, name: str = "train",
                 data: Any = None, seed_keys: jax.Array | None = None,
                 jit_chunk: bool = True) -> Any:
    """Resumable, data-parallel training; see `launch.train_loop.train_loop`. Returns the state."""
    if name in self.loops:
      raise ValueError(f"a training loop named {name!r} already ran in this experiment; "
                       "give each loop its own name (it keys the checkpoints).")
    state, stats = train_loop_lib.train_loop(
        self.workdir_obj, self.mesh, init_fn, chunk_fn, num_chunks, name=name, data=data,
        seed_keys=seed_keys, progress=self.progress, jit_chunk=jit_chunk)
    self.loops[name] = stats
    return state

  def history(self, name: str = "train") -> dict[str, Any]:
    """Per-step metrics of loop `name` over the whole run (including chunks before a resume)."""
    return train_loop_lib.load_history(self.workdir_obj, name)


def execute(experiment: Experiment, config: ml_collections.ConfigDict,
            workdir: str | pathlib.Path, *, mesh: Mesh | None = None,
            progress: bool = True) -> dict[str, Any]:
  """Runs `experiment` with `config` in `workdir`; writes and returns summary.json's content."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise TypeError(f"config must be an ml_collections.ConfigDict; got {type(config).__name__}.")
  if "seed" not in config:
    raise ValueError("config has no field 'seed'; every experiment config must define one.")
  config = ml_collections.ConfigDict(config)  # A private copy; lock it so typos fail loudly.
  config.lock()
  wd = Workdir(workdir, config, is_writer=jax.process_index() == 0)
  run = Run(wd, mesh if mesh is not None else parallel.data_mesh(), progress=progress)
  logging.info("experiment %s in %s (%s)", getattr(experiment, "__module__", experiment),
               wd.path, "resuming" if wd.resumed else "new")
  t0 = time.perf_counter()
  summary = dict(experiment(config, run) or {})
  wall = time.perf_counter() - t0
  summary.setdefault("wall_s", wall)
  summary.setdefault("compile_s", sum(s.compile_s for s in run.loops.values()))
  summary.setdefault("devices", f"{jax.device_count()}x {jax.devices()[0].platform}")
  summary = to_jsonable(summary)
  wd.write_summary(summary)
  logging.info("summary: %s", json.dumps(summary))
  return summary


def _default_config_path() -> str | None:
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  if spec is None or not spec.name.startswith("launch."):
    return None
  # launch.<package>.<experiment> -> launch/<package>/configs/<experiment>.py.
  *package, experiment = spec.name.split(".")[1:]
  candidate = pathlib.Path(__file__).parent.joinpath(*package, "configs", experiment + ".py")
  return str(candidate) if candidate.exists() else None


def run(experiment: Experiment, *, default_config: str | None = None) -> None:
  """absl main for one experiment (see the module docstring for the flags)."""
  from ml_collections import config_flags

  default_config = default_config or _default_config_path()
  config_flags.DEFINE_config_file(
      "config", default_config, "Experiment config file, optionally with ':preset'.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Output directory (created; resumed if it holds a run).",
                      required=True)
  flags.DEFINE_bool("distributed", False, "Join a multi-host job via jax.distributed.")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).")
  flags.DEFINE_integer("num_processes", None, "Processes in the multi-host job.")
  flags.DEFINE_integer("process_id", None, "This process's index in the multi-host job.")
  flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")

  def main(argv):
    if len(argv) > 1:
      raise absl_app.UsageError(f"unexpected arguments: {argv[1:]}")
    FLAGS = flags.FLAGS
    if FLAGS.distributed:
      parallel.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                      FLAGS.process_id)
    if FLAGS.config is None:
      raise absl_app.UsageError(
          "--config is required: launch/<package>/configs/<experiment>.py[:preset].")
    logging.set_verbosity(logging.INFO)
    try:
      execute(experiment, FLAGS.config, FLAGS.workdir, progress=FLAGS.progress)
    except WorkdirError as e:
      sys.exit(f"error: {e}")

  absl_app.run(main, flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a readable error for an override of a field the config lacks."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:
    overrides = [a.split("=", 1)[0][len("--config."):] for a in argv if a.startswith("--config.")]
    known = set(_field_names(_load_config_from_argv(argv)))
    unknown = [o for o in overrides if known and o not in known]
    if unknown:
      sys.exit(f"error: --config.{unknown[0]}: the config has no field {unknown[0]!r}. "
               f"Fields: {', '.join(sorted(known))}.")
    sys.exit(f"error: could not apply the --config overrides {overrides}: {e!r}")
  except flags.Error as e:
    sys.exit(f"error: {e}")


def _load_config_from_argv(argv: list[str]) -> ml_collections.ConfigDict | None:
  """Loads the --config file (with its preset) without overrides, to list its fields."""
  import importlib.util

  spec_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")),
                  _default_config_path())
  if not spec_arg:
    return None
  path, _, preset = spec_arg.partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_config_for_error", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(preset) if preset else module.get_config()
  except Exception:  # Only used to improve an error message.
    return None


def _field_names(config: ml_collections.ConfigDict | None, prefix: str = "") -> list[str]:
  if config is None:
    return []
  names = []
  for key, value in config.items():
    names.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      names += _field_names(value, prefix + key + ".")
  return names
