"""Kalman filter and Rauch-Tung-Striebel smoother: the exact posterior of a linear-Gaussian LDS.

Model (the LDS generative model of Archer et al. 2015, Sec. 4; Gao et al. 2016, Sec. 2):
  x_0 ~ N(m0, Q0),  x_{t+1} = A x_t + b_t + w_t, w_t ~ N(0, Q),
  y_t = C x_t + d + v_t, v_t ~ N(0, R).
Steps with `mask[t] == 0` have no observation (filter predicts only). Used as the reference that
variational posteriors are tested against.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve


class KalmanResult(NamedTuple):
  """Filtering and smoothing moments.

  Attributes:
    filtered_means: (T, n) E[x_t | y_{0:t}].
    filtered_covs: (T, n, n).
    smoothed_means: (T, n) E[x_t | y_{0:T-1}].
    smoothed_covs: (T, n, n).
    cross_covs: (T-1, n, n) Cov(x_{t+1}, x_t | y_{0:T-1}).
    log_likelihood: () log p(y_{0:T-1}) (observed steps only).
  """
  filtered_means: jax.Array
  filtered_covs: jax.Array
  smoothed_means: jax.Array
  smoothed_covs: jax.Array
  cross_covs: jax.Array
  log_likelihood: jax.Array


def kalman_smoother(m0, q0, a, q, c, r, y, *, drift=None, offset=None, mask=None) -> KalmanResult:
  """Filters and smooths y (T, p) under the LDS above.

  Args:
    m0: (n,) prior mean of x_0.  q0: (n, n) prior covariance of x_0.
    a: (n, n) dynamics.  q: (n, n) innovation covariance.
    c: (p, n) loading.  r: (p, p) observation noise covariance.
    y: (T, p) observations.
    drift: optional (T-1, n) b_t (e.g. B u_t for inputs u_t).
    offset: optional (p,) d.
    mask: optional (T,) 1 where y_t is observed.

  Returns:
    `KalmanResult`.
  """
  t_len, p = y.shape
  n = m0.shape[0]
  if c.shape != (p, n) or a.shape != (n, n):
    raise ValueError(f"c must be (p, n) = {(p, n)} and a (n, n); got {c.shape}, {a.shape}.")
  drift = jnp.zeros((t_len - 1, n), y.dtype) if drift is None else drift
  offset = jnp.zeros((p,), y.dtype) if offset is None else offset
  mask = jnp.ones((t_len,), y.dtype) if mask is None else mask

  def update(m, pcov, yt, obs):
    s = c @ pcov @ c.T + r
    ls = jnp.linalg.cholesky(s)
    k = cho_solve((ls, True), c @ pcov).T  # P C^T S^{-1}
    resid = yt - c @ m - offset
    m_new = m + k @ resid
    ikc = jnp.eye(n, dtype=m.dtype) - k @ c
    p_new = ikc @ pcov @ ikc.T + k @ r @ k.T  # Joseph form: stays symmetric PSD.
    z = jax.scipy.linalg.solve_triangular(ls, resid, lower=True)
    ll = -0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(ls))) - 0.5 * p * jnp.log(2 * jnp.pi)
    return (jnp.where(obs > 0, m_new, m), jnp.where(obs > 0, p_new, pcov), obs * ll)

  def filter_step(carry, xs):
    m, pcov = carry
    b, yt, obs = xs
    mp = a @ m + b
    pp = a @ pcov @ a.T + q
    mf, pf, ll = update(mp, pp, yt, obs)
    return (mf, pf), (mf, pf, mp, pp, ll)

  mf0, pf0, ll0 = update(m0, q0, y[0], mask[0])
  _, (mfs, pfs, mps, pps, lls) = lax.scan(filter_step, (mf0, pf0), (drift, y[1:], mask[1:]))
  mf = jnp.concatenate([mf0[None], mfs])
  pf = jnp.concatenate([pf0[None], pfs])

  def smooth_step(carry, xs):
    ms_next, ps_next = carry
    m, pcov, mp, pp = xs
    g = cho_solve((jnp.linalg.cholesky(pp), True), a @ pcov).T  # P A^T Pp^{-1}
    ms = m + g @ (ms_next - mp)
    ps = pcov + g @ (ps_next - pp) @ g.T
    ps = 0.5 * (ps + ps.T)
    return (ms, ps), (ms, ps, ps_next @ g.T)

  _, (mss, pss, cross) = lax.scan(smooth_step, (mf[-1], pf[-1]), (mf[:-1], pf[:-1], mps, pps),
                                  reverse=True)
  ms = jnp.concatenate([mss, mf[-1:]])
  ps = jnp.concatenate([pss, pf[-1:]])
  return KalmanResult(mf, pf, ms, ps, cross, ll0 + jnp.sum(lls))
