"""Config of launch.calcium.general: one supervised DeepSpike model across indicators (issue 21).

`--config.train_dirs='("DS06-GCaMP6f-zf-aDp", "/my/folder")'` trains on any list of CASCADE-format
folders (names under the shared data root, or paths); `test_dirs` are scored against OASIS AR2.
"""
import ml_collections

from calcium import train

REPORT = {"title": "One general DeepSpike model (supervised, 30 Hz grid) trained on nine "
                   "ground-truth sets, tested on the held-out DS14 GCaMP6s set against OASIS AR2 "
                   "(40 ms bins)",
          "headline": ("test_corr", "test_oasis_ar2_corr", "test_minus_oasis_ar2_corr",
                       "train_recordings", "test_recordings")}

SHARED_SETS = ("DS06-GCaMP6f-zf-aDp", "DS07-GCaMP6f-zf-dD", "DS08-GCaMP6f-zf-OB",
               "DS10-GCaMP6f-m-V1-neuropil-corrected", "DS11-GCaMP6f-m-V1-neuropil-corrected",
               "DS12-GCaMP6s-m-V1-neuropil-corrected", "DS13-GCaMP6s-m-V1-neuropil-corrected",
               "DS14-GCaMP6s-m-V1", "DS29-GCaMP7f-m-V1", "DS30-GCaMP8f-m-V1")


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the recording order and the training.
  # Ground-truth folders trained on and tested on (names under calcium.data.default_data_dir(),
  # or paths). Default: the nine shared sets other than DS14, tested on DS14.
  c.train_dirs = tuple(s for s in SHARED_SETS if s != "DS14-GCaMP6s-m-V1")
  c.test_dirs = ("DS14-GCaMP6s-m-V1",)
  c.max_recordings = 0  # Training recordings per folder (0: all; a cap that drops is logged).
  c.max_frames = 0  # Frames per training recording on the model's grid (0: all).
  c.max_test_recordings = 0  # Test recordings per folder (0: all).
  c.max_test_frames = 0  # Frames per test recording at its own rate (0: all).
  c.oasis = True  # Score OASIS AR2 on the same test recordings (needs oasis-deconv).
  # How test recordings faster than the model's grid are brought onto it (DeepSpike.infer's
  # `downsample`): "average" (frame means per grid bin) or "interpolate" (before 2026-12-06).
  c.downsample = "average"
  # Training augmentation as CASCADE's (Rupprecht et al. 2021; calcium.augmentation): every
  # recording is copied at each frame rate and noise level, then put on the model's grid.
  c.augment = ml_collections.ConfigDict()
  # Training frame rates (Hz): each recording is bin-averaged to every rate at or below its own
  # (within 2 %: as recorded); () = its own rate only (no frame-rate augmentation).
  c.augment.frame_rates = (60.0, 30.0, 15.0, 7.5)
  # CASCADE noise levels nu = 100 median|diff dF/F| / sqrt(rate) (%/sqrt(Hz)) every rate's copy
  # is brought to by added Gaussian noise; 0 = as recorded; a copy already noisier than a level is
  # left out (the shared sets' own levels: 0.2-13, median about 0.8). () = as recorded only.
  c.augment.noise_levels = (0.0, 2.0, 4.0, 8.0)
  # Indicator-kinetics factors (calcium.augmentation.time_warp [O]): each recording is also
  # replayed this many times faster (shorter rise and decay, higher rate) before the rate and
  # noise copies. () or (1.0,) = as recorded only.
  c.augment.time_warps = ()
  c.num_chunks = 10  # Chunks of the training loop.
  c.train = train.default_config()  # DeepSpike training (calcium.train.default_config).
  c.train.frame_rate = 30.0  # One grid for every set (their native rates: 30-180 Hz).
  c.train.batch_size = 16
  c.train.snippet_frames = 200
  c.train.buffer_frames = 30
  c.train.steps_per_chunk = 100
  c.train.learning_rate = 2e-3
  if preset == "smoke":
    c.train_dirs = ("DS06-GCaMP6f-zf-aDp",)
    c.max_recordings, c.max_frames, c.max_test_recordings, c.max_test_frames = 2, 1000, 2, 2000
    c.num_chunks = 2
    c.augment.update(frame_rates=(30.0, 15.0), noise_levels=(0.0, 4.0))
    c.train.update(batch_size=2, snippet_frames=100, buffer_frames=20, features=(8, 8),
                   kernel_size=(9, 9), steps_per_chunk=20)
  elif preset == "full":
    c.num_chunks = 50
    c.train.update(batch_size=32, steps_per_chunk=200)
  elif preset != "default":
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  return c
