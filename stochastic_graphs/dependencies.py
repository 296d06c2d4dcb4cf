"""Dataflow analysis of a jaxpr: which inputs each output depends on.

This is how the library learns the structure of a stochastic computation graph without
annotations: the graph is re-traced with every stochastic node's value as an explicit input, and a
forward pass over the jaxpr propagates, for every variable, the set of inputs it was computed from.
An output that does not depend on node `x` receives no score-function term from `x` (the causality
argument of Sec. 3 of Weber et al. 2019 / Eq. (10) of Schulman et al. 2015).

The analysis is structural (data dependence, not numerical sensitivity): a cost computed from `x`
through `stop_gradient`, a comparison or an integer cast still depends on `x`. It is exact for
first-order primitives and `jit`/`custom_jvp`/`custom_vjp`/`remat` calls, a fixpoint for `scan`
and `while_loop` carries, a union over branches for `cond`, and conservative (every output depends
on every input) for any other higher-order primitive. Over-approximation only costs variance,
never bias.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.extend import core as jcore

Deps = frozenset[int]
_EMPTY: Deps = frozenset()

# Parameter names under which call-like primitives keep their body (one-to-one inputs/outputs).
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _as_jaxpr(j: Any) -> jcore.Jaxpr:
  return j.jaxpr if hasattr(j, "jaxpr") and not isinstance(j, jcore.Jaxpr) else j


def jaxpr_dependencies(jaxpr: jcore.Jaxpr, in_deps: Sequence[Deps]) -> list[Deps]:
  """Propagates dependency sets through `jaxpr`.

  Args:
    jaxpr: an open `Jaxpr` (a `ClosedJaxpr`'s `.jaxpr`); its constvars depend on nothing.
    in_deps: one set of labels per invar.

  Returns:
    One set of labels per outvar: the labels of the inputs it was computed from.
  """
  jaxpr = _as_jaxpr(jaxpr)
  if len(in_deps) != len(jaxpr.invars):
    raise ValueError(f"in_deps has {len(in_deps)} entries; the jaxpr has {len(jaxpr.invars)} "
                     "inputs.")
  env: dict[Any, Deps] = {}

  def read(v) -> Deps:
    if isinstance(v, jcore.Literal):
      return _EMPTY
    return env.get(v, _EMPTY)

  for v, d in zip(jaxpr.invars, in_deps):
    env[v] = frozenset(d)
  for eqn in jaxpr.eqns:
    ins = [read(v) for v in eqn.invars]
    outs = _eqn_dependencies(eqn, ins)
    for v, d in zip(eqn.outvars, outs):
      env[v] = d
  return [read(v) for v in jaxpr.outvars]


def _union(sets: Sequence[Deps]) -> Deps:
  out: set[int] = set()
  for s in sets:
    out |= s
  return frozenset(out)


def _eqn_dependencies(eqn, ins: list[Deps]) -> list[Deps]:
  name = eqn.primitive.name
  params = eqn.params
  n_out = len(eqn.outvars)
  if name == "scan":
    return _scan_dependencies(params, ins)
  if name == "while":
    return _while_dependencies(params, ins)
  if name == "cond":
    pred, ops = ins[0], ins[1:]
    branch_outs = [jaxpr_dependencies(_as_jaxpr(b), ops) for b in params["branches"]]
    return [_union([bo[k] for bo in branch_outs]) | pred for k in range(n_out)]
  for key in _CALL_PARAMS:
    sub = params.get(key)
    if sub is not None:
      sub_j = _as_jaxpr(sub)
      if len(sub_j.invars) == len(ins) and len(sub_j.outvars) == n_out:
        return jaxpr_dependencies(sub_j, ins)
  # First-order primitive (or an unknown higher-order one): every output depends on every input.
  u = _union(ins)
  return [u] * n_out


def _scan_dependencies(params, ins: list[Deps]) -> list[Deps]:
  body = _as_jaxpr(params["jaxpr"])
  n_c, n_carry = params["num_consts"], params["num_carry"]
  consts, carry, xs = ins[:n_c], list(ins[n_c:n_c + n_carry]), ins[n_c + n_carry:]
  while True:  # Fixpoint: a carry's dependencies grow monotonically over iterations.
    outs = jaxpr_dependencies(body, list(consts) + carry + list(xs))
    new_carry = [c | o for c, o in zip(carry, outs[:n_carry])]
    if new_carry == carry:
      break
    carry = new_carry
  return carry + outs[n_carry:]


def _while_dependencies(params, ins: list[Deps]) -> list[Deps]:
  body = _as_jaxpr(params["body_jaxpr"])
  cond = _as_jaxpr(params["cond_jaxpr"])
  n_cc, n_bc = params["cond_nconsts"], params["body_nconsts"]
  cconsts, bconsts, carry = ins[:n_cc], ins[n_cc:n_cc + n_bc], list(ins[n_cc + n_bc:])
  while True:
    (pred,) = jaxpr_dependencies(cond, list(cconsts) + carry)
    outs = jaxpr_dependencies(body, list(bconsts) + carry)
    # The number of iterations depends on the predicate, so every carry does too.
    new_carry = [c | o | pred for c, o in zip(carry, outs)]
    if new_carry == carry:
      return carry
    carry = new_carry


def function_dependencies(fn: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
  """Which leaves of `args` each leaf of `fn(*args)` depends on.

  Args:
    fn: a JAX-traceable function.
    *args: pytrees of arrays or `jax.ShapeDtypeStruct`s (only shapes and dtypes are used).

  Returns:
    `(out_deps, in_paths)`: `out_deps` has the structure of `fn`'s output with a frozenset of
    input-leaf indices at each leaf; `in_paths[i]` is the key path of input leaf `i`.
  """
  closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
  leaves_with_path, _ = jax.tree_util.tree_flatten_with_path(args)
  in_deps = [frozenset([i]) for i in range(len(leaves_with_path))]
  out = jaxpr_dependencies(closed.jaxpr, in_deps)
  out_tree = jax.tree_util.tree_structure(out_shape)
  return jax.tree_util.tree_unflatten(out_tree, out), [p for p, _ in leaves_with_path]
