"""Tests of calcium.mcmc against exact marginals by enumeration."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from calcium import mcmc, models


def test_gibbs_marginals_match_enumeration(x64):
  model = models.make_model("scf", frame_rate=10.0)
  raw = model.init(tau=0.3, alpha=1.0, beta=0.2, sigma=0.5, rate=2.0)
  t = 8
  s_true, f = model.simulate(raw, jax.random.key(3), t)
  all_s = ((np.arange(2 ** t)[:, None] >> np.arange(t)) & 1).astype(float)[..., None]
  logp = jax.vmap(lambda s: model.log_joint(raw, s, f))(jnp.asarray(all_s))
  w = np.exp(np.asarray(logp) - np.max(logp))
  exact = (w[:, None] * all_s[:, :, 0]).sum(0) / w.sum()
  est = jax.jit(mcmc.scf_gibbs_marginals, static_argnums=(0, 4, 5, 6))(
      model, raw, f, jax.random.key(0), 3000, 100, t)
  # Rao-Blackwellised over 2900 correlated sweeps: Monte Carlo error well below 0.02.
  np.testing.assert_allclose(est, exact, atol=0.02)
  assert np.ptp(exact) > 0.3  # The data are informative, so the check is not trivial.
  # Started from the true spikes instead of none: the same posterior.
  est_init = jax.jit(mcmc.scf_gibbs_marginals, static_argnums=(0, 4, 5, 6))(
      model, raw, f, jax.random.key(1), 3000, 100, t, s_true[:, 0])
  np.testing.assert_allclose(est_init, exact, atol=0.02)


def test_init_spikes_residual_is_consistent():
  # A chain started from no spikes explicitly is the default chain, draw for draw; a chain started
  # at a spike train with its calcium removed from the residual must see the same conditionals at
  # the first site as the default chain sees on the trace minus that calcium.
  model = models.make_model("scf", frame_rate=30.0)
  raw = model.init(tau=0.5, alpha=2.0, beta=0.1, sigma=0.4, rate=1.0)
  s_true, f = model.simulate(raw, jax.random.key(2), 60)
  run = jax.jit(mcmc.scf_gibbs_marginals, static_argnums=(0, 4, 5, 6))
  default = run(model, raw, f, jax.random.key(0), 4, 1, 40)
  zeros = run(model, raw, f, jax.random.key(0), 4, 1, 40, jnp.zeros(60))
  np.testing.assert_array_equal(default, zeros)
  s0 = np.zeros(60)
  s0[[10, 30]] = 1.0
  p = model.constrain(raw)
  kernel = p["alpha"] * np.exp(-model.frame_dt / p["tau"]) ** np.arange(40)
  calcium = np.convolve(s0, kernel)[:60]
  # One sweep, site 0: its conditional depends on the residual only (no earlier sites).
  a = run(model, raw, f, jax.random.key(0), 1, 0, 40, jnp.asarray(s0))
  b = run(model, raw, f - calcium[:, None], jax.random.key(0), 1, 0, 40)
  np.testing.assert_allclose(a[0], b[0], rtol=1e-5)


def test_shorter_chain_is_the_start_of_a_longer_one():
  # Same key: the first sweeps of a 3-sweep chain are the 1- and 2-sweep chains (the benchmark's
  # budget ladder relies on it), seen through the Rao-Blackwellised means.
  model = models.make_model("scf", frame_rate=30.0)
  raw = model.init(tau=0.5, alpha=2.0, beta=0.1, sigma=0.4, rate=1.0)
  _, f = model.simulate(raw, jax.random.key(4), 50)
  run = jax.jit(mcmc.scf_gibbs_marginals, static_argnums=(0, 4, 5, 6))
  m1, m2, m3 = (np.asarray(run(model, raw, f, jax.random.key(0), n, 0, 30)) for n in (1, 2, 3))
  sweep2 = np.asarray(run(model, raw, f, jax.random.key(0), 2, 1, 30))
  sweep3 = np.asarray(run(model, raw, f, jax.random.key(0), 3, 2, 30))
  np.testing.assert_allclose(2 * m2 - m1, sweep2, atol=1e-5)
  np.testing.assert_allclose(3 * m3 - 2 * m2, sweep3, atol=1e-5)
  assert np.abs(sweep2 - m1).max() > 0.01  # The sweeps differ, so the check is not trivial.


def test_bad_input():
  with pytest.raises(ValueError, match="'scf' model"):
    mcmc.scf_gibbs_marginals(models.make_model("scdf"), {}, jnp.zeros((5, 1)), jax.random.key(0))
  m = models.make_model("scf")
  with pytest.raises(ValueError, match="burn_in"):
    mcmc.scf_gibbs_marginals(m, m.init(), jnp.zeros((5, 1)), jax.random.key(0), 10, 10)
  with pytest.raises(ValueError, match=r"shape \(T, 1\)"):
    mcmc.scf_gibbs_marginals(m, m.init(), jnp.zeros((5,)), jax.random.key(0))
  with pytest.raises(ValueError, match=r"init_spikes must have shape \(5,\)"):
    mcmc.scf_gibbs_marginals(m, m.init(), jnp.zeros((5, 1)), jax.random.key(0),
                             init_spikes=jnp.zeros(4))
