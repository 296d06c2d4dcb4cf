"""PO-Sokoban (CF-GPS, Buesing et al. 2019, Sec. 5): partially observed Sokoban.

Sokoban with 3 boxes, 5 actions (no-op and the 4 moves) and 50-step episodes, in which each
tile's observation is independently replaced by "empty" (floor) with probability 0.9 at every
step. The level is an explicit exogenous variable: `reset_to_level(key, level)` starts an
episode on a given level, and the observation noise is a function of the step key only, so an
episode can be replayed under another policy with the same level and the same noise, which is
what counterfactual evaluation (CF-GPS Alg. 1) needs. `state.level_index` records which bank
level an episode uses.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from envs import sokoban
from envs.sokoban_levels import Level


@flax.struct.dataclass
class POSokobanParams(sokoban.SokobanParams):
  """Sokoban params plus the per-tile probability of observing "empty"."""
  empty_prob: float = 0.9


class POSokoban(sokoban.Sokoban):
  """Partially observed Sokoban; see the module docstring."""

  def __init__(self, height: int = 10, width: int = 10, num_boxes: int = 3,
               observation: str = "symbolic"):
    super().__init__(height, width, num_boxes, observation, noop=True)

  @property
  def default_params(self) -> POSokobanParams:
    return POSokobanParams(levels=sokoban.default_levels(self.height, self.width, self.num_boxes),
                           max_steps=50)

  def make_params(self, levels: Level, **kwargs) -> POSokobanParams:
    kwargs.setdefault("max_steps", 50)
    super().make_params(levels)  # checks the bank's shape
    return POSokobanParams(levels=levels, **kwargs)

  def observe(self, key, state: sokoban.SokobanState, params: POSokobanParams) -> jax.Array:
    """Observation with each tile independently shown as floor with prob `empty_prob`."""
    codes = sokoban.tile_codes(state)
    hidden = jax.random.uniform(key, codes.shape) < params.empty_prob
    codes = jnp.where(hidden, sokoban.FLOOR, codes)
    if self.observation == "rgb":
      return sokoban.render_codes(codes)
    return jax.nn.one_hot(codes, sokoban.NUM_TILES, dtype=jnp.float32)

  def reset_to_level(self, key, level: Level, params: POSokobanParams = None, index=-1):
    """Episode on a given level (the exogenous variable). Returns `(obs, state)`."""
    params = self.default_params if params is None else params
    state = self.state_from_level(level, index)
    return self.observe(key, state, params), state

  def reset_env(self, key, params: POSokobanParams):
    k_level, k_obs = jax.random.split(key)
    index = jax.random.randint(k_level, (), 0, params.levels.walls.shape[0])
    return self.reset_to_level(k_obs, params.levels[index], params, index)

  def step_env(self, key, state, action, params: POSokobanParams):
    _, state, reward, terminated, truncated, info = super().step_env(key, state, action, params)
    return self.observe(key, state, params), state, reward, terminated, truncated, info

