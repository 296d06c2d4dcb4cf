"""`sg.value_and_grad`: ((loss, info), grads) of the surrogate without a hand-written lambda."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg

KEY = jax.random.PRNGKey(3)


def model(theta, w, key):
  k1, k2 = jax.random.split(key)
  a = sg.sample("a", distrax.Bernoulli(logits=theta[0], dtype=jnp.float32), k1)
  sg.baseline("a", w[0])
  x = sg.sample("x", distrax.Normal(theta[1] + a, 1.0), k2)
  sg.cost("c", (x - 0.5) ** 2 + 2.0 * a)


def reference(th, w, key, loss_fn):
  s = sg.make_surrogate(model)
  return jax.grad(lambda t, ww: loss_fn(*s(t, ww, key)), argnums=(0, 1))(th, w)


@pytest.mark.parametrize("argnums", [0, (0, 1)])
def test_equals_grad_of_the_surrogate_lambda(argnums):
  th, w = jnp.array([0.2, -0.4]), jnp.array([0.7])
  (loss, info), grads = sg.value_and_grad(model, argnums)(th, w, KEY)
  s, ref_info = sg.make_surrogate(model)(th, w, KEY)
  ref = jax.grad(lambda t, ww: sg.make_surrogate(model)(t, ww, KEY)[0], argnums=argnums)(th, w)
  np.testing.assert_allclose(loss, s, rtol=1e-6)
  np.testing.assert_allclose(loss, info.cost, rtol=1e-6)  # The forward value is the cost.
  assert isinstance(info, sg.SurrogateInfo)
  np.testing.assert_allclose(info.baseline_loss, ref_info.baseline_loss, rtol=1e-6)
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
    np.testing.assert_allclose(g, r, rtol=1e-6)


def test_with_fitting_losses_also_fits_the_baseline():
  th, w = jnp.array([0.2, -0.4]), jnp.array([0.7])
  (loss, info), (g_th, g_w) = sg.value_and_grad(model, (0, 1), with_fitting_losses=True)(
      th, w, KEY)
  r_th, r_w = reference(th, w, KEY, lambda s, i: s + i.baseline_loss + i.critic_loss)
  np.testing.assert_allclose(loss, info.cost + info.baseline_loss, rtol=1e-6)
  np.testing.assert_allclose(g_th, r_th, rtol=1e-6)
  # d/dw mean (R_a - w)^2 = -2 (R_a - w), with R_a the stopped downstream cost of node a.
  np.testing.assert_allclose(g_w, [-2.0 * (info.returns["a"] - w[0])], rtol=1e-5)
  assert float(jnp.abs(g_w[0])) > 0


def test_passes_values_and_surrogate_options_through():
  th, w = jnp.array([0.2, -0.4]), jnp.array([0.7])
  fn = sg.value_and_grad(model, causal=False, check_finite=False)
  (loss, info), g = fn(th, w, KEY, values={"a": jnp.asarray(1.0)})
  assert float(info.values["a"]) == 1.0
  ref = jax.grad(lambda t: sg.make_surrogate(model, causal=False)(
      t, w, KEY, values={"a": jnp.asarray(1.0)})[0])(th)
  np.testing.assert_allclose(g, ref, rtol=1e-6)
  with pytest.raises(ValueError, match="check_finite must be one of"):
    sg.value_and_grad(model, check_finite="x")
