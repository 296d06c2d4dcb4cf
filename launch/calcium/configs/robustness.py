"""Config of launch.calcium.robustness: one general DeepSpike model against frame rate, noise
level, and the calibration of its posterior (issue 21).

Built on `launch/calcium/configs/general.py` (the same training fields, augmentation included);
`--config.model_dir=DIR` skips training and loads a model saved by `calcium.save_model`.
"""
import ml_collections

from launch.calcium.configs import general

REPORT = {"title": "One general DeepSpike model (trained on nine shared sets with frame-rate and "
                   "noise augmentation) on held-out DS14 decimated to 60-7.5 Hz and with added "
                   "noise, beside OASIS AR1/AR2 (40 ms bins); calibration of its posterior",
          "headline": ("rate_60_deepspike_corr", "rate_60_oasis_ar2_corr",
                       "rate_7p5_deepspike_corr", "rate_7p5_oasis_ar2_corr",
                       "noise_8_deepspike_corr", "noise_8_oasis_ar2_corr", "reliability_ece",
                       "pit_coverage_w1_c0p8", "train_copies", "test_recordings")}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  if preset not in ("smoke", "default", "full"):
    raise ValueError(f"preset must be smoke, default or full; got {preset!r}.")
  c = general.get_config(preset)
  c.model_dir = ""  # A saved model (calcium.save_model) to evaluate; "" = train one (general).
  # Frame rates (Hz) the held-out recordings are decimated to; rates above a recording's own
  # (by more than 2 %) are skipped for it.
  c.eval_frame_rates = (60.0, 30.0, 15.0, 7.5)
  # How a recording is decimated: "average" (mean of the frames in each 1 / rate bin: noise per
  # frame down by sqrt(k), CASCADE's nu kept) or "drop" (every k-th frame: nu up by sqrt(k)).
  c.decimation = "average"
  # CASCADE noise levels nu (%/sqrt(Hz)) the held-out recordings are brought to at their own
  # rate by added Gaussian noise (recordings already noisier are skipped at that level).
  c.eval_noise_levels = (2.0, 4.0, 8.0)
  # Frame rate (Hz) of the calibration checks (0: the model's rate, so frames are the network's
  # own bins and P(>= 1 spike) per frame is the network's output, not a sum over bins).
  c.calibration_rate = 0.0
  c.reliability_bins = 10  # Equal-width bins of the predicted P(>= 1 spike) per frame.
  c.num_posterior_samples = 100  # Posterior samples per recording for the credible intervals.
  c.coverage_windows_s = (0.2, 1.0)  # Window lengths (s) of the spike counts.
  c.credible_levels = (0.5, 0.8, 0.95)  # Nominal levels of the equal-tailed intervals.
  if preset == "smoke":
    c.eval_noise_levels = (4.0,)
    c.num_posterior_samples = 20
  return c
