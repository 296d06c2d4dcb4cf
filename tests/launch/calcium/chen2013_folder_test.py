"""launch.calcium.chen2013 on a synthetic CASCADE-format folder: every recording used, the set
named from its folder (needs OASIS, not the shared data)."""
import numpy as np
import pytest
import scipy.io

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")

from launch import app  # noqa: E402
from launch.calcium import chen2013 as calcium_chen2013  # noqa: E402
from launch.calcium.configs import chen2013 as config_module  # noqa: E402


def _write_set(folder, neurons=3, recordings=2, frames=1200, rate=60.0, seed=0):
  folder.mkdir()
  rng = np.random.default_rng(seed)
  t = np.arange(frames) / rate
  kernel = 3.0 * np.exp(-np.arange(120) / (0.5 * rate))
  for n in range(neurons):
    structs = []
    for _ in range(recordings):
      counts = rng.poisson(1.0 / rate, frames)
      fluo = np.convolve(counts, kernel)[:frames] + rng.normal(size=frames)
      spikes = np.repeat(t, counts) + rng.uniform(0, 1 / rate, counts.sum())
      structs.append({"fluo_time": t, "fluo_mean": fluo, "events_AP": spikes * 1e4})
    scipy.io.savemat(folder / f"cell{n}.mat", {"CAttached": np.array(structs, dtype=object)})


def test_every_recording_of_a_new_folder_is_used(tmp_path):
  _write_set(tmp_path / "DS98-synthetic")
  config = config_module.get_config("smoke")
  config.data_dir = str(tmp_path / "DS98-synthetic")
  config.max_recordings = 0  # No limit: all six recordings.
  config.max_frames = 1200
  config.variants = ("supervised",)
  summary = app.execute(calcium_chen2013.experiment, config, tmp_path / "run", progress=False)
  assert summary["recordings"] == 6
  assert summary["test_recordings"] == 3  # The first of two folds.
  assert summary["data_set"] == "DS98-synthetic"
  assert -1 <= summary["supervised_corr"] <= 1
