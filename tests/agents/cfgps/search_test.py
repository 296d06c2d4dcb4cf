"""Tests of CF-GPS policy search (agents.cfgps.search): the planner mixture's probabilities,
the return weights and the return-weighted regression loss by hand, the running summary by
hand, and one iteration on a hand-made level moving pi towards the expert."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import cfgps
from agents.cfgps import search as S
from agents.cfgps import solver as solver_lib
from envs import po_sokoban
from envs import sokoban_levels as sl

LEVEL = """
#######
#     #
#@$  .#
#     #
#.$   #
#  $. #
#######
"""


def test_planner_probs_by_hand():
  expert = jnp.array([0.0, 0.0, 1.0, 0.0, 0.0])
  logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.2, 0.2]))
  p = S.planner_probs(expert, logits, 0.25)
  np.testing.assert_allclose(p, [0.075, 0.15, 0.475, 0.15, 0.15], rtol=1e-6)


def test_return_weights_by_hand():
  g = jnp.array([[0.0, 0.0], [np.log(3.0), 0.0]])
  np.testing.assert_allclose(S.return_weights(g, 1.0), [[0.5, 0.5], [0.75, 0.25]], rtol=1e-6)
  np.testing.assert_allclose(S.return_weights(g, 0.5)[1], [0.9, 0.1], rtol=1e-6)


def test_resample_rollouts():
  """One-hot weights draw their rollout every time (offset by K per scenario); with weights
  (0.2, 0.8) the fraction of draws of rollout 1 is 0.8 within 5 SE (20,000 draws)."""
  w = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
  idx = np.asarray(S.resample_rollouts(jax.random.PRNGKey(0), w, 4))
  np.testing.assert_array_equal(idx, [[1, 1, 1, 1], [3, 3, 3, 3]])
  idx = np.asarray(S.resample_rollouts(jax.random.PRNGKey(1), jnp.array([[0.2, 0.8]]), 20_000))
  frac = (idx == 1).mean()
  assert abs(frac - 0.8) < 5 * np.sqrt(0.8 * 0.2 / 20_000), frac


def test_feature_log_probs_equal_the_scan():
  """Precomputed features give the same sum_t log pi as stepping the summary with the policy
  (`sequence_log_probs` is built on them; the policy's own scan is the reference)."""
  net = S.PolicyNet(4, 8)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((5, 5, S.NUM_FEATURES)))
  obs = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(1), (7, 5, 5), 0, 7), 7)
  actions = jnp.array([0, 1, 2, 3, 4, 1])
  valid = jnp.array([True] * 4 + [False] * 2)
  s, total = S.init_summary(5, 5), 0.0
  for t in range(4):
    s, f = S.update_summary(s, obs[t])
    total += float(jax.nn.log_softmax(net.apply(params, f))[actions[t]])
  got = float(S.sequence_log_probs(net, params, obs, actions, valid, 5, 5))
  assert got == pytest.approx(total, rel=1e-5)


def test_summary_by_hand():
  s = S.init_summary(3, 3)
  obs = jax.nn.one_hot(jnp.full((3, 3), 1), 7)  # all floor
  obs_wall = obs.at[0, 0].set(jax.nn.one_hot(0, 7))
  s, f = S.update_summary(s, obs_wall)          # t = 0: wall at (0, 0)
  s, f = S.update_summary(s, obs)               # t = 1: nothing
  s, f = S.update_summary(s, obs)               # t = 2
  # wall code index 0: seen, count 1 / 50, exp(-(2 - 0) / 5)
  np.testing.assert_allclose(f[0, 0, [0, 6, 12]], [1.0, 1 / 50, np.exp(-2 / 5)], rtol=1e-6)
  assert not np.asarray(f[1, 1, :18]).any()
  np.testing.assert_array_equal(f[..., 18:], obs)


def test_rwr_loss_is_weighted_log_likelihood():
  env = po_sokoban.POSokoban(7, 7, 3)
  level = sl.parse_level(LEVEL)
  params_env = env.make_params(jax.tree.map(lambda x: x[None], level))
  net = S.PolicyNet(4, 8)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((7, 7, S.NUM_FEATURES)))
  eps = cfgps.log_on_levels(jax.random.PRNGKey(1), env, params_env, cfgps.uniform_policy(5),
                            jax.tree.map(lambda x: jnp.stack([x, x]), level), 6)
  pi = S.network_policy(net, params, 7, 7)
  lp = np.asarray(cfgps.target_log_probs(eps, pi)).sum(1)  # independent scan of the policy
  w = jnp.array([[0.3, 0.7]])
  loss = float(S.rwr_loss(net, params, eps, w, 7, 7))
  assert loss == pytest.approx(-(0.3 * lp[0] + 0.7 * lp[1]), rel=1e-5)


@pytest.mark.slow
def test_one_iteration_moves_pi_towards_the_expert():
  """beta = 1 (the planner is the expert): after one iteration pi puts more probability on
  the expert's action in the start state of the true level than before (fixed keys)."""
  env = po_sokoban.POSokoban(7, 7, 3)
  level = sl.parse_level(LEVEL)
  solver = solver_lib.Solver()
  params_env = env.make_params(jax.tree.map(lambda x: x[None], level), max_steps=12)
  cfg = S.SearchConfig(num_cf=4, beta0=1.0, updates_per_iteration=30, learning_rate=3e-3,
                       channels=4, hidden=16)
  search = S.make_search(cfg, env, solver)
  net, init, iterate = search.net, search.init, search.iterate
  state = init(jax.random.PRNGKey(0))
  levels = jax.tree.map(lambda x: jnp.stack([x, x]), level)
  real = cfgps.log_on_levels(jax.random.PRNGKey(1), env, params_env,
                             S.network_policy(net, state.params, 7, 7), levels, 12)
  a_star = solver.expert_action(level.walls, level.targets, level.boxes, level.player)
  obs0 = real.obs[0, 0]
  _, f0 = S.update_summary(S.init_summary(7, 7), obs0)
  before = float(jax.nn.log_softmax(net.apply(state.params, f0))[a_star])
  state, m = iterate(jax.random.PRNGKey(2), state, params_env, real, levels)
  after = float(jax.nn.log_softmax(net.apply(state.params, f0))[a_star])
  assert after > before + 0.1, (before, after)
  assert m["loss_last"] < m["loss_first"]
  assert float(state.beta) == pytest.approx(cfg.beta_decay)


def test_bad_config():
  env = po_sokoban.POSokoban(7, 7, 3)
  with pytest.raises(ValueError, match="num_cf"):
    S.make_search(S.SearchConfig(num_cf=0), env, solver_lib.Solver())
  with pytest.raises(ValueError, match="beta0"):
    S.make_search(S.SearchConfig(beta0=1.5), env, solver_lib.Solver())
  with pytest.raises(ValueError, match="temperature"):
    S.make_search(S.SearchConfig(temperature=0.0), env, solver_lib.Solver())
  with pytest.raises(ValueError, match="regression_samples"):
    S.make_search(S.SearchConfig(regression_samples=-1), env, solver_lib.Solver())
