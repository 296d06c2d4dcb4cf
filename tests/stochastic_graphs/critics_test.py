"""Critics: Q replacing the cost, SVG(0) pathwise, control variates, bootstrapped horizons."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg


def gaussian_model(q_fn=None):
  def model(p, key):
    x = sg.sample("x", distrax.Normal(p[0], jnp.exp(p[1])), key)
    if q_fn is not None:
      sg.critic("x", q_fn)
    sg.cost("c", (x - 0.5) ** 2)
  return model


def test_pathwise_critic_svg0_equals_reparameterisation_when_critic_is_the_cost(x64):
  p, key = jnp.array([0.3, -0.2]), jax.random.PRNGKey(0)
  exact_q = sg.make_surrogate(gaussian_model(lambda x: (x - 0.5) ** 2),
                              estimators={"x": "pathwise"}, critics={"x": "pathwise"})
  plain = sg.make_surrogate(gaussian_model(), estimators={"x": "pathwise"})
  g_plain = jax.grad(lambda q: plain(q, key)[0])(p)
  np.testing.assert_allclose(jax.grad(lambda q: exact_q(q, key)[0])(p), g_plain, rtol=1e-12)
  # A different critic changes the gradient: the cost's own pathwise gradient is cut.
  other = sg.make_surrogate(gaussian_model(lambda x: 2.0 * x),
                            estimators={"x": "pathwise"}, critics={"x": "pathwise"})
  x = plain(p, key)[1].values["x"]
  np.testing.assert_allclose(jax.grad(lambda q: other(q, key)[0])(p)[0], 2.0, rtol=1e-12)
  assert x.shape == ()


def test_reparam_control_variate_is_unbiased_and_exact_when_q_equals_cost(x64):
  p = jnp.array([0.3, -0.2])
  fn = sg.make_surrogate(gaussian_model(lambda x: (x - 0.5) ** 2),
                         estimators={"x": "score"}, critics={"x": "reparam"})
  plain = sg.make_surrogate(gaussian_model(), estimators={"x": "pathwise"})
  for seed in range(3):  # q = cost: the score term vanishes, the estimate is the pathwise one.
    key = jax.random.PRNGKey(seed)
    np.testing.assert_allclose(jax.grad(lambda q: fn(q, key)[0])(p),
                               jax.grad(lambda q: plain(q, key)[0])(p), rtol=1e-10)
  # A mismatched q still gives an unbiased estimate: d/dmu E[(x-.5)^2] = 2(mu - .5),
  # d/dlog s = 2 s^2.
  lax_fn = sg.make_surrogate(gaussian_model(lambda x: 0.3 * x ** 2),
                             estimators={"x": "score"}, critics={"x": "reparam"})
  keys = jax.random.split(jax.random.PRNGKey(4), 20000)
  stats = sg.gradient_statistics(jax.jit(lambda ks: sg.per_sample_gradients(
      lambda q, k: lax_fn(q, k)[0], p, ks))(keys))
  exact = np.array([2 * (0.3 - 0.5), 2 * np.exp(-0.4)])
  assert np.all(np.abs(np.asarray(stats.mean) - exact) < 4 * np.asarray(stats.stderr))


def bernoulli_model(q_fn, kind_cost=lambda b: 3.0 * b + 1.0):
  def model(t, key):
    b = sg.sample("b", distrax.Bernoulli(logits=t, dtype=t.dtype), key)
    sg.critic("b", q_fn)
    sg.cost("c", jnp.sum(kind_cost(b)))
  return model


def test_taylor_control_variate_muprop(x64):
  t = jnp.array([0.4, -1.0])
  probs = jax.nn.sigmoid(t)
  exact = 3.0 * probs * (1 - probs)  # d/dt E[sum 3b + 1].
  # Linear cost and q = cost: the Taylor expansion is exact, so every sample gives the exact
  # gradient (zero variance).
  fn = sg.make_surrogate(bernoulli_model(lambda b: jnp.sum(3.0 * b + 1.0)),
                         critics={"b": "taylor"})
  for seed in range(4):
    key = jax.random.PRNGKey(seed)
    np.testing.assert_allclose(jax.grad(lambda x: fn(x, key)[0])(t), exact, rtol=1e-10)
  # Quadratic cost with a linear q: unbiased by enumeration over the four outcomes.
  cost = lambda b: (b - 0.3) ** 2 * jnp.array([2.0, -1.0])  # noqa: E731
  fn = sg.make_surrogate(bernoulli_model(lambda b: jnp.sum(b), cost), critics={"b": "taylor"})
  exact = jax.grad(lambda x: jnp.sum(jax.nn.sigmoid(x) * cost(1.0) +
                                     (1 - jax.nn.sigmoid(x)) * cost(0.0)))(t)
  grad_at = jax.jit(lambda b: jax.grad(lambda x: fn(x, jax.random.PRNGKey(0),
                                                    values={"b": b})[0])(t))
  total = 0.0
  for b0 in (0.0, 1.0):
    for b1 in (0.0, 1.0):
      b = jnp.array([b0, b1])
      p = jnp.prod(jnp.where(b > 0, probs, 1 - probs))
      total = total + p * grad_at(b)
  np.testing.assert_allclose(total, exact, rtol=1e-10)


def test_critic_kind_errors():
  with pytest.raises(ValueError, match="critics\\['x'\\] must be one of"):
    sg.make_surrogate(gaussian_model(), critics={"x": "magic"})
  with pytest.raises(ValueError, match="critic kind 'pathwise' for node 'x' needs estimator"):
    sg.make_surrogate(gaussian_model(lambda x: x), estimators={"x": "score"},
                      critics={"x": "pathwise"})(jnp.zeros(2), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="critic kind 'reparam' for node 'b' needs a repar"):
    sg.make_surrogate(bernoulli_model(lambda b: jnp.sum(b)), critics={"b": "reparam"})(
        jnp.zeros(2), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="critics cannot be combined with dice"):
    sg.make_surrogate(gaussian_model(), critics={"x": "replace"}, dice=True)


def test_critic_may_not_read_descendants():
  def model(t, key):
    k1, k2 = jax.random.split(key)
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), k1)
    b = sg.sample("b", distrax.Bernoulli(logits=t + a, dtype=jnp.float32), k2)
    sg.critic("a", a + b)
    sg.cost("c", a + b)
  with pytest.raises(ValueError, match="critic of node 'a' depends on \\['b'\\]"):
    sg.make_surrogate(model, critics={"a": "replace"})(jnp.zeros(()), jax.random.PRNGKey(0))


def test_bootstrap_horizon_with_exact_value_is_unbiased(x64):
  """a -> b -> c chain; a's costs beyond the horizon {b} are replaced by V(b) = E[cost_c | b]."""
  def logits(t, a=None, b=None):
    return {"a": t[0], "b": t[1] + a, "c": t[2] - 2.0 * b}

  def v_of_b(t, b):
    return 5.0 * jax.nn.sigmoid(t[2] - 2.0 * b)  # E[5 c | b]

  def model(t, key, exact_v=True):
    k1, k2, k3 = jax.random.split(key, 3)
    a = sg.sample("a", distrax.Bernoulli(logits=t[0], dtype=t.dtype), k1)
    b = sg.sample("b", distrax.Bernoulli(logits=t[1] + a, dtype=t.dtype), k2)
    c = sg.sample("c", distrax.Bernoulli(logits=t[2] - 2.0 * b, dtype=t.dtype), k3)
    v = v_of_b(t, b) if exact_v else 2.0 * b
    sg.bootstrap("a", jax.lax.stop_gradient(v), beyond=["b"])
    sg.cost("ca", a * 1.5)
    sg.cost("cc", 5.0 * c)

  t = jnp.array([0.2, -0.4, 0.6])

  def exact_obj(t):
    total = 0.0
    for a in (0.0, 1.0):
      pa = jax.nn.sigmoid(t[0]) if a else 1 - jax.nn.sigmoid(t[0])
      for b in (0.0, 1.0):
        pb = jax.nn.sigmoid(t[1] + a) if b else 1 - jax.nn.sigmoid(t[1] + a)
        total = total + pa * pb * (1.5 * a + 5.0 * jax.nn.sigmoid(t[2] - 2.0 * b))
    return total

  def expected(fn):
    grad_at = jax.jit(lambda vals: jax.grad(
        lambda x: fn(x, jax.random.PRNGKey(0), values=vals)[0])(t))
    total = 0.0
    for a in (0.0, 1.0):
      for b in (0.0, 1.0):
        for c in (0.0, 1.0):
          pa = jax.nn.sigmoid(t[0]) if a else 1 - jax.nn.sigmoid(t[0])
          pb = jax.nn.sigmoid(t[1] + a) if b else 1 - jax.nn.sigmoid(t[1] + a)
          pc = jax.nn.sigmoid(t[2] - 2 * b) if c else 1 - jax.nn.sigmoid(t[2] - 2 * b)
          vals = {"a": jnp.asarray(a), "b": jnp.asarray(b), "c": jnp.asarray(c)}
          total = total + pa * pb * pc * grad_at(vals)
    return total

  np.testing.assert_allclose(expected(sg.make_surrogate(model)), jax.grad(exact_obj)(t),
                             rtol=1e-10)
  wrong = expected(sg.make_surrogate(lambda x, k: model(x, k, False)))
  assert abs(float(wrong[0] - jax.grad(exact_obj)(t)[0])) > 1e-3  # A wrong V is biased.
  _, info = sg.make_surrogate(model)(t, jax.random.PRNGKey(1))
  assert float(info.critic_loss) >= 0.0
