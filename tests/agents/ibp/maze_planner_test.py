"""IBP planner on the maze: tick accounting (a fixed budget gives exactly n imaginations per real
move, the episode's return is the maze's max_steps - 2 t when solved in t moves and -max_steps
otherwise), budget 0 never imagines, bad input by name."""
import jax
import numpy as np
import pytest

from agents.ibp import maze_planner as mp
from envs import maze as maze_lib

SMALL = dict(memory_size=8, hidden=(8,))


@pytest.mark.parametrize("n,fixed", [(2, True),
                                     pytest.param(0, False, marks=pytest.mark.slow)])
def test_tick_accounting_and_returns(n, fixed):
  env = maze_lib.Maze()
  p = env.default_params
  planner = mp.make_maze_planner(mp.MazePlannerConfig(max_imaginations=n, fixed_budget=fixed,
                                                      **SMALL), env, p)
  params = planner.init(jax.random.PRNGKey(0))
  out = jax.jit(jax.vmap(lambda k: planner.rollout(params, k)))(
      jax.random.split(jax.random.PRNGKey(1), 64))
  moves, imag = np.asarray(out.moves), np.asarray(out.imaginations)
  solved, ret = np.asarray(out.solved), np.asarray(out.episode_return)
  np.testing.assert_array_equal(imag, n * moves)
  assert np.all((moves >= 1) & (moves <= p.max_steps))
  np.testing.assert_array_equal(ret[solved], p.max_steps - 2 * moves[solved])
  np.testing.assert_array_equal(ret[~solved], -p.max_steps)
  np.testing.assert_array_equal(moves[~solved], p.max_steps)
  assert solved.any() and (~solved).any()    # a random policy solves some episodes, not all


def test_bad_input_is_named():
  env = maze_lib.Maze()
  with pytest.raises(ValueError, match="max_imaginations"):
    mp.make_maze_planner(mp.MazePlannerConfig(max_imaginations=-1), env, env.default_params)
  with pytest.raises(ValueError, match="config.strategy"):
    mp.make_maze_planner(mp.MazePlannerConfig(strategy="bfs"), env, env.default_params)
  with pytest.raises(ValueError, match="goal_set"):
    mp.make_maze_planner(mp.MazePlannerConfig(), env, env.default_params.replace(goal_set=2))
  with pytest.raises(ValueError, match="batch_size"):
    mp.make_maze_trainer(mp.make_maze_planner(mp.MazePlannerConfig(), env, env.default_params),
                         batch_size=0)
