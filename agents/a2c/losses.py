"""The advantage actor-critic loss (Mnih et al. 2016, Alg. S3), built on `stochastic_graphs`.

For a `[T, B]` rollout, with rewards as costs `c_t = -r_t` and values in cost space `-V`:

- Targets: the n-step return of A3C (Mnih et al. 2016, Sec. 4: "each n-step update uses the
  longest possible n-step return") or the lambda return, whose difference from V is GAE
  (Schulman et al. 2016, Eq. (16)); computed by `stochastic_graphs.n_step_costs_to_go` /
  `lambda_costs_to_go` (rlax's returns). Discount `gamma` per step, 0 where the episode
  terminated. A time-limit truncation cuts the sum (per-step lambda 0) and bootstraps there with
  V of the last state seen before the cut, since the automatic reset hides the final
  observation (an approximation; exact for values that do not depend on time).
- Policy gradient: each step's action is a score-function node `sg.sample` of the policy's
  `Categorical`, forced to the action taken, inside `sg.scan`; its learning signal is the
  return target as a "replace" critic (Weber et al. 2019, Eq. (8)) minus V as its baseline
  (Eq. (6)): `A_t = G_t - V(s_t)` in reward space. The surrogate's gradient is
  `-sum_t grad log pi(a_t|s_t) A_t`, the A3C policy gradient (Mnih et al. 2016, Sec. 4).
- Entropy bonus: `sg.entropy_regularizer` (`-beta H(pi(.|s_t))`, direct gradient only).
- Value loss: `stochastic_graphs.mc_value_loss`, `0.5 mean (sg[G_t] - V(s_t))^2`.

    loss = [surrogate] / (T B) + value_coef * value_loss,

so its gradient equals that of rlax's `policy_gradient_loss + entropy_coef * entropy_loss`
(means over T and B) plus `value_coef` times the value loss (tests/agents/a2c/losses_test.py).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp

import stochastic_graphs as sg

ADVANTAGES = ("gae", "n_step")


class LossInfo(NamedTuple):
  """Diagnostics of one loss evaluation (means over the `[T, B]` batch)."""
  policy_loss: jax.Array     # -mean log pi(a|s) A (value of rlax's policy_gradient_loss)
  entropy: jax.Array         # mean H(pi(.|s))
  value_loss: jax.Array      # 0.5 mean (G - V)^2
  advantage: jax.Array       # mean A
  target: jax.Array          # mean G
  value: jax.Array           # mean V


def return_targets(reward: jax.Array, discount: jax.Array, truncated: jax.Array,
                   values: jax.Array, bootstrap_value: jax.Array, config: Any) -> jax.Array:
  """Return targets G `[T, B]` (reward space, stopped) of a rollout.

  Args:
    reward, discount, truncated: `[T, B]` from `agents.rollout.Trajectory` (discount 0 where the
      episode terminated, 1 otherwise).
    values: `[T, B]` V(s_t) of the states the actions were taken in.
    bootstrap_value: `[B]` V of the observation after the last step (the rollout's carry).
    config: with `discount` (gamma), `advantage` ("gae" or "n_step"), `gae_lambda`, `n_step`.
  """
  if config.advantage not in ADVANTAGES:
    raise ValueError(f"config.advantage must be one of {ADVANTAGES}; got {config.advantage!r}.")
  values = jax.lax.stop_gradient(values)
  bootstrap_value = jax.lax.stop_gradient(bootstrap_value)
  v_next = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)
  # At a truncation the next observation is the new episode's: bootstrap with V(s_t) instead.
  v_next = jnp.where(truncated, values, v_next)
  discount_t = config.discount * discount
  cost = -reward.astype(jnp.float32)
  cut = jnp.where(truncated, 0.0, 1.0)
  if config.advantage == "gae":
    lam = cut * config.gae_lambda
    q = jax.vmap(sg.lambda_costs_to_go, in_axes=1, out_axes=1)(cost, discount_t, -v_next, lam)
  else:
    q = jax.vmap(lambda c, d, v, lt: sg.n_step_costs_to_go(c, d, v, config.n_step, lt),
                 in_axes=1, out_axes=1)(cost, discount_t, -v_next, cut)
  return jax.lax.stop_gradient(-q)


def _policy_graph(entropy_coef: float):
  """One environment's `[T]` steps as a stochastic computation graph (see the module doc)."""

  def graph(logits, q_cost, b_cost, cost, keys):
    def step(_, x):
      logit, q, b, c, k = x
      dist = distrax.Categorical(logits=logit)
      sg.sample("action", dist, k, estimator="score")
      sg.critic("action", q)       # the return target replaces the sampled cost-to-go
      sg.baseline("action", b)     # V(s_t): reads no descendant of the action
      sg.cost("reward", c)         # the rollout's reward: data, no gradient of its own
      entropy = sg.entropy_regularizer("entropy", dist, entropy_coef)
      return None, entropy

    _, entropy = sg.scan(step, None, (logits, q_cost, b_cost, cost, keys))
    return entropy

  return sg.make_surrogate(graph, critics={"action": "replace"}, check_finite=False)


def a2c_loss(logits: jax.Array, values: jax.Array, bootstrap_value: jax.Array, action: jax.Array,
             reward: jax.Array, discount: jax.Array, truncated: jax.Array, config: Any
             ) -> tuple[jax.Array, LossInfo]:
  """The A2C loss of a `[T, B]` batch (module doc); differentiable in logits and values.

  Args:
    logits: `[T, B, A]` policy logits at the states the actions were taken in.
    values: `[T, B]` V(s_t) at those states.
    bootstrap_value: `[B]` V of the observation after the last step.
    action, reward, discount, truncated: `[T, B]` from the rollout.
    config: with `discount`, `advantage`, `gae_lambda`, `n_step`, `entropy_coef`, `value_coef`.

  Returns:
    `(loss, LossInfo)`.
  """
  t, b = action.shape[:2]
  target = return_targets(reward, discount, truncated, values, bootstrap_value, config)
  surrogate = _policy_graph(config.entropy_coef)
  keys = jax.random.split(jax.random.key(0), t)  # unused: every action node is forced
  s_one = lambda lg, q, bl, c, a: surrogate(lg, q, bl, c, keys, values={"action": a})  # noqa: E731
  s, info = jax.vmap(s_one, in_axes=1)(logits, -target, -jax.lax.stop_gradient(values),
                                       -reward.astype(jnp.float32), action)
  value_loss = sg.mc_value_loss(values, target)
  loss = jnp.sum(s) / (t * b) + config.value_coef * value_loss
  advantage = target - jax.lax.stop_gradient(values)
  log_pi = jnp.swapaxes(info.log_probs["action"], 0, 1)   # [T, B]
  entropy = distrax.Categorical(logits=logits).entropy()
  stats = LossInfo(policy_loss=-jnp.mean(jax.lax.stop_gradient(log_pi) * advantage),
                   entropy=jnp.mean(jax.lax.stop_gradient(entropy)),
                   value_loss=jax.lax.stop_gradient(value_loss), advantage=jnp.mean(advantage),
                   target=jnp.mean(target), value=jnp.mean(jax.lax.stop_gradient(values)))
  return loss, stats
