"""Tests of the IBP maze: the fixed maze and its 4 goals, rewards by hand, the 20-step budget,
train/held-out goals, the multi-maze goal counts, jit/vmap, bad input by name."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import maze as mz

UP, DOWN, LEFT, RIGHT = range(4)
KEY = jax.random.PRNGKey(0)

# The mazes for the default cells=3, drawn by hand from the module's rules ('#' wall, 'G' goal).
FIXED = ["#######",
         "#G..#G#",
         "###.#.#",
         "#...#.#",
         "#.###.#",
         "#G...G#",
         "#######"]
MULTI = [["#######",    # 2 dead ends, 2 goals
          "#....G#",
          "#.#####",
          "#.....#",
          "#####.#",
          "#G....#",
          "#######"],
         ["#######",    # 3 dead ends, 3 goals
          "#G....#",
          "###.#.#",
          "#G#G#.#",
          "#.###.#",
          "#.....#",
          "#######"],
         ["#######",    # 4 dead ends, 4 goals
          "#G....#",
          "###.#.#",
          "#...#G#",
          "#.#.###",
          "#G#..G#",
          "#######"]]


def _walls(rows):
  return np.array([[ch == "#" for ch in row] for row in rows])


def _goals(rows):
  return np.array([[ch == "G" for ch in row] for row in rows])


def _state(rows, agent, goals):
  g = np.zeros((7, 7), bool)
  for r, c in goals:
    g[r, c] = True
  return mz.MazeState(jnp.asarray(_walls(rows)), jnp.asarray(g), jnp.array(agent, jnp.int32),
                      jnp.int32(0), jnp.int32(0))


def _play(env, state, actions, params=None):
  params = env.default_params if params is None else params
  rewards, flags = [], []
  for a in actions:
    _, state, r, te, tr, _ = env.step(KEY, state, a, params)
    rewards.append(float(r))
    flags.append((bool(te), bool(tr)))
  return state, rewards, flags


def _distances(walls, source):
  dist, queue = {tuple(source): 0}, collections.deque([tuple(source)])
  while queue:
    r, c = queue.popleft()
    for dr, dc in mz.MOVES:
      n = (r + dr, c + dc)
      if not walls[n] and n not in dist:
        dist[n] = dist[(r, c)] + 1
        queue.append(n)
  return dist


def test_layouts_are_the_pinned_perfect_mazes():
  env = mz.Maze()
  np.testing.assert_array_equal(env.fixed_walls, _walls(FIXED))
  np.testing.assert_array_equal(env.candidate_goals, [[1, 1], [1, 5], [5, 1], [5, 5]])
  np.testing.assert_array_equal(env._goals[0], _goals(FIXED))
  for k, rows in enumerate(MULTI):
    np.testing.assert_array_equal(env._walls[1 + k], _walls(rows))
    np.testing.assert_array_equal(env._goals[1 + k], _goals(rows))
  for walls in [_walls(FIXED)] + [_walls(rows) for rows in MULTI]:
    open_cells = {tuple(x) for x in np.argwhere(~walls)}
    assert set(_distances(walls, (1, 1))) == open_cells  # connected
    assert len(open_cells) == 9 + 8  # a tree on 9 cells: 8 passages, so no loops


def test_every_goal_is_within_the_budget_from_every_start():
  env = mz.Maze()
  for walls, goals in zip(env._walls, env._goals):
    starts = np.argwhere(~walls & ~goals)
    worst = max(_distances(walls, s)[tuple(g)] for s in starts for g in np.argwhere(goals))
    assert 0 < worst <= 16 < 20


def test_hand_path_to_train_goal_exact_return():
  """Start (3,3), goal (1,1): one bump into the wall, then up, up, left, left (5 steps).

  Rewards -1 x 4 and -1 + (20 - 5) = 14 on arrival; return -4 + 14 = 10 = 20 - 2 * 5.
  """
  env = mz.Maze()
  state = _state(FIXED, (3, 3), [(1, 1)])
  state, rewards, flags = _play(env, state, [RIGHT, UP, UP, LEFT, LEFT])
  assert rewards == [-1.0, -1.0, -1.0, -1.0, 14.0] and sum(rewards) == 10.0
  assert flags == [(False, False)] * 4 + [(True, False)]
  assert int(state.time) == 0  # the automatic reset started a new episode


def test_hand_path_to_held_out_goal_passes_an_inactive_candidate():
  """Start (3,3), held-out goal (5,5): left, left, down, down (over the inactive candidate
  (5,1), which does not end the episode), right x 4: 8 steps, return -7 + (-1 + 12) = 4."""
  env = mz.Maze()
  state = _state(FIXED, (3, 3), [(5, 5)])
  moves = [LEFT, LEFT, DOWN, DOWN, RIGHT, RIGHT, RIGHT, RIGHT]
  _, rewards, flags = _play(env, state, moves)
  assert rewards == [-1.0] * 7 + [11.0] and sum(rewards) == 4.0
  assert flags == [(False, False)] * 7 + [(True, False)]


def test_walls_block_moves():
  env = mz.Maze()
  state = _state(FIXED, (3, 3), [(5, 5)])
  for action in (DOWN, RIGHT):  # (4,3) and (3,4) are walls
    nxt, rewards, flags = _play(env, state, [action])
    assert np.asarray(nxt.agent).tolist() == [3, 3] and rewards == [-1.0]
    assert flags == [(False, False)] and int(nxt.time) == 1
  nxt, _, _ = _play(env, state, [UP])
  assert np.asarray(nxt.agent).tolist() == [2, 3]  # an open passage
  corner = _state(FIXED, (1, 2), [(5, 5)])
  nxt, _, _ = _play(env, corner, [UP])  # the border
  assert np.asarray(nxt.agent).tolist() == [1, 2]


def test_budget_truncates_after_20_steps():
  env = mz.Maze()
  state = _state(FIXED, (3, 3), [(5, 5)])
  state, rewards, flags = _play(env, state, [RIGHT] * 20)
  assert rewards == [-1.0] * 20 and sum(rewards) == -20.0
  assert flags == [(False, False)] * 19 + [(False, True)]
  assert int(state.time) == 0  # reset after the truncation
  # A smaller budget: truncated after 3.
  _, rewards, flags = _play(env, _state(FIXED, (3, 3), [(5, 5)]), [RIGHT] * 3,
                            mz.MazeParams(max_steps=3))
  assert rewards == [-1.0] * 3 and flags[-1] == (False, True) and flags[1] == (False, False)


def test_goal_on_the_last_step_terminates_without_bonus():
  """12 bumps then the 8-step route to (5,5): arrival on step 20, reward -1 + (20 - 20)."""
  env = mz.Maze()
  moves = [RIGHT] * 12 + [LEFT, LEFT, DOWN, DOWN, RIGHT, RIGHT, RIGHT, RIGHT]
  _, rewards, flags = _play(env, _state(FIXED, (3, 3), [(5, 5)]), moves)
  assert rewards == [-1.0] * 20 and flags[-1] == (True, False)


def test_training_resets_draw_the_3_train_goals_and_evaluation_the_held_out_one():
  env = mz.Maze()
  keys = jax.random.split(jax.random.PRNGKey(7), 600)
  reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
  candidates = [(1, 1), (1, 5), (5, 1), (5, 5)]
  obs, states = reset(keys, mz.MazeParams(goal_set=mz.TRAIN))
  goals = np.asarray(states.goals)
  assert np.all(goals.sum((1, 2)) == 1)  # one goal per episode
  drawn = [tuple(np.argwhere(g)[0]) for g in goals]
  counts = collections.Counter(drawn)
  assert set(counts) == set(candidates[:3])  # all 3 train goals appear, never the 4th
  # Uniform: each count is Binomial(600, 1/3), mean 200, sd 11.5; allow 4 sd.
  assert all(abs(n - 200) < 4 * 11.5 for n in counts.values()), counts
  agents = np.asarray(states.agent)
  assert not any(tuple(a) in candidates for a in agents)  # never starts on a candidate
  assert not _walls(FIXED)[agents[:, 0], agents[:, 1]].any()
  assert len({tuple(a) for a in agents}) == 17 - 4  # every other open cell is a start
  np.testing.assert_array_equal(np.asarray(obs)[..., 2], goals)  # the goal is observed
  _, states = reset(keys[:50], mz.MazeParams(goal_set=mz.HELD_OUT))
  goals = np.asarray(states.goals)
  assert np.all(goals.sum((1, 2)) == 1) and np.all(goals[:, 5, 5])


def test_multi_maze_goal_count_follows_the_wall_layout():
  env = mz.Maze()
  assert [int(_goals(rows).sum()) for rows in MULTI] == [2, 3, 4]
  for k in range(3):  # the goals are exactly the layout's dead ends
    np.testing.assert_array_equal(mz.dead_ends(env._walls[1 + k]), env._goals[1 + k])
  keys = jax.random.split(jax.random.PRNGKey(3), 600)
  reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
  _, states = reset(keys, mz.MazeParams(multi_maze=1))
  layout = np.asarray(states.layout) - 1
  n_goals = np.asarray(states.goals).sum((1, 2))
  assert set(layout.tolist()) == {0, 1, 2}
  counts = collections.Counter(layout.tolist())
  assert all(abs(n - 200) < 4 * 11.5 for n in counts.values()), counts
  np.testing.assert_array_equal(n_goals, np.array([2, 3, 4])[layout])  # goals per layout
  for k in range(3):
    np.testing.assert_array_equal(np.asarray(states.walls)[layout == k],
                                  np.broadcast_to(_walls(MULTI[k]), ((layout == k).sum(), 7, 7)))
  agents = np.asarray(states.agent)
  assert not np.asarray(states.goals)[np.arange(600), agents[:, 0], agents[:, 1]].any()
  _, states = reset(keys[:20], mz.MazeParams(multi_maze=1, layout=2))
  assert np.all(np.asarray(states.layout) == 3)
  assert np.all(np.asarray(states.goals).sum((1, 2)) == 4)


def test_multi_maze_any_goal_ends_the_episode():
  """Layout 2, start (3,3): down, down, right, right reaches (5,5): return -3 + 15 = 12."""
  env = mz.Maze()
  goals = [tuple(g) for g in np.argwhere(_goals(MULTI[2]))]
  state = _state(MULTI[2], (3, 3), goals)
  params = mz.MazeParams(multi_maze=1, layout=2)
  _, rewards, flags = _play(env, state, [DOWN, DOWN, RIGHT, RIGHT], params)
  assert rewards == [-1.0, -1.0, -1.0, 15.0] and flags[-1] == (True, False)


def test_observation_and_render():
  env = mz.Maze()
  obs, state = env.reset(KEY)
  assert env.observation_space().contains(np.asarray(obs))
  np.testing.assert_array_equal(np.asarray(obs)[..., 0], _walls(FIXED))
  assert np.asarray(obs)[..., 1].sum() == 1
  assert np.asarray(obs)[tuple(np.asarray(state.agent)) + (1,)] == 1
  assert env.render(state).shape == (56, 56, 3)
  env, params = envs.make("maze", params={"goal_set": 1, "multi_maze": 0})
  _, state = env.reset(KEY, params)
  assert bool(state.goals[5, 5])


def test_jit_vmap_determinism():
  env = mz.Maze()

  def rollout(key, params):
    _, s = env.reset(key, params)
    def body(s, t):
      o, s, r, te, tr, _ = env.step(jax.random.fold_in(key, t), s, t % 4, params)
      return s, (o, r, te, tr, s.agent)
    return jax.lax.scan(body, s, jnp.arange(25))[1]

  keys = jax.random.split(jax.random.PRNGKey(1), 16)
  for params in (mz.MazeParams(), mz.MazeParams(multi_maze=1)):
    batched = jax.jit(jax.vmap(rollout, in_axes=(0, None)))(keys, params)
    again = jax.jit(jax.vmap(rollout, in_axes=(0, None)))(keys, params)
    jax.tree.map(np.testing.assert_array_equal, batched, again)
    for i in (0, 5, 15):
      jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[i], y), batched,
                   jax.jit(rollout)(keys[i], params))
    r, te, tr = (np.asarray(x) for x in batched[1:4])
    assert np.all(np.isfinite(r)) and not np.any(te & tr)
    assert np.all(tr[:, 19] | te[:, :20].any(1))  # each first episode ends by step 20


@pytest.mark.parametrize("field,value,message", [
    ("goal_set", 2, r"goal_set must be 0 \(train\) or 1 \(held_out\), got 2"),
    ("goal_set", float("nan"), "goal_set must be finite"),
    ("max_steps", 0, "max_steps must be >= 1, got 0"),
    ("max_steps", float("inf"), "max_steps must be finite"),
    ("max_steps", 2.5, "max_steps must be an integer"),
    ("multi_maze", 2, r"multi_maze must be 0 \(single maze\) or 1 \(multi-maze\), got 2"),
    ("layout", 3, r"layout must be -1 \(draw\) or a layout in \[0, 3\), got 3"),
    ("layout", -2, "layout must be -1"),
])
def test_bad_params_are_named(field, value, message):
  env = mz.Maze()
  params = env.default_params.replace(**{field: value})
  with pytest.raises(ValueError, match=message):
    env.reset(KEY, params)
  _, state = env.reset(KEY)
  with pytest.raises(ValueError, match=message):
    env.step(KEY, state, UP, params)


def test_bad_action_and_cells_are_named():
  env = mz.Maze()
  _, state = env.reset(KEY)
  for action in (4, -1):
    with pytest.raises(ValueError, match=r"action must be in \[0, 4\)"):
      env.step(KEY, state, action)
  with pytest.raises(ValueError, match="action must be an integer scalar"):
    env.step(KEY, state, float("nan"))
  # Inside jit the value is unknown: an out-of-range action gives a NaN reward.
  r = jax.jit(env.step)(KEY, state, jnp.int32(7), env.default_params)[2]
  assert np.isnan(float(r))
  for cells in (1, 2, 5, 3.0):
    with pytest.raises(ValueError, match="cells must be 3 or 4"):
      mz.Maze(cells=cells)
  assert mz.Maze(4).size == 9
