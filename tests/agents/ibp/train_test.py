"""IBP planner trainer: bad config by name, and a two-update chunk at a fixed budget (state,
metrics and the evaluation's imagination count checked by value; slow: 25 s of compilation,
tests/launch/agents/ibp_test.py::test_smoke_fast runs the same path in the default suite)."""
import jax
import numpy as np
import pytest

from agents.ibp import planner as pl
from agents.ibp import train as tr
from envs import spaceship as ss


def test_bad_config_is_named():
  for field, value in (("batch_size", 0), ("updates_per_chunk", 1.5), ("eval_episodes", -2)):
    with pytest.raises(ValueError, match=f"config.{field}"):
      tr.check_config(tr.TrainConfig().replace(**{field: value}))
  with pytest.raises(ValueError, match="config.learning_rate"):
    tr.check_config(tr.TrainConfig(learning_rate=0.0))
  with pytest.raises(ValueError, match="config.model_learning_rate"):
    tr.check_config(tr.TrainConfig(model_learning_rate=-1e-3))


@pytest.mark.slow
def test_chunk_and_evaluate_at_a_fixed_budget():
  env = ss.Spaceship()
  p = env.default_params.replace(num_actions=1)
  planner = pl.make_planner(pl.PlannerConfig(strategy="n_step", max_imaginations=2,
                                             fixed_budget=True, memory_size=8,
                                             controller_hidden=(8,), manager_hidden=(8,),
                                             baseline_hidden=(8,)),
                            env, p, pl.simulator_imagination(env, p))
  trainer = tr.make_trainer(planner, tr.TrainConfig(batch_size=4, updates_per_chunk=2,
                                                    eval_episodes=8))
  state0 = trainer.init(jax.random.PRNGKey(0))
  state, metrics = trainer.chunk(state0)
  assert int(state.updates) == 2 and metrics["loss"].shape == (2,)
  assert all(np.all(np.isfinite(v)) for v in metrics.values())
  np.testing.assert_array_equal(metrics["imaginations_per_action"], [2.0, 2.0])
  moved = [float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(state.params),
                                                       jax.tree.leaves(state0.params))]
  assert max(moved) > 0
  out = trainer.evaluate(state.params, jax.random.PRNGKey(1))
  assert out["imaginations_per_action"] == 2.0 and out["root_fraction"] == 0.0
  assert out["task_loss"] > 0 and out["episodes"] == 8
