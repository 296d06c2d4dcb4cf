"""Posteriors: entropy, log-density, moments against distrax's dense Gaussian (float64)."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import block_tridiag as bt
from latent_dynamics import posteriors

T, N = 5, 2


def _params(seed, batch=()):
  rng = np.random.default_rng(seed)
  return dict(mean=rng.normal(size=batch + (T, N)), scale=0.3 * rng.normal(size=batch + (T, N)),
              diag=rng.normal(size=batch + (T, N, N)), lower=rng.normal(size=batch + (T - 1, N, N)),
              prior_diag=np.tile(2 * np.eye(N), batch + (T, 1, 1)),
              prior_lower=np.tile(-0.8 * np.eye(N), batch + (T - 1, 1, 1)),
              prior_h=rng.normal(size=batch + (T, N)), factor=rng.normal(size=batch + (T, N, N)),
              eta=rng.normal(size=batch + (T, N)))


def _build(kind, p, mask=None, parallel=False):
  p = {k: jnp.asarray(v) for k, v in p.items()}
  if kind == "mean_field":
    return posteriors.mean_field(p["mean"], p["scale"], mask, parallel)
  if kind == "structured":
    return posteriors.structured(p["mean"], p["diag"], p["lower"], mask, parallel)
  return posteriors.smoothing(p["prior_diag"], p["prior_lower"], p["prior_h"], p["factor"],
                              p["eta"], mask, parallel)


def _summaries(q, x):
  return dict(mean=q.mean(), entropy=q.entropy(), log_prob=q.log_prob(x),
              cov=q.marginal_covariances(), cross=q.cross_covariances(),
              blocks=q.precision_blocks())


@pytest.mark.parametrize("kind,parallel", [("mean_field", False), ("structured", False),
                                           ("smoothing", False), ("smoothing", True)])
def test_against_dense_gaussian(x64, kind, parallel):
  p = _params(1)
  x = np.random.default_rng(2).normal(size=(3, T, N))
  out = jax.jit(lambda p, x: _summaries(_build(kind, p, parallel=parallel), x))(p, x)
  out = jax.tree.map(np.asarray, out)
  j = np.asarray(bt.to_dense(*out["blocks"]))
  sigma = np.linalg.inv(j)
  if kind == "smoothing":  # mean = J^{-1} h with J = J_prior + blockdiag(M M^T)
    jd = np.asarray(bt.to_dense(jnp.asarray(p["prior_diag"] + p["factor"]
                                            @ np.swapaxes(p["factor"], -1, -2)),
                                jnp.asarray(p["prior_lower"])))
    np.testing.assert_allclose(j, jd, atol=1e-10)
    np.testing.assert_allclose(out["mean"].reshape(-1),
                               np.linalg.solve(jd, (p["prior_h"] + p["eta"]).reshape(-1)),
                               atol=1e-10)
  if kind == "mean_field":
    np.testing.assert_allclose(np.diag(sigma), np.exp(2 * p["scale"]).reshape(-1), rtol=1e-10)
  ref = distrax.MultivariateNormalFullCovariance(out["mean"].reshape(-1), sigma)
  np.testing.assert_allclose(out["entropy"], ref.entropy(), rtol=1e-10)
  np.testing.assert_allclose(out["log_prob"], ref.log_prob(x.reshape(3, -1)), rtol=1e-10)
  s4 = sigma.reshape(T, N, T, N)
  for t in range(T):
    np.testing.assert_allclose(out["cov"][t], s4[t, :, t], atol=1e-10)
    if t < T - 1:
      np.testing.assert_allclose(out["cross"][t], s4[t + 1, :, t], atol=1e-10)


@pytest.mark.parametrize("kind", ["structured", "smoothing"])
def test_padding_equals_truncated_trial(x64, kind):
  """A trial padded from length 3 to T has the entropy / log-density of the 3-step posterior."""
  p = _params(3)
  mask = jnp.asarray([1.0, 1.0, 1.0, 0.0, 0.0])
  x = np.random.default_rng(4).normal(size=(T, N))
  short = {k: v[:3] if v.shape[0] == T else v[:2] for k, v in p.items()}
  if kind == "smoothing":
    # The prior of a 3-step trial has no transition out of step 2: the caller's prior_precision
    # (models.prior_precision with the mask) drops it; emulate that here on both sides.
    p["prior_diag"][2] = np.eye(N)
    short["prior_diag"][2] = np.eye(N)

  def f(p, short, x):
    qp, qs = _build(kind, p, mask), _build(kind, short)
    return (qp.entropy(), qs.entropy(), qp.log_prob(x), qs.log_prob(x[:3]), qp.mean()[:3],
            qs.mean(), qp.variance()[:3], qs.variance())

  out = jax.jit(f)(p, short, x)
  for a, b in zip(out[::2], out[1::2]):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_batched_samples_statistics():
  """Batched reparameterised samples: mean within 5 standard errors of the posterior mean."""
  p = _params(5, batch=(2,))
  q = _build("structured", p)
  x = jax.jit(lambda k: q.sample(seed=k, sample_shape=(2000,)))(jax.random.key(0))
  assert x.shape == (2000, 2, T, N)
  se = np.sqrt(np.asarray(q.variance()) / 2000)
  assert np.all(np.abs(np.asarray(x.mean(0)) - np.asarray(q.mean())) < 5 * se)


def test_pathwise_gradient_of_entropy_matches_finite_difference(x64):
  p = _params(6)
  f = jax.jit(lambda m, d, lo: _build("structured", dict(p, mean=m, diag=d, lower=lo)).entropy())
  g = jax.grad(f, argnums=1)(p["mean"], p["diag"], p["lower"])
  u = np.random.default_rng(0).normal(size=p["diag"].shape)
  h = 1e-6
  fd = (f(p["mean"], p["diag"] + h * u, p["lower"]) - f(p["mean"], p["diag"] - h * u,
                                                         p["lower"])) / (2 * h)
  np.testing.assert_allclose(np.sum(np.asarray(g) * u), fd, rtol=1e-6)


def test_bad_input():
  p = {k: jnp.asarray(v) for k, v in _params(0).items()}
  with pytest.raises(ValueError, match="T >= 2"):
    posteriors.structured(p["mean"][:1], p["diag"][:1], p["lower"][:0])
  with pytest.raises(ValueError, match="log_scale must have shape"):
    posteriors.mean_field(p["mean"], p["scale"][:, :1])
  with pytest.raises(ValueError, match="diag_raw must be"):
    posteriors.structured(p["mean"], p["diag"][:-1], p["lower"])
  with pytest.raises(ValueError, match="mask must have shape"):
    posteriors.mean_field(p["mean"], p["scale"], jnp.ones(T + 1))
  with pytest.raises(ValueError, match="potential_h"):
    posteriors.smoothing(p["prior_diag"], p["prior_lower"], p["prior_h"], p["factor"],
                         p["eta"][:-1])
