"""Expected quadratic forms of the LL-LVM likelihood, using the graph-sparse structure.

The likelihood mean parameter e (Eq. (4) of Park et al. 2015) is bilinear in the coordinates x
and the local maps C:

    e_k = -gamma sum_j eta_kj (C_k + C_j)(x_j - x_k),

so e = A(C) x = vec(C H(x)). The variational updates need E_q(C)[A^T Sigma_y A] for q(x) and
E_q(x)[H Sigma_y H^T] for q(C) (Eqs. (8)-(11)); the bound needs E[e^T Sigma_y e]. Since e is
orthogonal to the constant vector for every (x, C), Sigma_y = (eps 1 1^T + 2 gamma L)^{-1} (x) I
acts on e as L^+ / (2 gamma) (x) I, so both expectations reduce to

    (gamma / 2) * Phi(L^+, second moments),

where Phi is a sum of Hadamard products of dense (n, n) matrices (L^+, L^+ G, G L^+ G) with the
(n dx, n dx) second-moment matrix, and products with the sparse G and L. Cost O(n^2 dx^2 k)
time and O(n^2 dx^2) memory instead of O(n^3 dx^2 dy) for forming A explicitly.

Block matrices are stored as (n, dx, n, dx) arrays: Z[i, a, j, b] is entry (i dx + a, j dx + b).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def graph_left(neighbours: jax.Array, weights: jax.Array, z: jax.Array) -> jax.Array:
  """(G (x) I) Z: out[p] = sum_j eta_pj Z[j], along the leading (node) axis of z.

  Accumulates one neighbour slot at a time so memory stays O(size of z).
  """
  def body(s, acc):
    w = weights[:, s].reshape((-1,) + (1,) * (z.ndim - 1))
    return acc + w * z[neighbours[:, s]]
  return jax.lax.fori_loop(0, neighbours.shape[1], body, jnp.zeros_like(z))


def _t(z: jax.Array) -> jax.Array:
  """Block transpose of an (n, dx, n, dx) matrix."""
  return jnp.transpose(z, (2, 3, 0, 1))


def _g(nb, w, z):  # G Z on block rows.
  return graph_left(nb, w, z)


def _l(nb, w, deg, z):  # L Z on block rows, L = D - G.
  return deg[:, None, None, None] * z - graph_left(nb, w, z)


def _had(s: jax.Array, z: jax.Array) -> jax.Array:
  """(S (x) 1_{dx x dx}) o Z for an (n, n) S and an (n, dx, n, dx) Z."""
  return s[:, None, :, None] * z


def _sg(nb, w, s):
  """Returns (G S, S G, G S G) for symmetric (n, n) S and G."""
  gs = graph_left(nb, w, s)
  sg = gs.T
  gsg = graph_left(nb, w, sg)
  return gs, sg, gsg


def phi_x(neighbours, weights, degree, s, p) -> jax.Array:
  """Phi_x(S, P) with E_q(C)[A^T (S (x) I_dy) A] = gamma^2 Phi_x for e = A x.

  Args:
    neighbours, weights, degree: the graph's neighbour lists and degrees.
    s: (n, n) symmetric matrix (L^+ in the model).
    p: (n, dx, n, dx) second moments of the local maps, P[i, :, j, :] = E[C_i^T C_j].

  Returns:
    (n, dx, n, dx) symmetric matrix.
  """
  # Phi_x = L T L + K + K^T + S o (G P G) - SG o GP - GS o PG + GSG o P with T = S o P and
  # K = L (S o PG - SG o P); only products with G / L from the left (gathers of block rows),
  # and three block transposes (PG, T L = (L T)^T, K^T).
  nb, w, deg = neighbours, weights, degree
  gs, sg, gsg = _sg(nb, w, s)
  gp = _g(nb, w, p)
  pg = _t(gp)
  term_l = _l(nb, w, deg, _t(_l(nb, w, deg, _had(s, p))))
  k = _l(nb, w, deg, _had(s, pg) - _had(sg, p))
  w_terms = _had(s, _g(nb, w, pg)) - _had(sg, gp) - _had(gs, pg) + _had(gsg, p)
  return term_l + k + _t(k) + w_terms


def phi_c(neighbours, weights, degree, s, m) -> jax.Array:
  """Phi_C(S, M) with E_q(x)[H (S (x) 1) H^T] = gamma^2 Phi_C for e = vec(C H).

  Args:
    neighbours, weights, degree: the graph's neighbour lists and degrees.
    s: (n, n) symmetric matrix (L^+ in the model).
    m: (n, dx, n, dx) second moments of the coordinates, M[i, :, j, :] = E[x_i x_j^T].

  Returns:
    (n, dx, n, dx) symmetric matrix.
  """
  # Phi_C = S o (L M L) + GSG o M + G (S o M) G + H + H^T with Q^T = (L M)^T = M L and
  # H = G (S o Q^T - SG o M) - GS o Q^T; only products from the left and three block transposes.
  nb, w, deg = neighbours, weights, degree
  gs, sg, gsg = _sg(nb, w, s)
  qt = _t(_l(nb, w, deg, m))
  h = _g(nb, w, _had(s, qt) - _had(sg, m)) - _had(gs, qt)
  gsmg = _g(nb, w, _t(_g(nb, w, _had(s, m))))
  return _had(s, _l(nb, w, deg, qt)) + _had(gsg, m) + gsmg + h + _t(h)


def local_linear_mean(neighbours, weights, x, c) -> jax.Array:
  """e / gamma: e_k / gamma = -sum_j eta_kj (C_k + C_j)(x_j - x_k) (Eq. (4) of Park et al. 2015).

  Args:
    neighbours, weights: the graph's neighbour lists.
    x: (n, dx) coordinates.
    c: (n, dy, dx) local maps.

  Returns:
    (n, dy).
  """
  dxs = x[neighbours] - x[:, None, :]                       # (n, m, dx)
  csum = c[:, None] + c[neighbours]                         # (n, m, dy, dx)
  return -jnp.einsum("nm,nmyd,nmd->ny", weights, csum, dxs)
