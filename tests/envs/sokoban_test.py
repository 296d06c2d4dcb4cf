"""Tests of the Sokoban environment: hand-worked transitions, auto-reset, jit/vmap, bad input."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import sokoban
from envs import sokoban_levels as sl

UP, DOWN, LEFT, RIGHT = range(4)

# Two boxes: one already on a target (row 2), one off (row 3); two targets.
LEVEL = """
########
#      #
# @*  .#
#  $   #
########
"""


def _env_and_params(text=LEVEL, **kwargs):
  level = sl.parse_level(text)
  h, w = level.walls.shape
  env = sokoban.Sokoban(h, w, num_boxes=2, **kwargs)
  bank = jax.tree.map(lambda x: x[None], level)
  return env, env.make_params(bank)


def test_push_box_off_then_onto_target():
  env, params = _env_and_params()
  obs, state = env.reset(jax.random.PRNGKey(0), params)
  key = jax.random.PRNGKey(1)
  expected = [(-1.1, [2, 3]), (-0.1, [2, 4]), (0.9, [2, 5])]  # off target, move, onto target
  for reward, player in expected:
    obs, state, r, term, trunc, info = env.step(key, state, RIGHT, params)
    np.testing.assert_allclose(float(r), reward, rtol=1e-6)
    assert np.asarray(state.player).tolist() == player
    assert not bool(term) and not bool(trunc)
  assert int(info["boxes_on_target"]) == 1
  # Pushing into the wall: the player stays, the box stays.
  obs, state, r, *_ = env.step(key, state, RIGHT, params)
  assert np.asarray(state.player).tolist() == [2, 5]
  np.testing.assert_allclose(float(r), -0.1, rtol=1e-6)
  # The symbolic observation shows the box on target at (2, 6) and the player at (2, 5).
  assert obs[2, 6, sokoban.BOX_ON_TARGET] == 1 and obs[2, 5, sokoban.PLAYER] == 1
  assert obs.shape == (5, 8, 7) and np.all(np.asarray(obs).sum(-1) == 1)


def test_solving_terminates_with_bonus_and_resets():
  env, params = _env_and_params("#######\n#     #\n# @$. #\n#     #\n#######")
  _, state = env.reset(jax.random.PRNGKey(0), params)
  obs, state, r, term, trunc, info = env.step(jax.random.PRNGKey(1), state, RIGHT, params)
  np.testing.assert_allclose(float(r), -0.1 + 1.0 + 10.0, rtol=1e-6)
  assert bool(term) and not bool(trunc) and bool(info["solved"])
  # Automatic reset: the state is the level's start again.
  assert np.asarray(state.player).tolist() == [2, 2] and int(state.time) == 0


def test_truncation_after_max_steps():
  env, params = _env_and_params()
  params = params.replace(max_steps=3)
  _, state = env.reset(jax.random.PRNGKey(0), params)
  flags = []
  for _ in range(3):
    _, state, _, term, trunc, _ = env.step(jax.random.PRNGKey(0), state, UP, params)
    flags.append((bool(term), bool(trunc)))
  assert flags == [(False, False), (False, False), (False, True)]
  assert int(state.time) == 0


def test_noop_action_and_rgb_observation():
  env, params = _env_and_params(noop=True, observation="rgb")
  assert env.num_actions == 5
  obs, state = env.reset(jax.random.PRNGKey(0), params)
  assert obs.shape == (40, 64, 3) and obs.dtype == jnp.uint8
  obs2, state2, r, *_ = env.step(jax.random.PRNGKey(0), state, 0, params)
  np.testing.assert_array_equal(obs, obs2)
  np.testing.assert_allclose(float(r), -0.1, rtol=1e-6)
  # Pixel colours: a wall tile, and the player's centre pixel (2, 2) -> rows 16..23, cols 16..23.
  np.testing.assert_array_equal(obs[0, 0], [120, 60, 40])
  np.testing.assert_array_equal(obs[8 * 2 + 4, 8 * 2 + 4], [80, 140, 255])
  np.testing.assert_array_equal(env.render(state), obs)


def test_default_env_80x80_rgb_and_specs():
  env = sokoban.Sokoban(observation="rgb")
  params = env.default_params
  obs, state = env.reset(jax.random.PRNGKey(0), params)
  assert env.observation_space(params).contains(np.asarray(obs))
  assert obs.shape == (80, 80, 3)
  assert env.action_space(params).contains(np.int32(3))
  assert int(state.boxes.sum()) == 4


def _rollout(env, params, key, num_steps):
  def body(carry, t):
    state = carry
    # Per-step keys by fold_in, so a shorter rollout is a prefix of a longer one.
    k_act, k_step = jax.random.split(jax.random.fold_in(k_run, t))
    action = jax.random.randint(k_act, (), 0, env.num_actions)
    obs, state, r, term, trunc, _ = env.step(k_step, state, action, params)
    return state, (r, term, trunc, state.player)
  k_reset, k_run = jax.random.split(key)
  _, state = env.reset(k_reset, params)
  return jax.lax.scan(body, state, jnp.arange(num_steps))[1]


def test_determinism_jit_vs_nojit():
  env = sokoban.Sokoban()
  params = env.default_params
  key = jax.random.PRNGKey(7)
  a = jax.jit(_rollout, static_argnums=(0, 3))(env, params, key, 30)
  b = jax.jit(_rollout, static_argnums=(0, 3))(env, params, key, 30)
  with jax.disable_jit():
    c = _rollout(env, params, key, 5)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x[:5], y, rtol=1e-6), a, c)


def test_vmap_1024_matches_loop():
  env = sokoban.Sokoban()
  params = env.default_params
  keys = jax.random.split(jax.random.PRNGKey(3), 1024)
  run = jax.jit(lambda k: _rollout(env, params, k, 4))
  batched = jax.jit(jax.vmap(lambda k: _rollout(env, params, k, 4)))(keys)
  # The loop checks every 8th environment to stay fast; all 1024 ran in the batch.
  for i in range(0, 1024, 8):
    single = run(keys[i])
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[i], y, rtol=1e-6), batched, single)
  # Different keys give different levels.
  assert len(np.unique(np.asarray(batched[3][:, 0]), axis=0)) > 10


def test_no_retracing():
  env = sokoban.Sokoban()
  params = env.default_params

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(key, state, action):
    return env.step(key, state, action, params)

  _, state = env.reset(jax.random.PRNGKey(0), params)
  for i in range(5):
    _, state, *_ = step(jax.random.PRNGKey(i), state, jnp.int32(i % 4))
  chex.clear_trace_counter()


def test_bad_actions_are_refused():
  env, params = _env_and_params()
  _, state = env.reset(jax.random.PRNGKey(0), params)
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"action must be in \[0, 4\)"):
    env.step(key, state, 4, params)
  with pytest.raises(ValueError, match=r"action must be in \[0, 4\)"):
    env.step(key, state, jnp.int32(-1), params)
  with pytest.raises(ValueError, match="integer dtype"):
    env.step(key, state, jnp.float32(1.0), params)
  with pytest.raises(ValueError, match="scalar"):
    env.step(key, state, jnp.zeros((2,), jnp.int32), params)
  with pytest.raises(ValueError, match="integer scalar"):
    env.step(key, state, 1.5, params)
  # Under jit the value is unknown: an out-of-range action yields a NaN reward, not a clip.
  r = jax.jit(lambda a: env.step(key, state, a, params)[2])(jnp.int32(9))
  assert np.isnan(float(r))


def test_bad_construction_is_refused():
  with pytest.raises(ValueError, match="observation"):
    sokoban.Sokoban(observation="pixels")
  env = sokoban.Sokoban()
  level = sl.parse_level(LEVEL)
  with pytest.raises(ValueError, match="levels must be a bank of 10x10"):
    env.make_params(jax.tree.map(lambda x: x[None], level))
