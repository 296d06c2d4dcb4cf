"""Sigmoid belief nets (`stochastic_graphs.models.sbn`): the -ELBO terms against distrax, every
unbiased estimator's mean gradient against the exact gradient by enumeration, the trainer."""
import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stochastic_graphs.models import sbn

DIM, HIDDEN = 3, 2
X = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
MA = {"h1": jnp.asarray(0.7), "h2": jnp.asarray(-0.4)}  # Any constant baseline keeps it unbiased.
MODEL_KEYS = ("enc1", "enc2", "dec1", "dec2", "prior")


def _params(layers):
  # Weights far from zero so that every gradient coordinate is visibly non-zero.
  p = sbn.init_params(jax.random.PRNGKey(3), layers, HIDDEN, DIM, jnp.array([0.3, 0.6, 0.5]))
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.PRNGKey(4), len(leaves))
  return jax.tree.unflatten(tree, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _states():
  return [jnp.asarray(b) for b in itertools.product([0.0, 1.0], repeat=HIDDEN)]


def _exact_neg_elbo(params, layers):
  """Mean over X of E_q[log q(h|x) - log p(x, h)], summing over all 2^HIDDEN (per layer) h."""
  total = 0.0
  for x in X:
    for h1 in _states():
      for h2 in (_states() if layers == 2 else [None]):
        terms = sbn.neg_elbo_terms(params, x, h1, h2)
        log_q = terms["log_q1"] + (terms["log_q2"] if layers == 2 else 0.0)
        total = total + jnp.exp(log_q) * sum(terms.values())
  return total / X.shape[0]


def _exact_neg_bound_k2(params):
  """Mean over X of -E[log (w_1 + w_2) / 2] with w = p(x, h) / q(h|x), one layer, K = 2."""
  total = 0.0
  for x in X:
    for a, b in itertools.product(_states(), repeat=2):
      ta, tb = sbn.neg_elbo_terms(params, x, a), sbn.neg_elbo_terms(params, x, b)
      ca, cb = sum(ta.values()), sum(tb.values())
      bound = jnp.logaddexp(-ca, -cb) - jnp.log(2.0)
      total = total - jnp.exp(ta["log_q1"] + tb["log_q1"]) * bound
  return total / X.shape[0]


def test_neg_elbo_terms_sum_to_log_q_minus_log_joint(x64):
  params = _params(2)
  x, h1, h2 = X[0], jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
  bern = lambda logits: distrax.Independent(distrax.Bernoulli(logits=logits), 1)  # noqa: E731
  log_q = (bern(X[0] @ params["enc1"]["w"] + params["enc1"]["b"]).log_prob(h1)
           + bern(h1 @ params["enc2"]["w"] + params["enc2"]["b"]).log_prob(h2))
  log_p = (bern(params["prior"]).log_prob(h2)
           + bern(h2 @ params["dec2"]["w"] + params["dec2"]["b"]).log_prob(h1)
           + bern(h1 @ params["dec1"]["w"] + params["dec1"]["b"]).log_prob(x))
  terms = sbn.neg_elbo_terms(params, x, h1, h2)
  np.testing.assert_allclose(sum(terms.values()), log_q - log_p, rtol=1e-12)
  np.testing.assert_allclose(terms["log_q1"] + terms["log_q2"], log_q, rtol=1e-12)


@pytest.mark.parametrize("layers,estimator", [
    (1, "reinforce_ma"), (2, "reinforce_ma"), (2, "nvil"), (2, "loo"), (1, "rebar"),
    (2, "rebar"), (2, "disarm"), (1, "vimco")])
def test_estimator_mean_is_the_exact_gradient(x64, layers, estimator):
  params = _params(layers)
  exact_fn = _exact_neg_bound_k2 if estimator == "vimco" else (
      lambda p: _exact_neg_elbo(p, layers))
  exact = jax.grad(exact_fn)(params)
  loss = sbn.make_loss(layers, estimator, num_samples=2, temperature=0.5)
  n = 20_000
  ma = {n: v for n, v in MA.items() if n == "h1" or layers == 2}
  grads = jax.jit(jax.vmap(lambda k: jax.grad(lambda p: loss(p, X, k, ma)[0])(params)))(
      jax.random.split(jax.random.PRNGKey(0), n))
  checked = 0
  for name in MODEL_KEYS:
    if name not in params:
      continue
    for g, e in zip(jax.tree.leaves(grads[name]), jax.tree.leaves(exact[name])):
      mean, se = np.mean(g, 0), np.std(g, 0) / np.sqrt(n)
      # 5 standard errors per coordinate (fixed key); the floor covers zero-variance ones.
      np.testing.assert_array_less(np.abs(mean - e), 5 * se + 1e-6, err_msg=name)
      checked += e.size
  assert checked == (31 if layers == 2 else 19)
  # The baseline network enters only NVIL's loss; it does not change the ELBO.
  if estimator != "nvil":
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads["base1"]))


def test_gumbel_st_gradients_are_finite_and_reach_both_encoders():
  params = _params(2)
  loss = sbn.make_loss(2, "gumbel_st")
  g, (cost, returns) = jax.grad(lambda p: loss(p, X, jax.random.PRNGKey(1), MA),
                                has_aux=True)(params)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g))
  assert np.linalg.norm(g["enc1"]["w"]) > 0 and np.linalg.norm(g["enc2"]["w"]) > 0
  assert 0 < float(cost) < 100 and set(returns) == {"h1", "h2"}


def test_trainer_lowers_the_neg_elbo_and_is_deterministic():
  # Two patterns, 110 and 001, with 5% flipped pixels: the latent can explain about one bit, which
  # independent pixels (the decoder bias's start) cannot (-ELBO 2.06 nats per example at the start).
  rng = np.random.default_rng(0)
  data = np.where(rng.random(200)[:, None] < 0.5, [1.0, 1.0, 0.0], [0.0, 0.0, 1.0])
  data = jnp.asarray(np.abs(data - (rng.random(data.shape) < 0.05)), jnp.float32)
  trainer = sbn.make_trainer(1, "disarm", data[:10], hidden=HIDDEN, learning_rate=0.05,
                             batch_size=20, var_samples=4, steps_per_chunk=200)
  state0 = trainer.init(jax.random.PRNGKey(0), data.mean(0))
  chunk = jax.jit(trainer.chunk)
  state, metrics = chunk(state0, data)
  _, again = chunk(state0, data)
  np.testing.assert_array_equal(metrics["train_neg_elbo"], again["train_neg_elbo"])
  assert metrics["neg_elbo_sample"].shape == (200,)
  key = jax.random.PRNGKey(5)
  before = float(trainer.neg_elbo(state0["params"], data, key))
  after = float(trainer.neg_elbo(state["params"], data, key))
  assert after < before - 0.5, (before, after)  # Measured: 2.06 -> 1.23.
  assert float(metrics["encoder_grad_variance"][0]) > 0


def test_bad_input_names_the_argument():
  with pytest.raises(ValueError, match="unknown estimator 'reinforce'"):
    sbn.make_loss(1, "reinforce")
  with pytest.raises(ValueError, match="layers must be 1 or 2"):
    sbn.make_loss(3, "disarm")
  with pytest.raises(ValueError, match="layers must be 1 or 2"):
    sbn.init_params(jax.random.PRNGKey(0), 0, 2, 3, jnp.zeros(3))
