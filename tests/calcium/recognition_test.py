"""Tests of calcium.recognition: log q against independent per-bin Bernoulli sums."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from calcium import recognition


def _np_bernoulli_sum(probs, s):
  probs, s = np.asarray(probs, np.float64), np.asarray(s, np.float64)
  return np.sum(s * np.log(probs) + (1 - s) * np.log1p(-probs), axis=(-2, -1))


def test_factorised_log_q_is_sum_of_bernoulli_log_probs():
  rec = recognition.make_factorised(features=(8, 8), kernel_size=5, upsample=2,
                                    num_spike_channels=2)
  f = jax.random.normal(jax.random.key(0), (30, 1))
  params = rec.init(jax.random.key(1), f)
  probs, samples, log_q = rec.sample(params, f, jax.random.key(2), 4)
  assert samples.shape == (4, 60, 2) and log_q.shape == (4,)
  p = rec.probabilities(params, f)
  np.testing.assert_allclose(probs[0], p, rtol=1e-6)
  np.testing.assert_allclose(log_q, _np_bernoulli_sum(p, samples), rtol=1e-4)
  np.testing.assert_allclose(rec.log_prob(params, f, samples), log_q, rtol=1e-5)
  assert set(np.unique(np.asarray(samples))) <= {0.0, 1.0}


def test_autoregressive_sampler_matches_teacher_forcing():
  rec = recognition.make_autoregressive(features=(8,), kernel_size=5, hidden=8, upsample=2)
  f = jax.random.normal(jax.random.key(0), (20, 1))
  params = rec.init(jax.random.key(1), f)
  probs, samples, log_q = rec.sample(params, f, jax.random.key(3), 5)
  assert probs.shape == samples.shape == (5, 40, 1)
  np.testing.assert_allclose(rec.log_prob(params, f, samples), log_q, rtol=1e-5)
  # The probabilities the sampler used give the same log q per bin, computed independently.
  np.testing.assert_allclose(log_q, _np_bernoulli_sum(probs, samples), rtol=1e-4)
  # Non-factorised: the conditional probabilities differ between samples that differ earlier.
  assert float(jnp.max(jnp.abs(probs[0] - probs[1]))) > 0


def test_autoregressive_normalised_by_enumeration():
  # Sum of q over all 2^6 spike trains equals one.
  rec = recognition.make_autoregressive(features=(4,), kernel_size=3, hidden=4)
  f = jax.random.normal(jax.random.key(0), (6, 1))
  params = rec.init(jax.random.key(1), f)
  all_s = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(float)[..., None]
  total = jnp.sum(jnp.exp(rec.log_prob(params, f, jnp.asarray(all_s))))
  np.testing.assert_allclose(total, 1.0, rtol=1e-5)  # float32 network.


def test_autoregressive_probabilities_estimate_marginals():
  rec = recognition.make_autoregressive(features=(4,), kernel_size=3, hidden=4)
  f = jax.random.normal(jax.random.key(0), (5, 1))
  params = rec.init(jax.random.key(1), f)
  all_s = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(float)[..., None]
  q = np.exp(np.asarray(rec.log_prob(params, f, jnp.asarray(all_s))))
  exact = (q[:, None] * all_s[:, :, 0]).sum(0)
  est = rec.probabilities(params, f, jax.random.key(2), 4000)[:, 0]
  # Rao-Blackwellised mean of conditionals: std <= 0.5 / sqrt(4000) per bin; 5 standard errors.
  np.testing.assert_allclose(est, exact, atol=5 * 0.5 / np.sqrt(4000))


def test_per_layer_kernels_set_the_receptive_field():
  # Receptive field 1 + (5 - 1) + (3 - 1) = 7: an impulse at frame 20 reaches frames 17 .. 23.
  rec = recognition.make_factorised(features=(4, 4), kernel_size=(5, 3))
  assert rec.receptive_field == 7 == recognition.receptive_field((4, 4), (5, 3))
  f = jnp.zeros((41, 1))
  params = rec.init(jax.random.key(0), f)
  diff = np.abs(np.asarray(rec.probabilities(params, f.at[20, 0].set(5.0))
                           - rec.probabilities(params, f)))[:, 0]
  assert set(np.nonzero(diff > 0)[0]) <= set(range(17, 24)) and diff[17] > 0 and diff[23] > 0


def test_bad_input():
  rec = recognition.make_factorised(features=(4, 4), kernel_size=5, num_traces=1)
  assert rec.receptive_field == 9
  with pytest.raises(ValueError, match="one positive width per layer"):
    recognition.make_factorised(features=(4, 4), kernel_size=(5,))
  with pytest.raises(ValueError, match="fewer than the network's receptive field of 9"):
    rec.init(jax.random.key(0), jnp.zeros((8, 1)))
  with pytest.raises(ValueError, match=r"shape \(T, C\)"):
    rec.init(jax.random.key(0), jnp.zeros((20,)))
  with pytest.raises(ValueError, match="1 trace"):
    rec.init(jax.random.key(0), jnp.zeros((20, 2)))
