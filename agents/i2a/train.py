"""Training of I2A and its two baselines under one `jit`: `make_agent_trainer`.

Weber et al. 2017, *Imagination-augmented agents for deep reinforcement learning*. Three agents
from one entry (`AgentConfig.agent`), all trained by the A2C objective of `agents.a2c.losses`
(Sec. 3.2: "the I2A ... trained with A3C") by the same loop as the standard A2C trainer
(`agents.a2c.train.make_loop`: rollouts, optimiser, chunk and metrics; only the network, the
acting pass and the loss are the agents' own), with its `Trainer(init, chunk, train, policy,
...)` contract (`launch.train_loop` runs it; `jax.vmap(trainer.train)(keys)` runs seeds):

- `"i2a"` [P] (Sec. 3, App. B): `agents.i2a.imagination.I2ANet` with the frozen environment
  model (`env_model`, `model_params`: closed over as constants, never trained here), loss
  `i2a_loss` = A2C loss + `distill_coef` x the distillation loss of pi_hat (Sec. 3.2), or with
  `config.net.rollout_training="query"` (Buesing et al. 2018 Sec. 5, learning to query) the
  score-function term of pi_hat's imagined actions times the A2C advantage instead. The model
  may be I2A's (`agents.i2a.make_env_model`) or a state-space model behind
  `agents.i2a.ssm_model.SSMEnv`.
- `"copy"` [P] (Sec. 4.2, the copy-model agent): the same network and loss with the model
  replaced by the identity (`CopyModelEnv`), so "the same architecture without a model".
- `"standard"` [P] (Sec. 4.1, the "large standard" agent): A2C's `ActorCritic` on the I2A's
  model-free conv layers (`AgentConfig.net.conv_features`, ...), its fully connected layer
  widened to `standard_hidden_size`, the width at which its parameter count matches the
  I2A's trainable count [O] (environment model excluded: it is trained apart and frozen, and
  the copy-model agent has the same count as I2A without it).

Imagination is reused [O]: the acting pass of every rollout step already runs the I2A network,
imagination included, on every observation; the update needs the same network on the same
observations. Imagined observations and rewards carry no gradient (the model is frozen; pi_hat's
actions are discrete and its params stopped inside the imagination), so the update takes the
acting pass's `Imagination` from the trajectory (`AgentConfig.reuse_imagination`, default) and
recomputes only the differentiable parts (encoder, model-free path, heads, pi_hat's logits at
the real observation for the distillation). This is exact when the update's params equal the
acting params, i.e. the first (with `num_minibatches = 1` the only) gradient step of an update;
with more minibatches the later ones see imagination made with pi_hat's params of the update's
start (one update stale). `reuse_imagination=False` re-imagines in the update with the acting
pass's keys (the reference: same value, about twice the model steps). The bootstrap
observation's imagination is made in the update (B rollouts sets, 1/T of the acting pass's).
Every environment's imagination has its own key (`jax.random.split` over the batch), so a
subset of environments (a minibatch) is re-imagined exactly as it was acted on.

    trainer = make_agent_trainer(AgentConfig(agent="i2a"), env, env_params,
                                 env_model=model, model_params=model_params)
    state, metrics = jax.jit(trainer.train)(key)           # metrics [U * C]
    jax.vmap(trainer.train)(keys)                           # seeds

Bad input raises a `ValueError` naming it before anything is compiled: an unknown
`config.agent`, a rollout depth below 1 (`config.net.depth`), an environment model whose
observation shape or action count differs from the environment's, model params that do not
fit the model (a corrupted checkpoint), any bad A2C field.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from agents import rollout as rollout_lib
from agents.a2c import losses as a2c_losses
from agents.a2c import train as a2c_train
from agents.a2c.networks import ActorCritic
from agents.i2a import env_model as em
from agents.i2a import imagination as im

AGENTS = ("i2a", "copy", "standard")
TrainState = a2c_train.TrainState


@dataclasses.dataclass(frozen=True)
class AgentConfig:
  """One of the three agents of the I2A paper, trained by A2C (CPU-sized defaults)."""
  agent: str = "i2a"                  # "i2a", "copy" (copy-model agent) or "standard"
  a2c: a2c_train.A2CConfig = dataclasses.field(      # the A2C fields (rollouts, loss, optimiser;
      default_factory=a2c_train.A2CConfig)           # its conv/hidden fields are unused here)
  net: im.I2AConfig = dataclasses.field(default_factory=im.I2AConfig)  # the I2A network
  reuse_imagination: bool = True      # the update reuses the acting pass's imagination [O]
  standard_hidden: int = 0            # standard agent's hidden width; 0: `standard_hidden_size`

  def replace(self, **kwargs) -> "AgentConfig":
    return dataclasses.replace(self, **kwargs)


def check_config(config: AgentConfig) -> None:
  """Raises a `ValueError` naming the field of an invalid config."""
  if config.agent not in AGENTS:
    raise ValueError(f"config.agent must be one of {AGENTS}; got {config.agent!r}.")
  a2c_train.check_config(config.a2c)
  im.check_config(config.net)
  if (isinstance(config.standard_hidden, bool) or not isinstance(config.standard_hidden,
                                                                 (int, np.integer))
      or config.standard_hidden < 0):
    raise ValueError(f"config.standard_hidden must be an integer >= 0; got "
                     f"{config.standard_hidden!r}.")


def count_params(params) -> int:
  """Number of scalars in a params pytree."""
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _standard_network(net: im.I2AConfig, num_actions: int, hidden: int) -> ActorCritic:
  return ActorCritic(num_actions=num_actions, obs_rank=3, conv_features=tuple(net.conv_features),
                     kernel_sizes=tuple(net.kernel_sizes), strides=tuple(net.strides),
                     hidden_size=int(hidden))


def i2a_param_count(net: im.I2AConfig, obs_shape: Sequence[int], num_actions: int) -> int:
  """Trainable parameters of the I2A network (pi_hat, encoder, model-free path, heads; the
  environment model's are not among them). The copy-model agent has the same count."""
  obs_shape = tuple(int(s) for s in obs_shape)
  network = im.make_i2a_network(net.replace(copy_model=True), obs_shape, num_actions)
  shapes = jax.eval_shape(network.init, jax.random.key(0), jnp.zeros((1,) + obs_shape),
                          None, jax.random.key(0))
  return count_params(shapes)


def standard_param_count(net: im.I2AConfig, obs_shape: Sequence[int], num_actions: int,
                         hidden: int) -> int:
  """Parameters of the standard agent (`ActorCritic` on `net`'s conv layers) of width `hidden`."""
  obs_shape = tuple(int(s) for s in obs_shape)
  shapes = jax.eval_shape(_standard_network(net, num_actions, hidden).init, jax.random.key(0),
                          jnp.zeros((1,) + obs_shape))
  return count_params(shapes)


def standard_hidden_size(net: im.I2AConfig, obs_shape: Sequence[int], num_actions: int) -> int:
  """The "large standard" width (I2A Sec. 4.1): the hidden size `h` of the standard agent whose
  parameter count is nearest the I2A's (`i2a_param_count`).

  The count is affine in `h`: `P(h) = P(0) + h (F + 1 + A + 1)` (F the flattened conv output,
  A actions: the hidden layer's weights and bias, then the policy and value heads' weights), so
  `h = round((P_I2A - P(0)) / (F + A + 2))`, at least 1; the counts then differ by at most half
  a hidden unit's `(F + A + 2) / 2` parameters.
  """
  target = i2a_param_count(net, obs_shape, num_actions)
  p1, p2 = (standard_param_count(net, obs_shape, num_actions, h) for h in (1, 2))
  per_unit = p2 - p1
  base = p1 - per_unit
  return max(1, int(round((target - base) / per_unit)))


class AgentTrainer(NamedTuple):
  """The agents' trainer contract (`agents.a2c.Trainer`'s fields first) and its pieces.

  `init(key)`, `chunk(state)`, `train(key)`, `policy(params, key, obs[B]) -> action[B]`,
  `network` (flax module), `config`; and for tests, benchmarks and the Monte-Carlo agent:
  `act(params, key, obs[B]) -> (action[B], extras)` (one acting pass; `extras` the
  `Imagination` with reuse, the per-environment imagination keys without, None for the
  standard agent), `collect(state) -> (carry, traj, bootstrap_key, next_key)` (one update's
  rollout) and `loss(params, traj, bootstrap_obs, key) -> (loss, info)`.
  """
  init: Callable[[jax.Array], TrainState]
  chunk: Callable[[TrainState], tuple[TrainState, dict]]
  train: Callable[[jax.Array], tuple[TrainState, dict]]
  policy: Callable[[Any, jax.Array, jax.Array], jax.Array]
  network: Any
  config: AgentConfig
  act: Callable[..., tuple[jax.Array, Any]]
  collect: Callable[[TrainState], tuple[Any, Any, jax.Array, jax.Array]]
  loss: Callable[..., tuple[jax.Array, dict]]
  # forward(params, obs[...], keys[...] | None, imagination | None) -> (logits, value, out)
  forward: Callable[..., tuple[jax.Array, jax.Array, Any]]


def make_agent_trainer(config: AgentConfig, env, env_params=None, *,
                       env_model: em.EnvModelFns | None = None, model_params: Any = None,
                       env_name: str = "env",
                       refresh_env_params: Callable[[jax.Array, Any], Any] | None = None
                       ) -> AgentTrainer:
  """Builds the jittable trainer of `config.agent` (module doc) for a gymnax environment.

  Args:
    config: `AgentConfig`.
    env, env_params, env_name, refresh_env_params: as `agents.a2c.make_trainer`'s.
    env_model: the environment model (`agents.i2a.make_env_model`), required for "i2a".
    model_params: its trained params (frozen), required for "i2a".

  Returns:
    An `AgentTrainer`; `chunk` metrics as A2C's plus `distill_loss` (0 for "standard").

  Raises:
    ValueError: naming the bad field or argument (module doc).
  """
  check_config(config)
  c = config.a2c
  env_params = env.default_params if env_params is None else env_params
  num_actions, obs_shape, obs_dtype = a2c_train.probe(env, env_params, env_name)
  if len(obs_shape) != 3:
    raise ValueError(f"environment {env_name!r}: I2A's agents need (H, W, C) observations; "
                     f"got shape {obs_shape}.")
  kind = config.agent
  if kind == "i2a":
    if env_model is None or model_params is None:
      raise ValueError("agent 'i2a' needs env_model and model_params (the trained, frozen "
                       "environment model).")
    em.check_compatible(env_model, env, env_params, model_params)
  reuse = config.reuse_imagination

  if kind == "standard":
    hidden = config.standard_hidden or standard_hidden_size(config.net, obs_shape, num_actions)
    network = _standard_network(config.net, num_actions, hidden)

    def forward(params, obs, keys=None, imagination=None):
      logits, value = network.apply(params, obs)
      return logits, value, None

    def init_params(key):
      return network.init(key, jnp.zeros((1,) + obs_shape, obs_dtype))
  else:
    network = im.make_i2a_network(config.net.replace(copy_model=kind == "copy"), obs_shape,
                                  num_actions, env_model if kind == "i2a" else None)
    frozen_model = None if kind == "copy" else jax.lax.stop_gradient(model_params)

    def forward(params, obs, keys=None, imagination=None):
      """`obs[..., H, W, C]` -> logits, value, I2AOutput. `keys[...]`: one imagination key per
      observation (imagined one by one under vmap, so any subset reproduces its rows)."""
      if imagination is not None:
        return _outputs(network.apply(params, obs, frozen_model, None, imagination))
      batch = obs.shape[:obs.ndim - 3]
      flat_obs = obs.reshape((-1,) + obs.shape[-3:])
      flat_keys = keys.reshape((-1,))
      out = jax.vmap(lambda o, k: network.apply(params, o[None], frozen_model, k))(
          flat_obs, flat_keys)
      out = jax.tree.map(lambda y: y.reshape(batch + y.shape[2:]), out)
      return _outputs(out)

    def init_params(key):
      k_net, k_img = jax.random.split(key)
      return network.init(k_net, jnp.zeros((1,) + obs_shape, jnp.float32), frozen_model,
                          k_img)

  def act(params, key, obs):
    """One acting pass on `obs[B]`: `(action[B], extras)` (class doc)."""
    k_act, k_img = jax.random.split(key)
    keys = jax.random.split(k_img, obs.shape[0])
    logits, _, out = forward(params, obs, keys)
    action = distrax.Categorical(logits=logits).sample(seed=k_act).astype(jnp.int32)
    if kind == "standard":
      return action, None
    return action, (out.imagination if reuse else keys)

  def policy(params, key, obs):
    return act(params, key, obs)[0]

  def loss(params, traj: rollout_lib.Trajectory, bootstrap_obs, key):
    """The update's loss on a `[T, B']` trajectory (its `policy_extras` from `act`)."""
    boot_keys = jax.random.split(key, bootstrap_obs.shape[0])
    if kind == "standard":
      logits, values, _ = forward(params, traj.obs_tm1)
      _, boot_value, _ = forward(params, bootstrap_obs)
      a2c, info = a2c_losses.a2c_loss(logits, values, boot_value, traj.action,
                                      c.reward_scale * traj.reward, traj.discount,
                                      traj.truncated, c)
      return a2c, {"a2c": info, "distill": jnp.zeros(())}
    if reuse:
      logits, values, out = forward(params, traj.obs_tm1, imagination=traj.policy_extras)
    else:
      logits, values, out = forward(params, traj.obs_tm1, keys=traj.policy_extras)
    _, boot_value, _ = forward(params, bootstrap_obs, keys=boot_keys)
    total, (info, dist) = im.i2a_loss(logits, values, out.rollout_logits, boot_value,
                                      traj.action, c.reward_scale * traj.reward, traj.discount,
                                      traj.truncated, c, config.net.distill_coef,
                                      rollout_training=config.net.rollout_training,
                                      imagined_log_prob=out.imagined_log_prob,
                                      query_coef=config.net.query_coef)
    return total, {"a2c": info, "distill": dist}

  def loop_loss(params, traj, bootstrap_obs, key):
    total, info = loss(params, traj, bootstrap_obs, key)
    return total, (info["a2c"], {"distill_loss": info["distill"]})

  loop = a2c_train.make_loop(c, env, env_params, init_params=init_params, act=act,
                             loss_fn=loop_loss, refresh_env_params=refresh_env_params,
                             loss_key=True)
  return AgentTrainer(loop.init, loop.chunk, loop.train, policy, network, config, act,
                      loop.collect, loss, forward)


def _outputs(out: im.I2AOutput):
  return out.logits, out.value, out


def rollout_policy_params(params) -> Any:
  """pi_hat's params inside an I2A (or copy-model) agent's params."""
  return params["params"]["rollout_policy"]
