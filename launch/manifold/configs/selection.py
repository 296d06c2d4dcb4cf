"""LL-LVM model selection by the bound (Fig. 3 of Park et al. 2015): k, latent dimension and a
short-circuit edge, on the swiss roll."""
import ml_collections

from launch.manifold.configs import fit

REPORT = {"title": "LL-LVM: bound vs k, vs latent dimension, and a short-circuit edge",
          "headline": ("best_k", "best_dx", "bound_drop_short_circuit", "sheet_picks_dx2",
                       "helix_picks_dx1")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  fit.check_preset(preset)
  c = fit.default_config()  # seed, max_iters, tol, preprocessing and EM start (fit.py).
  c.n = 400                       # Number of swiss-roll points.
  c.noise = 0.05                  # Std of the swiss roll's Gaussian noise.
  c.ks = (8, 12, 16, 20)          # Neighbour counts compared by the bound (at dx = 2).
  c.dxs = (1, 2)                  # Latent dimensions compared by the bound (dy = 3).
  c.k_for_dx = 9                  # k used for the latent-dimension and short-circuit comparisons.
  c.max_iters = 30                # EM iteration cap per fit.
  c.toy_n = 100                   # Points of each known-dimension check (curved sheet, helix).
  c.toy_k = 8                     # Neighbours of their k-NN graphs.
  c.toy_seeds = (0, 1, 2)         # One sheet and one helix per seed.
  c.toy_max_iters = 600           # EM map evaluations per check fit (SQUAREM, to convergence).
  c.toy_tol = 1e-6                # Relative bound change that stops the check fits.
  if preset == "smoke":
    c.n, c.ks, c.max_iters, c.k_for_dx = 60, (6, 8), 10, 6
    c.toy_n, c.toy_seeds, c.toy_max_iters = 40, (0,), 30
  elif preset == "full":
    c.ks = tuple(range(8, 21))
    c.max_iters = 200
  return c
