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


def test_relax_variance_objective_sees_the_control_in_the_score_term(x64):
  """g is affine in eta and in a control scale a, so d g / d eta = g(1) - g(0), exactly.

  This is what tuning by the variance objective d E[g^2] / d eta = E[2 g dg/deta] relies on; the
  surrogate's own first-order gradient w.r.t. eta and a is zero.
  """
  key = jax.random.PRNGKey(4)
  logits = jnp.asarray(np.asarray(LOGITS, np.float64))

  def g(eta, a):
    return jax.grad(lambda lg: sg.relax_surrogate(
        f, lg, key, temperature=0.7, eta=eta, control=lambda z: a * jnp.sum(jnp.tanh(z))))(
            logits)
  d_eta, d_a = jax.jacobian(g, argnums=(0, 1))(0.3, 0.2)
  np.testing.assert_allclose(d_eta, g(1.0, 0.2) - g(0.0, 0.2), rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(d_a, g(0.3, 1.0) - g(0.3, 0.0), rtol=1e-9, atol=1e-12)
  first = jax.grad(lambda e, a: sg.relax_surrogate(
      f, logits, key, eta=e, control=lambda z: a * jnp.sum(z)), argnums=(0, 1))(0.3, 0.2)
  assert float(first[0]) == 0.0 and float(first[1]) == 0.0


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


def _relaxed_node_model(dist_fn, estimator, w):
  def model(logits, key):
    y = sg.sample("b", dist_fn(logits), key, estimator=estimator)
    sg.cost("c", jnp.sum(w * y))
  return sg.make_surrogate(model)


def test_per_node_binary_concrete_value_and_gradient_by_hand(x64):
  """Binary Concrete node: y = sigmoid((l + L) / tau), so d(w y)/dl = w y (1 - y) / tau."""
  tau, w = 0.6, 2.5
  key = jax.random.PRNGKey(5)
  bern = lambda l: distrax.Bernoulli(logits=l, dtype=jnp.float64)  # noqa: E731
  relaxed = _relaxed_node_model(bern, sg.GumbelSoftmax(tau), w)
  noise = []
  for l0 in (0.3, -0.7):
    (s, info), g = jax.value_and_grad(lambda l: relaxed(l, key), has_aux=True)(jnp.asarray(l0))
    y = float(s) / w
    z = tau * np.log(y / (1 - y))  # l + L: the Concrete reparameterisation, inverted.
    noise.append(z - l0)
    np.testing.assert_allclose(float(g), w * y * (1 - y) / tau, rtol=1e-9)
    assert float(info.values["b"]) == float(z > 0)  # The exact sample is the sign of l + L.
  # Same key, other logits: the same logistic noise L (a reparameterisation, not a new draw).
  np.testing.assert_allclose(noise[0], noise[1], rtol=1e-9)

  # Straight-through: forward value is the hard sample, gradient the relaxed one.
  st = _relaxed_node_model(bern, sg.StraightThrough(tau), w)
  (s_st, info_st), g_st = jax.value_and_grad(lambda l: st(l, key), has_aux=True)(
      jnp.asarray(-0.7))
  (s, _), g = jax.value_and_grad(lambda l: relaxed(l, key), has_aux=True)(jnp.asarray(-0.7))
  hard = float(info_st.values["b"])
  assert hard in (0.0, 1.0) and float(s_st) == w * hard
  np.testing.assert_allclose(float(g_st), float(g), rtol=1e-12)


def test_per_node_gumbel_softmax_value_and_gradient_by_hand(x64):
  """Categorical Concrete: d(w . y)/dl = y * (w - w . y) / tau (the softmax Jacobian)."""
  tau = 0.8
  w = jnp.array([1.0, -2.0, 0.5])
  logits = jnp.array([0.2, -0.4, 0.9])
  key = jax.random.PRNGKey(8)
  cat = lambda l: distrax.OneHotCategorical(logits=l, dtype=jnp.float64)  # noqa: E731
  relaxed = _relaxed_node_model(cat, sg.GumbelSoftmax(tau), w)
  st = _relaxed_node_model(cat, sg.GumbelSoftmax(tau, straight_through=True), w)
  y = jax.nn.softmax((logits + jax.random.gumbel(key, (3,), jnp.float64)) / tau)
  (s, info), g = jax.value_and_grad(lambda l: relaxed(l, key), has_aux=True)(logits)
  np.testing.assert_allclose(float(s), float(jnp.dot(w, y)), rtol=1e-9)
  np.testing.assert_allclose(g, y * (w - jnp.dot(w, y)) / tau, rtol=1e-9)
  hard = np.eye(3)[int(jnp.argmax(y))]
  np.testing.assert_array_equal(info.values["b"], hard)
  (s_st, info_st), g_st = jax.value_and_grad(lambda l: st(l, key), has_aux=True)(logits)
  np.testing.assert_allclose(float(s_st), float(jnp.dot(w, hard)), rtol=1e-12)
  np.testing.assert_allclose(g_st, g, rtol=1e-12)
  # The relaxation can also be chosen from outside the model, like "score"/"pathwise".
  def model(l, key):
    sg.cost("c", jnp.sum(w * sg.sample("b", cat(l), key)))
  over = sg.make_surrogate(model, estimators={"b": sg.GumbelSoftmax(tau)})
  np.testing.assert_allclose(jax.grad(lambda l: over(l, key)[0])(logits), g, rtol=1e-12)


DISARM_T = jnp.array([0.45, 0.2])
DISARM_W = jnp.array([1.0, -2.0])


def disarm_model(theta, key, estimator):
  k1, k2 = jax.random.split(key)
  a = sg.sample("a", distrax.Bernoulli(logits=theta[:2], dtype=jnp.float64), k1,
                estimator=estimator)
  b = sg.sample("b", distrax.Bernoulli(logits=theta[2] + jnp.dot(a, DISARM_W),
                                       dtype=jnp.float64), k2)
  sg.cost("ca", jnp.sum((a - DISARM_T) ** 2))
  sg.cost("cb", (b - 0.3) ** 2 * (1.0 + a[0]))


def test_per_node_disarm_is_unbiased_and_beats_the_score_function(x64):
  theta = jnp.array([0.4, -0.8, 0.3])

  def objective(th):
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=3):
      a, b = jnp.asarray(bits[:2]), bits[2]
      pa = jnp.prod(jnp.where(a > 0, jax.nn.sigmoid(th[:2]), jax.nn.sigmoid(-th[:2])))
      qb = jax.nn.sigmoid(th[2] + jnp.dot(a, DISARM_W))
      pb = qb if b else 1 - qb
      total = total + pa * pb * (jnp.sum((a - DISARM_T) ** 2) + (b - 0.3) ** 2 * (1 + a[0]))
    return total
  exact = np.asarray(jax.grad(objective)(theta))
  keys = jax.random.split(jax.random.PRNGKey(6), 20000)
  variance = {}
  for name, est in (("disarm", sg.DisARM()), ("score", "score")):
    fn = sg.make_surrogate(lambda th, k, est=est: disarm_model(th, k, est))
    stats = sg.gradient_statistics(jax.jit(lambda ks, fn=fn: sg.per_sample_gradients(
        lambda th, k: fn(th, k)[0], theta, ks))(keys))
    z = np.abs(np.asarray(stats.mean) - exact) / np.asarray(stats.stderr)
    assert np.all(z < 4.0), (name, z)
    variance[name] = float(stats.variance)
  assert variance["disarm"] < 0.5 * variance["score"], variance
  # The forward value is the sampled cost at b; the node's value is the exact sample b.
  fn = sg.make_surrogate(lambda th, k: disarm_model(th, k, sg.DisARM()))
  s, info = fn(theta, jax.random.PRNGKey(1))
  np.testing.assert_allclose(s, info.cost, rtol=1e-12)
  assert set(np.unique(np.asarray(info.values["a"]))) <= {0.0, 1.0}


def test_bad_inputs():
  with pytest.raises(ValueError, match="temperature must be > 0"):
    sg.GumbelSoftmax(0.0)
  with pytest.raises(ValueError, match="logits must be a floating array"):
    sg.disarm_surrogate(f, jnp.array([1, 2]), jax.random.PRNGKey(0))

  def model(t, key):
    sg.sample("x", distrax.Normal(t, 1.0), key, estimator=sg.GumbelSoftmax(0.5))
  with pytest.raises(ValueError, match="node 'x': GumbelSoftmax relaxes Bernoulli"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="node 'a': DisARM\\(\\) cannot be combined with dice"):
    sg.make_surrogate(lambda t, k: disarm_model(t, k, sg.DisARM()), dice=True)(
        jnp.zeros(3), jax.random.PRNGKey(0))

  def in_scan(t, key):
    def body(c, k):
      sg.cost("c", sg.sample("a", distrax.Bernoulli(logits=t), k, estimator=sg.DisARM()))
      return c, None
    sg.scan(body, 0.0, jax.random.split(key, 2))
  with pytest.raises(ValueError, match="node 'a': DisARM\\(\\) is only supported outside"):
    sg.make_surrogate(in_scan)(jnp.zeros(()), jax.random.PRNGKey(0))
