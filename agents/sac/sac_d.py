"""SAC-D: soft actor-critic with a value function decomposed over reward components
(MacGlashan et al. 2022, "Value function decomposition for iterative design of reinforcement
learning agents", Sec. 3).

With reward `r = sum_i r^i`, each critic predicts one value per component, `Q^i(s, a)`, and (by
default) one more head `Q^H` for the discounted future entropy bonus, so that
`Q(s, a) = sum_i Q^i(s, a) + Q^H(s, a)` is the ordinary soft Q-function. The critic target
(`decomposed_critic_targets`) picks, per sample, the twin whose *summed* target value is smaller,
the decomposed version of the clipped double-Q minimum, and regresses every head on its own
reward component:

    j*    = argmin_j sum_h Q'_{j,h}(s', a'),           a' ~ pi(. | s')
    y^i   = r^i + gamma_t * Q'_{j*,i}(s', a')           (reward components)
    y^H   = gamma_t * (Q'_{j*,H}(s', a') - alpha log pi(a' | s'))   (entropy component)

Summing the targets gives the SAC target of Eq. (7) of Haarnoja et al. 2018b, and the policy and
temperature losses use the summed value, so SAC-D optimises the same objective as SAC. With
`entropy_component=False` the bonus is folded into the first reward head; with one reward
component the agent is then SAC exactly (same parameters after the same updates; tested).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from agents.sac.sac import Agent, SacConfig, Transition, make_soft_actor_critic


def num_value_heads(num_components: int, entropy_component: bool) -> int:
  """Critic output width: one head per reward component, plus one for entropy if separate."""
  return num_components + int(entropy_component)


def decomposed_critic_targets(target_q_next: jax.Array, next_log_prob: jax.Array,
                              reward_components: jax.Array, discount_t: jax.Array,
                              alpha: jax.Array, entropy_component: bool = True
                              ) -> tuple[jax.Array, jax.Array]:
  """Per-component soft Bellman targets of SAC-D (see the module docstring).

  Args:
    target_q_next: `[2, B, H]` target critics' heads at `(s', a')`; `H = K + 1` with an entropy
      component (the last head), else `H = K`.
    next_log_prob: `[B]` log pi(a' | s').
    reward_components: `[B, K]` reward components r^i.
    discount_t: `[B]` gamma, zeroed at terminations.
    alpha: scalar temperature.
    entropy_component: whether the last head is the entropy component.

  Returns:
    `(targets [B, H], twin [B])`: the regression targets and the index (0 or 1) of the twin
    chosen per sample (ties pick twin 0).
  """
  chex.assert_rank([target_q_next, next_log_prob, reward_components, discount_t], [3, 1, 2, 1])
  num_components = reward_components.shape[-1]
  heads = target_q_next.shape[-1]
  if heads != num_value_heads(num_components, entropy_component):
    raise ValueError(f"target_q_next has {heads} heads, expected "
                     f"{num_value_heads(num_components, entropy_component)} for "
                     f"{num_components} reward components (entropy_component={entropy_component})")
  twin = jnp.argmin(jnp.sum(target_q_next, axis=-1), axis=0)             # [B]
  chosen = jnp.take_along_axis(target_q_next, twin[None, :, None], axis=0)[0]  # [B, H]
  bonus = -alpha * next_log_prob                                          # [B]
  if entropy_component:
    rewards = jnp.concatenate([reward_components, jnp.zeros_like(reward_components[:, :1])], -1)
    bonus_heads = jnp.zeros_like(chosen).at[:, -1].set(bonus)
  else:
    rewards = reward_components
    bonus_heads = jnp.zeros_like(chosen).at[:, 0].set(bonus)
  targets = rewards + discount_t[:, None] * (chosen + bonus_heads)
  return targets, twin


def make_sac_d(config: SacConfig, obs_dim: int, action_dim: int, num_components: int) -> Agent:
  """SAC-D agent: SAC with critics decomposed over `num_components` reward components.

  Uses the batch's `reward_components` (`[B, num_components]`); the scalar `reward` is unused.
  The critic heads are ordered as the components, followed by the entropy head when
  `config.entropy_component`.
  """
  if not isinstance(num_components, int) or isinstance(num_components, bool) or num_components < 1:
    raise ValueError(f"num_components must be a positive integer, got {num_components!r}")

  def target_fn(target_q_next, next_log_prob, batch: Transition, gamma_t, alpha):
    if batch.reward_components.shape[-1] != num_components:
      raise ValueError(f"batch.reward_components has {batch.reward_components.shape[-1]} "
                       f"components, the agent was built for {num_components}")
    targets, twin = decomposed_critic_targets(target_q_next, next_log_prob,
                                              batch.reward_components, gamma_t, alpha,
                                              config.entropy_component)
    return targets, {"twin_fraction": jnp.mean(twin.astype(jnp.float32))}

  heads = num_value_heads(num_components, config.entropy_component)
  return make_soft_actor_critic(config, obs_dim, action_dim, heads, target_fn)
