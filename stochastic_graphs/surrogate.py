"""Surrogate objectives whose gradient is the chosen gradient estimator.

`make_surrogate(model)` returns a function with the model's signature that returns
`(surrogate, info)`. The surrogate's value equals the sampled total cost and its gradient is the
estimator of the gradient of the expected total cost (Schulman et al. 2015, Eq. (10); Weber et
al. 2019, Eq. (5)):

    L = sum_c c  +  sum_{v score} (log p(v) - sg[log p(v)]) * sg[A_v]  +  sum_v critic terms,

with the learning signal `A_v = R_v - b_v` (or `Q_v - b_v` with a critic), where `R_v` sums only
the costs that `v` influences (the causality of Weber et al. Sec. 3: derived from the model's
dataflow), and `b_v` a baseline on non-descendants of `v` (Weber et al. Eq. (6)). With
`dice=True` the surrogate is the DiCE objective of Foerster et al. 2018 (Eq. (4)) with the
baseline term of Mao et al. 2019, so derivatives of every order are unbiased.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from stochastic_graphs import dependencies
from stochastic_graphs import dice as dice_lib
from stochastic_graphs import nodes as nodes_lib


class Influence(enum.IntEnum):
  """How node v influences a node or cost x: the values of `GraphStructure.influence`.

  Ordered (an `IntEnum`, equal to the integers 0-3), so `max` joins two relations.

  Attributes:
    NONE: v does not influence x.
    LATER: only between members of one `scan`: v at step s influences x at steps t > s.
    SAME_OR_LATER: likewise, at steps t >= s (a same-step path exists).
    FULL: all of v influences all of x (outside a common scan).
  """
  NONE = 0
  LATER = 1
  SAME_OR_LATER = 2
  FULL = 3


NONE, LATER, SAME_OR_LATER, FULL = (Influence.NONE, Influence.LATER, Influence.SAME_OR_LATER,
                                    Influence.FULL)


class SurrogateInfo(NamedTuple):
  """Everything besides the surrogate, for logging and for fitting baselines and critics.

  Attributes:
    cost: sampled total cost (the forward value of the surrogate).
    costs: cost name -> sampled value.
    values: node name -> sample (hard sample for relaxed nodes).
    log_probs: node name -> log-probability (shape () or (T,) inside `scan`).
    returns: node name -> sampled downstream cost R_v (stopped), same shape as its log_prob.
    signals: node name -> learning signal A_v multiplying the score (stopped); zero for
      non-score nodes.
    baseline_loss: sum over nodes of mean (R_v - b_v)^2: the Monte Carlo fitting loss of
      learned baselines (gradient only into the baselines).
    critic_loss: Monte Carlo fitting loss of the critics, sum over nodes of mean (R_v - Q_v)^2
      ("replace": the scalar Q; "pathwise", "reparam", "taylor": q(x) at the sampled x), plus
      mean (R_beyond - V(H))^2 for each `bootstrap`. Its gradient reaches only what the critics
      read (their parameters); R_v is stopped.
  """
  cost: jax.Array
  costs: dict
  values: dict
  log_probs: dict
  returns: dict
  signals: dict
  baseline_loss: jax.Array
  critic_loss: jax.Array


@dataclasses.dataclass(frozen=True)
class GraphStructure:
  """The graph as the library sees it.

  Attributes:
    nodes: node names in sampling order.
    costs: cost names.
    estimators: node name -> estimator.
    scan_of: node/cost name -> id of its enclosing `scan` (None at top level).
    influence: (node, node-or-cost) -> `Influence` (NONE/LATER/SAME_OR_LATER/FULL),
      transitive; pairs that are absent are `Influence.NONE`.
  """
  nodes: tuple
  costs: tuple
  estimators: dict
  scan_of: dict
  influence: dict

  def influenced_costs(self, node: str) -> list[str]:
    return [c for c in self.costs if self.influence.get((node, c), NONE)]

  def descendants(self, node: str) -> list[str]:
    return [n for n in self.nodes if n != node and self.influence.get((node, n), NONE)]

  def relation(self, node: str, target: str) -> Influence:
    """How `node` influences the node or cost `target`."""
    known = set(self.nodes) | set(self.costs)
    for what, name in (("node", node), ("target", target)):
      if name not in (self.nodes if what == "node" else known):
        raise ValueError(f"{what} {name!r} is not a {'node' if what == 'node' else 'node or cost'}"
                         f" of the graph; nodes: {list(self.nodes)}, costs: {list(self.costs)}.")
    return Influence(self.influence.get((node, target), NONE))


def _compose(a: Influence, b: Influence) -> Influence:
  if a == NONE or b == NONE:
    return NONE
  if a == FULL or b == FULL:
    return FULL
  return SAME_OR_LATER if (a == SAME_OR_LATER and b == SAME_OR_LATER) else LATER


def _run(model, args, kwargs, **handler_kwargs):
  h = nodes_lib.Handler(**handler_kwargs)
  with h:
    model(*args, **kwargs)
  return h


def _struct(x):
  return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))


_CRITIC_FIELDS = ("critic_value", "critic_term", "critic_fit")


def analyse(model: Callable, *args, estimators=None, critics=None, **kwargs) -> tuple:
  """Traces `model(*args, **kwargs)` abstractly and derives its graph structure.

  Returns:
    `(structure, deps)`: a `GraphStructure` and the raw dependency sets (for the checks).
  """
  shapes = {}

  def structure_pass(*a):
    h = _run(model, a, kwargs, estimators=estimators, critic_kinds=critics)
    shapes["scan_of"] = {n: r.scan for n, r in h.nodes.items()}
    shapes["scan_of"].update({c: r.scan for c, r in h.costs.items()})
    shapes["nodes"] = tuple(h.nodes)
    shapes["costs"] = tuple(h.costs)
    shapes["estimators"] = {n: r.estimator for n, r in h.nodes.items()}
    return {n: r.hard for n, r in h.nodes.items()}

  hard = jax.eval_shape(structure_pass, *args)
  scan_of = shapes["scan_of"]
  step_deps: dict = {}

  def analysis_pass(forced):
    h = _run(model, args, kwargs, forced=forced, estimators=estimators, critic_kinds=critics,
             scan_of=scan_of, analyse_steps=True)
    step_deps.update(h.step_deps)
    out = {"log_prob": {n: r.log_prob for n, r in h.nodes.items()},
           "cost": {n: r.value for n, r in h.costs.items()},
           "baseline": {n: r.baseline for n, r in h.nodes.items() if r.baseline is not None},
           "critic": {n: [v for v in (r.critic_value, r.critic_term, r.critic_fit)
                          if v is not None]
                      for n, r in h.nodes.items() if r.critic_kind is not None}}
    return out

  forced = {n: jax.ShapeDtypeStruct(s.shape, s.dtype) for n, s in hard.items()}
  deps, paths = dependencies.function_dependencies(analysis_pass, forced)
  names = [p[1].key for p in paths]
  to_names = lambda d: frozenset(names[i] for i in d)  # noqa: E731
  whole = {kind: {n: to_names(_union_leaves(v)) for n, v in deps[kind].items()}
           for kind in deps}
  step: dict = {}
  for sid, (sdeps, snames) in step_deps.items():
    conv = lambda d, snames=snames: frozenset(snames[i] for i in d)  # noqa: E731
    step[sid] = {
        "log_prob": {n: conv(v["log_prob"]) for n, v in sdeps["nodes"].items()},
        "cost": {n: conv(v) for n, v in sdeps["costs"].items()},
        "baseline": {n: conv(v["baseline"]) for n, v in sdeps["nodes"].items()
                     if "baseline" in v},
        "critic": {n: conv(frozenset().union(*[v[k] for k in _CRITIC_FIELDS if k in v]))
                   for n, v in sdeps["nodes"].items()
                   if any(k in v for k in _CRITIC_FIELDS)}}

  node_names, cost_names = shapes["nodes"], shapes["costs"]

  def direct(v: str, x: str, kind: str) -> int:
    if v == x or v not in whole[kind].get(x, ()):
      return NONE
    sv, sx = scan_of[v], scan_of[x]
    if sv is not None and sv == sx:
      return SAME_OR_LATER if v in step[sv][kind].get(x, ()) else LATER
    return FULL

  targets = [(n, "log_prob") for n in node_names] + [(c, "cost") for c in cost_names]
  direct_rel = {(v, x): direct(v, x, kind) for v in node_names for x, kind in targets}
  influence = dict(direct_rel)
  changed = True
  while changed:  # Transitive closure over the finite lattice; terminates.
    changed = False
    for v in node_names:
      for j in node_names:
        r = influence[(v, j)]
        if r == NONE:
          continue
        for x, _ in targets:
          new = max(influence[(v, x)], _compose(r, direct_rel[(j, x)]))
          if new != influence[(v, x)]:
            influence[(v, x)] = new
            changed = True
  structure = GraphStructure(node_names, cost_names, shapes["estimators"], scan_of, influence)
  return structure, (whole, step)


def _check_non_descendant(structure: GraphStructure, raw, kind: str, allow_self: bool) -> None:
  """Raises if a baseline (critic) of node v reads v itself or one of v's descendants."""
  whole, step = raw
  what = "baseline" if kind == "baseline" else "critic"
  for v, reads in whole[kind].items():
    sv = structure.scan_of[v]
    bad = []
    for x in reads:
      if x == v:
        if allow_self:
          continue
        if sv is None or v in step[sv][kind].get(v, ()):
          bad.append(x)
        continue
      rel = structure.influence.get((v, x), NONE)
      if rel == FULL:
        bad.append(x)
      elif rel == SAME_OR_LATER and x in step[sv][kind].get(v, ()):
        bad.append(x)
    if bad:
      raise ValueError(
          f"the {what} of node {v!r} depends on {sorted(set(bad))}, which "
          f"{'is' if bad == [v] else 'are'} node {v!r} itself or its descendants; a {what} may "
          "only read non-descendants of its node, otherwise the estimator is biased "
          "(Weber et al. 2019, Eq. (6)).")


def _reduce_cost(c: jax.Array, in_scan: bool) -> jax.Array:
  if in_scan:
    return jnp.sum(jnp.reshape(c, (c.shape[0], -1)), axis=1)
  return jnp.sum(c)


def _signal_of(rel: int, c_sig: jax.Array) -> jax.Array:
  """Part of node v's downstream cost coming from cost c (per step of v when in a scan)."""
  if rel == FULL:
    return jnp.sum(c_sig)
  to_go = jnp.flip(jnp.cumsum(jnp.flip(c_sig)))  # sum_{t >= s} c_t
  return to_go if rel == SAME_OR_LATER else to_go - c_sig


def _ancestor_log_prob(rel: int, logp: jax.Array) -> jax.Array:
  """Part of the DiCE exponent of a cost at step t coming from node v."""
  if rel == FULL:
    return jnp.sum(logp)
  cum = jnp.cumsum(logp)  # sum_{s <= t} log p_s
  return cum if rel == SAME_OR_LATER else cum - logp


def _union_leaves(tree) -> frozenset:
  leaves = jax.tree.leaves(tree, is_leaf=lambda z: isinstance(z, frozenset))
  return frozenset().union(*leaves) if leaves else frozenset()


CHECK_FINITE_MODES = (True, False, "always", "checkify")


def _host_value(x):
  """The numbers behind `x` when they exist while the surrogate runs, else None.

  Concrete arrays, and the tracers of `grad`/`vjp`/`jvp`/`vmap` applied without `jit` (their
  primal or batched value is a concrete array), have numbers; inside `jit`, `lax.scan`
  bodies and other staged code there are none yet.
  """
  while isinstance(x, jax.core.Tracer):
    x = getattr(x, "primal", None) if hasattr(x, "primal") else getattr(x, "val", None)
  if isinstance(x, (jax.Array, np.ndarray, np.generic, float, int, bool)):
    return x
  return None


def _cost_message(name: str, up: list) -> str:
  if up:
    where = (f"it is downstream of nodes {up}. Check the model at those nodes and the "
             "computation from their values to the cost.")
  else:
    where = ("it depends on no stochastic node, so the deterministic part of the model (its "
             "inputs or parameters, or the computation of the cost from them) produced it.")
  return f"cost {name!r} is not finite (NaN or inf); {where}"


def _log_prob_message(name: str) -> str:
  return (f"node {name!r}: the log-probability of its sample is not finite (NaN or -inf); the "
          "sample is outside the distribution's support or its parameters are NaN.")


def _raise_if_not_finite(x, message: str) -> None:
  if not np.all(np.isfinite(np.asarray(x))):
    raise ValueError(message)


def _check_one(x, message: str, mode) -> None:
  """One value: on the host where its numbers exist, else as `mode` says (see make_surrogate)."""
  if mode == "checkify":
    checkify.check(jnp.all(jnp.isfinite(x)), message.replace("{", "{{").replace("}", "}}"))
    return
  host = _host_value(x)
  if host is not None:
    _raise_if_not_finite(host, message)
  elif mode == "always":
    jax.debug.callback(functools.partial(_raise_if_not_finite, message=message), x)


def _check_finite(h, structure, mode) -> None:
  for name, c in h.costs.items():
    up = [n for n in structure.nodes if structure.influence.get((n, name), NONE)]
    _check_one(c.value, _cost_message(name, up), mode)
  for name, n in h.nodes.items():
    _check_one(n.log_prob, _log_prob_message(name), mode)


def make_surrogate(model: Callable, *, estimators: Mapping[str, Any] | None = None,
                   critics: Mapping[str, str] | None = None, causal: bool = True,
                   dice: bool = False,
                   influences: Mapping[str, Iterable[str]] | None = None,
                   check_finite: bool | str = True) -> Callable:
  """Turns a stochastic computation graph into a surrogate-objective function.

  Args:
    model: `model(*args, **kwargs)` calling `sample`/`cost`/`baseline`/`critic`/`scan`.
    estimators: node name -> "score" | "pathwise" | a `Relaxation`, overriding the model's.
    critics: node name -> critic kind ("replace", "pathwise", "reparam", "taylor").
    causal: if False, every score term uses the total cost (plain REINFORCE, Weber et al.
      Eq. (3)); if True (default) only the costs each node influences (Eq. (5)).
    dice: build the DiCE objective (Foerster et al. 2018) with baselines (Mao et al. 2019) so
      that higher derivatives are unbiased. Critics are not allowed with `dice`.
    influences: explicit node -> influenced costs declaration, overriding the dataflow analysis
      for those nodes (for graphs where the user knows better than the data dependence).
    check_finite: what to do about NaN/inf costs and log-probabilities (the error names the
      cost and the nodes upstream of it, or the node). `True` (default): raise `ValueError`
      wherever the values have numbers while the surrogate runs: called on arrays, and under
      `grad`, `value_and_grad`, `vjp`, `jvp` and `vmap` applied without `jit` (the error comes
      from inside the transformation). Inside `jit` (or a `lax.scan` body) nothing is checked.
      `"always"`: also inside `jit`, through a host callback (`jax.debug.callback`) that raises
      when the compiled code runs; jax then raises a `JaxRuntimeError` whose message holds the
      same text. It costs one host round trip per call. `"checkify"`: `checkify.check`s,
      which work under every transformation without host callbacks; wrap the function that
      calls the surrogate in `jax.experimental.checkify.checkify` and call `err.throw()`.
      `False`: no check.

  Returns:
    `fn(*args, values=None, baselines=None, **kwargs) -> (surrogate, SurrogateInfo)`.
    `values` forces node samples (dict name -> array); `baselines` gives scalar baselines by
    node name (e.g. from `moving_average_baseline`), besides those declared in the model.
  """
  if check_finite not in CHECK_FINITE_MODES:
    raise ValueError(f"check_finite must be one of {CHECK_FINITE_MODES}; got {check_finite!r}.")
  critics = dict(critics or {})
  for node, kind in critics.items():
    if kind not in nodes_lib.CRITIC_KINDS:
      raise ValueError(f"critics[{node!r}] must be one of {nodes_lib.CRITIC_KINDS}; got "
                       f"{kind!r}.")
  if dice and critics:
    raise ValueError("critics cannot be combined with dice=True; use baselines.")

  def fn(*args, values: Mapping[str, Any] | None = None,
         baselines: Mapping[str, Any] | None = None, **kwargs):
    structure, raw = analyse(model, *args, estimators=estimators, critics=critics, **kwargs)
    influence = dict(structure.influence)
    if influences is not None:
      for v, cs in influences.items():
        if v not in structure.nodes:
          raise ValueError(f"influences names node {v!r}, which the model does not sample; "
                           f"nodes: {list(structure.nodes)}.")
        cs = set(cs)
        unknown = cs - set(structure.costs)
        if unknown:
          raise ValueError(f"influences[{v!r}] names unknown costs {sorted(unknown)}.")
        for c in structure.costs:
          same = structure.scan_of[v] is not None and structure.scan_of[v] == \
              structure.scan_of[c]
          influence[(v, c)] = (SAME_OR_LATER if same else FULL) if c in cs else NONE
    if not causal:
      for v in structure.nodes:
        for c in structure.costs:
          influence[(v, c)] = FULL
    structure = dataclasses.replace(structure, influence=influence)
    _check_non_descendant(structure, raw, "baseline", allow_self=False)
    _check_non_descendant(structure, raw, "critic", allow_self=True)

    h = _run(model, args, kwargs, forced=values, estimators=estimators, critic_kinds=critics,
             scan_of=structure.scan_of)
    if check_finite:
      _check_finite(h, structure, check_finite)
    extra = dict(baselines or {})
    for name in extra:
      if name not in h.nodes:
        raise ValueError(f"baselines names node {name!r}, which the model does not sample; "
                         f"nodes: {list(h.nodes)}.")
      if h.nodes[name].baseline is not None:
        raise ValueError(f"node {name!r} has a baseline in the model and one in `baselines`.")
    in_scan = {n: structure.scan_of[n] is not None for n in list(h.nodes) + list(h.costs)}
    c_sig = {c: _reduce_cost(r.value, in_scan[c]) for c, r in h.costs.items()}
    total = sum((jnp.sum(r.value) for r in h.costs.values()), jnp.zeros(()))

    returns, signals, log_probs, values_out = {}, {}, {}, {}
    baseline_loss = jnp.zeros(())
    critic_loss = jnp.zeros(())
    sf_terms = jnp.zeros(())
    critic_terms = jnp.zeros(())
    baseline_of = {}
    for name, n in h.nodes.items():
      log_probs[name] = n.log_prob
      values_out[name] = n.hard
      shape = jnp.shape(n.log_prob)
      r = jnp.zeros(shape)
      cut = ()
      if n.horizon is not None:
        cut = n.horizon[1]
        unknown = [x for x in cut if x not in h.nodes]
        if unknown:
          raise ValueError(f"bootstrap of node {name!r} names unknown horizon nodes {unknown}.")
      beyond_total = jnp.zeros(shape)
      for c in h.costs:
        rel = influence.get((name, c), NONE)
        if rel == NONE:
          continue
        if any(influence.get((x, c), NONE) for x in cut):
          beyond_total = beyond_total + _signal_of(rel, c_sig[c])
          continue
        r = r + _signal_of(rel, c_sig[c])
      r = jax.lax.stop_gradient(r)
      if n.horizon is not None:
        v_h = n.horizon[0]
        critic_loss = critic_loss + jnp.mean((jax.lax.stop_gradient(beyond_total) - v_h) ** 2)
        r = r + jax.lax.stop_gradient(v_h)
      returns[name] = r
      b = n.baseline if n.baseline is not None else extra.get(name)
      if b is not None:
        b = jnp.asarray(b)
        if jnp.ndim(b) and b.shape != shape:
          expected = ("a scalar, shape ()" if shape == () else
                      f"a scalar or one value per step of its scan, shape {shape}")
          raise ValueError(f"baseline for node {name!r} has shape {b.shape}; expected "
                           f"{expected}.")
        baseline_of[name] = b
        baseline_loss = baseline_loss + jnp.mean((r - b) ** 2)
      if n.critic_term is not None:
        critic_terms = critic_terms + jnp.sum(n.critic_term)
      if n.critic_fit is not None:  # q(x) of a "pathwise"/"reparam"/"taylor" critic vs R_v.
        critic_loss = critic_loss + jnp.mean((r - n.critic_fit) ** 2)
      if n.estimator != nodes_lib.SCORE:
        signals[name] = jnp.zeros(shape)
        continue
      signal = r
      if n.critic_kind == "replace":
        critic_loss = critic_loss + jnp.mean((r - n.critic_value) ** 2)
        signal = n.critic_value
      elif n.critic_value is not None:
        signal = signal - n.critic_value
      if b is not None:
        signal = signal - b
      signal = jax.lax.stop_gradient(signal)
      signals[name] = signal
      sf_terms = sf_terms + jnp.sum((n.log_prob - jax.lax.stop_gradient(n.log_prob)) * signal)

    for name, n in h.nodes.items():
      if not isinstance(n.estimator, nodes_lib.Antithetic):
        continue
      if dice:
        raise ValueError(f"node {name!r}: {n.estimator!r} cannot be combined with dice=True.")
      # Second run with the node at its partner sample; common random numbers elsewhere.
      h2 = _run(model, args, kwargs, forced={**dict(values or {}), name: n.partner},
                estimators=estimators, critic_kinds=critics, scan_of=structure.scan_of)
      down = [c for c in h.costs if influence.get((name, c), NONE)]
      r1 = sum((jnp.sum(h.costs[c].value) for c in down), jnp.zeros(()))
      r2 = sum((jnp.sum(h2.costs[c].value) for c in down), jnp.zeros(()))
      g = jax.lax.stop_gradient(n.estimator.gradient(n.dist, n.hard, n.partner, r1, r2))
      logits = n.dist.logits
      sf_terms = sf_terms + jnp.sum(g * (logits - jax.lax.stop_gradient(logits)))

    if dice:
      surrogate = jnp.zeros(())
      for c in h.costs:
        exponent = jnp.zeros(jnp.shape(c_sig[c]))
        for name, n in h.nodes.items():
          rel = influence.get((name, c), NONE)
          if n.estimator == nodes_lib.SCORE and rel != NONE:
            exponent = exponent + _ancestor_log_prob(rel, n.log_prob)
        surrogate = surrogate + jnp.sum(dice_lib.magic_box(exponent) * c_sig[c])
      for name, b in baseline_of.items():
        n = h.nodes[name]
        if n.estimator == nodes_lib.SCORE:
          surrogate = surrogate + jnp.sum((1.0 - dice_lib.magic_box(n.log_prob)) *
                                          jax.lax.stop_gradient(b))
    else:
      surrogate = total + sf_terms + critic_terms
    info = SurrogateInfo(total, {c: r.value for c, r in h.costs.items()}, values_out, log_probs,
                         returns, signals, baseline_loss, critic_loss)
    return surrogate, info

  return fn


def value_and_grad(model: Callable, argnums: int | tuple[int, ...] = 0, *,
                   with_fitting_losses: bool = False, **surrogate_kwargs) -> Callable:
  """`jax.value_and_grad` of the surrogate of `model`, keeping its info.

  Args:
    model: as for `make_surrogate`.
    argnums: which positional arguments of `model` to differentiate (as in `jax.grad`).
    with_fitting_losses: if True the loss is `surrogate + info.baseline_loss +
      info.critic_loss`, so one gradient also fits the learned baselines and critics (their
      losses reach only what the baselines and critics read; the surrogate's gradient does not
      reach the critics' weights). The forward value is then no longer the sampled cost, which
      stays in `info.cost`.
    **surrogate_kwargs: `estimators`, `critics`, `causal`, `dice`, `influences`,
      `check_finite`, passed to `make_surrogate`.

  Returns:
    `fn(*args, values=None, baselines=None, **kwargs) -> ((loss, SurrogateInfo), grads)`, with
    `grads` shaped like the arguments in `argnums`: what `lambda *a: surrogate(*a)[0]` needs
    otherwise.
  """
  surrogate = make_surrogate(model, **surrogate_kwargs)

  def loss(*args, **kwargs):
    value, info = surrogate(*args, **kwargs)
    if with_fitting_losses:
      value = value + info.baseline_loss + info.critic_loss
    return value, info

  def fn(*args, **kwargs):
    return jax.value_and_grad(lambda *a: loss(*a, **kwargs), argnums=argnums,
                              has_aux=True)(*args)

  return fn


def graph_structure(model: Callable, *args, estimators=None, critics=None,
                    **kwargs) -> GraphStructure:
  """The derived structure of `model(*args, **kwargs)`: nodes, costs and who influences whom."""
  return analyse(model, *args, estimators=estimators, critics=critics, **kwargs)[0]
