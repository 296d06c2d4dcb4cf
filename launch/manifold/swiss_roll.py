"""LL-LVM on the swiss roll: embedding coloured by the true coordinate, tangent planes, bound.

    python -m launch.manifold.swiss_roll --config=launch/manifold/configs/swiss_roll.py:smoke \
        --workdir=/tmp/manifold_swiss_roll
"""
import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn.datasets  # noqa: E402
import sklearn.manifold  # noqa: E402

import manifold  # noqa: E402
from launch import app  # noqa: E402
from launch.manifold import fit as manifold_fit  # noqa: E402


def swiss_roll(config):
  y, t = sklearn.datasets.make_swiss_roll(config.n, noise=config.noise,
                                          random_state=config.seed)
  return y, t


def _tangent_figure(y, t, mu_c, every=8):
  """Each local map C_i spans the tangent plane at y_i; draw its (orthonormalised) span."""
  fig = plt.figure(figsize=(6, 5))
  ax = fig.add_subplot(projection="3d")
  ax.scatter(*y.T, c=t, cmap="viridis", s=6)
  scale = 0.08 * np.ptp(y, axis=0).max()
  for i in range(0, len(y), every):
    q, _ = np.linalg.qr(mu_c[i])
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * scale
    pts = y[i] + corners @ q.T
    ax.plot(*pts.T, color="k", lw=0.7)
  ax.set_title("learned tangent planes (span of C_i)")
  return fig


def experiment(config, run: app.Run) -> dict:
  y, t = swiss_roll(config)
  ys = manifold_fit.preprocess(config, y)
  graph = manifold.knn_graph(ys, config.k)
  result = manifold.fit(ys, graph, config.dx, key=jax.random.PRNGKey(config.seed),
                        **manifold_fit.fit_options(config))
  for i, b in enumerate(result.bounds):
    run.log_metrics(i + 1, {"bound": float(b)})
  mu_x = np.asarray(result.state.mu_x)
  lle = sklearn.manifold.LocallyLinearEmbedding(n_neighbors=config.k, n_components=config.dx,
                                                random_state=config.seed).fit_transform(y)
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  axes[0].scatter(mu_x[:, 0], mu_x[:, 1], c=t, cmap="viridis", s=8)
  axes[0].set_title("LL-LVM posterior mean of x")
  axes[1].scatter(lle[:, 0], lle[:, 1], c=t, cmap="viridis", s=8)
  axes[1].set_title("sklearn LLE (same k)")
  axes[2].plot(np.arange(1, len(result.bounds) + 1), result.bounds)
  axes[2].set_xlabel("EM iteration")
  axes[2].set_ylabel("lower bound")
  run.save_figure("embedding", fig)
  run.save_figure("tangent_planes", _tangent_figure(ys, t, np.asarray(result.state.mu_c)))
  return {
      "spearman": manifold.spearman_to_truth(mu_x, t),
      "trustworthiness": manifold.trustworthiness(y, mu_x, config.k),
      "lle_spearman": manifold.spearman_to_truth(lle, t),
      "lle_trustworthiness": manifold.trustworthiness(y, lle, config.k),
      "final_bound": float(result.bounds[-1]),
      "bound_monotone": bool(np.all(np.diff(result.bounds) >= -1e-9 * np.abs(result.bounds[1:]))),
      "iterations": len(result.bounds),
      "alpha": float(result.state.alpha),
      "gamma": float(result.state.gamma),
  }


if __name__ == "__main__":
  app.run(experiment)
