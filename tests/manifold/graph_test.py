"""Neighbourhood graphs, Laplacians and bad-input handling."""
import numpy as np
import pytest
import scipy.spatial

from manifold import graph as graph_lib


def _points(n=30, seed=0):
  return np.random.default_rng(seed).normal(size=(n, 3))


def test_knn_adjacency_matches_brute_force():
  y = _points()
  k = 4
  d = scipy.spatial.distance.cdist(y, y)
  np.fill_diagonal(d, np.inf)
  ref = np.zeros_like(d)
  for i in range(len(y)):
    ref[i, np.argsort(d[i])[:k]] = 1
  ref = np.maximum(ref, ref.T)
  np.testing.assert_array_equal(graph_lib.knn_adjacency(y, k), ref)


def test_laplacian_and_spectrum():
  # Path graph on 3 nodes: L = [[1,-1,0],[-1,2,-1],[0,-1,1]], eigenvalues 0, 1, 3.
  g = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
  np.testing.assert_array_equal(graph_lib.laplacian(g), [[1, -1, 0], [-1, 2, -1], [0, -1, 1]])
  graph = graph_lib.make_graph(g)
  np.testing.assert_allclose(graph.eigenvalues, [0, 1, 3], atol=1e-12)
  np.testing.assert_allclose(graph.laplacian_pinv, np.linalg.pinv(graph_lib.laplacian(g)),
                             atol=1e-12)
  assert graph.num_edges == 2
  np.testing.assert_array_equal(graph.weights.sum(1), [1, 2, 1])
  assert set(graph.neighbours[1]) == {0, 2}


def test_disconnected_graph_raises_or_is_connected_on_request():
  rng = np.random.default_rng(1)
  y = np.concatenate([rng.normal(size=(10, 3)), 100 + rng.normal(size=(10, 3))])
  with pytest.raises(ValueError, match="disconnected"):
    graph_lib.knn_graph(y, 3)
  graph = graph_lib.knn_graph(y, 3, connect=True)
  # Exactly one edge was added, between the closest pair across the two clusters.
  base = graph_lib.knn_adjacency(y, 3)
  added = np.argwhere(np.triu(graph.adjacency - base))
  assert len(added) == 1
  d = scipy.spatial.distance.cdist(y[:10], y[10:])
  i, j = np.unravel_index(np.argmin(d), d.shape)
  assert tuple(added[0]) == (i, j + 10)
  assert graph.eigenvalues[1] > 0


@pytest.mark.parametrize("k", [0, 30, 31, 2.5])
def test_bad_k(k):
  with pytest.raises(ValueError, match="k must"):
    graph_lib.knn_graph(_points(), k)


def test_nan_and_duplicates_and_bad_shapes():
  y = _points()
  y_nan = y.copy()
  y_nan[4, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    graph_lib.knn_graph(y_nan, 3)
  y_dup = y.copy()
  y_dup[7] = y_dup[2]
  with pytest.raises(ValueError, match="duplicate"):
    graph_lib.knn_graph(y_dup, 3)
  with pytest.raises(ValueError, match=r"\(n, dy\)"):
    graph_lib.knn_graph(y[:, 0], 3)


def test_make_graph_rejects_bad_adjacency():
  g = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
  with pytest.raises(ValueError, match="symmetric"):
    graph_lib.make_graph(np.triu(g))
  with pytest.raises(ValueError, match="diagonal"):
    graph_lib.make_graph(g + np.eye(3))
  with pytest.raises(ValueError, match="0 or 1"):
    graph_lib.make_graph(2 * g)
  with pytest.raises(ValueError, match="square"):
    graph_lib.make_graph(g[:2])


def test_isomap_matches_sklearn_on_the_same_knn_graph():
  import sklearn.manifold
  rng = np.random.default_rng(3)
  t = rng.uniform(0, 3 * np.pi, 60)
  y = np.stack([t * np.cos(t), 5 * rng.uniform(size=60), t * np.sin(t)], 1)
  k = 6
  ours = graph_lib.isomap(y, graph_lib.knn_graph(y, k), 2)
  ref = sklearn.manifold.Isomap(n_neighbors=k, n_components=2).fit_transform(y)
  # Eigenvectors are defined up to sign.
  np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-6, atol=1e-6 * np.abs(ref).max())
  with pytest.raises(ValueError, match="dx must"):
    graph_lib.isomap(y, graph_lib.knn_graph(y, k), 0)
