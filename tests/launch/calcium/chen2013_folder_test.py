"""launch.calcium.chen2013 on a synthetic CASCADE-format folder: every recording used, the set
named from its folder (needs OASIS, not the shared data)."""
import pytest

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")

from launch import app  # noqa: E402
from launch.calcium import chen2013 as calcium_chen2013  # noqa: E402
from launch.calcium.configs import chen2013 as config_module  # noqa: E402


def test_every_recording_of_a_new_folder_is_used(tmp_path, cascade_set):
  cascade_set(tmp_path / "DS98-synthetic", neurons=3, seconds=20.0, kernel_seconds=2.0)
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
