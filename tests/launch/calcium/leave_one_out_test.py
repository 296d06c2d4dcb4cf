"""Smoke test of launch.calcium.leave_one_out on synthetic CASCADE-format folders (one fold trained
on the other set, scored beside OASIS AR1/AR2 with an unsupervised variant; the paired
differences checked by hand, the table's columns, a restart that trains nothing; the fold model
reloaded through `model_root` and the warm-started unsupervised variant), and its summary over
folds on literal scores."""
import json

import numpy as np
import pytest

from calcium import deepspike
from launch import app, reproduce
from launch.calcium import leave_one_out
from launch.calcium.configs import leave_one_out as config_module


def test_smoke_fold_and_resume(tmp_path, cascade_set):
  pytest.importorskip("oasis", reason="the evaluation needs oasis-deconv (bench extra)")
  a = cascade_set(tmp_path / "DS91-a", 60.0)
  b = cascade_set(tmp_path / "DS92-b", 30.0, neurons=1, seed=1)
  config = config_module.get_config("smoke")
  config.sets = (str(a), str(b))
  config.held_out = (str(b),)  # One fold (seconds); summarise's arithmetic over folds: below.
  summary = app.execute(leave_one_out.experiment, config, tmp_path / "run", progress=False)
  assert summary["folds"] == 1 and summary["folds_resumed"] == 0
  assert summary["held_out_sets"] == "DS92-b" and summary["DS92_recordings"] == 2
  # The fold trained on the other set only, and saved its model under models/<key>.
  assert deepspike.load_model(tmp_path / "run" / "models" / "DS92").training_data == "DS91-a"
  record = json.loads((tmp_path / "run" / "folds" / "DS92.json").read_text())
  assert record["train_sets"] == "DS91-a" and record["train_recordings"] == 2
  ours = np.array(summary["DS92_deepspike_per_recording"])
  for b_ in ("oasis_ar1", "oasis_ar2"):
    theirs = np.array(summary[f"DS92_{b_}_per_recording"])
    assert np.isfinite(ours).all() and np.isfinite(theirs).all()
    d = ours - theirs  # By hand: two recordings, SE = |d0 - d1| / 2.
    assert summary[f"DS92_minus_{b_}_corr"] == pytest.approx((d[0] + d[1]) / 2, abs=1e-12)
    assert summary[f"DS92_minus_{b_}_se"] == pytest.approx(abs(d[0] - d[1]) / 2, abs=1e-12)
  assert summary["DS92_deepspike_corr"] == pytest.approx(ours.mean())
  unsup = np.array(summary["DS92_unsupervised_per_recording"])
  assert np.isfinite(unsup).all() and not np.allclose(unsup, ours)
  assert summary["DS92_unsupervised_minus_oasis_ar2_corr"] == pytest.approx(
      np.mean(unsup - np.array(summary["DS92_oasis_ar2_per_recording"])))
  assert summary["DS92_unsupervised_corr_seed0"] == pytest.approx(unsup.mean())
  assert np.isfinite(summary["DS92_unsupervised_final_bound_seed0"])
  lines = (tmp_path / "run" / "results.md").read_text().splitlines()
  assert lines[0] == ("| held-out set | recordings | DeepSpike | OASIS AR1 | OASIS AR2 | "
                      "DeepSpike - AR1 | DeepSpike - AR2 | unsupervised | unsupervised - AR2 |")
  row = lines[2].split(" | ")
  assert row[0] == "| DS92-b" and row[2] == f"{summary['DS92_deepspike_corr']:.3f}"
  assert row[6] == (f"{summary['DS92_minus_oasis_ar2_corr']:+.3f} +- "
                    f"{summary['DS92_minus_oasis_ar2_se']:.3f}")
  assert (tmp_path / "run" / "figures" / "leave_one_out.png").stat().st_size > 1000
  # A restart in the same workdir loads the fold: no training loop runs, the same numbers.
  again = app.execute(leave_one_out.experiment, config, tmp_path / "run", progress=False)
  assert again["folds_resumed"] == 1 and again["compile_s"] == 0
  assert again["DS92_minus_oasis_ar2_corr"] == summary["DS92_minus_oasis_ar2_corr"]
  assert again["DS92_unsupervised_corr"] == summary["DS92_unsupervised_corr"]
  # model_root: the saved fold model is loaded, not trained; "unsupervised_warm" starts from it,
  # so with the network's learning rate at 0 it scores exactly as the supervised model.
  config.model_root = str(tmp_path / "run" / "models")
  config.label_free.variants = ("unsupervised_warm",)
  config.label_free.train.learning_rate = 0.0
  warm = app.execute(leave_one_out.experiment, config, tmp_path / "warm", progress=False)
  assert not (tmp_path / "warm" / "checkpoints" / "supervised_DS92").exists()
  assert (tmp_path / "warm" / "checkpoints" / "unsupervised_warm_DS92_seed0").exists()
  assert warm["DS92_deepspike_per_recording"] == summary["DS92_deepspike_per_recording"]
  np.testing.assert_allclose(warm["DS92_unsupervised_warm_per_recording"], ours, atol=1e-6)
  assert np.isfinite(warm["DS92_unsupervised_warm_final_bound_seed0"])
  fake = tmp_path / "fake"  # A model trained on DS91 offered as the DS91 fold's: refused.
  fake.mkdir()
  (tmp_path / "run" / "models" / "DS92").rename(fake / "DS91")
  config.model_root, config.held_out = str(fake), (str(a),)
  with pytest.raises(ValueError, match="config.model_root: .* was trained on 'DS91-a'"):
    app.execute(leave_one_out.experiment, config, tmp_path / "bad", progress=False)


def _record(key, deepspike_, ar1, ar2, unsup_seeds):
  return {"set": f"{key}-x", "key": key, "recordings": [f"r{i}" for i in range(len(ar2))],
          "train_copies": 7, "final_bound_per_frame": {f"unsupervised_seed{i}": -1.0
                                                       for i in range(len(unsup_seeds))},
          "scores": {"deepspike": deepspike_, "oasis_ar1": ar1, "oasis_ar2": ar2,
                     "unsupervised": np.mean(unsup_seeds, axis=0).tolist(),
                     "unsupervised_per_seed": unsup_seeds}}


def test_summary_over_folds_by_hand():
  records = [_record("DS01", [0.5, 0.7, 0.6], [0.2, 0.3, 0.4], [0.4, 0.5, 0.6],
                     [[0.5, 0.5, 0.5], [0.5, 0.7, 0.5]]),
             _record("DS02", [0.3, 0.2], [0.3, 0.2], [0.4, 0.2], [[0.35, 0.35], [0.1, 0.1]])]
  s = leave_one_out.summarise(records, ("unsupervised",))
  # DS01: DeepSpike - AR2 = (0.1, 0.2, 0.0): mean 0.1, SE 0.1 / sqrt(3); DS02: (-0.1, 0.0).
  assert s["DS01_minus_oasis_ar2_corr"] == pytest.approx(0.1)
  assert s["DS01_minus_oasis_ar2_se"] == pytest.approx(0.1 / np.sqrt(3))
  assert s["DS02_minus_oasis_ar2_corr"] == pytest.approx(-0.05)
  assert s["DS02_minus_oasis_ar2_se"] == pytest.approx(0.05)
  assert s["DS01_minus_oasis_ar1_corr"] == pytest.approx(0.3)
  assert s["DS02_minus_oasis_ar1_corr"] == 0 and s["sets_above_oasis_ar1"] == 1
  assert s["worst_minus_oasis_ar2_corr"] == pytest.approx(-0.05) and s["sets_above_oasis_ar2"] == 1
  assert s["sets_above_oasis_ar2_2se"] == 0  # DS01: 0.1 < 2 x 0.058.
  assert s["mean_deepspike_corr"] == pytest.approx((0.6 + 0.25) / 2)
  assert s["mean_minus_oasis_ar2_corr"] == pytest.approx(0.025)
  # Pooled over the 5 recordings: (0.1, 0.2, 0, -0.1, 0), mean 0.04.
  assert s["pooled_minus_oasis_ar2_corr"] == pytest.approx(0.04) and s["pooled_recordings"] == 5
  assert s["pooled_minus_oasis_ar2_se"] == pytest.approx(np.std([.1, .2, 0, -.1, 0], ddof=1)
                                                         / np.sqrt(5))
  # Unsupervised: DS01 seeds 0.5 and 0.567 against AR2 0.5 (both reach it); DS02 0.35 and 0.1
  # against 0.3 (seed 1 does not). Per recording the seeds' mean: DS01 (0.5, 0.6, 0.5).
  assert s["DS01_unsupervised_corr_seed0"] == pytest.approx(0.5)
  assert s["DS01_unsupervised_corr_seed1"] == pytest.approx(1.7 / 3)
  assert s["DS02_unsupervised_min_seed_corr"] == pytest.approx(0.1)
  assert s["sets_unsupervised_at_oasis_ar2"] == 1
  assert s["DS01_unsupervised_minus_oasis_ar2_corr"] == pytest.approx(0.1 / 3)
  assert s["DS02_unsupervised_minus_oasis_ar2_corr"] == pytest.approx(-0.075)
  text = leave_one_out.results_markdown(s, records, ("unsupervised",)).splitlines()
  assert text[2] == ("| DS01-x | 3 | 0.600 | 0.300 | 0.500 | +0.300 +- 0.058 | +0.100 +- 0.058 "
                     "| 0.533 | +0.033 +- 0.067 |")
  assert text[4] == ("| mean over 2 sets | 5 | 0.425 | 0.275 | 0.400 | +0.150 | +0.025 | 0.379 "
                     "| -0.021 |")
  assert text[5].startswith("| all recordings, paired | 5 |") and "+0.040 +- 0.051" in text[5]
  assert "DeepSpike above OASIS AR2 on 1 of 2 held-out sets" in text[-2]


def test_registered_presets_and_bad_input(tmp_path, cascade_set):
  assert "calcium.leave_one_out" in reproduce.registered_experiments()
  default = config_module.get_config("default")
  assert len(default.sets) == 10 and default.held_out == ()
  assert default.label_free.variants == ("unsupervised_warm",) and default.num_chunks == 10
  assert default.downsample == "average" and default.model_root == ""
  assert config_module.get_config("smoke").label_free.variants == ("unsupervised",)
  assert config_module.get_config("full").label_free.seeds == 3
  assert "train_dirs" not in default and "oasis" not in default
  with pytest.raises(ValueError, match="'huge'"):
    config_module.get_config("huge")
  a = cascade_set(tmp_path / "DS91-a", 60.0, neurons=1, recordings=1)
  b = cascade_set(tmp_path / "DS92-b", 30.0, neurons=1, recordings=1)
  config = config_module.get_config("smoke")
  config.sets = (str(a), str(b))
  config.held_out = ("DS93-c",)
  with pytest.raises(ValueError, match="config.held_out: 'DS93-c' is not one of config.sets"):
    app.execute(leave_one_out.experiment, config, tmp_path / "x", progress=False)
  config.held_out = ()
  config.label_free.variants = ("supervised",)
  with pytest.raises(ValueError, match="config.label_free.variants: unknown variant"):
    app.execute(leave_one_out.experiment, config, tmp_path / "y", progress=False)
  config.label_free.variants = ()
  config.sets = (str(a),)
  with pytest.raises(ValueError, match="config.sets must name at least two"):
    app.execute(leave_one_out.experiment, config, tmp_path / "z", progress=False)
