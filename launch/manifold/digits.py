"""2-D embeddings of digits 0-4 (sklearn's bundled 8x8 digits, offline): LL-LVM vs LLE, Isomap,
t-SNE; 1-NN classification error over random 10%/90% labelled/unlabelled splits.

    python -m launch.manifold.digits --config=launch/manifold/configs/digits.py:smoke \
        --workdir=/tmp/manifold_digits
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


def digits_subset(per_class, seed):
  """per_class images of each digit 0-4, deduplicated (LL-LVM refuses duplicate rows)."""
  data = sklearn.datasets.load_digits()
  rng = np.random.default_rng(seed)
  idx = np.concatenate([rng.permutation(np.flatnonzero(data.target == c))[:per_class]
                        for c in range(5)])
  y, labels = data.data[idx].astype(np.float64), data.target[idx]
  _, keep = np.unique(y, axis=0, return_index=True)
  keep = np.sort(keep)
  return y[keep], labels[keep]


def experiment(config, run: app.Run) -> dict:
  y, labels = digits_subset(config.per_class, config.seed)
  err = lambda z: manifold.one_nn_error(z, labels, num_splits=config.num_splits,
                                        train_fraction=config.train_fraction, seed=config.seed)
  ys = manifold_fit.preprocess(config, y)
  table = {}
  # LL-LVM: k chosen by the bound (no labels used).
  fits = {}
  for k in config.ks:
    graph = manifold.knn_graph(ys, int(k), connect=True)
    fits[k] = manifold.fit(ys, graph, 2, key=jax.random.PRNGKey(config.seed),
                           **manifold_fit.fit_options(config))
    run.log_metrics(int(k), {"lllvm_bound": float(fits[k].bounds[-1])})
  best_k = max(fits, key=lambda k: fits[k].bounds[-1])
  embeddings = {"LL-LVM": np.asarray(fits[best_k].state.mu_x)}
  table["LL-LVM"] = (*err(embeddings["LL-LVM"]), int(best_k))
  # Baselines at their best k by the 1-NN error itself (favourable to them).
  makers = {
      "LLE": lambda k: sklearn.manifold.LocallyLinearEmbedding(
          n_neighbors=int(k), n_components=2, random_state=config.seed),
      "Isomap": lambda k: sklearn.manifold.Isomap(n_neighbors=int(k), n_components=2),
  }
  for name, make in makers.items():
    results = {k: make(k).fit_transform(y) for k in config.ks}
    scores = {k: err(z) for k, z in results.items()}
    k = min(scores, key=lambda k: scores[k][0])
    embeddings[name], table[name] = results[k], (*scores[k], int(k))
  results = {p: sklearn.manifold.TSNE(2, perplexity=float(p), random_state=config.seed,
                                      init="pca").fit_transform(y)
             for p in config.perplexities if p < len(y) / 3}
  scores = {p: err(z) for p, z in results.items()}
  p = min(scores, key=lambda p: scores[p][0])
  embeddings["t-SNE"], table["t-SNE"] = results[p], (*scores[p], float(p))
  fig, axes = plt.subplots(1, 4, figsize=(16, 4))
  for ax, (name, z) in zip(axes, embeddings.items()):
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, s=6)
    ax.set_title(f"{name}: 1-NN error {table[name][0]:.3f}")
  fig.colorbar(sc, ax=axes[-1])
  run.save_figure("embeddings", fig)
  lines = ["| method | 1-NN error (mean +- sd) | k / perplexity |", "|---|---|---|"]
  lines += [f"| {m} | {v[0]:.3f} +- {v[1]:.3f} | {v[2]} |" for m, v in table.items()]
  (run.workdir / "table.md").write_text("\n".join(lines) + "\n")
  return {
      "n": int(len(y)), "lllvm_error": table["LL-LVM"][0], "lllvm_k": int(best_k),
      "lllvm_bounds": {str(k): float(f.bounds[-1]) for k, f in fits.items()},
      "lle_error": table["LLE"][0], "isomap_error": table["Isomap"][0],
      "tsne_error": table["t-SNE"][0], "table": {m: list(v) for m, v in table.items()},
  }


if __name__ == "__main__":
  app.run(experiment)
