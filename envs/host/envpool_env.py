"""One host-side interface for envpool's Atari, MuJoCo, Box2D and Sokoban environments.

    env = HostEnv("Hopper-v4", num_envs=8, seed=0)
    obs, info = env.reset()
    out = env.step(actions)   # HostStep(obs, reward, terminated, truncated, reward_components,
                              #          info)

Time-limit truncation is reported apart from termination (envpool's gymnasium API), and every
step carries `reward_components` `(N, K)` beside the scalar reward, with `sum_k = reward` (see
`envs.host.reward_components`; tasks without a decomposition have the single component
"reward"). envpool resets a finished environment on the *next* `step` call (its action is
ignored, its reward is 0); `info["reset_step"]` marks those rows, whose components are 0.

Sokoban: envpool 1.2.5 looks for its Boxoban levels under `envpool_assets/jumanji/...`, while
the wheel ships them under `envpool/jumanji/assets/...`; without them it silently plays one
trivial level forever. The adapter points `base_path` at the shipped levels and counts the
distinct levels of a probe batch, refusing (ValueError) when only one is found.

These environments run on the host (C++ threads) and are not jittable; the JAX-native ones are
in `envs`.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from envs.host import reward_components as rc

ATARI_ROMS = {"MsPacman": "ms_pacman.bin", "Pong": "pong.bin", "Breakout": "breakout.bin"}


class HostStep(NamedTuple):
  obs: Any
  reward: np.ndarray              # (N,) float32
  terminated: np.ndarray          # (N,) bool
  truncated: np.ndarray           # (N,) bool, time limit only
  reward_components: np.ndarray   # (N, K) float64, sums to reward
  info: dict


def family_of(task_id: str) -> str:
  """"Hopper-v4" -> "Hopper"; "Jumanji/Sokoban-v0" -> "Sokoban"."""
  return task_id.split("/")[-1].rsplit("-v", 1)[0]


def _envpool():
  import envpool  # noqa: PLC0415  (imported lazily: heavy, and optional for JAX-only users)
  return envpool


def atari_rom_path(family: str) -> str | None:
  """Path of an Atari ROM in envpool's assets, or None if it is not installed."""
  try:
    from envpool.atari.registration import atari_rom_path as root  # noqa: PLC0415
  except ImportError:
    return None
  name = ATARI_ROMS.get(family)
  if name is None:
    return None
  path = os.path.join(root, name)
  return path if os.path.isfile(path) else None


def sokoban_base_path() -> str | None:
  """The directory under which envpool's wheel ships `jumanji/assets/boxoban/*.npy`."""
  root = os.path.dirname(_envpool().__file__)
  path = os.path.join(root, "jumanji", "assets", "boxoban", "unfiltered-test.npy")
  return root if os.path.isfile(path) else None


def count_distinct_sokoban_levels(num_probe: int = 32, **kwargs) -> int:
  """Distinct initial grids among `num_probe` envpool Sokoban resets with `kwargs`."""
  env = _envpool().make("Sokoban-v0", env_type="gymnasium", num_envs=num_probe, **kwargs)
  obs, _ = env.reset()
  env.close()
  return len({g.tobytes() for g in np.asarray(obs["grid"])})


class HostEnv:
  """A batch of envpool environments behind one interface; see the module docstring.

  Args:
    task_id: envpool task, e.g. "MsPacman-v5", "HalfCheetah-v4", "LunarLanderContinuous-v2",
      "Sokoban-v0".
    num_envs: batch size.
    seed: envpool seed.
    **kwargs: passed to `envpool.make`.
  """

  def __init__(self, task_id: str, num_envs: int = 1, seed: int = 0, **kwargs):
    if num_envs < 1:
      raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    self.task_id, self.num_envs = task_id, num_envs
    self.family = family_of(task_id)
    envpool = _envpool()
    if task_id not in envpool.list_all_envs():
      raise ValueError(f"task_id {task_id!r} is not an envpool task")
    if task_id.endswith("-v5") and self.family in ATARI_ROMS and atari_rom_path(
        self.family) is None:
      raise FileNotFoundError(f"the Atari ROM for {self.family} is not installed in envpool's "
                              "assets (pip install envpool-assets); cannot make " + task_id)
    if self.family == "Sokoban":
      kwargs.setdefault("base_path", sokoban_base_path() or "")
      distinct = count_distinct_sokoban_levels(**kwargs)
      if distinct < 2:
        raise ValueError(
            "envpool's Sokoban found no Boxoban level file under base_path="
            f"{kwargs['base_path']!r} and fell back to a single trivial level ({distinct} "
            "distinct level in 32 resets); pass base_path pointing at a directory containing "
            "jumanji/assets/boxoban/unfiltered-test.npy")
    self._env = envpool.make(task_id, env_type="gymnasium", num_envs=num_envs, seed=seed,
                             **kwargs)
    self.component_names = rc.component_names(self.family)
    self._prev_obs = None
    self._reset_next = np.zeros(num_envs, bool)

  @property
  def observation_space(self):
    return self._env.observation_space

  @property
  def action_space(self):
    return self._env.action_space

  def reset(self):
    """Resets every environment. Returns `(obs, info)`."""
    obs, info = self._env.reset()
    self._prev_obs = obs
    self._reset_next[:] = False
    return obs, info

  def _check_action(self, action) -> np.ndarray:
    space = self._env.action_space
    action = np.asarray(action)
    shape = (self.num_envs,) + tuple(space.shape)
    if action.shape != shape:
      raise ValueError(f"action must have shape {shape}, got {action.shape}")
    if hasattr(space, "n"):
      if not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"action must have an integer dtype, got {action.dtype}")
      if np.any(action < 0) or np.any(action >= space.n):
        raise ValueError(f"action must be in [0, {space.n}), got {action.tolist()}")
      return action.astype(np.int32)
    if not np.issubdtype(action.dtype, np.floating) or not np.all(np.isfinite(action)):
      raise ValueError("action must be finite floats")
    return action.astype(np.float32)

  def step(self, action) -> HostStep:
    """One step of every environment; see `HostStep`."""
    if self._prev_obs is None:
      raise ValueError("call reset() before step()")
    action = self._check_action(action)
    obs, reward, terminated, truncated, info = self._env.step(action)
    reward = np.asarray(reward, np.float32)
    comps = self._components(obs, action, terminated, reward, info)
    comps[self._reset_next] = 0.0
    info = dict(info, reset_step=self._reset_next.copy())
    self._prev_obs = obs
    self._reset_next = np.asarray(terminated | truncated, bool)
    return HostStep(obs, reward, np.asarray(terminated, bool), np.asarray(truncated, bool),
                    comps, info)

  def reset_some(self, env_ids) -> np.ndarray:
    """Resets the environments `env_ids` now (envpool's partial reset), instead of on their next
    `step`. Returns their first observations, in the order of `env_ids`."""
    if self._prev_obs is None:
      raise ValueError("call reset() before reset_some()")
    env_ids = np.asarray(env_ids, np.int32).reshape(-1)
    if env_ids.size == 0:
      return self._prev_obs[:0]
    distinct = len(set(env_ids.tolist())) == env_ids.size
    if np.any(env_ids < 0) or np.any(env_ids >= self.num_envs) or not distinct:
      raise ValueError(f"env_ids must be distinct indices in [0, {self.num_envs}); got "
                       f"{env_ids.tolist()}")
    obs, info = self._env.reset(env_ids)
    row = {int(e): i for i, e in enumerate(np.asarray(info["env_id"]))}
    obs = np.asarray(obs)[[row[int(e)] for e in env_ids]]  # envpool's row order -> env_ids'
    self._prev_obs = np.array(self._prev_obs)
    self._prev_obs[env_ids] = obs
    self._reset_next[env_ids] = False
    return obs

  def _components(self, obs, action, terminated, reward, info) -> np.ndarray:
    if self.family in rc.MUJOCO_INFO_KEYS:
      return rc.from_info(self.family, info)
    if self.family in ("Hopper", "Walker2d"):
      return rc.locomotion(self.family, info, action)
    if self.family == "LunarLanderContinuous":
      return rc.lunar_lander(self._prev_obs, obs, action, terminated, reward)
    return np.asarray(reward, np.float64)[:, None]

  def close(self) -> None:
    self._env.close()


# envpool/jumanji Sokoban grid codes and action order.
_JUMANJI_AGENT, _JUMANJI_BOX = 3, 4
_JUMANJI_WALL, _JUMANJI_TARGET = 1, 2
# jumanji actions are (up, right, down, left); ours (envs.sokoban) are (up, down, left, right).
JUMANJI_TO_OURS = np.array([0, 3, 1, 2], np.int32)


def sokoban_levels_from_grid(grid: np.ndarray):
  """`envs.sokoban_levels.Level` bank from envpool Sokoban grids `(N, H, W, 2)` (validated)."""
  from envs import sokoban_levels  # noqa: PLC0415
  grid = np.asarray(grid)
  if grid.ndim != 4 or grid.shape[-1] != 2:
    raise ValueError(f"grid must have shape (N, H, W, 2), got {grid.shape}")
  variable, fixed = grid[..., 0], grid[..., 1]
  players = np.stack([np.argwhere(v == _JUMANJI_AGENT)[0] if (v == _JUMANJI_AGENT).any()
                      else np.array([-1, -1]) for v in variable])
  return sokoban_levels.make_bank(fixed == _JUMANJI_WALL, fixed == _JUMANJI_TARGET,
                                  variable == _JUMANJI_BOX, players, name="envpool grid")
