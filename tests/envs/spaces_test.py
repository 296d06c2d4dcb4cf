"""Tests of the observation/action specs and the tile renderer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import rendering, spaces


def test_discrete_sample_and_contains():
  space = spaces.Discrete(5)
  draws = np.asarray(jax.vmap(space.sample)(jax.random.split(jax.random.PRNGKey(0), 5000)))
  assert draws.min() == 0 and draws.max() == 4
  # Each value has p = 0.2: count sd = sqrt(5000 * 0.16) = 28.3; allow 4 sd.
  np.testing.assert_allclose(np.bincount(draws), 1000, atol=4 * 28.3)
  assert space.contains(np.int32(4)) and not space.contains(np.int32(5))
  assert not space.contains(np.float32(1.0)) and not space.contains(np.zeros(2, np.int32))
  with pytest.raises(ValueError, match="num_values"):
    spaces.Discrete(0)


def test_box_sample_and_contains():
  space = spaces.Box(-1.0, 2.0, (3,), jnp.float32)
  x = np.asarray(space.sample(jax.random.PRNGKey(0)))
  assert space.contains(x) and x.shape == (3,)
  assert not space.contains(np.array([0.0, 0.0, 3.0], np.float32))
  assert not space.contains(np.zeros(3, np.float64))
  img = spaces.Box(0, 255, (2, 2, 3), jnp.uint8)
  assert img.contains(np.asarray(img.sample(jax.random.PRNGKey(1))))


def test_paint_places_sprites():
  sprites = rendering.stack([rendering.square((0, 0, 0), 2), rendering.square((9, 9, 9), 2)])
  codes = jnp.array([[0, 1, 0], [1, 0, 0]])
  img = np.asarray(rendering.paint(codes, sprites))
  assert img.shape == (4, 6, 3)
  expected = np.kron(np.asarray(codes), np.ones((2, 2))) * 9
  np.testing.assert_array_equal(img[..., 0], expected)
  d = rendering.disc((255, 0, 0), (0, 0, 0), size=8, radius=0.35)
  assert tuple(d[4, 4]) == (255, 0, 0) and tuple(d[0, 0]) == (0, 0, 0)
  f = rendering.framed((1, 2, 3), (0, 0, 0), size=8)
  assert tuple(f[0, 0]) == (0, 0, 0) and tuple(f[1, 1]) == (1, 2, 3)
