"""LL-LVM on scikit-learn's bundled digits 0-4 (the paper's USPS experiment, Sec. 5): 1-NN error
of the 2-D embedding vs LLE, Isomap and t-SNE, each at its best k (perplexity for t-SNE)."""
import ml_collections

from launch.manifold.configs import fit

REPORT = {"title": "LL-LVM: 1-NN error on a 2-D embedding of digits 0-4 vs LLE, Isomap, t-SNE",
          "headline": ("lllvm_error", "lle_error", "isomap_error", "tsne_error", "lllvm_k")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  fit.check_preset(preset)
  c = fit.default_config()  # seed, max_iters, tol, preprocessing and EM start (fit.py).
  c.per_class = 80             # Images per digit class (classes 0-4), n = 5 * per_class.
  c.ks = (5, 9, 15)            # Neighbour counts tried; LL-LVM picks k by its bound.
  c.perplexities = (5.0, 10.0, 20.0, 30.0, 40.0)  # t-SNE perplexities tried (its "k").
  c.num_splits = 10            # Random labelled/unlabelled splits for the 1-NN error.
  c.train_fraction = 0.1       # Fraction labelled in each split.
  if preset == "smoke":
    c.per_class, c.ks, c.perplexities, c.max_iters = 16, (6, 9), (10.0,), 5
  elif preset == "full":
    c.ks = (5, 7, 9, 12, 15)
    c.max_iters = 200
  return c
