"""Tests of the Sokoban environment: hand-worked transitions, auto-reset, jit/vmap, bad input."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import sokoban
from envs import sokoban_generator as sg
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
  params = env.make_params(env.pool(64))
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
  params = env.make_params(env.pool(64))
  key = jax.random.PRNGKey(7)
  a = jax.jit(_rollout, static_argnums=(0, 3))(env, params, key, 30)
  b = jax.jit(_rollout, static_argnums=(0, 3))(env, params, key, 30)
  with jax.disable_jit():
    c = _rollout(env, params, key, 5)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x[:5], y, rtol=1e-6), a, c)


def test_vmap_1024_matches_loop():
  env = sokoban.Sokoban()
  params = env.make_params(env.pool(64))
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
  params = env.make_params(env.pool(64))

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


# ----------------------------------------------------------------------------- fresh levels
def _same(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@functools.lru_cache(maxsize=None)
def _fresh_env():
  """7x7 rooms with 2 boxes, fresh-level params, and a jitted vmapped reset (compiled once)."""
  env = sokoban.Sokoban(7, 7, 2)
  params = env.fresh_params()
  return env, params, jax.jit(jax.vmap(lambda k: env.reset(k, params)))


def test_fresh_resets_play_valid_solvable_generated_levels():
  env, params, reset = _fresh_env()
  keys = jax.random.split(jax.random.PRNGKey(8), 16)
  _, states = reset(keys)
  # reset splits its key into (generator, bank fallback); each level is the generator's.
  levels, ok, _ = sg.generate_batch(jax.vmap(lambda k: jax.random.split(k)[0])(keys), 7, 7, 2)
  assert np.all(np.asarray(ok))
  states = jax.tree.map(np.asarray, states)
  assert _same((states.walls, states.targets, states.boxes, states.player),
               (levels.walls, levels.targets, levels.boxes, levels.player))
  np.testing.assert_array_equal(states.level_index, -1)
  np.testing.assert_array_equal(states.time, 0)
  seen = set()
  for i in range(16):
    level = sl.Level(states.walls[i], states.targets[i], states.boxes[i], states.player[i])
    sl.validate_level(level.walls, level.targets, level.boxes, level.player, f"level {i}")
    assert not np.any(level.boxes & level.targets)
    assert sl.solve_level(level) is not None, sl.format_level(level)
    seen.add(sl.format_level(level))
  assert len(seen) == 16


def test_fresh_auto_reset_only_where_episodes_end():
  # Sixteen environments under vmap; 0, 3 and 6 take their 120th step, so their episodes are
  # truncated and they start fresh levels; the others keep their level and clock.
  env, params, reset = _fresh_env()
  _, states = reset(jax.random.split(jax.random.PRNGKey(6), 16))
  ending = np.isin(np.arange(16), [0, 3, 6])
  states = states.replace(time=jnp.where(ending, 119, 5))
  keys = jax.random.split(jax.random.PRNGKey(7), 16)
  step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
  _, new, _, term, trunc, _ = step(keys, states, jnp.zeros(16, jnp.int32), params)
  np.testing.assert_array_equal(np.asarray(trunc), ending)
  assert not np.any(np.asarray(term))  # one push cannot solve two boxes that start off target
  # The next episode is exactly what reset gives with step's reset key.
  _, expected = reset(jax.vmap(lambda k: jax.random.split(k)[1])(keys))
  for i in range(16):
    got = jax.tree.map(lambda x, i=i: x[i], new)
    if ending[i]:
      assert _same(got, jax.tree.map(lambda x, i=i: x[i], expected)), i
      assert int(got.level_index) == -1 and int(got.time) == 0
      assert not _same((got.walls, got.boxes), (states.walls[i], states.boxes[i])), i
    else:
      assert int(got.time) == 6
      np.testing.assert_array_equal(got.walls, states.walls[i])
      np.testing.assert_array_equal(got.targets, states.targets[i])


def test_eval_bank_is_held_out_and_refill_replaces_slots():
  env, _, _ = _fresh_env()
  pool, held_out = env.pool(64), env.eval_params(64).levels
  expected = sg.generate_bank(jax.random.PRNGKey(sokoban.EVAL_SEED), 64, 7, 7, 2, batch=64)
  assert _same(held_out, expected)
  texts = lambda bank: {sl.format_level(bank[i]) for i in range(64)}  # noqa: E731
  # Different seeds: only a repeat of the generator can be shared (7x7, 2 boxes: about 1 pair
  # in 5e4 is a repeat, so 0.08 shared levels are expected among 64 x 64 pairs).
  assert len(texts(pool) & texts(held_out)) <= 2
  params = env.make_params(pool)
  refilled = jax.jit(env.refill, static_argnums=2)(jax.random.PRNGKey(9), params, 8)
  changed = [i for i in range(64) if not _same(refilled.levels[i], pool[i])]
  assert len(changed) == 8
  for i in changed:
    level = jax.tree.map(np.asarray, refilled.levels[i])
    sl.validate_level(level.walls, level.targets, level.boxes, level.player)
    assert sl.solve_level(level) is not None
  with pytest.raises(ValueError, match="num"):
    env.refill(jax.random.PRNGKey(0), params, 65)


# ----------------------------------------------------------------------------- level stream
def test_allocate_stream_hand_checked():
  # Four lanes whose shared counter is at 5; lanes 0, 2, 3 start episodes; levels 0..6 written.
  index, dry, nxt = sokoban.allocate_stream(jnp.full(4, 5), jnp.array([1, 0, 1, 1], bool),
                                            jnp.int32(7), jnp.int32(3))
  assert np.asarray(index).tolist() == [5, -1, 6, -1]
  assert np.asarray(dry).tolist() == [False, False, False, True]
  assert np.asarray(nxt).tolist() == [7, 7, 7, 7]
  # A refill overwrote levels up to 5 unplayed (low = 6): they are skipped, not replayed.
  index, dry, nxt = sokoban.allocate_stream(jnp.full(4, 5), jnp.array([1, 0, 1, 1], bool),
                                            jnp.int32(7), jnp.int32(6))
  assert np.asarray(index).tolist() == [6, -1, -1, -1]
  assert np.asarray(dry).tolist() == [False, False, True, True]
  assert np.asarray(nxt).tolist() == [7, 7, 7, 7]
  # One environment, and the vmapped rule (the key only batches the call).
  key = jax.random.PRNGKey(0)
  single = sokoban._take_from_stream(key, jnp.int32(5), jnp.bool_(True), jnp.int32(7),
                                     jnp.int32(3))
  assert [int(x) for x in single] == [5, 0, 6]
  batched = jax.vmap(sokoban._take_from_stream, (0, 0, 0, None, None))(
      jax.random.split(key, 4), jnp.full(4, 5), jnp.array([1, 0, 1, 1], bool), jnp.int32(7),
      jnp.int32(3))
  assert np.asarray(batched[0]).tolist() == [5, -1, 6, -1]
  assert np.asarray(batched[2]).tolist() == [7, 7, 7, 7]
  with pytest.raises(ValueError, match="shared by the vmapped environments"):
    jax.vmap(sokoban._take_from_stream)(jax.random.split(key, 4), jnp.full(4, 5),
                                        jnp.ones(4, bool), jnp.full(4, 7), jnp.full(4, 3))


@functools.lru_cache(maxsize=None)
def _stream_env():
  """7x7 rooms with 2 boxes, the jitted refill (16 new levels), reset and step of 16 envs."""
  env = sokoban.Sokoban(7, 7, 2)
  refill = jax.jit(env.refill_stream, static_argnums=2)
  reset = jax.jit(jax.vmap(env.reset, (0, None)))
  step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
  return env, refill, reset, step


def _stream_levels(keys_and_nums):
  """The levels a stream holds after refills with these `(key, num)`: the generator's valid
  levels for `jax.random.split(key, num)`, in key order, refill after refill."""
  found = []
  for key, num in keys_and_nums:
    levels, ok, _ = sg.generate_batch(jax.random.split(key, num), 7, 7, 2)
    ok = np.asarray(ok)
    found.append(jax.tree.map(lambda x, ok=ok: np.asarray(x)[ok], levels))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *found)


def test_stream_holds_the_generators_levels_and_dry_resets_are_counted():
  env, refill, reset, step = _stream_env()
  k0, k1 = jax.random.PRNGKey(20), jax.random.PRNGKey(21)
  params = env.stream_params(k0, capacity=16, num=16, max_steps=1)
  expected = _stream_levels([(k0, 16)])
  assert int(params.stream.end) == len(expected.walls) == 16  # no failure among 16 (7x7, 2)
  assert int(params.stream.generated) == 16 and int(params.stream.start) == 0
  assert _same(jax.tree.map(np.asarray, params.stream.levels), expected)
  # Sixteen resets take stream levels 0..15 in lane order: the stream is then used up.
  _, state = reset(jax.random.split(jax.random.PRNGKey(1), 16), params)
  np.testing.assert_array_equal(state.stream_index, np.arange(16))
  np.testing.assert_array_equal(state.stream_next, 16)
  assert _same((state.walls, state.targets, state.boxes, state.player),
               (expected.walls, expected.targets, expected.boxes, expected.player))
  assert int(env.stream_remaining(params, state)) == 0
  # max_steps = 1: every episode ends at the next step and all 16 resets find the stream dry:
  # each plays a fallback pool level, counted in info and in the state, no index used up.
  keys = jax.random.split(jax.random.PRNGKey(2), 16)
  _, state, _, _, trunc, info = step(keys, state, jnp.zeros(16, jnp.int32), params)
  assert np.all(np.asarray(trunc))
  np.testing.assert_array_equal(info["stream_dry"], True)
  np.testing.assert_array_equal(state.stream_dry, 1)
  np.testing.assert_array_equal(state.stream_index, -1)
  np.testing.assert_array_equal(state.stream_next, 16)
  assert np.all((np.asarray(state.level_index) >= 0) & (np.asarray(state.level_index) < 64))
  # After a refill of 16 the next resets take levels 16..31, the refill's, and none is dry.
  params = refill(k1, params, 16)
  assert int(params.stream.start) == 16 and int(env.stream_remaining(params, state)) == 16
  _, state, _, _, _, info = step(keys, state, jnp.zeros(16, jnp.int32), params)
  assert not np.any(np.asarray(info["stream_dry"]))
  np.testing.assert_array_equal(state.stream_index, np.arange(16, 32))
  np.testing.assert_array_equal(state.stream_dry, 1)  # cumulative
  second = _stream_levels([(k1, 16)])
  assert _same((state.walls, state.boxes, state.player),
               (second.walls, second.boxes, second.player))


def test_stream_plays_no_level_twice_across_refills():
  # 16 environments, 2-step episodes with clocks 0, 1, 0, 1, ...: the odd lanes end at odd
  # steps, the even ones at even steps (a level with both boxes off target cannot be solved in
  # one push), so 8 resets per step. 4 chunks of 4 steps, each after two refills of 16 levels:
  # 16 + 4 x 32 = 144 episodes, which must play stream levels 0..143, each once, and each the
  # generator's level of its index.
  env, refill, reset, step = _stream_env()
  keys = [(jax.random.PRNGKey(30 + i), 16) for i in range(9)]
  params = env.stream_params(None, capacity=48, max_steps=2)
  params = refill(keys[0][0], params, 16)
  _, state = reset(jax.random.split(jax.random.PRNGKey(3), 16), params)
  state = state.replace(time=jnp.arange(16) % 2)

  @jax.jit
  def chunk(state, key, params):
    def body(s, k):
      k_act, k_env = jax.random.split(k)
      action = jax.random.randint(k_act, (16,), 0, 4)
      _, s, _, term, trunc, info = step(jax.random.split(k_env, 16), s, action, params)
      return s, (term | trunc, info["stream_dry"], s.stream_index, s.walls, s.boxes, s.player)
    return jax.lax.scan(body, state, jax.random.split(key, 4))

  played = [np.asarray(state.stream_index)]
  starts = [tuple(np.asarray(x) for x in (state.walls, state.boxes, state.player))]
  for c in range(4):
    params = refill(keys[2 * c + 2][0], refill(keys[2 * c + 1][0], params, 16), 16)
    state, (done, dry, index, walls, boxes, player) = chunk(state, jax.random.PRNGKey(c), params)
    done = np.asarray(done)
    np.testing.assert_array_equal(done.sum(1), 8)
    assert not np.asarray(dry).any()
    played.append(np.asarray(index)[done])
    starts.append(tuple(np.asarray(x)[done] for x in (walls, boxes, player)))
  played = np.concatenate(played)
  np.testing.assert_array_equal(np.sort(played), np.arange(144))  # each index once
  np.testing.assert_array_equal(state.stream_dry, 0)
  assert int(env.stream_remaining(params, state)) == 0
  expected = _stream_levels(keys)
  walls, boxes, player = (np.concatenate([s[i] for s in starts]) for i in range(3))
  np.testing.assert_array_equal(walls, expected.walls[played])
  np.testing.assert_array_equal(boxes, expected.boxes[played])
  np.testing.assert_array_equal(player, expected.player[played])
  # So the distinct levels played are exactly the distinct levels generated: none replayed
  # (two equal levels can only be two draws of the generator, its own repeat rate).
  text = lambda i: sl.format_level(jax.tree.map(lambda x: x[i], expected))  # noqa: E731
  assert len({text(i) for i in played}) == len({text(i) for i in range(144)})


def test_stream_per_seed_under_an_outer_vmap_matches_each_seed_alone():
  # Seeds x environments, as `jax.vmap(train)(seed_keys)` runs them: each seed has its own
  # stream (stacked params, vmapped over seeds) and its environments share its counter.
  env, refill, reset, step = _stream_env()
  seeds = [env.stream_params(None, capacity=32, max_steps=1) for _ in range(2)]
  seeds = [refill(jax.random.PRNGKey(40 + i), p, 16) for i, p in enumerate(seeds)]
  seeds = [refill(jax.random.PRNGKey(50 + i), p, 16) for i, p in enumerate(seeds)]
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *seeds)

  def run(key, params):  # reset 8 environments, then 2 steps (every episode ends at each)
    _, state = jax.vmap(env.reset, (0, None))(jax.random.split(key, 8), params)
    out = [state.stream_index]
    for t in range(2):
      _, state, *_ = jax.vmap(env.step, (0, 0, 0, None))(
          jax.random.split(jax.random.fold_in(key, t), 8), state, jnp.zeros(8, jnp.int32), params)
      out.append(state.stream_index)
    return jnp.stack(out), state.boxes

  keys = jax.random.split(jax.random.PRNGKey(4), 2)
  both = jax.jit(jax.vmap(run))(keys, stacked)
  for i in range(2):
    alone = jax.jit(run)(keys[i], seeds[i])
    jax.tree.map(lambda x, y, i=i: np.testing.assert_array_equal(x[i], y), both, alone)
    # Reset takes the latest refill's levels 16..23, the steps 24..31 then dry (-1).
    np.testing.assert_array_equal(both[0][i], [np.arange(16, 24), np.arange(24, 32),
                                               np.full(8, -1)])


def test_refill_in_smaller_batches_gives_the_same_levels():
  env, refill, _, _ = _stream_env()
  params = env.stream_params(None, capacity=32)
  whole = refill(jax.random.PRNGKey(5), params, 16)
  halves = jax.jit(env.refill_stream, static_argnums=(2, 3))(jax.random.PRNGKey(5), params, 16, 8)
  assert _same(whole.stream, halves.stream)
  with pytest.raises(ValueError, match="batch must be a positive divisor of num=16"):
    env.refill_stream(jax.random.PRNGKey(5), params, 16, 5)


def test_stream_bad_input_is_refused():
  env, refill, _, _ = _stream_env()
  with pytest.raises(ValueError, match="no level stream"):
    env.refill_stream(jax.random.PRNGKey(0), env.make_params(env.pool(64)), 4)
  params = env.stream_params(None, capacity=8)
  assert int(params.stream.end) == 0
  with pytest.raises(ValueError, match=r"num must be an integer in \[1, 8\]"):
    env.refill_stream(jax.random.PRNGKey(0), params, 9)
  with pytest.raises(ValueError, match="capacity"):
    env.stream_params(None, capacity=0)
  _, state = env.reset(jax.random.PRNGKey(0), params)
  with pytest.raises(ValueError, match="exclusive"):
    env.step(jax.random.PRNGKey(0), state, 0, params.replace(fresh=True))
