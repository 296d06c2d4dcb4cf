"""Config of launch.latent_dynamics.lds_vs_kalman: structured posterior vs Kalman smoother."""
import ml_collections

from latent_dynamics import train
from launch.claims import Claim

REPORT = {"title": "VILDS structured posterior vs the exact Kalman smoother on a known LDS "
                   "(Archer et al. 2015, Sec. 4)",
          "headline": ("mean_rel_err", "var_max_rel_err", "var_mean_rel_err", "elbo_gap_per_step"),
          "demo": True,
          "claims": (
              Claim("Archer et al. 2015 (VILDS)", "the structured posterior recovers the exact "
                    "(Kalman) posterior means to 1%", "mean_rel_err", 0.01, "<",
                    anchor_name="relative error 1%"),
              Claim("Archer et al. 2015 (VILDS)", "... and its marginal variances to 5% on "
                    "average", "var_mean_rel_err", 0.05, "<",
                    anchor_name="relative error 5%"),
          )}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.latent_dim = 2  # Latent dimension n of the simulated LDS.
  c.obs_dim = 10  # Observed dimension p.
  c.num_steps = 100  # Time steps T of the simulated trial.
  c.rotation = 0.2  # Rotation angle (rad per step) of the dynamics A = 0.95 R(angle).
  c.innovation_std = 0.3  # Q = innovation_std^2 I.
  c.obs_std = 1.0  # R = obs_std^2 I.
  c.num_chunks = 10  # Chunks of the launcher's train loop (checkpoint after each).
  c.train = train.default_config()  # SGVB settings (see latent_dynamics.train.default_config).
  c.train.update(model="lds", recognition="structured", amortized=False, learn_generative=False,
                 num_samples=32, batch_size=1, learning_rate=0.05, schedule="cosine",
                 num_steps=2000, steps_per_chunk=200)
  if preset == "smoke":
    c.num_steps, c.num_chunks = 20, 2
    c.train.update(num_steps=300, steps_per_chunk=150, num_samples=16)
  elif preset == "demo":  # The default's trial (T = 100) with a quarter of the SGVB steps.
    c.num_chunks = 5
    c.train.update(num_steps=1000, steps_per_chunk=200, num_samples=16)
  elif preset == "full":
    c.num_steps, c.num_chunks = 500, 20
    c.train.update(num_steps=6000, steps_per_chunk=300, num_samples=64)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, demo, default or full; got {preset!r}.")
  return c
