"""LOO-REINFORCE and VIMCO: exact expectation by enumerating all K-sample outcomes."""
import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg

K = 3
COST = jnp.array([[0.3, 1.7], [2.0, -0.4]])  # cost[z0, z1]


def joint_prob(theta, z):
  p0 = jax.nn.sigmoid(theta[0])
  p1 = jax.nn.sigmoid(theta[1] + z[..., 0])
  return (jnp.where(z[..., 0] > 0, p0, 1 - p0) * jnp.where(z[..., 1] > 0, p1, 1 - p1))


def all_k_samples():
  single = list(itertools.product([0.0, 1.0], repeat=2))
  return jnp.asarray(list(itertools.product(single, repeat=K)))  # (4^K, K, 2)


def log_w(theta, z):
  # log p(x, z) with a fixed prior table minus log q(z); -log w is the cost for VIMCO.
  prior = jnp.log(jnp.array([[0.1, 0.2], [0.3, 0.4]]))
  return prior[z[..., 0].astype(int), z[..., 1].astype(int)] - jnp.log(joint_prob(theta, z))


def log_q(theta, z):
  return jnp.log(joint_prob(theta, z))


def test_loo_expectation_equals_exact_gradient(x64):
  theta = jnp.array([0.2, -0.7, 0.5])
  zs = all_k_samples()

  def cost(theta, z):
    return COST[z[..., 0].astype(int), z[..., 1].astype(int)] * theta[2]

  def exact(theta):
    w = jnp.prod(joint_prob(theta, zs), axis=1)
    return jnp.sum(w * jnp.mean(cost(theta, zs), axis=1))

  def estimate(z):
    return jax.grad(lambda t: sg.loo_surrogate(log_q(t, z), cost(t, z)))(theta)
  w = jnp.prod(joint_prob(theta, zs), axis=1)
  expected = jnp.tensordot(w, jax.jit(jax.vmap(estimate))(zs), 1)
  np.testing.assert_allclose(expected, jax.grad(exact)(theta), rtol=1e-10)


def test_vimco_expectation_equals_exact_gradient(x64):
  theta = jnp.array([0.2, -0.7])
  zs = all_k_samples()

  def exact(theta):
    w = jnp.prod(joint_prob(theta, zs), axis=1)
    bound = jax.nn.logsumexp(log_w(theta, zs), axis=1) - jnp.log(K)
    return -jnp.sum(w * bound)

  def estimate(z):
    return jax.grad(lambda t: sg.vimco_surrogate(log_q(t, z), log_w(t, z)))(theta)
  w = jnp.prod(joint_prob(theta, zs), axis=1)
  expected = jnp.tensordot(w, jax.jit(jax.vmap(estimate))(zs), 1)
  np.testing.assert_allclose(expected, jax.grad(exact)(theta), rtol=1e-10)


def test_graph_level_multi_sample_matches_array_functions(x64):
  def model(theta, key):
    k0, k1 = jax.random.split(key)
    z0 = sg.sample("z0", distrax.Bernoulli(logits=theta[0], dtype=theta.dtype), k0)
    z1 = sg.sample("z1", distrax.Bernoulli(logits=theta[1] + z0, dtype=theta.dtype), k1)
    sg.cost("c", -log_w(theta, jnp.stack([z0, z1])))
  theta, key = jnp.array([0.2, -0.7]), jax.random.PRNGKey(0)
  for objective, ref in (("logmeanexp", sg.vimco_surrogate), ("mean", None)):
    fn = sg.make_multi_sample_surrogate(model, K, objective=objective)
    s, info = fn(theta, key)
    keys = jax.random.split(key, K)
    assert info.costs.shape == (K,)
    if ref is not None:
      def direct(t, info=info):
        return ref(info.log_probs * 0 + _lq(t, model, keys), -_costs(t, model, keys))
      np.testing.assert_allclose(jax.jit(jax.grad(lambda t: fn(t, key)[0]))(theta),
                                 jax.jit(jax.grad(direct))(theta), rtol=1e-10)
    else:
      np.testing.assert_allclose(s, jnp.mean(info.costs), rtol=1e-12)


def _record(t, model, key):
  from stochastic_graphs import nodes
  h = nodes.Handler()
  with h:
    model(t, key)
  return h


def _lq(t, model, keys):
  return jnp.stack([sum(n.log_prob for n in _record(t, model, k).nodes.values()) for k in keys])


def _costs(t, model, keys):
  return jnp.stack([sum(c.value for c in _record(t, model, k).costs.values()) for k in keys])


def test_bad_shapes():
  with pytest.raises(ValueError, match="log_probs and costs must both have shape"):
    sg.loo_surrogate(jnp.zeros(3), jnp.zeros(4))
  with pytest.raises(ValueError, match="needs K >= 2"):
    sg.vimco_surrogate(jnp.zeros(1), jnp.zeros(1))
  with pytest.raises(ValueError, match="num_samples must be >= 2"):
    sg.make_multi_sample_surrogate(lambda k: None, 1)
