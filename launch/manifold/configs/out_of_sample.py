"""LL-LVM out-of-sample extension on the swiss roll: held-out points placed by the extension vs
refitting with them (Sec. 4 of Park et al. 2015)."""
import ml_collections

from launch.manifold.configs.fit import add_fit_fields

REPORT = {"title": "LL-LVM: out-of-sample extension vs refitting (swiss roll)",
          "headline": ("extension_rel_error", "neighbour_mean_rel_error", "spearman_heldout")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                # Seed of the data set, the hold-out choice and the initialisation.
  c.n = 400                 # Total swiss-roll points (training + held out).
  c.num_heldout = 40        # Points held out and placed by the extension.
  c.noise = 0.05            # Std of the swiss roll's Gaussian noise.
  c.k = 9                   # Neighbours (graph and extension).
  c.max_iters = 50          # EM iterations per fit (as in the reference demo).
  c.tol = 1e-7              # Relative bound change that stops EM.
  add_fit_fields(c)         # Preprocessing and EM start (launch/manifold/configs/fit.py).
  if preset == "smoke":
    c.n, c.num_heldout, c.max_iters = 80, 8, 10
  elif preset == "full":
    c.max_iters = 300
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}")
  return c
