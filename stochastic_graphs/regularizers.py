"""Regularisers: terms of the objective that are differentiated directly and credit no node.

A cost `c` emitted with `cost(name, value)` is part of the objective E[sum c]: every score-function
node upstream of it has `c` in its learning signal (Weber et al. 2019, Eq. (5)), so an entropy
term emitted as a cost at step t would be credited to the actions before t (the soft returns of
entropy-regularised RL). The entropy bonus of A3C/A2C (Mnih et al. 2016, Sec. 4, "adding the
entropy of the policy pi to the objective function") is not that: only its direct gradient
`beta grad H(pi(.|s_t))` is taken, and the returns stay those of the reward.

`regularizer(name, value)` emits the cost `value - stop_gradient(value)`: its forward value is 0,
so it adds nothing to any node's learning signal (nor to the surrogate's value), while its
gradient is `grad value`. This holds for the first-order surrogate and for DiCE (the magic box of
a zero-valued cost is multiplied by 0 in every forward value). Inside `stochastic_graphs.scan` it
is a time-indexed cost like any other.
"""
from __future__ import annotations

from typing import Any

import jax

from stochastic_graphs import nodes


def regularizer(name: str, value: Any) -> jax.Array:
  """Adds `value` (any shape; its sum) to the objective's gradient only. Returns `value`.

  Outside `make_surrogate` it is transparent (the value is returned and nothing is recorded).
  """
  nodes.cost(name, value - jax.lax.stop_gradient(value))
  return value


def entropy_regularizer(name: str, dist: Any, weight: Any) -> jax.Array:
  """The entropy bonus: regulariser `-weight * H(dist)` (a cost, so the bonus lowers it).

  Args:
    name: name of the cost node that carries the term.
    dist: a distrax distribution with `entropy()` (e.g. the policy's `Categorical`).
    weight: beta, the bonus coefficient (Mnih et al. 2016, Sec. 4).

  Returns:
    The entropy `H(dist)` (with its gradient), for logging.
  """
  entropy = dist.entropy()
  regularizer(name, -weight * entropy)
  return entropy
