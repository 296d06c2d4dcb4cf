"""latent_dynamics: black-box variational inference for state-space models.

Archer, Park, Buesing, Cunningham, Paninski 2015, "Black box variational inference for state
space models" (VILDS: the structured Gaussian posterior with block-tridiagonal precision, SGVB);
Gao, Archer, Paninski, Cunningham 2016, "Linear dynamical neural population models through
nonlinear embeddings" (fLDS: LDS latents, neural-network embedding, smoothing posterior).

Modules: `block_tridiag` (sequential) and `block_tridiag_parallel` (O(log T) depth) linear
algebra, `kalman` (exact reference), `models`, `posteriors`, `recognition`, `train`,
`evaluation`; `env_models`, the state-space environment models of Buesing et al. 2018
(env_models/README.md). See README.md for the equation-to-function table.
"""
from latent_dynamics import block_tridiag, block_tridiag_parallel, env_models
from latent_dynamics.block_tridiag import BlockCholesky
from latent_dynamics.evaluation import (
    best_linear_map_r2,
    leave_one_neuron_out_loglik,
    one_step_ahead_loglik,
)
from latent_dynamics.kalman import KalmanResult, kalman_smoother
from latent_dynamics.models import Embedding, StateSpaceModel, dynamics, lds_params, make_model
from latent_dynamics.posteriors import (
    BlockTridiagGaussian,
    lds_posterior,
    mean_field,
    smoothing,
    structured,
)
from latent_dynamics.recognition import Recognition, make_recognition
from latent_dynamics.train import (
    Dataset,
    Trainer,
    TrainState,
    default_config,
    make_dataset,
    make_elbo,
    make_train,
    make_trainer,
    minibatch,
    sgvb_objective,
)

__all__ = [
    "BlockCholesky", "BlockTridiagGaussian", "Dataset", "Embedding", "KalmanResult",
    "Recognition", "StateSpaceModel", "TrainState", "Trainer", "best_linear_map_r2",
    "block_tridiag", "block_tridiag_parallel", "default_config", "dynamics", "env_models",
    "kalman_smoother",
    "lds_params", "lds_posterior", "leave_one_neuron_out_loglik", "make_dataset", "make_elbo",
    "make_model",
    "make_recognition", "make_train", "make_trainer", "mean_field", "minibatch",
    "one_step_ahead_loglik", "sgvb_objective", "smoothing", "structured",
]
