"""The influence codes of `graph_structure` have names: `sg.Influence` (issue 22)."""
import distrax
import jax
import jax.numpy as jnp
import pytest

import stochastic_graphs as sg


def model(theta, key):
  k_scan, k_z = jax.random.split(key)

  def step(prev, k):
    a = sg.sample("a", distrax.Bernoulli(logits=theta, dtype=jnp.float32), k)
    sg.cost("now", a)           # same step: t >= s
    sg.cost("next", prev)       # the previous step's a only: t > s
    return a, a

  _, a_all = sg.scan(step, jnp.zeros(()), jax.random.split(k_scan, 3))
  z = sg.sample("z", distrax.Bernoulli(logits=theta, dtype=jnp.float32), k_z)
  sg.cost("total", jnp.sum(a_all))  # outside the scan: all of a
  sg.cost("alone", z)


def test_graph_structure_reports_named_relations():
  s = sg.graph_structure(model, jnp.zeros(()), jax.random.PRNGKey(0))
  assert s.relation("a", "now") is sg.Influence.SAME_OR_LATER
  assert s.relation("a", "next") is sg.Influence.LATER
  assert s.relation("a", "total") is sg.Influence.FULL
  assert s.relation("a", "alone") is sg.Influence.NONE
  assert s.relation("z", "alone") is sg.Influence.FULL
  assert s.influence[("a", "next")] is sg.Influence.LATER  # The dict holds the names too.
  # Still the integers 0-3 (ordered), for code that compared them.
  assert [int(m) for m in sg.Influence] == [0, 1, 2, 3]
  assert s.influence[("a", "now")] == 2 and max(sg.Influence.LATER, sg.Influence.FULL) == 3


def test_relation_names_an_unknown_node_or_target():
  s = sg.graph_structure(model, jnp.zeros(()), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="node 'now' is not a node of the graph"):
    s.relation("now", "a")
  with pytest.raises(ValueError, match="target 'zz' is not a node or cost of the graph"):
    s.relation("a", "zz")
