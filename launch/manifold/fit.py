"""What the LL-LVM launchers share: preprocessing of y and the options of `manifold.fit`, both
read from the fields of `launch.manifold.configs.fit.default_config` (every manifold config's
start)."""
import ml_collections
import numpy as np

import manifold


def preprocess(config: ml_collections.ConfigDict, y) -> np.ndarray:
  """y as the model sees it: centred and divided by max |y| (config.normalise, as the reference
  code does), then multiplied by config.data_scale."""
  ys = manifold.normalise(y).y if config.normalise else np.asarray(y, dtype=np.float64)
  return ys * config.data_scale


def fit_options(config: ml_collections.ConfigDict) -> dict:
  """Keyword arguments of `manifold.fit` from the config."""
  return dict(max_iters=config.max_iters, tol=config.tol, init=config.init,
              gamma=config.gamma_init, alpha=config.alpha_init, learn_alpha=config.learn_alpha,
              init_scale=config.init_scale, accelerate=config.accelerate)
