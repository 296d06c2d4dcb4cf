"""A Sokoban solver and the solver-based target policies of the CF-GPS policy-evaluation
experiment (Buesing et al. 2019, Sec. 5: target policies "from near-perfect to near-random").

The solver (host side, numpy). For one room (walls and targets) it computes the exact
distance-to-go d(s) of every state s = (box cells, player cell): the fewest environment steps
(walks and pushes, each one step) that put every box on a target, or infinity where no
sequence does. It is a breadth-first search backwards from the solved states over the whole
state space of the room, run as a layered Bellman recursion on a dense transition table:

    d(s) = 0 where every box is on a target,   d(s) = 1 + min_a d(T(s, a)) otherwise,

with T Sokoban's deterministic move (`envs.sokoban.push`'s rules: a move into a box pushes it if
the cell behind is free floor; no chained pushes; a blocked move stays). Every state of the
room gets its exact d in one pass, so any number of queries on that room (the states a random
behaviour policy visits, every counterfactual rollout in a posterior sample with the same
walls and targets) are table look-ups. That is the reason it runs on the host [O]: the table's
size, C(F, k) box sets times F player cells for F floor cells and k boxes (25 floor cells and
3 boxes: 57,500 states; 40: 395,200), depends on the room, which a jitted fixed-shape search
would have to pad to the worst case (C(64, 3) * 64 = 2.7e6 states for a 10x10 room); the
policies reach it through `jax.pure_callback`, one batched call per step.

The expert's action (`Solver.expert_action`): in a solved or unsolvable state (d = 0 or
infinite) the no-op 0 [O: the expert has nothing useful to do]; otherwise the lowest-numbered
move a in 1 up, 2 down, 3 left, 4 right (PO-Sokoban's action numbers) with
d(T(s, a)) = d(s) - 1. Following it solves the level in exactly d(s0) steps, an optimal
solution; `solve` returns that action sequence. A room with more than `max_floor` floor cells
(only a badly sampled posterior level has one; App. D.3 rooms have about 25) is not tabled
[O: memory]; its states count as unsolvable.

The target policies (`solver_policy(epsilon)`): pi(a | s) = (1 - epsilon) [a = a*(s)] +
epsilon / 5, the expert with epsilon-uniform action noise; epsilon from near 0 (near-perfect)
to 1 (uniformly random, the behaviour policy). The policy sees the true state s_t [O: the
issue's "solver-based policy with action noise"; an observation-history policy would need a
belief over the level]. Why that is legitimate for the estimators:
- IS: the state s_t is a deterministic function of the level U and the actions a_<t, both in
  the logged episode, so pi(a_t | s_t) is computable on logged data, and the trajectory
  density ratio p_pi(U, o, a) / p_mu(U, o, a) = prod_t pi(a_t | s_t) / mu(a_t | h_t) because
  p(U) and the observation kernel cancel. Per-episode IS stays unbiased for such a policy.
- CF-PE / MB-PE: the policy acts on the state of the level it is rolled out in (the inferred
  or prior level), which is exactly what the SCM's policy node does in the model.
The state is tracked in the policy's carry from the level it starts on (`Policy.init_level`),
by the same `envs.sokoban.push` the environment steps with.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from agents.cfgps.episodes import Policy
from envs import sokoban
from envs.sokoban_levels import MOVES, Level

INF = np.iinfo(np.int32).max  # distance of an unsolvable state
NOOP = 0
NUM_ACTIONS = 5  # PO-Sokoban: 0 no-op, 1 up, 2 down, 3 left, 4 right
MAX_FLOOR = 48   # rooms with more floor cells are not tabled (see the module docstring)


class RoomTable:
  """Exact distances-to-go of every state of one room (see the module docstring).

  Attributes:
    cells: int `[F]` flat indices (r * W + c) of the floor cells.
    num_boxes: k.
    dist: int32 `[C(F, k) * F]` d(s) of state s = set_index * F + player (INF where the player
      stands on a box, or the level is unsolvable from s).
    trans: int32 `[C(F, k) * F, 4]` T(s, move) for the four moves (up, down, left, right).
  """

  def __init__(self, walls: np.ndarray, targets: np.ndarray, num_boxes: int):
    walls, targets = np.asarray(walls, bool), np.asarray(targets, bool)
    h, w = walls.shape
    self.shape, self.num_boxes = (h, w), int(num_boxes)
    cells = np.flatnonzero(~walls.reshape(-1))
    self.cells = cells
    f, k = len(cells), self.num_boxes
    self.num_floor = f
    pos = np.full(h * w, -1, np.int64)
    pos[cells] = np.arange(f)
    self._pos = pos
    # Neighbour floor index of each floor cell in each direction (-1: wall or outside).
    nb = np.full((f, 4), -1, np.int64)
    rr, cc = np.divmod(cells, w)
    for a, (dr, dc) in enumerate(MOVES):
      r2, c2 = rr + dr, cc + dc
      inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
      nb[inside, a] = pos[(r2 * w + c2)[inside]]
    if f > 64:
      raise ValueError(f"a room with {f} floor cells does not fit the solver's 64-bit box sets")
    # Box sets as 64-bit masks over the floor cells, numbered in increasing mask order.
    sets = np.array(list(itertools.combinations(range(f), k)), np.int64).reshape(-1, k)
    bits = np.left_shift(np.uint64(1), np.arange(f, dtype=np.uint64))
    masks = np.sort(bits[sets].sum(1, dtype=np.uint64)) if k else np.zeros(1, np.uint64)
    self._masks, self._bits = masks, bits
    m = len(masks)
    n = m * f
    state = np.arange(n)
    player = state % f
    mask = np.repeat(masks, f)
    one = np.uint64(1)

    def has(cells):
      return ((mask >> np.maximum(cells, 0).astype(np.uint64)) & one).astype(bool) & (cells >= 0)

    on_box = has(player)
    trans = np.empty((n, 4), np.int64)
    for a in range(4):
      q = nb[player, a]
      box_q = has(q)
      r = np.where(box_q, nb[np.maximum(q, 0), a], -1)
      push_ok = box_q & (r >= 0) & ~has(r)
      walk_ok = (q >= 0) & ~box_q
      moved_mask = mask ^ bits[np.maximum(q, 0)] ^ bits[np.maximum(r, 0)]
      new_set = np.searchsorted(masks, np.where(push_ok, moved_mask, mask))
      base = np.where(push_ok, new_set * f, state - player)
      trans[:, a] = np.where(push_ok | walk_ok, base + np.maximum(q, 0), state)
    target_idx = pos[np.flatnonzero(targets.reshape(-1))]
    dist = np.full(n, INF, np.int64)
    if len(target_idx) == k and (target_idx >= 0).all():
      solved = (mask == bits[target_idx].sum(dtype=np.uint64)) & ~on_box
      dist[solved] = 0
    # Backward BFS over the reversed move graph (each edge visited once): the predecessors of
    # layer d that have no distance yet form layer d + 1.
    valid = ~on_box
    src = np.repeat(state, 4)
    dst = trans.reshape(-1)
    keep = (src != dst) & valid[src]
    src, dst = src[keep], dst[keep]
    order = np.argsort(dst, kind="stable")
    src = src[order]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))])
    frontier = np.flatnonzero(dist == 0)
    layer = 0
    while frontier.size:
      starts, lens = ptr[frontier], ptr[frontier + 1] - ptr[frontier]
      total = int(lens.sum())
      if total == 0:
        break
      offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
      preds = src[offsets]
      preds = np.unique(preds[dist[preds] == INF])
      layer += 1
      dist[preds] = layer
      frontier = preds
    self.dist = dist.astype(np.int64)
    self.trans = trans

  def state_index(self, boxes: np.ndarray, player: Sequence[int]) -> int:
    """Index of the state (bool `(H, W)` boxes, `(row, col)` player), or -1 when it is not a
    state of this table (a box or the player off the floor, or not k boxes)."""
    h, w = self.shape
    box_cells = self._pos[np.flatnonzero(np.asarray(boxes, bool).reshape(-1))]
    p = self._pos[int(player[0]) * w + int(player[1])]
    if len(box_cells) != self.num_boxes or (box_cells < 0).any() or p < 0:
      return -1
    s = int(np.searchsorted(self._masks, self._bits[box_cells].sum(dtype=np.uint64)))
    return s * self.num_floor + int(p)

  def distance(self, boxes, player) -> float:
    """d(s): the fewest steps to solve from the state, `math.inf` if it cannot be solved."""
    s = self.state_index(boxes, player)
    if s < 0 or self.dist[s] == INF:
      return math.inf
    return int(self.dist[s])

  def expert_action_index(self, s: int) -> int:
    """a*(s) for a state index (see the module docstring)."""
    if s < 0:
      return NOOP
    d = self.dist[s]
    if d == 0 or d == INF:
      return NOOP
    for a in range(4):
      if self.dist[self.trans[s, a]] == d - 1:
        return a + 1
    raise AssertionError("distance table inconsistent")  # cannot happen for a BFS table


class Solver:
  """Tables of the rooms met so far, keyed by (walls, targets, k); `expert_action` memoises
  each queried state. Host side (see the module docstring).

  Args:
    max_floor: rooms with more floor cells are not tabled (their states count as unsolvable).
    max_rooms: tables kept; the oldest is dropped beyond (the memo of actions stays).
  """

  def __init__(self, max_floor: int = MAX_FLOOR, max_rooms: int = 256):
    if max_floor < 1 or max_rooms < 1:
      raise ValueError(f"max_floor and max_rooms must be positive; got {max_floor}, {max_rooms}")
    self.max_floor, self.max_rooms = max_floor, max_rooms
    self._tables: dict[bytes, RoomTable | None] = {}
    self._memo: dict[bytes, int] = {}
    self.rooms_built = 0
    self.rooms_skipped = 0

  def table(self, walls, targets, num_boxes: int) -> RoomTable | None:
    """The room's table (built on first use), None for a room over `max_floor` floor cells
    or without `num_boxes` targets."""
    walls, targets = np.asarray(walls, bool), np.asarray(targets, bool)
    key = walls.tobytes() + targets.tobytes() + bytes([num_boxes])
    if key not in self._tables:
      if (~walls).sum() > self.max_floor or targets.sum() != num_boxes or (targets & walls).any():
        self._tables[key] = None
        self.rooms_skipped += 1
      else:
        if len(self._tables) >= self.max_rooms:
          self._tables.pop(next(iter(self._tables)))
        self._tables[key] = RoomTable(walls, targets, num_boxes)
        self.rooms_built += 1
    return self._tables[key]

  def expert_action(self, walls, targets, boxes, player) -> int:
    """a*(s) of one state (PO-Sokoban action number; see the module docstring)."""
    walls, targets, boxes = (np.asarray(x, bool) for x in (walls, targets, boxes))
    player = np.asarray(player, np.int64)
    key = walls.tobytes() + targets.tobytes() + boxes.tobytes() + player.tobytes()
    action = self._memo.get(key)
    if action is None:
      table = self.table(walls, targets, int(boxes.sum()))
      action = NOOP if table is None else table.expert_action_index(
          table.state_index(boxes, player))
      self._memo[key] = action
    return action

  def expert_actions(self, walls, targets, boxes, player) -> np.ndarray:
    """a*(s) of a batch of states (any leading shape): int32."""
    walls, targets, boxes = (np.asarray(x, bool) for x in (walls, targets, boxes))
    player = np.asarray(player)
    lead = player.shape[:-1]
    h, w = walls.shape[-2:]
    walls, targets, boxes = (x.reshape(-1, h, w) for x in (walls, targets, boxes))
    flat_player = player.reshape(-1, 2)
    out = [self.expert_action(walls[i], targets[i], boxes[i], flat_player[i])
           for i in range(flat_player.shape[0])]
    return np.asarray(out, np.int32).reshape(lead)

  def distance(self, level: Level) -> float:
    """d(s0) of a level: its optimal solution length in steps (`math.inf`: unsolvable)."""
    table = self.table(level.walls, level.targets, int(np.asarray(level.boxes).sum()))
    return math.inf if table is None else table.distance(level.boxes, level.player)

  def solve(self, level: Level) -> list[int] | None:
    """An optimal solution (PO-Sokoban actions 1..4) of a level, None if it has none."""
    d = self.distance(level)
    if d == math.inf:
      return None
    table = self.table(level.walls, level.targets, int(np.asarray(level.boxes).sum()))
    s = table.state_index(level.boxes, level.player)
    actions = []
    for _ in range(int(d)):
      a = table.expert_action_index(s)
      actions.append(a)
      s = int(table.trans[s, a - 1])
    return actions


def state_from_level(level: Level) -> sokoban.SokobanState:
  """The initial `SokobanState` of a level (any room size; `Sokoban.state_from_level`'s)."""
  return sokoban.SokobanState(
      walls=jnp.asarray(level.walls, bool), targets=jnp.asarray(level.targets, bool),
      boxes=jnp.asarray(level.boxes, bool), player=jnp.asarray(level.player, jnp.int32),
      time=jnp.int32(0), level_index=jnp.int32(-1), stream_next=jnp.int32(0),
      stream_index=jnp.int32(-1), stream_dry=jnp.int32(0))


def _expert_callback(solver: Solver):
  def fn(walls, targets, boxes, player):
    return solver.expert_actions(walls, targets, boxes, player)
  return fn


def expert_action(solver: Solver, state: sokoban.SokobanState) -> jax.Array:
  """a*(s) inside jit (`jax.pure_callback` to the host solver; batched under vmap)."""
  out = jax.ShapeDtypeStruct(jnp.shape(state.player)[:-1], jnp.int32)
  return jax.pure_callback(_expert_callback(solver), out, state.walls, state.targets,
                           state.boxes, state.player, vmap_method="broadcast_all")


_MOVES5 = np.concatenate([np.zeros((1, 2), np.int32), MOVES]).astype(np.int32)


def expert_probs(a_star: jax.Array, epsilon: float) -> jax.Array:
  """pi(. | s) `[5]` of the epsilon-noisy expert: (1 - epsilon) on a*, epsilon / 5 on each."""
  return (1.0 - epsilon) * jax.nn.one_hot(a_star, NUM_ACTIONS) + epsilon / NUM_ACTIONS


def solver_policy(solver: Solver, epsilon: float) -> Policy:
  """The epsilon-noisy expert as an `agents.cfgps.Policy` that tracks the true state in its
  carry from the level it starts on (see the module docstring). Exact log-probabilities:
  log((1 - epsilon) [a = a*(s)] + epsilon / 5)."""
  if not isinstance(solver, Solver):
    raise ValueError(f"solver must be an agents.cfgps.solver.Solver; got {type(solver).__name__}")
  if not 0.0 < float(epsilon) <= 1.0:
    raise ValueError(f"epsilon must be in (0, 1] (epsilon = 0 gives probability-0 actions that "
                     f"importance sampling cannot weigh); got {epsilon!r}")
  epsilon = float(epsilon)
  moves = jnp.asarray(_MOVES5)

  def probs(state):
    return expert_probs(expert_action(solver, state), epsilon)

  def act(key, obs, state):
    del obs
    p = probs(state)
    action = jax.random.categorical(key, jnp.log(p)).astype(jnp.int32)
    new_state, _ = sokoban.push(state, moves[action])
    return action, jnp.log(p[action]), new_state

  def log_prob(obs, state, action):
    del obs
    p = probs(state)
    new_state, _ = sokoban.push(state, moves[action])
    return jnp.log(p[action]), new_state

  return Policy(act, log_prob, init=tuple, init_level=state_from_level)
