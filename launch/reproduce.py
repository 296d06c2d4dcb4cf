"""Runs every registered experiment at one preset and writes results/REPORT.md.

    python -m launch.reproduce --preset=smoke --out=results [--only=sg_bernoulli,ld_lds_vs_kalman]

An experiment is registered when its config module `launch/configs/<name>.py` defines `REPORT`
(a title and the summary keys to show). Each runs in `OUT/runs/PRESET/<name>/`, so a second call
resumes finished and half-finished runs instead of recomputing them. A failing experiment is
reported (with its error) and the others still run; the exit status is non-zero if any failed.
"""
from __future__ import annotations

import importlib
import pathlib
import pkgutil
import time
import traceback
from collections.abc import Sequence
from typing import Any

from absl import app as absl_app
from absl import flags, logging

from launch import app, report

PRESETS = ("smoke", "default", "full")


def registered_experiments() -> list[str]:
  """Names of the experiments whose config module defines REPORT, sorted."""
  import launch.configs

  names = []
  for info in pkgutil.iter_modules(launch.configs.__path__):
    module = importlib.import_module(f"launch.configs.{info.name}")
    if hasattr(module, "REPORT"):
      names.append(info.name)
  return sorted(names)


def reproduce(preset: str, out: str | pathlib.Path, only: Sequence[str] | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
  """Runs the registered experiments; returns one entry per experiment (also in REPORT.md)."""
  if preset not in PRESETS:
    raise ValueError(f"--preset must be one of {PRESETS}; got {preset!r}.")
  out = pathlib.Path(out)
  names = registered_experiments()
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      raise ValueError(f"--only names unregistered experiments {unknown}; registered: {names}.")
    names = [n for n in names if n in only]
  entries = []
  for i, name in enumerate(names):
    config_module = importlib.import_module(f"launch.configs.{name}")
    entry = {"name": name, "title": config_module.REPORT.get("title", name),
             "headline": list(config_module.REPORT.get("headline", ())),
             "workdir": out / "runs" / preset / name}
    logging.info("[%d/%d] %s (%s preset)", i + 1, len(names), name, preset)
    t0 = time.perf_counter()
    try:
      experiment = importlib.import_module(f"launch.{name}").experiment
      entry["summary"] = app.execute(experiment, config_module.get_config(preset),
                                     entry["workdir"], progress=progress)
      entry["status"] = "ok"
    except Exception:  # One broken experiment must not hide the others' results.
      entry["status"] = "failed"
      entry["error"] = traceback.format_exc()
      logging.error("%s failed:\n%s", name, entry["error"])
    entry["seconds"] = time.perf_counter() - t0
    entries.append(entry)
  report.write_report(out, preset, entries)
  return entries


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  entries = reproduce(FLAGS.preset, FLAGS.out, FLAGS.only, progress=FLAGS.progress)
  failed = [e["name"] for e in entries if e["status"] != "ok"]
  print(f"{len(entries) - len(failed)} of {len(entries)} experiments ran; report: "
        f"{pathlib.Path(FLAGS.out) / 'REPORT.md'}")
  if failed:
    raise SystemExit(f"failed: {', '.join(failed)}")
  if not entries:
    raise SystemExit("no experiment is registered (no launch/configs/*.py defines REPORT).")


if __name__ == "__main__":
  flags.DEFINE_enum("preset", "smoke", PRESETS, "Config preset for every experiment.")
  flags.DEFINE_string("out", "results", "Output folder: runs/ and REPORT.md go here.")
  flags.DEFINE_list("only", None, "Run only these experiments (comma-separated names).")
  flags.DEFINE_bool("progress", True, "Show progress bars.")
  FLAGS = flags.FLAGS
  absl_app.run(main)
