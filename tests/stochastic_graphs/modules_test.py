"""Baselines, horizons, fitting losses, variance statistics and the jaxpr dependency analysis."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg


def test_moving_average_is_zero_debiased():
  ma = sg.moving_average_baseline(0.5)
  state = ma.init({"z": jnp.zeros(())})
  assert float(ma.value(state)["z"]) == 0.0
  state = ma.update(state, {"z": jnp.array([2.0, 4.0])})  # Batch mean 3.
  assert float(ma.value(state)["z"]) == pytest.approx(3.0)  # Debiased: not 1.5.
  state = ma.update(state, {"z": jnp.array(6.0)})
  # biased = 0.5*1.5 + 0.5*6 = 3.75; debias by 1 - 0.25: 5.0 = (0.5*3 + 1*6)/(1.5).
  assert float(ma.value(state)["z"]) == pytest.approx(5.0)
  with pytest.raises(ValueError, match="decay must be in"):
    sg.moving_average_baseline(1.0)
  with pytest.raises(ValueError, match="does not end with the baseline's shape"):
    ma.update(ma.init({"z": jnp.zeros(3)}), {"z": jnp.zeros(2)})


def test_leave_one_out_baseline():
  np.testing.assert_allclose(sg.leave_one_out_baseline(jnp.array([1.0, 2.0, 6.0])),
                             [4.0, 3.5, 1.5])
  with pytest.raises(ValueError, match="at least 2 samples"):
    sg.leave_one_out_baseline(jnp.ones(1))


def _loop_returns(c, g, v, n):
  t_len = len(c)
  out = np.zeros(t_len)
  for t in range(t_len):
    acc, disc = 0.0, 1.0
    for k in range(n):
      if t + k >= t_len:
        break
      acc += disc * c[t + k]
      disc *= g[t + k]
      last = t + k
    out[t] = acc + disc * v[last]
  return out


def test_horizons_against_loops():
  c = np.array([1.0, -0.5, 2.0, 0.3])
  g = np.array([0.9, 0.8, 0.9, 0.7])
  v = np.array([0.4, 1.0, -0.2, 0.6])
  np.testing.assert_allclose(sg.n_step_costs_to_go(c, g, v, 2), _loop_returns(c, g, v, 2),
                             rtol=1e-5)
  mc = np.array([c[3] + 0, 0, 0, 0], float)
  mc[3] = c[3]
  for t in (2, 1, 0):
    mc[t] = c[t] + g[t] * mc[t + 1]
  np.testing.assert_allclose(sg.discounted_costs_to_go(c, g), mc, rtol=1e-5)
  # lambda = 1 is Monte Carlo bootstrapped by the last value; lambda = 0 is one-step TD.
  np.testing.assert_allclose(sg.lambda_costs_to_go(c, g, v, 0.0), c + g * v, rtol=1e-5)
  np.testing.assert_allclose(sg.lambda_costs_to_go(c, g, v, 1.0), _loop_returns(c, g, v, 10),
                             rtol=1e-5)
  values = np.array([0.1, 0.4, 1.0, -0.2, 0.6])
  adv = sg.generalized_advantages(c, g, values, 1.0)
  np.testing.assert_allclose(adv, _loop_returns(c, g, values[1:], 10) - values[:-1], rtol=1e-5)
  with pytest.raises(ValueError, match="values must have shape \\(4,\\)|values must have shape"):
    sg.generalized_advantages(c, g, values[:-1], 0.9)
  with pytest.raises(ValueError, match="n must be >= 1"):
    sg.n_step_costs_to_go(c, g, v, 0)


def test_fitting_losses():
  v = jnp.array([1.0, 2.0])
  assert float(sg.mc_value_loss(v, jnp.array([2.0, 0.0]))) == pytest.approx(0.5 * (1 + 4) / 2)
  g = jax.grad(lambda x: sg.mc_value_loss(x, jnp.array([2.0, 0.0])))(v)
  np.testing.assert_allclose(g, [-0.5, 1.0])
  # TD(0): target c + g v_t = 1 + 0.5 * 4 = 3 for value 1: loss 0.5 * 4.
  assert float(sg.td_value_loss(jnp.array([1.0]), jnp.array([1.0]), jnp.array([0.5]),
                                jnp.array([4.0]))) == pytest.approx(2.0)
  g = jax.grad(lambda vt: sg.td_value_loss(jnp.array([1.0]), jnp.array([1.0]), jnp.array([0.5]),
                                           vt))(jnp.array([4.0]))
  assert float(g[0]) == 0.0  # The bootstrap target is stopped.
  c, gm = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.5])
  loss = sg.td_lambda_value_loss(jnp.zeros(2), c, gm, jnp.array([2.0, 4.0]), 0.0)
  assert float(loss) == pytest.approx(0.5 * ((1 + 1) ** 2 + (2 + 2) ** 2) / 2)
  with pytest.raises(ValueError, match="same shape"):
    sg.mc_value_loss(jnp.zeros(2), jnp.zeros(3))


def test_gradient_statistics():
  g = {"w": jnp.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])}
  stats = sg.gradient_statistics(g)
  np.testing.assert_allclose(stats.mean["w"], [3.0, 2.0])
  np.testing.assert_allclose(stats.variance, 4.0 + 4.0)
  np.testing.assert_allclose(stats.stderr["w"], [2 / np.sqrt(3)] * 2, rtol=1e-6)
  per = sg.per_sample_gradients(lambda p, k: p * jax.random.normal(k), 2.0,
                                jax.random.split(jax.random.PRNGKey(0), 4))
  assert per.shape == (4,)
  with pytest.raises(ValueError, match="leading sample axis"):
    sg.gradient_statistics({"w": jnp.ones((1, 2))})


def test_function_dependencies_through_control_flow():
  def f(a, b, c):
    def body(carry, x):
      return carry * x, carry + b
    carry, ys = jax.lax.scan(body, 1.0, a)
    w = jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 2), (0, c))
    z = jax.lax.cond(c > 0, lambda: b, lambda: 2 * b)
    return {"carry": carry, "ys": ys, "w": w[1], "z": z, "relu": jax.nn.relu(b),
            "jit": jax.jit(lambda q: q * 2)(a), "none": jnp.ones(())}
  deps, paths = sg.function_dependencies(f, jnp.ones(3), 1.0, 1.0)
  assert deps["carry"] == {0}
  assert deps["ys"] == {0, 1}  # Carry after step 1 reads a; the output reads b.
  assert deps["w"] == {2} and deps["z"] == {1, 2} and deps["relu"] == {1}
  assert deps["jit"] == {0} and deps["none"] == frozenset()
  assert len(paths) == 3
