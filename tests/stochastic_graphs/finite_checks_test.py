"""NaN/inf costs and log-probabilities are refused by name under transformations (issue 22).

Before the fix the check ran only on concrete values, so `jax.grad` of a surrogate with a NaN
cost returned a NaN gradient with no error. Also: error messages that read plainly.
"""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import stochastic_graphs as sg

TH = jnp.array([0.3, 0.5])  # log(th[1] - 1) is NaN.
KEY = jax.random.PRNGKey(0)
NAN_COST = "cost 'c' is not finite \\(NaN or inf\\); it is downstream of nodes \\['x'\\]"


def nan_cost_model(th, key):
  x = sg.sample("x", distrax.Normal(th[0], 1.0), key, estimator="score")
  sg.cost("c", jnp.log(th[1] - 1.0) + x)


def loss(check_finite="default", model=nan_cost_model):
  kw = {} if check_finite == "default" else {"check_finite": check_finite}
  fn = sg.make_surrogate(model, **kw)
  return lambda th, key: fn(th, key)[0]


def test_default_raises_on_concrete_values():
  with pytest.raises(ValueError, match=NAN_COST):
    loss()(TH, KEY)


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "vmap_grad", "grad_grad"])
def test_default_raises_under_eager_transformations(transform):
  f = loss()
  g = {"grad": jax.grad(f), "value_and_grad": jax.value_and_grad(f),
       "vmap_grad": lambda t, k: jax.vmap(jax.grad(f), (None, 0))(t, jax.random.split(k, 3)),
       "grad_grad": jax.grad(lambda t, k: jnp.sum(jax.grad(f)(t, k)))}[transform]
  with pytest.raises(ValueError, match=NAN_COST):
    g(TH, KEY)


def test_non_finite_log_prob_raises_under_grad():
  def model(t, key):
    x = sg.sample("x", distrax.Beta(2.0 + t, 2.0), key, estimator="score")
    sg.cost("c", 0.0 * x)
  fn = sg.make_surrogate(model)
  with pytest.raises(ValueError, match="node 'x': the log-probability of its sample is not"):
    jax.grad(lambda t: fn(t, KEY, values={"x": jnp.asarray(1.5)})[0])(jnp.zeros(()))


def test_default_inside_jit_checks_nothing_as_documented():
  g = jax.jit(jax.grad(loss()))(TH, KEY)
  assert np.isnan(np.asarray(g[0]))  # The score term carries the NaN signal.


def test_always_raises_inside_jit_through_a_host_callback():
  g = jax.jit(jax.grad(loss("always")))
  with pytest.raises(Exception, match="cost 'c' is not finite") as e:
    jax.block_until_ready(g(TH, KEY))
  assert "JaxRuntimeError" in type(e.value).__name__


def test_checkify_mode_reports_under_jit_and_grad():
  err, _ = jax.jit(checkify.checkify(jax.grad(loss("checkify"))))(TH, KEY)
  assert "cost 'c' is not finite" in err.get()
  with pytest.raises(Exception, match="cost 'c' is not finite"):
    err.throw()


def finite_model(th, key):
  x = sg.sample("x", distrax.Normal(th[0], 1.0), key, estimator="score")
  sg.cost("c", (x - th[1]) ** 2)


@pytest.mark.parametrize("mode", [True, "always", "checkify", False])
def test_checks_leave_finite_gradients_unchanged(mode):
  ref = jax.grad(loss(False, finite_model))(TH, KEY)
  f = jax.jit(jax.grad(loss(mode, finite_model)))
  if mode == "checkify":
    err, g = jax.jit(checkify.checkify(f))(TH, KEY)
    assert err.get() is None
  else:
    g = f(TH, KEY)
  np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-6)


def test_nan_cost_touching_no_node_says_so():
  def model(th, key):
    sg.sample("x", distrax.Normal(th[0], 1.0), key)
    sg.cost("c", jnp.log(th[1] - 1.0))
  with pytest.raises(ValueError, match="cost 'c' is not finite .*depends on no stochastic node"):
    sg.make_surrogate(model)(TH, KEY)


def test_unknown_mode_is_refused_by_name():
  with pytest.raises(ValueError, match="check_finite must be one of"):
    sg.make_surrogate(finite_model, check_finite="sometimes")


def test_baseline_shape_message_reads_plainly():
  def model(t, key):
    a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), key)
    sg.cost("c", a)
  fn = sg.make_surrogate(model)
  # Before: "expected () or ()".
  with pytest.raises(ValueError, match="baseline for node 'a' has shape \\(3,\\); expected a "
                     "scalar, shape \\(\\)\\.$"):
    fn(jnp.zeros(()), KEY, baselines={"a": jnp.zeros(3)})

  def chain(t, key):
    def step(carry, k):
      a = sg.sample("a", distrax.Bernoulli(logits=t, dtype=jnp.float32), k)
      sg.cost("c", a)
      return carry, None
    sg.scan(step, 0.0, jax.random.split(key, 4))
  with pytest.raises(ValueError, match="expected a scalar or one value per step of its scan, "
                     "shape \\(4,\\)"):
    sg.make_surrogate(chain)(jnp.zeros(()), KEY, baselines={"a": jnp.zeros(3)})
