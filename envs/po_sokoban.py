"""PO-Sokoban (CF-GPS, Buesing et al. 2019, Sec. 5): partially observed Sokoban.

Each rule and its source ([C] the CF-GPS paper, Sec. 5, as restated in issue 19; [A] the I2A
appendix, through `envs.sokoban.Sokoban`, whose rules this environment keeps unless stated;
[O] our choice where the papers are silent or could not be consulted):
- [C] 10x10 rooms (outer wall ring included) with 3 boxes and 3 targets.
- [C] 5 actions: 0 no-op, then the four moves 1 up, 2 down, 3 left, 4 right ([O] the order,
  `Sokoban(noop=True)`'s). The no-op changes nothing but the clock. [A] Moving into a box
  pushes it if the cell behind it is free (no chained pushes); a blocked move does nothing
  (Sokoban's move rules, which it takes from jumanji's statement of the I2A rules).
- [C] Rewards: +1 for pushing a box onto a target, -1 for pushing one off, +10 when the last
  box reaches its target, and no per-step penalty (`POSokobanParams.step_reward = 0`; I2A's
  Sokoban charges -0.1, which stays `SokobanParams`' default). [A] The pieces add up on one
  step: the push that solves the level earns 1 + 10 = 11. Every other step earns exactly 0.
- [C] Episodes are truncated after `max_steps = 50` steps.
- [O] Solving ends the episode (`terminated`), as in I2A's Sokoban [A]. The CF-GPS text could
  not be consulted on this point when this was written (check Sec. 5 before relying on it).
  We keep termination because the +10 is a one-off completion bonus (were a solved episode to
  go on, Sokoban's reward would pay it again at every later step), and because the return is
  then the same as under an absorbing solved state that earns 0 until step 50, so values and
  policy evaluation do not depend on the choice. A counterfactual rollout that solves earlier
  than the logged episode simply ends earlier.
- [C] Observation: every tile, the player's included, is independently shown as "empty"
  (the floor code, `sokoban.FLOOR`) with probability `empty_prob = 0.9` at every step, the
  initial observation included; otherwise it is shown truly. [O] Symbolic one-hot tiles
  `(H, W, 7)` by default, or the RGB frame (`observation="rgb"`), as Sokoban's.
- [C] Levels are the exogenous noise U (the "scenario"): a fresh level per episode. [A] They
  come from I2A App. D.3's generator (`envs.sokoban_generator`: random-walk room, reverse play
  searched depth first, RoomScore), so every level is solvable and starts with every box off
  target.

Where the levels come from (all of Sokoban's level sources, with PO-Sokoban's params):
- `env.default_params` = `env.fresh_params()`: a new App. D.3 level at every reset, the
  automatic reset in `step` included, generated inside jit. [O] Chosen as the default because
  the scenario prior p(U) is then the generator itself, an unbounded stream no agent can
  memorise (a small bank would let MB-PE's prior fit the bank and erase the bias that CF-GPS
  is meant to remove). A failed generation (rare) plays a level of a 64-level fallback pool.
  Fresh levels cost a generator search (milliseconds of CPU) at every reset.
- `env.stream_params(key, capacity)` / `env.refill_stream(key, params, num, batch)`: the same
  levels generated in batches between training chunks and consumed in order, each once; the
  fast choice for training (see `Sokoban.stream_params`).
- `env.eval_params(num_levels)`: the held-out bank of App. D.3 levels of seed
  `sokoban.EVAL_SEED`; training levels come from other keys, so they share only repeats of
  the generator.
- `env.make_params(levels)`: any bank (hand-made levels in tests, Boxoban files); each level
  must have `num_boxes` boxes. A small bank is for tests and evaluation, not training.

Counterfactual replay (CF-GPS Alg. 1). The exogenous variables of an episode are its level
and its observation noise, and both are explicit:
- the level: `reset_to_level(key, level)` starts an episode on a given level; `level_of(state)`
  reads the level back from an episode's first state. `reset(key)` draws the level with
  `split(key)[0]` and is the same as `reset_to_level(key, level)` on the level drawn.
- the observation noise of a call with key `key` (reset, reset_to_level, step or step_env) is
  `noise_mask(split(key)[1], params)`: a function of that key only, not of the state, the
  action, or whether the episode ended. So replaying the logged level and keys under another
  policy hides exactly the same tiles at every step, and under the logged actions reproduces
  the episode (observations, rewards, flags) exactly.
`state.level_index` is the bank index of a level from a bank, -1 for a generated or given one.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import sokoban, sokoban_generator, sokoban_levels
from envs.sokoban_levels import Level


@flax.struct.dataclass
class POSokobanParams(sokoban.SokobanParams):
  """Sokoban params with CF-GPS's defaults: 50 steps, no step penalty, and the per-tile
  probability `empty_prob` of observing "empty" (see the module docstring)."""
  max_steps: int = 50
  step_reward: float = 0.0
  empty_prob: float = 0.9


def level_of(state: sokoban.SokobanState) -> Level:
  """The level (walls, targets, boxes, player) of a state; an episode's first state gives the
  episode's level, the exogenous variable to log for a counterfactual replay."""
  return Level(walls=state.walls, targets=state.targets, boxes=state.boxes, player=state.player)


def _check_key(key, name: str = "key") -> None:
  """A single PRNG key: shape () for `jax.random.key`, (2,) uint32 for `jax.random.PRNGKey`."""
  dtype = getattr(key, "dtype", None)
  typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
  shape = tuple(jnp.shape(key))
  if typed and shape == ():
    return
  if not typed and dtype == jnp.uint32 and len(shape) == 1:
    return
  raise ValueError(f"{name} must be one PRNG key (jax.random.key: shape (); jax.random.PRNGKey: "
                   f"uint32 shape (2,)); got {dtype} shape {shape} (vmap over a batch of keys)")


class POSokoban(sokoban.Sokoban):
  """Partially observed Sokoban (CF-GPS Sec. 5); see the module docstring.

  Args:
    height, width: room size including walls (10x10 in CF-GPS).
    num_boxes: boxes (and targets) per level (3 in CF-GPS).
    observation: "symbolic" or "rgb".
    generator: settings of the App. D.3 level generator.
  """

  def __init__(self, height: int = 10, width: int = 10, num_boxes: int = 3,
               observation: str = "symbolic",
               generator: sokoban_generator.GeneratorConfig = sokoban.DEFAULT_GENERATOR):
    super().__init__(height, width, num_boxes, observation, noop=True, generator=generator)

  # --------------------------------------------------------------------------- params
  def _po_params(self, base: sokoban.SokobanParams, **kwargs) -> POSokobanParams:
    """Sokoban's params `base` as `POSokobanParams` (its level source, PO-Sokoban's defaults
    for the other fields, `kwargs` replacing them)."""
    return POSokobanParams(levels=base.levels, fresh=base.fresh, stream=base.stream, **kwargs)

  @property
  def default_params(self) -> POSokobanParams:
    """`fresh_params()`: a new generated level at every reset (see the module docstring)."""
    return self.fresh_params()

  def fresh_params(self, **kwargs) -> POSokobanParams:
    """A new App. D.3 level at every reset, inside jit (`Sokoban.fresh_params`)."""
    return self._po_params(super().fresh_params(), **kwargs)

  def eval_params(self, num_levels: int = 1024, **kwargs) -> POSokobanParams:
    """The held-out bank: `num_levels` App. D.3 levels of seed `sokoban.EVAL_SEED`."""
    return self._po_params(super().eval_params(num_levels), **kwargs)

  def make_params(self, levels: Level, **kwargs) -> POSokobanParams:
    """Params for a level bank `(N, H, W)`; every level must have `num_boxes` boxes."""
    base = super().make_params(levels)  # checks the bank's grid shape
    boxes = levels.boxes
    if not isinstance(boxes, jax.core.Tracer):
      counts = np.asarray(boxes).reshape(boxes.shape[0], -1).sum(-1)
      bad = np.flatnonzero(counts != self.num_boxes)
      if bad.size:
        raise ValueError(f"levels[{bad[0]}] has {counts[bad[0]]} boxes; this environment has "
                         f"num_boxes={self.num_boxes}")
    return self._po_params(base, **kwargs)

  def stream_params(self, key: jax.Array | None, capacity: int = 4096, num: int | None = None,
                    batch: int | None = None, **kwargs) -> POSokobanParams:
    """A level stream (`Sokoban.stream_params`) with PO-Sokoban's params; `kwargs` may set
    `levels` (the fallback pool) and any `POSokobanParams` field."""
    pool = {"levels": kwargs.pop("levels")} if "levels" in kwargs else {}
    params = self._po_params(super().stream_params(None, capacity, **pool), **kwargs)
    return params if key is None else self.refill_stream(key, params, num, batch)

  @staticmethod
  def _check_params(params) -> None:
    if not isinstance(params, POSokobanParams):
      raise ValueError("params must be POSokobanParams (env.default_params, fresh_params, "
                       f"stream_params, eval_params or make_params), got {type(params).__name__}")

  # --------------------------------------------------------------------------- observation
  def noise_mask(self, key: jax.Array, params: POSokobanParams) -> jax.Array:
    """bool `(H, W)`: the tiles shown as "empty", each independently with `empty_prob`."""
    return jax.random.uniform(key, (self.height, self.width)) < params.empty_prob

  def observe(self, key, state: sokoban.SokobanState, params: POSokobanParams) -> jax.Array:
    """Observation of `state` with the tiles of `noise_mask(key, params)` shown as floor."""
    codes = jnp.where(self.noise_mask(key, params), sokoban.FLOOR, sokoban.tile_codes(state))
    if self.observation == "rgb":
      return sokoban.render_codes(codes)
    return jax.nn.one_hot(codes, sokoban.NUM_TILES, dtype=jnp.float32)

  # --------------------------------------------------------------------------- episodes
  def _check_level(self, level: Level) -> None:
    shape = tuple(jnp.shape(level.walls))
    if shape != (self.height, self.width):
      raise ValueError(f"level must be one {self.height}x{self.width} level (walls of shape "
                       f"{(self.height, self.width)}), got walls of shape {shape}")
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(level)):
      return  # values unknown under jit
    sokoban_levels.validate_level(level.walls, level.targets, level.boxes, level.player, "level")
    nb, nt = int(np.asarray(level.boxes).sum()), int(np.asarray(level.targets).sum())
    if nb != self.num_boxes or nt != self.num_boxes:
      raise ValueError(f"level has {nb} boxes and {nt} targets; this environment has "
                       f"num_boxes={self.num_boxes} of each")

  def reset_to_level(self, key: jax.Array, level: Level, params: POSokobanParams | None = None,
                     index=-1):
    """Episode on a given level (the exogenous variable U). Returns `(obs, state)`.

    The initial observation's noise is `noise_mask(split(key)[1])`, as in `reset(key)`, so
    `reset_to_level(key, level_of(state))` repeats `reset(key)`'s `(obs, state)`.
    """
    params = self.default_params if params is None else params
    self._check_params(params)
    _check_key(key)
    self._check_level(level)
    state = self.state_from_level(level, index)
    return self.observe(jax.random.split(key)[1], state, params), state

  def reset(self, key: jax.Array, params: POSokobanParams | None = None):
    _check_key(key)
    return super().reset(key, params)

  def reset_env(self, key, params: POSokobanParams):
    """Sokoban's reset (level from `split(key)[0]`) observed with `split(key)[1]`'s noise."""
    self._check_params(params)
    k_level, k_obs = jax.random.split(key)
    _, state = super().reset_env(k_level, params)
    return self.observe(k_obs, state, params), state

  def step(self, key: jax.Array, state: sokoban.SokobanState, action: jax.Array,
           params: POSokobanParams | None = None):
    """`Sokoban.step` (transition and automatic reset with `split(key)[0]`) observed with
    `noise_mask(split(key)[1])`, the same tiles whatever the state, action or reset."""
    params = self.default_params if params is None else params
    self._check_params(params)
    _check_key(key)
    k_env, k_obs = jax.random.split(key)
    _, state, reward, terminated, truncated, info = super().step(k_env, state, action, params)
    return self.observe(k_obs, state, params), state, reward, terminated, truncated, info

  def step_env(self, key, state, action, params: POSokobanParams):
    """One transition without reset, observed with `noise_mask(split(key)[1])` (the mask
    `step(key, ...)` uses)."""
    _, state, reward, terminated, truncated, info = super().step_env(key, state, action, params)
    return (self.observe(jax.random.split(key)[1], state, params), state, reward, terminated,
            truncated, info)
