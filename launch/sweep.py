"""Sweeps: the cross product of config fields, one resumable workdir per point, via submitit.

    python -m launch.sweep --experiment=calcium.chen2013 --preset=default \\
        --sweep='seed=0:5' --sweep='learning_rate=1e-3,3e-4' --workdir=/tmp/sweep \\
        --executor=slurm --slurm.partition=gpu --slurm.gpus_per_node=1

Each point runs `launch.<experiment>` exactly as its launcher would (`app.execute`) in
`<workdir>/<point name>/`, named by its overrides (`seed=0,learning_rate=0.001`). Jobs go through
submitit (SLURM on a cluster, its local executor on one machine, or `inline` in this process for
debugging); nothing here schedules. Finished points (a `summary.json` with the same config) are
skipped, and an unfinished one resumes from its checkpoints, so a preempted or failed sweep is
completed by running the same command again. At the end, or alone with `--collect`, the sweep
writes `sweep.csv` and `sweep.md` (one row per point: overrides and the summary's scalars) and,
for every swept field other than the seed, `sweep_<field>.png`: the headline metric (`--metric`,
default the first headline of the config module's `REPORT`) against the field, mean and standard
error over seeds.

Sweep specs: `field=a:b` (integers a..b-1), `field=a:b:step`, or `field=v1,v2,...`, each value
converted to the type of the field in the base config; nested fields as `model.width=32,64`. A
malformed spec, an unknown field, a value of the wrong type or a field swept twice is refused by
name before anything is submitted.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import itertools
import json
import math
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from launch import workdir as workdir_lib

EXECUTORS = ("local", "slurm", "inline")


class SweepError(ValueError):
  """A sweep that cannot be run as asked (raised before anything is submitted)."""


# ----------------------------------------------------------------------------- experiments


def experiment_paths(experiment: str) -> tuple[str, pathlib.Path]:
  """`calcium.chen2013` -> (`launch.calcium.chen2013`, launch/calcium/configs/chen2013.py)."""
  name = experiment.removeprefix("launch.")
  parts = name.split(".")
  if len(parts) < 2 or not all(p.isidentifier() for p in parts):
    raise SweepError(f"--experiment={experiment!r}: expected <package>.<experiment>, e.g. "
                     "calcium.chen2013 (the launcher launch/<package>/<experiment>.py).")
  config = pathlib.Path(__file__).parent.joinpath(*parts[:-1], "configs", parts[-1] + ".py")
  return "launch." + name, config


def load_config_module(path: str | pathlib.Path):
  path = pathlib.Path(path)
  if not path.exists():
    raise SweepError(f"config file {path} does not exist.")
  spec = importlib.util.spec_from_file_location(f"_sweep_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def base_config(config_path: str | pathlib.Path, preset: str | None) -> ml_collections.ConfigDict:
  module = load_config_module(config_path)
  return module.get_config(preset) if preset else module.get_config()


# ----------------------------------------------------------------------------- sweep specs


def _field(config: ml_collections.ConfigDict, name: str) -> Any:
  node = config
  for part in name.split("."):
    if not isinstance(node, (ml_collections.ConfigDict, Mapping)) or part not in node:
      raise KeyError(name)
    node = node[part]
  return node


def _field_names(config, prefix: str = "") -> list[str]:
  names = []
  for key, value in config.items():
    names.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      names += _field_names(value, prefix + key + ".")
  return names


def _convert(field: str, text: str, like: Any) -> Any:
  """`text` as a value of the type of `like` (the base config's value of `field`)."""
  try:
    if isinstance(like, bool):
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(text)
      return text.lower() in ("true", "1")
    if isinstance(like, int):
      return int(text)
    if isinstance(like, float):
      return float(text)
    if isinstance(like, str) or like is None:
      return text
  except ValueError:
    raise SweepError(f"--sweep {field}: {text!r} is not a {type(like).__name__} (the type of "
                     f"{field} in the config, {like!r}).") from None
  raise SweepError(f"--sweep {field}: fields of type {type(like).__name__} cannot be swept "
                   "(ints, floats, bools and strings can).")


def parse_sweep(specs: Sequence[str], config: ml_collections.ConfigDict) -> dict[str, list]:
  """The swept fields and their values, in the order given; see the module docstring."""
  if not specs:
    raise SweepError("no --sweep given; expected at least one, e.g. --sweep='seed=0:3'.")
  axes: dict[str, list] = {}
  for spec in specs:
    field, eq, values = spec.partition("=")
    field = field.strip()
    if not eq or not field or not values.strip():
      raise SweepError(f"--sweep={spec!r}: expected field=a:b or field=v1,v2,...")
    try:
      like = _field(config, field)
    except KeyError:
      raise SweepError(f"--sweep={spec!r}: the config has no field {field!r}. Fields: "
                       f"{', '.join(sorted(_field_names(config)))}.") from None
    if field in axes:
      raise SweepError(f"--sweep: field {field!r} is swept twice; give all its values at once.")
    if ":" in values:
      bounds = values.split(":")
      if len(bounds) not in (2, 3) or not isinstance(like, int) or isinstance(like, bool):
        raise SweepError(f"--sweep={spec!r}: a range a:b[:step] needs an integer field "
                         f"({field} is {like!r}).")
      try:
        points = list(range(*(int(b) for b in bounds)))
      except ValueError:
        raise SweepError(f"--sweep={spec!r}: range bounds must be integers.") from None
    else:
      points = [_convert(field, v.strip(), like) for v in values.split(",")]
    if not points:
      raise SweepError(f"--sweep={spec!r} gives no values.")
    if len(set(map(repr, points))) != len(points):
      raise SweepError(f"--sweep={spec!r} repeats a value.")
    axes[field] = points
  return axes


def sweep_points(axes: Mapping[str, Sequence]) -> list[dict[str, Any]]:
  """The cross product, first field slowest."""
  names = list(axes)
  return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def point_name(overrides: Mapping[str, Any]) -> str:
  return ",".join(f"{k}={v}" for k, v in overrides.items()).replace("/", "_")


def point_config(base: ml_collections.ConfigDict,
                 overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(base.to_dict())
  for name, value in overrides.items():
    *parents, leaf = name.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


# ----------------------------------------------------------------------------- running


def run_point(module_name: str, config: dict, workdir: str, sys_path: Sequence[str] = ()) -> dict:
  """One point: the experiment's launcher body in `workdir` (the submitted job)."""
  for p in reversed(sys_path):
    if p not in sys.path:
      sys.path.insert(0, p)
  from launch import app  # noqa: PLC0415  (imported in the job's process)

  module = importlib.import_module(module_name)
  return app.execute(module.experiment, ml_collections.ConfigDict(config), workdir,
                     progress=False)


def make_executor(kind: str, folder: pathlib.Path, *, timeout_min: int = 60,
                  slurm: Mapping[str, Any] | None = None):
  """A submitit executor: `local` (subprocesses on this machine) or `slurm`."""
  import submitit  # noqa: PLC0415  (only the sweep needs it)

  if kind == "local":
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=timeout_min)
  elif kind == "slurm":
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = {f"slurm_{k}": v for k, v in (slurm or {}).items() if v not in (None, "")}
    executor.update_parameters(timeout_min=timeout_min, **params)
  else:
    raise SweepError(f"--executor={kind!r}: expected one of {EXECUTORS}.")
  return executor


@contextlib.contextmanager
def _pythonpath(paths: Sequence[str]):
  """PYTHONPATH = `paths` + its old entries (order kept, no repeats) inside the block only."""
  old = os.environ.get("PYTHONPATH")
  entries = list(paths) + (old.split(os.pathsep) if old else [])
  os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(e for e in entries if e))
  try:
    yield
  finally:
    if old is None:
      os.environ.pop("PYTHONPATH", None)
    else:
      os.environ["PYTHONPATH"] = old


def run_sweep(module_name: str, base: ml_collections.ConfigDict, axes: Mapping[str, Sequence],
              workdir: str | pathlib.Path, *, executor: str = "local", timeout_min: int = 60,
              slurm: Mapping[str, Any] | None = None, log=print) -> dict[str, dict]:
  """Runs every unfinished point; returns `{point name: summary}` of the points that ran.

  Raises `SweepError` naming the failed points (with their logs) after all jobs have ended.
  """
  if executor not in EXECUTORS:
    raise SweepError(f"--executor={executor!r}: expected one of {EXECUTORS}.")
  root = pathlib.Path(workdir).expanduser().resolve()
  root.mkdir(parents=True, exist_ok=True)
  (root / "sweep.json").write_text(json.dumps(
      {"experiment": module_name, "axes": {k: list(v) for k, v in axes.items()}}, indent=2))
  todo = []
  for overrides in sweep_points(axes):
    name = point_name(overrides)
    config = point_config(base, overrides)
    if workdir_lib.finished_summary(root / name, config) is not None:
      log(f"{name}: finished, skipped")
    else:
      todo.append((name, config))
  log(f"{len(todo)} of {len(sweep_points(axes))} points to run ({executor})")
  if not todo:
    return {}
  paths = [p for p in sys.path if p]
  if executor == "inline":
    return {name: run_point(module_name, config.to_dict(), str(root / name), paths)
            for name, config in todo}
  ex = make_executor(executor, root / "_submitit", timeout_min=timeout_min, slurm=slurm)
  jobs = []
  # The jobs unpickle `run_point` before it can extend sys.path: they inherit this process's
  # path through PYTHONPATH, set only while they are submitted (the jobs copy the environment).
  with _pythonpath(paths), ex.batch():
    for name, config in todo:
      jobs.append(ex.submit(run_point, module_name, config.to_dict(), str(root / name), paths))
  results, failed = {}, []
  for (name, _), job in zip(todo, jobs):
    try:
      results[name] = job.result()
      log(f"{name}: done")
    except Exception as e:  # A failed point must not hide the others' results.
      failed.append(f"{name} (job {job.job_id}: {type(e).__name__}; log {job.paths.stderr})")
  if failed:
    raise SweepError("points failed: " + "; ".join(failed) + ". Rerun the same command to "
                     "resume them.")
  return results


# ----------------------------------------------------------------------------- collecting


def _scalars(summary: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(v) for k, v in summary.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


def collect(workdir: str | pathlib.Path, metric: str | None = None) -> dict[str, Any]:
  """Writes sweep.csv, sweep.md and one figure per swept non-seed field; returns the table."""
  root = pathlib.Path(workdir).expanduser().resolve()
  meta = json.loads((root / "sweep.json").read_text())
  axes = meta["axes"]
  rows, missing = [], []
  for overrides in sweep_points(axes):
    summary_file = root / point_name(overrides) / "summary.json"
    if not summary_file.exists():
      missing.append(point_name(overrides))
      continue
    rows.append({**overrides, **_scalars(json.loads(summary_file.read_text()))})
  columns = list(axes) + sorted({k for r in rows for k in r} - set(axes))
  with open(root / "sweep.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for r in rows:
    lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
  if missing:
    lines.append(f"\nNot finished ({len(missing)}): {', '.join(missing)}")
  (root / "sweep.md").write_text("\n".join(lines) + "\n")
  figures = []
  if metric is None:
    metric = _default_metric(meta["experiment"], rows)
  if metric is not None and rows:
    for field in axes:
      if field != "seed" and len(axes[field]) > 1:
        figures.append(_plot(root, rows, axes, field, metric))
  return {"rows": rows, "missing": missing, "metric": metric, "figures": figures}


def aggregate(rows: Sequence[Mapping[str, Any]], field: str, values: Sequence, metric: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean, standard error (sd / sqrt(n), 0 for one seed) and count of `metric` per value."""
  means, ses, counts = [], [], []
  for v in values:
    m = np.array([r[metric] for r in rows if r.get(field) == v and metric in r], float)
    m = m[np.isfinite(m)]
    means.append(m.mean() if len(m) else math.nan)
    ses.append(m.std(ddof=1) / math.sqrt(len(m)) if len(m) > 1 else 0.0)
    counts.append(len(m))
  return np.array(means), np.array(ses), np.array(counts)


def _default_metric(module_name: str, rows) -> str | None:
  try:
    _, config_path = experiment_paths(module_name)
    headline = getattr(load_config_module(config_path), "REPORT", {}).get("headline", ())
    if headline:
      return headline[0]
  except (SweepError, OSError):
    pass
  keys = [k for k in (rows[0] if rows else {}) if k not in ("wall_s", "compile_s")]
  return keys[-1] if keys else None


def _plot(root: pathlib.Path, rows, axes, field: str, metric: str) -> pathlib.Path:
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  values = axes[field]
  means, ses, counts = aggregate(rows, field, values, metric)
  numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
  x = np.asarray(values, float) if numeric else np.arange(len(values))
  fig, ax = plt.subplots(figsize=(4.5, 3.2))
  ax.errorbar(x, means, yerr=ses, marker="o", capsize=3)
  if not numeric:
    ax.set_xticks(x, [str(v) for v in values])
  elif min(values) > 0 and max(values) / min(values) >= 100:
    ax.set_xscale("log")
  ax.set_xlabel(field)
  ax.set_ylabel(metric)
  ax.set_title(f"mean ± SE over seeds (n = {int(counts.min())}-{int(counts.max())})", fontsize=9)
  fig.tight_layout()
  path = root / f"sweep_{field.replace('.', '_')}.png"
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def _fmt(v: Any) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
  from absl import app as absl_app  # noqa: PLC0415
  from absl import flags  # noqa: PLC0415

  flags.DEFINE_string("experiment", None, "<package>.<experiment>, e.g. calcium.chen2013.",
                      required=True)
  flags.DEFINE_string("config", None, "Config file (default: the experiment's own).")
  flags.DEFINE_string("preset", None, "Preset of the config (smoke, demo, default, full).")
  flags.DEFINE_multi_string("sweep", [], "field=a:b or field=v1,v2 (repeatable).")
  flags.DEFINE_string("workdir", None, "Parent folder of the points' workdirs.", required=True)
  flags.DEFINE_enum("executor", "local", EXECUTORS, "Where the points run.")
  flags.DEFINE_integer("timeout_min", 60, "Time limit of one point's job, minutes.")
  flags.DEFINE_string("slurm.partition", None, "SLURM partition.")
  flags.DEFINE_integer("slurm.gpus_per_node", None, "GPUs per job.")
  flags.DEFINE_integer("slurm.cpus_per_task", None, "CPUs per job.")
  flags.DEFINE_string("slurm.mem", None, "Memory per job, e.g. 32G.")
  flags.DEFINE_bool("collect", False, "Only collect the table and figures of a sweep.")
  flags.DEFINE_string("metric", None, "Summary field plotted (default: the REPORT headline).")

  def run(args):
    if len(args) > 1:
      raise absl_app.UsageError(f"unexpected arguments: {args[1:]}")
    f = flags.FLAGS
    try:
      if not f.collect:
        module_name, default_config = experiment_paths(f.experiment)
        base = base_config(f.config or default_config, f.preset)
        axes = parse_sweep(f.sweep, base)
        slurm = {"partition": f["slurm.partition"].value,
                 "gpus_per_node": f["slurm.gpus_per_node"].value,
                 "cpus_per_task": f["slurm.cpus_per_task"].value,
                 "mem": f["slurm.mem"].value}
        run_sweep(module_name, base, axes, f.workdir, executor=f.executor,
                  timeout_min=f.timeout_min, slurm=slurm)
      out = collect(f.workdir, f.metric)
    except SweepError as e:
      sys.exit(f"error: {e}")
    print((pathlib.Path(f.workdir) / "sweep.md").read_text())
    for fig in out["figures"]:
      print(f"figure: {fig}")

  absl_app.run(run, argv=argv)


if __name__ == "__main__":
  main()
