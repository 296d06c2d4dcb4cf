"""Out-of-sample extension of LL-LVM: place held-out swiss-roll points with the fitted model and
compare with a refit on all points (aligned to the first fit by an affine map on the training
points, since the embedding is defined only up to such a map).

    python -m launch.manifold.out_of_sample \
        --config=launch/manifold/configs/out_of_sample.py:smoke --workdir=/tmp/manifold_oos
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


def _affine_align(source, target):
  """Least-squares affine map of source onto target; returns the map as a function."""
  a = np.concatenate([source, np.ones((len(source), 1))], 1)
  w, *_ = np.linalg.lstsq(a, target, rcond=None)
  return lambda z: np.concatenate([z, np.ones((len(z), 1))], 1) @ w


def experiment(config, run: app.Run) -> dict:
  y, t = sklearn.datasets.make_swiss_roll(config.n, noise=config.noise, random_state=config.seed)
  rng = np.random.default_rng(config.seed)
  held = np.sort(rng.choice(config.n, config.num_heldout, replace=False))
  train = np.setdiff1d(np.arange(config.n), held)
  key = jax.random.PRNGKey(config.seed)
  kw = dict(key=key, **manifold_fit.fit_options(config))
  # New points go through the training points' preprocessing (shift and scale).
  if config.normalise:
    norm = manifold.normalise(y[train])
    ys_train, ys_held = norm.y * config.data_scale, norm.apply(y[held]) * config.data_scale
  else:
    ys_train, ys_held = y[train] * config.data_scale, y[held] * config.data_scale
  fit_train = manifold.fit(ys_train, manifold.knn_graph(ys_train, config.k, connect=True), 2,
                           **kw)
  ext = manifold.extend(ys_held, ys_train, fit_train.state, config.k)
  ys = manifold_fit.preprocess(config, y)
  fit_all = manifold.fit(ys, manifold.knn_graph(ys, config.k, connect=True), 2, **kw)
  x_train = np.asarray(fit_train.state.mu_x)
  align = _affine_align(np.asarray(fit_all.state.mu_x)[train], x_train)
  x_refit = align(np.asarray(fit_all.state.mu_x)[held])
  x_ext = np.asarray(ext.x)
  x_nbmean = x_train[ext.neighbours].mean(1)  # Baseline: average of the neighbours' coordinates.
  spread = np.sqrt(np.mean(np.sum((x_train - x_train.mean(0)) ** 2, 1)))
  rel = lambda z: float(np.sqrt(np.mean(np.sum((z - x_refit) ** 2, 1))) / spread)
  fig, ax = plt.subplots(figsize=(6, 5))
  ax.scatter(x_train[:, 0], x_train[:, 1], c=t[train], cmap="viridis", s=6, alpha=0.4)
  ax.scatter(x_ext[:, 0], x_ext[:, 1], c="r", marker="x", label="extension")
  ax.scatter(x_refit[:, 0], x_refit[:, 1], facecolors="none", edgecolors="k", label="refit")
  ax.legend()
  run.save_figure("out_of_sample", fig)
  return {
      "extension_rel_error": rel(x_ext), "neighbour_mean_rel_error": rel(x_nbmean),
      "spearman_heldout": manifold.spearman_to_truth(
          np.concatenate([x_train, x_ext]), np.concatenate([t[train], t[held]])),
      "spearman_train_only": manifold.spearman_to_truth(x_train, t[train]),
  }


if __name__ == "__main__":
  app.run(experiment)
