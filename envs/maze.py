"""Maze (IBP, Pascanu et al. 2017, Sec. 4.2): reach the goal in a grid maze within a budget.

Each episode draws a maze, a start and a goal. Every step costs -1; reaching the goal ends the
episode with the remaining budget (`max_steps - t`) as a bonus, so faster is better; episodes are
truncated after `max_steps`. Goals are split between training and test positions (goal cells
whose maze-cell coordinates `(i + j)` are even are train goals, odd ones test goals), chosen by
`params.goal_split` (0 train, 1 test, 2 any) to measure generalisation to unseen goals.

Mazes are perfect (a spanning tree of the `cells x cells` lattice), carved by the binary-tree
algorithm (vectorised, so the automatic reset stays cheap); on the `(2 cells + 1)^2` grid, maze
cell `(i, j)` is grid cell `(2i + 1, 2j + 1)`. Actions: 0 up, 1 down, 2 left, 3 right.
Observation: planes `(H, W, 3)` float32 (wall, agent, goal).
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import environment, rendering, spaces

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)
_SPRITES = rendering.stack([
    rendering.square((20, 20, 20)),
    rendering.square((90, 90, 160)),
    rendering.disc((240, 200, 40), (20, 20, 20), radius=0.4),
    rendering.disc((40, 220, 40), (20, 20, 20), radius=0.4),
])


@flax.struct.dataclass
class MazeState:
  walls: jax.Array  # bool (H, W)
  agent: jax.Array  # int32 (2,)
  goal: jax.Array   # int32 (2,)
  time: jax.Array   # int32


@flax.struct.dataclass
class MazeParams:
  max_steps: int = 40
  goal_split: int = 0  # 0 train goals, 1 test goals, 2 any
  step_reward: float = -1.0


def carve_maze(key: jax.Array, cells: int) -> jax.Array:
  """Walls `(2 cells + 1,)*2` of a perfect maze by the binary-tree algorithm.

  Every maze cell but the top-left one opens the wall to its north or to its west, chosen at
  random (forced on the first row and column). Each cell then has exactly one parent, so the
  passages form a spanning tree: every cell is reachable and there are no loops.
  """
  size = 2 * cells + 1
  i, j = jnp.meshgrid(jnp.arange(cells), jnp.arange(cells), indexing="ij")
  north = jax.random.bernoulli(key, 0.5, (cells, cells))
  north = jnp.where(i == 0, False, jnp.where(j == 0, True, north))
  has_parent = (i > 0) | (j > 0)
  walls = jnp.ones((size, size), bool).at[2 * i + 1, 2 * j + 1].set(False)
  # The wall between cell (i, j) and its parent: north (2i, 2j+1) or west (2i+1, 2j).
  rows = jnp.where(north, 2 * i, 2 * i + 1)
  cols = jnp.where(north, 2 * j + 1, 2 * j)
  rows = jnp.where(has_parent, rows, 1)
  cols = jnp.where(has_parent, cols, 1)
  return walls.at[rows, cols].set(False)


def goal_mask(cells: int, goal_split) -> jax.Array:
  """Maze cells allowed as goals: `(i + j)` even (train), odd (test), or all."""
  i, j = jnp.meshgrid(jnp.arange(cells), jnp.arange(cells), indexing="ij")
  parity = (i + j) % 2
  return jnp.where(goal_split == 2, True, parity == goal_split)


class Maze(environment.Environment):
  """IBP's maze task; see the module docstring."""

  num_actions = 4

  def __init__(self, cells: int = 5):
    if cells < 2:
      raise ValueError(f"cells must be >= 2, got {cells}")
    self.cells = cells
    self.size = 2 * cells + 1

  @property
  def default_params(self) -> MazeParams:
    return MazeParams()

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(0.0, 1.0, (self.size, self.size, 3), jnp.float32)

  def reset_env(self, key, params: MazeParams):
    k_maze, k_start, k_goal = jax.random.split(key, 3)
    walls = carve_maze(k_maze, self.cells)
    goals = goal_mask(self.cells, params.goal_split)
    g = jax.random.categorical(k_goal, jnp.where(goals, 0.0, -jnp.inf).reshape(-1))
    goal_cell = jnp.stack([g // self.cells, g % self.cells])
    starts = jnp.ones((self.cells, self.cells), bool).at[goal_cell[0], goal_cell[1]].set(False)
    s = jax.random.categorical(k_start, jnp.where(starts, 0.0, -jnp.inf).reshape(-1))
    start_cell = jnp.stack([s // self.cells, s % self.cells])
    state = MazeState(walls, (2 * start_cell + 1).astype(jnp.int32),
                      (2 * goal_cell + 1).astype(jnp.int32), jnp.int32(0))
    return self.get_obs(state), state

  def step_env(self, key, state: MazeState, action, params: MazeParams):
    del key
    nxt = state.agent + jnp.asarray(MOVES)[jnp.clip(action, 0, 3)]
    agent = jnp.where(state.walls[nxt[0], nxt[1]], state.agent, nxt)
    time = state.time + 1
    at_goal = jnp.all(agent == state.goal)
    reward = params.step_reward + jnp.where(at_goal, params.max_steps - time, 0)
    reward = environment.invalid_action_reward(reward, action, self.num_actions)
    state = state.replace(agent=agent, time=time)
    truncated = ~at_goal & (time >= params.max_steps)
    return self.get_obs(state), state, reward, at_goal, truncated, {}

  def codes(self, state: MazeState) -> jax.Array:
    codes = jnp.where(state.walls, 1, 0)
    codes = codes.at[state.goal[0], state.goal[1]].set(3)
    return codes.at[state.agent[0], state.agent[1]].set(2)

  def get_obs(self, state: MazeState) -> jax.Array:
    return jax.nn.one_hot(self.codes(state), 4, dtype=jnp.float32)[..., 1:]

  def render(self, state: MazeState, params=None) -> jax.Array:
    """RGB frame `(8 size, 8 size, 3)` uint8."""
    return rendering.paint(self.codes(state), _SPRITES)
