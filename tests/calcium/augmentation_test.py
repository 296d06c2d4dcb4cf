"""Tests of calcium.augmentation: CASCADE's noise level, frame-rate bins, noise to a level."""
import jax
import numpy as np
import pytest

from calcium import augmentation, data


def _synthetic(rate, seconds, sigma=0.01, spike_rate=0.5, amplitude=0.2, tau=0.5, seed=0):
  """dF/F trace: white noise of std `sigma` plus exponential transients of Poisson spikes."""
  rng = np.random.default_rng(seed)
  frames = int(round(seconds * rate))
  t = np.arange(frames) / rate
  counts = rng.poisson(spike_rate / rate, frames)
  kernel = amplitude * np.exp(-np.arange(int(5 * tau * rate)) / (tau * rate))
  f = np.convolve(counts, kernel)[:frames] + sigma * rng.normal(size=frames)
  spikes = np.sort(np.repeat(t, counts) + rng.uniform(-0.5, 0.5, counts.sum()) / rate)
  return t, f, spikes


def test_noise_level_hand_worked():
  # Differences 1, 2, 3 (and one across a NaN frame, left out): median 2; 100 * 2 / sqrt(4).
  assert augmentation.cascade_noise_level([0.0, 1.0, 3.0, 6.0], 4.0) == pytest.approx(100.0)
  with_nan = [0.0, 1.0, 3.0, 6.0, np.nan, 0.0]
  assert augmentation.cascade_noise_level(with_nan, 4.0) == pytest.approx(100.0)
  with pytest.raises(ValueError, match="frame_rate must be a positive number"):
    augmentation.cascade_noise_level([0.0, 1.0], 0.0)
  with pytest.raises(ValueError, match="no two adjacent finite frames"):
    augmentation.cascade_noise_level([0.0, np.nan, 1.0], 4.0)


def test_bin_average_hand_worked():
  t = np.arange(6) / 6.0
  f = np.arange(1.0, 7.0)
  valid = np.ones(6, bool)
  # Bins of 1/3 s from -1/12 s: edges -1/12, 1/4, 7/12, 11/12.
  spikes = np.array([0.0, 0.2, 0.21, 0.9])
  new_t, new_f, new_valid, counts = augmentation.bin_average(t, f, valid, spikes, 3.0)
  np.testing.assert_allclose(new_t, [1 / 12, 5 / 12, 9 / 12])
  np.testing.assert_allclose(new_f, [1.5, 3.5, 5.5])
  np.testing.assert_array_equal(new_valid, [True, True, True])
  np.testing.assert_array_equal(counts, [3, 0, 1])
  np.testing.assert_array_equal(counts, data.spike_counts(spikes, new_t))  # Same edges.
  f[2], valid[2] = np.nan, False  # A NaN frame makes its bin invalid, the others unchanged.
  _, new_f, new_valid, _ = augmentation.bin_average(t, f, valid, spikes, 3.0)
  np.testing.assert_array_equal(new_valid, [True, False, True])
  np.testing.assert_allclose(new_f[[0, 2]], [1.5, 5.5])
  assert np.isnan(new_f[1])


def test_bin_average_conserves_spike_counts():
  t, f, spikes = _synthetic(60.0, 100.0, seed=1)
  valid = np.ones(t.size, bool)
  fine = data.spike_counts(spikes, t)
  assert fine.sum() == spikes.size  # Every spike lies in a 60 Hz frame of the recording.
  _, new_f, _, counts = augmentation.bin_average(t, f, valid, spikes, 15.0)
  # 6000 frames in 1500 complete bins of 4: counts and means are block sums and block means.
  np.testing.assert_array_equal(counts, fine.reshape(1500, 4).sum(1))
  np.testing.assert_allclose(new_f, f.reshape(1500, 4).mean(1))
  assert counts.sum() == spikes.size
  # A non-integer ratio (158 Hz -> 30 Hz): every spike of the complete bins is counted once.
  t2 = np.arange(15800) / 158.0
  spikes2 = np.sort(np.random.default_rng(2).uniform(-0.5 / 158, 100.0, 300))
  new_t, _, _, counts2 = augmentation.bin_average(t2, np.zeros(t2.size), np.ones(t2.size, bool),
                                                  spikes2, 30.0)
  lo, hi = new_t[0] - 1 / 60, new_t[-1] + 1 / 60
  assert counts2.sum() == np.sum((spikes2 >= lo) & (spikes2 < hi)) >= 297
  assert new_t.size == 3000 and hi <= t2[-1] + 0.5 / 158 + 1e-9  # 100 s: 3000 complete bins.
  new_t, _, _, _ = augmentation.bin_average(t2[:-3], np.zeros(t2.size - 3),
                                           np.ones(t2.size - 3, bool), spikes2, 30.0)
  assert new_t.size == 2999  # The last bin lacks frames: left out.


def test_bin_average_refuses_bad_input():
  t = np.arange(10) / 10.0
  with pytest.raises(ValueError, match="above the recording's own 10.000 Hz"):
    augmentation.bin_average(t, np.zeros(10), np.ones(10, bool), [], 20.0)
  with pytest.raises(ValueError, match="frame_rate must be a positive number"):
    augmentation.bin_average(t, np.zeros(10), np.ones(10, bool), [], -1.0)
  with pytest.raises(ValueError, match="must be \\(T,\\) arrays"):
    augmentation.bin_average(t, np.zeros(9), np.ones(10, bool), [], 5.0)


def test_add_noise_reaches_level():
  # 20,000 frames at 30 Hz: the relative standard error of median|diff| is about
  # 1.17 / sqrt(T) = 0.8 % for Gaussian differences; the tolerance, 4 %, is 5 of them (the
  # transients add a little to the differences' upper tail, not to their median).
  white = 0.01 * np.random.default_rng(3).normal(size=20_000)
  assert augmentation.cascade_noise_level(white, 30.0) == pytest.approx(
      100 * 0.6745 * np.sqrt(2) * 0.01 / np.sqrt(30), rel=0.04)  # Closed form, same tolerance.
  t, f, _ = _synthetic(30.0, 20_000 / 30.0, seed=3)
  own = augmentation.cascade_noise_level(f, 30.0)  # Above white noise's: the decays add to it.
  for i, level in enumerate((1.0, 2.0, 4.0, 8.0)):
    noisy, s = augmentation.add_noise_to_level(f, 30.0, level, jax.random.key(i))
    assert augmentation.cascade_noise_level(noisy, 30.0) == pytest.approx(level, rel=0.04), level
    sigma = lambda nu: nu / 100 * np.sqrt(30.0) / (0.6745 * np.sqrt(2))  # noqa: E731
    assert s == pytest.approx(np.sqrt(sigma(level) ** 2 - sigma(own) ** 2), rel=1e-9)
    # The added noise's std: standard error s / sqrt(2T) = 0.5 %; tolerance 2 %.
    assert np.std(noisy - f) == pytest.approx(s, rel=0.02)


def test_add_noise_keeps_nan_and_a_noisier_trace():
  _, f, _ = _synthetic(30.0, 100.0, sigma=0.1, seed=4)
  own = augmentation.cascade_noise_level(f, 30.0)
  same, s = augmentation.add_noise_to_level(f, 30.0, own / 2, jax.random.key(0))
  assert s == 0.0 and np.array_equal(same, f)
  f[5] = np.nan
  noisy, s = augmentation.add_noise_to_level(f, 30.0, 4 * own, jax.random.key(0))
  assert s > 0 and np.isnan(noisy[5]) and np.isfinite(np.delete(noisy, 5)).all()
  with pytest.raises(ValueError, match="level must be a positive number"):
    augmentation.add_noise_to_level(f, 30.0, 0.0, jax.random.key(0))


def test_augmented_copies_rates_levels_and_spikes():
  # Noise well above the transients' frame-to-frame decay, so that nu is the noise's own at
  # every rate (at 7.5 Hz the noise std per frame is 0.05 / sqrt(8) = 0.018, the decay's steps
  # about 0.001).
  t, f, spikes = _synthetic(60.0, 120.0, sigma=0.05, spike_rate=1.0, amplitude=0.05, seed=5)
  rec = data.Recording("cell#0", t + 3.0, f, spikes + 3.0, 60.0, np.ones(t.size, bool), 0)
  own = augmentation.cascade_noise_level(f, 60.0)
  copies = augmentation.augmented_copies(rec, (120.0, 60.0, 30.0, 15.0, 7.5),
                                         (0.0, 4.0, own / 10), 30.0, jax.random.key(0),
                                         upsample=2)
  # 120 Hz is above the recording's rate; the level below its own noise is left out.
  assert [(c.frame_rate, c.noise_level) for c in copies] == [
      (r, lv) for r in (60.0, 30.0, 15.0, 7.5) for lv in (0.0, 4.0)]
  for c in copies:
    assert c.trace.shape == c.valid.shape and c.spikes.shape == (2 * c.trace.size,)
    assert abs(c.trace.size - 120 * 30) <= 8  # On the model's 30 Hz grid.
    # Spikes conserved: those inside the copy's model grid, counted once each.
    grid_start = rec.frame_times[0] - 1 / 120 + 0.5 / c.frame_rate
    lo, hi = grid_start - 1 / 60, grid_start + (c.trace.size - 0.5) / 30
    assert c.spikes.sum() == np.sum((rec.spike_times >= lo) & (rec.spike_times < hi))
    if c.noise_level:
      assert c.achieved_noise_level == pytest.approx(4.0, rel=0.06)  # 3600 frames at 60 Hz.
    else:
      # Averaging white noise keeps nu (std / sqrt(k) per frame at rate / k); 900 frames at
      # 7.5 Hz: standard error 1.17 / sqrt(900) = 4 %, tolerance 15 %.
      assert c.achieved_noise_level == pytest.approx(own, rel=0.15)
  thirty = next(c for c in copies if c.frame_rate == 30.0 and not c.noise_level)
  assert data.noise_level(thirty.trace) == pytest.approx(1.0, rel=1e-6)  # Normalised at 30 Hz.
  with pytest.raises(ValueError, match="noise_levels must hold levels >= 0"):
    augmentation.augmented_copies(rec, (30.0,), (-1.0,), 30.0, jax.random.key(0))
  with pytest.raises(ValueError, match="model_rate must be a positive number"):
    augmentation.augmented_copies(rec, (30.0,), (0.0,), 0.0, jax.random.key(0))


def test_time_warp_hand_worked():
  rec = data.Recording("cell#0", np.arange(4) / 10.0, np.array([0.0, 1.0, 0.5, 0.25]),
                       np.array([0.05, 0.25]), 10.0, np.ones(4, bool), 0)
  fast = augmentation.time_warp(rec, 2.0)
  np.testing.assert_allclose(fast.frame_times, [0.0, 0.05, 0.1, 0.15])
  np.testing.assert_allclose(fast.spike_times, [0.025, 0.125])
  np.testing.assert_array_equal(fast.fluorescence, rec.fluorescence)  # Same samples.
  assert fast.frame_rate == 20.0 and fast.name == "cell#0@x2"
  # A decay of tau seconds becomes tau / 2: the trace halves in 0.1 s instead of 0.2 s.
  assert augmentation.time_warp(rec, 1.0) is rec
  with pytest.raises(ValueError, match="factor must be a positive number"):
    augmentation.time_warp(rec, 0.0)


def test_augmented_copies_with_time_warps():
  t, f, spikes = _synthetic(30.0, 60.0, sigma=0.05, spike_rate=1.0, amplitude=0.05, seed=6)
  rec = data.Recording("cell#0", t, f, spikes, 30.0, np.ones(t.size, bool), 0)
  key = jax.random.key(3)
  plain = augmentation.augmented_copies(rec, (30.0, 15.0), (0.0, 4.0), 30.0, key)
  warped = augmentation.augmented_copies(rec, (30.0, 15.0), (0.0, 4.0), 30.0, key,
                                         time_warps=(1.0, 2.0))
  # Factor 1's copies are exactly the unwarped ones (same key), then the factor-2 copies: the
  # recording at 60 Hz, bin-averaged to 30 and 15 Hz (60 Hz is not asked, so none at 60).
  assert len(warped) == len(plain) + 4
  for a, b in zip(plain, warped[:len(plain)], strict=True):
    np.testing.assert_array_equal(a.trace, b.trace)
    np.testing.assert_array_equal(a.spikes, b.spikes)
  fast = warped[len(plain):]
  assert [(c.frame_rate, c.noise_level) for c in fast] == [(30.0, 0.0), (30.0, 4.0),
                                                           (15.0, 0.0), (15.0, 4.0)]
  # The warped recording lasts 30 s: 900 frames on the 30 Hz grid, pairs of original frames
  # averaged (normalised at 30 Hz), and every spike kept.
  c = fast[0]
  assert c.trace.size == 900 and c.spikes.sum() == spikes.size
  np.testing.assert_allclose(c.trace, data.normalise(f.reshape(900, 2).mean(1)), rtol=1e-6,
                             atol=1e-9)
  with pytest.raises(ValueError, match=r"time_warps\[...\] must be a positive number"):
    augmentation.augmented_copies(rec, (30.0,), (0.0,), 30.0, key, time_warps=(-2.0,))
