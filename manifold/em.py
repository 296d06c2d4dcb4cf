"""Variational EM for LL-LVM (Sec. 3 of Park et al. 2015), in float64.

Model (Sec. 2), for a connected neighbourhood graph G with Laplacian L and eps > 0 fixed:

  p(x | G, alpha) = N(0, Pi),  Pi^{-1} = (alpha I_n + 2 L) (x) I_dx                      (Eq. 1)
  p(C | G)        = MN(0, I_dy, Sigma_C0),  Sigma_C0^{-1} = (eps 1 1^T + 2 L) (x) I_dx    (Eq. 2)
  p(y | x, C, G)  = N(Sigma_y e, Sigma_y),  Sigma_y^{-1} = (eps 1 1^T + 2 gamma L) (x) I_dy,
                    e_k = -gamma sum_j eta_kj (C_k + C_j)(x_j - x_k)                    (Eqs. 3-4)

which is the normalised form of exp(-eps/2 |sum_i y_i|^2 - gamma/2 sum_ij eta_ij
|y_j - y_i - C_i (x_j - x_i)|^2). The posterior is approximated by q(x) q(C) with

  q(x) = N(mu_x, Sigma_x),  Sigma_x^{-1} = Pi^{-1} + E_q(C)[A^T Sigma_y A],  mu_x = Sigma_x E[A]^T y
  q(C) = MN(mu_C, I_dy, Sigma_C),  Sigma_C^{-1} = Sigma_C0^{-1} + E_q(x)[H Sigma_y H^T],
         mu_C = (d/dC y^T e(mu_x, C)) Sigma_C                                  (Eqs. 8-11)

(e = A x = vec(C H)), and the M-steps maximise the bound in gamma (closed form, because e is
orthogonal to the constant vector, so the bound is -a gamma + dy (n-1)/2 log gamma + const) and,
optionally (`learn_alpha`), in alpha (a 1-D concave problem solved on the spectrum of L). As in
the authors' reference implementation, alpha is kept at 1e-3 by default and each iteration
updates q(x) first (given q(C)), then q(C), then gamma; the default start is their random q(C).
All expectations use `manifold.expectations` (Hadamard products with L^+, graph-sparse products
with G). The (n dx)-dimensional precisions are dense (L^+ is), and the expectations need every
block of the covariances (Hadamard products with the dense L^+), so each update factors its
precision by Cholesky and forms the covariance from the factor: on the CPU by LAPACK's
dpotrf + dpotri on the host (`chol_inverse`, about n^3 flops against about 3 n^3 for a
triangular solve against the identity and a product of the two factors), elsewhere in jnp.
`update_gauge` (optional, `gauge=True`) is a parameter-expansion step along the model's exact
invariance x_i -> A x_i, C_i -> C_i A^{-1}. `run_squarem` (`fit(accelerate=True)`) is
SQUAREM-accelerated EM: extrapolation along pairs of EM steps, kept only where the bound gains.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from manifold import expectations as ex
from manifold.graph import Graph, check_observations
from manifold.graph import isomap as graph_isomap

DEFAULT_EPSILON = 1e-3
# The reference implementation keeps alpha at 1e-3 (its M-step for alpha is switched off).
DEFAULT_ALPHA = 1e-3
# Whether EM runs the parameter-expansion step `update_gauge` by default.
GAUGE = False
# Whether `fit` runs SQUAREM-accelerated EM (`run_squarem`) by default.
ACCELERATE = False
# Largest SQUAREM step length (in units of the EM step); near convergence r / v is ill-determined.
SQUAREM_MAX_STEP = 1024.0


class Problem(NamedTuple):
  """Data and graph arrays for one fit (float64 jax arrays; a pytree).

  Attributes:
    y: (n, dy) observations.
    neighbours: (n, m) int32 padded neighbour lists.
    weights: (n, m) 1 for a neighbour, 0 for padding.
    degree: (n,) node degrees.
    laplacian: (n, n) L.
    laplacian_pinv: (n, n) L^+.
    eigenvalues: (n,) spectrum of L (first entry 0).
    epsilon: () the fixed precision eps of Eqs. (2)-(3).
  """
  y: jax.Array
  neighbours: jax.Array
  weights: jax.Array
  degree: jax.Array
  laplacian: jax.Array
  laplacian_pinv: jax.Array
  eigenvalues: jax.Array
  epsilon: jax.Array


class EMState(NamedTuple):
  """Variational posterior q(x) q(C) and hyperparameters.

  Attributes:
    mu_x: (n, dx) mean of q(x).
    cov_x: (n, dx, n, dx) covariance Sigma_x.
    logdet_prec_x: () log |Sigma_x^{-1}|.
    mu_c: (n, dy, dx) mean of q(C); mu_c[i] is the mean of C_i.
    cov_c: (n, dx, n, dx) column covariance Sigma_C of the matrix normal q(C).
    logdet_prec_c: () log |Sigma_C^{-1}|.
    alpha: () prior precision of x.
    gamma: () noise precision.
  """
  mu_x: jax.Array
  cov_x: jax.Array
  logdet_prec_x: jax.Array
  mu_c: jax.Array
  cov_c: jax.Array
  logdet_prec_c: jax.Array
  alpha: jax.Array
  gamma: jax.Array


def make_problem(y, graph: Graph, *, epsilon: float = DEFAULT_EPSILON) -> Problem:
  """Checks the data against the graph and packs the arrays of one fit (float64).

  Args:
    y: (n, dy) finite observations without duplicate rows.
    graph: a connected `Graph` on the n observations.
    epsilon: eps > 0 of Eqs. (2)-(3) (makes the priors on C and y proper).

  Returns:
    The `Problem`.
  """
  y = check_observations(y)
  if y.shape[0] != graph.num_nodes:
    raise ValueError(f"y has {y.shape[0]} rows but graph has {graph.num_nodes} nodes.")
  if not epsilon > 0:
    raise ValueError(f"epsilon must be positive; got {epsilon}.")
  with jax.enable_x64(True):
    f = lambda a: jnp.asarray(a, dtype=jnp.float64)
    lap = np.diag(graph.degree) - graph.adjacency
    return Problem(f(y), jnp.asarray(graph.neighbours, dtype=jnp.int32), f(graph.weights),
                   f(graph.degree), f(lap), f(graph.laplacian_pinv), f(graph.eigenvalues),
                   f(epsilon))


def _check_dx(dx, dy):
  if not isinstance(dx, (int, np.integer)) or not 1 <= dx < dy:
    raise ValueError(f"dx (latent dimension) must be an integer with 1 <= dx < dy = {dy}; "
                     f"got {dx!r}.")


INITS = ("random_c", "isomap", "spectral", "random", "given")


def init_state(problem: Problem, graph: Graph, dx: int, key: jax.Array, *,
               init: str = "random_c", alpha: float = DEFAULT_ALPHA, gamma: float = 1.0,
               scale: float = 1.0, x_init=None) -> EMState:
  """Initial q(x) q(C); every EM step starts with the q(x) update (Eqs. 8-9), then q(C).

  Args:
    problem: from `make_problem`.
    graph: the same graph (its Laplacian eigenvectors give the spectral initialisation).
    dx: latent dimension, 1 <= dx < dy.
    key: PRNG key.
    init: "random_c" (the reference implementation's start: q(C) with iid N(0, scale^2) means
      and identity column covariance; q(x) is overwritten by the first step). The others put
      q(x) at a point mass at initial coordinates, rescaled to standard deviation `scale` per
      coordinate on average, and q(C) at its closed-form update (Eqs. 10-11) given them:
      "isomap" (`graph.isomap` on the same graph), "spectral" (Laplacian eigenmaps), "random"
      (iid normal) or "given" (`x_init`).
    alpha, gamma: initial hyperparameters (alpha stays fixed when EM runs with
      learn_alpha=False).
    scale: standard deviation of the initial random means or coordinates.
    x_init: (n, dx) initial coordinates for init="given".

  Returns:
    The initial `EMState`.
  """
  n, dy = problem.y.shape
  _check_dx(dx, dy)
  if init not in INITS:
    raise ValueError(f"init must be one of {INITS}; got {init!r}.")
  if not (alpha > 0 and gamma > 0):
    raise ValueError(f"alpha and gamma must be positive; got {alpha}, {gamma}.")
  if not scale > 0:
    raise ValueError(f"scale must be positive; got {scale}.")
  with jax.enable_x64(True):
    f64 = jnp.float64
    zeros4 = jnp.zeros((n, dx, n, dx), dtype=f64)
    hyper = (jnp.asarray(alpha, f64), jnp.asarray(gamma, f64))
    if init == "random_c":
      mu_c = scale * jax.random.normal(key, (n, dy, dx), dtype=f64)
      eye4 = jnp.eye(n * dx, dtype=f64).reshape(n, dx, n, dx)
      return EMState(jnp.zeros((n, dx), f64), zeros4, jnp.zeros((), f64), mu_c, eye4,
                     jnp.zeros((), f64), *hyper)
    if init == "isomap":
      mu = graph_isomap(problem.y, graph, dx)
    elif init == "spectral":
      lap = np.diag(graph.degree) - graph.adjacency
      _, vecs = np.linalg.eigh(lap)
      mu = vecs[:, 1:dx + 1]
    elif init == "random":
      mu = np.asarray(jax.random.normal(key, (n, dx), dtype=f64))
    else:
      if x_init is None or np.shape(x_init) != (n, dx) or not np.all(np.isfinite(x_init)):
        raise ValueError(f"x_init must be a finite ({n}, {dx}) array for init='given'; got "
                         f"{None if x_init is None else np.shape(x_init)}.")
      mu = np.asarray(x_init, dtype=np.float64)
    mu = mu - mu.mean(axis=0)
    mu = jnp.asarray(scale * mu / np.sqrt(np.mean(mu ** 2)), dtype=f64)
    state = EMState(mu, zeros4, jnp.zeros((), f64), jnp.zeros((n, dy, dx), f64), zeros4,
                    jnp.zeros((), f64), *hyper)
    return update_q_c(problem, state)


def _flat(z):
  n, dx = z.shape[:2]
  return z.reshape(n * dx, n * dx)


def _chol_inverse_jnp(prec, rhs):
  """(Sigma, Sigma rhs, log |prec|) from a Cholesky factor, in jnp (any backend)."""
  chol = jnp.linalg.cholesky(prec)
  eye = jnp.eye(prec.shape[0], dtype=prec.dtype)
  linv = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
  sol = jax.scipy.linalg.cho_solve((chol, True), rhs)
  return linv.T @ linv, sol, 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))


def _mirror_lower(a, block=512):
  """Copies the lower triangle of the square array a onto its upper triangle, in place."""
  size = a.shape[0]
  for j0 in range(0, size, block):
    diag = a[j0:j0 + block, j0:j0 + block]
    diag[...] = np.tril(diag) + np.tril(diag, -1).T
    for i0 in range(j0 + block, size, block):
      a[j0:j0 + block, i0:i0 + block] = a[i0:i0 + block, j0:j0 + block].T
  return a


def _chol_inverse_host(prec, rhs, dtype):
  """`_chol_inverse_jnp` by LAPACK on the host: dpotrf, dpotrs, and dpotri for the inverse.

  dpotri forms Sigma from the factor in 2 n^3 / 3 flops (jnp has no such primitive: the triangular
  solve against the identity and the product of the two factors cost about 3 n^3). A matrix that
  is not positive definite gives NaNs, as jnp.linalg.cholesky does. Arguments and results travel
  as raw bytes (uint8, a trailing axis of the itemsize) because pure_callback canonicalises
  float64 arrays to float32 on threads where jax_enable_x64 is off (a thread-local setting;
  `fit` switches it on by a context manager only, and XLA runs the callback on its own threads).
  """
  from scipy.linalg import lapack  # pylint: disable=g-import-not-at-top
  def out(*arrays):
    return tuple(np.asarray(a, dtype=dtype, order="C")[..., None].view(np.uint8) for a in arrays)
  prec = np.asarray(prec).view(dtype)[..., 0]
  rhs = np.asarray(rhs).view(dtype)[..., 0].astype(np.float64)
  # prec is symmetric, so its transpose is the same matrix in Fortran order.
  a = np.array(prec.T, dtype=np.float64, order="F", copy=True)
  nans = out(np.full(a.shape, np.nan), np.full(rhs.shape, np.nan), np.asarray(np.nan))
  chol, info = lapack.dpotrf(a, lower=1, clean=0, overwrite_a=1)
  if info != 0:
    return nans
  logdet = 2.0 * np.sum(np.log(np.diagonal(chol)))
  sol, _ = lapack.dpotrs(chol, rhs, lower=1)
  inv, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
  if info != 0:
    return nans
  # The result is symmetric: its Fortran-ordered transpose is C-ordered without a copy.
  return out(_mirror_lower(inv).T, sol, logdet)


def _chol_inverse_cpu(prec, rhs):
  dtype = np.dtype(prec.dtype)
  shapes = tuple(jax.ShapeDtypeStruct(shape + (dtype.itemsize,), jnp.uint8)
                 for shape in (prec.shape, rhs.shape, ()))
  as_bytes = lambda a: jax.lax.bitcast_convert_type(a, jnp.uint8)
  outs = jax.pure_callback(functools.partial(_chol_inverse_host, dtype=dtype), shapes,
                           as_bytes(prec), as_bytes(rhs), vmap_method="sequential")
  return tuple(jax.lax.bitcast_convert_type(o, prec.dtype) for o in outs)


def chol_inverse(prec: jax.Array, rhs: jax.Array, host_lapack: bool = True):
  """Sigma = prec^{-1}, Sigma rhs and log |prec| for a symmetric positive definite prec.

  On the CPU backend (and host_lapack) LAPACK's dpotrf / dpotrs / dpotri run on the host through
  `jax.pure_callback` (about n^3 flops in all); elsewhere a jnp Cholesky and triangular solves.

  Args:
    prec: (N, N) float64 precision.
    rhs: (N, r) right-hand sides.
    host_lapack: False forces the jnp path on every backend.

  Returns:
    (Sigma (N, N), Sigma rhs (N, r), log |prec| ()).
  """
  if not host_lapack:
    return _chol_inverse_jnp(prec, rhs)
  return jax.lax.platform_dependent(prec, rhs, cpu=_chol_inverse_cpu, default=_chol_inverse_jnp)


def second_moment_x(state: EMState) -> jax.Array:
  """M[i, :, j, :] = E_q(x)[x_i x_j^T], (n, dx, n, dx)."""
  return state.cov_x + jnp.einsum("ia,jb->iajb", state.mu_x, state.mu_x)


def second_moment_c(state: EMState) -> jax.Array:
  """P[i, :, j, :] = E_q(C)[C_i^T C_j] = mu_i^T mu_j + dy Sigma_C[i, j], (n, dx, n, dx)."""
  dy = state.mu_c.shape[1]
  return dy * state.cov_c + jnp.einsum("iya,jyb->iajb", state.mu_c, state.mu_c)


def _kron_eye(a, dx):
  n = a.shape[0]
  return (a[:, None, :, None] * jnp.eye(dx, dtype=a.dtype)[None, :, None, :]).reshape(
      n * dx, n * dx)


def _y_dot_e(problem, x, c):
  """y^T e / gamma."""
  return jnp.sum(problem.y * ex.local_linear_mean(problem.neighbours, problem.weights, x, c))


def precision_c(problem: Problem, state: EMState) -> jax.Array:
  """Sigma_C^{-1} = Sigma_C0^{-1} + (gamma / 2) Phi_C(L^+, M) as an (n dx, n dx) matrix (Eq. 10)."""
  n, dx = state.mu_x.shape
  p = problem
  prior = _kron_eye(p.epsilon + 2.0 * p.laplacian, dx)
  phi = ex.phi_c(p.neighbours, p.weights, p.degree, p.laplacian_pinv, second_moment_x(state))
  return prior + 0.5 * state.gamma * _flat(phi)


@functools.partial(jax.jit, static_argnames="host_lapack")
def update_q_c(problem: Problem, state: EMState, host_lapack: bool = True) -> EMState:
  """Closed-form q(C) given q(x), gamma (Eqs. 10-11 of Park et al. 2015)."""
  n, dx = state.mu_x.shape
  dy = problem.y.shape[1]
  prec = precision_c(problem, state)
  # Linear term: d/dC [y^T e(mu_x, C)], e is linear in C.
  b = state.gamma * jax.grad(lambda c: _y_dot_e(problem, state.mu_x, c))(state.mu_c)
  rhs = jnp.transpose(b, (0, 2, 1)).reshape(n * dx, dy)
  cov, mu_t, logdet = chol_inverse(prec, rhs, host_lapack)
  mu_c = jnp.transpose(mu_t.reshape(n, dx, dy), (0, 2, 1))
  return state._replace(mu_c=mu_c, cov_c=cov.reshape(n, dx, n, dx), logdet_prec_c=logdet)


def phi_x_of(problem: Problem, state: EMState) -> jax.Array:
  """Phi_x(L^+, P) of the current q(C), (n, dx, n, dx)."""
  p = problem
  return ex.phi_x(p.neighbours, p.weights, p.degree, p.laplacian_pinv, second_moment_c(state))


def precision_x(problem: Problem, state: EMState, phi_x=None) -> jax.Array:
  """Sigma_x^{-1} = Pi^{-1} + (gamma / 2) Phi_x(L^+, P) as an (n dx, n dx) matrix (Eq. 8)."""
  n, dx = state.mu_x.shape
  phi_x = phi_x_of(problem, state) if phi_x is None else phi_x
  prior = _kron_eye(state.alpha * jnp.eye(n, dtype=problem.y.dtype) + 2.0 * problem.laplacian, dx)
  return prior + 0.5 * state.gamma * _flat(phi_x)


@functools.partial(jax.jit, static_argnames="host_lapack")
def update_q_x(problem: Problem, state: EMState, phi_x=None, host_lapack: bool = True) -> EMState:
  """Closed-form q(x) given q(C), alpha, gamma (Eqs. 8-9 of Park et al. 2015)."""
  n, dx = state.mu_x.shape
  prec = precision_x(problem, state, phi_x)
  b = state.gamma * jax.grad(lambda x: _y_dot_e(problem, x, state.mu_c))(state.mu_x)
  cov, mu_x, logdet = chol_inverse(prec, b.reshape(n * dx, 1), host_lapack)
  return state._replace(mu_x=mu_x.reshape(n, dx), cov_x=cov.reshape(n, dx, n, dx),
                        logdet_prec_x=logdet)


def _residual_energy(problem, state, phi_x):
  """a(q) with bound = -a gamma + dy (n - 1)/2 log gamma + terms free of gamma."""
  y = problem.y
  y_l_y = jnp.sum(y * (problem.laplacian @ y))
  cross = _y_dot_e(problem, state.mu_x, state.mu_c)
  quad = jnp.sum(phi_x * second_moment_x(state))
  return y_l_y - cross + 0.25 * quad


@jax.jit
def update_gamma(problem: Problem, state: EMState, phi_x=None) -> EMState:
  """M-step for the noise precision: gamma = dy (n - 1) / (2 a(q)), the bound's exact maximiser."""
  n, dy = problem.y.shape
  phi_x = phi_x_of(problem, state) if phi_x is None else phi_x
  a = _residual_energy(problem, state, phi_x)
  return state._replace(gamma=dy * (n - 1) / (2.0 * a))


@functools.partial(jax.jit, static_argnames="num_bisect")
def update_alpha(problem: Problem, state: EMState, num_bisect: int = 100) -> EMState:
  """M-step for alpha: the root of sum_i dx / (alpha + 2 lambda_i) = tr E[x x^T] (bisection).

  The alpha-dependent part of the bound, -alpha/2 tr M + dx/2 sum_i log(alpha + 2 lambda_i), is
  concave in alpha, so the root is its maximiser.
  """
  dx = state.mu_x.shape[1]
  tr_m = jnp.sum(state.mu_x ** 2) + jnp.einsum("iaia->", state.cov_x)
  lam = problem.eigenvalues

  def body(_, bracket):
    lo, hi = bracket
    mid = 0.5 * (lo + hi)
    grad = jnp.sum(dx / (jnp.exp(mid) + 2.0 * lam)) - tr_m
    return jnp.where(grad > 0, mid, lo), jnp.where(grad > 0, hi, mid)

  lo, hi = jax.lax.fori_loop(0, num_bisect, body, (jnp.asarray(-40.0), jnp.asarray(40.0)))
  return state._replace(alpha=jnp.exp(0.5 * (lo + hi)))


def transform_latents(state: EMState, a: jax.Array) -> EMState:
  """The push-forward of q(x) q(C) under x_i -> A x_i, C_i -> C_i A^{-1} (A is (dx, dx)).

  e (Eq. 4) is unchanged for every (x, C), so the expected log likelihood is too; only the
  priors and the entropies of q change. q stays in the variational family (Gaussian q(x),
  matrix-normal q(C) with column covariance (I (x) A^{-T}) Sigma_C (I (x) A^{-1})).
  """
  n = state.mu_x.shape[0]
  a_inv = jnp.linalg.inv(a)
  logdet_a = jnp.linalg.slogdet(a)[1]
  cov_x = jnp.einsum("ab,ibjc,dc->iajd", a, state.cov_x, a)
  cov_c = jnp.einsum("ba,ibjc,cd->iajd", a_inv, state.cov_c, a_inv)
  return state._replace(mu_x=state.mu_x @ a.T, cov_x=cov_x, mu_c=state.mu_c @ a_inv,
                        cov_c=cov_c, logdet_prec_x=state.logdet_prec_x - 2.0 * n * logdet_a,
                        logdet_prec_c=state.logdet_prec_c + 2.0 * n * logdet_a)


def _block_weighted_sum(problem, z, diag_weight, ones_weight):
  """sum_ij K_ij Z[i, :, j, :] for K = diag_weight I + ones_weight 1 1^T + 2 L, (dx, dx)."""
  n = z.shape[0]
  rows = jnp.arange(n)[:, None]
  diag = jnp.einsum("iaib->ab", z)
  diag_deg = jnp.einsum("i,iaib->ab", problem.degree, z)
  edges = jnp.einsum("is,isab->ab", problem.weights, z[rows, :, problem.neighbours, :])
  return (diag_weight * diag + ones_weight * jnp.einsum("iajb->ab", z)
          + 2.0 * (diag_deg - edges))


@jax.jit
def update_gauge(problem: Problem, state: EMState) -> EMState:
  """Parameter-expansion step: q transformed by the A that maximises the bound (closed form).

  The model is invariant to x_i -> A x_i, C_i -> C_i A^{-1} except through the priors, so EM
  moves slowly along this direction (the q(x) and q(C) updates each hold the other fixed). By
  `transform_latents`, the bound's dependence on W = A^T A is
    f(W) = -tr(W Mt)/2 - tr(W^{-1} Pt)/2 + n (1 - dy)/2 log |W|,
  Mt = sum_ij (alpha I + 2L)_ij E[x_i x_j^T], Pt = sum_ij (eps 1 1^T + 2L)_ij E[C_i^T C_j].
  Its only stationary point in the positive definite cone (the maximiser: f -> -inf at the
  boundary and at infinity) solves W Mt W - c W - Pt = 0, c = n (1 - dy): with
  R = Mt^{1/2} Pt Mt^{1/2}, W = Mt^{-1/2} V Mt^{-1/2}, V = c/2 + (c^2/4 + R)^{1/2}. A = W^{1/2}
  (any rotation of it gives the same bound). This is the PX-EM idea of Liu, Rubin and Wu
  (1998) applied to the variational bound; the bound never decreases.
  """
  n, dy = problem.y.shape
  mt = _block_weighted_sum(problem, second_moment_x(state), state.alpha, 0.0)
  pt = _block_weighted_sum(problem, second_moment_c(state), 0.0, problem.epsilon)
  c = n * (1.0 - dy)

  def sym_fn(z, fn):
    vals, vecs = jnp.linalg.eigh(0.5 * (z + z.T))
    return (vecs * fn(vals)) @ vecs.T

  mt_half = sym_fn(mt, jnp.sqrt)
  mt_ihalf = sym_fn(mt, lambda v: 1.0 / jnp.sqrt(v))
  v = sym_fn(mt_half @ pt @ mt_half, lambda r: 0.5 * c + jnp.sqrt(0.25 * c * c + r))
  w = mt_ihalf @ v @ mt_ihalf
  return transform_latents(state, sym_fn(w, jnp.sqrt))


@jax.jit
def lower_bound_terms(problem: Problem, state: EMState, phi_x=None) -> dict[str, jax.Array]:
  """The variational lower bound (Eq. 7 of Park et al. 2015) and its parts.

  F = E_q[log p(y | x, C)] - KL(q(x) || p(x)) - KL(q(C) || p(C)).

  Returns:
    dict with "bound", "likelihood", "kl_x", "kl_c".
  """
  n, dx = state.mu_x.shape
  dy = problem.y.shape[1]
  y, eps, gamma, alpha = problem.y, problem.epsilon, state.gamma, state.alpha
  phi_x = phi_x_of(problem, state) if phi_x is None else phi_x
  lam = problem.eigenvalues[1:]
  log_pdet_l = jnp.sum(jnp.log(lam))
  m = second_moment_x(state)
  p = second_moment_c(state)
  lik = (-0.5 * eps * jnp.sum(jnp.sum(y, axis=0) ** 2)
         - gamma * _residual_energy(problem, state, phi_x)
         + 0.5 * dy * (jnp.log(eps * n) + (n - 1) * jnp.log(2.0 * gamma) + log_pdet_l)
         - 0.5 * n * dy * jnp.log(2.0 * jnp.pi))
  tr_blocks_m = jnp.einsum("iaja->ij", m)
  kl_x = 0.5 * (alpha * jnp.trace(tr_blocks_m) + 2.0 * jnp.sum(problem.laplacian * tr_blocks_m)
                - n * dx - dx * jnp.sum(jnp.log(alpha + 2.0 * problem.eigenvalues))
                + state.logdet_prec_x)
  tr_blocks_p = jnp.einsum("iaja->ij", p)
  logdet_prior_c = dx * (jnp.log(eps * n) + jnp.sum(jnp.log(2.0 * lam)))
  kl_c = 0.5 * (eps * jnp.sum(tr_blocks_p) + 2.0 * jnp.sum(problem.laplacian * tr_blocks_p)
                - dy * n * dx - dy * logdet_prior_c + dy * state.logdet_prec_c)
  return {"bound": lik - kl_x - kl_c, "likelihood": lik, "kl_x": kl_x, "kl_c": kl_c}


@jax.jit
def lower_bound(problem: Problem, state: EMState) -> jax.Array:
  """The variational lower bound F(q, alpha, gamma) (Eq. 7 of Park et al. 2015)."""
  return lower_bound_terms(problem, state)["bound"]


def _em_body(problem, state, phi_x, learn_alpha, gauge):
  """One EM iteration given Phi_x of the current q(C); returns the state, its Phi_x and bound."""
  state = update_q_x(problem, state, phi_x)
  state = update_q_c(problem, state)
  if gauge:
    state = update_gauge(problem, state)
  phi_x = phi_x_of(problem, state)
  state = update_gamma(problem, state, phi_x)
  if learn_alpha:
    state = update_alpha(problem, state)
  return state, phi_x, lower_bound_terms(problem, state, phi_x)["bound"]


@functools.partial(jax.jit, static_argnames=("learn_alpha", "gauge"))
def em_step(problem: Problem, state: EMState, learn_alpha: bool = False,
            gauge: bool = GAUGE) -> tuple[EMState, jax.Array]:
  """One EM iteration: q(x), q(C), (if gauge) `update_gauge`, gamma and (if learn_alpha) alpha.

  Returns the new state and its bound. The order is the reference implementation's: q(x)
  given the current q(C) first. Every sub-step maximises the bound over its block, so the
  bound never decreases.
  """
  state, _, bound = _em_body(problem, state, phi_x_of(problem, state), learn_alpha, gauge)
  return state, bound


@functools.partial(jax.jit, static_argnames=("learn_alpha", "gauge"))
def run_em(problem: Problem, state: EMState, num_iters_array: jax.Array,
           learn_alpha: bool = False, gauge: bool = GAUGE) -> tuple[EMState, jax.Array]:
  """`em_step` under lax.scan; the length is the static length of `num_iters_array`.

  Phi_x of q(C) is carried from the end of one iteration (where the gamma M-step and the bound
  need it) to the q(x) update of the next, so each iteration computes Phi_x and Phi_C once.
  """
  def body(carry, _):
    s, phi = carry
    s, phi, bound = _em_body(problem, s, phi, learn_alpha, gauge)
    return (s, phi), bound
  (state, _), bounds = jax.lax.scan(body, (state, phi_x_of(problem, state)), num_iters_array)
  return state, bounds


class SquaremCarry(NamedTuple):
  """Loop state of `run_squarem`: the accepted q, Phi_x of its q(C), and the step cap."""
  state: EMState
  phi_x: jax.Array
  step_max: jax.Array


def squarem_extrapolate(t0, t1, t2, step_max):
  """SQUAREM's extrapolated point from three iterates t1 = F(t0), t2 = F(t1) (pytrees).

  With r = t1 - t0, v = t2 - 2 t1 + t0 and step s = |r| / |v| clipped to [1, step_max], the
  point is t0 + 2 s r + s^2 v (scheme S3 of Varadhan and Roland 2008, alpha = -s). s = 1 gives
  t2; for a map F(t) = c + a (t - c) with a scalar a in (0, 1), the unclipped step is
  1 / (1 - a) and the point is the fixed point c.

  Returns:
    (the extrapolated pytree, s).
  """
  r = jax.tree.map(lambda a, b: b - a, t0, t1)
  v = jax.tree.map(lambda a, b, c: c - 2.0 * b + a, t0, t1, t2)
  sq = lambda tree: sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(tree))
  step = jnp.clip(jnp.sqrt(sq(r) / jnp.maximum(sq(v), jnp.finfo(sq(v).dtype).tiny)), 1.0,
                  step_max)
  return jax.tree.map(lambda a, b, c: a + 2.0 * step * b + step ** 2 * c, t0, r, v), step


def _squarem_cycle(problem, carry, learn_alpha, gauge, step_factor):
  """One SQUAREM cycle (scheme S3 of Varadhan and Roland 2008): two EM steps, an extrapolated
  point along them, and one EM step from it, kept only if its bound is at least the second EM
  step's (else the second EM step is kept), so the accepted bounds never decrease.

  Returns the new carry and the bounds (after EM step 1, after EM step 2, accepted).
  """
  s0, phi0, step_max = carry
  s1, phi1, b1 = _em_body(problem, s0, phi0, learn_alpha, gauge)
  s2, phi2, b2 = _em_body(problem, s1, phi1, learn_alpha, gauge)
  # q(C) (mean and column covariance) and log gamma are extrapolated; Phi_x, which the q(x)
  # update reads, is recomputed from them (extrapolating Phi_x itself, i.e. E[C^T C] apart from
  # mu_C, was rejected about twice as often in trials at n = 1000).
  par = lambda s: (s.mu_c, s.cov_c, jnp.log(s.gamma))
  (mu_c, cov_c, log_gamma), step = squarem_extrapolate(par(s0), par(s1), par(s2), step_max)
  s_ext = s2._replace(mu_c=mu_c, cov_c=cov_c, gamma=jnp.exp(log_gamma))
  s3, phi3, b3 = _em_body(problem, s_ext, phi_x_of(problem, s_ext), learn_alpha, gauge)
  # A non-positive-definite extrapolated q(C) can make the q(x) precision indefinite: NaNs.
  accept = jnp.isfinite(b3) & (b3 >= b2)
  pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(accept, x, y), a, b)
  state, phi_x, bound = pick((s3, phi3, b3), (s2, phi2, b2))
  # The R package SQUAREM's step-cap rule: widen it after a capped step that was kept, narrow
  # it after a rejected one.
  at_cap = step >= step_max
  step_max = jnp.where(accept & at_cap, jnp.minimum(step_max * step_factor, SQUAREM_MAX_STEP),
                       jnp.where(~accept & at_cap, jnp.maximum(1.0, step_max / step_factor),
                                 step_max))
  return SquaremCarry(state, phi_x, step_max), jnp.stack([b1, b2, bound])


@functools.partial(jax.jit, static_argnames=("learn_alpha", "gauge"))
def run_squarem(problem: Problem, carry: SquaremCarry, num_cycles_array: jax.Array,
                learn_alpha: bool = False, gauge: bool = GAUGE,
                step_factor: float = 4.0) -> tuple[SquaremCarry, jax.Array]:
  """SQUAREM-accelerated EM under lax.scan: `_squarem_cycle` once per entry of num_cycles_array.

  EM converges linearly and slowly here (Sec. "Scaling" of the README); SQUAREM (Varadhan and
  Roland 2008, "Simple and globally convergent methods for accelerating the convergence of any
  EM algorithm") extrapolates along two successive EM steps of the map (mu_C, Sigma_C,
  log gamma) -> the same after one EM iteration (q(x) is a function of these). Each cycle costs
  three EM iterations and one extra Phi_x.

  Returns the carry and the (cycles, 3) bounds: after the two EM steps and the accepted point.
  """
  def body(c, _):
    return _squarem_cycle(problem, c, learn_alpha, gauge, step_factor)
  return jax.lax.scan(body, carry, num_cycles_array)


def init_squarem(problem: Problem, state: EMState) -> SquaremCarry:
  """The `run_squarem` carry for a state (Phi_x of its q(C), step cap 1)."""
  with jax.enable_x64(True):
    return SquaremCarry(state, jax.jit(phi_x_of)(problem, state), jnp.asarray(1.0, jnp.float64))


class FitResult(NamedTuple):
  """Output of `fit`: the final state, the bound after each iteration and the problem."""
  state: EMState
  bounds: np.ndarray
  problem: Problem


def fit(y, graph: Graph, dx: int, *, key: jax.Array | None = None, max_iters: int = 200,
        tol: float = 1e-7, chunk: int = 10, epsilon: float = DEFAULT_EPSILON,
        init: str = "random_c", alpha: float = DEFAULT_ALPHA, gamma: float = 1.0,
        learn_alpha: bool = False, init_scale: float = 1.0, x_init=None,
        gauge: bool = GAUGE, accelerate: bool = ACCELERATE) -> FitResult:
  """Fits LL-LVM by variational EM until the relative bound change per iteration is below tol.

  Runs in float64 (jax.enable_x64 is switched on inside). Iterations run in jitted chunks of
  `chunk` EM steps (lax.scan); convergence is checked between chunks.

  Args:
    y: (n, dy) observations (see `manifold.normalise`: the model is not scale free).
    graph: connected neighbourhood graph on the n points (`knn_graph` or `make_graph`).
    dx: latent dimension, 1 <= dx < dy.
    key: PRNG key for the initialisation (default PRNGKey(0)).
    max_iters: iteration cap.
    tol: stop when |F_t - F_{t-1}| <= tol |F_t|.
    chunk: EM iterations per compiled call.
    epsilon: eps of Eqs. (2)-(3).
    init, alpha, gamma: see `init_state` (alpha and gamma are the initial values).
    learn_alpha: run the M-step for alpha as well (the reference implementation keeps it fixed).
    init_scale: `scale` of `init_state`.
    x_init: initial coordinates for init="given".
    gauge: run `update_gauge` (parameter expansion) in every iteration.
    accelerate: run SQUAREM cycles (`run_squarem`, three EM iterations each, `chunk // 3` per
      compiled call) instead of plain EM; the stopping rule is the same, applied to the two
      plain EM steps of each cycle.

  Returns:
    `FitResult` with the bound after every iteration (with `accelerate`, after each of the
    three EM iterations of a cycle, the third being the accepted point; non-decreasing either
    way).
  """
  if not isinstance(max_iters, int) or max_iters < 1:
    raise ValueError(f"max_iters must be a positive integer; got {max_iters!r}.")
  if not isinstance(chunk, int) or chunk < 1:
    raise ValueError(f"chunk must be a positive integer; got {chunk!r}.")
  key = jax.random.PRNGKey(0) if key is None else key
  with jax.enable_x64(True):
    problem = make_problem(y, graph, epsilon=epsilon)
    state = init_state(problem, graph, dx, key, init=init, alpha=alpha, gamma=gamma,
                       scale=init_scale, x_init=x_init)
    flags = (bool(learn_alpha), bool(gauge))
    carry = init_squarem(problem, state) if accelerate else state
    bounds = []
    while len(bounds) < max_iters:
      budget = min(chunk, max_iters - len(bounds))
      if accelerate:
        carry, b = run_squarem(problem, carry, jnp.zeros(max(1, budget // 3)), *flags)
        b = np.asarray(b)
        last_step = b[-1, :2]  # The cycle's two plain EM steps.
      else:
        carry, b = run_em(problem, carry, jnp.zeros(budget), *flags)
        b = np.asarray(b)
        last_step = np.concatenate([bounds[-1:], b])[-2:]
      bounds.extend(b.reshape(-1).tolist())
      if not np.all(np.isfinite(b)):
        raise FloatingPointError(f"LL-LVM bound became non-finite at iteration {len(bounds)}.")
      if len(last_step) == 2 and abs(last_step[1] - last_step[0]) <= tol * abs(last_step[1]):
        break
    return FitResult(carry.state if accelerate else carry, np.asarray(bounds), problem)
