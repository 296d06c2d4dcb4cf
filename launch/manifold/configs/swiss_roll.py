"""LL-LVM on the swiss roll (Fig. 2 of Park et al. 2015): embedding, tangent planes, bound."""
import ml_collections

from launch.claims import Claim
from launch.manifold.configs import fit

REPORT = {"title": "LL-LVM: swiss roll embedding (Park et al. 2015, Fig. 2)",
          "headline": ("spearman", "trustworthiness", "final_bound", "iterations",
                       "lle_spearman", "lle_trustworthiness"),
          "demo": True,
          "claims": (
              Claim("Park et al. 2015 (LL-LVM)", "the swiss roll is unrolled: trustworthiness "
                    "above 0.9", "trustworthiness", 0.9, ">"),
              Claim("Park et al. 2015 (LL-LVM)", "trustworthiness on a par with LLE's (Fig. 2)",
                    "trustworthiness", "lle_trustworthiness", ">=", anchor_name="LLE"),
          )}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  if preset != "demo":  # demo is the default (400 points, the launcher's EM length)
    fit.check_preset(preset)
  c = fit.default_config()  # seed, max_iters, tol, preprocessing and EM start (fit.py).
  c.n = 400                 # Number of swiss-roll points.
  c.noise = 0.05            # Std of isotropic Gaussian noise added by sklearn's make_swiss_roll.
  c.k = 9                   # Neighbours of the symmetric k-NN graph.
  c.dx = 2                  # Latent dimension.
  c.tol = 1e-9              # Relative bound change that stops EM.
  if preset == "smoke":
    c.n, c.max_iters = 80, 10
  elif preset == "full":
    c.max_iters = 300
  return c
