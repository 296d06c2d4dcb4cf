"""Sokoban as in I2A (Weber et al. 2017, App. D): push every box onto a target.

Each rule and its source ([A] the I2A appendix, [J] jumanji's Sokoban, which states that it
follows the I2A rules, [O] our choice where the paper is silent):
- [A] Rewards: -0.1 per step, +1 for pushing a box onto a target, -1 for pushing one off, +10
  when the last box reaches its target; the episode then terminates. The pieces add up on one
  step (a push that solves the level gives -0.1 + 1 + 10).
- [A] Episodes are truncated after `params.max_steps` = 120 steps.
- [J] Actions: the four moves 0 up, 1 down, 2 left, 3 right; moving into a box pushes it
  if the cell behind it is free (no chained pushes), otherwise nothing moves and the step still
  costs -0.1. This is jumanji's documented set; the appendix's own wording could not be
  consulted when this was written, so check it before relying on the order. [O] `noop=True`
  adds a no-op as action 0 with the moves as 1..4 (PO-Sokoban's set, CF-GPS), off by default.
- [A] Levels: 10x10 rooms with 4 boxes, a new procedurally generated level every episode by
  App. D.3's recipe (`envs.sokoban_generator`: random-walk room, reverse play searched depth
  first with a time-to-live of 300, RoomScore); every level is solvable, with all boxes off
  target.
- Observations: [A] the 80x80 RGB frame (`"rgb"`, `(8H, 8W, 3)` uint8, 8x8 sprites); [O]
  `"symbolic"` one-hot tiles `(H, W, 7)` float32 (wall, floor, target, box on target, box,
  player, player on target).

Where the levels come from (`SokobanParams`):
- `env.fresh_params()`: the paper's rule, a fresh level at every reset, the automatic reset in
  `step` included, generated inside jit (`sokoban_generator.generate_where`; under `vmap` only
  the environments whose episode ended search, and a step where none did pays nothing). A
  failed generation (no try scored above 0; none among 1e5 7x7 levels) plays a level of a 64-level
  fallback pool.
- `env.default_params` (the environment's default; `launch.agents.a2c` trains 7x7/2 on the
  stream below) [O]: a pool of 1,024 App. D.3 levels generated on
  the device from seed `POOL_SEED`, drawn uniformly at each reset; `env.refill(key, params,
  num)` replaces `num` random slots with new levels (pure, jittable), for a training loop that
  wants to renew its pool between chunks. Why not fresh levels by default: one App. D.3 level
  costs about 2,000 sequential search iterations (1,000 visits per try and the backtracking),
  5-30 ms of CPU, while an episode is at most 120 steps of about 2 us each; a step on which
  any environment resets waits for that search. Measured on 2 shared CPU cores
  (`python -m benchmarks.envs_sokoban_levels --throughput --modes bank,fresh`, envs/README.md):
  fresh levels run hundreds to thousands of times slower than the pool (10x10: 237 vs 133,014
  steps/s at 16 environments, 31 vs 99,870 at 256), which makes training impractically slow;
  the pool keeps the bank's speed and the paper's level distribution, at the price of
  repeating each level (1,024 levels over a run) unless refilled.
- `env.stream_params(key, capacity)`: the paper's rule with the generation moved out of the
  rollout, a level stream. App. D.3 levels are generated in batches (`env.refill_stream(key,
  params, num, batch)`, batched searches, jitted, called between training chunks) into a ring
  buffer in `params.stream`; every reset takes the next unplayed level through a counter
  shared by the vmapped environments, so no level is played twice and none is skipped unless
  a refill overwrites it unplayed. A reset that finds the stream dry plays a fallback pool
  level and is counted (`info["stream_dry"]`, `state.stream_dry`). See `stream_params` for
  the call pattern and envs/README.md for how many levels per second training consumes and
  the generator makes.
- `env.eval_params()`: the held-out evaluation bank, 1,024 App. D.3 levels of seed
  `EVAL_SEED`. Training levels come from other keys (the pool's seed, or the keys given to
  `reset`/`step`), so an evaluation level is met in training only as a repeat of the generator,
  whose rate `benchmarks/envs_sokoban_levels.py` measures.
- `env.make_params(levels)`: any bank, e.g. Boxoban files through `sokoban_levels.load_levels`.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import environment, level_cache, rendering, sokoban_generator, spaces
from envs.sokoban_levels import MOVES, Level, generate_bank

# Tile codes (gym-sokoban order).
WALL, FLOOR, TARGET, BOX_ON_TARGET, BOX, PLAYER, PLAYER_ON_TARGET = range(7)
NUM_TILES = 7
TILE_SIZE = 8

_BG = (40, 40, 40)
_SPRITES = rendering.stack([
    rendering.square((120, 60, 40)),                      # wall: brick
    rendering.square(_BG),                                # floor
    rendering.disc((220, 40, 40), _BG, radius=0.2),       # target: red dot
    rendering.framed((60, 200, 60), _BG),                 # box on target: green box
    rendering.framed((200, 160, 60), _BG),                # box: yellow box
    rendering.disc((80, 140, 255), _BG, radius=0.4),      # player: blue
    rendering.disc((80, 140, 255), (220, 40, 40), radius=0.4),  # player on target
])


@flax.struct.dataclass
class SokobanState:
  """Dynamic state. Grids are bool `(H, W)`; the level's static parts ride along with it."""
  walls: jax.Array
  targets: jax.Array
  boxes: jax.Array
  player: jax.Array      # int32 (2,), (row, col)
  time: jax.Array        # int32, steps taken in this episode
  level_index: jax.Array  # int32, index into params.levels (-1: generated or given directly)
  # Level stream (`params.stream`, see `Sokoban.stream_params`); 0 / -1 / 0 without one.
  stream_next: jax.Array   # int32, stream index of the next level to take (same in every lane)
  stream_index: jax.Array  # int32, stream index of this episode's level (-1: not from it)
  stream_dry: jax.Array    # int32, resets of this environment that found the stream dry


@flax.struct.dataclass
class LevelStream:
  """A ring buffer of generated levels that resets consume in order, each once.

  The stream's levels are numbered from 0 in the order the refills wrote them (the stream
  index); level i sits in slot `i % C` of the ring until a later refill overwrites it.

  Attributes:
    levels: the ring, a bank `(C, H, W)` (`C` the capacity).
    end: int32, valid levels written since the stream began (the next one's stream index).
    start: int32, stream index of the first level of the latest refill (where `reset` begins).
    generated: int32, generator calls made by all refills; `generated - end` failed (`ok =
      False`) and were left out.
  """
  levels: Level
  end: jax.Array
  start: jax.Array
  generated: jax.Array

  @property
  def capacity(self) -> int:
    return self.levels.walls.shape[0]


@flax.struct.dataclass
class SokobanParams:
  """Level bank, level source and reward constants (I2A App. D).

  Attributes:
    levels: the bank (pool) of levels played when `fresh` is False and there is no `stream`;
      otherwise the fallback levels, played when a generation fails (`fresh`, rare) or the
      stream is dry.
    fresh: static; draw a new level from `envs.sokoban_generator` at every reset (inside jit).
    stream: a `LevelStream` that resets consume in order (`Sokoban.stream_params`), or None.
  """
  levels: Level
  max_steps: int = 120
  step_reward: float = -0.1
  box_on_reward: float = 1.0
  box_off_reward: float = -1.0
  solved_reward: float = 10.0
  fresh: bool = flax.struct.field(pytree_node=False, default=False)
  stream: LevelStream | None = None


# Seeds of the generated banks: the training pool (`default_params`) and the held-out
# evaluation bank (`eval_params`); level i of a bank comes from `fold_in(PRNGKey(seed), i)`.
# Fresh levels come from the keys given to `reset`/`step`, which never equal these.
POOL_SEED = 0
EVAL_SEED = 1
DEFAULT_GENERATOR = sokoban_generator.GeneratorConfig()  # App. D.3's settings


@functools.lru_cache(maxsize=None)
def generated_levels(height: int, width: int, num_boxes: int, num_levels: int = 1024,
                     seed: int = POOL_SEED,
                     config: sokoban_generator.GeneratorConfig = DEFAULT_GENERATOR) -> Level:
  """A bank of App. D.3 levels (`sokoban_generator.generate_bank`), once per process and,
  through `envs.level_cache`, once per machine."""
  def build():
    return sokoban_generator.generate_bank(jax.random.PRNGKey(seed), num_levels, height, width,
                                           num_boxes, config, batch=min(256, num_levels))

  spec = dict(height=height, width=width, num_boxes=num_boxes, num_levels=num_levels, seed=seed,
              config=dataclasses.asdict(config))
  return level_cache.cached_bank("app_d3", spec, build, num_levels, (height, width))


@functools.lru_cache(maxsize=None)
def default_levels(height: int, width: int, num_boxes: int, num_levels: int = 1024) -> Level:
  """A fixed bank of quick reverse-walk levels (`sokoban_levels.generate_bank`, key 0), built
  once per configuration and machine (PO-Sokoban's default bank; see `envs.level_cache`)."""
  def build():
    return generate_bank(jax.random.PRNGKey(0), num_levels, height, width, num_boxes)

  spec = dict(height=height, width=width, num_boxes=num_boxes, num_levels=num_levels, seed=0)
  return level_cache.cached_bank("reverse_walk", spec, build, num_levels, (height, width))


# ----------------------------------------------------------------------------- level stream
def allocate_stream(next_index: jax.Array, needed: jax.Array, end: jax.Array, low: jax.Array):
  """Stream indices for the environments of a batch that need a new level.

  The needed environments take consecutive indices, in lane order, from `max(next_index)`
  raised to `low` (the oldest level still in the ring: older ones were overwritten unplayed and
  are skipped); an index at or past `end` (not yet generated) is dry. So an index is handed out
  once: no stream level is played twice.

  Args:
    next_index: int32 `(E,)`, every lane's copy of the stream's next index.
    needed: bool `(E,)`, the environments starting an episode.
    end, low: int32 scalars, `stream.end` and `stream.end - capacity`.

  Returns:
    `(index, dry, next_index)`: int32 `(E,)` stream index of each environment's new level (-1
    where not needed or dry), bool `(E,)` dry (needed but none left), int32 `(E,)` the next
    index after this allocation, the same in every lane.
  """
  needed = jnp.asarray(needed, bool)
  base = jnp.maximum(jnp.max(next_index), low)
  rank = jnp.cumsum(needed.astype(jnp.int32)) - needed.astype(jnp.int32)
  index = base + rank
  take = needed & (index < end)
  new_next = jnp.maximum(base, jnp.minimum(base + jnp.sum(needed.astype(jnp.int32)), end))
  return (jnp.where(take, index, -1).astype(jnp.int32), needed & ~take,
          jnp.broadcast_to(new_next, index.shape).astype(jnp.int32))


@jax.custom_batching.custom_vmap
def _take_from_stream(key, next_index, needed, end, low):
  """`allocate_stream` for one environment; under `jax.vmap` over environments, for the batch.

  The key only makes the call batched whenever the environments are (its value is unused):
  the batching rule then sees every lane at once, which a per-lane function could not.
  """
  del key
  out = allocate_stream(next_index[None], needed[None], end, low)
  return jax.tree.map(lambda x: x[0], out)


@_take_from_stream.def_vmap
def _take_from_stream_rule(axis_size, in_batched, key, next_index, needed, end, low):
  del key
  _, next_b, needed_b, end_b, low_b = in_batched
  if end_b or low_b:
    raise ValueError("params.stream must be shared by the vmapped environments (vmap env.reset "
                     "and env.step with in_axes=None for params); got params batched along the "
                     "environments' axis")
  lanes = lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x))  # noqa: E731
  out = allocate_stream(lanes(next_index, next_b), lanes(needed, needed_b), end, low)
  return out, (True, True, True)


def tile_codes(state) -> jax.Array:
  """Integer tile grid `(H, W)` of a state (codes WALL..PLAYER_ON_TARGET)."""
  h, w = state.walls.shape
  player = jnp.zeros((h, w), bool).at[state.player[0], state.player[1]].set(True)
  codes = jnp.where(state.targets, TARGET, FLOOR)
  codes = jnp.where(state.boxes, jnp.where(state.targets, BOX_ON_TARGET, BOX), codes)
  codes = jnp.where(player, jnp.where(state.targets, PLAYER_ON_TARGET, PLAYER), codes)
  return jnp.where(state.walls, WALL, codes).astype(jnp.int32)


def render_codes(codes: jax.Array) -> jax.Array:
  """RGB image `(8H, 8W, 3)` uint8 of a tile-code grid."""
  return rendering.paint(codes, _SPRITES)


def push(state: SokobanState, move: jax.Array):
  """Applies a move `(drow, dcol)` with Sokoban's rules.

  Returns:
    `(state, delta_on_target)`: the new state (time unchanged) and the change in the number of
    boxes on targets (-1, 0 or +1).
  """
  h, w = state.walls.shape
  lim = jnp.array([h - 1, w - 1])
  p1 = jnp.clip(state.player + move, 0, lim)
  p2 = jnp.clip(state.player + 2 * move, 0, lim)
  wall1, box1 = state.walls[p1[0], p1[1]], state.boxes[p1[0], p1[1]]
  wall2, box2 = state.walls[p2[0], p2[1]], state.boxes[p2[0], p2[1]]
  pushes = box1 & ~wall2 & ~box2
  moves = ~wall1 & (~box1 | pushes)
  boxes = state.boxes.at[p1[0], p1[1]].set(box1 & ~pushes)
  boxes = boxes.at[p2[0], p2[1]].set(box2 | pushes)
  delta = pushes * (state.targets[p2[0], p2[1]].astype(jnp.int32)
                    - state.targets[p1[0], p1[1]].astype(jnp.int32))
  player = jnp.where(moves, p1, state.player)
  return state.replace(boxes=boxes, player=player), delta


class Sokoban(environment.Environment):
  """I2A Sokoban; see the module docstring.

  Args:
    height, width: room size including walls (10x10 in I2A).
    num_boxes: boxes per level for the generated levels (4 in I2A).
    observation: "symbolic" or "rgb".
    noop: add a no-op action (action 0).
    generator: settings of the level generator (fresh levels and the generated banks).
  """

  def __init__(self, height: int = 10, width: int = 10, num_boxes: int = 4,
               observation: str = "symbolic", noop: bool = False,
               generator: sokoban_generator.GeneratorConfig = DEFAULT_GENERATOR):
    if observation not in ("symbolic", "rgb"):
      raise ValueError(f"observation must be 'symbolic' or 'rgb', got {observation!r}")
    if height < 4 or width < 4 or num_boxes < 1:
      raise ValueError(f"need height, width >= 4 and num_boxes >= 1, got {height}, {width}, "
                       f"{num_boxes}")
    if not isinstance(generator, sokoban_generator.GeneratorConfig):
      raise ValueError(f"generator must be a sokoban_generator.GeneratorConfig, got {generator!r}")
    self.height, self.width, self.num_boxes = height, width, num_boxes
    self.observation = observation
    self.noop = noop
    self.generator = generator
    self.num_actions = 5 if noop else 4
    moves = np.concatenate([np.zeros((1, 2), np.int32), MOVES]) if noop else MOVES
    self._moves = jnp.asarray(moves)

  @property
  def default_params(self) -> SokobanParams:
    """Training params: a pool of 1,024 App. D.3 levels (seed `POOL_SEED`); see the module
    docstring for why this, and not `fresh_params`, is the default (`stream_params` gives
    fresh levels to a trainer that refills them between chunks)."""
    return SokobanParams(levels=self.pool(1024))

  def pool(self, num_levels: int = 1024, seed: int = POOL_SEED) -> Level:
    """A generated bank of this environment's shape (cached per process)."""
    return generated_levels(self.height, self.width, self.num_boxes, num_levels, seed,
                            self.generator)

  def fresh_params(self, **kwargs) -> SokobanParams:
    """Params drawing a new generated level at every reset (I2A App. D.3), inside jit; a
    failed generation plays a level of a small fallback pool (64 levels, seed `POOL_SEED`)."""
    return SokobanParams(levels=self.pool(64), fresh=True, **kwargs)

  def eval_params(self, num_levels: int = 1024, **kwargs) -> SokobanParams:
    """The held-out evaluation bank: `num_levels` App. D.3 levels of seed `EVAL_SEED`."""
    return SokobanParams(levels=self.pool(num_levels, EVAL_SEED), **kwargs)

  def make_params(self, levels: Level, **kwargs) -> SokobanParams:
    """Params for a level bank, checking that it fits this environment's grid."""
    if levels.walls.ndim != 3 or levels.walls.shape[1:] != (self.height, self.width):
      raise ValueError(f"levels must be a bank of {self.height}x{self.width} levels with shape "
                       f"(N, {self.height}, {self.width}), got {levels.walls.shape}")
    return SokobanParams(levels=levels, **kwargs)

  def refill(self, key: jax.Array, params: SokobanParams, num: int) -> SokobanParams:
    """`params` with `num` distinct random slots of its pool replaced by new generated levels.

    Pure and jittable (`num` static): a training loop that calls it between chunks keeps its
    pool fresh at the generator's cost (see the module docstring). A slot whose generation
    failed keeps its level.
    """
    n = params.levels.walls.shape[0]
    if not 1 <= num <= n:
      raise ValueError(f"num must be in [1, {n}] (the pool's size), got {num}")
    k_slots, k_gen = jax.random.split(key)
    slots = jax.random.permutation(k_slots, n)[:num]
    keys = jax.random.split(k_gen, num)
    new, ok, _ = jax.vmap(lambda k: sokoban_generator.generate(
        k, self.height, self.width, self.num_boxes, self.generator))(keys)

    def put(pool, fresh):
      keep = ok.reshape((-1,) + (1,) * (fresh.ndim - 1))
      return pool.at[slots].set(jnp.where(keep, fresh, pool[slots]))

    return params.replace(levels=jax.tree.map(put, params.levels, new))

  def stream_params(self, key: jax.Array | None, capacity: int = 4096, num: int | None = None,
                    batch: int | None = None, **kwargs) -> SokobanParams:
    """Params whose resets play the levels of a stream, each once, in order (I2A App. D: "a
    new procedurally generated level every episode"), at a bank's speed.

    The levels are App. D.3's (`envs.sokoban_generator`), generated in batches by
    `refill_stream` outside the rollout and held in a ring of `capacity` slots
    (`params.stream`, a `LevelStream`); every reset, the automatic one in `step` included,
    takes the next unplayed level. Call pattern (`E` environments under `jax.vmap` with
    `in_axes=None` for params, so they share one stream):

        refill = jax.jit(env.refill_stream, static_argnums=(2, 3))
        params = env.stream_params(jax.random.PRNGKey(0), 4096, batch=64)  # filled once
        obs, state = jax.vmap(env.reset, (0, None))(keys, params)
        for chunk in ...:
          params = refill(key_c, params, num, 64)  # `num` new levels, 64 per search
          ...  # lax.scan of jax.vmap(env.step, (0, 0, 0, None))(keys, state, action, params)
          env.stream_remaining(params, state)  # unplayed levels left, to size `num`

    Rules: (1) no stream level is played twice: indices are handed out in order by a shared
    counter (`state.stream_next`, the same in every lane, advanced across the vmapped batch);
    (2) a refill that writes over levels not yet played skips them (never replays them), so
    keep `num <= capacity - stream_remaining`; (3) when the stream is dry (every written level
    taken), the reset plays a uniformly drawn level of `params.levels` (the fallback pool,
    default 64 levels of seed `POOL_SEED`) and counts it: `info["stream_dry"]` on that step and
    `state.stream_dry` (per environment, cumulative); the dry reset does not use up a stream
    index, so the next refill's levels are all played. `reset` starts at the first level of
    the latest refill (`stream.start`), so call it once per stream, or after a refill.
    Environments stepped outside one `vmap` (a Python loop, or an outer vmap over seeds that
    shares these params) each follow their own counter and play the same levels; give each
    seed its own stream by vmapping `stream_params` and `refill_stream` over per-seed keys
    (stacked params, `in_axes=0` over seeds, `None` over the environments).

    Speed (envs/README.md, "Level stream"): the rollout runs at the pool's speed and the cost
    is the generation. On 2 shared CPU cores the generator makes about 330 levels/s (7x7, 2
    boxes) and 85 (10x10, 4 boxes), while A2C at 15,000 frames/s with a near-random policy
    (episodes of 107 and 119 steps) consumes about 140 and 126 levels/s. In A2C training
    with three vmapped seeds, each with its own stream (their refills run as one sequence of
    searches, `sokoban_generator.generate_in_batches`), a chunk takes 4.5x (7x7/2) and 10.5x
    (10x10/4) as long as with the pool (`benchmarks/agents_a2c_sokoban_levels.py`).

    Args:
      key: PRNG key of the first refill (`refill_stream(key, params, num, batch)`); None
        leaves the stream empty (every reset dry until a refill).
      capacity: slots of the ring (static).
      num: levels of the first refill (default `capacity`).
      batch: levels per batched search of that refill (default `num`; see `refill_stream`).
      **kwargs: other `SokobanParams` fields (`levels` replaces the fallback pool).

    Returns:
      `SokobanParams` with `stream` set.
    """
    if not isinstance(capacity, int) or capacity < 1:
      raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
    h, w = self.height, self.width
    empty = Level(walls=jnp.ones((capacity, h, w), bool), targets=jnp.zeros((capacity, h, w), bool),
                  boxes=jnp.zeros((capacity, h, w), bool),
                  player=jnp.zeros((capacity, 2), jnp.int32))
    stream = LevelStream(levels=empty, end=jnp.int32(0), start=jnp.int32(0),
                         generated=jnp.int32(0))
    kwargs.setdefault("levels", self.pool(64))
    params = SokobanParams(stream=stream, **kwargs)
    return params if key is None else self.refill_stream(key, params, num, batch)

  def refill_stream(self, key: jax.Array, params: SokobanParams, num: int | None = None,
                    batch: int | None = None) -> SokobanParams:
    """`params` with `num` new App. D.3 levels appended to its stream (default: its capacity).

    Pure and jittable (`num`, `batch` static): `params = jax.jit(env.refill_stream,
    static_argnums=(2, 3))(key, params, num, batch)` between training chunks (see
    `stream_params`). The levels are those of `sokoban_generator.generate_in_batches(
    jax.random.split(key, num), batch, ...)`, searched `batch` at a time (default all `num` at
    once; `num` must be a multiple of `batch`): a batched search runs as long as its slowest
    lane, so on a CPU, where every lane costs time, batches of about 64 give the most levels/s,
    while an accelerator wants large ones (envs/README.md). A level depends only on its key, so
    `batch` changes the speed, not the levels; under `jax.vmap` over seeds (one stream each)
    the seeds' searches run as one sequence of `batch`-lane searches. The valid ones (`ok`)
    are appended in key order (`append_to_stream`), the failed ones left out (counted in
    `stream.generated - stream.end`). Appending writes slot `i % capacity` for stream index i,
    so levels not yet played are overwritten when `num` exceeds the free slots;
    `allocate_stream` then skips them.
    """
    stream = params.stream
    if stream is None:
      raise ValueError("params has no level stream (params.stream is None); make it with "
                       "env.stream_params(key, capacity)")
    cap = stream.capacity
    num = cap if num is None else num
    if not isinstance(num, int) or not 1 <= num <= cap:
      raise ValueError(f"num must be an integer in [1, {cap}] (the stream's capacity), got "
                       f"{num!r}")
    batch = num if batch is None else batch
    if not isinstance(batch, int) or batch < 1 or num % batch:
      raise ValueError(f"batch must be a positive divisor of num={num}, got {batch!r}")
    new, ok, _ = sokoban_generator.generate_in_batches(
        jax.random.split(key, num), batch, self.height, self.width, self.num_boxes,
        self.generator)
    return self.append_to_stream(params, new, ok)

  def append_to_stream(self, params: SokobanParams, levels: Level, ok: jax.Array
                       ) -> SokobanParams:
    """`params` with the valid ones of `levels` (leading axis N, `ok` bool `(N,)`) appended to
    its stream in order; the rest of `refill_stream`, for levels made elsewhere."""
    stream = params.stream
    if stream is None:
      raise ValueError("params has no level stream (params.stream is None)")
    cap, num = stream.capacity, ok.shape[0]
    if num > cap:
      raise ValueError(f"{num} levels do not fit a stream of capacity {cap}")
    order = jnp.argsort(~ok, stable=True)  # the valid levels first, in key order
    count = jnp.sum(ok).astype(jnp.int32)
    rank = jnp.arange(num)
    slots = jnp.where(rank < count, (stream.end + rank) % cap, cap)  # cap: dropped
    ring = jax.tree.map(lambda r, x: r.at[slots].set(x[order], mode="drop"),
                        stream.levels, levels)
    return params.replace(stream=stream.replace(
        levels=ring, end=stream.end + count, start=stream.end,
        generated=stream.generated + num))

  def stream_remaining(self, params: SokobanParams, state: SokobanState) -> jax.Array:
    """Stream levels still to be played (int32): written, not taken, not overwritten.

    `state` is the batch of environment states of this stream (the counter is shared by
    them); with one stream per seed, call it inside the vmap over seeds."""
    stream = params.stream
    if stream is None:
      raise ValueError("params has no level stream (params.stream is None)")
    taken = jnp.maximum(jnp.max(state.stream_next), stream.end - stream.capacity)
    return jnp.maximum(stream.end - taken, 0).astype(jnp.int32)

  def observation_space(self, params=None) -> spaces.Box:
    if self.observation == "rgb":
      return spaces.Box(0, 255, (TILE_SIZE * self.height, TILE_SIZE * self.width, 3), jnp.uint8)
    return spaces.Box(0.0, 1.0, (self.height, self.width, NUM_TILES), jnp.float32)

  def state_from_level(self, level: Level, index=-1) -> SokobanState:
    """Initial state of one level (for replaying a chosen level)."""
    return SokobanState(walls=jnp.asarray(level.walls, bool), targets=jnp.asarray(level.targets,
                        bool), boxes=jnp.asarray(level.boxes, bool),
                        player=jnp.asarray(level.player, jnp.int32), time=jnp.int32(0),
                        level_index=jnp.asarray(index, jnp.int32), stream_next=jnp.int32(0),
                        stream_index=jnp.int32(-1), stream_dry=jnp.int32(0))

  def _draw_level(self, key, params: SokobanParams, needed):
    """The level of a new episode: `(Level, index)`, a generated one (index -1) where
    `params.fresh` and `needed`, else (or if the generation failed) a uniform bank level."""
    k_gen, k_bank = jax.random.split(key)
    index = jax.random.randint(k_bank, (), 0, params.levels.walls.shape[0])
    level = params.levels[index]
    if not params.fresh:
      return level, index
    new, ok, _ = sokoban_generator.generate_where(k_gen, needed, self.height, self.width,
                                                  self.num_boxes, self.generator)
    level = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, level)
    return level, jnp.where(ok, -1, index)

  def _stream_episode(self, key, params: SokobanParams, next_index, needed):
    """Initial state of a new episode from `params.stream` where `needed` (see
    `stream_params`): `(state, dry)`; a dry reset plays a uniform fallback level."""
    stream = params.stream
    index, dry, next_index = _take_from_stream(key, next_index, needed, stream.end,
                                               stream.end - stream.capacity)
    pool_index = jax.random.randint(key, (), 0, params.levels.walls.shape[0])
    taken = index >= 0
    level = jax.tree.map(lambda a, b: jnp.where(taken, a, b),
                         stream.levels[jnp.maximum(index, 0) % stream.capacity],
                         params.levels[pool_index])
    state = self.state_from_level(level, jnp.where(taken, -1, pool_index))
    return state.replace(stream_next=next_index, stream_index=index,
                         stream_dry=dry.astype(jnp.int32)), dry

  def reset_env(self, key, params: SokobanParams):
    if params.stream is not None:
      state, _ = self._stream_episode(key, params, params.stream.start, jnp.bool_(True))
      return self.get_obs(state), state
    level, index = self._draw_level(key, params, jnp.bool_(True))
    state = self.state_from_level(level, index)
    return self.get_obs(state), state

  def step(self, key, state, action, params: SokobanParams = None):
    """`Environment.step`; with `params.fresh` the level generator runs only for environments
    whose episode ended (under `vmap`, only their lanes search; no search when none did); with
    `params.stream` those environments take the stream's next levels, and `info["stream_dry"]`
    flags a reset that found the stream dry (see `stream_params`)."""
    params = self.default_params if params is None else params
    if not params.fresh and params.stream is None:
      return super().step(key, state, action, params)
    if params.fresh and params.stream is not None:
      raise ValueError("params: fresh=True and a stream are exclusive level sources")
    action = self.check_action(action)
    key_step, key_reset = jax.random.split(key)
    obs_st, state_st, reward, terminated, truncated, info = self.step_env(
        key_step, state, action, params)
    done = jnp.logical_or(terminated, truncated)
    if params.stream is not None:
      state_re, dry = self._stream_episode(key_reset, params, state.stream_next, done)
      info = dict(info, stream_dry=dry)
    else:
      level, index = self._draw_level(key_reset, params, done)
      state_re = self.state_from_level(level, index)
    obs_re = self.get_obs(state_re)
    new = jax.tree.map(lambda a, b: jnp.where(done, a, b), state_re, state_st)
    if params.stream is not None:  # the counter moves in every lane, the dry count adds up
      new = new.replace(stream_next=state_re.stream_next,
                        stream_dry=state_st.stream_dry + dry.astype(jnp.int32))
    obs = jnp.where(done, obs_re, obs_st)
    return obs, new, reward, terminated, truncated, info

  def step_env(self, key, state: SokobanState, action, params: SokobanParams):
    del key  # Sokoban is deterministic.
    move = self._moves[jnp.clip(action, 0, self.num_actions - 1)]
    state, delta = push(state, move)
    state = state.replace(time=state.time + 1)
    solved = ~jnp.any(state.boxes & ~state.targets)
    reward = (params.step_reward
              + jnp.where(delta > 0, params.box_on_reward, 0.0)
              + jnp.where(delta < 0, params.box_off_reward, 0.0)
              + jnp.where(solved, params.solved_reward, 0.0))
    reward = environment.invalid_action_reward(reward, action, self.num_actions)
    truncated = ~solved & (state.time >= params.max_steps)
    info = {"boxes_on_target": jnp.sum(state.boxes & state.targets).astype(jnp.int32),
            "solved": solved}
    return self.get_obs(state), state, reward, solved, truncated, info

  def get_obs(self, state: SokobanState) -> jax.Array:
    codes = tile_codes(state)
    if self.observation == "rgb":
      return render_codes(codes)
    return jax.nn.one_hot(codes, NUM_TILES, dtype=jnp.float32)

  def render(self, state: SokobanState, params=None) -> jax.Array:
    """RGB frame `(8H, 8W, 3)` uint8."""
    return render_codes(tile_codes(state))
