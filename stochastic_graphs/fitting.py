"""Losses that fit value functions and critics: Monte Carlo and temporal-difference targets.

Targets are stopped, so the losses only move the value/critic parameters. Use them beside the
surrogate (Weber et al. 2019, Sec. 4: V and Q are learned by regression on sampled returns or on
bootstrapped targets).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import rlax

from stochastic_graphs import horizons


def mc_value_loss(values: jax.Array, returns: jax.Array) -> jax.Array:
  """0.5 * mean (sg[R] - V)^2: Monte Carlo regression on sampled costs-to-go."""
  values, returns = jnp.asarray(values), jnp.asarray(returns)
  if values.shape != returns.shape:
    raise ValueError(f"values and returns must have the same shape; got {values.shape} and "
                     f"{returns.shape}.")
  return 0.5 * jnp.mean((jax.lax.stop_gradient(returns) - values) ** 2)


def td_value_loss(v_tm1: jax.Array, c_t: jax.Array, discount_t: jax.Array, v_t: jax.Array
                  ) -> jax.Array:
  """TD(0): 0.5 * mean (c_t + discount_t sg[v_t] - v_tm1)^2 (rlax.td_learning)."""
  v_tm1, c_t, discount_t, v_t = map(jnp.asarray, (v_tm1, c_t, discount_t, v_t))
  if not v_tm1.shape == c_t.shape == discount_t.shape == v_t.shape:
    raise ValueError("v_tm1, c_t, discount_t, v_t must have one shape; got "
                     f"{v_tm1.shape}, {c_t.shape}, {discount_t.shape}, {v_t.shape}.")
  td = jax.vmap(rlax.td_learning)(v_tm1, c_t, discount_t, v_t) if v_tm1.ndim else \
      rlax.td_learning(v_tm1, c_t, discount_t, v_t)
  return 0.5 * jnp.mean(td ** 2)


def td_lambda_value_loss(v_tm1: jax.Array, c_t: jax.Array, discount_t: jax.Array,
                         v_t: jax.Array, lambda_: float) -> jax.Array:
  """TD(lambda) for a sequence: 0.5 * mean (sg[G^lambda_t] - v_tm1[t])^2 with v_t bootstrapping.

  Args:
    v_tm1: (T,) values being fitted (state before step t); c_t, discount_t: (T,); v_t: (T,)
      values of the state after step t (bootstrap, stopped).
  """
  target = horizons.lambda_costs_to_go(c_t, discount_t, jax.lax.stop_gradient(v_t), lambda_)
  return mc_value_loss(v_tm1, target)
