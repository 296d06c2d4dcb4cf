"""Generative models: log-densities against scipy, prior natural parameters, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from latent_dynamics import block_tridiag as bt
from latent_dynamics import models


def _params(seed, kind, m=0, link="exp"):
  model = models.make_model(kind, 2, 3, input_dim=m, link=link, hidden=(4,))
  params = model.init(jax.random.key(seed))
  params["dynamics"]["m0"] = jnp.asarray([0.3, -0.2])
  params["dynamics"]["q_raw"] = jnp.asarray([[-1.0, 0.0], [0.4, -0.5]])
  return model, params


@pytest.mark.parametrize("kind,link", [("lds", "exp"), ("plds", "exp"), ("plds", "softplus"),
                                       ("flds", "softplus")])
def test_log_joint_against_scipy(x64, kind, link):
  model, params = _params(0, kind, m=1, link=link)
  t = 6
  rng = np.random.default_rng(1)
  x = rng.normal(size=(t, 2))
  u = rng.normal(size=(t, 1))
  y = rng.poisson(2.0, size=(t, 3)).astype(float) if kind != "lds" else rng.normal(size=(t, 3))
  mask = np.array([1, 1, 1, 1, 0, 0.0])
  lj = jax.jit(model.log_joint)(params, x, y, mask, u)
  d = jax.tree.map(np.asarray, models.dynamics(params))
  q = d["lq"] @ d["lq"].T
  ref = stats.multivariate_normal(d["m0"], d["lq0"] @ d["lq0"].T).logpdf(x[0])
  for s in range(1, 4):
    ref += stats.multivariate_normal(d["a"] @ x[s - 1] + d["b"] @ u[s - 1], q).logpdf(x[s])
  mean = np.asarray(model.emission_mean(params, x))
  if kind == "lds":
    r = np.exp(np.asarray(params["obs"]["log_r"]))
    ref += stats.norm(mean[:4], r).logpdf(y[:4]).sum()
    np.testing.assert_allclose(mean, x @ np.asarray(params["obs"]["c"]).T, atol=1e-12)
  else:
    ref += stats.poisson(mean[:4]).logpmf(y[:4]).sum()
    if kind == "plds":
      eta = x @ np.asarray(params["obs"]["c"]).T
      np.testing.assert_allclose(mean, np.exp(eta) if link == "exp" else np.log1p(np.exp(eta)),
                                 rtol=1e-12)
  np.testing.assert_allclose(lj, ref, rtol=1e-10)


def test_prior_precision_is_the_log_prior(x64):
  """-x^T J x / 2 + h^T x - log p(x) is the same constant for every x (masked, with inputs)."""
  model, params = _params(2, "lds", m=1)
  t = 5
  rng = np.random.default_rng(3)
  u = rng.normal(size=(t, 1))
  mask = np.array([1, 1, 1, 1, 0.0])
  diag, lower, h = jax.jit(model.prior_precision, static_argnums=1)(params, t, mask, u)
  diag, lower = np.asarray(diag)[:4], np.asarray(lower)[:3]
  j = np.asarray(bt.to_dense(jnp.asarray(diag), jnp.asarray(lower)))
  consts = []
  for _ in range(4):
    x = rng.normal(size=(t, 2))
    xv = x[:4].reshape(-1)
    lp = float(model.log_prior(params, x, mask, u))
    consts.append(-0.5 * xv @ j @ xv + np.asarray(h)[:4].reshape(-1) @ xv - lp)
  np.testing.assert_allclose(consts, consts[0], rtol=1e-10)


def test_sample_statistics():
  """E[x_1] = A m0 and E[y_t | x_t] = rate: empirical means within 5 standard errors."""
  model, params = _params(4, "plds")
  xs, ys = jax.jit(jax.vmap(lambda k: model.sample(params, k, 3)))(
      jax.random.split(jax.random.key(0), 4000))
  d = models.dynamics(params)
  q = d["lq"] @ d["lq"].T
  cov1 = d["a"] @ d["lq0"] @ d["lq0"].T @ d["a"].T + q
  se = np.sqrt(np.diag(cov1) / 4000)
  assert np.all(np.abs(np.asarray(xs[:, 1].mean(0) - d["a"] @ d["m0"]))
                < 5 * se)
  rates = jax.vmap(model.emission_mean, in_axes=(None, 0))(params, xs)
  resid = np.asarray(ys - rates)[:, 2]
  assert np.all(np.abs(resid.mean(0)) < 5 * np.sqrt(np.asarray(rates[:, 2]).mean(0) / 4000))
  assert np.all(np.asarray(ys) >= 0) and np.all(np.asarray(ys) == np.round(np.asarray(ys)))


def test_bad_input():
  model = models.make_model("plds", 2, 3, input_dim=1)
  y = np.ones((4, 3))
  u = np.zeros((4, 1))
  with pytest.raises(ValueError, match="non-finite"):
    model.check_data(np.where(np.eye(4, 3) > 0, np.nan, y), inputs=u)
  with pytest.raises(ValueError, match="negative counts"):
    model.check_data(-y, inputs=u)
  with pytest.raises(ValueError, match="obs_dim=3"):
    model.check_data(np.ones((4, 2)), inputs=u)
  with pytest.raises(ValueError, match="at least 2"):
    model.check_data(y[:1], inputs=u[:1], min_steps=2)
  with pytest.raises(ValueError, match="inputs must have shape"):
    model.check_data(y, inputs=np.zeros((4, 2)))
  with pytest.raises(ValueError, match="pass inputs"):
    model.check_data(y)
  with pytest.raises(ValueError, match="prefix"):
    model.check_data(y, mask=np.array([1, 0, 1, 1]), inputs=u)
  with pytest.raises(ValueError, match="kind must be"):
    models.make_model("hmm", 2, 3)
  with pytest.raises(ValueError, match="link must be"):
    models.make_model("plds", 2, 3, link="relu")
  model.check_data(y, mask=np.array([1, 1, 1, 0]), inputs=u)  # valid input passes


def test_lds_params_refuses_non_positive_definite_q_and_bad_shapes():
  a, c, r = np.eye(2), np.ones((3, 2)), np.ones(3)
  # Before: a NaN Cholesky factor, so NaN parameters and log-densities with no error.
  with pytest.raises(ValueError, match="q must be symmetric positive definite; its smallest "
                     "eigenvalue is -1"):
    models.lds_params(a, np.diag([1.0, -1.0]), c, r)
  with pytest.raises(ValueError, match="q must be symmetric positive definite; it is not "
                     "symmetric"):
    models.lds_params(a, np.array([[1.0, 0.5], [0.0, 1.0]]), c, r)
  with pytest.raises(ValueError, match="q must have shape \\(2, 2\\)"):
    models.lds_params(a, np.eye(3), c, r)
  with pytest.raises(ValueError, match="c must have shape \\(p, n\\) with n = 2"):
    models.lds_params(a, np.eye(2), np.ones((3, 4)), r)
  with pytest.raises(ValueError, match="r_std must have shape \\(3,\\)"):
    models.lds_params(a, np.eye(2), c, np.ones(2))
  with pytest.raises(ValueError, match="r_std must hold standard deviations > 0"):
    models.lds_params(a, np.eye(2), c, np.array([1.0, 0.0, 1.0]))
  with pytest.raises(ValueError, match="q0_std must hold standard deviations > 0"):
    models.lds_params(a, np.eye(2), c, r, q0_std=np.array([1.0, -1.0]))
  params = models.lds_params(a, np.array([[2.0, 0.5], [0.5, 1.0]]), c, r)
  d = models.dynamics(params)
  np.testing.assert_allclose(d["lq"] @ d["lq"].T, [[2.0, 0.5], [0.5, 1.0]], rtol=1e-6)


def test_poisson_log_likelihood_of_a_negative_count(x64):
  model, params = _params(0, "plds")
  x = np.zeros((2, 2))
  y = np.array([[1.0, 0.0, 2.0], [-0.5, 1.0, 1.0]])
  # Before: a finite value (y log rate - rate - log Gamma(y + 1) at y = -0.5).
  with pytest.raises(ValueError, match="y holds negative counts at valid steps"):
    model.log_likelihood(params, x, y)
  terms = model.log_likelihood_terms(params, x, y)
  assert np.asarray(terms)[1, 0] == -np.inf
  rate = np.asarray(model.emission_mean(params, x))
  np.testing.assert_allclose(np.asarray(terms)[0], stats.poisson(rate[0]).logpmf(y[0]),
                             rtol=1e-12)
  assert np.isneginf(jax.jit(model.log_likelihood)(params, x, y))
  # A padded step may hold anything: it is dropped, not multiplied by 0.
  ll = model.log_likelihood(params, x, y, mask=np.array([1.0, 0.0]))
  np.testing.assert_allclose(ll, stats.poisson(rate[0]).logpmf(y[0]).sum(), rtol=1e-12)
