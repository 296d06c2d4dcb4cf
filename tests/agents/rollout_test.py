"""The shared rollout: a Python loop's result, auto-reset boundaries, [T, B] shapes, chaining."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_envs import Counter, CounterState

from agents import rollout as rollout_lib

T, B = 9, 3


def coin_policy(key, obs):
  """Action 1 with probability 0.7 per environment; the extras carry the observation's sum."""
  action = jax.random.bernoulli(key, 0.7, (obs.shape[0],)).astype(jnp.int32)
  return action, {"obs_sum": jnp.sum(obs, -1)}


def test_rollout_equals_python_loop():
  env = Counter(length=4)
  params = env.default_params
  carry = rollout_lib.reset(env, params, jax.random.key(1), B)
  final, traj = jax.jit(lambda c, k: rollout_lib.rollout(coin_policy, env, params, c, k, T))(
      carry, jax.random.key(2))

  # The same computation, step by step and environment by environment, with the same keys.
  states = [jax.tree.map(lambda x, b=b: x[b], carry.env_state) for b in range(B)]
  obs = np.asarray(carry.obs)
  rows = []
  step = jax.jit(env.step)  # one environment at a time; jitted only to keep the test fast
  for k in jax.random.split(jax.random.key(2), T):
    k_policy, k_env = jax.random.split(k)
    action, extras = coin_policy(k_policy, jnp.asarray(obs))
    env_keys = jax.random.split(k_env, B)
    new_obs, row = [], []
    for b in range(B):
      o, s, r, term, trunc, info = step(env_keys[b], states[b], action[b], params)
      states[b] = s
      new_obs.append(np.asarray(o))
      row.append((float(r), bool(term), bool(trunc), int(info["position"])))
    rows.append((obs, np.asarray(action), np.asarray(extras["obs_sum"]), row, np.stack(new_obs)))
    obs = np.stack(new_obs)

  for t, (o_tm1, action, obs_sum, row, o_t) in enumerate(rows):
    np.testing.assert_array_equal(traj.obs_tm1[t], o_tm1)
    np.testing.assert_array_equal(traj.action[t], action)
    np.testing.assert_array_equal(traj.policy_extras["obs_sum"][t], obs_sum)
    np.testing.assert_array_equal(traj.obs_t[t], o_t)
    np.testing.assert_array_equal(traj.reward[t], [r[0] for r in row])
    np.testing.assert_array_equal(traj.terminated[t], [r[1] for r in row])
    np.testing.assert_array_equal(traj.truncated[t], [r[2] for r in row])
    np.testing.assert_array_equal(traj.info["position"][t], [r[3] for r in row])
  np.testing.assert_array_equal(final.obs, obs)
  for b in range(B):
    np.testing.assert_array_equal(final.env_state.position[b], states[b].position)


def test_shapes_are_time_major():
  env = Counter()
  carry = rollout_lib.reset(env, env.default_params, jax.random.key(0), B)
  _, traj = rollout_lib.rollout(coin_policy, env, env.default_params, carry, jax.random.key(1),
                                T)
  assert traj.obs_tm1.shape == traj.obs_t.shape == (T, B, 2)
  for x in (traj.action, traj.reward, traj.discount, traj.terminated, traj.truncated,
            traj.policy_extras["obs_sum"], traj.info["position"]):
    assert x.shape == (T, B)
  assert traj.reward.dtype == traj.discount.dtype == jnp.float32
  assert traj.terminated.dtype == traj.truncated.dtype == jnp.bool_


def test_auto_reset_boundaries_hand_worked():
  """Always step up from position 1 (Counter(4)): rewards 2, 3, 4 and termination at 4."""
  env = Counter(length=4)
  params = env.default_params
  start = jax.tree.map(lambda x: jnp.stack([x, x]), CounterState(jnp.int32(1), jnp.int32(0)))
  carry = rollout_lib.RolloutCarry(start, jax.vmap(env._obs)(start))
  up = lambda key, obs: (jnp.ones(obs.shape[0], jnp.int32), None)  # noqa: E731
  _, traj = rollout_lib.rollout(up, env, params, carry, jax.random.key(3), 4)
  np.testing.assert_array_equal(traj.reward[:3, 0], [2.0, 3.0, 4.0])
  np.testing.assert_array_equal(traj.terminated[:, 0], [False, False, True, False])
  np.testing.assert_array_equal(traj.discount[:, 0], [1.0, 1.0, 0.0, 1.0])
  assert not traj.truncated.any()
  # After the terminal step the next episode starts: time 0, a fresh position in [0, 4).
  assert float(traj.obs_t[2, 0, 1]) == 0.0 and 0 <= float(traj.obs_t[2, 0, 0]) < 4
  # The next action is taken in the reset observation.
  np.testing.assert_array_equal(traj.obs_tm1[1:], traj.obs_t[:-1])
  # The step after the reset earns the fresh position + 1.
  np.testing.assert_array_equal(traj.reward[3, 0], traj.obs_t[2, 0, 0] + 1.0)


def test_truncation_is_not_termination():
  env = Counter(length=4)
  params = env.default_params   # max_steps 6
  start = jax.tree.map(lambda x: jnp.stack([x]), CounterState(jnp.int32(0), jnp.int32(0)))
  carry = rollout_lib.RolloutCarry(start, jax.vmap(env._obs)(start))
  stay = lambda key, obs: (jnp.zeros(obs.shape[0], jnp.int32), None)  # noqa: E731
  _, traj = rollout_lib.rollout(stay, env, params, carry, jax.random.key(3), 7)
  np.testing.assert_array_equal(traj.truncated[:, 0], [False] * 5 + [True, False])
  assert not traj.terminated.any()
  np.testing.assert_array_equal(traj.discount, 1.0)
  assert float(traj.obs_t[5, 0, 1]) == 0.0  # time reset after the truncated step


def test_continuation_and_model_with_only_a_step():
  """A learned model needs only `step`; two rollouts chain through the carry."""

  class Model:  # deterministic "model": obs' = obs + action, never done
    def step(self, key, state, action, params):
      nxt = state + action * params
      return nxt, nxt, jnp.sum(nxt), jnp.bool_(False), jnp.bool_(False), {}

  up = lambda key, obs: (jnp.ones(obs.shape[0]), None)  # noqa: E731
  carry = rollout_lib.RolloutCarry(jnp.zeros(2), jnp.zeros(2))
  carry, t1 = rollout_lib.rollout(up, Model(), 2.0, carry, jax.random.key(0), 3)
  carry, t2 = rollout_lib.rollout(up, Model(), 2.0, carry, jax.random.key(1), 2)
  np.testing.assert_array_equal(t1.reward[:, 0], [2.0, 4.0, 6.0])
  np.testing.assert_array_equal(t2.obs_tm1[0], t1.obs_t[-1])
  np.testing.assert_array_equal(t2.reward[:, 1], [8.0, 10.0])
  np.testing.assert_array_equal(carry.obs, [10.0, 10.0])


def test_bad_arguments():
  env = Counter()
  with pytest.raises(ValueError, match="num_envs"):
    rollout_lib.reset(env, env.default_params, jax.random.key(0), 0)
  carry = rollout_lib.reset(env, env.default_params, jax.random.key(0), 2)
  with pytest.raises(ValueError, match="num_steps"):
    rollout_lib.rollout(coin_policy, env, env.default_params, carry, jax.random.key(0), 0)
