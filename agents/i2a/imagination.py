"""I2A's imagination: rollout policy and its distillation, imagination core, rollout encoder,
aggregator, and the I2A network on top of a model-free path.

Weber et al. 2017, *Imagination-augmented agents for deep reinforcement learning*, Sec. 3 (Fig. 1)
and App. B. Each part, with its source: [P] the paper, [O] our choice where the paper is silent.
(The appendix text itself could not be consulted when this was written; the encoder follows it
as it is commonly reproduced.)

- Rollout policy pi_hat [P] (Sec. 3.2): a small model-free network on the observation
  (`RolloutPolicy`: conv layers, one fully connected layer, logits), trained only by the
  distillation loss, the cross-entropy of pi_hat under the agent's policy pi with pi stopped,
  `l_dist = -sum_a sg(pi(a|o)) log pi_hat(a|o)` (`distillation_loss`, mean over the batch), so
  its gradient w.r.t. pi_hat's logits is `pi_hat - pi` and a descent step moves pi_hat toward
  pi; no gradient reaches pi.
- Imagination core [P] (Sec. 3.1, Fig. 1): from the current observation `o_t`, one rollout per
  action `a` (Sec. 3.1: "one rollout for each possible action ... the first action of the i-th
  rollout is the i-th action"), the others chosen by pi_hat, depth tau, through the frozen
  environment model (`stop_gradient` on its params). [O] pi_hat's actions are sampled
  (`rollout_actions="sample"`, default) or greedy (`"greedy"`). `imagine` reuses
  `agents.rollout.rollout` (`lax.scan` over the depth, `vmap` of the model's gymnax `step`
  over the environments x actions batch), with `ImaginedEnv` or the copy model (`CopyModelEnv`)
  as the environment.
- Rollout encoder [P] (App. B): a CNN on each imagined observation; its output concatenated with
  the imagined reward broadcast as one constant plane of the CNN output's shape; flattened; an
  LSTM fed the rollout in reverse order (`o_{t+tau}` first, `o_{t+1}` last: "the trajectory is
  processed backwards", Sec. 3.1), its last output the rollout code. One encoder (shared
  weights) encodes the A rollouts.
- Aggregator [P] (Sec. 3.1): the concatenation of the A rollout codes (`aggregate`).
- I2A network [P] (App. B): the imagination code concatenated with the model-free path (the
  conv layers of the standard agent, `agents.a2c.networks.ActorCritic`, without its fully
  connected layer), one fully connected ReLU layer, a policy-logits head and a value head
  (ActorCritic's initialisers). The copy-model agent [P] (Sec. 4.2) is the same network with
  the environment model replaced by the identity (`copy_predict`; [O] imagined reward 0):
  `I2AConfig.copy_model=True`.

    net = make_i2a_network(config, obs_shape, num_actions, env_model)   # flax module
    params = net.init(key, obs[B], model_params, key)
    out = net.apply(params, obs[B], model_params, key)   # I2AOutput: logits[B, A], value[B],
                                                         # rollout_logits[B, A], imagination
    loss = distillation_loss(out.logits, out.rollout_logits)   # gradient into pi_hat only
    loss, (a2c_info, l_dist) = i2a_loss(...)   # A2C loss + distill_coef x l_dist
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from agents import rollout as rollout_lib
from agents.a2c import losses as a2c_losses
from agents.a2c.networks import PatchConv
from agents.i2a.env_model import EnvModelFns, ImaginedEnv, copy_predict
from stochastic_graphs import magic_box

ROLLOUT_ACTIONS = ("sample", "greedy")
ROLLOUT_TRAINING = ("distill", "query")


# ------------------------------------------------------------------------------ distillation
def distillation_loss(policy_logits: jax.Array, rollout_logits: jax.Array) -> jax.Array:
  """`l_dist = mean over [...] of -sum_a sg(pi(a|o)) log pi_hat(a|o)` (I2A Sec. 3.2).

  Args:
    policy_logits: `[..., A]` logits of the agent's policy pi (stopped: no gradient).
    rollout_logits: `[..., A]` logits of the rollout policy pi_hat.
  """
  if policy_logits.shape != rollout_logits.shape:
    raise ValueError(f"policy_logits {policy_logits.shape} and rollout_logits "
                     f"{rollout_logits.shape} must have the same shape.")
  pi = jax.lax.stop_gradient(jax.nn.softmax(policy_logits, -1))
  return jnp.mean(-jnp.sum(pi * jax.nn.log_softmax(rollout_logits, -1), -1))


def query_loss(imagined_log_prob: jax.Array, advantage: jax.Array) -> jax.Array:
  """"Learning to query" (Buesing et al. 2018, Sec. 5): pi_hat trained by the agent's policy
  gradient. The score-function surrogate `-mean over [T, B] of (magic_box(L) - 1) sg(A)`, with
  `L = sum over the A rollouts and their sampled steps of log pi_hat(a_k | o_hat_k)` (the whole
  imagination of one observation is one joint draw from pi_hat) and `A` the agent's A2C
  advantage at that observation. `stochastic_graphs.magic_box` (DiCE, Foerster et al. 2018,
  Eq. (3)) gives the gradient `-mean sg(A) grad L`, the score-function estimate of the gradient
  of `-E[A]` through pi_hat's choices; `- 1` makes the value 0 (only its gradient matters).

  Args:
    imagined_log_prob: `[T, B, A, tau - 1]` log pi_hat of the sampled actions (differentiable
      in pi_hat's params; `I2AOutput.imagined_log_prob`).
    advantage: `[T, B]` advantages (stopped here).
  """
  if imagined_log_prob.shape[:2] != advantage.shape:
    raise ValueError(f"imagined_log_prob {imagined_log_prob.shape} must have advantage's "
                     f"[T, B] = {advantage.shape} as its leading axes.")
  total = jnp.sum(imagined_log_prob.reshape(advantage.shape + (-1,)), -1)
  return -jnp.mean((magic_box(total) - 1.0) * jax.lax.stop_gradient(advantage))


def i2a_loss(logits: jax.Array, values: jax.Array, rollout_logits: jax.Array,
             bootstrap_value: jax.Array, action: jax.Array, reward: jax.Array,
             discount: jax.Array, truncated: jax.Array, config: Any, distill_coef: float,
             *, rollout_training: str = "distill", imagined_log_prob: jax.Array | None = None,
             query_coef: float = 1.0) -> tuple[jax.Array, tuple[Any, jax.Array]]:
  """I2A's objective (Sec. 3.2): the A2C loss of `agents.a2c.losses.a2c_loss` on the I2A
  policy and value, plus pi_hat's loss: with `rollout_training="distill"` (default)
  `distill_coef` x `distillation_loss(logits, rollout_logits)`; with `"query"` (B18 Sec. 5,
  learning to query) `query_coef` x `query_loss(imagined_log_prob, A)`, `A` the A2C
  advantage `G - sg(V)` of the same return targets, and no distillation term.

  Args: `[T, B, A]` logits and rollout_logits, `[T, B]` values, `[B]` bootstrap_value, the
  rollout's `[T, B]` action, reward, discount, truncated; `config` as `a2c_loss`'s;
  `imagined_log_prob` `[T, B, A, tau - 1]`, required for "query".
  Returns: `(loss, (a2c LossInfo, l_dist))`, `l_dist` the (stopped) distillation loss in both
  modes (a diagnostic in "query").
  """
  if rollout_training not in ROLLOUT_TRAINING:
    raise ValueError(f"rollout_training must be one of {ROLLOUT_TRAINING}; got "
                     f"{rollout_training!r}.")
  a2c, info = a2c_losses.a2c_loss(logits, values, bootstrap_value, action, reward, discount,
                                  truncated, config)
  dist = distillation_loss(logits, rollout_logits)
  if rollout_training == "distill":
    return a2c + distill_coef * dist, (info, jax.lax.stop_gradient(dist))
  if imagined_log_prob is None:
    raise ValueError("rollout_training='query' needs imagined_log_prob.")
  target = a2c_losses.return_targets(reward, discount, truncated, values, bootstrap_value,
                                     config)
  advantage = target - jax.lax.stop_gradient(values)
  query = query_loss(imagined_log_prob, advantage)
  return a2c + query_coef * query, (info, jax.lax.stop_gradient(dist))


# ------------------------------------------------------------------------------ imagination
class CopyModelEnv:
  """The copy model (I2A Sec. 4.2) behind the gymnax step signature: the next observation is
  the current one (`copy_predict`), the reward 0, episodes never end. `params` are ignored."""

  def __init__(self, obs_shape: Sequence[int], num_actions: int):
    self.obs_shape, self.num_actions = tuple(int(s) for s in obs_shape), int(num_actions)

  def carry(self, obs: jax.Array) -> rollout_lib.RolloutCarry:
    obs = jnp.asarray(obs, jnp.float32)
    return rollout_lib.RolloutCarry(obs, obs)

  def step(self, key, state, action, params):
    del key, params
    obs = copy_predict(state, action)
    false = jnp.zeros((), bool)
    return obs, obs, jnp.zeros((), jnp.float32), false, false, {}


def _obs_shape(env) -> tuple:
  return tuple(env.model.obs_shape) if isinstance(env, ImaginedEnv) else tuple(env.obs_shape)


def _imagined_shape(env) -> tuple:
  """The shape of an imagined observation (the real one's unless the env says otherwise, e.g.
  an SSM's latent state: `agents.i2a.ssm_model.SSMEnv`)."""
  return tuple(getattr(env, "imagined_shape", _obs_shape(env)))


def _carry(env, obs, params) -> rollout_lib.RolloutCarry:
  """`env.carry(obs)`, or `env.carry(obs, params)` for an env whose start reads the model."""
  return env.carry(obs, params) if getattr(env, "carry_reads_params", False) else env.carry(obs)


def _policy_input(env, obs, params):
  """What pi_hat reads at the real observations (the env's `policy_input`, else `obs`)."""
  return env.policy_input(obs, params) if hasattr(env, "policy_input") else obs


class _FirstActionFixed:
  """Wraps an imagination env: the observation carries the forced first action (-1 after it)."""

  def __init__(self, env):
    self.env = env

  def step(self, key, state, action, params):
    inner, _ = state
    obs, inner, reward, term, trunc, info = self.env.step(key, inner, action, params)
    none = jnp.full((), -1, jnp.int32)
    return (obs, none), (inner, none), reward, term, trunc, info


class Imagination(NamedTuple):
  """`[B, A, tau, ...]` imagined rollouts: rollout `a` of environment `b` starts with action `a`.

  `obs[b, a, k]` and `reward[b, a, k]` are the model's `o_{t+k+1}`, `r_{t+k+1}` after
  `action[b, a, k]`, taken in `o_{t+k}` (the real `o_t` for k = 0), where pi_hat had
  `rollout_logits[b, a, k]` (unused for k = 0: the action is fixed).
  """
  obs: jax.Array             # [B, A, tau, *imagined_shape] ([H, W, C] unless the env says)
  reward: jax.Array          # [B, A, tau]
  action: jax.Array          # [B, A, tau] int32
  rollout_logits: jax.Array  # [B, A, tau, A]


def check_depth(depth) -> None:
  if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
    raise ValueError(f"depth (the rollout depth tau) must be a positive integer; got {depth!r}.")


def imagine(env, env_params, rollout_policy: Callable[[jax.Array], jax.Array], obs: jax.Array,
            key: jax.Array | None, depth: int, rollout_actions: str = "sample") -> Imagination:
  """The imagination core (I2A Sec. 3.1): one depth-`depth` rollout per action from `obs`.

  Args:
    env: the model behind the gymnax step signature: `ImaginedEnv(model)`, `CopyModelEnv` or
      `agents.i2a.ssm_model.SSMEnv` (an SSM; its start `carry(obs, params)` reads the model).
    env_params: the model's params (`stop_gradient` is applied: the model is frozen).
    rollout_policy: pi_hat, `x[N, ...] -> logits[N, A]` on the env's carried observations (the
      real frame at the start, imagined ones after; an SSM's latent states with
      `output="latent"`). Its actions carry no gradient.
    obs: `[B, H, W, C]` real observations.
    key: PRNG key of pi_hat's sampled actions (and a sampling model); None only if greedy.
    depth: tau, a positive integer.
    rollout_actions: "sample" (pi_hat's actions drawn from its categorical) or "greedy".

  Returns:
    `Imagination` with leading axes `[B, A, tau]`.
  """
  check_depth(depth)
  if rollout_actions not in ROLLOUT_ACTIONS:
    raise ValueError(f"rollout_actions must be one of {ROLLOUT_ACTIONS}; got "
                     f"{rollout_actions!r}.")
  obs_shape, num_actions = _obs_shape(env), int(env.num_actions)
  obs = jnp.asarray(obs, jnp.float32)
  if obs.ndim != len(obs_shape) + 1 or tuple(obs.shape[1:]) != obs_shape:
    raise ValueError(f"obs must be [B, *obs_shape] with the environment model's obs_shape "
                     f"{obs_shape}; got {obs.shape}.")
  if key is None:
    if rollout_actions == "sample":
      raise ValueError("rollout_actions='sample' needs a key.")
    key = jax.random.key(0)
  b = obs.shape[0]
  start = jnp.repeat(obs, num_actions, axis=0)                      # [B * A, ...], b-major
  first = jnp.tile(jnp.arange(num_actions, dtype=jnp.int32), b)     # rollout index b * A + a
  env_params = jax.lax.stop_gradient(env_params)
  carry = _carry(env, start, env_params)
  carry = rollout_lib.RolloutCarry((carry.env_state, first), (carry.obs, first))

  def policy_fn(k, o):
    x, forced = o
    logits = rollout_policy(x)
    if rollout_actions == "greedy":
      action = jnp.argmax(logits, -1)
    else:
      action = jax.random.categorical(k, logits)
    return jnp.where(forced >= 0, forced, action).astype(jnp.int32), logits

  _, traj = rollout_lib.rollout(policy_fn, _FirstActionFixed(env), env_params, carry, key,
                                depth)

  def arrange(x):  # [tau, B * A, ...] -> [B, A, tau, ...]
    x = x.reshape((depth, b, num_actions) + x.shape[2:])
    return jnp.moveaxis(x, 0, 2)

  return Imagination(arrange(traj.obs_t[0]), arrange(traj.reward), arrange(traj.action),
                     arrange(traj.policy_extras))


# ------------------------------------------------------------------------------ networks
class ConvTorso(nn.Module):
  """The standard agent's conv layers (`ActorCritic`'s, same initialiser), flattened:
  `[N, H, W, C] -> [N, F]`."""
  conv_features: Sequence[int] = (16, 16)
  kernel_sizes: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 2)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if not len(self.conv_features) == len(self.kernel_sizes) == len(self.strides):
      raise ValueError("conv_features, kernel_sizes and strides need one entry per layer; got "
                       f"{self.conv_features}, {self.kernel_sizes}, {self.strides}.")
    if jnp.issubdtype(x.dtype, jnp.integer):
      x = x.astype(jnp.float32) / 255.0
    x = x.astype(jnp.float32)
    for f, k, s in zip(self.conv_features, self.kernel_sizes, self.strides):
      x = nn.relu(PatchConv(f, k, s, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x))
    return x.reshape((x.shape[0], -1))


class RolloutPolicy(nn.Module):
  """pi_hat (I2A Sec. 3.2): `obs[N, H, W, C] -> logits[N, A]`, a small model-free network."""
  num_actions: int
  conv_features: Sequence[int] = (8,)
  kernel_sizes: Sequence[int] = (3,)
  strides: Sequence[int] = (1,)
  hidden_size: int = 32

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    x = ConvTorso(tuple(self.conv_features), tuple(self.kernel_sizes), tuple(self.strides))(obs)
    x = nn.relu(nn.Dense(self.hidden_size,
                         kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x))
    return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(x)


class StepFeatures(nn.Module):
  """One imagined step's encoder input (I2A App. B): CNN features of the observation with the
  reward broadcast as one more plane, flattened: `(obs[N, H, W, C], reward[N]) -> [N, F]`."""
  conv_features: Sequence[int] = (16, 16)
  kernel_sizes: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 2)

  @nn.compact
  def __call__(self, obs: jax.Array, reward: jax.Array) -> jax.Array:
    x = obs.astype(jnp.float32)
    for f, k, s in zip(self.conv_features, self.kernel_sizes, self.strides):
      x = nn.relu(PatchConv(f, k, s, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x))
    plane = jnp.broadcast_to(reward.astype(jnp.float32)[:, None, None, None],
                             x.shape[:3] + (1,))
    x = jnp.concatenate([x, plane], -1)
    return x.reshape((x.shape[0], -1))


class RolloutEncoder(nn.Module):
  """The rollout encoder (I2A App. B): `(obs[N, tau, H, W, C], reward[N, tau]) -> code[N, L]`.

  `StepFeatures` on every step, then the recurrent `cell` (an LSTM of `lstm_size` units unless
  given) over the steps in REVERSE order (the last imagined step first), from a zero state;
  the code is the cell's last output (after the first imagined step).
  """
  conv_features: Sequence[int] = (16, 16)
  kernel_sizes: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 2)
  lstm_size: int = 64
  cell: nn.RNNCellBase | None = None

  @nn.compact
  def __call__(self, obs: jax.Array, reward: jax.Array) -> jax.Array:
    n, tau = reward.shape
    feats = StepFeatures(tuple(self.conv_features), tuple(self.kernel_sizes),
                         tuple(self.strides), name="features")(
        obs.reshape((n * tau,) + obs.shape[2:]), reward.reshape(n * tau))
    feats = feats.reshape((n, tau, -1))
    cell = self.cell if self.cell is not None else nn.OptimizedLSTMCell(self.lstm_size,
                                                                        name="lstm")
    outputs = nn.RNN(cell)(jnp.flip(feats, axis=1))   # x_{t+tau}, ..., x_{t+1}
    return outputs[:, -1]


def aggregate(codes: jax.Array) -> jax.Array:
  """The aggregator (I2A Sec. 3.1): `[N, A, L] -> [N, A * L]`, rollout 0's code first."""
  return codes.reshape(codes.shape[:-2] + (codes.shape[-2] * codes.shape[-1],))


class I2AOutput(NamedTuple):
  logits: jax.Array          # [..., A] the I2A policy pi
  value: jax.Array           # [...]
  rollout_logits: jax.Array  # [..., A] pi_hat at the real observation (for distillation)
  imagination: Imagination   # [..., A, tau, ...]
  # [..., A, tau - 1] log pi_hat of the imagined sampled actions (steps 1..tau-1), with
  # gradient into pi_hat's params ("query"; zeros under "distill")
  imagined_log_prob: jax.Array


class I2ANet(nn.Module):
  """The I2A network (App. B): `(obs[..., H, W, C], model_params, key) -> I2AOutput`.

  `env` is the imagination's environment (`ImaginedEnv(model)`, or `CopyModelEnv` for the
  copy-model agent, `model_params` then unused); the model's params are an argument, stopped.
  Params: `rollout_policy` (pi_hat), `encoder`, `torso` (model-free path), `hidden`, `policy`,
  `value`. No gradient of the policy or value reaches pi_hat's params (they are stopped inside
  the imagination, and its actions are discrete) or the model's; pi_hat learns from
  `distillation_loss` on `rollout_logits` (`rollout_training="distill"`), or, learning to
  query (B18 Sec. 5, `"query"`), from `query_loss` on `imagined_log_prob`: pi_hat re-applied,
  with gradient, to the imagined observations its sampled actions were taken in
  (`imagination.obs[..., k - 1, ...]` for the action of step k >= 1; step 0's is fixed).
  The encoder reads imagined observations of the env's `imagined_shape` (an SSM's latent
  state may differ from the real observation's shape); pi_hat reads the env's
  `policy_input` at the real observation (the same space as in imagination).
  """
  num_actions: int
  env: Any
  depth: int = 3
  rollout_actions: str = "sample"
  conv_features: Sequence[int] = (16, 16)
  kernel_sizes: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 2)
  hidden_size: int = 256
  encoder_features: Sequence[int] = (16, 16)
  encoder_kernel_sizes: Sequence[int] = (3, 3)
  encoder_strides: Sequence[int] = (1, 2)
  lstm_size: int = 64
  rollout_features: Sequence[int] = (8,)
  rollout_kernel_sizes: Sequence[int] = (3,)
  rollout_strides: Sequence[int] = (1,)
  rollout_hidden: int = 32
  rollout_training: str = "distill"

  @nn.compact
  def __call__(self, obs: jax.Array, model_params: Any, key: jax.Array | None,
               imagination: Imagination | None = None) -> I2AOutput:
    """`imagination`: None (imagine here, from `key`), or an `Imagination` with `obs`'s batch
    axes computed earlier (the acting pass's, reused by the update: `agents.i2a.train`); it is
    stopped (no gradient flows into it) and `model_params` and `key` are then unused."""
    obs_shape = _obs_shape(self.env)
    if tuple(obs.shape[-len(obs_shape):]) != obs_shape:
      raise ValueError(f"obs has observation shape {tuple(obs.shape[-len(obs_shape):])}; the "
                       f"environment model's obs_shape is {obs_shape}.")
    batch = obs.shape[:obs.ndim - len(obs_shape)]
    x = jnp.asarray(obs, jnp.float32).reshape((-1,) + obs_shape)
    pi_hat = RolloutPolicy(self.num_actions, tuple(self.rollout_features),
                           tuple(self.rollout_kernel_sizes), tuple(self.rollout_strides),
                           self.rollout_hidden, name="rollout_policy")
    frozen_model = jax.lax.stop_gradient(model_params)
    rollout_logits = pi_hat(_policy_input(self.env, x, frozen_model))
    if imagination is None:
      frozen = jax.lax.stop_gradient(pi_hat.variables)
      unbound = pi_hat.clone(parent=None, name=None)
      imagination = imagine(self.env, frozen_model, lambda o: unbound.apply(frozen, o), x, key,
                            self.depth, self.rollout_actions)
    else:
      lead = len(batch)
      if tuple(imagination.reward.shape) != batch + (self.num_actions, self.depth):
        raise ValueError(f"imagination.reward has shape {tuple(imagination.reward.shape)}; "
                         f"expected obs's batch shape {batch} + (num_actions "
                         f"{self.num_actions}, depth {self.depth}).")
      imagination = jax.tree.map(
          lambda y: jax.lax.stop_gradient(y).reshape((x.shape[0],) + y.shape[lead:]),
          imagination)
    a, tau = self.num_actions, self.depth
    img_shape = _imagined_shape(self.env)
    if tuple(imagination.obs.shape[3:]) != img_shape:
      raise ValueError(f"imagination.obs has imagined observations of shape "
                       f"{tuple(imagination.obs.shape[3:])}; the environment's imagined_shape "
                       f"is {img_shape}.")
    if self.rollout_training == "query" and tau > 1:
      # pi_hat with gradient at the imagined observations its sampled actions were taken in.
      inputs = jax.lax.stop_gradient(imagination.obs[:, :, :-1])
      lp = jax.nn.log_softmax(pi_hat(inputs.reshape((-1,) + img_shape)), -1)
      taken = jax.lax.stop_gradient(imagination.action[:, :, 1:]).reshape(-1)
      imagined_log_prob = jnp.take_along_axis(lp, taken[:, None], -1)[:, 0].reshape(
          (x.shape[0], a, tau - 1))
    else:
      imagined_log_prob = jnp.zeros((x.shape[0], a, tau - 1), jnp.float32)
    codes = RolloutEncoder(tuple(self.encoder_features), tuple(self.encoder_kernel_sizes),
                           tuple(self.encoder_strides), self.lstm_size, name="encoder")(
        imagination.obs.reshape((-1, tau) + img_shape), imagination.reward.reshape((-1, tau)))
    c_ia = aggregate(codes.reshape((x.shape[0], a, -1)))
    c_mf = ConvTorso(tuple(self.conv_features), tuple(self.kernel_sizes), tuple(self.strides),
                     name="torso")(x)
    h = nn.relu(nn.Dense(self.hidden_size, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)),
                         name="hidden")(jnp.concatenate([c_ia, c_mf], -1)))
    logits = nn.Dense(a, kernel_init=nn.initializers.orthogonal(0.01), name="policy")(h)
    value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="value")(h)[:, 0]
    unflat = lambda y: y.reshape(batch + y.shape[1:])  # noqa: E731
    return I2AOutput(unflat(logits), unflat(value), unflat(rollout_logits),
                     jax.tree.map(unflat, imagination), unflat(imagined_log_prob))


# ------------------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class I2AConfig:
  """Architecture of the I2A network (CPU-sized defaults; the paper's sizes in App. B)."""
  depth: int = 3                       # tau, the rollout depth (Sokoban: 1, 3, 5)
  copy_model: bool = False             # the copy-model agent: the model is the identity
  rollout_actions: str = "sample"      # pi_hat's actions: "sample" or "greedy"
  imagination_mode: str = "greedy"     # ImaginedEnv mode: "greedy", "sample" or "probs"
  conv_features: tuple = (16, 16)      # model-free path (the standard agent's conv layers)
  kernel_sizes: tuple = (3, 3)
  strides: tuple = (1, 2)
  hidden_size: int = 256               # the fully connected layer before the heads
  encoder_features: tuple = (16, 16)   # the rollout encoder's CNN
  encoder_kernel_sizes: tuple = (3, 3)
  encoder_strides: tuple = (1, 2)
  lstm_size: int = 64                  # rollout code size L
  rollout_features: tuple = (8,)       # pi_hat's CNN
  rollout_kernel_sizes: tuple = (3,)
  rollout_strides: tuple = (1,)
  rollout_hidden: int = 32
  distill_coef: float = 1.0            # weight of l_dist in the total loss ("distill")
  rollout_training: str = "distill"    # pi_hat's loss: "distill" or "query" (B18 Sec. 5)
  query_coef: float = 1.0              # weight of the learning-to-query term ("query")

  def replace(self, **kwargs) -> "I2AConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: I2AConfig) -> None:
  """Raises a `ValueError` naming the field of an invalid config."""
  check_depth(config.depth)
  if config.rollout_actions not in ROLLOUT_ACTIONS:
    raise ValueError(f"config.rollout_actions must be one of {ROLLOUT_ACTIONS}; got "
                     f"{config.rollout_actions!r}.")
  for name in ("hidden_size", "lstm_size", "rollout_hidden"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")
  for names in (("conv_features", "kernel_sizes", "strides"),
                ("encoder_features", "encoder_kernel_sizes", "encoder_strides"),
                ("rollout_features", "rollout_kernel_sizes", "rollout_strides")):
    lengths = {len(getattr(config, n)) for n in names}
    if len(lengths) != 1:
      raise ValueError(f"config.{', config.'.join(names)} need one entry per layer; got "
                       f"{[getattr(config, n) for n in names]}.")
  if not config.distill_coef >= 0:
    raise ValueError(f"config.distill_coef must be >= 0; got {config.distill_coef!r}.")
  if config.rollout_training not in ROLLOUT_TRAINING:
    raise ValueError(f"config.rollout_training must be one of {ROLLOUT_TRAINING}; got "
                     f"{config.rollout_training!r}.")
  if config.rollout_training == "query" and config.rollout_actions != "sample":
    raise ValueError("config.rollout_training='query' needs config.rollout_actions='sample' "
                     "(the score function of greedy actions is undefined).")
  if not config.query_coef >= 0:
    raise ValueError(f"config.query_coef must be >= 0; got {config.query_coef!r}.")


def make_i2a_network(config: I2AConfig, obs_shape: Sequence[int], num_actions: int,
                     env_model: EnvModelFns | None = None) -> I2ANet:
  """The I2A network for `obs_shape` observations and `num_actions` actions.

  `env_model` (its params are passed to `apply`) is required unless `config.copy_model`, which
  replaces it by the identity (`CopyModelEnv`): I2A's model (`EnvModelFns`, wrapped in
  `ImaginedEnv(mode=config.imagination_mode)`) or an imagination environment used as it is
  (anything with `carry` and `step`, e.g. `agents.i2a.ssm_model.SSMEnv`, an SSM).

  Raises:
    ValueError: a bad config field (depth 0 by name), no environment model, or one whose
      obs_shape or action count does not match.
  """
  check_config(config)
  obs_shape = tuple(int(s) for s in obs_shape)
  if config.copy_model:
    env = CopyModelEnv(obs_shape, num_actions)
  else:
    if env_model is None:
      raise ValueError("env_model is required unless config.copy_model is set.")
    if tuple(env_model.obs_shape) != obs_shape:
      raise ValueError(f"environment model obs_shape {tuple(env_model.obs_shape)} does not "
                       f"match the environment's observation shape {obs_shape}.")
    if env_model.num_actions != num_actions:
      raise ValueError(f"environment model num_actions {env_model.num_actions} does not match "
                       f"the environment's {num_actions} actions.")
    if hasattr(env_model, "carry") and hasattr(env_model, "step"):
      env = env_model
    else:
      env = ImaginedEnv(env_model, mode=config.imagination_mode)
  return I2ANet(
      num_actions=int(num_actions), env=env, depth=int(config.depth),
      rollout_actions=config.rollout_actions, conv_features=tuple(config.conv_features),
      kernel_sizes=tuple(config.kernel_sizes), strides=tuple(config.strides),
      hidden_size=config.hidden_size, encoder_features=tuple(config.encoder_features),
      encoder_kernel_sizes=tuple(config.encoder_kernel_sizes),
      encoder_strides=tuple(config.encoder_strides), lstm_size=config.lstm_size,
      rollout_features=tuple(config.rollout_features),
      rollout_kernel_sizes=tuple(config.rollout_kernel_sizes),
      rollout_strides=tuple(config.rollout_strides), rollout_hidden=config.rollout_hidden,
      rollout_training=config.rollout_training)
