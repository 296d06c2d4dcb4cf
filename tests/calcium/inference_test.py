"""Tests of calcium.inference: NaN frames, frame-rate mismatch, short traces, shapes."""
import logging

import jax
import numpy as np
import pytest

from calcium import data, inference, recognition


@pytest.fixture(scope="module")
def net():
  rec = recognition.make_factorised(features=(4, 4), kernel_size=5, num_traces=1)
  return rec, rec.init(jax.random.key(0), np.zeros((20, 1)))


def _trace(n=120, seed=0):
  return np.random.default_rng(seed).normal(size=n) + np.sin(np.arange(n) / 7.0)


def test_nan_frames_are_skipped_and_reported_not_propagated(net, caplog):
  rec, params = net
  f = _trace()
  f[[50, 51]] = np.nan
  with caplog.at_level(logging.WARNING):
    out = inference.infer_trace(rec, params, f, frame_rate=60.0, model_frame_rate=60.0,
                                name="cell7")
  assert out.nan_frames == 2 and not out.resampled
  assert "cell7: 2 NaN frames skipped" in caplog.text
  np.testing.assert_array_equal(np.isnan(out.rate), ~np.isfinite(f))  # Only the NaN frames.
  # Elsewhere: the network on the normalised, interpolated trace (one forward pass).
  ref = rec.probabilities(params, data.fill_nan(data.normalise(f))[:, None])[:, 0]
  ok = np.isfinite(f)
  np.testing.assert_allclose(out.rate[ok], np.asarray(ref)[ok], rtol=1e-6)
  # Fed raw, a NaN spreads over the 9-frame receptive field: what infer_trace prevents.
  raw = np.asarray(rec.probabilities(params, f[:, None]))[:, 0]
  assert np.isnan(raw).sum() >= 2 + 8


def test_frame_rate_mismatch_refused_or_resampled(net):
  rec, params = net
  f = _trace(300)
  with pytest.raises(ValueError, match="30.00 Hz does not match the trained model's 60.00 Hz"):
    inference.infer_trace(rec, params, f, frame_rate=30.0, model_frame_rate=60.0,
                          allow_resample=False)
  out = inference.infer_trace(rec, params, f, frame_rate=30.0, model_frame_rate=60.0)
  assert out.resampled and out.rate.shape == (599,) and out.frame_times.shape == (599,)
  np.testing.assert_allclose(np.diff(out.frame_times), 1 / 60.0, rtol=1e-9)
  # Within the 2% tolerance the trace is used as it is.
  assert not inference.infer_trace(rec, params, f, frame_rate=60.5, model_frame_rate=60.0).resampled


def test_bad_input_messages(net):
  rec, params = net
  with pytest.raises(ValueError, match="short: 8 frames at 60.00 Hz is shorter than the network's "
                                       "receptive field of 9 frames"):
    inference.infer_trace(rec, params, _trace(8), frame_rate=60.0, model_frame_rate=60.0,
                          name="short")
  with pytest.raises(ValueError, match="no finite frame"):
    inference.infer_trace(rec, params, np.full(50, np.nan), frame_rate=60.0, model_frame_rate=60.0)
  with pytest.raises(ValueError, match="frame_rate must be a positive number"):
    inference.infer_trace(rec, params, _trace(), frame_rate=-1.0, model_frame_rate=60.0)
  with pytest.raises(ValueError, match=r"shape \(T,\) or \(T, C\)"):
    inference.infer_trace(rec, params, np.zeros((2, 3, 4)), frame_rate=60.0, model_frame_rate=60.0)
  with pytest.raises(ValueError, match="1 trace"):
    inference.infer_trace(rec, params, np.stack([_trace(), _trace(seed=1)], 1), frame_rate=60.0,
                          model_frame_rate=60.0)
  with pytest.raises(ValueError, match="frame_times must have shape"):
    inference.infer_trace(rec, params, _trace(), frame_rate=60.0, model_frame_rate=60.0,
                          frame_times=np.arange(5.0))
  with pytest.raises(ValueError, match=r"cell3: frame_rate 60.000 Hz does not match frame_times "
                                       r"\(median interval: 30.000 Hz\)"):
    inference.infer_trace(rec, params, _trace(), frame_rate=60.0, model_frame_rate=60.0,
                          frame_times=np.arange(120) / 30.0, name="cell3")
