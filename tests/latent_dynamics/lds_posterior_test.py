"""The exact LDS posterior as a BlockTridiagGaussian, and log p(y), against the Kalman smoother."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import kalman, models, posteriors

T, N, P, M = 7, 2, 3, 1


def problem(seed=0, input_dim=0):
  rng = np.random.default_rng(seed)
  a = 0.9 * np.linalg.qr(rng.normal(size=(N, N)))[0]
  lq = np.tril(rng.normal(size=(N, N))) * 0.3 + 0.6 * np.eye(N)
  params = models.lds_params(jnp.asarray(a), jnp.asarray(lq @ lq.T),
                             jnp.asarray(rng.normal(size=(P, N))),
                             jnp.asarray(rng.uniform(0.4, 1.0, P)),
                             m0=jnp.asarray(rng.normal(size=N)),
                             q0_std=jnp.asarray(rng.uniform(0.8, 1.5, N)),
                             d=jnp.asarray(rng.normal(size=P)),
                             b=jnp.asarray(rng.normal(size=(N, input_dim))) if input_dim else None)
  model = models.make_model("lds", N, P, input_dim=input_dim)
  y = rng.normal(size=(T, P))
  u = rng.normal(size=(T, input_dim)) if input_dim else None
  return model, params, y, u


@jax.jit
def reference(params, y, u=None):
  d = models.dynamics(params)
  drift = None if u is None else u[:-1] @ d["b"].T
  return kalman.kalman_smoother(d["m0"], d["lq0"] @ d["lq0"].T, d["a"], d["lq"] @ d["lq"].T,
                                params["obs"]["c"],
                                jnp.diag(jnp.exp(2 * params["obs"]["log_r"])), y,
                                drift=drift, offset=params["obs"]["d"])


def exact(model, params, y, mask=None, u=None, parallel=False):
  """Moments of `lds_posterior` and log p(y), in one jit (op-by-op dispatch is slow here)."""
  def f(params, y, mask, u):
    q, log_py = posteriors.lds_posterior(model, params, y, mask=mask, inputs=u,
                                         parallel=parallel)
    assert isinstance(q, posteriors.BlockTridiagGaussian) and q.parallel == parallel
    return q.batch_shape, (q.mean(), q.marginal_covariances(), q.cross_covariances(), log_py)
  shapes = {}

  def g(*a):
    shapes["batch"], out = f(*a)
    return out
  out = jax.jit(g)(params, y, mask, u)
  return shapes["batch"], out


@pytest.mark.parametrize("input_dim,parallel", [(M, False), (M, True)])
def test_exact_posterior_and_log_py_equal_the_kalman_smoother(x64, input_dim, parallel):
  model, params, y, u = problem(0, input_dim)
  batch, (mean, covs, cross, log_py) = exact(model, params, y, u=u, parallel=parallel)
  ks = reference(params, y, u)
  assert batch == ()
  np.testing.assert_allclose(mean, ks.smoothed_means, atol=1e-10)
  np.testing.assert_allclose(covs, ks.smoothed_covs, atol=1e-10)
  np.testing.assert_allclose(cross, ks.cross_covs, atol=1e-10)
  np.testing.assert_allclose(log_py, ks.log_likelihood, rtol=1e-10)


def test_batched_and_padded_trials_equal_the_truncated_ones(x64):
  model, params, y, _ = problem(1)
  y2 = np.stack([y, np.random.default_rng(5).normal(size=(T, P))])
  mask = np.ones((2, T))
  mask[1, 4:] = 0.0  # Second trial: 4 valid steps, padding (any values) after.
  y2[1, 4:] = 1e3
  batch, (mean, covs, _, log_py) = exact(model, params, y2, mask=mask)
  assert batch == (2,) and log_py.shape == (2,)
  for i, steps in ((0, T), (1, 4)):
    ks = reference(params, y2[i, :steps])
    np.testing.assert_allclose(mean[i, :steps], ks.smoothed_means, atol=1e-10)
    np.testing.assert_allclose(covs[i, :steps], ks.smoothed_covs, atol=1e-10)
    np.testing.assert_allclose(log_py[i], ks.log_likelihood, rtol=1e-10)


def test_refuses_other_models_and_bad_shapes():
  model, params, y, _ = problem(0)
  plds = models.make_model("plds", N, P)
  with pytest.raises(ValueError, match="needs a model of kind 'lds'.*got kind 'plds'"):
    posteriors.lds_posterior(plds, params, y)
  with pytest.raises(ValueError, match="y must have shape \\(..., T, 3\\)"):
    posteriors.lds_posterior(model, params, y[:, :2])
  with pytest.raises(ValueError, match="mask must have shape \\(7,\\)"):
    posteriors.lds_posterior(model, params, y, mask=np.ones(6))
