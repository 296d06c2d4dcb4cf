"""Scaling of the observations before fitting LL-LVM.

The model is not scale free: the priors on x and C have unit-weight Laplacian precisions
(Eqs. (1)-(2) of Park et al. 2015), so the size of y relative to them changes the fit. The
reference implementation centres y and divides it by its largest absolute entry before EM;
`normalise` does the same and returns the shift and scale, so that new points (the out-of-sample
extension) can be mapped with the same affine transformation.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from manifold.graph import check_observations


class Normalised(NamedTuple):
  """y_normalised = (y - shift) / scale."""
  y: np.ndarray
  shift: np.ndarray
  scale: float

  def apply(self, y_new) -> np.ndarray:
    """The same affine map applied to other observations (m, dy)."""
    y_new = np.asarray(y_new, dtype=np.float64)
    if y_new.ndim != 2 or y_new.shape[1] != self.shift.shape[0]:
      raise ValueError(f"y_new must be (m, {self.shift.shape[0]}); got shape {y_new.shape}.")
    return (y_new - self.shift) / self.scale


def normalise(y) -> Normalised:
  """Centres y (column means) and divides by the largest absolute centred entry.

  Args:
    y: (n, dy) finite observations without duplicate rows, not all equal.

  Returns:
    `Normalised` with y in [-1, 1] and the shift and scale used.
  """
  y = check_observations(y)
  shift = y.mean(axis=0)
  centred = y - shift
  scale = float(np.max(np.abs(centred)))
  if not scale > 0:
    raise ValueError("y has no spread (all rows equal); cannot normalise.")
  return Normalised(centred / scale, shift, scale)
