"""Horizons and bootstrapping for sequential graphs: n-step and lambda costs-to-go, GAE.

Partial evaluation of the graph up to a horizon with a value V standing in for the costs beyond
it (Weber et al. 2019, Sec. 4.3): for chains, the n-step and lambda-weighted returns of RL. These
are rlax's return functions (which are linear, so they serve costs as well as rewards) under the
names used in this package, with the same time indexing: `c_t[t]` and `discount_t[t]` follow the
node at step t, and `v_t[t]` is the value of the state after step t.

For general graphs, `stochastic_graphs.bootstrap(node, value, beyond)` cuts the costs downstream
of a horizon set and adds V(H) instead.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import rlax


def _check_time(name: str, x: jax.Array, t: int) -> None:
  if x.ndim != 1 or x.shape[0] != t:
    raise ValueError(f"{name} must have shape ({t},); got {x.shape}.")


def discounted_costs_to_go(c_t: jax.Array, discount_t: jax.Array) -> jax.Array:
  """G_t = c_t + discount_t G_{t+1}, G_T = 0 (Monte Carlo, no bootstrap)."""
  c_t, discount_t = jnp.asarray(c_t), jnp.asarray(discount_t)
  _check_time("discount_t", discount_t, c_t.shape[0])
  return rlax.discounted_returns(c_t, discount_t, jnp.zeros_like(c_t))


def n_step_costs_to_go(c_t: jax.Array, discount_t: jax.Array, v_t: jax.Array, n: int,
                       lambda_t: float | jax.Array = 1.0) -> jax.Array:
  """G_t = c_t + g_t c_{t+1} + ... + (g_t...g_{t+n-1}) v_{t+n-1}: horizon n steps ahead.

  Truncated at the end of the sequence, where the last value bootstraps. `lambda_t` (scalar or
  (T,)) mixes in the value at each step as in rlax: `lambda_t[t] = 0` cuts the sum after step t
  and bootstraps with `v_t[t]` there (a time-limit truncation inside the sequence).
  """
  if n < 1:
    raise ValueError(f"n must be >= 1; got {n}.")
  c_t, discount_t, v_t = jnp.asarray(c_t), jnp.asarray(discount_t), jnp.asarray(v_t)
  _check_time("discount_t", discount_t, c_t.shape[0])
  _check_time("v_t", v_t, c_t.shape[0])
  return rlax.n_step_bootstrapped_returns(c_t, discount_t, v_t, n, lambda_t)


def lambda_costs_to_go(c_t: jax.Array, discount_t: jax.Array, v_t: jax.Array, lambda_: float
                       ) -> jax.Array:
  """G_t = c_t + g_t [(1 - lambda) v_t + lambda G_{t+1}] (Sutton & Barto, Eq. (12.18)).

  `lambda_` may be a (T,) array (rlax): a zero at step t bootstraps with `v_t[t]` and cuts the
  recursion there.
  """
  c_t, discount_t, v_t = jnp.asarray(c_t), jnp.asarray(discount_t), jnp.asarray(v_t)
  _check_time("discount_t", discount_t, c_t.shape[0])
  _check_time("v_t", v_t, c_t.shape[0])
  return rlax.lambda_returns(c_t, discount_t, v_t, lambda_)


def generalized_advantages(c_t: jax.Array, discount_t: jax.Array, values: jax.Array,
                           lambda_: float) -> jax.Array:
  """GAE (Schulman et al. 2016, Eq. (16)) of costs: A_t = sum_k (g lambda)^k delta_{t+k}.

  Args:
    c_t: (T,) costs; discount_t: (T,) discounts; values: (T + 1,) values V(s_0..s_T).
  """
  c_t, discount_t, values = jnp.asarray(c_t), jnp.asarray(discount_t), jnp.asarray(values)
  _check_time("discount_t", discount_t, c_t.shape[0])
  _check_time("values", values, c_t.shape[0] + 1)
  return rlax.truncated_generalized_advantage_estimation(c_t, discount_t, lambda_, values)
