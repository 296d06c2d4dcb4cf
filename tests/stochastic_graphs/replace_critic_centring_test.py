"""A "replace" critic without a baseline does not centre the learning signal (issue 22).

On a 4-step Bernoulli chain with a shared logit, the exact variance (enumeration of all 16
outcomes) of the estimator with the exact critic Q_k = E[R_k | a_<=k] as signal is above that
of the plain causal estimator, whose signal is the sampled cost-to-go R_k. Q_k - V_k, with the
baseline V_k = E[R_k | a_<k], is centred and far below both. The README states the numbers.
"""
import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg

K, THETA, W = 4, 0.0, 2.0
OUTCOMES = list(itertools.product([0, 1], repeat=K))


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _cost(a):
  return (a - 0.3) ** 2 + 3.0


def _prob(x):
  p, prev = 1.0, 0
  for a in x:
    q = _sigmoid(THETA + W * prev)
    p, prev = p * (q if a else 1.0 - q), a
  return p


def _tables():
  """Q[k, a_k] = E[R_k | a_k] and V[k, a_{k-1}] = E[R_k | a_{k-1}] (Markov chain), exactly."""
  probs = {x: _prob(x) for x in OUTCOMES}
  to_go = {x: np.cumsum([_cost(a) for a in x][::-1])[::-1] for x in OUTCOMES}
  q, v = np.zeros((K, 2)), np.zeros((K, 2))
  for k in range(K):
    for val in (0, 1):
      sel = [x for x in OUTCOMES if x[k] == val]
      q[k, val] = sum(probs[x] * to_go[x][k] for x in sel) / sum(probs[x] for x in sel)
      sel = [x for x in OUTCOMES if (x[k - 1] if k else 0) == val]
      if sel:
        v[k, val] = sum(probs[x] * to_go[x][k] for x in sel) / sum(probs[x] for x in sel)
  return q, v


def make_model(critic: bool, baseline: bool):
  q_table, v_table = (jnp.asarray(t) for t in _tables())

  def model(theta, key):
    prev = jnp.zeros(())
    for k, kk in enumerate(jax.random.split(key, K)):
      name = f"a{k}"
      a = sg.sample(name, distrax.Bernoulli(logits=theta + W * prev, dtype=jnp.float64), kk)
      if critic:
        sg.critic(name, q_table[k, a.astype(int)])  # Reads the node itself: allowed.
      if baseline:
        sg.baseline(name, v_table[k, prev.astype(int)])  # Non-descendant: the previous node.
      sg.cost(f"c{k}", _cost(a))
      prev = a
  critics = {f"a{k}": "replace" for k in range(K)} if critic else None
  return sg.make_surrogate(model, critics=critics)


def exact_mean_and_variance(fn):
  grad = jax.jit(jax.grad(lambda t, vals: fn(t, jax.random.PRNGKey(0), values=vals)[0]))
  g = np.array([float(grad(jnp.asarray(THETA), {f"a{k}": jnp.asarray(float(a))
                                                for k, a in enumerate(x)})) for x in OUTCOMES])
  p = np.array([_prob(x) for x in OUTCOMES])
  mean = p @ g
  return mean, p @ g ** 2 - mean ** 2


def test_replace_critic_without_baseline_is_not_centred(x64):
  exact = None
  results = {}
  for name, critic, baseline in (("causal", False, False), ("replace", True, False),
                                 ("replace+baseline", True, True)):
    results[name] = exact_mean_and_variance(make_model(critic, baseline))
    if exact is None:
      exact = results[name][0]
    np.testing.assert_allclose(results[name][0], exact, rtol=1e-10)  # All unbiased.
  var = {k: v[1] for k, v in results.items()}
  np.testing.assert_allclose(var["causal"], 68.727, atol=1e-3)
  np.testing.assert_allclose(var["replace"], 69.510, atol=1e-3)
  np.testing.assert_allclose(var["replace+baseline"], 0.047, atol=1e-3)
  assert var["replace"] > var["causal"] > 100 * var["replace+baseline"]
