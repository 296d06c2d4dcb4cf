"""Regularisers: direct gradient only, no credit to upstream nodes, inside scan and with DiCE."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg


def graph(theta, key, kind):
  """A Bernoulli node `a`, a cost of `a`, and a term w(theta, a) after it.

  `kind` says how the term is emitted: "cost" (part of E[sum c]), "regularizer", or "none".
  """
  k1, _ = jax.random.split(key)
  a = sg.sample("a", distrax.Bernoulli(logits=theta[0], dtype=jnp.float32), k1)
  sg.cost("c", (a - 0.3) ** 2)
  w = theta[1] ** 2 * (1.0 + a)        # depends on the sample: downstream of `a`
  if kind == "cost":
    sg.cost("w", w)
  elif kind == "regularizer":
    sg.regularizer("w", w)


def test_regularizer_adds_its_direct_gradient_and_no_credit(x64):
  theta = jnp.array([0.4, -0.7])
  key = jax.random.key(3)
  fns = {k: sg.make_surrogate(lambda t, kk, k=k: graph(t, kk, k))
         for k in ("none", "cost", "regularizer")}
  out = {k: f(theta, key) for k, f in fns.items()}
  grads = {k: jax.grad(lambda t, f=f: f(t, key)[0])(theta) for k, f in fns.items()}
  a = float(out["none"][1].values["a"])
  # The value of the surrogate and the learning signal of `a` ignore the regulariser ...
  np.testing.assert_allclose(out["regularizer"][0], out["none"][0], atol=1e-12)
  np.testing.assert_allclose(out["regularizer"][1].signals["a"], out["none"][1].signals["a"],
                             atol=1e-12)
  # ... while as a cost it enters the signal of its upstream node.
  np.testing.assert_allclose(out["cost"][1].signals["a"] - out["none"][1].signals["a"],
                             float(theta[1]) ** 2 * (1.0 + a), atol=1e-12)
  # Gradient: the plain graph's plus the direct gradient of w (only d/d theta_1).
  direct = np.array([0.0, 2.0 * float(theta[1]) * (1.0 + a)])
  np.testing.assert_allclose(grads["regularizer"], np.asarray(grads["none"]) + direct,
                             atol=1e-12)


def test_regularizer_with_dice_has_the_same_first_derivative(x64):
  theta = jnp.array([-0.2, 0.9])
  key = jax.random.key(5)
  plain = sg.make_surrogate(lambda t, k: graph(t, k, "regularizer"))
  dice = sg.make_surrogate(lambda t, k: graph(t, k, "regularizer"), dice=True)
  g1 = jax.grad(lambda t: plain(t, key)[0])(theta)
  g2 = jax.grad(lambda t: dice(t, key)[0])(theta)
  np.testing.assert_allclose(g1, g2, atol=1e-12)


def test_entropy_regularizer_in_scan_matches_the_analytic_entropy_gradient(x64):
  """Per-step categorical policies with a reward cost and an entropy bonus, actions forced."""
  logits = jnp.array([[0.2, -0.5, 1.0], [0.0, 0.3, -0.1], [1.5, 0.2, 0.2], [-1.0, 0.0, 0.4]])
  actions = jnp.array([2, 0, 1, 1])
  beta = 0.3

  def model(lg, key):
    def body(_, x):
      logit, k = x
      dist = distrax.Categorical(logits=logit)
      sg.sample("action", dist, k)
      sg.cost("reward", jnp.float64(-1.0))   # data: no gradient, no credit to `action`
      sg.entropy_regularizer("entropy", dist, beta)
      return None, None

    sg.scan(body, None, (lg, jax.random.split(key, lg.shape[0])))

  surrogate = sg.make_surrogate(model)
  value, info = surrogate(logits, jax.random.key(0), values={"action": actions})
  np.testing.assert_allclose(value, -4.0, atol=1e-12)  # entropy terms are zero forward
  np.testing.assert_allclose(info.signals["action"], 0.0, atol=1e-12)
  grad = jax.grad(lambda lg: surrogate(lg, jax.random.key(0), values={"action": actions})[0])(
      logits)

  def entropy(lg):
    p = jax.nn.softmax(lg)
    return -jnp.sum(p * jax.nn.log_softmax(lg))

  expected = -beta * jax.vmap(jax.grad(entropy))(logits)
  np.testing.assert_allclose(grad, expected, atol=1e-12)


def test_transparent_outside_a_surrogate():
  dist = distrax.Categorical(logits=jnp.zeros(4))
  np.testing.assert_allclose(sg.entropy_regularizer("h", dist, 0.1), np.log(4.0), rtol=1e-6)
  assert sg.regularizer("r", 2.5) == 2.5
