"""IBP's planner (Pascanu et al. 2017, Sec. 2): manager, controller, memory and the imagination
strategies, on Spaceship; one episode as a stochastic computation graph.

Sources: [P] Pascanu et al. 2017, Sec. 2 (the agent) and Sec. 3 (Spaceship); [O] our choice, with
the reason beside it.

The agent (Sec. 2):
- [P] Before each external (real) action the agent takes a variable number of imagination steps.
  At step j the manager `pi^M(s, h_j)` picks a route `u_j`: "act" (stop imagining and take the
  real action) or "imagine from" a node of the imagination tree. The controller
  `pi^C(x, h_j)` maps the state `x` of the chosen node (the real state when acting) and the plan
  context `h_j` to an action `c_j`; the imagination `I(x, c_j)` predicts the next state and
  reward; the memory `mu` (an LSTM) folds the step's data into the plan context,
  `h_{j+1} = mu(d_j, h_j)`.
- [P] Memory inputs `d_j`: the route (one-hot), the real state `s`, the state imagined from
  `x_{p_j}`, the action `c_j`, the predicted state `x'` and reward `r'`, the indices `j`
  (imagination step) and `k` (external action), and the cost so far (the fuel paid and the
  imagination cost `tau * imaginations` spent this episode). [O] After the real action the
  memory also reads the real transition (route "act", the real outcome and its reward), so the
  plan context of action k+1 knows what action k did.
- [P] Strategies: `one_step` (every imagination starts from the current real state, the root),
  `n_step` (every imagination continues from the latest imagined state), `tree` (the manager
  chooses among {act, imagine from the root, imagine from the latest}). Routes are
  `ACT, ROOT, LATEST = 0, 1, 2`; a strategy masks the routes it does not have. [O] "latest" is
  the state produced by the most recent imagination of this action (the root before any), so
  `tree` can build a chain, restart from the root, and mix the two; nodes are numbered 0 (root)
  and 1, 2, ... in the order they are imagined (`trace.from_node` records the start node of
  every imagination, tested on a hand-worked route sequence).
- [O] `fixed_budget=True`: "act" is masked until `max_imaginations` imaginations are done (the
  fixed numbers of imaginations per action of the paper's Spaceship comparisons); `False`: the
  manager decides when to act (the imagination-cost experiments), with at most
  `max_imaginations` imaginations.
- Under `jit` [O]: a `stochastic_graphs.scan` of `max_imaginations` steps per external action;
  after "act" the remaining steps are masked (the memory, the latest node and the counter stay,
  the manager's distribution collapses on "act", so its log-probability, entropy and cost are 0).
  `max_imaginations = 0` skips the scan: the controller alone acts (the paper's SVG baseline).
  The external actions (1-3) are a Python loop (static, short); episodes are `vmap`ped.

Actions and inputs [O]:
- The controller outputs a gravity-free displacement `d` (2,), turned into the thrust
  `F = m d / (n dt^2)` (n = 12 steps; the environment clips it to `max_thrust`): the same
  parametrisation as the imagination's random thrusts, so a network output of order 1 moves any
  ship by order 1 whatever its mass (the masses span a factor 90).
- State features (`state_features`): the ship relative to the mothership, its velocity, mass
  / 0.36, the planets relative to the ship, their masses / 0.4 and the fraction of external
  actions left: translation-relative, so "aim at the mothership" is linear in the inputs.
- The manager and the baseline read `stop_gradient` of the plan context and of the real state
  (the paper trains memory by SVG only), plus `j / max_imaginations` and the imaginations done.

Losses as one stochastic computation graph (`episode_graph`; Sec. 2 "Training"):
- Costs (`sg.cost`): `imagination_k` = `tau` per imagination step of action k [P], `fuel_k` the
  fuel of real action k [P], `final_distance` the final distance loss [P]; the task loss is
  `sum_k fuel_k + final_distance`. Routes are `sg.sample` nodes `route_k` (score function,
  REINFORCE), with a learned baseline `b(sg(s), sg(h_j), j, k)` (`sg.baseline`, fitted by the
  surrogate's baseline loss) and an entropy bonus (`sg.entropy_regularizer`, weight
  `entropy_coef`).
- SVG for controller and memory [P]: the real next state is the environment's; its gradient is
  the imagination's Jacobian, `x' = x'_real + I(x, c) - stop_gradient(I(x, c))` (Heess et al.
  2015's SVG with a learned model: the forward value stays the real one). The costs' direct
  gradient is then the pathwise gradient of the external loss through the learned model, by
  backpropagation through the real actions and through the imagined steps that the plan context
  read (routes held fixed: they are stopped samples). The imagination cost has no pathwise
  gradient, and the score terms reach only the manager (its inputs are stopped): each subgraph
  gets its own objective's gradient from one surrogate.
- The imagination, trained together with the planner [P] ("each subgraph on its own
  objective"): with `model=` (an `agents.ibp.imagination.Imagination`) its params are
  `params["imagination"]`, read inside the surrogate through `stop_gradient` (the SVG path uses
  the model's Jacobian w.r.t. its inputs, never trains its weights), and the loss adds the
  model's own supervised loss (`Imagination.loss`) on the real transitions of the batch's
  episodes (state and commanded thrust -> the environment's next state, all stopped): the
  model's gradient is exactly that loss's gradient, and the other subgraphs' gradients are those
  of the surrogate alone (both tested). [O] The transitions are the planner's own (on-policy):
  the model is fitted where the controller acts. With `imagine=` (a fixed closure, e.g.
  `simulator_imagination` in the proofs, or a model fitted first and frozen) there is no
  supervised term and no `"imagination"` params.

    planner = make_planner(PlannerConfig(strategy="tree", max_imaginations=3), env, env_params,
                           model=model, model_params=warm_start_params)    # trained jointly
    planner = make_planner(config, env, env_params, imagine=simulator_imagination(env, p))
    params = planner.init(key)
    loss, info = planner.loss(params, states0 [B], keys [B])     # surrogate + model loss, mean
    out = planner.rollout(params, state0, key)                   # one episode, no surrogate
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg
from agents.ibp import imagination as imagination_lib
from envs import spaceship as ss

ACT, ROOT, LATEST = 0, 1, 2
NUM_ROUTES = 3
STRATEGIES = ("one_step", "n_step", "tree")
ALLOWED_ROUTES = {"one_step": (ACT, ROOT), "n_step": (ACT, LATEST), "tree": (ACT, ROOT, LATEST)}
MASS_SCALE, PLANET_MASS_SCALE = 0.36, 0.4   # [O] the upper ends of the paper's mass intervals
_MASKED = -1e9


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
  max_imaginations: int = 3         # [P] budget of imagination steps per external action (>= 0)
  strategy: str = "tree"            # [P] one of STRATEGIES
  fixed_budget: bool = False        # [O] True: always imagine max_imaginations times (no early act)
  imagination_cost: float = 0.0     # [P] tau, the cost of one imagination step (manager only)
  entropy_coef: float = 0.01        # [P] the manager's entropy bonus (weight; our value)
  memory_size: int = 64             # [O] LSTM units of the memory mu
  controller_hidden: tuple = (64, 64)  # [O] MLP of the controller pi^C
  manager_hidden: tuple = (64,)     # [O] MLP of the manager pi^M
  baseline_hidden: tuple = (64,)    # [O] MLP of the manager's learned baseline

  def replace(self, **kwargs) -> "PlannerConfig":
    return dataclasses.replace(self, **kwargs)


def check_budget_and_costs(config, per: str) -> None:
  """The checks shared by the Spaceship and maze planners' configs: the imagination budget
  `max_imaginations` (per `per`), the strategy, and the non-negative costs."""
  n = config.max_imaginations
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
    raise ValueError(f"config.max_imaginations (the imagination budget per {per}) must be an "
                     f"integer >= 0; got {n!r}")
  if config.strategy not in STRATEGIES:
    raise ValueError(f"config.strategy must be one of {STRATEGIES}; got {config.strategy!r}")
  for name in ("imagination_cost", "entropy_coef"):
    value = getattr(config, name)
    if not (np.isfinite(value) and value >= 0):
      raise ValueError(f"config.{name} must be finite and >= 0; got {value!r}")


def check_config(config: PlannerConfig) -> None:
  """Raises `ValueError` naming the bad field of a `PlannerConfig`."""
  check_budget_and_costs(config, "external action")
  if int(config.memory_size) < 1:
    raise ValueError(f"config.memory_size must be >= 1; got {config.memory_size!r}")


# ----------------------------------------------------------------------------- networks


MLP = imagination_lib.MLP  # tanh MLP, one definition for the package


class Memory(nn.Module):
  """mu: an LSTM cell, `(carry, d) -> carry`; the plan context is the cell's output `h`."""
  size: int

  @nn.compact
  def __call__(self, carry, d):
    carry, _ = nn.OptimizedLSTMCell(self.size)(carry, d)
    return carry


def state_features(s: ss.SpaceshipState, num_actions: int) -> jax.Array:
  """`(6 + 3P,)`: ship - mothership, velocity, mass / 0.36, planets - ship, masses / 0.4,
  fraction of external actions left (see the module docstring)."""
  left = (num_actions - s.time).astype(s.ship.dtype) / num_actions
  return jnp.concatenate([s.ship - s.mothership, s.velocity, (s.ship_mass / MASS_SCALE)[None],
                          (s.planets - s.ship).reshape(-1), s.masses / PLANET_MASS_SCALE,
                          left[None]])


def num_features(num_planets: int) -> int:
  return 6 + 3 * num_planets


# ----------------------------------------------------------------------------- planner


class Trace(NamedTuple):
  """Per external action `[K]` (and step `[K, max_imaginations]`) record of an episode."""
  routes: jax.Array          # int32 [K, n]: the manager's route per step (ACT after acting)
  from_node: jax.Array       # int32 [K, n]: node imagined from (0 root, i the i-th imagined), -1
  imagined: jax.Array        # bool [K, n]: the step imagined
  predicted_ship: jax.Array  # [K, n, 2]: the latest imagined ship position after each step
  imaginations: jax.Array    # int32 [K]: imaginations before each real action
  thrust: jax.Array          # [K, 2] real thrusts
  distance: jax.Array        # [K] distance to the mothership after each real action


class Rollout(NamedTuple):
  task_loss: jax.Array       # () fuel + final distance loss (the real, external loss)
  fuel: jax.Array            # ()
  final_distance: jax.Array  # () the final distance-loss term
  imagination_cost: jax.Array  # () tau x imaginations
  trace: Trace
  transitions: imagination_lib.Transitions  # [K] the real transitions (stopped; clipped thrust)


class Planner(NamedTuple):
  """Pure functions of the planner (see the module docstring).

  `init(key) -> params` (dict: controller, memory, manager, baseline); `rollout(params, state0,
  key, routes=None) -> Rollout` (one episode from the real state `state0`; `routes` `[K, n]`
  int overrides the manager); `graph(params, state0, key, routes=None)` the same episode as a
  stochastic computation graph (call it under `stochastic_graphs.make_surrogate`);
  `loss(params, states0 [B], keys [B]) -> (loss, aux)`: batch mean of the surrogate plus the
  baseline's fitting loss, plus (with a trainable `model`) the model's supervised loss on the
  batch's real transitions; its gradient the subgraphs' own objectives' gradients.
  `loss_terms(params, states0, keys) -> (planner_loss, model_loss, aux, transitions [B K])`: the
  two terms apart (`model_loss` 0 without a trainable model). `model`: the trainable
  `Imagination` or None (a fixed `imagine`).
  """
  init: Callable
  rollout: Callable
  graph: Callable
  loss: Callable
  config: PlannerConfig
  env: Any
  env_params: Any
  loss_terms: Callable | None = None
  model: Any = None


def _check_state(state0) -> None:
  for name in ("ship", "velocity", "ship_mass", "mothership", "planets", "masses", "fuel"):
    value = getattr(state0, name)
    if not isinstance(value, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(value))):
      raise ValueError(f"state0.{name} must be finite, got {np.asarray(value)}")


def make_planner(config: PlannerConfig, env: ss.Spaceship, env_params: ss.SpaceshipParams,
                 imagine: Callable[[ss.SpaceshipState, jax.Array], imagination_lib.Prediction]
                 | None = None, *, model: imagination_lib.Imagination | None = None,
                 model_params: Any = None) -> Planner:
  """The IBP planner on Spaceship.

  Args:
    config: `PlannerConfig` (checked: a negative budget or unknown strategy is refused by name).
    env: the `Spaceship` environment (real steps).
    env_params: its params; `num_actions` (K, 1-3) fixes the episode length (checked by
      `envs.spaceship.check_params`, naming `params.num_actions`).
    imagine: a fixed imagination, `imagine(state, thrust) -> Prediction` (ship, velocity, fuel,
      final_loss) of one scene, e.g. a fitted `Imagination.predict` with its params closed over
      (frozen), or `simulator_imagination` (the true, noise-free simulator).
    model: instead of `imagine`, a trainable `Imagination` (trained together with the planner
      on its own supervised loss; see the module docstring).
    model_params: the model's initial params (a warm start, e.g. `train.fit_imagination`'s);
      None: `model.init` of the planner's init key.
  """
  check_config(config)
  if (imagine is None) == (model is None):
    raise ValueError("make_planner needs exactly one of imagine= (a fixed imagination) and "
                     "model= (a trainable agents.ibp.imagination.Imagination)")
  if model is not None and not isinstance(model, imagination_lib.Imagination):
    raise ValueError(f"model must be an agents.ibp.imagination.Imagination; got "
                     f"{type(model).__name__}")
  if model_params is not None and model is None:
    raise ValueError("model_params is the warm start of a trainable model=; got no model")
  ss.check_params(env_params)
  if not isinstance(env, ss.Spaceship):
    raise ValueError(f"env must be an envs.spaceship.Spaceship; got {type(env).__name__}")
  K, n = env_params.num_actions, int(config.max_imaginations)
  steps = env.glide_steps + 1
  scale = steps * env_params.dt ** 2
  nf = num_features(env.num_planets)
  allowed = jnp.zeros(NUM_ROUTES, bool).at[jnp.asarray(ALLOWED_ROUTES[config.strategy])].set(True)
  controller = MLP(config.controller_hidden, 2)
  memory = Memory(config.memory_size)
  manager = MLP(config.manager_hidden, NUM_ROUTES)
  baseline_net = MLP(config.baseline_hidden, 1)
  d_size = NUM_ROUTES + 2 * nf + 2 + 4 + 2 + 4
  m_size = config.memory_size + nf + 2

  def init(key):
    kc, km, kg, kb = jax.random.split(key, 4)
    carry = _zero_carry()
    params = {"controller": controller.init(kc, jnp.zeros(nf + config.memory_size)),
              "memory": memory.init(km, carry, jnp.zeros(d_size)),
              "manager": manager.init(kg, jnp.zeros(m_size)),
              "baseline": baseline_net.init(kb, jnp.zeros(m_size + 1))}
    if model is not None:
      params["imagination"] = (model.init(jax.random.fold_in(key, 4)) if model_params is None
                               else jax.tree.map(jnp.asarray, model_params))
    return params

  def imagine_with(params, x, thrust):
    """The imagination I; a trainable model's params are stopped (it learns only from its
    supervised loss, never through the SVG path) [P]."""
    if model is None:
      return imagine(x, thrust)
    return model.predict(jax.lax.stop_gradient(params["imagination"]), x, thrust)

  def _zero_carry():
    z = jnp.zeros(config.memory_size)
    return (z, z)

  def act(params, x, h):
    """pi^C: `(displacement d, thrust F)` from the node's state `x` and plan context `h`."""
    d = controller.apply(params["controller"], jnp.concatenate([state_features(x, K), h]))
    return d, x.ship_mass * d / scale

  def reward_of(pred: imagination_lib.Prediction, time_after):
    return -(pred.fuel + jnp.where(time_after >= K, pred.final_loss, 0.0))

  def memory_input(route, s, x, d, x_next, reward, fuel, j, k, cost_so_far):
    return jnp.concatenate([
        jax.nn.one_hot(route, NUM_ROUTES), state_features(s, K), state_features(x, K), d,
        x_next.ship - s.mothership, x_next.velocity, jnp.stack([reward, fuel]),
        jnp.stack([j / max(n, 1), k / K, cost_so_far[0], cost_so_far[1]])])

  def manager_input(s, h, j, count):
    return jnp.concatenate([jax.lax.stop_gradient(h),
                            jax.lax.stop_gradient(state_features(s, K)),
                            jnp.stack([j / max(n, 1), count / max(n, 1)])])

  def imagine_step(params, s, carry, latest, j, k, route, cost_so_far):
    """One imagination from the node chosen by `route` (ROOT: `s`, LATEST: `latest`)."""
    x = jax.tree.map(lambda a, b: jnp.where(route == ROOT, a, b), s, latest)
    d, thrust = act(params, x, carry[1])
    pred = imagine_with(params, x, thrust)
    x_next = x.replace(ship=pred.ship, velocity=pred.velocity, fuel=x.fuel + pred.fuel,
                       time=x.time + 1)
    reward = reward_of(pred, x.time + 1)
    data = memory_input(route, s, x, d, x_next, reward, pred.fuel, j, k, cost_so_far)
    return memory.apply(params["memory"], carry, data), x_next

  def plan(params, s, carry, k, key, routes_k, in_graph, tau_spent):
    """The imagination steps before external action k: masked scan of n steps."""
    if n == 0:
      empty = jnp.zeros((0,), jnp.int32)
      return carry, (empty, empty, jnp.zeros((0,), bool), jnp.zeros((0, 2))), jnp.int32(0)

    def body(c, inp):
      carry, latest, latest_id, count, done = c
      j, key_j, forced = inp
      logits = manager.apply(params["manager"], manager_input(s, carry[1], j, count))
      mask = allowed & ~done
      mask = jnp.where(config.fixed_budget & ~done, mask.at[ACT].set(False), mask)
      mask = jnp.where(done, jnp.arange(NUM_ROUTES) == ACT, mask)
      dist = distrax.Categorical(logits=jnp.where(mask, logits, _MASKED))
      if routes_k is not None:
        route = forced
      elif in_graph:
        route = sg.sample(f"route_{k}", dist, key_j, estimator="score")
        b = baseline_net.apply(params["baseline"], jnp.concatenate(
            [manager_input(s, carry[1], j, count), jnp.ones(1) * k / K]))[0]
        sg.baseline(f"route_{k}", b)
        sg.entropy_regularizer(f"entropy_{k}", dist, config.entropy_coef)
      else:
        route = dist.sample(seed=key_j)
      route = jnp.where(done, ACT, route).astype(jnp.int32)
      imagining = route != ACT
      spent = tau_spent + config.imagination_cost * count
      new_carry, x_next = imagine_step(params, s, carry, latest, j, k, route,
                                       (s.fuel, spent))
      from_node = jnp.where(route == ROOT, 0, latest_id)
      if in_graph and routes_k is None:
        sg.cost(f"imagination_{k}", config.imagination_cost * imagining)
      keep = lambda a, b: jax.tree.map(lambda u, v: jnp.where(imagining, u, v), a, b)
      carry = keep(new_carry, carry)
      latest = keep(x_next, latest)
      latest_id = jnp.where(imagining, count + 1, latest_id)
      count = count + imagining
      done = done | ~imagining
      return (carry, latest, latest_id, count, done), (
          route, jnp.where(imagining, from_node, -1), imagining, latest.ship)

    xs = (jnp.arange(n, dtype=s.ship.dtype), jax.random.split(key, n),
          jnp.zeros(n, jnp.int32) if routes_k is None else jnp.asarray(routes_k, jnp.int32))
    init = (carry, s, jnp.int32(0), jnp.int32(0), jnp.bool_(False))
    scan = sg.scan if in_graph else jax.lax.scan
    (carry, _, _, count, _), per_step = scan(body, init, xs)
    return carry, per_step, count

  def episode(params, state0, key, routes=None, in_graph=False, record=None):
    _check_state(state0)
    if routes is not None and jnp.shape(routes) != (K, n):
      raise ValueError(f"routes must have shape (num_actions, max_imaginations) = {(K, n)}; "
                       f"got {jnp.shape(routes)}")
    carry = _zero_carry()
    s = state0
    fuels, traces, transitions = [], [], []
    tau_spent = jnp.zeros((), s.ship.dtype)
    for k in range(K):
      key, k_plan, k_env = jax.random.split(key, 3)
      carry, (r_k, from_k, imag_k, ship_k), count = plan(
          params, s, carry, k, k_plan, None if routes is None else routes[k], in_graph,
          tau_spent)
      tau_spent = tau_spent + config.imagination_cost * count
      d, thrust = act(params, s, carry[1])
      # The real step (environment, control noise) with the imagination's Jacobian (SVG).
      _, real, _, _, _, info = env.step_env(k_env, jax.lax.stop_gradient(s),
                                            jax.lax.stop_gradient(thrust), env_params)
      pred = imagine_with(params, s, thrust)
      ship = real.ship + pred.ship - jax.lax.stop_gradient(pred.ship)
      velocity = real.velocity + pred.velocity - jax.lax.stop_gradient(pred.velocity)
      clipped = jnp.clip(thrust, -env_params.max_thrust, env_params.max_thrust)
      fuel_k = ss.fuel(clipped, env_params)
      # The real transition, the imagination's supervised data [P] (as collect_transitions).
      transitions.append(jax.lax.stop_gradient(imagination_lib.Transitions(
          s.ship, s.velocity, s.ship_mass, s.mothership, s.planets, s.masses, clipped,
          real.ship, real.velocity, fuel_k)))
      s_next = real.replace(ship=ship, velocity=velocity, fuel=s.fuel + fuel_k)
      last = k == K - 1
      final = ss.distance_loss(ship, s.mothership, env_params) if last else jnp.zeros(())
      reward = -(fuel_k + final)
      data = memory_input(ACT, s, s, d, s_next, reward, fuel_k, jnp.asarray(n, s.ship.dtype), k,
                          (s_next.fuel, tau_spent))
      carry = memory.apply(params["memory"], carry, data)
      if in_graph:
        sg.cost(f"fuel_{k}", fuel_k)
      fuels.append(fuel_k)
      traces.append((r_k, from_k, imag_k, ship_k, count, thrust, info["distance"]))
      s = s_next
    final = ss.distance_loss(s.ship, s.mothership, env_params)
    if in_graph:
      sg.cost("final_distance", final)
    fuel = sum(fuels)
    trace = Trace(*(jnp.stack(x) for x in zip(*traces)))
    transitions = jax.tree.map(lambda *x: jnp.stack(x), *transitions)
    if record is not None:
      record["transitions"] = transitions
    return Rollout(fuel + final, fuel, final, tau_spent, trace, transitions)

  def rollout(params, state0, key, routes=None) -> Rollout:
    return episode(params, state0, key, routes, in_graph=False)

  def graph(params, state0, key, routes=None, record=None):
    """The episode under `stochastic_graphs`; `record` (a dict, optional) receives the real
    transitions of the run (the surrogate drops the graph's return value) [O]."""
    return episode(params, state0, key, routes, in_graph=True, record=record)

  surrogate = sg.make_surrogate(graph, check_finite=False)

  def loss_terms(params, states0, keys):
    def one(state0, key):
      record = {}
      value, info = surrogate(params, state0, key, record=record)
      task = sum(info.costs[f"fuel_{k}"] for k in range(K)) + info.costs["final_distance"]
      imaginations = sum(jnp.sum(info.values[f"route_{k}"] != ACT) for k in range(K)) if n else 0
      return value + info.baseline_loss, (info.cost, task, imaginations, info.baseline_loss,
                                          record["transitions"])
    values, (costs, task, imaginations, baseline_losses, trs) = jax.vmap(one)(states0, keys)
    trs = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), trs)   # [B K]
    aux = {"total_cost": jnp.mean(costs), "task_loss": jnp.mean(task),
           "imaginations_per_action": jnp.mean(imaginations) / K,
           "baseline_loss": jnp.mean(baseline_losses)}
    if model is None:
      model_loss = jnp.zeros(())
    else:   # [P] the model's own objective, on the real transitions (stopped inputs/targets)
      model_loss, model_aux = model.loss(params["imagination"], trs)
      aux.update({f"model_{k}": v for k, v in model_aux.items()})
    aux["model_loss"] = model_loss
    return jnp.mean(values), model_loss, aux, trs

  def loss(params, states0, keys):
    planner_loss, model_loss, aux, _ = loss_terms(params, states0, keys)
    return planner_loss + model_loss, aux

  return Planner(init, rollout, graph, loss, config, env, env_params, loss_terms, model)


def simulator_imagination(env: ss.Spaceship, env_params: ss.SpaceshipParams
                          ) -> Callable[[ss.SpaceshipState, jax.Array], imagination_lib.Prediction]:
  """The true simulator as an imagination, control noise off: `imagine(state, thrust) ->
  Prediction`. Differentiable (`jax.grad` through `Spaceship.simulate`); the reference of the SVG
  gradient test and an oracle-model ablation."""
  p0 = env_params.replace(control_noise=0.0)
  key = jax.random.PRNGKey(0)

  def imagine(state, thrust):
    imagination_lib.check_inputs(state, thrust, env.num_planets)
    path, v = env.simulate(key, state, thrust, p0)
    spent = ss.fuel(jnp.clip(thrust, -p0.max_thrust, p0.max_thrust), p0)
    return imagination_lib.Prediction(path[-1], v, spent,
                                      ss.distance_loss(path[-1], state.mothership, p0))

  return imagine
