"""RGB rendering of grid worlds: one sprite per tile code, painted by a gather.

`paint(codes, sprites)` turns an integer grid `(H, W)` into an image `(H*s, W*s, 3)` uint8 by
looking each code up in `sprites` `(num_codes, s, s, 3)`; it is jittable and costs one gather, so
RGB observations stay cheap under `vmap`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def paint(codes: jax.Array, sprites: jax.Array) -> jax.Array:
  """Image `(H*s, W*s, 3)` uint8 of the tile grid `codes` `(H, W)` int, sprites `(C, s, s, 3)`."""
  h, w = codes.shape
  s = sprites.shape[1]
  tiles = sprites[codes]  # (H, W, s, s, 3)
  return tiles.transpose(0, 2, 1, 3, 4).reshape(h * s, w * s, 3)


def square(color, size: int = 8) -> np.ndarray:
  """A filled `size x size` sprite of one RGB colour."""
  return np.broadcast_to(np.asarray(color, np.uint8), (size, size, 3)).copy()


def disc(color, background, size: int = 8, radius: float = 0.35) -> np.ndarray:
  """A disc of `color` (radius as a fraction of the tile) on a `background` tile."""
  c = (np.arange(size) + 0.5) / size - 0.5
  inside = (c[:, None] ** 2 + c[None, :] ** 2) <= radius ** 2
  out = square(background, size)
  out[inside] = np.asarray(color, np.uint8)
  return out


def framed(color, background, size: int = 8, border: int = 1) -> np.ndarray:
  """A square of `color` inset by `border` pixels on a `background` tile (boxes, crates)."""
  out = square(background, size)
  out[border:size - border, border:size - border] = np.asarray(color, np.uint8)
  return out


def stack(sprites) -> jax.Array:
  """Sprite table `(C, s, s, 3)` uint8 from a list of sprites."""
  return jnp.asarray(np.stack(sprites), jnp.uint8)
