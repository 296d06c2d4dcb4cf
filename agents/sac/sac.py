"""Soft actor-critic (SAC): twin critics, Polyak target networks, tanh-Gaussian policy and an
automatically tuned entropy temperature (Haarnoja et al. 2018a, arXiv:1801.01290; Haarnoja et al.
2018b, "Soft actor-critic algorithms and applications", arXiv:1812.05905).

The agent is a factory returning a NamedTuple of pure functions (the optax pattern):

    agent = make_sac(SacConfig(), obs_dim, action_dim)
    state = agent.init(key)
    action = agent.act(state.actor_params, obs, key)            # in (-1, 1)^action_dim
    state, metrics = agent.update(state, batch, key)             # one gradient step

`make_soft_actor_critic` holds everything SAC and SAC-D share (the actor, temperature and
target-network updates); the two agents differ only in the critic head width and the critic target
(`sac_critic_target` here, `agents.sac_d.decomposed_critic_targets` for SAC-D).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

from agents.sac import networks, tanh_gaussian


class SacConfig(NamedTuple):
  """Hyperparameters shared by SAC and SAC-D (defaults of Haarnoja et al. 2018b, Table 1)."""
  hidden_sizes: Sequence[int] = (256, 256)  # Widths of the actor's and each critic's MLP.
  actor_learning_rate: float = 3e-4         # Adam step size of the policy.
  critic_learning_rate: float = 3e-4        # Adam step size of both critics.
  alpha_learning_rate: float = 3e-4         # Adam step size of log(alpha).
  discount: float = 0.99                    # gamma.
  tau: float = 0.005                        # Polyak rate of the target critics.
  init_alpha: float = 1.0                   # Initial entropy temperature.
  target_entropy: float | None = None       # H-bar of Eq. (18); None -> -action_dim.
  log_std_min: float = -5.0                 # Range of the policy's pre-tanh log-std.
  log_std_max: float = 2.0
  entropy_component: bool = True            # SAC-D only: a separate entropy value head.


class Transition(NamedTuple):
  """One stored transition (leading batch axes allowed on every field).

  Attributes:
    obs: `[obs_dim]` observation s_t.
    action: `[action_dim]` action a_t in (-1, 1).
    reward: `[]` scalar reward r_t (the sum of `reward_components`).
    reward_components: `[num_components]` decomposed reward r_t^i.
    discount: `[]` 0.0 where the episode terminated at s_{t+1}, else 1.0 (gamma is applied in
      the update); a time-limit truncation keeps 1.0.
    next_obs: `[obs_dim]` observation s_{t+1}.
  """
  obs: jax.Array
  action: jax.Array
  reward: jax.Array
  reward_components: jax.Array
  discount: jax.Array
  next_obs: jax.Array


class AgentState(NamedTuple):
  """Parameters and optimiser states of a soft actor-critic agent."""
  actor_params: Any
  critic_params: Any
  target_critic_params: Any
  log_alpha: jax.Array
  actor_opt_state: Any
  critic_opt_state: Any
  alpha_opt_state: Any
  steps: jax.Array


class Agent(NamedTuple):
  """Pure functions of a soft actor-critic agent.

  Attributes:
    init: `init(key) -> AgentState`.
    act: `act(actor_params, obs [..., obs_dim], key, deterministic=False) -> action`.
    update: `update(state, batch: Transition with leading [B], key) -> (state, metrics)`.
    critic: `critic(critic_params, obs [B, obs_dim], action [B, A]) -> [2, B, num_heads]`.
    num_heads: width of each critic's output (1 for SAC; components + entropy for SAC-D).
  """
  init: Callable[[jax.Array], AgentState]
  act: Callable[..., jax.Array]
  update: Callable[[AgentState, Transition, jax.Array], tuple[AgentState, dict]]
  critic: Callable[[Any, jax.Array, jax.Array], jax.Array]
  num_heads: int


# critic_target_fn(target_q_next [2, B, H], next_log_prob [B], batch, gamma, alpha)
#   -> (targets [B, H], aux dict)
CriticTargetFn = Callable[[jax.Array, jax.Array, Transition, float, jax.Array],
                          tuple[jax.Array, dict]]


def sac_critic_target(target_q_next: jax.Array, next_log_prob: jax.Array, reward: jax.Array,
                      discount_t: jax.Array, alpha: jax.Array) -> jax.Array:
  """Clipped double-Q soft Bellman target, Eqs. (3) and (7) of Haarnoja et al. 2018b:

      y = r + gamma_t * (min_j Q'_j(s', a') - alpha * log pi(a' | s')),  a' ~ pi(. | s').

  Args:
    target_q_next: `[2, B]` target critics at `(s', a')`.
    next_log_prob: `[B]` log pi(a' | s').
    reward: `[B]`.
    discount_t: `[B]` gamma, zeroed at terminations.
    alpha: scalar temperature.

  Returns:
    `[B]` targets.
  """
  chex.assert_rank(target_q_next, 2)
  chex.assert_equal_shape([target_q_next[0], next_log_prob, reward, discount_t])
  return reward + discount_t * (jnp.min(target_q_next, axis=0) - alpha * next_log_prob)


def make_soft_actor_critic(config: SacConfig, obs_dim: int, action_dim: int, num_heads: int,
                           critic_target_fn: CriticTargetFn) -> Agent:
  """Builds the shared soft actor-critic machinery around a critic target.

  Args:
    config: hyperparameters.
    obs_dim: length of the (flat) observation.
    action_dim: length of the action; actions lie in (-1, 1)^action_dim.
    num_heads: width of each critic's output.
    critic_target_fn: computes the regression targets of the critic heads (see `CriticTargetFn`).

  Returns:
    An `Agent`. The policy and temperature always use the critic heads' sum, Eqs. (10) and (18)
    of Haarnoja et al. 2018b, so a decomposed critic only changes the critic regression.
  """
  for name, value in (("obs_dim", obs_dim), ("action_dim", action_dim), ("num_heads", num_heads)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}")
  if not 0.0 < config.tau <= 1.0:
    raise ValueError(f"config.tau must be in (0, 1], got {config.tau}")
  if not 0.0 <= config.discount <= 1.0:
    raise ValueError(f"config.discount must be in [0, 1], got {config.discount}")
  if config.init_alpha <= 0.0:
    raise ValueError(f"config.init_alpha must be positive, got {config.init_alpha}")
  actor = networks.Actor(tuple(config.hidden_sizes), action_dim, config.log_std_min,
                         config.log_std_max)
  critic = networks.TwinCritic(tuple(config.hidden_sizes), num_heads)
  actor_opt = optax.adam(config.actor_learning_rate)
  critic_opt = optax.adam(config.critic_learning_rate)
  alpha_opt = optax.adam(config.alpha_learning_rate)
  target_entropy = (-float(action_dim) if config.target_entropy is None
                    else float(config.target_entropy))

  def init(key: jax.Array) -> AgentState:
    key_actor, key_critic = jax.random.split(key)
    obs = jnp.zeros((1, obs_dim))
    action = jnp.zeros((1, action_dim))
    actor_params = actor.init(key_actor, obs)
    critic_params = critic.init(key_critic, obs, action)
    log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
    return AgentState(actor_params, critic_params, critic_params, log_alpha,
                      actor_opt.init(actor_params), critic_opt.init(critic_params),
                      alpha_opt.init(log_alpha), jnp.zeros((), jnp.int32))

  def act(actor_params, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
    mean, log_std = actor.apply(actor_params, obs)
    if deterministic:
      return tanh_gaussian.deterministic_action(mean)
    action, _ = tanh_gaussian.sample_and_log_prob(mean, log_std, key)
    return action

  def critic_fn(critic_params, obs, action):
    return critic.apply(critic_params, obs, action)

  def critic_loss(critic_params, targets, batch):
    q = critic.apply(critic_params, batch.obs, batch.action)      # [2, B, H]
    # Eq. (7) of Haarnoja et al. 2018b for every head, summed over heads and twins.
    loss = jnp.mean(jnp.sum(rlax.l2_loss(q - targets[None]), axis=(0, 2)))
    return loss, q

  def actor_loss(actor_params, critic_params, obs, alpha, key):
    mean, log_std = actor.apply(actor_params, obs)
    action, log_prob = tanh_gaussian.sample_and_log_prob(mean, log_std, key)
    q = jnp.sum(critic.apply(critic_params, obs, action), axis=-1)  # Summed value, [2, B].
    # Eq. (10) of Haarnoja et al. 2018b with the clipped double-Q minimum.
    return jnp.mean(alpha * log_prob - jnp.min(q, axis=0)), log_prob

  def alpha_loss(log_alpha, log_prob):
    # Eq. (18) of Haarnoja et al. 2018b, parameterised by log(alpha) to keep alpha positive.
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))

  def update(state: AgentState, batch: Transition, key: jax.Array) -> tuple[AgentState, dict]:
    chex.assert_rank([batch.obs, batch.action, batch.reward_components], 2)
    key_next, key_pi = jax.random.split(key)
    alpha = jnp.exp(state.log_alpha)
    gamma_t = config.discount * batch.discount

    mean, log_std = actor.apply(state.actor_params, batch.next_obs)
    next_action, next_log_prob = tanh_gaussian.sample_and_log_prob(mean, log_std, key_next)
    target_q_next = critic.apply(state.target_critic_params, batch.next_obs, next_action)
    targets, target_aux = critic_target_fn(target_q_next, next_log_prob, batch, gamma_t, alpha)
    targets = jax.lax.stop_gradient(targets)
    (c_loss, q), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, targets, batch)
    c_updates, critic_opt_state = critic_opt.update(c_grads, state.critic_opt_state,
                                                    state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, c_updates)

    (a_loss, log_prob), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, critic_params, batch.obs, alpha, key_pi)
    a_updates, actor_opt_state = actor_opt.update(a_grads, state.actor_opt_state,
                                                  state.actor_params)
    actor_params = optax.apply_updates(state.actor_params, a_updates)

    t_loss, t_grad = jax.value_and_grad(alpha_loss)(state.log_alpha, log_prob)
    t_updates, alpha_opt_state = alpha_opt.update(t_grad, state.alpha_opt_state, state.log_alpha)
    log_alpha = optax.apply_updates(state.log_alpha, t_updates)

    target_critic_params = optax.incremental_update(critic_params, state.target_critic_params,
                                                    config.tau)
    new_state = AgentState(actor_params, critic_params, target_critic_params, log_alpha,
                           actor_opt_state, critic_opt_state, alpha_opt_state, state.steps + 1)
    metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "alpha_loss": t_loss,
               "alpha": alpha, "entropy": -jnp.mean(log_prob),
               "q_heads": jnp.mean(q, axis=(0, 1)), **target_aux}
    return new_state, metrics

  return Agent(init, act, update, critic_fn, num_heads)


def make_sac(config: SacConfig, obs_dim: int, action_dim: int) -> Agent:
  """Standard SAC: one scalar head per critic, target of `sac_critic_target`.

  The batch's `reward_components` are ignored; `reward` is used.
  """

  def target_fn(target_q_next, next_log_prob, batch, gamma_t, alpha):
    chex.assert_rank(batch.reward, 1)
    y = sac_critic_target(target_q_next[..., 0], next_log_prob, batch.reward, gamma_t, alpha)
    return y[:, None], {}

  return make_soft_actor_critic(config, obs_dim, action_dim, 1, target_fn)
