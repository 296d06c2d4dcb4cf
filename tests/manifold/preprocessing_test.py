"""Normalisation of the observations (the reference implementation's preprocessing)."""
import numpy as np
import pytest

from manifold import preprocessing


def test_normalise_hand_checked():
  y = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 8.0]])
  out = preprocessing.normalise(y)
  # Column means (2, 4); centred entries -1, 1, 0 and -2, -2, 4; largest |entry| 4.
  np.testing.assert_allclose(out.shift, [2.0, 4.0])
  assert out.scale == 4.0
  np.testing.assert_allclose(out.y, [[-0.25, -0.5], [0.25, -0.5], [0.0, 1.0]])
  np.testing.assert_allclose(out.apply([[6.0, 0.0]]), [[1.0, -1.0]])
  with pytest.raises(ValueError, match="y_new"):
    out.apply(np.zeros((1, 3)))


def test_normalise_bad_input():
  with pytest.raises(ValueError, match="NaN"):
    preprocessing.normalise(np.array([[0.0, np.nan], [1.0, 1.0]]))
  with pytest.raises(ValueError, match="duplicate"):
    preprocessing.normalise(np.ones((3, 2)))
