"""Tests of PO-Sokoban (CF-GPS Sec. 5): rewards without a step penalty, 50-step episodes, the
no-op, the observation noise (rate and independence), counterfactual replay, generated levels
and bad input."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import po_sokoban, sokoban
from envs import sokoban_levels as sl

LEVEL = """
#######
#@$.  #
#  $. #
#     #
#######
"""
NOOP, UP, DOWN, LEFT, RIGHT = range(5)
# On LEVEL: push box 1 onto its target (+1), on past it (-1), walk back, wait, bump the top
# wall, walk down, push box 2 onto its target (+1), walk round to the right of box 1 and push
# it back onto its target, which solves the level (+1 + 10).
SOLVE = [RIGHT, RIGHT, LEFT, NOOP, UP, DOWN, RIGHT, DOWN, RIGHT, RIGHT, UP, UP, LEFT]
SOLVE_REWARDS = [1, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 11]


@functools.lru_cache(maxsize=None)
def _hand():
  """5x7 env with 2 boxes, params of the one-level bank LEVEL, and a jitted step."""
  env = po_sokoban.POSokoban(5, 7, num_boxes=2)
  level = sl.parse_level(LEVEL)
  params = env.make_params(jax.tree.map(lambda x: x[None], level))
  step = jax.jit(lambda k, s, a: env.step(k, s, a, params))
  return env, params, level, step


@functools.lru_cache(maxsize=None)
def _fresh():
  """The paper's env (10x10, 3 boxes) and its default (fresh-level) params."""
  env = po_sokoban.POSokoban()
  return env, env.default_params


def _reset_then_truncate(env, params, keys, step_keys):
  """Resets a batch, then steps it (no-op) from time 49, so every episode is truncated and
  restarts; one jitted program, so the generator is compiled once for both."""
  def run(keys, step_keys):
    obs, states = jax.vmap(lambda k: env.reset(k, params))(keys)
    ending = states.replace(time=jnp.full(keys.shape[:1], 49, jnp.int32))
    out = jax.vmap(lambda k, s: env.step(k, s, jnp.int32(NOOP), params))(step_keys, ending)
    return obs, states, out
  return jax.jit(run)(keys, step_keys)


def _codes(obs):
  return np.asarray(obs).argmax(-1)


def _episode(actions, reset_key, step_keys):
  """Observed codes, true codes, rewards and flags of an episode on LEVEL."""
  env, params, level, step = _hand()
  obs, state = env.reset_to_level(reset_key, level, params)
  out = {"obs": [_codes(obs)], "true": [np.asarray(sokoban.tile_codes(state))], "reward": [],
         "terminated": [], "truncated": []}
  for key, action in zip(step_keys, actions):
    obs, state, reward, term, trunc, _ = step(key, state, jnp.int32(action))
    out["obs"].append(_codes(obs))
    out["true"].append(np.asarray(sokoban.tile_codes(state)))
    out["reward"].append(float(reward))
    out["terminated"].append(bool(term))
    out["truncated"].append(bool(trunc))
  return {k: np.asarray(v) for k, v in out.items()}


def test_cf_gps_settings():
  env, params = _fresh()
  assert (env.height, env.width, env.num_boxes, env.num_actions) == (10, 10, 3, 5)
  assert isinstance(params, po_sokoban.POSokobanParams) and params.fresh
  assert (params.max_steps, params.step_reward, params.empty_prob) == (50, 0.0, 0.9)


def test_rewards_without_step_penalty_on_a_hand_made_level():
  ep = _episode(SOLVE, jax.random.PRNGKey(0), jax.random.split(jax.random.PRNGKey(1), 13))
  # +1 onto a target, -1 off it, 0 for a plain move, the no-op and a move into a wall, and
  # 1 + 10 for the push that solves the level; solving terminates the episode.
  np.testing.assert_array_equal(ep["reward"], SOLVE_REWARDS)
  np.testing.assert_array_equal(ep["terminated"], [False] * 12 + [True])
  assert not ep["truncated"].any()


def test_sokoban_keeps_its_step_penalty():
  env = sokoban.Sokoban(5, 7, num_boxes=2)
  level = sl.parse_level(LEVEL)
  params = env.make_params(jax.tree.map(lambda x: x[None], level))
  state = env.state_from_level(level)
  _, _, reward, *_ = env.step(jax.random.PRNGKey(1), state, 1, params)  # 1: down, a plain move
  assert float(reward) == np.float32(-0.1)


def test_episode_truncated_after_50_steps():
  env, params, level, step = _hand()
  _, state = env.reset_to_level(jax.random.PRNGKey(0), level, params)
  for t in range(50):
    _, state, reward, term, trunc, _ = step(jax.random.PRNGKey(t), state, jnp.int32(DOWN))
    assert bool(trunc) == (t == 49) and not bool(term) and float(reward) == 0.0
  assert int(state.time) == 0  # the automatic reset started a new episode


def test_noop_leaves_the_state_unchanged():
  env, params, level, step = _hand()
  _, state = env.reset_to_level(jax.random.PRNGKey(0), level, params)
  for t, a in enumerate([RIGHT, DOWN]):  # box 1 on its target, player at (2, 2)
    _, state, *_ = step(jax.random.PRNGKey(t), state, jnp.int32(a))
  _, after, reward, term, trunc, _ = step(jax.random.PRNGKey(5), state, jnp.int32(NOOP))
  assert float(reward) == 0.0 and not bool(term) and not bool(trunc)
  assert int(after.time) == int(state.time) + 1 == 3
  np.testing.assert_array_equal(after.player, [2, 2])
  for field in ("walls", "targets", "boxes", "player", "level_index"):
    np.testing.assert_array_equal(getattr(after, field), getattr(state, field))


def test_tiles_hidden_with_probability_0_9_independently():
  env, params, level, _ = _hand()
  keys = jax.random.split(jax.random.PRNGKey(3), 100)

  def episode(key):  # 50 no-ops: the true tiles never change, only the noise does
    k_reset, k_steps = jax.random.split(key)
    obs, state = env.reset_to_level(k_reset, level, params)

    def body(state, k):
      obs, state, *_ = env.step(k, state, jnp.int32(NOOP), params)
      return state, obs
    _, rest = jax.lax.scan(body, state, jax.random.split(k_steps, 50))
    return jnp.concatenate([obs[None], rest]).argmax(-1)

  obs = np.asarray(jax.jit(jax.vmap(episode))(keys))  # (100 episodes, 51 steps, 5, 7)
  codes = np.asarray(sokoban.tile_codes(env.state_from_level(level)))
  assert np.all((obs == codes) | (obs == sokoban.FLOOR))  # a tile is shown truly or as floor
  informative = codes != sokoban.FLOOR  # 25 tiles: walls, boxes, targets, player
  visible = (obs == codes)[..., informative]  # (100, 51, 25)

  def within(successes, trials, p, sds=4.0):
    """A binomial rate within `sds` standard errors of p."""
    se = np.sqrt(p * (1 - p) / trials)
    assert abs(successes / trials - p) < sds * se, (successes / trials, p, se, trials)

  # 127,500 tile-steps: hidden rate 0.9, standard error 0.00084, allowed 4 SE.
  within(np.sum(~visible), visible.size, 0.9)
  # Across steps: a tile seen at step t is seen again at t + 1 with probability 0.1 (it would
  # be 1 if the mask were reused); about 12,500 trials, SE 0.0027, allowed 4 SE.
  seen_t, seen_next = visible[:, :-1], visible[:, 1:]
  within(np.sum(seen_t & seen_next), np.sum(seen_t), 0.1)
  # Across tiles: given tile i seen, tile i + 1 (in the list of informative tiles) is seen
  # with probability 0.1; about 12,000 trials, allowed 4 SE.
  seen_i, seen_j = visible[..., :-1], visible[..., 1:]
  within(np.sum(seen_i & seen_j), np.sum(seen_i), 0.1)


def test_counterfactual_replay_same_level_and_noise():
  env, params, _, _ = _hand()
  reset_key = jax.random.PRNGKey(9)
  keys = jax.random.split(jax.random.PRNGKey(4), 16)
  logged = SOLVE + [NOOP, DOWN, RIGHT]  # solved at step 13; the next episode starts at once
  other = [DOWN, DOWN, RIGHT, RIGHT, UP, NOOP, LEFT, UP, RIGHT, RIGHT, DOWN, LEFT, NOOP, UP,
           RIGHT, DOWN]
  a, b, c = (_episode(acts, reset_key, keys) for acts in (logged, logged, other))
  # The same level, keys and actions reproduce the episode exactly.
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["true"], c["true"]) and a["reward"].sum() != c["reward"].sum()
  # Another policy: every step hides the same tiles, wherever both true states show
  # something other than floor (walls at least), across the solve and automatic reset too;
  # the mask is noise_mask(split(key)[1]) of each step's key.
  masks = [env.noise_mask(jax.random.split(k)[1], params) for k in [reset_key, *keys]]
  compared = 0
  for t, mask in enumerate(np.asarray(masks)):
    both = (a["true"][t] != sokoban.FLOOR) & (c["true"][t] != sokoban.FLOOR)
    hidden_a = (a["obs"][t] != a["true"][t])[both]
    hidden_c = (c["obs"][t] != c["true"][t])[both]
    np.testing.assert_array_equal(hidden_a, hidden_c)
    np.testing.assert_array_equal(hidden_a, mask[both])
    compared += both.sum()
  assert compared >= 17 * 20  # at least the 20 wall tiles at each of the 17 observations


def test_levels_are_fresh_generated_and_replayable():
  env, params = _fresh()
  keys = jax.random.split(jax.random.PRNGKey(8), 8)
  obs, states, (_, new, _, _, trunc, _) = _reset_then_truncate(
      env, params, keys, jax.random.split(jax.random.PRNGKey(2), 8))
  states = jax.tree.map(np.asarray, states)
  np.testing.assert_array_equal(states.level_index, -1)  # generated, not the fallback pool
  texts = set()
  for i in range(8):
    level = po_sokoban.level_of(jax.tree.map(lambda x, i=i: x[i], states))
    sl.validate_level(level.walls, level.targets, level.boxes, level.player, f"level {i}")
    assert level.boxes.sum() == 3 and level.targets.sum() == 3
    assert not np.any(level.boxes & level.targets)
    assert sl.solve_level(level) is not None, sl.format_level(level)
    texts.add(sl.format_level(level))
    # The level is explicit: reset_to_level on it repeats reset's observation exactly.
    obs_i, _ = env.reset_to_level(keys[i], level, params)
    np.testing.assert_array_equal(obs_i, obs[i])
  assert len(texts) == 8
  # The automatic reset of a truncated episode generates a new level too.
  assert np.all(np.asarray(trunc))
  np.testing.assert_array_equal(new.time, 0)
  np.testing.assert_array_equal(new.level_index, -1)
  for i in range(8):
    level = jax.tree.map(np.asarray, po_sokoban.level_of(jax.tree.map(lambda x, i=i: x[i], new)))
    assert level.boxes.sum() == 3 and not np.any(level.boxes & level.targets)
    assert sl.format_level(level) not in texts


def test_other_level_sources_keep_cf_gps_params(monkeypatch):
  env, params, _, _ = _hand()
  # The generated banks are Sokoban's (tested there); here only PO-Sokoban's params around them.
  monkeypatch.setattr(env, "pool", lambda num_levels=1024, seed=sokoban.POOL_SEED: params.levels)
  for made in (env.fresh_params(), env.stream_params(None, 4), env.eval_params(16),
               env.make_params(params.levels)):
    assert isinstance(made, po_sokoban.POSokobanParams)
    assert (made.max_steps, made.step_reward, made.empty_prob) == (50, 0.0, 0.9)
  assert env.fresh_params().fresh and env.stream_params(None, 4).stream.capacity == 4
  made = env.stream_params(None, 4, empty_prob=0.5, max_steps=20)
  assert (made.empty_prob, made.max_steps) == (0.5, 20)


def test_bad_input_is_refused():
  env, params, level, _ = _hand()
  one_box = sl.parse_level("#######\n#@$.  #\n#     #\n#     #\n#######")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="level has 1 boxes and 1 targets; .*num_boxes=2"):
    env.reset_to_level(key, one_box, params)
  with pytest.raises(ValueError, match=r"levels\[0\] has 1 boxes; .*num_boxes=2"):
    env.make_params(jax.tree.map(lambda x: x[None], one_box))
  with pytest.raises(ValueError, match="level must be one 5x7 level"):
    env.reset_to_level(key, params.levels, params)  # a bank, not a level
  with pytest.raises(ValueError, match="key must be one PRNG key"):
    env.reset_to_level(jax.random.split(key, 4), level, params)
  _, state = env.reset_to_level(key, level, params)
  with pytest.raises(ValueError, match="key must be one PRNG key"):
    env.step(jax.random.split(key, 4), state, 0, params)
  with pytest.raises(ValueError, match="params must be POSokobanParams"):
    env.step(key, state, 0, sokoban.SokobanParams(levels=params.levels))
