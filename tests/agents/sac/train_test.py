"""Tests of the jitted SAC-D training loop on the point-mass task (vmapped over two seeds)."""
import jax
import numpy as np
from point_mass import PointMass

from agents.sac import sac, train

STEPS_PER_CHUNK = 300


def test_sac_d_learns_point_mass_over_two_seeds():
  config = train.TrainConfig(
      agent="sac_d", sac=sac.SacConfig(hidden_sizes=(32, 32), actor_learning_rate=1e-3,
                                       critic_learning_rate=1e-3, alpha_learning_rate=1e-3),
      num_envs=4, buffer_size=10_000, batch_size=64, learning_starts=50,
      steps_per_chunk=STEPS_PER_CHUNK, num_chunks=3, influence_states=16)
  trainer = train.make_trainer(config, PointMass(), env_name="point_mass",
                             component_names=PointMass.component_names)
  assert trainer.component_names == ["distance", "control"]
  state, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 2))
  assert metrics["influence"].shape == (2, 900, 2)
  assert int(state.env_steps[0]) == 900 and int(state.buffer.size[0]) == 3600
  returns = train.episode_returns(metrics, STEPS_PER_CHUNK)      # [seeds, chunks]
  assert np.all(np.isfinite(returns))
  # A uniformly random policy scores about -17 per 20-step episode (distance ~ -0.8 per step);
  # heading to the origin scores better than -9. Both seeds must improve by a wide margin
  # within 900 env steps.
  assert np.all(returns[:, -1] > returns[:, 0] + 4.0), returns
  assert np.all(returns[:, -1] > -13.5), returns
  infl = metrics["influence"][:, -1]
  np.testing.assert_allclose(infl.sum(-1), 1.0, rtol=1e-5)
  # The distance shaping dominates the action choice once the point has learned to move.
  assert np.all(infl[:, 0] > 0.5), infl
  train.check_finite("point_mass", trainer.component_names, metrics)   # Raises if not.
  # Episodes end by the time limit only: every stored row bootstraps (discount 1), and s' of the
  # last row of an episode is its final observation (info["final_obs"], t = 20/20), not the next
  # episode's first (t = 0).
  data = jax.tree.map(lambda x: np.asarray(x[0, :3600]), state.buffer.data)
  np.testing.assert_array_equal(data.discount, 1.0)
  np.testing.assert_allclose(data.next_obs[:, 2], data.obs[:, 2] + 0.05, atol=1e-6)
  assert np.sum(np.isclose(data.next_obs[:, 2], 1.0)) == 4 * 900 // 20
  # The component returns of finished episodes add up to the episode returns.
  np.testing.assert_allclose(metrics["episode_components_sum"].sum(-1),
                             metrics["episode_return_sum"], rtol=1e-4, atol=1e-3)


def test_episode_returns_windows():
  metrics = {"episode_return_sum": np.array([0, 5.0, 0, 0, 3.0, 1.0]),
             "episodes_done": np.array([0, 1.0, 0, 0, 1.0, 1.0])}
  np.testing.assert_allclose(train.episode_returns(metrics, 2), [5.0, np.nan, 2.0])
