"""EpisodeStatistics: return, length and solved against hand-worked episodes, across auto-resets."""
import jax
import jax.numpy as jnp
import numpy as np

from envs import Maze, MiniPacman, Sokoban, wrappers
from tests.agents import tiny_envs


def reached_top(info, terminated, truncated):
  del terminated, truncated
  return info["position"] >= 4


def play(env, actions, key=0):
  """Steps `env` (jitted) through `actions`; returns the state after reset and per-step infos."""
  params = env.default_params
  obs, state = jax.jit(env.reset)(jax.random.key(key), params)
  first = state
  step = jax.jit(env.step)
  infos = []
  for i, a in enumerate(actions):
    obs, state, reward, terminated, truncated, info = step(
        jax.random.key(100 + i), state, jnp.int32(a), params)
    infos.append(jax.tree.map(np.asarray, dict(info, reward=reward, terminated=terminated,
                                                truncated=truncated, state=state)))
  return first, infos


def test_counter_episodes_by_hand():
  """Counter(4), max_steps 6: climb to the top (terminates), then stay put (truncated at 6).

  From start position p, climbing pays p+1, ..., 4 in 4 - p steps; the next episode starts at
  q and staying pays q per step for 6 steps (return 6 q, length 6, not solved)."""
  env = wrappers.EpisodeStatistics(tiny_envs.Counter(4), solved_fn=reached_top)
  first, _ = play(env, [])
  p = int(first.env_state.position)
  climb = 4 - p
  actions = [1] * climb + [0] * 6 + [1]
  _, infos = play(env, actions)
  # Episode 1: running statistics after each step.
  for t in range(climb):
    pos = p + t + 1
    assert infos[t]["episode_length"] == t + 1
    np.testing.assert_allclose(infos[t]["episode_return"], sum(range(p + 1, pos + 1)))
    assert bool(infos[t]["episode_done"]) == (t == climb - 1)
    assert bool(infos[t]["episode_solved"]) == (t == climb - 1)
    # Nothing returned before the first episode ends.
    if t < climb - 1:
      assert infos[t]["returned_episode_length"] == 0
  end1 = infos[climb - 1]
  ret1 = sum(range(p + 1, 5))
  np.testing.assert_allclose(end1["returned_episode_return"], ret1)
  assert end1["returned_episode_length"] == climb and bool(end1["returned_episode_solved"])
  assert bool(end1["terminated"])
  # The automatic reset: the wrapper's running statistics start again from zero.
  assert float(end1["state"].episode_return) == 0.0 and int(end1["state"].episode_length) == 0
  assert not bool(end1["state"].episode_solved)
  # Episode 2: the new start q, staying put; truncated after 6 steps.
  q = int(end1["state"].env_state.position)
  for t in range(6):
    info = infos[climb + t]
    assert info["episode_length"] == t + 1
    np.testing.assert_allclose(info["episode_return"], q * (t + 1))
    assert not bool(info["episode_solved"])
    # The previous episode's totals are carried until this one ends.
    if t < 5:
      np.testing.assert_allclose(info["returned_episode_return"], ret1)
  end2 = infos[climb + 5]
  assert bool(end2["truncated"]) and not bool(end2["terminated"]) and bool(end2["episode_done"])
  np.testing.assert_allclose(end2["returned_episode_return"], 6 * q)
  assert end2["returned_episode_length"] == 6 and not bool(end2["returned_episode_solved"])
  # Episode 3 starts from zero again.
  assert infos[climb + 6]["episode_length"] == 1


def test_statistics_do_not_change_the_environment():
  """Observations, rewards and flags equal the wrapped environment's on the same keys."""
  base = tiny_envs.Counter(4)
  env = wrappers.EpisodeStatistics(base)
  actions = [1, 0, 1, 1, 0, 0, 1, 1, 1, 1]
  _, wrapped = play(env, actions, key=3)
  _, plain = play(base, actions, key=3)
  for w, b in zip(wrapped, plain):
    for k in ("reward", "terminated", "truncated", "position"):
      np.testing.assert_array_equal(w[k], b[k])


def test_under_vmap_matches_single_runs():
  env = wrappers.EpisodeStatistics(tiny_envs.Chain(3))
  params = env.default_params
  keys = jax.random.split(jax.random.key(0), 4)
  _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
  # Right, right: every chain (length 3) is solved in two steps (reward 1 at the end).
  step = jax.vmap(env.step, in_axes=(0, 0, None, None))
  _, states, *_ = step(keys, states, jnp.int32(1), params)
  _, states, reward, terminated, _, info = step(keys, states, jnp.int32(1), params)
  np.testing.assert_array_equal(info["returned_episode_return"], np.ones(4))
  np.testing.assert_array_equal(info["returned_episode_length"], np.full(4, 2))
  assert bool(np.all(terminated))


def test_solved_rules_per_environment():
  """Sokoban: info['solved']; MiniPacman: a level was cleared; Maze: terminated; else False."""
  info = {"solved": jnp.bool_(True), "level_changed": jnp.bool_(False)}
  no, yes = jnp.bool_(False), jnp.bool_(True)
  assert bool(wrappers.solved_rule(Sokoban(7, 7, 2))(info, no, no))
  assert not bool(wrappers.solved_rule(MiniPacman("regular"))(info, yes, no))
  assert bool(wrappers.solved_rule(MiniPacman("hunt"))({"level_changed": yes}, no, no))
  assert bool(wrappers.solved_rule(Maze(3))({}, yes, no))
  assert not bool(wrappers.solved_rule(Maze(3))({}, no, yes))
  assert not bool(wrappers.solved_rule(tiny_envs.Counter())({}, yes, no))
  # A wrapper of a wrapper finds the base environment's rule.
  nested = wrappers.EpisodeStatistics(wrappers.Wrapper(Maze(3)))
  assert nested.unwrapped.__class__ is Maze
  assert nested.num_actions == Maze(3).num_actions
