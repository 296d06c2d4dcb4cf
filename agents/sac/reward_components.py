"""Checks on the decomposed rewards an environment hands to SAC-D.

SAC-D needs, beside the scalar reward, a vector `info["reward_components"]` whose entries sum to
the reward (MacGlashan et al. 2022, Sec. 3: `r = sum_i r^i`). These checks run on concrete
(host) values: on every step of a host environment, and on a probe step of a jittable one before
its training loop is compiled. Errors are `ValueError`s naming the environment and the component.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

INFO_KEY = "reward_components"


def component_names_or_default(names: Sequence[str] | None, num_components: int) -> list[str]:
  """The given component names, or `component_0, component_1, ...`."""
  if names is None:
    return [f"component_{i}" for i in range(num_components)]
  names = list(names)
  if len(names) != num_components:
    raise ValueError(f"component_names has {len(names)} names for {num_components} components")
  return names


def components_from_info(env_name: str, info: Mapping[str, Any] | None) -> np.ndarray | Any:
  """`info["reward_components"]`, or a ValueError naming the environment if it is absent."""
  if info is None or INFO_KEY not in info:
    keys = sorted(info) if info else []
    raise ValueError(f"environment {env_name!r} provides no info[{INFO_KEY!r}] (info keys: "
                     f"{keys}); SAC-D needs a reward decomposition. Use an adapter that "
                     "decomposes the reward, or train plain SAC.")
  return info[INFO_KEY]


def check_step(env_name: str, obs: Any, reward: Any, components: Any,
               component_names: Sequence[str] | None = None, *, rtol: float = 1e-4,
               atol: float = 1e-4) -> None:
  """Validates one (batched) environment step on the host.

  Args:
    env_name: used in error messages.
    obs: `[..., obs_dim]` observations; must be finite.
    reward: `[...]` scalar rewards; must be finite.
    components: `[..., K]` reward components; finite, and summing to `reward` within
      `atol + rtol * |reward|`.
    component_names: names of the K components for messages.

  Raises:
    ValueError: naming `env_name` and the offending component (or the observation/reward).
  """
  obs = np.asarray(obs)
  reward = np.asarray(reward, np.float64)
  components = np.asarray(components, np.float64)
  if not np.all(np.isfinite(obs)):
    bad = np.argwhere(~np.isfinite(obs))[0]
    raise ValueError(f"environment {env_name!r} returned a non-finite observation "
                     f"(entry {tuple(int(i) for i in bad)} is {obs[tuple(bad)]})")
  if not np.all(np.isfinite(reward)):
    raise ValueError(f"environment {env_name!r} returned a non-finite reward "
                     f"({reward[~np.isfinite(reward)][:3].tolist()})")
  if components.shape[:-1] != reward.shape:
    raise ValueError(f"environment {env_name!r}: info[{INFO_KEY!r}] has shape {components.shape},"
                     f" expected the reward's shape {reward.shape} plus a components axis")
  names = component_names_or_default(component_names, components.shape[-1])
  finite = np.isfinite(components)
  if not np.all(finite):
    k = int(np.argwhere(~finite)[0][-1])
    raise ValueError(f"environment {env_name!r}: reward component {names[k]!r} is non-finite")
  total = components.sum(-1)
  gap = np.abs(total - reward)
  if np.any(gap > atol + rtol * np.abs(reward)):
    row = np.unravel_index(np.argmax(gap), gap.shape)
    parts = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, components[row]))
    raise ValueError(f"environment {env_name!r}: reward components do not sum to the reward: "
                     f"{parts} sum to {total[row]:.6g}, reward is {reward[row]:.6g}")
