"""Data and training for I2A's environment model (Weber et al. 2017, Sec. 3.1 and App. B).

[P] The model is trained on transitions of a partly trained standard (model-free) agent, then
frozen for the I2A agent. `collect_transitions` takes any policy (`policy_fn(key, obs[B]) ->
action[B]`: an A2C `Trainer.policy` with its params bound, or `uniform_policy` for tests) and
steps the environment through `agents.rollout`, so the data is the `[T, B]` trajectory that
`env_model.multi_step_accuracy` also scores. [O] Training is supervised minibatch Adam on the
flattened transitions (uniform draws with replacement), one `lax.scan` of `steps_per_chunk`
steps per jitted `chunk(state, data)`: the shared `agents.supervised` trainer, here with a
constant rate and global-norm clipping at 10:

    traj = collect_transitions(uniform_policy(4), env, env_params, spec, key, 32, 100)
    trainer = make_trainer(model, TrainConfig())
    state = trainer.init(key)
    state, metrics = trainer.chunk(state, flatten(traj))   # metrics [steps_per_chunk]

The data is an argument of `chunk` rather than a constant baked into the compiled function,
so one compiled trainer serves every data set of the same size.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from agents import rollout as rollout_lib
from agents import supervised
from agents.i2a import env_model as em


def uniform_policy(num_actions: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """`policy_fn(key, obs[B]) -> action[B]`, uniform over `num_actions` actions."""
  def policy_fn(key, obs):
    return jax.random.randint(key, (obs.shape[0],), 0, num_actions).astype(jnp.int32)
  return policy_fn


def collect_transitions(policy_fn: Callable[[jax.Array, jax.Array], jax.Array], env, env_params,
                        reward_spec: em.RewardSpec, key: jax.Array, num_envs: int,
                        num_steps: int, *, check: bool = True) -> em.Transitions:
  """`[T, B]` real transitions of `num_envs` fresh environments under `policy_fn`.

  `frame_valid` is 0 on steps that end an episode (their `obs_t` is the next episode's
  start). With `check`, the data is checked on the host (`env_model.check_transitions`: finite
  values, actions in range, every reward paid by a class of `reward_spec`).
  """
  obs_shape = tuple(env.observation_space(env_params).shape)
  num_actions = env.action_space(env_params).num_values
  traj = _collect(policy_fn, env, env_params, reward_spec, key, num_envs, num_steps)
  if check:
    em.check_transitions(traj, obs_shape, num_actions, reward_spec.num_classes,
                         name="collected transitions")
  return traj


@functools.partial(jax.jit, static_argnums=(0, 1, 3, 5, 6))
def _collect(policy_fn, env, env_params, reward_spec, key, num_envs, num_steps):
  k_reset, k_roll = jax.random.split(key)
  carry = rollout_lib.reset(env, env_params, k_reset, num_envs)
  _, traj = rollout_lib.rollout(lambda k, o: (policy_fn(k, o), None), env, env_params, carry,
                                k_roll, num_steps)
  done = traj.terminated | traj.truncated
  return em.Transitions(
      obs_tm1=jnp.asarray(traj.obs_tm1, jnp.float32), action=traj.action.astype(jnp.int32),
      obs_t=jnp.asarray(traj.obs_t, jnp.float32), reward=traj.reward,
      reward_class=reward_spec.class_fn(traj.reward, traj.info),
      frame_valid=1.0 - done.astype(jnp.float32))


def flatten(traj: em.Transitions) -> em.Transitions:
  """`[T, B, ...]` -> `[T * B, ...]` (training draws transitions independently)."""
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj)


@dataclasses.dataclass(frozen=True)
class TrainConfig(supervised.TrainConfig):
  """Adam on minibatches of transitions (CPU-sized defaults); `agents.supervised.TrainConfig`
  with this model's defaults (constant rate, clipping at global norm 10)."""
  learning_rate: float = 1e-3
  batch_size: int = 64
  steps_per_chunk: int = 500
  max_grad_norm: float = 10.0   # global-norm clipping (<= 0: none)


TrainState = supervised.TrainState


class ModelTrainer(NamedTuple):
  """`init(key)`, `update(state, batch) -> (state, metrics)`, `chunk(state, data[N]) ->
  (state, metrics[steps_per_chunk])` (jitted), from `agents.supervised.make_trainer`."""
  init: Callable[[jax.Array], TrainState]
  update: Callable[[TrainState, em.Transitions], tuple[TrainState, dict]]
  chunk: Callable[[TrainState, em.Transitions], tuple[TrainState, dict]]
  model: em.EnvModelFns
  config: TrainConfig


def make_trainer(model: em.EnvModelFns, config: TrainConfig = TrainConfig()) -> ModelTrainer:
  """The environment model's trainer. Raises a `ValueError` naming a bad config field."""
  trainer = supervised.make_trainer(model.loss, model.init, config)

  def chunk(state: TrainState, data: em.Transitions) -> tuple[TrainState, dict]:
    if data.action.ndim != 1:
      raise ValueError(f"data must be flat transitions [N] (see `flatten`); got action shape "
                       f"{data.action.shape}.")
    em.check_transitions(data, model.obs_shape, model.num_actions,
                         model.reward_spec.num_classes, name="data")
    return trainer.chunk(state, data)

  return ModelTrainer(trainer.init, trainer.update, chunk, model, config)
