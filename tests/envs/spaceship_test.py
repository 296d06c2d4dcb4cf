"""Tests of Spaceship: a glide step against Newtonian gravity by hand, fuel, noise, rollouts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import spaceship as ss


def _state(planets, masses, ship=(0.0, 0.0), velocity=(0.0, 0.1), mothership=(1.0, 1.0)):
  f = lambda x: jnp.asarray(x, jnp.float32)
  return ss.SpaceshipState(f(ship), f(velocity), f(mothership), f(planets), f(masses),
                           jnp.int32(0))


def test_one_step_against_hand_computed_newton():
  env = ss.Spaceship(num_planets=1, glide_steps=1)
  params = ss.SpaceshipParams(gravity=1e-3, dt=0.5, softening=0.0,
                              control_noise=0.0, fuel_cost=0.5, fuel_threshold=0.05)
  state = _state([[1.0, 0.0]], [2.0])
  obs, new, reward, term, trunc, info = env.step(jax.random.PRNGKey(0), state,
                                                 jnp.array([0.2, 0.0]), params)
  # Impulse: v = (0.2, 0.1). Gravity at the origin: G m (p - x) / |p - x|^3 = (0.002, 0).
  # v <- v + dt a = (0.201, 0.1); x <- x + dt v = (0.1005, 0.05).
  np.testing.assert_allclose(info["path"][-1], [0.1005, 0.05], rtol=1e-6)
  np.testing.assert_allclose(info["fuel"], 0.5 * (0.2 - 0.05), rtol=1e-6)
  distance = np.hypot(1 - 0.1005, 1 - 0.05)
  np.testing.assert_allclose(float(reward), -(0.075 + distance), rtol=1e-6)
  assert bool(term) and not bool(trunc)


def test_acceleration_matches_float64_sum_over_five_planets(x64):
  rng = np.random.default_rng(0)
  planets, masses, x = rng.uniform(-1, 1, (5, 2)), rng.uniform(0.5, 2, 5), rng.uniform(-1, 1, 2)
  expected = sum(1e-3 * m * (p - x) / np.linalg.norm(p - x) ** 3 for p, m in zip(planets, masses))
  got = ss.acceleration(jnp.asarray(x), jnp.asarray(planets), jnp.asarray(masses), 1e-3, 0.0)
  np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_thrust_below_threshold_is_free_and_noise_is_multiplicative():
  params = ss.SpaceshipParams(control_noise=0.1)
  assert float(ss.fuel(jnp.array([0.03, 0.0]), params)) == 0.0
  env = ss.Spaceship(num_planets=2, glide_steps=0)
  state = _state([[0.5, 0.5], [-0.5, 0.5]], [1.0, 1.0], velocity=(0.0, 0.0))
  thrust = jnp.array([0.4, -0.2])
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  dv = np.asarray(jax.vmap(lambda k: env.simulate(k, state, thrust, params)[1])(keys))
  # dv = F (1 + 0.1 eps): mean F, sd 0.1 |F_i| per axis. SE of the mean = sd / sqrt(4000).
  sd = 0.1 * np.abs(np.asarray(thrust))
  for i in range(2):
    np.testing.assert_allclose(dv[:, i].mean(), thrust[i], atol=4 * sd[i] / np.sqrt(4000))
  np.testing.assert_allclose(dv.std(0), sd, rtol=0.05)  # SE of an sd is sd / sqrt(2n) ~ 1.1%


def test_reset_step_vmap_render():
  env = ss.Spaceship()
  params = env.default_params
  keys = jax.random.split(jax.random.PRNGKey(1), 256)
  obs, states = jax.vmap(lambda k: env.reset(k, params))(keys)
  assert obs.shape == (256, 21) and np.all(np.isfinite(obs))
  d = np.linalg.norm(np.asarray(states.ship)[:, None] - np.asarray(states.planets), axis=-1)
  assert np.mean(d.min(-1) >= params.min_separation) > 0.95
  step = jax.vmap(lambda k, s: env.step(k, s, jnp.array([0.1, 0.0]), params))
  out = step(keys, states)
  assert np.all(np.asarray(out[5]["distance"]) >= 0) and np.all(np.asarray(out[3]))
  render = jax.jit(lambda s, p: env.render(s, params, path=p))
  img = render(jax.tree.map(lambda x: x[0], states), out[5]["path"][0])
  assert img.shape == (64, 64, 3) and img.dtype == jnp.uint8
  assert np.any(np.all(np.asarray(img) == [230, 40, 40], -1))  # the ship is drawn
  with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
    env.step(keys[0], jax.tree.map(lambda x: x[0], states), jnp.zeros(3), params)
  with pytest.raises(ValueError, match="floating"):
    env.step(keys[0], jax.tree.map(lambda x: x[0], states), jnp.zeros(2, jnp.int32), params)
