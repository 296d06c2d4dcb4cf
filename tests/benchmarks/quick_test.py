"""Every benchmark runs end to end at its --quick size and writes its JSON table."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import run_all

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", run_all.benchmark_names())
def test_benchmark_quick_mode(name, tmp_path):
  out_json = ROOT / "results" / "bench" / f"{name}.json"
  before = out_json.stat().st_mtime if out_json.exists() else None
  proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  assert out_json.exists() and out_json.stat().st_mtime != before, f"{out_json} not written"
  table = json.loads(out_json.read_text())
  assert table, f"{out_json} is empty"


def test_runner_refuses_unknown_benchmark(capsys):
  with pytest.raises(SystemExit):
    run_all.main(["--only=no_such_benchmark"])
  assert "unknown benchmarks" in capsys.readouterr().err
