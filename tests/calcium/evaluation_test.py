"""Tests of calcium.evaluation with hand-worked values."""
import numpy as np
import pytest

from calcium import evaluation


def test_bin_sum_hand_worked():
  t = np.arange(6) * 0.02  # Two frames per 40 ms bin.
  np.testing.assert_allclose(evaluation.bin_sum([1, 2, 3, 4, 5, np.nan], t), [3, 7, 5])
  np.testing.assert_allclose(
      evaluation.binned_spike_counts(np.array([-0.001, 0.01, 0.05, 0.09]), t), [2, 1, 1])


def test_spikefinder_correlation_hand_worked():
  t = np.arange(8) * 0.02
  spikes = np.array([0.0, 0.045, 0.05])  # Counts per bin: [1, 2, 0, 0].
  rate = np.array([0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5])  # Binned: [1, 1, 0, 0.5].
  # Pearson of [1,1,0,.5] and [1,2,0,0]: means .625, .75; cov sum 1.125; norms .6875, 2.75.
  expected = 1.125 / np.sqrt(0.6875 * 2.75)
  np.testing.assert_allclose(evaluation.spikefinder_correlation(rate, t, spikes), expected)
  np.testing.assert_allclose(evaluation.spike_count_ratio(rate, spikes), 2.5 / 3)


def test_timing_error_recovers_shift():
  rng = np.random.default_rng(0)
  counts = (rng.random(500) < 0.05).astype(float)
  late = np.roll(counts, 3)
  assert evaluation.timing_error(late, counts, 0.01, 6) == pytest.approx(0.03)
  assert evaluation.timing_error(np.roll(counts, -2), counts, 0.01, 6) == pytest.approx(-0.02)
  # No spike: every lag ties; NaN, not the first lag (-0.06 s).
  assert np.isnan(evaluation.timing_error(late, np.zeros(500), 0.01, 6))
  assert np.isnan(evaluation.timing_error(np.zeros(500), counts, 0.01, 6))


def test_evaluate_skips_a_recording_without_spikes_in_the_timing_error():
  t = np.arange(400) / 50.0
  rate = np.zeros(400)
  rate[[50, 200]] = 1
  out = evaluation.evaluate([rate, rate], [t, t], [t[[50, 200]], np.array([])])
  assert out["timing_error_s"] == 0.0  # The spike-free recording is left out (was -0.1 s mean).
  out = evaluation.evaluate([rate], [t], [np.array([])])
  assert np.isnan(out["timing_error_s"]) and np.isnan(out["count_ratio"])


def test_evaluate_perfect_prediction():
  t = np.arange(400) / 50.0
  rng = np.random.default_rng(1)
  spike_frames = np.sort(rng.choice(400, 30, replace=False))
  rate = np.zeros(400)
  rate[spike_frames] = 1
  out = evaluation.evaluate([rate], [t], [t[spike_frames]])
  assert out["correlation"] == pytest.approx(1.0)
  assert out["count_ratio"] == pytest.approx(1.0)
  assert out["timing_error_s"] == 0.0


def test_bad_input():
  with pytest.raises(ValueError, match="equal length"):
    evaluation.bin_sum(np.ones(3), np.arange(4.0))
  with pytest.raises(ValueError, match="same shape"):
    evaluation.pearson(np.ones(3), np.ones(4))
  with pytest.raises(ValueError, match="max_lag"):
    evaluation.timing_error(np.ones(3), np.ones(3), 0.1, 5)
  with pytest.raises(ValueError, match="non-empty"):
    evaluation.evaluate([], [], [])
