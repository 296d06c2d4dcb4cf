"""ARM, DisARM, REBAR, RELAX: unbiased vs enumeration; Gumbel-softmax: the right distribution."""
import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg

TARGET = jnp.array([0.45, 0.499, 0.2])
LOGITS = jnp.array([0.3, -0.6, 1.1])


def f(b):
  return jnp.sum((b - TARGET) ** 2 * jnp.array([1.0, 2.0, -0.5]))


def exact_grad():
  def objective(logits):
    p = jax.nn.sigmoid(logits)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=3):
      b = jnp.asarray(bits)
      total = total + jnp.prod(jnp.where(b > 0, p, 1 - p)) * f(b)
    return total
  return np.asarray(jax.grad(objective)(LOGITS))


def control(z):
  return 0.1 * jnp.sum(jnp.tanh(z))


ESTIMATORS = {
    "arm": lambda lg, k: sg.arm_surrogate(f, lg, k),
    "disarm": lambda lg, k: sg.disarm_surrogate(f, lg, k),
    "rebar": lambda lg, k: sg.relax_surrogate(f, lg, k, temperature=0.5, eta=0.8),
    "relax": lambda lg, k: sg.relax_surrogate(f, lg, k, temperature=0.5, eta=1.0,
                                              control=control),
}


def test_unbiased_within_4_standard_errors_and_disarm_beats_arm(x64):
  keys = jax.random.split(jax.random.PRNGKey(0), 20000)
  exact = exact_grad()
  variance = {}
  for name, est in ESTIMATORS.items():
    grads = jax.jit(lambda ks, est=est: sg.per_sample_gradients(est, LOGITS, ks))(keys)
    stats = sg.gradient_statistics(grads)
    z = np.abs(np.asarray(stats.mean) - exact) / np.asarray(stats.stderr)
    assert np.all(z < 4.0), (name, z)
    variance[name] = float(stats.variance)
  assert variance["disarm"] <= variance["arm"], variance


def test_forward_values_are_costs_of_valid_samples(x64):
  key = jax.random.PRNGKey(3)
  logits = jnp.asarray(np.asarray(LOGITS, np.float64))
  u = jax.random.uniform(key, (3,), jnp.float64)
  b = (u < jax.nn.sigmoid(logits)).astype(jnp.float64)
  bt = (1 - u < jax.nn.sigmoid(logits)).astype(jnp.float64)
  np.testing.assert_allclose(sg.disarm_surrogate(f, logits, key), 0.5 * (f(b) + f(bt)),
                             rtol=1e-12)


def test_binary_concrete_and_gumbel_softmax_sample_the_right_distribution(x64):
  keys = jax.random.split(jax.random.PRNGKey(1), 20000)
  hard, relaxed = jax.vmap(lambda k: sg.binary_concrete(LOGITS, k, 0.1))(keys)
  p = jax.nn.sigmoid(LOGITS)
  se = np.sqrt(p * (1 - p) / 20000)
  assert np.all(np.abs(hard.mean(0) - p) < 4 * se)
  assert float(jnp.mean(jnp.abs(hard - relaxed))) < 0.05  # Low temperature: close to hard.
  logits = jnp.array([0.5, -1.0, 0.2])
  hard, relaxed = jax.vmap(lambda k: sg.gumbel_softmax(logits, k, 1.0))(keys)
  p = jax.nn.softmax(logits)
  assert np.all(np.abs(hard.mean(0) - p) < 4 * np.sqrt(p * (1 - p) / 20000))
  np.testing.assert_allclose(relaxed.sum(-1), 1.0, rtol=1e-12)


def test_gumbel_node_gradient_matches_quadrature_of_relaxed_objective(x64):
  """E[sigmoid((l + L)/tau)] by quadrature over u; its derivative vs the MC pathwise mean."""
  tau, l0 = 0.7, 0.4

  def relaxed_objective(l):
    u = (jnp.arange(200000) + 0.5) / 200000
    return jnp.mean(jax.nn.sigmoid((l + jnp.log(u) - jnp.log1p(-u)) / tau))
  exact = float(jax.grad(relaxed_objective)(l0))

  def model(l, key):
    b = sg.sample("b", distrax.Bernoulli(logits=l, dtype=jnp.float64), key,
                  estimator=sg.GumbelSoftmax(tau))
    sg.cost("c", b)
  fn = sg.make_surrogate(model)
  keys = jax.random.split(jax.random.PRNGKey(2), 20000)
  stats = sg.gradient_statistics(jax.jit(lambda ks: sg.per_sample_gradients(
      lambda l, k: fn(l, k)[0], jnp.asarray(l0), ks))(keys))
  assert abs(float(stats.mean) - exact) < 4 * float(stats.stderr)

  st = sg.make_surrogate(model, estimators={"b": sg.GumbelSoftmax(tau, straight_through=True)})
  s, info = st(jnp.asarray(l0), keys[0])
  assert float(s) in (0.0, 1.0) and float(s) == float(info.values["b"])


def test_bad_inputs():
  with pytest.raises(ValueError, match="temperature must be > 0"):
    sg.GumbelSoftmax(0.0)
  with pytest.raises(ValueError, match="logits must be a floating array"):
    sg.disarm_surrogate(f, jnp.array([1, 2]), jax.random.PRNGKey(0))

  def model(t, key):
    sg.sample("x", distrax.Normal(t, 1.0), key, estimator=sg.GumbelSoftmax(0.5))
  with pytest.raises(ValueError, match="GumbelSoftmax relaxes Bernoulli"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))
