"""Sigmoid belief nets (discrete VAEs) on binarised digits, 1 and 2 stochastic layers."""
import ml_collections

REPORT = {
    "title": "Sigmoid belief net on binarised digits: ELBO and gradient variance per estimator",
    "headline": ("final_train_elbo/1/reinforce_ma", "final_train_elbo/1/nvil",
                 "final_train_elbo/1/disarm", "final_train_elbo/2/disarm",
                 "mean_log10_var/1/reinforce_ma", "mean_log10_var/1/disarm"),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                  # PRNG seed (initialisation, minibatches, samples).
  c.layers = (1, 2)           # Numbers of stochastic layers to train.
  c.hidden = 32               # Units per stochastic layer.
  c.estimators = ("reinforce_ma", "nvil", "loo", "vimco", "gumbel_st", "rebar", "disarm")
  c.num_samples = 4           # K of LOO and VIMCO (VIMCO trains the K-sample bound).
  c.temperature = 0.5         # Gumbel-ST and REBAR temperature.
  c.ma_decay = 0.9            # Moving-average baseline decay (REINFORCE + MA, NVIL's centring).
  c.learning_rate = 3e-3      # Adam step size (model, encoder, baseline network).
  c.batch_size = 50           # Examples per gradient step.
  c.test_fraction = 0.2       # Held-out share of the 1797 digits.
  c.var_examples = 50         # Fixed examples on which gradient variance is measured.
  c.var_samples = 64          # Independent gradient estimates per variance measurement.
  c.steps_per_chunk = 500     # Steps per jitted, checkpointed chunk (variance measured per chunk).
  c.num_chunks = 8            # Chunks per (layers, estimator) run.
  if preset == "smoke":  # Compilation dominates: one estimator (tests/launch checks the rest).
    c.layers = (2,)
    c.estimators = ("disarm",)
    c.hidden = 8
    c.var_samples = 8
    c.steps_per_chunk = 10
    c.num_chunks = 1
  elif preset == "full":
    c.hidden = 64
    c.var_samples = 256
    c.steps_per_chunk = 2500
    c.num_chunks = 40
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; expected smoke, default or full.")
  return c
