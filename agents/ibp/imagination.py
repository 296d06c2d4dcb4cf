"""IBP's imagination I (Pascanu et al. 2017, Sec. 2): an interaction network (Battaglia et al. 2016)
that predicts the Spaceship scene after one external action, and the action's loss terms.

Sources: [P] Pascanu et al. 2017 (the imagination is an interaction network trained supervised on
real transitions, predicting the next state and reward); [B] Battaglia et al. 2016, *Interaction
networks for learning about objects, relations and physics* (relation model over pairs, effects
summed per receiver, object model on the object and its aggregated effect); [O] our choice
(reason beside it).

Objects and relations:
- [P]/[B] Objects are the ship, the 5 planets and the mothership. [O] Relations are the (planet ->
  ship) pairs only: planets and mothership never move (envs/spaceship.py), and the mothership
  exerts no force, so the ship is the only receiver and the mothership enters only the loss.
- [B] Relation model `f_R` (MLP) on each (ship, planet) pair, effects summed over planets,
  object model `f_O` (MLP) on the ship and the summed effect. [O] The effect of planet i is
  `(M_i / s_M) * f_R(...)`: gravity is linear in the source's mass, so a massless planet has
  exactly zero effect, whatever the weights (tested), and a sum over planets is
  permutation-invariant (tested).
- [O] Inputs, all relative (the dynamics are translation-invariant, so absolute positions are
  not given): the ship's gravity-free velocity after the thrust, `v1 = v + dt F / m` (with F
  clipped to `max_thrust` as the environment does; the ship's mass enters only through F / m,
  since gravity's acceleration does not depend on it), and per planet its offset from the ship's
  start `r_i = p_i - x`, its offset from the gravity-free end point `r_i - b` with
  `b = n dt v1` (n = 12 steps), their lengths and `M_i`. The gravity-free path is then fully
  described, so `f_R` only has to learn how strongly each planet bends it.
- [O] Outputs: the deviation of the end position and velocity from the gravity-free ballistic
  motion (`x + b`, `v1`; the "ballistic" baseline, which the semi-implicit integrator of the
  environment reproduces exactly when there is no gravity), each divided by its scale (the
  standard deviation over the training transitions, `measure_scales`); inputs are divided by
  scales measured the same way. The learned part is thus gravity's effect alone.
- Loss terms [O]: fuel `max(0, |F| - 8) * price` is a known function of the commanded thrust, and
  the final-distance loss a known function of the position, so both are computed exactly from
  the thrust and the predicted position (the environment's own `fuel` and `distance_loss`)
  rather than learned: a learned head could only approximate them.
- [P] Training: supervised, on real transitions under random thrusts. [O] MSE on the normalised
  targets, Adam, minibatches drawn with replacement, one `lax.scan` per jitted chunk (the shared
  `agents.supervised` trainer, cosine decay, no clipping). Random
  thrusts [O]: a gravity-free displacement `d` uniform in a disc of radius 1.5 (the straight aim
  at the mothership needs |d| = |x0| <= 1 from rest), turned into `F = m d / (n dt^2)` and
  clipped, for every action of 3-action episodes, so later actions start with the velocity that
  earlier ones left (a thrust uniform on the Box would fling light ships 100s of units away).
  The environment's control noise stays on: these are the transitions a planner meets.
- [O] The effects are summed in sorted order per component, so the sum is bitwise invariant to
  the planets' order (float addition is not associative).

Held-out error (3,000 held-out transitions of fresh scenes, default params; position error =
mean |x_pred - x'| / mean displacement, distance error = mean | |x_pred| - |x'| | with the
mothership at the origin): 12,000 training transitions, 6,000 Adam steps: 0.075 and 0.056;
24,000 transitions, 15,000 steps, 128-unit MLPs: 0.072 and 0.053; against "no motion" 1.0 and
0.81, "ballistic" (thrust, no gravity) 0.229 and 0.187, and the noise-free true simulator (the
floor that the 5% control noise leaves) 0.037 and 0.030. The test size (3,000 transitions,
1,500 steps) gives 0.10-0.12 vs 0.20-0.24 ballistic over four seeds. The gradient of the
predicted distance w.r.t. the thrust has cosine > 0.5 with the true simulator's (`jax.grad`
through `Spaceship.simulate`, noise off) on 91-95% of held-out scenes, median cosine 0.999.

    data = collect_transitions(env, env_params, key, num_episodes=2048)   # [N] flat
    model = make_imagination(ImaginationConfig(), env_params, measure_scales(data, env_params))
    trainer = make_trainer(model, TrainConfig())
    state, metrics = trainer.chunk(trainer.init(key), data)
    pred = model.predict(state.params, spaceship_state, thrust)   # Prediction, one scene
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from agents import supervised
from envs import spaceship as ss

# ----------------------------------------------------------------------------- data


class Transitions(NamedTuple):
  """Real one-action transitions, leading axis `[N]` (one scene: no leading axis)."""
  ship: jax.Array          # (2,)
  velocity: jax.Array      # (2,)
  ship_mass: jax.Array     # ()
  mothership: jax.Array    # (2,)
  planets: jax.Array       # (P, 2)
  masses: jax.Array        # (P,)
  thrust: jax.Array        # (2,) commanded
  next_ship: jax.Array     # (2,) after the 12 steps
  next_velocity: jax.Array  # (2,)
  fuel: jax.Array          # () this action's fuel cost


def random_thrust(key, ship_mass, params: ss.SpaceshipParams, num_steps: int,
                  max_displacement: float = 1.5):
  """`F = m d / (n dt^2)`, `d` uniform in a disc of radius `max_displacement` (module doc)."""
  k_r, k_a = jax.random.split(key)
  r = max_displacement * jnp.sqrt(jax.random.uniform(k_r, ()))
  a = jax.random.uniform(k_a, (), maxval=2 * jnp.pi)
  d = r * jnp.stack([jnp.cos(a), jnp.sin(a)])
  return ship_mass * d / (num_steps * params.dt ** 2)


def collect_transitions(env: ss.Spaceship, env_params: ss.SpaceshipParams, key: jax.Array,
                        num_episodes: int, max_displacement: float = 1.5) -> Transitions:
  """`[num_episodes * num_actions]` transitions of fresh episodes under `random_thrust`.

  One jit: `lax.scan` over an episode's actions inside `vmap` over episodes.
  """
  if isinstance(num_episodes, bool) or int(num_episodes) != num_episodes or num_episodes < 1:
    raise ValueError(f"num_episodes must be a positive integer; got {num_episodes!r}")
  return _collect(env, env_params, key, int(num_episodes), float(max_displacement))


def _collect_impl(env, env_params, key, num_episodes, max_displacement):
  n = env.glide_steps + 1

  def episode(k):
    k_reset, k_run = jax.random.split(k)
    _, state = env.reset_env(k_reset, env_params)

    def body(s, k_t):
      k_f, k_s = jax.random.split(k_t)
      thrust = jnp.clip(random_thrust(k_f, s.ship_mass, env_params, n, max_displacement),
                        -env_params.max_thrust, env_params.max_thrust)
      _, s1, _, _, _, info = env.step_env(k_s, s, thrust, env_params)
      tr = Transitions(s.ship, s.velocity, s.ship_mass, s.mothership, s.planets, s.masses,
                       thrust, s1.ship, s1.velocity, info["fuel"])
      return s1, tr

    _, trs = jax.lax.scan(body, state, jax.random.split(k_run, env_params.num_actions))
    return trs

  trs = jax.vmap(episode)(jax.random.split(key, num_episodes))
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), trs)


_collect = jax.jit(_collect_impl, static_argnums=(0, 1, 3, 4))


# ----------------------------------------------------------------------------- scales


@flax.struct.dataclass
class Scales:
  """Normalising scales measured on training data (`measure_scales`); all scalars."""
  offset: jax.Array     # planets' offsets r_i (per component std)
  mass: jax.Array       # planets' masses (mean)
  velocity: jax.Array   # gravity-free velocity v1 (per component std)
  dx: jax.Array         # target: end-position deviation from ballistic (per component std)
  dv: jax.Array         # target: end-velocity deviation from ballistic (per component std)


def ballistic(ship, velocity, ship_mass, thrust, params: ss.SpaceshipParams, num_steps: int):
  """Gravity-free motion of one action (the environment's integrator with no planets).

  Returns `(end position, end velocity)`; the thrust is clipped as the environment does.
  """
  thrust = jnp.clip(thrust, -params.max_thrust, params.max_thrust)
  v1 = velocity + params.dt * thrust / ship_mass[..., None]
  return ship + num_steps * params.dt * v1, v1


def measure_scales(data: Transitions, params: ss.SpaceshipParams, num_steps: int = 12) -> Scales:
  """Scales of the inputs and targets over the (training) transitions `data` `[N]`."""
  x_b, v_b = ballistic(data.ship, data.velocity, data.ship_mass, data.thrust, params, num_steps)
  std = lambda a: jnp.maximum(jnp.std(a), 1e-6)
  return Scales(offset=std(data.planets - data.ship[:, None]), mass=jnp.mean(data.masses),
                velocity=std(v_b), dx=std(data.next_ship - x_b),
                dv=std(data.next_velocity - v_b))


# ----------------------------------------------------------------------------- network

NUM_RELATION_FEATURES = 9


@dataclasses.dataclass(frozen=True)
class ImaginationConfig:
  num_planets: int = 5           # [P] the scene's planets; inputs with another count are refused
  relation_hidden: tuple = (64, 64)
  effect_dim: int = 32
  object_hidden: tuple = (64, 64)
  num_steps: int = 12            # [P] simulation steps per external action

  def replace(self, **kwargs) -> "ImaginationConfig":
    return dataclasses.replace(self, **kwargs)


class MLP(nn.Module):
  hidden: tuple
  out: int

  @nn.compact
  def __call__(self, x):
    for h in self.hidden:
      x = nn.tanh(nn.Dense(h)(x))
    return nn.Dense(self.out)(x)


def relation_features(v1, offsets, masses, scales: Scales, dt, num_steps):
  """Per-planet inputs of `f_R`: `(P, 9)` = [r_i, r_i - b, |r_i|, |r_i - b|, M_i, v1]/scales."""
  b = num_steps * dt * v1
  r = offsets / scales.offset
  r_end = (offsets - b) / scales.offset
  v = jnp.broadcast_to(v1 / scales.velocity, offsets.shape)
  return jnp.concatenate([r, r_end, jnp.linalg.norm(r, axis=-1, keepdims=True),
                          jnp.linalg.norm(r_end, axis=-1, keepdims=True),
                          (masses / scales.mass)[:, None], v], -1)


def aggregate_effects(relation_fn: Callable[[jax.Array], jax.Array], features: jax.Array,
                      masses: jax.Array, mass_scale) -> jax.Array:
  """[B] `sum_i (M_i / s_M) f_R(features_i)`: the summed effect on the ship, `(effect_dim,)`.

  [O] Each component is summed in sorted order: float addition is not associative, so a plain
  sum could change in its last bit when the planets are listed in another order; sorted, the
  sum is bitwise invariant to the order (tested), and the gradient is unchanged.
  """
  effects = (masses / mass_scale)[:, None] * relation_fn(features)
  return jnp.sum(jnp.sort(effects, axis=0), 0)


class InteractionNetwork(nn.Module):
  """`(v1 (2,), relation features (P, 9), masses (P,)) -> normalised deviation (4,)`."""
  config: ImaginationConfig
  mass_scale: float = 1.0

  def setup(self):
    c = self.config
    self.relation = MLP(c.relation_hidden, c.effect_dim)
    self.object_model = MLP(c.object_hidden, 4)

  def effects(self, features, masses):
    return aggregate_effects(self.relation, features, masses, self.mass_scale)

  def __call__(self, v1_normalised, features, masses):
    total = self.effects(features, masses)
    return self.object_model(jnp.concatenate([v1_normalised, total]))


# ----------------------------------------------------------------------------- model


class Prediction(NamedTuple):
  ship: jax.Array         # (2,) predicted position after the action
  velocity: jax.Array     # (2,)
  fuel: jax.Array         # () this action's fuel (exact)
  final_loss: jax.Array   # () distance loss of the predicted position (paid if the action is last)


class Imagination(NamedTuple):
  """Pure functions of the imagination model (one scene; `jax.vmap` for batches).

  `init(key) -> params`; `predict(params, state, thrust) -> Prediction`, `state` a
  `SpaceshipState` or `Transitions` (the fields ship, velocity, ship_mass, mothership, planets,
  masses); `loss(params, batch[N]) -> (loss, aux)`; `check(state, thrust)` raises on bad input.
  """
  init: Callable
  predict: Callable
  loss: Callable
  check: Callable
  network: InteractionNetwork
  scales: Scales
  config: ImaginationConfig
  env_params: ss.SpaceshipParams


def _concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def check_inputs(state, thrust, num_planets: int) -> None:
  """Raises `ValueError` naming the field: thrust not `(2,)`, planets/masses not `(P, 2)`/`(P,)`
  with `P = num_planets`, a state field or the thrust non-finite (when concrete)."""
  if jnp.shape(thrust) != (2,):
    raise ValueError(f"thrust must have shape (2,) (one scene's force; vmap for batches), got "
                     f"{jnp.shape(thrust)}")
  for name, shape in (("ship", (2,)), ("velocity", (2,)), ("ship_mass", ()),
                      ("mothership", (2,)), ("planets", (num_planets, 2)),
                      ("masses", (num_planets,))):
    if jnp.shape(getattr(state, name)) != shape:
      raise ValueError(f"state.{name} must have shape {shape} (the model was built for "
                       f"num_planets={num_planets}), got {jnp.shape(getattr(state, name))}")
  for name in ("ship", "velocity", "ship_mass", "mothership", "planets", "masses"):
    value = getattr(state, name)
    if _concrete(value) and not np.all(np.isfinite(np.asarray(value))):
      raise ValueError(f"state.{name} must be finite, got {np.asarray(value)}")
  if _concrete(thrust) and not np.all(np.isfinite(np.asarray(thrust))):
    raise ValueError(f"thrust must be finite, got {np.asarray(thrust)}")


def make_imagination(config: ImaginationConfig, env_params: ss.SpaceshipParams,
                     scales: Scales) -> Imagination:
  """The interaction-network imagination of `config`, normalised by `scales` (held constant)."""
  if isinstance(config.num_planets, bool) or int(config.num_planets) < 1:
    raise ValueError(f"config.num_planets must be a positive integer; got {config.num_planets!r}")
  n, dt = config.num_steps, env_params.dt
  net = InteractionNetwork(config, mass_scale=float(scales.mass))

  def _inputs(state, thrust):
    x_b, v1 = ballistic(state.ship, state.velocity, state.ship_mass, thrust, env_params, n)
    feats = relation_features(v1, state.planets - state.ship, state.masses, scales, dt, n)
    return x_b, v1, feats

  def init(key):
    feats = jnp.zeros((config.num_planets, NUM_RELATION_FEATURES))
    return net.init(key, jnp.zeros(2), feats, jnp.ones(config.num_planets))

  def _deviation(params, state, thrust):
    x_b, v1, feats = _inputs(state, thrust)
    return x_b, v1, net.apply(params, v1 / scales.velocity, feats, state.masses)

  def predict(params, state, thrust) -> Prediction:
    check_inputs(state, thrust, config.num_planets)
    x_b, v1, out = _deviation(params, state, thrust)
    ship = x_b + scales.dx * out[:2]
    velocity = v1 + scales.dv * out[2:]
    spent = ss.fuel(jnp.clip(thrust, -env_params.max_thrust, env_params.max_thrust), env_params)
    return Prediction(ship, velocity, spent, ss.distance_loss(ship, state.mothership, env_params))

  def loss(params, batch: Transitions):
    def one(tr):
      x_b, v1, out = _deviation(params, tr, tr.thrust)
      tx = (tr.next_ship - x_b) / scales.dx
      tv = (tr.next_velocity - v1) / scales.dv
      return jnp.mean((out[:2] - tx) ** 2), jnp.mean((out[2:] - tv) ** 2)
    ex, ev = jax.vmap(one)(batch)
    return jnp.mean(ex) + jnp.mean(ev), {"mse_position": jnp.mean(ex),
                                          "mse_velocity": jnp.mean(ev)}

  return Imagination(init, predict, loss,
                     lambda state, thrust: check_inputs(state, thrust, config.num_planets),
                     net, scales, config, env_params)


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class TrainConfig(supervised.TrainConfig):
  """Adam on minibatches of transitions (CPU-sized defaults); `agents.supervised.TrainConfig`
  with this model's defaults (cosine decay, no clipping)."""
  learning_rate: float = 3e-3
  batch_size: int = 128
  steps_per_chunk: int = 1000
  schedule: str = "cosine"
  final_learning_rate: float = 1e-4   # [O] cosine decay to this over decay_steps
  decay_steps: int = 3000


TrainState = supervised.TrainState


class Trainer(NamedTuple):
  """`init(key) -> TrainState`; `chunk(state, data[N]) -> (state, metrics[steps_per_chunk])`."""
  init: Callable
  chunk: Callable
  model: Imagination
  config: TrainConfig


def make_trainer(model: Imagination, config: TrainConfig = TrainConfig()) -> Trainer:
  """Supervised trainer of the imagination (`agents.supervised.make_trainer`); one jit,
  `lax.scan` over `steps_per_chunk` steps."""
  trainer = supervised.make_trainer(model.loss, model.init, config)

  def chunk(state, data: Transitions):
    if data.thrust.ndim != 2 or data.thrust.shape[-1] != 2:
      raise ValueError(f"data.thrust must be flat transitions of shape [N, 2]; got "
                       f"{data.thrust.shape}")
    return trainer.chunk(state, data)

  return Trainer(trainer.init, chunk, model, config)


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: Imagination, params, data: Transitions,
             env: ss.Spaceship | None = None) -> dict:
  """Held-out errors of the model and of the two baselines on `data` `[N]`.

  `position_error`: mean |x_pred - x'| / mean |x' - x| (relative to the mean displacement);
  `distance_error`: mean | |x_pred - x*| - |x' - x*| | (the end-of-action distance to the
  mothership). Baselines: `no_motion` (x_pred = x), `ballistic` (the thrust alone, no gravity).
  With `env`, also `noise_free_simulator`: the true simulator without control noise, the floor
  that the noise sets for any predictor of the mean.
  """
  pred = jax.jit(jax.vmap(lambda tr: model.predict(params, tr, tr.thrust)))(data)
  x_b, _ = ballistic(data.ship, data.velocity, data.ship_mass, data.thrust, model.env_params,
                     model.config.num_steps)
  disp = jnp.mean(jnp.linalg.norm(data.next_ship - data.ship, axis=-1))
  d_true = jnp.linalg.norm(data.next_ship - data.mothership, axis=-1)
  out = {"mean_displacement": float(disp)}
  rows = [("model", pred.ship), ("no_motion", data.ship), ("ballistic", x_b)]
  if env is not None:
    p0 = model.env_params.replace(control_noise=0.0)
    def sim(tr):
      state = ss.SpaceshipState(tr.ship, tr.velocity, tr.ship_mass, tr.mothership, tr.planets,
                                tr.masses, jnp.zeros(()), jnp.int32(0))
      return env.simulate(jax.random.PRNGKey(0), state, tr.thrust, p0)[0][-1]
    rows.append(("noise_free_simulator", jax.jit(jax.vmap(sim))(data)))
  for name, x in rows:
    err = jnp.linalg.norm(x - data.next_ship, axis=-1)
    out[name] = {
        "position_error": float(jnp.mean(err) / disp),
        "median_position_error": float(jnp.median(err) / disp),
        "distance_error": float(jnp.mean(jnp.abs(
            jnp.linalg.norm(x - data.mothership, axis=-1) - d_true))),
    }
  return out


def gradient_agreement(model: Imagination, params, env: ss.Spaceship, data: Transitions,
                       fd_step: float = 1e-3) -> dict:
  """Cosine between the model's and the true simulator's gradients of the end distance w.r.t.
  the thrust, on each scene of `data` (its recorded thrusts; the simulator noise-free).

  The true gradient is `jax.grad` through `Spaceship.simulate`; a central finite difference
  (step `fd_step` times the thrust's scale `m / (n dt^2)`) is compared as well.
  """
  p0 = model.env_params.replace(control_noise=0.0)
  key = jax.random.PRNGKey(0)

  def true_dist(tr, thrust):
    state = ss.SpaceshipState(tr.ship, tr.velocity, tr.ship_mass, tr.mothership, tr.planets,
                              tr.masses, jnp.zeros(()), jnp.int32(0))
    path, _ = env.simulate(key, state, thrust, p0)
    return jnp.linalg.norm(path[-1] - tr.mothership)

  def model_dist(tr, thrust):
    return jnp.linalg.norm(model.predict(params, tr, thrust).ship - tr.mothership)

  def one(tr):
    g_model = jax.grad(model_dist, 1)(tr, tr.thrust)
    g_true = jax.grad(true_dist, 1)(tr, tr.thrust)
    h = fd_step * tr.ship_mass / (model.config.num_steps * p0.dt ** 2)
    eye = jnp.eye(2) * h
    g_fd = jax.vmap(lambda e: (true_dist(tr, tr.thrust + e) - true_dist(tr, tr.thrust - e))
                    / (2 * h))(eye)
    cos = lambda a, b: jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)
    return g_model, cos(g_model, g_true), cos(g_model, g_fd), cos(g_true, g_fd)

  g, c_true, c_fd, c_check = jax.jit(jax.vmap(one))(data)
  return {"finite": bool(jnp.all(jnp.isfinite(g))),
          "cosine_true_median": float(jnp.median(c_true)),
          "cosine_true_mean": float(jnp.mean(c_true)),
          "fraction_cosine_true_above_0.5": float(jnp.mean(c_true > 0.5)),
          "fraction_cosine_fd_above_0.5": float(jnp.mean(c_fd > 0.5)),
          "true_grad_vs_fd_cosine_median": float(jnp.median(c_check)),
          "cosines_true": np.asarray(c_true)}
