"""Tests of PO-Sokoban: the observation noise, 50-step episodes and counterfactual replay."""
import jax
import jax.numpy as jnp
import numpy as np

from envs import po_sokoban, sokoban
from envs import sokoban_levels as sl

LEVEL = """
#######
#  .  #
# @$  #
#  $. #
#######
"""


def _env():
  env = po_sokoban.POSokoban(5, 7, num_boxes=2)
  level = sl.parse_level(LEVEL)
  return env, env.make_params(jax.tree.map(lambda x: x[None], level)), level


def test_defaults_match_cf_gps():
  env = po_sokoban.POSokoban()
  params = env.default_params
  assert env.num_actions == 5 and int(params.max_steps) == 50 and params.empty_prob == 0.9
  _, state = env.reset(jax.random.PRNGKey(0), params)
  assert int(state.boxes.sum()) == 3 and int(state.targets.sum()) == 3


def test_tiles_hidden_with_probability_0_9():
  env, params, level = _env()
  state = env.state_from_level(level)
  codes = np.asarray(sokoban.tile_codes(state))
  keys = jax.random.split(jax.random.PRNGKey(0), 400)
  obs = np.asarray(jax.vmap(lambda k: env.observe(k, state, params))(keys)).argmax(-1)
  # A tile is either shown truly or as floor.
  assert np.all((obs == codes) | (obs == sokoban.FLOOR))
  informative = codes != sokoban.FLOOR
  hidden = (obs != codes)[:, informative]
  # 400 * 29 Bernoulli(0.9) draws: sd of the mean = sqrt(0.09 / 11600) = 0.0028; allow 4 sd.
  np.testing.assert_allclose(hidden.mean(), 0.9, atol=4 * 0.0028)


def test_noop_and_truncation_at_50_steps():
  env, params, level = _env()
  obs, state = env.reset_to_level(jax.random.PRNGKey(0), level, params)
  step = jax.jit(lambda k, s, a: env.step(k, s, a, params))
  for t in range(50):
    _, state, r, term, trunc, _ = step(jax.random.PRNGKey(t), state, jnp.int32(0))
    assert bool(trunc) == (t == 49) and not bool(term)
    np.testing.assert_allclose(float(r), -0.1, rtol=1e-6)


def test_counterfactual_replay_shares_level_and_noise():
  env, params, level = _env()
  step = jax.jit(lambda k, s, a: env.step(k, s, a, params))
  keys = jax.random.split(jax.random.PRNGKey(4), 10)

  def episode(actions):
    obs, state = env.reset_to_level(jax.random.PRNGKey(9), level, params)
    out = [obs]
    for k, a in zip(keys, actions):
      obs, state, *_ = step(k, state, jnp.int32(a))
      out.append(obs)
    return np.stack(out)

  a = episode([4, 4, 2, 0, 1, 3, 4, 2, 1, 0])
  b = episode([4, 4, 2, 0, 1, 3, 4, 2, 1, 0])
  c = episode([3, 1, 1, 2, 0, 0, 4, 3, 2, 1])
  np.testing.assert_array_equal(a, b)  # same exogenous variables, same policy: same episode
  assert not np.array_equal(a, c)
  # Under another policy the walls (which never move) are hidden at exactly the same times.
  walls = np.asarray(level.walls)
  np.testing.assert_array_equal(a[..., walls, sokoban.WALL], c[..., walls, sokoban.WALL])
