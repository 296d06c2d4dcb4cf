"""Config of launch.calcium.posterior_samples: posterior spike samples on a simulated trace."""
import ml_collections

from calcium import train

REPORT = {"title": "Posterior samples of the autoregressive DeepSpike network on simulated SCF "
                   "data (Speiser et al. 2017, Fig. 2)",
          "headline": ("posterior_corr", "sample_count_ratio", "final_bound_per_frame")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.num_cells = 8  # Simulated SCF cells used for training.
  c.num_frames = 4000  # Frames per trace (60 Hz).
  c.num_plot_samples = 20  # Posterior samples drawn for the figure.
  c.plot_frames = 600  # Frames shown.
  c.num_chunks = 5  # Chunks of the training loop.
  c.train = train.default_config()  # DeepSpike training (see calcium.train.default_config).
  c.train.recognition = "autoregressive"
  c.train.num_samples = 16
  c.train.hidden = 16
  c.train.features = (16, 16)
  c.train.kernel_size = (9, 9)
  c.train.snippet_frames = 150
  c.train.buffer_frames = 20
  c.train.steps_per_chunk = 100
  c.train.learning_rate = 3e-3
  c.train.init_tau = 0.8
  c.train.init_alpha = 2.0
  if preset == "smoke":
    c.num_cells, c.num_frames, c.num_chunks, c.plot_frames = 2, 800, 1, 300
    c.train.update(num_samples=4, batch_size=2, snippet_frames=80, buffer_frames=10,
                   features=(8,), kernel_size=(9,), hidden=8, steps_per_chunk=20)
  elif preset == "full":
    c.num_cells, c.num_frames, c.num_chunks = 50, 20_000, 40
    c.train.update(num_samples=64, batch_size=16, hidden=32, features=(32, 32, 32),
                   kernel_size=(9, 9, 9))
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
