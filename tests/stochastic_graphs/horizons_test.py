"""Per-step lambda in the n-step and lambda costs-to-go: a zero cuts the sum and bootstraps."""
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg


def test_n_step_and_lambda_cut_at_a_truncation_hand_worked(x64):
  # Four steps, gamma 0.5, a time-limit cut after step 1 (lambda_t[1] = 0, bootstrap v_t[1]).
  c = jnp.array([1.0, 2.0, 3.0, 4.0])
  g = jnp.full(4, 0.5)
  v = jnp.array([10.0, 20.0, 30.0, 40.0])
  lam = jnp.array([1.0, 0.0, 1.0, 1.0])
  g3 = 4.0 + 0.5 * 40.0               # 24
  g2 = 3.0 + 0.5 * g3                 # 15
  g1 = 2.0 + 0.5 * 20.0               # 12: cut, bootstraps with v_t[1]
  g0 = 1.0 + 0.5 * g1                 # 7
  np.testing.assert_allclose(sg.lambda_costs_to_go(c, g, v, lam), [g0, g1, g2, g3])
  # n = 4 covers the whole sequence: the same numbers.
  np.testing.assert_allclose(sg.n_step_costs_to_go(c, g, v, 4, lam), [g0, g1, g2, g3])
  # n = 2: G_0 = c_0 + g c_1 + g^2 ... cut at step 1 anyway; G_2 = c_2 + g (c_3 + g v_3).
  np.testing.assert_allclose(sg.n_step_costs_to_go(c, g, v, 2, lam), [g0, g1, g2, g3])
  # Without the cut the default lambda 1 runs through (n = 2: G_0 = 1 + .5 (2 + .5 v_1)).
  np.testing.assert_allclose(sg.n_step_costs_to_go(c, g, v, 2)[0], 1.0 + 0.5 * (2.0 + 0.5 * 20.0))
