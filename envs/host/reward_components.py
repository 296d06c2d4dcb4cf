"""Reward components for value decomposition (SAC-D, MacGlashan et al. 2022, Sec. 4).

SAC-D learns one value head per reward component, so the environment must report a vector
`r_t = (r_t^1, ..., r_t^K)` with `sum_k r_t^k = r_t`. These functions rebuild the vectors from
what envpool returns, on the host, in numpy (batched over environments):

- Ant, HalfCheetah, Humanoid, Swimmer: the `reward_*` entries envpool puts in `info`.
- Hopper, Walker2d (gymnasium v4 rules): forward `w_f * x_velocity` (w_f = 1), healthy (1 per
  step; with `terminate_when_unhealthy` it is paid on every step, the terminal one included) and
  control `-1e-3 |a|^2` (on the action as sent, before the simulator's clipping).
- LunarLanderContinuous: from consecutive observations `s_{t-1}, s_t` and the action, following
  Box2D LunarLander's shaping `phi(s) = -100 |(x, y)| - 100 |(vx, vy)| - 100 |theta| + 10 c_l +
  10 c_r`: components position, velocity and angle shaping differences, the two leg contacts'
  differences, main and side engine fuel (`-0.3 m`, `-0.03 s`), and the terminal +-100, which
  replaces the step reward (all other components are then 0).
"""
from __future__ import annotations

import numpy as np

MUJOCO_INFO_KEYS = {
    "Ant": ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive"),
    "HalfCheetah": ("reward_run", "reward_ctrl"),
    "Humanoid": ("reward_linvel", "reward_quadctrl", "reward_alive", "reward_impact"),
    "Swimmer": ("reward_fwd", "reward_ctrl"),
}
REBUILT = {
    "Hopper": ("forward", "healthy", "control"),
    "Walker2d": ("forward", "healthy", "control"),
    "LunarLanderContinuous": ("position", "velocity", "angle", "left_leg", "right_leg",
                              "main_engine", "side_engine", "terminal"),
}
CTRL_COST = {"Hopper": 1e-3, "Walker2d": 1e-3}


def component_names(family: str) -> tuple[str, ...]:
  """Names of the reward components of an environment family ("Ant", "Hopper", ...)."""
  if family in MUJOCO_INFO_KEYS:
    return tuple(k.removeprefix("reward_") for k in MUJOCO_INFO_KEYS[family])
  if family in REBUILT:
    return REBUILT[family]
  return ("reward",)


def from_info(family: str, info) -> np.ndarray:
  """Components `(N, K)` that envpool reports in `info` (Ant, HalfCheetah, Humanoid, Swimmer)."""
  return np.stack([np.asarray(info[k], np.float64) for k in MUJOCO_INFO_KEYS[family]], -1)


def locomotion(family: str, info, action: np.ndarray) -> np.ndarray:
  """Hopper/Walker2d components `(N, 3)`: forward, healthy, control."""
  action = np.asarray(action, np.float64)
  forward = np.asarray(info["x_velocity"], np.float64)
  healthy = np.ones_like(forward)
  control = -CTRL_COST[family] * np.sum(action ** 2, -1)
  return np.stack([forward, healthy, control], -1)


def lunar_shaping_terms(obs: np.ndarray) -> np.ndarray:
  """The five shaping terms `(N, 5)` of LunarLander's potential: position, velocity, angle,
  left and right leg contact (their sum is the potential phi)."""
  obs = np.asarray(obs, np.float64)
  return np.stack([-100 * np.hypot(obs[:, 0], obs[:, 1]), -100 * np.hypot(obs[:, 2], obs[:, 3]),
                   -100 * np.abs(obs[:, 4]), 10 * obs[:, 6], 10 * obs[:, 7]], -1)


def lunar_lander(prev_obs, obs, action, terminated, reward) -> np.ndarray:
  """LunarLanderContinuous components `(N, 8)` for the transition `prev_obs -> obs`.

  Args:
    prev_obs, obs: `(N, 8)` observations before and after the step.
    action: `(N, 2)` continuous action (clipped to [-1, 1] as the simulator does).
    terminated: `(N,)` bool.
    reward: `(N,)` envpool's reward; used only for the sign of the terminal +-100 (crash or
      leaving the screen vs coming to rest), which the observation does not reveal.
  """
  a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
  shaping = lunar_shaping_terms(obs) - lunar_shaping_terms(prev_obs)
  main = np.where(a[:, 0] > 0, (np.clip(a[:, 0], 0, 1) + 1) * 0.5, 0.0)
  side = np.where(np.abs(a[:, 1]) > 0.5, np.clip(np.abs(a[:, 1]), 0.5, 1.0), 0.0)
  comps = np.concatenate([shaping, -0.3 * main[:, None], -0.03 * side[:, None],
                          np.zeros_like(main)[:, None]], -1)
  terminated = np.asarray(terminated, bool)
  terminal = np.zeros_like(comps)
  terminal[:, -1] = 100.0 * np.sign(np.asarray(reward, np.float64))
  return np.where(terminated[:, None], terminal, comps)
