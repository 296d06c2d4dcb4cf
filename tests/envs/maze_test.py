"""Tests of the IBP maze: perfect mazes, train/test goals, rewards by hand, jit/vmap."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import maze as mz

UP, DOWN, LEFT, RIGHT = range(4)


def _reachable(walls, start):
  seen, queue = {tuple(start)}, collections.deque([tuple(start)])
  while queue:
    r, c = queue.popleft()
    for dr, dc in mz.MOVES:
      n = (r + dr, c + dc)
      if not walls[n] and n not in seen:
        seen.add(n)
        queue.append(n)
  return seen


def test_mazes_are_perfect():
  for seed in range(5):
    walls = np.asarray(mz.carve_maze(jax.random.PRNGKey(seed), 5))
    assert walls.shape == (11, 11) and walls[0].all() and walls[:, 0].all()
    open_cells = {tuple(x) for x in np.argwhere(~walls)}
    assert _reachable(walls, (1, 1)) == open_cells  # connected
    # A tree on 25 cells has 24 passages: open cells = 25 + 24.
    assert len(open_cells) == 49


def test_goal_split_and_reset():
  env = mz.Maze()
  for split, parity in [(0, 0), (1, 1)]:
    params = env.default_params.replace(goal_split=split)
    _, states = jax.vmap(lambda k: env.reset(k, params))(
        jax.random.split(jax.random.PRNGKey(split), 64))
    cells = (np.asarray(states.goal) - 1) // 2
    assert np.all(cells.sum(-1) % 2 == parity)
    assert not np.any(np.all(np.asarray(states.goal) == np.asarray(states.agent), -1))


def test_rewards_by_hand():
  env = mz.Maze(cells=2)
  walls = np.ones((5, 5), bool)
  walls[1, 1:4] = False  # corridor (1,1)-(1,3)
  state = mz.MazeState(jnp.asarray(walls), jnp.array([1, 1]), jnp.array([1, 3]), jnp.int32(0))
  params = mz.MazeParams(max_steps=10)
  key = jax.random.PRNGKey(0)
  _, state, r, term, _, _ = env.step(key, state, UP, params)  # into a wall: stay, -1
  assert float(r) == -1 and np.asarray(state.agent).tolist() == [1, 1] and not bool(term)
  _, state, r, term, _, _ = env.step(key, state, RIGHT, params)
  assert float(r) == -1 and not bool(term)
  _, state, r, term, trunc, _ = env.step(key, state, RIGHT, params)
  assert float(r) == -1 + (10 - 3) and bool(term) and not bool(trunc)  # bonus: budget left


def test_truncation_jit_vmap_and_bad_input():
  env = mz.Maze()
  params = env.default_params.replace(max_steps=3)

  def rollout(key):
    _, s = env.reset(key, params)
    def body(s, t):
      o, s, r, te, tr, _ = env.step(jax.random.fold_in(key, t), s, t % 4, params)
      return s, (r, te, tr)
    return jax.lax.scan(body, s, jnp.arange(6))[1]

  keys = jax.random.split(jax.random.PRNGKey(0), 32)
  batched = jax.jit(jax.vmap(rollout))(keys)
  for i in range(0, 32, 8):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[i], y), batched,
                 jax.jit(rollout)(keys[i]))
  r, te, tr = (np.asarray(x) for x in batched)
  assert np.all(tr[:, 2] | te[:, :3].any(1))  # every episode ends within 3 steps
  obs, state = env.reset(keys[0], params)
  assert env.observation_space().contains(np.asarray(obs))
  assert env.render(state).shape == (88, 88, 3)
  with pytest.raises(ValueError, match=r"action must be in \[0, 4\)"):
    env.step(keys[0], state, 4, params)
  with pytest.raises(ValueError, match="cells"):
    mz.Maze(cells=1)
