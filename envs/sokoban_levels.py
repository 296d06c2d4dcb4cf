"""Sokoban levels: representation, validation, text files, and generation by reverse play.

A level is a `Level` of boolean grids (walls, targets, boxes) and the player's `(row, col)`; a
level bank is the same dataclass with a leading axis. Generation follows the recipe used for the
I2A levels (Weber et al. 2017, App. D; Racaniere et al.'s gym-sokoban): carve a room by a random
walk of 3x3 masks, put the boxes on their targets, then play backwards, the player *pulling*
boxes. Every pull is the reverse of a legal push, so the forward game from any reached state has
a solution: the reversed path. Among the states visited we keep the one whose boxes have moved
furthest from their targets (all boxes off target), over several candidate rooms.

This module's generator is a quick random reverse walk (PO-Sokoban's default bank); the I2A
recipe itself (depth-first reverse play scored by RoomScore) is `envs.sokoban_generator`.
`solve_level` is a host-side A* solver (fewest steps), used by the tests and the benchmark to
check that generated levels are solvable.

Text files use the Boxoban format: `#` wall, space floor, `.` target, `$` box, `*` box on target,
`@` player, `+` player on target, levels separated by lines starting with `;` or by blank lines.
"""
from __future__ import annotations

import functools
import heapq
import pathlib

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

# Moves as (row, col) offsets: up, down, left, right.
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)

# The room-carving masks (3x3) of I2A App. D.3 and gym-sokoban, centred on the walker.
MASKS = np.array([
    [[0, 0, 0], [1, 1, 1], [0, 0, 0]],
    [[0, 1, 0], [0, 1, 0], [0, 1, 0]],
    [[0, 0, 0], [1, 1, 0], [0, 1, 0]],
    [[0, 0, 0], [1, 1, 0], [1, 1, 0]],
    [[0, 0, 0], [0, 1, 1], [0, 1, 0]],
], bool)


@flax.struct.dataclass
class Level:
  """One level (or a bank, with a leading axis on every field).

  Attributes:
    walls: bool `(..., H, W)`.
    targets: bool `(..., H, W)`.
    boxes: bool `(..., H, W)`, the boxes' initial cells.
    player: int32 `(..., 2)`, the player's initial `(row, col)`.
  """
  walls: jax.Array
  targets: jax.Array
  boxes: jax.Array
  player: jax.Array

  @property
  def num_levels(self) -> int:
    return 1 if self.walls.ndim == 2 else self.walls.shape[0]

  def __getitem__(self, i) -> "Level":
    return jax.tree.map(lambda x: x[i], self)


# ----------------------------------------------------------------------------- validation
def _flood(free: np.ndarray, start) -> np.ndarray:
  """Cells of `free` reachable from `start` by 4-neighbour moves (numpy, host side)."""
  h, w = free.shape
  seen = np.zeros_like(free, bool)
  stack = [tuple(int(v) for v in start)]
  while stack:
    r, c = stack.pop()
    if not (0 <= r < h and 0 <= c < w) or seen[r, c] or not free[r, c]:
      continue
    seen[r, c] = True
    stack += [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]
  return seen


def validate_level(walls, targets, boxes, player, name: str = "level") -> None:
  """Raises ValueError naming `name` if the level breaks a rule of the game.

  Rules: one player on a free cell; at least one box; no box or target inside a wall; no more
  boxes than targets; the walls close the room (the player cannot walk off the grid's edge).
  """
  walls, targets, boxes = (np.asarray(a, bool) for a in (walls, targets, boxes))
  player = np.asarray(player)
  if walls.ndim != 2 or targets.shape != walls.shape or boxes.shape != walls.shape:
    raise ValueError(f"{name}: walls, targets and boxes must be 2-D grids of one shape, got "
                     f"{walls.shape}, {targets.shape}, {boxes.shape}")
  h, w = walls.shape
  if player.shape != (2,) or not (0 <= player[0] < h and 0 <= player[1] < w):
    raise ValueError(f"{name}: the level has no player (player={player.tolist()})")
  r, c = int(player[0]), int(player[1])
  if walls[r, c] or boxes[r, c]:
    raise ValueError(f"{name}: the player stands on a wall or a box at {(r, c)}")
  if np.any(boxes & walls) or np.any(targets & walls):
    raise ValueError(f"{name}: a box or target lies inside a wall")
  nb, nt = int(boxes.sum()), int(targets.sum())
  if nb == 0:
    raise ValueError(f"{name}: the level has no box")
  if nb > nt:
    raise ValueError(f"{name}: more boxes ({nb}) than targets ({nt})")
  reach = _flood(~walls, (r, c))
  edge = np.zeros_like(reach)
  edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
  if np.any(reach & edge):
    raise ValueError(f"{name}: the walls do not close the room (the player can reach the "
                     "grid's edge)")


def make_bank(walls, targets, boxes, player, name: str = "levels") -> Level:
  """Validated level bank from stacked arrays `(N, H, W)` x3 and `(N, 2)`."""
  walls, targets, boxes = (np.asarray(a, bool) for a in (walls, targets, boxes))
  player = np.asarray(player, np.int32)
  if walls.ndim != 3 or player.shape != (walls.shape[0], 2):
    raise ValueError(f"{name}: expected walls/targets/boxes (N, H, W) and player (N, 2), got "
                     f"{walls.shape} and {player.shape}")
  for i in range(walls.shape[0]):
    validate_level(walls[i], targets[i], boxes[i], player[i], name=f"{name}[{i}]")
  return Level(jnp.asarray(walls), jnp.asarray(targets), jnp.asarray(boxes), jnp.asarray(player))


# ----------------------------------------------------------------------------- text files
_CHARS = {"#": (1, 0, 0, 0), " ": (0, 0, 0, 0), ".": (0, 1, 0, 0), "$": (0, 0, 1, 0),
          "*": (0, 1, 1, 0), "@": (0, 0, 0, 1), "+": (0, 1, 0, 1), "_": (0, 0, 0, 0)}


def parse_level(text: str, name: str = "level") -> Level:
  """Level from Sokoban text (one row per line). Validated; raises ValueError on bad input."""
  rows = [line.rstrip("\n") for line in text.splitlines() if line.strip("\n") != ""]
  if not rows:
    raise ValueError(f"{name}: empty level text")
  h, w = len(rows), max(len(r) for r in rows)
  grid = np.zeros((h, w, 4), bool)
  for i, row in enumerate(rows):
    for j, ch in enumerate(row.ljust(w)):
      if ch not in _CHARS:
        raise ValueError(f"{name}: unknown character {ch!r} at row {i}, column {j}; expected "
                         f"one of {sorted(_CHARS)}")
      grid[i, j] = _CHARS[ch]
  players = np.argwhere(grid[..., 3])
  if len(players) == 0:
    raise ValueError(f"{name}: the level has no player ('@' or '+')")
  if len(players) > 1:
    raise ValueError(f"{name}: expected exactly one player ('@' or '+'), found {len(players)}")
  walls, targets, boxes = grid[..., 0], grid[..., 1], grid[..., 2]
  validate_level(walls, targets, boxes, players[0], name)
  return Level(jnp.asarray(walls), jnp.asarray(targets), jnp.asarray(boxes),
               jnp.asarray(players[0], jnp.int32))


def format_level(level: Level) -> str:
  """Sokoban text of one level (inverse of `parse_level`)."""
  walls, targets, boxes = (np.asarray(a, bool) for a in (level.walls, level.targets, level.boxes))
  pr, pc = (int(v) for v in np.asarray(level.player))
  lines = []
  for i in range(walls.shape[0]):
    row = []
    for j in range(walls.shape[1]):
      if walls[i, j]:
        row.append("#")
      elif (i, j) == (pr, pc):
        row.append("+" if targets[i, j] else "@")
      elif boxes[i, j]:
        row.append("*" if targets[i, j] else "$")
      else:
        row.append("." if targets[i, j] else " ")
    lines.append("".join(row))
  return "\n".join(lines)


def parse_levels(text: str, name: str = "levels") -> Level:
  """Level bank from Boxoban-format text; all levels must share one grid shape."""
  blocks, current = [], []
  for line in text.splitlines():
    if line.startswith(";") or line.strip() == "":
      if current:
        blocks.append("\n".join(current))
      current = []
    else:
      current.append(line)
  if current:
    blocks.append("\n".join(current))
  if not blocks:
    raise ValueError(f"{name}: no level found")
  levels = [parse_level(b, name=f"{name}[{i}]") for i, b in enumerate(blocks)]
  shapes = {lv.walls.shape for lv in levels}
  if len(shapes) != 1:
    raise ValueError(f"{name}: levels must share one grid shape, found {sorted(shapes)}")
  return jax.tree.map(lambda *xs: jnp.stack(xs), *levels)


def load_levels(path) -> Level:
  """Level bank from a Boxoban-format text file (validated; ValueError on a bad level)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"path: no level file at {path}")
  return parse_levels(path.read_text(), name=str(path))


def save_levels(path, bank: Level) -> None:
  """Writes a level bank as Boxoban-format text (`; i` header before each level)."""
  bank = jax.tree.map(np.asarray, bank)
  if bank.walls.ndim == 2:
    bank = jax.tree.map(lambda x: x[None], bank)
  parts = [f"; {i}\n{format_level(bank[i])}\n" for i in range(bank.num_levels)]
  pathlib.Path(path).write_text("\n".join(parts))


# ----------------------------------------------------------------------------- generation
def _carve_room(key, height, width, walk_steps):
  """Floor mask `(H, W)` carved by a random walk of 3x3 masks inside the 1-cell wall border."""
  k_start, k_walk = jax.random.split(key)
  start = jax.random.randint(k_start, (2,), 1, jnp.array([height - 1, width - 1]))
  masks = jnp.asarray(MASKS)

  def body(carry, k):
    floor, pos, d = carry
    k_turn, k_dir, k_mask = jax.random.split(k, 3)
    d = jnp.where(jax.random.uniform(k_turn) < 0.35, jax.random.randint(k_dir, (), 0, 4), d)
    pos = jnp.clip(pos + jnp.asarray(MOVES)[d], 1, jnp.array([height - 2, width - 2]))
    mask = masks[jax.random.randint(k_mask, (), 0, len(MASKS))]
    padded = jnp.pad(floor, 1)
    window = jax.lax.dynamic_slice(padded, (pos[0], pos[1]), (3, 3)) | mask
    floor = jax.lax.dynamic_update_slice(padded, window, (pos[0], pos[1]))[1:-1, 1:-1]
    return (floor, pos, d), None

  floor = jnp.zeros((height, width), bool).at[start[0], start[1]].set(True)
  (floor, _, _), _ = jax.lax.scan(body, (floor, start, jnp.int32(0)),
                                  jax.random.split(k_walk, walk_steps))
  interior = jnp.zeros((height, width), bool).at[1:-1, 1:-1].set(True)
  return floor & interior


def _reverse_play(key, floor, box_pos, player, reverse_steps):
  """Random reverse play (moves and pulls); returns the best state seen and its score.

  Score: total Manhattan distance of the boxes from their own targets, 0 unless every box is off
  target (a level with a box already home is too easy, one with all home is solved).
  """
  height, width = floor.shape
  targets_pos = box_pos
  moves = jnp.asarray(MOVES)

  def occupied(bpos, cell):
    return jnp.any(jnp.all(bpos == cell, axis=-1))

  def free(bpos, cell):
    inside = jnp.all((cell >= 0) & (cell < jnp.array([height, width])))
    return inside & floor[cell[0], cell[1]] & ~occupied(bpos, cell)

  def score_of(bpos):
    on_target = jnp.any(jnp.all(bpos[:, None] == targets_pos[None], -1), -1)
    dist = jnp.abs(bpos - targets_pos).sum()
    return jnp.where(jnp.any(on_target), 0, dist)

  def body(carry, k):
    bpos, p, best = carry
    k_dir, k_pull = jax.random.split(k)
    d = moves[jax.random.randint(k_dir, (), 0, 4)]
    dest = p + d
    can_move = free(bpos, dest)
    behind = p - d
    pull = can_move & occupied(bpos, behind) & (jax.random.uniform(k_pull) < 0.8)
    is_behind = jnp.all(bpos == behind, axis=-1)[:, None]
    bpos = jnp.where(pull & is_behind, p, bpos)
    p = jnp.where(can_move, dest, p)
    s = score_of(bpos)
    better = s > best[0]
    best = jax.tree.map(lambda new, old: jnp.where(better, new, old), (s, bpos, p), best)
    return (bpos, p, best), None

  init_best = (jnp.int32(0), box_pos, player)
  (_, _, best), _ = jax.lax.scan(body, (box_pos, player, init_best),
                                 jax.random.split(key, reverse_steps))
  return best


def _candidate(key, height, width, num_boxes, walk_steps, reverse_steps):
  k_room, k_place, k_play = jax.random.split(key, 3)
  floor = _carve_room(k_room, height, width, walk_steps)
  # Targets and the player on distinct random floor cells.
  priority = jnp.where(floor, jax.random.uniform(k_place, floor.shape), -1.0).reshape(-1)
  values, idx = jax.lax.top_k(priority, num_boxes + 1)
  enough = values[-1] >= 0.0
  cells = jnp.stack([idx // width, idx % width], axis=-1).astype(jnp.int32)
  targets_pos, player = cells[:num_boxes], cells[num_boxes]
  score, box_pos, player = _reverse_play(k_play, floor, targets_pos, player, reverse_steps)
  score = jnp.where(enough, score, 0)
  targets = jnp.zeros((height, width), bool).at[targets_pos[:, 0], targets_pos[:, 1]].set(True)
  boxes = jnp.zeros((height, width), bool).at[box_pos[:, 0], box_pos[:, 1]].set(True)
  return Level(~floor, targets, boxes, player), score


@functools.partial(jax.jit, static_argnames=("height", "width", "num_boxes", "num_candidates",
                                             "walk_steps", "reverse_steps"))
def generate_level(key: jax.Array, height: int = 10, width: int = 10, num_boxes: int = 4,
                   num_candidates: int = 4, walk_steps: int = 30,
                   reverse_steps: int = 200) -> tuple[Level, jax.Array]:
  """One level by reverse play (jittable, vmappable).

  Args:
    key: PRNG key.
    height, width: grid size including the wall border.
    num_boxes: boxes (= targets).
    num_candidates: rooms tried; the one whose best reverse-play state scores highest is kept.
    walk_steps: length of the room-carving random walk (gym-sokoban uses 1.5 (H + W)).
    reverse_steps: length of the reverse-play walk.

  Returns:
    `(level, ok)`: `ok` is False when no candidate got every box off its target (too small a
    room); such levels must be discarded (`generate_bank` does).
  """
  levels, scores = jax.vmap(
      lambda k: _candidate(k, height, width, num_boxes, walk_steps, reverse_steps))(
          jax.random.split(key, num_candidates))
  best = jnp.argmax(scores)
  return jax.tree.map(lambda x: x[best], levels), scores[best] > 0


def generate_bank(key: jax.Array, num_levels: int, height: int = 10, width: int = 10,
                  num_boxes: int = 4, **kwargs) -> Level:
  """`num_levels` valid, solvable levels (host loop over vmapped batches of `generate_level`)."""
  if num_levels < 1:
    raise ValueError(f"num_levels must be >= 1, got {num_levels}")
  if num_boxes < 1 or height < 4 or width < 4:
    raise ValueError(f"need num_boxes >= 1 and a grid of at least 4x4, got num_boxes={num_boxes}"
                     f", {height}x{width}")
  gen = _batched_generator(height, width, num_boxes, tuple(sorted(kwargs.items())))
  found, total = [], 0
  # One fixed batch shape, so the generator compiles once per configuration.
  batch = 256
  for attempt in range(max(50, 4 * num_levels // batch + 4)):
    levels, ok = gen(jax.random.split(jax.random.fold_in(key, attempt), batch))
    ok = np.asarray(ok)
    if ok.any():
      found.append(jax.tree.map(lambda x: np.asarray(x)[ok], levels))
      total += int(ok.sum())
    if total >= num_levels:
      break
  if total < num_levels:
    raise ValueError(f"could not generate {num_levels} levels with {num_boxes} boxes in a "
                     f"{height}x{width} grid (got {total}); use fewer boxes or a larger grid")
  bank = jax.tree.map(lambda *xs: np.concatenate(xs)[:num_levels], *found)
  return Level(*(jnp.asarray(x) for x in (bank.walls, bank.targets, bank.boxes, bank.player)))


@functools.lru_cache(maxsize=None)
def _batched_generator(height, width, num_boxes, kwargs):
  return jax.jit(jax.vmap(lambda k: generate_level(k, height, width, num_boxes, **dict(kwargs))))


# ----------------------------------------------------------------------------- host solver
def _dead_cells(walls: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """Cells from which a lone box can never reach a target (pulled back from the targets)."""
  h, w = walls.shape
  live = targets.copy()
  stack = [tuple(c) for c in np.argwhere(targets)]
  while stack:
    r, c = stack.pop()
    for dr, dc in MOVES:
      # A box at (r, c) can come from (r - dr, c - dc), pushed by a player at (r - 2dr, c - 2dc).
      b, p = (r - dr, c - dc), (r - 2 * dr, c - 2 * dc)
      if (0 <= p[0] < h and 0 <= p[1] < w and not walls[b] and not walls[p] and not live[b]):
        live[b] = True
        stack.append(b)
  return ~live


def solve_level(level: Level, max_expansions: int = 200_000):
  """A fewest-steps solution of one level (host side, A* over push states), or None.

  Steps are the environment's actions (walking and pushing), so the length is what an agent
  needs within the 120-step limit. A state is the box set and the player's cell just after a
  push; an edge walks by a shortest path to a box's side and pushes it once, costing the walk
  plus one step. Every solution is such a sequence, so Dijkstra on these edges is optimal in
  steps; the heuristic (each box's Manhattan distance to its nearest target) never
  overestimates the steps left. Pushes onto cells from which no target is reachable are pruned.

  Args:
    level: one `Level` (numpy or JAX arrays).
    max_expansions: give up (return None) after expanding this many states.

  Returns:
    A list of actions (0 up, 1 down, 2 left, 3 right) solving the level, or None if none was
    found within the budget. `[]` for a level that starts solved.
  """
  walls = np.asarray(level.walls, bool)
  targets = np.asarray(level.targets, bool)
  h, w = walls.shape
  dead = _dead_cells(walls, targets).reshape(-1).tolist()
  free = (~walls).reshape(-1).tolist()
  steps = [int(dr) * w + int(dc) for dr, dc in MOVES]
  # Cells are flat indices; the border is never free for a closed room, but check bounds anyway.
  neighbours = [[] for _ in range(h * w)]
  for r in range(h):
    for c in range(w):
      for a, (dr, dc) in enumerate(MOVES):
        rr, cc = r + int(dr), c + int(dc)
        if 0 <= rr < h and 0 <= cc < w and free[rr * w + cc]:
          neighbours[r * w + c].append((rr * w + cc, a))
  goal = frozenset(int(i) for i in np.flatnonzero(targets))
  tr, tc = np.nonzero(targets)
  rr, cc = np.divmod(np.arange(h * w), w)
  nearest = np.min(np.abs(rr[:, None] - tr) + np.abs(cc[:, None] - tc), axis=1).tolist()
  boxes0 = frozenset(int(i) for i in np.flatnonzero(np.asarray(level.boxes, bool)))
  pr, pc = (int(v) for v in np.asarray(level.player))
  player0 = pr * w + pc

  def walk(boxes, start):
    """Breadth-first walk from `start` around the boxes: {cell: (parent, action)}."""
    parent = {start: None}
    frontier = [start]
    while frontier:
      nxt = []
      for cell in frontier:
        for n, a in neighbours[cell]:
          if n not in parent and n not in boxes:
            parent[n] = (cell, a)
            nxt.append(n)
      frontier = nxt
    return parent

  def path_to(parent, cell):
    actions = []
    while parent[cell] is not None:
      cell, a = parent[cell]
      actions.append(a)
    return actions[::-1]

  if boxes0 <= goal:
    return []
  start = (boxes0, player0)
  best_g, came = {start: 0}, {start: None}
  # Ties in f go to the deeper state (larger g), which expands far fewer states.
  heap = [(sum(nearest[b] for b in boxes0), 0, 0, start)]
  counter, expansions = 1, 0
  while heap:
    _, neg_g, _, state = heapq.heappop(heap)
    g = -neg_g
    if g > best_g[state]:
      continue
    boxes, player = state
    if boxes <= goal:
      actions = []
      while came[state] is not None:
        state, segment = came[state]
        actions = segment + actions
      return actions
    expansions += 1
    if expansions > max_expansions:
      return None
    parent = walk(boxes, player)
    dist = {}
    for box in boxes:
      for a, step in enumerate(steps):
        side, dest = box - step, box + step
        if side not in parent or not free[dest] or dest in boxes or dead[dest]:
          continue
        if side not in dist:
          dist[side] = path_to(parent, side)
        new_boxes = (boxes - {box}) | {dest}
        new = (new_boxes, box)
        ng = g + len(dist[side]) + 1
        if ng < best_g.get(new, 1 << 30):
          best_g[new] = ng
          came[new] = (state, dist[side] + [a])
          hn = sum(nearest[b] for b in new_boxes)
          heapq.heappush(heap, (ng + hn, -ng, counter, new))
          counter += 1
  return None
