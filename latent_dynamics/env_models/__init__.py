"""latent_dynamics.env_models: learned state-space environment models (Buesing et al. 2018).

Buesing, Weber, Racaniere, Eslami, Rezende, Reichert, Viola, Besse, Gregor, Hassabis, Wierstra
2018, "Learning and querying fast generative models for reinforcement learning": dSSM-DET,
dSSM-VAE and sSSM (and their jumpy variants) on symbolic frames; `blocks` holds the paper's
building blocks (space-to-depth, residual conv transition with pool-and-inject,
depth-to-space decoder, reward head), `elbo` the filtering ELBO and importance-weighted bound,
`models` the pure functions, `train` the minibatch trainer, `data` the windows cut from
recorded trajectories, `imagination` the gymnax-signature adapter (`LatentEnv`). The
pixel-space recurrent autoregressive baseline (RAR) is I2A's environment model,
`agents.i2a.env_model`.
"""
from latent_dynamics.env_models import blocks, data, elbo, train
from latent_dynamics.env_models.blocks import depth_to_space, pool_and_inject, space_to_depth
from latent_dynamics.env_models.elbo import Cell, StepTerms, filtering_terms, iw_bound
from latent_dynamics.env_models.imagination import LatentEnv
from latent_dynamics.env_models.models import (
    KINDS,
    EnvModelConfig,
    LossInfo,
    Rollout,
    Sequences,
    SSMFns,
    jumpy_targets,
    make_env_model,
)

__all__ = [
    "KINDS", "Cell", "EnvModelConfig", "LatentEnv", "LossInfo", "Rollout", "SSMFns",
    "Sequences", "StepTerms", "blocks", "data", "depth_to_space", "elbo", "filtering_terms",
    "iw_bound", "train",
    "jumpy_targets", "make_env_model", "pool_and_inject", "space_to_depth",
]
