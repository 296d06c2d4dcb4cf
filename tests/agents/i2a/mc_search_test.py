"""The Monte-Carlo search agent (`agents.i2a.mc_search`) on a hand-written exact model of a
one-row corridor: action values by hand with a greedy rollout policy, the sampled-rollout mean
against the expectation by enumeration (within 4 standard errors), and bad input by name."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import i2a
from agents.i2a import mc_search

LENGTH, GAMMA = 6, 0.9
OBS_SHAPE = (1, LENGTH, 2)


def _corridor_model() -> i2a.EnvModelFns:
  """Position p = the agent's cell; action 1 moves right, 0 left (walls at both ends); reward 1
  on reaching the right end (class 1). Logits of 50 make every argmax certain."""
  def apply(params, obs, action):
    del params
    p = jnp.argmax(obs[..., 0, :, 1], -1)
    nxt = jnp.clip(p + 2 * action - 1, 0, LENGTH - 1)
    grid = jax.nn.one_hot(jax.nn.one_hot(nxt, LENGTH).astype(jnp.int32), 2)[..., None, :, :]
    reward = jax.nn.one_hot((nxt == LENGTH - 1).astype(jnp.int32), 2)
    return 50.0 * grid, 50.0 * reward
  spec = i2a.RewardSpec((0.0, 1.0), lambda r, info=None: jnp.zeros(jnp.shape(r), jnp.int32))
  return i2a.EnvModelFns(None, apply, None, None, None, None, None, OBS_SHAPE, 2, spec)


def _obs(positions):
  return jax.nn.one_hot(jax.nn.one_hot(jnp.asarray(positions), LENGTH).astype(jnp.int32),
                        2)[:, None]


def _value(obs):  # V = position / 10
  return jnp.argmax(obs[:, 0, :, 1], -1).astype(jnp.float32) / 10.0


def test_action_values_by_hand_with_a_greedy_rollout_policy():
  """pi_hat always goes left; depth 2. From p = 2: left 2->1->0, Q = 0.81 V(0) = 0; right
  2->3->2, Q = 0.81 x 0.2 = 0.162. From p = 4: left 4->3->2, Q = 0.162; right 4->5 pays 1, then
  5->4, Q = 1 + 0.81 x 0.4 = 1.324. From p = 0: left 0->0->0 and right 0->1->0, both 0."""
  left = lambda o: jnp.broadcast_to(jnp.array([10.0, 0.0]), (o.shape[0], 2))  # noqa: E731
  q = jax.jit(lambda o: mc_search.mc_action_values(
      _corridor_model(), {}, left, _value, o, None, depth=2, num_rollouts=1, discount=GAMMA,
      rollout_actions="greedy"))(_obs([2, 4, 0]))
  np.testing.assert_allclose(q, [[0.0, 0.162], [0.162, 1.324], [0.0, 0.0]], atol=1e-6)
  policy = mc_search.make_mc_search_policy(_corridor_model(), {}, left, _value, depth=2,
                                           num_rollouts=1, discount=GAMMA,
                                           rollout_actions="greedy")
  np.testing.assert_array_equal(policy(None, _obs([2, 4, 0])), [1, 1, 0])  # tie: lowest index


def _exact_q(p0: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
  """Mean and variance of G(a) under a uniform rollout policy, by enumerating its actions."""
  means, variances = [], []
  for a in (0, 1):
    returns = []
    for rest in itertools.product((0, 1), repeat=depth - 1):
      p, g = p0, 0.0
      for k, action in enumerate((a,) + rest):
        p = min(max(p + 2 * action - 1, 0), LENGTH - 1)
        g += GAMMA ** k * float(p == LENGTH - 1)
      returns.append(g + GAMMA ** depth * p / 10.0)
    means.append(np.mean(returns))
    variances.append(np.var(returns))
  return np.array(means), np.array(variances)


def test_sampled_rollouts_average_to_the_enumerated_expectation():
  depth, rollouts = 3, 512
  uniform = lambda o: jnp.zeros((o.shape[0], 2))  # noqa: E731
  q = jax.jit(lambda o, k: mc_search.mc_action_values(
      _corridor_model(), {}, uniform, _value, o, k, depth=depth, num_rollouts=rollouts,
      discount=GAMMA))(_obs([3, 4]), jax.random.key(0))
  for row, p0 in enumerate((3, 4)):
    mean, var = _exact_q(p0, depth)
    se = np.sqrt(var / rollouts)
    assert np.all(np.abs(np.asarray(q[row]) - mean) <= 4 * se + 1e-6), (p0, q[row], mean, se)
  # From p = 4, going right reaches the paying end at once: the better action.
  assert float(q[1, 1]) > float(q[1, 0])


def test_bad_input_is_refused_by_name():
  model, f = _corridor_model(), lambda o: jnp.zeros((o.shape[0], 2))
  with pytest.raises(ValueError, match="depth"):
    mc_search.make_mc_search_policy(model, {}, f, _value, depth=0, num_rollouts=1,
                                    discount=GAMMA)
  with pytest.raises(ValueError, match="num_rollouts must be a positive integer"):
    mc_search.make_mc_search_policy(model, {}, f, _value, depth=1, num_rollouts=0,
                                    discount=GAMMA)
  with pytest.raises(ValueError, match="discount must be in"):
    mc_search.make_mc_search_policy(model, {}, f, _value, depth=1, num_rollouts=1,
                                    discount=1.5)
  with pytest.raises(ValueError, match=r"obs_shape \(1, 6, 2\); got \(2, 1, 5, 2\)"):
    mc_search.mc_action_values(model, {}, f, _value, jnp.zeros((2, 1, 5, 2)), None, depth=1,
                               num_rollouts=1, discount=GAMMA, rollout_actions="greedy")
