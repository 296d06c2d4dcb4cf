"""Spaceship Task 2.0 (IBP Sec. 3.1): each rule on a hand-worked case, reset ranges, episode
length, the integrator's energy on a two-body orbit, jit/vmap determinism, bad input by name."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import spaceship as ss

NO_NOISE = dict(control_noise=0.0)


def _state(ship=(0.8, 0.0), velocity=(0.0, 0.0), ship_mass=0.3, planets=((0.5, 0.5),),
           masses=(0.0,), dtype=jnp.float32):
  f = lambda x: jnp.asarray(x, dtype)
  return ss.SpaceshipState(f(ship), f(velocity), f(ship_mass), f((0.0, 0.0)), f(planets),
                           f(masses), f(0.0), jnp.int32(0))


# ---- rules by hand ----------------------------------------------------------------------------

@pytest.mark.parametrize("price", [0.0002, 0.0004])
def test_fuel_is_free_up_to_a_force_of_8_then_linear_in_the_price(price):
  params = ss.SpaceshipParams(fuel_price=price)
  cost = lambda f: float(ss.fuel(jnp.asarray(f, jnp.float32), params))
  assert cost([3.0, 4.0]) == 0.0                        # |F| = 5 < 8
  assert cost([0.0, -8.0]) == 0.0                       # |F| = 8, at the threshold
  np.testing.assert_allclose(cost([6.0, 8.0]), 2.0 * price, rtol=1e-6)      # |F| = 10
  np.testing.assert_allclose(cost([-12.0, 16.0]), 12.0 * price, rtol=1e-6)  # |F| = 20
  # The magnitude, not the L1 norm (|6| + |8| = 14 would cost 6 * price).
  assert cost([6.0, 8.0]) < 3.0 * price


def test_loss_terms_have_finite_gradients_at_zero_for_svg():
  # |F| and |x - x*| are not differentiable at 0; the loss terms take the zero subgradient there
  # (a NaN would poison the planner's pathwise gradient on a zero thrust or a perfect landing).
  params = ss.SpaceshipParams()
  np.testing.assert_array_equal(jax.grad(ss.fuel)(jnp.zeros(2), params), [0.0, 0.0])
  np.testing.assert_array_equal(
      jax.grad(ss.distance_loss)(jnp.zeros(2), jnp.zeros(2), params), [0.0, 0.0])
  np.testing.assert_allclose(jax.grad(ss.fuel)(jnp.array([6.0, 8.0]), params),
                             [0.0002 * 0.6, 0.0002 * 0.8], rtol=1e-6)
  np.testing.assert_allclose(
      jax.grad(ss.distance_loss)(jnp.array([0.3, -0.4]), jnp.zeros(2), params), [0.6, -0.8],
      rtol=1e-6)


def test_thrust_acts_on_the_first_of_12_steps_only_as_F_over_m():
  env = ss.Spaceship(num_planets=1)
  params = ss.SpaceshipParams(**NO_NOISE)
  state = _state(ship=(0.8, 0.0), ship_mass=0.2, masses=(0.0,))  # a massless planet: no gravity
  path, v = env.simulate(jax.random.PRNGKey(0), state, jnp.array([1.0, 0.0]), params)
  # Step 1: v = dt F / m = 0.05 * 1 / 0.2 = 0.25; then 11 steps at constant v: x_k = 0.8 + 0.0125 k.
  # (A thrust on all 12 steps would end at v = 3.0 and x = 0.8 + 0.975.)
  assert path.shape == (13, 2)
  np.testing.assert_allclose(v, [0.25, 0.0], rtol=1e-6)
  np.testing.assert_allclose(path[:, 0], 0.8 + 0.0125 * np.arange(13), rtol=1e-6)
  np.testing.assert_allclose(path[:, 1], 0.0, atol=1e-7)


def test_one_substep_of_gravity_by_hand():
  # One planet of mass 0.4 at (0.6, 0.8), softening s = 0.1, ship at rest at the origin:
  # a = G M d / (|d|^2 + s^2)^{3/2} = 0.4 (0.6, 0.8) / 1.01^1.5; v = dt a, x = dt v.
  params = ss.SpaceshipParams()
  a = 0.4 * np.array([0.6, 0.8]) / 1.01 ** 1.5
  x, v = ss.substep(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2), jnp.array([[0.6, 0.8]]),
                    jnp.array([0.4]), params)
  np.testing.assert_allclose(v, 0.05 * a, rtol=1e-6)
  np.testing.assert_allclose(x, 0.05 * 0.05 * a, rtol=1e-6)


@pytest.mark.parametrize("distance_loss,expected", [("l2", 0.50076985), ("squared", 0.25076985)])
def test_task_loss_of_a_two_action_episode_by_hand(distance_loss, expected):
  env = ss.Spaceship(num_planets=1)
  params = ss.SpaceshipParams(num_actions=2, distance_loss=distance_loss, **NO_NOISE)
  state = _state(ship=(0.8, 0.0), ship_mass=0.3, masses=(0.0,))
  # Action 1: F = (-10, 0), |F| = 10: fuel 2 * 0.0002; v = 0.05 F / 0.3 = (-5/3, 0), each action
  # moves the ship by 12 dt v = 0.6 v: x = (-0.2, 0).
  _, s1, r1, t1, _, info1 = env.step_env(jax.random.PRNGKey(0), state, jnp.array([-10.0, 0.0]),
                                         params)
  np.testing.assert_allclose(s1.ship, [-0.2, 0.0], atol=1e-6)
  np.testing.assert_allclose(float(r1), -0.0004, rtol=1e-5)
  assert not bool(t1)
  # Action 2: F = (9, 4), |F| = sqrt(97): fuel (sqrt(97) - 8) * 0.0002 = 0.00036985; dv = (1.5,
  # 2/3), v = (-1/6, 2/3), x = (-0.2, 0) + 0.6 v = (-0.3, 0.4): distance 0.5 (squared 0.25).
  _, s2, r2, t2, _, info2 = env.step_env(jax.random.PRNGKey(1), s1, jnp.array([9.0, 4.0]), params)
  np.testing.assert_allclose(s2.ship, [-0.3, 0.4], atol=1e-6)
  np.testing.assert_allclose(float(info2["distance"]), 0.5, rtol=1e-5)
  assert bool(t2)
  # Task loss = 0.0004 + 0.00036985 + distance term; the rewards sum to minus it.
  np.testing.assert_allclose(float(info2["task_loss"]), expected, rtol=1e-5)
  np.testing.assert_allclose(float(r1 + r2), -expected, rtol=1e-5)


def test_control_noise_is_multiplicative_per_component():
  env = ss.Spaceship(num_planets=1)
  params = ss.SpaceshipParams(control_noise=0.1)
  state = _state(ship_mass=0.05, masses=(0.0,))
  thrust = jnp.array([0.4, -0.2])
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  # With dt = m = 0.05 the velocity after the action is v = dt F' / m = F'.
  thrust_seen = np.asarray(jax.vmap(lambda k: env.simulate(k, state, thrust, params)[1])(keys))
  # F' = F (1 + 0.1 eps): mean F, sd 0.1 |F_i| per axis; 4 SE on the mean, 5% (4.5 SE) on the sd.
  sd = 0.1 * np.abs(np.asarray(thrust))
  np.testing.assert_allclose(thrust_seen.mean(0), thrust, atol=4 * sd.max() / np.sqrt(4000))
  np.testing.assert_allclose(thrust_seen.std(0), sd, rtol=0.05)


# ---- scenes and episodes ----------------------------------------------------------------------

def test_initial_states_over_many_resets_follow_the_paper():
  env = ss.Spaceship()
  params = env.default_params
  keys = jax.random.split(jax.random.PRNGKey(3), 4000)
  obs, s = jax.jit(jax.vmap(lambda k: env.reset(k, params)))(keys)
  assert obs.shape == (4000, 23) and obs.dtype == jnp.float32

  def in_range(x, lo, hi):
    x = np.asarray(x)
    # Inside the interval, and covering it: with 4000 (or 20000) uniform draws, the chance that
    # no draw falls within 1% of an end is 0.99^4000 < 1e-17.
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
    assert x.min() < lo + 0.01 * (hi - lo) and x.max() > hi - 0.01 * (hi - lo)

  in_range(np.linalg.norm(s.ship, axis=-1), 0.6, 1.0)
  in_range(s.ship_mass, 0.004, 0.36)
  in_range(np.linalg.norm(s.planets, axis=-1), 0.4, 1.0)
  in_range(s.masses, 0.08, 0.4)
  assert s.planets.shape == (4000, 5, 2)
  assert np.all(np.asarray(s.velocity) == 0.0)            # at rest
  assert np.all(np.asarray(s.mothership) == 0.0)          # fixed at the centre
  assert np.all(np.asarray(s.time) == 0) and np.all(np.asarray(s.fuel) == 0.0)
  # Directions are uniform: the mean unit vector of 4000 angles has SE 1/sqrt(2 * 4000) = 0.011.
  unit = np.asarray(s.ship) / np.linalg.norm(s.ship, axis=-1, keepdims=True)
  assert np.all(np.abs(unit.mean(0)) < 4 * 0.0112)


@pytest.mark.parametrize("num_actions", [1, 2, 3])
def test_an_episode_lasts_num_actions_external_actions(num_actions):
  env, params = envs.make("spaceship", params={"num_actions": num_actions})
  step = jax.jit(env.step)
  obs, state = env.reset(jax.random.PRNGKey(0), params)
  assert float(obs[-1]) == num_actions  # actions left
  flags = []
  for t in range(2 * num_actions):
    obs, state, reward, terminated, truncated, info = step(
        jax.random.PRNGKey(10 + t), state, jnp.array([1.0, 0.5]), params)
    flags.append(bool(terminated))
    assert not bool(truncated)
    # |F| < 8 costs no fuel: the reward is 0 until the last action pays the final distance.
    expected = -float(info["distance"]) if bool(terminated) else 0.0
    np.testing.assert_allclose(float(reward), expected, rtol=1e-6, atol=0.0)
    # Auto-reset after the last action: a fresh scene, time 0, actions left = num_actions.
    assert int(state.time) == (t + 1) % num_actions
    assert float(obs[-1]) == num_actions - (t + 1) % num_actions
  assert flags == ([False] * (num_actions - 1) + [True]) * 2


def test_energy_of_a_two_body_circular_orbit_is_kept_by_the_integrator(x64):
  # A ship on the circular orbit of radius R = 0.5 about one planet (M = 0.4) at the default
  # G = 1, s = 0.1, dt = 0.05: v = R sqrt(G M / (R^2 + s^2)^{3/2}), period ~3.4 (68 steps). 100
  # external actions of zero thrust = 1200 steps, ~18 orbits.
  env = ss.Spaceship(num_planets=1)
  params = ss.SpaceshipParams(**NO_NOISE)
  r, m = 0.5, 0.4
  speed = r * np.sqrt(m / (r ** 2 + 0.01) ** 1.5)
  state = _state(ship=(r, 0.0), velocity=(0.0, speed), planets=((0.0, 0.0),), masses=(m,),
                 dtype=jnp.float64)

  def act(s, key):
    s = env.step_env(key, s, jnp.zeros(2, jnp.float64), params)[1]
    return s, (ss.energy(s.ship, s.velocity, s.planets, s.masses, params), s.ship)

  keys = jax.random.split(jax.random.PRNGKey(0), 100)
  _, (e, x) = jax.jit(lambda s: jax.lax.scan(act, s, keys))(state)
  e0 = float(ss.energy(state.ship, state.velocity, state.planets, state.masses, params))
  rel = np.abs(np.asarray(e) - e0) / abs(e0)
  # Symplectic Euler: an O(dt) oscillation of the energy, no drift (measured: 0.70% at most,
  # 0.06% drift). Stated tolerances: the energy after every action within 1% of the start, and
  # the last 10 actions' mean within 0.2% of the first 10's.
  assert rel.max() < 0.01, rel.max()
  assert abs(np.mean(e[-10:]) - np.mean(e[:10])) / abs(e0) < 0.002
  np.testing.assert_allclose(np.linalg.norm(x, axis=-1), r, rtol=0.05)  # still on the orbit
  # The bound can fail: explicit Euler (x += dt v before v += dt a) on the same orbit gains
  # energy every step: +43% after 100 steps, +75% after 1200.
  xe, ve = np.array([r, 0.0]), np.array([0.0, speed])
  drift = []
  for _ in range(1200):
    a = -m * xe / (xe @ xe + 0.01) ** 1.5
    xe, ve = xe + 0.05 * ve, ve + 0.05 * a
    drift.append(0.5 * ve @ ve - m / np.sqrt(xe @ xe + 0.01))
  assert abs(drift[-1] - e0) / abs(e0) > 0.5


def test_deterministic_under_jit_and_vmap():
  env = ss.Spaceship()
  params = env.default_params
  keys = jax.random.split(jax.random.PRNGKey(7), 8)
  thrust = jnp.array([[3.0, -2.0]] * 4 + [[12.0, 5.0]] * 4)

  def run(key, f):
    obs, s = env.reset(key, params)
    out = env.step(jax.random.fold_in(key, 1), s, f, params)
    return obs, out[0], out[2], out[5]["path"]

  batched = jax.jit(jax.vmap(run))(keys, thrust)
  for i in (0, 7):  # one lane of each thrust, without jit or vmap
    single = run(keys[i], thrust[i])
    for b, s in zip(batched, single):
      np.testing.assert_allclose(b[i], s, rtol=2e-5, atol=1e-6)
  again = jax.jit(jax.vmap(run))(keys, thrust)
  for b, a in zip(batched, again):
    np.testing.assert_array_equal(b, a)
  # A different key gives a different scene.
  assert not np.allclose(batched[0][0], batched[0][1])


def test_render_draws_the_ship():
  env = ss.Spaceship()
  obs, state = env.reset(jax.random.PRNGKey(1))
  _, _, _, _, _, info = env.step(jax.random.PRNGKey(2), state, jnp.array([0.1, 0.0]))
  img = jax.jit(lambda s, p: env.render(s, path=p))(state, info["path"])
  assert img.shape == (64, 64, 3) and img.dtype == jnp.uint8
  assert np.any(np.all(np.asarray(img) == [230, 40, 40], -1))


# ---- bad input --------------------------------------------------------------------------------

def test_bad_input_is_refused_by_name():
  env = ss.Spaceship()
  params = env.default_params
  key = jax.random.PRNGKey(0)
  _, state = env.reset(key, params)
  with pytest.raises(ValueError, match=r"action must have shape \(2,\), got \(3,\)"):
    env.step(key, state, jnp.zeros(3), params)
  with pytest.raises(ValueError, match="action must have a floating dtype"):
    env.step(key, state, jnp.zeros(2, jnp.int32), params)
  with pytest.raises(ValueError, match=r"action \(the thrust\) must be finite"):
    env.step(key, state, jnp.array([jnp.nan, 0.0]), params)
  with pytest.raises(ValueError, match="state.velocity must be finite"):
    env.step(key, state.replace(velocity=jnp.array([jnp.inf, 0.0])), jnp.zeros(2), params)
  with pytest.raises(ValueError, match="state.ship must be finite"):
    env.step(key, state.replace(ship=jnp.array([0.0, jnp.nan])), jnp.zeros(2), params)
  for n in (0, 4, 2.5):
    with pytest.raises(ValueError, match=rf"params.num_actions must be one of \(1, 2, 3\).*{n}"):
      env.reset(key, params.replace(num_actions=n))
  with pytest.raises(ValueError, match=r"params.num_actions must be one of \(1, 2, 3\)"):
    envs.make("spaceship", params={"num_actions": 5})[0].step(
        key, state, jnp.zeros(2), params.replace(num_actions=5))
  with pytest.raises(ValueError, match=r"params.distance_loss must be one of \('l2', 'squared'\)"):
    env.reset(key, params.replace(distance_loss="l1"))
  with pytest.raises(ValueError, match="params.fuel_price must be >= 0"):
    env.reset(key, params.replace(fuel_price=-0.0002))
  with pytest.raises(ValueError, match="params.dt must be > 0"):
    env.reset(key, params.replace(dt=0.0))
  with pytest.raises(ValueError, match="num_planets must be an integer >= 1"):
    ss.Spaceship(num_planets=0)
  # Inside jit the values are unknown: a non-finite thrust shows as a NaN reward, not silence.
  out = jax.jit(env.step)(key, state, jnp.array([jnp.nan, 0.0]), params)
  assert np.isnan(float(out[2]))
