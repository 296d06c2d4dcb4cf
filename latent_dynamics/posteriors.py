"""Gaussian posteriors over latent trajectories with block-tridiagonal precision.

Every posterior here is a `BlockTridiagGaussian`: q(x) = N(x; mu, J^{-1}) over x (T, n) with
J = L L^T, L lower block-bidiagonal (`block_tridiag.BlockCholesky`). The three recognition
families of the papers differ only in how mu and L are built:

* `mean_field`: L diagonal, q(x) = prod_t prod_i N(x_ti; mu_ti, s_ti^2) (the baseline).
* `structured`: Archer et al. 2015, Sec. 3: the blocks of R (= L) come straight
  from per-step networks (diagonal blocks from y_t, coupling blocks from (y_t, y_{t+1})), so
  J = R R^T is positive definite by construction and no factorisation is needed; mu is a network
  output too.
* `smoothing`: Gao et al. 2016, Sec. 3 (the fLDS posterior; Archer et al. 2015, Sec. 3):
  q(x) ∝ p_LDS(x) prod_t exp(-x_t^T Lambda_t x_t / 2 + x_t^T eta_t) with per-step network
  potentials (Lambda_t = M_t M_t^T, eta_t); J = J_prior + blockdiag(Lambda), mu = J^{-1} h.
  Equivalently Kalman smoothing with pseudo-observations.
* `lds_posterior`: the exact posterior p(x | y) of a linear-Gaussian ("lds") model and log p(y),
  the reference the variational posteriors are compared with.

Padding: steps with mask 0 (after a trial's end) are replaced by independent N(0, I) blocks that
do not touch the valid steps, and `entropy` / `log_prob` count only valid steps, so an ELBO on a
padded batch equals the sum of the ELBOs of the unpadded trials.
"""
from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp

from latent_dynamics import block_tridiag, block_tridiag_parallel
from latent_dynamics.block_tridiag import BlockCholesky

_LOG2PI = math.log(2 * math.pi)


def _ops(parallel: bool):
  return block_tridiag_parallel if parallel else block_tridiag


def _batched(fn, num_batch_dims):
  for _ in range(num_batch_dims):
    fn = jax.vmap(fn)
  return fn


class BlockTridiagGaussian(distrax.Distribution):
  """N(mean, J^{-1}) with J = L L^T block-tridiagonal; a distrax distribution over (T, n).

  Batch dimensions lead every array. Samples are reparameterised (pathwise differentiable).

  Args:
    mean: (..., T, n).
    chol: `BlockCholesky` with diag (..., T, n, n) and lower (..., T-1, n, n).
    mask: optional (..., T) validity of each step (1 valid, 0 padding); padded steps must already
      be independent standard normal blocks (the constructors below ensure it).
    parallel: use the O(log T)-depth routines (`block_tridiag_parallel`).
  """

  def __init__(self, mean: jax.Array, chol: BlockCholesky, mask: jax.Array | None = None,
               parallel: bool = False):
    if mean.ndim < 2:
      raise ValueError(f"mean must have shape (..., T, n); got {mean.shape}.")
    t, n = mean.shape[-2:]
    if chol.diag.shape != mean.shape + (n,) or chol.lower.shape != mean.shape[:-2] + (t - 1, n, n):
      raise ValueError(f"chol blocks must have shapes {mean.shape + (n,)} and "
                       f"{mean.shape[:-2] + (t - 1, n, n)}; got {chol.diag.shape} and "
                       f"{chol.lower.shape}.")
    self.mean_ = mean
    self.chol = chol
    self.mask = jnp.ones(mean.shape[:-1], mean.dtype) if mask is None else mask.astype(mean.dtype)
    self.parallel = bool(parallel)

  @property
  def event_shape(self):
    return tuple(self.mean_.shape[-2:])

  @property
  def batch_shape(self):
    return tuple(self.mean_.shape[:-2])

  @property
  def dtype(self):
    return self.mean_.dtype

  def _nb(self):
    return len(self.batch_shape)

  def mean(self) -> jax.Array:
    return self.mean_

  def _num_pad(self):
    return jnp.sum(1.0 - self.mask, axis=-1)

  def _sample_from_std_normal(self, eps: jax.Array) -> jax.Array:
    """mean + L^{-T} eps for eps (..., T, n) with the distribution's batch shape."""
    ops = _ops(self.parallel)
    fn = _batched(lambda m, d, lo, e: ops.sample(BlockCholesky(d, lo), m, e), self._nb())
    return fn(self.mean_, self.chol.diag, self.chol.lower, eps)

  def _sample_n(self, key, n):
    eps = jax.random.normal(key, (n,) + self.mean_.shape, self.dtype)
    return jax.vmap(self._sample_from_std_normal)(eps)

  def log_prob(self, value: jax.Array) -> jax.Array:
    """log q(x) on valid steps: -|L^T (x - mu)|^2 / 2 + log det L - T_valid n log(2 pi) / 2."""
    n = self.event_shape[-1]
    v = value - self.mean_
    d, lo = self.chol.diag, self.chol.lower
    # (L^T v)_t = L_tt^T v_t + L_{t+1,t}^T v_{t+1}: a banded product, no solve needed.
    w = jnp.einsum("...tji,...tj->...ti", d, v)
    w = w.at[..., :-1, :].add(jnp.einsum("...tji,...tj->...ti", lo, v[..., 1:, :]))
    quad = jnp.sum(w * w, axis=(-1, -2))
    # Padded steps are N(0, I): remove their share (they are set apart by the constructors).
    pad_quad = jnp.sum(jnp.sum(value * value, axis=-1) * (1.0 - self.mask), axis=-1)
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(d, axis1=-2, axis2=-1)), axis=(-1, -2))
    num_valid = jnp.sum(self.mask, axis=-1)
    return -0.5 * (quad - pad_quad) + half_logdet - 0.5 * num_valid * n * _LOG2PI

  def entropy(self) -> jax.Array:
    """H[q] = T_valid n (1 + log 2 pi) / 2 - log det J / 2 (padded identity blocks add 0)."""
    n = self.event_shape[-1]
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(self.chol.diag, axis1=-2, axis2=-1)),
                          axis=(-1, -2))
    return 0.5 * jnp.sum(self.mask, axis=-1) * n * (1.0 + _LOG2PI) - half_logdet

  def marginal_covariances(self) -> jax.Array:
    """Cov(x_t) (..., T, n, n) via the selected inverse."""
    return self._selected_inverse()[0]

  def cross_covariances(self) -> jax.Array:
    """Cov(x_{t+1}, x_t) (..., T-1, n, n) via the selected inverse."""
    return self._selected_inverse()[1]

  def _selected_inverse(self):
    ops = _ops(self.parallel)
    fn = _batched(lambda d, lo: ops.selected_inverse(BlockCholesky(d, lo)), self._nb())
    return fn(self.chol.diag, self.chol.lower)

  def variance(self) -> jax.Array:
    return jnp.diagonal(self.marginal_covariances(), axis1=-2, axis2=-1)

  def stddev(self) -> jax.Array:
    return jnp.sqrt(self.variance())

  def precision_blocks(self) -> tuple[jax.Array, jax.Array]:
    """J's blocks (diag (..., T, n, n), lower (..., T-1, n, n)) from L."""
    d, lo = self.chol.diag, self.chol.lower
    lt = lambda a: jnp.swapaxes(a, -1, -2)  # noqa: E731
    diag = d @ lt(d)
    diag = diag.at[..., 1:, :, :].add(lo @ lt(lo))
    return diag, lo @ lt(d[..., :-1, :, :])

  def __getitem__(self, index):
    """Indexes the batch dimensions (e.g. q[0] is the first trial's posterior)."""
    return BlockTridiagGaussian(self.mean_[index], BlockCholesky(self.chol.diag[index],
                                                                 self.chol.lower[index]),
                                self.mask[index], self.parallel)


def _check_mask(mask, mean):
  if mask is None:
    return jnp.ones(mean.shape[:-1], mean.dtype)
  if mask.shape != mean.shape[:-1]:
    raise ValueError(f"mask must have shape {mean.shape[:-1]}; got {mask.shape}.")
  return mask.astype(mean.dtype)


def _pad_factor(mean, diag, lower, mask):
  """Sets padded steps to independent N(0, I) blocks in the factor's parameterisation."""
  n = mean.shape[-1]
  eye = jnp.eye(n, dtype=mean.dtype)
  mk = mask[..., :, None, None]
  diag = mk * diag + (1.0 - mk) * eye
  # L_{t+1,t} couples t and t+1; keep it only if step t+1 is valid.
  lower = lower * mask[..., 1:, None, None]
  return mean * mask[..., None], diag, lower


def _check_steps(mean, min_steps, what):
  if mean.ndim < 2:
    raise ValueError(f"{what}: mean must have shape (..., T, n); got {mean.shape}.")
  if mean.shape[-2] < min_steps:
    raise ValueError(f"{what}: needs T >= {min_steps} time steps; got T={mean.shape[-2]}.")


def mean_field(mean: jax.Array, log_scale: jax.Array, mask: jax.Array | None = None,
               parallel: bool = False) -> BlockTridiagGaussian:
  """Fully factorised Gaussian: x_ti ~ N(mean_ti, exp(log_scale_ti)^2).

  Args:
    mean, log_scale: (..., T, n).
    mask: optional (..., T).
  """
  _check_steps(mean, 1, "mean_field")
  if log_scale.shape != mean.shape:
    raise ValueError(f"log_scale must have shape {mean.shape}; got {log_scale.shape}.")
  mask = _check_mask(mask, mean)
  diag = jnp.exp(-log_scale)[..., None] * jnp.eye(mean.shape[-1], dtype=mean.dtype)  # 1 / s
  lower = jnp.zeros(mean.shape[:-2] + (mean.shape[-2] - 1,) + mean.shape[-1:] * 2, mean.dtype)
  mean, diag, lower = _pad_factor(mean, diag, lower, mask)
  return BlockTridiagGaussian(mean, BlockCholesky(diag, lower), mask, parallel)


def tril_positive(raw: jax.Array, min_diag: float = 1e-4) -> jax.Array:
  """Lower-triangular matrix with diagonal softplus(raw_ii) + min_diag > 0 (batched)."""
  n = raw.shape[-1]
  eye = jnp.eye(n, dtype=raw.dtype)
  return jnp.tril(raw, -1) + eye * (jax.nn.softplus(raw) + min_diag)


def structured(mean: jax.Array, diag_raw: jax.Array, lower: jax.Array,
               mask: jax.Array | None = None, parallel: bool = False,
               min_diag: float = 1e-4) -> BlockTridiagGaussian:
  """Archer et al. 2015 structured posterior: J = R R^T with R lower block-bidiagonal.

  Args:
    mean: (..., T, n) posterior mean (a network output of y).
    diag_raw: (..., T, n, n) unconstrained diagonal blocks; R_tt = tril with softplus diagonal.
    lower: (..., T-1, n, n) coupling blocks R_{t+1,t} (any real matrices).
    mask: optional (..., T).
    min_diag: floor added to R_tt's diagonal (bounds the posterior variance).

  Raises:
    ValueError: T < 2 (there is no temporal structure to model; use `mean_field`), or shapes.
  """
  _check_steps(mean, 2, "structured")
  t, n = mean.shape[-2:]
  if diag_raw.shape != mean.shape + (n,) or lower.shape != mean.shape[:-2] + (t - 1, n, n):
    raise ValueError(f"diag_raw must be {mean.shape + (n,)} and lower "
                     f"{mean.shape[:-2] + (t - 1, n, n)}; got {diag_raw.shape}, {lower.shape}.")
  mask = _check_mask(mask, mean)
  mean, diag, lower = _pad_factor(mean, tril_positive(diag_raw, min_diag), lower, mask)
  return BlockTridiagGaussian(mean, BlockCholesky(diag, lower), mask, parallel)


def smoothing(prior_diag: jax.Array, prior_lower: jax.Array, prior_h: jax.Array,
              potential_factor: jax.Array, potential_h: jax.Array,
              mask: jax.Array | None = None, parallel: bool = False) -> BlockTridiagGaussian:
  """fLDS posterior (Gao et al. 2016, Sec. 3): LDS prior times per-step Gaussian potentials.

  J = J_prior + blockdiag(M_t M_t^T), h = h_prior + eta, mean = J^{-1} h (one block-Cholesky and
  two triangular sweeps).

  Args:
    prior_diag, prior_lower, prior_h: the prior's natural parameters
      (`StateSpaceModel.prior_precision`), (..., T, n, n), (..., T-1, n, n), (..., T, n).
    potential_factor: (..., T, n, k) M_t (any real; M_t M_t^T is PSD so J stays PD).
    potential_h: (..., T, n) eta_t.
    mask: optional (..., T).
  """
  _check_steps(prior_h, 2, "smoothing")
  t, n = prior_h.shape[-2:]
  if potential_factor.shape[:-1] != prior_h.shape:
    raise ValueError(f"potential_factor must have shape {prior_h.shape + ('k',)}; got "
                     f"{potential_factor.shape}.")
  if potential_h.shape != prior_h.shape:
    raise ValueError(f"potential_h must have shape {prior_h.shape}; got {potential_h.shape}.")
  if prior_diag.shape != prior_h.shape + (n,) or prior_lower.shape[-3] != t - 1:
    raise ValueError(f"prior blocks must be {prior_h.shape + (n,)} and (..., {t - 1}, {n}, {n}); "
                     f"got {prior_diag.shape}, {prior_lower.shape}.")
  mask = _check_mask(mask, prior_h)
  diag = prior_diag + potential_factor @ jnp.swapaxes(potential_factor, -1, -2)
  h = prior_h + potential_h
  mk = mask[..., :, None, None]
  diag = mk * diag + (1.0 - mk) * jnp.eye(n, dtype=diag.dtype)
  lower = prior_lower * mask[..., 1:, None, None]
  h = h * mask[..., None]
  ops = _ops(parallel)

  def one(d, lo, hh):
    chol = ops.cholesky(d, lo)
    return chol, ops.solve(chol, hh)

  chol, mean = _batched(one, h.ndim - 2)(diag, lower, h)
  return BlockTridiagGaussian(mean, chol, mask, parallel)


def lds_posterior(model, params, y: jax.Array, mask: jax.Array | None = None,
                  inputs: jax.Array | None = None,
                  parallel: bool = False) -> tuple[BlockTridiagGaussian, jax.Array]:
  """The exact posterior p(x | y) of a linear-Gaussian model, and log p(y).

  p(x | y) ∝ p(x) prod_t N(y_t; C x_t + d, R) is Gaussian with J = J_prior + blockdiag(C^T R^-1 C)
  and h = h_prior + C^T R^-1 (y_t - d) on valid steps: `smoothing` with the exact potentials
  (M_t = C^T R^{-1/2}, eta_t = C^T R^-1 (y_t - d)). Then log p(y) = log p(x, y) - log p(x | y) at
  any x, here at the posterior mean. Equal to the Kalman smoother's moments and log-likelihood.

  Args:
    model: a `StateSpaceModel` of kind "lds".
    params: its parameters.
    y: (..., T, p) observations.
    mask: optional (..., T) trial-padding mask (a prefix of ones); padded steps are set apart.
    inputs: optional (..., T, m) inputs.
    parallel: use the O(log T)-depth routines.

  Returns:
    `(q, log_py)`: a `BlockTridiagGaussian` with batch shape `y.shape[:-2]` and log p(y) of the
    valid steps, shape `y.shape[:-2]`.
  """
  if getattr(model, "kind", None) != "lds":
    raise ValueError("lds_posterior needs a model of kind 'lds' (linear-Gaussian), whose "
                     f"posterior is exact; got kind {getattr(model, 'kind', None)!r}.")
  y = jnp.asarray(y)
  p, n = model.obs_dim, model.latent_dim
  if y.ndim < 2 or y.shape[-1] != p:
    raise ValueError(f"y must have shape (..., T, {p}) for obs_dim={p}; got {y.shape}.")
  _check_steps(y, 2, "lds_posterior")
  batch, t = y.shape[:-2], y.shape[-2]
  if mask is not None and jnp.shape(mask) != batch + (t,):
    raise ValueError(f"mask must have shape {batch + (t,)} (y's without the last axis); got "
                     f"{jnp.shape(mask)}.")
  if inputs is not None and jnp.shape(inputs) != batch + (t, model.input_dim):
    raise ValueError(f"inputs must have shape {batch + (t, model.input_dim)}; got "
                     f"{jnp.shape(inputs)}.")
  dtype = y.dtype
  mask = jnp.ones(batch + (t,), dtype) if mask is None else jnp.asarray(mask, dtype)
  ob = params["obs"]
  c, d = jnp.asarray(ob["c"], dtype), jnp.asarray(ob["d"], dtype)
  r_inv_sqrt = jnp.exp(-jnp.asarray(ob["log_r"], dtype))
  factor = c.T * r_inv_sqrt  # (n, p): M M^T = C^T R^-1 C.

  def one(yy, mk, uu):
    prior_diag, prior_lower, prior_h = model.prior_precision(params, t, mk, uu)
    eta = (yy - d) * r_inv_sqrt ** 2 @ c
    return prior_diag, prior_lower, prior_h, eta

  uu = inputs if inputs is not None else jnp.zeros(batch + (t, 0), dtype)
  wrap = lambda f: lambda yy, mk, u: f(yy, mk, None if inputs is None else u)  # noqa: E731
  prior_diag, prior_lower, prior_h, eta = _batched(wrap(one), len(batch))(y, mask, uu)
  q = smoothing(prior_diag, prior_lower, prior_h, jnp.broadcast_to(factor, batch + (t, n, p)),
                eta, mask, parallel)
  log_joint = _batched(lambda yy, mk, u, x: model.log_joint(
      params, x, yy, mk, None if inputs is None else u), len(batch))
  mu = q.mean()
  return q, log_joint(y, mask, uu, mu) - q.log_prob(mu)
