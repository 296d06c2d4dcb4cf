"""Tests of SAC-D: hand-worked targets, equivalence with SAC, and the shared update."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.sac import sac as sac_lib
from agents.sac import sac_d as sac_d_lib

OBS_DIM, ACTION_DIM, BATCH = 3, 2, 8
SMALL = sac_lib.SacConfig(hidden_sizes=(16, 16), init_alpha=0.5)


def test_decomposed_targets_hand_worked():
  target_q_next = jnp.array([
      [[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]],    # Twin 0: sums 3.5 and 0.
      [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]],    # Twin 1: sums 2 and 3.
  ])
  next_log_prob = jnp.array([-1.0, 2.0])
  components = jnp.array([[1.0, -1.0], [2.0, 3.0]])
  discount_t = jnp.array([0.9, 0.0])
  targets, twin = sac_d_lib.decomposed_critic_targets(target_q_next, next_log_prob, components,
                                                      discount_t, jnp.asarray(0.5))
  np.testing.assert_array_equal(twin, [1, 0])
  # Sample 0 takes twin 1: [1 + 0.9*0, -1 + 0.9*1, 0.9*(1 - 0.5*(-1))].
  # Sample 1 terminates: the reward components alone, entropy component 0.
  np.testing.assert_allclose(targets, [[1.0, -0.1, 1.35], [2.0, 3.0, 0.0]], rtol=1e-6)


def test_entropy_folded_into_first_head_without_entropy_component():
  target_q_next = jnp.array([[[2.0, 1.0]], [[0.5, 0.5]]])   # Twin 1 smaller (1 < 3).
  targets, twin = sac_d_lib.decomposed_critic_targets(
      target_q_next, jnp.array([0.4]), jnp.array([[1.0, 2.0]]), jnp.array([0.5]),
      jnp.asarray(2.0), entropy_component=False)
  assert int(twin[0]) == 1
  np.testing.assert_allclose(targets, [[1.0 + 0.5 * (0.5 - 0.8), 2.0 + 0.5 * 0.5]], rtol=1e-6)


def test_sac_target_bootstraps_through_truncation_not_termination():
  # Stored discounts: 1 for a time-limit truncation (and ordinary steps), 0 for a termination.
  target_q_next = jnp.array([[4.0, 2.0, 1.0], [3.0, 6.0, 1.0]])   # Twin minimum: 3, 2, 1.
  next_log_prob = jnp.array([-1.0, 0.5, 0.0])
  reward = jnp.array([1.0, -1.0, 2.0])
  stored_discount = jnp.array([1.0, 0.0, 1.0])                    # Truncated, terminated, mid.
  y = sac_lib.sac_critic_target(target_q_next, next_log_prob, reward, 0.9 * stored_discount,
                                jnp.asarray(0.5))
  # Truncated: 1 + 0.9 (3 + 0.5); terminated: the reward alone; mid-episode: 2 + 0.9 * 1.
  np.testing.assert_allclose(y, [4.15, -1.0, 2.9], rtol=1e-6)


def test_summed_targets_equal_sac_target():
  keys = jax.random.split(jax.random.key(3), 4)
  target_q_next = jax.random.normal(keys[0], (2, 50, 4))
  log_prob = jax.random.normal(keys[1], (50,))
  components = jax.random.normal(keys[2], (50, 3))
  discount_t = 0.99 * jax.random.bernoulli(keys[3], 0.8, (50,))
  targets, _ = jax.jit(sac_d_lib.decomposed_critic_targets)(
      target_q_next, log_prob, components, discount_t, jnp.asarray(0.2))
  reference = jax.jit(sac_lib.sac_critic_target)(target_q_next.sum(-1), log_prob,
                                                 components.sum(-1), discount_t, jnp.asarray(0.2))
  np.testing.assert_allclose(targets.sum(-1), reference, rtol=1e-5, atol=1e-5)


def _batch(key, num_components):
  k = jax.random.split(key, 6)
  components = jax.random.normal(k[2], (BATCH, num_components))
  return sac_lib.Transition(
      obs=jax.random.normal(k[0], (BATCH, OBS_DIM)),
      action=jax.random.uniform(k[1], (BATCH, ACTION_DIM), minval=-1, maxval=1),
      reward=components.sum(-1), reward_components=components,
      discount=jax.random.bernoulli(k[3], 0.8, (BATCH,)).astype(jnp.float32),
      next_obs=jax.random.normal(k[4], (BATCH, OBS_DIM)))


def _run(agent, num_components, steps=5):
  state = agent.init(jax.random.key(0))
  update = jax.jit(agent.update)
  for i in range(steps):
    state, metrics = update(state, _batch(jax.random.key(10 + i), num_components),
                            jax.random.key(100 + i))
  return state, metrics


def test_sac_d_with_one_component_equals_sac():
  config = SMALL._replace(entropy_component=False)
  sac_state, sac_metrics = _run(sac_lib.make_sac(config, OBS_DIM, ACTION_DIM), 1)
  sacd_state, sacd_metrics = _run(sac_d_lib.make_sac_d(config, OBS_DIM, ACTION_DIM, 1), 1)
  leaves_a, leaves_b = jax.tree.leaves(sac_state), jax.tree.leaves(sacd_state)
  assert len(leaves_a) == len(leaves_b)
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(sac_metrics["critic_loss"], sacd_metrics["critic_loss"], rtol=1e-5)
  # The parameters did move, so the comparison is not between two initialisations.
  init = sac_lib.make_sac(config, OBS_DIM, ACTION_DIM).init(jax.random.key(0))
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), init.critic_params,
                       sac_state.critic_params)
  assert max(jax.tree.leaves(moved)) > 1e-3


@functools.cache
def _two_component_agent():
  config = SMALL._replace(tau=0.1, alpha_learning_rate=0.01, critic_learning_rate=3e-3)
  agent = sac_d_lib.make_sac_d(config, OBS_DIM, ACTION_DIM, num_components=2)
  return agent, jax.jit(agent.update)


def test_update_polyak_temperature_and_shapes():
  agent, update = _two_component_agent()
  assert agent.num_heads == 3
  state = agent.init(jax.random.key(0))
  new, metrics = update(state, _batch(jax.random.key(1), 2), jax.random.key(2))
  # Polyak averaging: target' = tau * online' + (1 - tau) * target.
  expected = jax.tree.map(lambda o, t: 0.1 * o + 0.9 * t, new.critic_params,
                          state.target_critic_params)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(new.target_critic_params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  # Adam's first step moves log(alpha) by ~lr against the sign of the temperature gradient
  # -E[log pi + H-bar] (Eq. (18)), with H-bar = -action_dim and E[log pi] = -entropy.
  grad = -(-metrics["entropy"] - ACTION_DIM)
  np.testing.assert_allclose(new.log_alpha - state.log_alpha, -0.01 * np.sign(grad), rtol=1e-3)
  assert metrics["q_heads"].shape == (3,)
  assert int(new.steps) == 1
  q = agent.critic(new.critic_params, jnp.zeros((5, OBS_DIM)), jnp.zeros((5, ACTION_DIM)))
  assert q.shape == (2, 5, 3)
  action = agent.act(new.actor_params, jnp.zeros((5, OBS_DIM)), jax.random.key(0))
  assert action.shape == (5, ACTION_DIM) and bool(jnp.all(jnp.abs(action) < 1))


def test_critic_regression_reduces_loss_on_fixed_batch():
  agent, update = _two_component_agent()
  state = agent.init(jax.random.key(0))
  batch = _batch(jax.random.key(1), 2)._replace(discount=jnp.zeros(BATCH))
  losses = []
  for i in range(60):
    state, metrics = update(state, batch, jax.random.key(i))
    losses.append(float(metrics["critic_loss"]))
  # With discount 0 the targets are the fixed reward components (entropy target 0), which the
  # critic heads must fit.
  assert losses[-1] < 0.2 * losses[0], losses


def test_bad_input():
  with pytest.raises(ValueError, match="num_components"):
    sac_d_lib.make_sac_d(SMALL, OBS_DIM, ACTION_DIM, 0)
  with pytest.raises(ValueError, match="obs_dim"):
    sac_lib.make_sac(SMALL, 0, ACTION_DIM)
  with pytest.raises(ValueError, match="tau"):
    sac_lib.make_sac(SMALL._replace(tau=0.0), OBS_DIM, ACTION_DIM)
  agent = sac_d_lib.make_sac_d(SMALL, OBS_DIM, ACTION_DIM, 2)
  state = jax.eval_shape(agent.init, jax.random.key(0))  # Shapes suffice: the check is static.
  with pytest.raises(ValueError, match="3 components, the agent was built for 2"):
    jax.eval_shape(agent.update, state, _batch(jax.random.key(0), 3), jax.random.key(1))
  with pytest.raises(ValueError, match="heads"):
    sac_d_lib.decomposed_critic_targets(jnp.zeros((2, 4, 2)), jnp.zeros(4), jnp.zeros((4, 2)),
                                        jnp.zeros(4), 1.0)
