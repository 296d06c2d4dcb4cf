"""Kalman smoother against dense Gaussian conditioning (numpy, float64)."""
import jax
import numpy as np
import pytest
from scipy import stats

from latent_dynamics import kalman


def dense_lds(rng, t, n, p):
  a = 0.9 * np.linalg.qr(rng.normal(size=(n, n)))[0]
  lq = np.tril(rng.normal(size=(n, n))) * 0.3 + 0.5 * np.eye(n)
  q = lq @ lq.T
  q0 = np.eye(n) * 1.5
  m0 = rng.normal(size=n)
  c = rng.normal(size=(p, n))
  r = np.diag(rng.uniform(0.2, 1.0, size=p))
  drift = 0.1 * rng.normal(size=(t - 1, n))
  d = rng.normal(size=p)
  # Prior mean and covariance of x (T n) by unrolling x_{t+1} = A x_t + b_t + w_t.
  mean = [m0]
  for s in range(t - 1):
    mean.append(a @ mean[-1] + drift[s])
  mean = np.concatenate(mean)
  # x = M w_all + const with w_all = (x0 - m0, w_0, ..., w_{T-2}).
  big = np.zeros((t * n, t * n))
  for s in range(t):
    for k in range(s + 1):
      big[s * n:(s + 1) * n, k * n:(k + 1) * n] = np.linalg.matrix_power(a, s - k)
  noise = np.kron(np.eye(t), q)
  noise[:n, :n] = q0
  cov = big @ noise @ big.T
  return dict(a=a, q=q, q0=q0, m0=m0, c=c, r=r, drift=drift, d=d, mean=mean, cov=cov)


def test_smoother_matches_dense_conditioning(x64):
  rng = np.random.default_rng(0)
  t, n, p = 6, 2, 3
  m = dense_lds(rng, t, n, p)
  y = rng.normal(size=(t, p))
  mask = np.ones(t)
  mask[3] = 0.0  # one missing observation
  res = jax.jit(lambda y, mask: kalman.kalman_smoother(
      m["m0"], m["q0"], m["a"], m["q"], m["c"], m["r"], y, drift=m["drift"], offset=m["d"],
      observed=mask))(y, mask)
  obs = np.flatnonzero(mask)
  cbig = np.kron(np.eye(t), m["c"])[np.concatenate([np.arange(s * p, (s + 1) * p) for s in obs])]
  rbig = np.kron(np.eye(len(obs)), m["r"])
  ybig = (y[obs] - m["d"]).reshape(-1)
  s_y = cbig @ m["cov"] @ cbig.T + rbig
  gain = m["cov"] @ cbig.T @ np.linalg.inv(s_y)
  post_mean = m["mean"] + gain @ (ybig - cbig @ m["mean"])
  post_cov = m["cov"] - gain @ cbig @ m["cov"]
  np.testing.assert_allclose(res.smoothed_means, post_mean.reshape(t, n), atol=1e-10)
  pc = post_cov.reshape(t, n, t, n)
  for s in range(t):
    np.testing.assert_allclose(res.smoothed_covs[s], pc[s, :, s, :], atol=1e-10)
    if s < t - 1:
      np.testing.assert_allclose(res.cross_covs[s], pc[s + 1, :, s, :], atol=1e-10)
  ll = stats.multivariate_normal(cbig @ m["mean"], s_y).logpdf(ybig)
  np.testing.assert_allclose(res.log_likelihood, ll, rtol=1e-10)
  # The last filtered moments equal the smoothed ones; the first filtered mean conditions on y_0.
  np.testing.assert_allclose(res.filtered_means[-1], res.smoothed_means[-1])
  c0 = m["c"]
  k0 = m["q0"] @ c0.T @ np.linalg.inv(c0 @ m["q0"] @ c0.T + m["r"])
  np.testing.assert_allclose(res.filtered_means[0],
                             m["m0"] + k0 @ (y[0] - m["d"] - c0 @ m["m0"]), atol=1e-10)


def small_lds(t=5, n=2, p=3):
  rng = np.random.default_rng(1)
  return dict(m0=np.zeros(n), q0=np.eye(n), a=0.9 * np.eye(n), q=0.5 * np.eye(n),
              c=rng.normal(size=(p, n)), r=np.eye(p)), rng.normal(size=(t, p))


def smooth(args, y, **kw):
  return kalman.kalman_smoother(args["m0"], args["q0"], args["a"], args["q"], args["c"],
                                args["r"], y, **kw)


@pytest.mark.parametrize("name,value,match", [
    ("c", np.zeros((3, 4)), "c must have shape \\(p, n\\) with n = 2"),
    ("r", np.eye(2), "r must have shape \\(3, 3\\)"),
    ("r", np.ones(3), "r must have shape \\(3, 3\\)"),
    ("q", np.eye(3), "q must have shape \\(2, 2\\)"),
    ("m0", np.zeros(3), "m0 must have shape \\(2,\\)"),
    ("a", np.zeros((2, 3)), "a must be a square"),
])
def test_bad_parameter_shapes_name_the_argument(name, value, match):
  args, y = small_lds()
  with pytest.raises(ValueError, match=match):
    smooth({**args, name: value}, y)


def test_bad_data_shapes_name_the_argument():
  args, y = small_lds()
  # Before: "c must be (p, n) ..." for an observation of the wrong dimension, and JAX's "scan got
  # values with different leading axis sizes" for a wrong drift or mask length.
  with pytest.raises(ValueError, match="y must have shape \\(T, p\\) = \\(T, 3\\)"):
    smooth(args, y[:, :2])
  with pytest.raises(ValueError, match="drift must have shape \\(T-1, n\\) = \\(4, 2\\)"):
    smooth(args, y, drift=np.zeros((5, 2)))
  with pytest.raises(ValueError, match="observed must have shape \\(T,\\) = \\(5,\\)"):
    smooth(args, y, observed=np.ones(4))
  with pytest.raises(ValueError, match="offset must have shape \\(p,\\) = \\(3,\\)"):
    smooth(args, y, offset=np.zeros(2))
  with pytest.raises(ValueError, match="observed must hold only 0"):
    smooth(args, y, observed=np.full(5, 0.5))


def test_nan_observation_refused_at_observed_steps_ignored_at_unobserved(x64):
  args, y = small_lds()
  y_nan = y.copy()
  y_nan[2] = np.nan
  with pytest.raises(ValueError, match="y is not finite .* at observed steps \\[2\\]"):
    smooth(args, y_nan)
  observed = np.ones(5)
  observed[2] = 0.0
  run = jax.jit(lambda yy: smooth(args, yy, observed=observed))  # One compile, not op by op.
  res = run(y_nan)
  ref = run(np.where(np.isnan(y_nan), 0.0, y_nan))
  # Before, the NaN leaked into the log-likelihood (0 * NaN) though the means ignored it.
  assert np.isfinite(res.log_likelihood)
  np.testing.assert_allclose(res.log_likelihood, ref.log_likelihood, rtol=1e-12)
  np.testing.assert_allclose(res.smoothed_means, ref.smoothed_means, rtol=1e-12)
  g = jax.jit(jax.grad(lambda yy: smooth(args, yy, observed=observed).log_likelihood))(y_nan)
  assert np.all(np.isfinite(g)) and np.all(g[2] == 0.0)


def test_observed_steps_are_named_apart_from_the_padding_mask(x64):
  args, y = small_lds()
  observed = np.array([1.0, 0.0, 1.0, 0.0, 1.0])  # Any pattern, unlike a padding mask.
  res = smooth(args, y, observed=observed)
  with pytest.warns(DeprecationWarning, match="the argument is now `observed`"):
    old = smooth(args, y, mask=observed)
  np.testing.assert_allclose(old.smoothed_means, res.smoothed_means, rtol=1e-12)
  with pytest.raises(ValueError, match="pass observed= only"):
    smooth(args, y, observed=observed, mask=observed)
