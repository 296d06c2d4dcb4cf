"""The experiment workdir: resolved config, metrics as JSON lines, figures and summary.

Layout of a workdir:
  config.json        the resolved config; a later run in the same workdir must match it
  metrics.jsonl      one JSON object per logged step: {"stream", "step", <metric>: value, ...}
  checkpoints/NAME/  orbax checkpoints of each training loop (see `launch.train_loop`)
  figures/*.png      figures
  tensorboard/       TensorBoard event files: every scalar metric as `<stream>/<name>` at its
                     step, every figure as an image (`tensorboard --logdir` on a workdir or on a
                     sweep's parent folder); vector metrics stay in metrics.jsonl only
  summary.json       the experiment's headline numbers, wall and compile time
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections
import numpy as np

# Fields that steer how a run is executed or shown, never what it computes: a resumed run may
# change them freely. A config can add its own through `run_control_fields`.
RUN_CONTROL_FIELDS = frozenset({"run_control_fields", "progress", "log_every"})


class WorkdirError(ValueError):
  """The workdir cannot be used: not writable, or holds a run with a different config."""


def to_jsonable(value: Any) -> Any:
  """Converts numpy/JAX scalars and arrays and ConfigDicts to plain JSON types."""
  if isinstance(value, ml_collections.ConfigDict):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
    return to_jsonable(np.asarray(value).tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep them visible rather than invalid.
  return value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any],
                       ignore: Iterable[str] = ()) -> list[str]:
  """Human-readable list of the fields whose values differ between two (JSON) configs."""
  ignore = set(RUN_CONTROL_FIELDS) | set(ignore)
  old_flat, new_flat = flatten(old), flatten(new)
  lines = []
  for name in sorted(set(old_flat) | set(new_flat)):
    if name in ignore or name.split(".")[-1] in ignore:
      continue
    a = old_flat.get(name, "<absent>")
    b = new_flat.get(name, "<absent>")
    if a != b:
      lines.append(f"config.{name}: workdir has {a!r}, this run has {b!r}")
  return lines


class Workdir:
  """A checked, writable experiment directory.

  Construction fails, before anything is written, when the directory cannot be created or written,
  or when it already holds a run whose config differs in a field that changes results.
  """

  def __init__(self, path: str | os.PathLike, config: ml_collections.ConfigDict,
               *, is_writer: bool = True):
    self.path = pathlib.Path(path).expanduser().resolve()
    self.is_writer = is_writer
    try:
      self.path.mkdir(parents=True, exist_ok=True)
      with tempfile.NamedTemporaryFile(dir=self.path, prefix=".write_probe"):
        pass
    except OSError as e:
      raise WorkdirError(f"--workdir={path}: cannot create or write this directory ({e}). "
                         "Expected a writable directory path.") from e

    resolved = to_jsonable(config)
    config_file = self.path / "config.json"
    if config_file.exists():
      try:
        previous = json.loads(config_file.read_text())
      except json.JSONDecodeError as e:
        raise WorkdirError(f"{config_file} is not valid JSON ({e}); refusing to reuse the "
                           "workdir. Use a new --workdir.") from e
      diffs = config_differences(previous, resolved,
                                 ignore=resolved.get("run_control_fields", ()))
      if diffs:
        raise WorkdirError(
            f"--workdir={self.path} holds a run with a different config, so it cannot be "
            "resumed:\n  "
            + "\n  ".join(diffs)
            + "\nUse a new --workdir, or the config stored in config.json.")
    self.resumed = config_file.exists()
    self._tensorboard = None
    if is_writer:
      _atomic_write(config_file, json.dumps(resolved, indent=2, sort_keys=True) + "\n")

  @property
  def metrics_file(self) -> pathlib.Path:
    return self.path / "metrics.jsonl"

  @property
  def figures_dir(self) -> pathlib.Path:
    return self.path / "figures"

  def checkpoint_dir(self, name: str) -> pathlib.Path:
    return self.path / "checkpoints" / name

  def log_metrics(self, step: int, metrics: Mapping[str, Any], *, stream: str = "train") -> None:
    """Appends one JSON line {"stream", "step", **metrics}."""
    if not self.is_writer:
      return
    record = {"stream": stream, "step": int(step), **to_jsonable(dict(metrics))}
    with open(self.metrics_file, "a") as f:
      f.write(json.dumps(record) + "\n")
    writer = self.tensorboard()
    for name, value in record.items():
      if name not in ("stream", "step") and _is_scalar(value):
        writer.add_scalar(f"{stream}/{name}", float(value), int(step))
    writer.flush()

  def tensorboard(self):
    """The run's tensorboardX `SummaryWriter` on tensorboard/ (opened on first use)."""
    if self._tensorboard is None:
      from tensorboardX import SummaryWriter  # noqa: PLC0415  (deferred: import cost)

      self._tensorboard = SummaryWriter(str(self.path / "tensorboard"), flush_secs=30)
    return self._tensorboard

  def read_metrics(self, stream: str | None = None) -> list[dict[str, Any]]:
    if not self.metrics_file.exists():
      return []
    with open(self.metrics_file) as f:
      records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if stream is None or r.get("stream") == stream]

  def drop_metrics_after_chunk(self, stream: str, chunk: int) -> None:
    """Forgets `stream`'s lines past `chunk`: a run killed after logging but before checkpointing
    recomputes those chunks on resume, and must not log them twice."""
    if not self.is_writer or not self.metrics_file.exists():
      return
    kept = [r for r in self.read_metrics()
            if not (r.get("stream") == stream and r.get("chunk", 0) > chunk)]
    _atomic_write(self.metrics_file, "".join(json.dumps(r) + "\n" for r in kept))

  def save_figure(self, name: str, fig) -> pathlib.Path:
    """Writes `fig` (a matplotlib Figure) to figures/NAME.png and closes it."""
    import matplotlib.pyplot as plt  # Deferred: only runs that draw pay for matplotlib.

    path = self.figures_dir / f"{name}.png"
    if self.is_writer:
      self.figures_dir.mkdir(exist_ok=True)
      fig.savefig(path, dpi=110, bbox_inches="tight")
      image = plt.imread(path)  # the saved PNG, so TensorBoard shows exactly what is on disk
      writer = self.tensorboard()
      writer.add_image(f"figures/{name}", image[..., :3], 0, dataformats="HWC")
      writer.flush()
    plt.close(fig)
    return path

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    if self.is_writer:
      _atomic_write(self.path / "summary.json",
                    json.dumps(to_jsonable(dict(summary)), indent=2, sort_keys=True) + "\n")
      if self._tensorboard is not None:
        self._tensorboard.close()
        self._tensorboard = None


def _is_scalar(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def finished_summary(path: str | os.PathLike, config: ml_collections.ConfigDict
                     ) -> dict[str, Any] | None:
  """The summary of a finished run of `config` in `path` (None if absent or another config).

  A run is finished when it wrote summary.json; its config.json must equal `config` up to the
  run-control fields, the rule a resumed run is held to. Used to skip finished runs without
  rerunning their evaluation (`launch.reproduce`, `launch.sweep`).
  """
  path = pathlib.Path(path).expanduser()
  summary, stored = path / "summary.json", path / "config.json"
  if not (summary.exists() and stored.exists()):
    return None
  try:
    previous, done = json.loads(stored.read_text()), json.loads(summary.read_text())
  except json.JSONDecodeError:
    return None
  resolved = to_jsonable(config)
  if config_differences(previous, resolved, ignore=resolved.get("run_control_fields", ())):
    return None
  return done


def _atomic_write(path: pathlib.Path, text: str) -> None:
  """Write-then-rename, so a killed run never leaves a half-written file behind."""
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text)
  os.replace(tmp, path)
