"""Neighbourhood graphs and their Laplacians for LL-LVM (Sec. 2 of Park et al. 2015).

The graph G (adjacency eta_ij in {0, 1}, symmetric, no self loops) fixes which pairs of
observations are related by the locally linear approximation. Its Laplacian L = diag(G 1) - G
enters the prior precision of the coordinates x, of the local maps C and of the observations y.

A `Graph` holds the adjacency both densely (for the Laplacian's spectrum, computed once per graph)
and as padded neighbour lists `(neighbours, weights)`, so that products with G cost O(n k) per
column instead of O(n^2). The spectrum gives log-determinants of (alpha I + 2 L) for every alpha
(the M-step for alpha) and the pseudo-inverse L^+ that is the observation covariance on the
subspace orthogonal to the constant vector.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.spatial


class Graph(NamedTuple):
  """A connected, undirected neighbourhood graph on n points.

  Attributes:
    adjacency: (n, n) float64 0/1 symmetric adjacency G with zero diagonal.
    neighbours: (n, m) int32 neighbour indices of each node, padded with the node itself.
    weights: (n, m) float64 1 for a real neighbour, 0 for padding.
    degree: (n,) float64 node degrees, G 1.
    eigenvalues: (n,) float64 eigenvalues of L in ascending order (the first is 0).
    laplacian_pinv: (n, n) float64 Moore-Penrose pseudo-inverse L^+.
  """
  adjacency: np.ndarray
  neighbours: np.ndarray
  weights: np.ndarray
  degree: np.ndarray
  eigenvalues: np.ndarray
  laplacian_pinv: np.ndarray

  @property
  def num_nodes(self) -> int:
    return self.adjacency.shape[0]

  @property
  def num_edges(self) -> int:
    return int(self.adjacency.sum() // 2)


def laplacian(adjacency) -> np.ndarray:
  """Graph Laplacian L = diag(G 1) - G (Sec. 2 of Park et al. 2015)."""
  g = np.asarray(adjacency, dtype=np.float64)
  return np.diag(g.sum(axis=1)) - g


def _components(adjacency: np.ndarray) -> tuple[int, np.ndarray]:
  return scipy.sparse.csgraph.connected_components(adjacency != 0, directed=False)


def make_graph(adjacency, *, connectivity_tol: float = 1e-9) -> Graph:
  """Builds a `Graph` from a symmetric 0/1 adjacency matrix.

  Args:
    adjacency: (n, n) array, symmetric, entries 0 or 1, zero diagonal.
    connectivity_tol: smallest admissible second eigenvalue of L (algebraic connectivity).

  Returns:
    The graph with neighbour lists and the Laplacian's spectrum and pseudo-inverse.

  Raises:
    ValueError: if the adjacency is not square, symmetric, 0/1 with zero diagonal, or if the graph
      is disconnected (LL-LVM's priors on C and y are improper on a disconnected graph; use
      `knn_graph(..., connect=True)` or `connect_components`).
  """
  g = np.asarray(adjacency, dtype=np.float64)
  if g.ndim != 2 or g.shape[0] != g.shape[1]:
    raise ValueError(f"adjacency must be a square (n, n) matrix; got shape {g.shape}.")
  n = g.shape[0]
  if n < 3:
    raise ValueError(f"adjacency must have at least 3 nodes; got {n}.")
  if not np.all(np.isfinite(g)) or not np.all((g == 0) | (g == 1)):
    raise ValueError("adjacency entries must be 0 or 1.")
  if not np.array_equal(g, g.T):
    raise ValueError("adjacency must be symmetric (an undirected graph).")
  if np.any(np.diag(g) != 0):
    raise ValueError("adjacency must have a zero diagonal (no self loops).")
  num_comp, labels = _components(g)
  if num_comp > 1:
    sizes = np.bincount(labels)
    raise ValueError(
        f"adjacency: the neighbourhood graph is disconnected ({num_comp} components, sizes "
        f"{sorted(sizes.tolist(), reverse=True)[:10]}); LL-LVM needs a connected graph. Increase "
        "k, or pass connect=True to knn_graph (joins components by their closest pairs).")
  degree = g.sum(axis=1)
  m = int(degree.max())
  neighbours = np.tile(np.arange(n)[:, None], (1, m)).astype(np.int32)
  weights = np.zeros((n, m))
  for i in range(n):
    idx = np.flatnonzero(g[i])
    neighbours[i, :idx.size] = idx
    weights[i, :idx.size] = 1.0
  lap = laplacian(g)
  evals, evecs = np.linalg.eigh(lap)
  if evals[1] < connectivity_tol:
    raise ValueError(f"adjacency: algebraic connectivity {evals[1]:.3g} is below "
                     f"{connectivity_tol}; the graph is numerically disconnected.")
  evals[0] = 0.0  # The constant vector is exactly in the null space.
  pinv = (evecs[:, 1:] / evals[1:]) @ evecs[:, 1:].T
  return Graph(g, neighbours, weights, degree, evals, pinv)


def check_observations(y, name: str = "y") -> np.ndarray:
  """Returns y as a float64 (n, dy) array, or raises ValueError for NaN/inf or duplicate rows."""
  y = np.asarray(y, dtype=np.float64)
  if y.ndim != 2:
    raise ValueError(f"{name} must be an (n, dy) array; got shape {y.shape}.")
  if not np.all(np.isfinite(y)):
    bad = np.flatnonzero(~np.all(np.isfinite(y), axis=1))
    raise ValueError(f"{name} has {bad.size} rows with NaN or inf (first: row {bad[0]}); remove "
                     "or impute them before fitting.")
  _, first, counts = np.unique(y, axis=0, return_index=True, return_counts=True)
  if np.any(counts > 1):
    dup = int(first[np.argmax(counts > 1)])
    raise ValueError(
        f"{name} has {int((counts - 1).sum())} duplicate rows (e.g. a copy of row {dup}); "
        "duplicates have zero-length neighbour differences and make k-NN ties arbitrary. Remove "
        "them (np.unique(y, axis=0)) or add jitter.")
  return y


def connect_components(adjacency, y) -> np.ndarray:
  """Joins the components of a graph by adding, repeatedly, the shortest edge between components.

  This is the documented fix for a disconnected k-NN graph: a minimum-spanning-forest style
  join that adds (number of components - 1) edges.

  Args:
    adjacency: (n, n) symmetric 0/1 adjacency.
    y: (n, dy) observations used for Euclidean distances.

  Returns:
    (n, n) adjacency of a connected graph containing the input's edges.
  """
  g = np.array(adjacency, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if y.shape[0] != g.shape[0]:
    raise ValueError(f"y must have {g.shape[0]} rows to match adjacency; got {y.shape[0]}.")
  dist = scipy.spatial.distance.cdist(y, y)
  while True:
    num_comp, labels = _components(g)
    if num_comp == 1:
      return g
    # Closest pair between component 0 and the rest keeps the join local.
    inside = labels == labels[0]
    sub = dist[np.ix_(inside, ~inside)]
    a, b = np.unravel_index(np.argmin(sub), sub.shape)
    i, j = np.flatnonzero(inside)[a], np.flatnonzero(~inside)[b]
    g[i, j] = g[j, i] = 1.0


def knn_adjacency(y, k: int) -> np.ndarray:
  """Symmetric k-nearest-neighbour adjacency: eta_ij = 1 if j is among i's k nearest or vice versa.

  Args:
    y: (n, dy) observations (finite, no duplicate rows).
    k: number of neighbours, 1 <= k < n.

  Returns:
    (n, n) float64 0/1 symmetric adjacency.
  """
  y = check_observations(y)
  n = y.shape[0]
  if not isinstance(k, (int, np.integer)) or not 1 <= k < n:
    raise ValueError(f"k must be an integer with 1 <= k < n = {n}; got {k!r}.")
  tree = scipy.spatial.cKDTree(y)
  _, idx = tree.query(y, k=k + 1)
  g = np.zeros((n, n))
  rows = np.repeat(np.arange(n), k)
  # Column 0 is the point itself (no duplicates, so distances are positive).
  g[rows, idx[:, 1:].ravel()] = 1.0
  g = np.maximum(g, g.T)
  np.fill_diagonal(g, 0.0)
  return g


def knn_graph(y, k: int, *, connect: bool = False) -> Graph:
  """Symmetric k-NN `Graph` of the observations (Sec. 2 of Park et al. 2015).

  Args:
    y: (n, dy) observations.
    k: number of nearest neighbours, 1 <= k < n.
    connect: if the k-NN graph is disconnected, join its components with `connect_components`
      instead of raising.

  Returns:
    The graph.
  """
  g = knn_adjacency(y, k)
  if connect:
    g = connect_components(g, y)
  return make_graph(g)


def isomap(y, graph: Graph, dx: int) -> np.ndarray:
  """Isomap coordinates on the given graph: classical scaling of its shortest-path distances.

  Edges of G are weighted by the Euclidean distance between their end points; the geodesic
  distance matrix D is double-centred, B = -J D^2 J / 2 (J = I - 1 1^T / n), and the coordinates
  are the top dx eigenvectors of B scaled by the square roots of their eigenvalues
  (Tenenbaum et al. 2000). Used to initialise LL-LVM's EM on the same graph.

  Args:
    y: (n, dy) observations.
    graph: connected `Graph` on the n points.
    dx: number of coordinates, 1 <= dx < n.

  Returns:
    (n, dx) float64 coordinates.
  """
  y = check_observations(y)
  n = graph.num_nodes
  if y.shape[0] != n:
    raise ValueError(f"y has {y.shape[0]} rows but graph has {n} nodes.")
  if not isinstance(dx, (int, np.integer)) or not 1 <= dx < n:
    raise ValueError(f"dx must be an integer with 1 <= dx < n = {n}; got {dx!r}.")
  rows, cols = np.nonzero(graph.adjacency)
  lengths = np.linalg.norm(y[rows] - y[cols], axis=1)
  weighted = scipy.sparse.csr_matrix((lengths, (rows, cols)), shape=(n, n))
  dist = scipy.sparse.csgraph.shortest_path(weighted, method="D", directed=False)
  sq = dist ** 2
  b = -0.5 * (sq - sq.mean(0) - sq.mean(1)[:, None] + sq.mean())
  evals, evecs = scipy.linalg.eigh(b, subset_by_index=[n - dx, n - 1])
  order = np.argsort(evals)[::-1]
  return evecs[:, order] * np.sqrt(np.maximum(evals[order], 0.0))
