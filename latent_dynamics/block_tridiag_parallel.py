"""Block-tridiagonal SPD linear algebra in O(log T) depth (`lax.associative_scan`).

Same functions, signatures and results as `latent_dynamics.block_tridiag` (which documents the
storage convention), for accelerators where T sequential small steps are the bottleneck. Work is
O(T n^3) as in the sequential version (a constant factor more), depth O(log T).

* `cholesky`: the Schur complements S_t = L_tt L_tt^T are the prefixes of an associative scan
  whose elements are 2n x 2n precisions over the two boundary states (x_{t-1}, x_t) of a segment;
  combining two adjacent segments eliminates their shared boundary state (Gaussian variable
  elimination is associative, the same idea as the parallel Kalman filter of Sarkka and
  Garcia-Fernandez 2021). Given all S_t the blocks of L are independent.
* triangular solves and the selected inverse are affine recurrences x_t = F_t x_{t-1} + g_t (and
  Sigma_t = G_t Sigma_{t+1} G_t^T + C_t), whose maps compose associatively.

The n x n Cholesky factorisations and triangular solves over the T blocks are batched. On the CPU
they are written in plain jnp (a loop over the n columns) instead of calling LAPACK: jaxlib 0.10's
CPU LAPACK kernels split large batches over the intra-op thread pool and block a pool thread
while they wait, so two such calls running concurrently deadlock a 2-thread pool (seen here at
T >= 1000 with n = 10; jaxlib 0.11 removes that path). The plain version costs about the same at
these sizes (measured, 5000 blocks of 10 x 10 in float64: Cholesky 4.0 vs 2.5 ms, solve 3.2 vs
3.5 ms; the whole posterior is still 2-4x faster than dynamax). Other backends keep the vendor
kernels.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

from latent_dynamics.block_tridiag import (
  BlockCholesky,
  _check_rhs,
  check_blocks,
  logdet,  # Embarrassingly parallel already.
  symmetrize,
)

__all__ = ["cholesky", "solve_lower", "solve_upper", "solve", "logdet", "sample",
           "selected_inverse"]

_bt = lambda a: jnp.swapaxes(a, -1, -2)  # noqa: E731  (batched transpose)


def _use_vendor_linalg() -> bool:
  return jax.default_backend() != "cpu"


def _chol(a):
  """Batched lower Cholesky factor of a (..., n, n), column by column (outer-product form).

  Both branches factor the symmetric part of `a`, as `jnp.linalg.cholesky` does by default
  (the column recursion alone would read only the lower triangle).
  """
  if _use_vendor_linalg():
    return jnp.linalg.cholesky(a)
  a = symmetrize(a)
  n = a.shape[-1]
  rows = jnp.arange(n)

  def column(j, carry):
    rest, l = carry
    col = rest[..., :, j] / jnp.sqrt(rest[..., j, j])[..., None]
    col = jnp.where(rows >= j, col, 0.0)
    return rest - col[..., :, None] * col[..., None, :], l.at[..., :, j].set(col)

  return lax.fori_loop(0, n, column, (a, jnp.zeros_like(a)))[1]


def _tri(l, b, *, trans=False):
  """Solves L x = b (or L^T x = b) for lower-triangular L (..., n, n), b (..., n, k)."""
  if _use_vendor_linalg():
    return solve_triangular(l, b, lower=True, trans=1 if trans else 0)
  n = l.shape[-1]
  b = jnp.broadcast_to(b, jnp.broadcast_shapes(l.shape[:-2], b.shape[:-2]) + b.shape[-2:])
  m = _bt(l) if trans else l

  def row(k, x):  # Substitution: rows in order for L, in reverse for L^T.
    i = n - 1 - k if trans else k
    xi = (b[..., i, :] - jnp.einsum("...j,...jk->...k", m[..., i, :], x)) / m[..., i, i, None]
    return x.at[..., i, :].set(xi)

  return lax.fori_loop(0, n, row, jnp.zeros_like(b))


def _eliminate(a, b):
  """Combines segment precisions a over (u, v) and b over (v, w) by eliminating v.

  Each element is (p11, p21, p22) with p21 the (right, left) block. M = a.p22 + b.p11 is positive
  definite (a Schur complement of a principal submatrix of J), so its Cholesky factor exists.
  """
  a11, a21, a22 = a
  b11, b21, b22 = b
  cm = _chol(a22 + b11)
  wa = _tri(cm, a21)          # M^{-1/2} P21
  wb = _tri(cm, _bt(b21))     # M^{-1/2} Q12
  n11 = a11 - _bt(wa) @ wa
  n21 = -_bt(wb) @ wa
  n22 = b22 - _bt(wb) @ wb
  return n11, n21, n22


def cholesky(diag: jax.Array, lower: jax.Array) -> BlockCholesky:
  """Block Cholesky J = L L^T (see `block_tridiag.cholesky`), O(log T) depth.

  The diagonal blocks are symmetrised first (`block_tridiag.symmetrize`), as in the sequential
  version, so both agree (factor and gradient) on non-symmetric input.
  """
  t, n = check_blocks(diag, lower)
  diag = symmetrize(diag)
  zeros = jnp.zeros((t, n, n), diag.dtype)
  # Element t covers (x_{t-1}, x_t): its x_t block is J_tt and its coupling J[t, t-1]; element 0
  # has a dummy left state with no coupling.
  p21 = jnp.concatenate([zeros[:1], lower])
  _, _, schur = lax.associative_scan(_eliminate, (zeros, p21, diag))
  ls = _chol(schur)
  offs = _bt(_tri(ls[:-1], _bt(lower)))  # lower[t] L_tt^{-T}
  return BlockCholesky(ls, offs)


def _affine_scan(f, g):
  """Prefixes of x_t = f_t x_{t-1} + g_t with f_0 = 0 (as maps composed left to right)."""
  def combine(a, b):
    fa, ga = a
    fb, gb = b
    return fb @ fa, fb @ ga + gb

  _, x = lax.associative_scan(combine, (f, g))
  return x


def _as_matrix(b):
  return (b[..., None], True) if b.ndim == 2 else (b, False)


def solve_lower(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves L x = b (b (T, n) or (T, n, k)): x_t = -L_tt^{-1} L_{t,t-1} x_{t-1} + L_tt^{-1} b_t."""
  _check_rhs(chol, b)
  bm, vec = _as_matrix(b)
  n = chol.diag.shape[-1]
  f = -_tri(chol.diag[1:], chol.lower)
  f = jnp.concatenate([jnp.zeros((1, n, n), f.dtype), f])
  x = _affine_scan(f, _tri(chol.diag, bm))
  return x[..., 0] if vec else x


def solve_upper(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves L^T x = b: x_t = -L_tt^{-T} L_{t+1,t}^T x_{t+1} + L_tt^{-T} b_t, from the end."""
  _check_rhs(chol, b)
  bm, vec = _as_matrix(b)
  n = chol.diag.shape[-1]
  f = -_tri(chol.diag[:-1], _bt(chol.lower), trans=True)
  f = jnp.concatenate([f, jnp.zeros((1, n, n), f.dtype)])
  g = _tri(chol.diag, bm, trans=True)
  x = _affine_scan(f[::-1], g[::-1])[::-1]
  return x[..., 0] if vec else x


def solve(chol: BlockCholesky, b: jax.Array) -> jax.Array:
  """Solves J x = b given J's factor."""
  return solve_upper(chol, solve_lower(chol, b))


def sample(chol: BlockCholesky, mean: jax.Array, eps: jax.Array) -> jax.Array:
  """Reparameterised draw mean + L^{-T} eps from N(mean, J^{-1})."""
  if eps.shape != mean.shape:
    raise ValueError(f"eps must have the shape of mean {mean.shape}; got {eps.shape}.")
  return mean + solve_upper(chol, eps)


def selected_inverse(chol: BlockCholesky) -> tuple[jax.Array, jax.Array]:
  """Marginal covariances (T, n, n) and lag-one cross-covariances Cov(x_{t+1}, x_t) (T-1, n, n)."""
  n = chol.diag.shape[-1]
  eye = jnp.broadcast_to(jnp.eye(n, dtype=chol.diag.dtype), chol.diag.shape)
  w = _tri(chol.diag, eye)
  c = _bt(w) @ w  # (L_tt L_tt^T)^{-1}
  g = _tri(chol.diag[:-1], _bt(chol.lower), trans=True)
  g = jnp.concatenate([g, jnp.zeros((1, n, n), g.dtype)])

  def combine(a, b):
    ga, ca = a
    gb, cb = b
    return gb @ ga, gb @ ca @ _bt(gb) + cb

  _, cov = lax.associative_scan(combine, (g[::-1], c[::-1]))
  cov = cov[::-1]
  cov = 0.5 * (cov + _bt(cov))
  cross = -cov[1:] @ _bt(g[:-1])
  return cov, cross
