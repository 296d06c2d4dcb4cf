"""The DiCE "magic box" operator (Foerster et al. 2018, Eq. (3)).

`magic_box(x) = exp(x - stop_gradient(x))` evaluates to 1 while its derivative is
`magic_box(x) * dx`, so `magic_box(sum of log-probabilities) * cost` has the forward value of the
cost and derivatives of every order equal to unbiased score-function estimates of the derivatives
of the expected cost. `make_surrogate(dice=True)` builds the whole objective.
"""
import jax
import jax.numpy as jnp


def magic_box(x: jax.Array) -> jax.Array:
  """Foerster et al. 2018, Eq. (3): value 1, gradient `magic_box(x) * grad x`."""
  x = jnp.asarray(x)
  return jnp.exp(x - jax.lax.stop_gradient(x))
