"""Quality measures of an embedding: rank agreement with a known coordinate, trustworthiness and
1-nearest-neighbour classification error over random labelled/unlabelled splits."""
from __future__ import annotations

import numpy as np
import scipy.stats
import sklearn.manifold
import sklearn.neighbors


def spearman_to_truth(embedding, truth) -> float:
  """Largest |Spearman rho| between the true coordinate and any principal axis of the embedding.

  The embedding is rotated to its principal axes first, since LL-LVM's coordinates are defined
  only up to rotation.
  """
  z = np.asarray(embedding, dtype=np.float64)
  truth = np.asarray(truth, dtype=np.float64).ravel()
  if z.ndim != 2 or z.shape[0] != truth.shape[0]:
    raise ValueError(f"embedding must be (n, d) with n = {truth.shape[0]}; got {z.shape}.")
  z = z - z.mean(0)
  _, _, vt = np.linalg.svd(z, full_matrices=False)
  axes = z @ vt.T
  return float(max(abs(scipy.stats.spearmanr(axes[:, i], truth).statistic)
                   for i in range(axes.shape[1])))


def trustworthiness(y, embedding, k: int = 9) -> float:
  """Trustworthiness of the embedding's k-neighbourhoods (Venna and Kaski 2001; sklearn)."""
  return float(sklearn.manifold.trustworthiness(np.asarray(y), np.asarray(embedding),
                                                n_neighbors=k))


def one_nn_error(embedding, labels, *, num_splits: int = 10, train_fraction: float = 0.1,
                 seed: int = 0) -> tuple[float, float]:
  """Mean and standard deviation over random splits of the 1-NN test error in the embedding.

  Each split labels a random `train_fraction` of the points and classifies the rest by their
  nearest labelled point.
  """
  z = np.asarray(embedding, dtype=np.float64)
  labels = np.asarray(labels)
  if z.shape[0] != labels.shape[0]:
    raise ValueError(f"labels must have {z.shape[0]} entries; got {labels.shape[0]}.")
  if not 0 < train_fraction < 1:
    raise ValueError(f"train_fraction must be in (0, 1); got {train_fraction}.")
  rng = np.random.default_rng(seed)
  n = z.shape[0]
  n_train = max(1, int(round(train_fraction * n)))
  errors = []
  for _ in range(num_splits):
    perm = rng.permutation(n)
    tr, te = perm[:n_train], perm[n_train:]
    clf = sklearn.neighbors.KNeighborsClassifier(n_neighbors=1).fit(z[tr], labels[tr])
    errors.append(float(np.mean(clf.predict(z[te]) != labels[te])))
  return float(np.mean(errors)), float(np.std(errors))
