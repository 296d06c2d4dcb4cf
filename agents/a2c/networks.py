"""The actor-critic network of the standard agent: conv torso, one fully connected layer, two heads.

Mnih et al. 2016 (A3C), Sec. 5.1: convolutional layers with rectifiers, a fully connected hidden
layer, then a softmax policy output and a linear value output sharing the torso; the I2A paper
(Weber et al. 2017, Sec. 4 and App. B) uses this "standard" model-free agent as its baseline.
Layer sizes are fields (CPU-sized defaults; the presets set them). Flat observations (rank 1)
skip the convolutions. Integer observations (RGB uint8) are scaled to [0, 1].
Initialisation: orthogonal, gain sqrt(2) in the torso, 0.01 for the policy head (near-uniform
initial policy) and 1 for the value head, zero biases (the common A2C recipe).

Convolutions are `PatchConv`: image patches times a kernel matrix, the same function as
`flax.linen.Conv` with the same kernel. XLA's CPU backend differentiates a convolution inside a
`lax.scan` (the trainer's loop over updates) about 10x slower than outside one; the patches
form keeps the kernel's gradient a matrix product and trains several times faster there.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class PatchConv(nn.Module):
  """`nn.Conv(features, (k, k), (s, s), padding="SAME")` computed as patches @ kernel.

  Params `kernel` `(k, k, C_in, features)` and `bias` `(features,)`, as `nn.Conv`'s.
  """
  features: int
  kernel_size: int
  stride: int
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, c_in = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (k, k, c_in, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    patches = jax.lax.conv_general_dilated_patches(
        x, (k, k), (self.stride, self.stride), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))   # [..., C_in * k * k], channel-major
    matrix = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in * k * k, self.features)
    return patches @ matrix + bias


class ActorCritic(nn.Module):
  """`(logits[..., A], value[...])` of observations `[..., *obs_shape]`.

  Attributes:
    num_actions: A.
    obs_rank: rank of one observation: 3 (H, W, C) for images and planes, 1 for vectors.
    conv_features, kernel_sizes, strides: one entry per conv layer (rank-3 observations only).
    hidden_size: width of the fully connected layer.
  """
  num_actions: int
  obs_rank: int = 3
  conv_features: Sequence[int] = (16, 16)
  kernel_sizes: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 2)
  hidden_size: int = 256

  @nn.compact
  def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    if self.obs_rank not in (1, 3):
      raise ValueError(f"obs_rank must be 1 (vectors) or 3 (images); got {self.obs_rank}.")
    if not len(self.conv_features) == len(self.kernel_sizes) == len(self.strides):
      raise ValueError("conv_features, kernel_sizes and strides need one entry per layer; got "
                       f"{self.conv_features}, {self.kernel_sizes}, {self.strides}.")
    batch_shape = obs.shape[:obs.ndim - self.obs_rank]
    x = obs.reshape((-1,) + obs.shape[len(batch_shape):])
    if jnp.issubdtype(x.dtype, jnp.integer):
      x = x.astype(jnp.float32) / 255.0
    x = x.astype(jnp.float32)
    torso = nn.initializers.orthogonal(np.sqrt(2.0))
    if self.obs_rank == 3:
      for f, k, s in zip(self.conv_features, self.kernel_sizes, self.strides):
        x = nn.relu(PatchConv(f, k, s, kernel_init=torso)(x))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(self.hidden_size, kernel_init=torso)(x))
    logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(x)
    value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[:, 0]
    return (logits.reshape(batch_shape + (self.num_actions,)), value.reshape(batch_shape))
