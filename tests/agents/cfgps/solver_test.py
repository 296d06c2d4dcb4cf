"""Tests of the Sokoban solver and the solver-based target policies (agents.cfgps.solver):
optimal solution lengths on hand-made levels worked by hand, agreement with the independent
A* of envs.sokoban_levels on generated levels, exact action probabilities, the jitted policy
solving a level in the optimal number of steps, and IS log-probabilities along a logged
episode against a host replay."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import cfgps
from agents.cfgps import solver as S
from envs import po_sokoban, sokoban
from envs import sokoban_levels as sl

# A box three cells from its target, then around a corner; worked by hand in each comment.
CORRIDOR = """
#######
#@ $ .#
#######
"""  # walk 1 (to the box's left), push right twice: 3
CORNER = """
#####
#.  #
#   #
# $ #
# @ #
#####
"""  # push up twice (2), walk around to the right of the box (2), push left (1): 5
# (the other order costs 2 + 1 + 2 + 2 = 7; 3 pushes and one change of side need >= 5)
CHAINED = """
########
#@$$ ..#
########
"""  # no chained pushes: the first box can never move, the second cannot reach a target
DEAD = """
#####
#$ .#
# @ #
#####
"""  # a box in a corner off target
THREE = """
##########
#@$.     #
#        #
#  $.    #
#        #
#   $.   #
##########
##########
##########
##########
"""  # push (1), down 2, push (1), down 2, push (1): 7; each box is one push from its own
# target and the walks between the pushing cells are the Manhattan distances 2 and 2


@pytest.mark.parametrize("text,steps", [(CORRIDOR, 3), (CORNER, 5), (THREE, 7)])
def test_optimal_lengths_by_hand(text, steps):
  solver = S.Solver()
  level = sl.parse_level(text)
  assert solver.distance(level) == steps
  actions = solver.solve(level)
  assert len(actions) == steps
  # The solution really solves it: replay it with the environment's own move rule.
  state = S.state_from_level(level)
  for a in actions:
    state, _ = sokoban.push(state, jnp.asarray(S._MOVES5[a]))
  assert not np.any(np.asarray(state.boxes) & ~np.asarray(level.targets))


def test_hand_first_actions():
  solver = S.Solver()
  corridor = sl.parse_level(CORRIDOR)
  assert solver.solve(corridor) == [4, 4, 4]  # right, right, right
  corner = sl.parse_level(CORNER)
  assert solver.solve(corner) == [1, 1, 4, 1, 3]  # up, up, right, up, left


@pytest.mark.parametrize("text", [CHAINED, DEAD])
def test_unsolvable(text):
  solver = S.Solver()
  level = sl.parse_level(text)
  assert solver.distance(level) == math.inf
  assert solver.solve(level) is None
  assert solver.expert_action(level.walls, level.targets, level.boxes, level.player) == S.NOOP


def test_matches_independent_astar():
  env = po_sokoban.POSokoban()
  levels = env.eval_params(256).levels  # the bank the experiment uses (cached)
  solver = S.Solver()
  for i in range(6):
    ref = sl.solve_level(levels[i])
    assert solver.distance(levels[i]) == len(ref), i


def test_expert_probs_exact():
  p = S.expert_probs(jnp.int32(2), 0.25)
  np.testing.assert_allclose(p, [0.05, 0.05, 0.8, 0.05, 0.05], rtol=1e-6)
  assert float(p.sum()) == pytest.approx(1.0)


def test_policy_solves_in_optimal_steps_and_log_probs():
  env = po_sokoban.POSokoban()
  params = env.make_params(jax.tree.map(lambda x: x[None], sl.parse_level(THREE)))
  solver = S.Solver()
  eps = 1e-4
  pi = S.solver_policy(solver, eps)
  eps_log = cfgps.log_episodes(jax.random.PRNGKey(0), env, params, pi, 4, 20)
  ret = np.asarray(cfgps.episode_return(eps_log))
  # 1 + 1 + (1 + 10) in exactly 7 steps, every step the expert's (prob 1 - eps + eps / 5).
  np.testing.assert_allclose(ret, 13.0)
  assert np.asarray(eps_log.valid).sum(1).tolist() == [7] * 4
  np.testing.assert_allclose(np.asarray(eps_log.log_prob)[:, :7], np.log(1 - eps + eps / 5),
                             rtol=0, atol=1e-7)
  # The target's log-probabilities of uniformly random actions against a host replay.
  mu = cfgps.uniform_policy(5)
  logged = cfgps.log_episodes(jax.random.PRNGKey(1), env, params, mu, 3, 30)
  logp = np.asarray(cfgps.target_log_probs(logged, pi))
  level = sl.parse_level(THREE)
  for i in range(3):
    state = S.state_from_level(level)
    for t in range(30):
      if not bool(logged.valid[i, t]):
        break
      a = int(logged.action[i, t])
      star = solver.expert_action(state.walls, state.targets, state.boxes, state.player)
      want = np.log((1 - eps) * (a == star) + eps / 5)
      assert logp[i, t] == pytest.approx(want, rel=1e-5, abs=1e-6), (i, t)
      state, _ = sokoban.push(state, jnp.asarray(S._MOVES5[a]))


def test_bad_input():
  with pytest.raises(ValueError, match="epsilon"):
    S.solver_policy(S.Solver(), 0.0)
  with pytest.raises(ValueError, match="solver"):
    S.solver_policy(None, 0.1)
  with pytest.raises(ValueError, match="max_floor"):
    S.Solver(max_floor=0)
