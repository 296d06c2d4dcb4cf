"""Tests of Sokoban level validation, text files and generation by reverse play."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import sokoban_levels as sl

MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def _live_cells(walls, targets):
  """Cells from which a lone box can still reach some target (pulled back from the targets)."""
  h, w = walls.shape
  live = np.zeros_like(walls)
  queue = collections.deque(map(tuple, np.argwhere(targets)))
  for c in queue:
    live[c] = True
  while queue:
    r, c = queue.popleft()
    for dr, dc in MOVES:
      # The box at (r, c) came from (r - dr, c - dc) pushed by a player at (r - 2dr, c - 2dc).
      b, p = (r - dr, c - dc), (r - 2 * dr, c - 2 * dc)
      if (0 <= p[0] < h and 0 <= p[1] < w and not walls[b] and not walls[p] and not live[b]):
        live[b] = True
        queue.append(b)
  return live


def bfs_solve(level, max_states=200_000):
  """Fewest pushes solving `level` by breadth-first search over push states, or None.

  States are (boxes, canonical player cell), the player's cell being the smallest one it can
  reach; pushes into dead cells (no target reachable) are pruned.
  """
  walls = np.asarray(level.walls, bool)
  targets = np.asarray(level.targets, bool)
  live = _live_cells(walls, targets)
  h, w = walls.shape

  def reach(boxes, start):
    seen, stack = {start}, [start]
    while stack:
      r, c = stack.pop()
      for dr, dc in MOVES:
        n = (r + dr, c + dc)
        if n not in seen and not walls[n] and n not in boxes:
          seen.add(n)
          stack.append(n)
    return seen

  boxes0 = frozenset(map(tuple, np.argwhere(np.asarray(level.boxes))))
  player0 = tuple(int(v) for v in np.asarray(level.player))
  goal = frozenset(map(tuple, np.argwhere(targets)))
  area = reach(boxes0, player0)
  start = (boxes0, min(area))
  frontier, seen, depth = [(boxes0, area)], {start}, 0
  while frontier:
    if any(boxes <= goal for boxes, _ in frontier):
      return depth
    nxt = []
    for boxes, area in frontier:
      for b in boxes:
        for dr, dc in MOVES:
          p, d = (b[0] - dr, b[1] - dc), (b[0] + dr, b[1] + dc)
          if p in area and 0 <= d[0] < h and 0 <= d[1] < w and not walls[d] and d not in boxes \
              and live[d]:
            nb = (boxes - {b}) | {d}
            na = reach(nb, b)
            key = (nb, min(na))
            if key not in seen:
              seen.add(key)
              nxt.append((nb, na))
      if len(seen) > max_states:
        return None
    frontier, depth = nxt, depth + 1
  return None


LEVEL = """
#######
#     #
# @$. #
#     #
#######
"""


def test_parse_and_format_round_trip():
  level = sl.parse_level(LEVEL)
  assert np.asarray(level.player).tolist() == [2, 2]
  assert np.argwhere(np.asarray(level.boxes)).tolist() == [[2, 3]]
  assert np.argwhere(np.asarray(level.targets)).tolist() == [[2, 4]]
  assert sl.format_level(level) == LEVEL.strip("\n")


def test_bfs_solver_on_hand_levels():
  assert bfs_solve(sl.parse_level(LEVEL)) == 1
  two = "######\n#@$ .#\n######"
  assert bfs_solve(sl.parse_level(two)) == 2
  # A box in a corner away from the target cannot be solved.
  stuck = "#####\n#$  #\n# @.#\n#####"
  assert bfs_solve(sl.parse_level(stuck)) is None


def test_generated_levels_are_valid_and_solvable():
  bank = sl.generate_bank(jax.random.PRNGKey(3), 40)
  assert bank.walls.shape == (40, 10, 10)
  np.testing.assert_array_equal(np.asarray(bank.boxes).sum((1, 2)), 4)
  np.testing.assert_array_equal(np.asarray(bank.targets).sum((1, 2)), 4)
  # All boxes start off target, so no level is already solved.
  assert not np.any(np.asarray(bank.boxes) & np.asarray(bank.targets))
  solved = []
  for i in range(12):  # a sample, BFS in pure Python
    level = bank[i]
    sl.validate_level(level.walls, level.targets, level.boxes, level.player)
    solved.append(bfs_solve(level))
  assert all(d is not None and d >= 4 for d in solved), solved
  # Distinct levels.
  assert len({np.asarray(bank.walls[i]).tobytes() + np.asarray(bank.boxes[i]).tobytes()
              for i in range(40)}) == 40


def test_generation_is_deterministic():
  a, ok_a = sl.generate_level(jax.random.PRNGKey(5))
  b, ok_b = sl.generate_level(jax.random.PRNGKey(5))
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert bool(ok_a) == bool(ok_b)


def test_save_and_load_round_trip(tmp_path):
  bank = sl.generate_bank(jax.random.PRNGKey(1), 5)
  path = tmp_path / "levels.txt"
  sl.save_levels(path, bank)
  text = path.read_text()
  assert text.startswith("; 0\n##########")
  loaded = sl.load_levels(path)
  jax.tree.map(np.testing.assert_array_equal, loaded, bank)


@pytest.mark.parametrize("text, message", [
    ("#####\n# $.#\n#####", "no player"),
    ("######\n#@$$.#\n######", r"more boxes \(2\) than targets \(1\)"),
    ("#####\n#@$. \n#####", "do not close the room"),
    ("#####\n#@ .#\n#####", "no box"),
    ("#####\n#@$x#\n#####", "unknown character"),
    ("#####\n#@$.@\n#####", "exactly one player"),
])
def test_bad_levels_are_refused(text, message):
  with pytest.raises(ValueError, match=message):
    sl.parse_level(text)


def test_bad_bank_is_refused(tmp_path):
  with pytest.raises(ValueError, match="no level file"):
    sl.load_levels(tmp_path / "missing.txt")
  walls = np.ones((1, 5, 5), bool)
  walls[0, 1:4, 1:4] = False
  targets = np.zeros_like(walls)
  boxes = np.zeros_like(walls)
  boxes[0, 2, 2] = True
  with pytest.raises(ValueError, match=r"levels\[0\]: more boxes"):
    sl.make_bank(walls, targets, boxes, np.array([[1, 1]]))
  with pytest.raises(ValueError, match="player"):
    sl.make_bank(walls, targets, boxes, np.array([[1, 1, 1]]))
  with pytest.raises(ValueError, match="num_levels"):
    sl.generate_bank(jax.random.PRNGKey(0), 0)


# ----------------------------------------------------------------------------- A* solver
def _replay(level, actions):
  """Plays `actions` from `level` with the environment's push rule; True if then solved."""
  from envs import sokoban  # noqa: PLC0415
  env = sokoban.Sokoban(*np.asarray(level.walls).shape, num_boxes=1)
  state = env.state_from_level(level)
  push = jax.jit(sokoban.push)
  for a in actions:
    state, _ = push(state, jnp.asarray(sl.MOVES[a]))
  return not np.any(np.asarray(state.boxes) & ~np.asarray(state.targets))


WALK_THEN_PUSH = """
######
#    #
#@$  #
#  . #
######
"""


def test_solver_finds_fewest_steps_on_hand_levels():
  # One push right; two pushes right.
  assert sl.solve_level(sl.parse_level(LEVEL)) == [3]
  assert sl.solve_level(sl.parse_level("######\n#@$ .#\n######")) == [3, 3]
  # Push right (box to (2, 3)), walk up and right over it, push down: 4 steps; pushing down
  # first needs 6 (2 to get above, 1 push, 2 to get left of it, 1 push).
  level = sl.parse_level(WALK_THEN_PUSH)
  assert sl.solve_level(level) == [3, 0, 3, 1]
  # A box in a corner away from the target; an already solved level.
  assert sl.solve_level(sl.parse_level("#####\n#$  #\n# @.#\n#####")) is None
  assert sl.solve_level(sl.parse_level("#####\n#@* #\n#####")) == []


def test_solver_solutions_replay_and_agree_with_bfs():
  # The A* solution (fewest steps) solves the level in the environment, and uses at least as
  # many pushes as breadth-first search's fewest pushes; both find every level solvable.
  bank = sl.generate_bank(jax.random.PRNGKey(3), 40)
  for i in range(8):
    level = jax.tree.map(np.asarray, bank[i])
    actions = sl.solve_level(level)
    pushes = bfs_solve(level)
    assert actions is not None and pushes is not None, i
    assert _replay(level, actions), i
    moved = 0
    state = set(map(tuple, np.argwhere(level.boxes)))
    p = tuple(int(v) for v in level.player)
    for a in actions:
      d = tuple(int(v) for v in sl.MOVES[a])
      n = (p[0] + d[0], p[1] + d[1])
      if n in state:
        state = (state - {n}) | {(n[0] + d[0], n[1] + d[1])}
        moved += 1
      if not level.walls[n]:
        p = n
    assert moved >= pushes, (i, moved, pushes)
