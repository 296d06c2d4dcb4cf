"""Critics that read the parameters (or their own weights) directly stay unbiased (issue 22).

The control-variate identity behind "reparam" (LAX, Grathwohl et al. 2018 Eq. (6); Weber et al.
2019 Sec. 5) and the SVG(0) gradient of "pathwise" (Weber et al. Sec. 4.2) differentiate q
through the node's sample only. A critic that also reads theta directly must not add its own
d q / d theta: that path is already in the cost's gradient.
"""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stochastic_graphs as sg

TH = np.array([0.3, 1.1])
# E[(x - th1)^2] with x ~ N(th0, 1) is (th0 - th1)^2 + 1.
EXACT = np.array([2 * (TH[0] - TH[1]), -2 * (TH[0] - TH[1])])


def direct_reading_model(estimator):
  def model(th, key):
    x = sg.sample("x", distrax.Normal(th[0], 1.0), key, estimator=estimator)
    sg.critic("x", lambda xv: (xv - th[1]) ** 2)  # Reads th[1] besides the node's value.
    sg.cost("c", (x - th[1]) ** 2)
  return model


def mean_gradient(fn, n=20000):
  keys = jax.random.split(jax.random.PRNGKey(0), n)
  return sg.gradient_statistics(jax.jit(lambda ks: sg.per_sample_gradients(
      lambda t, k: fn(t, k)[0], jnp.asarray(TH), ks))(keys))


@pytest.mark.parametrize("kind,estimator", [("reparam", "score"), ("pathwise", "pathwise"),
                                            ("taylor", "score")])
def test_critic_reading_the_parameters_is_unbiased(x64, kind, estimator):
  # Before the fix "reparam" and "pathwise" gave 3.20 (twice the exact 1.60) in th[1].
  stats = mean_gradient(sg.make_surrogate(direct_reading_model(estimator), critics={"x": kind}))
  mean, se = np.asarray(stats.mean), np.asarray(stats.stderr)
  assert np.all(np.abs(mean - EXACT) < 4 * se), (mean, se, EXACT)
  assert np.all(se < 0.05)  # 4 se is then far below the 1.60 bias this test guards against.


def test_critic_weights_get_no_surrogate_gradient_and_a_fitting_loss(x64):
  """The surrogate moves theta only; `info.critic_loss` = (R - q(x))^2 moves the critic's w."""
  def model(params, key, kind):
    th, w = params
    x = sg.sample("x", distrax.Normal(th[0], 1.0), key,
                  estimator="pathwise" if kind == "pathwise" else "score")
    sg.critic("x", lambda xv: w[0] * (xv - th[1]) ** 2 + w[1])
    sg.cost("c", (x - th[1]) ** 2)

  params = (jnp.asarray(TH), jnp.array([0.7, 0.2]))
  key = jax.random.PRNGKey(3)
  for kind in ("reparam", "pathwise", "taylor"):
    fn = sg.make_surrogate(lambda p, k, kind=kind: model(p, k, kind), critics={"x": kind})
    g_th, g_w = jax.grad(lambda p: fn(p, key)[0])(params)
    np.testing.assert_array_equal(g_w, 0.0)
    _, info = fn(params, key)
    x, r = float(info.values["x"]), float(info.returns["x"])
    np.testing.assert_allclose(r, (x - TH[1]) ** 2, rtol=1e-12)
    q = 0.7 * (x - TH[1]) ** 2 + 0.2
    np.testing.assert_allclose(info.critic_loss, (r - q) ** 2, rtol=1e-12)
    gl_th, gl_w = jax.grad(lambda p: fn(p, key)[1].critic_loss)(params)
    np.testing.assert_allclose(gl_w, [-2 * (r - q) * (x - TH[1]) ** 2, -2 * (r - q)],
                               rtol=1e-10)
    assert np.all(np.isfinite(g_th))


def test_critic_reading_an_upstream_pathwise_node_is_unbiased(x64):
  """z ~ N(th0, 1) pathwise, x ~ N(z, 1) score with a LAX critic q(x, z): the z-path of q must not
  be added to the cost's own z-path. E[(x - z - th1)^2 + z^2] = 1 + th1^2 + th0^2 + 1."""
  def model(th, key):
    k1, k2 = jax.random.split(key)
    z = sg.sample("z", distrax.Normal(th[0], 1.0), k1, estimator="pathwise")
    x = sg.sample("x", distrax.Normal(z, 1.0), k2, estimator="score")
    sg.critic("x", lambda xv: (xv - z - th[1]) ** 2 + 0.5 * z)
    sg.cost("c", (x - z - th[1]) ** 2 + z ** 2)

  stats = mean_gradient(sg.make_surrogate(model, critics={"x": "reparam"}))
  mean, se = np.asarray(stats.mean), np.asarray(stats.stderr)
  exact = np.array([2 * TH[0], 2 * TH[1]])
  assert np.all(np.abs(mean - exact) < 4 * se), (mean, se, exact)
