"""Config of launch.calcium.dsbap: DS-BAP separation of bAPs and spine events, simulated."""
import ml_collections

from calcium import train

REPORT = {"title": "DS-BAP: bAPs and spine synaptic events from simulated spine + dendrite "
                   "traces (Speiser et al. 2017, Sec. 3.4)",
          "headline": ("bap_corr", "event_corr", "true_model_bap_corr", "true_model_event_corr",
                       "oasis_bap_corr", "oasis_event_corr", "bap_count_ratio",
                       "event_count_ratio")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the simulation and the training.
  c.num_cells = 10  # Simulated spine/dendrite pairs.
  c.num_frames = 6000  # Frames per trace.
  c.frame_rate = 30.0  # Frames per second (typical of two-photon spine imaging).
  c.bap_rate = 0.5  # Rate of back-propagating action potentials (Hz).
  c.event_rate = 0.5  # Rate of the spine's own synaptic calcium events (Hz).
  c.spike_snr = 3.0  # Peak of one bAP in each trace over the noise std.
  c.noise_std = 1.0  # Gaussian noise std of both traces.
  c.spine_tau_range = (0.2, 0.4)  # Spine calcium decay times (s), uniform per pair.
  c.dendrite_tau_range = (0.3, 0.6)  # Dendrite calcium decay times (s), uniform per pair.
  c.event_amplitude_range = (0.7, 1.3)  # Spine event size relative to a bAP's, uniform per pair.
  c.true_model_run = True  # Also train the network with the true generative parameters fixed.
  c.plot_frames = 600  # Frames shown in the example figure.
  c.num_chunks = 10  # Chunks of each training loop (checkpoint after each).
  c.train = train.default_config()  # DeepSpike training (see calcium.train.default_config).
  c.train.num_samples = 32
  c.train.steps_per_chunk = 100
  c.train.learning_rate = 3e-3
  c.train.generative_learning_rate = 1e-2
  c.train.init_rate = 0.5
  if preset == "smoke":
    c.num_cells, c.num_frames, c.num_chunks, c.plot_frames = 2, 900, 2, 300
    c.true_model_run = False
    c.train.update(num_samples=8, batch_size=4, snippet_frames=100, buffer_frames=12,
                   features=(8, 8), kernel_size=(15, 9), steps_per_chunk=25)
  elif preset == "full":
    c.num_cells, c.num_frames, c.num_chunks = 50, 18_000, 50
    c.train.update(num_samples=64, batch_size=16, steps_per_chunk=200)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
