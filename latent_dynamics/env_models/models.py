"""State-space environment models on symbolic (one-hot tile) frames (Buesing et al. 2018, B18).

Three models of B18 Sec. 2 (Fig. 1), each with a jumpy variant (B18 Sec. 2.4):

- `"dSSM-DET"` [P]: deterministic latent transition `s_t = g(s_{t-1}, a_{t-1})`; frames and
  rewards decoded from the state, `p(o_t, r_t | s_t)`; rollouts never sample frames.
- `"dSSM-VAE"` [P]: the same transition and a latent `z_t` per step in the decoder only,
  `p(o_t | s_t, z_t)` with `z_t ~ p(z_t | s_t)`, trained by the ELBO with the posterior
  `q(z_t | s_t, e_t)` ([O] prior and posterior also read `a_{t-1}`'s planes; harmless, and it
  keeps one head shape for both latent models).
- `"sSSM"` [P]: stochastic transition `z_t ~ p(z_t | s_{t-1}, a_{t-1})`, `s_t = g(s_{t-1}, z_t,
  a_{t-1})`, decoder `p(o_t, r_t | s_t, z_t)`; the posterior `q(z_t | s_{t-1}, a_{t-1}, e_t,
  mu_p, sigma_p)` sees `e_t`, the encoding of the *observed* frame `o_t` (B18 Sec. 2.3; the
  public reimplementation's posterior reads the predicted frame instead). Trained by the ELBO
  (B18 Eq. (4)) with the pathwise estimator of `stochastic_graphs` (`elbo.filtering_terms`).
- Jumpy (`config.jump = k > 1`) [P]: one transition per `k` actions, the `k` one-hot actions
  concatenated into one code, the target frame the one after the `k`-th action and the target
  reward the sum of the `k` rewards (`jumpy_targets`).
- Initial state [P]: `s_0` from the encodings of the three observations `o_{-2}, o_{-1}, o_0`
  (`observe`). [O] A jumpy model takes the same three consecutive frames (what an agent holds).

Frames: a categorical per tile over the `C` tile classes of the observation (the I2A model's
likelihood), summed over tiles, or ([O], `frame_likelihood="bernoulli"`, for frames whose planes
are not one-hot, as MiniPacman's) a Bernoulli per plane (`frame_log_prob`); rewards: [O] a
unit-variance Gaussian around the reward head's scalar (`blocks.Decoder`). The log-likelihood
of a frame is in nats.

The functional API (`SSMFns` of `make_env_model`):

    model = make_env_model(EnvModelConfig(kind="sSSM"), obs_shape=(15, 19, 6), num_actions=5)
    params = model.init(key)
    state = model.observe(params, context)                 # context [B, 3, H, W, C] -> s_0
    state, out = model.imagine(params, state, actions, key)  # actions [B, T] -> T / k steps
    state, frame_logits, reward = model.step(params, state, action_k, key)  # action_k [B, k]
    ll = model.log_likelihood(params, batch, key, num_samples=K)  # [B]: ELBO or IW bound
    ll = model.frame_log_likelihood(params, batch, key, K)   # [B, T / k]: frames, per prefix
    loss, info = model.loss(params, batch, key)            # -ELBO per model step, surrogate

`batch` is a `Sequences(obs[B, 3 + T, H, W, C], action[B, T], reward[B, T])`: three context
frames, then `T` actions `a_0..a_{T-1}`, the frames `o_1..o_T` they lead to and their rewards.
Rollouts are one `lax.scan` over model steps, batched over the leading axis (the networks run on
`[B, ...]`; `jax.vmap` over sets of batches works too).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import stochastic_graphs as sg
from latent_dynamics.env_models import blocks
from latent_dynamics.env_models import elbo as elbo_lib

KINDS = ("dSSM-DET", "dSSM-VAE", "sSSM")
FRAME_LIKELIHOODS = ("categorical", "bernoulli")
NUM_CONTEXT = 3
_LOG_2PI = float(np.log(2 * np.pi))


@dataclasses.dataclass(frozen=True)
class EnvModelConfig:
  """Architecture of a state-space environment model (B18 App. A sizes where they apply)."""
  kind: str = "sSSM"                # "dSSM-DET", "dSSM-VAE" or "sSSM"
  jump: int = 1                     # k: actions per transition (jumpy models: k > 1)
  factors: tuple = (1, 2)           # space-to-depth factors (f1, f2); B18 (4, 2) on pixels
  embed_channels: int = 64          # E: channels of the encoder's output
  state_channels: int = 64          # S: channels of the state s_t
  latent_channels: int = 16         # Z: channels of z_t (latent models) [O]
  hidden: int = 32                  # channels inside ResConv, heads and the decoder's 1st stack
  pool_features: int = 32           # the pool-and-inject conv's channels
  decoder_channels: int = 64        # D: the decoder's stack channels
  reward_hidden: int = 24           # the reward head's 3x3 conv channels
  reward_coef: float = 1.0          # weight of the reward log-likelihood in the loss
  train_conv: str = "xla"           # the ELBO's conv lowering, "xla" or "patches" [O] (blocks.Conv)
  frame_likelihood: str = "categorical"  # per tile over C classes, or "bernoulli" per plane [O]
  free_nats: float = 0.0            # free bits: the loss's KL per step is max(KL, this) [O]

  def replace(self, **kwargs) -> "EnvModelConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: EnvModelConfig) -> None:
  """Raises a `ValueError` naming the bad field."""
  if config.kind not in KINDS:
    raise ValueError(f"config.kind must be one of {KINDS}; got {config.kind!r}.")
  for name in ("jump", "embed_channels", "state_channels", "latent_channels", "hidden",
               "pool_features", "decoder_channels", "reward_hidden"):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {value!r}.")
  if (len(config.factors) != 2
      or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 1
             for f in config.factors)):
    raise ValueError(f"config.factors must be two positive integers (f1, f2); got "
                     f"{config.factors!r}.")
  if config.frame_likelihood not in FRAME_LIKELIHOODS:
    raise ValueError(f"config.frame_likelihood must be one of {FRAME_LIKELIHOODS}; got "
                     f"{config.frame_likelihood!r}.")
  if config.train_conv not in blocks.CONV_IMPLS:
    raise ValueError(f"config.train_conv must be one of {blocks.CONV_IMPLS}; got "
                     f"{config.train_conv!r}.")
  if not config.reward_coef >= 0:
    raise ValueError(f"config.reward_coef must be >= 0; got {config.reward_coef!r}.")
  if isinstance(config.free_nats, bool) or not config.free_nats >= 0:
    raise ValueError(f"config.free_nats must be a number >= 0; got {config.free_nats!r}.")


class Sequences(NamedTuple):
  """Real sequences: 3 context frames, then `T` steps. Leading axes `[B]`."""
  obs: jax.Array      # [B, 3 + T, H, W, C] float one-hot tiles (o_{-2}, o_{-1}, o_0, o_1..o_T)
  action: jax.Array   # [B, T] int32, a_0..a_{T-1}
  reward: jax.Array   # [B, T] float32, r_1..r_T


class Rollout(NamedTuple):
  """Outputs of `imagine`, per model step `[B, T / k, ...]`."""
  frame_logits: jax.Array | None  # [B, T/k, H, W, C] per-tile logits (None: decode=False)
  reward: jax.Array               # [B, T/k] predicted (summed) reward
  state: jax.Array                # [B, T/k, h, w, S] the states s_1..s_{T/k}


class LossInfo(NamedTuple):
  elbo_per_step: jax.Array   # mean over sequences and model steps of log_lik - KL (nats)
  frame_ll: jax.Array        # mean per model step of log p(o_t | .) (nats per frame)
  reward_ll: jax.Array       # mean per model step of reward_coef x log p(r_t | .)
  kl: jax.Array              # mean per model step of KL(q || p) (0 for dSSM-DET)


class SSMFns(NamedTuple):
  """Pure functions of a state-space environment model (see the module docstring)."""
  init: Callable[[jax.Array], Any]
  observe: Callable[..., jax.Array]
  step: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
  imagine: Callable[..., tuple[jax.Array, Rollout]]
  log_likelihood: Callable[..., jax.Array]
  frame_log_likelihood: Callable[..., jax.Array]
  loss: Callable[..., tuple[jax.Array, LossInfo]]
  terms: Callable[..., elbo_lib.StepTerms]
  check_batch: Callable[..., None]
  config: EnvModelConfig
  obs_shape: tuple
  num_actions: int
  state_shape: tuple


# ------------------------------------------------------------------------------ networks
class _Nets(nn.Module):
  """All networks of one model, with one method per part (params in one tree)."""
  config: EnvModelConfig
  obs_shape: tuple
  num_actions: int
  impl: str = "xla"

  def setup(self):
    c, impl = self.config, self.impl
    self.encoder = blocks.Encoder(tuple(c.factors), c.embed_channels, impl)
    self.initial = blocks.InitialState(c.state_channels, impl)
    self.transition_net = blocks.Transition(c.hidden, c.pool_features, impl)
    self.decoder = blocks.Decoder(tuple(self.obs_shape), tuple(c.factors), c.hidden,
                                  c.decoder_channels, c.reward_hidden, impl)
    if c.kind != "dSSM-DET":
      self.prior_net = blocks.GaussianHead(c.latent_channels, c.hidden, impl)
      self.posterior_net = blocks.GaussianHead(c.latent_channels, c.hidden, impl)

  def encode(self, obs):
    return self.encoder(obs)

  def init_state(self, e_context):
    return self.initial(e_context)

  def transition(self, s, z, a):
    return self.transition_net(s, a, z)

  def decode(self, s, z):
    return self.decoder(s, z)

  def prior(self, s, a):
    return self.prior_net(jnp.concatenate([s, blocks.broadcast_planes(a, s.shape[1:3])], -1))

  def posterior(self, s, a, e, mu_p, sd_p):
    x = jnp.concatenate([s, blocks.broadcast_planes(a, s.shape[1:3]), e, mu_p, sd_p], -1)
    return self.posterior_net(x)

  def __call__(self, context, obs, a):
    """Touches every part once (for `init`)."""
    s = self.init_state(jnp.stack([self.encode(context[:, i]) for i in range(NUM_CONTEXT)], 1))
    e = self.encode(obs)
    z = None
    if self.config.kind != "dSSM-DET":
      mu, sd = self.prior(s, a)
      mu, sd = self.posterior(s, a, e, mu, sd)
      z = mu
    s = self.transition(s, z if self.config.kind == "sSSM" else None, a)
    return self.decode(s, z)


def jumpy_targets(batch: Sequences, jump: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(action_k[B, T/k, k], frame[B, T/k, H, W, C], reward[B, T/k])` of a jump size `k`: the
  `k` actions of each model step, the frame after its `k`-th action (`o_k, o_2k, ...`) and the
  sum of its `k` rewards (B18 Sec. 2.4)."""
  t_len = batch.action.shape[-1]
  if jump < 1 or t_len % jump:
    raise ValueError(f"the number of steps T = {t_len} must be a multiple of the jump size "
                     f"k = {jump}.")
  b = batch.action.shape[0]
  action_k = batch.action.reshape(b, t_len // jump, jump)
  frame = batch.obs[:, NUM_CONTEXT - 1 + jump::jump]
  reward = jnp.sum(batch.reward.reshape(b, t_len // jump, jump), axis=-1)
  return action_k, frame, reward


def frame_log_prob(logits: jax.Array, frame: jax.Array, likelihood: str) -> jax.Array:
  """Per-plane log-probability terms `[..., H, W, C]` of `frame` under the frame head's logits:
  "categorical", `frame * log_softmax(logits)` (one-hot tiles: their sum over C is the tile's
  log-probability); "bernoulli", `frame log sigmoid(l) + (1 - frame) log sigmoid(-l)`, one
  Bernoulli per plane. [O] MiniPacman's planes are not one-hot (an empty floor cell has no plane
  on, a ghost on food two): under "categorical" an all-off tile costs nothing, so its
  prediction is never trained; "bernoulli" scores every plane of every tile (as
  `agents.i2a.env_model`'s `frame_likelihood`)."""
  if likelihood == "bernoulli":
    return frame * jax.nn.log_sigmoid(logits) + (1.0 - frame) * jax.nn.log_sigmoid(-logits)
  return jax.nn.log_softmax(logits, -1) * frame


def frame_probs(logits: jax.Array, likelihood: str) -> jax.Array:
  """`[..., H, W, C]` per-plane probabilities of the frame head (softmax over C, or sigmoid)."""
  return jax.nn.sigmoid(logits) if likelihood == "bernoulli" else jax.nn.softmax(logits, -1)


def _concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def make_env_model(config: EnvModelConfig, obs_shape: Sequence[int], num_actions: int
                   ) -> SSMFns:
  """Builds the model of `config.kind` for `obs_shape = (H, W, C)` one-hot frames.

  Raises:
    ValueError: a bad config field, `obs_shape` not (H, W, C), `num_actions` < 1.
  """
  check_config(config)
  obs_shape = tuple(int(s) for s in obs_shape)
  if len(obs_shape) != 3 or min(obs_shape) < 1:
    raise ValueError(f"obs_shape must be (H, W, C) one-hot tiles; got {obs_shape}.")
  if isinstance(num_actions, bool) or not isinstance(num_actions, (int, np.integer)) \
      or num_actions < 1:
    raise ValueError(f"num_actions must be a positive integer; got {num_actions!r}.")
  num_actions, k, kind = int(num_actions), int(config.jump), config.kind
  f = config.factors[0] * config.factors[1]
  state_shape = (blocks.padded_size(obs_shape[0], f) // f,
                 blocks.padded_size(obs_shape[1], f) // f, config.state_channels)
  # One set of params, two lowerings of the convolutions (`blocks.Conv`): `nets` (XLA's
  # convolution) for observe / step / imagine, `grad_nets` (`config.train_conv`) for the ELBO.
  nets = _Nets(config, obs_shape, num_actions, "xla")
  grad_nets = _Nets(config, obs_shape, num_actions, config.train_conv)
  code_size = k * num_actions

  def init(key):
    context = jnp.zeros((1, NUM_CONTEXT) + obs_shape, jnp.float32)
    return nets.init(key, context, jnp.zeros((1,) + obs_shape, jnp.float32),
                     jnp.zeros((1, code_size), jnp.float32))

  def _check_obs(obs, name, lead):
    if obs.ndim != lead + 3 or tuple(obs.shape[-3:]) != obs_shape:
      raise ValueError(f"{name} must have shape [{', '.join(['B', 'L'][:lead])}, "
                       f"*{obs_shape}] (the model's obs_shape); got {tuple(obs.shape)}.")
    if _concrete(obs) and not np.all(np.isfinite(np.asarray(obs))):
      raise ValueError(f"{name} holds non-finite values.")

  def _check_actions(action, name):
    action = jnp.asarray(action)
    if not jnp.issubdtype(action.dtype, jnp.integer):
      raise ValueError(f"{name} must be integer; got dtype {action.dtype}.")
    if _concrete(action):
      a = np.asarray(action)
      if a.size and (a.min() < 0 or a.max() >= num_actions):
        raise ValueError(f"{name} must be in [0, {num_actions}); got values in "
                         f"[{a.min()}, {a.max()}].")

  def _code(action_k):
    """`[..., k]` int actions -> `[..., k A]` concatenated one-hots."""
    oh = jax.nn.one_hot(action_k, num_actions, dtype=jnp.float32)
    return oh.reshape(action_k.shape[:-1] + (code_size,))

  def observe(params, context: jax.Array) -> jax.Array:
    """`s_0[B, h, w, S]` from the context `[B, n >= 3, H, W, C]` (its last three frames)."""
    return _observe(nets, params, context)

  def _observe(nets, params, context):
    context = jnp.asarray(context, jnp.float32)
    if context.ndim == 5 and context.shape[1] < NUM_CONTEXT:
      raise ValueError(f"context must hold at least {NUM_CONTEXT} frames (B18: the initial "
                       f"state reads o_-2, o_-1, o_0); got {context.shape[1]}.")
    _check_obs(context, "context", 2)
    context = context[:, -NUM_CONTEXT:]
    b = context.shape[0]
    e = nets.apply(params, context.reshape((b * NUM_CONTEXT,) + obs_shape), method="encode")
    return nets.apply(params, e.reshape((b, NUM_CONTEXT) + e.shape[1:]), method="init_state")

  def _prior_step(params, s, a, key, decode: bool):
    """One model step under the prior: `(s_t, frame_logits | None, reward)`."""
    z = None
    if kind == "sSSM":
      mu, sd = nets.apply(params, s, a, method="prior")
      z = mu + sd * jax.random.normal(key, mu.shape, mu.dtype)
      s = nets.apply(params, s, z, a, method="transition")
    else:
      s = nets.apply(params, s, None, a, method="transition")
      if kind == "dSSM-VAE":
        mu, sd = nets.apply(params, s, a, method="prior")
        z = mu + sd * jax.random.normal(key, mu.shape, mu.dtype)
    logits, reward = nets.apply(params, s, z, method="decode")
    # decode=False: the frame logits are dead code, which XLA drops from the compiled rollout.
    return s, (logits if decode else None), reward

  def step(params, state: jax.Array, action_k: jax.Array, key: jax.Array):
    """One model step from `state[B, h, w, S]` with the `k` actions `action_k[B, k]`:
    `(state, frame_logits[B, H, W, C], reward[B])` (latents drawn from the prior)."""
    _check_actions(action_k, "action_k")
    if tuple(jnp.shape(action_k)) != (state.shape[0], k):
      raise ValueError(f"action_k must have shape [B, k] = [{state.shape[0]}, {k}]; got "
                       f"{tuple(jnp.shape(action_k))}.")
    return _prior_step(params, state, _code(action_k), key, True)

  def imagine(params, state: jax.Array, actions: jax.Array, key: jax.Array, *,
              decode: bool = True) -> tuple[jax.Array, Rollout]:
    """Open-loop rollout of `T / k` model steps from `state[B, h, w, S]` under the actions
    `actions[B, T]` (latents from the prior; frames never sampled). `decode=False` skips the
    frame head (the latent-only rollouts an agent may read)."""
    _check_actions(actions, "actions")
    actions = jnp.asarray(actions)
    if actions.ndim != 2 or actions.shape[0] != state.shape[0]:
      raise ValueError(f"actions must have shape [B, T] with B = {state.shape[0]}; got "
                       f"{actions.shape}.")
    if actions.shape[1] % k:
      raise ValueError(f"the number of actions T = {actions.shape[1]} must be a multiple of "
                       f"the jump size k = {k}.")
    codes = _code(actions.reshape(actions.shape[0], -1, k))      # [B, T/k, kA]

    def body(s, x):
      a, t = x
      s, logits, reward = _prior_step(params, s, a, jax.random.fold_in(key, t), decode)
      return s, (logits, reward, s)

    s, (logits, reward, states) = jax.lax.scan(
        body, state, (jnp.swapaxes(codes, 0, 1), jnp.arange(codes.shape[1])))
    sw = lambda x: None if x is None else jnp.swapaxes(x, 0, 1)  # noqa: E731
    return s, Rollout(sw(logits), sw(reward), sw(states))

  def _cell(params) -> elbo_lib.Cell:
    def log_lik(s, z, tgt):
      frame, reward = tgt
      logits, r_mean = grad_nets.apply(params, s, z, method="decode")
      frame_ll = jnp.sum(frame_log_prob(logits, frame, config.frame_likelihood),
                         axis=(-3, -2, -1))
      reward_ll = -0.5 * (reward - r_mean) ** 2 - 0.5 * _LOG_2PI
      return {"frame": frame_ll, "reward": config.reward_coef * reward_ll}

    def prior(s, a):
      return grad_nets.apply(params, s, a, method="prior")

    def posterior(s, a, e, mu_p, sd_p):
      return grad_nets.apply(params, s, a, e, mu_p, sd_p, method="posterior")

    def transition(s, z, a):
      return grad_nets.apply(params, s, z, a, method="transition")

    position = {"sSSM": "transition", "dSSM-VAE": "decoder", "dSSM-DET": "none"}[kind]
    return elbo_lib.Cell(prior, posterior, transition, log_lik, position)

  def check_batch(batch: Sequences, name: str = "batch") -> None:
    """Raises a `ValueError` naming the field of a batch that does not fit the model: frame
    shape, fewer than 3 context frames, actions out of range, `T` not a multiple of `k`."""
    obs = jnp.asarray(batch.obs)
    _check_obs(obs, f"{name}.obs", 2)
    if obs.shape[1] < NUM_CONTEXT + 1:
      raise ValueError(f"{name}.obs must hold {NUM_CONTEXT} context frames and at least one "
                       f"step; got {obs.shape[1]} frames.")
    _check_actions(batch.action, f"{name}.action")
    t_len = obs.shape[1] - NUM_CONTEXT
    if tuple(jnp.shape(batch.action)) != (obs.shape[0], t_len) \
        or tuple(jnp.shape(batch.reward)) != (obs.shape[0], t_len):
      raise ValueError(f"{name}.action and {name}.reward must have shape [B, T] = "
                       f"[{obs.shape[0]}, {t_len}] (T = frames - {NUM_CONTEXT}); got "
                       f"{tuple(jnp.shape(batch.action))} and {tuple(jnp.shape(batch.reward))}.")
    if t_len % k:
      raise ValueError(f"{name}: the number of steps T = {t_len} must be a multiple of the "
                       f"jump size k = {k}.")

  def _prepare(params, batch: Sequences):
    check_batch(batch)
    obs = jnp.asarray(batch.obs, jnp.float32)
    batch = Sequences(obs, jnp.asarray(batch.action), jnp.asarray(batch.reward, jnp.float32))
    action_k, frames, rewards = jumpy_targets(batch, k)
    b, m = frames.shape[:2]
    s0 = _observe(grad_nets, params, obs[:, :NUM_CONTEXT])
    if kind == "dSSM-DET":
      e = jnp.zeros((m, b, 1, 1, 1), jnp.float32)
    else:
      e = grad_nets.apply(params, frames.reshape((b * m,) + obs_shape), method="encode")
      e = jnp.swapaxes(e.reshape((b, m) + e.shape[1:]), 0, 1)
    tm = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    return s0, tm(_code(action_k)), e, (tm(frames), tm(rewards))

  def terms(params, batch: Sequences, key: jax.Array, *, emit_costs: bool = False
            ) -> elbo_lib.StepTerms:
    """Per-step terms `[T/k, B]` of one posterior sample path (`elbo.filtering_terms`)."""
    s0, codes, e, tgt = _prepare(params, batch)
    # Free bits only change the emitted costs (the loss), never the terms returned.
    _, out = elbo_lib.filtering_terms(_cell(params), s0, codes, e, tgt, key,
                                      emit_costs=emit_costs, unroll=True,
                                      free_nats=float(config.free_nats))
    return out

  def log_likelihood(params, batch: Sequences, key: jax.Array, num_samples: int = 1
                     ) -> jax.Array:
    """`[B]`: a bound on `log p(o_{1:T}, r_{1:T} | o_{-2:0}, a)` (nats; the exact value for
    dSSM-DET): the one-path ELBO for `num_samples = 1`, the importance-weighted bound of
    `num_samples` paths otherwise."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
        or num_samples < 1:
      raise ValueError(f"num_samples must be a positive integer; got {num_samples!r}.")
    if num_samples == 1 or kind == "dSSM-DET":
      return elbo_lib.elbo(terms(params, batch, key))
    keys = jax.random.split(key, num_samples)
    log_w = jax.lax.map(lambda kk: elbo_lib.path_log_weights(terms(params, batch, kk)), keys)
    return elbo_lib.iw_bound(log_w)

  def frame_log_likelihood(params, batch: Sequences, key: jax.Array, num_samples: int = 1
                           ) -> jax.Array:
    """`[B, T/k]`: entry `j` bounds `log p(o_k, o_2k, ..., o_(j+1)k | o_{-2:0}, a)`, the
    frames only (rewards marginalised), by the importance-weighted bound of `num_samples`
    posterior paths on every prefix at once (the prefix sums of each path's log-weights;
    exact for dSSM-DET). Divide entry `j` by `j + 1` for nats per frame."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
        or num_samples < 1:
      raise ValueError(f"num_samples must be a positive integer; got {num_samples!r}.")

    def prefix_log_w(kk):
      out = terms(params, batch, kk)
      return jnp.cumsum(out.parts["frame"] + out.log_ratio, axis=0)   # [T/k, B]

    n = 1 if kind == "dSSM-DET" else num_samples
    log_w = jax.lax.map(prefix_log_w, jax.random.split(key, n))        # [K, T/k, B]
    return elbo_lib.iw_bound(log_w).T

  def _neg_elbo_graph(params, batch, key):
    out = terms(params, batch, key, emit_costs=True)
    return jnp.sum(out.kl - out.log_lik)

  surrogate = sg.make_surrogate(_neg_elbo_graph, check_finite=False)

  def loss(params, batch: Sequences, key: jax.Array) -> tuple[jax.Array, LossInfo]:
    """`(-ELBO per model step, LossInfo)`, means over sequences and model steps; the
    gradient is the pathwise estimator of `stochastic_graphs` (B18 Eq. (4); Weber et al.
    2019, Eq. (4)). `reward_coef` weighs the reward term of both. With `free_nats > 0` the
    loss's KL per step is `max(KL_t, free_nats)` (free bits, `elbo`'s module doc) while
    `LossInfo` keeps the true ELBO and KL."""
    value, info = surrogate(params, batch, key)
    count = batch.action.shape[0] * (batch.action.shape[1] // k)
    mean = lambda name: jnp.sum(info.costs[name]) / count  # noqa: E731
    frame_ll, reward_ll, kl = -mean("neg_frame"), -mean("neg_reward"), mean("kl")
    return value / count, LossInfo(frame_ll + reward_ll - kl, frame_ll, reward_ll, kl)

  return SSMFns(init, observe, step, imagine, log_likelihood, frame_log_likelihood, loss, terms,
                check_batch, config, obs_shape, num_actions, state_shape)
