"""LL-LVM out-of-sample extension on the swiss roll: held-out points placed by the extension vs
refitting with them (Sec. 4 of Park et al. 2015)."""
import ml_collections

from launch.manifold.configs import fit

REPORT = {"title": "LL-LVM: out-of-sample extension vs refitting (swiss roll)",
          "headline": ("extension_rel_error", "neighbour_mean_rel_error", "spearman_heldout")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  fit.check_preset(preset)
  c = fit.default_config()  # seed, max_iters, tol, preprocessing and EM start (fit.py).
  c.n = 400                 # Total swiss-roll points (training + held out).
  c.num_heldout = 40        # Points held out and placed by the extension.
  c.noise = 0.05            # Std of the swiss roll's Gaussian noise.
  c.k = 9                   # Neighbours (graph and extension).
  if preset == "smoke":
    c.n, c.num_heldout, c.max_iters = 80, 8, 10
  elif preset == "full":
    c.max_iters = 300
  return c
