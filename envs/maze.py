"""Maze (IBP, Pascanu et al. 2017, Sec. 4.2): reach a goal in a fixed grid maze within 20 steps.

Sources: [P] the IBP paper as far as it could be read for this module: its abstract ("a discrete
maze-solving task") and the maze setting as issue 18 restates it from the paper's Sec. 4.2 (a
fixed maze with several candidate goals, 3 used in training and a 4th held out; -1 per step plus
the unused part of a 20-step budget; a multi-maze variant whose wall layout correlates with the
number of goals). The maze section's own text (grid size, observation, start rule) was not
reachable, so everything below that is not in that list is [O] ours, with the reason beside it.

Grid and moves:
- [O] The grid is `(2 cells + 1)^2` (7 x 7 for the default `cells = 3`): maze cell `(i, j)` is
  grid cell `(2i + 1, 2j + 1)`, the cells between are walls or passages, the border is wall.
  With 3 x 3 maze cells every layout is a spanning tree of 9 cells, so any shortest path has
  at most 8 passages = 16 moves: the 20-step budget always suffices, and shorter routes are
  worth more (see the reward). [O] `cells = 4` (9 x 9) is also allowed, a harder variant in
  which some goals lie beyond the budget (paths up to 30 moves); larger mazes are refused, since
  most goals would be out of the budget's reach and a perfect maze of 5 x 5 cells or more
  rarely has as few as 2 dead ends (see the multi-maze below).
- [O] Actions: 0 up, 1 down, 2 left, 3 right (`MOVES`). [O] A move into a wall leaves the
  agent in place and still costs the step (the usual grid-world rule).

Single maze (`params.multi_maze = 0`, the default):
- [P] One fixed maze for every episode. [O] It is the perfect maze carved by randomised
  Kruskal (`carve_perfect_maze`) with seed 0, fixed at construction, so the same
  `cells` always gives the same maze (pinned by a test).
- [P] 4 candidate goal positions, 3 for training, 1 held out. [O] They are the 4 corner maze
  cells (`candidate_goal_cells`: top-left, top-right, bottom-left for training, bottom-right
  held out): far apart, and the same rule for any `cells`.
- [P] A goal per episode from the training goals; the held-out goal for evaluation.
  `params.goal_set`: 0 (`TRAIN`) draws uniformly among the 3 training goals at each reset,
  1 (`HELD_OUT`) always uses the 4th.
- [O] The start is uniform over the open cells that are no candidate goal (so the start never
  sits on a goal, nor on the held-out goal in training).

Multi-maze (`params.multi_maze = 1`):
- [P] Several wall layouts whose structure correlates with how many goals they have. [O] The
  concrete correlation (the paper's could not be read): a layout's goals are exactly its dead
  ends (maze cells with one passage), so the number of goals is a property of the walls, read
  off the layout. `MULTI_GOAL_COUNTS = (2, 3, 4)`: one perfect maze with 2, one with 3, one
  with 4 dead ends (the first seeds >= 1 of `carve_perfect_maze` that give those counts).
- [O] All goals of the layout are shown and active; reaching any of them ends the episode. With
  one goal drawn among them the count would not matter to the agent; with all active, a
  layout with more goals offers more routes to compare, which is what makes the count (and
  the layout that announces it) relevant to a planner.
- [O] `params.layout`: -1 draws one of the layouts uniformly at each reset, `k >= 0` pins
  layout `k`. The start is uniform over the open cells that are no goal. `goal_set` is
  ignored here.

Reward and episode end:
- [P] Every step gives -1. [P] The episode ends on reaching a goal or when the budget of
  `max_steps = 20` steps is used up. [P] On reaching the goal the unused budget is added;
  [O] "unused" counts the arriving step as used (the paper's exact accounting was not
  readable): the step that reaches the goal at step `t` (1-based) gives
  `-1 + (max_steps - t)`. An episode solved in `t` steps thus returns
  `-t + (max_steps - t) = max_steps - 2t`; one that never reaches the goal returns
  `-max_steps`. Worked example, budget 20, goal 3 moves away: rewards -1, -1, -1 + 17 = 16,
  return 14; the same goal reached in 5 moves (two bumps into a wall): -1 x 4, then
  -1 + 15 = 14, return 10; never reached: 20 x -1 = -20, truncated after step 20. Reaching
  the goal exactly on step 20 gives -1 + 0 (terminated, not truncated).
- `terminated` is "a goal was reached", `truncated` is "budget used up without reaching one".

Observation: [O] planes `(H, W, 3)` float32: walls, agent, goals (the goal plane marks the
episode's goal(s), so the goal is visible, as the task is goal-conditioned). State:
`MazeState(walls, goals, agent, time, layout)`; `layout` is 0 for the single maze and
`1 + k` for multi-maze layout `k`.

Bad input (a `ValueError` naming the field): `cells` not 3 or 4; `goal_set` not 0/1; `multi_maze`
not 0/1; `layout` outside `[-1, num_layouts)`; `max_steps < 1`; a non-finite or non-integer
value in any of these fields; an action out of `[0, 4)` (by `Environment.check_action`;
inside `jit`, where values are unknown, an out-of-range action gives a NaN reward and params
are not checked).
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import environment, rendering, spaces

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)
TRAIN, HELD_OUT = 0, 1
GOAL_SETS = ("train", "held_out")
MULTI_GOAL_COUNTS = (2, 3, 4)
FIXED_MAZE_SEED = 0
_MAX_SEED_SEARCH = 10_000
_SPRITES = rendering.stack([
    rendering.square((20, 20, 20)),
    rendering.square((90, 90, 160)),
    rendering.disc((240, 200, 40), (20, 20, 20), radius=0.4),
    rendering.disc((40, 220, 40), (20, 20, 20), radius=0.4),
])


@flax.struct.dataclass
class MazeState:
  walls: jax.Array   # bool (H, W)
  goals: jax.Array   # bool (H, W), the episode's goal cell(s)
  agent: jax.Array   # int32 (2,)
  time: jax.Array    # int32, steps taken
  layout: jax.Array  # int32, 0 the single maze, 1 + k multi-maze layout k


@flax.struct.dataclass
class MazeParams:
  max_steps: int = 20   # the step budget
  goal_set: int = 0     # single maze: 0 TRAIN (3 goals), 1 HELD_OUT (the 4th)
  multi_maze: int = 0   # 0 the single fixed maze, 1 the multi-maze variant
  layout: int = -1      # multi-maze: -1 draw a layout per episode, k >= 0 pin layout k


def carve_perfect_maze(seed: int, cells: int) -> np.ndarray:
  """Walls `(2 cells + 1,)*2` bool of a perfect maze by randomised Kruskal.

  The walls between neighbouring maze cells are visited in a random order, and each is opened
  when the cells on its two sides are not yet connected (union-find); the passages then form a
  spanning tree of the `cells x cells` lattice (connected, no loops), drawn from a wide range
  of shapes (from long corridors to many short branches). Deterministic in `seed` (numpy's
  PCG64).
  """
  rng = np.random.default_rng(seed)
  walls = np.ones((2 * cells + 1, 2 * cells + 1), bool)
  walls[1::2, 1::2] = False
  edges = [((i, j), (i, j + 1)) for i in range(cells) for j in range(cells - 1)]
  edges += [((i, j), (i + 1, j)) for i in range(cells - 1) for j in range(cells)]
  parent = list(range(cells * cells))

  def root(x):
    while parent[x] != x:
      parent[x] = parent[parent[x]]
      x = parent[x]
    return x

  for e in rng.permutation(len(edges)):
    (i, j), (k, l) = edges[e]
    a, b = root(i * cells + j), root(k * cells + l)
    if a != b:
      parent[a] = b
      walls[i + k + 1, j + l + 1] = False  # the wall cell between (i, j) and (k, l)
  return walls


def dead_ends(walls: np.ndarray) -> np.ndarray:
  """Bool `(H, W)`: open maze cells (odd, odd) with exactly one open neighbour."""
  walls = np.asarray(walls)
  out = np.zeros_like(walls)
  for r in range(1, walls.shape[0] - 1, 2):
    for c in range(1, walls.shape[1] - 1, 2):
      if not walls[r, c]:
        out[r, c] = sum(not walls[r + dr, c + dc] for dr, dc in MOVES.tolist()) == 1
  return out


def candidate_goal_cells(cells: int) -> np.ndarray:
  """Grid positions `(4, 2)` of the single maze's candidate goals: the 3 training ones, then
  the held-out one (top-left, top-right, bottom-left; bottom-right)."""
  far = 2 * cells - 1
  return np.array([[1, 1], [1, far], [far, 1], [far, far]], np.int32)


def multi_maze_layouts(cells: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
  """`(walls (K, H, W), goals (K, H, W), seeds)`: per count in `MULTI_GOAL_COUNTS`, the first
  seed >= 1 whose perfect maze has exactly that many dead ends; its goals are those dead ends."""
  walls, goals, seeds = [], [], []
  for count in MULTI_GOAL_COUNTS:
    for seed in range(1, _MAX_SEED_SEARCH):
      w = carve_perfect_maze(seed, cells)
      ends = dead_ends(w)
      if int(ends.sum()) == count:
        walls.append(w)
        goals.append(ends)
        seeds.append(seed)
        break
    else:
      raise ValueError(f"cells={cells}: no maze with {count} dead ends among "
                       f"{_MAX_SEED_SEARCH} seeds")
  return np.stack(walls), np.stack(goals), tuple(seeds)


def _check_field(name: str, value, lo: int, hi: int | None, what: str) -> None:
  if isinstance(value, jax.core.Tracer):
    return  # traced (inside jit/vmap): the value is unknown here
  a = np.asarray(value)
  if a.shape != ():
    raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
  if not np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_:
    raise ValueError(f"{name} must be an integer, got {value!r}")
  if not np.isfinite(a):
    raise ValueError(f"{name} must be finite, got {value!r}")
  if a != np.floor(a):
    raise ValueError(f"{name} must be an integer, got {value!r}")
  if a < lo or (hi is not None and a > hi):
    raise ValueError(f"{name} must be {what}, got {value!r}")


class Maze(environment.Environment):
  """IBP's maze task; see the module docstring."""

  num_actions = 4

  def __init__(self, cells: int = 3):
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)) or cells not in (3, 4):
      raise ValueError(f"cells must be 3 or 4 (3: every goal within the 20-step budget; 4: the "
                       f"largest size with multi-maze layouts of 2, 3 and 4 dead ends), "
                       f"got {cells!r}")
    self.cells = int(cells)
    self.size = 2 * self.cells + 1
    self.fixed_walls = carve_perfect_maze(FIXED_MAZE_SEED, self.cells)
    self.candidate_goals = candidate_goal_cells(self.cells)
    multi_walls, multi_goals, self.multi_seeds = multi_maze_layouts(self.cells)
    self.num_layouts = len(MULTI_GOAL_COUNTS)
    fixed_goals = np.zeros_like(self.fixed_walls)
    fixed_goals[tuple(self.candidate_goals.T)] = True
    # Index 0: the single maze (goal mask = its 4 candidates); 1 + k: multi-maze layout k.
    self._walls = np.concatenate([self.fixed_walls[None], multi_walls])
    self._goals = np.concatenate([fixed_goals[None], multi_goals])

  @property
  def default_params(self) -> MazeParams:
    return MazeParams()

  def check_params(self, params: MazeParams) -> None:
    """Raises `ValueError` naming the first bad field (concrete values only)."""
    _check_field("max_steps", params.max_steps, 1, None, ">= 1")
    _check_field("goal_set", params.goal_set, 0, 1, "0 (train) or 1 (held_out)")
    _check_field("multi_maze", params.multi_maze, 0, 1, "0 (single maze) or 1 (multi-maze)")
    _check_field("layout", params.layout, -1, self.num_layouts - 1,
                 f"-1 (draw) or a layout in [0, {self.num_layouts})")

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(0.0, 1.0, (self.size, self.size, 3), jnp.float32)

  def reset_env(self, key, params: MazeParams):
    self.check_params(params)
    k_layout, k_goal, k_start = jax.random.split(key, 3)
    drawn = jax.random.randint(k_layout, (), 0, self.num_layouts)
    multi_index = 1 + jnp.where(jnp.asarray(params.layout) >= 0, params.layout, drawn)
    index = jnp.where(jnp.asarray(params.multi_maze) == 1, multi_index, 0).astype(jnp.int32)
    walls = jnp.asarray(self._walls)[index]
    candidates = jnp.asarray(self._goals)[index]
    goal = jnp.where(jnp.asarray(params.goal_set) == HELD_OUT, 3,
                     jax.random.randint(k_goal, (), 0, 3))
    cell = jnp.asarray(self.candidate_goals)[goal]
    single_goal = jnp.zeros_like(candidates).at[cell[0], cell[1]].set(True)
    goals = jnp.where(index == 0, single_goal, candidates)
    starts = (~walls & ~candidates).reshape(-1)
    s = jax.random.categorical(k_start, jnp.where(starts, 0.0, -jnp.inf))
    agent = jnp.stack([s // self.size, s % self.size]).astype(jnp.int32)
    state = MazeState(walls, goals, agent, jnp.int32(0), index)
    return self.get_obs(state), state

  def step_env(self, key, state: MazeState, action, params: MazeParams):
    del key
    self.check_params(params)
    nxt = state.agent + jnp.asarray(MOVES)[jnp.clip(action, 0, 3)]
    agent = jnp.where(state.walls[nxt[0], nxt[1]], state.agent, nxt)
    time = state.time + 1
    at_goal = state.goals[agent[0], agent[1]]
    reward = -1.0 + jnp.where(at_goal, params.max_steps - time, 0)
    reward = environment.invalid_action_reward(reward, action, self.num_actions)
    state = state.replace(agent=agent, time=time)
    truncated = ~at_goal & (time >= params.max_steps)
    return self.get_obs(state), state, reward, at_goal, truncated, {}

  def codes(self, state: MazeState) -> jax.Array:
    codes = jnp.where(state.walls, 1, jnp.where(state.goals, 3, 0))
    return codes.at[state.agent[0], state.agent[1]].set(2)

  def get_obs(self, state: MazeState) -> jax.Array:
    agent = jnp.zeros(state.walls.shape, bool).at[state.agent[0], state.agent[1]].set(True)
    return jnp.stack([state.walls, agent, state.goals], -1).astype(jnp.float32)

  def render(self, state: MazeState, params=None) -> jax.Array:
    """RGB frame `(8 size, 8 size, 3)` uint8."""
    return rendering.paint(self.codes(state), _SPRITES)
