"""A tiny jittable continuous-control task with a two-component reward, for the agents' tests.

A point in the plane moves by `0.2 * action` per step (action in [-1, 1]^2) and must reach the
origin. Reward components: `distance = -|p_{t+1}|` (shaping towards the goal) and
`control = -control_weight * |a_t|^2`. Episodes end (truncate) after `horizon` steps and start at a
uniform position in [-1, 1]^2. The observation is `(p_x, p_y, t / horizon)`.
"""
import jax
import jax.numpy as jnp
from flax import struct

from envs import spaces


@struct.dataclass
class PointMassState:
  position: jax.Array
  time: jax.Array


@struct.dataclass
class PointMassParams:
  horizon: int = 20
  control_weight: float = 0.1


class PointMass:
  """gymnax-signature environment with `info["reward_components"] = [distance, control]`."""
  component_names = ("distance", "control")

  def __init__(self, with_components: bool = True, component_bias: float = 0.0,
               nan_obs: bool = False, nan_control_from: int | None = None):
    self.with_components = with_components
    self.component_bias = component_bias   # Breaks the components' sum (for bad-input tests).
    self.nan_obs = nan_obs                 # Emits a NaN observation (for bad-input tests).
    # The control component (and reward) turn NaN from this step of an episode on: passes the
    # one-step probe, fails later under jit (for bad-input tests).
    self.nan_control_from = nan_control_from

  @property
  def default_params(self):
    return PointMassParams()

  def action_space(self, params):
    return spaces.Box(-1.0, 1.0, (2,))

  def _obs(self, state, params):
    obs = jnp.concatenate([state.position, jnp.reshape(state.time / params.horizon, (1,))])
    return jnp.where(self.nan_obs, jnp.nan, obs) if self.nan_obs else obs

  def reset(self, key, params=None):
    params = self.default_params if params is None else params
    state = PointMassState(jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0),
                           jnp.zeros((), jnp.int32))
    return self._obs(state, params), state

  def step(self, key, state, action, params=None):
    params = self.default_params if params is None else params
    position = jnp.clip(state.position + 0.2 * action, -1.5, 1.5)
    distance = -jnp.linalg.norm(position)
    control = -params.control_weight * jnp.sum(action ** 2)
    time = state.time + 1
    if self.nan_control_from is not None:
      control = jnp.where(time >= self.nan_control_from, jnp.nan, control)
    reward = distance + control
    truncated = time >= params.horizon
    terminated = jnp.zeros((), bool)
    new_state = PointMassState(position, time)
    obs_reset, state_reset = self.reset(key, params)
    next_state = jax.tree.map(lambda a, b: jnp.where(truncated, a, b), state_reset, new_state)
    final_obs = self._obs(new_state, params)
    obs = jnp.where(truncated, obs_reset, final_obs)
    info = {"final_obs": final_obs}
    if self.with_components:
      info["reward_components"] = jnp.stack([distance, control + self.component_bias])
    return obs, next_state, reward, terminated, truncated, info
