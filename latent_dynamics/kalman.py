"""Kalman filter and Rauch-Tung-Striebel smoother: the exact posterior of a linear-Gaussian LDS.

Model (the LDS generative model of Archer et al. 2015, Sec. 4; Gao et al. 2016, Sec. 2):
  x_0 ~ N(m0, Q0),  x_{t+1} = A x_t + b_t + w_t, w_t ~ N(0, Q),
  y_t = C x_t + d + v_t, v_t ~ N(0, R).
Steps with `observed[t] == 0` have no observation (filter predicts only). Used as the reference that
variational posteriors are tested against.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import cho_solve


def _check_values(y, observed) -> None:
  """On concrete arrays (outside jit): observed y finite, `observed` of 0s and 1s."""
  if isinstance(y, jax.core.Tracer) or isinstance(observed, jax.core.Tracer):
    return
  ya = np.asarray(y)
  obs = np.ones(ya.shape[0], bool) if observed is None else np.asarray(observed) > 0
  if observed is not None and not np.all((np.asarray(observed) == 0) |
                                         (np.asarray(observed) == 1)):
    raise ValueError("observed must hold only 0 (unobserved step) and 1 (observed step).")
  bad = np.flatnonzero(obs & ~np.all(np.isfinite(ya), axis=1))
  if bad.size:
    raise ValueError(f"y is not finite (NaN or inf) at observed steps {bad.tolist()}; mark "
                     "missing observations with observed=0 at those steps instead.")


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


def kalman_smoother(m0, q0, a, q, c, r, y, *, drift=None, offset=None, observed=None,
                    mask=None) -> KalmanResult:
  """Filters and smooths y (T, p) under the LDS above.

  Args:
    m0: (n,) prior mean of x_0.  q0: (n, n) prior covariance of x_0.
    a: (n, n) dynamics.  q: (n, n) innovation covariance.
    c: (p, n) loading.  r: (p, p) observation noise covariance.
    y: (T, p) observations.
    drift: optional (T-1, n) b_t (e.g. B u_t for inputs u_t).
    offset: optional (p,) d.
    observed: optional (T,) 1 where y_t is observed, 0 where it is not (any value of y, NaN
      included, is ignored there). Any pattern of missing steps is allowed; this is not the
      trial-padding `mask` of `models` and `posteriors` (a prefix of ones).
    mask: deprecated name of `observed` (a `DeprecationWarning`).

  Returns:
    `KalmanResult`.

  Raises:
    ValueError: a shape that does not fit (naming the argument); on concrete arrays (outside
      jit) also a NaN/inf observation at an observed step or an `observed` value other
      than 0 and 1; `observed` and `mask` both given.
  """
  if mask is not None:
    if observed is not None:
      raise ValueError("pass observed= only; mask= is its deprecated name.")
    warnings.warn("kalman_smoother(mask=...) is deprecated: the argument is now `observed` "
                  "(1 where y_t is observed), to tell it from the trial-padding mask of "
                  "models and posteriors.", DeprecationWarning, stacklevel=2)
    observed = mask
  y = jnp.asarray(y)
  if y.ndim != 2:
    raise ValueError(f"y must have shape (T, p); got {y.shape}.")
  t_len = y.shape[0]
  a = jnp.asarray(a)
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"a must be a square (n, n) matrix; got {a.shape}.")
  n = a.shape[0]
  c = jnp.asarray(c)
  if c.ndim != 2 or c.shape[1] != n:
    raise ValueError(f"c must have shape (p, n) with n = {n} (the size of a); got {c.shape}.")
  p = c.shape[0]
  for name, v, shape in (("m0", m0, (n,)), ("q0", q0, (n, n)), ("q", q, (n, n)),
                         ("r", r, (p, p))):
    if jnp.shape(v) != shape:
      raise ValueError(f"{name} must have shape {shape} (n = {n} latents, p = {p} observation "
                       f"dimensions from c); got {jnp.shape(v)}.")
  if y.shape[1] != p:
    raise ValueError(f"y must have shape (T, p) = (T, {p}): p = {p} observation dimensions "
                     f"(the rows of c); got {y.shape}.")
  if drift is not None and jnp.shape(drift) != (t_len - 1, n):
    raise ValueError(f"drift must have shape (T-1, n) = {(t_len - 1, n)} (one b_t per "
                     f"transition); got {jnp.shape(drift)}.")
  if offset is not None and jnp.shape(offset) != (p,):
    raise ValueError(f"offset must have shape (p,) = {(p,)}; got {jnp.shape(offset)}.")
  if observed is not None and jnp.shape(observed) != (t_len,):
    raise ValueError(f"observed must have shape (T,) = {(t_len,)} (1 where y_t is observed); "
                     f"got {jnp.shape(observed)}.")
  _check_values(y, observed)
  drift = jnp.zeros((t_len - 1, n), y.dtype) if drift is None else drift
  offset = jnp.zeros((p,), y.dtype) if offset is None else offset
  observed = jnp.ones((t_len,), y.dtype) if observed is None else jnp.asarray(observed)
  # Unobserved steps may hold anything (NaN included): replaced before they reach arithmetic.
  y = jnp.where(observed[:, None] > 0, y, 0.0)

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
    return (jnp.where(obs > 0, m_new, m), jnp.where(obs > 0, p_new, pcov),
            jnp.where(obs > 0, ll, 0.0))

  def filter_step(carry, xs):
    m, pcov = carry
    b, yt, obs = xs
    mp = a @ m + b
    pp = a @ pcov @ a.T + q
    mf, pf, ll = update(mp, pp, yt, obs)
    return (mf, pf), (mf, pf, mp, pp, ll)

  mf0, pf0, ll0 = update(m0, q0, y[0], observed[0])
  _, (mfs, pfs, mps, pps, lls) = lax.scan(filter_step, (mf0, pf0), (drift, y[1:],
                                                                       observed[1:]))
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
