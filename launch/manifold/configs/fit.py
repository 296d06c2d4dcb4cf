"""The default config every LL-LVM launcher starts from (seed, EM length, preprocessing and EM
initialisation); no REPORT, so `launch.reproduce` does not treat this module as an experiment."""
import ml_collections

PRESETS = ("smoke", "default", "full")


def check_preset(preset: str) -> None:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}.")


def default_config() -> ml_collections.ConfigDict:
  """Fields of every manifold experiment; each config adds its own and its presets change them.
  The preprocessing and EM-start fields are read by `launch.manifold.fit`."""
  c = ml_collections.ConfigDict()
  c.seed = 0                # Seed of the data set and of the initialisation.
  c.max_iters = 50          # EM iterations (cap) per fit.
  c.tol = 1e-7              # Relative bound change that stops EM.
  c.normalise = True        # Centre y and divide by max |y| before fitting (the reference code's
                            # preprocessing; the model is not scale free).
  c.data_scale = 1.0        # Extra factor on y after normalisation.
  c.init = "spectral"       # EM start: "spectral" (Laplacian eigenmaps x, q(C) fitted to it),
                            # "random_c" (random q(C), as the reference code), "isomap" or
                            # "random" (see manifold.init_state).
  c.init_scale = 1.0        # Std of the random initial means (or of the initial coordinates).
  c.gamma_init = 1000.0     # Initial noise precision gamma (then set by its M-step); a large
                            # start fits the initial local maps tightly (best trustworthiness on
                            # the swiss roll, see manifold/README.md).
  c.alpha_init = 1e-3       # Initial prior precision alpha of x (fixed unless learn_alpha).
  c.learn_alpha = False     # M-step for alpha (the reference code keeps alpha = 1e-3).
  c.accelerate = False      # SQUAREM-accelerated EM (manifold.run_squarem): fewer iterations to
                            # the same fixed point; max_iters then counts EM map evaluations.
  return c
