"""IBP's planner on the maze (Pascanu et al. 2017, Sec. 4): the same manager, controller, memory
and strategies as `planner.py`, with discrete actions.

Sources: [P] the paper as issue 18 restates it (a fixed maze with 3 training goals and a held-out
4th; a multi-maze variant; the planner's routes and strategies of Sec. 2); [O] our choice, with
the reason beside it (the maze section's own text was not readable here, see `envs/maze.py`).

- [O] Imagination: the maze's own deterministic step (`Maze.step_env`), a perfect model. The
  maze's transition rule is tiny and known; a learned model would add an error source that the
  maze experiments (held-out goal, layouts) are not about, and no maze model is built yet.
- [P] Routes ACT / ROOT / LATEST and the strategies as in `planner.py`; the controller
  `pi^C(x, h)` is a categorical policy over the 4 moves of the node's state `x`.
- [O] Time: one flat `stochastic_graphs.scan` over ticks, `max_steps x (n + 1)` of them; a tick
  is an imagination or a real move (after `n` imaginations the move is forced; with
  `fixed_budget` exactly `n` imaginations precede every move). After the episode ends every tick
  is masked (routes and actions collapse on one value: log-probability 0, no cost). A flat scan
  keeps exact time-causality and per-tick baselines (`stochastic_graphs` refuses baselines on
  nodes of nested scans).
- [O] Training: REINFORCE for every subgraph. Manager routes and controller actions (imagined and
  real) are score-function nodes (`sg.sample`), costs are `-reward` of each real move and `tau`
  per imagination (`sg.cost`), with learned baselines `b(sg(obs), sg(h), tick)` per node and
  entropy bonuses. Controller and memory learn through `log pi^C(a | x, h)` (h differentiable),
  the manager through `log pi^M(u | sg(h), sg(obs))`. The paper's SVG has no pathwise gradient
  through discrete moves, hence the score function here.
- [O] Memory inputs `d`: route one-hot, the real observation, the node's observation, the move
  one-hot, the predicted agent plane, the predicted reward, the tick's imagination index / n, the
  real step / max_steps and the imagination cost spent.

    planner = make_maze_planner(MazePlannerConfig(max_imaginations=2), env, env_params)
    loss, aux = planner.loss(params, keys [B])        # surrogate + baseline fitting, batch mean
    out = planner.rollout(params, key)                 # one episode: return, steps, imaginations
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg
from agents.ibp import planner as planner_lib
from agents.ibp.planner import (
  ACT,
  ALLOWED_ROUTES,
  LATEST,
  MLP,
  NUM_ROUTES,
  ROOT,
  Memory,
)
from envs import maze as maze_lib

_MASKED = -1e9


@dataclasses.dataclass(frozen=True)
class MazePlannerConfig:
  max_imaginations: int = 2        # [P] imaginations per real move (>= 0)
  strategy: str = "tree"           # [P] one of STRATEGIES
  fixed_budget: bool = False       # [O] True: exactly max_imaginations before every move
  imagination_cost: float = 0.0    # [P] tau per imagination
  entropy_coef: float = 0.01       # [P] entropy bonus of manager and controller (our value)
  memory_size: int = 64            # [O]
  hidden: tuple = (64,)            # [O] MLPs of controller, manager and baselines

  def replace(self, **kwargs) -> "MazePlannerConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: MazePlannerConfig) -> None:
  planner_lib.check_budget_and_costs(config, "real move")


class MazeRollout(NamedTuple):
  episode_return: jax.Array   # () sum of the real rewards
  solved: jax.Array           # bool, a goal reached
  moves: jax.Array            # int32 real moves
  imaginations: jax.Array     # int32 imaginations in the episode
  layout: jax.Array           # int32 the episode's layout index


class MazePlanner(NamedTuple):
  init: Callable
  rollout: Callable
  graph: Callable
  loss: Callable
  config: MazePlannerConfig
  env: Any
  env_params: Any


def make_maze_planner(config: MazePlannerConfig, env: maze_lib.Maze,
                      env_params: maze_lib.MazeParams) -> MazePlanner:
  """The IBP planner on `env` (a `Maze`); see the module docstring."""
  check_config(config)
  if not isinstance(env, maze_lib.Maze):
    raise ValueError(f"env must be an envs.maze.Maze; got {type(env).__name__}")
  env.check_params(env_params)
  n = int(config.max_imaginations)
  T = int(env_params.max_steps)
  ticks = T * (n + 1)
  cells = env.size * env.size
  obs_size = 3 * cells
  allowed = jnp.zeros(NUM_ROUTES, bool).at[jnp.asarray(ALLOWED_ROUTES[config.strategy])].set(True)
  controller = MLP(config.hidden, maze_lib.Maze.num_actions)
  memory = Memory(config.memory_size)
  manager = MLP(config.hidden, NUM_ROUTES)
  baseline_net = MLP(config.hidden, 2)     # one output per node kind (route, action)
  d_size = NUM_ROUTES + 2 * obs_size + 4 + cells + 1 + 3
  m_size = config.memory_size + obs_size + 3

  def obs(state):
    return env.get_obs(state).reshape(-1)

  def init(key):
    kc, km, kg, kb = jax.random.split(key, 4)
    z = jnp.zeros(config.memory_size)
    return {"controller": controller.init(kc, jnp.zeros(obs_size + config.memory_size)),
            "memory": memory.init(km, (z, z), jnp.zeros(d_size)),
            "manager": manager.init(kg, jnp.zeros(m_size)),
            "baseline": baseline_net.init(kb, jnp.zeros(m_size))}

  def episode(params, key, in_graph):
    k_reset, k_run = jax.random.split(key)
    _, s0 = env.reset_env(k_reset, env_params)
    z = jnp.zeros(config.memory_size)

    def body(c, inp):
      carry, s, latest, count, done, spent, ret, moves, total_imag = c
      tick, key_t = inp
      k_route, k_act = jax.random.split(key_t)
      side = jnp.stack([count / max(n, 1), s.time / T, tick / ticks])
      m_in = jnp.concatenate([jax.lax.stop_gradient(carry[1]), obs(s), side])
      act_only = jnp.arange(NUM_ROUTES) == ACT
      mask = jnp.where(config.fixed_budget & (count < n), allowed.at[ACT].set(False), allowed)
      mask = jnp.where(done | (count >= n), act_only, mask)
      route_dist = distrax.Categorical(
          logits=jnp.where(mask, manager.apply(params["manager"], m_in), _MASKED))
      b = baseline_net.apply(params["baseline"], m_in)
      if in_graph:
        route = sg.sample("route", route_dist, k_route, estimator="score")
        sg.baseline("route", b[0])
        sg.entropy_regularizer("route_entropy", route_dist, config.entropy_coef)
      else:
        route = route_dist.sample(seed=k_route)
      imagining = (route != ACT) & ~done
      x = jax.tree.map(lambda a, b_: jnp.where(route == LATEST, b_, a), s, latest)
      logits = controller.apply(params["controller"], jnp.concatenate([obs(x), carry[1]]))
      act_dist = distrax.Categorical(logits=jnp.where(done, jnp.where(
          jnp.arange(4) == 0, 0.0, _MASKED), logits))
      if in_graph:
        action = sg.sample("action", act_dist, k_act, estimator="score")
        sg.baseline("action", b[1])
        sg.entropy_regularizer("action_entropy", act_dist, config.entropy_coef)
      else:
        action = act_dist.sample(seed=k_act)
      _, x_next, reward, terminated, truncated, _ = env.step_env(k_act, x, action, env_params)
      acting = ~imagining & ~done
      data = jnp.concatenate([
          jax.nn.one_hot(jnp.where(done, ACT, route), NUM_ROUTES), obs(s), obs(x),
          jax.nn.one_hot(action, 4), obs(x_next)[cells:2 * cells], reward[None] / T,
          jnp.stack([count / max(n, 1), s.time / T, spent])])
      new_carry = memory.apply(params["memory"], carry, data)
      carry = jax.tree.map(lambda u, v: jnp.where(done, v, u), new_carry, carry)
      if in_graph:
        sg.cost("imagination", config.imagination_cost * imagining)
        sg.cost("move", jnp.where(acting, -reward, 0.0))
      keep = lambda new, old, cond: jax.tree.map(lambda u, v: jnp.where(cond, u, v), new, old)
      latest = keep(x_next, latest, acting | imagining)   # a move makes its result the root
      s = keep(x_next, s, acting)
      done = done | (acting & (terminated | truncated))
      count = jnp.where(acting, 0, count + imagining)
      spent = spent + config.imagination_cost * imagining
      ret = ret + jnp.where(acting, reward, 0.0)
      moves = moves + acting
      total_imag = total_imag + imagining
      return (carry, s, latest, count, done, spent, ret, moves, total_imag), None

    init_c = ((z, z), s0, s0, jnp.int32(0), jnp.bool_(False), jnp.zeros(()), jnp.zeros(()),
              jnp.int32(0), jnp.int32(0))
    xs = (jnp.arange(ticks, dtype=jnp.float32), jax.random.split(k_run, ticks))
    scan = sg.scan if in_graph else jax.lax.scan
    (_, s, _, _, done, _, ret, moves, total_imag), _ = scan(body, init_c, xs)
    solved = s.goals[s.agent[0], s.agent[1]]
    return MazeRollout(ret, solved, moves, total_imag, s.layout)

  def rollout(params, key) -> MazeRollout:
    return episode(params, key, in_graph=False)

  def graph(params, key):
    return episode(params, key, in_graph=True)

  surrogate = sg.make_surrogate(graph, check_finite=False)

  def loss(params, keys):
    def one(key):
      value, info = surrogate(params, key)
      return value + info.baseline_loss, (-jnp.sum(info.costs["move"]),
                                          jnp.sum(info.values["route"] != ACT))
    values, (returns, imag) = jax.vmap(one)(keys)
    return jnp.mean(values), {"return": jnp.mean(returns), "imaginations": jnp.mean(imag)}

  return MazePlanner(init, rollout, graph, loss, config, env, env_params)


class MazeTrainer(NamedTuple):
  """`init(key) -> TrainState`; `chunk(state) -> (state, metrics[updates_per_chunk])`."""
  init: Callable
  chunk: Callable
  planner: MazePlanner


def make_maze_trainer(planner: MazePlanner, learning_rate: float = 1e-3, batch_size: int = 32,
                      updates_per_chunk: int = 100, max_grad_norm: float = 10.0) -> MazeTrainer:
  """[O] Adam on `MazePlanner.loss` (all subgraphs' gradients from one surrogate), fresh episodes
  per update, one `lax.scan` per jitted chunk (as `agents.ibp.train.make_trainer`)."""
  import optax

  from agents.ibp.train import TrainState
  for name, value in (("batch_size", batch_size), ("updates_per_chunk", updates_per_chunk)):
    if isinstance(value, bool) or int(value) != value or value < 1:
      raise ValueError(f"{name} must be a positive integer; got {value!r}")
  opt = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))

  def init(key):
    k_init, key = jax.random.split(key)
    params = planner.init(k_init)
    return TrainState(params, opt.init(params), key, jnp.int32(0))

  def update(state, _):
    key, k_ep = jax.random.split(state.key)
    (loss, aux), grads = jax.value_and_grad(planner.loss, has_aux=True)(
        state.params, jax.random.split(k_ep, batch_size))
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, key, state.updates + 1), dict(aux, loss=loss)

  @jax.jit
  def chunk(state):
    return jax.lax.scan(update, state, None, length=updates_per_chunk)

  return MazeTrainer(init, chunk, planner)


def evaluate(planner: MazePlanner, params, key, num_episodes: int) -> dict:
  """Mean return, solve rate, moves and imaginations per move over `num_episodes` episodes, and
  imaginations per move per layout index (multi-maze: `1 + k` is layout k)."""
  out = jax.jit(jax.vmap(lambda k: planner.rollout(params, k)))(
      jax.random.split(key, num_episodes))
  ret = np.asarray(out.episode_return)
  per_move = np.asarray(out.imaginations) / np.maximum(np.asarray(out.moves), 1)
  layouts = np.asarray(out.layout)
  return {"return": float(ret.mean()), "return_se": float(ret.std() / np.sqrt(len(ret))),
          "solve_rate": float(np.mean(out.solved)), "moves": float(np.mean(out.moves)),
          "imaginations_per_move": float(per_move.mean()),
          "imaginations_per_move_by_layout": {int(v): float(per_move[layouts == v].mean())
                                              for v in np.unique(layouts)}}


__all__ = ["ACT", "LATEST", "ROOT", "MazePlanner", "MazePlannerConfig", "MazeRollout",
           "MazeTrainer", "check_config", "evaluate", "make_maze_planner", "make_maze_trainer"]
