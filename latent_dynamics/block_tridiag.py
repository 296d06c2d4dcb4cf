"""Symmetric positive-definite block-tridiagonal matrices, sequential in time (`lax.scan`).

A Gaussian Markov chain x_0, ..., x_{T-1} (each x_t in R^n) has a block-tridiagonal precision
J. We store J by its diagonal blocks `diag` (T, n, n), `diag[t] = J[t, t]`, and its lower
off-diagonal blocks `lower` (T-1, n, n), `lower[t] = J[t+1, t]` (so `J[t, t+1] = lower[t]^T`).

Its Cholesky factor J = L L^T is lower block-bidiagonal (Archer et al. 2015, Sec. 3: the
posterior precision "R R^T" with R block-bidiagonal): `BlockCholesky(diag, lower)` with
`L[t, t] = diag[t]` (lower triangular, positive diagonal) and `L[t+1, t] = lower[t]`.
Everything here is O(T n^3) time, O(T n^2) memory, uses triangular solves only, and runs as
one `lax.scan` over time. `latent_dynamics.block_tridiag_parallel` has the same functions with
O(log T) depth.

All functions accept leading batch dimensions only through `jax.vmap`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular


class BlockCholesky(NamedTuple):
  """Lower block-bidiagonal Cholesky factor L of a block-tridiagonal J = L L^T.

  Attributes:
    diag: (T, n, n) lower-triangular diagonal blocks L[t, t] with positive diagonals.
    lower: (T-1, n, n) sub-diagonal blocks L[t+1, t].
  """
  diag: jax.Array
  lower: jax.Array


def check_blocks(diag: jax.Array, lower: jax.Array, name: str = "J") -> tuple[int, int]:
  """Checks the shapes of a block-tridiagonal matrix; returns (T, n).

  Raises:
    ValueError: naming `name` if `diag` is not (T, n, n) or `lower` is not (T-1, n, n).
  """
  if diag.ndim != 3 or diag.shape[1] != diag.shape[2]:
    raise ValueError(f"{name}: diagonal blocks must have shape (T, n, n); got {diag.shape}.")
  t, n = diag.shape[0], diag.shape[1]
  if t < 1:
    raise ValueError(f"{name}: needs at least one time step; got T={t}.")
  if lower.shape != (t - 1, n, n):
    raise ValueError(f"{name}: off-diagonal blocks must have shape (T-1, n, n) = "
                     f"{(t - 1, n, n)}; got {lower.shape}.")
  return t, n


def _check_rhs(chol: BlockCholesky, b: jax.Array) -> None:
  t, n = chol.diag.shape[0], chol.diag.shape[1]
  if b.shape[:2] != (t, n):
    raise ValueError(f"b must have shape (T, n) or (T, n, k) = ({t}, {n}[, k]); got {b.shape}.")


def _tri(l, b, *, trans=False):
  """Solves l x = b (or l^T x = b) for lower-triangular l; b may be a vector or a matrix."""
  vec = b.ndim == 1
  x = solve_triangular(l, b[:, None] if vec else b, lower=True, trans=1 if trans else 0)
  return x[:, 0] if vec else x


def to_dense(diag: jax.Array, lower: jax.Array) -> jax.Array:
  """Assembles the dense (T n, T n) symmetric matrix with blocks `diag` and `lower` (for tests)."""
  t, n = check_blocks(diag, lower)
  m = jnp.zeros((t, n, t, n), diag.dtype)
  idx = jnp.arange(t)
  m = m.at[idx, :, idx, :].set(diag)
  if t > 1:
    m = m.at[idx[1:], :, idx[:-1], :].set(lower)
    m = m.at[idx[:-1], :, idx[1:], :].set(jnp.swapaxes(lower, -1, -2))
  return m.reshape(t * n, t * n)


def factor_to_dense(chol: BlockCholesky) -> jax.Array:
  """Dense (T n, T n) lower-triangular L of a `BlockCholesky` (for tests)."""
  t, n = chol.diag.shape[:2]
  m = jnp.zeros((t, n, t, n), chol.diag.dtype)
  idx = jnp.arange(t)
  m = m.at[idx, :, idx, :].set(chol.diag)
  if t > 1:
    m = m.at[idx[1:], :, idx[:-1], :].set(chol.lower)
  return m.reshape(t * n, t * n)


def symmetrize(diag: jax.Array) -> jax.Array:
  """(d + d^T) / 2 of each diagonal block: J is symmetric, so only this part defines it.

  Every factorisation path (sequential, parallel on CPU or accelerators) applies it first, so a
  non-symmetric input gives one answer, and its gradient is symmetric, on all of them.
  """
  return 0.5 * (diag + jnp.swapaxes(diag, -1, -2))


def cholesky(diag: jax.Array, lower: jax.Array) -> BlockCholesky:
  """Block Cholesky factorisation J = L L^T of a block-tridiagonal SPD matrix.

  The recursion S_0 = J_00, L_tt = chol(S_t), L_{t+1,t} = J_{t+1,t} L_tt^{-T},
  S_{t+1} = J_{t+1,t+1} - L_{t+1,t} L_{t+1,t}^T; S_t is the Schur complement of the leading
  t+1 blocks (the information-form filter precision).

  Args:
    diag: (T, n, n) diagonal blocks of J; only their symmetric part (d + d^T) / 2 is used
      (`symmetrize`), the same on every path of both modules.
    lower: (T-1, n, n) sub-diagonal blocks J[t+1, t].

  Returns:
    The factor. Where J is not positive definite the blocks contain NaNs.
  """
  check_blocks(diag, lower)
  diag = symmetrize(diag)

  def step(l_prev, xs):
    d, b = xs
    off = _tri(l_prev, b.T).T  # b l_prev^{-T}
    l = jnp.linalg.cholesky(d - off @ off.T)
    return l, (l, off)

  l0 = jnp.linalg.cholesky(diag[0])
  _, (ls, offs) = lax.scan(step, l0, (diag[1:], lower))
  return BlockCholesky(jnp.concatenate([l0[None], ls]), offs)


def solve_lower(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves L x = b by forward substitution; b is (T, n) or (T, n, k)."""
  _check_rhs(chol, b)

  def step(x_prev, xs):
    l, off, bt = xs
    x = _tri(l, bt - off @ x_prev)
    return x, x

  x0 = _tri(chol.diag[0], b[0])
  _, xs = lax.scan(step, x0, (chol.diag[1:], chol.lower, b[1:]))
  return jnp.concatenate([x0[None], xs])


def solve_upper(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves L^T x = b by backward substitution; b is (T, n) or (T, n, k)."""
  _check_rhs(chol, b)

  def step(x_next, xs):
    l, off, bt = xs
    x = _tri(l, bt - off.T @ x_next, trans=True)
    return x, x

  x_last = _tri(chol.diag[-1], b[-1], trans=True)
  _, xs = lax.scan(step, x_last, (chol.diag[:-1], chol.lower, b[:-1]), reverse=True)
  return jnp.concatenate([xs, x_last[None]])


def solve(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves J x = b given J's factor: two triangular sweeps, no inverse."""
  return solve_upper(chol, solve_lower(chol, b))


def logdet(chol: BlockCholesky) -> jax.Array:
  """log det J = 2 sum_t sum_i log L_tt[i, i]."""
  return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol.diag, axis1=-2, axis2=-1)))


def sample(chol: BlockCholesky, mean: jax.Array, eps: jax.Array) -> jax.Array:
  """Reparameterised draw from N(mean, J^{-1}): mean + L^{-T} eps with eps ~ N(0, I) (T, n).

  Cov(L^{-T} eps) = L^{-T} L^{-1} = (L L^T)^{-1} = J^{-1}; differentiable in `mean`, `chol`.
  """
  if eps.shape != mean.shape:
    raise ValueError(f"eps must have the shape of mean {mean.shape}; got {eps.shape}.")
  return mean + solve_upper(chol, eps)


def _diag_inverse(l):
  """(l l^T)^{-1} for one lower-triangular block: W^T W with W = l^{-1} from a triangular solve."""
  w = _tri(l, jnp.eye(l.shape[-1], dtype=l.dtype))
  return w.T @ w


def selected_inverse(chol: BlockCholesky) -> tuple[jax.Array, jax.Array]:
  """Blocks of Sigma = J^{-1} on J's sparsity pattern (marginal and lag-one covariances).

  From L^T Sigma = L^{-1} (upper block row t, columns t and t+1):
    Sigma_{t,t+1} = -G_t Sigma_{t+1,t+1},
    Sigma_tt = (L_tt L_tt^T)^{-1} + G_t Sigma_{t+1,t+1} G_t^T,
  with G_t = L_tt^{-T} L_{t+1,t}^T, run backwards in time (the RTS smoother's covariance pass).

  Returns:
    `(cov, cross)`: cov (T, n, n) with cov[t] = Sigma_tt and cross (T-1, n, n) with
    cross[t] = Sigma_{t+1,t} = Cov(x_{t+1}, x_t).
  """
  def step(s_next, xs):
    l, off = xs
    g = _tri(l, off.T, trans=True)
    gs = g @ s_next
    s = _diag_inverse(l) + gs @ g.T
    return s, (s, -gs.T)

  s_last = _diag_inverse(chol.diag[-1])
  _, (ss, cross) = lax.scan(step, s_last, (chol.diag[:-1], chol.lower), reverse=True)
  cov = jnp.concatenate([ss, s_last[None]])
  cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
  return cov, cross


def matvec(diag: jax.Array, lower: jax.Array, x: jax.Array) -> jax.Array:
  """J x for block-tridiagonal J and x (T, n); O(T n^2)."""
  y = jnp.einsum("tij,tj->ti", diag, x)
  if diag.shape[0] > 1:
    y = y.at[1:].add(jnp.einsum("tij,tj->ti", lower, x[:-1]))
    y = y.at[:-1].add(jnp.einsum("tji,tj->ti", lower, x[1:]))
  return y
