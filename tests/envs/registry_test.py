"""envs.make: every registered name builds its environment; bad names and keywords are refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import minipacman


def test_names():
  names = envs.registered_environments()
  assert names == tuple(f"minipacman-{t}" for t in minipacman.TASKS) + (
      "sokoban", "po-sokoban", "maze", "spaceship", "mspacman")


@pytest.mark.parametrize("task", minipacman.TASKS)
def test_minipacman_tasks(task):
  env, params = envs.make(f"minipacman-{task}", observation="rgb")
  assert isinstance(env, envs.MiniPacman) and env.task == task and env.observation == "rgb"
  np.testing.assert_array_equal(params.task_weights,
                                envs.TASK_WEIGHTS[minipacman.TASKS.index(task)])


def test_kwargs_and_params_reach_the_environment():
  env, params = envs.make("sokoban", height=7, width=7, num_boxes=2, params={"max_steps": 60})
  assert isinstance(env, envs.Sokoban) and (env.height, env.width, env.num_boxes) == (7, 7, 2)
  assert params.max_steps == 60
  obs, state = jax.jit(env.reset)(jax.random.key(0), params)
  assert obs.shape == (7, 7, 7)
  _, _, reward, *_ = jax.jit(env.step)(jax.random.key(1), state, jnp.int32(0), params)
  assert np.isfinite(float(reward))
  env, _ = envs.make("po-sokoban", height=7, width=7, num_boxes=2)
  assert isinstance(env, envs.POSokoban)
  env, _ = envs.make("maze", cells=3)
  assert isinstance(env, envs.Maze) and env.cells == 3
  env, params = envs.make("spaceship", num_planets=2)
  assert isinstance(env, envs.Spaceship) and env.num_planets == 2
  assert isinstance(env.action_space(params), envs.spaces.Box)


def test_mspacman_builds_with_its_keywords():
  pytest.importorskip("envpool")
  from envs.host import envpool_env

  if envpool_env.atari_rom_path("MsPacman") is None:
    pytest.skip("envpool's MsPacman ROM is not installed")
  env, params = envs.make("mspacman", size=20, params={"max_steps": 7})
  assert env.obs_shape == (20, 20, 8) and int(params.max_steps) == 7 and env.num_actions == 9
  env.close()


def test_unknown_name_lists_known_ones():
  with pytest.raises(ValueError, match="unknown environment 'pacman'") as err:
    envs.make("pacman")
  for name in envs.registered_environments():
    assert name in str(err.value)


def test_unknown_keywords_are_named():
  with pytest.raises(TypeError, match=r"'maze' takes no keyword\(s\) \['size'\]"):
    envs.make("maze", size=5)
  with pytest.raises(TypeError, match=r"'minipacman-hunt' takes no keyword\(s\) \['task'\]"):
    envs.make("minipacman-hunt", task="rush")
  with pytest.raises(TypeError, match=r"params have no field\(s\) \['horizon'\]"):
    envs.make("maze", params={"horizon": 3})
