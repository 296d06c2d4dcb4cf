"""Proofs of the surrogate estimators on small discrete graphs, by exact enumeration.

Two kinds of check: (1) the expectation of an estimator, computed exactly by enumerating every
outcome of the graph (`values=` forces the samples) and weighting by probabilities computed here
with plain jax.numpy, equals the exact gradient of the enumerated objective to 1e-9; (2) the Monte
Carlo mean of the estimator over 20000 fixed-key samples is within 4 standard errors of it.
"""
import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg

# ---- graph specifications: nodes are Bernoulli(sigmoid(logit_fn(theta, vals))) in order ----
GRAPHS = {
    "chain": dict(
        nodes=[("a", lambda t, v: t[0]), ("b", lambda t, v: t[1] + 1.5 * v["a"]),
               ("c", lambda t, v: t[2] - 2.0 * v["b"])],
        costs=[("ca", lambda t, v: (v["a"] - 0.3) ** 2 * t[3]),
               ("cb", lambda t, v: 2.0 * v["b"] - v["a"]),
               ("cc", lambda t, v: 3.0 * v["c"] + v["b"] * v["c"])],
        baselines={"b": lambda t, v: 0.4 + 0.8 * v["a"], "c": lambda t, v: 1.0 + v["b"]}),
    "tree": dict(
        nodes=[("a", lambda t, v: t[0]), ("b", lambda t, v: t[1] + v["a"]),
               ("c", lambda t, v: t[2] - v["a"])],
        costs=[("ca", lambda t, v: v["a"] * t[3]), ("cb", lambda t, v: 3.0 * (v["b"] - 0.7) ** 2),
               ("cc", lambda t, v: 2.0 * v["c"] + v["a"])],
        baselines={"b": lambda t, v: 1.0 + 0.2 * v["a"], "c": lambda t, v: 0.5 * v["a"]}),
    "diamond": dict(
        nodes=[("a", lambda t, v: t[0]), ("b", lambda t, v: t[1] + v["a"]),
               ("c", lambda t, v: t[2] - 1.2 * v["a"]),
               ("d", lambda t, v: t[3] + v["b"] - v["c"])],
        costs=[("ca", lambda t, v: t[0] * v["a"]), ("cb", lambda t, v: v["b"]),
               ("cd", lambda t, v: 4.0 * v["d"] - v["b"] * v["d"])],
        baselines={"a": lambda t, v: 1.5, "d": lambda t, v: 2.0 + v["b"] - v["c"]}),
}
THETA = np.array([0.3, -0.5, 0.8, 0.2])


def make_model(spec, with_baselines=False):
  def model(theta, key):
    keys = jax.random.split(key, len(spec["nodes"]))
    vals = {}
    for (name, logit_fn), k in zip(spec["nodes"], keys):
      dist = distrax.Bernoulli(logits=logit_fn(theta, vals), dtype=theta.dtype)
      vals[name] = sg.sample(name, dist, k)
      if with_baselines and name in spec["baselines"]:
        sg.baseline(name, spec["baselines"][name](theta, vals))
    for name, fn in spec["costs"]:
      sg.cost(name, fn(theta, vals))
  return model


def outcomes(spec):
  names = [n for n, _ in spec["nodes"]]
  for bits in itertools.product([0.0, 1.0], repeat=len(names)):
    yield dict(zip(names, bits))


def stacked_outcomes(spec):
  """Every outcome at once: node name -> (2^n,) array."""
  names = [n for n, _ in spec["nodes"]]
  bits = np.array(list(itertools.product([0.0, 1.0], repeat=len(names))))
  return {n: jnp.asarray(bits[:, i]) for i, n in enumerate(names)}


def prob(spec, theta, vals):
  p = 1.0
  for name, logit_fn in spec["nodes"]:
    q = jax.nn.sigmoid(logit_fn(theta, vals))
    p = p * jnp.where(vals[name] > 0, q, 1.0 - q)
  return p


def exact_objective(spec, theta):
  v = stacked_outcomes(spec)
  return jnp.sum(prob(spec, theta, v) * sum(fn(theta, v) for _, fn in spec["costs"]))


def _per_outcome(spec, fn, theta, order):
  deriv = jax.grad if order == 1 else jax.hessian

  def one(values):
    return deriv(lambda t: fn(t, jax.random.PRNGKey(0), values=values)[0])(theta)
  v = stacked_outcomes(spec)
  return prob(spec, theta, v), jax.jit(jax.vmap(one))(v)


def expected_estimate(spec, fn, theta, order=1):
  """E[estimator] by enumeration: sum_x p(x) * derivative of the surrogate at forced x."""
  p, g = _per_outcome(spec, fn, theta, order)
  return jnp.tensordot(p, g, axes=1)


def exact_variance(spec, fn, theta):
  p, g = _per_outcome(spec, fn, theta, 1)
  mean = jnp.tensordot(p, g, axes=1)
  return float(jnp.sum(p * jnp.sum((g - mean) ** 2, axis=1)))


ESTIMATORS = {
    "reinforce": dict(causal=False, with_baselines=False),
    "causal": dict(causal=True, with_baselines=False),
    "causal_baseline": dict(causal=True, with_baselines=True),
    "dice_baseline": dict(causal=True, with_baselines=True, dice=True),
}


def build(spec, causal, with_baselines, dice=False):
  return sg.make_surrogate(make_model(spec, with_baselines), causal=causal, dice=dice)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_expected_estimate_equals_exact_gradient(x64, graph, estimator):
  spec = GRAPHS[graph]
  theta = jnp.asarray(THETA)
  fn = build(spec, **ESTIMATORS[estimator])
  exact = jax.grad(lambda t: exact_objective(spec, t))(theta)
  np.testing.assert_allclose(expected_estimate(spec, fn, theta), exact, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_monte_carlo_mean_within_4_standard_errors(x64, graph):
  spec = GRAPHS[graph]
  theta = jnp.asarray(THETA)
  exact = np.asarray(jax.grad(lambda t: exact_objective(spec, t))(theta))
  keys = jax.random.split(jax.random.PRNGKey(1), 20000)
  for est in ("reinforce", "causal_baseline"):
    fn = build(spec, **ESTIMATORS[est])
    grads = jax.jit(lambda ks: sg.per_sample_gradients(
        lambda t, k: fn(t, k)[0], theta, ks))(keys)
    stats = sg.gradient_statistics(grads)
    z = np.abs(np.asarray(stats.mean) - exact) / np.asarray(stats.stderr)
    assert np.all(z < 4.0), (graph, est, z)


def test_causality_is_derived_from_dataflow(x64):
  structure = sg.graph_structure(make_model(GRAPHS["chain"]), jnp.asarray(THETA),
                                 jax.random.PRNGKey(0))
  assert structure.influenced_costs("a") == ["ca", "cb", "cc"]
  assert structure.influenced_costs("b") == ["cb", "cc"]
  assert structure.influenced_costs("c") == ["cc"]
  assert structure.descendants("a") == ["b", "c"]
  tree = sg.graph_structure(make_model(GRAPHS["tree"]), jnp.asarray(THETA),
                            jax.random.PRNGKey(0))
  assert tree.influenced_costs("b") == ["cb"] and tree.influenced_costs("c") == ["cc"]
  diamond = sg.graph_structure(make_model(GRAPHS["diamond"]), jnp.asarray(THETA),
                               jax.random.PRNGKey(0))
  assert diamond.influenced_costs("c") == ["cd"]
  assert diamond.descendants("a") == ["b", "c", "d"]


def _q_table(spec, theta, node):
  """Exact Q_v = E[R_v | all nodes up to and including v], as a table indexed by the prefix."""
  names = [n for n, _ in spec["nodes"]]
  i = names.index(node)
  structure = sg.graph_structure(make_model(spec), theta, jax.random.PRNGKey(0))
  downstream = structure.influenced_costs(node)
  v = stacked_outcomes(spec)
  idx = np.asarray(sum(v[names[j]] * 2 ** j for j in range(i + 1))).astype(int)
  p = np.asarray(prob(spec, theta, v))
  r = np.asarray(sum(fn(theta, v) for n, fn in spec["costs"] if n in downstream))
  num = np.bincount(idx, p * r, minlength=2 ** (i + 1))
  den = np.bincount(idx, p, minlength=2 ** (i + 1))
  return jnp.asarray(num / den), names[:i + 1]


def _critic_model(spec, theta, baseline_tables):
  tables = {n: _q_table(spec, theta, n) for n, _ in spec["nodes"]}

  def model(th, key):
    keys = jax.random.split(key, len(spec["nodes"]))
    vals = {}
    for (name, logit_fn), k in zip(spec["nodes"], keys):
      dist = distrax.Bernoulli(logits=logit_fn(th, vals), dtype=th.dtype)
      vals[name] = sg.sample(name, dist, k)
      table, prefix = tables[name]
      idx = sum(vals[p] * 2 ** j for j, p in enumerate(prefix)).astype(jnp.int32)
      sg.critic(name, table[idx])
      if baseline_tables:  # V = E[Q | parents] = mix of Q over the node's own value.
        q = jax.nn.sigmoid(logit_fn(th, vals))
        idx0 = sum((vals[p] * 2 ** j for j, p in enumerate(prefix[:-1])),
                   jnp.zeros((), th.dtype)).astype(jnp.int32)
        idx1 = idx0 + 2 ** (len(prefix) - 1)
        sg.baseline(name, jax.lax.stop_gradient(q * table[idx1] + (1 - q) * table[idx0]))
    for name, fn in spec["costs"]:
      sg.cost(name, fn(th, vals))
  return model


def test_exact_critic_is_unbiased_and_variance_ordering(x64):
  """Variance ordering on every graph: REINFORCE >= causal >= +baseline >= +critic (exact)."""
  theta = jnp.asarray(THETA)
  report = {}
  for graph, spec in GRAPHS.items():
    exact = jax.grad(lambda t, spec=spec: exact_objective(spec, t))(theta)
    crit = sg.make_surrogate(_critic_model(spec, theta, True),
                             critics={n: "replace" for n, _ in spec["nodes"]})
    np.testing.assert_allclose(expected_estimate(spec, crit, theta), exact, atol=1e-10)
    # The baseline: the exact value of the parents state minus nothing learned: E[R_v] itself.
    structure = sg.graph_structure(make_model(spec), theta, jax.random.PRNGKey(0))
    v = stacked_outcomes(spec)
    p = prob(spec, theta, v)
    const = {n: float(jnp.sum(p * sum(fn(theta, v) for c, fn in spec["costs"]
                                      if c in structure.influenced_costs(n))))
             for n, _ in spec["nodes"]}

    def with_const(t, key, values=None, spec=spec, const=const):
      return sg.make_surrogate(make_model(spec))(t, key, values=values, baselines=const)

    v = {"reinforce": exact_variance(spec, build(spec, False, False), theta),
         "causal": exact_variance(spec, build(spec, True, False), theta),
         "baseline": exact_variance(spec, with_const, theta),
         "critic": exact_variance(spec, crit, theta)}
    report[graph] = v
    assert v["reinforce"] >= v["causal"] >= v["baseline"] >= v["critic"], (graph, v)
  print("exact variance (trace of covariance):", report)


def test_dice_hessian_equals_exact_hessian(x64):
  for graph, settings in (("chain", (True,)), ("diamond", (True,))):
    spec = GRAPHS[graph]
    theta = jnp.asarray(THETA)
    exact = jax.hessian(lambda t: exact_objective(spec, t))(theta)
    for with_baselines in settings:
      fn = build(spec, True, with_baselines, dice=True)
      np.testing.assert_allclose(expected_estimate(spec, fn, theta, order=2), exact,
                                 rtol=1e-9, atol=1e-10)
  # The first-order surrogate's Hessian is not the Hessian: the check can fail.
  plain = build(GRAPHS["chain"], True, False)
  wrong = expected_estimate(GRAPHS["chain"], plain, jnp.asarray(THETA), order=2)
  exact = jax.hessian(lambda t: exact_objective(GRAPHS["chain"], t))(jnp.asarray(THETA))
  assert np.max(np.abs(wrong - exact)) > 1e-2


def test_forward_value_is_the_sampled_cost(x64):
  for dice in (False, True):
    fn = build(GRAPHS["diamond"], True, True, dice=dice)
    s, info = fn(jnp.asarray(THETA), jax.random.PRNGKey(3))
    np.testing.assert_allclose(s, info.cost, rtol=1e-12)
    assert float(info.cost) == pytest.approx(sum(float(c) for c in info.costs.values()))


def mixed_model(theta, key, estimator="pathwise"):
  ka, kx = jax.random.split(key)
  a = sg.sample("a", distrax.Bernoulli(logits=theta[0], dtype=theta.dtype), ka)
  x = sg.sample("x", distrax.Normal(theta[1] + a, jnp.exp(theta[2])), kx, estimator=estimator)
  sg.cost("c", (x - 1.0) ** 2 + 2.0 * a * x)
  sg.cost("ca", theta[3] * a)


def mixed_exact(theta):
  total = 0.0
  for a in (0.0, 1.0):
    p = jax.nn.sigmoid(theta[0]) if a else 1 - jax.nn.sigmoid(theta[0])
    mu, s = theta[1] + a, jnp.exp(theta[2])
    total = total + p * ((mu - 1.0) ** 2 + s ** 2 + 2 * a * mu + theta[3] * a)
  return total


@pytest.mark.parametrize("estimator", ["pathwise", "score"])
def test_mixed_discrete_gaussian_unbiased(x64, estimator):
  theta = jnp.asarray(THETA)
  exact = np.asarray(jax.grad(mixed_exact)(theta))
  fn = sg.make_surrogate(lambda t, k: mixed_model(t, k, estimator))
  keys = jax.random.split(jax.random.PRNGKey(2), 20000)
  grads = jax.jit(lambda ks: sg.per_sample_gradients(lambda t, k: fn(t, k)[0], theta, ks))(keys)
  stats = sg.gradient_statistics(grads)
  z = np.abs(np.asarray(stats.mean) - exact) / np.asarray(stats.stderr)
  assert np.all(z < 4.0), z


def test_pathwise_matches_analytic_gaussian_gradient(x64):
  # E[x^2] = mu^2 + sigma^2 for x ~ N(mu, sigma): d/dmu = 2 mu, d/dlog sigma = 2 sigma^2.
  def model(p, key):
    x = sg.sample("x", distrax.Normal(p[0], jnp.exp(p[1])), key, estimator="pathwise")
    sg.cost("c", x ** 2)
  fn = sg.make_surrogate(model)
  p = jnp.array([0.7, -0.4])
  key = jax.random.PRNGKey(5)
  eps = jax.random.normal(key, ())  # distrax draws N(0,1) with this key, then scales.
  x = fn(p, key)[1].values["x"]
  eps = (x - p[0]) / jnp.exp(p[1])
  g = jax.grad(lambda q: fn(q, key)[0])(p)
  np.testing.assert_allclose(g, [2 * x, 2 * x * eps * jnp.exp(p[1])], rtol=1e-12)
  keys = jax.random.split(jax.random.PRNGKey(6), 20000)
  stats = sg.gradient_statistics(jax.jit(lambda ks: sg.per_sample_gradients(
      lambda q, k: fn(q, k)[0], p, ks))(keys))
  analytic = np.array([2 * 0.7, 2 * np.exp(2 * -0.4)])
  assert np.all(np.abs(np.asarray(stats.mean) - analytic) < 4 * np.asarray(stats.stderr))


def test_works_under_jit_vmap_grad_and_grad_of_grad(x64):
  fn = build(GRAPHS["chain"], True, True, dice=True)
  theta = jnp.asarray(THETA)
  loss = lambda t, k: fn(t, k)[0]  # noqa: E731
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  eager = jax.grad(loss)(theta, keys[1])
  batched = jax.jit(jax.vmap(jax.grad(loss), (None, 0)))(theta, keys)
  np.testing.assert_allclose(batched[1], eager, rtol=1e-12)
  # grad of grad under jit equals the Hessian of the per-sample DiCE objective (nested jit).
  h_jit = jax.jit(jax.hessian(loss))(theta, keys[0])
  h_nested = jax.jacfwd(jax.jit(jax.grad(loss)))(theta, keys[0])
  np.testing.assert_allclose(h_jit, h_nested, rtol=1e-10, atol=1e-12)

  # Inside a lax.scan training loop.
  def step(t, k):
    return t - 0.1 * jax.grad(loss)(t, k), loss(t, k)
  final, losses = jax.jit(lambda t: jax.lax.scan(step, t, keys))(theta)
  assert np.all(np.isfinite(final)) and losses.shape == (3,)


def time_chain(theta, key, with_baseline=False):
  """a_t ~ Bernoulli(sigmoid(theta_0 + 1.2 a_{t-1} - 0.3 t)), cost_t = (a_t - 0.4)^2 + a_{t-1}."""
  def body(carry, inp):
    prev, t = carry
    k = inp
    a = sg.sample("a", distrax.Bernoulli(logits=theta[0] + 1.2 * prev - 0.3 * t,
                                         dtype=theta.dtype), k)
    if with_baseline:
      sg.baseline("a", 0.5 + prev)
    sg.cost("r", (a - 0.4) ** 2 * theta[1] + prev)
    return (a, t + 1.0), None
  sg.scan(body, (jnp.zeros((), theta.dtype), jnp.zeros((), theta.dtype)),
          jax.random.split(key, 3))
  sg.cost("final", theta[2] * 0.0 + 1.0)


def time_chain_exact(theta):
  total = 0.0
  for bits in itertools.product([0.0, 1.0], repeat=3):
    p, prev, c = 1.0, 0.0, 0.0
    for t, a in enumerate(bits):
      q = jax.nn.sigmoid(theta[0] + 1.2 * prev - 0.3 * t)
      p = p * (q if a else 1 - q)
      c = c + (a - 0.4) ** 2 * theta[1] + prev
      prev = a
    total = total + p * (c + 1.0)
  return total, None


def test_scan_time_causality_unbiased_and_lower_variance(x64):
  theta = jnp.asarray(THETA[:3])
  exact = jax.grad(lambda t: time_chain_exact(t)[0])(theta)
  structure = sg.graph_structure(time_chain, theta, jax.random.PRNGKey(0))
  assert structure.influenced_costs("a") == ["r"]  # Not "final": it does not read a.

  bits = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
  p, prev = jnp.ones(8), jnp.zeros(8)
  for t in range(3):
    q = jax.nn.sigmoid(theta[0] + 1.2 * prev - 0.3 * t)
    p, prev = p * jnp.where(bits[:, t] > 0, q, 1 - q), jnp.asarray(bits[:, t])

  def expected(fn):
    g = jax.jit(jax.vmap(lambda b: jax.grad(lambda t: fn(
        t, jax.random.PRNGKey(0), values={"a": b})[0])(theta)))(jnp.asarray(bits))
    mean = jnp.tensordot(p, g, axes=1)
    return mean, float(jnp.sum(p * jnp.sum((g - mean) ** 2, axis=1)))

  variances = {}
  for name, fn in {"reinforce": sg.make_surrogate(time_chain, causal=False),
                   "causal": sg.make_surrogate(time_chain),
                   "baseline": sg.make_surrogate(
                       lambda t, k: time_chain(t, k, True)),
                   "dice": sg.make_surrogate(lambda t, k: time_chain(t, k, True),
                                             dice=True)}.items():
    mean, var = expected(fn)
    np.testing.assert_allclose(mean, exact, atol=1e-10)
    variances[name] = var
  assert variances["reinforce"] > variances["causal"] > variances["baseline"], variances


def _chain_step(theta, carry, k):
  prev, t = carry
  a = sg.sample("a", distrax.Bernoulli(logits=theta[0] + 1.2 * prev - 0.3 * t,
                                       dtype=theta.dtype), k)
  sg.cost("r", (a - 0.4) ** 2 * theta[1] + prev)
  return (a, t + 1.0)


def nested_chain(theta, key):
  """Two outer steps of two inner steps; an outer-step cost reads the last inner sample."""
  def inner(carry, k):
    return _chain_step(theta, carry, k), None

  def outer(carry, k):
    carry, _ = sg.scan(inner, carry, jax.random.split(k, 2))
    sg.cost("s", theta[2] * carry[0])
    return carry, None
  zero = jnp.zeros((), theta.dtype)
  sg.scan(outer, (zero, zero), jax.random.split(key, 2))


def flat_chain(theta, key):
  """The same graph as one scan of four steps."""
  def body(carry, inp):
    k, last = inp
    carry = _chain_step(theta, carry, k)
    sg.cost("s", theta[2] * carry[0] * last)
    return carry, None
  zero = jnp.zeros((), theta.dtype)
  sg.scan(body, (zero, zero), (jax.random.split(key, 4), jnp.array([0.0, 1.0, 0.0, 1.0])))


def test_nested_scan_unbiased_and_between_flat_and_reinforce(x64):
  theta = jnp.asarray(THETA[:3])
  bits = np.array(list(itertools.product([0.0, 1.0], repeat=4)))

  def exact_objective(th):
    p, prev, total = jnp.ones(16), jnp.zeros(16), jnp.zeros(16)
    for t in range(4):
      q = jax.nn.sigmoid(th[0] + 1.2 * prev - 0.3 * t)
      a = jnp.asarray(bits[:, t])
      p = p * jnp.where(a > 0, q, 1 - q)
      total = total + (a - 0.4) ** 2 * th[1] + prev + (th[2] * a if t % 2 else 0.0)
      prev = a
    return jnp.sum(p * total), p
  exact = jax.grad(lambda th: exact_objective(th)[0])(theta)
  p = exact_objective(theta)[1]

  def expected(fn, shape):
    g = jax.jit(jax.vmap(lambda b: jax.grad(lambda t: fn(
        t, jax.random.PRNGKey(0), values={"a": b.reshape(shape)})[0])(theta)))(
            jnp.asarray(bits))
    mean = jnp.tensordot(p, g, axes=1)
    return mean, float(jnp.sum(p * jnp.sum((g - mean) ** 2, axis=1)))

  structure = sg.graph_structure(nested_chain, theta, jax.random.PRNGKey(0))
  assert structure.influenced_costs("a") == ["r", "s"]
  variances = {}
  for name, fn, shape in (("nested", sg.make_surrogate(nested_chain), (2, 2)),
                          ("flat", sg.make_surrogate(flat_chain), (4,)),
                          ("reinforce", sg.make_surrogate(flat_chain, causal=False), (4,))):
    mean, variances[name] = expected(fn, shape)
    np.testing.assert_allclose(mean, exact, atol=1e-10)
  # Exact causality across outer steps, block-level within one: between the two.
  assert variances["flat"] < variances["nested"] < variances["reinforce"], variances
  # A sampled run: values are (outer, inner, ...) arrays; the surrogate's value is the cost.
  s, info = jax.jit(sg.make_surrogate(nested_chain))(theta, jax.random.PRNGKey(3))
  assert info.values["a"].shape == (2, 2) and info.log_probs["a"].shape == (2,)
  np.testing.assert_allclose(s, info.cost, rtol=1e-12)


def test_nested_scan_refuses_baselines_on_inner_nodes():
  def model(t, key):
    def inner(c, k):
      a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), k)
      sg.baseline("a", 0.5)
      sg.cost("c", a)
      return c, None

    def outer(c, k):
      return sg.scan(inner, c, jax.random.split(k, 2))[0], None
    sg.scan(outer, jnp.zeros(()), jax.random.split(key, 3))
  with pytest.raises(ValueError, match="node 'a' is sampled in a nested stochastic_graphs.scan"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_explicit_influence_declaration_overrides_dataflow(x64):
  spec = GRAPHS["chain"]
  theta = jnp.asarray(THETA)
  # Declaring that "b" influences only "cb" drops its (real) effect on "cc": a different mean.
  fn = sg.make_surrogate(make_model(spec), influences={"b": ["cb"]})
  exact = jax.grad(lambda t: exact_objective(spec, t))(theta)
  got = expected_estimate(spec, fn, theta)
  assert abs(float(got[1] - exact[1])) > 1e-3
  np.testing.assert_allclose(got[0], exact[0], atol=1e-10)  # "a" keeps its derived costs.


# ---- bad input ---------------------------------------------------------------------------
def test_pathwise_on_discrete_node_names_the_node():
  def model(t, key):
    sg.sample("coin", distrax.Bernoulli(logits=t), key, estimator="pathwise")
  with pytest.raises(ValueError, match="node 'coin'.*reparameterisable"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_baseline_on_descendant_names_the_node():
  def model(t, key):
    k1, k2 = jax.random.split(key)
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), k1)
    b = sg.sample("b", distrax.Bernoulli(logits=t + a, dtype=jnp.float32), k2)
    sg.baseline("a", 0.5 * b)
    sg.cost("c", a + b)
  with pytest.raises(ValueError, match="baseline of node 'a' depends on \\['b'\\]"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))

  def own(t, key):
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), key)
    sg.baseline("a", a)
    sg.cost("c", a)
  with pytest.raises(ValueError, match="baseline of node 'a'"):
    sg.make_surrogate(own)(jnp.zeros(()), jax.random.PRNGKey(0))

  def in_scan(t, key):
    def body(prev, k):
      a = sg.sample("a", distrax.Bernoulli(logits=t + prev, dtype=jnp.float32), k)
      sg.baseline("a", a * 0.3 + prev)  # Same-step read of a_t: biased.
      sg.cost("r", a)
      return a, None
    sg.scan(body, jnp.zeros(()), jax.random.split(key, 3))
  with pytest.raises(ValueError, match="baseline of node 'a'"):
    sg.make_surrogate(in_scan)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_mismatched_sample_shapes_are_refused():
  fn = sg.make_surrogate(make_model(GRAPHS["chain"]))
  with pytest.raises(ValueError, match="node 'b': the given sample has shape \\(2,\\)"):
    fn(jnp.asarray(THETA), jax.random.PRNGKey(0), values={"b": jnp.zeros(2)})
  with pytest.raises(ValueError, match="baselines names node 'zz'"):
    fn(jnp.asarray(THETA), jax.random.PRNGKey(0), baselines={"zz": 0.0})

  def wide_baseline(t, key):
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), key)
    sg.baseline("a", jnp.zeros(3))
    sg.cost("c", a)
  with pytest.raises(ValueError, match="baseline for node 'a' has shape \\(3,\\)"):
    sg.make_surrogate(wide_baseline)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_nan_cost_names_cost_and_nodes():
  def model(t, key):
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), key)
    sg.cost("bad", jnp.log(a - 2.0))
  with pytest.raises(ValueError, match="cost 'bad' is not finite.*nodes \\['a'\\]"):
    sg.make_surrogate(model)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_non_finite_log_prob_names_the_node():
  def model(t, key):
    x = sg.sample("x", distrax.Beta(2.0 + t, 2.0), key, estimator="score")
    sg.cost("c", 0.0 * x)
  fn = sg.make_surrogate(model)
  with pytest.raises(ValueError, match="node 'x': the log-probability of its sample is not"):
    fn(jnp.zeros(()), jax.random.PRNGKey(0), values={"x": jnp.asarray(1.5)})


def test_duplicate_names_and_unknown_nodes_are_refused():
  def twice(t, key):
    sg.sample("a", distrax.Normal(t, 1.0), key)
    sg.sample("a", distrax.Normal(t, 1.0), key)
  with pytest.raises(ValueError, match="name 'a' is used twice"):
    sg.make_surrogate(twice)(jnp.zeros(()), jax.random.PRNGKey(0))

  def early(t, key):
    sg.baseline("z", 0.0)
  with pytest.raises(ValueError, match="baseline for node 'z'"):
    sg.make_surrogate(early)(jnp.zeros(()), jax.random.PRNGKey(0))


def test_primitives_are_transparent_outside_make_surrogate():
  key = jax.random.PRNGKey(0)
  x = sg.sample("x", distrax.Normal(0.0, 1.0), key)
  assert x == distrax.Normal(0.0, 1.0).sample(seed=key)
  assert sg.cost("c", 3.0) == 3.0
