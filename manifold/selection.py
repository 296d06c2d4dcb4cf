"""Model selection with the LL-LVM lower bound (Sec. 4 of Park et al. 2015).

The bound approximates log p(y | G, dx), so it compares neighbourhood graphs (the number of
neighbours k, or a graph with and without a suspect "short-circuit" edge) and latent dimensions on
the same data.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from manifold import em
from manifold import graph as graph_lib


def add_edges(graph: graph_lib.Graph, edges: Sequence[tuple[int, int]]) -> graph_lib.Graph:
  """The graph with extra undirected edges (e.g. a short-circuit between distant points).

  Args:
    graph: a `Graph` on n nodes.
    edges: pairs (i, j), 0 <= i, j < n, i != j.

  Returns:
    A new `Graph`.
  """
  g = np.array(graph.adjacency)
  n = g.shape[0]
  for i, j in edges:
    if not (0 <= i < n and 0 <= j < n) or i == j:
      raise ValueError(f"edges must be pairs of distinct node indices in [0, {n}); got {(i, j)}.")
    g[i, j] = g[j, i] = 1.0
  return graph_lib.make_graph(g)


def bound_for_graphs(y, graphs: Sequence[graph_lib.Graph], dx: int, **fit_kwargs) -> np.ndarray:
  """Converged lower bound of LL-LVM for each graph (same data, same dx)."""
  return np.array([em.fit(y, g, dx, **fit_kwargs).bounds[-1] for g in graphs])


def bound_vs_k(y, ks: Sequence[int], dx: int, *, connect: bool = True,
               **fit_kwargs) -> np.ndarray:
  """Converged lower bound for symmetric k-NN graphs with each k in `ks`."""
  if len(ks) == 0:
    raise ValueError("ks must name at least one k.")
  graphs = [graph_lib.knn_graph(y, int(k), connect=connect) for k in ks]
  return bound_for_graphs(y, graphs, dx, **fit_kwargs)


def bound_vs_dx(y, graph: graph_lib.Graph, dxs: Sequence[int], **fit_kwargs) -> np.ndarray:
  """Converged lower bound for each latent dimension in `dxs` on one graph."""
  if len(dxs) == 0:
    raise ValueError("dxs must name at least one latent dimension.")
  return np.array([em.fit(y, graph, int(dx), **fit_kwargs).bounds[-1] for dx in dxs])


def select_model(y, ks: Sequence[int], dxs: Sequence[int], **fit_kwargs):
  """Grid search of (k, dx) by the bound.

  Returns:
    (best_k, best_dx, table) where table[a, b] is the bound for ks[a], dxs[b].
  """
  table = np.stack([bound_vs_dx(y, graph_lib.knn_graph(y, int(k), connect=True), dxs,
                                **fit_kwargs) for k in ks])
  a, b = np.unravel_index(np.argmax(table), table.shape)
  return int(ks[a]), int(dxs[b]), table
