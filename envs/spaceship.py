"""Spaceship Task 2.0 (IBP, Pascanu et al. 2017, Sec. 3.1): pilot a ship home among 5 planets.

Sources: [P] the IBP paper's Sec. 3.1 ("Spaceship Task 2.0", adapted from Hamrick et al. 2017's
spaceship task); [O] our choice where the paper gives no value (reason given beside it).

Scene, drawn at each reset:
- [P] The ship starts at rest (velocity 0) at a random position at radius 0.6-1.0 from the
  centre, with a random mass in [0.004, 0.36]. [O] Radius, angle and mass are uniform on their
  intervals (the paper names only the intervals).
- [P] The mothership is fixed ("always set to" one position); [O] at the origin `(0, 0)`: the
  start radii are measured from the centre, and Hamrick et al.'s mothership sat near the
  centre of the system.
- [P] 5 static planets (`num_planets`) at radius 0.4-1.0 with masses in [0.08, 0.4]; [O] uniform
  radius, angle and mass, drawn independently (planets may overlap each other or the ship's
  start; the softening below keeps the force finite there).

Dynamics:
- [P] An external action is a thrust force `F` (shape (2,)); it "accelerates the velocity by
  F = m a", i.e. the thrust's acceleration is `F' / m` with `m` the ship's mass.
- [P] One action lasts 12 simulation steps: the thrust acts on the first step only, then the ship
  moves ballistically for 11 steps (`glide_steps`) under the planets' gravity. [P] Planets and
  mothership never move. The ship keeps its velocity from one action to the next.
- [P] Control noise is multiplicative: [O] `F' = F * (1 + control_noise * eps)`, `eps ~ N(0, I)`
  drawn per component (so it perturbs both magnitude and direction), `control_noise = 0.05`:
  it moves the noise-free optimal single thrust's end point from the mothership to a median
  distance of 0.033 (mean 0.074), a floor well below the straight aim's 0.37, so planning pays
  while predictions stay only as precise as the noise allows (the paper's stated purpose).
- [O] Gravity: `a(x) = sum_i G M_i (p_i - x) / (|p_i - x|^2 + s^2)^{3/2}` (Plummer-softened
  Newton; the acceleration does not depend on the ship's mass), `G = gravity = 1.0`,
  `s = softening = 0.1`. G = 1 makes a typical planet (M = 0.24 at distance 0.5) displace a
  resting ship by ~0.18 over one action (12 steps), a fifth of the start radius: steering
  around planets matters (see "Non-trivial" below: aiming straight at the mothership leaves a
  mean distance of 0.37, where an optimised thrust reaches 0), yet the dynamics stay plannable
  (with G = 0.3 the straight aim already gets within 0.12, planets barely matter; with G = 3 an
  optimiser gets within 0.05 of the mothership on only 61% of scenes). s = 0.1 keeps the force
  finite where a ship starts on or passes through a planet (the paper's planets are points),
  and keeps the free-fall time at the softening radius, `sqrt(s^3 / (G M_max)) = 0.05`, no
  shorter than one step, so close passes are resolved.
- [O] Integrator: semi-implicit (symplectic) Euler, `v <- v + dt (a(x) + thrust/m - damping v)`,
  `x <- x + dt v`, with `dt = 0.05`. Symplectic, so with no damping the energy of an orbit
  oscillates without drifting (tested on a two-body circular orbit). dt = 0.05 makes the free
  thrust (`|F| <= 8`, see fuel) move the heaviest ship (m = 0.36) by `12 dt^2 8 / m = 0.67`
  in one action, about the start radius: the paper's fuel threshold of 8 then separates cheap
  manoeuvres from expensive ones on the scene's scale (with dt = 0.01 every useful thrust of a
  heavy ship would cost fuel; with dt = 0.2 the free thrust alone would move it 10.7 units).
- [O] `damping = 0.0`: the paper calls the motion between thrusts ballistic, and no drag keeps
  the dynamics conservative (the energy test); the field exists for Hamrick-style variants.
- [O] `max_thrust = 50.0` per component (thrusts are clipped to it, fuel charged on the clipped
  thrust). The paper sets no bound, but a Box action space needs one; 50 is twice the force
  that carries the heaviest ship 2 units (the arena's width) in one action, and fuel above it
  (>= 0.0084 at the lower price) is already a visible part of the loss.

Loss (reward = -loss, so an episode's return is minus the task loss):
- [P] Fuel per action `max(0, |F| - 8) * fuel_price`, `fuel_price = 0.0002` (default) or
  `0.0004` (both used in the paper); [O] on the commanded (noise-free, clipped) thrust, since
  the pilot pays for what it asks for. Charged at every action.
- [P] Task loss = fuel over the episode + loss of the final distance to the mothership, paid at
  the end (last action). `distance_loss = "l2"` (default): the Euclidean distance `|x - x*|`,
  because the paper names it "the final L2 distance to the mothership" (twice, Sec. 3.1 and
  its training section), a distance; `"squared"`: `|x - x*|^2`, the mean-squared error that Hamrick
  et al. 2017 used for the same task, for comparison.
- [P] Episodes of `num_actions` = 1, 2 or 3 external actions (default 3, the setting of the
  paper's Fig. 3; validated). `terminated` is true after the last action.

Observation (float32, `(8 + 3 * num_planets,)`): ship position (2), velocity (2), mass (1),
mothership position (2), planets' positions (2P) and masses (P), actions left (1).
`info`: `fuel` (this action), `distance` (Euclidean, after the action), `task_loss` (the
episode's fuel + final distance loss; on non-final steps the fuel so far), `path` (positions of
the action's 12 steps, start included, `(glide_steps + 2, 2)`).

Non-trivial [O] (measured at the defaults with one action, 2,000 scenes, key 0): no thrust ends
at mean distance 0.66 (the ship falls among the planets); aiming straight at the mothership as
if there were no planets (`F = -x0 m / (12 dt^2)`) at mean 0.37 (median 0.31); 300 Adam steps
(rate 0.3, from the straight aim) on squared distance + fuel through the true simulator (noise
off) at median 0.000, mean 0.041, within 0.05 on 89% of scenes, with a median |F| of 4.3 (13%
of optimal thrusts pay fuel, none reach 50).

Bad input raises `ValueError` naming the field: an action not of shape (2,) or not floating,
non-finite actions or states (when concrete; inside `jit` a NaN propagates to the reward), a
`num_actions` not in {1, 2, 3}, an unknown `distance_loss`, a negative price, noise or step.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs import environment, spaces

NUM_ACTIONS_ALLOWED = (1, 2, 3)
DISTANCE_LOSSES = ("l2", "squared")


@flax.struct.dataclass
class SpaceshipState:
  ship: jax.Array        # (2,) position
  velocity: jax.Array    # (2,)
  ship_mass: jax.Array   # () the thrust's acceleration is F / ship_mass
  mothership: jax.Array  # (2,) fixed at the origin
  planets: jax.Array     # (P, 2) static
  masses: jax.Array      # (P,) planets' masses
  fuel: jax.Array        # () fuel cost paid so far this episode
  time: jax.Array        # int32, external actions taken so far


@flax.struct.dataclass
class SpaceshipParams:
  # Episode and loss ([P] unless marked; see the module docstring).
  num_actions: int = flax.struct.field(pytree_node=False, default=3)
  distance_loss: str = flax.struct.field(pytree_node=False, default="l2")
  fuel_price: float = 0.0002
  fuel_threshold: float = 8.0
  # Scene ([P] intervals).
  ship_radius: tuple = (0.6, 1.0)
  ship_mass: tuple = (0.004, 0.36)
  planet_radius: tuple = (0.4, 1.0)
  planet_mass: tuple = (0.08, 0.4)
  # Physics and control ([O]).
  gravity: float = 1.0
  softening: float = 0.1
  dt: float = 0.05
  damping: float = 0.0
  control_noise: float = 0.05
  max_thrust: float = 50.0


def _concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def check_params(params: SpaceshipParams) -> None:
  """Raises `ValueError` naming the bad field (numeric fields only when concrete)."""
  if params.num_actions not in NUM_ACTIONS_ALLOWED or isinstance(params.num_actions, bool):
    raise ValueError(f"params.num_actions must be one of {NUM_ACTIONS_ALLOWED} external actions "
                     f"per episode; got {params.num_actions!r}")
  if params.distance_loss not in DISTANCE_LOSSES:
    raise ValueError(f"params.distance_loss must be one of {DISTANCE_LOSSES}; got "
                     f"{params.distance_loss!r}")
  for name in ("fuel_price", "fuel_threshold", "control_noise", "damping", "softening"):
    value = getattr(params, name)
    if _concrete(value) and not float(value) >= 0.0:
      raise ValueError(f"params.{name} must be >= 0; got {value!r}")
  for name in ("dt", "max_thrust"):
    value = getattr(params, name)
    if _concrete(value) and not float(value) > 0.0:
      raise ValueError(f"params.{name} must be > 0; got {value!r}")


def acceleration(x: jax.Array, planets: jax.Array, masses: jax.Array, gravity,
                 softening) -> jax.Array:
  """Gravitational acceleration `(2,)` at `x` from planets `(P, 2)` with masses `(P,)`."""
  d = planets - x
  r2 = jnp.sum(d * d, -1) + softening ** 2
  return jnp.sum((gravity * masses / r2 ** 1.5)[:, None] * d, 0)


def potential(x: jax.Array, planets: jax.Array, masses: jax.Array, gravity, softening):
  """Gravitational potential energy per unit ship mass at `x` (`acceleration = -grad`)."""
  r2 = jnp.sum((planets - x) ** 2, -1) + softening ** 2
  return -jnp.sum(gravity * masses / jnp.sqrt(r2))


def energy(x, v, planets, masses, params: SpaceshipParams):
  """Kinetic plus potential energy per unit ship mass (conserved by the flow when damping = 0)."""
  return 0.5 * jnp.sum(v * v, -1) + potential(x, planets, masses, params.gravity,
                                              params.softening)


def substep(x, v, thrust_acceleration, planets, masses, params: SpaceshipParams):
  """One semi-implicit Euler step: `v += dt (gravity + thrust_acc - damping v)`, `x += dt v`."""
  a = (acceleration(x, planets, masses, params.gravity, params.softening)
       + thrust_acceleration - params.damping * v)
  v = v + params.dt * a
  return x + params.dt * v, v


def integrate(x, v, thrust_acceleration, planets, masses, params: SpaceshipParams,
              num_steps: int):
  """`num_steps` substeps, `thrust_acceleration` on the first only.

  Returns positions `(num_steps + 1, 2)` (start included) and the final velocity.
  """
  start = x
  x, v = substep(x, v, thrust_acceleration, planets, masses, params)

  def body(carry, _):
    carry = substep(*carry, jnp.zeros_like(thrust_acceleration), planets, masses, params)
    return carry, carry[0]

  (x_end, v), rest = jax.lax.scan(body, (x, v), None, length=num_steps - 1)
  return jnp.concatenate([start[None], x[None], rest]), v


def _norm(x: jax.Array) -> jax.Array:
  """`|x|` over the last axis with a finite (zero) gradient at `x = 0`, for SVG through the loss."""
  sq = jnp.sum(x * x, -1)
  zero = sq == 0  # (a NaN stays NaN)
  return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, sq)))


def fuel(thrust: jax.Array, params: SpaceshipParams) -> jax.Array:
  """Fuel cost of a thrust: `fuel_price * max(0, |F| - fuel_threshold)`."""
  return params.fuel_price * jnp.maximum(_norm(thrust) - params.fuel_threshold, 0.0)


def distance_loss(ship, mothership, params: SpaceshipParams) -> jax.Array:
  """The final-distance term: `|x - x*|` ("l2") or `|x - x*|^2` ("squared")."""
  d = ship - mothership
  return _norm(d) if params.distance_loss == "l2" else jnp.sum(d * d, -1)


def _uniform_ring(key, shape, radius):
  k_r, k_a = jax.random.split(key)
  r = jax.random.uniform(k_r, shape, minval=radius[0], maxval=radius[1])
  angle = jax.random.uniform(k_a, shape, minval=0.0, maxval=2 * jnp.pi)
  return jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], -1)


class Spaceship(environment.Environment):
  """IBP's Spaceship Task 2.0; see the module docstring.

  Args:
    num_planets: planets per scene (5 in IBP).
    glide_steps: ballistic steps after the thrust step (11 in IBP: 12 steps per action). A
      shape, hence a constructor argument rather than a param.
  """

  def __init__(self, num_planets: int = 5, glide_steps: int = 11):
    if isinstance(num_planets, bool) or int(num_planets) != num_planets or num_planets < 1:
      raise ValueError(f"num_planets must be an integer >= 1, got {num_planets!r}")
    if isinstance(glide_steps, bool) or int(glide_steps) != glide_steps or glide_steps < 0:
      raise ValueError(f"glide_steps must be an integer >= 0, got {glide_steps!r}")
    self.num_planets, self.glide_steps = int(num_planets), int(glide_steps)

  @property
  def default_params(self) -> SpaceshipParams:
    return SpaceshipParams()

  def action_space(self, params=None) -> spaces.Box:
    mt = (params or self.default_params).max_thrust
    return spaces.Box(-mt, mt, (2,), jnp.float32)

  def observation_space(self, params=None) -> spaces.Box:
    return spaces.Box(-jnp.inf, jnp.inf, (8 + 3 * self.num_planets,), jnp.float32)

  def check_action(self, action) -> jax.Array:
    action = super().check_action(action)
    if _concrete(action) and not np.all(np.isfinite(np.asarray(action))):
      raise ValueError(f"action (the thrust) must be finite, got {np.asarray(action)}")
    return action

  def check_state(self, state: SpaceshipState) -> None:
    """Raises `ValueError` naming the first non-finite field of a concrete state."""
    for name in ("ship", "velocity", "ship_mass", "mothership", "planets", "masses", "fuel"):
      value = getattr(state, name)
      if _concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        raise ValueError(f"state.{name} must be finite, got {np.asarray(value)}")
    if jnp.shape(state.planets) != (self.num_planets, 2):
      raise ValueError(f"state.planets must have shape ({self.num_planets}, 2), got "
                       f"{jnp.shape(state.planets)}")

  def reset_env(self, key, params: SpaceshipParams):
    check_params(params)
    k_s, k_m, k_p, k_pm = jax.random.split(key, 4)
    ship = _uniform_ring(k_s, (), params.ship_radius)
    ship_mass = jax.random.uniform(k_m, (), minval=params.ship_mass[0],
                                   maxval=params.ship_mass[1])
    planets = _uniform_ring(k_p, (self.num_planets,), params.planet_radius)
    masses = jax.random.uniform(k_pm, (self.num_planets,), minval=params.planet_mass[0],
                                maxval=params.planet_mass[1])
    zero2 = jnp.zeros_like(ship)
    state = SpaceshipState(ship, zero2, ship_mass, zero2, planets, masses,
                           jnp.zeros_like(ship_mass), jnp.int32(0))
    return self.get_obs(state, params), state

  def simulate(self, key, state: SpaceshipState, thrust, params: SpaceshipParams):
    """One external action: positions `(glide_steps + 2, 2)` (start included), final velocity.

    The commanded thrust is clipped to `max_thrust`, perturbed by the multiplicative noise and
    turned into the acceleration `F' / m` of the first of the `glide_steps + 1` steps.
    """
    thrust = jnp.clip(thrust, -params.max_thrust, params.max_thrust)
    noisy = thrust * (1.0 + params.control_noise * jax.random.normal(key, (2,), thrust.dtype))
    return integrate(state.ship, state.velocity, noisy / state.ship_mass, state.planets,
                     state.masses, params, self.glide_steps + 1)

  def step_env(self, key, state: SpaceshipState, action, params: SpaceshipParams):
    check_params(params)
    self.check_state(state)
    path, v = self.simulate(key, state, action, params)
    spent = fuel(jnp.clip(action, -params.max_thrust, params.max_thrust), params)
    time = state.time + 1
    done = time >= params.num_actions
    final = distance_loss(path[-1], state.mothership, params)
    fuel_so_far = state.fuel + spent
    loss = spent + jnp.where(done, final, 0.0)
    new = state.replace(ship=path[-1], velocity=v, fuel=fuel_so_far, time=time)
    info = {"fuel": spent, "distance": jnp.linalg.norm(path[-1] - state.mothership),
            "task_loss": fuel_so_far + jnp.where(done, final, 0.0), "path": path}
    return (self.get_obs(new, params), new, (-loss).astype(jnp.float32), done,
            jnp.bool_(False), info)

  def get_obs(self, state: SpaceshipState, params: SpaceshipParams | None = None) -> jax.Array:
    params = params or self.default_params
    left = (params.num_actions - state.time).astype(jnp.float32)
    return jnp.concatenate([
        state.ship, state.velocity, state.ship_mass[None], state.mothership,
        state.planets.reshape(-1), state.masses, left[None]]).astype(jnp.float32)

  def render(self, state: SpaceshipState, params=None, size: int = 64, path=None,
             extent: float = 1.25) -> jax.Array:
    """RGB frame `(size, size, 3)` uint8 of `[-extent, extent]^2`: planets (grey, radius by
    mass), mothership (green), ship (red) and, if given, a path `(T, 2)` (yellow)."""
    c = (jnp.arange(size) + 0.5) / size * 2 * extent - extent
    gx, gy = jnp.meshgrid(c, -c)  # row 0 is the top (largest y)
    pix = jnp.stack([gx, gy], -1)
    img = jnp.zeros((size, size, 3), jnp.uint8)

    def disc(img, centre, radius, color):
      inside = jnp.sum((pix - centre) ** 2, -1) <= radius ** 2
      return jnp.where(inside[..., None], jnp.asarray(color, jnp.uint8), img)

    px = 2 * extent / size
    for i in range(self.num_planets):
      img = disc(img, state.planets[i], (1.5 + 5 * state.masses[i]) * px, (150, 150, 150))
    if path is not None:
      for t in range(path.shape[0]):
        img = disc(img, path[t], px, (230, 210, 0))
    img = disc(img, state.mothership, 2.5 * px, (40, 220, 40))
    return disc(img, state.ship, 1.8 * px, (230, 40, 40))
