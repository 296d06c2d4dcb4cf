"""Training and test sequences for the environment models, cut from recorded trajectories.

B18 Sec. 4 trains on sequences of a few context frames followed by the frames, actions and
rewards of the next steps. `sequences_from_trajectory` cuts `Sequences` windows (3 context
frames + `T` steps) from a `[T_total, B]` trajectory of transitions, keeping only windows that
lie inside one episode. Host-side numpy (run once when a launcher builds its data).
"""
from __future__ import annotations

import numpy as np

from latent_dynamics.env_models.models import NUM_CONTEXT, Sequences


def sequences_from_trajectory(obs_tm1, action, obs_t, reward, valid, length: int,
                              stride: int = 1) -> Sequences:
  """Windows of `3 + length` frames from `[T_total, B]` transitions.

  Transition `i` goes from `obs_tm1[i]` by `action[i]` to `obs_t[i]`, paying `reward[i]`;
  `valid[i] = 0` where the episode ended on step `i` (`obs_t[i]` is then the next episode's
  first frame, as `obs_tm1[i + 1]` is). The window starting at `j` holds the frames
  `obs_tm1[j], ..., obs_tm1[j + length + 2]` (the last one read as `obs_t[j + length + 1]`),
  the actions and rewards of transitions `j + 2, ..., j + length + 1`, and is kept when the
  `length + 2` transitions `j, ..., j + length + 1` are all valid. Starts every `stride` steps.

  Returns:
    `Sequences(obs[N, 3 + length, ...], action[N, length], reward[N, length])`, windows
    ordered by start then environment.

  Raises:
    ValueError: `length` or `stride` below 1, mismatched shapes, or a trajectory too short
      for one window.
  """
  obs_tm1, obs_t = np.asarray(obs_tm1), np.asarray(obs_t)
  action, reward, valid = np.asarray(action), np.asarray(reward), np.asarray(valid)
  if length < 1 or stride < 1:
    raise ValueError(f"length and stride must be >= 1; got {length}, {stride}.")
  t_total = action.shape[0]
  if obs_tm1.shape != obs_t.shape or obs_tm1.shape[:2] != action.shape \
      or reward.shape != action.shape or valid.shape != action.shape:
    raise ValueError(f"obs_tm1, obs_t [T, B, ...] and action, reward, valid [T, B] must agree; "
                     f"got {obs_tm1.shape}, {obs_t.shape}, {action.shape}, {reward.shape}, "
                     f"{valid.shape}.")
  span = length + NUM_CONTEXT - 1           # transitions per window
  if t_total < span:
    raise ValueError(f"the trajectory has {t_total} steps; a window needs {span}.")
  frames = np.concatenate([obs_tm1, obs_t[-1:]], axis=0)      # [T_total + 1, B, ...]
  obs, acts, rews = [], [], []
  for j in range(0, t_total - span + 1, stride):
    keep = np.all(valid[j:j + span] > 0, axis=0)                  # [B]
    if not keep.any():
      continue
    obs.append(np.swapaxes(frames[j:j + span + 1], 0, 1)[keep])
    acts.append(action[j + NUM_CONTEXT - 1:j + span].T[keep])
    rews.append(reward[j + NUM_CONTEXT - 1:j + span].T[keep])
  if not obs:
    raise ValueError("no window lies inside one episode; record longer episodes or use a "
                     "shorter length.")
  return Sequences(np.concatenate(obs).astype(np.float32), np.concatenate(acts).astype(np.int32),
                   np.concatenate(rews).astype(np.float32))
