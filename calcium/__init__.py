"""DeepSpike: amortized spike inference from calcium imaging with variational autoencoders.

Speiser, Yan, Archer, Buesing, Turaga, Macke 2017, *Fast amortized inference of neural activity
from calcium imaging data with variational autoencoders* (NeurIPS). Generative models (SCF, SCDF,
MLphys, DS-BAP), recognition networks (factorised CNN, autoregressive RNN), unsupervised VIMCO /
supervised / combined training through `stochastic_graphs` and its variants, simulated cells,
CASCADE-format ground-truth loading and the spikefinder evaluation; a trained network saved,
loaded and applied to new recordings (`DeepSpike`, `save_model`, `load_model`, and the command
line `python -m calcium.infer`, whose module name is why `train.infer` is not re-exported here).
Training augmentation over frame rates and noise levels as CASCADE's (`augmentation`), and the
calibration of the posterior (`calibration`). See README.md for the equation -> function table.
"""
from calcium import augmentation, calibration
from calcium.augmentation import (
                          add_noise_to_level,
                          augmented_copies,
                          bin_average,
                          cascade_noise_level,
                          decimate,
                          time_warp,
)
from calcium.calibration import (
                          Reliability,
                          credible_intervals,
                          interval_coverage,
                          pit_coverage,
                          randomised_pit,
                          reliability,
                          window_sums,
)
from calcium.data import (
                          Recording,
                          chen2013_files,
                          data_set_description,
                          data_set_name,
                          default_data_dir,
                          fill_nan,
                          ground_truth_folder,
                          load_chen2013,
                          load_folder,
                          load_mat,
                          match_frame_rate,
                          noise_level,
                          normalise,
                          resample,
                          resample_trace,
                          select_recordings,
                          spike_counts,
)
from calcium.deepspike import DeepSpike, SpikeEstimate, load_model, save_model
from calcium.evaluation import (
                          SPIKEFINDER_BIN_S,
                          bin_sum,
                          binned_spike_counts,
                          evaluate,
                          pearson,
                          spike_count_ratio,
                          spikefinder_correlation,
                          spread_bin_sum,
                          spread_correlation,
                          timing_error,
)
from calcium.inference import Inference, infer_trace
from calcium.mcmc import scf_gibbs_marginals
from calcium.models import MODEL_NAMES, GenerativeModel, drift_basis, make_model
from calcium.moments import (
                          RiseDecayMoments,
                          ScfMoments,
                          alpha_at_rate,
                          autocovariance,
                          rise_decay_kernel,
                          rise_decay_moments,
                          scf_moments,
)
from calcium.oasis_baseline import oasis_deconvolve
from calcium.recognition import (
                          AutoregressiveRNN,
                          FactorisedCNN,
                          Recognition,
                          make_autoregressive,
                          make_factorised,
                          receptive_field,
)
from calcium.simulation import (
                          normalised_params,
                          random_cells,
                          random_spine_pairs,
                          simulate,
                          single_spike_peak,
)
from calcium.train import (
                          VARIANTS,
                          Dataset,
                          Trainer,
                          TrainState,
                          default_config,
                          make_dataset,
                          make_losses,
                          make_train,
                          make_trainer,
                          variant_config,
)

__all__ = [
    "Reliability", "add_noise_to_level", "augmentation", "augmented_copies", "bin_average",
    "calibration", "cascade_noise_level", "credible_intervals", "decimate", "interval_coverage",
    "pit_coverage", "randomised_pit", "reliability", "spread_bin_sum", "spread_correlation",
    "time_warp", "window_sums",
    "AutoregressiveRNN", "Dataset", "DeepSpike", "FactorisedCNN", "GenerativeModel", "Inference",
    "MODEL_NAMES", "Recognition", "Recording", "RiseDecayMoments", "SPIKEFINDER_BIN_S",
    "ScfMoments", "SpikeEstimate", "TrainState", "Trainer", "VARIANTS", "alpha_at_rate",
    "autocovariance", "bin_sum",
    "binned_spike_counts", "chen2013_files", "data_set_description", "data_set_name",
    "default_config", "default_data_dir", "drift_basis", "evaluate", "fill_nan",
    "ground_truth_folder", "infer_trace", "load_chen2013", "load_folder", "load_mat",
    "load_model",
    "make_autoregressive", "make_dataset",
    "make_factorised", "make_losses", "make_model", "make_train", "make_trainer",
    "match_frame_rate", "noise_level", "normalise", "normalised_params", "oasis_deconvolve",
    "pearson", "random_cells", "random_spine_pairs", "receptive_field", "resample",
    "resample_trace", "rise_decay_kernel", "rise_decay_moments", "save_model",
    "scf_gibbs_marginals",
    "scf_moments", "select_recordings", "simulate", "single_spike_peak",
    "spike_count_ratio", "spike_counts", "spikefinder_correlation", "timing_error",
    "variant_config",
]
