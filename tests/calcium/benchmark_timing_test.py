"""The OASIS timing of benchmarks/calcium_vs_oasis.py leaves out the first call's import cost."""
import time

import numpy as np

from benchmarks import calcium_vs_oasis
from calcium import oasis_baseline


def test_time_oasis_excludes_first_call_cost(monkeypatch):
  calls = []

  def fake_deconvolve(f, order):  # First call slow, like oasis-deconv's import (~1 s).
    calls.append(len(f))
    if len(calls) == 1:
      time.sleep(0.5)
    return np.full(len(f), float(order))

  monkeypatch.setattr(oasis_baseline, "oasis_deconvolve", fake_deconvolve)
  traces = np.zeros((3, 1000))
  seconds, preds = calcium_vs_oasis.time_oasis(traces, 2, repeats=3)
  assert calls == [500] + [1000] * 9  # One short warm-up call, then 3 timed passes of 3 traces.
  assert seconds < 0.1  # The 0.5 s first call is not in the median.
  np.testing.assert_array_equal(np.stack(preds), np.full((3, 1000), 2.0))
