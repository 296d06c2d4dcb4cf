"""benchmarks/i2a_throughput.py at --quick: every agent's row (I2A also with the model's
convolutions as patches x kernel), the imagination cost as the ratio of the standard agent's
frames/s to the agent's, and the environment model's steps/s with each convolution form."""
import json

import pytest

from benchmarks import i2a_throughput


@pytest.mark.slow  # compiles five agents' training chunks: about a minute on the shared 2 cores
def test_quick_table(tmp_path):
  out = tmp_path / "i2a.json"
  assert i2a_throughput.main(["--quick", f"--out={out}"]) == 0
  table = json.loads(out.read_text())
  rows = {r["agent"]: r for r in table["rows"]}
  assert set(rows) == {"standard", "copy d3", "i2a d1", "i2a d3", "i2a d3 re-imagine",
                       "i2a d1 patches conv", "i2a d3 patches conv"}
  assert {r["model_conv"] for name, r in rows.items() if "patches" in name} == {"patches"}
  assert {r["model_conv"] for name, r in rows.items() if "patches" not in name} == {"xla"}
  standard = rows["standard"]["frames_per_s"]
  for r in rows.values():
    assert r["frames_per_s"] == pytest.approx(r["frames_per_chunk"] / r["chunk_s"])
    assert r["cost_vs_standard"] == pytest.approx(standard / r["frames_per_s"])
    assert r["compile_s"] > 0 and len(r["chunk_times_s"]) == table["repeats"]
  assert rows["standard"]["cost_vs_standard"] == pytest.approx(1.0)
  # The copy-model agent has I2A's trainable parameters; the standard agent about as many.
  assert rows["copy d3"]["params"] == rows["i2a d3"]["params"]
  assert abs(rows["standard"]["params"] / rows["i2a d3"]["params"] - 1) < 0.05
  assert rows["i2a d3 patches conv"]["params"] == rows["i2a d3"]["params"]
  assert table["env_model"]["steps_per_s"] > 0
  assert table["env_model_by_conv"]["xla"] == table["env_model"]
  assert table["env_model_by_conv"]["patches"]["steps_per_s"] > 0
