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
# # envs: MiniPacman and Sokoban under jit and vmap
#
# The environments of Weber, Racanière, Reichert et al. 2017, *Imagination-augmented agents for
# deep reinforcement learning* (I2A): MiniPacman (App. C; reward $w_\text{task} \cdot$ events,
# events = (step, food, pill, eat_ghost, eaten)) and Sokoban (App. D; reward $-0.1$ per step,
# $+1$ for a box pushed onto a target, $-1$ off it, $+10$ when solved). Both follow the gymnax
# 1.0 signature, `reset(key, params) -> (obs, state)` and
# `step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`, reset
# automatically at the end of an episode, and are pure, so a whole batch of rollouts is one
# `jit(vmap(...))` of a `lax.scan`.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

import envs

# %% [markdown]
# Sokoban on a hand-written level (text format: `#` wall, `@` player, `$` box, `.` target).
# One push to the right (action 3) puts the box on its target and solves the level:
# $-0.1 + 1 + 10 = 10.9$.

# %%
level = envs.parse_level("""
#####
#   #
#@$.#
#   #
#####
""")
sokoban = envs.Sokoban(height=5, width=5, num_boxes=1)
params = envs.SokobanParams(levels=jax.tree.map(lambda a: a[None], level))
obs, state = sokoban.reset(jax.random.key(0), params)
frame_before = sokoban.render(state)
_, state_after, reward, terminated, _, _ = sokoban.step(jax.random.key(1), state, 3, params)
print(f"symbolic observation {obs.shape}, reward {float(reward):.1f}, solved {bool(terminated)}")

# %% [markdown]
# MiniPacman (the released 15x19 map, task "regular"): 256 environments, 200 random steps each,
# in one compiled call.

# %%
pacman = envs.MiniPacman(task="regular")
pparams = pacman.default_params


def rollout(key, num_steps=200):
  key_reset, key_run = jax.random.split(key)
  obs, state = pacman.reset(key_reset, pparams)

  def step(state, key):
    key_action, key_step = jax.random.split(key)
    action = jax.random.randint(key_action, (), 0, pacman.num_actions)
    _, state, reward, terminated, truncated, _ = pacman.step(key_step, state, action, pparams)
    return state, (reward, terminated | truncated)

  state, (rewards, done) = jax.lax.scan(step, state, jax.random.split(key_run, num_steps))
  return rewards, done, pacman.render(state)


keys = jax.random.split(jax.random.key(2), 256)
rewards, done, frames = jax.jit(jax.vmap(rollout))(keys)
rewards0, done0, frame0 = jax.jit(rollout)(keys[0])
returns = np.asarray(rewards.sum(1))
print(f"MiniPacman: mean return over 200 random steps {returns.mean():.2f} "
      f"(sd {returns.std():.2f}), episodes ended: {int(done.sum())}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
axes[0].imshow(np.asarray(frame_before), interpolation="nearest")
axes[0].set_title("Sokoban: start")
axes[1].imshow(np.asarray(sokoban.render(state_after)), interpolation="nearest")
axes[1].set_title(f"after 'right': reward {float(reward):.1f}")
axes[2].imshow(np.asarray(frames[0]), interpolation="nearest")
axes[2].set_title("MiniPacman after 200 random steps")
for ax in axes[:3]:
  ax.axis("off")
axes[3].hist(returns, bins=20)
axes[3].set(xlabel="return of 200 random steps", ylabel="environments", title="256 rollouts")
fig.tight_layout()
plt.show()

# %% [markdown]
# The push solves the level with the reward of App. D, and the batched rollout's first row is
# the unbatched rollout from the same key.

# %%
assert bool(terminated) and abs(float(reward) - 10.9) < 1e-5, reward
np.testing.assert_allclose(np.asarray(rewards[0]), np.asarray(rewards0), atol=1e-6)
assert np.array_equal(np.asarray(frames[0]), np.asarray(frame0))
