"""Block-tridiagonal routines against dense linear algebra, and sequential against parallel."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import block_tridiag as bt
from latent_dynamics import block_tridiag_parallel as btp

MODULES = {"sequential": bt, "parallel": btp}


def random_spd_blocks(seed, t, n, coupling=0.9):
  """A random SPD block-tridiagonal J (diag (T,n,n), lower (T-1,n,n)) = R R^T + I, in numpy."""
  rng = np.random.default_rng(seed)
  rd = rng.normal(size=(t, n, n))
  ro = coupling * rng.normal(size=(t - 1, n, n))
  diag = rd @ np.swapaxes(rd, -1, -2) + np.eye(n)
  diag[1:] += ro @ np.swapaxes(ro, -1, -2)
  lower = ro @ np.swapaxes(rd[:-1], -1, -2)
  return jnp.asarray(diag), jnp.asarray(lower)


def _all_outputs(mod, diag, lower, b, bm, mean, eps):
  """Every routine of `mod` on one problem, in one jit (compiling once per shape)."""
  chol = mod.cholesky(diag, lower)
  return dict(chol=chol, solve=mod.solve(chol, b), lower=mod.solve_lower(chol, bm),
              upper=mod.solve_upper(chol, bm), logdet=mod.logdet(chol),
              selinv=mod.selected_inverse(chol), sample=mod.sample(chol, mean, eps),
              matvec=bt.matvec(diag, lower, b))


@pytest.mark.parametrize("impl", ["sequential", "parallel"])
@pytest.mark.parametrize("t", [1, 2, 7])
def test_against_dense(x64, impl, t):
  mod = MODULES[impl]
  n = 3
  diag, lower = random_spd_blocks(t, t, n)
  rng = np.random.default_rng(1)
  b, bm, eps = rng.normal(size=(t, n)), rng.normal(size=(t, n, 2)), rng.normal(size=(t, n))
  mean = np.arange(t * n, dtype=np.float64).reshape(t, n)
  out = jax.jit(lambda *a: _all_outputs(mod, *a))(diag, lower, b, bm, mean, eps)
  out = jax.tree.map(np.asarray, out)
  dense = np.asarray(bt.to_dense(diag, lower))
  ld = np.asarray(bt.factor_to_dense(bt.BlockCholesky(*out["chol"])))
  np.testing.assert_allclose(ld, np.linalg.cholesky(dense), atol=1e-10)
  np.testing.assert_allclose(out["solve"], np.linalg.solve(dense, b.reshape(-1)).reshape(t, n),
                             atol=1e-9)
  x = np.linalg.solve(ld, bm.reshape(t * n, 2)).reshape(t, n, 2)
  np.testing.assert_allclose(out["lower"], x, atol=1e-9)
  x = np.linalg.solve(ld.T, bm.reshape(t * n, 2)).reshape(t, n, 2)
  np.testing.assert_allclose(out["upper"], x, atol=1e-9)
  np.testing.assert_allclose(out["logdet"], np.linalg.slogdet(dense)[1], rtol=1e-11)
  cov, cross = out["selinv"]
  sigma = np.linalg.inv(dense).reshape(t, n, t, n)
  for s in range(t):
    np.testing.assert_allclose(cov[s], sigma[s, :, s, :], atol=1e-10)
    if s < t - 1:
      np.testing.assert_allclose(cross[s], sigma[s + 1, :, s, :], atol=1e-10)
  np.testing.assert_allclose(out["sample"],
                             mean + np.linalg.solve(ld.T, eps.reshape(-1)).reshape(t, n), atol=1e-9)
  np.testing.assert_allclose(out["matvec"], (dense @ b.reshape(-1)).reshape(t, n), atol=1e-10)


def test_sequential_matches_parallel_long(x64):
  t, n = 37, 3
  diag, lower = random_spd_blocks(0, t, n)
  rng = np.random.default_rng(1)
  b, eps = rng.normal(size=(t, n)), rng.normal(size=(t, n))
  args = (diag, lower, b, b[..., None], np.zeros((t, n)), eps)
  seq = jax.jit(lambda *a: _all_outputs(bt, *a))(*args)
  par = jax.jit(lambda *a: _all_outputs(btp, *a))(*args)
  for key in seq:
    for a, b_ in zip(jax.tree.leaves(par[key]), jax.tree.leaves(seq[key])):
      np.testing.assert_allclose(a, b_, rtol=1e-8, atol=1e-9, err_msg=key)


def test_sample_covariance_statistical():
  """Empirical covariance of reparameterised samples matches J^{-1} (float32, 4000 draws)."""
  diag, lower = random_spd_blocks(5, 4, 2)
  eps = jax.random.normal(jax.random.key(6), (4000, 4, 2))
  draw = jax.jit(lambda e: jax.vmap(
      lambda e1: bt.sample(bt.cholesky(diag, lower), jnp.zeros((4, 2)), e1))(e))
  z = draw(eps).reshape(4000, 8)
  emp = np.cov(np.asarray(z).T)
  sigma = np.linalg.inv(np.asarray(bt.to_dense(diag, lower), np.float64))
  # Standard error of a covariance entry: sqrt((s_ii s_jj + s_ij^2) / N); allow 5 of them.
  se = np.sqrt((np.outer(np.diag(sigma), np.diag(sigma)) + sigma ** 2) / 4000)
  assert np.all(np.abs(emp - sigma) < 5 * se + 1e-6)


def test_gradient_of_logdet_finite_differences(x64):
  diag, lower = random_spd_blocks(7, 5, 2)
  f = jax.jit(lambda d: bt.logdet(bt.cholesky(d, lower)))
  g = jax.jit(jax.grad(f))(diag)
  direction = jax.random.normal(jax.random.key(8), diag.shape)
  direction = direction + jnp.swapaxes(direction, -1, -2)
  h = 1e-6
  fd = (f(diag + h * direction) - f(diag - h * direction)) / (2 * h)
  np.testing.assert_allclose(jnp.sum(g * direction), fd, rtol=1e-6)


def test_not_positive_definite_gives_nans():
  diag = -jnp.ones((3, 2, 2)) * jnp.eye(2)
  chol = bt.cholesky(diag, jnp.zeros((2, 2, 2)))
  assert not np.all(np.isfinite(np.asarray(chol.diag)))


@pytest.mark.parametrize("impl", ["sequential", "parallel"])
def test_bad_shapes(impl):
  mod = MODULES[impl]
  with pytest.raises(ValueError, match="off-diagonal blocks"):
    mod.cholesky(jnp.ones((3, 2, 2)), jnp.ones((3, 2, 2)))
  with pytest.raises(ValueError, match="diagonal blocks"):
    mod.cholesky(jnp.ones((3, 2)), jnp.ones((2, 2, 2)))
  chol = mod.cholesky(jnp.tile(jnp.eye(2), (3, 1, 1)), jnp.zeros((2, 2, 2)))
  with pytest.raises(ValueError, match="b must have shape"):
    mod.solve(chol, jnp.ones((4, 2)))
  with pytest.raises(ValueError, match="eps must have the shape"):
    mod.sample(chol, jnp.zeros((3, 2)), jnp.zeros((3, 3)))


def test_parallel_on_cpu_calls_no_batched_lapack():
  """jaxlib 0.10's batched CPU LAPACK kernels deadlock when two run at once on a small thread
  pool (seen at T >= 1000); the parallel routines must lower to plain XLA ops on the CPU."""
  diag, lower = random_spd_blocks(9, 6, 3)
  b = jnp.ones((6, 3))
  args = (diag, lower, b, b[..., None], jnp.zeros((6, 3)), b)
  hlo = jax.jit(lambda *a: _all_outputs(btp, *a)).lower(*args).as_text()
  assert "lapack" not in hlo and "custom_call" not in hlo


def test_parallel_gradients_match_sequential(x64):
  """Reverse-mode through the column loops of the CPU Cholesky and substitution.

  The gradient with respect to the symmetric diagonal blocks is compared on its symmetric part
  (the column Cholesky reads the lower triangle only; both agree on symmetric perturbations).
  """
  diag, lower = random_spd_blocks(10, 9, 3)
  b = jnp.asarray(np.random.default_rng(11).normal(size=(9, 3)))

  def loss(mod, d, lo):
    chol = mod.cholesky(d, lo)
    cov, cross = mod.selected_inverse(chol)
    return mod.logdet(chol) + jnp.sum(mod.solve(chol, b) ** 2) + jnp.sum(cov) + jnp.sum(cross)

  g_seq = jax.jit(jax.grad(lambda d, lo: loss(bt, d, lo), argnums=(0, 1)))(diag, lower)
  g_par = jax.jit(jax.grad(lambda d, lo: loss(btp, d, lo), argnums=(0, 1)))(diag, lower)
  sym = lambda g: 0.5 * (g + jnp.swapaxes(g, -1, -2))  # noqa: E731
  np.testing.assert_allclose(sym(g_par[0]), sym(g_seq[0]), rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(g_par[1], g_seq[1], rtol=1e-7, atol=1e-9)
