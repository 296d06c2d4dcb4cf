"""launch.agents.i2a_ssm (I2A on a state-space model, Buesing et al. 2018 Sec. 5): registration,
presets, the default budget, bad agent and task names, the SSM cache refused by name when
corrupted or trained under another config; the smoke run (slow)."""
import json

import flax.serialization
import jax
import numpy as np
import pytest

from agents.i2a import ssm_model
from latent_dynamics import env_models
from launch import app, reproduce
from launch.agents import i2a_common, i2a_ssm
from launch.agents.configs import i2a_ssm as c_ssm


def test_registered_presets_and_budget():
  assert "agents.i2a_ssm" in reproduce.registered_experiments()
  for preset in ("smoke", "default", "full"):
    c = c_ssm.get_config(preset)
    assert i2a_ssm.check_agents(c.agents) == c_ssm.AGENTS
    assert i2a_common.agent_config(c, "i2a").net.rollout_training == "distill"
  a = c_ssm.get_config("default").agent
  assert a.num_envs * a.rollout_length * a.updates_per_chunk * a.num_chunks == 6_400
  with pytest.raises(ValueError, match="unknown preset 'demo'"):
    c_ssm.get_config("demo")


def test_bad_names_are_refused(tmp_path):
  with pytest.raises(ValueError, match="config.agents must list some of"):
    i2a_ssm.check_agents(("i2a_ssm", "dreamer"))
  c = c_ssm.get_config("smoke")
  c.task = "sokoban-7x7-2"
  with pytest.raises(ValueError, match=r"config.task: 'sokoban-7x7-2' is neither a MiniPacman"):
    app.execute(i2a_ssm.experiment, c, tmp_path, progress=False)


def test_corrupted_ssm_cache_is_refused_by_name(tmp_path):
  c = c_ssm.get_config("smoke")
  folder = tmp_path / "env_model"
  folder.mkdir()
  (folder / "ssm_sSSM.json").write_text("{}")
  (folder / "ssm_sSSM.msgpack").write_bytes(b"not a checkpoint")

  def experiment(config, run):
    env, params = i2a_common.environment(config.task, config)
    i2a_ssm.ssm_env_model(run, config, config.task, env, params)
    return {}
  with pytest.raises(ValueError, match=r"SSM cache .*ssm_sSSM.msgpack is corrupted"):
    app.execute(experiment, c, tmp_path, progress=False)


def test_ssm_cache_of_another_config_is_refused_by_name(tmp_path):
  """A cache trained under other `config.ssm` fields (free bits here) or other training fields
  (`ssm_chunks`) is not reused silently; the same ones load."""
  c = c_ssm.get_config("smoke")
  env, params = i2a_common.environment(c.task, c)
  model = env_models.make_env_model(env_models.EnvModelConfig(**dict(c.ssm.items())),
                                    env.observation_space(params).shape,
                                    env.action_space(params).num_values)
  ssm_model.SSMEnv(model, c.ssm_output)
  blob = flax.serialization.to_bytes(model.init(jax.random.key(0)))
  cached_key = i2a_ssm.ssm_cache_key(c)             # free_nats 1.0, ssm_chunks 1
  loaded = {}

  def load(config, run):
    folder = run.workdir / "env_model"
    folder.mkdir()
    (folder / "ssm_sSSM.msgpack").write_bytes(blob)
    (folder / "ssm_sSSM.json").write_text(json.dumps({"config": cached_key}))
    loaded["info"] = i2a_ssm.ssm_env_model(run, config, config.task, env, params)[2]
    return {}

  c.ssm.free_nats = 0.0
  with pytest.raises(ValueError, match=r"SSM cache .*ssm_sSSM.msgpack was trained under "
                                       r"config.ssm .*'free_nats': 1.0.*not this run's .*"
                                       r"'free_nats': 0.0"):
    app.execute(load, c, tmp_path / "a", progress=False)
  c.ssm.free_nats, c.ssm_chunks = 1.0, 7      # the training fields count too
  with pytest.raises(ValueError, match=r"'ssm_chunks': 1\}, not this run's .*'ssm_chunks': 7"):
    app.execute(load, c, tmp_path / "b", progress=False)
  c.ssm_chunks = 1
  app.execute(load, c, tmp_path / "c", progress=False)
  assert loaded["info"]["config"] == cached_key


@pytest.mark.slow   # several minutes on the shared 2 cores (four agents and two models compiled)
def test_smoke(tmp_path):
  c = c_ssm.get_config("smoke")
  summary = app.execute(i2a_ssm.experiment, c, tmp_path, progress=False)
  for agent in c_ssm.AGENTS:
    assert summary[f"frames/{agent}"] == 4 * 5 * 3 * 2
    assert np.isfinite(summary[f"final_return/{agent}"])
  assert 0.0 <= summary["ssm_tile_accuracy_k1"] <= 1.0
  assert (tmp_path / "figures" / "curves.png").exists()
  assert "i2a_ssm_query" in (tmp_path / "results.md").read_text()
