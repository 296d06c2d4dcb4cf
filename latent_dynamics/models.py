"""Generative state-space models: LDS, Poisson LDS and fLDS, as pure init / sample / log_joint.

Latent dynamics (Archer et al. 2015, Sec. 4; Gao et al. 2016, Sec. 2):
  x_0 ~ N(m0, Q0),   x_{t+1} = A x_t + B u_t + w_t,  w_t ~ N(0, Q).
Observations, conditionally independent given x_t:
  * "lds":   y_t ~ N(C x_t + d, diag(r^2))                      (Archer et al. 2015, Sec. 4)
  * "plds":  y_ti ~ Poisson(f(c_i^T x_t + d_i)), f = exp or softplus (Archer et al. 2015, Sec. 4;
             Gao et al. 2016, Sec. 2 with a linear embedding)
  * "flds":  y_ti ~ Poisson(f(g_psi(x_t)_i)) or N(g_psi(x_t)_i, r_i^2), g_psi a neural network
             (Gao et al. 2016, Sec. 2).

A trial is `y` (T, p), an optional `mask` (T,) with 1 on its valid steps (a prefix: batches of
trials of different lengths are padded at the end) and optional `inputs` (T, m). Functions act on
one trial; `jax.vmap` them over a batch. Parameters are a dict pytree of unconstrained arrays.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import gammaln

LINKS = {"exp": jnp.exp, "softplus": jax.nn.softplus}
KINDS = ("lds", "plds", "flds")
_LOG2PI = math.log(2 * math.pi)


class Embedding(nn.Module):
  """The fLDS embedding g_psi: R^n -> R^p, an MLP per time step (Gao et al. 2016, Sec. 2)."""
  features: Sequence[int]
  out: int

  @nn.compact
  def __call__(self, x):
    for f in self.features:
      x = jnp.tanh(nn.Dense(f)(x))
    return nn.Dense(self.out)(x)


class StateSpaceModel(NamedTuple):
  """A generative model as pure functions (all on one trial; vmap for batches).

  Attributes:
    kind, latent_dim, obs_dim, input_dim, observation ("gaussian" | "poisson"), link: static.
    init: `(key) -> params`.
    sample: `(params, key, num_steps, inputs=None) -> (x (T, n), y (T, p))`.
    log_prior: `(params, x, mask=None, inputs=None) -> ()` log p(x).
    log_likelihood_terms: `(params, x, y) -> (T, p)` log p(y_ti | x_t), unmasked.
    log_likelihood: `(params, x, y, mask=None) -> ()`.
    log_joint: `(params, x, y, mask=None, inputs=None) -> ()` log p(x, y).
    prior_precision: `(params, num_steps, mask=None, inputs=None) -> (diag, lower, h)`, the
      block-tridiagonal natural parameters of the Gaussian prior p(x) ∝ exp(-x^T J x / 2 + h^T x).
    emission_mean: `(params, x) -> (T, p)` E[y_t | x_t] (the rate for Poisson models).
    check_data: `(y, mask=None, inputs=None, min_steps=1) -> None`, raises ValueError.
  """
  kind: str
  latent_dim: int
  obs_dim: int
  input_dim: int
  observation: str
  link: str
  init: Callable
  sample: Callable
  log_prior: Callable
  log_likelihood_terms: Callable
  log_likelihood: Callable
  log_joint: Callable
  prior_precision: Callable
  emission_mean: Callable
  check_data: Callable


def _tril_factor(raw):
  """Lower-triangular factor with positive diagonal exp(diag(raw)) from an unconstrained matrix."""
  return jnp.tril(raw, -1) + jnp.diag(jnp.exp(jnp.diag(raw)))


def dynamics(params) -> dict:
  """Constrained dynamics: A, B, m0, L_Q (chol of Q) and L_Q0 (chol of Q0, diagonal)."""
  p = params["dynamics"]
  return dict(a=p["a"], b=p.get("b"), m0=p["m0"], lq=_tril_factor(p["q_raw"]),
              lq0=jnp.diag(jnp.exp(p["log_q0_std"])))


def _drift(dyn, inputs, num_steps, dtype):
  n = dyn["a"].shape[0]
  if inputs is None or dyn["b"] is None:
    return jnp.zeros((num_steps - 1, n), dtype)
  return inputs[:-1] @ dyn["b"].T


def _gauss_logpdf_chol(x, mean, chol):
  z = solve_triangular(chol, (x - mean).T, lower=True)
  return (-0.5 * jnp.sum(z * z, axis=0) - jnp.sum(jnp.log(jnp.diag(chol)))
          - 0.5 * x.shape[-1] * _LOG2PI)


def _poisson_logpmf(y, rate):
  """log Poisson(y; rate); -inf for negative y (outside the support, as scipy's logpmf)."""
  ok = y >= 0
  ys = jnp.where(ok, y, 0.0)
  return jnp.where(ok, ys * jnp.log(rate) - rate - gammaln(ys + 1.0), -jnp.inf)


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def make_model(kind: str, latent_dim: int, obs_dim: int, *, input_dim: int = 0,
               observation: str | None = None, link: str = "exp",
               hidden: Sequence[int] = (32, 32), init_scale: float = 1.0) -> StateSpaceModel:
  """Builds a state-space model.

  Args:
    kind: "lds" (Gaussian, linear), "plds" (Poisson, linear) or "flds" (neural embedding).
    latent_dim: n.  obs_dim: p.  input_dim: m (0: no inputs).
    observation: for "flds", "poisson" (default) or "gaussian"; fixed by the kind otherwise.
    link: "exp" or "softplus", the Poisson rate nonlinearity.
    hidden: hidden widths of the fLDS embedding network.
    init_scale: scale of the random loading matrix / embedding at `init`.

  Returns:
    A `StateSpaceModel`.
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
  if link not in LINKS:
    raise ValueError(f"link must be one of {tuple(LINKS)}; got {link!r}.")
  if latent_dim < 1 or obs_dim < 1 or input_dim < 0:
    raise ValueError(f"latent_dim and obs_dim must be >= 1 and input_dim >= 0; got "
                     f"{latent_dim}, {obs_dim}, {input_dim}.")
  if kind == "lds":
    obs = "gaussian"
  elif kind == "plds":
    obs = "poisson"
  else:
    obs = observation or "poisson"
  if obs not in ("gaussian", "poisson"):
    raise ValueError(f"observation must be 'gaussian' or 'poisson'; got {obs!r}.")
  n, p, m = latent_dim, obs_dim, input_dim
  embedding = Embedding(tuple(hidden), p) if kind == "flds" else None
  f_link = LINKS[link]

  def init(key):
    k_a, k_c, k_b, k_e = jax.random.split(key, 4)
    rot = jnp.linalg.qr(jax.random.normal(k_a, (n, n)))[0]
    dyn = {"a": 0.9 * (0.5 * jnp.eye(n) + 0.5 * rot), "m0": jnp.zeros(n),
           "q_raw": jnp.diag(jnp.full((n,), math.log(0.3))),  # Q = 0.09 I
           "log_q0_std": jnp.zeros(n)}
    if m:
      dyn["b"] = 0.1 * jax.random.normal(k_b, (n, m))
    ob = {}
    if kind == "flds":
      ob["embedding"] = embedding.init(k_e, jnp.zeros((1, n)))
      ob["d"] = jnp.zeros(p)
    else:
      ob["c"] = init_scale * jax.random.normal(k_c, (p, n)) / math.sqrt(n)
      ob["d"] = jnp.zeros(p)
    if obs == "gaussian":
      ob["log_r"] = jnp.zeros(p)
    return {"dynamics": dyn, "obs": ob}

  def emission_natural(params, x):
    """The per-step linear predictor: C x + d, or g_psi(x) + d."""
    ob = params["obs"]
    if kind == "flds":
      return embedding.apply(ob["embedding"], x) + ob["d"]
    return x @ ob["c"].T + ob["d"]

  def emission_mean(params, x):
    eta = emission_natural(params, x)
    return f_link(eta) if obs == "poisson" else eta

  def log_likelihood_terms(params, x, y):
    mean = emission_mean(params, x)
    if obs == "poisson":
      return _poisson_logpmf(y, mean)
    log_r = params["obs"]["log_r"]
    z = (y - mean) * jnp.exp(-log_r)
    return -0.5 * z * z - log_r - 0.5 * _LOG2PI

  def _mask(mask, num_steps, dtype):
    return jnp.ones((num_steps,), dtype) if mask is None else mask.astype(dtype)

  def log_likelihood(params, x, y, mask=None):
    if obs == "poisson" and _is_concrete(y):
      valid = np.ones(np.shape(y)[0], bool) if mask is None else np.asarray(mask) > 0
      if np.any(np.asarray(y)[valid] < 0):
        raise ValueError("y holds negative counts at valid steps; a Poisson model needs counts "
                         ">= 0 (log_likelihood_terms is -inf there).")
    mask = _mask(mask, x.shape[0], x.dtype)
    # where, not a product: padded steps may hold anything (their -inf or NaN must not leak).
    return jnp.sum(jnp.where(mask[:, None] > 0, log_likelihood_terms(params, x, y), 0.0))

  def log_prior(params, x, mask=None, inputs=None):
    dyn = dynamics(params)
    mask = _mask(mask, x.shape[0], x.dtype)
    lp0 = _gauss_logpdf_chol(x[:1], dyn["m0"], dyn["lq0"])[0]
    pred = x[:-1] @ dyn["a"].T + _drift(dyn, inputs, x.shape[0], x.dtype)
    lps = _gauss_logpdf_chol(x[1:], pred, dyn["lq"])
    return lp0 + jnp.sum(lps * mask[1:])

  def log_joint(params, x, y, mask=None, inputs=None):
    return log_prior(params, x, mask, inputs) + log_likelihood(params, x, y, mask)

  def prior_precision(params, num_steps, mask=None, inputs=None):
    """J and h of p(x): J_00 = Q0^{-1} + A^T Q^{-1} A, J_tt = Q^{-1} + [t+1 valid] A^T Q^{-1} A,
    J_{t+1,t} = -Q^{-1} A; h from m0 and the input drift. Steps after the trial end carry no
    transition (their blocks are set apart by the posterior)."""
    dyn = dynamics(params)
    dtype = dyn["a"].dtype
    mask = _mask(mask, num_steps, dtype)
    eye = jnp.eye(n, dtype=dtype)
    qinv = jax.scipy.linalg.cho_solve((dyn["lq"], True), eye)
    q0inv = jax.scipy.linalg.cho_solve((dyn["lq0"], True), eye)
    la = solve_triangular(dyn["lq"], dyn["a"], lower=True)  # L_Q^{-1} A
    ata = la.T @ la                                          # A^T Q^{-1} A
    qinv_a = solve_triangular(dyn["lq"], la, lower=True, trans=1)  # Q^{-1} A
    nxt = jnp.concatenate([mask[1:], jnp.zeros((1,), dtype)])  # transition t -> t+1 exists
    diag = jnp.concatenate([q0inv[None], jnp.broadcast_to(qinv, (num_steps - 1, n, n))])
    diag = diag + nxt[:, None, None] * ata
    lower = -mask[1:, None, None] * qinv_a
    drift = _drift(dyn, inputs, num_steps, dtype) * mask[1:, None]
    h = jnp.zeros((num_steps, n), dtype).at[0].add(q0inv @ dyn["m0"])
    h = h.at[1:].add(drift @ qinv.T)
    h = h.at[:-1].add(-drift @ qinv_a)
    return diag, lower, h

  def sample(params, key, num_steps, inputs=None):
    dyn = dynamics(params)
    k0, kw, ky = jax.random.split(key, 3)
    x0 = dyn["m0"] + dyn["lq0"] @ jax.random.normal(k0, (n,))
    w = jax.random.normal(kw, (num_steps - 1, n)) @ dyn["lq"].T
    drift = _drift(dyn, inputs, num_steps, x0.dtype)

    def step(x, xs):
      wt, bt = xs
      x_next = dyn["a"] @ x + bt + wt
      return x_next, x_next

    _, xs = lax.scan(step, x0, (w, drift))
    x = jnp.concatenate([x0[None], xs])
    mean = emission_mean(params, x)
    if obs == "poisson":
      y = jax.random.poisson(ky, mean).astype(x.dtype)
    else:
      y = mean + jnp.exp(params["obs"]["log_r"]) * jax.random.normal(ky, mean.shape)
    return x, y

  def check_data(y, mask=None, inputs=None, min_steps=1):
    y_shape = jnp.shape(y)
    if len(y_shape) not in (2, 3) or y_shape[-1] != p:
      raise ValueError(f"y must have shape (T, {p}) or (batch, T, {p}) for obs_dim={p}; "
                       f"got {y_shape}.")
    num_steps = y_shape[-2]
    if num_steps < min_steps:
      raise ValueError(f"y has T={num_steps} time steps; at least {min_steps} are needed.")
    if mask is not None and jnp.shape(mask) != y_shape[:-1]:
      raise ValueError(f"mask must have shape {y_shape[:-1]} (y's without the last axis); got "
                       f"{jnp.shape(mask)}.")
    if inputs is not None and jnp.shape(inputs) != y_shape[:-1] + (m,):
      raise ValueError(f"inputs must have shape {y_shape[:-1] + (m,)} for input_dim={m}; got "
                       f"{jnp.shape(inputs)}.")
    if inputs is None and m and _is_concrete(y):
      raise ValueError(f"the model has input_dim={m}; pass inputs of shape "
                       f"{y_shape[:-1] + (m,)}.")
    # Value checks run on the host in numpy (outside jit only): no compilation per check.
    if _is_concrete(y):
      ya = np.asarray(y)
      if not np.all(np.isfinite(ya)):
        raise ValueError("y contains non-finite values (NaN or inf); mask missing steps instead.")
      if obs == "poisson" and np.any(ya < 0):
        raise ValueError("y holds negative counts; a Poisson model needs counts >= 0.")
    if mask is not None and _is_concrete(mask):
      ma = np.asarray(mask)
      if not np.all((ma == 0) | (ma == 1)):
        raise ValueError("mask must hold only 0 and 1.")
      if not np.all(ma[..., 0] == 1):
        raise ValueError("mask must mark the first step of every trial as valid (1).")
      if np.any(np.diff(ma, axis=-1) > 0):
        raise ValueError("mask must be a prefix of ones followed by zeros (padding at the end).")
    if inputs is not None and _is_concrete(inputs) and not np.all(
        np.isfinite(np.asarray(inputs))):
      raise ValueError("inputs contain non-finite values.")

  return StateSpaceModel(kind, n, p, m, obs, link, init, sample, log_prior, log_likelihood_terms,
                         log_likelihood, log_joint, prior_precision, emission_mean, check_data)


def lds_params(a, q, c, r_std, *, m0=None, q0_std=None, d=None, b=None) -> dict[str, Any]:
  """Parameters of a "lds" model from constrained matrices (Q full SPD, R = diag(r_std^2)).

  Args:
    a: (n, n) dynamics.  q: (n, n) innovation covariance, symmetric positive definite.
    c: (p, n) loading.  r_std: (p,) observation noise standard deviations, > 0.
    m0: optional (n,) prior mean of x_0 (zeros).  q0_std: optional (n,) prior standard
      deviations of x_0, > 0 (ones).  d: optional (p,) offset (zeros).  b: optional (n, m)
      input matrix.

  Raises:
    ValueError: a shape that does not fit; on concrete arrays (outside jit) also a q that is not
      symmetric positive definite, or a standard deviation <= 0 (either would give NaNs).
  """
  a, q, c, r_std = (jnp.asarray(v) for v in (a, q, c, r_std))
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"a must be a square (n, n) matrix; got {a.shape}.")
  n = a.shape[0]
  if c.ndim != 2 or c.shape[1] != n:
    raise ValueError(f"c must have shape (p, n) with n = {n} (the size of a); got {c.shape}.")
  p = c.shape[0]
  for name, v, shape in (("q", q, (n, n)), ("r_std", r_std, (p,)), ("m0", m0, (n,)),
                         ("q0_std", q0_std, (n,)), ("d", d, (p,))):
    if v is not None and jnp.shape(v) != shape:
      raise ValueError(f"{name} must have shape {shape} (n = {n} latents, p = {p} observation "
                       f"dimensions); got {jnp.shape(v)}.")
  if b is not None and (jnp.ndim(b) != 2 or jnp.shape(b)[0] != n):
    raise ValueError(f"b must have shape (n, m) with n = {n}; got {jnp.shape(b)}.")
  if _is_concrete(q):
    qa = np.asarray(q, np.float64)
    if not np.allclose(qa, qa.T, rtol=1e-6, atol=1e-6 * max(np.max(np.abs(qa)), 1e-30)):
      raise ValueError("q must be symmetric positive definite; it is not symmetric (largest "
                       f"|q - q^T| = {np.max(np.abs(qa - qa.T)):.3g}).")
    low = float(np.min(np.linalg.eigvalsh(qa))) if np.all(np.isfinite(qa)) else float("nan")
    if not low > 0:
      raise ValueError("q must be symmetric positive definite; its smallest eigenvalue is "
                       f"{low:.3g}.")
  for name, v in (("r_std", r_std), ("q0_std", q0_std)):
    if v is not None and _is_concrete(v) and not np.all(np.asarray(v) > 0):
      raise ValueError(f"{name} must hold standard deviations > 0; got {np.asarray(v)}.")
  lq = jnp.linalg.cholesky(q)
  q_raw = jnp.tril(lq, -1) + jnp.diag(jnp.log(jnp.diag(lq)))
  dyn = {"a": a, "m0": jnp.zeros(n) if m0 is None else m0, "q_raw": q_raw,
         "log_q0_std": jnp.zeros(n) if q0_std is None else jnp.log(q0_std)}
  if b is not None:
    dyn["b"] = b
  ob = {"c": c, "d": jnp.zeros(c.shape[0]) if d is None else d, "log_r": jnp.log(r_std)}
  return {"dynamics": dyn, "obs": ob}
