"""Tests of the `python -m calcium.infer` command line on tiny .npy, suite2p and .mat inputs."""
import subprocess
import sys

import jax
import numpy as np
import pytest
import scipy.io

from calcium import deepspike, train
from calcium import infer as infer_cli


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """An untrained small network on a 30 Hz grid, saved (the command line only reads it)."""
  config = train.default_config()
  config.update(features=(4, 4), kernel_size=(5, 5), frame_rate=30.0)
  rec = train.build_recognition(config, train.build_model(config))
  model = deepspike.DeepSpike(config, rec.init(jax.random.key(0), np.zeros((20, 1))))
  path = deepspike.save_model(tmp_path_factory.mktemp("model") / "m", model)
  return path, deepspike.load_model(path)


def _traces(cells, frames, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(cells, frames)) + np.sin(np.arange(frames) / 5.0) + 10.0


def _main(*args):
  return infer_cli.main([*map(str, args), "--no_progress"])


def test_npy_in_batches_with_samples(saved, tmp_path):
  path, model = saved
  f = _traces(3, 120)
  np.save(tmp_path / "f.npy", f)
  out = tmp_path / "out" / "spikes.npz"
  assert _main("--model", path, "--input", tmp_path / "f.npy", "--frame_rate", 30, "--out", out,
               "--batch_cells", 2, "--num_samples", 2, "--seed", 5) == 0
  z = np.load(out)
  ref = model.infer(f, 30.0, num_samples=2, key=jax.random.key(5))
  np.testing.assert_array_equal(z["expected_counts"], ref.expected_counts)
  np.testing.assert_array_equal(z["probability"], ref.probability)
  np.testing.assert_array_equal(z["samples"], ref.samples)  # Batches of 2 + 1, same draws.
  assert list(z["names"]) == ["cell0", "cell1", "cell2"] and list(z["lengths"]) == [120] * 3
  assert str(z["kind"]) == "npy" and float(z["model_frame_rate"]) == 30.0
  spks = np.load(tmp_path / "out" / "spikes_suite2p" / "spks.npy")
  np.testing.assert_array_equal(spks, ref.expected_counts)
  # At 60 Hz the traces are resampled to the model's 30 Hz and mapped back to 120 frames.
  assert _main("--model", path, "--input", tmp_path / "f.npy", "--frame_rate", 60, "--out",
               tmp_path / "o60.npz") == 0
  z = np.load(tmp_path / "o60.npz")
  assert z["resampled"].all() and z["expected_counts"].shape == (3, 120)
  np.testing.assert_array_equal(z["expected_counts"], model.infer(f, 60.0).expected_counts)


def test_suite2p_folder(saved, tmp_path):
  path, model = saved
  folder = tmp_path / "suite2p" / "plane0"
  folder.mkdir(parents=True)
  f, fneu = _traces(3, 100, seed=1), _traces(3, 100, seed=2)
  np.save(folder / "F.npy", f.astype(np.float32))
  np.save(folder / "Fneu.npy", fneu.astype(np.float32))
  iscell = np.array([[1.0, 0.9], [0.0, 0.2], [1.0, 0.7]])
  np.save(folder / "iscell.npy", iscell)
  np.save(folder / "ops.npy", {"fs": 30.0, "nframes": 100}, allow_pickle=True)
  out = tmp_path / "s2p.npz"
  assert _main("--model", path, "--input", tmp_path / "suite2p", "--out", out) == 0  # plane0/.
  z = np.load(out)
  corrected = (f.astype(np.float32).astype(np.float64)
               - 0.7 * fneu.astype(np.float32).astype(np.float64))
  ref = model.infer(corrected[[0, 2]], 30.0)  # The frame rate from ops.npy, ROIs from iscell.
  np.testing.assert_array_equal(z["expected_counts"], ref.expected_counts)
  assert list(z["roi"]) == [0, 2] and list(z["frame_rate"]) == [30.0, 30.0]
  layout = tmp_path / "s2p_suite2p"
  spks = np.load(layout / "spks.npy")
  assert spks.shape == (3, 100) and not spks[1].any()
  np.testing.assert_array_equal(spks[[0, 2]], ref.expected_counts)
  np.testing.assert_array_equal(np.load(layout / "iscell.npy"), iscell)
  assert _main("--model", path, "--input", folder, "--out", tmp_path / "n.npz", "--neuropil", 0.3,
               "--all_rois") == 0
  z = np.load(tmp_path / "n.npz")
  np.testing.assert_array_equal(
      z["expected_counts"],
      model.infer(f.astype(np.float32) - 0.3 * fneu.astype(np.float32).astype(np.float64),
                  30.0).expected_counts)


def test_cascade_mat_with_recordings_of_different_lengths(saved, tmp_path):
  path, model = saved
  f = _traces(2, 120, seed=3)
  structs = np.array([{"fluo_time": np.arange(120) / 30.0, "fluo_mean": f[0],
                       "events_AP": np.array([1e4])},
                      {"fluo_time": 5.0 + np.arange(90) / 30.0, "fluo_mean": f[1, :90],
                       "events_AP": np.array([6e4])}], dtype=object)
  scipy.io.savemat(tmp_path / "cell.mat", {"CAttached": structs})
  out = tmp_path / "mat.npz"
  assert _main("--model", path, "--input", tmp_path / "cell.mat", "--out", out) == 0
  z = np.load(out)
  assert list(z["names"]) == ["cell#0", "cell#1"] and list(z["lengths"]) == [120, 90]
  np.testing.assert_array_equal(z["expected_counts"][0], model.infer(f[0], 30.0).expected_counts)
  second = model.infer(f[1, :90], 30.0, frame_times=5.0 + np.arange(90) / 30.0, first_cell=1)
  np.testing.assert_array_equal(z["expected_counts"][1, :90], second.expected_counts)
  assert np.isnan(z["expected_counts"][1, 90:]).all() and not z["valid"][1, 90:].any()
  np.testing.assert_allclose(z["frame_times"][1, :90], 5.0 + np.arange(90) / 30.0)


def test_bad_input_is_refused_by_name(saved, tmp_path, capsys):
  path, _ = saved
  np.save(tmp_path / "f.npy", _traces(2, 100))
  assert _main("--model", path, "--input", tmp_path / "f.npy", "--out", tmp_path / "o.npz") == 2
  assert "a .npy array has no frame rate; pass --frame_rate" in capsys.readouterr().err
  assert _main("--model", tmp_path / "nomodel", "--input", tmp_path / "f.npy", "--frame_rate",
               30, "--out", tmp_path / "o.npz") == 2
  assert "no such model folder" in capsys.readouterr().err
  scipy.io.savemat(tmp_path / "c.mat", {"CAttached": {
      "fluo_time": np.arange(100) / 30.0, "fluo_mean": _traces(1, 100)[0], "events_AP": [1.0]}})
  assert _main("--model", path, "--input", tmp_path / "c.mat", "--frame_rate", 60, "--out",
               tmp_path / "o.npz") == 2
  assert "frame_rate 60.000 Hz does not match frame_times" in capsys.readouterr().err
  (tmp_path / "s2p").mkdir()
  np.save(tmp_path / "s2p" / "F.npy", _traces(2, 100))
  assert _main("--model", path, "--input", tmp_path / "s2p", "--out", tmp_path / "o.npz") == 2
  assert "no Fneu.npy for the neuropil correction" in capsys.readouterr().err
  assert _main("--model", path, "--input", tmp_path / "s2p", "--neuropil", 0, "--out",
               tmp_path / "o.npz") == 2
  assert "no ops.npy to read the frame rate from; pass --frame_rate" in capsys.readouterr().err
  assert _main("--model", path, "--input", tmp_path / "f.txt", "--frame_rate", 30, "--out",
               tmp_path / "o.npz") == 2
  assert "no such file or folder" in capsys.readouterr().err


def test_python_dash_m_entry_point(saved, tmp_path):
  path, model = saved
  f = _traces(2, 100)
  np.save(tmp_path / "f.npy", f)
  result = subprocess.run(
      [sys.executable, "-m", "calcium.infer", "--model", str(path), "--input",
       str(tmp_path / "f.npy"), "--frame_rate", "30", "--out", str(tmp_path / "o.npz")],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert "cells" in result.stderr  # The tqdm progress bar over cells.
  assert "wrote" in result.stdout
  np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["expected_counts"],
                                model.infer(f, 30.0).expected_counts)
