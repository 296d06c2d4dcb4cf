"""LL-LVM updates and bound against dense float64 references built from the model's definition."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from manifold import em
from manifold import expectations as ex
from manifold import graph as graph_lib

N, DX, DY, EPS = 7, 2, 3, 1e-3


def _problem_data():
  rng = np.random.default_rng(0)
  t = np.sort(rng.uniform(0, 3, N))
  y = np.stack([np.cos(t), np.sin(t), 0.3 * t], 1) + 0.05 * rng.normal(size=(N, DY))
  g = graph_lib.knn_graph(y, 2, connect=True)
  return y, g


def _dense_e1(adj, x, c):
  """e / gamma from the definition, by loops over ordered neighbour pairs."""
  n = adj.shape[0]
  out = [0.0 * c[0][:, 0] for _ in range(n)]
  for k in range(n):
    for j in range(n):
      if adj[k, j]:
        out[k] = out[k] - (c[k] + c[j]) @ (x[j] - x[k])
  return jnp.stack(out)


def _random_state(problem, key, gamma=1.7, alpha=0.6):
  """A valid q(x) q(C) with random means and random SPD covariances."""
  k1, k2, k3, k4 = jax.random.split(key, 4)
  nd = N * DX
  a = jax.random.normal(k1, (nd, nd)) * 0.2
  b = jax.random.normal(k2, (nd, nd)) * 0.2
  cov_x = a @ a.T + 0.05 * jnp.eye(nd)
  cov_c = b @ b.T + 0.05 * jnp.eye(nd)
  return em.EMState(
      jax.random.normal(k3, (N, DX)), cov_x.reshape(N, DX, N, DX),
      -jnp.linalg.slogdet(cov_x)[1], jax.random.normal(k4, (N, DY, DX)),
      cov_c.reshape(N, DX, N, DX), -jnp.linalg.slogdet(cov_c)[1], jnp.asarray(alpha),
      jnp.asarray(gamma))


def _dense(problem, graph, state):
  """Dense objects: Sigma_y, prior precisions, and Jacobians of e in x and in vec(C)."""
  adj = graph.adjacency
  lap = graph_lib.laplacian(adj)
  gamma = state.gamma
  sig_y_n = np.linalg.inv(EPS * np.ones((N, N)) + 2 * gamma * lap)
  k_y = np.kron(sig_y_n, np.eye(DY))
  e_fn = lambda x, c: gamma * _dense_e1(adj, x, c).reshape(-1)
  jac_x = lambda c: jax.jacobian(lambda x: e_fn(x, c))(state.mu_x).reshape(N * DY, N * DX)
  jac_c = lambda x: jax.jacobian(lambda c: e_fn(x, c))(state.mu_c).reshape(N * DY, N * DY * DX)
  # Covariances of vec(x) and of vec(C) (C[i, y, a] ordering; matrix normal: identity over y).
  cov_x = np.asarray(state.cov_x).reshape(N * DX, N * DX)
  cov_c4 = np.asarray(state.cov_c)
  cov_c = np.einsum("iajb,yz->iyajzb", cov_c4, np.eye(DY)).reshape(N * DY * DX, N * DY * DX)
  prior_x = np.kron(state.alpha * np.eye(N) + 2 * lap, np.eye(DX))
  prior_c_cols = np.kron(EPS * np.ones((N, N)) + 2 * lap, np.eye(DX))
  prior_c = np.einsum("iajb,yz->iyajzb", prior_c_cols.reshape(N, DX, N, DX),
                      np.eye(DY)).reshape(N * DY * DX, N * DY * DX)
  return dict(lap=lap, sig_y=sig_y_n, k_y=k_y, e_fn=e_fn, jac_x=jac_x, jac_c=jac_c, cov_x=cov_x,
              cov_c=cov_c, prior_x=prior_x, prior_c=prior_c)


@pytest.fixture
def setup(x64):
  y, g = _problem_data()
  problem = em.make_problem(y, g, epsilon=EPS)
  state = _random_state(problem, jax.random.PRNGKey(3))
  return y, g, problem, state, _dense(problem, g, state)


def _expected_quadratic(jac_fn, mean, cov, k_y, key_shape):
  """E[J^T K J] for J linear in a Gaussian vector v ~ N(mean, cov): exact, by linearity."""
  jbar = np.asarray(jac_fn(mean))
  # d J / d v_m: J is linear in v, so its Jacobian in v is constant.
  dj = np.asarray(jax.jacobian(lambda v: jac_fn(v.reshape(key_shape)))(
      jnp.asarray(mean).reshape(-1)))
  corr = np.einsum("rpm,rs,sqn,mn->pq", dj, k_y, dj, cov)
  return jbar.T @ k_y @ jbar + corr


def test_local_linear_mean_matches_definition(setup):
  y, g, problem, state, d = setup
  ours = ex.local_linear_mean(problem.neighbours, problem.weights, state.mu_x, state.mu_c)
  np.testing.assert_allclose(ours, _dense_e1(g.adjacency, state.mu_x, state.mu_c), atol=1e-12)


def test_phi_x_is_expected_quadratic_form_in_x(setup):
  y, g, problem, state, d = setup
  ref = _expected_quadratic(d["jac_x"], state.mu_c, d["cov_c"], d["k_y"], (N, DY, DX))
  ours = 0.5 * state.gamma * ex.phi_x(problem.neighbours, problem.weights, problem.degree,
                                      problem.laplacian_pinv, em.second_moment_c(state))
  np.testing.assert_allclose(np.asarray(ours).reshape(N * DX, N * DX), ref, rtol=1e-9,
                             atol=1e-9 * np.abs(ref).max())


def test_phi_c_is_expected_quadratic_form_in_c(setup):
  y, g, problem, state, d = setup
  ref = _expected_quadratic(d["jac_c"], state.mu_x, d["cov_x"], d["k_y"], (N, DX))
  ours = 0.5 * state.gamma * ex.phi_c(problem.neighbours, problem.weights, problem.degree,
                                      problem.laplacian_pinv, em.second_moment_x(state))
  ours_full = np.einsum("iajb,yz->iyajzb", np.asarray(ours), np.eye(DY)).reshape(ref.shape)
  np.testing.assert_allclose(ours_full, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_update_q_x_matches_dense_gaussian_conditioning(setup):
  y, g, problem, state, d = setup
  new = em.update_q_x(problem, state)
  e_quad = _expected_quadratic(d["jac_x"], state.mu_c, d["cov_c"], d["k_y"], (N, DY, DX))
  prec = d["prior_x"] + e_quad
  # Linear term of E_q(C) log p(y | x, C) in x: E[A]^T y.
  lin = np.asarray(d["jac_x"](state.mu_c)).T @ y.reshape(-1)
  np.testing.assert_allclose(np.asarray(new.cov_x).reshape(N * DX, N * DX), np.linalg.inv(prec),
                             rtol=1e-8, atol=1e-12)
  np.testing.assert_allclose(np.asarray(new.mu_x).reshape(-1), np.linalg.solve(prec, lin),
                             rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(new.logdet_prec_x, np.linalg.slogdet(prec)[1], rtol=1e-10)


def test_update_q_c_matches_dense_gaussian_conditioning(setup):
  y, g, problem, state, d = setup
  new = em.update_q_c(problem, state)
  e_quad = _expected_quadratic(d["jac_c"], state.mu_x, d["cov_x"], d["k_y"], (N, DX))
  prec = d["prior_c"] + e_quad
  lin = np.asarray(d["jac_c"](state.mu_x)).T @ y.reshape(-1)
  cov_full = np.einsum("iajb,yz->iyajzb", np.asarray(new.cov_c), np.eye(DY)).reshape(prec.shape)
  np.testing.assert_allclose(cov_full, np.linalg.inv(prec), rtol=1e-8, atol=1e-12)
  np.testing.assert_allclose(np.asarray(new.mu_c).reshape(-1), np.linalg.solve(prec, lin),
                             rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(DY * new.logdet_prec_c, np.linalg.slogdet(prec)[1], rtol=1e-10)


def _dense_log_joint_minus_q(y, d, state, g, xs, cs, gamma, alpha):
  """log p(y, x, C) - log q(x) - log q(C) for samples, with dense densities from the model."""
  lap = d["lap"]
  sig_y = np.kron(np.linalg.inv(EPS * np.ones((N, N)) + 2 * gamma * lap), np.eye(DY))
  e_batch = jax.vmap(lambda x, c: gamma * _dense_e1(g.adjacency, x, c).reshape(-1))(xs, cs)
  mean_y = np.asarray(e_batch) @ sig_y
  log_lik = scipy.stats.multivariate_normal(np.zeros(N * DY), sig_y).logpdf(
      y.reshape(-1) - mean_y)
  prior_x_cov = np.linalg.inv(np.kron(alpha * np.eye(N) + 2 * lap, np.eye(DX)))
  xs_flat = np.asarray(xs).reshape(len(xs), -1)
  cs_flat = np.asarray(cs).reshape(len(cs), -1)
  log_px = scipy.stats.multivariate_normal(np.zeros(N * DX), prior_x_cov).logpdf(xs_flat)
  log_pc = scipy.stats.multivariate_normal(np.zeros(cs_flat.shape[1]),
                                           np.linalg.inv(d["prior_c"])).logpdf(cs_flat)
  log_qx = scipy.stats.multivariate_normal(np.asarray(state.mu_x).reshape(-1),
                                           d["cov_x"]).logpdf(xs_flat)
  log_qc = scipy.stats.multivariate_normal(np.asarray(state.mu_c).reshape(-1),
                                           d["cov_c"]).logpdf(cs_flat)
  return log_lik + log_px + log_pc - log_qx - log_qc


def test_bound_matches_monte_carlo_estimate(setup):
  y, g, problem, state, _ = setup
  # A fitted-ish q (a few EM steps) keeps the Monte Carlo variance small.
  for _ in range(3):
    state, _ = em.em_step(problem, state)
  d = _dense(problem, g, state)
  rng = np.random.default_rng(1)
  s = 20000
  xs = rng.multivariate_normal(np.asarray(state.mu_x).reshape(-1), d["cov_x"], size=s)
  cs = rng.multivariate_normal(np.asarray(state.mu_c).reshape(-1), d["cov_c"], size=s)
  vals = _dense_log_joint_minus_q(y, d, state, g, jnp.asarray(xs.reshape(s, N, DX)),
                                  jnp.asarray(cs.reshape(s, N, DY, DX)), float(state.gamma),
                                  float(state.alpha))
  est, se = vals.mean(), vals.std() / np.sqrt(s)
  bound = float(em.lower_bound(problem, state))
  assert abs(bound - est) < 4 * se, (bound, est, se)
  assert se < 0.5  # The check has power: the MC error is small against the bound's scale.


def test_gamma_and_alpha_updates_maximise_bound(setup):
  y, g, problem, state, _ = setup
  state = em.update_q_x(problem, em.update_q_c(problem, state))
  f = lambda **kw: float(em.lower_bound(problem, state._replace(**kw)))
  g_new = em.update_gamma(problem, state)
  res = scipy.optimize.minimize_scalar(lambda lg: -f(gamma=jnp.exp(lg)), bounds=(-10, 10),
                                       method="bounded", options={"xatol": 1e-10})
  np.testing.assert_allclose(g_new.gamma, np.exp(res.x), rtol=1e-6)
  a_new = em.update_alpha(problem, state)
  res = scipy.optimize.minimize_scalar(lambda la: -f(alpha=jnp.exp(la)), bounds=(-15, 15),
                                       method="bounded", options={"xatol": 1e-10})
  np.testing.assert_allclose(a_new.alpha, np.exp(res.x), rtol=1e-6)


def test_each_sub_step_increases_bound_and_fit_is_monotone(x64):
  y, g = _problem_data()
  problem = em.make_problem(y, g, epsilon=EPS)
  state, _ = em.em_step(problem, em.init_state(problem, g, 2, jax.random.PRNGKey(0)),
                        learn_alpha=True)
  prev = float(em.lower_bound(problem, state))
  for update in [em.update_q_x, em.update_q_c, em.update_gauge, em.update_gamma,
                 em.update_alpha] * 3:
    state = update(problem, state)
    cur = float(em.lower_bound(problem, state))
    assert cur >= prev - 1e-9 * abs(prev), update.__name__
    prev = cur
  for init, learn_alpha, gauge in [("random", True, False), ("random_c", False, False),
                                   ("random_c", False, True), ("spectral", True, True)]:
    result = em.fit(y, g, 2, max_iters=30, tol=0.0, init=init, learn_alpha=learn_alpha,
                    gauge=gauge)
    assert np.all(np.diff(result.bounds) >= -1e-9 * np.abs(result.bounds[1:]))
    assert result.bounds[-1] > result.bounds[0] + 0.5  # EM made real progress.
    assert len(result.bounds) == 30
    if not learn_alpha:
      assert float(result.state.alpha) == em.DEFAULT_ALPHA


def test_init_state_options(x64):
  y, g = _problem_data()
  problem = em.make_problem(y, g, epsilon=EPS)
  key = jax.random.PRNGKey(5)
  ref = em.init_state(problem, g, 2, key, init="random_c", scale=2.0, gamma=3.0)
  # The reference start: iid N(0, scale^2) means of C, identity column covariance.
  np.testing.assert_allclose(ref.mu_c, 2.0 * jax.random.normal(key, (N, DY, DX)), rtol=1e-12)
  np.testing.assert_array_equal(np.asarray(ref.cov_c).reshape(N * DX, N * DX), np.eye(N * DX))
  assert float(ref.gamma) == 3.0 and float(ref.alpha) == em.DEFAULT_ALPHA
  # Spectral: x at the Laplacian eigenvectors 2.. dx+1 (up to sign), q(C) its closed-form update.
  spec = em.init_state(problem, g, 2, key, init="spectral")
  _, vecs = np.linalg.eigh(graph_lib.laplacian(g.adjacency))
  np.testing.assert_allclose(np.abs(spec.mu_x), np.abs(vecs[:, 1:3]) * np.sqrt(N), rtol=1e-8)
  point = spec._replace(cov_x=jnp.zeros_like(spec.cov_x))
  np.testing.assert_allclose(spec.mu_c, em.update_q_c(problem, point).mu_c, rtol=1e-10)
  with pytest.raises(ValueError, match="init"):
    em.init_state(problem, g, 2, key, init="pca")
  with pytest.raises(ValueError, match="scale"):
    em.init_state(problem, g, 2, key, scale=0.0)


def test_bad_latent_dimension_and_options(x64):
  y, g = _problem_data()
  with pytest.raises(ValueError, match="dx"):
    em.fit(y, g, 3)
  with pytest.raises(ValueError, match="dx"):
    em.fit(y, g, 0)
  with pytest.raises(ValueError, match="init"):
    em.fit(y, g, 1, init="pca")
  with pytest.raises(ValueError, match="rows"):
    em.fit(y[:5], g, 1)
  y_bad = y.copy()
  y_bad[3, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    em.fit(y_bad, g, 1)
  y_bad[3] = y[1]
  with pytest.raises(ValueError, match="duplicate"):
    em.fit(y_bad, g, 1)
  with pytest.raises(ValueError, match="x_init"):
    em.fit(y, g, 1, init="given")
  with pytest.raises(ValueError, match="max_iters"):
    em.fit(y, g, 1, max_iters=0)


def test_chol_inverse_host_lapack_matches_jnp(x64):
  rng = np.random.default_rng(2)
  a = rng.normal(size=(30, 30))
  prec = jnp.asarray(a @ a.T + 0.5 * np.eye(30))
  rhs = jnp.asarray(rng.normal(size=(30, 3)))
  host = jax.jit(em.chol_inverse)(prec, rhs)
  ref = em.chol_inverse(prec, rhs, host_lapack=False)
  for ours, theirs in zip(host, ref):
    assert ours.dtype == jnp.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(host[0], np.linalg.inv(np.asarray(prec)), rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(host[2], np.linalg.slogdet(np.asarray(prec))[1], rtol=1e-12)
  # Mirroring in blocks smaller than the matrix (the n = 2000 case uses 512-row blocks).
  low = np.tril(rng.normal(size=(11, 11)))
  np.testing.assert_array_equal(em._mirror_lower(low.copy(), block=4), low + np.tril(low, -1).T)
  # Not positive definite: NaNs, as jnp.linalg.cholesky gives.
  bad = jax.jit(em.chol_inverse)(prec - 100.0 * jnp.eye(30), rhs)
  assert all(np.all(np.isnan(np.asarray(b))) for b in bad)


def test_update_gauge_maximises_bound_over_linear_maps(setup):
  y, g, problem, state, _ = setup
  a = jnp.asarray([[1.3, 0.4], [-0.2, 0.7]])
  before = em.lower_bound_terms(problem, state)
  moved = em.lower_bound_terms(problem, em.transform_latents(state, a))
  # e is invariant, so the expected log likelihood is; the bound itself changes.
  np.testing.assert_allclose(moved["likelihood"], before["likelihood"], rtol=1e-12)
  assert abs(float(moved["bound"] - before["bound"])) > 1.0
  # Numerical maximum over all (dx, dx) maps against the closed form.
  f = lambda v: -float(em.lower_bound(problem, em.transform_latents(state, jnp.asarray(
      v.reshape(DX, DX)))))
  res = scipy.optimize.minimize(f, np.eye(DX).ravel(), method="Nelder-Mead",
                                options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000))
  gauged = float(em.lower_bound(problem, em.update_gauge(problem, state)))
  assert gauged > float(before["bound"]) + 1.0
  np.testing.assert_allclose(gauged, -res.fun, rtol=1e-9)
  assert gauged >= -res.fun - 1e-9 * abs(res.fun)


def test_squarem_extrapolation_of_a_linear_map_is_its_fixed_point(x64):
  # For F(t) = c + a (t - c): r = (a - 1)(t0 - c), v = (a - 1)^2 (t0 - c), so |r| / |v| =
  # 1 / (1 - a) and t0 + 2 s r + s^2 v = c (hand-worked); a step capped at 1 gives F(F(t0)).
  rng = np.random.default_rng(3)
  c = (jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=5)))
  t0 = (jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=5)))
  f = lambda t: jax.tree.map(lambda ti, ci: ci + 0.8 * (ti - ci), t, c)
  t1 = f(t0)
  t2 = f(t1)
  point, step = em.squarem_extrapolate(t0, t1, t2, 100.0)
  np.testing.assert_allclose(step, 5.0, rtol=1e-12)
  for p, ci in zip(point, c):
    np.testing.assert_allclose(p, ci, atol=1e-12)
  point, step = em.squarem_extrapolate(t0, t1, t2, 1.0)
  assert float(step) == 1.0
  for p, ti in zip(point, t2):
    np.testing.assert_allclose(p, ti, atol=1e-12)


def test_squarem_cycle_with_unit_steps_is_three_em_iterations(x64):
  y, g = _problem_data()
  problem = em.make_problem(y, g, epsilon=EPS)
  state = em.init_state(problem, g, 2, jax.random.PRNGKey(1), init="spectral")
  plain, plain_bounds = em.run_em(problem, state, jnp.zeros(3))
  # step_factor 1 keeps the step cap at 1, so the extrapolated point is the second EM iterate.
  carry, bounds = em.run_squarem(problem, em.init_squarem(problem, state), jnp.zeros(1),
                                 step_factor=1.0)
  np.testing.assert_allclose(bounds[0], plain_bounds, rtol=1e-10)
  np.testing.assert_allclose(carry.state.mu_x, plain.mu_x, rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(carry.state.cov_c, plain.cov_c, rtol=1e-8, atol=1e-10)
  assert float(carry.step_max) == 1.0


@pytest.mark.slow  # 16-84 s on 2 cores (batched LAPACK); fast counterparts: the SQUAREM tests above
def test_squarem_fit_reaches_the_em_fixed_point_in_fewer_iterations(x64):
  rng = np.random.default_rng(0)
  t = rng.uniform(1.5 * np.pi, 4.0 * np.pi, 60)
  y = np.stack([t * np.cos(t), 4.0 * rng.uniform(size=60), t * np.sin(t)], 1)
  y = y + 0.05 * rng.normal(size=y.shape)
  y = (y - y.mean(0)) / y.std()
  g = graph_lib.knn_graph(y, 6, connect=True)
  kw = dict(init="spectral", gamma=100.0, tol=1e-12, max_iters=2000)
  plain = em.fit(y, g, 2, chunk=100, **kw).bounds  # Stops after 200 iterations.
  fast = em.fit(y, g, 2, chunk=30, accelerate=True, **kw).bounds
  target = plain[-1]
  assert abs(plain[-1] - plain[-2]) < 1e-9 * abs(target)  # plain EM has converged.
  # Accepted bounds never decrease, and SQUAREM reaches the same fixed point (bound to 1e-8).
  assert np.all(np.diff(fast) >= -1e-10 * abs(target))
  np.testing.assert_allclose(fast[-1], target, rtol=1e-8)
  # Iterations (EM map evaluations) to come within 1e-6 of the limit: SQUAREM needs < half.
  close = lambda b: int(np.argmax(b >= target - 1e-6 * abs(target))) + 1
  assert close(fast) < 0.5 * close(plain), (close(fast), close(plain))
