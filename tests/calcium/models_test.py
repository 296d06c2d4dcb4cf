"""Tests of calcium.models against numpy references and closed forms."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from calcium import models


def _np_gauss_ll(f, mu, sigma):
  return np.sum(-0.5 * ((f - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi))


def test_scf_log_likelihood_matches_numpy_loop(x64):
  model = models.make_model("scf", frame_rate=50.0, upsample=2)
  raw = model.init(tau=0.3, alpha=1.5, beta=0.2, sigma=0.4, rate=3.0)
  rng = np.random.default_rng(0)
  spikes = (rng.random((40, 1)) < 0.1).astype(float)
  fluo = rng.normal(size=(20, 1))
  gamma = math.exp(-0.01 / 0.3)
  c, fine = 0.0, []
  for s in spikes[:, 0]:
    c = gamma * c + s
    fine.append(1.5 * c + 0.2)
  mu = np.asarray(fine).reshape(20, 2).mean(1)
  p = 1 - math.exp(-3.0 * 0.01)
  ref_prior = np.sum(spikes * math.log(p) + (1 - spikes) * math.log(1 - p))
  np.testing.assert_allclose(model.mean_fluorescence(raw, spikes)[:, 0], mu, rtol=1e-12)
  np.testing.assert_allclose(model.log_likelihood(raw, spikes, fluo),
                             _np_gauss_ll(fluo[:, 0], mu, 0.4), rtol=1e-12)
  np.testing.assert_allclose(model.log_joint(raw, spikes, fluo),
                             _np_gauss_ll(fluo[:, 0], mu, 0.4) + ref_prior, rtol=1e-12)


def test_mask_skips_frames_and_nan_does_not_propagate(x64):
  model = models.make_model("scf")
  raw = model.init()
  spikes = jnp.zeros((10, 1)).at[3, 0].set(1.0)
  fluo = jnp.linspace(0, 1, 10)[:, None]
  mask = jnp.arange(10) != 4
  ll_masked = model.log_likelihood(raw, spikes, fluo, mask)
  ll_nan = model.log_likelihood(raw, spikes, fluo.at[4, 0].set(jnp.nan), mask)
  mu = np.asarray(model.mean_fluorescence(raw, spikes))[:, 0]
  keep = np.asarray(mask)
  np.testing.assert_allclose(ll_masked, _np_gauss_ll(np.asarray(fluo)[keep, 0], mu[keep], 0.3),
                             rtol=1e-12)
  np.testing.assert_allclose(ll_nan, ll_masked, rtol=1e-12)
  grad = jax.grad(model.log_likelihood)(raw, spikes, fluo.at[4, 0].set(jnp.nan), mask)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))


def test_scdf_matches_numpy_exact_binding(x64):
  model = models.make_model("scdf", frame_rate=30.0)
  values = dict(tau=0.4, k_on=15.0, k_off=4.0, hill=2.5, alpha=2.0, beta=-0.1, sigma=0.2, rate=2.0)
  raw = model.init(**values)
  spikes = np.zeros((30, 1))
  spikes[[2, 3, 17], 0] = 1
  dt = 1 / 30.0
  c = b = 0.0
  mu = []
  for s in spikes[:, 0]:
    c = math.exp(-dt / 0.4) * c + s
    drive = 15.0 * c ** 2.5
    rate = drive + 4.0
    beq = drive / rate
    b = beq + (b - beq) * math.exp(-rate * dt)
    mu.append(2.0 * b - 0.1)
  np.testing.assert_allclose(model.mean_fluorescence(raw, spikes)[:, 0], mu, rtol=1e-10)
  # Saturation: the bound fraction never exceeds one even for a burst of spikes every bin.
  burst = np.ones((30, 1))
  assert float(jnp.max(model.mean_fluorescence(raw, burst))) <= 2.0 - 0.1 + 1e-12


def test_mlphys_matches_numpy_euler(x64):
  model = models.make_model("mlphys", frame_rate=100.0)
  v = dict(c0=0.2, amplitude=0.3, tau=0.8, tau_rise=0.03, hill=1.7, kappa=0.4, f0=1.3, sigma=0.05,
           rate=1.0)
  raw = model.init(**v)
  spikes = np.zeros((25, 1))
  spikes[[1, 10, 11], 0] = 1
  dt = 0.01
  c, y, mu = 0.2, 0.0, []
  for s in spikes[:, 0]:
    c = c - dt / 0.8 * (c - 0.2) + 0.3 * s
    x = c ** 1.7 - 0.2 ** 1.7
    y = y + dt / 0.03 * (x / (1 + 0.4 * x) - y)
    mu.append(1.3 * (1 + y))
  np.testing.assert_allclose(model.mean_fluorescence(raw, spikes)[:, 0], mu, rtol=1e-10)
  phys = model.constrain(raw)
  for k, val in v.items():
    np.testing.assert_allclose(phys[k], val, rtol=1e-10)


def test_ds_bap_two_traces(x64):
  model = models.make_model("ds_bap", frame_rate=20.0)
  raw = model.init(tau=(0.2, 0.6), event_amplitude=0.7, alpha=(1.0, 2.0), beta=(0.1, -0.2))
  spikes = np.zeros((12, 2))
  spikes[2, 0] = 1  # A bAP: both traces.
  spikes[7, 1] = 1  # A spine event: spine only.
  mu = np.asarray(model.mean_fluorescence(raw, spikes))
  gs, gd = math.exp(-0.05 / 0.2), math.exp(-0.05 / 0.6)
  t = np.arange(12)
  spine = np.where(t >= 2, gs ** (t - 2), 0) + 0.7 * np.where(t >= 7, gs ** (t - 7), 0)
  dend = np.where(t >= 2, gd ** (t - 2), 0)
  np.testing.assert_allclose(mu[:, 0], spine + 0.1, rtol=1e-10)
  np.testing.assert_allclose(mu[:, 1], 2 * dend - 0.2, rtol=1e-10)


def test_drift_adds_cosine_basis(x64):
  model = models.make_model("scf", drift_terms=2, drift_period=100)
  raw = model.init(drift=[[0.5], [-0.25]], beta=0.0)
  spikes = jnp.zeros((10, 1))
  t = np.arange(30, 40)
  ref = 0.5 * np.cos(np.pi * (t + 0.5) / 100) - 0.25 * np.cos(2 * np.pi * (t + 0.5) / 100)
  np.testing.assert_allclose(model.mean_fluorescence(raw, spikes, frame_offset=30)[:, 0], ref,
                             atol=1e-12)


def test_scf_simulation_stationary_moments():
  # AR(1) driven by Bernoulli(p): stationary mean p / (1 - g), variance p (1 - p) / (1 - g^2).
  model = models.make_model("scf", frame_rate=20.0)
  raw = model.init(tau=0.1, alpha=1.0, beta=0.0, sigma=1e-3, rate=4.0)
  phys = model.constrain(raw)
  p, g = float(phys["spike_prob"]), math.exp(-0.05 / 0.1)
  n = 40_000
  _, f = jax.jit(model.simulate, static_argnums=2)(raw, jax.random.key(1), n)
  f = np.asarray(f)[100:, 0]
  mean_ref, var_ref = p / (1 - g), p * (1 - p) / (1 - g ** 2) + 1e-6
  # Standard error of the mean with AR(1) autocorrelation g: sqrt(var (1 + g) / ((1 - g) n)).
  se = math.sqrt(var_ref * (1 + g) / ((1 - g) * n))
  assert abs(f.mean() - mean_ref) < 4 * se
  assert abs(f.var() / var_ref - 1) < 0.05
  np.testing.assert_allclose(np.corrcoef(f[1:], f[:-1])[0, 1], g, atol=0.03)


def test_spike_rate_of_simulation():
  model = models.make_model("ds_bap", frame_rate=10.0, upsample=3)
  raw = model.init(rate=(2.0, 5.0))
  s, f = model.simulate(raw, jax.random.key(0), 20_000)
  assert s.shape == (60_000, 2) and f.shape == (20_000, 2)
  p = 1 - np.exp(-np.array([2.0, 5.0]) / 30)
  se = np.sqrt(p * (1 - p) / 60_000)
  assert np.all(np.abs(np.asarray(s).mean(0) - p) < 4 * se)


def test_vmap_over_cells_and_grad_finite():
  model = models.make_model("scdf")
  raws = jax.vmap(lambda a: model.init(alpha=1.0) | {"alpha": a})(jnp.array([0.0, 1.0]))
  spikes = jnp.zeros((2, 16, 1)).at[:, 4, 0].set(1)
  f = jnp.ones((2, 16, 1))
  ll = jax.vmap(model.log_joint)(raws, spikes, f)
  assert ll.shape == (2,) and bool(jnp.all(jnp.isfinite(ll)))
  g = jax.grad(lambda r: jnp.sum(jax.vmap(model.log_joint)(r, spikes, f)))(raws)
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_bad_input():
  with pytest.raises(ValueError, match="name must be one of"):
    models.make_model("gcamp")
  with pytest.raises(ValueError, match="upsample"):
    models.make_model("scf", upsample=0)
  model = models.make_model("scf", upsample=2)
  raw = model.init()
  with pytest.raises(ValueError, match="spikes must have shape"):
    model.mean_fluorescence(raw, jnp.zeros((5, 1)))
  with pytest.raises(ValueError, match="fluorescence must have shape"):
    model.log_likelihood(raw, jnp.zeros((10, 1)), jnp.zeros((5, 2)))
  with pytest.raises(ValueError, match="bins per frame"):
    model.log_likelihood(raw, jnp.zeros((8, 1)), jnp.zeros((5, 1)))
  with pytest.raises(ValueError, match="must be > 0"):
    model.init(tau=-1.0)
  with pytest.raises(ValueError, match="unknown parameters"):
    model.init(gain=1.0)


def test_scf_rise_matches_ar2_recursion_with_unit_peak(x64):
  # c_t = (d + r) c_{t-1} - d r c_{t-2} + s_t, divided by the kernel's peak: one spike peaks at
  # alpha above beta, and frames average the fine bins (upsample 2).
  model = models.make_model("scf_rise", frame_rate=30.0, upsample=2)
  raw = model.init(tau=0.8, tau_rise=0.07, alpha=4.0, beta=0.3, sigma=0.5, rate=2.0)
  spikes = np.zeros((400, 1))
  spikes[[5, 150, 151, 300], 0] = 1
  dt = 1 / 60.0
  d, r = math.exp(-dt / 0.8), math.exp(-dt / 0.07)
  h = (d ** (np.arange(2000) + 1) - r ** (np.arange(2000) + 1)) / (d - r)
  c1 = c2 = 0.0
  fine = []
  for s in spikes[:, 0]:
    c1, c2 = (d + r) * c1 - d * r * c2 + s, c1
    fine.append(4.0 * c1 / h.max() + 0.3)
  mu = np.asarray(fine).reshape(200, 2).mean(1)
  np.testing.assert_allclose(model.mean_fluorescence(raw, spikes)[:, 0], mu, rtol=1e-10)
  one = np.zeros((400, 1))
  one[0, 0] = 1
  fine_one = model.mean_fluorescence(model.init(tau=0.8, tau_rise=0.07, alpha=4.0, beta=0.3),
                                     np.repeat(one, 1, 0))
  assert float(np.max(fine_one)) == pytest.approx(0.3 + 4.0, rel=0.02)  # Frame mean of the peak.
  # Hand-checkable peak: d = 0.5, r = 0.25: h = 1, 0.75, 0.4375, ... so the peak is h_0 = 1.
  assert float(models.rise_decay_peak(0.5, 0.25)) == pytest.approx(1.0)
  # d = 0.9, r = 0.5: h_k = (0.9^(k+1) - 0.5^(k+1)) / 0.4 = 1, 1.4, 1.51, 1.484: peak 1.51.
  assert float(models.rise_decay_peak(0.9, 0.5)) == pytest.approx(1.51, rel=1e-9)


def test_scf_rise_equal_time_constants_and_gradients_finite(x64):
  model = models.make_model("scf_rise", frame_rate=60.0)
  raw = model.init(tau=0.5, tau_rise=0.5, alpha=2.0)
  spikes = jnp.zeros((200, 1)).at[10, 0].set(1.0)
  mu = model.mean_fluorescence(raw, spikes)
  assert float(jnp.max(mu)) == pytest.approx(2.0, rel=1e-3)
  grads = jax.grad(lambda p: model.log_joint(p, spikes, mu + 0.1))(raw)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  raw2 = model.init(tau=0.05, tau_rise=0.5, alpha=2.0)  # Swapped roles give the same kernel.
  raw3 = model.init(tau=0.5, tau_rise=0.05, alpha=2.0)
  np.testing.assert_allclose(model.mean_fluorescence(raw2, spikes),
                             model.mean_fluorescence(raw3, spikes), rtol=1e-12)
