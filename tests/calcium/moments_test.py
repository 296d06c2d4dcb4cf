"""Tests of calcium.moments: autocovariance by numpy, SCF parameters recovered from moments."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from calcium import models, moments


def test_autocovariance_matches_numpy_correlate():
  x = np.random.default_rng(0).normal(size=50)
  xc = x - x.mean()
  ref = np.correlate(xc, xc, mode="full")[49:49 + 6] / 50
  np.testing.assert_allclose(moments.autocovariance(x, 5), ref, rtol=1e-12)


def test_scf_moments_recover_simulation_parameters():
  model = models.make_model("scf", frame_rate=60.0)
  truth = dict(tau=0.5, alpha=3.0, beta=0.4, sigma=1.0, rate=1.0)
  _, f = jax.jit(model.simulate, static_argnums=2)(model.init(**truth), jax.random.key(0),
                                                   120_000)
  est = moments.scf_moments(np.asarray(f)[:, 0], 60.0)
  np.testing.assert_allclose(est.gamma, math.exp(-1 / 30), rtol=2e-3)
  # 2000 s of data with ~2000 spikes: the third cumulant (alpha) and the rate are the noisiest
  # estimates; the tolerances are about three standard deviations of their spread over seeds.
  # Over seeds 0-4 the estimates spread by (std) 3.4% (tau), 2.7% (alpha), 7% (rate), 0.2%
  # (sigma) and 0.03 (beta).
  assert est.tau == pytest.approx(0.5, rel=0.1)
  assert est.alpha == pytest.approx(3.0, rel=0.1)
  assert est.rate == pytest.approx(1.0, rel=0.25)
  assert est.sigma == pytest.approx(1.0, rel=0.02)
  assert est.beta == pytest.approx(0.4, abs=0.15)
  # The noiseless trace's std: alpha sqrt(p (1 - p) / (1 - g^2)).
  p = 1 - math.exp(-1 / 60)
  assert est.signal_std == pytest.approx(3 * math.sqrt(p * (1 - p) / (1 - math.exp(-1 / 15))),
                                         rel=0.1)


def test_scf_moments_nan_without_skew_and_bad_input():
  noise = np.random.default_rng(0).normal(size=5000)
  est = moments.scf_moments(-np.abs(noise) + np.convolve(noise, np.ones(5) / 5, "same"), 60.0)
  assert math.isnan(est.alpha) and math.isnan(est.rate)
  with pytest.raises(ValueError, match="finite 1-D trace"):
    moments.scf_moments(np.array([1.0, np.nan] * 20), 60.0)
  with pytest.raises(ValueError, match="frame_rate must be positive"):
    moments.scf_moments(noise, 0.0)
  with pytest.raises(ValueError, match="max_lag"):
    moments.autocovariance(noise[:3], 3)


def test_rise_decay_moments_recover_ar2_kinetics_and_spike_size():
  model = models.make_model("scf_rise", frame_rate=60.0)
  truth = dict(tau=1.0, tau_rise=0.1, alpha=4.0, beta=0.0, sigma=1.0, rate=1.0)
  _, f = jax.jit(model.simulate, static_argnums=2)(model.init(**truth), jax.random.key(0),
                                                   120_000)
  est = moments.rise_decay_moments(np.asarray(f)[:, 0], 60.0)
  # Seeds 0-4 spread by (std) 5% (tau), 8% (tau_rise), 1% (noise); tolerances ~3 std.
  assert est.tau == pytest.approx(1.0, rel=0.15)
  assert est.tau_rise == pytest.approx(0.1, rel=0.25)
  assert est.noise_std == pytest.approx(1.0, rel=0.05)
  kernel = moments.rise_decay_kernel(1.0, 0.1, 60.0)
  assert kernel.max() == pytest.approx(1.0) and kernel[0] < 0.2
  # The kernel is the model's noiseless response to one spike at alpha = 1, beta = 0.
  one_spike = np.eye(kernel.size, 1)  # A spike in the first frame.
  response = model.mean_fluorescence(model.init(tau=1.0, tau_rise=0.1, alpha=1.0, beta=0.0),
                                     jnp.asarray(one_spike, jnp.float32))
  np.testing.assert_allclose(np.asarray(response)[:, 0], kernel, atol=1e-5)
  # At the true rate the second moment gives the true spike size.
  assert moments.alpha_at_rate(est.signal_var, kernel, 1.0, 60.0) == pytest.approx(4.0, rel=0.1)
  # At four times the rate, about half the size: alpha scales as 1 / sqrt(p (1 - p)).
  p1, p4 = -math.expm1(-1 / 60), -math.expm1(-4 / 60)
  assert (moments.alpha_at_rate(est.signal_var, kernel, 4.0, 60.0) / moments.alpha_at_rate(
      est.signal_var, kernel, 1.0, 60.0)) == pytest.approx(math.sqrt(p1 * (1 - p1) / (p4 * (
          1 - p4))), rel=1e-9)


def test_rise_decay_moments_nan_on_white_noise_and_bad_input():
  f = np.random.default_rng(0).normal(size=5000)
  est = moments.rise_decay_moments(f, 60.0)
  assert math.isnan(est.tau) and math.isnan(est.tau_rise)
  assert math.isnan(moments.alpha_at_rate(-1.0, np.ones(3), 1.0, 60.0))
  with pytest.raises(ValueError, match="frame_rate"):
    moments.rise_decay_moments(f, 0.0)
  with pytest.raises(ValueError, match="finite 1-D"):
    moments.rise_decay_moments(f[:10], 60.0)
