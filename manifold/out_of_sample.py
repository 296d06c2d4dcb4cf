"""Out-of-sample extension of a fitted LL-LVM (Sec. 4 of Park et al. 2015).

A new observation y* is joined to its k nearest training points N. With the training coordinates
and maps fixed at their posterior means, the terms of the log joint that involve the new node are

  -gamma/2 sum_{j in N} (|y_j - y* - C*(x_j - x*)|^2 + |y* - y_j - C_j(x* - x_j)|^2)
  - alpha/2 |x*|^2 - sum_{j in N} |x* - x_j|^2 - sum_{j in N} |C* - C_j|_F^2,

i.e. the locally linear likelihood of the new edges in both directions and the graph priors of
Eqs. (1)-(2). (The normaliser of Eq. (3) couples all nodes; we leave its change out, which is
exact to first order when one node is added to a large graph.) The energy is quadratic in x*
for fixed C* and in C* for fixed x*, so we alternate the two closed-form solutions.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.spatial

from manifold import em
from manifold.graph import check_observations


class Extension(NamedTuple):
  """Coordinates (m, dx), local maps (m, dy, dx) and neighbour indices (m, k) of new points."""
  x: jax.Array
  c: jax.Array
  neighbours: np.ndarray


def local_energy(x_new, c_new, y_new, y_nb, x_nb, c_nb, alpha, gamma) -> jax.Array:
  """Negative log joint terms involving one new node (module docstring); scalar."""
  dy_ = y_nb - y_new                      # (k, dy)
  dx_ = x_nb - x_new                      # (k, dx)
  r1 = dy_ - dx_ @ c_new.T
  r2 = -dy_ + jnp.einsum("kya,ka->ky", c_nb, dx_)
  return (0.5 * gamma * (jnp.sum(r1 ** 2) + jnp.sum(r2 ** 2)) + 0.5 * alpha * jnp.sum(x_new ** 2)
          + jnp.sum(dx_ ** 2) + jnp.sum((c_new - c_nb) ** 2))


def _solve_one(y_new, y_nb, x_nb, c_nb, alpha, gamma, num_iters):
  k, dx = x_nb.shape
  eye = jnp.eye(dx, dtype=y_nb.dtype)
  dy_ = y_nb - y_new

  def step(_, carry):
    x, c = carry
    # x* given C*: the gradient of local_energy in x* is linear; solve it.
    prec = gamma * (k * c.T @ c + jnp.einsum("kya,kyb->ab", c_nb, c_nb)) + (alpha + 2 * k) * eye
    rhs = (-gamma * c.T @ jnp.sum(dy_ - x_nb @ c.T, axis=0)
           - gamma * jnp.einsum("kya,ky->a", c_nb, dy_ - jnp.einsum("kya,ka->ky", c_nb, x_nb))
           + 2 * jnp.sum(x_nb, axis=0))
    x = jnp.linalg.solve(prec, rhs)
    # C* given x*.
    d = x_nb - x
    a = gamma * d.T @ d + 2 * k * eye
    b = gamma * dy_.T @ d + 2 * jnp.sum(c_nb, axis=0)
    c = jnp.linalg.solve(a, b.T).T
    return x, c

  init = (jnp.mean(x_nb, axis=0), jnp.mean(c_nb, axis=0))
  return jax.lax.fori_loop(0, num_iters, step, init)


def extend(y_new, y_train, state: em.EMState, k: int, *, num_iters: int = 200) -> Extension:
  """Coordinates and local maps of new points given a fitted model (float64).

  Args:
    y_new: (m, dy) new observations.
    y_train: (n, dy) the training observations of `state`.
    state: fitted `EMState` (e.g. `fit(...).state`).
    k: number of training neighbours of each new point, 1 <= k <= n.
    num_iters: alternating closed-form updates.

  Returns:
    `Extension` with x (m, dx), c (m, dy, dx) and the neighbour indices.
  """
  y_train = check_observations(y_train, "y_train")
  y_new = np.asarray(y_new, dtype=np.float64)
  if y_new.ndim != 2 or y_new.shape[1] != y_train.shape[1]:
    raise ValueError(f"y_new must be (m, {y_train.shape[1]}); got shape {y_new.shape}.")
  if not np.all(np.isfinite(y_new)):
    raise ValueError("y_new has NaN or inf entries.")
  n = y_train.shape[0]
  if state.mu_x.shape[0] != n:
    raise ValueError(f"state was fitted on {state.mu_x.shape[0]} points; y_train has {n}.")
  if not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
    raise ValueError(f"k must be an integer in [1, {n}]; got {k!r}.")
  _, idx = scipy.spatial.cKDTree(y_train).query(y_new, k=k)
  idx = np.asarray(idx).reshape(len(y_new), k)
  with jax.enable_x64(True):
    mu_x, mu_c = jnp.asarray(state.mu_x), jnp.asarray(state.mu_c)
    solve = jax.jit(jax.vmap(_solve_one, in_axes=(0, 0, 0, 0, None, None, None)),
                    static_argnums=6)
    x, c = solve(jnp.asarray(y_new), jnp.asarray(y_train[idx]), mu_x[idx], mu_c[idx],
                 jnp.asarray(state.alpha), jnp.asarray(state.gamma), num_iters)
  return Extension(x, c, idx)
