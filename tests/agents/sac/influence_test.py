"""Tests of the reward-influence metric on critics with analytic action-gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.sac import influence


def test_linear_critic_influence_is_normalised_coefficient_norm():
  c = jnp.array([[3.0, 4.0], [0.0, 1.0], [-1.0, 0.0]])   # dQ^k/da = c_k, norms 5, 1, 1.
  q_fn = lambda s, a: c @ a + jnp.sum(s)
  obs = jnp.ones((4, 3))
  action = jnp.linspace(-1, 1, 8).reshape(4, 2)
  out = influence.reward_influence(q_fn, obs, action)
  np.testing.assert_allclose(out, np.tile([5 / 7, 1 / 7, 1 / 7], (4, 1)), rtol=1e-6)


def test_state_dependent_gradients():
  w = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  # Q^k = (w_k . s) |a|^2 / 2, so dQ^k/da = (w_k . s) a and the influence is |w_k . s| / sum.
  q_fn = lambda s, a: (w @ s) * jnp.sum(a ** 2) / 2
  obs = jnp.array([[1.0, 1.0], [2.0, -0.5], [0.0, 3.0]])
  action = jnp.array([[0.3, 0.4], [1.0, 0.0], [-0.2, 0.1]])
  expected = np.abs(np.asarray(obs) @ np.asarray(w).T)
  expected /= expected.sum(1, keepdims=True)
  np.testing.assert_allclose(influence.reward_influence(q_fn, obs, action), expected, rtol=1e-6)


def test_flat_values_give_uniform_influence():
  out = influence.reward_influence(lambda s, a: jnp.array([1.0, 2.0]) * jnp.sum(s),
                                   jnp.ones((2, 1)), jnp.ones((2, 3)))
  np.testing.assert_allclose(out, 0.5)


def test_agent_influence_uses_twin_with_smaller_sum_and_drops_entropy_head():
  c0 = jnp.array([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])   # Twin 0 heads: 2 rewards + entropy.
  c1 = jnp.array([[1.0, 0.0], [0.0, 3.0], [9.0, 9.0]])

  def critic(params, obs, action):   # [2, B, 3]; twin 1 is much larger where obs > 0.
    q0 = action @ c0.T
    q1 = action @ c1.T + 100.0 * obs[:, :1]
    return jnp.stack([q0, q1])

  obs = jnp.array([[1.0], [-1.0]])
  action = jnp.array([[0.5, 0.5], [0.5, 0.5]])
  out = jax.jit(lambda o, a: influence.agent_influence(critic, None, o, a, 2))(obs, action)
  np.testing.assert_allclose(out[0], [0.5, 0.5], rtol=1e-6)    # Twin 0: norms 1 and 1.
  np.testing.assert_allclose(out[1], [0.25, 0.75], rtol=1e-6)  # Twin 1: norms 1 and 3.


def test_bad_input():
  with pytest.raises(ValueError, match="same B"):
    influence.reward_influence(lambda s, a: a, jnp.ones((2, 1)), jnp.ones((3, 1)))
