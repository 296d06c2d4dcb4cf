"""Tests of calcium.calibration (reliability, credible-interval coverage, randomised PIT) and of
the frame-spreading 40 ms score in calcium.evaluation."""
import jax
import numpy as np
import pytest

from calcium import augmentation, calibration, data, evaluation


def test_reliability_hand_worked():
  rel = calibration.reliability([0.05, 0.15, 0.15, 0.95, np.nan], [0, 1, 0, 1, 1], num_bins=10)
  np.testing.assert_array_equal(rel.counts, [1, 2, 0, 0, 0, 0, 0, 0, 0, 1])
  np.testing.assert_allclose(rel.predicted[[0, 1, 9]], [0.05, 0.15, 0.95])
  np.testing.assert_allclose(rel.observed[[0, 1, 9]], [0.0, 0.5, 1.0])
  assert np.isnan(rel.predicted[2]) and np.isnan(rel.observed[2])
  # ECE = (1 * 0.05 + 2 * 0.35 + 1 * 0.05) / 4; Brier = (0.05^2 + 0.85^2 + 0.15^2 + 0.05^2) / 4.
  assert rel.ece == pytest.approx(0.2)
  assert rel.brier == pytest.approx((0.0025 + 0.7225 + 0.0225 + 0.0025) / 4)
  assert calibration.reliability([1.0], [1]).counts[-1] == 1  # p = 1 is in the last bin.


def test_reliability_of_calibrated_and_overconfident_predictors():
  rng = np.random.default_rng(0)
  p = rng.uniform(size=40_000)
  y = (rng.uniform(size=p.size) < p).astype(float)
  rel = calibration.reliability(p, y)
  # Calibrated: each bin's observed frequency within 4 binomial standard errors of its mean p.
  se = calibration.binomial_se(rel.predicted, rel.counts)
  assert np.all(np.abs(rel.observed - rel.predicted) <= 4 * se)
  assert rel.ece < 0.015  # Mean |gap| of 10 bins of 4000: about 0.8 * 0.007.
  over = calibration.reliability(np.clip(1.5 * (p - 0.5) + 0.5, 0, 1), y)  # Too extreme.
  assert over.ece > 0.08 and over.observed[0] > over.predicted[0] + 0.1


def test_reliability_refuses_bad_input():
  with pytest.raises(ValueError, match="probability and event must have the same size"):
    calibration.reliability([0.1, 0.2], [1])
  with pytest.raises(ValueError, match="probability must lie in"):
    calibration.reliability([1.5], [1])
  with pytest.raises(ValueError, match="event must be 0 or 1"):
    calibration.reliability([0.5], [2])
  with pytest.raises(ValueError, match="num_bins must be a positive integer"):
    calibration.reliability([0.5], [1], num_bins=0)


def test_window_sums():
  x = np.arange(7.0)
  np.testing.assert_array_equal(calibration.window_sums(x, 3), [3.0, 12.0])
  x[4] = np.nan
  out = calibration.window_sums(np.stack([x, x]), 2)
  assert out.shape == (2, 3) and np.isnan(out[0, 2]) and out[1, 1] == 5.0
  with pytest.raises(ValueError, match="window must be a positive integer"):
    calibration.window_sums(x, 0)


def test_interval_coverage_hand_worked():
  # Ten samples 0 0 1 1 2 3 3 3 4 5: F(0) = 0.2, F(1) = 0.4, F(3) = 0.8, F(4) = 0.9.
  s = np.array([[0, 0, 1, 1, 2, 3, 3, 3, 4, 5]], float).T.repeat(5, axis=1)  # (10, 5)
  lo, hi = calibration.credible_intervals(s, (0.8, 0.5))
  np.testing.assert_array_equal(lo[:, 0], [0, 1])  # Q(0.1) = 0, Q(0.25) = 1.
  np.testing.assert_array_equal(hi[:, 0], [4, 3])  # Q(0.9) = 4, Q(0.75) = 3.
  y = np.array([0, 1, 3, 4, 5])
  # [0, 4] holds 0, 1, 3, 4; [1, 3] holds 1, 3.
  np.testing.assert_allclose(calibration.interval_coverage(s, y, (0.8, 0.5)), [0.8, 0.4])
  with pytest.raises(ValueError, match="levels must be credible levels in"):
    calibration.interval_coverage(s, y, (1.0,))
  with pytest.raises(ValueError, match="samples must be \\(K, W\\) and observed"):
    calibration.interval_coverage(s, y[:3], (0.5,))


def test_randomised_pit_hand_worked():
  s = np.array([[0, 0, 1, 1, 2, 3, 3, 3, 4, 5]], float).T.repeat(4, axis=1)
  u = calibration.randomised_pit(s, np.array([2.5, -1.0, 9.0, 3.0]), jax.random.key(0))
  # y = 2.5, -1, 9: no sample equal, u = F(y) exactly; y = 3: u uniform in [F(2), F(3)] = [.5, .8].
  np.testing.assert_allclose(u[:3], [0.5, 0.0, 1.0])
  assert 0.5 <= u[3] <= 0.8
  # Many windows with y = 1 (u uniform on [0.2, 0.4]) at c = 0.5 ([0.25, 0.75]): inside with
  # probability 0.15 / 0.2 = 0.75; 20,000 windows, binomial SE 0.003, tolerance 4 SE.
  many = np.array([[0, 0, 1, 1, 2, 3, 3, 3, 4, 5]], float).T.repeat(20_000, axis=1)
  cov = calibration.pit_coverage(many, np.ones(20_000), (0.5,), jax.random.key(1))
  assert cov[0] == pytest.approx(0.75, abs=4 * np.sqrt(0.75 * 0.25 / 20_000))


def test_coverage_of_a_calibrated_and_an_overconfident_posterior():
  # Counts drawn from the same Poisson law as the K posterior samples: randomised-PIT coverage is
  # the nominal level up to the binomial SE of W windows (4 SE) and 1 / K from the finite sample.
  rng = np.random.default_rng(1)
  windows, k, levels = 4000, 200, (0.5, 0.8, 0.95)
  lam = rng.uniform(0.2, 6.0, windows)
  samples = rng.poisson(lam, (k, windows)).astype(float)
  y = rng.poisson(lam).astype(float)
  pit = calibration.pit_coverage(samples, y, levels, jax.random.key(2))
  bound = 4 * calibration.binomial_se(np.array(levels), windows) + 1.0 / k
  assert np.all(np.abs(pit - levels) <= bound), pit
  # Ends included: at least nominal (minus the same bound) for a calibrated posterior of counts.
  inc = calibration.interval_coverage(samples, y, levels)
  assert np.all(inc >= np.array(levels) - bound) and inc[0] > 0.6  # Well above 0.5 here.
  # A posterior too narrow (samples at the rounded rate only) covers far less than nominal.
  narrow = np.repeat(np.round(lam)[None], k, axis=0)
  assert np.all(calibration.pit_coverage(narrow, y, levels, jax.random.key(3))
                < np.array(levels) - 0.15)


def test_spread_bin_sum_hand_worked():
  # Frames at 0.5 and 1.5 s (each 1 s long) with 2 and 4 spikes, bins of 0.5 s from 0.
  np.testing.assert_allclose(
      evaluation.spread_bin_sum(np.array([2.0, 4.0]), np.array([0.5, 1.5]), 0.0, 4, 0.5),
      [1.0, 1.0, 2.0, 2.0])
  # A bin straddling the frames' edge (1/4 of each frame), one inside the second frame, one
  # across the last frame's end (nothing after 2 s), one past it.
  np.testing.assert_allclose(
      evaluation.spread_bin_sum(np.array([2.0, 4.0]), np.array([0.5, 1.5]), 0.75, 4, 0.5),
      [0.5 + 1.0, 2.0, 1.0, 0.0])
  # Frames of 40 ms on 40 ms bins aligned with them: the same as bin_sum.
  t = 0.02 + 0.04 * np.arange(50)
  v = np.random.default_rng(0).uniform(size=50)
  np.testing.assert_allclose(evaluation.spread_bin_sum(v, t, 0.0, 50), evaluation.bin_sum(v, t))


def test_spread_correlation_same_truth_at_every_rate():
  # A 60 Hz prediction equal to the true counts, block-averaged to 15 Hz (sums of 4 frames),
  # scores below 1 at 40 ms bins but higher than a constant-shifted one; at 60 Hz it is near 1.
  rng = np.random.default_rng(0)
  t = np.arange(6000) / 60.0
  spikes = np.sort(rng.uniform(-1 / 120, 100 - 1 / 120, 400))
  counts = data.spike_counts(spikes, t)
  origin, end = -1 / 120, 100 - 1 / 120
  r60 = evaluation.spread_correlation(counts, t, spikes, origin, end)
  t15, c15, _ = augmentation.decimate(t, counts, np.ones(t.size, bool), 15.0)
  r15 = evaluation.spread_correlation(4 * c15, t15, spikes, origin, end)
  assert r60 > 0.85 and 0.3 < r15 < r60
  with pytest.raises(ValueError, match="fewer than 2 bins"):
    evaluation.spread_correlation(counts, t, spikes, 0.0, 0.05)


def test_decimate_methods():
  t = np.arange(8) / 8.0
  f = np.arange(8.0)
  ok = np.ones(8, bool)
  ta, fa, _ = augmentation.decimate(t, f, ok, 2.0)
  np.testing.assert_allclose(fa, [1.5, 5.5])
  np.testing.assert_allclose(ta, [3 / 16, 11 / 16])
  td, fd, _ = augmentation.decimate(t, f, ok, 2.0, "drop")
  np.testing.assert_allclose(fd, [0.0, 4.0])
  np.testing.assert_allclose(td, [0.0, 0.5])
  with pytest.raises(ValueError, match="integer multiple of frame_rate 3.000"):
    augmentation.decimate(t, f, ok, 3.0, "drop")
  with pytest.raises(ValueError, match="method must be one of"):
    augmentation.decimate(t, f, ok, 2.0, "skip")
