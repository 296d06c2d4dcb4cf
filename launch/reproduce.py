"""Runs every registered experiment at one preset and writes results/REPORT.md.

    python -m launch.reproduce --preset=smoke --out=results \
        [--only=stochastic_graphs.bernoulli,latent_dynamics.lds_vs_kalman]

Experiments are found by walking the subpackages of `launch`: an experiment `<package>.<name>`
(e.g. `calcium.chen2013`) is registered when its config module
`launch/<package>/configs/<name>.py` defines `REPORT` (a title, the summary keys to show, and
optionally `claims`, a list of `launch.claims.Claim`, and `demo: True` for the one headline
experiment per paper that `--preset=demo` runs, i.e. `make demo`);
its launcher `launch/<package>/<name>.py` defines `experiment(config, run)`. Config modules
without REPORT (shared fields, e.g. `launch/manifold/configs/fit.py`) are skipped. Each runs in
`OUT/runs/PRESET/<package>/<name>/`, so a second call reuses finished runs' summaries (same
config) and resumes half-finished ones from their checkpoints instead of recomputing them. A
failing experiment is reported (with its error) and the others still run; the exit status is
non-zero if any failed.
"""
from __future__ import annotations

import importlib
import pathlib
import time
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from absl import app as absl_app
from absl import flags, logging

from launch import app, claims, report
from launch import workdir as workdir_lib

PRESETS = ("smoke", "demo", "default", "full")


def registered_experiments() -> list[str]:
  """Names `<package>.<experiment>` of the experiments whose config module defines REPORT, sorted.

  Walks the files `launch/*/configs/*.py` (so a subpackage needs no entry anywhere else; its
  `__init__.py` files are optional) and imports each config module to look for REPORT.
  """
  root = pathlib.Path(__file__).parent
  names = []
  for path in sorted(root.glob("*/configs/*.py")):
    if path.name.startswith("_"):
      continue
    name = f"{path.parent.parent.name}.{path.stem}"
    if hasattr(config_module(name), "REPORT"):
      names.append(name)
  return sorted(names)


def config_module(name: str) -> ModuleType:
  """The config module `launch.<package>.configs.<experiment>` of experiment `<package>.<exp>`."""
  package, _, experiment = name.rpartition(".")
  return importlib.import_module(f"launch.{package}.configs.{experiment}")


def experiment_fn(name: str) -> app.Experiment:
  """The `experiment(config, run)` function of `launch.<package>.<experiment>`."""
  return importlib.import_module(f"launch.{name}").experiment


def reproduce(preset: str, out: str | pathlib.Path, only: Sequence[str] | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
  """Runs the registered experiments; returns one entry per experiment (also in REPORT.md)."""
  if preset not in PRESETS:
    raise ValueError(f"--preset must be one of {PRESETS}; got {preset!r}.")
  out = pathlib.Path(out)
  names = registered_experiments()
  if preset == "demo" and not only:
    # One headline experiment per paper (REPORT["demo"]); the others stay in `make reproduce`.
    names = [n for n in names if config_module(n).REPORT.get("demo", False)]
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      raise ValueError(f"--only names unregistered experiments {unknown}; registered: {names}.")
    names = [n for n in names if n in only]
  entries = []
  for i, name in enumerate(names):
    module = config_module(name)
    entry = {"name": name, "title": module.REPORT.get("title", name),
             "headline": list(module.REPORT.get("headline", ())),
             "claims": [claims.check_claim(c) for c in module.REPORT.get("claims", ())],
             "workdir": out / "runs" / preset / pathlib.Path(*name.split("."))}
    logging.info("[%d/%d] %s (%s preset)", i + 1, len(names), name, preset)
    t0 = time.perf_counter()
    try:
      config = module.get_config(preset)
      done = workdir_lib.finished_summary(entry["workdir"], config)
      if done is not None:  # finished earlier with this config: reuse, do not re-evaluate
        logging.info("%s: finished in %s, summary reused", name, entry["workdir"])
        entry["summary"], entry["reused"] = done, True
      else:
        entry["summary"] = app.execute(experiment_fn(name), config, entry["workdir"],
                                       progress=progress)
      entry["status"] = "ok"
    except Exception:  # One broken experiment must not hide the others' results.
      entry["status"] = "failed"
      entry["error"] = traceback.format_exc()
      logging.error("%s failed:\n%s", name, entry["error"])
    entry["seconds"] = time.perf_counter() - t0
    if entry.get("reused"):  # the time it took when it ran, not the time to read it back
      entry["seconds"] = float(entry["summary"].get("wall_s", float("nan")))
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
    raise SystemExit("no experiment is registered (no launch/*/configs/*.py defines REPORT).")


if __name__ == "__main__":
  flags.DEFINE_enum("preset", "smoke", PRESETS, "Config preset for every experiment.")
  flags.DEFINE_string("out", "results", "Output folder: runs/ and REPORT.md go here.")
  flags.DEFINE_list("only", None, "Run only these experiments (comma-separated "
                    "<package>.<experiment> names).")
  flags.DEFINE_bool("progress", True, "Show progress bars.")
  FLAGS = flags.FLAGS
  absl_app.run(main)
