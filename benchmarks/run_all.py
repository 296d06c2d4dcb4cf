"""Runs every benchmark module `benchmarks/<package>_<what>.py`, each in its own process.

    python -m benchmarks.run_all [--quick] [--only=envs_throughput,...]

Each benchmark prints its table and writes results/bench/<name>.json; this runner prints which
ran and how long they took, and exits non-zero if any failed.
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).parent


def benchmark_names() -> list[str]:
  return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"__init__", "run_all"}
                and not p.stem.startswith("_"))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test).")
  parser.add_argument("--only", default="", help="Comma-separated benchmark names.")
  args = parser.parse_args(argv)
  names = benchmark_names()
  if args.only:
    wanted = args.only.split(",")
    unknown = sorted(set(wanted) - set(names))
    if unknown:
      parser.error(f"--only names unknown benchmarks {unknown}; known: {names}")
    names = [n for n in names if n in wanted]
  if not names:
    print("no benchmark found under benchmarks/", file=sys.stderr)
    return 1
  results = []
  for name in names:
    print(f"=== {name}", flush=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
    code = subprocess.call(cmd, cwd=HERE.parent)
    results.append((name, code, time.perf_counter() - t0))
  print("\n| benchmark | exit | seconds |\n|---|---|---|")
  for name, code, seconds in results:
    print(f"| {name} | {code} | {seconds:.0f} |")
  return int(any(code != 0 for _, code, _ in results))


if __name__ == "__main__":
  sys.exit(main())
