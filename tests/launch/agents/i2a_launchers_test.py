"""The three I2A launchers (MiniPacman tasks, Sokoban depths, poor vs good model): registration,
presets, the environment model's workdir cache (reused on resume, a corrupted file refused by
name), bad task names; smoke runs on the tiny presets (slow: about 1-3 minutes each on the
shared 2 cores, mostly compilation)."""
import json

import numpy as np
import pytest

from agents import i2a
from launch import app, reproduce
from launch.agents import i2a_common, i2a_minipacman, i2a_poor_model, i2a_sokoban
from launch.agents.configs import i2a_minipacman as c_minipacman
from launch.agents.configs import i2a_poor_model as c_poor
from launch.agents.configs import i2a_sokoban as c_sokoban

CONFIGS = {"agents.i2a_minipacman": c_minipacman, "agents.i2a_sokoban": c_sokoban,
           "agents.i2a_poor_model": c_poor}


def test_registered_and_every_preset_builds_the_agents():
  registered = reproduce.registered_experiments()
  for name, module in CONFIGS.items():
    assert name in registered
    for preset in ("smoke", "demo", "default", "full"):
      c = module.get_config(preset)
      for kind in ("standard", "copy", "i2a"):
        cfg = i2a_common.agent_config(c, kind, 5)
        assert cfg.agent == kind and cfg.net.depth == 5
      assert i2a_common.model_config(c).blocks
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
      module.get_config("huge")
  assert len(c_minipacman.get_config("default").tasks) == 5
  assert c_sokoban.get_config("default").depths == (1, 3, 5)
  with pytest.raises(ValueError, match="agent must be one of"):
    i2a_common.agent_config(c_sokoban.get_config("smoke"), "planner")


def test_default_budgets():
  """Frames per seed and agent of the CPU presets (agents/README.md states their wall times)."""
  for module, frames in ((c_minipacman, 3_200), (c_sokoban, 64_000), (c_poor, 96_000)):
    a = module.get_config("default").agent
    assert a.num_envs * a.rollout_length * a.updates_per_chunk * a.num_chunks == frames


def test_unknown_task_is_refused_by_name(tmp_path):
  with pytest.raises(ValueError, match="unknown environment 'pong' for I2A"):
    i2a_common.reward_spec("pong", None)
  c = c_minipacman.get_config("smoke")
  c.tasks = ("sokoban-7x7-2",)
  with pytest.raises(ValueError, match=r"config.tasks: 'sokoban-7x7-2' is not a MiniPacman"):
    app.execute(i2a_minipacman.experiment, c, tmp_path, progress=False)


def test_corrupted_model_cache_is_refused_by_name(tmp_path):
  c = c_minipacman.get_config("smoke")
  folder = tmp_path / "env_model"
  folder.mkdir()
  (folder / "good.json").write_text(json.dumps({"weights": [1.0] * 16,
                                                "model": i2a_common.model_fields(c)}))
  (folder / "good.msgpack").write_bytes(b"not a checkpoint")
  with pytest.raises(ValueError, match=r"environment model cache .*good.msgpack is corrupted"):
    app.execute(_load_cached_model("good"), c, tmp_path, progress=False)


def _load_cached_model(name):
  """An experiment that only loads (or would train) MiniPacman's model cached as `name`."""
  def experiment(config, run):
    tag = "minipacman-regular"
    env, params = i2a_common.environment(tag, config)
    i2a_common.env_model(run, config, name, tag, env, params)
    return {}
  return experiment


def test_model_cache_of_another_model_config_is_refused_by_name(tmp_path):
  """The cache records the model's fields; a cache written before they were recorded counts
  as the old categorical model without a copy path, so it cannot load into MiniPacman's
  Bernoulli model (same params tree, another likelihood) unnoticed."""
  c = c_minipacman.get_config("smoke")
  assert c.model.frame_likelihood == "bernoulli"
  folder = tmp_path / "env_model"
  folder.mkdir()
  (folder / "old.json").write_text(json.dumps({"weights": [1.0] * 16}))
  (folder / "old.msgpack").write_bytes(b"params of the old model")
  with pytest.raises(ValueError, match=r"cache .*old.msgpack was trained with another model "
                     r"config \(frame_likelihood='categorical', now 'bernoulli'"):
    app.execute(_load_cached_model("old"), c, tmp_path, progress=False)


@pytest.mark.slow  # about 2-3 minutes on the shared 2 cores (compiling 3 agents, twice)
def test_minipacman_smoke_and_resume_reuses_the_model(tmp_path):
  c = c_minipacman.get_config("smoke")
  summary = app.execute(i2a_minipacman.experiment, c, tmp_path, progress=False)
  tag = "minipacman-regular"
  for kind in ("standard", "copy", "i2a"):
    assert summary[f"frames/{tag}/{kind}"] == 4 * 5 * 3 * 2
    assert 0.0 <= summary[f"final_return/{tag}/{kind}"] < 60.0   # 20-step episodes
    assert np.isfinite(summary[f"random_return/{tag}/{kind}"])
  assert 0.0 <= summary["model_frame_accuracy_k1"] <= 1.0
  assert (tmp_path / "figures" / "curves.png").exists()
  assert "| minipacman-regular | i2a |" in (tmp_path / "results.md").read_text()
  cache = tmp_path / "env_model" / "minipacman.msgpack"
  stamp = cache.stat().st_mtime_ns
  again = app.execute(i2a_minipacman.experiment, c, tmp_path, progress=False)
  assert cache.stat().st_mtime_ns == stamp                     # loaded, not retrained
  assert again[f"final_return/{tag}/i2a"] == summary[f"final_return/{tag}/i2a"]
  assert again["model_frame_accuracy_k1"] == summary["model_frame_accuracy_k1"]


@pytest.mark.slow  # about 1-2 minutes on the shared 2 cores
def test_sokoban_smoke(tmp_path):
  summary = app.execute(i2a_sokoban.experiment, c_sokoban.get_config("smoke"), tmp_path,
                        progress=False)
  for name in ("standard", "copy", "i2a_d1"):
    assert 0.0 <= summary[f"solve_rate/{name}"] <= 1.0
    assert summary[f"frames/{name}"] == 4 * 5 * 3 * 2
    assert -25.0 <= summary[f"final_return/{name}"] <= 13.0   # 20 steps, 2 boxes
  assert (tmp_path / "figures" / "solve_rate.png").exists()
  assert "| i2a_d1 |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow  # about 2 minutes on the shared 2 cores
def test_poor_model_smoke(tmp_path):
  summary = app.execute(i2a_poor_model.experiment, c_poor.get_config("smoke"), tmp_path,
                        progress=False)
  for name in ("standard", "i2a_good", "i2a_poor", "mc_good", "mc_poor"):
    assert 0.0 <= summary[f"solve_rate/{name}"] <= 1.0
  good = json.loads((tmp_path / "env_model" / "good.json").read_text())
  poor = json.loads((tmp_path / "env_model" / "poor.json").read_text())
  assert (good["steps"], poor["steps"]) == (20, 2)        # the poor model trained far less
  assert summary["model_frame_accuracy_k1/good"] == good["frame_accuracy"][0]
  assert "| mc_poor |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow  # about 10 s; the poor-model smoke runs the same wiring
def test_mc_policy_runs_with_a_standard_agent():
  """The launcher's Monte-Carlo wiring on a real environment: a standard network's logits and
  value as rollout policy and bootstrap, one batch of actions in range."""
  import jax  # noqa: PLC0415
  c = c_minipacman.get_config("smoke")
  env, params = i2a_common.environment("minipacman-regular", c)
  model = i2a.env_model_for(i2a_common.model_config(c), env, params,
                            i2a_common.reward_spec("minipacman-regular", params))
  net = i2a.train._standard_network(i2a_common.agent_config(c, "standard").net, 5, 8)
  obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 3), params)
  net_params = net.init(jax.random.key(1), obs)
  policy = i2a.make_mc_search_policy(model, model.init(jax.random.key(2)),
                                     *i2a.standard_agent_parts(net, net_params), depth=2,
                                     num_rollouts=2, discount=0.99)
  action = jax.jit(policy)(jax.random.key(3), obs)
  assert action.shape == (3,) and np.all((np.asarray(action) >= 0) & (np.asarray(action) < 5))
