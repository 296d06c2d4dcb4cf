"""Small manifolds of known dimension for checking model selection by the bound.

Both are noisy samples in 3-D whose intrinsic dimension is unambiguous at the scale of a k-NN
neighbourhood: a gently curved sheet (2-D) and a helix arc (1-D).
"""
from __future__ import annotations

import numpy as np


def curved_sheet(n: int, seed: int = 0, *, bend: float = 0.5, noise: float = 0.01) -> np.ndarray:
  """(n, 3) points of the sheet z = bend * u^2 over (u, v) uniform on [-1, 1]^2, plus noise."""
  rng = np.random.default_rng(seed)
  u = rng.uniform(-1.0, 1.0, (n, 2))
  sheet = np.stack([u[:, 0], u[:, 1], bend * u[:, 0] ** 2], axis=1)
  return sheet + noise * rng.normal(size=(n, 3))


def helix(n: int, seed: int = 0, *, turns: float = 0.5, noise: float = 0.01) -> np.ndarray:
  """(n, 3) points of the helix (cos s, sin s, s / 2), s uniform over `turns` turns, plus noise."""
  rng = np.random.default_rng(seed)
  s = rng.uniform(0.0, 2.0 * np.pi * turns, n)
  return np.stack([np.cos(s), np.sin(s), 0.5 * s], axis=1) + noise * rng.normal(size=(n, 3))
