"""MiniPacman (I2A, Weber et al. 2017, App. C): Pacman in a 15x19 maze with food, power pills
and ghosts, with five tasks that differ only in how events are rewarded.

Every rule is here, with its source: [R] the released `PillEater` code of the I2A authors (as
copied by gym-minipacman and higgsfield's I2A), [A] the paper's appendix C, [O] ours.

- Map [R]: the released standard map (`MAZE`), 15 x 19, 138 free cells.
- Actions [R]: 0 no-op, 1 right, 2 up, 3 left, 4 down (the released order). A wall stops Pacman.
- Rewards and level changes [R] = [A] (Table, App. C); events `(step, food, pill, eat_ghost,
  eaten)` (counts), reward `task_weights @ events`:

    task     step   food   pill  ghost  eaten   new level when
    regular   0      1      2      5      0     all food eaten
    avoid     0.1   -0.1   -5    -10    -20     all food eaten, or 128 steps into the level
    hunt      0      0      1     10    -20     all ghosts eaten
    ambush    0     -0.1    0     10    -20     all ghosts eaten
    rush      0     -0.1   10      0      0     all power pills eaten

  `info["events"]` carries the vector, since I2A's environment model predicts it.
- Levels [R]: each level re-draws Pacman's cell (uniform over free cells), puts food on every free
  cell (Pacman eats the food of the cell he ends a step on, a no-op included), 2 power pills on
  uniform free cells, and `1 + (level - 1) // 2` ghosts, each on a uniform free cell outside the
  square of half-width 5 (Chebyshev distance > 5) around Pacman, with a uniform direction. The
  released code excludes the half-open slice `[p - 5, p + 5)`; we make the square symmetric [O].
- Ghost speed [R]: a ghost moves on a step with probability `0.5 + 0.1 (level - 1)` (at least 1
  means always), halved while Pacman is powered.
- Ghost policy [R] = [A] (App. C pseudo-code): at a dead end a ghost turns back; in a corridor or
  bend (two open directions) it keeps going, or takes the open direction that is not backwards;
  at an intersection (three or more) it never turns back and takes the open direction with the
  largest dot product with the unit vector towards Pacman (smallest while Pacman is powered; first
  in action order on ties; unchanged when it sits on Pacman). Ghost randomness [R]: a constant
  0.05 chance, only at intersections and only while Pacman is unpowered, of a uniform pick among
  the non-reversing open directions.
- Power [R] = [A]: a pill powers Pacman for 20 steps (the counter falls by one at the start of each
  step, then a pill eaten sets it to 20).
- Meetings [R]: ghosts are taken in index order; a ghost meets Pacman if it is on his new cell
  before it moves (covers swapping cells) or after. Unpowered, Pacman is eaten (the episode
  terminates); powered, he eats the first ghost he meets and the ghosts after it do not move on
  that step: at most one ghost is eaten per step.
- Level change [O]: checked at the end of the step and not on the step Pacman dies (the released
  code starts the new level inside the step, before the remaining ghosts move).
- Episode length [O]: truncated after `params.max_steps` (1000; gym-minipacman's cap is 3000).
- Observations: `"symbolic"` `(15, 19, 6)` float32 planes (wall, food, pill, Pacman, ghost, edible
  ghost) [O], or `"rgb"` `(15, 19, 3)` float32 in [0, 1], one pixel per cell [R]: wall (1, 1, 1),
  food (0, 0, 1), pill (0, 1, 1), Pacman (0, 1, 0), ghost (1, e, 0) with
  `e = power / pill_duration` (so (1, 0, 0) unpowered, (1, 1, 0) just after a pill); Pacman is
  drawn over ghosts over pills over food.

Where [R] and [A] are both named they agree (reward table, level changes, pill duration, ghost
policy); no disagreement was found, so no rule needed the appendix to override the released code.
The map, speed schedule, randomness and spawn rule come from the released code.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import environment, spaces

MAZE = (  # the released PillEater standard map (DeepMind's I2A code; gym-minipacman copies it)
    "###################",
    "#...#.........#...#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#.#.............#.#",
    "#.####.#####.####.#",
    "#......#####......#",
    "#.####.#####.####.#",
    "#.#.............#.#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#...#.........#...#",
    "###################",
)
WALLS = np.array([[c == "#" for c in row] for row in MAZE])

TASKS = ("regular", "avoid", "hunt", "ambush", "rush")
EVENTS = ("step", "food", "pill", "eat_ghost", "eaten")
# Rows: tasks; columns: events (I2A App. C).
TASK_WEIGHTS = np.array([
    [0.0, 1.0, 2.0, 5.0, 0.0],
    [0.1, -0.1, -5.0, -10.0, -20.0],
    [0.0, 0.0, 1.0, 10.0, -20.0],
    [0.0, -0.1, 0.0, 10.0, -20.0],
    [0.0, -0.1, 10.0, 0.0, 0.0],
], np.float32)
# Level-change rules per task: (all food eaten, all ghosts eaten, all pills eaten, timer or -1).
LEVEL_RULES = {
    "regular": (True, False, False, -1),
    "avoid": (True, False, False, 128),
    "hunt": (False, True, False, -1),
    "ambush": (False, True, False, -1),
    "rush": (False, False, True, -1),
}

# no-op, right, up, left, down (the released order)
ACTION_MOVES = np.array([[0, 0], [0, 1], [-1, 0], [0, -1], [1, 0]], np.int32)
GHOST_MOVES = ACTION_MOVES[1:]
REVERSE = np.array([2, 3, 0, 1], np.int32)  # index into GHOST_MOVES

NUM_PLANES = 6
_COLORS = np.array([  # float RGB in [0, 1] (released)
    [0, 0, 0],  # floor
    [1, 1, 1],  # wall
    [0, 0, 1],  # food
    [0, 1, 1],  # pill
    [0, 1, 0],  # Pacman
    [1, 0, 0],  # ghost
    [1, 1, 0],  # edible ghost at full power; graded (1, e, 0) in observations
], np.float32)


@flax.struct.dataclass
class MiniPacmanState:
  pacman: jax.Array       # int32 (2,)
  ghosts: jax.Array       # int32 (G, 2)
  ghost_dirs: jax.Array   # int32 (G,), index into GHOST_MOVES
  ghost_alive: jax.Array  # bool (G,)
  food: jax.Array         # bool (H, W)
  pills: jax.Array        # bool (H, W)
  power: jax.Array        # int32, powered steps left
  level: jax.Array        # int32, from 1
  level_time: jax.Array   # int32, steps into the current level
  time: jax.Array         # int32, steps into the episode


@flax.struct.dataclass
class MiniPacmanParams:
  """Numbers of the game; defaults follow the original environment (I2A App. C)."""
  task_weights: jax.Array = flax.struct.field(
      default_factory=lambda: jnp.asarray(TASK_WEIGHTS[0]))
  max_steps: int = 1000
  pill_duration: int = 20
  ghost_speed_init: float = 0.5
  ghost_speed_increase: float = 0.1
  ghost_randomness: float = 0.05


def level_settings(level, params: MiniPacmanParams, max_ghosts: int):
  """`(num_ghosts, move_probability, randomness)` of a level (from 1)."""
  num = jnp.minimum(1 + (level - 1) // 2, max_ghosts)
  speed = jnp.clip(params.ghost_speed_init + params.ghost_speed_increase * (level - 1), 0.0, 1.0)
  randomness = jnp.asarray(params.ghost_randomness, jnp.float32)
  return num, speed, randomness


def _at(grid, pos):
  return grid[pos[..., 0], pos[..., 1]]


def _cell_mask(pos, shape) -> jax.Array:
  """Bool grid, True at the cells `pos` `(..., 2)` (any over leading axes); compare-based,
  since scatters are slow under `vmap` on CPU."""
  rows = jnp.arange(shape[0])[:, None]
  cols = jnp.arange(shape[1])[None, :]
  pos = pos.reshape(-1, 2)
  return jnp.any((rows[None] == pos[:, 0, None, None]) & (cols[None] == pos[:, 1, None, None]),
                 axis=0)


class MiniPacman(environment.Environment):
  """I2A MiniPacman; see the module docstring.

  Args:
    task: one of TASKS; sets the default reward weights and the level-change rule.
    observation: "symbolic" or "rgb".
    max_ghosts: size of the ghost arrays (the level's count is capped at this).
    safe_distance: ghosts appear outside the square of this half-width around Pacman.
    num_pills: power pills per level (2 in I2A).
  """

  num_actions = 5

  def __init__(self, task: str = "regular", observation: str = "symbolic", max_ghosts: int = 8,
               safe_distance: int = 5, num_pills: int = 2):
    if task not in TASKS:
      raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if observation not in ("symbolic", "rgb"):
      raise ValueError(f"observation must be 'symbolic' or 'rgb', got {observation!r}")
    if max_ghosts < 1:
      raise ValueError(f"max_ghosts must be >= 1, got {max_ghosts}")
    if num_pills < 0:
      raise ValueError(f"num_pills must be >= 0, got {num_pills}")
    self.task, self.observation, self.max_ghosts = task, observation, max_ghosts
    self.num_pills = num_pills
    self.rule = LEVEL_RULES[task]
    self.walls = jnp.asarray(WALLS)
    self.height, self.width = WALLS.shape
    # Tables for drawing cells: free cells, each cell's index among them, and for each free cell
    # the free cells at Chebyshev distance > safe_distance (where ghosts may appear).
    free = np.argwhere(~WALLS).astype(np.int32)
    index = np.full(WALLS.shape, 0, np.int32)
    index[free[:, 0], free[:, 1]] = np.arange(len(free))
    cheb = np.abs(free[:, None] - free[None]).max(-1)
    far_mask = cheb > safe_distance
    far = np.zeros((len(free), len(free)), np.int32)
    for i, row in enumerate(far_mask):
      if not row.any():
        raise ValueError(f"safe_distance {safe_distance} leaves no cell for ghosts")
      far[i, :row.sum()] = np.flatnonzero(row)
    self._free, self._index = jnp.asarray(free), jnp.asarray(index)
    self._far, self._far_count = jnp.asarray(far), jnp.asarray(far_mask.sum(1), jnp.int32)

  @property
  def default_params(self) -> MiniPacmanParams:
    return MiniPacmanParams(task_weights=jnp.asarray(TASK_WEIGHTS[TASKS.index(self.task)]))

  def observation_space(self, params=None) -> spaces.Box:
    if self.observation == "rgb":
      return spaces.Box(0.0, 1.0, (self.height, self.width, 3), jnp.float32)
    return spaces.Box(0.0, 1.0, (self.height, self.width, NUM_PLANES), jnp.float32)

  # ---------------------------------------------------------------- levels
  def new_level(self, key, state: MiniPacmanState, level, params) -> MiniPacmanState:
    """Fresh Pacman cell, food, pills and ghosts for `level`.

    Cells are drawn from precomputed tables (free cells; free cells far from each free cell),
    one random integer per draw: resets run on every step under automatic reset, and per-cell
    random numbers or cumulative sums over the grid would dominate the step cost on CPU.
    """
    # One draw of random bits for everything (each PRNG call costs compile time); the modulo
    # bias is below 1e-7 for these small ranges.
    g, p = self.max_ghosts, self.num_pills
    bits = jax.random.bits(key, (p + 2 * g + 1,))
    shape = (self.height, self.width)
    pacman = self._free[bits[-1] % self._free.shape[0]]
    bits = bits[:-1]
    state = state.replace(pacman=pacman)
    food = ~self.walls
    pill_idx = bits[:p] % self._free.shape[0]
    pills = _cell_mask(self._free[pill_idx], shape)
    here = self._index[state.pacman[0], state.pacman[1]]
    pick = bits[p:p + g] % self._far_count[here].astype(jnp.uint32)
    ghosts = self._free[self._far[here, pick]]
    num, _, _ = level_settings(level, params, self.max_ghosts)
    return state.replace(
        ghosts=ghosts, ghost_dirs=(bits[p + g:] % 4).astype(jnp.int32),
        ghost_alive=jnp.arange(self.max_ghosts) < num, food=food, pills=pills,
        power=jnp.int32(0), level=jnp.asarray(level, jnp.int32), level_time=jnp.int32(0))

  def reset_env(self, key, params):
    k_level = key
    g = self.max_ghosts
    state = MiniPacmanState(
        pacman=jnp.zeros(2, jnp.int32), ghosts=jnp.zeros((g, 2), jnp.int32),
        ghost_dirs=jnp.zeros(g, jnp.int32),
        ghost_alive=jnp.zeros(g, bool), food=jnp.zeros_like(self.walls),
        pills=jnp.zeros_like(self.walls), power=jnp.int32(0), level=jnp.int32(1),
        level_time=jnp.int32(0), time=jnp.int32(0))
    state = self.new_level(k_level, state, 1, params)
    return self.get_obs(state, params), state

  # ---------------------------------------------------------------- dynamics
  def ghost_directions(self, key, state: MiniPacmanState, randomness) -> jax.Array:
    """Direction index (into GHOST_MOVES) each ghost takes if it moves (I2A App. C)."""
    moves = jnp.asarray(GHOST_MOVES)
    nxt = state.ghosts[:, None, :] + moves[None]                     # (G, 4, 2)
    allowed = ~_at(self.walls, nxt)                                  # (G, 4)
    reverse = jnp.asarray(REVERSE)[state.ghost_dirs]
    not_back = allowed & (jnp.arange(4)[None] != reverse[:, None])
    candidates = jnp.where(jnp.any(not_back, -1, keepdims=True), not_back, allowed)
    to_pac = (state.pacman[None] - state.ghosts).astype(jnp.float32)
    norm = jnp.linalg.norm(to_pac, axis=-1, keepdims=True)
    to_pac = to_pac / jnp.maximum(norm, 1e-6)
    dots = to_pac @ moves.T.astype(jnp.float32)                      # (G, 4)
    powered = state.power > 0
    dots = jnp.where(powered, -dots, dots)
    greedy = jnp.argmax(jnp.where(candidates, dots, -jnp.inf), -1)   # first on ties
    greedy = jnp.where(norm[:, 0] > 0, greedy, state.ghost_dirs)
    junction = allowed.sum(-1) >= 3
    heading_open = jnp.take_along_axis(allowed, state.ghost_dirs[:, None], -1)[:, 0]
    # Dead end or corridor: keep going if open, else the first open non-reversing direction.
    along = jnp.where(heading_open, state.ghost_dirs, jnp.argmax(candidates, -1))
    chosen = jnp.where(junction, greedy, along)
    u = jax.random.uniform(key, (self.max_ghosts, 5))
    coin = (u[:, 0] < randomness) & junction & ~powered
    random_dir = jnp.argmax(jnp.where(candidates, u[:, 1:], -1.0), -1)  # uniform candidate
    return jnp.where(coin, random_dir, chosen).astype(jnp.int32)

  def step_env(self, key, state: MiniPacmanState, action, params):
    k_move, k_dirs, k_level = jax.random.split(key, 3)  # one split, three keys
    moves = jnp.asarray(ACTION_MOVES)
    power = jnp.maximum(state.power - 1, 0)
    state = state.replace(power=power)
    # Pacman moves; a wall stops him.
    target = state.pacman + moves[jnp.clip(action, 0, 4)]
    pac_before = state.pacman
    pacman = jnp.where(_at(self.walls, target), pac_before, target)
    ate_food = _at(state.food, pacman)
    ate_pill = _at(state.pills, pacman)
    here = _cell_mask(pacman, (self.height, self.width))
    food = state.food & ~here
    pills = state.pills & ~here
    power = jnp.where(ate_pill, params.pill_duration, power)
    state = state.replace(pacman=pacman, food=food, pills=pills, power=power)
    # Ghosts move, each with the level's probability (halved while Pacman is powered).
    _, speed, randomness = level_settings(state.level, params, self.max_ghosts)
    speed = jnp.where(power > 0, 0.5 * speed, speed)
    dirs = self.ghost_directions(k_dirs, state, randomness)
    moving = jax.random.uniform(k_move, (self.max_ghosts,)) < speed
    ghosts_before = state.ghosts
    ghosts = jnp.where(moving[:, None], ghosts_before + jnp.asarray(GHOST_MOVES)[dirs],
                       ghosts_before)
    ghost_dirs = jnp.where(moving, dirs, state.ghost_dirs)
    # Meeting: a ghost on Pacman's new cell before its move (covers swapping cells) or after.
    meet = state.ghost_alive & (jnp.all(ghosts == pacman, -1)
                                | jnp.all(ghosts_before == pacman, -1))
    powered = power > 0
    # Powered: only the first ghost met is eaten, and the ghosts after it do not move.
    first = jnp.argmax(meet)
    idx = jnp.arange(self.max_ghosts)
    eaten_ghosts = meet & powered & (idx == first)
    frozen = powered & jnp.any(meet) & (idx > first)
    ghosts = jnp.where(frozen[:, None], ghosts_before, ghosts)
    ghost_dirs = jnp.where(frozen, state.ghost_dirs, ghost_dirs)
    eaten = jnp.any(meet) & ~powered
    ghost_alive = state.ghost_alive & ~eaten_ghosts
    state = state.replace(ghosts=ghosts, ghost_dirs=ghost_dirs, ghost_alive=ghost_alive,
                          level_time=state.level_time + 1, time=state.time + 1)
    events = jnp.stack([jnp.ones((), bool), ate_food, ate_pill]).astype(jnp.float32)
    events = jnp.concatenate([events, jnp.stack([eaten_ghosts.sum(), eaten]).astype(jnp.float32)])
    reward = jnp.dot(params.task_weights, events)
    reward = environment.invalid_action_reward(reward, action, self.num_actions)
    # Level change by the task's rule.
    on_food, on_ghosts, on_pills, timer = self.rule
    change = jnp.bool_(False)
    if on_food:
      change |= ~jnp.any(state.food)
    if on_ghosts:
      change |= ~jnp.any(state.ghost_alive)
    if on_pills:
      change |= ~jnp.any(state.pills)
    if timer > 0:
      change |= state.level_time >= timer
    change &= ~eaten
    advanced = self.new_level(k_level, state, state.level + 1, params)
    state = jax.tree.map(lambda a, b: jnp.where(change, a, b), advanced, state)
    terminated = eaten
    truncated = ~eaten & (state.time >= params.max_steps)
    info = {"events": events, "level": state.level, "level_changed": change}
    return self.get_obs(state, params), state, reward, terminated, truncated, info

  # ---------------------------------------------------------------- observations
  def planes(self, state: MiniPacmanState) -> jax.Array:
    """Symbolic planes `(H, W, 6)`: wall, food, pill, Pacman, ghost, edible ghost."""
    shape = (self.height, self.width)
    pac = _cell_mask(state.pacman, shape)
    # Dead ghosts are parked off the grid so they match no cell.
    ghost = _cell_mask(jnp.where(state.ghost_alive[:, None], state.ghosts, -1), shape)
    powered = state.power > 0
    return jnp.stack([self.walls, state.food & ~state.pills, state.pills, pac,
                      ghost & ~powered, ghost & powered], -1).astype(jnp.float32)

  def get_obs(self, state, params=None):
    planes = self.planes(state)
    if self.observation == "rgb":
      return self._rgb(planes, state, params)
    return planes

  def _rgb(self, planes, state, params):
    params = self.default_params if params is None else params
    # Later planes are drawn over earlier ones: Pacman over ghosts over pills over food.
    order = (0, 1, 2, 4, 5, 3)  # wall, food, pill, ghost, edible ghost, Pacman
    code = jnp.zeros(planes.shape[:2], jnp.int32)
    for i in order:
      code = jnp.where(planes[..., i] > 0, i + 1, code)
    image = jnp.asarray(_COLORS)[code]
    edibility = jnp.clip(state.power / params.pill_duration, 0.0, 1.0).astype(jnp.float32)
    graded = jnp.stack([jnp.float32(1.0), edibility, jnp.float32(0.0)])
    return jnp.where((code == 6)[..., None], graded, image)

  def render(self, state, params=None, scale: int = 8) -> jax.Array:
    """RGB frame `(15 scale, 19 scale, 3)` uint8."""
    image = self._rgb(self.planes(state), state, params)
    image = jnp.round(image * 255).astype(jnp.uint8)
    return jnp.repeat(jnp.repeat(image, scale, 0), scale, 1)


def rgb_palette() -> np.ndarray:
  """Colours of the RGB observation: floor, wall, food, pill, Pacman, ghost, edible ghost."""
  return _COLORS.copy()

