"""The primitives a model calls: `sample`, `cost`, `baseline`, `critic` and `scan`.

A stochastic computation graph (Weber et al. 2019, Sec. 2; Schulman et al. 2015, Sec. 2) is an
ordinary JAX function that draws from distrax distributions at named stochastic nodes and emits
named costs. Outside `make_surrogate` the primitives are transparent (`sample` draws, `cost`
returns its value), so the same function runs on its own. Inside, an effect handler records every
node and cost; `surrogate.py` turns the record into a surrogate objective.

Handlers are kept on a thread-local stack and only touch Python-side bookkeeping, so the model
may be jitted, vmapped and differentiated from the outside. Sequential graphs use `scan` (a
wrapper of `lax.scan`) so that nodes and costs inside the loop become time-indexed arrays whose
temporal causality the library knows.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

import distrax
import jax
import jax.numpy as jnp

SCORE = "score"
PATHWISE = "pathwise"
AUTO = "auto"
CRITIC_KINDS = ("replace", "pathwise", "reparam", "taylor")

# distrax distributions whose samples are discrete: no pathwise gradient exists.
_DISCRETE = tuple(c for c in (
    getattr(distrax, n, None) for n in ("Bernoulli", "Categorical", "OneHotCategorical",
                                        "EpsilonGreedy", "Greedy", "Softmax", "Quantized"))
                  if c is not None)


def is_reparameterizable(dist: Any) -> bool:
  """True if samples of `dist` are differentiable functions of its parameters.

  distrax marks no flag, so discrete distrax classes are listed; wrapped TFP distributions carry
  `reparameterization_type`.
  """
  if isinstance(dist, _DISCRETE):
    return False
  rt = getattr(dist, "reparameterization_type", None)
  if rt is not None:
    return "FULLY_REPARAMETERIZED" in str(rt)
  dtype = getattr(dist, "dtype", jnp.float32)
  return bool(jnp.issubdtype(dtype, jnp.floating))


class Relaxation:
  """Base class of estimator objects that can be chosen per node (see `relaxations.py`)."""

  def sample(self, dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns `(hard, value)`: an exact sample and the differentiable value used downstream."""
    raise NotImplementedError


class Antithetic(Relaxation):
  """Base class of per-node estimators that evaluate the downstream cost at a second sample.

  `make_surrogate` runs the model again with the node forced to the partner sample (every other
  node redrawn from the same keys, i.e. common random numbers) and passes both downstream costs
  to `gradient`.
  """

  def sample(self, dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    hard, _ = self.pair(dist, key)
    return hard, hard

  def pair(self, dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns `(sample, partner)`, both exact samples of `dist` (no gradient)."""
    raise NotImplementedError

  def gradient(self, dist: Any, sample: jax.Array, partner: jax.Array, cost: jax.Array,
               partner_cost: jax.Array) -> jax.Array:
    """The estimate of d E[cost] / d logits (shape of the logits), from the two evaluations."""
    raise NotImplementedError


@dataclasses.dataclass
class NodeRecord:
  """What the handler knows about one stochastic node.

  Attributes:
    name: node name.
    estimator: "score", "pathwise" or a `Relaxation`.
    value: the value passed downstream (stopped for score-function nodes).
    hard: the exact sample (no gradient).
    log_prob: log-density of `hard`, summed over the node's elements: shape () at top level,
      (T,) inside `scan`.
    scan: id of the enclosing `scan` or None.
    dist: the distribution (None once exported from a scan body).
    raw: the unstopped sample (pathwise in the parameters where reparameterisable).
  """
  name: str
  estimator: Any
  value: Any
  hard: Any
  log_prob: Any
  scan: int | None = None
  dist: Any = None
  raw: Any = None
  baseline: Any = None
  critic_kind: str | None = None
  critic_value: Any = None   # Q used as (part of) the learning signal, or None.
  critic_term: Any = None    # Forward-zero surrogate term carrying the critic's pathwise gradient.
  critic_fit: Any = None     # q at the sample, unstopped: what the critic's fitting loss moves.
  horizon: Any = None        # (V(H), names of the horizon nodes H) from `bootstrap`.
  partner: Any = None        # Second sample of an `Antithetic` node.


@dataclasses.dataclass
class CostRecord:
  name: str
  value: Any
  scan: int | None = None


_STACK = threading.local()


def _stack() -> list:
  if not hasattr(_STACK, "handlers"):
    _STACK.handlers = []
  return _STACK.handlers


def current_handler() -> "Handler | None":
  s = _stack()
  return s[-1] if s else None


class Handler:
  """Records nodes and costs of one execution of a model.

  Args:
    forced: node name -> value to use instead of sampling (exact enumeration, re-execution with
      other values, and dependency analysis all use this).
    estimators: node name -> estimator, overriding the one given at the `sample` call.
    critic_kinds: node name -> one of `CRITIC_KINDS`.
    scan_of: node name -> scan id, from an earlier pass (routes forced values into scan bodies).
    analyse_steps: in the dependency-analysis pass, also analyse each `scan` body per step.
  """

  def __init__(self, forced: Mapping[str, Any] | None = None,
               estimators: Mapping[str, Any] | None = None,
               critic_kinds: Mapping[str, str] | None = None,
               scan_of: Mapping[str, int | None] | None = None, analyse_steps: bool = False,
               scan_id: int | None = None):
    self.forced = dict(forced or {})
    self.estimators = dict(estimators or {})
    self.critic_kinds = dict(critic_kinds or {})
    self.scan_of = dict(scan_of or {})
    self.analyse_steps = analyse_steps
    self.scan_id = scan_id
    self.nodes: dict[str, NodeRecord] = {}
    self.costs: dict[str, CostRecord] = {}
    self.scan_lengths: dict[int, int] = {}
    self.step_deps: dict[int, Any] = {}
    self._num_scans = 0

  def __enter__(self):
    _stack().append(self)
    return self

  def __exit__(self, *exc):
    _stack().pop()

  def _check_new_name(self, name: str) -> None:
    if not isinstance(name, str) or not name:
      raise ValueError(f"node and cost names must be non-empty strings; got {name!r}.")
    if name in self.nodes or name in self.costs:
      raise ValueError(f"name {name!r} is used twice; every node and cost needs its own name.")

  # -- sample -------------------------------------------------------------------------------
  def sample(self, name: str, dist: Any, key: jax.Array, estimator: Any) -> jax.Array:
    self._check_new_name(name)
    estimator = self.estimators.get(name, estimator)
    if estimator == AUTO:
      estimator = PATHWISE if is_reparameterizable(dist) else SCORE
    if estimator == PATHWISE and not is_reparameterizable(dist):
      raise ValueError(
          f"node {name!r}: estimator 'pathwise' needs a reparameterisable distribution, but "
          f"{type(dist).__name__} has discrete samples; use 'score' or a relaxation.")
    if estimator not in (SCORE, PATHWISE) and not isinstance(estimator, Relaxation):
      raise ValueError(f"node {name!r}: estimator must be 'score', 'pathwise', 'auto' or a "
                       f"Relaxation; got {estimator!r}.")
    if name in self.forced:
      hard = jnp.asarray(self.forced[name])
      expected = tuple(dist.batch_shape) + tuple(dist.event_shape)
      if tuple(hard.shape) != expected:
        raise ValueError(f"node {name!r}: the given sample has shape {tuple(hard.shape)}; the "
                         f"distribution's samples have shape {expected}.")
      raw = hard
      value = hard
      if isinstance(estimator, Relaxation):
        value = hard.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
    elif isinstance(estimator, Antithetic):
      if self.scan_id is not None:
        raise ValueError(f"node {name!r}: {estimator!r} is only supported outside "
                         "stochastic_graphs.scan; use 'score' there.")
      try:
        hard, partner = estimator.pair(dist, key)
      except ValueError as e:
        raise ValueError(f"node {name!r}: {e}") from None
      value = raw = hard
    elif isinstance(estimator, Relaxation):
      try:
        hard, value = estimator.sample(dist, key)
      except ValueError as e:
        raise ValueError(f"node {name!r}: {e}") from None
      raw = value
    else:
      raw = dist.sample(seed=key)
      hard = jax.lax.stop_gradient(raw)
      value = raw
    if estimator == SCORE or (self.critic_kinds.get(name) == "pathwise"):
      value = jax.lax.stop_gradient(value)
    log_prob = jnp.sum(dist.log_prob(jax.lax.stop_gradient(hard)))
    self.nodes[name] = NodeRecord(name, estimator, value, jax.lax.stop_gradient(hard), log_prob,
                                  self.scan_id, dist, raw)
    if isinstance(estimator, Antithetic):
      # A forced node has no partner of its own: the pair (x, x) contributes nothing.
      self.nodes[name].partner = value if name in self.forced else partner
    return value

  def _node(self, node: str, what: str) -> NodeRecord:
    if node not in self.nodes:
      raise ValueError(f"{what} for node {node!r}, which has not been sampled (yet) in this "
                       f"scope; known nodes: {sorted(self.nodes)}.")
    return self.nodes[node]

  def cost(self, name: str, value: Any) -> Any:
    self._check_new_name(name)
    self.costs[name] = CostRecord(name, jnp.asarray(value), self.scan_id)
    return value

  def baseline(self, node: str, value: Any) -> None:
    rec = self._node(node, "baseline")
    value = jnp.asarray(value)
    if value.shape != ():
      raise ValueError(f"baseline for node {node!r} has shape {value.shape}; expected a scalar "
                       "(vmap the surrogate over examples to get one baseline per example).")
    if rec.baseline is not None:
      raise ValueError(f"node {node!r} already has a baseline.")
    rec.baseline = value

  def critic(self, node: str, q: Any) -> None:
    rec = self._node(node, "critic")
    kind = self.critic_kinds.get(node)
    if kind is None:
      raise ValueError(f"critic for node {node!r}: declare its kind in make_surrogate(critics="
                       f"{{{node!r}: one of {CRITIC_KINDS}}}).")
    if rec.critic_kind is not None:
      raise ValueError(f"node {node!r} already has a critic.")
    rec.critic_kind = kind
    if kind == "replace":
      q = jnp.asarray(q)
      if q.shape != ():
        raise ValueError(f"critic for node {node!r} has shape {q.shape}; expected a scalar.")
      rec.critic_value = q
      return
    if not callable(q):
      raise ValueError(f"critic of kind {kind!r} for node {node!r} must be a function of the "
                       "node's value; got an array.")
    if kind == "pathwise":
      # SVG(0)/DDPG: gradient of Q through the reparameterised sample replaces the costs' own.
      if rec.estimator != PATHWISE:
        raise ValueError(f"critic kind 'pathwise' for node {node!r} needs estimator "
                         f"'pathwise'; the node uses {rec.estimator!r}.")
      qv, rec.critic_term = _through_value(q, rec.raw, node)
      rec.critic_fit = qv
      return
    if rec.estimator != SCORE:
      raise ValueError(f"critic kind {kind!r} for node {node!r} is a control variate for the "
                       f"score function; the node uses {rec.estimator!r}.")
    if kind == "reparam":
      # LAX-style: E[grad log p * q] is replaced by its pathwise twin grad E[q(x(theta, eps))].
      if not is_reparameterizable(rec.dist):
        raise ValueError(f"critic kind 'reparam' for node {node!r} needs a reparameterisable "
                         f"distribution; {type(rec.dist).__name__} is not (use 'taylor').")
      qv, rec.critic_term = _through_value(q, rec.raw, node)
      rec.critic_value = jax.lax.stop_gradient(qv)
      rec.critic_fit = qv
    elif kind == "taylor":
      # MuProp / Q-Prop: first-order expansion of q at the mean; its expectation is analytic.
      mean = rec.dist.mean()
      mbar = jax.lax.stop_gradient(mean)
      q0, g = jax.value_and_grad(lambda m: _scalar_q(q(m), node))(mbar)
      g = jax.lax.stop_gradient(g)
      x = jax.lax.stop_gradient(rec.hard).astype(mbar.dtype)
      rec.critic_value = jax.lax.stop_gradient(q0 + jnp.sum(g * (x - mbar)))
      rec.critic_term = jnp.sum(g * (mean - mbar))
      rec.critic_fit = _scalar_q(q(x), node)

  def bootstrap(self, node: str, value: Any, beyond: tuple) -> None:
    rec = self._node(node, "bootstrap")
    if self.scan_id is not None:
      raise ValueError(f"bootstrap for node {node!r} inside scan: use the n-step/lambda "
                       "functions of stochastic_graphs.horizons with a 'replace' critic.")
    value = jnp.asarray(value)
    if value.shape != ():
      raise ValueError(f"bootstrap value for node {node!r} has shape {value.shape}; expected a "
                       "scalar.")
    if isinstance(beyond, str) or not beyond:
      raise ValueError(f"bootstrap for node {node!r}: beyond must be a non-empty sequence of "
                       f"node names; got {beyond!r}.")
    rec.horizon = (value, tuple(beyond))

  # -- scan ---------------------------------------------------------------------------------
  def scan(self, f: Callable, init: Any, xs: Any, length: int | None, unroll: int | bool = 1
           ) -> tuple[Any, Any]:
    if self.scan_id is not None:
      return self._nested_scan(f, init, xs, length, unroll)
    sid = self._num_scans
    self._num_scans += 1
    inner_forced = {n: v for n, v in self.forced.items() if self.scan_of.get(n) == sid}
    outer = self

    def run_step(carry, x, forced_t):
      h = Handler(forced_t, outer.estimators, outer.critic_kinds, scan_id=sid)
      with h:
        carry, y = f(carry, x)
      return carry, y, h

    static: dict[str, Any] = {}  # Estimators and critic kinds are Python values: kept aside.

    def body(carry, inp):
      x, forced_t = inp
      if outer.analyse_steps:
        from stochastic_graphs import dependencies  # Local: only the analysis pass needs it.
        deps, paths = dependencies.function_dependencies(
            lambda ft: _export(run_step(carry, x, ft)[2]), forced_t)
        outer.step_deps[sid] = (deps, [p[1].key for p in paths])
      carry, y, h = run_step(carry, x, forced_t)
      static.update({n: (r.estimator, r.critic_kind) for n, r in h.nodes.items()})
      return carry, (y, _export(h))

    carry, (ys, rec) = jax.lax.scan(body, init, (xs, inner_forced), length=length,
                                    unroll=unroll)
    t = jax.tree.leaves(rec)[0].shape[0] if jax.tree.leaves(rec) else length
    self.scan_lengths[sid] = t
    for name, n in rec["nodes"].items():
      self._check_new_name(name)
      estimator, critic_kind = static[name]
      self.nodes[name] = NodeRecord(name, estimator, n["value"], n["hard"], n["log_prob"], sid,
                                    baseline=n.get("baseline"), critic_kind=critic_kind,
                                    critic_value=n.get("critic_value"),
                                    critic_term=n.get("critic_term"),
                                    critic_fit=n.get("critic_fit"))
    for name, c in rec["costs"].items():
      self._check_new_name(name)
      self.costs[name] = CostRecord(name, c, sid)
    return carry, ys


  def _nested_scan(self, f: Callable, init: Any, xs: Any, length: int | None,
                   unroll: int | bool = 1) -> tuple[Any, Any]:
    """A `scan` inside a `scan` body: each inner node becomes one node of the enclosing step.

    The node's samples over the inner steps form its value, and its log-probability is their
    sum. Causality across the outer steps is kept exactly; within one outer step the inner
    nodes are credited with every cost of that step (a superset of their true descendants:
    unbiased, at some cost in variance). Baselines and critics need per-inner-step signals and
    are refused for inner nodes.
    """
    probe: dict[str, NodeRecord] = {}

    def probe_step(carry, x):  # Abstract trace of one step: which nodes does the body sample?
      h = Handler(estimators=self.estimators, critic_kinds=self.critic_kinds,
                  scan_id=self.scan_id)
      with h:
        f(carry, x)
      probe.update(h.nodes)

    x0 = None if xs is None else jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), xs)
    jax.eval_shape(probe_step, init, x0)
    inner_forced = {n: v for n, v in self.forced.items() if n in probe}
    outer = self
    static: dict[str, Any] = {}

    def body(carry, inp):
      x, forced_t = inp
      h = Handler(forced_t, outer.estimators, outer.critic_kinds, scan_id=outer.scan_id)
      with h:
        carry, y = f(carry, x)
      for name, r in h.nodes.items():
        if r.baseline is not None or r.critic_kind is not None:
          raise ValueError(
              f"node {name!r} is sampled in a nested stochastic_graphs.scan, where baselines and "
              "critics are not supported (its score term is per outer step); declare them on "
              "nodes of the outermost scan, or flatten the loops into one scan.")
        static[name] = r.estimator
      return carry, (y, _export(h))

    carry, (ys, rec) = jax.lax.scan(body, init, (xs, inner_forced), length=length,
                                    unroll=unroll)
    for name, n in rec["nodes"].items():
      self._check_new_name(name)
      self.nodes[name] = NodeRecord(name, static[name], n["value"], n["hard"],
                                    jnp.sum(n["log_prob"]), self.scan_id)
    for name, c in rec["costs"].items():
      self._check_new_name(name)
      self.costs[name] = CostRecord(name, c, self.scan_id)
    return carry, ys


def _scalar_q(q: Any, node: str) -> jax.Array:
  q = jnp.asarray(q)
  if q.shape != ():
    raise ValueError(f"critic for node {node!r} returned shape {q.shape}; expected a scalar.")
  return q


def _through_value(q: Callable, raw: jax.Array, node: str) -> tuple[jax.Array, jax.Array]:
  """`(q(x), term)`: `term` is zero forward and its gradient is grad_x q(x) . dx/dtheta only.

  The pathwise correction of a control variate (LAX, Grathwohl et al. 2018 Eq. (6); Weber et al.
  2019 Sec. 5) and the SVG(0) gradient (Sec. 4.2) differentiate q through the sample x(theta,
  eps) alone. Differentiating `q(raw)` itself would also pass gradient through whatever else q
  reads (the parameters, other nodes' values, the critic's own weights): those direct paths are
  already in the costs' gradient, so they would be counted twice, and the critic's weights would
  receive a surrogate gradient. Only first-order derivatives of `term` are the estimator.
  """
  x = jax.lax.stop_gradient(raw)
  qv, g = jax.value_and_grad(lambda v: _scalar_q(q(v), node))(x)
  return qv, jnp.sum(jax.lax.stop_gradient(g) * (raw - x))


def _export(h: Handler) -> dict:
  """Array-only summary of a scan body's record (distributions cannot leave the body)."""
  nodes = {}
  for name, n in h.nodes.items():
    d = {"value": n.value, "hard": n.hard, "log_prob": n.log_prob}
    if n.baseline is not None:
      d["baseline"] = n.baseline
    if n.critic_value is not None:
      d["critic_value"] = n.critic_value
    if n.critic_term is not None:
      d["critic_term"] = n.critic_term
    if n.critic_fit is not None:
      d["critic_fit"] = n.critic_fit
    nodes[name] = d
  return {"nodes": nodes, "costs": {n: c.value for n, c in h.costs.items()}}


# ---- public primitives ------------------------------------------------------------------------
def sample(name: str, dist: Any, key: jax.Array, *, estimator: Any = AUTO) -> jax.Array:
  """Draws from `dist` at the stochastic node `name`.

  Args:
    name: unique node name.
    dist: a distrax distribution; the node is its whole sample (all batch elements).
    key: PRNG key.
    estimator: "score" (REINFORCE, Eq. (3) of Weber et al. 2019), "pathwise"
      (reparameterisation, Eq. (4)), "auto" (pathwise where possible) or a `Relaxation`.
      `make_surrogate(estimators=...)` overrides it.

  Returns:
    The sample. For score-function nodes it carries no gradient; the surrogate adds the score
    term instead.
  """
  h = current_handler()
  if h is None:
    return dist.sample(seed=key)
  return h.sample(name, dist, key, estimator)


def cost(name: str, value: Any) -> Any:
  """Emits the cost node `name` (any shape; the objective is the sum of all its elements)."""
  h = current_handler()
  if h is None:
    return value
  return h.cost(name, value)


def baseline(node: str, value: Any) -> None:
  """Declares the scalar baseline b(B) of score-function node `node` (Weber et al. Eq. (6)).

  It must depend only on non-descendants of `node`; `make_surrogate` checks this on the graph.
  """
  h = current_handler()
  if h is not None:
    h.baseline(node, value)


def critic(node: str, q: Any) -> None:
  """Declares a critic for `node`; its kind is set by `make_surrogate(critics={node: kind})`.

  Kinds: "replace" (`q` a scalar Q(X) replacing the sampled downstream cost, Weber et al.
  Eq. (8)); "pathwise" (`q(x)` differentiated through the reparameterised sample, SVG(0)/DDPG);
  "reparam" and "taylor" (`q(x)` as a control variate with its pathwise or first-order analytic
  correction: LAX/Q-Prop/MuProp).

  `q(x)` may read anything besides `x` (the parameters, non-descendant nodes, its own weights):
  the surrogate differentiates it through `x` only, so the estimator stays unbiased and the
  critic's weights get no surrogate gradient; they are fitted by `SurrogateInfo.critic_loss`,
  the Monte Carlo regression of q(x) on the node's sampled downstream cost.
  """
  h = current_handler()
  if h is not None:
    h.critic(node, q)


def bootstrap(node: str, value: Any, beyond: tuple | list) -> None:
  """Horizon for `node`: costs downstream of the nodes `beyond` are replaced by `value`.

  The learning signal of `node` becomes (its influenced costs not downstream of H) + V(H),
  Weber et al. 2019, Sec. 4.3 (partial evaluation with a value function at the horizon H).
  The Monte Carlo fitting loss of V(H) is added to `SurrogateInfo.critic_loss`.
  """
  h = current_handler()
  if h is not None:
    h.bootstrap(node, value, tuple(beyond))


def scan(f: Callable[[Any, Any], tuple[Any, Any]], init: Any, xs: Any = None,
         length: int | None = None, *, unroll: int | bool = 1) -> tuple[Any, Any]:
  """`jax.lax.scan` whose body may call `sample` and `cost`: they become time-indexed.
  `unroll` is `jax.lax.scan`'s (same values; an unrolled loop can run faster on the CPU).

  A node sampled at step s can only influence costs at steps t >= s (t > s when the analysis of
  one step shows no same-step path), which the surrogate uses for cost-to-go signals.

  Scans may be nested: a node of an inner scan is, for the enclosing scan, one node per outer
  step (its inner samples stacked, log-probabilities summed), credited with every cost of its
  outer step and of later ones. Baselines and critics are refused on nodes of inner scans.
  """
  h = current_handler()
  if h is None:
    return jax.lax.scan(f, init, xs, length=length, unroll=unroll)
  return h.scan(f, init, xs, length, unroll)
