# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]

# %% [markdown]
# # agents: the shared rollout and SAC-D's reward influence
#
# MacGlashan et al. 2022, *Value function decomposition for iterative design of reinforcement
# learning agents* (SAC-D), Secs. 3-4, on top of SAC (Haarnoja et al. 2018b). When the reward is
# a sum of components, $r = \sum_i r^i$, SAC-D learns one critic head per component,
# $Q(s, a) = \sum_i Q^i(s, a)$, with the targets
# $y^i = r^i + \gamma Q'^i(s', a')$ (plus an entropy head), and the policy maximises the summed
# value exactly as SAC does. The heads make the agent's motives readable: the *reward influence*
#
# $$I_i(s, a) = \frac{\lVert \nabla_a Q^i(s, a) \rVert}{\sum_k \lVert \nabla_a Q^k(s, a) \rVert}$$
#
# says which component drives the choice of action.
#
# The task, defined here in a few lines with the gymnax signature every agent takes: a point in
# the plane moves by $0.2 a$ per step, $a \in [-1, 1]^2$, for 20 steps from a random start. The
# reward has two components, `distance` $= -\lVert p_{t+1} \rVert$ and `control`
# $= -w \lVert a_t \rVert^2$. We train with a sensible control weight, $w = 0.1$, and with a
# mis-scaled one, $w = 2$, and read the difference off the influence: as in the paper's
# LunarLander diagnosis (there a 10x fuel cost), the over-weighted component takes over the
# agent's action choice.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import struct

from agents import rollout, sac
from envs import spaces


@struct.dataclass
class PointState:
  position: jax.Array
  time: jax.Array


@struct.dataclass
class PointParams:
  horizon: int = 20
  control_weight: float = 0.1


class PointMass:
  """Reaching the origin; `info["reward_components"] = [distance, control]`; automatic reset."""
  default_params = PointParams()

  def action_space(self, params):
    return spaces.Box(-1.0, 1.0, (2,))

  def reset(self, key, params):
    position = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0)
    state = PointState(position, jnp.zeros((), jnp.int32))
    return jnp.append(position, 0.0), state

  def step(self, key, state, action, params):
    position = jnp.clip(state.position + 0.2 * action, -1.5, 1.5)
    components = jnp.stack([-jnp.linalg.norm(position),
                            -params.control_weight * jnp.sum(action ** 2)])
    time = state.time + 1
    truncated = time >= params.horizon
    final_obs = jnp.append(position, time / params.horizon)
    obs_reset, state_reset = self.reset(key, params)
    state = jax.tree.map(lambda a, b: jnp.where(truncated, a, b), state_reset,
                         PointState(position, time))
    obs = jnp.where(truncated, obs_reset, final_obs)
    info = {"final_obs": final_obs, "reward_components": components}
    return obs, state, components.sum(), jnp.zeros((), bool), truncated, info


env = PointMass()

# %% [markdown]
# The shared rollout (`agents.rollout`: a `lax.scan` over time and a `vmap` over environments,
# the one imagination uses too) runs any `policy_fn(key, obs) -> (action, extras)`; here 64
# environments for two episodes.

# %%
def evaluate(policy_fn, params):
  carry = rollout.reset(env, params, jax.random.key(0), 64)
  _, traj = rollout.rollout(policy_fn, env, params, carry, jax.random.key(1), 40)
  return traj, traj.reward.sum(0).mean() / 2   # mean return of a 20-step episode


def random_policy(key, obs):
  return jax.random.uniform(key, (obs.shape[0], 2), minval=-1.0, maxval=1.0), None


# %% [markdown]
# SAC-D with 4 environments, 900 environment steps each, the whole loop in one jit, once per
# control weight; then its mean action in the shared rollout.

# %%
config = sac.TrainConfig(
    agent="sac_d", sac=sac.SacConfig(hidden_sizes=(32, 32), actor_learning_rate=1e-3,
                                     critic_learning_rate=1e-3, alpha_learning_rate=1e-3),
    num_envs=4, buffer_size=10_000, batch_size=64, learning_starts=50, steps_per_chunk=300,
    num_chunks=3, influence_states=16)
runs = {}
for w in (0.1, 2.0):
  params = PointParams(control_weight=w)
  trainer = sac.make_trainer(config, env, params, env_name="point_mass",
                             component_names=("distance", "control"))
  state, metrics = jax.jit(trainer.train)(jax.random.key(2))

  def trained_policy(key, obs, trainer=trainer, state=state):
    return trainer.agent.act(state.agent.actor_params, obs, key, deterministic=True), None

  traj, trained_return = jax.jit(evaluate, static_argnums=0)(trained_policy, params)
  _, random_return = jax.jit(evaluate, static_argnums=0)(random_policy, params)
  runs[w] = dict(returns=sac.episode_returns(metrics, 100),
                 influence=np.asarray(metrics["influence"]), traj=traj,
                 trained=float(trained_return), random=float(random_return))
  print(f"w = {w}: return {float(trained_return):.2f} (random policy {float(random_return):.2f}); "
        f"final influence: distance {runs[w]['influence'][-1, 0]:.2f}, "
        f"control {runs[w]['influence'][-1, 1]:.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for j, (w, run) in enumerate(runs.items()):
  axes[0].plot(np.arange(len(run["returns"])) * 100 + 100, run["returns"], "o-", color=f"C{j}",
               label=f"w = {w}")
  axes[0].axhline(run["random"], color=f"C{j}", ls=":")
  axes[1].plot(run["influence"][:, 1], color=f"C{j}", label=f"w = {w}")
  path = np.asarray(run["traj"].obs_tm1[:20, :6, :2])
  for b in range(6):
    axes[2].plot(path[:, b, 0], path[:, b, 1], color=f"C{j}", lw=0.8,
                 label=f"w = {w}" if b == 0 else None)
axes[0].set(xlabel="env steps", ylabel="episode return", title="SAC-D (dotted: random policy)")
axes[1].set(xlabel="env steps", ylabel="influence of 'control'", ylim=(0, 1),
            title="reward influence of the control cost")
axes[2].plot(0, 0, "k*", ms=10)
axes[2].set(title="trained policy, first episode of 6 envs", aspect="equal")
for ax in axes:
  ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Both agents beat the random policy on their own reward, the influences sum to one, and the
# mis-scaled control cost shows up as a much larger influence of the control head.

# %%
for w, run in runs.items():
  assert run["trained"] > run["random"] + 2.0, (w, run["trained"], run["random"])
  np.testing.assert_allclose(run["influence"][-1].sum(), 1.0, rtol=1e-5)
assert runs[2.0]["influence"][-1, 1] > runs[0.1]["influence"][-1, 1] + 0.2
