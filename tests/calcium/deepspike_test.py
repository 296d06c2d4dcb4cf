"""Tests of calcium.deepspike: save -> load -> infer, frame-rate handling, refused input."""
import json

import jax
import numpy as np
import pytest

from calcium import data, deepspike, train


def _config(recognition="factorised", upsample=1, frame_rate=60.0):
  c = train.default_config()
  c.update(features=(4, 4), kernel_size=(5, 5), hidden=4, recognition=recognition,
           upsample=upsample, frame_rate=frame_rate)
  return c


def _model(recognition="factorised", upsample=1, frame_rate=60.0, seed=0):
  config = _config(recognition, upsample, frame_rate)
  rec = train.build_recognition(config, train.build_model(config))
  params = rec.init(jax.random.key(seed), np.zeros((20, 1)))
  return deepspike.DeepSpike(config, params, training_data="random init")


def _traces(cells=3, frames=150, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(cells, frames)) + 3 * np.sin(np.arange(frames) / 9.0) + 5.0


@pytest.mark.parametrize("recognition", ["factorised", "autoregressive"])
def test_save_load_infer_is_identical(tmp_path, recognition):
  model = _model(recognition, upsample=2)
  f = _traces(cells=2, frames=60)
  f[1, [10, 11]] = np.nan
  before = model.infer(f, 60.0, num_samples=3, key=jax.random.key(4))
  deepspike.save_model(tmp_path / "m", model)
  loaded = deepspike.load_model(tmp_path / "m")
  assert loaded.frame_rate == 60.0 and loaded.training_data == "random init"
  assert loaded.config.to_dict() == model.config.to_dict()
  after = loaded.infer(f, 60.0, num_samples=3, key=jax.random.key(4))
  for a, b in zip(before, after):
    np.testing.assert_array_equal(a, b)
  if recognition == "factorised":  # Also at another frame rate (the resampling path).
    np.testing.assert_array_equal(model.infer(f, 30.0).expected_counts,
                                  loaded.infer(f, 30.0).expected_counts)
  assert before.samples.shape == (2, 3, 60)
  assert np.isnan(before.expected_counts[1, [10, 11]]).all()
  assert np.isfinite(np.delete(before.expected_counts[1], [10, 11])).all()


def test_infer_at_the_model_rate_is_the_network_on_the_normalised_trace():
  model = _model(upsample=2)
  f = _traces(cells=2)
  out = model.infer(f, 60.3)  # Within the 2 % tolerance: no resampling.
  assert not out.resampled and out.expected_counts.shape == (2, 150)
  for i in range(2):
    p = np.asarray(model.recognition.probabilities(model.params, data.normalise(f[i])[:, None]))
    p = p[:, 0].reshape(150, 2)
    np.testing.assert_allclose(out.expected_counts[i], p.sum(1), rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(out.probability[i], 1 - (1 - p[:, 0]) * (1 - p[:, 1]), rtol=2e-4,
                               atol=1e-6)
  one = model.infer(f[0], 60.0)  # A (T,) trace: no cell axis.
  assert one.expected_counts.shape == (150,) and one.valid.shape == (150,)


def test_samples_average_to_the_expected_counts():
  model = _model(upsample=2)
  out = model.infer(_traces(cells=1, frames=100), 60.0, num_samples=4000, key=jax.random.key(1))
  assert set(np.unique(out.samples)) <= {0.0, 1.0, 2.0}
  se = np.sqrt(out.expected_counts[0] / 4000) + 1e-3  # Per-frame std <= sqrt(mean) for counts.
  assert np.all(np.abs(out.samples[0].mean(0) - out.expected_counts[0]) < 5 * se)
  # Cell i draws with fold_in(key, first_cell + i): batching does not change its samples.
  f = _traces(cells=3, frames=100)
  whole = model.infer(f, 60.0, num_samples=2, key=jax.random.key(2))
  part = model.infer(f[2:], 60.0, num_samples=2, key=jax.random.key(2), first_cell=2)
  np.testing.assert_array_equal(whole.samples[2], part.samples[0])


def test_hand_worked_grid_and_bin_assignment():
  t30 = np.arange(3) / 30.0
  np.testing.assert_allclose(deepspike.model_grid(t30, 60.0), np.arange(5) / 60.0)
  # 60 Hz bins to 30 Hz frames [-1, 1), [1, 3), [3, 5) (units of 1/60 s): centres 0..4.
  np.testing.assert_array_equal(deepspike.bin_assignment(t30, np.arange(5) / 60.0), [0, 1, 1, 2, 2])
  # Two fine bins per 60 Hz frame: centres -0.25, 0.25, ..., 4.25.
  np.testing.assert_array_equal(deepspike.bin_assignment(t30, np.arange(5) / 60.0, 2),
                                [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
  # 120 Hz frames, 60 Hz grid: bin j's centre j/60 is frame 2j's time.
  t120 = np.arange(5) / 120.0
  np.testing.assert_allclose(deepspike.model_grid(t120, 60.0), [0, 1 / 60, 2 / 60])
  np.testing.assert_array_equal(deepspike.bin_assignment(t120, np.arange(3) / 60.0), [0, 2, 4])


def test_normalise_and_fill_matches_the_training_input():
  f = _traces(cells=1, frames=200)[0]
  valid = np.ones(200, bool)
  np.testing.assert_allclose(deepspike.normalise_and_fill(f, valid), data.normalise(f),
                             rtol=1e-5, atol=1e-5)
  g = np.arange(6.0) ** 2
  ok = np.array([False, True, True, False, False, True])
  # Gaps interpolated between valid neighbours (ends: the nearest one), in normalised units.
  z = np.asarray(deepspike.normalise_and_fill(np.where(ok, g, np.nan), ok))
  zv = z[ok]  # (1, 4, 25) normalised: median 4, noise median |diff| = 3 / (0.6745 sqrt 2).
  np.testing.assert_allclose(zv, (np.array([1, 4, 25]) - 4) / (3 / (0.6745 * np.sqrt(2))),
                             rtol=1e-5)
  np.testing.assert_allclose(z[[0, 3, 4]], [zv[0], zv[1] + (zv[2] - zv[1]) / 3,
                                            zv[1] + 2 * (zv[2] - zv[1]) / 3], rtol=1e-5)


def test_resampled_inference_hand_worked():
  """A 30 Hz recording on a 60 Hz model: the normalised trace interpolated onto the 60 Hz grid,
  then frame i gets the grid's bins 2i - 1 and 2i; a 120 Hz one with downsample="interpolate":
  every other frame's value, and the even frames get all the counts."""
  model = _model()
  net = lambda z: np.asarray(model.recognition.probabilities(model.params, z[:, None]))[:, 0]  # noqa: E731
  f = _traces(cells=1, frames=80)[0]
  z = data.normalise(f)
  out = model.infer(f, 30.0)
  assert out.resampled and out.expected_counts.shape == (80,)
  grid = np.arange(159) / 60.0
  p = net(np.interp(grid, np.arange(80) / 30.0, z))
  expect = np.concatenate([[p[0]], p[1::2] + p[2::2]])
  np.testing.assert_allclose(out.expected_counts, expect, rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(out.probability, 1 - np.concatenate(
      [[1 - p[0]], (1 - p[1::2]) * (1 - p[2::2])]), rtol=2e-4, atol=1e-6)
  assert out.expected_counts.sum() == pytest.approx(p.sum(), rel=1e-5)  # Every count kept.
  f120 = _traces(cells=1, frames=161)[0]
  out = model.infer(f120, 120.0, downsample="interpolate")
  p = net(data.normalise(f120)[::2])
  np.testing.assert_allclose(out.expected_counts[::2], p, rtol=2e-4, atol=1e-6)
  np.testing.assert_array_equal(out.expected_counts[1::2], 0.0)


def test_averaged_inference_hand_worked():
  """downsample="average": a 120 Hz recording on a 60 Hz model is averaged in pairs of frames
  (bins [t_0 - dt/2 + j/60, ...)), normalised at 60 Hz, and each bin's p is split evenly between
  its two frames; a NaN frame leaves its bin to the other frame, which gets all of its p."""
  model = _model()
  net = lambda z: np.asarray(model.recognition.probabilities(model.params, z[:, None]))[:, 0]  # noqa: E731
  f = _traces(cells=1, frames=161)[0]
  np.testing.assert_array_equal(deepspike.grid_bins(np.arange(5) / 120.0, 60.0), [0, 0, 1, 1, 2])
  out = model.infer(f, 120.0)  # The default.
  assert out.resampled and deepspike.DOWNSAMPLE == "average"
  pairs = np.append(f[:160].reshape(80, 2).mean(1), f[160])  # The last bin holds one frame.
  p = net(data.normalise(pairs))
  np.testing.assert_allclose(out.expected_counts[:160], np.repeat(p[:80] / 2, 2), rtol=2e-4,
                             atol=1e-6)
  np.testing.assert_allclose(out.expected_counts[160], p[80], rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(out.probability[:160], np.repeat(p[:80] / 2, 2), rtol=2e-4,
                             atol=1e-6)
  assert out.expected_counts.sum() == pytest.approx(p.sum(), rel=1e-5)  # Every count kept.
  g = f.copy()
  g[5] = np.nan  # Bin 2 = frames 4, 5: its mean is frame 4 alone.
  nan_out = model.infer(g, 120.0, downsample="average")
  pairs[2] = f[4]
  p = net(data.normalise(pairs))
  assert np.isnan(nan_out.expected_counts[5]) and np.isnan(nan_out.probability[5])
  np.testing.assert_allclose(nan_out.expected_counts[4], p[2], rtol=2e-4, atol=1e-6)
  # Samples: every spike in a valid frame of its bin; their mean is the expected count.
  out = model.infer(g, 120.0, downsample="average", num_samples=4000, key=jax.random.key(3))
  assert np.isnan(out.samples[:, 5]).all() and set(np.unique(out.samples[:, :5])) <= {0.0, 1.0}
  se = np.sqrt(np.nan_to_num(out.expected_counts) / 4000) + 1e-3
  assert np.all(np.abs(np.nan_to_num(out.samples.mean(0) - out.expected_counts)) < 5 * se)
  # Slower than the grid, or at its rate: "average" is the same as interpolation.
  for rate in (30.0, 60.0):
    interpolated = model.infer(f[:80], rate, downsample="interpolate")
    np.testing.assert_array_equal(model.infer(f[:80], rate).expected_counts,
                                  interpolated.expected_counts)
  with pytest.raises(ValueError, match="downsample must be one of"):
    model.infer(f, 120.0, downsample="mean")


def test_bad_input_is_refused_by_name(tmp_path):
  model = _model()
  f = _traces()
  for bad in (0.0, -30.0, float("nan"), "60", None, np.array([60.0, 30.0])):
    with pytest.raises(ValueError, match="frame_rate must be a positive number"):
      model.infer(f, bad)
  with pytest.raises(ValueError, match=r"frame_rate 30.000 Hz does not match frame_times "
                                       r"\(median interval: 60.000 Hz\)"):
    model.infer(f, 30.0, frame_times=np.arange(150) / 60.0)
  with pytest.raises(ValueError, match=r"frame_times must have shape \(150,\)"):
    model.infer(f, 60.0, frame_times=np.arange(10) / 60.0)
  with pytest.raises(ValueError, match=r"traces must have shape \(frames,\) or \(cells, frames\)"):
    model.infer(f[None], 60.0)
  with pytest.raises(ValueError, match=r"traces must have shape"):
    model.infer(np.zeros((0, 100)), 60.0)
  with pytest.raises(ValueError, match="receptive field of 9 frames"):
    model.infer(f[:, :8], 60.0)
  with pytest.raises(ValueError, match="shorter than the network's receptive field"):
    model.infer(f[:, :8], 120.0)  # 8 frames at 120 Hz: 4 at 60 Hz.
  g = f.copy()
  g[2] = np.nan
  with pytest.raises(ValueError, match=r"traces\[2\] has fewer than 2 finite frames"):
    model.infer(g, 60.0)
  g[2] = 1.0
  with pytest.raises(ValueError, match=r"traces\[2\] has no noise level"):
    model.infer(g, 60.0)


def test_save_and_load_refuse_what_they_cannot_use(tmp_path):
  model = _model()
  with pytest.raises(ValueError, match="no such model folder"):
    deepspike.load_model(tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no deepspike.json"):
    deepspike.load_model(tmp_path / "empty")
  path = deepspike.save_model(tmp_path / "m", model)
  with pytest.raises(ValueError, match="exists and is not an empty folder"):
    deepspike.save_model(path, model)
  deepspike.save_model(path, _model(seed=1), overwrite=True)
  assert not np.array_equal(deepspike.load_model(path).infer(_traces(), 60.0).expected_counts,
                            model.infer(_traces(), 60.0).expected_counts)
  meta = json.loads((path / "deepspike.json").read_text())
  meta["format_version"] = 99
  (path / "deepspike.json").write_text(json.dumps(meta))
  with pytest.raises(ValueError, match="format_version 99 is not one this calcium reads"):
    deepspike.load_model(path)
  with pytest.raises(ValueError, match="model must be a calcium.DeepSpike"):
    deepspike.save_model(tmp_path / "x", {"params": 1})
  config = train.default_config()
  config.model = "ds_bap"
  with pytest.raises(ValueError, match="one trace and one spike train per cell"):
    deepspike.save_model(tmp_path / "y", deepspike.DeepSpike(config, {}))
