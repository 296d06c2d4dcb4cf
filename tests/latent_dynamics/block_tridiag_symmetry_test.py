"""Non-symmetric diagonal blocks: every Cholesky path factors their symmetric part (issue 22).

Before, the parallel factorisation's CPU path read only the lower triangle while the sequential
one (and the vendor path of the parallel one) symmetrised, so factors and gradients differed.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import block_tridiag as bt
from latent_dynamics import block_tridiag_parallel as btp

DIAG = np.array([[[2.0, 0.5], [0.0, 2.0]],  # The non-symmetric block.
                 [[3.0, 0.0], [0.0, 3.0]],
                 [[2.5, 0.3], [0.3, 2.0]]])
LOWER = np.array([[[0.4, 0.1], [0.0, 0.2]], [[0.1, 0.3], [0.2, 0.0]]])
B = np.array([[1.0, -0.5], [0.3, 2.0], [-1.0, 0.7]])


def objective(mod):
  def f(diag):
    chol = mod.cholesky(diag, jnp.asarray(LOWER))
    return mod.logdet(chol) + jnp.sum(mod.solve(chol, jnp.asarray(B)))
  return f


def paths():
  """(name, module, use_vendor) for the sequential path and both parallel branches."""
  return [("sequential", bt, None), ("parallel-cpu", btp, False), ("parallel-vendor", btp, True)]


def dense_objective(diag):
  """The same objective written with the dense symmetric part of J."""
  j = bt.to_dense(0.5 * (diag + jnp.swapaxes(diag, -1, -2)), jnp.asarray(LOWER))
  return jnp.linalg.slogdet(j)[1] + jnp.sum(jnp.linalg.solve(j, jnp.asarray(B).reshape(-1)))


@pytest.mark.parametrize("name,mod,vendor", paths())
def test_every_path_factors_the_symmetric_part(x64, monkeypatch, name, mod, vendor):
  if vendor is not None:  # The accelerator branch runs on the CPU too, so test it here.
    monkeypatch.setattr(btp, "_use_vendor_linalg", lambda: vendor)

  @jax.jit  # One compilation per path: eager small ops dominate the time otherwise.
  def run(diag):
    chol = mod.cholesky(diag, jnp.asarray(LOWER))
    return (bt.factor_to_dense(chol), jax.grad(objective(mod))(diag),
            jax.grad(dense_objective)(diag))

  l_dense, g, g_dense = map(np.asarray, run(jnp.asarray(DIAG)))
  sym = 0.5 * (DIAG + np.swapaxes(DIAG, -1, -2))
  j = np.zeros((6, 6))
  for t in range(3):
    j[2 * t:2 * t + 2, 2 * t:2 * t + 2] = sym[t]
  for t in range(2):
    j[2 * t + 2:2 * t + 4, 2 * t:2 * t + 2] = LOWER[t]
    j[2 * t:2 * t + 2, 2 * t + 2:2 * t + 4] = LOWER[t].T
  np.testing.assert_allclose(l_dense, np.linalg.cholesky(j), atol=1e-12)
  np.testing.assert_allclose(l_dense[:2, :2], [[np.sqrt(2.0), 0.0],
                                               [0.25 / np.sqrt(2.0), np.sqrt(2.0 - 0.25 ** 2 / 2)]],
                             atol=1e-12)
  np.testing.assert_allclose(g, g_dense, atol=1e-12)
  np.testing.assert_allclose(g, np.swapaxes(g, -1, -2), atol=1e-14)
