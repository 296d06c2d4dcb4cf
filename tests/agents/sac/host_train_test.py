"""Tests of the host training loop on a numpy point-mass environment with envpool's semantics."""
import functools
import importlib.util
import types

import jax
import numpy as np
import pytest

from agents.sac import host_train, sac, train


class HostPointMass:
  """Numpy twin of tests/agents/point_mass.py behind the HostEnv interface: an environment that
  finished is reset on the *next* step (reward 0, action ignored, `info["reset_step"]`)."""
  component_names = ("distance", "control")
  task_id = "HostPointMass"

  def __init__(self, num_envs=4, horizon=20, seed=0, component_bias=0.0, nan_at=None,
               nan_in="obs", terminate_rows=()):
    self.num_envs, self.horizon = num_envs, horizon
    # Rows whose episodes end in a termination at the horizon; the others are truncated there.
    self.terminates = np.isin(np.arange(num_envs), terminate_rows)
    self.rng = np.random.default_rng(seed)
    self.component_bias = component_bias
    self.nan_at, self.nan_in = nan_at, nan_in   # At call `nan_at`, "obs", "reward" or "control".
    self.action_space = types.SimpleNamespace(shape=(2,), low=-2.0, high=2.0)
    self.observation_space = types.SimpleNamespace(shape=(3,))
    self.calls = 0

  def _obs(self):
    return np.concatenate([self.pos, self.time[:, None] / self.horizon], -1).astype(np.float32)

  def reset(self):
    self.pos = self.rng.uniform(-1, 1, (self.num_envs, 2))
    self.time = np.zeros(self.num_envs)
    self.pending = np.zeros(self.num_envs, bool)
    return self._obs(), {}

  def step(self, action):
    self.calls += 1
    action = np.asarray(action, np.float64) / 2.0          # The box is [-2, 2].
    assert np.all(np.abs(action) <= 1.0)
    resetting = self.pending.copy()
    self.pos = np.where(resetting[:, None], self.rng.uniform(-1, 1, self.pos.shape),
                        np.clip(self.pos + 0.2 * action, -1.5, 1.5))
    self.time = np.where(resetting, 0, self.time + 1)
    distance = -np.linalg.norm(self.pos, axis=-1)
    control = -0.1 * np.sum(action ** 2, -1)
    comps = np.where(resetting[:, None], 0.0, np.stack([distance, control + self.component_bias],
                                                        -1))
    reward = np.where(resetting, 0.0, distance + control).astype(np.float32)
    ended = ~resetting & (self.time >= self.horizon)
    terminated, truncated = ended & self.terminates, ended & ~self.terminates
    self.pending = ended
    obs = self._obs()
    if self.nan_at is not None and self.calls == self.nan_at:
      if self.nan_in == "obs":
        obs[0, 1] = np.nan
      elif self.nan_in == "reward":
        reward[1] = np.inf
        comps[1, 0] = np.inf
      else:
        comps[2, 1] = np.nan
        reward[2] = np.nan
    return types.SimpleNamespace(obs=obs, reward=reward, terminated=terminated,
                                 truncated=truncated, reward_components=comps,
                                 info={"reset_step": resetting})


def _finite_reward_step(env, step, action):
  """A step whose reward is replaced by a finite one: only the component stays broken."""
  out = step(action)
  out.reward = np.nan_to_num(out.reward)
  return out


# Two updates per step: exercises the lax.scan over updates (train_test covers the single one).
CONFIG = train.TrainConfig(
    agent="sac_d", sac=sac.SacConfig(hidden_sizes=(32, 32), actor_learning_rate=1e-3,
                                     critic_learning_rate=1e-3, alpha_learning_rate=1e-3),
    num_envs=4, buffer_size=5000, batch_size=64, learning_starts=50, updates_per_step=2,
    influence_states=16)


@functools.cache
def _trainer():
  """One trainer (one set of compiled functions) for every test: the environments share shapes."""
  return host_train.make_host_train(CONFIG, HostPointMass())


def test_host_loop_learns_and_skips_reset_rows():
  env = HostPointMass()
  trainer = _trainer()
  state, history = host_train.run_host_training(trainer, env, 600, jax.random.key(0),
                                                 metrics_every=10)
  # 600 steps of 4 envs, 21 calls per 20-step episode: the reset rows (one per episode) are not
  # stored, so the buffer holds 4 * 600 minus the resets.
  resets = 4 * (600 // 21)
  assert int(state.buffer.size) == 4 * 600 - resets
  stored = np.asarray(state.buffer.data.obs[:int(state.buffer.size)])
  np.testing.assert_allclose(stored[:, 2] * 20 % 1, 0, atol=1e-5)
  assert np.all(stored[:, 2] < 1.0)   # No stored row starts at a final (t = horizon) state.
  # One compilation for the whole run: numpy inputs keep their dtypes and shapes every step.
  assert trainer.learn_and_act._cache_size() == 1
  returns = history["episode_return"]
  assert len(returns) == resets
  np.testing.assert_allclose(history["episode_components"].sum(-1), returns, rtol=1e-6)
  # Random play scores about -17; learning must lift the last episodes well above the first.
  assert returns[-8:].mean() > returns[:8].mean() + 3.0, returns
  infl = history["influence"][-1]
  np.testing.assert_allclose(infl.sum(), 1.0, rtol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
  # Env 0 terminates at the horizon; envs 1-3 are cut by the time limit, as HalfCheetah always is.
  env = HostPointMass(terminate_rows=(0,))
  state, history = host_train.run_host_training(_trainer(), env, 45, jax.random.key(0))
  # Calls 1-20 and 22-41 are the two episodes, 21 and 42 reset steps (not stored), 43-45 a third.
  size = int(state.buffer.size)
  assert size == 4 * 43
  data = jax.tree.map(lambda x: np.asarray(x[:size]), state.buffer.data)
  env_of_row = np.arange(size) % 4       # All four environments store a row on every live step.
  t = np.round(data.obs[:, 2] * 20)
  # s' of every stored row, the last of an episode included, is that episode's next observation
  # (t = 20 after t = 19), never the first observation of the next episode.
  np.testing.assert_array_equal(np.round(data.next_obs[:, 2] * 20), t + 1)
  final = t == 19
  assert final.sum() == 8
  # The stored discount: 0 only at the terminations (env 0), 1 at time-limit truncations.
  np.testing.assert_array_equal(data.discount[final], np.where(env_of_row[final] == 0, 0.0, 1.0))
  np.testing.assert_array_equal(data.discount[~final], 1.0)
  assert len(history["episode_return"]) == 8


@pytest.mark.skipif(importlib.util.find_spec("envpool") is None, reason="envpool not installed")
def test_envpool_halfcheetah_truncation_is_stored_as_a_bootstrapped_transition():
  from envs.host.envpool_env import HostEnv  # noqa: PLC0415  (envpool is heavy)
  env = HostEnv("HalfCheetah-v4", num_envs=1, seed=0)
  # No update runs (learning_starts beyond the run): this checks what the loop stores.
  config = CONFIG._replace(agent="sac", num_envs=1, learning_starts=10_000, updates_per_step=1,
                           sac=CONFIG.sac._replace(hidden_sizes=(8,)))
  trainer = host_train.make_host_train(config, env)
  state, history = host_train.run_host_training(trainer, env, 1003, jax.random.key(0))
  env.close()
  # One 1000-step episode that ends by the time limit, envpool's reset step (not stored), then
  # two steps of the next episode.
  np.testing.assert_array_equal(history["episode_step"], [1000])
  assert int(state.buffer.size) == 1002
  data = jax.tree.map(lambda x: np.asarray(x[:1002]), state.buffer.data)
  # HalfCheetah never terminates: every transition, the time-limit one included, bootstraps.
  np.testing.assert_array_equal(data.discount, 1.0)
  # Within an episode s' of a row is s of the next; the last row's s' is the final state, not
  # the first observation of the next episode (row 1000).
  np.testing.assert_array_equal(data.next_obs[:999], data.obs[1:1000])
  assert not np.allclose(data.next_obs[999], data.obs[1000])
  np.testing.assert_array_equal(data.next_obs[1000], data.obs[1001])


def test_host_loop_bad_input():
  trainer = _trainer()
  with pytest.raises(ValueError, match=r"'HostPointMass'.*do not sum.*control="):
    host_train.run_host_training(trainer, HostPointMass(component_bias=0.5), 2,
                                 jax.random.key(0))
  env = HostPointMass(nan_at=1)
  with pytest.raises(ValueError, match=r"'HostPointMass' returned a non-finite observation"):
    host_train.run_host_training(trainer, env, 5, jax.random.key(0))
  with pytest.raises(ValueError, match=r"'HostPointMass' returned a non-finite reward"):
    host_train.run_host_training(trainer, HostPointMass(nan_at=2, nan_in="reward"), 5,
                                 jax.random.key(0))
  env = HostPointMass(nan_at=2, nan_in="control")
  env.step = functools.partial(_finite_reward_step, env, env.step)
  with pytest.raises(ValueError, match=r"'HostPointMass': reward component 'control' is "
                                       r"non-finite"):
    host_train.run_host_training(trainer, env, 5, jax.random.key(0))
  env = HostPointMass()
  env.component_names = ("reward",)
  with pytest.raises(ValueError, match=r"'HostPointMass' provides no reward components"):
    host_train.make_host_train(CONFIG, env)
  with pytest.raises(ValueError, match="num_envs"):
    host_train.make_host_train(CONFIG._replace(num_envs=3), HostPointMass())


def test_discounted_component_returns_hand_worked():
  from agents.sac import component_values
  rewards = np.array([[[1.0, 0.0]], [[2.0, 1.0]], [[4.0, 0.0]]])     # [T=3, N=1, K=2]
  done = np.array([[False], [True], [False]])
  out = component_values.discounted_component_returns(rewards, done, 0.5)
  # Episode ends after t=1: G_1 = r_1, G_0 = r_0 + 0.5 r_1; G_2 = r_2 (rollout ends).
  np.testing.assert_allclose(out[:, 0], [[2.0, 0.5], [2.0, 1.0], [4.0, 0.0]])


def test_component_values_evaluation_runs_on_trained_state():
  from agents.sac import component_values
  trainer = _trainer()
  env = HostPointMass(seed=1)
  state, _ = host_train.run_host_training(trainer, env, 100, jax.random.key(0))
  out = component_values.evaluate_component_values(trainer, state, env, 63, gamma=0.5)
  # 63 calls = episodes of calls 1-20, 22-41, 43-62 with reset calls 21, 42, 63 (excluded).
  # Every live state's episode ends inside the rollout, so all 60 per environment count.
  assert out["num_states"] == 4 * 60
  out = component_values.evaluate_component_values(trainer, state, HostPointMass(seed=2), 15,
                                                   gamma=0.5)
  # No episode ends within 15 calls: only states with >= 7 steps after them count (t < 8).
  assert out["num_states"] == 4 * 8
  # Both components are non-positive per step, so their observed discounted sums are too.
  assert np.all(out["observed"] <= 0) and np.all(np.isfinite(out["predicted"]))
