"""OASIS (Friedrich, Zhou, Paninski 2017) as the comparison point of the experiments and benchmark.

`oasis-deconv` is an optional dependency (setup.cfg's `bench` extra); it is imported on first use.
OASIS returns a non-negative deconvolved activity of arbitrary amplitude per frame; the
spikefinder correlation is invariant to that scale.
"""
from __future__ import annotations

import numpy as np

ORDERS = (1, 2)


def oasis_deconvolve(fluorescence: np.ndarray, order: int = 2) -> np.ndarray:
  """Deconvolved activity (T,) of one trace with an AR(order) kernel estimated from the data.

  Args:
    fluorescence: (T,) finite trace.
    order: 1 (AR1: decay only) or 2 (AR2: rise and decay).
  """
  try:
    from oasis.functions import deconvolve
  except ImportError as e:  # Optional dependency.
    raise ImportError("oasis_deconvolve needs the `oasis-deconv` package "
                      "(pip install 'oasis-deconv>=0.3,<0.4', or the bench extra).") from e
  if order not in ORDERS:
    raise ValueError(f"order must be 1 or 2; got {order!r}.")
  y = np.asarray(fluorescence, dtype=np.float64)
  if y.ndim != 1 or not np.all(np.isfinite(y)):
    raise ValueError(f"fluorescence must be a finite 1-D trace; got shape {y.shape}.")
  result = deconvolve(y, tau_r=0 if order == 1 else None, penalty=1)
  return np.asarray(result.s)
