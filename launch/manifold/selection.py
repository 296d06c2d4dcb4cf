"""Model selection with the LL-LVM bound: k, latent dimension, short-circuit edge.

    python -m launch.manifold.selection --config=launch/manifold/configs/selection.py:smoke \
        --workdir=/tmp/manifold_selection
"""
import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn.datasets  # noqa: E402

import manifold  # noqa: E402
from launch import app  # noqa: E402
from launch.manifold import fit as manifold_fit  # noqa: E402


def _short_circuit_edge(y, t, graph):
  """A pair that is close in space but far along the roll: the classic bad neighbourhood link.

  Among pairs not already linked, take the one minimising Euclidean distance divided by the
  difference of the roll coordinate t.
  """
  d = np.linalg.norm(y[:, None] - y[None], axis=-1)
  dt = np.abs(t[:, None] - t[None])
  score = np.where((graph.adjacency == 0) & (dt > 0.25 * np.ptp(t)), d / (dt + 1e-12), np.inf)
  np.fill_diagonal(score, np.inf)
  i, j = np.unravel_index(np.argmin(score), score.shape)
  return int(i), int(j)


def _dimension_checks(config) -> dict:
  """Bound at dx = 1 and 2 on manifolds of known dimension (a curved sheet, a helix arc),
  converged by SQUAREM from the spectral start, one data set per seed."""
  kw = dict(init="spectral", gamma=config.gamma_init, alpha=config.alpha_init,
            max_iters=config.toy_max_iters, tol=config.toy_tol, chunk=9, accelerate=True)
  out = {}
  for name, make in (("sheet", manifold.curved_sheet), ("helix", manifold.helix)):
    rows = []
    for seed in config.toy_seeds:
      y = manifold.normalise(make(config.toy_n, int(seed))).y
      rows.append(manifold.bound_vs_dx(y, manifold.knn_graph(y, config.toy_k, connect=True),
                                       [1, 2], **kw).tolist())
    out[name] = np.asarray(rows)
  return out


def experiment(config, run: app.Run) -> dict:
  y, t = sklearn.datasets.make_swiss_roll(config.n, noise=config.noise, random_state=config.seed)
  ys = manifold_fit.preprocess(config, y)
  kw = dict(key=jax.random.PRNGKey(config.seed), **manifold_fit.fit_options(config))
  ks = list(config.ks)
  bounds_k = manifold.bound_vs_k(ys, ks, 2, **kw)
  graph = manifold.knn_graph(ys, config.k_for_dx, connect=True)
  dxs = list(config.dxs)
  bounds_dx = manifold.bound_vs_dx(ys, graph, dxs, **kw)
  edge = _short_circuit_edge(ys, t, graph)
  shorted = manifold.add_edges(graph, [edge])
  with_sc = manifold.bound_for_graphs(ys, [shorted], 2, **kw)[0]
  without_sc = bounds_dx[dxs.index(2)] if 2 in dxs else manifold.bound_for_graphs(
      ys, [graph], 2, **kw)[0]
  toys = _dimension_checks(config)
  for k, b in zip(ks, bounds_k):
    run.log_metrics(k, {"bound_vs_k": float(b)})
  fig, axes = plt.subplots(1, 4, figsize=(17, 3.5))
  axes[0].plot(ks, bounds_k, "o-")
  axes[0].set_xlabel("k")
  axes[0].set_ylabel("lower bound")
  axes[1].plot(dxs, bounds_dx, "o-")
  axes[1].set_xlabel("latent dimension")
  axes[2].bar(["k-NN graph", "+ short circuit"], [without_sc, with_sc])
  axes[2].set_ylim(min(without_sc, with_sc) - 0.1 * abs(without_sc - with_sc) - 1,
                   max(without_sc, with_sc) + 1)
  for name, rows in toys.items():
    axes[3].plot(np.arange(len(rows)), rows[:, 1] - rows[:, 0], "o-", label=name)
  axes[3].axhline(0.0, color="k", lw=0.5)
  axes[3].set_xlabel("data set (seed)")
  axes[3].set_ylabel("bound(dx = 2) - bound(dx = 1)")
  axes[3].legend()
  run.save_figure("selection", fig)
  return {
      "ks": ks, "bounds_vs_k": bounds_k.tolist(), "best_k": int(ks[int(np.argmax(bounds_k))]),
      "dxs": dxs, "bounds_vs_dx": bounds_dx.tolist(),
      "best_dx": int(dxs[int(np.argmax(bounds_dx))]),
      "short_circuit_edge": list(edge), "bound_without_short_circuit": float(without_sc),
      "bound_with_short_circuit": float(with_sc),
      "bound_drop_short_circuit": float(without_sc - with_sc),
      "sheet_bounds_dx1_dx2": toys["sheet"].tolist(),
      "helix_bounds_dx1_dx2": toys["helix"].tolist(),
      "sheet_picks_dx2": int(np.sum(toys["sheet"][:, 1] > toys["sheet"][:, 0])),
      "helix_picks_dx1": int(np.sum(toys["helix"][:, 0] > toys["helix"][:, 1])),
  }


if __name__ == "__main__":
  app.run(experiment)
