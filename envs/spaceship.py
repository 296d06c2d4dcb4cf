"""Spaceship (IBP, Pascanu et al. 2017, Sec. 4.1): one thrust, then a glide under gravity.

A ship (unit mass) starts at a random position and velocity among 5 planets; the agent chooses a
single thrust vector `F` (the action, shape (2,)). The thrust acts as an impulse `dv = F'` with
multiplicative control noise `F' = F * (1 + sigma eps)`, `eps ~ N(0, I)`; the ship then glides
for `glide_steps` steps of Newtonian gravity, integrated by semi-implicit Euler:

    a(x) = sum_i G m_i (p_i - x) / (|p_i - x|^2 + s^2)^{3/2}      (s: softening, 0 = Newton)
    v <- v + dt a(x),   x <- x + dt v

The episode ends after the glide (one step per episode). Loss = fuel + final distance to the
mothership, with fuel = `fuel_cost * max(0, |F| - fuel_threshold)` (thrust up to the threshold is
free); the reward is the negative loss. `simulate` returns the whole glide for imagination and
plots. Observation: ship position and velocity, mothership position, planets' positions and
masses, flattened `(6 + 3 * num_planets,)` float32.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from envs import environment, spaces


@flax.struct.dataclass
class SpaceshipState:
  ship: jax.Array        # (2,) position
  velocity: jax.Array    # (2,)
  mothership: jax.Array  # (2,)
  planets: jax.Array     # (P, 2)
  masses: jax.Array      # (P,)
  time: jax.Array        # int32


@flax.struct.dataclass
class SpaceshipParams:
  gravity: float = 1.0e-3
  mass_range: tuple = (0.5, 2.0)
  arena: float = 1.0            # objects in [-arena, arena]^2
  min_separation: float = 0.25  # ship and mothership at least this far from every planet
  max_initial_speed: float = 0.05
  dt: float = 0.5
  softening: float = 0.05
  control_noise: float = 0.05
  fuel_cost: float = 0.5
  fuel_threshold: float = 0.05
  max_thrust: float = 1.0


def acceleration(x: jax.Array, planets: jax.Array, masses: jax.Array, gravity,
                 softening) -> jax.Array:
  """Gravitational acceleration `(2,)` at `x` from planets `(P, 2)` with masses `(P,)`."""
  d = planets - x
  r2 = jnp.sum(d * d, -1) + softening ** 2
  return jnp.sum((gravity * masses / r2 ** 1.5)[:, None] * d, 0)


def glide_step(x, v, planets, masses, params: SpaceshipParams):
  """One semi-implicit Euler step of the glide: returns `(x, v)`."""
  v = v + params.dt * acceleration(x, planets, masses, params.gravity, params.softening)
  return x + params.dt * v, v


def fuel(thrust: jax.Array, params: SpaceshipParams) -> jax.Array:
  """Fuel spent on a thrust: `fuel_cost * max(0, |F| - fuel_threshold)`."""
  return params.fuel_cost * jnp.maximum(jnp.linalg.norm(thrust) - params.fuel_threshold, 0.0)


class Spaceship(environment.Environment):
  """IBP's spaceship task; see the module docstring.

  Args:
    num_planets: planets per episode (5 in IBP).
    glide_steps: integration steps of the glide after the thrust (a shape, hence not a param).
  """

  def __init__(self, num_planets: int = 5, glide_steps: int = 12):
    if num_planets < 1:
      raise ValueError(f"num_planets must be >= 1, got {num_planets}")
    if glide_steps < 0:
      raise ValueError(f"glide_steps must be >= 0, got {glide_steps}")
    self.num_planets, self.glide_steps = num_planets, glide_steps

  @property
  def default_params(self) -> SpaceshipParams:
    return SpaceshipParams()

  def action_space(self, params=None) -> spaces.Box:
    mt = (params or self.default_params).max_thrust
    return spaces.Box(-mt, mt, (2,), jnp.float32)

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(-jnp.inf, jnp.inf, (6 + 3 * self.num_planets,), jnp.float32)

  def reset_env(self, key, params: SpaceshipParams):
    k_p, k_m, k_s, k_t, k_v = jax.random.split(key, 5)
    a = params.arena
    planets = jax.random.uniform(k_p, (self.num_planets, 2), minval=-a, maxval=a)
    masses = jax.random.uniform(k_m, (self.num_planets,), minval=params.mass_range[0],
                                maxval=params.mass_range[1])

    def far_point(k):
      # 16 candidates; keep the first far enough from every planet (else the farthest).
      cand = jax.random.uniform(k, (16, 2), minval=-a, maxval=a)
      dmin = jnp.min(jnp.linalg.norm(cand[:, None] - planets[None], axis=-1), -1)
      ok = dmin >= params.min_separation
      return cand[jnp.where(jnp.any(ok), jnp.argmax(ok), jnp.argmax(dmin))]

    ship, mothership = far_point(k_s), far_point(k_t)
    velocity = jax.random.uniform(k_v, (2,), minval=-1.0, maxval=1.0) * params.max_initial_speed
    state = SpaceshipState(ship, velocity, mothership, planets, masses, jnp.int32(0))
    return self.get_obs(state), state

  def simulate(self, key, state: SpaceshipState, thrust, params: SpaceshipParams):
    """The glide after `thrust`: positions `(glide_steps + 1, 2)` (start included), final `v`."""
    thrust = jnp.clip(thrust, -params.max_thrust, params.max_thrust)
    noise = jax.random.normal(key, (2,)) * params.control_noise
    v = state.velocity + thrust * (1.0 + noise)

    def body(carry, _):
      x, v = glide_step(*carry, state.planets, state.masses, params)
      return (x, v), x

    (x, v), path = jax.lax.scan(body, (state.ship, v), None, length=self.glide_steps)
    return jnp.concatenate([state.ship[None], path]), v

  def step_env(self, key, state, action, params: SpaceshipParams):
    path, v = self.simulate(key, state, action, params)
    spent = fuel(jnp.clip(action, -params.max_thrust, params.max_thrust), params)
    distance = jnp.linalg.norm(path[-1] - state.mothership)
    state = state.replace(ship=path[-1], velocity=v, time=state.time + 1)
    info = {"fuel": spent, "distance": distance, "path": path}
    done = jnp.bool_(True)
    return self.get_obs(state), state, -(spent + distance), done, jnp.bool_(False), info

  def get_obs(self, state: SpaceshipState) -> jax.Array:
    return jnp.concatenate([state.ship, state.velocity, state.mothership,
                            state.planets.reshape(-1), state.masses]).astype(jnp.float32)

  def render(self, state: SpaceshipState, params=None, size: int = 64, path=None) -> jax.Array:
    """RGB frame `(size, size, 3)` uint8: planets (grey, radius by mass), mothership (green),
    ship (red) and, if given, a path `(T, 2)` (yellow)."""
    params = params or self.default_params
    a = params.arena
    c = (jnp.arange(size) + 0.5) / size * 2 * a - a
    gx, gy = jnp.meshgrid(c, -c)  # row 0 is the top (largest y)
    pix = jnp.stack([gx, gy], -1)
    img = jnp.zeros((size, size, 3), jnp.uint8)

    def disc(img, centre, radius, color):
      inside = jnp.sum((pix - centre) ** 2, -1) <= radius ** 2
      return jnp.where(inside[..., None], jnp.asarray(color, jnp.uint8), img)

    px = 2 * a / size
    for i in range(self.num_planets):
      img = disc(img, state.planets[i], (2 + state.masses[i]) * px, (150, 150, 150))
    if path is not None:
      for t in range(path.shape[0]):
        img = disc(img, path[t], px, (230, 210, 0))
    img = disc(img, state.mothership, 2.5 * px, (40, 220, 40))
    return disc(img, state.ship, 1.8 * px, (230, 40, 40))
