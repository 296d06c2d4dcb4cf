"""Config of launch.calcium.simulated: unsupervised DeepSpike vs OASIS on simulated SCF/SCDF."""
import ml_collections

from calcium import train

REPORT = {"title": "DeepSpike (unsupervised VIMCO) vs OASIS on simulated SCF / SCDF data "
                   "(Speiser et al. 2017, Sec. 3.1)",
          "headline": ("scf_deepspike_corr", "scf_true_model_corr", "scf_oasis_ar1_corr",
                       "scf_oasis_ar2_corr", "scf_mcmc_true_params_corr",
                       "scf_deepspike_corr_mcmc_cells", "scdf_deepspike_corr",
                       "scdf_true_model_corr", "scdf_oasis_ar2_corr")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.models = ("scf", "scdf")  # Generative models simulated (and fitted, each its own run).
  c.num_cells = 20  # Simulated cells (one trace each).
  c.num_frames = 6000  # Frames per trace (60 Hz).
  c.firing_rate = 1.0  # Hz.
  c.noise_std = 1.0  # Gaussian noise std of the fluorescence.
  c.spike_snr = 3.0  # Peak fluorescence of one isolated spike over the noise std.
  c.tau_range = (0.4, 1.0)  # Calcium decay times (s), uniform per cell.
  c.scdf_k_on = 20.0  # SCDF dye binding rate (per s per unit calcium^hill).
  c.scdf_k_off = 5.0  # SCDF dye unbinding rate (per s).
  c.scdf_hill = 2.0  # SCDF Hill exponent.
  c.true_model_run = True  # Also train the network with the true generative parameters fixed.
  c.mcmc_cells = 5  # SCF cells also scored by MCMC of the true model (0: skip).
  c.mcmc_sweeps = 100  # Sweeps of the MCMC sampler (a fifth are burn-in).
  c.num_chunks = 10  # Chunks of the launcher's train loop (checkpoint after each).
  c.train = train.default_config()  # DeepSpike training (see calcium.train.default_config).
  c.train.num_samples = 32
  c.train.steps_per_chunk = 100
  c.train.learning_rate = 3e-3
  c.train.generative_learning_rate = 1e-2
  c.train.init_tau = 0.8
  c.train.init_alpha = 2.0
  if preset == "smoke":
    c.num_cells, c.num_frames, c.num_chunks = 3, 1200, 2
    c.mcmc_cells, c.mcmc_sweeps = 1, 10
    c.true_model_run = False  # Two more compiles; the fixed-parameter path is unit-tested.
    c.train.update(num_samples=8, batch_size=4, snippet_frames=100, buffer_frames=20,
                   features=(8, 8), kernel_size=(15, 9), steps_per_chunk=40)
  elif preset == "full":
    c.num_cells, c.num_frames, c.num_chunks = 100, 36_000, 100
    c.mcmc_cells, c.mcmc_sweeps = 20, 500
    c.train.update(num_samples=64, batch_size=16, steps_per_chunk=200)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
