"""Tests of MiniPacman: hand-worked pill-then-ghost, death, ghost policy, level rules, jit/vmap."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import minipacman as mp

NOOP, RIGHT, UP, LEFT, DOWN = range(5)  # the released order
G_RIGHT, G_UP, G_LEFT, G_DOWN = range(4)  # ghost directions


def _state(env, pacman, ghosts, alive=None, pills=(), food_all=True, power=0, level=1, dirs=None):
  g = env.max_ghosts
  gpos = np.zeros((g, 2), np.int32)
  gpos[:len(ghosts)] = ghosts
  alive_arr = np.zeros(g, bool)
  alive_arr[:len(ghosts)] = True if alive is None else alive
  food = ~mp.WALLS if food_all else np.zeros_like(mp.WALLS)
  food = food.copy()
  food[pacman] = False
  pill_grid = np.zeros_like(mp.WALLS)
  for p in pills:
    pill_grid[p] = True
  gdirs = np.zeros(g, np.int32) if dirs is None else np.asarray(dirs + [0] * (g - len(dirs)))
  return mp.MiniPacmanState(
      pacman=jnp.asarray(pacman, jnp.int32), ghosts=jnp.asarray(gpos),
      ghost_dirs=jnp.asarray(gdirs, jnp.int32), ghost_alive=jnp.asarray(alive_arr),
      food=jnp.asarray(food), pills=jnp.asarray(pill_grid), power=jnp.int32(power),
      level=jnp.int32(level), level_time=jnp.int32(0), time=jnp.int32(0))


def _frozen_ghosts(env):
  return env.default_params.replace(ghost_speed_init=0.0, ghost_speed_increase=0.0)


def test_eat_pill_then_ghost_regular():
  env = mp.MiniPacman("regular", max_ghosts=2)
  params = _frozen_ghosts(env)
  # Row 3 is a long corridor; Pacman at (3, 5), pill at (3, 6), ghost at (3, 7).
  state = _state(env, (3, 5), [(3, 7)], pills=[(3, 6)])
  key = jax.random.PRNGKey(0)
  obs, state, r, term, trunc, info = env.step(key, state, RIGHT, params)
  np.testing.assert_array_equal(info["events"], [1, 1, 1, 0, 0])  # step, food, pill
  np.testing.assert_allclose(float(r), 1 + 2)
  assert int(state.power) == 20 and not bool(term)
  assert obs[3, 7, 5] == 1 and obs[3, 7, 4] == 0  # the ghost is now edible
  obs, state, r, term, trunc, info = env.step(key, state, RIGHT, params)
  np.testing.assert_array_equal(info["events"], [1, 1, 0, 1, 0])  # food + eat ghost
  np.testing.assert_allclose(float(r), 1 + 5)
  assert int(state.power) == 19 and not bool(term)
  # Regular levels change only when the food is gone: the level is unchanged, the ghost is dead.
  assert int(state.level) == 1 and not bool(state.ghost_alive[0])
  # Same events under the other tasks' weights.
  for task, expected in [("hunt", 0 + 10), ("avoid", 0.1 - 0.1 - 10), ("rush", -0.1)]:
    e = mp.MiniPacman(task, max_ghosts=2)
    p = _frozen_ghosts(e)
    s = _state(e, (3, 6), [(3, 7)], power=20)
    r = e.step(key, s, RIGHT, p)[2]
    np.testing.assert_allclose(float(r), expected, rtol=1e-6)


def test_hunt_level_changes_when_all_ghosts_eaten():
  env = mp.MiniPacman("hunt", max_ghosts=4)
  params = _frozen_ghosts(env)
  state = _state(env, (3, 6), [(3, 7)], power=5, level=2)
  _, state, r, term, _, info = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
  assert bool(info["level_changed"]) and int(state.level) == 3
  # Level 3 has 1 + (3 - 1) // 2 = 2 ghosts, fresh food on all 138 free cells, 2 pills.
  assert int(state.ghost_alive.sum()) == 2
  assert int(state.food.sum()) == 138
  assert 1 <= int(state.pills.sum()) <= 2 and int(state.power) == 0
  cheb = np.abs(np.asarray(state.ghosts[:2]) - np.asarray(state.pacman)).max(-1)
  assert np.all(cheb > 5)


def test_eaten_without_power_terminates_and_resets():
  env = mp.MiniPacman("avoid", max_ghosts=2)
  params = _frozen_ghosts(env)
  state = _state(env, (3, 6), [(3, 7)])
  _, new_state, r, term, trunc, info = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
  np.testing.assert_array_equal(info["events"], [1, 1, 0, 0, 1])
  np.testing.assert_allclose(float(r), 0.1 - 0.1 - 20, rtol=1e-6)
  assert bool(term) and not bool(trunc)
  assert int(new_state.time) == 0 and int(new_state.level) == 1  # automatic reset


def test_swapping_cells_counts_as_meeting():
  env = mp.MiniPacman("regular", max_ghosts=1)
  params = env.default_params.replace(ghost_speed_init=1.0, ghost_speed_increase=0.0)
  # Ghost at (3, 7) heading left, Pacman at (3, 6) moving right: they swap.
  state = _state(env, (3, 6), [(3, 7)], dirs=[G_LEFT])
  _, _, _, term, _, info = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
  assert bool(term) and info["events"][4] == 1


def test_ghost_policy_chases_and_flees():
  env = mp.MiniPacman("regular", max_ghosts=1)
  # Ghost at the 4-way intersection (3, 5), heading right; Pacman at (9, 9): to_pac = (6, 4)/7.21.
  # Non-reversing: right 0.555, up -0.832, down 0.832 -> chase picks down, flee picks up.
  state = _state(env, (9, 9), [(3, 5)], dirs=[G_RIGHT])
  assert int(env.ghost_directions(jax.random.PRNGKey(0), state, 0.0)[0]) == G_DOWN
  powered = state.replace(power=jnp.int32(5))
  assert int(env.ghost_directions(jax.random.PRNGKey(0), powered, 0.0)[0]) == G_UP
  # Corridor (3, 2): heading right keeps going right even with Pacman to the left.
  corridor = _state(env, (3, 1), [(3, 2)], dirs=[G_RIGHT])
  assert int(env.ghost_directions(jax.random.PRNGKey(0), corridor, 0.0)[0]) == G_RIGHT
  # Corridor with its heading blocked (spawned facing up at (3, 2)): the first open
  # non-reversing direction in action order, right.
  blocked = _state(env, (3, 1), [(3, 2)], dirs=[G_UP])
  assert int(env.ghost_directions(jax.random.PRNGKey(0), blocked, 0.0)[0]) == G_RIGHT
  # Bend (1, 1), open right and down, heading left (blocked): right is backwards -> down.
  bend = _state(env, (9, 9), [(1, 1)], dirs=[G_LEFT])
  assert int(env.ghost_directions(jax.random.PRNGKey(0), bend, 0.0)[0]) == G_DOWN


def test_ghost_randomness_only_at_intersections_and_unpowered():
  env = mp.MiniPacman("regular", max_ghosts=1)
  keys = jax.random.split(jax.random.PRNGKey(1), 600)
  state = _state(env, (9, 9), [(3, 5)], dirs=[G_RIGHT])
  picks = np.asarray(jax.vmap(lambda k: env.ghost_directions(k, state, 1.0)[0])(keys))
  counts = np.bincount(picks, minlength=4)
  assert counts[G_LEFT] == 0  # never reverses
  # Each of 3 choices has p = 1/3: 600 draws, sd = sqrt(600 * 2/9) = 11.5; allow 4 sd.
  np.testing.assert_allclose(counts[[G_RIGHT, G_UP, G_DOWN]], 200, atol=46)
  # Powered: no randomness, always flees up.
  powered = state.replace(power=jnp.int32(5))
  picks = np.asarray(jax.vmap(lambda k: env.ghost_directions(k, powered, 1.0)[0])(keys))
  assert np.all(picks == G_UP)
  # Corridor: no randomness, keeps going right.
  corridor = _state(env, (3, 1), [(3, 2)], dirs=[G_RIGHT])
  picks = np.asarray(jax.vmap(lambda k: env.ghost_directions(k, corridor, 1.0)[0])(keys))
  assert np.all(picks == G_RIGHT)


def test_level_settings_schedule():
  params = mp.MiniPacmanParams()
  num, speed, rand = jax.vmap(lambda l: mp.level_settings(l, params, 8))(jnp.arange(1, 8))
  np.testing.assert_array_equal(num, [1, 1, 2, 2, 3, 3, 4])
  np.testing.assert_allclose(speed, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(rand, [0.05] * 7, atol=1e-7)  # constant (released)


def test_standard_map_and_action_order():
  assert mp.WALLS.shape == (15, 19) and int((~mp.WALLS).sum()) == 138
  assert mp.MAZE[1] == "#...#.........#...#"
  assert mp.MAZE[7] == "#......#####......#"
  env = mp.MiniPacman("regular", max_ghosts=1)
  params = _frozen_ghosts(env)
  state = _state(env, (3, 5), [(13, 17)])
  for action, expected in [(NOOP, (3, 5)), (RIGHT, (3, 6)), (UP, (2, 5)), (LEFT, (3, 4)),
                           (DOWN, (4, 5))]:
    s = env.step(jax.random.PRNGKey(0), state, action, params)[1]
    assert tuple(np.asarray(s.pacman)) == expected
  # Walls stop Pacman: (1, 1) up is a wall.
  s = env.step(jax.random.PRNGKey(0), _state(env, (1, 1), [(13, 17)]), UP, params)[1]
  assert tuple(np.asarray(s.pacman)) == (1, 1)


def test_new_level_redraws_pacman_and_spawns_ghosts_far():
  env = mp.MiniPacman("hunt", max_ghosts=8)
  params = env.default_params
  state = _state(env, (3, 5), [(13, 17)])
  keys = jax.random.split(jax.random.PRNGKey(2), 512)
  new = jax.vmap(lambda k: env.new_level(k, state, 7, params))(keys)
  pac = np.asarray(new.pacman)
  assert not mp.WALLS[pac[:, 0], pac[:, 1]].any()
  # 512 uniform draws over 138 cells: expected distinct ~ 138 (1 - e^{-3.7}) = 134; need > 100.
  assert len({tuple(p) for p in pac}) > 100
  cheb = np.abs(np.asarray(new.ghosts) - pac[:, None]).max(-1)
  assert np.all(cheb > 5)
  assert np.all(np.asarray(new.ghost_alive).sum(-1) == 4)  # 1 + (7 - 1) // 2


def test_at_most_one_ghost_eaten_per_step():
  env = mp.MiniPacman("regular", max_ghosts=3)
  params = env.default_params.replace(ghost_speed_init=1.0, ghost_speed_increase=0.0)
  # Two ghosts on (3, 7), Pacman powered at (3, 6) steps right onto them.
  state = _state(env, (3, 6), [(3, 7), (3, 7)], power=10)
  _, state, r, term, _, info = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
  np.testing.assert_array_equal(info["events"], [1, 1, 0, 1, 0])
  np.testing.assert_allclose(float(r), 1 + 5)
  np.testing.assert_array_equal(state.ghost_alive[:2], [False, True])
  # The ghost after the eaten one does not move on that step.
  assert tuple(np.asarray(state.ghosts[1])) == (3, 7) and not bool(term)


def test_rgb_graded_edible_ghosts():
  env = mp.MiniPacman("regular", observation="rgb", max_ghosts=1)
  params = _frozen_ghosts(env)
  state = _state(env, (3, 5), [(3, 9)], pills=[(3, 6)])
  obs, state, *_ = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
  assert obs.dtype == jnp.float32
  np.testing.assert_array_equal(obs[3, 9], [1, 1, 0])  # power 20 / 20
  np.testing.assert_array_equal(obs[3, 6], [0, 1, 0])  # Pacman
  np.testing.assert_array_equal(obs[0, 0], [1, 1, 1])  # wall
  np.testing.assert_array_equal(obs[3, 7], [0, 0, 1])  # food
  np.testing.assert_array_equal(obs[3, 5], [0, 0, 0])  # eaten cell
  for _ in range(10):
    obs, state, *_ = env.step(jax.random.PRNGKey(0), state, NOOP, params)
  np.testing.assert_allclose(obs[3, 9], [1, 0.5, 0])  # power 10 / 20
  for _ in range(10):
    obs, state, *_ = env.step(jax.random.PRNGKey(0), state, NOOP, params)
  np.testing.assert_array_equal(obs[3, 9], [1, 0, 0])  # unpowered ghost


def test_avoid_level_changes_after_128_steps():
  env = mp.MiniPacman("avoid", max_ghosts=1)
  params = _frozen_ghosts(env)
  state = _state(env, (3, 5), [(13, 17)]).replace(level_time=jnp.int32(127))
  _, state, *_ , info = env.step(jax.random.PRNGKey(0), state, NOOP, params)
  assert bool(info["level_changed"]) and int(state.level) == 2


def test_rgb_and_specs_and_bad_input():
  env = mp.MiniPacman(observation="rgb")
  obs, state = env.reset(jax.random.PRNGKey(0))
  assert env.observation_space().contains(np.asarray(obs))
  p = np.asarray(state.pacman)
  np.testing.assert_array_equal(obs[p[0], p[1]], mp.rgb_palette()[4])
  assert env.render(state).shape == (120, 152, 3) and env.render(state).dtype == jnp.uint8
  with pytest.raises(ValueError, match="task must be one of"):
    mp.MiniPacman("chase")
  with pytest.raises(ValueError, match=r"action must be in \[0, 5\)"):
    env.step(jax.random.PRNGKey(0), state, 5)


def _rollout(env, params, key, n):
  def body(state, t):
    # Per-step keys by fold_in, so a shorter rollout is a prefix of a longer one.
    ka, ks = jax.random.split(jax.random.fold_in(kk, t))
    a = jax.random.randint(ka, (), 0, 5)
    obs, state, r, term, trunc, info = env.step(ks, state, a, params)
    return state, (r, term, info["events"], state.pacman)
  kr, kk = jax.random.split(key)
  _, state = env.reset(kr, params)
  return jax.lax.scan(body, state, jnp.arange(n))[1]


def test_determinism_jit_vmap_and_no_retracing():
  env = mp.MiniPacman("regular")
  params = env.default_params
  keys = jax.random.split(jax.random.PRNGKey(0), 256)
  batched = jax.jit(jax.vmap(lambda k: _rollout(env, params, k, 20)))(keys)

  # The loop reference is also the no-retracing check: one trace for 8 calls.
  @jax.jit
  @chex.assert_max_traces(n=1)
  def single(k):
    return _rollout(env, params, k, 20)

  for i in range(0, 256, 32):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[i], y, rtol=1e-6), batched,
                 single(keys[i]))
  chex.clear_trace_counter()
  with jax.disable_jit():
    nojit = _rollout(env, params, keys[5], 3)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x[5, :3], y, rtol=1e-6), batched, nojit)
  # Events add up to the reward under the task weights.
  r, _, events, _ = batched
  np.testing.assert_allclose(r, np.asarray(events) @ mp.TASK_WEIGHTS[0], rtol=1e-6)
  # Random play eats food, so the rollouts are not stuck.
  assert np.asarray(events)[..., 1].sum() > 250
