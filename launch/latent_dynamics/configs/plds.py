"""Config of launch.latent_dynamics.plds: Poisson LDS latents, mean-field vs structured."""
import ml_collections

from latent_dynamics import train

REPORT = {"title": "Poisson LDS on simulated spike counts: latent recovery (R^2 after the best "
                   "affine map), mean-field vs structured posterior (Archer et al. 2015, Sec. 4)",
          "headline": ("r2_mean_field", "r2_structured", "elbo_per_step_mean_field",
                       "elbo_per_step_structured")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.latent_dim = 2  # Latent dimension of the simulated PLDS (and of the fitted models).
  c.num_neurons = 30  # Simulated neurons p.
  c.num_trials = 40  # Simulated trials N.
  c.num_steps = 100  # Time bins per trial T.
  c.rotation = 0.15  # Rotation (rad per bin) of the true dynamics 0.97 R(angle).
  c.innovation_std = 0.2  # True Q = innovation_std^2 I.
  c.log_base_rate = 0.0  # Mean log firing rate per bin of the simulated neurons.
  c.loading_scale = 0.7  # Std of the true loading matrix C entries.
  c.recognitions = ("mean_field", "structured")  # Posteriors compared (one fit each).
  c.num_chunks = 10  # Chunks of each fit's train loop (checkpoint after each).
  c.train = train.default_config()  # SGVB settings (see latent_dynamics.train.default_config).
  c.train.update(model="plds", link="exp", amortized=True, recognition_hidden=(64,),
                 learn_generative=True, num_samples=4, batch_size=8, learning_rate=5e-3,
                 schedule="cosine", num_steps=3000, steps_per_chunk=300)
  if preset == "smoke":
    c.num_neurons, c.num_trials, c.num_steps, c.num_chunks = 15, 8, 40, 2
    c.train.update(num_steps=150, steps_per_chunk=75, batch_size=4, learning_rate=1e-2,
                   recognition_hidden=(16,))
  elif preset == "full":
    c.num_neurons, c.num_trials, c.num_steps, c.num_chunks = 50, 100, 200, 20
    c.train.update(num_steps=10000, steps_per_chunk=500, batch_size=16)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
