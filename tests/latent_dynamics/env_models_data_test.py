"""Windows of `latent_dynamics.env_models.data.sequences_from_trajectory`, by hand."""
import numpy as np
import pytest

from latent_dynamics.env_models import data


def test_windows_by_hand_skip_episode_ends():
  # One environment, 7 steps; frame i is the number i (as a [1, 1, 1] frame); the episode
  # ends on step 4 (valid 0), so frame 5 = obs_tm1[5] starts the next episode.
  t = 7
  obs_tm1 = np.arange(t, dtype=np.float32).reshape(t, 1, 1, 1, 1)
  obs_t = obs_tm1 + 1
  action = np.arange(t).reshape(t, 1) % 4
  reward = 10.0 * np.arange(t).reshape(t, 1)
  valid = np.ones((t, 1))
  valid[4] = 0
  seq = data.sequences_from_trajectory(obs_tm1, action, obs_t, reward, valid, length=2)
  # A window of length 2 spans 4 transitions: only j = 0 (transitions 0-3) is in one episode.
  np.testing.assert_array_equal(seq.obs[:, :, 0, 0, 0], [[0, 1, 2, 3, 4]])
  np.testing.assert_array_equal(seq.action, [[2, 3]])         # transitions 2 and 3
  np.testing.assert_array_equal(seq.reward, [[20.0, 30.0]])
  valid[4] = 1
  seq = data.sequences_from_trajectory(obs_tm1, action, obs_t, reward, valid, length=2,
                                       stride=2)
  np.testing.assert_array_equal(seq.obs[:, :, 0, 0, 0], [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6]])
  np.testing.assert_array_equal(seq.obs[1, -1], obs_t[5, 0])    # the last frame is obs_t[5]
  with pytest.raises(ValueError, match="length and stride must be >= 1"):
    data.sequences_from_trajectory(obs_tm1, action, obs_t, reward, valid, length=0)
  with pytest.raises(ValueError, match="a window needs 12"):
    data.sequences_from_trajectory(obs_tm1, action, obs_t, reward, valid, length=10)
