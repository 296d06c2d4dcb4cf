"""Building blocks of the state-space environment models (Buesing et al. 2018, App. A).

Buesing, Weber, Racaniere, Eslami, Rezende, Reichert, Viola, Besse, Gregor, Hassabis, Wierstra
2018, *Learning and querying fast generative models for reinforcement learning* (**B18**). Each
block names its source: [P] the paper's appendix (as its architecture tables are commonly
reproduced; the appendix text itself could not be consulted when this was written), [O] our
choice where the paper is silent or our symbolic-tile frames differ from its RGB frames.

- `space_to_depth` / `depth_to_space` [P]: rearrange `f x f` cells into channels and back (the
  encoder's down-sampling and the decoder's up-sampling, no strided convolutions). [O] Frames
  whose height or width is not a multiple of the total factor are zero-padded at the bottom and
  right (`pad_to_multiple`) and the decoder crops back.
- `Conv` [O]: `nn.Conv` (SAME, stride 1) with two lowerings of one function and one set of
  params: XLA's convolution ("xla") and patches @ kernel ("patches"); the models use "xla" for
  rollouts and, by default (`EnvModelConfig.train_conv`), for the ELBO too.
- `ConvStack` [P]: `conv k1 (c1) -> relu -> conv k2 (c2), plus the first conv's output -> relu
  -> conv k3 (c3)`, stride 1, SAME padding. [O] When `c1 != c2` the skip is left out.
- `ResConv` [P]: `x + (conv 3x3 (h) -> relu -> conv 5x5 (h) -> relu -> conv 3x3 (C_x))(y)`:
  a residual block reading `y` (default `x`) and adding to `x`.
- `pool_and_inject` [P] (also Weber et al. 2017, App. B): each channel's maximum over the whole
  map, broadcast back to every cell and concatenated with the input; `PoolAndInject` [P]
  applies a 3x3 conv first, pooling the conv's output and concatenating it with the input.
  `pool_and_inject` has the signature and behaviour of `agents.i2a.env_model.pool_and_inject`
  (the I2A model may import this one; `latent_dynamics` must not import `agents`).
- `Encoder` [P]: `space_to_depth(f1) -> ConvStack(3, 5, 3; 16, 16, E) -> space_to_depth(f2)
  -> ConvStack(3, 5, 3; 32, 32, E) -> relu`. B18 uses `(f1, f2) = (4, 2)` on 80x80 pixels;
  [O] our symbolic frames have one vector per tile, so the default is `(1, 2)`: an `H x W`
  frame of tiles becomes a `ceil(H / 2) x ceil(W / 2)` state grid.
- `InitialState` [P]: `ConvStack(1, 3, 3; S, S, S)` of the encodings of the first three
  observations, concatenated on channels.
- `Transition` [P]: `s_t = g(s_{t-1}, z_t, a_{t-1})`: `ResConv -> relu -> PoolAndInject ->
  ResConv` on the state with the action's one-hot broadcast to planes (and `z_t` where the
  model has one). [O] The first residual adds to `s_{t-1}` (reading `[s, a, z]`); the second
  adds to the first's output (reading its pool-and-inject), so the state keeps `S` channels.
- `GaussianHead` [P]: the prior `p(z_t | s_{t-1}, a_{t-1})` and the posterior
  `q(z_t | s_{t-1}, a_{t-1}, e_t, mu_p, sigma_p)` are each `ConvStack(1, 3, 3; h, h, 2 Z)`
  of the concatenated inputs; mean and `sigma = softplus(.) + sigma_min` ([O] the floor,
  1e-3, keeps the KL finite).
- `Decoder` [P]: frame head `ConvStack(1, 5, 3; h, h, D) -> depth_to_space(f2) ->
  ConvStack(3, 3, 1; D, D, C f1^2) -> depth_to_space(f1)` of `[s_t, z_t]`; [O] its outputs are
  per-tile logits over the `C` tile classes (a categorical per tile, as the I2A model's frame
  head), cropped to the frame. Reward head [P] `conv 3x3 (24) -> relu -> flatten -> linear`;
  [O] to one scalar, the mean of a unit-variance Gaussian (one head serves any jump size: the
  sum of `k` rewards takes values that no one-step reward class has).
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

SIGMA_MIN = 1e-3


# ------------------------------------------------------------------------------ reshapes
def pool_and_inject(x: jax.Array) -> jax.Array:
  """`[..., H, W, F] -> [..., H, W, 2F]`: `x` and, broadcast to every cell, the per-channel
  maximum over the frame (B18 App. A; Weber et al. 2017, App. B)."""
  pooled = jnp.max(x, axis=(-3, -2), keepdims=True)
  return jnp.concatenate([x, jnp.broadcast_to(pooled, x.shape)], axis=-1)


def padded_size(size: int, factor: int) -> int:
  """The smallest multiple of `factor` that is at least `size`."""
  return -(-int(size) // int(factor)) * int(factor)


def pad_to_multiple(x: jax.Array, factor: int) -> jax.Array:
  """`[..., H, W, C] -> [..., H', W', C]`, zero-padded at the bottom and right to multiples of
  `factor` ([O] for frames whose size the space-to-depth factor does not divide)."""
  h, w = x.shape[-3], x.shape[-2]
  ph, pw = padded_size(h, factor) - h, padded_size(w, factor) - w
  if ph == 0 and pw == 0:
    return x
  pad = [(0, 0)] * (x.ndim - 3) + [(0, ph), (0, pw), (0, 0)]
  return jnp.pad(x, pad)


def space_to_depth(x: jax.Array, factor: int) -> jax.Array:
  """`[..., H, W, C] -> [..., H / f, W / f, f * f * C]`: each `f x f` block of cells becomes one
  cell (channel index `(i * f + j) * C + c` for offset `(i, j)` in the block)."""
  f = int(factor)
  if f == 1:
    return x
  *lead, h, w, c = x.shape
  if h % f or w % f:
    raise ValueError(f"space_to_depth: height and width ({h}, {w}) must be multiples of the "
                     f"factor {f}.")
  x = x.reshape(*lead, h // f, f, w // f, f, c)
  x = jnp.moveaxis(x, -4, -3)                       # [..., H/f, W/f, f(i), f(j), C]
  return x.reshape(*lead, h // f, w // f, f * f * c)


def depth_to_space(x: jax.Array, factor: int) -> jax.Array:
  """The inverse of `space_to_depth`: `[..., H, W, f * f * C] -> [..., H f, W f, C]`."""
  f = int(factor)
  if f == 1:
    return x
  *lead, h, w, fc = x.shape
  if fc % (f * f):
    raise ValueError(f"depth_to_space: channels ({fc}) must be a multiple of factor^2 = "
                     f"{f * f}.")
  c = fc // (f * f)
  x = x.reshape(*lead, h, w, f, f, c)
  x = jnp.moveaxis(x, -3, -4)                       # [..., H, f(i), W, f(j), C]
  return x.reshape(*lead, h * f, w * f, c)


def broadcast_planes(v: jax.Array, grid: tuple) -> jax.Array:
  """`[N, D] -> [N, h, w, D]`: a vector per example broadcast to every cell of the grid."""
  return jnp.broadcast_to(v[:, None, None, :], (v.shape[0],) + tuple(grid) + (v.shape[-1],))


# ------------------------------------------------------------------------------ conv blocks
CONV_IMPLS = ("xla", "patches")


class Conv(nn.Module):
  """`nn.Conv(features, (k, k), padding="SAME")`, stride 1, with `nn.Conv`'s params
  (`kernel (k, k, C_in, F)`, `bias (F,)`) and a choice of lowering, `impl`:

  - "xla": `lax.conv_general_dilated`, XLA's convolution (fast forward rollouts);
  - "patches": patches @ kernel (`conv_general_dilated_patches`, then a matmul), the same
    function (as `agents.a2c.networks.PatchConv`, which `latent_dynamics` may not import). [O]
    It was the ELBO's lowering on the premise that XLA's CPU convolution gradients under
    `lax.scan` are 3-6x slower than a matmul's; measured on the sSSM's ELBO at MiniPacman sizes
    (batch 16 windows of 5 steps, load 4-7 on 2 cores) it is the slower one: the encoder's
    gradient on 128 frames 9.2 s against 0.18 s with "xla", the whole ELBO gradient 8.5-12 s
    against 0.34 s (time loop unrolled, decoder after the loop: `elbo.filtering_terms`).
  Both give the same params, so one model's params serve either.
  """
  features: int
  kernel_size: int
  impl: str = "xla"
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, c_in = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (k, k, c_in, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    if k == 1:
      return x @ kernel[0, 0] + bias
    if self.impl == "xla":
      return jax.lax.conv_general_dilated(
          x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
    patches = jax.lax.conv_general_dilated_patches(
        x, (k, k), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    matrix = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in * k * k, self.features)
    return patches @ matrix + bias


def _conv(features: int, k: int, impl: str, name: str | None = None) -> Conv:
  return Conv(features, k, impl, name=name)


class ConvStack(nn.Module):
  """B18's `conv_stack((k1, k2, k3), (c1, c2, c3))`; see the module docstring."""
  kernels: Sequence[int]
  channels: Sequence[int]
  impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    (k1, k2, k3), (c1, c2, c3) = self.kernels, self.channels
    h = nn.relu(_conv(c1, k1, self.impl)(x))
    y = _conv(c2, k2, self.impl)(h)
    if c1 == c2:
      y = y + h
    return _conv(c3, k3, self.impl)(nn.relu(y))


class ResConv(nn.Module):
  """`x + f(y)` with `f = conv 3x3 (h) -> relu -> conv 5x5 (h) -> relu -> conv 3x3 (C_x)`."""
  hidden: int = 32
  impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
    y = x if y is None else y
    h = nn.relu(_conv(self.hidden, 3, self.impl)(y))
    h = nn.relu(_conv(self.hidden, 5, self.impl)(h))
    return x + _conv(x.shape[-1], 3, self.impl)(h)


class PoolAndInject(nn.Module):
  """`[N, h, w, F] -> [N, h, w, F + P]`: the input and the broadcast max-pool of a 3x3 conv."""
  features: int = 32
  impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pooled = pool_and_inject(_conv(self.features, 3, self.impl)(x))[..., self.features:]
    return jnp.concatenate([x, pooled], -1)


class Encoder(nn.Module):
  """`o[N, H, W, C] -> e[N, h, w, E]` with `h = ceil(H / (f1 f2))`, `w` likewise."""
  factors: Sequence[int] = (1, 2)
  channels: int = 64
  impl: str = "xla"

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    f1, f2 = self.factors
    x = space_to_depth(pad_to_multiple(obs, f1 * f2), f1)
    x = ConvStack((3, 5, 3), (16, 16, self.channels), self.impl)(x)
    x = space_to_depth(x, f2)
    return nn.relu(ConvStack((3, 5, 3), (32, 32, self.channels), self.impl)(x))


class InitialState(nn.Module):
  """`(e_{-2}, e_{-1}, e_0)[N, h, w, E] -> s_0[N, h, w, S]`."""
  state_channels: int = 64
  impl: str = "xla"

  @nn.compact
  def __call__(self, e_context: jax.Array) -> jax.Array:
    """`e_context[N, 3, h, w, E]`."""
    x = jnp.concatenate([e_context[:, i] for i in range(e_context.shape[1])], -1)
    s = self.state_channels
    return ConvStack((1, 3, 3), (s, s, s), self.impl)(x)


class Transition(nn.Module):
  """`(s_{t-1}[N, h, w, S], a[N, D], z[N, h, w, Z] | None) -> s_t[N, h, w, S]`; `a` is the
  flat action code (one one-hot, or `k` concatenated for a jumpy model)."""
  hidden: int = 32
  pool_features: int = 32
  impl: str = "xla"

  @nn.compact
  def __call__(self, s: jax.Array, a: jax.Array, z: jax.Array | None = None) -> jax.Array:
    parts = [s, broadcast_planes(a, s.shape[1:3])] + ([] if z is None else [z])
    h = nn.relu(ResConv(self.hidden, self.impl)(s, jnp.concatenate(parts, -1)))
    return ResConv(self.hidden, self.impl)(h, PoolAndInject(self.pool_features, self.impl)(h))


class GaussianHead(nn.Module):
  """`inputs[N, h, w, *] -> (mu, sigma)[N, h, w, Z]` by `ConvStack(1, 3, 3; h, h, 2Z)`."""
  latent_channels: int
  hidden: int = 32
  impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    out = ConvStack((1, 3, 3), (self.hidden, self.hidden, 2 * self.latent_channels),
                    self.impl)(x)
    mu, pre = jnp.split(out, 2, axis=-1)
    return mu, nn.softplus(pre) + SIGMA_MIN


class Decoder(nn.Module):
  """`(s_t[N, h, w, S], z_t | None) -> (frame_logits[N, H, W, C], reward_mean[N])`."""
  frame_shape: tuple            # (H, W, C)
  factors: Sequence[int] = (1, 2)
  hidden: int = 32
  channels: int = 64
  reward_hidden: int = 24
  impl: str = "xla"

  @nn.compact
  def __call__(self, s: jax.Array, z: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    f1, f2 = self.factors
    height, width, c = self.frame_shape
    x = s if z is None else jnp.concatenate([s, z], -1)
    x = ConvStack((1, 5, 3), (self.hidden, self.hidden, self.channels), self.impl)(x)
    x = depth_to_space(x, f2)
    x = ConvStack((3, 3, 1), (self.channels, self.channels, c * f1 * f1), self.impl)(x)
    logits = depth_to_space(x, f1)[:, :height, :width, :]
    r = nn.relu(_conv(self.reward_hidden, 3, self.impl)(s))
    reward = nn.Dense(1, name="reward_out")(r.reshape((r.shape[0], -1)))[:, 0]
    return logits, reward
