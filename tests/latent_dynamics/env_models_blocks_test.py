"""Building blocks of `latent_dynamics.env_models.blocks`: hand-worked rearrangements and the
I2A model's pool-and-inject as the reference."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics.env_models import blocks


def test_space_to_depth_by_hand_and_inverse():
  x = jnp.arange(4 * 4 * 2, dtype=jnp.float32).reshape(1, 4, 4, 2)
  y = blocks.space_to_depth(x, 2)
  assert y.shape == (1, 2, 2, 8)
  # Cell (0, 1) of the output holds input cells (0, 2), (0, 3), (1, 2), (1, 3), channels inner.
  want = np.concatenate([np.asarray(x[0, i, j]) for i in (0, 1) for j in (2, 3)])
  np.testing.assert_array_equal(np.asarray(y[0, 0, 1]), want)
  np.testing.assert_array_equal(np.asarray(blocks.depth_to_space(y, 2)), np.asarray(x))
  assert blocks.space_to_depth(x, 1) is x


def test_pad_to_multiple_and_errors():
  x = jnp.ones((2, 5, 7, 3))
  y = blocks.pad_to_multiple(x, 2)
  assert y.shape == (2, 6, 8, 3) and float(y.sum()) == 2 * 5 * 7 * 3
  with pytest.raises(ValueError, match="multiples of the factor 2"):
    blocks.space_to_depth(x, 2)
  with pytest.raises(ValueError, match="multiple of factor"):
    blocks.depth_to_space(jnp.ones((1, 2, 2, 6)), 2)


def test_pool_and_inject_broadcasts_the_frame_maximum():
  # (The I2A environment model imports this function; its own tests check it by hand too.)
  x = jax.random.normal(jax.random.key(0), (3, 5, 6, 4))
  got = blocks.pool_and_inject(x)
  np.testing.assert_array_equal(np.asarray(got[..., :4]), np.asarray(x))
  np.testing.assert_allclose(np.asarray(got[1, 2, 3, 4:]), np.asarray(x[1].max(axis=(0, 1))))


def test_both_conv_lowerings_equal_flax_conv():
  x = jax.random.normal(jax.random.key(1), (2, 5, 6, 3))
  for k, impl in ((1, "xla"), (5, "xla"), (5, "patches")):   # 1x1 is a matmul in both
    conv = blocks.Conv(4, k, impl)
    params = conv.init(jax.random.key(2), x)
    want = nn.Conv(4, (k, k), padding="SAME").apply(params, x)
    np.testing.assert_allclose(np.asarray(conv.apply(params, x)), np.asarray(want), atol=1e-5)
