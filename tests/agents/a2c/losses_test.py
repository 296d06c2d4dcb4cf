"""The A2C loss: rlax's gradient on a fixed batch; hand-worked targets; unbiased on a small MDP."""
import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import stochastic_graphs as sg
from agents.a2c import losses


def config(**kw):
  base = dict(discount=0.9, advantage="gae", gae_lambda=0.8, n_step=3, entropy_coef=0.05,
              value_coef=0.5)
  base.update(kw)
  return types.SimpleNamespace(**base)


def batch(key, t=6, b=4, a=5):
  ks = jax.random.split(key, 6)
  logits = jax.random.normal(ks[0], (t, b, a), jnp.float64)
  values = jax.random.normal(ks[1], (t, b), jnp.float64)
  boot = jax.random.normal(ks[2], (b,), jnp.float64)
  action = jax.random.randint(ks[3], (t, b), 0, a)
  reward = jax.random.normal(ks[4], (t, b), jnp.float64)
  flags = jax.random.randint(ks[5], (t, b), 0, 5)
  discount = jnp.where(flags == 0, 0.0, 1.0)          # some terminations
  truncated = (flags == 1)                             # some truncations
  return logits, values, boot, action, reward, discount, truncated


@pytest.mark.parametrize("advantage", ["gae", "n_step"])
def test_gradient_equals_rlax_losses(x64, advantage):
  cfg = config(advantage=advantage)
  logits, values, boot, action, reward, discount, truncated = batch(jax.random.key(0))
  target = losses.return_targets(reward, discount, truncated, values, boot, cfg)

  def ours(lg, v):
    return losses.a2c_loss(lg, v, boot, action, reward, discount, truncated, cfg)[0]

  def reference(lg, v):
    adv = target - v
    w = jnp.ones(action.shape[0])
    pg = jnp.mean(jax.vmap(rlax.policy_gradient_loss, in_axes=(1, 1, 1, None))(
        lg, action, adv, w))
    ent = jnp.mean(jax.vmap(rlax.entropy_loss, in_axes=(1, None))(lg, w))
    value = jnp.mean(rlax.l2_loss(target - v))
    return pg + cfg.entropy_coef * ent + cfg.value_coef * value

  g_ours = jax.jit(jax.grad(ours, argnums=(0, 1)))(logits, values)
  g_ref = jax.jit(jax.grad(reference, argnums=(0, 1)))(logits, values)
  for a, b in zip(g_ours, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
  # And the reported policy loss is rlax's value.
  _, info = jax.jit(lambda *a: losses.a2c_loss(*a, cfg))(logits, values, boot, action, reward,
                                                          discount, truncated)
  adv = target - values
  expected = jnp.mean(jax.vmap(rlax.policy_gradient_loss, in_axes=(1, 1, 1, None))(
      logits, action, adv, jnp.ones(action.shape[0])))
  np.testing.assert_allclose(info.policy_loss, expected, rtol=1e-10)


def test_targets_hand_worked(x64):
  """T = 3, one env: termination after step 0, truncation after step 1 (gamma 0.5)."""
  reward = jnp.array([[1.0], [2.0], [3.0]])
  discount = jnp.array([[0.0], [1.0], [1.0]])
  truncated = jnp.array([[False], [True], [False]])
  values = jnp.array([[10.0], [20.0], [30.0]])
  boot = jnp.array([40.0])
  # n-step (n = 3, lambda 1): G_2 = 3 + .5 * 40; G_1 = 2 + .5 * V(s_1) (truncation); G_0 = 1.
  g = losses.return_targets(reward, discount, truncated, values, boot,
                            config(discount=0.5, advantage="n_step", n_step=3))
  np.testing.assert_allclose(g[:, 0], [1.0, 12.0, 23.0])
  # GAE lambda = 0.5 at the last step: G_2 = 3 + .5 * 40 (bootstrap end), same as above.
  g = losses.return_targets(reward, discount, truncated, values, boot,
                            config(discount=0.5, gae_lambda=0.5))
  np.testing.assert_allclose(g[:, 0], [1.0, 12.0, 23.0])
  # Without cuts: lambda return with lambda .5 over 3 steps by the recursion.
  r = jnp.array([[1.0], [2.0], [3.0]])
  ones = jnp.ones((3, 1))
  g = losses.return_targets(r, ones, ones < 0, values, boot, config(discount=0.5, gae_lambda=0.5))
  g2 = 3.0 + 0.5 * 40.0
  g1 = 2.0 + 0.5 * (0.5 * 30.0 + 0.5 * g2)
  g0 = 1.0 + 0.5 * (0.5 * 20.0 + 0.5 * g1)
  np.testing.assert_allclose(g[:, 0], [g0, g1, g2])
  # GAE: target - V equals rlax / stochastic_graphs' generalized advantages.
  gae = sg.generalized_advantages(-r[:, 0], 0.5 * ones[:, 0],
                                  -jnp.concatenate([values[:, 0], boot]), 0.5)
  np.testing.assert_allclose(g[:, 0] - values[:, 0], -gae)


# ---- unbiasedness on a two-step enumerable MDP -------------------------------------------------
# States 0 (start), 1 and 2 (second step); action a in {0, 1, 2} at state 0 leads to state
# 1 + (a == 2), each second-step action ends the episode. Rewards R[s, a].
R = np.array([[0.3, -0.2, 0.5], [1.0, 0.0, -1.0], [-0.5, 2.0, 0.2]])
NEXT = np.array([1, 1, 2])


def pi(theta, s):
  return jax.nn.softmax(theta[s])


def expected_return(theta, gamma):
  p0 = pi(theta, 0)
  total = 0.0
  for a0 in range(3):
    s1 = NEXT[a0]
    p1 = pi(theta, s1)
    total += p0[a0] * (R[0, a0] + gamma * jnp.sum(p1 * R[s1]))
  return total


def exact_values(theta, gamma):
  v1 = [jnp.sum(pi(theta, s) * R[s]) for s in (1, 2)]
  return expected_return(theta, gamma), v1[0], v1[1]


def enumerated_mean_gradient(theta, table, cfg):
  """Sum over the 9 trajectories of p(tau) * grad loss(tau) (one jitted gradient)."""

  @jax.jit
  def grad(th, states, action, reward):
    values = table[states]
    boot = table[jnp.array([0])]                       # after the termination: unused
    discount = jnp.array([[1.0], [0.0]])
    truncated = jnp.zeros((2, 1), bool)
    return jax.grad(lambda t: losses.a2c_loss(t[states], values, boot, action, reward, discount,
                                              truncated, cfg)[0])(th)

  mean = jnp.zeros_like(theta)
  for a0, a1 in itertools.product(range(3), range(3)):
    s1 = int(NEXT[a0])
    g = grad(theta, jnp.array([[0], [s1]]), jnp.array([[a0], [a1]]),
             jnp.array([[R[0, a0]], [R[s1, a1]]]))
    mean = mean + pi(theta, 0)[a0] * pi(theta, s1)[a1] * g
  return mean


THETA = jnp.array([[0.2, -0.4, 0.1], [0.5, 0.0, -0.3], [-0.2, 0.3, 0.6]])


@pytest.mark.parametrize("lam,exact_v", [(1.0, False), (0.5, True), (0.0, True)])
def test_expected_gradient_equals_exact_gradient(x64, lam, exact_v):
  """E[grad loss] over all 9 trajectories (weights p(tau)) equals -grad J / T exactly.

  Undiscounted (gamma 1), where the A2C gradient, which drops the gamma^t weight of the
  discounted policy-gradient theorem, is the gradient of the expected return. With lambda 1 any
  state-dependent baseline is unbiased; with lambda < 1 the bootstrapped targets are unbiased
  when V is the policy's true value function.
  """
  gamma = 1.0
  theta = jnp.asarray(THETA, jnp.float64)
  if exact_v:
    table = jnp.array(exact_values(theta, gamma))
  else:
    table = jnp.array([0.7, -0.3, 1.1])  # an arbitrary baseline
  cfg = config(discount=gamma, gae_lambda=lam, entropy_coef=0.0, value_coef=0.0)
  mean_grad = enumerated_mean_gradient(theta, table, cfg)
  exact = -jax.grad(expected_return)(theta, gamma) / 2.0   # the loss is a mean over T = 2
  np.testing.assert_allclose(mean_grad, exact, atol=1e-12)


def test_bootstrap_with_a_wrong_value_is_biased(x64):
  """The check above has power: lambda 0 with a wrong V misses the exact gradient."""
  theta = jnp.asarray(THETA, jnp.float64)
  cfg = config(discount=1.0, gae_lambda=0.0, entropy_coef=0.0, value_coef=0.0)
  mean_grad = enumerated_mean_gradient(theta, jnp.array([0.0, 5.0, -5.0]), cfg)
  exact = -jax.grad(expected_return)(theta, 1.0) / 2.0
  assert float(jnp.max(jnp.abs(mean_grad - exact))) > 0.1


def test_sampled_mean_gradient_within_4_se_of_exact(x64):
  """Monte-Carlo: the mean of 4,000 sampled trajectories' gradients (lambda 1, an arbitrary V)
  is within 4 standard errors of the exact gradient in every parameter, and the SE is small
  enough (< 0.02) for the check to mean something."""
  theta = jnp.asarray(THETA, jnp.float64)
  table = jnp.array([0.7, -0.3, 1.1])
  cfg = config(discount=1.0, gae_lambda=1.0, entropy_coef=0.0, value_coef=0.0)
  rewards, nxt = jnp.asarray(R), jnp.asarray(NEXT)

  def one(key):
    k0, k1 = jax.random.split(key)
    a0 = jax.random.categorical(k0, theta[0])
    s1 = nxt[a0]
    a1 = jax.random.categorical(k1, theta[s1])
    states = jnp.stack([0, s1])[:, None]
    action = jnp.stack([a0, a1])[:, None]
    reward = jnp.stack([rewards[0, a0], rewards[s1, a1]])[:, None]
    return jax.grad(lambda t: losses.a2c_loss(
        t[states], table[states], table[jnp.array([0])], action, reward,
        jnp.array([[1.0], [0.0]]), jnp.zeros((2, 1), bool), cfg)[0])(theta)

  n = 4000
  grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(7), n))
  mean, se = jnp.mean(grads, 0), jnp.std(grads, 0, ddof=1) / np.sqrt(n)
  exact = -jax.grad(expected_return)(theta, 1.0) / 2.0
  assert float(jnp.max(se)) < 0.02
  np.testing.assert_array_less(jnp.abs(mean - exact), 4 * se + 1e-12)
