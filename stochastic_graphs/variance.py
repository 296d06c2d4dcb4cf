"""Per-sample gradient estimates and their moments, to measure estimator variance."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class GradientStatistics(NamedTuple):
  """Moments of a gradient estimator over K independent samples.

  Attributes:
    mean: pytree, mean gradient.
    stderr: pytree, standard error of the mean per coordinate (std / sqrt(K)).
    variance: scalar, sum over coordinates of the per-coordinate variance (trace of the
      covariance), the usual single-number summary of estimator variance.
  """
  mean: Any
  stderr: Any
  variance: jax.Array


def per_sample_gradients(loss_fn: Callable[..., Any], params: Any, keys: jax.Array, *args,
                         has_aux: bool = False) -> Any:
  """Gradients of `loss_fn(params, *args, key)` for each key: pytree with a leading K axis.

  Args:
    loss_fn: surrogate objective; returns a scalar, or `(scalar, aux)` with `has_aux`.
    params: the parameters to differentiate.
    keys: (K,) PRNG keys, one independent estimate each.
    *args: further arguments, shared by all samples.
  """
  grad = jax.grad(loss_fn, has_aux=has_aux)

  def one(key):
    g = grad(params, *args, key)
    return g[0] if has_aux else g
  return jax.vmap(one)(keys)


def gradient_statistics(per_sample: Any) -> GradientStatistics:
  """Mean, standard errors and total variance from `per_sample_gradients`' output."""
  leaves = jax.tree.leaves(per_sample)
  if not leaves:
    raise ValueError("per_sample has no arrays.")
  k = leaves[0].shape[0]
  if k < 2 or any(x.shape[:1] != (k,) for x in leaves):
    raise ValueError("every leaf of per_sample needs the same leading sample axis K >= 2; got "
                     f"shapes {[x.shape for x in leaves]}.")
  mean = jax.tree.map(lambda x: jnp.mean(x, 0), per_sample)
  var = jax.tree.map(lambda x: jnp.var(x, 0, ddof=1), per_sample)
  stderr = jax.tree.map(lambda v: jnp.sqrt(v / k), var)
  total = sum(jnp.sum(v) for v in jax.tree.leaves(var))
  return GradientStatistics(mean, stderr, total)
