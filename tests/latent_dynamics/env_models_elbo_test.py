"""The filtering ELBO and importance-weighted bound of `latent_dynamics.env_models.elbo` on a
linear-Gaussian sSSM against the exact Kalman log-likelihood (float64)."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np

from latent_dynamics import kalman
from latent_dynamics.env_models import elbo

N_DIM = 2
A = 0.9 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
Q = np.array([0.3, 0.5])     # diagonal transition noise (the latent z_t)
R = np.array([0.2, 0.4])     # diagonal observation noise


def linear_cell() -> elbo.Cell:
  """s_t = A s_{t-1} + z_t + a_{t-1}, z_t ~ N(0, diag Q), o_t ~ N(s_t, diag R), and the exact
  one-step posterior p(z_t | s_{t-1}, a_{t-1}, o_t) (the embedding e_t is o_t itself)."""
  a_mat, q, r = jnp.asarray(A), jnp.asarray(Q), jnp.asarray(R)

  def prior(s, a):
    return jnp.zeros_like(s), jnp.broadcast_to(jnp.sqrt(q), s.shape)

  def posterior(s, a, e, mu_p, sd_p):
    prec = 1.0 / q + 1.0 / r
    resid = e - s @ a_mat.T - a
    return (resid / r) / prec, jnp.broadcast_to(jnp.sqrt(1.0 / prec), s.shape)

  def transition(s, z, a):
    return s @ a_mat.T + z + a

  def log_lik(s, z, tgt):
    return {"obs": jnp.sum(distrax.Normal(s, jnp.sqrt(r)).log_prob(tgt), -1)}

  return elbo.Cell(prior, posterior, transition, log_lik, "transition")


def simulate(rng, t_len):
  s0 = rng.normal(size=N_DIM)
  drift = 0.2 * rng.normal(size=(t_len, N_DIM))
  s, obs = s0, []
  for t in range(t_len):
    s = A @ s + drift[t] + np.sqrt(Q) * rng.normal(size=N_DIM)
    obs.append(s + np.sqrt(R) * rng.normal(size=N_DIM))
  return s0, drift, np.stack(obs)


def kalman_loglik(s0, drift, obs):
  """log p(o_{1:T} | s_0): x_t := s_{t+1}, x_0 ~ N(A s_0 + a_0, Q), drift b_t = a_{t+1}."""
  res = kalman.kalman_smoother(A @ s0 + drift[0], np.diag(Q), A, np.diag(Q), np.eye(N_DIM),
                               np.diag(R), obs, drift=drift[1:])
  return float(res.log_likelihood)


def paths(s0, drift, obs, num, key):
  """`StepTerms[T, num]` of `num` independent posterior paths of one sequence."""
  tile = lambda x: jnp.broadcast_to(jnp.asarray(x)[:, None], (x.shape[0], num, N_DIM))  # noqa: E731
  s0 = jnp.broadcast_to(jnp.asarray(s0), (num, N_DIM))
  _, terms = jax.jit(lambda k: elbo.filtering_terms(linear_cell(), s0, tile(drift), tile(obs),
                                                    tile(obs), k))(key)
  return terms


def test_one_step_exact_posterior_weight_is_the_kalman_likelihood(x64):
  # With the exact posterior, every path's weight p(o|s) p(z) / q(z) equals p(o_1 | s_0).
  s0, drift, obs = simulate(np.random.default_rng(0), 1)
  terms = paths(s0, drift, obs, 64, jax.random.key(0))
  exact = kalman_loglik(s0, drift, obs)
  np.testing.assert_allclose(np.asarray(elbo.path_log_weights(terms)), exact, atol=1e-10)
  assert float(jnp.std(terms.log_lik[0])) > 0.05     # the paths do differ
  # The closed-form-KL ELBO equals it in expectation: within 4 standard errors.
  e = np.asarray(elbo.elbo(terms))
  assert abs(e.mean() - exact) < 4 * e.std() / np.sqrt(e.size)


def test_multi_step_elbo_below_and_iw_bound_converges_to_kalman(x64):
  s0, drift, obs = simulate(np.random.default_rng(1), 6)
  exact = kalman_loglik(s0, drift, obs)
  k = 20000
  terms = paths(s0, drift, obs, k, jax.random.key(1))
  # The filtering posterior cannot see the future: the ELBO is strictly below log p.
  e = np.asarray(elbo.elbo(terms))
  gap = exact - e.mean()
  assert gap > 4 * e.std() / np.sqrt(k) + 0.05, gap
  # The importance-weighted bound of K paths: its delta-method bias var(w) / (2 K mean(w)^2)
  # plus 4 standard errors std(w) / (sqrt(K) mean(w)) bound its distance to log p.
  log_w = elbo.path_log_weights(terms)
  bound = float(elbo.iw_bound(log_w[:, None])[0])
  w = np.exp(np.asarray(log_w) - np.max(np.asarray(log_w)))
  rel_var = w.var() / w.mean() ** 2
  bias, se = rel_var / (2 * k), np.sqrt(rel_var / k)
  assert abs(exact - bound - bias) < 4 * se, (exact, bound, bias, se)
  assert se < 0.05 and exact - bound < gap / 5      # far tighter than the ELBO


def test_unrolled_scan_gives_the_same_terms(x64):
  # unroll=True (a Python-unrolled loop, what the models use) and the rolled scan compute the
  # same per-step terms.
  rng = np.random.default_rng(3)
  s0, drift, obs = simulate(rng, 4)
  tile = lambda x: jnp.broadcast_to(jnp.asarray(x)[:, None], (x.shape[0], 3, N_DIM))  # noqa: E731
  s0 = jnp.broadcast_to(jnp.asarray(s0), (3, N_DIM))
  key = jax.random.key(0)
  outs = [elbo.filtering_terms(linear_cell(), s0, tile(drift), tile(obs), tile(obs), key,
                               unroll=u) for u in (1, True)]
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
