"""LL-LVM on the swiss roll (Fig. 2 of Park et al. 2015): embedding, tangent planes, bound."""
import ml_collections

from launch.manifold.configs.fit import add_fit_fields

REPORT = {"title": "LL-LVM: swiss roll embedding (Park et al. 2015, Fig. 2)",
          "headline": ("spearman", "trustworthiness", "final_bound", "iterations",
                       "lle_spearman", "lle_trustworthiness")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                # Seed of the data set and of the initialisation.
  c.n = 400                 # Number of swiss-roll points.
  c.noise = 0.05            # Std of isotropic Gaussian noise added by sklearn's make_swiss_roll.
  c.k = 9                   # Neighbours of the symmetric k-NN graph.
  c.dx = 2                  # Latent dimension.
  c.max_iters = 50          # EM iterations (50, as in the reference swiss-roll demo).
  c.tol = 1e-9              # Relative bound change that stops EM.
  add_fit_fields(c)         # normalise, data_scale, init, init_scale, gamma_init, alpha_init,
                            # learn_alpha (see launch/manifold/configs/fit.py).
  if preset == "smoke":
    c.n, c.max_iters = 80, 10
  elif preset == "full":
    c.max_iters = 300
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}")
  return c
