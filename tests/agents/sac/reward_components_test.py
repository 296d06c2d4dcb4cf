"""Tests of the reward-decomposition checks and of the training loop's bad-input errors."""
import jax
import numpy as np
import pytest
from point_mass import PointMass

from agents.sac import reward_components as rc
from agents.sac import sac, train


def test_check_step_accepts_consistent_components():
  rc.check_step("env", np.zeros((3, 2)), np.array([1.0, -0.5, 0.0]),
                np.array([[0.5, 0.5], [-1.0, 0.5], [0.0, 0.0]]), ["a", "b"])


def test_check_step_names_env_and_component():
  obs = np.zeros((2, 2))
  reward = np.array([1.0, 2.0])
  with pytest.raises(ValueError, match=r"'lander'.*reward component 'fuel' is non-finite"):
    rc.check_step("lander", obs, reward, np.array([[1.0, 0.0], [2.0, np.nan]]), ["shaping", "fuel"])
  with pytest.raises(ValueError,
                     match=r"'lander'.*do not sum.*shaping=2, fuel=0.5 sum to 2.5, reward is 2"):
    rc.check_step("lander", obs, reward, np.array([[1.0, 0.0], [2.0, 0.5]]), ["shaping", "fuel"])
  with pytest.raises(ValueError, match=r"'lander' returned a non-finite observation"):
    rc.check_step("lander", np.array([[0.0, np.inf], [0, 0]]), reward, np.ones((2, 1)))
  with pytest.raises(ValueError, match=r"'lander' returned a non-finite reward"):
    rc.check_step("lander", obs, np.array([np.nan, 1.0]), np.ones((2, 1)))
  with pytest.raises(ValueError, match=r"'cheetah' provides no info\['reward_components'\]"):
    rc.components_from_info("cheetah", {"x": 1})
  with pytest.raises(ValueError, match="2 names for 3 components"):
    rc.component_names_or_default(["a", "b"], 3)
  assert rc.component_names_or_default(None, 2) == ["component_0", "component_1"]


SMALL_SAC = sac.SacConfig(hidden_sizes=(4,))
CONFIG = train.TrainConfig(agent="sac_d", num_envs=2, buffer_size=64, batch_size=8,
                           learning_starts=4, steps_per_chunk=8, num_chunks=1)


def test_make_train_refuses_bad_environments():
  names = PointMass.component_names
  with pytest.raises(ValueError, match=r"'point_mass' provides no info\['reward_components'\]"):
    train.make_trainer(CONFIG, PointMass(with_components=False), env_name="point_mass",
                     component_names=names)
  with pytest.raises(ValueError, match=r"'point_mass'.*do not sum.*control="):
    train.make_trainer(CONFIG, PointMass(component_bias=1.0), env_name="point_mass",
                     component_names=names)
  with pytest.raises(ValueError, match=r"'point_mass' returned a non-finite observation"):
    train.make_trainer(CONFIG, PointMass(nan_obs=True), env_name="point_mass")
  with pytest.raises(ValueError, match="config.agent must be one of"):
    train.make_trainer(CONFIG._replace(agent="ppo"), PointMass())
  with pytest.raises(ValueError, match="config.learning_starts"):
    train.make_trainer(CONFIG._replace(learning_starts=0), PointMass())
  # Plain SAC does not need a decomposition.
  trainer = train.make_trainer(CONFIG._replace(agent="sac"), PointMass(with_components=False))
  assert trainer.num_components == 1


def test_check_finite_names_env_component_and_step():
  # A chunk of the jitted loop counts non-finite values; the host-side check raises by name.
  # Warm-up covers the whole chunk (no update), and without jit nothing is compiled: the
  # counting is the same code path, run op by op.
  config = CONFIG._replace(sac=SMALL_SAC, learning_starts=100)
  trainer = train.make_trainer(config, PointMass(nan_control_from=3), env_name="point_mass",
                             component_names=PointMass.component_names)
  with jax.disable_jit():
    _, metrics = trainer.chunk(trainer.init(jax.random.key(0)))
  np.testing.assert_array_equal(metrics["nonfinite_components"][:, 1], [0, 0] + [2] * 6)
  # Episode steps count from 1: step 3 of every episode is the chunk's third step (index 2).
  with pytest.raises(ValueError, match=r"'point_mass' returned a non-finite reward at env step 2"):
    train.check_finite("point_mass", trainer.component_names, metrics)
  metrics = dict(metrics, nonfinite_reward=np.zeros(8))
  with pytest.raises(ValueError, match=r"'point_mass' returned a non-finite reward component "
                                       r"'control' at env step 2"):
    train.check_finite("point_mass", trainer.component_names, metrics)
  seeds = {k: np.stack([np.zeros_like(v), v]) for k, v in metrics.items()
           if k.startswith("nonfinite")}
  with pytest.raises(ValueError, match=r"'control' at env step 2 of these metrics \(seed index 1"):
    train.check_finite("point_mass", trainer.component_names, seeds)
  clean = {k: np.zeros_like(v) for k, v in seeds.items()}
  train.check_finite("point_mass", trainer.component_names, clean)
