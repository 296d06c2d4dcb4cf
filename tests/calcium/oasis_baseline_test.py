"""Tests of the OASIS wrapper (skipped where oasis-deconv is absent)."""
import numpy as np
import pytest

from calcium import oasis_baseline

pytest.importorskip("oasis", reason="oasis-deconv not installed (bench extra)")


def test_oasis_recovers_isolated_spikes():
  rng = np.random.default_rng(0)
  t = 3000
  s = np.zeros(t)
  s[rng.choice(np.arange(50, t - 50), 30, replace=False)] = 1
  c = np.zeros(t)
  for i in range(1, t):
    c[i] = 0.95 * c[i - 1] + s[i]
  y = c + 0.1 * rng.normal(size=t)
  for order in (1, 2):
    est = oasis_baseline.oasis_deconvolve(y, order)
    assert est.shape == (t,) and np.all(est >= -1e-8)
    assert np.corrcoef(est, s)[0, 1] > 0.8


def test_bad_input():
  with pytest.raises(ValueError, match="order must be 1 or 2"):
    oasis_baseline.oasis_deconvolve(np.ones(10), 3)
  with pytest.raises(ValueError, match="finite 1-D"):
    oasis_baseline.oasis_deconvolve(np.array([1.0, np.nan, 2.0]))
