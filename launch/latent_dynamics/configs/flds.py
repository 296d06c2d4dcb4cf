"""Config of launch.latent_dynamics.flds: fLDS vs PLDS prediction against latent dimension."""
import ml_collections

from latent_dynamics import train
from launch.claims import Claim

REPORT = {"title": "fLDS vs PLDS on a population whose rates are a nonlinear function of a 2-d "
                   "latent: predictive log-likelihood vs latent dimension "
                   "(Gao et al. 2016, experiments)",
          "headline": ("flds_one_step_d2", "plds_one_step_d2", "flds_loo_d2", "plds_loo_d2",
                       "plds_dim_matching_flds_d2_loo"),
          "demo": True,
          "claims": (
              Claim("Gao et al. 2016 (fLDS)", "fLDS predicts held-out neurons better than PLDS "
                    "at the true latent dimension (2)", "flds_loo_d2", "plds_loo_d2", ">",
                    anchor_name="PLDS"),
              Claim("Gao et al. 2016 (fLDS)", "... and one step ahead", "flds_one_step_d2",
                    "plds_one_step_d2", ">", anchor_name="PLDS"),
          )}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.true_latent_dim = 2  # Dimension of the simulated latent (rotational LDS).
  c.num_neurons = 40  # Simulated neurons p, each with a 2-d Gaussian tuning curve ("place field").
  c.num_trials = 40  # Training trials.
  c.num_test_trials = 10  # Held-out trials for the predictive log-likelihoods.
  c.num_steps = 50  # Time bins per trial T.
  c.rotation = 0.2  # Rotation (rad per bin) of the true dynamics 0.97 R(angle).
  c.innovation_std = 0.25  # True innovation std.
  c.field_width = 0.6  # Width of the tuning curves in latent space.
  c.max_rate = 3.0  # Peak rate per bin of a tuning curve.
  c.base_rate = 0.05  # Baseline rate per bin.
  c.latent_dims = (1, 2, 3, 4, 6)  # Latent dimensions fitted (for both fLDS and PLDS).
  c.models = ("flds", "plds")  # Generative models compared.
  c.flds_link = "softplus"  # Rate link of the fLDS embedding.
  c.plds_link = "exp"  # Rate link of the PLDS.
  c.eval_samples = 64  # Monte Carlo samples of the predictive log-likelihoods.
  c.num_chunks = 5  # Chunks of each fit's train loop (checkpoint after each).
  c.train = train.default_config()  # SGVB settings (see latent_dynamics.train.default_config).
  c.train.update(recognition="smoothing", amortized=True, recognition_hidden=(64,),
                 embedding_hidden=(32, 32), neuron_mask_input=True, neuron_dropout=0.1,
                 num_samples=4, batch_size=8, learning_rate=5e-3, schedule="cosine",
                 num_steps=2500, steps_per_chunk=500, init_log_scale=-1.0)
  if preset == "smoke":
    c.num_neurons, c.num_trials, c.num_test_trials, c.num_steps = 12, 6, 2, 20
    c.latent_dims, c.num_chunks, c.eval_samples = (2,), 1, 16
    c.train.update(num_steps=60, steps_per_chunk=60, batch_size=4, recognition_hidden=(16,),
                   embedding_hidden=(16,), learning_rate=1e-2)
  elif preset == "demo":  # The default's population at the true dimension only, 1000 steps.
    c.latent_dims, c.num_chunks = (2,), 2
    c.train.update(num_steps=1000, steps_per_chunk=500)
  elif preset == "full":
    c.num_neurons, c.num_trials, c.num_test_trials, c.num_steps = 60, 100, 20, 100
    c.latent_dims, c.num_chunks = (1, 2, 3, 4, 6, 8, 10), 10
    c.train.update(num_steps=10000, steps_per_chunk=1000, batch_size=16)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, demo, default or full; got {preset!r}.")
  return c
