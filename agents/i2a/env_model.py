"""I2A's action-conditional environment model on symbolic (one-hot tile) observations.

Weber et al. 2017, *Imagination-augmented agents for deep reinforcement learning*, Sec. 3.1
(the model `(o_t, a_t) -> (o_{t+1}, r_{t+1})` used by the imagination core) and App. B
(architectures, Fig. 7 MiniPacman, Fig. 8 Sokoban). Each part, with its source: [P] the paper,
[O] our choice where the paper is silent or our observations differ from its RGB frames.
(The appendix text itself could not be consulted when this was written; the Fig. 7 block
structure below follows it as it is commonly reproduced, e.g. in higgsfield's I2A port.)

- Input [P] (Sec. 3.1, App. B): the observation with the action one-hot encoded and broadcast to
  `A` constant planes, concatenated on the channel axis: `(H, W, C + A)`.
- Torso [P] (App. B, Fig. 7): a size-preserving CNN: a 1x1 convolution (`width` channels), then
  `len(blocks)` *basic blocks*. A basic block `(n1, n2, n3)`: pool-and-inject on its input, two
  parallel paths (1x1 conv `n1` then a large `k x k` conv `n1`, the long-range path; 1x1 conv
  `n2` then 3x3 conv `n2`), their concatenation through a 1x1 conv `n3`, and the result
  concatenated with the block's input (so channels grow by `n3` per block). ReLU after every
  conv. [O] `k` (`large_kernel`) is a field, default 7 (the whole 7x7 room; Fig. 7's long
  kernel was sized for the 15x19 maze), all convolutions SAME-padded with stride 1. [O] How a
  convolution is computed is an implementation choice with the same params and outputs
  (`PatchConv`): training (`loss`) uses patches x kernel (fast gradients under `lax.scan` on the
  CPU); `apply` and `predict`, i.e. the frozen model in imagination, use XLA's convolution
  (`EnvModelConfig.rollout_conv = "xla"`), faster per model step on the CPU
  (`benchmarks/i2a_throughput.py` measures both forms).
- Pool-and-inject [P] (App. B): global max-pooling of each feature map over the whole frame,
  broadcast back to a map of the frame's size and concatenated with the input, so every cell
  sees every other cell's strongest feature after one layer (`pool_and_inject`).
- Sokoban [P] (Fig. 8) reads 80x80 RGB through an 8x8 stride-8 conv, i.e. one feature vector
  per tile, before size-preserving layers, and writes frames back through an 8x8 deconv. Our
  symbolic observations already have one vector per tile, so [O] both environments use the
  tile-level torso above (the stride-8 encoder and the deconv are the identity on tiles).
- Frame head [P] a per-pixel categorical over the palette; [O] here over the `C` tile classes of
  the symbolic observation: 1x1 conv (`frame_hidden`), ReLU, 1x1 conv to `C` logits; likelihood
  = softmax cross-entropy per tile, **summed** over tiles (the frame's negative log-likelihood).
  [O] `frame_likelihood="bernoulli"`: an independent Bernoulli per plane (sigmoid
  cross-entropy summed over tiles and planes; greedy frame = the planes with logit > 0), for
  observations whose planes are not one-hot: MiniPacman's symbolic planes are all off on a
  floor cell and overlap where a ghost stands on food or a pill. The categorical loss gives an
  all-off target tile no loss whatever the logits, so floor cells were never trained
  (measured: 99.9% of them wrong, whole-frame accuracy 0.024 against the copy model's 0.607
  after 1,000 Adam steps; `agents/i2a/README.md`), and an argmax cannot write a floor cell or
  a ghost on food. Sokoban's tiles are one-hot, so it keeps the paper's categorical.
- Copy path [O] (`copy_path`; the paper is silent): the input frame added to the frame logits
  with a learned scale per plane, `logits + copy_scale * copy_logits(obs)` (`obs`, or
  `2 obs - 1` for the Bernoulli planes; scale initialised to 1), so the network learns the
  change of the frame rather than the whole frame; with every other weight zero the model is
  the copy model exactly. Off by default (the params tree of cached Sokoban models gains no
  `copy_scale`).
- Reward head [P] (App. B, Fig. 7): two 1x1 convs (`reward_hidden`), flatten, a linear layer to
  reward logits; [P] MiniPacman's model predicts the *events* rather than one task's reward, so
  one model serves all five tasks. [O] Rewards are a categorical over `K` reward classes with a
  value per class (`RewardSpec`), chosen over a regression head because each environment's
  one-step rewards take a handful of exact values, and a classifier predicts them exactly or
  not at all (no blurred means between -0.1 and +10.9):
  * Sokoban (`sokoban_reward_spec`): the 4 values a step can pay, `step`, `step + on`,
    `step + off`, `step + on + solved` (-0.1, 0.9, -1.1, 10.9 with App. D's constants; one push
    moves one box, and the solving push always puts a box on, so no other sum occurs);
  * MiniPacman (`minipacman_event_spec`): the 16 joint values of the binary events (food, pill,
    ghost eaten, Pacman eaten) of `info["events"]` (the `step` event is always 1), class
    `food + 2 pill + 4 ghost + 8 eaten`, value `task_weights @ (1, food, pill, ghost, eaten)`;
    one model serves every task by swapping the values (`RewardSpec.with_values`).
  [O] The reward head (`reward_pool="max"`, default) reads, per tile, the current tiles and
  the frame head's predicted next-tile probabilities (gradient stopped, so the reward loss
  does not pull on the frame), through the two 1x1 convs, then takes the maximum over the
  frame (as pool-and-inject does) before the linear layer. A Sokoban reward is a function of
  the two frames, from one local event (a box pushed on or off a target) anywhere in the room
  (and, for `solved`, no box left off target: also a max over tiles): shared per-tile
  detectors see it at every position from the same weights, where the paper's
  flatten-then-linear head (`reward_pool="flatten"`) must learn it once per position from the
  few pushes in the data. [O] The reward cross-entropy may weigh each class
  (`reward_class_weights`; `balanced_reward_weights(train.reward_class, K)`: the most frequent
  class 1, a class r times rarer r, capped at 30): under a uniform policy in Sokoban 7x7/2
  only 1.7% of steps pay a non-step reward. Measured (the test-size run: 3,200 uniform
  transitions, 600 Adam steps, 960 held out with 26 non-step rewards; `reward_hidden` 8
  unless stated; init keys 2, 3, 4, 5): the paper's head unweighted always predicts -0.1
  (0/26 non-step rewards, reward accuracy 0.973, frame accuracy 0.80); the paper's head with
  cap-30 weights 5/26 and 4/26 (keys 2, 3; accuracy 0.927, 0.896); a max head reading the
  torso's features too, unweighted 0/26, cap 30 17, 5, 11, 0 /26 (keys 2-5); this head with
  cap 30 14, 8, 16, 15 /26 (accuracy 0.947, 0.887, 0.921, 0.883), with `reward_hidden` 32
  23, 11, 23, 18 /26 (accuracy 0.951, 0.877, 0.843, 0.878; frame 0.82, 0.84, 0.82, 0.81);
  cap 10 10, 0, 0, 9 /26. So the change buys recall of the rare rewards at a cost in overall
  reward accuracy (false non-step predictions on 4-15% of step transitions); subtracting
  log-weights from the logits at prediction (the prior correction) falls back to 0/26: at
  this data size the head does not separate the classes, it only moves the threshold. The
  weights depend on the data, so the field's default stays None (unweighted) and the caller
  passes them. The max head's params do not depend on the room size.
  Loss = frame NLL + `reward_coef` x reward cross-entropy. [O] Transitions that end an episode
  train the reward only: the automatic reset replaces their next observation with the next
  episode's first one, which no model of the dynamics can predict (`frame_valid = 0`).
- Termination [O]: the paper's model predicts no episode end (rollouts run a fixed depth); the
  imagination step returns `terminated = truncated = False`.

The functional API (`EnvModelFns` of `make_env_model`):

    model = make_env_model(config, obs_shape=(7, 7, 7), num_actions=4, reward_spec=spec)
    params = model.init(key)
    frame_logits, reward_logits = model.apply(params, obs[..., H, W, C], action[...])
    loss, aux = model.loss(params, batch)                    # `Transitions` [N]
    next_obs, reward = model.predict(params, obs, action)      # greedy one-hot frame, reward
    imagined = ImaginedEnv(model)                              # gymnax step signature:
    obs, state, reward, term, trunc, info = imagined.step(key, state, action, params)
    carry, traj = agents.rollout.rollout(policy_fn, imagined, params,
                                         imagined.carry(obs[B]), key, depth)

`multi_step_accuracy` scores k-step open-loop predictions on real trajectories (one
`lax.scan`); the copy model (`copy_predict`, the identity: I2A's copy-model baseline) plugs into
it the same way. `agents.i2a.env_model_train` collects data and trains.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents import rollout as rollout_lib
from agents.a2c import networks
from latent_dynamics.env_models.blocks import pool_and_inject  # shared with the SSMs

FRAME_MODES = ("greedy", "sample", "probs")
FRAME_LIKELIHOODS = ("categorical", "bernoulli")
REWARD_POOLS = ("max", "flatten")
CONV_IMPLS = ("xla", "patches")


# ------------------------------------------------------------------------------ reward classes
@dataclasses.dataclass(frozen=True)
class RewardSpec:
  """The reward classes of an environment: `values[k]` is the reward of class `k`.

  `class_fn(reward[...], info) -> int32 class[...]` labels real transitions (-1 where a reward
  matches no class; `check_transitions` raises on those).
  """
  values: tuple
  class_fn: Callable[[jax.Array, Any], jax.Array]
  name: str = "reward"

  @property
  def num_classes(self) -> int:
    return len(self.values)

  def with_values(self, values: Sequence[float]) -> "RewardSpec":
    """The same classes paying other values (MiniPacman: another task's weights)."""
    if len(values) != self.num_classes:
      raise ValueError(f"values must have {self.num_classes} entries; got {len(values)}.")
    return dataclasses.replace(self, values=tuple(float(v) for v in values))


def nearest_value_classes(values: Sequence[float], atol: float = 1e-4):
  """`class_fn` labelling a reward by the class whose value it equals (within `atol`), else -1."""
  table = jnp.asarray(values, jnp.float32)

  def class_fn(reward, info=None):
    del info
    dist = jnp.abs(jnp.asarray(reward, jnp.float32)[..., None] - table)
    return jnp.where(jnp.min(dist, -1) <= atol, jnp.argmin(dist, -1), -1).astype(jnp.int32)
  return class_fn


def sokoban_reward_spec(env_params) -> RewardSpec:
  """Sokoban's 4 one-step rewards (I2A App. D): step, step + on, step + off, step + on + solved."""
  s, on, off, solved = (float(env_params.step_reward), float(env_params.box_on_reward),
                        float(env_params.box_off_reward), float(env_params.solved_reward))
  values = (s, s + on, s + off, s + on + solved)
  return RewardSpec(values, nearest_value_classes(values), "sokoban")


def minipacman_event_spec(env_params) -> RewardSpec:
  """MiniPacman's 16 joint event classes `food + 2 pill + 4 ghost + 8 eaten` (I2A App. C events;
  `info["events"]` = (step, food, pill, eat_ghost, eaten)); values from `task_weights`."""
  w = np.asarray(env_params.task_weights, np.float64)
  bits = np.array([[(k >> i) & 1 for i in range(4)] for k in range(16)], np.float64)
  values = tuple(float(v) for v in w[0] + bits @ w[1:])

  def class_fn(reward, info):
    del reward
    ev = jnp.asarray(info["events"])
    b = jnp.clip(jnp.round(ev[..., 1:5]), 0, 1).astype(jnp.int32)
    ok = jnp.all((ev[..., 1:5] >= 0) & (ev[..., 1:5] <= 1), -1)
    return jnp.where(ok, b @ jnp.array([1, 2, 4, 8], jnp.int32), -1).astype(jnp.int32)
  return RewardSpec(values, class_fn, "minipacman-events")


# ------------------------------------------------------------------------------ architecture
class PatchConv(networks.PatchConv):
  """`nn.Conv(features, (k, k), (s, s), padding="SAME")` with params `kernel (k, k, C_in,
  features)` and `bias`, computed as `agents.a2c.networks.PatchConv` does (`impl="patches"`:
  patches x kernel) or by XLA's convolution (`impl="xla"`: `lax.conv_general_dilated`). [O] The
  two give the same outputs (float32 rounding apart) from the same params; the class keeps the
  name `PatchConv` so that the params tree of models trained and cached before the choice
  existed (`PatchConv_0`, ...) still loads."""
  impl: str = "patches"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in CONV_IMPLS:
      raise ValueError(f"impl must be one of {CONV_IMPLS}; got {self.impl!r}.")
    k, c_in, s = self.kernel_size, x.shape[-1], self.stride
    kernel = self.param("kernel", self.kernel_init, (k, k, c_in, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    if self.impl == "xla":
      y = jax.lax.conv_general_dilated(x, kernel, (s, s), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
      return y + bias
    patches = jax.lax.conv_general_dilated_patches(
        x, (k, k), (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    matrix = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in * k * k, self.features)
    return patches @ matrix + bias


def _conv(features: int, k: int, impl: str, name: str | None = None) -> PatchConv:
  return PatchConv(features, k, 1, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)),
                   impl=impl, name=name)


class BasicBlock(nn.Module):
  """I2A's basic block `(n1, n2, n3)` (App. B, Fig. 7); see the module docstring.

  `[N, H, W, F] -> [N, H, W, F + n3]`.
  """
  n1: int
  n2: int
  n3: int
  large_kernel: int = 7
  conv_impl: str = "patches"          # how convolutions are computed (`PatchConv.impl`)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    p = pool_and_inject(x)
    conv = lambda f, k: _conv(f, k, self.conv_impl)  # noqa: E731
    long_range = nn.relu(conv(self.n1, self.large_kernel)(nn.relu(conv(self.n1, 1)(p))))
    local = nn.relu(conv(self.n2, 3)(nn.relu(conv(self.n2, 1)(p))))
    out = nn.relu(conv(self.n3, 1)(jnp.concatenate([long_range, local], -1)))
    return jnp.concatenate([out, x], -1)


class EnvModelNet(nn.Module):
  """`(obs[N, H, W, C], action[N]) -> (frame_logits[N, H, W, C], reward_logits[N, K])`.

  `reward_pool`: "max" (the reward path reads `obs` and the gradient-stopped next-tile
  probabilities, and is max-pooled over the frame) or "flatten" (the paper's head, reading
  the torso's features). `conv_impl`: `PatchConv.impl` of every convolution (same params)."""
  num_actions: int
  num_tiles: int
  num_reward_classes: int
  width: int = 64
  blocks: Sequence[tuple] = ((16, 32, 64), (16, 32, 64))
  large_kernel: int = 7
  frame_hidden: int = 64
  reward_hidden: int = 64
  reward_pool: str = "max"
  conv_impl: str = "patches"
  frame_likelihood: str = "categorical"
  copy_path: bool = False

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    impl = self.conv_impl
    planes = jax.nn.one_hot(action, self.num_actions, dtype=obs.dtype)
    planes = jnp.broadcast_to(planes[:, None, None, :], obs.shape[:3] + (self.num_actions,))
    x = nn.relu(_conv(self.width, 1, impl)(jnp.concatenate([obs, planes], -1)))
    for n1, n2, n3 in self.blocks:
      x = BasicBlock(n1, n2, n3, self.large_kernel, impl)(x)
    frame = nn.relu(_conv(self.frame_hidden, 1, impl)(x))
    frame_logits = PatchConv(self.num_tiles, 1, 1, impl=impl, name="frame_out")(frame)
    if self.copy_path:  # [O] the input frame added to the logits, a learned scale per plane
      scale = self.param("copy_scale", nn.initializers.ones_init(), (self.num_tiles,))
      frame_logits = frame_logits + scale * copy_logits(obs, self.frame_likelihood)
    if self.reward_pool == "max":
      next_tiles = frame_probs(jax.lax.stop_gradient(frame_logits), self.frame_likelihood)
      x = jnp.concatenate([obs, next_tiles], -1)
    r = nn.relu(_conv(self.reward_hidden, 1, impl)(x))
    r = nn.relu(_conv(self.reward_hidden, 1, impl)(r))
    if self.reward_pool == "max":
      r = jnp.max(r, axis=(1, 2))
    else:
      r = r.reshape((r.shape[0], -1))
    reward_logits = nn.Dense(self.num_reward_classes, name="reward_out")(r)
    return frame_logits, reward_logits


# ------------------------------------------------------------------------------ config, data
@dataclasses.dataclass(frozen=True)
class EnvModelConfig:
  """Architecture and loss of the environment model (paper sizes of Fig. 7 by default)."""
  width: int = 64                              # channels of the first 1x1 conv
  blocks: tuple = ((16, 32, 64), (16, 32, 64))  # (n1, n2, n3) per basic block
  large_kernel: int = 7                        # k of the long-range path's k x k conv
  frame_hidden: int = 64                       # 1x1 conv before the frame logits
  reward_hidden: int = 64                      # the reward path's two 1x1 convs
  reward_coef: float = 1.0                     # weight of the reward cross-entropy
  reward_pool: str = "max"                     # reward head: "max" over cells or "flatten"
  reward_class_weights: tuple | None = None    # per-class CE weights, None: all 1
                                               # (`balanced_reward_weights` of the data)
  rollout_conv: str = "xla"                    # convolutions of `apply`/`predict` [O]: "xla"
                                               # or "patches" (`loss` always uses patches)
  frame_likelihood: str = "categorical"        # per tile: "categorical" over C (one-hot
                                               # tiles) or "bernoulli" per plane [O]
  copy_path: bool = False                      # [O] input frame added to the frame logits,
                                               # a learned scale per plane (`copy_scale`)
  change_threshold: float = 0.5                # [O] Bernoulli greedy frame: a plane leaves
                                               # its input value only above this probability

  def replace(self, **kwargs) -> "EnvModelConfig":
    return dataclasses.replace(self, **kwargs)


class Transitions(NamedTuple):
  """Real transitions, any leading shape (`[N]` for training, `[T, B]` for multi-step scores).

  `frame_valid` is 0 where the episode ended on this step (`obs_t` is then the next episode's
  first observation: train the reward, not the frame, and end multi-step rollouts there).
  """
  obs_tm1: jax.Array      # [..., H, W, C] float one-hot
  action: jax.Array       # [...] int32
  obs_t: jax.Array        # [..., H, W, C]
  reward: jax.Array       # [...] float32
  reward_class: jax.Array  # [...] int32
  frame_valid: jax.Array  # [...] float32 in {0, 1}


def check_config(config: EnvModelConfig) -> None:
  """Raises a `ValueError` naming the field of an invalid config."""
  for name in ("width", "large_kernel", "frame_hidden", "reward_hidden"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")
  if not config.blocks or any(len(b) != 3 or min(b) < 1 for b in config.blocks):
    raise ValueError("config.blocks must be a non-empty sequence of positive (n1, n2, n3); got "
                     f"{config.blocks!r}.")
  if config.rollout_conv not in CONV_IMPLS:
    raise ValueError(f"config.rollout_conv must be one of {CONV_IMPLS}; got "
                     f"{config.rollout_conv!r}.")
  if config.frame_likelihood not in FRAME_LIKELIHOODS:
    raise ValueError(f"config.frame_likelihood must be one of {FRAME_LIKELIHOODS}; got "
                     f"{config.frame_likelihood!r}.")
  if not 0.5 <= config.change_threshold < 1.0:
    raise ValueError(f"config.change_threshold must be in [0.5, 1); got "
                     f"{config.change_threshold!r}.")
  if config.change_threshold != 0.5 and config.frame_likelihood != "bernoulli":
    raise ValueError("config.change_threshold applies to frame_likelihood='bernoulli' only; got "
                     f"{config.change_threshold!r} with {config.frame_likelihood!r}.")
  if not isinstance(config.copy_path, (bool, np.bool_)):
    raise ValueError(f"config.copy_path must be a bool; got {config.copy_path!r}.")
  if config.reward_pool not in REWARD_POOLS:
    raise ValueError(f"config.reward_pool must be one of {REWARD_POOLS}; got "
                     f"{config.reward_pool!r}.")
  if config.reward_class_weights is not None and not all(
      np.isfinite(w) and w > 0 for w in config.reward_class_weights):
    raise ValueError("config.reward_class_weights must be positive and finite; got "
                     f"{config.reward_class_weights!r}.")
  if not config.reward_coef >= 0:
    raise ValueError(f"config.reward_coef must be >= 0; got {config.reward_coef!r}.")


def balanced_reward_weights(reward_class, num_classes: int, cap: float = 30.0) -> tuple:
  """Class-balanced reward weights of training labels `reward_class[...]`: `n_max / n_k`
  (the most frequent class weighs 1, a class `r` times rarer weighs `r`), capped at `cap`;
  a class absent from the data gets `cap`. For `EnvModelConfig.reward_class_weights`."""
  if not cap >= 1:
    raise ValueError(f"cap must be >= 1; got {cap!r}.")
  counts = np.bincount(np.asarray(reward_class).ravel(), minlength=num_classes)
  if counts.size != num_classes or counts.sum() == 0:
    raise ValueError(f"reward_class must hold labels in [0, {num_classes}); got counts "
                     f"{counts}.")
  ratio = counts.max() / np.maximum(counts, 1e-12)
  return tuple(float(w) for w in np.minimum(ratio, cap))


def _concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def check_transitions(batch: Transitions, obs_shape: tuple, num_actions: int,
                      num_reward_classes: int, name: str = "batch") -> None:
  """Host-side checks of real transitions (skipped for traced values). Raises a `ValueError`
  naming the field: wrong observation shape, non-finite values, actions outside
  `[0, num_actions)`, reward classes outside `[0, K)` (a reward no class pays)."""
  for field in ("obs_tm1", "obs_t"):
    value = getattr(batch, field)
    if tuple(value.shape[-3:]) != tuple(obs_shape):
      raise ValueError(f"{name}.{field} has observation shape {tuple(value.shape[-3:])}; the "
                       f"environment model's obs_shape is {tuple(obs_shape)}.")
  for field in batch._fields:
    value = getattr(batch, field)
    if _concrete(value) and jnp.issubdtype(jnp.asarray(value).dtype, jnp.floating):
      bad = ~np.isfinite(np.asarray(value))
      if bad.any():
        raise ValueError(f"{name}.{field} holds {int(bad.sum())} non-finite value(s).")
  if _concrete(batch.action):
    a = np.asarray(batch.action)
    if a.size and (a.min() < 0 or a.max() >= num_actions):
      raise ValueError(f"{name}.action must be in [0, {num_actions}); got values in "
                       f"[{a.min()}, {a.max()}].")
  if _concrete(batch.reward_class):
    c = np.asarray(batch.reward_class)
    if c.size and (c.min() < 0 or c.max() >= num_reward_classes):
      bad = np.asarray(batch.reward)[(c < 0) | (c >= num_reward_classes)]
      raise ValueError(f"{name}.reward_class must be in [0, {num_reward_classes}); "
                       f"{bad.size} transition(s) have rewards no reward class pays, e.g. "
                       f"{bad.ravel()[:4]}.")


# ------------------------------------------------------------------------------ the model
class LossInfo(NamedTuple):
  frame_nll: jax.Array       # mean over valid frames of the summed per-tile cross-entropy
  reward_ce: jax.Array       # mean reward cross-entropy
  tile_accuracy: jax.Array   # greedy per-tile accuracy over valid frames
  frame_accuracy: jax.Array  # greedy whole-frame accuracy over valid frames
  reward_accuracy: jax.Array


class EnvModelFns(NamedTuple):
  """Pure functions of an environment model (see the module docstring)."""
  init: Callable[[jax.Array], Any]
  apply: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
  loss: Callable[[Any, Transitions], tuple[jax.Array, LossInfo]]
  predict: Callable[..., tuple[jax.Array, jax.Array]]
  check_params: Callable[[Any], None]
  network: EnvModelNet
  config: EnvModelConfig
  obs_shape: tuple
  num_actions: int
  reward_spec: RewardSpec


def frame_loss(frame_logits: jax.Array, obs_t: jax.Array,
               likelihood: str = "categorical") -> jax.Array:
  """`[..., H, W, C]` -> `[...]`: the frame's negative log-likelihood, summed over tiles:
  per-tile softmax cross-entropy ("categorical") or per-plane sigmoid cross-entropy summed
  over the C planes too ("bernoulli")."""
  if likelihood == "bernoulli":
    return jnp.sum(optax.sigmoid_binary_cross_entropy(frame_logits, obs_t), axis=(-3, -2, -1))
  return jnp.sum(optax.softmax_cross_entropy(frame_logits, obs_t), axis=(-2, -1))


def frame_probs(frame_logits: jax.Array, likelihood: str = "categorical") -> jax.Array:
  """Per-tile probabilities: softmax over C ("categorical") or each plane's sigmoid."""
  if likelihood == "bernoulli":
    return jax.nn.sigmoid(frame_logits)
  return jax.nn.softmax(frame_logits, -1)


def frame_greedy(frame_logits: jax.Array, likelihood: str = "categorical",
                 obs: jax.Array | None = None, change_threshold: float = 0.5) -> jax.Array:
  """The most likely frame, as float planes: the argmax tile one-hot ("categorical") or every
  plane whose probability exceeds 1/2, i.e. logit > 0 ("bernoulli"). [O] Bernoulli with
  `change_threshold` t > 1/2 and the input frame `obs`: a plane takes the value other than its
  input's only where the model gives that value a probability above t (t = 1/2: the plain
  greedy frame)."""
  if likelihood == "bernoulli":
    if change_threshold == 0.5:
      return (frame_logits > 0).astype(jnp.float32)
    p = jax.nn.sigmoid(frame_logits)
    return jnp.where(obs > 0.5, p > 1.0 - change_threshold, p > change_threshold
                     ).astype(jnp.float32)
  return jax.nn.one_hot(jnp.argmax(frame_logits, -1), frame_logits.shape[-1],
                        dtype=jnp.float32)


def frame_sample(key: jax.Array, frame_logits: jax.Array,
                 likelihood: str = "categorical") -> jax.Array:
  """A frame drawn from the model's per-tile distribution, as float planes."""
  if likelihood == "bernoulli":
    return jax.random.bernoulli(key, jax.nn.sigmoid(frame_logits)).astype(jnp.float32)
  return jax.nn.one_hot(jax.random.categorical(key, frame_logits), frame_logits.shape[-1],
                        dtype=jnp.float32)


def copy_logits(obs: jax.Array, likelihood: str = "categorical") -> jax.Array:
  """The copy path's logits per unit scale [O]: `obs` ("categorical": the input tile's class
  is raised) or `2 obs - 1` ("bernoulli": a plane that is on is pushed on, one that is off
  pushed off). With every other weight zero and a positive scale, the greedy frame is the
  input frame exactly: the copy model."""
  return 2.0 * obs - 1.0 if likelihood == "bernoulli" else obs


def tiles_equal(a: jax.Array, b: jax.Array) -> jax.Array:
  """`[..., H, W, C]` x 2 -> `[..., H, W]`: the tiles whose planes all agree after
  binarising at 1/2 (for one-hot tiles: the same class)."""
  return jnp.all((a > 0.5) == (b > 0.5), -1)


def make_env_model(config: EnvModelConfig, obs_shape: Sequence[int], num_actions: int,
                   reward_spec: RewardSpec) -> EnvModelFns:
  """Builds the environment model of `obs_shape = (H, W, C)` one-hot observations.

  Raises:
    ValueError: a bad config field, `obs_shape` not of rank 3, `num_actions` < 1.
  """
  check_config(config)
  obs_shape = tuple(int(s) for s in obs_shape)
  if len(obs_shape) != 3 or min(obs_shape) < 1:
    raise ValueError(f"obs_shape must be (H, W, C) one-hot tiles; got {obs_shape}.")
  if not isinstance(num_actions, (int, np.integer)) or num_actions < 1:
    raise ValueError(f"num_actions must be a positive integer; got {num_actions!r}.")
  num_actions = int(num_actions)
  net = EnvModelNet(num_actions, obs_shape[-1], reward_spec.num_classes, config.width,
                    tuple(tuple(b) for b in config.blocks), config.large_kernel,
                    config.frame_hidden, config.reward_hidden, config.reward_pool,
                    conv_impl="patches", frame_likelihood=config.frame_likelihood,
                    copy_path=bool(config.copy_path))
  likelihood, threshold = config.frame_likelihood, float(config.change_threshold)
  rollout_net = net.clone(conv_impl=config.rollout_conv)  # same params (`PatchConv`)
  values = jnp.asarray(reward_spec.values, jnp.float32)
  if config.reward_class_weights is None:
    class_weights = jnp.ones((reward_spec.num_classes,), jnp.float32)
  else:
    if len(config.reward_class_weights) != reward_spec.num_classes:
      raise ValueError(f"config.reward_class_weights must have {reward_spec.num_classes} "
                       f"entries (one per reward class); got {config.reward_class_weights!r}.")
    class_weights = jnp.asarray(config.reward_class_weights, jnp.float32)

  def init(key: jax.Array):
    return net.init(key, jnp.zeros((1,) + obs_shape, jnp.float32), jnp.zeros((1,), jnp.int32))

  expected = jax.eval_shape(init, jax.random.key(0))

  def check_params(params) -> None:
    got = jax.tree.map(lambda x: tuple(jnp.shape(x)), params)
    want = jax.tree.map(lambda x: tuple(x.shape), expected)
    if jax.tree.structure(got) != jax.tree.structure(want) or got != want:
      raise ValueError(f"params do not fit this environment model (obs_shape {obs_shape}, "
                       f"{num_actions} actions, {reward_spec.num_classes} reward classes, "
                       "the config's widths): a model built for another environment or a "
                       "corrupted checkpoint.")

  def _check_inputs(obs, action):
    if tuple(obs.shape[-3:]) != obs_shape:
      raise ValueError(f"obs has observation shape {tuple(obs.shape[-3:])}; the environment "
                       f"model's obs_shape is {obs_shape}.")
    if tuple(jnp.shape(action)) != tuple(obs.shape[:-3]):
      raise ValueError(f"action must have the observations' batch shape {obs.shape[:-3]}; got "
                       f"{jnp.shape(action)}.")
    if not jnp.issubdtype(jnp.asarray(action).dtype, jnp.integer):
      raise ValueError(f"action must be integer; got dtype {jnp.asarray(action).dtype}.")
    if _concrete(obs) and not np.all(np.isfinite(np.asarray(obs))):
      raise ValueError("obs holds non-finite values.")
    if _concrete(action):
      a = np.asarray(action)
      if a.size and (a.min() < 0 or a.max() >= num_actions):
        raise ValueError(f"action must be in [0, {num_actions}); got values in "
                         f"[{a.min()}, {a.max()}].")

  def _apply(module, params, obs, action):
    obs = jnp.asarray(obs, jnp.float32)
    _check_inputs(obs, action)
    batch = obs.shape[:-3]
    f, r = module.apply(params, obs.reshape((-1,) + obs_shape),
                        jnp.asarray(action, jnp.int32).reshape(-1))
    return f.reshape(batch + obs_shape), r.reshape(batch + (reward_spec.num_classes,))

  def apply(params, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(frame_logits[..., H, W, C], reward_logits[..., K])` of `obs[..., H, W, C]`,
    `action[...]` (convolutions by `config.rollout_conv`)."""
    return _apply(rollout_net, params, obs, action)

  def loss(params, batch: Transitions) -> tuple[jax.Array, LossInfo]:
    """Frame NLL (valid frames) + `reward_coef` x reward cross-entropy, means over the batch."""
    check_transitions(batch, obs_shape, num_actions, reward_spec.num_classes)
    frame_logits, reward_logits = _apply(net, params, batch.obs_tm1, batch.action)
    valid = jnp.asarray(batch.frame_valid, jnp.float32)
    count = jnp.maximum(jnp.sum(valid), 1.0)
    nll = jnp.sum(frame_loss(frame_logits, batch.obs_t, likelihood) * valid) / count
    ce = jnp.mean(class_weights[batch.reward_class]
                  * optax.softmax_cross_entropy_with_integer_labels(reward_logits,
                                                                    batch.reward_class))
    hit = tiles_equal(frame_greedy(frame_logits, likelihood, batch.obs_tm1, threshold),
                      batch.obs_t)
    info = LossInfo(
        frame_nll=nll, reward_ce=ce,
        tile_accuracy=jnp.sum(jnp.mean(hit, (-2, -1)) * valid) / count,
        frame_accuracy=jnp.sum(jnp.all(hit, (-2, -1)) * valid) / count,
        reward_accuracy=jnp.mean(jnp.argmax(reward_logits, -1) == batch.reward_class))
    return nll + config.reward_coef * ce, info

  def predict(params, obs, action, *, mode: str = "greedy", key: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
    """`(next_obs[..., H, W, C], reward[...])` of one model step.

    mode: "greedy" (the most likely frame, `frame_greedy`: one-hot argmax tiles or the planes
    above 1/2; the argmax class's reward), "sample" (a frame and a reward class sampled from
    the model's distributions; needs `key`), "probs" (the per-tile probabilities,
    `frame_probs`, and the expected reward).
    """
    if mode not in FRAME_MODES:
      raise ValueError(f"mode must be one of {FRAME_MODES}; got {mode!r}.")
    frame_logits, reward_logits = apply(params, obs, action)
    if mode == "greedy":
      return (frame_greedy(frame_logits, likelihood, jnp.asarray(obs, jnp.float32), threshold),
              values[jnp.argmax(reward_logits, -1)])
    if mode == "sample":
      if key is None:
        raise ValueError("mode='sample' needs a key.")
      k_f, k_r = jax.random.split(key)
      return (frame_sample(k_f, frame_logits, likelihood),
              values[jax.random.categorical(k_r, reward_logits)])
    return (frame_probs(frame_logits, likelihood),
            jax.nn.softmax(reward_logits, -1) @ values)

  return EnvModelFns(init, apply, loss, predict, check_params, net, config, obs_shape,
                     num_actions, reward_spec)


def env_model_for(config: EnvModelConfig, env, env_params, reward_spec: RewardSpec
                  ) -> EnvModelFns:
  """`make_env_model` with the shape and actions of `env` (symbolic observations)."""
  obs_shape = tuple(env.observation_space(env_params).shape)
  return make_env_model(config, obs_shape, env.action_space(env_params).num_values, reward_spec)


def check_compatible(model: EnvModelFns, env, env_params, params=None) -> None:
  """Raises a `ValueError` if `model` (and `params`) cannot stand in for `env`: another
  observation shape or action count, or params of another model."""
  obs_shape = tuple(env.observation_space(env_params).shape)
  if obs_shape != model.obs_shape:
    raise ValueError(f"environment model obs_shape {model.obs_shape} does not match the "
                     f"environment's observation shape {obs_shape}.")
  num_actions = env.action_space(env_params).num_values
  if num_actions != model.num_actions:
    raise ValueError(f"environment model num_actions {model.num_actions} does not match the "
                     f"environment's {num_actions} actions.")
  if params is not None:
    model.check_params(params)


# ------------------------------------------------------------------------------ imagination
class ImaginedEnv:
  """The model behind the gymnax `step(key, state, action, params)` signature, so
  `agents.rollout.rollout` runs imagination unchanged. The state is the predicted observation,
  `params` the model's params (pass them as the rollout's `env_params`).

  `mode`: "greedy" (default: argmax tiles), "sample" (tiles and reward class drawn from the
  model's categoricals with the step's key) or "probs" (the per-tile probabilities fed back).
  `info`: `reward_probs[K]` and the argmax `reward_class`. Episodes never end (I2A's rollouts
  have a fixed depth). An action outside `[0, num_actions)` raises when concrete and gives a
  NaN reward under `jit` (as `envs.Environment`).
  """

  def __init__(self, model: EnvModelFns, mode: str = "greedy"):
    if mode not in FRAME_MODES:
      raise ValueError(f"mode must be one of {FRAME_MODES}; got {mode!r}.")
    self.model, self.mode = model, mode
    self.num_actions = model.num_actions
    # A hand-built `EnvModelFns` may carry no config: the categorical, plain greedy frame.
    config = model.config if model.config is not None else EnvModelConfig()
    self._likelihood = config.frame_likelihood
    self._change_threshold = float(config.change_threshold)

  def carry(self, obs: jax.Array) -> rollout_lib.RolloutCarry:
    """The rollout carry starting imagination from real observations `obs[B, H, W, C]`."""
    obs = jnp.asarray(obs, jnp.float32)
    if tuple(obs.shape[1:]) != self.model.obs_shape:
      raise ValueError(f"obs must be [B, *{self.model.obs_shape}]; got {obs.shape}.")
    return rollout_lib.RolloutCarry(obs, obs)

  def step(self, key, state, action, params):
    action = jnp.asarray(action)
    if not jnp.issubdtype(action.dtype, jnp.integer):
      raise ValueError(f"action must be integer; got dtype {action.dtype}.")
    if _concrete(action) and not 0 <= int(action) < self.num_actions:
      raise ValueError(f"action must be in [0, {self.num_actions}); got {int(action)}.")
    valid = (action >= 0) & (action < self.num_actions)
    frame_logits, reward_logits = self.model.apply(
        params, state[None], jnp.clip(action, 0, self.num_actions - 1)[None])
    frame_logits, reward_logits = frame_logits[0], reward_logits[0]
    values = jnp.asarray(self.model.reward_spec.values, jnp.float32)
    probs = jax.nn.softmax(reward_logits)
    likelihood = self._likelihood
    if self.mode == "greedy":
      obs = frame_greedy(frame_logits, likelihood, state, self._change_threshold)
      reward = values[jnp.argmax(probs)]
    elif self.mode == "sample":
      k_f, k_r = jax.random.split(key)
      obs = frame_sample(k_f, frame_logits, likelihood)
      reward = values[jax.random.categorical(k_r, reward_logits)]
    else:
      obs, reward = frame_probs(frame_logits, likelihood), probs @ values
    reward = jnp.where(valid, reward, jnp.nan).astype(jnp.float32)
    info = {"reward_probs": probs, "reward_class": jnp.argmax(probs).astype(jnp.int32)}
    false = jnp.zeros((), bool)
    return obs.astype(jnp.float32), obs.astype(jnp.float32), reward, false, false, info


# ------------------------------------------------------------------------------ accuracy
def copy_predict(obs: jax.Array, action: jax.Array) -> jax.Array:
  """The copy model: the next observation is the current one (I2A's copy-model baseline)."""
  del action
  return obs


def multi_step_accuracy(predict_fn: Callable[[jax.Array, jax.Array], jax.Array],
                        traj: Transitions, ks: Sequence[int] = (1, 3, 5, 10)
                        ) -> dict[str, jax.Array]:
  """Open-loop k-step prediction accuracy on real `[T, B]` trajectories.

  From every start `(t, b)` the model is fed the real `obs_tm1[t]` and then its own
  predictions, with the real actions `action[t], ..., action[t + k - 1]`, and its k-th
  prediction is compared with the real `obs_t[t + k - 1]`: a tile is right when all its C
  planes agree after binarising at 1/2 (`tiles_equal`; for one-hot tiles, the same class;
  MiniPacman's planes may be all off, a floor cell, or overlap, a ghost on food, which an
  argmax comparison would miss). A start
  counts for k only if its k steps stay inside the trajectory and no episode ends within them
  (every `frame_valid` 1), so different k average over different (nested) sets of starts.
  One `lax.scan` over the `max(ks)` steps, all starts in parallel.

  Args:
    predict_fn: `(obs[N, H, W, C], action[N]) -> next_obs[N, H, W, C]` (greedy frames:
      binary planes; e.g. `lambda o, a: model.predict(params, o, a)[0]`, or `copy_predict`).
    traj: `Transitions` with leading axes `[T, B]`.
    ks: the step counts, positive and at most T.

  Returns:
    `{"k": [len(ks)], "frame": [len(ks)], "tile": [len(ks)], "changed_tile": [len(ks)],
    "count": [len(ks)]}`: fractions of whole frames and of tiles predicted correctly, of tiles
    correct among those whose real value after k steps differs from the start's, and the
    number of starts scored (NaN accuracies where none).
  """
  ks = tuple(int(k) for k in ks)
  t_len = traj.action.shape[0]
  if not ks or min(ks) < 1 or max(ks) > t_len:
    raise ValueError(f"ks must be positive step counts of at most T = {t_len}; got {ks}.")
  k_max = max(ks)
  obs_shape = traj.obs_tm1.shape[2:]
  n = traj.action.shape[0] * traj.action.shape[1]

  def shifted(x, j):  # x[t + j] for every t, zero-padded past the end
    pad = jnp.zeros((k_max,) + x.shape[1:], x.dtype)
    return jax.lax.dynamic_slice_in_dim(jnp.concatenate([x, pad]), j, t_len)

  start = traj.obs_tm1.reshape((n,) + obs_shape)

  def body(carry, j):
    pred, alive = carry
    action = shifted(traj.action, j).reshape(n)
    target = shifted(traj.obs_t, j).reshape((n,) + obs_shape)
    ok = (shifted(traj.frame_valid, j) > 0) & (jnp.arange(t_len)[:, None] + j < t_len)
    alive = alive & ok.reshape(n)
    pred = predict_fn(pred, action)
    hit = tiles_equal(pred, target)
    changed = ~tiles_equal(target, start)
    w = alive.astype(jnp.float32)
    out = (jnp.sum(jnp.all(hit, (-2, -1)) * w), jnp.sum(jnp.mean(hit, (-2, -1)) * w),
           jnp.sum(hit & changed, (-2, -1)) @ w, jnp.sum(changed, (-2, -1)) @ w, jnp.sum(w))
    return (pred, alive), out

  init = (traj.obs_tm1.reshape((n,) + obs_shape).astype(jnp.float32), jnp.ones((n,), bool))
  _, (frames, tiles, ch_hit, ch_all, count) = jax.lax.scan(body, init, jnp.arange(k_max))
  idx = jnp.asarray(ks) - 1
  count = count[idx]
  safe = lambda a, b: jnp.where(b > 0, a / jnp.maximum(b, 1), jnp.nan)  # noqa: E731
  return {"k": jnp.asarray(ks), "frame": safe(frames[idx], count),
          "tile": safe(tiles[idx], count), "changed_tile": safe(ch_hit[idx], ch_all[idx]),
          "count": count}
