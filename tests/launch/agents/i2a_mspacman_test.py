"""I2A on MsPacman (B18's MS_PACMAN through `envs.make("mspacman")`): the reward classes by hand,
and the environment model and an I2A agent trained through the host-stepped environment."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import i2a
from launch.agents import i2a_common
from launch.agents.configs import i2a_sokoban


def test_mspacman_reward_classes_by_hand():
  spec = i2a_common.reward_spec("mspacman", None)
  assert spec.values[:4] == (0.0, 10.0, 50.0, 100.0) and spec.num_classes == 13
  got = spec.class_fn(jnp.array([0.0, 10.0, 50.0, 60.0, 210.0, 400.0, 5000.0]))
  # 60 -> 50 (energizer + dot in one frame-skipped step), 210 -> 200 (ghost + dot).
  np.testing.assert_array_equal(got, [0, 1, 2, 2, 4, 5, 12])


@pytest.mark.slow  # about 30 s on the shared 2 cores (compilation); fast counterpart:
# tests/envs/jax_host_env_test.py::test_a2c_trains_on_mspacman_through_the_callbacks
def test_i2a_trains_on_mspacman_through_the_host_environment():
  pytest.importorskip("envpool")
  from envs.host import envpool_env

  if envpool_env.atari_rom_path("MsPacman") is None:
    pytest.skip("envpool's MsPacman ROM is not installed")
  import envs

  c = i2a_sokoban.get_config("smoke")
  env, params = envs.make("mspacman", size=12, params={"max_steps": 30})
  spec = i2a_common.reward_spec("mspacman", params)
  model = i2a.env_model_for(i2a_common.model_config(c), env, params, spec)
  model_params = model.init(jax.random.key(0))
  i2a.check_compatible(model, env, params, model_params)
  cfg = i2a_common.agent_config(c, "i2a", depth=2)
  cfg = cfg.replace(a2c=cfg.a2c.replace(num_envs=2, rollout_length=3, updates_per_chunk=2))
  trainer = i2a.make_agent_trainer(cfg, env, params, env_model=model, model_params=model_params,
                                   env_name="mspacman")
  state = jax.jit(trainer.init)(jax.random.key(1))
  state, metrics = jax.jit(trainer.chunk)(state)
  assert int(state.frames) == 2 * 3 * 2
  assert np.all(np.isfinite(np.asarray(metrics["loss"])))
  env.close()


def test_i2a_ssm_full_is_mspacman_and_bad_tasks_are_refused(tmp_path):
  from launch import app
  from launch.agents import i2a_ssm
  from launch.agents.configs import i2a_ssm as c_ssm

  c = c_ssm.get_config("full")
  assert c.task == "mspacman" and tuple(c.ssm.factors) == (4, 2)
  assert c.model.frame_likelihood == c.ssm.frame_likelihood == "categorical"
  assert i2a_common.model_config(c).change_threshold == 0.5   # valid for categorical tiles
  c = c_ssm.get_config("smoke")
  c.task = "pong"
  with pytest.raises(ValueError, match="config.task: 'pong' is neither a MiniPacman task"):
    app.execute(i2a_ssm.experiment, c, tmp_path, progress=False)
