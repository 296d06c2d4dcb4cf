"""Multi-sample estimators: LOO-REINFORCE for averaged objectives and VIMCO for the IWAE bound.

Both draw K independent samples of the whole graph and use the other K - 1 samples as the
baseline of each one, which stays unbiased because samples are independent.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from stochastic_graphs import baselines as baselines_lib
from stochastic_graphs import nodes as nodes_lib


def _check_pair(a: jax.Array, b: jax.Array, names: tuple[str, str]) -> None:
  if a.ndim != 1 or a.shape != b.shape:
    raise ValueError(f"{names[0]} and {names[1]} must both have shape (K,); got {a.shape} and "
                     f"{b.shape}.")
  if a.shape[0] < 2:
    raise ValueError(f"{names[0]} needs K >= 2 samples; got {a.shape[0]}.")


def loo_surrogate(log_probs: jax.Array, costs: jax.Array) -> jax.Array:
  """LOO-REINFORCE surrogate of the averaged cost (1/K) sum_k f_k (Kool et al. 2019, Eq. (9)).

  Args:
    log_probs: (K,) log-probabilities of the score-function nodes of each sample.
    costs: (K,) costs, carrying any pathwise gradient.

  Returns:
    Scalar with forward value mean(costs) and gradient
    (1/K) sum_k [grad f_k + (f_k - mean_{j != k} f_j) grad log p_k].
  """
  log_probs, costs = jnp.asarray(log_probs), jnp.asarray(costs)
  _check_pair(log_probs, costs, ("log_probs", "costs"))
  signal = jax.lax.stop_gradient(costs - baselines_lib.leave_one_out_baseline(costs))
  return jnp.mean(costs) + jnp.mean((log_probs - jax.lax.stop_gradient(log_probs)) * signal)


def vimco_surrogate(log_q: jax.Array, log_w: jax.Array) -> jax.Array:
  """VIMCO surrogate of the cost -L, L = log (1/K) sum_k w_k (Mnih & Rezende 2016, Eq. (10)).

  The learning signal of sample k is L - L_{-k}, where L_{-k} replaces log w_k by the mean of
  the other log-weights (the geometric mean of Eq. (10)); the remaining term
  sum_k w~_k grad log w_k comes from differentiating L itself.

  Args:
    log_q: (K,) log-probabilities of the score-function (proposal) nodes of each sample.
    log_w: (K,) log importance weights log p(x, z_k) - log q(z_k).

  Returns:
    Scalar with forward value -L.
  """
  log_q, log_w = jnp.asarray(log_q), jnp.asarray(log_w)
  _check_pair(log_q, log_w, ("log_q", "log_w"))
  k = log_w.shape[0]
  bound = jax.nn.logsumexp(log_w) - jnp.log(k)
  lw = jax.lax.stop_gradient(log_w)
  others = (jnp.sum(lw) - lw) / (k - 1)
  swapped = jnp.where(jnp.eye(k, dtype=bool), others[:, None], lw[None, :])
  bound_minus = jax.nn.logsumexp(swapped, axis=1) - jnp.log(k)
  signal = jax.lax.stop_gradient(bound - bound_minus)
  return -(bound + jnp.sum((log_q - jax.lax.stop_gradient(log_q)) * signal))


class MultiSampleInfo(NamedTuple):
  """Per-sample totals of a multi-sample surrogate: costs (K,), score log-probs (K,)."""
  costs: jax.Array
  log_probs: jax.Array


def make_multi_sample_surrogate(model: Callable, num_samples: int, *,
                                objective: str = "mean",
                                estimators: Mapping[str, Any] | None = None,
                                key_argnum: int = -1) -> Callable:
  """K independent runs of `model` combined by LOO ("mean") or VIMCO ("logmeanexp").

  Args:
    model: the graph (see `make_surrogate`); its total cost is f for "mean" and -log w for
      "logmeanexp" (emit cost = log q - log p).
    num_samples: K >= 2.
    objective: "mean" (E[(1/K) sum f_k], LOO-REINFORCE) or "logmeanexp"
      (-E[log (1/K) sum exp(-f_k)], VIMCO).
    estimators: per-node estimator overrides.
    key_argnum: position of the PRNG key among the model's positional arguments.

  Returns:
    `fn(*args, **kwargs) -> (surrogate, MultiSampleInfo)`.
  """
  if num_samples < 2:
    raise ValueError(f"num_samples must be >= 2; got {num_samples}.")
  if objective not in ("mean", "logmeanexp"):
    raise ValueError(f"objective must be 'mean' or 'logmeanexp'; got {objective!r}.")

  def fn(*args, **kwargs):
    args = list(args)
    keys = jax.random.split(args[key_argnum], num_samples)

    def one(key):
      a = list(args)
      a[key_argnum] = key
      h = nodes_lib.Handler(estimators=estimators)
      with h:
        model(*a, **kwargs)
      total = sum((jnp.sum(c.value) for c in h.costs.values()), jnp.zeros(()))
      lp = sum((jnp.sum(n.log_prob) for n in h.nodes.values()
                if n.estimator == nodes_lib.SCORE), jnp.zeros(()))
      return total, lp

    costs, log_probs = jax.vmap(one)(keys)
    if objective == "mean":
      surrogate = loo_surrogate(log_probs, costs)
    else:
      surrogate = vimco_surrogate(log_probs, -costs)
    return surrogate, MultiSampleInfo(costs, log_probs)

  return fn
