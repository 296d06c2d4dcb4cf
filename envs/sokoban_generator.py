"""On-device Sokoban level generator of I2A (Weber et al. 2017, App. D.3), in pure JAX.

A level is made in three steps (App. D.3), all inside `jit` with fixed-size arrays:

1. Room topology: a grid of walls is carved by a random walk of `walk_steps` steps (App. D.3:
   1.5 x (height + width)). The walk starts on a random interior cell with a random direction;
   at every step the direction is redrawn with probability 0.35, the walker moves one cell
   (clamped to the interior) and one of five 3x3 masks, drawn uniformly, is emptied around it.
   The outer ring of cells stays wall.
2. Position configuration: the `num_boxes` targets and the player are put on distinct floor
   cells drawn uniformly (the room needs more than `num_boxes + 1` floor cells).
3. Reverse play: starting with every box on its target, a depth-first search over reverse moves
   (eight actions: move, or move and pull the box behind, in each of the four directions, in a
   random order at every node) visits boxes/player configurations, skipping ones already seen,
   down to a depth (time-to-live) of 300 actions. Each configuration is scored
   `box_swaps * sum_i |box_i - target_i|_1` (Manhattan displacement of every box from the
   target it started on; a swap is a pull of a different box than the previous pull), and the
   score is 0 whenever a box or the player stands on a target. The best-scoring configuration
   is the level. Every pull reverses a legal push, so the forward game has a solution (the
   reversed path); `tests/envs/sokoban_generator_test.py` checks that with a host solver.

If a try ends with score 0 (nothing pulled off, or too small a room), a new placement is tried,
and every `num_placements` tries a new room (App. D.3: up to 10 rooms x 10 placements); the
search stops at the first try that scores above 0. A level whose tries all fail is flagged
(`ok = False`, with `score = 0`): `envs.sokoban` then plays a level of its fixed bank instead,
so no unsolvable or already-solved level is ever returned as a valid one.

Where this differs from the sources, and why:
- The depth-first search is an explicit stack of `max_depth + 1` frames in a `lax.while_loop`
  (no recursion). Each loop iteration either pushes the first untried, legal, unseen child of
  the top frame (in the frame's random action order) or pops the frame, so it visits exactly
  the nodes a recursive DFS would, in the same order.
- Seen configurations live in an open-addressing hash table of 32-bit Zobrist hashes with
  `capacity` slots and 8 linear probes (a hash collision, probability about n^2 / 2^33 for n
  configurations, only skips a configuration; it cannot make a level unsolvable).
- The search budget: App. D.3 stops after 1e6 visited configurations (gym-sokoban's
  `depth_first_search` after 3e5). That is seconds per level, far too slow to run at every
  reset, so the budget is `max_visits` (default 1000); the search then reaches the full depth
  once (a random 300-action reverse walk that never revisits a configuration) and explores
  around its deep end. `benchmarks/envs_sokoban_levels.py` measures what that gives.
- gym-sokoban (`room_utils.depth_first_search`) passes the parent's `last_pull` to the
  recursive call, so there every pull counts as a swap; we follow the paper (a swap is a change
  of pulled box; the first pull counts as one, as in gym-sokoban's initialisation), so a level
  whose boxes were moved by one long pull sequence of a single box scores its displacement.
- gym-sokoban uses 1.7 x (height + width) walk steps and 4 tries; we follow App. D.3 (1.5 x and
  10 x 10 tries). gym-sokoban's walk starts at `randint(1, dim - 1)`, which can be a border cell
  before the first clamped step; we start on an interior cell.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs import sokoban_levels
from envs.sokoban_levels import Level

# Moves (up, down, left, right) and the five 3x3 room-carving masks of App. D.3 (the cells
# emptied around the walker): one copy, in `envs.sokoban_levels`.
MOVES, MASKS = sokoban_levels.MOVES, sokoban_levels.MASKS

NUM_ACTIONS = 8  # reverse-play actions: 0..3 move+pull up/down/left/right, 4..7 move only
_PROBES = 8      # linear probes of the seen-configuration hash table
_EMPTY = np.uint32(0)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """Static settings of the generator (App. D.3 defaults unless stated).

  Attributes:
    p_change: probability of redrawing the walk direction at each step (0.35).
    walk_steps: carving steps; None means int(1.5 * (height + width)).
    max_depth: time-to-live of the reverse-play search, in actions (300).
    max_visits: configurations visited per try (the paper's 1e6 is replaced, see the module
      docstring).
    num_rooms, num_placements: tries are `num_rooms * num_placements`, a new room every
      `num_placements` tries (10 x 10).
    capacity: slots of the seen-configuration hash table; None means the power of two at least
      4 * max_visits.
  """
  p_change: float = 0.35
  walk_steps: int | None = None
  max_depth: int = 300
  max_visits: int = 1000
  num_rooms: int = 10
  num_placements: int = 10
  capacity: int | None = None

  def __post_init__(self):
    if not 0.0 <= self.p_change <= 1.0:
      raise ValueError(f"p_change must be in [0, 1], got {self.p_change}")
    for name in ("max_depth", "max_visits", "num_rooms", "num_placements"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.walk_steps is not None and self.walk_steps < 1:
      raise ValueError(f"walk_steps must be >= 1 or None, got {self.walk_steps}")
    if self.capacity is not None and (self.capacity < self.max_visits
                                      or self.capacity & (self.capacity - 1)):
      raise ValueError(f"capacity must be a power of two >= max_visits={self.max_visits}, got "
                       f"{self.capacity}")

  def steps_for(self, height: int, width: int) -> int:
    return int(1.5 * (height + width)) if self.walk_steps is None else self.walk_steps

  @property
  def table_size(self) -> int:
    if self.capacity is not None:
      return self.capacity
    return 1 << int(np.ceil(np.log2(4 * self.max_visits)))


# ----------------------------------------------------------------------------- 1. topology
# The random draws are slices of one `jax.random.bits` call per level (each threefry call is a
# large piece of compiled code), read as integers by modulo (bias below 1e-7) or as uniforms.
def _uniform(bits):
  return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def _room_bits(walk_steps: int) -> int:
  return 3 + 3 * walk_steps


def _room_from_bits(bits, height, width, walk_steps, p_change):
  lo, hi = jnp.array([1, 1]), jnp.array([height - 2, width - 2])
  start = lo + (bits[:2] % jnp.array([height - 2, width - 2], jnp.uint32)).astype(jnp.int32)
  d0 = (bits[2] % 4).astype(jnp.int32)
  turn = _uniform(bits[3:3 + walk_steps]) < p_change
  new_dir = (bits[3 + walk_steps:3 + 2 * walk_steps] % 4).astype(jnp.int32)
  mask_id = (bits[3 + 2 * walk_steps:] % len(MASKS)).astype(jnp.int32)
  moves, masks = jnp.asarray(MOVES), jnp.asarray(MASKS)
  rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]

  def body(carry, draws):
    floor, pos, d = carry
    turn_t, new_t, mask_t = draws
    d = jnp.where(turn_t, new_t, d)
    pos = jnp.clip(pos + moves[d], lo, hi)
    # The mask covers rows pos[0] - 1 .. pos[0] + 1 and the same columns around pos[1].
    dr, dc = rows - pos[0] + 1, cols - pos[1] + 1
    inside = (dr >= 0) & (dr < 3) & (dc >= 0) & (dc < 3)
    floor = floor | (inside & masks[mask_t][jnp.clip(dr, 0, 2), jnp.clip(dc, 0, 2)])
    return (floor, pos, d), None

  init = (jnp.zeros((height, width), bool), start, d0)
  (floor, _, _), _ = jax.lax.scan(body, init, (turn, new_dir, mask_id))
  interior = jnp.zeros((height, width), bool).at[1:-1, 1:-1].set(True)
  return floor & interior


def room_topology(key: jax.Array, height: int, width: int, walk_steps: int,
                  p_change: float = 0.35) -> jax.Array:
  """Floor mask bool `(H, W)` carved by the random walk of 3x3 masks (App. D.3, step 1).

  The walk starts on a uniform interior cell with a uniform direction; each of `walk_steps`
  steps redraws the direction with probability `p_change`, moves one cell (clamped to the
  interior) and empties one of the five `MASKS` (uniform) centred on the new position.
  """
  bits = jax.random.bits(key, (_room_bits(walk_steps),), jnp.uint32)
  return _room_from_bits(bits, height, width, walk_steps, p_change)


# ----------------------------------------------------------------------------- 2. placement
def _place_from_bits(bits, floor, num_boxes):
  width = floor.shape[1]
  priority = jnp.where(floor, _uniform(bits).reshape(floor.shape), -1.0).reshape(-1)
  _, idx = jax.lax.top_k(priority, num_boxes + 1)
  cells = jnp.stack([idx // width, idx % width], axis=-1).astype(jnp.int32)
  enough = jnp.sum(floor) > num_boxes + 1
  return cells[:num_boxes], cells[num_boxes], enough


def place_targets_and_player(key: jax.Array, floor: jax.Array, num_boxes: int):
  """Distinct uniform floor cells for the targets and the player (App. D.3, step 2).

  Returns:
    `(targets, player, enough)`: int32 `(num_boxes, 2)`, int32 `(2,)`, and whether the room has
    more than `num_boxes + 1` floor cells (gym-sokoban's condition; otherwise the cells are
    meaningless and the try fails).
  """
  return _place_from_bits(jax.random.bits(key, (floor.size,), jnp.uint32), floor, num_boxes)


# ----------------------------------------------------------------------------- 3. reverse play
def room_score(boxes: jax.Array, player: jax.Array, targets: jax.Array,
               box_swaps: jax.Array) -> jax.Array:
  """App. D.3's RoomScore: `box_swaps * sum_i |box_i - target_i|_1`, 0 if a box or the player
  stands on a target. Box i started on target i (`boxes`, `targets`: int32 `(N, 2)`)."""
  on = jnp.all(boxes[:, None] == targets[None], -1).any() | jnp.all(player == targets, -1).any()
  displacement = jnp.abs(boxes - targets).sum()
  return jnp.where(on, 0, box_swaps * displacement).astype(jnp.int32)


def reverse_children(floor: jax.Array, boxes: jax.Array, player: jax.Array, last: jax.Array,
                     swaps: jax.Array):
  """The 8 reverse-play children of a configuration (App. D.3: move, or move and pull).

  Action a < 4 moves the player by `MOVES[a]` and pulls the box that was behind it (if any);
  action a >= 4 only moves. A move is legal when the destination is floor without a box.

  Returns:
    `(legal, boxes, player, last, swaps)` with a leading axis of 8: legal bool, boxes int32
    `(8, N, 2)`, player `(8, 2)`, index of the last pulled box (-1 before any pull), swaps.
  """
  h, w = floor.shape
  moves = jnp.asarray(np.concatenate([MOVES, MOVES]))
  pull = jnp.arange(NUM_ACTIONS) < 4
  dest = player + moves
  inside = jnp.all((dest >= 0) & (dest < jnp.array([h, w])), -1)
  dest_c = jnp.clip(dest, 0, jnp.array([h - 1, w - 1]))
  box_at_dest = jnp.all(boxes[None] == dest[:, None], -1).any(-1)
  legal = inside & floor[dest_c[:, 0], dest_c[:, 1]] & ~box_at_dest
  behind = jnp.all(boxes[None] == (player - moves)[:, None], -1)  # (8, N)
  pulls = pull & legal & behind.any(-1)
  pulled = jnp.argmax(behind, -1)
  moved = pulls[:, None] & behind  # (8, N): the box that follows the player
  new_boxes = jnp.where(moved[..., None], player, boxes[None])
  new_swaps = swaps + (pulls & (pulled != last)).astype(jnp.int32)
  new_last = jnp.where(pulls, pulled, last)
  return legal, new_boxes, dest_c, new_last, new_swaps


_FACT8 = math.factorial(NUM_ACTIONS)


def _zobrist(height: int, width: int) -> np.ndarray:
  """Fixed random 32-bit keys `(2, H * W)` for box and player cells (one table per shape)."""
  rng = np.random.default_rng(height * 1000 + width)
  return rng.integers(1, 2**32, size=(2, height * width), dtype=np.uint64).astype(np.uint32)


def _hash(zob, boxes, player, width):
  """Zobrist hash of a configuration (boxes as a set, xor of their cells' keys)."""
  cells = boxes[..., 0] * width + boxes[..., 1]
  return (jnp.bitwise_xor.reduce(zob[0][cells], axis=-1)
          ^ zob[1][player[..., 0] * width + player[..., 1]])


def _mix(x):
  """A 32-bit integer hash (lowbias32), cheap per-node randomness for the action order."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def _order(seed, node):
  """The action order of node `node` (its visit index) in a try with `seed` (int32 `(8,)`).

  A uniform random permutation of the 8 actions: the node's hash, read in the factorial number
  system, picks one of the 8! orders (Lehmer code decoded by repeated selection).
  """
  draw = _mix(seed ^ (node.astype(jnp.uint32) * jnp.uint32(0x9E3779B9)))
  code = draw % jnp.uint32(_FACT8)
  remaining = jnp.arange(NUM_ACTIONS, dtype=jnp.int32)
  order = []
  for i in range(NUM_ACTIONS):
    base = jnp.uint32(math.factorial(NUM_ACTIONS - 1 - i))
    digit = (code // base).astype(jnp.int32)
    code = code % base
    # The digit-th action still unused: remaining is kept sorted with used ones set to 99.
    pick = jnp.sort(remaining)[digit]
    order.append(pick)
    remaining = jnp.where(remaining == pick, 99, remaining)
  return jnp.stack(order)


# The seen-configuration table holds (hash, stamp) pairs; a slot belongs to the current try only
# if its stamp is the try's index, so starting a new try needs no clearing.
def _slots(h, size):
  return ((h[..., None] + jnp.arange(_PROBES, dtype=jnp.uint32))
          & jnp.uint32(size - 1)).astype(jnp.int32)


def _seen(table_h, table_s, h, stamp):
  slots = _slots(h, table_h.shape[0])
  return jnp.any((table_h[slots] == h[..., None]) & (table_s[slots] == stamp), -1)


def _insert(table_h, table_s, h, stamp, do):
  """Records `h` when `do`: a one-slot scatter (dropped otherwise), so no table is copied."""
  slots = _slots(h, table_h.shape[0])
  free = table_s[slots] != stamp
  # With no free slot among the probes the configuration is not recorded (it may be revisited).
  slot = jnp.where(free.any() & do, slots[jnp.argmax(free)], table_h.shape[0])
  return table_h.at[slot].set(h, mode="drop"), table_s.at[slot].set(stamp, mode="drop")


class _Tries(NamedTuple):
  """Per-lane inputs of every try: rooms `(R, H, W)`, targets `(T, N, 2)`, player `(T, 2)`,
  enough `(T,)`, seed uint32 `(T,)`; try t uses room `t // (T // R)`."""
  rooms: jax.Array
  targets: jax.Array
  player: jax.Array
  enough: jax.Array
  seed: jax.Array


class _Lane(NamedTuple):
  """Per-lane loop state: the try, the DFS stack and table, the best configuration."""
  t: jax.Array
  done: jax.Array
  iterations: jax.Array  # loop iterations this lane was searching in (all its tries)
  depth: jax.Array
  visits: jax.Array
  f_player: jax.Array   # (D + 1, 2)
  f_boxes: jax.Array    # (D + 1, N, 2)
  f_last: jax.Array     # (D + 1,)
  f_swaps: jax.Array    # (D + 1,)
  f_next: jax.Array     # (D + 1,)
  f_id: jax.Array       # (D + 1,), the node's visit index (its action order's seed)
  table_h: jax.Array    # (C,) uint32
  table_s: jax.Array    # (C,) int32
  best_score: jax.Array
  best_boxes: jax.Array
  best_player: jax.Array


def _start_try(lane: _Lane, tries: _Tries, t, do, zob, width) -> _Lane:
  """Lane `lane` starts try `t` where `do` (frame 0 = boxes on targets; masked writes only)."""
  targets, player, enough = tries.targets[t], tries.player[t], tries.enough[t]
  row = jnp.where(do, 0, lane.f_next.shape[0])  # out of range: the write is dropped
  table_h, table_s = _insert(lane.table_h, lane.table_s, _hash(zob, targets, player, width), t,
                             do)
  pick = lambda new, old: jnp.where(do, new, old)  # noqa: E731
  return lane._replace(
      t=pick(t, lane.t), depth=pick(jnp.where(enough, 0, -1), lane.depth),
      visits=pick(1, lane.visits),
      f_player=lane.f_player.at[row].set(player, mode="drop"),
      f_boxes=lane.f_boxes.at[row].set(targets, mode="drop"),
      f_last=lane.f_last.at[row].set(-1, mode="drop"),
      f_swaps=lane.f_swaps.at[row].set(0, mode="drop"),
      f_next=lane.f_next.at[row].set(0, mode="drop"),
      f_id=lane.f_id.at[row].set(0, mode="drop"),
      table_h=table_h, table_s=table_s,
      best_score=pick(0, lane.best_score), best_boxes=pick(targets, lane.best_boxes),
      best_player=pick(player, lane.best_player))


def _lane_step(lane: _Lane, tries: _Tries, zob, max_depth, max_visits, per_room) -> _Lane:
  """One DFS iteration of one lane (push the next child or pop), then the try's end if due."""
  t, depth = lane.t, lane.depth
  max_tries = tries.seed.shape[0]
  active = ~lane.done & (depth >= 0) & (lane.visits < max_visits)
  floor = tries.rooms[t // per_room] & tries.enough[t]
  targets, width = tries.targets[t], floor.shape[1]
  d = jnp.clip(depth, 0, max_depth)
  legal, boxes, players, lasts, swaps = reverse_children(
      floor, lane.f_boxes[d], lane.f_player[d], lane.f_last[d], lane.f_swaps[d])
  hashes = _hash(zob, boxes, players, width)
  ok = legal & ~_seen(lane.table_h, lane.table_s, hashes, t) & (depth < max_depth)
  order = _order(tries.seed[t], lane.f_id[d])
  ok_in_order = ok[order] & (jnp.arange(NUM_ACTIONS) >= lane.f_next[d])
  push = active & ok_in_order.any()
  pos = jnp.argmax(ok_in_order)
  a = order[pos]
  # The parent remembers where to resume; the child (if pushed) becomes frame depth + 1.
  parent_row = jnp.where(active, d, max_depth + 1)
  child_row = jnp.where(push, d + 1, max_depth + 1)
  table_h, table_s = _insert(lane.table_h, lane.table_s, hashes[a], t, push)
  score = room_score(boxes[a], players[a], targets, swaps[a])
  better = push & (score > lane.best_score)
  pick = lambda new, old: jnp.where(better, new, old)  # noqa: E731
  lane = lane._replace(
      depth=jnp.where(active, jnp.where(push, depth + 1, depth - 1), depth),
      visits=lane.visits + push, iterations=lane.iterations + active,
      f_player=lane.f_player.at[child_row].set(players[a], mode="drop"),
      f_boxes=lane.f_boxes.at[child_row].set(boxes[a], mode="drop"),
      f_last=lane.f_last.at[child_row].set(lasts[a], mode="drop"),
      f_swaps=lane.f_swaps.at[child_row].set(swaps[a], mode="drop"),
      f_next=lane.f_next.at[parent_row].set(jnp.where(push, pos + 1, NUM_ACTIONS), mode="drop")
      .at[child_row].set(0, mode="drop"),
      f_id=lane.f_id.at[child_row].set(lane.visits, mode="drop"),
      table_h=table_h, table_s=table_s,
      best_score=pick(score, lane.best_score), best_boxes=pick(boxes[a], lane.best_boxes),
      best_player=pick(players[a], lane.best_player))
  # End of a try: success, or the next try (a new placement, every `per_room` a new room).
  finished = ~lane.done & ((lane.depth < 0) | (lane.visits >= max_visits))
  success = finished & (lane.best_score > 0)
  restart = finished & ~success & (t + 1 < max_tries)
  lane = lane._replace(done=lane.done | (finished & ~restart))
  return _start_try(lane, tries, jnp.minimum(t + 1, max_tries - 1), restart, zob, width)


def _make_tries(key, height, width, num_boxes, config: GeneratorConfig) -> _Tries:
  """Rooms and placements of every try of one lane, drawn up front (cheap beside the search)."""
  rooms_n, per_room = config.num_rooms, config.num_placements
  tries_n, cells = rooms_n * per_room, height * width
  steps = config.steps_for(height, width)
  room_n = _room_bits(steps)
  bits = jax.random.bits(key, (rooms_n * room_n + tries_n * cells + tries_n,), jnp.uint32)
  room_bits = bits[:rooms_n * room_n].reshape(rooms_n, room_n)
  place_bits = bits[rooms_n * room_n:-tries_n].reshape(tries_n, cells)
  rooms = jax.vmap(lambda b: _room_from_bits(b, height, width, steps, config.p_change))(
      room_bits)
  targets, player, enough = jax.vmap(lambda b, f: _place_from_bits(b, f, num_boxes))(
      place_bits, jnp.repeat(rooms, per_room, axis=0))
  return _Tries(rooms, targets, player, enough, bits[-tries_n:])


def _init_lane(tries: _Tries, max_depth, capacity, zob, done) -> _Lane:
  n = tries.targets.shape[1]
  rows = max_depth + 1
  lane = _Lane(
      t=jnp.int32(0), done=done, iterations=jnp.int32(0), depth=jnp.int32(-1), visits=jnp.int32(0),
      f_player=jnp.zeros((rows, 2), jnp.int32), f_boxes=jnp.zeros((rows, n, 2), jnp.int32),
      f_last=jnp.zeros((rows,), jnp.int32), f_swaps=jnp.zeros((rows,), jnp.int32),
      f_next=jnp.zeros((rows,), jnp.int32), f_id=jnp.zeros((rows,), jnp.int32),
      table_h=jnp.zeros((capacity,), jnp.uint32), table_s=jnp.full((capacity,), -1, jnp.int32),
      best_score=jnp.int32(0), best_boxes=tries.targets[0], best_player=tries.player[0])
  return _start_try(lane, tries, jnp.int32(0), ~done, zob, tries.rooms.shape[2])


def _run_lanes(tries: _Tries, needed, config: GeneratorConfig):
  """The batched search: one `while_loop` (condition: any lane not done) over vmapped lanes.

  The loop condition is not batched and every write of a lane is a masked scatter, so an
  iteration costs the same whether or not a lane is still searching (vmapping a per-lane
  `while_loop` instead would select the whole carry, tables included, at every iteration).
  """
  height, width = tries.rooms.shape[-2:]
  zob = jnp.asarray(_zobrist(height, width))
  per_room = config.num_placements
  lanes = jax.vmap(lambda tr, nd: _init_lane(tr, config.max_depth, config.table_size, zob,
                                             ~nd))(tries, needed)
  step = jax.vmap(lambda ln, tr: _lane_step(ln, tr, zob, config.max_depth, config.max_visits,
                                            per_room))
  return jax.lax.while_loop(lambda ln: jnp.any(~ln.done), lambda ln: step(ln, tries), lanes)


def _result(lane: _Lane, tries: _Tries, per_room):
  floor = tries.rooms[lane.t // per_room]
  level = _to_level(floor, tries.targets[lane.t], lane.best_boxes, lane.best_player)
  ok = lane.best_score > 0
  return level, ok, {"score": lane.best_score, "tries": lane.t + 1, "visits": lane.visits,
                     "iterations": lane.iterations}


def _to_level(floor, targets, boxes, player) -> Level:
  h, w = floor.shape
  grid = lambda cells: jnp.zeros((h, w), bool).at[cells[:, 0], cells[:, 1]].set(True)  # noqa: E731
  return Level(walls=~floor, targets=grid(targets), boxes=grid(boxes),
               player=player.astype(jnp.int32))


def _generate_lanes(keys, needed, height, width, num_boxes, config: GeneratorConfig):
  tries = jax.vmap(lambda k: _make_tries(k, height, width, num_boxes, config))(keys)
  lanes = _run_lanes(tries, needed, config)
  return jax.vmap(lambda ln, tr: _result(ln, tr, config.num_placements))(lanes, tries)


def _check(height, width, num_boxes):
  if height < 3 or width < 3 or num_boxes < 1:
    raise ValueError(f"need height, width >= 3 and num_boxes >= 1, got {height}, {width}, "
                     f"{num_boxes}")


@functools.lru_cache(maxsize=None)
def _generator(height, width, num_boxes, config: GeneratorConfig):
  """`generate` for one static configuration, with a batching rule (see `generate`)."""

  @jax.custom_batching.custom_vmap
  def gen(key):
    out = _generate_lanes(key[None], jnp.ones((1,), bool), height, width, num_boxes, config)
    return jax.tree.map(lambda x: x[0], out)

  @gen.def_vmap
  def _rule(axis_size, in_batched, keys):  # noqa: ARG001
    out = _generate_lanes(keys, jnp.ones(keys.shape[:1], bool), height, width, num_boxes,
                          config)
    return out, jax.tree.map(lambda _: True, out)

  return gen


@functools.lru_cache(maxsize=None)
def _generator_where(height, width, num_boxes, config: GeneratorConfig):
  """`generate_where` for one static configuration, with its batching rule."""

  def run(keys, needed):
    def search():
      out = _generate_lanes(keys, needed, height, width, num_boxes, config)
      zero = lambda x: jnp.where(needed.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0)  # noqa: E731
      return jax.tree.map(zero, out)

    shapes = jax.eval_shape(search)
    empty = lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731
    # No lane needed: skip the search and the tries' rooms altogether (a real branch, since
    # `any` is not batched here).
    return jax.lax.cond(jnp.any(needed), search, empty)

  @jax.custom_batching.custom_vmap
  def gen(key, needed):
    return jax.tree.map(lambda x: x[0], run(key[None], needed[None]))

  @gen.def_vmap
  def _rule(axis_size, in_batched, key, needed):
    key_b, needed_b = in_batched
    keys = key if key_b else jnp.broadcast_to(key, (axis_size,) + key.shape)
    needed = needed if needed_b else jnp.broadcast_to(needed, (axis_size,))
    out = run(keys, needed)
    return out, jax.tree.map(lambda _: True, out)

  return gen


def generate_where(key: jax.Array, needed: jax.Array, height: int = 10, width: int = 10,
                   num_boxes: int = 4, config: GeneratorConfig = GeneratorConfig()):
  """`generate` where `needed` (bool scalar) is True; otherwise an all-zero level, `ok = False`.

  Under `jax.vmap` only the needed lanes search (the others start finished), and a batch with no
  needed lane costs one untaken branch; this is how `envs.sokoban` generates a level at each
  automatic reset without paying for the environments that did not reset.
  """
  _check(height, width, num_boxes)
  return _generator_where(height, width, num_boxes, config)(key, jnp.asarray(needed, bool))


def generate(key: jax.Array, height: int = 10, width: int = 10, num_boxes: int = 4,
             config: GeneratorConfig = GeneratorConfig()):
  """One level by App. D.3's recipe (jit- and vmap-able; sizes and config are static).

  Under `jax.vmap` over keys the batch runs as one search loop whose lanes are the levels
  (`jax.custom_batching`), instead of vmapping a per-level loop.

  Args:
    key: PRNG key (`jax.random.PRNGKey`).
    height, width: grid size including the outer wall ring (10 x 10 in I2A).
    num_boxes: boxes = targets (4 in I2A).
    config: the generator's settings.

  Returns:
    `(level, ok, info)`: a `Level` (bool grids `(H, W)`, player int32 `(2,)`); `ok` is True when
    a try scored above 0 (the level is then solvable, with every box off target); `info` has
    the RoomScore `score`, the number of `tries` used and the `visits` of the last try. When
    `ok` is False the level must not be played (`envs.sokoban` falls back to its bank).
  """
  _check(height, width, num_boxes)
  return _generator(height, width, num_boxes, config)(key)


@functools.partial(jax.jit, static_argnames=("height", "width", "num_boxes", "config"))
def generate_batch(keys: jax.Array, height: int = 10, width: int = 10, num_boxes: int = 4,
                   config: GeneratorConfig = GeneratorConfig()):
  """`generate` over a batch of keys `(B, 2)` (jitted once per configuration)."""
  _check(height, width, num_boxes)
  return _generate_lanes(keys, jnp.ones(keys.shape[:1], bool), height, width, num_boxes, config)


@functools.lru_cache(maxsize=None)
def _generator_in_batches(height, width, num_boxes, config: GeneratorConfig, batch: int):
  """`generate_in_batches` for one static configuration and batch, with its batching rule."""

  def search(keys):  # one batched search of `batch` lanes
    return _generate_lanes(keys, jnp.ones(keys.shape[:1], bool), height, width, num_boxes,
                           config)

  @jax.custom_batching.custom_vmap
  def gen(keys):
    n = keys.shape[0]
    if n == batch:
      return search(keys)
    out = jax.lax.map(search, keys.reshape((n // batch, batch) + keys.shape[1:]))
    return jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), out)

  @gen.def_vmap
  def _rule(axis_size, in_batched, keys):
    if not in_batched[0]:  # the same keys in every lane: one generation, broadcast
      out = gen(keys)
      return out, jax.tree.map(lambda _: False, out)
    # Every lane's keys in one sequence of searches (nested vmaps flatten one at a time).
    n = keys.shape[1]
    out = gen(keys.reshape((axis_size * n,) + keys.shape[2:]))
    out = jax.tree.map(lambda x: x.reshape((axis_size, n) + x.shape[1:]), out)
    return out, jax.tree.map(lambda _: True, out)

  return gen


def generate_in_batches(keys: jax.Array, batch: int, height: int = 10, width: int = 10,
                        num_boxes: int = 4, config: GeneratorConfig = GeneratorConfig()):
  """`generate` over keys `(N, 2)`, searched `batch` lanes at a time (`N % batch == 0`).

  A batched search runs as long as its slowest lane, so on a CPU, where every lane costs time,
  searches of about 64 lanes give the most levels/s and an accelerator wants large ones
  (envs/README.md). Level i depends only on `keys[i]`, so `batch` changes the speed, not the
  levels.

  Under `jax.vmap` (for example over the seeds of a training run, each refilling its own level
  stream) the keys of every lane are flattened into one sequence of `batch`-lane searches:
  without this rule, vmapping the search's `while_loop` gives it a batched condition, and XLA
  then selects the whole search state, hash tables included, at every iteration (8.7x slower
  A2C chunks with three seeds, session 12).

  Returns `(levels, ok, info)` with a leading axis `N`, as `generate_batch`.
  """
  _check(height, width, num_boxes)
  n = keys.shape[0] if keys.ndim else 0
  if not isinstance(batch, int) or batch < 1 or n % batch or n == 0:
    raise ValueError(f"batch must be a positive divisor of the number of keys ({n}), got "
                     f"{batch!r}")
  return _generator_in_batches(height, width, num_boxes, config, batch)(keys)


def reverse_play(key: jax.Array, floor: jax.Array, targets: jax.Array, player: jax.Array,
                 max_depth: int = 300, max_visits: int = 1000):
  """The reverse-play search of one given room and placement (App. D.3, step 3).

  Args:
    key: PRNG key (the random action order at every node).
    floor: bool `(H, W)`.
    targets: int32 `(N, 2)`, where the boxes start.
    player: int32 `(2,)`.
    max_depth: time-to-live: configurations up to this many actions from the start are visited.
    max_visits: the search stops after visiting this many configurations (the start included).

  Returns:
    `(score, boxes, player, visits)`: the best RoomScore, its boxes int32 `(N, 2)` (box i
    started on target i), its player, and the number of configurations visited.
  """
  config = GeneratorConfig(max_depth=max_depth, max_visits=max_visits, num_rooms=1,
                           num_placements=1)
  targets, player = jnp.asarray(targets, jnp.int32), jnp.asarray(player, jnp.int32)
  tries = _Tries(rooms=jnp.asarray(floor, bool)[None, None], targets=targets[None, None],
                 player=player[None, None], enough=jnp.ones((1, 1), bool),
                 seed=jax.random.bits(key, (1, 1), jnp.uint32))
  lane = jax.tree.map(lambda x: x[0], _run_lanes(tries, jnp.ones((1,), bool), config))
  return lane.best_score, lane.best_boxes, lane.best_player, lane.visits


def generate_bank(key: jax.Array, num_levels: int, height: int = 10, width: int = 10,
                  num_boxes: int = 4, config: GeneratorConfig = GeneratorConfig(),
                  batch: int = 256) -> Level:
  """`num_levels` valid levels: level i comes from key `fold_in(key, i)` (failed ones skipped).

  A host loop over fixed-size batches of `generate_batch`; deterministic given `key` whatever
  `batch` is.
  """
  if num_levels < 1:
    raise ValueError(f"num_levels must be >= 1, got {num_levels}")
  found, total, start = [], 0, 0
  while total < num_levels:
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(start, start + batch))
    levels, ok, _ = generate_batch(keys, height, width, num_boxes, config)
    ok = np.asarray(ok)
    found.append(jax.tree.map(lambda x: np.asarray(x)[ok], levels))
    total += int(ok.sum())
    start += batch
    if total == 0 and start >= 16 * batch:
      raise ValueError(f"no valid {height}x{width} level with {num_boxes} boxes in {start} "
                       "generations; use fewer boxes or a larger grid")
  bank = jax.tree.map(lambda *xs: np.concatenate(xs)[:num_levels], *found)
  return Level(*(jnp.asarray(x) for x in (bank.walls, bank.targets, bank.boxes, bank.player)))
