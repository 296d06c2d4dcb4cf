"""Tests of the envpool adapters: reward components sum to envpool's reward step by step,
truncation apart from termination, the Sokoban level-file fallback, Sokoban rules vs ours."""
import jax
import numpy as np
import pytest

envpool = pytest.importorskip("envpool")

from envs import sokoban  # noqa: E402
from envs.host import envpool_env as ee  # noqa: E402
from envs.host import reward_components as rc  # noqa: E402

CONTINUOUS = ["HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4",
              "Swimmer-v4", "LunarLanderContinuous-v2"]


@pytest.mark.parametrize("task_id", CONTINUOUS)
def test_components_sum_to_reward_step_by_step(task_id):
  env = ee.HostEnv(task_id, num_envs=4, seed=3)
  env.reset()
  rng = np.random.default_rng(0)
  low, high = env.action_space.low, env.action_space.high
  k = len(env.component_names)
  ended = 0
  for _ in range(150 if task_id.startswith("Lunar") else 60):
    # Slightly outside the bounds, to check that costs use the action the way envpool does.
    a = rng.uniform(1.2 * low, 1.2 * high, (4,) + env.action_space.shape).astype(np.float32)
    out = env.step(a)
    assert out.reward_components.shape == (4, k)
    np.testing.assert_allclose(out.reward_components.sum(-1), out.reward, atol=2e-5 * k,
                               rtol=1e-5)
    ended += int(out.terminated.sum())
  if task_id.startswith("Lunar"):
    assert ended > 0  # the terminal +-100 component was exercised
  env.close()


def test_lunar_shaping_by_hand():
  prev = np.zeros((1, 8))
  obs = np.array([[0.3, 0.4, 0.0, 0.0, 0.1, 0.0, 1.0, 0.0]])
  c = rc.lunar_lander(prev, obs, np.array([[0.5, -0.7]]), np.array([False]), np.array([0.0]))
  # position -100 * 0.5, angle -10, left leg +10, main (0.5 + 1) / 2 * -0.3, side 0.7 * -0.03.
  np.testing.assert_allclose(c[0], [-50, 0, -10, 10, 0, -0.225, -0.021, 0], atol=1e-12)
  c = rc.lunar_lander(prev, obs, np.zeros((1, 2)), np.array([True]), np.array([-100.0]))
  np.testing.assert_allclose(c[0], [0, 0, 0, 0, 0, 0, 0, -100])


def test_truncation_reported_apart_from_termination():
  env = ee.HostEnv("HalfCheetah-v4", num_envs=2, max_episode_steps=5)
  env.reset()
  flags = [env.step(np.zeros((2, 6), np.float32)) for _ in range(6)]
  assert [bool(f.truncated[0]) for f in flags] == [False] * 4 + [True, False]
  assert not any(bool(f.terminated.any()) for f in flags)
  # The step after the end is envpool's reset step: reward 0, components 0.
  assert flags[5].info["reset_step"].all() and np.all(flags[5].reward_components == 0)


def test_sokoban_fallback_is_detected(tmp_path):
  assert ee.count_distinct_sokoban_levels(base_path=str(tmp_path)) == 1
  with pytest.raises(ValueError, match="single trivial level"):
    ee.HostEnv("Sokoban-v0", num_envs=2, base_path=str(tmp_path))


def test_sokoban_adapter_matches_our_rules():
  env = ee.HostEnv("Sokoban-v0", num_envs=16, seed=1)
  obs, _ = env.reset()
  levels = ee.sokoban_levels_from_grid(obs["grid"])
  assert len({np.asarray(levels.walls[i]).tobytes() for i in range(16)}) > 8
  ours = sokoban.Sokoban()
  params = ours.make_params(levels)
  states = jax.vmap(lambda i: ours.state_from_level(params.levels[i], i))(np.arange(16))
  step = jax.jit(jax.vmap(lambda s, a: ours.step_env(jax.random.PRNGKey(0), s, a, params)))
  rng = np.random.default_rng(0)
  alive = np.ones(16, bool)
  for _ in range(40):
    a = rng.integers(0, 4, 16).astype(np.int32)
    out = env.step(a)
    _, states, r, term, _, _ = step(states, ee.JUMANJI_TO_OURS[a])
    np.testing.assert_allclose(np.asarray(r)[alive], out.reward[alive], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(term)[alive], out.terminated[alive])
    alive &= ~(out.terminated | out.truncated)
  env.close()


def test_atari_mspacman():
  if ee.atari_rom_path("MsPacman") is None:
    pytest.skip("MsPacman ROM not installed in envpool's assets (pip install envpool-assets)")
  env = ee.HostEnv("MsPacman-v5", num_envs=2)
  obs, _ = env.reset()
  assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
  out = env.step(np.array([1, 2], np.int32))
  assert env.component_names == ("reward",)
  np.testing.assert_array_equal(out.reward_components[:, 0], out.reward)
  with pytest.raises(ValueError, match=r"action must be in \[0, 9\)"):
    env.step(np.array([1, 9], np.int32))
  with pytest.raises(ValueError, match="shape"):
    env.step(np.array([1], np.int32))
  with pytest.raises(ValueError, match="not an envpool task"):
    ee.HostEnv("NoSuchGame-v0")
