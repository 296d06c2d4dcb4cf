"""Tests of the tanh-squashed Gaussian policy distribution."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from agents.sac import tanh_gaussian


def test_log_prob_matches_numerical_change_of_variables(x64):
  mean = jnp.array([0.3, -1.2])
  log_std = jnp.array([-0.5, 0.4])
  std = np.exp(np.asarray(log_std))
  dist = tanh_gaussian.distribution(mean, log_std)
  h = 1e-6
  for u in ([0.1, -0.7], [0.95, 0.2], [-0.999, 0.5]):
    u = np.asarray(u)
    # Density of u = tanh(x) from the probability of a small box around u, no Jacobian formula.
    cdf = lambda v: stats.norm.cdf((np.arctanh(v) - np.asarray(mean)) / std)
    numeric = np.prod((cdf(u + h) - cdf(u - h)) / (2 * h))
    np.testing.assert_allclose(np.exp(dist.log_prob(jnp.asarray(u))), numeric, rtol=1e-5)


def test_density_integrates_to_one(x64):
  log_prob = jax.jit(
      lambda u: tanh_gaussian.distribution(jnp.array([0.8]), jnp.array([0.3])).log_prob(u))
  total, _ = integrate.quad(lambda u: float(jnp.exp(log_prob(jnp.array([u])))), -1, 1,
                            limit=200)
  assert total == pytest.approx(1.0, abs=1e-6)


def test_sample_and_log_prob_consistent_and_unbiased():
  mean = jnp.array([0.5, -0.3, 0.0])
  log_std = jnp.array([-1.0, 0.0, 0.5])
  keys = jax.random.split(jax.random.key(1), 20000)
  actions, log_probs = jax.jit(jax.vmap(tanh_gaussian.sample_and_log_prob,
                                        in_axes=(None, None, 0)))(mean, log_std, keys)
  assert np.all(np.abs(actions) < 1)
  dist = tanh_gaussian.distribution(mean, log_std)
  np.testing.assert_allclose(log_probs[:50], jax.jit(jax.vmap(dist.log_prob))(actions[:50]),
                             rtol=1e-4,
                             atol=1e-4)
  # E[tanh(x)] by quadrature, per dimension; the sample mean must lie within 5 standard errors.
  for i in range(3):
    m, s = float(mean[i]), float(np.exp(log_std[i]))
    expected, _ = integrate.quad(lambda x: np.tanh(x) * stats.norm.pdf(x, m, s), -np.inf, np.inf)
    se = np.std(actions[:, i]) / np.sqrt(len(keys))
    assert abs(np.mean(actions[:, i]) - expected) < 5 * se
  np.testing.assert_allclose(tanh_gaussian.deterministic_action(mean), np.tanh(mean), rtol=1e-6)


def test_bad_input():
  with pytest.raises(ValueError, match="same shape"):
    tanh_gaussian.distribution(jnp.zeros(2), jnp.zeros(3))
  with pytest.raises(ValueError, match="trailing action axis"):
    tanh_gaussian.distribution(jnp.zeros(()), jnp.zeros(()))
