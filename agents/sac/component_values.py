"""Per-component value predictions of a SAC-D critic against the returns actually observed.

For each reward component i, the critic head Q^i(s_t, a_t) estimates
`E[sum_k gamma^k r^i_{t+k}]` under the current policy (MacGlashan et al. 2022, Sec. 3). Rolling the
policy out and summing the observed component rewards backwards,

    G^i_t = r^i_t + gamma (1 - done_t) G^i_{t+1},

gives an unbiased sample of that target for states whose discounted tail lies inside the
rollout. Comparing the two per component shows which component's value is mis-learned, or which
component dominates the value (the paper's design-diagnosis use).
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import rlax

from agents.sac.host_train import HostTrainer, HostTrainState, to_env_action


def discounted_component_returns(rewards: jax.Array, done: jax.Array,
                                 gamma: float) -> jax.Array:
  """Backward discounted sums per component, cut at episode ends, zero after the last step.

  Args:
    rewards: `[T, N, K]` component rewards of N parallel rollouts.
    done: `[T, N]` True where the episode ended after step t (termination or truncation).
    gamma: discount.

  Returns:
    `[T, N, K]` returns G_t.
  """
  if rewards.ndim != 3 or done.shape != rewards.shape[:2]:
    raise ValueError(f"rewards must be [T, N, K] and done [T, N], got {rewards.shape} and "
                     f"{done.shape}")
  discount = gamma * (1.0 - done.astype(rewards.dtype))
  one = lambda r, d: rlax.discounted_returns(r, d, jnp.zeros_like(r))
  # rlax works on one [T] sequence; map over environments and components.
  per_env = jax.vmap(jax.vmap(one, in_axes=(1, None), out_axes=1), in_axes=(1, 1), out_axes=1)
  return per_env(rewards, discount)


def evaluate_component_values(trainer: HostTrainer, state: HostTrainState, env: Any,
                              num_steps: int, gamma: float) -> dict[str, np.ndarray]:
  """Rolls out the current stochastic policy (no learning) and compares values with returns.

  States count only where their discounted tail is observed: their episode ended inside the
  rollout, or at least `log(0.01) / log(gamma)` steps (weight below 1%) remain after them.

  Returns:
    dict with `predicted` and `observed` `[K]` means over the counted states, `correlation`
    `[K]` (NaN where a component is constant), and `num_states`.
  """
  n = env.num_envs
  obs, _ = env.reset()
  obs = np.asarray(obs, np.float32).reshape(n, -1)
  rows = {"obs": [], "action": [], "comps": [], "done": [], "live": []}
  for _ in range(num_steps):
    state, action = trainer.act(state, obs)
    action = np.asarray(action)
    out = env.step(to_env_action(trainer, action))
    live = ~np.asarray(out.info.get("reset_step", np.zeros(n, bool)), bool)
    rows["obs"].append(obs)
    rows["action"].append(action)
    rows["comps"].append(np.asarray(out.reward_components, np.float32).reshape(n, -1))
    rows["done"].append(np.asarray(out.terminated) | np.asarray(out.truncated) | ~live)
    rows["live"].append(live)
    obs = np.asarray(out.obs, np.float32).reshape(n, -1)
  data = {k: np.stack(v) for k, v in rows.items()}
  returns = np.asarray(discounted_component_returns(jnp.asarray(data["comps"]),
                                                    jnp.asarray(data["done"]), gamma))
  # A state's tail is complete if an episode end follows it inside the rollout.
  ended_later = np.flip(np.cumsum(np.flip(data["done"], 0), 0), 0) > 0
  tail = min(num_steps, int(math.ceil(math.log(0.01) / math.log(gamma))) if gamma < 1 else
             num_steps)
  far_from_end = (np.arange(num_steps) < num_steps - tail)[:, None]
  valid = data["live"] & (ended_later | far_from_end)
  k = returns.shape[-1]
  q = trainer.agent.critic(state.agent.critic_params, jnp.asarray(data["obs"].reshape(-1,
                           trainer.obs_dim)), jnp.asarray(data["action"].reshape(
                               -1, trainer.action_dim)))
  twin = jnp.argmin(jnp.sum(q, -1), axis=0)
  q = np.asarray(jnp.take_along_axis(q, twin[None, :, None], axis=0)[0])[:, :k]
  predicted = q.reshape(num_steps, n, -1)[valid]
  observed = returns[valid]
  corr = np.full(k, np.nan)
  for i in range(k):
    if predicted.shape[0] > 2 and np.std(predicted[:, i]) > 0 and np.std(observed[:, i]) > 0:
      corr[i] = np.corrcoef(predicted[:, i], observed[:, i])[0, 1]
  empty = np.full(k, np.nan)
  return {"predicted": predicted.mean(0) if len(predicted) else empty,
          "observed": observed.mean(0) if len(observed) else empty,
          "correlation": corr, "num_states": int(valid.sum())}
